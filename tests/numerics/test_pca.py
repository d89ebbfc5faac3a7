"""priors.gmm.pca.PCA against scikit-learn's PCA (full SVD) up to component signs, plus gradients, errors and saved state."""

import io
import pickle

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA as SklearnPCA

from priors.gmm.pca import PCA
from torch_utils import persistence

#----------------------------------------------------------------------------
# Correlated samples with a decaying spectrum, so that the variance fraction
# picks a proper subset of the components.

def _samples(seed=0, n=200, d=8):
    rng = np.random.default_rng(seed)
    scales = 0.6 ** np.arange(d)
    basis, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return (rng.normal(size=(n, d)) * scales) @ basis.T + rng.normal(size=d)


def _signs(ours, theirs):
    # Per-component sign that maps scikit-learn's components onto ours.
    return np.sign((ours * theirs).sum(axis=1))


def _compare(ours, theirs, x):
    assert ours.n_components_ == theirs.n_components_
    signs = _signs(ours.components_.numpy(), theirs.components_)
    np.testing.assert_allclose(ours.components_.numpy(), signs[:, None] * theirs.components_, rtol=1e-8, atol=1e-10)
    for name in ('mean_', 'explained_variance_', 'explained_variance_ratio_', 'singular_values_'):
        np.testing.assert_allclose(getattr(ours, name).numpy(), getattr(theirs, name), rtol=1e-10, atol=1e-12,
                                   err_msg=name)
    y = ours.transform(x).numpy()
    np.testing.assert_allclose(y, theirs.transform(x) * signs[None], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(ours.inverse_transform(y).numpy(), theirs.inverse_transform(theirs.transform(x)),
                               rtol=1e-8, atol=1e-10)

#----------------------------------------------------------------------------

@pytest.mark.parametrize('n_components, expected', [(0.98, 4), (0.9, 3), (5, 5), (None, 8)])
@pytest.mark.parametrize('whiten', [False, True])
def test_matches_sklearn_up_to_sign(n_components, expected, whiten):
    x = _samples()
    ours = PCA(n_components, whiten=whiten).fit(x)
    theirs = SklearnPCA(n_components, whiten=whiten, svd_solver='full').fit(x)
    assert ours.n_components_ == expected
    _compare(ours, theirs, x)


def test_fewer_samples_than_features_matches_sklearn():
    x = _samples(seed=1, n=5, d=8)
    ours = PCA(None).fit(x)
    theirs = SklearnPCA(None, svd_solver='full').fit(x)
    assert ours.n_components_ == 5
    signs = _signs(ours.components_.numpy()[:4], theirs.components_[:4])  # the 5th has zero variance
    np.testing.assert_allclose(ours.components_.numpy()[:4], signs[:, None] * theirs.components_[:4], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(ours.explained_variance_.numpy(), theirs.explained_variance_, rtol=1e-9, atol=1e-12)


def test_fraction_one_keeps_all_and_signs_are_fixed():
    x = _samples(seed=2)
    pca = PCA(1.0).fit(x)
    assert pca.n_components_ == 8
    comp = pca.components_.numpy()
    np.testing.assert_allclose(comp @ comp.T, np.eye(8), atol=1e-12)
    assert (comp[np.arange(8), np.abs(comp).argmax(axis=1)] > 0).all()  # largest entry of each component positive
    np.testing.assert_allclose(pca.inverse_transform(pca.transform(x)).numpy(), x, rtol=1e-10, atol=1e-10)


def test_transform_is_differentiable_and_keeps_float32():
    pca = PCA(0.98, whiten=True).fit(_samples(seed=3))
    x = torch.tensor(_samples(seed=4, n=6), requires_grad=True)
    assert torch.autograd.gradcheck(pca.transform, (x,))
    f32 = torch.tensor(_samples(seed=5, n=10), dtype=torch.float32, requires_grad=True)
    y = pca(f32)
    assert y.dtype == torch.float32 and y.shape == (10, pca.n_components_)
    y.square().sum().backward()
    assert f32.grad is not None and f32.grad.dtype == torch.float32

#----------------------------------------------------------------------------

@pytest.mark.parametrize('value, message', [
    (0.0, r'n_components as a variance fraction must be in \(0, 1\], got 0\.0'),
    (1.5, r'n_components as a variance fraction must be in \(0, 1\], got 1\.5'),
    (0, r'n_components must be a float in \(0, 1\], an int >= 1 or None, got 0'),
    (True, r'n_components must be a float in \(0, 1\], an int >= 1 or None, got True'),
    ('all', r"n_components must be a float in \(0, 1\], an int >= 1 or None, got 'all'"),
])
def test_bad_n_components_raise(value, message):
    with pytest.raises(ValueError, match=message):
        PCA(value)


def test_fit_and_transform_errors():
    with pytest.raises(ValueError, match=r'PCA\(n_components=9\) needs at most min\(n_samples, n_features\) = 8 components'):
        PCA(9).fit(_samples())
    with pytest.raises(ValueError, match=r'the 4 samples have zero variance'):
        PCA().fit(np.ones([4, 3]))
    with pytest.raises(ValueError, match=r'needs at least 2 samples and 1 feature, got shape \[1, 3\]'):
        PCA().fit(np.ones([1, 3]))
    with pytest.raises(ValueError, match=r'PCA\.transform\(\): the PCA is not fitted yet; call fit\(features\) first'):
        PCA().transform(torch.zeros([2, 3]))
    pca = PCA(3).fit(_samples())
    with pytest.raises(ValueError, match=r'PCA\.transform\(\): expected shape \[N, 8\], got \[2, 3\]'):
        pca.transform(torch.zeros([2, 3]))
    with pytest.raises(ValueError, match=r'PCA\.inverse_transform\(\): expected shape \[N, 3\], got \[2, 8\]'):
        pca.inverse_transform(torch.zeros([2, 8]))

#----------------------------------------------------------------------------

def test_state_dict_and_pickle_round_trip():
    x = _samples(seed=6)
    pca = PCA(0.98, whiten=True).fit(x)
    buffer = io.BytesIO()
    torch.save(pca.state_dict(), buffer)
    buffer.seek(0)
    fresh = PCA(0.98, whiten=True)
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    assert fresh.is_fitted and fresh.n_components_ == pca.n_components_
    assert torch.equal(fresh.transform(x), pca.transform(x))
    assert persistence.is_persistent(pca)
    clone = pickle.loads(pickle.dumps(pca))
    assert torch.equal(clone.transform(x), pca.transform(x)) and clone.init_kwargs == pca.init_kwargs


@pytest.mark.gpu
def test_gpu_fit_equals_cpu_fit():
    x = _samples(seed=7, n=500, d=16)
    cpu = PCA(0.98).fit(x)
    gpu = PCA(0.98).to('cuda').fit(x)
    assert gpu.components_.is_cuda and gpu.n_components_ == cpu.n_components_
    signs = _signs(gpu.components_.cpu().numpy(), cpu.components_.numpy())
    np.testing.assert_allclose(gpu.components_.cpu().numpy(), signs[:, None] * cpu.components_.numpy(), atol=1e-8)
    np.testing.assert_allclose(gpu.explained_variance_.cpu().numpy(), cpu.explained_variance_.numpy(), rtol=1e-9)

#----------------------------------------------------------------------------
