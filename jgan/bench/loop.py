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
from typing import Any

import jax
import ml_collections
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
                  root: str | None = None) -> dict[str, Any]:
  """Seconds per step of the whole loop, from runs of ``short`` and ``long`` steps.

  ``config.eval_every`` is set to 0. Returns ``{"loop_step_s", "short_s", "long_s",
  "steps"}``; compare ``loop_step_s`` with the bare step's time.
  """
  config = ml_collections.ConfigDict(config.to_dict())
  config.eval_every = 0
  with tempfile.TemporaryDirectory(dir=root) as tmp:
    cache = os.path.join(tmp, "xla_cache")
    saved = (jax.config.jax_compilation_cache_dir,
             jax.config.jax_persistent_cache_min_compile_time_secs)
    jax.config.update("jax_compilation_cache_dir", cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    try:
      _run_for(config, short, os.path.join(tmp, "warm"))  # fills the compilation cache
      t_short = _run_for(config, short, os.path.join(tmp, "short"))
      t_long = _run_for(config, long, os.path.join(tmp, "long"))
    finally:
      jax.config.update("jax_compilation_cache_dir", saved[0])
      jax.config.update("jax_persistent_cache_min_compile_time_secs", saved[1])
      # The cache object keeps its directory once made: without a reset, later compiles in
      # this process would write into the deleted temporary one.
      compilation_cache.reset_cache()
  return {"loop_step_s": (t_long - t_short) / (long - short), "short_s": t_short,
          "long_s": t_long, "steps": long - short}


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
