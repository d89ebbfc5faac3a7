"""Compile a C++ harness around the ops' kernel headers into a shared library, to run the CUDA kernel code on the host."""

import ctypes
import os
import shutil
import subprocess
import sys

import pytest

from torch_utils.ops import bias_act

OPS_DIR = os.path.dirname(os.path.abspath(bias_act.__file__))  # where bias_act.h and upfirdn2d.h live

#----------------------------------------------------------------------------
# Write `source` to a temp folder, compile it with the kernel headers on the include path and load
# it with ctypes; skips the test when no C++ compiler is available.

def compile_harness(tmp_path_factory, name, source):
    compiler = shutil.which('c++') or shutil.which('g++') or shutil.which('clang++')
    if compiler is None or sys.platform == 'win32':
        pytest.skip('no C++ compiler available to emulate the CUDA kernels on the host')
    out_dir = tmp_path_factory.mktemp(name)
    src, lib = out_dir / f'{name}.cpp', out_dir / f'{name}.so'
    src.write_text(source)
    cmd = [compiler, '-std=c++11', '-O1', '-Wall', '-Werror', '-shared', '-fPIC', f'-I{OPS_DIR}', str(src), '-o', str(lib)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return ctypes.CDLL(str(lib))
