"""The masked prior over two gloo processes: the pre-sample and its scores are all-gathered, so both ranks select from one
pmf over the whole batch's pool (the paper's percentile over n = presample x batch), not from their own halves."""

import os

import pytest
import torch

import dnnlib
import harness

#----------------------------------------------------------------------------
# Toy "G" of test_masked.py: the image of z is z itself; rank 0's D scores its images far higher than rank 1's
# (a local-only selection would still keep rank 1's own best latents; the global one keeps rank 0's only).

_Mapping, _Synthesis = harness.IdentityMapping, harness.PointSynthesis  # z -> the 1x1 image z

def _worker(rank, tmp_dir):
    torch.set_num_threads(1)
    from priors.masked import prior as masked  # pylint: disable=import-outside-toplevel
    torch.distributed.init_process_group('gloo', init_method='file://' + os.path.join(tmp_dir, 'init'), rank=rank, world_size=2)
    offset = 100.0 if rank == 0 else -100.0
    score = lambda img, c: img[:, :1, 0, 0] + offset
    prior = masked.MaskedPrior(mode='masked', rate=0.5, presample=2.0)
    ctx = dnnlib.EasyDict(device=torch.device('cpu'), G_mapping=_Mapping(), G_synthesis=_Synthesis(), score=score, random_seed=3,
                          rank=rank, num_gpus=2, batch_size=8, batch_gpu=2)
    prior.setup(ctx)
    c = torch.zeros([2, 0])
    picks = torch.cat([prior.transform_latents(torch.zeros([2, 3]), c, step='Dgen', role='main', batch=None)[0] for _ in range(2)])
    z_pool, _, pmf = prior._pool['Dgen']
    torch.save(dict(picks=picks, z_pool=z_pool, pmf=pmf), os.path.join(tmp_dir, f'rank{rank}.pt'))
    torch.distributed.destroy_process_group()

@pytest.mark.ddp
def test_two_ranks_select_from_one_gathered_pool(tmp_path):
    torch.multiprocessing.spawn(_worker, args=(str(tmp_path),), nprocs=2, start_method='spawn')
    r0, r1 = (torch.load(os.path.join(tmp_path, f'rank{r}.pt')) for r in (0, 1))
    assert r0['z_pool'].shape == (16, 3)  # ceil(2 x 8 / 2) = 8 per rank, gathered
    assert torch.equal(r0['z_pool'], r1['z_pool']) and torch.equal(r0['pmf'], r1['pmf'])
    # k = round(0.5 x 16) = 8: exactly rank 0's eight latents (every one scores above rank 1's), each 1/8.
    assert torch.equal(r0['pmf'], torch.cat([torch.full([8], 1 / 8, dtype=torch.float64), torch.zeros([8], dtype=torch.float64)]))
    rank0_rows = {tuple(row) for row in r0['z_pool'][:8].tolist()}
    for result in (r0, r1):
        assert result['picks'].shape == (4, 3)
        assert all(tuple(row) in rank0_rows for row in result['picks'].tolist())
    assert not torch.equal(r0['picks'], r1['picks'])  # each rank draws its picks from its own stream

#----------------------------------------------------------------------------
