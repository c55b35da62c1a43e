"""Running a jitted function over a large host array in fixed-size batches."""

from __future__ import annotations

from typing import Any, Callable

import jax
import numpy as np


def map_in_batches(fn: Callable[[Any], Any], inputs: np.ndarray, *,
                   batch_size: int = 256) -> Any:
  """``fn`` over ``inputs`` ([N, ...]) in batches, outputs concatenated on host.

  The last batch is padded to ``batch_size`` (and the padding dropped), so a jitted ``fn``
  compiles once whatever N is. ``fn`` returns an array or a pytree of [batch, ...] arrays.
  """
  n = len(inputs)
  if n == 0:
    raise ValueError("map_in_batches got no inputs.")
  outputs = []
  for start in range(0, n, batch_size):
    chunk = np.asarray(inputs[start:start + batch_size])
    valid = len(chunk)
    if valid < batch_size:
      pad = np.zeros((batch_size - valid, *chunk.shape[1:]), chunk.dtype)
      chunk = np.concatenate([chunk, pad])
    # Leave the result on device: the next batch is dispatched before this one is fetched.
    outputs.append((fn(chunk), valid))
  fetched = [jax.tree.map(lambda x, v=valid: np.asarray(x)[:v], out) for out, valid in outputs]
  return jax.tree.map(lambda *xs: np.concatenate(xs), *fetched)
