"""General helpers: attribute dicts, console logging, cache folders, lookup of objects by dotted name, file and URL access."""

import contextlib
import ctypes
import fnmatch
import glob
import hashlib
import importlib
import inspect
import io
import os
import pickle
import re
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import numpy as np

#----------------------------------------------------------------------------
# A dict whose items can also be read and written as attributes (d.key == d['key']).

class EasyDict(dict):
    def __getattr__(self, name):
        if name in self:
            return self[name]
        raise AttributeError(name)

    def __setattr__(self, name, value):
        self[name] = value

    def __delattr__(self, name):
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None

#----------------------------------------------------------------------------
# Duplicates everything printed to stdout/stderr into an optional log file.
# Both streams go to the original stdout while the logger is active; close()
# (or leaving the `with` block) puts the original streams back.

class Logger:
    def __init__(self, file_name=None, file_mode='w', should_flush=True):
        self.file = None if file_name is None else open(file_name, file_mode)
        self.should_flush = should_flush
        self.stdout, self.stderr = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = self

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        self.close()

    def write(self, text):
        text = text.decode() if isinstance(text, bytes) else text
        if not text:
            return
        for stream in (self.file, self.stdout):
            if stream is not None:
                stream.write(text)
        if self.should_flush:
            self.flush()

    def flush(self):
        for stream in (self.file, self.stdout):
            if stream is not None:
                stream.flush()

    def isatty(self):
        return False

    def close(self):
        self.flush()
        # Only undo our own redirection; someone may have replaced us since.
        for attr, original in (('stdout', self.stdout), ('stderr', self.stderr)):
            if getattr(sys, attr) is self:
                setattr(sys, attr, original)
        if self.file is not None:
            self.file.close()
        self.file = None

#----------------------------------------------------------------------------
# Cache folder used for downloads and other reusable files.

_dnnlib_cache_dir = None

def set_cache_dir(path):
    global _dnnlib_cache_dir
    _dnnlib_cache_dir = path

#----------------------------------------------------------------------------
# Path inside the cache folder. The first of these that is set wins:
# set_cache_dir(), $DNNLIB_CACHE_DIR, $HOME/.cache/dnnlib,
# %USERPROFILE%/.cache/dnnlib, <system temp dir>/.cache/dnnlib.

def make_cache_dir_path(*paths):
    if _dnnlib_cache_dir is not None:
        return os.path.join(_dnnlib_cache_dir, *paths)
    env_dir = os.environ.get('DNNLIB_CACHE_DIR')
    if env_dir:
        return os.path.join(env_dir, *paths)
    for home_var in ('HOME', 'USERPROFILE'):
        home = os.environ.get(home_var)
        if home:
            return os.path.join(home, '.cache', 'dnnlib', *paths)
    return os.path.join(tempfile.gettempdir(), '.cache', 'dnnlib', *paths)

#----------------------------------------------------------------------------
# Human-readable duration: "42s", "3m 07s", "2h 05m 09s", "1d 03h 20m".

def format_time(seconds):
    total = int(np.rint(seconds))
    days, rest = divmod(total, 24 * 60 * 60)
    hours, rest = divmod(rest, 60 * 60)
    minutes, secs = divmod(rest, 60)
    if total < 60:
        return f'{secs}s'
    if total < 60 * 60:
        return f'{minutes}m {secs:02}s'
    if total < 24 * 60 * 60:
        return f'{hours}h {minutes:02}m {secs:02}s'
    return f'{days}d {hours:02}h {minutes:02}m'

#----------------------------------------------------------------------------
# Ask a yes/no question on the console until the answer can be understood.

_YES_WORDS = ('y', 'yes', 't', 'true', 'on', '1')
_NO_WORDS = ('n', 'no', 'f', 'false', 'off', '0')

def ask_yes_no(question):
    while True:
        print(f'{question} [y/n]')
        answer = input().strip().lower()
        if answer in _YES_WORDS:
            return True
        if answer in _NO_WORDS:
            return False

#----------------------------------------------------------------------------
# Product of all elements of a tuple (1 for an empty tuple).

def tuple_product(t):
    result = 1
    for value in t:
        result *= value
    return result

#----------------------------------------------------------------------------
# Matching numpy dtype and ctypes type for a primitive numeric type name.

_str_to_ctype = {
    'uint8': ctypes.c_ubyte,
    'uint16': ctypes.c_uint16,
    'uint32': ctypes.c_uint32,
    'uint64': ctypes.c_uint64,
    'int8': ctypes.c_byte,
    'int16': ctypes.c_int16,
    'int32': ctypes.c_int32,
    'int64': ctypes.c_int64,
    'float32': ctypes.c_float,
    'float64': ctypes.c_double,
}

def get_dtype_and_ctype(type_obj):
    if isinstance(type_obj, str):
        type_str = type_obj
    elif hasattr(type_obj, '__name__'):
        type_str = type_obj.__name__
    elif hasattr(type_obj, 'name'):
        type_str = type_obj.name
    else:
        raise TypeError(f'get_dtype_and_ctype: cannot tell the type name of {type_obj!r}')
    if type_str not in _str_to_ctype:
        raise ValueError(f'get_dtype_and_ctype: unsupported type "{type_str}"; expected one of {", ".join(_str_to_ctype)}')
    dtype = np.dtype(type_str)
    ctype = _str_to_ctype[type_str]
    assert dtype.itemsize == ctypes.sizeof(ctype)
    return dtype, ctype

#----------------------------------------------------------------------------
# True if pickle.dumps() accepts the object.

def is_pickleable(obj):
    try:
        with io.BytesIO() as stream:
            pickle.dump(obj, stream)
        return True
    except Exception:
        return False

#----------------------------------------------------------------------------
# Split a dotted name such as "training.networks.Generator" into an imported
# module and the attribute path left inside it. The longest importable module
# prefix whose attribute path resolves wins. An error raised while executing a
# module that does exist is passed on (chained), not mistaken for a bad name.

def _is_missing_module_error(err, module_name):
    missing = getattr(err, 'name', None)
    if missing is None:
        return False
    return module_name == missing or module_name.startswith(missing + '.')

def _raise_module_error(obj_name, module_parts, err):
    # A module exists but fails while importing; name the outermost package that fails.
    failing = '.'.join(module_parts)
    for depth in range(1, len(module_parts)):
        prefix = '.'.join(module_parts[:depth])
        try:
            importlib.import_module(prefix)
        except Exception:
            failing = prefix
            break
    raise ImportError(f'Cannot import "{obj_name}": importing module "{failing}" failed: {type(err).__name__}: {err}') from err

def get_module_from_obj_name(obj_name):
    if not isinstance(obj_name, str) or not obj_name:
        raise ValueError(f'Expected a dotted object name such as "package.module.name", got {obj_name!r}')

    # Accept the usual abbreviations.
    full_name = re.sub(r'^np\.', 'numpy.', obj_name)
    full_name = re.sub(r'^tf\.', 'tensorflow.', full_name)
    parts = full_name.split('.')

    # Try module prefixes from longest to shortest, remembering why each failed.
    reasons = []
    for split in range(len(parts), 0, -1):
        module_name = '.'.join(parts[:split])
        local_name = '.'.join(parts[split:])
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if _is_missing_module_error(err, module_name):
                reasons.append(f'no module named "{err.name}"')
                continue
            _raise_module_error(obj_name, parts[:split], err)
        except Exception as err:
            _raise_module_error(obj_name, parts[:split], err)
        try:
            get_obj_from_module(module, local_name)
        except AttributeError:
            reasons.append(f'module "{module_name}" has no attribute "{local_name}"')
            continue
        return module, local_name

    # Nothing worked: report the most specific reason (the first module that imported).
    attr_reasons = [r for r in reasons if r.startswith('module')]
    reason = attr_reasons[0] if attr_reasons else reasons[-1]
    raise ImportError(f'Cannot find "{obj_name}": {reason}; check the spelling and that its package is on sys.path')

#----------------------------------------------------------------------------
# Follow a dotted attribute path inside a module ('' = the module itself).

def get_obj_from_module(module, obj_name):
    obj = module
    if obj_name == '':
        return obj
    for attr in obj_name.split('.'):
        obj = getattr(obj, attr)
    return obj

#----------------------------------------------------------------------------
# Look up any Python object by its fully qualified dotted name.

def get_obj_by_name(name):
    module, local_name = get_module_from_obj_name(name)
    return get_obj_from_module(module, local_name)

#----------------------------------------------------------------------------
# Call a function given by its dotted name with the remaining arguments.

def call_func_by_name(*args, func_name=None, **kwargs):
    if func_name is None:
        raise TypeError('call_func_by_name() needs func_name="package.module.function"')
    func = get_obj_by_name(func_name)
    if not callable(func):
        raise TypeError(f'"{func_name}" is a {type(func).__name__}, not something that can be called')
    return func(*args, **kwargs)

#----------------------------------------------------------------------------
# Build an object from the dotted name of its class; the usual entry point for
# the `*_kwargs` dicts that carry a `class_name`.

def construct_class_by_name(*args, class_name=None, **kwargs):
    if class_name is None:
        raise TypeError('construct_class_by_name() needs class_name="package.module.Class"')
    return call_func_by_name(*args, func_name=class_name, **kwargs)

#----------------------------------------------------------------------------
# Folder that contains the module defining the named object.

def get_module_dir_by_obj_name(obj_name):
    module, _local_name = get_module_from_obj_name(obj_name)
    return os.path.dirname(inspect.getfile(module))

#----------------------------------------------------------------------------
# True if obj is a function reachable as an attribute of its own module.

def is_top_level_function(obj):
    if not callable(obj) or not hasattr(obj, '__name__') or not hasattr(obj, '__module__'):
        return False
    module = sys.modules.get(obj.__module__)
    return module is not None and obj.__name__ in module.__dict__

#----------------------------------------------------------------------------
# "module.function" for a top-level function; a function of the running
# script (__main__) is named after the script's file stem.

def get_top_level_function_name(obj):
    if not is_top_level_function(obj):
        raise ValueError(f'{obj!r} is not a top-level function of an imported module')
    module_name = obj.__module__
    if module_name == '__main__':
        script = sys.modules[module_name].__file__
        module_name = os.path.splitext(os.path.basename(script))[0]
    return module_name + '.' + obj.__name__

#----------------------------------------------------------------------------
# All files below dir_path as (absolute path, relative path) pairs. Folders
# and files whose name matches one of the fnmatch patterns in `ignores` are
# skipped. With add_base_to_relative, relative paths start with the name of
# dir_path itself.

def list_dir_recursively_with_ignore(dir_path, ignores=None, add_base_to_relative=False):
    assert os.path.isdir(dir_path)
    patterns = list(ignores) if ignores is not None else []
    base_name = os.path.basename(os.path.normpath(dir_path))
    result = []

    def ignored(name):
        return any(fnmatch.fnmatch(name, p) for p in patterns)

    for root, dirs, files in os.walk(dir_path, topdown=True):
        dirs[:] = [d for d in dirs if not ignored(d)]  # prune in place so os.walk skips them
        for name in files:
            if ignored(name):
                continue
            abs_path = os.path.join(root, name)
            rel_path = os.path.relpath(abs_path, dir_path)
            if add_base_to_relative:
                rel_path = os.path.join(base_name, rel_path)
            result.append((abs_path, rel_path))
    return result

#----------------------------------------------------------------------------
# Copy (source, destination) file pairs, creating destination folders.

def copy_files_and_create_dirs(files):
    for src, dst in files:
        dst_dir = os.path.dirname(dst)
        if dst_dir:
            os.makedirs(dst_dir, exist_ok=True)
        shutil.copyfile(src, dst)

#----------------------------------------------------------------------------
# Write a file so that readers never see a partial one: data goes to a
# temporary file in the same folder, which replaces `path` only when the
# `with` block finishes without an exception. The single home for atomic
# writes in this project.

@contextlib.contextmanager
def atomic_write(path, mode='wb', encoding=None):
    if mode not in ('w', 'wb'):
        raise ValueError(f'atomic_write: mode must be "w" or "wb", got "{mode}"')
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    tmp_path = os.path.join(folder, f'.{os.path.basename(path)}.{uuid.uuid4().hex}.tmp')

    # os.open() honours the umask, so the result gets ordinary permissions.
    fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_BINARY', 0), 0o666)
    if mode == 'wb':
        file = os.fdopen(fd, 'wb')
    else:
        file = os.fdopen(fd, 'w', encoding=encoding or 'utf-8')
    try:
        with file:
            yield file
            # Data on disk before the rename, so a power cut never leaves an empty file under the final name.
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp_path, path)
        fsync_folder(folder)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp_path)
        raise

# Make a rename or file creation inside `folder` durable (POSIX; a no-op where
# folders cannot be opened, e.g. on Windows).
def fsync_folder(folder):
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, 'O_DIRECTORY', 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems do not support fsync on folders
    finally:
        os.close(fd)

# Remove the temporary files that atomic_write() leaves behind when the process
# is killed mid-write (".<name>.<hex>.tmp" for names matching `pattern`, e.g.
# 'network-snapshot-*.pkl'). Returns the removed paths. Only call this on a
# folder that no live process is writing into.
def remove_stale_temp_files(folder, pattern):
    removed = []
    if not os.path.isdir(folder):
        return removed
    for name in sorted(os.listdir(folder)):
        match = re.fullmatch(r'\.(.+)\.[0-9a-f]{32}\.tmp', name)
        if match is not None and fnmatch.fnmatchcase(match.group(1), pattern):
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(folder, name))
                removed.append(os.path.join(folder, name))
    return removed

#----------------------------------------------------------------------------
# A copy of `obj` that strict JSON readers accept: non-finite floats (also
# inside dicts, lists and tuples) become the strings "NaN", "Infinity" and
# "-Infinity", which float() reads back. json.dumps() would write them as the
# bare tokens NaN/Infinity, which are not JSON.

def json_safe(obj):
    if isinstance(obj, (float, np.floating)) and not np.isfinite(obj):
        return 'NaN' if np.isnan(obj) else ('Infinity' if obj > 0 else '-Infinity')
    if isinstance(obj, dict):
        return {key: json_safe(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(value) for value in obj]
    return obj

#----------------------------------------------------------------------------
# True if obj looks like a URL with a scheme and a dotted host name.
# file:// URLs count only when allow_file_urls is set.

def is_url(obj, allow_file_urls=False):
    if not isinstance(obj, str) or '://' not in obj:
        return False
    if allow_file_urls and obj.startswith('file://'):
        return True
    try:
        for candidate in (obj, urllib.parse.urljoin(obj, '/')):
            parsed = urllib.parse.urlparse(candidate)
            if not parsed.scheme or not parsed.netloc or '.' not in parsed.netloc:
                return False
    except ValueError:
        return False
    return True

#----------------------------------------------------------------------------
# Helpers for open_url().

def _file_url_to_path(url):
    path = urllib.parse.unquote(urllib.parse.urlparse(url).path)
    if re.match(r'^/[a-zA-Z]:', path):  # file:///C:/dir/file -> C:/dir/file
        path = path[1:]
    return path

def _safe_file_name(name):
    return re.sub(r'[^0-9a-zA-Z\-._]', '_', name)

def _content_disposition_name(header):
    if not header:
        return None
    match = re.search(r'filename="([^"]+)"', header) or re.search(r'filename=([^;\s]+)', header)
    return match.group(1) if match else None

def _download(url, num_attempts, verbose):
    # Returns (bytes, name suggested by the server or None); raises the last error.
    last_error = None
    for attempt in range(num_attempts):
        if verbose:
            print(f'Downloading {url} ...', end='', flush=True)
        try:
            request = urllib.request.Request(url, headers={'User-Agent': 'dnnlib-open-url'})
            with urllib.request.urlopen(request, timeout=60) as response:
                data = response.read()
                name = _content_disposition_name(response.headers.get('Content-Disposition'))
            if len(data) == 0:
                raise OSError('the server returned an empty file')
            if verbose:
                print(' done')
            return data, name
        except Exception as err:  # network, HTTP and decoding errors alike
            last_error = err
            if verbose:
                print(' failed')
            # Client errors (404 etc.) will not go away by retrying.
            if isinstance(err, urllib.error.HTTPError) and 400 <= err.code < 500 and err.code != 429:
                break
            if attempt + 1 < num_attempts:
                time.sleep(min(2 ** attempt, 10) * 0.1)
    raise last_error

#----------------------------------------------------------------------------
# Open a local path or a URL for reading in binary mode.
# - Strings without a "scheme://" prefix are local paths; file:// URLs map to
#   local paths. Neither touches the cache.
# - http(s) URLs are looked up in the cache first ("{md5(url)}_{name}" inside
#   cache_dir, default make_cache_dir_path('downloads')); a hit needs no network.
#   Otherwise the file is downloaded (num_attempts tries) and, if cache is set,
#   stored atomically in cache_dir.
# Returns an open binary file, or its path if return_filename is set.

def open_url(url, cache_dir=None, num_attempts=10, verbose=True, return_filename=False, cache=True):
    if not isinstance(url, str):
        url = os.fspath(url)
    if num_attempts < 1:
        raise ValueError(f'open_url: num_attempts must be >= 1, got {num_attempts}')
    if return_filename and not cache:
        raise ValueError('open_url: return_filename=True needs cache=True (a download must be stored to have a file name)')

    # Local files.
    if not re.match(r'^[a-z]+://', url):
        return url if return_filename else open(url, 'rb')
    if url.startswith('file://'):
        path = _file_url_to_path(url)
        return path if return_filename else open(path, 'rb')

    # Cache lookup.
    if not is_url(url):
        raise ValueError(f'open_url: "{url}" is not a valid URL (expected scheme://host.domain/...); pass a local path instead')
    if cache_dir is None:
        cache_dir = make_cache_dir_path('downloads')
    url_md5 = hashlib.md5(url.encode('utf-8')).hexdigest()
    if cache:
        hits = glob.glob(os.path.join(glob.escape(cache_dir), url_md5 + '_*'))
        if len(hits) == 1:
            return hits[0] if return_filename else open(hits[0], 'rb')

    # Download.
    url_name = _safe_file_name(os.path.basename(urllib.parse.urlparse(url).path) or url)
    try:
        data, server_name = _download(url, num_attempts=num_attempts, verbose=verbose)
    except Exception as err:
        hint = os.path.join(cache_dir, f'{url_md5}_{url_name}')
        raise OSError(f'Could not download {url} ({type(err).__name__}: {err}). No cached copy was found in '
                      f'"{cache_dir}". Without network access, copy the file to "{hint}" '
                      f'(or set DNNLIB_CACHE_DIR to a folder that holds it), or pass a local file path instead of the URL.') from err

    # Store in the cache.
    if cache:
        safe_name = _safe_file_name(server_name if server_name else url)
        cache_file = os.path.join(cache_dir, f'{url_md5}_{safe_name}')
        os.makedirs(cache_dir, exist_ok=True)
        with atomic_write(cache_file, 'wb') as f:
            f.write(data)
        if return_filename:
            return cache_file
    return io.BytesIO(data)

#----------------------------------------------------------------------------
