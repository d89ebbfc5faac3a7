"""Fixtures of the end-to-end tests: one compute thread per process, a private dnnlib cache, offline metrics.

The tiny config, datasets and run-folder helpers live in tests/harness.py."""

import os

import pytest
import torch

import dnnlib
import harness

#----------------------------------------------------------------------------
# Tiny networks gain nothing from more threads, and spinning threads stall on
# a busy 2-core machine; restore the caller's setting afterwards.

@pytest.fixture(scope='module', autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)

#----------------------------------------------------------------------------

@pytest.fixture
def cache_env(tmp_path, monkeypatch):
    """The test's tmp_path, with dnnlib's cache (prior files, autoencoders, datasets) in tmp_path/cache."""
    monkeypatch.setenv('DNNLIB_CACHE_DIR', os.path.join(str(tmp_path), 'cache'))
    monkeypatch.setattr(dnnlib.util, '_dnnlib_cache_dir', None)
    return tmp_path


@pytest.fixture(scope='module')
def module_cache_env(tmp_path_factory):
    """A folder for a module's shared runs, with dnnlib's cache in it (module-scoped cache_env)."""
    root = tmp_path_factory.mktemp('runs')
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv('DNNLIB_CACHE_DIR', os.path.join(str(root), 'cache'))
        mp.setattr(dnnlib.util, '_dnnlib_cache_dir', None)
        yield root


@pytest.fixture
def metric_env(tmp_path, monkeypatch):
    """A function (*metric_fns, seed=0) -> detector path that sets up offline metrics for this test (harness.offline_metrics)."""
    from metrics import metric_utils
    yield lambda *metrics, seed=0: harness.offline_metrics(monkeypatch, tmp_path, metrics, seed=seed)
    metric_utils.reset_detector_cache()

#----------------------------------------------------------------------------
