"""Tests for training/augment.py: each transformation alone, invertible blits, p = 0, gradcheck, AdaptiveP."""

import numpy as np
import pytest
import torch

from torch_utils.ops import conv2d_gradfix, grid_sample_gradfix
from training import augment

ALL_MULTIPLIERS = ['xflip', 'rotate90', 'xint', 'scale', 'rotate', 'aniso', 'xfrac', 'brightness', 'contrast',
                   'lumaflip', 'hue', 'saturation', 'imgfilter', 'noise', 'cutout']
GEOMETRIC = ['xflip', 'rotate90', 'xint', 'scale', 'rotate', 'aniso', 'xfrac']

#----------------------------------------------------------------------------
# Helpers.

def make_pipe(p=1.0, **kwargs):
    pipe = augment.AugmentPipe(**kwargs)
    pipe.p.fill_(p)
    return pipe

def smooth_images(n=2, c=3, h=32, w=32, max_freq=0.1, dtype=torch.float64, seed=0):
    # Band-limited images in [-1, 1]: three random plane waves per channel, |frequency| <= max_freq rad/pixel.
    g = torch.Generator().manual_seed(seed)
    ys = torch.arange(h, dtype=torch.float64)[:, None]
    xs = torch.arange(w, dtype=torch.float64)[None, :]
    img = torch.zeros([n, c, h, w], dtype=torch.float64)
    for _ in range(3):
        fx, fy = (torch.rand([2, n, c, 1, 1], generator=g, dtype=torch.float64) * 2 - 1) * max_freq
        phase = torch.rand([n, c, 1, 1], generator=g, dtype=torch.float64) * 2 * np.pi
        img += torch.cos(fx * xs + fy * ys + phase) / 3
    return img.to(dtype)

def random_images(n=2, c=3, h=32, w=32, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand([n, c, h, w], generator=g, dtype=torch.float64) * 2 - 1).to(dtype)

#----------------------------------------------------------------------------
# Presets and constructor.

def test_augpipe_specs_names_and_composition():
    specs = augment.augpipe_specs
    assert set(specs) == {'blit', 'geom', 'color', 'filter', 'noise', 'cutout', 'bg', 'bgc', 'bgcf', 'bgcfn', 'bgcfnc'}
    assert specs['bgc'] == {**specs['blit'], **specs['geom'], **specs['color']}
    assert specs['bgcfnc'] == {**specs['bgc'], 'imgfilter': 1, 'noise': 1, 'cutout': 1}
    assert set(specs['geom']) == {'scale', 'rotate', 'aniso', 'xfrac'}
    assert all(value == 1 for spec in specs.values() for value in spec.values())

@pytest.mark.parametrize('name', sorted(augment.augpipe_specs))
def test_every_preset_runs(name):
    torch.manual_seed(1)
    pipe = make_pipe(p=0.8, **augment.augpipe_specs[name])
    x = random_images(n=3)
    y = pipe(x)
    assert y.shape == x.shape and y.dtype == x.dtype and torch.isfinite(y).all()

def test_constructor_defaults_and_buffers():
    pipe = augment.AugmentPipe()
    assert [name for name, _ in pipe.named_buffers()] == ['p', 'Hz_geom', 'Hz_fbank']
    assert pipe.p.shape == () and pipe.p.dtype == torch.float32 and float(pipe.p) == 1.0
    assert pipe.Hz_geom.shape == (12,) and pipe.Hz_fbank.shape == (4, 43)
    assert pipe.Hz_fbank.dtype == torch.float32
    assert pipe.xint_max == 0.125 and pipe.contrast_std == 0.5 and pipe.cutout_size == 0.5
    assert isinstance(pipe.xflip, float) and pipe.imgfilter_bands == [1, 1, 1, 1]
    assert list(pipe.parameters()) == []

def test_constructor_rejects_bad_values():
    with pytest.raises(ValueError, match='multiplier hue must be >= 0'):
        augment.AugmentPipe(hue=-1)
    with pytest.raises(ValueError, match='imgfilter_bands needs one entry per band'):
        augment.AugmentPipe(imgfilter=1, imgfilter_bands=[1, 1])

#----------------------------------------------------------------------------
# Filters.

def test_geometric_filter_is_normalised_sym6_with_perfect_reconstruction():
    h = augment.AugmentPipe().Hz_geom.double()
    sym6 = torch.tensor(augment.wavelets['sym6'], dtype=torch.float64)
    torch.testing.assert_close(h, sym6 / sym6.sum(), atol=1e-7, rtol=0)
    # Upsampling by 2 (gain 2 per axis) then downsampling with the same filter is the identity:
    # 2 * sum_n h[n] h[n + 2k] = delta_k.
    for k in range(-5, 6):
        acc = sum(float(h[n] * h[n + 2 * k]) for n in range(12) if 0 <= n + 2 * k < 12)
        assert abs(2 * acc - (k == 0)) < 1e-6

def test_filter_bank_rows_and_centre():
    bank = augment._filter_bank(augment.wavelets['sym2'])
    assert bank.shape == (4, 43)
    np.testing.assert_allclose(bank.sum(axis=1), [1, 0, 0, 0], atol=1e-12)
    np.testing.assert_allclose(bank[:, 21], [0.125, 0.125, 0.25, 0.5], atol=1e-12)
    # The four bands add up to a unit impulse, so equal gains leave images unchanged.
    impulse = np.zeros(43)
    impulse[21] = 1
    np.testing.assert_allclose(bank.sum(axis=0), impulse, atol=1e-12)
    np.testing.assert_allclose(bank, bank[:, ::-1], atol=1e-12) # symmetric taps

#----------------------------------------------------------------------------
# Matrix helpers.

def test_matrix_broadcasts_numbers_to_tensor_shape():
    t = torch.tensor([1.0, 2.0, 3.0])
    m = augment.matrix([t, 0], [0, 1])
    assert m.shape == (3, 2, 2)
    torch.testing.assert_close(m[:, 0, 0], t)
    torch.testing.assert_close(m[:, 1, 1], torch.ones(3))
    const = augment.matrix([1, 2], [3, 4])
    assert const.shape == (2, 2) and const.dtype == torch.float32
    assert augment.matrix([1, 2], [3, 4], dtype=torch.float64).dtype == torch.float64
    with pytest.raises(ValueError, match='same length'):
        augment.matrix([1, 2], [3])

def test_2d_transforms_and_inverses():
    theta = torch.tensor([0.3, -1.2], dtype=torch.float64)
    s = torch.tensor([0.5, 2.0], dtype=torch.float64)
    eye = torch.eye(3, dtype=torch.float64).expand(2, 3, 3)
    torch.testing.assert_close(augment.rotate2d(theta) @ augment.rotate2d_inv(theta), eye)
    torch.testing.assert_close(augment.scale2d(s, 1 / s) @ augment.scale2d_inv(s, 1 / s), eye)
    torch.testing.assert_close(augment.translate2d(s, theta) @ augment.translate2d_inv(s, theta), eye)
    # rotate2d turns the x axis towards the y axis.
    r = augment.rotate2d(torch.tensor([np.pi / 2], dtype=torch.float64))[0]
    torch.testing.assert_close(r @ torch.tensor([1.0, 0, 1], dtype=torch.float64),
                               torch.tensor([0.0, 1, 1], dtype=torch.float64))

def test_rotate3d_is_a_rotation_about_its_axis():
    v = torch.tensor([1, 1, 1, 0], dtype=torch.float64) / np.sqrt(3)
    theta = torch.tensor([0.0, 0.7, -2.5], dtype=torch.float64)
    R = augment.rotate3d(v, theta)[:, :3, :3]
    eye = torch.eye(3, dtype=torch.float64).expand(3, 3, 3)
    torch.testing.assert_close(R @ R.transpose(1, 2), eye)
    torch.testing.assert_close(R @ v[:3], v[:3].expand(3, 3))
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(3, dtype=torch.float64))
    # Angle: trace = 1 + 2 cos(theta).
    torch.testing.assert_close(R.diagonal(dim1=1, dim2=2).sum(-1), 1 + 2 * torch.cos(theta))
    t3 = augment.translate3d(1, 2, 3)
    s3 = augment.scale3d(2, 2, 2)
    torch.testing.assert_close(t3 @ torch.tensor([0.0, 0, 0, 1]), torch.tensor([1.0, 2, 3, 1]))
    torch.testing.assert_close(s3 @ torch.tensor([1.0, 1, 1, 1]), torch.tensor([2.0, 2, 2, 1]))

#----------------------------------------------------------------------------
# Each transformation alone, at p = 1.

@pytest.mark.parametrize('name', ALL_MULTIPLIERS)
def test_single_transformation_shape_dtype_range(name):
    torch.manual_seed(2)
    pipe = make_pipe(p=1.0, **{name: 1})
    x = random_images(n=4)
    y = pipe(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert torch.isfinite(y).all()
    assert y.abs().max() < 20
    assert not torch.equal(y, x), f'{name} at p=1 left every image unchanged'
    if name in GEOMETRIC:
        # Resampling with the wavelet filter overshoots only slightly.
        assert y.abs().max() < 1.5

@pytest.mark.parametrize('name', ['brightness', 'contrast', 'lumaflip', 'hue', 'saturation'])
def test_color_transformations_on_grey_images(name):
    torch.manual_seed(3)
    pipe = make_pipe(p=1.0, **{name: 1})
    x = random_images(n=2, c=1)
    y = pipe(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    if name in ('hue', 'saturation'):
        assert torch.equal(y, x) # Skipped for single-channel images.

def test_selection_frequency_follows_p():
    # Cutout alone: the fraction of images with a zeroed square is about p.
    torch.manual_seed(4)
    pipe = make_pipe(p=0.3, cutout=1)
    y = pipe(torch.ones([4000, 1, 4, 4]))
    frac = (y == 0).flatten(1).any(dim=1).float().mean().item()
    assert abs(frac - 0.3) < 0.03

def test_same_seed_same_output_and_seed_matters():
    pipe = make_pipe(p=0.7, **augment.augpipe_specs['bgcfnc'])
    x = random_images(n=2)
    torch.manual_seed(5)
    a = pipe(x)
    torch.manual_seed(5)
    b = pipe(x)
    torch.manual_seed(6)
    c = pipe(x)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)

def test_debug_percentile_is_deterministic_without_noise():
    pipe = make_pipe(p=0.2, **augment.augpipe_specs['bgcf'])
    x = random_images(n=2)
    torch.manual_seed(7)
    a = pipe(x, debug_percentile=0.4)
    torch.manual_seed(8)
    b = pipe(x, debug_percentile=0.4)
    assert torch.equal(a, b)
    assert not torch.equal(a, pipe(x, debug_percentile=0.6))

#----------------------------------------------------------------------------
# Invertible blits (debug_percentile picks the transformation).

# Flips and quarter turns go through the same sym6 resampling as everything else; that filter is not
# symmetric, so (as in the official pipe) they are exact mirrors/rotations only up to a small phase
# error on band-limited content. Integer translations commute with the filter and are exact.

def test_xflip_mirrors_band_limited_images():
    x = smooth_images(n=2)
    pipe = make_pipe(xflip=1)
    y = pipe(x, debug_percentile=0.7) # floor(2 * 0.7) = 1: flip
    assert (y - x.flip(3)).abs().max() < 0.01
    assert (y - x).abs().max() > 0.5
    torch.testing.assert_close(pipe(x, debug_percentile=0.3), x, atol=1e-6, rtol=0) # floor(0.6) = 0: no flip

def test_rotate90_turns_band_limited_images():
    x = smooth_images(n=2)
    pipe = make_pipe(rotate90=1)
    y = pipe(x, debug_percentile=0.3) # floor(4 * 0.3) = 1: a quarter turn
    assert min((y - torch.rot90(x, k, dims=(2, 3))).abs().max() for k in (1, -1)) < 0.01
    assert (pipe(x, debug_percentile=0.6) - torch.rot90(x, 2, dims=(2, 3))).abs().max() < 0.01 # half turn
    z = y
    for _ in range(3):
        z = pipe(z, debug_percentile=0.3)
    assert (z - x).abs().max() < 0.01

def test_integer_translation_round_trip():
    x = random_images(n=2, dtype=torch.float64)
    pipe = make_pipe(xint=1)
    # q = 0.7: t = 0.4 * 0.125 = 0.05 of 32 pixels -> a 2-pixel shift in x and y; q = 0.3 shifts back.
    y = pipe(x, debug_percentile=0.7)
    shifts = [(dy, dx) for dy in (-2, 2) for dx in (-2, 2)
              if (y - torch.roll(x, (dy, dx), dims=(2, 3)))[:, :, 2:-2, 2:-2].abs().max() < 1e-6]
    assert len(shifts) == 1, 'expected the interior to be a pure 2-pixel shift'
    z = pipe(y, debug_percentile=0.3)
    torch.testing.assert_close(z[:, :, 4:-4, 4:-4], x[:, :, 4:-4, 4:-4], atol=1e-6, rtol=0)

def test_small_geometry_round_trip_on_smooth_images():
    # Scale by 2^(erfinv(2q-1) * scale_std) and back: close on band-limited content away from the borders.
    x = smooth_images(n=2)
    pipe = make_pipe(scale=1)
    y = pipe(pipe(x, debug_percentile=0.9), debug_percentile=0.1) # s = 2^(+-0.18)
    assert (y - x)[:, :, 6:-6, 6:-6].abs().max() < 0.02
    assert (pipe(x, debug_percentile=0.9) - x).abs().max() > 0.1

#----------------------------------------------------------------------------
# p = 0: no transformation is selected.

@pytest.mark.parametrize('preset', ['blit', 'geom', 'color', 'filter', 'noise', 'cutout', 'bgcfnc'])
def test_p_zero_is_exact_identity(preset):
    # Every step is gated by p, so p=0 returns the input untouched (no resampling round trip).
    torch.manual_seed(9)
    pipe = make_pipe(p=0.0, **augment.augpipe_specs[preset])
    x = random_images(n=3)
    assert torch.equal(pipe(x), x)

def test_p_zero_with_debug_percentile_still_transforms():
    # debug_percentile forces every enabled step regardless of p (used for fixture comparisons).
    torch.manual_seed(10)
    x = random_images(n=3)
    y = make_pipe(p=0.0, **augment.augpipe_specs['bgc'])(x, debug_percentile=0.7)
    assert (y - x).abs().max() > 1e-2

def test_no_multipliers_is_exact_identity():
    x = random_images(n=2)
    assert torch.equal(make_pipe(p=1.0)(x), x)

#----------------------------------------------------------------------------
# Gradients w.r.t. the images (float64), with fixed transformation parameters.

def _seeded(pipe, q, seed=0):
    def fn(images):
        torch.manual_seed(seed) # The additive noise must be the same at every evaluation.
        return pipe(images, debug_percentile=q)
    return fn

def test_gradcheck_geometry_color_noise_cutout():
    pipe = make_pipe(p=0.5, **augment.augpipe_specs['bgc'], noise=1, cutout=1, cutout_size=0.3)
    x = random_images(n=1, h=8, w=8, dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(_seeded(pipe, 0.35), (x,), eps=1e-6, atol=1e-5, fast_mode=True)

def test_gradcheck_imgfilter():
    pipe = make_pipe(p=0.5, imgfilter=1, imgfilter_bands=[1, 0, 1, 1])
    x = random_images(n=2, c=1, h=22, w=22, dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(_seeded(pipe, 0.8), (x,), eps=1e-6, atol=1e-5, fast_mode=True)

@pytest.mark.parametrize('custom_ops', [False, True])
def test_second_order_gradients_for_r1(monkeypatch, custom_ops):
    # R1 through augmentation differentiates the input gradient again; the training loop enables the custom ops.
    monkeypatch.setattr(grid_sample_gradfix, 'enabled', custom_ops)
    monkeypatch.setattr(conv2d_gradfix, 'enabled', custom_ops)
    pipe = make_pipe(p=0.5, **augment.augpipe_specs['bgcf'])
    x = random_images(n=1, c=1, h=22, w=22, dtype=torch.float64).requires_grad_(True)
    fn = _seeded(pipe, 0.65)
    assert torch.autograd.gradcheck(fn, (x,), eps=1e-6, atol=1e-5, fast_mode=True)
    assert torch.autograd.gradgradcheck(fn, (x,), eps=1e-6, atol=1e-5, fast_mode=True)

#----------------------------------------------------------------------------
# Errors.

def test_forward_rejects_bad_inputs():
    pipe = make_pipe(**augment.augpipe_specs['color'])
    with pytest.raises(TypeError, match='floating-point torch.Tensor, got ndarray'):
        pipe(np.zeros([1, 3, 8, 8], dtype=np.float32))
    with pytest.raises(ValueError, match=r'\[N, C, H, W\], got shape \[3, 8, 8\]'):
        pipe(torch.zeros([3, 8, 8]))
    with pytest.raises(ValueError, match='RGB .3 channels. or L .1 channel. images, got 2 channels'):
        pipe(torch.zeros([1, 2, 8, 8]))
    with pytest.raises(ValueError, match=r'debug_percentile must be in \[0, 1\], got 1.5'):
        pipe(torch.zeros([1, 3, 8, 8]), debug_percentile=1.5)
    with pytest.raises(ValueError, match='imgfilter needs images larger than 21 pixels, got 16x16'):
        make_pipe(imgfilter=1)(torch.zeros([1, 3, 16, 16]))

#----------------------------------------------------------------------------
# AdaptiveP.

def test_adaptive_p_moves_towards_target():
    ada = augment.AdaptiveP(target=0.6, batch_size=64, ada_kimg=500, interval=4)
    step = 64 * 4 / 500_000
    assert ada.step_size == pytest.approx(step)
    assert ada.next_p(0.2, 0.9) == pytest.approx(0.2 + step)   # D overfits: more augmentation
    assert ada.next_p(0.2, 0.1) == pytest.approx(0.2 - step)   # D is fine: less augmentation
    assert ada.next_p(0.2, 0.6) == pytest.approx(0.2)          # on target: sign 0
    assert ada.next_p(step / 2, -1.0) == 0.0                   # clamped at 0
    assert ada.next_p(1.0, 1.0) == pytest.approx(1.0 + step)   # not clamped at 1, as upstream
    assert ada.next_p(0.2, float('nan')) == 0.2 and ada.next_p(0.2, None) == 0.2

def test_adaptive_p_updates_pipe_in_place():
    pipe = make_pipe(p=0.0, xflip=1)
    ada = augment.AdaptiveP(target=0.6, batch_size=32, ada_kimg=1, interval=2) # step 0.064
    for _ in range(3):
        new_p = ada.update(pipe, 0.8)
    assert new_p == pytest.approx(3 * 0.064, abs=1e-6) and float(pipe.p) == new_p
    assert pipe.p.dtype == torch.float32 and pipe.p.shape == ()
    for _ in range(5):
        ada.update(pipe, 0.0)
    assert float(pipe.p) == 0.0
    assert ada.num_updates == 8 and ada.last_sign_mean == 0.0
    assert [ada.is_due(i) for i in range(1, 5)] == [False, True, False, True]

def test_adaptive_p_state_dict_round_trip_and_errors():
    ada = augment.AdaptiveP(target=0.6, batch_size=8)
    ada.update(make_pipe(p=0.1), 0.7)
    state = ada.state_dict()
    fresh = augment.AdaptiveP(target=0.6, batch_size=8)
    fresh.load_state_dict(state)
    assert fresh.state_dict() == state
    with pytest.raises(ValueError, match='saved target=0.6 differs from the configured target=0.5'):
        augment.AdaptiveP(target=0.5, batch_size=8).load_state_dict(state)
    with pytest.raises(ValueError, match=r'target must be in \[0, 1\], got 1.2'):
        augment.AdaptiveP(target=1.2, batch_size=8)
    with pytest.raises(ValueError, match='ada_kimg must be > 0, got 0'):
        augment.AdaptiveP(target=0.6, batch_size=8, ada_kimg=0)
    with pytest.raises(ValueError, match='interval must be an integer >= 1, got 0'):
        augment.AdaptiveP(target=0.6, batch_size=8, interval=0)

#----------------------------------------------------------------------------
