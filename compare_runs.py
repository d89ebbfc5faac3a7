"""Put training runs side by side in one self-contained HTML page: options that differ, status, metric and
training curves (SVG), the newest image grids, and each prior's own pictures.

    python compare_runs.py runs --out=report.html
    python compare_runs.py runs/00000-* runs/00003-* --out=report.html --stats='Loss/G/|Prior/'

Each RUN is a training run folder or an output folder (every run folder in it, as `--network` understands
them: sub-folders whose names start with a run number). The page embeds every picture as a data URI, so it
opens without network access and can be mailed around. Running the command again on a growing run rewrites the
page atomically (a browser never sees half a file)."""

import base64
import glob
import html
import io
import json
import math
import os
import re
import statistics
import time

import click
import PIL.Image

import dnnlib
from dnnlib import cli
from training import toy_lab

#----------------------------------------------------------------------------
# What a run folder holds (training/training_loop.py, train.py, metrics/metric_main.py, priors/, toy lab).

RUN_MARKERS = ('training_options.json', 'stats.jsonl', 'log.txt')
SNAPSHOT_RE = re.compile(r'network-snapshot-(\d+)\.pkl')  # as legacy.resolve_network_pkl reads run folders
RUN_NUMBER_RE = re.compile(r'^(\d+)')                       # run folders inside an --outdir: 00000-..., 00001-...
FAKES_RE = re.compile(r'fakes(\d+)\.png')
PICTURE_RE = re.compile(r'(?P<group>.*?)[-_]?(?P<kimg>\d{6})?\.png')
DEFAULT_STATS = r'^(Loss/(G|D)/|Loss/(r1|pl)_penalty$|Loss/scores/|Loss/signs/real$|Prior/|Progress/augment$)'
PALETTE = ('#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22')
DASHES = ('', '6,3', '2,2', '8,3,2,3')
MAX_OPTION_COLUMNS = 8  # more options that differ go into a table of their own (options as rows)

class RunSpecError(ValueError):
    pass

#----------------------------------------------------------------------------
# Finding runs.

def is_run_folder(path):
    if not os.path.isdir(path):
        return False
    names = os.listdir(path)
    return any(name in RUN_MARKERS for name in names) or any(SNAPSHOT_RE.fullmatch(name) for name in names)

# Run folders named by one RUN argument: itself, its numbered run sub-folders, or what a glob matches.
def find_runs(spec):
    if is_run_folder(spec):
        return [spec]
    if os.path.isdir(spec):
        runs = []
        for name in os.listdir(spec):
            match = RUN_NUMBER_RE.match(name)
            if match is not None and is_run_folder(os.path.join(spec, name)):
                runs.append((int(match.group(1)), name))
        if not runs:
            raise RunSpecError(f'"{spec}" is neither a run folder (no {", ".join(RUN_MARKERS)}) nor an output folder with '
                               f'numbered run folders in it; give a folder that train.py --outdir wrote')
        return [os.path.join(spec, name) for _, name in sorted(runs)]
    if glob.has_magic(spec):
        matches = sorted(glob.glob(os.path.expanduser(spec)))
        if not matches:
            raise RunSpecError(f'"{spec}" matches no folder; give a run folder or an output folder')
        runs = []
        for match in matches:  # folders that are neither run folders nor outdirs are passed over
            try:
                runs += find_runs(match) if os.path.isdir(match) else []
            except RunSpecError:
                pass
        if not runs:
            raise RunSpecError(f'"{spec}" matches no run folder ({len(matches)} paths, none holding {", ".join(RUN_MARKERS)})')
        return runs
    raise RunSpecError(f'run folder not found: "{spec}"; give a run folder or the --outdir of train.py')

#----------------------------------------------------------------------------
# Reading the files of a run; everything tolerates a run that is still being written.

def read_jsonl(path):
    records = []
    if not os.path.isfile(path):
        return records
    with open(path, 'rt', encoding='utf-8', errors='replace') as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line being written right now, or a damaged one
            if isinstance(record, dict):
                records.append(record)
    return records

# A number from stats.jsonl / metric-*.jsonl: floats, bare NaN, or the strict-JSON strings "NaN", "Infinity".
def to_float(value):
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and value in ('NaN', 'Infinity', '-Infinity', 'nan', 'inf', '-inf'):
        return float(value)
    return None

def is_png(path):
    try:
        with open(path, 'rb') as f:
            return f.read(8) == b'\x89PNG\r\n\x1a\n'
    except OSError:
        return False

# A PNG file as a data URI; crop = (width, height) keeps the top-left corner (of an image grid), and images
# larger than max_side pixels are scaled down, so that the page stays small.
def data_uri(path, crop=None, max_side=1200):
    with open(path, 'rb') as f:
        data = f.read()
    try:
        with PIL.Image.open(io.BytesIO(data)) as image:
            changed = False
            if crop is not None and (image.width > crop[0] or image.height > crop[1]):
                image = image.crop((0, 0, min(crop[0], image.width), min(crop[1], image.height)))
                changed = True
            if max(image.size) > max_side:
                scale = max_side / max(image.size)
                image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), PIL.Image.LANCZOS)
                changed = True
            if changed:
                buffer = io.BytesIO()
                image.save(buffer, format='PNG')
                data = buffer.getvalue()
    except (OSError, ValueError, PIL.Image.DecompressionBombError):
        pass  # embedded as it is; the browser decides
    return 'data:image/png;base64,' + base64.b64encode(data).decode('ascii')

def format_duration(seconds):
    if seconds is None or not math.isfinite(seconds):
        return '—'
    seconds = int(round(seconds))
    if seconds < 60:
        return f'{seconds}s'
    if seconds < 3600:
        return f'{seconds // 60}m {seconds % 60:02d}s'
    if seconds < 86400:
        return f'{seconds // 3600}h {seconds % 3600 // 60:02d}m'
    return f'{seconds // 86400}d {seconds % 86400 // 3600:02d}h'

def format_number(value):
    if value is None:
        return '—'
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value == 0:
            return '0'
        if abs(value) >= 1e5 or abs(value) < 1e-3:
            return f'{value:.3e}'
        return f'{value:.4g}'
    return str(value)

# The prior list of a run's options (train.py writes loss_kwargs.prior_kwargs: a list of dicts with a name).
def prior_list(options):
    priors = (options.get('loss_kwargs') or {}).get('prior_kwargs') or []
    if isinstance(priors, dict):
        priors = [priors]
    return [p for p in priors if isinstance(p, dict)]

# training_options.json as flat {dotted key: JSON text}; each prior's options under "prior:<name>.<key>".
def flatten_options(options):
    flat = dict()
    def walk(value, key):
        if isinstance(value, dict) and value:
            for k, v in value.items():
                walk(v, f'{key}.{k}' if key else str(k))
        else:
            flat[key] = json.dumps(value, sort_keys=True)
    for key, value in options.items():
        if key == 'run_dir':
            continue
        if key == 'loss_kwargs' and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k != 'prior_kwargs'}
        walk(value, key)
    for prior in prior_list(options):
        name = str(prior.get('name', 'prior'))
        for k, v in prior.items():
            if k != 'name':
                walk(v, f'prior:{name}.{k}')
    return flat

#----------------------------------------------------------------------------
# One run: what its files say.

class Run:
    def __init__(self, path, now=None):
        self.path = path
        self.name = os.path.basename(os.path.normpath(path))
        self.notes = []
        now = time.time() if now is None else now
        names = sorted(os.listdir(path))

        # Options.
        self.options = dict()
        options_path = os.path.join(path, 'training_options.json')
        if os.path.isfile(options_path):
            try:
                with open(options_path, 'rt', encoding='utf-8') as f:
                    self.options = json.load(f)
            except (OSError, ValueError) as err:
                self.notes.append(f'training_options.json unreadable ({err})')
        else:
            self.notes.append('no training_options.json')
        self.flat_options = flatten_options(self.options)
        self.priors = [str(p.get('name', '?')) for p in prior_list(self.options)]
        data_kwargs = self.options.get('training_set_kwargs') or {}
        g_class = (self.options.get('G_kwargs') or {}).get('class_name') or ''
        self.is_toy = toy_lab.is_toy_run(self.options)
        self.total_kimg = to_float(self.options.get('total_kimg'))
        self.resolution = data_kwargs.get('resolution') if isinstance(data_kwargs.get('resolution'), int) else None

        # Training statistics: one record per tick, {name: (num, mean)}.
        self.ticks = []
        for record in read_jsonl(os.path.join(path, 'stats.jsonl')):
            stats = dict()
            for key, value in record.items():
                if isinstance(value, dict):
                    stats[key] = (value.get('num'), to_float(value.get('mean')))
            self.ticks.append(dict(stats=stats, timestamp=to_float(record.get('timestamp'))))
        last = self.ticks[-1]['stats'] if self.ticks else dict()
        self.kimg = self._last_stat(last, 'Progress/kimg')
        self.wall_sec = self._last_stat(last, 'Timing/total_sec')
        per_tick = [t['stats'].get('Timing/sec_per_kimg', (0, None))[1] for t in self.ticks[1:]]  # tick 0 is start-up
        per_tick = [v for v in per_tick if v is not None and math.isfinite(v)]
        self.sec_per_kimg = statistics.median(per_tick) if per_tick else None

        # Metrics: {result name: [(kimg or None, value)]} from every metric-*.jsonl, in file order.
        self.metrics = dict()
        for name in names:
            if not (name.startswith('metric-') and name.endswith('.jsonl')):
                continue
            for record in read_jsonl(os.path.join(path, name)):
                results = record.get('results')
                if not isinstance(results, dict):
                    continue
                match = SNAPSHOT_RE.search(str(record.get('snapshot_pkl') or ''))
                kimg = int(match.group(1)) if match else None
                for key, value in results.items():
                    self.metrics.setdefault(key, []).append((kimg, to_float(value)))

        # Pictures: reals, fakes_init, fakes<kimg>, and every other <group><kimg>.png / <group>.png.
        self.reals = None
        self.fakes = []     # [(kimg or None for fakes_init, path)]
        self.pictures = dict()
        for name in names:
            full = os.path.join(path, name)
            if name.startswith('.') or not name.endswith('.png') or not os.path.isfile(full):
                continue
            if not is_png(full):
                self.notes.append(f'{name} is not a readable PNG; left out')
                continue
            if name == 'reals.png':
                self.reals = full
            elif name == 'fakes_init.png':
                self.fakes.insert(0, (None, full))
            elif (match := FAKES_RE.fullmatch(name)) is not None:
                self.fakes.append((int(match.group(1)), full))
            else:
                match = PICTURE_RE.fullmatch(name)
                kimg = int(match.group('kimg')) if match.group('kimg') else None
                group = match.group('group') or name[:-4]
                self.pictures.setdefault(group, []).append((kimg, full))
        self.fakes.sort(key=lambda item: -1 if item[0] is None else item[0])
        for series in self.pictures.values():
            series.sort(key=lambda item: -1 if item[0] is None else item[0])
        if self.kimg is None:
            known = [k for k, _ in self.fakes if k is not None] + [int(m.group(1)) for n in names if (m := SNAPSHOT_RE.fullmatch(n))]
            self.kimg = float(max(known)) if known else None

        self.status, self.status_detail = self._status(path, names, now)

    @staticmethod
    def _last_stat(stats, name):
        num, mean = stats.get(name, (0, None))
        return mean if num else None

    # running / finished / stopped early / diverged, with a short reason.
    def _status(self, path, names, now):
        log = ''
        try:
            with open(os.path.join(path, 'log.txt'), 'rt', encoding='utf-8', errors='replace') as f:
                log = f.read()
        except OSError:
            pass
        session = log.rsplit('Loading training set...', 1)[-1]  # log.txt is appended to by each resume
        lines = [line.strip() for line in session.splitlines()]
        last = self.ticks[-1]['stats'] if self.ticks else dict()
        bad = [name for name, (num, mean) in last.items()
               if num and mean is not None and not math.isfinite(mean) and name.split('/')[0] in ('Loss', 'Prior')]
        if bad or 'training diverged' in session:
            where = f' at kimg {format_number(self.kimg)}' if self.kimg is not None else ''
            return 'diverged', (f'non-finite {", ".join(bad[:3])}{where}' if bad else f'training diverged{where}')
        if 'Aborting...' in lines:
            return 'stopped early', f'aborted at kimg {format_number(self.kimg)}'
        if 'Exiting...' in lines:
            return 'finished', f'{format_number(self.kimg)} kimg'
        newest = max((os.path.getmtime(os.path.join(path, n)) for n in names if not n.startswith('.')), default=0)
        tick_sec = self._last_stat(last, 'Timing/sec_per_tick') or 0
        maintenance = self._last_stat(last, 'Timing/maintenance_sec') or 0
        window = max(600.0, 3 * (tick_sec + maintenance))  # silence longer than this: the process is gone
        if now - newest < window:
            return 'running', f'updated {format_duration(now - newest)} ago'
        target = f' of {format_number(self.total_kimg)}' if self.total_kimg is not None else ''
        return 'stopped early', f'at kimg {format_number(self.kimg)}{target}, no update for {format_duration(now - newest)}'

    # Top-left corner of an image grid holding tiles x tiles images; () = the whole grid (still a grid picture).
    def grid_crop(self, tiles):
        return (self.resolution * tiles, self.resolution * tiles) if tiles and self.resolution else ()

    def stat_series(self, name):
        points = []
        for tick in self.ticks:
            kimg = tick['stats'].get('Progress/kimg', (0, None))[1]
            num, mean = tick['stats'].get(name, (0, None))
            if kimg is not None and num and mean is not None:
                points.append((kimg, mean))
        return points

#----------------------------------------------------------------------------
# The options that differ between runs: keys whose values are not all equal. A prior's own options are left
# out for runs without that prior (the prior column says so already).

def option_differences(runs):
    keys = []
    for run in runs:
        keys += [key for key in run.flat_options if key not in keys]
    result = []
    for key in keys:
        prior = key[len('prior:'):].split('.', 1)[0] if key.startswith('prior:') else None
        values = [run.flat_options.get(key) for run in runs if prior is None or prior in run.priors]
        if len(set(values)) > 1:
            result.append(key)
    return result

#----------------------------------------------------------------------------
# SVG line plots written directly.

def nice_ticks(lo, hi, count=5):
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    value = first
    while value <= hi + step * 1e-9:
        ticks.append(0.0 if abs(value) < step * 1e-9 else value)
        value += step
    return ticks

def _esc(text):
    return html.escape(str(text), quote=True)

def svg_plot(title, series, x_label='kimg', width=460, height=260):
    """series: [dict(label, color, dash, points=[(x, y)])]; non-finite y breaks the line and is marked with a red x."""
    left, right, top, bottom = 62, 12, 26, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    finite = [(x, y) for s in series for x, y in s['points'] if x is not None and y is not None and math.isfinite(x) and math.isfinite(y)]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">',
           f'<title>{_esc(title)}</title>',
           f'<text x="{width / 2:.1f}" y="16" text-anchor="middle" class="ptitle">{_esc(title)}</text>']
    if not finite:
        out.append(f'<text x="{width / 2:.1f}" y="{height / 2:.1f}" text-anchor="middle" class="empty">no finite values</text></svg>')
        return ''.join(out)
    xs = [x for x, _ in finite]
    ys = [y for _, y in finite]
    log_y = min(ys) > 0 and max(ys) / min(ys) > 1e3
    fy = (lambda y: math.log10(y)) if log_y else (lambda y: y)
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(fy(y) for y in ys), max(fy(y) for y in ys)
    if x1 == x0:
        x0, x1 = x0 - 0.5, x1 + 0.5
    if y1 == y0:
        pad = abs(y0) * 0.1 or 1.0
        y0, y1 = y0 - pad, y1 + pad
    else:
        pad = (y1 - y0) * 0.05
        y0, y1 = y0 - pad, y1 + pad
    px = lambda x: left + (x - x0) / (x1 - x0) * plot_w
    py = lambda y: top + (1 - (fy(y) - y0) / (y1 - y0)) * plot_h

    # Axes and grid.
    out.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" class="frame"/>')
    for t in nice_ticks(x0, x1):
        out.append(f'<line x1="{px(t):.1f}" y1="{top}" x2="{px(t):.1f}" y2="{top + plot_h}" class="grid"/>'
                   f'<text x="{px(t):.1f}" y="{top + plot_h + 14}" text-anchor="middle">{format_number(t)}</text>')
    for t in nice_ticks(y0, y1):
        label = format_number(10 ** t) if log_y else format_number(t)
        y = top + (1 - (t - y0) / (y1 - y0)) * plot_h
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" class="grid"/>'
                   f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
    out.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 4}" text-anchor="middle">{_esc(x_label)}{" (y: log scale)" if log_y else ""}</text>')

    # One polyline per finite stretch; markers when points are few; non-finite values as a red x at the top.
    for s in series:
        color, dash = s['color'], s.get('dash', '')
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ''
        stretch = []
        stretches = [stretch]
        points = [(x, y) for x, y in s['points'] if x is not None and y is not None]
        for x, y in points:
            if math.isfinite(y):
                stretch.append((x, y))
            else:
                stretch = []
                stretches.append(stretch)
                out.append(f'<text x="{px(x):.1f}" y="{top + 10}" text-anchor="middle" class="nan"><title>{_esc(s["label"])}: '
                           f'{y} at kimg {format_number(x)}</title>×</text>')
        for part in stretches:
            if len(part) > 1:
                coords = ' '.join(f'{px(x):.1f},{py(y):.1f}' for x, y in part)
                out.append(f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="1.6"{dash_attr}/>')
        if len(points) <= 40:
            for x, y in points:
                if math.isfinite(y):
                    out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.6" fill="{color}"><title>{_esc(s["label"])}: '
                               f'{format_number(y)} at kimg {format_number(x)}</title></circle>')
    out.append('</svg>')
    return ''.join(out)

#----------------------------------------------------------------------------
# The page.

CSS = '''
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em} h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:.85em} th,td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f3f3f3} td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.status-running{color:#1f77b4;font-weight:bold} .status-finished{color:#2ca02c;font-weight:bold}
.status-diverged{color:#d62728;font-weight:bold} .status-stopped{color:#ff7f0e;font-weight:bold}
.swatch{display:inline-block;width:.9em;height:.9em;margin-right:.3em;vertical-align:middle;border-radius:2px}
.plots{display:flex;flex-wrap:wrap;gap:10px}
svg.plot{border:1px solid #ddd;background:#fff;font-size:10px}
svg.plot .frame{fill:none;stroke:#999} svg.plot .grid{stroke:#eee} svg.plot .ptitle{font-size:12px;font-weight:bold}
svg.plot .nan{fill:#d62728;font-size:14px;font-weight:bold} svg.plot .empty{fill:#999}
.row{display:flex;flex-wrap:wrap;gap:14px;align-items:flex-start}
figure{margin:0} figcaption{font-size:.8em;color:#555;max-width:420px}
img.pic{max-width:min(100%,900px);border:1px solid #ddd} img.grid{max-width:420px;image-rendering:pixelated}
td.name{white-space:nowrap}
.series{margin:.5em 0 1.2em 0} .series .strip{display:flex;flex-wrap:wrap;gap:6px}
.series .strip img.pic{max-width:200px}
body.js .series .strip figure{display:none} body.js .series .strip figure.on{display:block}
body.js .series .strip img.pic{max-width:min(100%,900px)} body.js .series .strip img.grid{max-width:420px}
.legend{font-size:.85em;margin:.3em 0} .note{color:#888;font-size:.85em}
'''

SCRIPT = '''
document.body.classList.add('js');
document.querySelectorAll('.series').forEach(function(series){
  var figs = series.querySelectorAll('.strip figure'); var slider = series.querySelector('input');
  function show(i){ figs.forEach(function(f, j){ f.classList.toggle('on', j == i); });
                    series.querySelector('.pos').textContent = figs[i].dataset.label; }
  slider.addEventListener('input', function(){ show(+slider.value); }); show(+slider.value);
});
'''

def _status_class(status):
    return 'status-' + status.split()[0]

# One picture with its caption; crop: see data_uri (image grids: a corner of TILES x TILES images).
def _figure(path, caption, extra='', crop=None):
    grid = crop is not None
    try:
        uri = data_uri(path, crop=crop or None)
    except OSError as err:  # removed or unreadable since the folder was listed
        return f'<figure{extra}><p class="note">{_esc(os.path.basename(path))}: cannot read ({_esc(err.strerror or err)})</p><figcaption>{_esc(caption)}</figcaption></figure>'
    return (f'<figure{extra}><img class="pic{" grid" if grid else ""}" src="{uri}" alt="{_esc(caption)}">'
            f'<figcaption>{_esc(caption)}</figcaption></figure>')

def _kimg_label(kimg, first_label='init'):
    return first_label if kimg is None else f'kimg {kimg}'

# Evenly spaced picks from a series (first and last always kept).
def thin(items, limit):
    if len(items) <= limit:
        return list(items)
    if limit == 1:
        return [items[-1]]
    picks = sorted({round(i * (len(items) - 1) / (limit - 1)) for i in range(limit)})
    return [items[i] for i in picks]

# A slider (with script) or a row of pictures (without) over one series of one run.
def _series(run, items, first_label, limit, crop=None):
    items = thin(items, limit)
    figures = ''.join(_figure(path, f'{run.name}: {_kimg_label(kimg, first_label)}', f' data-label="{_esc(_kimg_label(kimg, first_label))}"', crop=crop)
                      for kimg, path in items)
    return (f'<div class="series"><div><b>{_esc(run.name)}</b> <input type="range" min="0" max="{len(items) - 1}" value="{len(items) - 1}" '
            f'aria-label="snapshot"> <span class="pos"></span></div><div class="strip">{figures}</div></div>')

def _legend(runs):
    return '<div class="legend">' + ' &nbsp; '.join(
        f'<span class="swatch" style="background:{run.color}"></span>{_esc(run.name)}' for run in runs) + '</div>'

def render_html(runs, stats_regex=DEFAULT_STATS, max_snapshots=12, title='Training runs', command=None, tiles=8):
    stats_re = re.compile(stats_regex)
    for i, run in enumerate(runs):
        run.color = PALETTE[i % len(PALETTE)]
        run.dash = DASHES[(i // len(PALETTE)) % len(DASHES)]
    differing = option_differences(runs) if len(runs) > 1 else []
    metric_names = []
    for run in runs:
        metric_names += [name for name in run.metrics if name not in metric_names]

    parts = [f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_esc(title)}</title>',
             f'<style>{CSS}</style></head><body><h1>{_esc(title)}</h1>',
             f'<p class="note">Written {time.strftime("%Y-%m-%d %H:%M:%S")} by compare_runs.py'
             + (f': <code>{_esc(command)}</code>' if command else '') + '. Run the command again to update this page.</p>']

    # The table of runs.
    columns = differing if len(differing) <= MAX_OPTION_COLUMNS else []  # many: a table of their own below
    head = ['run', 'status', 'prior(s)'] + columns + ['kimg', 'wall time', 'sec/kimg'] + metric_names
    parts.append('<h2 id="runs">Runs</h2><table id="runs-table"><thead><tr>' +
                 ''.join(f'<th>{_esc(h)}</th>' for h in head) + '</tr></thead><tbody>')
    for run in runs:
        cells = [f'<td class="name"><span class="swatch" style="background:{run.color}"></span><span title="{_esc(run.path)}">{_esc(run.name)}</span>'
                 + (' <small>(toy)</small>' if run.is_toy else '')
                 + ''.join(f'<br><small class="note">{_esc(n)}</small>' for n in run.notes) + '</td>',
                 f'<td class="{_status_class(run.status)}" data-status="{_esc(run.status)}">{_esc(run.status)}<br><small>{_esc(run.status_detail)}</small></td>',
                 f'<td>{_esc(", ".join(run.priors) or "none")}</td>']
        for key in columns:
            value = run.flat_options.get(key)
            cells.append(f'<td data-option="{_esc(key)}">{_esc(value if value is not None else "—")}</td>')
        kimg = format_number(run.kimg) + (f' / {format_number(run.total_kimg)}' if run.total_kimg is not None else '')
        cells += [f'<td class="num">{kimg}</td>', f'<td class="num">{format_duration(run.wall_sec)}</td>',
                  f'<td class="num">{format_number(run.sec_per_kimg)}</td>']
        for name in metric_names:
            values = run.metrics.get(name)
            if values:
                kimg_m, value = values[-1]
                at = f'<br><small>kimg {kimg_m}</small>' if kimg_m is not None else ''
                cells.append(f'<td class="num" data-metric="{_esc(name)}">{format_number(value)}{at}</td>')
            else:
                cells.append(f'<td class="num" data-metric="{_esc(name)}">—</td>')
        parts.append('<tr>' + ''.join(cells) + '</tr>')
    parts.append('</tbody></table>')
    if differing and not columns:
        parts.append('<h3>Options that differ</h3><table id="options-table"><thead><tr><th>option</th>'
                     + ''.join(f'<th><span class="swatch" style="background:{run.color}"></span>{_esc(run.name)}</th>' for run in runs)
                     + '</tr></thead><tbody>')
        for key in differing:
            values = [run.flat_options.get(key) for run in runs]
            parts.append(f'<tr><td>{_esc(key)}</td>' + ''.join(f'<td data-option="{_esc(key)}">{_esc(v if v is not None else "—")}</td>'
                                                             for v in values) + '</tr>')
        parts.append('</tbody></table>')
    if len(runs) > 1:
        parts.append(f'<p class="note">Options: the entries of training_options.json that differ between the runs '
                     f'({len(differing)} of {len(set(k for r in runs for k in r.flat_options))}); sec/kimg is the median over ticks after the first.</p>')

    # Metric curves.
    parts.append('<h2 id="metrics">Metrics</h2>')
    if metric_names:
        parts.append(_legend(runs) + '<div class="plots">')
        for name in metric_names:
            series = [dict(label=run.name, color=run.color, dash=run.dash, points=[(k, v) for k, v in run.metrics.get(name, []) if k is not None])
                      for run in runs if name in run.metrics]
            parts.append(f'<div data-plot="metric:{_esc(name)}">{svg_plot(name, series)}</div>')
        parts.append('</div>')
    else:
        parts.append('<p class="note">No metric-*.jsonl in any run (train.py --metrics=..., or calc_metrics.py --network=RUN).</p>')

    # Training curves.
    stat_names = []
    for run in runs:
        for tick in run.ticks:
            stat_names += [name for name in tick['stats'] if name not in stat_names and stats_re.search(name)]
    parts.append(f'<h2 id="stats">Training curves</h2><p class="note">stats.jsonl entries matching <code>{_esc(stats_regex)}</code> '
                 f'(--stats=REGEX), per tick.</p>')
    if stat_names:
        parts.append(_legend(runs) + '<div class="plots">')
        for name in stat_names:
            series = [dict(label=run.name, color=run.color, dash=run.dash, points=run.stat_series(name)) for run in runs]
            series = [s for s in series if s['points']]
            parts.append(f'<div data-plot="stat:{_esc(name)}">{svg_plot(name, series)}</div>')
        parts.append('</div>')
    else:
        parts.append('<p class="note">No statistics match.</p>')

    # Newest fakes side by side, then a slider over each run's snapshots.
    parts.append('<h2 id="fakes">Generated images</h2><div class="row">')
    for run in runs:
        if run.is_toy:  # 2-D points: fakes*.png hold nothing to look at; the toy pictures below show the samples
            parts.append(f'<p class="note">{_esc(run.name)}: toy run, see its toy pictures below</p>')
        elif run.fakes:
            kimg, path = run.fakes[-1]
            parts.append(_figure(path, f'{run.name}: newest, {_kimg_label(kimg)}', crop=run.grid_crop(tiles)))
        else:
            parts.append(f'<p class="note">{_esc(run.name)}: no fakes*.png yet</p>')
    parts.append('</div><h3>Over the snapshots</h3>')
    for run in runs:
        if len(run.fakes) > 1 and not run.is_toy:
            parts.append(_series(run, run.fakes, 'init', max_snapshots, crop=run.grid_crop(tiles)))

    # Each prior's and the toy lab's own pictures, one section per kind.
    groups = []
    for run in runs:
        groups += [g for g in run.pictures if g not in groups]
    groups.sort(key=lambda g: (not g.startswith('toy'), g))
    if groups:
        parts.append('<h2 id="pictures">Prior and toy pictures</h2>')
    for group in groups:
        parts.append(f'<h3>{_esc(group)}</h3><div class="row">')
        for run in runs:
            items = run.pictures.get(group)
            if items and len(items) == 1:
                parts.append(_figure(items[0][1], f'{run.name}: {_kimg_label(items[0][0], "")}'.rstrip(': ')))
        parts.append('</div>')
        for run in runs:
            items = run.pictures.get(group)
            if items and len(items) > 1:
                parts.append(_series(run, items, '', max_snapshots))

    # Real images, once per distinct training set.
    reals = [run for run in runs if run.reals and not run.is_toy]
    if reals:
        parts.append('<h2 id="reals">Training data</h2><div class="row">')
        seen = set()
        for run in reals:
            key = json.dumps(run.options.get('training_set_kwargs'), sort_keys=True)
            if key not in seen:
                seen.add(key)
                parts.append(_figure(run.reals, f'{run.name}: reals.png', crop=run.grid_crop(tiles)))
        parts.append('</div>')

    parts.append(f'<script>{SCRIPT}</script></body></html>\n')
    return ''.join(parts)

#----------------------------------------------------------------------------

def build_report(run_specs, out, stats_regex=DEFAULT_STATS, max_snapshots=12, title='Training runs', command=None, now=None, tiles=8):
    """Find the runs, write the page atomically to `out`; returns the list of Run objects."""
    paths = []
    for spec in run_specs:
        for path in find_runs(spec):
            if os.path.realpath(path) not in [os.path.realpath(p) for p in paths]:
                paths.append(path)
    runs = [Run(path, now=now) for path in paths]
    page = render_html(runs, stats_regex=stats_regex, max_snapshots=max_snapshots, title=title, command=command, tiles=tiles)
    with dnnlib.util.atomic_write(out, 'w', encoding='utf-8') as f:
        f.write(page)
    return runs

class Regex(click.ParamType):
    name = 'REGEX'

    def convert(self, value, param, ctx):
        try:
            re.compile(value)
        except re.error as err:
            self.fail(f'"{value}" is not a regular expression ({err}); e.g. --stats="Loss/G/|Prior/"', param, ctx)
        return value

@click.command()
@click.argument('runs', nargs=-1, required=True, metavar='RUN...')
@click.option('--out', help='HTML file to write', required=True, metavar='FILE')
@click.option('--stats', 'stats_regex', type=Regex(), default=DEFAULT_STATS, show_default=True,
              help='Training curves: stats.jsonl names matching this regular expression')
@click.option('--max-snapshots', type=click.IntRange(min=1), default=12, show_default=True,
              help='At most this many snapshots per run in the sliders (evenly spaced; first and newest kept)')
@click.option('--tiles', type=click.IntRange(min=0), default=8, show_default=True,
              help='Image grids (fakes, reals): show the top-left TILES x TILES images at full size; 0 = the whole grid')
@click.option('--title', default='Training runs', show_default=True, help='Page title')
def main(runs, out, stats_regex, max_snapshots, tiles, title):
    """Compare training runs in one self-contained HTML page.

    \b
    RUN is a run folder (runs/00003-...) or an --outdir holding run folders (all of them).
    Examples:
      python compare_runs.py runs --out=report.html
      python compare_runs.py runs/00000-* runs/00001-* --out=report.html --stats='Loss/|Prior/'
    """
    cli.check_output_file(out, '--out')
    try:
        found = build_report(runs, out, stats_regex=stats_regex, max_snapshots=max_snapshots, title=title, tiles=tiles,
                             command='python compare_runs.py ' + ' '.join(runs) + f' --out={out}')
    except RunSpecError as err:
        raise click.ClickException(f'RUN: {err}') from err
    for run in found:
        print(f'{run.name}: {run.status} ({run.status_detail})')
    print(f'Wrote {out} ({len(found)} run{"s" if len(found) != 1 else ""})')

if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
