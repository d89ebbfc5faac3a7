"""P2GAN maths as pure tensor functions (Zhang et al., "Posterior Promoted GAN with Distribution Discriminator for Unsupervised Image Synthesis", CVPR 2021, §4).

D maps an image to a diagonal Gaussian N(mu, diag sigma^2) over a d-dimensional code. Two such Gaussians
are compared through the distribution discrepancy of Eq. 4-7: with the same noise eps ~ N(0, I) for both,

    Dis(P1, P2) = 1/2 E_eps[ sum_k (eps_k (sigma1_k - sigma2_k) + (mu1_k - mu2_k))^2 ]
                = 1/2 sum_k [ (sigma1_k - sigma2_k)^2 + (mu1_k - mu2_k)^2 ]          (Eq. 7)

The first form is the reparameterised estimate used for training (one eps per pair, §4.5), the second
its closed form. The user priors P_a ("fake"), P_b ("real") and P_c = (P_a + P_b) / 2 (Eq. 9, 19) are
isotropic: a scalar mean and a scalar standard deviation shared by all d dimensions.
"""

import collections

import torch

#----------------------------------------------------------------------------
# A diagonal Gaussian over the code: mu, sigma [N, d] (D's output for N images),
# or scalars (a user prior N(mu, sigma^2 I)); broadcasting decides.

Gaussian = collections.namedtuple('Gaussian', ['mu', 'sigma'])

#----------------------------------------------------------------------------

def midpoint(p_a, p_b):
    """P_c = (P_a + P_b) / 2 of Eq. 9 and the optimum D* of Eq. 19-20: the average of the parameters
    (mean and standard deviation), not the mixture. Args: p_a, p_b: Gaussian of floats or tensors."""
    return Gaussian((p_a.mu + p_b.mu) / 2, (p_a.sigma + p_b.sigma) / 2)

#----------------------------------------------------------------------------

def reparameterise(p, eps):
    """Eq. 3: z = eps * sigma + mu. Args: p: Gaussian, tensors [N, d] or scalars; eps: [N, d].
    Returns [N, d]."""
    return eps * p.sigma + p.mu


def discrepancy_sampled(p1, p2, eps):
    """Reparameterised distribution discrepancy of Eq. 4-6, one sample per row, the same eps for
    both sides. Args: p1, p2: Gaussian ([N, d] tensors or scalars); eps: [N, d] standard normal.
    Returns [N]: 1/2 sum_k (a1_k - a2_k)^2 with a_i = eps * sigma_i + mu_i."""
    diff = reparameterise(p1, eps) - reparameterise(p2, eps)
    return 0.5 * diff.square().sum(dim=1)


def discrepancy_closed(p1, p2):
    """Closed form of Eq. 7: 1/2 sum_k [(sigma1_k - sigma2_k)^2 + (mu1_k - mu2_k)^2]; the expectation
    of discrepancy_sampled over eps. Args: p1, p2: Gaussian; at least one side [N, d].
    Returns [N]."""
    d_mu = torch.as_tensor(p1.mu) - p2.mu
    d_sigma = torch.as_tensor(p1.sigma) - p2.sigma
    return 0.5 * (d_mu.square() + d_sigma.square()).sum(dim=1)

#----------------------------------------------------------------------------

def code_distance_l1(p_fake, code, eps):
    """Latent code regulariser of Eq. 12 for matched pairs: sum_k |u_k(x_g) - z_k|, where z = the code
    the fake was generated from (drawn from D(x_r) with noise eps) and u(x_g) = eps * sigma(x_g) +
    mu(x_g) reuses the same eps, so both sides are samples of one reparameterised pair.
    Args: p_fake: Gaussian [N, d] (D on the fakes); code: [N, d]; eps: [N, d]. Returns [N]."""
    return (reparameterise(p_fake, eps) - code).abs().sum(dim=1)


def code_distance_l1_closed(p_fake, p_real):
    """Noise-free variant of Eq. 12: sum_k |mu_g,k - mu_r,k| + |sigma_g,k - sigma_r,k|.
    Args: p_fake, p_real: Gaussian [N, d]. Returns [N]."""
    return (p_fake.mu - p_real.mu).abs().sum(dim=1) + (p_fake.sigma - p_real.sigma).abs().sum(dim=1)

#----------------------------------------------------------------------------

def realness(p, p_a, p_b):
    """Scalar realness of D's output, for R1 and ADA's sign (our choice; the paper has neither):
    r = (Dis(D(x), P_a) - Dis(D(x), P_b)) / ||v||, with the closed-form Dis of Eq. 7 and
    v = (mu_b - mu_a, sigma_b - sigma_a) repeated over the d dimensions. Dis(., P_a) - Dis(., P_b) is
    affine in (mu, sigma), so r is the signed Euclidean distance of D's parameter vector from the
    hyperplane halfway between P_a and P_b: positive on P_b's (real) side, 0 at P_c, gradient norm 1
    with respect to (mu, sigma), like one logit. Args: p: Gaussian [N, d]; p_a, p_b: Gaussian of
    floats. Returns [N]."""
    num_dims = p.mu.shape[1]
    scale = (num_dims * ((p_b.mu - p_a.mu) ** 2 + (p_b.sigma - p_a.sigma) ** 2)) ** 0.5
    if scale == 0:
        raise ValueError('realness: P_a and P_b are the same distribution, so D cannot tell reals from fakes; choose different priors')
    return (discrepancy_closed(p, p_a) - discrepancy_closed(p, p_b)) / scale

#----------------------------------------------------------------------------

def adain(x, scale, bias, norm, running_mean=None, running_var=None, training=True, eps=1e-5):
    """AdaIN of Eq. 11: scale * (x - mean(x)) / std(x) + bias, per channel.

    Args:
        x: [N, C, H, W] or [N, C] features m_i of one G layer.
        scale, bias: [N, C] from the posterior module (sigma_IN(s_i^p), mu_IN(s_i^p)), or None for
            plain normalisation (the pretraining stage).
        norm: 'bn' (Eq. 11: statistics over batch and space; running statistics in eval mode), 'in'
            (Eq. 2: per image, over space; needs H, W > 1) or 'none'.
        running_mean, running_var: [C] statistics for 'bn' in eval mode (never updated here).
        training: 'bn' uses the batch statistics when True, the running ones when False.
    Returns a tensor like x (computed in float32 at least)."""
    dtype = x.dtype
    y = x.to(torch.promote_types(dtype, torch.float32))
    if norm == 'bn':
        if training:
            y = torch.nn.functional.batch_norm(y, None, None, training=True, eps=eps)
        else:
            y = torch.nn.functional.batch_norm(y, running_mean.to(y.dtype), running_var.to(y.dtype), training=False, eps=eps)
    elif norm == 'in':
        if y.ndim != 4 or y.shape[2] * y.shape[3] < 2:
            raise ValueError(f'adain: norm="in" needs feature maps [N, C, H, W] with H*W > 1, got {list(x.shape)}; use norm="bn"')
        y = torch.nn.functional.instance_norm(y, eps=eps)
    elif norm != 'none':
        raise ValueError(f'adain: norm must be "bn", "in" or "none", got {norm!r}')
    if scale is not None:
        shape = [y.shape[0], y.shape[1]] + [1] * (y.ndim - 2)
        y = y * scale.to(y.dtype).reshape(shape) + bias.to(y.dtype).reshape(shape)
    return y.to(dtype)


def batch_moments(x):
    """Per-channel batch mean and unbiased variance of x [N, C, ...] over all but the channel axis,
    as BN's running statistics use them. Returns ([C], [C]) in float32 at least, detached."""
    y = x.detach().to(torch.promote_types(x.dtype, torch.float32)).transpose(0, 1).flatten(1)  # [C, N*H*W]
    return y.mean(dim=1), y.var(dim=1, unbiased=y.shape[1] > 1)

#----------------------------------------------------------------------------
