"""dataset_tool.py --source=digits: scikit-learn's bundled digits, offline, with rare classes for the digits rung."""

import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
pytest.importorskip('sklearn')

def _tool(*args):
    return subprocess.run([sys.executable, os.path.join(ROOT, 'dataset_tool.py'), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)

def test_rare_classes_keep_their_share(tmp_path):
    dest = tmp_path / 'd.zip'
    proc = _tool('--source=digits', f'--dest={dest}', '--width=16', '--height=16', '--digits-rare=7,9', '--digits-rare-frac=0.1')
    assert proc.returncode == 0, proc.stderr
    with zipfile.ZipFile(dest) as zf:
        meta = json.loads(zf.read('dataset.json'))
        names = [n for n in zf.namelist() if n.endswith('.png')]
    labels = np.array([label for _name, label in meta['labels']])
    counts = np.bincount(labels, minlength=10)
    from sklearn.datasets import load_digits
    full = np.bincount(load_digits().target, minlength=10)
    expected = full.copy()
    expected[[7, 9]] = np.round(full[[7, 9]] * 0.1).astype(int)
    assert counts.tolist() == expected.tolist() == meta['digits']['class_counts']
    assert len(names) == counts.sum() and [m for _n, m in meta['modes']] == labels.tolist()

def test_bad_class_list_is_one_line(tmp_path):
    proc = _tool('--source=digits', f'--dest={tmp_path / "d.zip"}', '--digits-rare=7,12')
    assert proc.returncode != 0 and '--digits-rare=7,12' in proc.stderr and 'Traceback' not in proc.stderr
    proc = _tool('--source=synthetic', f'--dest={tmp_path / "s.zip"}', '--digits-rare=7')
    assert proc.returncode != 0 and 'apply only to --source=digits' in proc.stderr
