"""2-D convolution fused with FIR-filtered up/downsampling, picking the cheapest equivalent op sequence."""

import numbers

import torch

from .. import misc
from . import conv2d_gradfix
from . import upfirdn2d

#----------------------------------------------------------------------------
# Check that a resampling argument is a positive Python (or numpy) integer.

def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f'conv2d_resample: {name} must be an int, got {type(value).__name__} {value!r}')
    if value < 1:
        raise ValueError(f'conv2d_resample: {name} must be >= 1, got {value}')
    return int(value)

#----------------------------------------------------------------------------
# Plain (or transposed) convolution through conv2d_gradfix. flip_weight=True
# correlates with `w` like torch.nn.functional.conv2d; flip_weight=False
# flips `w` in both spatial dimensions first, giving a true convolution.

def _conv2d_wrapper(x, w, stride=1, padding=0, groups=1, transpose=False, flip_weight=True):
    if not flip_weight:
        w = w.flip([2, 3])
    if transpose:
        return conv2d_gradfix.conv_transpose2d(x, w, stride=stride, padding=padding, groups=groups)
    return conv2d_gradfix.conv2d(x, w, stride=stride, padding=padding, groups=groups)

#----------------------------------------------------------------------------
# The defining sequence, without shortcuts: zero-insert upsampling, padding and
# the up-filter (gain up**2), then a valid convolution, then filtering and
# keeping every `down`-th pixel. `pad` is [px0, px1, py0, py1], already
# including the filter's own padding.

def _conv2d_resample_generic(x, w, f, up, down, pad, groups, flip_weight, flip_filter):
    x = upfirdn2d.upfirdn2d(x=x, f=(f if up > 1 else None), up=up, padding=pad, gain=up ** 2,
                            flip_filter=flip_filter)
    x = _conv2d_wrapper(x=x, w=w, groups=groups, flip_weight=flip_weight)
    if down > 1:
        x = upfirdn2d.upfirdn2d(x=x, f=f, down=down, flip_filter=flip_filter)
    return x

#----------------------------------------------------------------------------
# Pad the input, upsample by `up`, convolve with `w`, downsample by `down`.
# Args:
#   x: [N, Cin, H, W]; w: [Cout, Cin/groups, kh, kw], same dtype as x.
#   f: None or a float32 FIR filter from upfirdn2d.setup_filter, [fh, fw] or [taps].
#   up, down, groups: ints >= 1.
#   padding: int, [px, py] or [px0, px1, py0, py1], counted in upsampled pixels.
#   flip_weight: True = correlation (as F.conv2d), False = true convolution.
#   flip_filter: False = convolve with f, True = correlate with f.
# Returns [N, Cout, H', W'] where the result equals the generic sequence above.

@misc.profiled_function
def conv2d_resample(x, w, f=None, up=1, down=1, padding=0, groups=1, flip_weight=True, flip_filter=False):
    # Validate arguments.
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(f'conv2d_resample: x must be a 4-D tensor [N, C, H, W], got {_describe(x)}')
    if not isinstance(w, torch.Tensor) or w.ndim != 4:
        raise ValueError(f'conv2d_resample: w must be a 4-D tensor [Cout, Cin/groups, kh, kw], got {_describe(w)}')
    if w.dtype != x.dtype:
        raise TypeError(f'conv2d_resample: w has dtype {w.dtype} but x has {x.dtype}; cast w with w.to(x.dtype)')
    if f is not None and (not isinstance(f, torch.Tensor) or f.ndim not in (1, 2) or f.dtype != torch.float32):
        raise ValueError(f'conv2d_resample: f must be None or a 1-D/2-D float32 tensor from '
                         f'upfirdn2d.setup_filter(), got {_describe(f)}')
    up = _positive_int(up, 'up')
    down = _positive_int(down, 'down')
    groups = _positive_int(groups, 'groups')
    out_channels, in_channels_per_group, kh, kw = w.shape
    fw, fh = upfirdn2d._get_filter_size(f)
    px0, px1, py0, py1 = upfirdn2d._parse_padding(padding)

    # Grow the padding so that the resampling filter stays centred.
    if up > 1:
        px0, px1 = px0 + (fw + up - 1) // 2, px1 + (fw - up) // 2
        py0, py1 = py0 + (fh + up - 1) // 2, py1 + (fh - up) // 2
    if down > 1:
        px0, px1 = px0 + (fw - down + 1) // 2, px1 + (fw - down) // 2
        py0, py1 = py0 + (fh - down + 1) // 2, py1 + (fh - down) // 2
    pad = [px0, px1, py0, py1]
    pointwise = (kw == 1 and kh == 1)

    # 1x1 kernel, downsampling only: filter and decimate first, convolve the small image.
    if pointwise and down > 1 and up == 1:
        x = upfirdn2d.upfirdn2d(x=x, f=f, down=down, padding=pad, flip_filter=flip_filter)
        return _conv2d_wrapper(x=x, w=w, groups=groups, flip_weight=flip_weight)

    # 1x1 kernel, upsampling only: convolve the small image, then upsample it.
    if pointwise and up > 1 and down == 1:
        x = _conv2d_wrapper(x=x, w=w, groups=groups, flip_weight=flip_weight)
        return upfirdn2d.upfirdn2d(x=x, f=f, up=up, padding=pad, gain=up ** 2, flip_filter=flip_filter)

    # Downsampling only: filter, then a strided convolution does the decimation.
    if down > 1 and up == 1:
        x = upfirdn2d.upfirdn2d(x=x, f=f, padding=pad, flip_filter=flip_filter)
        return _conv2d_wrapper(x=x, w=w, stride=down, groups=groups, flip_weight=flip_weight)

    # Upsampling: a strided transposed convolution inserts the zeros and convolves
    # in one go. It needs w as [Cin, Cout/groups, kh, kw] (swap in/out per group),
    # and it convolves rather than correlates, hence the inverted flip_weight.
    if up > 1:
        if groups == 1:
            wt = w.transpose(0, 1)
        else:
            wt = w.reshape(groups, out_channels // groups, in_channels_per_group, kh, kw)
            wt = wt.transpose(1, 2).reshape(groups * in_channels_per_group, out_channels // groups, kh, kw)
        # The transposed conv already pads by k-1 on both sides (up-1 fewer on the right,
        # where zero insertion leaves trailing zeros); crop its symmetric excess through its
        # own padding and leave the rest to the filter pass.
        px0, px1 = px0 - (kw - 1), px1 - (kw - up)
        py0, py1 = py0 - (kh - 1), py1 - (kh - up)
        crop_x = max(min(-px0, -px1), 0)
        crop_y = max(min(-py0, -py1), 0)
        x = _conv2d_wrapper(x=x, w=wt, stride=up, padding=[crop_y, crop_x], groups=groups, transpose=True,
                            flip_weight=(not flip_weight))
        x = upfirdn2d.upfirdn2d(x=x, f=f, padding=[px0 + crop_x, px1 + crop_x, py0 + crop_y, py1 + crop_y],
                                gain=up ** 2, flip_filter=flip_filter)
        if down > 1:
            x = upfirdn2d.upfirdn2d(x=x, f=f, down=down, flip_filter=flip_filter)
        return x

    # No resampling and symmetric, non-negative padding: the convolution pads by itself.
    if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return _conv2d_wrapper(x=x, w=w, padding=[py0, px0], groups=groups, flip_weight=flip_weight)

    # Anything else (asymmetric or negative padding) takes the generic sequence.
    return _conv2d_resample_generic(x, w, f, up, down, pad, groups, flip_weight, flip_filter)

#----------------------------------------------------------------------------
# Short description of an argument for error messages.

def _describe(value):
    if isinstance(value, torch.Tensor):
        return f'{value.dtype} tensor of shape {tuple(value.shape)}'
    return f'{type(value).__name__} {value!r}'

#----------------------------------------------------------------------------
