"""Command-line options of the priors for train.py (`@prior_options`) and their translation into the training config (`configure(c, opts)`); PriorGAN defaults from Gu et al. 2020, §4.

train.py uses it as:

    import priors.cli
    @priors.cli.prior_options
    def main(ctx, **opts): ...
        priors.cli.configure(c, opts)    # in the sanity checks, after the dataset options are final

`--prior=none` (the default) leaves the config untouched, so the run is the
baseline, bit for bit. Options of a prior that is not selected are refused.
"""

import os

import click

import dnnlib
from priors import base
from priors import features
from priors.gmm import prior as gmm_prior  # pylint: disable=unused-import  (registers 'gmm')
from priors.gmm import prior_file
from priors import registry

#----------------------------------------------------------------------------
# Defaults that differ for the tiny demo config (train.py without --data or with --cfg=demo).

_DEMO_DEFAULTS = dict(prior_feature='tiny', resample_kimg=0.5, resample_num=256)
_DEFAULTS = dict(prior_feature='inception', resample_kimg=4, resample_num=1000)

# Options that only --prior=gmm reads.
_GMM_OPTIONS = ('prior_file', 'prior_feature', 'prior_components', 'prior_pca', 'prior_weight', 'prior_theta', 'prior_theta_quantile',
                'prior_lazy', 'resample', 'resample_alpha', 'resample_kimg', 'resample_num', 'resample_ema', 'resample_rule')

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
# The decorator that adds every prior option to a click command.

def prior_options(fn):
    options = [
        click.option('--prior',         type=PriorList(), default='none', show_default=True,
                     help=f'Priors to train with, comma-separated: {", ".join(registry.list_priors())}. gmm = PriorGAN '
                          f'(quality loss Eq. 5 + resampling Eq. 6-8); none = baseline'),
        click.option('--prior-file',    metavar='FILE',
                     help='gmm: prior file from build_prior.py  [default: build it once in the dnnlib cache]'),
        click.option('--prior-feature', metavar='NAME',
                     help=f'gmm: feature extractor F of Eq. 3: {", ".join(features.list_extractors())}, or a path/URL '
                          f'(paper: resnet101)  [default: the prior file\'s; else inception; demo: tiny]'),
        click.option('--prior-components', type=click.IntRange(min=1), metavar='INT',
                     help='gmm: Gaussian components M of Eq. 3 when building the prior (paper: 7)  [default: 7]'),
        click.option('--prior-pca',     metavar='VALUE',
                     help='gmm: PCA before the GMM: variance fraction in (0,1], number of components, or "none" '
                          '(paper: 0.98)  [default: 0.98]'),
        click.option('--prior-weight',  type=click.FloatRange(min=0), metavar='FLOAT',
                     help='gmm: quality loss weight delta of Eq. 5, on -log p / d (paper: 0.1)  [default: 0.1]'),
        click.option('--prior-theta',   type=float, metavar='FLOAT',
                     help='gmm: threshold theta of Eq. 5 as a log-likelihood log(theta)  [default: from --prior-theta-quantile]'),
        click.option('--prior-theta-quantile', type=click.FloatRange(min=0, max=1), metavar='FLOAT',
                     help='gmm: theta of Eq. 5 = this quantile of the real images\' log p  [default: 0.1]'),
        click.option('--prior-lazy',    type=click.IntRange(min=1), metavar='INT',
                     help='gmm: apply the Eq. 5 loss every INT iterations, with weight x INT  [default: 1]'),
        click.option('--resample',      type=bool, metavar='BOOL',
                     help='gmm: resample the real images by component, Eq. 8  [default: 1 with --prior=gmm]'),
        click.option('--resample-alpha', type=click.FloatRange(min=0), metavar='FLOAT',
                     help='gmm: resample weight alpha of Eq. 8, f\' = max(f_r + alpha (f_r - f_g), 0) (paper: 7)  [default: 7]'),
        click.option('--resample-kimg', type=click.FloatRange(min=0, min_open=True), metavar='KIMG',
                     help='gmm: re-estimate the generated frequencies f_g of Eq. 6 every KIMG  [default: 4; demo: 0.5]'),
        click.option('--resample-num',  type=click.IntRange(min=1), metavar='INT',
                     help='gmm: generated images per estimate of f_g  [default: 1000; demo: 256]'),
        click.option('--resample-ema',  type=click.FloatRange(min=0, max=1, max_open=True), metavar='FLOAT',
                     help='gmm: EMA factor of f_g across estimates (0 = no smoothing)  [default: 0]'),
        click.option('--resample-rule', type=click.Choice(list(gmm_prior.RESAMPLE_RULES)),
                     help='gmm: component of an image: nearest centre (paper, §3.3) or argmax responsibility  [default: nearest]'),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn

#----------------------------------------------------------------------------
# Validate the prior options and write the loss (and sampler, G, D) config
# into `c`, the training_loop() kwargs. opts: the command's options (a dict),
# including train.py's --data / --cfg (for the demo defaults). Raises
# click.ClickException with the option at fault. Returns c.

def configure(c, opts):
    opts = dnnlib.EasyDict(opts)
    names = list(opts.get('prior') or [])
    if isinstance(opts.get('prior'), str):
        names = PriorList().convert(opts.prior, None, None)
    given = [key for key in _GMM_OPTIONS if opts.get(key) is not None]

    # The baseline: nothing to configure.
    if names in ([], ['none']):
        if given:
            raise click.ClickException(f'{_flag(given[0])} only applies to --prior=gmm, but --prior={",".join(names) or "none"}; '
                                       f'add --prior=gmm or drop {_flag(given[0])}')
        return c
    if 'none' in names:
        raise click.ClickException(f'--prior={",".join(names)}: "none" (the baseline) cannot be combined with other priors; drop it')
    for name in names:
        if names.count(name) > 1:
            raise click.ClickException(f'--prior={",".join(names)}: "{name}" is listed {names.count(name)} times; list each prior once')
    if given and 'gmm' not in names:
        raise click.ClickException(f'{_flag(given[0])} only applies to --prior=gmm, but --prior={",".join(names)}; '
                                   f'add gmm to --prior or drop {_flag(given[0])}')

    # Build each prior (hyperparameters only) to check options and composition.
    entries, instances = [], []
    for name in names:
        kwargs = _OPTION_READERS[name](opts, c) if name in _OPTION_READERS else dict()
        try:
            instances.append(registry.build_prior(name, **kwargs))
        except ValueError as err:
            raise click.ClickException(f'--prior={name}: {err}') from err
        entries.append(dnnlib.EasyDict(name=name, **kwargs))
    try:
        driver = base.check_composition(instances)
        G_update = base.merge_updates([(p.name, p.G_kwargs_update()) for p in instances], 'G_kwargs')
        D_update = base.merge_updates([(p.name, p.D_kwargs_update()) for p in instances], 'D_kwargs')
    except ValueError as err:
        raise click.ClickException(f'--prior={",".join(names)}: {err}') from err

    # Write the loss, sampler, G and D configs.
    c.loss_kwargs = dnnlib.EasyDict(c.get('loss_kwargs', {}))
    c.loss_kwargs.class_name = 'priors.loss.PriorLoss'
    c.loss_kwargs.prior_kwargs = entries
    c.loss_kwargs.dataset_kwargs = dnnlib.EasyDict(c.training_set_kwargs)
    c.loss_kwargs.random_seed = int(c.get('random_seed', 0))
    if driver is not None:
        c.sampler_kwargs = dnnlib.EasyDict(instances[driver].sampler_kwargs())
    if G_update:
        c.G_kwargs = dnnlib.EasyDict(c.G_kwargs, **G_update)
    if D_update:
        c.D_kwargs = dnnlib.EasyDict(c.D_kwargs, **D_update)
    for what in ('loss_kwargs', 'sampler_kwargs', 'G_kwargs', 'D_kwargs'):
        if what in c:
            _check_class_name(c[what], what)
    return c

def _flag(key):
    return '--' + key.replace('_', '-')

def _check_class_name(kwargs, what):
    try:
        dnnlib.util.get_obj_by_name(kwargs['class_name'])
    except (ImportError, AttributeError, ValueError) as err:
        raise click.ClickException(f'{what}.class_name="{kwargs["class_name"]}" cannot be found ({err})') from err

#----------------------------------------------------------------------------
# --prior=gmm: options -> GMMPrior kwargs.

def _is_demo(opts):
    return opts.get('cfg') == 'demo' or (opts.get('cfg') is None and opts.get('data') is None)

def _gmm_kwargs(opts, c):
    defaults = _DEMO_DEFAULTS if _is_demo(opts) else _DEFAULTS
    pick = lambda key, default: opts.get(key) if opts.get(key) is not None else default
    if opts.get('prior_theta') is not None and opts.get('prior_theta_quantile') is not None:
        raise click.ClickException(f'--prior-theta={opts.prior_theta:g} and --prior-theta-quantile={opts.prior_theta_quantile:g} '
                                   f'both set the threshold of Eq. 5; give only one')
    kwargs = dnnlib.EasyDict()

    # The prior file: given (checked now against the training data), or built in the cache at the start of training.
    if opts.get('prior_file') is not None:
        for key in ('prior_components', 'prior_pca'):
            if opts.get(key) is not None:
                raise click.ClickException(f'{_flag(key)} only applies when the prior is built; the prior file {opts.prior_file} '
                                           f'fixes it. Drop {_flag(key)} or --prior-file')
        path = os.path.abspath(os.path.expanduser(opts.prior_file))
        try:
            loaded = prior_file.load_prior(path, expect_dataset=c.training_set_kwargs, expect_feature=opts.get('prior_feature'))
        except (OSError, ValueError) as err:
            raise click.ClickException(f'--prior-file: {err}') from err
        spec = dict(loaded.extractor['spec'])
        kwargs.prior_file = path
        kwargs.feature = spec.pop('name')
        kwargs.feature_kwargs = spec
    else:
        feature = pick('prior_feature', defaults['prior_feature'])
        if feature not in features.list_extractors() and not features.is_file_spec(feature):
            raise click.ClickException(f'--prior-feature: unknown extractor "{feature}"; valid names: {", ".join(features.list_extractors())}, '
                                       f'or the path or URL of a TorchScript or pickled module')
        try:
            pca = prior_file.parse_pca(pick('prior_pca', '0.98'))
        except ValueError as err:
            raise click.ClickException(f'--prior-pca: {err}') from err
        components = pick('prior_components', 7)
        num_images = c.training_set_kwargs.get('max_size')
        if num_images is not None and components > num_images:
            raise click.ClickException(f'--prior-components={components} is more than the {num_images} training images; lower it')
        kwargs.update(feature=feature, feature_kwargs=dnnlib.EasyDict(), components=components, pca=pca)

    # Quality loss and resampling.
    kwargs.weight = pick('prior_weight', 0.1)
    kwargs.theta = opts.get('prior_theta')
    kwargs.theta_quantile = pick('prior_theta_quantile', 0.1)
    kwargs.lazy = pick('prior_lazy', 1)
    kwargs.resample = bool(pick('resample', True))
    if not kwargs.resample:
        for key in ('resample_alpha', 'resample_kimg', 'resample_num', 'resample_ema', 'resample_rule'):
            if opts.get(key) is not None:
                raise click.ClickException(f'{_flag(key)} has no effect with --resample=0; drop it or use --resample=1')
    kwargs.resample_alpha = pick('resample_alpha', 7)
    kwargs.resample_kimg = pick('resample_kimg', defaults['resample_kimg'])
    kwargs.resample_num = pick('resample_num', defaults['resample_num'])
    kwargs.resample_ema = pick('resample_ema', 0)
    kwargs.resample_rule = pick('resample_rule', 'nearest')
    if kwargs.weight == 0 and not kwargs.resample:
        raise click.ClickException('--prior=gmm with --prior-weight=0 and --resample=0 does nothing; enable one of them or use --prior=none')
    return kwargs

# Option readers of the priors that have command-line options.
_OPTION_READERS = dict(gmm=_gmm_kwargs)

#----------------------------------------------------------------------------
