"""Missing modes counted by a third-party noisy discriminator (Che et al. 2017, §3.4 and §4.2.1, Tables 3-4), the library behind missing_modes.py.

A fresh D* with the architecture of the GAN's own D is trained to tell
training images (label 1) from generated images (label 0), both with
zero-mean Gaussian noise of std sigma added to its inputs (in D's [-1, 1]
pixel range). D* never trains G. It is then applied to held-out test images
(without noise); a test image with P(real) = sigmoid(D*(x)) above a threshold
tau lies on a mode G misses. Choices (spec §3.6 items 10-11): D* outputs
P(real), so "close to 1" means missing; tau = 0.9 by default and the count
is reported for a range of thresholds; the loss is the non-saturating logistic
loss without R1 or augmentation.

Every random draw is seeded per training step (real indices, generated
samples, input noise), so a run resumed from its state file continues exactly
as an uninterrupted one.
"""

import copy

import numpy as np
import torch

import dnnlib
from torch_utils import misc
from . import metric_utils

#----------------------------------------------------------------------------

DEFAULT_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)

#----------------------------------------------------------------------------
# A fresh D with the architecture of `D` (a persistent network with
# init_kwargs), its weights drawn from `seed`.

def fresh_discriminator(D, seed):
    if not hasattr(D, 'init_kwargs'):
        raise ValueError(f'{type(D).__name__} does not record its constructor arguments; a snapshot D from train.py is needed')
    if int(getattr(D, 'c_dim', 0)) != 0:
        raise ValueError(f'D is conditional (c_dim={D.c_dim}); the noisy-D missing-mode count supports unconditional networks only')
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # the constructor draws its weights from the global generator
        return type(D)(*getattr(D, 'init_args', ()), **D.init_kwargs).train().requires_grad_(True)

#----------------------------------------------------------------------------
# Training of D* with seeded inputs.

class NoisyDTrainer:
    def __init__(self,
        D_star,                 # Fresh discriminator, trained in place.
        G,                      # Generator (any device; a private copy is used).
        dataset_kwargs,         # Training images.
        sigma,                  # Std of the input noise, in [-1, 1] pixel units.
        seed        = 0,        # Seeds every draw.
        batch_size  = 32,       # Real images per step (and as many generated ones).
        lr          = 0.0025,   # Adam learning rate (the GAN D's).
        betas       = (0, 0.99),# Adam betas (the GAN D's).
        device      = 'cpu',
    ):
        self.device = torch.device(device)
        self.D = D_star.to(self.device)
        self.G = copy.deepcopy(G).eval().requires_grad_(False).to(self.device)
        self.dataset = dnnlib.util.construct_class_by_name(**dict(dataset_kwargs, use_labels=False, xflip=False))
        self.sigma, self.seed, self.batch_size = float(sigma), int(seed), int(batch_size)
        self.sampler = metric_utils.LatentSampler(self.G, seed=self.seed, device=self.device)
        self.opt = torch.optim.Adam(self.D.parameters(), lr=lr, betas=tuple(float(b) for b in betas), eps=1e-8)
        self.step = 0

    # Inputs of step `step`: real and generated images with noise, float [B, C, H, W].
    def _inputs(self, step):
        rng = np.random.default_rng([int(step), self.seed, 1])
        idx = rng.integers(len(self.dataset), size=self.batch_size)
        real = misc.uint8_to_images(np.stack([self.dataset[int(i)][0] for i in idx])).to(self.device)
        with torch.no_grad():
            fake = self.sampler.generate(np.arange(step * self.batch_size, (step + 1) * self.batch_size), batch_gen=self.batch_size)
        fake = misc.uint8_to_images(misc.images_to_uint8(fake).permute(0, 3, 1, 2))  # quantised like the reals
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        noise = torch.randn([2, *real.shape], generator=gen).to(self.device) * self.sigma
        return real + noise[0], fake + noise[1]

    # One D* step; returns the loss.
    def train_step(self):
        real, fake = self._inputs(self.step)
        c = torch.zeros([self.batch_size, 0], device=self.device)
        loss = torch.nn.functional.softplus(-self.D(real, c)).mean() + torch.nn.functional.softplus(self.D(fake, c)).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.step += 1
        return float(loss.detach())

    def state_dict(self):
        return dict(D=self.D.state_dict(), opt=self.opt.state_dict(), step=self.step)

    def load_state_dict(self, state):
        self.D.load_state_dict(state['D'])
        self.opt.load_state_dict(state['opt'])
        self.step = int(state['step'])

#----------------------------------------------------------------------------
# P(real) = sigmoid(D*(x)) of every image of a dataset, in item order, without
# noise. The last batch is padded with its own images so that D's minibatch
# standard deviation groups stay whole. Returns float64 [N].

def real_probabilities(D_star, dataset_kwargs, batch_size=32, device='cpu'):
    dataset = dnnlib.util.construct_class_by_name(**dict(dataset_kwargs, use_labels=False, xflip=False))
    D_star = D_star.eval()
    out = []
    with torch.no_grad():
        for lo in range(0, len(dataset), batch_size):
            idx = list(range(lo, min(lo + batch_size, len(dataset))))
            padded = (idx * batch_size)[:batch_size]
            x = misc.uint8_to_images(np.stack([dataset[i][0] for i in padded])).to(device)
            logits = D_star(x, torch.zeros([len(padded), 0], device=device)).flatten()
            out.append(torch.sigmoid(logits.to(torch.float64))[:len(idx)].cpu())
    dataset.close()
    return torch.cat(out).numpy()

# Number of probabilities above each threshold: list of (threshold, count).
def missing_mode_curve(probabilities, thresholds=DEFAULT_THRESHOLDS):
    probabilities = np.asarray(probabilities, dtype=np.float64)
    return [(float(t), int((probabilities > t).sum())) for t in thresholds]

#----------------------------------------------------------------------------
