"""Machinery of experiments/priorgan.py and experiments/rfgan.py (issue 18): the paper settings reach train.py, the
planned runs stay within the stated search budget, and `--quick` trains, measures and writes schema-valid results
with pictures. Claims are never asserted here."""

import json
import os
import subprocess
import sys

import pytest

from experiments import common
from experiments import priorgan
from experiments import rfgan

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#----------------------------------------------------------------------------
# Planning (fast).

def test_priorgan_tasks_carry_the_papers_settings_and_the_budget():
    tasks = priorgan.tasks(False, [0, 1, 2], list(priorgan.CLAIMS))
    by_arm = {t.arm: t.args for t in tasks if t.seed == 0}
    method = by_arm['+RS (paper: alpha 7, delta 0)']
    assert '--prior=gmm' in method and '--prior-components=8' in method and '--prior-weight=0' in method
    quality = by_arm['+L_Q (paper: delta 0.1 on -log p)']
    assert '--prior-loss-form=paper' in quality and '--prior-weight=0.1' in quality and '--resample=0' in quality
    assert all('--cfg=toy' in t.args for t in tasks)
    assert all('--kimg=200' in t.args for t in tasks if not any(a.startswith('--kimg=') for a in t.extra['arm_args']))   # the length search
    for claim_id in priorgan.CLAIMS:                                 # the stated search budget, per claim
        searched = [t for t in priorgan.tasks(False, [0, 1, 2, 3, 4], [claim_id]) if t.extra['role'] in ('search', 'option')]
        assert len(searched) <= priorgan.SEARCH_LIMIT + priorgan.FOLLOW_UP_RUNS and priorgan.SEARCH_LIMIT == 30
        assert priorgan.FOLLOW_UP_RUNS <= 4   # one follow-up arm, on the seeds after the first
    assert {t.seed for t in tasks} == {0, 1, 2}

def test_rfgan_tasks_use_the_unrolled_networks_and_two_g_steps():
    tasks = rfgan.tasks(False, [0, 1, 2], list(rfgan.CLAIMS))
    assert len(tasks) == 6
    for t in tasks:
        for flag in ('--toy-net=unrolled', '--g-steps=2', '--batch=512', f'--steps={rfgan.STEPS}'):
            assert flag in t.args, (flag, t.args)
    assert sum('--prior=rf' in t.args for t in tasks) == 3
    assert {a for t in tasks for a in t.args if a.startswith('--data=')} == {'--data=toy:ring8,std=0.1'}      # the paper's std

def test_dry_runs_print_the_estimate():
    for module in ('experiments.priorgan', 'experiments.rfgan'):
        proc = subprocess.run([sys.executable, '-m', module, '--dry-run'], cwd=REPO, capture_output=True, text=True, check=True,
                              env=dict(os.environ, OMP_NUM_THREADS='1'))
        assert 'core-minutes' in proc.stdout.splitlines()[-1]

#----------------------------------------------------------------------------
# --quick end to end (slow: trains through train.py).

def _quick(module, out):
    subprocess.run([sys.executable, '-m', module, '--quick', f'--out={out}'], cwd=REPO, check=True, capture_output=True, text=True,
                   env=dict(os.environ, OMP_NUM_THREADS='1'))

@pytest.mark.slow
def test_priorgan_quick_writes_results(tmp_path):
    _quick('experiments.priorgan', tmp_path)
    for claim_id in priorgan.CLAIMS:
        with open(tmp_path / f'{claim_id}.json', encoding='utf-8') as f:
            result = json.load(f)
        common.check_result(result)
        assert result['baseline']['seeds'] == [0] and result['method']['seeds'] == [0]
        assert result['pictures'] and all(os.path.isfile(p) and os.path.getsize(p) <= 200_000 for p in result['pictures'])
        with open(tmp_path / f'{claim_id}.runs.jsonl', encoding='utf-8') as f:
            rows = [json.loads(line) for line in f]
        assert len(rows) == 2
    with open(tmp_path / 'priorgan-ring8-quality.runs.jsonl', encoding='utf-8') as f:
        method = [json.loads(line) for line in f][1]
    assert method['gradients'] and all(g['ratio_median'] >= 0 for g in method['gradients'].values())   # measured per snapshot

@pytest.mark.slow
def test_rfgan_quick_writes_results(tmp_path):
    _quick('experiments.rfgan', tmp_path)
    with open(tmp_path / 'rfgan-ring8-modes.json', encoding='utf-8') as f:
        result = json.load(f)
    common.check_result(result)
    assert result['pictures'] and os.path.isfile(result['pictures'][0])
    with open(tmp_path / 'rfgan-ring8-modes.runs.jsonl', encoding='utf-8') as f:
        rows = {r['arm']: r for r in map(json.loads, f)}
    assert len(rows['GAN (std 0.1)']['modes_series']) == rfgan.SNAPSHOTS + 1          # Fig. 3 over time
    assert 'w1_share_last' in rows['RFGAN (std 0.1)'] and 'w1_share_last' not in rows['GAN (std 0.1)']
