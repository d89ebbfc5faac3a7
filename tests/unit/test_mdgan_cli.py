"""Unit tests for priors/mdgan/cli.py: the --mdgan-* options -> MDGANPrior kwargs, defaults (paper and toy), and the errors that name the flag."""

import click
import pytest

import dnnlib
from priors import cli
from priors.mdgan import cli as mdgan_cli

#----------------------------------------------------------------------------

def _c(path='data.zip', **loss_kwargs):
    return dnnlib.EasyDict(
        training_set_kwargs=dnnlib.EasyDict(class_name='training.dataset.ImageFolderDataset', path=path),
        G_opt_kwargs=dnnlib.EasyDict(class_name='torch.optim.Adam', lr=0.002, betas=[0, 0.99], eps=1e-8),
        D_opt_kwargs=dnnlib.EasyDict(class_name='torch.optim.Adam', lr=0.003, betas=[0, 0.99], eps=1e-8),
        loss_kwargs=dnnlib.EasyDict(class_name='training.loss.StyleGAN2Loss', r1_gamma=6.5, **loss_kwargs),
        D_reg_interval=16)


def test_defaults_are_the_paper_s():
    kwargs = mdgan_cli.prior_kwargs(dict(prior=['mdgan']), _c())
    assert (kwargs.mode, kwargs.lambda1, kwargs.lambda2, kwargs.md_lambda, kwargs.g_steps) == ('reg', 0.2, 0.4, 1.0, 2)
    assert (kwargs.distance, kwargs.distance_reduce, kwargs.d2_augment) == ('pixel', 'mean', True)
    # E and D2 follow G's and D's optimizers; D2's R1 the run's gamma and D's lazy interval.
    assert kwargs.E_opt_kwargs.lr == 0.002 and kwargs.D2_opt_kwargs.lr == 0.003
    assert kwargs.d2_r1_gamma == 6.5 and kwargs.d2_reg_interval == 16


def test_toy_data_gets_the_toy_lambdas_and_options_override():
    kwargs = mdgan_cli.prior_kwargs(dict(prior=['mdgan']), _c(path='toy:ring6'))
    assert (kwargs.lambda1, kwargs.lambda2) == (0.005, 0.005)
    kwargs = mdgan_cli.prior_kwargs(dict(prior=['mdgan'], mdgan_mode='md', mdgan_lambda=0.5, mdgan_g_steps=1, mdgan_e_lr=0.01,
                                         mdgan_d2_lr=0.02, mdgan_d2_gamma=0, mdgan_distance='dfeat'), _c())
    assert (kwargs.mode, kwargs.md_lambda, kwargs.g_steps, kwargs.distance) == ('md', 0.5, 1, 'dfeat')
    assert (kwargs.E_opt_kwargs.lr, kwargs.D2_opt_kwargs.lr, kwargs.d2_r1_gamma) == (0.01, 0.02, 0.0)


def test_errors_name_the_flag():
    with pytest.raises(click.ClickException, match='--mdgan-lambda1 only applies to --mdgan-mode=reg'):
        mdgan_cli.prior_kwargs(dict(mdgan_mode='md', mdgan_lambda1=0.1), _c())
    with pytest.raises(click.ClickException, match='--mdgan-g-steps only applies to --mdgan-mode=md'):
        mdgan_cli.prior_kwargs(dict(mdgan_g_steps=1), _c())
    with pytest.raises(click.ClickException, match='--mdgan-distance: unknown distance "vgg"'):
        mdgan_cli.prior_kwargs(dict(mdgan_distance='vgg'), _c())
    with pytest.raises(click.ClickException, match='needs --gan-loss=logistic'):
        mdgan_cli.prior_kwargs(dict(), _c(gan_loss='hinge'))


def test_configure_writes_the_prior_and_refuses_its_options_without_it():
    c = cli.configure(_c(), dict(prior=['mdgan'], data='data.zip', mdgan_mode='md'))
    (entry,) = c.loss_kwargs.prior_kwargs
    assert c.loss_kwargs.class_name == 'priors.loss.PriorLoss' and entry.name == 'mdgan' and entry.mode == 'md'
    with pytest.raises(click.ClickException, match='--mdgan-mode only applies to --prior=mdgan'):
        cli.configure(_c(), dict(prior=['none'], data='data.zip', mdgan_mode='md'))
