"""--prior=posterior (P2GAN) end to end on CPU: train.py through the stage switch, exact resume, generate.py and calc_metrics.py on the snapshot, two gloo ranks composed with gmm."""

import json
import os
import subprocess
import sys

import PIL.Image
import pytest
import torch
from click.testing import CliRunner

import calc_metrics
import dnnlib
import generate
import legacy
import train
from metrics import frechet_inception_distance
from metrics import metric_main
from metrics import metric_utils
from priors.posterior import modules as posterior_modules
from torch_utils import misc
from training import synthetic

pytestmark = pytest.mark.slow

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# 4 images per step; a tick every 2 steps; the modules switch on at 8 images (the third step).
BASE_ARGS = ['--prior=posterior', '--cfg=stylegan', '--cbase=256', '--cmax=16', '--map=2', '--batch=4', '--mbstd-group=2',
             '--tick=0.008', '--snap=1', '--workers=1', '--post-dim=3', '--post-pretrain-kimg=0.008', '--post-test=ema', '--seed=1']

#----------------------------------------------------------------------------

def _train(outdir, data, *extra):
    result = CliRunner().invoke(train.main, ['--outdir', outdir, '--data', data, *BASE_ARGS, *extra], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (run_name,) = os.listdir(outdir)
    return os.path.join(outdir, run_name)

def _load(pkl):
    with open(pkl, 'rb') as f:
        return legacy.load_network_pkl(f)

def _tensors(snapshot):
    return {f'{key}.{name}': t for key in ('G', 'D', 'G_ema') for name, t in misc.named_params_and_buffers(snapshot[key])}

@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp('posterior')
    data = synthetic.make_synthetic_dataset(str(root / 'synth16.zip'), num_images=32, resolution=16, num_modes=4)
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

def test_snapshot_generates_images_and_gets_a_metric(runs, tmp_path, monkeypatch):
    pkl = os.path.join(runs.full, 'network-snapshot-000000.pkl')
    outdir = str(tmp_path / 'images')
    result = CliRunner().invoke(generate.generate_images, ['--network', pkl, '--seeds=0-1', '--outdir', outdir, '--device', 'cpu'],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    for seed in (0, 1):
        with PIL.Image.open(os.path.join(outdir, f'seed{seed:04d}.png')) as image:
            assert image.size == (16, 16)

    # calc_metrics.py with a small FID (32 generated images) on the tiny random detector.
    detector = str(tmp_path / 'tiny-detector.pt')
    metric_utils.build_random_detector(detector, num_features=12)
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path / 'cache'))
    monkeypatch.setattr(dnnlib.util, '_dnnlib_cache_dir', None)
    monkeypatch.setenv('SG2ADA_DETECTOR_INCEPTION_2015_12_05', detector)
    monkeypatch.setattr(metric_main, '_metric_dict', dict(metric_main._metric_dict))
    def fid32(opts):
        opts.dataset_kwargs.update(max_size=None, xflip=False)
        return dict(fid32=frechet_inception_distance.compute_fid(opts, max_real=None, num_gen=32))
    metric_main.register_metric(fid32)
    metric_utils.reset_detector_cache()
    try:
        result = CliRunner().invoke(calc_metrics.main, ['--network', pkl, '--metrics', 'fid32', '--device', 'cpu', '--verbose', 'false'],
                                    catch_exceptions=False)
    finally:
        metric_utils.reset_detector_cache()
    assert result.exit_code == 0, result.output
    with open(os.path.join(runs.full, 'metric-fid32.jsonl')) as f:
        (line,) = [json.loads(text) for text in f]
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
    run_dir = os.path.join(outdir, os.listdir(outdir)[0])
    snapshot = _load(os.path.join(run_dir, 'network-snapshot-000000.pkl'))
    assert snapshot['resume_state']['num_gpus'] == 2 and snapshot['resume_state']['cur_nimg'] == 16
    assert float(snapshot['G_ema'].synthesis.side.stage) == 1
    with open(os.path.join(run_dir, 'stats.jsonl')) as f:
        last = [json.loads(line) for line in f][-1]
    assert 'Prior/gmm/nll' in last and 'Prior/posterior/M_c' in last

#----------------------------------------------------------------------------
