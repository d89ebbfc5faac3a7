"""PriorLoss: StyleGAN2's loss with one or more priors plugged in through the hooks of priors.base.Prior (PriorGAN, Gu et al. 2020, and the other papers listed there)."""

import torch

import dnnlib
from priors import base
from priors import registry
from torch_utils import training_stats
from training.loss import StyleGAN2Loss

#----------------------------------------------------------------------------
# The loss the loop builds for `loss_kwargs.class_name = 'priors.loss.PriorLoss'`.
# Without priors (or with only 'none') it is StyleGAN2Loss, step for step:
# it draws no random numbers and reports nothing extra. The priors are built
# here (hyperparameters only) and set up in setup(), when the loop hands over
# the run's context.

class PriorLoss(StyleGAN2Loss):
    def __init__(self, device, G_mapping, G_synthesis, D, augment_pipe=None,
        prior_kwargs    = [],       # One dict per prior, in --prior order: name plus the prior's options.
        **loss_kwargs,              # StyleGAN2Loss options (r1_gamma, pl_weight, gan_loss, ...).
    ):
        super().__init__(device=device, G_mapping=G_mapping, G_synthesis=G_synthesis, D=D, augment_pipe=augment_pipe, **loss_kwargs)
        self.priors = []
        for kwargs in prior_kwargs:
            kwargs = dict(kwargs)
            if 'name' not in kwargs:
                raise ValueError(f'PriorLoss: every entry of prior_kwargs needs a "name", got {sorted(kwargs)}')
            self.priors.append(registry.build_prior(kwargs.pop('name'), **kwargs))
        base.check_composition(self.priors, gan_loss=self.gan_loss)
        owners = [p for p in self.priors if p.owns_head()]
        self.head = owners[0] if owners else None
        self.ctx = None
        self.pretrained = False  # pretrain() hooks run at the first iteration of a fresh run
        self._phases = None

    # The run's context from the loop, plus the loss's own view of the networks.
    def setup(self, context):
        self.ctx = dnnlib.EasyDict(context, device=torch.device(self.device), G_mapping=self.G_mapping,
                                   G_synthesis=self.G_synthesis, D=self.D, augment_pipe=self.augment_pipe, score=self.plain_scores)
        for prior in self.priors:
            prior.setup(self.ctx)
        phases = [phase for prior in self.priors for phase in prior.extra_phases()]
        names = [phase.name for phase in phases]
        for name in names:
            if names.count(name) > 1 or name in self.phases:
                raise ValueError(f'Extra phase name "{name}" is used twice (or is a built-in phase); give each phase its own name')
        self._phases = phases

    # D's scores [N, 1] (the realness) of images without augmentation, for priors that rank samples by D.
    def plain_scores(self, img, c):
        raw = self.D(img, c)
        return self.realness(raw, self.D_outputs(raw))

    def extra_phases(self):
        if self._phases is None:
            raise RuntimeError('PriorLoss.extra_phases(): call setup(context) first')
        return list(self._phases)

    #------------------------------------------------------------------------
    # Hooks called by the loop.

    def on_progress(self, cur_nimg):
        if not self.pretrained:
            for prior in self.priors:
                prior.pretrain(self.ctx)
            self.pretrained = True
        feedback = base.merge_feedback([(p.name, p.on_progress(cur_nimg)) for p in self.priors], 'on_progress()')
        return feedback if feedback else None

    def on_snapshot(self, run_dir, cur_nimg):
        for prior in self.priors:
            prior.on_snapshot(run_dir, cur_nimg)

    #------------------------------------------------------------------------
    # Hooks called by StyleGAN2Loss.

    def transform_latents(self, z, c, step, role, batch):
        for prior in self.priors:
            z, c = prior.transform_latents(z, c, step=step, role=role, batch=batch)
        return z, c

    def synthesis_inputs(self, z, c, step, batch):
        return base.merge_feedback([(p.name, p.synthesis_inputs(z, c, step=step, batch=batch)) for p in self.priors],
                                   'synthesis_inputs()')

    def D_outputs(self, raw):
        return None if self.head is None else self.head.D_outputs(raw)

    def realness(self, raw, outputs):
        return raw if self.head is None else self.head.realness(outputs)

    def adversarial_loss(self, step, scores, outputs, batch):
        if self.head is None:
            return super().adversarial_loss(step, scores, outputs, batch)
        return self.head.adversarial_loss(step, outputs, batch=batch)

    # Sum of the priors' terms for this step; reports the total and each prior's part.
    def extra_loss(self, step, img, c, logits, ws, batch=None, outputs=None):
        total = None
        for prior in self.priors:
            term = prior.extra_loss(step, img, c, logits, ws, batch=batch, outputs=outputs)
            if term is None:
                continue
            training_stats.report(f'Prior/{prior.name}/loss', term)
            total = term if total is None else total + term
        if total is not None:
            training_stats.report(f'Loss/{step[0]}/prior', total)
        return total

    #------------------------------------------------------------------------
    # State: whether pretraining ran and each prior's shared state; per rank,
    # StyleGAN2Loss's pl_mean and each prior's own state.

    def state_dict(self):
        return dict(pretrained=bool(self.pretrained), priors={prior.name: prior.state_dict() for prior in self.priors})

    def rank_state_dict(self):
        state = super().rank_state_dict()
        state['priors'] = {prior.name: prior.rank_state_dict() for prior in self.priors}
        return state

    def _check_names(self, saved):
        mine = sorted(p.name for p in self.priors)
        if sorted(saved) != mine:
            raise ValueError(f'PriorLoss: the snapshot was trained with priors {sorted(saved) or "none"} '
                             f'but this run uses {mine or "none"}; use the same priors, or resume weights only (resume_exact=False)')

    def load_state_dict(self, state):
        state = dict(state)
        priors_state = state.pop('priors', None)
        pretrained = state.pop('pretrained', priors_state is not None)
        super().load_state_dict(state)
        if priors_state is None:
            if self.ctx is not None and self.ctx.rank == 0 and any(p.name != 'none' for p in self.priors):
                print('Note: the snapshot has no prior state (it was trained without priors); the priors start fresh, '
                      'pretraining included.')
            return
        self._check_names(priors_state)
        self.pretrained = bool(pretrained)
        for prior in self.priors:
            prior.load_state_dict(priors_state[prior.name])

    def load_rank_state_dict(self, state):
        state = dict(state)
        priors_state = state.pop('priors', None)
        super().load_rank_state_dict(state)
        if priors_state is not None:
            self._check_names(priors_state)
            for prior in self.priors:
                prior.load_rank_state_dict(priors_state[prior.name])

#----------------------------------------------------------------------------
