"""StyleGAN2 generator and discriminator as used by StyleGAN2-ADA (Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020; "Training Generative Adversarial Networks with Limited Data", NeurIPS 2020)."""

# Pickled networks carry this file's source and the official loader executes it against the
# official torch_utils, so only names that package also provides may be imported here.
import numpy as np
import torch
import dnnlib
from torch_utils import misc
from torch_utils import persistence
from torch_utils.ops import bias_act, conv2d_resample, fma, upfirdn2d

#----------------------------------------------------------------------------
# Small private helpers shared by several layers.

_ARCHITECTURES = ('orig', 'skip', 'resnet')
_NOISE_MODES = ('random', 'const', 'none')


def _check_architecture(owner, architecture):
    if architecture not in _ARCHITECTURES:
        raise ValueError(f'{owner}: architecture must be one of {", ".join(_ARCHITECTURES)}; got {architecture!r}')


def _check_sizes(owner, minimum, **sizes):
    # Shape arguments must be integers >= minimum (e.g. img_channels=0 builds a network of empty tensors).
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
            raise ValueError(f'{owner}: {name} must be an integer >= {minimum}; got {value!r}')


def _check_channels(owner, channels, channel_base):
    # channel_base // resolution must leave at least one feature map at every resolution.
    res = max(channels)
    if min(channels.values()) < 1:
        raise ValueError(f'{owner}: channel_base={channel_base} gives no feature maps at resolution {res} '
                         f'(channel_base // resolution = 0); use channel_base >= {res}')


def _scaled_clamp(conv_clamp, gain):
    # The clamp limit follows the output gain; None keeps clamping disabled.
    return None if conv_clamp is None else conv_clamp * gain


def _compute_format(use_fp16, channels_last, force_fp32):
    # Dtype and memory layout that a block computes in; force_fp32 overrides both.
    low_precision = use_fp16 and not force_fp32
    dtype = torch.float16 if low_precision else torch.float32
    layout = torch.channels_last if (channels_last and not force_fp32) else torch.contiguous_format
    return dtype, layout


def _random_kernel(out_channels, in_channels, kernel_size, channels_last):
    # Unit-variance initial conv kernel [O, I, k, k], optionally in channels_last layout.
    kernel = torch.randn([out_channels, in_channels, kernel_size, kernel_size])
    return kernel.to(memory_format=torch.channels_last) if channels_last else kernel


def _resolution_log2(owner, img_resolution):
    # Networks are built from 4x4 upwards, one block per octave.
    ok = isinstance(img_resolution, (int, np.integer)) and img_resolution >= 4 and (img_resolution & (img_resolution - 1)) == 0
    if not ok:
        raise ValueError(f'{owner}: img_resolution must be a power of two >= 4; got {img_resolution!r}')
    return int(np.log2(img_resolution))


def _channel_table(resolutions, channel_base, channel_max):
    # Feature maps per resolution: inversely proportional to the resolution, capped at channel_max.
    return {res: min(channel_base // res, channel_max) for res in resolutions}


def _first_fp16_resolution(img_resolution_log2, num_fp16_res):
    # The highest num_fp16_res resolutions run in float16, but never the 4x4 stage.
    return max(2 ** (img_resolution_log2 + 1 - num_fp16_res), 8)

#----------------------------------------------------------------------------
# Scale x to unit mean square along `dim` (pixelwise feature normalisation).

@misc.profiled_function
def normalize_2nd_moment(x, dim=1, eps=1e-8):
    """Divide x by the root mean square of its entries along `dim`.

    Args:
        x: tensor of any shape, floating point.
        dim: dimension over which the second moment is taken.
        eps: added to the mean square before the reciprocal square root.
    Returns:
        tensor of the shape and dtype of x.
    """
    mean_square = x.square().mean(dim=dim, keepdim=True)
    return x * (mean_square + eps).rsqrt()

#----------------------------------------------------------------------------
# Convolution whose kernel is scaled per sample by `styles` and optionally demodulated
# (Eq. 1-3 of the StyleGAN2 paper), fused into one grouped convolution or done as
# scale-input / convolve / scale-output.

@misc.profiled_function
def modulated_conv2d(x, weight, styles, noise=None, up=1, down=1, padding=0, resample_filter=None,
                     demodulate=True, flip_weight=True, fused_modconv=True):
    """Modulated (and demodulated) 2-D convolution with optional resampling and additive noise.

    Args:
        x: [N, I, H, W] input, float32 or float16.
        weight: [O, I, kh, kw] shared kernel.
        styles: [N, I] per-sample scales of the input channels.
        noise: None or a tensor broadcastable to the output, added after demodulation.
        up, down, padding, resample_filter, flip_weight: passed on to conv2d_resample.
        demodulate: normalise each output channel's per-sample kernel to unit L2 norm.
        fused_modconv: run all samples as one grouped convolution.
    Returns:
        [N, O, H', W'] tensor of x's dtype.
    """
    num_samples = x.shape[0]
    out_channels, in_channels, kh, kw = weight.shape
    misc.assert_shape(weight, [out_channels, in_channels, kh, kw])
    misc.assert_shape(x, [num_samples, in_channels, None, None])
    misc.assert_shape(styles, [num_samples, in_channels])

    # In half precision, pre-scale kernel and styles so the products cannot overflow.
    # Demodulation removes any per-channel scale, so the result is unchanged.
    if demodulate and x.dtype == torch.float16:
        kernel_peak = weight.abs().amax(dim=(1, 2, 3), keepdim=True)
        weight = weight * (1 / np.sqrt(in_channels * kh * kw) / kernel_peak)
        styles = styles / styles.abs().amax(dim=1, keepdim=True)

    # Per-sample kernels and their demodulation factors.
    sample_kernels = None
    demod = None
    if demodulate or fused_modconv:
        sample_kernels = weight.unsqueeze(0) * styles.reshape(num_samples, 1, in_channels, 1, 1)  # [N, O, I, kh, kw]
    if demodulate:
        demod = (sample_kernels.square().sum(dim=(2, 3, 4)) + 1e-8).rsqrt()  # [N, O]
        if fused_modconv:
            sample_kernels = sample_kernels * demod.reshape(num_samples, out_channels, 1, 1, 1)

    if not fused_modconv:
        return _modconv_separate(x, weight, styles, demod, noise, up, down, padding, resample_filter, flip_weight)

    # One grouped convolution: samples become groups of a single-image batch.
    with misc.suppress_tracer_warnings():
        num_samples = int(num_samples)
    misc.assert_shape(x, [num_samples, in_channels, None, None])
    grouped_x = x.reshape(1, num_samples * in_channels, *x.shape[2:])
    grouped_w = sample_kernels.reshape(num_samples * out_channels, in_channels, kh, kw)
    y = conv2d_resample.conv2d_resample(x=grouped_x, w=grouped_w.to(x.dtype), f=resample_filter, up=up, down=down,
                                        padding=padding, groups=num_samples, flip_weight=flip_weight)
    y = y.reshape(num_samples, out_channels, *y.shape[2:])
    if noise is not None:
        y = y.add_(noise)  # in place, so a float32 noise keeps y in x's dtype
    return y


def _modconv_separate(x, weight, styles, demod, noise, up, down, padding, resample_filter, flip_weight):
    # Non-fused modulated convolution: scale the input channels, convolve with the shared kernel,
    # then scale the output channels (demodulation) and add the noise.
    x = x * styles.to(x.dtype).reshape(x.shape[0], -1, 1, 1)
    y = conv2d_resample.conv2d_resample(x=x, w=weight.to(x.dtype), f=resample_filter, up=up, down=down,
                                        padding=padding, flip_weight=flip_weight)
    if demod is not None:
        out_scale = demod.to(y.dtype).reshape(y.shape[0], -1, 1, 1)
        if noise is not None:
            return fma.fma(y, out_scale, noise.to(y.dtype))
        return y * out_scale
    if noise is not None:
        return y.add_(noise.to(y.dtype))
    return y

#----------------------------------------------------------------------------
# Dense layer with equalised learning rate: weights are stored at unit scale and
# multiplied by lr_multiplier / sqrt(fan_in) at run time.

@persistence.persistent_class
class FullyConnectedLayer(torch.nn.Module):
    """Args: in_features, out_features: sizes; bias: learn a bias; activation: a bias_act.activation_funcs
    name; lr_multiplier: learning-rate multiplier of this layer; bias_init: initial bias value."""

    def __init__(self, in_features, out_features, bias=True, activation='linear', lr_multiplier=1, bias_init=0):
        super().__init__()
        self.activation = activation
        # Parameters are stored divided by the gains that forward() multiplies back in.
        self.weight_gain, self.bias_gain = lr_multiplier / np.sqrt(in_features), lr_multiplier
        self.weight = torch.nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = torch.nn.Parameter(torch.full([out_features], np.float32(bias_init))) if bias else None

    def forward(self, x, add=None):
        # add: None, or [N, out_features] added to x @ w^T before the bias and activation (a second input's share).
        w = self.weight.to(x.dtype) * self.weight_gain
        b = None
        if self.bias is not None:
            b = self.bias.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain

        # A linear layer with bias is a single addmm; anything else goes through bias_act,
        # which also applies the activation's default gain.
        if self.activation == 'linear' and b is not None and add is None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        y = x.matmul(w.t())
        if add is not None:
            y = y + add.to(y.dtype)
        return bias_act.bias_act(y, b, act=self.activation)

#----------------------------------------------------------------------------
# Convolution with equalised learning rate, optional FIR up/down-sampling, bias,
# activation and output clamping. trainable=False stores weight and bias as buffers.

@persistence.persistent_class
class Conv2dLayer(torch.nn.Module):
    """Args: in_channels, out_channels, kernel_size (square); bias: learn a bias; activation: a bias_act
    name; up, down: resampling factors; resample_filter: low-pass FIR taps; conv_clamp: clamp the output
    to +-this value (None = disable); channels_last: weight memory format; trainable: False = frozen."""

    def __init__(self, in_channels, out_channels, kernel_size, bias=True, activation='linear', up=1, down=1,
                 resample_filter=[1,3,3,1], conv_clamp=None, channels_last=False, trainable=True):
        super().__init__()
        self.activation, self.conv_clamp = activation, conv_clamp
        self.up, self.down, self.padding = up, down, kernel_size // 2
        self.register_buffer('resample_filter', upfirdn2d.setup_filter(resample_filter))
        self.weight_gain = 1 / np.sqrt(in_channels * kernel_size * kernel_size)
        self.act_gain = bias_act.activation_funcs[activation].def_gain

        # Create the tensors, then register them as parameters or as frozen buffers.
        weight = _random_kernel(out_channels, in_channels, kernel_size, channels_last)
        bias_value = torch.zeros([out_channels]) if bias else None
        if trainable:
            self.weight = torch.nn.Parameter(weight)
            self.bias = torch.nn.Parameter(bias_value) if bias_value is not None else None
        else:
            self.register_buffer('weight', weight)
            if bias_value is not None:
                self.register_buffer('bias', bias_value)
            else:
                self.bias = None

    def forward(self, x, gain=1):
        w = (self.weight * self.weight_gain).to(x.dtype)
        y = conv2d_resample.conv2d_resample(x=x, w=w, f=self.resample_filter, up=self.up, down=self.down,
                                            padding=self.padding, flip_weight=(self.up == 1))
        b = None if self.bias is None else self.bias.to(x.dtype)
        return bias_act.bias_act(y, b, act=self.activation, gain=self.act_gain * gain,
                                 clamp=_scaled_clamp(self.conv_clamp, gain))

#----------------------------------------------------------------------------
# Mapping network: z (and the embedded label c) -> w, broadcast to num_ws copies.
# Tracks the running mean w_avg used for the truncation trick.

@persistence.persistent_class
class MappingNetwork(torch.nn.Module):
    """Args: z_dim, c_dim: input sizes (0 = absent); w_dim: output size; num_ws: copies of w to output
    (None = return [N, w_dim]); num_layers: dense layers; embed_features: label embedding size (None =
    w_dim); layer_features: hidden width (None = w_dim); activation; lr_multiplier of the dense layers;
    w_avg_beta: decay of the running mean of w (None = no w_avg)."""

    def __init__(self, z_dim, c_dim, w_dim, num_ws, num_layers=8, embed_features=None, layer_features=None,
                 activation='lrelu', lr_multiplier=0.01, w_avg_beta=0.995):
        _check_sizes('MappingNetwork', 0, z_dim=z_dim, c_dim=c_dim, num_layers=num_layers)
        _check_sizes('MappingNetwork', 1, w_dim=w_dim)
        if z_dim == 0 and c_dim == 0:
            raise ValueError('MappingNetwork: z_dim and c_dim are both 0, so there is no input; give one of them a positive size')
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.num_ws, self.num_layers, self.w_avg_beta = num_ws, num_layers, w_avg_beta

        # Layer widths: [z + embedded c] -> hidden ... -> w.
        embed_features = 0 if c_dim == 0 else (w_dim if embed_features is None else embed_features)
        hidden = w_dim if layer_features is None else layer_features
        widths = [z_dim + embed_features] + [hidden] * (num_layers - 1) + [w_dim]

        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for idx in range(num_layers):
            layer = FullyConnectedLayer(widths[idx], widths[idx + 1], activation=activation, lr_multiplier=lr_multiplier)
            setattr(self, f'fc{idx}', layer)
        if w_avg_beta is not None and num_ws is not None:
            self.register_buffer('w_avg', torch.zeros([w_dim]))  # running mean of w, for truncation

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, skip_w_avg_update=False):
        # Normalise the latent and the label embedding, then concatenate them.
        parts = []
        if self.z_dim > 0:
            misc.assert_shape(z, [None, self.z_dim])
            parts.append(normalize_2nd_moment(z.to(torch.float32)))
        if self.c_dim > 0:
            misc.assert_shape(c, [None, self.c_dim])
            parts.append(normalize_2nd_moment(self.embed(c.to(torch.float32))))
        x = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)

        for idx in range(self.num_layers):
            x = getattr(self, f'fc{idx}')(x)

        # Move w_avg towards the batch mean while training.
        if self.w_avg_beta is not None and self.training and not skip_w_avg_update:
            self.w_avg.copy_(x.detach().mean(dim=0).to(self.w_avg.dtype).lerp(self.w_avg, self.w_avg_beta))

        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat([1, self.num_ws, 1])  # [N, num_ws, w_dim]

        # Truncation trick: pull w towards w_avg, on all layers or on those below the cutoff.
        if truncation_psi == 1:
            return x
        if self.w_avg_beta is None:
            raise ValueError(f'MappingNetwork: truncation_psi={truncation_psi} needs w_avg, but this network was built with w_avg_beta=None')
        if truncation_cutoff is not None and self.num_ws is not None:
            head = x[:, :truncation_cutoff]
            x[:, :truncation_cutoff] = self.w_avg.to(x.dtype).lerp(head, truncation_psi)
            return x
        return self.w_avg.to(x.dtype).lerp(x, truncation_psi)

#----------------------------------------------------------------------------
# One modulated 3x3 convolution of the synthesis network, with per-pixel noise,
# bias and activation; up=2 doubles the resolution.

@persistence.persistent_class
class SynthesisLayer(torch.nn.Module):
    """Args: in_channels, out_channels; w_dim; resolution: output resolution; kernel_size; up: upsampling
    factor; use_noise: add per-pixel noise; activation; resample_filter: FIR taps for upsampling;
    conv_clamp: clamp outputs to +-this value (None = disable); channels_last: weight memory format."""

    def __init__(self, in_channels, out_channels, w_dim, resolution, kernel_size=3, up=1, use_noise=True,
                 activation='lrelu', resample_filter=[1,3,3,1], conv_clamp=None, channels_last=False):
        super().__init__()
        self.resolution, self.up, self.padding = resolution, up, kernel_size // 2
        self.use_noise, self.activation, self.conv_clamp = use_noise, activation, conv_clamp
        self.act_gain = bias_act.activation_funcs[activation].def_gain

        # Construction order (affine, kernel, noise) fixes which random numbers each tensor gets.
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.register_buffer('resample_filter', upfirdn2d.setup_filter(resample_filter))
        self.weight = torch.nn.Parameter(_random_kernel(out_channels, in_channels, kernel_size, channels_last))
        if use_noise:
            self.noise_strength = torch.nn.Parameter(torch.zeros([]))
            self.register_buffer('noise_const', torch.randn([resolution, resolution]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))

    def _noise(self, x, noise_mode):
        # Noise image for this call, already scaled by the learned strength; None = no noise.
        if noise_mode not in _NOISE_MODES:
            raise ValueError(f'SynthesisLayer: noise_mode must be one of {", ".join(_NOISE_MODES)}; got {noise_mode!r}')
        if not self.use_noise or noise_mode == 'none':
            return None
        if noise_mode == 'const':
            return self.noise_const * self.noise_strength
        fresh = torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device)
        return fresh * self.noise_strength

    def forward(self, x, w, noise_mode='random', fused_modconv=True, gain=1, side_fn=None):
        # side_fn: the synthesis network's side-input hook (see SynthesisNetwork), applied to the output.
        in_res = self.resolution // self.up
        misc.assert_shape(x, [None, self.weight.shape[1], in_res, in_res])
        styles = self.affine(w)
        noise = self._noise(x, noise_mode)
        y = modulated_conv2d(x=x, weight=self.weight, styles=styles, noise=noise, up=self.up, padding=self.padding,
                             resample_filter=self.resample_filter, flip_weight=(self.up == 1), fused_modconv=fused_modconv)
        y = bias_act.bias_act(y, self.bias.to(y.dtype), act=self.activation, gain=self.act_gain * gain,
                              clamp=_scaled_clamp(self.conv_clamp, gain))
        return y if side_fn is None else side_fn(self, y)

#----------------------------------------------------------------------------
# Modulated 1x1 convolution to image channels, without demodulation.

@persistence.persistent_class
class ToRGBLayer(torch.nn.Module):
    """Args: in_channels; out_channels: image channels; w_dim; kernel_size; conv_clamp (None = disable);
    channels_last: weight memory format."""

    def __init__(self, in_channels, out_channels, w_dim, kernel_size=1, conv_clamp=None, channels_last=False):
        super().__init__()
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = torch.nn.Parameter(_random_kernel(out_channels, in_channels, kernel_size, channels_last))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain, self.conv_clamp = 1 / np.sqrt(in_channels * kernel_size * kernel_size), conv_clamp

    def forward(self, x, w, fused_modconv=True):
        # Without demodulation the equalised-lr gain is folded into the styles.
        styles = self.affine(w) * self.weight_gain
        y = modulated_conv2d(x=x, weight=self.weight, styles=styles, demodulate=False, fused_modconv=fused_modconv)
        return bias_act.bias_act(y, self.bias.to(y.dtype), clamp=self.conv_clamp)

#----------------------------------------------------------------------------
# One resolution stage of the synthesis network: (upsampling conv0), conv1, and the
# image output path of the chosen architecture (orig / skip / resnet).

@persistence.persistent_class
class SynthesisBlock(torch.nn.Module):
    """Args: in_channels (0 = first block, which starts from a learned constant); out_channels; w_dim;
    resolution of the block; img_channels; is_last: highest-resolution block; architecture: 'orig',
    'skip' or 'resnet'; resample_filter: FIR taps for upsampling; conv_clamp (None = disable);
    use_fp16: compute in float16; fp16_channels_last: channels_last layout with float16;
    layer_kwargs: passed on to both SynthesisLayers (e.g. use_noise, activation, kernel_size)."""

    def __init__(self, in_channels, out_channels, w_dim, resolution, img_channels, is_last, architecture='skip',
                 resample_filter=[1,3,3,1], conv_clamp=None, use_fp16=False, fp16_channels_last=False, **layer_kwargs):
        _check_architecture('SynthesisBlock', architecture)
        super().__init__()
        self.in_channels, self.w_dim, self.resolution = in_channels, w_dim, resolution
        self.img_channels, self.is_last, self.architecture = img_channels, is_last, architecture
        self.use_fp16, self.channels_last = use_fp16, (use_fp16 and fp16_channels_last)
        self.register_buffer('resample_filter', upfirdn2d.setup_filter(resample_filter))
        self.num_conv = 1 if in_channels == 0 else 2  # conv0 (upsampling) exists unless this is the 4x4 block
        self.num_torgb = 1 if (is_last or architecture == 'skip') else 0

        if in_channels == 0:
            self.const = torch.nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim=w_dim, resolution=resolution, up=2,
                resample_filter=resample_filter, conv_clamp=conv_clamp, channels_last=self.channels_last, **layer_kwargs)
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim=w_dim, resolution=resolution,
            conv_clamp=conv_clamp, channels_last=self.channels_last, **layer_kwargs)
        if self.num_torgb:
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp, channels_last=self.channels_last)
        if in_channels != 0 and architecture == 'resnet':
            self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, bias=False, up=2, resample_filter=resample_filter, channels_last=self.channels_last)

    def forward(self, x, img, ws, force_fp32=False, fused_modconv=None, **layer_kwargs):
        dtype, layout = _compute_format(self.use_fp16, self.channels_last, force_fp32)
        misc.assert_shape(ws, [None, self.num_conv + self.num_torgb, self.w_dim])
        block_ws = ws.unbind(dim=1)
        if fused_modconv is None:
            with misc.suppress_tracer_warnings():
                fused_modconv = (not self.training) and (dtype == torch.float32 or int(ws.shape[0]) == 1)

        # Features entering the block: the learned constant, or the previous block's output.
        if self.in_channels == 0:
            x = self.const.to(dtype=dtype, memory_format=layout)
            x = x.unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
        else:
            half_res = self.resolution // 2
            misc.assert_shape(x, [None, self.in_channels, half_res, half_res])
            x = x.to(dtype=dtype, memory_format=layout)

        # Main path; resnet adds a 1x1 upsampled shortcut and scales both branches by sqrt(1/2).
        conv_args = dict(fused_modconv=fused_modconv, **layer_kwargs)
        if self.in_channels == 0:
            x = self.conv1(x, block_ws[0], **conv_args)
        elif self.architecture == 'resnet':
            shortcut = self.skip(x, gain=np.sqrt(0.5))
            x = self.conv0(x, block_ws[0], **conv_args)
            x = self.conv1(x, block_ws[1], gain=np.sqrt(0.5), **conv_args)
            x = shortcut.add_(x)
        else:
            x = self.conv0(x, block_ws[0], **conv_args)
            x = self.conv1(x, block_ws[1], **conv_args)

        # Image path: upsample the incoming image and add this block's RGB contribution.
        if img is not None:
            half_res = self.resolution // 2
            misc.assert_shape(img, [None, self.img_channels, half_res, half_res])
            img = upfirdn2d.upsample2d(img, self.resample_filter)
        if self.num_torgb > 0:
            rgb = self.torgb(x, block_ws[self.num_conv], fused_modconv=fused_modconv)
            rgb = rgb.to(dtype=torch.float32, memory_format=torch.contiguous_format)
            img = rgb if img is None else img.add_(rgb)

        assert x.dtype == dtype and (img is None or img.dtype == torch.float32)
        return x, img

#----------------------------------------------------------------------------
# Synthesis network: a chain of SynthesisBlocks from 4x4 to img_resolution.
# Consecutive blocks share one w: a block's ToRGB uses the w of the next block's first conv.

@persistence.persistent_class
class SynthesisNetwork(torch.nn.Module):
    """Args: w_dim; img_resolution: output resolution (a power of two >= 4); img_channels; channel_base,
    channel_max: channels at resolution r are min(channel_base // r, channel_max); num_fp16_res: number
    of highest resolutions computed in float16; side_kwargs: None, or dict(class_name=..., **kwargs) of a
    side-input module S (see below); block_kwargs: passed on to every SynthesisBlock.

    Side input (an extension, not in the official network; used by plugins, e.g. P2GAN's
    side modules): S is built as `S(channels=[c_0, c_1, ...], **kwargs)` with the output channels of every
    modulated 3x3 conv layer in execution order (ToRGB excluded). `forward(ws, side=...)` then replaces the
    output x of conv layer i (after bias, activation and clamp) by `S(i, x, side)`; `side` is any
    per-sample input or None (sampling without one: S decides what that means, e.g. stored factors).
    S is a submodule, so G_ema averages its parameters and copies its buffers."""

    def __init__(self, w_dim, img_resolution, img_channels, channel_base=32768, channel_max=512, num_fp16_res=0,
                 side_kwargs=None, **block_kwargs):
        log2 = _resolution_log2('SynthesisNetwork', img_resolution)
        _check_sizes('SynthesisNetwork', 1, w_dim=w_dim, img_channels=img_channels, channel_base=channel_base, channel_max=channel_max)
        _check_sizes('SynthesisNetwork', 0, num_fp16_res=num_fp16_res)
        super().__init__()
        self.w_dim, self.img_channels = w_dim, img_channels
        self.img_resolution, self.img_resolution_log2 = img_resolution, log2
        self.block_resolutions = [2 ** i for i in range(2, log2 + 1)]
        channels = _channel_table(self.block_resolutions, channel_base, channel_max)
        _check_channels('SynthesisNetwork', channels, channel_base)
        fp16_resolution = _first_fp16_resolution(log2, num_fp16_res)

        self.num_ws = 0
        for res in self.block_resolutions:
            is_last = (res == img_resolution)
            block = SynthesisBlock(channels[res // 2] if res > 4 else 0, channels[res], w_dim=w_dim, resolution=res,
                img_channels=img_channels, is_last=is_last, use_fp16=(res >= fp16_resolution), **block_kwargs)
            self.num_ws += block.num_conv + (block.num_torgb if is_last else 0)
            setattr(self, f'b{res}', block)

        # Built last, so the official parameters get the same random numbers with or without it.
        self.side = None
        if side_kwargs is not None:
            layers = self._side_layers()
            self.side = dnnlib.util.construct_class_by_name(channels=[int(layer.weight.shape[0]) for layer in layers], **side_kwargs)

    # The modulated conv layers in execution order: the ones the side module sees.
    def _side_layers(self):
        layers = []
        for res in self.block_resolutions:
            block = getattr(self, f'b{res}')
            layers += [block.conv0, block.conv1] if hasattr(block, 'conv0') else [block.conv1]
        return layers

    def forward(self, ws, side=None, **block_kwargs):
        # block_kwargs: noise_mode, force_fp32, fused_modconv. side: input of the side module (see class doc).
        misc.assert_shape(ws, [None, self.num_ws, self.w_dim])
        if self.side is not None:
            index = {id(layer): i for i, layer in enumerate(self._side_layers())}
            block_kwargs = dict(block_kwargs, side_fn=lambda layer, x: self.side(index[id(layer)], x, side))
        elif side is not None:
            raise ValueError('SynthesisNetwork: got a side input, but the network has no side module (side_kwargs=None)')
        ws, features, img, w_start = ws.to(torch.float32), None, None, 0
        for res in self.block_resolutions:
            block = getattr(self, f'b{res}')
            # The ToRGB w of this block is the first conv w of the next one, so advance by num_conv only.
            features, img = block(features, img, ws.narrow(1, w_start, block.num_conv + block.num_torgb), **block_kwargs)
            w_start += block.num_conv
        return img

#----------------------------------------------------------------------------
# The generator: mapping network followed by synthesis network.

@persistence.persistent_class
class Generator(torch.nn.Module):
    """Args: z_dim, c_dim (0 = unconditional), w_dim; img_resolution, img_channels of the output;
    mapping_kwargs: for MappingNetwork; synthesis_kwargs: for SynthesisNetwork."""

    def __init__(self, z_dim, c_dim, w_dim, img_resolution, img_channels, mapping_kwargs={}, synthesis_kwargs={}):
        _check_sizes('Generator', 0, z_dim=z_dim, c_dim=c_dim)
        _check_sizes('Generator', 1, w_dim=w_dim, img_channels=img_channels)
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        # Synthesis first: it decides num_ws, and the construction order fixes the initial weights.
        self.synthesis = SynthesisNetwork(w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels, **synthesis_kwargs)
        self.mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.synthesis.num_ws, **mapping_kwargs)
        self.num_ws = self.mapping.num_ws

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, **synthesis_kwargs):
        # synthesis_kwargs: noise_mode, force_fp32, fused_modconv.
        return self.synthesis(self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff), **synthesis_kwargs)

#----------------------------------------------------------------------------
# One resolution stage of the discriminator: (fromrgb), conv0, downsampling conv1,
# and for resnet a 1x1 downsampled shortcut.

@persistence.persistent_class
class DiscriminatorBlock(torch.nn.Module):
    """Args: in_channels (0 = first block, which reads only the image); tmp_channels, out_channels;
    resolution of the block; img_channels; first_layer_idx: global index of the block's first layer;
    architecture: 'orig', 'skip' or 'resnet'; activation; resample_filter: FIR taps for downsampling;
    conv_clamp (None = disable); use_fp16, fp16_channels_last: as in SynthesisBlock; freeze_layers:
    layers whose global index is below this are frozen (Freeze-D)."""

    def __init__(self, in_channels, tmp_channels, out_channels, resolution, img_channels, first_layer_idx,
                 architecture='resnet', activation='lrelu', resample_filter=[1,3,3,1], conv_clamp=None,
                 use_fp16=False, fp16_channels_last=False, freeze_layers=0):
        _check_architecture('DiscriminatorBlock', architecture)
        assert in_channels in [0, tmp_channels]
        super().__init__()
        self.in_channels, self.resolution, self.img_channels = in_channels, resolution, img_channels
        self.first_layer_idx, self.architecture = first_layer_idx, architecture
        self.use_fp16, self.channels_last = use_fp16, (use_fp16 and fp16_channels_last)
        self.register_buffer('resample_filter', upfirdn2d.setup_filter(resample_filter))
        self.num_layers = 0

        def trainable():
            # Layers are numbered across the whole discriminator in creation order (Freeze-D).
            layer_idx = self.first_layer_idx + self.num_layers
            self.num_layers += 1
            return layer_idx >= freeze_layers

        if in_channels == 0 or architecture == 'skip':
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, kernel_size=1, activation=activation,
                trainable=trainable(), conv_clamp=conv_clamp, channels_last=self.channels_last)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, kernel_size=3, activation=activation,
            trainable=trainable(), conv_clamp=conv_clamp, channels_last=self.channels_last)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, kernel_size=3, activation=activation, down=2,
            trainable=trainable(), resample_filter=resample_filter, conv_clamp=conv_clamp, channels_last=self.channels_last)
        if architecture == 'resnet':
            self.skip = Conv2dLayer(tmp_channels, out_channels, kernel_size=1, bias=False, down=2,
                trainable=trainable(), resample_filter=resample_filter, channels_last=self.channels_last)

    def forward(self, x, img, force_fp32=False):
        dtype, layout = _compute_format(self.use_fp16, self.channels_last, force_fp32)
        if x is not None:
            misc.assert_shape(x, [None, self.in_channels, self.resolution, self.resolution])
            x = x.to(dtype=dtype, memory_format=layout)

        # Read the image (first block, or every block in the skip architecture).
        if self.in_channels == 0 or self.architecture == 'skip':
            misc.assert_shape(img, [None, self.img_channels, self.resolution, self.resolution])
            img = img.to(dtype=dtype, memory_format=layout)
            from_img = self.fromrgb(img)
            x = from_img if x is None else x + from_img
            img = upfirdn2d.downsample2d(img, self.resample_filter) if self.architecture == 'skip' else None

        # Main path; resnet adds the shortcut and scales both branches by sqrt(1/2).
        if self.architecture == 'resnet':
            shortcut = self.skip(x, gain=np.sqrt(0.5))
            x = self.conv1(self.conv0(x), gain=np.sqrt(0.5))
            x = shortcut.add_(x)
        else:
            x = self.conv1(self.conv0(x))

        assert x.dtype == dtype
        return x, img

#----------------------------------------------------------------------------
# Minibatch standard deviation (Karras et al. 2018): appends, per group of samples,
# the average feature standard deviation as extra channels. Sample n belongs to group
# n mod (N / group_size).

@persistence.persistent_class
class MinibatchStdLayer(torch.nn.Module):
    """Args: group_size: samples per group (None = the whole batch); num_channels: statistics appended."""

    def __init__(self, group_size, num_channels=1):
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x):
        N, C, H, W = x.shape
        with misc.suppress_tracer_warnings():
            N = int(N)
            G = N if self.group_size is None else min(int(self.group_size), N)
        if N % G != 0:
            raise ValueError(f'MinibatchStdLayer: batch size {N} is not divisible by the group size {G}; '
                             f'use a batch size that is a multiple of mbstd_group_size={self.group_size}')
        F = self.num_channels
        M = N // G

        # Standard deviation over each group, averaged over channels and pixels.
        grouped = x.reshape(G, M, F, C // F, H, W)
        deviation = grouped - grouped.mean(dim=0, keepdim=True)
        std = (deviation.square().mean(dim=0) + 1e-8).sqrt()  # [M, F, c, H, W]
        stat = std.mean(dim=(2, 3, 4))  # [M, F]

        # Give every sample its group's statistic as constant feature maps.
        stat = stat.reshape(1, M, F, 1, 1).expand(G, M, F, H, W).reshape(N, F, H, W)
        return torch.cat([x, stat], dim=1)

#----------------------------------------------------------------------------
# Final 4x4 stage of the discriminator: minibatch stddev, conv, two dense layers, and
# for conditional models the projection onto the label embedding cmap.

@persistence.persistent_class
class DiscriminatorEpilogue(torch.nn.Module):
    """Args: in_channels; cmap_dim: label embedding size (0 = unconditional); resolution (4); img_channels;
    architecture; mbstd_group_size (None = whole batch); mbstd_num_channels (0 = no minibatch stddev);
    activation; conv_clamp (None = disable); out_dim: width of the raw output (None = 1, or cmap_dim to
    project onto cmap); extra_features: width of the extra per-image features given to forward();
    extra_at: where they join, 'out' (the output layer) or 'fc' (the fully connected layer). They get
    their own weights `extra` ([width, extra_features], no bias), added to that layer's pre-activation:
    the same as concatenating them with its input, but fc and out keep their official shapes, so an
    official pickle's weights still load into a D with features (weights-only resume)."""

    def __init__(self, in_channels, cmap_dim, resolution, img_channels, architecture='resnet',
                 mbstd_group_size=4, mbstd_num_channels=1, activation='lrelu', conv_clamp=None,
                 out_dim=None, extra_features=0, extra_at='out'):
        _check_architecture('DiscriminatorEpilogue', architecture)
        super().__init__()
        self.in_channels, self.cmap_dim, self.resolution = in_channels, cmap_dim, resolution
        self.img_channels, self.architecture = img_channels, architecture

        if architecture == 'skip':
            self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1, activation=activation)
        self.mbstd = None
        if mbstd_num_channels > 0:
            self.mbstd = MinibatchStdLayer(group_size=mbstd_group_size, num_channels=mbstd_num_channels)
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, kernel_size=3, activation=activation, conv_clamp=conv_clamp)
        if extra_at not in ('out', 'fc'):
            raise ValueError(f'DiscriminatorEpilogue: extra_at must be "out" or "fc", got {extra_at!r}')
        if out_dim is not None and cmap_dim > 0:
            raise ValueError('DiscriminatorEpilogue: out_dim is for unconditional discriminators (c_dim = 0); '
                             'a conditional one projects its output onto the label embedding')
        self.extra_features, self.extra_at = int(extra_features), extra_at
        num_outputs = cmap_dim if cmap_dim > 0 else (1 if out_dim is None else out_dim)  # logit(s), or a vector for cmap
        self.fc = FullyConnectedLayer(in_channels * resolution * resolution, in_channels, activation=activation)
        self.out = FullyConnectedLayer(in_channels, num_outputs)
        if self.extra_features > 0:
            self.extra = FullyConnectedLayer(self.extra_features, in_channels if extra_at == 'fc' else num_outputs, bias=False)

    def forward(self, x, img, cmap, force_fp32=False, features=None):
        # features: [N, extra_features] per-image features to concatenate (D's feature module), or None.
        # The epilogue always runs in float32; force_fp32 is accepted for a uniform block interface.
        del force_fp32
        misc.assert_shape(x, [None, self.in_channels, self.resolution, self.resolution])
        x = x.to(dtype=torch.float32, memory_format=torch.contiguous_format)
        if self.architecture == 'skip':
            misc.assert_shape(img, [None, self.img_channels, self.resolution, self.resolution])
            img = img.to(dtype=torch.float32, memory_format=torch.contiguous_format)
            x = x + self.fromrgb(img)

        if self.mbstd is not None:
            x = self.mbstd(x)  # [N, C + mbstd_num_channels, H, W]
        if (features is None) != (self.extra_features == 0):
            raise ValueError(f'DiscriminatorEpilogue: expected {self.extra_features} extra features per image, '
                             f'got {"none" if features is None else list(features.shape)}')
        x = self.conv(x).flatten(1)  # flatten is channel-major: [N, C*H*W]
        extra = None if features is None else self.extra(features.to(x.dtype))
        x = self.fc(x, add=extra if self.extra_at == 'fc' else None)
        x = self.out(x, add=extra if self.extra_at == 'out' else None)

        # Conditional: score = <out, cmap> / sqrt(cmap_dim).
        if self.cmap_dim > 0:
            misc.assert_shape(cmap, [None, self.cmap_dim])
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / np.sqrt(self.cmap_dim))

        assert x.dtype == torch.float32
        return x

#----------------------------------------------------------------------------
# The discriminator: blocks from img_resolution down to 8x8, then the 4x4 epilogue;
# labels enter through a mapping network that produces cmap.

@persistence.persistent_class
class Discriminator(torch.nn.Module):
    """Args: c_dim (0 = unconditional); img_resolution (a power of two >= 4), img_channels of the input;
    architecture: 'orig', 'skip' or 'resnet'; channel_base, channel_max, num_fp16_res: as in
    SynthesisNetwork; conv_clamp (None = disable); cmap_dim: label embedding size (None = channels at
    4x4); block_kwargs, mapping_kwargs, epilogue_kwargs: for the blocks, the label mapping, the epilogue.

    Extensions (not in the official network; used by plugins, all off by default):
    out_dim: width of the raw output, e.g. a distribution's parameters (None = one logit);
    feature_kwargs: None, or dict(class_name=..., **kwargs) of a feature module F built as
    `F(img_resolution=..., img_channels=..., **kwargs)`, called on D's input image and returning [N, F]
    features that join D's own at `feature_at`: 'out' (the output layer) or 'fc' (the epilogue's fully
    connected layer), through their own weights (b4.extra, equivalent to concatenating them with that
    layer's input; fc and out keep the official shapes). F keeps frozen weights as buffers; gradients
    with respect to the image flow through it."""

    def __init__(self, c_dim, img_resolution, img_channels, architecture='resnet', channel_base=32768, channel_max=512,
                 num_fp16_res=0, conv_clamp=None, cmap_dim=None, block_kwargs={}, mapping_kwargs={}, epilogue_kwargs={},
                 out_dim=None, feature_kwargs=None, feature_at='out'):
        log2 = _resolution_log2('Discriminator', img_resolution)
        _check_architecture('Discriminator', architecture)
        _check_sizes('Discriminator', 0, c_dim=c_dim, num_fp16_res=num_fp16_res)
        _check_sizes('Discriminator', 1, img_channels=img_channels, channel_base=channel_base, channel_max=channel_max)
        super().__init__()
        self.c_dim, self.img_channels = c_dim, img_channels
        self.img_resolution, self.img_resolution_log2 = img_resolution, log2
        self.block_resolutions = [2 ** i for i in range(log2, 2, -1)]
        channels = _channel_table(self.block_resolutions + [4], channel_base, channel_max)
        _check_channels('Discriminator', channels, channel_base)
        fp16_resolution = _first_fp16_resolution(log2, num_fp16_res)
        cmap_dim = 0 if c_dim == 0 else (channels[4] if cmap_dim is None else cmap_dim)
        self.cmap_dim = cmap_dim

        shared = dict(img_channels=img_channels, architecture=architecture, conv_clamp=conv_clamp)
        layer_idx = 0
        for res in self.block_resolutions:
            block = DiscriminatorBlock(channels[res] if res < img_resolution else 0, channels[res], channels[res // 2],
                resolution=res, first_layer_idx=layer_idx, use_fp16=(res >= fp16_resolution), **block_kwargs, **shared)
            setattr(self, f'b{res}', block)
            layer_idx += block.num_layers
        if c_dim > 0:
            self.mapping = MappingNetwork(z_dim=0, c_dim=c_dim, w_dim=cmap_dim, num_ws=None, w_avg_beta=None, **mapping_kwargs)

        # The extensions: the epilogue gets their kwargs only when set, so its pickled kwargs stay official.
        extension = dict()
        if out_dim is not None:
            extension['out_dim'] = int(out_dim)
        self.features = None
        if feature_kwargs is not None:
            # Built on a forked RNG: the official layers get the same random numbers with or without it.
            with torch.random.fork_rng(devices=[]):
                self.features = dnnlib.util.construct_class_by_name(img_resolution=img_resolution, img_channels=img_channels, **feature_kwargs)
            extension.update(extra_features=int(self.features.num_features), extra_at=feature_at)
        self.b4 = DiscriminatorEpilogue(channels[4], cmap_dim=cmap_dim, resolution=4, **epilogue_kwargs, **extension, **shared)

    def forward(self, img, c, **block_kwargs):
        features = None if self.features is None else self.features(img).flatten(1)
        x = None
        for res in self.block_resolutions:
            x, img = getattr(self, f'b{res}')(x, img, **block_kwargs)
        cmap = self.mapping(None, c) if self.c_dim > 0 else None
        return self.b4(x, img, cmap) if features is None else self.b4(x, img, cmap, features=features)

#----------------------------------------------------------------------------
