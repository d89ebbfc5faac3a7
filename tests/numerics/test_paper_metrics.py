"""The papers' metrics (metrics/paper_metrics.py) against independent float64 references: MS-SSIM, density/coverage, MODE score and #Miss/KL, FID-5k and IS-5k x 10, the ResNet backbone and FID on it."""

import copy
import math
import os

import numpy as np
import pytest
import scipy.signal
import scipy.spatial
import torch

import dnnlib
from metrics import backbones
from metrics import classifier as classifier_module
from metrics import classifier_metrics
from metrics import density_coverage
from metrics import inception_score
from metrics import metric_main
from metrics import metric_utils
from metrics import ms_ssim
from metrics import paper_metrics
from torch_utils import misc

#----------------------------------------------------------------------------
# Fixtures: tiny labelled dataset, tiny detector, tiny ResNet, small counts.

@pytest.fixture(scope='module')
def dataset_zip(tmp_path_factory):
    from training.dataset import DatasetWriter
    path = str(tmp_path_factory.mktemp('data') / 'tiny.zip')
    rng = np.random.default_rng(0)
    with DatasetWriter(path) as writer:
        for i in range(40):
            writer.add_image(f'{i:05d}.png', rng.integers(0, 256, [16, 16, 3], dtype=np.uint8))
        writer.write_metadata({'labels': [[f'{i:05d}.png', [0, 1, 1, 2][i % 4]] for i in range(40)]})
    return path


def _dataset_kwargs(path, **overrides):
    return dict(dict(class_name='training.dataset.ImageFolderDataset', path=path, resolution=16, use_labels=False), **overrides)


def _tiny_resnet_state_dict(seed=0):
    gen = torch.Generator().manual_seed(seed)
    net = backbones.ResNetFeatures(blocks=(1, 2, 1, 1), base_width=4, resize_to=32)
    state = net.state_dict()
    for key, value in state.items():  # random BN statistics too, so that the reference must use them right
        if value.is_floating_point():
            noise = torch.rand(value.shape, generator=gen) if 'running_var' in key else torch.randn(value.shape, generator=gen)
            state[key] = noise * 0.5 + (0.5 if 'running_var' in key or key.endswith('bn3.weight') else 0)
    state['fc.weight'] = torch.zeros([3, 64])  # classifier head: ignored
    return state


@pytest.fixture
def env(tmp_path, monkeypatch):
    detector = str(tmp_path / 'tiny-detector.pt')
    metric_utils.build_random_detector(detector, num_features=12)
    monkeypatch.setattr(dnnlib.util, '_dnnlib_cache_dir', str(tmp_path / 'cache'))
    monkeypatch.setenv('SG2ADA_DETECTOR_INCEPTION_2015_12_05', detector)
    monkeypatch.setenv('SG2ADA_DETECTOR_VGG16', detector)
    resnet = str(tmp_path / 'tiny-resnet.pth')
    torch.save(_tiny_resnet_state_dict(), resnet)
    monkeypatch.setenv('SG2ADA_DETECTOR_RESNET101_63FE2227', resnet)
    monkeypatch.setattr(metric_main, '_metric_dict', dict(metric_main._metric_dict))
    counts = dict(FID5K_NUM_GEN=20, FID5K_NUM_REAL=30, IS5K_NUM_GEN=8, IS5K_NUM_RUNS=3, MODE_NUM_GEN=24, MISS_NUM_GEN=40,
                  MSSSIM_NUM_PAIRS=10, DC_NUM_GEN=24, DC_MAX_REAL=200000, FID_R101_NUM_GEN=24, R101_RESIZE=32)
    for name, value in counts.items():
        monkeypatch.setattr(paper_metrics, name, value)
    metric_utils.reset_detector_cache()
    yield tmp_path
    metric_utils.reset_detector_cache()


@pytest.fixture
def tiny_G(tiny_G_kwargs):
    from training.networks import Generator
    torch.manual_seed(0)
    return Generator(**tiny_G_kwargs).eval()


# uint8 [N, 3, H, W] images of samples 0..n-1, exactly as the generator pass makes them.
def _generated_uint8(G, n, seed=0):
    sampler = metric_utils.LatentSampler(copy.deepcopy(G), seed)  # the sampler rewrites the noise buffers of its G
    with torch.no_grad():
        img = sampler.generate(np.arange(n), batch_gen=n)
    return misc.images_to_uint8(img).permute(0, 3, 1, 2)

#----------------------------------------------------------------------------
# MS-SSIM: a direct float64 implementation with a 2-D window, scipy correlation and block means.

def _ssim_terms_ref(a, b):
    n = min(11, *a.shape)
    x = np.arange(n) - (n - 1) / 2
    g = np.exp(-x ** 2 / (2 * 1.5 ** 2))
    window = np.outer(g, g) / np.outer(g, g).sum()
    filt = lambda z: scipy.signal.correlate2d(z, window, mode='valid')
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = filt(a), filt(b)
    var_a, var_b, cov = filt(a * a) - mu_a ** 2, filt(b * b) - mu_b ** 2, filt(a * b) - mu_a * mu_b
    cs = (2 * cov + c2) / (var_a + var_b + c2)
    lum = (2 * mu_a * mu_b + c1) / (mu_a ** 2 + mu_b ** 2 + c1)
    return np.mean(lum * cs), np.mean(cs)


def _ms_ssim_ref(img_a, img_b):
    weights = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333]
    per_channel = []
    for a, b in zip(np.asarray(img_a, np.float64), np.asarray(img_b, np.float64)):
        value = 1.0
        for scale in range(5):
            if scale > 0:
                h, w = a.shape[0] // 2 * 2, a.shape[1] // 2 * 2
                a = a[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
                b = b[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
            ssim, cs = _ssim_terms_ref(a, b)
            value *= max(ssim if scale == 4 else cs, 0) ** weights[scale]
        per_channel.append(value)
    return float(np.mean(per_channel))


@pytest.mark.parametrize('size', [16, 37, 176])  # window clipped at coarse scales; odd sizes; never clipped
def test_ms_ssim_matches_float64_reference(size):
    rng = np.random.default_rng(size)
    base = rng.uniform(0, 255, [3, 3, size, size])
    other = np.clip(base + rng.normal(0, 40, base.shape), 0, 255)  # correlated pairs, so no term is clamped
    got = ms_ssim.ms_ssim(torch.tensor(base), torch.tensor(other))
    ref = [_ms_ssim_ref(base[i], other[i]) for i in range(3)]
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-10, atol=1e-12)
    assert 0.05 < min(ref) < max(ref) < 0.99


def test_ms_ssim_identities_and_errors():
    rng = np.random.default_rng(1)
    x = torch.tensor(rng.uniform(0, 255, [2, 1, 32, 32]))
    np.testing.assert_allclose(ms_ssim.ms_ssim(x, x).numpy(), 1, rtol=1e-12)
    np.testing.assert_allclose(ms_ssim.ms_ssim(x, x.flip(0)).numpy(), ms_ssim.ms_ssim(x.flip(0), x).numpy(), rtol=1e-12)  # symmetric
    assert float(ms_ssim.ms_ssim(255 - x[:1], x[:1])) == 0  # anti-correlated: clamped cs
    with pytest.raises(ValueError, match=r'5 scales need images of at least 16 px, got \[8, 8\]'):
        ms_ssim.ms_ssim(x[:, :, :8, :8], x[:, :, :8, :8])


@pytest.mark.slow  # seconds of CPU: in the full suite, not the fast tier
def test_msssim_metric_matches_reference_pairs(env, tiny_G, dataset_zip):
    opts = metric_utils.MetricOptions(G=tiny_G, dataset_kwargs=_dataset_kwargs(dataset_zip), device='cpu', seed=3)
    result = metric_main.calc_metric('msssim10k', G=tiny_G, dataset_kwargs=_dataset_kwargs(dataset_zip), device='cpu', seed=3).results
    # Generated pairs: samples (2k, 2k+1) of the seeded stream.
    images = _generated_uint8(tiny_G, 20, seed=3).numpy()
    ref_gen = np.mean([_ms_ssim_ref(images[2 * k], images[2 * k + 1]) for k in range(10)])
    assert result.msssim10k == pytest.approx(ref_gen, rel=1e-6)
    # Real pairs: seeded draws of two distinct images.
    dataset = dnnlib.util.construct_class_by_name(**opts.dataset_kwargs)
    rng = np.random.default_rng(3)
    first = rng.integers(40, size=10)
    second = (first + rng.integers(1, 40, size=10)) % 40
    assert np.all(first != second)
    ref_real = np.mean([_ms_ssim_ref(dataset[int(i)][0], dataset[int(j)][0]) for i, j in zip(first, second)])
    assert result.msssim10k_real == pytest.approx(ref_real, rel=1e-9)

#----------------------------------------------------------------------------
# Density and coverage: brute-force kNN.

def _density_coverage_ref(real, gen, k):
    radii = np.sort(scipy.spatial.distance.cdist(real, real), axis=1)[:, k]  # column 0 is the point itself
    inside = scipy.spatial.distance.cdist(gen, real) < radii[None]
    return inside.sum() / (k * len(gen)), inside.any(axis=0).mean()


@pytest.mark.parametrize('k', [1, 5])
def test_density_coverage_match_brute_force_knn(k):
    rng = np.random.default_rng(k)
    real = rng.standard_normal([45, 6])
    gen = np.concatenate([rng.standard_normal([20, 6]) * 0.5, rng.standard_normal([17, 6]) + 2])  # dense core + outliers
    density, coverage = density_coverage.density_coverage(torch.tensor(real), torch.tensor(gen), nhood_size=k,
                                                          row_batch_size=7, col_batch_size=10)
    ref_density, ref_coverage = _density_coverage_ref(real, gen, k)
    assert density == pytest.approx(ref_density, rel=1e-12)
    assert coverage == pytest.approx(ref_coverage, rel=1e-12)
    assert 0 < coverage < 1 and density > 0


def test_dc_metric_shares_pr_features(env, tiny_G, dataset_zip):
    kwargs = dict(G=tiny_G, dataset_kwargs=_dataset_kwargs(dataset_zip), device='cpu', cache=False)
    opts = metric_utils.MetricOptions(**kwargs)
    raw = metric_utils.get_feature_stats(opts, dict(
        real=metric_utils.dataset_request(opts, metric_utils.VGG16_URL, dict(return_features=True), capture_all=True),
        gen=metric_utils.generator_request(opts, metric_utils.VGG16_URL, dict(return_features=True), num_gen=24, capture_all=True)))
    ref = _density_coverage_ref(raw['real'].get_all().astype(np.float64), raw['gen'].get_all().astype(np.float64), 5)
    result = metric_main.calc_metric('dc50k5_full', **kwargs).results
    assert result.dc50k5_full_density == pytest.approx(ref[0], rel=1e-5)
    assert result.dc50k5_full_coverage == pytest.approx(ref[1], rel=1e-5)

#----------------------------------------------------------------------------
# MODE score, classifier score, #Miss and KL: direct formulas with math.log.

def _random_probs(rng, n, k):
    logits = rng.standard_normal([n, k]) * 2
    return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


def test_classifier_formulas_match_direct_sums():
    rng = np.random.default_rng(2)
    probs = _random_probs(rng, 30, 4)
    p_train = np.array([0.1, 0.2, 0.3, 0.4])
    n, k = probs.shape
    p_star = [sum(row[y] for row in probs) / n for y in range(k)]
    kl = lambda p, q: sum(p[y] * math.log(p[y] / q[y]) for y in range(k) if p[y] > 0)
    score = math.exp(sum(kl(row, p_star) for row in probs) / n)
    mode = math.exp(sum(kl(row, p_train) for row in probs) / n - kl(p_star, p_train))
    assert classifier_metrics.classifier_score(probs) == pytest.approx(score, rel=1e-12)
    assert classifier_metrics.mode_score(probs, p_train) == pytest.approx(mode, rel=1e-12)
    # Finding: Eq. 4 as written equals Eq. 3 for any p(y) (the p(y) terms cancel when p* is the mean of p(y|x)).
    assert classifier_metrics.mode_score(probs, [0.7, 0.1, 0.1, 0.1]) == pytest.approx(score, rel=1e-10)

    predicted = np.array([0, 0, 2, 2, 2, 5])
    assert classifier_metrics.missing_classes(predicted, 6) == 3   # 1, 3, 4 never predicted
    p_train6 = np.array([0.25, 0.25, 0.2, 0.1, 0.1, 0.1])
    hist = [2 / 6, 0, 3 / 6, 0, 0, 1 / 6]
    ref_kl = sum(h * math.log(h / q) for h, q in zip(hist, p_train6) if h > 0)
    assert classifier_metrics.class_histogram_kl(predicted, p_train6) == pytest.approx(ref_kl, rel=1e-12)
    assert ref_kl > 0
    assert classifier_metrics.class_histogram_kl(predicted, [0.5, 0.5, 0, 0, 0, 0]) == float('inf')
    assert classifier_metrics.mode_score(probs, [0.5, 0.5, 0, 0]) == 0.0


def _save_small_classifier(path, num_classes=3, resolution=8, in_channels=1, seed=0):
    gen = torch.Generator().manual_seed(seed)
    net = classifier_module.SmallClassifier(resolution, in_channels, num_classes, width=4)
    classifier_module._init_weights(net, gen)
    classifier_module.save_classifier(path, net, np.ones(num_classes, dtype=np.int64), test_accuracy=0.5)
    return net


def test_classifier_file_loads_safely(tmp_path):
    path = str(tmp_path / 'clf.pt')
    net = _save_small_classifier(path)
    probs = classifier_module.load_classifier(path)
    img = torch.randint(0, 256, [5, 3, 16, 16], dtype=torch.uint8)
    # Reference: gray = mean of the channels, area-resized to 8 px, softmax of the logits.
    x = misc.uint8_to_images(img).mean(dim=1, keepdim=True)
    x = torch.nn.functional.interpolate(x, size=[8, 8], mode='bilinear', align_corners=False, antialias=True)
    torch.testing.assert_close(probs(img), torch.softmax(net(x), dim=1), rtol=1e-5, atol=1e-6)
    assert list(probs.train_class_counts) == [1, 1, 1]

    # A pickled module is refused (it would run code); a TorchScript module is accepted.
    torch.save(net, str(tmp_path / 'pickled.pt'))
    with pytest.raises(ValueError, match='pickled objects, which are refused'):
        classifier_module.load_classifier(str(tmp_path / 'pickled.pt'))
    torch.jit.save(torch.jit.script(net), str(tmp_path / 'scripted.pt'))
    scripted = classifier_module.load_classifier(str(tmp_path / 'scripted.pt'))
    x3 = misc.uint8_to_images(img[:, :, :8, :8])
    torch.testing.assert_close(scripted(x3[:, :1]), torch.softmax(net(x3[:, :1]), dim=1))


def test_classifier_metrics_pipeline(env, tiny_G, dataset_zip, monkeypatch):
    path = str(env / 'clf.pt')
    _save_small_classifier(path, num_classes=3)
    kwargs = dict(G=tiny_G, dataset_kwargs=_dataset_kwargs(dataset_zip), device='cpu')
    with pytest.raises(metric_utils.MetricOptionsError, match='mode10k need a classifier: pass --classifier=PATH'):
        metric_main.calc_metric('mode10k', **kwargs)
    monkeypatch.setenv('SG2ADA_CLASSIFIER', path)
    mode = metric_main.calc_metric('mode10k', **kwargs).results
    miss = metric_main.calc_metric('miss100k', **kwargs).results

    # Reference: probabilities of the generated images, p(y) from the dataset labels (0, 1, 1, 2 repeating).
    probs = classifier_module.load_classifier(path)(_generated_uint8(tiny_G, 40)).double().numpy()
    p_train = np.array([0.25, 0.5, 0.25])
    n = 24
    p_star = probs[:n].mean(axis=0)
    ref_mode = np.exp(np.mean([np.sum(p * np.log(p / p_train)) for p in probs[:n]]) - np.sum(p_star * np.log(p_star / p_train)))
    assert mode.mode10k == pytest.approx(ref_mode, rel=1e-5)
    assert mode.mode10k_is == pytest.approx(np.exp(np.mean([np.sum(p * np.log(p / p_star)) for p in probs[:n]])), rel=1e-5)
    predicted = probs.argmax(axis=1)
    hist = np.bincount(predicted, minlength=3) / 40
    assert miss.miss100k == 3 - len(set(predicted.tolist()))
    assert miss.miss100k_kl == pytest.approx(sum(h * np.log(h / q) for h, q in zip(hist, p_train) if h > 0), rel=1e-5)

#----------------------------------------------------------------------------
# FID-5k and IS-5k x 10.

def _fid_ref(x, y):
    import scipy.linalg
    mu_x, mu_y = x.mean(axis=0), y.mean(axis=0)
    s_x, s_y = np.cov(x, rowvar=False, bias=True), np.cov(y, rowvar=False, bias=True)
    return np.sum((mu_x - mu_y) ** 2) + np.trace(s_x + s_y - 2 * np.real(scipy.linalg.sqrtm(s_x @ s_y)))


def test_fid5k_and_is5k_follow_the_protocol(env, tiny_G, dataset_zip, monkeypatch):
    kwargs = dict(G=tiny_G, dataset_kwargs=_dataset_kwargs(dataset_zip, xflip=True), device='cpu', cache=False)
    opts = metric_utils.MetricOptions(**dict(kwargs, dataset_kwargs=_dataset_kwargs(dataset_zip)))
    raw = metric_utils.get_feature_stats(opts, dict(
        real=metric_utils.dataset_request(opts, metric_utils.INCEPTION_URL, dict(return_features=True), capture_all=True),
        gen=metric_utils.generator_request(opts, metric_utils.INCEPTION_URL, dict(return_features=True), num_gen=24, capture_all=True),
        probs=metric_utils.generator_request(opts, metric_utils.INCEPTION_URL, dict(no_output_bias=True), num_gen=24, capture_all=True)))
    real, gen = raw['real'].get_all().astype(np.float64), raw['gen'].get_all().astype(np.float64)
    results = metric_main.calc_metrics(['fid5k', 'is5k'], **kwargs)

    # FID: the first 20 generated against the first 30 reals; with more reals asked for than the
    # dataset holds, all 40 reals unmirrored, even though the dataset says xflip.
    assert results[0].results.fid5k == pytest.approx(_fid_ref(gen[:20], real[:30]), rel=1e-6)
    monkeypatch.setattr(paper_metrics, 'FID5K_NUM_REAL', 50)
    assert metric_main.calc_metric('fid5k', **kwargs).results.fid5k == pytest.approx(_fid_ref(gen[:20], real), rel=1e-6)
    # IS: 3 runs of 8 disjoint images, each scored on its own.
    probs = raw['probs'].get_all().astype(np.float64)
    runs = [inception_score.inception_score(probs[8 * i:8 * (i + 1)], num_splits=1)[0] for i in range(3)]
    assert results[1].results.is5k_mean == pytest.approx(np.mean(runs), rel=1e-6)
    assert results[1].results.is5k_std == pytest.approx(np.std(runs), rel=1e-5)

#----------------------------------------------------------------------------
# The ResNet backbone: a functional float64 forward pass straight from the state_dict.

def _resnet_ref(state, img, resize_to):
    F = torch.nn.functional
    sd = {k: v.double() for k, v in state.items() if v.is_floating_point()}
    def bn(x, p):
        shape = [1, -1, 1, 1]
        return (x - sd[p + '.running_mean'].reshape(shape)) / torch.sqrt(sd[p + '.running_var'].reshape(shape) + 1e-5) \
            * sd[p + '.weight'].reshape(shape) + sd[p + '.bias'].reshape(shape)
    x = img.double() / 255
    x = F.interpolate(x, size=[resize_to] * 2, mode='bilinear', align_corners=False, antialias=min(x.shape[2:]) > resize_to)
    x = (x - torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64).reshape(1, 3, 1, 1)) / \
        torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64).reshape(1, 3, 1, 1)
    x = F.max_pool2d(F.relu(bn(F.conv2d(x, sd['conv1.weight'], stride=2, padding=3), 'bn1')), 3, stride=2, padding=1)
    for stage in range(1, 5):
        block = 0
        while f'layer{stage}.{block}.conv1.weight' in sd:
            p = f'layer{stage}.{block}'
            stride = 2 if stage > 1 and block == 0 else 1
            y = F.relu(bn(F.conv2d(x, sd[p + '.conv1.weight']), p + '.bn1'))
            y = F.relu(bn(F.conv2d(y, sd[p + '.conv2.weight'], stride=stride, padding=1), p + '.bn2'))
            y = bn(F.conv2d(y, sd[p + '.conv3.weight']), p + '.bn3')
            skip = bn(F.conv2d(x, sd[p + '.downsample.0.weight'], stride=stride), p + '.downsample.1') if p + '.downsample.0.weight' in sd else x
            x = F.relu(y + skip)
            block += 1
    return x.mean(dim=[2, 3])


def test_resnet_features_match_functional_reference():
    state = _tiny_resnet_state_dict(seed=1)
    assert backbones.resnet_arch_from_state_dict(state) == ((1, 2, 1, 1), 4)
    net = backbones.resnet_from_state_dict(state, resize_to=32)
    img = torch.randint(0, 256, [3, 3, 48, 48], dtype=torch.uint8)
    got = net(img)
    assert got.shape == (3, 128)
    torch.testing.assert_close(got.double(), _resnet_ref(state, img, 32), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match='not a torchvision-style ResNet state_dict'):
        backbones.resnet_from_state_dict({'weight': torch.zeros(1)})


@pytest.mark.slow  # seconds of CPU: in the full suite, not the fast tier
def test_fid_r101_on_tiny_backbone(env, tiny_G, dataset_zip):
    kwargs = dict(G=tiny_G, dataset_kwargs=_dataset_kwargs(dataset_zip), device='cpu')
    results = metric_main.calc_metrics(['fid5k_r101', 'fid50k_full_r101'], **kwargs)
    converted = [name for name in os.listdir(env / 'cache' / 'gan-metrics') if name.startswith('resnet101-63fe2227-features-')]
    assert len(converted) == 1  # one TorchScript conversion, in the cache
    state = _tiny_resnet_state_dict()
    dataset = dnnlib.util.construct_class_by_name(**kwargs['dataset_kwargs'])
    real = _resnet_ref(state, torch.tensor(np.stack([dataset[i][0] for i in range(40)])), 32).numpy()
    gen = _resnet_ref(state, _generated_uint8(tiny_G, 24), 32).numpy()
    assert results[0].results.fid5k_r101 == pytest.approx(_fid_ref(gen[:20], real[:30]), rel=1e-3)
    assert results[1].results.fid50k_full_r101 == pytest.approx(_fid_ref(gen, real), rel=1e-3)
    # Same number twice (the converted detector is reused).
    assert metric_main.calc_metric('fid5k_r101', **kwargs).results.fid5k_r101 == results[0].results.fid5k_r101

#----------------------------------------------------------------------------
# Registry: the new names follow the official ones, and each result key starts with its metric's name (checked above per metric).

def test_paper_metrics_are_registered_after_the_official_ones():
    names = metric_main.list_valid_metrics()
    new = ['fid5k', 'is5k', 'mode10k', 'miss100k', 'msssim10k', 'dc50k5_full', 'fid50k_full_r101', 'fid5k_r101']
    assert all(metric_main.is_valid_metric(name) for name in new)
    assert names.index('ppl_wend') < min(names.index(name) for name in new)

#----------------------------------------------------------------------------
