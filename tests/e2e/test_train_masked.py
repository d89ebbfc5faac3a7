"""`train.py --cfg=stylegan --prior=masked` on CPU: trains, snapshots, resumes exactly (its own stream included), and
generate.py samples through the selection stored in the snapshot unless --prior-sampling=false."""

import json
import os

import numpy as np
import PIL.Image
import pytest
import torch
from click.testing import CliRunner

import generate
import harness
from training import sampling

pytestmark = pytest.mark.slow

# A tick of 2 steps, a snapshot each tick. With --masked-sampling (the default) every image of the snapshot grids
# (1024 of them, one by one) and of generate.py is drawn from --masked-pool candidates scored by G and D: the resume
# runs switch that off (it changes no training step), one short run keeps it for the sampling checks.
ARGS = ['--cfg=stylegan', '--prior=masked', *harness.TRAIN_ARGS, '--batch-gpu=2', '--tick=0.008', '--snap=1', '--aug=noaug',
        '--masked-pool=2']

def _train(outdir, data, *extra):
    return harness.train(outdir, '--data', data, *ARGS, *extra)

def _snapshot(run_dir):
    return harness.load(harness.snapshot_path(run_dir))

def test_masked_trains_resumes_exactly_and_samples_through_D(cache_env):
    tmp_path = cache_env
    data = harness.tiny_dataset(tmp_path / 'synth16.zip', num_images=32)
    full = _train(str(tmp_path / 'full'), data, '--kimg=0.016', '--masked-sampling=false')
    first = _train(str(tmp_path / 'first'), data, '--kimg=0.008', '--masked-sampling=false')
    second = _train(str(tmp_path / 'second'), data, '--kimg=0.016', '--masked-sampling=false', '--resume=' + harness.snapshot_path(first))
    a, b = _snapshot(full), _snapshot(second)
    assert harness.differing(harness.tensors(a, 'G', 'D', 'G_ema'), harness.tensors(b, 'G', 'D', 'G_ema')) == []
    ranks = a['resume_state']['ranks']
    assert 'generator' in ranks[0]['loss']['priors']['masked']  # the stream position is per-rank state
    with open(os.path.join(full, 'stats.jsonl')) as f:
        last = json.loads(f.readlines()[-1])
    assert 'Timing/masked/Dgen_presample_sec' in last and 'Prior/masked/kept_score_Gmain' in last
    assert last['Prior/masked/kept_score_Gmain']['mean'] >= last['Prior/masked/score_Gmain']['mean']

    # The snapshot carries the selection (unless --masked-sampling=false); generate.py uses it unless switched off.
    assert a.get(sampling.SNAPSHOT_KEY, []) == []
    sampled = _train(str(tmp_path / 'sampled'), data, '--kimg=0.004')
    a = _snapshot(sampled)
    assert a[sampling.SNAPSHOT_KEY] == [dict(class_name='priors.masked.prior.MaskedSampleTransform', mode='masked', rate=0.5, pool=2)]
    pkl = harness.snapshot_path(sampled)
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
