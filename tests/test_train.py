"""The train loop end to end: outputs, exact resume, NaN handling."""

import json
import os

import jax
import numpy as np
import pytest

from jgan import train
from jgan.checkpoint import Checkpointer
from tests.conftest import tiny_gan_config


def _params(result):
  return jax.device_get((result.state.g_params, result.state.d_params,
                         result.state.g_opt_state, result.state.d_opt_state))


def test_run_writes_every_output(tmp_path):
  workdir = str(tmp_path / "run")
  result = train.run(tiny_gan_config(ema_decay=0.99), workdir, progress=False)
  assert result.step == 6 and result.resumed_from is None
  assert result.step_traces == 1  # compiled once for all six steps
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["3", "6"]
  assert sorted(os.listdir(os.path.join(workdir, "samples"))) == [
      "step_0000003.png", "step_0000006.png"]
  assert sorted(os.listdir(os.path.join(workdir, "samples_ema"))) == [
      "step_0000003.png", "step_0000006.png"]
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    records = [json.loads(l) for l in f]
  assert [r["step"] for r in records] == [2, 4, 6]
  for r in records:
    for key in ("d_loss", "g_loss", "d_real", "d_fake", "steps_per_sec"):
      assert np.isfinite(r[key])
  assert any(name.startswith("events.out.tfevents")
             for name in os.listdir(os.path.join(workdir, "tensorboard")))
  assert os.path.getsize(os.path.join(workdir, "loss_curves.png")) > 1000
  with open(os.path.join(workdir, "config.json")) as f:
    assert json.load(f)["total_steps"] == 6


def test_resume_equals_an_uninterrupted_run(tmp_path, capsys):
  straight = train.run(tiny_gan_config(total_steps=8, checkpoint_every=4), str(tmp_path / "a"),
                       progress=False)
  b = str(tmp_path / "b")
  first = train.run(tiny_gan_config(total_steps=4, checkpoint_every=4), b, progress=False)
  assert first.step == 4
  # Raising total_steps continues the finished run from its checkpoint.
  resumed = train.run(tiny_gan_config(total_steps=8, checkpoint_every=4), b, progress=False)
  assert resumed.resumed_from == 4 and resumed.step == 8
  assert "Resuming from the checkpoint at step 4" in capsys.readouterr().out
  for x, y in zip(jax.tree.leaves(_params(straight)), jax.tree.leaves(_params(resumed))):
    np.testing.assert_allclose(x, y, atol=1e-6, rtol=0)
  with open(os.path.join(b, "metrics.jsonl")) as f:
    assert [json.loads(l)["step"] for l in f] == [2, 4, 6, 8]


def test_rerun_of_a_finished_run_trains_nothing(tmp_path, capsys):
  workdir = str(tmp_path / "run")
  train.run(tiny_gan_config(total_steps=3), workdir, progress=False)
  again = train.run(tiny_gan_config(total_steps=3), workdir, progress=False)
  assert again.resumed_from == 3 and again.step == 3
  assert "nothing to train" in capsys.readouterr().out


def test_nan_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
  workdir = str(tmp_path / "run")
  train.run(tiny_gan_config(total_steps=3), workdir, progress=False)
  poisoned = tiny_gan_config(total_steps=9, **{"optim.d_lr": float("nan")})
  with pytest.raises(train.NonFiniteError) as e:
    train.run(poisoned, workdir, progress=False)
  message = str(e.value)
  assert "step 4" in message and ("d_loss" in message or "g_loss" in message)
  assert "step 3" in message  # the checkpoint that is kept
  checkpointer = Checkpointer(os.path.join(workdir, "checkpoints"))
  assert checkpointer.latest_step() == 3
  # The kept checkpoint is finite and loads.
  result = train.run(tiny_gan_config(total_steps=3), workdir, progress=False)
  assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(_params(result)))
