"""The toy loop's fast paths (issue 18 item 6) give exactly what the general paths give: the bulk sampler step, the
one-gather batches, no label picks for unconditional data, the bulk G_ema copy without EMA."""

import numpy as np
import torch

from torch_utils import misc
from training import toy_data
from training import toy_lab
from training import training_loop as loop_module

#----------------------------------------------------------------------------

def _sampler(n=1000, seed=3):
    return misc.InfiniteSampler(toy_data.ToyDataset(f'toy:ring8,n={n}'), seed=seed)

def test_bulk_sampler_steps_equal_single_steps_and_state():
    one, bulk = iter(_sampler()), iter(_sampler())
    for n in [512] * 12 + [7, 4096, 1]:   # passes over the data and rewind anchors (every 4096) inside a batch
        np.testing.assert_array_equal(toy_lab.take_indices(bulk, n), [next(one) for _ in range(n)])
    a, b = one.state_dict(0), bulk.state_dict(0)
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], dict):
            assert all(np.array_equal(np.asarray(a[key][k]), np.asarray(b[key][k])) for k in a[key]), key
        else:
            assert np.array_equal(np.asarray(a[key]), np.asarray(b[key])), key
    assert [anchor[0] for anchor in bulk.anchors] == [anchor[0] for anchor in one.anchors] == [4096, 8192]   # rewind anchors
    for num_unused in (1, 700, 3000):     # rewinding works from either
        assert np.array_equal(one.state_dict(num_unused)['order'], bulk.state_dict(num_unused)['order'])

def test_toy_batches_equal_the_dataloader_and_draw_the_same_rng():
    dataset = toy_data.ToyDataset('toy:ring8,n=300')
    torch.manual_seed(5)
    loader = iter(torch.utils.data.DataLoader(dataset, sampler=misc.InfiniteSampler(dataset, seed=1), batch_size=64, num_workers=0))
    after_loader = torch.rand([3])
    torch.manual_seed(5)
    batches = toy_lab.ToyBatches(dataset, misc.InfiniteSampler(dataset, seed=1), 64)
    assert torch.equal(torch.rand([3]), after_loader)       # the same draws from torch's RNG as DataLoader's iterator
    for _ in range(12):
        (x, c), (y, d) = next(loader), next(batches)
        assert torch.equal(x, y) and x.dtype == y.dtype and torch.equal(c, d) and c.dtype == d.dtype

# Batches taken ahead (one sampler call and one gather for several) are the batches read one at a time, and the
# sampler's state rewound by the indices not yet handed out is the one-at-a-time reader's state (what a snapshot saves).
def test_batches_taken_ahead_equal_one_at_a_time_and_rewind_exactly():
    dataset = toy_data.ToyDataset('toy:ring8,n=3000')
    ahead_sampler, one_sampler = misc.InfiniteSampler(dataset, seed=2), misc.InfiniteSampler(dataset, seed=2)
    ahead, one = toy_lab.ToyBatches(dataset, ahead_sampler, 96), toy_lab.ToyBatches(dataset, one_sampler, 96)
    one.batches_ahead = 1
    assert ahead.batches_ahead == toy_lab.PREFETCH_INDICES // 96 > 1
    for step in range(1, 70):                                  # past two rewind anchors (every 4096 indices)
        (x, c), (y, d) = next(ahead), next(one)
        assert torch.equal(x, y) and torch.equal(c, d), step
        if step in (1, 21, 22, 43, 69):
            unused = ahead_sampler.state_dict()['num_yielded'] - step * 96
            assert unused > 0 or step in (21, 42)
            rewound, expected = ahead_sampler.state_dict(num_unused=unused) if unused else ahead_sampler.state_dict(), one_sampler.state_dict()
            assert rewound['idx'] == expected['idx'] == step * 96 and torch.equal(rewound['order'], expected['order']), step
            assert all(np.array_equal(np.asarray(rewound['rng'][k]), np.asarray(expected['rng'][k])) for k in expected['rng']), step

def test_unconditional_fetch_draws_no_label_picks():
    dataset = toy_data.ToyDataset('toy:ring8,n=300')
    data_iter = toy_lab.ToyBatches(dataset, misc.InfiniteSampler(dataset), 32)
    np.random.seed(0)
    before = np.random.get_state()[1].copy(), np.random.get_state()[2]
    _real, real_c, _z, gen_c = loop_module._fetch_batch(data_iter, dataset, 2, 32, 16, 2, torch.device('cpu'))
    assert np.array_equal(np.random.get_state()[1], before[0]) and np.random.get_state()[2] == before[1]
    assert [tuple(c.shape) for chunk in gen_c for c in chunk] == [(16, 0)] * 4 and tuple(real_c[0].shape) == (16, 0)

def test_bulk_ema_copy_equals_the_lerp_with_beta_0():
    from training.toy_networks import ToyGenerator
    G = ToyGenerator(z_dim=2, c_dim=0, w_dim=2, img_resolution=1, img_channels=2)
    G.mapping.w_avg.normal_()
    ema_a = ToyGenerator(z_dim=2, c_dim=0, w_dim=2, img_resolution=1, img_channels=2)
    ema_b = ToyGenerator(z_dim=2, c_dim=0, w_dim=2, img_resolution=1, img_channels=2)
    ema_b.load_state_dict(ema_a.state_dict())
    loop_module._update_ema(G, ema_a, 0.0)
    with torch.no_grad():                                     # the general path, written out
        for p_ema, p in zip(ema_b.parameters(), G.parameters()):
            p_ema.copy_(p.lerp(p_ema, 0.0))
        for b_ema, b in zip(ema_b.buffers(), G.buffers()):
            b_ema.copy_(b)
    assert all(torch.equal(a, b) for a, b in zip(misc.params_and_buffers(ema_a), misc.params_and_buffers(ema_b)))
    assert all(torch.equal(a, b) for a, b in zip(misc.params_and_buffers(ema_a), misc.params_and_buffers(G)))

#----------------------------------------------------------------------------

# Statistics kept until the end of the tick are those reported step by step (up to float32 summation order).
def test_deferred_statistics_equal_immediate_ones():
    from torch_utils import training_stats
    from training.loss import StyleGAN2Loss
    from training.toy_networks import ToyDiscriminator, ToyGenerator
    torch.manual_seed(0)
    G = ToyGenerator(z_dim=2, c_dim=0, w_dim=2, img_resolution=1, img_channels=2)
    D = ToyDiscriminator(c_dim=0, img_resolution=1, img_channels=2)
    results = []
    for defer in (False, True):
        loss = StyleGAN2Loss(torch.device('cpu'), G.mapping, G.synthesis, D, r1_gamma=0.5, pl_weight=0, style_mixing_prob=0)
        loss.defer_stats = defer
        collector = training_stats.Collector(regex='Loss/.*')
        collector.update()                                    # forget earlier tests' reports
        gen = torch.Generator().manual_seed(1)
        for _ in range(5):
            real, z = torch.randn([16, 2, 1, 1], generator=gen), torch.randn([16, 2], generator=gen)
            for phase in ('Gboth', 'Dboth'):
                loss.accumulate_gradients(phase, real, torch.zeros([16, 0]), z, torch.zeros([16, 0]), sync=True, gain=1)
        if defer:
            collector.update()
            assert collector.num('Loss/G/loss') == 0 and collector.num('Loss/signs/real') == 0   # nothing reported until the flush
            loss.flush_stats()
        collector.update()
        results.append({name: (collector.num(name), collector.mean(name), collector.std(name)) for name in collector.names()})
    assert results[0].keys() == results[1].keys() and 'Loss/signs/real' in results[0] and 'Loss/r1_penalty' in results[0]
    for name, (num, mean, std) in results[0].items():   # the moments the statistics are made of (std = their difference)
        num_b, mean_b, std_b = results[1][name]
        assert num_b == num, name
        np.testing.assert_allclose([mean_b, std_b ** 2 + mean_b ** 2], [mean, std ** 2 + mean ** 2], rtol=1e-6, atol=1e-9, err_msg=name)

def test_the_loop_flushes_deferred_statistics_every_tick(tmp_path):
    import json
    import train
    ctx = train.main.make_context('train.py', [f'--outdir={tmp_path}', '--cfg=toy', '--data=toy:ring8,n=256', '--batch=16', '--kimg=0.064', '--tick=0.032'])
    c, _ = train.setup_training_loop_kwargs(ctx.params)
    c.image_snapshot_ticks = c.network_snapshot_ticks = None
    result = loop_module.training_loop(run_dir=str(tmp_path), **c)
    assert result.loss.defer_stats                            # no ADA on the toy: statistics are reduced once per tick
    with open(tmp_path / 'stats.jsonl') as f:
        ticks = [json.loads(line) for line in f]
    assert [t['Loss/scores/real']['num'] for t in ticks] == [16, 32, 16]          # steps 1, 2-3, 4 of 16 reals
    assert [t['Loss/scores/fake']['num'] for t in ticks] == [32, 64, 32]          # G and D steps
    assert all('Loss/signs/real' in t and 'Loss/G/loss' in t and 'Loss/D/loss' in t for t in ticks)

# The fused finiteness check leaves finite gradients as they are and still cleans non-finite ones.
def test_reduce_gradients_cleans_non_finite_gradients_only():
    layer = torch.nn.Linear(3, 2)
    for bad in (None, float('nan'), float('inf'), -float('inf')):
        grads = [torch.randn(2, 3), torch.randn(2)]
        if bad is not None:
            grads[1][0] = bad
        expected = [torch.nan_to_num(g, nan=0, posinf=1e5, neginf=-1e5) for g in grads]
        for p, g in zip(layer.parameters(), grads):
            p.grad = g.clone()
        loop_module._reduce_gradients(layer, 1, list(layer.parameters()))
        assert all(torch.equal(p.grad, e) for p, e in zip(layer.parameters(), expected)), bad

def test_one_round_fetch_equals_the_split_rounds():
    dataset = toy_data.ToyDataset('toy:ring8,n=300')
    fetched = []
    for batch_gpu in (32, 16):  # one round (no split) vs two rounds of 16, from the same streams
        torch.manual_seed(2)
        data_iter = toy_lab.ToyBatches(dataset, misc.InfiniteSampler(dataset, seed=4), 32)
        fetched.append(loop_module._fetch_batch(data_iter, dataset, 3, 32, batch_gpu, 2, torch.device('cpu')))
    (real_a, c_a, z_a, gc_a), (real_b, c_b, z_b, gc_b) = fetched
    assert len(real_a) == 1 and len(real_b) == 2 and len(z_a) == len(z_b) == 3
    assert torch.equal(real_a[0], torch.cat(real_b)) and torch.equal(c_a[0], torch.cat(c_b))
    for phase_a, phase_b in zip(z_a, z_b):
        assert len(phase_a) == 1 and torch.equal(phase_a[0], torch.cat(phase_b))
    assert [tuple(c.shape) for chunk in gc_a for c in chunk] == [(32, 0)] * 3

def test_backward_applies_the_phase_gain():
    from training.loss import StyleGAN2Loss
    for gain in (1, 4):
        w = torch.ones([3], requires_grad=True)
        StyleGAN2Loss._backward('Dmain', (w * torch.tensor([1.0, 2.0, 3.0])).sum(), gain)
        assert torch.equal(w.grad, torch.tensor([1.0, 2.0, 3.0]) * gain)
