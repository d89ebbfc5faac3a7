"""The toy lab end to end through the command lines: train.py --cfg=toy (baseline and --prior=gmm), exact resume, calc_metrics.py toy2k and generate.py points on its snapshots."""

import json
import os

import numpy as np
import PIL.Image
import pytest
import torch
from click.testing import CliRunner

import calc_metrics
import generate
import legacy
import train
from metrics import toy_metrics

pytestmark = pytest.mark.slow

DATA = 'toy:ring8,n=400'
TINY = ['--cfg=toy', f'--data={DATA}', '--batch=32', '--tick=0.064', '--snap=2']   # 2 iterations a tick

@pytest.fixture(scope='module')
def env(module_cache_env):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(toy_metrics, 'NUM_POINTS', 64)
        yield module_cache_env

def _train(outdir, *args):
    result = CliRunner().invoke(train.main, [f'--outdir={outdir}', *TINY, *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    runs = sorted(os.listdir(outdir))
    return os.path.join(outdir, runs[-1])

def _load(path):
    with open(path, 'rb') as f:
        return legacy.load_network_pkl(f)

def _params(snapshot):
    return {f'{net}.{name}': t for net in ('G', 'D', 'G_ema') for name, t in list(snapshot[net].named_parameters()) + list(snapshot[net].named_buffers())}

@pytest.fixture(scope='module')
def baseline(env):
    return _train(str(env / 'runs'), '--kimg=0.256', '--metrics=toy2k')

#----------------------------------------------------------------------------

def test_toy_run_writes_snapshots_pictures_and_metrics(baseline):
    assert os.path.basename(baseline) == '00000-ring8-n400-toy-kimg0.256-batch32'
    with open(os.path.join(baseline, 'training_options.json')) as f:
        options = json.load(f)
    assert options['G_kwargs']['class_name'] == 'training.toy_networks.ToyGenerator'
    assert options['training_set_kwargs']['class_name'] == 'training.toy_data.ToyDataset'
    assert 'augment_kwargs' not in options and options['loss_kwargs']['style_mixing_prob'] == 0

    # The picture of the image snapshots (all below kimg 1, so one file name), a readable PNG with three panels.
    with PIL.Image.open(os.path.join(baseline, 'toy000000.png')) as image:
        assert image.mode == 'RGB' and image.size[0] > 3 * 300 and image.size[1] > 300
        assert len(image.resize((64, 16)).getcolors(4096)) > 20          # not a blank canvas

    # The toy2k metric at each snapshot, within its ranges.
    with open(os.path.join(baseline, 'metric-toy2k.jsonl')) as f:
        lines = [json.loads(line) for line in f]
    assert len(lines) >= 2
    r = lines[-1]['results']
    assert r['toy2k_emd'] > 0 and 0 <= r['toy2k_modes'] <= 8 and 0 <= r['toy2k_hq'] <= 1 and r['toy2k_kl'] >= 0 and 0 <= r['toy2k_dds'] <= 2

def test_calc_metrics_on_a_toy_snapshot_matches_the_run(baseline):
    pkl = sorted(f for f in os.listdir(baseline) if f.startswith('network-snapshot'))[-1]
    with open(os.path.join(baseline, 'metric-toy2k.jsonl')) as f:
        during = [json.loads(line) for line in f][-1]['results']
    os.remove(os.path.join(baseline, 'metric-toy2k.jsonl'))
    result = CliRunner().invoke(calc_metrics.main, ['--network', os.path.join(baseline, pkl), '--metrics=toy2k', '--device=cpu',
                                                    '--verbose=false'], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    with open(os.path.join(baseline, 'metric-toy2k.jsonl')) as f:
        (line,) = [json.loads(text) for text in f]
    assert line['results'] == during

def test_generate_writes_points(baseline, tmp_path):
    pkl = os.path.join(baseline, sorted(f for f in os.listdir(baseline) if f.startswith('network-snapshot'))[-1])
    outdir = str(tmp_path / 'out')
    result = CliRunner().invoke(generate.generate_images, ['--network', pkl, '--seeds=0-9', '--outdir', outdir, '--device=cpu'],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    points = np.load(os.path.join(outdir, 'points.npy'))
    G = _load(pkl)['G_ema']
    z = torch.cat([generate.seed_to_z(seed, G.z_dim, 'cpu') for seed in range(10)])
    np.testing.assert_allclose(points, G(z, torch.zeros([10, 0])).reshape(10, 2).detach().numpy(), rtol=1e-6)
    rows = np.loadtxt(os.path.join(outdir, 'points.csv'), delimiter=',', skiprows=1)
    np.testing.assert_array_equal(rows[:, 0], np.arange(10))
    np.testing.assert_allclose(rows[:, 1:], points, rtol=1e-6)
    with PIL.Image.open(os.path.join(outdir, 'points.png')) as image:
        assert image.mode == 'RGB'

def test_exact_resume_is_bit_identical(env, baseline):
    # kimg 0.128 then a resume to 0.256 ends where the one-piece 0.256 run (the baseline) ended.
    outdir = str(env / 'resume')
    first = _train(outdir, '--kimg=0.128')
    half = os.path.join(first, 'network-snapshot-000000.pkl')
    assert _load(half)['resume_state']['cur_nimg'] == 128
    second = _train(outdir, '--kimg=0.256', f'--resume={half}')
    full_pkl = sorted(f for f in os.listdir(baseline) if f.startswith('network-snapshot'))[-1]
    full = _params(_load(os.path.join(baseline, full_pkl)))
    resumed = _params(_load(os.path.join(second, sorted(f for f in os.listdir(second) if f.startswith('network-snapshot'))[-1])))
    assert _load(os.path.join(second, full_pkl))['resume_state']['cur_nimg'] == 256
    assert full.keys() == resumed.keys()
    assert [name for name in full if not torch.equal(full[name], resumed[name])] == []
    halfway = _params(_load(half))
    assert not torch.equal(halfway['G.synthesis.out.weight'], full['G.synthesis.out.weight'])   # training moved G

def test_gmm_prior_on_toy_points(env):
    run = _train(str(env / 'gmm'), '--kimg=0.128', '--prior=gmm', '--prior-components=8', '--resample-kimg=0.032', '--resample-num=64')
    with open(os.path.join(run, 'training_options.json')) as f:
        options = json.load(f)
    (entry,) = options['loss_kwargs']['prior_kwargs']
    assert (entry['feature'], entry['pca']) == ('identity', None)
    with open(os.path.join(run, 'stats.jsonl')) as f:
        stats = [json.loads(line) for line in f]
    assert 'Prior/gmm/dds' in stats[-1] and 'Prior/gmm/nll' in stats[-1]
    assert any(f.startswith('prior-freqs') for f in os.listdir(run)) and any(f.startswith('toy0') for f in os.listdir(run))

def test_toy_options_are_checked(env):
    for args, message in [(['--cfg=toy', '--data=toy:ring8', '--aug=ada'], '--aug=ada: toy points are not augmented'),
                          (['--cfg=toy', '--data=toy:ring8', '--cbase=1024'], '--cbase does not apply to --cfg=toy'),
                          (['--cfg=stylegan2', '--data=toy:ring8'], 'is toy data (2-D points); train it with --cfg=toy'),
                          (['--cfg=toy', '--data=toy:ring8,rare=3'], 'rare=3 must be a fraction')]:
        result = CliRunner().invoke(train.main, [f'--outdir={env / "bad"}', '--dry-run', *args])
        assert result.exit_code != 0 and message in result.output, result.output

@pytest.mark.parametrize('gan_loss', ['wgan-gp', 'lsgan', 'hinge'])
def test_gan_losses_train_the_toy_networks(env, gan_loss):
    run = _train(str(env / f'loss-{gan_loss}'), '--kimg=0.064', f'--gan-loss={gan_loss}')
    assert os.path.basename(run) == f'00000-ring8-n400-toy-{gan_loss}-kimg0.064-batch32'
    with open(os.path.join(run, 'training_options.json')) as f:
        assert json.load(f)['loss_kwargs']['gan_loss'] == gan_loss
    with open(os.path.join(run, 'stats.jsonl')) as f:
        stats = [json.loads(line) for line in f]
    assert np.isfinite(stats[-1]['Loss/D/loss']['mean']) and np.isfinite(stats[-1]['Loss/G/loss']['mean'])
    if gan_loss == 'wgan-gp':
        assert stats[-1]['Loss/gp_penalty']['num'] > 0

#----------------------------------------------------------------------------
