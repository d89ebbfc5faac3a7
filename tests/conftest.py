"""Shared pytest fixtures and markers: repo on sys.path, fixture folder, GPU skip, tiny configs."""
import os
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

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
    """Generator kwargs for a 16x16 network small enough for CPU unit tests."""
    return dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3,
                mapping_kwargs=dict(num_layers=2),
                synthesis_kwargs=dict(channel_base=256, channel_max=32, num_fp16_res=0, conv_clamp=None))


@pytest.fixture
def tiny_D_kwargs():
    """Discriminator kwargs matching tiny_G_kwargs."""
    return dict(c_dim=0, img_resolution=16, img_channels=3, channel_base=256, channel_max=32,
                num_fp16_res=0, conv_clamp=None, epilogue_kwargs=dict(mbstd_group_size=2))

#----------------------------------------------------------------------------
