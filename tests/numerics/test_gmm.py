"""priors.gmm.GaussianMixture: EM equal to scikit-learn's from the same start, recovery of a known mixture, gradients, state and pickles."""

import ast
import copy
import io
import os
import pickle
import warnings

import numpy as np
import pytest
import scipy.stats
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture

from priors.gmm import gmm_math
from priors.gmm import GaussianMixture
from torch_utils import persistence

#----------------------------------------------------------------------------
# Three overlapping anisotropic blobs in 4-D, and a crude common start for
# both implementations: k-means++ seeds as means, equal weights, and each
# component's precision set to the inverse of the data covariance.

def _blobs(seed=0, n_per=120, d=4):
    rng = np.random.default_rng(seed)
    parts = [rng.normal(size=(n_per, d)) @ rng.normal(size=(d, d)) + 2.5 * rng.normal(size=d) for _ in range(3)]
    return np.concatenate(parts)


def _crude_start(x, k, covariance_type, seed=0):
    _, idx = gmm_math.kmeans_plusplus(torch.tensor(x), k, torch.Generator().manual_seed(seed))
    means = x[idx.numpy()]
    cov = np.cov(x, rowvar=False)
    precisions = np.linalg.inv(cov) if covariance_type == 'full' else 1 / np.diag(cov)
    return dict(weights=np.full(k, 1 / k), means=means, precisions=np.stack([precisions] * k))


def _fit_both(x, k, covariance_type, **kwargs):
    init = _crude_start(x, k, covariance_type)
    ours = GaussianMixture(k, covariance_type=covariance_type, **kwargs).fit(x, init=init)
    theirs = SklearnGaussianMixture(k, covariance_type=covariance_type, weights_init=init['weights'],
                                    means_init=init['means'], precisions_init=init['precisions'], **kwargs).fit(x)
    return ours, theirs

#----------------------------------------------------------------------------

@pytest.mark.parametrize('covariance_type', ['full', 'diag'])
def test_em_matches_sklearn_from_same_start(covariance_type):
    x = _blobs()
    ours, theirs = _fit_both(x, 3, covariance_type, tol=1e-6, reg_covar=1e-4)
    assert theirs.n_iter_ > 5  # a real trajectory, not a start at the optimum
    assert int(ours.n_iter_) == theirs.n_iter_ and bool(ours.converged_) == theirs.converged_
    np.testing.assert_allclose(ours.lower_bounds_, theirs.lower_bounds_, rtol=1e-10, atol=0)
    np.testing.assert_allclose(float(ours.lower_bound_), theirs.lower_bound_, rtol=1e-10)
    for name in ('weights_', 'means_', 'covariances_', 'precisions_cholesky_', 'precisions_'):
        np.testing.assert_allclose(getattr(ours, name).numpy(), getattr(theirs, name), rtol=1e-8, atol=1e-10,
                                   err_msg=name)
    np.testing.assert_allclose(ours.score_samples(x).numpy(), theirs.score_samples(x), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(ours.score(x), theirs.score(x), rtol=1e-10)
    np.testing.assert_allclose(ours.predict_proba(x).numpy(), theirs.predict_proba(x), rtol=1e-7, atol=1e-9)
    np.testing.assert_array_equal(ours.predict(x).numpy(), theirs.predict(x))


def test_unconverged_run_matches_sklearn_and_warns():
    x = _blobs(seed=1)
    with pytest.warns(UserWarning, match=r'EM did not converge within max_iter=3 iterations \(tol=1e-06\)'):
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', ConvergenceWarning)
            ours, theirs = _fit_both(x, 3, 'full', tol=1e-6, max_iter=3)
    assert not bool(ours.converged_) and not theirs.converged_
    assert int(ours.n_iter_) == theirs.n_iter_ == 3
    np.testing.assert_allclose(float(ours.lower_bound_), theirs.lower_bound_, rtol=1e-12)
    np.testing.assert_allclose(ours.means_.numpy(), theirs.means_, rtol=1e-10, atol=1e-12)


def test_init_with_covariances_equals_init_with_precisions():
    x = _blobs(seed=2)
    init = _crude_start(x, 3, 'full')
    a = GaussianMixture(3, tol=1e-6).fit(x, init=init)
    init_cov = dict(init, covariances=np.linalg.inv(init.pop('precisions')))
    b = GaussianMixture(3, tol=1e-6).fit(x, init=init_cov)
    assert int(a.n_iter_) == int(b.n_iter_)
    torch.testing.assert_close(a.means_, b.means_, rtol=1e-9, atol=1e-11)

#----------------------------------------------------------------------------
# Behaviour of the default (k-means) initialisation.

def test_recovers_known_two_component_mixture():
    # Stated tolerance: with 3000 samples, weights within 0.03, means within 0.15, covariances within 0.25.
    rng = np.random.default_rng(3)
    weights = np.array([0.3, 0.7])
    means = np.array([[-3.0, 0.0], [3.0, 1.0]])
    covs = np.array([[[1.0, 0.5], [0.5, 1.0]], [[2.0, -0.3], [-0.3, 0.5]]])
    labels = rng.choice(2, size=3000, p=weights)
    x = np.stack([rng.multivariate_normal(means[k], covs[k]) for k in labels])
    gmm = GaussianMixture(2, random_state=0).fit(x)
    order = gmm.means_[:, 0].argsort().numpy()
    assert bool(gmm.converged_)
    np.testing.assert_allclose(gmm.weights_.numpy()[order], weights, atol=0.03)
    np.testing.assert_allclose(gmm.means_.numpy()[order], means, atol=0.15)
    np.testing.assert_allclose(gmm.covariances_.numpy()[order], covs, atol=0.25)
    assert (gmm.predict(x).numpy() == order[labels]).mean() > 0.99


def test_single_component_is_the_gaussian_mle():
    x = _blobs(seed=4)
    gmm = GaussianMixture(1, reg_covar=1e-6, random_state=0).fit(x)
    cov = np.cov(x, rowvar=False, bias=True) + 1e-6 * np.eye(4)
    np.testing.assert_allclose(gmm.means_.numpy()[0], x.mean(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gmm.covariances_.numpy()[0], cov, rtol=1e-10, atol=1e-12)
    ref = scipy.stats.multivariate_normal(x.mean(axis=0), cov).logpdf(x)
    np.testing.assert_allclose(gmm.score_samples(x).numpy(), ref, rtol=1e-10, atol=1e-10)


def test_seed_makes_fit_deterministic_and_n_init_keeps_the_best():
    x = _blobs(seed=5)
    a = GaussianMixture(4, init_params='k-means++', random_state=7).fit(x)
    b = GaussianMixture(4, init_params='k-means++', random_state=7).fit(torch.tensor(x))
    assert torch.equal(a.means_, b.means_) and a.lower_bounds_ == b.lower_bounds_
    best = GaussianMixture(4, init_params='k-means++', n_init=4, random_state=7).fit(x)
    assert float(best.lower_bound_) >= float(a.lower_bound_)  # its first start is the same as a's


def test_predict_proba_rows_sum_to_one_and_nearest_component_uses_euclidean_distance():
    x = _blobs(seed=6)
    gmm = GaussianMixture(3, covariance_type='diag', random_state=0).fit(x)
    proba = gmm.predict_proba(x)
    torch.testing.assert_close(proba.sum(dim=1), torch.ones(len(x), dtype=torch.float64), rtol=0, atol=1e-12)
    assert torch.equal(gmm.predict(x), proba.argmax(dim=1))
    dists = ((x[:, None, :] - gmm.means_.numpy()[None]) ** 2).sum(axis=2)
    np.testing.assert_array_equal(gmm.nearest_component(x).numpy(), dists.argmin(axis=1))

#----------------------------------------------------------------------------
# log_prob: the differentiable entry point of the quality loss.

def _fitted(covariance_type='full', seed=7):
    x = _blobs(seed=seed)
    return GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(x), x


@pytest.mark.parametrize('covariance_type', ['full', 'diag'])
def test_log_prob_gradcheck_and_dtypes(covariance_type):
    gmm, x = _fitted(covariance_type)
    features = torch.tensor(x[:5], requires_grad=True)
    assert torch.autograd.gradcheck(gmm.log_prob, (features,))
    f32 = torch.tensor(x[:50], dtype=torch.float32, requires_grad=True)
    out = gmm(f32)
    assert out.dtype == torch.float32 and out.shape == (50,)
    torch.testing.assert_close(out.double(), gmm.score_samples(f32.detach()), rtol=1e-6, atol=1e-5)
    out.sum().backward()
    assert f32.grad is not None and f32.grad.dtype == torch.float32 and bool(torch.isfinite(f32.grad).all())


def test_log_prob_gradient_points_towards_the_data():
    gmm, x = _fitted()
    far = torch.tensor(x.mean(axis=0) + 30.0, requires_grad=True)[None]
    grad, = torch.autograd.grad(gmm.log_prob(far).sum(), far)
    step = far + 1e-3 * grad
    assert float(gmm.log_prob(step.detach())) > float(gmm.log_prob(far.detach()))


def test_not_fitted_and_wrong_shapes_raise():
    gmm = GaussianMixture(2)
    with pytest.raises(ValueError, match=r'GaussianMixture\.log_prob\(\): the mixture is not fitted yet; call fit'):
        gmm.log_prob(torch.zeros([3, 4]))
    with pytest.raises(ValueError, match=r'GaussianMixture\.predict\(\): the mixture is not fitted yet'):
        gmm.predict(np.zeros([3, 4]))
    gmm, _ = _fitted()
    with pytest.raises(ValueError, match=r'log_prob\(\): features must have shape \[N, 4\], got \[3, 5\]'):
        gmm.log_prob(torch.zeros([3, 5]))
    with pytest.raises(ValueError, match=r'score_samples\(\): the samples have 2 features but the mixture was fitted on 4'):
        gmm.score_samples(np.zeros([3, 2]))
    with pytest.raises(TypeError, match=r'features must be a torch.Tensor, got ndarray'):
        gmm.log_prob(np.zeros([3, 4]))

#----------------------------------------------------------------------------
# Errors for bad hyperparameters and inputs.

@pytest.mark.parametrize('kwargs, message', [
    (dict(n_components=0), r'n_components must be an int >= 1, got 0'),
    (dict(n_components=2.5), r'n_components must be an int >= 1, got 2\.5'),
    (dict(covariance_type='tied'), r"covariance_type must be one of full, diag, got 'tied'"),
    (dict(tol=-1), r'tol must be >= 0, got -1'),
    (dict(reg_covar=-1e-6), r'reg_covar must be >= 0, got -1e-06'),
    (dict(max_iter=-1), r'max_iter must be an int >= 0, got -1'),
    (dict(n_init=0), r'n_init must be an int >= 1, got 0'),
    (dict(init_params='random'), r"init_params must be one of kmeans, k-means\+\+, got 'random'"),
    (dict(random_state='x'), r"random_state must be an int or None, got 'x'"),
])
def test_bad_hyperparameters_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GaussianMixture(**kwargs)


def test_bad_fit_inputs_raise():
    gmm = GaussianMixture(3)
    with pytest.raises(ValueError, match=r'got 2 samples for n_components=3; pass at least as many samples'):
        gmm.fit(np.zeros([2, 4]))
    with pytest.raises(ValueError, match=r'expected samples of shape \[N, d\], got shape \[5\]'):
        gmm.fit(np.zeros(5))
    x = _blobs()
    x[3, 1] = np.nan
    with pytest.raises(ValueError, match=r'the samples contain NaN or infinite values'):
        gmm.fit(x)


def test_bad_init_raises():
    x = _blobs()
    gmm = GaussianMixture(3)
    means = x[:3]
    with pytest.raises(ValueError, match=r"unknown init keys \['mean'\]; valid keys: weights, means, covariances, precisions"):
        gmm.fit(x, init=dict(mean=means))
    with pytest.raises(ValueError, match=r'init must contain "means"'):
        gmm.fit(x, init=dict(weights=np.full(3, 1 / 3)))
    with pytest.raises(ValueError, match=r'init\["means"\] has shape \[2, 4\], expected \[3, 4\]'):
        gmm.fit(x, init=dict(means=x[:2]))
    with pytest.raises(ValueError, match=r'init\["weights"\] must be >= 0 and sum to 1, got sum 1\.5'):
        gmm.fit(x, init=dict(means=means, weights=np.array([0.5, 0.5, 0.5])))
    with pytest.raises(ValueError, match=r'not both'):
        gmm.fit(x, init=dict(means=means, covariances=np.stack([np.eye(4)] * 3), precisions=np.stack([np.eye(4)] * 3)))
    with pytest.raises(TypeError, match=r'init must be a dict'):
        gmm.fit(x, init=[means])


def test_singular_covariance_during_fit_explains_the_fix():
    # Three distinct points, each repeated: every component collapses onto one point.
    x = np.repeat(np.array([[0.0, 0.0], [5.0, 5.0], [10.0, 0.0]]), 4, axis=0)
    with pytest.raises(ValueError, match=r'GMM fit failed: component \d has a singular covariance \(it owns 4 of 12 '
                                         r'samples\)\. Lower n_components \(now 3\), raise reg_covar \(now 0\)'):
        GaussianMixture(3, reg_covar=0, random_state=0).fit(x)
    gmm = GaussianMixture(3, reg_covar=1e-6, random_state=0).fit(x)  # the default regularisation copes
    assert bool(torch.isfinite(gmm.score_samples(x)).all())

#----------------------------------------------------------------------------
# Fitted state in state_dict() and pickles.

@pytest.mark.parametrize('covariance_type', ['full', 'diag'])
def test_state_dict_round_trip_into_unfitted_module(covariance_type):
    gmm, x = _fitted(covariance_type)
    buffer = io.BytesIO()
    torch.save(gmm.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    fresh = GaussianMixture(3, covariance_type=covariance_type)
    fresh.load_state_dict(state)
    assert fresh.is_fitted and int(fresh.n_iter_) == int(gmm.n_iter_) and bool(fresh.converged_) == bool(gmm.converged_)
    for name, value in gmm.state_dict().items():
        assert torch.equal(fresh.state_dict()[name], value), name
    assert torch.equal(fresh.score_samples(x), gmm.score_samples(x))


def test_state_dict_of_other_covariance_type_is_rejected():
    gmm, _ = _fitted('diag')
    with pytest.raises(RuntimeError, match=r'size mismatch for covariances_'):
        GaussianMixture(3, covariance_type='full').load_state_dict(gmm.state_dict())


def test_pickle_and_deepcopy_keep_the_fit():
    gmm, x = _fitted()
    assert persistence.is_persistent(gmm)
    for clone in (pickle.loads(pickle.dumps(gmm)), copy.deepcopy(gmm)):
        assert type(clone) is type(gmm) and clone.init_kwargs == gmm.init_kwargs
        assert torch.equal(clone.score_samples(x), gmm.score_samples(x))
        assert clone.lower_bounds_ == gmm.lower_bounds_


def test_pickle_with_foreign_source_is_rebuilt_as_our_class():
    # A pickle whose embedded source differs from ours (an older version of this file) is rebuilt by
    # class name from its init kwargs and fitted buffers, without exec'ing that source or warning.
    gmm, x = _fitted()
    _, (meta,), _ = gmm.__reduce__()
    meta = dict(meta, module_src=meta['module_src'] + '\n# an older revision\n')
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        clone = persistence._reconstruct_persistent_obj(meta)
    assert type(clone) is type(gmm)
    torch.testing.assert_close(clone.score_samples(x), gmm.score_samples(x), rtol=0, atol=0)


@pytest.mark.parametrize('filename', ['mixture.py', 'pca.py'])
def test_estimator_modules_import_only_pickle_safe_names(filename):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, 'priors', 'gmm', filename), encoding='utf-8') as f:
        tree = ast.parse(f.read())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.update(f'{node.module}.{alias.name}' for alias in node.names)
    allowed = {'math', 'warnings', 'numpy', 'torch', 'torch_utils.persistence', 'torch_utils.misc', 'priors.gmm.gmm_math'}
    assert imported <= allowed, sorted(imported - allowed)

#----------------------------------------------------------------------------

@pytest.mark.gpu
@pytest.mark.parametrize('covariance_type', ['full', 'diag'])
def test_gpu_fit_equals_cpu_fit(covariance_type):
    x = _blobs(seed=8, n_per=400, d=6)
    cpu = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(x)
    gpu = GaussianMixture(3, covariance_type=covariance_type, random_state=0).to('cuda').fit(x)
    assert gpu.means_.is_cuda and int(gpu.n_iter_) == int(cpu.n_iter_)
    for name, value in cpu.state_dict().items():
        torch.testing.assert_close(gpu.state_dict()[name].cpu(), value, rtol=1e-9, atol=1e-9, msg=name)
    f32 = torch.tensor(x[:64], dtype=torch.float32)
    torch.testing.assert_close(gpu.log_prob(f32.cuda()).cpu(), cpu.log_prob(f32), rtol=1e-6, atol=1e-5)

#----------------------------------------------------------------------------
