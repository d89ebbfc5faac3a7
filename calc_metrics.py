"""Evaluate metrics of a network pickle; for a snapshot inside a training run folder the results are appended to that run's metric-<name>.jsonl files."""

import copy
import os
import pickle
import tempfile

import click
import torch

import dnnlib
import legacy
from dnnlib import cli
from dnnlib import plugins
from metrics import metric_main
from metrics import metric_utils
from torch_utils import misc
from torch_utils import safe_load as safe_loading
from training import toy_data
from training import toy_lab
from training import toy_networks

plugins.import_plugins()  # their metrics register themselves, with their extra options

#----------------------------------------------------------------------------
# Device of process `rank`: CUDA device `rank` when the chosen device is CUDA, else the CPU.

def _process_device(device_type, rank):
    if device_type == 'cuda':
        device = torch.device('cuda', rank)
        torch.cuda.set_device(device)
        return device
    return torch.device(device_type)

#----------------------------------------------------------------------------
# Fast cuDNN autotuning, but no TF32, so values do not depend on the GPU generation.

def _cuda_settings():
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False

#----------------------------------------------------------------------------
# Work of one process: evaluate all metrics in one planned run; rank 0 reports.

def evaluate_metrics(rank, args):
    device = args.device if args.num_gpus == 1 else _process_device(args.device.type, rank)
    if device.type == 'cuda':
        _cuda_settings()
    G = copy.deepcopy(args.G).eval().requires_grad_(False).to(device)
    if rank == 0 and args.verbose:
        misc.print_module_summary(G, [torch.zeros([1, G.z_dim], device=device), torch.zeros([1, G.c_dim], device=device)])

    progress = metric_utils.ProgressMonitor(verbose=args.verbose)
    results = metric_main.calc_metrics(args.metrics, G=G, dataset_kwargs=args.dataset_kwargs, num_gpus=args.num_gpus,
                                       rank=rank, device=device, progress=progress, snapshot=args.snapshot,
                                       prior_sampling=args.get('prior_sampling', True), classifier=args.get('classifier'),
                                       **args.get('metric_kwargs', {}))
    if rank == 0:
        for result in results:
            metric_main.report_metric(result, run_dir=args.run_dir, snapshot_pkl=args.network_pkl)
    return results

# Entry point of a spawned process.
def _spawned_process(rank, args, temp_dir):
    init_file = os.path.abspath(os.path.join(temp_dir, '.torch_distributed_init'))
    init_method = ('file:///' + init_file.replace('\\', '/')) if os.name == 'nt' else ('file://' + init_file)
    backend = 'nccl' if args.device.type == 'cuda' else 'gloo'
    torch.distributed.init_process_group(backend=backend, init_method=init_method, rank=rank, world_size=args.num_gpus)
    try:
        evaluate_metrics(rank, args)
    finally:
        torch.distributed.destroy_process_group()

#----------------------------------------------------------------------------
# Option parsing helpers.

def _parse_metrics(value):
    names = [name.strip() for name in value.split(',') if name.strip()]
    valid = metric_main.list_valid_metrics()
    if not names:
        raise click.ClickException(f'--metrics: give at least one metric; valid metrics: {", ".join(valid)}')
    for name in names:
        if not metric_main.is_valid_metric(name):
            raise click.ClickException(f'--metrics: unknown metric "{name}"; valid metrics: {", ".join(valid)}')
    return names

def _pick_device(name, gpus):
    if name is None:
        device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    else:
        try:
            device = torch.device(name)
        except RuntimeError as err:
            raise click.ClickException(f'--device: "{name}" is not a torch device ({err}); use e.g. "cpu" or "cuda"') from err
    if device.type == 'cuda':
        if not torch.cuda.is_available():
            raise click.ClickException(f'--device={name}, but CUDA is not available here; use --device=cpu')
        if gpus > torch.cuda.device_count():
            raise click.ClickException(f'--gpus={gpus}, but only {torch.cuda.device_count()} CUDA device(s) are visible; '
                                       f'lower --gpus or use --device=cpu')
    else:
        cli.check_cpu_processes(gpus)
    return device

# (resolved path, snapshot dict) of --network.
def _load_G(network_pkl):
    try:
        network_pkl = legacy.resolve_network_pkl(network_pkl)
    except legacy.NetworkPickleError as err:
        raise click.ClickException(f'--network: {err}') from err
    try:
        with dnnlib.util.open_url(network_pkl, verbose=True) as f:
            data = legacy.load_network_pkl(f)  # safe mode unless --trust-pickle
    except legacy.NetworkPickleError as err:  # its message names the file
        raise click.ClickException(f'--network: {err}') from err
    except (OSError, EOFError, pickle.UnpicklingError, ValueError) as err:
        raise click.ClickException(f'--network: cannot load "{network_pkl}": {err}') from err
    return network_pkl, data

# Whether each metric fits the network, checked before any work: the metrics of this package measure images
# (toy2k: 2-D points); classifier metrics get their classifier loaded (safely) and its channels compared.
# Metrics of plugins decide for themselves.
def _check_metrics_apply(metric_names, G, network_pkl, classifier):
    from metrics import paper_metrics # pylint: disable=import-outside-toplevel
    toy = toy_networks.is_point_generator(G)
    ours = lambda name: name in vars(metric_main) or name in vars(paper_metrics)
    for name in metric_names:
        if not ours(name):
            continue
        if toy and name != 'toy2k':
            raise click.ClickException(f'--metrics: {name} measures images, but "{network_pkl}" is a toy network (2-D points); '
                                       f'use --metrics=toy2k')
        if not toy and name == 'toy2k':
            raise click.ClickException(f'--metrics: toy2k measures 2-D point sets, but "{network_pkl}" is an image network '
                                       f'({G.img_resolution}x{G.img_resolution}, {G.img_channels} channels); use image metrics '
                                       f'such as fid50k_full')
    if any(name in ('mode10k', 'miss100k') for name in metric_names):
        from metrics import classifier as classifier_module # pylint: disable=import-outside-toplevel
        try:
            path = classifier_module.classifier_path(classifier, what=', '.join(n for n in metric_names if n in ('mode10k', 'miss100k')))
            probs = classifier_module.load_classifier(path)
        except (OSError, ValueError) as err:
            raise click.ClickException(f'--classifier: {err}') from err
        channels = int(getattr(probs, 'in_channels', 0) or 0)
        if channels not in (0, G.img_channels) and not (channels == 1 and G.img_channels == 3):
            raise click.ClickException(f'--classifier: "{path}" classifies {channels}-channel images, but the network makes '
                                       f'{G.img_channels}-channel images; train a classifier on this dataset with train_classifier.py')

# Dataset kwargs from --data or the pickle, made to match G; the dataset is opened once to check it.
def _dataset_kwargs(data, mirror, snapshot, G, network_pkl):
    if data is not None and toy_lab.is_toy_data(data):
        if not toy_networks.is_point_generator(G):
            raise click.ClickException(f'--data={data} is toy data (2-D points), but "{network_pkl}" is an image network; '
                                       f'give its image dataset (folder or zip)')
        kwargs = toy_data.toy_dataset_kwargs(data)
    elif data is not None:
        kwargs = dnnlib.EasyDict(class_name='training.dataset.ImageFolderDataset', path=data)
    elif snapshot.get('training_set_kwargs') is not None:
        kwargs = dnnlib.EasyDict(snapshot['training_set_kwargs'])
    else:
        raise click.ClickException(f'--data: "{network_pkl}" does not record its training set; give the dataset with --data=PATH')
    kwargs.resolution = G.img_resolution
    kwargs.use_labels = (G.c_dim != 0)
    if mirror is not None:
        kwargs.xflip = mirror
    try:
        dataset = dnnlib.util.construct_class_by_name(**kwargs)
        if hasattr(dataset, 'check_all_images'):
            dataset.check_all_images()  # a bad image fails now, not in the middle of the metric
        dataset.close()
    except (OSError, ValueError) as err:
        raise click.ClickException(f'--data: {err}') from err
    return kwargs

# The flags of the registered metric options (metric_main.MetricOption), in registration order.
def _metric_option_flags(fn):
    for option in reversed(metric_main.list_metric_options()):
        fn = click.option(option.flag, option.name, help=option.help, metavar=option.metavar)(fn)
    return fn

# The given metric options, each loaded and checked once: {name: value}.
def _load_metric_options(values):
    loaded = dict()
    for option in metric_main.list_metric_options():
        value = values.get(option.name)
        if value is None:
            continue
        try:
            loaded[option.name] = option.load(value) if option.load is not None else value
        except (OSError, ValueError) as err:
            raise click.ClickException(f'{option.flag}: {err}') from err
    return loaded

#----------------------------------------------------------------------------

@click.command(context_settings=dict(max_content_width=120))
@safe_loading.cli_options
@click.option('--network', 'network_pkl', help='Network pickle (path or URL), or a training run folder (its newest snapshot)', metavar='PATH', required=True)
@click.option('--metrics', help=f'Metrics to compute, comma-separated: {", ".join(metric_main.list_valid_metrics())}', metavar='LIST', default='fid50k_full', show_default=True)
@click.option('--data', help='Dataset to compare against  [default: the training set recorded in the pickle]', metavar='PATH')
@click.option('--mirror', help='Add x-flipped copies of the reals  [default: as recorded in the pickle]', type=bool, metavar='BOOL')
@click.option('--gpus', help='Number of processes (GPUs, or CPU processes without CUDA)', type=click.IntRange(min=1), default=1, show_default=True)
@click.option('--verbose', help='Print progress and the network summary', type=bool, default=True, metavar='BOOL', show_default=True)
@click.option('--device', help='Torch device  [default: cuda if available, else cpu]', metavar='DEVICE')
@_metric_option_flags
@click.option('--prior-sampling', help='Generate through the sample-time latent transform stored in the snapshot (e.g. by a latent prior); false = plain N(0, I) latents', type=bool, default=True, metavar='BOOL', show_default=True)
@click.option('--classifier', help='Classifier of mode10k/miss100k: a train_classifier.py file (read with weights_only=True: no code runs) or a TorchScript module (its TorchScript code runs)  [default: $SG2ADA_CLASSIFIER]', metavar='FILE')
def main(network_pkl, metrics, data, mirror, gpus, verbose, device, prior_sampling=True, classifier=None, **metric_kwargs):
    """Calculate quality metrics for a network pickle.

    \b
    Examples:
      # A snapshot of a training run: dataset from the pickle, results appended to the run's metric-*.jsonl.
      python calc_metrics.py --metrics=pr50k3_full --network=runs/00000-mydata-auto1/network-snapshot-000000.pkl
      # Any other pickle (path or URL): name the dataset; results are printed only.
      python calc_metrics.py --metrics=fid50k_full --data=~/datasets/ffhq.zip --mirror=1 --network=ffhq.pkl
      # Several metrics on the CPU; FID, KID and IS share one pass of generated images.
      python calc_metrics.py --metrics=fid50k_full,kid50k_full,is50k --network=snapshot.pkl --device=cpu

    \b
    Metrics of plugins (see --metrics) may add options of their own, listed
    below; each is loaded and checked once, before any metric runs.

    \b
    Feature detectors (Inception, VGG16) are downloaded once into the dnnlib
    cache (~/.cache/dnnlib/downloads or $DNNLIB_CACHE_DIR). Offline, point to
    local copies with SG2ADA_DETECTOR_INCEPTION_2015_12_05=/path/inception-2015-12-05.pt
    and SG2ADA_DETECTOR_VGG16=/path/vgg16.pt, or put both files in the folder
    named by SG2ADA_DETECTOR_DIR.
    """
    metric_names = _parse_metrics(metrics)
    device = _pick_device(device, gpus)
    network_pkl, snapshot = _load_G(network_pkl)
    G = snapshot['G_ema']
    _check_metrics_apply(metric_names, G, network_pkl, classifier)
    dataset_kwargs = _dataset_kwargs(data, mirror, snapshot, G, network_pkl)
    metric_kwargs = _load_metric_options(metric_kwargs)
    if classifier is not None and not os.path.isfile(classifier):
        raise click.ClickException(f'--classifier: file not found: "{classifier}"; train one with train_classifier.py')

    # A snapshot inside a run folder reports into that folder.
    run_dir = None
    if os.path.isfile(network_pkl):
        folder = os.path.dirname(os.path.abspath(network_pkl))
        if os.path.isfile(os.path.join(folder, 'training_options.json')):
            run_dir = folder
    args = dnnlib.EasyDict(G=G, metrics=metric_names, dataset_kwargs=dataset_kwargs, num_gpus=gpus, verbose=verbose,
                           run_dir=run_dir, network_pkl=network_pkl, device=device, snapshot=snapshot,
                           prior_sampling=prior_sampling, classifier=classifier, metric_kwargs=metric_kwargs)
    if verbose:
        print(f'Metrics: {", ".join(metric_names)}; dataset: {dataset_kwargs.get("path")}; device: {device}; processes: {gpus}')
        print(f'Results go to {run_dir}' if run_dir is not None else 'Results are printed only (no training run folder).')
        for name, value in metric_kwargs.items():
            print(f'{name}: {value!r}')

    # Evaluate here, or in one process per GPU.
    try:
        if gpus == 1:
            evaluate_metrics(0, args)
        else:
            with tempfile.TemporaryDirectory() as temp_dir:
                torch.multiprocessing.start_processes(_spawned_process, args=(args, temp_dir), nprocs=gpus, start_method='spawn')
    except (metric_utils.DetectorUnavailableError, metric_utils.MetricOptionsError) as err:
        option = getattr(err, 'option', None)  # the metric option at fault -> its flag here
        raise click.ClickException((f'--{option.replace("_", "-")}: ' if option else '') + str(err)) from err

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
