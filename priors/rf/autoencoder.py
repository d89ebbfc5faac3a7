"""RFGAN's denoising autoencoder (Bang & Shim, ICML 2018, §3.1 and §4; Vincent et al. 2008): encoder shaped like D, decoder shaped like G, and its pretraining on the real images.

The autoencoder is

    x~ = corrupt(x)                         Gaussian: x + sigma * eps, eps ~ N(0, I)   (default, sigma = 0.1)
                                            mask:     x * m, m_i ~ Bernoulli(1 - p)    (Vincent 2008's masking noise)
    code = W h1(x~),  h1 = E(x~)            E: the encoder (encoder.py), W: one linear layer to code_dim
    x^ = Dec(code)                          Dec: a generator of the run's G architecture with z = code, no label
    L = mean_n l(x^_n, x_n)                 l = per-pixel mean of (x^ - x)^2 (L2, default) or |x^ - x| (L1)

trained with Adam on the real images (pixels in [-1, 1]) and then frozen. The
paper gives neither the corruption nor the schedule; the defaults here are the
ones of the project spec (§4.6) and are discussed in docs/rf.md.
"""

import time

import numpy as np
import torch

import dnnlib
from torch_utils import misc
from training import networks

#----------------------------------------------------------------------------

CORRUPTIONS = ('gaussian', 'mask', 'none')
LOSSES = ('l2', 'l1')

#----------------------------------------------------------------------------
# Input corruption of the denoising autoencoder.

def corrupt(img, kind, level, generator=None):
    """Corrupt images for denoising-autoencoder training.

    Args:
        img:       [N, C, H, W] float tensor in [-1, 1].
        kind:      'gaussian' (img + level * N(0, 1)), 'mask' (each value set to 0, mid grey, with
                   probability level) or 'none'.
        level:     float >= 0: the noise std, or the masking probability in [0, 1].
        generator: torch.Generator on img's device, or None for the global RNG.
    Returns:
        [N, C, H, W] tensor of img's dtype.
    """
    if kind not in CORRUPTIONS:
        raise ValueError(f'corruption must be one of {", ".join(CORRUPTIONS)}, got {kind!r}')
    if level < 0 or (kind == 'mask' and level > 1):
        raise ValueError(f'corruption level must be >= 0 (and <= 1 for "mask"), got {level!r}')
    if kind == 'none' or level == 0:
        return img
    if kind == 'gaussian':
        return img + level * torch.randn(img.shape, generator=generator, device=img.device, dtype=img.dtype)
    keep = torch.rand(img.shape, generator=generator, device=img.device) >= level
    return img * keep.to(img.dtype)

#----------------------------------------------------------------------------
# Per-image reconstruction loss.

def reconstruction_loss(recon, img, kind='l2'):
    """Per-image reconstruction error (§3.3 of the paper names L2 or L1).

    Args:
        recon, img: [N, ...] float tensors of the same shape.
        kind:       'l2' (mean squared error per image) or 'l1' (mean absolute error per image).
    Returns:
        [N] tensor.
    """
    if kind not in LOSSES:
        raise ValueError(f'loss must be one of {", ".join(LOSSES)}, got {kind!r}')
    if recon.shape != img.shape:
        raise ValueError(f'reconstruction_loss: shapes differ, {list(recon.shape)} vs {list(img.shape)}')
    diff = (recon - img).flatten(1)
    return diff.square().mean(dim=1) if kind == 'l2' else diff.abs().mean(dim=1)

#----------------------------------------------------------------------------
# The autoencoder: encoder E (D's shape), linear bottleneck W, decoder (G's
# shape, fed with the code as z and an empty label).

class DenoisingAutoencoder(torch.nn.Module):
    """Args: img_resolution, img_channels; encoder_kwargs: dict(class_name=..., **kwargs) of E, built as
    `cls(img_resolution=..., img_channels=..., **kwargs)` with a `num_features` attribute;
    decoder_kwargs: dict(class_name=..., **kwargs) of a generator, built as
    `cls(z_dim=code_dim, c_dim=0, img_resolution=..., img_channels=..., **kwargs)`; code_dim: size of the code."""

    def __init__(self, img_resolution, img_channels, encoder_kwargs, decoder_kwargs, code_dim):
        super().__init__()
        self.encoder = dnnlib.util.construct_class_by_name(img_resolution=img_resolution, img_channels=img_channels, **encoder_kwargs)
        self.bottleneck = networks.FullyConnectedLayer(int(self.encoder.num_features), int(code_dim))
        self.decoder = dnnlib.util.construct_class_by_name(z_dim=int(code_dim), c_dim=0, img_resolution=img_resolution,
                                                           img_channels=img_channels, **decoder_kwargs)
        # A StyleGAN2 decoder runs without its per-pixel noise: the code alone must explain the image.
        self._decoder_kwargs = dict(noise_mode='const') if isinstance(self.decoder, networks.Generator) else dict()

    def encode(self, img):
        return self.bottleneck(self.encoder(img))  # [N, code_dim]

    def decode(self, code):
        return self.decoder(code, code.new_zeros([code.shape[0], 0]), **self._decoder_kwargs)

    def forward(self, img):
        return self.decode(self.encode(img))

#----------------------------------------------------------------------------
# Dataset items as float tensors on `device`: uint8 images -> [N, C, H, W] in
# [-1, 1]; float items (the toy lab's points) are taken as they are.

def load_images(dataset, indices, device):
    items = np.stack([dataset[int(i)][0] for i in indices])
    if items.dtype == np.uint8:
        return misc.uint8_to_images(torch.from_numpy(items)).to(device)
    return torch.from_numpy(items).to(device=device, dtype=torch.float32)

# The global order of training images: epoch after epoch of a seeded permutation.
def _image_order(num_images, num_needed, seed):
    rng = np.random.RandomState(seed)
    order = []
    while len(order) < num_needed:
        order.extend(rng.permutation(num_images).tolist())
    return order[:num_needed]

#----------------------------------------------------------------------------
# Train the denoising autoencoder on the real images. With several processes
# every rank must call this: each computes the gradient of its share of every
# global batch, the gradients are averaged, and all ranks take the same step,
# so they end with the same weights. Returns (autoencoder in eval mode, history).

def train_autoencoder(dataset_kwargs, encoder_kwargs, decoder_kwargs,
    code_dim        = 512,          # Size of the code (z_dim of the decoder).
    corruption      = 'gaussian',   # 'gaussian', 'mask' or 'none'.
    level           = 0.1,          # Noise std ('gaussian') or masking probability ('mask').
    loss            = 'l2',         # 'l2' or 'l1'.
    kimg            = 200,          # Training length in thousands of images.
    batch           = 64,           # Images per step over all processes.
    lr              = 1e-3,         # Adam learning rate.
    betas           = (0.9, 0.999), # Adam betas.
    seed            = 0,            # Initial weights, image order and corruption noise.
    max_images      = None,         # Train on the first N dataset items. None = all.
    device          = 'cpu',        # Where to train.
    rank            = 0,            # This process.
    num_gpus        = 1,            # Number of processes taking part.
    log_every       = None,         # Record the loss every this many steps. None = about 50 records.
    progress        = None,         # Callable(step, num_steps, loss) called at each record, or None.
):
    device = torch.device(device)
    if batch % num_gpus != 0:
        raise ValueError(f'autoencoder batch {batch} must be divisible by the number of processes {num_gpus}')
    dataset = dnnlib.util.construct_class_by_name(**dataset_kwargs)
    num_images = len(dataset) if max_images is None else min(int(max_images), len(dataset))
    if num_images < 1:
        raise ValueError('autoencoder: the dataset is empty')
    num_steps = max(int(np.ceil(kimg * 1000 / batch)), 1)
    log_every = log_every or max(num_steps // 50, 1)

    # Build the network with the seed, outside the caller's RNG streams.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        ae = DenoisingAutoencoder(dataset.resolution, dataset.num_channels, encoder_kwargs, decoder_kwargs, code_dim)
    ae = ae.to(device).train().requires_grad_(True)
    opt = torch.optim.Adam(ae.parameters(), lr=lr, betas=tuple(betas), eps=1e-8)
    noise_gen = torch.Generator(device=device)
    noise_gen.manual_seed(misc.rank_seed(seed, rank, num_gpus))
    order = _image_order(num_images, num_steps * batch, seed)

    # Steps: corrupt, reconstruct the clean image, average gradients over ranks, Adam.
    history = dict(step=[], kimg=[], loss=[])
    running, count, start = 0.0, 0, time.time()
    for step in range(num_steps):
        indices = order[step * batch:(step + 1) * batch][rank::num_gpus]
        img = load_images(dataset, indices, device)
        recon = ae(corrupt(img, corruption, level, noise_gen))
        value = reconstruction_loss(recon, img, loss).mean()
        opt.zero_grad(set_to_none=True)
        value.backward()
        if num_gpus > 1:
            for param in ae.parameters():
                if param.grad is not None:
                    torch.distributed.all_reduce(param.grad)
                    param.grad.div_(num_gpus)
        opt.step()
        running, count = running + float(value.detach()), count + 1
        if (step + 1) % log_every == 0 or step + 1 == num_steps:
            history['step'].append(step + 1)
            history['kimg'].append((step + 1) * batch / 1000)
            history['loss'].append(running / count)
            if progress is not None:
                progress(step + 1, num_steps, running / count)
            running, count = 0.0, 0
    history['sec'] = time.time() - start
    history['num_images'] = num_images
    return ae.eval().requires_grad_(False), history

#----------------------------------------------------------------------------
# Mean reconstruction error of clean and of corrupted images (first `num`
# dataset items), for the file's summary: dict(clean=float, corrupted=float).

@torch.no_grad()
def evaluate_autoencoder(ae, dataset_kwargs, corruption, level, loss='l2', num=256, batch=64, seed=0, device='cpu'):
    dataset = dnnlib.util.construct_class_by_name(**dataset_kwargs)
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    totals, n = dict(clean=0.0, corrupted=0.0), 0
    for start in range(0, min(num, len(dataset)), batch):
        img = load_images(dataset, range(start, min(start + batch, num, len(dataset))), device)
        totals['clean'] += float(reconstruction_loss(ae(img), img, loss).sum())
        totals['corrupted'] += float(reconstruction_loss(ae(corrupt(img, corruption, level, gen)), img, loss).sum())
        n += img.shape[0]
    return {k: v / max(n, 1) for k, v in totals.items()}

#----------------------------------------------------------------------------
