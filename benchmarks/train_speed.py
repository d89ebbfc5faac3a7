"""Training speed benchmark: seconds per thousand real images (sec/kimg) for a train.py configuration, in one process.

Examples:
    python benchmarks/train_speed.py                                   # the demo config on the synthetic data
    python benchmarks/train_speed.py --cfg=auto --data=ds.zip --batch=32 --steps=20
"""

import contextlib
import io
import json
import os
import sys
import tempfile

import click
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import train  # pylint: disable=wrong-import-position
from training import training_loop as training_loop_module  # pylint: disable=wrong-import-position

# train.py options that make no sense for a timing run (--steps here is the timed iterations, not train.py's length).
_skipped = {'outdir', 'dry_run', 'kimg', 'steps', 'tick', 'snap', 'metrics', 'resume', 'resume_exact', 'gpus'}

#----------------------------------------------------------------------------
# Time `steps` training iterations after one warm-up iteration (tick 0, which
# also pays for lazy initialisation). Returns the stats.jsonl line of the timed tick.

def measure(opts, steps, device):
    with tempfile.TemporaryDirectory() as outdir:
        opts = dict({name: None for name in _skipped}, **opts, outdir=outdir, gpus=1, metrics=[])
        with contextlib.redirect_stdout(io.StringIO()):
            c, _desc = train.setup_training_loop_kwargs(opts)
        c.total_kimg = (steps + 1) * c.batch_size / 1000
        c.kimg_per_tick = steps * c.batch_size / 1000
        c.image_snapshot_ticks = c.network_snapshot_ticks = None
        c.run_dir = outdir
        with contextlib.redirect_stdout(io.StringIO()):
            training_loop_module.training_loop(device=device, **c)
        with open(os.path.join(outdir, 'stats.jsonl')) as f:
            return c, json.loads(f.read().splitlines()[-1])

#----------------------------------------------------------------------------

@click.command(context_settings=dict(ignore_unknown_options=False))
@click.option('--steps', help='Timed training iterations', type=click.IntRange(min=1), default=10, show_default=True)
@click.option('--device', help='Torch device  [default: cuda if available, else cpu]', metavar='NAME')
def main(steps, device, **opts):
    """Print sec/kimg (and per-phase milliseconds) for the configuration the train.py options describe."""
    device = torch.device(device if device is not None else ('cuda' if torch.cuda.is_available() else 'cpu'))
    c, stats = measure(opts, steps, device)
    phases = ', '.join(f'{name[7:]} {value["mean"]:.0f} ms' for name, value in stats.items()
                       if name.startswith('Timing/') and name[7:] in ('Gmain', 'Greg', 'Gboth', 'Dmain', 'Dreg', 'Dboth'))
    print(f'device {device}, batch {c.batch_size} (batch_gpu {c.batch_gpu}), {c.training_set_kwargs.resolution}x'
          f'{c.training_set_kwargs.resolution}, {steps} steps, threads {torch.get_num_threads()}')
    print(f'sec/kimg {stats["Timing/sec_per_kimg"]["mean"]:.2f}')
    print(f'last step per phase: {phases}')

# Accept every train.py option except the ones above.
main.params.extend(p for p in train.main.params if p.name not in _skipped)

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
