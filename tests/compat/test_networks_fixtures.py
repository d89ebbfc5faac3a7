"""Compatibility of training/networks.py with networks built and pickled by the official StyleGAN2-ADA code (fixtures in ../shared/fixtures/sg2ada)."""
import io
import json
import os
import pickle

import numpy as np
import pytest
import torch

import dnnlib
from torch_utils import misc

pytestmark = pytest.mark.fixtures

TOLERANCE = 1e-4  # max abs difference, as the fixture README prescribes
NETWORK_CLASSES = {'G': 'training.networks.Generator', 'G_ema': 'training.networks.Generator', 'D': 'training.networks.Discriminator'}
OUTPUT_ARRAYS = ['ws_psi1', 'ws_psi07', 'img_const_psi1', 'img_const_psi07', 'img_none_psi1',
                 'synth_const_from_ws07', 'G_img_const_psi1', 'D_logits', 'D_logits_psi07']

#----------------------------------------------------------------------------
# Reading official snapshots without the project's loader: a restricted unpickler turns
# every persistent object into its meta dict, so we get plain parameter/buffer tensors.

_ALLOWED_GLOBALS = {
    ('collections', 'OrderedDict'),
    ('torch._utils', '_rebuild_tensor_v2'),
    ('torch._utils', '_rebuild_parameter'),
    ('torch.storage', '_load_from_bytes'),
    ('numpy', 'dtype'),
    ('numpy', 'ndarray'),
    ('numpy.core.multiarray', 'scalar'),
    ('numpy._core.multiarray', 'scalar'),
    ('numpy.core.multiarray', '_reconstruct'),
    ('numpy._core.multiarray', '_reconstruct'),
}


def _meta_passthrough(meta):
    return meta


class _StateUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) == ('torch_utils.persistence', '_reconstruct_persistent_obj'):
            return _meta_passthrough
        if (module, name) == ('dnnlib.util', 'EasyDict'):
            return dict
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f'test unpickler: global {module}.{name} is not on the allow list')


def _flat_tensors(meta, prefix=''):
    # Parameters and buffers of a pickled module tree, by dotted name.
    state = meta['state']
    tensors = {}
    for name, value in list(state['_parameters'].items()) + list(state['_buffers'].items()):
        if value is not None:
            tensors[prefix + name] = value
    for name, child in state['_modules'].items():
        if child is not None:
            tensors.update(_flat_tensors(child, f'{prefix}{name}.'))
    return tensors

#----------------------------------------------------------------------------
# Fixture data, loaded once per process.

_cache = {}


def _reference(fixtures_dir, name):
    key = ('ref', name)
    if key not in _cache:
        with np.load(os.path.join(fixtures_dir, f'{name}-ref.npz'), allow_pickle=False) as data:
            ref = {k: data[k] for k in data.files}
        ref['meta'] = json.loads(str(ref['meta_json']))
        _cache[key] = ref
    return _cache[key]


def _build(net_name, init_kwargs):
    # Build one of our networks exactly as train.py would: by class name from kwargs.
    net = dnnlib.util.construct_class_by_name(class_name=NETWORK_CLASSES[net_name], **init_kwargs)
    return net.eval().requires_grad_(False)


def _raw_official_networks(fixtures_dir):
    """G, D, G_ema of official-tiny.pkl: ours, built from the stored init_kwargs, with the pickled tensors copied in by name."""
    if 'raw' not in _cache:
        with open(os.path.join(fixtures_dir, 'official-tiny.pkl'), 'rb') as f:
            snapshot = _StateUnpickler(f).load()
        nets = {}
        for net_name in ['G', 'D', 'G_ema']:
            meta = snapshot[net_name]
            net = _build(net_name, meta['state']['_init_kwargs'])
            source = _flat_tensors(meta)
            ours = dict(misc.named_params_and_buffers(net))
            assert set(ours) == set(source), f'{net_name}: names differ: {sorted(set(ours) ^ set(source))}'
            with torch.no_grad():
                for name, tensor in ours.items():
                    assert tensor.shape == source[name].shape, name
                    tensor.copy_(source[name])
            nets[net_name] = net
        _cache['raw'] = nets
    return _cache['raw']


def _compute_outputs(nets, ref):
    # Every call listed in the fixture README, on the whole stored batch.
    G, D, G_ema = nets['G'], nets['D'], nets['G_ema']
    z = torch.from_numpy(ref['z'])
    c = torch.from_numpy(ref['c'])
    with torch.no_grad():
        return {
            'ws_psi1': G_ema.mapping(z, c, truncation_psi=1),
            'ws_psi07': G_ema.mapping(z, c, truncation_psi=0.7),
            'img_const_psi1': G_ema(z, c, truncation_psi=1, noise_mode='const'),
            'img_const_psi07': G_ema(z, c, truncation_psi=0.7, noise_mode='const'),
            'img_none_psi1': G_ema(z, c, truncation_psi=1, noise_mode='none'),
            'synth_const_from_ws07': G_ema.synthesis(torch.from_numpy(ref['ws_psi07']), noise_mode='const'),
            'G_img_const_psi1': G(z, c, truncation_psi=1, noise_mode='const'),
            'D_logits': D(torch.from_numpy(ref['img_const_psi1']), c),
            'D_logits_psi07': D(torch.from_numpy(ref['img_const_psi07']), c),
        }


def _max_diffs(nets, ref):
    outputs = _compute_outputs(nets, ref)
    diffs = {}
    for name in OUTPUT_ARRAYS:
        got = outputs[name].numpy()
        assert got.shape == ref[name].shape and got.dtype == np.float32, name
        diffs[name] = float(np.abs(got - ref[name]).max())
    return diffs


def _assert_layout(net, ref, prefix):
    # state_dict keys in order, their shapes, and which are parameters.
    state = net.state_dict()
    assert list(state.keys()) == list(ref[f'{prefix}_keys'])
    params = dict(net.named_parameters())
    for key, shape, is_param in zip(ref[f'{prefix}_keys'], ref[f'{prefix}_shapes'], ref[f'{prefix}_is_param']):
        expected = tuple(int(s) for s in str(shape).split(',')) if shape else ()
        assert tuple(state[key].shape) == expected, key
        assert (key in params) == bool(is_param), key

#----------------------------------------------------------------------------
# Our networks built from the official init_kwargs have the official layout.

@pytest.mark.parametrize('fixture', ['official-tiny', 'tf-tiny'])
def test_layout_from_init_kwargs(fixtures_dir, fixture):
    ref = _reference(fixtures_dir, fixture)
    meta = ref['meta']
    for net_name in ['G', 'G_ema', 'D']:
        net = _build(net_name, meta['init_kwargs'][net_name])
        _assert_layout(net, ref, 'D' if net_name == 'D' else 'G')
        for attr, value in meta['attrs']['D' if net_name == 'D' else 'G'].items():
            assert getattr(net, attr) == value, f'{net_name}.{attr}'
        assert dict(net.init_kwargs) == meta['init_kwargs'][net_name]


def test_official_snapshot_init_kwargs(fixtures_dir):
    # The pickled init_kwargs are the ones recorded in meta_json.
    ref = _reference(fixtures_dir, 'official-tiny')
    nets = _raw_official_networks(fixtures_dir)
    for net_name, net in nets.items():
        assert dict(net.init_kwargs) == ref['meta']['init_kwargs'][net_name]

def test_initialisation_order_matches_official(fixtures_dir):
    # With the official build seed our constructors draw the same random numbers in the same order:
    # the noise buffers (never perturbed by the fixture maker) are identical, and every parameter
    # with random init agrees with the pickled one up to the fixture's small perturbation.
    ref = _reference(fixtures_dir, 'official-tiny')
    official = _raw_official_networks(fixtures_dir)
    torch.manual_seed(ref['meta']['config']['build_seed'])
    ours = {name: _build(name, ref['meta']['init_kwargs'][name]) for name in ['G', 'D']}
    noise_keys = [k for k in ours['G'].state_dict() if k.endswith('noise_const')]
    assert len(noise_keys) == 7
    for key in noise_keys:
        assert torch.equal(ours['G'].state_dict()[key], official['G'].state_dict()[key]), key
    for name in ['G', 'D']:
        theirs = official[name].state_dict()
        for key, value in ours[name].state_dict().items():
            if value.ndim >= 2 and not key.endswith(('resample_filter', 'noise_const')):
                corr = torch.corrcoef(torch.stack([value.flatten(), theirs[key].flatten()]))[0, 1]
                assert corr > 0.9, f'{name}.{key}: correlation {corr:.3f}'

#----------------------------------------------------------------------------
# Outputs of our code, with the official weights, match the official outputs.

@pytest.mark.parametrize('array', OUTPUT_ARRAYS)
def test_official_outputs(fixtures_dir, array):
    if 'raw_diffs' not in _cache:
        _cache['raw_diffs'] = _max_diffs(_raw_official_networks(fixtures_dir), _reference(fixtures_dir, 'official-tiny'))
    assert _cache['raw_diffs'][array] <= TOLERANCE


def test_official_resume_path(fixtures_dir):
    # Resume: fresh networks from init_kwargs, weights copied with copy_params_and_buffers.
    ref = _reference(fixtures_dir, 'official-tiny')
    src = _raw_official_networks(fixtures_dir)
    fresh = {}
    for net_name, net in src.items():
        fresh[net_name] = _build(net_name, net.init_kwargs)
        misc.copy_params_and_buffers(net, fresh[net_name], require_all=True)
    diffs = _max_diffs(fresh, ref)
    assert max(diffs.values()) <= TOLERANCE, diffs


def test_official_outputs_detect_wrong_weights(fixtures_dir):
    # The comparison can fail: a small change to one noise strength moves the images beyond tolerance.
    ref = _reference(fixtures_dir, 'official-tiny')
    src = _raw_official_networks(fixtures_dir)
    G_ema = _build('G_ema', src['G_ema'].init_kwargs)
    misc.copy_params_and_buffers(src['G_ema'], G_ema, require_all=True)
    with torch.no_grad():
        G_ema.synthesis.b32.conv1.noise_strength.add_(0.05)
        img = G_ema(torch.from_numpy(ref['z']), torch.from_numpy(ref['c']), noise_mode='const').numpy()
    assert np.abs(img - ref['img_const_psi1']).max() > 10 * TOLERANCE

#----------------------------------------------------------------------------
# Through the project's loader (legacy.load_network_pkl), for both fixture pickles.

@pytest.mark.parametrize('fixture', ['official-tiny', 'tf-tiny'])
def test_legacy_loader_outputs(fixtures_dir, fixture):
    legacy = pytest.importorskip('legacy')
    ref = _reference(fixtures_dir, fixture)
    with open(os.path.join(fixtures_dir, f'{fixture}.pkl'), 'rb') as f:
        data = legacy.load_network_pkl(f)
    nets = {name: data[name] for name in ['G', 'D', 'G_ema']}
    for net_name, net in nets.items():
        assert type(net).__name__ == ('Discriminator' if net_name == 'D' else 'Generator')
        _assert_layout(net, ref, 'D' if net_name == 'D' else 'G')
    diffs = _max_diffs(nets, ref)
    assert max(diffs.values()) <= TOLERANCE, diffs

    # Resume path: fresh networks from init_kwargs plus copy_params_and_buffers.
    fresh = {}
    for net_name, net in nets.items():
        fresh[net_name] = _build(net_name, net.init_kwargs)
        misc.copy_params_and_buffers(net, fresh[net_name], require_all=True)
    diffs = _max_diffs(fresh, ref)
    assert max(diffs.values()) <= TOLERANCE, diffs

    # Snapshot round trip: pickle what was loaded and load it again.
    again = legacy.load_network_pkl(io.BytesIO(pickle.dumps(data)))
    diffs = _max_diffs({name: again[name] for name in ['G', 'D', 'G_ema']}, ref)
    assert max(diffs.values()) <= TOLERANCE, diffs

#----------------------------------------------------------------------------
