"""The GMM prior, bit for bit: a fixed-seed `train.py --prior=gmm --cfg=stylegan` run ends with exactly the
parameters recorded before the priors/ v2 interface (issue 8) was written.

The reference digests were computed at commit 4de260d (the v1 hooks) with torch 2.13.0 on CPU, one thread.
A change to the prior interface, the loop or the loss that is meant to be behaviour-neutral must keep them;
a change that alters training on purpose must say so and record new ones (run this file with
`REFERENCE_PRINT=1` to print them).
"""

import hashlib
import os

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import dnnlib
import legacy
import train
from torch_utils import misc
from training import synthetic

pytestmark = pytest.mark.slow

# sha256 over (name, float32 bytes) of every parameter and buffer, per network, in named order.
REFERENCE = {
    'G': 'e58554b8639b5b21eeff1c1fb02d4891aba8d55c74504fcc631a0a83ba7430e7',
    'D': '16f2ac3e641b007b81894587080ae09c98c5c7702266411c6c05b50521bcf7d3',
    'G_ema': '9d490153eea4bb8e738c9a82f16d5e31987b7d50970eb86aa6e95502f57fcee3',
}

# The last line of ARGS restores the v1 GMM behaviour that issue 14 changed: reference log-likelihoods from
# the fitted reals (--prior-holdout=0), no EMA of f^g (--resample-ema=0), exactly --resample-num images per
# estimate (--resample-min-per-component=0), and f^g from the training G with constant noise and float pixels
# (--resample-net=G --resample-noise=const --resample-pixels=float).
ARGS = ['--prior=gmm', '--cfg=stylegan', '--prior-feature=tiny', '--prior-components=3', '--prior-pca=4',
        '--resample-kimg=0.004', '--resample-num=16', '--cbase=256', '--cmax=16', '--map=2', '--batch=4',
        '--mbstd-group=2', '--kimg=0.024', '--tick=0.008', '--snap=3', '--workers=1', '--aug=ada', '--seed=5',
        '--prior-holdout=0', '--resample-ema=0', '--resample-min-per-component=0', '--resample-net=G', '--resample-noise=const',
        '--resample-pixels=float']

def _digest(module):
    h = hashlib.sha256()
    for name, tensor in misc.named_params_and_buffers(module):
        h.update(name.encode())
        h.update(tensor.detach().to(torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()

def test_gmm_run_is_bit_identical_to_reference(tmp_path, monkeypatch):
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path / 'cache'))
    monkeypatch.setattr(dnnlib.util, '_dnnlib_cache_dir', None)
    torch.set_num_threads(1)
    data = synthetic.make_synthetic_dataset(str(tmp_path / 'synth16.zip'), num_images=64, resolution=16, num_modes=4)
    outdir = str(tmp_path / 'runs')
    result = CliRunner().invoke(train.main, ['--outdir', outdir, '--data', data] + ARGS, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (run_name,) = os.listdir(outdir)
    run_dir = os.path.join(outdir, run_name)
    pkls = sorted(f for f in os.listdir(run_dir) if f.startswith('network-snapshot-') and f.endswith('.pkl'))
    with open(os.path.join(run_dir, pkls[-1]), 'rb') as f:
        snapshot = legacy.load_network_pkl(f)
    got = {key: _digest(snapshot[key]) for key in REFERENCE}
    if os.environ.get('REFERENCE_PRINT'):
        print('\nREFERENCE =', got, pkls[-1])
    assert got == REFERENCE
