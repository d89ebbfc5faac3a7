"""Tests for train.py: option checks and their messages, run folder names, presets, resume selection (no training)."""

import inspect
import json
import os
import pickle
import re

import click
import pytest
from click.testing import CliRunner

import dnnlib
import train
from training import training_loop as training_loop_module
from training.synthetic import make_synthetic_dataset

#----------------------------------------------------------------------------

@pytest.fixture(scope='module')
def data(tmp_path_factory):
    """An unlabelled 8-image 16x16 dataset named 'ds'."""
    return make_synthetic_dataset(str(tmp_path_factory.mktemp('data') / 'ds.zip'), num_images=8, resolution=16, num_modes=2)


@pytest.fixture(scope='module')
def labelled_data(tmp_path_factory):
    return make_synthetic_dataset(str(tmp_path_factory.mktemp('data') / 'lab.zip'), num_images=8, resolution=16, num_modes=2, cond=True)


@pytest.fixture
def any_resume_architecture(monkeypatch):
    # The tests below resume from a tiny stand-in pickle to check the option handling only; train.py refuses
    # a pickle whose networks do not fit the options (tested in test_bad_inputs.py), so that check is off here.
    import train
    monkeypatch.setattr(train, '_check_resume_architecture', lambda *args: None)


def _tiny_pickle(path, resume_state=None):
    # A network pickle with tiny G/D, optionally with a resume_state.
    common = dict(c_dim=0, img_resolution=16, img_channels=3)
    G = dnnlib.util.construct_class_by_name(class_name='training.networks.Generator', z_dim=8, w_dim=8, **common,
                                            mapping_kwargs=dict(num_layers=1), synthesis_kwargs=dict(channel_base=256, channel_max=8))
    D = dnnlib.util.construct_class_by_name(class_name='training.networks.Discriminator', channel_base=256, channel_max=8, **common)
    data = dict(training_set_kwargs=None, G=G, D=D, G_ema=G, augment_pipe=None)
    if resume_state is not None:
        data['resume_state'] = resume_state
    with open(path, 'wb') as f:
        pickle.dump(data, f)
    return str(path)


def _invoke(args, **kwargs):
    return CliRunner().invoke(train.main, args, **kwargs)


def _dry_run(outdir, data, *args):
    result = _invoke(['--outdir', str(outdir), '--data', data, '--dry-run', *args])
    assert result.exit_code == 0, result.output
    text = result.output
    options = json.loads(text[text.index('{'):text.index('\nOutput directory:')])
    return options, text

#----------------------------------------------------------------------------

def test_dry_run_options_are_training_loop_kwargs(tmp_path, data):
    options, text = _dry_run(tmp_path, data)
    assert 'Dry run; exiting.' in text
    assert not os.listdir(tmp_path)  # nothing created
    inspect.signature(training_loop_module.training_loop).bind(**options)
    # --cfg=auto at 16x16 with 1 process: official derivation.
    assert (options['batch_size'], options['batch_gpu'], options['ema_kimg']) == (32, 32, 10.0)
    assert options['loss_kwargs']['r1_gamma'] == pytest.approx(0.0002 * 16 ** 2 / 32)
    assert options['D_kwargs']['epilogue_kwargs']['mbstd_group_size'] == 4
    assert options['G_kwargs']['synthesis_kwargs']['channel_base'] == 16384
    assert options['ada_target'] == 0.6 and options['augment_kwargs']['class_name'] == 'training.augment.AugmentPipe'
    assert options['data_loader_kwargs']['num_workers'] == 3
    assert options['training_set_kwargs']['max_size'] == 8 and options['training_set_kwargs']['resolution'] == 16
    assert options['run_dir'].endswith('00000-ds-auto1')


def test_run_dir_names_follow_the_official_pattern(tmp_path, data, labelled_data, any_resume_architecture):
    options, _ = _dry_run(tmp_path, labelled_data, '--cond=1', '--mirror=1', '--kimg=1', '--batch=8')
    assert os.path.basename(options['run_dir']) == '00000-lab-cond-mirror-auto1-kimg1-batch8'
    pkl = _tiny_pickle(tmp_path / 'net.pkl')
    os.makedirs(tmp_path / '00007-old')
    options, _ = _dry_run(tmp_path, data, '--subset=4', '--cfg=paper256', '--gamma=5', '--batch=16', '--aug=fixed', '--p=0.2',
                          '--augpipe=bgcfnc', f'--resume={pkl}', '--freezed=2')
    assert os.path.basename(options['run_dir']) == '00008-ds-subset4-paper256-gamma5-batch16-fixed-p0.2-bgcfnc-resumecustom-freezed2'
    assert options['training_set_kwargs']['max_size'] == 4 and options['training_set_kwargs']['random_seed'] == 0
    assert options['D_kwargs']['block_kwargs']['freeze_layers'] == 2
    # Weights-only resume uses the official transfer-learning settings.
    assert options['ada_kimg'] == 100 and options['ema_rampup'] is None and options['resume_exact'] is True


def test_presets_alias_and_overrides(tmp_path, data):
    options, _ = _dry_run(tmp_path, data, '--cfg=stylegan', '--cbase=512', '--cmax=32', '--map=3', '--glr=0.001',
                          '--dlr=0.003', '--mbstd-group=2', '--tick=0.5', '--batch-gpu=8', '--fp32=1')
    assert options['run_dir'].endswith('-ds-stylegan2')
    assert options['batch_size'] == 32 and options['batch_gpu'] == 8 and options['loss_kwargs']['r1_gamma'] == 10
    assert options['G_kwargs']['synthesis_kwargs'] == dict(channel_base=512, channel_max=32, num_fp16_res=0, conv_clamp=None)
    assert options['G_kwargs']['mapping_kwargs']['num_layers'] == 3
    assert (options['G_opt_kwargs']['lr'], options['D_opt_kwargs']['lr']) == (0.001, 0.003)
    assert options['D_kwargs']['epilogue_kwargs']['mbstd_group_size'] == 2 and options['kimg_per_tick'] == 0.5
    cifar, _ = _dry_run(tmp_path, data, '--cfg=cifar')
    assert cifar['loss_kwargs'] == dict(class_name='training.loss.StyleGAN2Loss', r1_gamma=0.01, pl_weight=0, style_mixing_prob=0)
    assert cifar['D_kwargs']['architecture'] == 'orig' and cifar['batch_gpu'] == 32


def test_help_documents_the_demo_and_processes():
    result = _invoke(['--help'])
    assert result.exit_code == 0
    assert 'python train.py --outdir=runs' in result.output and 'synthetic' in result.output
    assert 'CPU processes' in result.output and 'torchrun' in result.output

#----------------------------------------------------------------------------
# Bad options give one clear message each.

@pytest.mark.parametrize('args, message', [
    (['--cond=1'], r'--cond=1 needs labels, but .*ds.zip has none in dataset.json'),
    (['--subset=100'], r'--subset=100 is larger than the dataset \(8 images\)'),
    (['--p=0.3'], r'--p can only be given with --aug=fixed \(now --aug=ada\)'),
    (['--aug=fixed'], r'--aug=fixed needs --p'),
    (['--aug=noaug', '--target=0.5'], r'--target can only be given with --aug=ada \(now --aug=noaug\)'),
    (['--aug=noaug', '--augpipe=bgc'], r'--augpipe cannot be given with --aug=noaug'),
    (['--gpus=3', '--batch=32'], r'--batch=32 must be divisible by --gpus=3'),
    (['--gpus=3', '--cfg=stylegan2'], r'--batch=32 must be divisible by --gpus x --batch-gpu = 3 x 4 = 12; use --batch=24 or --batch=36'),
    (['--batch=8', '--batch-gpu=3'], r'1 x 3 = 3; use --batch=6 or --batch=9, or --batch-gpu=2'),
    (['--batch=8', '--mbstd-group=3'], r'--mbstd-group=3 must divide the per-process batch \(batch_gpu=8\); .* --mbstd-group=2'),
    (['--metrics=nonsense'], r'--metrics: unknown metric "nonsense"; valid metrics: none'),
    (['--resume=/nonexistent/net.pkl'], r'--resume: file not found: "/nonexistent/net.pkl"; .*or "latest", or one of ffhq256'),
    (['--resume=latest'], r'--resume=latest: no network-snapshot-\*.pkl in the runs under --outdir='),
])
def test_bad_options_are_explained(tmp_path, data, args, message):
    result = _invoke(['--outdir', str(tmp_path), '--data', data, '--dry-run', *args])
    assert result.exit_code == 1, result.output
    assert re.search(message, result.output), result.output


def test_missing_data_and_bad_choices(tmp_path):
    result = _invoke(['--outdir', str(tmp_path), '--data', str(tmp_path / 'nope.zip'), '--dry-run'])
    assert result.exit_code == 1 and "--data: '" in result.output and 'does not exist' in result.output
    result = _invoke(['--outdir', str(tmp_path), '--cfg=bogus', '--dry-run'])
    assert result.exit_code == 2 and "'bogus' is not one of" in result.output
    result = _invoke(['--outdir', str(tmp_path), '--gpus=0', '--dry-run'])
    assert result.exit_code == 2 and '0 is not in the range x>=1' in result.output


def test_torchrun_process_count_must_match(tmp_path, data, monkeypatch):
    for name, value in dict(RANK='0', WORLD_SIZE='4', LOCAL_RANK='0', MASTER_ADDR='127.0.0.1', MASTER_PORT='29500').items():
        monkeypatch.setenv(name, value)
    assert train._launched_by_torchrun()
    result = _invoke(['--outdir', str(tmp_path), '--data', data, '--gpus=2', '--dry-run'])
    assert result.exit_code == 1 and '--gpus=2, but torchrun started 4 processes; leave --gpus out under torchrun' in result.output

#----------------------------------------------------------------------------
# Resume: latest snapshot, exact vs weights only, option comparison.

def test_find_latest_snapshot_prefers_newest_run_then_kimg(tmp_path):
    for rel in ('00000-a/network-snapshot-000040.pkl', '00001-b/network-snapshot-000000.pkl',
                '00001-b/network-snapshot-000008.pkl', 'notes/network-snapshot-000099.pkl'):
        os.makedirs(os.path.dirname(tmp_path / rel), exist_ok=True)
        (tmp_path / rel).write_bytes(b'')
    assert train.find_latest_snapshot(str(tmp_path)) == str(tmp_path / '00001-b' / 'network-snapshot-000008.pkl')
    assert train.make_run_dir(str(tmp_path), 'x') == str(tmp_path / '00002-x')
    with pytest.raises(click.ClickException, match='no network-snapshot'):
        train.find_latest_snapshot(str(tmp_path / 'empty'))


def test_exact_resume_keeps_options_and_reports_differences(tmp_path, data, any_resume_architecture):
    options, _ = _dry_run(tmp_path, data, '--batch=8')
    state = dict(version=1, cur_nimg=2000, cur_tick=3, num_gpus=1, training_options=dict(options, batch_size=16))
    pkl = _tiny_pickle(tmp_path / 'snap.pkl', resume_state=state)
    os.makedirs(tmp_path / '00000-run')
    os.replace(pkl, tmp_path / '00000-run' / 'network-snapshot-000002.pkl')

    exact, text = _dry_run(tmp_path, data, '--batch=8', '--resume=latest')
    assert 'Exact resume from kimg 2 (tick 3).' in text
    assert 'batch_size: 16 -> 8' in text and 'G_kwargs' not in text.split('Note:')[1].split('Training options')[0]
    assert 'ada_kimg' not in exact and exact['ema_rampup'] == 0.05 and exact['resume_exact'] is True
    assert exact['run_dir'].endswith('-resumelatest')

    weights, text = _dry_run(tmp_path, data, '--batch=8', '--resume=latest', '--resume-exact=0')
    assert 'Exact resume' not in text
    assert weights['ada_kimg'] == 100 and weights['ema_rampup'] is None and weights['resume_exact'] is False

    result = _invoke(['--outdir', str(tmp_path), '--data', data, '--dry-run', '--resume=latest', '--kimg=2'])
    assert result.exit_code == 1 and '--kimg=2: the snapshot is already at kimg 2; raise --kimg to train further' in result.output

#----------------------------------------------------------------------------


def test_exact_resume_of_unchanged_options_reports_no_difference(tmp_path, data, any_resume_architecture):
    # The loop records every training_loop() argument, defaults included (e.g. G_reg_interval);
    # resuming with the same command line must not list those as differences.
    import inspect
    from training import training_loop
    options, _ = _dry_run(tmp_path, data, '--batch=8')
    defaults = {name: p.default for name, p in inspect.signature(training_loop.training_loop).parameters.items()
                if p.default is not inspect.Parameter.empty}
    recorded = training_loop._run_options(dict(defaults, **options))
    assert recorded['G_reg_interval'] == 4 and 'G_reg_interval' not in options
    state = dict(version=1, cur_nimg=2000, cur_tick=3, num_gpus=1, training_options=recorded)
    pkl = _tiny_pickle(tmp_path / 'snap.pkl', resume_state=state)
    os.makedirs(tmp_path / '00000-run')
    os.replace(pkl, tmp_path / '00000-run' / 'network-snapshot-000002.pkl')
    _exact, text = _dry_run(tmp_path, data, '--batch=8', '--resume=latest')
    assert 'Exact resume from kimg 2 (tick 3).' in text and 'Note:' not in text
