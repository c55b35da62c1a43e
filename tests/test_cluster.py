"""Cluster auto-detection (jgan.sharding.detect_cluster): when jgan calls
jax.distributed.initialize() without arguments, and when it must not (no cluster, one task,
CI pods, opted out). The two-process SLURM run is in test_multihost.py."""

import importlib.util
import logging

import jax
import pytest

from jgan import sharding

_SLURM = {"SLURM_JOB_ID": "4096007", "SLURM_STEP_NODELIST": "node[001-002]",
          "SLURM_NTASKS": "2", "SLURM_PROCID": "1", "SLURM_LOCALID": "0"}
_ALL_VARS = sorted({v for d in sharding._DETECTORS for v in d.all_of + d.any_of + d.none_of}
                   | {d.count for d in sharding._DETECTORS if d.count}
                   | set(sharding._DISTRIBUTED_ENV)
                   | {sharding.NO_CLUSTER_ENV, "MEGASCALE_NUM_SLICES", "JAX_FORCE_TPU_INIT"})


@pytest.fixture
def calls(monkeypatch):
  """A clean environment and a recording jax.distributed.initialize that joins nothing."""
  for name in _ALL_VARS:
    monkeypatch.delenv(name, raising=False)
  monkeypatch.setattr(sharding, "_on_cloud_tpu_vm", lambda environ: False)
  monkeypatch.setattr(sharding, "_use_gloo_on_cpu", lambda: None)  # no global config change
  monkeypatch.setattr(jax.distributed, "is_initialized", lambda: False)
  recorded = []
  monkeypatch.setattr(jax.distributed, "initialize", lambda **kw: recorded.append(kw))
  return recorded


def _fake_kubernetes_package(monkeypatch, installed: bool):
  real = importlib.util.find_spec
  monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: (
      (object() if installed else None) if name == "kubernetes" else real(name, *a)))


def test_no_cluster_variables_means_no_initialize(calls):
  assert sharding.detect_cluster() is None
  assert sharding.maybe_initialize_distributed() is False
  assert calls == []


def test_one_task_slurm_job_stays_a_single_process(calls, monkeypatch, caplog):
  for k, v in dict(_SLURM, SLURM_NTASKS="1", SLURM_PROCID="0").items():
    monkeypatch.setenv(k, v)
  with caplog.at_level(logging.INFO, logger="jgan.sharding"):
    assert sharding.maybe_initialize_distributed() is False
  assert calls == []
  assert "one-process slurm" in caplog.text and "SLURM_NTASKS=1" in caplog.text


def test_detected_cluster_is_joined_without_arguments(calls, monkeypatch, caplog):
  for k, v in _SLURM.items():
    monkeypatch.setenv(k, v)
  with caplog.at_level(logging.INFO, logger="jgan.sharding"):
    assert sharding.maybe_initialize_distributed() is True
  assert calls == [{}]  # JAX's own detection fills coordinator, count and id
  assert "Found a slurm cluster (SLURM_JOB_ID=4096007" in caplog.text
  assert "Joined the slurm cluster as process" in caplog.text


@pytest.mark.parametrize("env", [
    {"KUBERNETES_SERVICE_HOST": "10.0.0.1"},  # any pod, e.g. a CI runner on Kubernetes
    # an salloc shell or a batch script outside srun: no step, so no SLURM_STEP_NODELIST
    {k: v for k, v in _SLURM.items() if k != "SLURM_STEP_NODELIST"},
    {"TPU_WORKER_HOSTNAMES": "a,b", "TPU_WORKER_ID": "0"},  # not on a Cloud TPU VM
    {"OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_RANK": "0"},  # no mpirun launcher URI
])
def test_partial_environments_are_not_clusters(calls, monkeypatch, env):
  for k, v in env.items():
    monkeypatch.setenv(k, v)
  assert sharding.detect_cluster() is None
  assert sharding.maybe_initialize_distributed() is False
  assert calls == []


def test_kubernetes_needs_an_indexed_job_and_the_kubernetes_package(calls, monkeypatch):
  env = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "JOB_COMPLETION_INDEX": "1"}
  _fake_kubernetes_package(monkeypatch, installed=False)
  assert sharding.detect_cluster(env) is None
  _fake_kubernetes_package(monkeypatch, installed=True)
  cluster = sharding.detect_cluster(env)
  assert cluster.kind == "k8s" and cluster.num_processes is None  # only JAX's API call knows
  assert sharding.detect_cluster({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}) is None


def test_detection_follows_jax_order_and_counts_processes(calls):
  ompi = {"OMPI_MCA_orte_hnp_uri": "1531576320.0;tcp://10.0.0.1:34911",
          "OMPI_COMM_WORLD_SIZE": "4"}
  cluster = sharding.detect_cluster({**_SLURM, **ompi})  # mpirun inside a SLURM step
  assert (cluster.kind, cluster.num_processes) == ("ompi", 4)
  no_metadata = lambda key, environ: None
  gke = {"TPU_WORKER_HOSTNAMES": "w0,w1,w2,w3", "TPU_WORKER_ID": "2",
         "MEGASCALE_NUM_SLICES": "2"}
  cluster = sharding.detect_cluster(gke, on_cloud_tpu_vm=True, metadata=no_metadata)
  assert (cluster.kind, cluster.num_processes) == ("gketpu", 8)
  metadata = {"worker-network-endpoints": "w0,w1,w2,w3", "tpu-env": "ZONE: 'x'\n"}
  cluster = sharding.detect_cluster({}, on_cloud_tpu_vm=True,
                                    metadata=lambda key, environ: metadata.get(key))
  assert (cluster.kind, cluster.num_processes) == ("gcetpu", 4)
  assert "4 processes" in cluster.describe()
  one_host = sharding.detect_cluster({}, on_cloud_tpu_vm=True,
                                     metadata=lambda key, environ: "w0" if key[0] == "w" else "")
  assert one_host.num_processes == 1  # a single-host TPU VM: nothing to join
  assert sharding.detect_cluster({}, on_cloud_tpu_vm=True, metadata=no_metadata) is None
  assert sharding.detect_cluster({"TPU_SKIP_MDS_QUERY": "1"}, on_cloud_tpu_vm=True,
                                 metadata=no_metadata) is None


def test_jgan_variables_win_and_opt_outs_are_honoured(calls, monkeypatch):
  for k, v in _SLURM.items():
    monkeypatch.setenv(k, v)
  monkeypatch.setenv(sharding.NO_CLUSTER_ENV, "1")
  assert sharding.maybe_initialize_distributed() is False
  monkeypatch.setenv(sharding.NO_CLUSTER_ENV, "0")
  assert sharding.maybe_initialize_distributed(num_processes=1) is False
  assert calls == []
  monkeypatch.setenv("JGAN_COORDINATOR_ADDRESS", "10.1.2.3:1234")
  monkeypatch.setenv("JGAN_NUM_PROCESSES", "3")
  monkeypatch.setenv("JGAN_PROCESS_ID", "2")
  assert sharding.maybe_initialize_distributed() is True
  assert calls == [{"coordinator_address": "10.1.2.3:1234", "num_processes": 3,
                    "process_id": 2}]


def test_failed_join_names_the_variables_and_the_opt_out(calls, monkeypatch):
  for k, v in _SLURM.items():
    monkeypatch.setenv(k, v)

  def unreachable(**kw):
    raise RuntimeError("DEADLINE_EXCEEDED: Barrier timed out")

  monkeypatch.setattr(jax.distributed, "initialize", unreachable)
  with pytest.raises(RuntimeError, match=r"(?s)SLURM_NTASKS=2.*DEADLINE_EXCEEDED.*"
                     r"JGAN_NO_CLUSTER=1.*JGAN_COORDINATOR_ADDRESS"):
    sharding.maybe_initialize_distributed()
