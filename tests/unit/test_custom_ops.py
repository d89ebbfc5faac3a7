"""custom_ops: plugin cache, console output, the TORCH_EXTENSIONS_DIR snapshot build, and the ops'
fallback to their twins (one clear warning per process, no rebuilds, no build at all for CPU tensors)."""

import os
import types
import warnings

import pytest
import torch

from torch_utils import custom_ops
from torch_utils.ops import bias_act, upfirdn2d

#----------------------------------------------------------------------------
# Every test starts with an empty plugin registry and gets the previous one back afterwards.

@pytest.fixture(autouse=True)
def clean_plugin_state(monkeypatch):
    saved = dict(custom_ops._cached_plugins), dict(custom_ops._failed_plugins)
    custom_ops.reset()
    monkeypatch.setattr(custom_ops, 'verbosity', 'brief')
    yield
    custom_ops.reset()
    custom_ops._cached_plugins.update(saved[0])
    custom_ops._failed_plugins.update(saved[1])

# Replaces the compiler: counts builds, returns a fake module or raises the given error.
class FakeBuild:
    def __init__(self, error=None):
        self.error = error
        self.calls = []

    def __call__(self, module_name, sources, build_kwargs):
        self.calls.append((module_name, list(sources), dict(build_kwargs)))
        if self.error is not None:
            raise self.error
        return types.SimpleNamespace(name=module_name)

#----------------------------------------------------------------------------
# get_plugin: builds once, caches, prints one line in brief mode, propagates errors.

def test_get_plugin_builds_once_and_caches(monkeypatch, capsys):
    build = FakeBuild()
    monkeypatch.setattr(custom_ops, '_build', build)
    first = custom_ops.get_plugin('demo_plugin', sources=['a.cpp'], extra_cuda_cflags=['-O3'])
    second = custom_ops.get_plugin('demo_plugin', sources=['a.cpp'])
    assert first is second and first.name == 'demo_plugin'
    assert build.calls == [('demo_plugin', ['a.cpp'], dict(extra_cuda_cflags=['-O3']))]
    assert capsys.readouterr().out == 'Setting up PyTorch plugin "demo_plugin"... Done.\n'

def test_get_plugin_failure_prints_failed_and_raises(monkeypatch, capsys):
    monkeypatch.setattr(custom_ops, '_build', FakeBuild(RuntimeError('Ninja is required to load C++ extensions')))
    with pytest.raises(RuntimeError, match='Ninja is required'):
        custom_ops.get_plugin('demo_plugin', sources=['a.cpp'])
    assert capsys.readouterr().out == 'Setting up PyTorch plugin "demo_plugin"... Failed!\n'
    assert 'demo_plugin' not in custom_ops._cached_plugins

@pytest.mark.parametrize('level,expected', [('none', ''), ('full', 'Setting up PyTorch plugin "demo_plugin"...\n'
                                                             'Done setting up PyTorch plugin "demo_plugin".\n')])
def test_get_plugin_verbosity(monkeypatch, capsys, level, expected):
    monkeypatch.setattr(custom_ops, '_build', FakeBuild())
    monkeypatch.setattr(custom_ops, 'verbosity', level)
    custom_ops.get_plugin('demo_plugin', sources=['a.cpp'])
    assert capsys.readouterr().out == expected

#----------------------------------------------------------------------------
# The build itself: plain torch load, or a content-addressed snapshot under TORCH_EXTENSIONS_DIR.

class FakeLoad:
    def __init__(self):
        self.calls = []

    def __call__(self, **kwargs):
        self.calls.append(kwargs)
        return types.SimpleNamespace(**kwargs)

def test_build_without_extensions_dir_uses_sources_in_place(monkeypatch, tmp_path):
    load = FakeLoad()
    monkeypatch.setattr(torch.utils.cpp_extension, 'load', load)
    monkeypatch.delenv('TORCH_EXTENSIONS_DIR', raising=False)
    sources = [str(tmp_path / 'op.cpp'), str(tmp_path / 'op.cu')]
    custom_ops._build('demo_plugin', sources, dict(extra_cuda_cflags=['--use_fast_math']))
    assert load.calls == [dict(name='demo_plugin', sources=sources, verbose=False, extra_cuda_cflags=['--use_fast_math'])]

def test_build_with_extensions_dir_snapshots_sources(monkeypatch, tmp_path):
    load = FakeLoad()
    monkeypatch.setattr(torch.utils.cpp_extension, 'load', load)
    src_dir, ext_dir = tmp_path / 'src', tmp_path / 'ext'
    src_dir.mkdir()
    for name, text in [('op.cpp', 'int a;'), ('op.cu', 'int b;'), ('op.h', '#pragma once'), ('op.py', 'a = 1')]:
        (src_dir / name).write_text(text)
    monkeypatch.setenv('TORCH_EXTENSIONS_DIR', str(ext_dir))
    sources = [str(src_dir / 'op.cpp'), str(src_dir / 'op.cu')]

    # The snapshot holds the folder's native files (headers included) and is named by their hash.
    custom_ops._build('demo_plugin', sources, dict())
    kwargs = load.calls[-1]
    snapshot = os.path.dirname(kwargs['sources'][0])
    assert kwargs['build_directory'] == str(ext_dir / 'demo_plugin')
    assert os.path.dirname(snapshot) == str(ext_dir / 'demo_plugin')
    assert [os.path.basename(s) for s in kwargs['sources']] == ['op.cpp', 'op.cu']
    assert sorted(os.listdir(snapshot)) == ['op.cpp', 'op.cu', 'op.h']

    # Same native content -> same snapshot (Python edits do not count); an edited header -> a new one.
    (src_dir / 'op.py').write_text('a = 2')
    custom_ops._build('demo_plugin', sources, dict())
    assert os.path.dirname(load.calls[-1]['sources'][0]) == snapshot
    (src_dir / 'op.h').write_text('#pragma once\n#define CHANGED 1')
    custom_ops._build('demo_plugin', sources, dict())
    assert os.path.dirname(load.calls[-1]['sources'][0]) != snapshot
    assert len(os.listdir(ext_dir / 'demo_plugin')) == 2

#----------------------------------------------------------------------------
# get_plugin_or_none: one warning with cause and fix, then None without retrying.

def test_failed_build_warns_once_and_never_retries(monkeypatch):
    build = FakeBuild(OSError('CUDA_HOME environment variable is not set'))
    monkeypatch.setattr(custom_ops, '_build', build)
    with pytest.warns(RuntimeWarning) as record:
        assert custom_ops.get_plugin_or_none('bias_act', 'demo_plugin', sources=['a.cpp']) is None
    assert len(record) == 1
    message = str(record[0].message)
    assert '\n' not in message
    assert message.startswith('Failed to build CUDA kernels for bias_act. Falling back to slow reference implementation')
    assert 'OSError: CUDA_HOME environment variable is not set' in message
    assert 'install ninja and a CUDA toolkit matching torch.version.cuda' in message and "impl='ref'" in message

    with warnings.catch_warnings():
        warnings.simplefilter('error')
        for _ in range(3):
            assert custom_ops.get_plugin_or_none('bias_act', 'demo_plugin', sources=['a.cpp']) is None
    assert len(build.calls) == 1

def test_failed_build_message_keeps_compiler_errors(monkeypatch):
    log = 'Error building extension \'demo\':\n[1/3] nvcc -c op.cu\nop.cu(12): error: identifier "foo" is undefined\nninja: build stopped'
    monkeypatch.setattr(custom_ops, '_build', FakeBuild(RuntimeError(log)))
    with pytest.warns(RuntimeWarning, match=r'Details: RuntimeError: Error building extension .* \| op.cu\(12\): error: identifier "foo"'):
        custom_ops.get_plugin_or_none('upfirdn2d', 'demo_plugin', sources=['a.cpp'])

def test_unexpected_exceptions_are_not_swallowed(monkeypatch):
    monkeypatch.setattr(custom_ops, '_build', FakeBuild(KeyError('bug')))
    with pytest.raises(KeyError):
        custom_ops.get_plugin_or_none('bias_act', 'demo_plugin', sources=['a.cpp'])

def test_reset_forgets_failures(monkeypatch):
    monkeypatch.setattr(custom_ops, '_build', FakeBuild(RuntimeError('no nvcc')))
    with pytest.warns(RuntimeWarning):
        custom_ops.get_plugin_or_none('bias_act', 'demo_plugin', sources=['a.cpp'])
    custom_ops.reset()
    monkeypatch.setattr(custom_ops, '_build', FakeBuild())
    assert custom_ops.get_plugin_or_none('bias_act', 'demo_plugin', sources=['a.cpp']).name == 'demo_plugin'

#----------------------------------------------------------------------------
# The ops: their _init() reports a failed build once; CPU tensors never trigger a build.

@pytest.mark.parametrize('op', [bias_act, upfirdn2d], ids=['bias_act', 'upfirdn2d'])
def test_op_init_falls_back_after_one_warning(monkeypatch, op):
    build = FakeBuild(RuntimeError('nvcc fatal: Unsupported gpu architecture'))
    monkeypatch.setattr(custom_ops, '_build', build)
    with pytest.warns(RuntimeWarning, match=rf'Failed to build CUDA kernels for {op.__name__.split(".")[-1]}\. '
                                            r'Falling back to slow reference implementation.*Unsupported gpu'):
        assert op._init() is False
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert op._init() is False
    assert len(build.calls) == 1
    assert build.calls[0][1][0].endswith('.cpp') and build.calls[0][1][1].endswith('.cu')
    assert build.calls[0][2] == dict(extra_cuda_cflags=['--use_fast_math'])

def test_cpu_tensors_never_build(monkeypatch):
    build = FakeBuild(AssertionError('a CPU call must not build a plugin'))
    monkeypatch.setattr(custom_ops, '_build', build)
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    x = torch.randn([1, 2, 8, 8])
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        bias_act.bias_act(x, torch.zeros([2]), act='lrelu', impl='cuda')
        upfirdn2d.upfirdn2d(x, f, up=2, impl='cuda')
        upfirdn2d.filter2d(x, f)
        upfirdn2d.upsample2d(x, f)
        upfirdn2d.downsample2d(x, f)
    assert build.calls == []
    assert custom_ops._cached_plugins == {} and custom_ops._failed_plugins == {}

#----------------------------------------------------------------------------
# On a GPU: a failing build warns once and every later call silently uses the twin.

@pytest.mark.gpu
def test_cuda_tensors_fall_back_to_twin_after_failed_build(monkeypatch):
    build = FakeBuild(RuntimeError('simulated build failure'))
    monkeypatch.setattr(custom_ops, '_build', build)
    x = torch.randn([2, 3, 8, 8], device='cuda')
    b = torch.randn([3], device='cuda')
    f = upfirdn2d.setup_filter([1, 3, 3, 1], device=x.device)
    with pytest.warns(RuntimeWarning) as record:
        for _ in range(3):
            y = bias_act.bias_act(x, b, act='lrelu')
            z = upfirdn2d.upsample2d(x, f)
    assert len(record) == 2 and len(build.calls) == 2
    torch.testing.assert_close(y, bias_act.bias_act(x, b, act='lrelu', impl='ref'))
    torch.testing.assert_close(z, upfirdn2d.upsample2d(x, f, impl='ref'))

#----------------------------------------------------------------------------
