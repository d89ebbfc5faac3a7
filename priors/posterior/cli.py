"""Command-line options of `--prior=posterior` (`--post-*`; P2GAN, Zhang et al. 2021, §5.2 for the defaults) and their translation into `PosteriorPrior` kwargs.

`priors.cli` adds OPTIONS to train.py under this prior's heading in `--help` and refuses them unless
`--prior` lists posterior; `configure()` calls `prior_kwargs(opts, c)` when it does. docs/posterior.md
explains each choice.
"""

import click

import dnnlib
from priors import cli
from priors.posterior import modules as posterior_modules
from priors.posterior import prior as posterior_prior

#----------------------------------------------------------------------------

TITLE = 'P2GAN, Zhang et al. 2021: posterior D(x) = N(mu, sigma^2), losses Eq. 8-9, modules + AdaIN Eq. 10-11, L_z Eq. 12'

PRESETS = posterior_prior.PRESETS  # the two settings of §5.2 (--post-preset)

def _preset_text(name):
    p = PRESETS[name]
    return (f'd={p["code_dim"]}, P_a=N({p["p_a"][0]:g},{p["p_a"][1]:g}^2), P_b=N({p["p_b"][0]:g},{p["p_b"][1]:g}^2), '
            f'{p["epochs"]} epochs')

#----------------------------------------------------------------------------
# 'MU,SIGMA' -> (mu, sigma).

class GaussianParam(click.ParamType):
    name = 'MU,SIGMA'

    def convert(self, value, param, ctx):
        if isinstance(value, (tuple, list)):
            return tuple(float(v) for v in value)
        parts = str(value).split(',')
        try:
            mu, sigma = (float(p) for p in parts)
        except ValueError:
            self.fail(f'expected MU,SIGMA (two numbers, e.g. -5,1), got {value!r}', param, ctx)
        if not (abs(mu) < float('inf') and 0 <= sigma < float('inf')):
            self.fail(f'expected a finite mean and a finite standard deviation >= 0, got {value!r}', param, ctx)
        return (mu, sigma)

#----------------------------------------------------------------------------

OPTIONS = [
    cli.option('--post-preset', default='celeba', type=click.Choice(list(PRESETS)),
               help=f'posterior: the settings of §5.2 for d, P_a, P_b and the pretraining length: celeba ({_preset_text("celeba")}; '
                    f'also the StyleGAN experiment, Table 4) or cifar ({_preset_text("cifar")})'),
    cli.option('--post-dim', arg='code_dim', default_text="the preset's", type=click.IntRange(min=1), metavar='INT',
               help='posterior: size d of the posterior code; D outputs mu and sigma of size d each (§4.2)'),
    cli.option('--post-pa', arg='p_a', default_text="the preset's", type=GaussianParam(),
               help='posterior: "fake" prior P_a = N(MU, SIGMA^2 I) that Eq. 8 pulls D(fakes) to'),
    cli.option('--post-pb', arg='p_b', default_text="the preset's", type=GaussianParam(),
               help='posterior: "real" prior P_b = N(MU, SIGMA^2 I) that Eq. 8 pulls D(reals) to; G pulls D(fakes) to '
                    'P_c = N((mu_a+mu_b)/2, ((sigma_a+sigma_b)/2)^2 I) (Eq. 9)'),
    cli.option('--post-lambda', arg='lambda_z', type=click.FloatRange(min=0), metavar='FLOAT',
               help='posterior: weight lambda of the latent code regulariser L_z in L_G = L_adv + lambda L_z (Eq. 12-13; '
                    '0 = no L_z, Table 5 "w/o L")'),
    cli.option('--post-pretrain-kimg', default_text="the preset's epochs x the dataset size", type=click.FloatRange(min=0), metavar='KIMG',
               help='posterior: pretraining stage without the posterior modules, with L_z (§4.5), in thousands of images; '
                    '0 = none (Table 5 "w/o P")'),
    cli.option('--post-modules', arg='modules', type=bool, metavar='BOOL',
               help='posterior: posterior modules P_i (Eq. 10) and AdaIN (Eq. 11) after every synthesis conv; 0 = G unchanged '
                    '(Table 5 "w/o M")'),
    cli.option('--post-code', arg='code', type=click.Choice(list(posterior_prior.CODES)),
               help='posterior: input of the posterior modules: posterior = z = eps*sigma(x_r) + mu(x_r) from D on the reals; '
                    'noise = N(0, I) (Table 5 "w/o Z")'),
    cli.option('--post-norm', arg='norm', type=click.Choice(list(posterior_modules.NORMS)),
               help='posterior: normalisation of G\'s features in AdaIN: bn = batch statistics (Eq. 11), in = instance '
                    'statistics (Eq. 2; Table 7)'),
    cli.option('--post-dis', arg='discrepancy', type=click.Choice(list(posterior_prior.DISCREPANCIES)),
               help='posterior: discrepancy of Eq. 4-7 in the losses: sampled = 1/2 sum_k (eps(sigma1-sigma2) + mu1-mu2)^2 with one '
                    'eps per pair (§4.5); closed = 1/2 sum_k ((sigma1-sigma2)^2 + (mu1-mu2)^2) (Eq. 7)'),
    cli.option('--post-sigma', arg='sigma_act', type=click.Choice(list(posterior_prior.SIGMA_ACTIVATIONS)),
               help='posterior: activation of D\'s sigma head: raw = none, as the paper\'s linear heads (§4.2); softplus'),
    cli.option('--post-test', arg='test_factors', type=click.Choice(list(posterior_prior.TEST_FACTORS)),
               help='posterior: code factors at sampling time (generate.py, metrics, grids): theory = D* of Eq. 19, '
                    'N((mu_a+mu_b)/2, ((sigma_a+sigma_b)/2)^2); ema = EMA of the batch-mean real factors (§4.5, Table 7)'),
    cli.option('--post-test-ema', arg='test_ema', type=click.FloatRange(min=0, max=1, max_open=True), metavar='FLOAT',
               help='posterior: smooth factor of --post-test=ema, per iteration (§4.5: 0.9)'),
    cli.option('--post-test-sample', arg='test_sample', type=click.Choice(list(posterior_modules.TEST_SAMPLES)),
               help='posterior: sampling-time code: random = eps*sigma_s + mu_s with torch\'s global generator; mean = mu_s '
                    '(deterministic images per seed)'),
]

_MODULE_OPTIONS = ('post_code', 'post_norm', 'post_test', 'post_test_ema', 'post_test_sample', 'post_pretrain_kimg')

#----------------------------------------------------------------------------
# Validate the --post-* options and return PosteriorPrior's kwargs. opts: the
# command's options (dict-like); c: the training config so far (dataset final).
# Raises click.ClickException naming the flag at fault.

def prior_kwargs(opts, c):
    opts = dnnlib.EasyDict(opts)
    values = cli.resolve('posterior', opts, c)
    preset = PRESETS[values.post_preset]
    for key, arg in (('post_dim', 'code_dim'), ('post_pa', 'p_a'), ('post_pb', 'p_b')):
        if opts.get(key) is None:
            values[key] = preset[arg]
    flag = cli.flag

    # Options that need the posterior modules.
    modules = bool(values.post_modules)
    if not modules:
        given = [key for key in _MODULE_OPTIONS if opts.get(key) is not None]
        if given:
            raise click.ClickException(f'{flag(given[0])} has no effect with --post-modules=0 (no posterior modules in G); '
                                       f'drop it or use --post-modules=1')
    test_factors = values.post_test
    if opts.get('post_test_ema') is not None and test_factors != 'ema':
        raise click.ClickException(f'--post-test-ema only applies to --post-test=ema, but --post-test={test_factors}; drop it')
    if values.post_code == 'noise' and test_factors == 'ema':
        raise click.ClickException('--post-test=ema averages the posterior codes, but --post-code=noise feeds N(0, I) to the modules; '
                                   'use --post-test=theory')
    if (c.get('training_set_kwargs') or {}).get('use_labels'):
        raise click.ClickException('--prior=posterior is unconditional (the paper defines no conditional version); use --cond=0')

    # The pretraining length: the preset's epochs of this dataset.
    pretrain_kimg = opts.get('post_pretrain_kimg')
    if pretrain_kimg is None:
        num_images = (c.get('training_set_kwargs') or {}).get('max_size')
        if not modules:
            pretrain_kimg = 0.0
        elif num_images is None:
            raise click.ClickException('--prior=posterior: the dataset size is unknown, so the pretraining length cannot be given in '
                                       'epochs; set --post-pretrain-kimg')
        else:
            pretrain_kimg = preset['epochs'] * num_images / 1000

    pa, pb = values.post_pa, values.post_pb
    if tuple(pa) == tuple(pb):
        raise click.ClickException(f'--post-pa and --post-pb are the same distribution N({pa[0]:g}, {pa[1]:g}^2); D could not tell '
                                   f'reals from fakes. Choose different priors (paper: -5,1 and 5,3)')
    kwargs = cli.arg_kwargs('posterior', values)
    kwargs.update(p_a=list(pa), p_b=list(pb), pretrain_kimg=float(pretrain_kimg), modules=modules)
    return kwargs

#----------------------------------------------------------------------------
