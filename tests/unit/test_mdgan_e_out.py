"""--mdgan-e-out: E's output handed to G as it is (linear, the default) or squashed into the support of G's latent distribution first (support: sigmoid for U[0, 1], tanh for U(-1, 1)), so that E's gradient through G's latent map does not vanish in the normal CDF's tails (docs/mdgan.md, the App. C diagnosis)."""

import math

import pytest
import torch

import dnnlib
from priors.loss import PriorLoss
from priors.mdgan import cli as mdgan_cli
from priors.mdgan import networks
from training.toy_networks import ToyDiscriminator, ToyGenerator

def _c():
    return dnnlib.EasyDict(
        training_set_kwargs=dnnlib.EasyDict(class_name='training.toy_data.ToyDataset', path='toy:ring6'),
        G_opt_kwargs=dnnlib.EasyDict(class_name='torch.optim.Adam', lr=1e-4, betas=[0.5, 0.999], eps=1e-8),
        D_opt_kwargs=dnnlib.EasyDict(class_name='torch.optim.Adam', lr=1e-4, betas=[0.5, 0.999], eps=1e-8),
        loss_kwargs=dnnlib.EasyDict(class_name='training.loss.StyleGAN2Loss', r1_gamma=0), D_reg_interval=None)

def test_the_option_reaches_the_prior_kwargs_and_defaults_to_linear():
    assert mdgan_cli.prior_kwargs(dict(prior=['mdgan']), _c()).e_out == 'linear'
    assert mdgan_cli.prior_kwargs(dict(prior=['mdgan'], mdgan_e_out='support'), _c()).e_out == 'support'

@pytest.mark.parametrize('z_dist, squash', [('uniform01', torch.sigmoid), ('uniform', lambda e: (torch.tanh(e) + 1) * 0.5)])
def test_support_makes_G_s_latent_the_squashed_output(z_dist, squash):
    e = torch.linspace(-8, 8, 33, dtype=torch.float32).reshape(-1, 1).repeat(1, 3)
    z = networks.encoder_latent(e, z_dist, 'support')
    u = 0.5 * (1 + torch.erf(z / math.sqrt(2)))  # Phi(z): what the toy mapping turns z into, as a U[0, 1] variable
    torch.testing.assert_close(u, squash(e).clamp(1e-6, 1 - 1e-6), atol=2e-6, rtol=0)
    assert torch.equal(networks.encoder_latent(e, z_dist, 'linear'), e)
    assert torch.equal(networks.encoder_latent(e, 'normal', 'support'), e)  # N(0, I) latents: nothing to squash

def test_support_keeps_E_s_gradient_alive_where_Phi_is_flat():
    e = torch.full([1, 3], -6.0, requires_grad=True)
    grads = {}
    for e_out in networks.E_OUTPUTS:
        z = networks.encoder_latent(e, 'uniform01', e_out)
        u = 0.5 * (1 + torch.erf(z / math.sqrt(2)))
        grads[e_out] = torch.autograd.grad(u.sum(), e)[0][0, 0].item()
    assert grads['linear'] < 1e-8                          # Phi'(-6) = 6e-9
    assert grads['support'] == pytest.approx(torch.sigmoid(torch.tensor(-6.0)).item() * (1 - torch.sigmoid(torch.tensor(-6.0)).item()), rel=1e-3)

def test_the_prior_encodes_through_the_option():
    torch.manual_seed(0)
    G = ToyGenerator(z_dim=3, c_dim=0, w_dim=3, img_resolution=1, img_channels=2, mapping_kwargs=dict(z_dist='uniform01'))
    D = ToyDiscriminator(c_dim=0, img_resolution=1, img_channels=2)
    x = torch.randn([7, 2, 1, 1]) * 5
    got = {}
    for e_out in networks.E_OUTPUTS:
        loss = PriorLoss(device='cpu', G_mapping=G.mapping, G_synthesis=G.synthesis, D=D, augment_pipe=None,
                         prior_kwargs=[dict(name='mdgan', e_out=e_out)], style_mixing_prob=0, r1_gamma=0, pl_weight=0)
        loss.setup(dnnlib.EasyDict(G=G, G_ema=G, D=D, augment_pipe=None, dataset_kwargs=None, random_seed=0, rank=0, num_gpus=1,
                                   run_dir=None, batch_size=7, batch_gpu=7, device='cpu'))
        prior = loss.priors[0]
        with torch.no_grad():
            raw = prior.E(x, torch.zeros([7, 0]))
            got[e_out] = (raw, prior.encode(x))
    raw, linear = got['linear']
    assert torch.equal(linear, raw)
    raw, support = got['support']
    torch.testing.assert_close(support, torch.special.ndtri(torch.sigmoid(raw).clamp(1e-6, 1 - 1e-6)))
    assert not torch.allclose(support, raw)
