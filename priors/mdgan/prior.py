"""The mode-regularised GAN and MDGAN (`--prior=mdgan`; Che et al., "Mode Regularized Generative Adversarial Networks", ICLR 2017, §3.1-3.3 and Appendix A).

An encoder E: X -> Z (priors.mdgan.networks, shaped like D) is trained jointly
with G in its own extra phase (own optimizer; the loop all-reduces, snapshots
and resumes it). All terms below are losses to minimise, per real image x of
the iteration's batch, with l = D's logit and -log D = softplus(-l); see
priors.mdgan.regularizers for the paper's printed forms and their fixes.

mode='reg' (Reg-GAN, §3.1-3.2, Eq. 1-2 with the mode term's sign fixed):
    Gmain:  the usual -log D(G(z))  +  lambda1 d(x, G(E(x))) + lambda2 (-log D(G(E(x))))
    E:      lambda1 d(x, G(E(x))) + lambda2 (-log D(G(E(x))))                      (phase 'mdgan_E')
    D:      unchanged (reals against G(z)); the paper does not say that D sees G(E(x)), so it does not.

mode='md' (MDGAN, §3.3 and Appendix A; D1 is the run's D):
    manifold step
      Dgen:   D1 sees G(E(x)) as its fakes (latents from E, transform_latents)      (step 2)
      Gmain:  d(x, G(E(x))) + lambda (-log D1(G(E(x))))                             (step 3)
      E:      the same objective as Gmain's, on E's parameters                     (phase 'mdgan_E')
    diffusion step
      D2:     -log D2(G(E(x))) - log(1 - D2(G(z))), plus R1 on G(E(x))             (phase 'mdgan_D2', step 6)
      G:      -log D2(G(z))                                                        (phase 'mdgan_G2', step 7)
    With g_steps=1 the step-7 term is added to Gmain instead of a second G step.

E's loss. The paper trains E "by minimising the same reconstruction error"
and writes T_E (Eq. 2) with both regularisers; its MDGAN pseudo-code has no E
update at all. E gets exactly the gradient of the terms that depend on it:
in Reg-GAN the two regularisers (the -log D(G(z)) term of T_G does not depend
on E), in MDGAN the manifold objective of step 3. Because the loop runs extra
phases after the standard ones, E's step sees G after its Gmain update of the
same iteration (the paper updates both from one gradient; here E's gradient is
recomputed with the new G, one G(E(x)) pass more).

G(E(x)) is G.synthesis(G.mapping(E(x), c)) with the real image's label c, no
style mixing, no truncation and no update of the mapping's w_avg. D scores it
through the run's augmentation pipe, like any image D sees in training; the
distances d use the unaugmented images.
"""

import torch

from priors import base
from priors import features as features_module
from priors import registry
from priors.mdgan import networks
from priors.mdgan import regularizers
from torch_utils import training_stats
from training import loss as training_loss

#----------------------------------------------------------------------------

MODES = ('reg', 'md')                        # Reg-GAN (§3.1-3.2) or MDGAN (§3.3)
DISTANCES = ('pixel', 'dfeat')               # built-in d; anything else names a feature extractor (priors.features)
DEFAULT_OPT_KWARGS = dict(class_name='torch.optim.Adam', lr=0.0025, betas=[0, 0.99], eps=1e-8)
_E_SEED_TAG, _D2_SEED_TAG = 0xE0, 0xD2       # Separate the initial weights of E and D2 from each other and from G/D.

#----------------------------------------------------------------------------
# Optimizer kwargs for an extra phase: a copy, with Adam's betas as floats
# (torch refuses a mix of int and float, as in the configs' [0, 0.99]).

def _opt_kwargs(opt_kwargs):
    opt_kwargs = dict(opt_kwargs or DEFAULT_OPT_KWARGS)
    if 'betas' in opt_kwargs:
        opt_kwargs['betas'] = [float(beta) for beta in opt_kwargs['betas']]
    return opt_kwargs

#----------------------------------------------------------------------------

@registry.register_prior('mdgan', cli='priors.mdgan.cli')
class MDGANPrior(base.Prior):
    needs_logit = True  # its regularisers are -log D terms of D's one logit per image (Eq. 1-2, App. A)

    def __init__(self,
        mode            = 'reg',    # 'reg' (Reg-GAN) or 'md' (MDGAN).
        lambda1         = 0.2,      # Reg-GAN: weight of the geometric regulariser d(x, G(E(x))) (Eq. 1-2; paper, MNIST: 0.2).
        lambda2         = 0.4,      # Reg-GAN: weight of the mode regulariser -log D(G(E(x))) (Eq. 1-2; paper, MNIST: 0.4).
        md_lambda       = 1.0,      # MDGAN: weight lambda of -log D1(G(E(x))) in the manifold G step (App. A step 3; paper: silent).
        g_steps         = 2,        # MDGAN: G steps per iteration, 2 = manifold + diffusion (paper), 1 = diffusion term in Gmain.
        distance        = 'pixel',  # d: 'pixel' (squared L2), 'dfeat' (D's features before its output layer), or an extractor name/path.
        distance_reduce = 'mean',   # d averages ('mean') or sums ('sum', the paper's ||.||^2) the squared differences.
        E_opt_kwargs    = None,     # E's optimizer (class_name, lr, ...); None = DEFAULT_OPT_KWARGS (train.py passes G's).
        D2_opt_kwargs   = None,     # D2's optimizer; None = DEFAULT_OPT_KWARGS (train.py passes D's).
        d2_r1_gamma     = 10.0,     # R1 weight of D2 on its reals G(E(x)); 0 = disable (train.py passes the run's --gamma).
        d2_reg_interval = 16,       # D2's R1 is applied every this many iterations, with weight x interval (lazy, like D's).
        d2_augment      = True,     # D2 sees its inputs through the run's augmentation pipe (at the run's p).
        gan_loss        = 'logistic', # The run's adversarial loss; the paper's terms are defined for the logistic loss only.
        e_out           = 'linear', # E's output: 'linear' = G's N(0, I) input z; 'support' = squashed into the support of G's latent (networks.E_OUTPUTS).
    ):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f'mdgan: mode must be one of {", ".join(MODES)}, got {mode!r}')
        for key, value in dict(lambda1=lambda1, lambda2=lambda2, md_lambda=md_lambda, d2_r1_gamma=d2_r1_gamma).items():
            if not (isinstance(value, (int, float)) and value >= 0):
                raise ValueError(f'mdgan: {key} must be a number >= 0, got {value!r}')
        if g_steps not in (1, 2):
            raise ValueError(f'mdgan: g_steps must be 1 or 2, got {g_steps!r}')
        if not (isinstance(d2_reg_interval, int) and d2_reg_interval >= 1):
            raise ValueError(f'mdgan: d2_reg_interval must be an integer >= 1, got {d2_reg_interval!r}')
        if distance_reduce not in regularizers.DISTANCE_REDUCTIONS:
            raise ValueError(f'mdgan: distance_reduce must be one of {", ".join(regularizers.DISTANCE_REDUCTIONS)}, got {distance_reduce!r}')
        if not (isinstance(distance, str) and distance):
            raise ValueError(f'mdgan: distance must be "pixel", "dfeat" or a feature extractor name, got {distance!r}')
        if gan_loss != 'logistic':
            raise ValueError(f'mdgan: the mode regularisers are -log D terms of the logistic GAN loss, but gan_loss={gan_loss!r}; '
                             f'use --gan-loss=logistic')
        if e_out not in networks.E_OUTPUTS:
            raise ValueError(f'mdgan: e_out must be one of {", ".join(networks.E_OUTPUTS)}, got {e_out!r}')
        self.mode, self.lambda1, self.lambda2, self.md_lambda = mode, float(lambda1), float(lambda2), float(md_lambda)
        self.e_out = e_out
        self.g_steps, self.distance, self.distance_reduce = int(g_steps), distance, distance_reduce
        self.E_opt_kwargs = _opt_kwargs(E_opt_kwargs)
        self.D2_opt_kwargs = _opt_kwargs(D2_opt_kwargs)
        self.d2_r1_gamma, self.d2_reg_interval, self.d2_augment = float(d2_r1_gamma), int(d2_reg_interval), bool(d2_augment)
        self.E = None           # Built in setup().
        self.D2 = None          # Built in setup(), mode='md' only.
        self.extractor = None   # Feature extractor of d, when distance names one.
        self._dfeat_layer = None  # D's output layer, whose input is the feature of distance='dfeat'.
        self._iteration = 0     # Iteration index (from cur_nimg), for D2's lazy R1.
        self._gmain_latents = None  # (z, c) of the current Gmain round before E replaced them (g_steps=1).

    #------------------------------------------------------------------------
    # Construction: E (and D2) from the run's D, the distance's extractor.

    def setup(self, ctx):
        super().setup(ctx)
        D = networks.unwrap(ctx.D)
        out_dim = getattr(D, 'init_kwargs', {}).get('out_dim')
        if out_dim not in (None, 1):
            raise ValueError(f'mdgan: the regularisers need D to output one logit per image, but D has out_dim={out_dim} '
                             f'(another prior owns D\'s head); --prior=mdgan cannot be combined with it')
        if self.mode == 'md' and int(getattr(D, 'c_dim', 0)) > 0:
            raise ValueError('mdgan: --mdgan-mode=md is not available for conditional runs yet: the loop\'s Dgen and Gmain steps score '
                             'G(E(x), c_x) with the step\'s own random labels; use --cond=0 or --mdgan-mode=reg')
        seed = int(ctx.random_seed)
        self.E = networks.build_encoder(ctx.D, z_dim=int(networks.unwrap(ctx.G_mapping).z_dim), seed=seed * 256 + _E_SEED_TAG)
        if self.mode == 'md':
            self.D2 = networks.build_twin(ctx.D, seed=seed * 256 + _D2_SEED_TAG)
        if self.distance == 'dfeat':
            self._dfeat_layer = networks.output_layer(ctx.D)
        elif self.distance != 'pixel':
            devices = [ctx.device] if torch.device(ctx.device).type == 'cuda' else []
            with torch.random.fork_rng(devices=devices):  # leave the training RNG streams as they are
                self.extractor = features_module.build_extractor(self.distance, device=ctx.device, num_gpus=ctx.num_gpus, rank=ctx.rank)

    def extra_phases(self):
        phases = [training_loss.ExtraPhase(name='mdgan_E', module=self.E, opt_kwargs=self.E_opt_kwargs, interval=1,
                                           accumulate=self._accumulate_E)]
        if self.mode == 'md':
            phases.append(training_loss.ExtraPhase(name='mdgan_D2', module=self.D2, opt_kwargs=self.D2_opt_kwargs, interval=1,
                                                   accumulate=self._accumulate_D2))
            if self.g_steps == 2:
                phases.append(training_loss.ExtraPhase(name='mdgan_G2', module='G', opt_kwargs=None, interval=1,
                                                       accumulate=self._accumulate_G2))
        return phases

    # D2 has D's class and kwargs, so it also has any frozen feature module of D (e.g. --prior=rf's encoder).
    # Another prior may have filled D's copy in its setup (after this one): D2 takes the same values
    # before the first step of a run that is not resumed exactly (an exact resume restores D2 whole).
    def pretrain(self, ctx):
        features = getattr(networks.unwrap(ctx.D), 'features', None)
        if self.D2 is not None and features is not None:
            self.D2.features.load_state_dict(features.state_dict())

    def on_progress(self, cur_nimg):
        self._iteration = int(cur_nimg) // int(self.ctx.batch_size)
        return None

    #------------------------------------------------------------------------
    # Building blocks: E(x), G(z), D scores and the distance d.

    # E's latents for real images [N, z_dim]; E is unconditional.
    def encode(self, img):
        e = self.E(img, img.new_zeros([img.shape[0], 0]))
        return networks.encoder_latent(e, getattr(networks.unwrap(self.ctx.G_mapping), 'z_dist', 'normal'), self.e_out)

    # G(z) with label c: no style mixing, no truncation, no w_avg update.
    def generate(self, z, c):
        ws = self.ctx.G_mapping(z, c, skip_w_avg_update=True)
        return self.ctx.G_synthesis(ws)

    # Logits [N, 1] of a discriminator on images, through the augmentation pipe.
    def _logits(self, D, img, c, augment=True):
        pipe = self.ctx.augment_pipe if augment else None
        return D(img if pipe is None else pipe(img), c)

    # d(x, y) per sample [N]: pixels, D's features, or an extractor's features.
    def distance_of(self, x, y, c):
        if self.distance == 'pixel':
            return regularizers.squared_distance(x, y, self.distance_reduce)
        if self.distance == 'dfeat':
            with networks.tap_features(self._dfeat_layer) as captured:
                with torch.no_grad():
                    self.ctx.D(x, c)
                self.ctx.D(y, c)
            fx, fy = captured[0].detach(), captured[1]
        else:
            with torch.no_grad():
                fx = self.extractor(x)
            fy = self.extractor(y)
        return regularizers.squared_distance(fx.flatten(1).to(torch.float32), fy.flatten(1).to(torch.float32), self.distance_reduce)

    # The regularised objective of G(E(x)) per real image [N] (Reg-GAN's T_E, or MDGAN's manifold loss).
    # report: report d and -log D(G(E(x))) (once per iteration: in Gmain, not again in E's phase).
    def _reconstruction_terms(self, x, c, rec, report):
        distance = self.distance_of(x, rec, c)
        logits = self._logits(self.ctx.D, rec, c)
        if report:
            training_stats.report('Prior/mdgan/distance', distance)
            training_stats.report('Prior/mdgan/mode', regularizers.mode_regularizer(logits))
        if self.mode == 'reg':
            return regularizers.reg_gan_loss(distance, logits, self.lambda1, self.lambda2)
        return regularizers.manifold_loss(distance, logits, self.md_lambda)

    #------------------------------------------------------------------------
    # MDGAN's manifold step inside the loop's phases: the latents of Dgen and
    # Gmain (both roles, so style mixing is a no-op) come from E(x).

    def replaces_latents(self):
        return ('Gmain', 'Dgen') if self.mode == 'md' else ()

    def transform_latents(self, z, c, *, step, role, batch):
        if self.mode != 'md' or step not in ('Gmain', 'Dgen'):
            return z, c
        if batch is None or batch.img.shape[0] != z.shape[0]:
            raise ValueError(f'mdgan: step {step} has {z.shape[0]} latents but {None if batch is None else batch.img.shape[0]} real '
                             f'images; the manifold step needs one real image per latent')
        if step == 'Gmain' and role == 'main':
            self._gmain_latents = (z, c)
        with torch.no_grad():
            return self.encode(batch.img).detach(), batch.c

    def extra_loss(self, step, img, c, logits, ws, *, batch=None, outputs=None):
        if step != 'Gmain':
            return None
        if self.mode == 'reg':
            # Eq. 1: the regularisers of G on G(E(x)) of this round's reals (E fixed here; it has its own phase).
            with torch.no_grad():
                z = self.encode(batch.img)
            return self._reconstruction_terms(batch.img, batch.c, self.generate(z, batch.c), report=True)

        # App. A step 3: the loop's Gmain term is -log D1(G(E(x))) with weight 1; make it lambda and add d.
        distance = self.distance_of(batch.img, img, batch.c)
        training_stats.report('Prior/mdgan/distance', distance)
        training_stats.report('Prior/mdgan/mode', regularizers.mode_regularizer(logits))
        term = distance + (self.md_lambda - 1) * regularizers.mode_regularizer(logits)
        if self.g_steps == 1:
            z, c = self._gmain_latents
            term = term + self._diffusion_G_loss(z, c).mean()
        self._gmain_latents = None
        return term

    #------------------------------------------------------------------------
    # Extra phases. Each runs once per round with that round's PhaseBatch;
    # gain = the phase interval.

    # E: the same regularised objective, with gradients into E only (G and D are frozen outside their phases).
    def _accumulate_E(self, batch, gain):
        x, c = batch.real_img, batch.real_c
        loss = self._reconstruction_terms(x, c, self.generate(self.encode(x), c), report=False)
        training_stats.report('Prior/mdgan/E/loss', loss)
        (loss.mean() * gain).backward()

    # D2 (App. A step 6): G(E(x)) as reals, G(z) as fakes, lazy R1 on G(E(x)).
    def _accumulate_D2(self, batch, gain):
        with torch.no_grad():
            real = self.generate(self.encode(batch.real_img), batch.real_c)
            fake = self.generate(batch.gen_z, batch.gen_c)
        r1 = self.d2_r1_gamma > 0 and self._iteration % self.d2_reg_interval == 0
        real = real.detach().requires_grad_(r1)
        real_logits = self._logits(self.D2, real, batch.real_c, self.d2_augment)
        fake_logits = self._logits(self.D2, fake, batch.gen_c, self.d2_augment)
        real_loss, fake_loss = regularizers.discriminator_loss(real_logits, fake_logits)
        training_stats.report('Prior/mdgan/D2/scores/real', real_logits)
        training_stats.report('Prior/mdgan/D2/scores/fake', fake_logits)
        loss = training_stats.report('Prior/mdgan/D2/loss', real_loss + fake_loss)
        objective = loss.mean()
        if r1:
            penalty = training_stats.report('Prior/mdgan/D2/r1_penalty', training_loss.r1_penalty(real_logits, real))
            objective = objective + penalty.mean() * (self.d2_r1_gamma / 2) * self.d2_reg_interval
        (objective * gain).backward()

    # G on D2 (App. A step 7): -log D2(G(z)).
    def _diffusion_G_loss(self, z, c):
        loss = regularizers.mode_regularizer(self._logits(self.D2, self.generate(z, c), c, self.d2_augment))
        return training_stats.report('Prior/mdgan/G2/loss', loss)

    def _accumulate_G2(self, batch, gain):
        (self._diffusion_G_loss(batch.gen_z, batch.gen_c).mean() * gain).backward()

    #------------------------------------------------------------------------
    # State: E, D2 and their optimizers are the loop's (extra phases); the
    # prior keeps only its settings, to refuse resuming into another mode.

    def state_dict(self):
        return dict(mode=self.mode, g_steps=self.g_steps)

    def load_state_dict(self, state):
        state = dict(state)
        saved = (state.pop('mode', None), state.pop('g_steps', None))
        if saved != (self.mode, self.g_steps):
            raise ValueError(f'mdgan: the snapshot was trained with mode={saved[0]}, g_steps={saved[1]} but this run uses '
                             f'mode={self.mode}, g_steps={self.g_steps}; use the same --mdgan-mode/--mdgan-g-steps, or resume weights only')
        super().load_state_dict(state)

#----------------------------------------------------------------------------
