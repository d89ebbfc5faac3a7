"""Find the W latent (and noise maps) that make a generator reproduce a target image: projector.py of
StyleGAN2-ADA, same options, defaults and output files.

Method (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN", Sec. 5, projection to W):
one W vector, shared by all layers, starts at the mean of W (estimated from 10k mapped z) and is optimised with
Adam against the squared distance between VGG16 LPIPS features of target and synthesis. Gaussian noise of
scale std(W) * 0.05 * max(0, 1 - t/0.75)^2 is added to W during the first 3/4 of the steps; the learning
rate ramps up over the first 5% (linear) and down over the last 25% (cosine). All noise maps of the synthesis
network are optimised too, with a penalty 1e5 * sum over maps and scales (down to 8x8) of the squared
mean correlation of each map with itself shifted by one pixel in x and y; after every step each map is
renormalised to zero mean and unit variance.

Outputs in --outdir: target.png (the cropped, resized target), proj.png (the final W rendered with the
network's own constant noise, as generate.py --projected-w renders it), projected_w.npz (array "w" of shape
[1, num_ws, w_dim]) and, with --save-video (the default), proj.mp4: target | projection at every step (needs the
optional packages imageio and imageio-ffmpeg)."""

import copy
import math
import os

import click
import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F

import generate
from dnnlib import cli
from metrics import metric_utils
from torch_utils import misc
from torch_utils import safe_load as safe_loading

VIDEO_PACKAGES = 'imageio and imageio-ffmpeg'
VIDEO_INSTALL = "pip install imageio imageio-ffmpeg (or pip install -e '.[video]')"

#----------------------------------------------------------------------------
# Schedules at t = step / num_steps in [0, 1).

def learning_rate(t, initial_learning_rate=0.1, lr_rampdown_length=0.25, lr_rampup_length=0.05):
    """Peak rate times a cosine ramp-down over the last `lr_rampdown_length` and a linear ramp-up over the first `lr_rampup_length`."""
    ramp = min(1.0, (1.0 - t) / lr_rampdown_length)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    ramp = ramp * min(1.0, t / lr_rampup_length)
    return initial_learning_rate * ramp

def w_noise_scale(t, w_std, initial_noise_factor=0.05, noise_ramp_length=0.75):
    """Std of the Gaussian noise added to W: w_std * factor * max(0, 1 - t / ramp_length)^2."""
    return w_std * initial_noise_factor * max(0.0, 1.0 - t / noise_ramp_length) ** 2

def noise_regularizer(noise_maps, min_size=8):
    """Sum over maps and scales of (mean n * roll(n, 1, x))^2 + (mean n * roll(n, 1, y))^2; each map is
    halved by 2x2 average pooling until it is min_size or smaller (every map counts at least once)."""
    total = 0.0
    for noise in noise_maps:
        n = noise[None, None, :, :]
        while True:
            total = total + (n * torch.roll(n, shifts=1, dims=2)).mean() ** 2 + (n * torch.roll(n, shifts=1, dims=3)).mean() ** 2
            if n.shape[2] <= min_size:
                break
            n = F.avg_pool2d(n, kernel_size=2)
    return total

# Each noise map in place to zero mean and unit variance (after every optimiser step).
@torch.no_grad()
def renormalize_noise(noise_maps):
    for noise in noise_maps:
        noise.sub_(noise.mean())
        noise.mul_(noise.square().mean().rsqrt())

#----------------------------------------------------------------------------
# W statistics: mean (shape [1, 1, w_dim]) and the RMS distance from it, from RandomState(123) latents.

def w_statistics(G, num_samples=10000, batch=1000, device=torch.device('cpu')):
    z = np.random.RandomState(123).randn(num_samples, G.z_dim)
    ws = []
    for start in range(0, num_samples, batch):
        z_batch = torch.from_numpy(z[start:start + batch]).to(device=device, dtype=torch.float32)
        ws.append(G.mapping(z_batch, None)[:, :1, :].to(torch.float64).cpu().numpy())  # [n, 1, w_dim]
    ws = np.concatenate(ws)
    w_avg = ws.mean(axis=0, keepdims=True)                                 # [1, 1, w_dim]
    w_std = float(np.sqrt(np.sum((ws - w_avg) ** 2) / num_samples))
    return w_avg.astype(np.float32), w_std

# Float images in [0, 255], at most 256x256 (area downsampling), 3 channels: what the LPIPS network takes.
def _lpips_input(img):
    if img.shape[2] > 256:
        img = F.interpolate(img, size=(256, 256), mode='area')
    if img.shape[1] == 1:
        img = img.repeat([1, 3, 1, 1])
    return img

#----------------------------------------------------------------------------

def project(G, target, *, num_steps=1000, w_avg_samples=10000, initial_learning_rate=0.1, initial_noise_factor=0.05,
            lr_rampdown_length=0.25, lr_rampup_length=0.05, noise_ramp_length=0.75, regularize_noise_weight=1e5,
            verbose=False, device=torch.device('cpu'), vgg16=None, return_distances=False):
    """Projects `target`, a [C, H, W] tensor of pixels in [0, 255] with H = W = G.img_resolution.
    Arguments are the official ones (module docstring), plus: vgg16, the LPIPS network called as
    vgg16(img, resize_images=False, return_lpips=True) (None = the official VGG16, downloaded once);
    return_distances, to also return the feature distance of every step (a list of floats).
    Returns W at every step, [num_steps, num_ws, w_dim] (float32, on `device`)."""
    if tuple(target.shape) != (G.img_channels, G.img_resolution, G.img_resolution):
        raise ValueError(f'project: target has shape {list(target.shape)}, but the generator makes '
                         f'[{G.img_channels}, {G.img_resolution}, {G.img_resolution}] images')
    if G.c_dim != 0:
        raise ValueError(f'project: the generator is conditional (c_dim={G.c_dim}); projection works on unconditional networks only')
    log = print if verbose else (lambda *args, **kwargs: None)
    device = torch.device(device)
    G = copy.deepcopy(G).eval().requires_grad_(False).to(device)  # the noise maps below are changed in place
    force_fp32 = device.type == 'cpu'

    log(f'Mean and spread of W from {w_avg_samples} mapped latents...')
    w_avg, w_std = w_statistics(G, num_samples=w_avg_samples, device=device)

    # Noise maps to optimise: every constant noise buffer of the synthesis network.
    noise_bufs = {name: buf for name, buf in G.synthesis.named_buffers() if 'noise_const' in name}

    # Features of the target.
    if vgg16 is None:
        vgg16 = metric_utils.get_feature_detector(metric_utils.VGG16_URL, device=device, verbose=verbose)
    if isinstance(vgg16, torch.nn.Module):
        for param in vgg16.parameters():
            param.requires_grad_(False)  # gradients flow through it to the image, never into its weights
    target_images = _lpips_input(target.unsqueeze(0).to(device=device, dtype=torch.float32))
    with torch.no_grad():
        target_features = vgg16(target_images, resize_images=False, return_lpips=True)

    # Optimiser over W (one vector for all layers) and the noise maps (fresh N(0, 1)).
    w_opt = torch.tensor(w_avg, dtype=torch.float32, device=device, requires_grad=True)
    w_out = torch.zeros([num_steps] + list(w_opt.shape[1:]), dtype=torch.float32, device=device)
    optimizer = torch.optim.Adam([w_opt] + list(noise_bufs.values()), betas=(0.9, 0.999), lr=initial_learning_rate)
    with torch.no_grad():
        for buf in noise_bufs.values():
            buf[:] = torch.randn_like(buf)
            buf.requires_grad = True

    distances = []
    for step in range(num_steps):
        t = step / num_steps
        noise_scale = w_noise_scale(t, w_std, initial_noise_factor, noise_ramp_length)
        lr = learning_rate(t, initial_learning_rate, lr_rampdown_length, lr_rampup_length)
        for group in optimizer.param_groups:
            group['lr'] = lr

        # Synthesise from the noisy W; compare LPIPS features.
        w_noise = torch.randn_like(w_opt) * noise_scale
        ws = (w_opt + w_noise).repeat([1, G.mapping.num_ws, 1])
        synth_images = G.synthesis(ws, noise_mode='const', force_fp32=force_fp32)
        synth_images = _lpips_input((synth_images + 1) * (255 / 2))
        synth_features = vgg16(synth_images, resize_images=False, return_lpips=True)
        dist = (target_features - synth_features).square().sum()
        reg_loss = noise_regularizer(noise_bufs.values())
        loss = dist + reg_loss * regularize_noise_weight

        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        renormalize_noise(noise_bufs.values())
        w_out[step] = w_opt.detach()[0]
        distances.append(float(dist.detach()))
        log(f'step {step + 1:>4d}/{num_steps}: dist {distances[-1]:<4.2f} loss {float(loss.detach()):<5.2f}')

    w_steps = w_out.repeat([1, G.mapping.num_ws, 1])
    if return_distances:
        return w_steps, distances
    return w_steps

#----------------------------------------------------------------------------
# The target file as [C, R, R] uint8: centre crop to a square, LANCZOS resize to the network's resolution.

def load_target(path, resolution, channels):
    try:
        image = PIL.Image.open(path)
        image = image.convert('L' if channels == 1 else 'RGB')
    except (OSError, ValueError, PIL.Image.DecompressionBombError) as err:
        raise click.ClickException(f'--target: cannot read "{path}" as an image ({err}); give a PNG or JPEG file') from err
    w, h = image.size
    s = min(w, h)
    image = image.crop(((w - s) // 2, (h - s) // 2, (w + s) // 2, (h + s) // 2))
    image = image.resize((resolution, resolution), PIL.Image.LANCZOS)
    pixels = np.array(image, dtype=np.uint8)
    if pixels.ndim == 2:
        pixels = pixels[:, :, np.newaxis]
    return pixels  # [R, R, C]

# The imageio module when video output is asked for, else a one-line error naming the packages.
def import_video_writer():
    try:
        import imageio  # pylint: disable=import-outside-toplevel
        import imageio_ffmpeg  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    except ImportError as err:
        raise click.ClickException(f'--save-video needs the optional packages {VIDEO_PACKAGES} ({err}); install them with '
                                   f'{VIDEO_INSTALL}, or pass --save-video=false') from None
    return imageio

#----------------------------------------------------------------------------

@click.command()
@safe_loading.cli_options
@click.option('--network', 'network_pkl', help='Network pickle filename or URL, or a training run folder (its newest snapshot)', required=True)
@click.option('--target', 'target_fname', help='Target image file to project to', required=True, metavar='FILE')
@click.option('--num-steps', help='Number of optimization steps', type=click.IntRange(min=1), default=1000, show_default=True)
@click.option('--seed', help='Random seed', type=click.IntRange(min=0, max=2**32 - 1), default=303, show_default=True)
@click.option('--save-video', help=f'Save an mp4 video of optimization progress (needs {VIDEO_PACKAGES})', type=bool, default=True, show_default=True)
@click.option('--outdir', help='Where to save the output images', required=True, metavar='DIR')
@click.option('--device', 'device_name', help='Torch device  [default: cuda if available, else cpu]', type=str)
def run_projection(network_pkl, target_fname, outdir, save_video, seed, num_steps, device_name=None):
    """Project given image to the latent space of pretrained network pickle.

    \b
    Examples:
    python projector.py --outdir=out --target=~/mytargetimg.png --network=ffhq.pkl
    python projector.py --outdir=out --target=face.png --network=runs --num-steps=500 --save-video=false

    The VGG16 LPIPS network is downloaded once into the dnnlib cache; offline, point
    SG2ADA_DETECTOR_VGG16 to a local copy of vgg16.pt.
    """
    np.random.seed(seed)
    torch.manual_seed(seed)
    device = generate.pick_device(device_name)
    cli.check_output_folder(outdir, '--outdir')
    if not os.path.isfile(target_fname):
        raise click.ClickException(f'--target: file not found: "{target_fname}"')
    imageio = import_video_writer() if save_video else None

    G = generate.load_generator(network_pkl, device)  # safe mode unless --trust-pickle
    if G.img_resolution == 1 and G.img_channels == 2:
        raise click.ClickException(f'--network: "{network_pkl}" is a toy network (2-D points, no images), so there is nothing to '
                                   f'project an image onto; draw its points with generate.py --seeds')
    if G.c_dim != 0:
        raise click.ClickException(f'--network: the generator is conditional (c_dim={G.c_dim}); projector.py works on unconditional networks only')
    target_uint8 = load_target(target_fname, G.img_resolution, G.img_channels)
    try:
        vgg16 = metric_utils.get_feature_detector(metric_utils.VGG16_URL, device=device, verbose=True)
    except metric_utils.DetectorUnavailableError as err:
        raise click.ClickException(str(err)) from err

    # Optimise.
    projected_w_steps = project(G, torch.tensor(target_uint8.transpose([2, 0, 1]), device=device), num_steps=num_steps,
                                device=device, vgg16=vgg16, verbose=True)
    os.makedirs(outdir, exist_ok=True)
    force_fp32 = device.type == 'cpu'

    # Render the final projection and save the outputs.
    def render(w):
        with torch.no_grad():
            return misc.images_to_uint8(G.synthesis(w.unsqueeze(0), noise_mode='const', force_fp32=force_fp32))[0].cpu().numpy()
    if imageio is not None:
        path = os.path.join(outdir, 'proj.mp4')
        print(f'Saving optimization progress video "{path}"')
        video = imageio.get_writer(path, mode='I', fps=10, codec='libx264', bitrate='16M')
        for w in projected_w_steps:
            frame = np.concatenate([target_uint8, render(w)], axis=1)
            video.append_data(frame[:, :, 0] if frame.shape[2] == 1 else frame)
        video.close()
    generate.save_image(target_uint8, os.path.join(outdir, 'target.png'))
    projected_w = projected_w_steps[-1]
    generate.save_image(render(projected_w), os.path.join(outdir, 'proj.png'))
    np.savez(os.path.join(outdir, 'projected_w.npz'), w=projected_w.unsqueeze(0).cpu().numpy())

#----------------------------------------------------------------------------

if __name__ == '__main__':
    run_projection()  # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
