"""Count test images on modes a generator misses, with a third-party noisy discriminator (MDGAN §3.4, Tables 3-4); prints the count-vs-threshold curve."""

import json
import os
import pickle
import time

import click
import torch

import dnnlib
import legacy
from dnnlib import cli
from metrics import noisy_discriminator
from torch_utils import safe_load
from training import toy_lab

STATE_FILE = 'noisy-d-state.pt'
RESULT_FILE = 'missing-modes.json'

#----------------------------------------------------------------------------

def _load_snapshot(network_pkl):
    if not os.path.isfile(network_pkl):
        raise click.ClickException(f'--network: file not found: "{network_pkl}"')
    try:
        return legacy.load_network_pkl(network_pkl)  # safe mode unless --trust-pickle
    except (OSError, EOFError, pickle.UnpicklingError, ValueError) as err:
        raise click.ClickException(f'--network: cannot load "{network_pkl}": {err}') from err

def _parse_thresholds(value):
    try:
        thresholds = sorted(float(t) for t in value.split(',') if t.strip())
    except ValueError as err:
        raise click.ClickException(f'--thresholds: expected comma-separated numbers, got "{value}"') from err
    if not thresholds or not all(0 <= t < 1 for t in thresholds):  # NaN fails the comparison too
        raise click.ClickException(f'--thresholds: give numbers in [0, 1), got "{value}"')
    return thresholds

# The resumable state of an earlier run in --outdir (safe loading: tensors and plain data only).
def _load_state(state_path, device):
    try:
        state = safe_load.load_torch_file(state_path, what='state file', trust=False, map_location=device)
    except safe_load.FileLoadError as err:
        raise click.ClickException(f'--outdir: {err}; delete it to start over') from err
    if not isinstance(state, dict) or not isinstance(state.get('settings'), dict):
        raise click.ClickException(f'--outdir: the state file {state_path} is not a {STATE_FILE} written by missing_modes.py; '
                                   f'delete it to start over')
    return state

#----------------------------------------------------------------------------

@click.command(context_settings=dict(max_content_width=120))
@safe_load.cli_options
@click.option('--network', 'network_pkl', help='Network pickle (snapshot) whose G is tested; D* copies its D architecture', metavar='PATH', required=True)
@click.option('--test-data', help='Held-out test images (zip or folder) that D* scores', metavar='PATH', required=True)
@click.option('--data', help='Training images D* sees as real  [default: the training set recorded in the pickle]', metavar='PATH')
@click.option('--outdir', help='Folder of the state file (resume) and the result', metavar='DIR', required=True)
@click.option('--sigma', help='Std of the Gaussian input noise of D*, in [-1, 1] pixel units (MDGAN: 3.5 and 4.0)', type=cli.FiniteFloat(min=0), default=3.5, show_default=True)
@click.option('--kimg', help='Training length of D*, in thousands of real images (as many generated)', type=cli.FiniteFloat(min=0, min_open=True), default=500, show_default=True)
@click.option('--batch', help='Real images per D* step (and as many generated)', type=click.IntRange(min=1), default=32, show_default=True)
@click.option('--lr', help='Adam learning rate of D* (betas 0, 0.99 as the GAN D)', type=cli.FiniteFloat(min=0, min_open=True), default=0.0025, show_default=True)
@click.option('--seed', help='Seeds the weights of D* and every draw', type=int, default=0, show_default=True)
@click.option('--snap-kimg', help='Save the resumable state every this many kimg', type=cli.FiniteFloat(min=0, min_open=True), default=50, show_default=True)
@click.option('--thresholds', help='Thresholds tau of the printed curve; an image counts when P(real) > tau', default=','.join(str(t) for t in noisy_discriminator.DEFAULT_THRESHOLDS), show_default=True)
@click.option('--device', help='Torch device  [default: cuda if available, else cpu]', metavar='DEVICE')
def main(network_pkl, test_data, data, outdir, sigma, kimg, batch, lr, seed, snap_kimg, thresholds, device):
    """Train a fresh noisy D* on training vs generated images, then count test images it calls real.

    D* has the architecture of the snapshot's D (fresh weights from --seed)
    and never trains G. Both its inputs get N(0, sigma^2) noise. A test image
    with P(real) = sigmoid(D*(x)) > tau lies on a mode G misses; the count is
    printed for every threshold (the default tau is 0.9). The run saves its
    state in --outdir every --snap-kimg and, started again with the same
    options, resumes from it; the result goes to --outdir/missing-modes.json.

    \b
    Example (MDGAN's CelebA setting):
      python missing_modes.py --network=snapshot.pkl --test-data=celeba-test.zip --sigma=3.5 --outdir=out/mm-3.5
    """
    tau = _parse_thresholds(thresholds)
    device = cli.pick_device(device)
    for option, path in (('--test-data', test_data), ('--data', data)):
        if path is not None and toy_lab.is_toy_data(path):
            raise click.ClickException(f'{option}={path} is toy data (2-D points); missing_modes.py counts test images on modes a '
                                       f'generator misses. For toy runs the toy metrics count modes directly: '
                                       f'calc_metrics.py --metrics=toy2k')
    cli.check_output_folder(outdir, '--outdir')
    snapshot = _load_snapshot(network_pkl)
    for key in ('G_ema', 'D'):
        if snapshot.get(key) is None:
            raise click.ClickException(f'--network: "{network_pkl}" holds no {key}; use a training snapshot')
    G = snapshot['G_ema']
    if G.img_resolution == 1 and G.img_channels == 2:
        raise click.ClickException(f'--network: "{network_pkl}" is a toy network (2-D points); missing_modes.py counts test images. '
                                   f'For toy runs the toy metrics count modes directly: calc_metrics.py --metrics=toy2k')
    if data is not None:
        dataset_kwargs = dnnlib.EasyDict(class_name='training.dataset.ImageFolderDataset', path=data)
    elif snapshot.get('training_set_kwargs') is not None:
        dataset_kwargs = dnnlib.EasyDict(snapshot['training_set_kwargs'])
    else:
        raise click.ClickException(f'--data: "{network_pkl}" does not record its training set; give it with --data=PATH')
    dataset_kwargs.update(resolution=G.img_resolution, max_size=None)
    test_kwargs = dnnlib.EasyDict(class_name='training.dataset.ImageFolderDataset', path=test_data, resolution=G.img_resolution)
    for option, kwargs in (('--data', dataset_kwargs), ('--test-data', test_kwargs)):
        try:
            dnnlib.util.construct_class_by_name(**dict(kwargs, use_labels=False)).close()
        except (OSError, ValueError) as err:
            raise click.ClickException(f'{option}: {err}') from err

    # Build D* and the trainer; resume when a state with the same settings exists.
    settings = dict(network=os.path.abspath(network_pkl), data=dataset_kwargs.get('path'), sigma=sigma, batch=batch, lr=lr, seed=seed)
    try:
        D_star = noisy_discriminator.fresh_discriminator(snapshot['D'], seed)
    except ValueError as err:
        raise click.ClickException(f'--network: {err}') from err
    trainer = noisy_discriminator.NoisyDTrainer(D_star, G, dataset_kwargs, sigma=sigma, seed=seed, batch_size=batch, lr=lr, device=device)
    os.makedirs(outdir, exist_ok=True)
    state_path = os.path.join(outdir, STATE_FILE)
    if os.path.exists(state_path):
        state = _load_state(state_path, device)
        if state['settings'] != settings:
            raise click.ClickException(f'--outdir: {state_path} was made with other settings ({state["settings"]}); '
                                       f'use another --outdir or delete the file')
        try:
            trainer.load_state_dict(state)
        except (KeyError, ValueError, TypeError, RuntimeError, IndexError) as err:
            raise click.ClickException(f'--outdir: the state file {state_path} does not fit this D* ({safe_load._first_line(err)}); '
                                       f'delete it to start over') from err
        print(f'Resuming at {trainer.step * batch / 1000:.3f} kimg from {state_path}')

    # Train, saving the state every snap_kimg.
    total_steps = int(round(kimg * 1000 / batch))
    snap_steps = max(int(round(snap_kimg * 1000 / batch)), 1)
    start = time.time()
    while trainer.step < total_steps:
        loss = trainer.train_step()
        if trainer.step % snap_steps == 0 or trainer.step == total_steps:
            with dnnlib.util.atomic_write(state_path, 'wb') as f:
                torch.save(dict(trainer.state_dict(), settings=settings), f)
            print(f'kimg {trainer.step * batch / 1000:<10.3f} loss {loss:<8.4f} time {dnnlib.util.format_time(time.time() - start)}')

    # Score the test images.
    probabilities = noisy_discriminator.real_probabilities(trainer.D, test_kwargs, batch_size=batch, device=device)
    curve = noisy_discriminator.missing_mode_curve(probabilities, tau)
    print(f'Test images: {len(probabilities)}; sigma {sigma}; D* trained on {trainer.step * batch / 1000:.3f} kimg')
    print('tau      missing')
    for t, count in curve:
        print(f'{t:<8.3f} {count}')
    result = dict(settings=settings, kimg=trainer.step * batch / 1000, num_test=int(len(probabilities)),
                  curve=[dict(threshold=t, missing=count) for t, count in curve])
    with dnnlib.util.atomic_write(os.path.join(outdir, RESULT_FILE), 'w') as f:
        json.dump(result, f, indent=2)

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
