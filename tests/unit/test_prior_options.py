"""Prior options declared once (issue 19, item 5): an option's default is its prior's constructor default (arg=) or
one declared value per run context (demo=, toy=), `--help`'s "[default: ...]" is generated from it, and one helper
(priors.cli.resolve) reads the options. A prior's cli module that is missing or broken is one line naming the prior."""

import inspect
import re
import sys
import types

import click
import pytest
from click.testing import CliRunner

import dnnlib
import train
from priors import base
from priors import cli
from priors import registry

PAPER_PRIORS = ('gmm', 'mdgan', 'masked', 'posterior', 'rf')

#----------------------------------------------------------------------------
# The kwargs that train.py's own configuration gives each prior (a dry run, in-process).

def _prior_kwargs(monkeypatch, *args):
    seen = []
    configure = cli.configure
    monkeypatch.setattr(cli, 'configure', lambda c, opts: seen.append(configure(c, opts)) or seen[-1])
    result = CliRunner().invoke(train.main, ['--dry-run', '--outdir=unused-runs', *args])
    assert result.exit_code == 0, result.output
    return {entry['name']: dict(entry) for entry in seen[-1].loss_kwargs.prior_kwargs}

def _help_records(name):
    cls = registry.get_prior_class(name)
    return {key: (spec, cli.help_text(spec, cls)) for key, spec in cli._option_specs(name)}

#----------------------------------------------------------------------------

@pytest.mark.parametrize('name', PAPER_PRIORS)
def test_help_shows_the_constructor_default(name):
    defaults = cli.constructor_defaults(registry.get_prior_class(name))
    for key, (spec, text) in _help_records(name).items():
        # The declaration carries no default text of its own: the one in --help is generated.
        assert '[default:' not in spec.attrs.get('help', ''), f'{cli.flag(key)} writes its default into help='
        assert text.count('[default:') <= 1, text
        if spec.arg is not None and spec.default_text is None:
            shown = spec.to_arg and {v: k for k, v in spec.to_arg.items()}.get(defaults[spec.arg]) or defaults[spec.arg]
            assert f'[default: {cli.format_value(shown)}' in text, (key, text)


@pytest.mark.parametrize('name', PAPER_PRIORS)
def test_given_nothing_the_constructor_defaults_apply(name, monkeypatch):
    # Outside the demo and the toy lab every arg= option that prior_kwargs() does not derive gives the constructor's value.
    kwargs = _prior_kwargs(monkeypatch, f'--prior={name}', '--cfg=stylegan2')[name]
    defaults = cli.constructor_defaults(registry.get_prior_class(name))
    checked = 0
    for _key, (spec, _text) in _help_records(name).items():
        if spec.arg is None or spec.default_text is not None or spec.arg not in kwargs:
            continue
        expected = defaults[spec.arg]
        assert kwargs[spec.arg] == (list(expected) if isinstance(expected, tuple) else expected), spec.arg
        checked += 1
    assert checked >= 3


def test_run_context_defaults_are_declared_once(monkeypatch):
    demo = _prior_kwargs(monkeypatch, '--prior=gmm')['gmm']
    assert (demo['feature'], demo['resample_kimg'], demo['resample_num'], demo['pca']) == ('tiny', 0.5, 256, 0.98)
    toy = _prior_kwargs(monkeypatch, '--prior=gmm', '--cfg=toy', '--data=toy:ring8')['gmm']
    assert (toy['feature'], toy['resample_kimg'], toy['resample_num'], toy['pca']) == ('identity', 4, 1000, None)
    full = _prior_kwargs(monkeypatch, '--prior=gmm', '--cfg=stylegan2')['gmm']
    assert (full['feature'], full['resample_kimg'], full['resample_num']) == ('inception', 4, 1000)
    toy = _prior_kwargs(monkeypatch, '--prior=mdgan', '--cfg=toy', '--data=toy:ring8', '--mdgan-lambda2=0.1')['mdgan']
    assert (toy['lambda1'], toy['lambda2']) == (0.005, 0.1)
    # Their help text names every context.
    assert cli.help_text(cli.option('--x', arg='weight', demo=0.5, toy=2, help='x'), _Shrinking).endswith(
        '  [default: 1; demo: 0.5; --cfg=toy: 2]')

#----------------------------------------------------------------------------
# A throw-away prior with a cli module of its own, and no prior_kwargs(): the kwargs come from arg= alone.

class _Shrinking(base.Prior):
    def __init__(self, weight=1.0, form='per_dim'):
        super().__init__()
        self.weight, self.form = weight, form

class _Shrinking2(_Shrinking):
    def __init__(self, weight=0.25, form='per_dim'):
        super().__init__(weight, form)

def _module(name, options):
    module = types.ModuleType(name)
    module.TITLE = 'test prior'
    module.OPTIONS = options
    sys.modules[name] = module
    return module

@pytest.fixture
def throwaway():
    names = []
    def register(name, cls, cli_name, options=None):
        if options is not None:
            _module(cli_name, options)
        registry.register_prior(name, cli=cli_name)(cls)
        names.append((name, cli_name))
    yield register
    for name, cli_name in names:
        registry.unregister_prior(name)
        sys.modules.pop(cli_name, None)

def _command():
    @click.command(cls=cli.PriorCommand)
    @cli.prior_options
    def main(**opts):
        c = dnnlib.EasyDict(training_set_kwargs=dnnlib.EasyDict(class_name='training.dataset.ImageFolderDataset', path='x.zip'),
                            G_kwargs=dnnlib.EasyDict(class_name='training.networks.Generator'),
                            D_kwargs=dnnlib.EasyDict(class_name='training.networks.Discriminator'),
                            loss_kwargs=dnnlib.EasyDict(class_name='training.loss.StyleGAN2Loss'))
        c = cli.configure(c, dict(opts, data='x.zip', cfg='stylegan2'))
        click.echo(f'KWARGS {dict(c.loss_kwargs.prior_kwargs[0]) if "prior_kwargs" in c.loss_kwargs else None}')
    return main


def test_one_default_reaches_help_and_kwargs(throwaway):
    options = [cli.option('--tshr-weight', arg='weight', type=click.FloatRange(min=0), metavar='FLOAT', help='tshr: weight'),
               cli.option('--tshr-form', arg='form', type=click.Choice(['per-dim', 'paper']), to_arg={'per-dim': 'per_dim'},
                          help='tshr: form')]
    throwaway('tshr', _Shrinking, '_test_prior_options_tshr', options)
    result = CliRunner().invoke(_command(), ['--help'])
    text = ' '.join(result.output.split())
    assert '--tshr-weight FLOAT tshr: weight [default: 1]' in text and '[default: per-dim]' in text
    result = CliRunner().invoke(_command(), ['--prior=tshr'])
    assert "KWARGS {'name': 'tshr', 'weight': 1.0, 'form': 'per_dim'}" in result.output, result.output
    result = CliRunner().invoke(_command(), ['--prior=tshr', '--tshr-weight=3', '--tshr-form=paper'])
    assert "'weight': 3.0, 'form': 'paper'" in result.output, result.output

    # Change the default where it lives, the constructor: --help and the kwargs follow.
    registry.unregister_prior('tshr')
    registry.register_prior('tshr', cli='_test_prior_options_tshr')(_Shrinking2)
    assert '[default: 0.25]' in CliRunner().invoke(_command(), ['--help']).output
    assert "'weight': 0.25" in CliRunner().invoke(_command(), ['--prior=tshr']).output


def test_declaring_a_default_twice_is_refused(throwaway):
    with pytest.raises(TypeError, match='takes the constructor\'s default'):
        cli.option('--tshr-weight', arg='weight', default=2.0)
    with pytest.raises(TypeError, match='click default stays None'):
        cli.option('--tshr-weight', default=2.0, show_default=True)
    # arg= naming no constructor argument: one line naming the prior and the flag, in --help and at --prior=.
    throwaway('tshr', _Shrinking, '_test_prior_options_tshr', [cli.option('--tshr-wieght', arg='wieght', type=float)])
    result = CliRunner().invoke(_command(), ['--help'])
    assert result.exit_code == 0 and '--tshr-wieght in _test_prior_options_tshr sets arg="wieght", which' in ' '.join(result.output.split())
    result = CliRunner().invoke(_command(), ['--prior=tshr'])
    assert result.exit_code == 1 and 'Error: --prior=tshr: --tshr-wieght in _test_prior_options_tshr sets arg="wieght"' in result.output


@pytest.mark.parametrize('cli_name, source', [('_test_prior_options_missing', None),
                                               ('_test_prior_options_syntax', 'OPTIONS = [\n')])
def test_a_broken_cli_module_names_its_prior(throwaway, tmp_path, monkeypatch, cli_name, source):
    if source is not None:
        (tmp_path / f'{cli_name}.py').write_text(source)
        monkeypatch.syspath_prepend(str(tmp_path))
    throwaway('tbroken', _Shrinking, cli_name)
    throwaway('tshr', _Shrinking, '_test_prior_options_tshr', [cli.option('--tshr-weight', arg='weight', type=float, help='w')])
    # --help: the other priors' options, and one line for the broken one.
    result = CliRunner().invoke(_command(), ['--help'])
    assert result.exit_code == 0 and '--tshr-weight' in result.output and '--resample-ema' in result.output
    text = ' '.join(result.output.split())
    assert f'Options of --prior=tbroken: Prior "tbroken": its options module "{cli_name}" cannot be imported' in text
    # The others still configure; selecting it is one ClickException naming it.
    assert "'weight': 1.0" in CliRunner().invoke(_command(), ['--prior=tshr']).output
    result = CliRunner().invoke(_command(), ['--prior=tbroken'])
    assert result.exit_code == 1 and not isinstance(result.exception, (ImportError, SyntaxError))
    (line,) = [line for line in result.output.splitlines() if line.strip()]
    assert line.startswith(f'Error: Prior "tbroken": its options module "{cli_name}" cannot be imported')


def test_cli_modules_are_imported_on_first_use(throwaway):
    # Registering names the module; nothing is imported until the options are built.
    throwaway('tlazy', _Shrinking, '_test_prior_options_never_imported')
    assert '_test_prior_options_never_imported' not in sys.modules
    with pytest.raises(ImportError, match='Prior "tlazy": its options module "_test_prior_options_never_imported"'):
        registry.get_prior_cli('tlazy')

#----------------------------------------------------------------------------

def test_the_paper_priors_read_their_options_through_resolve():
    # No cli module of the paper priors keeps its own copy of a default ("pick" lambdas, *DEFAULTS dicts).
    for name in PAPER_PRIORS:
        source = inspect.getsource(registry.get_prior_cli(name))
        assert not re.search(r'pick\s*=\s*lambda|^_?[A-Z_]*DEFAULTS\s*=', source, re.M), name

#----------------------------------------------------------------------------
