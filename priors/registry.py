"""The prior registry: `--prior=NAME` names a class registered with `@register_prior(NAME)`.

Priors in this package register when `priors/__init__.py` imports their sub-package. A prior kept
elsewhere (any package on the Python path) registers when its module is named in the environment
variable `SG2ADA_PRIORS` (comma-separated module names, e.g. `SG2ADA_PRIORS=mine python train.py
--prior=mine`); those modules are imported the first time the registry is asked for a prior, so that
they can import `priors` themselves. One that fails to import is reported with the unknown-prior error
(and as a warning line), not raised: the other priors keep working.
"""

import importlib
import os
import sys

from priors import base

#----------------------------------------------------------------------------

PLUGINS_ENV = 'SG2ADA_PRIORS'

_priors = dict()  # name -> Prior subclass
_cli_modules = dict()  # name -> module name of the prior's command-line options (see priors.cli), for priors that have some
_plugins = dict()  # module named in SG2ADA_PRIORS -> None (imported) or the one line saying why it failed

# Class decorator: register a Prior subclass under `name` (sets cls.name). cli: the module name of the prior's
# command-line options (e.g. 'priors.gmm.cli'; see priors/cli.py for what it holds); None = the prior has none.
# The cli module is imported when it is first needed (get_prior_cli), not here.
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

# Import the modules named in SG2ADA_PRIORS (each once; the variable is read again on every call, so a test or a
# launcher may set it before the first --prior lookup).
def load_plugins():
    for module in [m.strip() for m in os.environ.get(PLUGINS_ENV, '').split(',') if m.strip()]:
        if module in _plugins:
            continue
        _plugins[module] = None
        try:
            importlib.import_module(module)
        except Exception as err: # pylint: disable=broad-except
            _plugins[module] = f'{PLUGINS_ENV}: module "{module}" cannot be imported ({type(err).__name__}: {err})'
            print(f'Warning: {_plugins[module]}; its priors are not registered', file=sys.stderr)

# '' or '; ' + why modules named in SG2ADA_PRIORS are missing, for the unknown-prior errors.
def plugin_errors():
    load_plugins()
    errors = [line for line in _plugins.values() if line is not None]
    return ''.join(f'; {line}' for line in errors)

# Names of the registered priors, sorted.
def list_priors():
    load_plugins()
    return sorted(_priors)

# The class registered under `name`.
def get_prior_class(name):
    load_plugins()
    if name not in _priors:
        raise ValueError(f'Unknown prior "{name}". Registered priors: {", ".join(list_priors())}{plugin_errors()}')
    return _priors[name]

# The module of a prior's command-line options, imported on first use; None when it has none. Raises ImportError
# naming the prior when the module is missing or fails to import.
def get_prior_cli(name):
    get_prior_class(name)
    if name not in _cli_modules:
        return None
    module = _cli_modules[name]
    try:
        return importlib.import_module(module)
    except Exception as err: # pylint: disable=broad-except
        raise ImportError(f'Prior "{name}": its options module "{module}" cannot be imported ({type(err).__name__}: {err}); '
                          f'fix it, or register the prior without cli=') from err

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
