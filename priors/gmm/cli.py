"""Command-line options of `--prior=gmm` (PriorGAN, Gu et al. 2020, §4 for the defaults) and their translation into `GMMPrior` kwargs.

`priors.cli` adds OPTIONS to train.py under this prior's heading in `--help` and refuses them unless
`--prior` lists gmm; `configure()` calls `prior_kwargs(opts, c)` when it does.
"""

import os

import click

import dnnlib
from priors import cli
from priors import features
from priors.gmm import prior as gmm_prior
from priors.gmm import prior_file

#----------------------------------------------------------------------------

TITLE = 'PriorGAN, Gu et al. 2020: quality loss Eq. 5, resampling Eq. 6-8'

# Defaults: GMMPrior's own; those of the demo config (train.py without --data, or --cfg=demo) and of the toy lab
# (--cfg=toy: the GMM on the 2-D points themselves, no PCA; docs/toy-lab.md) are declared with the option.

OPTIONS = [
    cli.option('--prior-preset',  type=click.Choice(sorted(gmm_prior.PRESETS)),
               help='gmm: the paper\'s setting for a dataset (§4): M = 35/70/7/7 components and alpha = 3/7/7/7 for '
                    'cifar10/ffhq/lsun-cat/lsun-bird; --prior-components and --resample-alpha override it'),
    cli.option('--prior-file', arg='prior_file', default_text='build it once in the dnnlib cache', metavar='FILE',
               help='gmm: prior file from build_prior.py'),
    cli.option('--prior-feature', arg='feature', demo='tiny', toy='identity', default_text="the prior file's; else {}", metavar='NAME',
               help=f'gmm: feature extractor F of Eq. 3: {", ".join(features.list_extractors())}, or a path/URL '
                    f'(a pickled module runs code from the file: only files you trust) (paper: resnet101)'),
    cli.option('--prior-components', arg='components', default_text="{}, or the preset's", type=click.IntRange(min=1), metavar='INT',
               help='gmm: Gaussian components M of Eq. 3 when building the prior (paper: 35/70/7/7, see --prior-preset)'),
    cli.option('--prior-covariance', arg='covariance', type=click.Choice(['full', 'diag']),
               help='gmm: GMM covariances when building the prior; diag has 2d instead of d(d+3)/2 parameters per '
                    'component, for few images'),
    cli.option('--prior-holdout', arg='holdout', type=click.FloatRange(min=0, max=1, max_open=True), metavar='FLOAT',
               help='gmm: fraction of reals held out of the fit when building the prior; theta and QS rank against '
                    'them (0 = against the fitted reals, v1)'),
    cli.option('--prior-pca', arg='pca', toy='none', metavar='VALUE',
               help='gmm: PCA before the GMM: variance fraction in (0,1], number of components, or "none" '
                    '(paper: 0.98)'),
    cli.option('--prior-weight', arg='weight', type=click.FloatRange(min=0), metavar='FLOAT',
               help='gmm: quality loss weight w of Eq. 5. With --prior-loss-form=per-dim it multiplies -log p / d, so it equals the '
                    'paper\'s delta = w / d; the paper\'s delta = 0.1 is --prior-loss-form=paper --prior-weight=0.1'),
    cli.option('--prior-loss-form', arg='loss_form', to_arg={'per-dim': 'per_dim'}, type=click.Choice(['per-dim', 'paper']),
               help='gmm: what the weight multiplies: -log p / d (per-dim, the same strength for every extractor and PCA '
                    'setting) or -log p (paper, Eq. 5 as written)'),
    cli.option('--prior-theta', arg='theta', default_text='from --prior-theta-quantile', type=float, metavar='FLOAT',
               help='gmm: threshold theta of Eq. 5 as a log-likelihood log(theta)'),
    cli.option('--prior-theta-quantile', arg='theta_quantile', type=click.FloatRange(min=0, max=1), metavar='FLOAT',
               help='gmm: theta of Eq. 5 = this quantile of the reference (held-out) reals\' log p'),
    cli.option('--prior-lazy', arg='lazy', type=click.IntRange(min=1), metavar='INT',
               help='gmm: apply the Eq. 5 loss every INT iterations, with weight x INT'),
    cli.option('--resample', arg='resample', default_text='{} with --prior=gmm', type=bool, metavar='BOOL',
               help='gmm: resample the real images by component, Eq. 8'),
    cli.option('--resample-alpha', arg='resample_alpha', default_text="{}, or the preset's", type=click.FloatRange(min=0), metavar='FLOAT',
               help='gmm: resample weight alpha of Eq. 8, f\' = max(f_r + alpha (f_r - f_g), 0) (paper: 3/7/7/7, see '
                    '--prior-preset)'),
    cli.option('--resample-kimg', arg='resample_kimg', demo=0.5, type=click.FloatRange(min=0, min_open=True), metavar='KIMG',
               help='gmm: re-estimate the generated frequencies f_g of Eq. 6 every KIMG'),
    cli.option('--resample-num', arg='resample_num', demo=256, type=click.IntRange(min=1), metavar='INT',
               help='gmm: generated images per estimate of f_g, raised to --resample-min-per-component x M'),
    cli.option('--resample-min-per-component', arg='resample_min_per_component', type=click.IntRange(min=0), metavar='INT',
               help='gmm: at least INT x M generated images per estimate of f_g (0 = exactly --resample-num, v1)'),
    cli.option('--resample-ema', arg='resample_ema', type=click.FloatRange(min=0, max=1, max_open=True), metavar='FLOAT',
               help='gmm: EMA factor of f_g across estimates, started at f_r; damps the sampling noise that Eq. 8 '
                    'amplifies by alpha (0 = none, v1)'),
    cli.option('--resample-net', arg='resample_net', type=click.Choice(list(gmm_prior.RESAMPLE_NETS)),
               help='gmm: generator whose images give f_g: G_ema (the one DDS evaluates) or the training G (v1)'),
    cli.option('--resample-noise', arg='resample_noise', type=click.Choice(list(gmm_prior.RESAMPLE_NOISES)),
               help='gmm: noise inputs of those images: seeded random (as in training and the metrics) or const (v1)'),
    cli.option('--resample-pixels', arg='resample_pixels', type=click.Choice(list(gmm_prior.RESAMPLE_PIXELS)),
               help='gmm: quantise those images to uint8 like the real images before the extractor (float data such as toy '
                    'points stays float), or feed float (v1)'),
    cli.option('--resample-rule', arg='resample_rule', type=click.Choice(list(gmm_prior.RESAMPLE_RULES)),
               help='gmm: component of an image: nearest centre (paper, §3.3) or argmax responsibility'),
    cli.option('--resample-labels', arg='resample_labels', type=bool, metavar='BOOL',
               help='gmm: group the reals by known labels (toy modes, dataset class labels) instead of GMM components; generated '
                    'images go to the nearest label centre in the GMM\'s feature space (issue 18; off = the paper)'),
    cli.option('--resample-max-ratio', arg='resample_max_ratio', type=click.FloatRange(min=0), metavar='FLOAT',
               help='gmm: damped feedback: clip f\' of Eq. 8 to [f_r / c, c f_r] before normalising, so no group is starved or '
                    'boosted beyond c times its share (0 = off, the paper)'),
    cli.option('--prior-quality-scale', arg='quality_scale', type=click.Choice(list(gmm_prior.QUALITY_SCALES)),
               help='gmm: none = Eq. 5 as written; spread = each sample\'s term times trace(Sigma_k) / d of its nearest component '
                    '(detached), so its pull -grad ~ (x - mu) is in data units whatever the width (off = the paper)'),
    cli.option('--prior-quality-start-kimg', arg='quality_start_kimg', type=click.FloatRange(min=0), metavar='KIMG',
               help='gmm: late start: apply the Eq. 5 loss only from KIMG on, so G first learns the data with the adversarial '
                    'loss alone (0 = from the start, the paper)'),
    cli.option('--resample-hq-only', arg='resample_hq_only', type=bool, metavar='BOOL',
               help='gmm: f_g of Eq. 6 counts only the generated images with log p >= theta of Eq. 5 (inside some component), '
                    'so low-quality images between modes fill no group (off = the paper)'),
]

#----------------------------------------------------------------------------
# The options (a dict with every option of train.py) -> GMMPrior kwargs. c: the
# training config so far (dataset final). Raises click.ClickException naming the flag.

def prior_kwargs(opts, c):
    opts = dnnlib.EasyDict(opts)
    values = cli.resolve('gmm', opts, c)
    flag = cli.flag
    preset = opts.get('prior_preset')
    if preset is not None:  # the paper's M and alpha for the dataset, unless given
        for key, field in (('prior_components', 'components'), ('resample_alpha', 'resample_alpha')):
            if opts.get(key) is None:
                values[key] = getattr(gmm_prior.PRESETS[preset], field)
    if opts.get('prior_theta') is not None and opts.get('prior_theta_quantile') is not None:
        raise click.ClickException(f'--prior-theta={opts.prior_theta:g} and --prior-theta-quantile={opts.prior_theta_quantile:g} '
                                   f'both set the threshold of Eq. 5; give only one')
    kwargs = cli.arg_kwargs('gmm', values)
    kwargs.resample = bool(kwargs.resample)
    build_only = ('prior_components', 'prior_pca', 'prior_covariance', 'prior_holdout')

    # The prior file: given (checked now against the training data), or built in the cache at the start of training.
    if opts.get('prior_file') is not None:
        for key in build_only:
            if opts.get(key) is not None:
                raise click.ClickException(f'{flag(key)} only applies when the prior is built; the prior file {opts.prior_file} '
                                           f'fixes it. Drop {flag(key)} or --prior-file')
            del kwargs[cli.arg_of('gmm', key)]
        path = os.path.abspath(os.path.expanduser(opts.prior_file))
        try:
            loaded = prior_file.load_prior(path, expect_dataset=c.training_set_kwargs, expect_feature=opts.get('prior_feature'))
        except (OSError, ValueError) as err:
            raise click.ClickException(f'--prior-file: {err}; or drop --prior-file to build a prior for this run') from err
        if preset is not None and loaded.num_components != gmm_prior.PRESETS[preset].components:
            raise click.ClickException(f'--prior-preset={preset} means {gmm_prior.PRESETS[preset].components} components but the prior file '
                                       f'{opts.prior_file} has {loaded.num_components}; rebuild it with build_prior.py --preset={preset}, '
                                       f'or drop --prior-preset and set --resample-alpha')
        spec = dict(loaded.extractor['spec'])
        kwargs.prior_file = path
        kwargs.feature = spec.pop('name')
        kwargs.feature_kwargs = spec
    else:
        del kwargs.prior_file
        if kwargs.feature not in features.list_extractors() and not features.is_file_spec(kwargs.feature):
            raise click.ClickException(f'--prior-feature: unknown extractor "{kwargs.feature}"; valid names: {", ".join(features.list_extractors())}, '
                                       f'or the path or URL of a TorchScript or pickled module')
        try:
            features.check_extractor_file(kwargs.feature)  # safe loading, before any work
        except ValueError as err:
            raise click.ClickException(f'--prior-feature: {err}') from err
        try:
            kwargs.pca = prior_file.parse_pca(kwargs.pca)
        except ValueError as err:
            raise click.ClickException(f'--prior-pca: {err}') from err
        num_images = c.training_set_kwargs.get('max_size')
        if num_images is not None and kwargs.components > num_images:
            raise click.ClickException(f'--prior-components={kwargs.components} is more than the {num_images} training images; lower it')
        kwargs.feature_kwargs = dnnlib.EasyDict()

    # Quality loss and resampling.
    if not kwargs.resample:
        for key in ('resample_alpha', 'resample_kimg', 'resample_num', 'resample_ema', 'resample_rule', 'resample_min_per_component',
                    'resample_net', 'resample_noise', 'resample_pixels', 'resample_labels', 'resample_max_ratio'):
            if opts.get(key) is not None:
                raise click.ClickException(f'{flag(key)} has no effect with --resample=0; drop it or use --resample=1')
    if 0 < kwargs.resample_max_ratio <= 1:
        raise click.ClickException(f'--resample-max-ratio={kwargs.resample_max_ratio:g} must be 0 (off) or > 1 (f\' within [f_r / c, c f_r])')
    kwargs.resample_labels = bool(kwargs.resample_labels)
    if kwargs.weight == 0 and not kwargs.resample:
        raise click.ClickException('--prior=gmm with --prior-weight=0 and --resample=0 does nothing; enable one of them or use --prior=none')
    return kwargs

#----------------------------------------------------------------------------
