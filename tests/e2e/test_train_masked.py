"""`train.py --cfg=stylegan --prior=masked` on CPU: trains, snapshots, resumes exactly (its own stream included), and
generate.py samples through the selection stored in the snapshot unless --prior-sampling=false."""

import json
import os

import numpy as np
import PIL.Image
import pytest
import torch
from click.testing import CliRunner

import dnnlib
import generate
import legacy
import train
from torch_utils import misc
from training import sampling
from training import synthetic

pytestmark = pytest.mark.slow

ARGS = ['--cfg=stylegan', '--prior=masked', '--cbase=256', '--cmax=16', '--map=2', '--batch=4', '--batch-gpu=2',
        '--mbstd-group=2', '--tick=0.004', '--snap=1', '--workers=1', '--aug=noaug', '--masked-pool=8']

def _train(outdir, data, *extra):
    result = CliRunner().invoke(train.main, ['--outdir', outdir, '--data', data] + ARGS + list(extra), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (run,) = [d for d in os.listdir(outdir)]
    return os.path.join(outdir, run)

def _snapshot(run_dir):
    with open(os.path.join(run_dir, 'network-snapshot-000000.pkl'), 'rb') as f:
        return legacy.load_network_pkl(f)

def _params(module):
    return {n: t.detach().clone() for n, t in misc.named_params_and_buffers(module)}

def test_masked_trains_resumes_exactly_and_samples_through_D(tmp_path, monkeypatch):
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path / 'cache'))
    torch.set_num_threads(1)
    data = synthetic.make_synthetic_dataset(str(tmp_path / 'synth16.zip'), num_images=32, resolution=16, num_modes=4)
    full = _train(str(tmp_path / 'full'), data, '--kimg=0.016')
    first = _train(str(tmp_path / 'first'), data, '--kimg=0.008')
    second = _train(str(tmp_path / 'second'), data, '--kimg=0.016',
                    '--resume=' + os.path.join(first, 'network-snapshot-000000.pkl'))
    a, b = _snapshot(full), _snapshot(second)
    for key in ('G', 'D', 'G_ema'):
        pa, pb = _params(a[key]), _params(b[key])
        assert [n for n in pa if not torch.equal(pa[n], pb[n])] == [], key
    ranks = a['resume_state']['ranks']
    assert 'generator' in ranks[0]['loss']['priors']['masked']  # the stream position is per-rank state
    with open(os.path.join(full, 'stats.jsonl')) as f:
        last = json.loads(f.readlines()[-1])
    assert 'Timing/masked/Dgen_presample_sec' in last and 'Prior/masked/kept_score_Gmain' in last
    assert last['Prior/masked/kept_score_Gmain']['mean'] >= last['Prior/masked/score_Gmain']['mean']

    # The snapshot carries the selection; generate.py uses it unless switched off.
    assert a[sampling.SNAPSHOT_KEY] == [dict(class_name='priors.masked.prior.MaskedSampleTransform', mode='masked', rate=0.5, pool=8)]
    pkl = os.path.join(full, 'network-snapshot-000000.pkl')
    images = dict()
    for flag in ('true', 'false'):
        out = str(tmp_path / f'gen-{flag}')
        res = CliRunner().invoke(generate.generate_images, ['--network', pkl, '--seeds', '0-3', '--outdir', out, '--device', 'cpu',
                                                            '--prior-sampling', flag], catch_exceptions=False)
        assert res.exit_code == 0, res.output
        assert ('Sampling latents through' in res.output) == (flag == 'true')
        images[flag] = [np.asarray(PIL.Image.open(os.path.join(out, f'seed{s:04d}.png'))) for s in range(4)]
    assert any(not np.array_equal(x, y) for x, y in zip(images['true'], images['false']))
    # Off: exactly the plain G_ema(z) of each seed.
    G = a['G_ema']
    z = generate.seed_to_z(0, G.z_dim, torch.device('cpu'))
    img = G(z, torch.zeros([1, 0]), noise_mode='const', force_fp32=True)
    assert np.array_equal(generate.to_pixels(img)[0], images['false'][0])
