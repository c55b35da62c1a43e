"""Time the compiled train step of any experiment, with its FLOPs and the machine's peak.

    python benchmarks/step_time.py --experiment gan_mnist [--batch_size 128] [--steps 50]
        [--set model.generator.width=32 --set n_critic=2]

Prints the median step time over several timed blocks (after compiling), the step's FLOPs
from XLA's cost analysis, and the achieved FLOP/s as a fraction of a 4096x4096 fp32 matmul
measured in the same run (the machine's practical peak). Synthetic uint8 batches of the
experiment's image shape are used, so no data is needed. Two-domain experiments (DTN) get a
synthetic source batch too; their encoder f keeps its random initial weights (same cost).
With ``--set encoder.cache=true`` the batch carries f's cached outputs instead (random
descriptors of the right shapes), as a run with the feature cache feeds the step.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from jgan import catalog
from jgan import config as config_lib
from jgan import tasks, train
from jgan.bench import timing, workloads

def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--experiment", default="gan_mnist")
  parser.add_argument("--batch_size", type=int)
  parser.add_argument("--steps", type=int, default=20, help="steps per timed block")
  parser.add_argument("--blocks", type=int, default=5)
  parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="config override, as launch.py's --config.KEY=VALUE (repeatable)")
  args = parser.parse_args()
  config = catalog.load_experiment(args.experiment)
  overrides = [tuple(kv.split("=", 1)) for kv in args.set]
  if bad := [kv for kv, o in zip(args.set, overrides) if len(o) != 2]:
    parser.error(f"--set takes KEY=VALUE, got {bad}")
  if args.batch_size:
    overrides.append(("batch_size", str(args.batch_size)))
  config_lib.apply_overrides(config, overrides)
  shape = workloads.image_shape(config.data)
  source_shape = (workloads.image_shape(config.source_data) if "source_data" in config
                  else None)
  task = tasks.build_task(config, image_shape=shape, num_classes=10, source_shape=source_shape)
  batch = workloads.synthetic_batch(config, task)
  state = task.init(jax.random.key(0))
  step = jax.jit(task.step, donate_argnums=train.state_donation())
  start = time.perf_counter()
  compiled = step.lower(state, batch, jax.random.key(1)).compile()
  compile_s = time.perf_counter() - start
  flops = timing.compiled_flops(compiled)
  state, _ = step(state, batch, jax.random.key(1))
  jax.block_until_ready(state)
  times = []
  for _ in range(args.blocks):
    start = time.perf_counter()
    for i in range(args.steps):
      state, _ = step(state, batch, jax.random.key(i))
    jax.block_until_ready(state)
    times.append((time.perf_counter() - start) / args.steps)
  peak = timing.matmul_peak()
  t = float(np.median(times))
  print(f"{args.experiment}: batch {config.batch_size} (x{task.examples_per_step // config.batch_size}"
        f" real per step), image {shape}")
  print(f"  step {1000 * t:.1f} ms median (min {1000 * min(times):.1f}), "
        f"{task.examples_per_step / t:.0f} real images/s, compile {compile_s:.1f} s")
  print(f"  {flops / 1e9:.2f} GFLOP/step -> {flops / t / 1e9:.0f} GFLOP/s; matmul peak "
        f"{peak / 1e9:.0f} GFLOP/s; peak_fraction {flops / t / peak:.2f}")


if __name__ == "__main__":
  main()
