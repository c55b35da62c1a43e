"""jgan vs PyTorch, side by side: every workload's train step, same architecture and batch.

    pip install -e '.[bench]'            # torch (CPU build), the reference's only need
    python -m benchmarks.run [--quick] [--out results.json] [--workloads a,b]

For each workload (jgan.bench.workloads.WORKLOADS) it builds jgan's real step (the one
launch.py compiles, from the experiment's config) and the PyTorch reference of the same step
(benchmarks/torch_ref/, started from the same weights; tests/test_bench_torch_*.py prove
the two compute the same thing), warms both up, then alternates timed repetitions and
prints: images/s of each, the throughput ratio jgan/torch (median and range over the
repetition pairs), jgan's compile time and retraces, the step's FLOPs (XLA's cost analysis)
and the achieved FLOP/s as a fraction of a 4096x4096 float32 matmul measured in the same run,
and the ceiling: the jgan/torch ratio jgan would reach running the step's FLOPs at that peak
(1 / torch's peak fraction), the practical limit on this machine.
Without --quick, a torch.compile column (the networks compiled, the step eager) where
torch.compile works on this CPU.

Then (--loop) the whole launch.py loop (data, logging, sample grids, checkpoints at the
experiment's cadence) against the bare step timed before and after its runs (up to 3 alternated
repetitions; the overhead is taken per repetition and printed with its range), and the input
pipeline's batches/s against the step's steps/s.

--quick: 3 repetitions of 3 steps, no torch.compile. --tiny: tiny widths and batches, no loop
check (the smoke test; the numbers mean nothing).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time

import jax
import numpy as np
import torch

from jgan.bench import loop, timing, workloads

try:
  from benchmarks.torch_ref import torch_steps
except ModuleNotFoundError as e:
  if e.name != "benchmarks":
    raise
  raise SystemExit("Run it from the repository root as a module: python -m benchmarks.run "
                   "(the PyTorch references are the package benchmarks.torch_ref).") from None

# The loop check: experiment -> (short, long) run lengths. long - short spans the experiment's
# own cadence (gan_mnist: 20 logs, 2 sample grids, 1 checkpoint per 2,000 steps).
LOOP_RUNS = {"gan_mnist": (100, 2100), "dcgan_fashion_mnist32": (100, 1100)}


def _fmt(x, spec=".0f"):
  return "-" if x is None or (isinstance(x, float) and not np.isfinite(x)) else format(x, spec)


def bench_one(workload, *, tiny: bool, repetitions: int, steps: int, torch_compile: bool,
              peak: float, compute_dtype: str = "float32") -> dict:
  """One workload: both steps built, warmed up and timed alternately; one JSON row.

  ``compute_dtype`` applies to jgan only (its activations; params stay float32): the
  reference always runs float32.
  """
  extra = {"compute_dtype": compute_dtype} if compute_dtype != "float32" else None
  jg = workloads.build_jgan(workload, tiny=tiny, extra=extra)
  batch_np = jax.device_get(jg.batch)
  torch_config = workloads.config_for(workload, tiny=tiny)
  runners = {"jgan": jg.run,
             "torch": torch_steps.build_torch(torch_config, jg.initial_state, batch_np)}
  runners["torch"]()  # warm-up
  compile_note = ""
  if torch_compile:
    try:
      compiled = torch_steps.build_torch(torch_config, jg.initial_state, batch_np,
                                         compile_models=True)
      start = time.perf_counter()
      compiled()
      compiled()  # the second call may still recompile (batch-norm mode changes)
      compile_note = f"torch.compile warm-up {time.perf_counter() - start:.0f} s"
      runners["torch_compile"] = compiled
    except Exception as e:  # pylint: disable=broad-except  (reported, not fatal)
      compile_note = f"torch.compile failed: {type(e).__name__}: {str(e).splitlines()[0][:120]}"
  times = timing.alternate(runners, repetitions=repetitions, steps=steps)
  n = jg.images_per_step
  t_jgan, t_torch = float(np.median(times["jgan"])), float(np.median(times["torch"]))
  ratio, lo, hi = timing.ratio_spread(times["jgan"], times["torch"])
  row = {
      "workload": workload.name, "describe": workload.describe,
      "jgan_compute_dtype": compute_dtype,
      "batch": int(jg.config.batch_size), "images_per_step": n,
      "jgan_img_s": n / t_jgan, "torch_img_s": n / t_torch,
      "ratio": ratio, "ratio_min": lo, "ratio_max": hi,
      "jgan_step_ms": 1e3 * t_jgan, "torch_step_ms": 1e3 * t_torch,
      "compile_s": jg.compile_s, "retraces": jg.traces[0] - 1,
      "gflop_per_step": jg.flops / 1e9,
      "peak_fraction": jg.flops / t_jgan / peak,
      "torch_peak_fraction": jg.flops / t_torch / peak,
      "torch_compile_img_s": None, "torch_compile_note": compile_note,
  }
  if "torch_compile" in times:
    row["torch_compile_img_s"] = n / float(np.median(times["torch_compile"]))
  return row


def bench_loop(experiment: str, *, short: int, long: int, repetitions: int) -> dict:
  """launch.py's loop and the input pipeline against the bare step, for one experiment.

  The bare step is timed before and after each repetition's loop runs (alternated), and the
  overhead is taken per repetition.
  """
  w = workloads.Workload(experiment, experiment, {}, {}, experiment)
  jg = workloads.build_jgan(w)

  def bare_step_s() -> float:
    return float(np.median(timing.alternate({"jgan": jg.run}, repetitions=5, steps=20)["jgan"]))

  config = workloads.config_for(w)
  result = loop.loop_overhead(config, short=short, long=long, repetitions=repetitions,
                              bare_step_s=bare_step_s)
  rate = loop.pipeline_rate(config, batches=200, examples_per_step=config.batch_size)
  return {"experiment": experiment, "batch": int(config.batch_size),
          "bare_step_s": result["bare_step_s"], "loop_step_s": result["loop_step_s"],
          "steps": result["steps"], "repetitions": repetitions,
          "loop_overhead": result["overhead"], "loop_overhead_range": result["overhead_range"],
          "loop_overheads": result["overheads"],
          "pipeline_batches_s": rate, "bare_steps_s": 1 / result["bare_step_s"]}


def print_table(rows: list[dict], file=sys.stdout) -> None:
  head = ("| workload | batch | jgan img/s | torch img/s | jgan/torch (range) | torch.compile "
          "img/s | jgan compile s | GFLOP/step | peak fraction jgan / torch | ceiling |")
  print(head, file=file)
  print("|" + "---|" * 10, file=file)
  for r in rows:
    print(f"| {r['workload']} | {r['batch']} | {_fmt(r['jgan_img_s'])} | "
          f"{_fmt(r['torch_img_s'])} | {r['ratio']:.2f}x ({r['ratio_min']:.2f}-"
          f"{r['ratio_max']:.2f}) | {_fmt(r['torch_compile_img_s'])} | {r['compile_s']:.1f} | "
          f"{r['gflop_per_step']:.2f} | {r['peak_fraction']:.2f} / "
          f"{r['torch_peak_fraction']:.2f} | {1 / r['torch_peak_fraction']:.2f}x |", file=file,
          flush=True)


def main(argv: list[str] | None = None) -> list[dict]:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--quick", action="store_true", help="3 repetitions of 3 steps, no "
                      "torch.compile column")
  parser.add_argument("--tiny", action="store_true", help="tiny models (smoke test)")
  parser.add_argument("--workloads", default=",".join(workloads.WORKLOADS),
                      help=f"comma-separated, from: {', '.join(workloads.WORKLOADS)}")
  parser.add_argument("--repetitions", type=int)
  parser.add_argument("--steps", type=int, help="steps per timed repetition")
  parser.add_argument("--compute_dtype", default="float32", choices=("float32", "bfloat16"),
                      help="jgan's activation dtype (params and losses stay float32); the "
                      "PyTorch reference stays float32. GAN workloads only.")
  parser.add_argument("--loop", default="gan_mnist" ,
                      help="experiments whose launch.py loop and input pipeline are timed "
                      f"against the bare step (comma-separated, from {', '.join(LOOP_RUNS)}; "
                      "'' for none)")
  parser.add_argument("--out", help="write the rows as JSON here")
  args = parser.parse_args(argv)
  names = [w for w in args.workloads.split(",") if w]
  unknown = [w for w in names if w not in workloads.WORKLOADS]
  if unknown:
    parser.error(f"unknown workload(s) {', '.join(unknown)}; available: "
                 f"{', '.join(workloads.WORKLOADS)}")
  if args.compute_dtype != "float32":
    not_gan = [w for w in names if workloads.config_for(workloads.WORKLOADS[w]).task != "gan"]
    if not_gan:
      parser.error(f"--compute_dtype={args.compute_dtype} applies to the GAN workloads only; "
                   f"leave out {', '.join(not_gan)}")
  for flag in ("repetitions", "steps"):
    if getattr(args, flag) is not None and getattr(args, flag) < 1:
      parser.error(f"--{flag}={getattr(args, flag)}: must be at least 1")
  quick = args.quick or args.tiny
  repetitions = args.repetitions or (3 if quick else 7)
  steps = args.steps or (3 if quick else 5)
  print(f"jax {jax.__version__} ({jax.devices()[0].platform}, {jax.device_count()} device(s)), "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"{platform.processor() or platform.machine()}; {repetitions} repetitions x {steps} "
        "steps, alternated", flush=True)
  peak_n = 1024 if args.tiny else 4096  # the smoke test needs no real peak (saves ~9 s)
  peak_before = timing.matmul_peak(n=peak_n)
  rows = []
  for name in names:
    rows.append(bench_one(workloads.WORKLOADS[name], tiny=args.tiny, repetitions=repetitions,
                          steps=steps, torch_compile=not quick, peak=peak_before,
                          compute_dtype=args.compute_dtype))
    print(f"  {name}: jgan {rows[-1]['jgan_step_ms']:.1f} ms/step, torch "
          f"{rows[-1]['torch_step_ms']:.1f} ms/step  {rows[-1]['torch_compile_note']}",
          file=sys.stderr, flush=True)
  peak_after = timing.matmul_peak(n=peak_n)
  # The peak drifts with the machine's load: the fractions use the mean of both readings.
  peak = (peak_before + peak_after) / 2
  for r in rows:
    for k in ("peak_fraction", "torch_peak_fraction"):
      r[k] *= peak_before / peak
    r["ceiling_ratio"] = 1 / r["torch_peak_fraction"]  # jgan/torch at the matmul peak
  print(f"fp32 matmul peak (jax, {peak_n}^2): {peak_before / 1e9:.0f} GFLOP/s before, "
        f"{peak_after / 1e9:.0f} after")
  print_table(rows)
  loops = []
  for experiment in [e for e in args.loop.split(",") if e] if not args.tiny else []:
    if experiment not in LOOP_RUNS:
      parser.error(f"--loop: unknown {experiment!r}; available: {', '.join(LOOP_RUNS)}")
    short, long = LOOP_RUNS[experiment]
    loops.append(bench_loop(experiment, short=short, long=long,
                            repetitions=min(repetitions, 3)))
    r = loops[-1]
    print(f"launch.py loop, {experiment} (batch {r['batch']}, {r['steps']} steps at the "
          f"experiment's cadence, evaluation off): {1e3 * r['loop_step_s']:.1f} ms/step vs the "
          f"bare step {1e3 * r['bare_step_s']:.1f} ms: overhead {100 * r['loop_overhead']:+.1f}% "
          f"(range {100 * r['loop_overhead_range'][0]:+.1f}% to "
          f"{100 * r['loop_overhead_range'][1]:+.1f}%, {r['repetitions']} alternated repetitions); "
          f"input pipeline {r['pipeline_batches_s']:.0f} batches/s vs "
          f"{r['bare_steps_s']:.0f} steps/s", flush=True)
  if args.out:
    with open(args.out, "w") as f:
      json.dump({"date": time.strftime("%Y-%m-%d"), "machine": platform.processor(),
                 "matmul_peak_gflop_s": peak / 1e9, "rows": rows, "loop": loops}, f, indent=1)
  return rows


if __name__ == "__main__":
  main()
