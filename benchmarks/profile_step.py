"""Where jgan's step and the PyTorch reference spend their time, side by side.

    python -m benchmarks.profile_step [--workloads dcgan64,dcgan32] [--steps 3] [--top 12]
        [--out profile.json]

For each workload (jgan.bench.workloads): jgan's real compiled step under jax.profiler (one
event per XLA:CPU thunk, classified from the compiled module: matmul/conv, pure data movement,
reductions/normalisation, other elementwise) and the PyTorch reference under torch.profiler
(self time per aten op, same categories). Prints ms/step per category for both, jgan's time
per layer and direction (from the HLO op_name metadata), and the slowest thunks. Profiling
adds overhead to both: compare categories, and use benchmarks/run.py for the ratios.
Needs the bench extra (torch).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import jax

from jgan.bench import profile, workloads

try:
  from benchmarks.torch_ref import torch_profile, torch_steps
except ModuleNotFoundError as e:
  if e.name != "benchmarks":
    raise
  raise SystemExit("Run it from the repository root as a module: python -m benchmarks.profile_step "
                   "(the PyTorch references are the package benchmarks.torch_ref).") from None


def profile_one(workload, *, steps: int, tiny: bool = False) -> dict:
  """Profiles of jgan's step and of the reference on the workload's synthetic batch."""
  jg = workloads.build_jgan(workload, tiny=tiny)
  batch_np = jax.device_get(jg.batch)
  ref = torch_steps.build_torch(workloads.config_for(workload, tiny=tiny), jg.initial_state,
                                batch_np)
  ref()  # warm-up
  jg.run()
  return {"workload": workload.name,
          "jgan": profile.profile_jax(jg.run, jg.compiled.as_text(), steps=steps),
          "torch": torch_profile.profile_torch(ref, steps=steps)}


def print_profile(result: dict, *, top: int, file=sys.stdout) -> None:
  jp, tp = result["jgan"], result["torch"]
  print(f"\n## {result['workload']}: ms per step (profiled; jgan wall {1e3 * jp.step_s:.1f}, "
        f"torch wall {1e3 * tp.step_s:.1f})", file=file)
  print(f"{'category':26s} {'jgan':>9s} {'torch':>9s} {'jgan-torch':>11s}", file=file)
  for c in profile.CATEGORIES:
    j, t = 1e3 * jp.by_category[c], 1e3 * tp.by_category[c]
    print(f"{c:26s} {j:9.1f} {t:9.1f} {j - t:+11.1f}", file=file)
  j, t = 1e3 * sum(jp.by_category.values()), 1e3 * sum(tp.by_category.values())
  print(f"{'total (profiled ops)':26s} {j:9.1f} {t:9.1f} {j - t:+11.1f}", file=file)
  print(f"\njgan by layer (ms: {', '.join(profile.CATEGORIES)})", file=file)
  rows = sorted(jp.by_layer.items(), key=lambda kv: -sum(kv[1].values()))
  for (layer, direction), cats in rows[:top]:
    parts = " ".join(f"{1e3 * cats[c]:7.1f}" for c in profile.CATEGORIES)
    print(f"  {layer[:40]:40s} {direction} {1e3 * sum(cats.values()):7.1f} = {parts}", file=file)
  print("\njgan slowest thunks", file=file)
  for name, cat, layer, t in jp.by_op[:top]:
    print(f"  {1e3 * t:7.2f} ms  {name[:32]:32s} {cat:24s} {layer}", file=file)
  print("torch slowest ops (self time)", file=file)
  for name, cat, _, t in tp.by_op[:top]:
    print(f"  {1e3 * t:7.2f} ms  {name[:40]:40s} {cat}", file=file)


def to_json(result: dict) -> dict:
  out = {"workload": result["workload"]}
  for side in ("jgan", "torch"):
    p = result[side]
    out[side] = {"step_ms": 1e3 * p.step_s,
                 "ms_by_category": {c: 1e3 * v for c, v in p.by_category.items()},
                 "slowest": [{"name": n, "category": c, "layer": l, "ms": 1e3 * t}
                             for n, c, l, t in p.by_op[:30]]}
    if p.by_layer:
      out[side]["ms_by_layer"] = {f"{l} {d}": {c: 1e3 * v for c, v in cats.items()}
                                  for (l, d), cats in p.by_layer.items()}
  return out


def main(argv: list[str] | None = None) -> list[dict]:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--workloads", default="dcgan64,dcgan32",
                      help=f"comma-separated, from {', '.join(workloads.WORKLOADS)}")
  parser.add_argument("--steps", type=int, default=3, help="profiled steps per side")
  parser.add_argument("--top", type=int, default=12, help="rows of the per-layer/op tables")
  parser.add_argument("--tiny", action="store_true", help="the smoke test's tiny sizes")
  parser.add_argument("--out", help="write the profiles as JSON here")
  args = parser.parse_args(argv)
  names = [n for n in args.workloads.split(",") if n]
  if unknown := [n for n in names if n not in workloads.WORKLOADS]:
    parser.error(f"unknown workload(s) {unknown}; choose from {sorted(workloads.WORKLOADS)}")
  results = []
  for name in names:
    result = profile_one(workloads.WORKLOADS[name], steps=args.steps, tiny=args.tiny)
    print_profile(result, top=args.top)
    results.append(to_json(result))
  if args.out:
    with open(args.out, "w") as f:
      json.dump(results, f, indent=1)
  return results


if __name__ == "__main__":
  main()
