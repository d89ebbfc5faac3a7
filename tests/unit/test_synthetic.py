"""Unit tests for training/synthetic.py: mode frequencies, determinism, rendering, the mode classifier, dataset files."""

import numpy as np
import pytest
import torch

from torch_utils import misc
from training import synthetic
from training.dataset import ImageFolderDataset

#----------------------------------------------------------------------------

def test_frequency_specs():
    geo = synthetic.mode_frequencies(8)
    np.testing.assert_allclose(geo, 0.7 ** np.arange(8) / np.sum(0.7 ** np.arange(8)))
    assert np.all(np.diff(geo) < 0) and geo[0] / geo[-1] > 10  # imbalanced
    np.testing.assert_allclose(synthetic.mode_frequencies(4, 'uniform'), [0.25] * 4)
    np.testing.assert_allclose(synthetic.mode_frequencies(3, 'geometric:0.5'), np.array([4, 2, 1]) / 7)
    np.testing.assert_allclose(synthetic.mode_frequencies(3, '1, 1,2'), [0.25, 0.25, 0.5])
    np.testing.assert_allclose(synthetic.mode_frequencies(2, [3, 1]), [0.75, 0.25])


@pytest.mark.parametrize('num_modes, spec, pattern', [
    (8, '1,2,3', r'frequencies: got 3 weight\(s\) for 8 modes; give one weight per mode'),
    (2, [1, -1], r'frequencies: weights must be finite, >= 0 and not all zero, got \[1.0, -1.0\]'),
    (2, [0, 0], r'weights must be finite, >= 0 and not all zero'),
    (3, 'geometric:1.5', r"frequencies: geometric ratio must be in \(0, 1\], got '1.5'"),
    (3, 'zipf', r"frequencies: expected 'uniform', 'geometric\[:R\]' or comma-separated weights, got 'zipf'"),
    (0, None, r'num_modes must be an integer in \[1, 32\], got 0'),
    (33, None, r'num_modes must be an integer in \[1, 32\], got 33'),
])
def test_frequency_errors(num_modes, spec, pattern):
    with pytest.raises(ValueError, match=pattern):
        synthetic.mode_frequencies(num_modes, spec)


def test_argument_errors():
    with pytest.raises(ValueError, match=r'resolution must be a power of two >= 8, got 24'):
        synthetic.iter_synthetic_images(4, resolution=24)
    with pytest.raises(ValueError, match=r'num_images must be a positive integer, got 0'):
        synthetic.iter_synthetic_images(0)
    with pytest.raises(ValueError, match=r'seed must be an integer in \[0, 2\*\*32\), got -1'):
        synthetic.iter_synthetic_images(4, seed=-1)

#----------------------------------------------------------------------------

def test_modes_are_distinct_in_colour():
    for num_modes in (8, synthetic.MAX_MODES):
        bg, fg = synthetic.mode_prototypes(num_modes)
        pairs = np.concatenate([bg, fg], axis=1)
        dist = np.linalg.norm(pairs[:, None] - pairs[None], axis=2) + np.eye(num_modes) * 1e9
        assert dist.min() > 60
        assert np.linalg.norm(bg - fg, axis=1).min() > 100  # foreground stands out from its background
        assert len(set(synthetic.mode_names(num_modes))) == num_modes
    assert synthetic.mode_names(2) == ['circle-red-on-black', 'square-green-on-grey']


def test_deterministic_and_prefix_stable():
    a_img, a_mode = synthetic.generate_synthetic_images(40, resolution=16, seed=5)
    b_img, b_mode = synthetic.generate_synthetic_images(40, resolution=16, seed=5)
    c_img, c_mode = synthetic.generate_synthetic_images(10, resolution=16, seed=5)
    d_img, _ = synthetic.generate_synthetic_images(40, resolution=16, seed=6)
    assert a_img.shape == (40, 3, 16, 16) and a_img.dtype == np.uint8 and a_mode.dtype == np.int64
    np.testing.assert_array_equal(a_img, b_img)
    np.testing.assert_array_equal(a_mode, b_mode)
    np.testing.assert_array_equal(a_img[:10], c_img)
    np.testing.assert_array_equal(a_mode[:10], c_mode)
    assert not np.array_equal(a_img, d_img)


def test_frequencies_match_configuration():
    num = 2000
    for spec in (None, 'uniform', '5,0,1,1'):
        num_modes = 4 if spec == '5,0,1,1' else 8
        p = synthetic.mode_frequencies(num_modes, spec)
        stream = synthetic.iter_synthetic_images(num, resolution=8, num_modes=num_modes, frequencies=spec, seed=1)
        modes = np.array([m for _, m in stream])
        observed = np.bincount(modes, minlength=num_modes) / num
        tolerance = 4 * np.sqrt(p * (1 - p) / num) + 1e-9  # 4 standard deviations
        assert np.all(np.abs(observed - p) <= tolerance), (spec, observed, p)
        if spec == '5,0,1,1':
            assert observed[1] == 0


def test_images_have_clean_border_and_visible_shape():
    images, modes = synthetic.generate_synthetic_images(200, resolution=32, seed=2)
    bg, fg = synthetic.mode_prototypes()
    ring = np.ones([32, 32], bool)
    ring[2:30, 2:30] = False
    for img, k in zip(images.astype(np.float64), modes):
        border = img[:, ring]
        assert np.all(border == border[:, :1])  # one flat background colour
        assert np.abs(border[:, 0] - bg[k]).max() <= 8
        near_fg = np.linalg.norm(img.reshape(3, -1).T - fg[k], axis=1) < 25
        assert near_fg.mean() > 0.05  # the classifier takes the farthest 5% as foreground


def test_classifier_recovers_true_modes():
    for num_modes, res in ((8, 32), (synthetic.MAX_MODES, 16), (8, 8)):
        images, modes = synthetic.generate_synthetic_images(800, resolution=res, num_modes=num_modes, frequencies='uniform', seed=3)
        pred, dist = synthetic.classify_modes(images, num_modes=num_modes, return_distances=True)
        assert pred.dtype == np.int64 and dist.shape == (800,)
        assert (pred == modes).mean() >= 0.95, (num_modes, res, (pred == modes).mean())
        # Mirrored images keep their mode.
        assert (synthetic.classify_modes(images[:, :, :, ::-1].copy(), num_modes) == modes).mean() >= 0.95


def test_classifier_accepts_generator_style_input():
    images, modes = synthetic.generate_synthetic_images(100, resolution=16, seed=4)
    floats = misc.uint8_to_images(torch.from_numpy(images))  # [-1, 1], as G outputs
    noisy = floats + 0.05 * torch.randn(floats.shape, generator=torch.Generator().manual_seed(0))
    assert (synthetic.classify_modes(noisy) == modes).mean() >= 0.95
    assert (synthetic.classify_modes(noisy.numpy()) == modes).mean() >= 0.95
    # A blank image resembles no mode: its distance is large.
    _, blank = synthetic.classify_modes(torch.zeros([1, 3, 16, 16]), return_distances=True)
    _, real = synthetic.classify_modes(images, return_distances=True)
    assert blank[0] > 3 * np.median(real)


def test_classifier_errors():
    with pytest.raises(ValueError, match=r'classify_modes: images must be \[N, 3, H, W\], got shape \[2, 1, 8, 8\]'):
        synthetic.classify_modes(np.zeros([2, 1, 8, 8], np.uint8))
    with pytest.raises(TypeError, match=r'classify_modes: images must be uint8 pixels or float images in \[-1, 1\], got dtype torch.int32'):
        synthetic.classify_modes(torch.zeros([2, 3, 8, 8], dtype=torch.int32))
    with pytest.raises(TypeError, match=r'classify_modes: images must be a torch tensor or numpy array, got list'):
        synthetic.classify_modes([[0]])

#----------------------------------------------------------------------------

def test_make_synthetic_dataset_files(tmp_path):
    path = synthetic.make_synthetic_dataset(str(tmp_path / 'shapes.zip'), num_images=30, resolution=16, num_modes=4, frequencies='uniform', seed=7)
    images, modes = synthetic.generate_synthetic_images(30, resolution=16, num_modes=4, frequencies='uniform', seed=7)
    ds = ImageFolderDataset(path, use_labels=True)
    assert len(ds) == 30 and ds.resolution == 16 and ds.name == 'shapes'
    assert not ds.has_labels and ds.has_modes
    np.testing.assert_array_equal(ds.get_modes(), modes)
    np.testing.assert_array_equal(np.stack([ds[i][0] for i in range(30)]), images)
    info = ds.mode_info
    assert info['num_modes'] == 4 and info['seed'] == 7 and info['frequencies'] == [0.25] * 4
    assert info['mode_names'] == synthetic.mode_names(4)

    folder = synthetic.make_synthetic_dataset(str(tmp_path / 'cond'), num_images=12, resolution=8, seed=7, cond=True)
    ds = ImageFolderDataset(folder, use_labels=True)
    assert ds.has_labels and ds.has_onehot_labels
    for i in range(12):
        assert int(np.argmax(ds.get_label(i))) == ds.get_mode(i)

#----------------------------------------------------------------------------
