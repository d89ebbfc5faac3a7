"""PriorGAN (Gu et al., "PriorGAN: Real Data Prior for Generative Adversarial Nets", NeurIPS 2020) on the toy lab: the paper's two toy claims, run through train.py over several seeds, with the mechanism measured one level deeper where a claim does not reproduce (issue 18).

    python -m experiments.priorgan --jobs 12                 # every claim, its arms and the stated search
    python -m experiments.priorgan --quick                   # the machinery in < 60 s on one core
    python -m experiments.priorgan --only=priorgan-ring8-quality --seeds=0-4
    python -m experiments.priorgan --dry-run                 # the runs and their estimated core-minutes

Claims (the paper's toys are Fig. 1 and the text of §3.2-3.3; its numbers are on images, Tables 2-7):

  priorgan-ring8rare-resampling  "resampling recovers missing modes" (§3.3, Fig. 1 c-d; Table 4 "+RS" lowers DDS).
                                 8-mode ring with one mode at 2 %; metric DDS (Eq. 7) over the true modes.
  priorgan-ring8-quality         "the quality loss moves low-quality samples to the data" (§3.2, Fig. 1 a-b; Table 4
                                 "+L_Q" lowers FID, raises QS). 8-mode ring; metric EMD (the toy FID), HQ share (the
                                 toy QS) per run.

Each claim writes experiments/results/<claim>.json (schema: experiments protocol) and pictures under
docs/reproduction/: Fig. 1 over training (samples, and the direction G is pushed, with and without the prior).
The verdict is computed by `verdict()` from the numbers: reproduced = the method's mean beats the baseline's and
the mean +- std intervals do not overlap; same direction = better mean, overlapping; not reproduced = otherwise.
The paper gives no toy numbers, so "the paper's size" is not part of the rule here.

Helpers (train one run, score it, summarise, the verdict, the result file, the pool) are shared with
experiments/rfgan.py.
"""

import argparse
import json
import math
import multiprocessing
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

#----------------------------------------------------------------------------
# The paper's settings, written once (source in the paper / the spec), and our toy choices where the paper is silent.

PAPER = {
    'components M':      ('7 (LSUN, Table 5 best); 35 / 70 / 7 / 7 for CIFAR-10 / FFHQ / LSUN-cat / LSUN-bird', '§4 Impl. details, §4.5'),
    'quality weight δ':  ('0.1 on -log p (Eq. 5 as written)', '§4 Impl. details; Table 6 sweeps 0.03-0.2'),
    'resample weight α': ('7 (FFHQ, LSUN); 3 (CIFAR-10)', '§4 Impl. details; Table 7 sweeps 1-9'),
    'threshold θ':       ('silent', 'Eq. 5'),
    'features F':        ('ResNet-101 last average pool (InceptionV3 in Table 3), PCA 98 %', '§4 Impl. details, §4.5'),
    'grouping rule':     ('nearest component mean', '§3.3'),
    'f_g schedule':      ('silent (how often, how many images)', '§3.3'),
    'toy GAN of Fig. 1': ('"a basic GAN" (Goodfellow et al. 2014); networks, data and length silent', '§3, Fig. 1'),
    'metrics':           ('QS (mean normalised log p, normalisation silent), DDS Eq. 7, FID', '§3.3, §4 Evaluations'),
}

TOY = {
    'data, resampling claim': ('toy:ring8,rare=0.02 (radius 2, std 0.02, mode 0 at 2 %, 10,000 points)', 'issue 18 measured this set'),
    'data, quality claim':    ('toy:ring8 (radius 2, std 0.02)', 'Metz et al.\'s ring, the toy lab default'),
    'networks':               ('--cfg=toy: G 2x128 ReLU, D 3x128 tanh, 2-D N(0, I) latents, Adam 5e-4 (0.5, 0.999), batch 128',
                               'docs/toy-lab.md; the paper is silent'),
    'length':                 ('200 kimg = 1,562 steps', '--cfg=toy default'),
    'features':               ('the points themselves (identity), no PCA', 'a 2-D toy has no deep features'),
    'M':                      ('8 = the true number of modes', 'the setting most favourable to the method'),
    'θ':                      ('10 % quantile of held-out reals\' log p', 'docs/priors.md §3'),
    'f_g':                    ('every 4 kimg from 1,000 G_ema points, EMA 0.9 (defaults)', 'docs/priors.md §3'),
    'metric points':          ('2,000 generated vs 2,000 fresh data points, metric seed 0', 'docs/toy-lab.md toy2k'),
}

DEVIATIONS = [
    'Toy features are the 2-D points themselves (identity, no PCA), not ResNet-101 features of images.',
    'M = 8 (the true number of modes) instead of the paper\'s 7 for LSUN.',
    'The toy GAN is the toy lab\'s (--cfg=toy); the paper does not give its Fig. 1 networks, data or length.',
    'DDS and rare-mode share are computed over the true modes (nearest true centre), not over the run\'s GMM components.',
    'EMD (exact W1) stands in for FID and the HQ share (points within 3 std of a mode) for QS on the toy.',
]

SPECS = {'ring8_rare': 'toy:ring8,rare=0.02', 'ring8': 'toy:ring8'}
GMM = ['--prior=gmm', '--prior-components=8']
RS_ONLY = GMM + ['--prior-weight=0']                                    # the paper's "+RS" (Table 4), alpha 7
LQ_ONLY = GMM + ['--resample=0', '--prior-loss-form=paper']             # the paper's "+L_Q" (Table 4)
FAST = ['--resample-kimg=1', '--resample-ema=0']                        # f_g every 1 kimg, no smoothing

# Claims: data, metric, direction, arms. An arm: (label, train.py options, role), role in baseline / method /
# extra / search. 'needs' lists options that must exist in train.py --help (else the arm is skipped, and said so).
CLAIMS = {
    'priorgan-ring8rare-resampling': dict(
        data='ring8_rare', metric='dds', higher_is_better=False,
        claim='Resampling the real data by GMM component (Eq. 6-8) makes the generator recover missing or rare modes.',
        paper_number='qualitative on toys (Fig. 1 c-d); images: StyleGAN +RS lowers DDS 0.250 -> 0.196 (FFHQ), 0.203 -> 0.149 '
                     '(LSUN-cat), 0.136 -> 0.095 (LSUN-bird) (Table 4)',
        metric_text='DDS (Eq. 7) over the 8 true modes, 2,000 generated points (lower is better); rare-mode share per run in "details"',
        arms=[
            ('baseline GAN', [], 'baseline'),
            ('+RS (paper: alpha 7, delta 0)', RS_ONLY, 'method'),
            ('+L_Q +RS (paper: delta 0.1, alpha 7)', GMM + ['--prior-loss-form=paper', '--prior-weight=0.1'], 'extra'),
            ('+RS, f_g every 1 kimg, no EMA', RS_ONLY + FAST, 'search'),
            ('+RS, alpha 3, f_g every 1 kimg', RS_ONLY + FAST + ['--resample-alpha=3'], 'search'),
            ('+RS, alpha 15, f_g every 1 kimg', RS_ONLY + FAST + ['--resample-alpha=15'], 'search'),
            ('+RS, f_g every 1 kimg, max ratio 3 (option)', RS_ONLY + FAST + ['--resample-max-ratio=3'], 'search'),
            ('+RS, known modes (option), f_g every 1 kimg', RS_ONLY + FAST + ['--resample-labels=1'], 'search'),
        ]),
    'priorgan-ring8-quality': dict(
        data='ring8', metric='emd', higher_is_better=False,
        claim='The quality loss (Eq. 5) gives low-quality samples a gradient towards the real data, improving quality.',
        paper_number='qualitative on toys (Fig. 1 a-b); images: StyleGAN +L_Q raises QS 0.703 -> 0.732 and lowers FID 11.69 -> 9.75 '
                     '(FFHQ, Table 4)',
        metric_text='EMD (exact W1, 2,000 vs 2,000 points; lower is better); HQ share (the toy QS) and modes per run in "details"',
        arms=[
            ('baseline GAN', [], 'baseline'),
            ('+L_Q (paper: delta 0.1 on -log p)', LQ_ONLY + ['--prior-weight=0.1'], 'method'),
            ('+L_Q, delta 0.01', LQ_ONLY + ['--prior-weight=0.01'], 'search'),
            ('+L_Q scaled to the component spread (option), delta 0.1', LQ_ONLY + ['--prior-weight=0.1', '--prior-quality-scale=spread'], 'search'),
            ('+L_Q scaled to the component spread (option), delta 1', LQ_ONLY + ['--prior-weight=1', '--prior-quality-scale=spread'], 'search'),
        ]),
}

SEARCH_BUDGET = 'at most 30 runs for the paper (10 arms x 3 seeds beyond the two baselines and methods)'
QUICK = dict(kimg=6, tick=3, points=300, arms=('baseline', 'method'))
FULL = dict(kimg=200, tick=50, points=2000)

#----------------------------------------------------------------------------
# Small helpers shared with experiments/rfgan.py.

def parse_seeds(text):
    seeds = []
    for part in str(text).split(','):
        lo, _, hi = part.strip().partition('-')
        seeds += list(range(int(lo), int(hi or lo) + 1))
    return seeds

def summarise(values):
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    if len(v) == 0:
        return dict(mean=None, std=None)
    return dict(mean=float(v.mean()), std=float(v.std()))

def verdict(baseline_values, method_values, higher_is_better):
    """reproduced: better mean and no overlap of mean +- std; same direction: better mean, overlapping; else not reproduced."""
    b, m = summarise(baseline_values), summarise(method_values)
    if b['mean'] is None or m['mean'] is None:
        return 'not reproduced'
    sign = 1 if higher_is_better else -1
    if not sign * (m['mean'] - b['mean']) > 0:
        return 'not reproduced'
    gap = sign * (m['mean'] - b['mean']) - (m['std'] + b['std'])
    return 'reproduced' if gap > 0 else 'same direction'

def machine():
    import torch
    return f'{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, Python {platform.python_version()}'

def train_help():
    proc = subprocess.run([sys.executable, os.path.join(REPO, 'train.py'), '--help'], cwd=REPO, capture_output=True, text=True, check=False)
    return proc.stdout

def missing_options(args, help_text):
    names = {a.split('=')[0] for a in args if a.startswith('--')}
    return sorted(n for n in names if n not in help_text)

# One train.py process; returns (run_dir, wall seconds, child CPU seconds, error text or None).
def train_run(cmd_args, workdir):
    os.makedirs(workdir, exist_ok=True)
    cmd = [sys.executable, os.path.join(REPO, 'train.py'), f'--outdir={workdir}'] + list(cmd_args)
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.time()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    wall = time.time() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        return None, wall, cpu, f'{" ".join(cmd)}\n{proc.stdout[-1500:]}\n{proc.stderr[-2500:]}'
    run_dir = max(os.path.join(workdir, d) for d in os.listdir(workdir) if os.path.isdir(os.path.join(workdir, d)))
    return run_dir, wall, cpu, None

def snapshots(run_dir):
    """[(kimg, path)] of the run's network snapshots, in order."""
    found = []
    for name in os.listdir(run_dir):
        m = re.fullmatch(r'network-snapshot-(\d+)\.pkl', name)
        if m:
            found.append((int(m.group(1)), os.path.join(run_dir, name)))
    return sorted(found)

def load_snapshot(path):
    import legacy
    with open(path, 'rb') as f:
        return legacy.load_network_pkl(f, safe=False)   # our own fresh runs

# Toy scores of a snapshot: EMD, modes, HQ, KL, DDS and the rarest mode's share / its weight.
def score_snapshot(snapshot, points):
    from metrics import metric_utils, toy_metrics
    opts = metric_utils.MetricOptions(G=snapshot['G_ema'], dataset_kwargs=snapshot['training_set_kwargs'], device='cpu', seed=0,
                                      snapshot=snapshot)
    scores = {k: float(v) for k, v in toy_metrics.compute_toy_scores(opts, num=points).items()}
    modes = toy_metrics.open_toy_dataset(opts).toy_modes
    scores['rare_share'] = None
    if modes is not None and not np.allclose(modes.weights, modes.weights[0]):
        k = int(np.argmin(modes.weights))
        gen = toy_metrics.generate_points(opts, points)
        scores['rare_share'] = float(toy_metrics.mode_scores(gen, modes.centres, modes.stds, modes.weights)['within'][k] / modes.weights[k])
    return scores

def pool_map(fn, jobs, num_jobs):
    if num_jobs <= 1 or len(jobs) <= 1:
        return [fn(job) for job in jobs]
    ctx = multiprocessing.get_context('spawn')
    with ctx.Pool(min(num_jobs, len(jobs))) as pool:
        return pool.map(fn, jobs, chunksize=1)

def arm_entry(label, runs, metric):
    ok = [r for r in runs if r.get('error') is None]
    values = [r['scores'][metric] for r in ok]
    return dict(label=label, seeds=[r['seed'] for r in ok], values=values, **summarise(values))

def write_json(path, record):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        json.dump(record, f, indent=1, default=lambda o: o.tolist() if isinstance(o, np.ndarray) else str(o))
    os.replace(tmp, path)

def settings_text(*tables):
    return '; '.join(f'{k}: {v[0]} [{v[1]}]' for table in tables for k, v in table.items())

#----------------------------------------------------------------------------
# Mechanism measurements on a run's snapshots.

def _gmm_state(snapshot):
    from training import resume
    state = ((resume.loss_state(snapshot) or {}).get('priors') or {}).get('gmm')
    return state if isinstance(state, dict) and 'prior_file' in state else None

# f' and f_g of the rare mode's group over the run (from GMMPrior's history in the last snapshot).
def resampling_trajectory(snapshot, labels=False):
    from priors.gmm.prior_file import PriorFile
    state = _gmm_state(snapshot)
    if state is None or len(state['resample']['history']['nimg']) == 0:
        return None
    modes = toy_modes(snapshot)
    rare = int(np.argmin(modes.weights))
    hist = state['resample']['history']
    real = state['resample']['real_freqs'].numpy()
    if labels:                      # --resample-labels: the groups are the true modes
        group = rare
    else:
        means = PriorFile(state['prior_file']).gmm.means_.numpy()
        group = int(np.argmin(np.linalg.norm(means - modes.centres[rare], axis=1)))
    f_prime, f_gen = hist['freqs'].numpy(), hist['gen_freqs'].numpy()
    return dict(nimg=hist['nimg'].tolist(), group=group, real_share=float(real[group]), f_prime=f_prime[:, group].tolist(),
                f_gen=f_gen[:, group].tolist(), zeroed_any=float((f_prime == 0).any(axis=1).mean()),
                f_prime_max=float(f_prime[:, group].max()), f_prime_min=float(f_prime[:, group].min()))

def toy_modes(snapshot):
    import dnnlib
    return dnnlib.util.construct_class_by_name(**snapshot['training_set_kwargs']).toy_modes

# -grad of G's adversarial loss (non-saturating, softplus(-D)) and of the quality term at num G_ema points:
# their norms (median over points) and the median ratio. prior settings: weight, loss_form, quality_scale.
def gradient_norms(snapshot, record, log_theta, num_dims, weight, loss_form, quality_scale, num=1000):
    import torch
    import torch.nn.functional as F
    from priors.gmm.prior import quality_loss_terms
    from priors.gmm.prior_file import PriorFile
    G, D = snapshot['G_ema'].eval(), snapshot['D'].eval()
    prior = PriorFile(record)
    z = torch.randn([num, G.z_dim], generator=torch.Generator().manual_seed(123))
    with torch.no_grad():
        x0 = G(z, torch.zeros([num, G.c_dim]))
    x = x0.detach().requires_grad_(True)
    (g_adv,) = torch.autograd.grad(F.softplus(-D(x, torch.zeros([num, 0]))).sum(), [x])
    x = x0.detach().requires_grad_(True)
    loss, _ = quality_loss_terms(prior, x.reshape(num, -1), log_theta, weight, num_dims, loss_form=loss_form, quality_scale=quality_scale)
    (g_q,) = torch.autograd.grad(loss.sum(), [x])
    a, q = g_adv.reshape(num, -1).norm(dim=1).double().numpy(), g_q.reshape(num, -1).norm(dim=1).double().numpy()
    below = q > 0
    ratio = q[below] / np.maximum(a[below], 1e-12)
    return dict(adv_median=float(np.median(a)), quality_median=float(np.median(q)), below_theta=float(below.mean()),
                ratio_median=float(np.median(ratio)) if below.any() else 0.0)

def _option(args, name, default):
    for a in args:
        if a.startswith(name + '='):
            return a.split('=', 1)[1]
    return default

#----------------------------------------------------------------------------
# One run: train, score the last snapshot, measure the mechanism. Runs in a pool worker.

def run_job(job):
    import torch
    torch.set_num_threads(1)
    out = dict(claim=job['claim'], arm=job['arm'], seed=job['seed'], args=job['args'], error=None)
    run_dir, wall, cpu, error = train_run(job['train_args'], job['workdir'])
    out.update(wall=wall, cpu=cpu, run_dir=run_dir)
    if error is not None:
        out['error'] = error
        return out
    snaps = snapshots(run_dir)
    last = load_snapshot(snaps[-1][1])
    out['scores'] = score_snapshot(last, job['points'])
    out['snapshot_kimg'] = [k for k, _ in snaps]
    out['trajectory'] = resampling_trajectory(last, labels='--resample-labels=1' in job['args'])
    state = _gmm_state(last)
    weight = float(_option(job['args'], '--prior-weight', 0.1))
    if state is not None and weight > 0:
        loss_form = _option(job['args'], '--prior-loss-form', 'per-dim').replace('-', '_')
        scale = _option(job['args'], '--prior-quality-scale', 'none')
        out['gradients'] = {str(k): gradient_norms(load_snapshot(p), state['prior_file'], state['log_theta'], state['num_dims'], weight,
                                                   loss_form, scale, num=300 if job['quick'] else 1000) for k, p in snaps}
    return out

#----------------------------------------------------------------------------
# Pictures: PriorGAN Fig. 1 over training. Each panel: the data density (green), generated points (blue) and red
# arrows = the direction G's loss pushes 48 generated points (-grad of the G loss), over snapshots (columns).

PANEL = 220

def _field_panel(real_modes, box, gen, at, push, title):
    import PIL.Image
    import PIL.ImageDraw
    from training import toy_pictures as tp
    plot = PIL.Image.fromarray(tp._density_rgb(tp.density_image(box, None, real_modes, res=PANEL)))
    draw = PIL.ImageDraw.Draw(plot)
    for x, y in tp.to_pixels(gen[:600], box, PANEL):
        draw.point((x, y), fill=tp.GEN)
    norms = np.linalg.norm(push, axis=1)
    scale = 0.09 * PANEL / max(float(np.percentile(norms, 90)), 1e-12)
    for (x, y), (gx, gy) in zip(tp.to_pixels(at, box, PANEL), push):
        dx, dy = gx * scale, -gy * scale
        length = math.hypot(dx, dy)
        if length > 0.25 * PANEL:       # clip very long arrows, keep the direction
            dx, dy = dx * 0.25 * PANEL / length, dy * 0.25 * PANEL / length
        tp._arrow(draw, x, y, dx, dy, tp.ARROW, width=1)
    panel = PIL.Image.new('RGB', (PANEL, PANEL + 16), tp.BACKGROUND)
    panel.paste(plot, (0, 16))
    PIL.ImageDraw.Draw(panel).text((3, 2), title, fill=tp.TEXT, font=tp._font(11))
    return panel

def _push(snapshot, pts, prior=None):
    """-grad of G's loss at pts [N, 2]: softplus(-D(x)) plus, with prior = (PriorFile, log_theta, dims, weight, form, scale), the quality term."""
    import torch
    import torch.nn.functional as F
    from priors.gmm.prior import quality_loss_terms
    D = snapshot['D'].eval()
    x = torch.tensor(pts, dtype=torch.float32).reshape(-1, 2, 1, 1).requires_grad_(True)
    loss = F.softplus(-D(x, torch.zeros([len(pts), 0]))).sum()
    if prior is not None:
        pf, log_theta, dims, weight, form, scale = prior
        loss = loss + quality_loss_terms(pf, x.reshape(len(pts), 2), log_theta, weight, dims, loss_form=form, quality_scale=scale)[0].sum()
    (g,) = torch.autograd.grad(loss, [x])
    return -g.reshape(-1, 2).double().numpy()

def figure_rows(rows, path, title):
    """rows: [(row label, run_dir, prior or None)]; columns: the snapshots of the first row's run."""
    import PIL.Image
    import PIL.ImageDraw
    from training import toy_pictures as tp
    grid = []
    for label, run_dir, prior in rows:
        panels = []
        for kimg, pkl in snapshots(run_dir):
            snap = load_snapshot(pkl)
            modes = toy_modes(snap)
            box = tp.view_box(None, modes)
            gen = tp.generated_points(snap['G_ema'], num=600, seed=0)
            at = gen[:48]
            push = _push(snap, at, prior)
            panels.append(_field_panel(modes, box, gen, at, push, f'{label}, kimg {kimg}, |push| {np.median(np.linalg.norm(push, axis=1)):.2g}'))
        grid.append(panels)
    cols = max(len(r) for r in grid)
    head = 18
    fig = PIL.Image.new('RGB', (cols * (PANEL + 4) + 4, len(grid) * (PANEL + 20) + head + 4), tp.BACKGROUND)
    PIL.ImageDraw.Draw(fig).text((4, 3), title, fill=tp.TEXT, font=tp._font(12))
    for i, panels in enumerate(grid):
        for j, panel in enumerate(panels):
            fig.paste(panel, (4 + j * (PANEL + 4), head + i * (PANEL + 20)))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.save(path, format='PNG', optimize=True)
    return path

def trajectory_picture(traj_runs, path, title):
    """f' (solid) and f_g (dots) of the rare mode's group over kimg, one colour per run; the real share as a grey line."""
    import PIL.Image
    import PIL.ImageDraw
    from training import toy_pictures as tp
    W, H, L, B = 640, 260, 44, 24
    fig = PIL.Image.new('RGB', (W, H + 20), tp.BACKGROUND)
    draw = PIL.ImageDraw.Draw(fig)
    draw.text((4, 2), title, fill=tp.TEXT, font=tp._font(12))
    runs = [(label, t) for label, t in traj_runs if t is not None]
    if not runs:
        fig.save(path)
        return path
    xmax = max(max(t['nimg']) for _, t in runs) / 1000
    ymax = max(max(max(t['f_prime']), max(t['f_gen']), t['real_share']) for _, t in runs) * 1.1 + 1e-9
    px = lambda k: L + (k / max(xmax, 1e-9)) * (W - L - 10)
    py = lambda v: 20 + (1 - v / ymax) * (H - B - 20)
    for frac in (0, 0.5, 1):
        draw.line([L, py(frac * ymax), W - 10, py(frac * ymax)], fill=(210, 210, 210))
        draw.text((2, py(frac * ymax) - 6), f'{frac * ymax:.2f}', fill=tp.TEXT, font=tp._font(10))
    colours = [(200, 60, 50), (50, 100, 200), (40, 150, 60), (150, 90, 180), (220, 140, 30), (30, 160, 170)]
    for i, (label, t) in enumerate(runs):
        c = colours[i % len(colours)]
        xs = [px(n / 1000) for n in t['nimg']]
        draw.line(list(zip(xs, [py(v) for v in t['f_prime']])), fill=c, width=2)
        for x, v in zip(xs, t['f_gen']):
            draw.ellipse([x - 1.5, py(v) - 1.5, x + 1.5, py(v) + 1.5], fill=c)
        draw.line([L, py(t['real_share']), W - 10, py(t['real_share'])], fill=(150, 150, 150))
        draw.text((L + 6, H - B + 4 + 0 * i), '', fill=c)
        draw.text((W - 260, 22 + 13 * i), label[:40], fill=c, font=tp._font(10))
    draw.text((L, H), f"kimg 0 .. {xmax:g}; lines: f' of the rare mode's group (Eq. 8), dots: its f_g; grey: f_r", fill=tp.TEXT, font=tp._font(10))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.save(path, format='PNG', optimize=True)
    return path

#----------------------------------------------------------------------------
# Plan, run, write.

def plan(claims, seeds, quick, workroot, help_text):
    mode = QUICK if quick else FULL
    jobs, skipped = [], []
    for claim_id in claims:
        spec = CLAIMS[claim_id]
        for label, args, role in spec['arms']:
            if quick and role not in QUICK['arms']:
                continue
            missing = missing_options(args, help_text)
            if missing:
                skipped.append(f'{label}: train.py has no {", ".join(missing)} yet')
                continue
            for seed in seeds:
                workdir = os.path.join(workroot, claim_id, re.sub(r'[^A-Za-z0-9]+', '_', label), f'seed{seed}')
                train_args = ['--cfg=toy', f'--data={SPECS[spec["data"]]}', f'--seed={seed}', f'--kimg={mode["kimg"]}',
                              f'--tick={mode["tick"]}', '--snap=1'] + list(args)
                jobs.append(dict(claim=claim_id, arm=label, role=role, seed=seed, args=list(args), train_args=train_args,
                                 workdir=workdir, points=mode['points'], quick=quick))
    return jobs, skipped

# Estimated CPU seconds of one job on one core of a quiet machine (measured: 4 s start-up, ~0.08 s/kimg for the
# baseline, ~1.3x with the GMM prior, f_g every 1 kimg adds ~0.03 s/kimg; scoring 2,000 points ~3 s, up to ~30 s
# when G has collapsed).
def estimate_seconds(job, kimg):
    per_kimg = 0.08 * (1.3 if '--prior=gmm' in job['args'] else 1.0) + (0.03 if '--resample-kimg=1' in job['args'] else 0)
    collapse = 25 if any(a.startswith('--prior-weight=') and float(a.split('=')[1]) > 0 for a in job['args']) else 0
    return 6 + per_kimg * kimg + (3 + collapse) * (job['points'] / 2000) ** 2 + (8 if '--prior-weight=0.1' in job['args'] else 0)

def command_line(argv_claim, seeds):
    return f'python -m experiments.priorgan --only={argv_claim} --seeds={seeds} --jobs=12'

def build_record(claim_id, runs, seeds_text, skipped, pictures, quick):
    spec = CLAIMS[claim_id]
    metric = spec['metric']
    by_arm = {}
    for r in runs:
        by_arm.setdefault(r['arm'], []).append(r)
    roles = {label: role for label, _, role in spec['arms']}
    baseline_label = next(l for l, _, role in spec['arms'] if role == 'baseline')
    method_label = next(l for l, _, role in spec['arms'] if role == 'method')
    baseline = arm_entry(baseline_label, by_arm.get(baseline_label, []), metric)
    method = arm_entry(method_label, by_arm.get(method_label, []), metric)
    extra = [dict(arm_entry(label, rs, metric), role=roles[label]) for label, rs in by_arm.items() if roles[label] in ('extra', 'search')]
    for e in extra:
        e['verdict_vs_baseline'] = verdict(baseline['values'], e['values'], spec['higher_is_better'])
    winners = [e for e in extra if e['role'] == 'search' and e['verdict_vs_baseline'] == 'reproduced']
    sign = 1 if spec['higher_is_better'] else -1
    best = max(winners, key=lambda e: sign * e['mean'], default=None)
    details = []
    for r in runs:
        d = dict(arm=r['arm'], seed=r['seed'], wall_s=round(r['wall'], 1), cpu_s=round(r['cpu'], 1), error=(r['error'] or '')[-600:] or None)
        if r.get('scores'):
            d.update({k: (round(v, 4) if isinstance(v, float) else v) for k, v in r['scores'].items()})
        if r.get('trajectory'):
            t = r['trajectory']
            d['f_prime_rare_min_max'] = [round(t['f_prime_min'], 4), round(t['f_prime_max'], 4)]
            d['f_gen_rare_last'] = round(t['f_gen'][-1], 4)
            d['updates_with_a_zeroed_group'] = round(t['zeroed_any'], 3)
        if r.get('gradients'):
            d['quality_over_adversarial_grad_median'] = {k: round(v['ratio_median'], 2) for k, v in r['gradients'].items()}
        details.append(d)
    mech = mechanism_text(claim_id, runs)
    errors = [r for r in runs if r.get('error')]
    record = dict(
        claim_id=claim_id, paper='PriorGAN (Gu et al., NeurIPS 2020)', claim=spec['claim'], paper_number=spec['paper_number'],
        metric=spec['metric_text'], command=command_line(claim_id, seeds_text) + (' --quick' if quick else ''),
        settings=settings_text(TOY) + f'; arms: ' + '; '.join(f'{l} = [{" ".join(a) or "no prior"}]' for l, a, _ in spec['arms']),
        deviations=list(DEVIATIONS) + ([f'--quick: {QUICK["kimg"]} kimg and {QUICK["points"]} metric points (machinery test, no claim)'] if quick else []),
        baseline=baseline, method=method, extra_arms=extra,
        verdict=verdict(baseline['values'], method['values'], spec['higher_is_better']),
        mechanism=mech,
        tried=(f'Search budget: {SEARCH_BUDGET}. Arms: ' + '; '.join(e['label'] + f' ({e["role"]}): ' +
               (f'{e["mean"]:.3f} ± {e["std"]:.3f}, {e["verdict_vs_baseline"]}' if e['mean'] is not None else 'no result') for e in extra) +
               (f'. Best that beats the baseline with no overlap: {best["label"]} ({best["mean"]:.3f} ± {best["std"]:.3f}).' if best else
                '. No searched arm beats the baseline with no overlap.') +
               (' Skipped (option missing in train.py): ' + '; '.join(skipped) + '.' if skipped else '') +
               (f' {len(errors)} run(s) failed: see details.' if errors else '')),
        pictures=pictures, machine=machine(), date=time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()),
        details=details, paper_settings=PAPER,
        cost=dict(cpu_s=round(sum(r['cpu'] for r in runs), 1), runs=len(runs)),
    )
    return record

def _arm_mean(runs, arm, key):
    return summarise([r['scores'][key] for r in runs if r['arm'] == arm and r.get('scores') and r['scores'].get(key) is not None])

def mechanism_text(claim_id, runs):
    parts = []
    if claim_id == 'priorgan-ring8rare-resampling':
        for arm in dict.fromkeys(r['arm'] for r in runs):
            share = _arm_mean(runs, arm, 'rare_share')
            trajs = [r['trajectory'] for r in runs if r['arm'] == arm and r.get('trajectory')]
            text = f'{arm}: rare-mode share {share["mean"]:.2f} ± {share["std"]:.2f}' if share['mean'] is not None else f'{arm}: no result'
            if trajs:
                text += (f"; f' of the rare group ranged {np.mean([t['f_prime_min'] for t in trajs]):.3f}-{np.mean([t['f_prime_max'] for t in trajs]):.3f} "
                         f"(f_r {trajs[0]['real_share']:.3f}), its last f_g {np.mean([t['f_gen'][-1] for t in trajs]):.3f}, "
                         f"some group zeroed in {100 * np.mean([t['zeroed_any'] for t in trajs]):.0f} % of the updates")
            parts.append(text)
        parts.append('f_g counts every generated point in the Voronoi cell of the rare group, also the off-mode ones; compare it with the '
                     'rare-mode share (points within 3 std) to see whether the estimate sees the mode as missing')
    else:
        for arm in dict.fromkeys(r['arm'] for r in runs):
            hq, modes = _arm_mean(runs, arm, 'hq'), _arm_mean(runs, arm, 'modes')
            grads = [r['gradients'] for r in runs if r['arm'] == arm and r.get('gradients')]
            text = f'{arm}: HQ {100 * hq["mean"]:.1f} % ± {100 * hq["std"]:.1f}, modes {modes["mean"]:.1f} ± {modes["std"]:.1f}' if hq['mean'] is not None else f'{arm}: no result'
            if grads:
                first = [g[min(g, key=int)] for g in grads]
                last = [g[max(g, key=int)] for g in grads]
                text += (f'; median |grad L_Q| / |grad L_adv| at kimg 0: {np.mean([g["ratio_median"] for g in first]):.1f} '
                         f'(|grad L_adv| {np.mean([g["adv_median"] for g in first]):.3g}, {100 * np.mean([g["below_theta"] for g in first]):.0f} % below theta), '
                         f'at the end: {np.mean([g["ratio_median"] for g in last]):.1f}')
            parts.append(text)
    return '. '.join(parts)

def make_pictures(claim_id, runs, out_dir, quick):
    first = {}
    for r in runs:
        if r.get('error') is None and r['arm'] not in first:
            first[r['arm']] = r
    spec = CLAIMS[claim_id]
    label_of = {role: label for label, _, role in spec['arms']}
    base, meth = first.get(label_of['baseline']), first.get(label_of['method'])
    pictures = []
    suffix = '-quick' if quick else ''
    if claim_id == 'priorgan-ring8-quality' and base and meth:
        from priors.gmm.prior_file import PriorFile
        state = _gmm_state(load_snapshot(snapshots(meth['run_dir'])[-1][1]))
        rows = [('GAN', base['run_dir'], None)]
        if state is not None:
            w = float(_option(meth['args'], '--prior-weight', 0.1))
            prior = (PriorFile(state['prior_file']), state['log_theta'], state['num_dims'], w, 'paper', 'none')
            rows.append(('same GAN + L_Q', base['run_dir'], prior))
            rows.append(('trained with L_Q', meth['run_dir'], prior))
        path = os.path.join(out_dir, f'priorgan-fig1ab-quality{suffix}.png')
        pictures.append(figure_rows(rows, path, 'Fig. 1 (a, b), ring8: arrows = -grad of G loss (row 2: same D + delta Eq. 5; scaled per panel, median in title)'))
    if claim_id == 'priorgan-ring8rare-resampling' and base and meth:
        path = os.path.join(out_dir, f'priorgan-fig1cd-resampling{suffix}.png')
        pictures.append(figure_rows([('GAN', base['run_dir'], None), ('GAN + RS', meth['run_dir'], None)], path,
                                    'PriorGAN Fig. 1 (c, d) on ring8 with mode 0 (right) at 2 %: red arrows = -grad of G\'s loss (D '
                                    'trained on resampled data in row 2), columns = kimg'))
        trajs = [(r['arm'], r.get('trajectory')) for r in runs if r['seed'] == runs[0]['seed'] and r.get('trajectory')]
        path = os.path.join(out_dir, f'priorgan-resampling-trajectory{suffix}.png')
        pictures.append(trajectory_picture(trajs, path, f"Rare mode's group over training, seed {runs[0]['seed']}: f' (Eq. 8) and f_g"))
    return [os.path.relpath(p, REPO) if os.path.abspath(p).startswith(REPO) else p for p in pictures]

def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--jobs', type=int, default=1, help='parallel runs (a process pool; each run one thread)')
    parser.add_argument('--seeds', default=None, help='training seeds, e.g. 0-2  [default: 0-2; quick: 0]')
    parser.add_argument('--quick', action='store_true', help=f'tiny version: {QUICK["kimg"]} kimg, baseline and method only, one seed')
    parser.add_argument('--only', default=None, help=f'claims, comma-separated: {", ".join(CLAIMS)}')
    parser.add_argument('--dry-run', action='store_true', help='print the runs and the estimated core-minutes, run nothing')
    parser.add_argument('--results', default=None, help='folder of the result JSONs  [default: experiments/results; quick: experiments/results/quick]')
    parser.add_argument('--pictures', default=None, help='folder of the pictures  [default: docs/reproduction; quick: the results folder]')
    parser.add_argument('--keep', default=None, help='keep the run folders here (default: a temporary folder, deleted)')
    args = parser.parse_args(argv)
    claims = list(CLAIMS) if not args.only else [c.strip() for c in args.only.split(',') if c.strip()]
    for c in claims:
        if c not in CLAIMS:
            parser.error(f'--only: unknown claim "{c}"; choose from {", ".join(CLAIMS)}')
    seeds_text = args.seeds or ('0' if args.quick else '0-2')
    seeds = parse_seeds(seeds_text)
    results_dir = args.results or os.path.join(REPO, 'experiments', 'results', 'quick' if args.quick else '')
    pictures_dir = args.pictures or (results_dir if args.quick else os.path.join(REPO, 'docs', 'reproduction'))
    workroot = args.keep or tempfile.mkdtemp(prefix='priorgan-')
    jobs, skipped = plan(claims, seeds, args.quick, workroot, train_help())
    kimg = (QUICK if args.quick else FULL)['kimg']
    total = sum(estimate_seconds(j, kimg) for j in jobs)
    if args.dry_run:
        for j in jobs:
            print(f'{j["claim"]:32s} {j["arm"][:60]:60s} seed {j["seed"]}  ~{estimate_seconds(j, kimg):.0f} s: train.py {" ".join(j["train_args"])}')
        for s in skipped:
            print(f'skipped: {s}')
        print(f'{len(jobs)} runs, estimated {total / 60:.1f} core-minutes (one core each, quiet machine; --jobs {args.jobs})')
        return
    print(f'{len(jobs)} runs, estimated {total / 60:.1f} core-minutes; run folders in {workroot}', flush=True)
    started = time.time()
    runs = pool_map(run_job, jobs, args.jobs)
    for claim_id in claims:
        claim_runs = [r for r in runs if r['claim'] == claim_id]
        for r in claim_runs:
            if r.get('error'):
                print(f'FAILED {claim_id} / {r["arm"]} / seed {r["seed"]}:\n{r["error"][-1500:]}', file=sys.stderr)
        pictures = make_pictures(claim_id, claim_runs, pictures_dir, args.quick)
        record = build_record(claim_id, claim_runs, seeds_text, [s for s in skipped], pictures, args.quick)
        path = os.path.join(results_dir, f'{claim_id}.json')
        write_json(path, record)
        b, m = record['baseline'], record['method']
        fmt = lambda e: f'{e["mean"]:.3f} ± {e["std"]:.3f}' if e['mean'] is not None else 'n/a'
        print(f'{claim_id}: baseline {fmt(b)}, method {fmt(m)} -> {record["verdict"]}; wrote {os.path.relpath(path, REPO)}')
        for e in record['extra_arms']:
            print(f'    {e["label"]}: {fmt(e)} ({e["verdict_vs_baseline"]})')
    print(f'done in {time.time() - started:.0f} s wall, {sum(r["cpu"] for r in runs) / 60:.1f} core-minutes of training')
    if args.keep is None:
        shutil.rmtree(workroot, ignore_errors=True)
    if any(r.get('error') for r in runs):
        sys.exit(1)

if __name__ == '__main__':
    main()
