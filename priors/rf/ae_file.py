"""RFGAN's pretrained autoencoder on disk (Bang & Shim, ICML 2018, §3.1): the file format, building it once, caching it keyed by dataset and settings, and validated loading.

An autoencoder file is a torch.save() of plain dicts, lists, numbers, strings
and tensors, so torch.load(weights_only=True) reads it without running code:

    format_version  int, FORMAT_VERSION when written; newer files are refused
    kind            'rfgan-autoencoder'
    created         time of writing, 'YYYY-mm-dd HH:MM:SS'
    dataset         torch_utils.built_files.dataset_identity() of the training images
    settings        dict(code_dim, corruption, level, loss, kimg, batch, lr, betas, seed, max_images)
    encoder         dict(kwargs, state_dict): kwargs with class_name, built as cls(img_resolution, img_channels, **kwargs)
    bottleneck      dict(state_dict) of the linear layer encoder features -> code
    decoder         dict(kwargs, state_dict): the generator-shaped decoder (z_dim = code_dim, c_dim = 0)
    num_features    width of h1, the encoder's output
    history         dict(step, kimg, loss, sec, num_images): the training curve
    evaluation      dict(clean, corrupted): mean reconstruction error on the first 256 images
    digest          the cache key's digest (identifies the file in D's feature module)

Files come from build_rf.py or from get_or_build_autoencoder(), which caches
them under <dnnlib cache>/priors keyed by the dataset's identity, the encoder
and decoder architecture and every setting. The protocol shared with other
built files (identity, digest, get-or-build, the validation ladder) lives in
torch_utils/built_files.py; this module holds the record layout.
"""

import os
import time

import torch

import dnnlib
from priors import features as features_module
from priors.rf import autoencoder
from torch_utils import built_files

#----------------------------------------------------------------------------

FORMAT_VERSION = 1
FILE_KIND = 'rfgan-autoencoder'
_REQUIRED_KEYS = ('dataset', 'settings', 'encoder', 'bottleneck', 'decoder', 'num_features', 'digest')
_EXECUTION_KEYS = ('num_fp16_res', 'conv_clamp', 'fp16_channels_last', 'channels_last', 'freeze_layers', 'side_kwargs')

#----------------------------------------------------------------------------
# A file that is missing, unreadable or built for something else.

class AutoencoderFileError(built_files.BuiltFileError):
    pass

FILE_FORMAT = built_files.FileFormat(FILE_KIND, FORMAT_VERSION, _REQUIRED_KEYS, title='Autoencoder file',
                                     noun='an RFGAN autoencoder file', error=AutoencoderFileError)

#----------------------------------------------------------------------------
# The settings of an autoencoder, normalised (plain types), as stored and keyed.

def normalize_settings(code_dim, corruption='gaussian', level=0.1, loss='l2', kimg=200, batch=64, lr=1e-3, betas=(0.9, 0.999),
                       seed=0, max_images=None):
    if corruption not in autoencoder.CORRUPTIONS:
        raise ValueError(f'corruption must be one of {", ".join(autoencoder.CORRUPTIONS)}, got {corruption!r}')
    if loss not in autoencoder.LOSSES:
        raise ValueError(f'loss must be one of {", ".join(autoencoder.LOSSES)}, got {loss!r}')
    if level < 0 or (corruption == 'mask' and level > 1):
        raise ValueError(f'corruption level must be >= 0 (and <= 1 for mask), got {level!r}')
    if kimg <= 0 or batch < 1 or lr <= 0 or code_dim < 1:
        raise ValueError(f'autoencoder kimg, batch, lr and code_dim must be positive, got {kimg}, {batch}, {lr}, {code_dim}')
    return dict(code_dim=int(code_dim), corruption=str(corruption), level=float(level), loss=str(loss), kimg=float(kimg),
                batch=int(batch), lr=float(lr), betas=[float(b) for b in betas], seed=int(seed),
                max_images=None if max_images is None else int(max_images))

# The architecture part of a kwargs dict: everything but how it executes
# (mixed precision, clamping, memory layout, Freeze-D, other priors' side
# modules), so that those do not split the cache.
def _shape_key(kwargs):
    out = {}
    for key, value in dict(kwargs).items():
        if key not in _EXECUTION_KEYS:
            out[key] = _shape_key(value) if isinstance(value, dict) else value
    return out

# Cache key and its digest.
def cache_digest(identity, encoder_kwargs, decoder_kwargs, settings):
    key = dict(format_version=FORMAT_VERSION, settings=settings, encoder=_shape_key(encoder_kwargs), decoder=_shape_key(decoder_kwargs),
               dataset=built_files.identity_key(identity))
    return built_files.cache_digest(key)

#----------------------------------------------------------------------------
# Train an autoencoder and write its file at `path` (rank 0 writes; with
# several processes every rank must call this and all train together).
# Returns the record (on every rank).

def build_autoencoder_file(path, dataset_kwargs, encoder_kwargs, decoder_kwargs, settings,
    device      = None,     # None = cuda:<rank> when available, else cpu.
    rank        = 0,        # This process.
    num_gpus    = 1,        # Number of processes taking part.
    progress    = None,     # Callable(step, num_steps, loss) or None.
    identity    = None,     # dataset_identity(dataset_kwargs), if already known.
):
    device = features_module.resolve_device(device, rank)
    identity = identity if identity is not None else built_files.dataset_identity(dataset_kwargs)
    settings = normalize_settings(**settings)
    ae, history = autoencoder.train_autoencoder(dataset_kwargs, encoder_kwargs, decoder_kwargs, device=device, rank=rank,
                                                num_gpus=num_gpus, progress=progress, **settings)
    evaluation = autoencoder.evaluate_autoencoder(ae, dataset_kwargs, settings['corruption'], settings['level'], settings['loss'],
                                                  seed=settings['seed'], device=device)
    record = dict(
        format_version  = FORMAT_VERSION,
        kind            = FILE_KIND,
        created         = time.strftime('%Y-%m-%d %H:%M:%S'),
        dataset         = identity,
        settings        = settings,
        encoder         = dict(kwargs=built_files.plain(encoder_kwargs), state_dict=built_files.cpu_state(ae.encoder)),
        bottleneck      = dict(state_dict=built_files.cpu_state(ae.bottleneck)),
        decoder         = dict(kwargs=built_files.plain(decoder_kwargs), state_dict=built_files.cpu_state(ae.decoder)),
        num_features    = int(ae.encoder.num_features),
        history         = history,
        evaluation      = evaluation,
        digest          = cache_digest(identity, encoder_kwargs, decoder_kwargs, settings),
    )
    built_files.finish_build(record, path, rank=rank, num_gpus=num_gpus)
    record['path'] = os.fspath(path)
    return record

#----------------------------------------------------------------------------
# Path of the cached file for these inputs.

def cache_path(dataset_kwargs, encoder_kwargs, decoder_kwargs, settings, cache_dir=None, identity=None):
    identity = identity if identity is not None else built_files.dataset_identity(dataset_kwargs)
    digest = cache_digest(identity, encoder_kwargs, decoder_kwargs, normalize_settings(**settings))
    folder = cache_dir if cache_dir is not None else dnnlib.make_cache_dir_path('priors')
    return built_files.cache_file(folder, identity['name'], 'rfgan-ae', digest)

#----------------------------------------------------------------------------
# The autoencoder a run needs, built once and cached. Rank 0 decides whether
# the file exists; when it does not, all ranks train together and rank 0
# writes it. Returns the record (on every rank).

def get_or_build_autoencoder(dataset_kwargs, encoder_kwargs, decoder_kwargs, settings,
    cache_dir   = None,     # Folder of cached files. None = <dnnlib cache>/priors.
    device      = None,     # None = cuda:<rank> when available, else cpu.
    rank        = 0,        # This process.
    num_gpus    = 1,        # Number of processes taking part.
    progress    = None,     # Callable(step, num_steps, loss) or None.
):
    device = features_module.resolve_device(device, rank)
    identity = built_files.dataset_identity(dataset_kwargs)
    path = cache_path(dataset_kwargs, encoder_kwargs, decoder_kwargs, settings, cache_dir=cache_dir, identity=identity)
    build = lambda path: build_autoencoder_file(path, dataset_kwargs, encoder_kwargs, decoder_kwargs, settings, device=device, rank=rank,
                                                num_gpus=num_gpus, progress=progress, identity=identity)
    load = lambda path: load_autoencoder_file(path, expect_dataset=identity, expect_encoder=encoder_kwargs)
    return built_files.get_or_build(path, build, load, rank=rank, num_gpus=num_gpus, device=device)

#----------------------------------------------------------------------------
# Load and validate a file. expect_dataset: None, dataset kwargs or a
# dataset_identity() dict; expect_encoder: None or the encoder kwargs the run's
# D uses (their shape-defining part must match). Returns the record.

def load_autoencoder_file(path, expect_dataset=None, expect_encoder=None):
    path = os.fspath(path)
    rebuild = f'rebuild it with build_rf.py (the train.py options of the run) --out={path}, or drop --rf-ae'
    record = built_files.load_record(path, FILE_FORMAT, rebuild)
    record['path'] = path
    if expect_dataset is not None:   # built for this dataset (any selection of it: the encoder sees single images)?
        built_files.check_dataset(FILE_FORMAT, path, record['dataset'], expect_dataset, rebuild, check_selection=False)
    if expect_encoder is not None and _shape_key(record['encoder']['kwargs']) != _shape_key(expect_encoder):
        raise AutoencoderFileError(f"Autoencoder file '{path}' has an encoder {_shape_key(record['encoder']['kwargs'])} but this "
                                   f"run's D needs {_shape_key(expect_encoder)}; {rebuild}")
    return record

#----------------------------------------------------------------------------
# Rebuild the whole autoencoder (encoder, bottleneck, decoder) from a record,
# e.g. for reconstruction pictures. Returns a DenoisingAutoencoder in eval mode.

def autoencoder_from_record(record, device='cpu'):
    ident = record['dataset']
    with torch.random.fork_rng(devices=[]):
        ae = autoencoder.DenoisingAutoencoder(ident['resolution'], ident['num_channels'], record['encoder']['kwargs'],
                                              record['decoder']['kwargs'], record['settings']['code_dim'])
    ae.encoder.load_state_dict(record['encoder']['state_dict'])
    ae.bottleneck.load_state_dict(record['bottleneck']['state_dict'])
    ae.decoder.load_state_dict(record['decoder']['state_dict'])
    return ae.eval().requires_grad_(False).to(device)

#----------------------------------------------------------------------------
