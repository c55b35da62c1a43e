"""Gradient penalties on the discriminator, added on top of a loss from :mod:`jgan.losses`.

Both penalties differentiate ``critic_fn`` with respect to its input. ``critic_fn`` maps a
batch [B, ...] to logits of shape [B] or [B, 1]; its output is summed before ``jax.grad`` so
that row b of the input gradient is d critic(x)[b] / d x[b], the per-example input gradient.
That holds only if the critic treats examples independently: a critic with batch
normalisation in training mode mixes examples and the penalty then no longer matches the
paper (Gulrajani et al. recommend layer normalisation instead).

To penalise the critic's parameters, close over them:
``gradient_penalty(lambda x: critic.apply(params, x), real, fake, key)`` and differentiate the
result with respect to ``params`` (a second-order gradient, which JAX handles directly).
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import optax

Array = jax.Array
CriticFn = Callable[[Array], Array]
PenaltyFn = Callable[..., Array]


def _input_gradients(critic_fn: CriticFn, x: Array) -> Array:
  """Per-example gradients d critic(x)[b] / d x[b], flattened to [B, D] float32."""
  batch = x.shape[0]

  def summed_critic(inputs: Array) -> Array:
    out = critic_fn(inputs)
    if out.shape not in ((batch,), (batch, 1)):
      raise ValueError(
          f"critic_fn must return logits of shape [B] or [B, 1] with B={batch}, got "
          f"{out.shape}. Do not reduce over the batch inside critic_fn.")
    return jnp.sum(out)

  grads = jax.grad(summed_critic)(x)
  return grads.reshape(batch, -1).astype(jnp.promote_types(grads.dtype, jnp.float32))


def gradient_penalty(critic_fn: CriticFn, real: Array, fake: Array, key: Array, *,
                     weight: float = 10.0) -> Array:
  """WGAN-GP gradient penalty ``weight * E[(||grad_x critic(x_hat)||_2 - 1)^2]``.

  ``x_hat = eps * real + (1 - eps) * fake`` with one ``eps ~ U[0, 1]`` per example, drawn from
  ``key`` (pass a fresh key per step). The norm is the L2 norm over all non-batch axes of each
  example's input gradient, and the expectation is the mean over the batch. The value is
  differentiable with respect to whatever ``critic_fn`` closes over (its parameters).

  The norm is ``optax.safe_norm(g, 0.0)``: the exact norm, but with a zero (instead of NaN)
  derivative where the input gradient is exactly zero (e.g. a critic that is locally
  constant), so no epsilon is added inside the square root and the value is unbiased.

  Args:
    critic_fn: maps a batch [B, ...] to logits [B] or [B, 1]; see the module docstring.
    real: real samples, shape [B, ...].
    fake: generated samples, same shape as ``real``.
    key: PRNG key for the interpolation weights.
    weight: the penalty coefficient lambda (10 in the paper).

  Returns:
    A float32 scalar.

  Raises:
    ValueError: if ``real`` and ``fake`` differ in shape, or the critic's output is not [B]
      or [B, 1].

  References:
    Gulrajani et al., "Improved Training of Wasserstein GANs", NeurIPS 2017, eq. 3 and
    Algorithm 1.
  """
  real, fake = jnp.asarray(real), jnp.asarray(fake)
  if real.shape != fake.shape or real.ndim < 1:
    raise ValueError(f"real and fake must have the same shape [B, ...]; got {real.shape} and "
                     f"{fake.shape}.")
  dtype = jnp.promote_types(jnp.result_type(real, fake), jnp.float32)
  eps_shape = real.shape[:1] + (1,) * (real.ndim - 1)
  eps = jax.random.uniform(key, eps_shape, dtype=dtype)
  x_hat = (eps * real + (1.0 - eps) * fake).astype(jnp.result_type(real, fake))
  grads = _input_gradients(critic_fn, x_hat)
  norms = optax.safe_norm(grads, 0.0, axis=-1)
  return weight * jnp.mean(jnp.square(norms - 1.0))


def r1_penalty(critic_fn: CriticFn, real: Array, *, weight: float = 10.0) -> Array:
  """R1 regulariser ``weight / 2 * E[||grad_x critic(x)||_2^2]`` on real data.

  The squared norm is the sum of squared input-gradient entries over all non-batch axes of
  each example (no square root, hence no epsilon); the expectation is the mean over the
  batch.

  Args:
    critic_fn: maps a batch [B, ...] to logits [B] or [B, 1]; see the module docstring.
    real: real samples, shape [B, ...].
    weight: the coefficient gamma of the paper (the result is scaled by gamma / 2).

  Returns:
    A float32 scalar.

  Raises:
    ValueError: if the critic's output is not [B] or [B, 1].

  References:
    Mescheder, Geiger & Nowozin, "Which Training Methods for GANs do actually Converge?",
    ICML 2018, eq. 9.
  """
  real = jnp.asarray(real)
  if real.ndim < 1:
    raise ValueError(f"real must have shape [B, ...], got {real.shape}.")
  grads = _input_gradients(critic_fn, real)
  return 0.5 * weight * jnp.mean(jnp.sum(jnp.square(grads), axis=-1))


PairCriticFn = Callable[[Array, Array], Array]


def matching_aware_gradient_penalty(critic_fn: PairCriticFn, images: Array, text: Array, *,
                                    weight: float = 2.0, power: float = 6.0) -> Array:
  """DF-GAN's matching-aware zero-centred gradient penalty on real matching pairs:
  ``weight * E[||(grad_x D(x, e), grad_e D(x, e))||_2 ^ power]``.

  The gradient is taken with respect to the image AND the sentence embedding, concatenated
  per example: it smooths D around the real data and their matching text at once, so G's
  gradient towards "real and matching" is informative. ``critic_fn(images, text)`` maps
  [B, ...] images and [B, E] embeddings to logits [B] or [B, 1], per example (see the module
  docstring; no batch normalisation in training mode).

  Args:
    critic_fn: ``(images, text) -> logits``.
    images: real images [B, ...].
    text: their matching sentence embeddings [B, E].
    weight: k of the paper (2).
    power: p of the paper (6).

  Returns:
    A float32 scalar, differentiable with respect to what ``critic_fn`` closes over.

  Raises:
    ValueError: if the critic's output is not [B] or [B, 1], or the batch sizes differ.

  References:
    Tao et al., "DF-GAN: A Simple and Effective Baseline for Text-to-Image Synthesis", CVPR
    2022, eq. 4 (MA-GP; the reference code's k = 2, p = 6).
  """
  images, text = jnp.asarray(images), jnp.asarray(text)
  batch = images.shape[0]
  if text.shape[0] != batch:
    raise ValueError(f"images and text must have one row per pair, got {images.shape} and "
                     f"{text.shape}.")

  def summed_critic(pair):
    out = critic_fn(*pair)
    if out.shape not in ((batch,), (batch, 1)):
      raise ValueError(
          f"critic_fn must return logits of shape [B] or [B, 1] with B={batch}, got "
          f"{out.shape}. Do not reduce over the batch inside critic_fn.")
    return jnp.sum(out)

  grad_x, grad_e = jax.grad(summed_critic)((images, text))
  flat = jnp.concatenate([grad_x.reshape(batch, -1), grad_e.reshape(batch, -1)], axis=-1)
  flat = flat.astype(jnp.promote_types(flat.dtype, jnp.float32))
  norms = optax.safe_norm(flat, 0.0, axis=-1)
  return weight * jnp.mean(norms ** power)


# Registry: built explicitly, no import side effects. The signatures differ (see each
# function): gradient_penalty(critic_fn, real, fake, key, *, weight) and
# r1_penalty(critic_fn, real, *, weight).
PENALTIES: dict[str, PenaltyFn] = {
    "gradient_penalty": gradient_penalty,
    "r1": r1_penalty,
}


def get_penalty(name: str) -> PenaltyFn:
  """Returns the penalty function registered under ``name`` in :data:`PENALTIES`.

  Args:
    name: a key of :data:`PENALTIES`.

  Returns:
    The penalty function.

  Raises:
    ValueError: naming the unknown penalty and listing the available ones.

  References:
    See :func:`gradient_penalty` and :func:`r1_penalty`.
  """
  try:
    return PENALTIES[name]
  except KeyError:
    raise ValueError(f"Unknown penalty {name!r}; available: "
                     f"{', '.join(sorted(PENALTIES))}.") from None


def make_d_penalty(name: str, *, weight: float) -> Callable[[CriticFn, Array, Array, Array], Array]:
  """The penalty ``name`` with one call signature, ``(critic_fn, real, fake, key) -> scalar``.

  This is the form the step builders take (:class:`jgan.steps.Penalty`), whatever inputs the
  penalty itself needs (R1 uses only the real images).
  """
  fn = get_penalty(name)
  if fn is r1_penalty:
    return lambda critic_fn, real, fake, key: r1_penalty(critic_fn, real, weight=weight)
  return functools.partial(fn, weight=weight)


def from_config(name: str, *, weight: float
                ) -> Callable[[CriticFn, Array, Array, Array], Array] | None:
  """A config's ``penalty`` group as a step's penalty: None for ``"none"``, else
  :func:`make_d_penalty` (``name`` checked against :data:`PENALTIES`)."""
  if name == "none":
    return None
  if name not in PENALTIES:
    raise ValueError(f"Unknown penalty {name!r}; allowed: none, {', '.join(sorted(PENALTIES))}.")
  return make_d_penalty(name, weight=weight)


__all__ = ["PENALTIES", "from_config", "get_penalty", "gradient_penalty", "make_d_penalty",
           "matching_aware_gradient_penalty", "r1_penalty"]
