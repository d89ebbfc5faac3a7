"""Assorted torch helpers: cached constants, shape checks, the infinite data sampler, parameter copying, DDP helpers, module summaries, image conversion."""

import contextlib
import functools
import re
import warnings

import numpy as np
import torch

import dnnlib

#----------------------------------------------------------------------------
# Cached constant tensors, so that repeated calls with the same value reuse
# one tensor instead of building (and uploading) a new one every time.

_constant_cache = dict()

def constant(value, shape=None, dtype=None, device=None, memory_format=None):
    array = np.asarray(value)
    shape = None if shape is None else tuple(shape)
    dtype = torch.get_default_dtype() if dtype is None else dtype
    device = torch.device('cpu') if device is None else device
    memory_format = torch.contiguous_format if memory_format is None else memory_format

    key = (array.shape, array.dtype, array.tobytes(), shape, dtype, device, memory_format)
    cached = _constant_cache.get(key, None)
    if cached is None:
        cached = torch.as_tensor(array.copy(), dtype=dtype, device=device)
        if shape is not None:
            cached = cached.expand(shape)  # broadcast to the requested shape
        cached = cached.contiguous(memory_format=memory_format)
        _constant_cache[key] = cached
    return cached

#----------------------------------------------------------------------------
# Aliases kept for code written against older torch versions.

nan_to_num = torch.nan_to_num
symbolic_assert = torch._assert

#----------------------------------------------------------------------------
# Context manager that silences torch.jit.TracerWarning, e.g. for shape
# checks that are fine to evaluate once while tracing.

class suppress_tracer_warnings(warnings.catch_warnings):
    def __enter__(self):
        super().__enter__()  # saves the filters; __exit__ restores them
        warnings.filterwarnings('ignore', category=torch.jit.TracerWarning)
        return self

#----------------------------------------------------------------------------
# Check a tensor's shape against a reference; None entries match any size.
# Sizes that are tensors (seen while tracing) are checked symbolically.

def assert_shape(tensor, ref_shape):
    ndim, ref_ndim = tensor.ndim, len(ref_shape)
    if ndim != ref_ndim:
        raise AssertionError(f'Wrong number of dimensions: got {ndim}, expected {ref_ndim}')
    for dim, (size, ref_size) in enumerate(zip(tensor.shape, ref_shape)):
        if ref_size is None:
            continue
        if isinstance(size, torch.Tensor) or isinstance(ref_size, torch.Tensor):
            with suppress_tracer_warnings():
                same = torch.equal(torch.as_tensor(size), torch.as_tensor(ref_size))
                symbolic_assert(torch.as_tensor(same), f'Wrong size for dimension {dim}')
        elif size != ref_size:
            raise AssertionError(f'Wrong size for dimension {dim}: got {size}, expected {ref_size}')

#----------------------------------------------------------------------------
# Decorator: show calls of the function as a named range in the torch profiler.

def profiled_function(fn):
    @functools.wraps(fn)
    def profiled(*args, **kwargs):
        with torch.autograd.profiler.record_function(fn.__name__):
            return fn(*args, **kwargs)
    return profiled

#----------------------------------------------------------------------------
# Endless stream of dataset indices, split between replicas (ranks).
#
# Every replica walks the same sequence of global steps idx = 0, 1, 2, ...
# At step idx the item at position (idx mod len) of a private permutation is
# handed to replica (idx mod num_replicas). With shuffling, the permutation
# starts as a seeded shuffle and, after each step, the item just visited
# swaps places with a random item at most `window` positions behind it, so
# later passes over the data come in a slowly drifting order.
#
# Resume: state_dict() captures the position and the permutation/RNG state
# after the last index handed out; load_state_dict() makes the next iter()
# continue from exactly there. The state is the same on all ranks once each
# has yielded the same number of indices, so one rank's state serves all.

class InfiniteSampler(torch.utils.data.Sampler):
    def __init__(self, dataset, rank=0, num_replicas=1, shuffle=True, seed=0, window_size=0.5):
        if len(dataset) <= 0:
            raise ValueError('InfiniteSampler: the dataset is empty')
        if num_replicas <= 0:
            raise ValueError(f'InfiniteSampler: num_replicas must be >= 1, got {num_replicas}')
        if not 0 <= rank < num_replicas:
            raise ValueError(f'InfiniteSampler: rank must be in [0, {num_replicas - 1}], got {rank}')
        if not 0 <= window_size <= 1:
            raise ValueError(f'InfiniteSampler: window_size must be in [0, 1], got {window_size}')
        super().__init__()  # torch >= 2.2 no longer takes the dataset here
        self.dataset = dataset
        self.rank, self.num_replicas = rank, num_replicas
        self.shuffle, self.seed, self.window_size = shuffle, seed, window_size
        self._start_state = None    # state to start the next iter() from; None = from the beginning
        self._iterator = None       # the iterator handed out last

    def __iter__(self):
        self._iterator = _InfiniteSamplerIterator(self, self._start_state)
        return self._iterator

    def _config(self):
        # Everything that determines the global index sequence (rank and replica count do not).
        return dict(length=len(self.dataset), shuffle=bool(self.shuffle), seed=int(self.seed), window_size=float(self.window_size))

    def state_dict(self, num_unused=0):
        """Position of the sampler, to resume the same index sequence later.

        num_unused: indices this rank has yielded that were never consumed,
            e.g. prefetched by DataLoader workers (batch_size * num_workers *
            prefetch_factor once the loader is running). The state is rewound
            by that many indices (up to a few thousand).
        Returns a dict of ints, floats and int64 tensors (safe for torch.save
        with weights_only loading and for pickle).
        """
        if self._iterator is None:
            if num_unused != 0:
                raise ValueError(f'InfiniteSampler.state_dict: num_unused={num_unused}, but no index has been yielded yet')
            start = self._start_state
            return dict(start) if start is not None else _InfiniteSamplerIterator(self, None).state_dict(0)
        return self._iterator.state_dict(num_unused)

    def load_state_dict(self, state):
        """Make the next iter() continue from a state returned by state_dict(); {} = start from the beginning."""
        if not state:
            self._start_state = None
            return
        config = self._config()
        for key, value in config.items():
            if state.get(key) != value:
                raise ValueError(f'InfiniteSampler.load_state_dict: saved {key}={state.get(key)!r} differs from this sampler\'s '
                                 f'{key}={value!r}; resume with the same dataset and sampler options')
        self._start_state = dict(state)
        self._iterator = None

#----------------------------------------------------------------------------
# The iterator behind InfiniteSampler. Its state between two yields is
# (idx, order, rng): idx is the next global step, order and rng reflect all
# swaps done for earlier steps. After handing out an index it advances idx
# to the next multiple of num_replicas, which makes the state identical on
# all ranks. Snapshots taken every `_anchor_every` steps allow rewinding.

class _InfiniteSamplerIterator:
    _anchor_every = 4096

    def __init__(self, sampler, state):
        self.length = len(sampler.dataset)
        self.rank = sampler.rank
        self.num_replicas = sampler.num_replicas
        self.config = sampler._config()
        self.window = 0
        self.rng = None
        if state is None:
            self.order = np.arange(self.length)
            if sampler.shuffle:
                self.rng = np.random.RandomState(sampler.seed)
                self.rng.shuffle(self.order)
                self.window = int(np.rint(self.length * sampler.window_size))
            self.idx = 0
            self.num_yielded = 0
        else:
            self.order = state['order'].numpy().astype(np.int64) if isinstance(state['order'], torch.Tensor) else np.asarray(state['order'], dtype=np.int64)
            if sampler.shuffle:
                self.rng = np.random.RandomState()
                self.rng.set_state(_rng_state_from_dict(state['rng']))
                self.window = int(np.rint(self.length * sampler.window_size))
            self.idx = int(state['idx'])
            self.num_yielded = int(state['num_yielded'])
        self.anchors = []  # up to two (idx, num_yielded, order copy, rng state), oldest first
        self._add_anchor()

    def __iter__(self):
        return self

    def _step(self):
        # Visit global step self.idx; returns the dataset index at that step.
        pos = self.idx % self.length
        item = self.order[pos]
        if self.window >= 2:
            other = (pos - self.rng.randint(self.window)) % self.length
            self.order[pos], self.order[other] = self.order[other], self.order[pos]
        self.idx += 1
        if self.idx % self._anchor_every == 0:
            self._add_anchor()
        return item

    def __next__(self):
        while self.idx % self.num_replicas != self.rank:
            self._step()
        item = self._step()
        while self.idx % self.num_replicas != 0:
            self._step()
        self.num_yielded += 1
        return int(item)

    def _add_anchor(self):
        rng_state = self.rng.get_state() if self.rng is not None else None
        self.anchors = self.anchors[-1:] + [(self.idx, self.num_yielded, self.order.copy(), rng_state)]

    def _export(self):
        state = dict(self.config)
        state.update(num_yielded=self.num_yielded, idx=self.idx, order=torch.from_numpy(self.order.astype(np.int64)))
        state['rng'] = _rng_state_to_dict(self.rng.get_state()) if self.rng is not None else None
        return state

    def state_dict(self, num_unused):
        if num_unused == 0:
            return self._export()
        if not 0 < num_unused <= self.num_yielded:
            raise ValueError(f'InfiniteSampler.state_dict: num_unused must be in [0, {self.num_yielded}] '
                             f'(indices yielded so far), got {num_unused}')

        # Replay from the newest snapshot taken at or before the target position.
        target_idx = (self.num_yielded - num_unused) * self.num_replicas
        usable = [a for a in self.anchors if a[0] <= target_idx]
        if not usable:
            raise ValueError(f'InfiniteSampler.state_dict: cannot rewind {num_unused} indices; at most about '
                             f'{self._anchor_every // self.num_replicas} can be rewound')
        anchor_idx, _, anchor_order, anchor_rng = usable[-1]
        replay = _InfiniteSamplerIterator.__new__(_InfiniteSamplerIterator)
        replay.__dict__.update(self.__dict__)
        replay.idx = anchor_idx
        replay.order = anchor_order.copy()
        replay.anchors = []
        if anchor_rng is not None:
            replay.rng = np.random.RandomState()
            replay.rng.set_state(anchor_rng)
        while replay.idx < target_idx:
            replay._step()
        replay.num_yielded = self.num_yielded - num_unused
        return replay._export()

#----------------------------------------------------------------------------
# numpy RandomState state <-> plain dict of tensors and numbers.

def _rng_state_to_dict(rng_state):
    name, key, pos, has_gauss, cached_gaussian = rng_state
    return dict(name=name, key=torch.from_numpy(key.astype(np.int64)), pos=int(pos), has_gauss=int(has_gauss), cached_gaussian=float(cached_gaussian))

def _rng_state_from_dict(d):
    key = d['key'].numpy() if isinstance(d['key'], torch.Tensor) else np.asarray(d['key'])
    return (d['name'], key.astype(np.uint32), int(d['pos']), int(d['has_gauss']), float(d['cached_gaussian']))

#----------------------------------------------------------------------------
# Parameters followed by buffers (recursively), with or without their names.

def params_and_buffers(module):
    return [tensor for _name, tensor in named_params_and_buffers(module)]

def named_params_and_buffers(module):
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f'expected a torch.nn.Module, got {type(module).__name__}')
    return [*module.named_parameters(), *module.named_buffers()]

#----------------------------------------------------------------------------
# Copy values of same-named parameters/buffers from src_module into
# dst_module in place. Names only src has are ignored; names only dst has are
# left alone, or are an error when require_all is set.

def copy_params_and_buffers(src_module, dst_module, require_all=False):
    source = dict(named_params_and_buffers(src_module))
    targets = named_params_and_buffers(dst_module)
    with torch.no_grad():
        for name, dst in targets:
            src = source.get(name, None)
            if src is None:
                if require_all:
                    raise ValueError(f'copy_params_and_buffers: "{name}" of {type(dst_module).__name__} has no counterpart '
                                     f'in {type(src_module).__name__}; were the two built with the same options?')
                continue
            if src.shape != dst.shape:
                raise ValueError(f'copy_params_and_buffers: "{name}" has shape {list(src.shape)} in {type(src_module).__name__} '
                                 f'but {list(dst.shape)} in {type(dst_module).__name__}; were the two built with the same options?')
            dst.copy_(src.detach())

#----------------------------------------------------------------------------
# Context manager: with sync=False, skip DDP gradient all-reduce for the
# enclosed backward passes (gradient accumulation); otherwise a no-op.

def ddp_sync(module, sync):
    assert isinstance(module, torch.nn.Module)
    if not sync and isinstance(module, torch.nn.parallel.DistributedDataParallel):
        return module.no_sync()
    return contextlib.nullcontext()  # a plain object: cheaper than a generator context on every forward

#----------------------------------------------------------------------------
# Check that every parameter and buffer equals rank 0's copy (NaNs compare
# equal). Names are "<ClassName>.<param name>"; those that fully match
# ignore_regex are skipped. Needs an initialised torch.distributed group.

def check_ddp_consistency(module, ignore_regex=None):
    assert isinstance(module, torch.nn.Module)
    prefix = type(module).__name__
    for name, value in named_params_and_buffers(module):
        full_name = f'{prefix}.{name}'
        if ignore_regex is not None and re.fullmatch(ignore_regex, full_name):
            continue
        mine = value.detach()
        if mine.is_floating_point():
            mine = nan_to_num(mine)
        reference = mine.clone()
        torch.distributed.broadcast(tensor=reference, src=0)
        if not torch.equal(mine, reference):
            raise RuntimeError(f'check_ddp_consistency: {full_name} differs from the copy on rank 0')

#----------------------------------------------------------------------------
# Run module(*inputs) once and print a table of submodules (up to
# max_nesting levels deep) with their parameter and buffer counts and the
# shape and dtype of each output tensor (each row shows its own output; the
# official version repeats the first output's shape). A parameter or buffer
# is counted for the first module that finishes with it, i.e. the innermost
# one. With skip_redundant, modules that bring no new tensor are left out.
# Returns the module's outputs.

def print_module_summary(module, inputs, max_nesting=3, skip_redundant=True):
    assert isinstance(module, torch.nn.Module)
    assert not isinstance(module, torch.jit.ScriptModule)
    assert isinstance(inputs, (tuple, list))

    # Record (module, output tensors) as each call finishes, innermost first.
    records = []
    depth = [0]
    def enter(_mod, _inputs):
        depth[0] += 1
    def leave(mod, _inputs, outputs):
        depth[0] -= 1
        if depth[0] <= max_nesting:
            outputs = list(outputs) if isinstance(outputs, (tuple, list)) else [outputs]
            records.append(dnnlib.EasyDict(mod=mod, outputs=[t for t in outputs if isinstance(t, torch.Tensor)]))
    handles = []
    for mod in module.modules():
        handles.append(mod.register_forward_pre_hook(enter))
        handles.append(mod.register_forward_hook(leave))
    try:
        outputs = module(*inputs)
    finally:
        for handle in handles:
            handle.remove()

    # Attribute each parameter/buffer to the first record that sees it. A
    # record is redundant when it brings no tensor that was not seen before.
    seen = set()
    for rec in records:
        rec.params = [t for t in rec.mod.parameters() if id(t) not in seen]
        rec.buffers = [t for t in rec.mod.buffers() if id(t) not in seen]
        new_outputs = [t for t in rec.outputs if id(t) not in seen]
        rec.redundant = not (rec.params or rec.buffers or new_outputs)
        seen.update(id(t) for t in rec.params + rec.buffers + new_outputs)
    if skip_redundant:
        records = [rec for rec in records if not rec.redundant]

    # One row per output tensor (at least one per module), then the total.
    module_names = {mod: name for name, mod in module.named_modules()}
    rows = [[type(module).__name__, 'Parameters', 'Buffers', 'Output shape', 'Datatype']]
    rows.append(['---'] * len(rows[0]))
    total_params = total_buffers = 0
    for rec in records:
        name = '<top-level>' if rec.mod is module else module_names[rec.mod]
        num_params = sum(t.numel() for t in rec.params)
        num_buffers = sum(t.numel() for t in rec.buffers)
        total_params += num_params
        total_buffers += num_buffers
        outs = rec.outputs if rec.outputs else [None]
        for i, out in enumerate(outs):
            label = f'{name}:{i}' if len(outs) > 1 else name
            first = (i == 0)
            rows.append([
                label,
                (str(num_params) if num_params else '-') if first else '-',
                (str(num_buffers) if num_buffers else '-') if first else '-',
                str(list(out.shape)) if out is not None else '-',
                str(out.dtype).split('.')[-1] if out is not None else '-',
            ])
    rows.append(['---'] * len(rows[0]))
    rows.append(['Total', str(total_params), str(total_buffers), '-', '-'])

    # Print with left-aligned columns.
    widths = [max(len(row[col]) for row in rows) for col in range(len(rows[0]))]
    print()
    for row in rows:
        print('  '.join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    print()
    return outputs

#----------------------------------------------------------------------------
# Image conversion, the one place where the [-1, 1] <-> [0, 255] mapping lives.

def images_to_uint8(img):
    """Float images in [-1, 1] -> displayable uint8 pixels.

    Args:
        img: [N, C, H, W] float tensor, nominal range [-1, 1] (not clamped).
    Returns:
        [N, H, W, C] uint8 tensor on the same device, computed as
        (img * 127.5 + 128).clamp(0, 255) truncated to uint8.
    """
    if not isinstance(img, torch.Tensor) or img.ndim != 4:
        raise ValueError(f'images_to_uint8: expected a [N, C, H, W] tensor, got {_describe(img)}')
    pixels = (img.to(torch.float32) * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    return pixels.permute(0, 2, 3, 1).contiguous()

#----------------------------------------------------------------------------

def uint8_to_images(x):
    """uint8 pixels (as stored in datasets) -> float images in [-1, 1].

    Args:
        x: [N, C, H, W] uint8 tensor (or array).
    Returns:
        [N, C, H, W] float32 tensor x / 127.5 - 1, on x's device.
    """
    x = torch.as_tensor(x)
    if x.dtype != torch.uint8:
        raise TypeError(f'uint8_to_images: expected uint8 pixels, got dtype {x.dtype}')
    return x.to(torch.float32) / 127.5 - 1

#----------------------------------------------------------------------------
# Short description of a bad argument for error messages.

def _describe(obj):
    if isinstance(obj, torch.Tensor):
        return f'a tensor of shape {list(obj.shape)}'
    return type(obj).__name__

#----------------------------------------------------------------------------
# Per-rank random seed: seed * num_gpus + rank. Distinct across the ranks of
# one run, identical to `seed` for a single GPU, and the same formula the
# official training loop uses for numpy and torch seeding.

def rank_seed(seed, rank, num_gpus):
    if num_gpus < 1:
        raise ValueError(f'rank_seed: num_gpus must be >= 1, got {num_gpus}')
    if not 0 <= rank < num_gpus:
        raise ValueError(f'rank_seed: rank must be in [0, {num_gpus - 1}], got {rank}')
    return int(seed) * int(num_gpus) + int(rank)

#----------------------------------------------------------------------------
