"""Real-data priors that plug into StyleGAN2-ADA training through named seams (PriorGAN, Gu et al. 2020, and others).

The core (`training/`, `metrics/`, `torch_utils/`) never imports this package. `train.py` and
`calc_metrics.py` each `import priors` once; importing it runs the registrations below: feature
extractors, priors (`--prior=NAME`) and the prior metrics (`qs50k`, `dds50k`, ...).
"""

import importlib

# Submodules whose import registers something. Optional ones are skipped when absent so that a
# partial checkout still imports; every name listed here exists on main.
_REGISTERING_MODULES = ('features', 'registry', 'gmm_prior', 'metrics')

for _name in _REGISTERING_MODULES:
    try:
        importlib.import_module(f'{__name__}.{_name}')
    except ModuleNotFoundError as _err:
        if _err.name != f'{__name__}.{_name}':
            raise
del _name
