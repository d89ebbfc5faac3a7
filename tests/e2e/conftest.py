"""Fixtures of the end-to-end tests: one compute thread per process."""

import pytest
import torch

#----------------------------------------------------------------------------
# Tiny networks gain nothing from more threads, and spinning threads stall on
# a busy 2-core machine; restore the caller's setting afterwards.

@pytest.fixture(scope='module', autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
