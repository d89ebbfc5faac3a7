"""Multi-process training on CPU (gloo): parameters stay identical across ranks; train.py --gpus=2 runs end to end."""

import os
import subprocess
import sys

import pytest
import torch

import harness
from torch_utils import misc
from training import training_loop as training_loop_module

pytestmark = [pytest.mark.slow, pytest.mark.ddp]

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#----------------------------------------------------------------------------

@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory):
    return harness.tiny_dataset(tmp_path_factory.mktemp('data') / 'tiny16.zip', num_images=16)

# One rank of a 2-process run (the harness's tiny run, batch 8 over 2 ranks, ADA every step); saves what the test
# compares to <tmp_dir>/rank<r>.pt.
def _ddp_worker(rank, tmp_dir, data_path):
    harness.init_gloo(rank, tmp_dir)
    c = harness.loop_config(data_path, os.path.join(tmp_dir, 'run'), 0, total_kimg=0.024, num_gpus=2, rank=rank, random_seed=5,
                            augment_kwargs=dict(harness.AUGMENT), ada_target=0.6, ada_interval=1, ada_kimg=1,
                            G_reg_interval=2, D_reg_interval=2, batch_size=8, batch_gpu=2, ema_rampup=None,
                            kimg_per_tick=0.008, network_snapshot_ticks=10)
    result = harness.run_loop(c)
    state = harness.tensors(result, 'G', 'D', 'G_ema', 'augment_pipe')
    torch.save(dict(state=state, pl_mean=result.loss.pl_mean.clone(), cur_nimg=result.cur_nimg), os.path.join(tmp_dir, f'rank{rank}.pt'))
    torch.distributed.destroy_process_group()

#----------------------------------------------------------------------------

def test_two_gloo_ranks_keep_identical_parameters(tiny_data, tmp_path):
    harness.spawn_two(_ddp_worker, str(tmp_path), tiny_data)
    rank0, rank1 = harness.load_ranks(tmp_path)
    assert rank0['cur_nimg'] == rank1['cur_nimg'] == 24
    differing = harness.differing(rank0['state'], rank1['state'])
    # Only w_avg may differ: each rank tracks it on its own latents, as in the official code.
    assert all(name.endswith('w_avg') for name in differing), differing
    # The ranks trained on different data (their path-length means differ) yet stayed in sync.
    assert not torch.equal(rank0['pl_mean'], rank1['pl_mean'])

    # The final snapshot holds one resume entry per rank.
    state = harness.load(os.path.join(tmp_path, 'run', 'network-snapshot-000000.pkl'))['resume_state']
    assert state['num_gpus'] == 2 and len(state['ranks']) == 2
    assert not torch.equal(state['ranks'][0]['rng']['torch'], state['ranks'][1]['rng']['torch'])


@pytest.mark.parametrize('launcher', ['spawn', 'torchrun'])
def test_train_cli_with_two_cpu_processes(tiny_data, tmp_path, launcher):
    outdir = str(tmp_path / 'runs')
    args = [os.path.join(REPO_ROOT, 'train.py'), f'--outdir={outdir}', f'--data={tiny_data}', *harness.TRAIN_ARGS,
            '--kimg=0.008', '--tick=0.004', '--snap=10', '--aug=noaug']
    if launcher == 'spawn':
        cmd = [sys.executable, *args, '--gpus=2']
    else:
        cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', *args]
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1')
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert 'Number of GPUs:     2 (CPU processes)' in proc.stdout
    state = harness.load(harness.snapshot_path(harness.newest_run(outdir)))['resume_state']  # written after check_ddp_consistency passed
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
    harness.init_gloo(rank, tmp_dir, stats=False)
    samples = [2 * rank, 2 * rank + 1, 2 * rank + 4, 2 * rank + 5]
    torch.save(_one_step(2, rank, samples), os.path.join(tmp_dir, f'step{rank}.pt'))
    torch.distributed.destroy_process_group()


def test_two_ranks_equal_one_rank_with_the_same_global_batch(tmp_path):
    harness.spawn_two(_same_batch_worker, str(tmp_path))
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
