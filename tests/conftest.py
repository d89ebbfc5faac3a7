"""Shared pytest fixtures and markers: repo on sys.path, fixture folder, GPU skip, tiny configs."""
import os
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
for _path in (REPO_ROOT, TESTS_DIR):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import harness  # noqa: E402  (tests/harness.py: the tiny config, datasets and run-folder helpers)

# Official-format pickles with reference outputs live beside the project, never inside it.
FIXTURES_DIR = os.environ.get('SG2ADA_FIXTURES', os.path.join(REPO_ROOT, '..', 'shared', 'fixtures', 'sg2ada'))

#----------------------------------------------------------------------------

def pytest_collection_modifyitems(config, items):
    import torch
    have_cuda = torch.cuda.is_available()
    have_fixtures = os.path.isdir(FIXTURES_DIR)
    skip_gpu = pytest.mark.skip(reason='needs a CUDA device')
    skip_fix = pytest.mark.skip(reason=f'fixtures folder not found: {FIXTURES_DIR}')
    for item in items:
        if 'gpu' in item.keywords and not have_cuda:
            item.add_marker(skip_gpu)
        if 'fixtures' in item.keywords and not have_fixtures:
            item.add_marker(skip_fix)

#----------------------------------------------------------------------------

@pytest.fixture
def fixtures_dir():
    """Path of ../shared/fixtures/sg2ada; skips the test when it is absent."""
    if not os.path.isdir(FIXTURES_DIR):
        pytest.skip(f'fixtures folder not found: {FIXTURES_DIR}')
    return FIXTURES_DIR

#----------------------------------------------------------------------------

@pytest.fixture
def tiny_G_kwargs():
    """Generator kwargs for a 16x16 network small enough for CPU unit tests (tests/harness.py)."""
    return harness.tiny_G_kwargs()


@pytest.fixture
def tiny_D_kwargs():
    """Discriminator kwargs matching tiny_G_kwargs."""
    return harness.tiny_D_kwargs()

#----------------------------------------------------------------------------
