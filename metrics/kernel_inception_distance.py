"""Kernel Inception Distance (KID), from "Demystifying MMD GANs" (Binkowski et al., 2018)."""

import numpy as np

from . import metric_utils

#----------------------------------------------------------------------------
# Features KID needs: all Inception pool features of max_real reals and
# num_gen generated images.

def kid_requests(opts, max_real, num_gen):
    detector_kwargs = dict(return_features=True)
    return dict(
        real=metric_utils.dataset_request(opts, metric_utils.INCEPTION_URL, detector_kwargs, max_items=max_real, capture_all=True),
        gen=metric_utils.generator_request(opts, metric_utils.INCEPTION_URL, detector_kwargs, num_gen=num_gen, capture_all=True))

#----------------------------------------------------------------------------

def kernel_distance(real_features, gen_features, num_subsets, max_subset_size, seed=0):
    """Unbiased squared MMD with the cubic polynomial kernel k(a, b) = (a.b / F + 1)^3,
    averaged over random subsets, in float64.

    Each subset takes m = min(#real, #gen, max_subset_size) rows of each set
    without replacement (numpy Generator seeded with `seed`).

    Args:
        real_features: [Nr, F] array.
        gen_features: [Ng, F] array.
    Returns:
        float.
    """
    real = np.asarray(real_features, np.float64)
    gen = np.asarray(gen_features, np.float64)
    num_features = real.shape[1]
    m = min(real.shape[0], gen.shape[0], max_subset_size)
    if m < 2:
        raise ValueError(f'kernel_distance: need at least 2 items per set, got {real.shape[0]} real and {gen.shape[0]} generated')
    rng = np.random.default_rng(seed)

    def kernel(a, b):
        return (a @ b.T / num_features + 1) ** 3

    total = 0.0
    for _ in range(num_subsets):
        x = gen[rng.choice(gen.shape[0], m, replace=False)]
        y = real[rng.choice(real.shape[0], m, replace=False)]
        k_same = kernel(x, x) + kernel(y, y)
        off_diagonal = k_same.sum() - np.trace(k_same)
        total += off_diagonal / (m * (m - 1)) - 2 * kernel(x, y).sum() / (m * m)
    return float(total / num_subsets)

#----------------------------------------------------------------------------
# KID between max_real reals and num_gen generated images (NaN on ranks other than 0).

def compute_kid(opts, max_real, num_gen, num_subsets, max_subset_size):
    stats = metric_utils.get_feature_stats(opts, kid_requests(opts, max_real, num_gen))
    if opts.rank != 0:
        return float('nan')
    return kernel_distance(stats['real'].get_all(), stats['gen'].get_all(), num_subsets, max_subset_size, seed=opts.seed)

#----------------------------------------------------------------------------
