"""Build a PriorGAN prior file: features of the real images, PCA and a GMM (Gu et al., "PriorGAN", §3.1), with per-image components and a picture of each component.

Examples:

    # Inception features, 7 components, PCA keeping 98% of the variance (the paper's LSUN settings).
    python build_prior.py --data=~/datasets/lsun-cat-256.zip --out=~/priors/cat-inception.pt

    # The paper's FFHQ setting (70 components) with its default extractor.
    python build_prior.py --data=~/datasets/ffhq-256.zip --preset=ffhq --feature=resnet101 --out=~/priors/ffhq-r101.pt

    # Offline demo with the tiny random extractor (not for research numbers).
    python build_prior.py --data=demo.zip --feature=tiny --components=8 --out=demo-prior.pt --device=cpu
"""

import os

import click
import torch

import dnnlib
from dnnlib import cli
from metrics import metric_utils
from priors import features
from priors.gmm import prior as gmm_prior
from priors.gmm import prior_file
from torch_utils import safe_load as safe_loading
from training import toy_lab

#----------------------------------------------------------------------------

@click.command(context_settings=dict(max_content_width=120))
@safe_loading.cli_options
@click.option('--data',         help='Dataset (folder or zip), as for train.py --data', metavar='PATH', required=True)
@click.option('--out',          help='Prior file to write', metavar='FILE', required=True)
@click.option('--feature',      help=f'Feature extractor: {", ".join(features.list_extractors())}, or the path or URL of a TorchScript or pickled module '
                                     f'(a pickled module runs code from the file when loaded: refused unless --trust-pickle)',
                                default='inception', show_default=True, metavar='NAME')
@click.option('--preset',       help='The paper\'s setting for a dataset: --components 35/70/7/7 for cifar10/ffhq/lsun-cat/lsun-bird (--components overrides it)', type=click.Choice(sorted(gmm_prior.PRESETS)))
@click.option('--components',   help='Number of Gaussian components M  [default: 7, or the preset\'s]', type=click.IntRange(min=1), metavar='INT')
@click.option('--pca',          help='PCA before the GMM: variance fraction in (0,1], number of components (int), or "none"',
                                default='0.98', show_default=True, metavar='VALUE')
@click.option('--reg-covar',    help='Added to the diagonal of every GMM covariance', type=cli.FiniteFloat(min=0), default=1e-6, show_default=True)
@click.option('--seed',         help='Seed of the GMM initialisation and of the held-out split', type=click.IntRange(min=0), default=0, show_default=True)
@click.option('--covariance',   help='GMM covariance: full, or diag (2d instead of d(d+3)/2 parameters per component)',
                                type=click.Choice(['full', 'diag']), default='full', show_default=True)
@click.option('--holdout',      help='Fraction of images held out of the fit; their log-likelihoods are the reference of theta '
                                     'and QS (0 = the fitted images, v1)', type=cli.FiniteFloat(min=0, max=1, max_open=True),
                                default=0.1, show_default=True)
@click.option('--max-images',   help='Fit on at most N images (a seeded subset); every image still gets a component  [default: all]',
                                type=click.IntRange(min=1), metavar='INT')
@click.option('--mirror',       help='Include x-flipped copies, as train.py --mirror', type=bool, default=False, show_default=True, metavar='BOOL')
@click.option('--batch',        help='Images per feature batch', type=click.IntRange(min=1), default=64, show_default=True)
@click.option('--device',       help='Device, e.g. cuda, cuda:1 or cpu  [default: cuda when available]', metavar='DEVICE')
@click.option('--n-init',       help='EM restarts (the best lower bound is kept)', type=click.IntRange(min=1), default=1, show_default=True)
@click.option('--max-iter',     help='Most EM iterations per restart', type=click.IntRange(min=1), default=100, show_default=True)
@click.option('--grid',         help='Also write <out>-components.png, real images of each component', type=bool, default=True, show_default=True, metavar='BOOL')
@click.option('--cache',        help='Reuse and store the real features in the metrics feature cache', type=bool, default=True, show_default=True, metavar='BOOL')
def main(data, out, feature, preset, components, pca, reg_covar, seed, covariance, holdout, max_images, mirror, batch, device, n_init,
         max_iter, grid, cache):
    """Build a PriorGAN prior file for a dataset.

    Feature files are found as the metric detectors are: SG2ADA_DETECTOR_<NAME>=FILE, a folder
    $SG2ADA_DETECTOR_DIR holding <NAME>.pt, a local path, the dnnlib download cache, or a download.
    """
    # Sanity checks.
    if components is None:
        components = gmm_prior.PRESETS[preset].components if preset is not None else 7
    try:
        pca = prior_file.parse_pca(pca)
    except ValueError as err:
        raise click.ClickException(f'--pca: {err}') from err
    try:
        device = torch.device(device) if device is not None else metric_utils.default_device()
    except RuntimeError as err:
        raise click.ClickException(f'--device: "{device}" is not a device ({err}); use e.g. cuda, cuda:0 or cpu') from err
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise click.ClickException(f'--device={device}: CUDA is not available here; use --device=cpu')
    if os.path.isdir(out):
        raise click.ClickException(f'--out: "{out}" is a folder; give a file name such as {os.path.join(out, "prior.pt")}')
    cli.check_output_file(out, '--out')
    if toy_lab.is_toy_data(data):
        raise click.ClickException(f'--data={data} is toy data (2-D points); build_prior.py fits image features. For toy runs '
                                   f'train.py --prior=gmm fits the GMM on the points themselves (feature "identity") at the '
                                   f'start of the run')
    dataset_kwargs = dnnlib.EasyDict(class_name='training.dataset.ImageFolderDataset', path=data, use_labels=False, max_size=None, xflip=mirror)
    try:
        dataset = dnnlib.util.construct_class_by_name(**dataset_kwargs)
        num_items = len(dataset)
        dataset.check_all_images()  # a bad image fails now, not after minutes of feature extraction
        del dataset
    except (OSError, ValueError) as err:
        raise click.ClickException(f'--data: {err}') from err
    num_images = int((prior_file.split_roles(num_items, holdout=holdout, max_images=max_images, seed=seed) == prior_file.ROLE_FIT).sum())
    if num_images < components:
        raise click.ClickException(f'--components={components} is more than the {num_images} images to fit on '
                                   f'({num_items} images, --holdout={holdout:g}); lower --components or --holdout, or raise --max-images')
    try:
        extractor = features.build_extractor(feature, device=device)  # safe loading unless --trust-pickle
    except (OSError, ValueError) as err:
        raise click.ClickException(f'--feature: {err}') from err

    # Build.
    print(f'Dataset:   {data} ({num_items} images{", mirrored" if mirror else ""}; fit on {num_images}, {holdout:g} held out)')
    print(f'Features:  {extractor.name} ({extractor.feature_dim}-d) on {device}')
    print(f'Prior:     PCA {pca}, {components} components ({covariance}), reg_covar {reg_covar:g}, seed {seed}')
    grid_path = os.path.splitext(out)[0] + '-components.png' if grid else None
    try:
        prior = prior_file.build_prior_file(out, dataset_kwargs, feature=extractor, components=components, pca=pca,
                                            reg_covar=reg_covar, seed=seed, max_images=max_images, holdout=holdout,
                                            covariance_type=covariance, batch=batch, device=device,
                                            n_init=n_init, max_iter=max_iter, grid_path=grid_path, feature_cache=cache,
                                            progress=metric_utils.ProgressMonitor(verbose=True))
    except (OSError, ValueError) as err:
        raise click.ClickException(str(err)) from err

    # Summary.
    gmm = prior.gmm
    freqs = ', '.join(f'{f:.3f}' for f in prior.real_freqs().tolist())
    print(f'PCA:       {prior.feature_dim} -> {prior.pca_dim} dims')
    print(f'GMM:       {"converged" if bool(gmm.converged_) else "NOT converged"} after {int(gmm.n_iter_)} EM iterations, '
          f'mean log-likelihood {prior.record["real_loglik"]["mean"]:.4f}')
    print(f'Frequencies (nearest centre): {freqs}')
    overfit = prior.record['overfit']
    rank = overfit['heldout_rank']
    print(f'Overfit:   {overfit["images_per_param"]:.2f} fitted images per component per parameter (want >= '
          f'{prior_file.MIN_IMAGES_PER_PARAM:g}); ' + (f'held-out reals rank at {rank:.3f} among the fitted ones (0.5 = none)'
                                                        if rank is not None else 'nothing held out'))
    print(f'Reference: log-likelihoods of the {prior.real_loglik_sorted.numel()} '
          f'{"held-out" if prior.reference_source == "heldout" else "fitted"} images (theta of Eq. 5, QS)')
    print(f'Wrote {out}' + (f' and {grid_path}' if grid_path else ''))

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
