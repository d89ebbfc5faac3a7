"""Perceptual Path Length (PPL), from "A Style-Based Generator Architecture for Generative Adversarial Networks" (Karras et al., 2019)."""

import copy

import numpy as np
import torch

from . import metric_utils

#----------------------------------------------------------------------------

def slerp(a, b, t):
    """Spherical interpolation between the directions of a and b.

    Args:
        a, b: [..., D] tensors; t: tensor broadcastable to [..., 1].
    Returns:
        [..., D] unit vectors; t = 0 gives a / |a|, t = 1 gives b / |b|.
    """
    a = a / a.norm(dim=-1, keepdim=True)
    b = b / b.norm(dim=-1, keepdim=True)
    cos_angle = (a * b).sum(dim=-1, keepdim=True).clamp(-1, 1)
    angle = t * torch.acos(cos_angle)
    ortho = b - cos_angle * a  # the part of b orthogonal to a
    ortho = ortho / ortho.norm(dim=-1, keepdim=True)
    out = a * torch.cos(angle) + ortho * torch.sin(angle)
    return out / out.norm(dim=-1, keepdim=True)

#----------------------------------------------------------------------------
# Squared LPIPS distance between the images at t and t + epsilon along a
# latent path, divided by epsilon^2. The randomness comes in as arguments.
# Args: G (copied); G_kwargs for synthesis; epsilon; space 'z' or 'w';
# sampling 'full' or 'end' (decides t, outside); crop: keep the central face
# region as the original metric; vgg16: LPIPS detector.

class PPLSampler(torch.nn.Module):
    def __init__(self, G, G_kwargs, epsilon, space, sampling, crop, vgg16):
        if space not in ('z', 'w'):
            raise ValueError(f'PPL: space must be "z" or "w", got {space!r}')
        if sampling not in ('full', 'end'):
            raise ValueError(f'PPL: sampling must be "full" or "end", got {sampling!r}')
        super().__init__()
        self.G = copy.deepcopy(G)
        self.G_kwargs = dict(G_kwargs, noise_mode='const', force_fp32=True)
        self.epsilon = epsilon
        self.space = space
        self.sampling = sampling
        self.crop = crop
        self.vgg16 = vgg16

    # t: [N]; z0, z1: [N, z_dim]; c: [N, c_dim]. Returns [N] distances.
    def forward(self, t, z0, z1, c):
        both_c = torch.cat([c, c])
        if self.space == 'w':
            w0, w1 = self.G.mapping(z=torch.cat([z0, z1]), c=both_c).chunk(2)
            tt = t.reshape(-1, 1, 1)
            ws = torch.cat([w0.lerp(w1, tt), w0.lerp(w1, tt + self.epsilon)])
        else:
            tt = t.reshape(-1, 1)
            ws = self.G.mapping(z=torch.cat([slerp(z0, z1, tt), slerp(z0, z1, tt + self.epsilon)]), c=both_c)
        img = self.G.synthesis(ws, **self.G_kwargs)
        img = self._lpips_input(img)
        lpips = self.vgg16(img, resize_images=False, return_lpips=True)
        lpips_t0, lpips_t1 = lpips.chunk(2)
        return (lpips_t1 - lpips_t0).square().sum(dim=1) / self.epsilon ** 2

    # Crop, box-downsample to at most 256 px, map to [0, 255] with three channels.
    def _lpips_input(self, img):
        if self.crop:
            assert img.shape[2] == img.shape[3]
            eighth = img.shape[2] // 8
            img = img[:, :, eighth * 3:eighth * 7, eighth * 2:eighth * 6]
        factor = self.G.img_resolution // 256
        if factor > 1:
            n, ch, h, w = img.shape
            img = img.reshape(n, ch, h // factor, factor, w // factor, factor).mean(dim=(3, 5))
        img = (img + 1) * (255 / 2)
        if img.shape[1] == 1:
            img = img.repeat(1, 3, 1, 1)
        return img

#----------------------------------------------------------------------------

def trimmed_mean(dist, lo_percentile=1, hi_percentile=99):
    """Mean of the values between the lo (rounded down) and hi (rounded up) percentiles, inclusive.

    Args:
        dist: [N] array.
    Returns:
        float.
    """
    dist = np.asarray(dist, np.float64)
    lo = np.percentile(dist, lo_percentile, method='lower')
    hi = np.percentile(dist, hi_percentile, method='higher')
    return float(dist[(dist >= lo) & (dist <= hi)].mean())

#----------------------------------------------------------------------------
# PPL over num_samples seeded samples (sample i uses metric_utils.sample_rng(opts.seed, i)).

def compute_ppl(opts, num_samples, epsilon, space, sampling, crop, batch_size):
    if opts.G is None:
        raise ValueError('PPL needs a generator but MetricOptions.G is None; pass G=<generator>')
    vgg16 = metric_utils.get_feature_detector(metric_utils.VGG16_URL, device=opts.device, num_gpus=opts.num_gpus,
                                              rank=opts.rank, verbose=opts.progress.verbose)
    sampler = PPLSampler(G=opts.G, G_kwargs=opts.G_kwargs, epsilon=epsilon, space=space, sampling=sampling, crop=crop, vgg16=vgg16)
    sampler.eval().requires_grad_(False).to(opts.device)
    inputs = metric_utils.LatentSampler(sampler.G, opts.seed, G_kwargs=dict(noise_mode='random'),
                                        dataset_kwargs=opts.dataset_kwargs, device=opts.device)

    # Distances of all samples, in sample order.
    dist = []
    step = batch_size * opts.num_gpus
    progress = opts.progress.sub(tag='ppl sampling', num_items=num_samples)
    with torch.no_grad():
        for start in range(0, num_samples, step):
            idx = start + opts.rank + opts.num_gpus * np.arange(batch_size)
            x = inputs.draw(idx, num_z=2, draw_t=(sampling == 'full'))
            t = x.t if x.t is not None else torch.zeros([batch_size], device=opts.device)
            inputs.set_noise(x.noise, repeat=2)  # both ends of a path share the sample's noise
            dist.append(metric_utils.gather_interleaved(sampler(t, x.z[0], x.z[1], x.c), opts.num_gpus))
            progress.update(min(start + step, num_samples))
    dist = torch.cat(dist)[:num_samples].cpu().numpy()
    return trimmed_mean(dist)

#----------------------------------------------------------------------------
