"""Compatibility tests: tf-tiny.pkl (TensorFlow StyleGAN2 format) converts to networks matching the official converter."""

import functools
import io
import json
import os
import pickle

import numpy as np
import pytest
import torch

import legacy
from official_calls import check_official_outputs
from torch_utils import misc

pytestmark = pytest.mark.fixtures

SPOT_CHECKS = ('ws_psi07', 'img_const_psi07', 'G_img_const_psi1', 'D_logits')  # G_ema, G and D, once each

#----------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _load_tf(fixtures_dir):
    ref = dict(np.load(os.path.join(fixtures_dir, 'tf-tiny-ref.npz'), allow_pickle=False))
    meta = json.loads(str(ref['meta_json']))
    loaded = dict()
    for mode in ('normal', 'safe'):
        with open(os.path.join(fixtures_dir, 'tf-tiny.pkl'), 'rb') as f:
            loaded[mode] = legacy.load_network_pkl(f, safe=(mode == 'safe'))
    return ref, meta, loaded


@pytest.fixture
def tf_tiny(fixtures_dir):
    """(reference arrays, meta, {'normal': snapshot, 'safe': snapshot}), converted once per session."""
    return _load_tf(fixtures_dir)


@pytest.fixture
def tf_stubs(fixtures_dir):
    """The raw (G, D, Gs) TensorFlow network stubs of tf-tiny.pkl, freshly read."""
    with open(os.path.join(fixtures_dir, 'tf-tiny.pkl'), 'rb') as f:
        return legacy._LegacyUnpickler(f).load()


def _set_variables(stub, variables):
    stub.__dict__['variables'] = list(variables.items())

#----------------------------------------------------------------------------

@pytest.mark.parametrize('mode', ['normal', 'safe'])
def test_converted_structure(tf_tiny, mode):
    ref, meta, loaded = tf_tiny
    data = loaded[mode]
    assert sorted(data) == sorted(meta['top_level_keys'])
    assert data['training_set_kwargs'] is None and data['augment_pipe'] is None
    for key in ('G', 'D', 'G_ema'):
        net = data[key]
        assert type(net).__name__ == meta['class_names'][key]
        assert not net.training and not any(p.requires_grad for p in net.parameters())
        assert net.init_kwargs == meta['init_kwargs'][key]
        assert list(net.init_args) == meta['init_args'][key]
    for key in ('G', 'D'):
        for attr, value in meta['attrs'][key].items():
            assert getattr(data[key], attr) == value, (key, attr)
    for key, prefix in (('G', 'G'), ('G_ema', 'G'), ('D', 'D')):
        state = data[key].state_dict()
        assert list(state) == list(ref[f'{prefix}_keys'])
        assert [','.join(str(s) for s in t.shape) for t in state.values()] == list(ref[f'{prefix}_shapes'])


@pytest.mark.parametrize('mode', ['normal', 'safe'])
def test_outputs_match_official(tf_tiny, mode):
    ref, _meta, loaded = tf_tiny
    data = loaded[mode]
    check_official_outputs(ref, data['G_ema'], data['G'], data['D'])


def test_every_tf_variable_is_used_once(tf_tiny):
    _ref, meta, loaded = tf_tiny
    expected = {'dlatent_avg'}
    expected |= {f'mapping/{name}' for name, _ in meta['tf_variables']['G_mapping']}
    expected |= {f'synthesis/{name}' for name, _ in meta['tf_variables']['G_synthesis']}
    used = [legacy._generator_tf_source(name) for name, _ in misc.named_params_and_buffers(loaded['normal']['G'])]
    used = [source[0] for source in used if source is not None]
    assert sorted(used) == sorted(expected)
    used = [legacy._discriminator_tf_source(name) for name, _ in misc.named_params_and_buffers(loaded['normal']['D'])]
    used = [source[0] for source in used if source is not None]
    assert sorted(used) == sorted(name for name, _ in meta['tf_variables']['D'])


def test_repickle_and_reload(tf_tiny):
    ref, _meta, loaded = tf_tiny
    again = legacy.load_network_pkl(io.BytesIO(pickle.dumps(loaded['normal'])), safe=True)
    check_official_outputs(ref, again['G_ema'], again['G'], again['D'], keys=SPOT_CHECKS)

#----------------------------------------------------------------------------
# Progressive-growing TF networks name their RGB layers per level of detail.

def test_torgb_lod_variables_select_orig_architecture(tf_stubs):
    tf_Gs = tf_stubs[2]
    synthesis = tf_Gs.components['synthesis']
    variables = dict(synthesis.variables)
    for res, lod in ((4, 3), (8, 2), (16, 1), (32, 0)):
        for leaf in ('weight', 'mod_weight', 'mod_bias', 'bias'):
            variables[f'ToRGB_lod{lod}/{leaf}'] = variables.pop(f'{res}x{res}/ToRGB/{leaf}')
    _set_variables(synthesis, variables)

    G = legacy.convert_tf_generator(tf_Gs)
    assert G.init_kwargs.synthesis_kwargs.architecture == 'orig'
    assert not hasattr(G.synthesis.b16, 'torgb')
    expected = variables['ToRGB_lod0/weight'].transpose(3, 2, 0, 1)
    assert np.array_equal(G.synthesis.b32.torgb.weight.numpy(), expected)
    assert np.array_equal(G.synthesis.b32.torgb.affine.bias.numpy(), variables['ToRGB_lod0/mod_bias'] + 1)
    with torch.no_grad():
        img = G(torch.zeros([2, G.z_dim]), torch.zeros([2, 0]), noise_mode='const')
    assert img.shape == (2, 3, 32, 32) and torch.isfinite(img).all()


def test_fromrgb_lod_variables_select_orig_architecture(tf_stubs):
    tf_D = tf_stubs[1]
    variables = dict(tf_D.variables)
    for leaf in ('weight', 'bias'):
        variables[f'FromRGB_lod0/{leaf}'] = variables.pop(f'32x32/FromRGB/{leaf}')
    _set_variables(tf_D, variables)

    D = legacy.convert_tf_discriminator(tf_D)
    assert D.init_kwargs.architecture == 'orig'
    assert np.array_equal(D.b32.fromrgb.weight.numpy(), variables['FromRGB_lod0/weight'].transpose(3, 2, 0, 1))
    with torch.no_grad():
        logits = D(torch.zeros([2, 3, 32, 32]), torch.zeros([2, 0]))
    assert logits.shape == (2, 1)

#----------------------------------------------------------------------------
# Error messages.

def test_conversion_errors(tf_stubs):
    tf_G, tf_D, _tf_Gs = tf_stubs
    tf_G.__dict__['static_kwargs'] = dict(tf_G.static_kwargs, fancy_option=3)
    with pytest.raises(ValueError, match=r'unknown TensorFlow generator kwarg "fancy_option"'):
        legacy.convert_tf_generator(tf_G)
    tf_D.__dict__['version'] = 3
    with pytest.raises(ValueError, match=r'TensorFlow discriminator pickle version 3 is too old'):
        legacy.convert_tf_discriminator(tf_D)
    tf_D.__dict__['version'] = 4
    _set_variables(tf_D, {k: v for k, v in tf_D.variables if k != 'Output/bias'})
    with pytest.raises(ValueError, match=r'TensorFlow discriminator has no variable "Output/bias", needed for "b4.out.bias"'):
        legacy.convert_tf_discriminator(tf_D)


def test_conversion_error_names_the_file(tf_stubs):
    tf_stubs[0].__dict__['static_kwargs'] = dict(tf_stubs[0].static_kwargs, fancy_option=3)
    f = io.BytesIO(pickle.dumps(tf_stubs))
    f.name = 'old.pkl'
    with pytest.raises(legacy.NetworkPickleError, match=r'^old\.pkl: cannot convert the TensorFlow pickle: unknown'):
        legacy.load_network_pkl(f)

#----------------------------------------------------------------------------
