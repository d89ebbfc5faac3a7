"""The GMM prior against stored values, on any CPU: a fixed-seed `train.py --prior=gmm --cfg=stylegan` run builds
the prior file, resamples and trains as it did when tests/e2e/gmm_reference.json was recorded.

This file used to compare sha256 digests of the run's final weights (recorded at commit cd94e6b, on the v1 prior
hooks). Weights after a few GAN steps are not portable: float sums are grouped differently by AVX-512, AVX2 and
scalar kernels, and Adam turns a sign flip of a near-zero gradient into a full learning-rate step, so the digests
differed on every other CPU (on this one, the final weights of the three instruction sets differ by up to 3e-3).
The test now compares what the GMM prior decides and reports, each with a tolerance that says why:
- the prior file (PCA and GMM fitted in float64 on the tiny extractor's features): within 1e-4 of each array's
  largest value; the instruction set moves them by 1e-6 at most;
- the resampling history (f^g from 16 generated images, f', DDS): ratios of small counts, exact to 1e-9; one image
  in another component moves a value by 1/16;
- the per-tick means of every Loss/, Prior/ and Sampler/ statistic: rtol 5e-3; 6 steps grow float rounding to
  1.3e-3 at most (measured with ATEN_CPU_CAPABILITY=default, avx2 + MKL/oneDNN capped at AVX2, and avx512), while
  a change to the prior's loss, threshold or schedule moves them by far more.

The values were recorded at commit 96e94a5, on which the former digest test passed on the machine that recorded
those digests. A change to the prior interface, the loop or the loss that is meant to be behaviour-neutral must keep
them; a change that alters training on purpose must say so and record new ones (run this file with
`REFERENCE_PRINT=1`, which rewrites the JSON file).
"""

import json
import os

import numpy as np
import pytest

import harness
from priors.gmm.prior import prior_state_from_snapshot

pytestmark = pytest.mark.slow

REFERENCE_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'gmm_reference.json')

# The last line of ARGS restores the v1 GMM behaviour that issue 14 changed: reference log-likelihoods from
# the fitted reals (--prior-holdout=0), no EMA of f^g (--resample-ema=0), exactly --resample-num images per
# estimate (--resample-min-per-component=0), and f^g from the training G with constant noise and float pixels
# (--resample-net=G --resample-noise=const --resample-pixels=float).
ARGS = ['--prior=gmm', '--cfg=stylegan', '--prior-feature=tiny', '--prior-components=3', '--prior-pca=4',
        '--resample-kimg=0.004', '--resample-num=16', *harness.TRAIN_ARGS, '--kimg=0.024', '--tick=0.008', '--snap=3',
        '--aug=ada', '--seed=5',
        '--prior-holdout=0', '--resample-ema=0', '--resample-min-per-component=0', '--resample-net=G', '--resample-noise=const',
        '--resample-pixels=float']

PRIOR_RTOL = 1e-4   # of each array's largest value; float64 fit on float32 features: the instruction set moves it by 1e-6
HISTORY_ATOL = 1e-9 # ratios of counts of 16 images: a real change moves a value by 1/16
STATS_RTOL = 5e-3   # 6 GAN steps grow float rounding to 1.3e-3 at most (AVX-512 vs AVX2 vs scalar)
STATS_ATOL = 1e-6   # for statistics that are 0 (e.g. below_theta)

def _observed(run_dir):
    snapshot = harness.load(harness.snapshot_path(run_dir))
    state = prior_state_from_snapshot(snapshot)
    record, history = state['prior_file'], state['resample']['history']
    prior = dict(gmm_weights=record['gmm']['state_dict']['weights_'], gmm_means=record['gmm']['state_dict']['means_'],
                 real_loglik=record['real_loglik']['sorted'], assignments=record['assignments']['nearest'],
                 log_theta=state['log_theta'])
    resample = {key: history[key] for key in ('nimg', 'gen_freqs', 'freqs', 'dds')}
    stats = [{name: [value['num'], value['mean']] for name, value in line.items() if name.startswith(('Loss/', 'Prior/', 'Sampler/'))}
             for line in harness.read_stats(run_dir)]
    as_lists = lambda d: {key: np.asarray(value).tolist() for key, value in d.items()}
    return dict(prior=as_lists(prior), resample=as_lists(resample), stats=stats)

def test_gmm_run_matches_the_recorded_values(cache_env):
    data = harness.tiny_dataset(cache_env / 'synth16.zip', num_images=64)
    got = _observed(harness.train(cache_env / 'runs', '--data', data, *ARGS))
    if os.environ.get('REFERENCE_PRINT'):
        with open(REFERENCE_FILE, 'w') as f:
            f.write('{\n' + ',\n'.join(f' "{part}": ' + json.dumps(got[part]) for part in got) + '\n}\n')
    with open(REFERENCE_FILE) as f:
        ref = json.load(f)

    for key, value in ref['prior'].items():
        np.testing.assert_allclose(got['prior'][key], value, rtol=0, atol=PRIOR_RTOL * np.abs(value).max(), err_msg=f'prior file: {key}')
    for key, value in ref['resample'].items():
        np.testing.assert_allclose(got['resample'][key], value, rtol=0, atol=HISTORY_ATOL, err_msg=f'resampling history: {key}')
    assert len(got['stats']) == len(ref['stats'])
    for tick, (line, ref_line) in enumerate(zip(got['stats'], ref['stats'])):
        assert sorted(line) == sorted(ref_line), tick
        for name, (num, mean) in ref_line.items():
            assert line[name][0] == num, (tick, name)
            np.testing.assert_allclose(line[name][1], mean, rtol=STATS_RTOL, atol=STATS_ATOL, err_msg=f'tick {tick}: {name}')
