"""PriorResampler: an endless, seeded index stream over the training images whose per-image weights a prior can change during training (PriorGAN resampling, Gu et al. 2020, §3.3).

The stream is indexed by a global step k = 0, 1, 2, ... shared by all
processes; rank r yields the steps k = r, r + R, r + 2R, ... (R = num_replicas),
as torch_utils.misc.InfiniteSampler does. The image at step k is a pure
function of (seed, k, the weights in effect at step k):

  uniform (no weights set yet)   a seeded shuffle per epoch: step k shows item
                                 perm_e[k mod N] of permutation e = k // N
  weights w (float64 [N], >= 0)  a draw from the categorical distribution w / sum(w),
                                 by inverse CDF of a seeded uniform u_k

set_weights(w) makes w take effect from the sampler's current position: the
next global step not yet handed out (the DataLoader may have pulled some
indices ahead of training; those keep the old weights). The sampler keeps the
history of (first step, weights) that a rewind can reach, so state_dict(num_unused)
rewinds the indices a DataLoader prefetched but training did not use, and a
resumed run replays exactly the same stream. Since the loop calls set_weights()
on every rank with the same weights after the same number of iterations, every
rank has the same history.
"""

import bisect
import typing

import numpy as np
import torch

#----------------------------------------------------------------------------

_BLOCK = 4096               # Steps per block of seeded uniforms.
_MAX_REWIND_STEPS = 1 << 16 # Global steps a state_dict(num_unused) may rewind (the loop rewinds a few thousand at most).

#----------------------------------------------------------------------------
# One entry of the weights history: the weights in effect from global step `step` on (None = the uniform
# stream), with their cumulative sums and the index of the last item of positive weight.

class WeightsEntry(typing.NamedTuple):
    step:           int                 # First global step of these weights.
    weights:        np.ndarray | None   # float64 [N], sum 1; None = the uniform stream.
    cdf:            np.ndarray | None   # Cumulative sums of weights.
    last_positive:  int | None          # Index of the last item with a positive weight.

#----------------------------------------------------------------------------
# Weights of one update, checked: float64 [N] normalised to sum 1; None stays None (= uniform stream).

def normalize_weights(weights, num_items):
    if weights is None:
        return None
    w = weights.detach().cpu().numpy() if isinstance(weights, torch.Tensor) else np.asarray(weights)
    if w.ndim != 1 or w.shape[0] != num_items:
        raise ValueError(f'PriorResampler.set_weights: expected one weight per dataset item, shape [{num_items}], got shape {list(w.shape)}')
    w = w.astype(np.float64)
    if not np.all(np.isfinite(w)):
        raise ValueError(f'PriorResampler.set_weights: the weights contain {int(np.sum(~np.isfinite(w)))} NaN or infinite values')
    if np.any(w < 0):
        raise ValueError(f'PriorResampler.set_weights: weights must be >= 0, got minimum {float(w.min()):g}')
    total = float(w.sum())
    if not total > 0:
        raise ValueError('PriorResampler.set_weights: all weights are 0; at least one image must have a positive weight')
    return w / total

#----------------------------------------------------------------------------
# Index of the item that a uniform u in [0, 1) selects from cumulative weights cdf (float64 [N], last = 1).
# Items of weight 0 are never selected.

def inverse_cdf_index(cdf, u, last_positive):
    idx = int(np.searchsorted(cdf, u * cdf[-1], side='right'))
    return min(idx, last_positive)

#----------------------------------------------------------------------------

class PriorResampler(torch.utils.data.Sampler):
    def __init__(self,
        dataset,            # The training set (only its length is used).
        rank        = 0,    # This process.
        num_replicas= 1,    # Number of processes.
        seed        = 0,    # Seed of the stream.
    ):
        num_items = len(dataset)
        if num_items <= 0:
            raise ValueError('PriorResampler: the dataset is empty')
        if num_replicas <= 0:
            raise ValueError(f'PriorResampler: num_replicas must be >= 1, got {num_replicas}')
        if not 0 <= rank < num_replicas:
            raise ValueError(f'PriorResampler: rank must be in [0, {num_replicas - 1}], got {rank}')
        super().__init__()
        self.num_items = int(num_items)
        self.rank, self.num_replicas, self.seed = int(rank), int(num_replicas), int(seed)
        self._num_yielded = 0       # indices this rank has handed out
        self._history = []          # [WeightsEntry], by step
        self._min_step = 0          # lowest global step whose weights are still known (older ones were pruned)
        self._perm_cache = (None, None)
        self._block_cache = (None, None)

    #------------------------------------------------------------------------
    # The stream.

    # The stream continues from the current position (the start, or a loaded state).
    def __iter__(self):
        return self._generate()

    def _generate(self):
        while True:
            step = self._num_yielded * self.num_replicas + self.rank
            item = self.index_at(step)
            self._num_yielded += 1
            yield item

    # Global step this rank hands out next, rounded down to the start of its group of num_replicas steps.
    @property
    def position(self):
        return self._num_yielded * self.num_replicas

    # Dataset index at global step `step` (a pure function of seed, step and the weights in effect).
    def index_at(self, step):
        entry = self._entry_at(step)
        if entry is None or entry.weights is None:
            perm = self._permutation(step // self.num_items)
            return int(perm[step % self.num_items])
        u = self._uniforms(step // _BLOCK)[step % _BLOCK]
        return inverse_cdf_index(entry.cdf, u, entry.last_positive)

    def _entry_at(self, step):
        pos = self._history_pos(step)
        return self._history[pos] if pos >= 0 else None

    # Position in the history of the entry in effect at `step`; -1 = before the first entry.
    def _history_pos(self, step):
        return bisect.bisect_right([e.step for e in self._history], step) - 1

    def _permutation(self, epoch):
        if self._perm_cache[0] != epoch:
            self._perm_cache = (epoch, np.random.default_rng([self.seed, epoch, 0]).permutation(self.num_items))
        return self._perm_cache[1]

    def _uniforms(self, block):
        if self._block_cache[0] != block:
            self._block_cache = (block, np.random.default_rng([self.seed, block, 1]).random(_BLOCK))
        return self._block_cache[1]

    #------------------------------------------------------------------------
    # Weights.

    def set_weights(self, weights):
        """Use per-image `weights` (float64 [N], >= 0, not all 0; None = back to the uniform stream) from the next step on."""
        w = normalize_weights(weights, self.num_items)
        step = self.position
        self._history = [e for e in self._history if e.step < step]
        self._history.append(self._make_entry(step, w))

        # Forget weights that no rewind can reach any more.
        self._min_step = max(self._min_step, step - _MAX_REWIND_STEPS)
        while len(self._history) >= 2 and self._history[1].step <= self._min_step:
            self._history.pop(0)

    @staticmethod
    def _make_entry(step, w):
        if w is None:
            return WeightsEntry(int(step), None, None, None)
        return WeightsEntry(int(step), w, np.cumsum(w), int(np.flatnonzero(w > 0)[-1]))

    # Weights in effect at the current position (float64 [N], None = uniform stream).
    @property
    def weights(self):
        entry = self._entry_at(self.position)
        return None if entry is None else entry.weights

    #------------------------------------------------------------------------
    # State.

    def state_dict(self, num_unused=0):
        """Position and weights history, to resume the same index stream.

        num_unused: indices this rank has handed out that training never used (prefetched by the
            DataLoader); the state is rewound by that many.
        Returns plain ints and tensors (safe for pickle and torch.load(weights_only=True)).
        """
        if not 0 <= num_unused <= self._num_yielded:
            raise ValueError(f'PriorResampler.state_dict: num_unused must be in [0, {self._num_yielded}] '
                             f'(indices yielded so far), got {num_unused}')
        num_yielded = self._num_yielded - num_unused
        step = num_yielded * self.num_replicas
        if step < self._min_step:
            raise ValueError(f'PriorResampler.state_dict: cannot rewind {num_unused} indices; the weights before global step '
                             f'{self._min_step} are forgotten')

        # Keep the entry in effect at `step` and every later one.
        first = max(self._history_pos(step), 0)
        kept = self._history[first:]
        steps = torch.tensor([e.step for e in kept], dtype=torch.int64)
        has_weights = torch.tensor([e.weights is not None for e in kept], dtype=torch.bool)
        weights = torch.from_numpy(np.stack([e.weights if e.weights is not None else np.zeros(self.num_items) for e in kept])) \
            if kept else torch.zeros([0, self.num_items], dtype=torch.float64)
        return dict(kind='PriorResampler', num_items=self.num_items, seed=self.seed, num_replicas=self.num_replicas,
                    num_yielded=num_yielded, step=step,
                    history=dict(steps=steps, has_weights=has_weights, weights=weights))

    def load_state_dict(self, state):
        """Continue the stream from a state_dict(); {} = from the beginning."""
        if not state:
            self._num_yielded, self._history, self._min_step = 0, [], 0
            return
        if state.get('kind') != 'PriorResampler':
            raise ValueError('PriorResampler.load_state_dict: the saved sampler state is not a PriorResampler state '
                             '(the snapshot was trained with another sampler); resume with the same sampler_kwargs '
                             'or with resume_exact=False')
        for key, mine in (('num_items', self.num_items), ('seed', self.seed), ('num_replicas', self.num_replicas)):
            if int(state[key]) != mine:
                raise ValueError(f'PriorResampler.load_state_dict: saved {key}={int(state[key])} differs from this sampler\'s '
                                 f'{key}={mine}; resume with the same dataset, seed and number of processes')
        hist = state['history']
        history = []
        for i in range(len(hist['steps'])):
            w = hist['weights'][i].to(torch.float64).numpy().copy() if bool(hist['has_weights'][i]) else None
            history.append(self._make_entry(int(hist['steps'][i]), w))
        self._num_yielded = int(state['num_yielded'])
        self._history = history
        self._min_step = self._num_yielded * self.num_replicas

#----------------------------------------------------------------------------
