"""Unit tests for legacy.load_network_pkl: safe (allowlist) mode, hostile pickles, error messages, CLI."""

import copy
import io
import os
import pickle
import re
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import legacy
from torch_utils import persistence

#----------------------------------------------------------------------------

@pytest.fixture
def snapshot(tiny_G_kwargs, tiny_D_kwargs):
    """A tiny training-snapshot dict laid out like the training loop's."""
    networks = pytest.importorskip('training.networks')
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        G = networks.Generator(**tiny_G_kwargs).eval().requires_grad_(False)
        D = networks.Discriminator(**tiny_D_kwargs).eval().requires_grad_(False)
        with torch.no_grad():
            for p in list(G.parameters()) + list(D.parameters()):
                p.add_(torch.randn_like(p) * 0.1)
    return dict(training_set_kwargs=dict(class_name='training.dataset.ImageFolderDataset', path='x.zip'),
                G=G, D=D, G_ema=copy.deepcopy(G), augment_pipe=None)


def _load_bytes(data, **kwargs):
    f = io.BytesIO(data)
    f.name = 'test.pkl'
    return legacy.load_network_pkl(f, **kwargs)


def _outputs(data):
    G, D = data['G_ema'], data['D']
    z = torch.randn([4, G.z_dim], generator=torch.Generator().manual_seed(1))
    c = torch.zeros([4, G.c_dim])
    with torch.no_grad():
        img = G(z, c, truncation_psi=0.5, noise_mode='const')
        return img, D(img, c)


class Hostile:
    """Pickles as a call of os.system that creates a file."""
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        cmd = f'"{sys.executable}" -c "open(r\'{self.path}\', \'w\').close()"'
        return (os.system, (cmd,))


class ForgedPersistent:
    """Pickles as a persistent object with the given meta dict."""
    def __init__(self, meta):
        self.meta = meta

    def __reduce__(self):
        return (persistence._reconstruct_persistent_obj, (self.meta,))


class ForgedStorage:
    """Pickles as a tensor storage whose torch.save blob holds a hostile object."""
    def __init__(self, path):
        buf = io.BytesIO()
        torch.save(dict(x=Hostile(path)), buf)
        self.blob = buf.getvalue()

    def __reduce__(self):
        return (torch.storage._load_from_bytes, (self.blob,))

#----------------------------------------------------------------------------

def test_own_snapshot_loads_in_both_modes(snapshot):
    data = pickle.dumps(snapshot)
    normal = _load_bytes(data)
    safe = _load_bytes(data, safe=True)
    assert list(normal) == list(snapshot) == list(safe)
    assert safe['training_set_kwargs'] == snapshot['training_set_kwargs']
    for a, b, c in zip(_outputs(snapshot), _outputs(normal), _outputs(safe)):
        assert torch.equal(a, b) and torch.equal(a, c)


def test_missing_optional_keys_are_filled(snapshot):
    data = pickle.dumps(dict(G=snapshot['G'], D=snapshot['D'], G_ema=snapshot['G_ema']))
    loaded = _load_bytes(data, safe=True)
    assert loaded['training_set_kwargs'] is None and loaded['augment_pipe'] is None


@pytest.mark.parametrize('safe', [False, True])
def test_loading_keeps_global_rng_state(snapshot, safe):
    data = pickle.dumps(snapshot)
    torch_state = torch.get_rng_state()
    _load_bytes(data, safe=safe, force_fp16=True)
    assert torch.equal(torch_state, torch.get_rng_state())


def test_force_fp16(snapshot):
    loaded = _load_bytes(pickle.dumps(snapshot), force_fp16=True)
    assert loaded['G'].init_kwargs.synthesis_kwargs.num_fp16_res == 4
    assert loaded['G_ema'].init_kwargs.synthesis_kwargs.conv_clamp == 256
    assert loaded['D'].init_kwargs.num_fp16_res == 4 and loaded['D'].init_kwargs.conv_clamp == 256
    for key in ('G', 'D', 'G_ema'):
        assert not loaded[key].training
        old, new = snapshot[key].state_dict(), loaded[key].state_dict()
        assert list(old) == list(new)
        assert all(torch.equal(old[k], new[k]) for k in old)

#----------------------------------------------------------------------------
# Hostile content is refused before anything runs.

def test_hostile_pickle_is_refused(tmp_path, snapshot):
    target = tmp_path / 'pwned'
    data = pickle.dumps(dict(snapshot, training_set_kwargs=dict(path=Hostile(str(target)))))
    refused = re.escape(f'{os.system.__module__}.system')
    with pytest.raises(legacy.NetworkPickleError, match=rf'^test\.pkl: refusing the global "{refused}".*'
                                                        r'not a trusted network pickle'):
        _load_bytes(data, safe=True)
    assert not target.exists()

    # Safe mode is the default (issue 20): the same call without safe= refuses it too.
    with pytest.raises(legacy.NetworkPickleError, match=r'not a trusted network pickle'):
        _load_bytes(data)
    assert not target.exists()

    # The same file does run the command when loaded without safe mode (--trust-pickle).
    _load_bytes(data, safe=False)
    assert target.exists()


def test_hostile_tensor_blob_is_refused(tmp_path):
    target = tmp_path / 'pwned'
    data = pickle.dumps(dict(G=ForgedStorage(str(target))))
    with pytest.raises(legacy.NetworkPickleError, match=r'tensor in the pickle holds more than plain tensor data'):
        _load_bytes(data, safe=True)
    assert not target.exists()


def test_unknown_persistent_class_is_refused_in_safe_mode():
    src = 'import torch\nclass Alien(torch.nn.Module):\n    pass\n'
    meta = dict(type='class', version=6, module_src=src, class_name='Alien',
                state=dict(torch.nn.Module().__dict__, _init_args=(), _init_kwargs={}))
    data = pickle.dumps(dict(G=ForgedPersistent(meta)))
    with pytest.raises(legacy.NetworkPickleError, match=r'^test\.pkl: refusing to load unknown class Alien in safe mode'):
        _load_bytes(data, safe=True)

#----------------------------------------------------------------------------
# Error messages for files that are not network pickles.

def test_truncated_file(snapshot):
    data = pickle.dumps(snapshot)
    with pytest.raises(legacy.NetworkPickleError, match=r'^test\.pkl: the file is truncated'):
        _load_bytes(data[:len(data) // 2])
    with pytest.raises(legacy.NetworkPickleError, match=r'^test\.pkl: the file is empty'):
        _load_bytes(b'', safe=True)
    with pytest.raises(legacy.NetworkPickleError, match=r'^test\.pkl: the pickle is corrupt'):
        _load_bytes(data[:2] + b'\xff' + data[3:])


def test_not_a_pickle():
    with pytest.raises(legacy.NetworkPickleError, match=r'^test\.pkl: not a pickle file; expected a network pickle'):
        _load_bytes(b'hello, this is a text file\n')
    buf = io.BytesIO()
    torch.save(dict(w=torch.zeros(2)), buf)
    with pytest.raises(legacy.NetworkPickleError, match=r'not a pickle file \(it is a ZIP archive'):
        _load_bytes(buf.getvalue(), safe=True)


def test_not_a_snapshot(snapshot):
    with pytest.raises(legacy.NetworkPickleError, match=r'not a network snapshot: it holds a list'):
        _load_bytes(pickle.dumps([1, 2, 3]), safe=True)
    with pytest.raises(legacy.NetworkPickleError, match=r'not a network snapshot: key "D" is missing'):
        _load_bytes(pickle.dumps(dict(G=snapshot['G'], G_ema=snapshot['G'])))
    with pytest.raises(legacy.NetworkPickleError, match=r'"G" is a str, expected a torch.nn.Module'):
        _load_bytes(pickle.dumps(dict(G='x', D=snapshot['D'], G_ema=snapshot['G'])))
    with pytest.raises(legacy.NetworkPickleError, match=r'"augment_pipe" is a int'):
        _load_bytes(pickle.dumps(dict(snapshot, augment_pipe=3)))


def test_unimportable_global():
    data = pickle.dumps(np.float32(1)).replace(b'numpy', b'nump_')
    with pytest.raises(legacy.NetworkPickleError, match=r'refers to nump_\._core\.multiarray\.scalar, which cannot be imported'):
        _load_bytes(data, safe=False)
    with pytest.raises(legacy.NetworkPickleError, match=r'refusing the global "nump_\._core\.multiarray\.scalar"'):
        _load_bytes(data)

#----------------------------------------------------------------------------

def test_convert_network_pickle_cli(tmp_path, snapshot):
    source = tmp_path / 'in.pkl'
    dest = tmp_path / 'out.pkl'
    source.write_bytes(pickle.dumps(snapshot))
    result = CliRunner().invoke(legacy.convert_network_pickle,
                                ['--source', str(source), '--dest', str(dest), '--safe-load', '1'])
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(tmp_path)) == ['in.pkl', 'out.pkl']
    with open(dest, 'rb') as f:
        loaded = legacy.load_network_pkl(f, safe=True)
    for a, b in zip(_outputs(snapshot), _outputs(loaded)):
        assert torch.equal(a, b)

    result = CliRunner().invoke(legacy.convert_network_pickle,
                                ['--source', str(tmp_path / 'missing.pkl'), '--dest', str(dest)])
    assert result.exit_code != 0 and '--source: file not found' in result.output

    (tmp_path / 'bad.pkl').write_bytes(b'garbage')
    result = CliRunner().invoke(legacy.convert_network_pickle,
                                ['--source', str(tmp_path / 'bad.pkl'), '--dest', str(tmp_path / 'o2.pkl')])
    assert result.exit_code != 0 and 'not a pickle file' in result.output
    assert not (tmp_path / 'o2.pkl').exists()

#----------------------------------------------------------------------------
# Embedded source that writes a file is never executed, on every route that
# does not need it (issue 15): the older tests embedded harmless source, so
# running the source before refusing the pickle went unnoticed.

def _payload_source(target, class_name):
    return (f'open(r"{target}", "w").close()  # the payload\n'
            f'import torch\n'
            f'class {class_name}(torch.nn.Module):\n'
            f'    pass\n')


def _fc_state(**changes):
    networks = pytest.importorskip('training.networks')
    layer = networks.FullyConnectedLayer(4, 3)
    state = dict(layer.__dict__)
    state.update(changes)
    return layer, state


@pytest.mark.parametrize('route', ['unknown-class-safe', 'known-class-mismatch-safe', 'known-class-normal', 'known-class-safe'])
def test_embedded_source_never_runs(tmp_path, snapshot, route):
    target = tmp_path / f'{route}.pwned'
    if route == 'unknown-class-safe':
        class_name, state = 'Alien', dict(torch.nn.Module().__dict__, _init_args=(), _init_kwargs={})
    elif route == 'known-class-mismatch-safe':
        _, state = _fc_state(_parameters={})  # no weight/bias: does not match our FullyConnectedLayer
        class_name = 'FullyConnectedLayer'
    else:
        layer, state = _fc_state()
        class_name = 'FullyConnectedLayer'
    meta = dict(type='class', version=6, module_src=_payload_source(target, class_name), class_name=class_name, state=state)
    data = pickle.dumps(dict(snapshot, G=ForgedPersistent(meta)))
    if route.endswith('-safe') and route != 'known-class-safe':
        with pytest.raises(legacy.NetworkPickleError, match=rf'refusing to load (unknown class )?{class_name} in safe mode'):
            _load_bytes(data, safe=True)
    else:
        loaded = _load_bytes(data, safe=(route == 'known-class-safe'))
        assert type(loaded['G']).__module__ == 'training.networks'  # rebuilt as our class, from its init args
        assert torch.equal(loaded['G'].weight, layer.weight)
    assert not target.exists(), f'{route}: the embedded source was executed'

#----------------------------------------------------------------------------
