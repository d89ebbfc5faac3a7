"""Unit tests for priors/gmm/prior_file.py and build_prior.py: building on a tiny synthetic dataset, metadata, the cache, validation errors and the CLI."""

import os
import shutil
import socket

import numpy as np
import PIL.Image
import pytest
import torch
from click.testing import CliRunner

import build_prior
import dnnlib
from priors import features
from priors.gmm import prior_file
from priors.gmm.prior_file import PriorFileError, load_prior
from training.dataset import ImageFolderDataset
from training.synthetic import make_synthetic_dataset

NUM_IMAGES, RES, MODES = 200, 16, 4

#----------------------------------------------------------------------------
# One prior built once for the whole module (about 2 s): 200 synthetic images
# of 4 equally frequent modes, tiny extractor, 4 components.

@pytest.fixture(scope='module')
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp('prior')
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(dnnlib.util, '_dnnlib_cache_dir', str(root / 'dnnlib'))
        data = make_synthetic_dataset(str(root / 'data.zip'), num_images=NUM_IMAGES, resolution=RES, num_modes=MODES, frequencies='uniform')
        kwargs = dict(class_name='training.dataset.ImageFolderDataset', path=data)
        prior = prior_file.get_or_build_prior(kwargs, feature='tiny', components=MODES, pca=0.98, device='cpu',
                                              cache_dir=str(root / 'priors'))
    return dnnlib.EasyDict(root=root, data=data, kwargs=kwargs, prior=prior, path=prior.path)


@pytest.fixture(autouse=True)
def _isolated_cache(built, monkeypatch):
    monkeypatch.setattr(dnnlib.util, '_dnnlib_cache_dir', str(built.root / 'dnnlib'))


def _copy_record(built, tmp_path, **changes):
    record = torch.load(built.path, weights_only=True)
    record.update(changes)
    path = str(tmp_path / 'changed.pt')
    torch.save(record, path)
    return path

#----------------------------------------------------------------------------
# Building and contents.

def test_file_is_safe_to_load_and_holds_the_metadata(built):
    record = torch.load(built.path, weights_only=True)
    assert record['format_version'] == prior_file.FORMAT_VERSION and record['kind'] == 'priorgan-gmm-prior'
    assert record['extractor'] == dict(name='tiny', feature_dim=32, spec=dict(name='tiny', feature_dim=32, seed=0), source=None)
    ds = record['dataset']
    assert ds['name'] == 'data' and ds['path'] == os.path.abspath(built.data) and ds['num_images'] == NUM_IMAGES
    assert ds['resolution'] == RES and ds['num_channels'] == 3 and ds['xflip'] is False and ds['fingerprint'].startswith('zip:')
    assert record['settings'] == dict(components=MODES, pca=0.98, reg_covar=1e-6, seed=0, max_images=None,
                                      covariance_type='full', tol=1e-3, max_iter=100, n_init=1, holdout=0.1)
    assert record['num_images'] == NUM_IMAGES
    roles = record['split']['roles']
    assert roles.shape == (NUM_IMAGES,) and int((roles == prior_file.ROLE_HELDOUT).sum()) == NUM_IMAGES // 10
    assert record['real_loglik']['source'] == 'heldout' and record['real_loglik']['sorted'].numel() == NUM_IMAGES // 10
    assert record['fit_loglik']['sorted'].numel() == NUM_IMAGES - NUM_IMAGES // 10
    assert set(record['pca']) == {'kwargs', 'state_dict'} and set(record['gmm']) == {'kwargs', 'state_dict'}
    assert os.path.isfile(os.path.splitext(built.path)[0] + '-components.png')


def test_assignments_frequencies_and_loglik(built):
    prior = built.prior
    for rule in prior_file.ASSIGN_RULES:
        a = prior.assignments(rule)
        assert a.shape == (NUM_IMAGES,) and a.dtype == torch.int64 and 0 <= int(a.min()) and int(a.max()) < MODES
        freqs = prior.real_freqs(rule)
        assert freqs.dtype == torch.float64 and freqs.shape == (MODES,)
        torch.testing.assert_close(freqs, torch.bincount(a, minlength=MODES).double() / NUM_IMAGES)
    ll = prior.real_loglik_sorted   # the reference: held-out images
    assert ll.shape == (NUM_IMAGES // 10,) and bool((ll[1:] >= ll[:-1]).all())
    assert prior.record['real_loglik']['mean'] == pytest.approx(float(ll.mean()))


def test_components_recover_the_synthetic_modes(built):
    # The paper's grouping (nearest centre) should put each synthetic mode in its own component.
    modes = ImageFolderDataset(built.data).get_modes()
    assignments = built.prior.assignments('nearest').numpy()
    purity = sum(np.bincount(assignments[modes == m]).max() for m in range(MODES)) / NUM_IMAGES
    assert purity >= 0.95
    assert len(set(assignments.tolist())) == MODES


def test_log_prob_matches_stored_loglik_and_is_differentiable(built):
    prior = built.prior
    ext = features.build_extractor('tiny', device='cpu')
    pixels = torch.stack([torch.from_numpy(ImageFolderDataset(built.data)[i][0]) for i in range(NUM_IMAGES)])
    feats = ext(pixels).requires_grad_(True)
    ll = prior.log_prob(feats)
    assert ll.shape == (NUM_IMAGES,) and ll.dtype == torch.float32
    held = prior.roles == prior_file.ROLE_HELDOUT
    np.testing.assert_allclose(np.sort(ll.detach().numpy()[held.numpy()]), prior.real_loglik_sorted.numpy(), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(np.sort(ll.detach().numpy()[~held.numpy()]), prior.record['fit_loglik']['sorted'].numpy(), rtol=1e-4, atol=1e-3)
    ll.sum().backward()
    assert torch.isfinite(feats.grad).all() and feats.grad.abs().sum() > 0
    assert torch.equal(prior.assign(feats.detach()), prior.assignments('nearest'))


def test_percentile_rank_and_quantile(built):
    prior = built.prior
    ll = prior.real_loglik_sorted
    ranks = prior.percentile_rank(torch.tensor([float(ll[0]) - 1, float(ll[-1]) + 1, float(ll[4])], dtype=torch.float64))
    torch.testing.assert_close(ranks, torch.tensor([0.0, 1.0, 5 / ll.numel()], dtype=torch.float64))
    assert prior.loglik_quantile(0) == float(ll[0]) and prior.loglik_quantile(1) == float(ll[-1])
    assert prior.loglik_quantile(0.5) == pytest.approx(float(np.quantile(ll.numpy(), 0.5)))
    with pytest.raises(ValueError, match=r'q must be in \[0, 1\], got 2'):
        prior.loglik_quantile(2)

@pytest.mark.gpu
def test_build_on_cuda_matches_cpu(built, tmp_path):
    prior = prior_file.get_or_build_prior(built.kwargs, feature='tiny', components=MODES, pca=0.98, device='cuda',
                                          cache_dir=str(tmp_path / 'priors'))
    assert prior.gmm.means_.device.type == 'cuda'
    torch.testing.assert_close(prior.real_freqs(), built.prior.real_freqs())
    torch.testing.assert_close(prior.real_loglik_sorted.cpu(), built.prior.real_loglik_sorted, rtol=1e-6, atol=1e-6)
    feats = torch.randn([5, 32], device='cuda', requires_grad=True)
    prior.log_prob(feats).sum().backward()
    assert torch.isfinite(feats.grad).all()

#----------------------------------------------------------------------------
# The cache.

def test_second_call_is_a_cache_hit(built, monkeypatch):
    mtime = os.path.getmtime(built.path)
    monkeypatch.setattr(prior_file, 'build_prior_file', lambda *a, **k: pytest.fail('rebuilt on a cache hit'))
    again = prior_file.get_or_build_prior(built.kwargs, feature='tiny', components=MODES, pca=0.98, device='cpu',
                                          cache_dir=os.path.dirname(built.path))
    assert again.path == built.path and os.path.getmtime(built.path) == mtime
    torch.testing.assert_close(again.gmm.means_, built.prior.gmm.means_)


def test_other_settings_get_another_cache_file(built, monkeypatch):
    calls = []
    monkeypatch.setattr(prior_file, 'build_prior_file', lambda path, *a, **k: calls.append(path) or pytest.skip('built'))
    with pytest.raises(pytest.skip.Exception):
        prior_file.get_or_build_prior(built.kwargs, feature='tiny', components=3, device='cpu', cache_dir=os.path.dirname(built.path))
    assert calls and calls[0] != built.path and os.path.basename(calls[0]).startswith('data-tiny-')


def test_moved_dataset_keeps_its_identity(built, tmp_path):
    moved = shutil.copy(built.data, tmp_path / 'renamed.zip')
    a, b = prior_file.dataset_identity(built.kwargs), prior_file.dataset_identity(dict(built.kwargs, path=str(moved)))
    assert a['fingerprint'] == b['fingerprint'] and a['selection'] == b['selection']
    load_prior(built.path, expect_dataset=dict(built.kwargs, path=str(moved)), expect_feature='tiny')


def test_folder_fingerprint_sees_content_not_only_sizes(tmp_path):
    # Uncompressed PNGs of equal size: names and sizes alone would collide.
    a = make_synthetic_dataset(str(tmp_path / 'a'), num_images=8, resolution=8, num_modes=2, seed=0)
    b = make_synthetic_dataset(str(tmp_path / 'b'), num_images=8, resolution=8, num_modes=2, seed=1)
    fa = prior_file.dataset_identity(dict(class_name='training.dataset.ImageFolderDataset', path=a))['fingerprint']
    fb = prior_file.dataset_identity(dict(class_name='training.dataset.ImageFolderDataset', path=b))['fingerprint']
    assert fa.startswith('dir:') and fa != fb

def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _ddp_worker(rank, port, data, root):
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dnnlib.util.set_cache_dir(os.path.join(root, 'dnnlib'))
    torch.distributed.init_process_group('gloo', rank=rank, world_size=2)
    try:
        kwargs = dict(class_name='training.dataset.ImageFolderDataset', path=data)
        results = []
        for _ in range(2):  # build, then hit the cache
            prior = prior_file.get_or_build_prior(kwargs, feature='tiny', components=2, device='cpu', batch=8,
                                                  cache_dir=os.path.join(root, 'priors'), rank=rank, num_gpus=2)
            results.append(dict(path=prior.path, means=prior.gmm.means_.clone(), assignments=prior.assignments().clone()))
        torch.save(results, os.path.join(root, f'rank{rank}.pt'))
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow
@pytest.mark.ddp
def test_two_ranks_build_once_and_load_the_same_prior(tmp_path):
    data = make_synthetic_dataset(str(tmp_path / 'data.zip'), num_images=36, resolution=8, num_modes=2, frequencies='uniform')
    torch.multiprocessing.spawn(_ddp_worker, args=(_free_port(), data, str(tmp_path)), nprocs=2, join=True)
    results = [torch.load(tmp_path / f'rank{rank}.pt', weights_only=True) for rank in range(2)]
    assert len(os.listdir(tmp_path / 'priors')) == 2  # one prior file and its grid
    ref = results[0][0]
    assert ref['assignments'].shape == (36,)
    for result in results[0][1:] + results[1]:
        assert result['path'] == ref['path']
        assert torch.equal(result['means'], ref['means']) and torch.equal(result['assignments'], ref['assignments'])

#----------------------------------------------------------------------------
# Validation errors: each names the file, what it was built for, what was expected and the fix.

def test_missing_file(tmp_path):
    with pytest.raises(PriorFileError, match=r"Prior file '.*nothere.pt' does not exist; build it with build_prior.py "
                                             r"--data=DATASET --feature=NAME --out=.*nothere.pt$"):
        load_prior(str(tmp_path / 'nothere.pt'))


def test_truncated_file(built, tmp_path):
    path = tmp_path / 'cut.pt'
    path.write_bytes(open(built.path, 'rb').read()[:1000])
    with pytest.raises(PriorFileError, match=r"Prior file '.*cut.pt' is corrupt or truncated \(RuntimeError: .*\); "
                                             r"delete it and rebuild it with build_prior.py"):
        load_prior(str(path))
    (tmp_path / 'garbage.pt').write_bytes(b'not a torch file at all')
    with pytest.raises(PriorFileError, match='garbage.pt\' is corrupt or truncated'):
        load_prior(str(tmp_path / 'garbage.pt'))


def test_not_a_prior_file(tmp_path):
    torch.save(dict(weights=torch.zeros(3)), tmp_path / 'other.pt')
    with pytest.raises(PriorFileError, match=r"'.*other.pt' is not a prior file \(no kind='priorgan-gmm-prior'"):
        load_prior(str(tmp_path / 'other.pt'))
    torch.save(dnnlib.EasyDict(a=1), tmp_path / 'unsafe.pt')
    with pytest.raises(PriorFileError, match=r"'.*unsafe.pt' is not a prior file: it holds objects that cannot be loaded safely \(dnnlib.util.EasyDict\)"):
        load_prior(str(tmp_path / 'unsafe.pt'))


def test_newer_format_version(built, tmp_path):
    path = _copy_record(built, tmp_path, format_version=prior_file.FORMAT_VERSION + 1)
    with pytest.raises(PriorFileError, match=rf"'.*changed.pt' has format_version {prior_file.FORMAT_VERSION + 1}, newer than "
                                             rf"this code reads \(up to {prior_file.FORMAT_VERSION}\); update this code, or rebuild"):
        load_prior(path)


def test_incomplete_file(built, tmp_path):
    record = torch.load(built.path, weights_only=True)
    del record['gmm']
    torch.save(record, tmp_path / 'partial.pt')
    with pytest.raises(PriorFileError, match=r'is incomplete \(missing gmm\)'):
        load_prior(str(tmp_path / 'partial.pt'))


def test_other_dataset(built, tmp_path):
    other = make_synthetic_dataset(str(tmp_path / 'other.zip'), num_images=NUM_IMAGES, resolution=RES, num_modes=MODES, seed=7)
    with pytest.raises(PriorFileError, match=r"was built for dataset 'data' \(200 images, 16x16, 3 channel\(s\), fingerprint zip:.*\) "
                                             r"at .*data.zip but the training data is 'other' .*; rebuild it with build_prior.py "
                                             r"--data=.*other.zip --feature=tiny --out=\S*$"):
        load_prior(built.path, expect_dataset=dict(built.kwargs, path=other))


def test_other_selection_of_the_same_dataset(built):
    with pytest.raises(PriorFileError, match=r"built for 200 items of dataset 'data' \(xflip=False\) but the training data has "
                                             r"400 items \(xflip=True\).*--mirror=1$"):
        load_prior(built.path, expect_dataset=dict(built.kwargs, xflip=True))
    with pytest.raises(PriorFileError, match=r'but the training data has 50 items'):
        load_prior(built.path, expect_dataset=dict(built.kwargs, max_size=50))


def test_other_extractor(built):
    with pytest.raises(PriorFileError, match=r"was built with feature extractor \"tiny\" \(32-d\) but this run uses \"inception\"; "
                                             r"rebuild it with build_prior.py --data=.*data.zip --feature=inception"):
        load_prior(built.path, expect_feature='inception')
    narrow = features.build_extractor('tiny', device='cpu', feature_dim=16)
    with pytest.raises(PriorFileError, match=r'"tiny" \(32-d\) but this run uses "tiny" \(16-d\)'):
        load_prior(built.path, expect_feature=narrow)


def test_format1_subset_file_is_refused_for_training(built, tmp_path):
    # A format-1 file built with --max-images gave components to the fitted images only, and training
    # crashed at the first resample; now loading it for a training set refuses it with the fix.
    record = torch.load(built.path, weights_only=True)
    record['assignments'] = {rule: a[:30] for rule, a in record['assignments'].items()}
    record['format_version'], record['num_images'] = 1, 30
    torch.save(record, tmp_path / 'old.pt')
    with pytest.raises(PriorFileError, match=r"gives a component to 30 of the 200 training images \(format 1 files built with a "
                                             r"max_images limit cover only the images fitted on\).*rebuild it with build_prior.py"):
        load_prior(str(tmp_path / 'old.pt'), expect_dataset=built.kwargs)
    assert load_prior(str(tmp_path / 'old.pt')).reference_source == 'heldout'   # metrics need no dataset check


def test_wrong_feature_width_at_use(built):
    with pytest.raises(ValueError, match=r'expects \[N, 32\] features of extractor "tiny", got shape \[2, 16\]'):
        built.prior.log_prob(torch.zeros([2, 16]))

#----------------------------------------------------------------------------
# Settings parsing and fitting errors.

@pytest.mark.parametrize('text, value', [('0.98', 0.98), ('1.0', 1.0), ('12', 12), ('none', None), (None, None), (0.5, 0.5), (3, 3)])
def test_parse_pca(text, value):
    assert prior_file.parse_pca(text) == value


@pytest.mark.parametrize('text, match', [('1.5', r'must be in \(0, 1\], got 1.5'), ('0', r'must be >= 1, got 0'),
                                         ('lots', "got 'lots'"), (True, 'got True')])
def test_parse_pca_errors(text, match):
    with pytest.raises(ValueError, match=match):
        prior_file.parse_pca(text)


def test_too_few_images_for_the_components():
    with pytest.raises(ValueError, match=r'2 images cannot fit 5 Gaussian components \(3 images, 1 held out\); use more images '
                                         r'or fewer components'):
        prior_file.fit_prior_model(torch.randn([3, 4]), components=5)
    with pytest.raises(ValueError, match=r'2 images cannot fit 3 Gaussian components \(4 images, 2 held out\)'):
        prior_file.fit_prior_model(torch.randn([4, 4]), components=3, holdout=0.5)
    assert int((prior_file.split_roles(4, holdout=0.1) == prior_file.ROLE_HELDOUT).sum()) == 1   # a holdout holds out at least one


def test_fit_without_pca_and_diag():
    rng = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn([50, 3], generator=rng) - 4, torch.randn([50, 3], generator=rng) + 4])
    model = prior_file.fit_prior_model(x, components=2, pca=None, covariance_type='diag')
    assert model['pca'] is None and model['gmm']['kwargs']['covariance_type'] == 'diag'
    torch.testing.assert_close(model['real_freqs']['nearest'], torch.tensor([0.5, 0.5], dtype=torch.float64))

#----------------------------------------------------------------------------
# The command line.

def test_cli_builds_a_prior_and_its_grid(built, tmp_path):
    out = tmp_path / 'cli' / 'prior.pt'
    result = CliRunner().invoke(build_prior.main, ['--data', built.data, '--feature', 'tiny', '--components', '4',
                                                   '--max-images', '120', '--out', str(out), '--device', 'cpu'])
    assert result.exit_code == 0, result.output
    assert 'PCA:       32 -> ' in result.output and 'Wrote ' in result.output
    assert 'fit on 120, 0.1 held out' in result.output and 'Reference: log-likelihoods of the 20 held-out images' in result.output
    prior = load_prior(str(out), expect_feature='tiny', expect_dataset=built.kwargs)   # every training image has a component
    assert prior.num_images == NUM_IMAGES and prior.settings['max_images'] == 120 and prior.assignments().numel() == NUM_IMAGES
    assert int((prior.roles == prior_file.ROLE_FIT).sum()) == 120 and int((prior.roles == prior_file.ROLE_HELDOUT).sum()) == 20
    with PIL.Image.open(tmp_path / 'cli' / 'prior-components.png') as img:
        assert img.format == 'PNG'


@pytest.mark.parametrize('args, message', [
    (['--feature', 'nope'], 'Error: --feature: Unknown feature extractor "nope"; valid names: '),
    (['--pca', '2.5'], 'Error: --pca: pca as a variance fraction must be in (0, 1], got 2.5'),
    (['--components', '500'], 'Error: --components=500 is more than the 180 images to fit on (200 images, --holdout=0.1)'),
    (['--preset', 'ffhq', '--max-images', '50'], 'Error: --components=70 is more than the 50 images to fit on'),   # the preset sets M
    (['--device', 'gpu7'], 'Error: --device: "gpu7" is not a device'),
])
def test_cli_errors(built, tmp_path, args, message):
    result = CliRunner().invoke(build_prior.main, ['--data', built.data, '--out', str(tmp_path / 'p.pt'), '--feature', 'tiny'] + args)
    assert result.exit_code != 0 and message in result.output, result.output


def test_cli_missing_data(tmp_path):
    result = CliRunner().invoke(build_prior.main, ['--data', str(tmp_path / 'none.zip'), '--out', str(tmp_path / 'p.pt')])
    assert result.exit_code != 0 and 'Error: --data: ' in result.output and 'does not exist' in result.output

#----------------------------------------------------------------------------
