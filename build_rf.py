"""Train RFGAN's denoising autoencoder ahead of a run (Bang & Shim, ICML 2018, §3.1 and §4): the same file train.py --prior=rf would build at its start, in the same cache, or at --out.

Give the train.py options of the run (dataset, --cfg, network sizes, --rf-ae-*); the
autoencoder's encoder mirrors the D and its decoder the G those options build, so the
cache key matches what train.py will look for. --outdir is not needed.

\b
Examples:
    # Ahead of `python train.py --outdir=runs --data=~/datasets/ffhq256.zip --cfg=paper256 --prior=rf`:
    python build_rf.py --data=~/datasets/ffhq256.zip --cfg=paper256
    # On another machine: write a file, copy it over, train with --rf-ae=ffhq-ae.pt.
    python build_rf.py --data=~/datasets/ffhq256.zip --cfg=paper256 --out=ffhq-ae.pt
"""

import copy
import os
import shutil

import click
import torch

import dnnlib
import priors.cli
import train
from dnnlib import cli
from torch_utils import safe_load
from priors import registry
from priors.rf import ae_file

#----------------------------------------------------------------------------

_IGNORED = ('outdir', 'dry_run', 'resume', 'resume_exact', 'safe_load', 'metrics', 'snap')

def _build(out, device, **opts):
    # The run's config, as train.py builds it (with rf added to --prior when missing).
    if opts.get('rf_ae') is not None:
        raise click.ClickException(f'--rf-ae={opts["rf_ae"]} names an autoencoder that already exists; drop it to build one')
    if out is not None:
        cli.check_output_file(out, '--out')  # before any training
    names = list(opts.get('prior') or [])
    names = [n for n in names if n != 'none'] + (['rf'] if 'rf' not in names else [])
    opts = dict(opts, prior=names, outdir='unused', dry_run=True, resume=None, resume_exact=None, safe_load=False, metrics=[], snap=None)
    c, _desc = train.setup_training_loop_kwargs(opts)
    (entry,) = [e for e in c.loss_kwargs.prior_kwargs if e['name'] == 'rf']
    prior = registry.build_prior('rf', **{k: v for k, v in entry.items() if k != 'name'})
    try:
        device = torch.device(device) if device is not None else torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    except RuntimeError as err:
        raise click.ClickException(f'--device: "{device}" is not a device ({err}); use e.g. cuda, cuda:0 or cpu') from err
    if device.type == 'cuda' and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        raise click.ClickException(f'--device={device}, but that CUDA device is not available here; use --device=cpu')

    # Train (or find) the autoencoder in the cache; copy it to --out.
    settings = prior.settings
    path = ae_file.cache_path(c.training_set_kwargs, prior.encoder_kwargs, prior.decoder_kwargs, settings)
    print(f'Dataset:      {c.training_set_kwargs.path}')
    print(f'Encoder:      {dict(prior.encoder_kwargs)}')
    print(f'Autoencoder:  {settings}')
    print(f'Cache file:   {path}{" (exists)" if os.path.isfile(path) else ""}')
    show = lambda step, num, loss: print(f'step {step}/{num}  reconstruction loss {loss:.5f}', flush=True)
    try:
        record = ae_file.get_or_build_autoencoder(c.training_set_kwargs, prior.encoder_kwargs, prior.decoder_kwargs, settings,
                                                  device=device, progress=show)
    except (OSError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    evaluation = record.get('evaluation') or {}
    print(f'Reconstruction error (first 256 images): clean {evaluation.get("clean", float("nan")):.5g}, '
          f'corrupted {evaluation.get("corrupted", float("nan")):.5g}')
    if out is not None:
        os.makedirs(os.path.dirname(os.path.abspath(out)) or '.', exist_ok=True)
        shutil.copyfile(path, out)
        print(f'Wrote {out}; train with --rf-ae={out}')
    else:
        print(f'Wrote {path}; train.py --prior=rf with the same options will use it')

# train.py's options (all but the run-folder, resume and metric ones), plus --out and --device.
def _make_command():
    params = [copy.copy(p) for p in train.main.params if p.name not in _IGNORED]
    params += [
        click.Option(['--out'], metavar='FILE', help='Also copy the autoencoder file here (for train.py --rf-ae=FILE)'),
        click.Option(['--device'], metavar='DEVICE', help='Device, e.g. cuda, cuda:1 or cpu  [default: cuda when available]'),
    ]
    return priors.cli.PriorCommand('build_rf', callback=safe_load.cli_options(_build), params=params, help=__doc__, context_settings=dict(max_content_width=120))

main = _make_command()

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
