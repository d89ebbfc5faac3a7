"""TensorBoard events of a training run: with the optional `tensorboard` package, a tiny toy run writes
events.out.tfevents.* into its run folder with the official tags (every stats.jsonl name, and Metrics/<result>),
at global step int(kimg), with the values of stats.jsonl; read back with TensorBoard's own event reader.
Without the package, the run says it skips the export and still trains."""

import glob
import json
import os
import sys

import pytest
from click.testing import CliRunner

import dnnlib
import train
from metrics import toy_metrics

pytestmark = pytest.mark.slow

TINY = ['--cfg=toy', '--data=toy:ring8,n=400', '--kimg=2', '--tick=1', '--snap=1', '--metrics=toy2k']

@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path / 'cache'))
    monkeypatch.setattr(dnnlib.util, '_dnnlib_cache_dir', None)
    monkeypatch.setattr(toy_metrics, 'NUM_POINTS', 64)
    return tmp_path

def _train(outdir):
    result = CliRunner().invoke(train.main, [f'--outdir={outdir}', *TINY], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return os.path.join(outdir, sorted(os.listdir(outdir))[-1]), result.output

def _read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]

#----------------------------------------------------------------------------

def test_events_have_the_official_tags_and_values(env):
    pytest.importorskip('tensorboard')
    from tensorboard.backend.event_processing import event_accumulator
    run_dir, _ = _train(env / 'runs')
    files = glob.glob(os.path.join(run_dir, 'events.out.tfevents.*'))
    assert len(files) == 1

    events = event_accumulator.EventAccumulator(run_dir, size_guidance={event_accumulator.SCALARS: 0})
    events.Reload()
    tags = set(events.Tags()['scalars'])
    stats = _read_jsonl(os.path.join(run_dir, 'stats.jsonl'))
    stat_names = {name for line in stats for name in line if name != 'timestamp'}
    metric_names = {f'Metrics/{name}' for line in _read_jsonl(os.path.join(run_dir, 'metric-toy2k.jsonl')) for name in line['results']}
    assert {'Loss/G/loss', 'Loss/D/loss', 'Progress/kimg', 'Timing/total_sec', 'Progress/augment'} <= stat_names
    assert {'Metrics/toy2k_emd', 'Metrics/toy2k_modes'} <= metric_names
    assert tags == stat_names | metric_names

    # One scalar per tick and name, at global_step = int(kimg), holding the tick's mean from stats.jsonl.
    for name in ('Loss/G/loss', 'Loss/D/loss', 'Progress/kimg', 'Timing/total_sec'):
        scalars = events.Scalars(name)
        expected = [(int(round(line['Progress/kimg']['mean'] * 1000) // 1000), line[name]['mean']) for line in stats if name in line]
        assert [s.step for s in scalars] == [step for step, _ in expected]
        assert [s.value for s in scalars] == pytest.approx([value for _, value in expected], rel=1e-6)
    assert [s.step for s in events.Scalars('Progress/kimg')] == [0, 1, 2]
    # Wall time: seconds since the start of training (official), so small and non-decreasing.
    walls = [s.wall_time for s in events.Scalars('Progress/kimg')]
    assert walls == sorted(walls) and 0 <= walls[0] and walls[-1] < 3600
    # Metrics at the snapshot ticks with the metric-*.jsonl values.
    metrics = _read_jsonl(os.path.join(run_dir, 'metric-toy2k.jsonl'))
    assert [s.value for s in events.Scalars('Metrics/toy2k_emd')] == pytest.approx([m['results']['toy2k_emd'] for m in metrics], rel=1e-6)


def test_without_tensorboard_the_run_says_so_and_trains(env, monkeypatch):
    monkeypatch.setitem(sys.modules, 'torch.utils.tensorboard', None)  # import fails as if the package were absent
    run_dir, output = _train(env / 'runs')
    assert 'Skipping tfevents export:' in output
    assert not glob.glob(os.path.join(run_dir, 'events.out.tfevents.*'))
    assert os.path.isfile(os.path.join(run_dir, 'network-snapshot-000002.pkl'))

#----------------------------------------------------------------------------
