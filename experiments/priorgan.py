"""PriorGAN (Gu et al., "PriorGAN: Real Data Prior for Generative Adversarial Nets", NeurIPS 2020) on the toy lab: the paper's two toy claims run through train.py over several seeds, with the mechanism measured one level deeper where a claim does not reproduce (issue 18).

    python -m experiments.priorgan --jobs=12                 # every claim, its arms and the stated search, 3 seeds
    python -m experiments.priorgan --seeds=0-4 --keep=runs/pg  # 5 seeds; a second call reuses the runs kept in runs/pg
    python -m experiments.priorgan --quick                   # the machinery in < 60 s on one core (temporary folder)
    python -m experiments.priorgan --only=priorgan-ring8-quality --seeds=0-4
    python -m experiments.priorgan --dry-run                 # the runs and their estimated core-minutes

Claims (the paper shows its toys only as pictures, Fig. 1 and §3.2-3.3; its numbers are on images, Tables 2-7):

  priorgan-ring8rare-resampling  "resampling recovers missing modes" (§3.3, Fig. 1 c-d; Table 4: +RS lowers DDS).
                                 8-mode ring with mode 0 at 2 %; metric: DDS (Eq. 7) over the true modes.
  priorgan-ring8-quality         "the quality loss moves low-quality samples to the data" (§3.2, Fig. 1 a-b; Table 4:
                                 +L_Q raises QS and lowers FID). 8-mode ring; metric: EMD (the toy's FID).

One level deeper (per run, in <out>/<claim>.runs.jsonl and summarised in "mechanism"): the rare mode's share
(points within 3 std / its weight); DDS over the points within 3 std only (DDS counts every point at its nearest
mode, so a G smeared around the ring scores well); the trajectory of f' (Eq. 8) and f_g of the rare mode's group
from the prior's history; the median ratio |grad L_Q| / |grad L_adv| at G's points at every snapshot.

The search (issue 18, step 3; <= 30 runs per claim, SEARCH_BUDGET): each 'search' arm runs on the first seed only,
over what the paper leaves open (quality: delta down to a gradient ratio ~1, the spread option, a late start of
L_Q; resampling: alpha, the f_g cadence, the max-ratio damping, known mode labels, the rare fraction and the length,
the last two against a baseline of their own). 'option' arms (options off by default, and the search's best
setting) run on every seed; "tried" lists every arm with its verdict against its baseline. An arm whose option
train.py does not have yet is skipped and named in "tried". With --keep DIR, a rerun reuses the finished runs in
DIR whose options are unchanged (and only measures them again when the measurements changed).
Pictures (docs/reproduction/): Fig. 1 over training (red arrows: -grad of G's loss at generated points, with and
without the prior) and the f' trajectory. Verdict: experiments/common.py's rule.
"""

import json
import math
import os
import re
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)
from experiments import common  # pylint: disable=wrong-import-position
from experiments.common import setting  # pylint: disable=wrong-import-position

NAME = 'experiments.priorgan'
PAPER = 'Gu et al. 2020, "PriorGAN: Real Data Prior for Generative Adversarial Nets" (NeurIPS)'
DEFAULT_SEEDS = '0-2'

#----------------------------------------------------------------------------
# The paper's settings, once, with their sources; then our toy choices where the paper is silent.

SETTINGS = {
    'components M':      setting('8 = the true number of modes (--prior-components=8)',
                                 'paper: 7 on LSUN (§4, Table 5 best), 35/70 on CIFAR-10/FFHQ; on a toy we give the method the true K'),
    'quality weight δ':  setting('0.1 on -log p, Eq. 5 as written (--prior-loss-form=paper --prior-weight=0.1)', '§4 Impl. details'),
    'resample weight α': setting('7 (--resample-alpha default)', '§4 Impl. details (FFHQ, LSUN; 3 for CIFAR-10); Table 7'),
    'threshold θ':       setting('10 % quantile of held-out reals\' log p', 'silent in Eq. 5; docs/priors.md §3'),
    'features F':        setting('the 2-D points themselves (identity), no PCA', 'paper: ResNet-101 pool + PCA 98 % (§4, §4.5); a toy has no images'),
    'grouping':          setting('nearest component mean', '§3.3'),
    'f_g estimate':      setting('every 4 kimg from 1,000 G_ema points, EMA 0.9 (defaults)', 'silent; docs/priors.md §3'),
    'toy GAN':           setting('--cfg=toy: G 2x128 ReLU, D 3x128 tanh, 2-D N(0, I) latents, non-saturating loss, Adam 5e-4 '
                                 '(0.5, 0.999), batch 128', '§3 "a basic GAN [8]"; networks silent: docs/toy-lab.md'),
    'length':            setting('200 kimg = 1,562 G steps, snapshots every 50 kimg', 'silent; --cfg=toy default'),
    'data':              setting('resampling: toy:ring8,rare=0.02 (radius 2, std 0.02, mode 0 at 2 %); quality: toy:ring8',
                                 'Fig. 1 data silent; issue 18 measured these sets'),
    'metric':            setting('toy2k: 2,000 generated vs 2,000 fresh points, metric seed 0; DDS over the true modes; EMD exact W1',
                                 'paper: DDS Eq. 7, QS, FID (§4 Evaluations); docs/toy-lab.md'),
}
DEVIATIONS = [
    'Toy features are the 2-D points themselves (identity, no PCA), not ResNet-101 features of images.',
    'M = 8, the true number of modes (the paper uses 7 on LSUN).',
    'The toy GAN is the toy lab\'s (--cfg=toy); the paper gives no networks, data or length for Fig. 1.',
    'DDS and the rare-mode share use the true modes (nearest true centre), not the run\'s GMM components.',
    'EMD (exact W1) stands in for FID, and the HQ share (points within 3 std of a mode) for QS.',
]

SPECS = {'ring8_rare': 'toy:ring8,rare=0.02', 'ring8': 'toy:ring8'}
GMM = ['--prior=gmm', '--prior-components=8']
RS_ONLY = GMM + ['--prior-weight=0']                                    # the paper's "+RS" (Table 4), alpha 7
LQ_ONLY = GMM + ['--resample=0', '--prior-loss-form=paper']             # the paper's "+L_Q" (Table 4)
FAST = ['--resample-kimg=1', '--resample-ema=0']                        # f_g every 1 kimg, no smoothing

# Per claim: data, metric and its direction, arms (label, train.py options, role: baseline / method / extra / search).
CLAIM_SPECS = {
    'priorgan-ring8rare-resampling': dict(
        data='ring8_rare', metric='dds', better='lower',
        claim='Resampling the real data by GMM component (Eq. 6-8) makes the generator recover missing or rare modes.',
        paper_number='toy: pictures only (Fig. 1 c-d). Images: StyleGAN +RS lowers DDS 0.250 -> 0.196 (FFHQ), 0.203 -> 0.149 '
                     '(LSUN-cat), 0.136 -> 0.095 (LSUN-bird) (Table 4)',
        metric_text='DDS (Eq. 7) over the 8 true modes, 2,000 generated points (lower is better)',
        arms=[
            ('baseline GAN', [], 'baseline'),
            ('+RS (paper: alpha 7, delta 0)', RS_ONLY, 'method'),
            # The search's best (BEST_RULE), on every seed.
            ('best searched: +RS alpha 3, f_g every 1 kimg, no EMA', RS_ONLY + FAST + ['--resample-alpha=3'], 'option'),
            # The search (issue 18, step 3): one seed each, over what the paper leaves open. The first three ran on
            # seeds 0-2 before the search (results of 2026-12-05 21:17 UTC, docs/priors.md); now one seed like the rest.
            ('search: +RS, f_g every 1 kimg, no EMA', RS_ONLY + FAST, 'search'),
            ('search: max ratio 3, f_g every 1 kimg, no EMA', RS_ONLY + FAST + ['--resample-max-ratio=3'], 'search'),
            ('search: known modes, f_g every 1 kimg, no EMA', RS_ONLY + FAST + ['--resample-labels=1'], 'search'),
            ('search: alpha 1', RS_ONLY + ['--resample-alpha=1'], 'search'),
            ('search: alpha 3', RS_ONLY + ['--resample-alpha=3'], 'search'),
            ('search: alpha 15', RS_ONLY + ['--resample-alpha=15'], 'search'),
            ('search: f_g every 16 kimg', RS_ONLY + ['--resample-kimg=16'], 'search'),
            ('search: max ratio 2, f_g every 1 kimg, no EMA', RS_ONLY + FAST + ['--resample-max-ratio=2'], 'search'),
            ('search: max ratio 3 (default cadence)', RS_ONLY + ['--resample-max-ratio=3'], 'search'),
            ('search: max ratio 8 (default cadence)', RS_ONLY + ['--resample-max-ratio=8'], 'search'),
            ('search: known modes (default cadence)', RS_ONLY + ['--resample-labels=1'], 'search'),
            ('search: known modes, max ratio 3 (default cadence)', RS_ONLY + ['--resample-labels=1', '--resample-max-ratio=3'], 'search'),
            ('search: known modes, max ratio 3, f_g every 1 kimg, no EMA', RS_ONLY + FAST + ['--resample-labels=1', '--resample-max-ratio=3'], 'search'),
            ('search: known modes, alpha 3', RS_ONLY + ['--resample-labels=1', '--resample-alpha=3'], 'search'),
            # f_g over G's points above theta only (--resample-hq-only): a point between modes fills no group.
            ('search: f_g of the points above theta', RS_ONLY + ['--resample-hq-only=1'], 'search'),
            ('search: f_g of the points above theta, known modes', RS_ONLY + ['--resample-hq-only=1', '--resample-labels=1'], 'search'),
            # Followed up on every seed (the lead's own quantity, the rare-mode share: 0.45 on seed 0, where no other
            # searched arm reached the rare mode): a follow-up beyond the 30 (SEARCH_LIMIT).
            ('follow-up: f_g of the points above theta, known modes, max ratio 3', RS_ONLY + ['--resample-hq-only=1', '--resample-labels=1',
                                                                                             '--resample-max-ratio=3'], 'option'),
            # Rare fraction and length change the data or the run, so each has its own baseline (references).
            ('search: baseline GAN, rare mode at 5 %', ['--data=toy:ring8,rare=0.05'], 'search'),
            ('search: +RS, rare mode at 5 %', ['--data=toy:ring8,rare=0.05'] + RS_ONLY, 'search'),
            ('search: +RS by known modes, max ratio 3, rare mode at 5 %', ['--data=toy:ring8,rare=0.05'] + RS_ONLY + ['--resample-labels=1', '--resample-max-ratio=3'], 'search'),
            ('search: baseline GAN, 600 kimg', ['--kimg=600'], 'search'),
            ('search: +RS, 600 kimg', ['--kimg=600'] + RS_ONLY, 'search'),
            ('search: +RS by known modes, max ratio 3, 600 kimg', ['--kimg=600'] + RS_ONLY + ['--resample-labels=1', '--resample-max-ratio=3'], 'search'),
        ],
        references={'search: +RS, rare mode at 5 %': 'search: baseline GAN, rare mode at 5 %',
                    'search: +RS by known modes, max ratio 3, rare mode at 5 %': 'search: baseline GAN, rare mode at 5 %',
                    'search: +RS, 600 kimg': 'search: baseline GAN, 600 kimg',
                    'search: +RS by known modes, max ratio 3, 600 kimg': 'search: baseline GAN, 600 kimg'}),
    'priorgan-ring8-quality': dict(
        data='ring8', metric='emd', better='lower',
        claim='The quality loss (Eq. 5) gives low-quality samples a gradient towards the real data, improving quality.',
        paper_number='toy: pictures only (Fig. 1 a-b). Images: StyleGAN +L_Q raises QS 0.703 -> 0.732 and lowers FID 11.69 -> 9.75 '
                     '(FFHQ, Table 4)',
        metric_text='EMD, exact W1 of 2,000 vs 2,000 points (lower is better); HQ share (the toy QS) and modes in "mechanism"',
        arms=[
            ('baseline GAN', [], 'baseline'),
            ('+L_Q (paper: delta 0.1 on -log p)', LQ_ONLY + ['--prior-weight=0.1'], 'method'),
            ('option: +L_Q scaled to the component spread, delta 0.1', LQ_ONLY + ['--prior-weight=0.1', '--prior-quality-scale=spread'], 'option'),
            # The search's two best (BEST_RULE), on every seed.
            ('best searched: +L_Q from kimg 100, delta 0.1', LQ_ONLY + ['--prior-weight=0.1', '--prior-quality-start-kimg=100'], 'option'),
            ('best searched: +L_Q delta 1e-5', LQ_ONLY + ['--prior-weight=0.00001'], 'option'),
            # The search (issue 18, step 3): one seed each; delta down to where |grad L_Q| / |grad L_adv| ~ 1 at the start
            # (12,000 at delta 0.1), the spread option's delta, and a late start of L_Q (G first learns the ring).
            ('search: delta 1e-2', LQ_ONLY + ['--prior-weight=0.01'], 'search'),
            ('search: delta 1e-3', LQ_ONLY + ['--prior-weight=0.001'], 'search'),
            ('search: delta 1e-4', LQ_ONLY + ['--prior-weight=0.0001'], 'search'),
            ('search: delta 1e-6', LQ_ONLY + ['--prior-weight=0.000001'], 'search'),
            ('search: spread, delta 0.01', LQ_ONLY + ['--prior-weight=0.01', '--prior-quality-scale=spread'], 'search'),
            ('search: spread, delta 1', LQ_ONLY + ['--prior-weight=1', '--prior-quality-scale=spread'], 'search'),
            ('search: L_Q from kimg 100, delta 1e-3', LQ_ONLY + ['--prior-weight=0.001', '--prior-quality-start-kimg=100'], 'search'),
            ('search: L_Q from kimg 100, delta 1e-5', LQ_ONLY + ['--prior-weight=0.00001', '--prior-quality-start-kimg=100'], 'search'),
            ('search: L_Q from kimg 100, spread, delta 0.1', LQ_ONLY + ['--prior-weight=0.1', '--prior-quality-scale=spread',
                                                                      '--prior-quality-start-kimg=100'], 'search'),
        ]),
}
CLAIMS = {claim_id: spec['claim'] for claim_id, spec in CLAIM_SPECS.items()}
# Roles: baseline and method run on every seed; an 'option' arm (an option that is off by default, or the search's
# winner) on every seed too; a 'search' arm on the first seed only (the search, one seed first; its winner is then
# rerun as an 'option' arm). An arm that changes the data or the length is compared with its own baseline
# (the claim's 'references'), not the claim's.
SEARCH_LIMIT = 30       # runs per claim beyond the baseline and the paper's method (issue 18: <= 30 runs per paper)
FOLLOW_UP_RUNS = 4      # + the one follow-up above on the seeds after the first (resampling: 28 + 4 = 32 runs)
BEST_RULE = ('the searched arms were run on seed 0 first; the best then ran on every seed: the lowest seed-0 metric among the '
             'arms on the claim\'s own data and length, for resampling among those that cover at least as many modes as the '
             'baseline\'s seed 0 (5 of 8; DDS counts every point at its nearest mode, so a G smeared around the ring scores '
             'well with no mode covered: "search: known modes, f_g every 1 kimg" 0.065 with 1 mode, "search: +RS, f_g every '
             '1 kimg" 0.080 with 0); for the quality loss the two lowest (the second is delta 1e-5, where |grad L_Q| / '
             '|grad L_adv| at the start is about 1)')
SEARCH_BUDGET = ('<= 30 runs of 200 kimg per claim beyond the baseline and the paper\'s method: each searched arm on one seed, '
                 'then the options and the best searched setting on every seed (the issue already measured the full prior, '
                 'alpha 1 and delta 0.01: docs/toy-lab.md "Findings"); for resampling, beyond those, the one lead that reached '
                 'the rare mode on seed 0 (f_g above theta, known modes, max ratio 3) followed up on the other seeds (4 runs)')
FULL = dict(kimg=200, tick=50, points=2000)
QUICK = dict(kimg=6, tick=3, points=300)

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
                f_prime_max=float(f_prime[:, group].max()), f_prime_min=float(f_prime[:, group].min()),
                f_prime_jump=float(np.abs(np.diff(f_prime[:, group])).mean()) if len(f_prime) > 1 else 0.0)

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
        for kimg, pkl in common.snapshots(run_dir):
            snap = common.load_snapshot(pkl)
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
    return common.save_png(fig, path)

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
        return common.save_png(fig, path)
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
    return common.save_png(fig, path)

#----------------------------------------------------------------------------
# Runs.

# Estimated core-seconds of one run (measured CPU time, train.py's process and the scoring, single thread, on the
# 2-core machine after the toy loop's speed-up: 12 s for the 200-kimg baseline, 14-16 s with the GMM prior or f_g
# every 1 kimg, 19-20 s when the quality loss collapses G onto one mode; a 600-kimg run about 3x).
def estimate_seconds(args, kimg, points):
    gmm = '--prior=gmm' in args
    per_kimg = 0.045 * (1.15 if gmm else 1.0) + (0.01 if '--resample-kimg=1' in args else 0)
    quality = any(a.startswith('--prior-weight=') and float(a.split('=')[1]) > 0 for a in args)
    return 4 + per_kimg * kimg + (4 + (5 if quality else 0)) * (points / 2000) ** 2 + (2 if quality else 0) * (points / 2000)

# train.py options of one run: the claim's data, the seed, the length and the arm's options (an arm's own --data or
# --kimg replaces the claim's).
def run_args(spec, arm_args, seed, mode):
    base = {'--cfg': 'toy', '--data': SPECS[spec['data']], '--seed': str(seed), '--kimg': str(mode['kimg']),
            '--tick': str(mode['tick']), '--snap': '1'}
    rest = []
    for a in arm_args:
        flag, _, value = a.partition('=')
        if flag in ('--data', '--kimg') and flag in base:
            base[flag] = value
        else:
            rest.append(a)
    return [f'{k}={v}' for k, v in base.items()] + rest

def arm_seeds(role, seeds):
    return seeds[:1] if role == 'search' else seeds

def tasks(quick, seeds, only):
    mode = QUICK if quick else FULL
    seeds = seeds[:1] if quick else seeds            # quick: one seed, baseline and method (< 60 s on one core)
    out = []
    for claim_id in only:
        spec = CLAIM_SPECS[claim_id]
        for label, arm_args, role in spec['arms']:
            if quick and role not in ('baseline', 'method'):
                continue
            _, missing = common.split_available(arm_args)
            if missing:
                continue                                   # named in "tried" by finish()
            for seed in arm_seeds(role, seeds):
                args = run_args(spec, arm_args, seed, mode)
                kimg = int(_option(args, '--kimg', mode['kimg']))
                out.append(common.Task(module=NAME, claim=claim_id, arm=label, seed=seed, args=args,
                                       est_sec=estimate_seconds(arm_args, kimg, mode['points']),
                                       extra=dict(role=role, arm_args=list(arm_args), points=mode['points'], quick=quick)))
    return out

# A finished run's measurements are kept in its work folder (<workdir>/measured.json), so a later call with the same
# --keep DIR reuses every run whose train.py options and points are unchanged (e.g. adding seeds or arms trains only
# the new runs); when only MEASURED_VERSION changed (bump it when run() measures something new), the kept run is
# measured again without training it again.
MEASURED_VERSION = 3

def _measured_key(task):
    return dict(args=list(task.args), points=task.extra['points'], version=MEASURED_VERSION)

def cached(task):
    """(measurements, None) of a kept run that is unchanged in every way; (None, its run folder) when only the
    measurement version differs; (None, None) when there is nothing to reuse."""
    path = os.path.join(task.workdir, 'measured.json')
    if not os.path.isfile(path):
        return None, None
    with open(path, encoding='utf-8') as f:
        saved = json.load(f)
    key, run_dir = dict(saved.get('key', {})), saved.get('result', {}).get('run_dir', '')
    if not common.snapshots(run_dir) or {k: v for k, v in key.items() if k != 'version'} != \
            {k: v for k, v in _measured_key(task).items() if k != 'version'}:
        return None, None
    return (saved['result'], None) if key.get('version') == MEASURED_VERSION else (None, run_dir)

def run(task):
    out, run_dir = cached(task)
    if out is None:
        import resource  # pylint: disable=import-outside-toplevel
        import time  # pylint: disable=import-outside-toplevel
        cpu = lambda: time.process_time() + sum(getattr(resource.getrusage(resource.RUSAGE_CHILDREN), k) for k in ('ru_utime', 'ru_stime'))
        start, start_cpu = time.time(), cpu()
        out = measure(task, run_dir)
        out['measure_sec'] = time.time() - start     # wall seconds of training (unless reused) and measuring
        out['cpu_sec'] = cpu() - start_cpu           # CPU seconds of both (train.py's process and ours)
        out['trained'] = run_dir is None
        with open(os.path.join(task.workdir, 'measured.json'), 'w', encoding='utf-8') as f:
            json.dump(dict(key=_measured_key(task), result=out), f, default=lambda o: o.tolist() if isinstance(o, np.ndarray) else str(o))
    return out

def measure(task, run_dir=None):
    import torch  # pylint: disable=import-outside-toplevel
    torch.set_num_threads(1)
    run_dir = run_dir or common.train(task.args, task.workdir)
    snaps = common.snapshots(run_dir)
    last = common.load_snapshot(snaps[-1][1])
    out = dict(run_dir=run_dir, snapshot_kimg=[k for k, _ in snaps])
    out.update(score_snapshot(last, task.extra['points']))
    arm_args = task.extra['arm_args']
    out['trajectory'] = resampling_trajectory(last, labels='--resample-labels=1' in arm_args)
    state = _gmm_state(last)
    weight = float(_option(arm_args, '--prior-weight', 0.1))
    if state is not None and weight > 0:
        loss_form = _option(arm_args, '--prior-loss-form', 'per-dim').replace('-', '_')
        scale = _option(arm_args, '--prior-quality-scale', 'none')
        out['gradients'] = {str(k): gradient_norms(common.load_snapshot(p), state['prior_file'], state['log_theta'], state['num_dims'],
                                                   weight, loss_form, scale, num=300 if task.extra['quick'] else 1000)
                            for k, p in snaps}
    return out

# Toy scores of a snapshot (experiments/common.py) plus the rarest mode's share of points within 3 std / its weight,
# and dds_hq: DDS (Eq. 7) over the points within 3 std of some mode only, each counted at its mode (NaN when there
# are none). DDS itself counts every point at its nearest mode, so a G smeared evenly around the ring scores well.
def score_snapshot(snapshot, points):
    scores = common.toy_scores(snapshot, num=points)
    gen, _, modes = common.toy_points(snapshot, num=points)
    scores['rare_share'], scores['dds_hq'], scores['between_share'] = float('nan'), float('nan'), float('nan')
    if modes is not None:
        within = common.mode_shares(gen, modes)
        if within.sum() > 0:
            scores['dds_hq'] = float(np.abs(modes.weights - within / within.sum()).sum())
        scores['between_share'] = between_share(gen, modes)
    if modes is not None and not np.allclose(modes.weights, modes.weights[0]):
        k = int(np.argmin(modes.weights))
        scores['rare_share'] = float(common.mode_shares(gen, modes)[k] / modes.weights[k])
    return scores

# Of the generated points outside every mode (farther than 3 std from each centre), the share that lies between two
# modes: within 10 % of the distance between its two nearest centres of the segment joining them (the "bridges" a
# continuous G of a connected latent leaves between the modes it covers). NaN when every point is in a mode.
def between_share(points, modes):
    centres, stds = np.asarray(modes.centres, dtype=np.float64), np.asarray(modes.stds, dtype=np.float64).reshape(len(modes.centres), -1)
    dist = np.linalg.norm(points[:, None, :] - centres[None], axis=2)                               # [N, K]
    outside = (dist / stds.max(axis=1)[None] > 3).all(axis=1)
    if len(centres) < 2 or not outside.any():
        return float('nan')
    p = points[outside]
    near = np.argsort(dist[outside], axis=1)[:, :2]
    a, b = centres[near[:, 0]], centres[near[:, 1]]
    t = np.clip(np.sum((p - a) * (b - a), axis=1) / np.maximum(np.sum((b - a) ** 2, axis=1), 1e-12), 0, 1)
    off = np.linalg.norm(p - (a + t[:, None] * (b - a)), axis=1)
    return float((off < 0.1 * np.linalg.norm(b - a, axis=1)).mean())

#----------------------------------------------------------------------------
# Results.

def _fmt(values, digits=2, scale=1.0, form='f'):
    """mean ± std of the finite values ('f': fixed digits; 'g': significant digits); one value alone, without ± 0."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64) * scale
    if v.size == 0:
        return 'n/a'
    if v.size == 1:
        return f'{v[0]:.{digits}{form}}'
    return f'{v.mean():.{digits}{form}} ± {v.std(ddof=1):.{digits}{form}}'

def _mechanism(claim_id, spec, done):
    parts = []
    for label, arm_args, _ in spec['arms']:
        runs = [r for t, r in done if t.arm == label]
        if not runs:
            continue
        text = f'{label}: modes {_fmt([r["modes"] for r in runs], 1)}/8, HQ {_fmt([r["hq"] for r in runs], 1, 100)} %'
        if claim_id == 'priorgan-ring8rare-resampling':
            text += (f', DDS {_fmt([r["dds"] for r in runs], 3)} (over the points within 3 std only: '
                     f'{_fmt([r.get("dds_hq", float("nan")) for r in runs], 3)}), rare-mode share {_fmt([r["rare_share"] for r in runs])}')
            trajs = [r['trajectory'] for r in runs if r.get('trajectory')]
            if trajs:
                text += (f"; f' of the rare mode's group (f_r {trajs[0]['real_share']:.3f}) ranged "
                         f"{_fmt([t['f_prime_min'] for t in trajs], 3)} to {_fmt([t['f_prime_max'] for t in trajs], 3)}, "
                         f"mean |change| per update {_fmt([t['f_prime_jump'] for t in trajs], 3)}, its f_g at the end "
                         f"{_fmt([t['f_gen'][-1] for t in trajs], 3)} (share of all G points in its Voronoi cell) against "
                         f"{_fmt([r['rare_share'] * t['real_share'] for r, t in zip(runs, trajs) if r.get('trajectory')], 3)} of G's points "
                         f"within 3 std of the rare mode, some group at f' = 0 in {_fmt([t['zeroed_any'] for t in trajs], 0, 100)} % "
                         f"of the updates")
        else:
            text += (f', EMD {_fmt([r["emd"] for r in runs], 3)}, of the points outside every mode '
                     f'{_fmt([r.get("between_share", float("nan")) for r in runs], 0, 100)} % between two neighbouring modes')
            grads = [r['gradients'] for r in runs if r.get('gradients')]
            if grads:
                start = float(_option(arm_args, '--prior-quality-start-kimg', 0))     # the ratio where L_Q starts
                at = [min((k for k in g if int(k) >= start), key=int, default=max(g, key=int)) for g in grads]
                first = [g[k] for g, k in zip(grads, at)]
                last = [g[max(g, key=int)] for g in grads]
                text += (f'; median |grad L_Q| / |grad L_adv| at G\'s points: kimg {at[0]} (L_Q\'s start) '
                         f'{_fmt([g["ratio_median"] for g in first], 3, form="g")} '
                         f'(|grad L_adv| {_fmt([g["adv_median"] for g in first], 3)}, {_fmt([g["below_theta"] for g in first], 0, 100)} % '
                         f'below theta), last snapshot {_fmt([g["ratio_median"] for g in last], 3, form="g")} '
                         f'({_fmt([g["below_theta"] for g in last], 0, 100)} % below theta)')
        parts.append(text)
    return '. '.join(parts) + '.'

def finish(claim_id, done, ctx):
    spec = CLAIM_SPECS[claim_id]
    failed = [(t, r) for t, r in done if 'error' in r]
    done = [(t, r) for t, r in done if 'error' not in r]
    labels = {role: label for label, _, role in spec['arms'] if role in ('baseline', 'method')}
    baseline = common.arms_of(done, labels['baseline'], spec['metric'])
    method = common.arms_of(done, labels['method'], spec['metric'])
    result_verdict = common.verdict(baseline, method, better=spec['better'])
    extra, tried, skipped = [], [], []
    references = spec.get('references', {})
    for label, arm_args, role in spec['arms']:
        if role in ('baseline', 'method'):
            continue
        _, missing = common.split_available(arm_args)
        if missing:
            skipped.append(f'{label} (train.py has no {" ".join(m.split("=")[0] for m in missing)} yet)')
            continue
        if ctx.quick:
            continue
        a = common.arms_of(done, label, spec['metric'])
        if not a['values']:
            continue
        extra.append(a)
        if label in references.values():
            continue                                       # a baseline of its own, for the arms that name it
        ref = common.arms_of(done, references[label], spec['metric']) if label in references else baseline
        ref_name = f'its own baseline "{references[label]}" ({common.fmt_arm(ref)})' if label in references else 'the baseline'
        tried.append((label, role, a, common.verdict(ref, a, better=spec['better']), ref_name))
    # The same runs under a second metric that the claim's words need (reported, not part of the verdict):
    # the rare mode's share within 3 std / its weight (resampling), the HQ share = the toy QS (quality loss).
    second, second_name = ('rare_share', 'rare-mode share (within 3 std / weight; 1 = right frequency)') \
        if claim_id == 'priorgan-ring8rare-resampling' else ('hq', 'HQ share (within 3 std of a mode; the toy QS)')
    for label, _, role in spec['arms']:
        if any(t.arm == label for t, _ in done) and (role in ('baseline', 'method') or not ctx.quick):
            extra.append(dict(common.arms_of(done, label, second), label=f'[{second_name}] {label}'))
    # And, for the arms on every seed, the modes covered and (resampling) DDS over the points within 3 std only, each
    # with the verdict rule against the baseline: does the claim's win survive a metric that a smeared G cannot game?
    checks = [('modes', 'modes covered (>= 1 % within 3 std)', 'higher')] + \
        ([('dds_hq', 'DDS over the points within 3 std only', 'lower')] if claim_id == 'priorgan-ring8rare-resampling' else [])
    check_text = []
    for key, name, direction in checks:
        base_k = common.arms_of(done, labels['baseline'], key)
        for label, _, role in spec['arms']:
            if role == 'search' or not any(t.arm == label for t, _ in done):
                continue
            a = common.arms_of(done, label, key)
            extra.append(dict(a, label=f'[{name}] {label}'))
            if role != 'baseline':
                check_text.append(f'{name}, {label}: {common.fmt_arm(a)} -> {common.verdict(base_k, a, better=direction)} against the baseline\'s '
                                  f'{common.fmt_arm(base_k)} ({direction} is better)')
    better = (lambda a: -a['mean']) if spec['better'] == 'lower' else (lambda a: a['mean'])
    searched = [(l, a) for l, role, a, _, ref in tried if role == 'search' and ref == 'the baseline']
    best_search = max(searched, key=lambda la: better(la[1]), default=None)
    winners = [(l, a) for l, role, a, v, ref in tried if v == 'reproduced' and ref == 'the baseline']
    best = max(winners, key=lambda la: better(la[1]), default=None)
    num_searched = sum(len(a['values']) for _, _, a, _, _ in tried) + sum(
        len(common.arms_of(done, l, spec['metric'])['values']) for l in set(references.values()))
    tried_text = (f'Search budget: {SEARCH_BUDGET}; this claim ran {num_searched}. Best-arm rule: {BEST_RULE}. ' +
                  ' '.join(f'{l}: {common.fmt_arm(a)} -> {v} against {ref}'
                           f'{" (one seed: a verdict of reproduced needs 2 or more)" if len(a["values"]) < 2 and v != "not reproduced" else ""}.'
                           for l, _, a, v, ref in tried) +
                  (f' Best single-seed searched arm: {best_search[0]} ({common.fmt_arm(best_search[1])}).' if best_search else '') +
                  (f' Best arm that beats the baseline with no overlap: {best[0]} ({common.fmt_arm(best[1])}).' if best else
                   (' No arm beats the baseline with no overlap.' if tried else '')) +
                  (' The same arms on other measures, ' + '; '.join(check_text) + '.' if check_text and not ctx.quick else '') +
                  (' Not run (option missing): ' + '; '.join(skipped) + '.' if skipped else '') +
                  (f' {len(failed)} run(s) failed: ' + '; '.join(f'{t.arm} seed {t.seed}: {r["error"][-200:]}' for t, r in failed) if failed else ''))
    deviations = list(DEVIATIONS)
    if ctx.quick:
        deviations.insert(0, f'QUICK smoke run: {QUICK["kimg"]} kimg, {QUICK["points"]} points, baseline and method only: not a result.')
    pictures = make_pictures(claim_id, done, ctx)
    _write_runs(claim_id, done, ctx.out_dir)
    return common.write_result(
        ctx.out_dir, claim_id=claim_id, paper=PAPER, claim=spec['claim'], paper_number=spec['paper_number'], metric=spec['metric_text'],
        command=ctx.command + ' --jobs=12', settings=common.settings_text(SETTINGS) + '. Arms: ' +
        '; '.join(f'{l} = [{" ".join(a) or "no prior"}]' for l, a, _ in spec['arms']),
        deviations=deviations, baseline=baseline, method=method, extra_arms=extra, verdict=result_verdict,
        mechanism=_mechanism(claim_id, spec, done), tried=tried_text, pictures=pictures, machine=common.machine(), date=common.now())

# Per-run measurements next to the result (a .jsonl, so the report's *.json glob does not read it).
def _write_runs(claim_id, done, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f'{claim_id}.runs.jsonl')
    with open(path, 'w', encoding='utf-8') as f:
        for t, r in done:
            row = dict(arm=t.arm, seed=t.seed, args=t.args, **{k: v for k, v in r.items() if k not in ('run_dir',)})
            f.write(json.dumps(row, default=lambda o: o.tolist() if isinstance(o, np.ndarray) else str(o)) + '\n')
    return path

def make_pictures(claim_id, done, ctx):
    spec = CLAIM_SPECS[claim_id]
    labels = {role: label for label, _, role in spec['arms']}
    first = {}
    for t, r in sorted(done, key=lambda tr: tr[0].seed):
        first.setdefault(t.arm, (t, r))
    base, meth = first.get(labels['baseline']), first.get(labels['method'])
    pictures = []
    if base is None or meth is None:
        return pictures
    rel = lambda p: os.path.relpath(p, REPO) if not ctx.quick else p
    if claim_id == 'priorgan-ring8-quality':
        from priors.gmm.prior_file import PriorFile  # pylint: disable=import-outside-toplevel
        state = _gmm_state(common.load_snapshot(common.snapshots(meth[1]['run_dir'])[-1][1]))
        rows = [('GAN', base[1]['run_dir'], None)]
        if state is not None:
            weight = float(_option(meth[0].extra['arm_args'], '--prior-weight', 0.1))
            prior = (PriorFile(state['prior_file']), state['log_theta'], state['num_dims'], weight, 'paper', 'none')
            rows += [('same GAN + L_Q', base[1]['run_dir'], prior), ('trained with L_Q', meth[1]['run_dir'], prior)]
        for label, arm_args, role in spec['arms']:      # each option arm, trained, with its own quality term in the arrows
            if role == 'option' and label in first and state is not None:
                weight = float(_option(arm_args, '--prior-weight', 0.1))
                scale = _option(arm_args, '--prior-quality-scale', 'none')
                rows.append((f'trained, {label.split(": ", 1)[-1][:26]}', first[label][1]['run_dir'],
                             (prior[0], prior[1], prior[2], weight, 'paper', scale)))
        path = figure_rows(rows, os.path.join(ctx.pictures_dir, 'priorgan-fig1ab-quality.png'),
                           f'Fig. 1 (a, b), ring8, seed {base[0].seed}: arrows = -grad of G loss (row 2: same D + delta Eq. 5)')
        pictures.append(rel(path))
    else:
        rows = [('GAN', base[1]['run_dir'], None), ('GAN + RS', meth[1]['run_dir'], None)]
        rows += [(label.split(': ', 1)[-1][:30], first[label][1]['run_dir'], None) for label, _, role in spec['arms']
                 if role == 'option' and label in first]
        path = figure_rows(rows,
                           os.path.join(ctx.pictures_dir, 'priorgan-fig1cd-resampling.png'),
                           f'Fig. 1 (c, d), ring8 with mode 0 (right) at 2 %, seed {base[0].seed}: arrows = -grad of G loss')
        pictures.append(rel(path))
        seed = base[0].seed
        shown = {label for label, _, role in spec['arms'] if role in ('method', 'option')}
        trajs = [(t.arm, r.get('trajectory')) for t, r in done if t.seed == seed and r.get('trajectory') and t.arm in shown]
        path = trajectory_picture(trajs, os.path.join(ctx.pictures_dir, 'priorgan-resampling-trajectory.png'),
                                  f"Rare mode's group over training, seed {seed}: f' (Eq. 8, lines) and f_g (dots)")
        pictures.append(rel(path))
    return pictures

main = common.make_main(NAME, DEFAULT_SEEDS)

if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter
