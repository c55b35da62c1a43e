"""Evaluate a trained run: ``python -m jgan.evaluate --workdir W [options]``.

Writes ``W/eval.json`` and prints a table. For a GAN: FID, KID, precision/recall (and IS with
``--metrics ...,is``) of ``--num_samples`` generated images against real images, under the
run's feature network (``eval.feature_network``), every number named with that network; with
``--baselines`` also real-vs-real (``eval.split`` against the other split) and uniform noise,
so the numbers mean something. For a classifier: its test accuracy. For a text-to-image run:
attribute accuracy of images drawn from held-out captions, with the real-image ceiling and the
shuffled-caption baseline (jgan.tasks.t2i), one metric a line.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time

import numpy as np

from jgan import config as config_lib
from jgan import data as data_lib
from jgan import runs
from jgan.evaluation import features, generative
from jgan.tasks import gan as gan_task
from jgan.tasks import t2i as t2i_task


def _baselines(run: runs.Run, network: features.FeatureNetwork, real: dict[str, np.ndarray],
               metrics: tuple[str, ...]) -> dict[str, dict[str, float]]:
  e = run.config.eval
  other = "test" if e.split == "train" else "train"
  other_ds = data_lib.from_config(run.config.data, split=other)
  n = min(e.num_samples, len(other_ds.images))
  other_feats = features.extract(network, features.subset(other_ds.images, n, seed=1),
                                 batch_size=e.batch_size)
  noise = np.random.default_rng(0).integers(0, 256, (e.num_samples, *run.image_shape),
                                            dtype=np.uint8)
  noise_feats = features.extract(network, noise, batch_size=e.batch_size)
  return {
      f"real {e.split} vs real {other} ({n} images)": generative.score(
          real, other_feats, metrics=metrics, network=network.name),
      f"uniform noise ({e.num_samples} images)": generative.score(
          real, noise_feats, metrics=metrics, network=network.name),
  }


def _table(rows: dict[str, dict[str, float]]) -> str:
  names = sorted({k for r in rows.values() for k in r})
  if len({n.split("/")[0] for n in names}) < len(names):  # e.g. attr_acc/<attribute>: a list
    return "\n".join(f"{label}\n" + "\n".join(f"  {n:<36} {r[n]:.4g}" for n in sorted(r))
                     for label, r in rows.items())
  width = max(len(r) for r in rows)
  lines = [" " * width + "  " + "  ".join(f"{n.split('/')[0]:>10}" for n in names)]
  for label, values in rows.items():
    cells = "  ".join(f"{values[n]:>10.4g}" if n in values else " " * 10 for n in names)
    lines.append(f"{label:<{width}}  {cells}")
  networks = sorted({n.split("/", 1)[1] for n in names if "/" in n})
  if networks:
    lines.append(f"(feature network: {', '.join(networks)})")
  return "\n".join(lines)


def evaluate(workdir: str, *, num_samples: int | None = None, metrics: tuple[str, ...] | None = None,
             best: bool = False, baselines: bool = False,
             overrides: list[tuple[str, str]] | None = None) -> dict:
  """Evaluates the run in ``workdir``; returns what it writes to ``eval.json``.

  ``overrides`` are ``(key, value)`` config overrides such as ``("eval.classifier",
  "fashion_mnist_classifier")``: evaluation settings, not the model's.
  """
  config = runs.load_config(workdir)
  if num_samples:
    overrides = [*(overrides or []), ("eval.num_samples", str(num_samples))]
  if metrics:
    if config.task == "t2i":  # the t2i task's own metrics
      bad = sorted(set(metrics) - set(t2i_task.EVAL_METRICS))
      if bad:
        raise ValueError(f"Unknown t2i metric(s) {bad}; allowed: "
                         f"{', '.join(t2i_task.EVAL_METRICS)}.")
    else:
      generative.check_metrics(metrics)
    overrides = [*(overrides or []), ("eval.metrics", repr(tuple(metrics)))]
  config_lib.apply_overrides(config, overrides or [])
  run = runs.load_run(workdir, best=best, config=config, prerequisites=True)
  start = time.perf_counter()
  result = {"workdir": run.workdir, "step": run.step, "checkpoint": run.checkpoint_dir,
            "task": run.config.task}
  if run.config.task == "gan":
    e = run.config.eval
    network = gan_task.eval_network(e, run.prerequisites)
    real = features.real_features(network, data_lib.from_config(run.config.data, split=e.split),
                                  num=e.num_real, batch_size=e.batch_size)
    rows = {f"{run.config.data.name} step {run.step} ({e.num_samples} samples)":
            run.task.evaluate(run.state)}
    if baselines:
      rows.update(_baselines(run, network, real, tuple(e.metrics)))
    result.update(feature_network=network.name, num_samples=e.num_samples,
                  num_real=len(real["features"]), real_split=e.split, rows=rows)
  elif run.task.evaluate is not None:
    rows = {f"{run.config.data.name} step {run.step}": run.task.evaluate(run.state)}
    result["rows"] = rows
  else:
    raise ValueError(f"Task {run.config.task!r} has no evaluation.")
  result["seconds"] = round(time.perf_counter() - start, 2)
  path = os.path.join(run.workdir, "eval.json")
  with open(path + ".tmp", "w") as f:
    json.dump(result, f, indent=2)
  os.replace(path + ".tmp", path)
  print(_table(rows))
  print(f"Wrote {path} ({result['seconds']}s).")
  return result


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m jgan.evaluate", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--workdir", required=True, help="a directory launch.py trained in")
  parser.add_argument("--num_samples", type=int, help="generated images (default: the run's "
                      "eval.num_samples)")
  parser.add_argument("--metrics", help=f"comma-separated, from {','.join(generative.METRICS)} "
                      f"(t2i runs: {','.join(t2i_task.EVAL_METRICS)})")
  parser.add_argument("--best", action="store_true", help="the best checkpoint, not the latest")
  parser.add_argument("--baselines", action="store_true",
                      help="also score real-vs-real and uniform noise")
  parser.epilog = ("Evaluation settings can be overridden like in launch.py, e.g. "
                   "--config.eval.classifier=fashion_mnist_classifier.")
  try:
    rest, overrides = config_lib.split_overrides(sys.argv[1:] if argv is None else argv)
  except config_lib.ConfigError as e:
    parser.error(str(e))
  args = parser.parse_args(rest)
  logging.basicConfig(level=logging.WARNING)
  metrics = tuple(m.strip() for m in args.metrics.split(",")) if args.metrics else None
  try:
    evaluate(args.workdir, num_samples=args.num_samples, metrics=metrics, best=args.best,
             baselines=args.baselines, overrides=overrides)
  except (FileNotFoundError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
