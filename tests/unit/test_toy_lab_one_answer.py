"""'Is this a toy run?' has one answer, training/toy_lab.py: no other module compares toy class names or calls the
spec parser's predicate itself (issue 19: the toy lab was detected four different ways)."""

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOME = {os.path.join('training', 'toy_lab.py'), os.path.join('training', 'toy_data.py')}
DETECTION = re.compile(r"""(==|!=)\s*['"]training\.toy_|\.startswith\(\s*['"]training\.toy_|is_toy_spec\(""")

def _sources():
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in ('.git', 'tests', '__pycache__', 'build') and not d.startswith('.')]
        for name in files:
            if name.endswith('.py'):
                path = os.path.join(folder, name)
                yield os.path.relpath(path, ROOT), path

def test_toy_detection_only_in_toy_lab():
    found = []
    for rel, path in _sources():
        if rel in HOME:
            continue
        with open(path, encoding='utf-8') as f:
            for num, line in enumerate(f, 1):
                if DETECTION.search(line):
                    found.append(f'{rel}:{num}: {line.strip()}')
    assert not found, 'ask training.toy_lab (is_toy_data / is_toy_networks / is_toy_run) instead:\n' + '\n'.join(found)

def test_toy_lab_answers():
    from training import toy_lab
    assert toy_lab.is_toy_data('toy:ring8') and toy_lab.is_toy_data('points.npy') and not toy_lab.is_toy_data('ffhq.zip')
    assert toy_lab.is_toy_networks({'class_name': 'training.toy_networks.ToyGenerator'})
    assert not toy_lab.is_toy_networks({'class_name': 'training.networks.Generator'}) and not toy_lab.is_toy_networks(None)
    assert toy_lab.is_toy_run({'training_set_kwargs': {'class_name': toy_lab.TOY_DATASET_CLASS}})
    assert not toy_lab.is_toy_run({'training_set_kwargs': {'class_name': 'training.dataset.ImageFolderDataset'},
                                   'G_kwargs': {'class_name': 'training.networks.Generator'}})
