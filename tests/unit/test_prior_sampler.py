"""Unit tests for priors/sampler.py: determinism, weights respected, exact resume with rewinding, identical streams on simulated ranks."""

import itertools

import numpy as np
import pytest
import torch

from priors.sampler import PriorResampler

class _Data:
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, idx):
        return idx

def _take(sampler, n, it=None):
    it = it if it is not None else iter(sampler)
    return [next(it) for _ in range(n)], it

#----------------------------------------------------------------------------
# Uniform stream (no weights set).

def test_uniform_stream_is_a_seeded_shuffle_per_epoch():
    first, _ = _take(PriorResampler(_Data(10), seed=1), 30)
    again, _ = _take(PriorResampler(_Data(10), seed=1), 30)
    other, _ = _take(PriorResampler(_Data(10), seed=2), 30)
    assert first == again and first != other
    for epoch in range(3):
        assert sorted(first[epoch * 10:(epoch + 1) * 10]) == list(range(10))
    assert first[:10] != first[10:20]  # a new permutation each epoch
    assert first[:10] != list(range(10))


def test_works_as_a_dataloader_sampler():
    loader = torch.utils.data.DataLoader(_Data(7), sampler=PriorResampler(_Data(7), seed=0), batch_size=7)
    batch = next(iter(loader))
    assert sorted(batch.tolist()) == list(range(7))

#----------------------------------------------------------------------------
# Weighted stream.

def test_weights_are_respected_statistically():
    weights = np.array([4, 0, 1, 1, 2, 0, 2], dtype=np.float64)
    sampler = PriorResampler(_Data(7), seed=0)
    sampler.set_weights(weights)
    draws, _ = _take(sampler, 40000)
    freqs = np.bincount(draws, minlength=7) / len(draws)
    expected = weights / weights.sum()
    assert freqs[1] == 0 and freqs[5] == 0  # weight 0: never drawn
    # Binomial standard deviation is at most 0.0025 here; allow 4 of them.
    np.testing.assert_allclose(freqs, expected, atol=0.01)


def test_weights_take_effect_at_the_current_position():
    base, _ = _take(PriorResampler(_Data(10), seed=3), 25)
    sampler = PriorResampler(_Data(10), seed=3)
    head, it = _take(sampler, 12)
    sampler.set_weights(np.eye(10)[4])  # only image 4
    tail, _ = _take(sampler, 13, it)
    assert head == base[:12]  # what was handed out before is unchanged
    assert tail == [4] * 13
    assert sampler.weights[4] == 1


def test_none_returns_to_the_uniform_stream():
    base, _ = _take(PriorResampler(_Data(6), seed=0), 30)
    sampler = PriorResampler(_Data(6), seed=0)
    head, it = _take(sampler, 10)
    sampler.set_weights(np.ones(6))
    middle, it = _take(sampler, 10, it)
    sampler.set_weights(None)
    tail, _ = _take(sampler, 10, it)
    assert head == base[:10] and tail == base[20:]


def test_set_weights_errors():
    sampler = PriorResampler(_Data(4))
    with pytest.raises(ValueError, match=r'expected one weight per dataset item, shape \[4\], got shape \[3\]'):
        sampler.set_weights(np.ones(3))
    with pytest.raises(ValueError, match=r'weights must be >= 0, got minimum -1'):
        sampler.set_weights(np.array([1.0, -1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match=r'the weights contain 1 NaN or infinite values'):
        sampler.set_weights(np.array([1.0, np.nan, 1.0, 1.0]))
    with pytest.raises(ValueError, match=r'all weights are 0'):
        sampler.set_weights(np.zeros(4))


def test_constructor_errors():
    with pytest.raises(ValueError, match=r'the dataset is empty'):
        PriorResampler(_Data(0))
    with pytest.raises(ValueError, match=r'rank must be in \[0, 1\], got 2'):
        PriorResampler(_Data(3), rank=2, num_replicas=2)

#----------------------------------------------------------------------------
# Exact resume: state_dict(num_unused) rewinds indices prefetched but unused.

def _weighted_run(sampler, total, updates):
    # Hand out `total` indices, calling set_weights(w) after `at` of them for each (at, w) in updates.
    out, it = [], iter(sampler)
    for at, weights in itertools.chain(updates, [(total, None)]):
        out += [next(it) for _ in range(at - len(out))]
        if at < total:
            sampler.set_weights(weights)
    return out

def test_resume_with_rewind_replays_the_same_stream():
    rng = np.random.default_rng(0)
    w1, w2 = rng.random(12), rng.random(12)
    full = _weighted_run(PriorResampler(_Data(12), seed=5), 200, [(50, w1), (120, w2)])

    # Stop after 140 handed out, of which 40 were prefetched but unused: resume at 100.
    first = PriorResampler(_Data(12), seed=5)
    _weighted_run(first, 140, [(50, w1), (120, w2)])
    state = first.state_dict(num_unused=40)
    assert state['num_yielded'] == 100 and state['step'] == 100
    assert state['history']['steps'].tolist() == [50, 120]  # w2 lies past the rewound position but is kept
    resumed = PriorResampler(_Data(12), seed=5)
    resumed.load_state_dict(state)
    tail, _ = _take(resumed, 100)
    assert tail == full[100:]


def test_state_is_plain_and_survives_torch_save(tmp_path):
    sampler = PriorResampler(_Data(5), seed=2)
    _weighted_run(sampler, 20, [(10, np.arange(5.0))])
    path = str(tmp_path / 'state.pt')
    torch.save(sampler.state_dict(), path)
    state = torch.load(path, weights_only=True)
    resumed = PriorResampler(_Data(5), seed=2)
    resumed.load_state_dict(state)
    expected, _ = _take(sampler, 15)
    got, _ = _take(resumed, 15)
    assert got == expected


def test_old_weights_are_pruned_from_the_state():
    sampler = PriorResampler(_Data(3), seed=0)
    _weighted_run(sampler, 40, [(10, np.ones(3)), (20, np.arange(1.0, 4.0)), (30, np.ones(3))])
    assert sampler.state_dict()['history']['steps'].tolist() == [30]
    assert sampler.state_dict(num_unused=15)['history']['steps'].tolist() == [20, 30]


def test_state_errors():
    sampler = PriorResampler(_Data(5), seed=2)
    _take(sampler, 3)
    with pytest.raises(ValueError, match=r'num_unused must be in \[0, 3\] \(indices yielded so far\), got 4'):
        sampler.state_dict(num_unused=4)
    other = PriorResampler(_Data(5), seed=9)
    with pytest.raises(ValueError, match=r'saved seed=2 differs from this sampler\'s seed=9'):
        other.load_state_dict(sampler.state_dict())
    with pytest.raises(ValueError, match=r'not a PriorResampler state'):
        other.load_state_dict(dict(num_yielded=3, idx=3))

#----------------------------------------------------------------------------
# Several processes: each rank walks every num_replicas-th step of one global stream.

def test_two_ranks_interleave_to_the_single_process_stream():
    rng = np.random.default_rng(1)
    w = rng.random(9)
    single = _weighted_run(PriorResampler(_Data(9), seed=4), 60, [(20, w)])
    ranks = [PriorResampler(_Data(9), rank=r, num_replicas=2, seed=4) for r in range(2)]
    # The loop calls set_weights on both ranks after the same number of iterations (10 indices each).
    per_rank = [_weighted_run(s, 30, [(10, w)]) for s in ranks]
    interleaved = [x for pair in zip(*per_rank) for x in pair]
    assert interleaved == single
    assert all(np.array_equal(s.weights, ranks[0].weights) for s in ranks)

    # Resuming both ranks from rewound states continues the same global stream.
    states = [s.state_dict(num_unused=5) for s in ranks]
    resumed = [PriorResampler(_Data(9), rank=r, num_replicas=2, seed=4) for r in range(2)]
    for s, state in zip(resumed, states):
        s.load_state_dict(state)
    tails = [_take(s, 5)[0] for s in resumed]
    assert [x for pair in zip(*tails) for x in pair] == single[50:60]

#----------------------------------------------------------------------------
