"""Metrics during training: train.py --metrics evaluates them on each snapshot in one shared pass and writes metric-*.jsonl."""

import json
import math
import os

import pytest
from click.testing import CliRunner

import dnnlib
import train
from metrics import frechet_inception_distance, kernel_inception_distance, metric_main, metric_utils
from training.synthetic import make_synthetic_dataset

pytestmark = pytest.mark.slow

#----------------------------------------------------------------------------
# Two small metrics on the same generated images (32 of them, one detector).

def fid32(opts):
    opts.dataset_kwargs.update(max_size=None, xflip=False)
    return dict(fid32=frechet_inception_distance.compute_fid(opts, max_real=None, num_gen=32))

def kid32(opts):
    return dict(kid32=kernel_inception_distance.compute_kid(opts, max_real=None, num_gen=32, num_subsets=5, max_subset_size=16))


@pytest.fixture
def metric_env(tmp_path, monkeypatch):
    detector = str(tmp_path / 'tiny-detector.pt')
    metric_utils.build_random_detector(detector, num_features=12)
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path / 'cache'))
    monkeypatch.setattr(dnnlib.util, '_dnnlib_cache_dir', None)
    monkeypatch.setenv('SG2ADA_DETECTOR_INCEPTION_2015_12_05', detector)
    monkeypatch.setattr(metric_main, '_metric_dict', dict(metric_main._metric_dict))
    for fn in (fid32, kid32):
        metric_main.register_metric(fn)
    metric_utils.reset_detector_cache()
    yield tmp_path
    metric_utils.reset_detector_cache()

#----------------------------------------------------------------------------

def test_metrics_during_training_share_one_generator_pass(metric_env, monkeypatch):
    data = make_synthetic_dataset(str(metric_env / 'data16.zip'), num_images=16, resolution=16, num_modes=4)
    passes = []
    original_pass = metric_utils._generator_pass
    monkeypatch.setattr(metric_utils, '_generator_pass', lambda *args, **kwargs: passes.append(1) or original_pass(*args, **kwargs))

    outdir = str(metric_env / 'runs')
    args = ['--outdir', outdir, '--data', data, '--cbase=256', '--cmax=16', '--map=2', '--batch=4', '--mbstd-group=2',
            '--kimg=0.004', '--tick=0.004', '--snap=1', '--workers=1', '--aug=noaug', '--metrics=fid32,kid32']
    result = CliRunner().invoke(train.main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output

    # One snapshot, one generator pass for both metrics, one line in each metric file.
    run_dir = os.path.join(outdir, os.listdir(outdir)[0])
    assert len(passes) == 1
    for name in ('fid32', 'kid32'):
        with open(os.path.join(run_dir, f'metric-{name}.jsonl')) as f:
            lines = [json.loads(line) for line in f]
        assert len(lines) == 1
        assert lines[0]['metric'] == name and lines[0]['snapshot_pkl'] == 'network-snapshot-000000.pkl'
        assert math.isfinite(lines[0]['results'][name])
