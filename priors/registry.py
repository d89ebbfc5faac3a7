"""The prior registry: `--prior=NAME` names a class registered with `@register_prior(NAME)`."""

from priors import base

#----------------------------------------------------------------------------

_priors = dict()  # name -> Prior subclass

# Class decorator: register a Prior subclass under `name` (sets cls.name).
def register_prior(name):
    if not isinstance(name, str) or not name or ',' in name:
        raise ValueError(f'Prior name must be a non-empty string without commas, got {name!r}')
    def decorator(cls):
        if name in _priors and _priors[name] is not cls:
            raise ValueError(f'Prior "{name}" is already registered by {_priors[name].__module__}.{_priors[name].__qualname__}')
        if not (isinstance(cls, type) and issubclass(cls, base.Prior)):
            raise TypeError(f'register_prior("{name}"): {cls!r} is not a subclass of priors.base.Prior')
        cls.name = name
        _priors[name] = cls
        return cls
    return decorator

# Names of the registered priors, sorted.
def list_priors():
    return sorted(_priors)

# The class registered under `name`.
def get_prior_class(name):
    if name not in _priors:
        raise ValueError(f'Unknown prior "{name}". Registered priors: {", ".join(list_priors())}')
    return _priors[name]

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
