"""priors.gmm.gmm_math against independent float64 references (scipy.stats, explicit loops), identities, gradcheck and chunking."""

import numpy as np
import pytest
import scipy.spatial.distance
import scipy.special
import scipy.stats
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from priors.gmm import gmm_math

#----------------------------------------------------------------------------
# A random mixture problem in float64 numpy: samples, weights summing to 1,
# means and symmetric positive definite covariances.

def random_gmm_problem(rng, n, k, d):
    x = rng.normal(size=(n, d)) * 2
    weights = rng.uniform(0.5, 1.5, size=k)
    weights /= weights.sum()
    means = rng.normal(size=(k, d)) * 2
    factors = rng.normal(size=(k, d, d))
    covs = factors @ factors.transpose(0, 2, 1) / d + 0.3 * np.eye(d)
    return x, weights, means, covs


def reference_log_prob(x, weights, means, covs):
    per_component = [np.log(w) + scipy.stats.multivariate_normal(m, s).logpdf(x) for w, m, s in zip(weights, means, covs)]
    return np.stack(per_component, axis=1)  # [N, K]


def to_torch(*arrays, dtype=torch.float64):
    return [torch.tensor(a, dtype=dtype) for a in arrays]


def precisions_chol_of(covs, covariance_type='full'):
    return gmm_math.cholesky_precisions(torch.tensor(covs), covariance_type)

#----------------------------------------------------------------------------
# Densities.

def test_gmm_log_prob_matches_float64_reference():
    rng = np.random.default_rng(0)
    x, weights, means, covs = random_gmm_problem(rng, n=64, k=3, d=5)
    ref = scipy.special.logsumexp(reference_log_prob(x, weights, means, covs), axis=1)
    w, mu = to_torch(weights, means)
    got = gmm_math.gmm_log_prob(torch.tensor(x), w, mu, precisions_chol_of(covs))
    assert got.dtype == torch.float64 and got.shape == (64,)
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-12, atol=1e-12)


def test_gmm_log_prob_float32_inputs_close_to_reference():
    rng = np.random.default_rng(1)
    x, weights, means, covs = random_gmm_problem(rng, n=64, k=3, d=5)
    ref = scipy.special.logsumexp(reference_log_prob(x, weights, means, covs), axis=1)
    prec = precisions_chol_of(covs).float()
    got = gmm_math.gmm_log_prob(*to_torch(x, weights, means, dtype=torch.float32), prec)
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-4, atol=1e-4)


def test_component_log_prob_matches_scipy_per_component():
    rng = np.random.default_rng(2)
    x, weights, means, covs = random_gmm_problem(rng, n=40, k=4, d=3)
    ref = reference_log_prob(x, weights, means, covs) - np.log(weights)[None]
    got = gmm_math.component_log_prob(torch.tensor(x), torch.tensor(means), precisions_chol_of(covs))
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-12, atol=1e-12)


def test_single_component_equals_one_gaussian():
    rng = np.random.default_rng(3)
    x, _, means, covs = random_gmm_problem(rng, n=32, k=1, d=4)
    ref = scipy.stats.multivariate_normal(means[0], covs[0]).logpdf(x)
    got = gmm_math.gmm_log_prob(torch.tensor(x), torch.ones([1], dtype=torch.float64), torch.tensor(means),
                                precisions_chol_of(covs))
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-12, atol=1e-12)


def test_diag_equals_full_with_diagonal_covariances():
    rng = np.random.default_rng(4)
    x, weights, means, _ = random_gmm_problem(rng, n=50, k=3, d=6)
    variances = rng.uniform(0.2, 3.0, size=(3, 6))
    full = np.stack([np.diag(v) for v in variances])
    x_t, w, mu = to_torch(x, weights, means)
    got_diag = gmm_math.gmm_log_prob(x_t, w, mu, precisions_chol_of(variances, 'diag'), 'diag')
    got_full = gmm_math.gmm_log_prob(x_t, w, mu, precisions_chol_of(full, 'full'), 'full')
    np.testing.assert_allclose(got_diag.numpy(), got_full.numpy(), rtol=1e-12, atol=1e-12)
    ref = scipy.special.logsumexp(reference_log_prob(x, weights, means, full), axis=1)
    np.testing.assert_allclose(got_diag.numpy(), ref, rtol=1e-12, atol=1e-12)


def test_responsibilities_sum_to_one_and_match_reference():
    rng = np.random.default_rng(5)
    x, weights, means, covs = random_gmm_problem(rng, n=80, k=4, d=3)
    joint = reference_log_prob(x, weights, means, covs)
    ref_norm = scipy.special.logsumexp(joint, axis=1)
    log_norm, log_resp = gmm_math.estimate_log_resp(*to_torch(x, weights, means), precisions_chol_of(covs))
    np.testing.assert_allclose(log_norm.numpy(), ref_norm, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(log_resp.numpy(), joint - ref_norm[:, None], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(log_resp.exp().sum(dim=1).numpy(), 1, rtol=0, atol=1e-13)


def test_gmm_log_prob_gradcheck_float64():
    rng = np.random.default_rng(6)
    x, weights, means, covs = random_gmm_problem(rng, n=6, k=3, d=3)
    x_t = torch.tensor(x, requires_grad=True)
    mu = torch.tensor(means, requires_grad=True)
    w = torch.tensor(weights)
    for covariance_type, c in (('full', covs), ('diag', np.stack([np.diag(s) for s in covs]))):
        prec = precisions_chol_of(c, covariance_type).requires_grad_(True)
        fn = lambda x_, mu_, prec_: gmm_math.gmm_log_prob(x_, w, mu_, prec_, covariance_type)
        assert torch.autograd.gradcheck(fn, (x_t, mu, prec))


def test_log_det_from_cholesky_is_minus_half_logdet_cov():
    rng = np.random.default_rng(7)
    _, _, _, covs = random_gmm_problem(rng, n=1, k=3, d=5)
    got = gmm_math.log_det_from_cholesky(precisions_chol_of(covs))
    np.testing.assert_allclose(got.numpy(), -0.5 * np.linalg.slogdet(covs)[1], rtol=1e-12, atol=1e-12)
    variances = rng.uniform(0.1, 2, size=(3, 5))
    got = gmm_math.log_det_from_cholesky(precisions_chol_of(variances, 'diag'), 'diag')
    np.testing.assert_allclose(got.numpy(), -0.5 * np.log(variances).sum(axis=1), rtol=1e-12)

#----------------------------------------------------------------------------
# Cholesky helpers.

def test_cholesky_precisions_is_upper_factor_of_inverse():
    rng = np.random.default_rng(8)
    _, _, _, covs = random_gmm_problem(rng, n=1, k=3, d=4)
    prec = precisions_chol_of(covs).numpy()
    np.testing.assert_array_equal(np.tril(prec, k=-1), 0)
    assert (np.diagonal(prec, axis1=1, axis2=2) > 0).all()
    np.testing.assert_allclose(prec @ prec.transpose(0, 2, 1), np.linalg.inv(covs), rtol=1e-10, atol=1e-12)


def test_cholesky_from_precisions_and_back():
    rng = np.random.default_rng(9)
    _, _, _, covs = random_gmm_problem(rng, n=1, k=3, d=4)
    from_precisions = gmm_math.cholesky_from_precisions(torch.tensor(np.linalg.inv(covs)))
    np.testing.assert_allclose(from_precisions.numpy(), precisions_chol_of(covs).numpy(), rtol=1e-10, atol=1e-12)
    back = gmm_math.covariances_from_cholesky(from_precisions)
    np.testing.assert_allclose(back.numpy(), covs, rtol=1e-10, atol=1e-12)
    variances = torch.tensor(rng.uniform(0.1, 2, size=(3, 4)))
    diag = gmm_math.cholesky_from_precisions(1 / variances, 'diag')
    np.testing.assert_allclose(gmm_math.covariances_from_cholesky(diag, 'diag').numpy(), variances.numpy(), rtol=1e-12)


def test_cholesky_precisions_singular_error_names_component_and_count():
    covs = torch.eye(3, dtype=torch.float64).repeat(3, 1, 1)
    covs[1] = 0
    counts = torch.tensor([10.0, 1.0, 5.0], dtype=torch.float64)
    with pytest.raises(ValueError, match=r'component 1 has a singular covariance \(it owns 1 of 16 samples\)\. '
                                         r'Lower n_components \(now 3\), raise reg_covar \(now 1e-06\), '
                                         r'or reduce the features with PCA\.$'):
        gmm_math.cholesky_precisions(covs, 'full', counts, 1e-6)
    with pytest.raises(ValueError, match=r'component 1 has a singular covariance.*or fit in float64\.$'):
        gmm_math.cholesky_precisions(covs.float(), 'full', counts, 1e-6)
    variances = torch.ones([3, 2], dtype=torch.float64)
    variances[2, 1] = 0
    with pytest.raises(ValueError, match=r'component 2 has a singular covariance'):
        gmm_math.cholesky_precisions(variances, 'diag')
    with pytest.raises(ValueError, match=r'component 0 has a singular covariance'):
        gmm_math.cholesky_precisions(torch.full([1, 2, 2], float('nan'), dtype=torch.float64))


def test_unknown_covariance_type_is_rejected():
    with pytest.raises(ValueError, match=r"covariance_type must be one of full, diag, got 'tied'"):
        gmm_math.log_det_from_cholesky(torch.ones([1, 2, 2]), 'tied')

#----------------------------------------------------------------------------
# M-step against explicit loops.

def reference_m_step(x, resp, reg_covar):
    counts = resp.sum(axis=0) + 10 * np.finfo(np.float64).eps
    means = np.stack([(resp[:, k:k + 1] * x).sum(axis=0) / counts[k] for k in range(resp.shape[1])])
    covs = []
    for k in range(resp.shape[1]):
        cov = sum(resp[n, k] * np.outer(x[n] - means[k], x[n] - means[k]) for n in range(len(x))) / counts[k]
        covs.append(cov + reg_covar * np.eye(x.shape[1]))
    return counts / counts.sum(), means, np.stack(covs), counts


def test_m_step_matches_loops():
    rng = np.random.default_rng(10)
    x = rng.normal(size=(30, 3))
    resp = rng.dirichlet(np.ones(4), size=30)
    ref = reference_m_step(x, resp, 1e-3)
    got = gmm_math.m_step(torch.tensor(x), torch.tensor(resp), 1e-3)
    for g, r in zip(got, ref):
        np.testing.assert_allclose(g.numpy(), r, rtol=1e-12, atol=1e-14)
    got_diag = gmm_math.m_step(torch.tensor(x), torch.tensor(resp), 1e-3, 'diag')
    np.testing.assert_allclose(got_diag[2].numpy(), np.diagonal(ref[2], axis1=1, axis2=2), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(got_diag[1].numpy(), ref[1], rtol=1e-12)


def test_m_step_empty_component_gets_regularised_identity():
    x = torch.tensor(np.random.default_rng(11).normal(size=(10, 2)))
    resp = torch.zeros([10, 2], dtype=torch.float64)
    resp[:, 0] = 1
    weights, means, covs, _ = gmm_math.m_step(x, resp, 1e-6)
    assert weights[1] < 1e-14 and torch.equal(means[1], torch.zeros(2, dtype=torch.float64))
    torch.testing.assert_close(covs[1], 1e-6 * torch.eye(2, dtype=torch.float64), rtol=0, atol=1e-20)

#----------------------------------------------------------------------------
# Chunking: results do not depend on the chunk budget, and no temporary of
# size [N, M, d] is built (checked on the meta device, which computes nothing).

def test_chunked_results_equal_unchunked():
    rng = np.random.default_rng(12)
    x, weights, means, covs = random_gmm_problem(rng, n=37, k=3, d=4)
    args = to_torch(x, weights, means) + [precisions_chol_of(covs)]
    whole = gmm_math.gmm_log_prob(*args)
    chunked = gmm_math.gmm_log_prob(*args, max_elems=3 * 4 * 5)  # 5 rows per chunk
    torch.testing.assert_close(chunked, whole, rtol=1e-14, atol=1e-14)
    resp = torch.tensor(rng.dirichlet(np.ones(3), size=37))
    for covariance_type in ('full', 'diag'):
        ref = gmm_math.m_step(args[0], resp, 1e-6, covariance_type)
        got = gmm_math.m_step(args[0], resp, 1e-6, covariance_type, max_elems=1)  # one row per chunk
        for g, r in zip(got, ref):
            torch.testing.assert_close(g, r, rtol=1e-13, atol=1e-14)


class _LargestAllocation(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.numel = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if not func.is_view:
            for t in torch.utils._pytree.tree_leaves(out):
                if isinstance(t, torch.Tensor):
                    self.numel = max(self.numel, t.numel())
        return out


@pytest.mark.parametrize('covariance_type', ['full', 'diag'])
def test_scoring_50k_by_256_by_16_stays_chunked(covariance_type):
    n, d, k = 50_000, 256, 16
    meta = dict(dtype=torch.float64, device='meta')
    x, weights, means = torch.empty([n, d], **meta), torch.empty([k], **meta), torch.empty([k, d], **meta)
    prec = torch.empty([k, d, d] if covariance_type == 'full' else [k, d], **meta)
    with _LargestAllocation() as track:
        log_norm, log_resp = gmm_math.estimate_log_resp(x, weights, means, prec, covariance_type)
        gmm_math.m_step(x, log_resp.exp(), 1e-6, covariance_type)
    assert log_norm.shape == (n,)
    assert track.numel <= max(gmm_math._CHUNK_ELEMS, n * d)  # never [N, M, d] = 204.8M elements
    assert track.numel < n * k * d // 10

#----------------------------------------------------------------------------
# Distances and k-means.

def test_squared_distances_and_nearest_centres_match_scipy():
    rng = np.random.default_rng(13)
    x, c = rng.normal(size=(25, 3)), rng.normal(size=(4, 3))
    ref = scipy.spatial.distance.cdist(x, c, 'sqeuclidean')
    got = gmm_math.squared_distances(torch.tensor(x), torch.tensor(c))
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-12, atol=1e-13)
    assert float(gmm_math.squared_distances(torch.tensor(x[:3]), torch.tensor(x[:3])).min()) >= 0
    np.testing.assert_array_equal(gmm_math.nearest_centres(torch.tensor(x), torch.tensor(c)).numpy(), ref.argmin(axis=1))


def _separated_clusters(seed, num_clusters=4, per_cluster=50, d=2):
    rng = np.random.default_rng(seed)
    centres = np.arange(num_clusters)[:, None] * 20.0 + np.zeros(d)
    x = np.concatenate([c + rng.normal(size=(per_cluster, d)) for c in centres])
    return torch.tensor(x), np.repeat(np.arange(num_clusters), per_cluster)


def test_kmeans_plusplus_seeds_are_spread_and_deterministic():
    x, truth = _separated_clusters(14)
    centres, indices = gmm_math.kmeans_plusplus(x, 4, torch.Generator().manual_seed(0))
    assert indices.dtype == torch.int64 and len(set(indices.tolist())) == 4
    torch.testing.assert_close(centres, x[indices])
    assert sorted(truth[indices.numpy()].tolist()) == [0, 1, 2, 3]  # one seed per well-separated cluster
    _, again = gmm_math.kmeans_plusplus(x, 4, torch.Generator().manual_seed(0))
    assert torch.equal(again, indices)
    others = [gmm_math.kmeans_plusplus(x, 4, torch.Generator().manual_seed(s))[1] for s in range(1, 4)]
    assert any(not torch.equal(o, indices) for o in others)


def test_kmeans_plusplus_rejects_too_many_clusters():
    with pytest.raises(ValueError, match=r'needs 1 <= num_clusters <= number of samples \(3\), got num_clusters=4'):
        gmm_math.kmeans_plusplus(torch.zeros([3, 2]), 4, torch.Generator())


def test_kmeans_lloyd_finds_cluster_means():
    x, truth = _separated_clusters(15)
    start = x[[170, 0, 120, 60]]  # one sample of each cluster, out of order
    centres, labels = gmm_math.kmeans_lloyd(x, start)
    ref = np.stack([x.numpy()[truth == k].mean(axis=0) for k in range(4)])
    order = centres[:, 0].argsort()
    np.testing.assert_allclose(centres[order].numpy(), ref, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(labels.numpy(), order.numpy()[truth])

#----------------------------------------------------------------------------
# Buffer resizing used by the estimators' load_state_dict().

def test_resize_buffers_for_state():
    module = torch.nn.Module()
    module.register_buffer('a', torch.zeros([0, 0], dtype=torch.float64))
    module.register_buffer('b', torch.zeros([0]))
    gmm_math.resize_buffers_for_state(module, {'p.a': torch.ones([2, 3]), 'p.b': torch.ones([2, 2])}, 'p.')
    assert module.a.shape == (2, 3) and module.a.dtype == torch.float64
    assert module.b.shape == (0,)  # different number of dims: left for load_state_dict to report

#----------------------------------------------------------------------------
