"""Experiment configs: the base config, loading from a path, overrides, validation.

An experiment is a Python file with ``get_config() -> ml_collections.ConfigDict`` (see
``experiments/``). Configs are locked, so a misspelt key fails before training and the
error names the valid keys. The bottom of jgan's layers: every module may import it, it imports
no other layer (built-in experiments by name: :mod:`jgan.catalog`; a task's keys:
:func:`jgan.tasks.check_task_keys`).
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import importlib
import importlib.util
import os
import sys
import types
from typing import Any, Callable, Iterable, Sequence

import ml_collections

from jgan import writers

REQUIRED_KEYS = ("task", "seed", "batch_size", "total_steps", "log_every", "sample_every",
                 "checkpoint_every")


class ConfigError(ValueError):
  """A bad experiment name, config file, key or value; the message says what is allowed."""


def base_config() -> ml_collections.ConfigDict:
  """Fields every experiment has; experiments start from this and change what they need."""
  c = ml_collections.ConfigDict()
  c.task = "gan"
  c.seed = 0
  c.batch_size = 64
  c.total_steps = 1000
  c.log_every = 50
  c.sample_every = 500
  c.checkpoint_every = 500
  c.keep_checkpoints = 3
  c.num_samples = 64  # images in each sample grid (fixed inputs drawn from the seed)
  c.eval_every = 0  # steps between evaluations (and one at the end); 0 turns them off
  c.eval = ml_collections.ConfigDict()
  c.eval.best_metric = ""  # keep the best checkpoint by this evaluation metric ("": don't)
  c.eval.best_mode = "min"  # "min" or "max"
  # Weights & Biases mirror of metrics.jsonl/TensorBoard (optional: pip install wandb).
  # "offline" needs no network and writes WORKDIR/wandb; upload later with
  # `wandb sync WORKDIR/wandb/offline-run-*`. Modes: "offline", "online", "disabled".
  c.wandb = False
  c.wandb_project = "jgan"
  c.wandb_mode = "offline"

  c.data = ml_collections.ConfigDict()
  c.data.name = "mnist"
  c.data.split = "train"
  c.data.sources = ("tfds", "offline")
  c.data.data_dir = ml_collections.config_dict.placeholder(str)  # TFDS data_dir
  c.data.dir = ml_collections.config_dict.placeholder(str)  # an image folder (image_folder, celeb_a)
  c.data.image_size = 0  # resize (center crop, then resize) to this square size; 0: as stored
  c.data.num_examples = 0  # for generated datasets (avatars): how many; 0: the dataset's default
  # printed_digits' style split: "all", or only its "seen" (training) / "heldout" styles.
  c.data.styles = "all"
  # < 1: train on that fraction of the images, the most typical of each class under a
  # Gaussian of their first keep_densest_dims principal components (jgan.data.selection:
  # instance selection); evaluation still compares with every image.
  c.data.keep_densest = 1.0
  c.data.keep_densest_dims = 32
  # Only for data.name == "synthetic" (tests and smoke runs).
  c.data.synthetic_shape = (28, 28, 1)
  c.data.synthetic_examples = 512
  return c


def group_with(group: ml_collections.ConfigDict, overrides) -> ml_collections.ConfigDict:
  """A copy of a config group with ``overrides`` (a mapping of some of its keys) applied, e.g.
  the data group of a held-out test set; a key the group lacks is an error naming its keys."""
  out = ml_collections.ConfigDict(group.to_dict())
  for k, v in dict(overrides or {}).items():
    if k not in out:
      raise ValueError(f"Unknown key {k!r} in overrides of a config group; it has: "
                       f"{', '.join(sorted(out.keys()))}{suggest(k, out.keys())}.")
    out[k] = v
  return out


def changed_group(group: ml_collections.ConfigDict, overrides
                  ) -> ml_collections.ConfigDict | None:
  """:func:`group_with`, or None when ``overrides`` is empty or changes nothing (a second test
  set that would be the first one again, e.g. ``{"styles": "all"}`` on a group already "all")."""
  if not overrides:
    return None
  out = group_with(group, overrides)
  return None if out.to_dict() == group.to_dict() else out


def suggest(bad: str, allowed: Iterable[str]) -> str:
  """" Did you mean 'x'?" for the allowed value closest to ``bad`` ("" if none is close)."""
  close = difflib.get_close_matches(bad, list(allowed), n=1)
  return f" Did you mean {close[0]!r}?" if close else ""


def load_config_file(path: str) -> ml_collections.ConfigDict:
  """The config of an experiment file anywhere on disk (it defines ``get_config()``).

  The file is imported from its path with importlib (no ``sys.path`` change) under a module
  name of its own, so functions it defines can be named in its config with
  :func:`function_ref`.

  Raises:
    ConfigError: the file does not exist, fails to import, defines no ``get_config``, or its
      config lacks a required key (each message names what is missing).
  """
  if not os.path.isfile(path):
    raise ConfigError(f"Config file {path!r} does not exist (pass a .py file that defines "
                      "get_config(), or --experiment NAME for a built-in experiment).")
  module = load_module_from_path(path)
  get_config = getattr(module, "get_config", None)
  if not callable(get_config):
    raise ConfigError(f"{path!r} defines no get_config() function; an experiment file must "
                      "define get_config() returning an ml_collections.ConfigDict.")
  try:
    config = get_config()
  except Exception as e:  # pylint: disable=broad-except  (user code: one clear message)
    if os.environ.get("JGAN_DEBUG"):
      raise
    raise ConfigError(f"get_config() of {path!r} raised {type(e).__name__}: {e} "
                      "(JGAN_DEBUG=1 shows the traceback).") from e
  return checked(config, path)


_USER_MODULE_PREFIX = "jgan_user_"


def _module_name_of_path(path: str) -> str:
  """A module name unique to the file's absolute path (two my_exp.py never collide)."""
  path = os.path.abspath(path)
  stem = "".join(ch if ch.isalnum() else "_" for ch in os.path.splitext(os.path.basename(path))[0])
  return f"{_USER_MODULE_PREFIX}{stem}_{hashlib.sha1(path.encode()).hexdigest()[:8]}"


def load_module_from_path(path: str, *, reuse: bool = False) -> types.ModuleType:
  """Imports the Python file at ``path`` (importlib, no ``sys.path`` change).

  The module is registered in ``sys.modules`` under a name derived from its absolute path;
  with ``reuse=True`` an already imported file is not executed again.

  Raises:
    ConfigError: the file is missing, is not Python, or raised while being imported.
  """
  if not os.path.isfile(path):
    raise ConfigError(f"File {path!r} does not exist.")
  name = _module_name_of_path(path)
  if reuse and name in sys.modules:
    return sys.modules[name]
  spec = importlib.util.spec_from_file_location(name, os.path.abspath(path))
  if spec is None or spec.loader is None:
    raise ConfigError(f"Cannot load {path!r} as a Python module (is it a .py file?).")
  module = importlib.util.module_from_spec(spec)
  sys.modules[name] = module
  try:
    spec.loader.exec_module(module)
  except Exception as e:  # pylint: disable=broad-except  (user code: one clear message)
    del sys.modules[name]
    if os.environ.get("JGAN_DEBUG"):
      raise
    raise ConfigError(f"Importing {path!r} failed: {type(e).__name__}: {e} "
                      "(JGAN_DEBUG=1 shows the traceback).") from e
  return module


def function_ref(fn: Callable[..., Any]) -> str:
  """The config string that names ``fn`` for :func:`resolve_function`.

  ``"package.module:function"`` for a function of an importable module (e.g. a built-in
  experiment), ``"/abs/path/file.py:function"`` for one defined in an experiment file loaded
  by path (``launch.py --config file.py``) or run as a script.
  """
  module = sys.modules.get(fn.__module__)
  qualname = fn.__qualname__
  if "<" in qualname:
    raise ConfigError(f"{qualname} is not a module-level function; define the function at the "
                      "top level of its file so a config can name it.")
  if fn.__module__ == "__main__" or fn.__module__.startswith(_USER_MODULE_PREFIX):
    filename = getattr(module, "__file__", None) or fn.__code__.co_filename
    return f"{os.path.abspath(filename)}:{qualname}"
  return f"{fn.__module__}:{qualname}"


def resolve_function(ref: str, *, key: str = "a function reference") -> Callable[..., Any]:
  """The function a config names: ``"package.module:function"`` or ``"path/file.py:function"``.

  A relative file path is taken from the current directory. Files are imported with
  :func:`load_module_from_path` (once per process).

  Args:
    ref: the reference string.
    key: the config key it came from, for the error message.

  Raises:
    ConfigError: naming the key, the reference and what is missing.
  """
  where, sep, attr = ref.rpartition(":")
  if not sep or not where or not attr:
    raise ConfigError(f"config.{key} = {ref!r} is not a function reference; write "
                      "'package.module:function' or 'path/to/file.py:function'.")
  if where.endswith(".py"):
    if not os.path.isfile(where):
      raise ConfigError(f"config.{key} = {ref!r}: the file {where!r} does not exist.")
    module = load_module_from_path(where, reuse=True)
  else:
    try:
      module = importlib.import_module(where)
    except ImportError as e:
      raise ConfigError(f"config.{key} = {ref!r}: cannot import module {where!r} ({e}).") from None
  obj = module
  for part in attr.split("."):
    if not hasattr(obj, part):
      public = sorted(n for n in dir(module) if not n.startswith("_")
                      and callable(getattr(module, n)))
      raise ConfigError(f"config.{key} = {ref!r}: {where!r} has no {attr!r}.{suggest(attr, public)}"
                        f" Its functions: {', '.join(public) or 'none'}.")
    obj = getattr(obj, part)
  if not callable(obj):
    raise ConfigError(f"config.{key} = {ref!r} is a {type(obj).__name__}, not a function.")
  return obj


def checked(config: Any, origin: str) -> ml_collections.ConfigDict:
  """``config``, locked, after checking it is a ConfigDict with the required keys.

  Raises:
    ConfigError: naming ``origin`` and what is wrong.
  """
  if not isinstance(config, ml_collections.ConfigDict):
    raise ConfigError(f"get_config() of {origin} returned {type(config).__name__}, not an "
                      "ml_collections.ConfigDict.")
  missing = [k for k in REQUIRED_KEYS if k not in config]
  if missing:
    raise ConfigError(f"The config of {origin} is missing required key(s) {missing}; every "
                      f"experiment needs {list(REQUIRED_KEYS)} (start from "
                      "jgan.config.base_config()).")
  config.lock()
  return config


def _parse_value(text: str, current: Any) -> Any:
  if isinstance(current, bool):
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes"):
      return True
    if lowered in ("false", "0", "no"):
      return False
    raise ConfigError(f"expected true or false, got {text!r}")
  if isinstance(current, str) or (current is None and not text[:1].isdigit()
                                  and text[:1] not in "([{-."):
    # Strings stay strings (a bare word would not literal_eval anyway).
    if text.lower() in ("none", "null") and current is None:
      return None
    return text
  try:
    value = ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text
  if isinstance(current, tuple) and isinstance(value, list):
    value = tuple(value)
  if isinstance(current, tuple) and not isinstance(value, tuple):
    value = (value,)
  return value


def apply_overrides(config: ml_collections.ConfigDict,
                    overrides: Sequence[tuple[str, str]]) -> ml_collections.ConfigDict:
  """Applies ``(dotted_key, text_value)`` overrides, typed like the current values.

  Raises:
    ConfigError: naming the unknown key and the valid keys at its level, or the bad value.
  """
  for key, text in overrides:
    node = config
    parts = key.split(".")
    for depth, part in enumerate(parts):
      where = ".".join(parts[:depth]) or "the config"
      if not isinstance(node, ml_collections.ConfigDict) or part not in node:
        valid = sorted(node.keys()) if isinstance(node, ml_collections.ConfigDict) else []
        raise ConfigError(
            f"Unknown config key {key!r}: {where} has no key {part!r}."
            f"{suggest(part, valid)} Valid keys there: {', '.join(valid)}.")
      if depth < len(parts) - 1:
        node = node[part]
    current = node[parts[-1]]
    if isinstance(current, ml_collections.ConfigDict):
      raise ConfigError(f"{key!r} is a group of keys ({', '.join(sorted(current.keys()))}); "
                        f"set one of them, e.g. --config.{key}.{sorted(current.keys())[0]}=...")
    try:
      value = _parse_value(text, current)
      node[parts[-1]] = value
    except (TypeError, ValueError) as e:
      raise ConfigError(f"Bad value for --config.{key}: {text!r} ({e}); the current value is "
                        f"{current!r} of type {type(current).__name__}.") from None
  return config


def validate(config: ml_collections.ConfigDict) -> None:
  """Checks values that would otherwise fail late, with a message naming the fix."""
  for key in ("batch_size", "total_steps", "log_every", "sample_every", "checkpoint_every"):
    value = config[key]
    if not isinstance(value, int) or value < 1:
      raise ConfigError(f"config.{key} must be a positive integer, got {value!r}.")
  if not isinstance(config.get("eval_every", 0), int) or config.get("eval_every", 0) < 0:
    raise ConfigError(f"config.eval_every must be an integer >= 0, got {config.eval_every!r}.")
  if "eval" in config and config.eval.get("best_mode", "min") not in ("min", "max"):
    raise ConfigError(f"config.eval.best_mode must be 'min' or 'max', got "
                      f"{config.eval.best_mode!r}.")
  if config.get("wandb_mode", "offline") not in writers.WANDB_MODES:
    raise ConfigError(f"config.wandb_mode {config.wandb_mode!r} is not one of "
                      f"{', '.join(writers.WANDB_MODES)}.")
  if config.get("keep_checkpoints", 1) < 1:
    raise ConfigError(f"config.keep_checkpoints must be >= 1, got {config.keep_checkpoints}.")


def experiment_name_of_file(path: str) -> str:
  """The run name of an experiment file: its base name without .py."""
  return os.path.splitext(os.path.basename(path))[0]


def split_overrides(argv: Sequence[str]) -> tuple[list[str], list[tuple[str, str]]]:
  """Separates ``--config.KEY=VALUE`` (or ``--config.KEY VALUE``) from the other arguments."""
  rest, overrides = [], []
  it = iter(argv)
  for arg in it:
    if arg.startswith("--config."):
      key, sep, value = arg[len("--config."):].partition("=")
      if not sep:
        value = next(it, None)
        if value is None:
          raise ConfigError(f"{arg} needs a value: {arg}=VALUE")
      overrides.append((key, value))
    else:
      rest.append(arg)
  return rest, overrides
