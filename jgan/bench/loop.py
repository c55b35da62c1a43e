"""What the training loop and the input pipeline cost next to the bare compiled step.

``loop_overhead`` runs :func:`jgan.train.run` (the loop ``launch.py`` runs: data, logging,
sample grids, checkpoints at the experiment's cadence; evaluation off, it is a separate,
configured cost) for a short and a long number of steps and takes the difference, so
start-up, data loading and compilation cancel (the compilation cache is warmed by a first
run). ``pipeline_rate`` times the input pipeline alone.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any, Callable

import jax
import ml_collections
import numpy as np
from jax.experimental.compilation_cache import compilation_cache

from jgan import data as data_lib
from jgan import train


def _run_for(config: ml_collections.ConfigDict, steps: int, workdir: str) -> float:
  c = ml_collections.ConfigDict(config.to_dict())
  c.total_steps = steps
  start = time.perf_counter()
  train.run(c, workdir, progress=False)
  return time.perf_counter() - start


def loop_overhead(config: ml_collections.ConfigDict, *, short: int, long: int,
                  root: str | None = None, repetitions: int = 1,
                  bare_step_s: Callable[[], float] | None = None) -> dict[str, Any]:
  """Seconds per step of the whole loop, from runs of ``short`` and ``long`` steps.

  ``config.eval_every`` is set to 0. Each of ``repetitions`` times: ``bare_step_s()`` (if
  given: a timing of the bare compiled step, seconds per step), a short and a long run, then
  ``bare_step_s()`` again; the repetition's bare time is the mean of the two, so a drift in
  the machine's load hits the loop and the bare step of one repetition alike and the
  overhead is taken per repetition. Returns ``{"loop_step_s", "short_s", "long_s",
  "steps"}`` (medians over repetitions) plus, with ``bare_step_s``, ``"bare_step_s"``
  (median), ``"overhead"`` (median of the per-repetition loop / bare - 1) and
  ``"overhead_range"`` (its min, max).
  """
  if repetitions < 1 or long <= short:
    raise ValueError(f"loop_overhead needs repetitions >= 1 and long > short, got "
                     f"repetitions={repetitions}, short={short}, long={long}")
  config = ml_collections.ConfigDict(config.to_dict())
  config.eval_every = 0
  shorts, longs, bares = [], [], []
  with tempfile.TemporaryDirectory(dir=root) as tmp:
    cache = os.path.join(tmp, "xla_cache")
    saved = (jax.config.jax_compilation_cache_dir,
             jax.config.jax_persistent_cache_min_compile_time_secs)
    jax.config.update("jax_compilation_cache_dir", cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    try:
      _run_for(config, short, os.path.join(tmp, "warm"))  # fills the compilation cache
      for r in range(repetitions):
        before = bare_step_s() if bare_step_s is not None else None
        shorts.append(_run_for(config, short, os.path.join(tmp, f"short{r}")))
        longs.append(_run_for(config, long, os.path.join(tmp, f"long{r}")))
        if bare_step_s is not None:
          bares.append((before + bare_step_s()) / 2)
    finally:
      jax.config.update("jax_compilation_cache_dir", saved[0])
      jax.config.update("jax_persistent_cache_min_compile_time_secs", saved[1])
      # The cache object keeps its directory once made: without a reset, later compiles in
      # this process would write into the deleted temporary one.
      compilation_cache.reset_cache()
  per_step = [(t_long - t_short) / (long - short) for t_short, t_long in zip(shorts, longs)]
  result = {"loop_step_s": float(np.median(per_step)), "short_s": float(np.median(shorts)),
            "long_s": float(np.median(longs)), "steps": long - short}
  if bares:
    overheads = [loop_s / bare - 1 for loop_s, bare in zip(per_step, bares)]
    result.update(bare_step_s=float(np.median(bares)), overhead=float(np.median(overheads)),
                  overhead_range=(min(overheads), max(overheads)), overheads=overheads,
                  loop_step_s_per_rep=per_step, bare_step_s_per_rep=bares)
  return result


def pipeline_rate(config: ml_collections.ConfigDict, *, batches: int,
                  examples_per_step: int) -> float:
  """Batches per second the input pipeline of ``config`` delivers (one process, host only)."""
  dataset = data_lib.from_config(config.data)
  extra = data_lib.extra_from_config(config)
  it = data_lib.make_iterator(data_lib.make_batches(
      dataset, batch_size=examples_per_step, seed=config.seed, process_index=0,
      process_count=1, extra=extra))
  next(it)  # start-up (worker threads, first shuffle) is not the steady rate
  start = time.perf_counter()
  for _ in range(batches):
    next(it)
  return batches / (time.perf_counter() - start)
