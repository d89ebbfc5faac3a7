"""End-to-end tests of --prior=mdgan on CPU: MDGAN's encoder E, second discriminator D2 and second G step resume exactly and stay identical over two gloo ranks; `train.py --cfg=stylegan --prior=mdgan` trains, snapshots and resumes exactly, and its snapshot works with generate.py and calc_metrics.py."""

import contextlib
import io
import json
import os

import pytest
import torch
from click.testing import CliRunner

import calc_metrics
import dnnlib
import generate
import legacy
import train
from metrics import frechet_inception_distance
from metrics import metric_main
from metrics import metric_utils
from priors import cli
from torch_utils import misc
from torch_utils import training_stats
from training import training_loop as training_loop_module
from training.synthetic import make_synthetic_dataset

pytestmark = pytest.mark.slow

#----------------------------------------------------------------------------
# The config: train.py's shape at 16x16 with tiny networks, batch 4 in 2
# rounds, a tick every 2 steps, a snapshot every 2 ticks, augmentation at a
# fixed p (D2 sees it too), D's and D2's lazy R1 every 3 steps.

STEP_KIMG = 0.004  # one step = 4 images

def _config(data_path, run_dir, num_steps, mode='md', **overrides):
    c = dnnlib.EasyDict(
        run_dir=run_dir, device='cpu', random_seed=5,
        training_set_kwargs=dnnlib.EasyDict(class_name='training.dataset.ImageFolderDataset', path=data_path, use_labels=False,
                                            max_size=None, xflip=False, resolution=16),
        data_loader_kwargs=dnnlib.EasyDict(num_workers=0),
        G_kwargs=dnnlib.EasyDict(class_name='training.networks.Generator', z_dim=8, w_dim=8, mapping_kwargs=dict(num_layers=2),
                                 synthesis_kwargs=dict(channel_base=256, channel_max=16, num_fp16_res=0, conv_clamp=None)),
        D_kwargs=dnnlib.EasyDict(class_name='training.networks.Discriminator', channel_base=256, channel_max=16, num_fp16_res=0,
                                 conv_clamp=None, epilogue_kwargs=dict(mbstd_group_size=2)),
        G_opt_kwargs=dict(class_name='torch.optim.Adam', lr=0.0025, betas=[0, 0.99], eps=1e-8),
        D_opt_kwargs=dict(class_name='torch.optim.Adam', lr=0.0025, betas=[0, 0.99], eps=1e-8),
        loss_kwargs=dnnlib.EasyDict(class_name='training.loss.StyleGAN2Loss', r1_gamma=1),
        augment_kwargs=dnnlib.EasyDict(class_name='training.augment.AugmentPipe', xflip=1, rotate90=1, xint=1), augment_p=0.3,
        G_reg_interval=4, D_reg_interval=3,
        batch_size=4, batch_gpu=2, ema_kimg=0.01, ema_rampup=0.05,
        total_kimg=num_steps * STEP_KIMG, kimg_per_tick=2 * STEP_KIMG,
        image_snapshot_ticks=None, network_snapshot_ticks=2,
    )
    cli.configure(c, dict(prior=['mdgan'], data=data_path, cfg=None, mdgan_mode=mode))
    c.update(overrides)
    os.makedirs(run_dir, exist_ok=True)
    return c

@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp('mdgan_runs')
    data = make_synthetic_dataset(str(root / 'tiny16.zip'), num_images=48, resolution=16, num_modes=4, frequencies='uniform')
    return dnnlib.EasyDict(root=root, data=data)

def _read_stats(run_dir):
    with open(os.path.join(run_dir, 'stats.jsonl')) as f:
        return [json.loads(line) for line in f]

# Every parameter and buffer of G, D, G_ema, E and D2.
def _state(result):
    prior = result.loss.priors[0]
    nets = dict(G=result.G, D=result.D, G_ema=result.G_ema, E=prior.E, D2=prior.D2)
    return {f'{key}.{name}': tensor.detach().clone() for key, net in nets.items() for name, tensor in misc.named_params_and_buffers(net)}

#----------------------------------------------------------------------------
# MDGAN: 6 steps straight, and 5 + 1 with an exact resume at a tick boundary
# (D2's lazy R1, every 3 steps, falls at steps 0 and 3 of the first part and not
# at step 5, so a counter that restarted at the resume would show).

@pytest.fixture(scope='module')
def md_runs(tiny):
    root = tiny.root
    full = training_loop_module.training_loop(**_config(tiny.data, str(root / 'full'), 6))
    first = training_loop_module.training_loop(**_config(tiny.data, str(root / 'first'), 5))
    snapshot = str(root / 'first' / 'network-snapshot-000000.pkl')
    second = training_loop_module.training_loop(**_config(tiny.data, str(root / 'second'), 6, resume_pkl=snapshot))
    return dnnlib.EasyDict(root=root, full=full, first=first, second=second, snapshot=snapshot)


def test_md_run_reports_every_step_and_snapshots_E_and_D2(md_runs):
    last = _read_stats(str(md_runs.root / 'full'))[-1]
    for name in ('Prior/mdgan/distance', 'Prior/mdgan/mode', 'Prior/mdgan/E/loss', 'Prior/mdgan/D2/loss', 'Prior/mdgan/D2/scores/real',
                 'Prior/mdgan/D2/scores/fake', 'Prior/mdgan/D2/r1_penalty', 'Prior/mdgan/G2/loss', 'Timing/mdgan_E', 'Timing/mdgan_D2'):
        assert name in last and last[name]['num'] > 0, name

    with open(md_runs.snapshot, 'rb') as f:
        data = legacy.load_network_pkl(f, safe=True)
    E, D2 = data['extra_modules']['mdgan_E'], data['extra_modules']['mdgan_D2']
    prior = md_runs.first.loss.priors[0]
    for saved, live in ((E, prior.E), (D2, prior.D2)):
        assert type(saved).__name__ == 'Discriminator'
        assert all(torch.equal(a, b) for a, b in zip(misc.params_and_buffers(saved), misc.params_and_buffers(live)))
    assert E.init_kwargs.out_dim == 8 and D2.init_kwargs == data['D'].init_kwargs
    optimizers = data['resume_state']['optimizers']
    assert {'G', 'D', 'mdgan_E', 'mdgan_D2'} <= set(optimizers)


def test_md_resume_is_exact(md_runs):
    full, second, first = _state(md_runs.full), _state(md_runs.second), _state(md_runs.first)
    assert [name for name in full if not torch.equal(full[name], second[name])] == []
    for name in ('E.b16.conv0.weight', 'D2.b16.conv0.weight', 'G.synthesis.b16.conv1.weight'):
        assert not torch.equal(first[name], full[name]), name  # the second half trained them
    lines_full, lines_second = _read_stats(str(md_runs.root / 'full')), _read_stats(str(md_runs.root / 'second'))
    for line_full, line_second in zip(lines_full[-len(lines_second):], lines_second):
        names = [n for n in line_second if n.startswith(('Loss/', 'Prior/')) and line_second[n]['num'] > 0]
        assert 'Prior/mdgan/D2/loss' in names and 'Prior/mdgan/E/loss' in names
        for name in names:
            assert line_second[name] == line_full[name], name

#----------------------------------------------------------------------------
# Two gloo processes: E, D2 and the networks end identical on both ranks.

def _ddp_worker(rank, tmp_dir, data_path):
    torch.set_num_threads(1)
    torch.distributed.init_process_group('gloo', init_method='file://' + os.path.join(tmp_dir, 'init'), rank=rank, world_size=2)
    training_stats.init_multiprocessing(rank=rank, sync_device=torch.device('cpu'))
    c = _config(data_path, os.path.join(tmp_dir, 'run'), 4, num_gpus=2, rank=rank, batch_size=8, batch_gpu=2,
                total_kimg=0.024, kimg_per_tick=0.016)
    with contextlib.redirect_stdout(io.StringIO()):
        result = training_loop_module.training_loop(**c)
    torch.save(_state(result), os.path.join(tmp_dir, f'rank{rank}.pt'))
    torch.distributed.destroy_process_group()

@pytest.mark.ddp
def test_md_with_two_gloo_ranks(tiny, tmp_path):
    torch.multiprocessing.spawn(_ddp_worker, args=(str(tmp_path), tiny.data), nprocs=2, start_method='spawn')
    rank0, rank1 = (torch.load(os.path.join(tmp_path, f'rank{r}.pt')) for r in (0, 1))
    differing = [name for name in rank0 if not torch.equal(rank0[name], rank1[name])]
    assert all(name.endswith('w_avg') for name in differing), differing
    assert any(name.startswith('E.') for name in rank0) and any(name.startswith('D2.') for name in rank0)

#----------------------------------------------------------------------------
# The user's command, shrunk: train.py --cfg=stylegan --prior=mdgan (Reg-GAN)
# for 4 steps, and for 2 + 2 with --resume; then generate.py and a small FID
# (tiny detector) on the snapshot.

def fid16(opts):
    return dict(fid16=frechet_inception_distance.compute_fid(opts, max_real=None, num_gen=16))

@pytest.fixture
def env(tmp_path, monkeypatch):
    detector = str(tmp_path / 'tiny-detector.pt')
    metric_utils.build_random_detector(detector, num_features=12)
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path / 'cache'))
    monkeypatch.setattr(dnnlib.util, '_dnnlib_cache_dir', None)
    monkeypatch.setenv('SG2ADA_DETECTOR_INCEPTION_2015_12_05', detector)
    monkeypatch.setattr(metric_main, '_metric_dict', dict(metric_main._metric_dict))
    metric_main.register_metric(fid16)
    metric_utils.reset_detector_cache()
    yield tmp_path
    metric_utils.reset_detector_cache()

def _train(args):
    result = CliRunner().invoke(train.main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result

def _only_run(outdir):
    (name,) = os.listdir(outdir)
    return os.path.join(outdir, name)

def _load(path):
    with open(path, 'rb') as f:
        return legacy.load_network_pkl(f)


def test_train_py_mdgan_stylegan_resume_generate_metrics(tiny, env):
    common = ['--data', tiny.data, '--prior=mdgan', '--cfg=stylegan', '--mdgan-lambda1=0.5', '--cbase=256', '--cmax=16', '--map=2',
              '--batch=4', '--mbstd-group=2', '--tick=0.008', '--snap=1', '--workers=1', '--aug=noaug', '--seed=2']
    _train(['--outdir', str(env / 'full'), '--kimg=0.016', *common])
    _train(['--outdir', str(env / 'first'), '--kimg=0.008', *common])
    first_pkl = os.path.join(_only_run(str(env / 'first')), 'network-snapshot-000000.pkl')
    _train(['--outdir', str(env / 'second'), '--kimg=0.016', '--resume', first_pkl, *common])

    run_dir = _only_run(str(env / 'second'))
    with open(os.path.join(run_dir, 'training_options.json')) as f:
        options = json.load(f)
    (entry,) = options['loss_kwargs']['prior_kwargs']
    assert entry['name'] == 'mdgan' and entry['mode'] == 'reg' and entry['lambda1'] == 0.5 and entry['lambda2'] == 0.4
    assert 'Prior/mdgan/E/loss' in _read_stats(run_dir)[-1]

    # The resumed run ends where the straight one does, E included.
    pkl = os.path.join(run_dir, 'network-snapshot-000000.pkl')
    full, second = _load(os.path.join(_only_run(str(env / 'full')), 'network-snapshot-000000.pkl')), _load(pkl)
    assert second['resume_state']['cur_nimg'] == full['resume_state']['cur_nimg'] == 16
    for key in ('G', 'D', 'G_ema'):
        for a, b in zip(misc.params_and_buffers(full[key]), misc.params_and_buffers(second[key])):
            assert torch.equal(a, b), key
    E_full, E_second = full['extra_modules']['mdgan_E'], second['extra_modules']['mdgan_E']
    assert all(torch.equal(a, b) for a, b in zip(misc.params_and_buffers(E_full), misc.params_and_buffers(E_second)))

    # The snapshot generates images and gets a metric like any other.
    result = CliRunner().invoke(generate.generate_images, ['--network', pkl, '--seeds', '0-1', '--outdir', str(env / 'images'), '--device', 'cpu'],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(env / 'images')) == ['seed0000.png', 'seed0001.png']
    result = CliRunner().invoke(calc_metrics.main, ['--network', pkl, '--metrics', 'fid16', '--device', 'cpu', '--verbose', 'false'],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    with open(os.path.join(run_dir, 'metric-fid16.jsonl')) as f:
        (line,) = [json.loads(text) for text in f]
    assert line['results']['fid16'] >= 0
