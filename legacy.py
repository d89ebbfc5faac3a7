"""Load network pickles (our own, official StyleGAN2-ADA snapshots, TensorFlow StyleGAN2 pickles) and convert them.

`load_network_pkl(f, force_fp16=False, safe=None)` returns the snapshot dict with keys `G`, `D`, `G_ema`,
`training_set_kwargs` and `augment_pipe`. TensorFlow pickles (a tuple of three `dnnlib.tflib.network.Network`
objects) are converted to our networks. Safe mode is the default (issue 20): the pickle is read by an allowlist
unpickler that accepts only the globals a network pickle needs, so a hostile file is refused before it can run
anything; our snapshots, official pickles and TF pickles all load in it. `safe=None` means safe unless pickles
are trusted (torch_utils.safe_load: the scripts' --trust-pickle); `safe=False` is the official loader's
behaviour (embedded source of unknown classes is exec'd).
"""

import codecs
import collections
import copy
import functools
import glob
import io
import os
import pickle
import re
import sys

import click
import numpy as np
import torch

import dnnlib
from torch_utils import misc
from torch_utils import persistence
from torch_utils import safe_load

#----------------------------------------------------------------------------
# Raised for every file that cannot be read as a network pickle. The message
# is one line that names the file and the reason.

class NetworkPickleError(ValueError):
    pass

#----------------------------------------------------------------------------
# Read a network pickle from a binary file object (or a path). Returns a dict
# holding at least G, D, G_ema, training_set_kwargs and augment_pipe.

def load_network_pkl(f, force_fp16=False, safe=None):
    if safe is None:
        safe = not safe_load.pickles_trusted()
    if isinstance(f, (str, os.PathLike)):
        with open(f, 'rb') as file:
            return load_network_pkl(file, force_fp16=force_fp16, safe=safe)
    name = _stream_name(f)
    if isinstance(f, io.TextIOBase):
        raise NetworkPickleError(f'{name}: the file is open in text mode; network pickles are binary, '
                                 f'open them with open(path, "rb")')
    data = _unpickle(f, name, safe)

    # Convert TensorFlow pickles.
    if _is_tf_pickle(data):
        tf_G, tf_D, tf_Gs = data
        try:
            data = dict(G=convert_tf_generator(tf_G), D=convert_tf_discriminator(tf_D),
                        G_ema=convert_tf_generator(tf_Gs))
        except ValueError as err:
            raise NetworkPickleError(f'{name}: cannot convert the TensorFlow pickle: {err}') from err

    # Fill in and check the snapshot keys. In normal mode the whole file has been unpickled by now, so
    # say so: whatever code it carried has run, even though it turned out not to be a network.
    try:
        _check_snapshot(data, name)
    except NetworkPickleError as err:
        if safe:
            raise
        raise NetworkPickleError(f'{err}. Note: the file was unpickled in full (--trust-pickle), which runs any code '
                                 f'it carries; leave --trust-pickle out for files you do not trust') from None
    if force_fp16:
        _force_fp16(data, name)
    return data

#----------------------------------------------------------------------------
# What a --network (or --resume) value names, as a pickle path or URL. The one
# home of this rule for every CLI. Accepted:
#   a file or URL                      -> itself
#   a training run folder              -> its newest network-snapshot-<kimg>.pkl
#   an --outdir holding run folders    -> the newest snapshot of the highest-numbered run that has one
#   a pattern such as 'runs/00000-*'   -> what it names, if it matches exactly one file or folder
#                                         (for shells that pass a pattern after '=' on unexpanded)
# Raises NetworkPickleError naming the value and what was looked for.

_SNAPSHOT_RE = re.compile(r'network-snapshot-(\d+)\.pkl')

def resolve_network_pkl(spec):
    if not isinstance(spec, str) or spec == '':
        raise NetworkPickleError(f'expected a network pickle path, URL or run folder, got {spec!r}')
    if dnnlib.util.is_url(spec, allow_file_urls=True) or os.path.isfile(spec):
        return spec
    if os.path.isdir(spec):
        found = latest_snapshot(spec)
        if found is None:
            raise NetworkPickleError(f'"{spec}" is a folder without network-snapshot-*.pkl files (nor run folders '
                                     f'holding them); give a snapshot file or a training run folder')
        return found
    if glob.has_magic(spec):
        matches = sorted(glob.glob(os.path.expanduser(spec)))
        if len(matches) == 1:
            return resolve_network_pkl(matches[0])
        if not matches:
            raise NetworkPickleError(f'"{spec}" matches no file or folder; give a snapshot file or a training run folder')
        shown = ', '.join(f'"{m}"' for m in matches[:5]) + (', ...' if len(matches) > 5 else '')
        raise NetworkPickleError(f'"{spec}" matches {len(matches)} paths ({shown}); name one of them')
    raise NetworkPickleError(f'file not found: "{spec}"; give a snapshot file, a training run folder or a URL')

# Newest snapshot in a run folder (highest kimg), or, for a folder of runs,
# in its highest-numbered run that has one; None when there is none.
def latest_snapshot(folder):
    def snapshots(run_dir):
        names = [(int(m.group(1)), name) for name in os.listdir(run_dir) if (m := _SNAPSHOT_RE.fullmatch(name))]
        return [os.path.join(run_dir, name) for _, name in sorted(names)]
    own = snapshots(folder)
    if own:
        return own[-1]
    runs = []
    for name in os.listdir(folder):
        run_match = re.match(r'^(\d+)', name)
        if run_match is not None and os.path.isdir(os.path.join(folder, name)):
            inner = snapshots(os.path.join(folder, name))
            if inner:
                runs.append((int(run_match.group(1)), inner[-1]))
    return max(runs)[1] if runs else None

#----------------------------------------------------------------------------

def _stream_name(f):
    name = getattr(f, 'name', None)
    return name if isinstance(name, str) else 'network pickle'

#----------------------------------------------------------------------------
# Run the (normal or allowlist) unpickler and turn its failures into one-line
# NetworkPickleErrors.

def _unpickle(f, name, safe):
    head = _peek(f, 4)
    unpickler = _SafeUnpickler(f) if safe else _LegacyUnpickler(f)
    try:
        return unpickler.load()
    except _RefusedGlobal as err:
        raise NetworkPickleError(f'{name}: refusing {err}: a network pickle never needs it, so this is not '
                                 f'a trusted network pickle (safe mode); {safe_load.TRUST_HINT}') from None
    except _UnavailableGlobal as err:
        raise NetworkPickleError(f'{name}: {err}') from None
    except (EOFError, pickle.UnpicklingError) as err:
        raise NetworkPickleError(f'{name}: {_describe_unpickling_error(err, head)}') from None
    except ValueError as err:
        raise NetworkPickleError(f'{name}: {err}') from err

#----------------------------------------------------------------------------
# Say why the bytes did not unpickle. Network pickles use protocol 2 or
# higher, so they start with the PROTO opcode (0x80); anything else is not one.

def _describe_unpickling_error(err, head):
    if head == b'':
        return 'the file is empty; fetch it again'
    if head is not None and head[:1] != b'\x80':
        hint = ' (it is a ZIP archive: a torch.save() checkpoint or a dataset?)' if head == b'PK\x03\x04' else ''
        return f'not a pickle file{hint}; expected a network pickle written by StyleGAN2-ADA'
    if isinstance(err, EOFError) or 'truncated' in str(err):
        return 'the file is truncated (interrupted download or copy?); fetch it again'
    first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
    return f'the pickle is corrupt ({first_line}); fetch it again'

#----------------------------------------------------------------------------
# The first bytes of a stream without consuming them, or None when the
# stream cannot be rewound.

def _peek(f, size):
    try:
        if hasattr(f, 'peek'):
            return f.peek(size)[:size]
        if f.seekable():
            pos = f.tell()
            head = f.read(size)
            f.seek(pos)
            return head
    except (OSError, AttributeError, ValueError):
        pass
    return None

#----------------------------------------------------------------------------
# Stand-in for dnnlib.tflib.network.Network: the TensorFlow network's pickled
# state fields become its attributes.

class _TFNetworkStub(dnnlib.EasyDict):
    pass

#----------------------------------------------------------------------------

def _is_tf_pickle(data):
    return isinstance(data, tuple) and len(data) == 3 and all(isinstance(net, _TFNetworkStub) for net in data)

#----------------------------------------------------------------------------

class _RefusedGlobal(pickle.UnpicklingError):
    pass

class _UnavailableGlobal(pickle.UnpicklingError):
    pass

#----------------------------------------------------------------------------
# Normal unpickler: maps the TensorFlow network class to the stub, lets NumPy 1
# read pickles written by NumPy 2, and names globals that cannot be imported.

class _LegacyUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) == ('dnnlib.tflib.network', 'Network'):
            return _TFNetworkStub
        if (module == 'numpy._core' or module.startswith('numpy._core.')) and not hasattr(np, '_core'):
            module = 'numpy.core' + module[len('numpy._core'):]
        try:
            return super().find_class(module, name)
        except (ImportError, AttributeError) as err:
            raise _UnavailableGlobal(f'the pickle refers to {module}.{name}, which cannot be imported here '
                                     f'({type(err).__name__}: {err})') from err

#----------------------------------------------------------------------------
# Allowlist unpickler for safe mode: every global outside _safe_globals() is
# refused before anything is called.

class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        obj = _safe_globals().get((module, name))
        if obj is None:
            obj = _torch_layer_class(module, name)
        if obj is None:
            raise _RefusedGlobal(f'the global "{module}.{name}"')
        return obj

# PyTorch's own layer classes (torch.nn.Linear, ModuleList, ...), which networks hold as plain children (the
# toy MLPs, the priors' modules): unpickling one creates the object without calling its constructor and restores
# its attribute dict with torch's Module.__setstate__, so no code from the file runs. None for anything else.
def _torch_layer_class(module, name):
    if not module.startswith('torch.nn.modules.') or not name.isidentifier():
        return None
    owner = sys.modules.get(module)
    obj = getattr(owner, name, None) if owner is not None else None
    if isinstance(obj, type) and issubclass(obj, torch.nn.Module) and obj.__module__ == module:
        return obj
    return None

    def persistent_load(self, pid):
        raise _RefusedGlobal(f'the persistent id {pid!r}')

#----------------------------------------------------------------------------
# The globals a network pickle needs, mapped to what safe mode calls instead.

@functools.lru_cache(maxsize=None)
def _safe_globals():
    table = {
        ('torch_utils.persistence', '_reconstruct_persistent_obj'): persistence._reconstruct_persistent_obj_safe,
        ('dnnlib.util', 'EasyDict'):                                dnnlib.EasyDict,
        ('dnnlib.tflib.network', 'Network'):                        _TFNetworkStub,
        ('legacy', '_TFNetworkStub'):                               _TFNetworkStub,   # the stubs pickled again (an EasyDict)
        ('collections', 'OrderedDict'):                             collections.OrderedDict,
        ('torch._utils', '_rebuild_tensor_v2'):                     torch._utils._rebuild_tensor_v2,
        ('torch._utils', '_rebuild_parameter'):                     torch._utils._rebuild_parameter,
        ('torch.storage', '_load_from_bytes'):                      _load_storage_weights_only,
        ('torch', 'Size'):                                          torch.Size,
        ('torch', 'device'):                                        torch.device,
        ('numpy', 'dtype'):                                         np.dtype,
        ('numpy', 'ndarray'):                                       np.ndarray,
        ('builtins', 'set'):                                        set,
        ('builtins', 'frozenset'):                                  frozenset,
        ('builtins', 'bytearray'):                                  bytearray,
        ('builtins', 'complex'):                                    complex,
        ('_codecs', 'encode'):                                      _latin1_encode,
    }

    # NumPy array and scalar reconstructors, under their NumPy 1 and NumPy 2 module names.
    np_core = getattr(np, '_core', None) or getattr(np, 'core')
    for prefix in ('numpy.core', 'numpy._core'):
        table[(f'{prefix}.multiarray', 'scalar')] = np_core.multiarray.scalar
        table[(f'{prefix}.multiarray', '_reconstruct')] = np_core.multiarray._reconstruct
        table[(f'{prefix}.numeric', '_frombuffer')] = np_core.numeric._frombuffer

    # torch dtypes (torch.float32 and friends) may appear as plain attributes.
    for attr in dir(torch):
        if isinstance(getattr(torch, attr, None), torch.dtype):
            table[('torch', attr)] = getattr(torch, attr)
    return table

#----------------------------------------------------------------------------
# Safe replacement of torch.storage._load_from_bytes: each tensor's storage is
# a small torch.save() blob, read here with torch.load(weights_only=True).

def _load_storage_weights_only(b):
    try:
        return torch.load(io.BytesIO(b), weights_only=True)
    except (pickle.UnpicklingError, RuntimeError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f'a tensor in the pickle holds more than plain tensor data, refused by '
                         f'torch.load(weights_only=True): {first_line}') from None

#----------------------------------------------------------------------------
# Protocol-2 pickles spell bytes as _codecs.encode(text, 'latin1'); nothing
# else is accepted.

def _latin1_encode(text, encoding='latin1'):
    if encoding not in ('latin1', 'latin-1') or not isinstance(text, str):
        raise ValueError(f'refusing _codecs.encode with encoding {encoding!r} in safe mode')
    return codecs.encode(text, encoding)

#----------------------------------------------------------------------------
# Add the optional keys and check the types of a loaded snapshot.

def _check_snapshot(data, name):
    if not isinstance(data, dict):
        raise NetworkPickleError(f'{name}: not a network snapshot: it holds a {type(data).__name__}, expected a '
                                 f'dict with G, D and G_ema (or a TensorFlow (G, D, Gs) tuple)')
    for key in ('G', 'D', 'G_ema'):
        if key not in data:
            found = ', '.join(str(k) for k in data) or 'none'
            raise NetworkPickleError(f'{name}: not a network snapshot: key "{key}" is missing (keys found: {found})')
    data.setdefault('training_set_kwargs', None)
    data.setdefault('augment_pipe', None)
    for key in ('G', 'D', 'G_ema'):
        if not isinstance(data[key], torch.nn.Module):
            raise NetworkPickleError(f'{name}: "{key}" is a {type(data[key]).__name__}, expected a torch.nn.Module')
    if data['training_set_kwargs'] is not None and not isinstance(data['training_set_kwargs'], dict):
        raise NetworkPickleError(f'{name}: "training_set_kwargs" is a {type(data["training_set_kwargs"]).__name__}, '
                                 f'expected a dict or None')
    if data['augment_pipe'] is not None and not isinstance(data['augment_pipe'], torch.nn.Module):
        raise NetworkPickleError(f'{name}: "augment_pipe" is a {type(data["augment_pipe"]).__name__}, '
                                 f'expected a torch.nn.Module or None')

#----------------------------------------------------------------------------
# Rebuild G, D and G_ema with FP16 in the 4 highest resolutions and
# conv_clamp=256, keeping their weights.

def _force_fp16(data, name):
    for key in ('G', 'D', 'G_ema'):
        old = data[key]
        if not persistence.is_persistent(old):
            raise NetworkPickleError(f'{name}: force_fp16 needs persistent networks, but "{key}" is a '
                                     f'{type(old).__name__} without init_kwargs')
        kwargs = old.init_kwargs
        if key.startswith('G'):
            kwargs.synthesis_kwargs = dnnlib.EasyDict(kwargs.get('synthesis_kwargs', {}))
            kwargs.synthesis_kwargs.update(num_fp16_res=4, conv_clamp=256)
        else:
            kwargs.update(num_fp16_res=4, conv_clamp=256)
        if kwargs == old.init_kwargs:
            continue
        with torch.random.fork_rng(devices=[]):
            new = type(old)(*old.init_args, **kwargs).eval().requires_grad_(False)
        misc.copy_params_and_buffers(old, new, require_all=True)
        data[key] = new

#----------------------------------------------------------------------------
# TensorFlow static kwargs -> our constructor kwargs: (our kwarg, possibly
# nested with '.', TF name, default, optional conversion of the value).

def _double(value):
    if not isinstance(value, (int, float)):
        raise ValueError(f'TensorFlow kwarg fmap_base must be a number, got {value!r}')
    return value * 2

def _none_means_one(value):
    return 1 if value is None else value

_TF_G_KWARGS = [
    ('z_dim',                           'latent_size',          512),
    ('c_dim',                           'label_size',           0),
    ('w_dim',                           'dlatent_size',         512),
    ('img_resolution',                  'resolution',           1024),
    ('img_channels',                    'num_channels',         3),
    ('mapping_kwargs.num_layers',       'mapping_layers',       8),
    ('mapping_kwargs.embed_features',   'label_fmaps',          None),
    ('mapping_kwargs.layer_features',   'mapping_fmaps',        None),
    ('mapping_kwargs.activation',       'mapping_nonlinearity', 'lrelu'),
    ('mapping_kwargs.lr_multiplier',    'mapping_lrmul',        0.01),
    ('mapping_kwargs.w_avg_beta',       'w_avg_beta',           0.995,      _none_means_one),
    ('synthesis_kwargs.channel_base',   'fmap_base',            16384,      _double),
    ('synthesis_kwargs.channel_max',    'fmap_max',             512),
    ('synthesis_kwargs.num_fp16_res',   'num_fp16_res',         0),
    ('synthesis_kwargs.conv_clamp',     'conv_clamp',           None),
    ('synthesis_kwargs.architecture',   'architecture',         'skip'),
    ('synthesis_kwargs.resample_filter', 'resample_kernel',     [1, 3, 3, 1]),
    ('synthesis_kwargs.use_noise',      'use_noise',            True),
    ('synthesis_kwargs.activation',     'nonlinearity',         'lrelu'),
]
_TF_G_IGNORED = ('truncation_psi', 'truncation_cutoff', 'style_mixing_prob', 'structure')

_TF_D_KWARGS = [
    ('c_dim',                               'label_size',           0),
    ('img_resolution',                      'resolution',           1024),
    ('img_channels',                        'num_channels',         3),
    ('architecture',                        'architecture',         'resnet'),
    ('channel_base',                        'fmap_base',            16384,  _double),
    ('channel_max',                         'fmap_max',             512),
    ('num_fp16_res',                        'num_fp16_res',         0),
    ('conv_clamp',                          'conv_clamp',           None),
    ('cmap_dim',                            'mapping_fmaps',        None),
    ('block_kwargs.activation',             'nonlinearity',         'lrelu'),
    ('block_kwargs.resample_filter',        'resample_kernel',      [1, 3, 3, 1]),
    ('block_kwargs.freeze_layers',          'freeze_layers',        0),
    ('mapping_kwargs.num_layers',           'mapping_layers',       0),
    ('mapping_kwargs.embed_features',       'mapping_fmaps',        None),
    ('mapping_kwargs.layer_features',       'mapping_fmaps',        None),
    ('mapping_kwargs.activation',           'nonlinearity',         'lrelu'),
    ('mapping_kwargs.lr_multiplier',        'mapping_lrmul',        0.1),
    ('epilogue_kwargs.mbstd_group_size',    'mbstd_group_size',     None),   # None = one group: the whole batch.
    ('epilogue_kwargs.mbstd_num_channels',  'mbstd_num_features',   1),
    ('epilogue_kwargs.activation',          'nonlinearity',         'lrelu'),
]
_TF_D_IGNORED = ('structure',)

#----------------------------------------------------------------------------

def _convert_tf_kwargs(static_kwargs, table, ignored, what):
    if not isinstance(static_kwargs, dict):
        raise ValueError(f'the TensorFlow {what} has no static_kwargs dict')
    known = set(ignored)
    kwargs = dnnlib.EasyDict()
    for path, tf_name, default, *convert in table:
        known.add(tf_name)
        value = static_kwargs.get(tf_name, copy.deepcopy(default))
        for fn in convert:
            value = fn(value)
        *parents, leaf = path.split('.')
        node = kwargs
        for parent in parents:
            node = node.setdefault(parent, dnnlib.EasyDict())
        node[leaf] = value
    for tf_name in static_kwargs:
        if tf_name not in known:
            raise ValueError(f'unknown TensorFlow {what} kwarg "{tf_name}" (= {static_kwargs[tf_name]!r}); '
                             f'this converter handles StyleGAN2 generators and discriminators only')
    return kwargs

#----------------------------------------------------------------------------

def _check_tf_version(tf_net, what):
    version = getattr(tf_net, 'version', None)
    if not isinstance(version, int) or version < 4:
        raise ValueError(f'TensorFlow {what} pickle version {version!r} is too old; only StyleGAN2 '
                         f'(version >= 4) networks can be converted')

#----------------------------------------------------------------------------
# All variables of a TF network and its components, by full name
# ("mapping/Dense0/weight").

def _tf_variables(tf_net, prefix=''):
    variables = dict()
    for var_name, value in getattr(tf_net, 'variables', []):
        variables[prefix + var_name] = value
    for comp_name, comp in getattr(tf_net, 'components', {}).items():
        variables.update(_tf_variables(comp, prefix + comp_name + '/'))
    return variables

#----------------------------------------------------------------------------
# Re-arrangements of TF values into our layouts.

def _as_is(value):
    return value

def _dense(value):              # [in, out] -> [out, in]
    return value.T

def _conv(value):               # [kh, kw, in, out] -> [out, in, kh, kw]
    return value.transpose(3, 2, 0, 1)

def _conv_flipped(value):       # the same, spatially flipped (TF up/down convs are transposed convs)
    return value[::-1, ::-1].transpose(3, 2, 0, 1)

def _plus_one(value):           # TF stored the style bias minus its init value of 1
    return value + 1

def _first(value):
    return value[0]

def _first_first(value):
    return value[0, 0]

#----------------------------------------------------------------------------
# For a tensor name of our Generator: (TF variable name, re-arrangement), or
# None for tensors that are not converted (resample filters).

_G_LAYER_SCOPES = dict(conv0='Conv0_up', conv1='Conv1', torgb='ToRGB', skip='Skip')

def _generator_tf_source(name):
    if name.endswith('.resample_filter'):
        return None
    if name == 'mapping.w_avg':
        return 'dlatent_avg', _as_is
    m = re.fullmatch(r'mapping\.(embed|fc(\d+))\.(weight|bias)', name)
    if m:
        scope = 'LabelEmbed' if m.group(1) == 'embed' else f'Dense{m.group(2)}'
        return f'mapping/{scope}/{m.group(3)}', (_dense if m.group(3) == 'weight' else _as_is)
    if name == 'synthesis.b4.const':
        return 'synthesis/4x4/Const/const', _first
    m = re.fullmatch(r'synthesis\.b(\d+)\.(conv0|conv1|torgb|skip)\.(weight|bias|noise_strength|noise_const|'
                     r'affine\.weight|affine\.bias)', name)
    if m:
        res, layer, tensor = int(m.group(1)), m.group(2), m.group(3)
        scope = 'Conv' if (res, layer) == (4, 'conv1') else _G_LAYER_SCOPES[layer]
        prefix = f'synthesis/{res}x{res}/{scope}'
        if tensor == 'weight':
            return f'{prefix}/weight', (_conv_flipped if layer in ('conv0', 'skip') else _conv)
        if tensor == 'affine.weight':
            return f'{prefix}/mod_weight', _dense
        if tensor == 'affine.bias':
            return f'{prefix}/mod_bias', _plus_one
        if tensor == 'noise_const':
            index = 2 * (res.bit_length() - 1) - (5 if layer == 'conv0' else 4)
            return f'synthesis/noise{index}', _first_first
        return f'{prefix}/{tensor}', _as_is
    raise ValueError(f'no TensorFlow variable is known for the generator tensor "{name}"')

#----------------------------------------------------------------------------
# The same for our Discriminator.

_D_LAYER_SCOPES = dict(fromrgb='FromRGB', conv0='Conv0', conv1='Conv1_down', skip='Skip')
_D_EPILOGUE_SCOPES = dict(conv='4x4/Conv', fc='4x4/Dense0', out='Output')

def _discriminator_tf_source(name):
    if name.endswith('.resample_filter'):
        return None
    m = re.fullmatch(r'b(\d+)\.(fromrgb|conv0|conv1|skip)\.(weight|bias)', name)
    if m:
        res, layer, tensor = int(m.group(1)), m.group(2), m.group(3)
        return f'{res}x{res}/{_D_LAYER_SCOPES[layer]}/{tensor}', (_conv if tensor == 'weight' else _as_is)
    m = re.fullmatch(r'b4\.(conv|fc|out)\.(weight|bias)', name)
    if m:
        layer, tensor = m.group(1), m.group(2)
        weight_fn = _conv if layer == 'conv' else _dense
        return f'{_D_EPILOGUE_SCOPES[layer]}/{tensor}', (weight_fn if tensor == 'weight' else _as_is)
    m = re.fullmatch(r'mapping\.(embed|fc(\d+))\.(weight|bias)', name)
    if m:
        scope = 'LabelEmbed' if m.group(1) == 'embed' else f'Mapping{m.group(2)}'
        return f'{scope}/{m.group(3)}', (_dense if m.group(3) == 'weight' else _as_is)
    raise ValueError(f'no TensorFlow variable is known for the discriminator tensor "{name}"')

#----------------------------------------------------------------------------
# Fill every parameter and buffer of `module` from the TF variables.

def _copy_tf_variables(module, variables, source_fn, what):
    with torch.no_grad():
        for name, tensor in misc.named_params_and_buffers(module):
            source = source_fn(name)
            if source is None:
                continue
            tf_name, rearrange = source
            if tf_name not in variables:
                raise ValueError(f'the TensorFlow {what} has no variable "{tf_name}", needed for "{name}"')
            value = np.array(rearrange(np.asarray(variables[tf_name])), order='C')
            if value.shape != tuple(tensor.shape):
                raise ValueError(f'TensorFlow variable "{tf_name}" gives shape {list(value.shape)} for "{name}", '
                                 f'which has shape {list(tensor.shape)}')
            tensor.copy_(torch.from_numpy(value))

#----------------------------------------------------------------------------
# Progressive-growing networks (StyleGAN2 configs A/B) name their RGB layers
# per level of detail: "ToRGB_lod<k>" / "FromRGB_lod<k>", k = 0 at full
# resolution. Alias them to the per-resolution names of our 'orig'
# architecture. Returns True if any were found.

def _alias_lod_layers(variables, prefix, layer, img_resolution):
    found = False
    for tf_name, value in list(variables.items()):
        m = re.fullmatch(re.escape(prefix) + layer + r'_lod(\d+)/(.+)', tf_name)
        if m:
            res = img_resolution >> int(m.group(1))
            variables.setdefault(f'{prefix}{res}x{res}/{layer}/{m.group(2)}', value)
            found = True
    return found

#----------------------------------------------------------------------------
# Convert a TensorFlow StyleGAN2 generator (stub) into our Generator.

def convert_tf_generator(tf_G):
    _check_tf_version(tf_G, 'generator')
    kwargs = _convert_tf_kwargs(getattr(tf_G, 'static_kwargs', None), _TF_G_KWARGS, _TF_G_IGNORED, 'generator')
    variables = _tf_variables(tf_G)
    if _alias_lod_layers(variables, 'synthesis/', 'ToRGB', kwargs.img_resolution):
        kwargs.synthesis_kwargs.architecture = 'orig'

    from training import networks # pylint: disable=import-outside-toplevel
    with torch.random.fork_rng(devices=[]):
        G = networks.Generator(**kwargs).eval().requires_grad_(False)
    _copy_tf_variables(G, variables, _generator_tf_source, 'generator')
    return G

#----------------------------------------------------------------------------
# Convert a TensorFlow StyleGAN2 discriminator (stub) into our Discriminator.

def convert_tf_discriminator(tf_D):
    _check_tf_version(tf_D, 'discriminator')
    kwargs = _convert_tf_kwargs(getattr(tf_D, 'static_kwargs', None), _TF_D_KWARGS, _TF_D_IGNORED, 'discriminator')
    variables = _tf_variables(tf_D)
    if _alias_lod_layers(variables, '', 'FromRGB', kwargs.img_resolution):
        kwargs.architecture = 'orig'

    from training import networks # pylint: disable=import-outside-toplevel
    with torch.random.fork_rng(devices=[]):
        D = networks.Discriminator(**kwargs).eval().requires_grad_(False)
    _copy_tf_variables(D, variables, _discriminator_tf_source, 'discriminator')
    return D

#----------------------------------------------------------------------------

@click.command()
@safe_load.cli_options
@click.option('--source', help='Network pickle to read (path, URL, or a training run folder: its newest snapshot)', required=True, metavar='PATH')
@click.option('--dest', help='Where to write the converted snapshot pickle', required=True, metavar='PATH')
@click.option('--force-fp16', help='Rebuild the networks with FP16 in the 4 highest resolutions', type=bool,
              default=False, show_default=True, metavar='BOOL')
def convert_network_pickle(source, dest, force_fp16):
    """Convert a network pickle into a StyleGAN2-ADA (PyTorch) snapshot pickle.

    Reads TensorFlow StyleGAN2 pickles as well as PyTorch snapshots (official or ours) and writes a dict with
    G, D, G_ema, training_set_kwargs and augment_pipe.

    Example:

    \b
    python legacy.py --source=stylegan2-ffhq-config-f.pkl --dest=stylegan2-ffhq-config-f-pt.pkl
    """
    from dnnlib import cli # pylint: disable=import-outside-toplevel
    cli.check_output_file(dest, '--dest')
    try:
        source = resolve_network_pkl(source)
    except NetworkPickleError as err:
        raise click.ClickException(f'--source: {err}') from err
    print(f'Loading "{source}"...')
    try:
        with dnnlib.util.open_url(source) as f:
            data = load_network_pkl(f, force_fp16=force_fp16)
    except OSError as err:
        raise click.ClickException(f'--source: cannot read "{source}": {err}') from err
    except ValueError as err:
        raise click.ClickException(f'--source: {err}') from err
    print(f'Saving "{dest}"...')
    try:
        with dnnlib.util.atomic_write(dest, 'wb') as f:
            pickle.dump(data, f)
    except OSError as err:
        raise click.ClickException(f'--dest: cannot write "{dest}": {err}') from err
    print('Done.')

#----------------------------------------------------------------------------

if __name__ == '__main__':
    convert_network_pickle() # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
