"""Checks shared by the command-line tools: finite float options and output paths, each failing with one line that names the option."""

import math
import os
import tempfile

import click

#----------------------------------------------------------------------------
# Float option that refuses NaN and +-infinity (click's FloatRange lets NaN
# through every bound, and infinity through a missing one). Takes the same
# bounds as click.FloatRange; FiniteFloat() has none.

class FiniteFloat(click.FloatRange):
    name = 'float'

    def convert(self, value, param, ctx):
        result = super().convert(value, param, ctx)
        if not math.isfinite(result):
            self.fail(f'{value!r} is not a finite number', param, ctx)
        return result

    def __repr__(self):
        return 'FiniteFloat'

#----------------------------------------------------------------------------
# The nearest existing folder at or above `path` (which may not exist yet).

def _existing_ancestor(path):
    current = os.path.abspath(path)
    while not os.path.exists(current):
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return current

# Fail unless files can be created in `folder` (an existing folder).
def _check_writable(folder, option, path):
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise click.ClickException(f'{option}: cannot write into "{folder}" ({reason}), needed for "{path}"; '
                                   f'choose a location you can write to') from None

#----------------------------------------------------------------------------
# An output folder (created later by the tool) must be a folder, or creatable
# inside a writable one. Nothing is created here.

def check_output_folder(path, option, _shown=None):
    shown = _shown or path
    if os.path.exists(path) and not os.path.isdir(path):
        raise click.ClickException(f'{option}: "{path}" is a file, not a folder; give a folder path')
    ancestor = _existing_ancestor(path)
    if not os.path.isdir(ancestor):
        raise click.ClickException(f'{option}: "{shown}" cannot be created because "{ancestor}" is a file; '
                                   f'give a path in a folder')
    _check_writable(ancestor, option, shown)

# An output file: not a folder, and its (possibly not yet existing) folder writable.
def check_output_file(path, option):
    if os.path.isdir(path):
        raise click.ClickException(f'{option}: "{path}" is a folder; give a file name inside it')
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise click.ClickException(f'{option}: "{path}" cannot be created because "{folder}" is a file; give a path in a folder')
    check_output_folder(folder, option, _shown=path)

#----------------------------------------------------------------------------
# Without CUDA, --gpus=N starts N CPU processes that share the cores (a
# designed feature: CPU runs of the multi-process code). More processes than
# cores only slows the run down and is usually a mistyped option, so say so.

def check_cpu_processes(gpus, option='--gpus'):
    cores = os.cpu_count() or 1
    if gpus > 1:
        note = f'; that is more than the {cores} CPU core(s) here, which only slows the run down' if gpus > cores else ''
        click.echo(f'Note: no CUDA device is in use, so {option}={gpus} starts {gpus} CPU processes{note}.', err=True)

#----------------------------------------------------------------------------
# --device of every script: the named torch device, checked before any work (a CUDA device that is not there is one
# line), or CUDA when available, else the CPU.

def pick_device(name):
    import torch  # pylint: disable=import-outside-toplevel  (dnnlib.cli stays importable without torch)
    if name is None:
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise click.ClickException(f'--device: "{name}" is not a torch device ({err}); use e.g. "cpu" or "cuda:0"') from err
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise click.ClickException(f'--device={name}, but CUDA is not available here; use --device=cpu')
    if device.type == 'cuda' and (device.index or 0) >= torch.cuda.device_count():
        raise click.ClickException(f'--device={name}, but only {torch.cuda.device_count()} CUDA device(s) are visible; '
                                   f'use cuda:0 ... cuda:{torch.cuda.device_count() - 1} or --device=cpu')
    return device

#----------------------------------------------------------------------------
