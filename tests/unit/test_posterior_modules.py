"""P2GAN's generator side module (priors/posterior/modules.py): posterior modules + AdaIN, stage switch, sampling-time code, running statistics, pickling."""

import copy
import io
import pickle

import numpy as np
import pytest
import torch

from priors.posterior import modules
from priors.posterior import posterior_math as pm
from training import networks

#----------------------------------------------------------------------------

def _side(**kwargs):
    torch.manual_seed(0)
    return modules.PosteriorSide(channels=[4, 3], code_dim=2, **kwargs).double().requires_grad_(False)

def _randomise(side, seed=1):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in side.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype))

def test_zero_initialised_modules_make_the_stage_switch_continuous():
    side = _side()
    x = torch.randn([5, 4, 3, 3], dtype=torch.float64)
    code = torch.randn([5, 2], dtype=torch.float64) * 4
    before = side(0, x, code)
    side.stage.fill_(1)
    np.testing.assert_allclose(side(0, x, code).numpy(), before.numpy(), rtol=1e-12)
    np.testing.assert_allclose(before.numpy(), pm.adain(x, None, None, 'bn').numpy(), rtol=1e-12)

def test_stage_decides_whether_the_code_matters():
    side = _side()
    _randomise(side)
    x = torch.randn([5, 4, 3, 3], dtype=torch.float64)
    c1, c2 = torch.randn([5, 2], dtype=torch.float64), torch.randn([5, 2], dtype=torch.float64)
    assert torch.equal(side(0, x, c1), side(0, x, c2))          # stage 0: plain BN
    side.stage.fill_(1)
    assert not torch.allclose(side(0, x, c1), side(0, x, c2))

def test_forward_matches_eq10_and_eq11_reference():
    side = _side()
    _randomise(side)
    side.stage.fill_(1)
    x = torch.randn([5, 3, 2, 2], dtype=torch.float64)
    code = torch.randn([5, 2], dtype=torch.float64)
    s = code.numpy() @ side.P1_weight.detach().numpy().T / np.sqrt(2) + side.P1_bias.detach().numpy()   # Eq. 10, [N, 2C]
    xn = x.numpy()
    xn = (xn - xn.mean(axis=(0, 2, 3), keepdims=True)) / np.sqrt(xn.var(axis=(0, 2, 3), keepdims=True) + 1e-5)
    ref = s[:, :3, None, None] * xn + s[:, 3:, None, None]                                             # Eq. 11
    np.testing.assert_allclose(side(1, x, code).detach().numpy(), ref, rtol=1e-10, atol=1e-12)

def test_gradcheck_through_the_posterior_modules():
    side = _side().requires_grad_(True)
    _randomise(side)
    side.stage.fill_(1)
    x = torch.randn([3, 4, 2, 2], dtype=torch.float64, requires_grad=True)
    code = torch.randn([3, 2], dtype=torch.float64, requires_grad=True)
    params = (side.P0_weight, side.P0_bias)
    assert torch.autograd.gradcheck(lambda a, b: side(0, a, b), (x, code))
    # Parameters: compare autograd with central differences in float64.
    out = side(0, x.detach(), code.detach())
    probe = torch.randn_like(out)
    grads = torch.autograd.grad((out * probe).sum(), params)
    for p, g in zip(params, grads):
        flat = p.detach().flatten()
        for j in range(0, flat.numel(), 3):
            with torch.no_grad():
                orig = float(flat[j])
                p.view(-1)[j] = orig + 1e-6
                hi = float((side(0, x.detach(), code.detach()) * probe).sum())
                p.view(-1)[j] = orig - 1e-6
                lo = float((side(0, x.detach(), code.detach()) * probe).sum())
                p.view(-1)[j] = orig
            np.testing.assert_allclose(float(g.flatten()[j]), (hi - lo) / 2e-6, rtol=1e-5, atol=1e-8)

def test_sampling_time_code_uses_the_test_factors():
    side = _side(test_mu=1.5, test_sigma=0.5, test_sample='mean')
    _randomise(side)
    side.stage.fill_(1)
    side.eval()
    x = torch.randn([4, 4, 3, 3], dtype=torch.float64)
    code = torch.full([4, 2], 1.5, dtype=torch.float64)
    np.testing.assert_allclose(side(0, x, None).numpy(), side(0, x, code).numpy(), rtol=1e-12)

    # 'random': z = eps * sigma_s + mu_s with torch's global generator.
    side = _side(test_mu=1.5, test_sigma=0.5)
    _randomise(side)
    side.stage.fill_(1)
    side.eval()
    torch.manual_seed(3)
    got = side(0, x, None)
    torch.manual_seed(3)
    eps = torch.randn([4, 2], dtype=torch.float64)
    np.testing.assert_allclose(got.numpy(), side(0, x, eps * 0.5 + 1.5).numpy(), rtol=1e-12)

def test_running_statistics_change_only_through_update_running_stats():
    side = _side()
    side.recorder = []
    x = torch.randn([6, 4, 3, 3], dtype=torch.float64) * 3 + 2
    side(0, x, torch.zeros([6, 2], dtype=torch.float64))
    assert torch.equal(side.bn0_mean, torch.zeros(4, dtype=torch.float64))    # forward never touches them
    (layer, mean, var), = side.recorder
    assert layer == 0
    np.testing.assert_allclose(mean.numpy(), x.numpy().mean(axis=(0, 2, 3)), rtol=1e-12)
    side.update_running_stats([mean, torch.zeros(3)], [var, torch.ones(3)])
    np.testing.assert_allclose(side.bn0_mean.numpy(), 0.1 * mean.numpy(), rtol=1e-6)
    np.testing.assert_allclose(side.bn0_var.numpy(), 0.9 + 0.1 * var.numpy(), rtol=1e-6)

    # Eval mode neither records nor uses batch statistics.
    side.eval()
    side(0, x, torch.zeros([6, 2], dtype=torch.float64))
    assert len(side.recorder) == 1

def test_copies_and_pickles_leave_the_recorder_out():
    side = modules.PosteriorSide(channels=[4, 3], code_dim=2)
    side.recorder = [(0, torch.zeros(4), torch.ones(4))]
    assert copy.deepcopy(side).recorder is None
    buf = io.BytesIO()
    pickle.dump(side, buf)
    loaded = pickle.loads(buf.getvalue())
    assert loaded.recorder is None and side.recorder is not None
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), side.state_dict().values()))

def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match='norm'):
        modules.PosteriorSide(channels=[4], code_dim=2, norm='ln')
    with pytest.raises(ValueError, match='test_sample'):
        modules.PosteriorSide(channels=[4], code_dim=2, test_sample='mode')
    side = modules.PosteriorSide(channels=[4], code_dim=2)
    with pytest.raises(ValueError, match=r'code \[N=2, d=2\]'):
        side(0, torch.zeros([2, 4, 2, 2]), torch.zeros([2, 3]))

#----------------------------------------------------------------------------

def test_generator_with_the_side_module(tiny_G_kwargs):
    kwargs = copy.deepcopy(tiny_G_kwargs)
    kwargs['synthesis_kwargs']['side_kwargs'] = dict(class_name='priors.posterior.modules.PosteriorSide', code_dim=3)
    torch.manual_seed(0)
    G = networks.Generator(**kwargs)
    side = G.synthesis.side
    assert isinstance(side, modules.PosteriorSide)
    assert side.channels == [int(layer.weight.shape[0]) for layer in G.synthesis._side_layers()]
    z = torch.randn([4, G.z_dim])
    img = G(z, None, side=torch.randn([4, 3]), noise_mode='const')
    assert img.shape == (4, 3, 16, 16) and torch.isfinite(img).all()
    G.eval()
    img = G(z[:1], None, noise_mode='const')          # sampling time: no side input, one image
    assert img.shape == (1, 3, 16, 16) and torch.isfinite(img).all()

#----------------------------------------------------------------------------
