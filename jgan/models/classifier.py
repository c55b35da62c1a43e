"""A small convolutional image classifier: the domain classifiers jgan trains for evaluation.

Trained on a domain's real images (``experiments/mnist_classifier.py`` and friends), it gives
offline feature networks for FID/KID/precision-recall (its ``features`` layer) and the
classification accuracy of generated or translated images (its ``logits``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

Dtype = Any


class ConvClassifier(nn.Module):
  """Conv blocks (4x4 stride-2 conv, batch norm, ReLU) -> Dense ``feature_dim`` -> logits.

  Shapes: images [B, H, W, C] float in [-1, 1] -> {"features": [B, feature_dim] float32 (after
  ReLU; the layer used as a feature network), "logits": [B, num_classes] float32}.

  References:
    LeCun et al. 1998 (LeNet-style convnets); Ioffe & Szegedy 2015 (batch norm).
  """

  num_classes: int = 10
  widths: Sequence[int] = (32, 64, 128)
  feature_dim: int = 128
  dropout_rate: float = 0.3
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> dict[str, jax.Array]:
    if x.ndim != 4:
      raise ValueError(f"ConvClassifier expects images [B, H, W, C], got shape {x.shape}.")
    x = x.astype(self.dtype)
    for i, width in enumerate(self.widths):
      # Strided 4x4 convs rather than 3x3 conv + max pool: half the FLOPs, and XLA:CPU runs
      # their gradients about 2x faster (benchmarks/classifier_convs.py).
      x = nn.Conv(width, (4, 4), strides=(2, 2), padding="SAME", use_bias=False,
                  dtype=self.dtype, param_dtype=self.param_dtype, name=f"conv{i}")(x)
      x = nn.BatchNorm(use_running_average=not train, momentum=0.9, dtype=self.dtype,
                       param_dtype=self.param_dtype, name=f"bn{i}")(x)
      x = nn.relu(x)
    x = jnp.mean(x, axis=(1, 2))  # global average pool: any input size works
    features = nn.relu(nn.Dense(self.feature_dim, dtype=self.dtype, param_dtype=self.param_dtype,
                                name="features")(x))
    h = nn.Dropout(self.dropout_rate, deterministic=not train)(features)
    logits = nn.Dense(self.num_classes, dtype=self.dtype, param_dtype=self.param_dtype,
                      name="logits")(h)
    return {"features": features.astype(jnp.float32), "logits": logits.astype(jnp.float32)}
