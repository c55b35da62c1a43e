"""A thin wrapper over orbax's CheckpointManager: save, restore latest, keep the last few.

Each checkpoint holds the train state (``state``), the input pipeline's position
(``data``, grain's iterator state) and the config it was written with (``config``), so a
re-run resumes exactly where the last complete checkpoint stopped. Orbax writes to a
temporary directory and renames it when complete, so an interrupted save never shadows
the previous checkpoint.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import tempfile
import time
from typing import Any

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp
from etils import epath

log = logging.getLogger("jgan.checkpoint")


class Checkpointer:
  """Saves and restores ``(state, data_state, config)`` under ``directory``."""

  def __init__(self, directory: str, *, max_to_keep: int = 3, cleanup_tmp: bool = False):
    """``cleanup_tmp``: delete the unfinished saves a killed run left (``<step>.orbax-checkpoint-
    tmp``). Only the run that writes here may ask: a reader (``jgan.evaluate`` on a running run)
    would delete the save in flight."""
    self.directory = directory
    self._manager = ocp.CheckpointManager(
        directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                             cleanup_tmp_directories=cleanup_tmp),
    )

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return list(self._manager.all_steps())

  def save(self, step: int, state: Any, *, data_state: dict[str, Any] | None = None,
           config: dict[str, Any] | None = None,
           metadata: dict[str, Any] | None = None) -> None:
    """Starts an (asynchronous) save of ``state`` at ``step``.

    The state is copied on device first, so the train step may donate its buffers while
    the write is in flight.
    """
    state = jax.tree.map(jnp.copy, state)
    self._manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state),
        data=ocp.args.JsonSave(data_state or {}),
        config=ocp.args.JsonSave(config or {}),
        metadata=ocp.args.JsonSave(metadata or {}),
    ))

  def metadata(self, step: int) -> dict[str, Any]:
    """The ``metadata`` dict saved with ``step`` (e.g. the evaluation metrics)."""
    try:
      restored = self._manager.restore(step, args=ocp.args.Composite(
          metadata=ocp.args.JsonRestore()))
    except KeyError:  # a checkpoint written before jgan saved metadata
      return {}
    return dict(restored.metadata or {})

  def restore(self, step: int, target_state: Any) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """Restores ``(state, data_state, config)`` of ``step``, shaped and sharded like the target."""
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target_state)
    restored = self._manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract),
        data=ocp.args.JsonRestore(),
        config=ocp.args.JsonRestore(),
    ))
    return restored.state, dict(restored.data or {}), dict(restored.config or {})

  def saved_config(self, step: int) -> dict[str, Any]:
    """The config (as JSON) ``step`` was written with, without reading the arrays."""
    restored = self._manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))
    return dict(restored.config or {})

  def saved_shapes(self, step: int) -> dict[str, tuple[tuple[int, ...], str]]:
    """``{"g_params/dense0/kernel": (shape, dtype)}`` of the arrays saved at ``step``, read from
    the checkpoint's metadata (no array is read)."""
    metadata = ocp.StandardCheckpointHandler().metadata(
        epath.Path(self.directory) / str(step) / "state")
    return tree_shapes(metadata.tree)

  def move_aside(self, step: int, destination: str) -> str:
    """Moves the checkpoint of ``step`` to ``destination/<step>-<time>`` (kept for a post-mortem,
    out of orbax's sight) and forgets it; returns the new path."""
    os.makedirs(destination, exist_ok=True)
    target = os.path.join(destination, f"{step}-{time.strftime('%Y%m%d-%H%M%S')}")
    shutil.move(os.path.join(self.directory, str(step)), target)
    self.reload()
    return target

  def reload(self) -> None:
    """Re-reads the list of checkpoints from disk (after one was moved away)."""
    self._manager.reload()

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()


def _key_name(entry: Any) -> str:
  for attr in ("key", "name", "idx"):  # DictKey, GetAttrKey, SequenceKey / FlattenedIndexKey
    if hasattr(entry, attr):
      return str(getattr(entry, attr))
  return str(entry)


def tree_shapes(tree: Any) -> dict[str, tuple[tuple[int, ...], str]]:
  """``{"a/b/0/c": (shape, dtype name)}`` of every array-like leaf of ``tree``.

  The path names dataclass fields, dict keys and sequence indices alike, so a train state and
  the tree orbax's metadata gives for its checkpoint (dicts and lists) have the same names.
  """
  leaves = jax.tree_util.tree_flatten_with_path(tree, is_leaf=lambda x: hasattr(x, "shape"))[0]
  return {"/".join(_key_name(k) for k in path): (tuple(int(d) for d in leaf.shape),
                                                 str(jax.numpy.dtype(leaf.dtype)))
          for path, leaf in leaves if hasattr(leaf, "shape")}


class WorkdirError(RuntimeError):
  """The workdir cannot take the run's files (unwritable, or too little free space)."""


def is_disk_full(error: BaseException) -> bool:
  """Whether ``error`` (or its cause) is "no space left on device" (orbax reports it as a
  ValueError with tensorstore's RESOURCE_EXHAUSTED text, Python as OSError ENOSPC)."""
  while error is not None:
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
      return True
    if "No space left on device" in str(error) or "Disk quota exceeded" in str(error):
      return True
    error = error.__cause__ or error.__context__
  return False


def check_writable(directory: str) -> None:
  """Creates ``directory`` and writes (then deletes) a small file in it.

  Raises:
    WorkdirError: naming the directory, the OS error and what to do.
  """
  try:
    os.makedirs(directory, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=directory, prefix=".jgan-write-test-") as f:
      f.write(b"\0" * 4096)
      f.flush()
      os.fsync(f.fileno())  # a full disk may only fail here
  except OSError as e:
    full = " (the disk is full)" if is_disk_full(e) else ""
    raise WorkdirError(
        f"Cannot write to {directory}{full}: {e.strerror or e}. Choose a writable --workdir, "
        "fix its permissions or free some space, then re-run.") from e


def _mib(n: float) -> str:
  return f"{n / 2**20:.1f} MiB"


def check_free_space(directory: str, *, checkpoint_bytes: int, keep: int, existing: int = 0,
                     margin_bytes: int = 32 * 2**20) -> None:
  """Refuses to start a run whose checkpoints cannot fit: ``keep`` of them, one more being
  written (orbax writes the new one before deleting the oldest), less the ``existing`` ones
  already on disk, and ``margin_bytes`` for the logs and sample grids.

  Raises:
    WorkdirError: naming the free and the needed space and what to change.
  """
  count = max(1, keep + 1 - existing)
  needed = count * checkpoint_bytes + margin_bytes
  free = shutil.disk_usage(directory).free
  if free < needed:
    raise WorkdirError(
        f"Not enough free disk space in {directory}: {_mib(free)} free, the run needs about "
        f"{_mib(needed)} ({count} more checkpoint(s) of {_mib(checkpoint_bytes)} and "
        f"{_mib(margin_bytes)} for logs and samples). Free some space, lower "
        "--config.keep_checkpoints, or choose another --workdir.")
