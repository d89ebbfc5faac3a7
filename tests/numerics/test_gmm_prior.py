"""Numerical tests of the PriorGAN math in priors/gmm/prior.py: hand-computed Eq. 5-8 and per-image weights, NaN-free edge cases, gradcheck of the quality loss in float64."""

import math

import numpy as np
import pytest
import torch

from priors.gmm import gmm_math
from priors.gmm import GaussianMixture
from torch_utils import training_stats
from priors.gmm.prior import (GMMPrior, diversity_difference_score, diversity_distance, per_image_weights, quality_loss,
                              resampled_frequencies, smoothed_frequencies)

def _f64(values):
    return torch.tensor(values, dtype=torch.float64)

#----------------------------------------------------------------------------
# Eq. 5: quality loss.

def test_quality_loss_hand_computed():
    log_prob = _f64([-10.0, -2.0, -5.0, -4.0])
    got = quality_loss(log_prob, log_theta=-4.0, num_dims=2)
    # Below the threshold: -log p / d; at or above it: 0 (Eq. 5 uses a strict "<").
    np.testing.assert_array_equal(got.numpy(), [5.0, 0.0, 2.5, 0.0])


def test_quality_loss_of_a_standard_normal_matches_its_closed_form():
    # One 1-d component N(0, 1): log p(x) = -log(2 pi) / 2 - x^2 / 2.
    x = _f64([[3.0], [0.5]])
    log_prob = gmm_math.gmm_log_prob(x, _f64([1.0]), _f64([[0.0]]), _f64([[[1.0]]]), 'full')
    expected_log_prob = [-0.5 * math.log(2 * math.pi) - 4.5, -0.5 * math.log(2 * math.pi) - 0.125]
    np.testing.assert_allclose(log_prob.numpy(), expected_log_prob, rtol=1e-12)
    got = quality_loss(log_prob, log_theta=-2.0, num_dims=1)
    np.testing.assert_allclose(got.numpy(), [0.5 * math.log(2 * math.pi) + 4.5, 0.0], rtol=1e-12)


def test_quality_loss_gradient_is_minus_one_over_d_below_threshold_only():
    log_prob = _f64([-10.0, 3.0, -7.0]).requires_grad_(True)
    quality_loss(log_prob, log_theta=0.0, num_dims=4).sum().backward()
    np.testing.assert_array_equal(log_prob.grad.numpy(), [-0.25, 0.0, -0.25])


def test_quality_loss_rejects_zero_dimensions():
    with pytest.raises(ValueError, match=r'num_dims must be >= 1, got 0'):
        quality_loss(_f64([-1.0]), log_theta=0.0, num_dims=0)


def test_quality_loss_gradcheck_through_a_fitted_gmm_in_float64():
    # Features of a 2-component mixture in 3-d; the loss goes through the GMM density (Eq. 3).
    rng = np.random.default_rng(0)
    data = np.concatenate([rng.normal(-2, 0.5, size=[40, 3]), rng.normal(2, 1.0, size=[40, 3])])
    gmm = GaussianMixture(n_components=2, random_state=0).fit(data)
    feats = torch.tensor(np.concatenate([rng.normal(0, 3, size=[6, 3]), rng.normal(-2, 0.2, size=[2, 3])]), dtype=torch.float64)
    log_prob = gmm.log_prob(feats).detach()
    ordered = log_prob.sort().values
    log_theta = float(ordered[3] + ordered[4]) / 2  # between two samples: 4 below, 4 above
    assert float((log_prob - log_theta).abs().min()) > 1e-3  # no sample sits on the threshold
    assert 0 < int((log_prob < log_theta).sum()) < feats.shape[0]
    fn = lambda f: quality_loss(gmm.log_prob(f), log_theta, num_dims=3)
    assert torch.autograd.gradcheck(fn, (feats.clone().requires_grad_(True),), eps=1e-6, atol=1e-7)

#----------------------------------------------------------------------------
# Eq. 6-7: diversity distance and DDS.

def test_diversity_distance_and_dds_hand_computed():
    real, gen = [0.5, 0.3, 0.2], [0.2, 0.3, 0.5]
    np.testing.assert_allclose(diversity_distance(real, gen).numpy(), [0.3, 0.0, -0.3], atol=1e-15)
    assert diversity_difference_score(real, gen) == pytest.approx(0.6, abs=1e-15)
    assert diversity_difference_score(real, real) == 0
    assert diversity_difference_score([1, 0], [0, 1]) == 2  # the maximum: disjoint supports


def test_diversity_distance_errors():
    with pytest.raises(ValueError, match=r'real_freqs has shape \[3\] but gen_freqs has \[2\]'):
        diversity_distance([0.5, 0.3, 0.2], [0.5, 0.5])
    with pytest.raises(ValueError, match=r'gen_freqs must be finite and >= 0'):
        diversity_distance([0.5, 0.5], [float('nan'), 1.0])

#----------------------------------------------------------------------------
# Eq. 8: resampled frequencies.

def test_resampled_frequencies_hand_computed():
    # alpha = 1: f' = max([0.5 + 0.3, 0.3 + 0, 0.2 - 0.3], 0) = [0.8, 0.3, 0] -> / 1.1.
    got = resampled_frequencies([0.5, 0.3, 0.2], [0.2, 0.3, 0.5], alpha=1)
    np.testing.assert_allclose(got.numpy(), [0.8 / 1.1, 0.3 / 1.1, 0.0], rtol=1e-14)
    # alpha = 7, G only makes component 0: f' = max([0.5 - 3.5, 0.5 + 3.5], 0) = [0, 4] -> [0, 1].
    np.testing.assert_allclose(resampled_frequencies([0.5, 0.5], [1.0, 0.0], alpha=7).numpy(), [0.0, 1.0])
    # alpha = 0 or a perfect G: f' = f^r.
    np.testing.assert_allclose(resampled_frequencies([0.6, 0.4], [0.1, 0.9], alpha=0).numpy(), [0.6, 0.4])
    np.testing.assert_allclose(resampled_frequencies([0.6, 0.4], [0.6, 0.4], alpha=7).numpy(), [0.6, 0.4])


def test_resampled_frequencies_component_without_generated_images():
    # f^g_1 = 0: d_1 = f^r_1, so component 1 gets (1 + alpha) f^r_1 before normalising.
    got = resampled_frequencies([0.75, 0.25], [1.0, 0.0], alpha=1)
    np.testing.assert_allclose(got.numpy(), [0.5 / 1.0, 0.5 / 1.0])


def test_resampled_frequencies_fall_back_to_real_when_all_clipped():
    # Only unnormalised inputs can clip every entry; the result is then f^r, never NaN.
    got = resampled_frequencies([0.5, 0.5], [1.0, 1.0], alpha=2)
    np.testing.assert_array_equal(got.numpy(), [0.5, 0.5])
    assert bool(torch.isfinite(got).all())


def test_resampled_frequencies_rejects_negative_alpha():
    with pytest.raises(ValueError, match=r'alpha must be >= 0, got -1'):
        resampled_frequencies([0.5, 0.5], [0.5, 0.5], alpha=-1)


def test_smoothed_frequencies_hand_computed():
    np.testing.assert_allclose(smoothed_frequencies(_f64([1.0, 0.0]), _f64([0.0, 1.0]), ema=0.25).numpy(), [0.25, 0.75])
    np.testing.assert_array_equal(smoothed_frequencies(None, _f64([0.2, 0.8]), ema=0.9).numpy(), [0.2, 0.8])
    np.testing.assert_array_equal(smoothed_frequencies(_f64([1.0, 0.0]), _f64([0.2, 0.8]), ema=0).numpy(), [0.2, 0.8])
    with pytest.raises(ValueError, match=r'ema must be in \[0, 1\), got 1'):
        smoothed_frequencies(None, _f64([1.0]), ema=1)

#----------------------------------------------------------------------------
# Per-image weights f'_k / n_k.

def test_per_image_weights_hand_computed():
    # n = [2, 1, 3]: images of component 0 get 0.5 / 2, of 1 get 0.25 / 1, of 2 get 0.25 / 3.
    got = per_image_weights([0, 0, 1, 2, 2, 2], [0.5, 0.25, 0.25])
    np.testing.assert_allclose(got.numpy(), [0.25, 0.25, 0.25, 0.25 / 3, 0.25 / 3, 0.25 / 3], rtol=1e-15)
    assert float(got.sum()) == pytest.approx(1.0)
    assert got.dtype == torch.float64


def test_per_image_weights_component_without_real_images_gets_nothing():
    # Component 1 has no real image: its frequency is lost, nothing divides by 0.
    got = per_image_weights([0, 0, 2], [0.5, 0.3, 0.2])
    np.testing.assert_allclose(got.numpy(), [0.25, 0.25, 0.2])
    assert bool(torch.isfinite(got).all())


def test_resampling_never_gives_weight_to_empty_components():
    # With f^r_1 = 0 (no real images) Eq. 8 gives f'_1 = max(-alpha f^g_1, 0) = 0 whatever G does.
    real = [0.5, 0.0, 0.5]
    freqs = resampled_frequencies(real, [0.1, 0.8, 0.1], alpha=7)
    assert float(freqs[1]) == 0
    weights = per_image_weights([0, 2, 2, 0], freqs)
    assert float(weights.sum()) == pytest.approx(1.0) and bool(torch.isfinite(weights).all())


def test_per_image_weights_errors():
    with pytest.raises(ValueError, match=r'component indices must be in \[0, 1\], got range \[0, 2\]'):
        per_image_weights([0, 2], [0.5, 0.5])
    with pytest.raises(ValueError, match=r'assignments must be a non-empty vector'):
        per_image_weights([], [0.5, 0.5])

#----------------------------------------------------------------------------
# The quality loss inside GMMPrior: lazy schedule and weight, on a stub prior
# whose log p is the first feature and an identity extractor.

class _StubPrior:
    def log_prob(self, features):
        return features[:, 0]

def _stub_gmm(**kwargs):
    prior = GMMPrior(resample=False, **kwargs)
    prior.prior, prior.extractor = _StubPrior(), (lambda img: img)
    prior.num_dims, prior.log_theta = 2, -1.0
    return prior

def test_lazy_quality_loss_runs_every_k_iterations_with_weight_times_k():
    prior = _stub_gmm(weight=0.1, lazy=3)
    feats = _f64([[-5.0], [0.0]])
    applied = []
    for cur_nimg in range(0, 24, 4):
        assert prior.on_progress(cur_nimg) is None  # resampling is off
        applied.append(prior.extra_loss('Gmain', feats, None, None, None))
    assert [a is not None for a in applied] == [True, False, False, True, False, False]
    # -log p / d = 2.5 below theta, 0 above it; times delta * lazy = 0.3.
    np.testing.assert_allclose(applied[0].numpy(), [0.75, 0.0])
    assert prior.extra_loss('Dreal', feats, None, None, None) is None  # only G's main step
    unweighted = _stub_gmm(weight=0.0)
    unweighted.on_progress(0)
    assert unweighted.extra_loss('Gmain', feats, None, None, None) is None
    training_stats.reset()

#----------------------------------------------------------------------------
