"""Time bias_act and upfirdn2d: the pure-PyTorch twins, and the CUDA kernels where CUDA is available.

    python benchmarks/ops.py                    # CUDA if present, else CPU (twins only)
    python benchmarks/ops.py --device=cpu --batch=2 --iters=10
"""

import os
import sys
import time

import click
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from torch_utils.ops import bias_act, upfirdn2d  # noqa: E402  (needs the repo root on sys.path)

#----------------------------------------------------------------------------
# Benchmark cases: (op name, description, input shape, function of x). The shapes follow what the
# networks and the augmentation pipe feed these ops at a mid-level resolution.

def _cases(batch, channels, res, device):
    f4 = upfirdn2d.setup_filter([1, 3, 3, 1], device=device)
    f12 = upfirdn2d.setup_filter([1.0] * 12, device=device)   # separable, like the augment wavelet
    bias = {}

    def biased(act, clamp):
        def fn(x, impl):
            b = bias.setdefault((x.shape[1], x.dtype), torch.randn([x.shape[1]], device=device, dtype=x.dtype))
            return bias_act.bias_act(x, b, act=act, clamp=clamp, impl=impl)
        return fn

    return [
        ('bias_act', 'lrelu, clamp 256', [batch, channels, res, res], biased('lrelu', 256)),
        ('bias_act', 'linear (FC)', [batch * res, channels], biased('linear', None)),
        ('bias_act', 'swish', [batch, channels, res, res], biased('swish', None)),
        ('upfirdn2d', 'upsample2d 4-tap', [batch, channels, res, res], lambda x, impl: upfirdn2d.upsample2d(x, f4, impl=impl)),
        ('upfirdn2d', 'downsample2d 4-tap', [batch, channels, res, res], lambda x, impl: upfirdn2d.downsample2d(x, f4, impl=impl)),
        ('upfirdn2d', 'filter2d 4-tap', [batch, channels, res, res], lambda x, impl: upfirdn2d.filter2d(x, f4, impl=impl)),
        ('upfirdn2d', 'upsample2d 12-tap sep', [batch, 3, res * 4, res * 4], lambda x, impl: upfirdn2d.upsample2d(x, f12, impl=impl)),
    ]

#----------------------------------------------------------------------------
# Mean milliseconds per call of fn after warmup calls, synchronising the device around the loop.

def _time_ms(fn, iters, warmup, device):
    sync = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    sync()
    return (time.perf_counter() - start) / iters * 1000

#----------------------------------------------------------------------------

@click.command()
@click.option('--device', help='Device to run on  [default: cuda if available, else cpu]', type=str, default=None)
@click.option('--batch', help='Batch size', type=click.IntRange(min=1), default=4, show_default=True)
@click.option('--channels', help='Channels', type=click.IntRange(min=1), default=128, show_default=True)
@click.option('--res', help='Spatial resolution', type=click.IntRange(min=4), default=32, show_default=True)
@click.option('--iters', help='Timed iterations per entry', type=click.IntRange(min=1), default=20, show_default=True)
@click.option('--warmup', help='Untimed iterations per entry', type=click.IntRange(min=0), default=3, show_default=True)
def main(device, batch, channels, res, iters, warmup):
    """Print ms/iteration of forward and forward+backward for every op, dtype and implementation."""
    device = torch.device(device if device is not None else ('cuda' if torch.cuda.is_available() else 'cpu'))
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise click.ClickException(f'--device={device}: CUDA is not available in this torch build; use --device=cpu')

    # Implementations and dtypes to time.
    impls = {'bias_act': ['ref'], 'upfirdn2d': ['ref']}
    if device.type == 'cuda':
        for name, op in [('bias_act', bias_act), ('upfirdn2d', upfirdn2d)]:
            if op._init():
                impls[name].append('cuda')
        dtypes = [torch.float32, torch.float16]
        layouts = [torch.contiguous_format, torch.channels_last]
        print(f'Device: {torch.cuda.get_device_name(device)}')
    else:
        dtypes = [torch.float32]
        layouts = [torch.contiguous_format]
        print(f'Device: {device}. CUDA is unavailable: timing the reference implementations only.')

    # One row per (case, dtype, layout, impl).
    header = f'{"op":<10} {"case":<22} {"shape":<20} {"dtype":<8} {"layout":<6} {"impl":<5} {"fwd ms":>9} {"fwd+bwd ms":>11}'
    print(header)
    print('-' * len(header))
    for op_name, desc, shape, fn in _cases(batch, channels, res, device):
        for dtype in dtypes:
            for layout in layouts:
                if layout == torch.channels_last and len(shape) != 4:
                    continue
                x = torch.randn(shape, device=device, dtype=dtype).contiguous(memory_format=layout)
                for impl in impls[op_name]:
                    xg = x.detach().clone().requires_grad_(True)
                    dy = torch.randn_like(fn(x, impl))
                    fwd = _time_ms(lambda: fn(x, impl), iters, warmup, device)
                    both = _time_ms(lambda: fn(xg, impl).backward(dy), iters, warmup, device)
                    layout_name = 'NHWC' if layout == torch.channels_last else 'NCHW'
                    shape_text = 'x'.join(str(s) for s in shape)
                    print(f'{op_name:<10} {desc:<22} {shape_text:<20} {str(dtype)[6:]:<8} {layout_name:<6} {impl:<5} '
                          f'{fwd:>9.3f} {both:>11.3f}', flush=True)

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main()

#----------------------------------------------------------------------------
