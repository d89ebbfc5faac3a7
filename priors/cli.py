"""Command-line options of the priors for train.py (`@prior_options`, `PriorCommand`) and their translation into the training config (`configure(c, opts)`).

train.py uses it as:

    import priors.cli
    @click.command(cls=priors.cli.PriorCommand)     # --help: one section per prior
    @priors.cli.prior_options
    def main(ctx, **opts): ...
        priors.cli.configure(c, opts)    # after the dataset and seed options are final

`--prior=none` (the default) leaves the config untouched, so the run is the
baseline, bit for bit. Options of a prior that is not selected are refused.

A prior with command-line options registers the module that holds them,
`@register_prior('name', cli='priors.<paper>.cli')`, so adding a prior touches only its own
package. The module is imported when train.py builds its options; if it cannot be imported, that
prior's section of `--help` and `--prior=name` say so in one line, and the other priors work. It defines:

    TITLE                   the heading of its section in train.py --help (paper and what it adds)
    OPTIONS                 a list of priors.cli.option('--flag', ...), each taking click.option()'s arguments
    prior_kwargs(opts, c)   optional -> dict: the prior's constructor kwargs from the parsed options (a dict
                            with every option of train.py) and the config so far (dataset final); raises
                            click.ClickException naming the flag at fault. Without it, the kwargs are those of
                            the options declared with `arg=` (see option()).

Each default is written once. An option declared with `arg='name'` sets that constructor argument of
the prior, and its default IS the constructor's default: `--help` shows it, and `resolve()` returns it
when the option is not given. Defaults that depend on the run are declared next to it, also once:
`demo=` (train.py's demo config), `toy=` (the toy lab, --cfg=toy). A default that the cli module
derives (from a preset, the dataset, another option) is described by `default_text=`. The click
option itself defaults to None ("not given"), so that configure() can tell which options were given.
"""

import inspect

import click

import dnnlib
from dnnlib import cli as dnnlib_cli
from priors import base
from priors import registry
from training import toy_lab

#----------------------------------------------------------------------------
# Declaring an option: the helpers for the priors' cli modules.

_UNSET = type('Unset', (), {'__repr__': lambda self: '<unset>'})()  # "no default declared here"
CONTEXTS = ('demo', 'toy')  # run-dependent defaults: train.py's demo config, the toy lab (--cfg=toy)

# One command-line option of a prior, declared like click.option(*param_decls, **attrs), plus where its default lives:
#   arg=NAME            the constructor argument of the prior that the option sets; its default is the constructor's
#   default=VALUE       the default of an option without arg= (one that prior_kwargs() reads itself)
#   demo=, toy=         the default in train.py's demo config / in the toy lab, where it differs
#   default_text=TEXT   what --help says the default is; '{}' in it stands for the default value. Needed where
#                       prior_kwargs() derives the default (e.g. "the preset's", "G's z_dim")
#   to_arg={CLI: ARG}   option values spelled differently in the constructor (e.g. {'per-dim': 'per_dim'})
# `--help` gets '  [default: ...]' appended from these; write no default into help=. Float options refuse NaN
# and infinity (issue 15): type=float and click.FloatRange become dnnlib.cli.FiniteFloat.
def option(*param_decls, arg=None, default=_UNSET, demo=_UNSET, toy=_UNSET, default_text=None, to_arg=None, **attrs):
    if 'default' in attrs or 'show_default' in attrs:
        raise TypeError(f'priors.cli.option{param_decls}: the click default stays None; declare the default with arg= or default=')
    if arg is not None and default is not _UNSET:
        raise TypeError(f'priors.cli.option{param_decls}: arg="{arg}" takes the constructor\'s default; do not repeat it with default=')
    kind = attrs.get('type')
    if kind is float:
        attrs = dict(attrs, type=dnnlib_cli.FiniteFloat())
    elif isinstance(kind, click.FloatRange) and not isinstance(kind, dnnlib_cli.FiniteFloat):
        attrs = dict(attrs, type=dnnlib_cli.FiniteFloat(min=kind.min, max=kind.max, min_open=kind.min_open,
                                                        max_open=kind.max_open, clamp=kind.clamp))
    variants = {name: value for name, value in zip(CONTEXTS, (demo, toy)) if value is not _UNSET}
    return dnnlib.EasyDict(param_decls=param_decls, attrs=attrs, arg=arg, default=default, variants=variants,
                           default_text=default_text, to_arg=dict(to_arg or {}))

# '--flag-name' of an option's parameter name.
def flag(key):
    return '--' + key.replace('_', '-')

# True for the tiny demo config (train.py without --data, or with --cfg=demo).
def is_demo(opts):
    return opts.get('cfg') == 'demo' or (opts.get('cfg') is None and opts.get('data') is None)

# The run's context for the demo= / toy= defaults: 'toy' (toy_lab's answer), 'demo' or None.
def run_context(opts, c):
    data = (c or {}).get('training_set_kwargs') or {}
    if toy_lab.is_toy_run(c or {}) or (isinstance(data.get('path'), str) and toy_lab.is_toy_data(data['path'])):
        return 'toy'
    return 'demo' if is_demo(opts) else None

# How a default reads in --help: 0.1, 1e-05, 1 (true), full, -5,1.
def format_value(value):
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float):
        return f'{value:g}'
    if isinstance(value, (tuple, list)):
        return ','.join(format_value(v) for v in value)
    return 'none' if value is None else str(value)

#----------------------------------------------------------------------------
# Reading the declarations: defaults, help text, values.

# Keyword defaults of a prior class's constructor: {argument: default}.
def constructor_defaults(cls):
    params = inspect.signature(cls.__init__).parameters
    return {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}

# The default of an option in a run context ('demo', 'toy' or None, see run_context): that context's variant, else the
# constructor's default (arg=, in the option's own spelling), else its declared default, else None (prior_kwargs()
# derives it).
def default_of(spec, cls, context=None):
    if context in spec.variants:
        return spec.variants[context]
    if spec.arg is not None:
        value = constructor_defaults(cls).get(spec.arg)
        inverse = {v: k for k, v in spec.to_arg.items()}
        return inverse.get(value, value) if isinstance(value, (str, int, float)) else value
    return None if spec.default is _UNSET else spec.default

# The help text of an option with its generated '  [default: ...]'.
def help_text(spec, cls):
    text = spec.attrs.get('help', '')
    value = default_of(spec, cls)
    shown = spec.default_text.replace('{}', format_value(value)) if spec.default_text is not None else \
            (None if value is None else format_value(value))
    parts = ([shown] if shown is not None else []) + [f'{"--cfg=toy" if name == "toy" else name}: {format_value(v)}'
                                                      for name, v in spec.variants.items()]
    return f'{text}  [default: {"; ".join(parts)}]' if parts else text

# Every option of prior `name`, given or defaulted: {param name: value as on the command line}. opts: the command's
# options (dict-like); c: the training config so far (for the toy lab's defaults). This replaces `x if x is not None else
# default` in the priors' cli modules.
def resolve(name, opts, c=None):
    cls, context = registry.get_prior_class(name), run_context(opts, c)
    values = dnnlib.EasyDict()
    for key, spec in _option_specs(name):
        given = opts.get(key)
        values[key] = given if given is not None else default_of(spec, cls, context)
    return values

# The constructor kwargs of prior `name` that its options declared with arg= give, from resolve()'s values.
def arg_kwargs(name, values):
    kwargs = dnnlib.EasyDict()
    for key, spec in _option_specs(name):
        if spec.arg is not None:
            value = values[key]
            kwargs[spec.arg] = spec.to_arg.get(value, value) if spec.to_arg and isinstance(value, str) else value
    return kwargs

# The constructor argument that option `key` (param name) of prior `name` sets; None if it sets none.
def arg_of(name, key):
    return dict(_option_specs(name))[key].arg

#----------------------------------------------------------------------------
# Loading the priors' cli modules.

# A prior whose cli module cannot be imported or declares options wrongly: the one line that names it.
class PriorCliError(click.ClickException):
    pass

# [(param name, option spec)] of prior `name` ([] for a prior without a cli module). Raises PriorCliError.
def _option_specs(name):
    try:
        module = registry.get_prior_cli(name)
    except ImportError as err:
        raise PriorCliError(str(err)) from err
    if module is None:
        return []
    cls, items = registry.get_prior_class(name), []
    params = inspect.signature(cls.__init__).parameters
    for spec in getattr(module, 'OPTIONS', []):
        try:
            key = PriorOption(list(spec.param_decls), prior=name, **spec.attrs).name
        except (AttributeError, TypeError) as err:
            raise PriorCliError(f'--prior={name}: an entry of {module.__name__}.OPTIONS is not a priors.cli.option(...) ({err})') from err
        if spec.arg is not None and spec.arg not in params:
            raise PriorCliError(f'--prior={name}: {flag(key)} in {module.__name__} sets arg="{spec.arg}", which '
                                f'{cls.__module__}.{cls.__qualname__}() does not take; fix arg=')
        items.append((key, spec))
    return items

# The options of every registered prior that has some: ({prior name: [(param name, option spec)]}, {prior name: error
# line} for the priors whose cli module cannot be loaded), in name order.
def _prior_option_specs():
    specs, broken, owner = dict(), dict(), dict()
    for name in registry.list_priors():
        try:
            items = _option_specs(name)
        except PriorCliError as err:
            broken[name] = err.message
            continue
        for key, _spec in items:
            if key in owner:
                raise ValueError(f'Priors "{owner[key]}" and "{name}" both declare the option {flag(key)}; rename one of them')
            owner[key] = name
        if items:
            specs[name] = items
    return specs, broken

#----------------------------------------------------------------------------
# A click option owned by one prior (`prior` = its registered name).

class PriorOption(click.Option):
    def __init__(self, param_decls=None, prior=None, **attrs):
        super().__init__(param_decls, **attrs)
        self.prior = prior

# A click command whose --help lists each prior's options in a section of their own, after the others; a prior
# whose cli module cannot be loaded gets a section with the one line that says why.
class PriorCommand(click.Command):
    def format_options(self, ctx, formatter):
        sections = {None: []}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None:
                sections.setdefault(getattr(param, 'prior', None), []).append(record)
        with formatter.section('Options'):
            formatter.write_dl(sections.pop(None))
        for name, records in sections.items():
            with formatter.section(f'Options of --prior={name} ({_cli_title(name)})'):
                formatter.write_dl(records)
        for name, message in _prior_option_specs()[1].items():
            with formatter.section(f'Options of --prior={name}'):
                formatter.write_text(message)

def _cli_title(name):
    return getattr(registry.get_prior_cli(name), 'TITLE', name)

#----------------------------------------------------------------------------
# --prior: comma-separated registered names; 'none' or empty = no prior.

class PriorList(click.ParamType):
    name = 'LIST'

    def convert(self, value, param, ctx):
        names = value if isinstance(value, list) else [n.strip() for n in str(value or '').split(',') if n.strip()]
        for name in names:
            if name not in registry.list_priors():
                self.fail(f'unknown prior "{name}"; registered priors: {", ".join(registry.list_priors())}{registry.plugin_errors()}',
                          param, ctx)
        return names

#----------------------------------------------------------------------------
# The decorator that adds --prior and every prior's options to a click command.

def prior_options(fn):
    options = [
        click.option('--prior',         type=PriorList(), default='none', show_default=True,
                     help=f'Priors to train with, comma-separated: {", ".join(registry.list_priors())}; none = baseline. '
                          f'The options of each prior follow in a section of their own'),
    ]
    for name, specs in _prior_option_specs()[0].items():
        cls = registry.get_prior_class(name)
        options += [click.option(*spec.param_decls, cls=PriorOption, prior=name, **dict(spec.attrs, help=help_text(spec, cls)))
                    for _key, spec in specs]
    for decorator in reversed(options):
        fn = decorator(fn)
    return fn

#----------------------------------------------------------------------------
# Validate the prior options and write the loss (and sampler, G, D, sample
# transform) config into `c`, the training_loop() kwargs. opts: the command's
# options (a dict), including train.py's --data / --cfg (for the demo
# defaults). Raises click.ClickException with the option at fault. Returns c.

def configure(c, opts):
    opts = dnnlib.EasyDict(opts)
    names = list(opts.get('prior') or [])
    if isinstance(opts.get('prior'), str):
        names = PriorList().convert(opts.prior, None, None)
    listed = ",".join(names) or "none"

    # Options of priors that are not selected; a selected prior whose cli module cannot be loaded.
    specs, broken = _prior_option_specs()
    for owner, items in specs.items():
        given = [key for key, _spec in items if opts.get(key) is not None]
        if given and owner not in names:
            fix = f'add --prior={owner}' if names in ([], ['none']) else f'add {owner} to --prior'
            raise click.ClickException(f'{flag(given[0])} only applies to --prior={owner}, but --prior={listed}; '
                                       f'{fix} or drop {flag(given[0])}')
    for name in names:
        if name in broken:
            raise PriorCliError(broken[name])

    # The baseline: nothing to configure.
    if names in ([], ['none']):
        return c
    if 'none' in names:
        raise click.ClickException(f'--prior={listed}: "none" (the baseline) cannot be combined with other priors; drop it')
    for name in names:
        if names.count(name) > 1:
            raise click.ClickException(f'--prior={listed}: "{name}" is listed {names.count(name)} times; list each prior once')

    # Build each prior (hyperparameters only) to check options and composition.
    entries, instances = [], []
    for name in names:
        module = registry.get_prior_cli(name)
        if module is not None and hasattr(module, 'prior_kwargs'):
            kwargs = dnnlib.EasyDict(module.prior_kwargs(opts, c))
        else:
            kwargs = arg_kwargs(name, resolve(name, opts, c))
        try:
            instances.append(registry.build_prior(name, **kwargs))
        except ValueError as err:
            raise click.ClickException(f'--prior={name}: {err}') from err
        entries.append(dnnlib.EasyDict(name=name, **kwargs))
    try:
        driver = base.check_composition(instances, gan_loss=(c.get('loss_kwargs') or {}).get('gan_loss'))
        updates = {what: base.merge_updates([(p.name, getattr(p, what + '_update')()) for p in instances], what)
                   for what in ('G_kwargs', 'D_kwargs', 'loss_kwargs')}
        transforms = base.bind_realness([t for t in (p.sample_transform_kwargs() for p in instances) if t is not None], instances)
    except (ValueError, TypeError) as err:
        raise click.ClickException(f'--prior={listed}: {err}') from err
    for key in updates['loss_kwargs']:
        if key.split('.')[0] in ('class_name', 'prior_kwargs'):
            raise click.ClickException(f'--prior={listed}: loss_kwargs_update() may not change loss_kwargs.{key}; '
                                       f'the priors run inside priors.loss.PriorLoss')

    # Write the loss, sampler, G, D and sample transform configs.
    c.loss_kwargs = dnnlib.EasyDict(c.get('loss_kwargs', {}))
    c.loss_kwargs.class_name = 'priors.loss.PriorLoss'
    c.loss_kwargs.prior_kwargs = entries
    if driver is not None:
        c.sampler_kwargs = dnnlib.EasyDict(instances[driver].sampler_kwargs())
    for what, merged in updates.items():
        if merged:
            try:
                c[what] = base.apply_updates(dnnlib.EasyDict(c[what]), merged)
            except ValueError as err:
                raise click.ClickException(f'--prior={listed}: {what}: {err}') from err
    if transforms:
        c.sample_transform_kwargs = transforms
    for what in ('loss_kwargs', 'sampler_kwargs', 'G_kwargs', 'D_kwargs'):
        if what in c:
            _check_class_name(c[what], what)
    for i, kwargs in enumerate(c.get('sample_transform_kwargs', [])):
        _check_class_name(kwargs, f'sample_transform_kwargs[{i}]')
    return c

def _check_class_name(kwargs, what):
    try:
        dnnlib.util.get_obj_by_name(kwargs['class_name'])
    except (ImportError, AttributeError, ValueError, KeyError) as err:
        raise click.ClickException(f'{what}.class_name="{kwargs.get("class_name")}" cannot be found ({err})') from err

#----------------------------------------------------------------------------
