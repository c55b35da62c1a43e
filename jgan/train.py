"""The train loop: ``run(config, workdir)``, called by :func:`jgan.runs.train` (which resolves
the runs a config needs first) and by the tests.

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

from jgan import checkpoint as checkpoint_lib
from jgan import config as config_lib
from jgan import data as data_lib
from jgan import imaging, preemption, sharding, tasks, writers
from jgan import resume as resume_lib
from jgan.checkpoint import Checkpointer
from jgan.data import selection
from jgan.tasks import base as tasks_base

log = logging.getLogger("jgan.train")

# Stream names folded into the root key (one independent stream each).
_INIT, _STEPS, _SAMPLES = 0, 1, 2


def state_donation() -> tuple[int, ...]:
  """``donate_argnums`` for a jitted ``step(state, ...)``: the state on GPU/TPU (its buffers
  are reused for the new state: half the memory), nothing on CPU. There XLA copies every
  donated parameter the step still reads before updating it in place (20 MB per MLP GAN
  step, 36 MB per DCGAN-64 step); without donation the step is 0.5-16% faster (measured,
  benchmarks/README.md) and host memory is plentiful."""
  return () if jax.default_backend() == "cpu" else (0,)


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


def _fresh_start_message(workdir: str) -> str | None:
  """Says that a workdir with files but no checkpoint starts over (None for a new workdir)."""
  others = sorted(n for n in os.listdir(workdir)
                  if not n.startswith(".") and n not in ("checkpoints", "config.json"))
  if not others:
    return None
  shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
  return (f"No checkpoint in {os.path.join(workdir, 'checkpoints')}: training from step 0. "
          f"The workdir holds files of an earlier attempt ({shown}); its metrics.jsonl lines "
          "are dropped and its sample grids overwritten as the run goes.")


def _checkpoint_bytes(state: Any) -> int:
  """About what one checkpoint of ``state`` takes on disk (arrays, plus orbax's metadata)."""
  return sum(int(x.nbytes) for x in jax.tree.leaves(state)) + 256 * 1024


def _write_json_atomically(path: str, value: Any) -> None:
  """A kill mid-write leaves the old file, never half a file (``jgan.evaluate`` reads it)."""
  tmp = f"{path}.tmp{os.getpid()}"
  with open(tmp, "w") as f:
    json.dump(value, f, indent=2, sort_keys=True)
  os.replace(tmp, path)


def _complete_steps(directory: str) -> list[int]:
  """Steps of the finished checkpoints on disk (orbax's unfinished ones carry a suffix)."""
  names = os.listdir(directory) if os.path.isdir(directory) else []
  return sorted(int(n) for n in names if n.isdigit())


def _disk_full_error(directory: str, error: BaseException) -> checkpoint_lib.WorkdirError:
  steps = _complete_steps(directory)
  kept = (f"The checkpoint at step {steps[-1]} is complete and kept" if steps
          else "No checkpoint was completed")
  first_line = (str(error).strip().splitlines() or [""])[0][:300]
  return checkpoint_lib.WorkdirError(
      f"The disk of {directory} filled up during the run ({type(error).__name__}: "
      f"{first_line}). {kept}; free some space (or lower --config.keep_checkpoints) and re-run "
      "the same command to continue.")


def _close_all(closers: list[Any], directory: str, error: BaseException | None) -> None:
  """Calls every closer; while ``error`` propagates, their own failures are only logged (a full
  disk fails every writer: the first, clear error is the one to show)."""
  failures = []
  for close in closers:
    try:
      close()
    except Exception as e:  # pylint: disable=broad-except  (reported below)
      failures.append(e)
  if error is not None:
    for e in failures:
      log.warning("While stopping after %s: %s: %s", type(error).__name__, type(e).__name__, e)
    return
  if failures:
    if checkpoint_lib.is_disk_full(failures[0]):
      raise _disk_full_error(directory, failures[0]) from failures[0]
    raise failures[0]


def _check_prerequisites(config: ml_collections.ConfigDict, given: dict[str, Any], *,
                         fresh: bool) -> None:
  """Fails before training when the task needs a prerequisite run it was not given."""
  needed = {tasks_base.AT_START: fresh, tasks_base.FOR_EVALUATION: bool(config.eval_every)}
  missing = {role: p for role, p in tasks.prerequisites(config).items()
             if needed.get(p.when, True) and role not in given}
  if missing:
    raise config_lib.ConfigError(
        "The run needs " + ", ".join(f"{p.purpose} ({role!r}: the run {p.workdir!r} of "
                                     f"experiment {p.experiment!r})" for role, p in missing.items())
        + "; train through jgan.runs.train (launch.py does), which trains or opens it first.")


def run(config: ml_collections.ConfigDict, workdir: str, *, progress: bool = True,
        prerequisites: dict[str, Any] | None = None) -> RunResult:
  """Trains ``config`` in ``workdir`` until ``config.total_steps``, resuming if possible.

  ``prerequisites``: what the task needs from other runs, by role, as
  :func:`jgan.runs.resolve_prerequisites` gives it (a DTN's f to start, the evaluation's
  feature network); checked before the first step.
  """
  config_lib.validate(config)
  prerequisites = dict(prerequisites or {})
  workdir = os.path.abspath(workdir)  # orbax needs absolute paths
  sharding.maybe_initialize_distributed()
  is_main = jax.process_index() == 0
  # Unwritable or full: say so now, not at the first checkpoint after minutes of training.
  checkpoint_lib.check_writable(workdir)
  if os.path.isdir(os.path.join(workdir, "checkpoints")):
    checkpoint_lib.check_writable(os.path.join(workdir, "checkpoints"))

  mesh = sharding.make_mesh()
  dataset = selection.from_config(data_lib.from_config(config.data), config.data)
  log.info("Data: %s, %d examples of shape %s, from %s.", dataset.name, len(dataset.images),
           dataset.images.shape[1:], dataset.source)
  extra = data_lib.extra_from_config(config)
  data_spec = {"image_shape": [int(v) for v in dataset.images.shape[1:]],
               "num_classes": dataset.num_classes}
  for name, ds in extra.items():
    log.info("Data (%s): %s, %d examples of shape %s, from %s.", name, ds.name, len(ds),
             ds.images.shape[1:], ds.source)
    data_spec[f"{name}_shape"] = [int(v) for v in ds.images.shape[1:]]
  source_shape = tuple(data_spec["source_shape"]) if "source_shape" in data_spec else None
  task = tasks.build_task(config, image_shape=tuple(data_spec["image_shape"]),
                          num_classes=dataset.num_classes, source_shape=source_shape,
                          prerequisites=prerequisites)
  sharding.check_batch_size(task.examples_per_step, mesh)
  log.info("%s; %d device(s), %d process(es).", task.describe, mesh.devices.size,
           jax.process_count())

  root = jax.random.key(config.seed)
  # Compiled: an eager init dispatches (and compiles) every op of every layer one by one.
  state = jax.jit(task.init)(jax.random.fold_in(root, _INIT))

  checkpointer = Checkpointer(os.path.join(workdir, "checkpoints"),
                              max_to_keep=config.keep_checkpoints, cleanup_tmp=is_main)
  state = sharding.put_replicated(state, mesh)
  config_json = json.loads(config.to_json_best_effort())
  # The newest checkpoint that reads, after checking the config changes it can follow.
  restored = resume_lib.restore_newest(checkpointer, state, config=config_json, workdir=workdir,
                                       is_main=is_main)
  resumed_from = restored.step
  _check_prerequisites(config, prerequisites, fresh=resumed_from is None)
  messages = list(restored.notes)
  if resumed_from is None:
    if task.load_pretrained is not None:
      state = sharding.put_replicated(task.load_pretrained(state), mesh)
    messages.append(_fresh_start_message(workdir))
  else:
    state = restored.state
  if task.precompute is not None:  # a frozen part's outputs, once per run (cached on disk)
    datasets = task.precompute(state, {"": dataset, **extra},
                               os.path.join(workdir, "feature_cache"))
    dataset, extra = datasets.pop(""), datasets
  batches = data_lib.make_batches(
      dataset, batch_size=sharding.per_process_batch_size(task.examples_per_step),
      seed=config.seed, process_index=jax.process_index(), process_count=jax.process_count(),
      extra=extra)
  data_iter = data_lib.make_iterator(batches)
  if resumed_from is not None:
    data_iter.set_state(restored.data_state)
    msg = f"Resuming from the checkpoint at step {resumed_from} in {workdir}."
    if resumed_from >= config.total_steps:
      msg += f" It is already at total_steps={config.total_steps}: nothing to train."
    messages.append(msg)
  if is_main:
    for msg in filter(None, messages):
      print(msg, flush=True)
  start = int(jax.device_get(state.step))
  checkpoint_lib.check_free_space(
      checkpointer.directory, checkpoint_bytes=_checkpoint_bytes(state),
      keep=config.keep_checkpoints, existing=len(checkpointer.all_steps()))

  if is_main:
    _write_json_atomically(os.path.join(workdir, "config.json"), config_json)

  metric_writer = writers.MetricWriter(
      workdir, enabled=is_main,
      wandb_config=dict(project=config.get("wandb_project", "jgan"),
                        mode=config.get("wandb_mode", "offline"), config=config_json)
      if config.get("wandb", False) else None)
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
                    out_shardings=(replicated, replicated),
                    donate_argnums=state_donation())
  warmup_fn = None
  if task.warmup_step is not None and task.warmup_steps:
    warmup_fn = jax.jit(
        lambda state, batch: task.warmup_step(state, batch,
                                              jax.random.fold_in(step_root, state.step)),
        in_shardings=(replicated, sharding.batch_sharding(mesh)),
        out_shardings=(replicated, replicated), donate_argnums=state_donation())
  sample_fn = jax.jit(task.sample, out_shardings=replicated)
  sample_inputs = sharding.put_replicated(
      task.sample_inputs(jax.random.fold_in(root, _SAMPLES), config.num_samples), mesh)

  best_checkpointer = best_value = None
  best_metric = config.eval.best_metric if config.eval_every and task.evaluate else ""
  if best_metric:
    best_checkpointer = Checkpointer(os.path.join(workdir, "checkpoints_best"), max_to_keep=1)
    if best_checkpointer.latest_step() is not None:
      try:
        best_value = best_checkpointer.metadata(best_checkpointer.latest_step()).get(best_metric)
      except Exception as e:  # pylint: disable=broad-except  (damaged: the next best replaces it)
        log.warning("Cannot read the best checkpoint's metadata (%s); the next evaluation "
                    "starts a new best.", e)

  def evaluate(step: int) -> dict[str, float]:
    nonlocal best_value
    start_time = time.perf_counter()
    results = task.evaluate(state)
    log.info("Evaluation at step %d (%.1fs): %s", step, time.perf_counter() - start_time,
             ", ".join(f"{k}={v:.4g}" for k, v in sorted(results.items())))
    if not best_metric:
      return results
    # "fid" names "fid/<feature network>": metric names carry the network that made them.
    matches = [k for k in results if k == best_metric or k.startswith(best_metric + "/")]
    if len(matches) != 1:
      raise config_lib.ConfigError(
          f"config.eval.best_metric={best_metric!r} matches {len(matches)} of the evaluation's "
          f"metrics {sorted(results)}; name exactly one.")
    value = results[matches[0]]
    better = (best_value is None or (value < best_value if config.eval.best_mode == "min"
                                     else value > best_value))
    if np.isfinite(value) and better:
      best_value = value
      best_checkpointer.save(step, state, config=config_json,
                             metadata={**data_spec, **results, "step": step})
      log.info("New best %s=%.4g: saved to checkpoints_best/%d.", best_metric, value, step)
    return results

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
  stop = preemption.StopSignals()  # SIGTERM/SIGINT: save at the next step boundary, then stop
  stopped_at: int | None = None
  error: BaseException | None = None
  try:
    stop.install()
    for step in range(start, config.total_steps):
      batch = sharding.put_batch(next(data_iter), mesh)
      # The host's step count picks the step: the first task.warmup_steps use warmup_fn.
      warm = warmup_fn is not None and step < task.warmup_steps
      state, metrics = (warmup_fn if warm else step_fn)(state, batch)
      done = step + 1
      bar.update(1)
      final = done == config.total_steps
      log_now = done % config.log_every == 0 or final
      stopping = stop.requested(done)  # a Python flag: no device sync
      ckpt_now = done % config.checkpoint_every == 0 or final or stopping
      record: dict[str, float] = {}
      if log_now or ckpt_now:
        # The only host sync of the loop: metrics leave the device at log/checkpoint steps.
        last_metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
        _check_finite(last_metrics, done, last_good)
      if log_now:
        record.update(last_metrics,
                      steps_per_sec=(done - s_last) / max(time.perf_counter() - t_last, 1e-9))
        bar.set_postfix({k: f"{v:.3g}" for k, v in last_metrics.items() if k.endswith("loss")})
      if done % config.sample_every == 0 or final:
        write_samples(done)
      if task.evaluate and config.eval_every and (done % config.eval_every == 0 or final):
        record.update({f"eval/{k}": v for k, v in evaluate(done).items()})
      if record:
        metric_writer.write_scalars(done, record)
      if ckpt_now:
        checkpointer.save(done, state, data_state=data_iter.get_state(), config=config_json,
                          metadata=data_spec)
        last_good = done
      if log_now:  # steps/s counts train steps only, not the host work above
        t_last, s_last = time.perf_counter(), done
      if stopping and not final:
        stopped_at = done
        break
    if stopped_at is not None:
      checkpointer.wait()  # the checkpoint is complete before the process says it is
      raise preemption.TrainingStopped(
          f"Stopped by {stop.signal_name} after step {stopped_at}: the checkpoint at step "
          f"{stopped_at} is saved in {checkpointer.directory}. Re-run the same command to "
          "continue from it.", step=stopped_at, signal_name=stop.signal_name,
          signum=stop.signum)
  except BaseException as e:
    error = e
    if checkpoint_lib.is_disk_full(e) and not isinstance(e, checkpoint_lib.WorkdirError):
      raise _disk_full_error(checkpointer.directory, e) from e
    raise
  finally:
    stop.uninstall()
    bar.close()
    closers = [checkpointer.close, metric_writer.close]
    if best_checkpointer is not None:
      closers.insert(1, best_checkpointer.close)
    _close_all(closers, checkpointer.directory, error)
  if is_main:
    writers.plot_metrics(os.path.join(workdir, "metrics.jsonl"),
                         os.path.join(workdir, "loss_curves.png"))
  return RunResult(state=state, step=int(jax.device_get(state.step)), last_metrics=last_metrics,
                   resumed_from=resumed_from, workdir=workdir, step_traces=traces[0])
