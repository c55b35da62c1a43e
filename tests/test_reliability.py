"""Fault injection: kill -9, damaged checkpoints, config changes on resume, NaN/Inf, full or
unwritable disks, SIGTERM/SIGINT, and hostile image files in the folder source and the demo.

The kill tests run ``python launch.py --config FILE`` in subprocesses and kill them at random
moments; the moments come from a seed printed in every failure (set ``JGAN_FAULT_SEED`` to
replay one). Every run here, in-process or not, shares one persistent XLA compilation cache, so
only the first run of each model compiles.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
import types
import zlib

import hypothesis
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest
from hypothesis import strategies as st
from jax.experimental.compilation_cache import compilation_cache
from PIL import Image

import launch
from jgan import checkpoint, demo, preemption, resume, sharding, tasks, train
from jgan.data import folder
from tests.conftest import REPO, tiny_gan_config

SEED = int(os.environ.get("JGAN_FAULT_SEED", time.time_ns() % 2**31))
TMP_SUFFIX = ".orbax-checkpoint-tmp"  # orbax's name for a checkpoint still being written


# ------------------------------------------------------------------------------------ helpers


@pytest.fixture(scope="module")
def xla_cache(tmp_path_factory):
  """One persistent compilation cache for this module's runs (in-process and subprocesses)."""
  directory = str(tmp_path_factory.mktemp("xla_cache"))
  before = (jax.config.jax_compilation_cache_dir,
            jax.config.jax_persistent_cache_min_compile_time_secs)
  jax.config.update("jax_compilation_cache_dir", directory)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
  compilation_cache.reset_cache()
  yield directory
  jax.config.update("jax_compilation_cache_dir", before[0])
  jax.config.update("jax_persistent_cache_min_compile_time_secs", before[1])
  compilation_cache.reset_cache()


def _env(xla_cache: str, **extra: str) -> dict[str, str]:
  env = dict(os.environ, PYTHONPATH=REPO, JAX_PLATFORMS="cpu", JAX_COMPILATION_CACHE_DIR=xla_cache,
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0", **extra)
  env.pop("XLA_FLAGS", None)
  return env


def _config_file(directory, body: str) -> str:
  path = os.path.join(directory, "experiment.py")
  with open(path, "w") as f:
    f.write(textwrap.dedent(body))
  return path


class Launch:
  """``python launch.py --config FILE --workdir DIR`` in the background, output to a file."""

  def __init__(self, config_file: str, workdir: str, env: dict[str, str]):
    self.workdir = workdir
    self.log_path = f"{workdir}.log{time.time_ns()}"
    with open(self.log_path, "w") as log:
      self.proc = subprocess.Popen(
          [sys.executable, "launch.py", "--config", config_file, "--workdir", workdir,
           "--no_progress"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)

  @property
  def output(self) -> str:
    with open(self.log_path) as f:
      return f.read()

  def wait_until(self, condition, what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
      if self.proc.poll() is not None:
        raise AssertionError(f"the run ended (rc {self.proc.returncode}) before {what} "
                             f"(seed {SEED}):\n{self.output[-3000:]}")
      if time.monotonic() > deadline:
        self.proc.kill()
        raise AssertionError(f"no {what} after {timeout}s (seed {SEED}):\n{self.output[-3000:]}")
      time.sleep(0.001)

  def finish(self, timeout: float = 600) -> int:
    return self.proc.wait(timeout=timeout)

  def signal(self, signum: int) -> int:
    self.proc.send_signal(signum)
    return self.finish()


def _names(workdir: str) -> list[str]:
  try:
    return os.listdir(os.path.join(workdir, "checkpoints"))
  except FileNotFoundError:
    return []


def _complete(workdir: str) -> list[int]:
  return sorted(int(n) for n in _names(workdir) if n.isdigit())


def _kill_during_checkpoint_write(run: Launch, rng: random.Random) -> bool:
  """SIGKILLs ``run`` while orbax writes a checkpoint (after a random number of complete ones);
  returns whether the half-written checkpoint was left on disk."""
  skip = rng.randrange(3)
  run.wait_until(lambda: len(_complete(run.workdir)) > skip, f"{skip + 1} checkpoint(s)")
  run.wait_until(lambda: any(n.endswith(TMP_SUFFIX) for n in _names(run.workdir)),
                 "a checkpoint being written")
  run.proc.kill()
  run.finish()
  return any(n.endswith(TMP_SUFFIX) for n in _names(run.workdir))


def _wait_for_random_moment(run: Launch, rng: random.Random, *, after: int, last: int) -> None:
  """Returns at a random moment of ``run``'s training loop past step ``after``: once a random
  checkpoint step up to ``last`` is passed, after a random fraction of one checkpoint interval
  (timed on this run, so the moment falls inside the loop on a fast or a slow machine)."""
  newest = lambda: max(_complete(run.workdir), default=0)
  target = rng.randint(after + 1, last)
  run.wait_until(lambda: newest() >= target, f"a checkpoint at step >= {target}")
  passed, seen = newest(), time.monotonic()
  run.wait_until(lambda: newest() > passed, f"a checkpoint after step {passed}")
  time.sleep(rng.uniform(0.0, time.monotonic() - seen))


def _resumed_step(output: str) -> int | None:
  marker = "Resuming from the checkpoint at step "
  return int(output.split(marker)[1].split()[0]) if marker in output else None


def _saved_leaves(workdir: str, step: int) -> list[np.ndarray]:
  tree = ocp.StandardCheckpointer().restore(
      os.path.join(workdir, "checkpoints", str(step), "state"))
  return [np.asarray(x) for x in jax.tree.leaves(tree)]


def _assert_same_params(a: list[np.ndarray], b: list[np.ndarray], what: str) -> None:
  assert len(a) == len(b), what
  for x, y in zip(a, b):
    np.testing.assert_allclose(x, y, atol=1e-6, rtol=0, err_msg=f"{what} (seed {SEED})")


def _metric_records(workdir: str) -> list[dict]:
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [json.loads(line) for line in f]


def _assert_same_metrics(a: str, b: str) -> None:
  """Same steps logged once each, same losses: the data order and the RNG were the same."""
  ra, rb = _metric_records(a), _metric_records(b)
  assert [r["step"] for r in ra] == [r["step"] for r in rb], (SEED, ra, rb)
  for x, y in zip(ra, rb):
    for key in ("d_loss", "g_loss"):
      np.testing.assert_allclose(x[key], y[key], atol=1e-6, err_msg=f"step {x['step']} {key}")


def _state_leaves(result) -> list[np.ndarray]:
  return [np.asarray(x) for x in jax.tree.leaves(jax.device_get(result.state))]


# ------------------------------------------------------------------- kill -9, SIGTERM (MLP)

_MLP_STEPS = 120
_MLP_CONFIG = f"""
    from tests.conftest import tiny_gan_config
    def get_config():
      return tiny_gan_config(total_steps={_MLP_STEPS}, checkpoint_every=10, log_every=10,
                             sample_every=1000, keep_checkpoints=2)
"""


@pytest.fixture(scope="module")
def mlp_reference(tmp_path_factory, xla_cache):
  """An uninterrupted subprocess run of the MLP experiment (it also fills the XLA cache)."""
  root = tmp_path_factory.mktemp("mlp")
  config_file = _config_file(str(root), _MLP_CONFIG)
  run = Launch(config_file, str(root / "reference"), _env(xla_cache))
  assert run.finish() == 0, run.output[-3000:]
  return {"config": config_file, "workdir": run.workdir, "env": _env(xla_cache)}


@pytest.mark.slow
def test_mlp_survives_kill9_and_sigterm_at_random_moments(mlp_reference, tmp_path):
  """kill -9 during a checkpoint write, SIGTERM, kill -9 at a random moment, each followed by
  the same command: the final params, the logged losses and the data order equal an
  uninterrupted run's."""
  rng = random.Random(SEED)
  workdir, config_file, env = str(tmp_path / "run"), mlp_reference["config"], mlp_reference["env"]

  # 1. kill -9 while a checkpoint is being written.
  run = Launch(config_file, workdir, env)
  torn = _kill_during_checkpoint_write(run, rng)
  complete = _complete(workdir)
  assert complete and complete[-1] < _MLP_STEPS

  # 2. Re-run: it resumes from the last complete checkpoint; SIGTERM it at a random moment.
  run = Launch(config_file, workdir, env)
  run.wait_until(lambda: _resumed_step(run.output) is not None, "the resume message")
  assert _resumed_step(run.output) == complete[-1], (torn, run.output)
  _wait_for_random_moment(run, rng, after=complete[-1], last=_MLP_STEPS // 2)
  code = run.signal(signal.SIGTERM)
  output = run.output
  assert code == 128 + signal.SIGTERM, output[-3000:]
  assert "Stopped by SIGTERM after step" in output and "Traceback" not in output, output[-3000:]
  stopped = int(output.split("Stopped by SIGTERM after step ")[1].split(":")[0])
  assert _complete(workdir)[-1] == stopped  # saved at the step boundary, completely

  # 3. Re-run: it continues from that step; kill -9 at a random moment. (On a loaded machine
  # the SIGTERM can land late; the window then starts right after it.)
  run = Launch(config_file, workdir, env)
  try:
    _wait_for_random_moment(run, rng, after=stopped, last=max(_MLP_STEPS - 35, stopped + 1))
  except AssertionError:
    if run.proc.poll() != 0:  # only a clean finish before the moment is not a failure
      raise
  killed = run.proc.poll() is None  # False: the run reached the end first (nothing to kill)
  if killed:
    run.proc.kill()
  run.finish()
  assert _resumed_step(run.output) == stopped

  # 4. Re-run to the end.
  if killed:
    run = Launch(config_file, workdir, env)
    assert run.finish() == 0, run.output[-3000:]
  assert f"Done: step {_MLP_STEPS}" in run.output
  print(f"seed {SEED}: kill -9 mid-write (save left torn: {torn}), resumed from {complete[-1]}; "
        f"SIGTERM saved and stopped at {stopped}; resumed from {stopped}, "
        f"{'kill -9, resumed; ' if killed else 'ran to the end before the kill; '}finished")
  _assert_same_params(_saved_leaves(mlp_reference["workdir"], _MLP_STEPS),
                      _saved_leaves(workdir, _MLP_STEPS), "params after kills")
  _assert_same_metrics(mlp_reference["workdir"], workdir)


# ------------------------------------------------------------------------- kill -9 (DTN)

_DTN_STEPS = 40


@pytest.fixture(scope="module")
def dtn_setup(tmp_path_factory, xla_cache, tiny_encoder):
  """A tiny encoder f (conftest's), a DTN experiment file and its uninterrupted run."""
  from tests.test_dtn import _FAST_PRNG  # pylint: disable=import-outside-toplevel
  root = tmp_path_factory.mktemp("dtn")
  encoder = tiny_encoder
  config_file = _config_file(str(root), f"""
      from tests.test_dtn import _dtn_config
      def get_config():
        return _dtn_config({{"encoder": {encoder!r}, "judge": {encoder!r}}},
                           total_steps={_DTN_STEPS}, checkpoint_every=4, log_every=4,
                           eval_every=0, sample_every=1000)
  """)
  env = _env(xla_cache, JAX_DEFAULT_PRNG_IMPL=_FAST_PRNG)
  reference = Launch(config_file, str(root / "reference"), env)
  assert reference.finish() == 0, reference.output[-3000:]
  return {"config": config_file, "env": env, "reference": reference.workdir}


@pytest.mark.slow
def test_dtn_survives_kill9_during_a_checkpoint_write(dtn_setup, tmp_path):
  rng = random.Random(SEED + 1)
  workdir = str(tmp_path / "run")
  run = Launch(dtn_setup["config"], workdir, dtn_setup["env"])
  torn = _kill_during_checkpoint_write(run, rng)
  complete = _complete(workdir)
  assert complete and complete[-1] < _DTN_STEPS

  run = Launch(dtn_setup["config"], workdir, dtn_setup["env"])
  assert run.finish() == 0, run.output[-3000:]
  assert _resumed_step(run.output) == complete[-1], (torn, run.output[-2000:])
  print(f"seed {SEED}: DTN kill -9 mid-write (save left torn: {torn}), resumed from "
        f"{complete[-1]}, finished")
  assert not any(n.endswith(TMP_SUFFIX) for n in _names(workdir))  # the torn save is gone
  _assert_same_params(_saved_leaves(dtn_setup["reference"], _DTN_STEPS),
                      _saved_leaves(workdir, _DTN_STEPS), "DTN state after kill -9")
  _assert_same_metrics(dtn_setup["reference"], workdir)


# ------------------------------------------------------------------------ in-process faults


@pytest.fixture(scope="module")
def nine_steps(tmp_path_factory, xla_cache):
  """A finished 9-step tiny GAN run (checkpoints 3, 6, 9): copied by the tests, and the
  uninterrupted reference for runs that reach step 9."""
  workdir = str(tmp_path_factory.mktemp("nine") / "run")
  result = train.run(tiny_gan_config(total_steps=9), workdir, progress=False)
  assert _complete(workdir) == [3, 6, 9]
  return {"workdir": workdir, "leaves": _state_leaves(result)}


def _copy_run(nine_steps, tmp_path) -> str:
  workdir = str(tmp_path / "run")
  shutil.copytree(nine_steps["workdir"], workdir)
  return workdir


def test_damaged_checkpoints_fall_back_to_the_last_good_one(nine_steps, tmp_path, capsys):
  workdir = _copy_run(nine_steps, tmp_path)
  ckpt = os.path.join(workdir, "checkpoints")
  for root, _, files in os.walk(os.path.join(ckpt, "9", "state")):  # truncated array files
    for name in files:
      if os.path.basename(root) == "d":
        os.truncate(os.path.join(root, name), os.path.getsize(os.path.join(root, name)) // 2)
  with open(os.path.join(ckpt, "6", "state", "_METADATA"), "wb") as f:  # garbage metadata
    f.write(np.random.default_rng(SEED).bytes(200))

  result = train.run(tiny_gan_config(total_steps=9), workdir, progress=False)
  out = capsys.readouterr().out
  assert "The checkpoint at step 9 could not be read" in out
  assert "The checkpoint at step 6 could not be read" in out
  assert "Resuming from the checkpoint at step 3" in out
  assert result.resumed_from == 3 and result.step == 9
  assert sorted(n.split("-")[0] for n in os.listdir(os.path.join(workdir, "checkpoints_damaged"))
                ) == ["6", "9"]  # moved aside, kept for a post-mortem
  assert _complete(workdir) == [3, 6, 9]  # rewritten
  _assert_same_params(nine_steps["leaves"], _state_leaves(result), "after the fallback")
  assert [r["step"] for r in _metric_records(workdir)] == [2, 4, 6, 8, 9]


def test_no_checkpoint_in_a_used_workdir_starts_fresh_and_says_so(tmp_path, capsys, xla_cache):
  workdir = tmp_path / "run"
  (workdir / "checkpoints" / f"3{TMP_SUFFIX}").mkdir(parents=True)  # a save killed mid-write
  (workdir / "samples").mkdir()
  (workdir / "metrics.jsonl").write_text('{"step": 3, "d_loss": 1.0}\n{"step": 4, "d_l')
  result = train.run(tiny_gan_config(total_steps=2, log_every=1), str(workdir), progress=False)
  out = capsys.readouterr().out
  assert f"No checkpoint in {workdir / 'checkpoints'}: training from step 0" in out
  assert "metrics.jsonl" in out and "samples" in out
  assert result.resumed_from is None and result.step == 2
  assert [r["step"] for r in _metric_records(str(workdir))] == [1, 2]
  assert not any(n.endswith(TMP_SUFFIX) for n in _names(str(workdir)))  # cleaned up


@pytest.mark.parametrize("change,named", [
    ({"model.generator.hidden": (64, 32)}, ["model.generator.hidden: [32, 32] -> [64, 32]",
                                            "g_params/dense0/kernel is (8, 32) float32 in the "
                                            "checkpoint, (8, 64) float32 now"]),
    ({"batch_size": 16}, ["batch_size: 8 -> 16", "splits over devices and processes"]),
    ({"data.synthetic_shape": (4, 4, 1)}, ["data.synthetic_shape: [8, 8, 1] -> [4, 4, 1]"]),
])
def test_breaking_config_change_is_refused_before_any_step(nine_steps, tmp_path, monkeypatch,
                                                           change, named):
  workdir = _copy_run(nine_steps, tmp_path)
  before = sorted(os.listdir(workdir)), _metric_records(workdir)
  monkeypatch.setattr(train.preemption, "StopSignals", None)  # the loop must not be reached
  with pytest.raises(resume.ResumeConfigError) as e:
    train.run(tiny_gan_config(total_steps=12, **change), workdir, progress=False)
  message = str(e.value)
  assert "Cannot resume from the checkpoint at step 9" in message
  for text in named:
    assert text in message, message
  assert "new --workdir" in message
  assert (sorted(os.listdir(workdir)), _metric_records(workdir)) == before
  assert _complete(workdir) == [3, 6, 9]
  # A ConfigError: launch.py prints it and exits with status 1, without a traceback.
  assert isinstance(e.value, train.config_lib.ConfigError)


def test_safe_config_changes_resume(nine_steps, tmp_path, capsys):
  workdir = _copy_run(nine_steps, tmp_path)
  result = train.run(tiny_gan_config(total_steps=10, log_every=1, checkpoint_every=5,
                                     sample_every=100), workdir, progress=False)
  out = capsys.readouterr().out
  assert result.resumed_from == 9 and result.step == 10 and "The config changed" not in out
  result = train.run(tiny_gan_config(total_steps=11, **{"optim.g_lr": 1e-4}), workdir,
                     progress=False)
  out = capsys.readouterr().out
  assert result.step == 11 and "optim.g_lr: 0.0002 -> 0.0001" in out
  assert "will not equal an uninterrupted run" in out


def _inject_inf_from_step(monkeypatch, step: int, metric: str = "g_loss") -> None:
  """Makes ``metric`` of every step >= ``step`` +Inf: a poisoned loss, test-only."""
  build = tasks.build_task

  def poisoned_build(*args, **kwargs):
    task = build(*args, **kwargs)

    def step_fn(state, batch, key):
      state, metrics = task.step(state, batch, key)
      bad = jnp.where(state.step >= step, jnp.inf, metrics[metric])
      return state, {**metrics, metric: bad}
    return dataclasses.replace(task, step=step_fn)
  monkeypatch.setattr(tasks, "build_task", poisoned_build)


def test_inf_loss_stops_with_step_and_metric_and_nonzero_exit(nine_steps, tmp_path, monkeypatch,
                                                              capsys):
  workdir = _copy_run(nine_steps, tmp_path)
  _inject_inf_from_step(monkeypatch, 11)
  config_file = _config_file(str(tmp_path), """
      from tests.conftest import tiny_gan_config
      def get_config():
        return tiny_gan_config(total_steps=15)
  """)
  code = launch.main(["--config", config_file, "--workdir", workdir, "--no_progress"])
  err = capsys.readouterr().err
  assert code == 1
  assert "Non-finite metric at step 12: g_loss=inf" in err, err
  assert "The last good checkpoint (step 9) is kept" in err
  assert _complete(workdir) == [3, 6, 9]
  _assert_same_params(_saved_leaves(nine_steps["workdir"], 9), _saved_leaves(workdir, 9),
                      "the kept checkpoint")


def test_unwritable_workdir_is_a_clear_error_at_start(tmp_path, capsys, xla_cache):
  blocker = tmp_path / "a_file"
  blocker.write_text("")
  config_file = _config_file(str(tmp_path), """
      from tests.conftest import tiny_gan_config
      def get_config():
        return tiny_gan_config()
  """)
  code = launch.main(["--config", config_file, "--workdir", str(blocker / "run")])
  err = capsys.readouterr().err
  assert code == 1 and f"Cannot write to {blocker / 'run'}" in err and "--workdir" in err, err
  if os.geteuid() != 0:  # root writes through permissions
    readonly = tmp_path / "readonly"
    readonly.mkdir(mode=0o500)
    with pytest.raises(checkpoint.WorkdirError, match="Cannot write to"):
      train.run(tiny_gan_config(), str(readonly), progress=False)


def test_too_little_disk_space_is_a_clear_error_before_any_step(tmp_path, monkeypatch,
                                                                xla_cache):
  usage = shutil.disk_usage(tmp_path)
  monkeypatch.setattr(checkpoint.shutil, "disk_usage",
                      lambda path: usage._replace(free=5 * 2**20))
  monkeypatch.setattr(train.preemption, "StopSignals", None)  # the loop must not be reached
  with pytest.raises(checkpoint.WorkdirError) as e:
    train.run(tiny_gan_config(), str(tmp_path / "run"), progress=False)
  assert "Not enough free disk space" in str(e.value) and "5.0 MiB free" in str(e.value)
  assert "keep_checkpoints" in str(e.value)
  assert _complete(str(tmp_path / "run")) == []


@pytest.fixture
def small_disk(tmp_path):
  """A 40 MiB tmpfs (needs root and mount rights; skipped elsewhere)."""
  mount = tmp_path / "disk"
  mount.mkdir()
  if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs",
                                          str(mount)], capture_output=True).returncode:
    pytest.skip("mounting a small tmpfs needs root")
  yield mount
  subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_filling_up_mid_run_is_a_clear_error(small_disk, monkeypatch, xla_cache):
  """A real full disk: after the checkpoint at step 3 the rest of the disk is taken."""
  save = checkpoint.Checkpointer.save
  calls = []

  def save_then_fill(self, step, *args, **kwargs):
    if calls:  # the second save writes onto a full disk
      self.wait()
      free = shutil.disk_usage(small_disk).free
      with open(small_disk / "filler", "wb") as f:
        f.write(b"\0" * (free - 4096))
    calls.append(step)
    return save(self, step, *args, **kwargs)
  monkeypatch.setattr(checkpoint.Checkpointer, "save", save_then_fill)
  workdir = str(small_disk / "run")
  with pytest.raises(checkpoint.WorkdirError) as e:
    train.run(tiny_gan_config(total_steps=9), workdir, progress=False)
  message = str(e.value)
  assert "filled up during the run" in message, message
  assert "The checkpoint at step 3 is complete and kept" in message
  assert "re-run the same command" in message
  (small_disk / "filler").unlink()
  monkeypatch.setattr(checkpoint.Checkpointer, "save", save)
  result = train.run(tiny_gan_config(total_steps=9), workdir, progress=False)
  assert result.resumed_from == 3 and result.step == 9


def test_ctrl_c_saves_at_the_next_step_boundary_and_the_rerun_continues(nine_steps, tmp_path,
                                                                        monkeypatch):
  put_batch = sharding.put_batch
  calls = []

  def put_batch_then_ctrl_c(batch, mesh):
    calls.append(1)
    if len(calls) == 5:  # during step 5
      os.kill(os.getpid(), signal.SIGINT)
    return put_batch(batch, mesh)
  monkeypatch.setattr(sharding, "put_batch", put_batch_then_ctrl_c)
  workdir = str(tmp_path / "run")
  handler = signal.getsignal(signal.SIGINT)
  with pytest.raises(preemption.TrainingStopped) as e:
    train.run(tiny_gan_config(total_steps=9), workdir, progress=False)
  assert e.value.step == 5 and e.value.signal_name == "SIGINT"
  assert "Stopped by SIGINT after step 5" in str(e.value) and "Re-run" in str(e.value)
  assert _complete(workdir) == [3, 5]  # 5: the extra, complete, checkpoint
  assert signal.getsignal(signal.SIGINT) is handler  # restored

  monkeypatch.setattr(sharding, "put_batch", put_batch)
  result = train.run(tiny_gan_config(total_steps=9), workdir, progress=False)
  assert result.resumed_from == 5 and result.step == 9
  _assert_same_params(nine_steps["leaves"], _state_leaves(result), "after Ctrl-C")


def test_second_ctrl_c_interrupts_at_once():
  with preemption.StopSignals() as stop:
    assert not stop.requested(1)
    os.kill(os.getpid(), signal.SIGINT)
    assert stop.requested(1) and stop.signal_name == "SIGINT"
    with pytest.raises(KeyboardInterrupt):
      os.kill(os.getpid(), signal.SIGINT)
      time.sleep(0.1)  # the handler runs at the next bytecode boundary


# ---------------------------------------------------------------------- hostile image files


def _png_claiming(width: int, height: int) -> bytes:
  """A 1x1 PNG whose header claims width x height (a decompression bomb's header)."""
  buf = io.BytesIO()
  Image.new("RGB", (1, 1)).save(buf, "PNG")
  data = bytearray(buf.getvalue())
  struct.pack_into(">II", data, 16, width, height)
  struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))
  return bytes(data)


def _encoded(image: Image.Image, fmt: str, **kwargs) -> bytes:
  buf = io.BytesIO()
  image.save(buf, fmt, **kwargs)
  return buf.getvalue()


def _palette(size: tuple[int, int], colour: tuple[int, int, int]) -> Image.Image:
  """A one-colour palette ("P") image holding ``colour`` exactly (an adaptive palette)."""
  return Image.new("RGB", size, colour).convert("P", palette=Image.Palette.ADAPTIVE)


_CMYK = [(0, 255, 255, 0), (255, 0, 255, 0), (0, 0, 0, 128), (30, 60, 90, 20)]


@st.composite
def hostile_files(draw):
  """``(kind, file name, bytes, expected RGB colour, tolerance, (width, height))``. The colour
  is None for a file that must be skipped, "either" for one that may decode or be skipped (random
  or truncated data); nothing may crash."""
  kind = draw(st.sampled_from([
      "random_bytes", "zero_size", "text", "huge_dimensions", "png16", "palette_png",
      "cmyk_jpeg", "animated_gif", "png_as_jpg", "jpeg_as_gif", "truncated_png"]))
  colour = tuple(draw(st.integers(0, 255)) for _ in range(3))
  size = (draw(st.integers(1, 40)), draw(st.integers(1, 40)))
  ext = draw(st.sampled_from(folder.IMAGE_EXTENSIONS + (".JPG", ".Png")))
  if kind == "random_bytes":
    magic = draw(st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"\xff\xd8\xff\xe0"]))
    return kind, f"x{ext}", magic + draw(st.binary(max_size=300)), "either", 0, None
  if kind == "zero_size":
    return kind, f"x{ext}", b"", None, 0, None
  if kind == "text":
    return kind, f"x{ext}", b"not an image, just text\n", None, 0, None
  if kind == "huge_dimensions":
    side = draw(st.integers(20_000, 200_000))
    return kind, f"x{ext}", _png_claiming(side, side), None, 0, (side, side)
  if kind == "png16":
    grey = colour[0]
    image = Image.fromarray(np.full(size[::-1], grey * 257, np.uint16))
    return kind, "x.png", _encoded(image, "PNG"), (grey,) * 3, 1, size
  if kind == "palette_png":
    return kind, "x.png", _encoded(_palette(size, colour), "PNG"), colour, 0, size
  if kind == "cmyk_jpeg":
    cmyk = Image.new("CMYK", (16, 16), draw(st.sampled_from(_CMYK)))
    want = cmyk.convert("RGB").getpixel((0, 0))
    return kind, "x.jpg", _encoded(cmyk, "JPEG", quality=95), want, 8, (16, 16)
  if kind == "animated_gif":
    frames = [_palette(size, c) for c in (colour, (255 - colour[0], 0, 0))]
    data = _encoded(frames[0], "GIF", save_all=True, append_images=frames[1:])
    return kind, "x.gif", data, colour, 0, size  # the first frame
  if kind == "png_as_jpg":
    return kind, "x.jpg", _encoded(Image.new("RGB", size, colour), "PNG"), colour, 0, size
  if kind == "jpeg_as_gif":
    jpeg = _encoded(Image.new("RGB", (16, 16), colour), "JPEG", quality=95)
    return kind, "x.gif", jpeg, colour, 8, (16, 16)
  data = _encoded(Image.new("RGB", size, colour), "PNG")  # truncated_png
  return kind, "x.png", data[:draw(st.integers(0, len(data) - 1))], "either", 0, None


class _Records(logging.Handler):
  def __init__(self):
    super().__init__()
    self.messages: list[str] = []

  def emit(self, record):
    self.messages.append(record.getMessage())


@hypothesis.settings(max_examples=25, deadline=None)
@hypothesis.given(case=hostile_files())
def test_hostile_files_in_an_image_folder_are_decoded_or_skipped(case):
  kind, name, data, want, tolerance, _ = case
  records = _Records()
  logging.getLogger("jgan.data").addHandler(records)
  limit = Image.MAX_IMAGE_PIXELS
  try:
    with tempfile.TemporaryDirectory() as tmp:
      root = os.path.join(tmp, "images")
      os.makedirs(root)
      Image.new("RGB", (6, 6), (9, 99, 199)).save(os.path.join(root, "a_good.png"))
      with open(os.path.join(root, name), "wb") as f:
        f.write(data)
      ds = folder.load_image_folder(root, image_size=4, cache_directory=os.path.join(tmp, "c"))
  finally:
    logging.getLogger("jgan.data").removeHandler(records)
  assert Image.MAX_IMAGE_PIXELS == limit  # the decompression-bomb limit is kept
  np.testing.assert_array_equal(ds.images[0], np.broadcast_to(np.uint8([9, 99, 199]), (4, 4, 3)))
  skipped = any("Skipped 1 of 2" in m and name in m for m in records.messages)
  if len(ds) == 1:
    assert want in (None, "either") and skipped, (name, want, records.messages)
  else:
    assert want is not None and not skipped, (name, records.messages)
    if want != "either":
      diff = np.abs(ds.images[1].astype(int) - np.array(want)).max()
      assert diff <= tolerance, (name, ds.images[1][0, 0], want)
  if kind == "huge_dimensions":  # refused from the header, before any pixel is decoded
    assert any("DecompressionBombError" in m for m in records.messages), records.messages


# --------------------------------------------------------------------------- the demo


@pytest.fixture(scope="module")
def translator():
  """The demo's handler around a stand-in run whose g(f(x)) is the grey of x (no training)."""
  task = types.SimpleNamespace(translate=lambda state, x: jnp.mean(x, -1, keepdims=True))
  run = types.SimpleNamespace(task=task, source_shape=(16, 16, 3), image_shape=(16, 16, 1),
                              config=types.SimpleNamespace(), state={}, step=1,
                              workdir="/nonexistent/run", checkpoint_dir="/nonexistent/run/c")
  return demo.AvatarTranslator(run)


@hypothesis.settings(max_examples=25, deadline=None)
@hypothesis.given(case=hostile_files(), as_path=st.booleans())
def test_hostile_uploads_get_a_message_and_write_nothing(translator, case, as_path):
  kind, name, data, want, _, size = case
  with tempfile.TemporaryDirectory() as tmp:
    upload = os.path.join(tmp, "upload", name)  # where Gradio would have put it
    os.makedirs(os.path.dirname(upload))
    with open(upload, "wb") as f:
      f.write(data)
    cwd = os.getcwd()
    os.chdir(tmp)
    try:
      face, avatar, status = translator(upload if as_path else data)
    finally:
      os.chdir(cwd)
    assert sorted(os.listdir(tmp)) == ["upload"] and os.listdir(os.path.dirname(upload)) == [name]
  assert isinstance(status, str) and status
  if status.startswith(demo.READY):
    assert face.dtype == np.uint8 and avatar.dtype == np.uint8
    return
  assert face is None and avatar is None
  if kind == "huge_dimensions":
    assert status.startswith("Image too large"), status
  elif want is None:
    assert status.startswith("Not a readable image"), status
  elif want != "either":  # decoded: the only complaint left is the missing face
    assert status.startswith(f"No face found in the {size[0]}x{size[1]} image"), status


def test_demo_limits_upload_size(translator, tmp_path, monkeypatch):
  monkeypatch.setattr(demo, "MAX_UPLOAD_BYTES", 1000)
  big = _encoded(Image.fromarray(np.random.default_rng(0).integers(
      0, 255, (64, 64, 3), dtype=np.uint8)), "PNG")
  path = tmp_path / "big.png"
  path.write_bytes(big)
  for image in (big, str(path)):
    face, avatar, status = translator(image)
    assert face is None and avatar is None
    assert status.startswith("File too large: ") and "the limit is 0.000954 MB" in status, status
  assert demo.upload_too_large(big[:900], 1000) is None


def test_demo_binds_to_localhost_and_keeps_uploads_in_a_temp_dir(monkeypatch, tmp_path):
  calls = {}

  class FakeApp:
    def queue(self, **kwargs):
      calls["queue"] = kwargs

    def launch(self, **kwargs):
      calls["launch"] = kwargs

  monkeypatch.setattr(demo, "theme", lambda: None)  # no gradio import
  monkeypatch.setattr(demo, "load_model", lambda workdir, **kw: types.SimpleNamespace(
      run=types.SimpleNamespace(workdir=workdir, step=1), compile_seconds=0.0))
  monkeypatch.setattr(demo, "build_blocks", lambda model: FakeApp())
  monkeypatch.delenv("GRADIO_TEMP_DIR", raising=False)
  assert demo.main(["--workdir", str(tmp_path)]) == 0
  assert calls["launch"]["server_name"] == "127.0.0.1" and not calls["launch"]["share"]
  assert calls["launch"]["max_file_size"] == demo.MAX_UPLOAD_BYTES == 100 * 2**20
  uploads = os.environ["GRADIO_TEMP_DIR"]  # set by the demo, before gradio is imported
  assert os.path.commonpath([uploads, tempfile.gettempdir()]) == tempfile.gettempdir()
  monkeypatch.delenv("GRADIO_TEMP_DIR")
  assert demo.main(["--workdir", str(tmp_path), "--host", "0.0.0.0"]) == 0
  assert calls["launch"]["server_name"] == "0.0.0.0"  # only when told


def test_keys_new_since_the_checkpoint_are_listed_apart():
  """A key the checkpoint's config lacks (added to jgan since) is listed as new, without the
  "will not equal" warning and without breaking the resume, even a breaking key's name; a
  changed key still gets the warning."""
  saved = {"batch_size": 8, "optim": {"g_lr": 2e-4}}
  now = {"batch_size": 8, "optim": {"g_lr": 2e-4}, "loss": {"new_term": 0.0}}
  note = resume.check_config(9, "w", saved_config=saved, config=now, saved_shapes={},
                             wanted_shapes={})
  assert "Keys new to jgan since the checkpoint at step 9" in note
  assert "loss.new_term: 0.0" in note and "will not equal" not in note
  note = resume.check_config(9, "w", saved_config=saved,
                             config={**now, "optim": {"g_lr": 1e-4}}, saved_shapes={},
                             wanted_shapes={})
  assert "optim.g_lr: 0.0002 -> 0.0001" in note and "will not equal" in note
  assert "loss.new_term" in note.split("Keys new to jgan")[1]
  assert resume.check_config(9, "w", saved_config=saved, config=saved, saved_shapes={},
                             wanted_shapes={}) is None
