"""Optional Weights & Biases tracking: an offline run (no network, no account) of a tiny GAN."""

import glob
import json
import os
import struct
import sys

import pytest

from jgan import train, writers
from tests.conftest import tiny_gan_config


@pytest.fixture(autouse=True)
def _wandb_env(tmp_path, monkeypatch):
  """Keeps every file wandb writes (settings, cache, artifacts) inside tmp_path."""
  for var, sub in (("WANDB_DIR", "wandb_dir"), ("WANDB_CACHE_DIR", "cache"),
                   ("WANDB_CONFIG_DIR", "config"), ("WANDB_DATA_DIR", "data"),
                   ("WANDB_ARTIFACT_DIR", "artifacts")):
    monkeypatch.setenv(var, str(tmp_path / "wandb_home" / sub))
  monkeypatch.setenv("WANDB_SILENT", "true")
  monkeypatch.delenv("WANDB_MODE", raising=False)  # the config's mode, not the shell's


def _wandb_records(path):
  """The records of a ``.wandb`` file: a header ``:W&B``, then 32 KiB blocks of chunks, each
  with a 7-byte header (crc32, length, type: 1 full, 2 first, 3 middle, 4 last)."""
  from wandb.proto import wandb_internal_pb2
  with open(path, "rb") as f:
    data = f.read()
  assert data[:4] == b":W&B"
  block, pos, chunks = 32768, 7, b""
  while pos + 7 <= len(data):
    left = block - pos % block
    _, length, kind = struct.unpack("<IHB", data[pos:pos + 7]) if left >= 7 else (0, 0, 0)
    if length == 0 and kind == 0:  # the zero padding at the end of a block
      pos += left
      continue
    chunks += data[pos + 7:pos + 7 + length]
    pos += 7 + length
    if kind in (1, 4):
      record = wandb_internal_pb2.Record()
      record.ParseFromString(chunks)
      chunks = b""
      yield record


def _history(path):
  """``{step: {key: value}}`` of every ``run.log`` row in a ``.wandb`` file."""
  rows = {}
  for record in _wandb_records(path):
    if record.WhichOneof("record_type") == "history":
      row = {item.key or "/".join(item.nested_key): json.loads(item.value_json)
             for item in record.history.item}
      rows.setdefault(row.pop("_step"), {}).update(row)
  return rows


def test_offline_run_mirrors_metrics_and_resumes_the_same_run(tmp_path):
  pytest.importorskip("wandb")
  workdir = str(tmp_path / "run")
  train.run(tiny_gan_config(wandb=True), workdir, progress=False)
  with open(os.path.join(workdir, "wandb_id.txt")) as f:
    run_id = f.read().strip()
  assert run_id.startswith("run-")
  (run_dir,) = glob.glob(os.path.join(workdir, "wandb", f"offline-run-*-{run_id}"))
  (wandb_file,) = glob.glob(os.path.join(run_dir, "*.wandb"))
  history = _history(wandb_file)
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    metrics = [json.loads(l) for l in f]
  assert [r["step"] for r in metrics] == [2, 4, 6]
  for r in metrics:  # every scalar of metrics.jsonl, at its step
    for key, value in r.items():
      if key != "step":
        assert history[r["step"]][key] == pytest.approx(value)
  for step in (3, 6):  # the sample grids, as wandb images
    assert history[step]["samples/_type"] == "image-file"
    assert os.path.exists(os.path.join(run_dir, "files", history[step]["samples/path"]))
  (run_record,) = [r.run for r in _wandb_records(wandb_file)
                   if r.WhichOneof("record_type") == "run"]
  assert run_record.run_id == run_id and run_record.display_name == "run"
  config = {item.key: json.loads(item.value_json) for item in run_record.config.update}
  assert config["total_steps"] == 6 and config["wandb"] is True

  # Training on in the same workdir continues the same wandb run (a second offline
  # directory with the same id: `wandb sync` appends it to the first).
  train.run(tiny_gan_config(wandb=True, total_steps=8), workdir, progress=False)
  with open(os.path.join(workdir, "wandb_id.txt")) as f:
    assert f.read().strip() == run_id
  runs = sorted(glob.glob(os.path.join(workdir, "wandb", "offline-run-*")))
  assert len(runs) == 2 and all(r.endswith(run_id) for r in runs)
  (second,) = [r for r in runs if r != run_dir]
  assert sorted(s for s, row in _history(glob.glob(os.path.join(second, "*.wandb"))[0]).items()
                if "d_loss" in row) == [8]
  assert not os.path.exists(os.path.join(os.getcwd(), "wandb"))  # nothing outside tmp_path


def test_bad_mode_is_named(tmp_path):
  with pytest.raises(ValueError, match=r"'ofline'.*offline, online, disabled"):
    train.run(tiny_gan_config(wandb=True, wandb_mode="ofline"), str(tmp_path / "a"),
              progress=False)
  with pytest.raises(ValueError, match=r"'ofline'.*offline, online, disabled"):
    writers.MetricWriter(str(tmp_path / "b"), enabled=False, wandb_config={"mode": "ofline"})
  assert not os.path.exists(tmp_path / "b")


def test_missing_package_says_how_to_install(tmp_path, monkeypatch):
  monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` now raises ImportError
  with pytest.raises(ImportError, match=r"needs the wandb package: pip install wandb \(or drop "
                                        r"--config.wandb\)"):
    writers.MetricWriter(str(tmp_path / "run"), wandb_config={"mode": "offline"})
  assert not os.path.exists(tmp_path / "run" / "tensorboard")  # failed before opening anything
