"""Kinds of model the train loop knows, by ``config.task`` (an explicit registry)."""

from __future__ import annotations

from typing import Any, Callable, Mapping

import ml_collections

from jgan import config as config_lib
from jgan.tasks import classifier, dtn, gan, t2i
from jgan.tasks.base import Prerequisite, Task, TrainedModel

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
# config -> {role: Prerequisite}: the other runs a task of that kind needs.
PREREQUISITES: dict[str, Callable[[ml_collections.ConfigDict], dict[str, Prerequisite]]] = {
    "gan": gan.prerequisites,
    "classifier": lambda config: {},
    "dtn": dtn.prerequisites,
    "t2i": t2i.prerequisites,
}


def _check_task(task: Any) -> None:
  if task not in TASKS:
    raise ValueError(f"Unknown task {task!r}; available: {', '.join(sorted(TASKS))}.")


def build_task(config, *, image_shape: tuple[int, int, int], num_classes: int | None,
               source_shape: tuple[int, int, int] | None = None,
               prerequisites: Mapping[str, Any] | None = None) -> Task:
  """The Task for ``config.task``; the error names the known tasks.

  ``source_shape`` is the image shape of ``config.source_data`` for two-domain tasks (dtn);
  ``prerequisites`` maps the roles of :func:`prerequisites` to what
  :func:`jgan.runs.resolve_prerequisites` made of them (a task built without them trains and
  samples; what needs them, its evaluation or a fresh DTN's f, says so when called).
  """
  _check_task(config.task)
  kwargs = {"source_shape": source_shape} if source_shape is not None else {}
  if prerequisites:
    kwargs["prerequisites"] = dict(prerequisites)
  return TASKS[config.task](config, image_shape=image_shape, num_classes=num_classes, **kwargs)


def prerequisites(config: ml_collections.ConfigDict) -> dict[str, Prerequisite]:
  """The trained runs ``config``'s task needs, by role (see :class:`Prerequisite`)."""
  _check_task(config.task)
  return PREREQUISITES[config.task](config)


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


def _missing_keys(default: ml_collections.ConfigDict, config: ml_collections.ConfigDict,
                  prefix: str = "") -> list[str]:
  missing = []
  for key in default.keys():
    if key not in config:
      missing.append(prefix + key)
    elif (isinstance(default[key], ml_collections.ConfigDict)
          and isinstance(config[key], ml_collections.ConfigDict)):
      missing += _missing_keys(default[key], config[key], f"{prefix}{key}.")
  return missing


def check_task_keys(config: ml_collections.ConfigDict, origin: str = "the experiment") -> None:
  """Checks that ``config`` has its task's keys and that its function references resolve.

  Compares with the task's default config (e.g. :func:`jgan.tasks.gan.default_config`); a
  function reference is a non-empty string under a key ending in ``_fn``. ``launch.py`` calls
  it before training starts.

  Raises:
    jgan.config.ConfigError: naming the unknown task, the missing keys (with the function that
      makes a complete config), or the reference that does not resolve.
  """
  task = config.get("task")
  if task not in DEFAULT_CONFIGS:
    raise config_lib.ConfigError(f"config.task of {origin} is {task!r}; known tasks: "
                                 f"{', '.join(sorted(DEFAULT_CONFIGS))}.")
  missing = _missing_keys(DEFAULT_CONFIGS[task](), config)
  if missing:
    raise config_lib.ConfigError(
        f"The config of {origin} is missing required key(s) for task {task!r}: "
        f"{', '.join(missing)} (start from jgan.tasks.{task}.default_config(), which has them "
        "all).")

  def check_refs(node: ml_collections.ConfigDict, prefix: str) -> None:
    for key in node.keys():
      value = node[key]
      if isinstance(value, ml_collections.ConfigDict):
        check_refs(value, f"{prefix}{key}.")
      elif key.endswith("_fn") and isinstance(value, str) and value:
        config_lib.resolve_function(value, key=prefix + key)

  check_refs(config, "")


__all__ = ["DEFAULT_CONFIGS", "PREREQUISITES", "Prerequisite", "TASKS", "Task", "TrainedModel",
           "build_task", "check_task_keys", "config_from_json", "prerequisites"]
