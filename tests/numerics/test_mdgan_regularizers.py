"""The loss terms of the mode-regularised GAN and MDGAN (priors/mdgan/regularizers.py) against hand-computed values, float64 references and gradient checks."""

import math

import numpy as np
import pytest
import torch

from priors.mdgan import regularizers

#----------------------------------------------------------------------------
# Hand-computed: x = [[1, 2], [0, 0]], y = [[0, 0], [3, 4]] -> squared
# differences 1 + 4 = 5 and 9 + 16 = 25; means 2.5 and 12.5. A logit of
# log 3 is D = 3/4: -log D = log(4/3) = 0.2876821, -log(1 - D) = log 4.

LOG3 = math.log(3)
NEG_LOG_075 = 0.28768207245178090   # -log(3/4)
LOG2 = 0.69314718055994531
LOG4 = 1.38629436111989061

def test_squared_distance_by_hand():
    x = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    y = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    assert regularizers.squared_distance(x, y).tolist() == [2.5, 12.5]
    assert regularizers.squared_distance(x, y, reduction='sum').tolist() == [5.0, 25.0]


def test_squared_distance_of_images_reduces_every_non_batch_dim():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 2, 4, 5)), rng.normal(size=(3, 2, 4, 5))
    ref = np.array([((a[i] - b[i]) ** 2).mean() for i in range(3)])
    got = regularizers.squared_distance(torch.tensor(a, dtype=torch.float32), torch.tensor(b, dtype=torch.float32))
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-5)
    got_sum = regularizers.squared_distance(torch.tensor(a), torch.tensor(b), reduction='sum')
    np.testing.assert_allclose(got_sum.numpy(), ref * 40, rtol=1e-12)


def test_mode_regularizer_by_hand():
    logits = torch.tensor([[0.0], [LOG3], [-LOG3]], dtype=torch.float64)
    got = regularizers.mode_regularizer(logits)
    np.testing.assert_allclose(got.numpy(), [LOG2, NEG_LOG_075, LOG4], rtol=1e-12)


def test_mode_regularizer_raises_D_when_minimised():
    # The paper prints +lambda2 log D in Eq. 1-2; minimising the corrected term must increase D(G(E(x))).
    logits = torch.zeros([4, 1], requires_grad=True)
    regularizers.mode_regularizer(logits).sum().backward()
    assert torch.allclose(logits.grad, torch.full([4, 1], -0.5))  # d/dl softplus(-l) = -sigmoid(-l)


def test_reg_gan_loss_by_hand():
    distance = torch.tensor([2.5, 12.5], dtype=torch.float64)
    logits = torch.tensor([[0.0], [LOG3]], dtype=torch.float64)
    got = regularizers.reg_gan_loss(distance, logits, lambda1=0.2, lambda2=0.4)
    np.testing.assert_allclose(got.numpy(), [0.2 * 2.5 + 0.4 * LOG2, 0.2 * 12.5 + 0.4 * NEG_LOG_075], rtol=1e-12)
    np.testing.assert_allclose(got.numpy(), [0.7772588722239781, 2.6150728289807124], rtol=1e-12)


def test_manifold_loss_puts_lambda_on_the_adversarial_term():
    distance = torch.tensor([2.5, 12.5], dtype=torch.float64)
    logits = torch.tensor([[0.0], [LOG3]], dtype=torch.float64)
    got = regularizers.manifold_loss(distance, logits, lam=0.5)
    np.testing.assert_allclose(got.numpy(), [2.5 + 0.5 * LOG2, 12.5 + 0.5 * NEG_LOG_075], rtol=1e-12)


def test_discriminator_loss_by_hand():
    real, fake = regularizers.discriminator_loss(torch.tensor([[LOG3]], dtype=torch.float64), torch.tensor([[LOG3], [0.0]], dtype=torch.float64))
    np.testing.assert_allclose(real.numpy(), [NEG_LOG_075], rtol=1e-12)
    np.testing.assert_allclose(fake.numpy(), [LOG4, LOG2], rtol=1e-12)


def test_terms_match_a_float64_reference_and_gradcheck():
    rng = np.random.default_rng(1)
    x, y, l = rng.normal(size=(5, 3, 2, 2)), rng.normal(size=(5, 3, 2, 2)), 3 * rng.normal(size=(5, 1))
    sigmoid = 1 / (1 + np.exp(-l[:, 0]))
    d_ref = ((x - y) ** 2).reshape(5, -1).mean(axis=1)
    ref = 0.2 * d_ref - 0.4 * np.log(sigmoid)
    tx, ty, tl = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (x, y, l))
    got = regularizers.reg_gan_loss(regularizers.squared_distance(tx, ty), tl, 0.2, 0.4)
    np.testing.assert_allclose(got.detach().numpy(), ref, rtol=1e-12)
    fn = lambda a, b, c: regularizers.reg_gan_loss(regularizers.squared_distance(a, b), c, 0.2, 0.4)
    assert torch.autograd.gradcheck(fn, (tx, ty, tl))
    assert torch.autograd.gradcheck(lambda a, b: sum(regularizers.discriminator_loss(a, b)), (tl, tl.detach().clone().requires_grad_(True)))


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match='reduction must be one of mean, sum'):
        regularizers.squared_distance(torch.zeros(2, 2), torch.zeros(2, 2), reduction='max')
    with pytest.raises(ValueError, match='shapes differ'):
        regularizers.squared_distance(torch.zeros(2, 2), torch.zeros(2, 3))
    with pytest.raises(ValueError, match='one D logit per sample'):
        regularizers.mode_regularizer(torch.zeros(2, 4))
