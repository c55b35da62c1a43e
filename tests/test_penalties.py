"""Tests for jgan.penalties: closed forms on linear and quadratic critics, errors and jit."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgan import penalties

# A linear critic on [B, 2, 3] inputs: D(x) = <w, x> + b, so grad_x D = w everywhere.
# ||w|| = sqrt(1 + 4 + 4) = 3.
W = jnp.array([[1.0, 2.0, 2.0], [0.0, 0.0, 0.0]])
B = 0.7


def linear_critic(w, *, keep_dim=False):
  def critic(x):
    out = jnp.sum(x * w, axis=(1, 2)) + B
    return out[:, None] if keep_dim else out
  return critic


def close(actual, expected, *, atol=1e-5, rtol=1e-5):
  np.testing.assert_allclose(np.asarray(actual), expected, atol=atol, rtol=rtol)


def _batch(seed, shape=(4, 2, 3)):
  k1, k2 = jax.random.split(jax.random.key(seed))
  return jax.random.normal(k1, shape), jax.random.normal(k2, shape)


@pytest.mark.parametrize("keep_dim", [False, True])
def test_gradient_penalty_of_linear_critic_is_closed_form_for_any_key(keep_dim):
  # grad = w at every x_hat, so the penalty is weight * (||w|| - 1)^2 = 10 * (3 - 1)^2 = 40.
  critic = linear_critic(W, keep_dim=keep_dim)
  for seed in range(3):
    real, fake = _batch(seed)
    value = penalties.gradient_penalty(critic, real, fake, jax.random.key(100 + seed))
    chex.assert_shape(value, ())
    chex.assert_type(value, jnp.float32)
    close(value, 40.0)
  # weight scales linearly: 2.5 * (3 - 1)^2 = 10.
  real, fake = _batch(0)
  close(penalties.gradient_penalty(critic, real, fake, jax.random.key(0), weight=2.5), 10.0)


def test_gradient_penalty_of_quadratic_critic_golden():
  # D(x) = 0.5 ||x||^2 -> grad = x. With real == fake, x_hat = real for every eps.
  # Norms: ||(3, 4)|| = 5 and ||(0, 0.5)|| = 0.5 -> (5 - 1)^2 = 16, (0.5 - 1)^2 = 0.25;
  # mean 8.125; times weight 10 = 81.25.
  critic = lambda x: 0.5 * jnp.sum(jnp.square(x), axis=-1)
  real = jnp.array([[3.0, 4.0], [0.0, 0.5]])
  for seed in range(3):
    close(penalties.gradient_penalty(critic, real, real, jax.random.key(seed)), 81.25)


def test_gradient_penalty_interpolates_with_one_uniform_eps_per_example():
  # D(x) = 0.5 ||x||^2, fake = 0 and unit-norm real rows: x_hat = eps * real, so each example
  # contributes (eps - 1)^2. Over eps ~ U[0, 1] its mean is E[(1 - U)^2] = 1/3 (std of one
  # term sqrt(1/5 - 1/9) ~ 0.30, so ~0.005 for the mean of 4096); a single eps shared by the
  # whole batch would instead give (eps - 1)^2 for one draw.
  critic = lambda x: 0.5 * jnp.sum(jnp.square(x), axis=-1)
  n = 4096
  real = jax.random.normal(jax.random.key(0), (n, 8))
  real = real / jnp.linalg.norm(real, axis=-1, keepdims=True)
  fake = jnp.zeros_like(real)
  values = [float(penalties.gradient_penalty(critic, real, fake, jax.random.key(s), weight=1.0))
            for s in range(3)]
  for value in values:
    assert abs(value - 1 / 3) < 0.03, values
  # The key is used: different keys, different draws; the same key, the same value.
  assert len(set(values)) == 3, values
  close(penalties.gradient_penalty(critic, real, fake, jax.random.key(1), weight=1.0),
        values[1])


def test_gradient_penalty_parameter_gradient_is_closed_form():
  # P(w) = 10 (||w|| - 1)^2 -> dP/dw = 20 (||w|| - 1) w / ||w|| = 20 * 2 / 3 * w = 40/3 w.
  real, fake = _batch(1)
  grad = jax.grad(lambda w: penalties.gradient_penalty(
      linear_critic(w), real, fake, jax.random.key(0)))(W)
  close(grad, 40.0 / 3.0 * W)


def test_gradient_penalty_is_finite_when_critic_gradient_is_zero():
  # w = 0: the input gradient is exactly 0, penalty = 10 * (0 - 1)^2 = 10. A plain sqrt would
  # make the parameter gradient 0/0 = NaN here; the safe norm gives 0.
  real, fake = _batch(2)
  value, grad = jax.value_and_grad(lambda w: penalties.gradient_penalty(
      linear_critic(w), real, fake, jax.random.key(0)))(jnp.zeros_like(W))
  close(value, 10.0)
  chex.assert_tree_all_finite(grad)
  chex.assert_trees_all_close(grad, jnp.zeros_like(W))


@pytest.mark.parametrize("keep_dim", [False, True])
def test_r1_penalty_of_linear_critic_is_closed_form(keep_dim):
  # grad = w, so R1 = weight / 2 * ||w||^2 = 10 / 2 * 9 = 45.
  real, _ = _batch(3)
  value = penalties.r1_penalty(linear_critic(W, keep_dim=keep_dim), real)
  chex.assert_shape(value, ())
  chex.assert_type(value, jnp.float32)
  close(value, 45.0)
  # weight = 1: 1 / 2 * 9 = 4.5.
  close(penalties.r1_penalty(linear_critic(W), real, weight=1.0), 4.5)


def test_r1_penalty_of_quadratic_critic_golden():
  # D(x) = ||x||^2 -> grad = 2x. Rows (1, 2) and (3, 0): ||2x||^2 = 4 * 5 = 20 and
  # 4 * 9 = 36; batch mean 28; times weight / 2 = 5 -> 140.
  critic = lambda x: jnp.sum(jnp.square(x), axis=-1)
  close(penalties.r1_penalty(critic, jnp.array([[1.0, 2.0], [3.0, 0.0]])), 140.0)


def test_r1_penalty_parameter_gradient_is_closed_form():
  # R1(w) = 5 ||w||^2 -> dR1/dw = 10 w.
  real, _ = _batch(4)
  grad = jax.grad(lambda w: penalties.r1_penalty(linear_critic(w), real))(W)
  close(grad, 10.0 * W)


def test_penalties_jit_gives_same_value():
  critic = lambda x: jnp.sum(jnp.tanh(x) ** 2, axis=(1, 2)) + jnp.sum(x, axis=(1, 2))
  real, fake = _batch(5)
  key = jax.random.key(3)
  gp = lambda r, f, k: penalties.gradient_penalty(critic, r, f, k)
  r1 = lambda r: penalties.r1_penalty(critic, r)
  close(jax.jit(gp)(real, fake, key), gp(real, fake, key))
  close(jax.jit(r1)(real), r1(real))
  chex.assert_tree_all_finite((gp(real, fake, key), r1(real)))


def test_penalties_reject_a_critic_that_reduces_over_the_batch():
  mean_critic = lambda x: jnp.mean(x)
  real, fake = _batch(6)
  with pytest.raises(ValueError, match=r"\[B\] or \[B, 1\].*B=4.*\(\)"):
    penalties.gradient_penalty(mean_critic, real, fake, jax.random.key(0))
  with pytest.raises(ValueError, match=r"\[B\] or \[B, 1\]"):
    penalties.r1_penalty(mean_critic, real)


def test_gradient_penalty_rejects_mismatched_shapes():
  with pytest.raises(ValueError, match=r"\(4, 2, 3\).*\(3, 2, 3\)"):
    penalties.gradient_penalty(linear_critic(W), jnp.zeros((4, 2, 3)), jnp.zeros((3, 2, 3)),
                               jax.random.key(0))


def test_get_penalty_registry_and_unknown_name():
  assert penalties.get_penalty("gradient_penalty") is penalties.gradient_penalty
  assert penalties.get_penalty("r1") is penalties.r1_penalty
  with pytest.raises(ValueError) as err:
    penalties.get_penalty("r2")
  message = str(err.value)
  assert "'r2'" in message
  for name in penalties.PENALTIES:
    assert name in message


def test_matching_aware_gradient_penalty_golden_and_parameter_gradient():
  """Linear critic D(x, e) = <a, x> + c <b, e>: every example's joint gradient norm is
  sqrt(|a|^2 + c^2 |b|^2); a = 0.5 on 4 values and b = 1 on 3 values at c = 1 give norm 2,
  so k = 2, p = 6 give 2 * 2^6 = 128 for any images and text; with n^2 = 1 + 3 c^2,
  d/dc k n^p = k (p / 2) n^(p - 2) 6c = 2 * 3 * 16 * 6 = 576 at c = 1; a bad output shape or
  batch is named."""
  images = jax.random.normal(jax.random.key(0), (5, 2, 2, 1))
  text = jax.random.normal(jax.random.key(1), (5, 3))
  a, b = jnp.full((2, 2, 1), 0.5), jnp.ones((3,))
  critic = lambda c: (lambda x, e: jnp.sum(x * a, axis=(1, 2, 3)) + c * (e @ b))
  value = penalties.matching_aware_gradient_penalty(critic(1.0), images, text)
  np.testing.assert_allclose(float(value), 128.0, rtol=1e-5)
  keep_dim = lambda x, e: critic(1.0)(x, e)[:, None]
  np.testing.assert_allclose(
      float(penalties.matching_aware_gradient_penalty(keep_dim, images, text, weight=1.0,
                                                      power=2.0)), 4.0, rtol=1e-5)
  grad = jax.grad(lambda c: penalties.matching_aware_gradient_penalty(critic(c), images, text))
  np.testing.assert_allclose(float(grad(1.0)), 576.0, rtol=1e-5)
  # The text matters: a critic that ignores it has the image-only norm 1 -> 2 * 1 = 2.
  np.testing.assert_allclose(float(penalties.matching_aware_gradient_penalty(
      critic(0.0), images, text)), 2.0, rtol=1e-5)
  with pytest.raises(ValueError, match=r"logits of shape \[B\] or \[B, 1\] with B=5.*\(\)"):
    penalties.matching_aware_gradient_penalty(lambda x, e: jnp.sum(x), images, text)
  with pytest.raises(ValueError, match=r"one row per pair.*\(5, 2, 2, 1\).*\(4, 3\)"):
    penalties.matching_aware_gradient_penalty(critic(1.0), images, text[:4])
