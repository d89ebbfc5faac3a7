"""The tiny-run harness of the tests: one tiny training config, tiny datasets, and the run-folder helpers.

Every end-to-end file builds its runs from here, so that a change of the tiny config or of the run-folder layout is
made once. The config is train.py's shape at 16x16 with tiny networks: batch 4 in 2 rounds of 2 (`STEP_KIMG` is one
step), a tick every 2 steps, a snapshot every 2 ticks, lazy regularisation every 4 (G) and 3 (D) steps.
Command-line runs use `TRAIN_ARGS`, the same networks through train.py's options.
"""

import contextlib
import io
import json
import os

import numpy as np
import torch
from click.testing import CliRunner

import dnnlib
import legacy
from torch_utils import misc

STEP_KIMG = 0.004   # one step = 4 images

# train.py options of the tiny networks (16x16 needs --data at that resolution); add --kimg, --tick, --snap, --aug...
TRAIN_ARGS = ['--cbase=256', '--cmax=16', '--map=2', '--batch=4', '--mbstd-group=2', '--workers=1']

# The augmentations of the tiny runs that augment (cheap, and each has its own random draws).
AUGMENT = dict(class_name='training.augment.AugmentPipe', xflip=1, rotate90=1, xint=1)

#----------------------------------------------------------------------------
# A toy "G" for the latent priors' tests: the mapping is the identity on z (z_dim 3, one w), the synthesis turns
# w into a 1x1 image, so the image of z is z itself and a D that reads the image scores z directly.

class IdentityMapping(torch.nn.Module):
    z_dim = 3
    def forward(self, z, c, skip_w_avg_update=False):
        return z.unsqueeze(1)

class PointSynthesis(torch.nn.Module):
    def forward(self, ws):
        return ws[:, 0].reshape(ws.shape[0], -1, 1, 1)

#----------------------------------------------------------------------------
# Networks and training_loop() configs.

def tiny_G_kwargs(channel_max=32, **overrides):
    """Generator kwargs of a 16x16 network small enough for CPU tests."""
    kwargs = dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, mapping_kwargs=dict(num_layers=2),
                  synthesis_kwargs=dict(channel_base=256, channel_max=channel_max, num_fp16_res=0, conv_clamp=None))
    kwargs.update(overrides)
    return kwargs

def tiny_D_kwargs(channel_max=32, **overrides):
    """Discriminator kwargs matching tiny_G_kwargs."""
    kwargs = dict(c_dim=0, img_resolution=16, img_channels=3, channel_base=256, channel_max=channel_max,
                  num_fp16_res=0, conv_clamp=None, epilogue_kwargs=dict(mbstd_group_size=2))
    kwargs.update(overrides)
    return kwargs

def _loop_net_kwargs(kwargs, class_name):
    # training_loop() fills in c_dim and the image shape from the dataset.
    kwargs = {k: v for k, v in kwargs.items() if k not in ('c_dim', 'img_resolution', 'img_channels')}
    return dnnlib.EasyDict(kwargs, class_name=class_name)

def loop_config(data_path, run_dir, num_steps, **overrides):
    """training_loop() kwargs of a tiny run of `num_steps` steps; `overrides` replace top-level keys."""
    c = dnnlib.EasyDict(
        run_dir=run_dir, device='cpu', random_seed=3,
        training_set_kwargs=dnnlib.EasyDict(class_name='training.dataset.ImageFolderDataset', path=data_path, use_labels=False,
                                            max_size=None, xflip=False, resolution=16),
        data_loader_kwargs=dnnlib.EasyDict(num_workers=0),
        G_kwargs=_loop_net_kwargs(tiny_G_kwargs(channel_max=16), 'training.networks.Generator'),
        D_kwargs=_loop_net_kwargs(tiny_D_kwargs(channel_max=16), 'training.networks.Discriminator'),
        G_opt_kwargs=dict(class_name='torch.optim.Adam', lr=0.0025, betas=[0, 0.99], eps=1e-8),
        D_opt_kwargs=dict(class_name='torch.optim.Adam', lr=0.0025, betas=[0, 0.99], eps=1e-8),
        loss_kwargs=dnnlib.EasyDict(class_name='training.loss.StyleGAN2Loss', r1_gamma=1),
        G_reg_interval=4, D_reg_interval=3,
        batch_size=4, batch_gpu=2, ema_kimg=0.01, ema_rampup=0.05,
        total_kimg=num_steps * STEP_KIMG, kimg_per_tick=2 * STEP_KIMG,
        image_snapshot_ticks=None, network_snapshot_ticks=2,
    )
    c.update(overrides)
    os.makedirs(run_dir, exist_ok=True)
    return c

def loop_net_kwargs(G_kwargs, D_kwargs):
    """(G_kwargs, D_kwargs) of training_loop() from tiny_G_kwargs / tiny_D_kwargs-style kwargs."""
    return _loop_net_kwargs(G_kwargs, 'training.networks.Generator'), _loop_net_kwargs(D_kwargs, 'training.networks.Discriminator')

def add_priors(c, priors):
    """Add priors [(name, kwargs), ...] to config `c` the way priors.cli.configure() applies their hooks, without CLI options."""
    from priors import base
    from priors import registry
    entries = [dict(name=name, **kwargs) for name, kwargs in priors]
    built = [registry.build_prior(name, **kwargs) for name, kwargs in priors]
    base.check_composition(built)
    base.apply_updates(c.G_kwargs, base.merge_updates([(p.name, p.G_kwargs_update()) for p in built], 'G_kwargs'))
    base.apply_updates(c.D_kwargs, base.merge_updates([(p.name, p.D_kwargs_update()) for p in built], 'D_kwargs'))
    c.loss_kwargs = dnnlib.EasyDict(c.loss_kwargs, class_name='priors.loss.PriorLoss', prior_kwargs=entries)
    specs = [p.sample_transform_kwargs() for p in built if p.sample_transform_kwargs() is not None]
    if specs:
        c.sample_transform_kwargs = specs
    return c

def run_loop(c, quiet=True):
    """training_loop(**c); its console output is dropped unless quiet=False."""
    from training import training_loop
    if not quiet:
        return training_loop.training_loop(**c)
    with contextlib.redirect_stdout(io.StringIO()):
        return training_loop.training_loop(**c)

#----------------------------------------------------------------------------
# Datasets.

def tiny_dataset(path, num_images=24, num_modes=4, resolution=16, **kwargs):
    """A synthetic dataset zip (training.synthetic), 16x16 by default; returns its path."""
    from training.synthetic import make_synthetic_dataset
    return make_synthetic_dataset(str(path), num_images=num_images, resolution=resolution, num_modes=num_modes, **kwargs)

def write_dataset(path, images, labels=None):
    """A dataset zip of the given uint8 images [N, H, W, C] (and integer class labels); returns its path."""
    from training.dataset import DatasetWriter
    with DatasetWriter(str(path)) as writer:
        for i, image in enumerate(images):
            writer.add_image(f'{i:05d}.png', image)
        writer.write_metadata({'labels': None if labels is None else [[f'{i:05d}.png', int(y)] for i, y in enumerate(labels)]})
    return str(path)

def noise_dataset(path, num_images=24, labels=None, seed=0):
    """A dataset zip of uniform-noise 16x16 RGB images."""
    rng = np.random.default_rng(seed)
    return write_dataset(path, rng.integers(0, 256, [num_images, 16, 16, 3], dtype=np.uint8), labels)

#----------------------------------------------------------------------------
# Command lines and run folders.

def invoke(command, args):
    """Run a click command; re-raise anything but its exit (errors in the code under test show their traceback)."""
    result = CliRunner().invoke(command, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result

def invoke_ok(command, args):
    """invoke(), asserting a zero exit; returns the result."""
    result = invoke(command, args)
    assert result.exit_code == 0, result.output
    return result

def train(outdir, *args):
    """train.py --outdir=outdir with `args`; returns the newest run folder in outdir."""
    import train as train_script
    invoke_ok(train_script.main, ['--outdir', outdir, *args])
    return newest_run(outdir)

def newest_run(outdir):
    """The highest-numbered run folder in outdir."""
    return os.path.join(str(outdir), sorted(os.listdir(outdir))[-1])

def snapshot_path(run_dir, index=-1):
    """Path of a network snapshot of a run folder: the newest by default."""
    pkls = sorted(f for f in os.listdir(run_dir) if f.startswith('network-snapshot-') and f.endswith('.pkl'))
    return os.path.join(str(run_dir), pkls[index])

def load(path, **kwargs):
    """legacy.load_network_pkl of a file."""
    with open(path, 'rb') as f:
        return legacy.load_network_pkl(f, **kwargs)

def read_stats(run_dir):
    """The lines of a run's stats.jsonl."""
    with open(os.path.join(str(run_dir), 'stats.jsonl')) as f:
        return [json.loads(line) for line in f]

def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f]

def write_snapshot(run_dir, data_path, G_kwargs, D_kwargs, num_images, name='network-snapshot-000000.pkl', seed=0):
    """A run folder as train.py leaves it for calc_metrics.py: training_options.json and a snapshot of fresh tiny networks."""
    import pickle
    from training.networks import Discriminator, Generator
    os.makedirs(run_dir, exist_ok=True)
    torch.manual_seed(seed)
    G, D = Generator(**G_kwargs).eval(), Discriminator(**D_kwargs).eval()
    training_set_kwargs = dict(class_name='training.dataset.ImageFolderDataset', path=data_path, use_labels=False,
                               max_size=num_images, xflip=False, resolution=16)
    with open(os.path.join(run_dir, 'training_options.json'), 'w') as f:
        json.dump(dict(training_set_kwargs=training_set_kwargs), f, indent=2)
    with open(os.path.join(run_dir, name), 'wb') as f:
        pickle.dump(dict(training_set_kwargs=training_set_kwargs, G=G, D=D, G_ema=G, augment_pipe=None), f)
    return os.path.join(run_dir, name)

#----------------------------------------------------------------------------
# Comparing networks.

def params(module):
    """{name: clone} of every parameter and buffer of a module."""
    return {name: t.detach().clone() for name, t in misc.named_params_and_buffers(module)}

def tensors(source, *keys):
    """{'<key>.<name>': clone} of every parameter and buffer of source[key] (a training_loop() result or a snapshot)."""
    return {f'{key}.{name}': t for key in keys for name, t in params(source[key]).items()}

def differing(a, b):
    """Names whose tensors are not bit-identical in two tensors() dicts (with the same names)."""
    assert a.keys() == b.keys(), sorted(set(a) ^ set(b))
    return [name for name in a if not torch.equal(a[name], b[name])]

#----------------------------------------------------------------------------
# Two gloo processes on CPU.

def spawn_two(worker, *args):
    """Run worker(rank, *args) in 2 spawned processes."""
    torch.multiprocessing.spawn(worker, args=args, nprocs=2, start_method='spawn')

def init_gloo(rank, tmp_dir, stats=True):
    """In a worker: one thread, a 2-process gloo group through a file in tmp_dir, and training_stats across ranks."""
    torch.set_num_threads(1)
    torch.distributed.init_process_group('gloo', init_method='file://' + os.path.join(str(tmp_dir), 'init'), rank=rank, world_size=2)
    if stats:
        from torch_utils import training_stats
        training_stats.init_multiprocessing(rank=rank, sync_device=torch.device('cpu'))

def load_ranks(tmp_dir, prefix='rank'):
    """What the two workers saved with torch.save to <tmp_dir>/<prefix><rank>.pt."""
    return [torch.load(os.path.join(str(tmp_dir), f'{prefix}{rank}.pt')) for rank in (0, 1)]

#----------------------------------------------------------------------------
# Metrics offline: a random TorchScript detector stands in for Inception (and VGG16), a private dnnlib cache.

def small_fid(num_gen=32, name=None):
    """A registered-metric function: FID of `num_gen` generated images against all reals."""
    from metrics import frechet_inception_distance
    name = name or f'fid{num_gen}'
    def fn(opts):
        opts.dataset_kwargs.update(max_size=None, xflip=False)
        return {name: frechet_inception_distance.compute_fid(opts, max_real=None, num_gen=num_gen)}
    fn.__name__ = name
    return fn

def small_kid(num_gen=32):
    from metrics import kernel_inception_distance
    def kid32(opts):
        return dict(kid32=kernel_inception_distance.compute_kid(opts, max_real=None, num_gen=num_gen, num_subsets=5, max_subset_size=16))
    return kid32

def count_generated(monkeypatch):
    """A list that gets len(indices) of every metric_utils.LatentSampler.generate call (the generator passes of metrics)."""
    from metrics import metric_utils
    generated = []
    original = metric_utils.LatentSampler.generate
    def counting_generate(self, indices, batch_gen=4):
        generated.append(len(indices))
        return original(self, indices, batch_gen=batch_gen)
    monkeypatch.setattr(metric_utils.LatentSampler, 'generate', counting_generate)
    return generated

def offline_metrics(monkeypatch, tmp_path, metrics=(), seed=0):
    """Offline metric environment for one test: detector file, cache dir, a private copy of the metric registry with `metrics` added."""
    from metrics import metric_main
    from metrics import metric_utils
    detector = os.path.join(str(tmp_path), 'tiny-detector.pt')
    metric_utils.build_random_detector(detector, num_features=12, seed=seed)
    monkeypatch.setenv('DNNLIB_CACHE_DIR', os.path.join(str(tmp_path), 'cache'))
    monkeypatch.setattr(dnnlib.util, '_dnnlib_cache_dir', None)
    monkeypatch.setenv('SG2ADA_DETECTOR_INCEPTION_2015_12_05', detector)
    monkeypatch.setenv('SG2ADA_DETECTOR_VGG16', detector)
    monkeypatch.setattr(metric_main, '_metric_dict', dict(metric_main._metric_dict))
    for fn in metrics:
        metric_main.register_metric(fn)
    metric_utils.reset_detector_cache()
    return detector

#----------------------------------------------------------------------------
