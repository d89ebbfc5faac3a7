"""Fused bias + activation + gain + clamp (CUDA kernel with a pure-PyTorch twin, impl='ref')."""

import functools

import numpy as np
import torch
import torch.nn.functional as F

import dnnlib
from .. import custom_ops

#----------------------------------------------------------------------------
# Supported activations. Fields: func (reference implementation, takes x and alpha), def_alpha,
# def_gain, cuda_idx (code in bias_act.h), ref ('x' or 'y': which tensor the official gradient
# kernel reads) and has_2nd_grad (nonzero second derivative).

def _swish(x, alpha):
    return torch.sigmoid(x) * x

activation_funcs = {
    'linear':   dnnlib.EasyDict(func=lambda x, alpha: x,                      def_alpha=0,   def_gain=1,          cuda_idx=1, ref='',  has_2nd_grad=False),
    'relu':     dnnlib.EasyDict(func=lambda x, alpha: F.relu(x),              def_alpha=0,   def_gain=np.sqrt(2), cuda_idx=2, ref='y', has_2nd_grad=False),
    'lrelu':    dnnlib.EasyDict(func=lambda x, alpha: F.leaky_relu(x, alpha), def_alpha=0.2, def_gain=np.sqrt(2), cuda_idx=3, ref='y', has_2nd_grad=False),
    'tanh':     dnnlib.EasyDict(func=lambda x, alpha: torch.tanh(x),          def_alpha=0,   def_gain=1,          cuda_idx=4, ref='y', has_2nd_grad=True),
    'sigmoid':  dnnlib.EasyDict(func=lambda x, alpha: torch.sigmoid(x),       def_alpha=0,   def_gain=1,          cuda_idx=5, ref='y', has_2nd_grad=True),
    'elu':      dnnlib.EasyDict(func=lambda x, alpha: F.elu(x),               def_alpha=0,   def_gain=1,          cuda_idx=6, ref='y', has_2nd_grad=True),
    'selu':     dnnlib.EasyDict(func=lambda x, alpha: F.selu(x),              def_alpha=0,   def_gain=1,          cuda_idx=7, ref='y', has_2nd_grad=True),
    'softplus': dnnlib.EasyDict(func=lambda x, alpha: F.softplus(x),          def_alpha=0,   def_gain=1,          cuda_idx=8, ref='y', has_2nd_grad=True),
    'swish':    dnnlib.EasyDict(func=_swish,                                  def_alpha=0,   def_gain=np.sqrt(2), cuda_idx=9, ref='x', has_2nd_grad=True),
}

#----------------------------------------------------------------------------
# The compiled plugin, or None when it cannot be built (custom_ops warns once and remembers).

def _plugin():
    return custom_ops.get_plugin_or_none(**custom_ops.op_plugin_kwargs('bias_act'))

def _init():
    return _plugin() is not None

#----------------------------------------------------------------------------
# Validate the arguments shared by both implementations; returns (alpha, gain, clamp) as floats
# with the defaults filled in (clamp -1 = disabled).

def _resolve_args(x, b, dim, act, alpha, gain, clamp):
    if not isinstance(x, torch.Tensor):
        raise TypeError(f'bias_act: x must be a torch.Tensor, got {type(x).__name__}')
    if act not in activation_funcs:
        raise ValueError(f'bias_act: unknown act={act!r}; choose one of {", ".join(activation_funcs)}')
    if b is not None:
        if not 0 <= dim < x.ndim:
            raise ValueError(f'bias_act: dim={dim} is out of range for x with {x.ndim} dimensions')
        if not isinstance(b, torch.Tensor) or b.ndim != 1 or b.shape[0] != x.shape[dim]:
            shape = list(b.shape) if isinstance(b, torch.Tensor) else type(b).__name__
            raise ValueError(f'bias_act: b must be a 1-D tensor of length x.shape[{dim}] = {x.shape[dim]}, got {shape}')
    if clamp is not None and not clamp >= 0:
        raise ValueError(f'bias_act: clamp must be >= 0 or None (disabled), got {clamp}')
    spec = activation_funcs[act]
    alpha = float(alpha if alpha is not None else spec.def_alpha)
    gain = float(gain if gain is not None else spec.def_gain)
    clamp = float(clamp if clamp is not None else -1)
    return alpha, gain, clamp

#----------------------------------------------------------------------------
# Add b along dimension dim, apply the activation, scale by gain and clamp to [-clamp, clamp]:
#   x: any shape, float16/32/64; b: [x.shape[dim]] or None.
#   alpha: activation parameter (lrelu slope), None = the activation's default.
#   gain: output scale, None = the activation's default (sqrt(2) for relu, lrelu, swish).
#   clamp: bound on |output|, None = disable.
#   impl: 'cuda' uses the CUDA kernel for CUDA tensors when it builds, 'ref' always the twin.
# Returns a tensor of the shape, dtype (and, on the CUDA path, memory layout) of x.

def bias_act(x, b=None, dim=1, act='linear', alpha=None, gain=None, clamp=None, impl='cuda'):
    if impl not in ('cuda', 'ref'):
        raise ValueError(f"bias_act: impl must be 'cuda' or 'ref', got {impl!r}")
    if impl == 'cuda' and isinstance(x, torch.Tensor) and x.device.type == 'cuda' and _init():
        alpha, gain, clamp = _resolve_args(x, b, dim, act, alpha, gain, clamp)
        return _bias_act_cuda(dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp).apply(x, b)
    return _bias_act_ref(x=x, b=b, dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp)

#----------------------------------------------------------------------------
# The pure-PyTorch twin; differentiable to any order through autograd.

def _bias_act_ref(x, b=None, dim=1, act='linear', alpha=None, gain=None, clamp=None):
    alpha, gain, clamp = _resolve_args(x, b, dim, act, alpha, gain, clamp)
    if b is not None:
        shape = [1] * x.ndim
        shape[dim] = -1
        x = x + b.reshape(shape)
    x = activation_funcs[act].func(x, alpha=alpha)
    if gain != 1:
        x = x * gain
    if clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x

#----------------------------------------------------------------------------
# Sum a per-element gradient down to the bias shape [x.shape[dim]].

def _reduce_to_bias(dx, dim):
    dims = [i for i in range(dx.ndim) if i != dim]
    return dx.sum(dims) if dims else dx

#----------------------------------------------------------------------------
# Whether t's elements fill a block of memory without gaps or overlaps, in any dimension order
# (contiguous, channels_last, permuted...). The kernel walks such tensors in memory order.

def _is_dense(t):
    expected = 1
    for size, stride in sorted(zip(t.shape, t.stride()), key=lambda pair: pair[1]):
        if size == 1:
            continue
        if stride != expected:
            return False
        expected *= size
    return True

#----------------------------------------------------------------------------
# Return t with the memory layout (strides) of like, copying only when they differ; t itself must
# be dense when like is None. The kernel walks all its element tensors in one memory order.

def _match_layout(t, like):
    if like is None:
        return t if _is_dense(t) else t.contiguous()
    if t.stride() == like.stride():
        return t
    return torch.empty_like(like).copy_(t)

#----------------------------------------------------------------------------
# Autograd Functions around the CUDA kernel for one configuration (cached). The backward pass of
# the forward op is itself a differentiable op, so second-order gradients work; its own backward
# computes the second-derivative term with the kernel (grad=2) for activations that have one.
# What the gradient kernel reads: the input x (recomputing act(x + b)) in general, or only the
# output y for relu / lrelu (alpha >= 0) / clamped linear, whose derivative follows from sign(y);
# this lets the input be freed during training, as the next layer keeps y anyway.

@functools.lru_cache(maxsize=None)
def _bias_act_cuda(dim, act, alpha, gain, clamp):
    spec = activation_funcs[act]
    plugin = _plugin()
    identity = (act == 'linear' and gain == 1 and clamp < 0)
    y_only = (act in ('relu', 'lrelu', 'linear')) and alpha >= 0 and gain != 0
    needs_x = not y_only
    needs_y = y_only and not (act == 'linear' and clamp < 0)

    def run(x, b, xref, yref, dy, grad):
        empty = x.new_empty([0])
        return plugin.bias_act(x, b if b is not None else empty,
                               xref if xref is not None else empty,
                               yref if yref is not None else empty,
                               dy if dy is not None else empty,
                               grad, dim, spec.cuda_idx, alpha, gain, clamp)

    class BiasActCuda(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, b):
            x = x if _is_dense(x) else x.contiguous()
            b = b.contiguous() if b is not None else None
            y = x if identity and b is None else run(x, b, None, None, None, 0)
            ctx.save_for_backward(x if needs_x else None, b, y if needs_y else None)
            return y

        @staticmethod
        def backward(ctx, dy):
            x, b, y = ctx.saved_tensors
            dy = _match_layout(dy, x if x is not None else y)
            dx = db = None
            if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
                dx = BiasActCudaGrad.apply(dy, x, b, y)
            if ctx.needs_input_grad[1]:
                db = _reduce_to_bias(dx, dim)
            return dx, db

    # dx = dL/dx for incoming gradient dy, as a function of (dy, x, b, y); dy, x, y share a layout.
    class BiasActCudaGrad(torch.autograd.Function):
        @staticmethod
        def forward(ctx, dy, x, b, y):
            dx = dy if identity else run(dy, b, x, y, None, 1)
            ctx.save_for_backward(dy, x, b, y)
            return dx

        @staticmethod
        def backward(ctx, d_dx):
            dy, x, b, y = ctx.saved_tensors
            d_dx = _match_layout(d_dx, dy)
            d_dy = d_x = d_b = None
            if ctx.needs_input_grad[0]:
                d_dy = BiasActCudaGrad.apply(d_dx, x, b, y)
            if spec.has_2nd_grad and (ctx.needs_input_grad[1] or ctx.needs_input_grad[2]):
                d_x = run(d_dx, b, x, y, dy, 2)
                if ctx.needs_input_grad[2]:
                    d_b = _reduce_to_bias(d_x, dim)
            return d_dy, d_x, d_b, None

    return BiasActCuda

#----------------------------------------------------------------------------
