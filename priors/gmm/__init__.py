"""PriorGAN (Gu et al. 2020), `--prior=gmm`: a GMM on deep features of the real images.

Modules: `gmm_math` and `mixture` (EM for a Gaussian mixture in torch, float64), `pca` (the projection
before the GMM), `prior_file` (the fitted prior on disk, built by `build_prior.py`), `prior` (the `GMMPrior`
plugin: quality loss Eq. 5, resampling Eq. 6-8), `metrics` (QS and DDS), `pictures` (component grid and
frequency chart for the run folder). Importing the package registers the prior and its metrics.
"""

from priors.gmm.mixture import GaussianMixture  # noqa: F401
from priors.gmm.pca import PCA                  # noqa: F401
from priors.gmm import prior                    # noqa: F401  registers 'gmm'
from priors.gmm import metrics                  # noqa: F401  registers qs50k, dds50k, qs10k, dds10k
