"""Train a StyleGAN2-ADA generator: command-line options, config presets, the run folder, and launching one or more processes."""

import inspect
import json
import os
import re
import tempfile

import click
import torch

import dnnlib
import legacy
from dnnlib import cli
import priors  # registers prior metrics and priors
import priors.cli
from metrics import metric_main
from torch_utils import custom_ops
from torch_utils import misc
from torch_utils import safe_load
from torch_utils import training_stats
from training import toy_data
from training import toy_lab
from training import training_loop as training_loop_module
from training.augment import augpipe_specs
from training.loss import GAN_LOSSES

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
    # The toy lab (2-D points, MLP G and D; docs/toy-lab.md): only mb, lrate, gamma, ema, kimg, tick, snap, workers apply.
    'toy':       dict(ref_gpus=1, kimg=200,    mb=128, mbstd=1,  fmaps=1/32, lrate=0.0005, gamma=0,   ema=0,   ramp=None, map=1,
                      tick=50, snap=2, workers=0),
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
_resume_ignored_options = ('run_dir', 'total_kimg', 'total_steps', 'resume_pkl', 'resume_exact', 'ada_kimg', 'metrics', 'image_snapshot_ticks',
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
    found = legacy.latest_snapshot(outdir) if os.path.isdir(outdir) else None
    if found is None:
        raise click.ClickException(f'--resume=latest: no network-snapshot-*.pkl in the runs under --outdir={outdir}; '
                                   f'give a snapshot path instead')
    return found

#----------------------------------------------------------------------------
# The snapshot dict of a resume pickle, read once at start-up. It is read by the
# allowlist unpickler unless --trust-pickle is given (torch_utils.safe_load), so a
# hostile file is refused before any of it runs; the training loop reads it the same way.

def _load_resume_pickle(path):
    try:
        with dnnlib.util.open_url(path, verbose=False) as f:
            return legacy.load_network_pkl(f)
    except legacy.NetworkPickleError as err:  # its message names the file
        raise click.ClickException(f'--resume: {err}') from err
    except (OSError, ValueError) as err:
        raise click.ClickException(f'--resume: cannot read "{path}": {err}') from err

# Refuse a resume pickle whose G or D does not fit the networks these options
# build (other --cbase/--cmax/--map, resolution, channels or labels): names
# and shapes are compared with networks built on the CPU (about a second for
# the largest configs). An exact resume needs every tensor; a weights-only one
# (official) the shared names. Skipped when our networks cannot be built here.

def _check_resume_architecture(c, data, path, exact):
    try:
        training_set = dnnlib.util.construct_class_by_name(**c.training_set_kwargs)
        common = dict(c_dim=training_set.label_dim, img_resolution=training_set.resolution, img_channels=training_set.num_channels)
        del training_set
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            ours = dict(G=dnnlib.util.construct_class_by_name(**c.G_kwargs, **common),
                        D=dnnlib.util.construct_class_by_name(**c.D_kwargs, **common))
    except Exception: # pylint: disable=broad-except
        return
    for key, module in ours.items():
        theirs = dict(misc.named_params_and_buffers(data[key]))
        for name, tensor in misc.named_params_and_buffers(module):
            if name not in theirs:
                if exact:
                    raise click.ClickException(f'--resume: "{path}" does not match these options: its {key} has no tensor "{name}" '
                                               f'(another --cbase/--cmax/--map, resolution or --cond?); give the options of the run '
                                               f'that wrote it, or --resume-exact=0 to copy only the matching weights')
                continue
            if tuple(theirs[name].shape) != tuple(tensor.shape):
                raise click.ClickException(f'--resume: "{path}" does not match these options: {key} tensor "{name}" has shape '
                                           f'{list(theirs[name].shape)} there but {list(tensor.shape)} here (another --cbase/--cmax/'
                                           f'--map, resolution, channel count or --cond?); give the options of the run that wrote it')

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
# description. One builder per group of options, called in the order of the
# official training_options.json keys; each writes its keys into `c` and runs
# its own cross-option checks, raising ClickException with the flag at fault.

def setup_training_loop_kwargs(opts):
    opts = dnnlib.EasyDict(opts)
    c = dnnlib.EasyDict()  # training_loop() kwargs, in the official training_options.json order
    run = _run_basics(opts)
    _general_kwargs(c, opts, run)
    dataset_name = _data_kwargs(c, opts, run)
    spec = _base_spec(run, c.training_set_kwargs.resolution)
    _network_kwargs(c, opts, run, spec)
    _optimizer_kwargs(c, opts, spec)
    _loss_kwargs(c, opts, run, spec)
    _schedule_kwargs(c, opts, run, spec)
    _augment_kwargs(c, opts)
    resume_state, resume_check = _resume_kwargs(c, opts)
    _performance_kwargs(c, opts, run)
    _loop_extra_kwargs(c, opts, run)
    _toy_kwargs(c, opts, run)
    _paper_kwargs(c, opts, run)
    # Priors (PriorGAN and others): loss, sampler, G and D config, after the dataset and seed are final.
    priors.cli.configure(c, opts)
    if resume_check is not None:
        _check_resume_architecture(c, *resume_check)
    if resume_state is not None:
        _check_resume_state(resume_state, c)
    return c, run_description(c, opts, run, dataset_name)

# What the builders share: CUDA, process count, the --cfg name and the demo extras (cmax, tick, snap, workers).
def _run_basics(opts):
    cuda = torch.cuda.is_available()
    gpus = opts.gpus if opts.gpus is not None else 1
    if cuda and gpus > torch.cuda.device_count():
        raise click.ClickException(f'--gpus={gpus}, but only {torch.cuda.device_count()} CUDA device(s) are visible')
    if not cuda and not _launched_by_torchrun():
        cli.check_cpu_processes(gpus)
    cfg_name = opts.cfg if opts.cfg is not None else ('auto' if opts.data is not None else 'demo')
    if opts.cfg is None and opts.data is not None and toy_lab.is_toy_data(opts.data):
        cfg_name = 'toy'
    cfg_name = cfg_aliases.get(cfg_name, cfg_name)
    return dnnlib.EasyDict(cuda=cuda, gpus=gpus, cfg_name=cfg_name, demo=cfg_specs.get(cfg_name, {}))

# The --cfg hyperparameters (cfg_specs columns) for the dataset resolution.
def _base_spec(run, res):
    return dnnlib.EasyDict(_auto_spec(res, run.gpus) if run.cfg_name == 'auto' else cfg_specs[run.cfg_name])

# --gpus, --snap, --metrics, --seed.
def _general_kwargs(c, opts, run):
    c.num_gpus = run.gpus
    c.image_snapshot_ticks = c.network_snapshot_ticks = opts.snap if opts.snap is not None else run.demo.get('snap', 50)
    valid_metrics = metric_main.list_valid_metrics()
    for metric in opts.metrics:
        if metric not in valid_metrics:
            raise click.ClickException(f'--metrics: unknown metric "{metric}"; valid metrics: '
                                       + ', '.join(['none'] + valid_metrics))
    c.metrics = list(opts.metrics)
    if misc.rank_seed(opts.seed, run.gpus - 1, run.gpus) >= 2**32:  # numpy seeds must be < 2**32
        raise click.ClickException(f'--seed={opts.seed} is too large for --gpus={run.gpus} (each process seeds with '
                                   f'seed x gpus + rank < 2**32); use --seed={(2**32 - 1) // run.gpus} or less')
    c.random_seed = opts.seed

# --data, --cond, --subset, --mirror: open the dataset once to read its shape and labels. Returns its name.
def _data_kwargs(c, opts, run):
    data = opts.data if opts.data is not None else _demo_dataset_path()
    dataset_class = toy_lab.TOY_DATASET_CLASS if toy_lab.is_toy_data(data) else 'training.dataset.ImageFolderDataset'
    c.training_set_kwargs = dnnlib.EasyDict(class_name=dataset_class, path=data, use_labels=True, max_size=None, xflip=False)
    c.data_loader_kwargs = dnnlib.EasyDict(pin_memory=run.cuda, num_workers=3, prefetch_factor=2)
    try:
        training_set = dnnlib.util.construct_class_by_name(**c.training_set_kwargs)
        c.training_set_kwargs.resolution = training_set.resolution
        c.training_set_kwargs.use_labels = training_set.has_labels
        c.training_set_kwargs.max_size = len(training_set)
        name = training_set.name
        if hasattr(training_set, 'check_all_images'):
            training_set.check_all_images()  # a bad image fails now, not in the middle of the run
        del training_set
    except (OSError, ValueError) as err:
        raise click.ClickException(f'--data: {err}') from err
    if opts.cond:
        if not c.training_set_kwargs.use_labels:
            raise click.ClickException(f'--cond=1 needs labels, but {data} has none in dataset.json; '
                                       f'add them with dataset_tool.py or use --cond=0')
    else:
        c.training_set_kwargs.use_labels = False
    if opts.subset is not None:
        if opts.subset > c.training_set_kwargs.max_size:
            raise click.ClickException(f'--subset={opts.subset} is larger than the dataset ({c.training_set_kwargs.max_size} images)')
        if opts.subset < c.training_set_kwargs.max_size:
            c.training_set_kwargs.max_size = opts.subset
            c.training_set_kwargs.random_seed = opts.seed
    if opts.mirror:
        if c.training_set_kwargs.class_name == toy_lab.TOY_DATASET_CLASS:
            raise click.ClickException(f'--mirror=1 does not apply to toy data ({data}: 2-D points, not images); drop --mirror')
        c.training_set_kwargs.xflip = True
    return name

# G and D: --cbase, --cmax, --map, --mbstd-group over the --cfg values (mixed precision is set later by --fp32).
def _network_kwargs(c, opts, run, spec):
    cbase = opts.cbase if opts.cbase is not None else int(spec.fmaps * 32768)
    cmax = opts.cmax if opts.cmax is not None else spec.get('cmax', 512)
    c.G_kwargs = dnnlib.EasyDict(class_name='training.networks.Generator', z_dim=512, w_dim=512,
                                 mapping_kwargs=dnnlib.EasyDict(), synthesis_kwargs=dnnlib.EasyDict())
    c.G_kwargs.mapping_kwargs.num_layers = opts.map if opts.map is not None else spec.map
    c.G_kwargs.synthesis_kwargs.channel_base = cbase
    c.G_kwargs.synthesis_kwargs.channel_max = cmax
    c.G_kwargs.synthesis_kwargs.num_fp16_res = 4
    c.G_kwargs.synthesis_kwargs.conv_clamp = 256
    c.D_kwargs = dnnlib.EasyDict(class_name='training.networks.Discriminator', block_kwargs=dnnlib.EasyDict(),
                                 mapping_kwargs=dnnlib.EasyDict(), epilogue_kwargs=dnnlib.EasyDict())
    c.D_kwargs.epilogue_kwargs.mbstd_group_size = opts.mbstd_group if opts.mbstd_group is not None else spec.mbstd
    c.D_kwargs.channel_base = cbase
    c.D_kwargs.channel_max = cmax
    c.D_kwargs.num_fp16_res = 4
    c.D_kwargs.conv_clamp = 256
    if run.cfg_name == 'cifar':
        c.D_kwargs.architecture = 'orig'  # disable residual skip connections

# Adam for G and D: --glr, --dlr over the --cfg learning rate.
def _optimizer_kwargs(c, opts, spec):
    c.G_opt_kwargs = dnnlib.EasyDict(class_name='torch.optim.Adam', lr=spec.lrate, betas=[0, 0.99], eps=1e-8)
    c.D_opt_kwargs = dnnlib.EasyDict(class_name='torch.optim.Adam', lr=spec.lrate, betas=[0, 0.99], eps=1e-8)
    if opts.glr is not None:
        c.G_opt_kwargs.lr = opts.glr
    if opts.dlr is not None:
        c.D_opt_kwargs.lr = opts.dlr

# The loss: R1 weight (--gamma over the --cfg value); cifar turns off path length regularization and style mixing.
def _loss_kwargs(c, opts, run, spec):
    c.loss_kwargs = dnnlib.EasyDict(class_name='training.loss.StyleGAN2Loss', r1_gamma=spec.gamma)
    if run.cfg_name == 'cifar':
        c.loss_kwargs.pl_weight = 0  # disable path length regularization
        c.loss_kwargs.style_mixing_prob = 0  # disable style mixing
    if opts.gamma is not None:
        c.loss_kwargs.r1_gamma = opts.gamma
    if opts.gan_loss is not None:
        c.loss_kwargs.gan_loss = opts.gan_loss

# Length, batch and EMA: --kimg, --batch, --batch-gpu over the --cfg values, with the batch divisibility checks.
def _schedule_kwargs(c, opts, run, spec):
    gpus = run.gpus
    c.total_kimg = spec.kimg
    c.batch_size = spec.mb
    c.batch_gpu = max(spec.mb // spec.ref_gpus, 1)
    c.ema_kimg = spec.ema
    c.ema_rampup = spec.ramp
    if opts.kimg is not None:
        c.total_kimg = int(opts.kimg) if float(opts.kimg).is_integer() else opts.kimg
    if opts.batch is not None:
        if opts.batch % gpus != 0:
            raise click.ClickException(f'--batch={opts.batch} must be divisible by --gpus={gpus}')
        c.batch_size = opts.batch
        c.batch_gpu = opts.batch // gpus
    if opts.batch_gpu is not None:
        c.batch_gpu = opts.batch_gpu
    if c.batch_size % (gpus * c.batch_gpu) != 0:
        raise click.ClickException(_batch_message(c.batch_size, gpus, c.batch_gpu))
    mbstd = c.D_kwargs.epilogue_kwargs.mbstd_group_size
    if c.batch_gpu % min(mbstd, c.batch_gpu) != 0:
        raise click.ClickException(f'--mbstd-group={mbstd} must divide the per-process batch (batch_gpu={c.batch_gpu}); '
                                   f'choose a divisor of {c.batch_gpu}, e.g. --mbstd-group={_largest_divisor(c.batch_gpu, mbstd)}')

# Discriminator augmentation: --aug, --p, --target, --augpipe.
def _augment_kwargs(c, opts):
    aug = opts.aug if opts.aug is not None else 'ada'
    if aug == 'ada':
        c.ada_target = 0.6
    elif aug == 'fixed' and opts.p is None:
        raise click.ClickException('--aug=fixed needs --p, the fixed augmentation probability')
    if opts.p is not None:
        if aug != 'fixed':
            raise click.ClickException(f'--p can only be given with --aug=fixed (now --aug={aug})')
        c.augment_p = opts.p
    if opts.target is not None:
        if aug != 'ada':
            raise click.ClickException(f'--target can only be given with --aug=ada (now --aug={aug})')
        c.ada_target = opts.target
    if aug == 'noaug':
        if opts.augpipe is not None:
            raise click.ClickException('--augpipe cannot be given with --aug=noaug; drop --augpipe or choose --aug=ada/fixed')
    else:
        augpipe = opts.augpipe if opts.augpipe is not None else 'bgc'
        c.augment_kwargs = dnnlib.EasyDict(class_name='training.augment.AugmentPipe', **augpipe_specs[augpipe])

# --resume, --resume-exact, --freezed. Exact when the pickle holds a resume_state, else weights only (official
# settings). Returns the resume_state (None for a weights-only resume or none).
def _resume_kwargs(c, opts):
    resume = opts.resume if opts.resume is not None else 'noresume'
    resume_state = resume_check = None
    if resume != 'noresume':
        if resume in resume_specs:
            c.resume_pkl = resume_specs[resume]
        elif resume == 'latest':
            c.resume_pkl = find_latest_snapshot(opts.outdir)
        else:
            try:
                c.resume_pkl = legacy.resolve_network_pkl(resume)
            except legacy.NetworkPickleError as err:
                raise click.ClickException(f'--resume: {err}; or "latest", or one of {", ".join(resume_specs)}') from err
        if resume not in resume_specs:  # else the training loop downloads the official shortcuts
            _remove_stale_snapshot_temps(c.resume_pkl)
            data = _load_resume_pickle(c.resume_pkl)
            resume_state = data.get('resume_state', None) if opts.resume_exact is not False and resume not in resume_specs else None
            resume_check = (data, c.resume_pkl, resume_state is not None)
        if resume_state is None:
            c.ada_kimg = 100  # make ADA react faster at the beginning
            c.ema_rampup = None  # disable EMA rampup
    if opts.freezed is not None:
        c.D_kwargs.block_kwargs.freeze_layers = opts.freezed
    return resume_state, resume_check

# A kill during a snapshot write leaves ".network-snapshot-<kimg>.pkl.<hex>.tmp"
# in the run folder (dnnlib.util.atomic_write); remove those of the run being
# resumed, whose writer is gone.
def _remove_stale_snapshot_temps(resume_pkl):
    if os.path.isfile(resume_pkl):
        for path in dnnlib.util.remove_stale_temp_files(os.path.dirname(os.path.abspath(resume_pkl)), 'network-snapshot-*.pkl'):
            print(f'Removed "{path}", a partial snapshot left by an interrupted write.')

# --fp32, --nhwc, --nobench, --allow-tf32, --workers. Mixed precision only pays off on a GPU, so it is off by default on CPU.
def _performance_kwargs(c, opts, run):
    fp32 = opts.fp32 if opts.fp32 is not None else not run.cuda
    if fp32:
        c.G_kwargs.synthesis_kwargs.num_fp16_res = c.D_kwargs.num_fp16_res = 0
        c.G_kwargs.synthesis_kwargs.conv_clamp = c.D_kwargs.conv_clamp = None
    if opts.nhwc:
        c.G_kwargs.synthesis_kwargs.fp16_channels_last = c.D_kwargs.block_kwargs.fp16_channels_last = True
    if opts.nobench:
        c.cudnn_benchmark = False
    if opts.allow_tf32:
        c.allow_tf32 = True
    c.data_loader_kwargs.num_workers = opts.workers if opts.workers is not None else run.demo.get('workers', 3)

# Our additions, after the official keys: --tick, and whether a resume is exact.
def _loop_extra_kwargs(c, opts, run):
    c.kimg_per_tick = opts.tick if opts.tick is not None else run.demo.get('tick', 4)
    if 'resume_pkl' in c:
        c.resume_exact = opts.resume_exact is not False

# --cfg=toy: the toy lab's MLP networks (training/toy_networks.py) and its training setup, over what the
# builders above wrote: Adam with betas (0.5, 0.999) as in the papers' toy GANs, no regularisation unless --gamma
# is given, no style mixing, no EMA, no augmentation, R1/pl in the main phases (no lazy phases). Toy data and the
# toy config go together; the StyleGAN-only options are refused.
def _toy_kwargs(c, opts, run):
    toy_data_given = toy_lab.is_toy_data(c.training_set_kwargs.path)
    if run.cfg_name != 'toy':
        if toy_data_given:
            raise click.ClickException(f'--data={opts.data} is toy data (2-D points); train it with --cfg=toy, not --cfg={run.cfg_name}')
        return
    if not toy_data_given:
        raise click.ClickException(f'--cfg=toy needs toy data: --data=toy:NAME ({", ".join(toy_data.TOY_SETS)}) or an N x 2 .npy/.csv file')
    for key in ('cbase', 'cmax', 'map', 'mbstd_group', 'freezed', 'nhwc', 'augpipe', 'p', 'target'):
        if opts.get(key) is not None:
            raise click.ClickException(f'--{key.replace("_", "-")} does not apply to --cfg=toy (MLP networks, no augmentation); drop it')
    if opts.aug not in (None, 'noaug'):
        raise click.ClickException(f'--aug={opts.aug}: toy points are not augmented; drop --aug or use --aug=noaug')
    c.G_kwargs = dnnlib.EasyDict(class_name='training.toy_networks.ToyGenerator', z_dim=2, w_dim=2,
                                 mapping_kwargs=dnnlib.EasyDict(), synthesis_kwargs=dnnlib.EasyDict())
    c.D_kwargs = dnnlib.EasyDict(class_name='training.toy_networks.ToyDiscriminator')
    for opt_kwargs in (c.G_opt_kwargs, c.D_opt_kwargs):
        opt_kwargs.betas = [0.5, 0.999]
    c.loss_kwargs.pl_weight = 0
    c.loss_kwargs.style_mixing_prob = 0
    c.G_reg_interval = c.D_reg_interval = None
    for key in ('augment_kwargs', 'augment_p', 'ada_target'):
        c.pop(key, None)

# The papers' training knobs (docs/toy-lab.md "The papers' knobs"), for every --cfg, over what the builders above
# wrote and before the priors read it: steps per iteration and their order. Each key is written only when its option
# is given, so runs without them keep their training_options.json.
def _paper_kwargs(c, opts, run):
    _latent_and_toy_net(c, opts, run)
    _optimizer_choice(c, opts)
    if opts.clip is not None:
        c.D_clip = opts.clip
    if opts.g_steps is not None:
        c.G_steps = opts.g_steps
    if opts.d_steps is not None:
        c.D_steps = opts.d_steps
    if opts.step_order is not None:
        c.step_order = opts.step_order
    _lr_decay(c, opts)
    _length_in_steps(c, opts)

# --lr-decay, --lr-decay-step: the loop's lr_decay_kwargs.
def _lr_decay(c, opts):
    kind = opts.lr_decay if opts.lr_decay is not None else 'none'
    if opts.lr_decay_step is not None and kind != 'step':
        raise click.ClickException(f'--lr-decay-step applies to --lr-decay=step only (now --lr-decay={kind}); add --lr-decay=step or drop it')
    if kind == 'linear':
        c.lr_decay_kwargs = dnnlib.EasyDict(kind='linear')
    elif kind == 'step':
        rate, epochs = opts.lr_decay_step if opts.lr_decay_step is not None else (0.9, 50)
        c.lr_decay_kwargs = dnnlib.EasyDict(kind='step', rate=rate, epochs=epochs)

# --steps: the run length in G steps. total_kimg is what those steps show D (for the ticks and the resume check).
def _length_in_steps(c, opts):
    if opts.steps is None:
        return
    if opts.kimg is not None:
        raise click.ClickException(f'--steps={opts.steps} and --kimg={opts.kimg:g} both set the run length; give one of them')
    g_steps, d_steps = c.get('G_steps', 1), c.get('D_steps', 1)
    if opts.steps % g_steps != 0:
        raise click.ClickException(f'--steps={opts.steps} must be a multiple of --g-steps={g_steps} (whole iterations); '
                                   f'use --steps={opts.steps - opts.steps % g_steps + g_steps}')
    c.total_steps = opts.steps
    nimg = opts.steps // g_steps * d_steps * c.batch_size
    c.total_kimg = nimg // 1000 if nimg % 1000 == 0 else nimg / 1000

# --toy-net, --z-dist, --z-dim. A preset sets the networks' layers and the latent defaults of its paper;
# --z-dist and --z-dim override those. The latent distribution lives in the toy G (its mapping turns the
# N(0, I) input into it), so generate.py, the metrics and the snapshot grids use it without options.
def _latent_and_toy_net(c, opts, run):
    from training import toy_networks
    if not toy_lab.is_toy_networks(c.G_kwargs):
        for key, given in (('toy-net', opts.toy_net), ('z-dist', opts.z_dist if opts.z_dist != 'normal' else None)):
            if given is not None:
                raise click.ClickException(f'--{key}={given} applies to --cfg=toy only (the StyleGAN mapping network takes '
                                           f'N(0, I) latents); drop it or train toy data')
        if opts.z_dim is not None:
            c.G_kwargs.z_dim = opts.z_dim
        return
    preset = toy_networks.TOY_NET_PRESETS[opts.toy_net if opts.toy_net is not None else 'default']
    if opts.toy_net is not None:
        c.G_kwargs.synthesis_kwargs.update(preset['G'])
        c.D_kwargs.update(preset['D'])
    z_dist = opts.z_dist if opts.z_dist is not None else (preset['z_dist'] if opts.toy_net is not None else None)
    z_dim = opts.z_dim if opts.z_dim is not None else (preset['z_dim'] if opts.toy_net is not None else None)
    if z_dist is not None:
        c.G_kwargs.mapping_kwargs.z_dist = z_dist
    if z_dim is not None:
        c.G_kwargs.z_dim = c.G_kwargs.w_dim = z_dim  # the toy mapping is w = z

# --optim and --betas on G's and D's optimizers, keeping their learning rates (--glr, --dlr, the --cfg value).
def _optimizer_choice(c, opts):
    optim = opts.optim if opts.optim is not None else 'adam'
    if opts.betas is not None and optim != 'adam':
        raise click.ClickException(f'--betas applies to --optim=adam only (now --optim={optim}); drop --betas')
    for key in ('G_opt_kwargs', 'D_opt_kwargs'):
        if optim == 'rmsprop':
            c[key] = dnnlib.EasyDict(class_name='torch.optim.RMSprop', lr=c[key].lr, alpha=0.99, eps=1e-8)
        elif optim == 'sgd':
            c[key] = dnnlib.EasyDict(class_name='torch.optim.SGD', lr=c[key].lr)
        elif opts.betas is not None:
            c[key].betas = list(opts.betas)

# --lr-decay-step=RATE,EPOCHS: a factor in (0, 1] and a positive number of epochs.
class DecayStepType(click.ParamType):
    name = 'RATE,EPOCHS'

    def convert(self, value, param, ctx):
        if isinstance(value, (list, tuple)):
            return list(value)
        try:
            rate, epochs = [float(item) for item in str(value).split(',')]
        except ValueError:
            rate = epochs = -1
        if not (0 < rate <= 1 and epochs > 0):
            self.fail(f'"{value}" is not RATE,EPOCHS with RATE in (0, 1] and EPOCHS > 0, e.g. --lr-decay-step=0.9,50', param, ctx)
        return [rate, epochs]

# --betas=B1,B2: two numbers in [0, 1).
class BetasType(click.ParamType):
    name = 'B1,B2'

    def convert(self, value, param, ctx):
        if isinstance(value, (list, tuple)):
            return list(value)
        try:
            betas = [float(item) for item in str(value).split(',')]
        except ValueError:
            betas = []
        if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
            self.fail(f'"{value}" is not two numbers in [0, 1) separated by a comma, e.g. --betas=0.5,0.999', param, ctx)
        return betas

# The run folder's name after its number (official pattern): the dataset, then each option the user gave that
# changes the run, in a fixed order. Values are read from the final config where it holds them.
def run_description(c, opts, run, dataset_name):
    t = c.training_set_kwargs
    parts = [dataset_name]
    parts += ['cond'] if t.use_labels else []
    parts += [f'subset{opts.subset}'] if opts.subset is not None else []
    parts += ['mirror'] if t.xflip else []
    parts += [run.cfg_name + (f'{run.gpus}' if run.cfg_name == 'auto' else '')]
    parts += [f'gamma{c.loss_kwargs.r1_gamma:g}'] if opts.gamma is not None else []
    parts += [opts.gan_loss] if opts.gan_loss is not None else []
    parts += [f'kimg{c.total_kimg:g}'] if opts.kimg is not None else []
    parts += [f'batch{c.batch_size}'] if opts.batch is not None else []
    parts += [opts.aug] if opts.aug is not None else []
    parts += [f'p{c.augment_p:g}'] if 'augment_p' in c else []
    parts += [f'target{c.ada_target:g}'] if opts.target is not None else []
    parts += [opts.augpipe] if opts.augpipe is not None else []
    if opts.resume is not None:
        parts += [{'noresume': 'noresume', 'latest': 'resumelatest'}.get(opts.resume)
                  or (f'resume{opts.resume}' if opts.resume in resume_specs else 'resumecustom')]
    parts += [f'freezed{opts.freezed}'] if opts.freezed is not None else []
    parts += list(opts.prior) if opts.prior not in (None, [], ['none']) else []
    return '-'.join(parts)

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
    # A loop option newer than the snapshot counts as unchanged while it has its default value.
    plain = json.loads(json.dumps(defaults, default=str))
    new = {k: v for k, v in new.items() if k in old or (k not in _resume_ignored_options and not (k in plain and v == plain[k]))}
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
        training_stats.reset()  # a run starts from no statistics (an earlier run's NaN in this process must not leak in)
        if c.num_gpus > 1:
            training_stats.init_multiprocessing(rank=rank, sync_device=device)
        if rank != 0:
            custom_ops.verbosity = 'none'
        if device.type == 'cpu' and num_local_processes > 1:
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // num_local_processes))
        if device.type == 'cpu' and toy_lab.is_toy_networks(c.G_kwargs):
            torch.set_num_threads(1)  # the toy MLPs' tiny matmuls: threads cost more than they gain (17x on a busy CPU)
        try:
            training_loop.training_loop(rank=rank, device=device, **c)
        except training_loop.TrainingDivergedError as err:
            raise click.ClickException(str(err)) from err
        except OSError as err:  # disk full, quota, permissions, a bad file in the dataset, ...
            where = f' "{err.filename}"' if err.filename else ''
            raise click.ClickException(f'training stopped at an I/O error{where}: {err.strerror or err}; fix it (e.g. free disk '
                                       f'space) and continue with --resume={c.run_dir}') from err

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

@click.command(cls=priors.cli.PriorCommand, context_settings=dict(max_content_width=120))
@safe_load.cli_options
@click.pass_context

# General options.
@click.option('--outdir',       help='Where to save the results', metavar='DIR', required=True)
@click.option('--gpus',         help='Number of processes: GPUs, or CPU processes without CUDA  [default: 1]', type=click.IntRange(min=1))
@click.option('--snap',         help='Snapshot interval in ticks  [default: 50; demo: 2]', type=click.IntRange(min=1), metavar='INT')
@click.option('--metrics',      help='Metrics at each snapshot, comma-separated, or "none"', type=CommaSeparatedList(), default='none', show_default=True)
@click.option('--seed',         help='Random seed', type=click.IntRange(min=0, max=2**32 - 1), default=0, show_default=True)
@click.option('-n', '--dry-run', help='Print the training options and exit', is_flag=True)

# Dataset.
@click.option('--data',         help='Training data (folder or zip), toy data (toy:ring8, toy:ring6, toy:grid25, options as in '
                                     'toy:ring8,rare=0.02; or an N x 2 .npy/.csv file); omit it for the built-in demo data', metavar='PATH')
@click.option('--cond',         help='Train a conditional model on the dataset labels', type=bool, default=False, metavar='BOOL')
@click.option('--subset',       help='Train on a random subset of this many images', type=click.IntRange(min=1), metavar='INT')
@click.option('--mirror',       help='Add x-flipped copies of the images', type=bool, default=False, metavar='BOOL')

# Base config.
@click.option('--cfg',          help='Base config  [default: auto with --data, toy with toy data, demo without]', type=click.Choice(cfg_names))
@click.option('--gamma',        help='R1 regularization weight  [default: from --cfg]', type=cli.FiniteFloat(min=0))
@click.option('--gan-loss',     help='Adversarial loss: logistic = non-saturating, softplus(-D(G(z))) for G (StyleGAN2); wgan-gp = '
                                     'Wasserstein + gradient penalty 10 (Gulrajani et al. 2017); lsgan = least squares, a=0, b=c=1 '
                                     '(Mao et al. 2017); hinge (Lim & Ye 2017); wgan = plain Wasserstein, G -l, D l_fake - l_real (Arjovsky et al. '
                                     '2017; pair with --clip=0.01). Equations: docs/toy-lab.md  [default: logistic]',
              type=click.Choice(list(GAN_LOSSES)))
@click.option('--kimg',         help='Training duration in thousands of images  [default: from --cfg]', type=cli.FiniteFloat(min=0, min_open=True))
@click.option('--batch',        help='Total batch size over all processes  [default: from --cfg]', type=click.IntRange(min=1))
@click.option('--batch-gpu',    help='Samples per process at a time (gradient accumulation below --batch / --gpus)', type=click.IntRange(min=1))
@click.option('--cbase',        help='Capacity multiplier (channel_base)  [default: from --cfg]', type=click.IntRange(min=1))
@click.option('--cmax',         help='Max. feature maps (channel_max)  [default: from --cfg]', type=click.IntRange(min=1))
@click.option('--map',          help='Mapping network depth  [default: from --cfg]', type=click.IntRange(min=1))
@click.option('--glr',          help='G learning rate  [default: from --cfg]', type=cli.FiniteFloat(min=0, min_open=True))
@click.option('--dlr',          help='D learning rate  [default: from --cfg]', type=cli.FiniteFloat(min=0, min_open=True))
@click.option('--mbstd-group',  help='Minibatch std group size  [default: from --cfg]', type=click.IntRange(min=1))
@click.option('--tick',         help='Progress interval in thousands of images  [default: 4; demo: 1]', type=cli.FiniteFloat(min=0, min_open=True))

# The papers' training knobs (docs/toy-lab.md), for every --cfg.
@click.option('--d-steps',      help='D steps per iteration, each on its own real batch and latents; kimg counts the reals D trains on '
                                     '[masked paper §4: 5 critic steps per G step]  [default: 1]', type=click.IntRange(min=1), metavar='INT')
@click.option('--g-steps',      help='G steps per iteration, each on its own real batch and latents [RFGAN §4.2: G updated twice per D '
                                     'update]  [default: 1]', type=click.IntRange(min=1), metavar='INT')
@click.option('--step-order',   help='Which network steps first in an iteration [P²GAN, MDGAN: d-first (spec §1.3, §3.3)]  [default: g-first]',
              type=click.Choice(['g-first', 'd-first']))
@click.option('--steps',        help='Training length in G steps (iterations x --g-steps), instead of --kimg [masked paper §4: 50 epochs = '
                                     '5,000; unrolled-GAN ring: 25,000; MDGAN spec §3.6.14: 20,000]  [default: --kimg]',
              type=click.IntRange(min=1), metavar='INT')
@click.option('--lr-decay',     help='G and D learning-rate schedule: none; linear = lr x (1 - progress), 0 at the end of the run; step = '
                                     'lr x RATE every EPOCHS epochs (--lr-decay-step) [P²GAN §5.2: 0.9 every 50 epochs]  [default: none]',
              type=click.Choice(['none', 'linear', 'step']))
@click.option('--lr-decay-step', help='RATE,EPOCHS of --lr-decay=step; an epoch is one pass of D over the training set  [default: 0.9,50]',
              type=DecayStepType())
@click.option('--z-dist',       help='Latent distribution of G: normal = N(0, I); uniform = U(-1, 1)^d [masked paper Table 1]; uniform01 = '
                                     'U[0, 1]^d [MDGAN App. C]. Kept in G, so generate.py and the metrics use it too; toy only  '
                                     '[default: normal, or the --toy-net preset\'s]', type=click.Choice(['normal', 'uniform', 'uniform01']))
@click.option('--z-dim',        help='Latent size of G [masked Table 1: 2; MDGAN App. C: 3; unrolled GAN: 256]  [default: 2 for toy, 512 '
                                     'otherwise, or the --toy-net preset\'s]', type=click.IntRange(min=1), metavar='INT')
@click.option('--toy-net',      help='Toy networks of a paper: goerttler-table1 (Goerttler & Kloft Table 1: G tanh output, D 3 x 128 tanh, '
                                     'U(-1,1)^2 latents), goerttler-table1-sigmoid (its critic with the sigmoid inside D, spec §2.2), che-appc '
                                     '(Che et al. App. C: D one 128 ReLU layer, U[0,1]^3 latents), unrolled (Metz et al. 2017 ring: G and D '
                                     '2 x 128 ReLU, 256-D N(0, I) latents); docs/toy-lab.md  [default: default = today\'s toy networks]',
              type=click.Choice(['default', 'goerttler-table1', 'goerttler-table1-sigmoid', 'che-appc', 'unrolled']))
@click.option('--optim',        help='Optimizer of G and D, at --glr/--dlr: adam; rmsprop (alpha 0.99, eps 1e-8) [WGAN paper, masked paper '
                                     'spec §2.6.10]; sgd (no momentum)  [default: adam]', type=click.Choice(['adam', 'rmsprop', 'sgd']))
@click.option('--betas',        help='Adam betas of G and D [P²GAN §5.2: 0,0.999; MDGAN App. C and the unrolled-GAN ring: 0.5,0.999]  '
                                     '[default: from --cfg: 0,0.99; toy: 0.5,0.999]', type=BetasType())
@click.option('--clip',         help='Clip every D parameter to [-C, C] after each D step (weight clipping) [WGAN: 0.01 with --gan-loss=wgan; '
                                     'masked paper spec §2.6.10]; allowed with every loss  [default: none]', type=cli.FiniteFloat(min=0, min_open=True),
              metavar='C')

# Discriminator augmentation.
@click.option('--aug',          help='Augmentation mode  [default: ada]', type=click.Choice(['noaug', 'ada', 'fixed']))
@click.option('--p',            help='Augmentation probability for --aug=fixed', type=cli.FiniteFloat(min=0, max=1))
@click.option('--target',       help='ADA target value for --aug=ada  [default: 0.6]', type=cli.FiniteFloat(min=0, max=1))
@click.option('--augpipe',      help='Augmentation pipeline  [default: bgc]', type=click.Choice(list(augpipe_specs)))

# Resume and transfer learning.
@click.option('--resume',       help='Resume from a network pickle: PATH (a snapshot, or a run folder: its newest snapshot), URL, "latest" or a shortcut name', metavar='PKL')
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
      # The toy lab: 8 Gaussians on a ring, baseline and PriorGAN, < 1 minute each on a CPU.
      python train.py --outdir=runs --cfg=toy --data=toy:ring8 --metrics=toy2k
      python train.py --outdir=runs --cfg=toy --data=toy:ring8,rare=0.02 --prior=gmm
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
      toy        the toy lab: 2-D point sets (--data=toy:ring8 ...), MLP G and D
                 as in the papers, under a minute on a CPU (docs/toy-lab.md)

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
            try:
                torch.multiprocessing.spawn(fn=_spawned_process, args=(c, temp_dir), nprocs=c.num_gpus, start_method='spawn')
            except torch.multiprocessing.ProcessRaisedException as err:
                # The child printed its traceback; its last line holds the error, e.g. a ClickException's message.
                last = str(err).strip().splitlines()[-1]
                raise click.ClickException(f'a training process failed: {last.split(": ", 1)[-1]}') from err

# Options, run folder, printout and training_options.json; None for a dry run.
def _prepare_run(opts):
    cli.check_output_folder(opts['outdir'], '--outdir')
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
