"""upfirdn2d: setup_filter rules, the reference twin and the filter2d / upsample2d / downsample2d wrappers
against a float64 numpy/scipy reference, gradients of order 1-2, the CUDA kernels emulated on the host,
the CUDA autograd wiring on CPU, and CUDA-vs-twin on a GPU."""

import ctypes

import numpy as np
import pytest
import scipy.signal
import torch

from torch_utils.ops import upfirdn2d
from host_harness import compile_harness


#----------------------------------------------------------------------------
# Independent float64 reference: zero insertion, zero padding / cropping, scipy's true 2-D
# convolution in 'valid' mode per image plane, then decimation.

def np_upfirdn2d(x, f, up=(1, 1), down=(1, 1), pad=(0, 0, 0, 0), flip=False, gain=1.0):
    x = np.asarray(x, dtype=np.float64)
    f = np.asarray(f, dtype=np.float64)
    if f.ndim == 1:
        f = np.outer(f, f)               # separable: width pass then height pass
    if flip:
        f = f[::-1, ::-1]                # correlation = convolution with the reversed filter
    (upx, upy), (downx, downy), (px0, px1, py0, py1) = up, down, pad
    n, c, h, w = x.shape

    upsampled = np.zeros([n, c, h * upy, w * upx])
    upsampled[:, :, ::upy, ::upx] = x
    padded = np.zeros([n, c, h * upy + max(py0, 0) + max(py1, 0), w * upx + max(px0, 0) + max(px1, 0)])
    padded[:, :, max(py0, 0):max(py0, 0) + h * upy, max(px0, 0):max(px0, 0) + w * upx] = upsampled
    padded = padded[:, :, max(-py0, 0):padded.shape[2] - max(-py1, 0), max(-px0, 0):padded.shape[3] - max(-px1, 0)]

    out = np.stack([np.stack([scipy.signal.convolve2d(plane, f, mode='valid') for plane in image]) for image in padded])
    return out[:, :, ::downy, ::downx] * gain

def _randn(shape, seed, dtype=torch.float64, requires_grad=False):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=gen, dtype=torch.float64).to(dtype).requires_grad_(requires_grad)

# An asymmetric filter makes every flip or transposition mistake visible.
F2D = np.array([[1.0, 2.0, -1.0], [0.5, 3.0, 1.5]], dtype=np.float32)         # fh=2, fw=3
F1D = np.array([1.0, -2.0, 4.0, 3.0, 0.5, -1.0, 2.0, 1.0], dtype=np.float32)   # 8 taps -> separable

#----------------------------------------------------------------------------
# The cached CUDA Functions hold the plugin they were made with; tests that swap in the host
# plugin must not leak their Functions to other tests.

@pytest.fixture(autouse=True)
def fresh_cuda_functions():
    upfirdn2d._upfirdn2d_cuda.cache_clear()
    yield
    upfirdn2d._upfirdn2d_cuda.cache_clear()

#----------------------------------------------------------------------------
# setup_filter and the small parsers.

def test_setup_filter_rules():
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    assert f.dtype == torch.float32 and f.shape == (4, 4)
    np.testing.assert_allclose(f.numpy(), np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64)
    np.testing.assert_allclose(f[0].numpy(), [0.015625, 0.046875, 0.046875, 0.015625])

    assert upfirdn2d.setup_filter(np.ones(12)).shape == (12,)                    # >= 8 taps: separable
    assert upfirdn2d.setup_filter(np.ones(7)).shape == (7, 7)
    assert upfirdn2d.setup_filter(np.ones(12), separable=False).shape == (12, 12)
    assert upfirdn2d.setup_filter([1, 2], separable=True).shape == (2,)
    np.testing.assert_allclose(upfirdn2d.setup_filter(None).numpy(), [[1.0]])
    np.testing.assert_allclose(upfirdn2d.setup_filter(5).numpy(), [[1.0]])       # scalar -> 1 tap, normalized
    np.testing.assert_allclose(upfirdn2d.setup_filter(5, normalize=False).numpy(), [[25.0]])

    raw = np.array([[1, 2], [3, 4]], dtype=np.float64)
    got = upfirdn2d.setup_filter(raw, normalize=False, flip_filter=True, gain=4)
    np.testing.assert_allclose(got.numpy(), raw[::-1, ::-1] * 4)                 # gain ** (ndim / 2)
    got = upfirdn2d.setup_filter([1, 2, 3, 4, 5, 6, 7, 8], normalize=True, gain=4)
    np.testing.assert_allclose(got.numpy(), np.arange(1, 9) / 36 * 2, rtol=1e-6)

def test_setup_filter_errors():
    with pytest.raises(ValueError, match=r'separable=True needs a 1-D filter, got shape \[2, 2\]'):
        upfirdn2d.setup_filter([[1, 2], [3, 4]], separable=True)
    with pytest.raises(ValueError, match=r'f must be a scalar, a 1-D or a 2-D non-empty array, got shape \[1, 1, 1\]'):
        upfirdn2d.setup_filter(np.ones([1, 1, 1]))
    with pytest.raises(ValueError, match=r'got shape \[0\]'):
        upfirdn2d.setup_filter([])

def test_parsers():
    assert upfirdn2d._parse_scaling(2) == (2, 2)
    assert upfirdn2d._parse_scaling([1, 3]) == (1, 3)
    assert upfirdn2d._parse_scaling(np.int64(2)) == (2, 2)
    assert upfirdn2d._parse_padding(1) == (1, 1, 1, 1)
    assert upfirdn2d._parse_padding([1, 2]) == (1, 1, 2, 2)
    assert upfirdn2d._parse_padding([1, 2, 3, -4]) == (1, 2, 3, -4)
    assert upfirdn2d._get_filter_size(None) == (1, 1)
    assert upfirdn2d._get_filter_size(torch.zeros([2, 3])) == (3, 2)
    assert upfirdn2d._get_filter_size(torch.zeros([5])) == (5, 5)
    with pytest.raises(ValueError, match=r'scaling factor must be an int >= 1 or a list \[x, y\] of them, got 0'):
        upfirdn2d._parse_scaling(0)
    with pytest.raises(ValueError, match=r'got 1.5'):
        upfirdn2d._parse_scaling(1.5)
    with pytest.raises(ValueError, match=r'padding must be an int, \[px, py\] or \[px0, px1, py0, py1\] of ints, got \[1, 2, 3\]'):
        upfirdn2d._parse_padding([1, 2, 3])

def test_upfirdn2d_errors():
    x = torch.zeros([1, 1, 4, 4])
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    with pytest.raises(ValueError, match=r'x must be a 4-D \[N, C, H, W\] tensor, got a torch.float32 tensor of shape \[4, 4\]'):
        upfirdn2d.upfirdn2d(x[0, 0], f)
    with pytest.raises(ValueError, match=r'f must be None or a float32 1-D/2-D tensor.*torch.float64'):
        upfirdn2d.upfirdn2d(x, f.double())
    with pytest.raises(ValueError, match=r'gradients with respect to f are not supported'):
        upfirdn2d.upfirdn2d(x, f.clone().requires_grad_(True))
    with pytest.raises(ValueError, match=r'output would be empty: input 4x4.*smaller than the 4x4 filter'):
        upfirdn2d.upfirdn2d(x, f, padding=-1)
    with pytest.raises(ValueError, match=r"impl must be 'cuda' or 'ref', got 'fast'"):
        upfirdn2d.upfirdn2d(x, f, impl='fast')

#----------------------------------------------------------------------------
# The twin against numpy over many combinations of filter, up, down, padding, flip and gain.

CASES = [
    # (input [N, C, H, W], filter, up, down, padding, flip, gain)
    ([2, 3, 5, 6], F2D, 1, 1, 0, False, 1.0),
    ([1, 2, 5, 6], F2D, 1, 1, [2, 1, 0, 3], True, 1.0),
    ([1, 2, 4, 5], F2D, 2, 1, [1, 2, 2, 1], False, 4.0),
    ([1, 2, 4, 5], F2D, [3, 2], 1, [0, 2, 1, 0], True, 0.5),
    ([1, 2, 7, 8], F2D, 1, 2, [1, 1, 1, 1], False, 1.0),
    ([1, 2, 9, 8], F2D, 1, [2, 3], [2, 0, 1, 1], True, 2.0),
    ([1, 2, 5, 4], F2D, 3, 2, [-1, 2, 3, -2], False, 1.5),
    ([1, 1, 6, 7], F1D, 1, 1, [4, 3, 4, 3], False, 1.0),
    ([1, 2, 5, 6], F1D, 2, 1, [4, 3, 5, 2], True, 4.0),
    ([1, 2, 12, 11], F1D, 1, 2, [3, 3, 4, 2], False, 1.0),
    ([1, 2, 6, 5], F1D, [2, 1], [1, 3], [-2, 5, 6, 1], False, 9.0),
    ([1, 2, 3, 4], None, 2, 1, 0, False, 1.0),
    ([1, 2, 6, 7], None, 1, 2, [0, 1], False, 3.0),
    ([1, 1, 4, 4], np.ones([5, 5], np.float32), 4, 3, [-3, 2, 1, -1], True, 1.0),
]

def _np_args(f, up, down, padding):
    return (upfirdn2d._parse_scaling(up), upfirdn2d._parse_scaling(down), upfirdn2d._parse_padding(padding))

@pytest.mark.parametrize('case', CASES, ids=[str(i) for i in range(len(CASES))])
def test_ref_matches_numpy(case):
    shape, f, up, down, padding, flip, gain = case
    x = _randn(shape, seed=1)
    ft = torch.as_tensor(f) if f is not None else None
    got = upfirdn2d.upfirdn2d(x, ft, up=up, down=down, padding=padding, flip_filter=flip, gain=gain, impl='ref')
    up_xy, down_xy, pad = _np_args(f, up, down, padding)
    want = np_upfirdn2d(x.numpy(), f if f is not None else [[1.0]], up_xy, down_xy, pad, flip, gain)
    assert got.shape == want.shape
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-6)  # the filter itself is float32 * gain

def test_ref_float32_float16_and_channels_last():
    x = _randn([2, 3, 6, 5], seed=2)
    want = np_upfirdn2d(x.numpy(), F2D, (2, 2), (1, 1), (1, 2, 2, 1), False, 4.0)
    for dtype, tol in [(torch.float32, 1e-5), (torch.float16, 2e-2)]:
        xd = x.to(dtype).contiguous(memory_format=torch.channels_last)
        got = upfirdn2d.upfirdn2d(xd, torch.as_tensor(F2D), up=2, padding=[1, 2, 2, 1], gain=4.0)
        assert got.dtype == dtype
        np.testing.assert_allclose(got.double().numpy(), want, rtol=tol, atol=tol * 4)

def test_impulse_response_flip_convention():
    # A unit impulse reproduces the filter under convolution and its reverse under correlation.
    x = torch.zeros([1, 1, 5, 5], dtype=torch.float64)
    x[0, 0, 2, 2] = 1
    f = torch.as_tensor(F2D)
    conv = upfirdn2d.upfirdn2d(x, f, padding=[2, 2, 1, 1], impl='ref')[0, 0]
    corr = upfirdn2d.upfirdn2d(x, f, padding=[2, 2, 1, 1], flip_filter=True, impl='ref')[0, 0]
    np.testing.assert_allclose(conv[2:4, 2:5].numpy(), F2D)
    assert conv.abs().sum() == np.abs(F2D).sum()
    np.testing.assert_allclose(corr[2:4, 2:5].numpy(), F2D[::-1, ::-1])

#----------------------------------------------------------------------------
# Wrappers: padding formulas, gain, output sizes and DC preservation.

@pytest.mark.parametrize('f', [[1, 3, 3, 1], [1, 2, 1], np.ones(9), [[1, 2], [3, 4], [5, 6]]], ids=['4tap', '3tap', '9sep', '3x2'])
@pytest.mark.parametrize('padding', [0, [1, 0, 2, 1]])
def test_wrappers_match_numpy(f, padding):
    f = upfirdn2d.setup_filter(f)
    fw, fh = upfirdn2d._get_filter_size(f)
    px0, px1, py0, py1 = upfirdn2d._parse_padding(padding)
    x = _randn([1, 2, 8, 6], seed=3)
    fn = f.numpy()

    got = upfirdn2d.filter2d(x, f, padding=padding, gain=2.0, impl='ref')
    want = np_upfirdn2d(x.numpy(), fn, pad=(px0 + fw // 2, px1 + (fw - 1) // 2, py0 + fh // 2, py1 + (fh - 1) // 2), gain=2.0)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-6)

    got = upfirdn2d.upsample2d(x, f, up=[2, 3], padding=padding, impl='ref')
    want = np_upfirdn2d(x.numpy(), fn, up=(2, 3), pad=(px0 + (fw + 1) // 2, px1 + (fw - 2) // 2,
                                                       py0 + (fh + 2) // 2, py1 + (fh - 3) // 2), gain=6.0)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-6)

    got = upfirdn2d.downsample2d(x, f, down=2, padding=padding, flip_filter=True, impl='ref')
    want = np_upfirdn2d(x.numpy(), fn, down=(2, 2), pad=(px0 + (fw - 1) // 2, px1 + (fw - 2) // 2,
                                                         py0 + (fh - 1) // 2, py1 + (fh - 2) // 2), flip=True)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-6)

def test_wrappers_sizes_and_dc_gain():
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    x = torch.ones([1, 1, 8, 8])
    assert upfirdn2d.filter2d(x, f).shape == (1, 1, 8, 8)
    up = upfirdn2d.upsample2d(x, f)
    down = upfirdn2d.downsample2d(x, f)
    assert up.shape == (1, 1, 16, 16) and down.shape == (1, 1, 4, 4)
    torch.testing.assert_close(up[:, :, 2:-2, 2:-2], torch.ones([1, 1, 12, 12]))
    torch.testing.assert_close(down[:, :, 1:-1, 1:-1], torch.ones([1, 1, 2, 2]))

#----------------------------------------------------------------------------
# Gradients of the twin, orders 1 and 2.

@pytest.mark.slow  # seconds of CPU: in the full suite, not the fast tier
@pytest.mark.parametrize('case', [CASES[i] for i in (1, 3, 6, 8, 10, 12)], ids=['corr', 'up32', 'crop', 'sepup', 'sepmix', 'nofilt'])
def test_ref_gradcheck_and_gradgradcheck(case):
    shape, f, up, down, padding, flip, gain = case
    x = _randn([1, 2] + shape[2:], seed=4, requires_grad=True)
    ft = torch.as_tensor(f) if f is not None else None
    fn = lambda x: upfirdn2d.upfirdn2d(x, ft, up=up, down=down, padding=padding, flip_filter=flip, gain=gain, impl='ref')
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,), fast_mode=True)   # full mode takes ~20 s per case on CPU

#----------------------------------------------------------------------------
# The input-gradient formula of the CUDA path (upfirdn2d with up/down swapped, filter flipped and
# _transposed_padding) must be the adjoint of the forward op: <A x, g> == <x, A^T g>.

@pytest.mark.parametrize('case', CASES, ids=[str(i) for i in range(len(CASES))])
def test_transposed_op_is_adjoint(case):
    shape, f, up, down, padding, flip, gain = case
    ft = torch.as_tensor(f) if f is not None else None
    x = _randn(shape, seed=5)
    y = upfirdn2d.upfirdn2d(x, ft, up=up, down=down, padding=padding, flip_filter=flip, gain=gain, impl='ref')
    g = _randn(list(y.shape), seed=6)
    up_xy, down_xy, pad = _np_args(f, up, down, padding)
    grad_pad = upfirdn2d._transposed_padding(ft, up_xy, down_xy, pad, shape[2:], y.shape[2:])
    xt = upfirdn2d.upfirdn2d(g, ft, up=down_xy, down=up_xy, padding=grad_pad, flip_filter=not flip, gain=gain, impl='ref')
    assert xt.shape == x.shape
    torch.testing.assert_close((y * g).sum(), (x * xt).sum(), rtol=1e-10, atol=1e-10)

#----------------------------------------------------------------------------
# Host emulation of the CUDA kernels: upfirdn2d.h compiled by the host C++ compiler. mode 0 runs the
# generic kernel one output at a time; mode 1 runs the tiled kernel block by block, every thread's
# load phase before every thread's compute phase, as the barrier orders them on the GPU.

HARNESS_SOURCE = r'''
#include "upfirdn2d.h"
#include <vector>
template <typename T>
static int run(const void* x, const float* f, void* y, const int* v, double gain, int mode,
               int nthreads, int max_tile, int smem_limit)
{
    Upfirdn2dParams p;
    p.x = x; p.f = f; p.y = y; p.gain = gain;
    p.batch = v[0]; p.channels = v[1]; p.in_h = v[2]; p.in_w = v[3]; p.out_h = v[4]; p.out_w = v[5];
    for (int i = 0; i < 4; i++) { p.x_stride[i] = v[6 + i]; p.y_stride[i] = v[10 + i]; }
    p.fh = v[14]; p.fw = v[15]; p.upx = v[16]; p.upy = v[17]; p.downx = v[18]; p.downy = v[19];
    p.padx0 = v[20]; p.pady0 = v[21]; p.flip = v[22]; p.channel_fastest = v[23];
    if (mode == 0) {
        int total = p.batch * p.channels * p.out_h * p.out_w;
        for (int idx = 0; idx < total; idx++)
            upfirdn2d_generic_element<T>(p, idx);
        return 0;
    }
    Upfirdn2dTiling t = upfirdn2d_plan_tiling(p, (int)sizeof(T), smem_limit, max_tile);
    if (t.tile_h == 0)
        return -1;
    int blocks = p.batch * p.channels * t.tiles_y * t.tiles_x;
    std::vector<double> smem(t.smem_bytes / sizeof(double) + 1);
    for (int block = 0; block < blocks; block++) {
        for (int tid = 0; tid < nthreads; tid++)
            upfirdn2d_tile_load<T>(p, t, block, tid, nthreads, smem.data());
        for (int tid = 0; tid < nthreads; tid++)
            upfirdn2d_tile_compute<T>(p, t, block, tid, nthreads, smem.data());
    }
    return t.tile_h * 1000 + t.tile_w;
}
#define EXPORT(NAME, T) extern "C" int NAME(const void* x, const float* f, void* y, const int* v, double gain, \
    int mode, int nthreads, int max_tile, int smem_limit) { return run<T>(x, f, y, v, gain, mode, nthreads, max_tile, smem_limit); }
EXPORT(upfirdn2d_host_f32, float)
EXPORT(upfirdn2d_host_f64, double)
'''

@pytest.fixture(scope='module')
def harness(tmp_path_factory):
    lib = compile_harness(tmp_path_factory, 'upfirdn2d_host', HARNESS_SOURCE)
    for fn in (lib.upfirdn2d_host_f32, lib.upfirdn2d_host_f64):
        fn.restype = ctypes.c_int
        fn.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_double] + [ctypes.c_int] * 4
    return lib

# Python stand-in for the pybind function of upfirdn2d.cpp (same signature, output size and memory
# format rules), running the host-compiled kernels. mode: 'generic', 'tiled' or 'auto' (the .cu policy).
class HostPlugin:
    def __init__(self, lib, mode='auto', nthreads=256, max_tile=32, smem_limit=48 * 1024):
        self.lib, self.mode, self.nthreads, self.max_tile, self.smem_limit = lib, mode, nthreads, max_tile, smem_limit
        self.kernels = []

    def upfirdn2d(self, x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip, gain):
        assert x.ndim == 4 and f.ndim == 2 and f.dtype == torch.float32 and x.dtype in (torch.float32, torch.float64)
        n, c, h, w = x.shape
        fh, fw = f.shape
        out_h = (h * upy + pady0 + pady1 - fh) // downy + 1
        out_w = (w * upx + padx0 + padx1 - fw) // downx + 1
        assert out_h >= 1 and out_w >= 1
        channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
        fmt = torch.channels_last if channels_last else torch.contiguous_format   # ~ x.suggest_memory_format()
        y = torch.empty([n, c, out_h, out_w], dtype=x.dtype).contiguous(memory_format=fmt)
        f = f.contiguous()
        channel_fastest = int(y.stride(1) == 1 and c > 1)
        v = [n, c, h, w, out_h, out_w, *x.stride(), *y.stride(), fh, fw, upx, upy, downx, downy, padx0, pady0,
             int(flip), channel_fastest]
        ints = (ctypes.c_int * len(v))(*v)
        tiled = self.mode == 'tiled' or (self.mode == 'auto' and not channel_fastest and out_h * out_w >= 256)
        fn = self.lib.upfirdn2d_host_f64 if x.dtype == torch.float64 else self.lib.upfirdn2d_host_f32
        ret = fn(x.data_ptr(), f.data_ptr(), y.data_ptr(), ints, float(gain), int(tiled), self.nthreads, self.max_tile,
                 self.smem_limit)
        if ret < 0:  # nothing fits into shared memory: the generic kernel, as in the .cu
            ret = fn(x.data_ptr(), f.data_ptr(), y.data_ptr(), ints, float(gain), 0, 1, 0, 0)
        self.kernels.append(ret)
        return y

HOST_MODES = [dict(mode='generic'), dict(mode='tiled'), dict(mode='tiled', nthreads=37, max_tile=8),
              dict(mode='tiled', max_tile=32, smem_limit=2048)]

@pytest.mark.parametrize('case', CASES, ids=[str(i) for i in range(len(CASES))])
@pytest.mark.parametrize('plugin_kwargs', HOST_MODES, ids=['generic', 'tiled', 'tiled-odd', 'tiled-small-smem'])
@pytest.mark.parametrize('layout', ['nchw', 'nhwc', 'strided'])
def test_host_kernels_match_numpy(harness, case, plugin_kwargs, layout):
    shape, f, up, down, padding, flip, gain = case
    x = _randn(shape, seed=7)
    if layout == 'nhwc':
        x = x.contiguous(memory_format=torch.channels_last)
    elif layout == 'strided':
        x = _randn(shape[:3] + [shape[3] * 2], seed=7)[:, :, :, ::2]   # not dense at all
    f2 = torch.as_tensor(f if f is not None else np.ones([1, 1], np.float32))
    up_xy, down_xy, pad = _np_args(f, up, down, padding)
    plugin = HostPlugin(harness, **plugin_kwargs)
    if f2.ndim == 1:  # the plugin only takes 2-D filters; the separable path is covered below
        f2 = torch.outer(f2, f2)
    got = plugin.upfirdn2d(x, f2, *up_xy, *down_xy, *pad, flip, gain)
    want = np_upfirdn2d(x.numpy(), f2.numpy(), up_xy, down_xy, pad, flip, gain)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-10)
    if layout == 'nhwc' and shape[1] > 1:
        assert got.is_contiguous(memory_format=torch.channels_last)

@pytest.mark.parametrize('max_tile,smem_limit,expected', [(32, 48 * 1024, 20020), (32, 2048, 8008), (32, 100, 0)])
def test_host_tiling_plan_shrinks_tiles(harness, max_tile, smem_limit, expected):
    x = _randn([1, 2, 40, 40], seed=8, dtype=torch.float32)
    f = torch.ones([4, 4])
    plugin = HostPlugin(harness, mode='tiled', max_tile=max_tile, smem_limit=smem_limit)
    y = plugin.upfirdn2d(x, f, 1, 1, 2, 2, 1, 1, 1, 1, False, 1.0)   # 40x40 -> 20x20
    assert y.shape == (1, 2, 20, 20)
    assert plugin.kernels == [expected]   # 1000 * tile_h + tile_w; 0 = generic fallback

#----------------------------------------------------------------------------
# The CUDA path's autograd Function, run on CPU with the host-emulated kernels as the plugin:
# separable passes, gain split, cached configurations and the transposed backward, checked by
# value, gradcheck and gradgradcheck.

@pytest.fixture(params=['generic', 'tiled'])
def host_plugin(request, harness, monkeypatch):
    plugin = HostPlugin(harness, mode=request.param)
    monkeypatch.setattr(upfirdn2d, '_plugin', lambda: plugin)
    upfirdn2d._upfirdn2d_cuda.cache_clear()
    return plugin

def _cuda_fn(up, down, padding, flip, gain):
    up_xy, down_xy, pad = _np_args(None, up, down, padding)
    return upfirdn2d._upfirdn2d_cuda(up=up_xy, down=down_xy, padding=pad, flip_filter=flip, gain=float(gain))

@pytest.mark.parametrize('case', CASES, ids=[str(i) for i in range(len(CASES))])
def test_cuda_autograd_wiring_on_host(host_plugin, case):
    shape, f, up, down, padding, flip, gain = case
    ft = torch.as_tensor(f) if f is not None else None
    x = _randn([1, 2] + shape[2:], seed=9, requires_grad=True)
    fn = lambda x: _cuda_fn(up, down, padding, flip, gain).apply(x, ft)
    ref = lambda x: upfirdn2d.upfirdn2d(x, ft, up=up, down=down, padding=padding, flip_filter=flip, gain=gain, impl='ref')
    torch.testing.assert_close(fn(x), ref(x), rtol=1e-10, atol=1e-10)
    assert len(host_plugin.kernels) == (2 if ft is not None and ft.ndim == 1 else 1)
    assert torch.autograd.gradcheck(fn, (x,), fast_mode=True)
    assert torch.autograd.gradgradcheck(fn, (x,), fast_mode=True)

def test_cuda_wrappers_on_host(host_plugin):
    # The wrappers pass their padding/gain through the same dispatcher arguments as the twin.
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    x = _randn([2, 3, 16, 16], seed=10)
    for name, kwargs in [('filter2d', dict()), ('upsample2d', dict(up=2)), ('downsample2d', dict(down=2))]:
        wrapper = getattr(upfirdn2d, name)
        ref = wrapper(x, f, impl='ref', **kwargs)
        out_h, out_w = ref.shape[2:]
        padding = dict(filter2d=[2, 1, 2, 1], upsample2d=[2, 1, 2, 1], downsample2d=[1, 1, 1, 1])[name]
        up = kwargs.get('up', 1)
        got = _cuda_fn(up, kwargs.get('down', 1), padding, False, up * up).apply(x, f)
        torch.testing.assert_close(got, ref, rtol=1e-10, atol=1e-10)

#----------------------------------------------------------------------------
# Real CUDA kernels vs twin (needs a GPU and a working build).

@pytest.fixture
def cuda_plugin():
    if not upfirdn2d._init():
        pytest.fail('upfirdn2d CUDA plugin failed to build; see the warning above')

GPU_CASES = CASES + [
    ([2, 4, 64, 64], np.outer([1, 3, 3, 1], [1, 3, 3, 1]).astype(np.float32) / 64, 2, 1, [2, 1, 2, 1], False, 4.0),
    ([2, 4, 64, 64], np.outer([1, 3, 3, 1], [1, 3, 3, 1]).astype(np.float32) / 64, 1, 2, [1, 1, 1, 1], False, 1.0),
    ([1, 3, 40, 50], np.ones(12, np.float32) / 12, 2, 1, [6, 5, 6, 5], True, 4.0),
]

@pytest.mark.gpu
@pytest.mark.parametrize('case', GPU_CASES, ids=[str(i) for i in range(len(GPU_CASES))])
@pytest.mark.parametrize('dtype', [torch.float16, torch.float32, torch.float64])
@pytest.mark.parametrize('channels_last', [False, True])
def test_cuda_matches_ref(cuda_plugin, case, dtype, channels_last):
    shape, f, up, down, padding, flip, gain = case
    tol = dict(rtol=2e-2, atol=5e-2) if dtype == torch.float16 else dict(rtol=1e-4, atol=1e-4) if dtype == torch.float32 \
        else dict(rtol=1e-6, atol=1e-6)
    ft = torch.as_tensor(f).cuda() if f is not None else None
    x0 = _randn(shape, seed=11, dtype=dtype).cuda()
    if channels_last:
        x0 = x0.contiguous(memory_format=torch.channels_last)
    results = {}
    for impl in ['cuda', 'ref']:
        x = x0.clone().requires_grad_(True)
        y = upfirdn2d.upfirdn2d(x, ft, up=up, down=down, padding=padding, flip_filter=flip, gain=gain, impl=impl)
        dy = _randn(list(y.shape), seed=12, dtype=dtype).cuda().requires_grad_(True)
        dx, = torch.autograd.grad(y, x, dy, create_graph=True)
        d_dy, = torch.autograd.grad((dx * dx.detach()).sum(), dy)   # backward of the backward
        results[impl] = (y, dx, d_dy)
    if channels_last and shape[1] > 1:
        assert results['cuda'][0].is_contiguous(memory_format=torch.channels_last)
    for got, want in zip(results['cuda'], results['ref']):
        torch.testing.assert_close(got.float(), want.float(), **tol)

@pytest.mark.gpu
def test_cuda_second_order(cuda_plugin):
    f = upfirdn2d.setup_filter([1, 3, 3, 1]).cuda()
    x = _randn([1, 2, 8, 8], seed=13).cuda().requires_grad_(True)
    fn = lambda x: upfirdn2d.upsample2d(x, f) ** 2
    assert torch.autograd.gradgradcheck(fn, (x,))

#----------------------------------------------------------------------------
