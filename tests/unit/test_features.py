"""Unit tests for priors/features.py: the offline extractor, TorchScript / pickled module files, input conventions, gradients, the registry, download errors and the dataset feature pass."""

import os
import warnings

import numpy as np
import pytest
import torch

import dnnlib
from metrics import metric_utils
from priors import features
from priors.features import FeatureExtractor, build_extractor
from torch_utils import misc
from training.synthetic import generate_synthetic_images, make_synthetic_dataset

#----------------------------------------------------------------------------
# Helpers: tiny networks saved as files, and isolation of the global caches.

class TinyConv(torch.nn.Module):
    """Conv + tanh; returns [N, 5, H', W'] maps (averaged by the extractor)."""
    def __init__(self):
        super().__init__()
        gen = torch.Generator().manual_seed(1)
        self.weight = torch.nn.Parameter(torch.randn([5, 3, 3, 3], generator=gen))

    def forward(self, x):
        return torch.tanh(torch.nn.functional.conv2d(x, self.weight))


class TinyResNet(torch.nn.Module):
    """A torchvision-shaped ResNet (conv1 ... layer4, fc) small enough for a unit test."""
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 4, 3)
        self.bn1 = torch.nn.BatchNorm2d(4)
        self.relu = torch.nn.ReLU()
        self.maxpool = torch.nn.MaxPool2d(2)
        self.layer1 = torch.nn.Conv2d(4, 4, 1)
        self.layer2 = torch.nn.Conv2d(4, 4, 1)
        self.layer3 = torch.nn.Conv2d(4, 4, 1)
        self.layer4 = torch.nn.Conv2d(4, 6, 1)
        self.fc = torch.nn.Linear(6, 10)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(x.mean(dim=[2, 3]))


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path, monkeypatch):
    monkeypatch.setattr(dnnlib.util, '_dnnlib_cache_dir', str(tmp_path / 'cache'))
    for var in [v for v in os.environ if v.startswith(metric_utils.DETECTOR_ENV_PREFIX) or v == metric_utils.DETECTOR_DIR_ENV]:
        monkeypatch.delenv(var)
    metric_utils.reset_detector_cache()
    yield
    metric_utils.reset_detector_cache()


def _script(module, path):
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message=r'`torch\.jit\.\w+` is deprecated', category=DeprecationWarning)
        torch.jit.save(torch.jit.script(module.eval()), str(path))
    return str(path)


def _images(n=4, res=16, seed=0):
    return torch.from_numpy(generate_synthetic_images(n, resolution=res, num_modes=4, seed=seed)[0])  # uint8 [N, 3, R, R]

#----------------------------------------------------------------------------
# The offline extractor.

def test_tiny_shapes_dtype_and_frozen():
    ext = build_extractor('tiny', device='cpu')
    assert isinstance(ext, FeatureExtractor) and ext.name == 'tiny' and ext.feature_dim == 32
    out = ext(torch.rand([3, 3, 16, 16]) * 2 - 1)
    assert out.shape == (3, 32) and out.dtype == torch.float32 and torch.isfinite(out).all()
    assert not any(p.requires_grad for p in ext.parameters())
    ext.train()
    assert not ext.training and not any(m.training for m in ext.modules())


def test_tiny_is_deterministic_and_seeded():
    x = misc.uint8_to_images(_images())
    a = build_extractor('tiny', device='cpu')(x)
    b = build_extractor('tiny', device='cpu')(x)
    c = build_extractor('tiny', device='cpu', seed=1)(x)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    assert build_extractor('tiny', device='cpu', feature_dim=8)(x).shape == (4, 8)


def test_gradient_flows_to_the_input():
    ext = build_extractor('tiny', device='cpu')
    x = (misc.uint8_to_images(_images()) * 0.9).requires_grad_(True)
    ext(x).square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_uint8_and_float_conventions_agree():
    ext = build_extractor('tiny', device='cpu')
    pixels = _images()
    np.testing.assert_allclose(ext(pixels).numpy(), ext(misc.uint8_to_images(pixels)).numpy(), rtol=1e-5, atol=1e-5)


def test_grayscale_is_repeated_to_rgb():
    ext = build_extractor('tiny', device='cpu')
    gray = torch.rand([2, 1, 16, 16]) * 2 - 1
    torch.testing.assert_close(ext(gray), ext(gray.repeat(1, 3, 1, 1)))


def test_bad_inputs_are_refused():
    ext = build_extractor('tiny', device='cpu')
    with pytest.raises(ValueError, match=r'"tiny": expected 1 \(grayscale\) or 3 \(RGB\) channels, got 4'):
        ext(torch.zeros([1, 4, 16, 16]))
    with pytest.raises(ValueError, match=r'expected images \[N, C, H, W\], got shape \[3, 16, 16\]'):
        ext(torch.zeros([3, 16, 16]))
    with pytest.raises(TypeError, match='expected float images in \\[-1, 1\\] or uint8 pixels, got torch.int64'):
        ext(torch.zeros([1, 3, 16, 16], dtype=torch.int64))

@pytest.mark.gpu
def test_cuda_matches_cpu_and_keeps_gradients():
    x = misc.uint8_to_images(_images())
    ref = build_extractor('tiny', device='cpu')(x)
    ext = build_extractor('tiny', device='cuda')
    assert all(t.device.type == 'cuda' for t in list(ext.parameters()) + list(ext.buffers()))
    xg = x.cuda().requires_grad_(True)
    out = ext(xg)
    assert out.device.type == 'cuda' and out.dtype == torch.float32
    torch.testing.assert_close(out.cpu(), ref, rtol=1e-4, atol=1e-4)
    out.sum().backward()
    assert xg.grad.abs().sum() > 0

#----------------------------------------------------------------------------
# The registry.

def test_registry_names_and_unknown_name_error():
    assert {'inception', 'resnet101', 'tiny'} <= set(features.list_extractors())
    with pytest.raises(ValueError, match=r'Unknown feature extractor "incepton"; valid names: (identity, )?inception, resnet101, tiny'):
        build_extractor('incepton', device='cpu')


def test_unknown_builder_argument_is_named():
    with pytest.raises(ValueError, match=r'"tiny" does not take \[\'resize_to\'\]'):
        build_extractor('tiny', device='cpu', resize_to=64)

#----------------------------------------------------------------------------
# Networks from files.

def test_torchscript_file(tmp_path):
    path = _script(TinyConv(), tmp_path / 'tinyconv.pt')
    ext = build_extractor(path, device='cpu', input_range='[-1,1]')
    assert ext.name == 'tinyconv' and ext.feature_dim == 5
    x = (torch.rand([2, 3, 12, 12]) * 2 - 1).requires_grad_(True)
    out = ext(x)
    torch.testing.assert_close(out, TinyConv()(x).mean(dim=[2, 3]))
    out.sum().backward()
    assert x.grad.abs().sum() > 0


def test_input_range_and_resize_reach_the_network(tmp_path):
    path = _script(TinyConv(), tmp_path / 'tinyconv.pt')
    x = torch.rand([2, 3, 12, 12]) * 2 - 1
    expect = TinyConv()(x * 127.5 + 127.5).mean(dim=[2, 3])
    torch.testing.assert_close(build_extractor(path, device='cpu')(x), expect)  # default: [0, 255]
    resized = build_extractor(path, device='cpu', input_range='[-1,1]', resize_to=8)
    small = torch.nn.functional.interpolate(x, size=[8, 8], mode='bilinear', align_corners=False, antialias=True)
    torch.testing.assert_close(resized(x), TinyConv()(small).mean(dim=[2, 3]))
    with pytest.raises(ValueError, match="input_range must be one of .*imagenet, got 'rgb'"):
        build_extractor(path, device='cpu', input_range='rgb')


def test_resnet_files_give_pooled_features_not_logits(tmp_path):
    net = TinyResNet().eval()
    script = build_extractor(_script(net, tmp_path / 'res.pt'), device='cpu', input_range='imagenet')
    assert script.feature_dim == 6  # layer4 channels, not the 10 classes of fc
    torch.save(net, tmp_path / 'res.pkl')
    with pytest.raises(ValueError, match=r'holds pickled objects beyond plain tensor data.*--trust-pickle'):
        build_extractor(str(tmp_path / 'res.pkl'), device='cpu', input_range='imagenet')  # safe by default (issue 20)
    from torch_utils import safe_load
    with safe_load.trusted_pickles():
        pickled = build_extractor(str(tmp_path / 'res.pkl'), device='cpu', input_range='imagenet')
    x = torch.rand([2, 3, 16, 16]) * 2 - 1
    torch.testing.assert_close(script(x), pickled(x))


def test_state_dict_file_needs_a_network(tmp_path):
    torch.save(TinyResNet().state_dict(), tmp_path / 'weights.pth')
    with pytest.raises(ValueError, match=r'holds a state_dict \(weights without a network\); save the whole network'):
        build_extractor(str(tmp_path / 'weights.pth'), device='cpu')


def test_truncated_and_missing_files(tmp_path):
    torch.save(TinyResNet(), tmp_path / 'full.pkl')
    (tmp_path / 'cut.pt').write_bytes((tmp_path / 'full.pkl').read_bytes()[:200])
    with pytest.raises(ValueError, match=r'cut.pt" is truncated'):
        build_extractor(str(tmp_path / 'cut.pt'), device='cpu')
    with pytest.raises(ValueError, match='Feature detector file not found: ".*nothere.pt"'):
        build_extractor(str(tmp_path / 'nothere.pt'), device='cpu')


def test_module_that_does_not_give_features_is_refused(tmp_path):
    class Flat(torch.nn.Module):
        def forward(self, x):
            return x.sum()
    with pytest.raises(ValueError, match=r'"flat" returned shape \[\] for 2 images; expected \[N, D\] features'):
        FeatureExtractor(Flat(), name='flat')

#----------------------------------------------------------------------------
# The official-detector path and the download errors (no network is used).

def test_inception_uses_the_metric_detector_with_return_features(tmp_path, monkeypatch):
    fake = tmp_path / 'inception-2015-12-05.pt'
    metric_utils.build_random_detector(str(fake), num_features=12)
    monkeypatch.setenv('SG2ADA_DETECTOR_INCEPTION_2015_12_05', str(fake))
    ext = build_extractor('inception', device='cpu')
    assert ext.name == 'inception' and ext.feature_dim == 12 and ext.input_range == '[0,255]'
    pixels = _images()
    torch.testing.assert_close(ext(pixels), metric_utils.get_feature_detector(str(fake))(pixels, return_features=True),
                               rtol=1e-5, atol=1e-5)
    assert build_extractor(str(fake), device='cpu').name == 'inception'  # the same file by path


def test_missing_inception_says_how_to_point_to_a_local_copy(monkeypatch):
    monkeypatch.setenv('SG2ADA_DETECTOR_INCEPTION_2015_12_05', '/no/such/inception.pt')
    with pytest.raises(ValueError, match=r'SG2ADA_DETECTOR_INCEPTION_2015_12_05=/no/such/inception.pt: file not found; '
                                         r'point it to a local copy of inception-2015-12-05.pt'):
        build_extractor('inception', device='cpu')


def test_resnet101_without_network_says_how_to_point_to_a_local_copy(tmp_path, monkeypatch):
    def offline(url, **kwargs):
        raise OSError(f'Could not download {url}')
    monkeypatch.setattr(dnnlib.util, 'open_url', offline)
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'hub'))
    with pytest.raises(ValueError, match=r'Cannot load the feature detector "resnet101-63fe2227" .* set '
                                         r'SG2ADA_DETECTOR_RESNET101_63FE2227=/path/to/resnet101-63fe2227.pt'):
        build_extractor('resnet101', device='cpu')


def test_resnet101_from_a_local_torchscript_file(tmp_path, monkeypatch):
    path = _script(TinyResNet(), tmp_path / 'my-resnet.pt')
    monkeypatch.setenv('SG2ADA_DETECTOR_RESNET101_63FE2227', path)
    ext = build_extractor('resnet101', device='cpu', resize_to=32)
    assert ext.name == 'resnet101' and ext.feature_dim == 6 and ext.input_range == 'imagenet' and ext.resize_to == 32
    assert ext.spec == dict(name='resnet101', resize_to=32)

#----------------------------------------------------------------------------
# Real images go through metric_utils' dataset pass and its cache.

def test_dataset_features_match_direct_extraction_and_are_cached(tmp_path, monkeypatch):
    data = make_synthetic_dataset(str(tmp_path / 'data.zip'), num_images=20, resolution=16, num_modes=4)
    kwargs = dict(class_name='training.dataset.ImageFolderDataset', path=data)
    ext = build_extractor('tiny', device='cpu')
    feats = features.extract_dataset_features(ext, kwargs, max_images=15, batch=8, device='cpu')
    pixels = torch.from_numpy(generate_synthetic_images(15, resolution=16, num_modes=4)[0])
    assert feats.shape == (15, 32) and feats.dtype == torch.float32
    np.testing.assert_allclose(feats.numpy(), ext(pixels).numpy(), rtol=1e-5, atol=1e-6)

    # The second pass is served from the gan-metrics cache without running the extractor.
    assert len(os.listdir(dnnlib.make_cache_dir_path('gan-metrics'))) == 1
    monkeypatch.setattr(FeatureExtractor, 'forward', lambda self, images: pytest.fail('extractor ran on a cache hit'))
    again = features.extract_dataset_features(ext, kwargs, max_images=15, batch=8, device='cpu')
    assert torch.equal(again, feats)

#----------------------------------------------------------------------------
