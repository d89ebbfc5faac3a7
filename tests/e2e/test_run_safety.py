"""Crash safety and resume details of the training loop (issue 15): ADA's pending statistics survive a resume,
a diverged run stops with the last good snapshot kept, stats.jsonl is strict JSON, fakes<kimg>.png follows its
snapshot, and train.py removes a resumed run's partial snapshot files."""

import json
import os
import pickle

import pytest
import torch

import dnnlib
import harness
from torch_utils import training_stats
from training import training_loop as training_loop_module

pytestmark = pytest.mark.slow

#----------------------------------------------------------------------------

@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory):
    return harness.tiny_dataset(tmp_path_factory.mktemp('data') / 'tiny16.zip', num_images=16)


# The harness's tiny run with ADA (p adjusted every 3 steps) and no EMA ramp-up.
def _kwargs(data_path, run_dir, num_steps, **overrides):
    kwargs = dict(augment_kwargs=dict(harness.AUGMENT), augment_p=0.2, ada_target=0.6, ada_interval=3, ada_kimg=1, ema_rampup=None)
    kwargs.update(overrides)
    return harness.loop_config(data_path, run_dir, num_steps, **kwargs)

#----------------------------------------------------------------------------
# ADA adjusts p every 3 steps; a snapshot after step 5 holds the signs of steps
# 4-5 not yet used ("carry"). A resumed run must use them at step 6. Whether p
# then moves the other way depends on the data, so the test compares the
# statistics each adjustment sees, which differ whenever the carry is lost.

def test_resume_restores_ada_pending_statistics(tiny_data, tmp_path, monkeypatch):
    from training.augment import AdaptiveP
    calls = []
    take = AdaptiveP.take_signs
    def recording_take(self):
        num, total = take(self)
        calls.append((num, total))
        return num, total
    monkeypatch.setattr(AdaptiveP, 'take_signs', recording_take)

    training_loop_module.training_loop(**_kwargs(tiny_data, str(tmp_path / 'full'), 7))
    full, calls[:] = list(calls), []
    training_loop_module.training_loop(**_kwargs(tiny_data, str(tmp_path / 'first'), 5))
    snapshot = str(tmp_path / 'first' / 'network-snapshot-000000.pkl')
    calls.clear()
    training_loop_module.training_loop(**_kwargs(tiny_data, str(tmp_path / 'second'), 7, resume_pkl=snapshot))
    second = list(calls)

    # The snapshot holds pending signs, and the resumed run sees exactly what the uninterrupted run saw.
    with open(snapshot, 'rb') as f:
        carry = pickle.load(f)['resume_state']['ada']['carry']
    assert carry[0] > 0
    assert len(second) >= 1 and second == full[-len(second):]
    assert second[0][0] > carry[0]  # step 6's adjustment counts the carried signs and its own

#----------------------------------------------------------------------------
# A run whose weights become non-finite stops at the end of that tick with one
# clear error; the last snapshot before it stays the newest, stats.jsonl stays
# strict JSON, and every fakes<kimg>.png has its snapshot.

class _PoisonAfter:
    """progress_fn that makes a G weight NaN once `ticks` ticks have passed (as a huge learning rate would)."""
    def __init__(self, ticks):
        self.ticks, self.calls, self.G = ticks, 0, None

    def __call__(self, cur_kimg, total_kimg):
        self.calls += 1
        if self.calls == self.ticks:
            import gc
            for obj in gc.get_objects():
                if type(obj).__name__ == 'Generator' and getattr(obj, 'training', False):
                    with torch.no_grad():
                        next(obj.synthesis.parameters()).fill_(float('nan'))


def test_diverged_run_stops_and_keeps_the_last_good_snapshot(tiny_data, tmp_path):
    run_dir = str(tmp_path / 'run')
    kwargs = _kwargs(tiny_data, run_dir, 20, network_snapshot_ticks=1, image_snapshot_ticks=1, augment_kwargs=None, ada_target=None,
                     augment_p=0, progress_fn=_PoisonAfter(ticks=2))
    with pytest.raises(training_loop_module.TrainingDivergedError,
                       match=r'training diverged at kimg 0.02: (G|G_ema) tensor "synthesis\..*" holds NaN or infinite values, .*'
                             r'the last good snapshot is ".*network-snapshot-000000.pkl"'):
        training_loop_module.training_loop(**kwargs)

    # Two good ticks were written (snapshots overwrite the same kimg-0 name); the diverged tick wrote none.
    with open(os.path.join(run_dir, 'network-snapshot-000000.pkl'), 'rb') as f:
        snapshot = pickle.load(f)
    assert snapshot['resume_state']['cur_nimg'] == 12
    assert all(bool(torch.isfinite(p).all()) for p in snapshot['G'].parameters())

    # stats.jsonl: one line per tick, the diverged tick included, all strict JSON (no bare NaN).
    with open(os.path.join(run_dir, 'stats.jsonl')) as f:
        lines = [json.loads(line, parse_constant=lambda name: pytest.fail(f'bare {name} in stats.jsonl')) for line in f]
    assert len(lines) == 3
    assert any(isinstance(v, dict) and v.get('mean') == 'NaN' for v in lines[-1].values())  # the diverged losses
    # The NaN losses stay in this process's cumulative statistics; later runs in the same process would report NaN.
    training_stats.reset()



def test_fakes_are_written_after_their_snapshot(tiny_data, tmp_path, monkeypatch):
    # The disk fills up while the snapshot is written: no fakes<kimg>.png may claim a snapshot that does not exist.
    def disk_full(*args, **kwargs):
        raise OSError(28, 'No space left on device')
    monkeypatch.setattr(training_loop_module, '_save_network_snapshot', disk_full)
    run_dir = str(tmp_path / 'run')
    with pytest.raises(OSError, match='No space left on device'):
        training_loop_module.training_loop(**_kwargs(tiny_data, run_dir, 2, network_snapshot_ticks=1, image_snapshot_ticks=1))
    assert sorted(n for n in os.listdir(run_dir) if n.endswith('.png')) == ['fakes_init.png', 'reals.png']


def test_stats_jsonl_writes_non_finite_values_as_strings():
    stats = dnnlib.EasyDict(a=dnnlib.EasyDict(num=1, mean=float('nan'), std=float('inf')), b=[float('-inf'), 1.5])
    text = json.dumps(dnnlib.util.json_safe(stats), allow_nan=False)
    assert json.loads(text) == {'a': {'num': 1, 'mean': 'NaN', 'std': 'Infinity'}, 'b': ['-Infinity', 1.5]}
    assert float('Infinity') == float(json.loads(text)['a']['std'])

#----------------------------------------------------------------------------
# A kill during a snapshot write leaves ".network-snapshot-<kimg>.pkl.<hex>.tmp";
# resuming that run removes it (and nothing else).

def test_resume_removes_partial_snapshot_files(tmp_path, capsys):
    import train
    run_dir = tmp_path / 'runs' / '00000-x'
    run_dir.mkdir(parents=True)
    (run_dir / 'network-snapshot-000004.pkl').write_bytes(b'x')
    stale = run_dir / f'.network-snapshot-000008.pkl.{"ab" * 16}.tmp'
    stale.write_bytes(b'partial')
    other = run_dir / f'.stats.json.{"cd" * 16}.tmp'
    other.write_bytes(b'not a snapshot')
    train._remove_stale_snapshot_temps(str(run_dir / 'network-snapshot-000004.pkl'))
    assert not stale.exists() and other.exists()
    assert 'partial snapshot left by an interrupted write' in capsys.readouterr().out

#----------------------------------------------------------------------------
