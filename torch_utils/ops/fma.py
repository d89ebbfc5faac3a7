"""Fused multiply-add a*b + c with a backward pass that sums gradients back to each operand's shape."""

import torch

#----------------------------------------------------------------------------
# a * b + c with broadcasting, computed by torch.addcmul.

def fma(a, b, c):
    return _FmaOp.apply(a, b, c)

#----------------------------------------------------------------------------
# Reduce a broadcast gradient to `shape`: sum away the leading dimensions that
# broadcasting added, then the dimensions where the operand had size 1.

def _sum_to_shape(grad, shape):
    shape = tuple(shape)
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(dim=list(range(extra)))
    stretched = [i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1]
    if stretched:
        grad = grad.sum(dim=stretched, keepdim=True)
    assert grad.shape == shape
    return grad

#----------------------------------------------------------------------------
# Backward uses ordinary differentiable ops, so higher-order gradients work.

class _FmaOp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b, c):
        ctx.save_for_backward(a, b)
        ctx.shapes = (a.shape, b.shape, c.shape)
        return torch.addcmul(c, a, b)

    @staticmethod
    def backward(ctx, dout):
        a, b = ctx.saved_tensors
        a_shape, b_shape, c_shape = ctx.shapes
        da = db = dc = None
        if ctx.needs_input_grad[0]:
            da = _sum_to_shape(dout * b, a_shape)
        if ctx.needs_input_grad[1]:
            db = _sum_to_shape(dout * a, b_shape)
        if ctx.needs_input_grad[2]:
            dc = _sum_to_shape(dout, c_shape)
        return da, db, dc

#----------------------------------------------------------------------------
