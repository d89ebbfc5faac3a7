"""P2GAN maths (priors/posterior/posterior_math.py) against float64 references: discrepancy (Eq. 4-7), realness, L_z (Eq. 12), AdaIN (Eq. 11), the Eq. 19 fixed point."""

import numpy as np
import pytest
import torch

from priors.posterior import posterior_math as pm

G = pm.Gaussian

#----------------------------------------------------------------------------

def _random_pair(rng, n=6, d=4):
    mk = lambda: G(torch.tensor(rng.normal(size=[n, d]) * 3), torch.tensor(rng.uniform(0.1, 4, size=[n, d])))
    return mk(), mk()

def test_discrepancy_sampled_matches_naive_float64_loop():
    rng = np.random.default_rng(0)
    p1, p2 = _random_pair(rng)
    eps = torch.tensor(rng.normal(size=p1.mu.shape))
    ref = np.zeros(p1.mu.shape[0])
    for n in range(p1.mu.shape[0]):
        for k in range(p1.mu.shape[1]):
            a1 = float(eps[n, k]) * float(p1.sigma[n, k]) + float(p1.mu[n, k])
            a2 = float(eps[n, k]) * float(p2.sigma[n, k]) + float(p2.mu[n, k])
            ref[n] += 0.5 * (a1 - a2) ** 2
    np.testing.assert_allclose(pm.discrepancy_sampled(p1, p2, eps).numpy(), ref, rtol=1e-12)

def test_discrepancy_closed_is_the_expectation_of_the_sampled_one():
    rng = np.random.default_rng(1)
    p1, p2 = _random_pair(rng, n=3, d=5)
    closed = pm.discrepancy_closed(p1, p2)
    np.testing.assert_allclose(closed.numpy(), 0.5 * ((p1.mu - p2.mu) ** 2 + (p1.sigma - p2.sigma) ** 2).sum(1).numpy(), rtol=1e-12)

    # Exact: eps = +-1 (antithetic) has E[eps] = 0, E[eps^2] = 1, and the sampled form is quadratic in eps.
    ones = torch.ones_like(p1.mu)
    exact = (pm.discrepancy_sampled(p1, p2, ones) + pm.discrepancy_sampled(p1, p2, -ones)) / 2
    np.testing.assert_allclose(exact.numpy(), closed.numpy(), rtol=1e-12)

    # Monte Carlo with the same eps on both sides agrees within 4 standard errors ...
    num = 200000
    gen = torch.Generator().manual_seed(0)
    rep = lambda p: G(p.mu[:1].expand(num, -1), p.sigma[:1].expand(num, -1))
    eps = torch.randn([num, 5], generator=gen, dtype=torch.float64)
    samples = pm.discrepancy_sampled(rep(p1), rep(p2), eps)
    assert abs(float(samples.mean()) - float(closed[0])) < 4 * float(samples.std()) / np.sqrt(num)

    # ... while independent noise for the two sides (not Eq. 6) has a different mean: sigma1^2 + sigma2^2 + dmu^2.
    a1 = pm.reparameterise(rep(p1), eps)
    a2 = pm.reparameterise(rep(p2), torch.randn([num, 5], generator=gen, dtype=torch.float64))
    independent = 0.5 * (a1 - a2).square().sum(1)
    assert abs(float(independent.mean()) - float(closed[0])) > 10 * float(independent.std()) / np.sqrt(num)

def test_discrepancy_against_scalar_prior_broadcasts():
    rng = np.random.default_rng(2)
    p, _ = _random_pair(rng)
    prior = G(-4.0, 1.0)
    full = G(torch.full_like(p.mu, -4.0), torch.full_like(p.sigma, 1.0))
    eps = torch.tensor(rng.normal(size=p.mu.shape))
    np.testing.assert_allclose(pm.discrepancy_sampled(p, prior, eps).numpy(), pm.discrepancy_sampled(p, full, eps).numpy(), rtol=1e-12)
    np.testing.assert_allclose(pm.discrepancy_closed(p, prior).numpy(), pm.discrepancy_closed(p, full).numpy(), rtol=1e-12)

def test_midpoint_averages_the_parameters_as_eq_9():
    assert pm.midpoint(G(-4.0, 1.0), G(4.0, 3.0)) == (0.0, 2.0)
    assert pm.midpoint(G(-5.0, 2.0), G(1.0, 1.0)) == (-2.0, 1.5)

#----------------------------------------------------------------------------

def test_code_distance_l1_matches_reference_and_is_zero_for_the_same_posterior():
    rng = np.random.default_rng(3)
    p_fake, p_real = _random_pair(rng)
    eps = torch.tensor(rng.normal(size=p_fake.mu.shape))
    code = pm.reparameterise(p_real, eps)
    ref = np.abs((eps * p_fake.sigma + p_fake.mu - code).numpy()).sum(1)
    np.testing.assert_allclose(pm.code_distance_l1(p_fake, code, eps).numpy(), ref, rtol=1e-12)
    assert float(pm.code_distance_l1(p_real, code, eps).abs().max()) < 1e-12
    closed = pm.code_distance_l1_closed(p_fake, p_real)
    np.testing.assert_allclose(closed.numpy(), (np.abs((p_fake.mu - p_real.mu).numpy()) + np.abs((p_fake.sigma - p_real.sigma).numpy())).sum(1))

#----------------------------------------------------------------------------

def test_realness_is_a_unit_slope_signed_distance_zero_at_the_midpoint():
    p_a, p_b = G(-4.0, 1.0), G(4.0, 3.0)
    d = 5
    at = lambda mu, sigma: G(torch.full([1, d], mu, dtype=torch.float64), torch.full([1, d], sigma, dtype=torch.float64))
    assert abs(float(pm.realness(at(0.0, 2.0), p_a, p_b))) < 1e-12
    assert float(pm.realness(at(4.0, 3.0), p_a, p_b)) > 0 > float(pm.realness(at(-4.0, 1.0), p_a, p_b))
    # Distance from P_c to P_b in (mu, sigma) space: sqrt(d * (4^2 + 1^2)).
    np.testing.assert_allclose(float(pm.realness(at(4.0, 3.0), p_a, p_b)), np.sqrt(d * 17), rtol=1e-12)

    # Gradient with respect to (mu, sigma) has norm 1 everywhere.
    rng = np.random.default_rng(4)
    mu = torch.tensor(rng.normal(size=[3, d]), requires_grad=True)
    sigma = torch.tensor(rng.uniform(0, 3, size=[3, d]), requires_grad=True)
    pm.realness(G(mu, sigma), p_a, p_b)[1].backward()
    norm = torch.cat([mu.grad[1], sigma.grad[1]]).norm()
    np.testing.assert_allclose(float(norm), 1.0, rtol=1e-12)

def test_realness_refuses_identical_priors():
    with pytest.raises(ValueError, match='same distribution'):
        pm.realness(G(torch.zeros([1, 2]), torch.ones([1, 2])), G(1.0, 2.0), G(1.0, 2.0))

#----------------------------------------------------------------------------

def _adain_reference(x, scale, bias, norm, mean=None, var=None, eps=1e-5):
    x = x.numpy()
    axes = (0, 2, 3) if norm == 'bn' else (2, 3)
    if mean is None:
        m, v = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
    else:
        m, v = mean.numpy()[None, :, None, None], var.numpy()[None, :, None, None]
    return scale.numpy()[:, :, None, None] * (x - m) / np.sqrt(v + eps) + bias.numpy()[:, :, None, None]

@pytest.mark.parametrize('norm', ['bn', 'in'])
def test_adain_matches_float64_reference(norm):
    rng = np.random.default_rng(5)
    x = torch.tensor(rng.normal(size=[4, 3, 5, 5]) * 2 + 1)
    scale, bias = torch.tensor(rng.normal(size=[4, 3])), torch.tensor(rng.normal(size=[4, 3]))
    got = pm.adain(x, scale, bias, norm, training=True)
    np.testing.assert_allclose(got.numpy(), _adain_reference(x, scale, bias, norm), rtol=1e-10, atol=1e-10)

def test_adain_bn_eval_uses_the_running_statistics():
    rng = np.random.default_rng(6)
    x = torch.tensor(rng.normal(size=[2, 3, 4, 4]))
    scale, bias = torch.tensor(rng.normal(size=[2, 3])), torch.tensor(rng.normal(size=[2, 3]))
    mean, var = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64), torch.tensor([4.0, 0.25, 1.0], dtype=torch.float64)
    got = pm.adain(x, scale, bias, 'bn', running_mean=mean, running_var=var, training=False)
    np.testing.assert_allclose(got.numpy(), _adain_reference(x, scale, bias, 'bn', mean, var), rtol=1e-10)
    # Eval output of one image does not depend on the rest of the batch.
    single = pm.adain(x[:1], scale[:1], bias[:1], 'bn', running_mean=mean, running_var=var, training=False)
    np.testing.assert_allclose(single.numpy(), got[:1].numpy(), rtol=1e-12)

def test_adain_in_refuses_vectors():
    with pytest.raises(ValueError, match='norm="bn"'):
        pm.adain(torch.zeros([4, 3]), None, None, 'in')

def test_batch_moments_match_numpy():
    rng = np.random.default_rng(7)
    x = torch.tensor(rng.normal(size=[3, 2, 4, 4]))
    mean, var = pm.batch_moments(x)
    np.testing.assert_allclose(mean.numpy(), x.numpy().mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(var.numpy(), x.numpy().var(axis=(0, 2, 3), ddof=1), rtol=1e-12)

#----------------------------------------------------------------------------

@pytest.mark.slow  # seconds of CPU: in the full suite, not the fast tier
def test_gradcheck_of_every_differentiable_term():
    rng = np.random.default_rng(8)
    t = lambda *shape: torch.tensor(rng.normal(size=shape), requires_grad=True)
    mu1, s1, mu2, s2, eps = t(3, 2), t(3, 2), t(3, 2), t(3, 2), torch.tensor(rng.normal(size=[3, 2]))
    p_a, p_b = G(-4.0, 1.0), G(4.0, 3.0)
    assert torch.autograd.gradcheck(lambda a, b, c, d: pm.discrepancy_sampled(G(a, b), G(c, d), eps), (mu1, s1, mu2, s2))
    assert torch.autograd.gradcheck(lambda a, b, c, d: pm.discrepancy_closed(G(a, b), G(c, d)), (mu1, s1, mu2, s2))
    assert torch.autograd.gradcheck(lambda a, b, c: pm.code_distance_l1(G(a, b), c, eps), (mu1, s1, mu2))
    assert torch.autograd.gradcheck(lambda a, b: pm.realness(G(a, b), p_a, p_b), (mu1, s1))
    x, scale, bias = t(3, 2, 3, 3), t(3, 2), t(3, 2)
    for norm in ('bn', 'in'):
        assert torch.autograd.gradcheck(lambda a, b, c: pm.adain(a, b, c, norm), (x, scale, bias))

#----------------------------------------------------------------------------
# Eq. 14 / 19: with p_g = p_data, the D loss of Eq. 8 is minimised by D* = (P_a + P_b) / 2.

def _toy_D(num_dims, seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2 * num_dims)).double()

def _D_loss(net, reals, fakes, p_a, p_b, eps_real=None, eps_fake=None):
    d = net[-1].out_features // 2
    split = lambda raw: G(raw[:, :d], raw[:, d:])
    if eps_real is None:
        return pm.discrepancy_closed(split(net(reals)), p_b).mean() + pm.discrepancy_closed(split(net(fakes)), p_a).mean()
    return (pm.discrepancy_sampled(split(net(reals)), p_b, eps_real).mean()
            + pm.discrepancy_sampled(split(net(fakes)), p_a, eps_fake).mean())

def _ring(num, gen):
    angle = torch.randint(0, 8, [num], generator=gen).double() * (2 * np.pi / 8)
    return torch.stack([angle.cos(), angle.sin()], dim=1) * 2 + 0.05 * torch.randn([num, 2], generator=gen, dtype=torch.float64)

def test_eq19_optimum_is_a_fixed_point_of_the_D_loss_when_pg_equals_pdata():
    p_a, p_b = G(-4.0, 1.0), G(4.0, 3.0)
    p_c = pm.midpoint(p_a, p_b)
    d = 3
    net = _toy_D(d, seed=0)
    gen = torch.Generator().manual_seed(0)
    data = _ring(256, gen)

    # D at D* (constant output P_c): the gradient of Eq. 8 is exactly zero (closed form) ...
    with torch.no_grad():
        net[-1].weight.zero_()
        net[-1].bias.copy_(torch.tensor([p_c.mu] * d + [p_c.sigma] * d))
    grads = torch.autograd.grad(_D_loss(net, data, data, p_a, p_b), list(net.parameters()))
    assert max(float(g.abs().max()) for g in grads) < 1e-12
    # ... and zero in expectation for the reparameterised loss (antithetic noise makes it exact).
    eps = torch.randn([256, d], generator=gen, dtype=torch.float64)
    sampled = (_D_loss(net, data, data, p_a, p_b, eps, eps) + _D_loss(net, data, data, p_a, p_b, -eps, -eps)) / 2
    grads = torch.autograd.grad(sampled, list(net.parameters()))
    assert max(float(g.abs().max()) for g in grads) < 1e-12

    # Moving D off D* raises the loss.
    base = float(_D_loss(net, data, data, p_a, p_b).detach())
    with torch.no_grad():
        net[-1].bias.add_(0.1)
    assert float(_D_loss(net, data, data, p_a, p_b).detach()) > base

def test_training_D_on_pg_equal_pdata_converges_to_eq19():
    p_a, p_b = G(-4.0, 1.0), G(4.0, 3.0)
    p_c = pm.midpoint(p_a, p_b)
    d = 2
    net = _toy_D(d, seed=1)
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    gen = torch.Generator().manual_seed(1)
    for _ in range(100):
        reals, fakes = _ring(64, gen), _ring(64, gen)                 # independent draws, same distribution
        eps_r, eps_f = (torch.randn([64, d], generator=gen, dtype=torch.float64) for _ in range(2))
        loss = _D_loss(net, reals, fakes, p_a, p_b, eps_r, eps_f)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        out = net(_ring(1024, gen))
    np.testing.assert_allclose(out[:, :d].mean().item(), p_c.mu, atol=0.3)
    np.testing.assert_allclose(out[:, d:].mean().item(), p_c.sigma, atol=0.3)

#----------------------------------------------------------------------------
