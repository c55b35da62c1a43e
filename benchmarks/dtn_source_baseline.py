"""How well does the target-domain judge read *untranslated* source images? (DTN's floor.)

    python benchmarks/dtn_source_baseline.py [--experiment dtn_digits] [--config.KEY=VALUE ...]

Classifies the held-out source images that dtn_digits' evaluation translates (the same seeded
subset), fed to the judge (`eval.classifier`, e.g. mnist_classifier) as they are (RGB -> grey by
channel mean, resized), and prints its accuracy next to the judge's accuracy on its own test
split: transfer accuracy above the first number is what translation adds. When f
(`encoder`) is a classifier run, it also prints f's accuracy on the target test images: how
well the f that L_CONST reads g's outputs with knows the target domain.
"""

from __future__ import annotations

import argparse

import jax
import numpy as np

from jgan import batching, catalog, imaging, runs
from jgan import config as config_lib
from jgan import data as data_lib
from jgan.tasks import dtn


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--experiment", default="dtn_digits")
  args, rest = parser.parse_known_args()
  _, overrides = config_lib.split_overrides(rest)
  config = catalog.load_experiment(args.experiment)
  config_lib.apply_overrides(config, overrides)
  e = config.eval
  resolved = runs.resolve_prerequisites(config)
  judge = resolved["judge"]
  judge, images, labels, _ = dtn.judge_and_data(judge, config)
  classify = jax.jit(lambda x: judge.apply(imaging.to_float(x))["logits"])
  logits = batching.map_in_batches(classify, images, batch_size=e.batch_size)
  raw = float(np.mean(np.argmax(logits, -1) == labels))
  target = data_lib.from_config(config.data, split="test")
  logits = batching.map_in_batches(classify, target.images, batch_size=e.batch_size)
  own = float(np.mean(np.argmax(logits, -1) == target.labels))
  print(f"judge {judge.name}: {raw:.4f} on {len(labels)} untranslated {config.source_data.name} "
        f"test images; {own:.4f} on {len(target.labels)} {config.data.name} test images")
  encoder = resolved.get("encoder")
  if config.encoder.name == "classifier" and encoder is not None:
    f = runs.classifier_network(encoder.workdir)
    f_logits = batching.map_in_batches(jax.jit(lambda x: f.apply(imaging.to_float(x))["logits"]),
                                       target.images, batch_size=e.batch_size)
    print(f"f {f.name}: {float(np.mean(np.argmax(f_logits, -1) == target.labels)):.4f} on "
          f"{len(target.labels)} {config.data.name} test images")


if __name__ == "__main__":
  main()
