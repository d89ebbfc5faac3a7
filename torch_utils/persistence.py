"""Persistent classes: objects that pickle together with their module source, in the official StyleGAN2-ADA format.

Writing. `@persistent_class` wraps a class so that pickling an instance stores one call of
`_reconstruct_persistent_obj(meta)`, where `meta` is a plain dict with the keys, in this order,
`type='class'`, `version=6`, `module_src` (the full source of the defining module), `class_name` and
`state` (the instance's attribute dict, including `_init_args` and `_init_kwargs`). The official
loader can therefore read our pickles: it execs `module_src` and restores `state`.

Reading. We never need the embedded source for the classes we know. A pickled object is rebuilt as:
1. our own class, restored as-is, when `module_src` is exactly the source of one of our imported modules
   (our own pickles, `copy.deepcopy`);
2. otherwise our class of the same name (classes decorated here, `training.networks` and
   `training.augment` are imported on demand): we construct it from the pickled init args/kwargs without
   drawing random numbers (on the meta device for big objects), then install the pickled parameters,
   buffers and already-rebuilt children, after checking their names and shapes;
3. otherwise, in normal mode, by exec'ing `module_src` as the official loader does: for classes we do
   not know, and, with a warning, for forks whose state does not match our class. Safe mode refuses.
"""

import ast
import contextlib
import copy
import importlib
import inspect
import pickle
import sys
import types
import uuid
import warnings

import numpy as np
import torch

import dnnlib
from dnnlib import plugins

#----------------------------------------------------------------------------

_version = 6                  # Format version written into every meta dict; the official loader requires 6.
_decorators = set()           # Every class returned by persistent_class().
_import_hooks = []            # Callables meta -> meta, applied to every meta before the object is rebuilt.
_module_to_src_dict = dict()  # module -> its source text.
_src_to_module_dict = dict()  # source text -> module (imported, or created by exec'ing pickled source).
_known_classes = dict()       # class name -> [decorated classes of imported modules], rebuilt by name.

_EXEC_PREFIX = '_imported_module_'                       # Name prefix of modules made from pickled source.
_ON_DEMAND_MODULES = ('training.networks', 'training.augment', 'training.toy_networks')  # Imported when a class name is unknown, then the plugins (their modules in G or D).

#----------------------------------------------------------------------------
# Decorator that makes a class persistent. The returned subclass keeps the
# original name, module and qualname, remembers its constructor arguments
# and pickles as a call of _reconstruct_persistent_obj(meta).

def persistent_class(orig_class):
    if not isinstance(orig_class, type):
        raise TypeError(f'persistent_class() expects a class, got {type(orig_class).__name__}')
    if is_persistent(orig_class):
        return orig_class
    module = sys.modules.get(orig_class.__module__)
    if module is None:
        raise ValueError(f'persistent_class(): module "{orig_class.__module__}" of class {orig_class.__name__} '
                         f'is not in sys.modules; decorate classes while their module is being imported')
    module_src = _module_to_src(module)
    class_name = orig_class.__name__

    class Persistent(orig_class):
        _orig_module_src = module_src
        _orig_class_name = class_name

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            # Keep private copies of the constructor arguments; they are pickled with the state.
            self._init_args, self._init_kwargs = copy.deepcopy((args, kwargs))
            if module.__dict__.get(class_name) is None:
                raise AssertionError(f'{class_name} must be a top-level name of module {module.__name__}')
            _check_pickleable(self.__reduce__())

        init_args = property(lambda self: copy.deepcopy(self._init_args),
                             doc='Positional constructor arguments (a copy).')
        init_kwargs = property(lambda self: dnnlib.EasyDict(copy.deepcopy(self._init_kwargs)),
                               doc='Keyword constructor arguments (a copy, as an EasyDict).')

        def __reduce__(self):
            getstate = getattr(self, '__getstate__', None)
            state = getstate() if callable(getstate) else dict(self.__dict__)
            meta = dict(type='class', version=_version, module_src=self._orig_module_src,
                        class_name=self._orig_class_name, state=state)
            return (_reconstruct_persistent_obj, (meta,), None)

    Persistent.__name__ = class_name
    Persistent.__qualname__ = orig_class.__qualname__
    Persistent.__module__ = orig_class.__module__
    Persistent.__doc__ = orig_class.__doc__
    _decorators.add(Persistent)
    if not module.__name__.startswith(_EXEC_PREFIX):
        _known_classes.setdefault(class_name, []).append(Persistent)
    return Persistent

#----------------------------------------------------------------------------
# True for a class returned by persistent_class() and for its instances.

def is_persistent(obj):
    if isinstance(obj, type) and obj in _decorators:
        return True
    return type(obj) in _decorators

#----------------------------------------------------------------------------
# Register hook(meta) -> meta, called on every pickled object before it is
# rebuilt (meta is an EasyDict with type, version, module_src, class_name,
# state). Meant for patching the source of old pickles.

def import_hook(hook):
    if not callable(hook):
        raise TypeError(f'import_hook() expects a callable, got {type(hook).__name__}')
    _import_hooks.append(hook)

#----------------------------------------------------------------------------
# The function that pickles of persistent objects call. Its name is part of
# the file format: torch_utils.persistence._reconstruct_persistent_obj.

def _reconstruct_persistent_obj(meta):
    return _rebuild_persistent_obj(meta, safe=False)

#----------------------------------------------------------------------------
# Variant used by safe loading (legacy.load_network_pkl(safe=True)): known
# classes only, never any pickled source.

def _reconstruct_persistent_obj_safe(meta):
    return _rebuild_persistent_obj(meta, safe=True)

#----------------------------------------------------------------------------

def _rebuild_persistent_obj(meta, safe):
    # Validate the meta dict and run the import hooks.
    if not isinstance(meta, dict) or not isinstance(meta.get('state'), dict):
        raise ValueError('malformed persistent object in the pickle: expected a meta dict with a "state" dict')
    meta = dnnlib.EasyDict(meta)
    meta.state = dnnlib.EasyDict(meta.state)
    for hook in _import_hooks:
        meta = hook(meta)
        if meta is None:
            raise ValueError(f'import hook {getattr(hook, "__name__", hook)!r} returned None instead of the meta dict')
    if meta.get('version') != _version:
        raise ValueError(f'unsupported persistent object format version {meta.get("version")!r} '
                         f'(this code reads version {_version})')
    if meta.get('type') != 'class':
        raise ValueError(f'unsupported persistent object type {meta.get("type")!r} (only "class" is known)')
    class_name = meta.get('class_name')
    module_src = meta.get('module_src')
    if not isinstance(class_name, str) or not isinstance(module_src, str):
        raise ValueError('malformed persistent object in the pickle: class_name and module_src must be strings')
    state = dict(meta.state)

    # 1. The pickle embeds the source of one of our imported modules: restore as-is.
    candidates = _known_classes_named(class_name)
    module = _src_to_module_dict.get(module_src)
    if module is not None and not module.__name__.startswith(_EXEC_PREFIX):
        cls = module.__dict__.get(class_name)
        if isinstance(cls, type):
            return _restore_state(persistent_class(cls), state)

    # 2. A class of ours with the same name: rebuild it from init args and state.
    first_mismatch = None
    for cls in candidates:
        try:
            return _rebuild_known_class(cls, state)
        except _StateMismatch as mismatch:
            first_mismatch = first_mismatch or mismatch

    # 3. Safe mode stops here.
    if safe:
        if first_mismatch is not None:
            raise ValueError(f'refusing to load {class_name} in safe mode: the pickled object does not match '
                             f'{_class_path(candidates[0])} ({first_mismatch}); give --trust-pickle (safe=False) '
                             f'only if you trust the file')
        raise ValueError(f'refusing to load unknown class {class_name} in safe mode: only training.networks, '
                         f'training.augment and imported persistent classes can be rebuilt; import the module '
                         f'that defines it, or give --trust-pickle (safe=False) only if you trust the file')

    # 4. Normal mode: exec the embedded source, as the official loader does.
    if not _defines_class(module_src, class_name):
        if first_mismatch is not None:
            raise ValueError(f'cannot rebuild {class_name}: the pickled object does not match '
                             f'{_class_path(candidates[0])} ({first_mismatch}), and the pickle carries no '
                             f'usable source for it')
        raise ValueError(f'cannot rebuild unknown class {class_name}: the pickle carries no usable source for it; '
                         f'import the module that defines it before loading')
    if first_mismatch is not None:
        warnings.warn(f'{class_name}: the pickled object does not match {_class_path(candidates[0])} '
                      f'({first_mismatch}); executing the source embedded in the pickle instead, as the '
                      f'official loader does', stacklevel=2)
    module = _src_to_module(module_src)
    return _restore_state(persistent_class(module.__dict__[class_name]), state)

#----------------------------------------------------------------------------
# Reason why a pickled object cannot be rebuilt as one of our classes.

class _StateMismatch(Exception):
    pass

#----------------------------------------------------------------------------

def _class_path(cls):
    return f'{cls.__module__}.{cls.__qualname__}'

#----------------------------------------------------------------------------
# Our decorated classes with this name, importing the network and augment
# modules the first time a name is missing.

def _known_classes_named(class_name):
    if class_name not in _known_classes:
        for module_name in _ON_DEMAND_MODULES + tuple(plugins.plugin_modules()):
            if module_name not in sys.modules:
                try:
                    importlib.import_module(module_name)
                except ModuleNotFoundError as err:
                    if err.name is None or not module_name.startswith(err.name):
                        raise
    return list(_known_classes.get(class_name, []))

#----------------------------------------------------------------------------
# Create an instance without calling __init__ and give it the pickled state.

def _restore_state(cls, state):
    obj = cls.__new__(cls)
    setstate = getattr(obj, '__setstate__', None)
    if callable(setstate):
        setstate(state)
    else:
        obj.__dict__.update(state)
    return obj

#----------------------------------------------------------------------------
# Rebuild a pickled object as our class `cls`: construct ours from the pickled
# constructor arguments, then move the pickled tensors and children in.
# Raises _StateMismatch when the pickle does not fit our class.

def _rebuild_known_class(cls, state):
    if not issubclass(cls, torch.nn.Module):
        return _restore_state(cls, state)
    init_args = state.get('_init_args')
    init_kwargs = state.get('_init_kwargs')
    if not isinstance(init_args, tuple) or not isinstance(init_kwargs, dict):
        raise _StateMismatch('no _init_args/_init_kwargs in the pickled state')
    obj = _construct_quietly(cls, init_args, init_kwargs, _state_numel(state))

    # Parameters and buffers: same names, same shapes (empty placeholder buffers excepted).
    for slot, kind in (('_parameters', 'parameter'), ('_buffers', 'buffer')):
        ours = obj.__dict__[slot]
        theirs = state.get(slot, {})
        _check_same_names(ours, theirs, kind)
        for name, our_tensor in ours.items():
            their_tensor = theirs[name]
            expected_type = torch.nn.Parameter if slot == '_parameters' else torch.Tensor
            if their_tensor is not None and not isinstance(their_tensor, expected_type):
                raise _StateMismatch(f'{kind} "{name}" is a {type(their_tensor).__name__} in the pickle')
            if (our_tensor is None) != (their_tensor is None):
                raise _StateMismatch(f'{kind} "{name}" is {"None" if their_tensor is None else "set"} in the pickle '
                                     f'but {"None" if our_tensor is None else "set"} in ours')
            # An empty buffer in a fresh object is a placeholder sized by fitting (e.g. a fitted mixture's means_),
            # so it takes the pickled shape; every other tensor must keep the shape our constructor gives it.
            placeholder = slot == '_buffers' and our_tensor is not None and our_tensor.numel() == 0
            if our_tensor is not None and not placeholder and tuple(their_tensor.shape) != tuple(our_tensor.shape):
                raise _StateMismatch(f'{kind} "{name}" has shape {list(their_tensor.shape)} in the pickle '
                                     f'but {list(our_tensor.shape)} in ours')

    # Children: same names, and each already rebuilt as the class we would use.
    our_children = obj.__dict__['_modules']
    their_children = state.get('_modules', {})
    _check_same_names(our_children, their_children, 'sub-module')
    for name, our_child in our_children.items():
        their_child = their_children[name]
        if type(their_child) is not type(our_child):
            raise _StateMismatch(f'sub-module "{name}" is {_describe_type(their_child)} in the pickle '
                                 f'but {_describe_type(our_child)} in ours')

    # Install the pickled tensors and children; keep the pickled bookkeeping.
    for slot in ('_parameters', '_buffers', '_modules'):
        ours = obj.__dict__[slot]
        theirs = state.get(slot, {})
        for name in ours:
            ours[name] = theirs[name]
    obj.training = bool(state.get('training', True))
    obj._init_args = init_args
    obj._init_kwargs = init_kwargs
    return obj

#----------------------------------------------------------------------------

def _check_same_names(ours, theirs, kind):
    if not isinstance(theirs, dict):
        raise _StateMismatch(f'the pickled {kind} table is a {type(theirs).__name__}, not a dict')
    for name in ours:
        if name not in theirs:
            raise _StateMismatch(f'{kind} "{name}" is missing from the pickle')
    for name in theirs:
        if name not in ours:
            raise _StateMismatch(f'the pickle has an unexpected {kind} "{name}"')

#----------------------------------------------------------------------------

def _describe_type(obj):
    return 'None' if obj is None else f'a {type(obj).__module__}.{type(obj).__qualname__}'

#----------------------------------------------------------------------------
# Call cls(*args, **kwargs) for a rebuild, whose tensors are about to be
# replaced by pickled ones; `numel` is the size of those tensors. Nested
# objects are constructed once per level, so big objects are constructed on
# the meta device (no memory, no random numbers; its first use in a process
# costs a few seconds of imports). Small objects, and constructors that need
# real values or keep tensors in plain attributes, run on the CPU with random
# initialisers giving zeros. Both leave the global RNGs as they were.

_META_MIN_NUMEL = 1 << 22

def _construct_quietly(cls, args, kwargs, numel):
    if numel >= _META_MIN_NUMEL:
        try:
            with _forked_rngs(), torch.device('meta'), _KeepOnMeta():
                obj = cls(*copy.deepcopy(args), **copy.deepcopy(kwargs))
            if _plain_attribute_holds(obj, lambda item: isinstance(item, torch.Tensor) and item.is_meta) is None:
                return _checked_construction(obj)
        except Exception: # pylint: disable=broad-except
            pass
    try:
        with _forked_rngs(), _ZeroRandomInit():
            obj = cls(*copy.deepcopy(args), **copy.deepcopy(kwargs))
    except Exception as err: # pylint: disable=broad-except
        raise _StateMismatch(f'our constructor rejects the pickled arguments: {type(err).__name__}: {err}') from err
    return _checked_construction(obj)

#----------------------------------------------------------------------------
# Number of tensor elements in a pickled module state, children included.

def _state_numel(state):
    total = 0
    for slot in ('_parameters', '_buffers'):
        for tensor in (state.get(slot) or {}).values():
            total += tensor.numel() if isinstance(tensor, torch.Tensor) else 0
    for child in (state.get('_modules') or {}).values():
        if isinstance(child, torch.nn.Module):
            total += sum(t.numel() for t in child.parameters()) + sum(t.numel() for t in child.buffers())
    return total

#----------------------------------------------------------------------------
# Children are replaced after construction, so a plain attribute must not
# keep a reference to one.

def _checked_construction(obj):
    attr = _plain_attribute_holds(obj, lambda item: isinstance(item, torch.nn.Module))
    if attr is not None:
        raise _StateMismatch(f'our class keeps a sub-module in the plain attribute "{attr}", which a rebuild '
                             f'cannot update')
    return obj

#----------------------------------------------------------------------------
# Name of the first plain attribute (not a parameter, buffer or child table)
# that holds, possibly inside lists/tuples/dicts, an item matching `test`.

def _plain_attribute_holds(obj, test):
    for attr, value in obj.__dict__.items():
        if attr not in ('_parameters', '_buffers', '_modules'):
            if any(test(item) for item in _walk_containers(value)):
                return attr
    return None

#----------------------------------------------------------------------------

@contextlib.contextmanager
def _forked_rngs():
    np_state = np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        np.random.set_state(np_state)

#----------------------------------------------------------------------------
# Torch function mode that keeps everything on the meta device: explicit
# device arguments become 'meta' and device moves (.to(device), .cpu(),
# .cuda()) keep the tensor where it is. Used together with
# torch.device('meta'), which covers factories called without a device.

class _KeepOnMeta(torch.overrides.TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func in (torch.Tensor.cpu, torch.Tensor.cuda):
            return args[0]
        if func is torch.Tensor.to:
            kwargs.pop('device', None)
            if len(args) > 1:
                target = args[1]
                if isinstance(target, torch.Tensor):
                    args = (args[0], target.dtype) + tuple(args[2:])
                elif isinstance(target, (str, torch.device)) or (isinstance(target, int) and not isinstance(target, bool)):
                    args = (args[0],) + tuple(args[2:])
            if len(args) == 1 and not kwargs:
                return args[0]
        elif 'device' in kwargs:
            kwargs['device'] = torch.device('meta')
        return func(*args, **kwargs)

#----------------------------------------------------------------------------
# Torch function mode in which the usual random initialisers produce zeros
# (factories) or leave the tensor untouched (in-place initialisers).

class _ZeroRandomInit(torch.overrides.TorchFunctionMode):
    _factories = {torch.randn, torch.rand}
    _like_factories = {torch.randn_like, torch.rand_like}
    _in_place = {torch.Tensor.normal_, torch.Tensor.uniform_, torch.Tensor.random_, torch.Tensor.bernoulli_,
                 torch.Tensor.exponential_, torch.Tensor.log_normal_, torch.Tensor.cauchy_, torch.Tensor.geometric_}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func in self._factories:
            kwargs.pop('generator', None)
            return torch.zeros(*args, **kwargs)
        if func in self._like_factories:
            kwargs.pop('generator', None)
            return torch.zeros_like(*args, **kwargs)
        if func in self._in_place:
            return args[0]
        return func(*args, **kwargs)

#----------------------------------------------------------------------------

def _walk_containers(value, depth=0):
    yield value
    if depth < 4:
        if isinstance(value, dict):
            for item in value.values():
                yield from _walk_containers(item, depth + 1)
        elif isinstance(value, (list, tuple, set)):
            for item in value:
                yield from _walk_containers(item, depth + 1)

#----------------------------------------------------------------------------
# True if `src` parses as Python and defines `class_name` at top level.
# Fixture pickles carry a placeholder comment instead of real source.

def _defines_class(src, class_name):
    try:
        tree = ast.parse(src)
    except (SyntaxError, ValueError):
        return False
    return any(isinstance(node, ast.ClassDef) and node.name == class_name for node in tree.body)

#----------------------------------------------------------------------------
# Source text of a module, cached in both directions.

def _module_to_src(module):
    src = _module_to_src_dict.get(module)
    if src is None:
        src = inspect.getsource(module)
        _module_to_src_dict[module] = src
        _src_to_module_dict.setdefault(src, module)
    return src

#----------------------------------------------------------------------------
# Module for a source text: a cached one, or a fresh module made by exec'ing
# the text (what the official loader does for every pickled object).

def _src_to_module(src):
    if src not in _src_to_module_dict:
        module = types.ModuleType(_EXEC_PREFIX + uuid.uuid4().hex)
        sys.modules[module.__name__] = module
        _src_to_module_dict[src] = module
        _module_to_src_dict[module] = src
        try:
            exec(compile(src, module.__name__, 'exec'), module.__dict__) # pylint: disable=exec-used
        except BaseException:
            # Forget a module whose source failed, so a later load does not find it half-built.
            del _src_to_module_dict[src], _module_to_src_dict[module], sys.modules[module.__name__]
            raise
    return _src_to_module_dict[src]

#----------------------------------------------------------------------------
# Raise TypeError unless `obj` pickles. Containers are walked; primitives,
# arrays, tensors and persistent objects are accepted without pickling them;
# anything else is test-pickled.

def _check_pickleable(obj):
    leftovers = []
    pending = [obj]
    seen = set()
    while pending:
        item = pending.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            pending.extend(item)
        elif item is None or isinstance(item, (str, int, float, bool, bytes, bytearray)):
            pass
        elif isinstance(item, (np.ndarray, torch.Tensor)) or is_persistent(item):
            pass
        else:
            leftovers.append(item)
    for item in leftovers:
        try:
            pickle.dumps(item)
        except Exception as err: # pylint: disable=broad-except
            raise TypeError(f'persistent object holds an unpicklable {type(item).__module__}.'
                            f'{type(item).__qualname__} ({err}); constructor arguments and attributes '
                            f'of persistent classes must be picklable') from err

#----------------------------------------------------------------------------
