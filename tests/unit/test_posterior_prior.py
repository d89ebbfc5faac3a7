"""The P2GAN prior's hooks (priors/posterior/prior.py) and options (priors/posterior/cli.py): targets of Eq. 8-9, L_z pairing, realness, stage switch, EMA test factors, BN statistics, option checks."""

import click
import numpy as np
import pytest
import torch
from click.testing import CliRunner

import dnnlib
import train
from priors import registry
from priors.posterior import cli as posterior_cli
from priors.posterior import modules as posterior_modules
from priors.posterior import posterior_math as pm
from training.loss import RealBatch

G = pm.Gaussian

#----------------------------------------------------------------------------

def _prior(**kwargs):
    return registry.build_prior('posterior', **dict(dict(code_dim=2, p_a=(-4, 1), p_b=(4, 3)), **kwargs))

# A stand-in D whose raw output for image i is fixed: (mu_i, sigma_i) from a table indexed by the image's first pixel.
class _TableD(torch.nn.Module):
    def __init__(self, table):
        super().__init__()
        self.table = table  # [num_images, 2d]
    def forward(self, img, c):
        return self.table[img[:, 0, 0, 0].long()]

def _setup(prior, table, channels=(3,)):
    side = posterior_modules.PosteriorSide(channels=list(channels), code_dim=prior.code_dim, norm=prior.norm) if prior.modules else None
    G_module = torch.nn.Module()
    G_module.synthesis = torch.nn.Module()
    G_module.synthesis.side = side
    ctx = dnnlib.EasyDict(device=torch.device('cpu'), G=G_module, D=_TableD(table), augment_pipe=None, num_gpus=1, rank=0)
    prior.setup(ctx)
    return side

def _batch(n):
    img = torch.arange(n, dtype=torch.float32)[:, None, None, None].expand(n, 3, 4, 4).contiguous()
    return RealBatch(img, torch.zeros([n, 0]))

#----------------------------------------------------------------------------

def test_config_updates_follow_the_options():
    prior = _prior(code_dim=5)
    assert prior.D_kwargs_update() == {'out_dim': 10}
    side = prior.G_kwargs_update()['synthesis_kwargs.side_kwargs']
    assert side['class_name'] == 'priors.posterior.modules.PosteriorSide'
    assert (side['test_mu'], side['test_sigma'], side['code_dim']) == (0.0, 2.0, 5)      # Eq. 19 for N(-4,1), N(4,3)
    assert _prior(code='noise').G_kwargs_update()['synthesis_kwargs.side_kwargs']['test_sigma'] == 1.0
    assert _prior(modules=False).G_kwargs_update() is None
    assert prior.owns_head()

@pytest.mark.parametrize('step, target', [('Dreal', (4.0, 3.0)), ('Dgen', (-4.0, 1.0)), ('Gmain', (0.0, 2.0))])
def test_each_step_pulls_to_its_prior(step, target):
    for dis in ('closed', 'sampled'):
        prior = _prior(discrepancy=dis)
        at_target = prior.D_outputs(torch.tensor([[target[0]] * 2 + [target[1]] * 2] * 3))
        assert float(prior.adversarial_loss(step, at_target, batch=None).abs().max()) < 1e-6
        # mu one off in both dimensions: Dis = 1/2 (1 + 1) = 1, exactly (closed) or on average (sampled: eps drops out).
        off = prior.D_outputs(torch.tensor([[target[0] + 1] * 2 + [target[1]] * 2] * 4096))
        loss = prior.adversarial_loss(step, off, batch=None)
        np.testing.assert_allclose(float(loss.mean()), 1.0, rtol=1e-6)
        # sigma one off: eps enters; the sampled loss averages to the closed form's 1.
        off = prior.D_outputs(torch.tensor([[target[0]] * 2 + [target[1] + 1] * 2] * 4096))
        loss = prior.adversarial_loss(step, off, batch=None)
        np.testing.assert_allclose(float(loss.mean()), 1.0, rtol=1e-6 if dis == 'closed' else 0.1)
    with pytest.raises(ValueError, match='no adversarial loss'):
        prior.adversarial_loss('Gpl', off, batch=None)

def test_realness_and_outputs_shapes():
    prior = _prior(sigma_act='softplus')
    raw = torch.tensor([[4.0, 4.0, -5.0, 9.0], [-4.0, -4.0, 1.0, 1.0]])
    out = prior.D_outputs(raw)
    assert float(out.sigma.min()) > 0
    r = prior.realness(out)
    assert r.shape == (2, 1) and float(r[0]) > 0 > float(r[1])
    with pytest.raises(ValueError, match='out_dim=4'):
        prior.D_outputs(torch.zeros([2, 3]))

def test_codes_come_from_D_on_the_reals_and_L_z_reconstructs_them():
    prior = _prior(lambda_z=10.0)
    table = torch.tensor([[1.0, 2.0, 0.5, 1.5], [3.0, -1.0, 2.0, 0.1], [0.0, 0.0, 1.0, 1.0]])
    _setup(prior, table)
    torch.manual_seed(0)
    side = prior.synthesis_inputs(torch.zeros([2, 8]), None, step='Gmain', batch=_batch(3))['side']
    torch.manual_seed(0)
    eps = torch.randn([2, 2])
    expected = eps * table[:2, 2:] + table[:2, :2]
    np.testing.assert_allclose(side.numpy(), expected.numpy(), rtol=1e-6)

    # D(x_g) equal to D(x_r): L_z is 0; otherwise lambda * sum |eps sigma_g + mu_g - z|.
    assert float(prior.extra_loss('Gmain', None, None, None, None, outputs=prior.D_outputs(table[:2])).abs().max()) < 1e-6
    prior.synthesis_inputs(torch.zeros([2, 8]), None, step='Gmain', batch=_batch(3))
    fake = prior.D_outputs(torch.tensor([[0.0, 0.0, 1.0, 1.0]] * 2))
    eps, code = prior._gmain[1], prior._gmain[2]
    ref = 10 * (eps * 1.0 + 0.0 - code).abs().sum(1)
    np.testing.assert_allclose(prior.extra_loss('Gmain', None, None, None, None, outputs=fake).numpy(), ref.numpy(), rtol=1e-6)
    assert prior.extra_loss('Dgen', None, None, None, None, outputs=fake) is None

    # Fewer reals than fakes is an error that says why.
    with pytest.raises(ValueError, match='as many real images'):
        prior.synthesis_inputs(torch.zeros([4, 8]), None, step='Dgen', batch=_batch(3))

def test_noise_code_ablation_feeds_standard_normal():
    prior = _prior(code='noise', lambda_z=0)
    _setup(prior, torch.zeros([4, 4]))
    torch.manual_seed(1)
    side = prior.synthesis_inputs(torch.zeros([4, 8]), None, step='Dgen', batch=_batch(4))['side']
    torch.manual_seed(1)
    assert torch.equal(side, torch.randn([4, 2]))

def test_on_progress_switches_the_stage_and_updates_the_buffers():
    prior = _prior(pretrain_kimg=0.01, test_factors='ema', test_ema=0.9)
    table = torch.tensor([[1.0, 2.0, 0.5, -1.5], [3.0, -1.0, 2.0, 0.5]])
    side = _setup(prior, table)
    prior.on_progress(0)
    assert float(side.stage) == 0
    prior.on_progress(10)
    assert float(side.stage) == 1

    # EMA of the batch-mean real factors (|sigma|), from the Gmain codes since the last update.
    prior.synthesis_inputs(torch.zeros([2, 8]), None, step='Gmain', batch=_batch(2))
    prior.synthesis_inputs(torch.zeros([2, 8]), None, step='Dgen', batch=_batch(2))   # not counted
    prior.on_progress(20)
    np.testing.assert_allclose(side.test_mu.numpy(), 0.9 * 0.0 + 0.1 * np.array([2.0, 0.5]), rtol=1e-6)
    np.testing.assert_allclose(side.test_sigma.numpy(), 0.9 * 2.0 + 0.1 * np.array([1.25, 1.0]), rtol=1e-6)
    before = side.test_mu.clone()
    prior.on_progress(24)                                                              # nothing new: unchanged
    assert torch.equal(side.test_mu, before)

    # BN running statistics: the mean of the recorded batch statistics, with momentum 0.1.
    x1, x2 = torch.randn([4, 3, 2, 2]) * 2, torch.randn([4, 3, 2, 2]) + 1
    side.train()
    side(0, x1, torch.zeros([4, 2]))
    side(0, x2, torch.zeros([4, 2]))
    rank_state = prior.rank_state_dict()
    assert len(rank_state['bn_records']) == 2
    prior.on_progress(28)
    m = (pm.batch_moments(x1)[0] + pm.batch_moments(x2)[0]) / 2
    np.testing.assert_allclose(side.bn0_mean.numpy(), 0.1 * m.numpy(), rtol=1e-5, atol=1e-7)
    assert side.recorder == []
    prior.load_rank_state_dict(rank_state)
    assert len(side.recorder) == 2

def test_bad_hyperparameters_are_named():
    with pytest.raises(ValueError, match='same distribution'):
        _prior(p_a=(1, 2), p_b=(1, 2))
    with pytest.raises(ValueError, match='discrepancy'):
        _prior(discrepancy='exact')
    with pytest.raises(ValueError, match='code="noise"'):
        _prior(code='noise', test_factors='ema')
    with pytest.raises(ValueError, match=r'p_a = N\(0.0, -1.0'):
        _prior(p_a=(0, -1))

#----------------------------------------------------------------------------

def _config(max_size=100, labels=False):
    return dnnlib.EasyDict(training_set_kwargs=dnnlib.EasyDict(max_size=max_size, use_labels=labels))

def test_cli_defaults_are_the_papers_settings():
    kwargs = posterior_cli.prior_kwargs(dict(), _config(202599))
    assert (kwargs.code_dim, kwargs.p_a, kwargs.p_b, kwargs.lambda_z) == (20, [-5.0, 1.0], [5.0, 3.0], 10.0)
    np.testing.assert_allclose(kwargs.pretrain_kimg, 405.198)                          # 2 CelebA epochs
    kwargs = posterior_cli.prior_kwargs(dict(post_preset='cifar'), _config(60000))
    assert (kwargs.code_dim, kwargs.p_a, kwargs.p_b, kwargs.pretrain_kimg) == (5, [-4.0, 1.0], [4.0, 3.0], 600.0)
    assert posterior_cli.prior_kwargs(dict(post_modules=False), _config(None)).pretrain_kimg == 0
    assert posterior_cli.GaussianParam().convert('-5,1', None, None) == (-5.0, 1.0)

@pytest.mark.parametrize('opts, config, match', [
    (dict(post_modules=False, post_norm='in'), _config(), '--post-norm has no effect with --post-modules=0'),
    (dict(post_test_ema=0.5), _config(), '--post-test-ema only applies to --post-test=ema'),
    (dict(post_code='noise', post_test='ema'), _config(), '--post-test=theory'),
    (dict(), _config(labels=True), '--cond=0'),
    (dict(), _config(None), 'set --post-pretrain-kimg'),
    (dict(post_pa=(1.0, 2.0), post_pb=(1.0, 2.0)), _config(), 'same distribution'),
])
def test_cli_refuses_bad_combinations(opts, config, match):
    with pytest.raises(click.ClickException, match=match):
        posterior_cli.prior_kwargs(opts, config)

def test_help_lists_the_options_with_their_equations():
    result = CliRunner().invoke(train.main, ['--help'], terminal_width=200)
    assert result.exit_code == 0
    assert 'Options of --prior=posterior' in result.output
    for flag, eq in [('--post-dis', 'Eq. 7'), ('--post-lambda', 'Eq. 12-13'), ('--post-norm', 'Eq. 11'), ('--post-test', 'Eq. 19'),
                     ('--post-code', 'Table 5'), ('--post-pretrain-kimg', '§4.5')]:
        assert flag in result.output and eq in result.output

def test_toy_generator_accepts_the_side_module():
    from training import toy_networks
    side_kwargs = dict(class_name='priors.posterior.modules.PosteriorSide', code_dim=2)
    G_ = toy_networks.ToyGenerator(z_dim=2, c_dim=0, w_dim=2, img_resolution=1, img_channels=2,
                                   synthesis_kwargs=dict(side_kwargs=side_kwargs))
    assert isinstance(G_.synthesis.side, posterior_modules.PosteriorSide)
    out = G_(torch.randn([8, 2]), None, side=torch.randn([8, 2]))
    assert out.shape[0] == 8 and torch.isfinite(out).all()

#----------------------------------------------------------------------------

def test_composes_with_rf_and_gmm_at_configuration_time(tmp_path):
    from training import synthetic
    data = synthetic.make_synthetic_dataset(str(tmp_path / 'synth16.zip'), num_images=8, resolution=16, num_modes=2)
    base_args = ['--outdir', str(tmp_path / 'runs'), '--data', data, '--cfg=stylegan', '--cbase=256', '--cmax=16', '--map=2',
                 '--batch=4', '--mbstd-group=2', '--post-dim=3', '-n']
    result = CliRunner().invoke(train.main, base_args + ['--prior=rf,posterior'], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert '"out_dim": 6' in result.output and '"feature_kwargs"' in result.output and '"side_kwargs"' in result.output
    result = CliRunner().invoke(train.main, base_args + ['--prior=gmm,posterior', '--prior-feature=tiny'], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert 'priors.sampler.PriorResampler' in result.output and '"out_dim": 6' in result.output
