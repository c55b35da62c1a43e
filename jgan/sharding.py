"""Device placement: the one module that knows about meshes and shardings.

jgan trains data-parallel: a 1-D mesh with axis ``data`` over every device of every
process, the batch split along its leading axis, the train state replicated. Steps are
plain functions compiled with ``jax.jit`` and NamedSharding (no pmap): XLA inserts the
gradient all-reduce, and batch-norm statistics (``jnp.mean`` over the batch axis) are
over the global batch.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"
log = logging.getLogger("jgan.sharding")

_DISTRIBUTED_ENV = ("JGAN_COORDINATOR_ADDRESS", "JGAN_NUM_PROCESSES", "JGAN_PROCESS_ID")


def maybe_initialize_distributed(
    *,
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> bool:
  """Joins a multi-host run when asked to, through ``jax.distributed.initialize``.

  Arguments win over the environment variables ``JGAN_COORDINATOR_ADDRESS``,
  ``JGAN_NUM_PROCESSES`` and ``JGAN_PROCESS_ID``. With none of them set nothing happens
  (single process). On CPU the gloo collectives are selected so that several local
  processes can train together (tests use two processes on 127.0.0.1).

  Returns:
    True if this process is now part of a multi-process run.
  """
  coordinator_address = coordinator_address or os.environ.get(_DISTRIBUTED_ENV[0])
  if num_processes is None and os.environ.get(_DISTRIBUTED_ENV[1]):
    num_processes = int(os.environ[_DISTRIBUTED_ENV[1]])
  if process_id is None and os.environ.get(_DISTRIBUTED_ENV[2]):
    process_id = int(os.environ[_DISTRIBUTED_ENV[2]])
  if not coordinator_address:
    if num_processes not in (None, 1):
      raise ValueError(
          f"num_processes={num_processes} but no coordinator address: set "
          f"{_DISTRIBUTED_ENV[0]}=HOST:PORT (or --coordinator_address).")
    return False
  if jax.distributed.is_initialized():
    return True
  if num_processes is None or process_id is None:
    raise ValueError(
        "A multi-host run needs the coordinator address, the number of processes and this "
        f"process's id; got coordinator_address={coordinator_address!r}, "
        f"num_processes={num_processes}, process_id={process_id}.")
  if jax.config.jax_platforms in (None, "", "cpu") or os.environ.get("JAX_PLATFORMS") == "cpu":
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(coordinator_address=coordinator_address,
                             num_processes=num_processes, process_id=process_id)
  log.info("Joined a %d-process run as process %d (coordinator %s).", num_processes,
           process_id, coordinator_address)
  return True


def make_mesh(devices: list[Any] | None = None) -> Mesh:
  """A 1-D data-parallel mesh over ``devices`` (default: every device of every process)."""
  devices = jax.devices() if devices is None else devices
  return Mesh(np.asarray(devices), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  """Sharding of a value held whole on every device (params, optimizer states)."""
  return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Sharding of a batch split along its leading axis over the ``data`` axis."""
  return NamedSharding(mesh, P(DATA_AXIS))


def check_batch_size(global_batch_size: int, mesh: Mesh) -> None:
  """Raises a clear error unless the global batch splits evenly over devices and processes."""
  n = mesh.devices.size
  if global_batch_size % n:
    raise ValueError(
        f"batch_size={global_batch_size} does not split over the {n} devices of the mesh; "
        f"use a multiple of {n} (e.g. {max(n, global_batch_size // n * n)}).")
  if global_batch_size % jax.process_count():
    raise ValueError(f"batch_size={global_batch_size} does not split over "
                     f"{jax.process_count()} processes.")


def per_process_batch_size(global_batch_size: int) -> int:
  return global_batch_size // jax.process_count()


def put_replicated(tree: Any, mesh: Mesh) -> Any:
  """Places a pytree whole on every device of the mesh."""
  return jax.device_put(tree, replicated(mesh))


def put_batch(local_batch: Any, mesh: Mesh) -> Any:
  """Builds global batch arrays from this process's slice of the batch.

  Each process passes its own rows (``local_batch`` leaves have leading size
  global_batch // process_count); the result is one global array per leaf, sharded over
  the ``data`` axis.
  """
  sharding = batch_sharding(mesh)
  return jax.tree.map(
      lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), local_batch)
