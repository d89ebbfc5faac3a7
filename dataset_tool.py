"""Convert image collections (folder, zip, LSUN lmdb, CIFAR-10, MNIST, built-in synthetic data) into the training dataset format."""

import gzip
import io
import json
import os
import pickle
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import click
import numpy as np
import PIL.Image

import dnnlib
from dnnlib import cli
from torch_utils import safe_load
from training import dataset as dataset_module
from training import synthetic

#----------------------------------------------------------------------------
# A source is opened into (num_images, items, extra_meta): items yields
# EasyDict(name, img, label, mode) with img a uint8 [H, W] or [H, W, C] array,
# name the file (or record) it came from, label None when unknown, and mode
# the synthetic mode or None. extra_meta holds dataset.json entries to carry
# over besides labels and modes (the "synthetic" description).

def _item(name, img, label=None, mode=None):
    return dnnlib.EasyDict(name=name, img=img, label=label, mode=mode)

def _limit(count, max_images):
    return count if max_images is None else min(count, max_images)

# PIL image -> uint8 array in mode L ([H, W]) or RGB ([H, W, 3]); other modes are converted.
def _pil_to_array(img, name):
    if img.mode in ('I', 'I;16', 'I;16B', 'I;16L', 'I;16N', 'F'):
        raise click.ClickException(f"'{name}' has {img.mode} pixels (16-bit or float); convert it to 8-bit first")
    if img.mode in ('1', 'LA', 'La'):
        img = img.convert('L')
    elif img.mode == 'P' and 'transparency' in img.info:
        img = img.convert('RGBA').convert('RGB')
    elif img.mode not in ('L', 'RGB'):
        img = img.convert('RGB')
    return np.array(img)

def _decode_image(data, name):
    try:
        with PIL.Image.open(io.BytesIO(data)) as img:
            return _pil_to_array(img, name)
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise click.ClickException(f"--source: '{name}' cannot be read as an image ({type(err).__name__}: {err}); fix or delete it") from err

def _is_image_name(name):
    PIL.Image.init()
    return os.path.splitext(name)[1].lower() in PIL.Image.EXTENSION

# Per-image entries of a source's dataset.json: (labels, modes, extra) with
# labels/modes dicts keyed by relative name (or None) and extra the other entries to keep.
def _parse_meta(data, where):
    try:
        meta = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise click.ClickException(f"--source: '{where}' is not valid JSON ({err})") from err
    if not isinstance(meta, dict):
        raise click.ClickException(f"--source: '{where}' must hold a JSON object with a \"labels\" entry")
    tables = []
    for key in ('labels', 'modes'):
        try:
            tables.append(None if meta.get(key) is None else dict(meta[key]))
        except (TypeError, ValueError) as err:
            raise click.ClickException(f"--source: '{where}': \"{key}\" must be null or a list of [file name, value] pairs") from err
    extra = {'synthetic': meta['synthetic']} if isinstance(meta.get('synthetic'), dict) else {}
    return tables[0], tables[1], extra

def _lookup(table, key):
    return None if table is None else table.get(key)

#----------------------------------------------------------------------------
# Image folder, searched recursively, optional <source>/dataset.json.

def _open_folder(source, max_images):
    paths = [p for p in sorted(Path(source).rglob('*')) if _is_image_name(p.name) and p.is_file()]
    labels = modes = None
    extra = {}
    meta_path = os.path.join(source, 'dataset.json')
    if os.path.isfile(meta_path):
        with open(meta_path, 'rb') as f:
            labels, modes, extra = _parse_meta(f.read(), meta_path)
    count = _limit(len(paths), max_images)

    def items():
        for path in paths[:count]:
            rel = os.path.relpath(path, source).replace('\\', '/')
            with open(path, 'rb') as f:
                img = _decode_image(f.read(), rel)
            yield _item(rel, img, _lookup(labels, rel), _lookup(modes, rel))
    return count, items(), extra

#----------------------------------------------------------------------------
# Zip of images, optional dataset.json at its root.

def _open_zip(source, max_images):
    try:
        zf = zipfile.ZipFile(source)
    except zipfile.BadZipFile as err:
        raise click.ClickException(f"--source: '{source}' is not a readable zip file ({err})") from err
    names = [n for n in sorted(zf.namelist()) if _is_image_name(n) and not n.endswith('/')]
    labels = modes = None
    extra = {}
    if 'dataset.json' in zf.namelist():
        labels, modes, extra = _parse_meta(zf.read('dataset.json'), f'{source}/dataset.json')
    count = _limit(len(names), max_images)

    def items():
        with zf:
            for name in names[:count]:
                img = _decode_image(zf.read(name), name)
                yield _item(name, img, _lookup(labels, name), _lookup(modes, name))
    return count, items(), extra

#----------------------------------------------------------------------------
# LSUN scene/object category in LMDB format (a folder named *_lmdb). Needs the
# optional `lmdb` package; records that fail to decode are reported and skipped.

def _open_lmdb(source, max_images):
    try:
        import lmdb
    except ImportError:
        raise click.ClickException(f"--source: reading the LSUN database '{source}' needs the 'lmdb' package; install it with 'pip install lmdb'") from None
    env = lmdb.open(source, readonly=True, lock=False)
    with env.begin(write=False) as txn:
        count = _limit(int(txn.stat()['entries']), max_images)

    def items():
        with env.begin(write=False) as txn:
            for idx, (key, value) in enumerate(txn.cursor()):
                if idx >= count:
                    break
                name = key.decode('utf-8', 'replace') if isinstance(key, bytes) else str(key)
                try:
                    with PIL.Image.open(io.BytesIO(value)) as img:
                        yield _item(name, np.array(img.convert('RGB')))
                except (OSError, SyntaxError, ValueError, EOFError) as err:
                    print(f"Skipping LSUN record '{name}': {type(err).__name__}: {err}", file=sys.stderr)
        env.close()
    return count, items(), {}

#----------------------------------------------------------------------------
# CIFAR-10 python archive: the five training batches, 32x32 RGB, labels 0-9.

def _open_cifar10(source, max_images):
    images, labels = [], []
    try:
        with tarfile.open(source, 'r:gz') as tar:
            for batch in range(1, 6):
                member = f'cifar-10-batches-py/data_batch_{batch}'
                with tar.extractfile(tar.getmember(member)) as f:
                    data = safe_load.load_plain_pickle(f, what='CIFAR-10 batch', encoding='latin1')  # arrays and lists only, unless --trust-pickle
                images.append(np.asarray(data['data'], dtype=np.uint8).reshape(-1, 3, 32, 32))
                labels.extend(int(x) for x in data['labels'])
    except (tarfile.TarError, KeyError, OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError) as err:
        raise click.ClickException(f"--source: '{source}' is not a CIFAR-10 python archive ({type(err).__name__}: {err})") from err
    images = np.concatenate(images).transpose(0, 2, 3, 1)  # [N, 32, 32, 3]
    count = _limit(len(images), max_images)
    items = (_item(f'cifar10[{i}]', images[i], labels[i]) for i in range(count))
    return count, items, {}

#----------------------------------------------------------------------------
# MNIST training set (IDX files), zero-padded from 28x28 to 32x32 grayscale,
# labels from the sibling train-labels-idx1-ubyte.gz.

def _read_idx(path, magic, what):
    try:
        with gzip.open(path, 'rb') as f:
            data = f.read()
    except (OSError, EOFError) as err:
        raise click.ClickException(f"--source: cannot read MNIST {what} '{path}' ({type(err).__name__}: {err})") from err
    num_dims = magic & 0xff
    header = 4 + 4 * num_dims
    if len(data) < header or int.from_bytes(data[:4], 'big') != magic:
        raise click.ClickException(f"--source: '{path}' is not an MNIST {what} file (bad IDX header)")
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], 'big') for i in range(num_dims)]
    if len(data) - header != int(np.prod(shape)):
        raise click.ClickException(f"--source: '{path}' is truncated: header says {shape}, found {len(data) - header} bytes of data")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)

def _open_mnist(source, max_images):
    labels_path = os.path.join(os.path.dirname(source), 'train-labels-idx1-ubyte.gz')
    if not os.path.isfile(labels_path):
        raise click.ClickException(f"--source: MNIST labels '{labels_path}' not found next to the images")
    images = _read_idx(source, 0x00000803, 'images')
    labels = _read_idx(labels_path, 0x00000801, 'labels')
    if len(labels) != len(images):
        raise click.ClickException(f'--source: MNIST has {len(images)} images but {len(labels)} labels')
    images = np.pad(images, [(0, 0), (2, 2), (2, 2)])  # [N, 32, 32]
    count = _limit(len(images), max_images)
    items = (_item(f'mnist[{i}]', images[i], int(labels[i])) for i in range(count))
    return count, items, {}

#----------------------------------------------------------------------------
# Built-in synthetic data (training/synthetic.py).

def _open_synthetic(opts, max_images):
    num = _limit(opts.num, max_images)
    try:
        info = synthetic.synthetic_info(opts.modes, opts.freqs, opts.seed)
        stream = synthetic.iter_synthetic_images(num, opts.res, opts.modes, opts.freqs, opts.seed)
    except ValueError as err:
        option = {'frequencies': 'freqs', 'resolution': 'res', 'num_modes': 'modes', 'seed': 'seed'}.get(str(err).split()[0].rstrip(':'), 'num')
        raise click.ClickException(f'--synthetic-{option}: {err}') from err
    items = (_item(f'synthetic[{i}]', img, mode if opts.cond else None, mode) for i, (img, mode) in enumerate(stream))
    return num, items, {'synthetic': info}

#----------------------------------------------------------------------------
# Resize/crop applied to every image; returns None to skip an image.

def _make_transform(transform, width, height, resize_filter):
    resample = {'box': PIL.Image.BOX, 'lanczos': PIL.Image.LANCZOS}[resize_filter]

    def resize(img, w, h):
        if img.shape[1] == w and img.shape[0] == h:
            return img
        return np.array(PIL.Image.fromarray(img).resize((w, h), resample))

    def scale_only(img):
        return resize(img, width or img.shape[1], height or img.shape[0])

    def center_crop(img):
        side = min(img.shape[0], img.shape[1])
        top, left = (img.shape[0] - side) // 2, (img.shape[1] - side) // 2
        return resize(img[top:top + side, left:left + side], width, height)

    # Keep the full width, crop rows to the target aspect, letterbox into a square canvas.
    def center_crop_wide(img):
        rows = int(np.round(width * img.shape[0] / img.shape[1]))
        if img.shape[1] < width or rows < height:
            return None
        img = resize(img[(img.shape[0] - rows) // 2:(img.shape[0] + rows) // 2], width, height)
        canvas = np.zeros([width, width] + list(img.shape[2:]), dtype=np.uint8)
        canvas[(width - height) // 2:(width - height) // 2 + height] = img
        return canvas

    if transform is None:
        return scale_only
    if width is None or height is None:
        raise click.ClickException(f'--transform={transform} needs both --width and --height')
    if transform == 'center-crop':
        return center_crop
    if height > width:
        raise click.ClickException(f'--transform=center-crop-wide needs --height <= --width, got {width}x{height}')
    return center_crop_wide

#----------------------------------------------------------------------------
# Progress to stderr at most every few seconds (no tqdm dependency).

class _Progress:
    def __init__(self, total, interval=5.0):
        self.total, self.interval, self.last = total, interval, time.time()

    def update(self, done):
        if time.time() - self.last >= self.interval:
            self.last = time.time()
            print(f'{done}/{self.total} images', file=sys.stderr, flush=True)

#----------------------------------------------------------------------------
# scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes; no download), grey levels 0..16
# scaled to 0..255, each image's class as its label and its mode. `rare` classes keep only `rare_frac` of their
# images (the first ones, so the set is a pure function of the options): an imbalanced set for mode-coverage work.

def _open_digits(rare, rare_frac, max_images):
    from sklearn.datasets import load_digits  # pylint: disable=import-outside-toplevel
    digits = load_digits()
    images = np.clip(np.rint(digits.images * (255 / 16)), 0, 255).astype(np.uint8)
    keep = np.ones(len(images), dtype=bool)
    for cls in rare:
        rows = np.flatnonzero(digits.target == cls)
        keep[rows[max(1, int(round(len(rows) * rare_frac))):]] = False
    rows = np.flatnonzero(keep)
    num = _limit(len(rows), max_images)
    counts = np.bincount(digits.target[rows], minlength=10)
    info = dict(source='sklearn.datasets.load_digits', rare_classes=sorted(rare), rare_frac=rare_frac, class_counts=counts.tolist())
    items = (_item(f'digits[{i}]', images[i], int(digits.target[i]), int(digits.target[i])) for i in rows[:num])
    return num, items, {'digits': info}

def _parse_digit_classes(text):
    try:
        classes = sorted({int(part) for part in text.split(',') if part.strip()})
    except ValueError:
        classes = [-1]
    if any(not 0 <= cls <= 9 for cls in classes):
        raise click.ClickException(f'--digits-rare={text}: expected comma-separated classes 0..9, e.g. 7,8,9')
    return classes

#----------------------------------------------------------------------------
# Pick the reader for --source.

def _open_source(source, max_images, synthetic_opts, digits_opts=None):
    if source == 'synthetic':
        return _open_synthetic(synthetic_opts, max_images)
    if source == 'digits':
        return _open_digits(digits_opts.rare, digits_opts.rare_frac, max_images)
    if os.path.isdir(source):
        if source.rstrip('/\\').endswith('_lmdb'):
            return _open_lmdb(source, max_images)
        return _open_folder(source, max_images)
    if os.path.isfile(source):
        base = os.path.basename(source)
        if base == 'cifar-10-python.tar.gz':
            return _open_cifar10(source, max_images)
        if base == 'train-images-idx3-ubyte.gz':
            return _open_mnist(source, max_images)
        if base.lower().endswith('.zip'):
            return _open_zip(source, max_images)
    elif not os.path.exists(source):
        raise click.ClickException(f"--source: '{source}' does not exist")
    raise click.ClickException(f"--source: cannot read '{source}'; expected an image folder, a .zip, an LSUN '*_lmdb' folder, "
                               f"'cifar-10-python.tar.gz', 'train-images-idx3-ubyte.gz' or 'synthetic'")

#----------------------------------------------------------------------------
# Check a converted image against the first one (square, power of two, same size and colour mode).

def _check_image(img, name, first):
    height, width = img.shape[:2]
    channels = img.shape[2] if img.ndim == 3 else 1
    if first is None:
        side = dataset_module._nearest_power_of_two(min(width, height))
        if width != height:
            raise click.ClickException(f"'{name}' is {width}x{height} after resizing/cropping but dataset images must be square; "
                                       f"use --transform=center-crop --width={side} --height={side}")
        if not dataset_module._is_power_of_two(width) or width < 4:
            raise click.ClickException(f"'{name}' is {width}x{height} but the resolution must be a power of two >= 4; "
                                       f"use --width={side} --height={side}")
        return img
    first_name, (want_h, want_w, want_c) = first
    if (height, width) != (want_h, want_w):
        raise click.ClickException(f"'{name}' is {width}x{height} but earlier images (e.g. '{first_name}') are {want_w}x{want_h}; "
                                   f"use --width={want_w} --height={want_h} to resize all images")
    if channels == 1 and want_c == 3:
        return np.repeat(img.reshape(height, width, 1), 3, axis=2)  # grayscale into an RGB dataset: lossless
    if channels != want_c:
        raise click.ClickException(f"'{name}' is RGB but earlier images (e.g. '{first_name}') are grayscale; "
                                   f"convert all images to one colour mode first")
    return img

#----------------------------------------------------------------------------
# Labels as train.py reads them: every image a class index (int >= 0), or
# every image a list of numbers of one length. Returns a short description.

def _check_label(label, name):
    if isinstance(label, bool) or not isinstance(label, (int, list)):
        raise click.ClickException(f"--source: '{name}' has label {label!r} (a {type(label).__name__}); labels must be class "
                                   f"indices (integers >= 0) or lists of numbers; fix dataset.json")
    if isinstance(label, int) and label < 0:
        raise click.ClickException(f"--source: '{name}' has label {label}; class indices must be >= 0; fix dataset.json")
    if isinstance(label, list) and not all(isinstance(x, (int, float)) and not isinstance(x, bool) and np.isfinite(x) for x in label):
        raise click.ClickException(f"--source: '{name}' has label {label!r}; a label list must hold finite numbers only; fix dataset.json")

def _check_labels(labels, names):
    missing = [name for name, label in zip(names, labels) if label is None]
    if len(missing) == len(labels):
        return 'none (unconditional dataset)'
    if missing:
        raise click.ClickException(f"--source: {len(missing)} of {len(labels)} images have no label (e.g. '{missing[0]}') while "
                                   f"the others have one; give every image a label in dataset.json, or remove the labels "
                                   f"for an unconditional dataset")
    kinds = {type(label[1]) for label in labels}
    if len(kinds) > 1:
        raise click.ClickException('--source: the labels mix class indices (integers) and lists; use one kind for all images')
    if kinds == {int}:
        return f'class indices 0-{max(label[1] for label in labels)}'
    lengths = {len(label[1]) for label in labels}
    if len(lengths) > 1:
        raise click.ClickException(f'--source: the label lists have different lengths ({", ".join(map(str, sorted(lengths)))}); '
                                   f'give every image a list of the same length')
    return f'lists of {lengths.pop()} numbers'

#----------------------------------------------------------------------------

@click.command()
@safe_load.cli_options
@click.option('--source', help='Input: folder, .zip, *_lmdb folder, cifar-10-python.tar.gz, train-images-idx3-ubyte.gz, "synthetic" or "digits"', required=True, metavar='PATH')
@click.option('--dest', help='Output .zip archive or (new or empty) folder', required=True, metavar='PATH')
@click.option('--max-images', help='Convert at most this many images', type=click.IntRange(min=1), metavar='INT')
@click.option('--resize-filter', help='Filter used when resizing', type=click.Choice(['box', 'lanczos']), default='lanczos', show_default=True)
@click.option('--transform', help='Crop before resizing', type=click.Choice(['center-crop', 'center-crop-wide']))
@click.option('--width', help='Output width', type=click.IntRange(min=1), metavar='INT')
@click.option('--height', help='Output height', type=click.IntRange(min=1), metavar='INT')
@click.option('--synthetic-num', help='synthetic: number of images  [default: 2000]', type=click.IntRange(min=1), metavar='INT')
@click.option('--synthetic-res', help='synthetic: resolution, a power of two >= 8  [default: 32]', type=click.IntRange(min=8), metavar='INT')
@click.option('--synthetic-modes', help=f'synthetic: number of modes, 1..{synthetic.MAX_MODES}  [default: {synthetic.DEFAULT_NUM_MODES}]', type=click.IntRange(1, synthetic.MAX_MODES), metavar='INT')
@click.option('--synthetic-freqs', help=f'synthetic: mode frequencies: uniform, geometric[:R] or w0,w1,...  [default: {synthetic.DEFAULT_FREQUENCIES}]', metavar='SPEC')
@click.option('--synthetic-seed', help='synthetic: random seed  [default: 0]', type=click.IntRange(0, 2 ** 32 - 1), metavar='INT')
@click.option('--synthetic-cond', help='synthetic: also store the mode as class label  [default: false]', type=bool, metavar='BOOL')
@click.option('--digits-rare', help='digits: classes made rare, e.g. 7,8,9  [default: none]', metavar='LIST')
@click.option('--digits-rare-frac', help='digits: share of each rare class\'s images kept  [default: 0.15]', type=cli.FiniteFloat(0, 1, min_open=True), metavar='FLOAT')
def convert_dataset(
    source: str,
    dest: str,
    max_images: int,
    transform: str,
    resize_filter: str,
    width: int,
    height: int,
    digits_rare: str = None,
    digits_rare_frac: float = None,
    **synthetic_kwargs,
):
    """Convert an image dataset into the format used by training and metrics.

    \b
    Sources (--source):
      PATH/                       folder of images, searched recursively;
                                  labels from PATH/dataset.json if present
      PATH.zip                    zip of images; labels from dataset.json inside
      PATH_lmdb/                  LSUN category in LMDB format (needs 'pip install lmdb')
      cifar-10-python.tar.gz      CIFAR-10 python archive (training set, labels)
      train-images-idx3-ubyte.gz  MNIST training set, padded to 32x32 (labels
                                  from train-labels-idx1-ubyte.gz beside it)
      synthetic                   built-in multimodal data, no download: coloured
                                  shapes (mode = shape x colour x background) with
                                  known, imbalanced frequencies; see --synthetic-*
      digits                      scikit-learn's bundled 8x8 handwritten digits
                                  (1,797 images, class = label = mode), offline;
                                  --digits-rare makes classes rare

    \b
    Output (--dest): PNG files '00000/img00000000.png', ... plus dataset.json
    with "labels": null when no image has one; an error when only some do.
    A label is a class index (integer >= 0) or a list of numbers, the same
    kind for every image; anything else is refused. Synthetic data also
    records each image's mode under "modes" and its settings under
    "synthetic"; both survive later conversions. A .zip destination is
    written atomically and must not exist yet (an existing dataset is never
    replaced); a folder destination must be empty or absent.

    \b
    Images are converted to RGB or grayscale, must come out square with a
    power-of-two side, and must all have the same size. --width/--height
    resize; --transform=center-crop crops the centred square first;
    --transform=center-crop-wide keeps the full width, crops rows to
    width:height and pads to a square with black bars.

    \b
    Examples:
      python dataset_tool.py --source=synthetic --dest=~/datasets/shapes32.zip
      python dataset_tool.py --source=synthetic --synthetic-num=5000 \\
          --synthetic-modes=16 --synthetic-freqs=uniform --dest=shapes.zip
      python dataset_tool.py --source=~/downloads/cifar-10-python.tar.gz --dest=cifar10.zip
      python dataset_tool.py --source=~/downloads/lsun/cat_lmdb --dest=lsuncat200k.zip \\
          --transform=center-crop --width=256 --height=256 --max-images=200000
    """
    given = [name for name, value in synthetic_kwargs.items() if value is not None]
    if source != 'synthetic' and given:
        raise click.ClickException(f"--{given[0].replace('_', '-')} applies only to --source=synthetic")
    if source != 'digits' and (digits_rare is not None or digits_rare_frac is not None):
        raise click.ClickException('--digits-rare and --digits-rare-frac apply only to --source=digits')
    digits_opts = dnnlib.EasyDict(rare=_parse_digit_classes(digits_rare or ''),
                                  rare_frac=digits_rare_frac if digits_rare_frac is not None else 0.15)
    defaults = dict(num=2000, res=32, modes=synthetic.DEFAULT_NUM_MODES, freqs=None, seed=0, cond=False)
    synthetic_opts = dnnlib.EasyDict({k: synthetic_kwargs[f'synthetic_{k}'] if synthetic_kwargs[f'synthetic_{k}'] is not None else v
                                      for k, v in defaults.items()})
    if dest.lower().endswith('.zip'):
        if os.path.isfile(dest):
            raise click.ClickException(f"--dest: '{dest}' already exists; delete it first or choose another --dest "
                                       f"(dataset_tool.py never replaces a dataset)")
        cli.check_output_file(dest, '--dest')
    else:
        cli.check_output_folder(dest, '--dest')
    try:
        writer = dataset_module.DatasetWriter(dest)
    except ValueError as err:
        raise click.ClickException(f'--dest: {err}') from err
    transform_fn = _make_transform(transform, width, height, resize_filter)
    num_images, items, extra_meta = _open_source(source, max_images, synthetic_opts, digits_opts)

    # Convert and write every image; the destination appears only if all succeed.
    first = None
    labels, modes, names = [], [], []
    progress = _Progress(num_images)
    with writer:
        for idx, item in enumerate(items):
            img = transform_fn(item.img)
            if img is None:
                continue
            img = _check_image(img, item.name, first)
            if first is None:
                first = (item.name, (img.shape[0], img.shape[1], img.shape[2] if img.ndim == 3 else 1))
            if item.label is not None:
                _check_label(item.label, item.name)
            name = dataset_module.image_archive_name(idx)
            writer.add_image(name, img)
            names.append(item.name)
            labels.append(None if item.label is None else [name, item.label])
            modes.append(None if item.mode is None else [name, item.mode])
            progress.update(idx + 1)
        if first is None:
            raise click.ClickException(f"--source: no images to write from '{source}'")

        # dataset.json: labels if every image has one (some but not all is an error), modes likewise.
        label_text = _check_labels(labels, names)
        meta = {'labels': labels if all(x is not None for x in labels) else None}
        if all(x is not None for x in modes):
            meta['modes'] = modes
            meta.update(extra_meta)
        writer.write_metadata(meta)
    print(f"Wrote {len(labels)} images to '{dest}'; labels: {label_text}")

#----------------------------------------------------------------------------

if __name__ == '__main__':
    convert_dataset()  # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
