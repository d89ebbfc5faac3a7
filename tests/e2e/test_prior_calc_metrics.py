"""End-to-end tests of the prior metrics (qs*, dds*) through calc_metrics.py: a prior file built with build_prior.py on a tiny synthetic dataset, a tiny snapshot in a run folder, results appended to metric-*.jsonl, and one generator pass shared with FID."""

import json
import pickle

import pytest
import torch

import build_prior
import calc_metrics
import harness
import priors  # registers the prior metrics
from metrics import metric_main
from metrics import metric_utils
from priors import features
from priors.gmm import metrics as prior_metrics
from priors.gmm import prior_file
from torch_utils import misc

pytestmark = pytest.mark.slow

NUM_GEN = 32   # generated images per metric in these tests (the real metrics use 10k / 50k)

#----------------------------------------------------------------------------
# Fixtures: no network, a private dnnlib cache, a random TorchScript file
# standing in for the Inception detector, small metric sizes.

@pytest.fixture
def env(tmp_path, metric_env, monkeypatch):
    metric_env(seed=3)
    monkeypatch.setattr(metric_main, '_NUM_GEN', NUM_GEN)
    monkeypatch.setattr(prior_metrics, 'NUM_GEN_50K', NUM_GEN)
    monkeypatch.setattr(prior_metrics, 'NUM_GEN_10K', NUM_GEN)
    return tmp_path


@pytest.fixture
def data(env):
    return harness.tiny_dataset(env / 'synth.zip', num_images=64)


def _run(main, args):
    return harness.invoke(main, args)


def _build_prior(data, out, feature):
    harness.invoke_ok(build_prior.main, ['--data', data, '--out', out, '--feature', feature, '--components', '3', '--pca', '4',
                                         '--grid', 'false', '--device', 'cpu'])
    return out


@pytest.fixture
def run_dir(env, data, tiny_G_kwargs, tiny_D_kwargs):
    run = env / 'runs' / '00000-synth-auto1'
    harness.write_snapshot(str(run), data, tiny_G_kwargs, tiny_D_kwargs, num_images=64)
    return run


def _last_result(run, metric):
    lines = (run / f'metric-{metric}.jsonl').read_text().splitlines()
    return len(lines), json.loads(lines[-1])

#----------------------------------------------------------------------------

def test_qs_and_dds_are_appended_to_the_run(env, data, run_dir):
    prior_path = _build_prior(data, str(env / 'tiny-prior.pt'), 'tiny')
    pkl = str(run_dir / 'network-snapshot-000000.pkl')
    result = _run(calc_metrics.main, ['--network', pkl, '--metrics', 'qs10k,dds10k', '--prior-file', prior_path,
                                      '--device', 'cpu', '--verbose', 'false'])
    assert result.exit_code == 0, result.output
    num_qs, qs = _last_result(run_dir, 'qs10k')
    num_dds, dds = _last_result(run_dir, 'dds10k')
    assert num_qs == 1 and num_dds == 1
    assert list(qs['results']) == ['qs10k'] and list(dds['results']) == ['dds10k']
    assert qs['snapshot_pkl'] == 'network-snapshot-000000.pkl' and qs['num_gpus'] == 1

    # The values are QS and DDS of the first NUM_GEN seeded images, embedded by the prior's extractor.
    with open(pkl, 'rb') as f:
        G = pickle.load(f)['G_ema']
    prior = prior_file.load_prior(prior_path)
    extractor = features.build_extractor('tiny', device='cpu')
    sampler = metric_utils.LatentSampler(G, seed=0)
    with torch.no_grad():
        img = sampler.generate(list(range(64)), batch_gen=64)[:NUM_GEN]  # one batch, as the metric pass makes it
        feats = extractor(misc.images_to_uint8(img).permute(0, 3, 1, 2))
    expected = prior_metrics.prior_scores(prior, feats)
    assert qs['results']['qs10k'] == pytest.approx(expected['qs'], abs=1e-9)
    assert dds['results']['dds10k'] == pytest.approx(expected['dds'], abs=1e-9)
    assert 0 <= expected['qs'] <= 1 and 0 <= expected['dds'] <= 2

    # Running again appends a second, identical line.
    result = _run(calc_metrics.main, ['--network', pkl, '--metrics', 'qs10k', '--prior-file', prior_path, '--device', 'cpu'])
    assert result.exit_code == 0, result.output
    num_qs, again = _last_result(run_dir, 'qs10k')
    assert num_qs == 2 and again['results'] == qs['results']


def test_prior_from_the_snapshot(env, data, run_dir):
    prior_path = _build_prior(data, str(env / 'tiny-prior.pt'), 'tiny')
    pkl = str(run_dir / 'network-snapshot-000000.pkl')
    _run(calc_metrics.main, ['--network', pkl, '--metrics', 'qs10k,dds10k', '--prior-file', prior_path, '--device', 'cpu'])

    # A snapshot of a --prior=gmm run carries the prior-file dict in its GMM prior state.
    with open(pkl, 'rb') as f:
        snapshot = pickle.load(f)
    record = torch.load(prior_path, weights_only=True)
    gmm_state = dict(prior_file=record, resample=None)
    snapshot['resume_state'] = dict(version=2, loss=dict(priors=dict(gmm=gmm_state)), ranks=[dict(loss=dict(priors=dict(gmm={})))])
    trained = run_dir / 'network-snapshot-000001.pkl'
    with open(trained, 'wb') as f:
        pickle.dump(snapshot, f)
    result = _run(calc_metrics.main, ['--network', str(trained), '--metrics', 'qs10k,dds10k', '--device', 'cpu', '--verbose', 'false'])
    assert result.exit_code == 0, result.output
    for metric in ('qs10k', 'dds10k'):
        lines = [json.loads(line) for line in (run_dir / f'metric-{metric}.jsonl').read_text().splitlines()]
        assert len(lines) == 2 and lines[1]['snapshot_pkl'] == 'network-snapshot-000001.pkl'
        assert lines[1]['results'] == lines[0]['results']  # same G, same prior


def test_missing_or_bad_prior(env, data, run_dir):
    pkl = str(run_dir / 'network-snapshot-000000.pkl')
    result = _run(calc_metrics.main, ['--network', pkl, '--metrics', 'qs10k', '--device', 'cpu', '--verbose', 'false'])
    assert result.exit_code != 0
    assert ('--prior-file: qs10k needs a GMM prior: pass a prior file from build_prior.py, or use a snapshot trained with the gmm '
            'prior') in ' '.join(result.output.split())
    assert not (run_dir / 'metric-qs10k.jsonl').exists()

    missing = str(env / 'nope.pt')
    result = _run(calc_metrics.main, ['--network', pkl, '--metrics', 'dds10k', '--device', 'cpu', '--prior-file', missing])
    assert result.exit_code != 0 and f"--prior-file: Prior file '{missing}' does not exist" in result.output
    assert not (run_dir / 'metric-dds10k.jsonl').exists()


def test_fid_qs_dds_share_one_generator_pass(env, data, run_dir, monkeypatch):
    # An inception prior: the stand-in detector is the prior's extractor and FID's detector.
    prior_path = _build_prior(data, str(env / 'inception-prior.pt'), 'inception')
    assert prior_file.load_prior(prior_path).feature_name == 'inception'
    pkl = str(run_dir / 'network-snapshot-000000.pkl')
    generated = harness.count_generated(monkeypatch)

    def evaluate(metrics):
        generated.clear()
        result = _run(calc_metrics.main, ['--network', pkl, '--metrics', metrics, '--prior-file', prior_path,
                                          '--device', 'cpu', '--verbose', 'false'])
        assert result.exit_code == 0, result.output
        values = {m: _last_result(run_dir, m)[1]['results'][m] for m in metrics.split(',')}
        return sum(generated), values

    one_pass, _ = evaluate('fid50k_full')
    assert one_pass >= NUM_GEN
    joint_count, joint = evaluate('fid50k_full,qs50k,dds50k')
    assert joint_count == one_pass
    qs_count, alone = evaluate('qs50k')
    assert qs_count == one_pass
    _, fid_alone = evaluate('fid50k_full')
    assert joint == dict(fid_alone, **alone, dds50k=joint['dds50k'])
    _, dds_alone = evaluate('dds50k')
    assert dds_alone['dds50k'] == joint['dds50k']

#----------------------------------------------------------------------------
