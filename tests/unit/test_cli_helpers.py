"""Shared CLI helpers of issue 15: --network resolution, finite floats, output checks, durable atomic writes."""

import os

import click
import pytest

import dnnlib
import legacy
from dnnlib import cli

#----------------------------------------------------------------------------

def _touch(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(b'x')
    return str(path)


def test_resolve_network_pkl(tmp_path):
    runs = tmp_path / 'runs'
    old = _touch(runs / '00000-a' / 'network-snapshot-000010.pkl')
    _touch(runs / '00000-a' / 'network-snapshot-000002.pkl')
    newest = _touch(runs / '00001-b' / 'network-snapshot-000004.pkl')
    _touch(runs / '00002-c' / 'log.txt')  # a run without snapshots does not count
    assert legacy.resolve_network_pkl(old) == old
    assert legacy.resolve_network_pkl(str(runs / '00000-a')) == old  # highest kimg, not the name order
    assert legacy.resolve_network_pkl(str(runs)) == newest           # highest-numbered run with a snapshot
    assert legacy.resolve_network_pkl(str(runs / '00001-*')) == newest
    assert legacy.resolve_network_pkl('https://example.com/net.pkl') == 'https://example.com/net.pkl'
    with pytest.raises(legacy.NetworkPickleError, match=r'matches 2 paths .*; name one of them'):
        legacy.resolve_network_pkl(str(runs / '0000[01]-*'))
    with pytest.raises(legacy.NetworkPickleError, match=r'is a folder without network-snapshot-\*\.pkl'):
        legacy.resolve_network_pkl(str(runs / '00002-c'))
    with pytest.raises(legacy.NetworkPickleError, match=r'file not found: ".*nope.pkl"'):
        legacy.resolve_network_pkl(str(tmp_path / 'nope.pkl'))


def test_finite_float_keeps_bounds_and_refuses_non_finite():
    kind = cli.FiniteFloat(min=0, min_open=True)
    assert kind.convert('0.5', None, None) == 0.5
    for text in ('nan', 'inf', '-inf', 'NaN'):
        with pytest.raises(click.BadParameter):
            kind.convert(text, None, None)
    with pytest.raises(click.BadParameter, match='not in the range'):
        kind.convert('0', None, None)


def test_output_checks(tmp_path):
    afile = _touch(tmp_path / 'f.txt')
    cli.check_output_folder(str(tmp_path / 'new' / 'deeper'), '--outdir')  # creatable: fine, and nothing is created
    assert not (tmp_path / 'new').exists()
    with pytest.raises(click.ClickException, match=r'--outdir: ".*f.txt" is a file, not a folder'):
        cli.check_output_folder(afile, '--outdir')
    with pytest.raises(click.ClickException, match=r'--out: ".*f.txt/p.pt" cannot be created because ".*f.txt" is a file'):
        cli.check_output_file(os.path.join(afile, 'p.pt'), '--out')
    with pytest.raises(click.ClickException, match=r'--out: ".*" is a folder; give a file name inside it'):
        cli.check_output_file(str(tmp_path), '--out')

#----------------------------------------------------------------------------
# atomic_write flushes the data of the file and then the rename of its folder
# to disk before it returns; a power cut could otherwise leave an empty file.

def test_atomic_write_fsyncs_file_before_rename_and_folder_after(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    def fsync(fd):
        events.append(('fsync', os.path.isdir(f'/proc/self/fd/{fd}') if os.path.exists('/proc/self/fd') else None))
        real_fsync(fd)
    def replace(src, dst):
        events.append(('replace', None))
        real_replace(src, dst)
    monkeypatch.setattr(os, 'fsync', fsync)
    monkeypatch.setattr(os, 'replace', replace)
    with dnnlib.util.atomic_write(tmp_path / 'a.bin', 'wb') as f:
        f.write(b'data')
    assert [name for name, _ in events] == ['fsync', 'replace', 'fsync']
    if events[0][1] is not None:
        assert events[0][1] is False and events[2][1] is True  # the file first, its folder last
    assert (tmp_path / 'a.bin').read_bytes() == b'data'


def test_remove_stale_temp_files(tmp_path):
    stale = _touch(tmp_path / f'.network-snapshot-000008.pkl.{"0f" * 16}.tmp')
    keep = [_touch(tmp_path / 'network-snapshot-000008.pkl'), _touch(tmp_path / f'.reals.png.{"0f" * 16}.tmp'),
            _touch(tmp_path / '.network-snapshot-000008.pkl.tmp')]
    assert dnnlib.util.remove_stale_temp_files(str(tmp_path), 'network-snapshot-*.pkl') == [stale]
    assert not os.path.exists(stale) and all(os.path.exists(p) for p in keep)

#----------------------------------------------------------------------------
# train.py turns a failure in the training process into one line: a full disk
# names the file and says how to continue; a diverged run passes its message on.

@pytest.mark.parametrize('error, pattern', [
    (OSError(28, 'No space left on device', 'runs/x/.network-snapshot-000004.pkl.0.tmp'),
     r'training stopped at an I/O error "runs/x/.network-snapshot-000004.pkl.0.tmp": No space left on device; .* --resume=.*run'),
    ('diverged', r'^training diverged at kimg 1'),
])
def test_training_process_errors_are_one_line(tmp_path, monkeypatch, error, pattern):
    import torch
    import train
    from training import training_loop
    if error == 'diverged':
        error = training_loop.TrainingDivergedError('training diverged at kimg 1: ...')
    def fail(**kwargs):
        raise error
    monkeypatch.setattr(training_loop, 'training_loop', fail)
    c = dnnlib.EasyDict(run_dir=str(tmp_path / 'run'), num_gpus=1, G_kwargs=dnnlib.EasyDict(class_name='training.networks.Generator'))
    with pytest.raises(click.ClickException, match=pattern):
        train.run_training_process(0, c, torch.device('cpu'), num_local_processes=1)

#----------------------------------------------------------------------------
