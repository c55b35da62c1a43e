"""Device placement: the one module that knows about meshes and shardings.

jgan trains data-parallel: a 1-D mesh with axis ``data`` over every device of every
process, the batch split along its leading axis, the train state replicated. Steps are
plain functions compiled with ``jax.jit`` and NamedSharding (no pmap): XLA inserts the
gradient all-reduce, and batch-norm statistics (``jnp.mean`` over the batch axis) are
over the global batch.
"""

from __future__ import annotations

import dataclasses
import glob
import importlib.util
import logging
import os
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"
log = logging.getLogger("jgan.sharding")

_DISTRIBUTED_ENV = ("JGAN_COORDINATOR_ADDRESS", "JGAN_NUM_PROCESSES", "JGAN_PROCESS_ID")
# Set (to anything but 0/false/no) to keep a process alone inside a detected cluster.
NO_CLUSTER_ENV = "JGAN_NO_CLUSTER"


@dataclasses.dataclass(frozen=True)
class _Detector:
  """One of JAX's cluster detectors, as the environment it needs to be present.

  Attributes:
    kind: JAX's name for it (``ClusterEnv.name``), which the logs print.
    all_of: variables that must all be set.
    any_of: of these, at least one must be set (when not empty).
    none_of: variables that must not be set.
    needs: a condition outside the variables: "cloud_tpu_vm" (TPU chips and libtpu, as
      ``jax._src.cloud_tpu_init`` decides at ``import jax``) or "kubernetes" (the
      ``kubernetes`` package, which JAX's detector imports).
    count: the variable holding the number of processes, if one does.
  """
  kind: str
  all_of: tuple[str, ...] = ()
  any_of: tuple[str, ...] = ()
  none_of: tuple[str, ...] = ()
  needs: str = ""
  count: str = ""


# What jax.distributed.initialize() without arguments looks for, read from jax 0.10.2
# (jax/_src/clusters/*.py), in the order JAX tries them: the first present one wins there, so it
# does here. The detector classes are private, so we mirror their conditions instead of
# importing them; re-read that directory when raising jax's lower bound.
#   OmpiCluster  (mpirun/mpiexec of Open MPI <= 4): OMPI_MCA_orte_hnp_uri.
#   SlurmCluster: all five SLURM_* below. SLURM_STEP_NODELIST exists only inside an srun step,
#     so a shell from salloc, or a batch script outside srun, is not a cluster.
#   Mpi4pyCluster: opt-in only (cluster_detection_method="mpi4py"); never auto-detected.
#   GkeTpuCluster: a Cloud TPU VM and TPU_PROCESS_ADDRESSES or TPU_WORKER_HOSTNAMES.
#   GceTpuCluster: a Cloud TPU VM, TPU_SKIP_MDS_QUERY unset, and the VM's metadata server
#     answering (it lists the pod's workers).
#   K8sCluster: KUBERNETES_SERVICE_HOST and the kubernetes package. Every pod has that variable
#     (a CI runner on Kubernetes too), so we also ask for JOB_COMPLETION_INDEX, which the
#     detector reads as the process id and only an Indexed Job sets: JAX fails without it.
_DETECTORS: tuple[_Detector, ...] = (
    _Detector("ompi", all_of=("OMPI_MCA_orte_hnp_uri",), count="OMPI_COMM_WORLD_SIZE"),
    _Detector("slurm", all_of=("SLURM_JOB_ID", "SLURM_STEP_NODELIST", "SLURM_NTASKS",
                               "SLURM_PROCID", "SLURM_LOCALID"), count="SLURM_NTASKS"),
    _Detector("gketpu", any_of=("TPU_PROCESS_ADDRESSES", "TPU_WORKER_HOSTNAMES"),
              needs="cloud_tpu_vm"),
    _Detector("gcetpu", none_of=("TPU_SKIP_MDS_QUERY",), needs="cloud_tpu_vm"),
    _Detector("k8s", all_of=("KUBERNETES_SERVICE_HOST", "JOB_COMPLETION_INDEX"),
              needs="kubernetes"),
)
# jax/_src/hardware_utils.py: Google's PCI vendor id and the device ids of TPU chips (other
# Google devices, e.g. the gVNIC network card of every GCE VM, are not TPUs).
_GOOGLE_PCI_VENDOR_ID = "0x1ae0"
_TPU_PCI_DEVICE_IDS = frozenset(
    {"0x0027", "0x0056", "0x005e", "0x0062", "0x0063", "0x006f", "0x0076"})


@dataclasses.dataclass(frozen=True)
class Cluster:
  """A cluster that ``jax.distributed.initialize()`` will find.

  Attributes:
    kind: JAX's name for the detector ("slurm", "ompi", "gketpu", "gcetpu", "k8s").
    variables: the environment variables that gave it away, for logs and errors.
    num_processes: how many processes the job has; None when only JAX can tell (Kubernetes
      asks its API server).
  """
  kind: str
  variables: Mapping[str, str]
  num_processes: int | None

  def describe(self) -> str:
    """E.g. ``slurm cluster (SLURM_JOB_ID=7, ..., SLURM_NTASKS=2)``, for logs and errors."""
    found = [f"{k}={v}" for k, v in self.variables.items()]
    if self.kind == "gcetpu":
      found.append(f"a Cloud TPU VM whose metadata lists {self.num_processes} processes")
    return f"{self.kind} cluster ({', '.join(found)})"


def _on_cloud_tpu_vm(environ: Mapping[str, str]) -> bool:
  """Mirrors ``running_in_cloud_tpu_vm``: libtpu installed and TPU chips on PCI, or forced."""
  if "JAX_FORCE_TPU_INIT" in environ:
    return True
  path = environ.get("TPU_LIBRARY_PATH")
  if not ((path and os.path.isfile(path)) or importlib.util.find_spec("libtpu") is not None):
    return False  # the common case (no jax[tpu]): no need to read /sys
  for vendor in glob.glob("/sys/bus/pci/devices/*/vendor"):
    try:
      with open(vendor) as f, open(os.path.join(os.path.dirname(vendor), "device")) as g:
        if f.read().strip() == _GOOGLE_PCI_VENDOR_ID and g.read().strip() in _TPU_PCI_DEVICE_IDS:
          return True
    except OSError:
      continue
  return False


def _gce_metadata(key: str, environ: Mapping[str, str]) -> str | None:
  """An attribute of this GCE VM from its metadata server (as JAX's TPU detector asks), or None."""
  host = environ.get("GCE_METADATA_IP", "metadata.google.internal")
  request = urllib.request.Request(
      f"http://{host}/computeMetadata/v1/instance/attributes/{key}",
      headers={"Metadata-Flavor": "Google"})
  try:
    with urllib.request.urlopen(request, timeout=10) as response:
      return response.read().decode()
  except OSError:  # URLError, HTTPError and timeouts are all OSErrors
    return None


def _tpu_num_slices(environ: Mapping[str, str],
                    metadata: Callable[[str, Mapping[str, str]], str | None]) -> int:
  """MEGASCALE_NUM_SLICES from the environment, else the metadata's tpu-env, else 1 (as JAX)."""
  value = environ.get("MEGASCALE_NUM_SLICES")
  if value is None:
    for line in (metadata("tpu-env", environ) or "").splitlines():
      key, _, rest = line.partition(":")
      if key.strip() == "MEGASCALE_NUM_SLICES":
        value = rest.strip().strip("'")
  return _int_or_none(value) or 1


def _int_or_none(value: str | None) -> int | None:
  try:
    return int(value) if value else None
  except ValueError:
    return None


def detect_cluster(
    environ: Mapping[str, str] | None = None,
    *,
    on_cloud_tpu_vm: bool | None = None,
    metadata: Callable[[str, Mapping[str, str]], str | None] = _gce_metadata,
) -> Cluster | None:
  """The cluster that ``jax.distributed.initialize()`` would detect here, or None.

  Decided from ``_DETECTORS`` (a mirror of JAX's private detectors) without touching the
  network, except on a Cloud TPU VM outside GKE, where like JAX it asks the VM's metadata
  server for the pod's workers (if it does not answer: no cluster, with a warning).

  Args:
    environ: the environment (default ``os.environ``).
    on_cloud_tpu_vm: whether this is a Cloud TPU VM (default: probe, as JAX does).
    metadata: ``(key, environ) -> value or None``, the GCE metadata reader (tests fake it).
  """
  environ = os.environ if environ is None else environ
  for d in _DETECTORS:
    if not (all(v in environ for v in d.all_of)
            and (not d.any_of or any(v in environ for v in d.any_of))
            and not any(v in environ for v in d.none_of)):
      continue
    if d.needs == "kubernetes" and importlib.util.find_spec("kubernetes") is None:
      continue
    if d.needs == "cloud_tpu_vm":
      if on_cloud_tpu_vm is None:
        on_cloud_tpu_vm = _on_cloud_tpu_vm(environ)
      if not on_cloud_tpu_vm:
        continue
    names = d.all_of + tuple(v for v in d.any_of if v in environ)
    names += tuple(v for v in (d.count,) if v and v not in names)
    variables = {v: environ[v] for v in names if v in environ}
    if d.count:
      num_processes = _int_or_none(environ.get(d.count))
    elif d.kind == "gketpu":
      hosts = environ.get("TPU_PROCESS_ADDRESSES", environ.get("TPU_WORKER_HOSTNAMES", ""))
      num_processes = len(hosts.split(",")) * _tpu_num_slices(environ, metadata)
    elif d.kind == "gcetpu":
      workers = metadata("worker-network-endpoints", environ)
      if workers is None:
        log.warning("This is a Cloud TPU VM, but its metadata server did not list the pod's "
                    "workers: running as a single process (set %s to join a pod).",
                    ", ".join(_DISTRIBUTED_ENV))
        continue
      num_processes = len(workers.split(",")) * _tpu_num_slices(environ, metadata)
    else:
      num_processes = None
    return Cluster(d.kind, variables, num_processes)
  return None


def _opted_out(environ: Mapping[str, str]) -> bool:
  return environ.get(NO_CLUSTER_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _use_gloo_on_cpu() -> None:
  """Selects gloo CPU collectives, so that several CPU processes can compute together."""
  if jax.config.jax_platforms in (None, "", "cpu") or os.environ.get("JAX_PLATFORMS") == "cpu":
    jax.config.update("jax_cpu_collectives_implementation", "gloo")


def _join_detected_cluster() -> bool:
  """Joins the cluster JAX detects (see ``detect_cluster``), if there is one of >1 process."""
  if _opted_out(os.environ):
    return False
  cluster = detect_cluster()
  if cluster is None:
    return False
  if cluster.num_processes == 1:
    log.info("Found a one-process %s: running as a single process.", cluster.describe())
    return False
  if jax.distributed.is_initialized():
    return True
  log.info("Found a %s; joining it with jax.distributed.initialize().", cluster.describe())
  _use_gloo_on_cpu()
  try:
    jax.distributed.initialize()
  except Exception as e:  # pylint: disable=broad-except  (re-raised with what to do)
    raise RuntimeError(
        f"jax.distributed.initialize() could not join the {cluster.describe()} found from "
        f"the environment. {type(e).__name__}: {e}\nTo run this process alone, set "
        f"{NO_CLUSTER_ENV}=1; to name the coordinator yourself, set "
        f"{', '.join(_DISTRIBUTED_ENV)}.") from e
  log.info("Joined the %s cluster as process %d of %d (%d devices in all).", cluster.kind,
           jax.process_index(), jax.process_count(), jax.device_count())
  return True


def maybe_initialize_distributed(
    *,
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> bool:
  """Joins a multi-host run when asked to, through ``jax.distributed.initialize``.

  Arguments win over the environment variables ``JGAN_COORDINATOR_ADDRESS``,
  ``JGAN_NUM_PROCESSES`` and ``JGAN_PROCESS_ID``. With none of them set, a cluster that JAX
  itself detects (a SLURM step, Open MPI's mpirun, a Cloud TPU pod, an Indexed Job on
  Kubernetes: see ``detect_cluster``) is joined with ``jax.distributed.initialize()`` without
  arguments, so jobs start the way their scheduler already starts them; a job of one process
  (``SLURM_NTASKS=1``), ``num_processes=1`` or ``JGAN_NO_CLUSTER=1`` stays a single process,
  as does a machine with no cluster. On CPU the gloo collectives are selected so that several
  local processes can train together (tests use two processes on 127.0.0.1).

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
    if num_processes == 1:  # asked for one process: no cluster detection either
      return False
    return _join_detected_cluster()
  if jax.distributed.is_initialized():
    return True
  if num_processes is None or process_id is None:
    raise ValueError(
        "A multi-host run needs the coordinator address, the number of processes and this "
        f"process's id; got coordinator_address={coordinator_address!r}, "
        f"num_processes={num_processes}, process_id={process_id}.")
  _use_gloo_on_cpu()
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
