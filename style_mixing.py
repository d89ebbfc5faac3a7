"""Style mixing: combine the coarse/fine styles of pairs of seeds and save the results as single images and one matrix."""

import os

import click
import numpy as np
import torch

from dnnlib import cli
from torch_utils import safe_load as safe_loading
from training import toy_networks
from generate import MAX_SEED, IntList, load_network, load_transform, make_label, pick_device, save_image, to_pixels

#----------------------------------------------------------------------------
# W vectors [num_ws, w_dim] for each seed, truncated towards w_avg on all layers.
# transform: the snapshot's sample-time latent transform, applied to each seed
# on its own (as generate.py does), or None.

def seeds_to_ws(G, seeds, label, truncation_psi, transform=None):
    z = np.stack([np.random.RandomState(seed).randn(G.z_dim) for seed in seeds])
    z = torch.from_numpy(z).to(device=label.device, dtype=torch.float32)
    c = label.expand(len(seeds), -1)
    if transform is not None and len(transform) > 0:
        pairs = [transform(z[i:i + 1], c[i:i + 1]) for i in range(len(seeds))]
        z, c = torch.cat([p[0] for p in pairs]), torch.cat([p[1] for p in pairs])
    ws = G.mapping(z, c)
    w_avg = G.mapping.w_avg
    ws = w_avg + (ws - w_avg) * truncation_psi
    return dict(zip(seeds, ws))

#----------------------------------------------------------------------------

@click.command()
@safe_loading.cli_options
@click.option('--network', 'network_pkl', help='Network pickle filename or URL, or a training run folder (its newest snapshot)', required=True)
@click.option('--rows', 'row_seeds', type=IntList(max_value=MAX_SEED, what='seed'), help='Seeds of the rows (they give the styles not replaced)', required=True)
@click.option('--cols', 'col_seeds', type=IntList(max_value=MAX_SEED, what='seed'), help='Seeds of the columns (they give the styles in --styles)', required=True)
@click.option('--styles', 'col_styles', type=IntList(), help='Style layers taken from the column seed', default='0-6', show_default=True)
@click.option('--trunc', 'truncation_psi', type=cli.FiniteFloat(), help='Truncation psi', default=1, show_default=True)
@click.option('--class', 'class_idx', type=click.IntRange(min=0), help='Class label (required for conditional networks)')
@click.option('--noise-mode', help='Noise mode', type=click.Choice(['const', 'random', 'none']), default='const', show_default=True)
@click.option('--outdir', help='Where to save the output images', type=str, required=True, metavar='DIR')
@click.option('--device', 'device_name', help='Torch device  [default: cuda if available, else cpu]', type=str)
@click.option('--prior-sampling', type=bool, default=True, show_default=True, metavar='BOOL',
              help='Draw latents through the sample-time transform stored in the snapshot by its priors; false = plain N(0, I)')
def generate_style_mix(
    network_pkl: str,
    row_seeds,
    col_seeds,
    col_styles,
    truncation_psi: float,
    class_idx,
    noise_mode: str,
    outdir: str,
    device_name,
    prior_sampling: bool = True,
):
    """Generate a style-mixing matrix using a pretrained network pickle.

    Image (row, col) uses the row seed's W with the layers in --styles taken
    from the column seed. Writes ROW-COL.png for every pair, SEED-SEED.png
    for every seed, and grid.png with the column seeds on top and the row
    seeds on the left.

    \b
    Examples:

    \b
    python style_mixing.py --outdir=out --rows=85,100,75 --cols=55,821 --styles=0-6 --network=net.pkl
    """
    device = pick_device(device_name)
    cli.check_output_folder(outdir, '--outdir')
    data = load_network(network_pkl, device)
    G = data['G_ema']
    if toy_networks.is_point_generator(G):
        raise click.ClickException(f'--network: "{network_pkl}" is a toy network (2-D points, no image layers), so style mixing '
                                   f'does not apply; draw its points with generate.py --seeds')
    transform = load_transform(data, prior_sampling)
    bad_styles = [s for s in col_styles if s >= G.num_ws]
    if bad_styles:
        raise click.ClickException(f'--styles: layer(s) {", ".join(map(str, bad_styles))} out of range; '
                                   f'this network has layers 0-{G.num_ws - 1}')
    label = make_label(G, class_idx, device)
    force_fp32 = (device.type == 'cpu')  # half precision is slow on CPU
    os.makedirs(outdir, exist_ok=True)

    # Map every distinct seed to W once.
    print('Generating W vectors...')
    all_seeds = list(dict.fromkeys(row_seeds + col_seeds))
    w_of = seeds_to_ws(G, all_seeds, label, truncation_psi, transform)

    # Unmixed images of each seed.
    print('Generating images...')
    pixels_of = dict()
    for seed in all_seeds:
        img = G.synthesis(w_of[seed].unsqueeze(0), noise_mode=noise_mode, force_fp32=force_fp32)
        pixels_of[(seed, seed)] = to_pixels(img)[0]

    # Row seed's W with the chosen layers replaced by the column seed's.
    print('Generating style-mixed images...')
    for row_seed in row_seeds:
        for col_seed in col_seeds:
            w = w_of[row_seed].clone()
            w[col_styles] = w_of[col_seed][col_styles]
            img = G.synthesis(w.unsqueeze(0), noise_mode=noise_mode, force_fp32=force_fp32)
            pixels_of[(row_seed, col_seed)] = to_pixels(img)[0]

    # Single images.
    print('Saving images...')
    for (row_seed, col_seed), pixels in pixels_of.items():
        save_image(pixels, os.path.join(outdir, f'{row_seed}-{col_seed}.png'))

    # Matrix: black corner, column seeds along the top, row seeds down the left.
    print('Saving image grid...')
    height, width, channels = next(iter(pixels_of.values())).shape
    grid = np.zeros([height * (len(row_seeds) + 1), width * (len(col_seeds) + 1), channels], dtype=np.uint8)
    def paste(row, col, pixels):
        grid[row * height:(row + 1) * height, col * width:(col + 1) * width] = pixels
    for col, col_seed in enumerate(col_seeds, start=1):
        paste(0, col, pixels_of[(col_seed, col_seed)])
    for row, row_seed in enumerate(row_seeds, start=1):
        paste(row, 0, pixels_of[(row_seed, row_seed)])
        for col, col_seed in enumerate(col_seeds, start=1):
            paste(row, col, pixels_of[(row_seed, col_seed)])
    save_image(grid, os.path.join(outdir, 'grid.png'))

#----------------------------------------------------------------------------

if __name__ == '__main__':
    generate_style_mix()  # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
