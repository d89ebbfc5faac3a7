"""Metric registry, the official metrics, evaluation of one or several metrics (sharing feature passes), and metric-<name>.jsonl reporting."""

import inspect
import json
import os
import time

import torch

import dnnlib

from . import frechet_inception_distance
from . import inception_score
from . import kernel_inception_distance
from . import metric_utils
from . import perceptual_path_length
from . import precision_recall
from . import toy_metrics

#----------------------------------------------------------------------------
# The registry: metric name -> function(opts) returning {result name: value}.
# Result names start with the metric name.

_metric_dict = dict()
_option_dict = dict()       # option name -> MetricOption, in registration order
_metric_options = dict()    # metric name -> names of its extra options

#----------------------------------------------------------------------------
# An extra option of some metrics: something they need beyond MetricOptions
# (e.g. a file to evaluate against). calc_metrics.py offers each registered
# option as the flag --<name with dashes>, loads the value once with `load`
# and passes it on; the metric reads opts.extra.get(name) (None = not given).

class MetricOption:
    def __init__(self,
        name,               # Python name, e.g. 'reference_file'; the flag is --reference-file.
        help,               # Help text of the flag (what, where it comes from, the default).  # pylint: disable=redefined-builtin
        metavar = 'VALUE',  # Placeholder of the value in --help.
        load    = None,     # Callable(text) -> the value the metrics get; raises OSError / ValueError with a message. None = the text.
    ):
        if not (isinstance(name, str) and name.isidentifier()):
            raise ValueError(f'MetricOption: name must be a Python identifier, got {name!r}')
        if name in _METRIC_OPTIONS_ARGS:
            raise ValueError(f'MetricOption: "{name}" is already an argument of MetricOptions; choose another name')
        self.name, self.help, self.metavar, self.load = name, str(help), str(metavar), load

    @property
    def flag(self):
        return '--' + self.name.replace('_', '-')

    def _key(self):
        load = None if self.load is None else (getattr(self.load, '__module__', None), getattr(self.load, '__qualname__', repr(self.load)))
        return (self.name, self.help, self.metavar, load)

    def __repr__(self):
        return f'MetricOption({self.flag}, metavar={self.metavar!r})'

_METRIC_OPTIONS_ARGS = frozenset(inspect.signature(metric_utils.MetricOptions).parameters) - {'extra'}

# Decorator: register fn under fn.__name__, with the extra options it reads.
# Use as @register_metric or @register_metric(options=[MetricOption(...)]).
# Registering another function under a taken name, or another option under a
# taken option name, is an error; the same again (e.g. a module reload) is fine.
def register_metric(fn=None, *, options=()):
    if fn is None:
        return lambda f: register_metric(f, options=options)
    if not callable(fn):
        raise TypeError(f'register_metric: expected a function, got {type(fn).__name__}')
    name = fn.__name__
    old = _metric_dict.get(name)
    if old is not None and (old.__module__, old.__qualname__) != (fn.__module__, fn.__qualname__):
        raise ValueError(f'Metric "{name}" is already registered by {old.__module__}; choose another function name')
    for option in options:
        if not isinstance(option, MetricOption):
            raise TypeError(f'register_metric: options of "{name}" must be MetricOption objects, got {type(option).__name__}')
        taken = _option_dict.get(option.name)
        if taken is not None and taken._key() != option._key():  # pylint: disable=protected-access
            raise ValueError(f'Metric option "{option.name}" is already registered with other settings; choose another name')
    for option in options:
        _option_dict.setdefault(option.name, option)
    _metric_dict[name] = fn
    _metric_options[name] = [option.name for option in options]
    return fn

# The registered extra options: all of them, or those of the given metrics, in registration order.
def list_metric_options(metrics=None):
    if metrics is None:
        return list(_option_dict.values())
    used = {option for metric in metrics for option in _metric_options.get(metric, [])}
    return [option for name, option in _option_dict.items() if name in used]

def is_valid_metric(metric):
    return metric in _metric_dict

# Names in registration order (official metrics first).
def list_valid_metrics():
    return list(_metric_dict.keys())

def _check_metric_names(metrics):
    for metric in metrics:
        if not is_valid_metric(metric):
            raise ValueError(f'Unknown metric "{metric}"; valid metrics: {", ".join(list_valid_metrics())}')

#----------------------------------------------------------------------------
# Evaluate one metric. kwargs: MetricOptions arguments (G, G_kwargs,
# dataset_kwargs, num_gpus, rank, device, progress, cache, seed, snapshot, ...)
# and the registered extra options (list_metric_options). Returns
# EasyDict(results, metric, total_time, total_time_str, num_gpus).

def calc_metric(metric, **kwargs):
    return calc_metrics([metric], **kwargs)[0]

#----------------------------------------------------------------------------
# Evaluate several metrics on the same G, generating and embedding images
# once for all metrics that need the same features (see metric_utils). Gives
# the same values as separate calc_metric() calls. Returns one result per
# metric, in order. A metric's total_time is its own time plus an equal share
# of the shared feature passes.

def calc_metrics(metrics, **kwargs):
    metrics = list(metrics)
    _check_metric_names(metrics)
    unknown = sorted(set(kwargs) - _METRIC_OPTIONS_ARGS - set(_option_dict))
    if unknown:
        raise TypeError(f'calc_metrics: unknown argument(s) {", ".join(unknown)}; MetricOptions takes {", ".join(sorted(_METRIC_OPTIONS_ARGS))}'
                        f' and the registered metric options are {", ".join(_option_dict) or "none"}')
    num_gpus = kwargs.get('num_gpus', 1)

    # Plan: run each metric up to its feature request; metrics without one finish here.
    results = [None] * len(metrics)
    times = [0.0] * len(metrics)
    plans = dict()  # position -> requests
    for pos, metric in enumerate(metrics):
        opts = metric_utils.MetricOptions(**kwargs)
        opts.plan = []
        start = time.time()
        try:
            results[pos] = _run_metric(metric, opts)
        except metric_utils.FeaturesPlanned:
            plans[pos] = opts.plan
        times[pos] += time.time() - start

    # Serve all planned requests together; equal requests are computed once.
    store = dict()
    if plans:
        opts = metric_utils.MetricOptions(**kwargs)
        unique = dict()
        for reqs in plans.values():
            for req in reqs:
                unique.setdefault(req.key(), req)
        start = time.time()
        for key, stats in zip(unique, metric_utils.compute_feature_stats(opts, list(unique.values()))):
            store[key] = stats
        shared_time = time.time() - start
        for pos in plans:
            times[pos] += shared_time / len(plans)

    # Finish the planned metrics with the served features.
    for pos in plans:
        opts = metric_utils.MetricOptions(**kwargs)
        opts.feature_store = store
        start = time.time()
        results[pos] = _run_metric(metrics[pos], opts)
        times[pos] += time.time() - start

    # Package; with several processes everyone reports rank 0's values.
    out = []
    for metric, values, total_time in zip(metrics, results, times):
        if num_gpus > 1:
            values = {name: _broadcast_float(value, kwargs) for name, value in values.items()}
        out.append(dnnlib.EasyDict(
            results=dnnlib.EasyDict(values),
            metric=metric,
            total_time=total_time,
            total_time_str=dnnlib.util.format_time(total_time),
            num_gpus=num_gpus,
        ))
    return out

def _run_metric(metric, opts):
    values = _metric_dict[metric](opts)
    if not isinstance(values, dict):
        raise TypeError(f'Metric "{metric}" returned a {type(values).__name__}; a metric function must return a dict of result values')
    return {name: float(value) for name, value in values.items()}

def _broadcast_float(value, kwargs):
    device = kwargs.get('device')
    device = torch.device(device) if device is not None else metric_utils.default_device(kwargs.get('rank', 0))
    t = torch.as_tensor(value, dtype=torch.float64, device=device)
    torch.distributed.broadcast(t, src=0)
    return float(t.cpu())

#----------------------------------------------------------------------------
# Print a result and append it to <run_dir>/metric-<name>.jsonl (when run_dir
# is an existing folder). snapshot_pkl is stored relative to run_dir.

def report_metric(result_dict, run_dir=None, snapshot_pkl=None):
    metric = result_dict['metric']
    if run_dir is not None and snapshot_pkl is not None:
        snapshot_pkl = os.path.relpath(snapshot_pkl, run_dir)
    line = json.dumps(dict(result_dict, snapshot_pkl=snapshot_pkl, timestamp=time.time()))
    print(line)
    if run_dir is not None and os.path.isdir(run_dir):
        with open(os.path.join(run_dir, f'metric-{metric}.jsonl'), 'at') as f:
            f.write(line + '\n')

#----------------------------------------------------------------------------
# The metric families with the official settings (50k generated images).
# "_full" metrics use every real image without mirroring; the legacy ones at
# most 50k reals, mirrored as in the training data.

_NUM_GEN = 50000

def _use_reals(opts, keep_xflip):
    opts.dataset_kwargs.update(max_size=None)
    if not keep_xflip:
        opts.dataset_kwargs.update(xflip=False)

def _fid(opts, name, max_real, keep_xflip=False):
    _use_reals(opts, keep_xflip)
    return {name: frechet_inception_distance.compute_fid(opts, max_real=max_real, num_gen=_NUM_GEN)}

def _kid(opts, name, max_real, keep_xflip=False):
    _use_reals(opts, keep_xflip)
    return {name: kernel_inception_distance.compute_kid(opts, max_real=max_real, num_gen=_NUM_GEN, num_subsets=100, max_subset_size=1000)}

def _pr(opts, name, max_real, keep_xflip=False):
    _use_reals(opts, keep_xflip)
    precision, recall = precision_recall.compute_pr(opts, max_real=max_real, num_gen=_NUM_GEN, nhood_size=3,
                                                    row_batch_size=10000, col_batch_size=10000)
    return {f'{name}_precision': precision, f'{name}_recall': recall}

def _is(opts, name):
    _use_reals(opts, keep_xflip=False)
    mean, std = inception_score.compute_is(opts, num_gen=_NUM_GEN, num_splits=10)
    return {f'{name}_mean': mean, f'{name}_std': std}

def _ppl(opts, name, space, sampling, crop):
    return {name: perceptual_path_length.compute_ppl(opts, num_samples=_NUM_GEN, epsilon=1e-4, space=space,
                                                     sampling=sampling, crop=crop, batch_size=2)}

#----------------------------------------------------------------------------
# The official metrics, in the official registration order.

@register_metric
def fid50k_full(opts):
    return _fid(opts, 'fid50k_full', max_real=None)

@register_metric
def kid50k_full(opts):
    return _kid(opts, 'kid50k_full', max_real=1000000)

@register_metric
def pr50k3_full(opts):
    return _pr(opts, 'pr50k3_full', max_real=200000)

@register_metric
def ppl2_wend(opts):
    return _ppl(opts, 'ppl2_wend', space='w', sampling='end', crop=False)

@register_metric
def is50k(opts):
    return _is(opts, 'is50k')

@register_metric
def fid50k(opts):
    return _fid(opts, 'fid50k', max_real=50000, keep_xflip=True)

@register_metric
def kid50k(opts):
    return _kid(opts, 'kid50k', max_real=50000, keep_xflip=True)

@register_metric
def pr50k3(opts):
    return _pr(opts, 'pr50k3', max_real=50000, keep_xflip=True)

@register_metric
def ppl_zfull(opts):
    return _ppl(opts, 'ppl_zfull', space='z', sampling='full', crop=True)

@register_metric
def ppl_wfull(opts):
    return _ppl(opts, 'ppl_wfull', space='w', sampling='full', crop=True)

@register_metric
def ppl_zend(opts):
    return _ppl(opts, 'ppl_zend', space='z', sampling='end', crop=True)

@register_metric
def ppl_wend(opts):
    return _ppl(opts, 'ppl_wend', space='w', sampling='end', crop=True)

#----------------------------------------------------------------------------
# Toy lab metric (2-D points, docs/toy-lab.md): EMD, modes covered, HQ fraction,
# KL and DDS of 2,000 generated against 2,000 data points.

@register_metric
def toy2k(opts):
    return {f'toy2k_{name}': value for name, value in toy_metrics.compute_toy_scores(opts, num=toy_metrics.NUM_POINTS).items()}

#----------------------------------------------------------------------------
# The papers' evaluation protocols (fid5k, is5k, mode10k, miss100k, msssim10k,
# dc50k5_full, fid50k_full_r101, fid5k_r101), registered after the official ones.

from . import paper_metrics  # noqa: E402,F401  pylint: disable=wrong-import-position

#----------------------------------------------------------------------------
