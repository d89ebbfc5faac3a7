"""Metric formulas against float64 references (FID, KID, PR, IS, PPL), and the feature pipeline: seeding, dataset cache, one pass for many metrics."""

import math
import os

import numpy as np
import pytest
import scipy.linalg
import torch

import dnnlib
from metrics import frechet_inception_distance
from metrics import inception_score
from metrics import kernel_inception_distance
from metrics import metric_main
from metrics import metric_utils
from metrics import perceptual_path_length
from metrics import precision_recall

#----------------------------------------------------------------------------
# Fixtures: tiny dataset, tiny random detector standing in for Inception and
# VGG16, a private registry with small test metrics, an empty cache.

@pytest.fixture(scope='module')
def dataset_zip(tmp_path_factory):
    from training.dataset import DatasetWriter
    path = str(tmp_path_factory.mktemp('data') / 'tiny.zip')
    rng = np.random.default_rng(0)
    with DatasetWriter(path) as writer:
        for i in range(40):
            writer.add_image(f'{i:05d}.png', rng.integers(0, 256, [16, 16, 3], dtype=np.uint8))
        writer.write_metadata({'labels': [[f'{i:05d}.png', i % 2] for i in range(40)]})
    return path


@pytest.fixture(scope='module')
def detector_file(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('det') / 'tiny-detector.pt')
    metric_utils.build_random_detector(path, num_features=12)
    return path


@pytest.fixture
def env(detector_file, tmp_path, monkeypatch):
    monkeypatch.setattr(dnnlib.util, '_dnnlib_cache_dir', str(tmp_path / 'cache'))
    monkeypatch.setenv('SG2ADA_DETECTOR_INCEPTION_2015_12_05', detector_file)
    monkeypatch.setenv('SG2ADA_DETECTOR_VGG16', detector_file)
    monkeypatch.setattr(metric_main, '_metric_dict', dict(metric_main._metric_dict))
    _register_small_metrics()
    metric_utils.reset_detector_cache()
    yield tmp_path / 'cache'
    metric_utils.reset_detector_cache()


def _register_small_metrics():
    def fid32(opts):
        return dict(fid32=frechet_inception_distance.compute_fid(opts, max_real=None, num_gen=32))
    def kid32(opts):
        return dict(kid32=kernel_inception_distance.compute_kid(opts, max_real=None, num_gen=32, num_subsets=5, max_subset_size=16))
    def is32(opts):
        mean, std = inception_score.compute_is(opts, num_gen=32, num_splits=4)
        return dict(is32_mean=mean, is32_std=std)
    def fid20r(opts):  # fewer reals: a different cache entry
        return dict(fid20r=frechet_inception_distance.compute_fid(opts, max_real=20, num_gen=32))
    for fn in (fid32, kid32, is32, fid20r):
        metric_main.register_metric(fn)


@pytest.fixture
def tiny_G(tiny_G_kwargs):
    from training.networks import Generator
    torch.manual_seed(0)
    return Generator(**tiny_G_kwargs).eval()


def _dataset_kwargs(path, **overrides):
    return dict(dict(class_name='training.dataset.ImageFolderDataset', path=path, resolution=16, use_labels=False), **overrides)

#----------------------------------------------------------------------------
# FID.

def _fid_reference(x, y):
    # Textbook float64 formula with scipy's general matrix square root.
    mu_x, mu_y = x.mean(axis=0), y.mean(axis=0)
    s_x, s_y = np.cov(x, rowvar=False, bias=True), np.cov(y, rowvar=False, bias=True)
    covmean = np.real(scipy.linalg.sqrtm(s_x @ s_y))
    return np.sum((mu_x - mu_y) ** 2) + np.trace(s_x + s_y - 2 * covmean)


@pytest.mark.parametrize('n, f', [(200, 6), (30, 8)])
def test_frechet_distance_matches_scipy_sqrtm(n, f):
    rng = np.random.default_rng(1)
    x = rng.standard_normal([n, f]) @ rng.standard_normal([f, f])
    y = rng.standard_normal([n + 7, f]) * 0.5 + 0.3
    stats = []
    for data in (x, y):
        s = metric_utils.FeatureStats(capture_mean_cov=True)
        s.append(data)
        stats.append(s.get_mean_cov())
    got = frechet_inception_distance.frechet_distance(*stats[0], *stats[1])
    ref = _fid_reference(x.astype(np.float32).astype(np.float64), y.astype(np.float32).astype(np.float64))
    assert got == pytest.approx(ref, rel=1e-7, abs=1e-9)
    assert frechet_inception_distance.frechet_distance(*stats[0], *stats[0]) == pytest.approx(0, abs=1e-9)


def test_fid_pipeline_matches_reference_on_raw_features(env, tiny_G, dataset_zip):
    opts = metric_utils.MetricOptions(G=tiny_G, dataset_kwargs=_dataset_kwargs(dataset_zip), device='cpu')
    fid = frechet_inception_distance.compute_fid(opts, max_real=None, num_gen=32)
    raw = metric_utils.get_feature_stats(opts, dict(
        real=metric_utils.dataset_request(opts, metric_utils.INCEPTION_URL, dict(return_features=True), capture_all=True),
        gen=metric_utils.generator_request(opts, metric_utils.INCEPTION_URL, dict(return_features=True), num_gen=32, capture_all=True)))
    real, gen = raw['real'].get_all().astype(np.float64), raw['gen'].get_all().astype(np.float64)
    assert real.shape == (40, 12) and gen.shape == (32, 12)
    assert fid == pytest.approx(_fid_reference(gen, real), rel=1e-6)

#----------------------------------------------------------------------------
# KID.

def _mmd2_unbiased(x, y):
    # Direct definition with explicit sums over i != j.
    n = x.shape[1]
    k = lambda a, b: (a @ b.T / n + 1) ** 3
    m = x.shape[0]
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    off = ~np.eye(m, dtype=bool)
    return kxx[off].sum() / (m * (m - 1)) + kyy[off].sum() / (m * (m - 1)) - 2 * kxy.sum() / (m * m)


def test_kernel_distance_matches_unbiased_mmd():
    rng = np.random.default_rng(2)
    real = rng.standard_normal([25, 5])
    gen = rng.standard_normal([25, 5]) * 1.3 + 0.2
    # Subsets as large as the sets are permutations, so every subset gives the full-set MMD.
    got = kernel_inception_distance.kernel_distance(real, gen, num_subsets=3, max_subset_size=1000, seed=0)
    assert got == pytest.approx(_mmd2_unbiased(gen, real), rel=1e-10)


def test_kernel_distance_subsets_are_seeded():
    rng = np.random.default_rng(3)
    real, gen = rng.standard_normal([50, 4]), rng.standard_normal([60, 4]) + 0.5
    a = kernel_inception_distance.kernel_distance(real, gen, num_subsets=4, max_subset_size=10, seed=7)
    b = kernel_inception_distance.kernel_distance(real, gen, num_subsets=4, max_subset_size=10, seed=7)
    c = kernel_inception_distance.kernel_distance(real, gen, num_subsets=4, max_subset_size=10, seed=8)
    assert a == b and a != c
    # Reference: the same subsets drawn by hand.
    draw = np.random.default_rng(7)
    ref = np.mean([_mmd2_unbiased(gen[draw.choice(60, 10, replace=False)], real[draw.choice(50, 10, replace=False)]) for _ in range(4)])
    assert a == pytest.approx(ref, rel=1e-10)

#----------------------------------------------------------------------------
# Precision and recall.

def _coverage_reference(manifold, probes, k):
    d_mm = np.sqrt(((manifold[:, None] - manifold[None]) ** 2).sum(-1))
    radii = np.sort(d_mm, axis=1)[:, k]  # index 0 is the point itself
    d_pm = np.sqrt(((probes[:, None] - manifold[None]) ** 2).sum(-1))
    return float((d_pm <= radii[None]).any(axis=1).mean())


def test_precision_recall_match_brute_force_knn():
    rng = np.random.default_rng(4)
    real = rng.standard_normal([40, 6])
    gen = rng.standard_normal([33, 6]) * 0.7 + 0.4
    p, r = precision_recall.precision_recall(torch.tensor(real), torch.tensor(gen), nhood_size=3, row_batch_size=7, col_batch_size=5)
    assert p == pytest.approx(_coverage_reference(real, gen, 3))
    assert r == pytest.approx(_coverage_reference(gen, real, 3))
    assert 0 < p < 1 and 0 < r < 1


def test_compute_distances_and_knn_radii():
    rng = np.random.default_rng(5)
    rows, cols = rng.standard_normal([9, 4]), rng.standard_normal([23, 4])
    dist = precision_recall.compute_distances(torch.tensor(rows), torch.tensor(cols), col_batch_size=6)
    np.testing.assert_allclose(dist.numpy(), scipy.spatial.distance.cdist(rows, cols), rtol=1e-5, atol=1e-5)
    radii = precision_recall.kth_neighbour_distances(torch.tensor(cols), nhood_size=2, row_batch_size=4, col_batch_size=5)
    ref = np.sort(scipy.spatial.distance.cdist(cols, cols), axis=1)[:, 2]
    np.testing.assert_allclose(radii.numpy(), ref, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match='need more than nhood_size=3 points, got 3'):
        precision_recall.kth_neighbour_distances(torch.tensor(cols[:3]), nhood_size=3, row_batch_size=4, col_batch_size=5)

#----------------------------------------------------------------------------
# Inception score.

def test_inception_score_matches_direct_formula():
    rng = np.random.default_rng(6)
    logits = rng.standard_normal([30, 5]) * 2
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    scores = []
    for split in range(3):
        rows = probs[split * 10:(split + 1) * 10]
        marginal = [sum(row[k] for row in rows) / len(rows) for k in range(5)]
        kl = [sum(row[k] * math.log(row[k] / marginal[k]) for k in range(5)) for row in rows]
        scores.append(math.exp(sum(kl) / len(kl)))
    mean, std = inception_score.inception_score(probs, num_splits=3)
    assert mean == pytest.approx(np.mean(scores), rel=1e-12)
    assert std == pytest.approx(np.std(scores), rel=1e-9)
    # One-hot predictions of evenly used classes reach the maximum score K.
    assert inception_score.inception_score(np.eye(5)[np.arange(20) % 5], 2)[0] == pytest.approx(5)

#----------------------------------------------------------------------------
# PPL.

def test_slerp_matches_float64_reference():
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal([4, 6]), rng.standard_normal([4, 6])
    t = rng.uniform(size=[4, 1])
    ua, ub = a / np.linalg.norm(a, axis=1, keepdims=True), b / np.linalg.norm(b, axis=1, keepdims=True)
    omega = np.arccos((ua * ub).sum(axis=1, keepdims=True))
    ref = (np.sin((1 - t) * omega) * ua + np.sin(t * omega) * ub) / np.sin(omega)  # classic slerp formula
    got = perceptual_path_length.slerp(torch.tensor(a), torch.tensor(b), torch.tensor(t))
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-10, atol=1e-12)


class _LinearG(torch.nn.Module):
    # A generator that is linear in w, so PPL has a closed form: images = A w.
    def __init__(self, z_dim=4, res=16):
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, 0, z_dim, 2
        self.img_resolution, self.img_channels = res, 3
        self.A = torch.nn.Parameter(torch.randn([3 * res * res, z_dim], generator=gen) * 0.1)
        self.mapping = lambda z, c: z.unsqueeze(1).repeat(1, self.num_ws, 1)
        self.synthesis = lambda ws, **kwargs: (ws[:, 0] @ self.A.t()).reshape(-1, 3, res, res)


class _FlattenLPIPS(torch.nn.Module):
    # LPIPS stand-in: the pixels themselves.
    def forward(self, img, resize_images: bool = True, return_lpips: bool = False):
        return img.flatten(1)


@pytest.fixture
def flatten_lpips(tmp_path, monkeypatch, env):
    path = str(tmp_path / 'flatten.pt')
    torch.jit.save(torch.jit.script(_FlattenLPIPS()), path)
    monkeypatch.setenv('SG2ADA_DETECTOR_VGG16', path)
    return path


@pytest.mark.parametrize('crop', [False, True])
def test_ppl_w_space_matches_closed_form(flatten_lpips, crop):
    G = _LinearG()
    opts = metric_utils.MetricOptions(G=G, device='cpu', seed=3)
    got = perceptual_path_length.compute_ppl(opts, num_samples=50, epsilon=0.5, space='w', sampling='full', crop=crop, batch_size=8)

    # Reference: per-sample draws in the documented order (t, z0, z1); image difference = 127.5 * eps * A (z1 - z0).
    A = G.A.detach().double().numpy().reshape(3, 16, 16, 4)
    if crop:
        A = A[:, 6:14, 4:12]
    dist = []
    for i in range(50):
        rng = metric_utils.sample_rng(3, i)
        rng.uniform()
        z0, z1 = rng.standard_normal(4), rng.standard_normal(4)
        dist.append(np.sum((127.5 * (A @ (z1 - z0))) ** 2))
    dist = np.array(dist)
    lo, hi = np.percentile(dist, 1, method='lower'), np.percentile(dist, 99, method='higher')
    ref = dist[(dist >= lo) & (dist <= hi)].mean()
    assert got == pytest.approx(ref, rel=1e-4)


def test_ppl_z_space_matches_float64_reference(flatten_lpips):
    G = _LinearG()
    opts = metric_utils.MetricOptions(G=G, device='cpu', seed=1)
    eps = 1e-2
    got = perceptual_path_length.compute_ppl(opts, num_samples=20, epsilon=eps, space='z', sampling='full', crop=False, batch_size=4)
    A = G.A.detach().double().numpy()
    unit = lambda v: v / np.linalg.norm(v)
    def slerp(a, b, t):
        a, b = unit(a), unit(b)
        omega = np.arccos(a @ b)
        return (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)
    dist = []
    for i in range(20):
        rng = metric_utils.sample_rng(1, i)
        t = rng.uniform()
        z0, z1 = rng.standard_normal(4), rng.standard_normal(4)
        diff = 127.5 * A @ (slerp(z0, z1, t + eps) - slerp(z0, z1, t))
        dist.append(diff @ diff / eps ** 2)
    dist = np.array(dist)
    assert got == pytest.approx(perceptual_path_length.trimmed_mean(dist), rel=1e-3)
    assert perceptual_path_length.trimmed_mean(dist) < dist.max()  # the top value is trimmed


@pytest.mark.slow  # seconds of CPU: in the full suite, not the fast tier
def test_ppl_tiny_network_is_seeded_and_batch_independent(env, tiny_G):
    def ppl(batch_size, seed=0):
        opts = metric_utils.MetricOptions(G=tiny_G, device='cpu', seed=seed)
        return perceptual_path_length.compute_ppl(opts, num_samples=12, epsilon=1e-2, space='w', sampling='end', crop=False, batch_size=batch_size)
    a = ppl(4)
    assert np.isfinite(a) and a > 0
    assert ppl(4) == a
    assert ppl(6) == pytest.approx(a, rel=1e-4)
    assert ppl(4, seed=1) != pytest.approx(a, rel=1e-4)

#----------------------------------------------------------------------------
# Seeding and batch independence of generated features.

def test_metric_gives_the_same_value_twice(env, tiny_G, dataset_zip):
    kwargs = dict(G=tiny_G, dataset_kwargs=_dataset_kwargs(dataset_zip), device='cpu', cache=False)
    first = metric_main.calc_metric('fid32', **kwargs).results.fid32
    assert metric_main.calc_metric('fid32', **kwargs).results.fid32 == first
    assert metric_main.calc_metric('fid32', seed=1, **kwargs).results.fid32 != first


@pytest.mark.slow  # seconds of CPU: in the full suite, not the fast tier
def test_generated_features_do_not_depend_on_batch_size(env, tiny_G):
    opts = metric_utils.MetricOptions(G=tiny_G, device='cpu')
    a = metric_utils.compute_feature_stats_for_generator(opts, metric_utils.INCEPTION_URL, dict(return_features=True),
                                                         batch_size=8, batch_gen=2, max_items=20, capture_all=True)
    b = metric_utils.compute_feature_stats_for_generator(opts, metric_utils.INCEPTION_URL, dict(return_features=True),
                                                         batch_size=16, batch_gen=16, max_items=20, capture_all=True)
    # Up to float rounding: another batch size may round a pixel to the neighbouring uint8 value (features move
    # by ~1e-4); a latent or noise drawn per batch instead of per sample moves them by O(1).
    np.testing.assert_allclose(a.get_all(), b.get_all(), rtol=1e-3, atol=1e-3)


def test_conditional_generator_draws_dataset_labels(env, dataset_zip, tiny_G_kwargs):
    from training.networks import Generator
    torch.manual_seed(0)
    G = Generator(**dict(tiny_G_kwargs, c_dim=2)).eval()
    kwargs = _dataset_kwargs(dataset_zip, use_labels=True)
    value = metric_main.calc_metric('fid32', G=G, dataset_kwargs=kwargs, device='cpu').results.fid32
    assert np.isfinite(value)
    sampler = metric_utils.LatentSampler(G, seed=0, dataset_kwargs=kwargs)
    labels = sampler.draw(np.arange(20)).c
    assert set(labels.argmax(dim=1).tolist()) == {0, 1} and torch.all(labels.sum(dim=1) == 1)
    with pytest.raises(ValueError, match=r'G is conditional \(c_dim=2\) but dataset "tiny" gives labels of shape \[0\]'):
        metric_main.calc_metric('fid32', G=G, dataset_kwargs=_dataset_kwargs(dataset_zip), device='cpu')

#----------------------------------------------------------------------------
# Dataset feature cache.

@pytest.mark.slow  # seconds of CPU: in the full suite, not the fast tier
def test_dataset_features_are_cached_per_options(env, tiny_G, dataset_zip, monkeypatch):
    passes = []
    original = metric_utils._dataset_pass
    def counting_pass(opts, dataset, reqs, *args):
        passes.append([req.max_items for req in reqs])
        return original(opts, dataset, reqs, *args)
    monkeypatch.setattr(metric_utils, '_dataset_pass', counting_pass)
    kwargs = dict(G=tiny_G, dataset_kwargs=_dataset_kwargs(dataset_zip), device='cpu')

    first = metric_main.calc_metric('fid32', **kwargs).results.fid32
    assert passes == [[None]]
    files = os.listdir(env / 'gan-metrics')
    assert len(files) == 1 and files[0].startswith('tiny-inception-2015-12-05-')
    assert metric_main.calc_metric('fid32', **kwargs).results.fid32 == first
    assert passes == [[None]]  # served from the cache

    # Fewer reals: a new cache entry (upstream reused the full one), and another value.
    other = metric_main.calc_metric('fid20r', **kwargs).results.fid20r
    assert passes == [[None], [20]] and other != first
    assert len(os.listdir(env / 'gan-metrics')) == 2

    # cache=False always reads the data.
    metric_main.calc_metric('fid32', cache=False, **kwargs)
    assert len(passes) == 3

#----------------------------------------------------------------------------
# One pass for many metrics.

@pytest.mark.slow  # seconds of CPU: in the full suite, not the fast tier
def test_three_metrics_share_one_pass_and_match_separate_calls(env, tiny_G, dataset_zip):
    calls = []
    tiny_G.register_forward_hook(lambda module, inputs, output: calls.append(output.shape[0]))
    kwargs = dict(G=tiny_G, dataset_kwargs=_dataset_kwargs(dataset_zip), device='cpu', cache=False)
    names = ['fid32', 'kid32', 'is32']

    together = metric_main.calc_metrics(names, **kwargs)
    shared_calls = list(calls)
    assert sum(shared_calls) == 64  # one batch of 64 covers all 32 images: generated once
    separate = []
    for name in names:
        calls.clear()
        separate.append(metric_main.calc_metric(name, **kwargs))
        assert calls == shared_calls  # each alone generates the same images
    for joint, alone in zip(together, separate):
        assert joint.metric == alone.metric
        assert joint.results == alone.results
        assert joint.total_time > 0


def test_planner_runs_equal_requests_once(env, tiny_G, dataset_zip, monkeypatch):
    served = []
    original = metric_utils.compute_feature_stats
    def counting(opts, requests):
        served.append(len(requests))
        return original(opts, requests)
    monkeypatch.setattr(metric_utils, 'compute_feature_stats', counting)
    kwargs = dict(G=tiny_G, dataset_kwargs=_dataset_kwargs(dataset_zip), device='cpu', cache=False)
    results = metric_main.calc_metrics(['fid32', 'fid32', 'kid32'], **kwargs)
    assert served == [4]  # fid: real + gen; kid: real + gen (other stats); the second fid adds nothing
    assert results[0].results == results[1].results


def test_module_detector_in_a_request(env, tiny_G, dataset_zip):
    # A detector given as a module object (as the priors' feature extractors will be).
    module = metric_utils.RandomDetector(num_features=6, seed=3)
    twin = metric_utils.RandomDetector(num_features=6, seed=3)
    opts = metric_utils.MetricOptions(G=tiny_G, dataset_kwargs=_dataset_kwargs(dataset_zip), device='cpu')
    req = metric_utils.generator_request(opts, module, dict(return_features=True), num_gen=8, capture_all=True, input_format='float')
    assert req.embed_key() == metric_utils.generator_request(opts, twin, dict(return_features=True), num_gen=8,
                                                             capture_all=True, input_format='float').embed_key()
    stats = metric_utils.get_feature_stats(opts, dict(gen=req, real=metric_utils.dataset_request(opts, module, dict(return_features=True), capture_all=True)))
    assert stats['gen'].get_all().shape == (8, 6) and stats['real'].get_all().shape == (40, 6)
    assert len(os.listdir(env / 'gan-metrics')) == 1  # module detectors are cached by their weights

#----------------------------------------------------------------------------
