"""The boundary between the core and the plugins, in both directions: the core (calc_metrics.py, metrics/, training/, torch_utils/, dnnlib/) names no prior and imports no plugin; no prior package imports another prior or the training loop; plugins come in through dnnlib.plugins and bring their metrics' options (calc_metrics.py --prior-file) through the metric registry."""

import ast
import os
import re
import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner

from dnnlib import plugins
from metrics import metric_main
from metrics import metric_utils

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORE = ['calc_metrics.py', 'metrics', 'training', 'torch_utils', 'dnnlib']
CORE_MODULES = ['dnnlib', 'dnnlib.util', 'dnnlib.cli', 'dnnlib.plugins', 'legacy', 'torch_utils.persistence', 'torch_utils.misc',
                'torch_utils.built_files', 'torch_utils.image_grid', 'training.training_loop', 'training.loss', 'training.networks',
                'training.sampling', 'training.resume', 'training.dataset', 'metrics.metric_main', 'metrics.metric_utils',
                'metrics.classifier']

#----------------------------------------------------------------------------
# The prior packages: every priors/<name>/ with an __init__.py.

def _prior_packages():
    folder = os.path.join(ROOT, 'priors')
    return sorted(name for name in os.listdir(folder) if os.path.isfile(os.path.join(folder, name, '__init__.py')))

def _core_files():
    for entry in CORE:
        path = os.path.join(ROOT, entry)
        if os.path.isfile(path):
            yield path
            continue
        for root, dirs, files in os.walk(path):
            dirs[:] = [d for d in dirs if d != '__pycache__']
            for name in files:
                if os.path.splitext(name)[1] in ('.py', '.cpp', '.cu', '.h', '.cuh', '.txt', '.md', '.json'):
                    yield os.path.join(root, name)

# Names that say "prior": the package folder, its prior names, and the word itself. An `rf` string prefix (rf'...') is Python syntax.
def _prior_name_pattern():
    names = sorted(set(_prior_packages()) | {'gmm', 'posterior', 'masked', 'mdgan', 'rf', 'priors'})
    return re.compile(r'\b(' + '|'.join(re.escape(n) for n in names) + r")\b(?!['\"])", re.IGNORECASE)

#----------------------------------------------------------------------------
# The core names no prior (code, strings and comments).

def test_core_names_no_prior():
    assert len(_prior_packages()) >= 5
    pattern = _prior_name_pattern()
    hits = []
    for path in _core_files():
        with open(path, encoding='utf-8') as f:
            for lineno, line in enumerate(f, 1):
                if pattern.search(line):
                    hits.append(f'{os.path.relpath(path, ROOT)}:{lineno}: {line.strip()[:120]}')
    assert not hits, 'the core names a prior:\n' + '\n'.join(hits)


def test_core_never_imports_a_plugin():
    code = textwrap.dedent(f'''
        import importlib, sys
        for name in {CORE_MODULES!r}:
            importlib.import_module(name)
        from dnnlib import plugins
        roots = {{m.split('.')[0] for m in plugins.plugin_modules()}}
        bad = sorted(m for m in sys.modules if m.split('.')[0] in roots)
        print(sorted(roots), bad)
        sys.exit(1 if bad or not roots else 0)
    ''')
    proc = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr

#----------------------------------------------------------------------------
# No prior package imports another prior, or the training loop.

def _imports(path, package):
    with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read(), filename=path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:  # relative: from .x / from ..x
                parts = package.split('.')[:len(package.split('.')) - node.level + 1]
                base = '.'.join(parts + ([base] if base else []))
            yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f'{base}.{alias.name}'
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, 'id', '')
            if name in ('import_module', '__import__'):
                yield node.lineno, node.args[0].value

def _forbidden_imports(name):
    others = [p for p in _prior_packages() if p != name]
    bad = []
    folder = os.path.join(ROOT, 'priors', name)
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d != '__pycache__']
        for file in files:
            if not file.endswith('.py'):
                continue
            path = os.path.join(root, file)
            package = 'priors.' + os.path.relpath(root, os.path.join(ROOT, 'priors')).replace(os.sep, '.')
            for lineno, module in _imports(path, package):
                if any(module == f'priors.{o}' or module.startswith(f'priors.{o}.') for o in others) or \
                        module == 'training.training_loop' or module.startswith('training.training_loop.'):
                    bad.append(f'{os.path.relpath(path, ROOT)}:{lineno}: imports {module}')
    return bad

@pytest.mark.parametrize('name', _prior_packages())
def test_prior_imports_no_other_prior_and_no_training_loop(name):
    bad = _forbidden_imports(name)
    assert not bad, '\n'.join(bad)


def test_import_scanner_sees_every_form(tmp_path, monkeypatch):
    path = tmp_path / 'mod.py'
    path.write_text('import priors.gmm.pca\nfrom training import training_loop\nfrom ..gmm import prior_file\n'
                    'def f():\n    import importlib\n    return importlib.import_module("priors.rf.ae_file")\n')
    found = {m for _, m in _imports(str(path), 'priors.mine')}
    assert {'priors.gmm.pca', 'training.training_loop', 'priors.gmm.prior_file', 'priors.rf.ae_file'} <= found

#----------------------------------------------------------------------------
# Plugins: declared once (pyproject entry points), imported by name.

def test_plugins_are_declared_in_pyproject(monkeypatch):
    monkeypatch.delenv(plugins.ENV, raising=False)
    with open(os.path.join(ROOT, 'pyproject.toml'), encoding='utf-8') as f:
        text = f.read()
    assert plugins._parse_entry_table(text) == ['priors']  # pylint: disable=protected-access
    assert plugins._source_tree_entries() == ['priors']    # pylint: disable=protected-access
    assert 'priors' in plugins.plugin_modules()
    monkeypatch.setenv(plugins.ENV, ' a.b , c ')
    assert plugins.plugin_modules() == ['a.b', 'c']
    monkeypatch.setenv(plugins.ENV, '')
    assert plugins.plugin_modules() == []


def test_missing_plugin_is_skipped_and_a_broken_one_is_named(tmp_path, monkeypatch):
    (tmp_path / 'broken_plugin_x').mkdir()
    (tmp_path / 'broken_plugin_x' / '__init__.py').write_text('import no_such_module_anywhere_x\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(plugins.ENV, 'absent_plugin_x')
    assert plugins.import_plugins() == []
    monkeypatch.setenv(plugins.ENV, 'absent_plugin_x,broken_plugin_x')
    with pytest.raises(plugins.PluginImportError, match=r'^Plugin "broken_plugin_x" .* failed to import: .*no_such_module_anywhere_x.*'
                                                        r'run without it: SG2ADA_PLUGINS='):
        plugins.import_plugins()

#----------------------------------------------------------------------------
# Metric options come from the metric registry.

def test_metric_options_are_registered_with_their_metrics(monkeypatch):
    import priors  # noqa: F401  registers the prior metrics
    flags = {o.flag for o in metric_main.list_metric_options()}
    assert '--prior-file' in flags
    assert [o.name for o in metric_main.list_metric_options(['qs50k', 'fid50k_full'])] == ['prior_file']
    assert metric_main.list_metric_options(['fid50k_full']) == []
    opts = metric_utils.MetricOptions(device='cpu', prior_file='p.pt')
    assert opts.extra.prior_file == 'p.pt' and metric_utils.MetricOptions(device='cpu').extra.get('prior_file') is None
    with pytest.raises(TypeError, match=r'calc_metrics: unknown argument\(s\) prior_fille; .*registered metric options are .*prior_file'):
        metric_main.calc_metrics(['fid50k_full'], prior_fille='p.pt')


def test_register_metric_with_options(monkeypatch):
    monkeypatch.setattr(metric_main, '_metric_dict', dict(metric_main._metric_dict))          # pylint: disable=protected-access
    monkeypatch.setattr(metric_main, '_option_dict', dict(metric_main._option_dict))          # pylint: disable=protected-access
    monkeypatch.setattr(metric_main, '_metric_options', dict(metric_main._metric_options))    # pylint: disable=protected-access
    option = metric_main.MetricOption('reference_file', help='A file', metavar='FILE', load=str.upper)
    assert option.flag == '--reference-file'

    @metric_main.register_metric(options=[option])
    def my_metric_x(opts):
        return dict(my_metric_x=len(opts.extra.reference_file))

    assert metric_main.is_valid_metric('my_metric_x') and metric_main.list_metric_options(['my_metric_x']) == [option]
    assert metric_main.calc_metric('my_metric_x', device='cpu', reference_file='abc').results.my_metric_x == 3
    with pytest.raises(ValueError, match='Metric option "reference_file" is already registered with other settings'):
        metric_main.register_metric(options=[metric_main.MetricOption('reference_file', help='Another')])(lambda opts: {})
    with pytest.raises(ValueError, match='"seed" is already an argument of MetricOptions'):
        metric_main.MetricOption('seed', help='x')
    with pytest.raises(TypeError, match='options of "f" must be MetricOption objects, got str'):
        def f(opts):
            return {}
        metric_main.register_metric(f, options=['prior_file'])


def test_calc_metrics_flags_follow_the_plugins():
    # With the plugins: --prior-file and the prior metrics. Without any: neither, and the core still runs.
    run = lambda env: subprocess.run([sys.executable, 'calc_metrics.py', '--help'], cwd=ROOT, capture_output=True, text=True,
                                     env=dict(os.environ, **env))
    with_plugins = run({})
    assert with_plugins.returncode == 0 and '--prior-file FILE' in with_plugins.stdout and 'qs50k' in with_plugins.stdout
    bare = run({plugins.ENV: ''})
    assert bare.returncode == 0, bare.stderr
    assert '--prior-file' not in bare.stdout and 'qs50k' not in bare.stdout
    assert 'fid50k_full' in bare.stdout


def test_prior_file_flag_loads_through_the_registry(tmp_path):
    import calc_metrics
    missing = str(tmp_path / 'nope.pt')
    result = CliRunner().invoke(calc_metrics.main, ['--network', str(tmp_path / 'no.pkl'), '--prior-file', missing, '--device', 'cpu'])
    assert result.exit_code != 0   # the network is checked first; the flag exists and parses
    assert 'no such option' not in result.output
    loaded = calc_metrics._load_metric_options(dict(prior_file=None))  # pylint: disable=protected-access
    assert loaded == {}
    import click
    with pytest.raises(click.ClickException, match=rf"^--prior-file: Prior file '{re.escape(missing)}' does not exist"):
        calc_metrics._load_metric_options(dict(prior_file=missing))  # pylint: disable=protected-access

#----------------------------------------------------------------------------
