"""Frozen, differentiable image feature extractors for the PriorGAN prior (Gu et al., "PriorGAN: Real Data Prior for Generative Adversarial Nets", §3.1 and §4).

One interface for every network that maps images to feature vectors:

    extractor = build_extractor('inception', device=device)   # or 'resnet101', 'tiny', a path, a URL
    feats = extractor(img)        # img: generated-image convention, float [N, C, H, W] in [-1, 1]
    feats = extractor(pixels)     # or dataset pixels, uint8 [N, C, H, W] in [0, 255]
                                  # -> float32 [N, extractor.feature_dim]

An extractor is frozen (eval mode, requires_grad False) but differentiable:
the quality loss backpropagates through it into G. It converts its input to
what the wrapped network expects ([0, 255] for the official detectors,
ImageNet normalisation for ResNet-101) and repeats grayscale to 3 channels.
Inputs are not clamped, so out-of-range generator pixels still get gradients.

Registered names (see list_extractors()):
  inception  The FID Inception-v3 detector of the metrics (2048-d pool features).
  resnet101  ImageNet ResNet-101, 2048-d average-pool features. The weights are
             torchvision's file (resnet101-63fe2227.pth, IMAGENET1K_V1), loaded
             into torchvision's network when torchvision is installed; without
             torchvision, point to a TorchScript or pickled ResNet-101 instead.
  tiny       A fixed-seed random conv net (metric_utils.RandomDetector) that needs
             no download. For demos and tests only, NOT for research numbers.
  identity   The flattened item itself (feature_dim=2): for the toy lab's 2-D
             points (--cfg=toy, docs/toy-lab.md), the GMM sits on the data.
Anything else is read as the path or URL of a TorchScript file, a pickled
nn.Module or (with torchvision, for resnet101) a state_dict, through the one
loader torch_utils.safe_load: safe by default, so only TorchScript files and
state_dicts load. A pickled nn.Module RUNS CODE FROM THE FILE when it is
loaded; it is accepted only with --trust-pickle (safe_load.trusted_pickles()).

Files are found the way the metrics find their detectors (reusing
metric_utils.resolve_detector_file): the environment variable
SG2ADA_DETECTOR_<NAME>, the folder $SG2ADA_DETECTOR_DIR, a local path, the
dnnlib download cache, a download. A missing file gives the same "how to point
to a local copy" error as a missing metric detector.

Features of real images go through metric_utils' dataset pass and its disk
cache (extract_dataset_features); this module adds no cache of its own.
"""

import contextlib
import os
import re
import zipfile

import torch

from metrics import metric_utils
from torch_utils import misc
from torch_utils import safe_load

#----------------------------------------------------------------------------
# Weights and input conventions.

RESNET101_URL = 'https://download.pytorch.org/models/resnet101-63fe2227.pth'   # torchvision IMAGENET1K_V1
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# What the wrapped network expects as input, as an affine map of [-1, 1] images: (scale, shift) per channel.
INPUT_RANGES = {
    '[-1,1]':   ((1.0, 1.0, 1.0), (0.0, 0.0, 0.0)),
    '[0,255]':  ((127.5, 127.5, 127.5), (127.5, 127.5, 127.5)),
    'imagenet': (tuple(0.5 / s for s in IMAGENET_STD), tuple((0.5 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD))),
}

#----------------------------------------------------------------------------
# The registry: extractor name -> builder(device, num_gpus, rank, **kwargs).

_extractors = dict()

def register_extractor(name):
    def decorator(fn):
        if name in _extractors and _extractors[name] is not fn:
            raise ValueError(f'Feature extractor "{name}" is already registered by {_extractors[name].__module__}')
        _extractors[name] = fn
        return fn
    return decorator

def list_extractors():
    return sorted(_extractors)

#----------------------------------------------------------------------------
# A frozen network plus the input conversion it needs. The conversion
# constants live in non-persistent buffers, so that the module fingerprint of
# metric_utils (class + parameters + buffers), which keys the real-feature
# cache, tells apart two extractors that share weights but not preprocessing.

class FeatureExtractor(torch.nn.Module):
    def __init__(self,
        net,                        # nn.Module or TorchScript module: images -> [N, D] (or [N, D, H, W], averaged).
        name,                       # Registry name or file stem; stored in prior files.
        input_range = '[0,255]',    # What net expects: '[-1,1]', '[0,255]' or 'imagenet'.
        resize_to   = None,         # Resize to resize_to x resize_to before net. None = leave the size alone.
        call_kwargs = {},           # Extra keyword arguments of every net call.
        source      = None,         # Path or URL the weights came from (metadata only).
        spec        = None,         # Arguments that rebuild this extractor with build_extractor() (metadata only).
        probe_size  = 32,           # Side of the dummy batch that measures feature_dim.
    ):
        super().__init__()
        if input_range not in INPUT_RANGES:
            raise ValueError(f'input_range must be one of {", ".join(INPUT_RANGES)}, got {input_range!r}')
        if resize_to is not None and (isinstance(resize_to, bool) or not isinstance(resize_to, int) or resize_to < 1):
            raise ValueError(f'resize_to must be a positive integer or None, got {resize_to!r}')
        self.name = str(name)
        self.input_range = input_range
        self.resize_to = resize_to
        self.call_kwargs = dict(call_kwargs)
        self.source = source
        self.spec = dict(spec) if spec is not None else dict(name=self.name)
        scale, shift = INPUT_RANGES[input_range]
        self.register_buffer('input_scale', torch.tensor(scale, dtype=torch.float32).reshape(1, 3, 1, 1), persistent=False)
        self.register_buffer('input_shift', torch.tensor(shift, dtype=torch.float32).reshape(1, 3, 1, 1), persistent=False)
        self.register_buffer('resize_hw', torch.tensor([resize_to or 0] * 2, dtype=torch.int64), persistent=False)
        self.net = net
        self.requires_grad_(False)
        self.train(False)

        # Measure the feature dimension on a dummy batch.
        device = next(iter(self.net.parameters()), torch.empty([])).device
        self.to(device)
        dummy = torch.zeros([2, 3, probe_size, probe_size], device=device)
        try:
            with torch.no_grad():
                feats = self(dummy)
        except (RuntimeError, TypeError, ValueError) as err:
            raise ValueError(f'Feature extractor "{self.name}" fails on a test batch of shape {list(dummy.shape)} '
                             f'({type(err).__name__}: {err}); it must map [N, 3, H, W] images to [N, D] features') from err
        self.feature_dim = int(feats.shape[1])

    # The wrapped network never leaves eval mode (BatchNorm statistics stay fixed).
    def train(self, mode=True):
        super().train(False)
        return self

    # Images in either convention -> the input of net: float32 [N, 3, H', W'].
    def _prepare(self, images):
        if not isinstance(images, torch.Tensor) or images.ndim != 4:
            got = f'shape {list(images.shape)}' if isinstance(images, torch.Tensor) else type(images).__name__
            raise ValueError(f'Feature extractor "{self.name}": expected images [N, C, H, W], got {got}')
        if images.shape[1] not in (1, 3):
            raise ValueError(f'Feature extractor "{self.name}": expected 1 (grayscale) or 3 (RGB) channels, '
                             f'got {images.shape[1]}; convert the images to RGB')
        if images.dtype == torch.uint8:
            x = misc.uint8_to_images(images)
        elif images.is_floating_point():
            x = images.to(torch.float32)
        else:
            raise TypeError(f'Feature extractor "{self.name}": expected float images in [-1, 1] or uint8 pixels, got {images.dtype}')
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        x = x * self.input_scale + self.input_shift
        if self.resize_to is not None and list(x.shape[2:]) != [self.resize_to] * 2:
            shrink = min(x.shape[2:]) > self.resize_to
            x = torch.nn.functional.interpolate(x, size=[self.resize_to] * 2, mode='bilinear', align_corners=False, antialias=shrink)
        return x

    def forward(self, images):
        out = self.net(self._prepare(images), **self.call_kwargs)
        if isinstance(out, (tuple, list)):
            out = out[0]
        if isinstance(out, torch.Tensor) and out.ndim == 4:
            out = out.mean(dim=[2, 3])
        if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != images.shape[0]:
            got = f'shape {list(out.shape)}' if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f'Feature extractor "{self.name}" returned {got} for {images.shape[0]} images; expected [N, D] features')
        return out.to(torch.float32)

    def extra_repr(self):
        dim = getattr(self, 'feature_dim', '?')
        return f'name={self.name!r}, feature_dim={dim}, input_range={self.input_range!r}, resize_to={self.resize_to}'

#----------------------------------------------------------------------------
# The average-pool trunk of a torchvision-style ResNet (conv1 ... layer4),
# skipping its classifier. Works on nn.Modules and TorchScript modules alike,
# since both expose their children as attributes.

_RESNET_PARTS = ('conv1', 'bn1', 'relu', 'maxpool', 'layer1', 'layer2', 'layer3', 'layer4')

def _looks_like_resnet(net):
    return all(hasattr(net, part) for part in _RESNET_PARTS)

class ResNetTrunk(torch.nn.Module):
    def __init__(self, resnet):
        super().__init__()
        self.resnet = resnet

    def forward(self, x):
        for part in _RESNET_PARTS:
            x = getattr(self.resnet, part)(x)
        return x.mean(dim=[2, 3])  # [N, C]: 2048 for ResNet-101

#----------------------------------------------------------------------------
# Loading network files.

# With several processes, rank 0 resolves (downloads) first; the others wait.
@contextlib.contextmanager
def _rank0_first(num_gpus, rank):
    if num_gpus > 1 and rank != 0:
        torch.distributed.barrier()
    try:
        yield
    finally:
        if num_gpus > 1 and rank == 0:
            torch.distributed.barrier()

# TorchScript archives hold compiled code; plain torch.save() archives do not.
def _is_torchscript_file(path):
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any(n.endswith('/constants.pkl') or '/code/' in n for n in zf.namelist())

def _torchvision_resnet101():
    try:
        import torchvision  # optional dependency
    except ImportError:
        return None
    return torchvision.models.resnet101()

# A network from a file: TorchScript (through metric_utils' detector cache), a
# pickled nn.Module, or a state_dict (torchvision ResNet-101 only).
# A pickled module runs code from the file when it is loaded: with safe=True
# only TorchScript files and state_dicts (read with weights_only=True) are
# accepted, and a pickled module is refused before any of it is unpickled.
def _load_network_file(path, device, arch=None, safe=False):
    if _is_torchscript_file(path):
        return metric_utils.get_feature_detector(path, device=device)
    try:  # the one loader (torch_utils.safe_load): safe unless --trust-pickle; safe=True forces safe mode
        obj = safe_load.load_torch_file(path, what='network file', trust=(False if safe else None))
    except safe_load.UnsafeFileError as err:
        raise ValueError(f'{err}; or save the network with torch.jit.save(torch.jit.script(model), path)') from None
    except safe_load.FileLoadError as err:
        raise ValueError(f'{err}; give a TorchScript file (torch.jit.save) or, with --trust-pickle, a pickled nn.Module') from None
    if isinstance(obj, torch.nn.Module):
        return obj.to(device)
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        net = _torchvision_resnet101() if arch == 'resnet101' else None
        if net is None:
            hint = 'install torchvision to use it as ResNet-101 weights, or ' if arch == 'resnet101' else ''
            raise ValueError(f'"{path}" holds a state_dict (weights without a network); {hint}save the whole network '
                             f'with torch.jit.save(torch.jit.script(model), path) and point to that file')
        try:
            net.load_state_dict(obj)
        except RuntimeError as err:
            raise ValueError(f'"{path}" does not hold torchvision ResNet-101 weights ({describe_error(err)}); '
                             f'use {os.path.basename(RESNET101_URL)} from {RESNET101_URL}') from err
        return net.to(device)
    raise ValueError(f'"{path}" holds a {type(obj).__name__}, not a network; give a TorchScript file or a pickled nn.Module')

#----------------------------------------------------------------------------
# Small helpers shared with prior_file.py.

# 'ErrorType: first sentence of its message', for one-line error messages.
def describe_error(err):
    text = str(err).strip().splitlines()[0] if str(err).strip() else ''
    return f'{type(err).__name__}: {text.split(". ")[0]}'

# The device to use: `device`, or cuda:<rank> when CUDA is available, else the CPU.
def resolve_device(device, rank):
    return torch.device(device) if device is not None else metric_utils.default_device(rank)

#----------------------------------------------------------------------------
# The registered extractors.

@register_extractor('inception')
def _build_inception(device, num_gpus=1, rank=0):
    net = metric_utils.get_feature_detector(metric_utils.INCEPTION_URL, device=device, num_gpus=num_gpus, rank=rank)
    return FeatureExtractor(net, name='inception', input_range='[0,255]', call_kwargs=dict(return_features=True),
                            source=metric_utils.INCEPTION_URL, spec=dict(name='inception'))

# Local file of the ResNet-101 weights: an SG2ADA override (variable or folder)
# first, then torchvision's own download cache, then metric_utils' lookup.
def _resolve_resnet101_file():
    name = metric_utils.get_feature_detector_name(RESNET101_URL)
    folder = os.environ.get(metric_utils.DETECTOR_DIR_ENV)
    overridden = os.environ.get(metric_utils.detector_env_var(RESNET101_URL)) or (folder and os.path.isfile(os.path.join(folder, name + '.pt')))
    hub_file = os.path.join(torch.hub.get_dir(), 'checkpoints', os.path.basename(RESNET101_URL))
    if not overridden and os.path.isfile(hub_file):
        return hub_file
    return metric_utils.resolve_detector_file(RESNET101_URL)

@register_extractor('resnet101')
def _build_resnet101(device, num_gpus=1, rank=0, resize_to=224, safe=False):
    with _rank0_first(num_gpus, rank):
        path = _resolve_resnet101_file()
    net = _load_network_file(path, device, arch='resnet101', safe=safe)
    if _looks_like_resnet(net):
        net = ResNetTrunk(net)
    return FeatureExtractor(net, name='resnet101', input_range='imagenet', resize_to=resize_to, source=path,
                            spec=dict(name='resnet101', resize_to=resize_to))

@register_extractor('tiny')
def _build_tiny(device, num_gpus=1, rank=0, feature_dim=32, seed=0):
    net = metric_utils.RandomDetector(num_features=feature_dim, seed=seed).to(device)
    return FeatureExtractor(net, name='tiny', input_range='[0,255]', call_kwargs=dict(return_features=True),
                            spec=dict(name='tiny', feature_dim=feature_dim, seed=seed))

# The identity on flattened dataset items, for the toy lab's 2-D points ([N, 2, 1, 1] -> [N, 2]): the
# GMM of PriorGAN's Eq. 3 is then fitted on the data itself. uint8 pixels are mapped to [-1, 1] first.

class IdentityFeatures(FeatureExtractor):
    def __init__(self, feature_dim=2):  # feature_dim: C * H * W of the items (2 for toy points)
        torch.nn.Module.__init__(self)  # no wrapped network, nothing to probe
        if isinstance(feature_dim, bool) or not isinstance(feature_dim, int) or feature_dim < 1:
            raise ValueError(f'Feature extractor "identity": feature_dim must be a positive integer, got {feature_dim!r}')
        self.name, self.input_range, self.resize_to, self.call_kwargs, self.source = 'identity', '[-1,1]', None, {}, None
        self.spec = dict(name='identity', feature_dim=feature_dim)
        self.feature_dim = feature_dim
        self.register_buffer('dim_tag', torch.tensor([feature_dim]), persistent=False)  # part of the cache fingerprint
        self.net = torch.nn.Identity()
        self.requires_grad_(False)

    def forward(self, images):
        x = misc.uint8_to_images(images) if images.dtype == torch.uint8 else images.to(torch.float32)
        x = x.flatten(1)
        if x.shape[1] != self.feature_dim:
            raise ValueError(f'Feature extractor "identity": items have {x.shape[1]} values ({list(images.shape[1:])}) but '
                             f'feature_dim={self.feature_dim}; it is meant for the toy lab\'s 2-D points (--cfg=toy)')
        return x

@register_extractor('identity')
def _build_identity(device, num_gpus=1, rank=0, feature_dim=2):
    return IdentityFeatures(feature_dim=feature_dim).to(device)

# Any TorchScript / pickled module given by path or URL.
def _build_from_file(url, device, num_gpus=1, rank=0, input_range='[0,255]', resize_to=None, safe=False):
    with _rank0_first(num_gpus, rank):
        path = metric_utils.resolve_detector_file(url)
    name = metric_utils.get_feature_detector_name(url)
    if name == metric_utils.get_feature_detector_name(metric_utils.INCEPTION_URL):
        net = metric_utils.get_feature_detector(path, device=device)
        return FeatureExtractor(net, name='inception', input_range='[0,255]', call_kwargs=dict(return_features=True),
                                source=url, spec=dict(name='inception'))
    net = _load_network_file(path, device, safe=safe)
    if _looks_like_resnet(net):
        net = ResNetTrunk(net)
    return FeatureExtractor(net, name=name, input_range=input_range, resize_to=resize_to, source=url,
                            spec=dict(name=url, input_range=input_range, resize_to=resize_to))

#----------------------------------------------------------------------------
# The one entry point: a registered name, a path or a URL -> FeatureExtractor
# on `device` (None = cuda:<rank> when available, else cpu). kwargs go to the
# builder (tiny: feature_dim, seed; resnet101: resize_to; files: input_range,
# resize_to). Names with a path separator, a URL scheme or a file suffix are
# files; everything else must be a registered name.

def is_file_spec(name):
    return bool(re.match(r'^[a-z]+://', name)) or '/' in name or '\\' in name or bool(re.search(r'\.(pt|pth|pkl|jit)$', name))

# A local extractor file named on the command line, checked before any work: it must load (safe unless
# --trust-pickle), so a hostile or wrong file fails at start-up, not after the run folder exists.
# Registered names, URLs and paths that are not local files pass. Raises ValueError naming the file.
def check_extractor_file(name_or_path):
    if not isinstance(name_or_path, str) or name_or_path in _extractors or not is_file_spec(name_or_path):
        return
    path = os.path.expanduser(name_or_path)
    if re.match(r'^[a-z]+://', name_or_path) or not os.path.isfile(path):
        return
    _load_network_file(path, torch.device('cpu'))

def build_extractor(name_or_path, device=None, num_gpus=1, rank=0, safe=False, **kwargs):
    # safe: refuse pickled modules (they run code from the file); TorchScript files and state_dicts are fine.
    device = resolve_device(device, rank)
    if isinstance(name_or_path, FeatureExtractor):
        return name_or_path.to(device)
    if not isinstance(name_or_path, str) or not name_or_path:
        raise TypeError(f'Feature extractor must be a name, a path or a URL, got {name_or_path!r}')
    if name_or_path in _extractors:
        builder = _extractors[name_or_path]
        if name_or_path == 'resnet101':
            kwargs = dict(kwargs, safe=safe)
    elif is_file_spec(name_or_path):
        builder = lambda *args, **kw: _build_from_file(name_or_path, *args, **kw)
        kwargs = dict(kwargs, safe=safe)
    else:
        raise ValueError(f'Unknown feature extractor "{name_or_path}"; valid names: {", ".join(list_extractors())}, '
                         f'or the path or URL of a TorchScript or pickled module')
    try:
        return builder(device, num_gpus=num_gpus, rank=rank, **kwargs)
    except TypeError as err:
        if 'unexpected keyword argument' not in str(err):
            raise
        raise ValueError(f'Feature extractor "{name_or_path}" does not take {sorted(kwargs)} ({err})') from err

#----------------------------------------------------------------------------
# Features of real images: the first max_images items of the dataset (None =
# all), in item order, through metric_utils' dataset pass and its disk cache.
# With several processes every rank must call this; all get all the rows.
# Returns float32 [N, D] on the CPU.

def extract_dataset_features(extractor, dataset_kwargs, max_images=None, batch=64, device=None, num_gpus=1, rank=0,
                             cache=True, progress=None):
    opts = metric_utils.MetricOptions(dataset_kwargs=dataset_kwargs, num_gpus=num_gpus, rank=rank,
                                      device=resolve_device(device, rank), cache=cache, progress=progress)
    extractor = extractor.to(opts.device)
    request = metric_utils.dataset_request(opts, extractor, {}, max_items=max_images, capture_all=True,
                                           input_format='uint8', batch_size=batch)
    stats = metric_utils.get_feature_stats(opts, dict(real=request))['real']
    return stats.get_all_torch()

#----------------------------------------------------------------------------
