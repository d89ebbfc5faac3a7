"""Unit tests for priors/rf/ (RFGAN): the encoder shaped like D, the frozen feature module inside D (frozen weights, flowing input gradients, pickling), the denoising autoencoder's corruption and loss against float64 references, its training and the cached autoencoder file."""

import copy
import io
import os
import pickle

import numpy as np
import pytest
import torch

import dnnlib
import legacy
from priors.rf import ae_file
from priors.rf import autoencoder
from priors.rf import encoder as encoder_module
from training import networks
from training import synthetic

#----------------------------------------------------------------------------
# Tiny configs: a 16x16 D (two blocks) and a matching generator-shaped decoder.

ENC = dict(class_name='priors.rf.encoder.ConvEncoder', architecture='resnet', channel_base=256, channel_max=16,
           num_fp16_res=0, conv_clamp=None, block_kwargs={})
DEC = dict(class_name='training.networks.Generator', w_dim=8, mapping_kwargs=dict(num_layers=2),
           synthesis_kwargs=dict(channel_base=256, channel_max=16))
FEAT = dict(class_name='priors.rf.encoder.RepresentativeFeatures', encoder_kwargs=ENC)

def _make_D(feature_at='fc', architecture='resnet', seed=0):
    torch.manual_seed(seed)
    enc = dict(ENC, architecture=architecture)
    return networks.Discriminator(c_dim=0, img_resolution=16, img_channels=3, channel_base=256, channel_max=16, architecture=architecture,
                                  epilogue_kwargs=dict(mbstd_group_size=2), feature_at=feature_at,
                                  feature_kwargs=dict(FEAT, encoder_kwargs=enc))

def _trained_encoder_state(seed=5, architecture='resnet'):
    torch.manual_seed(seed)
    enc = encoder_module.ConvEncoder(16, 3, **{k: v for k, v in dict(ENC, architecture=architecture).items() if k != 'class_name'})
    return enc.state_dict()

@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp('rfdata')
    path = synthetic.make_synthetic_dataset(str(folder / 'synth16.zip'), num_images=24, resolution=16, num_modes=4)
    return dict(class_name='training.dataset.ImageFolderDataset', path=path, use_labels=False, max_size=None, xflip=False)

#----------------------------------------------------------------------------
# The encoder is shaped like D: the same block layout and tensor shapes.

@pytest.mark.parametrize('architecture', ['resnet', 'skip', 'orig'])
def test_conv_encoder_mirrors_discriminator(architecture):
    enc = encoder_module.ConvEncoder(16, 3, architecture=architecture, channel_base=256, channel_max=16)
    D = networks.Discriminator(c_dim=0, img_resolution=16, img_channels=3, channel_base=256, channel_max=16, architecture=architecture,
                               epilogue_kwargs=dict(mbstd_num_channels=0))  # the encoder has no minibatch stddev
    d_shapes = {n: p.shape for n, p in D.named_parameters()}
    for name, param in enc.named_parameters():
        d_name = name if name.startswith('b') and not name.startswith('b4') else 'b4.' + name
        assert d_shapes[d_name] == param.shape, name
    h1 = enc(torch.randn(2, 3, 16, 16))
    assert h1.shape == (2, 16 * 16) and enc.num_features == 16 * 16

def test_conv_encoder_rejects_tiny_resolution():
    with pytest.raises(ValueError, match='power of two >= 8'):
        encoder_module.ConvEncoder(4, 3)

#----------------------------------------------------------------------------
# Frozen means frozen: D has no encoder parameters, D's optimizer steps (with
# R1) leave the encoder bytes unchanged, while D's other weights move.

@pytest.mark.slow  # seconds of CPU: in the full suite, not the fast tier
@pytest.mark.parametrize('feature_at', ['fc', 'out'])
def test_frozen_encoder_survives_D_optimizer_steps(feature_at):
    D = _make_D(feature_at)
    D.features.load_encoder(_trained_encoder_state(), source_id=7)
    assert not any('features' in name for name, _ in D.named_parameters())
    frozen = {n: b.clone() for n, b in D.features.named_buffers()}
    other = {n: p.detach().clone() for n, p in D.named_parameters()}
    D.requires_grad_(True)
    opt = torch.optim.Adam(D.parameters(), lr=0.1)
    for _step in range(2):
        real = torch.randn(2, 3, 16, 16, requires_grad=True)
        logits = D(real, None)
        r1_grad, = torch.autograd.grad(logits.sum(), real, create_graph=True)
        loss = torch.nn.functional.softplus(-logits).mean() + r1_grad.square().sum() * 0.5
        opt.zero_grad()
        loss.backward()
        opt.step()
    for name, value in D.features.named_buffers():
        assert torch.equal(value, frozen[name]), f'encoder tensor {name} changed'
    assert any(not torch.equal(p, other[n]) for n, p in D.named_parameters())
    assert int(D.features.source_id) == 7 and D.features.is_loaded

#----------------------------------------------------------------------------
# Input gradients flow through the encoder: d features / d img is non-zero,
# and D's input gradient (what G and R1 see) changes when the encoder does.

@pytest.mark.slow  # seconds of CPU: in the full suite, not the fast tier
@pytest.mark.parametrize('feature_at', ['fc', 'out'])
def test_input_gradient_flows_through_encoder(feature_at):
    D = _make_D(feature_at)
    D.features.load_encoder(_trained_encoder_state(), source_id=1)
    img = torch.randn(4, 3, 16, 16, requires_grad=True)
    g_feat, = torch.autograd.grad(D.features(img).square().sum(), img)
    assert g_feat.abs().sum() > 0
    g_before, = torch.autograd.grad(D(img, None).sum(), img)
    D.features.load_encoder(_trained_encoder_state(seed=9), source_id=2)
    g_after, = torch.autograd.grad(D(img, None).sum(), img)
    assert not torch.allclose(g_before, g_after)

#----------------------------------------------------------------------------
# The feature module pickles with D (snapshots) and loads back with its buffers.

def test_features_pickle_round_trip():
    D = _make_D()
    D.features.load_encoder(_trained_encoder_state(), source_id=3)
    G = networks.Generator(z_dim=8, c_dim=0, img_resolution=16, img_channels=3, **{k: v for k, v in DEC.items() if k != 'class_name'})
    buf = io.BytesIO()
    pickle.dump(dict(G=G, D=copy.deepcopy(D).eval().requires_grad_(False), G_ema=G), buf)
    buf.seek(0)
    loaded = legacy.load_network_pkl(buf, safe=True)['D']
    assert int(loaded.features.source_id) == 3
    for (n, a), (_, b) in zip(D.features.named_buffers(), loaded.features.named_buffers()):
        assert torch.equal(a, b), n
    img = torch.randn(2, 3, 16, 16)
    assert torch.equal(D(img, None), loaded(img, None))

def test_load_encoder_refuses_other_architecture():
    D = _make_D()
    with pytest.raises(ValueError, match='another D architecture'):
        D.features.load_encoder(_trained_encoder_state(architecture='skip'), source_id=1)

#----------------------------------------------------------------------------
# Corruption and loss against float64 numpy references.

def test_reconstruction_loss_matches_float64_reference():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 3, 4, 4)), rng.normal(size=(5, 3, 4, 4))
    ref_l2 = ((a - b) ** 2).reshape(5, -1).mean(axis=1)
    ref_l1 = np.abs(a - b).reshape(5, -1).mean(axis=1)
    ta, tb = torch.tensor(a, dtype=torch.float32), torch.tensor(b, dtype=torch.float32)
    np.testing.assert_allclose(autoencoder.reconstruction_loss(ta, tb, 'l2').numpy(), ref_l2, rtol=1e-5)
    np.testing.assert_allclose(autoencoder.reconstruction_loss(ta, tb, 'l1').numpy(), ref_l1, rtol=1e-5)
    with pytest.raises(ValueError, match='loss must be one of'):
        autoencoder.reconstruction_loss(ta, tb, 'l3')

def test_corruption_statistics():
    img = torch.rand(64, 3, 16, 16) * 2 - 1
    gen = torch.Generator().manual_seed(0)
    noisy = autoencoder.corrupt(img, 'gaussian', 0.1, gen)
    noise = (noisy - img).double()
    assert abs(float(noise.mean())) < 3 * 0.1 / np.sqrt(noise.numel())
    assert abs(float(noise.std()) - 0.1) < 0.002
    masked = autoencoder.corrupt(img, 'mask', 0.25, torch.Generator().manual_seed(0))
    dropped = masked == 0
    assert abs(float(dropped.double().mean()) - 0.25) < 0.01
    assert torch.equal(masked[~dropped], img[~dropped])
    assert autoencoder.corrupt(img, 'none', 0.5) is img
    again = autoencoder.corrupt(img, 'gaussian', 0.1, torch.Generator().manual_seed(0))
    assert torch.equal(again, noisy)
    with pytest.raises(ValueError, match='corruption must be one of'):
        autoencoder.corrupt(img, 'salt', 0.1)
    with pytest.raises(ValueError, match='<= 1 for "mask"'):
        autoencoder.corrupt(img, 'mask', 1.5)

#----------------------------------------------------------------------------
# Training: deterministic for a seed, the loss goes down, and the encoder's
# weights load into D's feature module.

def test_autoencoder_training_is_deterministic_and_learns(tiny_data):
    torch.set_num_threads(1)
    kwargs = dict(code_dim=8, kimg=0.096, batch=8, seed=1)
    ae1, hist1 = autoencoder.train_autoencoder(tiny_data, ENC, DEC, **kwargs)
    ae2, hist2 = autoencoder.train_autoencoder(tiny_data, ENC, DEC, **kwargs)
    assert hist1['loss'] == hist2['loss']
    for (n, a), (_, b) in zip(ae1.state_dict().items(), ae2.state_dict().items()):
        assert torch.equal(a, b), n
    assert np.mean(hist1['loss'][-3:]) < np.mean(hist1['loss'][:3])
    D = _make_D()
    D.features.load_encoder(ae1.encoder.state_dict(), source_id=1)
    img = torch.randn(2, 3, 16, 16)
    assert torch.allclose(D.features(img), ae1.encoder(img))

#----------------------------------------------------------------------------
# The cache: built once, then loaded without training; keyed by settings and
# dataset; a file for another D is refused.

def test_autoencoder_cache(tiny_data, tmp_path, monkeypatch):
    torch.set_num_threads(1)
    settings = dict(code_dim=8, kimg=0.016, batch=8)
    rec = ae_file.get_or_build_autoencoder(tiny_data, ENC, DEC, settings, cache_dir=str(tmp_path), device='cpu')
    path = ae_file.cache_path(tiny_data, ENC, DEC, settings, cache_dir=str(tmp_path))
    assert os.path.isfile(path) and rec['num_features'] == 256
    assert rec['settings']['corruption'] == 'gaussian' and rec['settings']['level'] == 0.1 and rec['settings']['lr'] == 1e-3

    def no_training(*args, **kwargs):
        raise AssertionError('the cached autoencoder was trained again')
    monkeypatch.setattr(autoencoder, 'train_autoencoder', no_training)
    again = ae_file.get_or_build_autoencoder(tiny_data, dict(ENC, num_fp16_res=2, conv_clamp=256), DEC, settings,
                                             cache_dir=str(tmp_path), device='cpu')
    assert again['digest'] == rec['digest']
    for name, value in rec['encoder']['state_dict'].items():
        assert torch.equal(value, again['encoder']['state_dict'][name])

    # Other settings, architecture or data: another key.
    assert ae_file.cache_path(tiny_data, ENC, DEC, dict(settings, level=0.2), cache_dir=str(tmp_path)) != path
    assert ae_file.cache_path(tiny_data, dict(ENC, channel_max=32), DEC, settings, cache_dir=str(tmp_path)) != path
    assert ae_file.cache_path(dict(tiny_data, xflip=True), ENC, DEC, settings, cache_dir=str(tmp_path)) != path
    with pytest.raises(ae_file.AutoencoderFileError, match='needs'):
        ae_file.load_autoencoder_file(path, expect_encoder=dict(ENC, channel_max=32))

    # The whole autoencoder comes back from the file.
    ae = ae_file.autoencoder_from_record(again)
    assert ae(torch.zeros(1, 3, 16, 16)).shape == (1, 3, 16, 16)

def test_autoencoder_file_errors(tmp_path):
    with pytest.raises(ae_file.AutoencoderFileError, match='does not exist'):
        ae_file.load_autoencoder_file(str(tmp_path / 'missing.pt'))
    bad = tmp_path / 'bad.pt'
    torch.save(dict(kind='something-else', format_version=1), str(bad))
    with pytest.raises(ae_file.AutoencoderFileError, match='not an RFGAN autoencoder file'):
        ae_file.load_autoencoder_file(str(bad))
    with pytest.raises(ValueError, match='corruption must be one of'):
        ae_file.normalize_settings(code_dim=8, corruption='blur')

#----------------------------------------------------------------------------
# The toy lab: the MLP encoder mirrors the toy D, freezes the same way and
# passes input gradients.

def test_mlp_encoder_inside_toy_discriminator():
    from training import toy_networks
    enc = dict(class_name='priors.rf.encoder.MLPEncoder', hidden=[16, 16, 16], activation='tanh')
    for feature_at in ('out', 'fc'):
        D = toy_networks.ToyDiscriminator(c_dim=0, img_resolution=1, img_channels=2, hidden=[16, 16, 16], feature_at=feature_at,
                                          feature_kwargs=dict(FEAT, encoder_kwargs=enc))
        assert D.features.num_features == 16 and not any('features' in n for n, _ in D.named_parameters())
        torch.manual_seed(0)
        trained = encoder_module.MLPEncoder(1, 2, hidden=[16, 16, 16])
        D.features.load_encoder(trained.state_dict(), source_id=4)
        x = torch.randn(8, 2, 1, 1, requires_grad=True)
        assert torch.allclose(D.features(x), trained(x))
        g, = torch.autograd.grad(D.features(x).sum(), x)
        assert g.abs().sum() > 0 and D(x, None).shape == (8, 1)

#----------------------------------------------------------------------------
# Prior/rf/w1_share against a float64 reference, for both D layouts.

def test_h1_weight_share_matches_reference():
    from priors.rf.prior import h1_weight_share
    from training import toy_networks
    D = _make_D('out')
    w1 = D.b4.extra.weight.detach().double().numpy() * D.b4.extra.weight_gain
    w2 = D.b4.out.weight.detach().double().numpy() * D.b4.out.weight_gain
    ref = (w1 ** 2).sum() / ((w1 ** 2).sum() + (w2 ** 2).sum())
    assert h1_weight_share(D) == pytest.approx(ref, rel=1e-12)
    enc = dict(class_name='priors.rf.encoder.MLPEncoder', hidden=[8, 8], activation='tanh')
    T = toy_networks.ToyDiscriminator(c_dim=0, img_resolution=1, img_channels=2, hidden=[8, 6], feature_kwargs=dict(FEAT, encoder_kwargs=enc))
    w = T.out.weight.detach().double().numpy()  # [1, 6 own + 8 encoder]
    assert h1_weight_share(T) == pytest.approx((w[:, 6:] ** 2).sum() / (w ** 2).sum(), rel=1e-12)
    assert h1_weight_share(networks.Discriminator(c_dim=0, img_resolution=16, img_channels=3, channel_base=256, channel_max=16)) is None

#----------------------------------------------------------------------------
