"""Cheap scalar statistics for training: report() values anywhere, read averages through a Collector, summed across devices and processes."""

import re

import numpy as np
import torch

import dnnlib

from . import misc

#----------------------------------------------------------------------------
# Every statistic is kept as three moments: [count, sum, sum of squares].

_num_moments = 3                # [num_scalars, sum_of_scalars, sum_of_squares]
_reduce_dtype = torch.float32   # dtype in which values are summed within one report() call
_counter_dtype = torch.float64  # dtype of the accumulated moments

#----------------------------------------------------------------------------
# Module state (see reset()).

_counters = {}          # name -> device -> moments reported since the last synchronisation
_cumulative = {}        # name -> moments summed over all processes since the start (CPU)
_rank = 0               # rank of this process
_sync_device = None     # device for torch.distributed.all_reduce; None = no cross-process reduction
_sync_called = False    # set by the first synchronisation; init_multiprocessing() must come before

#----------------------------------------------------------------------------
# Configure cross-process reduction. Call once per process, before the
# first Collector.update(). sync_device=None keeps statistics local; with
# several processes pass the device that torch.distributed reduces on
# (e.g. torch.device('cuda', rank) for NCCL, torch.device('cpu') for gloo).

def init_multiprocessing(rank, sync_device):
    global _rank, _sync_device
    assert not _sync_called, 'init_multiprocessing() must be called before the first Collector.update()'
    _rank = rank
    _sync_device = sync_device

#----------------------------------------------------------------------------
# Forget all statistics and configuration (for tests).

def reset():
    global _rank, _sync_device, _sync_called
    _rank = 0
    _sync_device = None
    _sync_called = False
    _counters.clear()
    _cumulative.clear()

#----------------------------------------------------------------------------
# Add the elements of `value` (scalar, list, array or tensor of any shape)
# to statistic `name`, and return `value` unchanged. The name is registered
# even when `value` is empty. With several processes, every process must
# report the same names in the same order; report(name, []) takes part
# without contributing data.

@misc.profiled_function
def report(name, value):
    per_device = _counters.setdefault(name, dict())
    values = torch.as_tensor(value)
    if values.numel() == 0:
        return value

    # Moments in float32, accumulated in float64 on the value's own device.
    values = values.detach().flatten().to(_reduce_dtype)
    moments = torch.stack([torch.ones_like(values).sum(), values.sum(), values.square().sum()]).to(_counter_dtype)
    assert moments.shape == (_num_moments,)
    counter = per_device.get(moments.device, None)
    if counter is None:
        per_device[moments.device] = moments
    else:
        counter.add_(moments)
    return value

#----------------------------------------------------------------------------
# Like report(), but only rank 0 contributes data; other ranks register the name.

def report0(name, value):
    report(name, value if _rank == 0 else [])
    return value

#----------------------------------------------------------------------------
# Reads statistics whose names fully match `regex`. update() takes in what
# was reported (on all processes) since the previous update(); num/mean/std
# then describe that interval. With keep_previous, a statistic that received
# nothing in the interval keeps its previous values instead of becoming empty.

class Collector:
    def __init__(self, regex='.*', keep_previous=True):
        self._regex = re.compile(regex)
        self._keep_previous = keep_previous
        self._seen = dict()     # name -> cumulative moments at the previous update()
        self._moments = dict()  # name -> moments of the latest interval
        self.update()           # skip whatever was reported before this collector existed
        self._moments.clear()

    def names(self):
        """Reported names that match the regex, in the order they were first reported."""
        return [name for name in _counters if self._regex.fullmatch(name)]

    def update(self):
        """Synchronise (a collective call when multiprocessing) and start a new interval."""
        if not self._keep_previous:
            self._moments.clear()
        for name, total in _sync(self.names()):
            previous = self._seen.get(name, None)
            delta = total.clone() if previous is None else total - previous
            self._seen[name] = total.clone()
            if delta[0] != 0:
                self._moments[name] = delta

    def _interval(self, name):
        assert self._regex.fullmatch(name), f'"{name}" does not match the regex of this Collector'
        moments = self._moments.get(name, None)
        if moments is None:
            moments = torch.zeros([_num_moments], dtype=_counter_dtype)
            self._moments[name] = moments
        return moments

    def num(self, name):
        """Number of scalars reported in the interval."""
        return int(self._interval(name)[0])

    def mean(self, name):
        """Mean of the interval's scalars (NaN if there were none)."""
        count, total, _ = self._interval(name).tolist()
        if int(count) == 0:
            return float('nan')
        return total / count

    def std(self, name):
        """Standard deviation of the interval's scalars (NaN if none or not finite, 0 for one)."""
        count, total, total_sq = self._interval(name).tolist()
        if int(count) == 0 or not np.isfinite(total):
            return float('nan')
        if int(count) == 1:
            return float(0)
        mean = total / count
        return float(np.sqrt(max(total_sq / count - mean * mean, 0)))

    def as_dict(self):
        """EasyDict name -> EasyDict(num, mean, std) for every matching name."""
        result = dnnlib.EasyDict()
        for name in self.names():
            result[name] = dnnlib.EasyDict(num=self.num(name), mean=self.mean(name), std=self.std(name))
        return result

    def __getitem__(self, name):
        return self.mean(name)

#----------------------------------------------------------------------------
# Move everything reported for `names` since the last call into the global
# cumulative totals: sum over devices, then over processes (all_reduce, if
# a sync device is set). Returns [(name, cumulative moments)] in order.

def _sync(names):
    global _sync_called
    if len(names) == 0:
        return []
    _sync_called = True

    # Sum this process's counters (over devices) and zero them.
    device = _sync_device if _sync_device is not None else torch.device('cpu')
    deltas = torch.zeros([len(names), _num_moments], dtype=_counter_dtype, device=device)
    for row, name in enumerate(names):
        for counter in _counters[name].values():
            deltas[row].add_(counter.to(device))
            counter.zero_()

    # Sum over processes.
    if _sync_device is not None:
        torch.distributed.all_reduce(deltas)

    # Add to the running totals.
    deltas = deltas.cpu()
    result = []
    for row, name in enumerate(names):
        total = _cumulative.get(name, None)
        if total is None:
            total = torch.zeros([_num_moments], dtype=_counter_dtype)
            _cumulative[name] = total
        total.add_(deltas[row])
        result.append((name, total))
    return result

#----------------------------------------------------------------------------
