"""Command-line options of `--prior=rf` (`--rf-*`; Bang & Shim 2018, defaults from the project spec §4.6 where the paper is silent) and their translation into `RFPrior` kwargs.

`priors.cli` adds OPTIONS to train.py under this prior's heading in `--help`; `configure()` calls
`prior_kwargs(opts, c)` when `--prior` lists rf. The encoder and decoder follow the run's D and G
(their kwargs are read from the config here). docs/rf.md explains each choice.
"""

import inspect
import os

import click

import dnnlib
from priors import cli
from priors.rf import ae_file
from priors.rf import autoencoder
from priors.rf import prior as rf_prior
from training import toy_lab

#----------------------------------------------------------------------------

TITLE = 'RFGAN, Bang & Shim 2018: frozen denoising-autoencoder features h1 in D, Y = sigma(h1 w1 + h2 w2), §3.1'

# Defaults: RFPrior's own, except --rf-at (auto: chosen here from D's kind).
_TRAINING_OPTIONS = ('rf_ae_kimg', 'rf_ae_noise', 'rf_ae_level', 'rf_ae_loss', 'rf_ae_lr', 'rf_ae_batch', 'rf_ae_seed', 'rf_ae_code')

OPTIONS = [
    cli.option('--rf-ae',       arg='ae_file', metavar='FILE',
               default_text='train it once and keep it in the dnnlib cache, keyed by the dataset, the D/G architecture and the '
                            '--rf-ae-* settings',
               help='rf: pretrained autoencoder file from build_rf.py'),
    cli.option('--rf-at', default='auto', type=click.Choice(['auto'] + list(rf_prior.FEATURE_AT)),
               help='rf: the layer of D where the encoder features h1 join D\'s own h2, act(h2 w2 + h1 w1 + b) (§3.1): fc = '
                    'StyleGAN2 D\'s fully connected layer on the flattened last 4x4 convolution (both "last convolution layer" '
                    'features); out = the output layer (toy MLP D: after its last hidden layer); auto = fc for StyleGAN2, out '
                    'for the toy D'),
    cli.option('--rf-ae-kimg', arg='kimg', type=click.FloatRange(min=0, min_open=True), metavar='KIMG',
               help='rf: autoencoder training length in thousands of real images (paper: silent)'),
    cli.option('--rf-ae-noise', arg='corruption', type=click.Choice(list(autoencoder.CORRUPTIONS)),
               help='rf: denoising corruption x~ of the input: gaussian x + s*eps, mask x*m with m ~ Bernoulli(1-p) (Vincent et al. '
                    '2008), none = plain AE (paper: a denoising AE, corruption silent)'),
    cli.option('--rf-ae-level', arg='level', type=click.FloatRange(min=0), metavar='FLOAT',
               help='rf: the corruption\'s s (std, in [-1,1] pixel units or toy data units) or p (masked fraction)'),
    cli.option('--rf-ae-loss', arg='loss', type=click.Choice(list(autoencoder.LOSSES)),
               help='rf: reconstruction loss, mean over pixels of (x^ - x)^2 (l2) or |x^ - x| (l1) (paper §3.3: L2 or L1)'),
    cli.option('--rf-ae-lr', arg='lr', type=click.FloatRange(min=0, min_open=True), metavar='FLOAT',
               help='rf: Adam learning rate of the autoencoder, betas (0.9, 0.999) (paper: silent)'),
    cli.option('--rf-ae-batch', default_text="the run's --batch", type=click.IntRange(min=1), metavar='INT',
               help='rf: autoencoder batch over all processes'),
    cli.option('--rf-ae-code', default_text="G's z_dim", type=click.IntRange(min=1), metavar='INT',
               help='rf: code size between encoder and decoder (the decoder is a G with z_dim = this)'),
    cli.option('--rf-ae-seed', arg='seed', type=click.IntRange(min=0), metavar='INT',
               help='rf: autoencoder seed (weights, image order, noise); independent of --seed so runs share one cached AE'),
]

#----------------------------------------------------------------------------
# The encoder kwargs for the run's D, and the decoder kwargs for its G.

def encoder_kwargs_for(D_kwargs):
    D_kwargs = dnnlib.EasyDict(D_kwargs)
    name = D_kwargs.get('class_name')
    if name == 'training.networks.Discriminator':
        block_kwargs = {k: v for k, v in dict(D_kwargs.get('block_kwargs') or {}).items() if k != 'freeze_layers'}
        epilogue = dict(D_kwargs.get('epilogue_kwargs') or {})
        return dnnlib.EasyDict(class_name='priors.rf.encoder.ConvEncoder', architecture=D_kwargs.get('architecture', 'resnet'),
                               channel_base=D_kwargs.get('channel_base', 32768), channel_max=D_kwargs.get('channel_max', 512),
                               num_fp16_res=D_kwargs.get('num_fp16_res', 0), conv_clamp=D_kwargs.get('conv_clamp'),
                               block_kwargs=block_kwargs, activation=epilogue.get('activation', 'lrelu'))
    if toy_lab.is_toy_networks(D_kwargs):
        defaults = _signature_defaults(name)
        return dnnlib.EasyDict(class_name='priors.rf.encoder.MLPEncoder', hidden=list(D_kwargs.get('hidden', defaults['hidden'])),
                               activation=D_kwargs.get('activation', defaults['activation']))
    raise click.ClickException(f'--prior=rf: no encoder shaped like D_kwargs.class_name="{name}"; the paper\'s encoder mirrors D, '
                               f'and priors/rf/encoder.py has one for training.networks.Discriminator and the toy MLP D')

def decoder_kwargs_for(G_kwargs, code_dim):
    G_kwargs = dnnlib.EasyDict(G_kwargs)
    kwargs = dnnlib.EasyDict({k: v for k, v in G_kwargs.items() if k not in ('z_dim', 'c_dim', 'img_resolution', 'img_channels')})
    kwargs.synthesis_kwargs = {k: v for k, v in dict(G_kwargs.get('synthesis_kwargs') or {}).items() if k != 'side_kwargs'}
    if toy_lab.is_toy_networks(G_kwargs):
        kwargs.w_dim = int(code_dim)  # the toy G's mapping is w = z
    return kwargs

# Keyword defaults of a class's constructor (the class's own, under a persistent_class wrapper).
def _signature_defaults(class_name):
    defaults = {}
    for cls in reversed(dnnlib.util.get_obj_by_name(class_name).__mro__):
        if '__init__' in vars(cls):
            params = inspect.signature(vars(cls)['__init__']).parameters
            defaults.update({k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty})
    return defaults

#----------------------------------------------------------------------------
# Validate the --rf-* options and return RFPrior's kwargs. opts: the command's
# options (dict-like); c: the training config so far (dataset, G, D, batch).
# Raises click.ClickException naming the flag at fault.

def prior_kwargs(opts, c):
    opts = dnnlib.EasyDict(opts)
    values = cli.resolve('rf', opts, c)
    enc = encoder_kwargs_for(c.D_kwargs)
    code_dim = values.rf_ae_code if values.rf_ae_code is not None else int(c.G_kwargs.get('z_dim', 512))
    dec = decoder_kwargs_for(c.G_kwargs, code_dim)
    at = values.rf_at
    if at == 'auto':
        at = 'out' if enc.class_name.endswith('MLPEncoder') else 'fc'
    kwargs = dnnlib.EasyDict(encoder_kwargs=enc, decoder_kwargs=dec, feature_at=at)

    # A given file fixes the autoencoder: check it against the data and D now.
    if opts.get('rf_ae') is not None:
        given = [key for key in _TRAINING_OPTIONS if opts.get(key) is not None]
        if given:
            raise click.ClickException(f'{cli.flag(given[0])} only applies when the autoencoder is trained; the file --rf-ae={opts.rf_ae} '
                                       f'fixes it. Drop {cli.flag(given[0])} or --rf-ae')
        path = os.path.abspath(os.path.expanduser(opts.rf_ae))
        try:
            record = ae_file.load_autoencoder_file(path, expect_dataset=c.training_set_kwargs, expect_encoder=enc)
        except (OSError, ValueError) as err:
            raise click.ClickException(f'--rf-ae: {err}') from err
        kwargs.ae_file = path
        kwargs.update(record['settings'])
        return kwargs

    # Otherwise the settings of the autoencoder to train (or find in the cache).
    kwargs.update(cli.arg_kwargs('rf', values))
    del kwargs.ae_file
    level = kwargs.level
    if kwargs.corruption == 'mask' and level > 1:
        raise click.ClickException(f'--rf-ae-level={level:g}: with --rf-ae-noise=mask it is the masked fraction, in [0, 1]')
    batch = values.rf_ae_batch if values.rf_ae_batch is not None else c.get('batch_size', 64)
    if batch % c.get('num_gpus', 1) != 0:
        raise click.ClickException(f'--rf-ae-batch={batch} must be divisible by --gpus={c.num_gpus}')
    kwargs.update(code_dim=code_dim, batch=batch, betas=[0.9, 0.999])
    return kwargs

#----------------------------------------------------------------------------
