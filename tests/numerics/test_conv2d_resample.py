"""conv2d_resample against a naive float64 zero-insert/pad/filter/conv reference, for every fast path."""

import itertools

import numpy as np
import pytest
import scipy.signal
import torch

from torch_utils.ops import conv2d_gradfix
from torch_utils.ops import conv2d_resample

#----------------------------------------------------------------------------
# Independent reference of the defining sequence, in float64 numpy/scipy:
# zero insertion after each pixel, pad (or crop), up-filter with gain up**2,
# valid correlation/convolution with w, filter, keep every down-th pixel.

def _filter_2d(f):
    f = f.astype(np.float64)
    return np.outer(f, f) if f.ndim == 1 else f

def _pad_or_crop(img, px0, px1, py0, py1):
    img = np.pad(img, [(0, 0), (0, 0), (max(py0, 0), max(py1, 0)), (max(px0, 0), max(px1, 0))])
    return img[:, :, max(-py0, 0):img.shape[2] - max(-py1, 0), max(-px0, 0):img.shape[3] - max(-px1, 0)]

def _fir(img, f2, flip_filter):
    op = scipy.signal.correlate if flip_filter else scipy.signal.convolve
    return op(img, f2[None, None], mode='valid')  # per channel: the kernel spans one sample and one channel

def reference_conv2d_resample(x, w, f, up, down, padding, groups, flip_weight, flip_filter):
    n, cin, h, wd = x.shape
    cout, cin_g, kh, kw = w.shape
    f2 = None if f is None else _filter_2d(f)
    fh, fw = (1, 1) if f is None else (f.shape[0], f.shape[-1])
    px0, px1, py0, py1 = [padding] * 4 if np.isscalar(padding) else (
        [padding[0], padding[0], padding[1], padding[1]] if len(padding) == 2 else list(padding))
    if up > 1:
        px0, px1, py0, py1 = px0 + (fw + up - 1) // 2, px1 + (fw - up) // 2, py0 + (fh + up - 1) // 2, py1 + (fh - up) // 2
    if down > 1:
        px0, px1 = px0 + (fw - down + 1) // 2, px1 + (fw - down) // 2
        py0, py1 = py0 + (fh - down + 1) // 2, py1 + (fh - down) // 2

    # Upsample by zero insertion, pad, up-filter.
    big = np.zeros([n, cin, h * up, wd * up])
    big[:, :, ::up, ::up] = x
    big = _pad_or_crop(big, px0, px1, py0, py1)
    if up > 1:
        big = _fir(big, f2 * up ** 2, flip_filter)

    # Grouped valid correlation (flip_weight=True) or convolution with w.
    op = scipy.signal.correlate if flip_weight else scipy.signal.convolve
    out_h, out_w = big.shape[2] - kh + 1, big.shape[3] - kw + 1
    y = np.zeros([n, cout, out_h, out_w])
    for o, i in itertools.product(range(cout), range(cin_g)):
        group = o // (cout // groups)
        y[:, o] += op(big[:, group * cin_g + i], w[o, i][None], mode='valid')

    # Down-filter and decimate.
    if down > 1:
        y = _fir(y, f2, flip_filter)[:, :, ::down, ::down]
    return y

#----------------------------------------------------------------------------
# Filters (float32, as setup_filter makes them): the default 4x4 binomial, a
# separable 8-tap, a non-square non-symmetric 2-D one and None.

def _filters():
    binomial = np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64
    taps8 = np.array([1, -2, 4, 9, 7, 3, -1, 1]) / 22
    odd = np.array([[1, 2, 0.5], [3, 1, -1]]) / 6.5
    return {'binomial': binomial, 'sep8': taps8, 'odd2x3': odd, 'none': None}

def _problem(f_name, k, groups, seed, down=1, cin=2, cout=4):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal([2, cin, 2 * down + 4, 2 * down + 5])
    w = rng.standard_normal([cout, cin // groups, k, k + (1 if k > 1 else 0)])  # non-square kernel
    f = _filters()[f_name]
    f = None if f is None else f.astype(np.float32)
    return x, w, f

def _run(x, w, f, **kwargs):
    ft = None if f is None else torch.tensor(f, dtype=torch.float32)
    return conv2d_resample.conv2d_resample(torch.tensor(x), torch.tensor(w), f=ft, **kwargs).numpy()

#----------------------------------------------------------------------------
# The full grid: up/down 1,2,4, kernel 1 and 3, groups, padding forms, both
# flip conventions. The filter rotates with the case index to keep it short.

PADDINGS = [0, [2, 1], [1, 0, 2, 1], [-1, 2, 0, -1]]

def _grid():
    cases = []
    filters = ['binomial', 'sep8', 'odd2x3']
    for idx, (up, down, k, groups, padding) in enumerate(itertools.product([1, 2, 4], [1, 2, 4], [1, 3], [1, 2],
                                                                          PADDINGS)):
        cases.append((up, down, k, groups, padding, filters[idx % 3], bool(idx % 2), bool(idx // 2 % 2)))
    return cases

@pytest.mark.parametrize('up, down, k, groups, padding, f_name, flip_weight, flip_filter', _grid())
def test_matches_naive_reference(up, down, k, groups, padding, f_name, flip_weight, flip_filter):
    x, w, f = _problem(f_name, k, groups, seed=up * 100 + down * 10 + k, down=down)
    kwargs = dict(up=up, down=down, padding=padding, groups=groups, flip_weight=flip_weight, flip_filter=flip_filter)
    ref = reference_conv2d_resample(x, w, f, **kwargs)
    got = _run(x, w, f, **kwargs)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('flip_weight', [True, False])
@pytest.mark.parametrize('flip_filter', [True, False])
def test_no_resampling_without_filter(flip_weight, flip_filter):
    x, w, _ = _problem('none', 3, 1, seed=7)
    for padding in [0, 1, [1, 0], [0, 1, 2, 0]]:
        kwargs = dict(padding=padding, flip_weight=flip_weight, flip_filter=flip_filter)
        np.testing.assert_allclose(_run(x, w, None, **kwargs), reference_conv2d_resample(x, w, None, groups=1, up=1,
                                   down=1, **kwargs), rtol=1e-10, atol=1e-10)

#----------------------------------------------------------------------------
# Which op sequence runs: each fast path is identified by the convolution
# call it makes, and its result equals the module's own generic sequence.

def _conv_calls(monkeypatch):
    calls = []
    real = conv2d_resample._conv2d_wrapper
    def spy(**kwargs):
        calls.append({k: kwargs.get(k) for k in ('stride', 'padding', 'transpose')})
        return real(**kwargs)
    monkeypatch.setattr(conv2d_resample, '_conv2d_wrapper', spy)
    return calls

PATHS = [  # (k, up, down, padding, expected call)
    (1, 1, 2, 0, dict(stride=None, padding=None, transpose=None)),        # 1x1 down: filter first
    (1, 2, 1, 0, dict(stride=None, padding=None, transpose=None)),        # 1x1 up: conv first
    (3, 1, 2, 1, dict(stride=2, padding=None, transpose=None)),           # down: strided conv
    (3, 2, 1, 1, dict(stride=2, padding=[0, 0], transpose=True)),         # up: transposed conv
    (3, 2, 2, 1, dict(stride=2, padding=[0, 0], transpose=True)),         # up and down
    (3, 4, 1, -2, dict(stride=4, padding=[1, 2], transpose=True)),        # up, transposed conv crops
    (3, 1, 1, 1, dict(stride=None, padding=[1, 1], transpose=None)),      # plain padded conv
    (3, 1, 1, [1, 0], dict(stride=None, padding=[0, 1], transpose=None)), # plain conv, padding [py, px]
    (3, 1, 1, [1, 0, 0, 0], dict(stride=None, padding=None, transpose=None)),  # generic: asymmetric padding
]

@pytest.mark.parametrize('k, up, down, padding, expected', PATHS)
@pytest.mark.parametrize('flip_weight', [True, False])
def test_fast_paths_equal_generic_sequence(k, up, down, padding, expected, flip_weight, monkeypatch):
    x, w, f = _problem('binomial', k, 2, seed=11, down=down)
    kwargs = dict(up=up, down=down, padding=padding, groups=2, flip_weight=flip_weight, flip_filter=False)
    fast = _run(x, w, f, **kwargs)

    # Generic sequence, fed with the same adjusted padding as the fast paths get.
    ref = reference_conv2d_resample(x, w, f, **kwargs)
    pad = conv2d_resample.upfirdn2d._parse_padding(padding)
    fw, fh = 4, 4
    if up > 1:
        pad = [pad[0] + (fw + up - 1) // 2, pad[1] + (fw - up) // 2, pad[2] + (fh + up - 1) // 2, pad[3] + (fh - up) // 2]
    if down > 1:
        pad = [pad[0] + (fw - down + 1) // 2, pad[1] + (fw - down) // 2, pad[2] + (fh - down + 1) // 2,
               pad[3] + (fh - down) // 2]
    generic = conv2d_resample._conv2d_resample_generic(torch.tensor(x), torch.tensor(w), torch.tensor(f), up, down,
                                                       pad, 2, flip_weight, False).numpy()
    np.testing.assert_allclose(fast, generic, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(generic, ref, rtol=1e-10, atol=1e-10)

    calls = _conv_calls(monkeypatch)
    _run(x, w, f, **kwargs)
    assert calls == [expected]

#----------------------------------------------------------------------------
# Gradients through every path with the custom conv op, including double backward.

@pytest.fixture
def gradfix_enabled():
    saved = conv2d_gradfix.enabled
    conv2d_gradfix.enabled = True
    yield
    conv2d_gradfix.enabled = saved

@pytest.mark.parametrize('k, up, down, padding', [(1, 1, 2, 0), (1, 2, 1, 0), (3, 1, 2, 1), (3, 2, 1, 1),
                                                  (3, 1, 1, 1), (3, 1, 1, [1, 0])])
def test_gradcheck_and_gradgradcheck(k, up, down, padding, gradfix_enabled):
    rng = np.random.default_rng(k * 10 + up)
    x = torch.tensor(rng.standard_normal([1, 2, 4, 3]), requires_grad=True)
    w = torch.tensor(rng.standard_normal([2, 1, k, k]), requires_grad=True)
    f = torch.tensor(_filters()['binomial'], dtype=torch.float32)
    fn = lambda x, w: conv2d_resample.conv2d_resample(x, w, f=f, up=up, down=down, padding=padding, groups=2,
                                                      flip_weight=(up == 1))
    assert torch.autograd.gradcheck(fn, (x, w), fast_mode=True)
    assert torch.autograd.gradgradcheck(fn, (x, w), fast_mode=True)

#----------------------------------------------------------------------------

def test_channels_last_float32():
    x, w, f = _problem('binomial', 3, 1, seed=3)
    ref = reference_conv2d_resample(x, w, f, up=2, down=1, padding=1, groups=1, flip_weight=False, flip_filter=False)
    xt = torch.tensor(x, dtype=torch.float32).to(memory_format=torch.channels_last)
    got = conv2d_resample.conv2d_resample(xt, torch.tensor(w, dtype=torch.float32), f=torch.tensor(f), up=2,
                                          padding=1, flip_weight=False)
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('kwargs, error, match', [
    (dict(up=0), ValueError, 'up must be >= 1, got 0'),
    (dict(down=2.0), TypeError, 'down must be an int, got float 2.0'),
    (dict(groups=True), TypeError, 'groups must be an int'),
    (dict(f=torch.ones([4], dtype=torch.float64)), ValueError, 'f must be None or a 1-D/2-D float32 tensor'),
    (dict(w=torch.ones([4, 4, 3, 3], dtype=torch.float32)), TypeError, 'w has dtype torch.float32 but x has torch.float64'),
    (dict(x=torch.ones([4, 5, 5], dtype=torch.float64)), ValueError, r'x must be a 4-D tensor .* shape \(4, 5, 5\)'),
])
def test_bad_arguments_are_reported(kwargs, error, match):
    args = dict(x=torch.ones([1, 4, 5, 5], dtype=torch.float64), w=torch.ones([4, 4, 3, 3], dtype=torch.float64))
    args.update(kwargs)
    with pytest.raises(error, match=match):
        conv2d_resample.conv2d_resample(**args)

#----------------------------------------------------------------------------
