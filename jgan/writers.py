"""Where a run's numbers and pictures go: metrics.jsonl, TensorBoard events, PNG grids, and
optionally Weights & Biases (``config.wandb``)."""

from __future__ import annotations

import json
import math
import os
import re
import secrets
from typing import Any, Mapping

import numpy as np


def _jsonable(value: Any) -> Any:
  value = float(np.asarray(value))
  return value if math.isfinite(value) else str(value)  # JSON has no NaN/Inf


def tensorboard_tag(name: str) -> str:
  """``name`` with the characters TensorBoard rejects replaced by ``_`` (as tensorboardX
  would, but without its log line per call): ``eval/fid/classifier:mnist:features`` ->
  ``eval/fid/classifier_mnist_features``."""
  return re.sub(r"[^-/\w.]", "_", name)


WANDB_MODES = ("offline", "online", "disabled")
WANDB_MISSING = ("config.wandb=True needs the wandb package: pip install wandb "
                 "(or drop --config.wandb)")


def check_wandb_mode(mode: str) -> None:
  if mode not in WANDB_MODES:
    raise ValueError(f"wandb mode {mode!r} is not one of {', '.join(WANDB_MODES)} "
                     "(set --config.wandb_mode).")


def wandb_run_id(workdir: str) -> str:
  """The wandb run id of ``workdir``, kept in ``workdir/wandb_id.txt`` so that a resumed run
  continues the same wandb run. A new one is the workdir's name plus a random suffix (a
  workdir deleted and trained afresh must not append to the old run's history)."""
  path = os.path.join(workdir, "wandb_id.txt")
  if os.path.exists(path):
    with open(path) as f:
      run_id = f.read().strip()
    if run_id:
      return run_id
  slug = re.sub(r"[^a-z0-9_-]+", "-", os.path.basename(os.path.abspath(workdir)).lower())
  run_id = f"{slug.strip('-')[:40] or 'run'}-{secrets.token_hex(4)}"
  with open(path, "w") as f:
    f.write(run_id + "\n")
  return run_id


class WandbMirror:
  """Mirrors scalars and images to a Weights & Biases run (optional: ``pip install wandb``).

  ``mode="offline"`` needs no network and writes ``workdir/wandb/offline-run-*``; upload it
  later with ``wandb sync WORKDIR/wandb/offline-run-*``.
  """

  def __init__(self, workdir: str, *, project: str = "jgan", mode: str = "offline",
               name: str | None = None, config: Mapping[str, Any] | None = None,
               id: str | None = None):  # pylint: disable=redefined-builtin
    check_wandb_mode(mode)
    try:
      import wandb  # imported lazily: optional, and slow to import
    except ImportError as e:
      raise ImportError(WANDB_MISSING) from e
    self._wandb = wandb
    os.makedirs(workdir, exist_ok=True)
    self.run = wandb.init(project=project, dir=workdir, mode=mode,
                          name=name or os.path.basename(os.path.abspath(workdir)),
                          id=id or wandb_run_id(workdir), resume="allow",
                          config=dict(config or {}))

  def log_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
    self.run.log({k: float(np.asarray(v)) for k, v in scalars.items()}, step=int(step))

  def log_image(self, step: int, name: str, image: np.ndarray) -> None:
    self.run.log({name: self._wandb.Image(np.asarray(image))}, step=int(step))

  def close(self) -> None:
    self.run.finish()


class MetricWriter:
  """Appends one JSON object per log step to ``metrics.jsonl`` and mirrors it to TensorBoard
  and, given ``wandb_config`` (the keyword arguments of ``WandbMirror``), to wandb.

  Only the writing process (process 0 in a multi-host run) passes ``enabled=True``.
  """

  def __init__(self, workdir: str, *, enabled: bool = True,
               wandb_config: Mapping[str, Any] | None = None):
    self.enabled = enabled
    self.path = os.path.join(workdir, "metrics.jsonl")
    self._tb = None
    self._wandb = None
    if wandb_config is not None:
      check_wandb_mode(wandb_config.get("mode", "offline"))  # on every process
    if enabled:
      if wandb_config is not None:  # first: a missing package fails before anything opens
        self._wandb = WandbMirror(workdir, **wandb_config)
      from tensorboardX import SummaryWriter  # imported lazily: heavy, and not for tests
      os.makedirs(workdir, exist_ok=True)
      self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))

  def truncate_after(self, step: int) -> None:
    """Drops lines logged after ``step``: a resumed run logs those steps again."""
    if not self.enabled or not os.path.exists(self.path):
      return
    with open(self.path) as f:
      lines = [l for l in f if l.strip()]
    kept = []
    for line in lines:
      try:
        if json.loads(line).get("step", 0) <= step:
          kept.append(line)
      except json.JSONDecodeError:
        continue  # a line cut short by a crash
    tmp = self.path + ".tmp"
    with open(tmp, "w") as f:
      f.writelines(kept)
    os.replace(tmp, self.path)

  def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
    if not self.enabled:
      return
    record = {"step": int(step), **{k: _jsonable(v) for k, v in sorted(scalars.items())}}
    with open(self.path, "a") as f:
      f.write(json.dumps(record) + "\n")
    for k, v in scalars.items():
      self._tb.add_scalar(tensorboard_tag(k), float(np.asarray(v)), int(step))
    if self._wandb is not None:
      self._wandb.log_scalars(step, scalars)

  def write_image(self, step: int, name: str, image: np.ndarray) -> None:
    """``image``: one [H, W, C] uint8 picture (a sample grid)."""
    if self.enabled:
      self._tb.add_image(name, np.asarray(image), int(step), dataformats="HWC")
      if self._wandb is not None:
        self._wandb.log_image(step, name, image)

  def flush(self) -> None:
    if self._tb is not None:
      self._tb.flush()

  def close(self) -> None:
    if self._tb is not None:
      self._tb.close()
      self._tb = None
    if self._wandb is not None:
      self._wandb.close()
      self._wandb = None


def read_metrics(path: str) -> list[dict[str, Any]]:
  """The records of a metrics.jsonl file (lines cut short by a crash are skipped)."""
  records = []
  if os.path.exists(path):
    with open(path) as f:
      for line in f:
        try:
          records.append(json.loads(line))
        except json.JSONDecodeError:
          continue
  return records


def plot_metrics(metrics_path: str, out_path: str, *,
                 keys: tuple[str, ...] | None = None) -> bool:
  """Plots metrics over steps to a PNG; False if there was nothing to plot.

  ``keys`` None plots every training metric whose name ends in ``loss``.
  """
  records = read_metrics(metrics_path)
  if keys is None:
    keys = tuple(sorted({k for r in records for k in r
                         if k.endswith("loss") and not k.startswith("eval/")}))
  present = [k for k in keys if any(isinstance(r.get(k), (int, float)) for r in records)]
  if not present:
    return False
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  fig, ax = plt.subplots(figsize=(7, 4))
  for k in present:
    pts = [(r["step"], r[k]) for r in records if isinstance(r.get(k), (int, float))]
    ax.plot([p[0] for p in pts], [p[1] for p in pts], label=k)
  ax.set_xlabel("step")
  ax.set_ylabel("loss")
  ax.legend()
  ax.grid(alpha=0.3)
  fig.tight_layout()
  tmp = out_path + ".tmp.png"
  fig.savefig(tmp, dpi=100)
  plt.close(fig)
  os.replace(tmp, out_path)
  return True
