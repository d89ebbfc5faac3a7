"""Drop-in conv2d / conv_transpose2d with gradients of any order and an optional skip of weight gradients."""

import contextlib

import torch

#----------------------------------------------------------------------------
# Switches. The training loop turns the custom op on; the loss turns weight
# gradients off while it computes R1 / path-length gradients w.r.t. the input.

enabled = False                    # True = route conv2d/conv_transpose2d through the custom autograd op.
weight_gradients_disabled = False  # True = the custom op returns no weight gradient (see no_weight_gradients).

#----------------------------------------------------------------------------
# Same arguments and result as torch.nn.functional.conv2d.

def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    if _use_custom_op(input, padding):
        cfg = _make_config(False, weight.shape, stride, padding, 0, dilation, groups)
        return _ConvOp.apply(input, weight, bias, cfg)
    return torch.nn.functional.conv2d(input=input, weight=weight, bias=bias, stride=stride, padding=padding,
                                      dilation=dilation, groups=groups)

#----------------------------------------------------------------------------
# Same arguments and result as torch.nn.functional.conv_transpose2d.

def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    if _use_custom_op(input, padding):
        cfg = _make_config(True, weight.shape, stride, padding, output_padding, dilation, groups)
        return _ConvOp.apply(input, weight, bias, cfg)
    return torch.nn.functional.conv_transpose2d(input=input, weight=weight, bias=bias, stride=stride,
                                                padding=padding, output_padding=output_padding, groups=groups,
                                                dilation=dilation)

#----------------------------------------------------------------------------
# Context manager: inside it, backward passes of the custom op return None as
# the weight gradient, and skip computing it. The flag is read when backward
# runs, so wrap the torch.autograd.grad() call, not the forward pass. Gradients
# that flow through a computed weight (fused modulated conv) are dropped too.

@contextlib.contextmanager
def no_weight_gradients():
    global weight_gradients_disabled
    saved, weight_gradients_disabled = weight_gradients_disabled, True
    try:
        yield
    finally:
        weight_gradients_disabled = saved

#----------------------------------------------------------------------------
# The custom op handles batched 4-D input with numeric padding on any device;
# string padding ('same'/'valid') and unbatched input go to the stock op.

def _use_custom_op(input, padding):
    return enabled and input.ndim == 4 and not isinstance(padding, str)

#----------------------------------------------------------------------------
# An int or a pair of ints as a pair of ints.

def _pair(value, name):
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f'conv2d_gradfix: {name} must be an int or a pair of ints, got {value!r}')
        return (int(value[0]), int(value[1]))
    return (int(value), int(value))

#----------------------------------------------------------------------------
# Everything that defines one convolution besides its tensors, as a hashable
# tuple: (transpose, weight_shape, stride, padding, output_padding, dilation, groups).

def _make_config(transpose, weight_shape, stride, padding, output_padding, dilation, groups):
    if len(weight_shape) != 4:
        raise ValueError(f'conv2d_gradfix: weight must be 4-D [out, in/groups, kh, kw], got shape {tuple(weight_shape)}')
    return (bool(transpose), tuple(int(s) for s in weight_shape), _pair(stride, 'stride'), _pair(padding, 'padding'),
            _pair(output_padding, 'output_padding'), _pair(dilation, 'dilation'), int(groups))

#----------------------------------------------------------------------------
# Run the forward convolution that a config describes.

def _run_conv(input, weight, bias, cfg):
    transpose, _weight_shape, stride, padding, output_padding, dilation, groups = cfg
    if transpose:
        return torch.nn.functional.conv_transpose2d(input, weight, bias, stride=stride, padding=padding,
                                                    output_padding=output_padding, groups=groups, dilation=dilation)
    return torch.nn.functional.conv2d(input, weight, bias, stride=stride, padding=padding, dilation=dilation,
                                      groups=groups)

#----------------------------------------------------------------------------
# The gradient of a convolution w.r.t. its input is the "opposite" convolution
# (conv2d <-> conv_transpose2d) with the same weight. Going from conv2d to its
# transpose needs an output_padding so that the result regains the exact input
# size, which stride can make ambiguous.

def _input_grad_config(cfg, input_shape, output_shape):
    transpose, weight_shape, stride, padding, _output_padding, dilation, groups = cfg
    if transpose:
        return (False, weight_shape, stride, padding, (0, 0), dilation, groups)
    extra = []
    for i in range(2):
        covered = (output_shape[i + 2] - 1) * stride[i] - 2 * padding[i] + dilation[i] * (weight_shape[i + 2] - 1) + 1
        extra.append(input_shape[i + 2] - covered)
    return (True, weight_shape, stride, padding, tuple(extra), dilation, groups)

#----------------------------------------------------------------------------
# Differentiable convolution. Its backward is again built from _ConvOp and
# _WeightGradOp, so every order of gradient goes through this file.

class _ConvOp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, weight, bias, cfg):
        ctx.cfg = cfg
        ctx.input_shape = tuple(input.shape)
        ctx.save_for_backward(input, weight)
        return _run_conv(input, weight, bias, cfg)

    @staticmethod
    def backward(ctx, grad_output):
        input, weight = ctx.saved_tensors
        cfg = ctx.cfg
        grad_input = grad_weight = grad_bias = None

        # Input gradient: the opposite convolution of grad_output with the same weight.
        if ctx.needs_input_grad[0]:
            back_cfg = _input_grad_config(cfg, ctx.input_shape, grad_output.shape)
            grad_input = _ConvOp.apply(grad_output, weight, None, back_cfg)

        # Weight gradient, unless no_weight_gradients() is active while backward runs.
        if ctx.needs_input_grad[1] and not weight_gradients_disabled:
            grad_weight = _WeightGradOp.apply(grad_output, input, weight.detach(), cfg)

        # Bias gradient: the output gradient summed over batch and space.
        if ctx.needs_input_grad[2]:
            grad_bias = grad_output.sum(dim=[0, 2, 3])
        return grad_input, grad_weight, grad_bias, None

#----------------------------------------------------------------------------
# Weight gradient of a convolution as a function of (grad_output, input).
# It is bilinear in the two, so its own gradients are convolutions again. The
# weight itself only tells convolution_backward its shape, dtype and layout.

class _WeightGradOp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, grad_output, input, weight, cfg):
        ctx.cfg = cfg
        ctx.save_for_backward(grad_output, input)
        transpose, _weight_shape, stride, padding, output_padding, dilation, groups = cfg
        _, grad_weight, _ = torch.ops.aten.convolution_backward(
            grad_output, input, weight, None, list(stride), list(padding), list(dilation), transpose,
            list(output_padding), groups, [False, True, False])
        return grad_weight

    @staticmethod
    def backward(ctx, grad2_weight):
        grad_output, input = ctx.saved_tensors
        cfg = ctx.cfg
        grad2_grad_output = grad2_input = None

        # <grad2_weight, dW(go, x)> = <go, conv(x, grad2_weight)>: differentiate that w.r.t. go ...
        if ctx.needs_input_grad[0]:
            grad2_grad_output = _ConvOp.apply(input, grad2_weight, None, cfg)

        # ... and w.r.t. x, which is the input gradient of conv(., grad2_weight).
        if ctx.needs_input_grad[1]:
            back_cfg = _input_grad_config(cfg, tuple(input.shape), grad_output.shape)
            grad2_input = _ConvOp.apply(grad_output, grad2_weight, None, back_cfg)
        return grad2_grad_output, grad2_input, None, None

#----------------------------------------------------------------------------
