"""GaussianMixture: a scikit-learn-like GMM estimator fitted by EM in torch, on any device (PriorGAN, Gu et al., Sec. 3.1, Eq. 3-4)."""

import math
import warnings

import numpy as np
import torch

from torch_utils import persistence
from priors.gmm import gmm_math

#----------------------------------------------------------------------------

_INIT_PARAMS = ('kmeans', 'k-means++')
_INIT_KEYS = ('weights', 'means', 'covariances', 'precisions')
_KMEANS_MAX_ITER = 100   # Lloyd iterations of the 'kmeans' initialisation (stops earlier once stable).

#----------------------------------------------------------------------------
# Samples given as a tensor or an array-like, checked to be 2-D, as a float64
# tensor on `device`. Gradients are cut; use GaussianMixture.log_prob() for them.

def _as_samples(X, device, where, num_features=None):
    if isinstance(X, torch.Tensor):
        x = X.detach()
    else:
        x = torch.as_tensor(np.asarray(X))
    if x.ndim != 2:
        raise ValueError(f'{where}: expected samples of shape [N, d], got shape {list(x.shape)}')
    if num_features is not None and x.shape[1] != num_features:
        raise ValueError(f'{where}: the samples have {x.shape[1]} features but the mixture was fitted on '
                         f'{num_features}; pass features from the same extractor (and PCA) as at fit time')
    return x.to(device=device, dtype=torch.float64)

#----------------------------------------------------------------------------
# A Gaussian mixture model with the scikit-learn GaussianMixture interface.
# __init__ stores hyperparameters; fit() fills the buffers, so a fitted model
# travels in state_dict() and pickles. All fitting maths runs in float64.

@persistence.persistent_class
class GaussianMixture(torch.nn.Module):
    def __init__(self,
        n_components    = 7,        # Number of Gaussian components M (7 is the paper's best on LSUN-cat, Table 5).
        covariance_type = 'full',   # 'full' or 'diag'.
        tol             = 1e-3,     # EM stops when the mean per-sample log-likelihood changes by less than this.
        reg_covar       = 1e-6,     # Added to the diagonal of every covariance.
        max_iter        = 100,      # Most EM iterations per initialisation.
        n_init          = 1,        # Initialisations to run; the one with the best lower bound is kept.
        init_params     = 'kmeans', # 'kmeans': k-means++ seeds refined by Lloyd; 'k-means++': the seeds only.
        random_state    = None,     # Seed of the initialisation (int); None = draw one from torch's global RNG.
    ):
        super().__init__()
        if isinstance(n_components, bool) or not isinstance(n_components, (int, np.integer)) or n_components < 1:
            raise ValueError(f'n_components must be an int >= 1, got {n_components!r}')
        gmm_math.check_covariance_type(covariance_type)
        if not tol >= 0:
            raise ValueError(f'tol must be >= 0, got {tol!r}')
        if not reg_covar >= 0:
            raise ValueError(f'reg_covar must be >= 0, got {reg_covar!r}')
        if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 0:
            raise ValueError(f'max_iter must be an int >= 0, got {max_iter!r}')
        if isinstance(n_init, bool) or not isinstance(n_init, (int, np.integer)) or n_init < 1:
            raise ValueError(f'n_init must be an int >= 1, got {n_init!r}')
        if init_params not in _INIT_PARAMS:
            raise ValueError(f'init_params must be one of {", ".join(_INIT_PARAMS)}, got {init_params!r}')
        if random_state is not None and (isinstance(random_state, bool) or not isinstance(random_state, (int, np.integer))):
            raise ValueError(f'random_state must be an int or None, got {random_state!r}')
        self.n_components = int(n_components)
        self.covariance_type = covariance_type
        self.tol = float(tol)
        self.reg_covar = float(reg_covar)
        self.max_iter = int(max_iter)
        self.n_init = int(n_init)
        self.init_params = init_params
        self.random_state = None if random_state is None else int(random_state)
        self.lower_bounds_ = []  # Lower bound after each EM iteration of the kept run (not in state_dict).

        # Fitted state; the shapes are set by fit() or load_state_dict().
        cov_shape = [0, 0, 0] if covariance_type == 'full' else [0, 0]
        self.register_buffer('weights_', torch.zeros([0], dtype=torch.float64))
        self.register_buffer('means_', torch.zeros([0, 0], dtype=torch.float64))
        self.register_buffer('covariances_', torch.zeros(cov_shape, dtype=torch.float64))
        self.register_buffer('precisions_cholesky_', torch.zeros(cov_shape, dtype=torch.float64))
        self.register_buffer('converged_', torch.tensor(False))
        self.register_buffer('n_iter_', torch.tensor(0, dtype=torch.int64))
        self.register_buffer('lower_bound_', torch.tensor(-math.inf, dtype=torch.float64))
        self.register_buffer('num_fit_samples', torch.tensor(0, dtype=torch.int64))  # 0 = not fitted.

    #------------------------------------------------------------------------
    # Fitting.

    def fit(self, X, init=None):
        """Fit the mixture to samples X ([N, d] tensor or array) by EM; returns self.

        `init` optionally fixes the starting point instead of the k-means initialisation (then n_init is
        ignored): a dict with 'means' [M, d] and optionally 'weights' [M] and either 'covariances' or
        'precisions' ([M, d, d] for 'full', [M, d] for 'diag'). What is missing is estimated from the hard
        assignment of every sample to its nearest given mean. Passing the same weights, means and precisions
        as scikit-learn's weights_init/means_init/precisions_init gives the same EM trajectory.
        """
        x = _as_samples(X, self.num_fit_samples.device, 'GaussianMixture.fit()')
        num_samples, num_features = x.shape
        if num_samples < self.n_components:
            raise ValueError(f'GaussianMixture.fit(): got {num_samples} samples for n_components={self.n_components}; '
                             f'pass at least as many samples as components or lower n_components')
        if num_features < 1:
            raise ValueError('GaussianMixture.fit(): the samples have no features (shape [N, 0])')
        if not bool(torch.isfinite(x).all()):
            raise ValueError('GaussianMixture.fit(): the samples contain NaN or infinite values')

        # Run EM from each initialisation; keep the run with the best lower bound.
        seed = self.random_state if self.random_state is not None else int(torch.randint(1 << 62, [1]))
        generator = torch.Generator().manual_seed(seed)
        best = None
        for _ in range(1 if init is not None else self.n_init):
            start = self._start_from_init(x, init) if init is not None else self._start_from_kmeans(x, generator)
            run = self._run_em(x, *start)
            if best is None or self.max_iter == 0 or run['lower_bound'] > best['lower_bound']:
                best = run
        if self.max_iter > 0 and not best['converged']:
            warnings.warn(f'GaussianMixture.fit(): EM did not converge within max_iter={self.max_iter} iterations '
                          f'(tol={self.tol:g}); raise max_iter or tol, or check for degenerate features',
                          stacklevel=2)

        # Store the fitted state in the buffers.
        device = x.device
        self.weights_, self.means_ = best['weights'], best['means']
        self.covariances_, self.precisions_cholesky_ = best['covariances'], best['precisions_chol']
        self.converged_ = torch.tensor(best['converged'], device=device)
        self.n_iter_ = torch.tensor(best['n_iter'], dtype=torch.int64, device=device)
        self.lower_bound_ = torch.tensor(best['lower_bound'], dtype=torch.float64, device=device)
        self.num_fit_samples = torch.tensor(num_samples, dtype=torch.int64, device=device)
        self.lower_bounds_ = best['history']
        return self

    # EM (Eq. 4) from one starting point. As in scikit-learn, the lower bound of
    # iteration i is the mean log-likelihood under the parameters that its
    # E-step used, and the parameters returned are those of the last M-step.
    def _run_em(self, x, weights, means, covariances, precisions_chol):
        lower_bound, converged, n_iter, history = -math.inf, False, 0, []
        for n_iter in range(1, self.max_iter + 1):
            previous = lower_bound
            log_norm, log_resp = gmm_math.estimate_log_resp(x, weights, means, precisions_chol, self.covariance_type)
            weights, means, covariances, counts = gmm_math.m_step(x, log_resp.exp(), self.reg_covar, self.covariance_type)
            precisions_chol = gmm_math.cholesky_precisions(covariances, self.covariance_type, counts, self.reg_covar)
            lower_bound = float(log_norm.mean())
            history.append(lower_bound)
            if abs(lower_bound - previous) < self.tol:
                converged = True
                break
        return dict(weights=weights, means=means, covariances=covariances, precisions_chol=precisions_chol,
                    converged=converged, n_iter=n_iter, lower_bound=lower_bound, history=history)

    # Parameters from a hard assignment of the samples to centres.
    def _start_from_labels(self, x, labels):
        resp = torch.nn.functional.one_hot(labels, self.n_components).to(x.dtype)
        weights, means, covariances, counts = gmm_math.m_step(x, resp, self.reg_covar, self.covariance_type)
        precisions_chol = gmm_math.cholesky_precisions(covariances, self.covariance_type, counts, self.reg_covar)
        return weights, means, covariances, precisions_chol

    # Default start: k-means++ seeds, optionally refined by Lloyd iterations.
    def _start_from_kmeans(self, x, generator):
        centres, _ = gmm_math.kmeans_plusplus(x, self.n_components, generator)
        if self.init_params == 'kmeans':
            _, labels = gmm_math.kmeans_lloyd(x, centres, max_iter=_KMEANS_MAX_ITER)
        else:
            labels = gmm_math.nearest_centres(x, centres)
        return self._start_from_labels(x, labels)

    # Start given by the caller (see fit()).
    def _start_from_init(self, x, init):
        if not isinstance(init, dict):
            raise TypeError(f'GaussianMixture.fit(): init must be a dict with keys among {", ".join(_INIT_KEYS)}, '
                            f'got {type(init).__name__}')
        unknown = sorted(set(init) - set(_INIT_KEYS))
        if unknown:
            raise ValueError(f'GaussianMixture.fit(): unknown init keys {unknown}; valid keys: {", ".join(_INIT_KEYS)}')
        if 'means' not in init:
            raise ValueError('GaussianMixture.fit(): init must contain "means" (shape [n_components, n_features])')
        if 'covariances' in init and 'precisions' in init:
            raise ValueError('GaussianMixture.fit(): init may contain "covariances" or "precisions", not both')
        num_components, num_features = self.n_components, x.shape[1]
        cov_shape = [num_components, num_features] + ([num_features] if self.covariance_type == 'full' else [])
        expected = dict(weights=[num_components], means=[num_components, num_features],
                        covariances=cov_shape, precisions=cov_shape)
        given = {}
        for key, value in init.items():
            value = torch.as_tensor(value.detach() if isinstance(value, torch.Tensor) else np.asarray(value))
            if list(value.shape) != expected[key]:
                raise ValueError(f'GaussianMixture.fit(): init["{key}"] has shape {list(value.shape)}, expected '
                                 f'{expected[key]} (n_components={num_components}, covariance_type='
                                 f'"{self.covariance_type}", {num_features} features)')
            given[key] = value.to(device=x.device, dtype=torch.float64)

        # Fill in what is missing from the nearest-mean assignment.
        means = given['means']
        if 'weights' not in given or ('covariances' not in given and 'precisions' not in given):
            weights, _, covariances, precisions_chol = self._start_from_labels(x, gmm_math.nearest_centres(x, means))
        if 'weights' in given:
            weights = given['weights']
            if not bool((weights >= 0).all()) or abs(float(weights.sum()) - 1) > 1e-8:
                raise ValueError(f'GaussianMixture.fit(): init["weights"] must be >= 0 and sum to 1, '
                                 f'got sum {float(weights.sum()):.10g}')
        if 'covariances' in given:
            covariances = given['covariances']
            precisions_chol = gmm_math.cholesky_precisions(covariances, self.covariance_type)
        if 'precisions' in given:
            precisions_chol = gmm_math.cholesky_from_precisions(given['precisions'], self.covariance_type)
            covariances = gmm_math.covariances_from_cholesky(precisions_chol, self.covariance_type)
        return weights, means, covariances, precisions_chol

    #------------------------------------------------------------------------
    # Scoring. Inputs are [N, d] tensors or arrays; outputs are tensors on the
    # module's device.

    @property
    def is_fitted(self):
        return int(self.num_fit_samples) > 0

    @property
    def n_features_in_(self):
        return int(self.means_.shape[1])

    @property
    def precisions_(self):
        """Precision matrices U U^T ([M, d, d] for 'full', [M, d] for 'diag'), float64."""
        if self.covariance_type == 'full':
            return self.precisions_cholesky_ @ self.precisions_cholesky_.transpose(-2, -1)
        return self.precisions_cholesky_.square()

    def _check_fitted(self, where):
        if not self.is_fitted:
            raise ValueError(f'GaussianMixture.{where}(): the mixture is not fitted yet; call fit(features) first, '
                             f'or load_state_dict() the state of a fitted one')

    def _params(self):
        return self.weights_, self.means_, self.precisions_cholesky_, self.covariance_type

    def log_prob(self, features):
        """Log-likelihood log p(features) of Eq. 3, differentiable with respect to `features`.

        Args:
            features: [N, d] float tensor (float32 from a feature extractor, or float64).

        Returns:
            [N] tensor in the dtype of `features`, on the module's device; computed in float64.
        """
        self._check_fitted('log_prob')
        if not isinstance(features, torch.Tensor):
            raise TypeError(f'GaussianMixture.log_prob(): features must be a torch.Tensor, got {type(features).__name__}')
        if features.ndim != 2 or features.shape[1] != self.n_features_in_:
            raise ValueError(f'GaussianMixture.log_prob(): features must have shape [N, {self.n_features_in_}], '
                             f'got {list(features.shape)}')
        out_dtype = features.dtype if features.is_floating_point() else torch.float32
        x = features.to(device=self.means_.device, dtype=torch.float64)
        return gmm_math.gmm_log_prob(x, *self._params()).to(out_dtype)

    def forward(self, features):
        return self.log_prob(features)

    def _samples(self, X, where):
        self._check_fitted(where)
        x = _as_samples(X, self.means_.device, f'GaussianMixture.{where}()', self.n_features_in_)
        # A NaN row would get a NaN score and an arbitrary component; refuse it, as fit() does (issue 15).
        bad = ~torch.isfinite(x).all(dim=1)
        if bool(bad.any()):
            raise ValueError(f'GaussianMixture.{where}(): {int(bad.sum())} of {x.shape[0]} samples contain NaN or infinite '
                             f'values (first: row {int(bad.nonzero()[0, 0])})')
        return x

    @torch.no_grad()
    def score_samples(self, X):
        """Per-sample log-likelihood: [N] float64 (no gradients)."""
        return gmm_math.gmm_log_prob(self._samples(X, 'score_samples'), *self._params())

    def score(self, X):
        """Mean per-sample log-likelihood, as a Python float."""
        return float(self.score_samples(X).mean())

    @torch.no_grad()
    def predict_proba(self, X):
        """Responsibilities p(m | x): [N, M] float64, rows summing to 1."""
        _, log_resp = gmm_math.estimate_log_resp(self._samples(X, 'predict_proba'), *self._params())
        return log_resp.exp()

    @torch.no_grad()
    def predict(self, X):
        """Component of largest responsibility: [N] int64."""
        _, log_resp = gmm_math.estimate_log_resp(self._samples(X, 'predict'), *self._params())
        return log_resp.argmax(dim=1)

    @torch.no_grad()
    def nearest_component(self, X):
        """The paper's grouping rule (Sec. 3.3): index of the nearest component mean in Euclidean distance, [N] int64."""
        return gmm_math.nearest_centres(self._samples(X, 'nearest_component'), self.means_)

    @torch.no_grad()
    def component_spread(self):
        """Squared spread of each component, trace(Sigma_m) / d (its mean variance per dimension): [M] float64."""
        self._check_fitted('component_spread')
        if self.covariance_type == 'full':
            return self.covariances_.diagonal(dim1=-2, dim2=-1).mean(dim=-1)
        return self.covariances_.mean(dim=-1)

    #------------------------------------------------------------------------
    # Loading a fitted state into an unfitted module resizes the buffers.

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        gmm_math.resize_buffers_for_state(self, state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self):
        fitted = f'fitted on {int(self.num_fit_samples)} samples of dim {self.n_features_in_}' if self.is_fitted else 'not fitted'
        return f'n_components={self.n_components}, covariance_type={self.covariance_type!r}, {fitted}'

#----------------------------------------------------------------------------
