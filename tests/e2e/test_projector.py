"""projector.py on a tiny generator with a tiny LPIPS-style feature network built here (no download):
recovery of a generated image, the schedules and the noise regulariser against float64 references, the
official option names, defaults and output files, and generate.py --projected-w on the result."""

import copy
import math
import os
import pickle
import sys
import warnings

import numpy as np
import PIL.Image
import pytest
import torch
from click.testing import CliRunner

import projector

#----------------------------------------------------------------------------
# A tiny stand-in for the official VGG16 LPIPS network: same call signature, images in [0, 255];
# return_lpips=True gives features unit-normalised over channels at every position, scaled by
# 1/sqrt(H*W) per layer and flattened, so that the squared L2 distance is an LPIPS-like average.

class TinyLPIPS(torch.nn.Module):
    def __init__(self):
        super().__init__()
        gen = torch.Generator().manual_seed(1)
        self.conv1 = torch.nn.Conv2d(3, 16, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(16, 32, 3, padding=1, stride=2)
        with torch.no_grad():
            for conv in (self.conv1, self.conv2):
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen) / math.sqrt(conv.weight[0].numel()))
                conv.bias.copy_(torch.randn(conv.bias.shape, generator=gen) * 0.1)

    def forward(self, img, resize_images: bool = True, return_lpips: bool = False, return_features: bool = False):
        x = img / 127.5 - 1
        h1 = torch.nn.functional.leaky_relu(self.conv1(x), 0.2)
        h2 = torch.nn.functional.leaky_relu(self.conv2(h1), 0.2)
        if not return_lpips:
            return h2.mean(dim=[2, 3])
        parts = []
        for h in (h1, h2):
            h = h / (h.square().sum(dim=1, keepdim=True) + 1e-10).sqrt()
            parts.append(h.flatten(1) / math.sqrt(h.shape[2] * h.shape[3]))
        return torch.cat(parts, dim=1)


TINY_G_KWARGS = dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, mapping_kwargs=dict(num_layers=2),
                     synthesis_kwargs=dict(channel_base=256, channel_max=32, num_fp16_res=0, conv_clamp=None))

def tiny_generator(seed=0):
    from training import networks
    torch.manual_seed(seed)
    G = networks.Generator(**TINY_G_KWARGS).eval().requires_grad_(False)
    with torch.no_grad():  # some noise, so that the noise maps matter too
        for name, p in G.named_parameters():
            if name.endswith('noise_strength'):
                p.fill_(0.05)
    return G

def generated_target(G, seed=5):
    z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim)).float()
    with torch.no_grad():
        img = G.synthesis(G.mapping(z, None), noise_mode='const')
    return img, (img[0] * 127.5 + 128).clamp(0, 255).to(torch.uint8)

#----------------------------------------------------------------------------

def test_projection_recovers_a_generated_image():
    torch.manual_seed(303)
    G = tiny_generator()
    target_float, target = generated_target(G)
    noise_before = {n: b.clone() for n, b in G.synthesis.named_buffers() if 'noise_const' in n}
    ws, dists = projector.project(G, target, num_steps=150, w_avg_samples=1000, vgg16=TinyLPIPS(), return_distances=True)
    assert tuple(ws.shape) == (150, G.num_ws, G.w_dim)
    assert all(math.isfinite(d) for d in dists)
    # The feature distance falls far below its start, down to about its floor: the distance at the true W
    # (not 0, since the target was rounded to uint8 and the noise maps are re-drawn).
    w_true = G.mapping(torch.from_numpy(np.random.RandomState(5).randn(1, G.z_dim)).float(), None)
    vgg16 = TinyLPIPS()
    with torch.no_grad():
        floor = (vgg16(target[None].float(), return_lpips=True) - vgg16((target_float + 1) * 127.5, return_lpips=True)).square().sum()
    assert dists[-1] < 0.25 * dists[0] and dists[-1] < 2 * float(floor), (dists[0], dists[-1], float(floor))
    # W itself: much closer to the true W than the start (the mean of W) was.
    assert (ws[-1, 0] - w_true[0, 0]).norm() < 0.25 * (ws[0, 0] - w_true[0, 0]).norm()
    # The caller's generator is left alone (its noise maps included).
    for n, b in G.synthesis.named_buffers():
        if 'noise_const' in n:
            assert torch.equal(b, noise_before[n])
    # In pixels, rendered with the network's own constant noise: far closer than the start (W = mean of W).
    with torch.no_grad():
        proj = G.synthesis(ws[-1:], noise_mode='const')
        start = G.synthesis(ws[:1], noise_mode='const')
    assert (proj - target_float).square().mean() < 0.1 * (start - target_float).square().mean()


def test_schedules_match_the_formulas():
    # Independent float64 reference: the formulas written out for the default lengths.
    for t in np.linspace(0, 0.999, 37):
        rampdown = min(1.0, (1 - t) / 0.25)
        expected = 0.1 * (0.5 - 0.5 * np.cos(np.pi * rampdown)) * min(1.0, t / 0.05)
        assert projector.learning_rate(float(t)) == pytest.approx(expected, rel=1e-12, abs=1e-15)
        assert projector.w_noise_scale(float(t), 2.0) == pytest.approx(2.0 * 0.05 * max(0.0, 1 - t / 0.75) ** 2, rel=1e-12, abs=1e-15)
    assert projector.learning_rate(0.0) == 0 and projector.learning_rate(0.5) == pytest.approx(0.1)
    assert projector.learning_rate(0.875) == pytest.approx(0.05)
    assert projector.w_noise_scale(0.8, 1.0) == 0


def test_noise_regularizer_against_a_float64_loop():
    rng = np.random.RandomState(0)
    maps = [rng.randn(32, 32), rng.randn(8, 8), rng.randn(4, 4)]
    expected = 0.0
    for n in maps:
        n = n.copy()
        while True:
            size = n.shape[0]
            right = sum(n[y, x] * n[y, (x - 1) % size] for y in range(size) for x in range(size)) / size ** 2
            down = sum(n[y, x] * n[(y - 1) % size, x] for y in range(size) for x in range(size)) / size ** 2
            expected += right ** 2 + down ** 2
            if size <= 8:
                break
            n = n.reshape(size // 2, 2, size // 2, 2).mean(axis=(1, 3))
    got = projector.noise_regularizer([torch.tensor(n) for n in maps])
    assert float(got) == pytest.approx(expected, rel=1e-10)


def test_w_statistics_against_float64():
    G = tiny_generator()
    w_avg, w_std = projector.w_statistics(G, num_samples=300, batch=128)
    z = torch.from_numpy(np.random.RandomState(123).randn(300, G.z_dim)).float()
    w = G.mapping(z, None)[:, 0, :].double().numpy()
    assert w_avg.shape == (1, 1, G.w_dim)
    np.testing.assert_allclose(w_avg[0, 0], w.mean(axis=0), rtol=1e-5, atol=1e-6)
    assert w_std == pytest.approx(np.sqrt(((w - w.mean(axis=0)) ** 2).sum() / 300), rel=1e-5)

#----------------------------------------------------------------------------
# The command line: official option names, defaults and output files.

@pytest.fixture(scope='module')
def cli_setup(tmp_path_factory):
    root = tmp_path_factory.mktemp('proj')
    from training import networks
    G = tiny_generator()
    D = networks.Discriminator(c_dim=0, img_resolution=16, img_channels=3, channel_base=256, channel_max=32, num_fp16_res=0,
                               conv_clamp=None, epilogue_kwargs=dict(mbstd_group_size=2)).eval().requires_grad_(False)
    pkl = root / 'tiny.pkl'
    with open(pkl, 'wb') as f:
        pickle.dump(dict(training_set_kwargs=None, G=G, D=D, G_ema=copy.deepcopy(G), augment_pipe=None), f)
    lpips = root / 'tiny-vgg16.pt'
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)  # torch.jit is deprecated, but the official detectors are TorchScript
        torch.jit.save(torch.jit.script(TinyLPIPS()), str(lpips))
    _, target = generated_target(G)
    target_png = root / 'target-in.png'
    big = PIL.Image.fromarray(target.permute(1, 2, 0).numpy()).resize((40, 32), PIL.Image.NEAREST)  # not square: centre crop
    big.save(target_png)
    return dict(pkl=str(pkl), lpips=str(lpips), target=str(target_png), root=root)


def test_official_options_and_defaults():
    params = {p.name: p for p in projector.run_projection.params}
    official = {'network_pkl': '--network', 'target_fname': '--target', 'num_steps': '--num-steps', 'seed': '--seed',
                'save_video': '--save-video', 'outdir': '--outdir'}
    for name, flag in official.items():
        assert flag in params[name].opts
    assert params['network_pkl'].required and params['target_fname'].required and params['outdir'].required
    assert params['num_steps'].default == 1000 and params['seed'].default == 303 and params['save_video'].default is True
    import inspect
    signature = inspect.signature(projector.project)
    defaults = {k: v.default for k, v in signature.parameters.items()}
    assert defaults['num_steps'] == 1000 and defaults['w_avg_samples'] == 10000 and defaults['initial_learning_rate'] == 0.1
    assert defaults['initial_noise_factor'] == 0.05 and defaults['lr_rampdown_length'] == 0.25 and defaults['lr_rampup_length'] == 0.05
    assert defaults['noise_ramp_length'] == 0.75 and defaults['regularize_noise_weight'] == 1e5


def test_cli_outputs_and_generate_projected_w(cli_setup, tmp_path, monkeypatch):
    monkeypatch.setenv('SG2ADA_DETECTOR_VGG16', cli_setup['lpips'])
    outdir = tmp_path / 'out'
    result = CliRunner().invoke(projector.run_projection, ['--network', cli_setup['pkl'], '--target', cli_setup['target'],
                                                           '--num-steps', '20', '--save-video', 'false', '--outdir', str(outdir)])
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(outdir)) == ['proj.png', 'projected_w.npz', 'target.png']
    with np.load(outdir / 'projected_w.npz') as data:
        assert data.files == ['w']
        w = data['w']
    assert w.shape == (1, 6, 8) and w.dtype == np.float32   # [1, num_ws, w_dim]
    assert np.array(PIL.Image.open(outdir / 'target.png')).shape == (16, 16, 3)

    # generate.py --projected-w renders the same picture as proj.png.
    import generate
    result = CliRunner().invoke(generate.generate_images, ['--network', cli_setup['pkl'], '--projected-w', str(outdir / 'projected_w.npz'),
                                                           '--outdir', str(tmp_path / 'gen'), '--device', 'cpu'])
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(np.array(PIL.Image.open(tmp_path / 'gen' / 'proj00.png')), np.array(PIL.Image.open(outdir / 'proj.png')))


def test_video_without_imageio_says_which_package(cli_setup, tmp_path, monkeypatch):
    monkeypatch.setenv('SG2ADA_DETECTOR_VGG16', cli_setup['lpips'])
    monkeypatch.setitem(sys.modules, 'imageio', None)  # import fails as if not installed
    result = CliRunner().invoke(projector.run_projection, ['--network', cli_setup['pkl'], '--target', cli_setup['target'],
                                                           '--num-steps', '2', '--outdir', str(tmp_path / 'out')])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and 'imageio' in lines[0] and 'imageio-ffmpeg' in lines[0] and '--save-video=false' in lines[0]
    assert not os.path.exists(tmp_path / 'out')  # refused before any work


def test_video(cli_setup, tmp_path, monkeypatch):
    pytest.importorskip('imageio')
    pytest.importorskip('imageio_ffmpeg')
    monkeypatch.setenv('SG2ADA_DETECTOR_VGG16', cli_setup['lpips'])
    outdir = tmp_path / 'out'
    result = CliRunner().invoke(projector.run_projection, ['--network', cli_setup['pkl'], '--target', cli_setup['target'],
                                                           '--num-steps', '4', '--outdir', str(outdir)])
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(outdir)) == ['proj.mp4', 'proj.png', 'projected_w.npz', 'target.png']
    assert os.path.getsize(outdir / 'proj.mp4') > 0


def test_bad_target(cli_setup, tmp_path, monkeypatch):
    monkeypatch.setenv('SG2ADA_DETECTOR_VGG16', cli_setup['lpips'])
    bad = tmp_path / 'bad.png'
    bad.write_bytes(b'not an image')
    for target, message in ((str(tmp_path / 'missing.png'), '--target: file not found'), (str(bad), '--target: cannot read')):
        result = CliRunner().invoke(projector.run_projection, ['--network', cli_setup['pkl'], '--target', target, '--num-steps', '2',
                                                               '--save-video', 'false', '--outdir', str(tmp_path / 'o')])
        assert result.exit_code == 1 and message in result.output, result.output

#----------------------------------------------------------------------------
