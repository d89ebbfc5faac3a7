"""Plugin packages: packages outside the core that register what they add (metrics and their options, network modules that pickles refer to) when they are imported.

The core never names a plugin. It imports the modules declared as entry
points of the group `sg2ada.plugins` (each entry's value is a module name):

    [project.entry-points."sg2ada.plugins"]
    name = "package"

They are read from the installed distributions' metadata and, for a source
checkout that is used without installing it (or installed before the entry
was added), from the pyproject.toml at the top of this source tree; both
lists are joined. $SG2ADA_PLUGINS (comma-separated module names, empty =
none) replaces them.

Command-line entry points call import_plugins() once; torch_utils.persistence
imports the plugins when a pickle names a class it does not know.
"""

import functools
import importlib
import importlib.metadata
import os
import re

GROUP = 'sg2ada.plugins'
ENV = 'SG2ADA_PLUGINS'
_PYPROJECT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'pyproject.toml')

#----------------------------------------------------------------------------
# A plugin that is there but fails to import. The message names the plugin
# and how to run without it.

class PluginImportError(ImportError):
    pass

#----------------------------------------------------------------------------
# Module names of the plugins, in declaration order, without repeats.

def plugin_modules():
    env = os.environ.get(ENV)
    if env is not None:
        names = [name.strip() for name in env.split(',') if name.strip()]
    else:
        names = _declared_entries()
    return list(dict.fromkeys(names))

@functools.lru_cache(maxsize=None)   # read once per process
def _declared_entries():
    return tuple(_installed_entries() + _source_tree_entries())

def _installed_entries():
    try:
        eps = importlib.metadata.entry_points()
        eps = eps.select(group=GROUP) if hasattr(eps, 'select') else eps.get(GROUP, [])   # Python 3.10+ / 3.9
    except Exception:  # pylint: disable=broad-except  (broken metadata of an unrelated distribution)
        return []
    return [ep.value.split(':')[0].strip() for ep in eps]

def _source_tree_entries(path=_PYPROJECT):
    if not os.path.isfile(path):
        return []
    with open(path, encoding='utf-8') as f:
        text = f.read()
    try:
        import tomllib  # pylint: disable=import-outside-toplevel  (Python 3.11+)
    except ModuleNotFoundError:
        return _parse_entry_table(text)
    table = tomllib.loads(text).get('project', {}).get('entry-points', {}).get(GROUP, {})
    return [str(value).split(':')[0].strip() for value in table.values()]

# The `name = "module"` lines of our entry-point table (Python < 3.11, no tomllib).
def _parse_entry_table(text):
    names, inside = [], False
    for line in text.splitlines():
        line = line.split('#', 1)[0].strip()
        if line.startswith('['):
            inside = re.fullmatch(r'\[\s*project\.entry-points\.["\']?' + re.escape(GROUP) + r'["\']?\s*\]', line) is not None
        elif inside and '=' in line:
            names.append(line.split('=', 1)[1].strip().strip('"\'').split(':')[0].strip())
    return names

#----------------------------------------------------------------------------
# Import every plugin (Python caches imports: later calls are cheap). A plugin whose
# package is not there at all is skipped; one that fails to import raises
# PluginImportError. Returns the imported modules.

def import_plugins():
    modules = []
    for name in plugin_modules():
        try:
            modules.append(importlib.import_module(name))
        except ModuleNotFoundError as err:
            if err.name is not None and (name == err.name or name.startswith(err.name + '.')):
                continue  # the plugin itself is absent
            raise PluginImportError(f'Plugin "{name}" (entry point group {GROUP}) failed to import: {err}; fix it, '
                                    f'or run without it: {ENV}=<the other plugins, comma-separated>') from err
        except Exception as err:
            raise PluginImportError(f'Plugin "{name}" (entry point group {GROUP}) failed to import: {type(err).__name__}: '
                                    f'{err}; fix it, or run without it: {ENV}=<the other plugins, comma-separated>') from err
    return modules

#----------------------------------------------------------------------------
