"""Just-in-time build and per-process cache of the C++/CUDA extensions behind the fast ops."""

import glob
import hashlib
import os
import shutil
import subprocess
import uuid
import warnings

import torch
import torch.utils.cpp_extension

#----------------------------------------------------------------------------
# Console output while building: 'none', 'brief' (one line per plugin) or 'full' (compiler log).

verbosity = 'brief'

# Module state, cleared by reset(): loaded extension modules and builds that failed in this process.
_cached_plugins = dict()    # module_name -> extension module
_failed_plugins = dict()    # module_name -> short description of the build error

# Exceptions that a failed build or import of an extension can raise. torch reports compiler and
# ninja failures as RuntimeError, a missing toolkit as OSError, a broken library as ImportError.
_BUILD_ERRORS = (RuntimeError, OSError, ImportError, subprocess.SubprocessError, ValueError)

#----------------------------------------------------------------------------
# Forget every loaded or failed plugin (for tests; a loaded module stays in memory).

def reset():
    _cached_plugins.clear()
    _failed_plugins.clear()

#----------------------------------------------------------------------------
# Windows only: when cl.exe is not on PATH, look for the newest Visual Studio host compiler.

_MSVC_BINDIR_PATTERNS = [
    'C:/Program Files*/Microsoft Visual Studio/*/Professional/VC/Tools/MSVC/*/bin/Hostx64/x64',
    'C:/Program Files*/Microsoft Visual Studio/*/BuildTools/VC/Tools/MSVC/*/bin/Hostx64/x64',
    'C:/Program Files*/Microsoft Visual Studio/*/Community/VC/Tools/MSVC/*/bin/Hostx64/x64',
    'C:/Program Files*/Microsoft Visual Studio */vc/bin',
]

def _ensure_msvc_on_path():
    if os.name != 'nt' or shutil.which('cl.exe') is not None:
        return
    candidates = sorted(d for pattern in _MSVC_BINDIR_PATTERNS for d in glob.glob(pattern))
    if not candidates:
        raise RuntimeError('cl.exe (MSVC) is not on PATH and no Visual Studio installation was found; '
                           'install the "Desktop development with C++" workload or run from a VS developer prompt')
    os.environ['PATH'] = os.environ['PATH'] + os.pathsep + candidates[-1]

#----------------------------------------------------------------------------
# Hex digest over the names and bytes of the given files (order-independent).

def _files_digest(paths):
    md5 = hashlib.md5()
    for path in sorted(paths):
        md5.update(os.path.basename(path).encode('utf-8'))
        with open(path, 'rb') as fp:
            md5.update(fp.read())
    return md5.hexdigest()

#----------------------------------------------------------------------------
# The C/C++/CUDA files of a folder (Python files beside them do not affect a build).

_NATIVE_SUFFIXES = ('.c', '.cc', '.cpp', '.cxx', '.cu', '.cuh', '.h', '.hpp')

def _native_files(src_dir):
    names = sorted(os.listdir(src_dir))
    return [os.path.join(src_dir, n) for n in names if n.endswith(_NATIVE_SUFFIXES) and os.path.isfile(os.path.join(src_dir, n))]

#----------------------------------------------------------------------------
# Copy files into dst_dir once; concurrent processes race safely via a rename.

def _snapshot_files(paths, dst_dir):
    if os.path.isdir(dst_dir):
        return
    tmp_dir = f'{dst_dir}.tmp-{uuid.uuid4().hex}'
    os.makedirs(tmp_dir)
    for path in paths:
        shutil.copyfile(path, os.path.join(tmp_dir, os.path.basename(path)))
    try:
        os.replace(tmp_dir, dst_dir)
    except OSError:
        # Another process finished the same snapshot first; its copy is identical.
        shutil.rmtree(tmp_dir, ignore_errors=True)

#----------------------------------------------------------------------------
# Compile (or reuse) an extension with ninja and return the imported module.

def _build(module_name, sources, build_kwargs):
    verbose = (verbosity == 'full')
    source_dirs = {os.path.dirname(os.path.abspath(src)) for src in sources}
    ext_root = os.environ.get('TORCH_EXTENSIONS_DIR')

    # With an explicit extensions dir and one source folder, build from a snapshot of the folder's
    # native files (headers included) named by their hash: edited sources get a fresh build,
    # unchanged ones reuse the old one.
    if ext_root and len(source_dirs) == 1:
        native_files = sorted(set(_native_files(source_dirs.pop())) | {os.path.abspath(src) for src in sources})
        build_dir = os.path.join(ext_root, module_name)
        snapshot_dir = os.path.join(build_dir, _files_digest(native_files))
        os.makedirs(build_dir, exist_ok=True)
        _snapshot_files(native_files, snapshot_dir)
        sources = [os.path.join(snapshot_dir, os.path.basename(src)) for src in sources]
        build_kwargs = dict(build_kwargs, build_directory=build_dir)

    return torch.utils.cpp_extension.load(name=module_name, sources=sources, verbose=verbose, **build_kwargs)

#----------------------------------------------------------------------------
# Return the compiled extension module_name, building it on first use. Errors propagate.

def get_plugin(module_name, sources, **build_kwargs):
    plugin = _cached_plugins.get(module_name)
    if plugin is not None:
        return plugin

    # Brief mode keeps the outcome on the same line; full mode lets the compiler log come between.
    if verbosity in ('brief', 'full'):
        print(f'Setting up PyTorch plugin "{module_name}"...', end=(' ' if verbosity == 'brief' else '\n'), flush=True)

    succeeded = False
    try:
        _ensure_msvc_on_path()
        plugin = _build(module_name, sources, build_kwargs)
        succeeded = True
    finally:
        if verbosity == 'full':
            print(f'Done setting up PyTorch plugin "{module_name}".' if succeeded else
                  f'Failed to set up PyTorch plugin "{module_name}".')
        elif verbosity == 'brief':
            print('Done.' if succeeded else 'Failed!')

    _cached_plugins[module_name] = plugin
    return plugin

#----------------------------------------------------------------------------
# Squeeze an exception into one line, preferring the compiler's "error" lines.

def _describe_error(err, max_chars=600):
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    errors = [line for line in lines if 'error' in line.lower()]
    text = ' | '.join(errors or lines[:1]) or '(no message)'
    if len(text) > max_chars:
        text = text[:max_chars] + ' ...'
    return f'{type(err).__name__}: {text.rstrip(".")}'

#----------------------------------------------------------------------------
# Like get_plugin(), but a failed build warns once and returns None for the rest of the process,
# so that the op's caller can switch to its pure-PyTorch twin without retrying the build.

def get_plugin_or_none(op_name, module_name, sources, **build_kwargs):
    if module_name in _cached_plugins:
        return _cached_plugins[module_name]
    if module_name in _failed_plugins:
        return None
    try:
        return get_plugin(module_name, sources, **build_kwargs)
    except _BUILD_ERRORS as err:
        _failed_plugins[module_name] = _describe_error(err)
    warnings.warn(
        f'Failed to build CUDA kernels for {op_name}. Falling back to slow reference implementation '
        f'for the rest of this process. Details: {_failed_plugins[module_name]}. '
        f'Fix: install ninja and a CUDA toolkit matching torch.version.cuda ({torch.version.cuda}) with nvcc on PATH '
        f'or CUDA_HOME set (set torch_utils.custom_ops.verbosity = "full" to see the build log), '
        f"or pass impl='ref' to use the reference implementation without this warning.",
        RuntimeWarning, stacklevel=5)  # the caller of the op, through _plugin() and _init()
    return None

#----------------------------------------------------------------------------

#----------------------------------------------------------------------------
# Build arguments of the plugin of one op in torch_utils/ops: sources <op>.cpp
# and <op>.cu beside the op, module <op>_plugin, fast math. Used as
# get_plugin_or_none(**op_plugin_kwargs('bias_act')).

def op_plugin_kwargs(op_name):
    ops_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'ops')
    return dict(op_name=op_name, module_name=f'{op_name}_plugin',
                sources=[os.path.join(ops_dir, f'{op_name}.cpp'), os.path.join(ops_dir, f'{op_name}.cu')],
                extra_cuda_cflags=['--use_fast_math'])
