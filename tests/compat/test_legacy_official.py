"""Compatibility tests: the official-tiny.pkl snapshot loads (normal and safe mode) and matches the official outputs."""

import copy
import functools
import importlib
import inspect
import io
import json
import os
import pickle

import numpy as np
import pytest
import torch

import dnnlib
import legacy
from official_calls import TOL, check_official_outputs, max_diff
from torch_utils import misc

pytestmark = pytest.mark.fixtures

SPOT_CHECKS = ('ws_psi07', 'img_const_psi07', 'G_img_const_psi1', 'D_logits')  # G_ema, G and D, once each

#----------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _load_official(fixtures_dir):
    ref = dict(np.load(os.path.join(fixtures_dir, 'official-tiny-ref.npz'), allow_pickle=False))
    meta = json.loads(str(ref['meta_json']))
    loaded = dict()
    for mode in ('normal', 'safe'):
        with open(os.path.join(fixtures_dir, 'official-tiny.pkl'), 'rb') as f:
            loaded[mode] = legacy.load_network_pkl(f, safe=(mode == 'safe'))
    return ref, meta, loaded


@pytest.fixture
def official(fixtures_dir):
    """(reference arrays, meta, {'normal': snapshot, 'safe': snapshot}), loaded once per session."""
    return _load_official(fixtures_dir)


def _check_state_dict(module, keys, shapes, is_param):
    state = module.state_dict()
    assert list(state) == list(keys)
    assert [','.join(str(s) for s in t.shape) for t in state.values()] == list(shapes)
    param_names = {name for name, _ in module.named_parameters()}
    assert [int(k in param_names) for k in keys] == list(is_param)

#----------------------------------------------------------------------------

@pytest.mark.parametrize('mode', ['normal', 'safe'])
def test_snapshot_structure(official, mode):
    ref, meta, loaded = official
    data = loaded[mode]
    assert list(data) == meta['top_level_keys']
    assert data['training_set_kwargs'] == meta['training_set_kwargs']
    for key, class_name in meta['class_names'].items():
        assert type(data[key]).__name__ == class_name
    for key in ('G', 'D', 'G_ema'):
        net = data[key]
        assert not net.training and not any(p.requires_grad for p in net.parameters())
        assert net.init_kwargs == meta['init_kwargs'][key]
        assert list(net.init_args) == meta['init_args'][key]
        assert isinstance(net.init_kwargs.get('synthesis_kwargs', net.init_kwargs.get('epilogue_kwargs')),
                          dnnlib.EasyDict)
    for key in ('G', 'D'):
        for attr, value in meta['attrs'][key].items():
            assert getattr(data[key], attr) == value, (key, attr)
    assert data['G'].mapping.num_ws == meta['attrs']['G']['num_ws']
    _check_state_dict(data['G'], ref['G_keys'], ref['G_shapes'], ref['G_is_param'])
    _check_state_dict(data['G_ema'], ref['G_keys'], ref['G_shapes'], ref['G_is_param'])
    _check_state_dict(data['D'], ref['D_keys'], ref['D_shapes'], ref['D_is_param'])


@pytest.mark.parametrize('mode', ['normal', 'safe'])
def test_outputs_match_official(official, mode):
    ref, _meta, loaded = official
    data = loaded[mode]
    check_official_outputs(ref, data['G_ema'], data['G'], data['D'])


def test_safe_and_normal_mode_agree(official):
    _ref, _meta, loaded = official
    for key in ('G', 'D', 'G_ema', 'augment_pipe'):
        a, b = loaded['normal'][key].state_dict(), loaded['safe'][key].state_dict()
        assert list(a) == list(b)
        assert all(torch.equal(a[k], b[k]) for k in a), key


@pytest.mark.parametrize('mode', ['normal', 'safe'])
def test_augment_pipe(official, mode):
    ref, meta, loaded = official
    pipe = loaded[mode]['augment_pipe']
    assert type(pipe).__name__ == meta['augment']['class_name']
    assert pipe.init_kwargs == meta['augment']['init_kwargs']
    assert [name for name, _ in pipe.named_buffers()] == meta['augment']['buffers']
    assert pipe.p.dtype == torch.float32 and float(pipe.p) == meta['augment']['p']
    assert max_diff(pipe.p, ref['augment_p']) == 0
    assert max_diff(pipe.Hz_geom, ref['augment_buf_Hz_geom']) <= 1e-7
    assert max_diff(pipe.Hz_fbank, ref['augment_buf_Hz_fbank']) <= 1e-7
    for attr, value in meta['augment']['attrs'].items():
        got = getattr(pipe, attr)
        assert np.allclose(np.asarray(got, dtype=np.float64), np.asarray(value, dtype=np.float64)), attr
    images = torch.from_numpy(ref['augment_in'])
    with torch.no_grad():
        for percentile, key in ((0.3, 'augment_out_debug03'), (0.7, 'augment_out_debug07')):
            assert max_diff(pipe(images, debug_percentile=percentile), ref[key]) <= TOL, key


def test_repickle_and_reload(official):
    ref, _meta, loaded = official
    data = pickle.dumps(loaded['normal'])
    for module_name in ('training.networks', 'training.augment'):   # our source replaces the placeholder
        assert inspect.getsource(importlib.import_module(module_name)).encode() in data
    again = legacy.load_network_pkl(io.BytesIO(data), safe=True)
    check_official_outputs(ref, again['G_ema'], again['G'], again['D'], keys=SPOT_CHECKS)
    with torch.no_grad():
        out = again['augment_pipe'](torch.from_numpy(ref['augment_in']), debug_percentile=0.3)
    assert max_diff(out, ref['augment_out_debug03']) <= TOL


def test_rebuild_for_resume(official):
    ref, meta, loaded = official
    data = loaded['safe']
    rebuilt = dict()
    with torch.random.fork_rng(devices=[]):
        for key, class_name in (('G', 'Generator'), ('D', 'Discriminator'), ('G_ema', 'Generator')):
            kwargs = copy.deepcopy(meta['init_kwargs'][key])
            net = dnnlib.util.construct_class_by_name(class_name=f'training.networks.{class_name}', **kwargs)
            misc.copy_params_and_buffers(data[key], net, require_all=True)
            rebuilt[key] = net.eval().requires_grad_(False)
    check_official_outputs(ref, rebuilt['G_ema'], rebuilt['G'], rebuilt['D'], keys=SPOT_CHECKS)

#----------------------------------------------------------------------------
