"""Runs: training with prerequisites, and opening a finished (or running) run from its workdir.

The top library layer (``launch.py`` and the command-line tools -> runs -> train -> tasks):

* :func:`train` resolves the runs a config needs (a DTN's encoder f, the classifier an
  evaluation judges with: :func:`jgan.tasks.prerequisites`) before it hands the task to
  :func:`jgan.train.run`: a missing one is trained first from its built-in experiment, and
  the log says so. Tasks and evaluation never open or train other runs themselves.
* :func:`load_run` rebuilds a run's task and restores a checkpoint, for ``jgan.evaluate``,
  ``jgan.sample``, ``jgan.translate`` and the demo. A latest checkpoint that cannot be read is
  reported and the previous good one opened, as training does.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from typing import Any

import jax
import ml_collections

from jgan import catalog, imaging, sharding, tasks
from jgan import data as data_lib
from jgan import resume as resume_lib
from jgan import train as train_lib
from jgan.checkpoint import Checkpointer
from jgan.evaluation import features as features_lib
from jgan.tasks import base as tasks_base
from jgan.tasks import classifier as classifier_task
from jgan.tasks.base import Task

log = logging.getLogger("jgan.runs")


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
  # Checkpoints newer than ``step`` that could not be read (each named with its error).
  notes: list[str] = dataclasses.field(default_factory=list)
  prerequisites: dict[str, Any] = dataclasses.field(default_factory=dict)


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


def ensure_trained(experiment: str, workdir: str, *, purpose: str = "") -> None:
  """Trains the built-in ``experiment`` in ``workdir`` unless that holds a checkpoint."""
  if has_checkpoint(workdir):
    return
  log.warning("%s needs the run %r, which is not trained yet in %s: training it now (python "
              "launch.py --experiment %s --workdir %s).", (purpose or "This run").capitalize(),
              experiment, workdir, experiment, workdir)
  train(catalog.load_experiment(experiment), workdir, progress=False)


def open_trained_model(workdir: str) -> tasks_base.TrainedModel:
  """The model variables of the run in ``workdir``: its best checkpoint if it kept one, else
  the latest."""
  best = os.path.isdir(checkpoint_dir(workdir, best=True))
  run = load_run(workdir, best=best)
  # Classifier runs keep {"params", "batch_stats"} as state.variables; other kinds have none,
  # and the task that asked says what it needs.
  return tasks_base.TrainedModel(
      workdir=run.workdir, config=run.config, variables=getattr(run.state, "variables", None),
      image_shape=run.image_shape, num_classes=run.num_classes, step=run.step, best=best)


def classifier_network(workdir: str, *, layer: str = "features"
                       ) -> features_lib.FeatureNetwork:
  """A trained jgan classifier in ``workdir`` as a feature network (its best checkpoint if it
  kept one, else the latest): ``features`` (or ``logits``) and ``logits`` of its model."""
  if layer not in ("features", "logits"):
    raise ValueError(f"Unknown classifier layer {layer!r}; allowed: 'features', 'logits'.")
  trained = open_trained_model(workdir)
  if trained.config.task != "classifier":
    raise ValueError(f"{workdir} holds a {trained.config.task!r} run, not a classifier.")
  model = classifier_task.build_model(trained.config, trained.num_classes)
  variables, shape = trained.variables, trained.image_shape

  def apply(images: jax.Array) -> dict[str, jax.Array]:
    out = model.apply(variables, imaging.adapt_images(images, shape), train=False)
    return {"features": out[layer], "logits": out["logits"]}

  name = f"classifier:{os.path.basename(os.path.normpath(workdir))}:{layer}"
  return features_lib.FeatureNetwork(
      name=name, apply=apply,
      cache_key=f"{name}:{os.path.abspath(workdir)}:{trained.step}:{trained.best}")


def resolve_prerequisites(config: ml_collections.ConfigDict, *, start: bool = True,
                          evaluation: bool = True) -> dict[str, Any]:
  """What ``config``'s task needs from other runs, by role (:func:`jgan.tasks.prerequisites`).

  Each run is trained first when its workdir has none (the log says so), then opened: a
  :class:`~jgan.tasks.base.TrainedModel` or a feature network, as its ``kind`` asks.

  Args:
    config: the run's config.
    start: include what is needed only to start training from step 0 (a DTN's f).
    evaluation: include what the evaluation needs (its judge or feature network).
  """
  wanted = {tasks_base.AT_START: start, tasks_base.FOR_EVALUATION: evaluation}
  out = {}
  for role, p in tasks.prerequisites(config).items():
    if not wanted.get(p.when, True):
      continue
    ensure_trained(p.experiment, p.workdir, purpose=p.purpose)
    if p.kind == tasks_base.FEATURE_NETWORK:
      out[role] = classifier_network(p.workdir, layer=p.layer)
    elif p.kind == tasks_base.TRAINED_MODEL:
      out[role] = open_trained_model(p.workdir)
    else:
      raise ValueError(f"Unknown prerequisite kind {p.kind!r} for {role!r}; allowed: "
                       f"{tasks_base.FEATURE_NETWORK!r}, {tasks_base.TRAINED_MODEL!r}.")
  return out


def train(config: ml_collections.ConfigDict, workdir: str, *,
          progress: bool = True) -> train_lib.RunResult:
  """Trains ``config`` in ``workdir`` (:func:`jgan.train.run`, resuming if possible) after
  resolving its prerequisite runs: what only a fresh start needs is skipped when the workdir
  holds a checkpoint, the evaluation's when ``eval_every`` is 0."""
  # Before any prerequisite is opened: opening one starts jax, after which a multi-host
  # cluster can no longer be joined.
  sharding.maybe_initialize_distributed()
  resolved = resolve_prerequisites(config, start=not has_checkpoint(os.path.abspath(workdir)),
                                   evaluation=bool(config.get("eval_every", 0)))
  return train_lib.run(config, workdir, progress=progress, prerequisites=resolved)


def load_run(workdir: str, *, best: bool = False, step: int | None = None,
             config: ml_collections.ConfigDict | None = None,
             prerequisites: bool = False) -> Run:
  """Rebuilds the task of the run in ``workdir`` and restores a checkpoint.

  Args:
    workdir: a directory ``launch.py`` trained in.
    best: restore the best checkpoint by the run's ``eval.best_metric`` (``checkpoints_best/``)
      instead of the latest one.
    step: a particular step (default: the newest that reads; a damaged newer checkpoint is
      reported on stderr and in ``Run.notes`` and left where it is, since a reader must not
      change a run that may still be training).
    config: use this config instead of the run's ``config.json`` (e.g. with other evaluation
      settings); it must describe the same model.
    prerequisites: also resolve what the task's evaluation needs (its judge), training it if
      missing, so that ``run.task.evaluate`` works.

  Raises:
    FileNotFoundError: naming the directory, when there is no run or no readable checkpoint.
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
  steps = sorted(checkpointer.all_steps(), reverse=True)
  if not steps:
    raise FileNotFoundError(f"{directory} has no complete checkpoint.")
  if step is not None and step not in steps:
    raise FileNotFoundError(f"{directory} has no checkpoint at step {step}; it has "
                            f"{sorted(steps)}.")
  resolved = (resolve_prerequisites(config, start=False, evaluation=True) if prerequisites
              else {})
  notes = []
  try:
    for candidate in [step] if step is not None else steps:
      try:
        restored = _restore(checkpointer, candidate, config, resolved)
      except _Unreadable as unreadable:
        e = unreadable.__cause__
        if step is not None or candidate == steps[-1]:
          raise FileNotFoundError(
              f"The checkpoint at step {candidate} in {directory} cannot be read "
              f"({resume_lib.short_error(e)})" + (f"; {' '.join(notes)}" if notes else ".")) from e
        notes.append(f"The checkpoint at step {candidate} in {directory} could not be read "
                     f"({resume_lib.short_error(e)}); opening the previous one.")
        print(notes[-1], file=sys.stderr, flush=True)  # as training prints its resume notes
        continue
      return Run(workdir=workdir, config=config, checkpoint_dir=directory, notes=notes,
                 prerequisites=resolved, **restored)
  finally:
    checkpointer.close()
  raise AssertionError("unreachable")


class _Unreadable(Exception):
  """A checkpoint's files could not be read (its cause is the reader's error)."""


def _restore(checkpointer: Checkpointer, step: int, config: ml_collections.ConfigDict,
             resolved: dict[str, Any]) -> dict[str, Any]:
  """The task (built from the checkpoint's data spec) and its state at ``step``.

  Raises:
    _Unreadable: from the error of reading the checkpoint (not of building the task).
  """
  try:
    spec = checkpointer.metadata(step)
  except Exception as e:  # pylint: disable=broad-except  (orbax/tensorstore: plain Exception)
    raise _Unreadable() from e
  if "image_shape" not in spec:  # written before jgan kept the data spec in checkpoints
    dataset = data_lib.from_config(config.data)
    spec = {"image_shape": dataset.images.shape[1:], "num_classes": dataset.num_classes}
  image_shape = tuple(int(v) for v in spec["image_shape"])
  source_shape = tuple(int(v) for v in spec["source_shape"]) if "source_shape" in spec else None
  task = tasks.build_task(config, image_shape=image_shape, num_classes=spec.get("num_classes"),
                          source_shape=source_shape, prerequisites=resolved)
  template = jax.eval_shape(task.init, jax.random.key(0))
  try:
    state, _, _ = checkpointer.restore(step, template)
  except Exception as e:  # pylint: disable=broad-except  (orbax/tensorstore: plain Exception)
    raise _Unreadable() from e
  return dict(task=task, state=state, step=step, image_shape=image_shape,
              num_classes=spec.get("num_classes"), source_shape=source_shape)
