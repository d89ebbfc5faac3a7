# The toy lab's one answer to "is this a toy run?" (docs/toy-lab.md).
#
# Toy data are 2-D points (training/toy_data.py); the toy networks are the papers' MLPs
# (training/toy_networks.py); the toy metrics and pictures are metrics/toy_metrics.py and
# training/toy_pictures.py. Every other module asks here rather than comparing class names itself.

import numpy as np
import torch

from training import toy_data

TOY_DATASET_CLASS = 'training.toy_data.ToyDataset'
TOY_NETWORKS_MODULE = 'training.toy_networks'

def is_toy_data(path):
    """True for a toy spec (`toy:NAME,...`) or a file of points (.npy, .csv)."""
    return toy_data.is_toy_spec(path)

def is_toy_networks(net_kwargs):
    """True when G_kwargs or D_kwargs (anything with a class_name) build one of the toy MLPs."""
    name = (net_kwargs or {}).get('class_name') or ''
    return name.startswith(TOY_NETWORKS_MODULE + '.')

def is_toy_run(c):
    """True for a training config (train.py's `c`) whose data are toy points."""
    data = c.get('training_set_kwargs') or {}
    return data.get('class_name') == TOY_DATASET_CLASS or is_toy_networks(c.get('G_kwargs'))

def is_toy_dataset(dataset):
    """True for a dataset object of toy points (training/toy_data.py)."""
    cls = type(dataset)
    return f'{cls.__module__}.{cls.__qualname__}' == TOY_DATASET_CLASS

#----------------------------------------------------------------------------
# Batches of toy points without torch's DataLoader: the sampler's indices for a whole batch at once and one numpy
# gather, instead of a Python call, a tensor and a collate per point (issue 18 item 6). The index sequence, the
# sampler's state and the batches are those of DataLoader(dataset, sampler=sampler, batch_size=n, num_workers=0).
#
# From an InfiniteSampler on one process it also takes several batches ahead (up to PREFETCH_INDICES indices, one
# sampler call and one gather for all of them) and hands them out one by one: the per-call cost of the two is most
# of what the batch fetch costs at toy batch sizes. The sampler's private RNG is the only one it draws from, so the
# batches are the same; a snapshot rewinds the sampler by the indices taken but not yet handed out, as it does for
# a DataLoader's prefetch (the training loop counts the consumed ones). Any other sampler, e.g. PriorGAN's
# resampler, whose weights change between batches, is read one batch at a time.

PREFETCH_INDICES = 2048  # within what InfiniteSampler.state_dict(num_unused) can rewind (its anchors are 4096 steps apart)

class ToyBatches:
    def __init__(self, dataset, sampler, batch_size):
        from torch_utils import misc
        self.dataset, self.batch_size = dataset, int(batch_size)
        self.indices = iter(sampler)
        bulk = type(self.indices) is misc._InfiniteSamplerIterator and self.indices.num_replicas == 1
        self.batches_ahead = max(1, PREFETCH_INDICES // self.batch_size) if bulk else 1
        self._ready = iter(())
        torch.empty((), dtype=torch.int64).random_()  # the one draw DataLoader's iterator takes (its base seed): same RNG stream

    def __iter__(self):
        return self

    def __next__(self):
        batch = next(self._ready, None)
        if batch is None:
            idx = take_indices(self.indices, self.batch_size * self.batches_ahead)
            points, labels = gather_points(self.dataset, idx)
            self._ready = zip(points.split(self.batch_size), labels.split(self.batch_size))
            batch = next(self._ready)
        return batch

# The next n indices of a sampler iterator. torch_utils.misc.InfiniteSampler's iterator on one process is stepped
# in bulk (its random draws in one call: numpy's RandomState.randint(w, size=n) equals n calls of randint(w));
# any other sampler one index at a time.
def take_indices(iterator, n):
    from torch_utils import misc
    if type(iterator) is not misc._InfiniteSamplerIterator or iterator.num_replicas != 1:
        return np.fromiter((next(iterator) for _ in range(n)), dtype=np.int64, count=n)
    it, out, k = iterator, np.empty(n, dtype=np.int64), 0
    while k < n:
        m = min(n - k, it._anchor_every - it.idx % it._anchor_every)  # up to the next rewind anchor
        L, start = it.length, it.idx
        if it.window >= 2:
            # The positions in bulk; the swaps, which must stay sequential, on a memoryview (plain Python ints,
            # a few times faster than numpy scalar indexing).
            order, taken = memoryview(it.order), []
            pos = (start + np.arange(m)) % L
            others = ((pos - it.rng.randint(it.window, size=m)) % L).tolist()
            for p, o in zip(pos.tolist(), others):
                item = order[p]
                taken.append(item)
                order[p] = order[o]
                order[o] = item
            out[k:k + m] = taken
        else:
            out[k:k + m] = it.order[(start + np.arange(m)) % L]
        it.idx += m
        it.num_yielded += m
        if it.idx % it._anchor_every == 0:
            it._add_anchor()
        k += m
    return out

# (points float32 [n, 2, 1, 1], labels [n, 0]) of dataset indices: one gather.
def gather_points(dataset, idx):
    raw = dataset._raw_idx[np.asarray(idx, dtype=np.int64)]
    points = torch.from_numpy(np.ascontiguousarray(dataset._points[raw].reshape(-1, 2, 1, 1)))
    return points, torch.zeros([len(raw), 0])
