"""The search plan of experiments/priorgan.py (issue 18, step 3), no training: searched arms run on the first seed only,
options and the paper's arms on every seed, an arm's own --data/--kimg replaces the claim's, every option is a train.py
option, the runs per claim stay within the stated budget, and a kept run is reused only when nothing about it changed (and measured again,
not trained again, when only the measurements changed)."""

import json
import os

from experiments import common
from experiments import priorgan

SEEDS = [0, 1, 2, 3, 4]

def _plan():
    return priorgan.tasks(False, SEEDS, list(priorgan.CLAIMS))

def test_searched_arms_run_one_seed_and_the_rest_every_seed():
    by_arm = {}
    for t in _plan():
        by_arm.setdefault((t.claim, t.arm, t.extra['role']), []).append(t.seed)
    roles = {role for _, _, role in by_arm}
    assert {'baseline', 'method', 'search', 'option'} <= roles
    for (_, arm, role), seeds in by_arm.items():
        assert seeds == (SEEDS[:1] if role == 'search' else SEEDS), (arm, seeds)

def test_every_option_is_a_train_py_option_and_data_or_length_replace_the_claims():
    for t in _plan():
        kept, missing = common.split_available(t.args)
        assert not missing, (t.arm, missing)
        for flag in ('--data', '--kimg', '--seed', '--cfg'):
            assert sum(a.startswith(flag + '=') for a in t.args) == 1, (t.arm, flag, t.args)
    args = priorgan.run_args(priorgan.CLAIM_SPECS['priorgan-ring8rare-resampling'], ['--data=toy:ring8,rare=0.05', '--kimg=600',
                             '--prior=gmm'], 3, priorgan.FULL)
    assert '--data=toy:ring8,rare=0.05' in args and '--kimg=600' in args and '--seed=3' in args and args[-1] == '--prior=gmm'

def test_references_name_arms_of_the_same_claim_and_the_budget_per_claim():
    for claim_id, spec in priorgan.CLAIM_SPECS.items():
        labels = {label for label, _, _ in spec['arms']}
        assert set(spec.get('references', {})) <= labels and set(spec.get('references', {}).values()) <= labels
        runs = [t for t in _plan() if t.claim == claim_id and t.extra['role'] in ('search', 'option')]
        assert len(runs) <= priorgan.SEARCH_LIMIT + priorgan.FOLLOW_UP_RUNS, (claim_id, len(runs))

def test_a_kept_run_is_reused_only_when_unchanged(tmp_path):
    task = [t for t in _plan() if t.extra['role'] == 'search'][0]
    task.workdir = str(tmp_path / 'w')
    run_dir = tmp_path / 'w' / '00000-run'
    os.makedirs(run_dir)
    (run_dir / 'network-snapshot-000000.pkl').write_bytes(b'')
    saved = dict(key=priorgan._measured_key(task), result=dict(run_dir=str(run_dir), dds=0.25))
    (tmp_path / 'w' / 'measured.json').write_text(json.dumps(saved))
    assert priorgan.cached(task) == (dict(run_dir=str(run_dir), dds=0.25), None)
    task.args = task.args + ['--resample-alpha=2']                    # other options: train again
    assert priorgan.cached(task) == (None, None)
    task.args = task.args[:-1]
    saved['key']['version'] = priorgan.MEASURED_VERSION - 1           # older measurements: measure the kept run again
    (tmp_path / 'w' / 'measured.json').write_text(json.dumps(saved))
    assert priorgan.cached(task) == (None, str(run_dir))
    (run_dir / 'network-snapshot-000000.pkl').unlink()                 # its snapshots are gone: train again
    assert priorgan.cached(task) == (None, None)

def test_between_share_hand_computed():
    import types
    import numpy as np
    ang = np.arange(8) * 2 * np.pi / 8
    centres = 2 * np.stack([np.cos(ang), np.sin(ang)], 1)
    modes = types.SimpleNamespace(centres=centres, stds=np.full(8, 0.02))
    mid = (centres[0] + centres[1]) / 2
    # outside every mode: the midpoint (between), the origin (not), the midpoint pushed out by 5 % (0.09 < 0.153: between)
    points = np.array([centres[0], mid, [0.0, 0.0], 1.05 * mid])
    assert priorgan.between_share(points, modes) == 2 / 3
    assert np.isnan(priorgan.between_share(centres, modes))             # every point in a mode
