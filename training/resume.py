"""One home for resuming a run: the resume pickle is read once, exact vs weights-only is decided once, and every part
of the loop (networks, optimizers, ADA, sampler, loss and its plugins) gets its state through the accessors here.

Layout of a snapshot's 'resume_state' (version 2; version 1 snapshots are read too):

    version, cur_nimg, cur_tick, batch_idx, total_sec, num_gpus, training_options
    optimizers  {opt_key: optimizer state}      'G', 'D' and the extra phases' own optimizers
    ada         AdaptiveP state or None
    loss        the loss's state_dict(): shared by every rank (e.g. the plugins' state)
    ranks       [per rank: rng, sampler, loss (the loss's rank_state_dict())]

Shared state survives a change of the number of processes; per-rank state is restored only when the count is
the same. Modules that extra phases train are stored in the snapshot under 'extra_modules' {phase name: module}.
"""

import dnnlib
import legacy
from torch_utils import misc

RESUME_STATE_VERSION = 2    # Layout version written by this code.
READABLE_VERSIONS = (1, 2)  # Layout versions it reads.

#----------------------------------------------------------------------------
# Version 1 kept the whole loss state per rank; split it into the shared part
# (everything but StyleGAN2Loss's pl_mean, taken from rank 0) and the per-rank part.

def _upgrade(state):
    if state.get('version') == 2:
        return state
    state = dict(state)
    ranks = [dict(r) for r in state['ranks']]
    shared = {k: v for k, v in ranks[0].get('loss', {}).items() if k != 'pl_mean'}
    for r in ranks:
        r['loss'] = {k: v for k, v in r.get('loss', {}).items() if k == 'pl_mean'}
    state.update(version=2, ranks=ranks, loss=shared)
    return state

# The shared loss state stored in a snapshot dict (e.g. a prior's fitted model for its metrics), or None.
def loss_state(snapshot):
    state = (snapshot or {}).get('resume_state')
    if not isinstance(state, dict) or state.get('version') not in READABLE_VERSIONS:
        return None
    return _upgrade(state).get('loss')

#----------------------------------------------------------------------------

class ResumeSource:
    """What a run resumes from. `resume_pkl` None = a fresh run. The pickle is read on rank 0; its resume state
    (when used) is shared with every rank.

    exact        True when the run continues exactly (resume_exact and a resume state of a readable version)
    same_ranks   True when, in addition, the snapshot was written by as many processes as this run has
    """

    def __init__(self, resume_pkl, resume_exact, num_gpus, rank, broadcast_object):
        self.path, self.rank = resume_pkl, rank
        self.data, state = None, None
        if resume_pkl is not None and rank == 0:
            print(f'Resuming from "{resume_pkl}"')
            with dnnlib.util.open_url(resume_pkl) as f:
                self.data = legacy.load_network_pkl(f)
            state = self.data.get('resume_state', None) if resume_exact else None
            if state is None:
                why = 'resume_exact=False' if resume_exact is False and 'resume_state' in self.data else 'the pickle has no resume_state'
                print(f'Loading weights only ({why}): optimizer, counters, ADA p and RNG start fresh, as in the official code.')
            elif state.get('version') not in READABLE_VERSIONS:
                raise ValueError(f'{resume_pkl}: resume_state version {state.get("version")} is not supported (this code reads '
                                 f'versions {", ".join(map(str, READABLE_VERSIONS))}); resume with resume_exact=False to load weights only')
            else:
                state = _upgrade(state)
                print(f'Exact resume at kimg {state["cur_nimg"] / 1000:.3f}, tick {state["cur_tick"]}.')
        self.state = broadcast_object(state, num_gpus) if resume_pkl is not None else None
        self.exact = self.state is not None
        self.same_ranks = self.exact and self.state['num_gpus'] == num_gpus

    # Counters and other top-level entries (cur_nimg, optimizers, ada, loss, ...); None when not exact.
    def get(self, key, default=None):
        return default if self.state is None else self.state.get(key, default)

    # This rank's own entry ('rng', 'sampler', 'loss'); None unless the process count is unchanged.
    def rank_state(self, key):
        return self.state['ranks'][self.rank][key] if self.same_ranks else None

    # Copy the pickle's weights into our networks by name (rank 0; the loop broadcasts). Weights only (the
    # official behaviour) copies G, D and G_ema and tolerates missing names; an exact resume also copies the
    # augment pipe (its p) and the extra phases' modules, and requires every name.
    def copy_weights(self, modules, extra_modules=None):
        if self.data is None:
            return
        for name, module in modules.items():
            source = self.data.get(name, None)
            if module is not None and source is not None and (self.exact or name != 'augment_pipe'):
                misc.copy_params_and_buffers(source, module, require_all=self.exact)
        if self.exact:
            saved = self.data.get('extra_modules') or {}
            for name, module in (extra_modules or {}).items():
                if name not in saved:
                    raise ValueError(f'{self.path}: the snapshot has no module for the extra phase "{name}" (it has '
                                     f'{sorted(saved) or "none"}); resume with resume_exact=False to load weights only')
                misc.copy_params_and_buffers(saved[name], module, require_all=True)

    # Drop the loaded networks once they are copied.
    def release(self):
        self.data = None

#----------------------------------------------------------------------------
