"""Toy lab metrics against brute-force float64 references: exact W1 against the transport LP, mode scores against per-point loops."""

import itertools

import numpy as np
import pytest
import scipy.optimize

from metrics import toy_metrics
from training import toy_data

#----------------------------------------------------------------------------
# W1 between two uniform empirical measures as the transport LP (scipy linprog):
# min sum_ij C_ij P_ij, P >= 0, rows sum to 1/n, columns sum to 1/m.

def _w1_lp(a, b):
    n, m = len(a), len(b)
    cost = np.sqrt(np.square(a[:, None] - b[None]).sum(axis=2))
    rows = np.kron(np.eye(n), np.ones([1, m]))
    cols = np.kron(np.ones([1, n]), np.eye(m))
    res = scipy.optimize.linprog(cost.ravel(), A_eq=np.concatenate([rows, cols]), b_eq=np.concatenate([np.full(n, 1 / n), np.full(m, 1 / m)]),
                                 bounds=(0, None), method='highs')
    assert res.status == 0
    return res.fun

@pytest.mark.parametrize('seed', range(4))
def test_w1_exact_matches_the_transport_lp(seed):
    rng = np.random.default_rng(seed)
    n = 12
    a = rng.normal(size=[n, 2]) + (seed % 2) * np.array([3.0, 0.0])
    b = rng.normal(size=[n, 2]) * 0.5
    np.testing.assert_allclose(toy_metrics.w1_exact(a, b), _w1_lp(a, b), rtol=1e-9, atol=1e-12)

def test_w1_exact_matches_all_permutations():
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=[6, 2]), rng.normal(size=[6, 2])
    brute = min(np.mean([np.linalg.norm(a[i] - b[p[i]]) for i in range(6)]) for p in itertools.permutations(range(6)))
    assert toy_metrics.w1_exact(a, b) == pytest.approx(brute, rel=1e-12)

def test_w1_exact_identities():
    rng = np.random.default_rng(1)
    a = rng.normal(size=[50, 2])
    assert toy_metrics.w1_exact(a, a[::-1]) == pytest.approx(0, abs=1e-12)     # same set, any order
    assert toy_metrics.w1_exact(a, a + [3.0, 4.0]) == pytest.approx(5.0)       # a translation moves every point by 5
    with pytest.raises(ValueError, match=r'same shape'):
        toy_metrics.w1_exact(a, a[:10])

#----------------------------------------------------------------------------
# Mode scores, one point and one mode at a time.

def _mode_scores_loops(points, centres, stds, weights, radius=3.0, min_share=0.01):
    n, k = len(points), len(centres)
    within = np.zeros(k)
    hist = np.zeros(k)
    hq = 0
    for p in points:
        d = [np.linalg.norm(p - centres[j]) / stds[j] for j in range(k)]
        for j in range(k):
            within[j] += d[j] <= radius
        hist[int(np.argmin(d))] += 1
        hq += min(d) <= radius
    within, hist = within / n, hist / n
    kl = sum(h * np.log(h / w) for h, w in zip(hist, weights) if h > 0)
    return dict(modes=int(sum(w >= min_share for w in within)), hq=hq / n, kl=kl, dds=np.abs(weights - hist).sum(), within=within, hist=hist)

def test_mode_scores_match_loops():
    modes = toy_data.builtin_modes(*toy_data.parse_toy_spec('toy:ring8,rare=0.1,std=0.1'))
    rng = np.random.default_rng(3)
    # Half the points near modes 1-3 (some outside 3 std), the rest anywhere; mode 0 gets 1 point (< 1 %).
    near = modes.centres[rng.integers(1, 4, size=150)] + rng.normal(size=[150, 2]) * 0.2
    points = np.concatenate([near, rng.uniform(-3, 3, size=[149, 2]), modes.centres[:1]])
    got = toy_metrics.mode_scores(points, modes.centres, modes.stds, modes.weights)
    ref = _mode_scores_loops(points, modes.centres, modes.stds, modes.weights)
    assert got['modes'] == ref['modes']
    for key in ('hq', 'kl', 'dds'):
        assert got[key] == pytest.approx(ref[key], rel=1e-12, abs=1e-15), key
    np.testing.assert_allclose(got['within'], ref['within'])
    np.testing.assert_allclose(got['hist'], ref['hist'])

def test_mode_scores_of_the_true_distribution():
    name, options = toy_data.parse_toy_spec('toy:ring8,rare=0.02')
    modes = toy_data.builtin_modes(name, options)
    points, _ = toy_data.sample_mixture(modes, 20000, seed=0)
    s = toy_metrics.mode_scores(points, modes.centres, modes.stds, modes.weights)
    assert s['modes'] == 8
    assert s['hq'] == pytest.approx(0.9889, abs=0.003)     # P(chi_2 <= 9) = 1 - exp(-4.5)
    assert s['kl'] < 1e-6 and s['dds'] < 1e-3             # exact counts: the histogram equals the weights

def test_mode_scores_missing_modes():
    modes = toy_data.builtin_modes(*toy_data.parse_toy_spec('toy:ring8'))
    points = np.repeat(modes.centres[:2], 50, axis=0)                        # all on modes 0 and 1
    s = toy_metrics.mode_scores(points, modes.centres, modes.stds, modes.weights)
    assert (s['modes'], s['hq']) == (2, 1.0)
    assert s['kl'] == pytest.approx(np.log(4))                              # KL(f_g || pi) = log(0.5 / 0.125)
    assert s['dds'] == pytest.approx(2 * 0.375 + 6 * 0.125)

#----------------------------------------------------------------------------
