"""Where a run's numbers and pictures go: metrics.jsonl, TensorBoard events, PNG grids."""

from __future__ import annotations

import json
import math
import os
import re
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


class MetricWriter:
  """Appends one JSON object per log step to ``metrics.jsonl`` and mirrors it to TensorBoard.

  Only the writing process (process 0 in a multi-host run) passes ``enabled=True``.
  """

  def __init__(self, workdir: str, *, enabled: bool = True):
    self.enabled = enabled
    self.path = os.path.join(workdir, "metrics.jsonl")
    self._tb = None
    if enabled:
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

  def write_image(self, step: int, name: str, image: np.ndarray) -> None:
    """``image``: one [H, W, C] uint8 picture (a sample grid)."""
    if self.enabled:
      self._tb.add_image(name, np.asarray(image), int(step), dataformats="HWC")

  def flush(self) -> None:
    if self._tb is not None:
      self._tb.flush()

  def close(self) -> None:
    if self._tb is not None:
      self._tb.close()
      self._tb = None


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
