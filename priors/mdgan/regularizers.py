"""The loss terms of the mode-regularised GAN and MDGAN (Che et al., "Mode Regularized Generative Adversarial Networks", ICLR 2017, §3.1-3.3 and Appendix A), as pure tensor functions.

Every term is written as something to *minimise*, per sample ([N] tensors), with
D's raw logit l and D = sigmoid(l), so that -log D = softplus(-l) and
-log(1 - D) = softplus(l). The paper prints two of them with the wrong sign or
weight placement; the corrected forms (spec §3.6) are:

    Reg-GAN, Eq. 1-2 with the mode term's sign fixed:
        T_G = -E_z log D(G(z)) + E_x[ lambda1 d(x, G(E(x))) - lambda2 log D(G(E(x))) ]
        T_E =                    E_x[ lambda1 d(x, G(E(x))) - lambda2 log D(G(E(x))) ]
    MDGAN manifold step (Appendix A, steps 2-3, lambda on the adversarial term):
        D1:   -log D1(x) - log(1 - D1(G(E(x))))
        G, E: ||x - G(E(x))||^2 - lambda log D1(G(E(x)))
    MDGAN diffusion step (Appendix A, steps 6-7, with D2(G(z)) for the printed D2(z)):
        D2:   -log D2(G(E(x))) - log(1 - D2(G(z)))
        G:    -log D2(G(z))
"""

import torch

#----------------------------------------------------------------------------

DISTANCE_REDUCTIONS = ('mean', 'sum')  # d averages (default) or sums the squared differences over the non-batch dims

#----------------------------------------------------------------------------
# One logit per sample: [N, 1] or [N] -> [N]. A D with a wider head (e.g. a
# posterior head) has no single "probability of real" for these terms.

def _per_sample(logits, what):
    if logits.ndim == 2 and logits.shape[1] == 1:
        return logits[:, 0]
    if logits.ndim == 1:
        return logits
    raise ValueError(f'{what}: expected one D logit per sample ([N, 1] or [N]), got shape {list(logits.shape)}; '
                     f'the mode regularisers need a D with a single logit output')

#----------------------------------------------------------------------------
# Squared L2 distance d(a, b) of each sample, over every non-batch dimension
# (pixels, or feature vectors). The paper's ||x - G(E(x))||^2 is the 'sum';
# 'mean' divides by the number of values so that lambda does not depend on
# the resolution (spec §3.6 item 5).

def squared_distance(a, b, reduction='mean'):
    """Per-sample squared L2 distance, the d(x, G(E(x))) of §3.1 and Appendix A.

    Args:
        a, b: [N, ...] float tensors of the same shape (images [N, C, H, W], points [N, 2] or features [N, F]).
        reduction: 'mean' (over the non-batch values) or 'sum' (the paper's ||a - b||^2).
    Returns:
        [N] tensor, differentiable w.r.t. both inputs.
    """
    if reduction not in DISTANCE_REDUCTIONS:
        raise ValueError(f'squared_distance: reduction must be one of {", ".join(DISTANCE_REDUCTIONS)}, got {reduction!r}')
    if a.shape != b.shape:
        raise ValueError(f'squared_distance: the shapes differ, {list(a.shape)} vs {list(b.shape)}')
    squares = (a - b).square().flatten(1)  # [N, values]
    return squares.mean(dim=1) if reduction == 'mean' else squares.sum(dim=1)

#----------------------------------------------------------------------------
# -log D(img) from D's raw logits: the mode regulariser of §3.2 (to be
# minimised; the paper's Eq. 1-2 print +log D), and the non-saturating G loss.

def mode_regularizer(logits):
    """-log sigmoid(l) = softplus(-l) per sample.

    Args:
        logits: [N, 1] or [N] raw D outputs on G(E(x)).
    Returns:
        [N] tensor.
    """
    return torch.nn.functional.softplus(-_per_sample(logits, 'mode_regularizer'))

#----------------------------------------------------------------------------
# Reg-GAN's regulariser of G and E (Eq. 1-2, corrected sign):
# lambda1 d(x, G(E(x))) + lambda2 (-log D(G(E(x)))). The same per-sample value
# is T_E and the part of T_G that depends on x.

def reg_gan_loss(distance, logits, lambda1, lambda2):
    """Args:
        distance: [N] d(x, G(E(x))).
        logits:   [N, 1] D's raw outputs on G(E(x)).
        lambda1, lambda2: weights of the geometric and the mode regulariser (paper, MNIST: 0.2, 0.4).
    Returns:
        [N] tensor.
    """
    return lambda1 * distance + lambda2 * mode_regularizer(logits)

#----------------------------------------------------------------------------
# MDGAN's manifold-step loss of G (and E): d(x, G(E(x))) - lambda log D1(G(E(x)))
# (Appendix A step 3, as a loss; §3.3 puts lambda on d instead, we follow the
# pseudo-code).

def manifold_loss(distance, logits, lam):
    """Args:
        distance: [N] d(x, G(E(x))).
        logits:   [N, 1] D1's raw outputs on G(E(x)).
        lam:      weight of the adversarial term.
    Returns:
        [N] tensor.
    """
    return distance + lam * mode_regularizer(logits)

#----------------------------------------------------------------------------
# A discriminator's logistic loss: -log D(real) - log(1 - D(fake)). For D2 in
# the diffusion step, 'real' is G(E(x)) and 'fake' is G(z) (Appendix A step 6).

def discriminator_loss(real_logits, fake_logits):
    """Args:
        real_logits, fake_logits: [N, 1] raw outputs (N may differ between the two).
    Returns:
        (real_loss [N], fake_loss [N]): softplus(-l_real) and softplus(l_fake).
    """
    real = torch.nn.functional.softplus(-_per_sample(real_logits, 'discriminator_loss'))
    fake = torch.nn.functional.softplus(_per_sample(fake_logits, 'discriminator_loss'))
    return real, fake

#----------------------------------------------------------------------------
