"""PriorLoss: StyleGAN2's loss with one or more priors plugged in through the hooks of priors.base.Prior (PriorGAN, Gu et al. 2020, and the other papers listed there)."""

import torch

import dnnlib
from priors import base
from priors import registry
from torch_utils import training_stats
from training.loss import StyleGAN2Loss

#----------------------------------------------------------------------------
# Process rank and count from torch.distributed (1 process when it is not initialised).

def _process_group():
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1

#----------------------------------------------------------------------------
# The loss the loop builds for `loss_kwargs.class_name = 'priors.loss.PriorLoss'`.
# Without priors (or with only 'none') it is StyleGAN2Loss, step for step:
# it draws no random numbers and reports nothing extra.

class PriorLoss(StyleGAN2Loss):
    def __init__(self, device, G_mapping, G_synthesis, D, augment_pipe=None,
        prior_kwargs    = [],       # One dict per prior, in --prior order: name plus the prior's options.
        dataset_kwargs  = None,     # Training set kwargs: the real data of the priors.
        random_seed     = 0,        # Seed of the run (priors derive their own seeded streams from it).
        run_dir         = None,     # Run folder for prior outputs; None = none available.
        **loss_kwargs,              # StyleGAN2Loss options (r1_gamma, pl_weight, ...).
    ):
        super().__init__(device=device, G_mapping=G_mapping, G_synthesis=G_synthesis, D=D, augment_pipe=augment_pipe, **loss_kwargs)

        # Build the priors in order and check that they compose.
        self.priors = []
        for kwargs in prior_kwargs:
            kwargs = dict(kwargs)
            if 'name' not in kwargs:
                raise ValueError(f'PriorLoss: every entry of prior_kwargs needs a "name", got {sorted(kwargs)}')
            self.priors.append(registry.build_prior(kwargs.pop('name'), **kwargs))
        base.check_composition(self.priors)

        # Set every prior up with what it may need.
        rank, num_gpus = _process_group()
        self.ctx = dnnlib.EasyDict(device=torch.device(device), G_mapping=G_mapping, G_synthesis=G_synthesis, D=D,
                                   augment_pipe=augment_pipe, dataset_kwargs=dataset_kwargs, rank=rank, num_gpus=num_gpus,
                                   random_seed=random_seed, run_dir=run_dir)
        for prior in self.priors:
            prior.setup(self.ctx)
        self.pretrained = False  # pretrain() hooks run at the first iteration of a fresh run

    # Modules that priors train with their own optimizers, by '<prior>.<name>'.
    def extra_modules(self):
        return {f'{p.name}.{key}': module for p in self.priors for key, module in p.extra_modules().items()}

    #------------------------------------------------------------------------
    # Hooks called by the loop and by StyleGAN2Loss.

    def on_progress(self, cur_nimg):
        if not self.pretrained:
            for prior in self.priors:
                prior.pretrain(self.ctx)
            self.pretrained = True

        # Merge the feedback of all priors; a key from two priors is an error.
        feedback, owner = dict(), dict()
        for prior in self.priors:
            for key, value in (prior.on_progress(cur_nimg) or {}).items():
                if key in feedback:
                    raise ValueError(f'Priors "{owner[key]}" and "{prior.name}" both return "{key}" from on_progress(); they cannot be combined')
                feedback[key], owner[key] = value, prior.name
        return feedback if feedback else None

    def on_snapshot(self, run_dir, cur_nimg):
        for prior in self.priors:
            prior.on_snapshot(run_dir, cur_nimg)

    def transform_latents(self, z, c):
        for prior in self.priors:
            z, c = prior.transform_latents(z, c)
        return z, c

    # Sum of the priors' terms for this step; reports the total and each prior's part.
    def extra_loss(self, step, img, c, logits, ws):
        total = None
        for prior in self.priors:
            term = prior.extra_loss(step, img, c, logits, ws)
            if term is None:
                continue
            training_stats.report(f'Prior/{prior.name}/loss', term)
            total = term if total is None else total + term
        if total is not None:
            training_stats.report(f'Loss/{step[0]}/prior', total)
        return total

    #------------------------------------------------------------------------
    # State: StyleGAN2Loss's (pl_mean), whether pretraining ran, and each
    # prior's state under 'priors'.

    def state_dict(self):
        state = super().state_dict()
        state['pretrained'] = bool(self.pretrained)
        state['priors'] = {prior.name: prior.state_dict() for prior in self.priors}
        return state

    def load_state_dict(self, state):
        state = dict(state)
        priors_state = state.pop('priors', None)
        self.pretrained = bool(state.pop('pretrained', priors_state is not None))
        super().load_state_dict(state)
        if priors_state is None:
            if self.ctx.rank == 0 and any(p.name != 'none' for p in self.priors):
                print('Note: the snapshot has no prior state (it was trained without priors); the priors start fresh, '
                      'pretraining included.')
            return
        mine = sorted(p.name for p in self.priors)
        if sorted(priors_state) != mine:
            raise ValueError(f'PriorLoss.load_state_dict: the snapshot was trained with priors {sorted(priors_state) or "none"} '
                             f'but this run uses {mine or "none"}; use the same --prior, or --resume-exact=0 to load weights only')
        for prior in self.priors:
            prior.load_state_dict(priors_state[prior.name])

#----------------------------------------------------------------------------
