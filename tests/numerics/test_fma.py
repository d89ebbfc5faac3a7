"""fma(a, b, c) against a*b + c in float64: values, unbroadcast gradients, gradcheck and gradgradcheck."""

import pytest
import torch

from torch_utils.ops import fma

#----------------------------------------------------------------------------
# Shapes of (a, b, c): equal, broadcast along size-1 dims, and with missing
# leading dims (as in the networks: x * dcoefs[N, C, 1, 1] + noise[N, 1, H, W]).

SHAPES = [
    ((2, 3, 4), (2, 3, 4), (2, 3, 4)),
    ((2, 3, 4, 4), (2, 3, 1, 1), (2, 1, 4, 4)),
    ((3, 1, 4), (2, 3, 5, 1), (5, 4)),
    ((4,), (1,), ()),
]

def _operands(shapes, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=gen, dtype=torch.float64, requires_grad=True) for s in shapes]

#----------------------------------------------------------------------------

@pytest.mark.parametrize('shapes', SHAPES)
def test_forward_and_backward_match_reference(shapes):
    a, b, c = _operands(shapes)
    got = fma.fma(a, b, c)
    ref = a * b + c
    torch.testing.assert_close(got, ref, rtol=1e-14, atol=1e-14)
    dout = torch.randn(ref.shape, dtype=torch.float64)
    grads = torch.autograd.grad(got, [a, b, c], grad_outputs=[dout])
    ref_grads = torch.autograd.grad(ref, [a, b, c], grad_outputs=[dout])
    for t, g, r in zip((a, b, c), grads, ref_grads):
        assert g.shape == t.shape
        torch.testing.assert_close(g, r, rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize('shapes', SHAPES)
def test_gradcheck_and_gradgradcheck(shapes):
    operands = _operands(shapes, seed=1)
    assert torch.autograd.gradcheck(fma.fma, operands)
    assert torch.autograd.gradgradcheck(fma.fma, operands)


def test_only_requested_gradients():
    a, b, c = _operands(SHAPES[1], seed=2)
    b = b.detach()
    y = fma.fma(a, b, c)
    ga, gc = torch.autograd.grad(y.square().sum(), [a, c])
    torch.testing.assert_close(gc, (2 * y).sum(dim=1, keepdim=True))
    torch.testing.assert_close(ga, 2 * y * b)

#----------------------------------------------------------------------------
