"""Export samples of a trained run: ``python -m jgan.sample --workdir W --num N --out DIR``.

Writes ``DIR/sample_00000.png`` ... (and ``DIR/grid.png``) from the latest (or ``--best``)
checkpoint; ``--seed`` picks the latents, so the same seed gives the same images.
"""

from __future__ import annotations

import argparse
import os
import sys

import jax
import numpy as np

from jgan import imaging, runs


def export_samples(workdir: str, *, num: int, out: str, seed: int = 0, best: bool = False,
                   batch_size: int = 250, use_ema: bool = True) -> list[str]:
  """Writes ``num`` samples as PNGs under ``out``; returns their paths."""
  if num < 1:
    raise ValueError(f"--num must be >= 1, got {num}.")
  run = runs.load_run(workdir, best=best)
  sample = jax.jit(run.task.sample)
  images = []
  for start in range(0, num, batch_size):
    inputs = run.task.sample_inputs(jax.random.fold_in(jax.random.key(seed), start), batch_size)
    outputs = jax.device_get(sample(run.state, inputs))
    if not outputs:
      raise ValueError(f"The {run.config.task!r} run in {workdir} has no generator to sample.")
    key = "samples_ema" if use_ema and "samples_ema" in outputs else "samples"
    images.append(np.asarray(outputs[key]))
  images = imaging.to_uint8(np.concatenate(images)[:num])
  os.makedirs(out, exist_ok=True)
  paths = []
  for i, image in enumerate(images):
    paths.append(os.path.join(out, f"sample_{i:05d}.png"))
    imaging.save_image(paths[-1], image)
  imaging.save_image(os.path.join(out, "grid.png"), imaging.make_grid(images[:64]))
  return paths


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m jgan.sample", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--num", type=int, default=64)
  parser.add_argument("--out", required=True)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--best", action="store_true")
  parser.add_argument("--no_ema", action="store_true", help="the raw generator, not its EMA")
  args = parser.parse_args(argv)
  try:
    paths = export_samples(args.workdir, num=args.num, out=args.out, seed=args.seed,
                           best=args.best, use_ema=not args.no_ema)
  except (FileNotFoundError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  print(f"Wrote {len(paths)} images and grid.png to {args.out}.")
  return 0


if __name__ == "__main__":
  sys.exit(main())
