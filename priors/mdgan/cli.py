"""Command-line options of `--prior=mdgan` (`--mdgan-*`; Che et al. 2017, defaults from §4.1.1, Appendix A and C) and their translation into `MDGANPrior` kwargs.

`priors.cli` adds OPTIONS to train.py under this prior's heading in `--help` and refuses them unless
`--prior` lists mdgan; `configure()` calls `prior_kwargs(opts, c)` when it does. docs/mdgan.md explains
each choice.
"""

import click

import dnnlib
from priors import cli
from priors import features
from priors.mdgan import networks as mdgan_networks
from priors.mdgan import prior as mdgan_prior
from priors.mdgan import regularizers

#----------------------------------------------------------------------------
# Defaults: MDGANPrior's own (the paper's MNIST grid, lambda1 = 0.2, lambda2 = 0.4, §4.1.1); toy= below is its 2-D
# mixture, lambda1 = lambda2 = 0.005 (Appendix C), our --cfg=toy default.

_REG_ONLY = ('mdgan_lambda1', 'mdgan_lambda2')
_MD_ONLY = ('mdgan_lambda', 'mdgan_g_steps', 'mdgan_d2_gamma', 'mdgan_d2_augment', 'mdgan_d2_lr')

#----------------------------------------------------------------------------

TITLE = 'Mode-regularised GAN and MDGAN, Che et al. 2017: regularisers Eq. 1-2, manifold and diffusion steps App. A'

OPTIONS = [
    cli.option('--mdgan-mode', arg='mode', type=click.Choice(list(mdgan_prior.MODES)),
                 help='mdgan: reg = Reg-GAN, G and E minimise lambda1 d(x,G(E(x))) - lambda2 log D(G(E(x))) on the reals of each '
                      'iteration (Eq. 1-2, sign fixed); md = MDGAN, manifold step (D1: x vs G(E(x)); G, E: d(x,G(E(x))) - lambda '
                      'log D1(G(E(x)))) and diffusion step (D2: G(E(x)) vs G(z); G: -log D2(G(z))), App. A'),
    cli.option('--mdgan-lambda1', arg='lambda1', toy=0.005, type=click.FloatRange(min=0), metavar='FLOAT',
                 help='mdgan reg: weight lambda1 of the geometric regulariser d(x, G(E(x))), Eq. 1-2 '
                      '(paper: 0.2 on MNIST, 0.005 on the 2-D mixture)'),
    cli.option('--mdgan-lambda2', arg='lambda2', toy=0.005, type=click.FloatRange(min=0), metavar='FLOAT',
                 help='mdgan reg: weight lambda2 of the mode regulariser -log D(G(E(x))), Eq. 1-2 with the sign fixed '
                      '(paper: 0.4 on MNIST, 0.005 on the 2-D mixture)'),
    cli.option('--mdgan-lambda', arg='md_lambda', type=click.FloatRange(min=0), metavar='FLOAT',
                 help='mdgan md: weight lambda of -log D1(G(E(x))) in the manifold G step, App. A step 3 '
                      '(the reconstruction has weight 1; paper: silent)'),
    cli.option('--mdgan-g-steps', arg='g_steps', type=click.IntRange(min=1, max=2), metavar='INT',
                 help='mdgan md: G steps per iteration: 2 = manifold step, then diffusion step on D2 (paper); '
                      '1 = the diffusion term -log D2(G(z)) added to the manifold step'),
    cli.option('--mdgan-distance', arg='distance', metavar='NAME',
                 help='mdgan: the distance d of §3.1: pixel (squared L2 of the pixels), dfeat (of D\'s features before its '
                      'output layer), or a feature extractor name/path as for --prior-feature'),
    cli.option('--mdgan-distance-reduce', arg='distance_reduce', type=click.Choice(list(regularizers.DISTANCE_REDUCTIONS)),
                 help='mdgan: d averages (mean) or sums (sum: the paper\'s ||x - G(E(x))||^2) the squared differences'),
    cli.option('--mdgan-e-out', arg='e_out', type=click.Choice(list(mdgan_networks.E_OUTPUTS)),
                 help='mdgan: E\'s output: linear = G\'s N(0, I) input z; support = squashed into the support of G\'s latent '
                      '(sigmoid for --z-dist=uniform01, tanh for uniform; spec §3.6.14), which keeps E out of the normal CDF\'s '
                      'flat tails (a fix, not in the paper)'),
    cli.option('--mdgan-e-lr', default_text="G's --glr", type=click.FloatRange(min=0, min_open=True), metavar='FLOAT',
                 help='mdgan: learning rate of the encoder E (its optimizer is otherwise G\'s)'),
    cli.option('--mdgan-d2-lr', default_text="D's --dlr", type=click.FloatRange(min=0, min_open=True), metavar='FLOAT',
                 help='mdgan md: learning rate of D2 (its optimizer is otherwise D\'s)'),
    cli.option('--mdgan-d2-gamma', default_text="the run's --gamma", type=click.FloatRange(min=0), metavar='FLOAT',
                 help='mdgan md: R1 weight of D2 on its reals G(E(x)), lazy every D reg interval'),
    cli.option('--mdgan-d2-augment', arg='d2_augment', type=bool, metavar='BOOL',
                 help='mdgan md: D2 sees its images through the run\'s augmentation (at the run\'s p)'),
]

#----------------------------------------------------------------------------
# Validate the --mdgan-* options and return MDGANPrior's kwargs. opts: the
# command's options (dict-like, may lack keys); c: the training config so far
# (optimizers, loss, D_reg_interval). Raises click.ClickException.

def prior_kwargs(opts, c):
    opts = dnnlib.EasyDict(opts)
    values = cli.resolve('mdgan', opts, c)
    mode = values.mdgan_mode
    wrong = [key for key in (_MD_ONLY if mode == 'reg' else _REG_ONLY) if opts.get(key) is not None]
    if wrong:
        flag = cli.flag(wrong[0])
        other = 'md' if mode == 'reg' else 'reg'
        raise click.ClickException(f'{flag} only applies to --mdgan-mode={other}, but the mode is {mode}; drop {flag} or use --mdgan-mode={other}')

    # The run's settings that E and D2 follow unless told otherwise.
    loss_kwargs = c.get('loss_kwargs', {})
    gan_loss = loss_kwargs.get('gan_loss', 'logistic')
    if gan_loss != 'logistic':
        raise click.ClickException(f'--prior=mdgan needs --gan-loss=logistic: its regularisers are -log D terms (Eq. 1-2, App. A), '
                                   f'but --gan-loss={gan_loss}')
    E_opt = dnnlib.EasyDict(c.get('G_opt_kwargs') or mdgan_prior.DEFAULT_OPT_KWARGS)
    D2_opt = dnnlib.EasyDict(c.get('D_opt_kwargs') or mdgan_prior.DEFAULT_OPT_KWARGS)
    if opts.get('mdgan_e_lr') is not None:
        E_opt.lr = opts.mdgan_e_lr
    if opts.get('mdgan_d2_lr') is not None:
        D2_opt.lr = opts.mdgan_d2_lr
    d2_gamma = opts.get('mdgan_d2_gamma')
    if d2_gamma is None:
        d2_gamma = loss_kwargs.get('r1_gamma', 10)

    distance = values.mdgan_distance
    if distance not in mdgan_prior.DISTANCES:
        if distance not in features.list_extractors() and not features.is_file_spec(distance):
            raise click.ClickException(f'--mdgan-distance: unknown distance "{distance}"; use pixel, dfeat, one of the feature '
                                       f'extractors {", ".join(features.list_extractors())}, or the path or URL of one')
        try:
            features.check_extractor_file(distance)  # safe loading, before any work
        except ValueError as err:
            raise click.ClickException(f'--mdgan-distance: {err}') from err
    return dnnlib.EasyDict(
        cli.arg_kwargs('mdgan', values), d2_augment=bool(values.mdgan_d2_augment),
        E_opt_kwargs=E_opt, D2_opt_kwargs=D2_opt, d2_r1_gamma=float(d2_gamma), d2_reg_interval=int(c.get('D_reg_interval') or 1),
        gan_loss=gan_loss)

#----------------------------------------------------------------------------
