"""The README's commands run as written, in order, on a fresh checkout (issue 15).

Every `python ...` command of the README's ```bash blocks runs, in order, from a fresh folder holding links to
the repository's scripts, with its own dnnlib cache. Left out: the installs (`pip ...`) and the test suite
(`python -m pytest`), i.e. the rest of the first two commands. The only changes: train.py gets --kimg=0.016, which
shortens the demo from 8 kimg to one step (the later commands find snapshots by their --outdir, so they do not
depend on the run length), and its image grids show 8 x 4 images instead of 32 x 32. calc_metrics.py parses the README's own arguments, but runs with qs10k/dds10k
counting 256 generated images instead of 10000 (priors.gmm.metrics.NUM_GEN_10K set before the script starts):
10k images take minutes on a CPU. A benchmark or experiment module (`python -m benchmarks.NAME`, `python -m experiments.NAME`) runs its smallest setting
(one set, one row, one seed, short runs) and writes no table.
"""

import os
import re
import shlex
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN_SHRINK = ['--kimg=0.016']  # one step of the demo's batch of 16
BENCH_SHRINK = {'experiments.toy_claims': ['--sets=ring8', '--rows=baseline', '--seeds=0', '--kimg=0.1', '--out=none']}
METRICS_SHRINK = ('import runpy, sys; import priors.gmm.metrics as m; m.NUM_GEN_10K = 256; '
                  'sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name="__main__")')
# train.py's image grids (reals, fakes_init, fakes<kimg>) show the first 8 x 4 images instead of up to 32 x 32: two
# grids of 1024 generated images were most of a one-step demo run (20 of 22 s of CPU).
TRAIN_GRID_SHRINK = ('import runpy, sys; import training.training_loop as t; grid = t.setup_snapshot_image_grid; '
                     't.setup_snapshot_image_grid = lambda *a, **k: (lambda size, img, c: ((8, 4), img[:32], c[:32]))(*grid(*a, **k)); '
                     'sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name="__main__")')

#----------------------------------------------------------------------------

def readme_commands(text):
    """The commands of the README's ```bash blocks, in order, without installs and the test suite run."""
    commands = []
    for block in re.findall(r'```bash\n(.*?)```', text, flags=re.S):
        for line in block.splitlines():
            for part in line.split('&&'):
                part = part.split('  #')[0].strip()  # an inline comment
                if part and not part.startswith(('#', 'pip ', 'python -m pytest')):
                    commands.append(part)
    return commands


def test_readme_commands_are_all_python_calls():
    with open(os.path.join(REPO_ROOT, 'README.md'), encoding='utf-8') as f:
        commands = readme_commands(f.read())
    assert len(commands) >= 3
    for command in commands:
        assert command.startswith('python ') and not re.search(r'[*?\[]', command), command  # no glob a shell may leave unexpanded


def test_ci_runs_the_readme_test_command():
    # .ci/run must run exactly the README's install-and-test command (the full tier), so that a green CI means that
    # command passes on a fresh clone.
    with open(os.path.join(REPO_ROOT, 'README.md'), encoding='utf-8') as f:
        (readme,) = [line.split('  #')[0].strip() for block in re.findall(r'```bash\n(.*?)```', f.read(), flags=re.S)
                     for line in block.splitlines() if line.startswith('pip install') and 'python -m pytest' in line]
    with open(os.path.join(REPO_ROOT, '.ci', 'run'), encoding='utf-8') as f:
        ci = [line.strip() for line in f if 'python -m pytest' in line]
    assert ci == [readme]


def test_readme_commands_run_in_order(tmp_path):
    with open(os.path.join(REPO_ROOT, 'README.md'), encoding='utf-8') as f:
        commands = readme_commands(f.read())
    work = tmp_path / 'clone'
    work.mkdir()
    for name in os.listdir(REPO_ROOT):
        if name.endswith('.py') or name in ('benchmarks', 'experiments'):
            os.symlink(os.path.join(REPO_ROOT, name), work / name)  # scripts import the repository (sys.path[0] is resolved)
    env = dict(os.environ, DNNLIB_CACHE_DIR=str(tmp_path / 'cache'), OMP_NUM_THREADS='2')
    for command in commands:
        args = shlex.split(command)
        args[0] = sys.executable
        if args[1] == 'train.py':
            args[1:1] = ['-c', TRAIN_GRID_SHRINK]
            args += TRAIN_SHRINK
        if args[1] == 'calc_metrics.py':
            args[1:1] = ['-c', METRICS_SHRINK]
        if args[1] == '-m' and args[2] in BENCH_SHRINK:
            args += BENCH_SHRINK[args[2]]
        elif args[1] == '-m':
            pytest.fail(f'{command}: no small setting is known for this module; add it to BENCH_SHRINK')
        proc = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f'{command}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}'
    assert (work / 'out' / 'grid.png').is_file()
    assert any('-demo-' in name and name.endswith('-gmm') for name in os.listdir(work / 'runs'))  # e.g. 00001-...-demo-kimg0.016-gmm

#----------------------------------------------------------------------------
