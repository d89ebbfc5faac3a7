"""End-to-end tests of exact resume: N steps + resume + N steps equals 2N steps, bit for bit, on CPU."""

import pytest
import torch

import harness
from training import training_loop as training_loop_module

pytestmark = pytest.mark.slow

#----------------------------------------------------------------------------
# The harness's tiny run with ADA: batch 4 in 2 rounds of 2, a tick every 2
# steps. The lazy regularisation and ADA intervals (4, 3, 3) do not divide the
# 5 steps of the first half, so the resume must restore the step counter and
# ADA's pending statistics; the DataLoader worker of the first half prefetches
# ahead, so the sampler must be rewound.

def _tiny_kwargs(data_path, run_dir, num_steps, **overrides):
    augment = dict(harness.AUGMENT, scale=1, brightness=1)
    return harness.loop_config(data_path, run_dir, num_steps, augment_kwargs=augment, augment_p=0.2, ada_target=0.6, ada_interval=3,
                               ada_kimg=1, **overrides)


@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory):
    return harness.tiny_dataset(tmp_path_factory.mktemp('data') / 'tiny16.zip', num_images=24)


def _state(result):
    return harness.tensors(result, 'G', 'D', 'G_ema', 'augment_pipe')

#----------------------------------------------------------------------------

@pytest.fixture(scope='module')
def runs(tiny_data, tmp_path_factory):
    root = tmp_path_factory.mktemp('runs')
    full = training_loop_module.training_loop(**_tiny_kwargs(tiny_data, str(root / 'full'), 10))
    first = training_loop_module.training_loop(**_tiny_kwargs(tiny_data, str(root / 'first'), 5,
                                                              data_loader_kwargs=dict(num_workers=1, prefetch_factor=2)))
    snapshot = str(root / 'first' / 'network-snapshot-000000.pkl')
    second = training_loop_module.training_loop(**_tiny_kwargs(tiny_data, str(root / 'second'), 10, resume_pkl=snapshot))
    return dict(root=root, full=full, first=first, second=second, snapshot=snapshot)


def test_resumed_run_has_bit_identical_parameters(runs):
    full, second = _state(runs['full']), _state(runs['second'])
    assert harness.differing(full, second) == []
    assert runs['second'].cur_nimg == runs['full'].cur_nimg == 40
    assert runs['second'].cur_tick == runs['full'].cur_tick

    # The comparison is not vacuous: the halfway networks differ from the final ones.
    first = _state(runs['first'])
    assert not torch.equal(first['G.synthesis.b16.conv1.weight'], full['G.synthesis.b16.conv1.weight'])
    assert float(runs['full'].augment_pipe.p) not in (0, 0.2)  # ADA moved p


def test_resumed_run_writes_the_same_stats(runs):
    full = harness.read_stats(str(runs['root'] / 'full'))
    second = harness.read_stats(str(runs['root'] / 'second'))
    assert len(full) == 6 and len(second) == 3  # ticks 0-5; the resumed run logs ticks 3-5
    for line_full, line_second in zip(full[3:], second):
        assert line_second['Progress/tick']['mean'] == line_full['Progress/tick']['mean']
        assert line_second['Progress/kimg']['mean'] == line_full['Progress/kimg']['mean']
        assert line_second['Progress/augment']['mean'] == line_full['Progress/augment']['mean']
        # A statistic not reported during a tick repeats the previous tick's value, which a resumed run lacks.
        losses = [name for name in line_second if name.startswith('Loss/') and line_second[name]['num'] > 0]
        assert len(losses) >= 8
        for name in losses:
            assert line_second[name] == line_full[name], name
    assert {n for n in second[-1] if n.startswith('Loss/')} == {n for n in full[-1] if n.startswith('Loss/')}


def test_snapshot_layout_and_resume_state(runs):
    data = harness.load(runs['snapshot'])
    assert list(data) == ['training_set_kwargs', 'G', 'D', 'G_ema', 'augment_pipe', 'resume_state']
    state = data['resume_state']
    assert (state['cur_nimg'], state['cur_tick'], state['batch_idx'], state['num_gpus']) == (20, 3, 5, 1)
    assert set(state['optimizers']) == {'G', 'D'}
    assert state['ranks'][0]['sampler']['num_yielded'] == 20  # rewound past the worker's prefetch
    assert state['training_options']['total_kimg'] == pytest.approx(0.02)
    assert not data['G'].training and not any(p.requires_grad for p in data['G'].parameters())


def test_weights_only_resume_differs_and_says_so(runs, tiny_data, capsys):
    result = training_loop_module.training_loop(**_tiny_kwargs(tiny_data, str(runs['root'] / 'weights'), 7, resume_pkl=runs['snapshot'],
                                                               resume_exact=False, network_snapshot_ticks=None))
    out = capsys.readouterr().out
    assert 'Loading weights only (resume_exact=False)' in out
    assert result.cur_nimg == 28  # counters restart from 0
    assert not torch.equal(_state(result)['G.synthesis.b16.conv1.weight'], _state(runs['full'])['G.synthesis.b16.conv1.weight'])


def test_resume_past_total_kimg_is_refused(runs, tiny_data):
    with pytest.raises(ValueError, match=r'total_kimg=0.012: the snapshot is already at kimg 0.02; raise total_kimg'):
        training_loop_module.training_loop(**_tiny_kwargs(tiny_data, str(runs['root'] / 'refused'), 3, resume_pkl=runs['snapshot']))

#----------------------------------------------------------------------------
