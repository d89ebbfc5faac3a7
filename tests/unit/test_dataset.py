"""Unit tests for training/dataset.py: folder/zip reading, labels, x-flips, subsets, modes, error messages, the writer."""

import io
import json
import os
import pickle
import zipfile

import numpy as np
import PIL.Image
import pytest

from training import dataset
from training.dataset import DatasetError, DatasetWriter, ImageFolderDataset

#----------------------------------------------------------------------------
# Helpers: a tiny folder of PNGs, optionally with dataset.json, and its zip twin.

def _png(array):
    buf = io.BytesIO()
    PIL.Image.fromarray(array).save(buf, format='png')
    return buf.getvalue()

def _random_images(num, res=8, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    shape = [num, res, res, channels] if channels > 1 else [num, res, res]
    return rng.integers(0, 256, size=shape, dtype=np.uint8)

def _write_files(root, files):
    for name, data in files.items():
        path = os.path.join(root, *name.split('/'))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'wb') as f:
            f.write(data if isinstance(data, bytes) else json.dumps(data).encode())

def _make_pair(tmp_path, files):
    folder = tmp_path / 'ds'
    _write_files(str(folder), files)
    zip_path = tmp_path / 'ds.zip'
    with zipfile.ZipFile(zip_path, 'w') as zf:
        for name, data in files.items():
            zf.writestr(name, data if isinstance(data, bytes) else json.dumps(data))
    return str(folder), str(zip_path)

def _labelled_files(num=6, labels='int'):
    images = _random_images(num)
    names = [f'sub{i % 2}/img{i}.png' for i in range(num)]
    files = {n: _png(img) for n, img in zip(names, images)}
    if labels == 'int':
        files['dataset.json'] = {'labels': [[n, i % 3] for i, n in enumerate(names)]}
    elif labels == 'float':
        files['dataset.json'] = {'labels': [[n, [i * 0.5, -1.0]] for i, n in enumerate(names)]}
    return files, dict(zip(names, images))

#----------------------------------------------------------------------------

def test_zip_and_folder_give_equal_items(tmp_path):
    files, by_name = _labelled_files()
    folder, zip_path = _make_pair(tmp_path, files)
    a = ImageFolderDataset(folder, use_labels=True)
    b = ImageFolderDataset(zip_path, use_labels=True)
    assert len(a) == len(b) == 6 and a.name == b.name == 'ds'
    assert a.image_shape == b.image_shape == [3, 8, 8] and a.resolution == 8 and a.num_channels == 3
    sorted_names = sorted(by_name)
    for i in range(len(a)):
        (img_a, lab_a), (img_b, lab_b) = a[i], b[i]
        assert img_a.dtype == np.uint8 and img_a.shape == (3, 8, 8)
        np.testing.assert_array_equal(img_a, img_b)
        np.testing.assert_array_equal(img_a, by_name[sorted_names[i]].transpose(2, 0, 1))
        np.testing.assert_array_equal(lab_a, lab_b)
    a.close()
    b.close()


def test_name_ignores_trailing_slash(tmp_path):
    files, _ = _labelled_files(labels=None)
    folder, _ = _make_pair(tmp_path, files)
    assert ImageFolderDataset(folder + os.sep).name == 'ds'


def test_int_labels_become_onehot(tmp_path):
    files, by_name = _labelled_files(labels='int')
    folder, _ = _make_pair(tmp_path, files)
    ds = ImageFolderDataset(folder, use_labels=True)
    assert ds.has_labels and ds.has_onehot_labels and ds.label_shape == [3] and ds.label_dim == 3
    # Sorted order: sub0/img0, sub0/img2, sub0/img4, sub1/img1, ... -> classes i % 3.
    expected_classes = [int(n.split('img')[1].split('.')[0]) % 3 for n in sorted(by_name)]
    for i, cls in enumerate(expected_classes):
        label = ds.get_label(i)
        assert label.dtype == np.float32
        np.testing.assert_array_equal(label, np.eye(3, dtype=np.float32)[cls])
        assert int(ds.get_details(i).raw_label) == cls


def test_float_labels_and_disabled_labels(tmp_path):
    files, _ = _labelled_files(labels='float')
    folder, _ = _make_pair(tmp_path, files)
    ds = ImageFolderDataset(folder, use_labels=True)
    assert ds.has_labels and not ds.has_onehot_labels and ds.label_shape == [2]
    np.testing.assert_array_equal(ds.get_label(0), np.array([0.0, -1.0], dtype=np.float32))
    off = ImageFolderDataset(folder, use_labels=False)
    assert not off.has_labels and off.label_shape == [0] and off.get_label(0).shape == (0,)
    assert off.get_label(0).dtype == np.float32


def test_xflip_doubles_and_mirrors(tmp_path):
    files, _ = _labelled_files(labels=None)
    folder, _ = _make_pair(tmp_path, files)
    plain = ImageFolderDataset(folder)
    flipped = ImageFolderDataset(folder, xflip=True)
    assert len(flipped) == 2 * len(plain)
    for i in range(len(plain)):
        np.testing.assert_array_equal(flipped[i][0], plain[i][0])
        np.testing.assert_array_equal(flipped[i + len(plain)][0], plain[i][0][:, :, ::-1])
        assert not flipped.get_details(i).xflip and flipped.get_details(i + len(plain)).xflip
        assert flipped.get_details(i + len(plain)).raw_idx == i
    # Items are fresh arrays, not views of a cache.
    img, _ = flipped[len(plain)]
    img[:] = 0
    assert flipped[len(plain)][0].any()


def test_max_size_subset_is_seeded_sorted_and_before_xflip(tmp_path):
    images = _random_images(20)
    folder, _ = _make_pair(tmp_path, {f'{i:02d}.png': _png(img) for i, img in enumerate(images)})
    ds = ImageFolderDataset(folder, max_size=5, random_seed=3, xflip=True)
    assert len(ds) == 10
    raw = [ds.get_details(i).raw_idx for i in range(5)]
    order = np.arange(20, dtype=np.int64)
    np.random.RandomState(3).shuffle(order)
    assert raw == sorted(order[:5].tolist())
    assert raw == [ds.get_details(i + 5).raw_idx for i in range(5)]
    again = ImageFolderDataset(folder, max_size=5, random_seed=3)
    assert [again.get_details(i).raw_idx for i in range(5)] == raw
    other = ImageFolderDataset(folder, max_size=5, random_seed=4)
    assert [other.get_details(i).raw_idx for i in range(5)] != raw
    assert len(ImageFolderDataset(folder, max_size=50)) == 20


def test_modes_are_exposed(tmp_path):
    images = _random_images(4)
    names = [f'img{i}.png' for i in range(4)]
    files = {n: _png(img) for n, img in zip(names, images)}
    files['dataset.json'] = {'labels': None, 'modes': [[n, m] for n, m in zip(names, [2, 0, 1, 2])],
                             'synthetic': {'num_modes': 3}}
    folder, zip_path = _make_pair(tmp_path, files)
    for path in (folder, zip_path):
        ds = ImageFolderDataset(path, xflip=True, use_labels=True)
        assert ds.has_modes and not ds.has_labels and ds.mode_info == {'num_modes': 3}
        assert [ds.get_mode(i) for i in range(8)] == [2, 0, 1, 2] * 2
        np.testing.assert_array_equal(ds.get_modes(), [2, 0, 1, 2] * 2)
        assert ds.get_details(2).mode == 1
    plain, _ = _make_pair(tmp_path / 'p', {n: _png(img) for n, img in zip(names, images)})
    ds = ImageFolderDataset(plain)
    assert not ds.has_modes and ds.mode_info is None
    with pytest.raises(ValueError, match=r'has no per-image mode labels; build one with dataset_tool.py --source=synthetic'):
        ds.get_mode(0)


def test_pickle_drops_handles_and_caches(tmp_path):
    files, _ = _labelled_files()
    _, zip_path = _make_pair(tmp_path, files)
    ds = ImageFolderDataset(zip_path, use_labels=True)
    first = ds[0]
    state = ds.__getstate__()
    assert state['_zipfile'] is None and state['_raw_labels'] is None
    clone = pickle.loads(pickle.dumps(ds))
    np.testing.assert_array_equal(clone[0][0], first[0])
    np.testing.assert_array_equal(clone[0][1], first[1])
    # A different process id (as in a forked worker) reopens the zip instead of sharing it.
    handle = ds._get_zipfile()
    ds._zip_pid = -1
    assert ds._get_zipfile() is not handle
    handle.close()
    ds.close()

#----------------------------------------------------------------------------
# Errors refused up front.

def test_error_type_is_oserror_and_valueerror():
    assert issubclass(DatasetError, OSError) and issubclass(DatasetError, ValueError)


def test_missing_and_wrong_paths(tmp_path):
    with pytest.raises(DatasetError, match=r"'.*nope' does not exist; point to a dataset folder or .zip made by dataset_tool.py"):
        ImageFolderDataset(str(tmp_path / 'nope'))
    other = tmp_path / 'data.tar'
    other.write_bytes(b'x')
    with pytest.raises(DatasetError, match=r"'.*data.tar' is neither a folder nor a .zip file"):
        ImageFolderDataset(str(other))
    bad_zip = tmp_path / 'bad.zip'
    bad_zip.write_bytes(b'not a zip')
    with pytest.raises(DatasetError, match=r"'.*bad.zip' is not a readable zip file .*rebuild it with dataset_tool.py"):
        ImageFolderDataset(str(bad_zip))


def test_empty_dataset_is_refused(tmp_path):
    folder, zip_path = _make_pair(tmp_path, {'notes.txt': b'hello', 'dataset.json': {'labels': None}})
    for path in (folder, zip_path):
        with pytest.raises(DatasetError, match=r"No image files found in '.*ds(\.zip)?'; build the dataset with dataset_tool.py"):
            ImageFolderDataset(path)


def test_non_square_and_non_power_of_two_are_refused(tmp_path):
    wide, _ = _make_pair(tmp_path / 'a', {'wide.png': _png(np.zeros([8, 16, 3], np.uint8))})
    with pytest.raises(DatasetError, match=r"^'wide.png' is 16x8 but dataset images must be square; "
                                           r"re-run dataset_tool.py with --transform=center-crop --width=8 --height=8$"):
        ImageFolderDataset(wide)
    odd, _ = _make_pair(tmp_path / 'b', {'odd.png': _png(np.zeros([250, 250, 3], np.uint8))})
    with pytest.raises(DatasetError, match=r"^'odd.png' is 250x250 but the resolution must be a power of two >= 4; "
                                           r"re-run dataset_tool.py with --width=256 --height=256$"):
        ImageFolderDataset(odd)


def test_resolution_argument_mismatch(tmp_path):
    folder, _ = _make_pair(tmp_path, {'cat_0001.png': _png(np.zeros([8, 8, 3], np.uint8))})
    with pytest.raises(DatasetError, match=r"^'cat_0001.png' is 8x8 but the dataset is 16x16; re-run dataset_tool.py with --width=16 --height=16$"):
        ImageFolderDataset(folder, resolution=16)
    assert ImageFolderDataset(folder, resolution=8).resolution == 8


def test_bad_max_size(tmp_path):
    folder, _ = _make_pair(tmp_path, {'a.png': _png(np.zeros([8, 8, 3], np.uint8))})
    with pytest.raises(ValueError, match=r'max_size must be a positive integer or None, got 0'):
        ImageFolderDataset(folder, max_size=0)

#----------------------------------------------------------------------------
# Errors found when an image is read: they name the file.

def test_size_mismatch_names_file_and_fix(tmp_path):
    files = {'cat_0001.png': _png(np.zeros([256, 256, 3], np.uint8)),
             'cat_0042.png': _png(np.zeros([250, 250, 3], np.uint8))}
    folder, zip_path = _make_pair(tmp_path, files)
    for path in (folder, zip_path):
        ds = ImageFolderDataset(path)
        ds[0]
        with pytest.raises(DatasetError, match=r"^'cat_0042.png' is 250x250 but the dataset is 256x256; "
                                               r"re-run dataset_tool.py with --width=256 --height=256$"):
            ds[1]
        with pytest.raises(DatasetError, match=r"'cat_0042.png' is 250x250 but the dataset is 256x256"):
            ds.check_all_images()


def test_channel_mismatch_names_file(tmp_path):
    files = {'a.png': _png(np.zeros([8, 8, 3], np.uint8)), 'b.png': _png(np.zeros([8, 8], np.uint8))}
    folder, _ = _make_pair(tmp_path, files)
    ds = ImageFolderDataset(folder)
    with pytest.raises(DatasetError, match=r"^'b.png' has 1 channel\(s\) \(grayscale\) but the dataset has 3 \(RGB\); re-run dataset_tool.py"):
        ds[1]
    with pytest.raises(DatasetError, match=r"'b.png' has 1 channel"):
        ds.check_all_images()


def test_grayscale_dataset(tmp_path):
    folder, _ = _make_pair(tmp_path, {'a.png': _png(np.full([4, 4], 7, np.uint8))})
    ds = ImageFolderDataset(folder)
    assert ds.num_channels == 1 and ds[0][0].shape == (1, 4, 4) and ds[0][0][0, 0, 0] == 7


def test_corrupt_image_names_file(tmp_path):
    good = _png(np.zeros([8, 8, 3], np.uint8))
    files = {'a.png': good, 'broken.png': good[:40], 'junk.jpg': b'this is not an image'}
    folder, zip_path = _make_pair(tmp_path, files)
    for path in (folder, zip_path):
        ds = ImageFolderDataset(path)
        with pytest.raises(DatasetError, match=r"^'broken.png' in '.*' cannot be read as an image \(.*\); replace or delete it"):
            ds[1]
        with pytest.raises(DatasetError, match=r"^'junk.jpg' in '.*' cannot be read as an image"):
            ds[2]
    first_bad, _ = _make_pair(tmp_path / 'c', {'0.png': b'garbage'})
    with pytest.raises(DatasetError, match=r"'0.png' in '.*' cannot be read as an image"):
        ImageFolderDataset(first_bad)


def test_palette_image_is_refused(tmp_path):
    buf = io.BytesIO()
    PIL.Image.new('P', (8, 8)).save(buf, format='png')
    folder, _ = _make_pair(tmp_path, {'pal.png': buf.getvalue()})
    with pytest.raises(DatasetError, match=r"^'pal.png' has PIL mode 'P' but dataset images must be 8-bit grayscale, RGB or RGBA"):
        ImageFolderDataset(folder)


def test_label_errors(tmp_path):
    images = {f'img{i}.png': _png(np.zeros([8, 8, 3], np.uint8)) for i in range(3)}
    cases = [
        ({'labels': [['img0.png', 0], ['img1.png', 1]]}, r"dataset.json: \"labels\" has no entry for 'img2.png' \(1 of 3 images lack one\)"),
        ({'labels': [['img0.png', 0], ['img1.png', [1.0]], ['img2.png', 2]]}, r'labels must be all class indices \(integers\) or all equal-length lists'),
        ({'labels': [['img0.png', -1], ['img1.png', 1], ['img2.png', 2]]}, r'class labels must be >= 0, got -1'),
        ({'labels': 5}, r'"labels" must be null or a list of \[file name, value\] pairs'),
    ]
    for i, (meta, pattern) in enumerate(cases):
        folder, _ = _make_pair(tmp_path / str(i), dict(images, **{'dataset.json': meta}))
        ds = ImageFolderDataset(folder, use_labels=True)
        with pytest.raises(DatasetError, match=pattern):
            ds.get_label(0)
        assert ImageFolderDataset(folder, use_labels=False).get_label(0).shape == (0,)
    folder, _ = _make_pair(tmp_path / 'json', dict(images, **{'dataset.json': b'{"labels": [oops'}))
    with pytest.raises(DatasetError, match=r"'dataset.json' in '.*' is not valid JSON"):
        ImageFolderDataset(folder, use_labels=True).get_label(0)

#----------------------------------------------------------------------------
# The writer.

def test_writer_zip_layout_and_determinism(tmp_path):
    images = _random_images(3)
    digests = []
    for run in range(2):
        dest = tmp_path / f'out{run}.zip'
        with DatasetWriter(str(dest)) as writer:
            for i, img in enumerate(images):
                writer.add_image(dataset.image_archive_name(i), img)
            writer.write_metadata({'labels': None})
        with zipfile.ZipFile(dest) as zf:
            infos = zf.infolist()
            assert [i.filename for i in infos] == ['00000/img00000000.png', '00000/img00000001.png', '00000/img00000002.png', 'dataset.json']
            assert all(i.compress_type == zipfile.ZIP_STORED for i in infos)
            assert json.loads(zf.read('dataset.json')) == {'labels': None}
        digests.append(dest.read_bytes())
    assert digests[0] == digests[1]
    assert dataset.image_archive_name(49999) == '00049/img00049999.png'
    ds = ImageFolderDataset(str(tmp_path / 'out0.zip'))
    np.testing.assert_array_equal(ds[2][0], images[2].transpose(2, 0, 1))


def test_writer_folder_is_atomic(tmp_path):
    dest = tmp_path / 'out'
    with pytest.raises(RuntimeError):
        with DatasetWriter(str(dest)) as writer:
            writer.add_image('00000/img00000000.png', np.zeros([4, 4], np.uint8))
            raise RuntimeError('boom')
    assert not dest.exists() and os.listdir(tmp_path) == []
    with pytest.raises(RuntimeError):
        with DatasetWriter(str(tmp_path / 'out.zip')) as writer:
            raise RuntimeError('boom')
    assert os.listdir(tmp_path) == []
    dest.mkdir()
    with DatasetWriter(str(dest)) as writer:
        writer.add_image('00000/img00000000.png', np.zeros([4, 4], np.uint8))
        writer.write_metadata({'labels': None})
    assert sorted(os.listdir(dest)) == ['00000', 'dataset.json']
    with pytest.raises(ValueError, match=r"'.*out' exists and is not an empty folder; choose a new destination or empty it"):
        DatasetWriter(str(dest))
    with pytest.raises(ValueError, match=r"encode_png: image must be \[H, W\], \[H, W, 1\] or \[H, W, 3\], got \[4, 4, 4\]"):
        dataset.encode_png(np.zeros([4, 4, 4], np.uint8))

#----------------------------------------------------------------------------
