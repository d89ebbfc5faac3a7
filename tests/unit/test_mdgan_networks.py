"""Unit tests for priors/mdgan/networks.py: the encoder E and the second discriminator D2 built from the run's D, and the D-feature tap."""

import pickle

import pytest
import torch

from priors.mdgan import networks as mdgan_networks
from training import networks

#----------------------------------------------------------------------------

@pytest.fixture
def D(tiny_D_kwargs):
    torch.manual_seed(0)
    return networks.Discriminator(**dict(tiny_D_kwargs, c_dim=3)).requires_grad_(False)


def test_encoder_is_D_shaped_unconditional_with_a_z_output(D):
    E = mdgan_networks.build_encoder(D, z_dim=8, seed=1)
    assert type(E) is type(D) and E.c_dim == 0 and E.b4.mbstd is None
    assert E.init_kwargs.out_dim == 8 and E.init_kwargs.epilogue_kwargs == dict(mbstd_group_size=2, mbstd_num_channels=0)
    assert not any(p.requires_grad for p in E.parameters()) and E.training
    x = torch.randn([4, 3, 16, 16])
    z = E(x, torch.zeros([4, 0]))
    assert z.shape == (4, 8) and torch.isfinite(z).all()

    # No minibatch stddev: E(x) of one image does not depend on the others.
    assert torch.allclose(E(x[:1], torch.zeros([1, 0])), z[:1], atol=1e-6)

    # Same blocks as D (the block weights have D's shapes), its own weights.
    assert E.b16.conv0.weight.shape == D.b16.conv0.weight.shape
    assert not torch.equal(E.b16.conv0.weight, D.b16.conv0.weight)


def test_building_draws_from_its_own_seed_and_leaves_the_global_rng_alone(D):
    state = torch.random.get_rng_state()
    E1 = mdgan_networks.build_encoder(D, z_dim=8, seed=1)
    assert torch.equal(torch.random.get_rng_state(), state)
    E2 = mdgan_networks.build_encoder(D, z_dim=8, seed=1)
    E3 = mdgan_networks.build_encoder(D, z_dim=8, seed=2)
    assert torch.equal(E1.b16.conv0.weight, E2.b16.conv0.weight)
    assert not torch.equal(E1.b16.conv0.weight, E3.b16.conv0.weight)


def test_twin_is_a_fresh_D_of_the_same_kind(D):
    D2 = mdgan_networks.build_twin(D, seed=5)
    assert type(D2) is type(D) and D2.init_kwargs == D.init_kwargs
    assert [name for name, _ in D2.named_parameters()] == [name for name, _ in D.named_parameters()]
    assert not torch.equal(D2.b16.conv0.weight, D.b16.conv0.weight)
    c = torch.eye(3)[[0, 1, 2, 0]]
    assert D2(torch.randn([4, 3, 16, 16]), c).shape == (4, 1)
    assert pickle.loads(pickle.dumps(D2)).init_kwargs == D.init_kwargs  # persistent like D


def test_encoder_drops_a_prior_feature_module_of_D(tiny_D_kwargs):
    # A D with rf's frozen features: E gets D's blocks but not the feature module.
    kwargs = dict(tiny_D_kwargs, feature_kwargs=dict(class_name='tests.unit.test_mdgan_networks.FlatPixels'))
    D = networks.Discriminator(**kwargs)
    assert D.features is not None
    E = mdgan_networks.build_encoder(D, z_dim=5, seed=0)
    assert E.features is None and E(torch.randn([2, 3, 16, 16]), torch.zeros([2, 0])).shape == (2, 5)


class FlatPixels(torch.nn.Module):
    def __init__(self, img_resolution, img_channels):
        super().__init__()
        self.num_features = img_resolution * img_resolution * img_channels

    def forward(self, img):
        return img.flatten(1)


def test_feature_tap_reads_the_input_of_D_s_output_layer(D):
    layer = mdgan_networks.output_layer(D)
    assert layer is D.b4.out
    x, c = torch.randn([4, 3, 16, 16]), torch.eye(3)[[0, 1, 2, 0]]
    with mdgan_networks.tap_features(layer) as captured:
        D(x, c)
    assert len(captured) == 1 and captured[0].shape == (4, D.b4.fc.weight.shape[0])
    assert torch.allclose(D.b4.out(captured[0]), D.b4.out(D.b4.fc(D.b4.conv(D.b4.mbstd(_blocks(D, x))).flatten(1))))
    D(x, c)
    assert len(captured) == 1  # the hook is gone


def _blocks(D, img):
    x = None
    for res in D.block_resolutions:
        x, img = getattr(D, f'b{res}')(x, img)
    return x


def test_a_D_that_is_not_persistent_is_refused():
    with pytest.raises(TypeError, match='not a @persistence.persistent_class'):
        mdgan_networks.build_twin(torch.nn.Linear(2, 1), seed=0)
