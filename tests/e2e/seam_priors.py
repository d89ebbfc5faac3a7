"""Minimal test-only priors, one per seam of the v2 prior interface (not papers): each does the least that proves
its seam carries what a paper needs. `register()` adds them under names starting with "seam-", `unregister()` removes them."""

import torch

from priors import base
from priors import registry
from torch_utils import persistence
from torch_utils import training_stats
from training.loss import ExtraPhase

#----------------------------------------------------------------------------
# D's head: out_dim = 2; column 0 is the adversarial logit, column 1 an
# auxiliary output. realness = column 0 scaled by `scale` (scale 0 makes R1
# and ADA's signs provably come from realness: both become exactly 0).

class HeadPrior(base.Prior):
    def __init__(self, scale=1.0):
        super().__init__()
        self.scale = float(scale)
        self.seen = []  # (step, outputs are a pair, batch size) of every adversarial_loss call
        self.aux = []   # whether the auxiliary output handed to extra_loss carries a gradient

    def D_kwargs_update(self):
        return {'out_dim': 2}

    def D_outputs(self, raw):
        return raw[:, :1], raw[:, 1:]

    def realness(self, outputs):
        return outputs[0] * self.scale

    def adversarial_loss(self, step, outputs, *, batch):
        self.seen.append((step, isinstance(outputs, tuple) and len(outputs) == 2, batch.img.shape[0]))
        logit = outputs[0]
        sign = -1 if step in ('Gmain', 'Dreal') else 1
        return torch.nn.functional.softplus(sign * logit)

    def extra_loss(self, step, img, c, logits, ws, *, batch=None, outputs=None):
        if step == 'Dreal':
            self.aux.append(bool(outputs[1].requires_grad))
            return outputs[1].square().mean(dim=1)  # the auxiliary output reaches the loss
        return None

#----------------------------------------------------------------------------
# A side module of the synthesis network: per-layer scale 1 + a_i * side,
# with a_i learned (zero-initialised) and side a per-sample scalar taken from
# the real batch (its mean pixel); side=None (sampling) uses a stored value.

@persistence.persistent_class
class ScaleBySide(torch.nn.Module):
    def __init__(self, channels, init=0.0):
        super().__init__()
        self.channels = list(channels)
        self.a = torch.nn.Parameter(torch.full([len(self.channels)], float(init)))
        self.register_buffer('stored', torch.ones([]))
        self.calls = 0

    def forward(self, i, x, side):
        self.calls += 1
        value = self.stored.expand(x.shape[0]) if side is None else side
        return x * (1 + self.a[i] * value.to(x.dtype).reshape(-1, 1, 1, 1))

class SidePrior(base.Prior):
    def G_kwargs_update(self):
        return {'synthesis_kwargs.side_kwargs': dict(class_name='seam_priors.ScaleBySide', init=0.5)}

    def synthesis_inputs(self, z, c, *, step, batch):
        side = batch.img.flatten(1).mean(dim=1)
        return {'side': side[:z.shape[0]] if side.shape[0] >= z.shape[0] else side.repeat(z.shape[0])[:z.shape[0]]}

#----------------------------------------------------------------------------
# An extra phase: a linear probe from D's input to one number, trained with its
# own Adam to predict the mean pixel of the real images.

@persistence.persistent_class
class Probe(torch.nn.Module):
    def __init__(self, num_inputs):
        super().__init__()
        self.fc = torch.nn.Linear(num_inputs, 1)

    def forward(self, img):
        return self.fc(img.flatten(1))

class PhasePrior(base.Prior):
    def __init__(self, lr=0.01, interval=1, second_G_step=False):
        super().__init__()
        self.lr, self.interval, self.second_G_step = lr, interval, second_G_step

    def setup(self, ctx):
        super().setup(ctx)
        torch.manual_seed(1234)  # own construction; the loop broadcasts rank 0's module anyway
        D = ctx.D
        self.probe = Probe(D.img_channels * D.img_resolution ** 2)

    def _accumulate(self, batch, gain):
        target = batch.real_img.flatten(1).mean(dim=1, keepdim=True)
        loss = (self.probe(batch.real_img) - target).square().mean()
        training_stats.report('Prior/seam-phase/loss', loss)
        (loss * gain).backward()

    def _accumulate_G(self, batch, gain):
        img = self.ctx.G_synthesis(self.ctx.G_mapping(batch.gen_z, batch.gen_c))
        (img.square().mean() * gain).backward()

    def extra_phases(self):
        phases = [ExtraPhase('probe', self.probe, dict(class_name='torch.optim.Adam', lr=self.lr), self.interval, self._accumulate)]
        if self.second_G_step:
            phases.append(ExtraPhase('G2', 'G', None, 1, self._accumulate_G))
        return phases

#----------------------------------------------------------------------------
# A sample-time transform: latents scaled by `factor` (0 = every sample is G(0)).

class ScaleLatents:
    def __init__(self, factor):
        self.factor = float(factor)

    def __call__(self, z, c, *, G, D):
        assert G is not None and D is not None
        return z * self.factor, c

class SamplePrior(base.Prior):
    def sample_transform_kwargs(self):
        return dict(class_name='seam_priors.ScaleLatents', factor=0.0)

#----------------------------------------------------------------------------
# A second D extension: frozen random features of the image (buffers only).

@persistence.persistent_class
class FrozenFeatures(torch.nn.Module):
    def __init__(self, img_resolution, img_channels, num_features=3):
        super().__init__()
        self.num_features = int(num_features)
        self.register_buffer('weight', torch.randn([num_features, img_channels * img_resolution ** 2]) / img_resolution)

    def forward(self, img):
        return torch.tanh(img.flatten(1) @ self.weight.t())

class FeaturePrior(base.Prior):
    def D_kwargs_update(self):
        return {'feature_kwargs': dict(class_name='seam_priors.FrozenFeatures', num_features=3), 'feature_at': 'fc'}

#----------------------------------------------------------------------------

# name -> class of every seam prior.
PRIORS = {'seam-head': HeadPrior, 'seam-side': SidePrior, 'seam-phase': PhasePrior, 'seam-sample': SamplePrior, 'seam-features': FeaturePrior}

def register():
    for name, cls in PRIORS.items():
        if name not in registry.list_priors():
            registry.register_prior(name)(cls)

def unregister():
    for name in PRIORS:
        if name in registry.list_priors():
            registry.unregister_prior(name)

#----------------------------------------------------------------------------
