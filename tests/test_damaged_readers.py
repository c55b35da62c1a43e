"""The tools that open a trained run (jgan.evaluate, jgan.sample, jgan.translate, the demo) meet
a damaged latest checkpoint as training does: they say so and open the previous good one."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from jgan import demo, runs, sample, train, translate
from jgan import evaluate as evaluate_cli
from tests.conftest import tiny_gan_config


def _truncate_arrays(checkpoint: str) -> None:
  """Cuts every array file of ``checkpoint`` in half (a save killed mid-write, a bad disk)."""
  for root, _, files in os.walk(os.path.join(checkpoint, "state")):
    if os.path.basename(root) == "d":
      for name in files:
        path = os.path.join(root, name)
        os.truncate(path, os.path.getsize(path) // 2)


@pytest.fixture
def damaged_run(tiny_dtn_run, tmp_path):
  """A copy of the tiny DTN run whose latest checkpoint (step 2) cannot be read."""
  workdir = str(tmp_path / "dtn")
  shutil.copytree(tiny_dtn_run["dtn"], workdir)
  _truncate_arrays(os.path.join(workdir, "checkpoints", "2"))
  return workdir


def test_load_run_reports_the_damaged_checkpoint_and_opens_the_previous_one(damaged_run, capsys):
  run = runs.load_run(damaged_run)
  assert run.step == 1
  assert len(run.notes) == 1 and "step 2" in run.notes[0] and "could not be read" in run.notes[0]
  assert run.notes[0] in capsys.readouterr().err
  # Left where it is: a reader must not change a run that may still be training.
  assert sorted(os.listdir(os.path.join(damaged_run, "checkpoints"))) == ["1", "2"]
  with pytest.raises(FileNotFoundError, match="step 2.*cannot be read"):
    runs.load_run(damaged_run, step=2)  # asked for by number: no fallback


def test_no_readable_checkpoint_is_a_clear_error(damaged_run):
  _truncate_arrays(os.path.join(damaged_run, "checkpoints", "1"))
  with pytest.raises(FileNotFoundError, match="step 1 .*cannot be read.*step 2"):
    runs.load_run(damaged_run)


def test_sample_falls_back(tmp_path, capsys):
  workdir = str(tmp_path / "gan")
  train.run(tiny_gan_config(total_steps=2, checkpoint_every=1), workdir, progress=False)
  _truncate_arrays(os.path.join(workdir, "checkpoints", "2"))
  out = tmp_path / "samples"
  assert sample.main(["--workdir", workdir, "--num", "2", "--out", str(out)]) == 0
  assert (out / "grid.png").exists()
  assert "step 2" in capsys.readouterr().err


def test_every_dtn_tool_falls_back(damaged_run, tmp_path, capsys):
  # A DTN draws no samples from noise: a clear error, not a KeyError.
  assert sample.main(["--workdir", damaged_run, "--num", "2", "--out", str(tmp_path / "s")]) == 1
  assert "jgan.translate" in capsys.readouterr().err
  # jgan.translate.
  inputs = tmp_path / "in"
  inputs.mkdir()
  Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(inputs / "a.png")
  assert translate.main(["--workdir", damaged_run, "--input", str(inputs),
                         "--out", str(tmp_path / "out")]) == 0
  assert (tmp_path / "out" / "a.png").exists()
  # jgan.evaluate (the retrieval evaluation needs no other run).
  assert evaluate_cli.main(["--workdir", damaged_run,
                            "--config.eval.metrics=('retrieval',)"]) == 0
  with open(os.path.join(damaged_run, "eval.json")) as f:
    assert json.load(f)["step"] == 1
  # The demo.
  translator = demo.AvatarTranslator.from_workdir(damaged_run)
  assert translator.run.step == 1
