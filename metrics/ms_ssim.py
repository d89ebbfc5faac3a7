"""Multi-scale structural similarity (MS-SSIM, Wang, Simoncelli and Bovik 2003) and the MS-SSIM diversity of an image set (Odena et al. 2016; RFGAN, Bang and Shim 2018, Table 1).

MS-SSIM of two images, per channel, with the standard constants:
  - 5 scales; scale j + 1 is scale j average-pooled 2x2 (odd rows/columns dropped);
  - at every scale, local means, variances and covariance under a Gaussian
    window (size 11, sigma 1.5), computed only where the window fits ('valid');
  - contrast-structure cs_j = mean of (2 s_xy + C2) / (s_x^2 + s_y^2 + C2);
    at the last scale the full SSIM map l * cs is averaged instead
    (l = (2 m_x m_y + C1) / (m_x^2 + m_y^2 + C1));
  - MS-SSIM = ssim_5^w5 * prod_{j<5} cs_j^wj with
    w = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333), C1 = (0.01 L)^2,
    C2 = (0.03 L)^2, L = 255.
Choices where the papers are silent:
  - Small images: when a scale is smaller than 11 pixels the window is
    clipped to the scale's size (a Gaussian of that many taps, same sigma),
    so 16-64 px images still get 5 scales.
  - Colour: MS-SSIM of each channel, then the mean over channels.
  - Negative cs_j (anti-correlated images) would give complex powers; they are
    clamped to 0 first, so such pairs score 0.
Diversity: the mean MS-SSIM over random pairs of images; lower = more
diverse. Generated pairs are consecutive samples (2k, 2k+1) of the seeded
stream, i.e. independent draws; real pairs are drawn with a seeded RNG.
"""

import numpy as np
import torch

import dnnlib
from . import metric_utils

#----------------------------------------------------------------------------
# The standard constants (Wang et al. 2003).

SCALE_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
WINDOW_SIZE = 11
WINDOW_SIGMA = 1.5
K1, K2 = 0.01, 0.03
DYNAMIC_RANGE = 255.0

#----------------------------------------------------------------------------
# Normalised 1-D Gaussian of `size` taps centred on the middle tap.

def gaussian_window(size, sigma=WINDOW_SIGMA, dtype=torch.float64, device='cpu'):
    x = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    g = torch.exp(-x ** 2 / (2 * sigma ** 2))
    return g / g.sum()

# Gaussian-filtered x, separable, valid positions only. x: [N, C, H, W].
def _filter_valid(x, size):
    g = gaussian_window(size, dtype=x.dtype, device=x.device)
    c = x.shape[1]
    x = torch.nn.functional.conv2d(x, g.reshape(1, 1, size, 1).repeat(c, 1, 1, 1), groups=c)
    return torch.nn.functional.conv2d(x, g.reshape(1, 1, 1, size).repeat(c, 1, 1, 1), groups=c)

# Mean SSIM map and mean contrast-structure map of one scale: two [N, C] tensors.
def _ssim_terms(x, y, c1, c2):
    size = min(WINDOW_SIZE, x.shape[2], x.shape[3])
    mu_x, mu_y = _filter_valid(x, size), _filter_valid(y, size)
    var_x = _filter_valid(x * x, size) - mu_x * mu_x
    var_y = _filter_valid(y * y, size) - mu_y * mu_y
    cov_xy = _filter_valid(x * y, size) - mu_x * mu_y
    cs = (2 * cov_xy + c2) / (var_x + var_y + c2)
    lum = (2 * mu_x * mu_y + c1) / (mu_x * mu_x + mu_y * mu_y + c1)
    return (lum * cs).mean(dim=[2, 3]), cs.mean(dim=[2, 3])

#----------------------------------------------------------------------------

def ms_ssim(x, y, weights=SCALE_WEIGHTS, dynamic_range=DYNAMIC_RANGE, dtype=torch.float64):
    """MS-SSIM of image pairs (x[i], y[i]), mean over channels.

    Args:
        x, y:  [N, C, H, W] images (any dtype) in [0, dynamic_range]; H, W >= 2^(len(weights) - 1).
        dtype: precision of the computation.
    Returns:
        [N] tensor of `dtype`, in [0, 1].
    """
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(f'ms_ssim: expected two [N, C, H, W] batches of the same shape, got {list(x.shape)} and {list(y.shape)}')
    num_scales = len(weights)
    if min(x.shape[2:]) < 2 ** (num_scales - 1):
        raise ValueError(f'ms_ssim: {num_scales} scales need images of at least {2 ** (num_scales - 1)} px, got {list(x.shape[2:])}')
    x, y = x.to(dtype), y.to(dtype)
    c1, c2 = (K1 * dynamic_range) ** 2, (K2 * dynamic_range) ** 2
    w = torch.tensor(weights, dtype=dtype, device=x.device)
    terms = []
    for scale in range(num_scales):
        if scale > 0:
            x, y = torch.nn.functional.avg_pool2d(x, 2), torch.nn.functional.avg_pool2d(y, 2)
        ssim, cs = _ssim_terms(x, y, c1, c2)
        terms.append(ssim if scale == num_scales - 1 else cs)
    terms = torch.stack(terms).clamp(min=0)                     # [S, N, C]
    value = torch.prod(terms ** w.reshape(-1, 1, 1), dim=0)     # [N, C]
    return value.mean(dim=1)

#----------------------------------------------------------------------------
# A detector for the generator pass: MS-SSIM of the pairs (2k, 2k+1) of its
# batch, written into both rows. Input: uint8 [N, 3, H, W] (N even); output
# float32 [N, 1]. The mean over rows is the mean over pairs.

class PairMSSSIM(torch.nn.Module):
    def forward(self, img):
        if img.shape[0] % 2 != 0:
            raise ValueError(f'PairMSSSIM: needs an even batch of images, got {img.shape[0]}')
        values = ms_ssim(img[0::2], img[1::2])
        return values.repeat_interleave(2).to(torch.float32).unsqueeze(1)

#----------------------------------------------------------------------------
# Mean MS-SSIM of num_pairs seeded random pairs of distinct dataset images.
# Pairs are shared out over ranks and summed. Returns float (all ranks).

def real_pairs_ms_ssim(opts, num_pairs, batch_pairs=64):
    dataset = dnnlib.util.construct_class_by_name(**opts.dataset_kwargs)
    if len(dataset) < 2:
        raise ValueError(f'MS-SSIM of real pairs needs at least 2 images; dataset "{dataset.name}" has {len(dataset)}')
    rng = np.random.default_rng(opts.seed)
    first = rng.integers(len(dataset), size=num_pairs)
    second = (first + rng.integers(1, len(dataset), size=num_pairs)) % len(dataset)  # never the same image
    mine = np.arange(opts.rank, num_pairs, opts.num_gpus)
    total = torch.zeros([], dtype=torch.float64, device=opts.device)
    for lo in range(0, len(mine), batch_pairs):
        idx = mine[lo:lo + batch_pairs]
        a = torch.stack([torch.as_tensor(dataset[int(i)][0]) for i in first[idx]]).to(opts.device)
        b = torch.stack([torch.as_tensor(dataset[int(i)][0]) for i in second[idx]]).to(opts.device)
        total += ms_ssim(a, b).sum()
    if opts.num_gpus > 1:
        torch.distributed.all_reduce(total)
    return float(total) / num_pairs

#----------------------------------------------------------------------------
# Mean MS-SSIM of num_pairs generated pairs (2 * num_pairs images of the
# seeded stream) and of num_pairs real pairs. NaN on ranks other than 0.

def compute_ms_ssim(opts, num_pairs):
    request = metric_utils.generator_request(opts, PairMSSSIM(), dict(), num_gen=2 * num_pairs, capture_all=True)
    stats = metric_utils.get_feature_stats(opts, dict(gen=request))['gen']
    real = real_pairs_ms_ssim(opts, num_pairs)
    if opts.rank != 0:
        return float('nan'), float('nan')
    return float(stats.get_all().astype(np.float64).mean()), real

#----------------------------------------------------------------------------
