"""Training losses: the `Loss` interface and StyleGAN2's loss (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN")."""

import collections
import contextlib

import numpy as np
import torch

from torch_utils import misc
from torch_utils import training_stats
from torch_utils.ops import conv2d_gradfix

#----------------------------------------------------------------------------
# A named range for torch.profiler, or nothing when no profiler runs: record_function costs about as much as a
# small layer's forward, many times per step (issue 18 item 6).

_NO_RANGE = contextlib.nullcontext()  # stateless: one instance serves every call

def profile_range(name):
    return torch.autograd.profiler.record_function(name) if torch.autograd._profiler_enabled() else _NO_RANGE

# training_stats.report, without the profiler range of its decorator when no profiler runs (the range costs as
# much as the report itself; the loss reports 8 statistics per step).
def report_stat(name, value):
    report = training_stats.report
    return (report if torch.autograd._profiler_enabled() else getattr(report, '__wrapped__', report))(name, value)

#----------------------------------------------------------------------------
# The real images of one round of a phase, handed to every hook of the loss
# (img: [batch_gpu, C, H, W] in [-1, 1]; c: their labels).

RealBatch = collections.namedtuple('RealBatch', ['img', 'c'])

# One round of an extra phase: the round's reals and a fresh latent batch.
PhaseBatch = collections.namedtuple('PhaseBatch', ['real_img', 'real_c', 'gen_z', 'gen_c'])

# A training phase that a loss adds to the loop's Gmain/Greg/Dmain/Dreg (e.g. a
# prior's encoder). module: an nn.Module that the loss owns (the loop builds an
# optimizer for it from opt_kwargs, broadcasts it from rank 0 at the start,
# all-reduces its gradients, steps it, and keeps module and optimizer state in
# the snapshot), or 'G' / 'D' to take another step with that network's
# optimizer. The loop runs the due extra phases after its own, in list order,
# every `interval` iterations, calling accumulate(PhaseBatch, gain) once per
# round (forward and backward; gain = interval).
ExtraPhase = collections.namedtuple('ExtraPhase', ['name', 'module', 'opt_kwargs', 'interval', 'accumulate'], defaults=[None, 1])

#----------------------------------------------------------------------------
# What the training loop expects from a loss. The loop calls setup(context)
# once after construction, on_progress() once per iteration, then
# accumulate_gradients() once per round of every phase that is due, then the
# extra phases. state_dict() is what every rank shares (saved once, kept when
# the number of processes changes); rank_state_dict() is this process's own
# (restored only when it does not). The base has nothing to keep.

class Loss:
    def setup(self, context):
        """Called once by the loop after construction, on every rank, before a resume state is loaded. context:
        EasyDict(G, G_ema, D, augment_pipe, dataset_kwargs, random_seed, rank, num_gpus, run_dir (None on ranks
        other than 0), batch_size, batch_gpu, device). No-op here."""

    def extra_phases(self):
        """Phases the loop runs after its own, as a list of ExtraPhase. None here."""
        return []

    def accumulate_gradients(self, phase, real_img, real_c, gen_z, gen_c, sync, gain):
        raise NotImplementedError(f'{type(self).__name__} must implement accumulate_gradients()')

    def on_progress(self, cur_nimg):
        """Told how many real images the run has shown so far, on every rank, before each step's phases.

        Returns None, or a dict of feedback for the loop: `sampler_weights` (per-image weights [N], identical
        on every rank) is handed to the sampler's `set_weights()`. The base loss returns None.
        """
        return None

    def on_snapshot(self, run_dir, cur_nimg):
        """Called on rank 0 whenever the loop writes an image snapshot, to add the loss's own pictures to
        run_dir (e.g. a prior's component frequencies). No-op here."""

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        if len(state) != 0:
            raise ValueError(f'{type(self).__name__}.load_state_dict: unexpected keys {sorted(state)}; '
                             f'the snapshot was written with a different loss class (loss_kwargs.class_name)')

    def rank_state_dict(self):
        return {}

    def load_rank_state_dict(self, state):
        if len(state) != 0:
            raise ValueError(f'{type(self).__name__}.load_rank_state_dict: unexpected keys {sorted(state)}; '
                             f'the snapshot was written with a different loss class (loss_kwargs.class_name)')

#----------------------------------------------------------------------------
# R1 penalty of each real image: squared norm of the gradient of the summed
# logits w.r.t. the image (Mescheder et al. 2018, Eq. 9 without gamma/2).
# real_img: [N, C, H, W] with requires_grad, real_logits: [N, 1]. Returns [N].

def r1_penalty(real_logits, real_img):
    with profile_range('r1_grads'), conv2d_gradfix.no_weight_gradients():
        (grad,) = torch.autograd.grad(outputs=[real_logits.sum()], inputs=[real_img], create_graph=True)
    return grad.square().sum(dim=[1, 2, 3])

#----------------------------------------------------------------------------
# Path length of each generated image (StyleGAN2, Eq. 4): the norm of J_w^T y
# for a random image-space direction y, where the per-layer squared norms are
# averaged over the num_ws layers. img: [N, C, H, W], ws: [N, num_ws, w_dim],
# noise: like img. Returns [N].

def path_lengths(img, ws, noise):
    with profile_range('pl_grads'), conv2d_gradfix.no_weight_gradients():
        (grad,) = torch.autograd.grad(outputs=[(img * noise).sum()], inputs=[ws], create_graph=True)
    return grad.square().sum(dim=2).mean(dim=1).sqrt()

#----------------------------------------------------------------------------
# The adversarial losses of `gan_loss`, per step, as functions of D's scores l
# ([N, 1]); each returns the per-sample loss that the step minimises.
#   logistic  non-saturating logistic (Goodfellow et al. 2014; StyleGAN2's):
#             G: sp(-l)       D: sp(-l_real) + sp(l_fake)
#   hinge     (Lim & Ye 2017; Miyato et al. 2018):
#             G: -l           D: relu(1 - l_real) + relu(1 + l_fake)
#   lsgan     least squares with a = 0, b = c = 1 (Mao et al. 2017, Eq. 2):
#             G: (l - 1)^2/2  D: (l_real - 1)^2/2 + l_fake^2/2
#   wgan-gp   Wasserstein with gradient penalty (Gulrajani et al. 2017, Eq. 3):
#             G: -l           D: l_fake - l_real + gp_weight * (||grad D(x_hat)|| - 1)^2,
#             x_hat = e * x_real + (1 - e) * x_fake, e ~ U[0, 1] per sample (penalty in the D main step).
#   wgan      plain Wasserstein (Arjovsky et al. 2017, Algorithm 1), Lipschitz only by weight clipping (the
#             training loop's D_clip, train.py --clip):
#             G: -l           D: l_fake - l_real

GAN_LOSSES = {
    'logistic': dict(Gmain=lambda l: torch.nn.functional.softplus(-l), Dreal=lambda l: torch.nn.functional.softplus(-l),
                     Dgen=lambda l: torch.nn.functional.softplus(l)),
    'hinge':    dict(Gmain=lambda l: -l, Dreal=lambda l: torch.relu(1 - l), Dgen=lambda l: torch.relu(1 + l)),
    'lsgan':    dict(Gmain=lambda l: (l - 1).square() / 2, Dreal=lambda l: (l - 1).square() / 2, Dgen=lambda l: l.square() / 2),
    'wgan-gp':  dict(Gmain=lambda l: -l, Dreal=lambda l: -l, Dgen=lambda l: l),
    'wgan':     dict(Gmain=lambda l: -l, Dreal=lambda l: -l, Dgen=lambda l: l),
}

# Gradient penalty of WGAN-GP on random interpolates of reals and fakes (same
# count); score_fn maps images to scores [N, 1]. Returns [N].
def gradient_penalty(score_fn, real_img, fake_img):
    eps = torch.rand([real_img.shape[0], 1, 1, 1], device=real_img.device, dtype=real_img.dtype)
    x_hat = (eps * real_img.detach() + (1 - eps) * fake_img.detach()).requires_grad_(True)
    with profile_range('gp_grads'), conv2d_gradfix.no_weight_gradients():
        (grad,) = torch.autograd.grad(outputs=[score_fn(x_hat).sum()], inputs=[x_hat], create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).square()

#----------------------------------------------------------------------------
# StyleGAN2 loss: non-saturating logistic loss for G and D (or another
# gan_loss), R1 on reals and path-length regularisation for G (both lazy:
# `gain` is the phase interval), style mixing between two latents.
#
# Subclasses plug in through the hooks below (a plugin's loss subclass routes
# them to its parts). Every hook gets the step it runs in ('Gmain', 'Gpl', 'Dgen',
# 'Dreal', 'Dr1', or an extra phase's name) and `batch`, the RealBatch of the
# round, including in G steps.
#   transform_latents(z, c, step, role, batch) -> (z, c)   before the mapping; role 'main' or 'mix'
#   synthesis_inputs(z, c, step, batch) -> dict            extra kwargs for G_synthesis (e.g. side=...)
#   D_outputs(raw) -> outputs | None                       reads D's raw output; None = raw are logits
#   realness(raw, outputs) -> [N, 1]                       one score per image: reports, R1, ADA signs
#   adversarial_loss(step, scores, outputs, batch) -> [N]  the GAN loss of Gmain / Dgen / Dreal
#   extra_loss(step, img, c, logits, ws, batch, outputs)   added to the step's loss; [N], scalar or None

class StyleGAN2Loss(Loss):
    phases = ('Gmain', 'Greg', 'Gboth', 'Dmain', 'Dreg', 'Dboth')

    def __init__(self,
        device,                     # Device of the networks and of pl_mean.
        G_mapping,                  # Mapping network (z, c) -> ws, possibly DDP-wrapped.
        G_synthesis,                # Synthesis network ws -> img, possibly DDP-wrapped.
        D,                          # Discriminator (img, c) -> logits, possibly DDP-wrapped.
        augment_pipe        = None, # Augmentation applied to every image D sees; None = disable.
        style_mixing_prob   = 0.9,  # Probability of mixing two latents in one batch; 0 = disable.
        r1_gamma            = 10,   # R1 weight; 0 = disable.
        pl_batch_shrink     = 2,    # Path-length batch = batch // pl_batch_shrink.
        pl_decay            = 0.01, # Decay of the running mean path length.
        pl_weight           = 2,    # Path-length weight; 0 = disable.
        gan_loss            = 'logistic', # Adversarial loss: 'logistic', 'hinge', 'lsgan', 'wgan-gp' or 'wgan' (see GAN_LOSSES).
        gp_weight           = 10,   # WGAN-GP's penalty weight (Gulrajani et al. 2017: 10); only with gan_loss='wgan-gp'.
    ):
        super().__init__()
        for name, value in dict(style_mixing_prob=style_mixing_prob, r1_gamma=r1_gamma, pl_weight=pl_weight, gp_weight=gp_weight).items():
            if not value >= 0:
                raise ValueError(f'StyleGAN2Loss: {name} must be >= 0, got {value}')
        if not (isinstance(pl_batch_shrink, int) and pl_batch_shrink >= 1):
            raise ValueError(f'StyleGAN2Loss: pl_batch_shrink must be an integer >= 1, got {pl_batch_shrink!r}')
        if gan_loss not in GAN_LOSSES:
            raise ValueError(f'StyleGAN2Loss: gan_loss must be one of {", ".join(GAN_LOSSES)}, got {gan_loss!r}')
        self.G_mapping, self.G_synthesis, self.D, self.augment_pipe = G_mapping, G_synthesis, D, augment_pipe
        self.device = device
        self.r1_gamma = r1_gamma
        self.style_mixing_prob = style_mixing_prob
        self.pl_weight, self.pl_decay, self.pl_batch_shrink = pl_weight, pl_decay, pl_batch_shrink
        self.gan_loss, self.gp_weight = gan_loss, gp_weight
        self.pl_mean = torch.zeros([], device=device)  # running mean of the path length
        self.defer_stats = False                       # report statistics once per tick (see _report)
        self._pending_stats = dict()

    #------------------------------------------------------------------------
    # Hooks (see the class comment); the defaults are StyleGAN2's behaviour.

    def transform_latents(self, z, c, step, role, batch):
        return z, c

    def synthesis_inputs(self, z, c, step, batch):
        return {}

    def D_outputs(self, raw):
        return None

    def realness(self, raw, outputs):
        return raw

    def adversarial_loss(self, step, scores, outputs, batch):
        return GAN_LOSSES[self.gan_loss][step](scores)

    def extra_loss(self, step, img, c, logits, ws, batch=None, outputs=None):
        return None

    #------------------------------------------------------------------------
    # pl_mean is each process's own (the path lengths are never averaged over ranks).

    def rank_state_dict(self):
        return dict(pl_mean=self.pl_mean.detach().cpu().clone())

    def load_rank_state_dict(self, state):
        state = dict(state)
        if 'pl_mean' in state:
            self.pl_mean.copy_(torch.as_tensor(state.pop('pl_mean')))
        super().load_rank_state_dict(state)

    # Style mixing: with probability style_mixing_prob, the layers from a random
    # cutoff in [1, num_ws) on take their w from a second, fresh latent.
    def _mix_styles(self, ws, z, c, step, batch):
        num_ws = ws.shape[1]
        cutoff = int(torch.empty([], dtype=torch.int64, device=ws.device).random_(1, num_ws))
        if not bool(torch.rand([], device=ws.device) < self.style_mixing_prob):
            cutoff = num_ws  # no mixing this time (the second mapping call still runs)
        other_z, other_c = self.transform_latents(torch.randn_like(z), c, step=step, role='mix', batch=batch)
        other = self.G_mapping(other_z, other_c, skip_w_avg_update=True)
        ws[:, cutoff:] = other[:, cutoff:]

    # Generate images from latents; returns (img, ws).
    def run_G(self, z, c, sync, step='Gmain', batch=None):
        z, c = self.transform_latents(z, c, step=step, role='main', batch=batch)
        with misc.ddp_sync(self.G_mapping, sync):
            ws = self.G_mapping(z, c)
            if self.style_mixing_prob > 0:
                with profile_range('style_mixing'):
                    self._mix_styles(ws, z, c, step, batch)
        side = self.synthesis_inputs(z, c, step=step, batch=batch) or {}
        with misc.ddp_sync(self.G_synthesis, sync):
            return self.G_synthesis(ws, **side), ws

    # D's raw output for images, after augmentation when a pipe is set.
    def run_D(self, img, c, sync):
        augmented = img if self.augment_pipe is None else self.augment_pipe(img)
        with misc.ddp_sync(self.D, sync):
            return self.D(augmented, c)

    # D's scores [N, 1] and the head's outputs (None without a head owner).
    def score(self, img, c, sync):
        raw = self.run_D(img, c, sync)
        outputs = self.D_outputs(raw)
        return self.realness(raw, outputs), outputs

    # A statistic of this step: reported now, or, with defer_stats (set by the training loop when nothing reads
    # the statistics during a tick, i.e. without ADA), kept until flush_stats() reports each name once, at the end
    # of the tick: the same values, one reduction instead of one per step (issue 18 item 6). sign=True reports
    # the signs of the values. Returns value.
    def _report(self, name, value, sign=False):
        if self.defer_stats and isinstance(value, torch.Tensor):
            self._pending_stats.setdefault((name, sign), []).append(value.detach() if value.requires_grad else value)
            return value
        report_stat(name, value.sign() if sign else value)
        return value

    def flush_stats(self):
        """Report the deferred statistics (see _report); the training loop calls it before it reads them."""
        pending, self._pending_stats = self._pending_stats, dict()
        for (name, sign), values in pending.items():
            values = torch.cat([v.flatten() for v in values])
            report_stat(name, values.sign() if sign else values)

    # Report D's scores and their signs for 'real' or 'fake' images.
    def _report_scores(self, kind, logits):
        logits = logits.detach()
        self._report(f'Loss/scores/{kind}', logits)
        self._report(f'Loss/signs/{kind}', logits, sign=True)

    # Batch mean of a step's loss plus the batch mean of the extra_loss() hook's term, if any.
    def _mean_with_extra(self, loss, step, img, c, logits, ws, batch=None, outputs=None):
        extra = self.extra_loss(step, img, c, logits, ws, batch=batch, outputs=outputs)
        return loss.mean() if extra is None else loss.mean() + extra.mean()

    # Backward of gain * objective under a profiler range. A gain of 1 (every phase without a lazy interval) skips
    # the product: x * 1 and its gradient are exact, so the weights are the same bits, one op and node fewer.
    @staticmethod
    def _backward(name, objective, gain):
        with profile_range(name + '_backward'):
            (objective if gain == 1 else objective * gain).backward()

    # G main: the generator's adversarial loss (non-saturating: -log(sigmoid(D(G(z))))).
    def _G_main(self, gen_z, gen_c, sync, gain, batch):
        with profile_range('Gmain_forward'):
            img, ws = self.run_G(gen_z, gen_c, sync=sync, step='Gmain', batch=batch)
            logits, outputs = self.score(img, gen_c, sync=False)
            self._report_scores('fake', logits)
            loss = self._report('Loss/G/loss', self.adversarial_loss('Gmain', logits, outputs, batch))
            objective = self._mean_with_extra(loss, 'Gmain', img, gen_c, logits, ws, batch, outputs)
        self._backward('Gmain', objective, gain)

    # G regulariser: squared deviation of the path length from its running mean,
    # on the first 1 / pl_batch_shrink of the batch.
    def _G_path_length(self, gen_z, gen_c, sync, gain, batch):
        with profile_range('Gpl_forward'):
            n = max(gen_z.shape[0] // self.pl_batch_shrink, 1)
            img, ws = self.run_G(gen_z[:n], gen_c[:n], sync=sync, step='Gpl', batch=batch)
            y = torch.randn_like(img) / np.sqrt(img.shape[2] * img.shape[3])  # unit-variance per image
            lengths = path_lengths(img, ws, y)
            # Penalise against the updated mean, keeping its graph; store it detached.
            updated_mean = self.pl_mean.lerp(lengths.mean(), self.pl_decay)
            self.pl_mean.copy_(updated_mean.detach())
            penalty = self._report('Loss/pl_penalty', (lengths - updated_mean).square())
            loss = self._report('Loss/G/reg', penalty * self.pl_weight)
            objective = self._mean_with_extra(loss, 'Gpl', img, gen_c, None, ws, batch)
        self._backward('Gpl', objective, gain)

    # D on fakes (non-saturating: -log(1 - sigmoid(D(G(z))))). Returns the per-sample
    # loss for the D/loss report and the fakes (for WGAN-GP's interpolates).
    def _D_fake(self, gen_z, gen_c, gain, batch):
        with profile_range('Dgen_forward'):
            img, ws = self.run_G(gen_z, gen_c, sync=False, step='Dgen', batch=batch)
            logits, outputs = self.score(img, gen_c, sync=False)
            self._report_scores('fake', logits)
            loss = self.adversarial_loss('Dgen', logits, outputs, batch)
            objective = self._mean_with_extra(loss, 'Dgen', img, gen_c, logits, ws, batch, outputs)
        self._backward('Dgen', objective, gain)
        return loss.detach(), img.detach()

    # D on reals (non-saturating: -log(sigmoid(D(x)))) and/or the lazy R1 penalty, from one
    # D pass; with WGAN-GP, the gradient penalty on interpolates joins the main term.
    def _D_real(self, real_img, real_c, sync, gain, main, r1, loss_fake, fake_img, batch):
        name = {(True, True): 'Dreal_Dr1', (True, False): 'Dreal', (False, True): 'Dr1'}[(main, r1)]
        with profile_range(name + '_forward'):
            x = real_img.detach().requires_grad_(r1)  # R1 differentiates w.r.t. the unaugmented reals
            logits, outputs = self.score(x, real_c, sync=sync)
            self._report_scores('real', logits)
            objective = 0
            if main:
                loss = self.adversarial_loss('Dreal', logits, outputs, batch)
                self._report('Loss/D/loss', loss_fake + loss)
                objective = self._mean_with_extra(loss, 'Dreal', real_img, real_c, logits, None, batch, outputs)
                if self.gan_loss == 'wgan-gp' and self.gp_weight > 0:
                    penalty = gradient_penalty(lambda images: self.score(images, real_c, sync=False)[0], real_img, fake_img)
                    objective = objective + self._report('Loss/gp_penalty', penalty).mean() * self.gp_weight
            if r1:
                penalty = self._report('Loss/r1_penalty', r1_penalty(logits, x))
                loss = self._report('Loss/D/reg', penalty * (self.r1_gamma / 2))
                objective = objective + self._mean_with_extra(loss, 'Dr1', real_img, real_c, logits, None, batch, outputs)
        self._backward(name, objective, gain)

    def accumulate_gradients(self, phase, real_img, real_c, gen_z, gen_c, sync, gain):
        if phase not in self.phases:
            raise ValueError(f'Unknown phase "{phase}"; expected one of {", ".join(self.phases)}')
        net, part = phase[0], phase[1:]
        main = part in ('main', 'both')
        reg = part in ('reg', 'both') and (self.pl_weight if net == 'G' else self.r1_gamma) != 0
        batch = RealBatch(real_img, real_c)
        if net == 'G':
            # With both terms in one phase, the gradient sync happens in the last (regulariser) backward.
            if main:
                self._G_main(gen_z, gen_c, sync=(sync and not reg), gain=gain, batch=batch)
            if reg:
                self._G_path_length(gen_z, gen_c, sync=sync, gain=gain, batch=batch)
        else:
            loss_fake, fake_img = self._D_fake(gen_z, gen_c, gain=gain, batch=batch) if main else (None, None)
            if main or reg:
                self._D_real(real_img, real_c, sync=sync, gain=gain, main=main, r1=reg, loss_fake=loss_fake,
                             fake_img=fake_img, batch=batch)

#----------------------------------------------------------------------------
