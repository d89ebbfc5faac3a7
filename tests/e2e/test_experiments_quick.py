"""The paper experiment files' machinery: `python -m experiments.<paper> --quick` trains, scores and writes result JSONs in the protocol's schema with their pictures; `--dry-run` and `run_all --dry-run` print the cost. No claim is asserted: quick runs are too short to mean anything."""

import json
import os
import subprocess
import sys

import pytest

from experiments import common

pytestmark = pytest.mark.slow

PAPERS = {'masked': ['masked-ring8-emd', 'weighted-ring8-emd'], 'mdgan': ['mdgan-ring6-modes'], 'p2gan': ['p2gan-ring8-ablation']}

def _run(args, timeout=600):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, '-m'] + args, cwd=common.REPO, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f'{args}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}'
    return proc.stdout

@pytest.mark.parametrize('paper', sorted(PAPERS))
def test_quick_run_writes_schema_results_with_pictures(paper, tmp_path):
    out = _run([f'experiments.{paper}', '--quick', f'--out={tmp_path}'])
    assert 'estimated' in out
    for claim_id in PAPERS[paper]:
        with open(tmp_path / f'{claim_id}.json', encoding='utf-8') as f:
            result = json.load(f)
        common.check_result(result)
        assert tuple(result) == common.SCHEMA
        assert result['verdict'] in common.VERDICTS and result['deviations'][0].startswith('QUICK')
        assert result['command'].startswith(f'python -m experiments.{paper} --only={claim_id}')
        assert len(result['baseline']['values']) == len(result['baseline']['seeds']) >= 1
        assert result['pictures'] and all(os.path.getsize(p) <= 200_000 for p in result['pictures'])

def test_dry_runs_print_the_estimate():
    out = _run(['experiments.masked', '--dry-run'])
    assert 'masked-ring8-emd' in out and 'core-minutes' in out
    out = _run(['experiments.run_all', '--dry-run', '--papers=masked,mdgan,p2gan'])
    assert 'TOTAL: estimated' in out and '== mdgan' in out and '== p2gan' in out
