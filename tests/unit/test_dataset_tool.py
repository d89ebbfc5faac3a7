"""Unit tests for dataset_tool.py: every source kind, transforms, validation messages, output layout, synthetic data."""

import gzip
import io
import json
import os
import pickle
import re
import sys
import tarfile
import types
import zipfile

import numpy as np
import PIL.Image
import pytest
from click.testing import CliRunner

import dataset_tool
from training import synthetic
from training.dataset import ImageFolderDataset

#----------------------------------------------------------------------------
# Helpers.

def _run(*args):
    return CliRunner().invoke(dataset_tool.convert_dataset, list(args), catch_exceptions=False)

def _ok(*args):
    result = _run(*args)
    assert result.exit_code == 0, result.output
    return result

def _fails(pattern, *args):
    result = _run(*args)
    assert result.exit_code == 1, result.output
    assert re.search(pattern, result.output), result.output
    return result

def _save(path, array, fmt='png'):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    PIL.Image.fromarray(array).save(path, format=fmt)

def _images(num, height=8, width=8, channels=3, seed=0):
    shape = [num, height, width] + ([channels] if channels > 1 else [])
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)

def _read_all(path, use_labels=True):
    ds = ImageFolderDataset(str(path), use_labels=use_labels)
    return ds, np.stack([ds[i][0] for i in range(len(ds))])

#----------------------------------------------------------------------------
# Sources.

def test_folder_to_zip_with_labels(tmp_path):
    src = tmp_path / 'src'
    images = _images(5)
    names = ['b/x.png', 'a/y.png', 'a/z/w.png', 'c.png', 'd.png']
    for name, img in zip(names, images):
        _save(str(src / name), img)
    (src / 'notes.txt').write_text('not an image')
    (src / 'dataset.json').write_text(json.dumps({'labels': [[n, i] for i, n in enumerate(names)]}))
    dest = tmp_path / 'out.zip'
    _ok('--source', str(src), '--dest', str(dest))

    with zipfile.ZipFile(dest) as zf:
        assert zf.namelist() == [f'00000/img{i:08d}.png' for i in range(5)] + ['dataset.json']
        assert all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist())
        meta = json.loads(zf.read('dataset.json'))
    # Sorted as paths: a/y, a/z/w, b/x, c, d.
    order = [1, 2, 0, 3, 4]
    assert meta == {'labels': [[f'00000/img{i:08d}.png', order[i]] for i in range(5)]}
    ds, pixels = _read_all(dest)
    np.testing.assert_array_equal(pixels, images[order].transpose(0, 3, 1, 2))
    assert [int(np.argmax(ds.get_label(i))) for i in range(5)] == order


def test_partial_labels_are_refused(tmp_path):
    # Issue 15: dropping every label because one image lacks one was silent.
    src = tmp_path / 'src'
    for i, img in enumerate(_images(2)):
        _save(str(src / f'{i}.png'), img)
    (src / 'dataset.json').write_text(json.dumps({'labels': [['0.png', 1]]}))
    _fails(r"--source: 1 of 2 images have no label \(e.g. '1.png'\)", '--source', str(src), '--dest', str(tmp_path / 'out'))
    assert not (tmp_path / 'out').exists()


def test_zip_to_folder_equals_source(tmp_path):
    images = _images(3, channels=1)
    src = tmp_path / 'src.zip'
    with zipfile.ZipFile(src, 'w') as zf:
        for i, img in enumerate(images):
            buf = io.BytesIO()
            PIL.Image.fromarray(img).save(buf, format='png')
            zf.writestr(f'imgs/{i}.png', buf.getvalue())
        zf.writestr('dataset.json', json.dumps({'labels': [[f'imgs/{i}.png', [float(i)]] for i in range(3)]}))
    dest = tmp_path / 'out'
    _ok('--source', str(src), '--dest', str(dest), '--max-images', '2')
    ds, pixels = _read_all(dest)
    assert len(ds) == 2 and ds.num_channels == 1 and ds.label_shape == [1]
    np.testing.assert_array_equal(pixels[:, 0], images[:2])
    np.testing.assert_array_equal(ds.get_label(1), [1.0])


def _cifar_archive(path, per_batch=2):
    rng = np.random.default_rng(0)
    batches = []
    with tarfile.open(path, 'w:gz') as tar:
        for b in range(1, 6):
            data = rng.integers(0, 256, size=[per_batch, 3072], dtype=np.uint8)
            labels = [(b + i) % 10 for i in range(per_batch)]
            batches.append((data, labels))
            blob = pickle.dumps({'data': data, 'labels': labels})
            info = tarfile.TarInfo(f'cifar-10-batches-py/data_batch_{b}')
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    images = np.concatenate([d for d, _ in batches]).reshape(-1, 3, 32, 32)
    return images, sum((l for _, l in batches), [])


def test_cifar10_archive(tmp_path):
    src = tmp_path / 'cifar-10-python.tar.gz'
    images, labels = _cifar_archive(str(src))
    dest = tmp_path / 'cifar.zip'
    _ok('--source', str(src), '--dest', str(dest))
    ds, pixels = _read_all(dest)
    assert len(ds) == 10 and ds.resolution == 32 and ds.label_shape == [max(labels) + 1]
    np.testing.assert_array_equal(pixels, images)
    assert [int(np.argmax(ds.get_label(i))) for i in range(10)] == labels


def _mnist_files(folder, num=3):
    images = np.random.default_rng(1).integers(0, 256, size=[num, 28, 28], dtype=np.uint8)
    labels = np.arange(num, dtype=np.uint8) + 4
    with gzip.open(os.path.join(folder, 'train-images-idx3-ubyte.gz'), 'wb') as f:
        f.write((0x803).to_bytes(4, 'big') + b''.join(x.to_bytes(4, 'big') for x in (num, 28, 28)) + images.tobytes())
    with gzip.open(os.path.join(folder, 'train-labels-idx1-ubyte.gz'), 'wb') as f:
        f.write((0x801).to_bytes(4, 'big') + num.to_bytes(4, 'big') + labels.tobytes())
    return images, labels


def test_mnist_files(tmp_path):
    images, labels = _mnist_files(str(tmp_path))
    dest = tmp_path / 'mnist.zip'
    _ok('--source', str(tmp_path / 'train-images-idx3-ubyte.gz'), '--dest', str(dest))
    ds, pixels = _read_all(dest)
    assert ds.image_shape == [1, 32, 32]
    np.testing.assert_array_equal(pixels[:, 0, 2:30, 2:30], images)
    assert pixels[:, :, :2].max() == 0 and pixels[:, :, :, 30:].max() == 0
    assert [int(np.argmax(ds.get_label(i))) for i in range(3)] == labels.tolist()


def test_mnist_bad_header(tmp_path):
    _mnist_files(str(tmp_path))
    with gzip.open(tmp_path / 'train-labels-idx1-ubyte.gz', 'wb') as f:
        f.write(b'\0\0\0\0')
    _fails(r"is not an MNIST labels file \(bad IDX header\)", '--source', str(tmp_path / 'train-images-idx3-ubyte.gz'), '--dest', str(tmp_path / 'o.zip'))
    assert not (tmp_path / 'o.zip').exists()


def test_lsun_lmdb_with_fake_module(tmp_path, monkeypatch):
    images = _images(3, height=8, width=12)
    records = []
    for i, img in enumerate(images):
        buf = io.BytesIO()
        PIL.Image.fromarray(img).save(buf, format='png')
        records.append((f'key{i}'.encode(), buf.getvalue()))
    records.insert(1, (b'bad', b'not an image'))

    class Txn:
        def __enter__(self): return self
        def __exit__(self, *exc): return False
        def stat(self): return {'entries': len(records)}
        def cursor(self): return iter(records)

    class Env:
        def begin(self, write=False): return Txn()
        def close(self): pass

    monkeypatch.setitem(sys.modules, 'lmdb', types.SimpleNamespace(open=lambda path, readonly, lock: Env()))
    src = tmp_path / 'cat_lmdb'
    src.mkdir()
    dest = tmp_path / 'lsun.zip'
    result = _ok('--source', str(src) + '/', '--dest', str(dest), '--transform', 'center-crop', '--width', '8', '--height', '8', '--max-images', '3')
    assert "Skipping LSUN record 'bad'" in result.output
    ds, pixels = _read_all(dest)
    assert len(ds) == 2  # the bad record counts towards --max-images
    np.testing.assert_array_equal(pixels[0], images[0][:, 2:10].transpose(2, 0, 1))


def test_lsun_needs_lmdb(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, 'lmdb', None)
    src = tmp_path / 'dog_lmdb'
    src.mkdir()
    _fails(r"reading the LSUN database '.*dog_lmdb' needs the 'lmdb' package; install it with 'pip install lmdb'",
           '--source', str(src), '--dest', str(tmp_path / 'o.zip'))

#----------------------------------------------------------------------------
# Transforms.

def test_resize_filters_match_pil(tmp_path):
    img = _images(1, 16, 16)[0]
    _save(str(tmp_path / 'src' / 'a.png'), img)
    for name, flt in (('box', PIL.Image.BOX), ('lanczos', PIL.Image.LANCZOS)):
        dest = tmp_path / f'{name}.zip'
        _ok('--source', str(tmp_path / 'src'), '--dest', str(dest), '--width', '8', '--height', '8', '--resize-filter', name)
        expected = np.array(PIL.Image.fromarray(img).resize((8, 8), flt))
        np.testing.assert_array_equal(_read_all(dest)[1][0], expected.transpose(2, 0, 1))


def test_center_crop(tmp_path):
    img = _images(1, 8, 12)[0]
    _save(str(tmp_path / 'src' / 'a.png'), img)
    dest = tmp_path / 'o.zip'
    _ok('--source', str(tmp_path / 'src'), '--dest', str(dest), '--transform', 'center-crop', '--width', '4', '--height', '4')
    expected = np.array(PIL.Image.fromarray(img[:, 2:10]).resize((4, 4), PIL.Image.LANCZOS))
    np.testing.assert_array_equal(_read_all(dest)[1][0], expected.transpose(2, 0, 1))


def test_center_crop_wide(tmp_path):
    wide = _images(1, 8, 16)[0]          # aspect 2:1 -> kept whole, letterboxed
    small = _images(1, 4, 6, seed=1)[0]  # narrower than --width -> skipped
    _save(str(tmp_path / 'src' / 'a.png'), wide)
    _save(str(tmp_path / 'src' / 'b.png'), small)
    _save(str(tmp_path / 'src' / 'c.png'), wide)
    dest = tmp_path / 'o.zip'
    _ok('--source', str(tmp_path / 'src'), '--dest', str(dest), '--transform', 'center-crop-wide', '--width', '16', '--height', '8')
    with zipfile.ZipFile(dest) as zf:
        assert zf.namelist() == ['00000/img00000000.png', '00000/img00000002.png', 'dataset.json']
    pixels = _read_all(dest)[1]
    assert pixels.shape == (2, 3, 16, 16)
    np.testing.assert_array_equal(pixels[0, :, 4:12], wide.transpose(2, 0, 1))
    assert pixels[0, :, :4].max() == 0 and pixels[0, :, 12:].max() == 0


def test_color_modes_are_normalised(tmp_path):
    src = tmp_path / 'src'
    rgba = np.dstack([_images(1)[0], np.full([8, 8], 9, np.uint8)])
    _save(str(src / '0.png'), rgba)
    PIL.Image.fromarray(_images(1, seed=2)[0]).convert('P').save(src / '1.png')
    gray = _images(1, channels=1, seed=3)[0]
    _save(str(src / '2.png'), gray)
    dest = tmp_path / 'o.zip'
    _ok('--source', str(src), '--dest', str(dest))
    pixels = _read_all(dest)[1]
    assert pixels.shape == (3, 3, 8, 8)
    np.testing.assert_array_equal(pixels[0], rgba[:, :, :3].transpose(2, 0, 1))
    np.testing.assert_array_equal(pixels[2], np.stack([gray] * 3))  # grayscale joins an RGB dataset losslessly

#----------------------------------------------------------------------------
# Validation errors: clear messages, exit status 1, nothing written.

def test_validation_errors(tmp_path):
    def folder(name, *arrays):
        for i, a in enumerate(arrays):
            _save(str(tmp_path / name / f'{i}.png'), a)
        return str(tmp_path / name)
    out = str(tmp_path / 'out.zip')
    _fails(r"'0.png' is 12x8 after resizing/cropping but dataset images must be square; use --transform=center-crop --width=8 --height=8",
           '--source', folder('wide', _images(1, 8, 12)[0]), '--dest', out)
    _fails(r"'0.png' is 20x20 but the resolution must be a power of two >= 4; use --width=16 --height=16",
           '--source', folder('odd', _images(1, 20, 20)[0]), '--dest', out)
    _fails(r"'1.png' is 4x4 but earlier images \(e.g. '0.png'\) are 8x8; use --width=8 --height=8 to resize all images",
           '--source', folder('mixed', _images(1)[0], _images(1, 4, 4)[0]), '--dest', out)
    _fails(r"'1.png' is RGB but earlier images \(e.g. '0.png'\) are grayscale",
           '--source', folder('gray', _images(1, channels=1)[0], _images(1)[0]), '--dest', out)
    _fails(r'--transform=center-crop needs both --width and --height',
           '--source', folder('any', _images(1)[0]), '--dest', out, '--transform', 'center-crop', '--width', '8')
    assert not os.path.exists(out) and not any(n.endswith('.tmp') for n in os.listdir(tmp_path))


def test_source_and_dest_errors(tmp_path):
    _fails(r"--source: '.*missing' does not exist", '--source', str(tmp_path / 'missing'), '--dest', str(tmp_path / 'o.zip'))
    (tmp_path / 'data.csv').write_text('x')
    _fails(r"--source: cannot read '.*data.csv'; expected an image folder, a .zip", '--source', str(tmp_path / 'data.csv'), '--dest', str(tmp_path / 'o.zip'))
    (tmp_path / 'empty').mkdir()
    _fails(r"--source: no images to write from '.*empty'", '--source', str(tmp_path / 'empty'), '--dest', str(tmp_path / 'o.zip'))
    (tmp_path / 'full').mkdir()
    (tmp_path / 'full' / 'x').write_text('x')
    _fails(r"--dest: '.*full' exists and is not an empty folder", '--source', 'synthetic', '--dest', str(tmp_path / 'full'))
    _save(str(tmp_path / 'bad' / 'a.png'), _images(1)[0])
    (tmp_path / 'bad' / 'b.png').write_bytes(b'broken')
    _fails(r"--source: 'b.png' cannot be read as an image \(UnidentifiedImageError: .*\); fix or delete it",
           '--source', str(tmp_path / 'bad'), '--dest', str(tmp_path / 'o.zip'))
    assert not (tmp_path / 'o.zip').exists()

#----------------------------------------------------------------------------
# Synthetic source.

def test_synthetic_source_matches_python_api(tmp_path):
    cli = tmp_path / 'cli.zip'
    _ok('--source', 'synthetic', '--dest', str(cli), '--synthetic-num', '20', '--synthetic-res', '16',
        '--synthetic-modes', '3', '--synthetic-freqs', '2,1,1', '--synthetic-seed', '9')
    api = synthetic.make_synthetic_dataset(str(tmp_path / 'api.zip'), num_images=20, resolution=16, num_modes=3, frequencies='2,1,1', seed=9)
    assert cli.read_bytes() == open(api, 'rb').read()
    ds = ImageFolderDataset(str(cli), use_labels=True)
    assert ds.has_modes and not ds.has_labels and ds.mode_info['num_modes'] == 3


def test_synthetic_defaults_cond_and_resize_keep_modes(tmp_path):
    src = tmp_path / 'shapes.zip'
    _ok('--source', 'synthetic', '--dest', str(src), '--synthetic-num', '16', '--synthetic-cond', 'true')
    ds = ImageFolderDataset(str(src), use_labels=True)
    assert ds.resolution == 32 and ds.has_labels and ds.mode_info['num_modes'] == synthetic.DEFAULT_NUM_MODES
    modes = ds.get_modes()
    assert [int(np.argmax(ds.get_label(i))) for i in range(16)] == modes.tolist()
    small = tmp_path / 'small.zip'
    _ok('--source', str(src), '--dest', str(small), '--width', '16', '--height', '16', '--resize-filter', 'box')
    ds2 = ImageFolderDataset(str(small))
    assert ds2.resolution == 16 and ds2.mode_info == ds.mode_info
    np.testing.assert_array_equal(ds2.get_modes(), modes)


def test_synthetic_option_errors(tmp_path):
    _fails(r'--synthetic-freqs: frequencies: got 2 weight\(s\) for 8 modes', '--source', 'synthetic', '--dest', str(tmp_path / 'o.zip'), '--synthetic-freqs', '1,2')
    _fails(r'--synthetic-res: resolution must be a power of two >= 8, got 24', '--source', 'synthetic', '--dest', str(tmp_path / 'o.zip'), '--synthetic-res', '24')
    (tmp_path / 'src').mkdir()
    _fails(r'--synthetic-num applies only to --source=synthetic', '--source', str(tmp_path / 'src'), '--dest', str(tmp_path / 'o.zip'), '--synthetic-num', '5')


def test_help_documents_synthetic():
    text = _ok('--help').output
    for word in ('synthetic', '--synthetic-num', '--synthetic-res', '--synthetic-modes', '--synthetic-freqs', '--synthetic-seed', 'cifar-10-python.tar.gz', '_lmdb'):
        assert word in text

#----------------------------------------------------------------------------
