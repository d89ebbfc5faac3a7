"""The masked / weighted latent prior (Goerttler & Kloft): the selection against brute-force references (Def. 3 keeps
exactly the top-r fraction; Def. 4's draw frequencies converge to s / sum s), one pre-sample per phase over all its
rounds, the sample-time transform's batch independence, and the per-rank stream state."""

import math

import numpy as np
import pytest
import torch

import dnnlib
import harness
from priors.masked import prior as masked

#----------------------------------------------------------------------------

@pytest.mark.parametrize('n,rate', [(10, 0.5), (7, 0.3), (1000, 0.1), (5, 1.0), (3, 0.01)])
def test_masked_pmf_keeps_exactly_the_top_fraction(n, rate):
    rng = np.random.default_rng(n)
    scores = rng.uniform(size=n)
    scores[: n // 3] = scores[0]  # ties, broken by index
    pmf = masked.selection_pmf(torch.tensor(scores), 'masked', rate).numpy()
    k = max(1, int(round(rate * n)))
    ranked = sorted(range(n), key=lambda i: (-scores[i], i))  # brute force: rank every latent
    expected = np.zeros(n)
    expected[ranked[:k]] = 1 / k
    np.testing.assert_array_equal(pmf, expected)
    assert (pmf > 0).sum() == k and math.isclose(pmf.sum(), 1.0)

def test_weighted_draws_converge_to_normalised_scores():
    scores = torch.tensor([0.05, 0.5, 0.2, 0.9, 0.0, 0.35], dtype=torch.float64)
    pmf = masked.selection_pmf(scores, 'weighted', 0.5)
    np.testing.assert_allclose(pmf.numpy(), (scores / scores.sum()).numpy(), rtol=0, atol=1e-15)
    num = 200_000
    idx = masked.draw_indices(pmf, num, torch.Generator().manual_seed(0))
    freq = np.bincount(idx.numpy(), minlength=len(scores)) / num
    p = pmf.numpy()
    assert np.all(np.abs(freq - p) <= 5 * np.sqrt(p * (1 - p) / num) + 1e-12)  # 5 sigma of the binomial
    assert freq[4] == 0  # score 0: never drawn
    uniform = masked.selection_pmf(torch.zeros(4, dtype=torch.float64), 'weighted', 0.5)
    assert torch.equal(uniform, torch.full([4], 0.25, dtype=torch.float64))

def test_options_are_checked():
    with pytest.raises(ValueError, match='mode must be one of masked, weighted'):
        masked.MaskedPrior(mode='top')
    with pytest.raises(ValueError, match=r'rate must be in \(0, 1\]'):
        masked.MaskedPrior(rate=0)
    with pytest.raises(ValueError, match='presample'):
        masked.MaskedPrior(presample=0.5)

#----------------------------------------------------------------------------
# A toy "G": mapping is the identity on z, synthesis turns w into a 1x1 image;
# D scores that image with its first coordinate. So the score of z is sig(z_0).

_Mapping, _Synthesis = harness.IdentityMapping, harness.PointSynthesis  # z -> the 1x1 image z

def _setup(batch_size=8, batch_gpu=4, presample=2.0, mode='masked', rate=0.5):
    calls = []
    def score(img, c):
        calls.append(img.shape[0])
        return img[:, :1, 0, 0]
    prior = masked.MaskedPrior(mode=mode, rate=rate, presample=presample)
    ctx = dnnlib.EasyDict(device=torch.device('cpu'), G_mapping=_Mapping(), G_synthesis=_Synthesis(), score=score, random_seed=1,
                          rank=0, num_gpus=1, batch_size=batch_size, batch_gpu=batch_gpu)
    prior.setup(ctx)
    return prior, calls

def test_one_presample_per_phase_covers_all_its_rounds():
    prior, calls = _setup(batch_size=8, batch_gpu=4, presample=2.0, rate=0.5)
    c = torch.zeros([4, 0])
    z1, _ = prior.transform_latents(torch.zeros([4, 3]), c, step='Dgen', role='main', batch=None)
    assert sum(calls) == 16  # n = 2 x the phase's 8 latents, scored at the first round...
    z_pool, _, pmf = prior._pool['Dgen']
    z2, _ = prior.transform_latents(torch.zeros([4, 3]), c, step='Dgen', role='main', batch=None)
    assert sum(calls) == 16  # ...and not again at the second
    threshold = sorted(z_pool[:, 0].tolist(), reverse=True)[7]
    assert all(float(v) >= threshold for v in torch.cat([z1, z2])[:, 0])  # every pick is in the top half of the 16
    prior.transform_latents(torch.zeros([4, 3]), c, step='Dgen', role='main', batch=None)
    assert sum(calls) == 32  # the next phase draws a new pre-sample
    z_pl, _ = prior.transform_latents(torch.ones([2, 3]), c, step='Gpl', role='main', batch=None)
    assert torch.equal(z_pl, torch.ones([2, 3]))  # not at the path-length step
    mix, _ = prior.transform_latents(torch.zeros([4, 3]), c, step='Dgen', role='mix', batch=None)
    pool_rows = {tuple(r) for r in prior._pool['Dgen'][0].tolist()}
    assert all(tuple(r) in pool_rows for r in mix.tolist())  # the mixing latent comes from the same pool

def test_stream_state_resumes_the_same_draws():
    prior, _ = _setup()
    c = torch.zeros([4, 0])
    prior.transform_latents(torch.zeros([4, 3]), c, step='Gmain', role='main', batch=None)
    prior.transform_latents(torch.zeros([4, 3]), c, step='Gmain', role='main', batch=None)
    state = prior.rank_state_dict()
    a = prior.transform_latents(torch.zeros([4, 3]), c, step='Gmain', role='main', batch=None)[0]
    other, _ = _setup()
    other.load_rank_state_dict(state)
    b = other.transform_latents(torch.zeros([4, 3]), c, step='Gmain', role='main', batch=None)[0]
    assert torch.equal(a, b)

def test_sample_transform_does_not_depend_on_the_batch():
    G = dnnlib.EasyDict(mapping=_Mapping(), synthesis=_Synthesis())
    D = lambda img, c: img[:, :1, 0, 0]
    t = masked.MaskedSampleTransform(mode='masked', rate=0.25, pool=32)
    z = torch.randn([5, 3], generator=torch.Generator().manual_seed(3))
    c = torch.zeros([5, 0])
    together = t(z, c, G=G, D=D)[0]
    alone = torch.cat([t(z[i:i + 1], c[i:i + 1], G=G, D=D)[0] for i in range(5)])
    assert torch.equal(together, alone)
    # With a pool of 32 and r = 0.25, every output is among the top 8 of its candidates: far above the median.
    assert float(torch.sigmoid(together[:, 0]).min()) > 0.5

#----------------------------------------------------------------------------

# A synthesis with per-call random noise (like StyleGAN's noise_mode='random', or a side module that draws codes):
# the selection must still not depend on the batch, and must leave the caller's global RNG stream where it was.
class _NoisySynthesis(torch.nn.Module):
    def forward(self, ws):
        return (ws[:, 0] + 0.5 * torch.randn_like(ws[:, 0])).reshape(ws.shape[0], -1, 1, 1)

def test_sample_transform_with_noisy_G_is_batch_independent_and_keeps_the_global_stream():
    G = dnnlib.EasyDict(mapping=_Mapping(), synthesis=_NoisySynthesis())
    D = lambda img, c: img[:, :1, 0, 0]
    t = masked.MaskedSampleTransform(mode='weighted', pool=16)
    z = torch.randn([4, 3], generator=torch.Generator().manual_seed(5))
    c = torch.zeros([4, 0])
    torch.manual_seed(123)
    together = t(z, c, G=G, D=D)[0]
    after = torch.rand([3])
    torch.manual_seed(7)
    alone = torch.cat([t(z[i:i + 1], c[i:i + 1], G=G, D=D)[0] for i in range(4)])
    assert torch.equal(together, alone)
    torch.manual_seed(123)
    assert torch.equal(torch.rand([3]), after)  # the transform drew nothing from the global stream
