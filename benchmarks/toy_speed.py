"""Toy loop speed: train.py --cfg=toy's training loop against a minimal PyTorch loop of the same networks (issue 18 item 6).

    python -m benchmarks.toy_speed                          # batch 128 and 512, 5 alternating rounds
    python -m benchmarks.toy_speed --batches=128 --reps=3 --iters=300

Both run in this process on one CPU thread, alternating A/B in every round so that a busy machine slows both alike.

- ours: training.training_loop.training_loop with the options train.py builds for
  `--cfg=toy --data=toy:ring8 --batch=B` (G then D per step, logistic loss, Adam (0.5, 0.999), no EMA, no
  snapshots); ms/step is the time between two tick ends `--iters` steps apart (tick bookkeeping included).
- minimal: the same layers (G: 2 -> 128 ReLU -> 128 ReLU -> 2; D: 2 -> 128 tanh x 3 -> 1) as nn.Sequential, the same
  Adam, the same non-saturating logistic loss, one G step then one D step (its own latents, a fresh G forward), reals
  by one torch.randint gather from the same points.

Prints the median ms/step of each over the rounds and their ratio, twice: wall clock, and the CPU time of the
timing thread (time.thread_time). On a shared machine the wall clock also counts the time other processes hold the
core; the thread's CPU time counts only the work of the step itself, so its ratio is the steadier one there.
"""

import argparse
import contextlib
import io
import os
import statistics
import tempfile
import time

import torch

import dnnlib

#----------------------------------------------------------------------------

def _toy_config(outdir, batch):
    import train
    ctx = train.main.make_context('train.py', [f'--outdir={outdir}', '--cfg=toy', '--data=toy:ring8', f'--batch={batch}'])
    c, _desc = train.setup_training_loop_kwargs(ctx.params)
    return c

def _now():
    return time.perf_counter(), time.thread_time()

def _per_step_ms(start, end, iters):
    return tuple((b - a) / iters * 1000 for a, b in zip(start, end))

# (wall, cpu) ms/step of our loop: ticks end after step 1, 1 + iters and 1 + 2 iters; the second tick is timed.
def time_ours(batch, iters, seed=0):
    from training import training_loop as loop_module
    with tempfile.TemporaryDirectory() as tmp:
        c = dnnlib.EasyDict(_toy_config(tmp, batch))
        c.random_seed = seed
        c.image_snapshot_ticks = c.network_snapshot_ticks = None
        c.kimg_per_tick = iters * batch / 1000
        c.total_kimg = (1 + 2 * iters) * batch / 1000
        stamps = []
        def abort_fn():
            stamps.append(_now())
            return False
        with contextlib.redirect_stdout(io.StringIO()):
            loop_module.training_loop(run_dir=tmp, abort_fn=abort_fn, **c)
    return _per_step_ms(stamps[1], stamps[2], iters)

# (wall, cpu) ms/step of the minimal loop on the same points.
def time_minimal(batch, iters, seed=0):
    from training import toy_data
    data = toy_data.ToyDataset('toy:ring8')
    points = torch.from_numpy(data._points.reshape(-1, 2).astype('float32'))
    torch.manual_seed(seed)
    G = torch.nn.Sequential(torch.nn.Linear(2, 128), torch.nn.ReLU(), torch.nn.Linear(128, 128), torch.nn.ReLU(), torch.nn.Linear(128, 2))
    D = torch.nn.Sequential(torch.nn.Linear(2, 128), torch.nn.Tanh(), torch.nn.Linear(128, 128), torch.nn.Tanh(),
                            torch.nn.Linear(128, 128), torch.nn.Tanh(), torch.nn.Linear(128, 1))
    G_opt = torch.optim.Adam(G.parameters(), lr=5e-4, betas=(0.5, 0.999))
    D_opt = torch.optim.Adam(D.parameters(), lr=5e-4, betas=(0.5, 0.999))
    softplus = torch.nn.functional.softplus

    def step():
        real = points[torch.randint(len(points), [batch])]
        G_opt.zero_grad(set_to_none=True)
        softplus(-D(G(torch.randn([batch, 2])))).mean().backward()
        G_opt.step()
        D_opt.zero_grad(set_to_none=True)
        fake = G(torch.randn([batch, 2])).detach()
        (softplus(-D(real)).mean() + softplus(D(fake)).mean()).backward()
        D_opt.step()

    for _ in range(20):
        step()
    start = _now()
    for _ in range(iters):
        step()
    return _per_step_ms(start, _now(), iters)

#----------------------------------------------------------------------------

def run(batches, reps, iters):
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    results = {(b, name): [] for b in batches for name in ('ours', 'minimal')}
    try:
        for rep in range(reps):
            for batch in batches:
                results[(batch, 'ours')].append(time_ours(batch, iters, seed=rep))
                results[(batch, 'minimal')].append(time_minimal(batch, iters, seed=rep))
    finally:
        torch.set_num_threads(previous)
    rows = []
    for batch in batches:
        row = dict(batch=batch)
        for i, clock in enumerate(('wall', 'cpu')):
            ours = statistics.median(t[i] for t in results[(batch, 'ours')])
            minimal = statistics.median(t[i] for t in results[(batch, 'minimal')])
            row[clock] = dict(ours=ours, minimal=minimal, ratio=ours / minimal)
        rows.append(row)
    return rows

def format_table(rows, reps, iters):
    lines = [f'Toy loop, ms/step (one G and one D step), median of {reps} alternating rounds of {iters} steps, 1 thread:',
             '', '| batch | clock | train.py --cfg=toy | minimal PyTorch loop | ratio |', '|---|---|---|---|---|']
    lines += [f'| {r["batch"]} | {clock} | {r[clock]["ours"]:.2f} | {r[clock]["minimal"]:.2f} | {r[clock]["ratio"]:.2f}x |'
              for r in rows for clock in ('wall', 'cpu')]
    return '\n'.join(lines)

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--batches', default='128,512', help='comma-separated batch sizes (default: 128,512)')
    parser.add_argument('--reps', type=int, default=5, help='alternating A/B rounds (default: 5)')
    parser.add_argument('--iters', type=int, default=200, help='timed steps per run (default: 200)')
    args = parser.parse_args()
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    batches = [int(b) for b in args.batches.split(',')]
    print(format_table(run(batches, args.reps, args.iters), args.reps, args.iters))

if __name__ == '__main__':
    main()
