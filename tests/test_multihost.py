"""Two local processes (jax.distributed on 127.0.0.1, gloo CPU collectives) train as one;
two processes given SLURM's variables find each other through JAX's cluster detection."""

import json
import os
import random
import socket
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from jgan import train
from tests.conftest import REPO, tiny_gan_config

_WORKER = textwrap.dedent("""
    import sys, jax, numpy as np
    from jgan import train
    from tests.conftest import tiny_gan_config
    result = train.run(tiny_gan_config(total_steps=4), sys.argv[1], progress=False)
    assert jax.process_count() == 2 and jax.device_count() == 2, jax.devices()
    if jax.process_index() == 0:
      leaves = jax.tree.leaves(jax.device_get((result.state.g_params, result.state.d_params)))
      np.savez(sys.argv[2], *leaves)
    print("WORKER_OK", jax.process_index())
""")


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_equal_one_process(tmp_path):
  workdir, out = str(tmp_path / "multi"), str(tmp_path / "params.npz")
  port = _free_port()
  procs = []
  for i in range(2):
    env = dict(os.environ, PYTHONPATH=REPO, JAX_PLATFORMS="cpu",
               JGAN_COORDINATOR_ADDRESS=f"127.0.0.1:{port}", JGAN_NUM_PROCESSES="2",
               JGAN_PROCESS_ID=str(i))
    env.pop("XLA_FLAGS", None)
    procs.append(subprocess.Popen([sys.executable, "-c", _WORKER, workdir, out], env=env,
                                  cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True))
  outputs = [p.communicate(timeout=600) for p in procs]
  for p, (stdout, stderr) in zip(procs, outputs):
    assert p.returncode == 0 and "WORKER_OK" in stdout, stderr[-3000:]

  single = train.run(tiny_gan_config(total_steps=4), str(tmp_path / "single"), progress=False)
  want = jax.tree.leaves(jax.device_get((single.state.g_params, single.state.d_params)))
  got = np.load(out)
  assert len(got.files) == len(want)
  for i, w in enumerate(want):
    np.testing.assert_allclose(got[f"arr_{i}"], w, rtol=1e-5, atol=1e-6)
  # Only process 0 writes the logs; the checkpoint is complete and resumable.
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    assert [json.loads(l)["step"] for l in f] == [2, 4]
  resumed = train.run(tiny_gan_config(total_steps=4), workdir, progress=False)
  assert resumed.resumed_from == 4


_SLURM_WORKER = textwrap.dedent("""
    import logging, os, jax, jax.numpy as jnp, numpy as np
    from jgan import sharding
    logging.basicConfig(level=logging.INFO)
    assert sharding.maybe_initialize_distributed() is True
    rank = int(os.environ["SLURM_PROCID"])
    assert (jax.process_count(), jax.process_index()) == (2, rank), jax.devices()
    mesh = sharding.make_mesh()
    rows = sharding.put_batch(np.full((2, 3), rank + 1.0, np.float32), mesh)  # 4 rows in all
    total = jax.jit(jnp.sum, out_shardings=sharding.replicated(mesh))(rows)
    print("SLURM_OK", rank, float(total))
""")


def _slurm_job_id_with_free_port() -> int:
  """A SLURM_JOB_ID whose coordinator port is free here.

  JAX's SlurmCluster puts the coordinator on port ``job_id % 4096 + 61440`` of the first
  node of SLURM_STEP_NODELIST, so the test picks the port and derives the id from it.
  """
  for _ in range(100):
    port = random.randrange(61440, 65536)
    with socket.socket() as s:
      try:
        s.bind(("", port))
      except OSError:
        continue
    return 4096 * random.randrange(1, 1000) + port - 61440
  raise RuntimeError("no free port in 61440-65535")


def test_slurm_step_is_detected_and_joined():
  job_id = _slurm_job_id_with_free_port()
  base = {k: v for k, v in os.environ.items()
          if not k.startswith(("SLURM_", "JGAN_", "OMPI_", "JAX_COORDINATOR", "JAX_LOCAL"))}
  procs = []
  try:
    for i in range(2):
      env = dict(base, PYTHONPATH=REPO, JAX_PLATFORMS="cpu", SLURM_JOB_ID=str(job_id),
                 SLURM_STEP_NODELIST="localhost", SLURM_NODELIST="localhost",
                 SLURM_NTASKS="2", SLURM_PROCID=str(i), SLURM_LOCALID=str(i))
      env.pop("XLA_FLAGS", None)
      procs.append(subprocess.Popen([sys.executable, "-c", _SLURM_WORKER], env=env, cwd=REPO,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [p.communicate(timeout=180) for p in procs]
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
  for i, (p, (stdout, stderr)) in enumerate(zip(procs, outputs)):
    assert p.returncode == 0 and f"SLURM_OK {i} 18.0" in stdout, stderr[-3000:]
    assert f"Found a slurm cluster (SLURM_JOB_ID={job_id}" in stderr, stderr[-3000:]
    assert f"Joined the slurm cluster as process {i} of 2" in stderr, stderr[-3000:]
