"""Opening a finished (or running) training run from its workdir: config, task and state.

Used by the command-line tools that work on trained models (``jgan.evaluate``,
``jgan.sample``) and by feature networks that load a trained classifier.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import jax
import ml_collections

from jgan import data as data_lib
from jgan import tasks
from jgan.checkpoint import Checkpointer
from jgan.tasks.base import Task


@dataclasses.dataclass
class Run:
  workdir: str
  config: ml_collections.ConfigDict
  task: Task
  state: Any
  step: int
  image_shape: tuple[int, int, int]
  num_classes: int | None
  checkpoint_dir: str
  source_shape: tuple[int, int, int] | None = None  # two-domain tasks (dtn)


def checkpoint_dir(workdir: str, *, best: bool = False) -> str:
  return os.path.join(workdir, "checkpoints_best" if best else "checkpoints")


def has_checkpoint(workdir: str) -> bool:
  directory = checkpoint_dir(workdir)
  return os.path.isdir(directory) and Checkpointer(directory).latest_step() is not None


def load_config(workdir: str) -> ml_collections.ConfigDict:
  """The config a run in ``workdir`` was trained with (new keys at their defaults)."""
  config_path = os.path.join(os.path.abspath(workdir), "config.json")
  if not os.path.isfile(config_path):
    raise FileNotFoundError(f"{os.path.abspath(workdir)} holds no training run (no "
                            "config.json); train one with python launch.py --experiment NAME "
                            "--workdir DIR.")
  with open(config_path) as f:
    return tasks.config_from_json(json.load(f))


def load_run(workdir: str, *, best: bool = False, step: int | None = None,
             config: ml_collections.ConfigDict | None = None) -> Run:
  """Rebuilds the task of the run in ``workdir`` and restores a checkpoint.

  Args:
    workdir: a directory ``launch.py`` trained in.
    best: restore the best checkpoint by the run's ``eval.best_metric`` (``checkpoints_best/``)
      instead of the latest one.
    step: a particular step (default: the latest).
    config: use this config instead of the run's ``config.json`` (e.g. with other evaluation
      settings); it must describe the same model.

  Raises:
    FileNotFoundError: naming the directory, when there is no run or no checkpoint there.
  """
  workdir = os.path.abspath(workdir)
  if config is None:
    config = load_config(workdir)
  directory = checkpoint_dir(workdir, best=best)
  if not os.path.isdir(directory):
    raise FileNotFoundError(f"{directory} does not exist" + (
        " (the run kept no best checkpoint: it needs eval_every > 0 and eval.best_metric)"
        if best else ""))
  checkpointer = Checkpointer(directory)
  step = checkpointer.latest_step() if step is None else step
  if step is None:
    raise FileNotFoundError(f"{directory} has no complete checkpoint.")
  if step not in checkpointer.all_steps():
    raise FileNotFoundError(f"{directory} has no checkpoint at step {step}; it has "
                            f"{checkpointer.all_steps()}.")
  spec = checkpointer.metadata(step)
  if "image_shape" not in spec:  # written before jgan kept the data spec in checkpoints
    dataset = data_lib.from_config(config.data)
    spec = {"image_shape": dataset.images.shape[1:], "num_classes": dataset.num_classes}
  image_shape = tuple(int(v) for v in spec["image_shape"])
  source_shape = tuple(int(v) for v in spec["source_shape"]) if "source_shape" in spec else None
  task = tasks.build_task(config, image_shape=image_shape, num_classes=spec.get("num_classes"),
                          source_shape=source_shape)
  template = jax.eval_shape(task.init, jax.random.key(0))
  state, _, _ = checkpointer.restore(step, template)
  checkpointer.close()
  return Run(workdir=workdir, config=config, task=task, state=state, step=step,
             image_shape=image_shape, num_classes=spec.get("num_classes"),
             checkpoint_dir=directory, source_shape=source_shape)
