"""Training losses: the `Loss` interface and StyleGAN2's loss (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN")."""

import numpy as np
import torch

from torch_utils import misc
from torch_utils import training_stats
from torch_utils.ops import conv2d_gradfix

#----------------------------------------------------------------------------
# What the training loop expects from a loss. The loop calls on_progress()
# once per iteration, then accumulate_gradients() once per round of every
# phase that is due. state_dict()/load_state_dict() carry whatever the loss
# must keep across an exact resume; the base has nothing to keep.

class Loss:
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

#----------------------------------------------------------------------------
# R1 penalty of each real image: squared norm of the gradient of the summed
# logits w.r.t. the image (Mescheder et al. 2018, Eq. 9 without gamma/2).
# real_img: [N, C, H, W] with requires_grad, real_logits: [N, 1]. Returns [N].

def r1_penalty(real_logits, real_img):
    with torch.autograd.profiler.record_function('r1_grads'), conv2d_gradfix.no_weight_gradients():
        (grad,) = torch.autograd.grad(outputs=[real_logits.sum()], inputs=[real_img], create_graph=True)
    return grad.square().sum(dim=[1, 2, 3])

#----------------------------------------------------------------------------
# Path length of each generated image (StyleGAN2, Eq. 4): the norm of J_w^T y
# for a random image-space direction y, where the per-layer squared norms are
# averaged over the num_ws layers. img: [N, C, H, W], ws: [N, num_ws, w_dim],
# noise: like img. Returns [N].

def path_lengths(img, ws, noise):
    with torch.autograd.profiler.record_function('pl_grads'), conv2d_gradfix.no_weight_gradients():
        (grad,) = torch.autograd.grad(outputs=[(img * noise).sum()], inputs=[ws], create_graph=True)
    return grad.square().sum(dim=2).mean(dim=1).sqrt()

#----------------------------------------------------------------------------
# StyleGAN2 loss: non-saturating logistic loss for G and D, R1 on reals and
# path-length regularisation for G (both lazy: `gain` is the phase interval),
# style mixing between two latents. Subclasses (e.g. priors) plug in through
# transform_latents(), extra_loss(), on_progress() and the state dict.

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
    ):
        super().__init__()
        for name, value in dict(style_mixing_prob=style_mixing_prob, r1_gamma=r1_gamma, pl_weight=pl_weight).items():
            if not value >= 0:
                raise ValueError(f'StyleGAN2Loss: {name} must be >= 0, got {value}')
        if not (isinstance(pl_batch_shrink, int) and pl_batch_shrink >= 1):
            raise ValueError(f'StyleGAN2Loss: pl_batch_shrink must be an integer >= 1, got {pl_batch_shrink!r}')
        self.G_mapping, self.G_synthesis, self.D, self.augment_pipe = G_mapping, G_synthesis, D, augment_pipe
        self.device = device
        self.r1_gamma = r1_gamma
        self.style_mixing_prob = style_mixing_prob
        self.pl_weight, self.pl_decay, self.pl_batch_shrink = pl_weight, pl_decay, pl_batch_shrink
        self.pl_mean = torch.zeros([], device=device)  # running mean of the path length

    # Hook: may replace the latents (and labels) of a batch before G sees them.
    def transform_latents(self, z, c):
        return z, c

    # Hook: extra loss of one step, added to that step's loss before backward
    # (and scaled by gain like it). step is 'Gmain', 'Gpl', 'Dgen', 'Dreal' or
    # 'Dr1'; img is the image before augmentation, logits are None for 'Gpl',
    # ws are None for real images. Returns a [N] or scalar tensor, or None.
    def extra_loss(self, step, img, c, logits, ws):
        return None

    def state_dict(self):
        return dict(pl_mean=self.pl_mean.detach().cpu().clone())

    def load_state_dict(self, state):
        state = dict(state)
        if 'pl_mean' in state:
            self.pl_mean.copy_(torch.as_tensor(state.pop('pl_mean')))
        super().load_state_dict(state)

    # Style mixing: with probability style_mixing_prob, the layers from a random
    # cutoff in [1, num_ws) on take their w from a second, fresh latent.
    def _mix_styles(self, ws, z, c):
        num_ws = ws.shape[1]
        cutoff = int(torch.empty([], dtype=torch.int64, device=ws.device).random_(1, num_ws))
        if not bool(torch.rand([], device=ws.device) < self.style_mixing_prob):
            cutoff = num_ws  # no mixing this time (the second mapping call still runs)
        other = self.G_mapping(torch.randn_like(z), c, skip_w_avg_update=True)
        ws[:, cutoff:] = other[:, cutoff:]

    # Generate images from latents; returns (img, ws).
    def run_G(self, z, c, sync):
        z, c = self.transform_latents(z, c)
        with misc.ddp_sync(self.G_mapping, sync):
            ws = self.G_mapping(z, c)
            if self.style_mixing_prob > 0:
                with torch.autograd.profiler.record_function('style_mixing'):
                    self._mix_styles(ws, z, c)
        with misc.ddp_sync(self.G_synthesis, sync):
            return self.G_synthesis(ws), ws

    # Score images with D, after augmentation when a pipe is set.
    def run_D(self, img, c, sync):
        augmented = img if self.augment_pipe is None else self.augment_pipe(img)
        with misc.ddp_sync(self.D, sync):
            return self.D(augmented, c)

    # Report D's raw scores and their signs for 'real' or 'fake' images.
    @staticmethod
    def _report_scores(kind, logits):
        training_stats.report(f'Loss/scores/{kind}', logits)
        training_stats.report(f'Loss/signs/{kind}', logits.sign())

    # Batch mean of a step's loss plus the batch mean of the extra_loss() hook's term, if any.
    def _mean_with_extra(self, loss, step, img, c, logits, ws):
        extra = self.extra_loss(step, img, c, logits, ws)
        return loss.mean() if extra is None else loss.mean() + extra.mean()

    # Backward of gain * objective under a profiler range.
    @staticmethod
    def _backward(name, objective, gain):
        with torch.autograd.profiler.record_function(name + '_backward'):
            (objective * gain).backward()

    # G main: non-saturating loss, -log(sigmoid(D(G(z)))).
    def _G_main(self, gen_z, gen_c, sync, gain):
        with torch.autograd.profiler.record_function('Gmain_forward'):
            img, ws = self.run_G(gen_z, gen_c, sync=sync)
            logits = self.run_D(img, gen_c, sync=False)
            self._report_scores('fake', logits)
            loss = training_stats.report('Loss/G/loss', torch.nn.functional.softplus(-logits))
            objective = self._mean_with_extra(loss, 'Gmain', img, gen_c, logits, ws)
        self._backward('Gmain', objective, gain)

    # G regulariser: squared deviation of the path length from its running mean,
    # on the first 1 / pl_batch_shrink of the batch.
    def _G_path_length(self, gen_z, gen_c, sync, gain):
        with torch.autograd.profiler.record_function('Gpl_forward'):
            n = max(gen_z.shape[0] // self.pl_batch_shrink, 1)
            img, ws = self.run_G(gen_z[:n], gen_c[:n], sync=sync)
            y = torch.randn_like(img) / np.sqrt(img.shape[2] * img.shape[3])  # unit-variance per image
            lengths = path_lengths(img, ws, y)
            # Penalise against the updated mean, keeping its graph; store it detached.
            updated_mean = self.pl_mean.lerp(lengths.mean(), self.pl_decay)
            self.pl_mean.copy_(updated_mean.detach())
            penalty = training_stats.report('Loss/pl_penalty', (lengths - updated_mean).square())
            loss = training_stats.report('Loss/G/reg', penalty * self.pl_weight)
            objective = self._mean_with_extra(loss, 'Gpl', img, gen_c, None, ws)
        self._backward('Gpl', objective, gain)

    # D on fakes: -log(1 - sigmoid(D(G(z)))). Returns the per-sample loss for the D/loss report.
    def _D_fake(self, gen_z, gen_c, gain):
        with torch.autograd.profiler.record_function('Dgen_forward'):
            img, ws = self.run_G(gen_z, gen_c, sync=False)
            logits = self.run_D(img, gen_c, sync=False)
            self._report_scores('fake', logits)
            loss = torch.nn.functional.softplus(logits)
            objective = self._mean_with_extra(loss, 'Dgen', img, gen_c, logits, ws)
        self._backward('Dgen', objective, gain)
        return loss.detach()

    # D on reals: -log(sigmoid(D(x))) and/or the lazy R1 penalty, from one D pass.
    def _D_real(self, real_img, real_c, sync, gain, main, r1, loss_fake):
        name = {(True, True): 'Dreal_Dr1', (True, False): 'Dreal', (False, True): 'Dr1'}[(main, r1)]
        with torch.autograd.profiler.record_function(name + '_forward'):
            x = real_img.detach().requires_grad_(r1)  # R1 differentiates w.r.t. the unaugmented reals
            logits = self.run_D(x, real_c, sync=sync)
            self._report_scores('real', logits)
            objective = 0
            if main:
                loss = torch.nn.functional.softplus(-logits)
                training_stats.report('Loss/D/loss', loss_fake + loss)
                objective = self._mean_with_extra(loss, 'Dreal', real_img, real_c, logits, None)
            if r1:
                penalty = training_stats.report('Loss/r1_penalty', r1_penalty(logits, x))
                loss = training_stats.report('Loss/D/reg', penalty * (self.r1_gamma / 2))
                objective = objective + self._mean_with_extra(loss, 'Dr1', real_img, real_c, logits, None)
        self._backward(name, objective, gain)

    def accumulate_gradients(self, phase, real_img, real_c, gen_z, gen_c, sync, gain):
        if phase not in self.phases:
            raise ValueError(f'Unknown phase "{phase}"; expected one of {", ".join(self.phases)}')
        net, part = phase[0], phase[1:]
        main = part in ('main', 'both')
        reg = part in ('reg', 'both') and (self.pl_weight if net == 'G' else self.r1_gamma) != 0
        if net == 'G':
            # With both terms in one phase, the gradient sync happens in the last (regulariser) backward.
            if main:
                self._G_main(gen_z, gen_c, sync=(sync and not reg), gain=gain)
            if reg:
                self._G_path_length(gen_z, gen_c, sync=sync, gain=gain)
        else:
            loss_fake = self._D_fake(gen_z, gen_c, gain=gain) if main else None
            if main or reg:
                self._D_real(real_img, real_c, sync=sync, gain=gain, main=main, r1=reg, loss_fake=loss_fake)

#----------------------------------------------------------------------------
