"""--mdgan-distance-reduce reaches the distance d(x, G(E(x))) of Reg-GAN and MDGAN: 'sum' is the paper's ||x - G(E(x))||^2 (App. A), 'mean' (default) divides by the number of coordinates."""

import numpy as np
import torch

import dnnlib
from priors.mdgan import cli as mdgan_cli
from priors.mdgan import prior as mdgan_prior

def _c(path):
    return dnnlib.EasyDict(
        training_set_kwargs=dnnlib.EasyDict(class_name='training.toy_data.ToyDataset', path=path),
        G_opt_kwargs=dnnlib.EasyDict(class_name='torch.optim.Adam', lr=1e-4, betas=[0.5, 0.999], eps=1e-8),
        D_opt_kwargs=dnnlib.EasyDict(class_name='torch.optim.Adam', lr=1e-4, betas=[0.5, 0.999], eps=1e-8),
        loss_kwargs=dnnlib.EasyDict(class_name='training.loss.StyleGAN2Loss', r1_gamma=0), D_reg_interval=None)

def test_the_option_reaches_the_prior_kwargs():
    assert mdgan_cli.prior_kwargs(dict(prior=['mdgan']), _c('toy:ring6')).distance_reduce == 'mean'
    assert mdgan_cli.prior_kwargs(dict(prior=['mdgan'], mdgan_distance_reduce='sum'), _c('toy:ring6')).distance_reduce == 'sum'

def test_sum_is_the_squared_euclidean_distance_of_the_points():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(5, 2, 1, 1)), rng.normal(size=(5, 2, 1, 1))
    ref = ((x - y) ** 2).reshape(5, -1).sum(axis=1)  # float64: ||x - G(E(x))||^2 of App. A
    kwargs = {k: v for k, v in mdgan_cli.prior_kwargs(dict(prior=['mdgan'], mdgan_distance_reduce='sum'), _c('toy:ring6')).items()}
    got_sum = mdgan_prior.MDGANPrior(**kwargs).distance_of(torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32), None)
    kwargs['distance_reduce'] = 'mean'
    got_mean = mdgan_prior.MDGANPrior(**kwargs).distance_of(torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32), None)
    np.testing.assert_allclose(got_sum.double().numpy(), ref, rtol=1e-6)
    np.testing.assert_allclose(got_mean.double().numpy(), ref / 2, rtol=1e-6)  # 2 coordinates: the mean halves lambda1's term
