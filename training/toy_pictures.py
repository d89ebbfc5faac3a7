"""Toy lab pictures (Pillow only): samples over the data density, D's value with its gradient field (PriorGAN Fig. 1, Che et al. 2017 Fig. 9) and the mode histogram, real vs generated.

At every image snapshot of a toy run the loop calls `ToyDataset.on_snapshot`,
which writes `toy<kimg>.png` into the run folder: three panels side by side,

  1. samples: the data density (true mixture density when the modes are known,
     else a smoothed histogram of the training points) in green, 2,000
     generated points in blue;
  2. D: D's realness (what the loss's `score()` returns: the logit, or a prior
     head's realness) on a grid, blue (low) to red (high), with its gradient
     d score / dx as grey arrows on a lattice and as red arrows at 64 generated
     points: the direction in which D pushes the generator's samples;
  3. modes: nearest-mode frequencies of the data (true weights) and of the
     generated points, with the covered modes, HQ share, KL and DDS
     (metrics/toy_metrics.py) in the title.
"""

import io
import os

import numpy as np
import PIL.Image
import PIL.ImageDraw
import PIL.ImageFilter
import PIL.ImageFont
import torch

import dnnlib
from training import toy_lab

#----------------------------------------------------------------------------
# Layout and colours.

PANEL = 360                      # side of a square plot, pixels
TITLE = 34                       # title strip above each plot
GAP = 8                          # space between panels
HEAT_RES = 96                    # grid of D evaluations per side (upsampled to PANEL)
LATTICE = 15                     # arrows per side of the gradient lattice
NUM_ARROWS_AT_SAMPLES = 64       # generated points that get a gradient arrow
BACKGROUND = (250, 250, 250)
TEXT = (20, 20, 20)
REAL = (40, 150, 60)
GEN = (40, 90, 210)
ARROW = (210, 30, 30)
LATTICE_ARROW = (90, 90, 90)

def _font(size=12):
    try:
        return PIL.ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font only
        return PIL.ImageFont.load_default()

#----------------------------------------------------------------------------
# The square region shown: the modes (or data) plus a margin, same scale on both axes.
# Returns (lo [2], hi [2]) float64.

def view_box(real, modes=None, margin=0.25):
    pts = modes.centres if modes is not None else np.percentile(real, [0.5, 99.5], axis=0)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    if modes is not None:
        pad = 3 * modes.stds.max()
        lo, hi = lo - pad, hi + pad
    centre, half = (lo + hi) / 2, (hi - lo).max() / 2 * (1 + margin) + 1e-6
    return centre - half, centre + half

# Data coordinates [N, 2] -> pixel coordinates [N, 2] (x to the right, y up).
def to_pixels(xy, box, size=PANEL):
    lo, hi = box
    u = (np.asarray(xy, dtype=np.float64) - lo) / (hi - lo)
    return np.stack([u[:, 0] * (size - 1), (1 - u[:, 1]) * (size - 1)], axis=1)

# Centres of a res x res grid over the box, in row-major pixel order (top row first): [res*res, 2].
def grid_points(box, res):
    lo, hi = box
    xs = lo[0] + (np.arange(res) + 0.5) / res * (hi[0] - lo[0])
    ys = hi[1] - (np.arange(res) + 0.5) / res * (hi[1] - lo[1])
    xx, yy = np.meshgrid(xs, ys, indexing='xy')
    return np.stack([xx.ravel(), yy.ravel()], axis=1)

#----------------------------------------------------------------------------
# Data density on the panel grid: the mixture density, or a blurred 2-D histogram. float64 [PANEL, PANEL].

def density_image(box, real, modes=None, res=PANEL):
    pts = grid_points(box, res)
    if modes is not None:
        dens = np.zeros(len(pts))
        for centre, std, weight in zip(modes.centres, modes.stds, modes.weights):
            sq = np.square(pts - centre).sum(axis=1) / (2 * std * std)
            dens += weight * np.exp(-sq) / (2 * np.pi * std * std)
        return dens.reshape(res, res)
    pix = to_pixels(real, box, res).round().astype(np.int64).clip(0, res - 1)
    hist = np.zeros([res, res])
    np.add.at(hist, (pix[:, 1], pix[:, 0]), 1)
    image = PIL.Image.fromarray((hist / max(hist.max(), 1) * 255).astype(np.uint8))
    return np.asarray(image.filter(PIL.ImageFilter.GaussianBlur(2)), dtype=np.float64)

def _density_rgb(dens):
    v = np.sqrt(dens / max(dens.max(), 1e-30))[:, :, None]         # [H, W, 1] in [0, 1]
    white, green = np.array(BACKGROUND, dtype=np.float64), np.array([150, 215, 160], dtype=np.float64)
    return (white * (1 - v) + green * v).astype(np.uint8)

# Diverging colour map of values normalised to [-1, 1]: blue - white - red. [H, W] -> uint8 [H, W, 3].
def _diverging_rgb(v):
    v = np.clip(v, -1, 1)[:, :, None]
    white, red, blue = np.array([248, 248, 248.0]), np.array([215, 60, 50.0]), np.array([50, 100, 200.0])
    return np.where(v >= 0, white * (1 - v) + red * v, white * (1 + v) - blue * v).astype(np.uint8)

#----------------------------------------------------------------------------
# Drawing helpers.

def _dots(draw, pix, colour, radius=1):
    for x, y in pix:
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=colour)

def _arrow(draw, x0, y0, dx, dy, colour, width=1):
    length = float(np.hypot(dx, dy))
    if length < 1.5:
        return
    x1, y1 = x0 + dx, y0 + dy
    draw.line([x0, y0, x1, y1], fill=colour, width=width)
    ux, uy = dx / length, dy / length
    head = min(6.0, 0.4 * length)
    for side in (1, -1):
        hx = x1 - head * (ux * 0.87 - side * uy * 0.5)
        hy = y1 - head * (uy * 0.87 + side * ux * 0.5)
        draw.line([x1, y1, hx, hy], fill=colour, width=width)

# The 3-sigma circle of every mode (at least 3 pixels), so that narrow modes stay visible.
def _mode_circles(draw, box, modes):
    if modes is None:
        return
    per_unit = (PANEL - 1) / (box[1][0] - box[0][0])
    for (x, y), std in zip(to_pixels(modes.centres, box), modes.stds):
        r = max(3 * std * per_unit, 3)
        draw.ellipse([x - r, y - r, x + r, y + r], outline=REAL, width=2)

def _titled(plot, title, subtitle=''):
    panel = PIL.Image.new('RGB', (PANEL, PANEL + TITLE), BACKGROUND)
    panel.paste(plot, (0, TITLE))
    draw = PIL.ImageDraw.Draw(panel)
    draw.text((4, 2), title, fill=TEXT, font=_font(13))
    if subtitle:
        draw.text((4, 18), subtitle, fill=TEXT, font=_font(11))
    draw.rectangle([0, TITLE, PANEL - 1, TITLE + PANEL - 1], outline=(160, 160, 160))
    return panel

#----------------------------------------------------------------------------
# Panel 1: samples over the data density.

def samples_panel(real, gen, box, modes=None):
    plot = PIL.Image.fromarray(_density_rgb(density_image(box, real, modes)))
    draw = PIL.ImageDraw.Draw(plot)
    _dots(draw, to_pixels(gen, box), GEN, radius=1)
    _mode_circles(draw, box, modes)
    return _titled(plot, 'samples over the data density', f'green: data density (circles: 3 std), blue: {len(gen)} generated')

#----------------------------------------------------------------------------
# D's realness and its input gradient at points [N, 2]: (values [N], gradients [N, 2]) float64.
# score_fn maps [N, 2, 1, 1] float32 points to [N, 1] (or [N]) scores.

def score_and_gradient(score_fn, points, device, batch=4096):
    values, grads = [], []
    for lo in range(0, len(points), batch):
        x = torch.tensor(points[lo:lo + batch], dtype=torch.float32, device=device).reshape(-1, 2, 1, 1).requires_grad_(True)
        with torch.enable_grad():
            score = score_fn(x).reshape(len(x), -1)[:, 0]
            (grad,) = torch.autograd.grad(score.sum(), [x])
        values.append(score.detach().to(torch.float64).cpu().numpy())
        grads.append(grad.reshape(len(x), 2).to(torch.float64).cpu().numpy())
    return np.concatenate(values), np.concatenate(grads)

# Panel 2: D's value as a heat map with its gradient field.
def discriminator_panel(score_fn, real, gen, box, device, modes=None):
    values, _ = score_and_gradient(score_fn, grid_points(box, HEAT_RES), device)
    lo_v, hi_v = np.percentile(values, [2, 98])
    centre, half = (lo_v + hi_v) / 2, max((hi_v - lo_v) / 2, 1e-12)
    heat = _diverging_rgb(((values - centre) / half).reshape(HEAT_RES, HEAT_RES))
    plot = PIL.Image.fromarray(heat).resize((PANEL, PANEL), PIL.Image.BILINEAR)
    draw = PIL.ImageDraw.Draw(plot)

    # Gradient lattice: direction and relative size (to the largest).
    lattice = grid_points(box, LATTICE)
    _, lattice_grad = score_and_gradient(score_fn, lattice, device)
    cell = PANEL / LATTICE
    scale = 0.8 * cell / max(np.linalg.norm(lattice_grad, axis=1).max(), 1e-12)
    for (x, y), (gx, gy) in zip(to_pixels(lattice, box), lattice_grad):
        _arrow(draw, x, y, gx * scale, -gy * scale, LATTICE_ARROW)

    # Points, and the gradient at some generated points.
    _dots(draw, to_pixels(real[:500], box), REAL, radius=1)
    _dots(draw, to_pixels(gen, box), GEN, radius=1)
    _mode_circles(draw, box, modes)
    picks = gen[:NUM_ARROWS_AT_SAMPLES]
    _, grad = score_and_gradient(score_fn, picks, device)
    scale = 2.5 * cell / max(np.linalg.norm(grad, axis=1).max(), 1e-12)
    for (x, y), (gx, gy) in zip(to_pixels(picks, box), grad):
        _arrow(draw, x, y, gx * scale, -gy * scale, ARROW, width=2)
    return _titled(plot, "D's realness and its gradient", f'blue {lo_v:.3g} .. red {hi_v:.3g}; red arrows: grad at samples')

#----------------------------------------------------------------------------
# Panel 3: nearest-mode histogram, real vs generated.

def histogram_panel(real_freqs, gen_freqs, subtitle):
    plot = PIL.Image.new('RGB', (PANEL, PANEL), BACKGROUND)
    draw = PIL.ImageDraw.Draw(plot)
    num = len(real_freqs)
    top = max(float(np.max(real_freqs)), float(np.max(gen_freqs)), 1e-12) * 1.1
    left, bottom, height = 34, PANEL - 22, PANEL - 50
    slot = (PANEL - left - 6) / num
    for frac in (0, 0.5, 1):
        y = bottom - frac * height
        draw.line([left, y, PANEL - 6, y], fill=(200, 200, 200))
        draw.text((2, y - 6), f'{frac * top:.2f}', fill=TEXT, font=_font(10))
    for k in range(num):
        x0 = left + k * slot + slot * 0.1
        w = slot * 0.4
        for j, (freq, colour) in enumerate(((real_freqs[k], REAL), (gen_freqs[k], GEN))):
            draw.rectangle([x0 + j * w, bottom - freq / top * height, x0 + (j + 1) * w - 1, bottom], fill=colour)
        if num <= 30 and (num <= 12 or k % 2 == 0):
            draw.text((x0, bottom + 4), str(k), fill=TEXT, font=_font(10))
    draw.text((left + 4, 6), 'green: data (true weights)   blue: generated', fill=TEXT, font=_font(11))
    return _titled(plot, 'mode histogram (nearest mode)', subtitle)

#----------------------------------------------------------------------------
# The whole figure. real, gen: [N, 2] float; modes: ToyModes or None;
# score_fn: None = no D panel. Written atomically as PNG.

def save_figure(path, real, gen, modes=None, score_fn=None, device='cpu', title=''):
    from metrics import toy_metrics
    box = view_box(real, modes)
    panels = [samples_panel(real, gen, box, modes)]
    if score_fn is not None:
        panels.append(discriminator_panel(score_fn, real, gen, box, torch.device(device), modes))
    if modes is not None:
        s = toy_metrics.mode_scores(gen, modes.centres, modes.stds, modes.weights)
        subtitle = f'covered {s["modes"]}/{modes.num_modes}, HQ {s["hq"] * 100:.1f} %, KL {s["kl"]:.3f}, DDS {s["dds"]:.3f}'
        panels.append(histogram_panel(modes.weights, s['hist'], subtitle))
    head = 22 if title else 0
    figure = PIL.Image.new('RGB', (len(panels) * PANEL + (len(panels) + 1) * GAP, PANEL + TITLE + 2 * GAP + head), BACKGROUND)
    if title:
        PIL.ImageDraw.Draw(figure).text((GAP, 4), title, fill=TEXT, font=_font(14))
    for i, panel in enumerate(panels):
        figure.paste(panel, (GAP + i * (PANEL + GAP), GAP + head))
    buffer = io.BytesIO()
    figure.save(buffer, format='PNG')
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with dnnlib.util.atomic_write(path, 'wb') as f:
        f.write(buffer.getvalue())
    return path

#----------------------------------------------------------------------------
# num points of G from seeded latents (through the sample-time transform): float64 [num, 2].

def generated_points(G, num=2000, seed=0, transform=None, batch=1000):
    from training import sampling
    device = next(iter(G.parameters()), torch.zeros([])).device
    z = torch.randn([num, G.z_dim], generator=torch.Generator().manual_seed(int(seed))).to(device)
    c = torch.zeros([num, G.c_dim], device=device)
    with torch.no_grad():
        img = torch.cat([sampling.sample(G, zz, cc, transform=transform, noise_mode='const') for zz, cc in zip(z.split(batch), c.split(batch))])
    return img.reshape(num, -1)[:, :2].to(torch.float64).cpu().numpy()

# The snapshot figure of a toy run: toy<kimg>.png in run_dir. loss: the training loss (its score() gives D's
# realness; None = no D panel).
def save_snapshot_pictures(run_dir, cur_nimg, dataset, G, loss=None, transform=None, num=2000, seed=0):
    real = dataset.fresh_points(num, seed=seed)
    gen = generated_points(G, num=num, seed=seed, transform=transform)
    score_fn = None
    if loss is not None and hasattr(loss, 'score'):
        score_fn = lambda x: loss.score(x, torch.zeros([len(x), 0], device=x.device), sync=False)[0]
    device = next(iter(G.parameters()), torch.zeros([])).device
    path = os.path.join(run_dir, f'toy{cur_nimg // 1000:06d}.png')
    return save_figure(path, real, gen, dataset.toy_modes, score_fn, device, title=f'{dataset.name}, kimg {cur_nimg / 1000:g}')

#----------------------------------------------------------------------------
# generate.py's output for a point generator: points.npy (float32 [N, 2]), points.csv
# (seed,x,y) and points.png (the points over the training data, with D's field when
# the snapshot has D). points: [N, 2, 1, 1] tensor; snapshot: the loaded pickle dict.
# Returns the written paths.

def save_points(outdir, seeds, points, snapshot=None):
    pts = points.reshape(len(points), -1)[:, :2].detach().to(torch.float64).cpu().numpy()
    paths = [os.path.join(outdir, name) for name in ('points.npy', 'points.csv', 'points.png')]
    np.save(paths[0], pts.astype(np.float32))
    with open(paths[1], 'w', encoding='utf-8') as f:
        f.write('seed,x,y\n' + ''.join(f'{seed},{x!r},{y!r}\n' for seed, (x, y) in zip(seeds, pts.tolist())))

    # The picture: over the training data when the snapshot names a toy set that can be opened.
    dataset = None
    kwargs = (snapshot or {}).get('training_set_kwargs')
    if isinstance(kwargs, dict) and kwargs.get('class_name') == toy_lab.TOY_DATASET_CLASS:
        try:
            dataset = dnnlib.util.construct_class_by_name(**kwargs)
        except (OSError, ValueError) as err:
            print(f'Note: cannot open the training data {kwargs.get("path")} ({err}); points.png shows the points alone')
    real = dataset.fresh_points(2000, seed=0) if dataset is not None else pts
    modes = dataset.toy_modes if dataset is not None else None
    score_fn, D = None, (snapshot or {}).get('D')
    if D is not None:
        D = D.to(points.device).eval().requires_grad_(False)
        score_fn = lambda x: D(x, torch.zeros([len(x), 0], device=x.device))
    save_figure(paths[2], real, pts, modes, score_fn, points.device, title=f'{len(pts)} generated points')
    return paths

#----------------------------------------------------------------------------
