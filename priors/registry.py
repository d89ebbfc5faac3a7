"""The prior registry: `--prior=NAME` names a class registered with `@register_prior(NAME)`."""

import importlib

from priors import base

#----------------------------------------------------------------------------

_priors = dict()  # name -> Prior subclass
_cli_modules = dict()  # name -> module name of the prior's command-line options (see priors.cli), for priors that have some

# Class decorator: register a Prior subclass under `name` (sets cls.name). cli: the module name of the prior's
# command-line options (e.g. 'priors.gmm.cli'; see priors/cli.py for what it holds); None = the prior has none.
def register_prior(name, cli=None):
    if not isinstance(name, str) or not name or ',' in name:
        raise ValueError(f'Prior name must be a non-empty string without commas, got {name!r}')
    if cli is not None and not isinstance(cli, str):
        raise TypeError(f'register_prior("{name}"): cli must be a module name (str), got {cli!r}')
    def decorator(cls):
        if name in _priors and _priors[name] is not cls:
            raise ValueError(f'Prior "{name}" is already registered by {_priors[name].__module__}.{_priors[name].__qualname__}')
        if not (isinstance(cls, type) and issubclass(cls, base.Prior)):
            raise TypeError(f'register_prior("{name}"): {cls!r} is not a subclass of priors.base.Prior')
        cls.name = name
        _priors[name] = cls
        _cli_modules.pop(name, None)
        if cli is not None:
            _cli_modules[name] = cli
        return cls
    return decorator

# Remove a registered prior (tests register throw-away priors and remove them afterwards).
def unregister_prior(name):
    get_prior_class(name)
    del _priors[name]
    _cli_modules.pop(name, None)

# Names of the registered priors, sorted.
def list_priors():
    return sorted(_priors)

# The class registered under `name`.
def get_prior_class(name):
    if name not in _priors:
        raise ValueError(f'Unknown prior "{name}". Registered priors: {", ".join(list_priors())}')
    return _priors[name]

# The module of a prior's command-line options (imported now), or None when it has none.
def get_prior_cli(name):
    get_prior_class(name)
    return importlib.import_module(_cli_modules[name]) if name in _cli_modules else None

# A new prior instance (not set up). kwargs are the prior's hyperparameters.
def build_prior(name, **kwargs):
    cls = get_prior_class(name)
    try:
        return cls(**kwargs)
    except TypeError as err:
        if 'unexpected keyword argument' not in str(err):
            raise
        raise ValueError(f'Prior "{name}" does not take option {str(err).split("argument")[-1].strip()}') from err

#----------------------------------------------------------------------------

register_prior('none')(base.NoPrior)

#----------------------------------------------------------------------------
