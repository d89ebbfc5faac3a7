"""The smoke tier (`python -m pytest -m smoke tests`, under a minute on 2 cores): every command-line entry point
once, at the smallest size that still runs it through: a stylegan tick and its resume, a toy tick, one step of each
paper prior, generate.py, style_mixing.py, calc_metrics.py, dataset_tool.py, build_prior.py, build_rf.py,
train_classifier.py and missing_modes.py. The other tiers test what these runs produce; this one tells in seconds
whether anything is broken at all."""

import json
import os

import numpy as np
import PIL.Image
import pytest

import harness

pytestmark = [pytest.mark.smoke, pytest.mark.slow]   # its own tier; the fast tier (-m 'not slow') is unit and numerics

#----------------------------------------------------------------------------

@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return harness.tiny_dataset(tmp_path_factory.mktemp('smoke') / 'tiny16.zip', num_images=16)


@pytest.fixture(scope='module')
def stylegan_run(tmp_path_factory, data):
    """A tiny stylegan run of 2 ticks of one step, each with a snapshot."""
    return harness.train(tmp_path_factory.mktemp('stylegan'), '--data', data, *harness.TRAIN_ARGS, '--kimg=0.008', '--tick=0.004',
                         '--snap=1', '--aug=ada', '--seed=1')

#----------------------------------------------------------------------------

def test_stylegan_tick_and_resume(stylegan_run, data, tmp_path):
    assert len(harness.read_stats(stylegan_run)) == 2
    snapshot = harness.snapshot_path(stylegan_run)
    assert harness.load(snapshot)['resume_state']['cur_nimg'] == 8
    resumed = harness.train(tmp_path, '--data', data, *harness.TRAIN_ARGS, '--kimg=0.012', '--tick=0.004', '--snap=1', '--aug=ada',
                            '--seed=1', '--resume', snapshot)
    assert harness.load(harness.snapshot_path(resumed))['resume_state']['cur_nimg'] == 12


def test_generate_and_style_mixing(stylegan_run, tmp_path):
    import generate
    import style_mixing
    pkl = harness.snapshot_path(stylegan_run)
    harness.invoke_ok(generate.generate_images, ['--network', pkl, '--seeds', '0-1', '--outdir', tmp_path / 'gen', '--device', 'cpu'])
    assert sorted(os.listdir(tmp_path / 'gen')) == ['seed0000.png', 'seed0001.png']
    harness.invoke_ok(style_mixing.generate_style_mix, ['--network', pkl, '--rows', '0', '--cols', '1', '--styles', '0-1',
                                                        '--outdir', tmp_path / 'mix', '--device', 'cpu'])
    assert 'grid.png' in os.listdir(tmp_path / 'mix')


def test_calc_metrics(stylegan_run, metric_env):
    import calc_metrics
    metric_env(harness.small_fid(16))
    pkl = harness.snapshot_path(stylegan_run)
    harness.invoke_ok(calc_metrics.main, ['--network', pkl, '--metrics', 'fid16', '--device', 'cpu', '--verbose', 'false'])
    (line,) = harness.read_jsonl(os.path.join(stylegan_run, 'metric-fid16.jsonl'))
    assert np.isfinite(line['results']['fid16'])


def test_toy_tick_and_points(cache_env):
    import generate
    run = harness.train(cache_env / 'runs', '--cfg=toy', '--data=toy:ring8,n=200', '--batch=32', '--kimg=0.032', '--tick=0.032',
                        '--snap=1')
    assert len(harness.read_stats(run)) == 1
    harness.invoke_ok(generate.generate_images, ['--network', harness.snapshot_path(run), '--seeds=0-3', '--outdir', cache_env / 'out',
                                                 '--device=cpu'])
    assert np.load(cache_env / 'out' / 'points.npy').shape == (4, 2)

#----------------------------------------------------------------------------
# One step of each paper prior through train.py (--cfg=stylegan, tiny networks), with its smallest settings.

PRIOR_ARGS = {
    'gmm': ['--prior-feature=tiny', '--prior-components=2', '--prior-pca=4', '--resample-kimg=0.004', '--resample-num=8'],
    'masked': ['--masked-sampling=false'],   # the snapshot grids would score candidates image by image
    'mdgan': [],
    'posterior': ['--post-dim=3', '--post-pretrain-kimg=0'],
    'rf': ['--rf-ae-kimg=0.004'],
}

@pytest.mark.parametrize('prior', sorted(PRIOR_ARGS))
def test_one_step_of_each_prior(prior, data, cache_env):
    run = harness.train(cache_env / 'runs', '--data', data, f'--prior={prior}', *PRIOR_ARGS[prior], '--cfg=stylegan',
                        *harness.TRAIN_ARGS, '--kimg=0.004', '--tick=0.004', '--snap=1', '--aug=noaug')
    with open(os.path.join(run, 'training_options.json')) as f:
        (entry,) = json.load(f)['loss_kwargs']['prior_kwargs']
    assert entry['name'] == prior
    (line,) = harness.read_stats(run)
    assert np.isfinite(line['Loss/G/loss']['mean']) and any(name.startswith(f'Prior/{prior}/') for name in line)
    assert harness.load(harness.snapshot_path(run))['resume_state']['cur_nimg'] == 4

#----------------------------------------------------------------------------
# The other scripts: each once, on the smallest input it takes.

def test_dataset_tool(tmp_path):
    import dataset_tool
    source = tmp_path / 'images'
    source.mkdir()
    for i in range(4):
        PIL.Image.fromarray(np.full([8, 8, 3], 60 * i, np.uint8)).save(source / f'{i}.png')
    harness.invoke_ok(dataset_tool.convert_dataset, ['--source', source, '--dest', tmp_path / 'out.zip'])
    assert os.path.getsize(tmp_path / 'out.zip') > 0


def test_build_prior_and_build_rf(data, cache_env):
    import build_prior
    import build_rf
    harness.invoke_ok(build_prior.main, ['--data', data, '--out', cache_env / 'prior.pt', '--feature', 'tiny', '--components', '2',
                                         '--pca', '4', '--grid', 'false', '--device', 'cpu'])
    harness.invoke_ok(build_rf.main, ['--data', data, '--cfg=stylegan', *harness.TRAIN_ARGS[:4], '--rf-ae-kimg=0.004',
                                      '--out', cache_env / 'ae.pt', '--device', 'cpu'])
    assert os.path.isfile(cache_env / 'prior.pt') and os.path.isfile(cache_env / 'ae.pt')


def test_train_classifier_and_missing_modes(stylegan_run, tmp_path):
    import missing_modes
    import train_classifier
    labelled = harness.noise_dataset(tmp_path / 'labelled.zip', num_images=16, labels=np.arange(16) % 2)
    result = harness.invoke_ok(train_classifier.main, ['--data', labelled, '--out', tmp_path / 'clf.pt', '--epochs', '1', '--batch', '8',
                                                       '--width', '4', '--device', 'cpu'])
    assert 'Test accuracy' in result.output
    result = harness.invoke_ok(missing_modes.main, ['--network', harness.snapshot_path(stylegan_run), '--test-data', labelled,
                                                    '--outdir', tmp_path / 'mm', '--kimg', '0.016', '--batch', '8', '--device', 'cpu'])
    assert 'missing' in result.output

#----------------------------------------------------------------------------
