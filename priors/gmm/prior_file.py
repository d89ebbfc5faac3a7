"""The PriorGAN prior file: a PCA + GMM fitted on features of the real images (Gu et al., "PriorGAN", §3.1 and §3.3), its metadata, building, caching and validated loading.

A prior file is a torch.save() of plain dicts, lists, numbers, strings and
tensors, so torch.load(weights_only=True) reads it without running any code:

    format_version  int, FORMAT_VERSION when written; newer files are refused
    kind            'priorgan-gmm-prior'
    created         time of writing, 'YYYY-mm-dd HH:MM:SS'
    extractor       dict(name, feature_dim, spec, source): spec rebuilds it with features.build_extractor(**spec)
    dataset         torch_utils.built_files.dataset_identity(): name, path, class_name, num_images, num_raw_images, resolution,
                    num_channels, xflip, fingerprint (content), selection (which images, mirrored or not)
    settings        dict(components, pca, reg_covar, seed, max_images, covariance_type, tol, max_iter, n_init,
                    holdout (format 2))
    num_images      N, the number of dataset items (0 .. N-1), each with a component. Format 1: the number
                    of images fitted on (dataset items 0 .. N-1; fewer than the dataset with max_images)
    split           (format 2) dict(holdout, max_images, seed, roles=uint8 [N]): per item ROLE_FIT (the PCA
                    and GMM were fitted on it), ROLE_HELDOUT (gives a reference log-likelihood) or ROLE_UNUSED
    pca             None, or dict(kwargs, state_dict) of priors.gmm.pca.PCA
    gmm             dict(kwargs, state_dict) of priors.gmm.GaussianMixture (fitted on the PCA projections)
    assignments     dict(nearest=int64 [N], argmax=int64 [N]): each real image's component by the paper's
                    rule (nearest component mean, §3.3) and by largest responsibility
    real_freqs      dict(nearest=float64 [M], argmax=float64 [M]): f_i^r of §3.3 under each rule
    real_loglik     dict(sorted, mean, std, source): the REFERENCE log-likelihoods log p(x | lambda) (Eq. 3),
                    sorted, for percentile ranks (quality score) and quantile thresholds (theta of Eq. 5):
                    of the held-out images (source='heldout'), or of the fitted ones (source='fit'; format 1
                    files and holdout=0, where an overfitted GMM makes unseen reals rank low)
    fit_loglik      (format 2) dict(sorted, mean, std) of the fitted images
    overfit         (format 2) dict(num_dims, images_per_component, params_per_component, images_per_param,
                    heldout_rank): heldout_rank = mean percentile rank of the held-out images among the fitted
                    ones (0.5 = no overfitting; None without held-out images)

Files come from build_prior.py or from get_or_build_prior(), which caches them
under the dnnlib cache folder keyed by the dataset's identity and every
setting. load_prior() checks a file against the dataset and the extractor a
run uses and explains how to fix a mismatch. The protocol shared with other
built files (identity, digest, get-or-build, the validation ladder) lives in
torch_utils/built_files.py; this module holds the record layout.
"""

import os
import time
import warnings

import numpy as np
import torch

import dnnlib
from metrics import metric_utils
from priors import features as features_module
from priors.gmm import pictures
from priors.gmm.mixture import GaussianMixture
from priors.gmm.pca import PCA
from torch_utils import built_files

#----------------------------------------------------------------------------

FORMAT_VERSION = 2           # 2: held-out split, components for every item, fit_loglik, overfit
FILE_KIND = 'priorgan-gmm-prior'
ASSIGN_RULES = ('nearest', 'argmax')     # 'nearest' = the paper's rule (§3.3)
_REQUIRED_KEYS = ('extractor', 'dataset', 'settings', 'num_images', 'pca', 'gmm', 'assignments', 'real_freqs', 'real_loglik')
_TRANSFORM_ROWS = 65536      # rows per chunk when projecting features
_SPLIT_STREAM = 0x401d       # tag of the held-out split's random stream

#----------------------------------------------------------------------------
# A prior file that is missing, unreadable or built for something else.

class PriorFileError(built_files.BuiltFileError):
    pass

FILE_FORMAT = built_files.FileFormat(FILE_KIND, FORMAT_VERSION, _REQUIRED_KEYS, title='Prior file', noun='a prior file',
                                     error=PriorFileError)

dataset_identity = built_files.dataset_identity   # the identity stored in `dataset` (kept here under its old name)

#----------------------------------------------------------------------------
# Parse a PCA setting: float in (0, 1] = variance fraction, int >= 1 = number
# of components, None / 'none' = no PCA. Strings as on the command line.

def parse_pca(value):
    if value is None or (isinstance(value, str) and value.strip().lower() in ('none', 'off', '')):
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                raise ValueError(f'pca must be a variance fraction in (0, 1], a number of components >= 1 or "none", got {text!r}') from None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f'pca must be a variance fraction in (0, 1], a number of components >= 1 or "none", got {value!r}')
    if isinstance(value, (float, np.floating)) and not 0 < value <= 1:
        raise ValueError(f'pca as a variance fraction must be in (0, 1], got {value!r}; give an int for a number of components')
    if isinstance(value, (int, np.integer)) and value < 1:
        raise ValueError(f'pca as a number of components must be >= 1, got {value!r}; use "none" for no PCA')
    return int(value) if isinstance(value, (int, np.integer)) else float(value)

#----------------------------------------------------------------------------
# Which dataset items fit the GMM and which give the reference log-likelihoods.
# A seeded fraction `holdout` of the groups (raw images: an image and its
# mirrored copy share a group, so a mirror never leaks into the other side) is
# held out (at least one group, never all); the GMM is fitted on the rest, at most `max_images` of them (a
# seeded random subset). Returns uint8 [N]: ROLE_FIT, ROLE_HELDOUT or
# ROLE_UNUSED per item. holdout = 0 and max_images = None: every item fits.

ROLE_UNUSED, ROLE_FIT, ROLE_HELDOUT = 0, 1, 2

def split_roles(num_items, holdout=0.1, max_images=None, seed=0, groups=None):
    if not 0 <= holdout < 1:
        raise ValueError(f'Prior: holdout must be a fraction in [0, 1), got {holdout!r}')
    groups = np.arange(num_items, dtype=np.int64) if groups is None else np.asarray(groups, dtype=np.int64)
    if groups.shape != (num_items,):
        raise ValueError(f'Prior: groups must have one entry per item, shape [{num_items}], got {list(groups.shape)}')
    roles = np.full([num_items], ROLE_FIT, dtype=np.uint8)
    rng = np.random.default_rng([int(seed), _SPLIT_STREAM])
    if holdout > 0:
        unique = np.unique(groups)
        num_held = min(max(int(round(holdout * unique.size)), 1), unique.size - 1)   # at least one, never all
        held = rng.permutation(unique)[:num_held]
        roles[np.isin(groups, held)] = ROLE_HELDOUT
    fit = np.flatnonzero(roles == ROLE_FIT)
    if max_images is not None and fit.size > max_images:
        keep = np.sort(rng.permutation(fit)[:int(max_images)])
        roles[fit] = ROLE_UNUSED
        roles[keep] = ROLE_FIT
    return torch.from_numpy(roles)

# Free parameters of one Gaussian component in d dimensions (mean and covariance).
def params_per_component(num_dims, covariance_type):
    return num_dims + (num_dims * (num_dims + 1) // 2 if covariance_type == 'full' else num_dims)

# Fewest fitted images per component per free parameter before we warn. With
# fewer, the fitted reals score clearly higher than unseen reals (see
# docs/priors.md, "Held-out reference": at 0.8 images per parameter unseen
# reals rank at about 0.46 among the fitted ones, at 2 about 0.49).
MIN_IMAGES_PER_PARAM = 2.0
OVERFIT_RANK = 0.45   # warn when held-out reals rank below this among the fitted reals (0.5 = no overfitting)

#----------------------------------------------------------------------------
# Fit PCA (optional) and GMM on real features and describe the real images
# under the fitted model. features: [N, D] float tensor of every dataset item.
# The PCA and GMM see only the fit items (split_roles); every item gets a
# component; the reference log-likelihoods (theta of Eq. 5, QS) are those of
# the held-out items, or of the fit items when holdout = 0 (PriorGAN v1).
# Returns the plain dict that becomes the model part of a prior file (keys
# num_images, split, pca, gmm, assignments, real_freqs, real_loglik,
# fit_loglik, overfit). Warns (UserWarning) when the GMM overfits.

def fit_prior_model(features,
    components      = 7,        # Number of Gaussian components M.
    pca             = 0.98,     # PCA before the GMM (see parse_pca). None = disable.
    reg_covar       = 1e-6,     # Added to the diagonal of every covariance.
    seed            = 0,        # Seed of the GMM initialisation and of the held-out split.
    covariance_type = 'full',   # 'full' or 'diag'.
    tol             = 1e-3,     # EM tolerance on the mean log-likelihood.
    max_iter        = 100,      # Most EM iterations.
    n_init          = 1,        # EM restarts; the best lower bound wins.
    holdout         = 0.1,      # Fraction of images held out for the reference log-likelihoods; 0 = none (v1).
    max_images      = None,     # Fit on at most this many of the other images (seeded subset). None = all.
    groups          = None,     # int [N]: items of one group stay on one side of the split (raw image index). None = each item.
    device          = 'cpu',    # Where to fit.
):
    device = torch.device(device)
    x = torch.as_tensor(features)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f'Prior: need features of at least 2 images as [N, D], got shape {list(x.shape)}')
    roles = split_roles(x.shape[0], holdout=holdout, max_images=max_images, seed=seed, groups=groups)
    fit_idx = torch.nonzero(roles == ROLE_FIT).flatten()
    held_idx = torch.nonzero(roles == ROLE_HELDOUT).flatten()
    if fit_idx.numel() < max(components, 2):
        raise ValueError(f'Prior: {fit_idx.numel()} images cannot fit {components} Gaussian components '
                         f'({x.shape[0]} images, {held_idx.numel()} held out); use more images or fewer components')
    pca = parse_pca(pca)

    # PCA, then the GMM on the projections of the fit items (float64).
    pca_model = None
    if pca is not None:
        pca_model = PCA(n_components=pca).to(device).fit(x[fit_idx] if fit_idx.numel() < x.shape[0] else x)
    z = _project(pca_model, x, device)
    z_fit = z[fit_idx.to(device)] if fit_idx.numel() < x.shape[0] else z
    gmm_kwargs = dict(n_components=int(components), covariance_type=covariance_type, tol=float(tol), reg_covar=float(reg_covar),
                      max_iter=int(max_iter), n_init=int(n_init), random_state=int(seed))
    gmm = GaussianMixture(**gmm_kwargs).to(device).fit(z_fit)

    # Describe every real image: components under both rules, frequencies, log-likelihoods.
    assignments = dict(nearest=gmm.nearest_component(z).cpu(), argmax=gmm.predict(z).cpu())
    freqs = {rule: component_frequencies(a, components) for rule, a in assignments.items()}
    loglik = gmm.score_samples(z).to(torch.float64).cpu()
    fit_loglik = loglik[fit_idx]
    reference, source = (loglik[held_idx], 'heldout') if held_idx.numel() > 0 else (fit_loglik, 'fit')

    # Overfitting: images per free parameter, and where unseen reals rank among the fitted ones.
    num_dims = int(z.shape[1])
    per_component = fit_idx.numel() / int(components)
    num_params = params_per_component(num_dims, covariance_type)
    fit_sorted = fit_loglik.sort().values
    heldout_rank = None
    if held_idx.numel() > 0:
        heldout_rank = float((torch.searchsorted(fit_sorted, loglik[held_idx], right=True).to(torch.float64) / fit_sorted.numel()).mean())
    overfit = dict(num_dims=num_dims, images_per_component=float(per_component), params_per_component=int(num_params),
                   images_per_param=float(per_component / num_params), heldout_rank=heldout_rank)
    warning = overfit_warning(overfit, covariance_type)
    if warning is not None:
        warnings.warn(warning, stacklevel=2)
    return dict(
        num_images  = int(x.shape[0]),
        split       = dict(holdout=float(holdout), max_images=None if max_images is None else int(max_images), seed=int(seed), roles=roles),
        pca         = None if pca_model is None else dict(kwargs=dict(n_components=pca), state_dict=built_files.cpu_state(pca_model)),
        gmm         = dict(kwargs=gmm_kwargs, state_dict=built_files.cpu_state(gmm)),
        assignments = assignments,
        real_freqs  = freqs,
        real_loglik = dict(_loglik_summary(reference), source=source),
        fit_loglik  = _loglik_summary(fit_loglik),
        overfit     = overfit,
    )

def _loglik_summary(loglik):
    return dict(sorted=loglik.sort().values, mean=float(loglik.mean()), std=float(loglik.std()) if loglik.numel() > 1 else 0.0)

# The overfitting warning for a fit_prior_model() 'overfit' dict, or None when the fit looks sound.
def overfit_warning(overfit, covariance_type):
    few = overfit['images_per_param'] < MIN_IMAGES_PER_PARAM
    rank = overfit.get('heldout_rank')
    ranks_low = rank is not None and rank < OVERFIT_RANK
    if not (few or ranks_low):
        return None
    measured = (f'held-out reals rank at {rank:.3f} among the fitted reals (0.5 = no overfitting); ' if rank is not None else
                'no images were held out to measure it; ')
    return (f'Prior: the GMM is likely to overfit: {overfit["images_per_component"]:.0f} fitted images per component for '
            f'{overfit["params_per_component"]} free parameters each ({covariance_type} covariances in {overfit["num_dims"]} '
            f'dimensions, {overfit["images_per_param"]:.2f} images per parameter, want >= {MIN_IMAGES_PER_PARAM:g}); {measured}'
            f'use fewer components, diagonal covariances (covariance_type="diag": {2 * overfit["num_dims"]} parameters), '
            f'or a lower PCA setting (fewer dimensions)')

# Features -> GMM space in float64, chunk by chunk (no gradients).
def _project(pca_model, x, device):
    parts = []
    with torch.no_grad():
        for start in range(0, x.shape[0], _TRANSFORM_ROWS):
            chunk = x[start:start + _TRANSFORM_ROWS].to(device=device, dtype=torch.float64)
            parts.append(pca_model.transform(chunk) if pca_model is not None else chunk)
    return torch.cat(parts)

# Share of each of `num_components` components among the assignments: float64 [M].
def component_frequencies(assignments, num_components):
    a = torch.as_tensor(assignments, dtype=torch.int64).cpu()
    if a.numel() == 0:
        raise ValueError('component_frequencies: no assignments given')
    counts = torch.bincount(a, minlength=num_components)
    if counts.numel() > num_components:
        raise ValueError(f'component_frequencies: component index {int(a.max())} is out of range for {num_components} components')
    return counts.to(torch.float64) / a.numel()

save_prior = built_files.write_record   # write a prior record atomically (safe to load)

#----------------------------------------------------------------------------
# Build a prior file at `path`: extract features of the real images (through
# metric_utils' pass and feature cache), fit on rank 0, write atomically and
# (optionally) the component grid. With several processes every rank must
# call this; all return after the file exists. Returns the loaded PriorFile.

def build_prior_file(path, dataset_kwargs,
    feature         = 'inception',  # Extractor name, path or URL (features.build_extractor), or a FeatureExtractor.
    feature_kwargs  = {},           # Extra build_extractor() arguments (e.g. tiny: feature_dim, seed).
    components      = 7,            # Number of Gaussian components M.
    pca             = 0.98,         # PCA setting (parse_pca). None = disable.
    reg_covar       = 1e-6,         # GMM covariance regularisation.
    seed            = 0,            # GMM initialisation seed.
    max_images      = None,         # Fit on at most N images (seeded subset); every item still gets a component. None = all.
    holdout         = 0.1,          # Fraction of images held out for the reference log-likelihoods (theta, QS); 0 = none (v1).
    batch           = 64,           # Images per feature batch.
    device          = None,         # None = cuda:<rank> when available, else cpu.
    covariance_type = 'full',       # GMM covariance type.
    tol             = 1e-3,         # EM tolerance.
    max_iter        = 100,          # Most EM iterations.
    n_init          = 1,            # EM restarts.
    grid_path       = None,         # PNG of real images per component. None = disable.
    feature_cache   = True,         # Reuse / store the real features in metric_utils' cache.
    progress        = None,         # metric_utils.ProgressMonitor for the feature pass. None = silent.
    num_gpus        = 1,            # Number of processes taking part.
    rank            = 0,            # This process.
):
    device = features_module.resolve_device(device, rank)
    identity = dataset_identity(dataset_kwargs)
    extractor = features_module.build_extractor(feature, device=device, num_gpus=num_gpus, rank=rank, **feature_kwargs)
    # Features of every item: each needs a component for the resampling, even when the fit uses fewer.
    feats = features_module.extract_dataset_features(extractor, dataset_kwargs, max_images=None, batch=batch, device=device,
                                                     num_gpus=num_gpus, rank=rank, cache=feature_cache, progress=progress)
    if rank == 0:
        model = fit_prior_model(feats, components=components, pca=pca, reg_covar=reg_covar, seed=seed, covariance_type=covariance_type,
                                tol=tol, max_iter=max_iter, n_init=n_init, holdout=holdout, max_images=max_images,
                                groups=_raw_groups(dataset_kwargs), device=device)
        record = dict(
            format_version  = FORMAT_VERSION,
            kind            = FILE_KIND,
            created         = time.strftime('%Y-%m-%d %H:%M:%S'),
            extractor       = dict(name=extractor.name, feature_dim=int(extractor.feature_dim), spec=dict(extractor.spec, **feature_kwargs),
                                   source=None if extractor.source is None else str(extractor.source)),
            dataset         = identity,
            settings        = dict(components=int(components), pca=parse_pca(pca), reg_covar=float(reg_covar), seed=int(seed),
                                   max_images=None if max_images is None else int(max_images), covariance_type=covariance_type,
                                   tol=float(tol), max_iter=int(max_iter), n_init=int(n_init), holdout=float(holdout)),
            **model,
        )
        built_files.write_record(record, path)
        if grid_path is not None:
            PriorFile(record, path).save_component_grid(grid_path, dataset_kwargs)
    if num_gpus > 1:
        torch.distributed.barrier()
    return load_prior(path, expect_dataset=identity, expect_feature=extractor, device=device)

# Raw image index of every dataset item (an image and its mirrored copy share one): int64 [N].
def _raw_groups(dataset_kwargs):
    dataset = dnnlib.util.construct_class_by_name(**dataset_kwargs)
    raw_idx = getattr(dataset, '_raw_idx', None)
    if raw_idx is None:
        raw_idx = [dataset.get_details(i).raw_idx for i in range(len(dataset))]
    return np.asarray(raw_idx, dtype=np.int64)

#----------------------------------------------------------------------------
# The prior a training run needs, built once and cached: the file is keyed by
# the dataset identity (content and selection, not its location) and every
# setting. Rank 0 decides whether it exists; when it does not, all ranks
# extract features together, rank 0 fits and writes, and the others wait on a
# barrier; then every rank loads it. Returns a PriorFile on `device`.

def get_or_build_prior(dataset_kwargs,
    feature         = 'inception',  # Extractor name, path or URL.
    components      = 7,            # Number of Gaussian components M.
    pca             = 0.98,         # PCA setting (parse_pca). None = disable.
    reg_covar       = 1e-6,         # GMM covariance regularisation.
    seed            = 0,            # GMM initialisation seed.
    max_images      = None,         # Fit on at most N images (seeded subset). None = all.
    holdout         = 0.1,          # Fraction held out for the reference log-likelihoods; 0 = none (v1).
    batch           = 64,           # Images per feature batch.
    device          = None,         # None = cuda:<rank> when available, else cpu.
    cache_dir       = None,         # Folder of cached prior files. None = <dnnlib cache>/priors.
    rank            = 0,            # This process.
    num_gpus        = 1,            # Number of processes taking part.
    feature_kwargs  = {},           # Extra build_extractor() arguments.
    covariance_type = 'full',       # GMM covariance type.
    tol             = 1e-3,         # EM tolerance.
    max_iter        = 100,          # Most EM iterations.
    n_init          = 1,            # EM restarts.
    grid            = True,         # Also write <cache file>-components.png when building.
    progress        = None,         # metric_utils.ProgressMonitor for the feature pass. None = silent.
):
    device = features_module.resolve_device(device, rank)
    identity = dataset_identity(dataset_kwargs)
    settings = dict(components=int(components), pca=parse_pca(pca), reg_covar=float(reg_covar), seed=int(seed),
                    max_images=None if max_images is None else int(max_images), covariance_type=covariance_type,
                    tol=float(tol), max_iter=int(max_iter), n_init=int(n_init), holdout=float(holdout))
    feature_id = feature.spec if isinstance(feature, features_module.FeatureExtractor) else dict(name=feature, **feature_kwargs)
    key = dict(format_version=FORMAT_VERSION, feature=feature_id, settings=settings, dataset=built_files.identity_key(identity))
    feature_tag = feature_id['name'] if not features_module.is_file_spec(str(feature_id['name'])) else \
        metric_utils.get_feature_detector_name(feature_id['name'])
    folder = cache_dir if cache_dir is not None else dnnlib.make_cache_dir_path('priors')
    path = built_files.cache_file(folder, identity['name'], feature_tag, built_files.cache_digest(key))

    def build(path):
        grid_path = os.path.splitext(path)[0] + '-components.png' if grid else None
        return build_prior_file(path, dataset_kwargs, feature=feature, feature_kwargs=feature_kwargs, grid_path=grid_path,
                                device=device, num_gpus=num_gpus, rank=rank, batch=batch, progress=progress, **settings)
    load = lambda path: load_prior(path, expect_dataset=identity, expect_feature=feature, device=device)
    return built_files.get_or_build(path, build, load, rank=rank, num_gpus=num_gpus, device=device)

#----------------------------------------------------------------------------
# Load and validate a prior file. expect_dataset: None (no check), dataset
# kwargs, a dataset object or a dataset_identity() dict; expect_feature: None,
# an extractor name / path / URL, or a FeatureExtractor (then its dimension is
# checked too). Raises PriorFileError with the file, what it was built for,
# what was expected and the fix.

def load_prior(path, expect_dataset=None, expect_feature=None, device='cpu'):
    path = os.fspath(path)
    record = built_files.load_record(path, FILE_FORMAT, fix=f'rebuild it with build_prior.py --data=DATASET --feature=NAME --out={path}',
                                     missing_fix=f'build it with build_prior.py --data=DATASET --feature=NAME --out={path}')
    prior = PriorFile(record, path)
    if expect_feature is not None:
        _check_feature(prior, expect_feature)
    if expect_dataset is not None:
        _check_dataset(prior, expect_dataset)
    return prior.to(device)

# Name and dimension of the extractor that a run uses, as stored in prior files.
def _feature_name(feature):
    if isinstance(feature, features_module.FeatureExtractor):
        return feature.name
    name = str(feature)
    if features_module.is_file_spec(name):
        stem = metric_utils.get_feature_detector_name(name)
        return 'inception' if stem == metric_utils.get_feature_detector_name(metric_utils.INCEPTION_URL) else stem
    return name

def _check_feature(prior, feature):
    name = _feature_name(feature)
    dim = feature.feature_dim if isinstance(feature, features_module.FeatureExtractor) else None
    built = prior.extractor
    if name != built['name'] or (dim is not None and dim != built['feature_dim']):
        want = f'"{name}"' + (f' ({dim}-d)' if dim is not None else '')
        raise PriorFileError(f"Prior file '{prior.path}' was built with feature extractor \"{built['name']}\" ({built['feature_dim']}-d) "
                             f"but this run uses {want}; rebuild it with build_prior.py --data={prior.dataset['path']} "
                             f"--feature={name} --out={prior.path}, or use the extractor it was built with, \"{built['name']}\"")

def _check_dataset(prior, expected):
    expected = built_files.as_identity(expected)
    fix = (f"rebuild it with build_prior.py --data={expected['path']} --feature={prior.extractor['name']} "
           f"--out={prior.path}{' --mirror=1' if expected['xflip'] else ''}")
    built_files.check_dataset(FILE_FORMAT, prior.path, prior.dataset, expected, fix,
                              selection_why=', so its per-image components do not match')
    num_assigned = int(prior.assignments().numel())
    if num_assigned != expected['num_images']:
        raise PriorFileError(f"Prior file '{prior.path}' gives a component to {num_assigned} of the {expected['num_images']} training "
                             f"images (format {prior.format_version} files built with a max_images limit cover only the images "
                             f"fitted on), so the resampling cannot weight every image; {fix}")

#----------------------------------------------------------------------------
# A loaded prior: the fitted PCA + GMM as modules, and the real-data
# statistics. Use load_prior() to get one; `record` is the raw file content.

class PriorFile:
    def __init__(self, record, path=None):
        self.record = record
        self.path = path
        self.format_version = int(record['format_version'])
        self.extractor = dict(record['extractor'])
        self.dataset = dict(record['dataset'])
        self.settings = dict(record['settings'])
        self.num_images = int(record['num_images'])
        self.pca = None
        if record['pca'] is not None:
            self.pca = PCA(**record['pca']['kwargs'])
            self.pca.load_state_dict(record['pca']['state_dict'])
        self.gmm = GaussianMixture(**record['gmm']['kwargs'])
        self.gmm.load_state_dict(record['gmm']['state_dict'])
        self.pca_dim = self.gmm.n_features_in_
        self.num_components = int(self.gmm.n_components)
        self.real_loglik_sorted = record['real_loglik']['sorted'].to(torch.float64)

    # Where the reference log-likelihoods (theta, QS) come from: 'heldout' reals, or 'fit' reals (format 1, holdout 0).
    @property
    def reference_source(self):
        return self.record['real_loglik'].get('source', 'fit')

    # Role of each dataset item: ROLE_FIT, ROLE_HELDOUT or ROLE_UNUSED, uint8 [N] (format 1: all fit).
    @property
    def roles(self):
        split = self.record.get('split')
        if split is None:
            return torch.full([self.num_images], ROLE_FIT, dtype=torch.uint8)
        return split['roles']

    @property
    def feature_name(self):
        return self.extractor['name']

    @property
    def feature_dim(self):
        return int(self.extractor['feature_dim'])

    def to(self, device):
        device = torch.device(device)
        if self.pca is not None:
            self.pca.to(device)
        self.gmm.to(device)
        self.real_loglik_sorted = self.real_loglik_sorted.to(device)
        return self

    # Per-image components of the real images (dataset items 0 .. num_images-1; format 1 with max_images: the fitted ones): int64 [N].
    def assignments(self, rule='nearest'):
        return self.record['assignments'][_check_rule(rule)]

    # Real component frequencies f^r: float64 [M].
    def real_freqs(self, rule='nearest'):
        return self.record['real_freqs'][_check_rule(rule)]

    # Extractor features [N, D] -> GMM space [N, pca_dim], differentiable.
    def project(self, features):
        if features.ndim != 2 or features.shape[1] != self.feature_dim:
            raise ValueError(f"Prior '{self.path}' expects [N, {self.feature_dim}] features of extractor "
                             f"\"{self.feature_name}\", got shape {list(features.shape)}")
        return self.pca.transform(features) if self.pca is not None else features

    # log p(x | lambda) of Eq. 3 for extractor features: [N], differentiable, dtype of `features`.
    def log_prob(self, features):
        return self.gmm.log_prob(self.project(features))

    # Component of each feature vector: int64 [N] ('nearest' = §3.3, 'argmax' = largest responsibility).
    def assign(self, features, rule='nearest'):
        z = self.project(features)
        return self.gmm.nearest_component(z) if _check_rule(rule) == 'nearest' else self.gmm.predict(z)

    # Share of each component among assignments: float64 [M].
    def frequencies(self, assignments):
        return component_frequencies(assignments, self.num_components)

    # Fraction of reference real images (held out, see reference_source) whose log-likelihood is <= each value:
    # float64 in [0, 1], shape of `loglik`.
    def percentile_rank(self, loglik):
        values = torch.as_tensor(loglik, dtype=torch.float64, device=self.real_loglik_sorted.device)
        return torch.searchsorted(self.real_loglik_sorted, values, right=True).to(torch.float64) / self.real_loglik_sorted.numel()

    # Reference real log-likelihood at quantile q in [0, 1] (linear interpolation), e.g. theta of Eq. 5.
    def loglik_quantile(self, q):
        if not 0 <= q <= 1:
            raise ValueError(f'loglik_quantile: q must be in [0, 1], got {q!r}')
        values = self.real_loglik_sorted
        pos = float(q) * (values.numel() - 1)
        lo = int(np.floor(pos))
        hi = min(lo + 1, values.numel() - 1)
        return float(values[lo] + (values[hi] - values[lo]) * (pos - lo))

    # Grid of real images per component (paper Figure 2) as PNG.
    def save_component_grid(self, path, dataset_kwargs, rule='nearest', per_component=8, seed=0, cell_size=None):
        dataset = dnnlib.util.construct_class_by_name(**dataset_kwargs)
        return pictures.component_grid(dataset, self.assignments(rule).numpy(), self.real_freqs(rule).numpy(), path,
                                       per_component=per_component, seed=seed, cell_size=cell_size)

    def __repr__(self):
        return (f'PriorFile({self.path!r}: {self.feature_name} {self.feature_dim}-d -> PCA {self.pca_dim}-d, '
                f'{self.num_components} components, {self.num_images} images of {self.dataset["name"]!r})')

def _check_rule(rule):
    if rule not in ASSIGN_RULES:
        raise ValueError(f'Assignment rule must be one of {", ".join(ASSIGN_RULES)}, got {rule!r}')
    return rule

#----------------------------------------------------------------------------
