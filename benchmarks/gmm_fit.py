"""Time our torch EM (priors.gmm.GaussianMixture) against scikit-learn's GaussianMixture on the same features and start.

    python benchmarks/gmm_fit.py                                    # N=20000, d=256, M=16 on the CPU
    python benchmarks/gmm_fit.py --num-samples=50000 --device=cuda  # ours on the GPU, sklearn on the CPU
    python benchmarks/gmm_fit.py --features=feats.npy --components=7 --no-sklearn

Both fits start from the same weights, means and precisions (k-means++ seeds refined by Lloyd
iterations, computed once and excluded from the timings) and use the same tol, reg_covar and
max_iter, so their EM trajectories should agree to rounding: the table shows the time, the
iterations, the final lower bound and the final mean log-likelihood of each, and their difference.
"""

import os
import sys
import time
import warnings

import click
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from priors.gmm import gmm_math  # noqa: E402  (needs the repo root on sys.path)
from priors.gmm import GaussianMixture  # noqa: E402

#----------------------------------------------------------------------------
# Synthetic features: samples of a random mixture of overlapping anisotropic
# Gaussians with a decaying spectrum, with more modes than fitted components,
# so that EM needs a few tens of iterations as on real features.

def _synthetic_features(num_samples, dim, num_modes, separation, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(num_modes, size=num_samples)
    centres = rng.normal(size=(num_modes, dim)) * separation / np.sqrt(dim)
    spectrum = 1.0 / np.sqrt(1.0 + np.arange(dim))
    x = np.empty((num_samples, dim))
    for k in range(num_modes):
        rows = np.flatnonzero(labels == k)
        basis, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
        x[rows] = centres[k] + (rng.normal(size=(len(rows), dim)) * spectrum) @ basis.T
    return x

#----------------------------------------------------------------------------
# The common start: k-means++ seeds, Lloyd iterations, then the parameters of
# the hard assignment, as numpy arrays in scikit-learn's *_init form.

def _common_start(x, num_components, covariance_type, reg_covar, seed, device):
    xt = torch.as_tensor(x, dtype=torch.float64, device=device)
    centres, _ = gmm_math.kmeans_plusplus(xt, num_components, torch.Generator().manual_seed(seed))
    _, labels = gmm_math.kmeans_lloyd(xt, centres)
    resp = torch.nn.functional.one_hot(labels, num_components).double()
    weights, means, covariances, counts = gmm_math.m_step(xt, resp, reg_covar, covariance_type)
    chol = gmm_math.cholesky_precisions(covariances, covariance_type, counts, reg_covar)
    precisions = chol @ chol.transpose(-2, -1) if covariance_type == 'full' else chol.square()
    return dict(weights=weights.cpu().numpy(), means=means.cpu().numpy(), precisions=precisions.cpu().numpy())

#----------------------------------------------------------------------------

def _synchronize(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)

#----------------------------------------------------------------------------

@click.command()
@click.option('--num-samples', help='Number of samples N', type=click.IntRange(min=2), default=20000, show_default=True)
@click.option('--dim', help='Feature dimension d', type=click.IntRange(min=1), default=256, show_default=True)
@click.option('--components', help='Mixture components M', type=click.IntRange(min=1), default=16, show_default=True)
@click.option('--modes', help='Modes of the synthetic data  [default: 2 x --components]', type=click.IntRange(min=1), default=None)
@click.option('--separation', help='Scale of the distances between synthetic mode centres', type=click.FloatRange(min=0), default=1.0, show_default=True)
@click.option('--features', help='Use features from a .npy file [N, d] instead of synthetic ones', type=click.Path(exists=True, dir_okay=False), default=None)
@click.option('--covariance-type', help='Covariance type', type=click.Choice(gmm_math.COVARIANCE_TYPES), default='full', show_default=True)
@click.option('--tol', help='EM tolerance on the mean log-likelihood', type=click.FloatRange(min=0), default=1e-3, show_default=True)
@click.option('--reg-covar', help='Covariance regularisation', type=click.FloatRange(min=0), default=1e-6, show_default=True)
@click.option('--max-iter', help='Most EM iterations', type=click.IntRange(min=1), default=100, show_default=True)
@click.option('--device', help='Device of our fit (scikit-learn always runs on the CPU)', type=str, default='cpu', show_default=True)
@click.option('--threads', help='CPU threads for both  [default: library defaults]', type=click.IntRange(min=1), default=None)
@click.option('--seed', help='Seed of the data and of the start', type=int, default=0, show_default=True)
@click.option('--sklearn/--no-sklearn', help='Also fit scikit-learn', default=True, show_default=True)
def main(num_samples, dim, components, modes, separation, features, covariance_type, tol, reg_covar, max_iter, device, threads, seed, sklearn):
    """Fit the same features with our EM and scikit-learn's from one start; print a comparison table."""
    device = torch.device(device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise click.ClickException(f'--device={device}: CUDA is not available in this torch build; use --device=cpu')
    if threads is not None:
        torch.set_num_threads(threads)

    # Features and the common start.
    if features is not None:
        x = np.load(features).astype(np.float64)
        if x.ndim != 2:
            raise click.ClickException(f'--features: {features} holds an array of shape {list(x.shape)}, expected [N, d]')
    else:
        x = _synthetic_features(num_samples, dim, modes or 2 * components, separation, seed)
    if x.shape[0] < components:
        raise click.ClickException(f'--components={components} exceeds the number of samples ({x.shape[0]})')
    print(f'Features: N={x.shape[0]}, d={x.shape[1]}; M={components}, covariance_type={covariance_type}, '
          f'tol={tol:g}, reg_covar={reg_covar:g}, max_iter={max_iter}; ours on {device}', flush=True)
    start = time.perf_counter()
    init = _common_start(x, components, covariance_type, reg_covar, seed, device)
    print(f'Common start (k-means++ and Lloyd): {time.perf_counter() - start:.2f} s', flush=True)
    kwargs = dict(n_components=components, covariance_type=covariance_type, tol=tol, reg_covar=reg_covar, max_iter=max_iter)
    rows = []

    # Our EM.
    ours = GaussianMixture(**kwargs).to(device)
    xt = torch.as_tensor(x, device=device)
    _synchronize(device)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        ours.fit(xt, init=init)
    _synchronize(device)
    rows.append(('ours (torch)', str(device), time.perf_counter() - start, int(ours.n_iter_), bool(ours.converged_),
                 float(ours.lower_bound_), ours.score(xt)))

    # scikit-learn's EM.
    if sklearn:
        from sklearn.mixture import GaussianMixture as SklearnGaussianMixture  # pylint: disable=import-outside-toplevel
        from threadpoolctl import threadpool_limits  # pylint: disable=import-outside-toplevel
        theirs = SklearnGaussianMixture(**kwargs, weights_init=init['weights'], means_init=init['means'],
                                        precisions_init=init['precisions'])
        with threadpool_limits(limits=threads), warnings.catch_warnings():
            warnings.simplefilter('ignore')
            start = time.perf_counter()
            theirs.fit(x)
            elapsed = time.perf_counter() - start
        rows.append(('scikit-learn', 'cpu', elapsed, theirs.n_iter_, theirs.converged_, theirs.lower_bound_,
                     theirs.score(x)))

    # Table.
    header = f'{"implementation":<14} {"device":<8} {"time s":>9} {"iters":>6} {"converged":>10} {"lower bound":>20} {"mean log-lik":>20}'
    print(header)
    print('-' * len(header))
    for name, dev, seconds, iters, converged, lower_bound, loglik in rows:
        print(f'{name:<14} {dev:<8} {seconds:>9.3f} {iters:>6d} {str(converged):>10} {lower_bound:>20.12f} {loglik:>20.12f}')
    if len(rows) == 2:
        (_, _, t0, i0, _, b0, l0), (_, _, t1, i1, _, b1, l1) = rows
        print(f'{"ours - sklearn":<14} {"":<8} {t0 - t1:>9.3f} {i0 - i1:>6d} {"":>10} {b0 - b1:>20.3e} {l0 - l1:>20.3e}')
        print(f'Speed-up of ours: {t1 / t0:.2f}x')

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
