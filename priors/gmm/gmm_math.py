"""Pure tensor functions for Gaussian mixture models fitted by EM: densities, E-step, M-step, Cholesky helpers, k-means++ (PriorGAN, Gu et al., Eq. 3-4)."""

import math

import torch

# Conventions shared by every function below.
# - x: [N, d] samples; weights: [M]; means: [M, d].
# - covariance_type 'full': covariances and precisions_chol are [M, d, d]; 'diag': they are [M, d].
# - precisions_chol holds, per component, the upper-triangular U with U @ U.T = inverse(covariance),
#   as in scikit-learn, so that the Mahalanobis term is |(x - mean) @ U|^2 and log det(U) = -log det(cov) / 2.
# - Sample-sized temporaries ([rows, M, d] or [rows, d]) are built in chunks within an element budget
#   (chunk_rows()), so nothing of size [N, M, d] or [N, M, d, d] is ever allocated.

COVARIANCE_TYPES = ('full', 'diag')
_CHUNK_ELEMS = 1 << 23       # Largest chunked temporary on accelerators, in elements (64 MiB in float64).
_CHUNK_ELEMS_CPU = 1 << 18   # On the CPU: small chunks are reused by malloc instead of being mapped afresh
                             # (and page-faulted) each time, which makes the E- and M-steps about 2x faster.

#----------------------------------------------------------------------------
# Number of sample rows per chunk so that a [rows, num_components, num_features]
# temporary stays within the element budget (by default, the one of `device`).

def chunk_rows(num_components, num_features, max_elems=None, device=None):
    if max_elems is None:
        is_cpu = device is None or torch.device(device).type == 'cpu'
        max_elems = _CHUNK_ELEMS_CPU if is_cpu else _CHUNK_ELEMS
    return max(1, int(max_elems) // max(1, int(num_components) * int(num_features)))

#----------------------------------------------------------------------------
# Reject a covariance type other than the supported ones.

def check_covariance_type(covariance_type):
    if covariance_type not in COVARIANCE_TYPES:
        raise ValueError(f'covariance_type must be one of {", ".join(COVARIANCE_TYPES)}, got {covariance_type!r}')

#----------------------------------------------------------------------------
# Yield (start, stop) row ranges covering n rows.

def _row_chunks(n, rows):
    for start in range(0, n, rows):
        yield start, min(start + rows, n)

#----------------------------------------------------------------------------
# Squared Euclidean distances from every sample to every centre, expanded as
# |x|^2 - 2 x.c + |c|^2 so that the work is one matrix product (k-means over
# 50k x 256 features stays fast). The cancellation error, about 1e-16 times
# |x|^2 in float64, only matters for near-ties, and is clamped at zero.

def squared_distances(x, centres):
    """Squared Euclidean distances between samples and centres.

    Args:
        x:       [N, d] float samples.
        centres: [K, d] float centres, same dtype and device.

    Returns:
        [N, K] tensor of squared distances (>= 0), dtype of `x`.
    """
    dists = x.square().sum(dim=1, keepdim=True) - 2 * (x @ centres.T) + centres.square().sum(dim=1)[None]
    return dists.clamp(min=0)

#----------------------------------------------------------------------------
# The paper's assignment rule (Sec. 3.3): index of the nearest centre in
# Euclidean distance, first one on ties.

def nearest_centres(x, centres):
    """Index of the nearest centre of each sample.

    Args:
        x:       [N, d] float samples.
        centres: [K, d] float centres.

    Returns:
        [N] int64 indices in [0, K).
    """
    return squared_distances(x, centres).argmin(dim=1)

#----------------------------------------------------------------------------
# Log-determinant of each Cholesky factor: the sum of the logs of its diagonal.

def log_det_from_cholesky(precisions_chol, covariance_type='full'):
    """log det(U) per component; equals -log det(covariance) / 2.

    Args:
        precisions_chol: [M, d, d] ('full') or [M, d] ('diag') float.

    Returns:
        [M] tensor, dtype of `precisions_chol`.
    """
    check_covariance_type(covariance_type)
    if covariance_type == 'full':
        return precisions_chol.diagonal(dim1=-2, dim2=-1).log().sum(dim=-1)
    return precisions_chol.log().sum(dim=-1)

#----------------------------------------------------------------------------
# Per-component Gaussian log-densities log N(x | mean_m, cov_m) (the summands
# of Eq. 3 before the weights).

def component_log_prob(x, means, precisions_chol, covariance_type='full', max_elems=None):
    """Log-density of every sample under every component.

    Args:
        x:               [N, d] float samples.
        means:           [M, d] float component means.
        precisions_chol: [M, d, d] ('full') or [M, d] ('diag') Cholesky factors of the precisions.

    Returns:
        [N, M] tensor, dtype of the inputs. Differentiable with respect to all inputs.
    """
    check_covariance_type(covariance_type)
    num_components, num_features = means.shape
    parts = []
    if covariance_type == 'full':
        # One matrix product per component and chunk: faster than a batched product on the CPU.
        for a, b in _row_chunks(x.shape[0], chunk_rows(1, num_features, max_elems, x.device)):
            cols = [((x[a:b] - means[k]) @ precisions_chol[k]).square().sum(dim=1) for k in range(num_components)]
            parts.append(torch.stack(cols, dim=1))                            # [C, M]
    else:
        for a, b in _row_chunks(x.shape[0], chunk_rows(num_components, num_features, max_elems, x.device)):
            diff = x[a:b, None, :] - means[None]                              # [C, M, d]
            parts.append((diff * precisions_chol[None]).square().sum(dim=2))  # [C, M]
    mahalanobis = torch.cat(parts, dim=0) if parts else x.new_zeros([0, num_components])
    log_det = log_det_from_cholesky(precisions_chol, covariance_type)
    return log_det[None] - 0.5 * (num_features * math.log(2 * math.pi) + mahalanobis)

#----------------------------------------------------------------------------
# log(w_m) + log N(x | mean_m, cov_m): the joint log-density of a sample and
# its component.

def weighted_log_prob(x, weights, means, precisions_chol, covariance_type='full', max_elems=None):
    """Joint log-density of samples and components.

    Args:
        x: [N, d]; weights: [M] (summing to 1); means: [M, d]; precisions_chol: see component_log_prob().

    Returns:
        [N, M] tensor, dtype of the inputs.
    """
    return component_log_prob(x, means, precisions_chol, covariance_type, max_elems) + weights.log()[None]

#----------------------------------------------------------------------------
# Eq. 3 of the paper: log p(x | lambda) = log sum_m w_m N(x | mean_m, cov_m).

def gmm_log_prob(x, weights, means, precisions_chol, covariance_type='full', max_elems=None):
    """Log-likelihood of each sample under the mixture.

    Args:
        x:               [N, d] float samples.
        weights:         [M] mixture weights (summing to 1).
        means:           [M, d] component means.
        precisions_chol: [M, d, d] ('full') or [M, d] ('diag') Cholesky factors of the precisions.

    Returns:
        [N] tensor, dtype of the inputs. Differentiable with respect to all inputs.
    """
    return torch.logsumexp(weighted_log_prob(x, weights, means, precisions_chol, covariance_type, max_elems), dim=1)

#----------------------------------------------------------------------------
# E-step: per-sample log-likelihood and log-responsibilities log p(m | x).

def estimate_log_resp(x, weights, means, precisions_chol, covariance_type='full', max_elems=None):
    """E-step of EM.

    Args:
        x: [N, d]; weights: [M]; means: [M, d]; precisions_chol: see component_log_prob().

    Returns:
        log_norm: [N] log-likelihood of each sample (Eq. 3).
        log_resp: [N, M] log-responsibilities; exp(log_resp) sums to 1 over M.
    """
    joint = weighted_log_prob(x, weights, means, precisions_chol, covariance_type, max_elems)
    log_norm = torch.logsumexp(joint, dim=1)
    return log_norm, joint - log_norm[:, None]

#----------------------------------------------------------------------------
# M-step: maximum-likelihood weights, means and covariances for the given
# responsibilities. Each soft count gets 10 machine epsilons, so that an empty
# component yields a zero mean and a reg_covar * I covariance instead of NaNs
# (the same guard as scikit-learn).

def m_step(x, resp, reg_covar, covariance_type='full', max_elems=None):
    """M-step of EM.

    Args:
        x:         [N, d] float samples.
        resp:      [N, M] responsibilities (rows summing to 1, or one-hot for a hard assignment).
        reg_covar: float added to the diagonal of every covariance.

    Returns:
        weights:     [M], summing to 1.
        means:       [M, d].
        covariances: [M, d, d] ('full') or [M, d] ('diag'), reg_covar included.
        counts:      [M] soft sample counts (plus the epsilon guard).
    """
    check_covariance_type(covariance_type)
    num_samples, num_features = x.shape
    num_components = resp.shape[1]
    counts = resp.sum(dim=0) + 10 * torch.finfo(resp.dtype).eps
    means = (resp.T @ x) / counts[:, None]

    # Accumulate the centred second moments chunk by chunk; for 'full', one
    # matrix product per component (faster than a batched product on the CPU).
    if covariance_type == 'full':
        rows = chunk_rows(1, num_features, max_elems, x.device)
        per_component = []
        for k in range(num_components):
            second_moment = x.new_zeros([num_features, num_features])
            for a, b in _row_chunks(num_samples, rows):
                diff = x[a:b] - means[k]                                      # [C, d]
                second_moment.addmm_((diff * resp[a:b, k, None]).T, diff)
            per_component.append(second_moment)
        covariances = torch.stack(per_component)                              # [M, d, d]
    else:
        covariances = x.new_zeros([num_components, num_features])
        for a, b in _row_chunks(num_samples, chunk_rows(num_components, num_features, max_elems, x.device)):
            diff = x[None, a:b, :] - means[:, None, :]                        # [M, C, d]
            covariances = covariances + (diff.square() * resp[a:b].T[:, :, None]).sum(dim=1)

    # Normalise and regularise.
    if covariance_type == 'full':
        covariances = covariances / counts[:, None, None]
        covariances = covariances + reg_covar * torch.eye(num_features, dtype=x.dtype, device=x.device)
    else:
        covariances = covariances / counts[:, None] + reg_covar
    return counts / counts.sum(), means, covariances, counts

#----------------------------------------------------------------------------
# Error for a covariance that has no Cholesky factor: the cause first (which
# component, how many samples it owns), then the remedies.

def _singular_covariance_error(index, counts, reg_covar, dtype):
    owns, now_components, now_reg = '', '', ''
    if counts is not None:
        counts = counts.detach().double().cpu()
        owns = f' (it owns {float(counts[index]):.4g} of {float(counts.sum()):.4g} samples)'
        now_components = f' (now {len(counts)})'
    if reg_covar is not None:
        now_reg = f' (now {reg_covar:g})'
    remedies = [f'Lower n_components{now_components}', f'raise reg_covar{now_reg}', 'reduce the features with PCA']
    if dtype != torch.float64:
        remedies.append('fit in float64')
    return ValueError(f'GMM fit failed: component {index} has a singular covariance{owns}. '
                      f'{", ".join(remedies[:-1])}, or {remedies[-1]}.')

#----------------------------------------------------------------------------
# Cholesky factors of the precisions from the covariances: cov = L L^T gives
# U = inverse(L)^T, upper triangular, with U U^T = inverse(cov).

def cholesky_precisions(covariances, covariance_type='full', counts=None, reg_covar=None):
    """Cholesky factors of the precision matrices.

    Args:
        covariances: [M, d, d] ('full') or [M, d] ('diag') float, symmetric positive definite.
        counts:      optional [M] soft sample counts, only used in the error message.
        reg_covar:   optional float, only used in the error message.

    Returns:
        precisions_chol: same shape and dtype as `covariances`.

    Raises:
        ValueError naming the first component whose covariance is singular or not finite.
    """
    check_covariance_type(covariance_type)
    if covariance_type == 'full':
        chol, info = torch.linalg.cholesky_ex(covariances)
        bad = (info != 0) | ~torch.isfinite(chol).all(dim=-1).all(dim=-1)
    else:
        bad = ~((covariances > 0) & torch.isfinite(covariances)).all(dim=-1)
    if bool(bad.any()):
        raise _singular_covariance_error(int(bad.nonzero()[0, 0]), counts, reg_covar, covariances.dtype)
    if covariance_type == 'diag':
        return covariances.rsqrt()
    eye = torch.eye(covariances.shape[-1], dtype=covariances.dtype, device=covariances.device)
    return torch.linalg.solve_triangular(chol, eye.expand_as(chol), upper=False).transpose(-2, -1)

#----------------------------------------------------------------------------
# Cholesky factors straight from given precision matrices: with J the
# exchange matrix (reversal of rows and columns), J P J = L L^T gives the
# upper-triangular U = J L J with U U^T = P.

def cholesky_from_precisions(precisions, covariance_type='full'):
    """Cholesky factors of given precision matrices.

    Args:
        precisions: [M, d, d] ('full') or [M, d] ('diag') float, symmetric positive definite.

    Returns:
        precisions_chol: same shape and dtype as `precisions`.
    """
    check_covariance_type(covariance_type)
    if covariance_type == 'diag':
        if not bool((precisions > 0).all()):
            raise ValueError('precisions must be positive for covariance_type="diag"')
        return precisions.sqrt()
    chol, info = torch.linalg.cholesky_ex(precisions.flip(-2, -1))
    if bool((info != 0).any()):
        index = int((info != 0).nonzero()[0, 0])
        raise ValueError(f'precision matrix {index} is not symmetric positive definite; pass valid precisions')
    return chol.flip(-2, -1)

#----------------------------------------------------------------------------
# Covariances back from the Cholesky factors of the precisions:
# cov = inverse(U U^T) = inverse(U)^T inverse(U).

def covariances_from_cholesky(precisions_chol, covariance_type='full'):
    """Covariance matrices from the Cholesky factors of the precisions.

    Args:
        precisions_chol: [M, d, d] ('full') or [M, d] ('diag') float.

    Returns:
        covariances: same shape and dtype.
    """
    check_covariance_type(covariance_type)
    if covariance_type == 'diag':
        return precisions_chol.square().reciprocal()
    eye = torch.eye(precisions_chol.shape[-1], dtype=precisions_chol.dtype, device=precisions_chol.device)
    inv = torch.linalg.solve_triangular(precisions_chol, eye.expand_as(precisions_chol), upper=True)
    return inv.transpose(-2, -1) @ inv

#----------------------------------------------------------------------------
# Greedy k-means++ seeding (Arthur & Vassilvitskii 2007, with local trials):
# each new centre is the best of a few candidates drawn with probability
# proportional to the squared distance to the nearest chosen centre. Random
# numbers come from a CPU generator, so a seed gives the same centres on every
# device (up to float rounding of the distances).

def kmeans_plusplus(x, num_clusters, generator, num_local_trials=None):
    """k-means++ seeding.

    Args:
        x:                [N, d] float samples (any device).
        num_clusters:     K <= N.
        generator:        torch.Generator on the CPU.
        num_local_trials: candidates per centre; None = 2 + floor(log(K)).

    Returns:
        centres: [K, d] rows of `x`.
        indices: [K] int64 row indices into `x` (CPU).
    """
    num_samples = x.shape[0]
    if not 1 <= num_clusters <= num_samples:
        raise ValueError(f'kmeans_plusplus() needs 1 <= num_clusters <= number of samples ({num_samples}), '
                         f'got num_clusters={num_clusters}')
    trials = 2 + int(math.log(num_clusters)) if num_local_trials is None else int(num_local_trials)

    # First centre: uniform over the samples.
    first = int(torch.randint(num_samples, [1], generator=generator))
    indices = [first]
    closest = squared_distances(x, x[first:first + 1])[:, 0]      # [N]
    potential = closest.sum()

    # Next centres: best of `trials` candidates drawn proportionally to `closest`.
    for _ in range(1, num_clusters):
        draws = torch.rand([trials], generator=generator, dtype=torch.float64).to(x.device, x.dtype) * potential
        candidates = torch.searchsorted(closest.cumsum(dim=0), draws).clamp(max=num_samples - 1)
        new_closest = torch.minimum(closest[:, None], squared_distances(x, x[candidates]))  # [N, T]
        potentials = new_closest.sum(dim=0)
        best = int(potentials.argmin())
        indices.append(int(candidates[best]))
        closest, potential = new_closest[:, best], potentials[best]
    indices = torch.tensor(indices, dtype=torch.int64)
    return x[indices.to(x.device)], indices

#----------------------------------------------------------------------------
# Lloyd iterations from given centres, until no sample changes cluster or
# max_iter is reached. A cluster that loses all its samples keeps its centre.

def kmeans_lloyd(x, centres, max_iter=100):
    """Refine k-means centres.

    Args:
        x:        [N, d] float samples.
        centres:  [K, d] initial centres.
        max_iter: most Lloyd iterations.

    Returns:
        centres: [K, d] refined centres.
        labels:  [N] int64 index of the nearest refined centre of each sample.
    """
    num_clusters = centres.shape[0]
    labels = nearest_centres(x, centres)
    for _ in range(max_iter):
        sums = x.new_zeros(centres.shape).index_add_(0, labels, x)
        sizes = torch.bincount(labels, minlength=num_clusters).to(x.dtype)
        centres = torch.where(sizes[:, None] > 0, sums / sizes.clamp(min=1)[:, None], centres)
        new_labels = nearest_centres(x, centres)
        if torch.equal(new_labels, labels):
            break
        labels = new_labels
    return centres, labels

#----------------------------------------------------------------------------
# Let load_state_dict() fill an estimator whose fitted buffers have
# data-dependent shapes: each buffer of `module` whose incoming tensor has the
# same number of dims but another shape is replaced by an empty tensor of
# that shape (same dtype and device) before the values are copied in.

def resize_buffers_for_state(module, state_dict, prefix):
    for name, ours in list(module._buffers.items()):  # pylint: disable=protected-access
        theirs = state_dict.get(prefix + name)
        if ours is None or not isinstance(theirs, torch.Tensor):
            continue
        if theirs.ndim == ours.ndim and theirs.shape != ours.shape:
            module._buffers[name] = torch.empty(theirs.shape, dtype=ours.dtype, device=ours.device)  # pylint: disable=protected-access

#----------------------------------------------------------------------------
