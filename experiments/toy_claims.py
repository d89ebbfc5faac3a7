"""The toy lab's claims table: baseline and every registered prior row, trained on each toy set over several seeds with train.py --cfg=toy, scored by the toy metrics (metrics/toy_metrics.py).

    python -m experiments.toy_claims                         # everything: 4 sets x rows x 3 seeds
    python -m experiments.toy_claims --sets=ring8_rare --rows=baseline,gmm --seeds=0-2
    python -m experiments.toy_claims --kimg=50 --out=none     # a quick look, nothing written

Each run is one `train.py` process (one thread), so a row measures exactly
what a user gets from the command line. After training, the last snapshot's
G_ema is scored on 2,000 generated against 2,000 fresh data points: EMD
(exact W1), modes covered, HQ share, KL and DDS, and for an imbalanced set
the rare mode's share of generated points within 3 sigma relative to its true
weight (1 = right frequency, 0 = missed). The table (mean +- std over seeds)
is printed and written, with each row's last snapshot picture of the first
seed, to docs/toy-results.md and docs/toy-results/.

Adding a paper's row is one line in ROWS: its name and its extra train.py
options ("{num_modes}" is replaced by the toy set's number of modes).
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import click
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
import dnnlib  # pylint: disable=wrong-import-position
import legacy  # pylint: disable=wrong-import-position
from metrics import metric_utils, toy_metrics  # pylint: disable=wrong-import-position

#----------------------------------------------------------------------------
# The toy sets of the table: name -> --data spec.

SETS = {
    'ring8':      'toy:ring8',              # Metz et al.'s ring: radius 2, std 0.02
    'ring8_rare': 'toy:ring8,rare=0.02',    # the same ring, mode 0 at 2 % of the data (PriorGAN's missing-mode case)
    'grid25':     'toy:grid25',             # 5 x 5 grid, std 0.05
    'ring6':      'toy:ring6',              # MDGAN App. C: radius 5, std 0.1
    'ring8_std01': 'toy:ring8,std=0.1',     # RFGAN §4.1: Metz et al.'s ring (radius 2) with std 0.1
}

# The rows: name -> extra train.py options. One line per prior.
ROWS = {
    'baseline': [],
    'gmm':      ['--prior=gmm', '--prior-components={num_modes}'],  # PriorGAN, GMM on the points (identity features), M = true K
    'rf':       ['--prior=rf'],                                     # RFGAN, frozen denoising-AE encoder (MLP like D) joined at D's output layer
    'mdgan-reg': ['--prior=mdgan', '--mdgan-mode=reg'],             # Reg-GAN, Eq. 1-2 (toy: lambda1 = lambda2 = 0.005, App. C)
    'mdgan-md': ['--prior=mdgan', '--mdgan-mode=md'],               # MDGAN, manifold + diffusion steps (App. A)
    'posterior': ['--prior=posterior'],                             # P2GAN, §5.2 CelebA defaults: d=20, P_a=N(-5,1), P_b=N(5,3), 2 epochs pretraining
    'masked':   ['--prior=masked'],                                 # Goerttler & Kloft Def. 3, r = 0.5, n = 2m; scored through the selection (r sweep, on/off: experiments.toy_masked_sweep)
    'weighted': ['--prior=masked', '--masked-mode=weighted'],       # Goerttler & Kloft Def. 4, weights = s / sum s; scored through the selection
}

#----------------------------------------------------------------------------
# One training run: train.py in a fresh process. Returns (snapshot path, picture path, wall seconds).

def train_one(data, row_args, seed, kimg, workdir):
    cmd = [sys.executable, os.path.join(REPO, 'train.py'), f'--outdir={workdir}', '--cfg=toy', f'--data={data}', f'--seed={seed}']
    cmd += [f'--kimg={kimg:g}'] if kimg is not None else []
    cmd += row_args
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    start = time.time()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    wall = time.time() - start
    if proc.returncode != 0:
        raise click.ClickException(f'training failed ({" ".join(cmd)}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}')
    run_dir = max(os.path.join(workdir, d) for d in os.listdir(workdir))
    newest = lambda pattern: max((f for f in os.listdir(run_dir) if re.fullmatch(pattern, f)), default=None)
    return os.path.join(run_dir, newest(r'network-snapshot-\d+\.pkl')), os.path.join(run_dir, newest(r'toy\d+\.png')), wall

# The scores of one snapshot (2,000 vs 2,000 points, metric seed 0), plus the rare mode's relative share.
def score_snapshot(pkl):
    with open(pkl, 'rb') as f:
        snapshot = legacy.load_network_pkl(f)
    opts = metric_utils.MetricOptions(G=snapshot['G_ema'], dataset_kwargs=snapshot['training_set_kwargs'], device='cpu', seed=0,
                                      snapshot=snapshot)
    scores = toy_metrics.compute_toy_scores(opts, num=2000)
    dataset = toy_metrics.open_toy_dataset(opts)
    modes = dataset.toy_modes
    scores['rare'] = np.nan
    if modes is not None and not np.allclose(modes.weights, modes.weights[0]):
        k = int(np.argmin(modes.weights))
        gen = toy_metrics.generate_points(opts, 2000)
        within = toy_metrics.mode_scores(gen, modes.centres, modes.stds, modes.weights)['within']
        scores['rare'] = float(within[k] / modes.weights[k])
    scores['num_modes'] = modes.num_modes if modes is not None else np.nan
    return scores

#----------------------------------------------------------------------------
# The table.

COLUMNS = [('EMD', 'emd', '{:.3f}'), ('modes', 'modes', '{:.1f}'), ('HQ %', 'hq', '{:.1f}'), ('KL', 'kl', '{:.3f}'),
           ('DDS', 'dds', '{:.3f}'), ('rare share', 'rare', '{:.2f}'), ('wall s', 'wall', '{:.0f}')]

def _cell(values, fmt, scale=1.0):
    values = np.asarray(values, dtype=np.float64) * scale
    if np.all(np.isnan(values)):
        return '-'
    return f'{fmt.format(np.nanmean(values))} ± {fmt.format(np.nanstd(values))}'

def format_table(results):
    lines = ['| set | row | ' + ' | '.join(name for name, _, _ in COLUMNS) + ' | seeds |',
             '|---|---|' + '---|' * len(COLUMNS) + '---|']
    for (set_name, row), runs in results.items():
        cells = []
        for name, key, fmt in COLUMNS:
            values = [r[key] for r in runs]
            if key == 'modes':
                cells.append(_cell(values, fmt) + f' / {runs[0]["num_modes"]}')
            else:
                cells.append(_cell(values, fmt, 100.0 if key == 'hq' else 1.0))
        lines.append(f'| {set_name} | {row} | ' + ' | '.join(cells) + f' | {len(runs)} |')
    return '\n'.join(lines)

#----------------------------------------------------------------------------

def _names(value, known, what):
    if value == 'none':
        return []
    names = list(known) if value in (None, '', 'all') else [n.strip() for n in value.split(',') if n.strip()]
    for name in names:
        if name not in known:
            raise click.BadParameter(f'unknown {what} "{name}"; choose from {", ".join(known)}')
    return names

@click.command()
@click.option('--sets', help=f'Toy sets, comma-separated: {", ".join(SETS)}  [default: all]', metavar='LIST')
@click.option('--rows', help=f'Rows, comma-separated: {", ".join(ROWS)}  [default: all]', metavar='LIST')
@click.option('--seeds', help='Training seeds, e.g. 0-2 or 0,3', default='0-2', show_default=True, metavar='LIST')
@click.option('--kimg', help='Training length  [default: --cfg=toy\'s]', type=click.FloatRange(min=0, min_open=True))
@click.option('--out', help='Markdown file to write ("none": print only)', default='docs/toy-results.md', show_default=True)
@click.option('--keep', help='Keep the run folders in this directory (default: a temporary one, deleted)', metavar='DIR')
@click.option('--add-row', 'add_rows', multiple=True, metavar='NAME=OPTIONS',
              help='An extra row for this call, e.g. "gmm_a1=--prior=gmm --resample-alpha=1" (repeatable; implies it in --rows)')
def main(sets, rows, seeds, kimg, out, keep, add_rows=()):
    """Train baseline and prior rows on the toy sets over several seeds; print and write the claims table."""
    all_rows = dict(ROWS)
    for spec in add_rows:
        name, sep, options = spec.partition('=')
        if not sep or not name.strip():
            raise click.BadParameter(f'--add-row "{spec}": write NAME=OPTIONS, e.g. "gmm_a1=--prior=gmm --resample-alpha=1"')
        all_rows[name.strip()] = options.split()
    set_names, row_names = _names(sets, SETS, 'set'), _names(rows, all_rows, 'row')
    row_names += [spec.partition('=')[0].strip() for spec in add_rows if spec.partition('=')[0].strip() not in row_names]
    seed_list = []
    for part in seeds.split(','):
        lo, _, hi = part.partition('-')
        seed_list += list(range(int(lo), int(hi or lo) + 1))
    workroot = keep or tempfile.mkdtemp(prefix='toy-claims-')
    out_dir = None if out == 'none' else os.path.splitext(os.path.join(REPO, out) if not os.path.isabs(out) else out)[0]
    results, pictures, started = {}, {}, time.time()
    for set_name in set_names:
        data = SETS[set_name]
        num_modes = dnnlib.util.construct_class_by_name(class_name='training.toy_data.ToyDataset', path=data).toy_modes.num_modes
        for row in row_names:
            row_args = [arg.format(num_modes=num_modes) for arg in all_rows[row]]
            runs = []
            for seed in seed_list:
                workdir = os.path.join(workroot, f'{set_name}-{row}-seed{seed}')
                os.makedirs(workdir, exist_ok=True)
                pkl, picture, wall = train_one(data, row_args, seed, kimg, workdir)
                scores = dict(score_snapshot(pkl), wall=wall)
                runs.append(scores)
                print(json.dumps(dict(set=set_name, row=row, seed=seed, **{k: float(v) for k, v in scores.items()})), flush=True)
                if seed == seed_list[0] and out_dir is not None:
                    os.makedirs(out_dir, exist_ok=True)
                    pictures[(set_name, row)] = os.path.join(out_dir, f'{set_name}-{row}.png')
                    shutil.copyfile(picture, pictures[(set_name, row)])
            results[(set_name, row)] = runs
    table = format_table(results)
    print()
    print(table)
    if out_dir is not None:
        _write_markdown(out_dir + '.md', table, pictures, seed_list, kimg, time.time() - started)
        print(f'\nWrote {out_dir}.md')
    if keep is None:
        shutil.rmtree(workroot, ignore_errors=True)

def _write_markdown(path, table, pictures, seeds, kimg, total_sec):
    rel = lambda p: os.path.relpath(p, os.path.dirname(path)).replace(os.sep, '/')
    lines = ['# Toy lab results', '',
             'Written by `python -m experiments.toy_claims` (do not edit by hand; see docs/toy-lab.md for the settings and the',
             'metric definitions). Each cell: mean ± std over training seeds ' + ', '.join(map(str, seeds)) +
             f'; {"the --cfg=toy length" if kimg is None else f"{kimg:g} kimg"}; metrics on 2,000 generated vs 2,000 fresh',
             'data points (metric seed 0). "rare share": generated share within 3 std of the rarest mode / its true weight',
             '(imbalanced sets only). Wall time: the whole train.py process, one thread, on the machine that wrote this file',
             f'(total {total_sec / 60:.0f} min). What the numbers say, and the other settings tried: docs/toy-lab.md, "Findings".',
             '', table, '']
    for (set_name, row), picture in pictures.items():
        lines += [f'### {set_name}, {row} (seed {seeds[0]}, last snapshot)', '', f'![{set_name} {row}]({rel(picture)})', '']
    with open(path, 'w', encoding='utf-8') as f:
        f.write('\n'.join(lines))

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
