"""Run every paper's experiment file, then render docs/reproduction.md.

    python -m experiments.run_all --jobs=12             # everything, 12 single-threaded runs at a time
    python -m experiments.run_all --dry-run             # the runs and the total estimated core-minutes
    python -m experiments.run_all --quick --jobs=2      # every file's tiny smoke version (results in a temporary folder)
    python -m experiments.run_all --papers=masked,mdgan

Paper files with the shape of experiments/common.py (CLAIMS, tasks, run, finish) are pooled together, so one
--jobs packs the runs of all of them (longest first); any other paper file is run as
`python -m experiments.<paper> --jobs=N` after them.
"""

import importlib
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import time

import click

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)
from experiments import common  # pylint: disable=wrong-import-position
from experiments import report  # pylint: disable=wrong-import-position

PAPERS = ('masked', 'mdgan', 'p2gan', 'priorgan', 'rfgan', 'digits')

#----------------------------------------------------------------------------

def available(names):
    return [n for n in names if importlib.util.find_spec(f'experiments.{n}') is not None]

def is_pooled(module):
    return all(hasattr(module, name) for name in ('CLAIMS', 'tasks', 'run', 'finish'))

def _subprocess(name, args):
    cmd = [sys.executable, '-m', f'experiments.{name}'] + args
    print('$ ' + ' '.join(cmd), flush=True)
    return subprocess.run(cmd, cwd=REPO, env=dict(os.environ, OMP_NUM_THREADS='1'), capture_output=False, text=True, check=False)

def _subprocess_estimate(name, args):
    cmd = [sys.executable, '-m', f'experiments.{name}', '--dry-run'] + args
    proc = subprocess.run(cmd, cwd=REPO, env=dict(os.environ, OMP_NUM_THREADS='1'), capture_output=True, text=True, check=False)
    found = re.findall(r'([\d.]+) core-minutes', proc.stdout)
    return (float(found[-1]) if found else float('nan')), proc.stdout

@click.command()
@click.option('--jobs', type=click.IntRange(min=1), default=1, show_default=True, help='Runs at a time over all papers (each one thread)')
@click.option('--papers', metavar='LIST', help=f'Paper files, comma-separated  [default: all present of {", ".join(PAPERS)}]')
@click.option('--quick', is_flag=True, help='Every file\'s tiny smoke version; results in a temporary folder, no report')
@click.option('--dry-run', is_flag=True, help='Print every run and the total estimated core-minutes; run nothing')
@click.option('--seeds', metavar='LIST', help='Training seeds for every file  [default: each file\'s own]')
@click.option('--out', metavar='DIR', help='Results folder  [default: experiments/results; --quick: a temporary folder]')
@click.option('--no-report', is_flag=True, help='Do not render docs/reproduction.md afterwards')
def main(jobs, papers, quick, dry_run, seeds, out, no_report):
    """Run every paper experiment file, then render docs/reproduction.md."""
    names = [n.strip() for n in papers.split(',')] if papers else list(PAPERS)
    unknown = [n for n in names if n not in PAPERS]
    if unknown:
        raise click.BadParameter(f'--papers: unknown "{unknown[0]}"; choose from {", ".join(PAPERS)}')
    present = available(names)
    missing = [n for n in names if n not in present]
    if missing:
        print(f'not present (skipped): {", ".join(missing)}')
    modules = {n: importlib.import_module(f'experiments.{n}') for n in present}
    pooled = {n: m for n, m in modules.items() if is_pooled(m)}
    others = [n for n in modules if n not in pooled]
    out_dir = out or (tempfile.mkdtemp(prefix='exp-quick-') if quick else common.RESULTS_DIR)
    pictures_dir = os.path.join(out_dir, 'pictures') if (quick or out) else common.PICTURES_DIR

    plans, roots = {}, []
    for n, m in pooled.items():
        seeds_text = seeds or _default_seeds(m)
        if quick and not seeds:
            seeds_text = str(common.parse_seeds(seeds_text)[0])  # the smoke version: one seed unless asked
        tasks, root = common.prepare(m, quick, common.parse_seeds(seeds_text), list(m.CLAIMS), None)
        plans[n] = (tasks, seeds_text)
        roots.append(root)
    extra_args = (['--quick'] if quick else []) + ([f'--seeds={seeds}'] if seeds else []) + ([f'--out={out_dir}'] if (quick or out) else [])

    if dry_run:
        total = 0.0
        for n, (tasks, _) in plans.items():
            print(f'== {n}: {common.estimate_text(tasks)}')
            for t in tasks:
                print(f'   {t.claim:28s} {t.arm:34s} seed {t.seed}  ~{t.est_sec:6.0f} s')
            total += sum(t.est_sec for t in tasks) / 60
        for n in others:
            minutes, _ = _subprocess_estimate(n, extra_args)
            print(f'== {n}: estimated {minutes:.1f} core-minutes (its own --dry-run)')
            total += minutes if minutes == minutes else 0.0
        print(f'TOTAL: estimated {total:.1f} core-minutes; at --jobs={jobs}: about {total / jobs:.1f} minutes of wall time')
        _cleanup(roots)
        return

    started = time.time()
    all_tasks = [t for tasks, _ in plans.values() for t in tasks]
    print(common.estimate_text(all_tasks), flush=True)
    pairs = common.run_pool(all_tasks, jobs, log=lambda s: print(s, flush=True))
    for n, m in pooled.items():
        common.finish_all(m, [(t, r) for t, r in pairs if t.module == m.__name__], quick, plans[n][1], out_dir, pictures_dir)
    failures = [n for n in others if _subprocess(n, [f'--jobs={jobs}'] + extra_args).returncode != 0]
    _cleanup(roots)
    if not quick and not no_report:
        path, count = report.write_report(out_dir, os.path.join(REPO, 'docs', 'reproduction.md') if not out else os.path.join(out_dir, 'reproduction.md'))
        print(f'wrote {path} ({count} claims)')
    print(f'done in {time.time() - started:.0f} s; results in {out_dir}')
    failed_runs = [t for t, r in pairs if 'error' in r]
    if failed_runs or failures:
        raise click.ClickException(f'{len(failed_runs)} runs failed; paper files that failed: {", ".join(failures) or "none"}')

def _default_seeds(module):
    return getattr(module, 'DEFAULT_SEEDS', '0-2')

def _cleanup(roots):
    import shutil  # pylint: disable=import-outside-toplevel
    for root in roots:
        shutil.rmtree(root, ignore_errors=True)

if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter
