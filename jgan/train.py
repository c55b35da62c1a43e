"""The train loop: ``run(config, workdir)``, used by launch.py and by the tests.

Writes under ``workdir``: ``checkpoints/`` (orbax), ``samples/`` (PNG grids of a fixed
input batch), ``metrics.jsonl``, ``tensorboard/`` event files, ``config.json`` and, at the
end, ``loss_curves.png``. Re-running with the same workdir resumes from the latest
checkpoint; the data order and the random numbers of step ``s`` depend only on the seed
and ``s``, so a resumed run equals an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from typing import Any

import jax
import ml_collections
import numpy as np
from tqdm.auto import tqdm

from jgan import config as config_lib
from jgan import data as data_lib
from jgan import imaging, sharding, tasks, writers
from jgan.checkpoint import Checkpointer

log = logging.getLogger("jgan.train")

# Stream names folded into the root key (one independent stream each).
_INIT, _STEPS, _SAMPLES = 0, 1, 2


class NonFiniteError(FloatingPointError):
  """A loss or metric became NaN/Inf; the message names the step and the metric."""


@dataclasses.dataclass
class RunResult:
  state: Any  # final train state (on device)
  step: int
  last_metrics: dict[str, float]
  resumed_from: int | None
  workdir: str
  step_traces: int  # times the train step was traced; 1 means no recompilation


def _check_finite(metrics: dict[str, float], step: int, last_good: int | None) -> None:
  bad = {k: v for k, v in metrics.items() if not np.isfinite(v)}
  if bad:
    where = ", ".join(f"{k}={v}" for k, v in sorted(bad.items()))
    kept = (f"The last good checkpoint (step {last_good}) is kept; " if last_good is not None
            else "No checkpoint was written yet; ")
    raise NonFiniteError(
        f"Non-finite metric at step {step}: {where}. {kept}try a lower learning rate, "
        "a different loss or label smoothing, then re-run (it resumes from that checkpoint).")


def _load_data(config: ml_collections.ConfigDict) -> data_lib.ArrayDataset:
  d = config.data
  kwargs = {}
  if d.name == "synthetic":
    kwargs = dict(image_shape=tuple(d.synthetic_shape), num_examples=d.synthetic_examples)
  return data_lib.load_dataset(d.name, split=d.split, sources=tuple(d.sources),
                               data_dir=d.data_dir, **kwargs)


def run(config: ml_collections.ConfigDict, workdir: str, *, progress: bool = True) -> RunResult:
  """Trains ``config`` in ``workdir`` until ``config.total_steps``, resuming if possible."""
  config_lib.validate(config)
  workdir = os.path.abspath(workdir)  # orbax needs absolute paths
  sharding.maybe_initialize_distributed()
  is_main = jax.process_index() == 0
  os.makedirs(workdir, exist_ok=True)

  mesh = sharding.make_mesh()
  dataset = _load_data(config)
  log.info("Data: %s, %d examples of shape %s, from %s.", dataset.name, len(dataset.images),
           dataset.images.shape[1:], dataset.source)
  task = tasks.build_task(config, image_shape=tuple(dataset.images.shape[1:]),
                          num_classes=dataset.num_classes)
  sharding.check_batch_size(task.examples_per_step, mesh)
  log.info("%s; %d device(s), %d process(es).", task.describe, mesh.devices.size,
           jax.process_count())

  batches = data_lib.make_batches(
      dataset, batch_size=sharding.per_process_batch_size(task.examples_per_step),
      seed=config.seed, process_index=jax.process_index(), process_count=jax.process_count())
  data_iter = data_lib.make_iterator(batches)

  root = jax.random.key(config.seed)
  state = task.init(jax.random.fold_in(root, _INIT))
  state = sharding.put_replicated(state, mesh)

  checkpointer = Checkpointer(os.path.join(workdir, "checkpoints"),
                              max_to_keep=config.keep_checkpoints)
  resumed_from = checkpointer.latest_step()
  if resumed_from is not None:
    state, data_state, _ = checkpointer.restore(resumed_from, state)
    data_iter.set_state(data_state)
    msg = f"Resuming from the checkpoint at step {resumed_from} in {workdir}."
    if resumed_from >= config.total_steps:
      msg += f" It is already at total_steps={config.total_steps}: nothing to train."
    if is_main:
      print(msg, flush=True)
  start = int(jax.device_get(state.step))

  config_json = json.loads(config.to_json_best_effort())
  if is_main:
    with open(os.path.join(workdir, "config.json"), "w") as f:
      json.dump(config_json, f, indent=2, sort_keys=True)

  metric_writer = writers.MetricWriter(workdir, enabled=is_main)
  metric_writer.truncate_after(start)

  replicated = sharding.replicated(mesh)
  step_root = jax.random.fold_in(root, _STEPS)

  traces = [0]

  def keyed_step(state, batch):
    traces[0] += 1  # runs only when jax traces (compiles) the step
    # The key of step s is fold_in(step_root, s), derived inside the compiled step: no extra
    # dispatch per step, and a resumed run draws the same numbers.
    return task.step(state, batch, jax.random.fold_in(step_root, state.step))

  step_fn = jax.jit(keyed_step, in_shardings=(replicated, sharding.batch_sharding(mesh)),
                    out_shardings=(replicated, replicated), donate_argnums=0)
  sample_fn = jax.jit(task.sample, out_shardings=replicated)
  sample_inputs = sharding.put_replicated(
      task.sample_inputs(jax.random.fold_in(root, _SAMPLES), config.num_samples), mesh)

  def write_samples(step: int) -> None:
    outputs = jax.device_get(sample_fn(state, sample_inputs))
    for name, images in sorted(outputs.items()):
      if is_main:
        grid = imaging.save_grid(os.path.join(workdir, name, f"step_{step:07d}.png"), images)
        metric_writer.write_image(step, name, grid)

  last_metrics: dict[str, float] = {}
  last_good = resumed_from
  bar = tqdm(total=config.total_steps, initial=start, disable=not (progress and is_main),
             desc=os.path.basename(os.path.normpath(workdir)), unit="step", dynamic_ncols=True)
  t_last, s_last = time.perf_counter(), start
  try:
    for step in range(start, config.total_steps):
      batch = sharding.put_batch(next(data_iter), mesh)
      state, metrics = step_fn(state, batch)
      done = step + 1
      bar.update(1)
      final = done == config.total_steps
      log_now = done % config.log_every == 0 or final
      ckpt_now = done % config.checkpoint_every == 0 or final
      if log_now or ckpt_now:
        # The only host sync of the loop: metrics leave the device at log/checkpoint steps.
        last_metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
        _check_finite(last_metrics, done, last_good)
      if log_now:
        now = time.perf_counter()
        scalars = dict(last_metrics, steps_per_sec=(done - s_last) / max(now - t_last, 1e-9))
        t_last, s_last = now, done
        metric_writer.write_scalars(done, scalars)
        bar.set_postfix({k: f"{v:.3g}" for k, v in last_metrics.items() if k.endswith("loss")})
      if done % config.sample_every == 0 or final:
        write_samples(done)
      if ckpt_now:
        checkpointer.save(done, state, data_state=data_iter.get_state(), config=config_json)
        last_good = done
    if start == config.total_steps and not os.path.isdir(os.path.join(workdir, "samples")):
      write_samples(start)
  finally:
    bar.close()
    checkpointer.close()
    metric_writer.close()
  if is_main:
    writers.plot_metrics(os.path.join(workdir, "metrics.jsonl"),
                         os.path.join(workdir, "loss_curves.png"))
  return RunResult(state=state, step=int(jax.device_get(state.step)), last_metrics=last_metrics,
                   resumed_from=resumed_from, workdir=workdir, step_traces=traces[0])
