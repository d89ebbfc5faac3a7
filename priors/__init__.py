"""Real-data priors that plug into StyleGAN2-ADA training through named seams (PriorGAN, Gu et al. 2020, and others).

The core (`training/`, `metrics/`, `torch_utils/`, `dnnlib/`, `calc_metrics.py`) never names this package: it is a
plugin, declared in pyproject.toml (entry point group `sg2ada.plugins`) and imported by `dnnlib.plugins.import_plugins()`
(`calc_metrics.py`, and `torch_utils.persistence` for pickled modules); `train.py` imports it directly. Importing it
runs the registrations of its submodules:
feature extractors (`features`), priors for `--prior=NAME` (`registry`, one sub-package per paper:
`gmm`) and their metrics (`gmm`: `qs50k`, `dds50k`, `qs10k`, `dds10k`). `priors.cli` holds train.py's options.
"""

from priors import features   # noqa: F401  registers the feature extractors
from priors import registry   # noqa: F401  the prior registry (registers 'none')
from priors import gmm        # noqa: F401  registers 'gmm' and its metrics (QS, DDS)
from priors import mdgan      # noqa: F401  registers 'mdgan' (mode-regularised GAN, MDGAN)
from priors import rf         # noqa: F401  registers 'rf' (RFGAN's representative features)
from priors import masked     # noqa: F401  registers 'masked' (masked / weighted latent prior)
from priors import posterior  # noqa: F401  registers 'posterior' (P2GAN's posterior discriminator)
