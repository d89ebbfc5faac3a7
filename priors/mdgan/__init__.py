"""The mode-regularised GAN and MDGAN (Che et al. 2017), `--prior=mdgan`: an encoder E trained jointly with G, the geometric and mode regularisers on G(E(x)) (Reg-GAN), or the manifold and diffusion steps with a second discriminator D2 (MDGAN).

Modules: `regularizers` (the loss terms as pure functions, with the paper's sign and weight fixes),
`networks` (E and D2 built from the run's D; the D-feature tap), `prior` (the `MDGANPrior` plugin),
`cli` (train.py's `--mdgan-*` options). Importing the package registers the prior. docs/mdgan.md has the
equations and the choices where the paper is silent or wrong.
"""

from priors.mdgan import prior  # noqa: F401  registers 'mdgan'
