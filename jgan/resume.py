"""Resuming a run safely: the newest checkpoint that reads, and only config changes it can follow.

``restore_newest`` tries the checkpoints newest first. One that cannot be read (truncated or
corrupted files) is moved to ``<workdir>/checkpoints_damaged/`` with a message naming it and
the error, and the next older one is tried, so a run killed at a bad moment goes on from its
last good state.

Before any array is read, the config the checkpoint was written with is compared with the new
one (``check_config``):

* breaking (an error naming the keys, before any step): the saved arrays do not fit the new
  train state (a model shape, a task, an image size changed), or ``batch_size`` changed (the
  data order of the remaining steps, and how a sharded run splits each batch, follow it);
* safe (silent): :data:`SAFE_KEYS`, the cadence and length of the run;
* anything else (learning rates, loss weights, data paths...): allowed, with a message listing
  old -> new, since the run then no longer equals an uninterrupted run of either config.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable

import jax

from jgan.checkpoint import Checkpointer, tree_shapes
from jgan.config import ConfigError

# Keys a re-run may change freely: how long the run is and how often it logs, samples,
# evaluates and saves; none of them touches the train state or the data order.
SAFE_KEYS = ("total_steps", "log_every", "sample_every", "checkpoint_every", "keep_checkpoints",
             "num_samples", "eval_every", "eval", "wandb", "wandb_project", "wandb_mode")
# Keys whose change breaks the resumed run even when every array still fits.
BREAKING_KEYS = ("batch_size", "task")
DAMAGED_DIR = "checkpoints_damaged"
_SHOWN = 8  # differences named in a message


class ResumeConfigError(ConfigError):
  """The config changed in a way the checkpoint cannot follow; the message names the keys."""


@dataclasses.dataclass
class Restored:
  step: int | None  # None: no checkpoint to resume from (the state is the template)
  state: Any
  data_state: dict[str, Any]
  notes: list[str]  # what the user should know: damaged checkpoints moved, settings changed


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
  """``{"model.generator.hidden": [32, 32], ...}`` of a JSON config dict."""
  out = {}
  for key, value in tree.items():
    name = f"{prefix}{key}"
    if isinstance(value, dict) and value:
      out.update(flatten(value, name + "."))
    else:
      out[name] = value
  return out


def config_changes(saved: dict[str, Any], current: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
  """``{key: (saved value, current value)}`` for every key that differs (missing: None)."""
  old, new = flatten(saved), flatten(current)
  return {k: (old.get(k), new.get(k)) for k in sorted(set(old) | set(new))
          if old.get(k) != new.get(k)}


def _is_safe(key: str) -> bool:
  """A key of :data:`SAFE_KEYS` or in one of its groups (``eval`` covers ``eval.best_metric``)."""
  return any(key == s or key.startswith(s + ".") for s in SAFE_KEYS)


def _listing(changes: dict[str, tuple[Any, Any]]) -> str:
  lines = [f"  {k}: {old!r} -> {new!r}" for k, (old, new) in list(changes.items())[:_SHOWN]]
  if len(changes) > _SHOWN:
    lines.append(f"  ... and {len(changes) - _SHOWN} more")
  return "\n".join(lines)


def shape_mismatches(saved: dict[str, tuple], wanted: dict[str, tuple]) -> list[str]:
  """Human lines for arrays missing, extra or differently shaped between two ``tree_shapes``."""
  lines = []
  # Parameters first: they name the layer that changed; optimizer states only echo them.
  for name in sorted(set(saved) | set(wanted), key=lambda n: ("opt_state" in n, n)):
    if name not in saved:
      lines.append(f"{name} is new (not in the checkpoint)")
    elif name not in wanted:
      lines.append(f"{name} is in the checkpoint but not in the new model")
    elif saved[name] != wanted[name]:
      lines.append(f"{name} is {saved[name][0]} {saved[name][1]} in the checkpoint, "
                   f"{wanted[name][0]} {wanted[name][1]} now")
  return lines


def check_config(step: int, directory: str, *, saved_config: dict[str, Any],
                 config: dict[str, Any], saved_shapes: dict[str, tuple],
                 wanted_shapes: dict[str, tuple]) -> str | None:
  """Raises ResumeConfigError for a breaking change; returns a note for other changes (or None).

  Args:
    step, directory: the checkpoint (for the messages).
    saved_config, config: the checkpoint's and the new config, as JSON dicts.
    saved_shapes, wanted_shapes: ``tree_shapes`` of the saved and of the new train state.
  """
  # A checkpoint without its config (written by hand, or by an old jgan): only shapes to check.
  changes = ({k: v for k, v in config_changes(saved_config, config).items() if not _is_safe(k)}
             if saved_config else {})
  # Keys the checkpoint's config lacks came with a newer jgan (their defaults keep what older
  # runs did), so they neither break the resume nor make it another run: listed apart.
  saved_keys = set(flatten(saved_config)) if saved_config else set()
  added = {k: v for k, v in changes.items() if k not in saved_keys}
  changes = {k: v for k, v in changes.items() if k in saved_keys}
  mismatches = shape_mismatches(saved_shapes, wanted_shapes) if saved_shapes else []
  breaking = {k: v for k, v in changes.items() if k in BREAKING_KEYS}
  if mismatches or breaking:
    shown = changes if mismatches else breaking  # a shape change may come from any model key
    what = ("\nIts arrays do not fit the new train state: " + "; ".join(mismatches[:3])
            + (f" (and {len(mismatches) - 3} more)" if len(mismatches) > 3 else "") + "."
            if mismatches else "")
    why = ("\nbatch_size sets the data order of the remaining steps and how each batch splits "
           "over devices and processes, so the run would not continue the same run."
           if "batch_size" in breaking else "")
    raise ResumeConfigError(
        f"Cannot resume from the checkpoint at step {step} in {directory}: the config changed "
        f"(checkpoint -> now):\n{_listing(shown) or '  (no key: the data shapes changed)'}"
        f"{what}{why}\nRe-run with the checkpoint's values (in the workdir's config.json), or "
        "train the new config in a new --workdir.")
  notes = []
  if changes:
    notes.append(f"The config changed since the checkpoint at step {step} (checkpoint -> now):\n"
                 f"{_listing(changes)}\nThe run goes on with the new values, so it will not "
                 "equal an uninterrupted run of either config.")
  if added:
    notes.append(f"Keys new to jgan since the checkpoint at step {step} was written (not in its "
                 "config; the run goes on with these values):\n"
                 + "\n".join(f"  {k}: {new!r}" for k, (_, new) in list(added.items())[:_SHOWN])
                 + (f"\n  ... and {len(added) - _SHOWN} more" if len(added) > _SHOWN else ""))
  return "\n".join(notes) or None


def short_error(error: BaseException) -> str:
  """The error's type and first line, without tensorstore's dump of its whole spec."""
  text = (str(error).strip().splitlines() or [""])[0].split(" See full TensorStore details")[0]
  return f"{type(error).__name__}: {text[:300]}"


def restore_newest(checkpointer: Checkpointer, template: Any, *, config: dict[str, Any],
                   workdir: str, is_main: bool = True) -> Restored:
  """Restores the newest checkpoint that can be read, moving damaged newer ones aside.

  Args:
    checkpointer: over ``<workdir>/checkpoints``.
    template: the new train state (shapes, dtypes and shardings to restore into).
    config: the new config as a JSON dict (compared with each checkpoint's, see the docstring).
    workdir: the run's directory; damaged checkpoints go to ``<workdir>/checkpoints_damaged``.
    is_main: only the main process moves files.

  Returns:
    The restored state, data-pipeline state and step, or ``step=None`` and the template when no
    checkpoint is left (none was ever written, or every one was damaged); ``notes`` say what
    happened to damaged checkpoints and which settings changed.

  Raises:
    ResumeConfigError: the config changed in a way the newest readable checkpoint cannot follow.
  """
  wanted = tree_shapes(template)
  notes = []
  for step in sorted(checkpointer.all_steps(), reverse=True):
    # Unreadable config or metadata is no proof of damage (an older format, say): the restore
    # below is the judge, and the checks are skipped for what could not be read.
    saved_config = _or_empty(checkpointer.saved_config, step)
    saved_shapes = _or_empty(checkpointer.saved_shapes, step)
    note = check_config(step, checkpointer.directory, saved_config=saved_config, config=config,
                        saved_shapes=saved_shapes, wanted_shapes=wanted)
    try:
      state, data_state, _ = checkpointer.restore(step, template)
    except Exception as e:  # pylint: disable=broad-except  (tensorstore: plain Exception)
      if note and not saved_shapes:  # the config change may be the cause: leave it in place
        raise ResumeConfigError(
            f"Cannot restore the checkpoint at step {step} in {checkpointer.directory} "
            f"({short_error(e)}).\n{note}\nIf the change is the cause, re-run with the checkpoint's "
            "values (in the workdir's config.json), or train the new config in a new "
            "--workdir.") from e
      notes.append(_damaged(checkpointer, step, e, workdir, is_main))
      continue
    return Restored(step=step, state=state, data_state=data_state,
                    notes=notes + ([note] if note else []))
  return Restored(step=None, state=template, data_state={}, notes=notes)


def _or_empty(read: Callable[[int], dict[str, Any]], step: int) -> dict[str, Any]:
  try:
    return read(step)
  except Exception:  # pylint: disable=broad-except  (orbax raises plain Exceptions)
    return {}


def _damaged(checkpointer: Checkpointer, step: int, error: BaseException, workdir: str,
             is_main: bool) -> str:
  reason = short_error(error)
  destination = os.path.join(workdir, DAMAGED_DIR)
  moved = os.path.join(destination, f"{step}-*")
  if is_main:
    moved = checkpointer.move_aside(step, destination)
  if jax.process_count() > 1:  # the others must not look before it is gone
    from jax.experimental import multihost_utils  # pylint: disable=import-outside-toplevel
    multihost_utils.sync_global_devices(f"jgan_damaged_checkpoint_{step}")
    if not is_main:
      checkpointer.reload()
  return (f"The checkpoint at step {step} could not be read ({reason}); it was moved to {moved} "
          "and the next older checkpoint is tried. Delete it once you no longer need it.")
