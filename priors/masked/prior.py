"""The masked and weighted multimodal latent priors (Goerttler & Kloft), `--prior=masked`.

Training (§3.1 of the paper): at the D step and at the G step, pre-sample n latents, score each with the current
G and D, and draw the batch from the finite masked prior (Def. 3: uniform over the top-r fraction by score) or
the finite weighted prior (Def. 4 with Eq. 7: probability proportional to the score), without gradient through
the selection. The score is Eq. 2, s = D(G(z)) as a probability: sigmoid of D's realness (the logit of
StyleGAN2's logistic loss, or the head owner's realness when another prior replaces D's head).

Mapping onto StyleGAN2-ADA (see docs/masked.md for every choice and its reason):
- the pre-sample covers the whole batch of a phase: at the phase's first round, n = ceil(presample * m)
  latents are drawn for the m latents of all its rounds on this process; with several processes the pools
  and scores are all-gathered, so the percentile is taken over presample * batch latents, as in the paper;
- steps 'Gmain' and 'Dgen' (not the path-length step 'Gpl', a smoothness regulariser);
- the style-mixing latent is drawn from the same pool and pmf as the main latents (role 'mix');
- scores come from the training G (random noise, no style mixing) and D without augmentation, in chunks of
  batch_gpu so that minibatch-stddev groups look like training batches. D's realness is the head owner's when
  another prior owns D's head (e.g. P2GAN's), at training and at sampling time. G is called as at sampling time:
  a synthesis side module (e.g. P2GAN's posterior modules + AdaIN) gets no side input and runs in eval mode for the
  scoring pass, so it uses its sampling-time code and running statistics and records no batch statistics
  into them (they stay those of the training steps);
- the prior draws from its own seeded stream (torch.Generator, seeded by (random_seed, rank)), whose state is
  saved per rank, so an exact resume continues the same draws; the training RNG streams are not touched;
- sampling time: MaskedSampleTransform applies the same selection with the snapshot's G_ema and D.
"""

import contextlib
import hashlib
import math
import time

import numpy as np
import torch

import dnnlib
from priors import base
from priors import registry
from torch_utils import training_stats

MODES = ('masked', 'weighted')
_STREAM = 0x6d61736b  # distinguishes this prior's stream from other seeded streams of the run

#----------------------------------------------------------------------------
# The selection itself (Def. 3 and Def. 4), on scores s [n] in [0, 1].

# Probabilities of the finite masked (Def. 3, Eq. 8) or weighted (Def. 4, Eq. 9-11 with Eq. 7) prior over
# the pre-sample. masked: 1/k on the k = max(1, round(r * n)) highest scores (ties broken by index), 0 else.
def selection_pmf(scores, mode, rate):
    scores = torch.as_tensor(scores, dtype=torch.float64)
    n = scores.numel()
    if mode == 'masked':
        k = max(1, int(round(rate * n)))
        order = sorted(range(n), key=lambda i: (-float(scores[i]), i))
        pmf = torch.zeros([n], dtype=torch.float64)
        pmf[order[:k]] = 1.0 / k
        return pmf
    if mode == 'weighted':
        total = scores.sum()
        if not total > 0:
            return torch.full([n], 1.0 / n, dtype=torch.float64)  # every score 0: nothing to prefer
        return scores / total
    raise ValueError(f'mode must be one of {", ".join(MODES)}, got {mode!r}')

# m indices drawn i.i.d. from the pmf (with replacement, as Def. 3-4 define a pmf over the pre-sample).
def draw_indices(pmf, m, generator):
    return torch.multinomial(pmf.to(torch.float64), int(m), replacement=True, generator=generator)

#----------------------------------------------------------------------------
# Scores s of latents, in chunks, without gradient: s = sigmoid(realness(D(G(z)))) (score 'sigmoid', D's output a
# logit) or s = realness(D(G(z))) as it is (score 'output', a critic whose output is already a probability, e.g.
# Table 1's sigmoid critic: Eq. 2 literally, s = D(G(z))).
SCORE_CHOICES = ('sigmoid', 'output')

def score_latents(G_mapping, G_synthesis, score_fn, z, c, chunk, score='sigmoid'):
    if score not in SCORE_CHOICES:
        raise ValueError(f'score must be one of {", ".join(SCORE_CHOICES)}, got {score!r}')
    scores = []
    with torch.no_grad():
        for lo in range(0, z.shape[0], chunk):
            ws = G_mapping(z[lo:lo + chunk], c[lo:lo + chunk], skip_w_avg_update=True)
            img = G_synthesis(ws)
            raw = score_fn(img, c[lo:lo + chunk]).to(torch.float64).flatten()
            scores.append(torch.sigmoid(raw) if score == 'sigmoid' else raw)
    out = torch.cat(scores)
    if score == 'output' and out.numel() and not bool(((out >= 0) & (out <= 1)).all()):
        raise ValueError(f'score "output" needs D outputs in [0, 1] (a sigmoid critic), got values in '
                         f'[{float(out.min()):.4g}, {float(out.max()):.4g}]; use score "sigmoid" for a logit')
    return out

# The scoring pass's G: a synthesis side module (the seam of training.networks.SynthesisNetwork) in eval mode, as
# at sampling time, so that it neither uses batch statistics nor records them; every module's flag is restored.
@contextlib.contextmanager
def sampling_mode_side(G_synthesis):
    side = getattr(getattr(G_synthesis, 'module', G_synthesis), 'side', None)
    modes = [(module, module.training) for module in side.modules()] if isinstance(side, torch.nn.Module) else []
    try:
        for module, _training in modes:
            module.training = False
        yield
    finally:
        for module, training in modes:
            module.training = training

# The realness of D's raw output at sampling time: the head owner's (a realness_kwargs() spec) or D's first output.
def build_realness(spec):
    if spec is None:
        return lambda raw: raw[:, :1]
    return dnnlib.util.construct_class_by_name(**spec)

#----------------------------------------------------------------------------

STEP_CHOICES = ('both', 'G')  # --masked-steps: select at the D and the G step (the paper), or at the G step only

@registry.register_prior('masked', cli='priors.masked.cli')
class MaskedPrior(base.Prior):
    def __init__(self,
        mode        = 'masked', # 'masked' (Def. 3) or 'weighted' (Def. 4, weights proportional to the score, Eq. 7).
        rate        = 0.5,      # r of Def. 3: the kept top fraction of the pre-sample (paper: 0.5). Only for 'masked'.
        presample   = 2.0,      # n / m: pre-sample size per batch latent (paper: n = 1000 for m = 500, i.e. 2).
        sampling    = True,     # Select at sampling time too (generate.py, metrics, grids), as the paper does.
        sample_pool = 64,       # Candidates per generated image at sampling time (see MaskedSampleTransform).
        steps       = 'both',   # Steps whose latents are selected: 'both' (Gmain and Dgen, §3.1 "in both steps") or 'G' (Gmain only; D trains on the plain prior).
        score       = 'sigmoid',# s = sigmoid(D's realness) ('sigmoid', for a logit) or D's realness as it is ('output', for a sigmoid critic: Table 1).
    ):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f'Prior "masked": mode must be one of {", ".join(MODES)}, got {mode!r}')
        if not 0 < rate <= 1:
            raise ValueError(f'Prior "masked": rate must be in (0, 1], got {rate}')
        if not (math.isfinite(presample) and presample >= 1):
            raise ValueError(f'Prior "masked": presample (n / m) must be a finite number >= 1, got {presample}')
        if not (isinstance(sample_pool, int) and sample_pool >= 1):
            raise ValueError(f'Prior "masked": sample_pool must be an integer >= 1, got {sample_pool!r}')
        self.mode, self.rate, self.presample = mode, float(rate), float(presample)
        self.sampling, self.sample_pool = bool(sampling), int(sample_pool)
        if steps not in STEP_CHOICES:
            raise ValueError(f'Prior "masked": steps must be one of {", ".join(STEP_CHOICES)}, got {steps!r}')
        self.steps = ('Gmain', 'Dgen') if steps == 'both' else ('Gmain',)
        if score not in SCORE_CHOICES:
            raise ValueError(f'Prior "masked": score must be one of {", ".join(SCORE_CHOICES)}, got {score!r}')
        self.score = score

    def sample_transform_kwargs(self):
        if not self.sampling:
            return None
        # With a head owner, configure() adds its realness_kwargs() as `realness` (priors.base.bind_realness).
        kwargs = dict(class_name='priors.masked.prior.MaskedSampleTransform', mode=self.mode, rate=self.rate, pool=self.sample_pool)
        if self.score != 'sigmoid':
            kwargs['score'] = self.score  # only when set: snapshots of the default stay as they were
        return kwargs

    def setup(self, ctx):
        super().setup(ctx)
        self.generator = torch.Generator().manual_seed(int(np.random.SeedSequence([int(ctx.random_seed), int(ctx.rank), _STREAM])
                                                           .generate_state(1, dtype=np.uint64)[0] % (2**63)))
        self.rounds = max(ctx.batch_size // (ctx.batch_gpu * ctx.num_gpus), 1)
        self.local_batch = ctx.batch_size // ctx.num_gpus
        self._round = {step: 0 for step in self.steps}
        self._pool = dict()      # step -> (z pool, c pool, pmf)
        self._picked = dict()    # step -> indices of this phase's m latents

    # Pre-sample, score and select for one phase (this process's m latents); all ranks take part.
    def _new_phase(self, step, c):
        ctx = self.ctx
        start = time.perf_counter()
        n_local = int(math.ceil(self.presample * self.local_batch))
        z_dim = int(ctx.G_mapping.z_dim)
        z_pool = torch.randn([n_local, z_dim], generator=self.generator).to(ctx.device)
        c_pool = c.repeat(int(math.ceil(n_local / c.shape[0])), 1)[:n_local] if c.shape[0] > 0 else c.new_zeros([n_local, c.shape[1]])
        with sampling_mode_side(ctx.G_synthesis):
            scores = score_latents(ctx.G_mapping, ctx.G_synthesis, ctx.score, z_pool, c_pool, ctx.batch_gpu, self.score)
        if ctx.num_gpus > 1:
            z_pool, c_pool, scores = (self._all_gather(t) for t in (z_pool, c_pool, scores))
        pmf = selection_pmf(scores.cpu(), self.mode, self.rate)
        picked = draw_indices(pmf, self.local_batch, self.generator)
        self._pool[step] = (z_pool, c_pool, pmf)
        self._picked[step] = picked.to(ctx.device)
        training_stats.report(f'Prior/masked/score_{step}', scores.float())
        training_stats.report(f'Prior/masked/kept_score_{step}', scores[picked.to(scores.device)].float())
        training_stats.report(f'Timing/masked/{step}_presample_sec', time.perf_counter() - start)

    def _all_gather(self, tensor):
        parts = [torch.empty_like(tensor) for _ in range(self.ctx.num_gpus)]
        torch.distributed.all_gather(parts, tensor.contiguous())
        return torch.cat(parts)

    def transform_latents(self, z, c, *, step, role, batch):
        if step not in self.steps:
            return z, c
        if role == 'mix':
            z_pool, c_pool, pmf = self._pool[step]
            idx = draw_indices(pmf, z.shape[0], self.generator).to(z.device)
            return z_pool[idx].to(z.dtype), c
        if self._round[step] == 0:
            self._new_phase(step, c)
        lo = self._round[step] * z.shape[0]
        self._round[step] = (self._round[step] + 1) % self.rounds
        z_pool, c_pool, _ = self._pool[step]
        idx = self._picked[step][lo:lo + z.shape[0]]
        return z_pool[idx].to(z.dtype), (c_pool[idx].to(c.dtype) if c.shape[1] > 0 else c)

    # Only the stream's position: pools never outlive a phase, and snapshots happen between iterations.
    def rank_state_dict(self):
        return dict(generator=self.generator.get_state().clone())

    def load_rank_state_dict(self, state):
        state = dict(state)
        self.generator.set_state(state.pop('generator'))
        super().load_rank_state_dict(state)

#----------------------------------------------------------------------------
# Sampling time: each requested latent z_i is replaced by a draw from the
# finite masked or weighted prior over `pool` candidates: z_i itself and
# pool - 1 latents from a stream seeded by z_i's bytes; the scoring pass's own
# randomness (G's noise inputs) is seeded from z_i too, inside a forked RNG. So
# the output for a seed does not depend on the batch it is generated in
# (generate.py, metrics and grids agree), the caller's RNG streams are left as
# they were, and with a large pool the draw approaches Def. 1 / Def. 2.

class MaskedSampleTransform:
    def __init__(self, mode='masked', rate=0.5, pool=64, chunk=16, realness=None, score='sigmoid'):
        if mode not in MODES:
            raise ValueError(f'MaskedSampleTransform: mode must be one of {", ".join(MODES)}, got {mode!r}')
        if score not in SCORE_CHOICES:
            raise ValueError(f'MaskedSampleTransform: score must be one of {", ".join(SCORE_CHOICES)}, got {score!r}')
        self.mode, self.rate, self.pool, self.chunk, self.score = mode, float(rate), int(pool), int(chunk), score
        self.realness = build_realness(realness)  # realness: None (D's logit) or the head owner's realness_kwargs()

    # The candidates' stream and the seed of the scoring pass's own randomness (G's noise inputs, a side module's
    # codes), both from z_row's bytes.
    def _generator(self, z_row):
        digest = hashlib.sha256(z_row.detach().to(torch.float32).cpu().numpy().tobytes()).digest()
        return torch.Generator().manual_seed(int.from_bytes(digest[:8], 'little') % (2**63)), int.from_bytes(digest[8:16], 'little') % (2**63)

    def __call__(self, z, c, *, G, D):
        out = []
        for i in range(z.shape[0]):
            gen, noise_seed = self._generator(z[i])
            candidates = torch.cat([z[i:i + 1], torch.randn([self.pool - 1, z.shape[1]], generator=gen).to(z.device, z.dtype)])
            cs = c[i:i + 1].expand(self.pool, -1)
            score_fn = lambda img, cc: self.realness(D(img, cc))
            # Any randomness of the scoring pass comes from a stream of this latent's own, and the caller's global
            # streams (CPU and CUDA) are left where they were.
            devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(noise_seed)
                scores = score_latents(G.mapping, G.synthesis, score_fn, candidates, cs, max(1, min(self.chunk, self.pool)), self.score)
            pmf = selection_pmf(scores.cpu(), self.mode, self.rate)
            out.append(candidates[draw_indices(pmf, 1, gen).to(z.device)])
        return torch.cat(out), c

#----------------------------------------------------------------------------
