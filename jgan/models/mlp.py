"""Fully connected GAN (the Keras/PyTorch "vanilla GAN on MNIST" of the seed notebooks).

Default sizes: G 100-256-512-1024-784, D 784-1024-512-256-1, LeakyReLU 0.2, dropout 0.3 in D.
Kernels use flax's defaults (lecun normal, zero bias), like the seed notebooks' framework defaults.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

Dtype = Any


class MLPGenerator(nn.Module):
  """MLP generator: latent vector -> image.

  Dense layers with LeakyReLU, then Dense(prod(output_shape)) and tanh, reshaped to an image.

  Shapes: z [B, latent] -> [B, H, W, C] float32 in [-1, 1], (H, W, C) = ``output_shape``.

  References:
    Goodfellow et al. 2014, "Generative Adversarial Nets" (MLP G/D on MNIST).
  """

  output_shape: Sequence[int] = (28, 28, 1)
  hidden: Sequence[int] = (256, 512, 1024)
  negative_slope: float = 0.2
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, z: jax.Array, *, train: bool) -> jax.Array:
    del train  # No batch norm or dropout; kept for the uniform model signature.
    x = z
    for i, width in enumerate(self.hidden):
      x = nn.Dense(width, dtype=self.dtype, param_dtype=self.param_dtype, name=f"dense{i}")(x)
      x = nn.leaky_relu(x, negative_slope=self.negative_slope)
    x = nn.Dense(math.prod(self.output_shape), dtype=self.dtype, param_dtype=self.param_dtype,
                 name="out")(x)
    x = jnp.tanh(x.astype(jnp.float32))
    return x.reshape(z.shape[0], *self.output_shape)


class MLPDiscriminator(nn.Module):
  """MLP discriminator: image -> one real/fake logit.

  Flatten, then Dense + LeakyReLU + Dropout per hidden layer, then Dense(1). Dropout is active
  when ``train=True`` and then needs a ``'dropout'`` rng (``apply(..., rngs={'dropout': key})``).

  Shapes: x [B, H, W, C] (any trailing shape) -> logits [B] float32.

  References:
    Goodfellow et al. 2014, "Generative Adversarial Nets" (MLP G/D on MNIST).
  """

  hidden: Sequence[int] = (1024, 512, 256)
  negative_slope: float = 0.2
  dropout_rate: float = 0.3
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    x = x.reshape(x.shape[0], -1)
    for i, width in enumerate(self.hidden):
      x = nn.Dense(width, dtype=self.dtype, param_dtype=self.param_dtype, name=f"dense{i}")(x)
      x = nn.leaky_relu(x, negative_slope=self.negative_slope)
      x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    x = nn.Dense(1, dtype=self.dtype, param_dtype=self.param_dtype, name="out")(x)
    return x[:, 0].astype(jnp.float32)
