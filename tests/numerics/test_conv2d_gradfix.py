"""conv2d_gradfix against plain float64 torch.nn.functional convolutions: values, gradients of order 1-3, no_weight_gradients."""

import pytest
import torch
import torch.nn.functional as F

from torch_utils.ops import conv2d_gradfix

#----------------------------------------------------------------------------
# Every test starts with the custom op on and restores the module switches.

@pytest.fixture(autouse=True)
def custom_op_enabled():
    saved = (conv2d_gradfix.enabled, conv2d_gradfix.weight_gradients_disabled)
    conv2d_gradfix.enabled = True
    conv2d_gradfix.weight_gradients_disabled = False
    yield
    conv2d_gradfix.enabled, conv2d_gradfix.weight_gradients_disabled = saved

#----------------------------------------------------------------------------
# Problem sets: (input shape, weight shape, kwargs). Odd and even sizes with
# stride 2 make the transposed input gradient need an output_padding.

CONV_CASES = [
    ((1, 2, 5, 4), (3, 2, 3, 3), dict()),
    ((1, 4, 5, 4), (4, 2, 3, 2), dict(stride=2, padding=1, groups=2)),
    ((1, 2, 7, 6), (2, 2, 3, 3), dict(stride=(2, 3), padding=(1, 0), dilation=(1, 2))),
    ((2, 3, 3, 3), (2, 3, 1, 1), dict(stride=1, padding=0)),
]

TRANSPOSE_CASES = [
    ((1, 3, 3, 4), (3, 2, 3, 3), dict()),
    ((1, 4, 3, 3), (4, 2, 3, 2), dict(stride=2, padding=1, output_padding=1, groups=2)),
    ((1, 2, 3, 2), (2, 3, 3, 2), dict(stride=(2, 3), padding=(0, 1), output_padding=(1, 2), dilation=1)),
]

def _problem(in_shape, w_shape, bias, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(in_shape, generator=gen, dtype=torch.float64, requires_grad=True)
    w = torch.randn(w_shape, generator=gen, dtype=torch.float64, requires_grad=True)
    b = torch.randn(bias, generator=gen, dtype=torch.float64, requires_grad=True) if bias else None
    return x, w, b

def _ops(transpose):
    if transpose:
        return conv2d_gradfix.conv_transpose2d, F.conv_transpose2d
    return conv2d_gradfix.conv2d, F.conv2d

def _all_cases():
    return [(False, *c) for c in CONV_CASES] + [(True, *c) for c in TRANSPOSE_CASES]

def _num_out_channels(transpose, w_shape, kwargs):
    return w_shape[1] * kwargs.get('groups', 1) if transpose else w_shape[0]

#----------------------------------------------------------------------------

@pytest.mark.parametrize('enabled', [True, False])
@pytest.mark.parametrize('transpose, in_shape, w_shape, kwargs', _all_cases())
def test_forward_matches_functional(enabled, transpose, in_shape, w_shape, kwargs):
    conv2d_gradfix.enabled = enabled
    op, ref_op = _ops(transpose)
    x, w, b = _problem(in_shape, w_shape, _num_out_channels(transpose, w_shape, kwargs))
    got = op(x, w, b, **kwargs)
    ref = ref_op(x, w, b, **kwargs)
    assert got.shape == ref.shape
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize('transpose, in_shape, w_shape, kwargs', _all_cases())
def test_custom_op_is_used_when_enabled(transpose, in_shape, w_shape, kwargs):
    op, _ = _ops(transpose)
    x, w, _ = _problem(in_shape, w_shape, 0)
    assert '_ConvOp' in type(op(x, w, **kwargs).grad_fn).__name__
    conv2d_gradfix.enabled = False
    assert '_ConvOp' not in type(op(x, w, **kwargs).grad_fn).__name__

#----------------------------------------------------------------------------

@pytest.mark.slow  # seconds of CPU: in the full suite, not the fast tier
@pytest.mark.parametrize('transpose, in_shape, w_shape, kwargs', _all_cases())
def test_gradcheck_and_gradgradcheck(transpose, in_shape, w_shape, kwargs):
    op, _ = _ops(transpose)
    x, w, b = _problem(in_shape, w_shape, _num_out_channels(transpose, w_shape, kwargs))
    fn = lambda x, w, b: op(x, w, b, **kwargs)
    assert torch.autograd.gradcheck(fn, (x, w, b))
    assert torch.autograd.gradgradcheck(fn, (x, w, b), fast_mode=True)


@pytest.mark.parametrize('transpose, in_shape, w_shape, kwargs', [_all_cases()[1], _all_cases()[5]])
def test_third_order_gradients(transpose, in_shape, w_shape, kwargs):
    # gradgradcheck of a first derivative checks derivatives of order 2 and 3.
    op, _ = _ops(transpose)
    x, w, _ = _problem(in_shape, w_shape, 0)
    def input_grad(x, w):
        y = op(x, w, **kwargs)
        return torch.autograd.grad(torch.tanh(y).sum(), [x], create_graph=True)[0]
    assert torch.autograd.gradgradcheck(input_grad, (x, w), fast_mode=True)


@pytest.mark.parametrize('transpose, in_shape, w_shape, kwargs', _all_cases())
def test_second_order_matches_functional(transpose, in_shape, w_shape, kwargs):
    # R1-style penalty: |dL/dx|^2, differentiated w.r.t. x and w.
    op, ref_op = _ops(transpose)
    results = []
    for fn in (op, ref_op):
        x, w, b = _problem(in_shape, w_shape, _num_out_channels(transpose, w_shape, kwargs))
        y = fn(x, w, b, **kwargs)
        gx, = torch.autograd.grad(y.sin().sum(), [x], create_graph=True)
        results.append(torch.autograd.grad(gx.square().sum(), [x, w]))
    for got, ref in zip(*results):
        torch.testing.assert_close(got, ref, rtol=1e-10, atol=1e-10)

#----------------------------------------------------------------------------
# no_weight_gradients(): the weight gradient is None (autograd treats it as
# zero; torch.autograd.grad needs allow_unused=True to return it), the input
# gradient is unchanged, and the weight-gradient op never runs.

@pytest.mark.parametrize('transpose, in_shape, w_shape, kwargs', [_all_cases()[1], _all_cases()[5]])
def test_no_weight_gradients_skips_weight_grad(transpose, in_shape, w_shape, kwargs, monkeypatch):
    op, ref_op = _ops(transpose)
    calls = []
    real_apply = conv2d_gradfix._WeightGradOp.apply
    monkeypatch.setattr(conv2d_gradfix._WeightGradOp, 'apply', lambda *args: calls.append(1) or real_apply(*args))
    x, w, b = _problem(in_shape, w_shape, _num_out_channels(transpose, w_shape, kwargs))
    y = op(x, w, b, **kwargs)
    with conv2d_gradfix.no_weight_gradients():
        gx, gw, gb = torch.autograd.grad(y.square().sum(), [x, w, b], allow_unused=True)
    assert gw is None and calls == []
    ref_gx, ref_gb = torch.autograd.grad(ref_op(x, w, b, **kwargs).square().sum(), [x, b])
    torch.testing.assert_close(gx, ref_gx, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gb, ref_gb, rtol=1e-12, atol=1e-12)

    # Outside the context the weight gradient is back.
    gw, = torch.autograd.grad(op(x, w, b, **kwargs).square().sum(), [w])
    assert calls == [1]
    torch.testing.assert_close(gw, torch.autograd.grad(ref_op(x, w, b, **kwargs).square().sum(), [w])[0])


def test_no_weight_gradients_leaves_grad_attribute_unset():
    x, w, _ = _problem((2, 3, 6, 6), (4, 3, 3, 3), 0)
    with conv2d_gradfix.no_weight_gradients():
        conv2d_gradfix.conv2d(x, w, padding=1).square().sum().backward()
    assert w.grad is None and x.grad is not None


def test_r1_pattern_gives_weight_grads_of_the_penalty():
    # As in the loss: input gradient under no_weight_gradients(), penalty backward outside it.
    x, w, b = _problem((2, 3, 6, 5), (4, 3, 3, 3), 4)
    x_ref, w_ref, b_ref = [t.detach().clone().requires_grad_(True) for t in (x, w, b)]
    with conv2d_gradfix.no_weight_gradients():
        y = conv2d_gradfix.conv2d(x, w, b, stride=2, padding=1)
        gx, = torch.autograd.grad(F.softplus(y).sum(), [x], create_graph=True)
    gx.square().sum().backward()
    y_ref = F.conv2d(x_ref, w_ref, b_ref, stride=2, padding=1)
    gx_ref, = torch.autograd.grad(F.softplus(y_ref).sum(), [x_ref], create_graph=True)
    gx_ref.square().sum().backward()
    torch.testing.assert_close(w.grad, w_ref.grad, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(b.grad, b_ref.grad, rtol=1e-10, atol=1e-10)


def test_no_weight_gradients_restores_flag():
    with conv2d_gradfix.no_weight_gradients():
        with conv2d_gradfix.no_weight_gradients():
            assert conv2d_gradfix.weight_gradients_disabled
        assert conv2d_gradfix.weight_gradients_disabled
    assert not conv2d_gradfix.weight_gradients_disabled
    with pytest.raises(KeyError):
        with conv2d_gradfix.no_weight_gradients():
            raise KeyError('boom')
    assert not conv2d_gradfix.weight_gradients_disabled

#----------------------------------------------------------------------------

def test_float32_and_channels_last():
    x, w, b = _problem((2, 4, 8, 8), (6, 4, 3, 3), 6)
    x32, w32, b32 = [t.detach().float().requires_grad_(True) for t in (x, w, b)]
    x32 = x32.detach().to(memory_format=torch.channels_last).requires_grad_(True)
    y = conv2d_gradfix.conv2d(x32, w32, b32, padding=1)
    gx, gw = torch.autograd.grad(y.square().sum(), [x32, w32])
    ref = F.conv2d(x, w, b, padding=1)
    ref_gx, ref_gw = torch.autograd.grad(ref.square().sum(), [x, w])
    torch.testing.assert_close(y.double(), ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(gx.double(), ref_gx, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(gw.double(), ref_gw, rtol=1e-4, atol=1e-3)


def test_string_padding_uses_stock_op():
    x, w, _ = _problem((1, 3, 5, 5), (2, 3, 3, 3), 0)
    y = conv2d_gradfix.conv2d(x, w, padding='same')
    torch.testing.assert_close(y, F.conv2d(x, w, padding='same'))
    assert '_ConvOp' not in type(y.grad_fn).__name__


def test_bad_stride_is_reported():
    x, w, _ = _problem((1, 3, 5, 5), (2, 3, 3, 3), 0)
    with pytest.raises(ValueError, match=r'stride must be an int or a pair of ints, got \(1, 2, 3\)'):
        conv2d_gradfix.conv2d(x, w, stride=(1, 2, 3))

#----------------------------------------------------------------------------
