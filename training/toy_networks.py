"""Toy lab networks: the MLP generator and discriminator of the papers' 2-D experiments, behind the StyleGAN2 network interfaces.

G (Goerttler & Kloft Table 1; Che et al. App. C): z -> FC 128 ReLU -> FC 128 ReLU -> FC 2 (linear).
D (Goerttler & Kloft Table 1): x -> FC 128 tanh x 3 -> FC 1 (the logit; the loss applies the sigmoid).
Other papers' pairs and latent distributions: TOY_NET_PRESETS (train.py --toy-net) and LATENT_DISTRIBUTIONS (--z-dist).

The interfaces are those of training/networks.py, so the loop, the loss, the
metrics, generate.py and every prior use the toy networks unchanged:

- `G.mapping(z, c, truncation_psi=1, truncation_cutoff=None, skip_w_avg_update=False) -> ws [N, num_ws, w_dim]`
  is the identity w = z (the papers' G has no mapping network), broadcast to
  num_ws = 2 copies, with the running mean w_avg that truncation pulls
  towards. Synthesis reads ws[:, 0] only: the second copy exists so that
  style mixing (which replaces ws[:, cutoff:] for a cutoff in [1, num_ws)) is
  well defined, and it has no effect.
- `G.synthesis(ws, side=None, noise_mode=..., force_fp32=..., fused_modconv=...) -> img [N, 2, 1, 1]`:
  a point is an image of two channels at resolution 1. The StyleGAN keyword
  arguments are accepted and ignored (the MLP has no noise and runs in float32).
- Side module (`synthesis_kwargs.side_kwargs`): built as S(channels=[128, 128], ...);
  every hidden layer counts as a conv layer, and its output x [N, 128] reaches
  S as [N, 128, 1, 1]: x <- S(i, x, side).
- `D(img, c) -> raw [N, out_dim]` (out_dim None = 1 logit). Feature module
  (`feature_kwargs`): built as F(img_resolution=1, img_channels=2, ...), called on D's
  input, its [N, F] output concatenated before the output layer ('out') or
  before the last hidden layer ('fc').

Both networks are unconditional (toy data has no labels).
"""

import torch

import dnnlib
from torch_utils import misc
from torch_utils import persistence

#----------------------------------------------------------------------------

_ACTIVATIONS = dict(relu=torch.relu, tanh=torch.tanh, lrelu=lambda x: torch.nn.functional.leaky_relu(x, 0.2), linear=lambda x: x,
                    sigmoid=torch.sigmoid)

# Latent distributions of the toy G (mapping_kwargs.z_dist). G's input z is always N(0, I), as everywhere in
# the code base (training loop, grids, metrics, generate.py); the mapping turns it into the chosen distribution
# first, through the normal CDF Phi, which maps N(0, 1) exactly onto U(0, 1):
#   normal     z                                 N(0, I) (default)
#   uniform    2 Phi(z) - 1 = erf(z / sqrt(2))   U(-1, 1)^d (Goerttler & Kloft Table 1)
#   uniform01  Phi(z)                            U[0, 1]^d (Che et al. App. C)
LATENT_DISTRIBUTIONS = ('normal', 'uniform', 'uniform01')

def latent_from_normal(z, z_dist):
    """The latent of distribution z_dist that G uses for the N(0, I) input z."""
    if z_dist == 'normal':
        return z
    if z_dist == 'uniform':
        return torch.erf(z * (0.5 ** 0.5))
    if z_dist == 'uniform01':
        return (torch.erf(z * (0.5 ** 0.5)) + 1) * 0.5
    raise ValueError(f'z_dist must be one of {", ".join(LATENT_DISTRIBUTIONS)}, got {z_dist!r}')

def _check_toy_shape(owner, c_dim, img_resolution, img_channels):
    if c_dim != 0:
        raise ValueError(f'{owner}: toy networks are unconditional, got c_dim={c_dim}; train with --cond=0')
    if img_resolution != 1:
        raise ValueError(f'{owner}: toy networks make points (resolution 1), got img_resolution={img_resolution}; '
                         f'use --cfg=toy only with toy data (--data=toy:NAME or an .npy/.csv point set)')
    if img_channels < 1:
        raise ValueError(f'{owner}: img_channels must be >= 1, got {img_channels}')

def _check_activation(owner, name):
    if name not in _ACTIVATIONS:
        raise ValueError(f'{owner}: activation must be one of {", ".join(_ACTIVATIONS)}, got {name!r}')

#----------------------------------------------------------------------------
# Mapping: w = z, broadcast to num_ws copies, with the running mean w_avg.

@persistence.persistent_class
class ToyMappingNetwork(torch.nn.Module):
    def __init__(self,
        z_dim,                  # Latent size; w_dim must equal it (w = z).
        c_dim,                  # Must be 0.
        w_dim,                  # Intermediate latent size (= z_dim).
        num_ws,                 # Copies of w to output.
        w_avg_beta  = 0.995,    # Decay of the running mean of w used by truncation; None = no w_avg.
        z_dist      = 'normal', # Latent distribution G uses: w = latent_from_normal(z, z_dist) (see LATENT_DISTRIBUTIONS).
    ):
        super().__init__()
        if w_dim != z_dim:
            raise ValueError(f'ToyMappingNetwork: w = z, so w_dim must equal z_dim; got z_dim={z_dim}, w_dim={w_dim}')
        if z_dist not in LATENT_DISTRIBUTIONS:
            raise ValueError(f'ToyMappingNetwork: z_dist must be one of {", ".join(LATENT_DISTRIBUTIONS)}, got {z_dist!r}')
        _check_toy_shape('ToyMappingNetwork', c_dim, 1, 1)
        self.z_dim, self.c_dim, self.w_dim, self.num_ws, self.w_avg_beta = z_dim, c_dim, w_dim, num_ws, w_avg_beta
        self.z_dist = z_dist
        if w_avg_beta is not None:
            self.register_buffer('w_avg', torch.zeros([w_dim]))

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, skip_w_avg_update=False):
        misc.assert_shape(z, [None, self.z_dim])
        x = z.to(torch.float32)
        if self.z_dist != 'normal':
            x = latent_from_normal(x, self.z_dist)

        # Track the running mean while training.
        if self.w_avg_beta is not None and self.training and not skip_w_avg_update:
            torch.lerp(x.detach().mean(dim=0), self.w_avg, self.w_avg_beta, out=self.w_avg)
        x = torch.stack([x] * self.num_ws, dim=1)  # [N, num_ws, w_dim]: the repeat, several times cheaper than .repeat()

        # Truncation: pull w towards w_avg on all copies or on those below the cutoff.
        if truncation_psi != 1:
            if self.w_avg_beta is None:
                raise ValueError(f'ToyMappingNetwork: truncation_psi={truncation_psi} needs w_avg, but w_avg_beta=None')
            cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
            x[:, :cutoff] = self.w_avg.lerp(x[:, :cutoff], truncation_psi)
        return x

#----------------------------------------------------------------------------
# Synthesis: ws[:, 0] -> hidden layers -> linear output, as a [N, C, 1, 1] image.

@persistence.persistent_class
class ToySynthesisNetwork(torch.nn.Module):
    def __init__(self,
        w_dim,                      # Input size.
        img_resolution,             # Must be 1.
        img_channels,               # Output size (2 for points).
        hidden          = [128, 128],   # Widths of the hidden layers.
        activation      = 'relu',   # Hidden activation: relu, lrelu, tanh or linear.
        num_ws          = 2,        # Copies of w it takes (reads the first).
        side_kwargs     = None,     # dict(class_name=..., **kwargs) of a side module S; None = disable.
        out_activation  = 'linear', # Output activation: linear (data units), tanh (Goerttler & Kloft Table 1: data in (-1, 1)^2), ...
    ):
        super().__init__()
        _check_toy_shape('ToySynthesisNetwork', 0, img_resolution, img_channels)
        _check_activation('ToySynthesisNetwork', activation)
        _check_activation('ToySynthesisNetwork', out_activation)
        self.out_activation = out_activation
        if num_ws < 1:
            raise ValueError(f'ToySynthesisNetwork: num_ws must be >= 1, got {num_ws}')
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.hidden, self.activation, self.num_ws = [int(h) for h in hidden], activation, num_ws
        widths = [w_dim] + self.hidden
        self.layers = torch.nn.ModuleList([torch.nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:])])
        self.out = torch.nn.Linear(widths[-1], img_channels)

        # Built last, on a forked RNG, so the layers get the same initial weights with or without it.
        self.side = None
        if side_kwargs is not None:
            with torch.random.fork_rng(devices=[]):
                self.side = dnnlib.util.construct_class_by_name(channels=list(self.hidden), **side_kwargs)

    def forward(self, ws, side=None, noise_mode='random', force_fp32=False, fused_modconv=None):
        del noise_mode, force_fp32, fused_modconv  # StyleGAN arguments; the MLP has no noise and runs in float32
        misc.assert_shape(ws, [None, self.num_ws, self.w_dim])
        if self.side is None and side is not None:
            raise ValueError('ToySynthesisNetwork: got a side input, but the network has no side module (side_kwargs=None)')
        x = ws[:, 0].to(torch.float32)
        act = _ACTIVATIONS[self.activation]
        for i, layer in enumerate(self.layers):
            x = act(layer(x))
            if self.side is not None:
                x = self.side(i, x[:, :, None, None], side).flatten(1)  # S sees conv-shaped [N, C, 1, 1]
        x = self.out(x)
        if self.out_activation != 'linear':
            x = _ACTIVATIONS[self.out_activation](x)
        return x.reshape(-1, self.img_channels, 1, 1)

    def extra_repr(self):
        return (f'w_dim={self.w_dim}, hidden={self.hidden}, activation={self.activation}, out_activation={self.out_activation}, '
                f'img_channels={self.img_channels}')

#----------------------------------------------------------------------------
# Generator: the same constructor and call as training.networks.Generator.

@persistence.persistent_class
class ToyGenerator(torch.nn.Module):
    """Args: z_dim (latent size), c_dim (must be 0), w_dim (must equal z_dim), img_resolution (must be 1),
    img_channels (2 for points); mapping_kwargs: ToyMappingNetwork arguments (w_avg_beta);
    synthesis_kwargs: ToySynthesisNetwork arguments (hidden, activation, num_ws, side_kwargs)."""

    def __init__(self, z_dim, c_dim, w_dim, img_resolution, img_channels, mapping_kwargs={}, synthesis_kwargs={}):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        _check_toy_shape('ToyGenerator', c_dim, img_resolution, img_channels)
        self.synthesis = ToySynthesisNetwork(w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels, **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.mapping = ToyMappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws, **mapping_kwargs)

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, **synthesis_kwargs):
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, **synthesis_kwargs)

#----------------------------------------------------------------------------
# Discriminator: points -> hidden layers -> raw output [N, out_dim].

@persistence.persistent_class
class ToyDiscriminator(torch.nn.Module):
    def __init__(self,
        c_dim,                      # Must be 0.
        img_resolution,             # Must be 1.
        img_channels,               # 2 for points.
        hidden          = [128, 128, 128],  # Widths of the hidden layers.
        activation      = 'tanh',   # Hidden activation: tanh, relu, lrelu or linear.
        out_dim         = None,     # Width of the raw output; None = 1 logit.
        feature_kwargs  = None,     # dict(class_name=..., **kwargs) of a feature module F; None = disable.
        feature_at      = 'out',    # Concatenate F's features before the output layer ('out') or the last hidden layer ('fc').
        out_activation  = 'linear', # Output activation: linear (the logit) or sigmoid (Goerttler & Kloft's critic, spec §2.2).
    ):
        super().__init__()
        _check_toy_shape('ToyDiscriminator', c_dim, img_resolution, img_channels)
        _check_activation('ToyDiscriminator', activation)
        _check_activation('ToyDiscriminator', out_activation)
        self.out_activation = out_activation
        if feature_at not in ('out', 'fc'):
            raise ValueError(f'ToyDiscriminator: feature_at must be "out" or "fc", got {feature_at!r}')
        if len(hidden) < 1:
            raise ValueError('ToyDiscriminator: needs at least one hidden layer')
        self.c_dim, self.img_resolution, self.img_channels = c_dim, img_resolution, img_channels
        self.hidden, self.activation, self.feature_at = [int(h) for h in hidden], activation, feature_at
        self.out_dim = 1 if out_dim is None else int(out_dim)
        widths = [img_channels] + self.hidden
        self.layers = torch.nn.ModuleList([torch.nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:])])
        self.out = torch.nn.Linear(widths[-1], self.out_dim)

        # The feature module widens the input of the output layer or of the last hidden layer.
        self.features = None
        if feature_kwargs is not None:
            with torch.random.fork_rng(devices=[]):
                self.features = dnnlib.util.construct_class_by_name(img_resolution=img_resolution, img_channels=img_channels, **feature_kwargs)
            extra = int(self.features.num_features)
            where = self.out if feature_at == 'out' else self.layers[-1]
            widened = torch.nn.Linear(where.in_features + extra, where.out_features)
            if feature_at == 'out':
                self.out = widened
            else:
                self.layers[-1] = widened

    def forward(self, img, c, force_fp32=False):
        del c, force_fp32  # unconditional; always float32
        misc.assert_shape(img, [None, self.img_channels, 1, 1])
        x = img.to(torch.float32).flatten(1)
        extra = None if self.features is None else self.features(img).flatten(1).to(torch.float32)
        act = _ACTIVATIONS[self.activation]
        for i, layer in enumerate(self.layers):
            if extra is not None and self.feature_at == 'fc' and i == len(self.layers) - 1:
                x = torch.cat([x, extra], dim=1)
            x = act(layer(x))
        if extra is not None and self.feature_at == 'out':
            x = torch.cat([x, extra], dim=1)
        x = self.out(x)
        return x if self.out_activation == 'linear' else _ACTIVATIONS[self.out_activation](x)

    def extra_repr(self):
        return f'hidden={self.hidden}, activation={self.activation}, out_activation={self.out_activation}, out_dim={self.out_dim}'

#----------------------------------------------------------------------------
# The papers' toy networks (train.py --toy-net): G_kwargs / D_kwargs overrides and the latent defaults.
# 'default' is today's pair (G of Table 1 with a linear output, D of Table 1 with a logit).
#   goerttler-table1       Goerttler & Kloft Table 1: G z (2-D U(-1,1)) -> FC 128 ReLU x 2 -> FC 2 tanh;
#                          D FC 128 tanh x 3 -> FC 1 (the logit; the loss applies the sigmoid)
#   goerttler-table1-sigmoid the same with the sigmoid inside D, as the paper's critic keeps it for WGAN (spec §2.2, §2.6.1)
#   che-appc               Che et al. App. C: G z (3-D U[0,1]) -> FC 128 ReLU x 2 -> FC 2; D: one FC layer of
#                          ReLU units (width silent: 128, spec §3.6.14) -> FC 1
#   unrolled               the unrolled-GAN ring networks (Metz et al. 2017, used by RFGAN's Fig. 3): G z (256-D
#                          N(0, I)) -> FC 128 ReLU x 2 -> FC 2; D FC 128 ReLU x 2 -> FC 1

TOY_NET_PRESETS = {
    'default':                  dict(G=dict(), D=dict(), z_dist='normal', z_dim=2),
    'goerttler-table1':         dict(G=dict(hidden=[128, 128], activation='relu', out_activation='tanh'),
                                    D=dict(hidden=[128, 128, 128], activation='tanh', out_activation='linear'), z_dist='uniform', z_dim=2),
    'goerttler-table1-sigmoid': dict(G=dict(hidden=[128, 128], activation='relu', out_activation='tanh'),
                                    D=dict(hidden=[128, 128, 128], activation='tanh', out_activation='sigmoid'), z_dist='uniform', z_dim=2),
    'che-appc':                 dict(G=dict(hidden=[128, 128], activation='relu', out_activation='linear'),
                                    D=dict(hidden=[128], activation='relu', out_activation='linear'), z_dist='uniform01', z_dim=3),
    'unrolled':                 dict(G=dict(hidden=[128, 128], activation='relu', out_activation='linear'),
                                    D=dict(hidden=[128, 128], activation='relu', out_activation='linear'), z_dist='normal', z_dim=256),
}

#----------------------------------------------------------------------------
# True for generators whose "images" are 2-D points (resolution 1, 2 channels).

def is_point_generator(G):
    return int(getattr(G, 'img_resolution', 0)) == 1 and int(getattr(G, 'img_channels', 0)) == 2

#----------------------------------------------------------------------------
