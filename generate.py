"""Generate images with a trained generator: one PNG per seed, a grid of seeds, or images from projected W vectors."""

import os
import pickle
import re

import click
import numpy as np
import PIL.Image
import torch

import dnnlib
import legacy
from dnnlib import cli
from torch_utils import misc
from torch_utils import safe_load as safe_loading
from training import sampling
from training import toy_networks
from training import toy_pictures

#----------------------------------------------------------------------------
# Command-line value holding a list of ints: "1,5,9", "0-3" (inclusive) or
# any comma-separated mix of the two such as "0-3,7"; each at most max_value
# (seeds: numpy's RandomState takes 0 ... 2**32 - 1).

MAX_SEED = 2**32 - 1

class IntList(click.ParamType):
    name = 'LIST'

    def __init__(self, max_value=None, what='value'):
        self.max_value, self.what = max_value, what

    def convert(self, value, param, ctx):
        if isinstance(value, (list, tuple)):
            return [int(v) for v in value]
        result = []
        for part in str(value).split(','):
            match = re.fullmatch(r'\s*(\d+)\s*(?:-\s*(\d+)\s*)?', part)
            if match is None:
                self.fail(f'"{value}" is not a list of non-negative integers; use e.g. "0-3,7"', param, ctx)
            first = int(match.group(1))
            last = int(match.group(2)) if match.group(2) is not None else first
            if last < first:
                self.fail(f'range "{part.strip()}" in "{value}" runs backwards; write it as "{last}-{first}"', param, ctx)
            if self.max_value is not None and last > self.max_value:
                self.fail(f'{self.what} {last} in "{value}" is out of range; use {self.what}s from 0 to {self.max_value}', param, ctx)
            if last - first >= 10**7:
                self.fail(f'range "{part.strip()}" in "{value}" holds {last - first + 1} {self.what}s; give fewer', param, ctx)
            result.extend(range(first, last + 1))
        return result

#----------------------------------------------------------------------------
# Command-line value "WxH" (columns x rows), e.g. "4x2".

class GridSize(click.ParamType):
    name = 'WxH'

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        match = re.fullmatch(r'\s*(\d+)\s*[xX]\s*(\d+)\s*', str(value))
        if match is None or int(match.group(1)) < 1 or int(match.group(2)) < 1:
            self.fail(f'"{value}" is not a grid size; use columns x rows such as "4x2"', param, ctx)
        return int(match.group(1)), int(match.group(2))

#----------------------------------------------------------------------------
# Device named on the command line (dnnlib.cli.pick_device; kept here by name for style_mixing/projector).

pick_device = cli.pick_device

#----------------------------------------------------------------------------
# The G_ema generator of a network pickle (local path or URL), on `device`.

def load_generator(network_pkl, device, safe_load=None):
    return load_network(network_pkl, device, safe_load=safe_load)['G_ema']

# The whole network pickle (a dict), its G_ema moved to `device`. Read in safe mode unless the command
# runs with --trust-pickle (safe_load=None; True forces safe mode).
def load_network(network_pkl, device, safe_load=None):
    try:
        network_pkl = legacy.resolve_network_pkl(network_pkl)
    except legacy.NetworkPickleError as err:
        raise click.ClickException(f'--network: {err}') from err
    print(f'Loading networks from "{network_pkl}"...')
    try:
        with dnnlib.util.open_url(network_pkl) as f:
            data = legacy.load_network_pkl(f, safe=(True if safe_load else None))
    except legacy.NetworkPickleError as err:  # its message already names the file
        raise click.ClickException(f'--network: {err}') from err
    except (OSError, EOFError, pickle.UnpicklingError, ValueError) as err:
        raise click.ClickException(f'--network: cannot load "{network_pkl}": {err}') from err
    if 'G_ema' not in data:
        raise click.ClickException(f'--network: "{network_pkl}" holds no G_ema generator (keys: {", ".join(data)})')
    data['G_ema'] = data['G_ema'].to(device)
    return data

# The snapshot's sample-time latent transform (training.sampling; the identity for plain snapshots).
def load_transform(data, enabled):
    try:
        transform = sampling.load_sample_transform(data, enabled=enabled)
    except (ValueError, ImportError, AttributeError) as err:
        raise click.ClickException(f'--prior-sampling: cannot rebuild the snapshot\'s sample-time transform ({err}); '
                                   f'use --prior-sampling=false to sample plain latents') from err
    if len(transform) > 0:
        print(f'Sampling latents through the snapshot\'s transform: {", ".join(spec["class_name"] for spec in transform.specs)} '
              f'(--prior-sampling=false to switch it off)')
    return transform

#----------------------------------------------------------------------------
# The "w" array of a projector.py .npz file, checked to be finite numbers.

def load_projected_w(path):
    try:
        data = np.load(path)
    except (OSError, ValueError, EOFError) as err:
        raise click.ClickException(f'--projected-w: "{path}" is not a .npz file written by projector.py ({err})') from err
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise click.ClickException(f'--projected-w: "{path}" holds a single array (.npy), but a .npz file with an array '
                                   f'named "w" is needed, as projector.py writes')
    with data:
        if 'w' not in data.files:
            raise click.ClickException(f'--projected-w: "{path}" has no array named "w" (found: {", ".join(data.files) or "none"})')
        try:
            w = np.asarray(data['w'], dtype=np.float32)
        except (ValueError, TypeError) as err:
            raise click.ClickException(f'--projected-w: "w" in "{path}" is not numeric ({err})') from err
    if not np.isfinite(w).all():
        raise click.ClickException(f'--projected-w: "w" in "{path}" contains NaN or infinite values')
    return w

#----------------------------------------------------------------------------
# One-hot class label [1, c_dim] (an empty [1, 0] tensor for unconditional G).

def make_label(G, class_idx, device):
    label = torch.zeros([1, G.c_dim], device=device)
    if G.c_dim != 0:
        if class_idx is None:
            raise click.ClickException(f'--class is required for this conditional network (classes 0-{G.c_dim - 1})')
        if class_idx >= G.c_dim:
            raise click.ClickException(f'--class={class_idx} is out of range; this network has classes 0-{G.c_dim - 1}')
        label[:, class_idx] = 1
    elif class_idx is not None:
        print('warning: --class is ignored for an unconditional network')
    return label

#----------------------------------------------------------------------------
# Latent for a seed: the first z_dim draws of numpy's RandomState(seed), as
# in the official scripts (so seeds give the same images there and here).

def seed_to_z(seed, z_dim, device):
    z = np.random.RandomState(seed).randn(1, z_dim)
    return torch.from_numpy(z).to(device=device, dtype=torch.float32)

#----------------------------------------------------------------------------
# uint8 [H, W, C] pixels -> PNG file (C = 1, 3 or 4).

def save_image(pixels, path):
    pixels = np.asarray(pixels)
    channels = pixels.shape[2]
    if channels == 1:
        pixels = pixels[:, :, 0]
    elif channels not in (3, 4):
        raise click.ClickException(f'cannot save an image with {channels} channels as PNG (expected 1, 3 or 4)')
    PIL.Image.fromarray(pixels).save(path)

#----------------------------------------------------------------------------
# Lay out equally sized uint8 [H, W, C] images row-major on a grid of
# `cols` x `rows` cells; unused cells stay black.

def make_grid(images, cols, rows):
    assert 0 < len(images) <= cols * rows
    height, width, channels = images[0].shape
    grid = np.zeros([rows * height, cols * width, channels], dtype=np.uint8)
    for i, image in enumerate(images):
        top, left = (i // cols) * height, (i % cols) * width
        grid[top:top + height, left:left + width] = image
    return grid

#----------------------------------------------------------------------------
# --grid must have a cell for every image.

def check_grid_size(grid_size, num_images):
    cols, rows = grid_size
    if num_images > cols * rows:
        raise click.ClickException(f'--grid={cols}x{rows} has {cols * rows} cells for {num_images} images; '
                                   f'use a larger grid or fewer seeds')

#----------------------------------------------------------------------------
# Options that have no meaning for a toy lab generator (2-D points, unconditional, no W projection):
# refused before any work, each with what applies instead.

def check_point_generator_options(grid_size=None, class_idx=None, projected_w=None):
    if grid_size is not None:
        raise click.ClickException('--grid does not apply to a toy network: it draws 2-D points, which go to one scatter plot '
                                   '(points.png, with points.npy and points.csv); drop --grid')
    if class_idx is not None:
        raise click.ClickException('--class does not apply to a toy network: toy networks are unconditional; drop --class')
    if projected_w is not None:
        raise click.ClickException('--projected-w does not apply to a toy network: it renders images from projector.py W '
                                   'vectors; use --seeds to draw points')

#----------------------------------------------------------------------------
# Float images [N, C, H, W] in [-1, 1] -> list of uint8 [H, W, C] arrays.

def to_pixels(img):
    if not bool(torch.isfinite(img).all()):
        raise click.ClickException('--network: the generator produced NaN or infinite pixels; its weights are probably '
                                   'non-finite (a diverged run): use an earlier snapshot')
    return list(misc.images_to_uint8(img).cpu().numpy())

#----------------------------------------------------------------------------

@click.command()
@safe_loading.cli_options
@click.option('--network', 'network_pkl', help='Network pickle filename or URL, or a training run folder (its newest snapshot)', required=True)
@click.option('--seeds', type=IntList(max_value=MAX_SEED, what='seed'), help='List of random seeds, e.g. "0-3,7"')
@click.option('--trunc', 'truncation_psi', type=cli.FiniteFloat(), help='Truncation psi', default=1, show_default=True)
@click.option('--class', 'class_idx', type=click.IntRange(min=0), help='Class label (required for conditional networks)')
@click.option('--noise-mode', help='Noise mode', type=click.Choice(['const', 'random', 'none']), default='const', show_default=True)
@click.option('--projected-w', help='Render the W vectors of this .npz file (from projector.py) instead of seeds', type=str, metavar='FILE')
@click.option('--grid', 'grid_size', type=GridSize(), metavar='WxH', help='Write one grid.png of all images, row-major, instead of one file each')
@click.option('--outdir', help='Where to save the output images', type=str, required=True, metavar='DIR')
@click.option('--device', 'device_name', help='Torch device  [default: cuda if available, else cpu]', type=str)
@click.option('--prior-sampling', type=bool, default=True, show_default=True, metavar='BOOL',
              help='Draw latents through the sample-time transform stored in the snapshot by its priors (e.g. the masked prior); false = plain N(0, I)')
def generate_images(
    network_pkl: str,
    seeds,
    truncation_psi: float,
    class_idx,
    noise_mode: str,
    projected_w,
    grid_size,
    outdir: str,
    device_name,
    prior_sampling: bool = True,
):
    """Generate images using a pretrained network pickle.

    \b
    Examples:

    \b
    # Curated images of a conditional network (class 1), truncation 0.7.
    python generate.py --outdir=out --trunc=0.7 --seeds=0-9 --class=1 --network=net.pkl

    \b
    # A 4x2 grid of the first eight seeds.
    python generate.py --outdir=out --seeds=0-7 --grid=4x2 --network=net.pkl

    \b
    # Render W vectors written by projector.py.
    python generate.py --outdir=out --projected-w=projected_w.npz --network=net.pkl
    """
    device = pick_device(device_name)
    cli.check_output_folder(outdir, '--outdir')
    if projected_w is None and not seeds:
        raise click.ClickException('--seeds is required unless --projected-w is given, e.g. --seeds=0-3')
    if projected_w is not None and not os.path.isfile(projected_w):
        raise click.ClickException(f'--projected-w: file not found: "{projected_w}"')
    if projected_w is None and grid_size is not None:
        check_grid_size(grid_size, len(seeds))
    data = load_network(network_pkl, device)
    G = data['G_ema']
    if toy_networks.is_point_generator(G):
        check_point_generator_options(grid_size=grid_size, class_idx=class_idx, projected_w=projected_w)
    transform = load_transform(data, prior_sampling)
    os.makedirs(outdir, exist_ok=True)
    force_fp32 = (device.type == 'cpu')  # half precision is slow on CPU; outputs agree up to fp16 rounding

    # A toy lab generator makes 2-D points: points.npy, points.csv and a scatter plot points.png (docs/toy-lab.md).
    if toy_networks.is_point_generator(G):
        z = torch.cat([seed_to_z(seed, G.z_dim, device) for seed in seeds])
        with torch.no_grad():
            points = sampling.sample(G, z, make_label(G, class_idx, device).repeat(len(seeds), 1), transform=transform,
                                     truncation_psi=truncation_psi, noise_mode=noise_mode)
        for path in toy_pictures.save_points(outdir, seeds, points, snapshot=data):
            print(f'Wrote {path}')
        return

    # Render W vectors from the projector.
    names, images = [], []
    if projected_w is not None:
        if seeds:
            print('warning: --seeds is ignored when --projected-w is given')
        ws = torch.tensor(load_projected_w(projected_w), device=device, dtype=torch.float32)
        if ws.ndim != 3 or tuple(ws.shape[1:]) != (G.num_ws, G.w_dim):
            raise click.ClickException(f'--projected-w: "w" has shape {list(ws.shape)}, but this network needs [K, {G.num_ws}, {G.w_dim}]')
        if grid_size is not None:
            check_grid_size(grid_size, len(ws))
        for idx, w in enumerate(ws):
            img = G.synthesis(w.unsqueeze(0), noise_mode=noise_mode, force_fp32=force_fp32)
            names.append(f'proj{idx:02d}.png')
            images += to_pixels(img)

    # Render seeds.
    else:
        label = make_label(G, class_idx, device)
        for i, seed in enumerate(seeds):
            print(f'Generating image for seed {seed} ({i + 1}/{len(seeds)}) ...')
            z = seed_to_z(seed, G.z_dim, device)
            img = sampling.sample(G, z, label, transform=transform, truncation_psi=truncation_psi, noise_mode=noise_mode, force_fp32=force_fp32)
            names.append(f'seed{seed:04d}.png')
            images += to_pixels(img)

    # Save one grid or one file per image.
    if grid_size is not None:
        cols, rows = grid_size
        save_image(make_grid(images, cols, rows), os.path.join(outdir, 'grid.png'))
    else:
        for name, pixels in zip(names, images):
            save_image(pixels, os.path.join(outdir, name))

#----------------------------------------------------------------------------

if __name__ == '__main__':
    generate_images()  # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
