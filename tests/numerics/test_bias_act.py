"""bias_act: the reference twin against a float64 numpy reference, gradients of order 1-2, the CUDA
kernel's math emulated on the host, the CUDA autograd wiring on CPU, and CUDA-vs-twin on a GPU."""

import ctypes

import numpy as np
import pytest
import torch

from torch_utils.ops import bias_act
from host_harness import compile_harness

ACTS = list(bias_act.activation_funcs)

#----------------------------------------------------------------------------
# Independent float64 reference: numpy formulas of every activation.

SELU_SCALE, SELU_ALPHA = 1.0507009873554805, 1.6732632423543772

def np_activation(s, act, alpha):
    return {
        'linear':   lambda: s,
        'relu':     lambda: np.maximum(s, 0),
        'lrelu':    lambda: np.where(s > 0, s, alpha * s),
        'tanh':     lambda: np.tanh(s),
        'sigmoid':  lambda: 1 / (1 + np.exp(-s)),
        'elu':      lambda: np.where(s > 0, s, np.expm1(np.minimum(s, 0))),
        'selu':     lambda: SELU_SCALE * np.where(s > 0, s, SELU_ALPHA * np.expm1(np.minimum(s, 0))),
        'softplus': lambda: np.where(s > 20, s, np.log1p(np.exp(np.minimum(s, 20)))),
        'swish':    lambda: s / (1 + np.exp(-s)),
    }[act]()

def np_bias_act(x, b, dim, act, alpha, gain, clamp):
    s = x.copy()
    if b is not None:
        shape = [1] * x.ndim
        shape[dim] = -1
        s = s + b.reshape(shape)
    y = np_activation(s, act, alpha) * gain
    if clamp is not None:
        y = np.clip(y, -clamp, clamp)
    return y

def _randn(shape, seed, dtype=torch.float64, scale=1.0, requires_grad=False):
    gen = torch.Generator().manual_seed(seed)
    t = torch.randn(shape, generator=gen, dtype=torch.float64) * scale
    return t.to(dtype).requires_grad_(requires_grad)

#----------------------------------------------------------------------------
# The cached CUDA Functions hold the plugin they were made with; tests that swap in the host
# plugin must not leak their Functions to other tests.

@pytest.fixture(autouse=True)
def fresh_cuda_functions():
    bias_act._bias_act_cuda.cache_clear()
    yield
    bias_act._bias_act_cuda.cache_clear()

#----------------------------------------------------------------------------
# Table of activations (names, defaults and codes are part of the compatibility surface).

def test_activation_table():
    table = bias_act.activation_funcs
    assert list(table) == ['linear', 'relu', 'lrelu', 'tanh', 'sigmoid', 'elu', 'selu', 'softplus', 'swish']
    assert [table[a].cuda_idx for a in table] == list(range(1, 10))
    assert table['lrelu'].def_alpha == 0.2
    for name in ['relu', 'lrelu', 'swish']:
        assert table[name].def_gain == np.sqrt(2) and isinstance(table[name].def_gain, np.float64)
    assert [a for a in table if table[a].has_2nd_grad] == ['tanh', 'sigmoid', 'elu', 'selu', 'softplus', 'swish']
    assert table['swish'].ref == 'x' and table['linear'].ref == '' and table['relu'].ref == 'y'

#----------------------------------------------------------------------------
# Forward of the twin vs numpy, all activations, with and without bias/gain/clamp/alpha.

@pytest.mark.parametrize('act', ACTS)
@pytest.mark.parametrize('kwargs', [dict(), dict(alpha=0.3, gain=0.7), dict(gain=2.5, clamp=1.2), dict(clamp=0.0)])
def test_ref_forward_matches_numpy(act, kwargs):
    x = _randn([3, 5, 4, 2], seed=1, scale=2)
    b = _randn([5], seed=2)
    spec = bias_act.activation_funcs[act]
    alpha = kwargs.get('alpha', spec.def_alpha)
    gain = kwargs.get('gain', spec.def_gain)
    want = np_bias_act(x.numpy(), b.numpy(), 1, act, alpha, gain, kwargs.get('clamp'))
    got = bias_act.bias_act(x, b, act=act, impl='ref', **kwargs)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-12)

@pytest.mark.parametrize('dim,shape', [(0, [4, 3]), (1, [2, 4]), (2, [2, 3, 4, 5]), (3, [2, 1, 3, 4])])
def test_ref_bias_along_any_dim(dim, shape):
    x = _randn(shape, seed=3)
    b = _randn([shape[dim]], seed=4)
    want = np_bias_act(x.numpy(), b.numpy(), dim, 'lrelu', 0.2, np.sqrt(2), None)
    got = bias_act.bias_act(x, b, dim=dim, act='lrelu', impl='ref')
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-12)

def test_ref_without_bias_and_default_impl_on_cpu():
    x = _randn([2, 3, 4], seed=5, dtype=torch.float32)
    got = bias_act.bias_act(x, act='swish')   # impl='cuda' on a CPU tensor takes the twin
    want = np_bias_act(x.double().numpy(), None, 1, 'swish', 0, np.sqrt(2), None)
    assert got.dtype == torch.float32 and got.shape == x.shape
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6)

def test_ref_softplus_threshold_and_extremes_are_finite():
    x = torch.tensor([-200.0, -30.0, 0.0, 19.0, 25.0, 200.0], dtype=torch.float64)
    for act in ACTS:
        y = bias_act.bias_act(x, act=act, impl='ref')
        assert torch.isfinite(y).all(), act
    np.testing.assert_allclose(bias_act.bias_act(x, act='softplus', impl='ref').numpy(),
                               np_activation(x.numpy(), 'softplus', 0), rtol=1e-12)

#----------------------------------------------------------------------------
# User errors.

def test_errors_name_the_problem():
    x = torch.zeros([2, 3])
    with pytest.raises(ValueError, match=r"unknown act='gelu'.*lrelu"):
        bias_act.bias_act(x, act='gelu')
    with pytest.raises(ValueError, match=r'unknown act=None'):
        bias_act.bias_act(x, act=None)
    with pytest.raises(ValueError, match=r'dim=2 is out of range for x with 2 dimensions'):
        bias_act.bias_act(x, torch.zeros([3]), dim=2)
    with pytest.raises(ValueError, match=r'b must be a 1-D tensor of length x.shape\[1\] = 3, got \[4\]'):
        bias_act.bias_act(x, torch.zeros([4]))
    with pytest.raises(ValueError, match=r'clamp must be >= 0 or None \(disabled\), got -1'):
        bias_act.bias_act(x, clamp=-1)
    with pytest.raises(ValueError, match=r"impl must be 'cuda' or 'ref', got 'cpu'"):
        bias_act.bias_act(x, impl='cpu')
    with pytest.raises(TypeError, match=r'x must be a torch.Tensor, got list'):
        bias_act.bias_act([1.0, 2.0], impl='ref')

#----------------------------------------------------------------------------
# Gradients of the twin, orders 1 and 2 (inputs kept away from the kinks and the clamp bounds).

@pytest.mark.parametrize('act', ACTS)
@pytest.mark.parametrize('clamp', [None, 0.8])
def test_ref_gradcheck_and_gradgradcheck(act, clamp):
    x = _randn([2, 3, 3], seed=6, requires_grad=True)
    b = _randn([3], seed=7, scale=0.1, requires_grad=True)
    fn = lambda x, b: bias_act.bias_act(x, b, act=act, alpha=0.25, gain=1.3, clamp=clamp, impl='ref')
    assert torch.autograd.gradcheck(fn, (x, b))
    assert torch.autograd.gradgradcheck(fn, (x, b))

#----------------------------------------------------------------------------
# Host emulation of the CUDA kernel: bias_act.h compiled by the host C++ compiler and driven
# element by element through ctypes. Skipped where no compiler is available.

HARNESS_SOURCE = r'''
#include "bias_act.h"
template <typename T>
static void run(const void* x, const void* b, const void* xref, const void* yref, const void* dy, void* out,
                int numel, int bias_len, int bias_step, int act, int grad, double alpha, double gain, double clamp)
{
    BiasActParams p;
    p.x = x; p.b = b; p.xref = xref; p.yref = yref; p.dy = dy; p.out = out;
    p.numel = numel; p.bias_len = bias_len; p.bias_step = bias_step;
    p.act = act; p.grad = grad; p.alpha = alpha; p.gain = gain; p.clamp = clamp;
    for (int i = 0; i < numel; i++)
        bias_act_element<T>(p, i);
}
#define EXPORT(NAME, T) extern "C" void NAME(const void* x, const void* b, const void* xref, const void* yref, \
    const void* dy, void* out, int numel, int bias_len, int bias_step, int act, int grad, double alpha, \
    double gain, double clamp) { run<T>(x, b, xref, yref, dy, out, numel, bias_len, bias_step, act, grad, alpha, gain, clamp); }
EXPORT(bias_act_host_f32, float)
EXPORT(bias_act_host_f64, double)
'''

@pytest.fixture(scope='module')
def harness(tmp_path_factory):
    lib = compile_harness(tmp_path_factory, 'bias_act_host', HARNESS_SOURCE)
    for fn in (lib.bias_act_host_f32, lib.bias_act_host_f64):
        fn.restype = None
        fn.argtypes = [ctypes.c_void_p] * 6 + [ctypes.c_int] * 5 + [ctypes.c_double] * 3
    return lib

# Python stand-in for the pybind function of bias_act.cpp (same signature, same checks that matter),
# running the host-compiled kernel math on CPU tensors of float32/float64.
class HostPlugin:
    def __init__(self, lib):
        self.lib = lib
        self.calls = []

    def bias_act(self, x, b, xref, yref, dy, grad, dim, act, alpha, gain, clamp):
        assert bias_act._is_dense(x) and x.dtype in (torch.float32, torch.float64)
        for t in (xref, yref, dy):
            assert t.numel() == 0 or (t.shape == x.shape and t.stride() == x.stride() and t.dtype == x.dtype)
        assert b.numel() == 0 or (b.shape == (x.shape[dim],) and b.is_contiguous())
        assert grad != 2 or dy.numel() > 0
        self.calls.append(grad)
        y = torch.empty_like(x)
        ptr = lambda t: t.data_ptr() if t.numel() else None
        fn = self.lib.bias_act_host_f64 if x.dtype == torch.float64 else self.lib.bias_act_host_f32
        step = x.stride(dim) if b.numel() and x.shape[dim] > 1 else 1
        fn(ptr(x), ptr(b), ptr(xref), ptr(yref), ptr(dy), ptr(y), x.numel(), b.numel(), step, act, grad,
           float(alpha), float(gain), float(clamp))
        return y

def _kernel(harness, x, b=None, xref=None, yref=None, dy=None, grad=0, dim=1, act='linear', alpha=0.0, gain=1.0,
            clamp=-1.0):
    empty = x.new_empty([0])
    pick = lambda t: t.detach() if t is not None else empty
    return HostPlugin(harness).bias_act(x.detach(), pick(b), pick(xref), pick(yref), pick(dy), grad, dim,
                                        bias_act.activation_funcs[act].cuda_idx, alpha, gain, clamp)

@pytest.mark.parametrize('act', ACTS)
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('clamp', [-1.0, 0.9])
def test_host_kernel_forward(harness, act, dtype, clamp):
    x = _randn([2, 3, 5, 4], seed=8, dtype=dtype, scale=3).contiguous(memory_format=torch.channels_last)
    x[0, 0, 0, :4] = torch.tensor([-150.0, 150.0, 0.0, 25.0], dtype=dtype)  # saturation / threshold paths
    b = _randn([3], seed=9, dtype=dtype)
    got = _kernel(harness, x, b, act=act, alpha=0.3, gain=1.7, clamp=clamp)
    want = np_bias_act(x.double().numpy(), b.double().numpy(), 1, act, 0.3, 1.7, clamp if clamp >= 0 else None)
    assert got.stride() == x.stride()
    tol = 1e-12 if dtype == torch.float64 else 2e-6
    np.testing.assert_allclose(got.double().numpy(), want, rtol=tol, atol=tol)

# The output alone (yref) determines the derivative only for the piecewise linear activations.
@pytest.mark.parametrize('act,source', [(a, 'xref') for a in ACTS] + [(a, 'yref') for a in ['linear', 'relu', 'lrelu']])
@pytest.mark.parametrize('clamp', [-1.0, 0.9])
def test_host_kernel_gradients_match_autograd(harness, act, clamp, source):
    x = _randn([3, 4, 5], seed=10, scale=2, requires_grad=True)
    b = _randn([4], seed=11, requires_grad=True)
    dy = _randn([3, 4, 5], seed=12, requires_grad=True)
    d_dx = _randn([3, 4, 5], seed=13)
    kw = dict(act=act, alpha=0.3, gain=1.7, clamp=(clamp if clamp >= 0 else None))
    y = bias_act.bias_act(x, b, impl='ref', **kw)
    dx, = torch.autograd.grad(y, x, dy, create_graph=True)
    refs = dict(xref=x) if source == 'xref' else dict(yref=y)
    kkw = dict(act=act, alpha=0.3, gain=1.7, clamp=clamp)

    got_dx = _kernel(harness, dy, b, grad=1, **refs, **kkw)
    np.testing.assert_allclose(got_dx.numpy(), dx.detach().numpy(), rtol=1e-12, atol=1e-12)

    if bias_act.activation_funcs[act].has_2nd_grad:
        d_x, = torch.autograd.grad(dx, x, d_dx)
        got_d_x = _kernel(harness, d_dx, b, xref=x, dy=dy, grad=2, **kkw)
        np.testing.assert_allclose(got_d_x.numpy(), d_x.numpy(), rtol=1e-10, atol=1e-12)

#----------------------------------------------------------------------------
# The CUDA path's autograd Functions, run on CPU with the host-emulated kernel as the plugin:
# values, gradcheck and gradgradcheck of the whole wiring (saved tensors, grad modes, bias sums).

@pytest.fixture
def host_plugin(harness, monkeypatch):
    plugin = HostPlugin(harness)
    monkeypatch.setattr(bias_act, '_plugin', lambda: plugin)
    bias_act._bias_act_cuda.cache_clear()
    return plugin

@pytest.mark.parametrize('act', ACTS)
@pytest.mark.parametrize('clamp', [None, 0.9])
def test_cuda_autograd_wiring_on_host(host_plugin, act, clamp):
    x = _randn([2, 3, 4], seed=14, scale=2, requires_grad=True)
    b = _randn([3], seed=15, scale=0.3, requires_grad=True)
    spec = bias_act.activation_funcs[act]
    args = (float(spec.def_alpha if act != 'lrelu' else 0.3), float(spec.def_gain), float(clamp if clamp is not None else -1))
    fn = lambda x, b: bias_act._bias_act_cuda(1, act, *args).apply(x, b)
    ref = lambda x, b: bias_act.bias_act(x, b, act=act, alpha=args[0], clamp=clamp, impl='ref')
    torch.testing.assert_close(fn(x, b), ref(x, b), rtol=1e-12, atol=1e-12)
    assert torch.autograd.gradcheck(fn, (x, b))
    assert torch.autograd.gradgradcheck(fn, (x, b))
    identity = (act == 'linear' and clamp is None)
    assert (1 in host_plugin.calls) == (not identity)
    assert (2 in host_plugin.calls) == (spec.has_2nd_grad)

@pytest.mark.parametrize('act,alpha,gain', [('lrelu', -0.2, 1.5), ('relu', 0.0, -2.0), ('tanh', 0.0, 0.0)])
def test_cuda_autograd_wiring_unusual_alpha_and_gain(host_plugin, act, alpha, gain):
    # Negative slopes and zero gains cannot be recovered from the output alone: x must be used.
    x = _randn([3, 4], seed=20, scale=2, requires_grad=True)
    b = _randn([4], seed=21, requires_grad=True)
    fn = lambda x, b: bias_act._bias_act_cuda(1, act, alpha, gain, 1.0).apply(x, b)
    ref = lambda x, b: bias_act.bias_act(x, b, act=act, alpha=alpha, gain=gain, clamp=1.0, impl='ref')
    torch.testing.assert_close(fn(x, b), ref(x, b), rtol=1e-12, atol=1e-12)
    dy = _randn([3, 4], seed=22)
    for got, want in zip(torch.autograd.grad(fn(x, b), [x, b], dy), torch.autograd.grad(ref(x, b), [x, b], dy)):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)

@pytest.mark.parametrize('act', ['lrelu', 'swish', 'linear'])
def test_cuda_autograd_wiring_mixed_layouts(host_plugin, act):
    # channels_last input, contiguous incoming gradient, bias along dim 1, no bias for linear.
    x = _randn([2, 3, 4, 5], seed=16, requires_grad=True)
    x_cl = x.detach().contiguous(memory_format=torch.channels_last).requires_grad_(True)
    b = _randn([3], seed=17, requires_grad=True) if act != 'linear' else None
    cfg = (1, act, float(bias_act.activation_funcs[act].def_alpha), 2.0, 3.0)
    y = bias_act._bias_act_cuda(*cfg).apply(x_cl, b)
    assert y.stride() == x_cl.stride()
    dy = _randn([2, 3, 4, 5], seed=18)
    grads = torch.autograd.grad(y, [x_cl] + ([b] if b is not None else []), dy)
    y_ref = bias_act.bias_act(x, b, act=act, gain=2.0, clamp=3.0, impl='ref')
    grads_ref = torch.autograd.grad(y_ref, [x] + ([b] if b is not None else []), dy)
    for got, want in zip(grads, grads_ref):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)

def test_cuda_identity_config_launches_nothing(host_plugin):
    x = _randn([2, 3], seed=19, requires_grad=True)
    y = bias_act._bias_act_cuda(1, 'linear', 0.0, 1.0, -1.0).apply(x, None)
    dx, = torch.autograd.grad(y.sum(), x)
    assert host_plugin.calls == []
    torch.testing.assert_close(dx, torch.ones_like(x))

#----------------------------------------------------------------------------
# Real CUDA kernel vs twin (needs a GPU and a working build).

@pytest.fixture
def cuda_plugin():
    if not bias_act._init():
        pytest.fail('bias_act CUDA plugin failed to build; see the warning above')

@pytest.mark.gpu
@pytest.mark.parametrize('act', ACTS)
@pytest.mark.parametrize('dtype', [torch.float16, torch.float32, torch.float64])
@pytest.mark.parametrize('channels_last', [False, True])
def test_cuda_matches_ref(cuda_plugin, act, dtype, channels_last):
    tol = dict(rtol=1e-2, atol=1e-2) if dtype == torch.float16 else dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 \
        else dict(rtol=1e-10, atol=1e-10)
    x0 = _randn([4, 8, 6, 5], seed=20, scale=2, dtype=dtype).cuda()
    if channels_last:
        x0 = x0.contiguous(memory_format=torch.channels_last)
    b0 = _randn([8], seed=21, dtype=dtype).cuda()
    dy = _randn([4, 8, 6, 5], seed=22, dtype=dtype).cuda()
    d_dx = _randn([4, 8, 6, 5], seed=23, dtype=dtype).cuda()
    # In float16 the twin rounds before clamping and the kernel after, so values right at the bound
    # may get different clamp masks; the clamped float16 forward is compared separately below.
    clamp = 2.5 if dtype != torch.float16 else None
    results = {}
    for impl in ['cuda', 'ref']:
        x, b = x0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
        y = bias_act.bias_act(x, b, act=act, alpha=0.3, clamp=clamp, impl=impl)
        dx, db = torch.autograd.grad(y, [x, b], dy, create_graph=True)
        d_x, = torch.autograd.grad((dx * d_dx).sum(), x, allow_unused=True)
        results[impl] = (y, dx, db, d_x if d_x is not None else torch.zeros_like(x))
    assert results['cuda'][0].stride() == x0.stride()
    for got, want in zip(results['cuda'], results['ref']):
        torch.testing.assert_close(got.float(), want.float(), **tol)
    if dtype == torch.float16:
        torch.testing.assert_close(bias_act.bias_act(x0, b0, act=act, clamp=2.5).float(),
                                   bias_act.bias_act(x0, b0, act=act, clamp=2.5, impl='ref').float(), **tol)

@pytest.mark.gpu
def test_cuda_dim0_and_2d(cuda_plugin):
    x = _randn([7, 3], seed=24).cuda()
    b = _randn([7], seed=25).cuda()
    torch.testing.assert_close(bias_act.bias_act(x, b, dim=0, act='tanh'),
                               bias_act.bias_act(x, b, dim=0, act='tanh', impl='ref'))

#----------------------------------------------------------------------------
