"""The P2GAN prior (`--prior=posterior`): D outputs a Gaussian posterior, G is promoted with codes drawn from D(real) (Zhang et al., "Posterior Promoted GAN with Distribution Discriminator for Unsupervised Image Synthesis", CVPR 2021, §4).

What it changes, through the hooks of priors.base.Prior (docs/posterior.md has the reasons for each choice):

  D         out_dim = 2d: D's raw output is (mu, sigma), the posterior D(x) = N(mu, diag sigma^2) (§4.2).
  losses    replace StyleGAN2's adversarial loss, per image, with the discrepancy Dis of Eq. 4-7
            (reparameterised with one eps per pair, or its closed form):
              Dreal: Dis(D(x_r), P_b)   Dgen: Dis(D(x_g), P_a)        (Eq. 8)
              Gmain: Dis(D(x_g), P_c) + lambda L_z                   (Eq. 9, 13)
            L_z = sum_k |u_k(x_g) - z_k| (Eq. 12): z is the code x_g was generated from, u(x_g) the
            reparameterised sample of D(x_g) with the same eps.
  realness  the signed distance of D(x) from the hyperplane halfway between P_a and P_b (positive on
            the real side, unit gradient): R1 differentiates it, ADA reads its sign.
  G         a side module (priors.posterior.modules.PosteriorSide) after every synthesis conv: posterior
            modules P_i (Eq. 10) and AdaIN with BN statistics (Eq. 11). Its input is the code
            z = eps * sigma(x_r) + mu(x_r) drawn from D on the round's (augmented) reals, detached.
  stages    pretraining (§4.5): before pretrain_kimg, S is plain BN (modules unused), L_z pairs fakes
            and reals by index; after it the zero-initialised modules switch on (a buffer of S).
  sampling  S's buffers hold the test-time factors: Eq. 19's optimum (mu_a + mu_b)/2, (sigma_a +
            sigma_b)/2, or an EMA (factor 0.9 per iteration) of the batch-mean real factors.
  M_c       Eq. 21 with the closed-form Dis, reported per D round as Prior/posterior/M_c.

State that must be the same on every rank (the stage, the test factors, BN running statistics) lives
in G's buffers and changes only in on_progress(), from statistics all-reduced over the ranks; what
each rank gathered since the last update is its rank state, so exact resume continues bit for bit.
"""

import numpy as np
import torch

from priors import base
from priors import registry
from priors.posterior import modules as posterior_modules
from priors.posterior import posterior_math as pm
from torch_utils import training_stats

#----------------------------------------------------------------------------

DISCREPANCIES = ('sampled', 'closed')   # Eq. 4-6 with one shared eps per pair, or the closed form of Eq. 7.
SIGMA_ACTIVATIONS = ('raw', 'softplus') # sigma head: no activation (the paper, §4.2), or softplus.
TEST_FACTORS = ('theory', 'ema')        # Test-time factors: Eq. 19 optimum, or EMA of the real factors (§4.5).
CODES = ('posterior', 'noise')          # Input of the posterior modules: z ~ D(x_r), or N(0, I) (Table 5 "w/o Z").

# The two settings of §5.2: code size d, priors P_a and P_b as (mu, sigma), pretraining epochs. CelebA's (also the
# StyleGAN experiment, Table 4) are the constructor's defaults; --post-preset picks one.
PRESETS = dict(
    celeba = dict(code_dim=20, p_a=(-5.0, 1.0), p_b=(5.0, 3.0), epochs=2),
    cifar  = dict(code_dim=5,  p_a=(-4.0, 1.0), p_b=(4.0, 3.0), epochs=10),
)

_STEPS_WITH_G = ('Gmain', 'Gpl', 'Dgen')
_TARGETS = dict(Dreal='b', Dgen='a', Gmain='c')   # Which prior each adversarial step pulls D(x) to.

#----------------------------------------------------------------------------

@registry.register_prior('posterior', cli='priors.posterior.cli')
class PosteriorPrior(base.Prior):
    def __init__(self,
        code_dim        = PRESETS['celeba']['code_dim'],  # Size d of the posterior code (paper: 20 for CelebA, 5 for CIFAR-10).
        p_a             = PRESETS['celeba']['p_a'],  # "Fake" prior P_a = N(mu_a, sigma_a^2 I), as (mu_a, sigma_a) (CelebA setting).
        p_b             = PRESETS['celeba']['p_b'],  # "Real" prior P_b = N(mu_b, sigma_b^2 I), as (mu_b, sigma_b) (CelebA setting).
        lambda_z        = 10.0,         # Weight lambda of L_z in Eq. 13; 0 = disable L_z.
        pretrain_kimg   = 0.0,          # Length of the pretraining stage (modules off), in thousands of images.
        modules         = True,         # Posterior modules + AdaIN in G; False = G unchanged (Table 5 "w/o M").
        code            = 'posterior',  # Input of the modules: 'posterior' (z ~ D(x_r)) or 'noise' (Table 5 "w/o Z").
        norm            = 'bn',         # Normalisation in AdaIN: 'bn' (Eq. 11) or 'in' (Eq. 2, Table 7).
        discrepancy     = 'sampled',    # 'sampled' (one eps per pair, §4.5) or 'closed' (Eq. 7).
        sigma_act       = 'raw',        # sigma head activation: 'raw' (§4.2) or 'softplus'.
        test_factors    = 'theory',     # Sampling-time factors: 'theory' (Eq. 19) or 'ema' (§4.5).
        test_ema        = 0.9,          # EMA smooth factor of the 'ema' test factors, per iteration (§4.5: 0.9).
        test_sample     = 'random',     # Sampling-time code: 'random' (eps * sigma_s + mu_s) or 'mean' (mu_s).
    ):
        super().__init__()
        _check_choice('discrepancy', discrepancy, DISCREPANCIES)
        _check_choice('sigma_act', sigma_act, SIGMA_ACTIVATIONS)
        _check_choice('test_factors', test_factors, TEST_FACTORS)
        _check_choice('code', code, CODES)
        _check_choice('norm', norm, posterior_modules.NORMS)
        _check_choice('test_sample', test_sample, posterior_modules.TEST_SAMPLES)
        if int(code_dim) < 1:
            raise ValueError(f'code_dim must be >= 1, got {code_dim}')
        self.p_a, self.p_b = _gaussian('p_a', p_a), _gaussian('p_b', p_b)
        if self.p_a == self.p_b:
            raise ValueError(f'p_a and p_b are the same distribution N({self.p_a.mu:g}, {self.p_a.sigma:g}^2); D could not tell '
                             f'reals from fakes. Choose different priors (paper: N(-5, 1^2) and N(5, 3^2))')
        if not lambda_z >= 0:
            raise ValueError(f'lambda_z must be >= 0, got {lambda_z}')
        if not pretrain_kimg >= 0:
            raise ValueError(f'pretrain_kimg must be >= 0, got {pretrain_kimg}')
        if not 0 <= test_ema < 1:
            raise ValueError(f'test_ema must be in [0, 1), got {test_ema}')
        if code == 'noise' and test_factors == 'ema':
            raise ValueError('test_factors="ema" averages the posterior codes, but code="noise" feeds N(0, I) to the modules; '
                             'use test_factors="theory" (the sampling code is then N(0, I) too)')
        self.code_dim = int(code_dim)
        self.p_c = pm.midpoint(self.p_a, self.p_b)
        self.lambda_z, self.pretrain_kimg = float(lambda_z), float(pretrain_kimg)
        self.modules, self.code, self.norm = bool(modules), code, norm
        self.discrepancy, self.sigma_act = discrepancy, sigma_act
        self.test_factors, self.test_ema, self.test_sample = test_factors, float(test_ema), test_sample
        self.side = None        # G's PosteriorSide (set up), None without modules.
        self._gmain = None      # (real posterior, eps, code) of the current Gmain round, for L_z.
        self._fake_mc = None    # Batch mean of Dis(D(x_g), P_c) of the current D round, for M_c.
        self._code_sum = None   # Rank's sums since the last update: [2, d] float64 of mu(x_r), |sigma(x_r)|.
        self._code_count = 0

    #------------------------------------------------------------------------
    # Configuration time.

    def D_kwargs_update(self):
        return {'out_dim': 2 * self.code_dim}

    def G_kwargs_update(self):
        if not self.modules:
            return None
        factors = self.p_c if self.code == 'posterior' else pm.Gaussian(0.0, 1.0)
        side_kwargs = dict(class_name='priors.posterior.modules.PosteriorSide', code_dim=self.code_dim, norm=self.norm,
                           test_mu=float(factors.mu), test_sigma=float(factors.sigma), test_sample=self.test_sample)
        return {'synthesis_kwargs.side_kwargs': side_kwargs}

    #------------------------------------------------------------------------
    # Construction and progress.

    def setup(self, ctx):
        super().setup(ctx)
        self.side = None
        if self.modules:
            side = getattr(ctx.G.synthesis, 'side', None)
            if not isinstance(side, posterior_modules.PosteriorSide):
                raise ValueError(f'Prior "posterior": G.synthesis has no PosteriorSide module (found {type(side).__name__}); build G with '
                                 f'the G_kwargs_update() of this prior (train.py --prior=posterior does)')
            if side.code_dim != self.code_dim or side.norm != self.norm:
                raise ValueError(f'Prior "posterior": G\'s side module has code_dim={side.code_dim}, norm={side.norm}, but the prior '
                                 f'has code_dim={self.code_dim}, norm={self.norm}; build G and the prior from the same options')
            self.side = side
            side.recorder = [] if side.norm == 'bn' else None
        self._code_sum = torch.zeros([2, self.code_dim], dtype=torch.float64, device=ctx.device)
        self._code_count = 0

    def on_progress(self, cur_nimg):
        if self.side is not None:
            # The stage switch of §4.5 and the statistics gathered since the last iteration, averaged over ranks.
            self.side.stage.fill_(1.0 if cur_nimg >= self.pretrain_kimg * 1000 else 0.0)
            self._update_running_stats()
            self._update_test_factors()
        return None

    # BN running statistics <- the mean of the batch statistics recorded since the last call (all calls, all ranks).
    def _update_running_stats(self):
        if self.side.recorder is None:
            return
        channels = self.side.channels
        total = torch.zeros([2 * sum(channels) + len(channels)], dtype=torch.float64, device=self.ctx.device)
        offsets = np.cumsum([0] + channels)
        for i, mean, var in self.side.recorder:
            lo, hi = 2 * offsets[i], 2 * offsets[i + 1]
            total[lo:hi] += torch.cat([mean, var]).to(total)
            total[2 * offsets[-1] + i] += 1
        self.side.recorder.clear()
        _all_reduce(total, self.ctx.num_gpus)
        counts = total[2 * offsets[-1]:]
        if not bool((counts > 0).all()):
            return
        means, variances = [], []
        for i, ch in enumerate(channels):
            part = total[2 * offsets[i]:2 * offsets[i + 1]] / counts[i]
            means.append(part[:ch])
            variances.append(part[ch:])
        self.side.update_running_stats(means, variances)

    # EMA test factors (§4.5): mu_s <- a mu_s + (1 - a) mean mu(x_r), the same for |sigma|, a = test_ema.
    def _update_test_factors(self):
        if self.test_factors != 'ema':
            return
        total = torch.cat([self._code_sum.flatten(), torch.tensor([float(self._code_count)], dtype=torch.float64, device=self._code_sum.device)])
        self._code_sum.zero_()
        self._code_count = 0
        _all_reduce(total, self.ctx.num_gpus)
        if total[-1] == 0:
            return
        mean = (total[:-1] / total[-1]).reshape(2, self.code_dim).to(self.side.test_mu)
        self.side.test_mu.lerp_(mean[0], 1 - self.test_ema)
        self.side.test_sigma.lerp_(mean[1], 1 - self.test_ema)

    #------------------------------------------------------------------------
    # Inside the loss.

    # The posterior D(x_r) of the first n reals of the round (augmented like D's inputs), detached.
    @torch.no_grad()
    def _real_posterior(self, batch, n):
        if batch is None or batch.img.shape[0] < n:
            raise ValueError(f'Prior "posterior": {n} fakes need as many real images for their codes, got '
                             f'{"none" if batch is None else batch.img.shape[0]}')
        img = batch.img if self.ctx.augment_pipe is None else self.ctx.augment_pipe(batch.img)
        p = self.D_outputs(self.ctx.D(img, batch.c))
        return pm.Gaussian(p.mu[:n].detach(), p.sigma[:n].detach())

    def synthesis_inputs(self, z, c, *, step, batch):
        if step not in _STEPS_WITH_G:
            return None
        n = z.shape[0]
        need_code = self.modules and self.code == 'posterior'
        need_target = step == 'Gmain' and self.lambda_z > 0
        p_real = self._real_posterior(batch, n) if (need_code or need_target) else None
        eps = torch.randn([n, self.code_dim], device=z.device) if p_real is not None else None
        code = pm.reparameterise(p_real, eps) if p_real is not None else None
        if step == 'Gmain':
            self._gmain = (p_real, eps, code) if need_target else None
            if need_code and self.test_factors == 'ema':
                self._code_sum[0] += p_real.mu.sum(dim=0).double()
                self._code_sum[1] += p_real.sigma.abs().sum(dim=0).double()
                self._code_count += n
        if not self.modules:
            return None
        if self.code == 'noise':
            code = torch.randn([n, self.code_dim], device=z.device)
        return {'side': code}

    def D_outputs(self, raw):
        if raw.ndim != 2 or raw.shape[1] != 2 * self.code_dim:
            raise ValueError(f'Prior "posterior": D\'s raw output should be [N, 2d = {2 * self.code_dim}] (mu and sigma heads), got '
                             f'{list(raw.shape)}; build D with out_dim={2 * self.code_dim} (train.py --prior=posterior does)')
        mu, sigma = raw[:, :self.code_dim], raw[:, self.code_dim:]
        if self.sigma_act == 'softplus':
            sigma = torch.nn.functional.softplus(sigma)
        return pm.Gaussian(mu, sigma)

    def realness(self, outputs):
        return pm.realness(outputs, self.p_a, self.p_b).unsqueeze(1)

    # The same realness outside training, for sample-time transforms that score with D (e.g. --prior=masked,posterior).
    def realness_kwargs(self):
        return dict(class_name='priors.posterior.prior.PosteriorRealness', code_dim=self.code_dim, p_a=[self.p_a.mu, self.p_a.sigma],
                    p_b=[self.p_b.mu, self.p_b.sigma], sigma_act=self.sigma_act)

    # Eq. 8 (Dreal, Dgen) and Eq. 9 (Gmain), per image; M_c of Eq. 21 reported once per D round.
    def adversarial_loss(self, step, outputs, *, batch):
        if step not in _TARGETS:
            raise ValueError(f'Prior "posterior": no adversarial loss for step "{step}"; expected one of {", ".join(_TARGETS)}')
        target = dict(a=self.p_a, b=self.p_b, c=self.p_c)[_TARGETS[step]]
        if self.discrepancy == 'closed':
            loss = pm.discrepancy_closed(outputs, target)
        else:
            loss = pm.discrepancy_sampled(outputs, target, torch.randn_like(outputs.mu))
        kind = 'real' if step == 'Dreal' else 'fake'
        training_stats.report(f'Prior/posterior/mu_{kind}', outputs.mu.detach().mean(dim=1))
        training_stats.report(f'Prior/posterior/sigma_{kind}', outputs.sigma.detach().mean(dim=1))
        if step != 'Gmain':
            to_optimum = pm.discrepancy_closed(pm.Gaussian(outputs.mu.detach(), outputs.sigma.detach()), self.p_c).mean()
            if step == 'Dgen':
                self._fake_mc = to_optimum
            elif self._fake_mc is not None:
                training_stats.report('Prior/posterior/M_c', self._fake_mc + to_optimum)
                self._fake_mc = None
        return loss

    # L_z of Eq. 12 with weight lambda (Eq. 13), at Gmain only.
    def extra_loss(self, step, img, c, logits, ws, *, batch=None, outputs=None):
        if step != 'Gmain' or self.lambda_z == 0:
            return None
        if self._gmain is None or self._gmain[0].mu.shape[0] != outputs.mu.shape[0]:
            raise RuntimeError('Prior "posterior": L_z needs the codes of this Gmain round; synthesis_inputs() did not run for it')
        p_real, eps, code = self._gmain
        self._gmain = None
        if self.discrepancy == 'closed':
            l_z = pm.code_distance_l1_closed(outputs, p_real)
        else:
            l_z = pm.code_distance_l1(outputs, code, eps)
        training_stats.report('Prior/posterior/L_z', l_z.detach())
        return l_z * self.lambda_z

    #------------------------------------------------------------------------
    # State. The stage, test factors and BN running statistics are G buffers (snapshot); per rank, what
    # was gathered since the last on_progress().

    def rank_state_dict(self):
        if self.ctx is None:
            return {}
        recorder = [] if self.side is None or self.side.recorder is None else self.side.recorder
        return dict(code_sum=self._code_sum.detach().cpu().clone(), code_count=int(self._code_count),
                    bn_records=[(int(i), mean.detach().cpu().clone(), var.detach().cpu().clone()) for i, mean, var in recorder])

    def load_rank_state_dict(self, state):
        state = dict(state)
        if not state:
            return
        unknown = sorted(set(state) - {'code_sum', 'code_count', 'bn_records'})
        if unknown:
            return super().load_rank_state_dict({key: state[key] for key in unknown})
        self._code_sum.copy_(state['code_sum'].to(self._code_sum))
        self._code_count = int(state['code_count'])
        if self.side is not None and self.side.recorder is not None:
            device = self.side.test_mu.device
            self.side.recorder[:] = [(i, mean.to(device), var.to(device)) for i, mean, var in state['bn_records']]
        return None

#----------------------------------------------------------------------------
# D's realness from its raw output [N, 2d] outside training: what PosteriorPrior.D_outputs() then realness() give.

class PosteriorRealness:
    def __init__(self, code_dim, p_a, p_b, sigma_act='raw'):
        self.prior = PosteriorPrior(code_dim=code_dim, p_a=p_a, p_b=p_b, sigma_act=sigma_act)

    def __call__(self, raw):
        return self.prior.realness(self.prior.D_outputs(raw))

#----------------------------------------------------------------------------

def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f'{name} must be one of {", ".join(choices)}, got {value!r}')

# A user prior (mu, sigma) -> Gaussian of floats, checked.
def _gaussian(name, value):
    try:
        mu, sigma = (float(v) for v in value)
    except (TypeError, ValueError) as err:
        raise ValueError(f'{name} must be a pair (mu, sigma), got {value!r}') from err
    if not (np.isfinite(mu) and np.isfinite(sigma) and sigma >= 0):
        raise ValueError(f'{name} = N({mu}, {sigma}^2): the mean must be finite and the standard deviation finite and >= 0')
    return pm.Gaussian(mu, sigma)

# Sum a tensor over all ranks in place (no-op on one process).
def _all_reduce(tensor, num_gpus):
    if num_gpus > 1:
        torch.distributed.all_reduce(tensor)
    return tensor

#----------------------------------------------------------------------------
