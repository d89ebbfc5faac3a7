"""AugmentPipe against the official fixture: buffers, hyperparameters and bgc outputs at debug percentiles 0.3 / 0.7."""

import json
import os
import pickle

import numpy as np
import pytest
import torch

from training import augment

pytestmark = pytest.mark.fixtures

#----------------------------------------------------------------------------
# Helpers.

def load_ref(fixtures_dir):
    ref = np.load(os.path.join(fixtures_dir, 'official-tiny-ref.npz'), allow_pickle=False)
    meta = json.loads(str(ref['meta_json']))
    return ref, meta

def build_pipe(ref, meta):
    # Built the way train.py builds it: the preset kwargs, then the loop copies augment_p into p.
    pipe = augment.AugmentPipe(**meta['augment']['init_kwargs'])
    pipe.p.copy_(torch.as_tensor(ref['augment_p']))
    return pipe

def tolerance(meta):
    # Max abs diff the fixture README prescribes for every array (1e-4).
    return float(meta['tolerances']['default'])

def check_outputs(pipe, ref, atol):
    images = torch.as_tensor(ref['augment_in'])
    with torch.no_grad():
        for q, key in [(0.3, 'augment_out_debug03'), (0.7, 'augment_out_debug07')]:
            out = pipe(images, debug_percentile=q)
            assert out.shape == images.shape and out.dtype == torch.float32
            diff = np.abs(out.numpy() - ref[key]).max()
            assert diff <= atol, f'{key}: max abs diff {diff:.3g} > {atol}'

#----------------------------------------------------------------------------

def test_fixture_preset_is_bgc(fixtures_dir):
    _ref, meta = load_ref(fixtures_dir)
    assert meta['augment']['preset'] == 'bgc'
    assert meta['augment']['init_kwargs'] == augment.augpipe_specs['bgc']

def test_buffers_and_attributes_match(fixtures_dir):
    ref, meta = load_ref(fixtures_dir)
    pipe = build_pipe(ref, meta)
    assert [name for name, _ in pipe.named_buffers()] == meta['augment']['buffers']
    np.testing.assert_allclose(pipe.Hz_geom.numpy(), ref['augment_buf_Hz_geom'], rtol=0, atol=1e-7)
    np.testing.assert_allclose(pipe.Hz_fbank.numpy(), ref['augment_buf_Hz_fbank'], rtol=0, atol=1e-7)
    assert pipe.Hz_geom.dtype == torch.float32 and pipe.Hz_fbank.dtype == torch.float32
    assert float(pipe.p) == pytest.approx(meta['augment']['p'])
    for name, value in meta['augment']['attrs'].items():
        assert getattr(pipe, name) == value, name

def test_debug_outputs_match(fixtures_dir):
    ref, meta = load_ref(fixtures_dir)
    check_outputs(build_pipe(ref, meta), ref, tolerance(meta))

def test_debug_outputs_do_not_depend_on_seed(fixtures_dir):
    ref, meta = load_ref(fixtures_dir)
    pipe = build_pipe(ref, meta)
    images = torch.as_tensor(ref['augment_in'])
    torch.manual_seed(1)
    a = pipe(images, debug_percentile=0.3)
    torch.manual_seed(2)
    assert torch.equal(a, pipe(images, debug_percentile=0.3))

def test_pickle_round_trip_keeps_outputs(fixtures_dir):
    ref, meta = load_ref(fixtures_dir)
    pipe = pickle.loads(pickle.dumps(build_pipe(ref, meta)))
    assert type(pipe).__name__ == 'AugmentPipe'
    check_outputs(pipe, ref, tolerance(meta))

def test_loaded_from_official_pickle(fixtures_dir):
    legacy = pytest.importorskip('legacy')
    ref, meta = load_ref(fixtures_dir)
    with open(os.path.join(fixtures_dir, 'official-tiny.pkl'), 'rb') as f:
        data = legacy.load_network_pkl(f)
    pipe = data['augment_pipe']
    assert type(pipe).__name__ == 'AugmentPipe'
    assert float(pipe.p) == pytest.approx(meta['augment']['p'])
    assert dict(pipe.init_kwargs) == meta['augment']['init_kwargs']
    np.testing.assert_allclose(pipe.Hz_fbank.numpy(), ref['augment_buf_Hz_fbank'], rtol=0, atol=1e-7)
    check_outputs(pipe, ref, tolerance(meta))

#----------------------------------------------------------------------------
