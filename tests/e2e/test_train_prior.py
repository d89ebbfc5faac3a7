"""End-to-end tests of training with priors on CPU: a tiny --prior=gmm run (tiny extractor) reports the prior statistics and stores the prior state in its snapshots, resumes exactly, and --prior=none is bit-identical to the baseline."""

import os

import numpy as np
import pytest
import torch

import dnnlib
import harness
from harness import STEP_KIMG
from priors import cli
from priors.gmm.prior import GMMPrior, per_image_weights, prior_state_from_snapshot
from priors.gmm.prior_file import PriorFile
from training import training_loop as training_loop_module

pytestmark = pytest.mark.slow

#----------------------------------------------------------------------------
# The harness's tiny run; the gmm prior uses the tiny extractor and 4
# components, and re-estimates f^g every 2 steps from 16 generated images.

def _config(data_path, run_dir, num_steps, prior=None, **overrides):
    c = harness.loop_config(data_path, run_dir, num_steps)
    if prior is not None:
        opts = dict(prior=prior, data=data_path, cfg=None, prior_feature='tiny', prior_components=4,
                    resample_kimg=2 * STEP_KIMG, resample_num=16)
        cli.configure(c, {k: v for k, v in opts.items() if prior != ['none'] or k in ('prior', 'data', 'cfg')})
    c.update(overrides)
    return c

@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp('prior_runs')
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(dnnlib.util, '_dnnlib_cache_dir', str(root / 'cache'))
        data = harness.tiny_dataset(root / 'tiny16.zip', num_images=48, frequencies='uniform')
        yield dnnlib.EasyDict(root=root, data=data)

def _state(result):
    return harness.tensors(result, 'G', 'D', 'G_ema')

#----------------------------------------------------------------------------
# --prior=gmm: 10 steps straight, and 5 + 5 with an exact resume. A DataLoader
# worker prefetches 2 batches, so resampling weights take effect 8 images
# after they are set and the resume must rewind the sampler across them.
# A freshly initialised G puts all its images in one component, which would
# give the same weights at every update; the counts get an extra share that
# moves with the update index, so that every update changes the weights.

@pytest.fixture(scope='module')
def gmm_runs(tiny):
    real_counts = GMMPrior._generated_counts
    def moving_counts(self, update_idx):
        counts = real_counts(self, update_idx)
        counts[update_idx % counts.numel()] += 2 * self.resample_num
        return counts

    loader = dict(data_loader_kwargs=dnnlib.EasyDict(num_workers=1, prefetch_factor=2))
    root = tiny.root
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(GMMPrior, '_generated_counts', moving_counts)
        full = training_loop_module.training_loop(**_config(tiny.data, str(root / 'full'), 10, prior=['gmm'], **loader))
        first = training_loop_module.training_loop(**_config(tiny.data, str(root / 'first'), 5, prior=['gmm'], **loader))
        snapshot = str(root / 'first' / 'network-snapshot-000000.pkl')
        second = training_loop_module.training_loop(**_config(tiny.data, str(root / 'second'), 10, prior=['gmm'], resume_pkl=snapshot, **loader))
    return dnnlib.EasyDict(root=root, full=full, first=first, second=second, snapshot=snapshot)


def test_gmm_run_reports_prior_statistics(gmm_runs):
    stats = harness.read_stats(str(gmm_runs.root / 'full'))
    last = stats[-1]
    for name in ('Loss/G/prior', 'Prior/gmm/loss', 'Prior/gmm/nll', 'Prior/gmm/below_theta', 'Prior/gmm/dds', 'Sampler/weight_max'):
        assert name in last and np.isfinite(last[name]['mean']), name
    assert 0 <= last['Prior/gmm/below_theta']['mean'] <= 1
    assert 0 <= last['Prior/gmm/dds']['mean'] <= 2
    assert last['Sampler/weight_max']['mean'] >= 1


def test_snapshot_carries_the_prior_and_sampler_state(gmm_runs):
    data = harness.load(gmm_runs.snapshot)
    state = prior_state_from_snapshot(data)
    assert state is not None and state['prior_file']['kind'] == 'priorgan-gmm-prior'
    prior = PriorFile(state['prior_file'])
    assert prior.num_components == 4 and prior.feature_name == 'tiny' and prior.num_images == 48

    # f^g was estimated at 8 and 16 images; f' and the sampler's weights agree with Eq. 8 and f'_k / n_k.
    resample = state['resample']
    assert resample['history']['nimg'].tolist() == [8, 16] and resample['last_update_nimg'] == 16
    assert torch.allclose(resample['freqs'].sum(), torch.tensor(1.0, dtype=torch.float64))
    sampler = data['resume_state']['ranks'][0]['sampler']
    assert sampler['kind'] == 'PriorResampler' and sampler['num_yielded'] == 20
    assert sampler['history']['steps'].tolist() == [16, 24]  # set at 8 and 16 images, effective 8 later (prefetch)
    expected = per_image_weights(prior.assignments('nearest'), resample['freqs'])
    assert torch.allclose(sampler['history']['weights'][-1], expected / expected.sum())
    assert state['log_theta'] == pytest.approx(prior.loglik_quantile(0.1))

    # Not a snapshot of a gmm run: no prior state.
    assert prior_state_from_snapshot(dict(G=None)) is None


def test_gmm_resume_is_exact(gmm_runs):
    full, second = _state(gmm_runs.full), _state(gmm_runs.second)
    assert harness.differing(full, second) == []
    assert not torch.equal(_state(gmm_runs.first)['G.synthesis.b16.conv1.weight'], full['G.synthesis.b16.conv1.weight'])
    lines_full = harness.read_stats(str(gmm_runs.root / 'full'))
    lines_second = harness.read_stats(str(gmm_runs.root / 'second'))
    assert len(lines_full) == 6 and len(lines_second) == 3
    for line_full, line_second in zip(lines_full[3:], lines_second):
        names = [n for n in line_second if n.startswith(('Loss/', 'Prior/', 'Sampler/')) and line_second[n]['num'] > 0]
        assert 'Loss/G/prior' in names and 'Prior/gmm/dds' in names
        for name in names:
            assert line_second[name] == line_full[name], name
    history = gmm_runs.second.loss.priors[0].history
    assert [h[0] for h in history] == [8, 16, 24, 32]
    assert len({tuple(h[2].tolist()) for h in history}) == 4  # every update changed f'

#----------------------------------------------------------------------------
# --prior=none is the baseline, bit for bit: configure() leaves the config
# alone, and even PriorLoss with the 'none' prior changes nothing.

def test_prior_none_is_bit_identical_to_no_prior(tiny):
    root = tiny.root
    base = _config(tiny.data, str(root / 'base'), 4)
    assert _config(tiny.data, str(root / 'base'), 4, prior=['none']) == base
    with_loss = _config(tiny.data, str(root / 'none'), 4)
    with_loss.loss_kwargs = dnnlib.EasyDict(with_loss.loss_kwargs, class_name='priors.loss.PriorLoss', prior_kwargs=[dict(name='none')])
    a = training_loop_module.training_loop(**base)
    b = training_loop_module.training_loop(**with_loss)
    assert harness.differing(_state(a), _state(b)) == []
    for line_a, line_b in zip(harness.read_stats(str(root / 'base')), harness.read_stats(str(root / 'none'))):
        losses = [n for n in line_a if n.startswith('Loss/')]
        assert len(losses) >= 8 and [n for n in line_b if n.startswith('Loss/')] == losses
        for name in losses:
            assert line_a[name] == line_b[name], name

#----------------------------------------------------------------------------
# Two gloo processes: rank 0 builds the prior while rank 1 waits, the
# generated counts are summed over ranks, and both ranks apply the same
# sampler weights and end with the same networks.

def _ddp_worker(rank, tmp_dir, data_path, cache_dir):
    dnnlib.util._dnnlib_cache_dir = cache_dir
    harness.init_gloo(rank, tmp_dir)
    c = _config(data_path, os.path.join(tmp_dir, 'run'), 6, prior=['gmm'], num_gpus=2, rank=rank, batch_size=8, batch_gpu=2,
                total_kimg=0.032, kimg_per_tick=0.016)
    result = harness.run_loop(c)
    prior = result.loss.priors[0]
    torch.save(dict(state=_state(result), history=[h[1] for h in prior.history]), os.path.join(tmp_dir, f'rank{rank}.pt'))
    torch.distributed.destroy_process_group()

@pytest.mark.ddp
def test_gmm_with_two_gloo_ranks(tiny, tmp_path):
    cache_dir = str(tmp_path / 'cache')
    harness.spawn_two(_ddp_worker, str(tmp_path), tiny.data, cache_dir)
    rank0, rank1 = harness.load_ranks(tmp_path)
    differing = harness.differing(rank0['state'], rank1['state'])
    assert all(name.endswith('w_avg') for name in differing), differing
    assert len(rank0['history']) == 3  # f^g estimated at 8, 16 and 24 images...
    for f0, f1 in zip(rank0['history'], rank1['history']):
        assert torch.equal(f0, f1) and float(f0.sum()) == pytest.approx(1.0)  # ...from counts summed over both ranks

    snapshot = harness.load(str(tmp_path / 'run' / 'network-snapshot-000000.pkl'))
    ranks = snapshot['resume_state']['ranks']
    # The prior's state is shared (saved once, outside the per-rank entries); per rank only pl_mean and the priors' own.
    assert 'prior_file' in snapshot['resume_state']['loss']['priors']['gmm']
    assert [r['loss']['priors'] for r in ranks] == [{'gmm': {}}, {'gmm': {}}]
    assert torch.equal(ranks[0]['sampler']['history']['weights'], ranks[1]['sampler']['history']['weights'])
    assert ranks[0]['sampler']['history']['weights'].shape[0] >= 1

#----------------------------------------------------------------------------
