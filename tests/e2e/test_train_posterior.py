"""--prior=posterior (P2GAN) end to end on CPU: train.py through the stage switch, exact resume, generate.py and calc_metrics.py on the snapshot, two gloo ranks composed with gmm."""

import json
import os
import subprocess
import sys

import PIL.Image
import pytest
import torch

import calc_metrics
import dnnlib
import generate
import harness
from priors.posterior import modules as posterior_modules

pytestmark = pytest.mark.slow

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# 4 images per step; a tick every 2 steps; the modules switch on at 8 images (the third step).
BASE_ARGS = ['--prior=posterior', '--cfg=stylegan', *harness.TRAIN_ARGS, '--tick=0.008', '--snap=1', '--post-dim=3',
             '--post-pretrain-kimg=0.008', '--post-test=ema', '--seed=1']

#----------------------------------------------------------------------------

def _train(outdir, data, *extra):
    return harness.train(outdir, '--data', data, *BASE_ARGS, *extra)

_load = harness.load

def _tensors(snapshot):
    return harness.tensors(snapshot, 'G', 'D', 'G_ema')

@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp('posterior')
    data = harness.tiny_dataset(root / 'synth16.zip', num_images=32)
    full = _train(str(root / 'full'), data, '--kimg=0.024')
    half = _train(str(root / 'half'), data, '--kimg=0.012')
    resumed = _train(str(root / 'resumed'), data, '--kimg=0.024', '--resume=' + os.path.join(half, 'network-snapshot-000000.pkl'))
    return dnnlib.EasyDict(root=root, data=data, full=full, half=half, resumed=resumed)

#----------------------------------------------------------------------------

def test_training_switches_stage_and_logs_the_convergence_measure(runs):
    with open(os.path.join(runs.full, 'training_options.json')) as f:
        options = json.load(f)
    assert options['D_kwargs']['out_dim'] == 6
    assert options['G_kwargs']['synthesis_kwargs']['side_kwargs']['class_name'] == 'priors.posterior.modules.PosteriorSide'
    (entry,) = options['loss_kwargs']['prior_kwargs']
    assert entry['name'] == 'posterior' and entry['lambda_z'] == 10 and entry['p_a'] == [-5, 1] and entry['p_b'] == [5, 3]

    with open(os.path.join(runs.full, 'stats.jsonl')) as f:
        stats = [json.loads(line) for line in f]
    for line in stats:
        assert line['Prior/posterior/M_c']['num'] > 0 and line['Prior/posterior/L_z']['num'] > 0

    # The pretraining stage is over in the final snapshot; the EMA test factors moved off Eq. 19's optimum.
    side = _load(os.path.join(runs.full, 'network-snapshot-000000.pkl'))['G_ema'].synthesis.side
    assert isinstance(side, posterior_modules.PosteriorSide)
    assert float(side.stage) == 1
    assert not torch.equal(side.test_mu, torch.zeros(3)) and not torch.equal(side.test_sigma, torch.full([3], 2.0))
    assert float(side.P0_weight.abs().max()) > 0   # the modules trained after the switch
    half_side = _load(os.path.join(runs.half, 'network-snapshot-000000.pkl'))['G_ema'].synthesis.side
    assert not torch.equal(half_side.bn0_mean, side.bn0_mean)

def test_resumed_run_matches_the_uninterrupted_one_bit_for_bit(runs):
    full = _tensors(_load(os.path.join(runs.full, 'network-snapshot-000000.pkl')))
    resumed = _tensors(_load(os.path.join(runs.resumed, 'network-snapshot-000000.pkl')))
    assert full.keys() == resumed.keys()
    assert [name for name in full if not torch.equal(full[name], resumed[name])] == []
    half = _tensors(_load(os.path.join(runs.half, 'network-snapshot-000000.pkl')))
    assert not torch.equal(half['G.synthesis.side.test_mu'], full['G.synthesis.side.test_mu'])   # not vacuous

def test_snapshot_generates_images_and_gets_a_metric(runs, tmp_path, metric_env):
    pkl = os.path.join(runs.full, 'network-snapshot-000000.pkl')
    outdir = str(tmp_path / 'images')
    harness.invoke_ok(generate.generate_images, ['--network', pkl, '--seeds=0-1', '--outdir', outdir, '--device', 'cpu'])
    for seed in (0, 1):
        with PIL.Image.open(os.path.join(outdir, f'seed{seed:04d}.png')) as image:
            assert image.size == (16, 16)

    # calc_metrics.py with a small FID (32 generated images) on the tiny random detector.
    metric_env(harness.small_fid(32))
    harness.invoke_ok(calc_metrics.main, ['--network', pkl, '--metrics', 'fid32', '--device', 'cpu', '--verbose', 'false'])
    (line,) = harness.read_jsonl(os.path.join(runs.full, 'metric-fid32.jsonl'))
    assert line['results']['fid32'] >= 0

#----------------------------------------------------------------------------

def test_two_gloo_ranks_with_gmm_stay_identical(runs, tmp_path):
    # The loop refuses to write a snapshot unless every parameter and buffer (BN running statistics, EMA
    # test factors and stage included) is the same on both ranks.
    outdir = str(tmp_path / 'ddp')
    args = [os.path.join(REPO_ROOT, 'train.py'), '--outdir', outdir, '--data', runs.data, *BASE_ARGS, '--prior=gmm,posterior',
            '--prior-feature=tiny', '--prior-components=2', '--prior-pca=4', '--resample-kimg=0.004', '--resample-num=8',
            '--kimg=0.016', '--gpus=2', '--aug=noaug']
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1', DNNLIB_CACHE_DIR=str(tmp_path / 'cache'))
    proc = subprocess.run([sys.executable, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dir = harness.newest_run(outdir)
    snapshot = _load(harness.snapshot_path(run_dir))
    assert snapshot['resume_state']['num_gpus'] == 2 and snapshot['resume_state']['cur_nimg'] == 16
    assert float(snapshot['G_ema'].synthesis.side.stage) == 1
    last = harness.read_stats(run_dir)[-1]
    assert 'Prior/gmm/nll' in last and 'Prior/posterior/M_c' in last

#----------------------------------------------------------------------------
