"""Files that plugins build once from the training data and then reuse (a fitted density model, a pretrained autoencoder, a classifier): the dataset identity they are keyed by, the cache digest, the rank-0 get-or-build, and loading with validation.

A built file is a torch.save() of plain dicts, lists, numbers, strings and
tensors, so torch.load(weights_only=True) reads it without running any code
from the file. Every type of built file is described by a `FileFormat` (its
`kind` string, the newest `format_version` this code reads and the keys a
record must hold); the record layout beyond that belongs to the plugin.

Loading (`load_record`) runs the same ladder for every type; each step's error
names the file and the fix:
  1. the file exists;
  2. it reads safely (`read_file`: no code from the file runs);
  3. it holds a dict with this type's `kind` and an integer `format_version`;
  4. that version is not newer than this code reads;
  5. it holds every required key.
`check_dataset` then compares the dataset a file was built for with the run's.

Cached files are named <dataset name>-<tag>-<digest>.pt, where the digest
(`cache_digest`) is the md5 of the canonical text of a key dict: everything
that changes the file's content (settings, architecture, the dataset's
`identity_key`) and nothing that does not (where the dataset lies).
"""

import hashlib
import os
import pickle
import re
import zipfile

import numpy as np
import PIL.Image
import torch

import dnnlib

#----------------------------------------------------------------------------
# A built file that is missing, unreadable or built for something else. An
# OSError (a file problem) that is also a ValueError (our user-error
# convention). Each plugin subclasses it for its own files.

class BuiltFileError(OSError, ValueError):
    pass

#----------------------------------------------------------------------------
# Canonical text of nested dicts / lists / plain values (dict keys sorted), and
# its md5: the cache digest. The text is stable across processes and runs, so
# the same key always names the same file.

def canonical_text(obj):
    if isinstance(obj, dict):
        return '{' + ', '.join(f'{k!r}: {canonical_text(v)}' for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))) + '}'
    if isinstance(obj, (list, tuple)):
        return '[' + ', '.join(canonical_text(v) for v in obj) + ']'
    return repr(obj)

def cache_digest(key):
    return hashlib.md5(canonical_text(key).encode('utf-8')).hexdigest()

# Path of a cached file: <folder>/<dataset name>-<tag>-<digest>.pt.
def cache_file(folder, dataset_name, tag, digest):
    return os.path.join(folder, f'{dataset_name}-{tag}-{digest}.pt')

#----------------------------------------------------------------------------
# Identity of a dataset: what it is (content fingerprint, resolution, channels)
# and which of its images a run sees (selection: subset and mirroring, the
# order of dataset items). dataset: kwargs for construct_class_by_name, or a
# dataset object (then its files are fingerprinted only if it has a `_path`).
# Returns a dict of plain values.

IDENTITY_KEYS = ('fingerprint', 'selection', 'resolution', 'num_channels')   # what a cache key holds (not the path)
_SAMPLED_FILES = 64          # folder datasets: files whose bytes enter the fingerprint

def dataset_identity(dataset):
    if isinstance(dataset, dict):
        kwargs = dnnlib.EasyDict(dataset)
        dataset = dnnlib.util.construct_class_by_name(**kwargs)
    else:
        kwargs = dnnlib.EasyDict(class_name=f'{type(dataset).__module__}.{type(dataset).__qualname__}', path=getattr(dataset, '_path', None))
    path = kwargs.get('path')
    path = os.path.abspath(os.fspath(path)) if path is not None else None
    flips = np.asarray(getattr(dataset, '_xflip', np.zeros(len(dataset), dtype=np.uint8)))
    return dict(
        name            = str(dataset.name),
        path            = path,
        class_name      = kwargs.get('class_name'),
        num_images      = int(len(dataset)),
        num_raw_images  = int(len(dataset) - int(flips.sum())),
        resolution      = int(dataset.resolution),
        num_channels    = int(dataset.num_channels),
        xflip           = bool(flips.any()),
        fingerprint     = _content_fingerprint(path, dataset),
        selection       = _selection_digest(dataset),
    )

# The part of an identity that enters a cache key.
def identity_key(identity):
    return {k: identity[k] for k in IDENTITY_KEYS}

# An identity from dataset kwargs, a dataset object or an identity dict.
def as_identity(dataset):
    return dataset if isinstance(dataset, dict) and 'fingerprint' in dataset else dataset_identity(dataset)

# Cheap content hash. Zip: every member's name, size and CRC (from the
# central directory). Folder: every image file's name and size, plus the bytes
# of dataset.json and of up to _SAMPLED_FILES evenly spaced image files (names
# and sizes alone cannot tell apart two datasets of uncompressed PNGs).
# Anything else: the bytes of up to 16 evenly spaced images.
def _content_fingerprint(path, dataset):
    digest = hashlib.md5()
    if path is not None and os.path.isfile(path) and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            for info in sorted((i for i in zf.infolist() if not i.is_dir()), key=lambda i: i.filename):
                digest.update(f'{info.filename}\0{info.file_size}\0{info.CRC}\n'.encode('utf-8'))
        return 'zip:' + digest.hexdigest()
    if path is not None and os.path.isdir(path):
        PIL.Image.init()
        files = sorted(os.path.relpath(os.path.join(root, f), path).replace('\\', '/')
                       for root, _dirs, names in os.walk(path) for f in names)
        images = [f for f in files if os.path.splitext(f)[1].lower() in PIL.Image.EXTENSION]
        for f in images:
            digest.update(f'{f}\0{os.path.getsize(os.path.join(path, f))}\n'.encode('utf-8'))
        sampled = [images[i] for i in np.unique(np.linspace(0, len(images) - 1, _SAMPLED_FILES).astype(np.int64))] if images else []
        for f in sampled + (['dataset.json'] if 'dataset.json' in files else []):
            with open(os.path.join(path, f), 'rb') as fh:
                digest.update(fh.read())
        return 'dir:' + digest.hexdigest()
    num = len(dataset)
    for idx in np.unique(np.linspace(0, max(num - 1, 0), 16).astype(np.int64))[:num]:
        digest.update(np.ascontiguousarray(dataset[int(idx)][0]).tobytes())
    return 'pixels:' + digest.hexdigest()

# Which raw image (and whether mirrored) each dataset item is.
def _selection_digest(dataset):
    raw_idx, flips = getattr(dataset, '_raw_idx', None), getattr(dataset, '_xflip', None)
    if raw_idx is None or flips is None:
        details = [dataset.get_details(i) for i in range(len(dataset))]
        raw_idx = [d.raw_idx for d in details]
        flips = [d.xflip for d in details]
    digest = hashlib.md5(np.asarray(raw_idx, dtype=np.int64).tobytes())
    digest.update(np.asarray(flips, dtype=np.uint8).tobytes())
    return digest.hexdigest()

# One line about a dataset identity, for error messages.
def describe_dataset(identity):
    d = identity
    return (f"'{d['name']}' ({d['num_raw_images']} images, {d['resolution']}x{d['resolution']}, "
            f"{d['num_channels']} channel(s), fingerprint {d['fingerprint'][:16]}) at {d['path']}")

#----------------------------------------------------------------------------
# One type of built file, and the validation of its records (ladder steps 3-5).

class FileFormat:
    def __init__(self,
        kind,                   # The `kind` string every file of this type holds.
        version,                # Newest format_version this code reads (and writes).
        required,               # Keys a record must hold.
        title,                  # How messages name a file: '<title> <path>', e.g. 'Prior file'.
        noun,                   # What a wrong file is not, e.g. 'a prior file'.
        error   = BuiltFileError,   # Exception class raised (a BuiltFileError subclass).
    ):
        self.kind, self.version, self.required = str(kind), int(version), tuple(required)
        self.title, self.noun, self.error = title, noun, error

    # Steps 3-5 on a loaded record. name: the record's origin as a quoted path
    # ("'x.pt'"), or a phrase for a record that is not a file (e.g. a dict
    # inside a snapshot); from_file: whether to suggest deleting it.
    def check(self, record, name, fix, from_file=True):
        subject = f'{self.title} {name}' if from_file else name
        delete = 'delete it and ' if from_file else ''
        if not isinstance(record, dict) or record.get('kind') != self.kind or not isinstance(record.get('format_version'), int):
            raise self.error(f"{name} is not {self.noun} (no kind='{self.kind}' and format_version); {fix}")
        if record['format_version'] > self.version:
            raise self.error(f"{subject} has format_version {record['format_version']}, newer than this code reads "
                             f"(up to {self.version}); update this code, or {fix}")
        missing = [k for k in self.required if k not in record]
        if missing:
            incomplete = 'is incomplete' if from_file else f'is an incomplete {self.noun.split(" ", 1)[-1]}'
            raise self.error(f"{subject} {incomplete} (missing {', '.join(missing)}); {delete}{fix}")
        return record

#----------------------------------------------------------------------------
# Reading and writing. read_file() is the one place a built file is read.

# 'ErrorType: first sentence of its message', for one-line error messages.
def describe_error(err):
    text = str(err).strip().splitlines()[0] if str(err).strip() else ''
    return f'{type(err).__name__}: {text.split(". ")[0]}'

# Read a torch.save() file of plain data without running code from it (ladder
# step 2). Raises fmt.error naming the file and the fix.
def read_file(path, fmt, fix):
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as err:
        unsafe = re.search(r'Unsupported global: GLOBAL ([\w.]+)', str(err))
        if unsafe is None:
            raise fmt.error(f"{fmt.title} '{path}' is corrupt or truncated (it is not a readable torch.save file); "
                            f"delete it and {fix}") from err
        raise fmt.error(f"'{path}' is not {fmt.noun}: it holds objects that cannot be loaded safely ({unsafe.group(1)}): "
                        f"pickled objects, which are refused because loading them runs code; {fix}") from err
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, IndexError, TypeError) as err:  # garbage bytes fail in many ways
        raise fmt.error(f"{fmt.title} '{path}' is corrupt or truncated ({describe_error(err)}); delete it and {fix}") from err

# Load a built file and run the validation ladder (steps 1-5). fix: how to
# make a good file (e.g. 'rebuild it with build_x.py ... --out=PATH');
# missing_fix: the fix for a file that does not exist (default: fix).
# Returns the record (a dict).
def load_record(path, fmt, fix, missing_fix=None):
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise fmt.error(f"{fmt.title} '{path}' does not exist; {missing_fix or fix}")
    record = read_file(path, fmt, fix)
    return fmt.check(record, f"'{path}'", fix)

# Write a record atomically (readers never see half a file).
def write_record(record, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with dnnlib.util.atomic_write(path, 'wb') as f:
        torch.save(record, f)

# A module's state_dict as detached CPU copies (what a record stores).
def cpu_state(module):
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}

# Nested kwargs as plain dicts and lists (EasyDict and tuples do not load with weights_only=True).
def plain(obj):
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    return obj

#----------------------------------------------------------------------------
# Does the file match the run's dataset? built: the identity stored in the
# file; expected: dataset kwargs, a dataset object or an identity. Compares
# content (fingerprint, resolution, channels) and, with check_selection, which
# items the run sees (subset and mirroring); selection_why: what a mismatch
# breaks (', so ...'). Raises fmt.error with the fix. Returns the identity.

def check_dataset(fmt, path, built, expected, fix, check_selection=True, selection_why=''):
    expected = as_identity(expected)
    if any(built[k] != expected[k] for k in ('fingerprint', 'resolution', 'num_channels')):
        raise fmt.error(f"{fmt.title} '{path}' was built for dataset {describe_dataset(built)} "
                        f"but the training data is {describe_dataset(expected)}; {fix}")
    if check_selection and built['selection'] != expected['selection']:
        raise fmt.error(f"{fmt.title} '{path}' was built for {built['num_images']} items of dataset '{built['name']}' "
                        f"(xflip={built['xflip']}) but the training data has {expected['num_images']} items "
                        f"(xflip={expected['xflip']}){selection_why}; {fix}")
    return expected

#----------------------------------------------------------------------------
# Get or build, for one process or several: rank 0 decides whether the file
# exists. When it does not, every rank calls build(path) (the ranks may work
# together; rank 0 writes, see finish_build); otherwise every rank calls
# load(path). Returns what build or load returns.

def get_or_build(path, build, load, rank=0, num_gpus=1, device='cpu'):
    if not _rank0_flag(rank == 0 and os.path.isfile(path), num_gpus, device):
        return build(path)
    return load(path)

# The end of a build: rank 0 writes the record, the others wait until it is there.
def finish_build(record, path, rank=0, num_gpus=1):
    if rank == 0:
        write_record(record, path)
    if num_gpus > 1:
        torch.distributed.barrier()

# Rank 0's value of a flag, on every rank.
def _rank0_flag(flag, num_gpus, device):
    if num_gpus == 1:
        return bool(flag)
    t = torch.as_tensor(float(flag), dtype=torch.float32, device=device)
    torch.distributed.broadcast(t, src=0)
    return bool(t.item())

#----------------------------------------------------------------------------
