"""End-to-end tests of train.py and the training loop on CPU: the official run folder, snapshots, demo data, official resume."""

import inspect
import json
import os

import numpy as np
import PIL.Image
import pytest
import torch
from click.testing import CliRunner

import generate
import legacy
import train
from torch_utils import misc
from training import training_loop as training_loop_module
from training.synthetic import make_synthetic_dataset

pytestmark = pytest.mark.slow

#----------------------------------------------------------------------------

@pytest.fixture(scope='module')
def labelled_data(tmp_path_factory):
    return make_synthetic_dataset(str(tmp_path_factory.mktemp('data') / 'tiny16.zip'), num_images=16, resolution=16, num_modes=4, cond=True)


@pytest.fixture(scope='module')
def cli_run(labelled_data, tmp_path_factory):
    outdir = str(tmp_path_factory.mktemp('runs'))
    args = ['--outdir', outdir, '--data', labelled_data, '--cond=1', '--mirror=1', '--cbase=256', '--cmax=16', '--map=2',
            '--batch=4', '--batch-gpu=2', '--mbstd-group=2', '--kimg=0.012', '--tick=0.004', '--snap=1', '--workers=1',
            '--aug=ada', '--augpipe=bgc', '--seed=1']
    result = CliRunner().invoke(train.main, args, catch_exceptions=False)
    return outdir, result

#----------------------------------------------------------------------------

def test_cli_run_writes_the_official_run_folder(cli_run):
    outdir, result = cli_run
    assert result.exit_code == 0, result.output
    assert os.listdir(outdir) == ['00000-tiny16-cond-mirror-auto1-kimg0.012-batch4-ada-bgc']
    run_dir = os.path.join(outdir, os.listdir(outdir)[0])
    assert sorted(os.listdir(run_dir)) == ['fakes000000.png', 'fakes_init.png', 'log.txt', 'network-snapshot-000000.pkl',
                                           'reals.png', 'stats.jsonl', 'training_options.json']

    # training_options.json: official key order, and it is a valid set of training_loop() arguments.
    with open(os.path.join(run_dir, 'training_options.json')) as f:
        options = json.load(f)
    keys = list(options)
    assert keys[:6] == ['num_gpus', 'image_snapshot_ticks', 'network_snapshot_ticks', 'metrics', 'random_seed', 'training_set_kwargs']
    assert keys[-1] == 'run_dir' and options['run_dir'] == run_dir
    inspect.signature(training_loop_module.training_loop).bind(**options)
    assert options['training_set_kwargs']['use_labels'] is True and options['training_set_kwargs']['xflip'] is True

    # Logs: one stats line per tick, the log starts where the official one does.
    with open(os.path.join(run_dir, 'log.txt')) as f:
        log = f.read()
    assert log.startswith('Loading training set...')
    assert 'tick 0 ' in log and 'Exiting...' in log
    with open(os.path.join(run_dir, 'stats.jsonl')) as f:
        stats = [json.loads(line) for line in f]
    assert len(stats) == 3  # ticks after steps 1, 2 and 3
    assert {'Loss/G/loss', 'Loss/D/loss', 'Loss/r1_penalty', 'Loss/pl_penalty', 'Progress/augment', 'Timing/Gmain'} <= set(stats[0])
    assert set(stats[0]['Loss/G/loss']) == {'num', 'mean', 'std'} and 'timestamp' in stats[0]

    # Image grids: 32 x 32 images of 16 x 16 pixels.
    for name in ('reals.png', 'fakes_init.png', 'fakes000000.png'):
        with PIL.Image.open(os.path.join(run_dir, name)) as image:
            assert image.size == (512, 512) and image.mode == 'RGB'


def test_cli_snapshot_loads_and_generates(cli_run, tmp_path):
    outdir, result = cli_run
    assert result.exit_code == 0, result.output
    run_dir = os.path.join(outdir, os.listdir(outdir)[0])
    pkl = os.path.join(run_dir, 'network-snapshot-000000.pkl')
    with open(pkl, 'rb') as f:
        data = legacy.load_network_pkl(f)
    assert list(data) == ['training_set_kwargs', 'G', 'D', 'G_ema', 'augment_pipe', 'resume_state']
    assert data['training_set_kwargs']['path'].endswith('tiny16.zip')
    assert data['resume_state']['cur_nimg'] == 12 and data['resume_state']['ada'] is not None
    G = data['G_ema']
    assert (G.z_dim, G.c_dim, G.img_resolution) == (512, 4, 16)
    with torch.no_grad():
        img = G(torch.randn([2, G.z_dim]), torch.eye(4)[:2], noise_mode='const')
    assert img.shape == (2, 3, 16, 16) and torch.isfinite(img).all()

    # generate.py accepts the snapshot.
    out = CliRunner().invoke(generate.generate_images, ['--network', pkl, '--seeds', '0-1', '--class', '1', '--outdir',
                                                        str(tmp_path), '--device', 'cpu'], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert sorted(os.listdir(tmp_path)) == ['seed0000.png', 'seed0001.png']

#----------------------------------------------------------------------------

def test_demo_dry_run_builds_the_synthetic_dataset(tmp_path, monkeypatch):
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path / 'cache'))
    result = CliRunner().invoke(train.main, ['--outdir', str(tmp_path / 'runs'), '--dry-run'], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert 'Dry run; exiting.' in result.output
    assert '-demo' in result.output and 'Image resolution:   32' in result.output
    datasets = os.listdir(tmp_path / 'cache' / 'datasets')
    assert len(datasets) == 1 and datasets[0].endswith('.zip')
    assert not os.path.exists(tmp_path / 'runs')  # a dry run creates nothing

#----------------------------------------------------------------------------
# Weights-only resume from the official fixture pickle (32x32, z = w = 64).

def test_resume_from_official_pickle_trains_a_tick(fixtures_dir, tmp_path, capsys):
    pkl = os.path.join(fixtures_dir, 'official-tiny.pkl')
    with open(pkl, 'rb') as f:
        official = legacy.load_network_pkl(f)
    data = make_synthetic_dataset(str(tmp_path / 'data32.zip'), num_images=8, resolution=32, num_modes=2)
    run_dir = str(tmp_path / 'run')
    os.makedirs(run_dir)
    G_kwargs = dict(official['G'].init_kwargs, class_name='training.networks.Generator')
    D_kwargs = dict(official['D'].init_kwargs, class_name='training.networks.Discriminator')
    for kwargs in (G_kwargs, D_kwargs):
        for key in ('c_dim', 'img_resolution', 'img_channels'):
            kwargs.pop(key)
    result = training_loop_module.training_loop(
        run_dir=run_dir, device='cpu', resume_pkl=pkl,
        training_set_kwargs=dict(class_name='training.dataset.ImageFolderDataset', path=data, resolution=32),
        G_kwargs=G_kwargs, D_kwargs=D_kwargs,
        G_opt_kwargs=dict(class_name='torch.optim.Adam', lr=1e-9, betas=[0, 0.99], eps=1e-8),
        D_opt_kwargs=dict(class_name='torch.optim.Adam', lr=1e-9, betas=[0, 0.99], eps=1e-8),
        loss_kwargs=dict(class_name='training.loss.StyleGAN2Loss', r1_gamma=1),
        batch_size=4, batch_gpu=4, total_kimg=0.008, kimg_per_tick=0.004, ema_kimg=1e9,
        image_snapshot_ticks=None, network_snapshot_ticks=None)
    assert 'Loading weights only (the pickle has no resume_state)' in capsys.readouterr().out
    assert result.cur_nimg == 8
    # A negligible learning rate: the trained networks still hold the official weights.
    for name in ('G', 'D', 'G_ema'):
        trained = dict(misc.named_params_and_buffers(result[name]))
        for key, value in misc.named_params_and_buffers(official[name]):
            if not key.endswith('w_avg'):
                np.testing.assert_allclose(trained[key].numpy(), value.numpy(), atol=1e-6, err_msg=f'{name}.{key}')

#----------------------------------------------------------------------------
# Helpers of the training loop.

def test_ema_beta_halves_every_ema_kimg():
    beta = training_loop_module.ema_beta(batch_size=32, ema_kimg=10, ema_rampup=None, cur_nimg=0)
    assert beta ** (10_000 / 32) == pytest.approx(0.5)
    # The ramp-up caps the half-life at cur_nimg * ema_rampup; at the start G_ema just copies G.
    assert training_loop_module.ema_beta(32, 10, 0.05, cur_nimg=0) == 0
    assert training_loop_module.ema_beta(32, 10, 0.05, cur_nimg=64_000) ** (3200 / 32) == pytest.approx(0.5)


def test_snapshot_grid_rows_share_one_label(labelled_data):
    training_set = training_loop_module.dnnlib.util.construct_class_by_name(
        class_name='training.dataset.ImageFolderDataset', path=labelled_data, use_labels=True)
    (gw, gh), images, labels = training_loop_module.setup_snapshot_image_grid(training_set, random_seed=0)
    assert (gw, gh) == (32, 32) and images.shape == (1024, 3, 16, 16) and images.dtype == np.uint8
    rows = labels.reshape(gh, gw, -1)
    assert all((row == row[0]).all() for row in rows)  # one label per row
    distinct = {tuple(training_set.get_label(i)) for i in range(len(training_set))}
    assert len(distinct) >= 2
    assert {tuple(row[0]) for row in rows[:len(distinct)]} == distinct  # rows cycle through the labels
    assert (rows[len(distinct)][0] == rows[0][0]).all()


def test_save_image_grid_layout(tmp_path):
    img = torch.zeros([6, 3, 2, 2])
    img[4] = 1  # second row, second column is white
    training_loop_module.save_image_grid(img, str(tmp_path / 'g.png'), drange=[-1, 1], grid_size=(3, 2))
    with PIL.Image.open(tmp_path / 'g.png') as image:
        pixels = np.asarray(image)
    assert pixels.shape == (4, 6, 3)
    assert (pixels[2:, 2:4] == 255).all() and (pixels[:2] == 128).all()


def test_interrupted_snapshot_leaves_no_file(tmp_path, monkeypatch):
    G = torch.nn.Linear(2, 2)

    def failing_dump(obj, f):
        f.write(b'partial')
        raise KeyboardInterrupt  # as if the process were stopped mid-write
    monkeypatch.setattr(training_loop_module.pickle, 'dump', failing_dump)
    with pytest.raises(KeyboardInterrupt):
        training_loop_module._save_network_snapshot(str(tmp_path), 4000, {}, dict(G=G), None, num_gpus=1, rank=0)
    assert os.listdir(tmp_path) == []

#----------------------------------------------------------------------------
