"""Are a GAN run's precision misses pixel artefacts? Its samples scored as they are and cleaned.

    python benchmarks/precision_probe.py --workdir runs/gan_mnist [--num 5000]

Draws ``--num`` EMA samples (the raw G's when there is no EMA) of the run's best checkpoint and
scores them against ``--num`` real training images under the run's evaluation features
(FID, improved precision/recall with k=3, as the in-run evaluation): as they are, after a 3x3
median filter, and with every value below -0.5 set to the background (-1); the real test
images as they are and median-filtered, for scale. Prints the fraction of images with an
isolated bright pixel (> 0 with all eight neighbours < -0.5), samples and real. For
single-channel data with a black background (MNIST-like).
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np

from jgan import data as data_lib
from jgan import imaging, runs
from jgan.evaluation import features, metrics
from jgan.tasks import gan


def isolated_fraction(x: np.ndarray) -> float:
  """Fraction of images with a bright value (> 0) whose eight neighbours are all < -0.5."""
  x = jnp.asarray(x)[..., 0]
  h, w = x.shape[1:]
  pd = jnp.pad(x, ((0, 0), (1, 1), (1, 1)), constant_values=-1.0)
  nb = jnp.stack([pd[:, 1 + i:1 + i + h, 1 + j:1 + j + w] for i in (-1, 0, 1) for j in (-1, 0, 1)
                  if (i, j) != (0, 0)]).max(0)
  return float(jnp.mean(jnp.sum((x > 0) & (nb < -0.5), axis=(1, 2)) > 0))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--workdir", default="runs/gan_mnist")
  parser.add_argument("--num", type=int, default=5000)
  args = parser.parse_args()
  run = runs.load_run(args.workdir, best=True, prerequisites=True)
  config, state, task = run.config, run.state, run.task
  network = gan.eval_network(config.eval, runs.resolve_prerequisites(config, start=False))
  bs = config.eval.batch_size
  real = features.real_features(network, data_lib.from_config(config.data, split=config.eval.split),
                                num=args.num, batch_size=bs)["features"]
  z = task.sample_inputs(jax.random.key(123), args.num)
  key = "samples_ema" if state.ema_g_params is not None else "samples"
  samples = np.concatenate([np.asarray(task.sample(state, z[i:i + bs])[key])
                            for i in range(0, args.num, bs)])
  test = np.asarray(imaging.to_float(np.asarray(
      data_lib.from_config(config.data, split="test").images)))
  feat = jax.jit(lambda x: network.apply(x)["features"])
  print(f"{args.workdir} step {int(state.step)} ({key}), {args.num} vs {len(real)} real "
        f"{config.eval.split} images, features {network.name}")
  print("| images | FID | precision | recall |\n|---|---|---|---|")
  for name, x in (("samples", samples), ("samples, 3x3 median", imaging.median3x3(jnp.asarray(samples))),
                  ("samples, values < -0.5 set to -1", np.where(samples < -0.5, -1.0, samples)),
                  ("real test", test), ("real test, 3x3 median", imaging.median3x3(jnp.asarray(test)))):
    x = np.asarray(x)
    f = np.concatenate([np.asarray(feat(jnp.asarray(x[i:i + bs]))) for i in range(0, len(x), bs)])
    pr = metrics.precision_recall(real, f, k=3)
    print(f"| {name} | {metrics.fid_from_features(real, f):.2f} | {pr['precision']:.3f} | "
          f"{pr['recall']:.3f} |", flush=True)
  print(f"images with an isolated bright pixel: samples {isolated_fraction(samples):.4f}, "
        f"real test {isolated_fraction(test):.4f}")


if __name__ == "__main__":
  main()
