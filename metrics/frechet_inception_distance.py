"""Frechet Inception Distance (FID), from "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium" (Heusel et al., 2017)."""

import numpy as np

from . import metric_utils

#----------------------------------------------------------------------------
# Features FID needs: mean and covariance of Inception pool features of
# max_real reals (None = all) and num_gen generated images.

def fid_requests(opts, max_real, num_gen):
    detector_kwargs = dict(return_features=True)  # 2048-D pool3 features
    return dict(
        real=metric_utils.dataset_request(opts, metric_utils.INCEPTION_URL, detector_kwargs, max_items=max_real, capture_mean_cov=True),
        gen=metric_utils.generator_request(opts, metric_utils.INCEPTION_URL, detector_kwargs, num_gen=num_gen, capture_mean_cov=True))

#----------------------------------------------------------------------------

def frechet_distance(mu1, sigma1, mu2, sigma2):
    """Frechet distance between two Gaussians, computed in float64.

    ||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2)). The trace of
    the matrix square root is taken as the sum of square roots of the eigenvalues
    of the symmetric PSD matrix s2 sigma1 s2 with s2 = sigma2^(1/2), which has the
    same spectrum as sigma1 sigma2 and avoids a non-symmetric sqrtm.

    Args:
        mu1, mu2: [F] means.
        sigma1, sigma2: [F, F] symmetric PSD covariances.
    Returns:
        float.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise ValueError(f'frechet_distance: shapes do not match: mu {mu1.shape}, {mu2.shape}; sigma {sigma1.shape}, {sigma2.shape}')

    # Square root of sigma2 from its eigendecomposition (tiny negative eigenvalues are round-off).
    evals2, evecs2 = np.linalg.eigh((sigma2 + sigma2.T) / 2)
    sqrt2 = (evecs2 * np.sqrt(np.clip(evals2, 0, None))) @ evecs2.T

    # Tr((sigma1 sigma2)^(1/2)) = sum of sqrt(eigenvalues of sqrt2 sigma1 sqrt2).
    inner = sqrt2 @ sigma1 @ sqrt2
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh((inner + inner.T) / 2), 0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean)

#----------------------------------------------------------------------------
# FID between max_real reals and num_gen generated images (NaN on ranks other than 0).

def compute_fid(opts, max_real, num_gen):
    stats = metric_utils.get_feature_stats(opts, fid_requests(opts, max_real, num_gen))
    if opts.rank != 0:
        return float('nan')
    mu_real, sigma_real = stats['real'].get_mean_cov()
    mu_gen, sigma_gen = stats['gen'].get_mean_cov()
    return frechet_distance(mu_gen, sigma_gen, mu_real, sigma_real)

#----------------------------------------------------------------------------
