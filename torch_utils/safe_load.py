"""One loader for every file a user names: network pickles, torch.save() files, TorchScript files and plain pickles.

Safe by default. Nothing in a file runs when it is loaded, unless pickles are trusted:

    network pickles         legacy.load_network_pkl's allowlist unpickler: our snapshots, official StyleGAN2-ADA
                            pickles and TensorFlow StyleGAN2 pickles rebuild as our classes by name; embedded
                            source code never runs
    torch.save() files      torch.load(weights_only=True): tensors, numbers, strings, containers
                            (prior files, autoencoder files, classifier files, state files, state_dicts)
    TorchScript files       torch.jit.load: TorchScript code runs in the TorchScript interpreter, not as Python
    plain pickles           an allowlist of NumPy array and container globals (CIFAR-10 batches, feature caches)

Trusting pickles (the --trust-pickle flag of every script, or trusted_pickles(True) in Python) also
accepts pickles that need their own code: a pickled nn.Module, a third-party fork's network classes (their
embedded source is exec'd, as the official loader does). Only for files whose origin you trust.
The flag reaches the processes a run spawns through the environment variable SG2ADA_TRUST_PICKLE=1, set
only while a command with --trust-pickle runs.

Every failure is a one-line FileLoadError (a ValueError) that names the file and says what to do.
"""

import contextlib
import functools
import io
import os
import pickle
import zipfile

import click
import numpy as np
import torch

#----------------------------------------------------------------------------

TRUST_ENV = 'SG2ADA_TRUST_PICKLE'
TRUST_HELP = ('Also load pickles that run their own code when loaded (a pickled nn.Module, a network pickle of '
              'classes this code does not have, whose embedded source is executed). Only for files you trust: '
              'without it every file loads in safe mode, which runs nothing from the file')
SAFE_LOAD_HELP = 'Accepted for compatibility: safe loading is the default now (see --trust-pickle)'
TRUST_HINT = 'give --trust-pickle only if you trust where the file came from'

class FileLoadError(ValueError):
    """A file could not be loaded; the message is one line naming the file."""

class UnsafeFileError(FileLoadError):
    """The file needs code from itself to load, and pickles are not trusted."""

#----------------------------------------------------------------------------
# The process-wide opt-in.

def pickles_trusted():
    return os.environ.get(TRUST_ENV, '') == '1'

@contextlib.contextmanager
def trusted_pickles(enabled=True):
    old = os.environ.get(TRUST_ENV)
    if enabled:
        os.environ[TRUST_ENV] = '1'
    else:
        os.environ.pop(TRUST_ENV, None)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(TRUST_ENV, None)
        else:
            os.environ[TRUST_ENV] = old

def _trusted(trust):
    return pickles_trusted() if trust is None else bool(trust)

# Decorator for click commands: adds --trust-pickle and --safe-load (a no-op kept for old command lines) and runs the
# command with pickles trusted only when --trust-pickle is given. Put it right below @click.command().
def cli_options(fn):
    @functools.wraps(fn)
    def wrapper(*args, trust_pickle=False, safe_load=None, **kwargs):
        if trust_pickle and safe_load:
            raise click.ClickException('--trust-pickle and --safe-load contradict each other; give one of them')
        with trusted_pickles(bool(trust_pickle)):
            return fn(*args, **kwargs)
    wrapper = click.option('--safe-load', 'safe_load', help=SAFE_LOAD_HELP, type=_LooseBool(), is_flag=False,
                           flag_value=True, default=None, metavar='[BOOL]')(wrapper)
    wrapper = click.option('--trust-pickle', 'trust_pickle', help=TRUST_HELP, is_flag=True)(wrapper)
    return wrapper

# --safe-load was a flag in some scripts and took a BOOL in others; both spellings stay valid.
class _LooseBool(click.ParamType):
    name = 'BOOL'
    def convert(self, value, param, ctx):
        if isinstance(value, bool):
            return value
        return click.BOOL.convert(value, param, ctx)

#----------------------------------------------------------------------------
# Network pickles (snapshots, official and TensorFlow pickles): legacy's loader in safe mode
# unless pickles are trusted.

def load_network_pkl(f, force_fp16=False, trust=None):
    import legacy # pylint: disable=import-outside-toplevel
    return legacy.load_network_pkl(f, force_fp16=force_fp16, safe=not _trusted(trust))

#----------------------------------------------------------------------------
# torch.save() files: weights_only=True; with trust, pickled objects too.

def load_torch_file(path, what='file', trust=None, map_location='cpu'):
    path = os.fspath(path)
    head = _head(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        refused = _refused_global(err)
        if refused is None:
            raise FileLoadError(f'{what} "{path}" {_describe_unreadable(head, err)}') from None
        if not _trusted(trust):
            raise UnsafeFileError(f'{what} "{path}" holds pickled objects beyond plain tensor data ({refused}), which can '
                                  f'run code when loaded; refused (safe loading); {TRUST_HINT}') from None
    except Exception as err: # pylint: disable=broad-except
        # Garbage fails inside torch.load in many ways (KeyError, RuntimeError, EOFError, ...).
        raise FileLoadError(f'{what} "{path}" {_describe_unreadable(head, err)}') from None
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err: # pylint: disable=broad-except
        raise FileLoadError(f'{what} "{path}" cannot be loaded even as a trusted pickle ({_first_line(err)})') from None

# TorchScript files hold compiled code (constants.pkl / code/); plain torch.save() archives do not.
def is_torchscript_file(path):
    try:
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as zf:
            return any(n.endswith('/constants.pkl') or '/code/' in n for n in zf.namelist())
    except (OSError, zipfile.BadZipFile):
        return False

# A network from a file: TorchScript (torch.jit.load), or a torch.save() file (a pickled module needs trust).
def load_module_file(path, what='file', trust=None, map_location='cpu'):
    path = os.fspath(path)
    if is_torchscript_file(path):
        try:
            return torch.jit.load(path, map_location=map_location)
        except Exception as err: # pylint: disable=broad-except
            raise FileLoadError(f'{what} "{path}" is not a loadable TorchScript file ({_first_line(err)})') from None
    return load_torch_file(path, what=what, trust=trust, map_location=map_location)

#----------------------------------------------------------------------------
# Plain pickles (CIFAR-10 batches, metric feature caches): containers, numbers, strings and NumPy arrays.

def load_plain_pickle(f, what='file', encoding='ASCII', trust=None):
    name = getattr(f, 'name', what)
    if _trusted(trust):
        unpickler = pickle.Unpickler(f, encoding=encoding)
    else:
        unpickler = _PlainUnpickler(f, encoding=encoding)
    try:
        return unpickler.load()
    except _Refused as err:
        raise UnsafeFileError(f'{what} "{name}" holds pickled code ({err}), which runs when loaded; refused '
                              f'(safe loading); {TRUST_HINT}') from None
    except Exception as err: # pylint: disable=broad-except
        raise FileLoadError(f'{what} "{name}" is not a readable pickle ({_first_line(err)})') from None

class _Refused(pickle.UnpicklingError):
    pass

@functools.lru_cache(maxsize=None)
def _plain_globals():
    np_core = getattr(np, '_core', None) or getattr(np, 'core')
    table = {('numpy', 'dtype'): np.dtype, ('numpy', 'ndarray'): np.ndarray, ('builtins', 'set'): set,
             ('builtins', 'frozenset'): frozenset, ('builtins', 'bytearray'): bytearray, ('builtins', 'complex'): complex,
             ('collections', 'OrderedDict'): __import__('collections').OrderedDict}
    for prefix in ('numpy.core', 'numpy._core'):
        table[(f'{prefix}.multiarray', 'scalar')] = np_core.multiarray.scalar
        table[(f'{prefix}.multiarray', '_reconstruct')] = np_core.multiarray._reconstruct
        table[(f'{prefix}.numeric', '_frombuffer')] = np_core.numeric._frombuffer
    import codecs # pylint: disable=import-outside-toplevel
    def latin1_encode(text, encoding='latin1'):
        if encoding not in ('latin1', 'latin-1') or not isinstance(text, str):
            raise _Refused(f'_codecs.encode with encoding {encoding!r}')
        return codecs.encode(text, encoding)
    table[('_codecs', 'encode')] = latin1_encode
    return table

class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        obj = _plain_globals().get((module, name))
        if obj is None:
            raise _Refused(f'the global "{module}.{name}"')
        return obj

    def persistent_load(self, pid):
        raise _Refused(f'the persistent id {pid!r}')

#----------------------------------------------------------------------------
# One-line descriptions.

def _first_line(err):
    text = str(err).strip()
    return f'{type(err).__name__}: {text.splitlines()[0]}' if text else type(err).__name__

def _head(path):
    try:
        with open(path, 'rb') as f:
            return f.read(4)
    except OSError:
        return None

def _refused_global(err):
    import re # pylint: disable=import-outside-toplevel
    text = str(err)
    match = re.search(r'Unsupported global: GLOBAL ([\w.]+)', text)
    if match is not None:
        return f'the global "{match.group(1)}"'
    match = re.search(r'Unsupported operand (\d+)', text)
    if match is not None:
        return f'pickle opcode {match.group(1)}, outside what the weights-only reader accepts'
    if 'Weights only load failed' in text:
        return 'refused by torch.load(weights_only=True)'
    return None

def _describe_unreadable(head, err):
    if head is None:
        return f'cannot be read ({_first_line(err)})'
    if head == b'':
        return 'is empty'
    if head != b'PK\x03\x04' and head[:1] != b'\x80':
        return 'is not a torch.save() or pickle file (wrong file kind)'
    if isinstance(err, EOFError) or 'truncated' in str(err) or 'central directory' in str(err):
        return 'is truncated (interrupted copy or write?)'
    return f'is corrupt or not a torch.save() file of plain data ({_first_line(err)})'

#----------------------------------------------------------------------------
