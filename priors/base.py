"""The `Prior` plugin interface (v2): every hook a prior may implement, with no-op defaults, and the rules for composing several priors.

A prior plugs into StyleGAN2-ADA training only through these hooks. `priors.cli.configure()` calls the
configuration-time ones, `priors.loss.PriorLoss` (a `training.loss.StyleGAN2Loss`) the others; the training
loop and the networks know nothing of priors: they offer generic seams (extra D outputs, D features, a side
input of the synthesis network, extra phases, sample-time latent transforms) that PriorLoss fills in.
A prior is shaped like an estimator: `__init__` only stores hyperparameters (cheap, no I/O, no
randomness), the heavy work happens in `setup(ctx)`.

Hooks and when they are called (all optional):

  configuration time (priors.cli.configure; an instance that is not set up)
    sampler_kwargs()          -> dict | None  kwargs (with class_name) of the data sampler this prior drives
    D_kwargs_update()         -> dict | None  dotted keys merged into c.D_kwargs at the leaves, e.g.
                                              {'out_dim': 8} or {'feature_kwargs': dict(class_name=...)}
    G_kwargs_update()         -> dict | None  same for c.G_kwargs, e.g. {'synthesis_kwargs.side_kwargs': {...}}
    loss_kwargs_update()      -> dict | None  same for c.loss_kwargs
    sample_transform_kwargs() -> dict | None  class_name + kwargs of a sample-time latent transform
                                              (training.sampling): stored in every snapshot, used by
                                              generate.py, style_mixing.py, the metrics and the image grids
  construction (PriorLoss.setup, every rank, after the networks are built and broadcast; the training
  RNG streams are not to be touched)
    setup(ctx)        ctx: device, G, G_ema, G_mapping, G_synthesis, D, augment_pipe, dataset_kwargs,
                      random_seed, rank, num_gpus, run_dir (None on ranks > 0), batch_size, batch_gpu,
                      score(img, c) -> [N, 1]: D's realness of images, without augmentation
  every iteration (PriorLoss.on_progress, every rank, same cur_nimg; collectives allowed)
    pretrain(ctx)                         once, at the first iteration of a run that is not resumed exactly
    on_progress(cur_nimg) -> dict | None  feedback for the loop, e.g. {'sampler_weights': float64 [N]}
  inside the loss, every round of every due phase; step is 'Gmain', 'Gpl', 'Dgen', 'Dreal', 'Dr1' or an
  extra phase's name; batch is the round's training.loss.RealBatch(img, c) of reals, in every step
    transform_latents(z, c, *, step, role, batch) -> (z, c)
                      before the mapping network; role 'main', or 'mix' for the style-mixing latent;
                      steps 'Gmain', 'Gpl', 'Dgen'; chained in --prior order
    replaces_latents() -> steps                   steps whose latents transform_latents() replaces outright
                                                  (MDGAN's E(x)); no other prior may then transform latents
    synthesis_inputs(z, c, *, step, batch) -> dict | None
                      extra keyword arguments of G.synthesis for this batch, e.g. {'side': code}
    extra_loss(step, img, c, logits, ws, *, batch, outputs) -> [N] | scalar | None
                      added to the step's loss; logits are the scores (the head owner's realness),
                      outputs the head owner's reading of D's raw output (else None)
  head owner (at most one prior; implements all three): D's raw output is [N, out_dim]
    D_outputs(raw) -> outputs                       any object, e.g. (mu, sigma)
    adversarial_loss(step, outputs, *, batch) -> [N] replaces the GAN loss at 'Gmain', 'Dgen', 'Dreal'
    realness(outputs) -> [N, 1]                     one score per image: Loss/scores, ADA's signs, R1
    realness_kwargs() -> dict | None                class_name + kwargs of f(raw) -> [N, 1], the same score
                                                    outside training (sample-time transforms that score with D)
  needs_logit (class attribute)                     True: the prior reads D's raw output as one logit per image
  extra phases (PriorLoss.extra_phases; the loop owns optimizers, gradient all-reduce, snapshot, resume)
    extra_phases() -> [training.loss.ExtraPhase]    called after setup()
  image snapshot (rank 0)
    on_snapshot(run_dir, cur_nimg)                  pictures for the run folder
  snapshot / resume
    state_dict() / load_state_dict(state)           state shared by all ranks (saved once; kept when the
                                                    number of processes changes)
    rank_state_dict() / load_rank_state_dict(state) this process's own state (e.g. its RNG stream); restored
                                                    only when the number of processes is the same

Which paper uses which hook (tests/unit/test_hook_table.py checks these lists, and the table of
docs/priors.md, against the hooks each prior class overrides):

  gmm        PriorGAN (Gu et al. 2020): setup (prior file, extractor), sampler_kwargs (PriorResampler),
             on_progress (generated frequencies, Eq. 6-8 -> sampler weights), extra_loss at 'Gmain'
             (quality loss, Eq. 5), on_snapshot (component pictures), state_dict / load_state_dict.
  posterior  P2GAN (Zhang et al. 2021): D_kwargs_update (out_dim: mu and sigma heads), G_kwargs_update
             (side module: posterior modules + AdaIN), setup, on_progress (stage switch, EMA of the test
             factors and BN statistics in G buffers), synthesis_inputs (code from D(batch.img)), extra_loss
             at 'Gmain' (L_z, Eq. 12-13), head owner (D_outputs, adversarial_loss Eq. 8-9, realness,
             realness_kwargs), rank_state_dict / load_rank_state_dict (pending statistics).
  rf         RFGAN (Bang & Shim 2018): D_kwargs_update (feature_kwargs: frozen encoder features
             concatenated in D), setup (pretrained denoising autoencoder from its cache), on_progress
             (reports the share of D's weight on the encoder features), on_snapshot (Fig. 2 grid).
  masked     Multimodal latent prior (Goerttler & Kloft): setup (its stream), transform_latents at 'Dgen' /
             'Gmain' (pre-sample, score with D, masked or weighted pmf; Definitions 3-4),
             sample_transform_kwargs (the same selection at sampling time), rank_state_dict /
             load_rank_state_dict (its stream).
  mdgan      Mode-regularised GAN (Che et al. 2017): setup (encoder E, D2), pretrain (D2 starts from D's
             features), on_progress (iteration count), transform_latents and replaces_latents (MDGAN's
             manifold step takes E(x)), extra_loss at 'Gmain' (geometric and mode regularisers on
             G(E(batch.img))), extra_phases (E; D2 and a second G step for MDGAN), state_dict /
             load_state_dict.

Composition (--prior=a,b): extra losses add; latent transforms and sample transforms chain in the
listed order; on_progress feedback dicts merge (a key from two priors is an error); at most one prior
drives the sampler and at most one owns D's head; synthesis_inputs keys, extra phase names and dotted
kwargs leaves may not be set by two priors; a prior that needs D's logit (needs_logit) and a head owner
cannot be combined, and a head owner replaces the GAN loss, so gan_loss must stay 'logistic'; a prior that
replaces the latents of a step outright (replaces_latents) cannot be combined with another that transforms
latents; a sample-time transform whose constructor takes `realness` gets the head owner's realness_kwargs()
(bind_realness), so that it scores with the same realness as training. check_composition(), bind_realness() and
merge_feedback() hold these rules once; configure() and PriorLoss both use them and raise ValueError.
"""

import inspect

import dnnlib

#----------------------------------------------------------------------------
# Base class: every hook is a no-op, so a prior overrides only what it uses.

class Prior:
    name = None  # Registry name; set by registry.register_prior().
    needs_logit = False  # True: the prior reads D's raw output as one logit per image (e.g. -log D terms), so no
                         # other prior may own D's head (check_composition refuses the pair).

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

    def loss_kwargs_update(self):
        return None

    # Class name and kwargs of a sample-time latent transform (training.sampling); None = none.
    def sample_transform_kwargs(self):
        return None

    # New latents and labels for a batch; chained across priors.
    def transform_latents(self, z, c, *, step, role, batch):
        return z, c

    # Steps whose latents transform_latents() replaces outright, ignoring the ones it is given (e.g. MDGAN's manifold
    # step takes E(x)); then no other prior may transform latents (check_composition refuses it).
    def replaces_latents(self):
        return ()

    # Extra keyword arguments of G.synthesis for a batch (e.g. {'side': code}); None = none.
    def synthesis_inputs(self, z, c, *, step, batch):
        return None

    # Extra loss term of one step: [N] tensor, scalar tensor, or None.
    def extra_loss(self, step, img, c, logits, ws, *, batch=None, outputs=None):
        return None

    # Head owner: read D's raw output, its adversarial loss, one realness score per image.
    def D_outputs(self, raw):
        raise NotImplementedError(f'Prior "{self.name}" does not own D\'s head')

    def adversarial_loss(self, step, outputs, *, batch):
        raise NotImplementedError(f'Prior "{self.name}" does not own D\'s head')

    def realness(self, outputs):
        raise NotImplementedError(f'Prior "{self.name}" does not own D\'s head')

    # Head owner: dict(class_name=..., **kwargs) of a callable f(raw) -> [N, 1], the realness of D's raw output
    # outside training (sample-time transforms that score with D get it as their `realness` kwarg); None = none.
    def realness_kwargs(self):
        return None

    # True when this prior implements the head-owner hooks.
    def owns_head(self):
        return type(self).D_outputs is not Prior.D_outputs

    # Phases of this prior (training.loss.ExtraPhase), called after setup().
    def extra_phases(self):
        return []

    # Pictures for the run folder, on rank 0 at each image snapshot (e.g. component frequencies).
    def on_snapshot(self, run_dir, cur_nimg):
        pass

    # State shared by every rank (saved once).
    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        if len(state) != 0:
            raise ValueError(f'Prior "{self.name}": unexpected state keys {sorted(state)}; the snapshot was written by a different '
                             f'version of this prior; resume weights only (resume_exact=False)')

    # This process's own state (restored only when the number of processes is unchanged).
    def rank_state_dict(self):
        return {}

    def load_rank_state_dict(self, state):
        if len(state) != 0:
            raise ValueError(f'Prior "{self.name}": unexpected per-rank state keys {sorted(state)}; the snapshot was written by a '
                             f'different version of this prior; resume weights only (resume_exact=False)')

#----------------------------------------------------------------------------
# The baseline: no prior at all. `--prior=none` never reaches PriorLoss
# (configure() leaves the config untouched), but building it is allowed.

class NoPrior(Prior):
    pass

#----------------------------------------------------------------------------
# Composition checks shared by configure() and PriorLoss. priors: list of Prior
# instances (set up or not). Returns the index of the prior that drives the
# sampler, or None.

def check_composition(priors, gan_loss=None):
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
    owners = [p.name for p in priors if p.owns_head()]
    if len(owners) > 1:
        raise ValueError(f'At most one prior may own D\'s output head, but {" and ".join(owners)} both do; they cannot be combined')
    for p in priors:
        missing = [hook for hook in ('adversarial_loss', 'realness') if p.owns_head() and getattr(type(p), hook) is getattr(Prior, hook)]
        if missing:
            raise TypeError(f'Prior "{p.name}" implements D_outputs() but not {" and ".join(missing)}(); a head owner implements all three')
    if owners:
        readers = [p.name for p in priors if p.needs_logit]
        if readers:
            raise ValueError(f'Prior "{readers[0]}" reads D\'s output as one logit per image, but prior "{owners[0]}" owns D\'s head '
                             f'and replaces that logit; they cannot be combined: train with one of them')
        if gan_loss not in (None, 'logistic'):
            raise ValueError(f'Prior "{owners[0]}" owns D\'s head and replaces the adversarial loss with its own, so '
                             f'gan_loss="{gan_loss}" would be ignored; leave it at the default, logistic')
    for p in priors:
        steps = list(p.replaces_latents())
        others = [q.name for q in priors if q is not p and type(q).transform_latents is not Prior.transform_latents]
        if steps and others:
            raise ValueError(f'Prior "{p.name}" replaces the latents of {", ".join(steps)} outright, so the latents that prior '
                             f'"{others[0]}" chooses would be discarded (or, listed after it, would break it); they cannot be '
                             f'combined in this setting')
    return drivers[0] if drivers else None

# Sample-time transform specs (dicts) with the head owner's realness bound: a transform whose constructor takes
# `realness` (one that scores images with D) gets the head owner's realness_kwargs(), so that it scores what training
# scores; without a head owner the spec is left as it is (D's raw output is the logit). Raises ValueError when the
# head owner gives none. Returns new specs.
def bind_realness(specs, priors):
    owners = [p for p in priors if p.owns_head()]
    out = []
    for spec in specs:
        spec = dnnlib.EasyDict(spec)
        if owners and 'realness' in inspect.signature(dnnlib.util.get_obj_by_name(spec.class_name)).parameters:
            realness = owners[0].realness_kwargs()
            if realness is None:
                raise ValueError(f'The sample-time transform {spec.class_name} scores images with D, but prior "{owners[0].name}" owns '
                                 f'D\'s head and gives no realness_kwargs() to read it with; switch the transform off or drop a prior')
            spec.realness = dnnlib.EasyDict(realness)
        out.append(spec)
    return out

# One dict from several priors' dicts (on_progress feedback, synthesis inputs),
# refusing a key that two priors set. items: list of (prior name, dict or None).
def merge_feedback(items, what):
    merged, owner = dict(), dict()
    for name, values in items:
        for key, value in (values or {}).items():
            if key in merged:
                raise ValueError(f'Priors "{owner[key]}" and "{name}" both return "{key}" from {what}; they cannot be combined')
            merged[key], owner[key] = value, name
    return merged

#----------------------------------------------------------------------------
# Merge per-prior kwargs updates (e.g. D_kwargs_update()) into one dict of
# dotted keys ('synthesis_kwargs.side_kwargs'), refusing a leaf that two priors
# set, or a key of one that is a prefix of another's. updates: list of
# (prior name, dict or None).

def merge_updates(updates, what):
    merged, owner = dnnlib.EasyDict(), dict()
    for name, update in updates:
        for key, value in (update or {}).items():
            if not isinstance(key, str) or not key or any(part == '' for part in key.split('.')):
                raise ValueError(f'Prior "{name}": {what} update key {key!r} is not a dotted name')
            for other in merged:
                if key == other or key.startswith(other + '.') or other.startswith(key + '.'):
                    raise ValueError(f'Priors "{owner[other]}" and "{name}" both change {what}.{other if len(other) <= len(key) else key}; '
                                     f'they cannot be combined')
            merged[key], owner[key] = value, name
    return merged

# Apply merged dotted updates to a kwargs dict in place (creating EasyDicts on
# the way, copying the ones it changes so that shared defaults stay intact).
def apply_updates(kwargs, merged):
    for key, value in merged.items():
        parts = key.split('.')
        node = kwargs
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = dnnlib.EasyDict()
            elif not isinstance(child, dict):
                raise ValueError(f'Cannot set "{key}": "{part}" is not a dict but {type(child).__name__}')
            node[part] = child = dnnlib.EasyDict(child)
            node = child
        node[parts[-1]] = value
    return kwargs

#----------------------------------------------------------------------------
