"""Tests for training/loss.py: R1 and path-length terms against float64 references, reported stats, hooks, state."""

import numpy as np
import pytest
import torch

from torch_utils import training_stats
from training import loss as loss_module

#----------------------------------------------------------------------------
# Tiny stand-ins for the networks, simple enough for closed-form gradients.
#   mapping:   ws[n, l] = z[n] @ M                 (same w for every layer)
#   synthesis: img[n]   = tanh(ws[n].flatten() @ S), reshaped to [C, H, W]
#   D:         logit[n] = tanh(img[n].flatten() @ A^T) @ v

C, H, W = 2, 3, 3
Z_DIM = W_DIM = 4
NUM_WS = 3
HIDDEN = 5

class TinyMapping(torch.nn.Module):
    def __init__(self, M):
        super().__init__()
        self.M = torch.nn.Parameter(torch.as_tensor(M, dtype=torch.float32))
        self.calls = []

    def forward(self, z, c, skip_w_avg_update=False):
        self.calls.append(skip_w_avg_update)
        return (z @ self.M).unsqueeze(1).repeat(1, NUM_WS, 1)


class TinySynthesis(torch.nn.Module):
    def __init__(self, S):
        super().__init__()
        self.S = torch.nn.Parameter(torch.as_tensor(S, dtype=torch.float32))

    def forward(self, ws):
        return torch.tanh(ws.flatten(1) @ self.S).reshape(-1, C, H, W)


class TinyD(torch.nn.Module):
    def __init__(self, A, v):
        super().__init__()
        self.A = torch.nn.Parameter(torch.as_tensor(A, dtype=torch.float32))
        self.v = torch.nn.Parameter(torch.as_tensor(v, dtype=torch.float32))

    def forward(self, img, c):
        return torch.tanh(img.flatten(1) @ self.A.t()) @ self.v[:, None]


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    return dict(M=rng.normal(size=[Z_DIM, W_DIM]) * 0.5, S=rng.normal(size=[NUM_WS * W_DIM, C * H * W]) * 0.3,
                A=rng.normal(size=[HIDDEN, C * H * W]) * 0.4, v=rng.normal(size=[HIDDEN]))


def _make_loss(p, **kwargs):
    kwargs = dict(dict(style_mixing_prob=0), **kwargs)
    nets = dict(G_mapping=TinyMapping(p['M']), G_synthesis=TinySynthesis(p['S']), D=TinyD(p['A'], p['v']))
    return loss_module.StyleGAN2Loss(device=torch.device('cpu'), **nets, **kwargs), nets

#----------------------------------------------------------------------------
# float64 references.

def _r1_ref(A, v, img):
    # d/dx sum_n v . tanh(A x_n) = A^T (v * (1 - tanh(A x_n)^2))
    x = img.reshape(img.shape[0], -1)
    grad = (v * (1 - np.tanh(x @ A.T) ** 2)) @ A
    return (grad ** 2).sum(axis=1)


def _pl_ref(S, ws, noise):
    # d/dws sum(img * noise) with img = tanh(ws_flat @ S)
    ws_flat = ws.reshape(ws.shape[0], -1)
    grad = (noise.reshape(ws.shape[0], -1) * (1 - np.tanh(ws_flat @ S) ** 2)) @ S.T
    grad = grad.reshape(ws.shape)
    return np.sqrt((grad ** 2).sum(axis=2).mean(axis=1))


def _pl_loss_ref(M, S, z, noise, pl_mean_old, decay, weight):
    ws = np.repeat((z @ M)[:, None, :], NUM_WS, axis=1)
    lengths = _pl_ref(S, ws, noise)
    new_mean = pl_mean_old + (lengths.mean() - pl_mean_old) * decay
    return ((lengths - new_mean) ** 2 * weight).mean()


def _r1_loss_ref(A, v, img, gamma):
    return (_r1_ref(A, v, img) * gamma / 2).mean()


def _numeric_grad(f, x, eps=1e-6):
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        hi, lo = x.copy(), x.copy()
        hi[idx] += eps
        lo[idx] -= eps
        grad[idx] = (f(hi) - f(lo)) / (2 * eps)
    return grad

#----------------------------------------------------------------------------

def test_r1_penalty_matches_float64_reference():
    p = _problem(1)
    img = np.random.default_rng(2).normal(size=[6, C, H, W])
    D = TinyD(p['A'], p['v'])
    x = torch.tensor(img, dtype=torch.float32, requires_grad=True)
    got = loss_module.r1_penalty(D(x, None), x)
    np.testing.assert_allclose(got.detach().numpy(), _r1_ref(p['A'], p['v'], img), rtol=1e-5, atol=1e-6)


def test_path_lengths_match_float64_reference():
    p = _problem(3)
    rng = np.random.default_rng(4)
    ws = rng.normal(size=[5, NUM_WS, W_DIM])
    noise = rng.normal(size=[5, C, H, W])
    synthesis = TinySynthesis(p['S'])
    ws_t = torch.tensor(ws, dtype=torch.float32, requires_grad=True)
    got = loss_module.path_lengths(synthesis(ws_t), ws_t, torch.tensor(noise, dtype=torch.float32))
    np.testing.assert_allclose(got.detach().numpy(), _pl_ref(p['S'], ws, noise), rtol=1e-5, atol=1e-6)


def test_Dreg_phase_r1_stats_and_gradients_match_float64():
    p = _problem(5)
    gamma, gain = 3.0, 16
    loss, nets = _make_loss(p, r1_gamma=gamma)
    img = np.random.default_rng(6).normal(size=[4, C, H, W])
    collector = training_stats.Collector(regex='Loss/.*')
    nets['D'].requires_grad_(True)
    loss.accumulate_gradients('Dreg', torch.tensor(img, dtype=torch.float32), torch.zeros([4, 0]),
                              torch.zeros([4, Z_DIM]), torch.zeros([4, 0]), sync=True, gain=gain)
    collector.update()

    r1 = _r1_ref(p['A'], p['v'], img)
    assert collector.num('Loss/r1_penalty') == 4
    np.testing.assert_allclose(collector.mean('Loss/r1_penalty'), r1.mean(), rtol=1e-5)
    np.testing.assert_allclose(collector.mean('Loss/D/reg'), r1.mean() * gamma / 2, rtol=1e-5)
    assert collector.num('Loss/D/loss') == 0  # Dreg alone has no main term

    # Parameter gradients: gain * d/dtheta mean(r1 * gamma / 2), by float64 finite differences.
    ref_A = _numeric_grad(lambda A: _r1_loss_ref(A, p['v'], img, gamma), p['A']) * gain
    ref_v = _numeric_grad(lambda v: _r1_loss_ref(p['A'], v, img, gamma), p['v']) * gain
    np.testing.assert_allclose(nets['D'].A.grad.numpy(), ref_A, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(nets['D'].v.grad.numpy(), ref_v, rtol=1e-4, atol=1e-5)


def test_Greg_phase_path_length_matches_float64():
    p = _problem(7)
    decay, weight, gain, shrink = 0.25, 2.0, 4, 2
    loss, nets = _make_loss(p, pl_decay=decay, pl_weight=weight, pl_batch_shrink=shrink)
    loss.load_rank_state_dict(dict(pl_mean=torch.tensor(0.5)))
    z = np.random.default_rng(8).normal(size=[6, Z_DIM])
    nets['G_mapping'].requires_grad_(True)
    nets['G_synthesis'].requires_grad_(True)

    # The loss draws its projection noise from the global torch RNG; draw the same one for the reference.
    torch.manual_seed(123)
    noise = torch.randn([6 // shrink, C, H, W]).double().numpy() / np.sqrt(H * W)
    torch.manual_seed(123)
    collector = training_stats.Collector(regex='Loss/.*')
    loss.accumulate_gradients('Greg', torch.zeros([6, C, H, W]), torch.zeros([6, 0]),
                              torch.tensor(z, dtype=torch.float32), torch.zeros([6, 0]), sync=True, gain=gain)
    collector.update()

    z_pl = z[:6 // shrink]
    ws = np.repeat((z_pl @ p['M'])[:, None, :], NUM_WS, axis=1)
    lengths = _pl_ref(p['S'], ws, noise)
    new_mean = 0.5 + (lengths.mean() - 0.5) * decay
    np.testing.assert_allclose(float(loss.pl_mean), new_mean, rtol=1e-5)
    np.testing.assert_allclose(collector.mean('Loss/pl_penalty'), ((lengths - new_mean) ** 2).mean(), rtol=1e-4)
    np.testing.assert_allclose(collector.mean('Loss/G/reg'), ((lengths - new_mean) ** 2).mean() * weight, rtol=1e-4)

    # Gradients flow through the (non-detached) updated mean as well.
    f_S = lambda S: _pl_loss_ref(p['M'], S, z_pl, noise, 0.5, decay, weight)
    f_M = lambda M: _pl_loss_ref(M, p['S'], z_pl, noise, 0.5, decay, weight)
    np.testing.assert_allclose(nets['G_synthesis'].S.grad.numpy(), _numeric_grad(f_S, p['S']) * gain, rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(nets['G_mapping'].M.grad.numpy(), _numeric_grad(f_M, p['M']) * gain, rtol=1e-3, atol=1e-5)


def test_main_phases_report_logistic_losses():
    p = _problem(9)
    loss, nets = _make_loss(p)
    real = np.random.default_rng(10).normal(size=[4, C, H, W])
    z = np.random.default_rng(11).normal(size=[4, Z_DIM])
    collector = training_stats.Collector(regex='Loss/.*')
    loss.accumulate_gradients('Dmain', torch.tensor(real, dtype=torch.float32), torch.zeros([4, 0]),
                              torch.tensor(z, dtype=torch.float32), torch.zeros([4, 0]), sync=True, gain=1)
    collector.update()

    def logits_of(img):
        return np.tanh(img.reshape(img.shape[0], -1) @ p['A'].T) @ p['v']
    fake = np.tanh(np.repeat((z @ p['M'])[:, None, :], NUM_WS, axis=1).reshape(4, -1) @ p['S']).reshape(4, C, H, W)
    real_logits, fake_logits = logits_of(real), logits_of(fake)
    softplus = lambda x: np.log1p(np.exp(x))
    np.testing.assert_allclose(collector.mean('Loss/scores/real'), real_logits.mean(), rtol=1e-5)
    np.testing.assert_allclose(collector.mean('Loss/signs/real'), np.sign(real_logits).mean())
    np.testing.assert_allclose(collector.mean('Loss/scores/fake'), fake_logits.mean(), rtol=1e-5)
    np.testing.assert_allclose(collector.mean('Loss/D/loss'), (softplus(fake_logits) + softplus(-real_logits)).mean(), rtol=1e-5)
    assert collector.num('Loss/r1_penalty') == 0


def test_Gboth_and_Dboth_run_all_terms():
    loss, nets = _make_loss(_problem(12))
    collector = training_stats.Collector(regex='Loss/.*')
    for module in nets.values():
        module.requires_grad_(True)
    for phase in ('Gboth', 'Dboth'):
        loss.accumulate_gradients(phase, torch.randn([4, C, H, W]), torch.zeros([4, 0]), torch.randn([4, Z_DIM]),
                                  torch.zeros([4, 0]), sync=True, gain=1)
    collector.update()
    for name in ('Loss/G/loss', 'Loss/G/reg', 'Loss/pl_penalty', 'Loss/D/loss', 'Loss/D/reg', 'Loss/r1_penalty'):
        assert collector.num(name) > 0, name


def test_disabled_regularisers_do_nothing():
    loss, nets = _make_loss(_problem(13), r1_gamma=0, pl_weight=0)
    collector = training_stats.Collector(regex='Loss/.*')
    for phase in ('Greg', 'Dreg'):
        loss.accumulate_gradients(phase, torch.randn([4, C, H, W]), torch.zeros([4, 0]), torch.randn([4, Z_DIM]),
                                  torch.zeros([4, 0]), sync=True, gain=4)
    collector.update()
    assert collector.names() == [] or all(collector.num(n) == 0 for n in collector.names())


def test_unknown_phase_is_rejected():
    loss, _ = _make_loss(_problem(14))
    with pytest.raises(ValueError, match=r'Unknown phase "Gfoo"; expected one of Gmain, Greg'):
        loss.accumulate_gradients('Gfoo', None, None, None, None, sync=True, gain=1)

#----------------------------------------------------------------------------
# Style mixing, hooks and state.

def test_style_mixing_replaces_the_tail_of_ws():
    p = _problem(15)
    loss, nets = _make_loss(p, style_mixing_prob=1)
    z = torch.randn([3, Z_DIM])
    torch.manual_seed(0)
    _img, ws = loss.run_G(z, torch.zeros([3, 0]), sync=True)
    assert nets['G_mapping'].calls == [False, True]  # second call must not update w_avg
    first = (z @ nets['G_mapping'].M).detach()
    same = [bool(torch.allclose(ws[:, i], first)) for i in range(NUM_WS)]
    assert same[0] and not all(same)  # layer 0 always from z; a cutoff in [1, num_ws) replaces the rest
    cutoff = same.index(False)
    assert not any(same[cutoff:])


def test_hooks_transform_latents_and_add_extra_loss():
    seen = []

    class HookedLoss(loss_module.StyleGAN2Loss):
        def transform_latents(self, z, c, step, role, batch):
            return z * 0, c

        def extra_loss(self, step, img, c, logits, ws, batch=None, outputs=None):
            seen.append(step)
            assert batch is None or batch.img.shape == (4, C, H, W)  # the round's reals reach every step
            return img.flatten(1).sum(1) * 0 + 10.0 if step == 'Gmain' else None

    p = _problem(16)
    nets = dict(G_mapping=TinyMapping(p['M']), G_synthesis=TinySynthesis(p['S']), D=TinyD(p['A'], p['v']))
    loss = HookedLoss(device=torch.device('cpu'), style_mixing_prob=0, **nets)
    img, _ws = loss.run_G(torch.randn([2, Z_DIM]), torch.zeros([2, 0]), sync=True)
    assert torch.equal(img, torch.zeros_like(img))  # tanh(0 @ S) = 0: the hook zeroed z
    for phase in ('Gboth', 'Dboth'):
        loss.accumulate_gradients(phase, torch.randn([4, C, H, W]), torch.zeros([4, 0]), torch.randn([4, Z_DIM]),
                                  torch.zeros([4, 0]), sync=True, gain=1)
    assert seen == ['Gmain', 'Gpl', 'Dgen', 'Dreal', 'Dr1']


def test_state_dict_round_trip_and_errors():
    loss, _ = _make_loss(_problem(17))
    loss.pl_mean.fill_(1.25)
    assert loss.state_dict() == {}  # pl_mean is per process: the rank state
    state = loss.rank_state_dict()
    other, _ = _make_loss(_problem(17))
    other.load_rank_state_dict(state)
    assert float(other.pl_mean) == 1.25
    with pytest.raises(ValueError, match=r"unexpected keys \['gmm'\]"):
        other.load_rank_state_dict(dict(state, gmm=1))
    with pytest.raises(ValueError, match=r"unexpected keys \['gmm'\]"):
        other.load_state_dict(dict(gmm=1))
    assert loss_module.Loss().state_dict() == {} and loss_module.Loss().rank_state_dict() == {}
    with pytest.raises(NotImplementedError, match='accumulate_gradients'):
        loss_module.Loss().accumulate_gradients('Gmain', None, None, None, None, True, 1)

#----------------------------------------------------------------------------


def test_style_mixing_latent_goes_through_the_hook_with_role_mix():
    roles = []

    class RoleLoss(loss_module.StyleGAN2Loss):
        def transform_latents(self, z, c, step, role, batch):
            roles.append((step, role))
            return (z * 0 if role == 'mix' else z), c

    p = _problem(18)
    nets = dict(G_mapping=TinyMapping(p['M']), G_synthesis=TinySynthesis(p['S']), D=TinyD(p['A'], p['v']))
    loss = RoleLoss(device=torch.device('cpu'), style_mixing_prob=1, **nets)
    torch.manual_seed(0)
    z = torch.randn([3, Z_DIM])
    _img, ws = loss.run_G(z, torch.zeros([3, 0]), sync=True, step='Dgen')
    assert roles == [('Dgen', 'main'), ('Dgen', 'mix')]
    mixed = [i for i in range(NUM_WS) if not torch.allclose(ws[:, i], (z @ nets['G_mapping'].M).detach())]
    assert mixed and all(torch.equal(ws[:, i], torch.zeros_like(ws[:, i])) for i in mixed)  # the mixed layers come from 0 @ M

