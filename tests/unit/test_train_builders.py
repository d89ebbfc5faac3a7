"""train.py's config builders: for representative command lines, the training_loop() kwargs and the run
description equal those recorded from the single-function `setup_training_loop_kwargs` before it was split
into named builders (issue 8), at commit 82f3153. Paths are recorded relative to the test's temporary folder.
One change since then is intended and edited into the file by hand: `--prior` runs no longer copy
`dataset_kwargs` and `random_seed` into `loss_kwargs` (issue 8 item 5: the loop hands them to the loss).
A second one: the gmm prior kwargs of issue 14 (held-out split, covariance, loss form, the f^g estimate's
options, and the EMA of f^g on by default).
The two resume cases were recorded with the pre-split train.py of that commit after `_TINY` was added to
their command lines (train.py now refuses a pickle whose shapes do not fit). The priors' own kwargs are
left out of the comparison: their cli modules own and test them.

Record new references (only for an intended change of the config, said so in the commit) with
`REFERENCE_PRINT=1 python -m pytest -q tests/unit/test_train_builders.py`, which rewrites the JSON file.
"""

import json
import os
import pickle

import pytest
import torch

import dnnlib
import train
from training.synthetic import make_synthetic_dataset

REFERENCE_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'train_configs_reference.json')

# Networks as small as the resume pickles below (train.py refuses a pickle whose shapes do not fit).
_TINY = ['--cbase=256', '--cmax=8', '--map=1']

# name -> command line (without --outdir; '<ds>' / '<lab>' / '<pkl>' are filled in).
CASES = {
    'auto': ['--data=<ds>'],
    'cond_mirror': ['--data=<lab>', '--cond=1', '--mirror=1', '--kimg=1', '--batch=8', '--seed=3'],
    'paper256_fixed_weights_resume': ['--data=<ds>', '--subset=4', '--cfg=paper256', '--gamma=5', '--batch=16', '--aug=fixed',
                                      '--p=0.2', '--augpipe=bgcfnc', '--resume=<pkl>', '--freezed=2', *_TINY],
    'cifar_everything': ['--data=<ds>', '--cfg=cifar', '--aug=noaug', '--fp32=0', '--nhwc=1', '--nobench=1', '--allow-tf32=1',
                         '--workers=2', '--tick=2', '--snap=3', '--seed=5', '--glr=0.001', '--dlr=0.003', '--map=3',
                         '--cbase=1024', '--cmax=64', '--mbstd-group=2', '--batch-gpu=4', '--kimg=1.5'],
    'stylegan_two_procs_target': ['--data=<lab>', '--cfg=stylegan', '--gpus=2', '--target=0.7', '--augpipe=bg', '--cond=0',
                                  '--resume=noresume', '--metrics=fid50k_full'],
    'demo_gmm': ['--data=<ds>', '--cfg=demo', '--prior=gmm', '--prior-weight=0.2', '--resample-alpha=3', '--prior-lazy=2'],
    'stylegan_gmm_noresample': ['--data=<ds>', '--cfg=stylegan', '--prior=gmm', '--resample=0', '--prior-theta=-3',
                                '--prior-components=4', '--prior-pca=none', '--batch=8', '--mbstd-group=2'],
    'prior_none': ['--data=<ds>', '--prior=none', '--batch=8'],
    'shortcut_resume': ['--data=<ds>', '--resume=ffhq256', '--kimg=2'],
    'exact_resume_latest': ['--data=<ds>', '--batch=8', '--resume=latest', '--kimg=4', *_TINY],
}

#----------------------------------------------------------------------------

def _tiny_pickle(path, resume_state=None):
    common = dict(c_dim=0, img_resolution=16, img_channels=3)
    G = dnnlib.util.construct_class_by_name(class_name='training.networks.Generator', z_dim=512, w_dim=512, **common,
                                            mapping_kwargs=dict(num_layers=1), synthesis_kwargs=dict(channel_base=256, channel_max=8))
    D = dnnlib.util.construct_class_by_name(class_name='training.networks.Discriminator', channel_base=256, channel_max=8, **common)
    data = dict(training_set_kwargs=None, G=G, D=D, G_ema=G, augment_pipe=None)
    if resume_state is not None:
        data['resume_state'] = resume_state
    with open(path, 'wb') as f:
        pickle.dump(data, f)
    return str(path)


@pytest.fixture(scope='module')
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp('builders')
    files = dict(
        ds=make_synthetic_dataset(str(root / 'ds.zip'), num_images=8, resolution=16, num_modes=2),
        lab=make_synthetic_dataset(str(root / 'lab.zip'), num_images=8, resolution=16, num_modes=2, cond=True),
        pkl=_tiny_pickle(root / 'net.pkl'),
    )
    state = dict(version=1, cur_nimg=2000, cur_tick=3, num_gpus=1, training_options=dict(batch_size=16))
    os.makedirs(root / 'runs' / '00000-old')
    _tiny_pickle(root / 'runs' / '00000-old' / 'network-snapshot-000002.pkl', resume_state=state)
    return root, files


def _config(root, files, args):
    """(c, desc) of a command line, with the temporary folder written as '<tmp>'."""
    for key, value in files.items():
        args = [arg.replace(f'<{key}>', value) for arg in args]
    ctx = train.main.make_context('train.py', ['--outdir', str(root / 'runs'), '--dry-run', *args])
    c, desc = train.setup_training_loop_kwargs(ctx.params)
    text = json.dumps(dict(c=c, desc=desc), sort_keys=False)
    return json.loads(text.replace(str(root), '<tmp>'))

def _without_prior_options(config):
    # The priors' own kwargs belong to their cli modules (tested with them); keep only the prior names here.
    config = json.loads(json.dumps(config))
    loss_kwargs = config['c']['loss_kwargs']
    if 'prior_kwargs' in loss_kwargs:
        loss_kwargs['prior_kwargs'] = [entry['name'] for entry in loss_kwargs['prior_kwargs']]
    return config


def test_builders_reproduce_the_recorded_configs(env, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    root, files = env
    got = {name: _config(root, files, args) for name, args in CASES.items()}
    if os.environ.get('REFERENCE_PRINT'):
        with open(REFERENCE_FILE, 'w') as f:
            json.dump(got, f, indent=1)
    with open(REFERENCE_FILE) as f:
        reference = json.load(f)
    assert sorted(got) == sorted(reference)
    for name in CASES:
        got[name], reference[name] = _without_prior_options(got[name]), _without_prior_options(reference[name])
        assert got[name] == reference[name], name
        # Same key order too: training_options.json follows the official order.
        assert json.dumps(got[name]) == json.dumps(reference[name]), name
