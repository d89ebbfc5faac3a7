"""Unit tests for torch_utils.training_stats: moments, Collector intervals, keep_previous, name order, 2-process gloo reduction."""

import math
import os
import socket

import numpy as np
import pytest
import torch

from torch_utils import training_stats

#----------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def _clean_stats():
    training_stats.reset()
    yield
    training_stats.reset()

#----------------------------------------------------------------------------

def test_report_returns_value_and_collector_computes_moments():
    c = training_stats.Collector(regex='Loss/.*')
    value = torch.tensor([[1.0, 2.0], [3.0, 6.0]])
    assert training_stats.report('Loss/G', value) is value
    training_stats.report('Loss/G', 4)
    training_stats.report('Other', 100.0)
    c.update()
    data = np.array([1, 2, 3, 6, 4], dtype=np.float64)
    assert c.names() == ['Loss/G']
    assert c.num('Loss/G') == 5
    assert c.mean('Loss/G') == pytest.approx(data.mean())
    assert c.std('Loss/G') == pytest.approx(data.std())
    assert c['Loss/G'] == pytest.approx(data.mean())
    assert c.as_dict() == {'Loss/G': {'num': 5, 'mean': pytest.approx(data.mean()), 'std': pytest.approx(data.std())}}


def test_collector_ignores_earlier_reports_and_handles_empty():
    training_stats.report('a', [1.0, 2.0])
    c = training_stats.Collector()
    c.update()
    assert c.num('a') == 0 and math.isnan(c.mean('a')) and math.isnan(c.std('a'))
    training_stats.report('a', [5.0])
    c.update()
    assert c.num('a') == 1 and c.mean('a') == 5.0 and c.std('a') == 0.0


def test_names_in_first_report_order_including_empty_reports():
    training_stats.report('z', [])
    training_stats.report('a', 1)
    training_stats.report('m', torch.zeros(0))
    training_stats.report('z', 2)
    c = training_stats.Collector()
    assert c.names() == ['z', 'a', 'm']
    assert training_stats.Collector(regex='[am]').names() == ['a', 'm']


@pytest.mark.parametrize('keep_previous', [True, False])
def test_keep_previous(keep_previous):
    c = training_stats.Collector(keep_previous=keep_previous)
    training_stats.report('x', [1.0, 3.0])
    c.update()
    assert c.mean('x') == 2.0
    c.update()  # nothing new reported
    if keep_previous:
        assert c.num('x') == 2 and c.mean('x') == 2.0
    else:
        assert c.num('x') == 0 and math.isnan(c.mean('x'))
    training_stats.report('x', 10.0)
    c.update()
    assert c.num('x') == 1 and c.mean('x') == 10.0


def test_two_collectors_see_the_same_data_independently():
    c1 = training_stats.Collector()
    training_stats.report('x', 1.0)
    c1.update()
    c2 = training_stats.Collector()
    training_stats.report('x', 3.0)
    c1.update()
    c2.update()
    assert c1.mean('x') == 3.0 and c2.mean('x') == 3.0


def test_std_is_nan_for_non_finite_values_and_report0():
    c = training_stats.Collector()
    training_stats.report('x', [1.0, float('inf')])
    training_stats.report0('y', 7.0)
    c.update()
    assert math.isnan(c.std('x'))
    assert c.mean('y') == 7.0


def test_report0_on_other_rank_registers_name_only():
    training_stats.init_multiprocessing(rank=1, sync_device=None)
    c = training_stats.Collector()
    assert training_stats.report0('y', 5.0) == 5.0
    c.update()
    assert c.names() == ['y'] and c.num('y') == 0


def test_init_multiprocessing_after_sync_is_refused():
    training_stats.report('x', 1.0)
    training_stats.Collector().update()
    with pytest.raises(AssertionError, match='before the first Collector.update'):
        training_stats.init_multiprocessing(rank=0, sync_device=None)
    training_stats.reset()
    training_stats.init_multiprocessing(rank=0, sync_device=None)

#----------------------------------------------------------------------------
# Two processes reduce over gloo on CPU.

def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _ddp_worker(rank, world_size, port, result_dir):
    torch.set_num_threads(1)
    os.environ['MASTER_ADDR'] = '127.0.0.1'
    os.environ['MASTER_PORT'] = str(port)
    torch.distributed.init_process_group('gloo', rank=rank, world_size=world_size)
    try:
        training_stats.init_multiprocessing(rank=rank, sync_device=torch.device('cpu'))
        c = training_stats.Collector(keep_previous=True)
        training_stats.report('Loss/x', torch.tensor([1.0, 2.0]) + 10 * rank)  # rank0: 1,2  rank1: 11,12
        training_stats.report0('Progress/tick', 3.0)
        training_stats.report('Only/rank0', [5.0] if rank == 0 else [])
        c.update()
        first = {name: (c.num(name), c.mean(name), c.std(name)) for name in c.names()}
        c.update()  # nothing new: previous values kept
        second = c.num('Loss/x'), c.mean('Loss/x')
        torch.save(dict(first=first, second=second), os.path.join(result_dir, f'rank{rank}.pt'))
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.ddp
def test_two_process_gloo_reduction(tmp_path):
    torch.multiprocessing.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    data = np.array([1, 2, 11, 12], dtype=np.float64)
    for rank in range(2):
        result = torch.load(tmp_path / f'rank{rank}.pt', weights_only=True)
        first = result['first']
        assert list(first) == ['Loss/x', 'Progress/tick', 'Only/rank0']
        assert first['Loss/x'][0] == 4
        assert first['Loss/x'][1] == pytest.approx(data.mean())
        assert first['Loss/x'][2] == pytest.approx(data.std())
        assert first['Progress/tick'][:2] == (1, 3.0)
        assert first['Only/rank0'][:2] == (1, 5.0)
        assert result['second'] == (4, pytest.approx(data.mean()))

#----------------------------------------------------------------------------
