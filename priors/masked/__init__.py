"""Masked / weighted multimodal latent prior (Goerttler & Kloft), `--prior=masked`: latents selected by D's score at
training and at sampling time. `prior` holds the selection (Def. 3-4) and the sample-time transform, `cli` the options."""

from priors.masked import prior  # noqa: F401  registers 'masked'
