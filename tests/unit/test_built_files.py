"""Unit tests for torch_utils/built_files.py, the one home of files that plugins build: the cache digest, the dataset identity, the validation ladder with its errors, the dataset check and get-or-build; and that the prior, autoencoder and classifier files go through it."""

import hashlib
import os

import pytest
import torch

import dnnlib
from metrics import classifier as classifier_module
from metrics import metric_utils
from torch_utils import built_files
from training.synthetic import make_synthetic_dataset

#----------------------------------------------------------------------------

class ToyFileError(built_files.BuiltFileError):
    pass

FMT = built_files.FileFormat('toy-kind', 3, ('dataset', 'weights'), title='Toy file', noun='a toy file', error=ToyFileError)
FIX = 'rebuild it with build_toy.py'


def _good_record(**changes):
    return dict(dict(kind='toy-kind', format_version=3, dataset=dict(name='d'), weights=torch.arange(3)), **changes)


def _write(tmp_path, name, obj):
    path = str(tmp_path / name)
    torch.save(obj, path)
    return path

#----------------------------------------------------------------------------
# The cache digest: a stable text of the key, so that files cached before keep their names.

def test_canonical_text_and_digest_are_stable():
    key = dict(settings=dict(pca=0.98, seed=0, betas=(0.9, 0.999), max_images=None), format_version=2, name='x')
    text = "{'format_version': 2, 'name': 'x', 'settings': {'betas': [0.9, 0.999], 'max_images': None, 'pca': 0.98, 'seed': 0}}"
    assert built_files.canonical_text(key) == text
    assert built_files.cache_digest(key) == hashlib.md5(text.encode('utf-8')).hexdigest()
    assert built_files.cache_digest(dict(reversed(list(key.items())))) == built_files.cache_digest(key)  # order-free
    assert metric_utils._canonical(key) == text  # pylint: disable=protected-access  (the feature cache uses the same text)
    assert built_files.cache_file('/c', 'ffhq', 'tiny', 'abc') == os.path.join('/c', 'ffhq-tiny-abc.pt')

#----------------------------------------------------------------------------
# The validation ladder: every step names the file and the fix.

def test_ladder_accepts_a_good_file(tmp_path):
    path = _write(tmp_path, 'good.pt', _good_record())
    record = built_files.load_record(path, FMT, FIX)
    assert torch.equal(record['weights'], torch.arange(3))
    older = _write(tmp_path, 'older.pt', _good_record(format_version=1))   # older versions load; the plugin reads them
    assert built_files.load_record(older, FMT, FIX)['format_version'] == 1


@pytest.mark.parametrize('case, match', [
    ('missing',   r"^Toy file '.*missing.pt' does not exist; build it first$"),
    ('garbage',   r"^Toy file '.*garbage.pt' is corrupt or truncated \(.*\); delete it and rebuild it with build_toy.py$"),
    ('truncated', r"^Toy file '.*truncated.pt' is corrupt or truncated \(.*\); delete it and rebuild it with build_toy.py$"),
    ('unsafe',    r"^'.*unsafe.pt' is not a toy file: it holds objects that cannot be loaded safely \(dnnlib.util.EasyDict\): "
                  r"pickled objects, which are refused because loading them runs code; rebuild it with build_toy.py$"),
    ('other',     r"^'.*other.pt' is not a toy file \(no kind='toy-kind' and format_version\); rebuild it with build_toy.py$"),
    ('list',      r"^'.*list.pt' is not a toy file"),
    ('noversion', r"^'.*noversion.pt' is not a toy file"),
    ('newer',     r"^Toy file '.*newer.pt' has format_version 4, newer than this code reads \(up to 3\); update this code, "
                  r"or rebuild it with build_toy.py$"),
    ('partial',   r"^Toy file '.*partial.pt' is incomplete \(missing weights\); delete it and rebuild it with build_toy.py$"),
])
def test_ladder_errors(tmp_path, case, match):
    path = str(tmp_path / f'{case}.pt')
    if case == 'garbage':
        open(path, 'wb').write(b'not a torch file')
    elif case == 'truncated':
        good = _write(tmp_path, 'good.pt', _good_record(weights=torch.zeros(1000)))
        open(path, 'wb').write(open(good, 'rb').read()[:600])
    elif case != 'missing':
        obj = dict(unsafe=dnnlib.EasyDict(_good_record()), other=dict(_good_record(), kind='other-kind'), list=[1, 2],
                   noversion=dict(_good_record(), format_version='3'), newer=_good_record(format_version=4),
                   partial={k: v for k, v in _good_record().items() if k != 'weights'})[case]
        torch.save(obj, path)
    with pytest.raises(ToyFileError, match=match) as info:
        built_files.load_record(path, FMT, FIX, missing_fix='build it first')
    assert isinstance(info.value, OSError) and isinstance(info.value, ValueError)


def test_records_that_are_not_files():
    where = "the snapshot's toy state"
    with pytest.raises(ToyFileError, match=r"^the snapshot's toy state is not a toy file \(no kind='toy-kind'"):
        FMT.check(dict(kind='x'), where, FIX, from_file=False)
    with pytest.raises(ToyFileError, match=r"^the snapshot's toy state is an incomplete toy file \(missing dataset\); rebuild"):
        FMT.check(dict(kind='toy-kind', format_version=3, weights=1), where, FIX, from_file=False)

#----------------------------------------------------------------------------
# Dataset identity and the dataset check.

@pytest.fixture(scope='module')
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp('ds')
    a = make_synthetic_dataset(str(root / 'a.zip'), num_images=12, resolution=8, num_modes=2, seed=0)
    b = make_synthetic_dataset(str(root / 'b.zip'), num_images=12, resolution=8, num_modes=2, seed=1)
    kwargs = lambda path, **kw: dict(class_name='training.dataset.ImageFolderDataset', path=path, **kw)
    return dnnlib.EasyDict(a=kwargs(a), b=kwargs(b), a_flip=kwargs(a, xflip=True), a_small=kwargs(a, max_size=5))


def test_dataset_identity_and_check(datasets):
    ident = built_files.dataset_identity(datasets.a)
    assert ident['name'] == 'a' and ident['num_images'] == 12 and ident['resolution'] == 8 and ident['fingerprint'].startswith('zip:')
    assert set(built_files.identity_key(ident)) == set(built_files.IDENTITY_KEYS) and 'path' not in built_files.identity_key(ident)
    assert built_files.as_identity(ident) is ident
    assert built_files.check_dataset(FMT, 'f.pt', ident, datasets.a, FIX) == ident
    with pytest.raises(ToyFileError, match=r"^Toy file 'f.pt' was built for dataset 'a' \(12 images, 8x8, 3 channel\(s\), fingerprint zip:.*\) "
                                           r"at .*a.zip but the training data is 'b' .*; rebuild it with build_toy.py$"):
        built_files.check_dataset(FMT, 'f.pt', ident, datasets.b, FIX)
    for other, items in ((datasets.a_flip, 24), (datasets.a_small, 5)):
        with pytest.raises(ToyFileError, match=rf"built for 12 items of dataset 'a' \(xflip=False\) but the training data has {items} "
                                               rf"items .*, so it breaks; rebuild"):
            built_files.check_dataset(FMT, 'f.pt', ident, other, FIX, selection_why=', so it breaks')
        built_files.check_dataset(FMT, 'f.pt', ident, other, FIX, check_selection=False)   # content only

#----------------------------------------------------------------------------
# Get or build (one process) and writing.

def test_get_or_build_builds_once(tmp_path):
    path = str(tmp_path / 'sub' / 'x.pt')
    calls = []
    def build(p):
        calls.append(p)
        built_files.finish_build(_good_record(), p)
        return 'built'
    load = lambda p: built_files.load_record(p, FMT, FIX)['kind']
    assert built_files.get_or_build(path, build, load) == 'built'
    assert built_files.get_or_build(path, build, load) == 'toy-kind' and calls == [path]
    assert not [f for f in os.listdir(tmp_path / 'sub') if f != 'x.pt']   # written atomically, no leftovers


def test_state_and_plain_values():
    lin = torch.nn.Linear(2, 3)
    state = built_files.cpu_state(lin)
    assert set(state) == {'weight', 'bias'} and state['weight'].data_ptr() != lin.weight.data_ptr()
    assert built_files.plain(dnnlib.EasyDict(a=(1, dnnlib.EasyDict(b=2)))) == {'a': [1, {'b': 2}]}
    assert type(built_files.plain(dnnlib.EasyDict(a=1))) is dict

#----------------------------------------------------------------------------
# The plugins' files and the classifier file go through the core.

def test_built_file_types_share_the_core(tmp_path):
    from priors.gmm import prior_file
    from priors.rf import ae_file
    for module in (prior_file, ae_file, classifier_module):
        assert issubclass(module.FILE_FORMAT.error, built_files.BuiltFileError)
        assert module.FILE_FORMAT.kind == module.FILE_KIND and module.FILE_FORMAT.version == module.FORMAT_VERSION
    assert prior_file.dataset_identity is built_files.dataset_identity
    # A classifier file: the same ladder, with the classifier's fix.
    torch.save(dict(kind=classifier_module.FILE_KIND, format_version=classifier_module.FORMAT_VERSION + 1), tmp_path / 'c.pt')
    with pytest.raises(classifier_module.ClassifierFileError, match=r"^Classifier file '.*c.pt' has format_version 2, newer"):
        classifier_module.load_classifier(str(tmp_path / 'c.pt'))
    with pytest.raises(ValueError, match=r"^Classifier file '.*none.pt' does not exist; train one with train_classifier.py"):
        classifier_module.load_classifier(str(tmp_path / 'none.pt'))

#----------------------------------------------------------------------------
