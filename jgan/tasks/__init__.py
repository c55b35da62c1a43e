"""Kinds of model the train loop knows, by ``config.task`` (an explicit registry)."""

from __future__ import annotations

from typing import Callable

import ml_collections

from jgan.tasks import classifier, dtn, gan, t2i
from jgan.tasks.base import Task

TASKS: dict[str, Callable[..., Task]] = {
    "gan": gan.build,
    "classifier": classifier.build,
    "dtn": dtn.build,
    "t2i": t2i.build,
}
DEFAULT_CONFIGS = {
    "gan": gan.default_config,
    "classifier": classifier.default_config,
    "dtn": dtn.default_config,
    "t2i": t2i.default_config,
}


def build_task(config, *, image_shape: tuple[int, int, int], num_classes: int | None,
               source_shape: tuple[int, int, int] | None = None) -> Task:
  """The Task for ``config.task``; the error names the known tasks.

  ``source_shape`` is the image shape of ``config.source_data`` for two-domain tasks (dtn).
  """
  if config.task not in TASKS:
    raise ValueError(f"Unknown task {config.task!r}; available: {', '.join(sorted(TASKS))}.")
  kwargs = {"source_shape": source_shape} if source_shape is not None else {}
  return TASKS[config.task](config, image_shape=image_shape, num_classes=num_classes, **kwargs)


def config_from_json(saved: dict) -> ml_collections.ConfigDict:
  """A run's saved config (config.json) over its task's current defaults.

  Keys added to jgan after the run was trained take their default values, so old runs stay
  loadable.
  """
  task = saved.get("task", "gan")
  if task not in DEFAULT_CONFIGS:
    raise ValueError(f"Unknown task {task!r}; available: {', '.join(sorted(DEFAULT_CONFIGS))}.")
  config = DEFAULT_CONFIGS[task]()
  config.update(ml_collections.ConfigDict(saved))
  return config


__all__ = ["DEFAULT_CONFIGS", "TASKS", "Task", "build_task", "config_from_json"]
