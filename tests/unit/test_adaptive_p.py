"""training.augment.AdaptiveP owns its statistics: it reads the reported signs of D(real) through its own
collector, adjusts p from the signs seen since the previous adjustment, and carries signs read at a
snapshot through its state_dict(), so that a resumed controller makes the same next adjustment."""

import pytest
import torch

from torch_utils import training_stats
from training import augment

#----------------------------------------------------------------------------

def _with_p(pipe, p):
    pipe.p.copy_(torch.as_tensor(p))
    return pipe

def _report(name, signs):
    training_stats.report(name, torch.tensor(signs, dtype=torch.float32))

#----------------------------------------------------------------------------

def test_adjust_reads_only_its_own_statistic_since_the_previous_adjustment():
    name = 'Loss/signs/real_test_adjust'
    _report(name, [1.0, 1.0])                  # before the controller exists: not seen
    ada = augment.AdaptiveP(target=0.6, batch_size=32, ada_kimg=1, interval=2, sign_stat=name)  # step 0.064
    pipe = _with_p(augment.AugmentPipe(xflip=1), 0.5)
    _report(name, [1.0, 1.0, 1.0, -1.0])       # mean 0.5 < 0.6: p goes down
    _report(name + '_other', [1.0] * 8)        # another statistic: ignored
    assert ada.adjust(pipe) == pytest.approx(0.5 - 0.064, abs=1e-6)
    assert ada.last_sign_mean == pytest.approx(0.5)
    _report(name, [1.0, 1.0])                  # only these count now: mean 1 > 0.6, p goes up
    assert ada.adjust(pipe) == pytest.approx(0.5, abs=1e-6) and ada.last_sign_mean == pytest.approx(1.0)
    # Nothing reported: the collector keeps the previous interval (keep_previous=True, as the official loop).
    assert ada.adjust(pipe) == pytest.approx(0.5 + 0.064, abs=1e-6)
    assert ada.num_updates == 3


def test_signs_held_at_a_snapshot_survive_the_state_dict():
    name = 'Loss/signs/real_test_hold'
    ada = augment.AdaptiveP(target=0.6, batch_size=32, ada_kimg=1, interval=2, sign_stat=name)
    _report(name, [1.0, 1.0, 1.0])             # seen before the snapshot
    ada.hold_signs()
    state = ada.state_dict()
    assert state['carry'] == [3, pytest.approx(3.0)]

    # Without a resume: the carried signs and the later ones make one adjustment (mean (3 - 5) / 8 < 0.6).
    _report(name, [-1.0] * 5)
    pipe = _with_p(augment.AugmentPipe(xflip=1), 0.5)
    ada.adjust(pipe)
    assert ada.last_sign_mean == pytest.approx(-2 / 8)

    # A resumed controller gets the carried signs from the state: same statistic after the same later reports.
    resumed = augment.AdaptiveP(target=0.6, batch_size=32, ada_kimg=1, interval=2, sign_stat=name)
    resumed.load_state_dict(state)
    _report(name, [-1.0] * 5)
    resumed.adjust(_with_p(augment.AugmentPipe(xflip=1), 0.5))
    assert resumed.last_sign_mean == pytest.approx(-2 / 8)
    assert resumed.state_dict()['carry'] == [0, 0.0]

#----------------------------------------------------------------------------
