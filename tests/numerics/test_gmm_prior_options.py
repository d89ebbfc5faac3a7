"""The PriorGAN options of issue 18 that are off by default (priors/gmm/prior.py): the quality loss scaled to the
component's spread (checked against a float64 reference of -grad log p), the damped resampling feedback
(resample_max_ratio, hand-computed) and resampling by known labels (toy modes) instead of GMM components."""

import numpy as np
import pytest
import torch

import dnnlib
from priors.gmm import GaussianMixture
from priors.gmm.prior import GMMPrior, label_centres, quality_loss_terms, resampled_frequencies
from torch_utils import training_stats
from training import toy_data

#----------------------------------------------------------------------------
# quality_scale='spread': the per-dimension Eq. 5 term times trace(Sigma_k) / d of the nearest component.
# Reference (float64, numpy): -log p of one Gaussian has gradient Sigma^-1 (x - mu), so the scaled term's
# gradient is weight * (trace(Sigma) / d) * Sigma^-1 (x - mu) / d.

class _GMMOnly:
    """A prior file without PCA: the GMM on the raw features."""
    def __init__(self, gmm):
        self.gmm = gmm
    def project(self, features):
        return features
    def log_prob(self, features):
        return self.gmm.log_prob(features)

def _fitted_one_component(std=0.05, seed=0):
    rng = np.random.default_rng(seed)
    x = torch.tensor(rng.normal([1.0, -2.0], [std, 2 * std], size=[2000, 2]), dtype=torch.float64)
    gmm = GaussianMixture(n_components=1, random_state=0)
    gmm.fit(x)
    return _GMMOnly(gmm)

@pytest.mark.parametrize('scale', ['none', 'spread'])
def test_quality_loss_gradient_against_float64_reference(scale):
    prior = _fitted_one_component()
    x = torch.tensor([[1.4, -2.5], [0.2, -1.0]], dtype=torch.float64, requires_grad=True)
    loss, log_prob = quality_loss_terms(prior, x, log_theta=1e9, weight=0.1, num_dims=2, quality_scale=scale)
    (grad,) = torch.autograd.grad(loss.sum(), [x])
    mu, cov = prior.gmm.means_[0].numpy(), prior.gmm.covariances_[0].numpy()
    ref = 0.1 * (np.linalg.solve(cov, (x.detach().numpy() - mu).T).T) / 2
    if scale == 'spread':
        ref = ref * np.trace(cov) / 2
    np.testing.assert_allclose(grad.numpy(), ref, rtol=1e-6)
    np.testing.assert_allclose(log_prob.detach().numpy(), prior.gmm.score_samples(x.detach()).numpy())

def test_spread_scaled_pull_is_in_data_units():
    # Two components 100x apart in width: with 'spread' the pull at the same offset from the mean is the same.
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal([0, 0], 0.01, size=[2000, 2]), rng.normal([10, 0], 1.0, size=[2000, 2])])
    gmm = GaussianMixture(n_components=2, random_state=0)
    gmm.fit(torch.tensor(x))
    prior = _GMMOnly(gmm)
    near = int(np.argmin(gmm.means_[:, 0].numpy()))
    offsets = torch.tensor([[0.03, 0.0], [0.03, 0.0]], dtype=torch.float64)
    pts = (gmm.means_[[near, 1 - near]] + offsets).requires_grad_(True)
    loss, _ = quality_loss_terms(prior, pts, log_theta=1e9, weight=1.0, num_dims=2, quality_scale='spread')
    (grad,) = torch.autograd.grad(loss.sum(), [pts])
    np.testing.assert_allclose(grad[:, 0].numpy(), [0.015, 0.015], rtol=0.1)

def test_quality_loss_terms_rejects_unknown_scale():
    with pytest.raises(ValueError, match='quality_scale'):
        quality_loss_terms(_fitted_one_component(), torch.zeros([1, 2]), 0.0, 1.0, 2, quality_scale='sigma')
    with pytest.raises(ValueError, match='quality_scale must be one of none, spread'):
        GMMPrior(quality_scale='sigma')

#----------------------------------------------------------------------------
# resample_max_ratio: f' clipped to [f^r / c, c f^r] before normalising (hand-computed).

def test_max_ratio_hand_computed():
    real, gen = [0.5, 0.3, 0.2], [0.9, 0.1, 0.0]
    # Eq. 8: [0.5 - 2.8, 0.3 + 1.4, 0.2 + 1.4] -> [0, 1.7, 1.6]; clipped to [r/2, 2r]: [0.25, 0.6, 0.4]; / 1.25.
    np.testing.assert_allclose(resampled_frequencies(real, gen, 7, max_ratio=2).numpy(), [0.2, 0.48, 0.32])
    np.testing.assert_allclose(resampled_frequencies(real, gen, 7).numpy(), [0, 1.7 / 3.3, 1.6 / 3.3])
    with pytest.raises(ValueError, match='max_ratio'):
        resampled_frequencies(real, gen, 7, max_ratio=0.5)
    with pytest.raises(ValueError, match='resample_max_ratio must be 0 \\(off\\) or > 1'):
        GMMPrior(resample_max_ratio=1)

class _StubPriorFile:
    num_components = 3

def test_prior_update_uses_max_ratio():
    prior = GMMPrior(resample_alpha=7, resample_kimg=1, resample_ema=0, resample_max_ratio=2)
    prior.prior, prior.real_freqs, prior.assignments = _StubPriorFile(), torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64), torch.arange(3)
    prior._generated_counts = lambda update_idx: torch.tensor([90.0, 10.0, 0.0], dtype=torch.float64)
    prior._update_weights(1000)
    np.testing.assert_allclose(prior.freqs.numpy(), [0.2, 0.48, 0.32])
    training_stats.reset()

#----------------------------------------------------------------------------
# resample_labels: the groups are the toy data's true modes, not the GMM's 2 components.

def test_label_centres_hand_computed():
    centres = label_centres(torch.tensor([[0.0, 0.0], [2.0, 0.0], [5.0, 5.0]]), np.array([0, 0, 2]))
    assert centres[0].tolist() == [1.0, 0.0] and centres[2].tolist() == [5.0, 5.0] and bool(torch.isinf(centres[1]).all())

class _PointG:
    """A 'generator' whose every sample is the same 2-D point."""
    z_dim, c_dim = 2, 0
    def __init__(self, point):
        self.point = torch.tensor(point, dtype=torch.float32)
        self.mapping, self.synthesis = self._mapping, self._synthesis
    def _mapping(self, z, c, **kwargs):
        return z[:, None, :]
    def _synthesis(self, ws, **kwargs):
        return self.point.reshape(1, 2, 1, 1).repeat(ws.shape[0], 1, 1, 1)

@pytest.mark.parametrize('labels', [False, True])
def test_resample_labels_groups_by_toy_modes(labels, tmp_path, monkeypatch):
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path / 'cache'))
    spec = 'toy:ring8,rare=0.1,n=400'
    dataset_kwargs = toy_data.toy_dataset_kwargs(spec)
    dataset = dnnlib.util.construct_class_by_name(**dataset_kwargs)
    modes = dataset.toy_modes
    G = _PointG(modes.centres[3])
    prior = GMMPrior(feature='identity', components=2, pca=None, cache_dir=str(tmp_path), resample_num=40, resample_min_per_component=0,
                     resample_ema=0, resample_labels=labels)
    ctx = dnnlib.EasyDict(device=torch.device('cpu'), G=G, G_ema=G, G_mapping=G, G_synthesis=G, rank=0, num_gpus=1, random_seed=0,
                          dataset_kwargs=dataset_kwargs, run_dir=None)
    prior.setup(ctx)
    counts = prior._generated_counts(update_idx=0)
    if labels:
        np.testing.assert_array_equal(prior.assignments.numpy(), dataset.get_modes())
        np.testing.assert_allclose(prior.real_freqs.numpy(), np.bincount(dataset.get_modes(), minlength=8) / 400)
        np.testing.assert_allclose(prior.real_freqs.numpy(), modes.weights, atol=1 / 400)   # exact counts up to one point
        assert counts.tolist() == [0, 0, 0, 40, 0, 0, 0, 0]
        assert len(prior.state_dict()['resample']['real_freqs']) == 8
    else:
        assert len(prior.real_freqs) == 2 and counts.sum() == 40
    training_stats.reset()

def test_resample_labels_refuses_data_without_labels():
    from priors.gmm.prior import known_labels
    class _NoLabels:
        name, has_labels, has_onehot_labels, has_modes, toy_modes = 'plain', False, False, False, None
    with pytest.raises(ValueError, match='resample_labels needs per-image labels'):
        known_labels(_NoLabels())

#----------------------------------------------------------------------------
