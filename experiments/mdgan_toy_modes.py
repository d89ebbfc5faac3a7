"""Mode trajectories of toy runs (Che et al. 2017, Appendix C, Fig. 9): which modes each snapshot of a run covers, to check the claim that a plain GAN hops between the modes of a 2-D mixture while the regularised GAN covers them all.

For every network snapshot of each run folder, 2,000 points from G_ema (fixed latents) are
assigned to the true modes of the run's toy data (metrics.toy_metrics.mode_scores: a mode is
covered when >= 1 % of the points lie within 3 std of it). Prints one line per snapshot with the
share of points near each mode, then a summary per run: modes covered at the end, the most
covered at once, the modes covered at some snapshot, and how often a covered mode was lost again
("drops"). Train the runs first with many snapshots, e.g.

    python train.py --outdir=runs/ring6 --cfg=toy --data=toy:ring6 --kimg=300 --tick=10 --snap=1 [--prior=mdgan ...]
    python -m experiments.mdgan_toy_modes runs/ring6/*
"""

import glob
import os
import re
import sys

import click
import numpy as np
import torch

import dnnlib
import legacy
from metrics import toy_metrics

#----------------------------------------------------------------------------
# Shares of num fixed-latent points of G_ema within 3 std of each true mode, [K].

def snapshot_mode_shares(snapshot, modes, num=2000, seed=0):
    G = snapshot['G_ema'].eval().requires_grad_(False)
    z = torch.randn([num, G.z_dim], generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        points = G(z, torch.zeros([num, G.c_dim])).reshape(num, -1).to(torch.float64).numpy()
    return toy_metrics.mode_scores(points, modes.centres, modes.stds, modes.weights)['within']

# (kimg, shares [K]) of every snapshot of a run folder, in training order.
def run_trajectory(run_dir, num=2000):
    paths = sorted(glob.glob(os.path.join(run_dir, 'network-snapshot-*.pkl')), key=lambda p: int(re.findall(r'(\d+)\.pkl$', p)[0]))
    if not paths:
        raise click.ClickException(f'{run_dir}: no network-snapshot-*.pkl; train with --snap=1 to get one per tick')
    trajectory, modes = [], None
    for path in paths:
        with open(path, 'rb') as f:
            snapshot = legacy.load_network_pkl(f)
        if modes is None:
            dataset = dnnlib.util.construct_class_by_name(**dict(snapshot['training_set_kwargs'], max_size=None, xflip=False))
            modes = getattr(dataset, 'toy_modes', None)
            if modes is None:
                raise click.ClickException(f'{run_dir}: the run\'s data has no known modes (not a toy set)')
        nimg = snapshot.get('resume_state', {}).get('cur_nimg')
        trajectory.append((nimg / 1000 if nimg is not None else float('nan'), snapshot_mode_shares(snapshot, modes, num)))
    return trajectory

# Summary of a trajectory: final, most and ever covered modes, and "drops": how often a mode that one
# snapshot covers is not covered by the next one (a run that hops between modes drops them; a run
# that only adds modes, or holds a fixed set, drops none).
def summarize(trajectory, min_share=0.01):
    covered = [frozenset(np.flatnonzero(shares >= min_share).tolist()) for _kimg, shares in trajectory]
    drops = sum(len(a - b) for a, b in zip(covered[:-1], covered[1:]))
    return dict(final=len(covered[-1]), most=max(len(s) for s in covered), ever=len(frozenset().union(*covered)), drops=drops)

#----------------------------------------------------------------------------

@click.command()
@click.argument('run_dirs', nargs=-1, required=True)
@click.option('--num', type=click.IntRange(min=100), default=2000, show_default=True, help='Points per snapshot')
def main(run_dirs, num):
    """Print the mode trajectory of each toy run folder and a summary table."""
    torch.set_num_threads(1)
    rows = []
    for run_dir in run_dirs:
        trajectory = run_trajectory(run_dir, num)
        print(os.path.basename(os.path.normpath(run_dir)))
        for kimg, shares in trajectory:
            print(f'  kimg {kimg:7.1f}  ' + ' '.join(f'{100 * s:5.1f}' for s in shares) + '  (% within 3 std of each mode)')
        rows.append((os.path.join(*os.path.normpath(run_dir).split(os.sep)[-2:]), summarize(trajectory)))
    print()
    print(f'{"run":60s} final  most  ever  drops')
    for name, s in rows:
        print(f'{name:60s} {s["final"]:5d} {s["most"]:5d} {s["ever"]:5d} {s["drops"]:6d}')

if __name__ == '__main__':
    sys.exit(main())  # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
