"""Unit tests for torch_utils.misc: constants, shape checks, InfiniteSampler (order and resume), parameter copy, summaries, image conversion."""

import itertools

import numpy as np
import pytest
import torch

from torch_utils import misc

#----------------------------------------------------------------------------

def test_constant_is_cached_and_broadcast():
    a = misc.constant([1, 2], shape=[3, 2])
    assert a.shape == (3, 2) and a.dtype == torch.get_default_dtype() and a.is_contiguous()
    assert torch.equal(a, torch.tensor([[1., 2.]] * 3))
    assert misc.constant([1, 2], shape=[3, 2]) is a
    assert misc.constant([1, 2], shape=[3, 2], dtype=torch.float64) is not a
    assert misc.constant(np.float32(0.5)).item() == 0.5

#----------------------------------------------------------------------------

def test_assert_shape_messages():
    x = torch.zeros(2, 3, 4)
    misc.assert_shape(x, [2, None, 4])
    with pytest.raises(AssertionError, match=r'^Wrong number of dimensions: got 3, expected 2$'):
        misc.assert_shape(x, [2, 3])
    with pytest.raises(AssertionError, match=r'^Wrong size for dimension 1: got 3, expected 5$'):
        misc.assert_shape(x, [None, 5, 4])


def test_profiled_function_keeps_name_and_result():
    @misc.profiled_function
    def my_op(a, b=1):
        return a + b
    assert my_op.__name__ == 'my_op' and my_op(1, b=2) == 3


def test_suppress_tracer_warnings():
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        with misc.suppress_tracer_warnings():
            warnings.warn('hidden', torch.jit.TracerWarning)
        warnings.warn('shown', UserWarning)
    assert [str(w.message) for w in caught] == ['shown']

#----------------------------------------------------------------------------
# InfiniteSampler: the index order must be exactly the one defined in the
# spec (section 5); this generator is a direct transcription of that text.

def _spec_order(length, rank, num_replicas, shuffle, seed, window_size):
    order = np.arange(length)
    rnd = None
    window = 0
    if shuffle:
        rnd = np.random.RandomState(seed)
        rnd.shuffle(order)
        window = int(np.rint(order.size * window_size))
    idx = 0
    while True:
        i = idx % order.size
        if idx % num_replicas == rank:
            yield order[i]
        if window >= 2:
            j = (i - rnd.randint(window)) % order.size
            order[i], order[j] = order[j], order[i]
        idx += 1


@pytest.mark.parametrize('length, rank, num_replicas, shuffle, seed, window_size', [
    (10, 0, 1, True, 0, 0.5),
    (7, 1, 3, True, 123, 0.5),
    (7, 2, 3, True, 5, 1.0),
    (5, 0, 2, False, 0, 0.5),
    (9, 0, 1, True, 1, 0.0),
    (1, 0, 1, True, 0, 0.5),
])
def test_infinite_sampler_matches_spec_order(length, rank, num_replicas, shuffle, seed, window_size):
    sampler = misc.InfiniteSampler(list(range(length)), rank=rank, num_replicas=num_replicas,
                                   shuffle=shuffle, seed=seed, window_size=window_size)
    got = list(itertools.islice(iter(sampler), 60))
    ref = [int(v) for v in itertools.islice(_spec_order(length, rank, num_replicas, shuffle, seed, window_size), 60)]
    assert got == ref
    assert all(type(v) is int for v in got)


def test_infinite_sampler_ranks_partition_the_sequence():
    streams = [list(itertools.islice(misc.InfiniteSampler(range(11), rank=r, num_replicas=3, seed=4), 20)) for r in range(3)]
    merged = [streams[idx % 3][idx // 3] for idx in range(60)]
    assert merged == list(itertools.islice(misc.InfiniteSampler(range(11), seed=4), 60))


def test_infinite_sampler_validates_arguments():
    with pytest.raises(ValueError, match='dataset is empty'):
        misc.InfiniteSampler([])
    with pytest.raises(ValueError, match=r'rank must be in \[0, 1\], got 2'):
        misc.InfiniteSampler(range(3), rank=2, num_replicas=2)
    with pytest.raises(ValueError, match='window_size must be in'):
        misc.InfiniteSampler(range(3), window_size=1.5)


def test_infinite_sampler_works_in_dataloader():
    loader = torch.utils.data.DataLoader(list(range(6)), sampler=misc.InfiniteSampler(range(6), seed=3), batch_size=4)
    batch = next(iter(loader))
    ref = [int(v) for v in itertools.islice(_spec_order(6, 0, 1, True, 3, 0.5), 4)]
    assert batch.tolist() == ref


@pytest.mark.parametrize('rank, num_replicas, shuffle', [(0, 1, True), (1, 2, True), (0, 3, False)])
def test_infinite_sampler_resume_continues_exactly(rank, num_replicas, shuffle):
    make = lambda: misc.InfiniteSampler(range(13), rank=rank, num_replicas=num_replicas, shuffle=shuffle, seed=7)
    full = list(itertools.islice(iter(make()), 50))

    first = make()
    it = iter(first)
    head = [next(it) for _ in range(17)]
    state = first.state_dict()
    assert state['num_yielded'] == 17

    resumed = make()
    resumed.load_state_dict(state)
    tail = list(itertools.islice(iter(resumed), 33))
    assert head + tail == full
    assert resumed.state_dict()['num_yielded'] == 50


def test_infinite_sampler_state_is_shared_by_all_ranks():
    # State of rank 0 resumes rank 1 (and a different replica count) on the same global sequence.
    full = list(itertools.islice(misc.InfiniteSampler(range(9), seed=2), 40))
    r0 = misc.InfiniteSampler(range(9), rank=0, num_replicas=2, seed=2)
    it = iter(r0)
    for _ in range(5):
        next(it)
    state = r0.state_dict()
    r1 = misc.InfiniteSampler(range(9), rank=1, num_replicas=2, seed=2)
    r1.load_state_dict(state)
    assert list(itertools.islice(iter(r1), 5)) == full[11:21:2]
    single = misc.InfiniteSampler(range(9), seed=2)
    single.load_state_dict(state)
    assert list(itertools.islice(iter(single), 10)) == full[10:20]


def test_infinite_sampler_rewind_for_prefetched_indices():
    full = list(itertools.islice(misc.InfiniteSampler(range(100), seed=1), 9000))
    sampler = misc.InfiniteSampler(range(100), seed=1)
    it = iter(sampler)
    for _ in range(8000):
        next(it)
    state = sampler.state_dict(num_unused=300)
    assert state['num_yielded'] == 7700
    resumed = misc.InfiniteSampler(range(100), seed=1)
    resumed.load_state_dict(state)
    assert list(itertools.islice(iter(resumed), 1300)) == full[7700:9000]
    with pytest.raises(ValueError, match='num_unused must be in'):
        sampler.state_dict(num_unused=9000)


def test_infinite_sampler_state_round_trips_through_torch_save(tmp_path):
    sampler = misc.InfiniteSampler(range(20), seed=9)
    it = iter(sampler)
    head = [next(it) for _ in range(30)]
    torch.save(sampler.state_dict(), tmp_path / 's.pt')
    resumed = misc.InfiniteSampler(range(20), seed=9)
    resumed.load_state_dict(torch.load(tmp_path / 's.pt', weights_only=True))
    assert head + list(itertools.islice(iter(resumed), 10)) == list(itertools.islice(misc.InfiniteSampler(range(20), seed=9), 40))


def test_infinite_sampler_load_rejects_other_dataset_and_accepts_empty():
    sampler = misc.InfiniteSampler(range(20), seed=9)
    state = sampler.state_dict()
    with pytest.raises(ValueError, match=r'saved length=20 differs .* length=21'):
        misc.InfiniteSampler(range(21), seed=9).load_state_dict(state)
    with pytest.raises(ValueError, match='saved seed=9'):
        misc.InfiniteSampler(range(20), seed=8).load_state_dict(state)
    sampler.load_state_dict({})
    assert list(itertools.islice(iter(sampler), 5)) == list(itertools.islice(misc.InfiniteSampler(range(20), seed=9), 5))

#----------------------------------------------------------------------------

class _Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(3, 4)
        self.register_buffer('scale', torch.ones(2))

    def forward(self, x):
        return self.fc(x)


def test_params_and_buffers():
    net = _Tiny()
    assert len(misc.params_and_buffers(net)) == 3
    assert [name for name, _ in misc.named_params_and_buffers(net)] == ['fc.weight', 'fc.bias', 'scale']


def test_copy_params_and_buffers():
    src, dst = _Tiny(), _Tiny()
    src.scale.fill_(3)
    misc.copy_params_and_buffers(src, dst, require_all=True)
    assert torch.equal(dst.fc.weight, src.fc.weight) and torch.equal(dst.scale, src.scale)
    assert dst.fc.weight.requires_grad

    # Missing names: ignored unless require_all.
    partial = torch.nn.Module()
    partial.fc = torch.nn.Linear(3, 4)
    misc.copy_params_and_buffers(partial, dst)
    with pytest.raises(ValueError, match=r'"scale" of _Tiny has no counterpart in Module'):
        misc.copy_params_and_buffers(partial, dst, require_all=True)

    other = torch.nn.Module()
    other.fc = torch.nn.Linear(3, 5)
    with pytest.raises(ValueError, match=r'"fc.weight" has shape \[5, 3\]'):
        misc.copy_params_and_buffers(other, dst)


def test_ddp_sync_is_noop_for_plain_modules():
    net = _Tiny()
    with misc.ddp_sync(net, sync=False):
        net(torch.zeros(1, 3)).sum().backward()
    assert net.fc.weight.grad is not None

#----------------------------------------------------------------------------

class _TwoOut(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = torch.nn.Linear(4, 2)

    def forward(self, x):
        y = self.inner(x)
        return y, torch.cat([y, y], dim=1)


class _Outer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.pair = _TwoOut()
        self.register_buffer('offset', torch.zeros(3))

    def forward(self, x):
        a, b = self.pair(x)
        return a.sum(dim=1) + b.sum(dim=1)


def test_print_module_summary_rows(capsys):
    out = misc.print_module_summary(_Outer(), [torch.zeros(5, 4)])
    assert out.shape == (5,)
    lines = [line.split() for line in capsys.readouterr().out.strip().splitlines()]
    assert lines[0] == ['_Outer', 'Parameters', 'Buffers', 'Output', 'shape', 'Datatype']
    rows = {line[0]: line[1:] for line in lines[2:]}
    assert rows['pair.inner'] == ['10', '-', '[5,', '2]', 'float32']
    assert rows['pair:0'] == ['-', '-', '[5,', '2]', 'float32']
    assert rows['pair:1'] == ['-', '-', '[5,', '4]', 'float32']   # its own shape, not the first output's
    assert rows['<top-level>'] == ['-', '3', '[5]', 'float32']
    assert rows['Total'] == ['10', '3', '-', '-']
    assert list(rows) == ['pair.inner', 'pair:0', 'pair:1', '<top-level>', '---', 'Total']


def test_print_module_summary_skips_redundant_and_limits_nesting(capsys):
    net = torch.nn.Sequential(torch.nn.Sequential(torch.nn.Identity(), torch.nn.Linear(2, 2)))
    misc.print_module_summary(net, [torch.zeros(1, 2)], max_nesting=1)
    names = [line.split()[0] for line in capsys.readouterr().out.strip().splitlines()[2:-2]]
    assert names == ['0']   # depth-2 modules are not listed; <top-level> adds nothing new
    misc.print_module_summary(net, [torch.zeros(1, 2)], skip_redundant=False)
    names = [line.split()[0] for line in capsys.readouterr().out.strip().splitlines()[2:-2]]
    assert names == ['0.0', '0.1', '0', '<top-level>']

#----------------------------------------------------------------------------

def test_images_to_uint8_rounding_and_layout():
    img = torch.tensor([-1.5, -1.0, -0.001, 0.0, 0.5, 0.999, 1.0, 2.0]).reshape(1, 1, 2, 4).repeat(1, 3, 1, 1)
    out = misc.images_to_uint8(img)
    assert out.dtype == torch.uint8 and out.shape == (1, 2, 4, 3)
    assert out[0, :, :, 0].flatten().tolist() == [0, 0, 127, 128, 191, 255, 255, 255]
    with pytest.raises(ValueError, match=r'expected a \[N, C, H, W\] tensor, got a tensor of shape \[3, 4\]'):
        misc.images_to_uint8(torch.zeros(3, 4))


def test_uint8_to_images_round_trip():
    x = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16)
    img = misc.uint8_to_images(x)
    assert img.dtype == torch.float32 and img.min() == -1 and img.max() == 1
    assert torch.equal(misc.images_to_uint8(img).permute(0, 3, 1, 2), x)
    with pytest.raises(TypeError, match='expected uint8 pixels, got dtype torch.float32'):
        misc.uint8_to_images(img)


def test_rank_seed():
    assert misc.rank_seed(5, 0, 1) == 5
    assert [misc.rank_seed(5, r, 4) for r in range(4)] == [20, 21, 22, 23]
    with pytest.raises(ValueError, match=r'rank must be in \[0, 1\], got 2'):
        misc.rank_seed(0, 2, 2)

#----------------------------------------------------------------------------
