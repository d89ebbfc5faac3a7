"""Metrics during training: train.py --metrics evaluates them on each snapshot in one shared pass and writes metric-*.jsonl."""

import math
import os

import pytest

import harness
from metrics import metric_utils

pytestmark = pytest.mark.slow

#----------------------------------------------------------------------------

def test_metrics_during_training_share_one_generator_pass(tmp_path, metric_env, monkeypatch):
    # Two small metrics on the same generated images (32 of them, one detector).
    metric_env(harness.small_fid(32), harness.small_kid(32))
    data = harness.tiny_dataset(tmp_path / 'data16.zip', num_images=16)
    passes = []
    original_pass = metric_utils._generator_pass
    monkeypatch.setattr(metric_utils, '_generator_pass', lambda *args, **kwargs: passes.append(1) or original_pass(*args, **kwargs))

    run_dir = harness.train(tmp_path / 'runs', '--data', data, *harness.TRAIN_ARGS, '--kimg=0.004', '--tick=0.004', '--snap=1',
                            '--aug=noaug', '--metrics=fid32,kid32')

    # One snapshot, one generator pass for both metrics, one line in each metric file.
    assert len(passes) == 1
    for name in ('fid32', 'kid32'):
        lines = harness.read_jsonl(os.path.join(run_dir, f'metric-{name}.jsonl'))
        assert len(lines) == 1
        assert lines[0]['metric'] == name and lines[0]['snapshot_pkl'] == 'network-snapshot-000000.pkl'
        assert math.isfinite(lines[0]['results'][name])
