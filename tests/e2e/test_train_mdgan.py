"""End-to-end tests of --prior=mdgan on CPU: MDGAN's encoder E, second discriminator D2 and second G step resume exactly and stay identical over two gloo ranks; `train.py --cfg=stylegan --prior=mdgan` trains, snapshots and resumes exactly, and its snapshot works with generate.py and calc_metrics.py."""

import json
import os

import pytest
import torch

import calc_metrics
import dnnlib
import generate
import harness
from priors import cli
from torch_utils import misc
from training import training_loop as training_loop_module

pytestmark = pytest.mark.slow

#----------------------------------------------------------------------------
# The harness's tiny run with augmentation at a fixed p (D2 sees it too);
# D's and D2's lazy R1 every 3 steps.

def _config(data_path, run_dir, num_steps, mode='md', **overrides):
    c = harness.loop_config(data_path, run_dir, num_steps, random_seed=5, augment_kwargs=dict(harness.AUGMENT), augment_p=0.3)
    cli.configure(c, dict(prior=['mdgan'], data=data_path, cfg=None, mdgan_mode=mode))
    c.update(overrides)
    return c

@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp('mdgan_runs')
    data = harness.tiny_dataset(root / 'tiny16.zip', num_images=48, frequencies='uniform')
    return dnnlib.EasyDict(root=root, data=data)

# Every parameter and buffer of G, D, G_ema, E and D2.
def _state(result):
    prior = result.loss.priors[0]
    return harness.tensors(dict(G=result.G, D=result.D, G_ema=result.G_ema, E=prior.E, D2=prior.D2), 'G', 'D', 'G_ema', 'E', 'D2')

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
    last = harness.read_stats(str(md_runs.root / 'full'))[-1]
    for name in ('Prior/mdgan/distance', 'Prior/mdgan/mode', 'Prior/mdgan/E/loss', 'Prior/mdgan/D2/loss', 'Prior/mdgan/D2/scores/real',
                 'Prior/mdgan/D2/scores/fake', 'Prior/mdgan/D2/r1_penalty', 'Prior/mdgan/G2/loss', 'Timing/mdgan_E', 'Timing/mdgan_D2'):
        assert name in last and last[name]['num'] > 0, name

    data = harness.load(md_runs.snapshot, safe=True)
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
    assert harness.differing(full, second) == []
    for name in ('E.b16.conv0.weight', 'D2.b16.conv0.weight', 'G.synthesis.b16.conv1.weight'):
        assert not torch.equal(first[name], full[name]), name  # the second half trained them
    lines_full, lines_second = harness.read_stats(str(md_runs.root / 'full')), harness.read_stats(str(md_runs.root / 'second'))
    for line_full, line_second in zip(lines_full[-len(lines_second):], lines_second):
        names = [n for n in line_second if n.startswith(('Loss/', 'Prior/')) and line_second[n]['num'] > 0]
        assert 'Prior/mdgan/D2/loss' in names and 'Prior/mdgan/E/loss' in names
        for name in names:
            assert line_second[name] == line_full[name], name

#----------------------------------------------------------------------------
# Two gloo processes: E, D2 and the networks end identical on both ranks.

def _ddp_worker(rank, tmp_dir, data_path):
    harness.init_gloo(rank, tmp_dir)
    c = _config(data_path, os.path.join(tmp_dir, 'run'), 4, num_gpus=2, rank=rank, batch_size=8, batch_gpu=2,
                total_kimg=0.024, kimg_per_tick=0.016)
    result = harness.run_loop(c)
    torch.save(_state(result), os.path.join(tmp_dir, f'rank{rank}.pt'))
    torch.distributed.destroy_process_group()

@pytest.mark.ddp
def test_md_with_two_gloo_ranks(tiny, tmp_path):
    harness.spawn_two(_ddp_worker, str(tmp_path), tiny.data)
    rank0, rank1 = harness.load_ranks(tmp_path)
    differing = harness.differing(rank0, rank1)
    assert all(name.endswith('w_avg') for name in differing), differing
    assert any(name.startswith('E.') for name in rank0) and any(name.startswith('D2.') for name in rank0)

#----------------------------------------------------------------------------
# The user's command, shrunk: train.py --cfg=stylegan --prior=mdgan (Reg-GAN)
# for 4 steps, and for 2 + 2 with --resume; then generate.py and a small FID
# (tiny detector) on the snapshot.

def test_train_py_mdgan_stylegan_resume_generate_metrics(tiny, tmp_path, metric_env):
    metric_env(harness.small_fid(16))
    common = ['--data', tiny.data, '--prior=mdgan', '--cfg=stylegan', '--mdgan-lambda1=0.5', *harness.TRAIN_ARGS,
              '--tick=0.008', '--snap=1', '--aug=noaug', '--seed=2']
    full_dir = harness.train(tmp_path / 'full', '--kimg=0.016', *common)
    first_dir = harness.train(tmp_path / 'first', '--kimg=0.008', *common)
    run_dir = harness.train(tmp_path / 'second', '--kimg=0.016', '--resume', harness.snapshot_path(first_dir), *common)

    with open(os.path.join(run_dir, 'training_options.json')) as f:
        options = json.load(f)
    (entry,) = options['loss_kwargs']['prior_kwargs']
    assert entry['name'] == 'mdgan' and entry['mode'] == 'reg' and entry['lambda1'] == 0.5 and entry['lambda2'] == 0.4
    assert 'Prior/mdgan/E/loss' in harness.read_stats(run_dir)[-1]

    # The resumed run ends where the straight one does, E included.
    pkl = harness.snapshot_path(run_dir)
    full, second = harness.load(harness.snapshot_path(full_dir)), harness.load(pkl)
    assert second['resume_state']['cur_nimg'] == full['resume_state']['cur_nimg'] == 16
    assert harness.differing(harness.tensors(full, 'G', 'D', 'G_ema'), harness.tensors(second, 'G', 'D', 'G_ema')) == []
    assert harness.differing(harness.tensors(full['extra_modules'], 'mdgan_E'), harness.tensors(second['extra_modules'], 'mdgan_E')) == []

    # The snapshot generates images and gets a metric like any other.
    harness.invoke_ok(generate.generate_images, ['--network', pkl, '--seeds', '0-1', '--outdir', tmp_path / 'images', '--device', 'cpu'])
    assert sorted(os.listdir(tmp_path / 'images')) == ['seed0000.png', 'seed0001.png']
    harness.invoke_ok(calc_metrics.main, ['--network', pkl, '--metrics', 'fid16', '--device', 'cpu', '--verbose', 'false'])
    (line,) = harness.read_jsonl(os.path.join(run_dir, 'metric-fid16.jsonl'))
    assert line['results']['fid16'] >= 0
