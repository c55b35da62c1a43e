"""Two local processes (jax.distributed on 127.0.0.1, gloo CPU collectives) train as one."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import jax
import numpy as np

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
