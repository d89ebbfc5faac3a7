"""Train a StyleGAN2-ADA generator: command-line options, config presets, the run folder, and launching one or more processes."""

import inspect
import json
import os
import re
import tempfile

import click
import torch

import dnnlib
import priors  # registers prior metrics and priors
import priors.cli
from metrics import metric_main
from torch_utils import custom_ops
from torch_utils import training_stats
from training import training_loop as training_loop_module
from training.augment import augpipe_specs

#----------------------------------------------------------------------------
# Base configs (--cfg). Columns: ref_gpus = GPUs the batch was tuned for
# (batch_gpu = mb // ref_gpus), kimg = length, mb = batch, mbstd = minibatch
# std group, fmaps = channel_base / 32768, lrate, gamma = R1 weight, ema =
# G_ema half-life (kimg), ramp = EMA ramp-up, map = mapping layers. 'auto'
# derives its values from the resolution and --gpus (see _auto_spec). 'demo'
# is our tiny CPU config and adds cmax, tick, snap and workers.

cfg_specs = {
    'stylegan2': dict(ref_gpus=8, kimg=25000,  mb=32, mbstd=4,  fmaps=1,   lrate=0.002,  gamma=10,   ema=10,  ramp=None, map=8),
    'paper256':  dict(ref_gpus=8, kimg=25000,  mb=64, mbstd=8,  fmaps=0.5, lrate=0.0025, gamma=1,    ema=20,  ramp=None, map=8),
    'paper512':  dict(ref_gpus=8, kimg=25000,  mb=64, mbstd=8,  fmaps=1,   lrate=0.0025, gamma=0.5,  ema=20,  ramp=None, map=8),
    'paper1024': dict(ref_gpus=8, kimg=25000,  mb=32, mbstd=4,  fmaps=1,   lrate=0.002,  gamma=2,    ema=10,  ramp=None, map=8),
    'cifar':     dict(ref_gpus=2, kimg=100000, mb=64, mbstd=32, fmaps=1,   lrate=0.0025, gamma=0.01, ema=500, ramp=0.05, map=2),
    'demo':      dict(ref_gpus=1, kimg=8,      mb=16, mbstd=4,  fmaps=1/32, lrate=0.0025, gamma=0.05, ema=2,  ramp=0.05, map=2,
                      cmax=32, tick=1, snap=2, workers=1),
}
cfg_aliases = {'stylegan': 'stylegan2'}
cfg_names = ['auto'] + list(cfg_specs) + list(cfg_aliases)

# The official transfer-learning sources (--resume=<name>).
_resume_url = 'https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/transfer-learning-source-nets/'
resume_specs = {
    'ffhq256':     _resume_url + 'ffhq-res256-mirror-paper256-noaug.pkl',
    'ffhq512':     _resume_url + 'ffhq-res512-mirror-stylegan2-noaug.pkl',
    'ffhq1024':    _resume_url + 'ffhq-res1024-mirror-stylegan2-noaug.pkl',
    'celebahq256': _resume_url + 'celebahq-res256-mirror-paper256-kimg100000-ada-target0.5.pkl',
    'lsundog256':  _resume_url + 'lsundog-res256-paper256-kimg100000-noaug.pkl',
}

# The built-in demo dataset (--data omitted).
demo_dataset_kwargs = dict(num_images=2000, resolution=32, num_modes=8, seed=0)

# Options that may differ between a run and its exact resume without changing the training math.
_resume_ignored_options = ('run_dir', 'total_kimg', 'resume_pkl', 'resume_exact', 'ada_kimg', 'metrics', 'image_snapshot_ticks',
                           'network_snapshot_ticks', 'kimg_per_tick', 'data_loader_kwargs')

#----------------------------------------------------------------------------
# Hyperparameters of --cfg=auto for a resolution and process count.

def _auto_spec(res, gpus):
    mb = max(min(gpus * min(4096 // res, 32), 64), gpus)
    return dict(ref_gpus=gpus, kimg=25000, mb=mb, mbstd=min(mb // gpus, 4), fmaps=(1 if res >= 512 else 0.5),
                lrate=(0.002 if res >= 1024 else 0.0025), gamma=0.0002 * (res ** 2) / mb, ema=mb * 10 / 32, ramp=0.05, map=2)

#----------------------------------------------------------------------------
# Comma-separated list option; 'none' or empty gives [].

class CommaSeparatedList(click.ParamType):
    name = 'LIST'

    def convert(self, value, param, ctx):
        if isinstance(value, list):
            return value
        if value is None or value.lower() == 'none' or value == '':
            return []
        return [item.strip() for item in value.split(',') if item.strip()]

#----------------------------------------------------------------------------
# The built-in synthetic dataset, made once in the dnnlib cache folder.

def _demo_dataset_path():
    k = demo_dataset_kwargs
    path = dnnlib.make_cache_dir_path('datasets', f'synthetic-{k["resolution"]}px-{k["num_images"]}img-{k["num_modes"]}modes-seed{k["seed"]}.zip')
    if not os.path.isfile(path):
        from training.synthetic import make_synthetic_dataset
        print(f'Creating the built-in synthetic dataset in {path} ...')
        make_synthetic_dataset(path, **k)
    return path

#----------------------------------------------------------------------------
# Newest network snapshot below outdir: highest run number, then highest kimg.

def find_latest_snapshot(outdir):
    found = []
    if os.path.isdir(outdir):
        for run in os.listdir(outdir):
            run_match = re.match(r'^(\d+)', run)
            if run_match is None or not os.path.isdir(os.path.join(outdir, run)):
                continue
            for fname in os.listdir(os.path.join(outdir, run)):
                snap_match = re.fullmatch(r'network-snapshot-(\d+)\.pkl', fname)
                if snap_match is not None:
                    found.append((int(run_match.group(1)), int(snap_match.group(1)), os.path.join(outdir, run, fname)))
    if not found:
        raise click.ClickException(f'--resume=latest: no network-snapshot-*.pkl in the runs under --outdir={outdir}; '
                                   f'give a snapshot path instead')
    return max(found)[2]

#----------------------------------------------------------------------------
# The 'resume_state' of a pickle (None if it has none).

def _peek_resume_state(path):
    import legacy
    try:
        with dnnlib.util.open_url(path, verbose=False) as f:
            return legacy.load_network_pkl(f).get('resume_state', None)
    except (OSError, ValueError) as err:
        raise click.ClickException(f'--resume: cannot read "{path}": {err}') from err

# Differences between two option dicts, as 'a.b: old -> new' strings.
def _option_differences(old, new, prefix=''):
    diffs = []
    for key in sorted(set(old) | set(new)):
        name = prefix + key
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += _option_differences(a, b, name + '.')
        elif a != b:
            diffs.append(f'{name}: {a!r} -> {b!r}')
    return diffs

#----------------------------------------------------------------------------
# Turn the command-line options into the training_loop() kwargs and the run
# description. Every cross-option check is here; each raises ClickException.

def setup_training_loop_kwargs(opts):
    opts = dnnlib.EasyDict(opts)
    c = dnnlib.EasyDict()  # training_loop() kwargs, in the official training_options.json order
    cuda = torch.cuda.is_available()

    # General options.
    gpus = opts.gpus if opts.gpus is not None else 1
    if cuda and gpus > torch.cuda.device_count():
        raise click.ClickException(f'--gpus={gpus}, but only {torch.cuda.device_count()} CUDA device(s) are visible')
    cfg_name = opts.cfg if opts.cfg is not None else ('auto' if opts.data is not None else 'demo')
    cfg_name = cfg_aliases.get(cfg_name, cfg_name)
    demo = cfg_specs.get(cfg_name, {})
    c.num_gpus = gpus
    snap = opts.snap if opts.snap is not None else demo.get('snap', 50)
    c.image_snapshot_ticks = c.network_snapshot_ticks = snap
    valid_metrics = metric_main.list_valid_metrics()
    for metric in opts.metrics:
        if metric not in valid_metrics:
            raise click.ClickException(f'--metrics: unknown metric "{metric}"; valid metrics: '
                                       + ', '.join(['none'] + valid_metrics))
    c.metrics = list(opts.metrics)
    c.random_seed = opts.seed

    # Dataset: open it once to read its shape and labels.
    data = opts.data if opts.data is not None else _demo_dataset_path()
    c.training_set_kwargs = dnnlib.EasyDict(class_name='training.dataset.ImageFolderDataset', path=data, use_labels=True,
                                            max_size=None, xflip=False)
    c.data_loader_kwargs = dnnlib.EasyDict(pin_memory=cuda, num_workers=3, prefetch_factor=2)
    try:
        training_set = dnnlib.util.construct_class_by_name(**c.training_set_kwargs)
        c.training_set_kwargs.resolution = training_set.resolution
        c.training_set_kwargs.use_labels = training_set.has_labels
        c.training_set_kwargs.max_size = len(training_set)
        desc = training_set.name
        del training_set
    except (OSError, ValueError) as err:
        raise click.ClickException(f'--data: {err}') from err
    if opts.cond:
        if not c.training_set_kwargs.use_labels:
            raise click.ClickException(f'--cond=1 needs labels, but {data} has none in dataset.json; '
                                       f'add them with dataset_tool.py or use --cond=0')
        desc += '-cond'
    else:
        c.training_set_kwargs.use_labels = False
    if opts.subset is not None:
        if opts.subset > c.training_set_kwargs.max_size:
            raise click.ClickException(f'--subset={opts.subset} is larger than the dataset ({c.training_set_kwargs.max_size} images)')
        desc += f'-subset{opts.subset}'
        if opts.subset < c.training_set_kwargs.max_size:
            c.training_set_kwargs.max_size = opts.subset
            c.training_set_kwargs.random_seed = opts.seed
    if opts.mirror:
        desc += '-mirror'
        c.training_set_kwargs.xflip = True

    # Base config.
    res = c.training_set_kwargs.resolution
    desc += f'-{cfg_name}' + (f'{gpus}' if cfg_name == 'auto' else '')
    spec = dnnlib.EasyDict(_auto_spec(res, gpus) if cfg_name == 'auto' else cfg_specs[cfg_name])
    cbase = opts.cbase if opts.cbase is not None else int(spec.fmaps * 32768)
    cmax = opts.cmax if opts.cmax is not None else spec.get('cmax', 512)
    mbstd = opts.mbstd_group if opts.mbstd_group is not None else spec.mbstd
    c.G_kwargs = dnnlib.EasyDict(class_name='training.networks.Generator', z_dim=512, w_dim=512,
                                 mapping_kwargs=dnnlib.EasyDict(), synthesis_kwargs=dnnlib.EasyDict())
    c.G_kwargs.mapping_kwargs.num_layers = opts.map if opts.map is not None else spec.map
    c.G_kwargs.synthesis_kwargs.channel_base = cbase
    c.G_kwargs.synthesis_kwargs.channel_max = cmax
    c.G_kwargs.synthesis_kwargs.num_fp16_res = 4
    c.G_kwargs.synthesis_kwargs.conv_clamp = 256
    c.D_kwargs = dnnlib.EasyDict(class_name='training.networks.Discriminator', block_kwargs=dnnlib.EasyDict(),
                                 mapping_kwargs=dnnlib.EasyDict(), epilogue_kwargs=dnnlib.EasyDict())
    c.D_kwargs.epilogue_kwargs.mbstd_group_size = mbstd
    c.D_kwargs.channel_base = cbase
    c.D_kwargs.channel_max = cmax
    c.D_kwargs.num_fp16_res = 4
    c.D_kwargs.conv_clamp = 256
    c.G_opt_kwargs = dnnlib.EasyDict(class_name='torch.optim.Adam', lr=spec.lrate, betas=[0, 0.99], eps=1e-8)
    c.D_opt_kwargs = dnnlib.EasyDict(class_name='torch.optim.Adam', lr=spec.lrate, betas=[0, 0.99], eps=1e-8)
    if opts.glr is not None:
        c.G_opt_kwargs.lr = opts.glr
    if opts.dlr is not None:
        c.D_opt_kwargs.lr = opts.dlr
    c.loss_kwargs = dnnlib.EasyDict(class_name='training.loss.StyleGAN2Loss', r1_gamma=spec.gamma)
    c.total_kimg = spec.kimg
    c.batch_size = spec.mb
    c.batch_gpu = max(spec.mb // spec.ref_gpus, 1)
    c.ema_kimg = spec.ema
    c.ema_rampup = spec.ramp
    if cfg_name == 'cifar':
        c.loss_kwargs.pl_weight = 0  # disable path length regularization
        c.loss_kwargs.style_mixing_prob = 0  # disable style mixing
        c.D_kwargs.architecture = 'orig'  # disable residual skip connections

    # Overrides of the base config.
    if opts.gamma is not None:
        desc += f'-gamma{opts.gamma:g}'
        c.loss_kwargs.r1_gamma = opts.gamma
    if opts.kimg is not None:
        desc += f'-kimg{opts.kimg:g}'
        c.total_kimg = int(opts.kimg) if float(opts.kimg).is_integer() else opts.kimg
    if opts.batch is not None:
        if opts.batch % gpus != 0:
            raise click.ClickException(f'--batch={opts.batch} must be divisible by --gpus={gpus}')
        desc += f'-batch{opts.batch}'
        c.batch_size = opts.batch
        c.batch_gpu = opts.batch // gpus
    if opts.batch_gpu is not None:
        c.batch_gpu = opts.batch_gpu
    if c.batch_size % (gpus * c.batch_gpu) != 0:
        raise click.ClickException(_batch_message(c.batch_size, gpus, c.batch_gpu))
    if c.batch_gpu % min(mbstd, c.batch_gpu) != 0:
        raise click.ClickException(f'--mbstd-group={mbstd} must divide the per-process batch (batch_gpu={c.batch_gpu}); '
                                   f'choose a divisor of {c.batch_gpu}, e.g. --mbstd-group={_largest_divisor(c.batch_gpu, mbstd)}')

    # Discriminator augmentation.
    aug = opts.aug if opts.aug is not None else 'ada'
    if opts.aug is not None:
        desc += f'-{aug}'
    if aug == 'ada':
        c.ada_target = 0.6
    elif aug == 'fixed' and opts.p is None:
        raise click.ClickException('--aug=fixed needs --p, the fixed augmentation probability')
    if opts.p is not None:
        if aug != 'fixed':
            raise click.ClickException(f'--p can only be given with --aug=fixed (now --aug={aug})')
        desc += f'-p{opts.p:g}'
        c.augment_p = opts.p
    if opts.target is not None:
        if aug != 'ada':
            raise click.ClickException(f'--target can only be given with --aug=ada (now --aug={aug})')
        desc += f'-target{opts.target:g}'
        c.ada_target = opts.target
    if aug == 'noaug':
        if opts.augpipe is not None:
            raise click.ClickException('--augpipe cannot be given with --aug=noaug; drop --augpipe or choose --aug=ada/fixed')
    else:
        augpipe = opts.augpipe if opts.augpipe is not None else 'bgc'
        if opts.augpipe is not None:
            desc += f'-{augpipe}'
        c.augment_kwargs = dnnlib.EasyDict(class_name='training.augment.AugmentPipe', **augpipe_specs[augpipe])

    # Resume: exact when the pickle holds a resume_state, else weights only (official settings).
    resume = opts.resume if opts.resume is not None else 'noresume'
    resume_state = None
    if resume == 'noresume':
        desc += '-noresume' if opts.resume is not None else ''
    else:
        if resume in resume_specs:
            desc += f'-resume{resume}'
            c.resume_pkl = resume_specs[resume]
        elif resume == 'latest':
            desc += '-resumelatest'
            c.resume_pkl = find_latest_snapshot(opts.outdir)
        else:
            if not os.path.isfile(resume) and not dnnlib.util.is_url(resume, allow_file_urls=True):
                raise click.ClickException(f'--resume: "{resume}" is not a file, a URL, "latest" or one of '
                                           + ', '.join(resume_specs))
            desc += '-resumecustom'
            c.resume_pkl = resume
        if opts.resume_exact is not False and resume not in resume_specs:
            resume_state = _peek_resume_state(c.resume_pkl)
        if resume_state is None:
            c.ada_kimg = 100  # make ADA react faster at the beginning
            c.ema_rampup = None  # disable EMA rampup
    if opts.freezed is not None:
        desc += f'-freezed{opts.freezed}'
        c.D_kwargs.block_kwargs.freeze_layers = opts.freezed

    # Performance options. Mixed precision only pays off on a GPU, so it is off by default on CPU.
    fp32 = opts.fp32 if opts.fp32 is not None else not cuda
    if fp32:
        c.G_kwargs.synthesis_kwargs.num_fp16_res = c.D_kwargs.num_fp16_res = 0
        c.G_kwargs.synthesis_kwargs.conv_clamp = c.D_kwargs.conv_clamp = None
    if opts.nhwc:
        c.G_kwargs.synthesis_kwargs.fp16_channels_last = c.D_kwargs.block_kwargs.fp16_channels_last = True
    if opts.nobench:
        c.cudnn_benchmark = False
    if opts.allow_tf32:
        c.allow_tf32 = True
    c.data_loader_kwargs.num_workers = opts.workers if opts.workers is not None else demo.get('workers', 3)

    # Our additions, after the official keys.
    c.kimg_per_tick = opts.tick if opts.tick is not None else demo.get('tick', 4)
    if 'resume_pkl' in c:
        c.resume_exact = opts.resume_exact is not False
    # Priors (PriorGAN and others): loss and sampler config, after the dataset and seed are final.
    priors.cli.configure(c, opts)
    if opts.prior not in (None, [], ['none']):
        desc += '-' + '-'.join(opts.prior)
    if resume_state is not None:
        _check_resume_state(resume_state, c)
    return c, desc

#----------------------------------------------------------------------------

def _largest_divisor(n, at_most):
    return max(d for d in range(1, min(n, at_most) + 1) if n % d == 0)

def _batch_message(batch, gpus, batch_gpu):
    step = gpus * batch_gpu
    lower, upper = (batch // step) * step, (batch // step + 1) * step
    hint = f'--batch={upper}' if lower == 0 else f'--batch={lower} or --batch={upper}'
    if batch % gpus == 0:
        hint += f', or --batch-gpu={_largest_divisor(batch // gpus, batch_gpu)}'
    return (f'--batch={batch} must be divisible by --gpus x --batch-gpu = {gpus} x {batch_gpu} = {step}; '
            f'use {hint}')

# Exact resume: refuse a finished snapshot; say which options differ from its run.
def _check_resume_state(resume_state, c):
    cur_kimg = resume_state['cur_nimg'] / 1000
    if cur_kimg >= c.total_kimg:
        raise click.ClickException(f'--kimg={c.total_kimg:g}: the snapshot is already at kimg {cur_kimg:g}; '
                                   f'raise --kimg to train further')
    old = {k: v for k, v in resume_state.get('training_options', {}).items() if k not in _resume_ignored_options}
    # Options this run leaves to training_loop()'s defaults count with their default values.
    defaults = {name: param.default for name, param in inspect.signature(training_loop_module.training_loop).parameters.items()
                if param.default is not inspect.Parameter.empty and name != 'rank'}
    new = json.loads(json.dumps(dict(defaults, **c), default=str))
    new = {k: v for k, v in new.items() if k in old or k not in _resume_ignored_options}
    diffs = _option_differences(old, new)
    print(f'Exact resume from kimg {cur_kimg:g} (tick {resume_state["cur_tick"]}).')
    if resume_state['num_gpus'] != c.num_gpus:
        diffs.append(f'num_gpus: {resume_state["num_gpus"]} -> {c.num_gpus}')
    if diffs:
        print('Note: these options differ from the snapshot\'s run, so training will not continue exactly as it would have:')
        for diff in diffs:
            print('  ' + diff)

#----------------------------------------------------------------------------
# Run folder: <outdir>/<next id:05d>-<desc>.

def make_run_dir(outdir, desc):
    ids = [int(m.group()) for m in (re.match(r'^\d+', name) for name in (os.listdir(outdir) if os.path.isdir(outdir) else []))
           if m is not None and os.path.isdir(os.path.join(outdir, m.string))]
    return os.path.join(outdir, f'{max(ids, default=-1) + 1:05d}-{desc}')

def _print_options(c):
    print()
    print('Training options:')
    print(json.dumps(c, indent=2))
    print()
    print(f'Output directory:   {c.run_dir}')
    print(f'Training data:      {c.training_set_kwargs.path}')
    print(f'Training duration:  {c.total_kimg} kimg')
    print(f'Number of GPUs:     {c.num_gpus}' + ('' if torch.cuda.is_available() else ' (CPU processes)'))
    print(f'Number of images:   {c.training_set_kwargs.max_size}')
    print(f'Image resolution:   {c.training_set_kwargs.resolution}')
    print(f'Conditional model:  {c.training_set_kwargs.use_labels}')
    print(f'Dataset x-flips:    {c.training_set_kwargs.xflip}')
    print()

#----------------------------------------------------------------------------
# Device and collective backend of one process.

def _process_device(local_rank):
    if torch.cuda.is_available():
        device = torch.device('cuda', local_rank)
        torch.cuda.set_device(device)
        return device, 'nccl'
    return torch.device('cpu'), 'gloo'

# Body of every training process: log file, statistics sync, training loop.
def run_training_process(rank, c, device, num_local_processes):
    from training import training_loop
    os.makedirs(c.run_dir, exist_ok=True)
    with dnnlib.util.Logger(file_name=os.path.join(c.run_dir, 'log.txt'), file_mode='a', should_flush=True):
        if c.num_gpus > 1:
            training_stats.init_multiprocessing(rank=rank, sync_device=device)
        if rank != 0:
            custom_ops.verbosity = 'none'
        if device.type == 'cpu' and num_local_processes > 1:
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // num_local_processes))
        training_loop.training_loop(rank=rank, device=device, **c)

# Entry point of a process started by torch.multiprocessing.spawn (one machine).
def _spawned_process(rank, c, temp_dir):
    device, backend = _process_device(rank)
    init_file = os.path.abspath(os.path.join(temp_dir, '.torch_distributed_init'))
    init_method = ('file:///' + init_file.replace('\\', '/')) if os.name == 'nt' else ('file://' + init_file)
    torch.distributed.init_process_group(backend=backend, init_method=init_method, rank=rank, world_size=c.num_gpus)
    try:
        run_training_process(rank, c, device, num_local_processes=c.num_gpus)
    finally:
        torch.distributed.destroy_process_group()

# True when started by torchrun (or another env:// launcher).
def _launched_by_torchrun():
    return all(name in os.environ for name in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT'))

#----------------------------------------------------------------------------

@click.command(context_settings=dict(max_content_width=120))
@click.pass_context

# General options.
@click.option('--outdir',       help='Where to save the results', metavar='DIR', required=True)
@click.option('--gpus',         help='Number of processes: GPUs, or CPU processes without CUDA  [default: 1]', type=click.IntRange(min=1))
@click.option('--snap',         help='Snapshot interval in ticks  [default: 50; demo: 2]', type=click.IntRange(min=1), metavar='INT')
@click.option('--metrics',      help='Metrics at each snapshot, comma-separated, or "none"', type=CommaSeparatedList(), default='none', show_default=True)
@click.option('--seed',         help='Random seed', type=click.IntRange(min=0), default=0, show_default=True)
@click.option('-n', '--dry-run', help='Print the training options and exit', is_flag=True)

# Dataset.
@click.option('--data',         help='Training data (folder or zip); omit it for the built-in demo data', metavar='PATH')
@click.option('--cond',         help='Train a conditional model on the dataset labels', type=bool, default=False, metavar='BOOL')
@click.option('--subset',       help='Train on a random subset of this many images', type=click.IntRange(min=1), metavar='INT')
@click.option('--mirror',       help='Add x-flipped copies of the images', type=bool, default=False, metavar='BOOL')

# Base config.
@click.option('--cfg',          help='Base config  [default: auto with --data, demo without]', type=click.Choice(cfg_names))
@click.option('--gamma',        help='R1 regularization weight  [default: from --cfg]', type=click.FloatRange(min=0))
@click.option('--kimg',         help='Training duration in thousands of images  [default: from --cfg]', type=click.FloatRange(min=0, min_open=True))
@click.option('--batch',        help='Total batch size over all processes  [default: from --cfg]', type=click.IntRange(min=1))
@click.option('--batch-gpu',    help='Samples per process at a time (gradient accumulation below --batch / --gpus)', type=click.IntRange(min=1))
@click.option('--cbase',        help='Capacity multiplier (channel_base)  [default: from --cfg]', type=click.IntRange(min=1))
@click.option('--cmax',         help='Max. feature maps (channel_max)  [default: from --cfg]', type=click.IntRange(min=1))
@click.option('--map',          help='Mapping network depth  [default: from --cfg]', type=click.IntRange(min=1))
@click.option('--glr',          help='G learning rate  [default: from --cfg]', type=click.FloatRange(min=0, min_open=True))
@click.option('--dlr',          help='D learning rate  [default: from --cfg]', type=click.FloatRange(min=0, min_open=True))
@click.option('--mbstd-group',  help='Minibatch std group size  [default: from --cfg]', type=click.IntRange(min=1))
@click.option('--tick',         help='Progress interval in thousands of images  [default: 4; demo: 1]', type=click.FloatRange(min=0, min_open=True))

# Discriminator augmentation.
@click.option('--aug',          help='Augmentation mode  [default: ada]', type=click.Choice(['noaug', 'ada', 'fixed']))
@click.option('--p',            help='Augmentation probability for --aug=fixed', type=click.FloatRange(min=0, max=1))
@click.option('--target',       help='ADA target value for --aug=ada  [default: 0.6]', type=click.FloatRange(min=0, max=1))
@click.option('--augpipe',      help='Augmentation pipeline  [default: bgc]', type=click.Choice(list(augpipe_specs)))

# Resume and transfer learning.
@click.option('--resume',       help='Resume from a network pickle: PATH, URL, "latest" or a shortcut name', metavar='PKL')
@click.option('--resume-exact', help='Continue exactly when the pickle has a resume state  [default: 1]', type=bool, metavar='BOOL')
@click.option('--freezed',      help='Freeze the first layers of D', type=click.IntRange(min=0), metavar='INT')

# Performance options.
@click.option('--fp32',         help='Disable mixed precision  [default: 0 with CUDA, 1 on CPU]', type=bool, metavar='BOOL')
@click.option('--nhwc',         help='Use NHWC memory format with FP16', type=bool, metavar='BOOL')
@click.option('--nobench',      help='Disable cuDNN benchmarking', type=bool, metavar='BOOL')
@click.option('--allow-tf32',   help='Allow PyTorch to use TF32 internally', type=bool, metavar='BOOL')
@click.option('--workers',      help='DataLoader worker processes  [default: 3; demo: 1]', type=click.IntRange(min=1), metavar='INT')

# Real-data priors (see docs/priors.md).
@priors.cli.prior_options

def main(ctx, **opts):
    """Train a StyleGAN2-ADA generator and discriminator (Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data").

    \b
    Demo (no dataset needed; about 5 minutes on 2 CPU cores):
      python train.py --outdir=runs
    Without --data, train.py builds a small synthetic 32x32 dataset (coloured
    shapes) once in the dnnlib cache folder (~/.cache/dnnlib/datasets) and
    trains the tiny 'demo' config on it: 8 kimg, a tick every kimg, image
    grids and a network snapshot every 2 ticks. The snapshot works with
    generate.py.

    \b
    Examples:
      # Your dataset (made by dataset_tool.py), one GPU, automatic config.
      python train.py --outdir=~/runs --data=~/mydataset.zip
      # Conditional CIFAR-10 with the paper's config on two GPUs.
      python train.py --outdir=~/runs --data=~/datasets/cifar10.zip --gpus=2 --cfg=cifar --cond=1
      # Continue exactly where the newest snapshot in --outdir left off.
      python train.py --outdir=~/runs --data=~/mydataset.zip --resume=latest
      # Tiny config, any dataset, CPU.
      python train.py --outdir=runs --data=ds.zip --cbase=1024 --cmax=32 --map=2 --batch=8 --kimg=1 --tick=0.1

    \b
    Processes (--gpus): with CUDA, one process per GPU (NCCL). Without CUDA,
    --gpus=N starts N CPU processes (gloo) that share the cores. The batch must
    be divisible by --gpus x --batch-gpu; any N works. Under torchrun (env://,
    possibly several machines) the process count comes from torchrun; leave
    --gpus out.

    \b
    Resume (--resume): a snapshot written by this code holds a resume state
    (optimizers, counters, ADA p, loss state, sampler position, RNG states), so
    training continues exactly as if never stopped (same options and process
    count required). Official pickles and --resume-exact=0 load weights only,
    as the official code does (ADA kimg 100, no EMA ramp-up). Shortcut names:
    ffhq256, ffhq512, ffhq1024, celebahq256, lsundog256; "latest" = newest
    snapshot under --outdir.

    \b
    Base configs (--cfg):
      auto       batch, gamma, EMA and channels chosen from the resolution and
                 --gpus; the usual choice for a new dataset
      stylegan2  StyleGAN2 config F as in the StyleGAN2 paper (alias: stylegan)
      paper256   the ADA paper's 256x256 setup (FFHQ, LSUN Cat)
      paper512   the ADA paper's 512x512 setup (AFHQ, BreCaHAD)
      paper1024  the ADA paper's 1024x1024 setup (MetFaces)
      cifar      the ADA paper's CIFAR-10 setup (32x32)
      demo       tiny networks for a few minutes on a CPU; the default without --data

    \b
    Pretrained starting points for --resume (weights only):
      ffhq256, ffhq512, ffhq1024   FFHQ generators at 256, 512 and 1024 pixels
      celebahq256                  CelebA-HQ at 256 pixels
      lsundog256                   LSUN Dog at 256 pixels
    """
    opts = dnnlib.EasyDict(opts)

    # Under torchrun, rank 0 prepares the run and shares the options.
    if _launched_by_torchrun():
        world_size, rank, local_rank = int(os.environ['WORLD_SIZE']), int(os.environ['RANK']), int(os.environ['LOCAL_RANK'])
        if opts.gpus is not None and opts.gpus != world_size:
            raise click.ClickException(f'--gpus={opts.gpus}, but torchrun started {world_size} processes; leave --gpus out under torchrun')
        device, backend = _process_device(local_rank)
        torch.distributed.init_process_group(backend=backend, init_method='env://')
        try:
            box = [None]
            if rank == 0:
                c = _prepare_run(dict(opts, gpus=world_size))
                box = [c]
            torch.distributed.broadcast_object_list(box, src=0)
            if box[0] is not None:
                num_local = int(os.environ.get('LOCAL_WORLD_SIZE', world_size))
                run_training_process(rank, box[0], device, num_local_processes=num_local)
        finally:
            torch.distributed.destroy_process_group()
        return

    # One machine: prepare the run, then train in this process or spawn one per GPU.
    c = _prepare_run(opts)
    if c is None:
        return
    if c.num_gpus == 1:
        run_training_process(0, c, _process_device(0)[0], num_local_processes=1)
    else:
        with tempfile.TemporaryDirectory() as temp_dir:
            torch.multiprocessing.spawn(fn=_spawned_process, args=(c, temp_dir), nprocs=c.num_gpus, start_method='spawn')

# Options, run folder, printout and training_options.json; None for a dry run.
def _prepare_run(opts):
    c, desc = setup_training_loop_kwargs(opts)
    c.run_dir = make_run_dir(opts['outdir'], desc)
    _print_options(c)
    if opts['dry_run']:
        print('Dry run; exiting.')
        return None
    print('Creating output directory...')
    os.makedirs(c.run_dir)
    with dnnlib.util.atomic_write(os.path.join(c.run_dir, 'training_options.json'), 'w') as f:
        json.dump(c, f, indent=2)
    print('Launching processes...')
    return c

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
