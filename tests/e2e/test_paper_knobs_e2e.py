"""The papers' knobs of train.py end to end: recorded in training_options.json, exact resume with all of them on, and
generate.py sampling the latent distribution that the run trained with, without options."""

import json
import os

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import dnnlib
import generate
import legacy
import train

pytestmark = pytest.mark.slow

# Every knob at once, on the masked paper's Table 1 networks (G ends in tanh: a ring inside (-1, 1)^2).
DATA = 'toy:ring8,n=400,radius=0.8'
TINY = ['--cfg=toy', f'--data={DATA}', '--batch=32', '--tick=0.064', '--snap=1']
KNOBS = ['--toy-net=goerttler-table1', '--gan-loss=wgan', '--clip=0.01', '--optim=rmsprop', '--d-steps=2', '--g-steps=2',
         '--step-order=d-first', '--lr-decay=step', '--lr-decay-step=0.5,0.1', '--glr=0.0005', '--dlr=0.0005']

@pytest.fixture(scope='module')
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp('knobs')
    mp = pytest.MonkeyPatch()
    mp.setenv('DNNLIB_CACHE_DIR', str(root / 'cache'))
    mp.setattr(dnnlib.util, '_dnnlib_cache_dir', None)
    yield root
    mp.undo()

def _train(outdir, *args):
    result = CliRunner().invoke(train.main, [f'--outdir={outdir}', *TINY, *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return os.path.join(outdir, sorted(os.listdir(outdir))[-1]), result.output

def _last_snapshot(run):
    name = sorted(f for f in os.listdir(run) if f.startswith('network-snapshot'))[-1]
    with open(os.path.join(run, name), 'rb') as f:
        return legacy.load_network_pkl(f)

def _tensors(snapshot):
    return {f'{net}.{name}': t for net in ('G', 'D', 'G_ema') for name, t in list(snapshot[net].named_parameters()) + list(snapshot[net].named_buffers())}

@pytest.fixture(scope='module')
def full_run(env):
    return _train(str(env / 'full'), *KNOBS, '--steps=8')[0]     # 4 iterations of 2 G steps; 4 x 2 x 32 = 0.256 kimg

#----------------------------------------------------------------------------

def test_knobs_are_recorded_in_training_options(full_run):
    with open(os.path.join(full_run, 'training_options.json')) as f:
        options = json.load(f)
    assert (options['G_steps'], options['D_steps'], options['step_order']) == (2, 2, 'd-first')
    assert (options['total_steps'], options['total_kimg'], options['D_clip']) == (8, 0.256, 0.01)
    assert options['lr_decay_kwargs'] == dict(kind='step', rate=0.5, epochs=0.1)
    assert options['G_opt_kwargs']['class_name'] == options['D_opt_kwargs']['class_name'] == 'torch.optim.RMSprop'
    assert options['loss_kwargs']['gan_loss'] == 'wgan'
    assert options['G_kwargs']['mapping_kwargs']['z_dist'] == 'uniform' and options['G_kwargs']['z_dim'] == 2
    assert options['G_kwargs']['synthesis_kwargs']['out_activation'] == 'tanh'
    snapshot = _last_snapshot(full_run)
    assert snapshot['resume_state']['cur_nimg'] == 256
    assert max(float(p.abs().max()) for p in snapshot['D'].parameters()) <= np.float32(0.01)

def test_exact_resume_with_every_knob_is_bit_identical(env, full_run):
    half, _ = _train(str(env / 'resume'), *KNOBS, '--steps=4')
    assert _last_snapshot(half)['resume_state']['cur_nimg'] == 128
    resumed, output = _train(str(env / 'resume'), *KNOBS, '--steps=8', f'--resume={half}')
    assert 'these options differ' not in output                   # only the length changed
    full, again = _tensors(_last_snapshot(full_run)), _tensors(_last_snapshot(resumed))
    assert full.keys() == again.keys()
    assert [name for name in full if not torch.equal(full[name], again[name])] == []

def test_generate_samples_the_runs_latent_distribution(full_run, tmp_path):
    snapshot = _last_snapshot(full_run)
    pkl = os.path.join(full_run, sorted(f for f in os.listdir(full_run) if f.startswith('network-snapshot'))[-1])
    result = CliRunner().invoke(generate.generate_images, [f'--network={pkl}', '--seeds=0-9', f'--outdir={tmp_path}', '--device=cpu'],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    points = np.load(os.path.join(tmp_path, 'points.npy'))
    # Independently: seed -> N(0, I) z -> U(-1, 1) latent erf(z / sqrt 2) -> the synthesis MLP (float64).
    G = snapshot['G_ema'].synthesis
    z = np.stack([np.random.RandomState(seed).randn(2) for seed in range(10)])
    x = torch.erf(torch.from_numpy(z) / np.sqrt(2))
    with torch.no_grad():
        for layer in G.layers:
            x = torch.relu(torch.nn.functional.linear(x, layer.weight.double(), layer.bias.double()))
        x = torch.tanh(torch.nn.functional.linear(x, G.out.weight.double(), G.out.bias.double()))
    np.testing.assert_allclose(points, x.numpy(), rtol=0, atol=1e-5)

#----------------------------------------------------------------------------
