"""Where a jgan step's time goes: per XLA thunk, in categories shared with the PyTorch side.

jax.profiler records one event per executed XLA:CPU thunk (a fusion, a dot, a copy, a loop),
named after its HLO instruction; the compiled module's text says what each instruction is
(its ops, and the Flax module and direction in its ``op_name`` metadata). The PyTorch
reference's self times per aten op (``benchmarks/torch_ref/torch_profile.py``, outside jgan:
it imports torch) fill the same `Profile` in the same categories. Both sum to (nearly) the
step time, so a category's difference is where the gap lives.
"""

from __future__ import annotations

import collections
import dataclasses
import glob
import gzip
import json
import os
import re
import tempfile
import time
from typing import Any, Callable

import jax

MATMUL, MOVE, NORM, ELEMENTWISE, OTHER = (
    "matmul/conv", "data movement", "reductions/normalisation", "elementwise", "other")
CATEGORIES = (MATMUL, MOVE, NORM, ELEMENTWISE, OTHER)

_MATMUL_OPS = {"dot", "convolution"}
_REDUCE_OPS = {"reduce", "reduce-window", "select-and-scatter"}
# Ops that only move or re-label data (a fusion of only these is a copy in disguise).
_MOVE_OPS = {"slice", "concatenate", "pad", "copy", "transpose", "bitcast", "reshape",
             "broadcast", "reverse", "dynamic-slice", "dynamic-update-slice", "gather",
             "parameter", "constant", "tuple", "get-tuple-element", "iota", "copy-start",
             "copy-done"}
_CONTROL_OPS = {"while", "conditional", "call"}

# "%name = <type> opcode(" ; the type may be a tuple, so take the first word followed by "(".
_INSTR = re.compile(r"^\s*(?:ROOT\s+)?%([\w.\-]+)\s*=\s*.*?\b([a-z][a-z0-9\-]*)\(")
_COMP = re.compile(r"^(?:ENTRY\s+)?%([\w.\-]+)\s*\(")
_CALLS = re.compile(r"calls=%([\w.\-]+)")
_OP_NAME = re.compile(r'op_name="([^"]*)"')


@dataclasses.dataclass(frozen=True)
class HloOp:
  """One HLO instruction of a compiled module: what it does and which layer it belongs to."""
  name: str
  opcode: str
  category: str
  layer: str  # e.g. "DCGANGenerator/up3", "" outside Flax modules
  backward: bool  # computed for a gradient (a transpose(...) in its op_name)


def _layer(op_name: str) -> tuple[str, bool]:
  """``jit(step)/transpose(jvp(DCGANGenerator))/up3/dot_general`` -> ("DCGANGenerator/up3", True).

  The layer path starts at the first Flax module (a capitalised class name); "" if none.
  """
  parts = []
  for part in op_name.split("/")[1:-1]:  # drop jit(step) and the primitive
    inner = re.sub(r"^(?:\w+\()+", "", part).rstrip(")")  # unwrap jvp(...), transpose(...)
    if not re.fullmatch(r"[A-Za-z_]\w*", inner):
      continue
    if parts or inner[0].isupper():
      parts.append(inner)
  return "/".join(parts), "transpose(" in op_name


def classify_hlo(text: str) -> dict[str, HloOp]:
  """Every instruction of a compiled module's text (``compiled.as_text()``), by name."""
  comps: dict[str, list[str]] = collections.defaultdict(list)  # computation -> opcodes
  instrs = []
  current = None
  for line in text.splitlines():
    if m := _COMP.match(line):
      current = m.group(1)
      continue
    if m := _INSTR.match(line):
      name, opcode = m.groups()
      comps[current].append(opcode)
      calls = _CALLS.search(line)
      op_name = _OP_NAME.search(line)
      instrs.append((name, opcode, calls.group(1) if calls else None,
                     op_name.group(1) if op_name else ""))

  def category(opcode: str, called: str | None) -> str:
    ops = set(comps.get(called, ())) if opcode == "fusion" else {opcode}
    if ops & _MATMUL_OPS:
      return MATMUL
    if ops & _REDUCE_OPS:
      return NORM
    if ops & _CONTROL_OPS:
      return OTHER
    if ops <= _MOVE_OPS:
      return MOVE
    return ELEMENTWISE

  out = {}
  for name, opcode, called, op_name in instrs:
    layer, backward = _layer(op_name)
    out[name] = HloOp(name, opcode, category(opcode, called), layer, backward)
  return out


def thunk_times(trace_dir: str) -> tuple[dict[str, float], float]:
  """(total seconds per thunk name, total seconds in ThunkExecutor::Execute) of a trace."""
  files = glob.glob(os.path.join(trace_dir, "plugins", "profile", "*", "*.trace.json.gz"))
  if not files:
    raise FileNotFoundError(f"No jax.profiler trace (*.trace.json.gz) under {trace_dir}.")
  with gzip.open(sorted(files)[-1]) as f:
    events = [e for e in json.load(f)["traceEvents"] if e.get("ph") == "X"]
  times: dict[str, float] = collections.Counter()
  executor = 0.0
  for e in events:
    if e["name"] == "ThunkExecutor::Execute":
      executor += e["dur"] * 1e-6
    else:
      times[e["name"]] += e["dur"] * 1e-6
  return dict(times), executor


@dataclasses.dataclass
class Profile:
  """Seconds per step by category, by (layer, direction), and per instruction."""
  step_s: float  # wall time per traced step
  by_category: dict[str, float]
  by_layer: dict[tuple[str, str], dict[str, float]]  # (layer, "fwd"/"bwd") -> category -> s
  by_op: list[tuple[str, str, str, float]]  # (name, category, layer, s), slowest first


def profile_jax(run: Callable[[], Any], compiled_text: str, *, steps: int = 3) -> Profile:
  """Traces ``steps`` calls of ``run`` (a compiled step, warmed up) and splits their time.

  Only thunks named after an instruction of ``compiled_text`` count: the trace's runtime
  events (Python, dispatch, thread-pool bookkeeping) are the rest of ``step_s``.
  """
  ops = classify_hlo(compiled_text)
  with tempfile.TemporaryDirectory() as tmp:
    jax.profiler.start_trace(tmp)
    start = time.perf_counter()
    for _ in range(steps):
      jax.block_until_ready(run())
    wall = time.perf_counter() - start
    jax.profiler.stop_trace()
    times, _ = thunk_times(tmp)
  by_category = dict.fromkeys(CATEGORIES, 0.0)
  by_layer: dict = collections.defaultdict(lambda: dict.fromkeys(CATEGORIES, 0.0))
  by_op = []
  for name, t in times.items():
    op = ops.get(name)
    if op is None:
      continue
    t /= steps
    by_category[op.category] += t
    by_layer[(op.layer or "(outside modules)", "bwd" if op.backward else "fwd")][op.category] += t
    by_op.append((name, op.category, op.layer, t))
  by_op.sort(key=lambda r: -r[3])
  return Profile(wall / steps, by_category, dict(by_layer), by_op)
