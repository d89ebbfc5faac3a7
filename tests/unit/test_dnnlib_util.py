"""Unit tests for dnnlib.util: EasyDict, Logger, cache paths, name lookup, file helpers, atomic writes, open_url."""

import functools
import hashlib
import http.server
import io
import os
import pickle
import sys
import threading

import numpy as np
import pytest

import dnnlib
from dnnlib import util

#----------------------------------------------------------------------------

def test_easydict_attribute_access_and_pickle():
    d = util.EasyDict(a=1)
    d.b = 2
    assert d['b'] == 2 and d.a == 1
    del d.a
    assert 'a' not in d
    with pytest.raises(AttributeError, match='missing'):
        _ = d.missing
    with pytest.raises(AttributeError, match='gone'):
        del d.gone
    back = pickle.loads(pickle.dumps(d))
    assert type(back) is util.EasyDict and back == {'b': 2}
    assert dnnlib.EasyDict is util.EasyDict

#----------------------------------------------------------------------------

def test_logger_duplicates_output_and_restores_streams(tmp_path, capsys):
    log_file = tmp_path / 'log.txt'
    old_out, old_err = sys.stdout, sys.stderr
    with util.Logger(file_name=str(log_file), file_mode='w') as logger:
        assert sys.stdout is logger and sys.stderr is logger
        print('hello')
        sys.stderr.write(b'bytes too\n')
        logger.write('')
    assert sys.stdout is old_out and sys.stderr is old_err
    assert log_file.read_text() == 'hello\nbytes too\n'
    assert 'hello' in capsys.readouterr().out


def test_logger_close_leaves_foreign_stream_alone():
    old_out, old_err = sys.stdout, sys.stderr
    logger = util.Logger()
    replacement = io.StringIO()
    sys.stdout = replacement
    try:
        logger.close()
        assert sys.stdout is replacement   # not ours any more: untouched
        assert sys.stderr is old_err       # still ours: restored
    finally:
        sys.stdout = old_out

#----------------------------------------------------------------------------

def test_make_cache_dir_path_priority(tmp_path, monkeypatch):
    monkeypatch.setattr(util, '_dnnlib_cache_dir', None)
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path / 'env'))
    monkeypatch.setenv('HOME', str(tmp_path / 'home'))
    assert util.make_cache_dir_path('downloads', 'x') == os.path.join(str(tmp_path / 'env'), 'downloads', 'x')
    util.set_cache_dir(str(tmp_path / 'explicit'))
    assert dnnlib.make_cache_dir_path('a') == os.path.join(str(tmp_path / 'explicit'), 'a')
    util.set_cache_dir(None)
    monkeypatch.delenv('DNNLIB_CACHE_DIR')
    assert util.make_cache_dir_path() == os.path.join(str(tmp_path / 'home'), '.cache', 'dnnlib')

#----------------------------------------------------------------------------

@pytest.mark.parametrize('seconds, text', [(0, '0s'), (59.4, '59s'), (59.6, '1m 00s'), (3599, '59m 59s'),
                                           (3600, '1h 00m 00s'), (86399, '23h 59m 59s'), (90061, '1d 01h 01m')])
def test_format_time(seconds, text):
    assert util.format_time(seconds) == text


def test_ask_yes_no_loops_until_understood(monkeypatch, capsys):
    answers = iter(['maybe', 'YES'])
    monkeypatch.setattr('builtins.input', lambda *args: next(answers))
    assert util.ask_yes_no('Continue?') is True
    assert capsys.readouterr().out.count('Continue? [y/n]') == 2
    monkeypatch.setattr('builtins.input', lambda *args: 'off')
    assert util.ask_yes_no('Again?') is False


def test_small_helpers():
    assert util.tuple_product((2, 3, 4)) == 24 and util.tuple_product(()) == 1
    dtype, ctype = util.get_dtype_and_ctype('float32')
    assert dtype == np.float32 and ctype.__name__ == 'c_float'
    assert util.get_dtype_and_ctype(np.uint8)[0] == np.uint8
    with pytest.raises(ValueError, match='unsupported type "complex64"'):
        util.get_dtype_and_ctype('complex64')
    assert util.is_pickleable([1, 'a']) and not util.is_pickleable(lambda: 0)

#----------------------------------------------------------------------------

def test_get_obj_by_name_and_construct():
    assert util.get_obj_by_name('np.float32') is np.float32
    assert util.get_obj_by_name('os.path.join') is os.path.join
    module, local = util.get_module_from_obj_name('os.path.join')
    assert module is os.path and local == 'join'
    assert util.get_obj_from_module(os, '') is os
    assert util.call_func_by_name(2, 3, func_name='operator.mul') == 6
    obj = util.construct_class_by_name(class_name='dnnlib.util.EasyDict', x=1)
    assert isinstance(obj, util.EasyDict) and obj.x == 1


def test_get_obj_by_name_errors_name_the_problem():
    with pytest.raises(ImportError, match=r'"os\.path\.jion".*module "os\.path" has no attribute "jion"'):
        util.get_obj_by_name('os.path.jion')
    with pytest.raises(ImportError, match=r'"no_such_pkg_xyz\.Thing".*no module named "no_such_pkg_xyz"'):
        util.construct_class_by_name(class_name='no_such_pkg_xyz.Thing')
    with pytest.raises(TypeError, match='needs class_name'):
        util.construct_class_by_name()
    with pytest.raises(TypeError, match='"math.pi" is a float'):
        util.call_func_by_name(func_name='math.pi')


def test_get_obj_by_name_passes_on_errors_inside_modules(tmp_path, monkeypatch):
    (tmp_path / 'broken_mod_for_test.py').write_text('import no_such_dependency_xyz\nX = 1\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ImportError, match=r'importing module "broken_mod_for_test" failed.*no_such_dependency_xyz') as info:
        util.get_obj_by_name('broken_mod_for_test.X')
    assert isinstance(info.value.__cause__, ModuleNotFoundError)


def test_reflection_helpers():
    assert util.get_module_dir_by_obj_name('dnnlib.util.EasyDict') == os.path.dirname(util.__file__)
    assert util.is_top_level_function(util.format_time)
    assert not util.is_top_level_function(lambda: 0)
    assert util.get_top_level_function_name(util.format_time) == 'dnnlib.util.format_time'
    with pytest.raises(ValueError, match='not a top-level function'):
        util.get_top_level_function_name(lambda: 0)

#----------------------------------------------------------------------------

def test_list_dir_and_copy(tmp_path):
    src = tmp_path / 'src'
    (src / 'sub').mkdir(parents=True)
    (src / '__pycache__').mkdir()
    (src / 'a.py').write_text('a')
    (src / 'a.pyc').write_text('x')
    (src / 'sub' / 'b.txt').write_text('b')
    (src / '__pycache__' / 'c.py').write_text('c')
    found = util.list_dir_recursively_with_ignore(str(src), ignores=['__pycache__', '*.pyc'])
    assert sorted(rel for _, rel in found) == sorted(['a.py', os.path.join('sub', 'b.txt')])
    found = util.list_dir_recursively_with_ignore(str(src), ignores=['*.pyc', '__pycache__'], add_base_to_relative=True)
    assert sorted(rel for _, rel in found) == sorted([os.path.join('src', 'a.py'), os.path.join('src', 'sub', 'b.txt')])
    util.copy_files_and_create_dirs([(abs_path, str(tmp_path / 'dst' / rel)) for abs_path, rel in found])
    assert (tmp_path / 'dst' / 'src' / 'sub' / 'b.txt').read_text() == 'b'

#----------------------------------------------------------------------------

def test_atomic_write_replaces_only_on_success(tmp_path):
    target = tmp_path / 'out.txt'
    target.write_text('old')
    with util.atomic_write(str(target), 'w') as f:
        f.write('new')
    assert target.read_text() == 'new'
    with pytest.raises(RuntimeError, match='boom'):
        with util.atomic_write(str(target), 'wb') as f:
            f.write(b'partial')
            raise RuntimeError('boom')
    assert target.read_text() == 'new'
    assert os.listdir(tmp_path) == ['out.txt']  # no temporary file left behind
    with pytest.raises(ValueError, match='mode must be'):
        with util.atomic_write(str(target), 'a'):
            pass

#----------------------------------------------------------------------------

@pytest.mark.parametrize('url, allow_file, expected', [
    ('https://example.com/a.pkl', False, True),
    ('http://localhost/a.pkl', False, False),
    ('file:///tmp/a.pkl', False, False),
    ('file:///tmp/a.pkl', True, True),
    ('/tmp/a.pkl', False, False),
    (42, False, False),
])
def test_is_url(url, allow_file, expected):
    assert util.is_url(url, allow_file_urls=allow_file) == expected


def test_open_url_local_and_file_urls(tmp_path):
    path = tmp_path / 'data.bin'
    path.write_bytes(b'abc')
    with util.open_url(str(path)) as f:
        assert f.read() == b'abc'
    with util.open_url('file://' + str(path)) as f:
        assert f.read() == b'abc'
    assert util.open_url(str(path), return_filename=True) == str(path)
    with pytest.raises(FileNotFoundError):
        util.open_url(str(tmp_path / 'missing.pkl'))


def test_open_url_cache_hit_needs_no_network(tmp_path):
    url = 'https://unreachable.invalid/models/net.pkl'
    cached = tmp_path / f'{hashlib.md5(url.encode()).hexdigest()}_net.pkl'
    cached.write_bytes(b'cached bytes')
    with util.open_url(url, cache_dir=str(tmp_path), verbose=False) as f:
        assert f.read() == b'cached bytes'
    assert util.open_url(url, cache_dir=str(tmp_path), return_filename=True) == str(cached)


def test_open_url_failure_explains_offline_fix(tmp_path):
    url = 'https://unreachable.invalid/models/net.pkl'
    md5 = hashlib.md5(url.encode()).hexdigest()
    with pytest.raises(OSError, match=rf'Could not download {url}.*"{tmp_path}".*{md5}_net\.pkl.*local file path'):
        util.open_url(url, cache_dir=str(tmp_path), num_attempts=1, verbose=False)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_open_url_downloads_into_cache_atomically(tmp_path):
    served = tmp_path / 'served'
    served.mkdir()
    (served / 'net.pkl').write_bytes(b'payload')
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(_QuietHandler, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f'http://127.0.0.1:{server.server_address[1]}/net.pkl'
        cache_dir = tmp_path / 'cache'
        with util.open_url(url, cache_dir=str(cache_dir), verbose=False) as f:
            assert f.read() == b'payload'
        files = os.listdir(cache_dir)
        assert len(files) == 1 and files[0].startswith(hashlib.md5(url.encode()).hexdigest() + '_')
        with util.open_url(url, cache=False, verbose=False) as f:
            assert f.read() == b'payload'
        with pytest.raises(OSError, match='HTTP Error 404'):
            util.open_url(url.replace('net.pkl', 'nope.pkl'), cache_dir=str(cache_dir), verbose=False)
    finally:
        server.shutdown()
        server.server_close()

#----------------------------------------------------------------------------
