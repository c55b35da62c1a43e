"""benchmarks/run.py end to end on tiny models: the suite cannot rot (numbers mean nothing)."""

import json
import math
import os
import subprocess
import sys

import pytest

from jgan.bench import timing, workloads
from tests.conftest import REPO

KEYS = {"workload", "batch", "jgan_img_s", "torch_img_s", "ratio", "compile_s",
        "gflop_per_step", "peak_fraction"}


def _run(*args, timeout=900):
  return subprocess.run([sys.executable, "-m", "benchmarks.run", *args],
                        capture_output=True, text=True, timeout=timeout, cwd=REPO)


@pytest.mark.slow
def test_tiny_run_of_each_reference_kind(tmp_path):
  """One workload per kind of reference (GAN, DTN, text-to-image)."""
  out = tmp_path / "results.json"
  names = ["mlp_gan_b64", "dtn_digits", "t2i_avatars"]
  proc = _run("--tiny", "--workloads", ",".join(names), "--repetitions", "2", "--steps", "1",
              "--out", str(out))
  assert proc.returncode == 0, proc.stderr[-3000:]
  rows = json.loads(out.read_text())["rows"]
  assert [r["workload"] for r in rows] == names
  for r in rows:
    assert KEYS <= set(r), KEYS - set(r)
    for k in ("jgan_img_s", "torch_img_s", "ratio", "compile_s", "gflop_per_step",
              "peak_fraction"):
      assert math.isfinite(r[k]) and r[k] > 0, (r["workload"], k, r[k])
    assert r["retraces"] == 0, r  # no recompile after the first step
    assert r["ceiling_ratio"] == pytest.approx(1 / r["torch_peak_fraction"])
  assert "| mlp_gan_b64 | 8 |" in proc.stdout  # the table


def test_run_as_a_file_says_how_to_run_it():
  proc = subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", "run.py"), "--help"],
                        capture_output=True, text=True, timeout=120, cwd=REPO)
  assert proc.returncode == 1 and "python -m benchmarks.run" in proc.stderr


def test_unknown_workload_is_named():
  proc = _run("--workloads", "dcgan_128")
  assert proc.returncode == 2
  assert "dcgan_128" in proc.stderr and "mlp_gan_b64" in proc.stderr


def test_nonpositive_repetitions_are_refused(capsys):
  pytest.importorskip("torch")
  import runpy
  main = runpy.run_path(os.path.join(REPO, "benchmarks", "run.py"))["main"]
  with pytest.raises(SystemExit) as exit_info:
    main(["--repetitions", "-1"])
  assert exit_info.value.code == 2
  assert "--repetitions=-1: must be at least 1" in capsys.readouterr().err


def test_every_workload_names_an_experiment():
  from jgan import catalog
  for w in workloads.WORKLOADS.values():
    config = workloads.config_for(w, tiny=True)
    assert config.batch_size == w.tiny_overrides["batch_size"], w.name
    assert w.experiment in catalog.experiment_names(), w.name


def test_t2i_workloads_are_what_the_torch_mirror_computes():
  # The quick tier's guard for the slow run above: a new t2i default term must be switched off
  # in the workload (the mirror refuses it), or the benchmark fails.
  torch_dtn = pytest.importorskip("benchmarks.torch_ref.torch_dtn")
  t2i = [w for w in workloads.WORKLOADS.values() if w.experiment.startswith("t2i")]
  assert t2i
  for w in t2i:
    for tiny in (False, True):
      torch_dtn.T2IStep.check_config(workloads.config_for(w, tiny=tiny))


def test_ratio_is_paired_per_repetition():
  # jgan 1 s vs torch 2 s, then a load spike doubles both: the ratio stays 2.
  assert timing.ratio_spread([1.0, 2.0], [2.0, 4.0]) == (2.0, 2.0, 2.0)
  assert timing.ratio_spread([1.0, 1.0, 1.0], [3.0, 1.0, 2.0]) == (2.0, 1.0, 3.0)


def test_loop_overhead_and_pipeline_rate_on_a_tiny_run(tmp_path):
  from jgan.bench import loop
  from tests.conftest import tiny_gan_config
  # A load drift between repetitions: each has its own bare time, timed before and after.
  bares = iter([0.5, 0.7, 0.25, 0.15])
  result = loop.loop_overhead(tiny_gan_config(), short=4, long=10, root=str(tmp_path),
                              repetitions=2, bare_step_s=lambda: next(bares))
  assert result["steps"] == 6 and result["long_s"] > 0 and result["short_s"] > 0
  assert result["bare_step_s_per_rep"] == [0.6, 0.2] and result["bare_step_s"] == 0.4
  assert math.isfinite(result["loop_step_s"]) and len(result["overheads"]) == 2
  low, high = result["overhead_range"]
  assert low < result["overhead"] < high  # two repetitions against 0.6 and 0.2 s differ
  assert not os.listdir(tmp_path)  # its workdirs are temporary
  with pytest.raises(ValueError, match="repetitions=0"):
    loop.loop_overhead(tiny_gan_config(), short=4, long=10, repetitions=0)
  assert loop.pipeline_rate(tiny_gan_config(), batches=20, examples_per_step=8) > 0


def test_loop_overhead_leaves_no_compilation_cache_behind(tmp_path):
  import warnings
  import jax
  import jax.numpy as jnp
  from jgan.bench import loop
  from tests.conftest import tiny_gan_config
  loop.loop_overhead(tiny_gan_config(), short=2, long=4, root=str(tmp_path))
  saved = jax.config.jax_persistent_cache_min_compile_time_secs
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)  # would cache anything
  try:
    with warnings.catch_warnings():
      warnings.simplefilter("error")  # "Error writing persistent compilation cache entry"
      jax.jit(lambda x: x * 3 + 1)(jnp.arange(5.0)).block_until_ready()
  finally:
    jax.config.update("jax_persistent_cache_min_compile_time_secs", saved)
