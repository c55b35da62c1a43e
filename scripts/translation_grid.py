"""A grid of a DTN run's translations of source test images, e.g. of held-out styles.

    python scripts/translation_grid.py --workdir runs/dtn_digits --set styles=heldout \
        --num 40 --out docs/images/dtn_digits_heldout_style.png

Each cell is a source image and, to its right, g(f(it)), from the run's last checkpoint (or
``--best``). ``--set KEY=VALUE`` overrides keys of the run's ``source_data`` group (the test
set ``eval.heldout_style`` names, or any other), so the grid shows what the metric measures.
"""

from __future__ import annotations

import argparse
import ast

import jax
import jax.numpy as jnp
import numpy as np

from jgan import batching, imaging, runs
from jgan import config as config_lib
from jgan import data as data_lib


def _value(text: str):
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text  # a bare word: a string


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="override a key of the run's source_data group (repeatable)")
  parser.add_argument("--num", type=int, default=40, help="source images (the first N)")
  parser.add_argument("--ncols", type=int, default=8, help="pairs per row")
  parser.add_argument("--best", action="store_true", help="the best checkpoint, not the last")
  parser.add_argument("--out", required=True, help="the PNG to write")
  args = parser.parse_args(argv)
  overrides = {}
  for item in args.set:
    if "=" not in item:
      parser.error(f"--set takes KEY=VALUE, got {item!r}.")
    key, value = item.split("=", 1)
    overrides[key] = _value(value)
  run = runs.load_run(args.workdir, best=args.best)
  if run.task.translate is None:
    parser.error(f"{args.workdir} holds a {run.config.task!r} run, not a translation (dtn) run.")
  source = data_lib.from_config(config_lib.group_with(run.config.source_data, overrides),
                                split="test")
  images = source.images[:args.num]
  fn = jax.jit(lambda x: run.task.translate(run.state, imaging.to_float(x)))
  fake = batching.map_in_batches(fn, images, batch_size=min(64, len(images)))
  shape = (*fake.shape[1:3], max(fake.shape[3], images.shape[3]))  # sources keep colour
  pairs = jnp.concatenate([imaging.adapt_images(imaging.to_float(images), shape),
                           imaging.adapt_images(fake, shape)], axis=2)
  imaging.save_grid(args.out, np.asarray(pairs), ncols=args.ncols)
  print(f"wrote {args.out}: {len(images)} translations of {source.source}")


if __name__ == "__main__":
  main()
