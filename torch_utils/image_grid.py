"""Saving a batch of images as one PNG grid (reals.png, fakes*.png of a run, and any picture a plugin writes into the run folder)."""

import numpy as np
import PIL.Image
import torch

import dnnlib
from torch_utils import misc

#----------------------------------------------------------------------------
# Save a batch of images [N, C, H, W] as one PNG grid of gh rows by gw
# columns. drange is the value range of the input ([0, 255] for uint8 reals,
# [-1, 1] for generator output). Written atomically.

def save_image_grid(img, fname, drange, grid_size):
    lo, hi = drange
    img = torch.as_tensor(np.asarray(img, dtype=np.float32))
    pixels = misc.images_to_uint8((img - lo) * (2 / (hi - lo)) - 1).cpu().numpy()  # [N, H, W, C]
    gw, gh = grid_size
    _N, H, W, C = pixels.shape
    pixels = pixels.reshape(gh, gw, H, W, C).transpose(0, 2, 1, 3, 4).reshape(gh * H, gw * W, C)
    if C == 2:  # two channels (the toy lab's 2-D points) show as red and green
        pixels, C = np.concatenate([pixels, np.zeros_like(pixels[:, :, :1])], axis=2), 3
    if C not in (1, 3):
        raise ValueError(f'save_image_grid: images must have 1, 2 or 3 channels, got {C}')
    image = PIL.Image.fromarray(pixels[:, :, 0], 'L') if C == 1 else PIL.Image.fromarray(pixels, 'RGB')
    with dnnlib.util.atomic_write(fname, 'wb') as f:
        image.save(f, format='png')

#----------------------------------------------------------------------------
