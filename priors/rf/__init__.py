"""RFGAN (Bang & Shim 2018), `--prior=rf`: representative features from a pretrained, frozen denoising autoencoder, concatenated with D's own features.

Modules: `encoder` (the encoder shaped like D, and the frozen feature module D carries), `autoencoder`
(the denoising autoencoder: corruption, loss, training), `ae_file` (the trained autoencoder on disk,
built once and cached; `build_rf.py` builds it ahead), `prior` (the `RFPrior` plugin), `cli` (train.py's
`--rf-*` options). Importing the package registers the prior. docs/rf.md has the equations and the
choices where the paper is silent.
"""

from priors.rf import prior  # noqa: F401  registers 'rf'
