"""P2GAN's generator side (Zhang et al. 2021, §4.3): posterior modules P_i and AdaIN with BN statistics, as the synthesis network's side module S.

G.synthesis builds `PosteriorSide(channels=[c_0, c_1, ...], **kwargs)` (one entry per modulated conv layer)
and replaces the output x of conv layer i by `S(i, x, side)`:

    s_i = P_i(z) = z W_i^T / sqrt(d) + b_i            (Eq. 10, one linear layer, no activation; [N, 2 C_i])
    S(i, x, z) = s_i[:, :C_i] * BN(x) + s_i[:, C_i:]  (Eq. 11: sigma_IN(s), mu_IN(s) as per-channel scale, bias)

`side` is the posterior code z [N, d] drawn from D(x_real) (detached) during training. `side=None` means
sampling time: z = eps * sigma_s + mu_s with eps ~ N(0, I) (torch's global generator, like noise_mode=
'random') and the test-time factors (mu_s, sigma_s) held in buffers; test_sample='mean' uses z = mu_s.
The buffer `stage` is 0 during the pretraining stage (S is plain BN, the modules are unused) and 1
after it; P_i start at W_i = 0, b_i = (1, 0), so the output is continuous when the stage switches.
Buffers reach G_ema (it copies G's buffers) and snapshots, so generate.py and the metrics need nothing
else. BN running statistics are not updated inside forward(): training-mode calls append their batch
statistics to `recorder` (a list the prior attaches to the live G; copies and pickles drop it), and the
prior calls `update_running_stats` once per iteration with their average over calls and ranks, so every
rank keeps identical buffers.
"""

import numpy as np
import torch

from priors.posterior import posterior_math
from torch_utils import persistence

#----------------------------------------------------------------------------

NORMS = ('bn', 'in')
TEST_SAMPLES = ('random', 'mean')

#----------------------------------------------------------------------------

@persistence.persistent_class
class PosteriorSide(torch.nn.Module):
    """Args: channels: output channels of each synthesis conv layer; code_dim: d; norm: 'bn' (Eq. 11) or
    'in' (Eq. 2, Table 7); test_mu, test_sigma: initial test-time factors (Eq. 19: (mu_a + mu_b) / 2,
    (sigma_a + sigma_b) / 2); test_sample: 'random' (z = eps * sigma_s + mu_s) or 'mean' (z = mu_s);
    bn_momentum, bn_eps: BN running-statistics momentum (per iteration) and epsilon."""

    def __init__(self,
        channels,               # Output channels of each synthesis conv layer, in execution order.
        code_dim,               # Size d of the posterior code z.
        norm        = 'bn',     # Normalisation of m_i in AdaIN: 'bn' (Eq. 11) or 'in' (Eq. 2).
        test_mu     = 0.0,      # Initial test-time mean mu_s of the code (Eq. 19 default: (mu_a + mu_b) / 2).
        test_sigma  = 2.0,      # Initial test-time std sigma_s of the code (Eq. 19 default: (sigma_a + sigma_b) / 2).
        test_sample = 'random', # Code at sampling time: 'random' = eps * sigma_s + mu_s, 'mean' = mu_s.
        bn_momentum = 0.1,      # Weight of the new batch statistics in the running ones, per update.
        bn_eps      = 1e-5,     # Epsilon of BN and IN.
    ):
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f'PosteriorSide: norm must be one of {", ".join(NORMS)}, got {norm!r}')
        if test_sample not in TEST_SAMPLES:
            raise ValueError(f'PosteriorSide: test_sample must be one of {", ".join(TEST_SAMPLES)}, got {test_sample!r}')
        if int(code_dim) < 1:
            raise ValueError(f'PosteriorSide: code_dim must be >= 1, got {code_dim}')
        self.channels = [int(ch) for ch in channels]
        self.code_dim, self.norm, self.test_sample = int(code_dim), norm, test_sample
        self.bn_momentum, self.bn_eps = float(bn_momentum), float(bn_eps)
        self.weight_gain = 1 / np.sqrt(self.code_dim)

        # Posterior modules P_i: zero weights, bias (scale 1, shift 0).
        for i, ch in enumerate(self.channels):
            setattr(self, f'P{i}_weight', torch.nn.Parameter(torch.zeros([2 * ch, self.code_dim])))
            setattr(self, f'P{i}_bias', torch.nn.Parameter(torch.cat([torch.ones([ch]), torch.zeros([ch])])))
            if norm == 'bn':
                self.register_buffer(f'bn{i}_mean', torch.zeros([ch]))
                self.register_buffer(f'bn{i}_var', torch.ones([ch]))

        # Sampling-time state.
        self.register_buffer('test_mu', torch.full([self.code_dim], float(test_mu)))
        self.register_buffer('test_sigma', torch.full([self.code_dim], float(test_sigma)))
        self.register_buffer('stage', torch.zeros([]))  # 0 = pretraining (plain BN), 1 = posterior modules on.
        self.recorder = None  # None, or a list that training-mode calls append (layer, batch mean, batch var) to.

    # Pickles and deep copies (snapshots, G_ema) leave out the recorder: it belongs to the live G of one rank.
    def __getstate__(self):
        state = dict(self.__dict__)
        state['recorder'] = None
        return state

    # Posterior module P_i of Eq. 10: code [N, d] -> (scale [N, C_i], bias [N, C_i]).
    def module_output(self, i, code):
        weight, bias = getattr(self, f'P{i}_weight'), getattr(self, f'P{i}_bias')
        s = torch.addmm(bias.unsqueeze(0), code.to(weight.dtype), weight.t() * self.weight_gain)  # [N, 2 C_i]
        return s[:, :self.channels[i]], s[:, self.channels[i]:]

    # The code used when no side input is given (sampling time): [N, d].
    def sampling_code(self, num, device):
        mu, sigma = self.test_mu.to(device), self.test_sigma.to(device)
        if self.test_sample == 'mean':
            return mu.unsqueeze(0).expand(num, -1)
        return torch.randn([num, self.code_dim], device=device, dtype=mu.dtype) * sigma + mu

    def forward(self, i, x, side):
        if self.norm == 'bn':
            mean, var = getattr(self, f'bn{i}_mean'), getattr(self, f'bn{i}_var')
        else:
            mean = var = None
        code = self.sampling_code(x.shape[0], x.device) if side is None else side
        if code.ndim != 2 or code.shape[0] != x.shape[0] or code.shape[1] != self.code_dim:
            raise ValueError(f'PosteriorSide: the side input must be a code [N={x.shape[0]}, d={self.code_dim}], got {list(code.shape)}')

        # Record the batch statistics for the running ones (see update_running_stats).
        if self.training and self.norm == 'bn' and self.recorder is not None:
            self.recorder.append((i, *posterior_math.batch_moments(x)))

        # AdaIN of Eq. 11; the stage blends between plain BN (0) and the posterior modules (1) without a host sync.
        scale, bias = self.module_output(i, code)
        stage = self.stage.to(scale.dtype)
        scale = 1 + stage * (scale - 1)
        bias = stage * bias
        return posterior_math.adain(x, scale, bias, self.norm, running_mean=mean, running_var=var, training=self.training,
                                    eps=self.bn_eps)

    # Running statistics <- (1 - momentum) * running + momentum * batch statistics, for every layer.
    # means, variances: lists of [C_i] tensors (averaged over the iteration's calls and ranks).
    @torch.no_grad()
    def update_running_stats(self, means, variances):
        if self.norm != 'bn':
            return
        for i, (mean, var) in enumerate(zip(means, variances)):
            running_mean, running_var = getattr(self, f'bn{i}_mean'), getattr(self, f'bn{i}_var')
            running_mean.lerp_(mean.to(running_mean), self.bn_momentum)
            running_var.lerp_(var.to(running_var), self.bn_momentum)

    def extra_repr(self):
        return f'channels={self.channels}, code_dim={self.code_dim}, norm={self.norm}, test_sample={self.test_sample}'

#----------------------------------------------------------------------------
