"""Text-to-image losses: GAN-CLS matching-aware D/G and the per-attribute AC-GAN losses.

Golden values by hand, signs and gradient directions, errors, jit."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgan import losses


def softplus(x: float) -> float:
  """log(1 + e^x), by hand."""
  return math.log1p(math.exp(x))


def close(actual, expected, *, atol=1e-6, rtol=1e-6):
  np.testing.assert_allclose(np.asarray(actual), expected, atol=atol, rtol=rtol)


# ------------------------------------------------------------------------------- GAN-CLS


def test_matching_aware_discriminator_loss_zero_logits_is_two_log_two():
  z = jnp.zeros(4)
  close(losses.matching_aware_discriminator_loss(z, z, z), 2 * math.log(2))


def test_matching_aware_discriminator_loss_golden():
  # BCE(x, 1) = softplus(-x), BCE(x, 0) = softplus(x).
  real, wrong, fake = jnp.array([2.0, -1.0]), jnp.array([0.5]), jnp.array([-3.0, 1.0, 0.0])
  r = (softplus(-2.0) + softplus(1.0)) / 2
  w = softplus(0.5)
  f = (softplus(-3.0) + softplus(1.0) + softplus(0.0)) / 3
  close(losses.matching_aware_discriminator_loss(real, wrong, fake), r + 0.5 * w + 0.5 * f)
  close(losses.matching_aware_discriminator_loss(real, wrong, fake, wrong_weight=0.25),
        r + 0.25 * w + 0.75 * f)
  # wrong_weight 0: the plain (conditional) BCE discriminator loss.
  close(losses.matching_aware_discriminator_loss(real, wrong, fake, wrong_weight=0.0),
        losses.minimax_discriminator_loss(real, fake))
  # One-sided label smoothing 0.1: BCE(x, 0.9) = 0.9 softplus(-x) + 0.1 softplus(x).
  smoothed = (0.9 * softplus(-2.0) + 0.1 * softplus(2.0) + 0.9 * softplus(1.0)
              + 0.1 * softplus(-1.0)) / 2
  close(losses.matching_aware_discriminator_loss(real, wrong, fake, label_smoothing=0.1),
        smoothed + 0.5 * w + 0.5 * f)


def test_matching_aware_losses_signs_and_gradient_directions():
  real, wrong, fake = jnp.array([0.3, -0.2]), jnp.array([0.1, 0.4]), jnp.array([-0.5, 0.2])
  g_real, g_wrong, g_fake = jax.grad(losses.matching_aware_discriminator_loss,
                                     argnums=(0, 1, 2))(real, wrong, fake)
  # D lowers its loss by raising real logits and lowering both kinds of fake pair.
  assert np.all(np.asarray(g_real) < 0)
  assert np.all(np.asarray(g_wrong) > 0) and np.all(np.asarray(g_fake) > 0)
  # Half weight each: the same logit gets half the gradient in the wrong/fake terms.
  same = jnp.array([0.7])
  gw, gf = jax.grad(losses.matching_aware_discriminator_loss, argnums=(1, 2))(same, same, same)
  close(gw, gf)
  close(gw, 0.5 * jax.nn.sigmoid(0.7))
  # G raises the logits of its pairs; its loss is positive and log 2 at zero.
  assert np.all(np.asarray(jax.grad(losses.matching_aware_generator_loss)(fake)) < 0)
  close(losses.matching_aware_generator_loss(jnp.zeros(3)), math.log(2))
  close(losses.matching_aware_generator_loss(jnp.array([1.0, -2.0])),
        (softplus(-1.0) + softplus(2.0)) / 2)
  # Finite for huge logits (computed from logits, not probabilities).
  big = jnp.array([1e4, -1e4])
  assert np.isfinite(float(losses.matching_aware_discriminator_loss(big, big, big)))


@pytest.mark.parametrize("kwargs,match", [({"wrong_weight": 1.5}, "wrong_weight"),
                                          ({"wrong_weight": -0.1}, "wrong_weight"),
                                          ({"label_smoothing": 1.0}, "label_smoothing")])
def test_matching_aware_discriminator_loss_rejects_bad_weights(kwargs, match):
  z = jnp.zeros(2)
  with pytest.raises(ValueError, match=match):
    losses.matching_aware_discriminator_loss(z, z, z, **kwargs)


# ------------------------------------------------------------------------------- AC-GAN


def test_attribute_classifier_loss_zero_logits_is_sum_of_log_k():
  labels = jnp.array([[0, 2], [1, 0]])
  close(losses.attribute_classifier_loss(jnp.zeros((2, 5)), labels, num_classes=(2, 3)),
        math.log(2) + math.log(3))


def test_attribute_classifier_loss_golden_with_missing_labels():
  # Attribute 0 (2 classes) logits [2, 0]: label 0 -> softplus(-2), label 1 -> softplus(2).
  # Attribute 1 (3 classes) logits [1, 0, 0]: label 0 -> log(e + 2) - 1, label 2 -> log(e + 2).
  logits = jnp.array([[2.0, 0.0, 1.0, 0.0, 0.0],
                      [2.0, 0.0, 1.0, 0.0, 0.0],
                      [2.0, 0.0, 1.0, 0.0, 0.0]])
  labels = jnp.array([[0, 0], [1, -1], [-1, 2]])
  a0 = (softplus(-2.0) + softplus(2.0)) / 2  # rows 0 and 1 have attribute 0
  a1 = ((math.log(math.e + 2) - 1) + math.log(math.e + 2)) / 2  # rows 0 and 2
  close(losses.attribute_classifier_loss(logits, labels, num_classes=(2, 3)), a0 + a1)
  # An attribute nobody has counts 0 (no NaN from 0 / 0), and gets no gradient.
  none = jnp.array([[0, -1], [1, -1], [0, -1]])
  close(losses.attribute_classifier_loss(logits, none, num_classes=(2, 3)),
        (2 * softplus(-2.0) + softplus(2.0)) / 3)
  grad = jax.grad(lambda l: losses.attribute_classifier_loss(l, none, num_classes=(2, 3)))(
      logits)
  np.testing.assert_array_equal(np.asarray(grad)[:, 2:], 0.0)


def test_attribute_classifier_loss_equals_auxiliary_classifier_loss_for_one_attribute():
  logits = jax.random.normal(jax.random.key(0), (6, 4))
  labels = jnp.array([0, 3, 1, 2, 2, 0])
  close(losses.attribute_classifier_loss(logits, labels[:, None], num_classes=(4,)),
        losses.auxiliary_classifier_loss(logits, labels), rtol=1e-5)


def test_auxiliary_classifier_d_and_g_losses_golden_and_gradients():
  real = jnp.array([[2.0, 0.0], [0.0, 0.0]])
  fake = jnp.array([[0.0, 1.0], [0.0, 0.0]])
  labels = jnp.array([[0], [1]])
  ce_real = (softplus(-2.0) + math.log(2)) / 2
  ce_fake = (softplus(1.0) + math.log(2)) / 2
  d = losses.auxiliary_classifier_discriminator_loss(real, fake, labels, num_classes=(2,))
  close(d, ce_real + ce_fake)
  d_real_only = losses.auxiliary_classifier_discriminator_loss(real, fake, labels,
                                                               num_classes=(2,), fake_weight=0.0)
  close(d_real_only, ce_real)
  # fake_weight=0 leaves the fakes' term out (not 0 * it: a NaN there would poison the loss).
  close(losses.auxiliary_classifier_discriminator_loss(
      real, jnp.full_like(fake, jnp.nan), labels, num_classes=(2,), fake_weight=0.0), ce_real)
  with pytest.raises(ValueError, match="must match"):
    losses.auxiliary_classifier_discriminator_loss(real, fake[:1], labels, num_classes=(2,),
                                                   fake_weight=0.0)
  close(losses.auxiliary_classifier_generator_loss(fake, labels, num_classes=(2,)), ce_fake)
  # G's gradient raises the asked-for class's logit and lowers the other.
  g = np.asarray(jax.grad(lambda f: losses.auxiliary_classifier_generator_loss(
      f, labels, num_classes=(2,)))(fake))
  assert g[0, 0] < 0 < g[0, 1] and g[1, 1] < 0 < g[1, 0]
  with pytest.raises(ValueError, match="fake_weight"):
    losses.auxiliary_classifier_discriminator_loss(real, fake, labels, num_classes=(2,),
                                                   fake_weight=-1.0)


@pytest.mark.parametrize("logits_shape,labels_shape,num_classes,match", [
    ((2, 5), (2, 2), (2, 2), r"logits \[B, 4\]"),
    ((2, 5), (2, 1), (2, 3), r"labels \[B, 2\]"),
    ((2, 5), (2, 2), (), "num_classes"),
    ((2, 5), (2, 2), (2, 0), "num_classes"),
])
def test_attribute_classifier_loss_errors_name_the_shapes(logits_shape, labels_shape,
                                                          num_classes, match):
  with pytest.raises(ValueError, match=match):
    losses.attribute_classifier_loss(jnp.zeros(logits_shape),
                                     jnp.zeros(labels_shape, jnp.int32),
                                     num_classes=num_classes)


def test_text_conditional_losses_jit_gives_same_value():
  key = jax.random.key(1)
  a, b, c = (jax.random.normal(k, (5,)) for k in jax.random.split(key, 3))
  logits = jax.random.normal(key, (5, 7))
  labels = jnp.array([[0, 1], [1, -1], [-1, 4], [0, 0], [1, 2]])
  for fn, args in ((losses.matching_aware_discriminator_loss, (a, b, c)),
                   (losses.matching_aware_generator_loss, (a,))):
    close(jax.jit(fn)(*args), fn(*args), rtol=1e-5)
  fn = lambda l, y: losses.attribute_classifier_loss(l, y, num_classes=(2, 5))  # noqa: E731
  close(jax.jit(fn)(logits, labels), fn(logits, labels), rtol=1e-5)


def test_mode_seeking_loss_golden_sign_and_gradient():
  """Images 0.5 apart everywhere for noises 1 apart: ratio 0.5, loss 1 / (0.5 + 1e-5); images
  further apart give a smaller loss, and its gradient pushes the two images apart."""
  a, b = jnp.zeros((2, 4, 4, 3)), jnp.full((2, 4, 4, 3), 0.5)
  za, zb = jnp.zeros((2, 8)), jnp.ones((2, 8))
  np.testing.assert_allclose(float(losses.mode_seeking_loss(a, b, za, zb)), 1 / (0.5 + 1e-5),
                             rtol=1e-6)
  assert float(losses.mode_seeking_loss(a, 2 * b, za, zb)) < float(
      losses.mode_seeking_loss(a, b, za, zb))
  grad_b = jax.grad(lambda y: losses.mode_seeking_loss(a, y, za, zb))(b)
  assert float(jnp.max(grad_b)) < 0  # raising b (away from a) lowers the loss
  assert np.isfinite(float(losses.mode_seeking_loss(a, a, za, zb)))  # eps: finite at 0
  with pytest.raises(ValueError, match=r"one shape each.*\(2, 4, 4, 3\).*\(1, 4, 4, 3\)"):
    losses.mode_seeking_loss(a, b[:1], za, zb)
  with pytest.raises(ValueError, match="eps must be > 0, got 0"):
    losses.mode_seeking_loss(a, b, za, zb, eps=0)


def test_mode_seeking_loss_pool_ignores_fine_texture():
  """pool=2: a +-0.5 checkerboard difference averages out (ratio 0, loss 1 / eps), a uniform
  0.5 difference stays (loss as unpooled); bad pools are named."""
  a = jnp.zeros((2, 4, 4, 3))
  checker = 0.5 * jnp.where((jnp.arange(4)[:, None] + jnp.arange(4)[None, :]) % 2 == 0, 1.0,
                            -1.0)[None, :, :, None] * jnp.ones((2, 4, 4, 3))
  za, zb = jnp.zeros((2, 8)), jnp.ones((2, 8))
  np.testing.assert_allclose(float(losses.mode_seeking_loss(a, checker, za, zb)),
                             1 / (0.5 + 1e-5), rtol=1e-6)
  np.testing.assert_allclose(float(losses.mode_seeking_loss(a, checker, za, zb, pool=2)),
                             1 / 1e-5, rtol=1e-4)
  flat = jnp.full((2, 4, 4, 3), 0.5)
  np.testing.assert_allclose(float(losses.mode_seeking_loss(a, flat, za, zb, pool=2)),
                             1 / (0.5 + 1e-5), rtol=1e-6)
  grad = jax.grad(lambda y: losses.mode_seeking_loss(a, y, za, zb, pool=2))(flat)
  assert float(jnp.max(grad)) < 0
  with pytest.raises(ValueError, match="pool=3 needs images .* divisible"):
    losses.mode_seeking_loss(a, flat, za, zb, pool=3)
  with pytest.raises(ValueError, match="pool must be an integer >= 1, got 0"):
    losses.mode_seeking_loss(a, flat, za, zb, pool=0)


def test_latent_regression_loss_golden_sign_and_gradient():
  """Predictions 1 off in every value: 0.5; exact ones: 0; a prediction that ignores the image
  (0 for standard normal noise) costs mean(z ** 2) / 2; the gradient moves the prediction
  towards the noise; shapes must match."""
  z = jnp.array([[1.0, -2.0], [0.5, 0.0]])
  close(losses.latent_regression_loss(z + 1.0, z), 0.5)
  close(losses.latent_regression_loss(z, z), 0.0)
  close(losses.latent_regression_loss(jnp.zeros_like(z), z), (1 + 4 + 0.25) / 4 / 2)
  grad = jax.grad(lambda p: losses.latent_regression_loss(p, z))(z + 1.0)
  close(grad, jnp.full((2, 2), 0.25))  # d/dp (p - z)^2 / 2 / 4 = (p - z) / 4
  close(jax.jit(losses.latent_regression_loss)(z + 1.0, z), 0.5)
  with pytest.raises(ValueError, match=r"noise's shape.*\(2, 1\).*\(2, 2\)"):
    losses.latent_regression_loss(z[:, :1], z)
