"""A thin wrapper over orbax's CheckpointManager: save, restore latest, keep the last few.

Each checkpoint holds the train state (``state``), the input pipeline's position
(``data``, grain's iterator state) and the config it was written with (``config``), so a
re-run resumes exactly where the last complete checkpoint stopped. Orbax writes to a
temporary directory and renames it when complete, so an interrupted save never shadows
the previous checkpoint.
"""

from __future__ import annotations

import logging
from typing import Any

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp

log = logging.getLogger("jgan.checkpoint")


class Checkpointer:
  """Saves and restores ``(state, data_state, config)`` under ``directory``."""

  def __init__(self, directory: str, *, max_to_keep: int = 3):
    self.directory = directory
    self._manager = ocp.CheckpointManager(
        directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True),
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

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()
