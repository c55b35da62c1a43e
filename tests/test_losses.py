"""Tests for jgan.losses: golden values, a battery over every family, errors and jit."""

import functools
import math

import chex
import hypothesis
import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
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


FAMILIES = sorted(losses.LOSS_FAMILIES)


def normal(seed, shape, scale=1.0):
  """Test inputs from numpy (cheaper than eager jax.random)."""
  return jnp.asarray(scale * np.random.default_rng(seed).standard_normal(shape), jnp.float32)

# --------------------------------------------------------------------------------------------
# Golden values, one family at a time.
# --------------------------------------------------------------------------------------------


def test_bce_discriminator_loss_at_zero_logits_is_two_log_two():
  # BCE(0, 1) = softplus(-0) = log 2 and BCE(0, 0) = softplus(0) = log 2; sum = 2 log 2.
  for d_loss in (losses.minimax_discriminator_loss, losses.non_saturating_discriminator_loss):
    close(d_loss(jnp.array([0.0]), jnp.array([0.0])), 2 * math.log(2))


def test_bce_discriminator_loss_golden():
  # real: BCE(x, 1) = softplus(-x): mean(softplus(-2), softplus(1)).
  # fake: BCE(x, 0) = softplus(x): mean(softplus(0.5), softplus(-3)).
  expected = ((softplus(-2.0) + softplus(1.0)) / 2 + (softplus(0.5) + softplus(-3.0)) / 2)
  value = losses.minimax_discriminator_loss(jnp.array([2.0, -1.0]), jnp.array([0.5, -3.0]))
  close(value, expected)


def test_bce_label_smoothing_changes_value_by_hand_computed_amount():
  # With target t: BCE(x, t) = t softplus(-x) + (1 - t) softplus(x). For t = 1 - s:
  # BCE = softplus(-x) + s (softplus(x) - softplus(-x)) = softplus(-x) + s x.
  # d_real = 2, s = 0.1: the real term grows by 0.1 * 2 = 0.2; the fake term is unchanged.
  d_real, d_fake = jnp.array([2.0]), jnp.array([0.5])
  plain = losses.minimax_discriminator_loss(d_real, d_fake)
  smoothed = losses.minimax_discriminator_loss(d_real, d_fake, label_smoothing=0.1)
  close(smoothed - plain, 0.2, atol=1e-6)
  close(plain, softplus(-2.0) + softplus(0.5))


def test_minimax_generator_loss_golden():
  # log(1 - sigmoid(x)) = -softplus(x): at 0 it is -log 2; at [1, -1] the mean of
  # -softplus(1) and -softplus(-1).
  close(losses.minimax_generator_loss(jnp.array([0.0])), -math.log(2))
  close(losses.minimax_generator_loss(jnp.array([1.0, -1.0])),
        -(softplus(1.0) + softplus(-1.0)) / 2)


def test_non_saturating_generator_loss_golden():
  # -log sigmoid(x) = softplus(-x): at 0 it is log 2; at [2, -1] mean(softplus(-2), softplus(1)).
  close(losses.non_saturating_generator_loss(jnp.array([0.0])), math.log(2))
  close(losses.non_saturating_generator_loss(jnp.array([2.0, -1.0])),
        (softplus(-2.0) + softplus(1.0)) / 2)


def test_minimax_and_non_saturating_share_the_discriminator_loss():
  d_real = normal(0, (7,))
  d_fake = normal(1, (7,))
  close(losses.non_saturating_discriminator_loss(d_real, d_fake, label_smoothing=0.2),
        losses.minimax_discriminator_loss(d_real, d_fake, label_smoothing=0.2))


def test_least_squares_discriminator_loss_golden():
  # 0.5 * mean((d_real - 1)^2) + 0.5 * mean(d_fake^2)
  #   = 0.5 * mean(0, 1) + 0.5 * mean(0, 4) = 0.25 + 1 = 1.25.
  d_real, d_fake = jnp.array([1.0, 0.0]), jnp.array([0.0, 2.0])
  close(losses.least_squares_discriminator_loss(d_real, d_fake), 1.25)
  # Smoothing 0.2 -> real target 0.8: 0.5 * mean(0.2^2, 0.8^2) = 0.5 * 0.34 = 0.17; + 1.
  close(losses.least_squares_discriminator_loss(d_real, d_fake, label_smoothing=0.2), 1.17)


def test_least_squares_generator_loss_golden():
  # 0.5 * mean((1 - 1)^2, (3 - 1)^2) = 0.5 * 2 = 1.
  close(losses.least_squares_generator_loss(jnp.array([1.0, 3.0])), 1.0)


def test_hinge_discriminator_loss_golden():
  # relu(1 - [2, 0.5, -1]) = [0, 0.5, 2], mean 2.5 / 3;
  # relu(1 + [-2, 0, 1]) = [0, 1, 2], mean 1.
  value = losses.hinge_discriminator_loss(jnp.array([2.0, 0.5, -1.0]),
                                          jnp.array([-2.0, 0.0, 1.0]))
  close(value, 2.5 / 3 + 1.0)


def test_hinge_generator_loss_golden():
  # -mean(1, 2, 3) = -2.
  close(losses.hinge_generator_loss(jnp.array([1.0, 2.0, 3.0])), -2.0)


def test_wasserstein_losses_golden_with_unequal_batch_sizes():
  # D: mean(d_fake) - mean(d_real) = mean(-1, 0, 4) - mean(1, 3) = 1 - 2 = -1.
  close(losses.wasserstein_discriminator_loss(jnp.array([1.0, 3.0]),
                                              jnp.array([-1.0, 0.0, 4.0])), -1.0)
  # G: -mean(1, 2) = -1.5.
  close(losses.wasserstein_generator_loss(jnp.array([1.0, 2.0])), -1.5)


def test_auxiliary_classifier_loss_golden():
  # Uniform logits over K = 4 classes: -log(1/4) = log 4, whatever the labels.
  close(losses.auxiliary_classifier_loss(jnp.zeros((2, 4)), jnp.array([0, 3])), math.log(4))
  # logits [2, 0]: p(0) = e^2 / (e^2 + 1) -> CE = log(1 + e^-2) = softplus(-2);
  # label 1: CE = log(1 + e^2) = softplus(2). Batch mean of the two.
  value = losses.auxiliary_classifier_loss(jnp.array([[2.0, 0.0], [2.0, 0.0]]),
                                           jnp.array([0, 1]))
  close(value, (softplus(-2.0) + softplus(2.0)) / 2)


def test_auxiliary_classifier_loss_rejects_bad_shapes():
  with pytest.raises(ValueError, match=r"\[B, K\]"):
    losses.auxiliary_classifier_loss(jnp.zeros((2, 4)), jnp.array([0, 1, 2]))


def test_ternary_losses_at_zero_logits():
  # Uniform over 3 classes: every CE is log 3; D sums three terms, G two.
  z = jnp.zeros((4, 3))
  close(losses.ternary_discriminator_loss(z, z, z), 3 * math.log(3))
  close(losses.ternary_generator_loss(z, z), 2 * math.log(3))


def test_ternary_discriminator_loss_golden():
  ln2 = math.log(2.0)
  # d_src_fake [2, 0, 0] vs class 0: -log(e^2 / (e^2 + 2)) = log(1 + 2 e^-2).
  # d_tgt_fake [0, 1, 0] vs class 1: -log(e / (e + 2)) = log(1 + 2 e^-1).
  # d_tgt_real [0, 0, ln 2] vs class 2: -log(2 / (1 + 1 + 2)) = log 2.
  # (Each row's largest logit is its own class, so any permutation of the labels changes
  # the value.)
  value = losses.ternary_discriminator_loss(
      jnp.array([[2.0, 0.0, 0.0]]), jnp.array([[0.0, 1.0, 0.0]]), jnp.array([[0.0, 0.0, ln2]]))
  close(value, math.log(1 + 2 * math.exp(-2.0)) + math.log(1 + 2 * math.exp(-1.0))
        + math.log(2))


def test_ternary_generator_loss_golden():
  # Both fakes are scored against class 2 ("real target"):
  # [0, 0, ln 2] -> -log(2 / 4) = log 2;  [2, 0, 0] -> -log(1 / (e^2 + 2)) = log(e^2 + 2).
  value = losses.ternary_generator_loss(jnp.array([[0.0, 0.0, math.log(2.0)]]),
                                        jnp.array([[2.0, 0.0, 0.0]]))
  close(value, math.log(2) + math.log(math.exp(2.0) + 2))


def test_ternary_realness_golden_sign_and_gradient():
  # [0, 0, 0]: log(1/3) - log(2/3) = -log 2.  [1, ln 2, 3]: 3 - log(e + 2).
  value = losses.ternary_realness(jnp.array([[0.0, 0.0, 0.0], [1.0, math.log(2.0), 3.0]]))
  close(value[0], -math.log(2.0))
  close(value[1], 3.0 - math.log(math.e + 2.0))
  # It rises with the real logit and falls with either fake logit: d/dl2 = 1,
  # d/dl0 = -softmax([l0, l1])[0].
  g = jax.grad(lambda l: losses.ternary_realness(l[None])[0])(jnp.array([1.0, math.log(2.0), 3.0]))
  close(g[2], 1.0)
  close(g[0], -math.e / (math.e + 2.0))
  close(g[1], -2.0 / (math.e + 2.0))
  with pytest.raises(ValueError, match=r"\[B, 3\].*\(2, 2\)"):
    losses.ternary_realness(jnp.zeros((2, 2)))


def test_ternary_wasserstein_losses_golden_sign_and_gradient():
  # Realness: real [0, 0, ln 2] -> 0; source fake [0, 0, 0] -> -ln 2; target fake
  # [ln 2, ln 2, 0] -> -ln 4. D: (-ln 2 - 0) + (-ln 4 - 0) = -3 ln 2; g: ln 2 + ln 4.
  ln2 = math.log(2.0)
  real, src, tgt = (jnp.array([[0.0, 0.0, ln2]]), jnp.array([[0.0, 0.0, 0.0]]),
                    jnp.array([[ln2, ln2, 0.0]]))
  close(losses.ternary_wasserstein_discriminator_loss(src, tgt, real), -3 * ln2)
  close(losses.ternary_wasserstein_generator_loss(src, tgt), 3 * ln2)
  # D lowers its loss by raising the real targets' "real" logit (counted once per fake
  # batch) and by raising a fake's "fake" logits; g gains by raising its "real" logit.
  g_real = jax.grad(lambda r: losses.ternary_wasserstein_discriminator_loss(src, tgt, r))(real)
  close(g_real[0, 2], -2.0)
  g_src = jax.grad(lambda s: losses.ternary_wasserstein_discriminator_loss(s, tgt, real))(src)
  assert float(g_src[0, 2]) > 0 and float(g_src[0, 0]) < 0
  g_gen = jax.grad(lambda s: losses.ternary_wasserstein_generator_loss(s, tgt))(src)
  close(g_gen[0, 2], -1.0)
  assert set(losses.DTN_ADVERSARIAL) == {"ternary", "wasserstein"}
  with pytest.raises(ValueError, match=r"\[B, 3\].*\(2, 2\)"):
    losses.ternary_wasserstein_discriminator_loss(src, tgt, jnp.zeros((2, 2)))


def test_ternary_losses_reject_non_ternary_logits():
  with pytest.raises(ValueError, match=r"d_tgt_real.*\[B, 3\].*\(2, 2\)"):
    losses.ternary_discriminator_loss(jnp.zeros((2, 3)), jnp.zeros((2, 3)), jnp.zeros((2, 2)))
  with pytest.raises(ValueError, match=r"d_src_fake"):
    losses.ternary_generator_loss(jnp.zeros((2,)), jnp.zeros((2, 3)))


def test_const_loss_golden():
  f_x = jnp.array([[1.0, 2.0], [0.0, 0.0]])
  f_g_f_x = jnp.array([[1.0, 0.0], [3.0, 4.0]])
  # mse: per-example sums of squares [0 + 4, 9 + 16] = [4, 25]; batch mean 14.5.
  close(losses.const_loss(f_x, f_g_f_x), 14.5)
  # l1: [0 + 2, 3 + 4] = [2, 7]; mean 4.5.
  close(losses.const_loss(f_x, f_g_f_x, distance="l1"), 4.5)
  # cosine: 1 - cos([1, 2], [1, 0]) = 1 - 1/sqrt(5); a zero vector gives cos = 0 -> 1.
  close(losses.const_loss(f_x, f_g_f_x, distance="cosine"), (1 - 1 / math.sqrt(5) + 1) / 2)


def test_class_consistency_loss_golden_sign_and_gradient():
  # source logits [0, 0] -> p = [0.5, 0.5]; translation logits [0, ln 3] -> q = [1/4, 3/4]:
  # -(0.5 ln 0.25 + 0.5 ln 0.75) = 0.5 (ln 4 + ln 4/3). Second example: [ln 3, 0] read as
  # [ln 3, 0]: p = q = [3/4, 1/4], the entropy -(3/4 ln 3/4 + 1/4 ln 1/4).
  src = jnp.array([[0.0, 0.0], [math.log(3.0), 0.0]])
  tr = jnp.array([[0.0, math.log(3.0)], [math.log(3.0), 0.0]])
  first = 0.5 * (math.log(4.0) + math.log(4.0 / 3.0))
  entropy = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
  close(losses.class_consistency_loss(src, tr), (first + entropy) / 2)
  # Agreement is the minimum (Gibbs): reading the translation as the source lowers the loss,
  # and the gradient points the translation's logits toward the source's class.
  assert float(losses.class_consistency_loss(src, src)) < float(
      losses.class_consistency_loss(src, tr))
  grad = jax.grad(lambda t: losses.class_consistency_loss(src, t))(tr)
  assert float(grad[0, 1]) > 0 > float(grad[0, 0])  # class 1 over-read: push it down
  np.testing.assert_allclose(np.asarray(grad[1]), 0.0, atol=1e-7)  # agrees: no gradient
  # No gradient reaches the source logits (a fixed target, as f's reading of the source).
  np.testing.assert_allclose(
      np.asarray(jax.grad(lambda a: losses.class_consistency_loss(a, tr))(src)), 0.0)
  with pytest.raises(ValueError, match=r"\[B, K\].*\(2, 2\) and \(2, 3\)"):
    losses.class_consistency_loss(src, jnp.zeros((2, 3)))


def test_identity_contrastive_loss_golden_sign_and_gradient():
  # f_x = [[0, 0], [2, 0]], translations equal to them: the two are 4 / 2 = 2 apart in mean
  # squared distance, so at temperature 1 each row's logits are [0, -2] (own face first):
  # loss = log(1 + e^-2) for both.
  f_x = jnp.array([[0.0, 0.0], [2.0, 0.0]])
  close(losses.identity_contrastive_loss(f_x, f_x, temperature=1.0), math.log1p(math.exp(-2.0)))
  # A negative at [0, 2] (2 from the first face, 4 from the second): row 0 gains e^-2, row 1
  # gains e^-4.
  neg = jnp.array([[0.0, 2.0]])
  want = (math.log(1 + 2 * math.exp(-2.0)) + math.log(1 + math.exp(-2.0) + math.exp(-4.0))) / 2
  close(losses.identity_contrastive_loss(f_x, f_x, negatives=neg, temperature=1.0), want)
  # Equidistant translations (both at [1, 0]) give log(N); swapping them costs more; a lower
  # temperature sharpens the right answer towards 0.
  mid = jnp.array([[1.0, 0.0], [1.0, 0.0]])
  close(losses.identity_contrastive_loss(f_x, mid), math.log(2.0))
  assert float(losses.identity_contrastive_loss(f_x, f_x[::-1])) > math.log(2.0)
  assert float(losses.identity_contrastive_loss(f_x, f_x, temperature=0.1)) < 1e-8
  # The gradient pulls translation 0 towards its face (from [1, 0] towards [0, 0]) and none
  # reaches the gallery.
  grad = jax.grad(lambda t: losses.identity_contrastive_loss(f_x, t))(mid)
  assert float(grad[0, 0]) > 0 > float(grad[1, 0])
  np.testing.assert_allclose(np.asarray(jax.grad(
      lambda a: losses.identity_contrastive_loss(a, mid, negatives=a))(f_x)), 0.0)
  with pytest.raises(ValueError, match="temperature must be > 0, got 0"):
    losses.identity_contrastive_loss(f_x, f_x, temperature=0)
  with pytest.raises(ValueError, match=r"\(2, 2\), \(2, 2\) and \(1, 3\)"):
    losses.identity_contrastive_loss(f_x, f_x, negatives=jnp.zeros((1, 3)))


def test_cosine_distance_has_finite_gradient_at_zero_vector():
  grad = jax.grad(lambda a: losses.const_loss(a, jnp.ones((2, 3)), distance="cosine"))(
      jnp.zeros((2, 3)))
  assert np.all(np.isfinite(np.asarray(grad)))


def test_tid_loss_golden_on_images():
  # Two 1x2 single-channel images [B, H, W, C] = [2, 1, 2, 1].
  x = jnp.array([[1.0, 2.0], [0.0, 0.0]]).reshape(2, 1, 2, 1)
  g_f_x = jnp.array([[0.0, 2.0], [2.0, 0.0]]).reshape(2, 1, 2, 1)
  # mse: per-image sums of squares [1, 4]; mean 2.5.   l1: [1, 2]; mean 1.5.
  close(losses.tid_loss(x, g_f_x), 2.5)
  close(losses.tid_loss(x, g_f_x, distance="l1"), 1.5)
  # cosine: image 1: cos([1, 2], [0, 2]) = 4 / (sqrt(5) * 2); image 2: zero vector -> 1.
  close(losses.tid_loss(x, g_f_x, distance="cosine"), (1 - 2 / math.sqrt(5) + 1) / 2)


@pytest.mark.parametrize("fn", [losses.const_loss, losses.tid_loss])
def test_distance_rejects_unknown_name_and_lists_allowed(fn):
  with pytest.raises(ValueError) as err:
    fn(jnp.zeros((2, 3)), jnp.zeros((2, 3)), distance="cos")
  message = str(err.value)
  assert "'cos'" in message
  for name in ("mse", "l1", "cosine"):
    assert name in message


def test_distance_rejects_mismatched_shapes():
  with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 4\)"):
    losses.const_loss(jnp.zeros((2, 3)), jnp.zeros((2, 4)))


# total_variation is called through jit here: one compilation per input shape is much cheaper
# than compiling each primitive eagerly (eager == jit is checked at the bottom of the file).
_tv = jax.jit(losses.total_variation, static_argnames=("beta", "eps"))


def test_total_variation_golden_2x2():
  # z = [[0, 1], [2, 4]] (one channel). Forward differences, zero past the border:
  #   (0,0): dx = 1, dy = 2 -> sqrt(5);   (0,1): dx = 0, dy = 3 -> 3;
  #   (1,0): dx = 2, dy = 0 -> 2;         (1,1): 0.
  z = jnp.array([[0.0, 1.0], [2.0, 4.0]]).reshape(1, 2, 2, 1)
  close(_tv(z), math.sqrt(5) + 5, atol=1e-5)
  # beta = 2: squared terms 1 + 4 + 9 + 4 = 18.
  close(_tv(z, beta=2.0), 18.0, atol=1e-5)
  # Batch mean: adding a constant image (TV 0) halves the value.
  batch = jnp.concatenate([z, jnp.full_like(z, 7.0)])
  close(_tv(batch), (math.sqrt(5) + 5) / 2, atol=1e-5)
  # Channels are summed: a second channel 2 z adds 2 (sqrt(5) + 5).
  close(_tv(jnp.concatenate([z, 2 * z], axis=-1)), 3 * (math.sqrt(5) + 5), atol=1e-5)


def test_total_variation_is_zero_with_finite_zero_gradient_on_constant_image():
  z = jnp.full((2, 3, 3, 2), 0.5)
  value, grad = jax.jit(jax.value_and_grad(losses.total_variation))(z)
  close(value, 0.0)
  chex.assert_trees_all_close(grad, jnp.zeros_like(z))


def test_total_variation_rejects_non_image_input():
  with pytest.raises(ValueError, match=r"\[B, H, W, C\]"):
    losses.total_variation(jnp.zeros((2, 3, 3)))


# --------------------------------------------------------------------------------------------
# Shared battery over every adversarial family.
# --------------------------------------------------------------------------------------------

# Logits strictly between the fake target 0 and the real target 1, where every family
# (including the quadratic least-squares one) has a strict direction.
_BETWEEN = jnp.linspace(0.1, 0.9, 4)


@pytest.mark.parametrize("name", FAMILIES)
def test_family_outputs_are_finite_float32_scalars(name):
  g_loss, d_loss = losses.get_loss_family(name)
  d_real = normal(0, (4,))
  d_fake = normal(1, (4,))
  for value in (g_loss(d_fake), d_loss(d_real, d_fake)):
    chex.assert_shape(value, ())
    chex.assert_type(value, jnp.float32)
    chex.assert_tree_all_finite(value)


@pytest.mark.parametrize("name", FAMILIES)
def test_family_promotes_bfloat16_logits_to_float32(name):
  g_loss, d_loss = losses.get_loss_family(name)
  logits = jnp.array([0.5, -1.0, 2.0, 0.0], jnp.bfloat16)
  chex.assert_type(g_loss(logits), jnp.float32)
  chex.assert_type(d_loss(logits, logits), jnp.float32)


@pytest.mark.parametrize("name", FAMILIES)
def test_family_gradient_directions(name):
  g_loss, d_loss = losses.get_loss_family(name)
  grad_real, grad_fake = jax.grad(d_loss, argnums=(0, 1))(_BETWEEN, _BETWEEN)
  # D loss decreases as the real logit grows and increases as the fake logit grows.
  assert np.all(np.asarray(grad_real) < 0), grad_real
  assert np.all(np.asarray(grad_fake) > 0), grad_fake
  # G loss decreases as D scores the fakes as more real.
  grad_g = jax.grad(g_loss)(_BETWEEN)
  assert np.all(np.asarray(grad_g) < 0), grad_g


@pytest.mark.parametrize("name", FAMILIES)
def test_family_is_invariant_to_trailing_unit_axis(name):
  g_loss, d_loss = losses.get_loss_family(name)
  d_real = normal(2, (4,))
  d_fake = normal(3, (4,))
  close(g_loss(d_fake[:, None]), g_loss(d_fake))
  close(d_loss(d_real[:, None], d_fake[:, None]), d_loss(d_real, d_fake))
  # Mixed shapes must not broadcast into a [B, B] matrix.
  close(d_loss(d_real, d_fake[:, None]), d_loss(d_real, d_fake))


@pytest.mark.parametrize("name", FAMILIES)
def test_family_is_permutation_invariant_over_batch(name):
  g_loss, d_loss = losses.get_loss_family(name)
  d_real = normal(4, (4,), 3.0)
  d_fake = normal(5, (4,), 3.0)
  perm_real = np.array([2, 0, 3, 1])
  perm_fake = np.array([3, 2, 1, 0])
  close(g_loss(d_fake[perm_fake]), g_loss(d_fake), rtol=1e-5)
  close(d_loss(d_real[perm_real], d_fake[perm_fake]), d_loss(d_real, d_fake), rtol=1e-5)


@pytest.mark.parametrize("name", FAMILIES)
def test_family_jit_gives_same_value(name):
  g_loss, d_loss = losses.get_loss_family(name)
  d_real = jnp.array([0.3, -2.0, 1.5, 4.0])
  d_fake = jnp.array([-0.7, 0.1, 2.5, -5.0])
  close(jax.jit(g_loss)(d_fake), g_loss(d_fake))
  close(jax.jit(d_loss)(d_real, d_fake), d_loss(d_real, d_fake))


@functools.cache
def _jitted_values_and_grads(name):
  """Compiled once per family, so hypothesis examples reuse the executable."""
  g_loss, d_loss = losses.get_loss_family(name)
  return (jax.jit(jax.value_and_grad(g_loss)),
          jax.jit(jax.value_and_grad(d_loss, argnums=(0, 1))))


_LOGITS = hnp.arrays(np.float32, (4,),
                     elements=st.floats(-1e4, 1e4, allow_nan=False, width=32))


@pytest.mark.parametrize("name", FAMILIES)
@hypothesis.settings(max_examples=40, deadline=None)
@hypothesis.given(d_real=_LOGITS, d_fake=_LOGITS)
@hypothesis.example(d_real=np.full(4, 1e3, np.float32), d_fake=np.full(4, -1e3, np.float32))
@hypothesis.example(d_real=np.full(4, -1e3, np.float32), d_fake=np.full(4, 1e3, np.float32))
def test_family_values_and_gradients_are_finite_for_any_finite_logits(name, d_real, d_fake):
  g_value_and_grad, d_value_and_grad = _jitted_values_and_grads(name)
  g_value, g_grad = g_value_and_grad(d_fake)
  d_value, d_grads = d_value_and_grad(d_real, d_fake)
  chex.assert_tree_all_finite((g_value, g_grad, d_value, d_grads))


# --------------------------------------------------------------------------------------------
# Label smoothing, registry errors and jit of the other losses.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["hinge", "wasserstein"])
def test_label_smoothing_is_rejected_where_meaningless(name):
  _, d_loss = losses.get_loss_family(name)
  with pytest.raises(ValueError) as err:
    d_loss(jnp.zeros(2), jnp.zeros(2), label_smoothing=0.1)
  message = str(err.value)
  assert "0.1" in message and name in message
  for allowed in ("minimax", "non_saturating", "least_squares"):
    assert allowed in message
  # Zero is accepted, so the signature stays uniform.
  chex.assert_tree_all_finite(d_loss(jnp.zeros(2), jnp.zeros(2), label_smoothing=0.0))


@pytest.mark.parametrize("name", ["minimax", "non_saturating", "least_squares"])
def test_label_smoothing_out_of_range_is_rejected(name):
  _, d_loss = losses.get_loss_family(name)
  with pytest.raises(ValueError, match=r"\[0, 1\).*1\.5"):
    d_loss(jnp.zeros(2), jnp.zeros(2), label_smoothing=1.5)


def test_label_smoothing_may_be_traced_under_jit():
  d_real, d_fake = jnp.array([2.0]), jnp.array([0.5])
  jitted = jax.jit(lambda s: losses.minimax_discriminator_loss(d_real, d_fake,
                                                               label_smoothing=s))
  close(jitted(0.1), losses.minimax_discriminator_loss(d_real, d_fake, label_smoothing=0.1))


def test_get_loss_family_unknown_name_lists_available():
  with pytest.raises(ValueError) as err:
    losses.get_loss_family("wgan")
  message = str(err.value)
  assert "'wgan'" in message
  for name in losses.LOSS_FAMILIES:
    assert name in message


def test_loss_families_registry_is_complete_and_consistent():
  assert set(losses.LOSS_FAMILIES) == {
      "minimax", "non_saturating", "least_squares", "hinge", "wasserstein"}
  for name, (g_loss, d_loss) in losses.LOSS_FAMILIES.items():
    assert g_loss is getattr(losses, f"{name}_generator_loss")
    assert d_loss is getattr(losses, f"{name}_discriminator_loss")


def test_all_lists_only_existing_public_names():
  for name in losses.__all__:
    assert hasattr(losses, name), name
  assert "get_loss_family" in losses.__all__ and "total_variation" in losses.__all__


def test_dtn_and_auxiliary_losses_jit_gives_same_value():
  a, b, c = (normal(seed, (4, 3)) for seed in (8, 9, 10))
  images, other = normal(11, (2, 3, 3, 2)), normal(12, (2, 3, 3, 2))
  labels = jnp.array([0, 2, 1, 2])
  cases = [
      (losses.ternary_discriminator_loss, (a, b, c)),
      (losses.ternary_generator_loss, (a, b)),
      (losses.auxiliary_classifier_loss, (a, labels)),
      (losses.const_loss, (a, b)),
      (functools.partial(losses.const_loss, distance="cosine"), (a, b)),
      (functools.partial(losses.tid_loss, distance="l1"), (images, other)),
      (losses.total_variation, (images,)),
  ]
  for fn, args in cases:
    close(jax.jit(fn)(*args), fn(*args), rtol=1e-5)


def test_top_k_generator_loss_golden_and_gradient():
  """k = 2 of [2, -1, 0, 3]: the mean non-saturating loss of the logits 3 and 2 (by hand);
  the dropped samples get no gradient; k = B is the plain loss."""
  d = jnp.array([2.0, -1.0, 0.0, 3.0])
  g = losses.non_saturating_generator_loss
  close(losses.top_k_generator_loss(g, d, k=2), (softplus(-3.0) + softplus(-2.0)) / 2)
  grad = jax.grad(lambda d: losses.top_k_generator_loss(g, d, k=2))(d)
  assert float(grad[1]) == 0.0 and float(grad[2]) == 0.0
  assert float(grad[0]) < 0 and float(grad[3]) < 0  # G raises the kept logits
  for name in FAMILIES:
    g = losses.LOSS_FAMILIES[name][0]
    close(losses.top_k_generator_loss(g, d[:, None], k=4), g(d), atol=1e-6)
  # Traced k (a schedule under jit) gives the static value; ties keep the first positions.
  close(jax.jit(lambda k: losses.top_k_generator_loss(g, d, k=k))(2),
        losses.top_k_generator_loss(g, d, k=2))
  ties = jnp.zeros(4)
  grad = jax.grad(lambda d: losses.top_k_generator_loss(
      losses.wasserstein_generator_loss, d, k=1))(ties)
  np.testing.assert_array_equal(grad, [-1.0, 0.0, 0.0, 0.0])
  with pytest.raises(ValueError, match=r"k must be in \[1, 4\].*got 5"):
    losses.top_k_generator_loss(g, d, k=5)
  with pytest.raises(ValueError, match=r"one logit per sample.*\(4, 2\)"):
    losses.top_k_generator_loss(g, jnp.zeros((4, 2)), k=2)


def test_top_k_count_schedule():
  """The whole batch at first, x0.99 every 100 steps (rounded up), floored at nu * B."""
  count = functools.partial(losses.top_k_count, batch_size=128, min_fraction=0.5)
  assert [int(count(s)) for s in (0, 99, 100, 700, 10_000)] == [
      128, 128, math.ceil(0.99 * 128), math.ceil(0.99 ** 7 * 128), 64]
  assert int(jax.jit(count)(jnp.int32(100))) == 127
  for kwargs, match in (({"min_fraction": 0.0}, "min_fraction"), ({"decay": 1.5}, "decay"),
                        ({"decay_every": 0}, "decay_every")):
    with pytest.raises(ValueError, match=match):
      losses.top_k_count(0, **{"batch_size": 8, "min_fraction": 0.5, **kwargs})
