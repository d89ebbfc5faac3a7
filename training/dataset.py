"""Training data: the StyleGAN2-ADA `Dataset` API over a folder or zip of images, and the writer of that format."""

import contextlib
import io
import json
import os
import shutil
import uuid
import zipfile
import zlib

import numpy as np
import PIL.Image
import torch

import dnnlib

try:
    import pyspng  # optional: faster PNG decoding
except ImportError:
    pyspng = None

#----------------------------------------------------------------------------
# Error for unusable dataset contents. It is both an OSError (what train.py and
# calc_metrics.py catch to print `--data: <message>`, as upstream raises IOError)
# and a ValueError (our convention for bad user input in library code).

# Largest class index + 1 of dataset.json labels (one-hot labels cost 4 bytes per class per image).
MAX_CLASSES = 100_000

class DatasetError(OSError, ValueError):
    pass

#----------------------------------------------------------------------------
# Small helpers shared by the reader and the writer.

def _is_power_of_two(n):
    return n >= 1 and (n & (n - 1)) == 0

def _nearest_power_of_two(n):
    n = max(int(n), 4)
    lo = 1 << (n.bit_length() - 1)
    return lo if n - lo <= 2 * lo - n else 2 * lo

def _channel_word(num_channels):
    return {1: 'grayscale', 3: 'RGB', 4: 'RGBA'}.get(num_channels, f'{num_channels}-channel')

def _fix_hint(width, height):
    return f're-run dataset_tool.py with --width={width} --height={height}'

#----------------------------------------------------------------------------
# Base class. It maps dataset indices to raw image indices (a seeded subset,
# then optional mirrored copies) and serves images, labels and mode labels
# through hooks that subclasses implement. Arguments:
#   name:        name of the dataset (used for run directories and metric caches)
#   raw_shape:   shape of all raw images together, [N, C, H, W]
#   max_size:    keep at most this many raw images, a seeded random subset (None = keep all)
#   use_labels:  serve the labels of the data (False = every label has shape [0])
#   xflip:       append a horizontally mirrored copy of every image (doubles the length)
#   random_seed: seed that picks the max_size subset

class Dataset(torch.utils.data.Dataset):
    def __init__(self, name, raw_shape, max_size=None, use_labels=False, xflip=False, random_seed=0):
        raw_shape = [int(x) for x in raw_shape]
        if len(raw_shape) != 4:
            raise ValueError(f'raw_shape must be [N, C, H, W], got {raw_shape}')
        if max_size is not None and (isinstance(max_size, bool) or not isinstance(max_size, (int, np.integer)) or max_size < 1):
            raise ValueError(f'max_size must be a positive integer or None, got {max_size!r}')
        self._name = name
        self._shape_nchw = raw_shape
        self._use_labels = use_labels
        self._raw_labels = None
        self._label_shape = None
        self._raw_modes = None
        self._raw_modes_loaded = False

        # Pick the subset: shuffle all raw indices with the seed, keep the first max_size, restore order.
        raw_idx = np.arange(raw_shape[0], dtype=np.int64)
        if max_size is not None and max_size < raw_idx.size:
            np.random.RandomState(random_seed).shuffle(raw_idx)
            raw_idx = np.sort(raw_idx[:max_size])

        # Mirrored copies form the second half; _xflip flags them.
        flags = np.zeros(raw_idx.size, dtype=np.uint8)
        if xflip:
            raw_idx = np.concatenate([raw_idx, raw_idx])
            flags = np.concatenate([flags, np.ones_like(flags)])
        self._raw_idx = raw_idx
        self._xflip = flags

    # Hooks for subclasses.
    def _load_raw_image(self, raw_idx):     # -> uint8 [C, H, W]
        raise NotImplementedError

    def _load_raw_labels(self):             # -> int64 [N] or float32 [N, ...], or None
        raise NotImplementedError

    def _load_raw_modes(self):              # -> int64 [N] or None
        return None

    def _load_mode_info(self):              # -> dict describing the modes, or None
        return None

    def close(self):                        # release open files
        pass

    # Called on rank 0 at each image snapshot, to add the data's own pictures
    # to run_dir (the toy lab's point plots: training/toy_pictures.py). G: G_ema;
    # loss: the training loss (loss.score(img, c, sync=False) gives D's realness);
    # transform: the sample-time transform (training.sampling). No-op here.
    def on_snapshot(self, run_dir, cur_nimg, G, loss, transform=None):
        pass

    def __del__(self):
        with contextlib.suppress(OSError):
            self.close()

    # Worker processes rebuild the caches lazily instead of receiving copies.
    def __getstate__(self):
        return dict(self.__dict__, _raw_labels=None, _raw_modes=None, _raw_modes_loaded=False)

    def _get_raw_labels(self):
        if self._raw_labels is None:
            labels = self._load_raw_labels() if self._use_labels else None
            if labels is None:
                labels = np.zeros([self._shape_nchw[0], 0], dtype=np.float32)
            assert isinstance(labels, np.ndarray) and labels.shape[0] == self._shape_nchw[0]
            assert (labels.dtype == np.float32 and labels.ndim >= 2) or (labels.dtype == np.int64 and labels.ndim == 1)
            assert labels.dtype != np.int64 or np.all(labels >= 0)
            self._raw_labels = labels
        return self._raw_labels

    def _get_raw_modes(self):
        if not self._raw_modes_loaded:
            modes = self._load_raw_modes()
            assert modes is None or (isinstance(modes, np.ndarray) and modes.shape == (self._shape_nchw[0],))
            self._raw_modes = modes
            self._raw_modes_loaded = True
        return self._raw_modes

    def __len__(self):
        return self._raw_idx.size

    def __getitem__(self, idx):
        image = self._load_raw_image(self._raw_idx[idx])
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or list(image.shape) != self.image_shape:
            raise DatasetError(f'Dataset "{self._name}": raw image {self._raw_idx[idx]} is not uint8 {self.image_shape}')
        if self._xflip[idx]:
            image = np.flip(image, axis=2)
        return np.array(image, copy=True), self.get_label(idx)

    # Label of dataset index idx: float32, one-hot for class-index labels, shape [0] without labels.
    def get_label(self, idx):
        raw = self._get_raw_labels()[self._raw_idx[idx]]
        if raw.dtype != np.int64:
            return raw.copy()
        return np.eye(self.label_shape[0], dtype=np.float32)[raw]

    # Where dataset index idx comes from (plus its mode when the dataset has mode labels).
    def get_details(self, idx):
        raw_idx = int(self._raw_idx[idx])
        details = dnnlib.EasyDict(raw_idx=raw_idx, xflip=bool(self._xflip[idx]), raw_label=self._get_raw_labels()[raw_idx].copy())
        if self.has_modes:
            details.mode = self.get_mode(idx)
        return details

    # Ground-truth mode of dataset index idx (synthetic datasets; see training/synthetic.py).
    def get_mode(self, idx):
        modes = self._get_raw_modes()
        if modes is None:
            raise ValueError(f'Dataset "{self._name}" has no per-image mode labels; build one with dataset_tool.py --source=synthetic')
        return int(modes[self._raw_idx[idx]])

    # Modes of all dataset indices at once: int64 [len(self)].
    def get_modes(self):
        modes = self._get_raw_modes()
        if modes is None:
            raise ValueError(f'Dataset "{self._name}" has no per-image mode labels; build one with dataset_tool.py --source=synthetic')
        return modes[self._raw_idx].copy()

    # Shape facts, from the raw shape.
    @property
    def image_shape(self):
        return list(self._shape_nchw[1:])

    @property
    def num_channels(self):
        return self._shape_nchw[1]

    @property
    def resolution(self):
        height, width = self._shape_nchw[2:]
        if height != width:
            raise ValueError(f'Dataset "{self._name}" has non-square images ({width}x{height})')
        return height

    @property
    def name(self):
        return self._name

    # Label facts; class-index labels count as one-hot vectors of length max + 1.
    @property
    def has_onehot_labels(self):
        return self._get_raw_labels().dtype == np.int64

    @property
    def label_shape(self):
        if self._label_shape is None:
            labels = self._get_raw_labels()
            self._label_shape = [int(labels.max()) + 1] if labels.dtype == np.int64 else list(labels.shape[1:])
        return list(self._label_shape)

    @property
    def has_labels(self):
        return any(self.label_shape)

    @property
    def label_dim(self):
        shape = self.label_shape
        if len(shape) != 1:
            raise ValueError(f'Dataset "{self._name}" has labels of shape {shape}; label_dim needs 1-D labels')
        return shape[0]

    # Mode facts (synthetic datasets).
    @property
    def has_modes(self):
        return self._get_raw_modes() is not None

    @property
    def mode_info(self):
        return self._load_mode_info()

#----------------------------------------------------------------------------
# Images in a folder (searched recursively) or a zip archive, in sorted name
# order, with optional `dataset.json` at the root holding `labels` (official
# format) and, for synthetic data, `modes` and `synthetic` entries.

class ImageFolderDataset(Dataset):
    def __init__(self, path, resolution=None, **super_kwargs):
        # path: folder or .zip; resolution: expected side (None = from the first image);
        # super_kwargs: Dataset arguments (max_size, use_labels, xflip, random_seed).
        self._path = os.fspath(path)
        self._zipfile = None
        self._zip_pid = None
        self._meta = None

        # List the files.
        if os.path.isdir(self._path):
            self._type = 'dir'
            self._all_fnames = {os.path.relpath(os.path.join(root, fname), start=self._path)
                                for root, _dirs, files in os.walk(self._path) for fname in files}
        elif os.path.isfile(self._path) and self._path.lower().endswith('.zip'):
            self._type = 'zip'
            self._all_fnames = {n for n in self._get_zipfile().namelist() if not n.endswith('/')}
        elif not os.path.exists(self._path):
            raise DatasetError(f"'{self._path}' does not exist; point to a dataset folder or .zip made by dataset_tool.py")
        else:
            raise DatasetError(f"'{self._path}' is neither a folder nor a .zip file; point to a dataset folder or .zip made by dataset_tool.py")

        # Keep the image files, in sorted order.
        PIL.Image.init()
        self._image_fnames = sorted(f for f in self._all_fnames if os.path.splitext(f)[1].lower() in PIL.Image.EXTENSION)
        if len(self._image_fnames) == 0:
            raise DatasetError(f"No image files found in '{self._path}'; build the dataset with dataset_tool.py")

        # The first image fixes the shape; refuse shapes the networks cannot use.
        first = self._image_fnames[0]
        channels, height, width = self._read_image(first).shape
        if resolution is not None and (height != resolution or width != resolution):
            raise DatasetError(f"'{first}' is {width}x{height} but the dataset is {resolution}x{resolution}; {_fix_hint(resolution, resolution)}")
        if height != width:
            side = _nearest_power_of_two(min(width, height))
            raise DatasetError(f"'{first}' is {width}x{height} but dataset images must be square; "
                               f"re-run dataset_tool.py with --transform=center-crop --width={side} --height={side}")
        if not _is_power_of_two(width) or width < 4:
            side = _nearest_power_of_two(width)
            raise DatasetError(f"'{first}' is {width}x{height} but the resolution must be a power of two >= 4; {_fix_hint(side, side)}")

        name = os.path.splitext(os.path.basename(os.path.normpath(self._path)))[0]
        raw_shape = [len(self._image_fnames), channels, height, width]
        super().__init__(name=name, raw_shape=raw_shape, **super_kwargs)

    def _get_zipfile(self):
        # A forked DataLoader worker must not share the parent's file offset: reopen per process.
        assert self._type == 'zip'
        if self._zipfile is None or self._zip_pid != os.getpid():
            try:
                self._zipfile = zipfile.ZipFile(self._path)
            except zipfile.BadZipFile as err:
                raise DatasetError(f"'{self._path}' is not a readable zip file ({err}); rebuild it with dataset_tool.py") from err
            self._zip_pid = os.getpid()
        return self._zipfile

    def _open_file(self, fname):
        if self._type == 'dir':
            return open(os.path.join(self._path, fname), 'rb')
        return self._get_zipfile().open(fname, 'r')

    def close(self):
        zf = getattr(self, '_zipfile', None)
        self._zipfile = None
        if zf is not None and getattr(self, '_zip_pid', None) == os.getpid():
            zf.close()

    def __getstate__(self):
        return dict(super().__getstate__(), _zipfile=None, _zip_pid=None, _meta=None)

    # Decode one file into uint8 [C, H, W]; any failure names the file.
    def _read_image(self, fname):
        try:
            with self._open_file(fname) as f:
                data = f.read()
            if pyspng is not None and fname.lower().endswith('.png'):
                image = pyspng.load(data)
            else:
                with PIL.Image.open(io.BytesIO(data)) as img:
                    if img.mode not in ('L', 'RGB', 'RGBA'):
                        raise DatasetError(f"'{fname}' has PIL mode '{img.mode}' but dataset images must be 8-bit grayscale, RGB "
                                           f"or RGBA; re-run dataset_tool.py, which converts them")
                    image = np.array(img)
        except DatasetError:
            raise
        except (OSError, SyntaxError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as err:
            raise DatasetError(f"'{fname}' in '{self._path}' cannot be read as an image ({type(err).__name__}: {err}); "
                               f"replace or delete it, or rebuild the dataset with dataset_tool.py") from err
        if image.dtype != np.uint8:
            raise DatasetError(f"'{fname}' has {image.dtype} pixels but dataset images must be 8-bit; re-run dataset_tool.py")
        if image.ndim == 2:
            image = image[:, :, np.newaxis]
        return image.transpose(2, 0, 1)

    def _check_shape(self, fname, channels, height, width):
        _, want_h, want_w = self.image_shape
        if (height, width) != (want_h, want_w):
            raise DatasetError(f"'{fname}' is {width}x{height} but the dataset is {want_w}x{want_h}; {_fix_hint(want_w, want_h)}")
        if channels != self.num_channels:
            raise DatasetError(f"'{fname}' has {channels} channel(s) ({_channel_word(channels)}) but the dataset has "
                               f"{self.num_channels} ({_channel_word(self.num_channels)}); re-run dataset_tool.py so that all images get one colour mode")

    def _load_raw_image(self, raw_idx):
        fname = self._image_fnames[raw_idx]
        image = self._read_image(fname)
        self._check_shape(fname, *image.shape)
        return image

    # Read every image header, raising on the first unreadable file or size or
    # channel mismatch. Upstream inspects only the first image, so a bad file
    # would otherwise surface mid-training. Datasets of at most verify_max_bytes
    # also get PIL's integrity check (verify(): truncation, chunk checksums;
    # no decoding), which reads every file once; larger ones only the headers,
    # to keep start-up fast (a file corrupt past its header then fails when read).
    def check_all_images(self, verify_max_bytes=2**31):
        verify = self._total_bytes() <= verify_max_bytes
        for fname in self._image_fnames:
            try:
                with self._open_file(fname) as f, PIL.Image.open(f) as img:
                    width, height = img.size
                    channels = len(img.getbands())
                    if verify:
                        img.verify()
            except (OSError, SyntaxError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as err:
                raise DatasetError(f"'{fname}' in '{self._path}' cannot be read as an image ({type(err).__name__}: {err}); "
                                   f"replace or delete it, or rebuild the dataset with dataset_tool.py") from err
            self._check_shape(fname, channels, height, width)

    def _total_bytes(self):
        if self._type == 'zip':
            sizes = {info.filename: info.file_size for info in self._get_zipfile().infolist()}
            return sum(sizes.get(fname, 0) for fname in self._image_fnames)
        return sum(os.path.getsize(os.path.join(self._path, fname)) for fname in self._image_fnames)

    # Parsed dataset.json, or an empty dict when there is none.
    def _get_meta(self):
        if self._meta is None:
            self._meta = {}
            if 'dataset.json' in self._all_fnames:
                try:
                    with self._open_file('dataset.json') as f:
                        self._meta = json.load(f)
                except (json.JSONDecodeError, UnicodeDecodeError) as err:
                    raise DatasetError(f"'dataset.json' in '{self._path}' is not valid JSON ({err}); fix it or rebuild the dataset with dataset_tool.py") from err
                if not isinstance(self._meta, dict):
                    raise DatasetError(f"'dataset.json' in '{self._path}' must hold a JSON object with a \"labels\" entry")
        return self._meta

    # Values of a [[name, value], ...] entry of dataset.json, one per image, in image order.
    def _per_image_entry(self, key):
        pairs = self._get_meta().get(key)
        if pairs is None:
            return None
        try:
            table = dict(pairs)
        except (TypeError, ValueError) as err:
            raise DatasetError(f'dataset.json: "{key}" must be null or a list of [file name, value] pairs') from err
        values = []
        for fname in self._image_fnames:
            value = table.get(fname.replace('\\', '/'), table)
            if value is table:
                num_missing = sum(f.replace('\\', '/') not in table for f in self._image_fnames)
                raise DatasetError(f"dataset.json: \"{key}\" has no entry for '{fname}' ({num_missing} of {len(self._image_fnames)} "
                                   f"images lack one); add the missing entries or set \"{key}\": null")
            values.append(value)
        return values

    def _load_raw_labels(self):
        values = self._per_image_entry('labels')
        if values is None:
            return None
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            if any(v < 0 or v >= MAX_CLASSES for v in values):  # before the cast: int64 would overflow on huge ones
                bad = next(v for v in values if v < 0 or v >= MAX_CLASSES)
                raise DatasetError(f'dataset.json: class label {bad} is out of range; class indices must be in [0, {MAX_CLASSES}) '
                                   f'(one-hot labels take 4 bytes per class per image: {bad + 1} classes would need '
                                   f'{4 * (bad + 1) / 2**20:.3g} MiB per image)' if bad >= 0 else
                                   f'dataset.json: class labels must be >= 0, got {bad}')
            return np.array(values, dtype=np.int64)
        try:
            labels = np.array(values, dtype=np.float32)
        except (TypeError, ValueError) as err:
            raise DatasetError('dataset.json: labels must be all class indices (integers) or all equal-length lists of numbers') from err
        if labels.ndim < 2:
            raise DatasetError('dataset.json: labels must be all class indices (integers) or all equal-length lists of numbers')
        if not np.isfinite(labels).all():  # checked after the cast to float32, where 1e300 becomes inf
            row = int(np.argmax(~np.isfinite(labels).reshape(len(labels), -1).all(axis=1)))
            raise DatasetError(f'dataset.json: the label of \'{self._image_fnames[row]}\' holds NaN or a value that is not finite '
                               f'in float32 (|x| > 3.4e38); labels must be finite numbers')
        return labels

    def _load_raw_modes(self):
        values = self._per_image_entry('modes')
        if values is None:
            return None
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
            raise DatasetError('dataset.json: "modes" must map every image to a mode index >= 0')
        return np.array(values, dtype=np.int64)

    def _load_mode_info(self):
        info = self._get_meta().get('synthetic')
        return dict(info) if isinstance(info, dict) else None

#----------------------------------------------------------------------------
# Name of image idx inside a written dataset, e.g. '00049/img00049999.png'.

def image_archive_name(idx):
    return f'{idx // 1000:05d}/img{idx:08d}.png'

#----------------------------------------------------------------------------
# Encode one uint8 image ([H, W], [H, W, 1] or [H, W, 3]) as an uncompressed PNG.

def encode_png(image):
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f'encode_png: image must be uint8, got {image.dtype}')
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise ValueError(f'encode_png: image must be [H, W], [H, W, 1] or [H, W, 3], got {list(image.shape)}')
    buf = io.BytesIO()
    PIL.Image.fromarray(image, 'L' if image.ndim == 2 else 'RGB').save(buf, format='png', compress_level=0, optimize=False)
    return buf.getvalue()

#----------------------------------------------------------------------------
# Writes a dataset in the layout ImageFolderDataset reads: PNG files plus
# dataset.json, into a .zip (stored, no directory entries, fixed timestamps so
# equal inputs give equal bytes) or into a folder that must be empty or absent.
# Use it as a context manager: the destination appears only if the block ends
# without an exception.

class DatasetWriter:
    def __init__(self, dest):
        self.dest = os.fspath(dest)
        self.is_zip = self.dest.lower().endswith('.zip')
        if not self.is_zip and os.path.exists(self.dest) and (not os.path.isdir(self.dest) or os.listdir(self.dest)):
            raise ValueError(f"'{self.dest}' exists and is not an empty folder; choose a new destination or empty it")
        if self.is_zip and os.path.isdir(self.dest):
            raise ValueError(f"'{self.dest}' is a folder; a .zip destination must be a file path")
        self._stack = None
        self._zip = None
        self._tmp_dir = None
        self._names = set()

    def __enter__(self):
        parent = os.path.dirname(os.path.abspath(self.dest))
        os.makedirs(parent, exist_ok=True)
        self._stack = contextlib.ExitStack()
        if self.is_zip:
            f = self._stack.enter_context(dnnlib.util.atomic_write(self.dest, 'wb'))
            self._zip = self._stack.enter_context(zipfile.ZipFile(f, 'w', compression=zipfile.ZIP_STORED))
        else:
            self._tmp_dir = os.path.join(parent, f'.{os.path.basename(os.path.normpath(self.dest))}.{uuid.uuid4().hex}.tmp')
            os.makedirs(self._tmp_dir)
        return self

    def _write(self, name, data):
        if name in self._names or name.startswith('/') or '\\' in name or '..' in name.split('/'):
            raise ValueError(f"DatasetWriter: bad or repeated archive name '{name}'")
        self._names.add(name)
        if self._zip is not None:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            self._zip.writestr(info, data, compress_type=zipfile.ZIP_STORED)
        else:
            path = os.path.join(self._tmp_dir, *name.split('/'))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, 'wb') as f:
                f.write(data)

    # Add one image under a relative name such as '00000/img00000000.png'.
    def add_image(self, name, image):
        self._write(name, encode_png(image))

    # Write dataset.json ({"labels": ..., optional "modes"/"synthetic"}).
    def write_metadata(self, meta):
        self._write('dataset.json', json.dumps(meta).encode('utf-8'))

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self._stack.close()  # finishes the zip and moves it into place
            if self._tmp_dir is not None:
                if os.path.isdir(self.dest):
                    os.rmdir(self.dest)  # checked empty in __init__
                os.rename(self._tmp_dir, self.dest)
        else:
            self._stack.__exit__(exc_type, exc, tb)
            if self._tmp_dir is not None:
                shutil.rmtree(self._tmp_dir, ignore_errors=True)
        return False

#----------------------------------------------------------------------------
