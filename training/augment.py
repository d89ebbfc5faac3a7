"""ADA augmentation pipeline of "Training Generative Adversarial Networks with Limited Data" (Karras et al. 2020):
AugmentPipe, its 2-D/3-D homogeneous matrix helpers, the --augpipe presets and the adaptive-p controller."""

# Pickles embed this file's source and the official loader execs it against the official torch_utils,
# so only names that exist there may be imported here.
import re

import numpy as np
import torch
from torch_utils import misc, persistence, training_stats
from torch_utils.ops import conv2d_gradfix, grid_sample_gradfix, upfirdn2d

#----------------------------------------------------------------------------
# Low-pass decomposition coefficients of the wavelets the pipe uses (the standard published values, in
# PyWavelets' dec_lo order). sym6 gives the geometric resampling filter, sym2 the image-space filter bank.

_haar = [0.7071067811865476, 0.7071067811865476]

wavelets = {
    'haar': _haar,
    'db1':  _haar,
    'sym2': [-0.12940952255092145, 0.22414386804185735, 0.836516303737469, 0.48296291314469025],
    'sym6': [0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
             0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
             -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148],
}

#----------------------------------------------------------------------------
# The --augpipe presets: AugmentPipe kwargs by name (probability multipliers; unnamed ones stay 0).
# train.py reads this dict; copy an entry before changing it.

_blit_kwargs  = dict(xflip=1, rotate90=1, xint=1)
_geom_kwargs  = dict(scale=1, rotate=1, aniso=1, xfrac=1)
_color_kwargs = dict(brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1)

augpipe_specs = {
    'blit':   dict(_blit_kwargs),
    'geom':   dict(_geom_kwargs),
    'color':  dict(_color_kwargs),
    'filter': dict(imgfilter=1),
    'noise':  dict(noise=1),
    'cutout': dict(cutout=1),
    'bg':     {**_blit_kwargs, **_geom_kwargs},
    'bgc':    {**_blit_kwargs, **_geom_kwargs, **_color_kwargs},
    'bgcf':   {**_blit_kwargs, **_geom_kwargs, **_color_kwargs, 'imgfilter': 1},
    'bgcfn':  {**_blit_kwargs, **_geom_kwargs, **_color_kwargs, 'imgfilter': 1, 'noise': 1},
    'bgcfnc': {**_blit_kwargs, **_geom_kwargs, **_color_kwargs, 'imgfilter': 1, 'noise': 1, 'cutout': 1},
}

#----------------------------------------------------------------------------
# Batch of matrices from rows whose entries are Python numbers or per-sample tensors.
# Numbers are broadcast to the tensors' shape; the result is [*batch, rows, cols], or [rows, cols]
# (a cached constant) when no entry is a tensor.

def matrix(*rows, device=None, dtype=None):
    num_cols = len(rows[0])
    if any(len(row) != num_cols for row in rows):
        raise ValueError(f'matrix(): all rows must have the same length, got lengths {[len(row) for row in rows]}')
    entries = [x for row in rows for x in row]
    tensors = [x for x in entries if isinstance(x, torch.Tensor)]
    if not tensors:
        return misc.constant(np.asarray(rows, dtype=np.float64), dtype=dtype, device=device)

    # Broadcast every entry to one batch shape, then lay the entries out row by row.
    like = tensors[0]
    dtype = like.dtype if dtype is None else dtype
    batch_shape = torch.broadcast_tensors(*tensors)[0].shape
    filled = []
    for x in entries:
        if isinstance(x, torch.Tensor):
            filled.append(x.to(dtype).expand(batch_shape))
        else:
            filled.append(misc.constant(x, shape=batch_shape, dtype=dtype, device=like.device))
    return torch.stack(filled, dim=-1).reshape(*batch_shape, len(rows), num_cols)

def _cos_sin(theta):
    if isinstance(theta, torch.Tensor):
        return torch.cos(theta), torch.sin(theta)
    return float(np.cos(theta)), float(np.sin(theta))

#----------------------------------------------------------------------------
# 2-D homogeneous transforms (3x3) acting on column vectors [x, y, 1].

def translate2d(tx, ty, **kwargs):
    return matrix([1, 0, tx], [0, 1, ty], [0, 0, 1], **kwargs)

def translate2d_inv(tx, ty, **kwargs):
    return translate2d(-tx, -ty, **kwargs)

def scale2d(sx, sy, **kwargs):
    return matrix([sx, 0, 0], [0, sy, 0], [0, 0, 1], **kwargs)

def scale2d_inv(sx, sy, **kwargs):
    return scale2d(1 / sx, 1 / sy, **kwargs)

def rotate2d(theta, **kwargs):
    # Counter-clockwise in a y-up frame: the x axis turns towards the y axis.
    c, s = _cos_sin(theta)
    return matrix([c, -s, 0], [s, c, 0], [0, 0, 1], **kwargs)

def rotate2d_inv(theta, **kwargs):
    return rotate2d(-theta, **kwargs)

#----------------------------------------------------------------------------
# 3-D homogeneous transforms (4x4) acting on colour vectors [r, g, b, 1].

def translate3d(tx, ty, tz, **kwargs):
    return matrix([1, 0, 0, tx], [0, 1, 0, ty], [0, 0, 1, tz], [0, 0, 0, 1], **kwargs)

def scale3d(sx, sy, sz, **kwargs):
    return matrix([sx, 0, 0, 0], [0, sy, 0, 0], [0, 0, sz, 0], [0, 0, 0, 1], **kwargs)

def rotate3d(v, theta, **kwargs):
    # Rotation by theta about the unit axis v (Rodrigues' formula); v is a tensor whose first 3 entries are used.
    ax, ay, az = v[..., 0], v[..., 1], v[..., 2]
    c, s = _cos_sin(theta)
    d = 1 - c
    return matrix(
        [ax * ax * d + c,      ax * ay * d - az * s, ax * az * d + ay * s, 0],
        [ay * ax * d + az * s, ay * ay * d + c,      ay * az * d - ax * s, 0],
        [az * ax * d - ay * s, az * ay * d + ax * s, az * az * d + c,      0],
        [0,                    0,                    0,                    1],
        **kwargs)

#----------------------------------------------------------------------------
# Rows of the 4-band image-space filter bank: band 0 keeps the lowest frequencies, each further
# band one octave higher. Built from the 2x-dilated half-band pair of the given low-pass wavelet.

def _filter_bank(lowpass, num_bands=4):
    lo = np.asarray(lowpass, dtype=np.float64)
    hi = lo * (-1.0) ** np.arange(lo.size)
    lo2 = np.convolve(lo, lo[::-1]) / 2
    hi2 = np.convolve(hi, hi[::-1]) / 2
    bank = np.zeros([num_bands, 1])
    bank[0, 0] = 1
    for band in range(1, num_bands):
        # Dilate every row (a zero between neighbouring taps), low-pass it, then add the new band's high-pass.
        dilated = np.zeros([num_bands, bank.shape[1] * 2 - 1])
        dilated[:, ::2] = bank
        bank = np.stack([np.convolve(row, lo2) for row in dilated])
        start = (bank.shape[1] - hi2.size) // 2
        bank[band, start : start + hi2.size] += hi2
    return bank

#----------------------------------------------------------------------------
# Per-sample random numbers of one forward pass. With a debug percentile q every draw is replaced by
# the value at that percentile and every augmentation is applied, which makes the output deterministic.
# The random draws still happen in debug mode, so the generator advances identically either way.

class _Draws:
    def __init__(self, batch_size, device, dtype, percentile):
        self.batch_size = batch_size
        self.device = device
        self.dtype = dtype
        self.q = percentile # None or a 0-d tensor

    def _shape(self, shape):
        return [self.batch_size, *shape]

    def uniform(self, *shape):
        # U(0, 1) per sample; debug: q.
        u = torch.rand(self._shape(shape), dtype=self.dtype, device=self.device)
        return u if self.q is None else self.q.expand(u.shape)

    def normal(self, *shape):
        # N(0, 1) per sample; debug: the standard normal quantile at q.
        z = torch.randn(self._shape(shape), dtype=self.dtype, device=self.device)
        return z if self.q is None else torch.erfinv(self.q * 2 - 1).expand(z.shape)

    def half_normal(self, *shape):
        # |N(0, 1)| per sample; debug: erfinv(q), as the official pipe does.
        z = torch.randn(self._shape(shape), dtype=self.dtype, device=self.device).abs()
        return z if self.q is None else torch.erfinv(self.q).expand(z.shape)

    def gate(self, value, prob, identity, debug=None):
        # Keep each sample's value with probability prob, else use the identity value.
        # Debug: keep the value, or use `debug` when given.
        coin = torch.rand([self.batch_size] + [1] * (value.ndim - 1), dtype=self.dtype, device=self.device)
        if self.q is not None:
            return value if debug is None else torch.full_like(value, debug)
        return torch.where(coin < prob, value, torch.full_like(value, identity))

#----------------------------------------------------------------------------
# The ADA augmentation pipeline. Each transformation has a probability multiplier (0 = never drawn);
# a transformation is applied to a sample with probability multiplier * p, where the buffer p is set
# by the training loop (fixed, or adjusted by AdaptiveP). Input and output are [N, C, H, W] images.

_geom_multipliers = ('xflip', 'rotate90', 'xint', 'scale', 'rotate', 'aniso', 'xfrac')
_color_multipliers = ('brightness', 'contrast', 'lumaflip', 'hue', 'saturation')
_other_multipliers = ('imgfilter', 'noise', 'cutout')

@persistence.persistent_class
class AugmentPipe(torch.nn.Module):
    def __init__(self,
        xflip           = 0,            # Probability multiplier: mirror x.
        rotate90        = 0,            # Probability multiplier: rotate by a multiple of 90 degrees.
        xint            = 0,            # Probability multiplier: integer translation.
        xint_max        = 0.125,        # Largest integer translation, as a fraction of the image size.
        scale           = 0,            # Probability multiplier: isotropic scaling.
        rotate          = 0,            # Probability multiplier: arbitrary rotation.
        aniso           = 0,            # Probability multiplier: anisotropic scaling.
        xfrac           = 0,            # Probability multiplier: fractional translation.
        scale_std       = 0.2,          # Log2 std of the isotropic scale.
        rotate_max      = 1,            # Largest rotation, as a fraction of a full circle.
        aniso_std       = 0.2,          # Log2 std of the anisotropic scale.
        xfrac_std       = 0.125,        # Std of the fractional translation, as a fraction of the image size.
        brightness      = 0,            # Probability multiplier: brightness offset.
        contrast        = 0,            # Probability multiplier: contrast scaling.
        lumaflip        = 0,            # Probability multiplier: luma flip.
        hue             = 0,            # Probability multiplier: hue rotation.
        saturation      = 0,            # Probability multiplier: saturation scaling.
        brightness_std  = 0.2,          # Std of the brightness offset.
        contrast_std    = 0.5,          # Log2 std of the contrast factor.
        hue_max         = 1,            # Largest hue rotation, as a fraction of a full circle.
        saturation_std  = 1,            # Log2 std of the saturation factor.
        imgfilter       = 0,            # Probability multiplier: image-space filtering.
        imgfilter_bands = [1, 1, 1, 1], # Probability multiplier of each of the 4 frequency bands.
        imgfilter_std   = 1,            # Log2 std of the band amplification.
        noise           = 0,            # Probability multiplier: additive RGB noise.
        cutout          = 0,            # Probability multiplier: cutout.
        noise_std       = 0.1,          # Std of the noise amplitude.
        cutout_size     = 0.5,          # Side of the cutout square, as a fraction of the image size.
    ):
        super().__init__()
        self.register_buffer('p', torch.ones([])) # Overall augmentation probability, set by the training loop.

        # Store every hyperparameter as a float attribute of the same name.
        args = dict(locals())
        for name in _geom_multipliers + _color_multipliers + _other_multipliers:
            if not float(args[name]) >= 0:
                raise ValueError(f'AugmentPipe: probability multiplier {name} must be >= 0, got {args[name]!r}')
        for name, value in args.items():
            if name not in ('self', '__class__', 'imgfilter_bands'):
                setattr(self, name, float(value))
        self.imgfilter_bands = list(imgfilter_bands)

        # Geometric resampling filter (sym6 low-pass, 12 taps) and image-space filter bank ([4, 43], sym2).
        self.register_buffer('Hz_geom', upfirdn2d.setup_filter(wavelets['sym6']))
        self.register_buffer('Hz_fbank', torch.as_tensor(_filter_bank(wavelets['sym2']), dtype=torch.float32))
        if self.imgfilter > 0:
            self._check_bands()

    def _check_bands(self):
        if len(self.imgfilter_bands) != self.Hz_fbank.shape[0]:
            raise ValueError(f'AugmentPipe: imgfilter_bands needs one entry per band ({self.Hz_fbank.shape[0]}), '
                             f'got {self.imgfilter_bands!r}')

    def forward(self, images, debug_percentile=None):
        if not isinstance(images, torch.Tensor) or not images.is_floating_point():
            raise TypeError(f'AugmentPipe: images must be a floating-point torch.Tensor, got {type(images).__name__}'
                            + (f' of {images.dtype}' if isinstance(images, torch.Tensor) else ''))
        if images.ndim != 4:
            raise ValueError(f'AugmentPipe: images must be [N, C, H, W], got shape {list(images.shape)}')
        q = None
        if debug_percentile is not None:
            if not 0 <= float(debug_percentile) <= 1:
                raise ValueError(f'AugmentPipe: debug_percentile must be in [0, 1], got {debug_percentile}')
            q = torch.as_tensor(debug_percentile, dtype=images.dtype, device=images.device)
        elif float(self.p) == 0:
            # Every step is gated by p, so p=0 is the identity: return the input untouched rather than
            # resampling it (the official pipe resamples anyway, off by ~2e-5).
            return images
        draws = _Draws(images.shape[0], images.device, images.dtype, q)

        # A. Pixel blitting and general geometry, resampled in one pass.
        if any(getattr(self, name) > 0 for name in _geom_multipliers):
            G_inv = self._geometry_matrix(images, draws)
            images = self._resample(images, G_inv)

        # B. Colour transformations, composed into one 4x4 matrix per sample.
        if any(getattr(self, name) > 0 for name in _color_multipliers):
            C = self._color_matrix(images, draws)
            if C is not None:
                images = self._apply_color(images, C)

        # C. Image-space filtering, D. additive noise and cutout.
        if self.imgfilter > 0:
            images = self._filter_bands(images, draws)
        if self.noise > 0:
            images = self._add_noise(images, draws)
        if self.cutout > 0:
            images = self._cut_out(images, draws)
        return images

    def _geometry_matrix(self, images, draws):
        # Inverse transform [N, 3, 3] mapping output pixels to input pixels (origin at the image centre).
        # Each step multiplies on the right, so the first step is the last one applied to the image.
        _N, _C, H, W = images.shape
        p = self.p
        kw = dict(device=images.device, dtype=images.dtype)
        G_inv = torch.eye(3, **kw)

        if self.xflip > 0:
            flip = draws.gate(torch.floor(draws.uniform() * 2), self.xflip * p, 0)
            G_inv = G_inv @ scale2d_inv(1 - 2 * flip, 1, **kw)
        if self.rotate90 > 0:
            quarter = draws.gate(torch.floor(draws.uniform() * 4), self.rotate90 * p, 0)
            G_inv = G_inv @ rotate2d_inv(-np.pi / 2 * quarter, **kw)
        if self.xint > 0:
            t = draws.gate((draws.uniform(2) * 2 - 1) * self.xint_max, self.xint * p, 0) # [N, 2]
            G_inv = G_inv @ translate2d_inv(torch.round(t[:, 0] * W), torch.round(t[:, 1] * H), **kw)

        # General geometry: scale, rotate, anisotropic scale, rotate back, fractional translation.
        # The two rotations share the probability so that at least one of them fires with rotate * p.
        if self.scale > 0:
            s = draws.gate(torch.exp2(draws.normal() * self.scale_std), self.scale * p, 1)
            G_inv = G_inv @ scale2d_inv(s, s, **kw)
        p_rot = 1 - torch.sqrt((1 - self.rotate * p).clamp(0, 1))
        if self.rotate > 0:
            theta = draws.gate((draws.uniform() * 2 - 1) * np.pi * self.rotate_max, p_rot, 0)
            G_inv = G_inv @ rotate2d_inv(-theta, **kw)
        if self.aniso > 0:
            s = draws.gate(torch.exp2(draws.normal() * self.aniso_std), self.aniso * p, 1)
            G_inv = G_inv @ scale2d_inv(s, 1 / s, **kw)
        if self.rotate > 0:
            theta = draws.gate((draws.uniform() * 2 - 1) * np.pi * self.rotate_max, p_rot, 0, debug=0)
            G_inv = G_inv @ rotate2d_inv(-theta, **kw)
        if self.xfrac > 0:
            t = draws.gate(draws.normal(2) * self.xfrac_std, self.xfrac * p, 0) # [N, 2]
            G_inv = G_inv @ translate2d_inv(t[:, 0] * W, t[:, 1] * H, **kw)
        return G_inv

    def _resample(self, images, G_inv):
        # Apply G_inv: reflect-pad, upsample 2x with the wavelet filter, sample bilinearly, downsample 2x.
        N, C, H, W = images.shape
        kw = dict(device=images.device, dtype=images.dtype)
        pad = self.Hz_geom.shape[0] // 4

        # Pad by how far the transformed corners reach outside the image, plus room for the filter.
        cx, cy = (W - 1) / 2, (H - 1) / 2
        corners = matrix([-cx, -cy, 1], [cx, -cy, 1], [cx, cy, 1], [-cx, cy, 1], **kw) # [4, 3]
        reach = (G_inv @ corners.t())[:, :2, :].permute(1, 0, 2).flatten(1)          # [2, N * 4]
        margin = torch.cat([-reach, reach]).amax(dim=1)                               # [x0, y0, x1, y1]
        margin = margin + misc.constant([pad * 2 - cx, pad * 2 - cy] * 2, **kw)
        margin = torch.minimum(torch.maximum(margin, misc.constant([0] * 4, **kw)),
                               misc.constant([W - 1, H - 1] * 2, **kw))
        mx0, my0, mx1, my1 = margin.ceil().to(torch.int64).tolist()
        images = torch.nn.functional.pad(input=images, pad=[mx0, mx1, my0, my1], mode='reflect')
        G_inv = translate2d((mx0 - mx1) / 2, (my0 - my1) / 2, **kw) @ G_inv

        # Upsample, moving G_inv to the new pixel grid (pixel centres sit at half-integers).
        images = upfirdn2d.upsample2d(x=images, f=self.Hz_geom, up=2)
        G_inv = scale2d(2, 2, **kw) @ G_inv @ scale2d_inv(2, 2, **kw)
        G_inv = translate2d(-0.5, -0.5, **kw) @ G_inv @ translate2d_inv(-0.5, -0.5, **kw)

        # Sample the output grid, in the [-1, 1] coordinates of affine_grid.
        out_shape = [N, C, (H + pad * 2) * 2, (W + pad * 2) * 2]
        to_input = scale2d(2 / images.shape[3], 2 / images.shape[2], **kw)
        from_output = scale2d_inv(2 / out_shape[3], 2 / out_shape[2], **kw)
        G_inv = to_input @ G_inv @ from_output
        grid = torch.nn.functional.affine_grid(theta=G_inv[:, :2, :], size=out_shape, align_corners=False)
        images = grid_sample_gradfix.grid_sample(images, grid)

        # Downsample and crop back to [N, C, H, W].
        return upfirdn2d.downsample2d(x=images, f=self.Hz_geom, down=2, padding=-pad * 2, flip_filter=True)

    def _color_matrix(self, images, draws):
        # Colour transform [N, 4, 4] on [r, g, b, 1]; each step multiplies on the left.
        # None when no step applies (only hue/saturation enabled, on single-channel images).
        num_channels = images.shape[1]
        p = self.p
        kw = dict(device=images.device, dtype=images.dtype)
        eye = torch.eye(4, **kw)
        luma = misc.constant(np.asarray([1, 1, 1, 0]) / np.sqrt(3), **kw) # Unit luma axis.
        luma_proj = luma[:, None] * luma[None, :] # [4, 4]
        C = eye

        if self.brightness > 0:
            b = draws.gate(draws.normal() * self.brightness_std, self.brightness * p, 0)
            C = translate3d(b, b, b, **kw) @ C
        if self.contrast > 0:
            c = draws.gate(torch.exp2(draws.normal() * self.contrast_std), self.contrast * p, 1)
            C = scale3d(c, c, c, **kw) @ C
        if self.lumaflip > 0:
            # Householder reflection across the plane orthogonal to the luma axis.
            flip = draws.gate(torch.floor(draws.uniform(1, 1) * 2), self.lumaflip * p, 0) # [N, 1, 1]
            C = (eye - 2 * luma_proj * flip) @ C
        if self.hue > 0 and num_channels > 1:
            theta = draws.gate((draws.uniform() * 2 - 1) * np.pi * self.hue_max, self.hue * p, 0)
            C = rotate3d(luma, theta, **kw) @ C
        if self.saturation > 0 and num_channels > 1:
            # Scale the chroma (the part orthogonal to the luma axis).
            s = draws.gate(torch.exp2(draws.normal(1, 1) * self.saturation_std), self.saturation * p, 1) # [N, 1, 1]
            C = (luma_proj + (eye - luma_proj) * s) @ C
        return None if C is eye else C

    def _apply_color(self, images, C):
        N, num_channels, H, W = images.shape
        pixels = images.reshape([N, num_channels, H * W])
        if num_channels == 3:
            pixels = C[:, :3, :3] @ pixels + C[:, :3, 3:]
        elif num_channels == 1:
            # Grey images: average the effect on the three colour channels.
            C = C[:, :3, :].mean(dim=1, keepdim=True) # [N, 1, 4]
            pixels = pixels * C[:, :, :3].sum(dim=2, keepdim=True) + C[:, :, 3:]
        else:
            raise ValueError(f'AugmentPipe: colour transformations need RGB (3 channels) or L (1 channel) images, '
                             f'got {num_channels} channels; set brightness, contrast, lumaflip, hue and saturation to 0')
        return pixels.reshape([N, num_channels, H, W])

    def _filter_bands(self, images, draws):
        # Amplify each frequency band by a random log-normal gain, keeping the expected power constant.
        N, num_channels, H, W = images.shape
        self._check_bands()
        num_bands, num_taps = self.Hz_fbank.shape
        if min(H, W) <= num_taps // 2:
            raise ValueError(f'AugmentPipe: imgfilter needs images larger than {num_taps // 2} pixels, '
                             f'got {H}x{W}; set imgfilter=0 for smaller images')
        kw = dict(device=images.device, dtype=images.dtype)
        expected_power = misc.constant(np.array([10, 1, 1, 1]) / 13, **kw)
        band_ids = torch.arange(num_bands, device=images.device)
        gains = torch.ones([N, num_bands], **kw)
        for band, strength in enumerate(self.imgfilter_bands):
            t = draws.gate(torch.exp2(draws.normal() * self.imgfilter_std), self.imgfilter * self.p * strength, 1,
                           debug=None if strength > 0 else 1)
            t = torch.where(band_ids == band, t[:, None], torch.ones_like(gains)) # [N, bands]
            gains = gains * (t / (expected_power * t.square()).sum(dim=-1, keepdim=True).sqrt())

        # One 1-D filter per sample, applied separably to each channel as a depthwise convolution.
        taps = (gains @ self.Hz_fbank.to(images.dtype))[:, None, :].expand(N, num_channels, num_taps)
        taps = taps.reshape([N * num_channels, 1, 1, num_taps])
        half = num_taps // 2
        x = images.reshape([1, N * num_channels, H, W])
        x = torch.nn.functional.pad(input=x, pad=[half] * 4, mode='reflect')
        x = conv2d_gradfix.conv2d(input=x, weight=taps, groups=N * num_channels)
        x = conv2d_gradfix.conv2d(input=x, weight=taps.transpose(2, 3), groups=N * num_channels)
        return x.reshape([N, num_channels, H, W])

    def _add_noise(self, images, draws):
        # Gaussian noise with a per-sample amplitude.
        sigma = draws.gate(draws.half_normal(1, 1, 1) * self.noise_std, self.noise * self.p, 0) # [N, 1, 1, 1]
        return images + torch.randn(images.shape, dtype=images.dtype, device=images.device) * sigma

    def _cut_out(self, images, draws):
        # Zero a square of side cutout_size (fraction of the image) at a uniformly drawn centre.
        N, _C, H, W = images.shape
        kw = dict(device=images.device, dtype=images.dtype)
        size = draws.gate(torch.full([N], self.cutout_size, **kw), self.cutout * self.p, 0)
        centre = draws.uniform(2) # [N, 2]: x, y
        xs = (torch.arange(W, **kw) + 0.5) / W
        ys = (torch.arange(H, **kw) + 0.5) / H
        inside_x = (xs[None, :] - centre[:, 0:1]).abs() < size[:, None] / 2 # [N, W]
        inside_y = (ys[None, :] - centre[:, 1:2]).abs() < size[:, None] / 2 # [N, H]
        keep = ~(inside_y[:, :, None] & inside_x[:, None, :])              # [N, H, W]
        return images * keep[:, None].to(images.dtype)

#----------------------------------------------------------------------------
# Adaptive augmentation probability (ADA): every `interval` training steps, move p by a fixed step
# towards keeping E[sign(D(real))] at `target`; p takes ada_kimg thousand images to go from 0 to 1.
# The controller reads the loss's `sign_stat` reports (all ranks) through its own training_stats
# Collector, made at construction (a collective when multiprocessing, like every Collector.update()).
# Signs it has read but not yet used (at a snapshot between two adjustments) are carried in its state.

class AdaptiveP:
    def __init__(self,
        target,                 # Target value of E[sign(D(real))], in [0, 1] (0.6 in the paper).
        batch_size,             # Total batch size over all GPUs.
        ada_kimg    = 500,      # Thousands of images for p to change by 1.
        interval    = 4,        # Adjust p every this many training steps (batches).
        sign_stat   = 'Loss/signs/real',    # training_stats name of the signs of D(real).
    ):
        if not 0 <= target <= 1:
            raise ValueError(f'AdaptiveP: target must be in [0, 1], got {target}')
        if not batch_size >= 1:
            raise ValueError(f'AdaptiveP: batch_size must be >= 1, got {batch_size}')
        if not ada_kimg > 0:
            raise ValueError(f'AdaptiveP: ada_kimg must be > 0, got {ada_kimg}')
        if not (isinstance(interval, int) and interval >= 1):
            raise ValueError(f'AdaptiveP: interval must be an integer >= 1, got {interval!r}')
        self.target = float(target)
        self.batch_size = int(batch_size)
        self.ada_kimg = float(ada_kimg)
        self.interval = interval
        self.num_updates = 0            # Adjustments made so far.
        self.last_sign_mean = None      # Statistic seen by the latest adjustment.
        self.sign_stat = sign_stat
        self.stats = training_stats.Collector(regex=re.escape(sign_stat))
        self.carry_num = 0              # Signs read from the collector but not yet used by an adjustment: count,
        self.carry_sum = 0.0            # and sum.

    @property
    def step_size(self):
        # Change of p per adjustment.
        return self.batch_size * self.interval / (self.ada_kimg * 1000)

    def is_due(self, batch_idx):
        # True after the batches at which the training loop should adjust p (batch_idx counted after the step).
        return batch_idx % self.interval == 0

    def adjustment(self, sign_mean):
        # Signed change of p for a mean sign statistic; 0 when no real images were seen (NaN or None).
        if sign_mean is None or not np.isfinite(sign_mean):
            return 0.0
        return float(np.sign(sign_mean - self.target)) * self.step_size

    def next_p(self, p, sign_mean):
        # New p from the current one; clamped at 0 below and, as in the official loop, not above.
        return max(float(p) + self.adjustment(sign_mean), 0.0)

    def update(self, augment_pipe, sign_mean):
        # Adjust augment_pipe.p in place (on its own device, in float32 like the official loop); returns the new p.
        adjust = self.adjustment(sign_mean)
        with torch.no_grad():
            augment_pipe.p.copy_((augment_pipe.p + adjust).clamp(min=0))
        self.num_updates += 1
        self.last_sign_mean = None if sign_mean is None else float(sign_mean)
        return float(augment_pipe.p)

    def take_signs(self):
        # (count, sum) of the signs reported on all ranks since the last call, plus the carried ones; empties the carry.
        # A collective call when multiprocessing.
        self.stats.update()
        num = self.stats.num(self.sign_stat)
        total = self.stats.mean(self.sign_stat) * num if num > 0 else 0.0
        num, total = num + self.carry_num, total + self.carry_sum
        self.carry_num, self.carry_sum = 0, 0.0
        return num, total

    def adjust(self, augment_pipe):
        # One adjustment from the signs seen since the previous one (all ranks); returns the new p. A collective call.
        num, total = self.take_signs()
        return self.update(augment_pipe, total / num if num > 0 else None)

    def hold_signs(self):
        # Read the signs seen so far into the carry, so that state_dict() includes them (before a snapshot). A collective call.
        self.carry_num, self.carry_sum = self.take_signs()

    def state_dict(self):
        return dict(target=self.target, batch_size=self.batch_size, ada_kimg=self.ada_kimg, interval=self.interval,
                    num_updates=self.num_updates, last_sign_mean=self.last_sign_mean, carry=[self.carry_num, self.carry_sum])

    def load_state_dict(self, state):
        # Restore the counters; the settings must match the ones this controller was built with.
        for name in ('target', 'batch_size', 'ada_kimg', 'interval'):
            if name in state and state[name] != getattr(self, name):
                raise ValueError(f'AdaptiveP.load_state_dict: saved {name}={state[name]} differs from '
                                 f'the configured {name}={getattr(self, name)}; resume with the same ADA settings')
        self.num_updates = int(state.get('num_updates', 0))
        self.last_sign_mean = state.get('last_sign_mean', None)
        self.carry_num, self.carry_sum = state.get('carry', [0, 0.0])

#----------------------------------------------------------------------------
