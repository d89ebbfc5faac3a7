"""The PriorGAN prior (`--prior=gmm`): quality loss and resampling from a GMM on deep features of the real images (Gu et al., "PriorGAN: Real Data Prior for Generative Adversarial Nets", §3.2-3.3).

Quality loss (Eq. 5), added to G's main step with weight `weight`:

    loss_form 'per_dim' (default):  weight * (-log p(F(G(z)) | lambda) / d)   if log p < log theta, else 0
    loss_form 'paper':              weight * (-log p(F(G(z)) | lambda))       if log p < log theta, else 0

where p is the GMM of Eq. 3 on the PCA projection of the extractor features F
and d is the dimension of that projection. The paper's delta multiplies
-log p itself ('paper'); so in the default per-dimension form a `weight` w
is the paper's delta = w / d, and the paper's delta = 0.1 is weight = 0.1 with
loss_form 'paper' (or weight = 0.1 d per dimension). Per dimension is the
default because log p of a d-dimensional mixture is a sum of about d terms
(tens of nats for the 32-d tiny extractor, thousands for Inception at 98%
variance): the same weight then means the same strength for every extractor
and PCA setting. theta is the theta_quantile (default 10%) quantile of the
reference log-likelihoods (held-out reals, see prior_file), or an absolute
log-likelihood.

Resampling (Eq. 6-8), every resample_kimg thousand images: max(resample_num,
resample_min_per_component * M) generated images (seeded, split across
processes, counts summed) from G_ema (or G), quantised to uint8 like the real
images, are assigned to components by the rule of §3.3 (nearest component
mean; or largest responsibility), giving a raw estimate of f^g; an EMA across
estimates (started at f^r, i.e. at "no correction") smooths it; then

    d  = f^r - f^g                                  (Eq. 6)
    DDS = sum_i |d_i|                               (Eq. 7)
    f' = max(f^r + alpha d, 0), normalised          (Eq. 8; all-zero -> f^r)

and each real image of component k gets the sampling weight f'_k / n_k, where
n_k is the number of real images in component k (0 for empty components), so
the data sampler shows component k with frequency f'_k.

Noise floor. For a perfect generator (f^g drawn from f^r) an estimate from n
images has Var f^g_i = f_i (1 - f_i) / n, the EMA with factor b shrinks that by
(1 - b) / (1 + b) in the steady state, and Eq. 8 multiplies the error by
alpha: E L1(f' - f^r) ~ alpha sqrt(2/pi) sum_i sqrt(f_i (1 - f_i) (1 - b) / ((1 + b) n))
before clipping; component i is zeroed when its error exceeds f_i / alpha.
docs/priors.md tabulates it; tests/numerics/test_gmm_prior.py checks it.

Options off by default (issue 18; the paper's method is the default):

    quality_scale 'spread'   each sample's Eq. 5 term times trace(Sigma_k) / d of its nearest
                             component k (detached), so -grad log p ~ Sigma^-1 (x - mu) becomes
                             ~ (x - mu): a pull in data units whatever the component's width
    resample_max_ratio c > 1 f' clipped to [f^r / c, c f^r] before the normalisation of Eq. 8: a
                             component is never starved (f' = 0) nor boosted beyond c times its share
    resample_labels          group the reals by known labels (toy modes, dataset class labels)
                             instead of GMM components; generated images go to the nearest label
                             centre (mean real feature of each label in the GMM's space, §3.3 rule)
    quality_start_kimg       a late start: the Eq. 5 loss only from this many thousand images on, so
                             G first learns the data with the adversarial loss alone
    resample_hq_only         f^g (Eq. 6) counts only the generated images with log p >= log theta of
                             Eq. 5, the ones inside some component; a low-quality image between modes
                             belongs to no group (with none above theta, f^g = 0: every group gets
                             f^r (1 + alpha), i.e. f' = f^r after normalising)

v1 behaviour (before issue 14) is resample_ema=0, resample_min_per_component=0,
resample_net='G', resample_noise='const', resample_pixels='float' and a prior
file built with holdout=0.
"""

import collections
import contextlib
import hashlib
import os
import random

import numpy as np
import torch

import dnnlib
from priors import base
from priors import features as features_module
from priors.gmm import pictures
from priors.gmm import prior_file as prior_file_module
from priors import registry
from training import resume as resume_module
from torch_utils import misc
from torch_utils import training_stats

#----------------------------------------------------------------------------

RESAMPLE_RULES = prior_file_module.ASSIGN_RULES   # 'nearest' (the paper's rule) or 'argmax'
LOSS_FORMS = ('per_dim', 'paper')                  # -log p / d (default) or -log p (the paper's delta)
RESAMPLE_NETS = ('G_ema', 'G')                     # generator whose images give f^g
RESAMPLE_NOISES = ('random', 'const')              # per-sample seeded noise inputs, or the constant ones
RESAMPLE_PIXELS = ('uint8', 'float')               # quantise like the real images, or raw float output
QUALITY_SCALES = ('none', 'spread')                # Eq. 5 as written, or times the nearest component's trace(Sigma) / d
_RESAMPLE_STREAM = 0x5e5a                          # Tag that separates the resampling latents from other seeded streams.

#----------------------------------------------------------------------------
# The paper's per-dataset settings (§4 "Implementation Details"): M components
# and the resample weight alpha. Only these two differ between its datasets
# (delta = 0.1 everywhere; see loss_form for how it maps to `weight`).

Preset = collections.namedtuple('Preset', 'components resample_alpha')
PRESETS = {
    'cifar10':   Preset(components=35, resample_alpha=3),
    'ffhq':      Preset(components=70, resample_alpha=7),
    'lsun-cat':  Preset(components=7,  resample_alpha=7),
    'lsun-bird': Preset(components=7,  resample_alpha=7),
}

# One estimate of f^g and what it did (GMMPrior.history): nimg = cur_nimg of the
# estimate; gen_freqs = the raw f^g [M] of this estimate (before the EMA);
# freqs = f' [M] (Eq. 8, from the smoothed f^g); dds = Eq. 7 of the raw f^g.
ResampleUpdate = collections.namedtuple('ResampleUpdate', 'nimg gen_freqs freqs dds')

# One hyperparameter check of GMMPrior.__init__.
_Check = collections.namedtuple('_Check', 'key value ok allowed')

#----------------------------------------------------------------------------
# Eq. 5 per sample, as a per-dimension negative log-likelihood.
# log_prob: [N] float tensor, log p(F(G(z))) (differentiable); log_theta: float,
# the threshold on log p; num_dims: d, the GMM's feature dimension.
# Returns [N]: -log_prob / num_dims where log_prob < log_theta, else 0.

def quality_loss(log_prob, log_theta, num_dims):
    """Masked quality loss of Eq. 5, scaled to a per-dimension NLL.

    Args:
        log_prob:  [N] float tensor, log p(F(G(z)) | lambda).
        log_theta: float, the threshold theta in log space.
        num_dims:  int >= 1, dimension d of the GMM's feature space.

    Returns:
        [N] tensor of log_prob's dtype: -log_prob / d below the threshold, 0 at or above it.
    """
    if num_dims < 1:
        raise ValueError(f'quality_loss: num_dims must be >= 1, got {num_dims}')
    nll = -log_prob / num_dims
    return torch.where(log_prob < log_theta, nll, torch.zeros_like(nll))

#----------------------------------------------------------------------------
# The quality-loss term of each sample as G's step adds it: weight * Eq. 5 (per
# dimension or as written), optionally times the spread of the sample's nearest
# component (quality_scale 'spread', detached). prior: a PriorFile; features:
# [N, D] extractor features (differentiable). Returns ([N] loss, [N] log p).

def quality_loss_terms(prior, features, log_theta, weight, num_dims, loss_form='per_dim', quality_scale='none'):
    """Per-sample weight * Eq. 5 term and log p.

    Args:
        prior:         PriorFile (PCA + GMM).
        features:      [N, D] extractor features, differentiable.
        log_theta:     float, threshold on log p.
        weight:        float, the loss weight.
        num_dims:      int, d of the GMM's space (the per-dimension divisor).
        loss_form:     'per_dim' (-log p / d) or 'paper' (-log p).
        quality_scale: 'none' (Eq. 5) or 'spread' (times trace(Sigma_k) / d of the nearest component k).

    Returns:
        ([N] loss, [N] log p), both in the dtype of `features`.
    """
    if loss_form not in LOSS_FORMS or quality_scale not in QUALITY_SCALES:
        raise ValueError(f'quality_loss_terms: loss_form must be one of {LOSS_FORMS} and quality_scale one of {QUALITY_SCALES}, '
                         f'got {loss_form!r}, {quality_scale!r}')
    log_prob = prior.log_prob(features)
    scale = int(num_dims) if loss_form == 'per_dim' else 1
    loss = quality_loss(log_prob, log_theta, scale) * weight
    if quality_scale == 'spread':
        with torch.no_grad():
            nearest = prior.gmm.nearest_component(prior.project(features.detach()))
            spread = prior.gmm.component_spread()[nearest.to(prior.gmm.means_.device)]
        loss = loss * spread.to(device=loss.device, dtype=loss.dtype)
    return loss, log_prob

#----------------------------------------------------------------------------
# Eq. 6 and Eq. 7: the diversity distance d(p_r, p_g) = f^r - f^g ([M]) and the
# diversity difference score DDS = sum_i |d_i| (a float). Inputs: float [M].

def diversity_distance(real_freqs, gen_freqs):
    """Eq. 6. real_freqs, gen_freqs: [M] float64 frequencies. Returns [M] float64."""
    real, gen = _as_freqs(real_freqs, 'real_freqs'), _as_freqs(gen_freqs, 'gen_freqs')
    if real.shape != gen.shape:
        raise ValueError(f'diversity_distance: real_freqs has shape {list(real.shape)} but gen_freqs has {list(gen.shape)}')
    return real - gen

def diversity_difference_score(real_freqs, gen_freqs):
    """Eq. 7. Returns the DDS as a Python float in [0, 2]."""
    return float(diversity_distance(real_freqs, gen_freqs).abs().sum())

def _as_freqs(freqs, name):
    f = torch.as_tensor(freqs, dtype=torch.float64).cpu()
    if f.ndim != 1 or f.numel() == 0:
        raise ValueError(f'{name} must be a non-empty vector of frequencies, got shape {list(f.shape)}')
    if not bool(torch.isfinite(f).all()) or bool((f < 0).any()):
        raise ValueError(f'{name} must be finite and >= 0, got {f.tolist()}')
    return f

#----------------------------------------------------------------------------
# Eq. 8: new sampling frequencies f' = max(f^r + alpha (f^r - f^g), 0), normalised
# to sum 1. When every entry is clipped to 0, fall back to f^r (never NaN).

def resampled_frequencies(real_freqs, gen_freqs, alpha, max_ratio=0):
    """Eq. 8 with normalisation.

    Args:
        real_freqs: [M] float64, f^r (sums to 1).
        gen_freqs:  [M] float64, f^g (sums to 1).
        alpha:      float >= 0, the resample weight.
        max_ratio:  0 = Eq. 8 as written; c > 1 = clip f' to [f^r / c, c f^r] before normalising.

    Returns:
        [M] float64 summing to 1.
    """
    if not alpha >= 0:
        raise ValueError(f'resampled_frequencies: alpha must be >= 0, got {alpha}')
    if not (max_ratio == 0 or max_ratio > 1):
        raise ValueError(f'resampled_frequencies: max_ratio must be 0 (off) or > 1, got {max_ratio}')
    real = _as_freqs(real_freqs, 'real_freqs')
    raw = (real + alpha * diversity_distance(real, gen_freqs)).clamp(min=0)
    if max_ratio > 0:
        raw = torch.minimum(torch.maximum(raw, real / max_ratio), real * max_ratio)
    total = float(raw.sum())
    if not total > 0:
        return real / real.sum()
    return raw / total

#----------------------------------------------------------------------------
# Exponential moving average of generated frequencies: ema * previous +
# (1 - ema) * current; previous None or ema 0 gives current. GMMPrior starts
# `previous` at f^r, so the first estimates move f' only gently.

def smoothed_frequencies(previous, current, ema):
    """previous: [M] float64 or None; current: [M] float64; ema in [0, 1). Returns [M] float64."""
    if not 0 <= ema < 1:
        raise ValueError(f'smoothed_frequencies: ema must be in [0, 1), got {ema}')
    current = _as_freqs(current, 'current')
    if previous is None or ema == 0:
        return current
    return ema * _as_freqs(previous, 'previous') + (1 - ema) * current

#----------------------------------------------------------------------------
# Per-image sampling weights: image i of component k gets freqs[k] / n_k,
# where n_k counts the images of component k. Components without images get
# no weight. The weights sum to the total of freqs over non-empty components.

def per_image_weights(assignments, freqs):
    """assignments: [N] int64 component of each real image; freqs: [M] float64. Returns [N] float64."""
    a = torch.as_tensor(assignments, dtype=torch.int64).cpu()
    f = _as_freqs(freqs, 'freqs')
    if a.ndim != 1 or a.numel() == 0:
        raise ValueError(f'per_image_weights: assignments must be a non-empty vector, got shape {list(a.shape)}')
    if int(a.min()) < 0 or int(a.max()) >= f.numel():
        raise ValueError(f'per_image_weights: component indices must be in [0, {f.numel() - 1}], got range '
                         f'[{int(a.min())}, {int(a.max())}]')
    counts = torch.bincount(a, minlength=f.numel()).to(torch.float64)
    per_component = torch.where(counts > 0, f / counts.clamp(min=1), torch.zeros_like(f))
    return per_component[a]

#----------------------------------------------------------------------------
# Known labels of the training items (issue 18): the true modes of toy data
# (get_modes()), else the class labels, else the modes of a synthetic image set.
# dataset: a training.dataset.Dataset. Returns (int64 [N], what they are).

def known_labels(dataset):
    if getattr(dataset, 'toy_modes', None) is not None:
        return np.asarray(dataset.get_modes(), dtype=np.int64), 'toy modes'
    if dataset.has_labels and dataset.has_onehot_labels:
        return np.array([int(np.argmax(dataset.get_label(i))) for i in range(len(dataset))], dtype=np.int64), 'class labels'
    if getattr(dataset, 'has_modes', False):
        return np.asarray(dataset.get_modes(), dtype=np.int64), 'synthetic modes'
    raise ValueError(f'Prior "gmm": resample_labels needs per-image labels: toy data with known modes, or a dataset with class '
                     f'labels (dataset.json); "{dataset.name}" has neither. Drop --resample-labels')

# Mean feature of each label in the GMM's space: features [N, d] (projected), labels int64 [N] in [0, L).
# Returns float64 [L, d]; a label without items gets +inf (never nearest).
def label_centres(projected, labels):
    x = torch.as_tensor(projected).to(torch.float64).cpu()
    lab = torch.as_tensor(labels, dtype=torch.int64).cpu()
    num = int(lab.max()) + 1
    sums = torch.zeros([num, x.shape[1]], dtype=torch.float64).index_add_(0, lab, x)
    counts = torch.bincount(lab, minlength=num).to(torch.float64)
    centres = sums / counts.clamp(min=1)[:, None]
    centres[counts == 0] = float('inf')
    return centres

#----------------------------------------------------------------------------
# Run a block without changing what the global RNGs (python, numpy, torch CPU
# and the CUDA device in use) draw afterwards.

@contextlib.contextmanager
def _preserve_global_rng(device):
    py_state, np_state = random.getstate(), np.random.get_state()
    devices = [device] if torch.device(device).type == 'cuda' else []
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)

# Short identity of a prior record (its creation time, dataset and model), to notice a different prior on resume.
def _record_digest(record):
    digest = hashlib.md5(f'{record.get("created")}|{record["dataset"].get("fingerprint")}|{record["settings"]}'.encode('utf-8'))
    for key in ('weights_', 'means_'):
        digest.update(record['gmm']['state_dict'][key].to(torch.float64).numpy().tobytes())
    return digest.hexdigest()

#----------------------------------------------------------------------------
# The PriorGAN prior. Hyperparameters only in __init__; setup() loads (or
# builds) the prior file and the feature extractor.

@registry.register_prior('gmm', cli='priors.gmm.cli')
class GMMPrior(base.Prior):
    def __init__(self,
        prior_file      = None,         # Prior file from build_prior.py; None = build one (or reuse it) in the cache.
        feature         = 'inception',  # Feature extractor F (priors.features.build_extractor name, path or URL).
        feature_kwargs  = {},           # Extra build_extractor() arguments (e.g. tiny: feature_dim, seed).
        components      = 7,            # Number of Gaussian components M when building (7: paper, LSUN; PRESETS).
        pca             = 0.98,         # PCA before the GMM when building (prior_file.parse_pca); None = disable.
        covariance      = 'full',       # GMM covariance type when building: 'full' or 'diag'.
        holdout         = 0.1,          # Fraction of reals held out for the reference log-likelihoods when building; 0 = v1.
        cache_dir       = None,         # Folder of built prior files; None = <dnnlib cache>/priors.
        weight          = 0.1,          # Quality loss weight (Eq. 5 term); 0 = disable the quality loss. See loss_form.
        loss_form       = 'per_dim',    # 'per_dim': weight * (-log p / d) (delta = weight / d); 'paper': weight * (-log p) (delta = weight).
        theta           = None,         # Threshold on log p (log theta of Eq. 5); None = use theta_quantile.
        theta_quantile  = 0.1,          # theta = this quantile of the reference (held-out) real log-likelihoods.
        lazy            = 1,            # Apply the quality loss every this many iterations, with weight * lazy.
        resample        = True,         # Resampling strategy (Eq. 6-8); False = disable.
        resample_alpha  = 7,            # alpha of Eq. 8 (paper: 7 for FFHQ / LSUN, 3 for CIFAR-10).
        resample_kimg   = 4,            # Re-estimate f^g every this many thousand images.
        resample_num    = 1000,         # Generated images per estimate of f^g (at least resample_min_per_component * M).
        resample_min_per_component = 50,  # Generated images per estimate >= this times M; 0 = exactly resample_num (v1).
        resample_ema    = 0.9,          # EMA factor of f^g across estimates, in [0, 1), started at f^r; 0 = none (v1).
        resample_rule   = 'nearest',    # Component of an image: 'nearest' mean (paper, §3.3) or 'argmax' responsibility.
        resample_net    = 'G_ema',      # Generator of the f^g images: 'G_ema' or the training 'G' (v1).
        resample_noise  = 'random',     # Noise inputs: per-sample seeded 'random' (as in the metrics) or 'const' (v1).
        resample_pixels = 'uint8',      # Images as the extractor sees them: 'uint8' = quantised like uint8 reals (float items,
                                        # e.g. toy points, stay float), or 'float' (v1).
        resample_batch  = 32,           # Images per G call when estimating f^g.
        quality_scale   = 'none',       # 'none' = Eq. 5; 'spread' = each term times its nearest component's trace(Sigma) / d (off by default).
        resample_max_ratio = 0,         # 0 = Eq. 8; c > 1 = f' clipped to [f^r / c, c f^r] (damped feedback, off by default).
        resample_labels = False,        # Group the reals by known labels (toy modes, class labels) instead of GMM components.
        quality_start_kimg = 0,         # Apply the quality loss only from this many thousand images on (late start; 0 = the paper).
        resample_hq_only = False,       # f^g counts only generated images with log p >= log theta (off = the paper).
    ):
        super().__init__()
        for check in [
            _Check('weight',          weight,         weight >= 0,                    '>= 0'),
            _Check('theta_quantile',  theta_quantile, 0 <= theta_quantile <= 1,       'in [0, 1]'),
            _Check('resample_alpha',  resample_alpha, resample_alpha >= 0,            '>= 0'),
            _Check('resample_kimg',   resample_kimg,  resample_kimg > 0,              '> 0'),
            _Check('resample_ema',    resample_ema,   0 <= resample_ema < 1,          'in [0, 1)'),
            _Check('holdout',         holdout,        0 <= holdout < 1,               'in [0, 1)'),
            _Check('resample_max_ratio', resample_max_ratio, resample_max_ratio == 0 or resample_max_ratio > 1, '0 (off) or > 1'),
            _Check('quality_start_kimg', quality_start_kimg, quality_start_kimg >= 0, '>= 0'),
        ]:
            if not check.ok:
                raise ValueError(f'Prior "gmm": {check.key} must be {check.allowed}, got {check.value!r}')
        for key, value in (('lazy', lazy), ('resample_num', resample_num), ('resample_batch', resample_batch), ('components', components)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f'Prior "gmm": {key} must be an integer >= 1, got {value!r}')
        value = resample_min_per_component
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f'Prior "gmm": resample_min_per_component must be an integer >= 0, got {value!r}')
        if theta is not None and not np.isfinite(theta):
            raise ValueError(f'Prior "gmm": theta must be a finite log-likelihood or None, got {theta!r}')
        for key, value, allowed in (('resample_rule', resample_rule, RESAMPLE_RULES), ('loss_form', loss_form, LOSS_FORMS),
                                    ('resample_net', resample_net, RESAMPLE_NETS), ('resample_noise', resample_noise, RESAMPLE_NOISES),
                                    ('resample_pixels', resample_pixels, RESAMPLE_PIXELS), ('covariance', covariance, ('full', 'diag')),
                                    ('quality_scale', quality_scale, QUALITY_SCALES)):
            if value not in allowed:
                raise ValueError(f'Prior "gmm": {key} must be one of {", ".join(allowed)}, got {value!r}')
        self.prior_file_path = prior_file
        self.feature, self.feature_kwargs = feature, dict(feature_kwargs)
        self.components, self.pca = int(components), prior_file_module.parse_pca(pca)
        self.covariance, self.holdout = covariance, float(holdout)
        self.cache_dir = cache_dir
        self.weight, self.theta, self.theta_quantile, self.lazy = float(weight), theta, float(theta_quantile), int(lazy)
        self.loss_form = loss_form
        self.resample, self.resample_alpha = bool(resample), float(resample_alpha)
        self.resample_nimg = int(round(resample_kimg * 1000))
        self.resample_num, self.resample_ema = int(resample_num), float(resample_ema)
        self.resample_min_per_component = int(resample_min_per_component)
        self.resample_rule, self.resample_batch = resample_rule, int(resample_batch)
        self.resample_net, self.resample_noise, self.resample_pixels = resample_net, resample_noise, resample_pixels
        self.quality_scale, self.resample_max_ratio = quality_scale, float(resample_max_ratio)
        self.resample_labels = bool(resample_labels)
        self.quality_start_nimg = int(round(quality_start_kimg * 1000))
        self.resample_hq_only = bool(resample_hq_only)
        self.group_centres = None       # resample_labels: mean real feature per label [L, d] in the GMM's space

        # Training state (see state_dict()).
        self.num_progress = 0           # on_progress() calls so far (drives the lazy schedule)
        self.apply_quality = False      # whether this iteration's G step gets the quality loss
        self.last_update_nimg = 0       # cur_nimg of the last f^g estimate (0 = none yet)
        self.gen_freqs = None           # f^g used last (after the EMA), float64 [M]; None = no estimate yet
        self.freqs = None               # current f' (Eq. 8), float64 [M]; None = not resampled yet (f^r)
        self.history = []               # per update: ResampleUpdate(nimg, raw f^g [M], f' [M], DDS)

    def sampler_kwargs(self):
        return dnnlib.EasyDict(class_name='priors.sampler.PriorResampler') if self.resample else None

    #------------------------------------------------------------------------
    # Setup: extractor, prior file (built on rank 0 if needed), threshold,
    # real-image components. The training RNG streams are not touched.

    def setup(self, ctx):
        super().setup(ctx)
        if ctx.dataset_kwargs is None:
            raise ValueError('Prior "gmm" needs the training set (dataset_kwargs) to check or build its prior file; '
                             'build the config with priors.cli.configure()')
        with _preserve_global_rng(ctx.device):
            self.extractor = features_module.build_extractor(self.feature, device=ctx.device, num_gpus=ctx.num_gpus, rank=ctx.rank,
                                                             **self.feature_kwargs)
            if self.prior_file_path is not None:
                self.prior = prior_file_module.load_prior(self.prior_file_path, expect_dataset=ctx.dataset_kwargs,
                                                          expect_feature=self.extractor, device=ctx.device)
            else:
                self.prior = prior_file_module.get_or_build_prior(ctx.dataset_kwargs, feature=self.feature, feature_kwargs=self.feature_kwargs,
                                                                  components=self.components, pca=self.pca, covariance_type=self.covariance,
                                                                  holdout=self.holdout, device=ctx.device, cache_dir=self.cache_dir,
                                                                  rank=ctx.rank, num_gpus=ctx.num_gpus)
        self.digest = _record_digest(self.prior.record)
        if self.prior.reference_source != 'heldout' and ctx.rank == 0 and self.theta is None:
            print(f'Note: prior "gmm": {self.prior.path} has no held-out reals (format {self.prior.format_version}, or built with '
                  f'holdout 0), so theta ranks generated images against the reals the GMM was fitted on')
        self.num_dims = int(self.prior.pca_dim)
        self.log_theta = float(self.theta) if self.theta is not None else self.prior.loglik_quantile(self.theta_quantile)
        self.assignments = self.prior.assignments(self.resample_rule).to(torch.int64).cpu()
        self.real_freqs = self.prior.real_freqs(self.resample_rule).to(torch.float64).cpu()
        if self.resample and self.resample_net == 'G_ema' and ctx.get('G_ema') is None:
            raise ValueError('Prior "gmm": resample_net="G_ema" needs G_ema in the setup context; use resample_net="G"')
        # Quantise generated images only when the reals are stored as uint8 pixels (not, e.g., the toy lab's float points).
        dataset = dnnlib.util.construct_class_by_name(**dict(ctx.dataset_kwargs, xflip=False))
        self._quantise = self.resample_pixels == 'uint8' and np.asarray(dataset[0][0]).dtype == np.uint8
        self._labels = dataset if getattr(ctx.G_mapping, 'c_dim', 0) > 0 else None
        if self.resample and self.resample_labels:
            self._setup_label_groups(ctx)

    # resample_labels: the groups are the known labels of the training items (in training order, mirrors
    # included); f^r their shares; generated images go to the nearest label centre in the GMM's space.
    def _setup_label_groups(self, ctx):
        dataset = dnnlib.util.construct_class_by_name(**ctx.dataset_kwargs)
        labels, what = known_labels(dataset)
        with _preserve_global_rng(ctx.device):
            feats = features_module.extract_dataset_features(self.extractor, ctx.dataset_kwargs, max_images=None, device=ctx.device,
                                                             num_gpus=ctx.num_gpus, rank=ctx.rank, cache=True)
        if len(feats) != len(labels):
            raise ValueError(f'Prior "gmm": resample_labels found {len(labels)} labels but {len(feats)} real features')
        with torch.no_grad():
            self.group_centres = label_centres(self.prior.project(feats.to(ctx.device)), labels)
        self.assignments = torch.from_numpy(labels)
        self.real_freqs = torch.bincount(self.assignments, minlength=len(self.group_centres)).to(torch.float64)
        self.real_freqs /= self.real_freqs.sum()
        if ctx.rank == 0:
            print(f'Prior "gmm": resampling by {len(self.group_centres)} {what} instead of {self.prior.num_components} GMM components')

    # Number of groups the resampling counts: GMM components, or labels (resample_labels).
    @property
    def num_groups(self):
        return int(self.prior.num_components) if self.group_centres is None else int(self.group_centres.shape[0])

    # Group of each generated image's features [N, D]: int64 [N].
    def _assign_generated(self, feats):
        if self.group_centres is None:
            return self.prior.assign(feats, rule=self.resample_rule)
        z = self.prior.project(feats).to(torch.float64)
        return torch.cdist(z, self.group_centres.to(z.device)).argmin(dim=1)

    #------------------------------------------------------------------------
    # Quality loss (Eq. 5) at G's main step.

    def extra_loss(self, step, img, c, logits, ws, **kwargs):
        if step != 'Gmain' or self.weight == 0 or not self.apply_quality:
            return None
        loss, log_prob = quality_loss_terms(self.prior, self.extractor(img), self.log_theta, self.weight * self.lazy,
                                            self.num_dims, loss_form=self.loss_form, quality_scale=self.quality_scale)   # [N]
        training_stats.report('Prior/gmm/nll', -log_prob / self.num_dims)
        training_stats.report('Prior/gmm/below_theta', (log_prob < self.log_theta).to(torch.float32))
        return loss

    #------------------------------------------------------------------------
    # Lazy schedule and resampling (Eq. 6-8).

    def on_progress(self, cur_nimg):
        self.apply_quality = (self.num_progress % self.lazy == 0) and cur_nimg >= self.quality_start_nimg
        self.num_progress += 1
        if not self.resample or cur_nimg - self.last_update_nimg < self.resample_nimg:
            return None
        weights = self._update_weights(cur_nimg)
        return dict(sampler_weights=weights.numpy())

    # Estimate f^g, update f' and return the per-image weights (float64 [N], identical on all ranks).
    def _update_weights(self, cur_nimg):
        counts = self._generated_counts(update_idx=len(self.history))
        raw = counts / counts.sum() if counts.sum() > 0 else torch.zeros_like(counts)    # resample_hq_only: maybe none
        previous = self.gen_freqs if self.gen_freqs is not None else self.real_freqs   # the EMA starts at "no correction"
        self.gen_freqs = smoothed_frequencies(previous, raw, self.resample_ema)
        self.freqs = resampled_frequencies(self.real_freqs, self.gen_freqs, self.resample_alpha, max_ratio=self.resample_max_ratio)
        weights = per_image_weights(self.assignments, self.freqs)
        dds = diversity_difference_score(self.real_freqs, raw)
        self.history.append(ResampleUpdate(nimg=int(cur_nimg), gen_freqs=raw, freqs=self.freqs.clone(), dds=dds))
        self.last_update_nimg = int(cur_nimg)
        training_stats.report('Prior/gmm/dds', dds)
        training_stats.report('Sampler/weight_max', float(weights.max()) * weights.numel())  # 1 = uniform
        return weights

    # Generated images per estimate of f^g: resample_num, raised to resample_min_per_component * M.
    @property
    def resample_count(self):
        return max(self.resample_num, self.resample_min_per_component * self.num_groups)

    # Components of resample_count seeded generated images, this rank's share,
    # summed over ranks: float64 [M]. resample_net, resample_noise and
    # resample_pixels choose the images (see __init__); no w_avg update, no
    # gradients; the global RNG streams are left as they were.
    @torch.no_grad()
    def _generated_counts(self, update_idx):
        ctx = self.ctx
        if self.resample_net == 'G':
            mapping, synthesis = ctx.G_mapping, ctx.G_synthesis
        else:
            mapping, synthesis = ctx.G_ema.mapping, ctx.G_ema.synthesis
        counts = torch.zeros([self.num_groups], dtype=torch.float64, device=ctx.device)
        indices = list(range(ctx.rank, self.resample_count, ctx.num_gpus))
        with _preserve_global_rng(ctx.device):
            for start in range(0, len(indices), self.resample_batch):
                z, c, noise_seed = self._latents(indices[start:start + self.resample_batch], update_idx)
                ws = mapping(z, c, skip_w_avg_update=True)
                if self.resample_noise == 'random':
                    torch.manual_seed(noise_seed)   # seeds this batch's noise inputs; restored on exit
                img = synthesis(ws, noise_mode=self.resample_noise)
                if self._quantise:
                    img = misc.images_to_uint8(img).permute(0, 3, 1, 2)  # the pixels the reals were embedded from
                feats = self.extractor(img)
                components = self._assign_generated(feats)
                if self.resample_hq_only:
                    components = components[self.prior.log_prob(feats).to(components.device) >= self.log_theta]
                counts += torch.bincount(components.to(ctx.device), minlength=counts.numel()).to(torch.float64)
        if ctx.num_gpus > 1:
            torch.distributed.all_reduce(counts)
        return counts.cpu()

    # Seeded latents and labels of generated images `indices` of update
    # `update_idx`, and a seed for the batch's noise inputs (from its first image).
    def _latents(self, indices, update_idx):
        ctx = self.ctx
        z_dim, c_dim = int(ctx.G_mapping.z_dim), int(getattr(ctx.G_mapping, 'c_dim', 0))
        zs, cs, noise_seed = [], [], None
        for index in indices:
            rng = np.random.default_rng([int(index), int(update_idx), int(ctx.random_seed), _RESAMPLE_STREAM])
            zs.append(rng.standard_normal(z_dim))
            if self._labels is not None:
                cs.append(self._labels.get_label(int(rng.integers(len(self._labels)))))
            if noise_seed is None:
                noise_seed = int(rng.integers(1 << 62))
        z = torch.tensor(np.stack(zs), dtype=torch.float32, device=ctx.device)
        c = torch.tensor(np.stack(cs), dtype=torch.float32, device=ctx.device) if cs else torch.zeros([len(indices), c_dim], device=ctx.device)
        return z, c, noise_seed

    #------------------------------------------------------------------------
    # Pictures: once, real images per component (the paper's Figure 2); at each
    # image snapshot, real vs last estimated generated component frequencies.

    def on_snapshot(self, run_dir, cur_nimg):
        grid_path = os.path.join(run_dir, 'prior-components.png')
        if not os.path.exists(grid_path):
            dataset = dnnlib.util.construct_class_by_name(**dict(self.ctx.dataset_kwargs, xflip=False))
            pictures.component_grid(dataset, self.assignments.numpy(), self.real_freqs.numpy(), grid_path)
        if len(self.history) > 0:
            last = self.history[-1]
            pictures.frequency_bar_chart(self.real_freqs.numpy(), last.gen_freqs.numpy(),
                                         os.path.join(run_dir, f'prior-freqs{cur_nimg // 1000:06d}.png'),
                                         title=f'GMM components: real vs generated (estimated at kimg {last.nimg / 1000:g}, DDS {last.dds:.3f})')

    #------------------------------------------------------------------------
    # State: the prior file record (rank 0 only, it can be large), the
    # threshold, the lazy counter and the resampling state.

    def state_dict(self):
        history = self.history
        M = self.num_groups
        resample = dict(
            rule             = self.resample_rule,
            real_freqs       = self.real_freqs.clone(),
            freqs            = None if self.freqs is None else self.freqs.clone(),
            gen_freqs        = None if self.gen_freqs is None else self.gen_freqs.clone(),
            last_update_nimg = int(self.last_update_nimg),
            history          = dict(
                nimg         = torch.tensor([h.nimg for h in history], dtype=torch.int64),
                gen_freqs    = torch.stack([h.gen_freqs for h in history]) if history else torch.zeros([0, M], dtype=torch.float64),
                freqs        = torch.stack([h.freqs for h in history]) if history else torch.zeros([0, M], dtype=torch.float64),
                dds          = torch.tensor([h.dds for h in history], dtype=torch.float64),
            ),
        )
        state = dict(prior_digest=self.digest, log_theta=float(self.log_theta), num_dims=self.num_dims,
                     num_progress=int(self.num_progress), resample=resample)
        if self.ctx.rank == 0:
            state['prior_file'] = self.prior.record
        return state

    def load_state_dict(self, state):
        if state.get('prior_digest') != self.digest and self.ctx.rank == 0:
            print(f'Note: prior "gmm": the prior file differs from the one the snapshot was trained with; continuing with '
                  f'{self.prior.path}, so training will not continue exactly')
        self.num_progress = int(state['num_progress'])
        res = state['resample']
        self.freqs = None if res['freqs'] is None else res['freqs'].to(torch.float64).cpu()
        self.gen_freqs = None if res['gen_freqs'] is None else res['gen_freqs'].to(torch.float64).cpu()
        self.last_update_nimg = int(res['last_update_nimg'])
        hist = res['history']
        self.history = [ResampleUpdate(nimg=int(hist['nimg'][i]), gen_freqs=hist['gen_freqs'][i].clone(), freqs=hist['freqs'][i].clone(),
                                       dds=float(hist['dds'][i])) for i in range(len(hist['nimg']))]

#----------------------------------------------------------------------------
# The GMM prior's state in a network snapshot written by a --prior=gmm run
# (rank 0's, which holds the 'prior_file' record), or None. snapshot: the dict
# of legacy.load_network_pkl(). Used by the QS/DDS metrics.

def prior_state_from_snapshot(snapshot):
    loss_state = resume_module.loss_state(snapshot if isinstance(snapshot, dict) else None)
    state = ((loss_state or {}).get('priors') or {}).get('gmm')
    if not isinstance(state, dict) or 'prior_file' not in state:
        return None
    return state

#----------------------------------------------------------------------------
