"""Multi-process training on CPU (gloo): parameters stay identical across ranks; train.py --gpus=2 runs end to end."""

import contextlib
import io
import os
import subprocess
import sys

import pytest
import torch

import legacy
from torch_utils import misc
from torch_utils import training_stats
from training import training_loop as training_loop_module
from training.synthetic import make_synthetic_dataset

pytestmark = [pytest.mark.slow, pytest.mark.ddp]

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#----------------------------------------------------------------------------

@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory):
    return make_synthetic_dataset(str(tmp_path_factory.mktemp('data') / 'tiny16.zip'), num_images=16, resolution=16, num_modes=4)

# One rank of a 2-process run; saves what the test compares to <tmp_dir>/rank<r>.pt.
def _ddp_worker(rank, tmp_dir, data_path):
    torch.set_num_threads(1)
    torch.distributed.init_process_group('gloo', init_method='file://' + os.path.join(tmp_dir, 'init'), rank=rank, world_size=2)
    training_stats.init_multiprocessing(rank=rank, sync_device=torch.device('cpu'))
    run_dir = os.path.join(tmp_dir, 'run')
    os.makedirs(run_dir, exist_ok=True)
    with contextlib.redirect_stdout(io.StringIO()):
        result = training_loop_module.training_loop(
            run_dir=run_dir, device='cpu', num_gpus=2, rank=rank, random_seed=5,
            training_set_kwargs=dict(class_name='training.dataset.ImageFolderDataset', path=data_path, resolution=16),
            G_kwargs=dict(class_name='training.networks.Generator', z_dim=8, w_dim=8, mapping_kwargs=dict(num_layers=2),
                          synthesis_kwargs=dict(channel_base=256, channel_max=16, num_fp16_res=0, conv_clamp=None)),
            D_kwargs=dict(class_name='training.networks.Discriminator', channel_base=256, channel_max=16, num_fp16_res=0,
                          conv_clamp=None, epilogue_kwargs=dict(mbstd_group_size=2)),
            G_opt_kwargs=dict(class_name='torch.optim.Adam', lr=0.0025, betas=[0, 0.99], eps=1e-8),
            D_opt_kwargs=dict(class_name='torch.optim.Adam', lr=0.0025, betas=[0, 0.99], eps=1e-8),
            loss_kwargs=dict(class_name='training.loss.StyleGAN2Loss', r1_gamma=1),
            augment_kwargs=dict(class_name='training.augment.AugmentPipe', xflip=1, rotate90=1, xint=1),
            ada_target=0.6, ada_interval=1, ada_kimg=1,
            G_reg_interval=2, D_reg_interval=2, batch_size=8, batch_gpu=2, ema_kimg=0.01,
            total_kimg=0.024, kimg_per_tick=0.008, image_snapshot_ticks=None, network_snapshot_ticks=10)
    state = {f'{key}.{name}': t.detach().clone() for key in ('G', 'D', 'G_ema', 'augment_pipe')
             for name, t in misc.named_params_and_buffers(result[key])}
    torch.save(dict(state=state, pl_mean=result.loss.pl_mean.clone(), cur_nimg=result.cur_nimg), os.path.join(tmp_dir, f'rank{rank}.pt'))
    torch.distributed.destroy_process_group()

#----------------------------------------------------------------------------

def test_two_gloo_ranks_keep_identical_parameters(tiny_data, tmp_path):
    torch.multiprocessing.spawn(_ddp_worker, args=(str(tmp_path), tiny_data), nprocs=2, start_method='spawn')
    rank0, rank1 = (torch.load(os.path.join(tmp_path, f'rank{r}.pt')) for r in (0, 1))
    assert rank0['cur_nimg'] == rank1['cur_nimg'] == 24
    assert rank0['state'].keys() == rank1['state'].keys()
    differing = [name for name in rank0['state'] if not torch.equal(rank0['state'][name], rank1['state'][name])]
    # Only w_avg may differ: each rank tracks it on its own latents, as in the official code.
    assert all(name.endswith('w_avg') for name in differing), differing
    # The ranks trained on different data (their path-length means differ) yet stayed in sync.
    assert not torch.equal(rank0['pl_mean'], rank1['pl_mean'])

    # The final snapshot holds one resume entry per rank.
    with open(os.path.join(tmp_path, 'run', 'network-snapshot-000000.pkl'), 'rb') as f:
        state = legacy.load_network_pkl(f)['resume_state']
    assert state['num_gpus'] == 2 and len(state['ranks']) == 2
    assert not torch.equal(state['ranks'][0]['rng']['torch'], state['ranks'][1]['rng']['torch'])


@pytest.mark.parametrize('launcher', ['spawn', 'torchrun'])
def test_train_cli_with_two_cpu_processes(tiny_data, tmp_path, launcher):
    outdir = str(tmp_path / 'runs')
    args = [os.path.join(REPO_ROOT, 'train.py'), f'--outdir={outdir}', f'--data={tiny_data}', '--cbase=256', '--cmax=16',
            '--map=2', '--batch=4', '--mbstd-group=2', '--kimg=0.008', '--tick=0.004', '--snap=10', '--workers=1', '--aug=noaug']
    if launcher == 'spawn':
        cmd = [sys.executable, *args, '--gpus=2']
    else:
        cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', *args]
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1')
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert 'Number of GPUs:     2 (CPU processes)' in proc.stdout
    run_dir = os.path.join(outdir, os.listdir(outdir)[0])
    with open(os.path.join(run_dir, 'network-snapshot-000000.pkl'), 'rb') as f:
        state = legacy.load_network_pkl(f)['resume_state']  # written after check_ddp_consistency passed
    assert state['num_gpus'] == 2 and state['cur_nimg'] == 8

#----------------------------------------------------------------------------
# Two ranks must train exactly like one rank with the same global batch:
# the gradients are averaged across ranks, not summed (issue 15: removing
# `flat /= num_gpus` left the tests above green, since they only check that the
# ranks agree). One Dboth and one Gboth phase on fixed data and latents, with
# SGD so that the gradient scale shows in the weights, and no source of
# randomness (no noise inputs, style mixing, augmentation or regularisation).
# The minibatch-std groups line up: rank r holds samples {2r, 2r+1, 2r+4, 2r+5}.

def _one_step(num_gpus, rank, samples, train=True):
    from training import networks
    from training.loss import StyleGAN2Loss
    torch.manual_seed(0)
    G = networks.Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, mapping_kwargs=dict(num_layers=2),
                           synthesis_kwargs=dict(channel_base=256, channel_max=16, use_noise=False)).train().requires_grad_(False)
    D = networks.Discriminator(c_dim=0, img_resolution=16, img_channels=3, channel_base=256, channel_max=16,
                               epilogue_kwargs=dict(mbstd_group_size=2)).train().requires_grad_(False)
    device = torch.device('cpu')
    loss = StyleGAN2Loss(device=device, G_mapping=G.mapping, G_synthesis=G.synthesis, D=D, style_mixing_prob=0, r1_gamma=0, pl_weight=0)
    sgd = dict(class_name='torch.optim.SGD', lr=0.5)
    phases = training_loop_module._setup_phases(G, D, sgd, sgd, None, None, device)
    gen = torch.Generator().manual_seed(1)
    real_img = torch.randn([8, 3, 16, 16], generator=gen)[samples]
    gen_z = torch.randn([8, 8], generator=gen)[samples]
    c = torch.zeros([len(samples), 0])
    for phase in (phases if train else []):
        training_loop_module._run_phase(phase, loss, [real_img], [c], [gen_z], [c], num_gpus)
    return {f'{key}.{name}': t.detach().clone() for key, module in (('G', G), ('D', D)) for name, t in misc.named_params_and_buffers(module)
            if not name.endswith('w_avg')}

def _same_batch_worker(rank, tmp_dir):
    torch.set_num_threads(1)
    torch.distributed.init_process_group('gloo', init_method='file://' + os.path.join(tmp_dir, 'init'), rank=rank, world_size=2)
    samples = [2 * rank, 2 * rank + 1, 2 * rank + 4, 2 * rank + 5]
    torch.save(_one_step(2, rank, samples), os.path.join(tmp_dir, f'step{rank}.pt'))
    torch.distributed.destroy_process_group()


def test_two_ranks_equal_one_rank_with_the_same_global_batch(tmp_path):
    torch.multiprocessing.spawn(_same_batch_worker, args=(str(tmp_path),), nprocs=2, start_method='spawn')
    one = _one_step(1, 0, list(range(8)))
    start = _one_step(1, 0, list(range(8)), train=False)
    moved = [name for name in one if not torch.allclose(one[name], start[name], rtol=1e-3, atol=1e-5)]
    assert len(moved) > len(one) // 2  # the step is not vacuous: most tensors of G and D moved
    for rank in (0, 1):
        two = torch.load(os.path.join(tmp_path, f'step{rank}.pt'))
        assert two.keys() == one.keys()
        for name in one:
            torch.testing.assert_close(two[name], one[name], rtol=1e-4, atol=1e-6, msg=lambda m, name=name: f'{name}: {m}')

#----------------------------------------------------------------------------
