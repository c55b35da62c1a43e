"""What a GAN experiment's FID / precision / recall say about images that are *almost* real.

    python benchmarks/metric_sensitivity.py [--experiment wgan_gp_avatars] [--config.KEY=VALUE ...]

Scores real test images of the experiment's data, as they are and under small controlled
degradations (a Gaussian blur of sigma 0.5 / 1 px, additive Gaussian pixel noise of std 0.05 /
0.1 on the [-1, 1] scale), against the real training images, under the experiment's own
evaluation features (``eval.feature_network``, e.g. the ``avatars_classifier`` judge): the
same FID and improved precision/recall (k=3) that the experiment's evaluation logs. It tells
what a target such as "precision > 0.3" asks of a generator in that feature space (how close
to pixel-exact), next to the FID the same degradation costs.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np

from jgan import augment, catalog, imaging, runs
from jgan import config as config_lib
from jgan import data as data_lib
from jgan.evaluation import features, metrics
from jgan.tasks import gan

DEGRADATIONS = {
    "none": lambda x, key: x,
    "blur sigma 0.5 px": lambda x, key: augment.gaussian_blur(x, sigma=0.5),
    "blur sigma 1 px": lambda x, key: augment.gaussian_blur(x, sigma=1.0),
    "noise std 0.05": lambda x, key: jnp.clip(x + 0.05 * jax.random.normal(key, x.shape), -1, 1),
    "noise std 0.1": lambda x, key: jnp.clip(x + 0.1 * jax.random.normal(key, x.shape), -1, 1),
}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--experiment", default="wgan_gp_avatars")
  parser.add_argument("--num_test", type=int, default=1000,
                      help="real test images scored (each degradation of the same ones)")
  args, rest = parser.parse_known_args()
  _, overrides = config_lib.split_overrides(rest)
  config = catalog.load_experiment(args.experiment)
  config_lib.apply_overrides(config, overrides)
  if config.task != "gan":
    raise SystemExit(f"--experiment {args.experiment} is a {config.task!r} experiment; this "
                     "benchmark reads an unconditional GAN's evaluation settings (task 'gan').")
  e = config.eval
  network = gan.eval_network(e, runs.resolve_prerequisites(config, start=False))
  real = features.real_features(network, data_lib.from_config(config.data, split=e.split),
                                num=e.num_real, batch_size=e.batch_size)["features"]
  test = features.subset(np.asarray(data_lib.from_config(config.data, split="test").images),
                         args.num_test, seed=1)
  print(f"{args.experiment}: {len(test)} real test images vs {len(real)} real {e.split} "
        f"images, features {network.name}")
  print("| degradation | FID | precision | recall |\n|---|---|---|---|")
  for i, (name, degrade) in enumerate(DEGRADATIONS.items()):
    key = jax.random.key(i)
    fn = jax.jit(lambda x, k, degrade=degrade: network.apply(
        degrade(imaging.to_float(x), k))["features"])
    fake = np.concatenate([np.asarray(fn(test[s:s + e.batch_size], jax.random.fold_in(key, s)))
                           for s in range(0, len(test), e.batch_size)])
    pr = metrics.precision_recall(real, fake, k=3)
    print(f"| {name} | {metrics.fid_from_features(real, fake):.2f} | {pr['precision']:.3f} | "
          f"{pr['recall']:.3f} |", flush=True)


if __name__ == "__main__":
  main()
