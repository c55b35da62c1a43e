"""The built-in experiments by name: reads the explicit registry ``experiments.EXPERIMENTS``.

The top layer's business (``launch.py``, :mod:`jgan.runs`, the benchmarks): jgan's library
layers never look experiments up by name. Light: imports neither jax nor the tasks, so
``launch.py --list`` starts at once.
"""

from __future__ import annotations

import importlib

import ml_collections

from jgan import config as config_lib


def _registry() -> dict[str, str]:
  from experiments import EXPERIMENTS  # pylint: disable=import-outside-toplevel  (a config package outside jgan)
  return EXPERIMENTS


def experiment_names() -> list[str]:
  """The names of the built-in experiments (``experiments.EXPERIMENTS``), sorted."""
  return sorted(_registry())


def describe_experiments() -> list[tuple[str, str]]:
  """(name, one-line description) of every built-in experiment, from its docstring."""
  out = []
  for name, module_name in sorted(_registry().items()):
    doc = (importlib.import_module(module_name).__doc__ or "").strip().splitlines()
    out.append((name, doc[0] if doc else ""))
  return out


def load_experiment(name: str) -> ml_collections.ConfigDict:
  """The (locked) config of a built-in experiment, by name.

  Raises:
    jgan.config.ConfigError: an unknown name; the message suggests the closest and lists all.
  """
  registry = _registry()
  if name not in registry:
    raise config_lib.ConfigError(
        f"Unknown experiment {name!r}.{config_lib.suggest(name, registry)} Available: "
        f"{', '.join(sorted(registry))} (python launch.py --list).")
  return config_lib.checked(importlib.import_module(registry[name]).get_config(), name)
