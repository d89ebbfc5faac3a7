"""Unit tests for torch_utils.persistence: pickle layout, rebuilding by class name, forks, RNG neutrality."""

import copy
import inspect
import io
import pickle

import numpy as np
import pytest
import torch

import dnnlib
from torch_utils import persistence

#----------------------------------------------------------------------------
# Names that an official snapshot pickle resolves (spec section 2.2).

SPEC_GLOBALS = {
    ('torch_utils.persistence', '_reconstruct_persistent_obj'),
    ('dnnlib.util', 'EasyDict'),
    ('collections', 'OrderedDict'),
    ('torch._utils', '_rebuild_tensor_v2'),
    ('torch._utils', '_rebuild_parameter'),
    ('torch.storage', '_load_from_bytes'),
    ('numpy', 'dtype'),
    ('numpy.core.multiarray', 'scalar'),
    ('numpy._core.multiarray', 'scalar'),
}

# A plain (non-Module) persistent class, defined at module level as persistent classes must be.
@persistence.persistent_class
class PersistentCounter:
    def __init__(self, start, step=1):
        self.value = start
        self.step = step

# A module whose constructor needs real tensor values and keeps a tensor in a plain attribute,
# so that a rebuild cannot construct it on the meta device.
@persistence.persistent_class
class ValueDependentModule(torch.nn.Module):
    def __init__(self, n):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn([n]))
        self.register_buffer('table', torch.arange(n, dtype=torch.float32))
        self.scale = float(torch.ones([2]).sum().item())
        self.lookup = torch.linspace(0, 1, n)

    def forward(self, x):
        return (x * self.weight + self.table) * self.scale + self.lookup

# A module that keeps a sub-module in a plain list, which a rebuild cannot update.
@persistence.persistent_class
class SubModuleInList(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = torch.nn.Identity()
        self.chain = [self.inner]

#----------------------------------------------------------------------------

class _GlobalRecorder(pickle.Unpickler):
    """Unpickler that records every global the stream resolves."""
    def __init__(self, data):
        super().__init__(io.BytesIO(data))
        self.seen = set()

    def find_class(self, module, name):
        self.seen.add((module, name))
        return super().find_class(module, name)

#----------------------------------------------------------------------------

@pytest.fixture
def networks():
    return pytest.importorskip('training.networks')


@pytest.fixture
def tiny_G(networks, tiny_G_kwargs):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(123)
        G = networks.Generator(**tiny_G_kwargs).eval().requires_grad_(False)
        with torch.no_grad():
            for p in G.parameters():    # move off the initial values so a lost tensor shows
                p.add_(torch.randn_like(p) * 0.1)
            G.mapping.w_avg.copy_(torch.randn_like(G.mapping.w_avg))
    return G


@pytest.fixture
def tiny_D(networks, tiny_D_kwargs):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(124)
        D = networks.Discriminator(**tiny_D_kwargs).eval().requires_grad_(False)
        with torch.no_grad():
            for p in D.parameters():
                p.add_(torch.randn_like(p) * 0.1)
    return D


@pytest.fixture
def fresh_hooks(monkeypatch):
    """An empty import-hook list for the duration of a test."""
    monkeypatch.setattr(persistence, '_import_hooks', [])
    return persistence._import_hooks


def _outputs(G, D, seed=5):
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn([4, G.z_dim], generator=gen)
    c = torch.zeros([4, G.c_dim])
    with torch.no_grad():
        img = G(z, c, truncation_psi=0.7, noise_mode='const')
        logits = D(img, c)
    return img, logits


def _replace_source(meta):
    meta.module_src = '# module source omitted'
    return meta


def _assert_same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key

#----------------------------------------------------------------------------

def test_pickle_layout(networks, tiny_G):
    fn, args, state = tiny_G.__reduce__()
    assert fn is persistence._reconstruct_persistent_obj
    assert state is None and len(args) == 1
    meta = args[0]
    assert type(meta) is dict
    assert list(meta) == ['type', 'version', 'module_src', 'class_name', 'state']
    assert meta['type'] == 'class' and meta['version'] == 6 == persistence._version
    assert meta['module_src'] == inspect.getsource(networks)
    assert meta['class_name'] == 'Generator'
    assert meta['state']['_init_args'] == ()
    assert '_init_kwargs' in meta['state'] and '_parameters' in meta['state']


def test_pickle_globals_are_the_official_ones(tiny_G, tiny_D):
    data = pickle.dumps(dict(G=tiny_G, D=tiny_D, G_ema=copy.deepcopy(tiny_G), training_set_kwargs=None))
    recorder = _GlobalRecorder(data)
    recorder.load()
    assert ('torch_utils.persistence', '_reconstruct_persistent_obj') in recorder.seen
    assert recorder.seen <= SPEC_GLOBALS, recorder.seen - SPEC_GLOBALS


def test_decorated_class_surface(networks, tiny_G, tiny_G_kwargs):
    cls = type(tiny_G)
    assert cls.__name__ == 'Generator' and cls is networks.Generator
    assert persistence.is_persistent(cls) and persistence.is_persistent(tiny_G)
    assert not persistence.is_persistent(torch.nn.Linear(2, 2))
    assert persistence.persistent_class(cls) is cls
    kwargs = tiny_G.init_kwargs
    assert isinstance(kwargs, dnnlib.EasyDict) and kwargs == tiny_G_kwargs
    kwargs.z_dim = 999                      # a copy: the object keeps its own
    assert tiny_G.init_kwargs.z_dim == tiny_G_kwargs['z_dim']
    assert tiny_G.init_args == ()

#----------------------------------------------------------------------------

def test_round_trip_same_source(tiny_G, tiny_D):
    G2, D2 = pickle.loads(pickle.dumps((tiny_G, tiny_D)))
    assert type(G2) is type(tiny_G) and type(D2) is type(tiny_D)
    _assert_same_state(tiny_G, G2)
    for a, b in zip(_outputs(tiny_G, tiny_D), _outputs(G2, D2)):
        assert torch.equal(a, b)
    assert G2.init_kwargs == tiny_G.init_kwargs


def test_round_trip_by_class_name(tiny_G, tiny_D, fresh_hooks):
    # Without usable source the loader must rebuild our classes from their names and state.
    data = pickle.dumps((tiny_G, tiny_D))
    persistence.import_hook(_replace_source)
    G2, D2 = pickle.loads(data)
    assert type(G2) is type(tiny_G) and type(D2) is type(tiny_D)
    assert type(G2.synthesis.b4.conv1) is type(tiny_G.synthesis.b4.conv1)
    _assert_same_state(tiny_G, G2)
    _assert_same_state(tiny_D, D2)
    assert not G2.training and not any(p.requires_grad for p in G2.parameters())
    assert G2.init_kwargs == tiny_G.init_kwargs and G2.init_args == ()
    for a, b in zip(_outputs(tiny_G, tiny_D), _outputs(G2, D2)):
        assert torch.equal(a, b)


def test_round_trip_by_class_name_on_meta_device(tiny_G, fresh_hooks, monkeypatch):
    # Big objects are constructed on the meta device; make every object count as big.
    monkeypatch.setattr(persistence, '_META_MIN_NUMEL', 0)
    data = pickle.dumps(tiny_G)
    persistence.import_hook(_replace_source)
    torch_state = torch.get_rng_state()
    G2 = pickle.loads(data)
    assert torch.equal(torch_state, torch.get_rng_state())
    _assert_same_state(tiny_G, G2)
    assert not any(t.is_meta for t in G2.state_dict().values())
    z = torch.randn([2, tiny_G.z_dim], generator=torch.Generator().manual_seed(3))
    c = torch.zeros([2, tiny_G.c_dim])
    with torch.no_grad():
        assert torch.equal(tiny_G(z, c, noise_mode='const'), G2(z, c, noise_mode='const'))


def test_rebuild_falls_back_to_cpu_construction(fresh_hooks, monkeypatch):
    monkeypatch.setattr(persistence, '_META_MIN_NUMEL', 0)
    module = ValueDependentModule(5)
    with torch.no_grad():
        module.table.mul_(3)
    data = pickle.dumps(module)
    persistence.import_hook(_replace_source)
    torch_state = torch.get_rng_state()
    module2 = pickle.loads(data)
    assert torch.equal(torch_state, torch.get_rng_state())
    assert type(module2) is ValueDependentModule and module2.scale == 2.0
    assert not module2.lookup.is_meta
    x = torch.linspace(-1, 1, 5)
    assert torch.equal(module(x), module2(x))


def test_rebuild_refuses_sub_modules_in_plain_attributes(fresh_hooks):
    data = pickle.dumps(SubModuleInList())
    persistence.import_hook(_replace_source)
    with pytest.raises(ValueError, match=r'SubModuleInList.*keeps a sub-module in the plain attribute "chain"'):
        pickle.loads(data)


def test_deepcopy(tiny_G):
    G2 = copy.deepcopy(tiny_G)
    assert type(G2) is type(tiny_G)
    _assert_same_state(tiny_G, G2)
    assert G2.mapping.w_avg.data_ptr() != tiny_G.mapping.w_avg.data_ptr()


@pytest.mark.parametrize('by_name', [False, True])
def test_loading_keeps_global_rng_state(tiny_G, tiny_D, fresh_hooks, by_name):
    data = pickle.dumps((tiny_G, tiny_D))
    if by_name:
        persistence.import_hook(_replace_source)
    torch_state = torch.get_rng_state()
    np_state = np.random.get_state()
    pickle.loads(data)
    assert torch.equal(torch_state, torch.get_rng_state())
    assert np.array_equal(np_state[1], np.random.get_state()[1])


def test_plain_class_round_trip():
    obj = PersistentCounter(5, step=2)
    obj.value = 11
    obj2 = pickle.loads(pickle.dumps(obj))
    assert type(obj2) is PersistentCounter
    assert (obj2.value, obj2.step, obj2.init_args, obj2.init_kwargs) == (11, 2, (5,), dict(step=2))

#----------------------------------------------------------------------------
# Forks and unknown classes.

def _shrink_out_features(meta):
    # Make the pickled constructor arguments disagree with the pickled tensors.
    meta.module_src = '# module source omitted'
    meta.state['_init_kwargs'] = dict(meta.state['_init_kwargs'], out_features=3)
    return meta


def test_mismatch_without_source_is_an_error(networks, fresh_hooks):
    layer = networks.FullyConnectedLayer(in_features=4, out_features=5)
    data = pickle.dumps(layer)
    persistence.import_hook(_shrink_out_features)
    with pytest.raises(ValueError, match=r'cannot rebuild FullyConnectedLayer.*parameter "weight" has shape '
                                         r'\[5, 4\] in the pickle but \[3, 4\] in ours.*no usable source'):
        pickle.loads(data)
    with pytest.raises(ValueError, match=r'refusing to load FullyConnectedLayer in safe mode.*"weight"'):
        persistence._reconstruct_persistent_obj_safe(layer.__reduce__()[1][0])


def test_fork_with_source_is_executed_with_a_warning(networks, fresh_hooks):
    layer = networks.FullyConnectedLayer(in_features=4, out_features=5)
    fork_src = inspect.getsource(networks) + '\n# a fork\n'

    def make_fork(meta):
        meta.module_src = fork_src
        meta.state['_init_kwargs'] = dict(meta.state['_init_kwargs'], out_features=3)
        return meta

    data = pickle.dumps(layer)
    persistence.import_hook(make_fork)
    with pytest.warns(UserWarning, match=r'FullyConnectedLayer.*does not match.*executing the source embedded'):
        fork = pickle.loads(data)
    assert type(fork).__name__ == 'FullyConnectedLayer' and type(fork) is not networks.FullyConnectedLayer
    assert type(fork).__module__.startswith('_imported_module_')
    assert torch.equal(fork.weight, layer.weight)
    assert persistence._known_classes['FullyConnectedLayer'] == [networks.FullyConnectedLayer]


def test_unknown_class(fresh_hooks):
    src = ('import torch\nfrom torch_utils import persistence\n\n'
           '@persistence.persistent_class\nclass Alien(torch.nn.Module):\n'
           '    def __init__(self):\n        super().__init__()\n        self.tag = 7\n')
    state = dict(torch.nn.Module().__dict__, _init_args=(), _init_kwargs={}, tag=7)
    meta = dict(type='class', version=6, module_src=src, class_name='Alien', state=state)
    obj = persistence._reconstruct_persistent_obj(copy.deepcopy(meta))
    assert type(obj).__name__ == 'Alien' and obj.tag == 7
    with pytest.raises(ValueError, match=r'refusing to load unknown class Alien in safe mode'):
        persistence._reconstruct_persistent_obj_safe(copy.deepcopy(meta))
    meta['module_src'] = '# placeholder'
    meta['class_name'] = 'Alien2'
    with pytest.raises(ValueError, match=r'cannot rebuild unknown class Alien2: the pickle carries no usable source'):
        persistence._reconstruct_persistent_obj(meta)

#----------------------------------------------------------------------------
# Error messages.

def test_bad_meta_errors():
    meta = dict(type='class', version=5, module_src='', class_name='X', state={})
    with pytest.raises(ValueError, match=r'unsupported persistent object format version 5'):
        persistence._reconstruct_persistent_obj(meta)
    with pytest.raises(ValueError, match=r'unsupported persistent object type .function.'):
        persistence._reconstruct_persistent_obj(dict(meta, version=6, type='function'))
    with pytest.raises(ValueError, match=r'malformed persistent object'):
        persistence._reconstruct_persistent_obj(dict(meta, state=None))


def test_hook_returning_none(fresh_hooks):
    persistence.import_hook(lambda meta: None)
    with pytest.raises(ValueError, match=r'returned None instead of the meta dict'):
        pickle.loads(pickle.dumps(PersistentCounter(1)))


def test_api_type_errors():
    with pytest.raises(TypeError, match=r'import_hook\(\) expects a callable, got int'):
        persistence.import_hook(3)
    with pytest.raises(TypeError, match=r'persistent_class\(\) expects a class, got function'):
        persistence.persistent_class(lambda: None)
    with pytest.raises(TypeError, match=r'unpicklable .*function.*must be picklable'):
        PersistentCounter(lambda: 0)

#----------------------------------------------------------------------------

#----------------------------------------------------------------------------
# A fitted estimator's buffers are sized by its data: a pickle whose embedded
# source is not ours (another version of gmm.py) still rebuilds by class name,
# in safe mode too, with the fitted shapes.

def test_fitted_gmm_rebuilds_by_class_name_with_data_sized_buffers():
    import io
    import legacy
    from priors.gmm import GaussianMixture
    x = torch.randn([64, 3], generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    gmm = GaussianMixture(n_components=2, random_state=0).fit(x)
    data = pickle.dumps(dict(gmm=gmm))

    # Change the embedded source (same length, so the pickle stays valid): it is no longer ours.
    head = GaussianMixture._orig_module_src.encode('utf-8')[:40]
    assert data.count(head) == 1
    data = data.replace(head, b'#' * len(head))
    for safe in (False, True):
        loaded = legacy._unpickle(io.BytesIO(data), 'test.pkl', safe=safe)['gmm']
        assert type(loaded) is GaussianMixture
        assert loaded.means_.shape == gmm.means_.shape == (2, 3)
        torch.testing.assert_close(loaded.score_samples(x), gmm.score_samples(x))
