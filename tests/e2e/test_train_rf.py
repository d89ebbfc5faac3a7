"""RFGAN end to end on CPU: train.py --prior=rf --cfg=stylegan (shrunk) trains, snapshots the frozen encoder inside D, resumes exactly, and its snapshot works with generate.py and calc_metrics.py; an official pickle resumes weights-only into an RF run; rf composes with other priors that extend D."""

import json
import os

import numpy as np
import PIL.Image
import pytest
import torch
from click.testing import CliRunner

import build_rf
import calc_metrics
import dnnlib
import generate
import harness
import legacy
import seam_priors
import train
from metrics import paper_metrics
from priors.rf import ae_file
from priors.rf import autoencoder
from priors.rf import cli as rf_cli
from priors.rf import encoder as encoder_module
from torch_utils import misc

pytestmark = pytest.mark.slow

ARGS = ['--prior=rf', '--cfg=stylegan', '--rf-ae-kimg=0.016', *harness.TRAIN_ARGS, '--tick=0.004', '--snap=1', '--aug=noaug', '--seed=5']

@pytest.fixture
def env(cache_env, monkeypatch):
    monkeypatch.setattr(paper_metrics, 'MSSSIM_NUM_PAIRS', 16)
    return cache_env

def _train(args):
    return harness.invoke_ok(train.main, args).output

def _last_snapshot(outdir):
    (run,) = os.listdir(outdir)
    run_dir = os.path.join(outdir, run)
    pkl = harness.snapshot_path(run_dir)
    return run_dir, pkl, harness.load(pkl)

#----------------------------------------------------------------------------

def test_train_rf_resume_generate_calc_metrics(env):
    data = harness.tiny_dataset(env / 'synth16.zip', num_images=24, num_modes=4)
    runs = env / 'runs'

    # 4 steps straight; 2 steps, then resumed to 4.
    _train(['--outdir', str(runs / 'full'), '--data', data, '--kimg=0.016'] + ARGS)
    _train(['--outdir', str(runs / 'first'), '--data', data, '--kimg=0.008'] + ARGS)
    _, first_pkl, _ = _last_snapshot(str(runs / 'first'))
    out = _train(['--outdir', str(runs / 'second'), '--data', data, '--kimg=0.016', '--resume', first_pkl] + ARGS)
    assert 'RFGAN autoencoder: step' not in out  # trained once, by the first run; the others found it in the cache
    cached = [f for f in os.listdir(env / 'cache' / 'priors') if '-rfgan-ae-' in f and f.endswith('.pt')]
    assert len(cached) == 1

    # Exact resume: every tensor of G, D (frozen encoder included) and G_ema equals the straight run's.
    run_dir, pkl, full = _last_snapshot(str(runs / 'full'))
    _, _, second = _last_snapshot(str(runs / 'second'))
    assert full['resume_state']['cur_nimg'] == second['resume_state']['cur_nimg'] == 16
    assert harness.differing(harness.tensors(full, 'G', 'D', 'G_ema'), harness.tensors(second, 'G', 'D', 'G_ema')) == []

    # The snapshot's D carries the encoder: the cached autoencoder's weights, unchanged by training.
    record = ae_file.load_autoencoder_file(str(env / 'cache' / 'priors' / cached[0]))
    D = full['D']
    assert isinstance(D.features, encoder_module.RepresentativeFeatures)
    assert int(D.features.source_id) == encoder_module.source_id_from_digest(record['digest'])
    for name, value in record['encoder']['state_dict'].items():
        assert torch.equal(dict(D.features.encoder.named_buffers())[name], value), name
    assert not any(name.startswith('features.') for name, _ in D.named_parameters())
    with open(os.path.join(run_dir, 'training_options.json')) as f:
        options = json.load(f)
    assert options['D_kwargs']['feature_kwargs']['class_name'] == 'priors.rf.encoder.RepresentativeFeatures'
    assert options['D_kwargs']['feature_at'] == 'fc'
    with open(os.path.join(run_dir, 'stats.jsonl')) as f:
        stats = [json.loads(line) for line in f]
    assert 0 < stats[-1]['Prior/rf/w1_share']['mean'] < 1
    with PIL.Image.open(os.path.join(run_dir, 'rf-recon000000.png')) as image:  # the paper's Fig. 2: 4 rows of 8
        assert image.size == (8 * 16, 4 * 16)

    # generate.py and calc_metrics.py (MS-SSIM, the paper's diversity metric) on the snapshot.
    gen_dir = str(env / 'gen')
    result = CliRunner().invoke(generate.generate_images, ['--network', pkl, '--seeds', '0-1', '--outdir', gen_dir, '--device', 'cpu'],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    for seed in (0, 1):
        with PIL.Image.open(os.path.join(gen_dir, f'seed{seed:04d}.png')) as image:
            assert image.size == (16, 16)
    result = CliRunner().invoke(calc_metrics.main, ['--network', pkl, '--metrics', 'msssim10k', '--device', 'cpu', '--verbose', 'false'],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    with open(os.path.join(run_dir, 'metric-msssim10k.jsonl')) as f:
        (line,) = [json.loads(text) for text in f]
    assert 0 < line['results']['msssim10k'] <= 1

#----------------------------------------------------------------------------
# A training_loop() config with priors: the harness's tiny run at `resolution`, batch 4 in one round, 2 steps.

def _loop_config(data, run_dir, G_kwargs, D_kwargs, priors, resolution, **overrides):
    c = harness.loop_config(data, run_dir, 2, random_seed=0, G_kwargs=dnnlib.EasyDict(G_kwargs), D_kwargs=dnnlib.EasyDict(D_kwargs),
                            loss_kwargs=dnnlib.EasyDict(class_name='priors.loss.PriorLoss', r1_gamma=1, prior_kwargs=[]),
                            batch_gpu=4, kimg_per_tick=0.004, ema_rampup=None, G_reg_interval=4, D_reg_interval=16,
                            network_snapshot_ticks=None)
    c.training_set_kwargs.resolution = resolution
    harness.add_priors(c, priors)
    c.update(overrides)
    return c

def _rf_kwargs(G_kwargs, D_kwargs, cache_dir, **overrides):
    kwargs = dict(encoder_kwargs=rf_cli.encoder_kwargs_for(dict(D_kwargs)), decoder_kwargs=rf_cli.decoder_kwargs_for(dict(G_kwargs), 8),
                  code_dim=8, kimg=0.008, batch=4, cache_dir=cache_dir)
    kwargs.update(overrides)
    return kwargs

#----------------------------------------------------------------------------
# Weights-only resume of the official fixture into an RF run: the official
# weights load (the features join fc through their own weights, so fc and out
# keep their shapes) and D's feature module, absent from the pickle, holds the
# cached encoder.

def test_official_pickle_resumes_weights_only_into_an_rf_run(fixtures_dir, tmp_path, capsys):
    pkl = os.path.join(fixtures_dir, 'official-tiny.pkl')
    with open(pkl, 'rb') as f:
        official = legacy.load_network_pkl(f)
    data = harness.tiny_dataset(tmp_path / 'data32.zip', num_images=8, num_modes=2, resolution=32)
    G_kwargs = dict(official['G'].init_kwargs, class_name='training.networks.Generator')
    D_kwargs = dict(official['D'].init_kwargs, class_name='training.networks.Discriminator')
    for kwargs in (G_kwargs, D_kwargs):
        for key in ('c_dim', 'img_resolution', 'img_channels'):
            kwargs.pop(key)
    rf = _rf_kwargs(G_kwargs, D_kwargs, str(tmp_path / 'cache'))
    c = _loop_config(data, str(tmp_path / 'run'), G_kwargs, D_kwargs, [('rf', rf)], 32, resume_pkl=pkl,
                     G_opt_kwargs=dict(class_name='torch.optim.Adam', lr=1e-9, betas=[0, 0.99], eps=1e-8),
                     D_opt_kwargs=dict(class_name='torch.optim.Adam', lr=1e-9, betas=[0, 0.99], eps=1e-8), ema_kimg=1e9)
    result = harness.run_loop(c, quiet=False)
    assert 'Loading weights only' in capsys.readouterr().out
    trained = dict(misc.named_params_and_buffers(result.D))
    for key, value in misc.named_params_and_buffers(official['D']):
        np.testing.assert_allclose(trained[key].numpy(), value.numpy(), atol=1e-6, err_msg=key)
    record = ae_file.load_autoencoder_file(ae_file.cache_path(c.training_set_kwargs, rf['encoder_kwargs'], rf['decoder_kwargs'],
                                                              dict(code_dim=8, kimg=0.008, batch=4), cache_dir=str(tmp_path / 'cache')))
    assert int(result.D.features.source_id) == encoder_module.source_id_from_digest(record['digest'])
    for name, value in record['encoder']['state_dict'].items():
        assert torch.equal(trained['features.encoder.' + name], value), name

#----------------------------------------------------------------------------
# rf with a prior that owns D's head (out_dim, as P2GAN does): both extend D, at different leaves.

def test_rf_composes_with_a_head_owner(tmp_path, tiny_G_kwargs, tiny_D_kwargs):
    seam_priors.register()
    try:
        data = harness.tiny_dataset(tmp_path / 'data16.zip', num_images=8, num_modes=2)
        G_kwargs, D_kwargs = harness.loop_net_kwargs(tiny_G_kwargs, tiny_D_kwargs)
        rf = _rf_kwargs(G_kwargs, D_kwargs, str(tmp_path / 'cache'))
        c = _loop_config(data, str(tmp_path / 'run'), G_kwargs, D_kwargs, [('rf', rf), ('seam-head', {})], 16)
        D = harness.run_loop(c).D
        assert D.b4.out.weight.shape[0] == 2 and D.b4.extra.weight.shape == (32, D.features.num_features)
        assert D.features.is_loaded and D(torch.randn(2, 3, 16, 16), None).shape == (2, 2)
    finally:
        seam_priors.unregister()

#----------------------------------------------------------------------------
# Configuration: rf with gmm on the command line, and the toy lab's MLP encoder.

def test_rf_configures_with_gmm_and_on_the_toy_lab(env):
    data = harness.tiny_dataset(env / 'synth16.zip', num_images=16, num_modes=2)
    result = CliRunner().invoke(train.main, ['--outdir', str(env / 'runs'), '--data', data, '--prior=gmm,rf', '--prior-feature=tiny',
                                             '--cfg=stylegan', '--cbase=256', '--cmax=16', '--dry-run'], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert 'priors.rf.encoder.RepresentativeFeatures' in result.output and '"name": "gmm"' in result.output
    result = CliRunner().invoke(train.main, ['--outdir', str(env / 'runs'), '--data=toy:ring8,std=0.1', '--cfg=toy', '--prior=rf',
                                             '--dry-run'], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert 'priors.rf.encoder.MLPEncoder' in result.output and '"feature_at": "out"' in result.output
    result = CliRunner().invoke(train.main, ['--outdir', str(env / 'runs'), '--data', data, '--prior=rf', '--rf-ae=missing.pt',
                                             '--dry-run'])
    assert result.exit_code != 0 and '--rf-ae' in result.output and 'does not exist' in result.output

    # build_rf.py with the run's options writes the cache entry train.py looks for, and a file for --rf-ae.
    run_args = ['--data', data, '--cfg=stylegan', '--cbase=256', '--cmax=16', '--map=2', '--batch=4', '--rf-ae-kimg=0.004']
    result = CliRunner().invoke(build_rf.main, run_args + ['--out', str(env / 'ae.pt'), '--device', 'cpu'], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    c, _ = train.setup_training_loop_kwargs(dict(train.main.make_context('train', ['--outdir', 'x', '--prior=rf'] + run_args).params))
    (entry,) = c.loss_kwargs.prior_kwargs
    settings = {k: entry[k] for k in ('code_dim', 'corruption', 'level', 'loss', 'kimg', 'batch', 'lr', 'betas', 'seed')}
    assert os.path.isfile(ae_file.cache_path(c.training_set_kwargs, entry['encoder_kwargs'], entry['decoder_kwargs'], settings))
    result = CliRunner().invoke(train.main, ['--outdir', str(env / 'runs'), '--prior=rf', '--rf-ae', str(env / 'ae.pt'), '--dry-run'] + run_args[:-1],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(train.main, ['--outdir', str(env / 'runs'), '--prior=rf', '--rf-ae', str(env / 'ae.pt'), '--dry-run',
                                             '--cmax=32'] + run_args[:3])
    assert result.exit_code != 0 and 'this run\'s D needs' in result.output

#----------------------------------------------------------------------------
# Two gloo processes train the autoencoder together (gradients averaged) and
# end with the same encoder in D, equal to the file rank 0 wrote.

def _ddp_worker(rank, tmp_dir, data_path, G_kwargs, D_kwargs):
    harness.init_gloo(rank, tmp_dir)
    rf = _rf_kwargs(G_kwargs, D_kwargs, os.path.join(tmp_dir, 'cache'), kimg=0.016, batch=8, corruption='none')
    c = _loop_config(data_path, os.path.join(tmp_dir, 'run'), G_kwargs, D_kwargs, [('rf', rf)], 16, num_gpus=2, rank=rank,
                     batch_size=8, batch_gpu=2, total_kimg=0.008)
    result = harness.run_loop(c)
    torch.save(dict(result.D.features.state_dict()), os.path.join(tmp_dir, f'rank{rank}.pt'))
    torch.distributed.destroy_process_group()

@pytest.mark.ddp
def test_two_gloo_ranks_share_one_autoencoder(tmp_path, tiny_G_kwargs, tiny_D_kwargs):
    data = harness.tiny_dataset(tmp_path / 'data16.zip', num_images=16, num_modes=2)
    G_kwargs, D_kwargs = harness.loop_net_kwargs(tiny_G_kwargs, tiny_D_kwargs)
    harness.spawn_two(_ddp_worker, str(tmp_path), data, G_kwargs, D_kwargs)
    rank0, rank1 = harness.load_ranks(tmp_path)
    assert all(torch.equal(rank0[n], rank1[n]) for n in rank0)
    (name,) = [f for f in os.listdir(tmp_path / 'cache') if f.endswith('.pt')]
    record = ae_file.load_autoencoder_file(str(tmp_path / 'cache' / name))
    assert int(rank0['source_id']) == encoder_module.source_id_from_digest(record['digest'])
    for key, value in record['encoder']['state_dict'].items():
        assert torch.equal(rank0['encoder.' + key], value), key
    # Averaged gradients: the same steps as one process on the whole batch, up to float rounding.
    dataset_kwargs = dict(class_name='training.dataset.ImageFolderDataset', path=data, use_labels=False, max_size=None, xflip=False)
    rf = _rf_kwargs(G_kwargs, D_kwargs, None)
    single, _ = autoencoder.train_autoencoder(dataset_kwargs, rf['encoder_kwargs'], rf['decoder_kwargs'], code_dim=8, kimg=0.016,
                                              batch=8, corruption='none')
    for key, value in single.encoder.state_dict().items():
        torch.testing.assert_close(value, record['encoder']['state_dict'][key], atol=1e-5, rtol=1e-4)

#----------------------------------------------------------------------------
