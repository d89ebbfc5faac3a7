"""P2GAN (Zhang et al. 2021), `--prior=posterior`: D outputs a Gaussian posterior; G is promoted with codes drawn from D(real) through posterior modules and AdaIN.

Modules: `posterior_math` (discrepancy Eq. 4-7, L_z Eq. 12, realness, AdaIN Eq. 11 as pure functions),
`modules` (the synthesis side module: posterior modules + AdaIN, stage flag, test-time factors), `prior`
(the `PosteriorPrior` plugin), `cli` (train.py's `--post-*` options). Importing the package registers the
prior. docs/posterior.md has the equations and the choices where the paper is silent.
"""

from priors.posterior import prior  # noqa: F401  registers 'posterior'
