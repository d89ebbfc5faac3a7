"""Command-line options of `--prior=masked` (Goerttler & Kloft, Def. 3-4; paper values as defaults) and their translation into `MaskedPrior` kwargs."""

import click

from priors import cli

#----------------------------------------------------------------------------

TITLE = 'Masked / weighted latent prior, Goerttler & Kloft: Def. 3-4, latents selected by s = D(G(z)) (Eq. 2)'

OPTIONS = [
    cli.option('--masked-mode', arg='mode', type=click.Choice(['masked', 'weighted']),
               help='masked: draw the batch from the top-r fraction of n pre-sampled latents (Def. 3, Eq. 8) or with '
                    'probability proportional to the score (Def. 4, Eq. 9-11 with Eq. 7)'),
    cli.option('--masked-rate', arg='rate', type=click.FloatRange(min=0, max=1, min_open=True), metavar='FLOAT',
               help='masked: r of Def. 3, the kept fraction (paper: 0.5; 1 = the plain prior)'),
    cli.option('--masked-presample', arg='presample', type=click.FloatRange(min=1), metavar='FLOAT',
               help='masked: n / m, pre-sampled latents per batch latent, over the whole batch of a phase '
                    '(paper: n = 1000 for m = 500)'),
    cli.option('--masked-sampling', arg='sampling', type=bool, metavar='BOOL',
               help='masked: store the selection in snapshots so that generate.py, the metrics and the grids sample '
                    'through it (the paper: "we have to use the discriminator to generate"); they can still switch '
                    'it off with --prior-sampling=false'),
    cli.option('--masked-steps', arg='steps', type=click.Choice(['both', 'G']),
               help='masked: the steps whose latents are selected: both = the D and the G step (§3.1 "in both steps"); '
                    'G = the G step only, D trains on the plain prior (an option, not the paper\'s: with the D step masked '
                    'too, D only sees the fakes it already rates best, and its scores over the pre-sample flatten)'),
    cli.option('--masked-score', arg='score', type=click.Choice(['sigmoid', 'output']),
               help='masked: the score s of Eq. 2: sigmoid = sigmoid of D\'s output (D\'s output a logit, as in StyleGAN2\'s '
                    'loss); output = D\'s output as it is, for a critic that already ends in a sigmoid (Table 1, '
                    '--toy-net=goerttler-table1-sigmoid): s = D(G(z)) as the paper writes it, so weighted weights are '
                    'proportional to D\'s output and not to sigmoid(D)'),
    cli.option('--masked-pool', arg='sample_pool', type=click.IntRange(min=1), metavar='INT',
               help='masked: candidates per generated image at sampling time (the image is drawn from the masked or '
                    'weighted pmf over them)'),
]

# Sampling cost bound of --masked-pool: every generated image (grids, metrics, generate.py) scores this many
# candidates with G and D, and holds their latents (z_dim float32 each) at once.
MAX_POOL = 4096
MAX_PRESAMPLE_BYTES = 4 * 2**30   # --masked-presample: the pre-sampled latents of one phase

# MaskedPrior kwargs from the parsed options (defaults: MaskedPrior's own).
def prior_kwargs(opts, c):
    presample = opts.get('masked_presample')
    if presample is not None:
        batch, z_dim = int(c.get('batch_size') or 1), int((c.get('G_kwargs') or {}).get('z_dim', 512))
        need = presample * batch * z_dim * 4  # the pre-sampled latents of one phase, float32, plus one score each
        if need > MAX_PRESAMPLE_BYTES:
            raise click.ClickException(f'--masked-presample={presample:g} would pre-sample {presample * batch:.3g} latents per phase '
                                       f'(--batch={batch}), about {need / 2**30:.3g} GiB of memory; use at most '
                                       f'{MAX_PRESAMPLE_BYTES / (batch * z_dim * 4):.3g}')
    pool = opts.get('masked_pool')
    if pool is not None and pool > MAX_POOL:
        z_dim = int((c.get('G_kwargs') or {}).get('z_dim', 512))
        raise click.ClickException(f'--masked-pool={pool} would score {pool} candidates with G and D for every generated image '
                                   f'(a 32-image grid: {32 * pool} G+D passes) and hold {pool * z_dim * 4 / 2**20:.3g} MiB of '
                                   f'latents per image; use at most {MAX_POOL} (default 64)')
    if opts.get('masked_mode') == 'weighted' and opts.get('masked_rate') is not None:
        raise click.ClickException('--masked-rate applies to --masked-mode=masked only; the weighted prior keeps every '
                                   'latent with probability proportional to its score. Drop --masked-rate')
    return cli.arg_kwargs('masked', cli.resolve('masked', opts, c))

#----------------------------------------------------------------------------
