"""Mode coverage of generators trained on the built-in synthetic data: generated vs true mode frequencies, printed as a table.

The synthetic dataset knows each image's mode, so it gives a ground truth that
DDS (PriorGAN Eq. 7, measured on GMM components of deep features) can only
estimate: here generated images are assigned to the true modes by
`training.synthetic.classify_modes`, and the table shows the total variation
sum_k |f_true_k - f_gen_k| (the same formula as DDS, on true modes), the number
of modes a generator misses (below a quarter of their true frequency) and the
share of images that look like no mode.

    python experiments/mode_coverage.py --network=runs/A/network-snapshot-000008.pkl --network=runs/B/network-snapshot-000008.pkl
"""

import os
import sys

import click
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import dnnlib  # pylint: disable=wrong-import-position
import legacy  # pylint: disable=wrong-import-position
from metrics import metric_utils  # pylint: disable=wrong-import-position
from training import synthetic  # pylint: disable=wrong-import-position

#----------------------------------------------------------------------------
# Generated mode frequencies of one snapshot: num_gen seeded images (the metric sampler, so the
# images are those the metrics see), classified by the synthetic prototypes.

def generated_mode_stats(G, num_modes, num_gen, seed, batch):
    sampler = metric_utils.LatentSampler(G, seed=seed)
    modes, dists = [], []
    with torch.no_grad():
        for start in range(0, num_gen, batch):
            img = sampler.generate(list(range(start, min(start + batch, num_gen))), batch_gen=batch)
            m, d = synthetic.classify_modes(img.clamp(-1, 1), num_modes=num_modes, return_distances=True)
            modes.append(m)
            dists.append(d)
    modes, dists = np.concatenate(modes), np.concatenate(dists)
    return np.bincount(modes, minlength=num_modes) / len(modes), dists

#----------------------------------------------------------------------------

@click.command()
@click.option('--network', 'networks', help='Snapshot pickle (repeat for several)', multiple=True, required=True)
@click.option('--num-gen', help='Generated images per snapshot', type=click.IntRange(min=1), default=2000, show_default=True)
@click.option('--seed', help='Seed of the generated images', type=int, default=0, show_default=True)
@click.option('--batch', help='Images per generator call', type=click.IntRange(min=1), default=100, show_default=True)
@click.option('--far', help='Prototype distance above which an image looks like no mode', type=float, default=0.35, show_default=True)
def main(networks, num_gen, seed, batch, far):
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    rows = []
    true_freqs = None
    for path in networks:
        with dnnlib.util.open_url(path) as f:
            snapshot = legacy.load_network_pkl(f)
        dataset = dnnlib.util.construct_class_by_name(**snapshot['training_set_kwargs'])
        if not dataset.has_modes:
            raise click.ClickException(f'--network={path}: its dataset has no mode labels; train on dataset_tool.py --source=synthetic data')
        num_modes = dataset.mode_info['num_modes']
        true = np.bincount(dataset.get_modes(), minlength=num_modes) / len(dataset)
        true_freqs = true if true_freqs is None else true_freqs
        gen, dists = generated_mode_stats(snapshot['G_ema'], num_modes, num_gen, seed, batch)
        rows.append((path, np.abs(true - gen).sum(), int((gen < true / 4).sum()), float((dists > far).mean()), gen))

    print('true mode frequencies: ' + ' '.join(f'{f:.3f}' for f in true_freqs))
    print(f'{"network":<60s} {"TV(true,gen)":>12s} {"missed":>6s} {"no-mode":>7s}  generated mode frequencies')
    for path, tv, missed, nomode, gen in rows:
        print(f'{path[-60:]:<60s} {tv:12.3f} {missed:6d} {nomode:7.3f}  ' + ' '.join(f'{f:.3f}' for f in gen))

if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter
