"""The RFGAN prior (`--prior=rf`): representative features from a pretrained, frozen denoising autoencoder, concatenated with D's own features (Bang & Shim, "Improved Training of Generative Adversarial Networks using Representative Features", ICML 2018, §3.1).

D's output becomes (the paper's Fig. 1 and §3.1, with StyleGAN2's two-layer head)

    Y = sigma(h1 w1 + h2 w2)             h1 = E(x): the frozen encoder's last convolution layer, flattened
                                         h2: D's own features at the same point; w1, w2: the layers after it

and the losses are unchanged (StyleGAN2's non-saturating logistic loss is
DCGAN's). The gradient of D's loss reaches w1, w2 and D's own weights
((Y - 1) h_i and (Y - 1) w2 u(w_D) for a real x), never E; gradients with
respect to the input image pass through E, so G's gradient and R1 include
the h1 path.

Mapping onto the code:
- D_kwargs_update: D builds priors.rf.encoder.RepresentativeFeatures (the
  encoder's architecture mirrors the run's D, its weights are buffers) and
  concatenates its output at `feature_at`: 'fc' = the flattened 4x4
  convolution features, before the epilogue's fully connected layer (the
  spec's default for StyleGAN2's D, where "the last convolution layer" of
  both networks meet); 'out' = before the output layer. For the toy MLP D,
  'out' joins the two last hidden layers (spec §4.6 item 7).
- setup: the pretrained autoencoder comes from `ae_file`, or from the cache
  (priors.rf.ae_file: built once per dataset and settings, every rank taking
  part when it is built), and its encoder weights are copied into D's buffers
  on every rank. The loop copies resumed weights after setup: an exact resume
  keeps the snapshot's encoder; a weights-only resume from a pickle without
  the feature module (an official one) keeps the one loaded here.
- Snapshots and exact resume carry the encoder as part of D; the prior has no
  state of its own.
"""

import os

import numpy as np
import torch

import dnnlib
from priors import base
from priors import registry
from priors.rf import ae_file as ae_file_module
from priors.rf import autoencoder
from priors.rf import encoder as encoder_module
from torch_utils import training_stats
from torch_utils.image_grid import save_image_grid

#----------------------------------------------------------------------------

FEATURE_AT = ('fc', 'out')
FEATURES_CLASS = 'priors.rf.encoder.RepresentativeFeatures'
_RECON_COLUMNS = 8      # images per row of rf-recon*.png
_RECON_SEED = 0x4f      # latents of its generated row

#----------------------------------------------------------------------------

@registry.register_prior('rf', cli='priors.rf.cli')
class RFPrior(base.Prior):
    def __init__(self,
        encoder_kwargs,                 # dict(class_name=..., **kwargs) of the encoder E, shaped like the run's D.
        decoder_kwargs,                 # dict(class_name=..., **kwargs) of the decoder, shaped like the run's G (z_dim = code_dim).
        code_dim        = 512,          # Size of the autoencoder's code (the decoder's z_dim; spec: G's z_dim).
        feature_at      = 'fc',         # Where D concatenates h1: 'fc' (before the fully connected layer) or 'out'.
        ae_file         = None,         # Autoencoder file (build_rf.py); None = build it once in the dnnlib cache.
        corruption      = 'gaussian',   # DAE corruption: 'gaussian', 'mask' or 'none'.
        level           = 0.1,          # Noise std (gaussian) or masking probability (mask).
        loss            = 'l2',         # Reconstruction loss: 'l2' or 'l1'.
        kimg            = 200,          # Autoencoder training length in thousands of images.
        batch           = 64,           # Autoencoder batch (train.py: the run's batch).
        lr              = 1e-3,         # Adam learning rate of the autoencoder.
        betas           = (0.9, 0.999), # Adam betas of the autoencoder.
        seed            = 0,            # Autoencoder seed (weights, image order, noise); independent of the run's seed.
        max_images      = None,         # Train the autoencoder on the first N images. None = all.
        cache_dir       = None,         # Folder of cached autoencoders. None = <dnnlib cache>/priors.
    ):
        super().__init__()
        if feature_at not in FEATURE_AT:
            raise ValueError(f'feature_at must be one of {", ".join(FEATURE_AT)}, got {feature_at!r}')
        if not isinstance(encoder_kwargs, dict) or 'class_name' not in encoder_kwargs:
            raise ValueError(f'encoder_kwargs must be a dict with a class_name, got {encoder_kwargs!r}')
        if not isinstance(decoder_kwargs, dict) or 'class_name' not in decoder_kwargs:
            raise ValueError(f'decoder_kwargs must be a dict with a class_name, got {decoder_kwargs!r}')
        self.encoder_kwargs, self.decoder_kwargs = dict(encoder_kwargs), dict(decoder_kwargs)
        self.feature_at, self.ae_file, self.cache_dir = feature_at, ae_file, cache_dir
        self.settings = ae_file_module.normalize_settings(code_dim=code_dim, corruption=corruption, level=level, loss=loss, kimg=kimg,
                                                          batch=batch, lr=lr, betas=betas, seed=seed, max_images=max_images)
        self.record = None
        self._ae = None  # the whole autoencoder, for the reconstruction pictures (loaded at the first snapshot)

    # D gets the frozen encoder as its feature module.
    def D_kwargs_update(self):
        return {'feature_kwargs': dict(class_name=FEATURES_CLASS, encoder_kwargs=dict(self.encoder_kwargs)), 'feature_at': self.feature_at}

    # Load (or build, on every rank together) the autoencoder; copy its encoder into D.
    def setup(self, ctx):
        super().setup(ctx)
        features = getattr(ctx.D, 'features', None)
        if not isinstance(features, encoder_module.RepresentativeFeatures):
            raise ValueError(f'Prior "rf": D has no RepresentativeFeatures module (D.features is {type(features).__name__}); '
                             f'D must be built with D_kwargs.feature_kwargs from this prior (train.py does that for --prior=rf)')
        if self.ae_file is not None:
            record = ae_file_module.load_autoencoder_file(self.ae_file, expect_dataset=ctx.dataset_kwargs, expect_encoder=self.encoder_kwargs)
        else:
            progress = _progress_printer() if ctx.rank == 0 else None
            record = ae_file_module.get_or_build_autoencoder(ctx.dataset_kwargs, self.encoder_kwargs, self.decoder_kwargs, self.settings,
                                                             cache_dir=self.cache_dir, device=ctx.device, rank=ctx.rank,
                                                             num_gpus=ctx.num_gpus, progress=progress)
        features.load_encoder(record['encoder']['state_dict'], encoder_module.source_id_from_digest(record['digest']))
        self.record = dict(path=record.get('path'), digest=record['digest'], evaluation=record.get('evaluation'))
        if ctx.rank == 0:
            where = record.get('path') or 'the cache'
            err = record.get('evaluation') or {}
            print(f'RFGAN: encoder from {where} ({record["num_features"]} features at D\'s "{self.feature_at}"; '
                  f'reconstruction error clean {err.get("clean", float("nan")):.4g}, corrupted {err.get("corrupted", float("nan")):.4g})')

    # The paper's Fig. 2 at each image snapshot (rank 0; image datasets): rows of generated images, their
    # reconstructions by the autoencoder, real images, theirs. rf-recon<kimg>.png in the run folder.
    def on_snapshot(self, run_dir, cur_nimg):
        if self.record is None or self.record.get('path') is None or self.ctx.G_ema.img_resolution < 8:
            return
        device = self.ctx.device
        if self._ae is None:
            record = ae_file_module.load_autoencoder_file(self.record['path'])
            self._ae = ae_file_module.autoencoder_from_record(record, device=device)
            dataset = dnnlib.util.construct_class_by_name(**self.ctx.dataset_kwargs)
            picks = list(range(min(_RECON_COLUMNS, len(dataset))))
            self._recon_reals = autoencoder.load_images(dataset, picks, device)
            self._recon_c = torch.as_tensor(np.stack([dataset.get_label(i) for i in picks]), device=device)
        G = self.ctx.G_ema
        num = self._recon_reals.shape[0]
        z = torch.randn([num, G.z_dim], generator=torch.Generator().manual_seed(_RECON_SEED)).to(device)
        with torch.no_grad():
            fakes = G(z, self._recon_c, noise_mode='const').to(torch.float32)
            rows = [fakes, self._ae(fakes), self._recon_reals, self._ae(self._recon_reals)]
        grid = torch.cat(rows).clamp(-1, 1).cpu()
        save_image_grid(grid, os.path.join(run_dir, f'rf-recon{cur_nimg // 1000:06d}.png'), drange=[-1, 1], grid_size=(num, 4))

    # Per iteration: the balance D has learned between the two feature vectors (the paper's w1 and w2).
    def on_progress(self, cur_nimg):
        share = h1_weight_share(self.ctx.D)
        if share is not None:
            training_stats.report('Prior/rf/w1_share', share)
        return None

#----------------------------------------------------------------------------
# The share of h1 in the layer where the two feature vectors meet:
# ||w1||^2 / (||w1||^2 + ||w2||^2) with the effective weights (equalised-lr
# gains applied), i.e. the fraction of that layer's pre-activation variance
# that comes from the encoder's features if both vectors had unit-variance
# entries. 0.5 at initialisation for StyleGAN2's D (each part has its own
# 1/sqrt(fan_in) gain). None when D's layout is unknown.

def h1_weight_share(D):
    features = getattr(D, 'features', None)
    if features is None:
        return None
    num_h1 = int(features.num_features)
    with torch.no_grad():
        if hasattr(D, 'b4') and hasattr(D.b4, 'extra'):            # training.networks.Discriminator: w1 = b4.extra
            own = D.b4.fc if D.b4.extra_at == 'fc' else D.b4.out
            w2 = own.weight.detach().to(torch.float64) * own.weight_gain
            w1 = D.b4.extra.weight.detach().to(torch.float64) * D.b4.extra.weight_gain
        elif hasattr(D, 'feature_at') and hasattr(D, 'layers'):     # training.toy_networks.ToyDiscriminator: [h2, h1] columns
            weight = (D.layers[-1] if D.feature_at == 'fc' else D.out).weight.detach().to(torch.float64)
            w2, w1 = weight[:, :-num_h1], weight[:, -num_h1:]
        else:
            return None
        s1, s2 = float(w1.square().sum()), float(w2.square().sum())
    return s1 / (s1 + s2) if s1 + s2 > 0 else None

#----------------------------------------------------------------------------
# Rank 0's progress line while the autoencoder trains.

def _progress_printer():
    def show(step, num_steps, loss):
        print(f'RFGAN autoencoder: step {step}/{num_steps}, reconstruction loss {loss:.5f}', flush=True)
    return show

#----------------------------------------------------------------------------
