"""The masked / weighted latent prior on the toy ring (Goerttler & Kloft, Fig. 2 and Fig. 4): baseline, masked with a sweep of
the rate r, and weighted, each scored with the selection on and off at generation.

    python -m experiments.toy_masked_sweep                                   # full: 8 rows x 3 seeds, --cfg=toy length
    python -m experiments.toy_masked_sweep --rates=0.5 --seeds=0 --kimg=50   # a quick look
    python -m experiments.toy_masked_sweep --jobs=2 --results=/tmp/sweep.jsonl   # two runs at a time; resumable

Rows: `baseline` (no prior), `masked r=R` for every rate of --rates (Def. 3), `weighted` (Def. 4 with Eq. 7).
Every run is one `train.py --cfg=toy --data=<--data>` process (experiments.toy_claims.train_one, one thread).
Training uses the prior at Gmain and Dgen; its snapshots are written without the sample-time transform
(`--masked-sampling=false`, so the run's own pictures cost no extra D passes), and the scorer adds the
transform itself. Each last snapshot is then scored twice by the toy metrics (2,000 generated vs 2,000 fresh
data points, metric seed 0):

    off  plain N(0, I) latents (calc_metrics.py --prior-sampling=false);
    on   latents through priors.masked.prior.MaskedSampleTransform (the paper's "we have to use the
         discriminator to generate"): the row's mode and rate; for the baseline the masked selection with
         r = 0.5, the paper's "traditional GAN masked only at generation" (EMD 0.3378 against 0.3195).

One JSON line per (row, seed) goes to --results (appended; rows already there are not run again), and the
table of mean +- std over seeds to --out.
"""

import concurrent.futures
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time

import click
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
import legacy  # pylint: disable=wrong-import-position
from experiments import toy_claims  # pylint: disable=wrong-import-position
from metrics import metric_utils, toy_metrics  # pylint: disable=wrong-import-position
from training import sampling  # pylint: disable=wrong-import-position

TRANSFORM = 'priors.masked.prior.MaskedSampleTransform'
PAPER = {'baseline': 0.3195, 'baseline+sel': 0.3378, 'weighted': 0.0891, 'masked r=0.5': 0.1328}  # Fig. 2 (WGAN, 8 modes)

#----------------------------------------------------------------------------
# Rows: name -> (train.py options, sample-time spec of the "on" evaluation).

def make_rows(rates, presample, pool):
    extra = [f'--masked-presample={presample:g}'] if presample is not None else []
    rows = {'baseline': ([], dict(class_name=TRANSFORM, mode='masked', rate=0.5, pool=pool))}
    for r in rates:
        rows[f'masked r={r:g}'] = (['--prior=masked', f'--masked-rate={r:g}', '--masked-sampling=false'] + extra,
                                   dict(class_name=TRANSFORM, mode='masked', rate=float(r), pool=pool))
    rows['weighted'] = (['--prior=masked', '--masked-mode=weighted', '--masked-sampling=false'] + extra,
                        dict(class_name=TRANSFORM, mode='weighted', rate=0.5, pool=pool))
    return rows

#----------------------------------------------------------------------------
# Toy scores of one snapshot with the selection off and on.

def score_both(pkl, spec, num=2000):
    with open(pkl, 'rb') as f:
        snapshot = legacy.load_network_pkl(f)
    snapshot[sampling.SNAPSHOT_KEY] = [dict(spec)]
    out = {}
    for tag, enabled in (('off', False), ('on', True)):
        opts = metric_utils.MetricOptions(G=snapshot['G_ema'], dataset_kwargs=snapshot['training_set_kwargs'], device='cpu', seed=0,
                                          snapshot=snapshot, prior_sampling=enabled)
        start = time.time()
        scores = toy_metrics.compute_toy_scores(opts, num=num)
        out.update({f'{key}_{tag}': float(value) for key, value in scores.items()})
        out[f'score_sec_{tag}'] = time.time() - start
    return out

# One (row, seed): train, score, return the JSON record. Runs in a child process (see main).
def run_one(data, row_args, spec, seed, kimg, workdir):
    os.makedirs(workdir, exist_ok=True)
    pkl, _, wall = toy_claims.train_one(data, row_args, seed, kimg, workdir)
    return dict(seed=seed, wall=wall, **score_both(pkl, spec))

#----------------------------------------------------------------------------

def _cell(values, fmt='{:.3f}'):
    values = np.asarray(values, dtype=np.float64)
    return '-' if values.size == 0 else f'{fmt.format(values.mean())} ± {fmt.format(values.std())}'

def format_table(records, row_names):
    lines = ['| row | EMD, selection off | EMD, selection on | modes off / on | HQ % off / on | paper EMD | train s | seeds |',
             '|---|---|---|---|---|---|---|---|']
    for row in row_names:
        runs = [r for r in records if r['row'] == row]
        if not runs:
            continue
        get = lambda key: [r[key] for r in runs]
        paper = PAPER.get(row)
        paper = f'{paper:.4f}' if paper is not None else '-'
        if row == 'baseline':
            paper = f'{PAPER["baseline"]:.4f} / {PAPER["baseline+sel"]:.4f} (on)'
        lines.append(f'| {row} | {_cell(get("emd_off"))} | {_cell(get("emd_on"))} | {_cell(get("modes_off"), "{:.1f}")} / '
                     f'{_cell(get("modes_on"), "{:.1f}")} | {np.mean(get("hq_off")) * 100:.0f} / {np.mean(get("hq_on")) * 100:.0f} | '
                     f'{paper} | {np.mean(get("wall")):.0f} | {",".join(str(seed) for seed in sorted(r["seed"] for r in runs))} |')
    return '\n'.join(lines)

def _seed_list(seeds):
    out = []
    for part in seeds.split(','):
        lo, _, hi = part.partition('-')
        out += list(range(int(lo), int(hi or lo) + 1))
    return out

@click.command()
@click.option('--data', default='toy:ring8', show_default=True, help='Toy set (train.py --data)')
@click.option('--rates', default='0.1,0.3,0.5,0.7,0.9,1.0', show_default=True, help='Masked rates r (Fig. 4), comma-separated')
@click.option('--rows', 'only', help='Only these rows, comma-separated (e.g. "baseline,masked r=0.5,weighted")  [default: all]')
@click.option('--seeds', default='0-2', show_default=True, help='Training seeds, e.g. 0-2')
@click.option('--kimg', type=click.FloatRange(min=0, min_open=True), help='Training length  [default: --cfg=toy\'s]')
@click.option('--presample', type=click.FloatRange(min=1), help='--masked-presample (n / m)  [default: the prior\'s, 2]')
@click.option('--pool', type=click.IntRange(min=1), default=64, show_default=True, help='Sample-time candidates per point')
@click.option('--jobs', type=click.IntRange(min=1), default=1, show_default=True, help='Runs at a time (each one thread)')
@click.option('--results', default=None, help='JSON lines of the runs (appended; done runs skipped)  [default: <out>.jsonl]')
@click.option('--out', default='docs/toy-results-masked.md', show_default=True, help='Markdown table ("none": print only)')
@click.option('--table-only', is_flag=True, help='Run nothing: write the table of the runs already in --results')
@click.option('--one', hidden=True, help='Internal: run one "row|seed|workdir" and print its JSON record')
def main(data, rates, only, seeds, kimg, presample, pool, jobs, results, out, one, table_only=False):
    """Baseline, masked (r sweep) and weighted on a toy set, each scored with the selection on and off at generation."""
    rows = make_rows([float(r) for r in rates.split(',') if r.strip()], presample, pool)
    if one is not None:
        row, seed, workdir = one.split('|')
        record = run_one(data, rows[row][0], rows[row][1], int(seed), kimg, workdir)
        print('RECORD ' + json.dumps(record), flush=True)
        return
    names = list(rows) if not only else [n.strip() for n in only.split(',')]
    for name in names:
        if name not in rows:
            raise click.BadParameter(f'unknown row "{name}"; choose from {", ".join(rows)}', param_hint='--rows')
    out_path = None if out == 'none' else (out if os.path.isabs(out) else os.path.join(REPO, out))
    results = results or (os.path.splitext(out_path)[0] + '.jsonl' if out_path else os.path.join(tempfile.mkdtemp(), 'runs.jsonl'))
    settings = dict(data=data, kimg=kimg, presample=presample, pool=pool)
    done = []
    if os.path.exists(results):
        with open(results, encoding='utf-8') as f:
            done = [json.loads(line) for line in f if line.strip()]
    done = [r for r in done if r.get('settings') == settings]
    todo = [(row, seed) for seed in _seed_list(seeds) for row in names if not any(r['row'] == row and r['seed'] == seed for r in done)]
    todo = [] if table_only else todo
    workroot = tempfile.mkdtemp(prefix='toy-masked-') if todo else None

    def child(task):
        row, seed = task
        workdir = os.path.join(workroot, row.replace(' ', '_') + f'-seed{seed}')
        cmd = [sys.executable, '-m', 'experiments.toy_masked_sweep', f'--data={data}', f'--rates={rates}', f'--pool={pool}',
               f'--one={row}|{seed}|{workdir}']
        cmd += [f'--kimg={kimg:g}'] if kimg is not None else []
        cmd += [f'--presample={presample:g}'] if presample is not None else []
        env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
        lines = [line for line in proc.stdout.splitlines() if line.startswith('RECORD ')]
        if proc.returncode != 0 or not lines:
            raise click.ClickException(f'run {row} seed {seed} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}')
        return dict(row=row, settings=settings, **json.loads(lines[-1][len('RECORD '):]))

    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool_exec:
        for record in pool_exec.map(child, todo):
            done.append(record)
            with open(results, 'a', encoding='utf-8') as f:
                f.write(json.dumps(record) + '\n')
            print(json.dumps({k: record[k] for k in ('row', 'seed', 'emd_off', 'emd_on', 'modes_off', 'modes_on', 'wall')}), flush=True)
    table = format_table(done, names)
    print('\n' + table)
    if out_path is not None:
        _write_markdown(out_path, table, settings, results)
        print(f'\nWrote {out_path}')

def _write_markdown(path, table, settings, results):
    kimg = settings['kimg']
    lines = ['# Toy lab: the masked / weighted latent prior (Goerttler & Kloft)', '',
             'Written by `python -m experiments.toy_masked_sweep` (do not edit by hand; docs/masked.md explains the prior and',
             'these settings). Data ' + f'`{settings["data"]}`' + ', `train.py --cfg=toy` (logistic loss, Adam 5e-4, batch 128, '
             + ('the --cfg=toy length' if kimg is None else f'{kimg:g} kimg') + '), pre-sample n / m = '
             + f'{settings["presample"] or 2:g}, sample-time pool {settings["pool"]}. Scores: 2,000 generated vs 2,000 fresh data points',
             '(metric seed 0), mean ± std over the training seeds listed; "off" = plain N(0, I) latents, "on" = through the',
             'selection with D (for the baseline: masked r = 0.5 only at generation); "train s" = wall time of the train.py',
             'process on a shared machine whose load varied from 1 to 10, so it does not compare rows. "paper EMD": Fig. 2',
             '(WGAN, 5 critic steps, batch 500, n = 1000, U(-1, 1)^2 latents, data in (-1, 1)^2): not the same setting or',
             f'scale. Raw runs: `{os.path.relpath(results, os.path.dirname(path))}`. Table written by:', '',
             '    python -m experiments.toy_masked_sweep ' + ' '.join(shlex.quote(arg) for arg in sys.argv[1:]), '', table, '']
    with open(path, 'w', encoding='utf-8') as f:
        f.write('\n'.join(lines))

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
