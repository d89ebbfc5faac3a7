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
        """Told how many real images the run has shown so far. No-op here."""

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
        self.device = device
        self.G_mapping = G_mapping
        self.G_synthesis = G_synthesis
        self.D = D
        self.augment_pipe = augment_pipe
        self.style_mixing_prob = style_mixing_prob
        self.r1_gamma = r1_gamma
        self.pl_batch_shrink = pl_batch_shrink
        self.pl_decay = pl_decay
        self.pl_weight = pl_weight
        self.pl_mean = torch.zeros([], device=device)

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

    # Generate images; ws come from two latents when style mixing picks a cutoff below num_ws.
    def run_G(self, z, c, sync):
        z, c = self.transform_latents(z, c)
        with misc.ddp_sync(self.G_mapping, sync):
            ws = self.G_mapping(z, c)
            if self.style_mixing_prob > 0:
                with torch.autograd.profiler.record_function('style_mixing'):
                    num_ws = ws.shape[1]
                    cutoff = torch.empty([], dtype=torch.int64, device=ws.device).random_(1, num_ws)
                    keep = torch.rand([], device=ws.device) < self.style_mixing_prob
                    cutoff = int(cutoff) if bool(keep) else num_ws
                    mixed = self.G_mapping(torch.randn_like(z), c, skip_w_avg_update=True)
                    ws[:, cutoff:] = mixed[:, cutoff:]
        with misc.ddp_sync(self.G_synthesis, sync):
            img = self.G_synthesis(ws)
        return img, ws

    # Score images with D, after augmentation when a pipe is set.
    def run_D(self, img, c, sync):
        if self.augment_pipe is not None:
            img = self.augment_pipe(img)
        with misc.ddp_sync(self.D, sync):
            logits = self.D(img, c)
        return logits

    # Batch mean of a step's loss plus the batch mean of the extra_loss() hook's term, if any.
    def _mean_with_extra(self, loss, step, img, c, logits, ws):
        extra = self.extra_loss(step, img, c, logits, ws)
        return loss.mean() if extra is None else loss.mean() + extra.mean()

    def accumulate_gradients(self, phase, real_img, real_c, gen_z, gen_c, sync, gain):
        if phase not in self.phases:
            raise ValueError(f'Unknown phase "{phase}"; expected one of {", ".join(self.phases)}')
        do_Gmain = phase in ('Gmain', 'Gboth')
        do_Dmain = phase in ('Dmain', 'Dboth')
        do_Gpl = phase in ('Greg', 'Gboth') and self.pl_weight != 0
        do_Dr1 = phase in ('Dreg', 'Dboth') and self.r1_gamma != 0

        # G: make D call the fakes real.
        if do_Gmain:
            with torch.autograd.profiler.record_function('Gmain_forward'):
                gen_img, gen_ws = self.run_G(gen_z, gen_c, sync=(sync and not do_Gpl))
                gen_logits = self.run_D(gen_img, gen_c, sync=False)
                training_stats.report('Loss/scores/fake', gen_logits)
                training_stats.report('Loss/signs/fake', gen_logits.sign())
                loss_Gmain = torch.nn.functional.softplus(-gen_logits)  # -log(sigmoid(logits))
                training_stats.report('Loss/G/loss', loss_Gmain)
                total = self._mean_with_extra(loss_Gmain, 'Gmain', gen_img, gen_c, gen_logits, gen_ws)
            with torch.autograd.profiler.record_function('Gmain_backward'):
                total.mul(gain).backward()

        # G: path-length regularisation on a shrunk batch.
        if do_Gpl:
            with torch.autograd.profiler.record_function('Gpl_forward'):
                pl_batch = max(gen_z.shape[0] // self.pl_batch_shrink, 1)
                gen_img, gen_ws = self.run_G(gen_z[:pl_batch], gen_c[:pl_batch], sync=sync)
                pl_noise = torch.randn_like(gen_img) / np.sqrt(gen_img.shape[2] * gen_img.shape[3])
                pl_lengths = path_lengths(gen_img, gen_ws, pl_noise)
                # The penalty uses the updated mean with its graph; the stored mean is detached.
                pl_mean = self.pl_mean.lerp(pl_lengths.mean(), self.pl_decay)
                self.pl_mean.copy_(pl_mean.detach())
                pl_penalty = (pl_lengths - pl_mean).square()
                training_stats.report('Loss/pl_penalty', pl_penalty)
                loss_Gpl = pl_penalty * self.pl_weight
                training_stats.report('Loss/G/reg', loss_Gpl)
                total = self._mean_with_extra(loss_Gpl, 'Gpl', gen_img, gen_c, None, gen_ws)
            with torch.autograd.profiler.record_function('Gpl_backward'):
                total.mul(gain).backward()

        # D: push the logits of fakes down.
        loss_Dgen = 0
        if do_Dmain:
            with torch.autograd.profiler.record_function('Dgen_forward'):
                gen_img, gen_ws = self.run_G(gen_z, gen_c, sync=False)
                gen_logits = self.run_D(gen_img, gen_c, sync=False)
                training_stats.report('Loss/scores/fake', gen_logits)
                training_stats.report('Loss/signs/fake', gen_logits.sign())
                loss_Dgen = torch.nn.functional.softplus(gen_logits)  # -log(1 - sigmoid(logits))
                total = self._mean_with_extra(loss_Dgen, 'Dgen', gen_img, gen_c, gen_logits, gen_ws)
            with torch.autograd.profiler.record_function('Dgen_backward'):
                total.mul(gain).backward()

        # D: push the logits of reals up, and/or R1 on the (unaugmented) reals.
        if do_Dmain or do_Dr1:
            name = 'Dreal_Dr1' if do_Dmain and do_Dr1 else 'Dreal' if do_Dmain else 'Dr1'
            with torch.autograd.profiler.record_function(name + '_forward'):
                real_img_tmp = real_img.detach().requires_grad_(do_Dr1)
                real_logits = self.run_D(real_img_tmp, real_c, sync=sync)
                training_stats.report('Loss/scores/real', real_logits)
                training_stats.report('Loss/signs/real', real_logits.sign())
                total = 0
                if do_Dmain:
                    loss_Dreal = torch.nn.functional.softplus(-real_logits)  # -log(sigmoid(logits))
                    training_stats.report('Loss/D/loss', loss_Dgen + loss_Dreal)
                    total = self._mean_with_extra(loss_Dreal, 'Dreal', real_img, real_c, real_logits, None)
                if do_Dr1:
                    r1 = r1_penalty(real_logits, real_img_tmp)
                    training_stats.report('Loss/r1_penalty', r1)
                    loss_Dr1 = r1 * (self.r1_gamma / 2)
                    training_stats.report('Loss/D/reg', loss_Dr1)
                    total = total + self._mean_with_extra(loss_Dr1, 'Dr1', real_img, real_c, real_logits, None)
            with torch.autograd.profiler.record_function(name + '_backward'):
                total.mul(gain).backward()

#----------------------------------------------------------------------------
