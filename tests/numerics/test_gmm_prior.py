"""Numerical tests of the PriorGAN math in priors/gmm/prior.py: hand-computed Eq. 5-8 and per-image weights, NaN-free edge cases, gradcheck of the quality loss in float64; and issue 14: the loss form, the resampling noise floor of a perfect generator, held-out reference log-likelihoods (QS 0.5 for unseen reals), subset fits that assign every image, and the images that give f^g."""

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

#----------------------------------------------------------------------------
# Issue 14, point 4: the loss form. 'per_dim' divides -log p by d (weight =
# delta / d of the paper); 'paper' is Eq. 5 with delta on -log p itself.

def test_loss_form_paper_is_d_times_per_dim():
    feats = _f64([[-5.0], [0.0]])
    per_dim, paper = _stub_gmm(weight=0.1), _stub_gmm(weight=0.1, loss_form='paper')
    for prior in (per_dim, paper):
        prior.on_progress(0)
    a, b = per_dim.extra_loss('Gmain', feats, None, None, None), paper.extra_loss('Gmain', feats, None, None, None)
    np.testing.assert_allclose(a.numpy(), [0.1 * 5.0 / 2, 0.0])     # d = 2
    np.testing.assert_allclose(b.numpy(), [0.1 * 5.0, 0.0])         # the paper's delta * (-log p)
    with pytest.raises(ValueError, match=r'loss_form must be one of per_dim, paper, got \'total\''):
        GMMPrior(loss_form='total')
    training_stats.reset()

#----------------------------------------------------------------------------
# Issue 14, point 2: a perfect generator (f^g drawn from f^r) must not make
# Eq. 8 jitter. The simulation runs GMMPrior's own update (EMA started at f^r,
# estimate sized by resample_min_per_component * M) with multinomial counts of
# resample_count images drawn from f^r, for 200 updates, and measures
# L1(f' - f^r) and the fraction of components that Eq. 8 zeroes, over updates
# 50-199 (the EMA's steady state). Measured at the defaults (EMA 0.9, >= 50
# images per component):
#   FFHQ (M=70, alpha=7, 3500 images):  L1 mean 0.183, max 0.227; zeroed 0 % (skewed f^r: 0.28 %, max 4.3 %)
#   LSUN (M=7,  alpha=7, 1000 images):  L1 mean 0.098, max 0.199; zeroed 0 %
# and with the v1 settings (no EMA, 1000 images): FFHQ 0.838 / 26 %, LSUN 0.432 / 2.7 %.

class _StubPriorFile:
    def __init__(self, num_components):
        self.num_components = num_components

def _perfect_generator_run(real, alpha, updates=200, seed=0, **kwargs):
    prior = GMMPrior(resample_alpha=alpha, resample_kimg=1, **kwargs)
    prior.prior = _StubPriorFile(len(real))
    prior.real_freqs = torch.tensor(real, dtype=torch.float64)
    prior.assignments = torch.arange(len(real))
    rng = np.random.default_rng(seed)
    prior._generated_counts = lambda update_idx: torch.tensor(rng.multinomial(prior.resample_count, real), dtype=torch.float64)
    l1, zeroed = [], []
    for update in range(updates):
        prior._update_weights(1000 * (update + 1))
        l1.append(float((prior.freqs - prior.real_freqs).abs().sum()))
        zeroed.append(float((prior.freqs == 0).to(torch.float64).mean()))
    training_stats.reset()
    return np.array(l1[50:]), np.array(zeroed[50:]), prior.resample_count

# (dataset, M, alpha, bound on mean L1, bound on max L1). Zeroed fraction: 0 for a uniform f^r; for a skewed
# f^r (Dirichlet(2), smallest f_i 0.001 for M=70) mean <= 0.5 % and at most 5 % of the components at one update.
_NOISE_BOUNDS = [('ffhq', 70, 7, 0.25, 0.30), ('lsun', 7, 7, 0.15, 0.25)]

@pytest.mark.parametrize('name, M, alpha, mean_bound, max_bound', _NOISE_BOUNDS)
def test_perfect_generator_resampling_stays_below_the_noise_floor(name, M, alpha, mean_bound, max_bound):
    from priors.gmm.prior import PRESETS
    preset = PRESETS['ffhq' if name == 'ffhq' else 'lsun-cat']
    assert (preset.components, preset.resample_alpha) == (M, alpha)
    uniform, skewed = np.full(M, 1 / M), np.random.default_rng(1).dirichlet(np.full(M, 2.0))
    for real in (uniform, skewed):
        l1, zeroed, count = _perfect_generator_run(real, alpha)
        assert count == max(1000, 50 * M)
        assert l1.mean() <= mean_bound and l1.max() <= max_bound, (name, l1.mean(), l1.max())
        if real is uniform:
            assert zeroed.max() == 0, (name, zeroed.max())
        else:   # components of f^r ~ 0.1/M get zeroed now and then (FFHQ: f_min = 0.001)
            assert zeroed.mean() <= 0.005 and zeroed.max() <= 0.05, (name, zeroed.mean(), zeroed.max())


@pytest.mark.parametrize('name, M, alpha, mean_bound, max_bound', _NOISE_BOUNDS)
def test_v1_resampling_exceeds_those_bounds(name, M, alpha, mean_bound, max_bound):
    # The same simulation without EMA or sizing (v1): the bounds above do catch the amplified noise.
    l1, zeroed, count = _perfect_generator_run(np.full(M, 1 / M), alpha, resample_ema=0, resample_min_per_component=0)
    assert count == 1000
    assert l1.mean() > 2 * mean_bound and zeroed.mean() > 0.02


def test_ema_starts_at_the_real_frequencies():
    # First estimate with EMA b: f^g = b f^r + (1 - b) raw; without EMA: raw (v1).
    real, raw = [0.5, 0.5], [1.0, 0.0]
    for ema, expected in ((0.75, [0.625, 0.375]), (0.0, [1.0, 0.0])):
        prior = GMMPrior(resample_ema=ema, resample_alpha=1, resample_kimg=1)
        prior.prior, prior.real_freqs, prior.assignments = _StubPriorFile(2), _f64(real), torch.tensor([0, 1])
        prior._generated_counts = lambda update_idx: _f64(raw) * 10
        prior._update_weights(1000)
        np.testing.assert_allclose(prior.gen_freqs.numpy(), expected)
        assert prior.history[0].gen_freqs.tolist() == raw and prior.history[0].nimg == 1000
        training_stats.reset()

#----------------------------------------------------------------------------
# Issue 14, point 1: reference log-likelihoods from reals the GMM did not see.
# An overfitting setting (full covariances, 24-d, 4 components, 125 fitted
# images per component for 324 parameters each): with the reference taken from
# the fitted reals (v1, holdout=0) fresh reals score QS ~0.3 and ~40 % of them
# fall below theta; from held-out reals they score 0.5 and 10 %.

def _mixture_sampler(num_dims=24, num_components=4, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, size=[num_components, num_dims])
    scales = rng.uniform(0.5, 1.5, size=[num_components, num_dims])
    def draw(n):
        k = rng.integers(num_components, size=n)
        return torch.tensor(centres[k] + rng.normal(size=[n, num_dims]) * scales[k])
    return draw

def test_heldout_reals_score_qs_one_half():
    from priors.gmm import prior_file
    from priors.gmm.metrics import quality_score
    draw = _mixture_sampler()
    train, fresh = draw(1000), draw(4000)
    results = {}
    for holdout in (0.5, 0.0):
        with pytest.warns(UserWarning, match=r'the GMM is likely to overfit: 125 fitted images per component for 324 free parameters') \
                if holdout == 0.5 else pytest.warns(UserWarning, match=r'no images were held out to measure it'):
            model = prior_file.fit_prior_model(train, components=4, pca=None, holdout=holdout, max_images=500, seed=0)
        record = dict(model, format_version=prior_file.FORMAT_VERSION, extractor=dict(name='x', feature_dim=24), dataset={}, settings={})
        prior = prior_file.PriorFile(record)
        loglik = prior.gmm.score_samples(fresh)
        results[holdout] = (quality_score(loglik, prior.real_loglik_sorted),
                            float((loglik < prior.loglik_quantile(0.1)).to(torch.float64).mean()), prior)
        print(f'holdout {holdout}: QS {results[holdout][0]:.3f}, below theta {results[holdout][1]:.3f}')
    qs, below, prior = results[0.5]
    assert prior.reference_source == 'heldout' and prior.real_loglik_sorted.numel() == 500
    assert int((prior.roles == prior_file.ROLE_FIT).sum()) == 500 and prior.assignments().numel() == 1000
    assert abs(qs - 0.5) <= 0.05, qs
    assert abs(below - 0.1) <= 0.03, below
    assert prior.record['overfit']['heldout_rank'] < prior_file.OVERFIT_RANK   # measured overfitting, reported
    qs_v1, below_v1, prior_v1 = results[0.0]
    assert prior_v1.reference_source == 'fit'
    assert qs_v1 < 0.4 and below_v1 > 0.25, (qs_v1, below_v1)   # v1: unseen reals look "worse than real"


def test_well_sized_fit_does_not_warn():
    import warnings
    from priors.gmm import prior_file
    draw = _mixture_sampler(num_dims=4)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        model = prior_file.fit_prior_model(draw(2000), components=4, pca=None, holdout=0.1, seed=0)
    assert model['overfit']['images_per_param'] > prior_file.MIN_IMAGES_PER_PARAM
    assert abs(model['overfit']['heldout_rank'] - 0.5) < 0.05

#----------------------------------------------------------------------------
# Issue 14, point 3: fitting on a subset still gives every image a component;
# mirrored copies stay on the side of their original.

def test_subset_fit_assigns_every_image_and_keeps_mirrors_together():
    from priors.gmm import prior_file
    draw = _mixture_sampler(num_dims=3, num_components=2)
    feats = draw(200)
    groups = np.concatenate([np.arange(100), np.arange(100)])   # items i and i + 100 are one image and its mirror
    model = prior_file.fit_prior_model(feats, components=2, pca=None, holdout=0.2, max_images=60, groups=groups, seed=3)
    roles = model['split']['roles']
    assert model['num_images'] == 200 and model['assignments']['nearest'].shape == (200,)
    assert int((roles == prior_file.ROLE_FIT).sum()) == 60 and int((roles == prior_file.ROLE_HELDOUT).sum()) == 40
    assert torch.equal(roles[:100] == prior_file.ROLE_HELDOUT, roles[100:] == prior_file.ROLE_HELDOUT)
    assert float(model['real_freqs']['nearest'].sum()) == pytest.approx(1.0)
    # holdout 0 and no max_images: every item is fitted, as in v1.
    v1 = prior_file.fit_prior_model(feats, components=2, pca=None, holdout=0, seed=3)
    assert bool((v1['split']['roles'] == prior_file.ROLE_FIT).all()) and v1['real_loglik']['source'] == 'fit'

#----------------------------------------------------------------------------
# Issue 14, point 6: which images give f^g. A tiny real Generator as G and a
# perturbed copy as G_ema; the extractor records what it is fed.

class _RecordingExtractor:
    def __init__(self):
        self.inputs = []
    def __call__(self, img):
        self.inputs.append(img.clone())
        return img.to(torch.float32).flatten(1)[:, :2]

class _FirstComponentPrior:
    num_components = 3
    def assign(self, features, rule='nearest'):
        return torch.zeros([features.shape[0]], dtype=torch.int64)

def _generation_setup(**kwargs):
    import copy
    import dnnlib
    from training.networks import Generator
    torch.manual_seed(0)
    G = Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, mapping_kwargs=dict(num_layers=2),
                  synthesis_kwargs=dict(channel_base=256, channel_max=16, num_fp16_res=0, conv_clamp=None))
    G_ema = copy.deepcopy(G).eval()
    with torch.no_grad():
        for p in G_ema.parameters():
            p.add_(0.1 * torch.randn_like(p))
    prior = GMMPrior(resample_num=5, resample_batch=4, **kwargs)
    prior.ctx = dnnlib.EasyDict(device=torch.device('cpu'), G=G, G_ema=G_ema, G_mapping=G.mapping, G_synthesis=G.synthesis,
                                rank=0, num_gpus=1, random_seed=7)
    prior.prior, prior.extractor, prior._labels = _FirstComponentPrior(), _RecordingExtractor(), None
    prior._quantise = prior.resample_pixels == 'uint8'   # what setup() decides for a dataset of uint8 images
    return prior, G, G_ema

def _expected_images(prior, net, noise_mode='const'):
    from torch_utils import misc
    indices, images = list(range(prior.resample_count)), []
    for start in range(0, len(indices), prior.resample_batch):   # the same batches, so the same float rounding
        z, c, _ = prior._latents(indices[start:start + prior.resample_batch], update_idx=0)
        with torch.no_grad():
            images.append(net.synthesis(net.mapping(z, c, skip_w_avg_update=True), noise_mode=noise_mode))
    img = torch.cat(images)
    return img, misc.images_to_uint8(img).permute(0, 3, 1, 2)

def test_resample_images_are_quantised_g_ema_images():
    prior, G, G_ema = _generation_setup(resample_noise='const', resample_min_per_component=0)
    counts = prior._generated_counts(update_idx=0)
    assert counts.tolist() == [5.0, 0.0, 0.0]
    fed = torch.cat(prior.extractor.inputs)
    assert fed.dtype == torch.uint8 and torch.equal(fed, _expected_images(prior, G_ema)[1])   # G_ema, pixels as the reals
    v1, G, _ = _generation_setup(resample_noise='const', resample_min_per_component=0, resample_net='G', resample_pixels='float')
    v1._generated_counts(update_idx=0)
    fed = torch.cat(v1.extractor.inputs)
    assert fed.dtype == torch.float32 and torch.equal(fed, _expected_images(v1, G)[0])            # v1: training G, float


def test_resample_noise_is_seeded_and_leaves_the_global_rng_alone():
    prior, _, G_ema = _generation_setup(resample_min_per_component=2)    # 'random' noise; at least 2 x 3 = 6 images
    assert prior.resample_count == 6
    state = torch.get_rng_state()
    prior._generated_counts(update_idx=0)
    assert torch.equal(torch.get_rng_state(), state)
    first = torch.cat(prior.extractor.inputs)
    prior.extractor.inputs.clear()
    torch.manual_seed(123)    # wherever the training stream stands, an estimate's noise is its own
    prior._generated_counts(update_idx=0)
    assert first.shape[0] == 6 and torch.equal(torch.cat(prior.extractor.inputs), first)    # same update: same images
    assert not torch.equal(first, _expected_images(prior, G_ema)[1])                       # not the constant noise

#----------------------------------------------------------------------------
