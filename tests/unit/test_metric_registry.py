"""Unit tests of the metric registry, result reporting, FeatureStats, feature requests, seeded sampling and detector lookup."""

import hashlib
import json
import os
import urllib.error

import numpy as np
import pytest
import torch

import dnnlib
from metrics import metric_main
from metrics import metric_utils

OFFICIAL_METRICS = ['fid50k_full', 'kid50k_full', 'pr50k3_full', 'ppl2_wend', 'is50k',
                    'fid50k', 'kid50k', 'pr50k3', 'ppl_zfull', 'ppl_wfull', 'ppl_zend', 'ppl_wend']

#----------------------------------------------------------------------------
# Fixtures: a private copy of the registry, an empty dnnlib cache, no detector overrides.

@pytest.fixture
def registry(monkeypatch):
    monkeypatch.setattr(metric_main, '_metric_dict', dict(metric_main._metric_dict))
    return metric_main._metric_dict

@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(dnnlib.util, '_dnnlib_cache_dir', str(tmp_path / 'cache'))
    for name in list(os.environ):
        if name.startswith(metric_utils.DETECTOR_ENV_PREFIX):
            monkeypatch.delenv(name)
    metric_utils.reset_detector_cache()
    yield tmp_path / 'cache'
    metric_utils.reset_detector_cache()

#----------------------------------------------------------------------------
# Registry.

def test_official_metrics_are_registered_in_order():
    assert metric_main.list_valid_metrics()[:len(OFFICIAL_METRICS)] == OFFICIAL_METRICS
    assert all(metric_main.is_valid_metric(name) for name in OFFICIAL_METRICS)
    assert not metric_main.is_valid_metric('fid50k_ful')


def test_register_metric_adds_a_new_metric(registry):
    def tiny_metric(opts):
        return dict(tiny_metric=1.5)
    assert metric_main.register_metric(tiny_metric) is tiny_metric
    assert metric_main.list_valid_metrics()[-1] == 'tiny_metric'
    result = metric_main.calc_metric('tiny_metric', device='cpu')
    assert result.results == dict(tiny_metric=1.5)
    assert result.metric == 'tiny_metric' and result.num_gpus == 1
    assert list(result) == ['results', 'metric', 'total_time', 'total_time_str', 'num_gpus']


def test_register_metric_rejects_a_taken_name(registry):
    def fid50k_full(opts):
        return dict(fid50k_full=0.0)
    with pytest.raises(ValueError, match='"fid50k_full" is already registered by metrics.metric_main'):
        metric_main.register_metric(fid50k_full)


def test_register_metric_rejects_non_callables(registry):
    with pytest.raises(TypeError, match='expected a function, got str'):
        metric_main.register_metric('fid')


def test_unknown_metric_lists_valid_names():
    with pytest.raises(ValueError, match=r'Unknown metric "fid10k"; valid metrics: fid50k_full, kid50k_full'):
        metric_main.calc_metric('fid10k', device='cpu')


def test_metric_must_return_a_dict(registry):
    def returns_float(opts):
        return 1.0
    metric_main.register_metric(returns_float)
    with pytest.raises(TypeError, match='Metric "returns_float" returned a float'):
        metric_main.calc_metric('returns_float', device='cpu')

#----------------------------------------------------------------------------
# report_metric.

def test_report_metric_appends_official_lines(tmp_path, capsys):
    result = dnnlib.EasyDict(results=dnnlib.EasyDict(fid50k_full=12.5), metric='fid50k_full', total_time=5.0,
                             total_time_str='5s', num_gpus=1)
    snapshot = os.path.join(str(tmp_path), 'network-snapshot-000004.pkl')
    metric_main.report_metric(result, run_dir=str(tmp_path), snapshot_pkl=snapshot)
    metric_main.report_metric(result, run_dir=str(tmp_path), snapshot_pkl=snapshot)
    lines = (tmp_path / 'metric-fid50k_full.jsonl').read_text().splitlines()
    assert len(lines) == 2
    record = json.loads(lines[0])
    assert list(record) == ['results', 'metric', 'total_time', 'total_time_str', 'num_gpus', 'snapshot_pkl', 'timestamp']
    assert record['snapshot_pkl'] == 'network-snapshot-000004.pkl'
    assert record['results'] == dict(fid50k_full=12.5)
    assert capsys.readouterr().out.strip().splitlines()[0] == lines[0]


def test_report_metric_without_run_dir_only_prints(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = dict(results=dict(is50k_mean=2.0, is50k_std=0.1), metric='is50k', total_time=1.0, total_time_str='1s', num_gpus=1)
    metric_main.report_metric(result, snapshot_pkl='x.pkl')
    assert json.loads(capsys.readouterr().out)['snapshot_pkl'] == 'x.pkl'
    assert os.listdir(tmp_path) == []

#----------------------------------------------------------------------------
# FeatureStats.

def test_feature_stats_stops_at_max_items_and_keeps_float64_moments(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal([10, 3]).astype(np.float32) * 1000 + 1e4
    stats = metric_utils.FeatureStats(capture_all=True, capture_mean_cov=True, max_items=7)
    stats.append(x[:4])
    assert not stats.is_full()
    stats.append(x[4:])
    stats.append(x)  # ignored: already full
    assert stats.is_full() and stats.num_items == 7
    np.testing.assert_array_equal(stats.get_all(), x[:7])
    mean, cov = stats.get_mean_cov()
    assert mean.dtype == np.float64 and cov.dtype == np.float64
    np.testing.assert_allclose(mean, x[:7].astype(np.float64).mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(cov, np.cov(x[:7].astype(np.float64), rowvar=False, bias=True), rtol=1e-6, atol=1e-6)

    # Round trip through a file.
    stats.save(str(tmp_path / 's.pkl'))
    loaded = metric_utils.FeatureStats.load(str(tmp_path / 's.pkl'))
    assert loaded.num_items == 7
    np.testing.assert_array_equal(loaded.get_all(), x[:7])


def test_feature_stats_errors():
    stats = metric_utils.FeatureStats(capture_all=True)
    with pytest.raises(ValueError, match=r'expected \[N, F\] features, got shape \[3\]'):
        stats.append(np.zeros([3]))
    stats.append(np.zeros([2, 4]))
    with pytest.raises(ValueError, match='got 5 features per item after 4'):
        stats.append(np.zeros([2, 5]))
    with pytest.raises(ValueError, match='capture_mean_cov=False'):
        stats.get_mean_cov()

#----------------------------------------------------------------------------
# Requests and options.

def test_feature_request_validation():
    opts = metric_utils.MetricOptions(device='cpu')
    with pytest.raises(ValueError, match='set capture_all and/or capture_mean_cov'):
        metric_utils.dataset_request(opts, 'det.pt', {})
    with pytest.raises(ValueError, match='input_format must be "uint8" or "float", got \'rgb\''):
        metric_utils.dataset_request(opts, 'det.pt', {}, capture_all=True, input_format='rgb')
    with pytest.raises(TypeError, match='detector must be a URL, a file path or a torch.nn.Module, got int'):
        metric_utils.dataset_request(opts, 3, {}, capture_all=True)
    with pytest.raises(ValueError, match='num_gen must be >= 1, got 0'):
        metric_utils.generator_request(opts, 'det.pt', {}, num_gen=0, capture_all=True)


def test_requests_share_passes_only_when_they_should():
    opts = metric_utils.MetricOptions(device='cpu', dataset_kwargs=dict(path='a.zip'))
    fid = metric_utils.dataset_request(opts, metric_utils.INCEPTION_URL, dict(return_features=True), capture_mean_cov=True)
    kid = metric_utils.dataset_request(opts, metric_utils.INCEPTION_URL, dict(return_features=True), max_items=10, capture_all=True)
    prob = metric_utils.dataset_request(opts, metric_utils.INCEPTION_URL, dict(no_output_bias=True), capture_all=True)
    assert fid.pass_key() == kid.pass_key() == prob.pass_key()
    assert fid.embed_key() == kid.embed_key() != prob.embed_key()
    # The cache file depends on max_items (upstream pitfall 13).
    assert fid.cache_file('a') != kid.cache_file('a')
    opts.dataset_kwargs.update(xflip=True)
    flipped = metric_utils.dataset_request(opts, metric_utils.INCEPTION_URL, dict(return_features=True), capture_mean_cov=True)
    assert flipped.pass_key() != fid.pass_key()


def test_metric_options_defaults_and_errors():
    opts = metric_utils.MetricOptions(dataset_kwargs=dict(path='x'))
    assert opts.device.type == ('cuda' if torch.cuda.is_available() else 'cpu')
    assert isinstance(opts.dataset_kwargs, dnnlib.EasyDict) and opts.seed == 0 and opts.cache
    with pytest.raises(ValueError, match='0 <= rank < num_gpus, got num_gpus=2, rank=2'):
        metric_utils.MetricOptions(num_gpus=2, rank=2)

#----------------------------------------------------------------------------
# Seeded sampling does not depend on how samples are batched.

def test_latent_sampler_draws_per_sample(tiny_G_kwargs):
    from training.networks import Generator
    G = Generator(**tiny_G_kwargs)
    sampler = metric_utils.LatentSampler(G, seed=5)
    assert sampler.per_sample_noise and len(sampler.noise_layers) > 0
    whole = sampler.draw(np.arange(6), num_z=2, draw_t=True)
    parts = [sampler.draw(np.arange(0, 2), num_z=2, draw_t=True), sampler.draw(np.arange(2, 6), num_z=2, draw_t=True)]
    for k in range(2):
        torch.testing.assert_close(whole.z[k], torch.cat([p.z[k] for p in parts]), rtol=0, atol=0)
    torch.testing.assert_close(whole.t, torch.cat([p.t for p in parts]), rtol=0, atol=0)
    for layer in range(len(whole.noise)):
        torch.testing.assert_close(whole.noise[layer], torch.cat([p.noise[layer] for p in parts]), rtol=0, atol=0)
    other_seed = metric_utils.LatentSampler(G, seed=6).draw(np.arange(6), num_z=2)
    assert not torch.equal(other_seed.z[0], whole.z[0])
    # noise_mode='const' keeps G's own noise.
    assert not metric_utils.LatentSampler(G, seed=5, G_kwargs=dict(noise_mode='const')).per_sample_noise

#----------------------------------------------------------------------------
# Detector lookup.

def test_detector_env_var_names():
    assert metric_utils.detector_env_var(metric_utils.INCEPTION_URL) == 'SG2ADA_DETECTOR_INCEPTION_2015_12_05'
    assert metric_utils.detector_env_var(metric_utils.VGG16_URL) == 'SG2ADA_DETECTOR_VGG16'
    assert metric_utils.get_feature_detector_name(metric_utils.INCEPTION_URL) == 'inception-2015-12-05'


def test_detector_that_cannot_be_downloaded_says_how_to_use_a_local_file(empty_cache, monkeypatch):
    def no_network(url, num_attempts, verbose):
        raise urllib.error.URLError('no network')
    monkeypatch.setattr(dnnlib.util, '_download', no_network)
    with pytest.raises(metric_utils.DetectorUnavailableError,
                       match=r'Cannot load the feature detector "inception-2015-12-05" .* set SG2ADA_DETECTOR_INCEPTION_2015_12_05=/path/to/inception-2015-12-05.pt'):
        metric_utils.get_feature_detector(metric_utils.INCEPTION_URL)


def test_detector_env_var_pointing_nowhere(empty_cache, monkeypatch, tmp_path):
    monkeypatch.setenv('SG2ADA_DETECTOR_VGG16', str(tmp_path / 'missing.pt'))
    with pytest.raises(metric_utils.DetectorUnavailableError, match=r'SG2ADA_DETECTOR_VGG16=.*missing.pt: file not found'):
        metric_utils.get_feature_detector(metric_utils.VGG16_URL)


def test_detector_from_env_var_dir_and_cache(empty_cache, monkeypatch, tmp_path):
    path = str(tmp_path / 'tiny.pt')
    metric_utils.build_random_detector(path, num_features=5)
    monkeypatch.setenv('SG2ADA_DETECTOR_INCEPTION_2015_12_05', path)
    det = metric_utils.get_feature_detector(metric_utils.INCEPTION_URL)
    assert det is metric_utils.get_feature_detector(metric_utils.INCEPTION_URL)  # loaded once
    img = torch.randint(0, 256, [2, 3, 16, 16], dtype=torch.uint8)
    assert det(img, return_features=True).shape == (2, 5)
    probs = det(img)
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(2))

    # A folder of <name>.pt files.
    monkeypatch.delenv('SG2ADA_DETECTOR_INCEPTION_2015_12_05')
    folder = tmp_path / 'detectors'
    folder.mkdir()
    metric_utils.build_random_detector(str(folder / 'vgg16.pt'))
    monkeypatch.setenv('SG2ADA_DETECTOR_DIR', str(folder))
    assert metric_utils.resolve_detector_file(metric_utils.VGG16_URL) == str(folder / 'vgg16.pt')

    # A pre-seeded download cache (official layout) works offline.
    monkeypatch.delenv('SG2ADA_DETECTOR_DIR')
    md5 = hashlib.md5(metric_utils.INCEPTION_URL.encode('utf-8')).hexdigest()
    cached = dnnlib.util.make_cache_dir_path('downloads', f'{md5}_inception-2015-12-05.pt')
    os.makedirs(os.path.dirname(cached))
    metric_utils.build_random_detector(cached)
    assert metric_utils.resolve_detector_file(metric_utils.INCEPTION_URL) == cached


def test_file_that_is_no_detector(empty_cache, tmp_path):
    path = tmp_path / 'junk.pt'
    path.write_bytes(b'not a torchscript archive')
    with pytest.raises(metric_utils.DetectorUnavailableError, match='is not a TorchScript feature detector'):
        metric_utils.get_feature_detector(str(path))

#----------------------------------------------------------------------------
