"""A second feature backbone for the metrics: ImageNet ResNet-101 average-pool features (He et al. 2016), so that a prior fitted on Inception features is not judged by the same features (PriorGAN, Gu et al. 2020, §4: "+Prior(R101)" vs "+Prior(InV3)").

Weights: torchvision's ResNet-101 file (resnet101-63fe2227.pth, IMAGENET1K_V1),
a plain state_dict. It is found like every detector (metric_utils.resolve_detector_file):
SG2ADA_DETECTOR_RESNET101_63FE2227=/path/file, resnet101-63fe2227.pt in
$SG2ADA_DETECTOR_DIR, the dnnlib download cache, a download. It is read with
torch.load(weights_only=True), so loading runs no code from the file, into the
bottleneck ResNet written here (depth and width read from the state_dict, so any
torchvision bottleneck ResNet file loads, and tests pass a tiny one). The
network is then scripted once and saved as a TorchScript detector in the dnnlib
cache (gan-metrics/<name>-features-<hash>.pt); from there on it is a detector
file like Inception and VGG16: loaded once per process, shared by all metrics
of a pass, and its real-image features are cached on disk.
A TorchScript file given instead is used as it is; it must follow the detector
convention (uint8 or float pixels [N, 3, H, W] in [0, 255] -> [N, F] features).

Preprocessing (the paper gives none): pixels / 255, bilinear resize to 224x224
(antialiased when shrinking; no centre crop, so the whole image counts),
ImageNet mean/std normalisation, the trunk conv1 ... layer4, global average pool:
[N, 2048] float32.
"""

import hashlib
import os
import pickle
import re
import zipfile

import torch

import dnnlib
from . import metric_utils

#----------------------------------------------------------------------------

RESNET101_URL = 'https://download.pytorch.org/models/resnet101-63fe2227.pth'   # torchvision IMAGENET1K_V1
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#----------------------------------------------------------------------------
# Bottleneck block: 1x1 reduce, 3x3 (carries the stride), 1x1 expand by 4,
# plus the identity or a strided 1x1 projection. Attribute names follow the
# torchvision state_dict keys.

class Bottleneck(torch.nn.Module):
    def __init__(self, in_channels, width, stride):
        super().__init__()
        out_channels = width * 4
        self.conv1 = torch.nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(width)
        self.conv2 = torch.nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(width)
        self.conv3 = torch.nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = torch.nn.BatchNorm2d(out_channels)
        self.has_projection = stride != 1 or in_channels != out_channels
        self.downsample = torch.nn.Sequential(torch.nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                              torch.nn.BatchNorm2d(out_channels)) if self.has_projection else torch.nn.Identity()

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = torch.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return torch.relu(y + self.downsample(x))

#----------------------------------------------------------------------------
# ResNet trunk with the detector interface: pixels in [0, 255] -> pooled features.

class ResNetFeatures(torch.nn.Module):
    def __init__(self,
        blocks      = (3, 4, 23, 3),    # Bottleneck blocks per stage; (3, 4, 23, 3) = ResNet-101.
        base_width  = 64,               # Channels of conv1; stage widths are 1, 2, 4, 8 times this.
        resize_to   = 224,              # Input side after resizing; None = keep the image size.
    ):
        super().__init__()
        self.resize_to = 0 if resize_to is None else int(resize_to)
        self.register_buffer('mean', torch.tensor(IMAGENET_MEAN).reshape(1, 3, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor(IMAGENET_STD).reshape(1, 3, 1, 1), persistent=False)
        self.conv1 = torch.nn.Conv2d(3, base_width, 7, stride=2, padding=3, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(base_width)
        self.maxpool = torch.nn.MaxPool2d(3, stride=2, padding=1)
        in_channels = base_width
        stages = []
        for index, num_blocks in enumerate(blocks):
            width = base_width * 2 ** index
            layer = []
            for block in range(num_blocks):
                layer.append(Bottleneck(in_channels, width, stride=(2 if index > 0 and block == 0 else 1)))
                in_channels = width * 4
            stages.append(torch.nn.Sequential(*layer))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.feature_dim = in_channels
        self.eval().requires_grad_(False)

    def forward(self, img):
        x = img.to(torch.float32) / 255
        if self.resize_to > 0 and (x.shape[2] != self.resize_to or x.shape[3] != self.resize_to):
            shrink = min(x.shape[2], x.shape[3]) > self.resize_to
            x = torch.nn.functional.interpolate(x, size=[self.resize_to, self.resize_to], mode='bilinear',
                                                align_corners=False, antialias=shrink)
        x = (x - self.mean) / self.std
        x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return x.mean(dim=[2, 3])  # [N, 4 * 8 * base_width]: 2048 for ResNet-101

#----------------------------------------------------------------------------
# Architecture of a torchvision-style bottleneck ResNet state_dict: (blocks, base_width).

def resnet_arch_from_state_dict(state_dict, where='state_dict'):
    if 'conv1.weight' not in state_dict or 'layer4.0.conv1.weight' not in state_dict:
        raise ValueError(f'{where} is not a torchvision-style ResNet state_dict (no conv1.weight / layer4.0.conv1.weight); '
                         f'use {os.path.basename(RESNET101_URL)} from {RESNET101_URL}')
    blocks = []
    for stage in range(1, 5):
        indices = {int(m.group(1)) for key in state_dict for m in [re.match(rf'layer{stage}\.(\d+)\.', key)] if m}
        blocks.append(max(indices) + 1 if indices else 0)
    if 'layer1.0.conv3.weight' not in state_dict or min(blocks) < 1:
        raise ValueError(f'{where} is not a bottleneck ResNet (ResNet-50/101/152 layout); blocks per stage: {blocks}')
    return tuple(blocks), int(state_dict['conv1.weight'].shape[0])

# ResNetFeatures with the weights of a state_dict (the classifier 'fc.*' is dropped).
def resnet_from_state_dict(state_dict, resize_to=224, where='state_dict'):
    blocks, base_width = resnet_arch_from_state_dict(state_dict, where)
    net = ResNetFeatures(blocks=blocks, base_width=base_width, resize_to=resize_to)
    trunk = {k: v for k, v in state_dict.items() if not k.startswith('fc.')}
    try:
        net.load_state_dict(trunk)
    except RuntimeError as err:
        raise ValueError(f'{where} does not match a bottleneck ResNet {blocks} of width {base_width}: '
                         f'{str(err).splitlines()[0]}') from err
    return net.eval().requires_grad_(False)

#----------------------------------------------------------------------------
# TorchScript archives hold compiled code; torch.save() archives of tensors do not.

def _is_torchscript_file(path):
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any('/code/' in name for name in zf.namelist())

# Identity of a weights file that is cheap to compute: path, size, modification time.
def _file_tag(path):
    st = os.stat(path)
    return hashlib.md5(f'{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}'.encode('utf-8')).hexdigest()[:12]

#----------------------------------------------------------------------------
# Detector file of a ResNet backbone given by URL or path: the TorchScript
# file itself, or the TorchScript conversion of a state_dict (made once, in
# the dnnlib cache). Rank 0 resolves and converts first. Returns a local path
# to pass as a detector to metric_utils requests.

def resnet_detector_file(url=RESNET101_URL, resize_to=224, num_gpus=1, rank=0, verbose=False):
    if num_gpus > 1 and rank != 0:
        torch.distributed.barrier()
    try:
        path = metric_utils.resolve_detector_file(url, verbose=(verbose and rank == 0))
        if _is_torchscript_file(path):
            return path
        name = metric_utils.get_feature_detector_name(url)
        out = dnnlib.make_cache_dir_path('gan-metrics', f'{name}-features-{_file_tag(path)}-{resize_to}.pt')
        if not os.path.isfile(out) and rank == 0:
            try:
                state_dict = torch.load(path, map_location='cpu', weights_only=True)
            except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as err:
                raise metric_utils.DetectorUnavailableError(
                    f'"{path}" cannot be read as ResNet weights ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ""}); '
                    f'replace it with {os.path.basename(url)} from {url}') from err
            if not isinstance(state_dict, dict):
                raise metric_utils.DetectorUnavailableError(f'"{path}" holds a {type(state_dict).__name__}, not a ResNet state_dict')
            net = resnet_from_state_dict(state_dict, resize_to=resize_to, where=f'"{path}"')
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with metric_utils._quiet_torchscript():  # pylint: disable=protected-access
                scripted = torch.jit.script(net)
                with dnnlib.util.atomic_write(out, 'wb') as f:
                    torch.jit.save(scripted, f)
        return out
    finally:
        if num_gpus > 1 and rank == 0:
            torch.distributed.barrier()

#----------------------------------------------------------------------------
