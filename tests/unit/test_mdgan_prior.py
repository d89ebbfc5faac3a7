"""Unit tests for priors/mdgan/prior.py on the toy MLP networks: each step's gradients against the paper's objectives written out by hand (Reg-GAN Eq. 1-2, MDGAN App. A steps 2-3 and 6-7), and the option checks."""

import pytest
import torch

import dnnlib
from priors.loss import PriorLoss
from priors.mdgan import prior as mdgan_prior
from training.loss import PhaseBatch
from training.toy_networks import ToyDiscriminator, ToyGenerator

#----------------------------------------------------------------------------
# A PriorLoss with one mdgan prior on toy networks, set up like the loop does,
# and one round of data. No style mixing, path length, R1 or augmentation in
# the loop's own steps, so that the references below are the whole objective.

N = 6

def _setup(D_kwargs={}, **prior_kwargs):
    torch.manual_seed(0)
    G = ToyGenerator(z_dim=2, c_dim=0, w_dim=2, img_resolution=1, img_channels=2).train().requires_grad_(False)
    D = ToyDiscriminator(c_dim=0, img_resolution=1, img_channels=2, **D_kwargs).train().requires_grad_(False)
    loss = PriorLoss(device='cpu', G_mapping=G.mapping, G_synthesis=G.synthesis, D=D, augment_pipe=None,
                     prior_kwargs=[dict(name='mdgan', **prior_kwargs)], style_mixing_prob=0, r1_gamma=0, pl_weight=0)
    loss.setup(dnnlib.EasyDict(G=G, G_ema=G, D=D, augment_pipe=None, dataset_kwargs=None, random_seed=0, rank=0, num_gpus=1,
                               run_dir=None, batch_size=N, batch_gpu=N, device='cpu'))
    prior = loss.priors[0]
    gen = torch.Generator().manual_seed(1)
    data = dnnlib.EasyDict(x=torch.randn([N, 2, 1, 1], generator=gen) * 3, c=torch.zeros([N, 0]),
                           z=torch.randn([N, 2], generator=gen), gen_c=torch.zeros([N, 0]))
    return dnnlib.EasyDict(G=G, D=D, loss=loss, prior=prior, E=prior.E, D2=prior.D2, data=data)

# Gradients of `module` after fn() ran with only `module` trainable (the loop's phase protocol).
def _phase_grads(module, fn):
    module.requires_grad_(True)
    for p in module.parameters():
        p.grad = None
    fn()
    module.requires_grad_(False)
    return [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in module.parameters()]

# Reference gradients of `objective` (a closure over the networks) w.r.t. module's parameters.
def _ref_grads(module, objective):
    params = list(module.parameters())
    module.requires_grad_(True)
    grads = list(torch.autograd.grad(objective(), params, allow_unused=True))
    module.requires_grad_(False)
    return grads

def _G(s, z):
    return s.G.synthesis(s.G.mapping(z, None, skip_w_avg_update=True))

def _neg_log_D(D, img):
    return -torch.log(torch.sigmoid(D(img, None)[:, 0]))

def _d(x, y):
    return ((x - y) ** 2).flatten(1).mean(dim=1)

def _assert_close(got, ref):
    assert len(got) == len(ref)
    for g, r in zip(got, ref):
        r = torch.zeros_like(g) if r is None else r
        assert torch.allclose(g, r, rtol=1e-4, atol=1e-6), (g - r).abs().max()
    assert any(float(g.abs().max()) > 0 for g in got)

#----------------------------------------------------------------------------
# Reg-GAN.

def test_reg_G_step_is_eq_1_with_the_sign_fixed():
    s = _setup(mode='reg', lambda1=0.2, lambda2=0.4)
    x, z = s.data.x, s.data.z
    got = _phase_grads(s.G, lambda: s.loss.accumulate_gradients('Gmain', x, s.data.c, z, s.data.gen_c, sync=True, gain=1))
    def T_G():
        rec = _G(s, s.E(x, None).detach())
        return _neg_log_D(s.D, _G(s, z)).mean() + (0.2 * _d(x, rec) + 0.4 * _neg_log_D(s.D, rec)).mean()
    _assert_close(got, _ref_grads(s.G, T_G))


def test_reg_E_phase_is_eq_2_and_touches_only_E():
    s = _setup(mode='reg', lambda1=0.2, lambda2=0.4)
    (phase,) = s.prior.extra_phases()
    assert phase.name == 'mdgan_E' and phase.module is s.E and phase.interval == 1
    x = s.data.x
    batch = PhaseBatch(x, s.data.c, s.data.z, s.data.gen_c)
    got = _phase_grads(s.E, lambda: phase.accumulate(batch, gain=2))
    assert all(p.grad is None for p in [*s.G.parameters(), *s.D.parameters()])
    def T_E():
        rec = _G(s, s.E(x, None))
        return 2 * (0.2 * _d(x, rec) + 0.4 * _neg_log_D(s.D, rec)).mean()
    _assert_close(got, _ref_grads(s.E, T_E))


def test_reg_leaves_D_alone():
    s = _setup(mode='reg')
    x, z = s.data.x, s.data.z
    got = _phase_grads(s.D, lambda: s.loss.accumulate_gradients('Dmain', x, s.data.c, z, s.data.gen_c, sync=True, gain=1))
    ref = _ref_grads(s.D, lambda: (-torch.log(1 - torch.sigmoid(s.D(_G(s, z), None)[:, 0]))).mean() + _neg_log_D(s.D, x).mean())
    _assert_close(got, ref)

#----------------------------------------------------------------------------
# MDGAN.

def test_md_manifold_G_step_puts_lambda_on_the_adversarial_term():
    s = _setup(mode='md', md_lambda=0.3)
    x, z = s.data.x, s.data.z
    got = _phase_grads(s.G, lambda: s.loss.accumulate_gradients('Gmain', x, s.data.c, z, s.data.gen_c, sync=True, gain=1))
    def step3():
        rec = _G(s, s.E(x, None).detach())
        return (_d(x, rec) + 0.3 * _neg_log_D(s.D, rec)).mean()
    _assert_close(got, _ref_grads(s.G, step3))


def test_md_manifold_D1_step_takes_reconstructions_as_fakes():
    s = _setup(mode='md')
    x, z = s.data.x, s.data.z
    got = _phase_grads(s.D, lambda: s.loss.accumulate_gradients('Dmain', x, s.data.c, z, s.data.gen_c, sync=True, gain=1))
    def step2():
        rec = _G(s, s.E(x, None)).detach()
        return (-torch.log(1 - torch.sigmoid(s.D(rec, None)[:, 0]))).mean() + _neg_log_D(s.D, x).mean()
    _assert_close(got, _ref_grads(s.D, step2))


def test_md_E_phase_follows_the_manifold_objective():
    s = _setup(mode='md', md_lambda=0.3)
    phase = s.prior.extra_phases()[0]
    x = s.data.x
    got = _phase_grads(s.E, lambda: phase.accumulate(PhaseBatch(x, s.data.c, s.data.z, s.data.gen_c), gain=1))
    def objective():
        rec = _G(s, s.E(x, None))
        return (_d(x, rec) + 0.3 * _neg_log_D(s.D, rec)).mean()
    _assert_close(got, _ref_grads(s.E, objective))


@pytest.mark.parametrize('iteration', [0, 1])
def test_md_D2_phase_is_step_6_with_lazy_R1(iteration):
    s = _setup(mode='md', d2_r1_gamma=3.0, d2_reg_interval=2)
    names = [phase.name for phase in s.prior.extra_phases()]
    assert names == ['mdgan_E', 'mdgan_D2', 'mdgan_G2']
    phase = s.prior.extra_phases()[1]
    assert phase.module is s.D2 and phase.module is not s.D
    s.loss.on_progress(iteration * N)
    x, z = s.data.x, s.data.z
    got = _phase_grads(s.D2, lambda: phase.accumulate(PhaseBatch(x, s.data.c, z, s.data.gen_c), gain=1))
    def step6():
        real = _G(s, s.E(x, None)).detach().requires_grad_(True)
        fake = _G(s, z).detach()
        real_logits = s.D2(real, None)[:, 0]
        loss = (-torch.log(torch.sigmoid(real_logits)) - torch.log(1 - torch.sigmoid(s.D2(fake, None)[:, 0]))).mean()
        if iteration % 2 == 0:  # R1 every 2 iterations, weight gamma / 2 x interval
            (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
            loss = loss + grad.square().flatten(1).sum(dim=1).mean() * 3.0 / 2 * 2
        return loss
    _assert_close(got, _ref_grads(s.D2, step6))


def test_md_diffusion_G_step_is_step_7():
    s = _setup(mode='md')
    phase = s.prior.extra_phases()[2]
    assert phase.module == 'G'
    z = s.data.z
    got = _phase_grads(s.G, lambda: phase.accumulate(PhaseBatch(s.data.x, s.data.c, z, s.data.gen_c), gain=1))
    _assert_close(got, _ref_grads(s.G, lambda: _neg_log_D(s.D2, _G(s, z)).mean()))


def test_md_one_G_step_folds_step_7_into_the_manifold_step():
    s = _setup(mode='md', md_lambda=0.3, g_steps=1)
    assert [phase.name for phase in s.prior.extra_phases()] == ['mdgan_E', 'mdgan_D2']
    x, z = s.data.x, s.data.z
    got = _phase_grads(s.G, lambda: s.loss.accumulate_gradients('Gmain', x, s.data.c, z, s.data.gen_c, sync=True, gain=1))
    def both():
        rec = _G(s, s.E(x, None).detach())
        return (_d(x, rec) + 0.3 * _neg_log_D(s.D, rec)).mean() + _neg_log_D(s.D2, _G(s, z)).mean()
    _assert_close(got, _ref_grads(s.G, both))

#----------------------------------------------------------------------------
# Distances other than pixels.

def test_dfeat_distance_compares_D_s_last_hidden_features():
    s = _setup(mode='reg', distance='dfeat')
    x, y = s.data.x, s.data.x.flip(0)
    def features(img):
        h = img.flatten(1)
        for layer in s.D.layers:
            h = torch.tanh(layer(h))
        return h
    ref = ((features(x) - features(y)) ** 2).mean(dim=1)
    assert torch.allclose(s.prior.distance_of(x, y, s.data.c), ref, atol=1e-6)


def test_extractor_distance_uses_the_named_extractor(monkeypatch):
    from priors import features
    monkeypatch.setattr(features, 'build_extractor', lambda name, **kwargs: (lambda img: img.flatten(1) * 2) if name == 'double' else None)
    s = _setup(mode='reg', distance='double')
    x, y = s.data.x, s.data.x.flip(0)
    assert torch.allclose(s.prior.distance_of(x, y, s.data.c), 4 * ((x - y) ** 2).flatten(1).mean(dim=1))

#----------------------------------------------------------------------------
# Composition with priors that change D.

class ScaledPoints(torch.nn.Module):
    # A frozen feature module like rf's encoder: its weights are a buffer that a prior fills after D is built.
    def __init__(self, img_resolution, img_channels):
        super().__init__()
        self.num_features = img_channels
        self.register_buffer('scale', torch.rand([img_channels]))

    def forward(self, img):
        return img.flatten(1) * self.scale


def test_D2_takes_D_s_frozen_features_before_the_first_step():
    s = _setup(mode='md', D_kwargs=dict(feature_kwargs=dict(class_name='tests.unit.test_mdgan_prior.ScaledPoints')))
    assert s.prior.E.features is None and s.D2.features is not None
    s.D.features.scale.copy_(torch.tensor([7.0, -1.0]))  # e.g. rf's pretrained encoder, loaded in its own setup
    s.loss.on_progress(0)  # runs the pretrain() hooks of a fresh run
    assert s.D2.features.scale.tolist() == [7.0, -1.0]


def test_a_D_with_another_prior_s_head_is_refused():
    with pytest.raises(ValueError, match='need D to output one logit per image, but D has out_dim=4'):
        _setup(mode='reg', D_kwargs=dict(out_dim=4))

def test_md_refuses_conditional_runs(tiny_G_kwargs, tiny_D_kwargs):
    from training import networks
    G = networks.Generator(**dict(tiny_G_kwargs, c_dim=3))
    D = networks.Discriminator(**dict(tiny_D_kwargs, c_dim=3))
    loss = PriorLoss(device='cpu', G_mapping=G.mapping, G_synthesis=G.synthesis, D=D, prior_kwargs=[dict(name='mdgan', mode='md')])
    ctx = dnnlib.EasyDict(G=G, G_ema=G, D=D, augment_pipe=None, dataset_kwargs=None, random_seed=0, rank=0, num_gpus=1,
                          run_dir=None, batch_size=4, batch_gpu=4, device='cpu')
    with pytest.raises(ValueError, match='md is not available for conditional runs yet'):
        loss.setup(ctx)

#----------------------------------------------------------------------------
# Options and state.

def test_bad_options_are_named():
    with pytest.raises(ValueError, match='mode must be one of reg, md'):
        mdgan_prior.MDGANPrior(mode='mdgan')
    with pytest.raises(ValueError, match='lambda2 must be a number >= 0'):
        mdgan_prior.MDGANPrior(lambda2=-1)
    with pytest.raises(ValueError, match='g_steps must be 1 or 2'):
        mdgan_prior.MDGANPrior(g_steps=3)
    with pytest.raises(ValueError, match='use --gan-loss=logistic'):
        mdgan_prior.MDGANPrior(gan_loss='hinge')


def test_resuming_into_another_mode_is_refused():
    state = mdgan_prior.MDGANPrior(mode='reg').state_dict()
    with pytest.raises(ValueError, match='trained with mode=reg, g_steps=2 but this run uses mode=md'):
        mdgan_prior.MDGANPrior(mode='md').load_state_dict(state)
    mdgan_prior.MDGANPrior(mode='reg').load_state_dict(state)
