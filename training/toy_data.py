"""Toy lab data: 2-D Gaussian mixtures (rings, grids, imbalanced rings) and user point sets, served through the normal `Dataset` interface.

A point travels through the loop as a tiny "image" of shape [2, 1, 1]: two
channels (x and y) at resolution 1. Unlike image datasets, whose items are
uint8 pixels in [0, 255], toy items are float32 coordinates in data units
(the generator's output space); the loop passes float items through unchanged
(see training_loop._fetch_batch), so no quantisation happens anywhere.

Data specs (the `path` argument, also train.py's --data):

    toy:ring8                     8 modes on a circle, radius 2, std 0.02 (Metz et al. 2017)
    toy:ring6                     6 modes on a circle, radius 5, std 0.1 (Che et al. 2017, App. C)
    toy:grid25                    5 x 5 grid at {-4, -2, 0, 2, 4}^2, std 0.05
    toy:ring8,rare=0.02           the same ring with mode 0 at 2 % of the points
    toy:ring8,radius=0.8,std=0.1,n=50000,seed=3,rare=0.05,rare_mode=2
    points.npy / points.csv       your own N x 2 point set

Options of the built-in sets: radius (rings), spacing (grid), std, n (number of
points, default 10000), seed (default 0), rare (fraction of the rare mode;
None = all modes equally likely), rare_mode (its index, default 0). Mode
counts are exact (largest remainder), so the empirical mode frequencies equal
the true ones up to one point.

A user point set is an N x 2 array saved with numpy.save (.npy) or as text
(.csv: two comma-separated numbers per line, an optional header line). Its
true modes are optional: a side file `<file without extension>.modes.json`
holding {"centres": [[x, y], ...], "stds": [s, ...] or s, "weights": [...]}
(weights optional: then the frequencies of the nearest centres in the data)
gives the toy metrics and pictures their ground truth.
"""

import json
import os

import numpy as np
import torch

import dnnlib
from training.dataset import Dataset, DatasetError

#----------------------------------------------------------------------------
# The true modes of a toy set: isotropic Gaussians. centres float64 [K, 2],
# stds float64 [K], weights float64 [K] (sum 1).

class ToyModes:
    def __init__(self, centres, stds, weights=None):
        centres = _real_array(centres, 'centres')
        if centres.ndim != 2 or centres.shape[1] != 2 or centres.shape[0] < 1:
            raise ValueError(f'toy modes: centres must be a K x 2 list of points, got shape {list(centres.shape)}')
        if not np.all(np.isfinite(centres)) or np.abs(centres).max() > MAX_COORDINATE:
            raise ValueError(f'toy modes: centres must be finite numbers within +-{MAX_COORDINATE:g}, got {centres.tolist()}')
        num = centres.shape[0]
        stds = _real_array(stds, 'stds')
        if stds.ndim > 1 or (stds.ndim == 1 and stds.shape[0] != num):
            raise ValueError(f'toy modes: stds must be one number or one per centre; got {stds.size} stds for {num} centres '
                             f'(the lengths must match)')
        stds = np.broadcast_to(stds, [num]).copy()
        if not np.all(np.isfinite(stds)) or not np.all(stds > 0) or stds.max() > MAX_COORDINATE:
            raise ValueError(f'toy modes: every std must be a finite number > 0 (at most {MAX_COORDINATE:g}), got {stds.tolist()}')
        weights = np.full([num], 1 / num) if weights is None else _real_array(weights, 'weights')
        if weights.shape != (num,):
            raise ValueError(f'toy modes: weights must be one per centre; got {weights.size} weights for {num} centres '
                             f'(the lengths must match)')
        if not np.all(np.isfinite(weights)) or np.any(weights < 0) or not weights.sum() > 0:
            raise ValueError(f'toy modes: weights must be {num} finite non-negative numbers with a positive sum, got {weights.tolist()}')
        self.centres, self.stds, self.weights = centres, stds, weights / weights.sum()

    @property
    def num_modes(self):
        return self.centres.shape[0]

    def as_dict(self):
        return dict(centres=self.centres.tolist(), stds=self.stds.tolist(), weights=self.weights.tolist())

# Numbers of a modes description as a float64 array; refuses strings, booleans and complex numbers.
def _real_array(values, what):
    try:
        array = np.asarray(values)
    except (ValueError, TypeError) as err:
        raise ValueError(f'toy modes: {what} must be numbers ({err})') from None
    if array.dtype.kind not in 'iuf':
        raise ValueError(f'toy modes: {what} must be real numbers, got {array.tolist()!r}')
    return array.astype(np.float64)

#----------------------------------------------------------------------------
# Bounds. Coordinates travel as float32 (the networks' dtype): beyond MAX_COORDINATE they lose all precision
# long before they overflow. Each point costs about BYTES_PER_POINT bytes while a set is drawn
# (float64 points and noise, float32 copy, int64 labels), which bounds n.

MAX_COORDINATE = 1e6
BYTES_PER_POINT = 48
MAX_POINTS = 50_000_000

#----------------------------------------------------------------------------
# The built-in sets: name -> (default options, builder(options) -> ToyModes).

def _ring(num_modes, radius, std):
    angles = 2 * np.pi * np.arange(num_modes) / num_modes
    return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1), std

def _grid(side, spacing, std):
    ticks = (np.arange(side) - (side - 1) / 2) * spacing
    xx, yy = np.meshgrid(ticks, ticks, indexing='xy')
    return np.stack([xx.ravel(), yy.ravel()], axis=1), std

TOY_SETS = {
    'ring8':  (dict(radius=2.0, std=0.02),  lambda o: _ring(8, o['radius'], o['std'])),
    'ring6':  (dict(radius=5.0, std=0.1),   lambda o: _ring(6, o['radius'], o['std'])),
    'grid25': (dict(spacing=2.0, std=0.05), lambda o: _grid(5, o['spacing'], o['std'])),
}
_COMMON_DEFAULTS = dict(n=10000, seed=0, rare=None, rare_mode=0)
_INT_OPTIONS = ('n', 'seed', 'rare_mode')

#----------------------------------------------------------------------------
# Parse 'toy:NAME[,key=value...]' into (name, options). Raises ValueError
# naming the bad part and listing what is allowed.

def is_toy_spec(path):
    path = os.fspath(path) if path is not None else ''
    return path.startswith('toy:') or os.path.splitext(path)[1].lower() in ('.npy', '.csv')

def parse_toy_spec(spec):
    if not spec.startswith('toy:'):
        raise ValueError(f'"{spec}" is not a toy spec; write toy:NAME with NAME one of {", ".join(TOY_SETS)}')
    parts = [p.strip() for p in spec[4:].split(',')]
    name = parts[0]
    if name not in TOY_SETS:
        raise ValueError(f'toy set "{name}" is unknown; choose one of {", ".join(TOY_SETS)} (e.g. toy:ring8,rare=0.02)')
    defaults, _builder = TOY_SETS[name]
    options = dict(defaults, **_COMMON_DEFAULTS)
    for part in parts[1:]:
        key, sep, value = part.partition('=')
        key = key.strip()
        if not sep or key not in options:
            raise ValueError(f'toy:{name}: "{part}" is not an option; options are {", ".join(f"{k}=..." for k in options)}')
        try:
            options[key] = int(value) if key in _INT_OPTIONS else (None if value.strip().lower() == 'none' else float(value))
        except ValueError as err:
            kind = 'an integer' if key in _INT_OPTIONS else 'a number'
            raise ValueError(f'toy:{name}: {key}={value} must be {kind}') from err
    _check_options(name, options)
    return name, options

def _check_options(name, o):
    problems = []
    if o['n'] < 1:
        problems.append(f'n={o["n"]} must be >= 1')
    if o['n'] > MAX_POINTS:
        problems.append(f'n={o["n"]} would need about {o["n"] * BYTES_PER_POINT / 2**30:.3g} GiB of memory '
                        f'({BYTES_PER_POINT} bytes per point); use n <= {MAX_POINTS}')
    if not 0 <= o['seed'] < 2**63:
        problems.append(f'seed={o["seed"]} must be in [0, 2**63)')
    for key in ('radius', 'spacing', 'std'):
        if key in o and not 0 < o[key] <= MAX_COORDINATE:  # NaN fails too
            problems.append(f'{key}={o[key]:g} must be > 0, finite and at most {MAX_COORDINATE:g}')
    if o['rare'] is not None and not 0 < o['rare'] < 1:
        problems.append(f'rare={o["rare"]:g} must be a fraction in (0, 1)')
    num_modes = len(TOY_SETS[name][1](dict(o, **TOY_SETS[name][0]))[0])  # the count only: default geometry
    if not 0 <= o['rare_mode'] < num_modes:
        problems.append(f'rare_mode={o["rare_mode"]} must be a mode index in [0, {num_modes - 1}]')
    if problems:
        raise ValueError(f'toy:{name}: ' + '; '.join(problems))

# ToyModes of a built-in set with its parsed options.
def builtin_modes(name, options):
    centres, std = TOY_SETS[name][1](options)
    weights = np.ones(len(centres))
    if options['rare'] is not None:
        weights[:] = (1 - options['rare']) / (len(centres) - 1)
        weights[options['rare_mode']] = options['rare']
    return ToyModes(centres, std, weights)

#----------------------------------------------------------------------------
# Exact per-mode counts of n points: the largest-remainder rounding of n * weights.

def mode_counts(weights, n):
    exact = np.asarray(weights, dtype=np.float64) * n
    counts = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - counts), kind='stable')
    counts[order[:n - counts.sum()]] += 1
    return counts

# n points of a mixture, seeded: float64 [n, 2] and their modes int64 [n], in shuffled order.
def sample_mixture(modes, n, seed):
    rng = np.random.default_rng([int(seed), 0x70C5])
    labels = np.repeat(np.arange(modes.num_modes), mode_counts(modes.weights, n))
    rng.shuffle(labels)
    points = modes.centres[labels] + rng.standard_normal([n, 2]) * modes.stds[labels, None]
    return points, labels

#----------------------------------------------------------------------------
# User point sets: .npy or .csv, with an optional <stem>.modes.json side file.

def load_points_file(path):
    ext = os.path.splitext(path)[1].lower()
    if not os.path.isfile(path):
        raise DatasetError(f"'{path}' does not exist; give an N x 2 .npy or .csv point set, or a built-in set such as toy:ring8")
    try:
        if ext == '.npy':
            points = np.load(path, allow_pickle=False)
        else:
            with open(path, 'r', encoding='utf-8') as f:
                first = f.readline()
            has_header = any(ch.isalpha() for ch in first.replace('e', '').replace('E', ''))
            points = np.loadtxt(path, delimiter=',', skiprows=1 if has_header else 0, ndmin=2)
    except (OSError, ValueError) as err:
        raise DatasetError(f"'{path}' cannot be read as an N x 2 point set ({type(err).__name__}: {err}); "
                           f"save it with numpy.save or as two comma-separated numbers per line") from err
    points = np.asarray(points)
    if points.dtype.kind not in 'iuf':
        what = {'c': 'complex numbers', 'U': 'strings', 'S': 'bytes', 'b': 'booleans', 'O': 'Python objects'}.get(points.dtype.kind, f'{points.dtype}')
        raise DatasetError(f"'{path}' holds {what} (dtype {points.dtype}); a toy point set must be real numbers (float or int), N x 2")
    if points.ndim != 2 or points.shape[1] != 2 or points.shape[0] < 1:
        raise DatasetError(f"'{path}' holds an array of shape {list(points.shape)}; a toy point set must be N x 2 with N >= 1")
    if points.shape[0] > MAX_POINTS:
        raise DatasetError(f"'{path}' holds {points.shape[0]} points, which would need about "
                           f"{points.shape[0] * BYTES_PER_POINT / 2**30:.3g} GiB of memory; use at most {MAX_POINTS}")
    points = points.astype(np.float64)
    # Checked after the cast to float32 too (the dtype the points train in): 1e300 is finite in float64 only.
    bad = ~np.isfinite(points).all(axis=1) | (np.abs(points) > MAX_COORDINATE).any(axis=1)
    if bad.any():
        raise DatasetError(f"'{path}' holds {int(bad.sum())} rows with NaN, inf or coordinates beyond +-{MAX_COORDINATE:g} "
                           f"(not finite in float32, or past its precision), e.g. row {int(np.argmax(bad))}; remove them or rescale the set")
    return points

def modes_side_file(path):
    return os.path.splitext(path)[0] + '.modes.json'

def load_modes_file(path, points):
    if os.path.isdir(path):
        raise DatasetError(f"'{path}' is a folder; the modes side file must be a JSON file (or absent)")
    try:
        with open(path, 'r', encoding='utf-8') as f:
            meta = json.load(f)
        centres, stds = meta['centres'], meta['stds']
    except (OSError, ValueError, KeyError, TypeError, IndexError) as err:
        raise DatasetError(f"'{path}' must be JSON with \"centres\": [[x, y], ...] and \"stds\": [s, ...] or s "
                           f"(\"weights\" optional) ({type(err).__name__}: {err})") from err
    try:
        modes = ToyModes(centres, stds, meta.get('weights'))
    except ValueError as err:
        raise DatasetError(f"'{path}': {err}") from err
    if meta.get('weights') is None:
        counts = np.bincount(nearest_modes(points, modes), minlength=modes.num_modes)
        modes = ToyModes(modes.centres, modes.stds, counts + 1e-12)
    return modes

#----------------------------------------------------------------------------
# Nearest mode of each point in units of the mode's std: int64 [N].

def nearest_modes(points, modes):
    diff = np.asarray(points, dtype=np.float64)[:, None, :] - modes.centres[None]   # [N, K, 2]
    dist = np.sqrt(np.square(diff).sum(axis=2)) / modes.stds[None]                  # [N, K]
    return dist.argmin(axis=1)

#----------------------------------------------------------------------------
# The dataset. path: a toy spec ('toy:ring8,...') or an .npy/.csv file;
# resolution: must be 1 or None (train.py passes what it read back);
# super_kwargs: Dataset arguments (max_size, use_labels, random_seed; xflip
# must stay False: mirroring does not apply to points).

class ToyDataset(Dataset):
    def __init__(self, path, resolution=None, **super_kwargs):
        self._path = os.fspath(path)
        if resolution not in (None, 1):
            raise DatasetError(f'toy data is 2-D points served at resolution 1, got resolution={resolution}')
        if super_kwargs.get('xflip', False):
            raise DatasetError('--mirror does not apply to toy points; use --mirror=0')

        # Points and modes: built in (seeded), or a user file with an optional side file.
        if self._path.startswith('toy:'):
            try:
                set_name, self.options = parse_toy_spec(self._path)
            except ValueError as err:
                raise DatasetError(str(err)) from err
            self._modes = builtin_modes(set_name, self.options)
            points, labels = sample_mixture(self._modes, self.options['n'], self.options['seed'])
            name = self._path[4:].replace(',', '-').replace('=', '')
        else:
            points = load_points_file(self._path)
            side = modes_side_file(self._path)
            self._modes = load_modes_file(side, points) if os.path.exists(side) else None
            labels = nearest_modes(points, self._modes) if self._modes is not None else None
            self.options = None
            name = os.path.splitext(os.path.basename(self._path))[0]
        self._points = points.astype(np.float32)
        if not np.isfinite(self._points).all():  # the spec and file checks bound every value; this guards the cast
            raise DatasetError(f'{self._path}: the points are not finite after the cast to float32; use smaller coordinates')
        self._labels = labels
        super().__init__(name=name, raw_shape=[len(points), 2, 1, 1], **super_kwargs)

    # Float items: coordinates in data units, [2, 1, 1].
    def __getitem__(self, idx):
        return self._points[self._raw_idx[idx]].reshape(2, 1, 1).copy(), self.get_label(idx)

    # Batched fetch (torch's DataLoader calls it with a whole batch of indices): one gather
    # instead of a Python call per point; the items equal __getitem__'s, as tensors.
    def __getitems__(self, indices):
        raw = self._raw_idx[np.asarray(indices, dtype=np.int64)]
        points = torch.from_numpy(self._points[raw].reshape(-1, 2, 1, 1))
        labels = torch.zeros([len(raw), 0])  # toy data has no labels
        return list(zip(points.unbind(0), labels.unbind(0)))

    def _load_raw_image(self, raw_idx):
        return self._points[raw_idx].reshape(2, 1, 1).copy()

    def _load_raw_labels(self):
        return None

    def _load_raw_modes(self):
        return None if self._labels is None else np.asarray(self._labels, dtype=np.int64)

    def _load_mode_info(self):
        return None if self._modes is None else dict(num_modes=self._modes.num_modes, **self._modes.as_dict())

    # Toy-specific facts.
    @property
    def toy_modes(self):
        """ToyModes of the data, or None for a user point set without a side file."""
        return self._modes

    def points(self):
        """The dataset's points in item order: float32 [len(self), 2]."""
        return self._points[self._raw_idx].copy()

    # Pictures of the run at each image snapshot (training/toy_pictures.py).
    def on_snapshot(self, run_dir, cur_nimg, G, loss, transform=None):
        from training import toy_pictures
        toy_pictures.save_snapshot_pictures(run_dir, cur_nimg, self, G, loss=loss, transform=transform)

    def fresh_points(self, n, seed):
        """n points of the same distribution that are not the training points (built-in sets), or a seeded
        random choice of n training points (user files, sampled with replacement when n > len(self)): float64 [n, 2]."""
        if self.options is not None:
            return sample_mixture(self._modes, n, seed=int(seed) + 1_000_003)[0]
        rng = np.random.default_rng([int(seed), 0xDA7A])
        pool = self.points().astype(np.float64)
        return pool[rng.choice(len(pool), size=n, replace=n > len(pool))]

#----------------------------------------------------------------------------
# The dataset kwargs of a toy spec or point file, as train.py writes them.

def toy_dataset_kwargs(path):
    return dnnlib.EasyDict(class_name='training.toy_data.ToyDataset', path=os.fspath(path), use_labels=False, max_size=None, xflip=False)

#----------------------------------------------------------------------------
