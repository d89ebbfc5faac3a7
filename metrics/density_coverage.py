"""Density and coverage, from "Reliable Fidelity and Diversity Metrics for Generative Models" (Naeem et al., ICML 2020), on the VGG16 features of precision/recall.

With real features X (N of them), generated features Y (M), and r_i the
distance from X_i to its k-th nearest real neighbour (X_i itself not counted):
  density  = 1 / (k M) * sum_j sum_i 1[ ||Y_j - X_i|| < r_i ]      (Eq. 4 of the paper)
  coverage = 1 / N     * sum_i 1[ exists j: ||Y_j - X_i|| < r_i ]   (Eq. 5)
Density is unbounded (1 on average when Y is distributed like X); coverage
lies in [0, 1] and for Y distributed like X with M = N it is about
1 - 1/2^k. Balls are open (strict <), as in the paper's formulas.
"""

import torch

from . import metric_utils
from . import precision_recall

#----------------------------------------------------------------------------

def density_coverage(real_features, gen_features, nhood_size, row_batch_size, col_batch_size, num_gpus=1, rank=0):
    """Density and coverage of generated features against real ones.

    Real points are the columns; each rank handles its share of column
    batches and the counts are summed over ranks.

    Args:
        real_features: [N, F] float tensor; gen_features: [M, F] float tensor (same on all ranks); N > nhood_size.
    Returns:
        (density, coverage) floats, on every rank.
    """
    real = real_features.to(torch.float32)
    gen = gen_features.to(torch.float32)
    radii = precision_recall.kth_neighbour_distances(real, nhood_size, row_batch_size, col_batch_size, num_gpus, rank)
    hits = torch.zeros([], dtype=torch.float64, device=real.device)                 # sum_j sum_i 1[...]
    covered = torch.zeros([real.shape[0]], dtype=torch.float32, device=real.device)  # per real point: any hit
    for rows in gen.split(row_batch_size):
        for lo, cols in precision_recall._my_column_batches(real, col_batch_size, num_gpus, rank):  # pylint: disable=protected-access
            inside = torch.cdist(rows, cols) < radii[lo:lo + cols.shape[0]]  # [rows, cols]
            hits += inside.sum(dtype=torch.float64)
            covered[lo:lo + cols.shape[0]] = torch.maximum(covered[lo:lo + cols.shape[0]], inside.any(dim=0).to(torch.float32))
    if num_gpus > 1:
        torch.distributed.all_reduce(hits)
        torch.distributed.all_reduce(covered, op=torch.distributed.ReduceOp.MAX)
    density = float(hits) / (nhood_size * gen.shape[0])
    coverage = float(covered.to(torch.float64).mean())
    return density, coverage

#----------------------------------------------------------------------------
# Density and coverage between max_real reals and num_gen generated images,
# with the feature requests of precision/recall (so a run with both embeds
# the images once).

def compute_dc(opts, max_real, num_gen, nhood_size, row_batch_size, col_batch_size):
    stats = metric_utils.get_feature_stats(opts, precision_recall.pr_requests(opts, max_real, num_gen))
    real = stats['real'].get_all_torch().to(opts.device)
    gen = stats['gen'].get_all_torch().to(opts.device)
    return density_coverage(real, gen, nhood_size, row_batch_size, col_batch_size, opts.num_gpus, opts.rank)

#----------------------------------------------------------------------------
