"""Quality score (QS) and diversity difference score (DDS) of generated images under the PriorGAN GMM prior (Gu et al., "PriorGAN: Real Data Prior for Generative Adversarial Nets", §3.3 Eq. 6-7 and §4 "Evaluations"), registered as the metrics qs50k, dds50k, qs10k and dds10k.

QS. The paper scores an image set by the mean "normalised" log-likelihood
log p(F(x) | lambda) of Eq. 3 and does not say how it normalises. We
normalise by the real images: a generated image gets the percentile rank of
its log-likelihood among the reference log-likelihoods of the prior file (the
fraction of reference reals whose value is <= its own), and QS is the mean
rank over the generated images. The reference reals are held out of the GMM
fit (prior files of format 2, default holdout 0.1), so unseen images
distributed like the real ones score 0.5 even when the GMM overfits; format-1
files and holdout=0 rank against the fitted reals, which an overfitted GMM
scores higher than any unseen image (tests/numerics/test_gmm_prior.py: 0.29
instead of 0.5). QS lies in [0, 1], higher is better. A rank does not depend
on the feature dimension or on the scale of the densities, so values are
comparable across extractors and PCA settings, which a raw log-likelihood is not.

DDS. Eq. 7 as written: sum_i |f_i^r - f_i^g| over the M components, with f^r
the real frequencies stored in the prior file and f^g the share of generated
images in each component, assigned by the same rule as the real images (the
paper's nearest component mean unless the prior file records another rule
in settings['assign_rule']). DDS lies in [0, 2]; 0 = the same frequencies.
A component that holds no real or no generated image just adds |f^r - f^g|.

Where the prior comes from (first match):
  - the metric option `prior_file` (opts.extra.prior_file, registered with
    the metrics as PRIOR_FILE_OPTION, so calc_metrics.py offers
    --prior-file=PATH): a prior-file path, the plain prior-file dict, or a
    loaded priors.gmm.prior_file.PriorFile;
  - the GMM prior state of MetricOptions.snapshot, a training snapshot of a
    run with --prior=gmm (the shared loss state of its resume_state, training.resume.loss_state(snapshot)['priors']['gmm']
    ['prior_file']);
  - otherwise the metric stops with an error that says what to pass.

Features of generated images are requested through
metric_utils.get_feature_stats with the prior's extractor as detector. For an
`inception` prior that is the FID detector with FID's own arguments, so
`--metrics=fid50k_full,qs50k,dds50k` generates and embeds the images once.
"""

import os

import numpy as np
import torch

from metrics import metric_main
from metrics import metric_utils
from priors import features as features_module
from priors.gmm import prior as gmm_prior
from priors.gmm import prior_file as prior_file_module

#----------------------------------------------------------------------------
# Number of generated images of each metric (read at call time, so tests can
# lower them). The paper uses 10k on CIFAR-10 and 50k on FFHQ and LSUN.

NUM_GEN_50K = 50000
NUM_GEN_10K = 10000

_SCORE_ROWS = 8192          # Feature rows projected and scored at a time.
_DEFAULT_RULE = 'nearest'   # The paper's assignment rule (§3.3).

#----------------------------------------------------------------------------
# A tensor or array-like as a float64 CPU tensor (lists are not rounded through float32).

def _as_float64(x):
    if isinstance(x, torch.Tensor):
        return x.detach().to('cpu', torch.float64)
    return torch.as_tensor(np.asarray(x, dtype=np.float64))

#----------------------------------------------------------------------------
# Quality score: how typical generated images are under the prior, measured
# against the real images.

def quality_score(gen_loglik, real_loglik_sorted):
    """QS: mean percentile rank of generated log-likelihoods among the real ones.

    The rank of a value v is the fraction of real log-likelihoods <= v (as
    PriorFile.percentile_rank), so -inf ranks 0 and +inf ranks 1.

    Args:
        gen_loglik:         [K] log p(F(x) | lambda) (Eq. 3) of generated images, float tensor or array.
        real_loglik_sorted: [N] the same for the real images, ascending.

    Returns:
        float in [0, 1]; NaN when a generated log-likelihood is NaN.
    """
    gen = _as_float64(gen_loglik)
    real = _as_float64(real_loglik_sorted)
    if gen.ndim != 1 or real.ndim != 1:
        raise ValueError(f'quality_score: expected 1-D log-likelihoods, got shapes {list(gen.shape)} (generated) '
                         f'and {list(real.shape)} (real)')
    if gen.numel() == 0:
        raise ValueError('quality_score: no generated log-likelihoods given')
    if real.numel() == 0:
        raise ValueError('quality_score: no real log-likelihoods given; the prior holds none')
    if real.isnan().any() or (real[1:] < real[:-1]).any():
        raise ValueError('quality_score: real_loglik_sorted must be sorted in ascending order and free of NaN')
    if gen.isnan().any():
        return float('nan')
    ranks = torch.searchsorted(real, gen, right=True).to(torch.float64) / real.numel()
    return float(ranks.mean())

#----------------------------------------------------------------------------
# Diversity difference score: how far the component frequencies of generated
# images are from those of the real images.

def diversity_difference_score(real_freqs, gen_assignments, num_components):
    """DDS of Eq. 7: sum over the components of |f_i^r - f_i^g| (Eq. 6 gives f^r - f^g).

    Args:
        real_freqs:      [M] float f^r, the share of real images in each component (sums to 1).
        gen_assignments: [K] integer component of each generated image, in [0, M).
        num_components:  M.

    Returns:
        float in [0, 2].
    """
    num_components = int(num_components)
    f_real = _as_float64(real_freqs)
    if list(f_real.shape) != [num_components]:
        raise ValueError(f'diversity_difference_score: real_freqs must have shape [{num_components}], got {list(f_real.shape)}')
    if not f_real.isfinite().all() or (f_real < 0).any() or abs(float(f_real.sum()) - 1) > 1e-6:
        raise ValueError(f'diversity_difference_score: real_freqs must be non-negative and sum to 1, got {f_real.tolist()}')
    assignments = torch.as_tensor(gen_assignments).detach().cpu()
    if assignments.is_floating_point() or assignments.is_complex() or assignments.dtype == torch.bool or assignments.ndim != 1:
        raise ValueError(f'diversity_difference_score: gen_assignments must be a 1-D integer tensor, got {assignments.dtype} '
                         f'of shape {list(assignments.shape)}')
    if assignments.numel() == 0:
        raise ValueError('diversity_difference_score: no generated assignments given')
    if int(assignments.min()) < 0 or int(assignments.max()) >= num_components:
        bad = int(assignments.min()) if int(assignments.min()) < 0 else int(assignments.max())
        raise ValueError(f'diversity_difference_score: component index {bad} is out of range for {num_components} components')
    f_gen = prior_file_module.component_frequencies(assignments, num_components)
    return gmm_prior.diversity_difference_score(f_real, f_gen)

#----------------------------------------------------------------------------
# The assignment rule of a prior: the one its file records, else the paper's.

def assign_rule(prior):
    return prior.settings.get('assign_rule', _DEFAULT_RULE)

#----------------------------------------------------------------------------
# QS and DDS of generated features under a loaded prior. gen_features: [K, D]
# features of the prior's extractor. Each chunk is projected once and then
# scored and assigned in the GMM space. Returns dict(qs, dds, gen_freqs).

def prior_scores(prior, gen_features, rule=None):
    rule = assign_rule(prior) if rule is None else rule
    real_freqs = prior.real_freqs(rule)
    features = torch.as_tensor(gen_features)
    logliks, assignments = [], []
    with torch.no_grad():
        for chunk in features.split(_SCORE_ROWS):
            z = prior.project(chunk.to(torch.float64))
            logliks.append(prior.gmm.log_prob(z).cpu())
            assignments.append((prior.gmm.nearest_component(z) if rule == 'nearest' else prior.gmm.predict(z)).cpu())
    assignments = torch.cat(assignments)
    return dict(
        qs          = quality_score(torch.cat(logliks), prior.real_loglik_sorted),
        dds         = diversity_difference_score(real_freqs, assignments, prior.num_components),
        gen_freqs   = prior.frequencies(assignments),
    )

#----------------------------------------------------------------------------
# Finding the prior.

# A PriorFile from the plain dict a prior file holds, checked as load_prior()
# checks a file. `where` names the dict's origin in error messages.
def prior_from_record(record, where='prior-file dict'):
    fix = 'rebuild the prior with build_prior.py and pass the new prior file'
    prior_file_module.FILE_FORMAT.check(record, where, fix, from_file=False)
    return prior_file_module.PriorFile(record, path=where)

# The prior to evaluate against: prior_file (path, dict or PriorFile) first,
# then the GMM prior state of a snapshot dict. Returns a PriorFile, or None
# when neither holds a prior.
def load_metric_prior(prior_file=None, snapshot=None):
    if isinstance(prior_file, prior_file_module.PriorFile):
        return prior_file
    if isinstance(prior_file, dict):
        return prior_from_record(prior_file)
    if isinstance(prior_file, (str, os.PathLike)):
        return prior_file_module.load_prior(prior_file)
    if prior_file is not None:
        raise TypeError(f'prior_file must be a path, a prior-file dict or a PriorFile, got {type(prior_file).__name__}')
    if snapshot is not None:
        state = gmm_prior.prior_state_from_snapshot(snapshot)
        if state is not None and state.get('prior_file') is not None:
            return prior_from_record(state['prior_file'], where="the snapshot's GMM prior (resume_state)")
    return None

#----------------------------------------------------------------------------
# Detector of the generated images: the FID detector itself for inception
# priors (so the pass is shared with FID), else the prior's extractor rebuilt
# from its spec on opts.device. Both embed uint8 pixels, as the reals were.

def _prior_detector(prior, opts):
    if prior.feature_name == 'inception':
        return metric_utils.INCEPTION_URL, dict(return_features=True)
    spec = dict(prior.extractor.get('spec') or dict(name=prior.feature_name))
    name = spec.pop('name', prior.feature_name)
    extractor = features_module.build_extractor(name, device=opts.device, num_gpus=opts.num_gpus, rank=opts.rank, **spec)
    return extractor, dict()

#----------------------------------------------------------------------------
# QS and DDS of num_gen generated images (None on ranks other than 0).

def compute_prior_scores(opts, metric, num_gen):
    try:
        prior = load_metric_prior(opts.extra.get('prior_file'), opts.snapshot)
    except prior_file_module.PriorFileError as err:
        raise metric_utils.MetricOptionsError(f'{metric}: {err}', option='prior_file') from err
    if prior is None:
        raise metric_utils.MetricOptionsError(f'{metric} needs a GMM prior: pass a prior file from build_prior.py, or use a snapshot '
                                              f'trained with the gmm prior', option='prior_file')

    # Same generator pass as fid50k_full (for a conditional G the label source is part of the pass).
    opts.dataset_kwargs.update(max_size=None, xflip=False)
    detector, detector_kwargs = _prior_detector(prior, opts)
    request = metric_utils.generator_request(opts, detector, detector_kwargs, num_gen=num_gen, capture_all=True)
    stats = metric_utils.get_feature_stats(opts, dict(gen=request))['gen']
    if opts.rank != 0:
        return None
    return prior_scores(prior, stats.get_all_torch())

def _qs(opts, name, num_gen):
    scores = compute_prior_scores(opts, name, num_gen)
    return {name: float('nan') if scores is None else scores['qs']}

def _dds(opts, name, num_gen):
    scores = compute_prior_scores(opts, name, num_gen)
    return {name: float('nan') if scores is None else scores['dds']}

#----------------------------------------------------------------------------
# The registered metrics and their option --prior-file (calc_metrics.py loads
# and checks the file once, before any metric runs).

def _load_prior_option(path):
    return load_metric_prior(prior_file=path)

PRIOR_FILE_OPTION = metric_main.MetricOption('prior_file', metavar='FILE', load=_load_prior_option,
    help='Prior file of the prior metrics (qs*, dds*), from build_prior.py  [default: the prior of a snapshot trained with --prior=gmm]')

@metric_main.register_metric(options=[PRIOR_FILE_OPTION])
def qs50k(opts):
    return _qs(opts, 'qs50k', NUM_GEN_50K)

@metric_main.register_metric(options=[PRIOR_FILE_OPTION])
def dds50k(opts):
    return _dds(opts, 'dds50k', NUM_GEN_50K)

@metric_main.register_metric(options=[PRIOR_FILE_OPTION])
def qs10k(opts):
    return _qs(opts, 'qs10k', NUM_GEN_10K)

@metric_main.register_metric(options=[PRIOR_FILE_OPTION])
def dds10k(opts):
    return _dds(opts, 'dds10k', NUM_GEN_10K)

#----------------------------------------------------------------------------
