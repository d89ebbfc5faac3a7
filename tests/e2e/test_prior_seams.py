"""Each seam of the v2 prior interface, proven with a minimal test-only prior (tests/e2e/seam_priors.py): D outputs read
by a head owner that replaces the adversarial loss and gives R1 and ADA their realness; a per-sample synthesis input;
an extra phase with its own optimizer (snapshot, exact resume, two gloo ranks); a sample-time latent transform used
by generate.py, style_mixing.py, the metrics and the image grids (with an off switch); two priors that both extend D."""

import os
import subprocess
import sys

import numpy as np
import PIL.Image
import pytest
import torch
from click.testing import CliRunner

import dnnlib
import generate
import harness
import seam_priors
import style_mixing
from metrics import metric_utils
from priors import base
from torch_utils import training_stats
from training import sampling

pytestmark = pytest.mark.slow

# The harness's tiny run with test-only priors [(name, kwargs), ...].
def _config(data_path, run_dir, num_steps, priors=(), **overrides):
    c = harness.loop_config(data_path, run_dir, num_steps)
    if priors:
        harness.add_priors(c, priors)
    c.update(overrides)
    return c

@pytest.fixture(scope='module', autouse=True)
def _seam_priors():
    seam_priors.register()
    yield
    seam_priors.unregister()

@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return harness.tiny_dataset(tmp_path_factory.mktemp('seams') / 'tiny16.zip', num_images=24, num_modes=3, frequencies='uniform')

_state = harness.params
_run = harness.run_loop
_load = harness.load

#----------------------------------------------------------------------------
# D outputs + adversarial-loss override + realness for R1 and ADA.

def test_head_owner_replaces_the_adversarial_loss_and_gives_the_realness(data, tmp_path):
    collector = training_stats.Collector(regex='Loss/(r1_penalty|signs/real|scores/real)')
    result = _run(_config(data, str(tmp_path / 'a'), 3, priors=[('seam-head', dict(scale=0.0))], D_reg_interval=1))
    head = result.loss.priors[0]
    assert result.D.b4.out.weight.shape[0] == 2  # out_dim from D_kwargs_update, merged at the leaf
    steps = {s for s, _, _ in head.seen}
    assert steps == {'Gmain', 'Dgen', 'Dreal'} and all(pair and n == 2 for _, pair, n in head.seen)
    assert head.aux and all(head.aux)  # D's second output reached extra_loss with its graph
    collector.update()
    # realness = 0 * logit: R1's gradient and ADA's signs come from the realness, so both are exactly 0.
    assert collector.num('Loss/r1_penalty') > 0 and collector.mean('Loss/r1_penalty') == 0
    assert collector.mean('Loss/signs/real') == 0 and collector.mean('Loss/scores/real') == 0
    # The same run with realness = logit has a non-zero R1 penalty.
    collector = training_stats.Collector(regex='Loss/r1_penalty')
    _run(_config(data, str(tmp_path / 'b'), 3, priors=[('seam-head', dict(scale=1.0))], D_reg_interval=1))
    collector.update()
    assert collector.mean('Loss/r1_penalty') > 0

#----------------------------------------------------------------------------
# Per-sample synthesis input.

def test_side_input_reaches_every_synthesis_layer(data, tmp_path):
    result = _run(_config(data, str(tmp_path / 'run'), 2, priors=[('seam-side', {})]))
    side = result.G.synthesis.side
    assert isinstance(side, seam_priors.ScaleBySide) and side.calls > 0
    assert len(side.channels) == 5  # 4x4: conv1; 8x8 and 16x16: conv0 and conv1 each
    assert not torch.equal(side.a, torch.full_like(side.a, 0.5))  # the side module trains with G
    # G_ema carries it; sampling without a side input uses the stored value, a side input changes the image.
    G = result.G_ema
    z, c = torch.randn([2, G.z_dim]), torch.zeros([2, 0])
    plain = G(z, c, noise_mode='const')
    shifted = G(z, c, side=torch.full([2], 3.0), noise_mode='const')
    assert not torch.allclose(plain, shifted)
    with pytest.raises(ValueError, match='no side module'):
        plain_synthesis = dnnlib.util.construct_class_by_name(class_name='training.networks.SynthesisNetwork', w_dim=8, img_resolution=16,
                                                              img_channels=3, channel_base=256, channel_max=16)
        plain_synthesis(torch.zeros([1, plain_synthesis.num_ws, 8]), side=torch.zeros([1]))

#----------------------------------------------------------------------------
# Extra phase: own optimizer, snapshot, exact resume.

def test_extra_phase_trains_its_module_and_resumes_exactly(data, tmp_path):
    prior = [('seam-phase', dict(lr=0.01))]
    full = _run(_config(data, str(tmp_path / 'full'), 8, priors=prior))
    _run(_config(data, str(tmp_path / 'first'), 4, priors=prior))
    snapshot_pkl = str(tmp_path / 'first' / 'network-snapshot-000000.pkl')
    snap = _load(snapshot_pkl)
    assert set(snap['extra_modules']) == {'probe'} and 'probe' in snap['resume_state']['optimizers']
    second = _run(_config(data, str(tmp_path / 'second'), 8, priors=prior, resume_pkl=snapshot_pkl))
    probe_full, probe_second = full.loss.priors[0].probe, second.loss.priors[0].probe
    assert torch.equal(probe_full.fc.weight, probe_second.fc.weight)
    first_probe = snap['extra_modules']['probe']
    assert not torch.equal(first_probe.fc.weight, probe_full.fc.weight)  # it kept training after the resume
    assert harness.differing(harness.tensors(full, 'G', 'D', 'G_ema'), harness.tensors(second, 'G', 'D', 'G_ema')) == []

def test_extra_phase_can_step_G_again(data, tmp_path):
    one = _run(_config(data, str(tmp_path / 'one'), 2, priors=[('seam-phase', {})]))
    two = _run(_config(data, str(tmp_path / 'two'), 2, priors=[('seam-phase', dict(second_G_step=True))]))
    w1, w2 = one.G.synthesis.b16.conv1.weight, two.G.synthesis.b16.conv1.weight
    assert not torch.equal(w1, w2)  # the second G step ran with G's optimizer

def _ddp_worker(rank, tmp_dir, data_path, per_rank_batch):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    seam_priors.register()
    harness.init_gloo(rank, tmp_dir)
    c = _config(data_path, os.path.join(tmp_dir, 'run'), 4, priors=[('seam-phase', dict(lr=0.05))], num_gpus=2, rank=rank,
                batch_size=2 * per_rank_batch, batch_gpu=per_rank_batch, total_kimg=0.016)
    result = _run(c)
    torch.save(_state(result.loss.priors[0].probe), os.path.join(tmp_dir, f'rank{rank}.pt'))
    torch.distributed.destroy_process_group()

@pytest.mark.ddp
def test_extra_phase_is_all_reduced_over_two_gloo_ranks(data, tmp_path):
    harness.spawn_two(_ddp_worker, str(tmp_path), data, 2)
    rank0, rank1 = harness.load_ranks(tmp_path)
    assert all(torch.equal(rank0[n], rank1[n]) for n in rank0)
    snap = _load(str(tmp_path / 'run' / 'network-snapshot-000000.pkl'))
    assert torch.equal(snap['extra_modules']['probe'].fc.weight, rank0['fc.weight'])

#----------------------------------------------------------------------------
# Sample-time transform: generate.py, style_mixing.py, metrics, grids; off switch.

def test_sample_transform_is_used_everywhere_and_can_be_switched_off(data, tmp_path):
    run_dir = str(tmp_path / 'run')
    _run(_config(data, run_dir, 2, priors=[('seam-sample', {})], image_snapshot_ticks=1))
    pkl = os.path.join(run_dir, 'network-snapshot-000000.pkl')
    snap = _load(pkl)
    assert snap[sampling.SNAPSHOT_KEY] == [dict(class_name='seam_priors.ScaleLatents', factor=0.0)]
    G = snap['G_ema']
    zero = G(torch.zeros([1, G.z_dim]), torch.zeros([1, 0]), noise_mode='const')

    def pixels(img):
        return (img * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0].permute(1, 2, 0).numpy()

    # generate.py: every seed gives G(0) with the transform; distinct images without it.
    for flag, same in (('true', True), ('false', False)):
        out = str(tmp_path / f'gen-{flag}')
        res = CliRunner().invoke(generate.generate_images, ['--network', pkl, '--seeds', '1-2', '--outdir', out, '--device', 'cpu',
                                                            '--prior-sampling', flag], catch_exceptions=False)
        assert res.exit_code == 0, res.output
        images = [np.asarray(PIL.Image.open(os.path.join(out, f'seed{s:04d}.png'))) for s in (1, 2)]
        assert np.array_equal(images[0], images[1]) == same
        if same:
            assert np.abs(images[0].astype(int) - pixels(zero).astype(int)).max() <= 1

    # style_mixing.py: all seeds map to the same w with the transform, so every cell is the same image.
    out = str(tmp_path / 'mix')
    res = CliRunner().invoke(style_mixing.generate_style_mix, ['--network', pkl, '--rows', '1,2', '--cols', '3', '--styles', '0-1',
                                                               '--outdir', out, '--device', 'cpu'], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    cells = [np.asarray(PIL.Image.open(os.path.join(out, name))) for name in ('1-3.png', '2-3.png', '1-1.png')]
    assert np.array_equal(cells[0], cells[1]) and np.array_equal(cells[0], cells[2])

    # Metrics: the generator pass goes through the transform unless prior_sampling=False.
    opts = dict(G=G, dataset_kwargs=snap['training_set_kwargs'], device='cpu', snapshot=snap)
    sampler_on = metric_utils.LatentSampler(G, 0, G_kwargs=dict(noise_mode='none'), transform=sampling.load_sample_transform(snap))
    imgs = sampler_on.generate(list(range(3)), batch_gen=3)
    assert torch.allclose(imgs[0], imgs[1]) and torch.allclose(imgs[0], imgs[2])
    sampler_off = metric_utils.LatentSampler(G, 0, G_kwargs=dict(noise_mode='none'), transform=sampling.load_sample_transform(snap, enabled=False))
    assert not torch.allclose(*sampler_off.generate([0, 1], batch_gen=2))
    assert metric_utils.MetricOptions(**opts).prior_sampling and not metric_utils.MetricOptions(**opts, prior_sampling=False).prior_sampling

    # The training grids: every cell of fakes*.png is G(0).
    grid = np.asarray(PIL.Image.open(os.path.join(run_dir, 'fakes000000.png')))
    h = G.img_resolution
    assert np.array_equal(grid[:h, :h], grid[:h, h:2 * h])

#----------------------------------------------------------------------------
# Two priors that both extend D; the core never imports priors.

def test_two_priors_extend_D_together(data, tmp_path):
    result = _run(_config(data, str(tmp_path / 'run'), 2, priors=[('seam-features', {}), ('seam-head', {})]))
    D = result.D
    assert isinstance(D.features, seam_priors.FrozenFeatures) and D.b4.out.weight.shape[0] == 2
    assert D.b4.fc.weight.shape[1] == 16 * 4 * 4 and D.b4.extra.weight.shape == (16, 3)  # features join fc (feature_at='fc') through their own weights
    assert all(not p.requires_grad for p in D.parameters()) and 'features.weight' not in dict(D.named_parameters())
    snap_D = _load(str(tmp_path / 'run' / 'network-snapshot-000000.pkl'))['D']
    assert torch.equal(snap_D.features.weight, D.features.weight)
    with pytest.raises(ValueError, match='both change D_kwargs.out_dim'):
        base.merge_updates([('a', {'out_dim': 2}), ('b', {'out_dim': 3})], 'D_kwargs')
    with pytest.raises(ValueError, match='both change G_kwargs.synthesis_kwargs'):
        base.merge_updates([('a', {'synthesis_kwargs.side_kwargs': {}}), ('b', {'synthesis_kwargs': {}})], 'G_kwargs')

def test_core_never_imports_priors():
    code = ('import sys, dnnlib, torch_utils, torch_utils.persistence, training.training_loop, training.loss, training.networks, '
            'training.sampling, training.resume, metrics.metric_main, metrics.metric_utils, legacy; '
            'bad = sorted(m for m in sys.modules if m == "priors" or m.startswith("priors.")); print(bad); sys.exit(1 if bad else 0)')
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.run([sys.executable, '-c', code], cwd=root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
