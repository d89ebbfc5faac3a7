"""PCA: a scikit-learn-like principal component analysis in torch, used to shrink features before the GMM (PriorGAN, Gu et al., Sec. 4.5: 98% of the variance)."""

import numpy as np
import torch

from torch_utils import persistence
from priors.gmm import gmm_math

#----------------------------------------------------------------------------

_CHUNK_ROWS = 8192   # Samples per chunk when accumulating the covariance.

#----------------------------------------------------------------------------
# Principal component analysis fitted from the float64 covariance of the
# samples (eigendecomposition of a d x d matrix, accumulated in chunks, so N
# can be large). __init__ stores hyperparameters; fit() fills the buffers.
# Component signs are fixed so that the largest-magnitude entry of each
# component is positive.

@persistence.persistent_class
class PCA(torch.nn.Module):
    def __init__(self,
        n_components = 0.98,    # Float in (0, 1]: keep the fewest components whose explained variance exceeds
                                # this fraction (1.0 = all); int: keep this many; None = keep all.
        whiten       = False,   # Divide the projections by the square roots of their variances.
    ):
        super().__init__()
        if isinstance(n_components, bool):
            raise ValueError(f'n_components must be a float in (0, 1], an int >= 1 or None, got {n_components!r}')
        if isinstance(n_components, (int, np.integer)):
            if n_components < 1:
                raise ValueError(f'n_components must be a float in (0, 1], an int >= 1 or None, got {n_components!r}')
            n_components = int(n_components)
        elif isinstance(n_components, (float, np.floating)):
            if not 0 < n_components <= 1:
                raise ValueError(f'n_components as a variance fraction must be in (0, 1], got {n_components!r}')
            n_components = float(n_components)
        elif n_components is not None:
            raise ValueError(f'n_components must be a float in (0, 1], an int >= 1 or None, got {n_components!r}')
        self.n_components = n_components
        self.whiten = bool(whiten)

        # Fitted state; the shapes are set by fit() or load_state_dict().
        self.register_buffer('mean_', torch.zeros([0], dtype=torch.float64))
        self.register_buffer('components_', torch.zeros([0, 0], dtype=torch.float64))
        self.register_buffer('explained_variance_', torch.zeros([0], dtype=torch.float64))
        self.register_buffer('explained_variance_ratio_', torch.zeros([0], dtype=torch.float64))
        self.register_buffer('singular_values_', torch.zeros([0], dtype=torch.float64))
        self.register_buffer('num_fit_samples', torch.tensor(0, dtype=torch.int64))  # 0 = not fitted.

    #------------------------------------------------------------------------

    def fit(self, X):
        """Fit on samples X ([N, d] tensor or array, N >= 2); returns self."""
        if isinstance(X, torch.Tensor):
            x = X.detach()
        else:
            x = torch.as_tensor(np.asarray(X))
        if x.ndim != 2:
            raise ValueError(f'PCA.fit(): expected samples of shape [N, d], got shape {list(x.shape)}')
        num_samples, num_features = x.shape
        if num_samples < 2 or num_features < 1:
            raise ValueError(f'PCA.fit(): needs at least 2 samples and 1 feature, got shape {list(x.shape)}')
        device = self.num_fit_samples.device
        x = x.to(device=device, dtype=torch.float64)
        if not bool(torch.isfinite(x).all()):
            raise ValueError('PCA.fit(): the samples contain NaN or infinite values')

        # Mean and unbiased covariance, accumulated chunk by chunk in float64.
        mean = x.mean(dim=0)
        cov = x.new_zeros([num_features, num_features])
        for start in range(0, num_samples, _CHUNK_ROWS):
            centred = x[start:start + _CHUNK_ROWS] - mean
            cov += centred.T @ centred
        cov /= num_samples - 1
        total_variance = float(cov.diagonal().sum())
        if not total_variance > 0:
            raise ValueError(f'PCA.fit(): the {num_samples} samples have zero variance; there is nothing to project')

        # Eigenpairs in decreasing order; at most min(N, d) are meaningful.
        eigvals, eigvecs = torch.linalg.eigh(cov)
        num_available = min(num_samples, num_features)
        eigvals = eigvals.flip(0)[:num_available].clamp(min=0)
        components = eigvecs.flip(1)[:, :num_available].T                    # [K, d]
        ratios = eigvals / total_variance

        # Number of components to keep.
        keep = self._num_to_keep(ratios, num_available)
        components = components[:keep]
        largest = components.abs().argmax(dim=1)
        signs = components.gather(1, largest[:, None]).sign()
        components = components * torch.where(signs == 0, torch.ones_like(signs), signs)

        # Store the fitted state.
        self.mean_ = mean
        self.components_ = components
        self.explained_variance_ = eigvals[:keep].clone()
        self.explained_variance_ratio_ = ratios[:keep].clone()
        self.singular_values_ = (eigvals[:keep] * (num_samples - 1)).sqrt()
        self.num_fit_samples = torch.tensor(num_samples, dtype=torch.int64, device=device)
        return self

    # The number of leading components to keep, from the hyperparameter.
    def _num_to_keep(self, ratios, num_available):
        if self.n_components is None:
            return num_available
        if isinstance(self.n_components, int):
            if self.n_components > num_available:
                raise ValueError(f'PCA(n_components={self.n_components}) needs at most min(n_samples, n_features) = '
                                 f'{num_available} components; lower n_components or pass a variance fraction')
            return self.n_components
        # Fewest leading components whose cumulative ratio exceeds the fraction (as scikit-learn).
        cumulative = ratios.cumsum(dim=0)
        target = torch.tensor([self.n_components], dtype=cumulative.dtype, device=cumulative.device)
        return min(int(torch.searchsorted(cumulative, target, right=True)) + 1, num_available)

    #------------------------------------------------------------------------

    @property
    def is_fitted(self):
        return int(self.num_fit_samples) > 0

    @property
    def n_components_(self):
        return int(self.components_.shape[0])

    @property
    def n_features_in_(self):
        return int(self.mean_.shape[0])

    def _check_input(self, X, where, num_features):
        if not self.is_fitted:
            raise ValueError(f'PCA.{where}(): the PCA is not fitted yet; call fit(features) first, '
                             f'or load_state_dict() the state of a fitted one')
        if not isinstance(X, torch.Tensor):
            X = torch.as_tensor(np.asarray(X))
        if X.ndim != 2 or X.shape[1] != num_features:
            raise ValueError(f'PCA.{where}(): expected shape [N, {num_features}], got {list(X.shape)}')
        return X

    # Scale of each projection: its standard deviation when whitening, else 1.
    def _scale(self):
        if not self.whiten:
            return None
        return self.explained_variance_.sqrt().clamp(min=torch.finfo(torch.float64).eps)

    def transform(self, X):
        """Project [N, d] samples onto the components: [N, n_components_].

        Differentiable with respect to a tensor X; the result has X's floating dtype (float32 for integer
        or array input) and lives on the module's device; computed in float64.
        """
        X = self._check_input(X, 'transform', self.n_features_in_)
        bad = ~torch.isfinite(X.detach()).all(dim=1) if X.is_floating_point() else None
        if bad is not None and bool(bad.any()):  # refused as in fit() (issue 15)
            raise ValueError(f'PCA.transform(): {int(bad.sum())} of {X.shape[0]} samples contain NaN or infinite values '
                             f'(first: row {int(bad.nonzero()[0, 0])})')
        out_dtype = X.dtype if X.is_floating_point() else torch.float32
        y = (X.to(device=self.mean_.device, dtype=torch.float64) - self.mean_) @ self.components_.T
        scale = self._scale()
        if scale is not None:
            y = y / scale
        return y.to(out_dtype)

    def inverse_transform(self, Y):
        """Map [N, n_components_] projections back to the feature space: [N, d]."""
        Y = self._check_input(Y, 'inverse_transform', self.n_components_)
        out_dtype = Y.dtype if Y.is_floating_point() else torch.float32
        y = Y.to(device=self.mean_.device, dtype=torch.float64)
        scale = self._scale()
        if scale is not None:
            y = y * scale
        return (y @ self.components_ + self.mean_).to(out_dtype)

    def fit_transform(self, X):
        return self.fit(X).transform(X)

    def forward(self, X):
        return self.transform(X)

    #------------------------------------------------------------------------
    # Loading a fitted state into an unfitted module resizes the buffers.

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        gmm_math.resize_buffers_for_state(self, state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self):
        fitted = f'fitted: {self.n_features_in_} -> {self.n_components_} dims' if self.is_fitted else 'not fitted'
        return f'n_components={self.n_components!r}, whiten={self.whiten}, {fitted}'

#----------------------------------------------------------------------------
