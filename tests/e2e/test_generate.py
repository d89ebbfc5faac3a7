"""End-to-end tests of generate.py and style_mixing.py on a tiny pickled generator, through click's CliRunner."""

import copy
import os
import pickle

import numpy as np
import PIL.Image
import pytest
import torch
from click.testing import CliRunner

pytestmark = pytest.mark.slow

#----------------------------------------------------------------------------

def _write_snapshot(path, G_kwargs, D_kwargs):
    from training import networks
    torch.manual_seed(0)
    G = networks.Generator(**G_kwargs).eval().requires_grad_(False)
    D = networks.Discriminator(**D_kwargs).eval().requires_grad_(False)
    snapshot = dict(training_set_kwargs=None, G=G, D=D, G_ema=copy.deepcopy(G), augment_pipe=None)
    with open(path, 'wb') as f:
        pickle.dump(snapshot, f)
    return str(path)


@pytest.fixture(scope='module')
def tiny_pkl(tmp_path_factory):
    G_kwargs = dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3,
                    mapping_kwargs=dict(num_layers=2),
                    synthesis_kwargs=dict(channel_base=256, channel_max=32, num_fp16_res=0, conv_clamp=None))
    D_kwargs = dict(c_dim=0, img_resolution=16, img_channels=3, channel_base=256, channel_max=32,
                    num_fp16_res=0, conv_clamp=None, epilogue_kwargs=dict(mbstd_group_size=2))
    return _write_snapshot(tmp_path_factory.mktemp('net') / 'tiny.pkl', G_kwargs, D_kwargs)


@pytest.fixture(scope='module')
def tiny_G(tiny_pkl):
    import legacy
    with open(tiny_pkl, 'rb') as f:
        return legacy.load_network_pkl(f)['G_ema']


def _run(command, args):
    return CliRunner().invoke(command, [str(a) for a in args])


def _read(path):
    return np.array(PIL.Image.open(path))

#----------------------------------------------------------------------------

def test_generate_seeds_match_direct_rendering(tiny_pkl, tiny_G, tmp_path):
    from generate import generate_images
    from torch_utils import misc
    result = _run(generate_images, ['--network', tiny_pkl, '--seeds', '0-1,5', '--trunc', 0.7, '--outdir', tmp_path, '--device', 'cpu'])
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(tmp_path)) == ['seed0000.png', 'seed0001.png', 'seed0005.png']

    # The PNG for seed 5 is G_ema(z from RandomState(5)) converted by misc.images_to_uint8.
    z = torch.from_numpy(np.random.RandomState(5).randn(1, tiny_G.z_dim)).float()
    img = tiny_G(z, torch.zeros([1, 0]), truncation_psi=0.7, noise_mode='const')
    expected = misc.images_to_uint8(img)[0].numpy()
    got = _read(tmp_path / 'seed0005.png')
    assert got.shape == (16, 16, 3) and got.dtype == np.uint8
    np.testing.assert_array_equal(got, expected)
    assert not np.array_equal(got, _read(tmp_path / 'seed0000.png'))


def test_generate_is_deterministic_across_runs(tiny_pkl, tmp_path):
    from generate import generate_images
    for name in ('a', 'b'):
        result = _run(generate_images, ['--network', tiny_pkl, '--seeds', '3', '--outdir', tmp_path / name, '--device', 'cpu'])
        assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(_read(tmp_path / 'a' / 'seed0003.png'), _read(tmp_path / 'b' / 'seed0003.png'))


def test_generate_grid_is_row_major(tiny_pkl, tmp_path):
    from generate import generate_images
    single, gridded = tmp_path / 'single', tmp_path / 'grid'
    assert _run(generate_images, ['--network', tiny_pkl, '--seeds', '0-2', '--outdir', single, '--device', 'cpu']).exit_code == 0
    result = _run(generate_images, ['--network', tiny_pkl, '--seeds', '0-2', '--grid', '2x2', '--outdir', gridded, '--device', 'cpu'])
    assert result.exit_code == 0, result.output
    assert os.listdir(gridded) == ['grid.png']
    grid = _read(gridded / 'grid.png')
    assert grid.shape == (32, 32, 3)
    np.testing.assert_array_equal(grid[:16, :16], _read(single / 'seed0000.png'))
    np.testing.assert_array_equal(grid[:16, 16:], _read(single / 'seed0001.png'))
    np.testing.assert_array_equal(grid[16:, :16], _read(single / 'seed0002.png'))
    assert grid[16:, 16:].max() == 0   # unused cell stays black


def test_generate_projected_w(tiny_pkl, tiny_G, tmp_path):
    from generate import generate_images
    ws = np.random.RandomState(0).randn(2, tiny_G.num_ws, tiny_G.w_dim).astype(np.float32)
    np.savez(tmp_path / 'w.npz', w=ws)
    result = _run(generate_images, ['--network', tiny_pkl, '--projected-w', tmp_path / 'w.npz', '--seeds', '1',
                                    '--outdir', tmp_path / 'out', '--device', 'cpu'])
    assert result.exit_code == 0, result.output
    assert 'warning: --seeds is ignored' in result.output
    assert sorted(os.listdir(tmp_path / 'out')) == ['proj00.png', 'proj01.png']

    np.savez(tmp_path / 'bad.npz', w=ws[:, :1])
    result = _run(generate_images, ['--network', tiny_pkl, '--projected-w', tmp_path / 'bad.npz', '--outdir', tmp_path / 'out2', '--device', 'cpu'])
    assert result.exit_code != 0
    assert f'"w" has shape [2, 1, {tiny_G.w_dim}], but this network needs [K, {tiny_G.num_ws}, {tiny_G.w_dim}]' in result.output

#----------------------------------------------------------------------------

def test_generate_missing_network_is_one_line_error(tmp_path):
    from generate import generate_images
    missing = tmp_path / 'nope.pkl'
    result = _run(generate_images, ['--network', missing, '--seeds', '0', '--outdir', tmp_path / 'out', '--device', 'cpu'])
    assert result.exit_code == 1
    assert result.output.strip() == f'Error: --network: file not found: "{missing}"; give a snapshot file, a training run folder or a URL'
    assert not (tmp_path / 'out').exists()


def test_generate_option_errors(tiny_pkl, tmp_path):
    from generate import generate_images
    result = _run(generate_images, ['--network', tiny_pkl, '--seeds', '3-1', '--outdir', tmp_path])
    assert result.exit_code == 2 and 'runs backwards; write it as "1-3"' in result.output
    result = _run(generate_images, ['--network', tiny_pkl, '--seeds', 'abc', '--outdir', tmp_path])
    assert result.exit_code == 2 and '"abc" is not a list of non-negative integers' in result.output
    result = _run(generate_images, ['--network', tiny_pkl, '--outdir', tmp_path])
    assert result.exit_code == 1 and '--seeds is required unless --projected-w is given' in result.output
    result = _run(generate_images, ['--network', tiny_pkl, '--seeds', '0-4', '--grid', '2x2', '--outdir', tmp_path])
    assert result.exit_code == 1 and '--grid=2x2 has 4 cells for 5 images' in result.output
    result = _run(generate_images, ['--network', tiny_pkl, '--seeds', '0', '--grid', '2by2', '--outdir', tmp_path])
    assert result.exit_code == 2 and '"2by2" is not a grid size' in result.output


def test_generate_conditional_needs_class(tmp_path):
    from generate import generate_images
    G_kwargs = dict(z_dim=8, c_dim=2, w_dim=8, img_resolution=16, img_channels=3, mapping_kwargs=dict(num_layers=1),
                    synthesis_kwargs=dict(channel_base=256, channel_max=16, num_fp16_res=0, conv_clamp=None))
    D_kwargs = dict(c_dim=2, img_resolution=16, img_channels=3, channel_base=256, channel_max=16,
                    num_fp16_res=0, conv_clamp=None, epilogue_kwargs=dict(mbstd_group_size=2))
    pkl = _write_snapshot(tmp_path / 'cond.pkl', G_kwargs, D_kwargs)
    result = _run(generate_images, ['--network', pkl, '--seeds', '0', '--outdir', tmp_path / 'out', '--device', 'cpu'])
    assert result.exit_code == 1 and '--class is required for this conditional network (classes 0-1)' in result.output
    result = _run(generate_images, ['--network', pkl, '--seeds', '0', '--class', 2, '--outdir', tmp_path / 'out', '--device', 'cpu'])
    assert result.exit_code == 1 and '--class=2 is out of range' in result.output
    images = []
    for class_idx in (0, 1):
        out = tmp_path / f'c{class_idx}'
        result = _run(generate_images, ['--network', pkl, '--seeds', '0', '--class', class_idx, '--outdir', out, '--device', 'cpu'])
        assert result.exit_code == 0, result.output
        images.append(_read(out / 'seed0000.png'))
    assert not np.array_equal(images[0], images[1])

#----------------------------------------------------------------------------

def test_style_mixing_outputs_and_grid(tiny_pkl, tiny_G, tmp_path):
    from style_mixing import generate_style_mix
    from torch_utils import misc
    result = _run(generate_style_mix, ['--network', tiny_pkl, '--rows', '0,1', '--cols', '2', '--styles', '0-1',
                                       '--outdir', tmp_path, '--device', 'cpu'])
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(tmp_path)) == ['0-0.png', '0-2.png', '1-1.png', '1-2.png', '2-2.png', 'grid.png']
    grid = _read(tmp_path / 'grid.png')
    assert grid.shape == (16 * 3, 16 * 2, 3)
    assert grid[:16, :16].max() == 0
    np.testing.assert_array_equal(grid[:16, 16:], _read(tmp_path / '2-2.png'))
    np.testing.assert_array_equal(grid[16:32, :16], _read(tmp_path / '0-0.png'))
    np.testing.assert_array_equal(grid[32:, 16:], _read(tmp_path / '1-2.png'))

    # The mixed image takes layers 0-1 from the column seed and the rest from the row seed.
    zs = torch.from_numpy(np.stack([np.random.RandomState(s).randn(tiny_G.z_dim) for s in (0, 2)])).float()
    ws = tiny_G.mapping(zs, torch.zeros([2, 0]))
    w = ws[0].clone()
    w[[0, 1]] = ws[1][[0, 1]]
    expected = misc.images_to_uint8(tiny_G.synthesis(w.unsqueeze(0), noise_mode='const'))[0].numpy()
    np.testing.assert_array_equal(_read(tmp_path / '0-2.png'), expected)


def test_style_mixing_rejects_bad_styles(tiny_pkl, tiny_G, tmp_path):
    from style_mixing import generate_style_mix
    result = _run(generate_style_mix, ['--network', tiny_pkl, '--rows', '0', '--cols', '1', '--styles', f'0,{tiny_G.num_ws}',
                                       '--outdir', tmp_path, '--device', 'cpu'])
    assert result.exit_code == 1
    assert f'--styles: layer(s) {tiny_G.num_ws} out of range; this network has layers 0-{tiny_G.num_ws - 1}' in result.output

#----------------------------------------------------------------------------

@pytest.mark.fixtures
@pytest.mark.parametrize('safe_load', [False, True])
def test_generate_matches_official_reference(fixtures_dir, tmp_path, safe_load):
    # official-tiny-ref.npz holds G_ema(z, c, truncation_psi=0.7, noise_mode='const') for z = RandomState(seed).
    from generate import generate_images
    from torch_utils import misc
    ref = np.load(os.path.join(fixtures_dir, 'official-tiny-ref.npz'))
    seeds = [int(s) for s in ref['seeds']]
    args = ['--network', os.path.join(fixtures_dir, 'official-tiny.pkl'), '--seeds', ','.join(map(str, seeds)),
            '--trunc', 0.7, '--outdir', tmp_path, '--device', 'cpu'] + (['--safe-load'] if safe_load else [])
    result = _run(generate_images, args)
    assert result.exit_code == 0, result.output
    expected = misc.images_to_uint8(torch.from_numpy(ref['img_const_psi07'])).numpy().astype(np.int16)
    for i, seed in enumerate(seeds):
        got = _read(tmp_path / f'seed{seed:04d}.png').astype(np.int16)
        diff = np.abs(got - expected[i])
        assert diff.max() <= 1 and (diff == 0).mean() > 0.99   # float noise may move a pixel across a rounding edge

#----------------------------------------------------------------------------
