"""Where the PyTorch reference step's time goes: self time per aten op, in jgan's categories.

The torch side of :mod:`jgan.bench.profile`: torch.profiler's self CPU times split PyTorch's
step into the categories (:data:`jgan.bench.profile.CATEGORIES`) jgan's per-thunk split uses,
in the same :class:`jgan.bench.profile.Profile`, so a category's difference is where the gap
lives.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import torch

from jgan.bench import profile

_TORCH_MATMUL = ("convolution", "addmm", "aten::mm", "aten::bmm", "aten::matmul", "linear")
_TORCH_NORM = ("batch_norm", "group_norm", "layer_norm", "aten::sum", "aten::mean", "aten::var",
               "aten::std", "norm")
_TORCH_MOVE = ("copy_", "aten::cat", "pad", "clone", "contiguous", "aten::roll", "aten::index",
               "aten::stack", "aten::fill_", "aten::zero_", "aten::zeros", "aten::empty")


def torch_category(op: str) -> str:
  """The category of an aten op name (self time)."""
  if any(k in op for k in _TORCH_MATMUL):
    return profile.MATMUL
  if any(k in op for k in _TORCH_NORM):
    return profile.NORM
  if any(k in op for k in _TORCH_MOVE):
    return profile.MOVE
  if op.startswith("aten::") or op.startswith("Optimizer"):
    return profile.ELEMENTWISE
  return profile.OTHER


def profile_torch(run: Callable[[], Any], *, steps: int = 3) -> profile.Profile:
  """torch.profiler over ``steps`` calls of ``run``; self CPU time by category and op."""
  with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
    start = time.perf_counter()
    for _ in range(steps):
      run()
    wall = time.perf_counter() - start
  by_category = dict.fromkeys(profile.CATEGORIES, 0.0)
  by_op = []
  for ev in prof.key_averages():
    t = ev.self_cpu_time_total * 1e-6 / steps
    if t <= 0:
      continue
    cat = torch_category(ev.key)
    by_category[cat] += t
    by_op.append((ev.key, cat, "", t))
  by_op.sort(key=lambda r: -r[3])
  return profile.Profile(wall / steps, by_category, {}, by_op)
