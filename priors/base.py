"""The `Prior` plugin interface: every hook a prior may implement, with no-op defaults, and the rules for composing several priors.

A prior plugs into StyleGAN2-ADA training only through the hooks below.
`priors.loss.PriorLoss` calls them in the loss, `priors.cli.configure()`
calls the configuration-time ones, and the training loop never sees a prior.
A prior is shaped like an estimator: `__init__` only stores hyperparameters
(cheap, no I/O, no randomness), the heavy work happens in `setup(ctx)`.

Hooks and their callers (all optional):

  config time (priors.cli.configure, on an instance that is not set up)
    sampler_kwargs()    -> dict | None   kwargs (with class_name) of the sampler this prior drives
    D_kwargs_update()   -> dict | None   merged into c.D_kwargs (e.g. a D with extra heads)
    G_kwargs_update()   -> dict | None   merged into c.G_kwargs (e.g. posterior modules in G)
  construction (PriorLoss.__init__, every rank, training RNG streams untouched)
    setup(ctx)                           ctx: device, G_mapping, G_synthesis, D, augment_pipe,
                                         dataset_kwargs, rank, num_gpus, random_seed, run_dir (may be None)
  every iteration (PriorLoss.on_progress, every rank, same cur_nimg; collectives allowed)
    pretrain(ctx)                        once, at the first iteration of a run that is not resumed
    on_progress(cur_nimg) -> dict | None e.g. {'sampler_weights': float64 [N]}; the loop passes
                                         these to sampler.set_weights()
  inside the loss phases (PriorLoss, every round of every due phase)
    transform_latents(z, c) -> (z, c)    before the mapping network; chained in --prior order
    extra_loss(step, img, c, logits, ws) -> [N] | scalar | None
                                         added to the step's loss; step in 'Gmain', 'Gpl', 'Dgen',
                                         'Dreal', 'Dr1' (see training.loss.StyleGAN2Loss.extra_loss)
  snapshot / resume
    state_dict() -> dict, load_state_dict(state)
                                         under resume_state['ranks'][rank]['loss']['priors'][name]
    extra_modules() -> {name: Module}    modules with their own optimizer, owned and stepped by the
                                         prior (e.g. in on_progress); listed for the snapshot and for
                                         a future DDP sync. The loop does not use them yet.

Which paper uses which hook:

  gmm        PriorGAN (Gu et al. 2020): setup (prior file, extractor), extra_loss at 'Gmain' (quality
             loss, Eq. 5), on_progress (generated frequencies, Eq. 6-8 -> sampler weights),
             sampler_kwargs (PriorResampler), state_dict (prior file, resampling state).
  posterior  P2GAN (Zhang et al. 2021): D_kwargs_update (D outputs mu, sigma), G_kwargs_update
             (posterior modules + AdaIN), pretrain (without posterior modules), extra_loss at 'Dgen' /
             'Dreal' (distribution losses, Eq. 8) and 'Gmain' (latent code regulariser, Eq. 12-13),
             state_dict (EMA of the posterior factors).
  rf         RFGAN (Bang & Shim 2018): pretrain (denoising autoencoder on reals), D_kwargs_update
             (frozen encoder features concatenated before D's output layer), state_dict (encoder).
  masked     Multimodal latent prior (Goerttler & Kloft): transform_latents (pre-sample n latents,
             score them with D, keep / reweight, resample the batch; Definitions 3-4).
  mdgan      Mode-regularised GAN (Che et al. 2017): extra_modules (encoder E and its optimizer),
             extra_loss at 'Dreal' (remember reals) and 'Gmain' (geometric and mode regularisers
             on G(E(x))), on_progress (step E's optimizer), state_dict.

Composition (--prior=a,b): extra losses add; latent transforms chain in the
listed order; on_progress feedback dicts merge (a key from two priors is an
error); at most one prior may drive the sampler; G/D kwargs updates must not
set the same key twice. PriorLoss and configure() raise ValueError otherwise.
"""

import dnnlib

#----------------------------------------------------------------------------
# Base class: every hook is a no-op, so a prior overrides only what it uses.

class Prior:
    name = None  # Registry name; set by registry.register_prior().

    def __init__(self):
        self.ctx = None  # Set by setup().

    # Construction-time setup on every rank (load files, build extractors, move to ctx.device).
    def setup(self, ctx):
        self.ctx = ctx

    # Kwargs (with class_name) of the sampler this prior drives; None = it does not drive the sampler.
    def sampler_kwargs(self):
        return None

    # Changes to c.D_kwargs / c.G_kwargs at configuration time; None = no change.
    def D_kwargs_update(self):
        return None

    def G_kwargs_update(self):
        return None

    # One-off pretraining before the first iteration of a fresh run.
    def pretrain(self, ctx):
        pass

    # Progress feedback for the loop (e.g. {'sampler_weights': ...}); None = nothing.
    def on_progress(self, cur_nimg):
        return None

    # New latents and labels for a batch; chained across priors.
    def transform_latents(self, z, c):
        return z, c

    # Extra loss term of one step: [N] tensor, scalar tensor, or None.
    def extra_loss(self, step, img, c, logits, ws):
        return None

    # Pictures for the run folder, on rank 0 at each image snapshot (e.g. component frequencies).
    def on_snapshot(self, run_dir, cur_nimg):
        pass

    # Modules that this prior trains with its own optimizer.
    def extra_modules(self):
        return {}

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        if len(state) != 0:
            raise ValueError(f'Prior "{self.name}": unexpected state keys {sorted(state)}; the snapshot was written by a different '
                             f'version of this prior, resume with --resume-exact=0')

#----------------------------------------------------------------------------
# The baseline: no prior at all. `--prior=none` never reaches PriorLoss
# (configure() leaves the config untouched), but building it is allowed.

class NoPrior(Prior):
    pass

#----------------------------------------------------------------------------
# Composition checks shared by configure() and PriorLoss. priors: list of Prior
# instances (set up or not). Returns the index of the prior that drives the
# sampler, or None.

def check_composition(priors):
    names = [p.name for p in priors]
    for name in names:
        if names.count(name) > 1:
            raise ValueError(f'Prior "{name}" is listed {names.count(name)} times; list each prior once')
    if 'none' in names and len(names) > 1:
        raise ValueError(f'Prior "none" (the baseline) cannot be combined with other priors, got {",".join(names)}; drop "none"')
    drivers = [i for i, p in enumerate(priors) if p.sampler_kwargs() is not None]
    if len(drivers) > 1:
        raise ValueError(f'At most one prior may drive the data sampler, but {" and ".join(names[i] for i in drivers)} both do; '
                         f'turn resampling off for all but one of them')
    return drivers[0] if drivers else None

#----------------------------------------------------------------------------
# Merge per-prior kwargs updates (e.g. D_kwargs_update()) into one dict,
# refusing a key set by two priors. updates: list of (prior name, dict or None).

def merge_updates(updates, what):
    merged, owner = dnnlib.EasyDict(), dict()
    for name, update in updates:
        for key, value in (update or {}).items():
            if key in merged:
                raise ValueError(f'Priors "{owner[key]}" and "{name}" both change {what}.{key}; they cannot be combined')
            merged[key], owner[key] = value, name
    return merged

#----------------------------------------------------------------------------
