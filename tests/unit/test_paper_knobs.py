"""The papers' training knobs of train.py (issue 18 item 1): each one reaches the training loop and changes what it does.

Every test runs the toy config for a few iterations in this process, with the loop's phase runner
wrapped to record what ran; each fails when its knob is ignored.
"""

import json
import re

import numpy as np
import pytest
import torch

import dnnlib
import train
from training import training_loop as loop_module

DATA = 'toy:ring8,n=256'

#----------------------------------------------------------------------------
# train.py's options -> training_loop kwargs, exactly as the command line builds them (no run folder).

def _config(tmp_path, *args):
    ctx = train.main.make_context('train.py', [f'--outdir={tmp_path}', '--cfg=toy', f'--data={DATA}', '--batch=16', *args])
    c, _desc = train.setup_training_loop_kwargs(ctx.params)
    return c

# Run the loop with c for `kimg`; returns (result, calls), calls = [(phase name, first real point, first latent)].
def _run(tmp_path, c, kimg=None, monkeypatch=None):
    c = dnnlib.EasyDict(c)
    if kimg is not None:
        c.total_kimg = kimg
    c.image_snapshot_ticks = c.network_snapshot_ticks = None
    c.kimg_per_tick = 1000
    calls = []
    original = loop_module._run_phase
    def recording(phase, loss, real_img, real_c, gen_z, gen_c, num_gpus):
        calls.append((phase.name, real_img[0][0].flatten().tolist(), gen_z[0][0].tolist()))
        D_max = max(float(p.abs().max()) for p in loss.D.parameters())
        opts.append(dnnlib.EasyDict(name=phase.name, opt=phase.opt, lr=phase.opt.param_groups[0]['lr'], D_max=D_max, loss=loss))
        return original(phase, loss, real_img, real_c, gen_z, gen_c, num_gpus)
    opts = _run.opts = []
    monkeypatch.setattr(loop_module, '_run_phase', recording)
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = loop_module.training_loop(run_dir=str(tmp_path), **c)
    finally:
        torch.set_num_threads(previous)
        monkeypatch.setattr(loop_module, '_run_phase', original)
    return result, calls

def _params(module):
    return torch.cat([p.detach().flatten() for p in module.parameters()])

#----------------------------------------------------------------------------
# 1. --d-steps / --g-steps

def test_d_and_g_steps_run_that_many_steps_each_on_its_own_batch(tmp_path, monkeypatch):
    c = _config(tmp_path, '--d-steps=3', '--g-steps=2')
    assert (c.D_steps, c.G_steps) == (3, 2)
    result, calls = _run(tmp_path, c, kimg=0.096, monkeypatch=monkeypatch)   # 96 = 2 iterations x 3 D batches x 16
    names = [name for name, _, _ in calls]
    assert names == ['Gboth', 'Gboth', 'Dboth', 'Dboth', 'Dboth'] * 2
    reals = [tuple(r) for _, r, _ in calls[:5]]
    latents = [tuple(z) for _, _, z in calls[:5]]
    assert len(set(reals)) == 5 and len(set(latents)) == 5       # every step draws its own reals and latents
    assert result.cur_nimg == 96                                  # kimg counts the reals D trains on

def test_default_steps_keep_one_batch_per_iteration(tmp_path, monkeypatch):
    c = _config(tmp_path)
    assert 'D_steps' not in c and 'G_steps' not in c and 'step_order' not in c   # training_options.json unchanged
    _result, calls = _run(tmp_path, c, kimg=0.032, monkeypatch=monkeypatch)
    assert [name for name, _, _ in calls] == ['Gboth', 'Dboth'] * 2
    assert calls[0][1] == calls[1][1] and calls[0][2] != calls[1][2]   # the official loop: one real batch, a latent draw per phase

#----------------------------------------------------------------------------
# 2. --step-order

def test_step_order_d_first(tmp_path, monkeypatch):
    c = _config(tmp_path, '--step-order=d-first', '--d-steps=2')
    _result, calls = _run(tmp_path, c, kimg=0.064, monkeypatch=monkeypatch)
    assert [name for name, _, _ in calls] == ['Dboth', 'Dboth', 'Gboth'] * 2
    c = _config(tmp_path, '--step-order=d-first')
    _result, calls = _run(tmp_path, c, kimg=0.032, monkeypatch=monkeypatch)
    assert [name for name, _, _ in calls] == ['Dboth', 'Gboth'] * 2

#----------------------------------------------------------------------------
# 3. --optim / --betas

@pytest.mark.parametrize('optim, cls', [('rmsprop', torch.optim.RMSprop), ('sgd', torch.optim.SGD), ('adam', torch.optim.Adam)])
def test_optim_builds_that_optimizer_at_the_configured_lr(tmp_path, monkeypatch, optim, cls):
    c = _config(tmp_path, f'--optim={optim}', '--glr=0.003', '--dlr=0.002')
    _run(tmp_path, c, kimg=0.016, monkeypatch=monkeypatch)
    used = {o.name: o for o in _run.opts}
    assert type(used['Gboth'].opt) is cls and type(used['Dboth'].opt) is cls
    assert (used['Gboth'].lr, used['Dboth'].lr) == (0.003, 0.002)

def test_betas_reach_adam_for_toy_and_stylegan_configs(tmp_path, monkeypatch):
    c = _config(tmp_path, '--betas=0.1,0.9')
    _run(tmp_path, c, kimg=0.016, monkeypatch=monkeypatch)
    assert [tuple(o.opt.param_groups[0]['betas']) for o in _run.opts] == [(0.1, 0.9)] * 2
    ctx = train.main.make_context('train.py', [f'--outdir={tmp_path}', '--cfg=stylegan2', '--betas=0.2,0.8', '--optim=adam'])
    c, _ = train.setup_training_loop_kwargs(ctx.params)
    assert c.G_opt_kwargs.betas == c.D_opt_kwargs.betas == [0.2, 0.8]
    for args, message in [(['--optim=sgd', '--betas=0.5,0.9'], '--betas applies to --optim=adam only'),
                          (['--betas=0.5'], 'is not two numbers in [0, 1)')]:
        with pytest.raises(Exception, match=re.escape(message)):
            ctx = train.main.make_context('train.py', [f'--outdir={tmp_path}', '--cfg=toy', f'--data={DATA}', *args])
            train.setup_training_loop_kwargs(ctx.params)

#----------------------------------------------------------------------------
# 4. --gan-loss=wgan and --clip

def test_wgan_loss_matches_its_float64_definition():
    from training.loss import GAN_LOSSES
    l = torch.tensor([[-1.5], [0.25], [3.0]], dtype=torch.float64)
    assert torch.equal(GAN_LOSSES['wgan']['Gmain'](l), -l)
    d = GAN_LOSSES['wgan']['Dgen'](l) + GAN_LOSSES['wgan']['Dreal'](l.flip(0))   # l_fake - l_real
    assert torch.equal(d, l - l.flip(0))

def test_clip_holds_every_D_parameter_after_each_D_step(tmp_path, monkeypatch):
    c = _config(tmp_path, '--gan-loss=wgan', '--clip=0.01', '--d-steps=2', '--optim=rmsprop')
    assert c.D_clip == 0.01 and c.loss_kwargs.gan_loss == 'wgan'
    result, _calls = _run(tmp_path, c, kimg=0.096, monkeypatch=monkeypatch)
    after_D = [o.D_max for i, o in enumerate(_run.opts) if i > 0 and _run.opts[i - 1].name == 'Dboth']
    assert after_D and max(after_D) <= np.float32(0.01)                 # every phase after a D step sees a clipped D
    assert max(float(p.abs().max()) for p in result.D.parameters()) <= np.float32(0.01)
    c = _config(tmp_path, '--gan-loss=wgan')                  # without --clip, PyTorch's initialisation exceeds 0.01
    result, _calls = _run(tmp_path, c, kimg=0.016, monkeypatch=monkeypatch)
    assert max(float(p.abs().max()) for p in result.D.parameters()) > 0.01
    c = _config(tmp_path, '--clip=0.05')                      # with any loss
    result, _calls = _run(tmp_path, c, kimg=0.016, monkeypatch=monkeypatch)
    assert max(float(p.abs().max()) for p in result.D.parameters()) <= np.float32(0.05)

#----------------------------------------------------------------------------
# 5. --z-dist / --z-dim: the latent distribution lives in the toy G

def test_latent_from_normal_against_the_float64_normal_cdf():
    import scipy.stats
    from training.toy_networks import latent_from_normal
    z = torch.linspace(-6, 6, 241, dtype=torch.float64)
    phi = torch.from_numpy(scipy.stats.norm.cdf(z.numpy()))
    torch.testing.assert_close(latent_from_normal(z, 'uniform01'), phi, rtol=0, atol=1e-12)
    torch.testing.assert_close(latent_from_normal(z, 'uniform'), 2 * phi - 1, rtol=0, atol=1e-12)
    assert latent_from_normal(z, 'normal') is z
    u = latent_from_normal(torch.randn([20000], generator=torch.Generator().manual_seed(1), dtype=torch.float64), 'uniform')
    assert scipy.stats.kstest(u.numpy(), 'uniform', args=(-1, 2)).pvalue > 1e-3   # U(-1, 1), not N(0, 1)

def test_z_dist_and_z_dim_reach_G_and_survive_the_pickle(tmp_path, monkeypatch):
    import pickle
    c = _config(tmp_path, '--z-dist=uniform01', '--z-dim=3')
    result, _calls = _run(tmp_path, c, kimg=0.016, monkeypatch=monkeypatch)
    for G in (result.G, pickle.loads(pickle.dumps(result.G_ema))):
        assert G.z_dim == 3 and G.mapping.z_dist == 'uniform01'
        z = torch.randn([64, 3], generator=torch.Generator().manual_seed(0))
        ws = G.mapping(z, None, skip_w_avg_update=True)
        torch.testing.assert_close(ws[:, 0], (torch.erf(z / 2 ** 0.5) + 1) / 2)
        assert float(ws.min()) >= 0 and float(ws.max()) <= 1
    c = _config(tmp_path)
    assert 'z_dist' not in c.G_kwargs.mapping_kwargs and c.G_kwargs.z_dim == 2     # no option: today's G
    with pytest.raises(Exception, match='--z-dist=uniform applies to --cfg=toy only'):
        ctx = train.main.make_context('train.py', [f'--outdir={tmp_path}', '--cfg=stylegan2', '--z-dist=uniform'])
        train.setup_training_loop_kwargs(ctx.params)
    ctx = train.main.make_context('train.py', [f'--outdir={tmp_path}', '--cfg=stylegan2', '--z-dim=64'])
    assert train.setup_training_loop_kwargs(ctx.params)[0].G_kwargs.z_dim == 64

#----------------------------------------------------------------------------
# 6. --toy-net presets

def _layers(net):
    return [(layer.in_features, layer.out_features) for layer in list(net.layers) + [net.out]]

def test_toy_net_presets_build_the_papers_networks(tmp_path):
    from training.toy_networks import ToyDiscriminator, ToyGenerator
    expected = {
        'goerttler-table1':         ('uniform', [(2, 128), (128, 128), (128, 2)], 'tanh', [(2, 128), (128, 128), (128, 128), (128, 1)], 'tanh', 'linear'),
        'goerttler-table1-sigmoid': ('uniform', [(2, 128), (128, 128), (128, 2)], 'tanh', [(2, 128), (128, 128), (128, 128), (128, 1)], 'tanh', 'sigmoid'),
        'che-appc':            ('uniform01', [(3, 128), (128, 128), (128, 2)], 'linear', [(2, 128), (128, 1)], 'relu', 'linear'),
        'unrolled':              ('normal', [(256, 128), (128, 128), (128, 2)], 'linear', [(2, 128), (128, 128), (128, 1)], 'relu', 'linear'),
    }
    for preset, (z_dist, G_layers, G_out, D_layers, D_act, D_out) in expected.items():
        c = _config(tmp_path, f'--toy-net={preset}')
        G = ToyGenerator(c_dim=0, img_resolution=1, img_channels=2, **{k: v for k, v in c.G_kwargs.items() if k != 'class_name'})
        D = ToyDiscriminator(c_dim=0, img_resolution=1, img_channels=2, **{k: v for k, v in c.D_kwargs.items() if k != 'class_name'})
        assert G.mapping.z_dist == z_dist and _layers(G.synthesis) == G_layers and G.synthesis.out_activation == G_out, preset
        assert (G.synthesis.activation, D.activation, D.out_activation) == ('relu', D_act, D_out) and _layers(D) == D_layers, preset
        with torch.no_grad():
            x = G(torch.randn([256, G.z_dim]) * 10, None)
            score = D(x * 10, None)
        if G_out == 'tanh':
            assert float(x.abs().max()) < 1
        if D_out == 'sigmoid':
            assert 0 <= float(score.min()) and float(score.max()) <= 1
    c = _config(tmp_path, '--toy-net=che-appc', '--z-dist=normal', '--z-dim=5')    # explicit latents override the preset
    assert (c.G_kwargs.mapping_kwargs.z_dist, c.G_kwargs.z_dim, c.G_kwargs.w_dim) == ('normal', 5, 5)
    assert _config(tmp_path, '--toy-net=default').D_kwargs == _config(tmp_path).D_kwargs

#----------------------------------------------------------------------------
# 7. --lr-decay

def test_lr_decay_linear_and_step_reach_both_optimizers(tmp_path, monkeypatch):
    c = _config(tmp_path, '--lr-decay=linear', '--glr=0.001', '--dlr=0.002')
    _run(tmp_path, c, kimg=0.064, monkeypatch=monkeypatch)                      # 4 iterations of 16
    np.testing.assert_allclose([o.lr for o in _run.opts if o.name == 'Gboth'], [0.001 * (1 - k / 4) for k in range(4)], rtol=1e-12)
    np.testing.assert_allclose([o.lr for o in _run.opts if o.name == 'Dboth'], [0.002 * (1 - k / 4) for k in range(4)], rtol=1e-12)
    c = _config(tmp_path, '--lr-decay=step', '--lr-decay-step=0.5,0.125', '--glr=0.001')   # an epoch is 256 points: x 0.5 every 32
    assert c.lr_decay_kwargs == dict(kind='step', rate=0.5, epochs=0.125)
    _run(tmp_path, c, kimg=0.096, monkeypatch=monkeypatch)
    np.testing.assert_allclose([o.lr for o in _run.opts if o.name == 'Gboth'], [0.001, 0.001, 0.0005, 0.0005, 0.00025, 0.00025], rtol=1e-12)
    assert _config(tmp_path, '--lr-decay=step').lr_decay_kwargs == dict(kind='step', rate=0.9, epochs=50)   # P²GAN §5.2
    assert 'lr_decay_kwargs' not in _config(tmp_path)

#----------------------------------------------------------------------------
# 8. --steps

def test_steps_counts_G_steps(tmp_path, monkeypatch):
    c = _config(tmp_path, '--steps=6', '--g-steps=2', '--d-steps=3')
    assert c.total_steps == 6 and c.total_kimg == 0.144                          # 3 iterations x 3 D batches x 16
    result, calls = _run(tmp_path, c, monkeypatch=monkeypatch)
    assert [name for name, _, _ in calls].count('Gboth') == 6 and result.cur_nimg == 144
    c = _config(tmp_path, '--steps=3')
    c.total_kimg = 0.08                                                           # 5 iterations, but the loop stops on the steps
    result, calls = _run(tmp_path, c, monkeypatch=monkeypatch)
    assert [name for name, _, _ in calls] == ['Gboth', 'Dboth'] * 3
    for args, message in [(['--steps=10', '--kimg=1'], '--steps=10 and --kimg=1 both set the run length'),
                          (['--steps=3', '--g-steps=2'], '--steps=3 must be a multiple of --g-steps=2'),
                          (['--lr-decay-step=0.9,50'], '--lr-decay-step applies to --lr-decay=step only')]:
        with pytest.raises(Exception, match=re.escape(message)):
            _config(tmp_path, *args)

#----------------------------------------------------------------------------
