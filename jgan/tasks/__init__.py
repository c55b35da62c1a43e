"""Kinds of model the train loop knows, by ``config.task`` (an explicit registry)."""

from __future__ import annotations

from typing import Callable

from jgan.tasks import classifier, gan
from jgan.tasks.base import Task

TASKS: dict[str, Callable[..., Task]] = {
    "gan": gan.build,
    "classifier": classifier.build,
}


def build_task(config, *, image_shape: tuple[int, int, int], num_classes: int | None) -> Task:
  """The Task for ``config.task``; the error names the known tasks."""
  if config.task not in TASKS:
    raise ValueError(f"Unknown task {config.task!r}; available: {', '.join(sorted(TASKS))}.")
  return TASKS[config.task](config, image_shape=image_shape, num_classes=num_classes)


__all__ = ["TASKS", "Task", "build_task"]
