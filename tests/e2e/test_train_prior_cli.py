"""The issue's command end to end on CPU: train.py --prior=gmm --cfg=stylegan with the offline extractor, then QS/DDS on its snapshot."""

import json
import os

import PIL.Image
import pytest
from click.testing import CliRunner

import calc_metrics
import dnnlib
import legacy
import train
from priors.gmm import prior as gmm_prior
from priors.gmm import metrics as prior_metrics
from training import synthetic

pytestmark = pytest.mark.slow

NUM_GEN = 32

@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path / 'cache'))
    monkeypatch.setattr(dnnlib.util, '_dnnlib_cache_dir', None)
    monkeypatch.setattr(prior_metrics, 'NUM_GEN_10K', NUM_GEN)
    yield tmp_path

#----------------------------------------------------------------------------

def test_train_gmm_stylegan_then_qs_dds(env):
    data = synthetic.make_synthetic_dataset(str(env / 'synth16.zip'), num_images=64, resolution=16, num_modes=4)
    outdir = str(env / 'runs')

    # Train with the user's command line, shrunk: the prior file is built automatically and cached.
    args = ['--outdir', outdir, '--data', data, '--prior=gmm', '--cfg=stylegan', '--prior-feature=tiny',
            '--prior-components=3', '--prior-pca=4', '--resample-kimg=0.004', '--resample-num=16',
            '--cbase=256', '--cmax=16', '--map=2', '--batch=4', '--mbstd-group=2', '--kimg=0.012', '--tick=0.004',
            '--snap=3', '--workers=1', '--aug=noaug']
    result = CliRunner().invoke(train.main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (run_name,) = os.listdir(outdir)
    assert run_name == '00000-synth16-stylegan2-kimg0.012-batch4-noaug-gmm'
    run_dir = os.path.join(outdir, run_name)
    with open(os.path.join(run_dir, 'training_options.json')) as f:
        options = json.load(f)
    assert options['loss_kwargs']['class_name'] == 'priors.loss.PriorLoss'
    assert options['sampler_kwargs']['class_name'] == 'priors.sampler.PriorResampler'

    # The snapshot loads like any network pickle (safe mode too) and carries the prior.
    pkl = os.path.join(run_dir, 'network-snapshot-000000.pkl')
    with open(pkl, 'rb') as f:
        snapshot = legacy.load_network_pkl(f, safe=True)
    state = gmm_prior.prior_state_from_snapshot(snapshot)
    assert state is not None and 'prior_file' in state and 'resample' in state
    with open(os.path.join(run_dir, 'stats.jsonl')) as f:
        stats = [json.loads(line) for line in f]
    assert 'Prior/gmm/nll' in stats[-1] and 'Sampler/weight_max' in stats[-1]

    # Pictures: real images per GMM component, and real vs generated component frequencies.
    for name in ('prior-components.png', 'prior-freqs000000.png'):
        with PIL.Image.open(os.path.join(run_dir, name)) as image:
            assert image.mode == 'RGB' and min(image.size) >= 100

    # QS and DDS from the run's own prior, appended to the run folder.
    result = CliRunner().invoke(calc_metrics.main, ['--network', pkl, '--metrics', 'qs10k,dds10k', '--device', 'cpu',
                                                    '--verbose', 'false'], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    for name, low, high in (('qs10k', 0, 1), ('dds10k', 0, 2)):
        with open(os.path.join(run_dir, f'metric-{name}.jsonl')) as f:
            (line,) = [json.loads(text) for text in f]
        assert low <= line['results'][name] <= high
        assert line['snapshot_pkl'] == 'network-snapshot-000000.pkl'

#----------------------------------------------------------------------------
# Issue 14, point 3: a prior fitted on a subset (build_prior.py --max-images) used to crash training at the
# first resample ("expected one weight per dataset item, shape [50], got shape [30]"). Now every image gets
# a component after the fit, and training runs through several resampling updates.

def test_subset_prior_file_trains_through_resampling(env):
    import build_prior
    from priors.gmm.prior_file import ROLE_FIT, load_prior
    data = synthetic.make_synthetic_dataset(str(env / 'synth50.zip'), num_images=50, resolution=16, num_modes=4)
    prior_path = str(env / 'subset-prior.pt')
    result = CliRunner().invoke(build_prior.main, ['--data', data, '--out', prior_path, '--feature', 'tiny', '--components', '3',
                                                   '--pca', '4', '--max-images', '30', '--device', 'cpu', '--grid', 'false'],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    prior = load_prior(prior_path)
    assert prior.assignments().numel() == 50 and int((prior.roles == ROLE_FIT).sum()) == 30
    outdir = str(env / 'runs')
    args = ['--outdir', outdir, '--data', data, '--prior=gmm', '--prior-file', prior_path, '--cfg=stylegan',
            '--resample-kimg=0.004', '--resample-num=8', '--resample-min-per-component=0', '--cbase=256', '--cmax=16', '--map=2',
            '--batch=4', '--mbstd-group=2', '--kimg=0.012', '--tick=0.004', '--snap=3', '--workers=1', '--aug=noaug']
    result = CliRunner().invoke(train.main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (run_name,) = os.listdir(outdir)
    with open(os.path.join(outdir, run_name, 'network-snapshot-000000.pkl'), 'rb') as f:
        state = gmm_prior.prior_state_from_snapshot(legacy.load_network_pkl(f))
    assert len(state['resample']['history']['nimg']) >= 2
