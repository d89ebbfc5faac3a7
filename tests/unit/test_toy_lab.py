"""Toy lab data and networks: specs, exact mode counts, user point files, and the StyleGAN2 network interfaces of the MLPs."""

import json
import pickle

import numpy as np
import PIL.Image
import pytest
import torch

from training import toy_data
from training import toy_networks
from training import toy_pictures

#----------------------------------------------------------------------------
# Data.

def test_builtin_sets_and_options():
    ring = toy_data.ToyDataset('toy:ring8,rare=0.02,n=1000,seed=3')
    assert (len(ring), ring.image_shape, ring.resolution, ring.has_labels) == (1000, [2, 1, 1], 1, False)
    modes = ring.toy_modes
    np.testing.assert_allclose(np.linalg.norm(modes.centres, axis=1), 2.0)
    np.testing.assert_allclose(modes.stds, 0.02)
    np.testing.assert_allclose(modes.weights, [0.02] + [0.14] * 7)
    assert np.bincount(ring.get_modes()).tolist() == [20] + [140] * 7          # exact counts
    item, label = ring[5]
    assert item.dtype == np.float32 and item.shape == (2, 1, 1) and label.shape == (0,)
    assert np.linalg.norm(item.ravel() - modes.centres[ring.get_mode(5)]) < 0.2

    ring6 = toy_data.ToyDataset('toy:ring6').toy_modes
    np.testing.assert_allclose(np.linalg.norm(ring6.centres, axis=1), 5.0)
    np.testing.assert_allclose(ring6.stds, 0.1)
    grid = toy_data.ToyDataset('toy:grid25').toy_modes
    assert sorted(set(np.round(grid.centres[:, 0], 6))) == [-4, -2, 0, 2, 4]

def test_seeded_and_deterministic():
    a, b = toy_data.ToyDataset('toy:ring8,n=500'), toy_data.ToyDataset('toy:ring8,n=500')
    np.testing.assert_array_equal(a.points(), b.points())
    assert not np.array_equal(a.points(), toy_data.ToyDataset('toy:ring8,n=500,seed=1').points())
    # Fresh points follow the same law but are not the training points.
    fresh = a.fresh_points(500, seed=0)
    assert not np.isin(fresh.astype(np.float32), a.points()).all()
    np.testing.assert_array_equal(fresh, a.fresh_points(500, seed=0))

def test_batched_fetch_equals_items():
    ds = toy_data.ToyDataset('toy:grid25,n=300', max_size=200, random_seed=1)
    idx = [0, 7, 199, 3]
    batch = ds.__getitems__(idx)
    for i, (img, label) in zip(idx, batch):
        np.testing.assert_array_equal(img.numpy(), ds[i][0])
        assert label.shape == (0,)

@pytest.mark.parametrize('spec, message', [
    ('toy:ring9', r'toy set "ring9" is unknown; choose one of ring8, ring6, grid25'),
    ('toy:ring8,radius', r'"radius" is not an option'),
    ('toy:ring8,rare=2', r'rare=2 must be a fraction in \(0, 1\)'),
    ('toy:ring8,rare_mode=8', r'rare_mode=8 must be a mode index in \[0, 7\]'),
    ('toy:ring8,n=abc', r'n=abc must be an integer'),
    ('toy:grid25,std=-1', r'std=-1 must be > 0'),
])
def test_bad_specs_name_the_option(spec, message):
    with pytest.raises(ValueError, match=message):
        toy_data.ToyDataset(spec)

def test_mirror_refused():
    with pytest.raises(ValueError, match=r'--mirror does not apply to toy points'):
        toy_data.ToyDataset('toy:ring8', xflip=True)

def test_user_point_files(tmp_path):
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [5.0, 5.0]])
    points = centres[rng.integers(0, 2, size=100)] + rng.normal(size=[100, 2]) * 0.1
    np.save(tmp_path / 'pts.npy', points)
    np.savetxt(tmp_path / 'pts.csv', points, delimiter=',', header='x,y', comments='')
    a, b = toy_data.ToyDataset(str(tmp_path / 'pts.npy')), toy_data.ToyDataset(str(tmp_path / 'pts.csv'))
    np.testing.assert_allclose(a.points(), b.points(), rtol=1e-6)
    assert a.toy_modes is None and not a.has_modes
    assert a.fresh_points(10, seed=0).shape == (10, 2)

    # With a side file: the modes, and weights from the data when the file has none.
    with open(tmp_path / 'pts.modes.json', 'w') as f:
        json.dump(dict(centres=centres.tolist(), stds=0.1), f)
    c = toy_data.ToyDataset(str(tmp_path / 'pts.npy'))
    expected = np.bincount(np.linalg.norm(points - [5, 5], axis=1) < 3.0, minlength=2) / 100
    np.testing.assert_allclose(c.toy_modes.weights, expected, atol=1e-9)

    np.save(tmp_path / 'bad.npy', np.zeros([5, 3]))
    with pytest.raises(ValueError, match=r"holds an array of shape \[5, 3\]; a toy point set must be N x 2"):
        toy_data.ToyDataset(str(tmp_path / 'bad.npy'))
    with pytest.raises(ValueError, match=r"'.*missing.csv' does not exist"):
        toy_data.ToyDataset(str(tmp_path / 'missing.csv'))

def test_mode_counts_largest_remainder():
    assert toy_data.mode_counts([1 / 3] * 3, 10).tolist() == [4, 3, 3]
    counts = toy_data.mode_counts([0.02] + [0.14] * 7, 997)
    assert counts.sum() == 997 and np.abs(counts - 997 * np.array([0.02] + [0.14] * 7)).max() < 1

#----------------------------------------------------------------------------
# Networks.

def _nets(**G_synthesis):
    torch.manual_seed(0)
    G = toy_networks.ToyGenerator(z_dim=2, c_dim=0, w_dim=2, img_resolution=1, img_channels=2, synthesis_kwargs=G_synthesis)
    D = toy_networks.ToyDiscriminator(c_dim=0, img_resolution=1, img_channels=2)
    return G, D

def test_generator_interface():
    G, D = _nets()
    G.eval()
    assert (G.z_dim, G.c_dim, G.w_dim, G.num_ws, G.img_resolution, G.img_channels) == (2, 0, 2, 2, 1, 2)
    z, c = torch.randn([8, 2]), torch.zeros([8, 0])
    ws = G.mapping(z, c)
    assert ws.shape == (8, 2, 2) and torch.equal(ws[:, 0], z) and torch.equal(ws[:, 1], z)
    img = G.synthesis(ws, noise_mode='const', force_fp32=True)
    assert img.shape == (8, 2, 1, 1) and torch.equal(img, G(z, c))
    assert D(img, c).shape == (8, 1)
    # The second w copy has no effect (style mixing is neutral).
    mixed = ws.clone()
    mixed[:, 1:] = torch.randn([8, 1, 2])
    assert torch.equal(G.synthesis(mixed), img)
    # Truncation pulls w towards w_avg; the training mapping tracks it.
    G.mapping.train()
    G.mapping.w_avg.zero_()
    G.mapping(z + 3, c)
    assert torch.allclose(G.mapping.w_avg, 0.005 * (z + 3).mean(dim=0))
    G.mapping.eval()
    trunc = G.mapping(z, c, truncation_psi=0.5)
    assert torch.allclose(trunc[:, 0], G.mapping.w_avg + 0.5 * (z - G.mapping.w_avg))
    assert torch.equal(G.mapping(z, c, truncation_psi=0.5, truncation_cutoff=1)[:, 1], z)

def test_pickle_round_trip():
    G, D = _nets()
    z = torch.randn([4, 2])
    G2, D2 = pickle.loads(pickle.dumps(G)), pickle.loads(pickle.dumps(D))
    c = torch.zeros([4, 0])
    assert torch.equal(G2(z, c), G(z, c)) and torch.equal(D2(G(z, c), c), D(G(z, c), c))

# A side module that scales layer i's output by (i + 2) when given a side input, and records the calls.
class ScalingSide(torch.nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.channels, self.calls = list(channels), []

    def forward(self, i, x, side):
        self.calls.append((i, tuple(x.shape), side is not None))
        return x * (i + 2) if side is not None else x

# A feature module: the points times a fixed buffer, as [N, 3] features.
class PointFeatures(torch.nn.Module):
    def __init__(self, img_resolution, img_channels):
        super().__init__()
        self.num_features = 3
        self.register_buffer('proj', torch.arange(img_channels * 3, dtype=torch.float32).reshape(img_channels, 3))

    def forward(self, img):
        return img.flatten(1) @ self.proj

def test_side_module_sees_every_hidden_layer():
    G, _ = _nets(side_kwargs=dict(class_name='tests.unit.test_toy_lab.ScalingSide'))
    plain, _ = _nets()
    assert G.synthesis.side.channels == [128, 128]
    z, c = torch.randn([5, 2]), torch.zeros([5, 0])
    assert torch.equal(G(z, c), plain(z, c))                       # same weights; side=None leaves x alone
    assert G.synthesis.side.calls == [(0, (5, 128, 1, 1), False), (1, (5, 128, 1, 1), False)]
    ws = G.mapping(z, c)
    h = torch.relu(G.synthesis.layers[0](z)) * 2
    h = torch.relu(G.synthesis.layers[1](h)) * 3
    assert torch.allclose(G.synthesis(ws, side=torch.ones([5, 1])), G.synthesis.out(h).reshape(5, 2, 1, 1))
    with pytest.raises(ValueError, match=r'no side module'):
        plain.synthesis(ws, side=torch.ones([5, 1]))

@pytest.mark.parametrize('feature_at', ['out', 'fc'])
def test_feature_module_and_out_dim(feature_at):
    torch.manual_seed(0)
    D = toy_networks.ToyDiscriminator(c_dim=0, img_resolution=1, img_channels=2, out_dim=4, feature_at=feature_at,
                                      feature_kwargs=dict(class_name='tests.unit.test_toy_lab.PointFeatures'))
    x, c = torch.randn([6, 2, 1, 1]), torch.zeros([6, 0])
    feats = x.flatten(1) @ D.features.proj
    h = x.flatten(1)
    for i, layer in enumerate(D.layers):
        h = torch.cat([h, feats], dim=1) if (feature_at == 'fc' and i == 2) else h
        h = torch.tanh(layer(h))
    h = torch.cat([h, feats], dim=1) if feature_at == 'out' else h
    assert torch.allclose(D(x, c), D.out(h)) and D(x, c).shape == (6, 4)
    assert [name for name, _ in D.named_parameters() if name.startswith('features')] == []   # frozen buffers only
    # Gradients reach the input through the feature module.
    x.requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x, c).sum(), [x])
    assert grad.abs().sum() > 0

def test_shape_errors_name_the_fix():
    with pytest.raises(ValueError, match=r'toy networks are unconditional, got c_dim=3; train with --cond=0'):
        toy_networks.ToyGenerator(z_dim=2, c_dim=3, w_dim=2, img_resolution=1, img_channels=2)
    with pytest.raises(ValueError, match=r'use --cfg=toy only with toy data'):
        toy_networks.ToyDiscriminator(c_dim=0, img_resolution=32, img_channels=3)
    with pytest.raises(ValueError, match=r'w_dim must equal z_dim'):
        toy_networks.ToyGenerator(z_dim=2, c_dim=0, w_dim=8, img_resolution=1, img_channels=2)

#----------------------------------------------------------------------------

#----------------------------------------------------------------------------
# Pictures.

def test_picture_geometry_and_figure(tmp_path):
    ds = toy_data.ToyDataset('toy:ring6,n=300')
    box = toy_pictures.view_box(ds.points(), ds.toy_modes)
    lo, hi = box
    assert np.allclose(hi - lo, (hi - lo)[0]) and np.all(lo < -5.3) and np.all(hi > 5.3)     # square, modes and 3 std inside
    corners = toy_pictures.to_pixels(np.array([[lo[0], lo[1]], [hi[0], hi[1]]]), box, size=101)
    np.testing.assert_allclose(corners, [[0, 100], [100, 0]])                                # y points up
    # A D that likes x > 0: the heat map is red on the right, and the figure has three panels.
    path = toy_pictures.save_figure(str(tmp_path / 'f.png'), ds.points(), ds.fresh_points(300, 0), ds.toy_modes,
                                    score_fn=lambda x: x[:, :1, 0, 0] * 3)
    with PIL.Image.open(path) as image:
        assert image.size[0] > 3 * toy_pictures.PANEL
        x0 = toy_pictures.GAP + toy_pictures.PANEL + toy_pictures.GAP
        y = image.size[1] - toy_pictures.GAP - 8
        left, right = image.getpixel((x0 + 4, y)), image.getpixel((x0 + toy_pictures.PANEL - 4, y))
        assert left[2] > left[0] and right[0] > right[2]                                   # blue low, red high
