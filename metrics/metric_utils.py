"""Shared machinery of the metrics: options, feature detectors, float64 feature statistics, seeded generator sampling and the feature pass that serves several metrics at once.

One pass for many metrics
-------------------------
Most metrics are a formula over features of images: Inception features of
real and generated images (FID, KID), Inception probabilities (IS), VGG16
features (precision/recall). Generating 50k images and embedding them is the
expensive part, and several metrics often need the very same images. So a
metric does not extract features itself; it *declares* what it needs and gets
the statistics back:

    stats = metric_utils.get_feature_stats(opts, dict(
        real=metric_utils.dataset_request(opts, INCEPTION_URL, dict(return_features=True), max_items=None, capture_mean_cov=True),
        gen=metric_utils.generator_request(opts, INCEPTION_URL, dict(return_features=True), num_gen=50000, capture_mean_cov=True)))
    mu_gen, sigma_gen = stats['gen'].get_mean_cov()

A `FeatureRequest` names
  - the image source: 'dataset' (opts.dataset_kwargs) or 'generator' (opts.G
    with opts.G_kwargs, per-sample seeded from opts.seed),
  - the detector: a URL or local path of a TorchScript file, or a
    torch.nn.Module object (for example a frozen or differentiable feature
    extractor of a plugin), plus the keyword arguments it is called with,
  - how many items, and which statistics to keep (all rows and/or float64
    mean and covariance).

`metric_main.calc_metrics(metrics, ...)` evaluates several metrics together
in three steps:
  1. Plan: it runs every metric function with `opts.plan` set. The function's
     call to `get_feature_stats` records its requests and raises
     `FeaturesPlanned`, which stops the function there (metric functions must
     therefore ask for all their features in one call, before any other
     expensive work, and must not swallow that exception). A metric that never
     calls `get_feature_stats` (e.g. PPL) simply finishes during this step.
  2. Serve: `compute_feature_stats` groups all recorded requests by image
     source (same dataset kwargs; or same G_kwargs, seed and label source).
     Each group is one pass over the images, as long as its largest request.
     Inside a pass every distinct (detector, detector kwargs, input format) is
     run once per batch and its features go to every request that uses it;
     each request has its own accumulator, which stops at its own max_items.
     Dataset requests are looked up in the disk cache first.
  3. Finish: every deferred metric function runs again with the served
     statistics in `opts.feature_store`; its `get_feature_stats` call now
     returns at once and the formula runs. (A metric may call
     get_feature_stats again later, e.g. with a detector fitted on the first
     result; such later requests are computed when reached, unshared.)
Generated samples are seeded per sample index (latents, labels and noise;
see `LatentSampler`) and images are embedded in full batches from index 0,
so the first n items of a longer pass are exactly the items a separate
n-item pass would see: shared and separate evaluation give the same numbers.

Extending: a new metric (for instance a log-likelihood of generated features
under a fitted density) registers a function with
`metric_main.register_metric` (with the extra options it reads, see
`metric_main.MetricOption`) and asks for its features through
`get_feature_stats`; a module detector is called as `detector(images,
**detector_kwargs)` on opts.device (move it there yourself) and must return
[N, F] features. Module detectors are identified by class name and a hash of
their parameters and buffers, so the same weights share passes and cache.

Detectors are loaded from (first match wins): the file named by the
environment variable SG2ADA_DETECTOR_<NAME> (NAME = file stem in upper case,
other characters as '_', e.g. SG2ADA_DETECTOR_INCEPTION_2015_12_05);
<NAME>.pt inside the folder $SG2ADA_DETECTOR_DIR; a local path given instead
of a URL; the dnnlib download cache (official layout,
<cache>/downloads/<md5(url)>_<name>); a download.
"""

import contextlib
import copy
import hashlib
import os
import pickle
import re
import time
import urllib.parse
import warnings

import numpy as np
import torch

import dnnlib
from torch_utils import built_files
from torch_utils import misc
from torch_utils import safe_load
from training import sampling

#----------------------------------------------------------------------------
# The official detectors (TorchScript).

INCEPTION_URL = 'https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt'
VGG16_URL = 'https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/vgg16.pt'

DETECTOR_ENV_PREFIX = 'SG2ADA_DETECTOR_'
DETECTOR_DIR_ENV = 'SG2ADA_DETECTOR_DIR'

#----------------------------------------------------------------------------
# Everything a metric function needs to know about what to evaluate.

class MetricOptions:
    def __init__(self,
        G               = None,     # Generator to evaluate (any device; a private copy is moved to `device`).
        G_kwargs        = {},       # Extra arguments of G(z, c, ...), e.g. truncation_psi or noise_mode.
        dataset_kwargs  = {},       # Real data: kwargs of construct_class_by_name (class_name, path, ...).
        num_gpus        = 1,        # Number of processes taking part.
        rank            = 0,        # This process.
        device          = None,     # None = cuda:<rank> when CUDA is available, else cpu.
        progress        = None,     # ProgressMonitor of the caller; None = silent.
        cache           = True,     # Cache dataset features on disk.
        seed            = 0,        # Seeds generated samples (latents, labels, noise) and random subsets.
        snapshot        = None,     # The loaded network pickle (dict) being evaluated, for metrics that read more than G. None = none.
        prior_sampling  = True,     # Generate through the snapshot's sample-time latent transform (training.sampling), if it has one.
        classifier      = None,     # Classifier file of the classifier metrics (mode10k, miss100k). None = $SG2ADA_CLASSIFIER.
        **extra,                    # Extra options of registered metrics (metric_main.MetricOption), read as opts.extra.get(name).
    ):
        if num_gpus < 1 or not 0 <= rank < num_gpus:
            raise ValueError(f'MetricOptions: need num_gpus >= 1 and 0 <= rank < num_gpus, got num_gpus={num_gpus}, rank={rank}')
        self.G = G
        self.G_kwargs = dnnlib.EasyDict(G_kwargs)
        self.dataset_kwargs = dnnlib.EasyDict(dataset_kwargs)
        self.num_gpus = num_gpus
        self.rank = rank
        self.device = torch.device(device) if device is not None else default_device(rank)
        self.progress = progress.sub() if (progress is not None and rank == 0) else ProgressMonitor()
        self.cache = cache
        self.seed = int(seed)
        self.snapshot = snapshot
        self.prior_sampling = bool(prior_sampling)
        self.classifier = classifier
        self.extra = dnnlib.EasyDict(extra)
        self.plan = None            # Set by the planner: get_feature_stats() records requests here.
        self.feature_store = None   # Set by the planner: request key -> FeatureStats served in advance.

# cuda:<rank> when CUDA is available, else the CPU.
def default_device(rank=0):
    if torch.cuda.is_available():
        return torch.device('cuda', rank % max(torch.cuda.device_count(), 1))
    return torch.device('cpu')

#----------------------------------------------------------------------------
# Progress printing (and an optional callback) for long loops. sub() makes a
# monitor for a part of the work that reports into a sub-range of this one.

class ProgressMonitor:
    def __init__(self, tag=None, num_items=None, flush_interval=1000, verbose=False, progress_fn=None, pfn_lo=0, pfn_hi=1000, pfn_total=1000):
        self.tag = tag
        self.num_items = num_items
        self.flush_interval = flush_interval
        self.verbose = verbose
        self.progress_fn = progress_fn
        self.pfn_lo, self.pfn_hi, self.pfn_total = pfn_lo, pfn_hi, pfn_total
        self.start_time = time.time()
        self.last_time = self.start_time
        self.last_items = 0
        if progress_fn is not None:
            progress_fn(pfn_lo, pfn_total)

    def update(self, cur_items):
        done = self.num_items is not None and cur_items >= self.num_items
        if not done and cur_items < self.last_items + self.flush_interval:
            return
        now = time.time()
        if self.verbose and self.tag is not None:
            ms_per_item = (now - self.last_time) / max(cur_items - self.last_items, 1) * 1e3
            print(f'{self.tag:<19s} items {cur_items:<7d} time {dnnlib.util.format_time(now - self.start_time):<12s} ms/item {ms_per_item:.2f}')
        self.last_time, self.last_items = now, cur_items
        if self.progress_fn is not None and self.num_items:
            frac = min(cur_items / self.num_items, 1)
            self.progress_fn(self.pfn_lo + (self.pfn_hi - self.pfn_lo) * frac, self.pfn_total)

    def sub(self, tag=None, num_items=None, flush_interval=1000, rel_lo=0, rel_hi=1):
        span = self.pfn_hi - self.pfn_lo
        return ProgressMonitor(tag=tag, num_items=num_items, flush_interval=flush_interval, verbose=self.verbose,
                               progress_fn=self.progress_fn, pfn_lo=self.pfn_lo + span * rel_lo,
                               pfn_hi=self.pfn_lo + span * rel_hi, pfn_total=self.pfn_total)

#----------------------------------------------------------------------------
# A metric that cannot run with the options it was given (e.g. a prior metric
# without a prior); the message says what to pass. `option` names the metric
# option at fault (e.g. 'prior_file') so that a CLI can name its flag; the
# message itself names no flag. CLIs show it as a usage error.

class MetricOptionsError(ValueError):
    def __init__(self, message, option=None):
        super().__init__(message)
        self.option = option

#----------------------------------------------------------------------------
# A detector file that cannot be found or downloaded. An OSError (missing
# file, no network) that is also a ValueError (our user-error convention).

class DetectorUnavailableError(OSError, ValueError):
    pass

# Short name of a detector: the file stem of its URL or path ('inception-2015-12-05').
def get_feature_detector_name(url):
    return os.path.splitext(os.path.basename(urllib.parse.urlparse(url).path or url))[0]

# Environment variable that points to a local copy of a detector.
def detector_env_var(url):
    return DETECTOR_ENV_PREFIX + re.sub(r'[^0-9A-Z]', '_', get_feature_detector_name(url).upper())

# Local file of a detector given by URL or path (see the module docstring for the order).
def resolve_detector_file(url, verbose=False):
    name = get_feature_detector_name(url)
    env_var = detector_env_var(url)
    override = os.environ.get(env_var)
    if override:
        if not os.path.isfile(override):
            raise DetectorUnavailableError(f'{env_var}={override}: file not found; point it to a local copy of {name}.pt')
        return override
    folder = os.environ.get(DETECTOR_DIR_ENV)
    if folder and os.path.isfile(os.path.join(folder, name + '.pt')):
        return os.path.join(folder, name + '.pt')
    if not re.match(r'^[a-z]+://', url):
        if not os.path.isfile(url):
            raise DetectorUnavailableError(f'Feature detector file not found: "{url}"')
        return url
    try:
        return dnnlib.util.open_url(url, verbose=verbose, return_filename=True)
    except OSError as err:
        raise DetectorUnavailableError(
            f'Cannot load the feature detector "{name}" from {url} ({err.__class__.__name__}). To use a local copy, '
            f'set {env_var}=/path/to/{name}.pt, or put {name}.pt in the folder named by {DETECTOR_DIR_ENV}, or copy it '
            f'to the download cache {dnnlib.util.make_cache_dir_path("downloads")} as described in the error below: {err}') from err

#----------------------------------------------------------------------------
# The official detectors are TorchScript files; recent torch warns that
# torch.jit is deprecated on every load, which says nothing to a user here.

@contextlib.contextmanager
def _quiet_torchscript():
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message=r'`torch\.jit\.\w+` is deprecated', category=DeprecationWarning)
        yield

#----------------------------------------------------------------------------
# Loaded TorchScript detectors, per (file, device). Reloading a 100 MB detector
# at every training snapshot would be wasteful; reset_detector_cache() empties it.

_detector_cache = dict()

def reset_detector_cache():
    _detector_cache.clear()

# Load a TorchScript detector by URL or path onto `device`. With several
# processes, rank 0 goes first so that only it downloads.
def get_feature_detector(url, device=torch.device('cpu'), num_gpus=1, rank=0, verbose=False):
    device = torch.device(device)
    if num_gpus > 1 and rank != 0:
        torch.distributed.barrier()
    try:
        path = resolve_detector_file(url, verbose=(verbose and rank == 0))
        key = (os.path.abspath(path), str(device))
        if key not in _detector_cache:
            try:
                with _quiet_torchscript():
                    detector = torch.jit.load(path, map_location='cpu')
            except RuntimeError as err:
                raise DetectorUnavailableError(f'"{path}" is not a TorchScript feature detector ({err}); '
                                               f'replace it with the file from {url}') from err
            _detector_cache[key] = detector.eval().to(device)
    finally:
        if num_gpus > 1 and rank == 0:
            torch.distributed.barrier()
    return _detector_cache[key]

#----------------------------------------------------------------------------
# Running statistics of feature vectors: all rows (float32) and/or the sums
# needed for mean and covariance (float64). Data past max_items is dropped.

class FeatureStats:
    def __init__(self, capture_all=False, capture_mean_cov=False, max_items=None):
        self.capture_all, self.capture_mean_cov, self.max_items = capture_all, capture_mean_cov, max_items
        self.num_items, self.num_features = 0, None
        # Storage, made by the first append(): all_features = list of float32 [n, F]
        # arrays, raw_mean = float64 [F] sum of rows, raw_cov = float64 [F, F] sum of x x^T.
        self.all_features = self.raw_mean = self.raw_cov = None

    def set_num_features(self, num_features):
        if self.num_features is None:
            self.num_features = num_features
            self.all_features = []
            self.raw_mean = np.zeros([num_features], np.float64)
            self.raw_cov = np.zeros([num_features, num_features], np.float64)
        elif num_features != self.num_features:
            raise ValueError(f'FeatureStats: got {num_features} features per item after {self.num_features}')

    def is_full(self):
        return self.max_items is not None and self.num_items >= self.max_items

    # Add rows x: [n, F]; only as many as still fit below max_items.
    def append(self, x):
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2:
            raise ValueError(f'FeatureStats.append: expected [N, F] features, got shape {list(x.shape)}')
        self.set_num_features(x.shape[1])
        room = x.shape[0] if self.max_items is None else max(self.max_items - self.num_items, 0)
        x = x[:room]
        if len(x) == 0:
            return
        self.num_items += len(x)
        if self.capture_mean_cov:
            x64 = x.astype(np.float64)
            self.raw_cov += x64.T @ x64  # float64 sums, so 50k items lose no precision
            self.raw_mean += x64.sum(axis=0)
        if self.capture_all:
            self.all_features.append(x)

    # Add a torch batch; with several processes, the batches of all ranks, interleaved by rank.
    def append_torch(self, x, num_gpus=1, rank=0):
        assert isinstance(x, torch.Tensor) and x.ndim == 2
        self.append(gather_interleaved(x, num_gpus).cpu().numpy())

    def get_all(self):
        if not self.capture_all:
            raise ValueError('FeatureStats.get_all: these statistics were made with capture_all=False')
        if not self.all_features:
            return np.zeros([0, self.num_features or 0], dtype=np.float32)
        return np.concatenate(self.all_features, axis=0)

    def get_all_torch(self):
        return torch.from_numpy(self.get_all())

    # Mean [F] and biased covariance [F, F], float64.
    def get_mean_cov(self):
        if not self.capture_mean_cov:
            raise ValueError('FeatureStats.get_mean_cov: these statistics were made with capture_mean_cov=False')
        if self.num_items == 0:
            raise ValueError('FeatureStats.get_mean_cov: no items were added')
        mean = self.raw_mean / self.num_items
        cov = self.raw_cov / self.num_items - np.outer(mean, mean)
        return mean, cov

    def save(self, pkl_file):
        with dnnlib.util.atomic_write(pkl_file, 'wb') as f:
            pickle.dump(dict(self.__dict__), f)

    @staticmethod
    def load(pkl_file):
        with open(pkl_file, 'rb') as f:
            try:  # arrays and numbers only: a cache file never runs code when read (torch_utils.safe_load)
                state = safe_load.load_plain_pickle(f, what='feature cache file', trust=False)
            except safe_load.FileLoadError as err:
                raise ValueError(f'{err}; delete it to recompute the features') from None
        obj = FeatureStats()
        obj.__dict__.update(state)
        return obj

#----------------------------------------------------------------------------
# Collectives (no-ops in a single process).

# Rows of every rank's x, interleaved (rank 0 row 0, rank 1 row 0, ...): sample order.
def gather_interleaved(x, num_gpus):
    if num_gpus == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(num_gpus)]
    torch.distributed.all_gather(parts, x.contiguous())
    return torch.stack(parts, dim=1).flatten(0, 1)

# Rank 0's value of a flag, on every rank.
def broadcast_flag(flag, opts):
    if opts.num_gpus == 1:
        return bool(flag)
    t = torch.as_tensor(float(flag), dtype=torch.float32, device=opts.device)
    torch.distributed.broadcast(t, src=0)
    return bool(t.item())

#----------------------------------------------------------------------------
# Per-sample random numbers: sample `index` of a run seeded with `seed` always
# gets the same stream, whatever the batch size or number of processes.

def sample_rng(seed, index):
    return np.random.default_rng([int(index), int(seed)])

# Seeded inputs of G for any set of sample indices. For each sample the stream
# is drawn in this order: [t (PPL only)], z (z_dim normals, num_z times), a
# label index into the dataset (conditional G only), a noise seed (only with
# per-sample noise). Per-sample noise replaces noise_mode='random': each
# layer's noise image is drawn from a torch generator seeded by the sample and
# written into the noise_const buffers of a private copy of G, which is then run
# with noise_mode='const'. That equals 'random' in distribution but does not
# depend on batch composition.

class LatentSampler:
    def __init__(self, G, seed, G_kwargs={}, dataset_kwargs=None, device=torch.device('cpu'), transform=None):
        # G: the private copy that will be run; dataset_kwargs: source of labels (conditional G only);
        # transform: sample-time latent transform (training.sampling.SampleTransform) applied per batch, or None.
        self.G = G
        self.transform = transform
        self.seed = int(seed)
        self.device = torch.device(device)
        self.z_dim = int(G.z_dim)
        self.c_dim = int(getattr(G, 'c_dim', 0))
        self.noise_layers = [m for m in G.modules() if isinstance(m._buffers.get('noise_const'), torch.Tensor)]
        self.noise_shapes = [tuple(m.noise_const.shape) for m in self.noise_layers]
        self.per_sample_noise = len(self.noise_layers) > 0 and G_kwargs.get('noise_mode', 'random') == 'random'
        self.G_kwargs = dict(G_kwargs, noise_mode='const') if self.per_sample_noise else dict(G_kwargs)
        self.labels = None
        if self.c_dim > 0:
            self.labels = _LabelSource(dataset_kwargs, self.c_dim)

    # Seeded inputs of samples `indices`: EasyDict(t [N] or None, z [N, z_dim] (a list if num_z > 1), c [N, c_dim], noise).
    def draw(self, indices, num_z=1, draw_t=False):
        ts, zs, label_idx, noise_seeds = [], [], [], []
        for index in indices:
            rng = sample_rng(self.seed, index)
            ts.append(rng.uniform() if draw_t else 0.0)
            zs.append([rng.standard_normal(self.z_dim) for _ in range(num_z)])
            label_idx.append(self.labels.draw_index(rng) if self.labels is not None else 0)
            noise_seeds.append(int(rng.integers(2**62)) if self.per_sample_noise else 0)
        out = dnnlib.EasyDict()
        out.t = torch.tensor(ts, dtype=torch.float32, device=self.device) if draw_t else None
        z = [torch.tensor(np.stack([s[k] for s in zs]), dtype=torch.float32, device=self.device) for k in range(num_z)]
        out.z = z[0] if num_z == 1 else z
        if self.labels is not None:
            out.c = torch.tensor(np.stack([self.labels.get(i) for i in label_idx]), dtype=torch.float32, device=self.device)
        else:
            out.c = torch.zeros([len(indices), self.c_dim], device=self.device)
        out.noise = self._draw_noise(noise_seeds) if self.per_sample_noise else None
        return out

    def _draw_noise(self, noise_seeds):
        sizes = [int(np.prod(s)) for s in self.noise_shapes]
        per_layer = [[] for _ in sizes]
        for noise_seed in noise_seeds:
            flat = _seeded_normal(noise_seed, sum(sizes), self.device)
            for layer, chunk in enumerate(flat.split(sizes)):
                per_layer[layer].append(chunk.reshape(1, *self.noise_shapes[layer]))
        return [torch.stack(chunks) for chunks in per_layer]  # each [N, 1, *shape]

    # Install per-sample noise for the next G call (rows [lo, hi) of the drawn noise, `repeat` times over).
    def set_noise(self, noise, lo=0, hi=None, repeat=1):
        if not self.per_sample_noise:
            return
        for module, layer_noise in zip(self.noise_layers, noise):
            part = layer_noise[lo:hi]
            module.noise_const = part.repeat(repeat, 1, 1, 1) if repeat > 1 else part

    # Images of samples `indices`: float32 [N, C, H, W] in about [-1, 1], made batch_gen at a time.
    def generate(self, indices, batch_gen=4):
        inputs = self.draw(indices)
        images = []
        for lo in range(0, len(indices), batch_gen):
            hi = min(lo + batch_gen, len(indices))
            self.set_noise(inputs.noise, lo, hi)
            images.append(sampling.sample(self.G, inputs.z[lo:hi], inputs.c[lo:hi], transform=self.transform, **self.G_kwargs))
        return torch.cat(images)

# `size` standard normals from a torch generator seeded with `noise_seed`, made on `device` if it can.
def _seeded_normal(noise_seed, size, device):
    try:
        gen = torch.Generator(device=device)
    except RuntimeError:
        gen = None
    if gen is None:
        gen = torch.Generator().manual_seed(noise_seed)
        return torch.randn([size], generator=gen).to(device)
    gen.manual_seed(noise_seed)
    return torch.randn([size], generator=gen, device=device)

# Labels of a dataset for conditional generation, drawn uniformly over its images.
class _LabelSource:
    def __init__(self, dataset_kwargs, c_dim):
        if not dataset_kwargs:
            raise ValueError(f'G is conditional (c_dim={c_dim}) and needs dataset labels, but no dataset_kwargs were given; pass the dataset')
        self.dataset = dnnlib.util.construct_class_by_name(**dict(dataset_kwargs, xflip=False))
        label_shape = list(self.dataset.label_shape)
        if label_shape != [c_dim]:
            raise ValueError(f'G is conditional (c_dim={c_dim}) but dataset "{self.dataset.name}" gives labels of shape {label_shape}; '
                             f'use a labelled dataset (dataset.json "labels") with use_labels=True')

    def draw_index(self, rng):
        return int(rng.integers(len(self.dataset)))

    def get(self, idx):
        return self.dataset.get_label(idx)

#----------------------------------------------------------------------------
# One kind of features a metric needs. Build it with dataset_request() or
# generator_request(); see the module docstring.

class FeatureRequest:
    def __init__(self, source, detector, detector_kwargs, max_items, capture_all, capture_mean_cov, input_format,
                 dataset_kwargs, G_kwargs=None, seed=0, batch_size=64, batch_gen=4):
        if source not in ('dataset', 'generator'):
            raise ValueError(f'FeatureRequest: source must be "dataset" or "generator", got {source!r}')
        if not (isinstance(detector, str) or isinstance(detector, torch.nn.Module)):
            raise TypeError(f'FeatureRequest: detector must be a URL, a file path or a torch.nn.Module, got {type(detector).__name__}')
        if input_format not in ('uint8', 'float'):
            raise ValueError(f'FeatureRequest: input_format must be "uint8" or "float", got {input_format!r}')
        if max_items is not None and max_items < 1:
            raise ValueError(f'FeatureRequest: max_items must be >= 1 or None, got {max_items}')
        if not (capture_all or capture_mean_cov):
            raise ValueError('FeatureRequest: set capture_all and/or capture_mean_cov, otherwise nothing is kept')
        self.source = source
        self.detector = detector
        self.detector_id = detector if isinstance(detector, str) else _module_fingerprint(detector)
        self.detector_name = get_feature_detector_name(detector) if isinstance(detector, str) else type(detector).__name__
        self.detector_kwargs = dict(detector_kwargs)
        self.max_items = max_items
        self.capture_all = bool(capture_all)
        self.capture_mean_cov = bool(capture_mean_cov)
        self.input_format = input_format
        self.dataset_kwargs = dict(dataset_kwargs) if dataset_kwargs is not None else None
        self.G_kwargs = dict(G_kwargs) if G_kwargs is not None else None
        self.seed = int(seed)
        self.batch_size = int(batch_size)
        self.batch_gen = int(batch_gen)
        if batch_size % batch_gen != 0:
            raise ValueError(f'FeatureRequest: batch_size={batch_size} must be a multiple of batch_gen={batch_gen}')

    # Requests with equal pass keys read the same images (one pass serves them all).
    def pass_key(self):
        if self.source == 'dataset':
            return ('dataset', _canonical(self.dataset_kwargs), self.batch_size)
        return ('generator', self.seed, _canonical(self.G_kwargs), _canonical(self.dataset_kwargs), self.batch_size, self.batch_gen)

    # Requests with equal pass and embed keys get the same feature rows.
    def embed_key(self):
        return (self.detector_id, _canonical(self.detector_kwargs), self.input_format)

    # Identity of the whole request (planner bookkeeping).
    def key(self):
        return (self.pass_key(), self.embed_key(), self.max_items, self.capture_all, self.capture_mean_cov)

    # Dataset feature cache: the file holding this request's statistics.
    def cache_file(self, dataset_name):
        spec = dict(dataset_kwargs=self.dataset_kwargs, detector_url=self.detector_id, detector_kwargs=self.detector_kwargs,
                    input_format=self.input_format, max_items=self.max_items,
                    stats_kwargs=dict(capture_all=self.capture_all, capture_mean_cov=self.capture_mean_cov))
        digest = hashlib.md5(_canonical(spec).encode('utf-8')).hexdigest()
        return dnnlib.make_cache_dir_path('gan-metrics', f'{dataset_name}-{self.detector_name}-{digest}.pkl')

    def new_stats(self, num_items):
        limit = num_items if self.max_items is None else min(self.max_items, num_items)
        return FeatureStats(capture_all=self.capture_all, capture_mean_cov=self.capture_mean_cov, max_items=limit)

# Features of real images (opts.dataset_kwargs as it is now); max_items None = the whole dataset.
def dataset_request(opts, detector, detector_kwargs, max_items=None, capture_all=False, capture_mean_cov=False,
                    input_format='uint8', batch_size=64):
    return FeatureRequest('dataset', detector, detector_kwargs, max_items, capture_all, capture_mean_cov, input_format,
                          dataset_kwargs=opts.dataset_kwargs, batch_size=batch_size)

# Features of num_gen generated images (opts.G with opts.G_kwargs, seeded by opts.seed).
# batch_gen = images per G call; None = 4 at 256 px and above (as upstream),
# more for smaller images (64 at 32 px), at most batch_size. Values do not
# depend on it, since every sample is seeded by its index.
def generator_request(opts, detector, detector_kwargs, num_gen, capture_all=False, capture_mean_cov=False,
                      input_format='uint8', batch_size=64, batch_gen=None):
    if num_gen is None or num_gen < 1:
        raise ValueError(f'generator_request: num_gen must be >= 1, got {num_gen}')
    if batch_gen is None:
        resolution = int(getattr(opts.G, 'img_resolution', 256))
        batch_gen = min(batch_size, 4 * max(256 // resolution, 1) ** 2)
        while batch_size % batch_gen != 0:
            batch_gen -= 1
    conditional = opts.G is not None and getattr(opts.G, 'c_dim', 0) > 0
    return FeatureRequest('generator', detector, detector_kwargs, num_gen, capture_all, capture_mean_cov, input_format,
                          dataset_kwargs=(dict(opts.dataset_kwargs, xflip=False) if conditional else None),
                          G_kwargs=opts.G_kwargs, seed=opts.seed, batch_size=batch_size, batch_gen=batch_gen)

# Stable text form of nested kwargs, for keys and hashes (the same text as built files' cache keys).
_canonical = built_files.canonical_text

# Identity of a module detector: class and a hash of its parameters and buffers.
def _module_fingerprint(module):
    digest = hashlib.md5(f'{type(module).__module__}.{type(module).__qualname__}'.encode('utf-8'))
    for name, tensor in list(module.named_parameters()) + list(module.named_buffers()):
        digest.update(name.encode('utf-8'))
        digest.update(tensor.detach().to('cpu', torch.float64).contiguous().numpy().tobytes())
    return f'module:{type(module).__qualname__}:{digest.hexdigest()}'

#----------------------------------------------------------------------------
# Raised by get_feature_stats() while planning: the metric's requests are
# recorded in opts.plan and the metric function stops here for now.

class FeaturesPlanned(Exception):
    pass

# The one call through which a metric gets features. requests: dict name ->
# FeatureRequest. Returns dict name -> FeatureStats (identical on all ranks).
def get_feature_stats(opts, requests):
    if opts.plan is not None:
        opts.plan.extend(requests.values())
        raise FeaturesPlanned()
    store = opts.feature_store if opts.feature_store is not None else {}
    missing = [req for req in requests.values() if req.key() not in store]
    if missing:
        store = dict(store)
        for req, stats in zip(missing, compute_feature_stats(opts, missing)):
            store[req.key()] = stats
    return {name: store[req.key()] for name, req in requests.items()}

# Serve a list of requests in as few passes as possible (dataset requests
# from the cache where possible). Returns FeatureStats in request order.
def compute_feature_stats(opts, requests):
    results = [None] * len(requests)
    groups = dict()  # pass key -> request positions
    for pos, req in enumerate(requests):
        groups.setdefault(req.pass_key(), []).append(pos)
    for positions in groups.values():
        reqs = [requests[pos] for pos in positions]
        if reqs[0].source == 'dataset':
            stats = _serve_dataset_requests(opts, reqs)
        else:
            stats = _generator_pass(opts, reqs)
        for pos, s in zip(positions, stats):
            results[pos] = s
    return results

#----------------------------------------------------------------------------
# The passes.

# Detectors of a pass: one entry per distinct embed key, with the positions of the requests it feeds.
def _plan_embeddings(opts, reqs):
    embeddings = dict()
    for pos, req in enumerate(reqs):
        if req.embed_key() not in embeddings:
            detector = req.detector
            if isinstance(detector, str):
                detector = get_feature_detector(detector, device=opts.device, num_gpus=opts.num_gpus, rank=opts.rank,
                                                verbose=opts.progress.verbose)
            embeddings[req.embed_key()] = dnnlib.EasyDict(detector=detector, kwargs=req.detector_kwargs,
                                                          input_format=req.input_format, positions=[])
        embeddings[req.embed_key()].positions.append(pos)
    return list(embeddings.values())

# Run every embedding that still has an accumulator to fill on one batch.
# uint8_images: [N, C, H, W] uint8 on opts.device; float_images: the same as
# float in [-1, 1] (None = derive from uint8_images).
def _embed_batch(opts, embeddings, stats, uint8_images, float_images=None):
    for emb in embeddings:
        if all(stats[pos].is_full() for pos in emb.positions):
            continue
        if emb.input_format == 'uint8':
            x = uint8_images if uint8_images.shape[1] != 1 else uint8_images.repeat(1, 3, 1, 1)
        else:
            x = float_images if float_images is not None else misc.uint8_to_images(uint8_images)
        with torch.no_grad():
            features = emb.detector(x, **emb.kwargs)
        if not isinstance(features, torch.Tensor) or features.ndim != 2 or features.shape[0] != x.shape[0]:
            got = list(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__
            raise ValueError(f'Feature detector {type(emb.detector).__name__} returned {got} for {x.shape[0]} images; expected [N, F] features')
        rows = gather_interleaved(features.to(torch.float32), opts.num_gpus).cpu().numpy()
        for pos in emb.positions:
            stats[pos].append(rows)

# Index of the items rank `rank` handles in global batch `start`: [start + rank, start + rank + num_gpus, ...].
def _rank_indices(start, batch_size, num_gpus, rank, wrap=None):
    idx = start + rank + num_gpus * np.arange(batch_size)
    return idx % wrap if wrap is not None else idx

# DataLoader settings that work everywhere: worker processes and pinned memory only with CUDA.
def _default_loader_kwargs(device):
    if device.type == 'cuda':
        return dict(pin_memory=True, num_workers=3, prefetch_factor=2)
    return dict(num_workers=0)

# Dataset requests of one dataset: cache hits are loaded, misses share one pass.
def _serve_dataset_requests(opts, reqs, data_loader_kwargs=None):
    dataset = dnnlib.util.construct_class_by_name(**reqs[0].dataset_kwargs)
    results = [None] * len(reqs)
    cache_files = [req.cache_file(dataset.name) for req in reqs] if opts.cache else [None] * len(reqs)
    for pos, cache_file in enumerate(cache_files):
        if cache_file is not None and broadcast_flag(opts.rank == 0 and os.path.isfile(cache_file), opts):
            results[pos] = FeatureStats.load(cache_file)
    misses = [pos for pos in range(len(reqs)) if results[pos] is None]
    if misses:
        stats = _dataset_pass(opts, dataset, [reqs[pos] for pos in misses], data_loader_kwargs)
        for pos, s in zip(misses, stats):
            results[pos] = s
            if cache_files[pos] is not None and opts.rank == 0:
                os.makedirs(os.path.dirname(cache_files[pos]), exist_ok=True)
                s.save(cache_files[pos])
    return results

# Features of the first items of a dataset, in item order. Items are read in
# whole global batches (clipped at the end of the dataset), so a shorter
# request sees exactly the batches a longer one starts with.
def _dataset_pass(opts, dataset, reqs, data_loader_kwargs=None):
    if len(dataset) == 0:
        raise ValueError(f'Dataset "{dataset.name}" is empty; metrics need real images')
    num_items = min(len(dataset), max(req.max_items or len(dataset) for req in reqs))
    stats = [req.new_stats(num_items) for req in reqs]
    embeddings = _plan_embeddings(opts, reqs)
    batch_size = reqs[0].batch_size
    step = batch_size * opts.num_gpus
    num_read = min(len(dataset), -(-num_items // step) * step)
    order = np.concatenate([_rank_indices(start, batch_size, opts.num_gpus, opts.rank, wrap=num_read)
                            for start in range(0, num_read, step)])
    loader_kwargs = data_loader_kwargs if data_loader_kwargs is not None else _default_loader_kwargs(opts.device)
    loader = torch.utils.data.DataLoader(dataset, sampler=order.tolist(), batch_size=batch_size, **loader_kwargs)
    progress = opts.progress.sub(tag='dataset features', num_items=num_items)
    for images, _labels in loader:
        _embed_batch(opts, embeddings, stats, images.to(opts.device))
        progress.update(min(s.num_items for s in stats))
        if all(s.is_full() for s in stats):
            break
    return stats

# Features of generated images: one private copy of G, images generated once
# per batch and fed to every embedding of the group.
def _generator_pass(opts, reqs):
    if opts.G is None:
        raise ValueError('Generator features were requested but MetricOptions.G is None; pass G=<generator>')
    num_items = max(req.max_items for req in reqs)
    stats = [req.new_stats(num_items) for req in reqs]
    embeddings = _plan_embeddings(opts, reqs)
    G = copy.deepcopy(opts.G).eval().requires_grad_(False).to(opts.device)
    first = reqs[0]
    transform = sampling.load_sample_transform(opts.snapshot, enabled=opts.prior_sampling, G=G)
    sampler = LatentSampler(G, first.seed, G_kwargs=first.G_kwargs, dataset_kwargs=first.dataset_kwargs, device=opts.device,
                            transform=transform)
    step = first.batch_size * opts.num_gpus
    progress = opts.progress.sub(tag='generator features', num_items=num_items)
    with torch.no_grad():
        for start in range(0, num_items, step):
            img = sampler.generate(_rank_indices(start, first.batch_size, opts.num_gpus, opts.rank), batch_gen=first.batch_gen)
            uint8_images = misc.images_to_uint8(img).permute(0, 3, 1, 2)
            _embed_batch(opts, embeddings, stats, uint8_images, float_images=img.to(torch.float32))
            progress.update(min(s.num_items for s in stats))
    return stats

#----------------------------------------------------------------------------
# Official-style entry points: statistics of one detector on the dataset or
# on generated images. Both go through get_feature_stats(), so they share
# passes when called from a planned metric.

def compute_feature_stats_for_dataset(opts, detector_url, detector_kwargs, batch_size=64, max_items=None, **stats_kwargs):
    req = dataset_request(opts, detector_url, detector_kwargs, max_items=max_items, batch_size=batch_size, **stats_kwargs)
    return get_feature_stats(opts, dict(stats=req))['stats']

def compute_feature_stats_for_generator(opts, detector_url, detector_kwargs, batch_size=64, batch_gen=None, max_items=None, **stats_kwargs):
    if max_items is None:
        raise ValueError('compute_feature_stats_for_generator: max_items (the number of images to generate) is required')
    req = generator_request(opts, detector_url, detector_kwargs, num_gen=max_items, batch_size=batch_size, batch_gen=batch_gen, **stats_kwargs)
    return get_feature_stats(opts, dict(stats=req))['stats']

#----------------------------------------------------------------------------
# A small random TorchScript detector with the official call signatures, for
# tests, benchmarks and offline smoke runs (its numbers mean nothing).
# Inputs: [N, 3, H, W] pixels in [0, 255] (uint8 or float). Outputs:
# return_features -> [N, num_features]; return_lpips -> unit-scale spatial
# features [N, D]; otherwise class probabilities [N, num_classes].

class RandomDetector(torch.nn.Module):
    def __init__(self, num_features=16, num_classes=10, resize_to=16, seed=0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.resize_to = resize_to
        self.conv1_w = torch.nn.Parameter(torch.randn([8, 3, 3, 3], generator=gen) / np.sqrt(27))
        self.conv2_w = torch.nn.Parameter(torch.randn([num_features, 8, 3, 3], generator=gen) / np.sqrt(72))
        self.fc_w = torch.nn.Parameter(torch.randn([num_classes, num_features], generator=gen) / np.sqrt(num_features))
        self.fc_b = torch.nn.Parameter(torch.randn([num_classes], generator=gen))

    def forward(self, img, return_features: bool = False, use_fp16: bool = False, no_output_bias: bool = False,
                resize_images: bool = True, return_lpips: bool = False):
        x = img.to(torch.float32)
        if resize_images:
            x = torch.nn.functional.interpolate(x, size=[self.resize_to, self.resize_to], mode='bilinear', align_corners=False)
        x = x / 127.5 - 1
        h1 = torch.tanh(torch.nn.functional.conv2d(x, self.conv1_w, stride=2, padding=1))
        h2 = torch.tanh(torch.nn.functional.conv2d(h1, self.conv2_w, stride=2, padding=1))
        if return_lpips:
            return torch.cat([h1.flatten(1) / float(h1[0].numel()) ** 0.5, h2.flatten(1) / float(h2[0].numel()) ** 0.5], dim=1)
        features = h2.mean(dim=[2, 3]) * 4
        if return_features:
            return features
        logits = features @ self.fc_w.t()
        if not no_output_bias:
            logits = logits + self.fc_b
        return torch.softmax(logits, dim=1)

# Script a RandomDetector and (optionally) save it; returns the scripted module.
def build_random_detector(path=None, num_features=16, num_classes=10, seed=0):
    with _quiet_torchscript():
        scripted = torch.jit.script(RandomDetector(num_features=num_features, num_classes=num_classes, seed=seed).eval())
        if path is not None:
            with dnnlib.util.atomic_write(path, 'wb') as f:
                torch.jit.save(scripted, f)
    return scripted

#----------------------------------------------------------------------------
