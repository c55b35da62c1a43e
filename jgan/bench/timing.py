"""Fair side-by-side timing: alternated repetitions, the machine's matmul peak, XLA's FLOPs.

Timings on a shared CPU drift by 2x within minutes (PERF_NOTES.md), so two implementations
are only compared when measured in the same run, alternating: one repetition of each, then
the next, and the ratio is taken per repetition pair.
"""

from __future__ import annotations

import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np


def matmul_peak(*, n: int = 4096, repeats: int = 5) -> float:
  """FLOP/s of the best of ``repeats`` n x n float32 matmuls under jax: the practical peak."""
  x = jnp.ones((n, n), jnp.float32)
  f = jax.jit(lambda a: a @ a)
  f(x).block_until_ready()
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    f(x).block_until_ready()
    best = min(best, time.perf_counter() - start)
  return 2 * n**3 / best


def compiled_flops(compiled) -> float:
  """FLOPs of one call of a compiled jax function, from XLA's cost analysis (nan if absent)."""
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float((cost or {}).get("flops", float("nan")))


def alternate(runners: dict[str, Callable[[], None]], *, repetitions: int,
              steps: int) -> dict[str, list[float]]:
  """Seconds per step of each runner, ``repetitions`` times, the runners taking turns.

  Each runner performs ONE step and returns something ``jax.block_until_ready`` accepts
  (or None, for synchronous frameworks); a repetition times ``steps`` calls followed by one
  block, so jax's asynchronous dispatch overlaps steps as it does in training.
  """
  times: dict[str, list[float]] = {name: [] for name in runners}
  for _ in range(repetitions):
    for name, run in runners.items():
      out = None
      start = time.perf_counter()
      for _ in range(steps):
        out = run()
      jax.block_until_ready(out)
      times[name].append((time.perf_counter() - start) / steps)
  return times


def ratio_spread(numerator: list[float], denominator: list[float]) -> tuple[float, float, float]:
  """Median, min and max of the per-repetition ratios ``denominator[i] / numerator[i]``.

  With step times as inputs this is the throughput ratio of ``numerator``'s implementation
  over ``denominator``'s (> 1: the first is faster), paired per repetition so that drifts of
  the machine's load cancel.
  """
  r = np.asarray(denominator) / np.asarray(numerator)
  return float(np.median(r)), float(r.min()), float(r.max())
