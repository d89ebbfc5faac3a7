"""The PriorGAN prior (`--prior=gmm`): quality loss and resampling from a GMM on deep features of the real images (Gu et al., "PriorGAN: Real Data Prior for Generative Adversarial Nets", §3.2-3.3).

Quality loss (Eq. 5), added to G's main step with weight delta:

    L_Q(z) = -log p(F(G(z)) | lambda) / d   if log p(F(G(z)) | lambda) < log theta,   else 0

where p is the GMM of Eq. 3 on the PCA projection of the extractor features F
and d is the dimension of that projection. The division by d is our choice
(the paper leaves the scale open): log p of a d-dimensional Gaussian mixture
is a sum of about d per-dimension terms, so its size grows with the feature
dimension and the PCA setting (tens for the 32-d tiny extractor, thousands for
Inception at 98% variance). Per dimension, delta = 0.1 (the paper's value)
means the same strength for every extractor, and the term stays of the order
of the adversarial loss. theta is the theta_quantile (default 10%) quantile of
the real images' log-likelihoods, or an absolute log-likelihood.

Resampling (Eq. 6-8), every resample_kimg thousand images: resample_num
generated images (seeded, split across processes, counts summed) are assigned
to components by the rule of §3.3 (nearest component mean; or largest
responsibility), giving f^g (optionally smoothed by an EMA); then

    d  = f^r - f^g                                  (Eq. 6)
    DDS = sum_i |d_i|                               (Eq. 7)
    f' = max(f^r + alpha d, 0), normalised          (Eq. 8; all-zero -> f^r)

and each real image of component k gets the sampling weight f'_k / n_k, where
n_k is the number of real images in component k (0 for empty components), so
the data sampler shows component k with frequency f'_k.
"""

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
from torch_utils import training_stats

#----------------------------------------------------------------------------

RESAMPLE_RULES = prior_file_module.ASSIGN_RULES   # 'nearest' (the paper's rule) or 'argmax'
_RESAMPLE_STREAM = 0x5e5a                          # Tag that separates the resampling latents from other seeded streams.

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

def resampled_frequencies(real_freqs, gen_freqs, alpha):
    """Eq. 8 with normalisation.

    Args:
        real_freqs: [M] float64, f^r (sums to 1).
        gen_freqs:  [M] float64, f^g (sums to 1).
        alpha:      float >= 0, the resample weight.

    Returns:
        [M] float64 summing to 1.
    """
    if not alpha >= 0:
        raise ValueError(f'resampled_frequencies: alpha must be >= 0, got {alpha}')
    real = _as_freqs(real_freqs, 'real_freqs')
    raw = (real + alpha * diversity_distance(real, gen_freqs)).clamp(min=0)
    total = float(raw.sum())
    if not total > 0:
        return real / real.sum()
    return raw / total

#----------------------------------------------------------------------------
# Exponential moving average of generated frequencies: ema * previous +
# (1 - ema) * current; previous None (first estimate) or ema 0 gives current.

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

@registry.register_prior('gmm')
class GMMPrior(base.Prior):
    def __init__(self,
        prior_file      = None,         # Prior file from build_prior.py; None = build one (or reuse it) in the cache.
        feature         = 'inception',  # Feature extractor F (priors.features.build_extractor name, path or URL).
        feature_kwargs  = {},           # Extra build_extractor() arguments (e.g. tiny: feature_dim, seed).
        components      = 7,            # Number of Gaussian components M when building (7: paper, Table 5).
        pca             = 0.98,         # PCA before the GMM when building (prior_file.parse_pca); None = disable.
        cache_dir       = None,         # Folder of built prior files; None = <dnnlib cache>/priors.
        weight          = 0.1,          # Quality loss weight delta (Eq. 5 term); 0 = disable the quality loss.
        theta           = None,         # Threshold on log p (log theta of Eq. 5); None = use theta_quantile.
        theta_quantile  = 0.1,          # theta = this quantile of the real images' log-likelihoods.
        lazy            = 1,            # Apply the quality loss every this many iterations, with weight * lazy.
        resample        = True,         # Resampling strategy (Eq. 6-8); False = disable.
        resample_alpha  = 7,            # alpha of Eq. 8 (paper: 7 for FFHQ / LSUN, 3 for CIFAR-10).
        resample_kimg   = 4,            # Re-estimate f^g every this many thousand images.
        resample_num    = 1000,         # Generated images per estimate of f^g.
        resample_ema    = 0,            # EMA factor of f^g across estimates, in [0, 1); 0 = disable.
        resample_rule   = 'nearest',    # Component of an image: 'nearest' mean (paper, §3.3) or 'argmax' responsibility.
        resample_batch  = 32,           # Images per G call when estimating f^g.
    ):
        super().__init__()
        for key, value, ok, allowed in [
            ('weight',          weight,         weight >= 0,                    '>= 0'),
            ('theta_quantile',  theta_quantile, 0 <= theta_quantile <= 1,       'in [0, 1]'),
            ('resample_alpha',  resample_alpha, resample_alpha >= 0,            '>= 0'),
            ('resample_kimg',   resample_kimg,  resample_kimg > 0,              '> 0'),
            ('resample_ema',    resample_ema,   0 <= resample_ema < 1,          'in [0, 1)'),
        ]:
            if not ok:
                raise ValueError(f'Prior "gmm": {key} must be {allowed}, got {value!r}')
        for key, value in (('lazy', lazy), ('resample_num', resample_num), ('resample_batch', resample_batch), ('components', components)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f'Prior "gmm": {key} must be an integer >= 1, got {value!r}')
        if theta is not None and not np.isfinite(theta):
            raise ValueError(f'Prior "gmm": theta must be a finite log-likelihood or None, got {theta!r}')
        if resample_rule not in RESAMPLE_RULES:
            raise ValueError(f'Prior "gmm": resample_rule must be one of {", ".join(RESAMPLE_RULES)}, got {resample_rule!r}')
        self.prior_file_path = prior_file
        self.feature, self.feature_kwargs = feature, dict(feature_kwargs)
        self.components, self.pca = int(components), prior_file_module.parse_pca(pca)
        self.cache_dir = cache_dir
        self.weight, self.theta, self.theta_quantile, self.lazy = float(weight), theta, float(theta_quantile), int(lazy)
        self.resample, self.resample_alpha = bool(resample), float(resample_alpha)
        self.resample_nimg = int(round(resample_kimg * 1000))
        self.resample_num, self.resample_ema = int(resample_num), float(resample_ema)
        self.resample_rule, self.resample_batch = resample_rule, int(resample_batch)

        # Training state (see state_dict()).
        self.num_progress = 0           # on_progress() calls so far (drives the lazy schedule)
        self.apply_quality = False      # whether this iteration's G step gets the quality loss
        self.last_update_nimg = 0       # cur_nimg of the last f^g estimate (0 = none yet)
        self.gen_freqs = None           # f^g used last (after the EMA), float64 [M]
        self.freqs = None               # current f' (Eq. 8), float64 [M]; None = not resampled yet (f^r)
        self.history = []               # per update: (nimg, raw f^g [M], f' [M], DDS)

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
                                                                  components=self.components, pca=self.pca, device=ctx.device,
                                                                  cache_dir=self.cache_dir, rank=ctx.rank, num_gpus=ctx.num_gpus)
        self.digest = _record_digest(self.prior.record)
        self.num_dims = int(self.prior.pca_dim)
        self.log_theta = float(self.theta) if self.theta is not None else self.prior.loglik_quantile(self.theta_quantile)
        self.assignments = self.prior.assignments(self.resample_rule).to(torch.int64).cpu()
        self.real_freqs = self.prior.real_freqs(self.resample_rule).to(torch.float64).cpu()
        self._labels = None
        if getattr(ctx.G_mapping, 'c_dim', 0) > 0:
            self._labels = dnnlib.util.construct_class_by_name(**dict(ctx.dataset_kwargs, xflip=False))

    #------------------------------------------------------------------------
    # Quality loss (Eq. 5) at G's main step.

    def extra_loss(self, step, img, c, logits, ws):
        if step != 'Gmain' or self.weight == 0 or not self.apply_quality:
            return None
        log_prob = self.prior.log_prob(self.extractor(img))     # [N]
        training_stats.report('Prior/gmm/nll', -log_prob / self.num_dims)
        training_stats.report('Prior/gmm/below_theta', (log_prob < self.log_theta).to(torch.float32))
        return quality_loss(log_prob, self.log_theta, self.num_dims) * (self.weight * self.lazy)

    #------------------------------------------------------------------------
    # Lazy schedule and resampling (Eq. 6-8).

    def on_progress(self, cur_nimg):
        self.apply_quality = (self.num_progress % self.lazy == 0)
        self.num_progress += 1
        if not self.resample or cur_nimg - self.last_update_nimg < self.resample_nimg:
            return None
        weights = self._update_weights(cur_nimg)
        return dict(sampler_weights=weights.numpy())

    # Estimate f^g, update f' and return the per-image weights (float64 [N], identical on all ranks).
    def _update_weights(self, cur_nimg):
        counts = self._generated_counts(update_idx=len(self.history))
        raw = counts / counts.sum()
        self.gen_freqs = smoothed_frequencies(self.gen_freqs, raw, self.resample_ema)
        self.freqs = resampled_frequencies(self.real_freqs, self.gen_freqs, self.resample_alpha)
        weights = per_image_weights(self.assignments, self.freqs)
        dds = diversity_difference_score(self.real_freqs, raw)
        self.history.append((int(cur_nimg), raw, self.freqs.clone(), dds))
        self.last_update_nimg = int(cur_nimg)
        training_stats.report('Prior/gmm/dds', dds)
        training_stats.report('Sampler/weight_max', float(weights.max()) * weights.numel())  # 1 = uniform
        return weights

    # Components of resample_num seeded generated images, this rank's share,
    # summed over ranks: float64 [M]. Constant noise, no w_avg update, no
    # gradients; the global RNGs are not used.
    @torch.no_grad()
    def _generated_counts(self, update_idx):
        ctx = self.ctx
        counts = torch.zeros([self.prior.num_components], dtype=torch.float64, device=ctx.device)
        indices = list(range(ctx.rank, self.resample_num, ctx.num_gpus))
        for start in range(0, len(indices), self.resample_batch):
            z, c = self._latents(indices[start:start + self.resample_batch], update_idx)
            ws = ctx.G_mapping(z, c, skip_w_avg_update=True)
            img = ctx.G_synthesis(ws, noise_mode='const')
            components = self.prior.assign(self.extractor(img), rule=self.resample_rule)
            counts += torch.bincount(components.to(ctx.device), minlength=counts.numel()).to(torch.float64)
        if ctx.num_gpus > 1:
            torch.distributed.all_reduce(counts)
        return counts.cpu()

    # Seeded latents and labels of generated images `indices` of update `update_idx`.
    def _latents(self, indices, update_idx):
        ctx = self.ctx
        z_dim, c_dim = int(ctx.G_mapping.z_dim), int(getattr(ctx.G_mapping, 'c_dim', 0))
        zs, cs = [], []
        for index in indices:
            rng = np.random.default_rng([int(index), int(update_idx), int(ctx.random_seed), _RESAMPLE_STREAM])
            zs.append(rng.standard_normal(z_dim))
            if self._labels is not None:
                cs.append(self._labels.get_label(int(rng.integers(len(self._labels)))))
        z = torch.tensor(np.stack(zs), dtype=torch.float32, device=ctx.device)
        c = torch.tensor(np.stack(cs), dtype=torch.float32, device=ctx.device) if cs else torch.zeros([len(indices), c_dim], device=ctx.device)
        return z, c

    #------------------------------------------------------------------------
    # Pictures: once, real images per component (the paper's Figure 2); at each
    # image snapshot, real vs last estimated generated component frequencies.

    def on_snapshot(self, run_dir, cur_nimg):
        grid_path = os.path.join(run_dir, 'prior-components.png')
        if not os.path.exists(grid_path):
            dataset = dnnlib.util.construct_class_by_name(**dict(self.ctx.dataset_kwargs, xflip=False))
            pictures.component_grid(dataset, self.assignments.numpy(), self.real_freqs.numpy(), grid_path)
        if len(self.history) > 0:
            nimg, gen_freqs, _freqs, dds = self.history[-1]
            pictures.frequency_bar_chart(self.real_freqs.numpy(), gen_freqs.numpy(),
                                         os.path.join(run_dir, f'prior-freqs{cur_nimg // 1000:06d}.png'),
                                         title=f'GMM components: real vs generated (estimated at kimg {nimg / 1000:g}, DDS {dds:.3f})')

    #------------------------------------------------------------------------
    # State: the prior file record (rank 0 only, it can be large), the
    # threshold, the lazy counter and the resampling state.

    def state_dict(self):
        history = self.history
        M = int(self.prior.num_components)
        resample = dict(
            rule             = self.resample_rule,
            real_freqs       = self.real_freqs.clone(),
            freqs            = None if self.freqs is None else self.freqs.clone(),
            gen_freqs        = None if self.gen_freqs is None else self.gen_freqs.clone(),
            last_update_nimg = int(self.last_update_nimg),
            history          = dict(
                nimg         = torch.tensor([h[0] for h in history], dtype=torch.int64),
                gen_freqs    = torch.stack([h[1] for h in history]) if history else torch.zeros([0, M], dtype=torch.float64),
                freqs        = torch.stack([h[2] for h in history]) if history else torch.zeros([0, M], dtype=torch.float64),
                dds          = torch.tensor([h[3] for h in history], dtype=torch.float64),
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
        self.history = [(int(hist['nimg'][i]), hist['gen_freqs'][i].clone(), hist['freqs'][i].clone(), float(hist['dds'][i]))
                        for i in range(len(hist['nimg']))]

#----------------------------------------------------------------------------
# The GMM prior's state in a network snapshot written by a --prior=gmm run
# (rank 0's, which holds the 'prior_file' record), or None. snapshot: the dict
# of legacy.load_network_pkl(). Used by the QS/DDS metrics.

def prior_state_from_snapshot(snapshot):
    resume_state = snapshot.get('resume_state') if isinstance(snapshot, dict) else None
    if not isinstance(resume_state, dict):
        return None
    ranks = resume_state.get('ranks') or []
    if len(ranks) == 0 or not isinstance(ranks[0], dict):
        return None
    state = (ranks[0].get('loss') or {}).get('priors', {}).get('gmm')
    if not isinstance(state, dict) or 'prior_file' not in state:
        return None
    return state

#----------------------------------------------------------------------------
