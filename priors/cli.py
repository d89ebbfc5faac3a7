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
package. That module defines:

    TITLE                   the heading of its section in train.py --help (paper and what it adds)
    OPTIONS                 a list of priors.cli.option('--flag', ...), each taking click.option()'s arguments
    prior_kwargs(opts, c)   -> dict: the prior's constructor kwargs from the parsed options (a dict with every
                            option of train.py) and the config so far (dataset final); raises
                            click.ClickException naming the flag at fault

An option defaults to None ("not given"), so that configure() can tell which options were given;
the module applies its own defaults and says them in the help text.
"""

import click

import dnnlib
from dnnlib import cli as dnnlib_cli
from priors import base
from priors import registry

#----------------------------------------------------------------------------
# Helpers for the priors' cli modules.

# One command-line option of a prior, declared like click.option(*param_decls, **attrs). Float options
# refuse NaN and infinity (issue 15): type=float and click.FloatRange become dnnlib.cli.FiniteFloat.
def option(*param_decls, **attrs):
    kind = attrs.get('type')
    if kind is float:
        attrs = dict(attrs, type=dnnlib_cli.FiniteFloat())
    elif isinstance(kind, click.FloatRange) and not isinstance(kind, dnnlib_cli.FiniteFloat):
        attrs = dict(attrs, type=dnnlib_cli.FiniteFloat(min=kind.min, max=kind.max, min_open=kind.min_open,
                                                        max_open=kind.max_open, clamp=kind.clamp))
    return dnnlib.EasyDict(param_decls=param_decls, attrs=attrs)

# '--flag-name' of an option's parameter name.
def flag(key):
    return '--' + key.replace('_', '-')

# True for the tiny demo config (train.py without --data, or with --cfg=demo).
def is_demo(opts):
    return opts.get('cfg') == 'demo' or (opts.get('cfg') is None and opts.get('data') is None)

#----------------------------------------------------------------------------
# A click option owned by one prior (`prior` = its registered name).

class PriorOption(click.Option):
    def __init__(self, param_decls=None, prior=None, **attrs):
        super().__init__(param_decls, **attrs)
        self.prior = prior

# A click command whose --help lists each prior's options in a section of their own, after the others.
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

def _cli_title(name):
    return getattr(registry.get_prior_cli(name), 'TITLE', name)

# The options of every registered prior that has some: {prior name: [(param name, option spec)]}, in name order.
def _prior_option_specs():
    specs, owner = dict(), dict()
    for name in registry.list_priors():
        module = registry.get_prior_cli(name)
        if module is None:
            continue
        specs[name] = []
        for spec in module.OPTIONS:
            key = PriorOption(list(spec.param_decls), prior=name, **spec.attrs).name
            if key in owner:
                raise ValueError(f'Priors "{owner[key]}" and "{name}" both declare the option {flag(key)}; rename one of them')
            owner[key] = name
            specs[name].append((key, spec))
    return specs

#----------------------------------------------------------------------------
# --prior: comma-separated registered names; 'none' or empty = no prior.

class PriorList(click.ParamType):
    name = 'LIST'

    def convert(self, value, param, ctx):
        names = value if isinstance(value, list) else [n.strip() for n in str(value or '').split(',') if n.strip()]
        for name in names:
            if name not in registry.list_priors():
                self.fail(f'unknown prior "{name}"; registered priors: {", ".join(registry.list_priors())}', param, ctx)
        return names

#----------------------------------------------------------------------------
# The decorator that adds --prior and every prior's options to a click command.

def prior_options(fn):
    options = [
        click.option('--prior',         type=PriorList(), default='none', show_default=True,
                     help=f'Priors to train with, comma-separated: {", ".join(registry.list_priors())}; none = baseline. '
                          f'The options of each prior follow in a section of their own'),
    ]
    for name, specs in _prior_option_specs().items():
        options += [click.option(*spec.param_decls, cls=PriorOption, prior=name, **spec.attrs) for _key, spec in specs]
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

    # Options of priors that are not selected.
    for owner, specs in _prior_option_specs().items():
        given = [key for key, _spec in specs if opts.get(key) is not None]
        if given and owner not in names:
            fix = f'add --prior={owner}' if names in ([], ['none']) else f'add {owner} to --prior'
            raise click.ClickException(f'{flag(given[0])} only applies to --prior={owner}, but --prior={listed}; '
                                       f'{fix} or drop {flag(given[0])}')

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
        kwargs = dnnlib.EasyDict(module.prior_kwargs(opts, c)) if module is not None else dnnlib.EasyDict()
        try:
            instances.append(registry.build_prior(name, **kwargs))
        except ValueError as err:
            raise click.ClickException(f'--prior={name}: {err}') from err
        entries.append(dnnlib.EasyDict(name=name, **kwargs))
    try:
        driver = base.check_composition(instances)
        updates = {what: base.merge_updates([(p.name, getattr(p, what + '_update')()) for p in instances], what)
                   for what in ('G_kwargs', 'D_kwargs', 'loss_kwargs')}
        transforms = [dnnlib.EasyDict(t) for t in (p.sample_transform_kwargs() for p in instances) if t is not None]
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
