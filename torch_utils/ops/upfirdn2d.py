"""Upsample, pad, FIR-filter and downsample 2-D images (CUDA kernel with a pure-PyTorch twin,
impl='ref'), plus filter setup and the filter2d / upsample2d / downsample2d wrappers."""

import functools
import numbers

import numpy as np
import torch
import torch.nn.functional as F

from .. import custom_ops
from . import conv2d_gradfix

#----------------------------------------------------------------------------
# The compiled plugin, or None when it cannot be built (custom_ops warns once and remembers).

def _plugin():
    return custom_ops.get_plugin_or_none(**custom_ops.op_plugin_kwargs('upfirdn2d'))

def _init():
    return _plugin() is not None

#----------------------------------------------------------------------------
# Argument parsing shared with conv2d_resample.

def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)

def _parse_scaling(scaling):
    """up/down factor: int or [x, y], each >= 1 -> (sx, sy)."""
    values = [scaling, scaling] if _is_int(scaling) else scaling
    if not isinstance(values, (list, tuple)) or len(values) != 2 or not all(_is_int(v) and v >= 1 for v in values):
        raise ValueError(f'upfirdn2d: scaling factor must be an int >= 1 or a list [x, y] of them, got {scaling!r}')
    return int(values[0]), int(values[1])

def _parse_padding(padding):
    """padding: int, [px, py] or [px0, px1, py0, py1] (width first) -> (px0, px1, py0, py1)."""
    if _is_int(padding):
        values = [padding] * 4
    elif isinstance(padding, (list, tuple)) and len(padding) == 2:
        values = [padding[0], padding[0], padding[1], padding[1]]
    else:
        values = padding
    if not isinstance(values, (list, tuple)) or len(values) != 4 or not all(_is_int(v) for v in values):
        raise ValueError(f'upfirdn2d: padding must be an int, [px, py] or [px0, px1, py0, py1] of ints, got {padding!r}')
    return tuple(int(v) for v in values)

def _get_filter_size(f):
    """(fw, fh) of a filter from setup_filter(); (1, 1) for None. A 1-D filter is taps x taps."""
    if f is None:
        return 1, 1
    if not isinstance(f, torch.Tensor) or f.ndim not in (1, 2):
        raise ValueError(f'upfirdn2d: filter must be None or a 1-D/2-D tensor, got {_describe(f)}')
    return int(f.shape[-1]), int(f.shape[0])

def _describe(value):
    if isinstance(value, torch.Tensor):
        return f'a {value.dtype} tensor of shape {list(value.shape)}'
    return repr(value)

#----------------------------------------------------------------------------
# Turn a filter spec into the float32 tensor the ops expect:
#   f: [fh, fw] 2-D, [taps] 1-D, a scalar or None (= 1); array-like.
#   separable: keep a 1-D filter 1-D (applied along x, then y); None = automatic, i.e. only
#     for 1-D filters of 8 taps or more. Otherwise 1-D becomes the outer product f x f.
#   normalize: divide by the sum of all taps; flip_filter: reverse every axis;
#   gain: overall gain of the 2-D filter (each 1-D pass gets its square root).

def setup_filter(f, device=torch.device('cpu'), normalize=True, flip_filter=False, gain=1, separable=None):
    if f is None:
        f = 1
    f = torch.as_tensor(f, dtype=torch.float32)
    if f.ndim not in (0, 1, 2) or f.numel() == 0:
        raise ValueError(f'setup_filter: f must be a scalar, a 1-D or a 2-D non-empty array, got shape {list(f.shape)}')
    if f.ndim == 0:
        f = f.reshape(1)

    # Separable 1-D or full 2-D.
    if separable is None:
        separable = (f.ndim == 1 and f.numel() >= 8)
    if f.ndim == 1 and not separable:
        f = torch.outer(f, f)
    if f.ndim != (1 if separable else 2):
        raise ValueError(f'setup_filter: separable=True needs a 1-D filter, got shape {list(f.shape)}')

    # Normalize, flip, apply gain, place.
    if normalize:
        f = f / f.sum()
    if flip_filter:
        f = f.flip(list(range(f.ndim)))
    f = f * (gain ** (f.ndim / 2))
    return f.to(device=device)

#----------------------------------------------------------------------------
# Upsample, pad, filter and downsample every channel of a batch of images:
#   x: [N, C, H, W] float16/32/64.
#   f: float32 [fh, fw], or [taps] (separable), or None (identity), e.g. from setup_filter().
#   up, down: int or [x, y] (width factor first), each >= 1.
#   padding: int, [px, py] or [px0, px1, py0, py1] (width first); negative values crop.
#   flip_filter: False = convolution, True = correlation.
#   gain: overall scaling of the output.
#   impl: 'cuda' uses the CUDA kernel for CUDA tensors when it builds, 'ref' always the twin.
# Returns [N, C, (H*upy + py0 + py1 - fh) // downy + 1, (W*upx + px0 + px1 - fw) // downx + 1].

def upfirdn2d(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1, impl='cuda'):
    if impl not in ('cuda', 'ref'):
        raise ValueError(f"upfirdn2d: impl must be 'cuda' or 'ref', got {impl!r}")
    if impl == 'cuda' and isinstance(x, torch.Tensor) and x.device.type == 'cuda' and _init():
        upx, upy = _parse_scaling(up)
        downx, downy = _parse_scaling(down)
        padding = _parse_padding(padding)
        _check_args(x, f, (upx, upy), (downx, downy), padding)
        return _upfirdn2d_cuda(up=(upx, upy), down=(downx, downy), padding=padding,
                               flip_filter=bool(flip_filter), gain=float(gain)).apply(x, f)
    return _upfirdn2d_ref(x, f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain)

#----------------------------------------------------------------------------
# Validate x and f for both implementations; returns the output (height, width).

def _check_args(x, f, up, down, padding):
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(f'upfirdn2d: x must be a 4-D [N, C, H, W] tensor, got {_describe(x)}')
    if f is not None:
        if not isinstance(f, torch.Tensor) or f.ndim not in (1, 2) or f.dtype != torch.float32:
            raise ValueError(f'upfirdn2d: f must be None or a float32 1-D/2-D tensor (see setup_filter), got {_describe(f)}')
        if f.requires_grad:
            raise ValueError('upfirdn2d: gradients with respect to f are not supported; pass f.detach()')
    fw, fh = _get_filter_size(f)
    (upx, upy), (downx, downy), (px0, px1, py0, py1) = up, down, padding
    out_h = (x.shape[2] * upy + py0 + py1 - fh) // downy + 1
    out_w = (x.shape[3] * upx + px0 + px1 - fw) // downx + 1
    if out_h < 1 or out_w < 1:
        raise ValueError(f'upfirdn2d: output would be empty: input {x.shape[2]}x{x.shape[3]}, up={list(up)}, '
                         f'padding={list(padding)} give a padded image smaller than the {fh}x{fw} filter')
    return out_h, out_w

#----------------------------------------------------------------------------
# The pure-PyTorch twin: zero insertion, pad/crop, depthwise convolution, strided slicing.
# Differentiable to any order through autograd (conv2d_gradfix supports double backward).

def _upfirdn2d_ref(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1):
    upx, upy = _parse_scaling(up)
    downx, downy = _parse_scaling(down)
    px0, px1, py0, py1 = _parse_padding(padding)
    _check_args(x, f, (upx, upy), (downx, downy), (px0, px1, py0, py1))
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    batch, channels, in_h, in_w = x.shape

    # Upsample: each pixel is followed by up-1 zeros in both axes.
    if upx > 1 or upy > 1:
        x = x.reshape([batch, channels, in_h, 1, in_w, 1])
        x = F.pad(x, [0, upx - 1, 0, 0, 0, upy - 1])
        x = x.reshape([batch, channels, in_h * upy, in_w * upx])

    # Pad, or crop where negative (F.pad takes the last axis first, like our padding order).
    x = F.pad(x, [px0, px1, py0, py1])

    # Filter each channel: one depthwise pass for a 2-D filter, width then height for a 1-D one.
    f = (f * (gain ** (f.ndim / 2))).to(x.dtype)
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))  # conv2d correlates; flipping gives a true convolution
    if f.ndim == 2:
        weight = f.expand([channels, 1, f.shape[0], f.shape[1]])
        x = conv2d_gradfix.conv2d(input=x, weight=weight, groups=channels)
    else:
        taps = f.shape[0]
        x = conv2d_gradfix.conv2d(input=x, weight=f.reshape([1, 1, 1, taps]).expand([channels, 1, 1, taps]), groups=channels)
        x = conv2d_gradfix.conv2d(input=x, weight=f.reshape([1, 1, taps, 1]).expand([channels, 1, taps, 1]), groups=channels)

    # Downsample by keeping every down-th sample, starting at the first.
    if downx > 1 or downy > 1:
        x = x[:, :, ::downy, ::downx]
    return x

#----------------------------------------------------------------------------
# Autograd Function around the CUDA kernel for one configuration (cached). The gradient of
# upfirdn2d is upfirdn2d with up and down swapped, the filter flipped and adjusted padding, so
# the backward pass reuses this machinery and gradients of any order work.

@functools.lru_cache(maxsize=None)
def _upfirdn2d_cuda(up, down, padding, flip_filter, gain):
    (upx, upy), (downx, downy), (px0, px1, py0, py1) = up, down, padding
    plugin = _plugin()

    def run(x, f2d, up_xy, down_xy, pad, g):
        return plugin.upfirdn2d(x, f2d, up_xy[0], up_xy[1], down_xy[0], down_xy[1],
                                pad[0], pad[1], pad[2], pad[3], flip_filter, g)

    class Upfirdn2dCuda(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, f):
            ctx.in_shape = x.shape
            ctx.save_for_backward(f)
            if f is None:
                f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
            if f.ndim == 2:
                y = run(x, f, up, down, padding, gain)
            else:
                # Separable: a horizontal pass, then a vertical one, each with sqrt(gain).
                g = float(np.sqrt(gain))
                y = run(x, f.unsqueeze(0), (upx, 1), (downx, 1), (px0, px1, 0, 0), g)
                y = run(y, f.unsqueeze(1), (1, upy), (1, downy), (0, 0, py0, py1), g)
            return y

        @staticmethod
        def backward(ctx, dy):
            f, = ctx.saved_tensors
            dx = None
            if ctx.needs_input_grad[0]:
                _, _, in_h, in_w = ctx.in_shape
                _, _, out_h, out_w = dy.shape
                grad_padding = _transposed_padding(f, (upx, upy), (downx, downy), padding, (in_h, in_w), (out_h, out_w))
                dx = _upfirdn2d_cuda(up=down, down=up, padding=grad_padding, flip_filter=(not flip_filter),
                                     gain=gain).apply(dy, f)
            return dx, None

    return Upfirdn2dCuda

#----------------------------------------------------------------------------
# Padding of the upfirdn2d that computes the input gradient (the adjoint operator): with up and down
# swapped and the filter flipped, it must put output pixel o of the forward op back on the input pixels
# that fed it. The right/bottom terms also absorb the rows dropped by the forward downsampling.

def _transposed_padding(f, up, down, padding, in_size, out_size):
    fw, fh = _get_filter_size(f)
    (upx, upy), (downx, downy), (px0, px1, py0, py1) = up, down, padding
    (in_h, in_w), (out_h, out_w) = in_size, out_size
    return (fw - px0 - 1, in_w * upx - out_w * downx + px0 - upx + 1,
            fh - py0 - 1, in_h * upy - out_h * downy + py0 - upy + 1)

#----------------------------------------------------------------------------
# Filter without resampling; the output has the input's size unless padding is given.
# padding: extra padding on top of the default "same" padding, int / [px, py] / [px0, px1, py0, py1].

def filter2d(x, f, padding=0, flip_filter=False, gain=1, impl='cuda'):
    px0, px1, py0, py1 = _parse_padding(padding)
    fw, fh = _get_filter_size(f)
    pad = [px0 + fw // 2, px1 + (fw - 1) // 2, py0 + fh // 2, py1 + (fh - 1) // 2]
    return upfirdn2d(x, f, padding=pad, flip_filter=flip_filter, gain=gain, impl=impl)

#----------------------------------------------------------------------------
# Upsample by up (int or [x, y]) with interpolation filter f; H x W -> H*upy x W*upx by default.
# The gain is multiplied by upx*upy so that the inserted zeros do not dim the image.

def upsample2d(x, f, up=2, padding=0, flip_filter=False, gain=1, impl='cuda'):
    upx, upy = _parse_scaling(up)
    px0, px1, py0, py1 = _parse_padding(padding)
    fw, fh = _get_filter_size(f)
    pad = [px0 + (fw + upx - 1) // 2, px1 + (fw - upx) // 2, py0 + (fh + upy - 1) // 2, py1 + (fh - upy) // 2]
    return upfirdn2d(x, f, up=(upx, upy), padding=pad, flip_filter=flip_filter, gain=gain * upx * upy, impl=impl)

#----------------------------------------------------------------------------
# Downsample by down (int or [x, y]) with anti-aliasing filter f; H x W -> H/downy x W/downx by default.

def downsample2d(x, f, down=2, padding=0, flip_filter=False, gain=1, impl='cuda'):
    downx, downy = _parse_scaling(down)
    px0, px1, py0, py1 = _parse_padding(padding)
    fw, fh = _get_filter_size(f)
    pad = [px0 + (fw - downx + 1) // 2, px1 + (fw - downx) // 2, py0 + (fh - downy + 1) // 2, py1 + (fh - downy) // 2]
    return upfirdn2d(x, f, down=(downx, downy), padding=pad, flip_filter=flip_filter, gain=gain, impl=impl)

#----------------------------------------------------------------------------
