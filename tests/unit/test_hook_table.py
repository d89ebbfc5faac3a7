"""The hook table of docs/priors.md and the "which paper uses which hook" list of priors/base.py match the code:
for every hook of priors.base.Prior, the priors that override it (issue 19, item 8)."""

import os
import re

import pytest

import priors  # noqa: F401  registers the paper priors
from priors import base
from priors import registry

DOC = os.path.join(os.path.dirname(__file__), '..', '..', 'docs', 'priors.md')
PAPER_PRIORS = ('gmm', 'masked', 'mdgan', 'posterior', 'rf')
NOT_HOOKS = ('owns_head',)  # helpers of the base class, not hooks a prior overrides

#----------------------------------------------------------------------------

def _hooks():
    return [name for name, value in vars(base.Prior).items() if callable(value) and not name.startswith('_') and name not in NOT_HOOKS]

# {hook: set of paper priors whose class overrides it}.
def _users():
    users = {hook: set() for hook in _hooks()}
    for name in PAPER_PRIORS:
        cls = registry.get_prior_class(name)
        for hook in users:
            if getattr(cls, hook) is not getattr(base.Prior, hook):
                users[hook].add(name)
    return users

# The doc's table: [(hooks named in the first column, priors in "used by")].
def _doc_rows():
    with open(DOC, encoding='utf-8') as f:
        text = f.read()
    start = text.index('| hook | called by, when | returns / does | used by |')
    rows = []
    for line in text[start:].split('\n\n')[0].splitlines()[2:]:
        first, last = line.split(' | ')[0], line.rstrip(' |').split(' | ')[-1]
        hooks = re.findall(r'`(\w+)\(', first)
        used = re.sub(r'\([^)]*\)', '', last)
        names = set(PAPER_PRIORS) if used.strip() == 'all' else {n.strip() for n in used.split(',') if n.strip()}
        rows.append((hooks, names))
    return rows

#----------------------------------------------------------------------------

def test_the_doc_table_lists_every_hook_once():
    named = [hook for hooks, _names in _doc_rows() for hook in hooks]
    assert sorted(named) == sorted(_hooks())


def test_the_doc_table_says_which_priors_override_each_hook():
    users = _users()
    for hooks, names in _doc_rows():
        expected = set().union(*(users[hook] for hook in hooks))
        assert names == expected, f'{", ".join(hooks)}: the table says {sorted(names)}, the code overrides it in {sorted(expected)}'


@pytest.mark.parametrize('name', PAPER_PRIORS)
def test_the_base_docstring_lists_each_paper_s_hooks(name):
    block = base.__doc__.split('Which paper uses which hook')[1].split('\nComposition')[0]
    paragraphs = dict(re.findall(r'\n  (\w+) +(.*?)(?=\n  \w+ +|\Z)', block, re.S))
    mentioned = {hook for hook in _hooks() if re.search(rf'\b{hook}\b', paragraphs[name])}
    overridden = {hook for hook, users in _users().items() if name in users}
    assert mentioned == overridden, f'{name}: the docstring lists {sorted(mentioned - overridden)} too many, {sorted(overridden - mentioned)} missing'

#----------------------------------------------------------------------------
