"""Unit tests for training/networks.py: shapes, architectures, fp16, truncation, w_avg, modulated conv, minibatch stddev, sizes."""
import copy
import pickle

import numpy as np
import pytest
import torch

from training import networks

#----------------------------------------------------------------------------
# Helpers.

def _latents(G, n=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn([n, G.z_dim], generator=gen)
    c = torch.zeros([n, G.c_dim])
    if G.c_dim > 0:
        c[torch.arange(n), torch.arange(n) % G.c_dim] = 1
    return z, c


def _randomize_(module, seed=0, scale=0.3):
    """Give every parameter and buffer (except resample filters) random values, so that zero-initialised
    biases, noise strengths and w_avg take part in the computation."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in list(module.named_parameters()) + list(module.named_buffers()):
            if name.endswith('resample_filter'):
                continue
            tensor.add_(torch.randn(tensor.shape, generator=gen) * scale)
    return module


def _count(tensors):
    return sum(t.numel() for t in tensors)

#----------------------------------------------------------------------------
# Generator and discriminator: output shapes and finiteness for every architecture.

@pytest.mark.parametrize('architecture', ['orig', 'skip', 'resnet'])
@torch.no_grad()
def test_generator_architectures(tiny_G_kwargs, architecture):
    torch.manual_seed(0)
    tiny_G_kwargs['synthesis_kwargs']['architecture'] = architecture
    G = networks.Generator(**tiny_G_kwargs).eval()
    z, c = _latents(G)
    img = G(z, c, noise_mode='const')
    assert img.shape == (4, 3, 16, 16) and img.dtype == torch.float32
    assert torch.isfinite(img).all()
    assert G.num_ws == G.mapping.num_ws == G.synthesis.num_ws == 2 * 4 - 2

    # Only skip has a ToRGB in every block; resnet adds 1x1 shortcuts after the 4x4 block.
    keys = list(G.state_dict().keys())
    assert ('synthesis.b8.torgb.weight' in keys) == (architecture == 'skip')
    assert ('synthesis.b16.torgb.weight' in keys)
    assert ('synthesis.b8.skip.weight' in keys) == (architecture == 'resnet')
    assert 'synthesis.b4.skip.weight' not in keys


@pytest.mark.parametrize('architecture', ['orig', 'skip', 'resnet'])
@torch.no_grad()
def test_discriminator_architectures(tiny_D_kwargs, architecture):
    torch.manual_seed(0)
    D = networks.Discriminator(architecture=architecture, **tiny_D_kwargs).eval()
    img = torch.randn([4, 3, 16, 16])
    logits = D(img, torch.zeros([4, 0]))
    assert logits.shape == (4, 1) and logits.dtype == torch.float32
    assert torch.isfinite(logits).all()
    keys = list(D.state_dict().keys())
    assert ('b8.fromrgb.weight' in keys) == (architecture == 'skip')
    assert ('b4.fromrgb.weight' in keys) == (architecture == 'skip')
    assert ('b16.skip.weight' in keys) == (architecture == 'resnet')
    assert 'b16.fromrgb.weight' in keys


@pytest.mark.slow  # seconds of CPU: in the full suite, not the fast tier
def test_training_mode_and_gradients(tiny_G_kwargs, tiny_D_kwargs):
    torch.manual_seed(0)
    G = networks.Generator(**tiny_G_kwargs).train()
    D = networks.Discriminator(**tiny_D_kwargs).train()
    z, c = _latents(G)
    logits = D(G(z, c), c)
    logits.sum().backward()
    for name, p in list(G.named_parameters()) + list(D.named_parameters()):
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


@torch.no_grad()
def test_conditional_networks(tiny_G_kwargs, tiny_D_kwargs):
    torch.manual_seed(0)
    tiny_G_kwargs['c_dim'] = 5
    tiny_D_kwargs['c_dim'] = 5
    G = networks.Generator(**tiny_G_kwargs).eval()
    D = networks.Discriminator(**tiny_D_kwargs).eval()
    z, c = _latents(G)
    img = G(z, c, noise_mode='const')
    logits = D(img, c)
    assert logits.shape == (4, 1) and torch.isfinite(logits).all()

    # The label changes the result of both networks.
    c2 = c.roll(1, dims=1)
    assert not torch.allclose(G(z, c2, noise_mode='const'), img)
    assert not torch.allclose(D(img, c2), logits)

    # Label embedding in the mapping networks; D's mapping has no w_avg; cmap defaults to channels at 4x4.
    g_keys = list(G.state_dict().keys())
    assert g_keys.index('mapping.w_avg') < g_keys.index('mapping.embed.weight') < g_keys.index('mapping.fc0.weight')
    assert G.mapping.embed.weight.shape == (8, 5)
    assert 'mapping.embed.weight' in D.state_dict() and 'mapping.w_avg' not in D.state_dict()
    assert D.b4.out.weight.shape == (32, 32) and D.mapping.fc7.weight.shape == (32, 32)


@torch.no_grad()
def test_discriminator_cmap_projection(tiny_D_kwargs):
    # Conditional logits equal <out(x), cmap> / sqrt(cmap_dim), computed here in float64.
    torch.manual_seed(0)
    tiny_D_kwargs.update(c_dim=3, cmap_dim=6)
    D = networks.Discriminator(**tiny_D_kwargs).eval()
    img = torch.randn([4, 3, 16, 16])
    c = torch.eye(3)[[0, 1, 2, 0]]
    captured = {}
    D.b4.out.register_forward_hook(lambda mod, inp, out: captured.__setitem__('out', out))
    logits = D(img, c)
    cmap = D.mapping(None, c)
    expected = (captured['out'].double() * cmap.double()).sum(dim=1, keepdim=True) / np.sqrt(6)
    np.testing.assert_allclose(logits.double().numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)

#----------------------------------------------------------------------------
# Mixed precision on CPU.

@torch.no_grad()
def test_fp16_blocks_on_cpu(tiny_G_kwargs, tiny_D_kwargs):
    torch.manual_seed(0)
    tiny_G_kwargs['synthesis_kwargs'].update(num_fp16_res=2, conv_clamp=256)
    tiny_D_kwargs.update(num_fp16_res=2, conv_clamp=256)
    G = _randomize_(networks.Generator(**tiny_G_kwargs).eval(), scale=0.1)
    D = networks.Discriminator(**tiny_D_kwargs).eval()
    assert [G.synthesis.b4.use_fp16, G.synthesis.b8.use_fp16, G.synthesis.b16.use_fp16] == [False, True, True]
    assert [D.b16.use_fp16, D.b8.use_fp16] == [True, True]

    # The fp16 blocks really compute in half precision on CPU.
    dtypes = {}
    for name in ['b4', 'b8', 'b16']:
        getattr(G.synthesis, name).register_forward_hook(lambda mod, inp, out, name=name: dtypes.__setitem__(name, out[0].dtype))
    z, c = _latents(G)
    img16 = G(z, c, noise_mode='const')
    assert dtypes == {'b4': torch.float32, 'b8': torch.float16, 'b16': torch.float16}
    assert img16.dtype == torch.float32 and torch.isfinite(img16).all()

    # force_fp32 gives the same image up to half-precision rounding.
    img32 = G(z, c, noise_mode='const', force_fp32=True)
    assert (img16 - img32).abs().max() < 2e-2 * max(1.0, img32.abs().max().item())

    logits16 = D(img32, c)
    logits32 = D(img32, c, force_fp32=True)
    assert logits16.dtype == torch.float32 and torch.isfinite(logits16).all()
    assert (logits16 - logits32).abs().max() < 2e-2 * max(1.0, logits32.abs().max().item())


def test_fp16_channels_last_runs(tiny_G_kwargs, tiny_D_kwargs):
    torch.manual_seed(0)
    tiny_G_kwargs['synthesis_kwargs'].update(num_fp16_res=2, conv_clamp=256, fp16_channels_last=True)
    tiny_D_kwargs.update(num_fp16_res=2, conv_clamp=256, block_kwargs=dict(fp16_channels_last=True))
    G = networks.Generator(**tiny_G_kwargs).train()
    D = networks.Discriminator(**tiny_D_kwargs).train()
    assert G.synthesis.b16.channels_last and not G.synthesis.b4.channels_last
    assert G.synthesis.b16.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    z, c = _latents(G)
    logits = D(G(z, c), c)
    assert torch.isfinite(logits).all()
    logits.sum().backward()

#----------------------------------------------------------------------------
# Mapping network: truncation and the running w_avg.

@torch.no_grad()
def test_truncation_matches_float64(tiny_G_kwargs):
    torch.manual_seed(0)
    G = networks.Generator(**tiny_G_kwargs).eval()
    w_avg = torch.randn([G.w_dim])
    G.mapping.w_avg.copy_(w_avg)
    z, c = _latents(G)
    ws = G.mapping(z, c).double()  # [N, num_ws, w_dim]
    avg = w_avg.double()

    psi = 0.7
    expected = avg + psi * (ws - avg)
    got = G.mapping(z, c, truncation_psi=psi)
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-6, atol=1e-6)

    cutoff = 2
    expected = ws.clone()
    expected[:, :cutoff] = avg + psi * (ws[:, :cutoff] - avg)
    got = G.mapping(z, c, truncation_psi=psi, truncation_cutoff=cutoff)
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-6, atol=1e-6)
    assert not torch.allclose(got[:, cutoff:].double(), avg + psi * (ws[:, cutoff:] - avg))

    # psi = 0 gives w_avg on the truncated layers.
    got = G.mapping(z, c, truncation_psi=0, truncation_cutoff=cutoff)
    np.testing.assert_allclose(got[:, :cutoff].numpy(), avg.expand(4, cutoff, -1).numpy(), atol=1e-6)


@torch.no_grad()
def test_w_avg_update_rule(tiny_G_kwargs):
    torch.manual_seed(0)
    G = networks.Generator(**tiny_G_kwargs).train()
    start = torch.randn([G.w_dim])
    G.mapping.w_avg.copy_(start)
    z, c = _latents(G)

    # skip_w_avg_update and eval mode leave w_avg alone.
    ws = G.mapping(z, c, skip_w_avg_update=True)
    assert torch.equal(G.mapping.w_avg, start)
    G.eval()
    G.mapping(z, c)
    assert torch.equal(G.mapping.w_avg, start)

    # In training mode: w_avg <- w_avg + (1 - beta) * (mean_batch(w) - w_avg).
    G.train()
    G.mapping(z, c)
    beta = 0.995
    expected = start.double() + (1 - beta) * (ws[:, 0].double().mean(dim=0) - start.double())
    np.testing.assert_allclose(G.mapping.w_avg.numpy(), expected.numpy(), rtol=1e-6, atol=1e-6)
    assert not G.mapping.w_avg.requires_grad


def test_mapping_errors():
    with pytest.raises(ValueError, match='truncation_psi=0.5 needs w_avg'):
        net = networks.MappingNetwork(z_dim=4, c_dim=0, w_dim=4, num_ws=2, w_avg_beta=None)
        net(torch.randn([2, 4]), None, truncation_psi=0.5)
    with pytest.raises(ValueError, match='z_dim and c_dim are both 0'):
        networks.MappingNetwork(z_dim=0, c_dim=0, w_dim=4, num_ws=2)


@torch.no_grad()
def test_mapping_without_num_ws_returns_2d():
    torch.manual_seed(0)
    net = networks.MappingNetwork(z_dim=0, c_dim=3, w_dim=6, num_ws=None, w_avg_beta=None, num_layers=2)
    out = net(None, torch.eye(3))
    assert out.shape == (3, 6) and not hasattr(net, 'w_avg')

#----------------------------------------------------------------------------
# Free functions against float64 references.

@torch.no_grad()
def test_normalize_2nd_moment_matches_float64():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 7)) * rng.uniform(0.1, 10, size=(5, 1))
    expected = x / np.sqrt(np.mean(x ** 2, axis=1, keepdims=True) + 1e-8)
    got = networks.normalize_2nd_moment(torch.tensor(x, dtype=torch.float32))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-6)
    got0 = networks.normalize_2nd_moment(torch.tensor(x, dtype=torch.float32), dim=0)
    np.testing.assert_allclose(got0.numpy(), x / np.sqrt(np.mean(x ** 2, axis=0, keepdims=True) + 1e-8), rtol=1e-5)


def _modconv_reference(x, weight, styles, noise, demodulate, padding):
    # Per-sample float64 convolution with the modulated (and demodulated) kernel.
    x, weight, styles = x.double(), weight.double(), styles.double()
    outs = []
    for n in range(x.shape[0]):
        w = weight * styles[n].reshape(1, -1, 1, 1)
        if demodulate:
            w = w / torch.sqrt(w.square().sum(dim=(1, 2, 3), keepdim=True) + 1e-8)
        outs.append(torch.nn.functional.conv2d(x[n:n + 1], w, padding=padding))
    y = torch.cat(outs)
    return y if noise is None else y + noise.double()


@pytest.mark.parametrize('demodulate', [True, False])
@pytest.mark.parametrize('with_noise', [True, False])
@torch.no_grad()
def test_modulated_conv2d_matches_float64(demodulate, with_noise):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn([3, 4, 6, 6], generator=gen)
    weight = torch.randn([5, 4, 3, 3], generator=gen)
    styles = torch.randn([3, 4], generator=gen) + 1
    noise = torch.randn([3, 1, 6, 6], generator=gen) if with_noise else None
    expected = _modconv_reference(x, weight, styles, noise, demodulate, padding=1)
    for fused in [True, False]:
        got = networks.modulated_conv2d(x, weight, styles, noise=noise, padding=1, demodulate=demodulate, fused_modconv=fused)
        assert got.shape == (3, 5, 6, 6) and got.dtype == torch.float32
        np.testing.assert_allclose(got.double().numpy(), expected.numpy(), rtol=1e-4, atol=1e-4)


@torch.no_grad()
def test_modulated_conv2d_fused_equals_unfused_with_upsampling():
    from torch_utils.ops import upfirdn2d
    gen = torch.Generator().manual_seed(2)
    x = torch.randn([2, 4, 5, 5], generator=gen)
    weight = torch.randn([3, 4, 3, 3], generator=gen)
    styles = torch.randn([2, 4], generator=gen)
    noise = torch.randn([2, 1, 10, 10], generator=gen)
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    kwargs = dict(noise=noise, up=2, padding=1, resample_filter=f, flip_weight=False)
    fused = networks.modulated_conv2d(x, weight, styles, fused_modconv=True, **kwargs)
    separate = networks.modulated_conv2d(x, weight, styles, fused_modconv=False, **kwargs)
    assert fused.shape == (2, 3, 10, 10)
    np.testing.assert_allclose(fused.numpy(), separate.numpy(), rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_modulated_conv2d_fp16_prescaling_is_neutral():
    # In half precision the kernel and styles are pre-normalised; demodulation makes that invisible.
    gen = torch.Generator().manual_seed(3)
    x = torch.randn([2, 4, 6, 6], generator=gen)
    weight = torch.randn([5, 4, 3, 3], generator=gen) * 50
    styles = torch.randn([2, 4], generator=gen) * 50
    expected = _modconv_reference(x, weight, styles, None, True, padding=1)
    for fused in [True, False]:
        got = networks.modulated_conv2d(x.half(), weight, styles, padding=1, fused_modconv=fused)
        assert got.dtype == torch.float16
        np.testing.assert_allclose(got.double().numpy(), expected.numpy(), rtol=2e-2, atol=2e-2)

#----------------------------------------------------------------------------
# Minibatch standard deviation against numpy.

def _mbstd_reference(x, group_size, num_channels):
    N, C, H, W = x.shape
    G = N if group_size is None else min(group_size, N)
    M = N // G
    out = np.zeros([N, num_channels, H, W])
    for m in range(M):
        members = x[m::M]  # sample n belongs to group n mod M
        std = np.sqrt(members.var(axis=0) + 1e-8)  # [C, H, W], population variance
        stat = std.reshape(num_channels, C // num_channels, H, W).mean(axis=(1, 2, 3))
        out[m::M] = stat.reshape(1, num_channels, 1, 1)
    return np.concatenate([x, out], axis=1)


@pytest.mark.parametrize('group_size,num_channels,batch', [(4, 1, 8), (2, 2, 6), (None, 1, 6), (8, 1, 4)])
@torch.no_grad()
def test_minibatch_std_matches_numpy(group_size, num_channels, batch):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, 4, 3, 3)) * rng.uniform(0.5, 2, size=(batch, 1, 1, 1))
    layer = networks.MinibatchStdLayer(group_size=group_size, num_channels=num_channels)
    got = layer(torch.tensor(x, dtype=torch.float32))
    assert got.shape == (batch, 4 + num_channels, 3, 3)
    np.testing.assert_allclose(got.double().numpy(), _mbstd_reference(x, group_size, num_channels), rtol=1e-5, atol=1e-6)


def test_minibatch_std_rejects_indivisible_batch():
    layer = networks.MinibatchStdLayer(group_size=4)
    with pytest.raises(ValueError, match='batch size 6 is not divisible by the group size 4'):
        layer(torch.randn([6, 2, 4, 4]))

#----------------------------------------------------------------------------
# Noise modes, fused/non-fused synthesis, freeze_layers, argument errors.

@torch.no_grad()
def test_noise_modes(tiny_G_kwargs):
    torch.manual_seed(0)
    G = _randomize_(networks.Generator(**tiny_G_kwargs).eval())
    z, c = _latents(G)
    const1 = G(z, c, noise_mode='const')
    assert torch.equal(const1, G(z, c, noise_mode='const'))
    assert not torch.allclose(G(z, c, noise_mode='random'), G(z, c, noise_mode='random'))
    none = G(z, c, noise_mode='none')
    assert not torch.allclose(none, const1)

    # noise_mode='none' equals any noise with zero strength.
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith('noise_strength'):
                p.zero_()
    np.testing.assert_allclose(G(z, c, noise_mode='random').numpy(), none.numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="noise_mode must be one of random, const, none; got 'fixed'"):
        G(z, c, noise_mode='fixed')


def test_use_noise_false_has_no_noise_tensors(tiny_G_kwargs):
    tiny_G_kwargs['synthesis_kwargs']['use_noise'] = False
    G = networks.Generator(**tiny_G_kwargs)
    assert not any('noise' in name for name in G.state_dict())


@torch.no_grad()
def test_fused_and_unfused_synthesis_agree(tiny_G_kwargs):
    torch.manual_seed(0)
    G = _randomize_(networks.Generator(**tiny_G_kwargs).eval())
    z, c = _latents(G)
    ws = G.mapping(z, c)
    fused = G.synthesis(ws, noise_mode='const', fused_modconv=True)
    separate = G.synthesis(ws, noise_mode='const', fused_modconv=False)
    np.testing.assert_allclose(fused.numpy(), separate.numpy(), rtol=1e-4, atol=1e-4)


@torch.no_grad()
def test_synthesis_shares_w_between_torgb_and_next_conv(tiny_G_kwargs):
    # Changing w[1] affects b4.torgb and b8.conv0; changing the last w affects only the final ToRGB.
    torch.manual_seed(0)
    G = networks.Generator(**tiny_G_kwargs).eval()
    seen = {}
    for name, mod in G.synthesis.named_modules():
        if name.endswith(('conv0', 'conv1', 'torgb')):
            mod.register_forward_pre_hook(lambda m, args, name=name: seen.__setitem__(name, args[1].clone()))
    z, c = _latents(G)
    ws = G.mapping(z, c)
    ws = ws + torch.arange(G.num_ws).reshape(1, -1, 1)  # make the rows distinguishable
    G.synthesis(ws, noise_mode='const')
    expected = {'b4.conv1': 0, 'b4.torgb': 1, 'b8.conv0': 1, 'b8.conv1': 2, 'b8.torgb': 3,
                'b16.conv0': 3, 'b16.conv1': 4, 'b16.torgb': 5}
    for name, idx in expected.items():
        assert torch.equal(seen[name], ws[:, idx]), name


def test_freeze_layers_turns_weights_into_buffers(tiny_D_kwargs):
    torch.manual_seed(0)
    base = networks.Discriminator(**tiny_D_kwargs)
    tiny_D_kwargs['block_kwargs'] = dict(freeze_layers=5)
    frozen = networks.Discriminator(**tiny_D_kwargs)
    assert list(frozen.state_dict().keys()) != [] and set(frozen.state_dict()) == set(base.state_dict())
    # b16 has fromrgb, conv0, conv1, skip (layers 0-3); b8 has conv0 (4), conv1 (5), skip (6).
    buffers = dict(frozen.named_buffers())
    params = dict(frozen.named_parameters())
    for name in ['b16.fromrgb.weight', 'b16.fromrgb.bias', 'b16.conv0.weight', 'b16.skip.weight', 'b8.conv0.weight']:
        assert name in buffers and name not in params
    for name in ['b8.conv1.weight', 'b8.skip.weight', 'b4.conv.weight']:
        assert name in params
    assert [frozen.b16.first_layer_idx, frozen.b8.first_layer_idx] == [0, 4]
    assert _count(frozen.parameters()) < _count(base.parameters())


def test_constructor_errors(tiny_G_kwargs, tiny_D_kwargs):
    bad = copy.deepcopy(tiny_G_kwargs)
    bad['synthesis_kwargs']['architecture'] = 'unet'
    with pytest.raises(ValueError, match="architecture must be one of orig, skip, resnet; got 'unet'"):
        networks.Generator(**bad)
    with pytest.raises(ValueError, match="Discriminator: architecture must be one of"):
        networks.Discriminator(architecture='res', **tiny_D_kwargs)
    bad = dict(tiny_G_kwargs, img_resolution=24)
    with pytest.raises(ValueError, match='img_resolution must be a power of two >= 4; got 24'):
        networks.Generator(**bad)
    with pytest.raises(ValueError, match='img_resolution must be a power of two >= 4; got 2'):
        networks.Discriminator(**dict(tiny_D_kwargs, img_resolution=2))

#----------------------------------------------------------------------------
# Persistence: constructor arguments are kept and the networks pickle.

@torch.no_grad()
def test_init_kwargs_and_pickle_roundtrip(tiny_G_kwargs, tiny_D_kwargs):
    torch.manual_seed(0)
    G = _randomize_(networks.Generator(**tiny_G_kwargs).eval())
    D = networks.Discriminator(**tiny_D_kwargs).eval()
    assert dict(G.init_kwargs) == tiny_G_kwargs and G.init_args == ()
    assert dict(D.init_kwargs) == tiny_D_kwargs
    z, c = _latents(G)
    img = G(z, c, noise_mode='const')
    G2, D2 = pickle.loads(pickle.dumps((G, D)))
    assert type(G2).__name__ == 'Generator' and type(D2).__name__ == 'Discriminator'
    assert torch.equal(G2(z, c, noise_mode='const'), img)
    assert torch.equal(D2(img, c), D(img, c))


def test_same_seed_same_weights(tiny_G_kwargs):
    torch.manual_seed(123)
    a = networks.Generator(**tiny_G_kwargs).state_dict()
    torch.manual_seed(123)
    b = networks.Generator(**tiny_G_kwargs).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)

@pytest.mark.gpu
@torch.no_grad()
def test_cuda_matches_cpu(tiny_G_kwargs, tiny_D_kwargs):
    torch.manual_seed(0)
    G = _randomize_(networks.Generator(**tiny_G_kwargs).eval(), scale=0.1)
    D = networks.Discriminator(**tiny_D_kwargs).eval()
    z, c = _latents(G)
    img = G(z, c, noise_mode='const')
    logits = D(img, c)
    device = torch.device('cuda')
    G_gpu, D_gpu = copy.deepcopy(G).to(device), copy.deepcopy(D).to(device)
    img_gpu = G_gpu(z.to(device), c.to(device), noise_mode='const')
    np.testing.assert_allclose(img_gpu.cpu().numpy(), img.numpy(), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(D_gpu(img.to(device), c.to(device)).cpu().numpy(), logits.numpy(), rtol=1e-3, atol=1e-3)
    assert G_gpu(z.to(device), c.to(device)).device.type == 'cuda'  # random noise is drawn on the input's device

#----------------------------------------------------------------------------
# Sizes from spec section 9.14 (z = w = 512, channel_max 512, num_fp16_res 4, conv_clamp 256).
# torch.randn is replaced by torch.empty so that building the large networks is fast.

_SIZE_CASES = [
    # (resolution, channel_base, map layers, c_dim, D architecture, G params, G buffer elems, D params, num_ws, first fp16 res)
    (1024, 32768, 8, 0, 'resnet', 30370060, 2797104, 29012513, 18, 128),
    (256, 16384, 8, 0, 'resnet', 24767458, 175568, 24001089, 14, 32),
    (256, 16384, 2, 0, 'resnet', 23191522, 175568, 24001089, 14, 32),
    (32, 32768, 2, 10, 'orig', 20215315, 3392, 23089664, 8, 8),
]


@pytest.mark.parametrize('case', _SIZE_CASES, ids=['1024', 'paper256', 'auto256', 'cifar'])
def test_size_checksums(case, monkeypatch):
    res, channel_base, num_map, c_dim, d_arch, g_params, g_buffers, d_params, num_ws, fp16_res = case
    monkeypatch.setattr(torch, 'randn', torch.empty)
    G = networks.Generator(z_dim=512, c_dim=c_dim, w_dim=512, img_resolution=res, img_channels=3,
                           mapping_kwargs=dict(num_layers=num_map),
                           synthesis_kwargs=dict(channel_base=channel_base, channel_max=512, num_fp16_res=4, conv_clamp=256))
    D = networks.Discriminator(c_dim=c_dim, img_resolution=res, img_channels=3, architecture=d_arch,
                               channel_base=channel_base, channel_max=512, num_fp16_res=4, conv_clamp=256,
                               block_kwargs={}, mapping_kwargs={}, epilogue_kwargs=dict(mbstd_group_size=4))
    assert _count(G.parameters()) == g_params
    assert _count(G.buffers()) == g_buffers
    assert _count(D.parameters()) == d_params
    assert G.num_ws == num_ws
    fp16_blocks = [r for r in G.synthesis.block_resolutions if getattr(G.synthesis, f'b{r}').use_fp16]
    assert fp16_blocks == [r for r in G.synthesis.block_resolutions if r >= fp16_res]
    assert [r for r in D.block_resolutions if getattr(D, f'b{r}').use_fp16] == [r for r in D.block_resolutions if r >= fp16_res]

#----------------------------------------------------------------------------
