"""The "sixth prior" of docs/priors.md, as written there: its two files are copied from the page into a temporary
package `mine/`, named in SG2ADA_PRIORS, and trained one tick through train.py in a subprocess (issue 19, item 5).
Then the same package without a working cli module: train.py --help still works and says why in one line, and
--prior=mine stops with one line naming the prior."""

import json
import os
import re
import subprocess
import sys

import pytest

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
DOC = os.path.join(REPO_ROOT, 'docs', 'priors.md')

#----------------------------------------------------------------------------

# The page's python blocks whose first line is '# mine/<file>.py', written into `folder`.
def _write_package_from_doc(folder):
    with open(DOC, encoding='utf-8') as f:
        blocks = re.findall(r'```python\n(.*?)```', f.read(), re.S)
    written = []
    for block in blocks:
        match = re.match(r'# (mine/[\w/]+\.py)', block)
        if match:
            path = os.path.join(folder, match.group(1))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, 'w', encoding='utf-8') as f:
                f.write(block)
            written.append(match.group(1))
    assert sorted(written) == ['mine/__init__.py', 'mine/cli.py'], f'docs/priors.md should hold both files of the sixth prior, found {written}'

def _train_py(folder, *args, timeout=300):
    env = dict(os.environ, SG2ADA_PRIORS='mine', PYTHONPATH=os.pathsep.join([str(folder), REPO_ROOT]), OMP_NUM_THREADS='1',
               DNNLIB_CACHE_DIR=os.path.join(str(folder), 'cache'))
    return subprocess.run([sys.executable, os.path.join(REPO_ROOT, 'train.py'), *args], cwd=str(folder), env=env,
                          capture_output=True, text=True, timeout=timeout)

#----------------------------------------------------------------------------

@pytest.mark.slow
def test_the_documented_sixth_prior_trains_through_train_py(tmp_path):
    _write_package_from_doc(tmp_path)

    # --help: its own section, with the defaults generated from MyPrior's signature.
    result = _train_py(tmp_path, '--help')
    assert result.returncode == 0, result.stderr
    help_text = ' '.join(result.stdout.split())
    assert 'Options of --prior=mine (Sixth prior: nearest-real penalty' in help_text
    assert re.search(r'--mine-weight FLOAT mine: weight of the distance to the nearest real of the batch \[default: 1\]', help_text)
    assert re.search(r'--mine-shrink FLOAT mine: factor of the latents at sampling time \[default: 0.9\]', help_text)

    # One tick of the toy lab with the prior: its options reach the constructor, its loss the stats, its sample
    # transform every snapshot.
    outdir = tmp_path / 'runs'
    result = _train_py(tmp_path, f'--outdir={outdir}', '--cfg=toy', '--data=toy:ring8', '--prior=mine', '--mine-weight=0.5',
                       '--kimg=0.064', '--batch=32', '--tick=0.032', '--snap=1')
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    (run_name,) = os.listdir(outdir)
    run_dir = outdir / run_name
    options = json.loads((run_dir / 'training_options.json').read_text())
    assert options['loss_kwargs']['prior_kwargs'] == [dict(name='mine', weight=0.5, shrink=0.9)]
    assert options['sample_transform_kwargs'] == [dict(class_name='mine.Shrink', factor=0.9)]
    stats = [json.loads(line) for line in (run_dir / 'stats.jsonl').read_text().splitlines()]
    assert stats[-1]['Prior/mine/loss']['num'] > 0
    assert (run_dir / 'network-snapshot-000000.pkl').is_file()

#----------------------------------------------------------------------------

@pytest.mark.slow
def test_a_broken_cli_module_is_one_line_naming_the_prior(tmp_path):
    _write_package_from_doc(tmp_path)
    (tmp_path / 'mine' / 'cli.py').write_text('import no_such_module_here\n')

    # --help works, lists the other priors' options, and says in one line what is wrong with this one.
    result = _train_py(tmp_path, '--help')
    assert result.returncode == 0, result.stderr
    assert '--resample-ema' in result.stdout and '--mine-weight' not in result.stdout
    help_text = ' '.join(result.stdout.split())
    assert 'Options of --prior=mine: Prior "mine": its options module "mine.cli" cannot be imported (ModuleNotFoundError' in help_text

    # Selecting it: one line, no traceback.
    result = _train_py(tmp_path, '--outdir=runs', '--dry-run', '--prior=mine')
    assert result.returncode != 0
    assert 'Traceback' not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.strip()]
    assert line.startswith('Error: Prior "mine": its options module "mine.cli" cannot be imported') and 'no_such_module_here' in line

#----------------------------------------------------------------------------

@pytest.mark.slow
def test_a_missing_plugin_package_does_not_take_down_train_py(tmp_path):
    env_folder = tmp_path / 'empty'
    env_folder.mkdir()
    result = _train_py(env_folder, '--outdir=runs', '--dry-run', '--prior=mine')
    assert result.returncode == 2 and 'Traceback' not in result.stderr
    assert 'unknown prior "mine"' in result.stderr
    assert 'SG2ADA_PRIORS: module "mine" cannot be imported (ModuleNotFoundError' in result.stderr

#----------------------------------------------------------------------------
