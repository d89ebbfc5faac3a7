"""Priors that compose either work or are refused at start-up with one line (issue 18 item 7, issue 20):
the masked prior with a head owner scores with the owner's realness at sampling time, its training-time scoring
pass leaves a synthesis side module's BN statistics alone, and pairs that cannot work stop train.py with one
line naming what applies instead."""

import pytest
import torch
from click.testing import CliRunner

import dnnlib
import train
from priors import base
from priors import cli
from priors.masked import prior as masked
from priors.posterior import modules as posterior_modules
from priors.posterior import prior as posterior

#----------------------------------------------------------------------------
# train.py's own configuration, in-process (a dry run).

def _dry_run(monkeypatch, *args):
    seen = []
    configure = cli.configure
    monkeypatch.setattr(cli, 'configure', lambda c, opts: seen.append(configure(c, opts)) or seen[-1])
    result = CliRunner().invoke(train.main, ['--dry-run', '--outdir=unused-runs', *args])
    return result, (seen[-1] if seen else None)

@pytest.mark.parametrize('args, message', [
    (['--prior=mdgan,posterior'], 'Error: --prior=mdgan,posterior: Prior "mdgan" reads D\'s output as one logit per image, but prior '
                                  '"posterior" owns D\'s head and replaces that logit; they cannot be combined: train with one of them'),
    (['--prior=posterior,mdgan'], 'Error: --prior=posterior,mdgan: Prior "mdgan" reads D\'s output as one logit per image'),
    (['--prior=posterior', '--gan-loss=hinge'], 'Error: --prior=posterior: Prior "posterior" owns D\'s head and replaces the adversarial '
                                                'loss with its own, so gan_loss="hinge" would be ignored; leave it at the default, logistic'),
    (['--prior=rf,posterior', '--gan-loss=lsgan'], 'gan_loss="lsgan" would be ignored'),
    (['--prior=mdgan', '--gan-loss=hinge'], 'Error: --prior=mdgan needs --gan-loss=logistic'),
    (['--prior=masked,mdgan', '--mdgan-mode=md'], 'Error: --prior=masked,mdgan: Prior "mdgan" replaces the latents of Gmain, Dgen '
                                                  'outright, so the latents that prior "masked" chooses would be discarded'),
    (['--prior=mdgan,masked', '--mdgan-mode=md'], 'Prior "mdgan" replaces the latents of Gmain, Dgen outright'),
])
def test_pairs_that_cannot_work_are_one_line_at_start_up(monkeypatch, args, message):
    result, _c = _dry_run(monkeypatch, *args)
    assert result.exit_code != 0 and not isinstance(result.exception, (ValueError, TypeError)), result.output
    lines = [line for line in result.output.splitlines() if line.startswith('Error:')]
    assert len(lines) == 1 and message in lines[0], result.output[-1000:]
    assert 'Traceback' not in result.output


@pytest.mark.parametrize('args', [['--prior=masked,posterior'], ['--prior=posterior,masked,rf'], ['--prior=gmm,masked'],
                                  ['--prior=rf,mdgan'], ['--prior=masked,mdgan'], ['--prior=gmm,posterior']])
def test_pairs_that_compose_configure(monkeypatch, args):
    result, _c = _dry_run(monkeypatch, *args)
    assert result.exit_code == 0, result.output[-1000:]


def test_the_masked_transform_gets_the_head_owner_s_realness(monkeypatch):
    _result, c = _dry_run(monkeypatch, '--prior=masked,posterior', '--post-sigma=softplus')
    (spec,) = c.sample_transform_kwargs
    assert spec.realness == dict(class_name='priors.posterior.prior.PosteriorRealness', code_dim=20, p_a=[-5.0, 1.0],
                                 p_b=[5.0, 3.0], sigma_act='softplus')
    _result, c = _dry_run(monkeypatch, '--prior=masked')
    assert 'realness' not in c.sample_transform_kwargs[0]  # the baseline's snapshots are as before


def test_a_head_owner_without_sampling_realness_is_refused():
    class Owner(base.Prior):
        name = 'owner'
        def D_outputs(self, raw): return raw
        def adversarial_loss(self, step, outputs, *, batch): return outputs
        def realness(self, outputs): return outputs
    with pytest.raises(ValueError, match=r'scores images with D, but prior "owner" owns D\'s head and gives no realness_kwargs'):
        base.bind_realness([masked.MaskedPrior().sample_transform_kwargs()], [masked.MaskedPrior(), Owner()])

#----------------------------------------------------------------------------
# Sampling time: a D whose first output (mu_1) ranks the candidates opposite to P2GAN's realness. The transform
# keeps the top 1 of its pool, so it must return the candidate of highest realness, not of highest mu_1.

class _G:
    class mapping:  # noqa: N801
        def __new__(cls, z, c, skip_w_avg_update=False):
            return z
    class synthesis:  # noqa: N801
        def __new__(cls, ws):
            return ws

def _D(img, c):
    x = img[:, :1].to(torch.float32)
    return torch.cat([x, -10 * x], dim=1)   # d = 1: mu = x, sigma = -10 x; realness is decreasing in x

def test_sampling_scores_with_the_realness_not_mu1():
    head = posterior.PosteriorPrior(code_dim=1)
    realness = head.realness(head.D_outputs(_D(torch.linspace(-1, 1, 5)[:, None], None)))[:, 0]
    assert torch.all(realness[1:] < realness[:-1])  # the construction: mu_1 and the realness rank in opposite orders
    z = torch.randn([6, 3], generator=torch.Generator().manual_seed(0))
    c = torch.zeros([6, 0])
    with_realness = masked.MaskedSampleTransform(mode='masked', rate=1 / 32, pool=32, realness=head.realness_kwargs())
    with_mu1 = masked.MaskedSampleTransform(mode='masked', rate=1 / 32, pool=32)
    z_real, _ = with_realness(z, c, G=_G, D=_D)
    z_mu1, _ = with_mu1(z, c, G=_G, D=_D)
    assert torch.all(z_real[:, 0] < z_mu1[:, 0])  # same candidates (seeded by z): lowest x vs highest x
    # The realness it reads is the head owner's, the same function as at training time.
    raw = torch.randn([7, 2])
    torch.testing.assert_close(with_realness.realness(raw), head.realness(head.D_outputs(raw)), rtol=0, atol=0)

#----------------------------------------------------------------------------
# Training time: a synthesis network with P2GAN's side module (BN statistics recorded by training-mode calls, the
# posterior prior folds them into the running averages once per iteration). The masked prior's scoring pass must
# record nothing and leave the module in training mode.

class _Mapping(torch.nn.Module):
    z_dim = 4
    def forward(self, z, c, skip_w_avg_update=False):
        return z

class _SideSynthesis(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.side = posterior_modules.PosteriorSide(channels=[4], code_dim=2)
    def forward(self, ws, side=None):
        return self.side(0, ws * 3 + 1, side)[:, :, None, None]

def test_the_scoring_pass_records_no_bn_statistics():
    G_synthesis = _SideSynthesis().train()
    G_synthesis.side.recorder = []
    running = [buf.clone() for buf in G_synthesis.side.buffers()]
    prior = masked.MaskedPrior(presample=2.0)
    ctx = dnnlib.EasyDict(device=torch.device('cpu'), G_mapping=_Mapping(), G_synthesis=G_synthesis, score=lambda img, c: img[:, :1, 0, 0],
                          random_seed=1, rank=0, num_gpus=1, batch_size=8, batch_gpu=4)
    prior.setup(ctx)
    z = torch.zeros([4, 4])
    prior.transform_latents(z, torch.zeros([4, 0]), step='Gmain', role='main', batch=None)
    assert G_synthesis.side.recorder == []                           # nothing for the running averages
    assert G_synthesis.training and G_synthesis.side.training         # modes restored
    for before, after in zip(running, G_synthesis.side.buffers()):
        assert torch.equal(before, after)
    # A training step's own call still records (the context manager only covers the scoring pass).
    G_synthesis(torch.randn([4, 4]), side=torch.zeros([4, 2]))
    assert len(G_synthesis.side.recorder) == 1

#----------------------------------------------------------------------------
