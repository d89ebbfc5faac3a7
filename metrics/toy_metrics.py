"""Toy lab metrics on 2-D points: exact W1 (EMD), modes covered, high-quality fraction, KL of the mode histogram and DDS with the true modes.

Definitions (N generated points g_n, N data points x_n, true modes k with
centre mu_k, std sigma_k and weight pi_k; 3 sigma is the quality radius):

    EMD      W1 between the two empirical distributions with Euclidean cost:
             min over permutations s of (1/N) sum_n ||g_n - x_s(n)||, solved exactly
             by the Hungarian method (Goerttler & Kloft Fig. 2/4; spec §2.6.11).
    modes    number of modes k with at least 1 % of the generated points within
             3 sigma_k of mu_k (the usual toy-GAN coverage count).
    hq       fraction of generated points within 3 sigma_k of some mode k.
    kl       KL(f_g || pi) = sum_k f_g,k log(f_g,k / pi_k), where f_g is the
             histogram of generated points over their nearest mode (distance
             in units of sigma_k); the direction of Che et al.'s #Miss/KL
             table (spec §3.6.12). It stays finite when modes are missed.
    dds      sum_k |pi_k - f_g,k|, PriorGAN's Eq. 7 with the true modes in place
             of the mixture components and nearest-centre assignment (§3.3).

Data points are fresh draws from the true mixture for the built-in sets
(not the training points), and a seeded choice of training points for a user
point set; generated points come from the metric sampler (per-sample seeds), through the snapshot's sample-time transform
when it has one (training/sampling.py).
"""

import copy

import numpy as np
import scipy.optimize
import scipy.spatial.distance
import torch

import dnnlib
from training import sampling
from . import metric_utils

NUM_POINTS = 2000  # generated and data points of the registered toy2k metric

#----------------------------------------------------------------------------
# Pure functions (float64 numpy).

def w1_exact(a, b):
    """Exact 1-Wasserstein distance between two equally sized point clouds with uniform weights.

    Args:
        a: [N, D] float array.
        b: [N, D] float array.
    Returns:
        float: min over one-to-one matchings of the mean Euclidean distance.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or a.shape != b.shape or a.shape[0] < 1:
        raise ValueError(f'w1_exact: need two [N, D] arrays of the same shape, got {list(a.shape)} and {list(b.shape)}')
    cost = scipy.spatial.distance.cdist(a, b)                   # [N, N]
    rows, cols = scipy.optimize.linear_sum_assignment(cost)
    return float(cost[rows, cols].mean())

def std_distances(points, centres, stds):
    """Distance of every point to every mode centre in units of the mode's std.

    Args:
        points: [N, 2] float array; centres: [K, 2]; stds: [K] (> 0).
    Returns:
        [N, K] float64 array ||p_n - mu_k|| / sigma_k.
    """
    diff = np.asarray(points, dtype=np.float64)[:, None, :] - np.asarray(centres, dtype=np.float64)[None]  # [N, K, 2]
    return np.sqrt(np.square(diff).sum(axis=2)) / np.asarray(stds, dtype=np.float64)[None]

def mode_scores(points, centres, stds, weights, radius=3.0, min_share=0.01):
    """Mode statistics of generated points against known modes.

    Args:
        points: [N, 2] generated points; centres: [K, 2]; stds: [K]; weights: [K] true mode frequencies (sum 1).
        radius: quality radius in stds (3). min_share: share of the points a mode needs to count as covered (1 %).
    Returns:
        dict(modes=int, hq=float, kl=float, dds=float, within=[K] float64 share of points within the radius
        of each mode, hist=[K] float64 nearest-mode histogram f_g).
    """
    weights = np.asarray(weights, dtype=np.float64)
    dist = std_distances(points, centres, stds)                                 # [N, K]
    within = (dist <= radius).mean(axis=0)                                      # [K]
    hist = np.bincount(dist.argmin(axis=1), minlength=len(weights)) / len(dist) # [K]
    nonzero = hist > 0
    return dict(
        modes   = int((within >= min_share).sum()),
        hq      = float((dist.min(axis=1) <= radius).mean()),
        kl      = float(np.sum(hist[nonzero] * np.log(hist[nonzero] / weights[nonzero]))),
        dds     = float(np.abs(weights - hist).sum()),
        within  = within,
        hist    = hist,
    )

#----------------------------------------------------------------------------
# Points of G: num seeded samples (metric_utils.LatentSampler), float64 [num, 2].

def generate_points(opts, num, batch=1000):
    G = copy.deepcopy(opts.G).eval().requires_grad_(False).to(opts.device)
    transform = sampling.load_sample_transform(opts.snapshot, enabled=opts.prior_sampling, G=G)
    sampler = metric_utils.LatentSampler(G, opts.seed, G_kwargs=opts.G_kwargs, dataset_kwargs=opts.dataset_kwargs, device=opts.device,
                                         transform=transform)
    with torch.no_grad():
        chunks = [sampler.generate(list(range(lo, min(lo + batch, num))), batch_gen=batch) for lo in range(0, num, batch)]
    img = torch.cat(chunks)
    if list(img.shape[1:]) != [2, 1, 1]:
        raise ValueError(f'toy metrics need a generator of 2-D points ([N, 2, 1, 1] outputs), got {list(img.shape[1:])}; '
                         f'use them with --cfg=toy runs on toy data')
    return img.reshape(num, 2).to(torch.float64).cpu().numpy()

# The toy dataset of the options, with a clear error for image datasets.
def open_toy_dataset(opts):
    dataset = dnnlib.util.construct_class_by_name(**dict(opts.dataset_kwargs, max_size=None, xflip=False))
    if not hasattr(dataset, 'fresh_points'):
        raise ValueError(f'toy metrics need toy data (--data=toy:NAME or an .npy/.csv point set), but the dataset is '
                         f'{opts.dataset_kwargs.get("class_name")} "{dataset.name}"')
    return dataset

#----------------------------------------------------------------------------
# The registered metric body: every score of `num` generated against `num` data points.
# Mode scores are NaN for a user point set without a .modes.json side file.

def compute_toy_scores(opts, num):
    dataset = open_toy_dataset(opts)
    real = dataset.fresh_points(num, seed=opts.seed)
    gen = generate_points(opts, num)
    scores = dict(emd=w1_exact(gen, real), modes=np.nan, hq=np.nan, kl=np.nan, dds=np.nan)
    modes = dataset.toy_modes
    if modes is not None:
        found = mode_scores(gen, modes.centres, modes.stds, modes.weights)
        scores.update({k: found[k] for k in ('modes', 'hq', 'kl', 'dds')})
    return scores

#----------------------------------------------------------------------------
