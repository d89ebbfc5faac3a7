"""Built-in synthetic multimodal dataset (coloured shapes with known, imbalanced mode frequencies) and its mode classifier."""

import numpy as np
import torch

from torch_utils import misc
from training import dataset as dataset_module

#----------------------------------------------------------------------------
# The modes. Mode k is one shape in one foreground colour on one background
# colour. With b = k % 4 and a = k // 4: background = b, foreground =
# (5a + b) % 8, shape = (a + b) % 4. The (background, foreground) pairs are
# distinct for all 32 modes, so colours alone identify a mode, and every
# shape is symmetric under a horizontal flip, so --mirror keeps modes intact.

MAX_MODES = 32
DEFAULT_NUM_MODES = 8
DEFAULT_FREQUENCIES = 'geometric:0.7'     # mode k has weight 0.7**k
SHAPES = ('circle', 'square', 'triangle', 'stripes')
FOREGROUNDS = (('red', (230, 40, 40)), ('green', (40, 200, 60)), ('blue', (50, 90, 240)), ('yellow', (240, 220, 40)),
               ('magenta', (220, 60, 220)), ('cyan', (50, 220, 230)), ('orange', (250, 140, 20)), ('white', (245, 245, 245)))
BACKGROUNDS = (('black', (10, 10, 10)), ('grey', (150, 150, 150)), ('navy', (20, 30, 110)), ('maroon', (110, 20, 30)))

_SIZE_RANGE = (0.42, 0.62)   # shape extent as a fraction of the image side
_MARGIN = 0.15               # shapes stay this far (fraction of the side) from every edge
_FG_JITTER = 24              # per-channel colour jitter, peak to peak, in [0, 255] units
_BG_JITTER = 16
_FG_FRACTION = 0.05          # classifier: share of pixels taken as foreground

#----------------------------------------------------------------------------
# Shape, foreground and background of mode k, as (shape, fg_index, bg_index).

def _mode_parts(k):
    a, b = divmod(k, len(BACKGROUNDS))
    return SHAPES[(a + b) % len(SHAPES)], (5 * a + b) % len(FOREGROUNDS), b

def _check_num_modes(num_modes):
    if isinstance(num_modes, bool) or not isinstance(num_modes, (int, np.integer)) or not 1 <= num_modes <= MAX_MODES:
        raise ValueError(f'num_modes must be an integer in [1, {MAX_MODES}], got {num_modes!r}')
    return int(num_modes)

#----------------------------------------------------------------------------
# Human-readable mode names, e.g. 'circle-red-on-black'.

def mode_names(num_modes=DEFAULT_NUM_MODES):
    num_modes = _check_num_modes(num_modes)
    names = []
    for k in range(num_modes):
        shape, fg, bg = _mode_parts(k)
        names.append(f'{shape}-{FOREGROUNDS[fg][0]}-on-{BACKGROUNDS[bg][0]}')
    return names

#----------------------------------------------------------------------------
# Nominal colours of each mode: (background, foreground), both float64 [num_modes, 3] in [0, 255].

def mode_prototypes(num_modes=DEFAULT_NUM_MODES):
    num_modes = _check_num_modes(num_modes)
    parts = [_mode_parts(k) for k in range(num_modes)]
    bg = np.array([BACKGROUNDS[b][1] for _, _, b in parts], dtype=np.float64)
    fg = np.array([FOREGROUNDS[f][1] for _, f, _ in parts], dtype=np.float64)
    return bg, fg

#----------------------------------------------------------------------------
# Mode frequencies as a float64 [num_modes] vector summing to 1. `frequencies`
# is None (the default, geometric:0.7), 'uniform', 'geometric' or
# 'geometric:R' (weight R**k for mode k), a comma-separated string of
# weights, or a sequence of weights; weights are normalised.

def mode_frequencies(num_modes=DEFAULT_NUM_MODES, frequencies=None):
    num_modes = _check_num_modes(num_modes)
    spec = DEFAULT_FREQUENCIES if frequencies is None else frequencies
    if isinstance(spec, str):
        text = spec.strip().lower()
        if text == 'uniform':
            weights = np.ones(num_modes)
        elif text == 'geometric' or text.startswith('geometric:'):
            ratio_text = text.partition(':')[2] or DEFAULT_FREQUENCIES.partition(':')[2]
            try:
                ratio = float(ratio_text)
            except ValueError:
                ratio = -1.0
            if not 0 < ratio <= 1:
                raise ValueError(f"frequencies: geometric ratio must be in (0, 1], got '{ratio_text}' (e.g. geometric:0.7)")
            weights = ratio ** np.arange(num_modes, dtype=np.float64)
        else:
            try:
                weights = np.array([float(x) for x in text.split(',')], dtype=np.float64)
            except ValueError:
                raise ValueError(f"frequencies: expected 'uniform', 'geometric[:R]' or comma-separated weights, got '{spec}'") from None
    else:
        try:
            weights = np.array(spec, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise ValueError(f'frequencies: expected a string or a sequence of numbers, got {spec!r}') from None
    if weights.size != num_modes:
        raise ValueError(f'frequencies: got {weights.size} weight(s) for {num_modes} modes; give one weight per mode')
    if not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
        raise ValueError(f'frequencies: weights must be finite, >= 0 and not all zero, got {weights.tolist()}')
    return weights / weights.sum()

#----------------------------------------------------------------------------
# Description stored under "synthetic" in dataset.json; the dataset exposes it
# as `mode_info`. Resolution and image count are left out because dataset_tool
# may resize or truncate the data afterwards.

def synthetic_info(num_modes=DEFAULT_NUM_MODES, frequencies=None, seed=0):
    num_modes = _check_num_modes(num_modes)
    return dict(generator='training.synthetic', version=1, num_modes=num_modes,
                frequencies=mode_frequencies(num_modes, frequencies).tolist(), seed=int(seed), mode_names=mode_names(num_modes))

#----------------------------------------------------------------------------
# Coverage of one shape on a supersampled grid. x, y: [S, S] pixel-centre
# coordinates in [0, 1]; returns a bool [S, S] mask.

def _shape_mask(shape, x, y, cx, cy, size):
    half = size / 2
    if shape == 'circle':
        return (x - cx) ** 2 + (y - cy) ** 2 <= half ** 2
    if shape == 'square':
        return np.maximum(np.abs(x - cx), np.abs(y - cy)) <= 0.9 * half
    if shape == 'triangle':
        top = cy - half  # apex at the top, base at the bottom
        return (y >= top) & (y <= cy + half) & (np.abs(x - cx) <= (y - top) / 2)
    assert shape == 'stripes'
    inside = (np.abs(x - cx) <= half) & (np.abs(y - cy) <= half)
    band = np.floor((x - (cx - half)) / (size / 5)).astype(np.int64)  # five vertical bands, odd ones empty
    return inside & (band % 2 == 0)

#----------------------------------------------------------------------------
# Iterator over (image uint8 [R, R, 3], mode int), one image at a time, so
# that large datasets need no memory. Arguments are checked on the call,
# images are drawn lazily. Image i depends only on (seed, i, resolution,
# num_modes, frequencies): a shorter dataset is a prefix of a longer one.

def iter_synthetic_images(num_images, resolution=32, num_modes=DEFAULT_NUM_MODES, frequencies=None, seed=0):
    if isinstance(num_images, bool) or not isinstance(num_images, (int, np.integer)) or num_images < 1:
        raise ValueError(f'num_images must be a positive integer, got {num_images!r}')
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)) or resolution < 8 or resolution & (resolution - 1):
        raise ValueError(f'resolution must be a power of two >= 8, got {resolution!r}')
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2 ** 32:
        raise ValueError(f'seed must be an integer in [0, 2**32), got {seed!r}')
    return _render_images(int(num_images), int(resolution), mode_frequencies(num_modes, frequencies), int(seed))

#----------------------------------------------------------------------------
# The generator behind iter_synthetic_images, on checked arguments.

def _render_images(num_images, resolution, freqs, seed):
    num_modes = freqs.size
    bg_colours, fg_colours = mode_prototypes(num_modes)

    # Draw all modes and shape parameters up front: two independent streams, row by row.
    cdf = np.cumsum(freqs)
    cdf[-1] = 1.0
    modes = np.searchsorted(cdf, np.random.RandomState([seed, 0]).random_sample(num_images), side='right')
    modes = np.minimum(modes, num_modes - 1)
    params = np.random.RandomState([seed, 1]).random_sample((num_images, 9))

    # Supersampled pixel-centre grid.
    ss = 4 if resolution <= 64 else 2
    coords = (np.arange(resolution * ss) + 0.5) / (resolution * ss)
    y, x = np.meshgrid(coords, coords, indexing='ij')

    for i in range(num_images):
        k = int(modes[i])
        shape = _mode_parts(k)[0]
        u = params[i]
        size = _SIZE_RANGE[0] + (_SIZE_RANGE[1] - _SIZE_RANGE[0]) * u[0]
        lo, hi = _MARGIN + size / 2, 1 - _MARGIN - size / 2
        cx, cy = lo + (hi - lo) * u[1], lo + (hi - lo) * u[2]
        fg = np.clip(fg_colours[k] + (u[3:6] - 0.5) * _FG_JITTER, 0, 255)
        bg = np.clip(bg_colours[k] + (u[6:9] - 0.5) * _BG_JITTER, 0, 255)

        # Average the supersampled mask into per-pixel coverage, then blend the colours.
        mask = _shape_mask(shape, x, y, cx, cy, size).reshape(resolution, ss, resolution, ss).mean(axis=(1, 3))
        image = bg + (fg - bg) * mask[:, :, np.newaxis]
        yield np.rint(image).astype(np.uint8), k

#----------------------------------------------------------------------------
# All images at once: uint8 [N, 3, R, R] (the dataset layout) and int64 [N] modes.

def generate_synthetic_images(num_images, resolution=32, num_modes=DEFAULT_NUM_MODES, frequencies=None, seed=0):
    images, modes = [], []
    for image, mode in iter_synthetic_images(num_images, resolution, num_modes, frequencies, seed):
        images.append(image.transpose(2, 0, 1))
        modes.append(mode)
    return np.stack(images), np.array(modes, dtype=np.int64)

#----------------------------------------------------------------------------
# Write a synthetic dataset to `path` (.zip or a new folder), in the layout of
# dataset_tool.py: dataset.json holds "labels" (null, or the mode as class
# label when cond=True), "modes" (the mode of every image) and "synthetic"
# (see synthetic_info). Gives the same bytes as
# `dataset_tool.py --source=synthetic` with the same settings. Returns path.

def make_synthetic_dataset(path,
    num_images  = 2000,                 # Number of images.
    resolution  = 32,                   # Image side in pixels, a power of two >= 8.
    num_modes   = DEFAULT_NUM_MODES,    # Number of modes, 1 to MAX_MODES.
    frequencies = None,                 # Mode frequencies (see mode_frequencies). None = geometric:0.7.
    seed        = 0,                    # Seed of the modes and the shape jitter.
    cond        = False,                # Also write the mode as the class label in "labels"?
):
    info = synthetic_info(num_modes, frequencies, seed)
    names, modes = [], []
    with dataset_module.DatasetWriter(path) as writer:
        for idx, (image, mode) in enumerate(iter_synthetic_images(num_images, resolution, num_modes, frequencies, seed)):
            name = dataset_module.image_archive_name(idx)
            writer.add_image(name, image)
            names.append(name)
            modes.append(mode)
        pairs = [[n, m] for n, m in zip(names, modes)]
        writer.write_metadata(dict(labels=pairs if cond else None, modes=pairs, synthetic=info))
    return path

#----------------------------------------------------------------------------
# Recover the mode of images (real synthetic ones or generator outputs) by a
# fixed colour rule:
#   1. background = per-channel median of the border ring, max(1, R // 16)
#      pixels wide (shapes never reach it);
#   2. foreground = mean colour of the 5% of pixels farthest from that
#      background in RGB (every shape covers more than 8% of the image);
#   3. mode = the k < num_modes minimising |bg - BG_k|^2 + |fg - FG_k|^2 over
#      the nominal colours of mode_prototypes().
# Shape is not used: the colour pair already identifies the mode.

def classify_modes(images, num_modes=DEFAULT_NUM_MODES, return_distances=False):
    """Assign each image to the nearest synthetic mode prototype.

    Args:
        images: [N, 3, H, W] uint8 pixels (dataset layout), or float images in
            [-1, 1] (generator output); torch tensor or numpy array.
        num_modes: number of modes of the dataset (its mode_info['num_modes']).
        return_distances: also return each image's distance to its prototype.
    Returns:
        modes: int64 numpy [N]; with return_distances also float64 numpy [N],
        the RGB distance sqrt(|bg - BG_k|^2 + |fg - FG_k|^2) to the chosen mode
        (large values flag images that resemble no mode).
    """
    pixels = _to_uint8_nhwc(images).astype(np.float64)  # [N, H, W, 3]
    num, height, width, _ = pixels.shape

    # Background: median colour of the border ring.
    ring = max(1, min(height, width) // 16)
    border = np.ones([height, width], dtype=bool)
    border[ring:height - ring, ring:width - ring] = False
    bg = np.median(pixels[:, border], axis=1)  # [N, 3]

    # Foreground: mean of the pixels farthest from the background.
    flat = pixels.reshape(num, height * width, 3)
    dist = np.linalg.norm(flat - bg[:, np.newaxis], axis=2)  # [N, H*W]
    count = max(1, int(round(_FG_FRACTION * height * width)))
    far = np.argpartition(-dist, count - 1, axis=1)[:, :count]
    fg = np.take_along_axis(flat, far[:, :, np.newaxis], axis=1).mean(axis=1)  # [N, 3]

    # Nearest prototype in the joint (background, foreground) colour space.
    proto_bg, proto_fg = mode_prototypes(num_modes)
    d2 = ((bg[:, np.newaxis] - proto_bg) ** 2).sum(-1) + ((fg[:, np.newaxis] - proto_fg) ** 2).sum(-1)  # [N, K]
    modes = d2.argmin(axis=1).astype(np.int64)
    if return_distances:
        return modes, np.sqrt(d2[np.arange(num), modes])
    return modes

#----------------------------------------------------------------------------
# Any accepted image batch -> uint8 numpy [N, H, W, 3].

def _to_uint8_nhwc(images):
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    if not isinstance(images, torch.Tensor):
        raise TypeError(f'classify_modes: images must be a torch tensor or numpy array, got {type(images).__name__}')
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f'classify_modes: images must be [N, 3, H, W], got shape {list(images.shape)}')
    if images.dtype == torch.uint8:
        return images.permute(0, 2, 3, 1).cpu().numpy()
    if not images.is_floating_point():
        raise TypeError(f'classify_modes: images must be uint8 pixels or float images in [-1, 1], got dtype {images.dtype}')
    return misc.images_to_uint8(images.detach()).cpu().numpy()

#----------------------------------------------------------------------------
