"""Shared machinery of the paper experiments (experiments/<paper>.py): runs through train.py, the result schema, the verdict rule, the process pool, the command line and pictures over training.

A paper file defines, at module level:

    PAPER = 'Goerttler & Kloft 2019, ...'            # one line: authors, title, year
    CLAIMS = {'masked-ring8-emd': '...', ...}       # claim id -> one sentence
    def tasks(quick, seeds, only):                  # -> [Task]: every training run of the claims in `only`
    def run(task):                                  # -> dict of measurements; runs in a worker process (one thread)
    def finish(claim_id, done, ctx):                # done: [(Task, dict)] of that claim -> writes the result JSON
    main = common.make_main(__name__)               # --jobs --seeds --quick --only --dry-run --out --keep

`python -m experiments.run_all` pools the tasks of every paper file that has this shape, so one `--jobs N`
packs all of them. Result JSONs follow `SCHEMA` exactly (`write_result` checks it); `verdict()` is the rule
that docs/reproduction.md states. Everything here is stable API for the other paper files.
"""

import concurrent.futures
import dataclasses
import datetime
import functools
import glob
import importlib
import json
import math
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

import click
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS_DIR = os.path.join(REPO, 'experiments', 'results')
PICTURES_DIR = os.path.join(REPO, 'docs', 'reproduction')

#----------------------------------------------------------------------------
# The result schema (the experiment protocol). Keys and the arm keys, in this order.

SCHEMA = ('claim_id', 'paper', 'claim', 'paper_number', 'metric', 'command', 'settings', 'deviations', 'baseline', 'method',
          'extra_arms', 'verdict', 'mechanism', 'tried', 'pictures', 'machine', 'date')
ARM_KEYS = ('label', 'seeds', 'values', 'mean', 'std')
VERDICTS = ('reproduced', 'same direction', 'not reproduced')

VERDICT_RULE = (
    'Mean and std are over training seeds (sample std, ddof = 1). **reproduced**: the method beats the baseline in the '
    "paper's direction with no overlap of the mean ± std intervals (at least 2 seeds per arm), and its relative gain is at least half the paper's "
    "(where the paper gives both numbers; a claim without numbers needs only the first two). **same direction**: the "
    'method\'s mean is better than the baseline\'s, but the intervals overlap or the gain is under half the paper\'s. '
    '**not reproduced**: otherwise (equal or worse mean).')

#----------------------------------------------------------------------------
# Numbers.

def parse_seeds(text):
    """'0-2' -> [0, 1, 2]; '0,3,5-6' -> [0, 3, 5, 6]."""
    seeds = []
    for part in str(text).split(','):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition('-')
        if not lo.isdigit() or (hi and not hi.isdigit()):
            raise click.BadParameter(f'--seeds: "{part}" is not a seed or a range; write e.g. 0-2 or 0,3,5')
        seeds += list(range(int(lo), int(hi or lo) + 1))
    if not seeds:
        raise click.BadParameter('--seeds: no seed given; write e.g. 0-2')
    return seeds

def arm(label, seeds, values):
    """One arm of a result: its label, seeds, per-seed values, mean and sample std (ddof = 1; 0 for one seed)."""
    vals = [float(v) for v in values]
    finite = np.asarray([v for v in vals if math.isfinite(v)], dtype=np.float64)
    mean = float(finite.mean()) if finite.size else float('nan')
    std = float(finite.std(ddof=1)) if finite.size > 1 else (0.0 if finite.size == 1 else float('nan'))
    return dict(label=str(label), seeds=[int(s) for s in seeds], values=vals, mean=mean, std=std)

def verdict(baseline, method, better='lower', paper=None):
    """The verdict rule (VERDICT_RULE) from two arms.

    Args:
        baseline, method: arm dicts (mean, std).
        better: 'lower' or 'higher': the paper's direction of improvement for this metric.
        paper: (paper's baseline number, paper's method number) or None when the paper gives no numbers.
    Returns:
        'reproduced', 'same direction' or 'not reproduced'.
    """
    if better not in ('lower', 'higher'):
        raise ValueError(f'verdict: better must be "lower" or "higher", got {better!r}')
    b, m, sb, sm = baseline['mean'], method['mean'], baseline['std'], method['std']
    if not all(math.isfinite(v) for v in (b, m, sb, sm)):
        return 'not reproduced'
    sign = 1.0 if better == 'lower' else -1.0
    gain = sign * (b - m)  # > 0: the method is better
    if gain <= 0:
        return 'not reproduced'
    enough_seeds = len(baseline.get('values') or ()) >= 2 and len(method.get('values') or ()) >= 2
    separated = enough_seeds and ((m + sm < b - sb) if better == 'lower' else (m - sm > b + sb))
    big_enough = True
    if paper is not None:
        pb, pm = (float(v) for v in paper)
        paper_gain = sign * (pb - pm) / abs(pb) if pb != 0 else 0.0
        ours = gain / abs(b) if b != 0 else math.inf
        big_enough = ours >= 0.5 * paper_gain
    return 'reproduced' if separated and big_enough else 'same direction'

def fmt_arm(a, digits=3):
    """'0.123 ± 0.045 (seeds 0,1,2)' for an arm dict; '-' when it has no values."""
    if not a or not a.get('values'):
        return '-'
    seeds = ','.join(str(s) for s in a['seeds'])
    return f'{a["mean"]:.{digits}f} ± {a["std"]:.{digits}f} (seeds {seeds})'

#----------------------------------------------------------------------------
# The paper's settings table: name -> (value, source). Written once at the top of a paper file.

def setting(value, source):
    return dict(value=value, source=source)

def settings_text(table):
    """One line per setting: 'name = value  [source]'."""
    return '; '.join(f'{name} = {entry["value"]} [{entry["source"]}]' for name, entry in table.items())

def machine():
    try:
        import torch  # pylint: disable=import-outside-toplevel
        torch_version = torch.__version__
    except ImportError:
        torch_version = 'none'
    return f'{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch_version}, python {platform.python_version()}'

def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')

#----------------------------------------------------------------------------
# Result files.

def check_result(result):
    """Raise ValueError naming the first way `result` departs from SCHEMA."""
    keys = tuple(result)
    if set(keys) != set(SCHEMA):
        missing, extra = sorted(set(SCHEMA) - set(keys)), sorted(set(keys) - set(SCHEMA))
        raise ValueError(f'result {result.get("claim_id")}: keys differ from the schema (missing {missing}, extra {extra})')
    for name in ('baseline', 'method'):
        if tuple(sorted(result[name])) != tuple(sorted(ARM_KEYS)):
            raise ValueError(f'result {result["claim_id"]}: {name} needs exactly the keys {ARM_KEYS}')
    for extra in result['extra_arms']:
        if tuple(sorted(extra)) != tuple(sorted(ARM_KEYS)):
            raise ValueError(f'result {result["claim_id"]}: every extra arm needs exactly the keys {ARM_KEYS}')
    if result['verdict'] not in VERDICTS:
        raise ValueError(f'result {result["claim_id"]}: verdict must be one of {VERDICTS}, got {result["verdict"]!r}')
    for name in ('deviations', 'pictures', 'extra_arms'):
        if not isinstance(result[name], list):
            raise ValueError(f'result {result["claim_id"]}: {name} must be a list')

def write_result(out_dir, **fields):
    """Write <out_dir>/<claim_id>.json with the keys of SCHEMA in order (fields must be exactly those); returns the path."""
    result = {key: fields[key] for key in SCHEMA if key in fields}
    result.update({key: value for key, value in fields.items() if key not in result})
    check_result(result)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f'{result["claim_id"]}.json')
    with open(path + '.tmp', 'w', encoding='utf-8') as f:
        json.dump(result, f, indent=1, allow_nan=True)
        f.write('\n')
    os.replace(path + '.tmp', path)
    return path

def load_results(results_dir=RESULTS_DIR):
    out = []
    for path in sorted(glob.glob(os.path.join(results_dir, '*.json'))):
        with open(path, encoding='utf-8') as f:
            out.append(json.load(f))
    return out

#----------------------------------------------------------------------------
# train.py runs.

@functools.lru_cache(maxsize=None)
def train_flags():
    """The long options train.py accepts (from its --help), e.g. {'--d-steps', ...}."""
    proc = subprocess.run([sys.executable, os.path.join(REPO, 'train.py'), '--help'], cwd=REPO, capture_output=True, text=True,
                          env=dict(os.environ, OMP_NUM_THREADS='1'), check=False)
    return frozenset(re.findall(r'(--[a-z][a-z0-9-]*)', proc.stdout))

def split_available(args):
    """(args train.py accepts, flags it does not know). A paper file records the second list as deviations."""
    known, kept, missing = train_flags(), [], []
    for a in args:
        flag = a.split('=', 1)[0]
        if flag.startswith('--') and flag not in known:
            missing.append(a)
        else:
            kept.append(a)
    return kept, missing

def train(args, workdir, timeout=None):
    """One `python train.py --outdir=<workdir> ARGS` process with one thread; returns its run folder.

    Raises RuntimeError with the tail of its output when it fails."""
    os.makedirs(workdir, exist_ok=True)
    cmd = [sys.executable, os.path.join(REPO, 'train.py'), f'--outdir={workdir}'] + list(args)
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f'training failed: {shlex.join(cmd)}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}')
    runs = sorted(d for d in os.listdir(workdir) if os.path.isdir(os.path.join(workdir, d)))
    return os.path.join(workdir, runs[-1])

def snapshots(run_dir):
    """[(kimg, path)] of the run's network snapshots, in training order."""
    paths = glob.glob(os.path.join(run_dir, 'network-snapshot-*.pkl'))
    out = [(int(re.findall(r'(\d+)\.pkl$', p)[0]), p) for p in paths]
    return sorted(out)

def load_stats(run_dir):
    """The run's stats.jsonl as a list of dicts (one per tick)."""
    path = os.path.join(run_dir, 'stats.jsonl')
    if not os.path.exists(path):
        return []
    with open(path, encoding='utf-8') as f:
        return [json.loads(line) for line in f if line.strip()]

def stat_series(stats, key, field='mean'):
    """(kimg list, value list) of one statistic over the ticks; missing ticks skipped."""
    xs, ys = [], []
    for line in stats:
        if key in line and isinstance(line[key], dict) and field in line[key]:
            xs.append(line.get('Progress/kimg', {}).get('mean', len(xs)))
            ys.append(float(line[key][field]))
    return xs, ys

#----------------------------------------------------------------------------
# Toy scores and points of a snapshot (metrics/toy_metrics.py: 2,000 generated vs 2,000 fresh data points).

def load_snapshot(pkl):
    """A snapshot this experiment's own train.py run just wrote, loaded in safe mode like any other file."""
    import legacy  # pylint: disable=import-outside-toplevel
    with open(pkl, 'rb') as f:
        return legacy.load_network_pkl(f)

def _metric_options(snapshot, seed, prior_sampling):
    from metrics import metric_utils  # pylint: disable=import-outside-toplevel
    return metric_utils.MetricOptions(G=snapshot['G_ema'], dataset_kwargs=snapshot['training_set_kwargs'], device='cpu', seed=seed,
                                      snapshot=snapshot, prior_sampling=prior_sampling)

def toy_scores(pkl_or_snapshot, num=2000, seed=0, prior_sampling=False):
    """emd, modes, hq, kl, dds of a toy snapshot (plain G(z) unless prior_sampling)."""
    from metrics import toy_metrics  # pylint: disable=import-outside-toplevel
    snapshot = load_snapshot(pkl_or_snapshot) if isinstance(pkl_or_snapshot, str) else pkl_or_snapshot
    scores = toy_metrics.compute_toy_scores(_metric_options(snapshot, seed, prior_sampling), num=num)
    return {k: float(v) for k, v in scores.items()}

def toy_points(pkl_or_snapshot, num=1000, seed=0, prior_sampling=False):
    """(generated [num, 2], data [num, 2], modes) of a toy snapshot, float64."""
    from metrics import toy_metrics  # pylint: disable=import-outside-toplevel
    snapshot = load_snapshot(pkl_or_snapshot) if isinstance(pkl_or_snapshot, str) else pkl_or_snapshot
    opts = _metric_options(snapshot, seed, prior_sampling)
    dataset = toy_metrics.open_toy_dataset(opts)
    return toy_metrics.generate_points(opts, num), dataset.fresh_points(num, seed=seed), dataset.toy_modes

def mode_shares(points, modes):
    """Share of points within 3 std of each true mode, [K]."""
    from metrics import toy_metrics  # pylint: disable=import-outside-toplevel
    return np.asarray(toy_metrics.mode_scores(points, modes.centres, modes.stds, modes.weights)['within'], dtype=np.float64)

#----------------------------------------------------------------------------
# Pictures (Pillow, small PNGs for docs/reproduction/).

def _font(size=11):
    import PIL.ImageFont  # pylint: disable=import-outside-toplevel
    try:
        return PIL.ImageFont.load_default(size=size)
    except TypeError:
        return PIL.ImageFont.load_default()

def _scatter_tile(gen, real, box, size, caption):
    import PIL.Image, PIL.ImageDraw  # pylint: disable=import-outside-toplevel,multiple-imports
    tile = PIL.Image.new('RGB', (size, size + 14), (255, 255, 255))
    draw = PIL.ImageDraw.Draw(tile)
    lo, hi = box
    to_px = lambda p: np.stack([(p[:, 0] - lo[0]) / (hi[0] - lo[0]) * (size - 1), (1 - (p[:, 1] - lo[1]) / (hi[1] - lo[1])) * (size - 1) + 14], 1)
    for x, y in to_px(real):
        draw.point((x, y), fill=(120, 200, 130))
    for x, y in to_px(np.clip(gen, lo - 1e3, hi + 1e3)):
        if 0 <= x < size - 1 and 14 <= y < size + 13:
            draw.rectangle([x, y, x + 1, y + 1], fill=(30, 70, 200))
    draw.rectangle([0, 14, size - 1, size + 13], outline=(170, 170, 170))
    draw.text((2, 1), caption, fill=(20, 20, 20), font=_font(10))
    return tile

def save_png(image, path, max_bytes=200_000):
    """Save a Pillow image as PNG under max_bytes (quantised to a palette, shrunk if still too big)."""
    import PIL.Image  # pylint: disable=import-outside-toplevel
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    img = image.convert('RGB').quantize(colors=64)
    img.save(path, format='PNG', optimize=True)
    while os.path.getsize(path) > max_bytes and img.width > 200:
        img = img.resize((img.width * 3 // 4, img.height * 3 // 4), PIL.Image.NEAREST)
        img.save(path, format='PNG', optimize=True)
    return path

def samples_over_time(rows, path, title, columns=6, num=1000, size=120, seed=0):
    """A Fig. 9-style grid: one row per (label, run folder), one column per snapshot time (evenly spaced, last included).

    Each tile shows `num` generated points (blue) over `num` data points (green). Returns path."""
    import PIL.Image, PIL.ImageDraw  # pylint: disable=import-outside-toplevel,multiple-imports
    grid, box = [], None
    for label, run_dir in rows:
        snaps = snapshots(run_dir)
        if not snaps:
            continue
        picks = sorted(set(np.linspace(0, len(snaps) - 1, min(columns, len(snaps))).round().astype(int).tolist()))
        tiles = []
        for i in picks:
            kimg, pkl = snaps[i]
            gen, real, modes = toy_points(pkl, num=num, seed=seed)
            if box is None:
                centres = modes.centres if modes is not None else real
                pad = 0.25 * float(np.ptp(centres, axis=0).max() or 1) + (3 * float(np.max(modes.stds)) if modes is not None else 0)
                box = (centres.min(0) - pad, centres.max(0) + pad)
            tiles.append(_scatter_tile(gen, real, box, size, f'kimg {kimg}'))
        grid.append((label, tiles))
    if not grid:
        return None
    label_w, gap, head = 110, 4, 20
    width = label_w + max(len(t) for _, t in grid) * (size + gap)
    height = head + len(grid) * (size + 14 + gap)
    fig = PIL.Image.new('RGB', (width, height), (250, 250, 250))
    draw = PIL.ImageDraw.Draw(fig)
    draw.text((4, 3), title, fill=(20, 20, 20), font=_font(12))
    for r, (label, tiles) in enumerate(grid):
        y = head + r * (size + 14 + gap)
        draw.text((4, y + size // 2), label[:18], fill=(20, 20, 20), font=_font(11))
        for c, tile in enumerate(tiles):
            fig.paste(tile, (label_w + c * (size + gap), y))
    return save_png(fig, path)

def line_chart(series, path, title, ylabel, logy=False, width=560, height=300):
    """A line chart of {label: (xs, ys)} (Pillow only). Returns path."""
    import PIL.Image, PIL.ImageDraw  # pylint: disable=import-outside-toplevel,multiple-imports
    colours = [(30, 70, 200), (210, 60, 40), (40, 150, 60), (150, 60, 170), (220, 140, 20), (60, 60, 60), (20, 160, 170)]
    fig = PIL.Image.new('RGB', (width, height), (255, 255, 255))
    draw = PIL.ImageDraw.Draw(fig)
    left, right, top, bottom = 60, width - 10, 24, height - 40
    pts = [(x, y) for xs, ys in series.values() for x, y in zip(xs, ys) if math.isfinite(y) and (y > 0 or not logy)]
    draw.text((4, 3), title, fill=(20, 20, 20), font=_font(12))
    if not pts:
        return save_png(fig, path)
    tr = (lambda v: math.log10(v)) if logy else (lambda v: v)
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    y0, y1 = min(tr(p[1]) for p in pts), max(tr(p[1]) for p in pts)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)
    sx = lambda x: left + (x - x0) / (x1 - x0) * (right - left)
    sy = lambda y: bottom - (tr(y) - y0) / (y1 - y0) * (bottom - top)
    draw.rectangle([left, top, right, bottom], outline=(150, 150, 150))
    for frac in (0, 0.5, 1):
        yv = y0 + frac * (y1 - y0)
        draw.text((2, bottom - frac * (bottom - top) - 6), f'{10 ** yv if logy else yv:.3g}', fill=(60, 60, 60), font=_font(10))
    draw.text((left, bottom + 4), f'{x0:g}', fill=(60, 60, 60), font=_font(10))
    draw.text((right - 40, bottom + 4), f'{x1:g}', fill=(60, 60, 60), font=_font(10))
    draw.text((left + 60, bottom + 18), ylabel, fill=(60, 60, 60), font=_font(10))
    for i, (label, (xs, ys)) in enumerate(series.items()):
        colour = colours[i % len(colours)]
        line = [(sx(x), sy(y)) for x, y in zip(xs, ys) if math.isfinite(y) and (y > 0 or not logy)]
        if len(line) > 1:
            draw.line(line, fill=colour, width=2)
        draw.text((left + 8 + (i % 2) * 230, top + 4 + (i // 2) * 12), label[:36], fill=colour, font=_font(10))
    return save_png(fig, path)

#----------------------------------------------------------------------------
# Tasks and the pool.

@dataclasses.dataclass
class Task:
    """One training run of a claim: module (the paper file), claim id, arm label, seed, train.py args, estimated core-seconds."""
    module: str
    claim: str
    arm: str
    seed: int
    args: list
    est_sec: float
    workdir: str = ''
    extra: dict = dataclasses.field(default_factory=dict)

def _init_worker():
    os.environ['OMP_NUM_THREADS'] = '1'
    os.environ['MKL_NUM_THREADS'] = '1'
    try:
        import torch  # pylint: disable=import-outside-toplevel
        torch.set_num_threads(1)
    except ImportError:
        pass

def _run_task(task):
    module = importlib.import_module(task.module)
    start = time.time()
    try:
        out = module.run(task)
        out = dict(out, core_sec=time.time() - start)
    except Exception as exc:  # pylint: disable=broad-except
        out = dict(error=f'{type(exc).__name__}: {exc}'[-4000:], core_sec=time.time() - start)
    return out

def run_pool(tasks, jobs, log=print):
    """Run tasks (longest first) in `jobs` single-threaded worker processes; returns [(task, result dict)] in task order."""
    order = sorted(range(len(tasks)), key=lambda i: -tasks[i].est_sec)
    results = [None] * len(tasks)
    if jobs <= 1:
        _init_worker()
        for i in order:
            results[i] = _run_task(tasks[i])
            log(_task_line(tasks[i], results[i]))
        return list(zip(tasks, results))
    import multiprocessing  # pylint: disable=import-outside-toplevel
    ctx = multiprocessing.get_context('spawn')
    with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_init_worker) as pool:
        futures = {pool.submit(_run_task, tasks[i]): i for i in order}
        for fut in concurrent.futures.as_completed(futures):
            i = futures[fut]
            results[i] = fut.result()
            log(_task_line(tasks[i], results[i]))
    return list(zip(tasks, results))

def _task_line(task, result):
    shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in result.items() if isinstance(v, (int, float, str)) and k != 'error'}
    if 'error' in result:
        return f'FAILED {task.claim} / {task.arm} / seed {task.seed}: {result["error"][-600:]}'
    return f'{task.claim} / {task.arm} / seed {task.seed}: ' + json.dumps(shown)

def estimate_text(tasks):
    total = sum(t.est_sec for t in tasks)
    return f'{len(tasks)} runs, estimated {total / 60:.1f} core-minutes (single thread; measured on a loaded 2-core machine, an overestimate)'

#----------------------------------------------------------------------------
# The command line shared by every paper file.

@dataclasses.dataclass
class Context:
    """What finish() needs: where results and pictures go, the workdir root, quick or full, the rerun command."""
    out_dir: str
    pictures_dir: str
    quick: bool
    seeds: list
    command: str

def arms_of(done, arm_label, key):
    """An arm dict from the finished runs of one arm: seeds and the values of result key `key` (NaN for failed runs)."""
    runs = sorted(((t.seed, r) for t, r in done if t.arm == arm_label), key=lambda sr: sr[0])
    return arm(arm_label, [s for s, _ in runs], [r.get(key, float('nan')) for _, r in runs])

def rerun_command(module_name, claim_id, seeds):
    if module_name == '__main__':  # run as `python -m experiments.<paper>`: name the file, not __main__
        spec = getattr(sys.modules.get('__main__'), '__spec__', None)
        module_name = spec.name if spec is not None else module_name
    return f'python -m {module_name} --only={claim_id} --seeds={seeds}'

def prepare(module, quick, seeds, only, keep):
    """The module's tasks with their work folders set (under a temporary root unless `keep`)."""
    tasks = module.tasks(quick, seeds, only)
    root = keep or tempfile.mkdtemp(prefix=f'exp-{module.__name__.rsplit(".", 1)[-1]}-')
    for t in tasks:
        t.workdir = os.path.join(root, f'{t.claim}-{re.sub(r"[^A-Za-z0-9_.=-]+", "_", t.arm)}-seed{t.seed}')
    return tasks, root

def finish_all(module, pairs, quick, seeds_text, out_dir, pictures_dir, log=print):
    written = []
    for claim_id in module.CLAIMS:
        done = [(t, r) for t, r in pairs if t.claim == claim_id or claim_id in t.extra.get('also', ())]
        if not done:
            continue
        ctx = Context(out_dir=out_dir, pictures_dir=pictures_dir, quick=quick, seeds=parse_seeds(seeds_text),
                      command=rerun_command(module.__name__, claim_id, seeds_text))
        path = module.finish(claim_id, done, ctx)
        if path:
            written.append(path)
            log(f'wrote {os.path.relpath(path, REPO)}')
    return written

def check_only(module, only):
    names = [n.strip() for n in (only or '').split(',') if n.strip()] or list(module.CLAIMS)
    for n in names:
        if n not in module.CLAIMS:
            raise click.BadParameter(f'--only: unknown claim "{n}"; choose from {", ".join(module.CLAIMS)}')
    return names

def make_main(module_name, default_seeds='0-2'):  # pass the paper file's DEFAULT_SEEDS
    """The click command of a paper file: --jobs --seeds --quick --only --dry-run --out --keep."""
    @click.command(help=f'Run the claims of {module_name} through train.py and write their result JSONs.')
    @click.option('--jobs', type=click.IntRange(min=1), default=1, show_default=True, help='Runs at a time (each one thread)')
    @click.option('--seeds', default=default_seeds, show_default=True, help='Training seeds, e.g. 0-2 or 0,3')
    @click.option('--quick', is_flag=True, help='A tiny version (< 60 s on one core): the machinery only; writes to a temporary folder unless --out')
    @click.option('--only', metavar='CLAIMS', help='Only these claim ids, comma-separated  [default: all]')
    @click.option('--dry-run', is_flag=True, help='Print the runs and the estimated core-minutes; run nothing')
    @click.option('--out', metavar='DIR', help='Results folder  [default: experiments/results; --quick: a temporary folder]')
    @click.option('--pictures', metavar='DIR', help='Pictures folder  [default: docs/reproduction; --quick: inside --out]')
    @click.option('--keep', metavar='DIR', help='Keep the run folders here (default: a temporary folder, deleted)')
    def main(jobs, seeds, quick, only, dry_run, out, pictures, keep):
        module = importlib.import_module(module_name)
        names = check_only(module, only)
        if quick and seeds == default_seeds:
            seeds = str(parse_seeds(seeds)[0])  # the smoke version: one seed unless asked
        seed_list = parse_seeds(seeds)
        tasks, root = prepare(module, quick, seed_list, names, keep)
        if dry_run:
            for t in tasks:
                print(f'{t.claim:28s} {t.arm:34s} seed {t.seed}  ~{t.est_sec:6.0f} s   train.py {" ".join(t.args)}')
            print(estimate_text(tasks))
            if not keep:
                shutil.rmtree(root, ignore_errors=True)
            return
        out_dir = out or (tempfile.mkdtemp(prefix='exp-quick-') if quick else RESULTS_DIR)
        pictures_dir = pictures or (os.path.join(out_dir, 'pictures') if (quick or out) else PICTURES_DIR)
        print(estimate_text(tasks), flush=True)
        started = time.time()
        pairs = run_pool(tasks, jobs, log=lambda s: print(s, flush=True))
        finish_all(module, pairs, quick, seeds, out_dir, pictures_dir)
        print(f'done in {time.time() - started:.0f} s; results in {out_dir}')
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
        failed = [t for t, r in pairs if 'error' in r]
        if failed:
            raise click.ClickException(f'{len(failed)} of {len(pairs)} runs failed (see FAILED lines above)')
    return main

#----------------------------------------------------------------------------
