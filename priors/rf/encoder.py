"""The encoder of RFGAN's autoencoder, shaped like D, and the frozen copy of it that D carries (Bang & Shim, "Improved Training of GANs using Representative Features", ICML 2018, §3.1).

The paper builds the autoencoder so that "its encoder and decoder share the
same architecture as the discriminator and generator" and takes the
representative features h1 from "the last convolution layer of the encoder".

- ConvEncoder mirrors training.networks.Discriminator: the same blocks from
  img_resolution down to 8x8 (same channel table, architecture, clamping and
  mixed precision), then the 4x4 stage's 3x3 convolution. It has no minibatch
  stddev (a per-image feature must not depend on the other images of the batch)
  and no fully connected layers: h1 = flatten(conv(x_4x4)), [N, C_4 * 16].
- RepresentativeFeatures is the feature module D builds through its
  `feature_kwargs` extension (training.networks.Discriminator): the same encoder
  with every parameter turned into a buffer, so neither `requires_grad_(True)`
  nor D's optimizer ever reach it, while gradients with respect to the input
  image flow through it (G's gradient and R1 include the h1 path).
"""

import hashlib

import numpy as np
import torch

import dnnlib
from torch_utils import misc
from torch_utils import persistence
from training import networks

#----------------------------------------------------------------------------
# Channels per resolution and the first float16 resolution, as
# training.networks.Discriminator computes them (official formulas).

def _channels(res, channel_base, channel_max):
    return min(channel_base // res, channel_max)

def _first_fp16_resolution(img_resolution, num_fp16_res):
    return max(2 ** (int(np.log2(img_resolution)) + 1 - num_fp16_res), 8)

#----------------------------------------------------------------------------
# The encoder E of the autoencoder for StyleGAN2's discriminator: D's blocks
# and the 4x4 convolution, returning h1 = [N, C_4 * 16] float32.

@persistence.persistent_class
class ConvEncoder(torch.nn.Module):
    """Args: img_resolution (power of two >= 8), img_channels; architecture, channel_base, channel_max,
    num_fp16_res, conv_clamp (None = disable), block_kwargs: as for training.networks.Discriminator
    (Freeze-D's freeze_layers is ignored: the whole encoder is frozen inside D anyway);
    activation: of the 4x4 convolution (D's epilogue default); trainable: False = every weight is a buffer."""

    def __init__(self, img_resolution, img_channels, architecture='resnet', channel_base=32768, channel_max=512,
                 num_fp16_res=0, conv_clamp=None, block_kwargs={}, activation='lrelu', trainable=True):
        if not (isinstance(img_resolution, (int, np.integer)) and img_resolution >= 8 and img_resolution & (img_resolution - 1) == 0):
            raise ValueError(f'ConvEncoder: img_resolution must be a power of two >= 8, got {img_resolution!r}')
        super().__init__()
        self.img_resolution, self.img_channels, self.architecture = int(img_resolution), int(img_channels), architecture
        self.block_resolutions = [2 ** i for i in range(int(np.log2(img_resolution)), 2, -1)]
        block_kwargs = {k: v for k, v in block_kwargs.items() if k != 'freeze_layers'}
        fp16_resolution = _first_fp16_resolution(img_resolution, num_fp16_res)

        # D's blocks, img_resolution -> 4x4.
        for res in self.block_resolutions:
            tmp = _channels(res, channel_base, channel_max)
            block = networks.DiscriminatorBlock(tmp if res < img_resolution else 0, tmp, _channels(res // 2, channel_base, channel_max),
                resolution=res, img_channels=img_channels, first_layer_idx=0, architecture=architecture, conv_clamp=conv_clamp,
                use_fp16=(res >= fp16_resolution), **block_kwargs)
            setattr(self, f'b{res}', block)

        # The last convolution layer (D's epilogue conv, without the minibatch stddev channel).
        c4 = _channels(4, channel_base, channel_max)
        if architecture == 'skip':
            self.fromrgb = networks.Conv2dLayer(img_channels, c4, kernel_size=1, activation=activation)
        self.conv = networks.Conv2dLayer(c4, c4, kernel_size=3, activation=activation, conv_clamp=conv_clamp)
        self.num_features = c4 * 16
        if not trainable:
            freeze_to_buffers(self)

    def forward(self, img):
        misc.assert_shape(img, [None, self.img_channels, self.img_resolution, self.img_resolution])
        x = None
        for res in self.block_resolutions:
            x, img = getattr(self, f'b{res}')(x, img)
        x = x.to(dtype=torch.float32, memory_format=torch.contiguous_format)
        if self.architecture == 'skip':
            x = x + self.fromrgb(img.to(dtype=torch.float32, memory_format=torch.contiguous_format))
        return self.conv(x).flatten(1)  # [N, C_4 * 16]

#----------------------------------------------------------------------------
# The encoder for the toy lab's MLP discriminator (training.toy_networks.
# ToyDiscriminator): the same hidden layers; h1 = the last hidden layer's
# output, [N, hidden[-1]] (spec §4.6 item 7).

_MLP_ACTIVATIONS = dict(relu=torch.relu, tanh=torch.tanh, lrelu=lambda x: torch.nn.functional.leaky_relu(x, 0.2), linear=lambda x: x)

@persistence.persistent_class
class MLPEncoder(torch.nn.Module):
    """Args: img_resolution, img_channels: D's input ([N, C, R, R] is flattened); hidden: widths of D's
    hidden layers; activation: theirs (relu, tanh, lrelu, linear); trainable: False = weights as buffers."""

    def __init__(self, img_resolution, img_channels, hidden=[128, 128, 128], activation='tanh', trainable=True):
        if activation not in _MLP_ACTIVATIONS:
            raise ValueError(f'MLPEncoder: activation must be one of {", ".join(_MLP_ACTIVATIONS)}, got {activation!r}')
        if len(hidden) < 1:
            raise ValueError('MLPEncoder: needs at least one hidden layer')
        super().__init__()
        self.img_resolution, self.img_channels = int(img_resolution), int(img_channels)
        self.hidden, self.activation = [int(h) for h in hidden], activation
        widths = [self.img_channels * self.img_resolution ** 2] + self.hidden
        self.layers = torch.nn.ModuleList([torch.nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:])])
        self.num_features = self.hidden[-1]
        if not trainable:
            freeze_to_buffers(self)

    def forward(self, img):
        misc.assert_shape(img, [None, self.img_channels, self.img_resolution, self.img_resolution])
        x = img.to(torch.float32).flatten(1)
        act = _MLP_ACTIVATIONS[self.activation]
        for layer in self.layers:
            x = act(layer(x))
        return x  # [N, hidden[-1]]

#----------------------------------------------------------------------------
# Turn every parameter of `module` (recursively) into a buffer of the same
# name and value, so that the module has no parameters at all. State-dict
# keys are unchanged, so weights load across the two forms.

def freeze_to_buffers(module):
    for sub in module.modules():
        for name, param in list(sub._parameters.items()):  # pylint: disable=protected-access
            if param is None:
                continue
            del sub._parameters[name]  # pylint: disable=protected-access
            sub.register_buffer(name, param.detach().clone())
    return module

#----------------------------------------------------------------------------
# Identity of an autoencoder file as an int64 (the first 60 bits of a hex
# digest); 0 means "random weights, nothing loaded".

def source_id_from_digest(digest):
    if not digest:
        return 0
    return int(hashlib.md5(str(digest).encode('utf-8')).hexdigest()[:15], 16)

#----------------------------------------------------------------------------
# D's feature module for --prior=rf: a frozen encoder. Built by
# training.networks.Discriminator as RepresentativeFeatures(img_resolution=...,
# img_channels=..., **feature_kwargs). Its weights start random; the prior
# loads the pretrained encoder into it (load_encoder). `source_id` records
# which autoencoder file the weights came from (0 = not loaded yet).

@persistence.persistent_class
class RepresentativeFeatures(torch.nn.Module):
    """Args: img_resolution, img_channels: of D's input; encoder_kwargs: dict(class_name=..., **kwargs) of
    the encoder (ConvEncoder, or an MLP encoder for the toy networks), built as
    `cls(img_resolution=..., img_channels=..., trainable=False, **kwargs)`."""

    def __init__(self, img_resolution, img_channels, encoder_kwargs):
        super().__init__()
        self.encoder = dnnlib.util.construct_class_by_name(img_resolution=img_resolution, img_channels=img_channels, trainable=False,
                                                           **encoder_kwargs)
        if any(True for _ in self.encoder.parameters()):
            raise TypeError(f'RepresentativeFeatures: {encoder_kwargs.get("class_name")}(trainable=False) still has parameters; '
                            f'a frozen encoder must keep its weights as buffers')
        self.num_features = int(self.encoder.num_features)
        self.register_buffer('source_id', torch.zeros([], dtype=torch.int64))

    @property
    def is_loaded(self):
        return int(self.source_id) != 0

    # Copy a trained encoder's state dict (parameters or buffers, same names) into the frozen buffers.
    def load_encoder(self, state_dict, source_id):
        own = self.encoder.state_dict(keep_vars=True)
        missing = sorted(set(own) - set(state_dict))
        unexpected = sorted(set(state_dict) - set(own))
        if missing or unexpected:
            raise ValueError(f'RepresentativeFeatures: the autoencoder\'s encoder does not match D\'s feature module '
                             f'(missing {missing[:3]}, unexpected {unexpected[:3]}); was it built for another D architecture?')
        with torch.no_grad():
            for name, tensor in own.items():
                src = torch.as_tensor(state_dict[name])
                if src.shape != tensor.shape:
                    raise ValueError(f'RepresentativeFeatures: encoder tensor "{name}" has shape {list(src.shape)} in the '
                                     f'autoencoder but {list(tensor.shape)} in D; was it built for another D architecture?')
                tensor.copy_(src)
            self.source_id.fill_(int(source_id))

    def forward(self, img):
        return self.encoder(img).to(torch.float32)  # [N, num_features]

#----------------------------------------------------------------------------
