"""Precision and recall, from "Improved Precision and Recall Metric for Assessing Generative Models" (Kynkaanniemi et al., 2019)."""

import torch

from . import metric_utils

#----------------------------------------------------------------------------
# Features PR needs: all VGG16 features of max_real reals and num_gen generated images.

def pr_requests(opts, max_real, num_gen):
    detector_kwargs = dict(return_features=True)
    return dict(
        real=metric_utils.dataset_request(opts, metric_utils.VGG16_URL, detector_kwargs, max_items=max_real, capture_all=True),
        gen=metric_utils.generator_request(opts, metric_utils.VGG16_URL, detector_kwargs, num_gen=num_gen, capture_all=True))

#----------------------------------------------------------------------------
# Column batches of `features` that this rank handles: (first column, batch).

def _my_column_batches(features, col_batch_size, num_gpus, rank):
    for i, batch in enumerate(features.split(col_batch_size)):
        if i % num_gpus == rank:
            yield i * col_batch_size, batch

#----------------------------------------------------------------------------

def compute_distances(row_features, col_features, num_gpus=1, rank=0, col_batch_size=10000):
    """Euclidean distances between all rows and columns, column batches shared out over ranks.

    Args:
        row_features: [R, F] float tensor; col_features: [C, F] float tensor (same on all ranks).
    Returns:
        [R, C] float32 tensor, on every rank.
    """
    rows = row_features.to(torch.float32)
    cols = col_features.to(torch.float32)
    num_cols = cols.shape[0]
    chunk = col_batch_size * num_gpus
    padded = -(-num_cols // chunk) * chunk
    cols = torch.cat([cols, cols.new_zeros([padded - num_cols, cols.shape[1]])])
    mine = [torch.cdist(rows, batch) for _, batch in _my_column_batches(cols, col_batch_size, num_gpus, rank)]
    if num_gpus == 1:
        return torch.cat(mine, dim=1)[:, :num_cols]
    gathered = []
    for dist in mine:  # round j holds column batch j * num_gpus + r from rank r
        parts = [torch.empty_like(dist) for _ in range(num_gpus)]
        torch.distributed.all_gather(parts, dist.contiguous())
        gathered.extend(parts)
    return torch.cat(gathered, dim=1)[:, :num_cols]

#----------------------------------------------------------------------------

def kth_neighbour_distances(features, nhood_size, row_batch_size, col_batch_size, num_gpus=1, rank=0):
    """Distance from each point to its nhood_size-th nearest neighbour (the point itself counts as the 0-th).

    Args:
        features: [N, F] float tensor (same on all ranks), N > nhood_size.
    Returns:
        [N] float32 tensor, on every rank.
    """
    features = features.to(torch.float32)
    keep = nhood_size + 1
    if features.shape[0] < keep:
        raise ValueError(f'precision/recall: need more than nhood_size={nhood_size} points, got {features.shape[0]}')
    radii = []
    for rows in features.split(row_batch_size):
        # Keep the `keep` smallest distances seen so far in this rank's columns.
        best = rows.new_full([rows.shape[0], keep], float('inf'))
        for _, cols in _my_column_batches(features, col_batch_size, num_gpus, rank):
            candidates = torch.cat([best, torch.cdist(rows, cols)], dim=1)
            best = candidates.topk(keep, dim=1, largest=False).values
        if num_gpus > 1:
            parts = [torch.empty_like(best) for _ in range(num_gpus)]
            torch.distributed.all_gather(parts, best)
            best = torch.cat(parts, dim=1)
        radii.append(best.kthvalue(keep, dim=1).values)
    return torch.cat(radii)

#----------------------------------------------------------------------------

def manifold_coverage(manifold, probes, nhood_size, row_batch_size, col_batch_size, num_gpus=1, rank=0):
    """Fraction of probes that lie within the k-NN radius of at least one manifold point.

    Args:
        manifold: [M, F] float tensor; probes: [P, F] float tensor (same on all ranks).
    Returns:
        float.
    """
    radii = kth_neighbour_distances(manifold, nhood_size, row_batch_size, col_batch_size, num_gpus, rank)
    manifold = manifold.to(torch.float32)
    covered = []
    for rows in probes.to(torch.float32).split(row_batch_size):
        hit = torch.zeros([rows.shape[0]], dtype=torch.bool, device=rows.device)
        for lo, cols in _my_column_batches(manifold, col_batch_size, num_gpus, rank):
            hit |= (torch.cdist(rows, cols) <= radii[lo:lo + cols.shape[0]]).any(dim=1)
        if num_gpus > 1:
            hit = hit.to(torch.float32)
            torch.distributed.all_reduce(hit, op=torch.distributed.ReduceOp.MAX)
            hit = hit > 0
        covered.append(hit)
    return float(torch.cat(covered).to(torch.float64).mean())

#----------------------------------------------------------------------------
# Precision = coverage of fakes by the real manifold; recall = coverage of reals by the fake manifold.

def precision_recall(real_features, gen_features, nhood_size, row_batch_size, col_batch_size, num_gpus=1, rank=0):
    precision = manifold_coverage(real_features, gen_features, nhood_size, row_batch_size, col_batch_size, num_gpus, rank)
    recall = manifold_coverage(gen_features, real_features, nhood_size, row_batch_size, col_batch_size, num_gpus, rank)
    return precision, recall

#----------------------------------------------------------------------------
# PR between max_real reals and num_gen generated images, computed by all ranks together.

def compute_pr(opts, max_real, num_gen, nhood_size, row_batch_size, col_batch_size):
    stats = metric_utils.get_feature_stats(opts, pr_requests(opts, max_real, num_gen))
    real = stats['real'].get_all_torch().to(opts.device)
    gen = stats['gen'].get_all_torch().to(opts.device)
    return precision_recall(real, gen, nhood_size, row_batch_size, col_batch_size, opts.num_gpus, opts.rank)

#----------------------------------------------------------------------------
