"""Train a jgan experiment.

  python launch.py --list
  python launch.py --experiment gan_mnist [--workdir runs/gan_mnist] [--config.KEY=VALUE ...]
  python launch.py --config path/to/my_experiment.py [--config.KEY=VALUE ...]

Re-running the same command resumes from the latest checkpoint in the workdir.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[tuple[str, str]]]:
  parser = argparse.ArgumentParser(
      description="Train a jgan experiment (re-running the same command resumes).",
      epilog="Override any config key with --config.KEY=VALUE (nested: --config.optim.g_lr=1e-4).")
  which = parser.add_mutually_exclusive_group()
  which.add_argument("--experiment", help="a built-in experiment (see --list)")
  which.add_argument("--config", dest="config_file", help="path to an experiment .py file "
                     "that defines get_config()")
  which.add_argument("--list", action="store_true", help="list the built-in experiments")
  parser.add_argument("--workdir", help="checkpoints, samples and metrics (default: "
                      "runs/<experiment>)")
  parser.add_argument("--no_progress", action="store_true", help="no progress bar")
  from jgan.config import ConfigError, split_overrides  # light: no jax import
  try:
    rest, overrides = split_overrides(argv)
  except ConfigError as e:
    parser.error(str(e))
  args = parser.parse_args(rest)
  if not (args.list or args.experiment or args.config_file):
    parser.error("say what to train: --experiment NAME (see --list) or --config FILE.py")
  return args, overrides


def main(argv: list[str] | None = None) -> int:
  args, overrides = parse_args(sys.argv[1:] if argv is None else argv)
  logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s",
                      datefmt="%H:%M:%S")
  # absl and jax's backend probing log at INFO what users need not see (absl resets its own
  # logger's level on import, so filter at the handler).
  quiet = ("absl", "jax._src.xla_bridge")
  for handler in logging.getLogger().handlers:
    handler.addFilter(lambda r: r.name not in quiet or r.levelno >= logging.WARNING)
  from jgan import catalog  # after argument errors; light: no jax
  from jgan import config as config_lib

  try:
    if args.list:
      rows = catalog.describe_experiments()
      width = max(len(name) for name, _ in rows)
      for name, description in rows:
        print(f"{name:<{width}}  {description}")
      return 0
    if args.experiment:
      config, name = catalog.load_experiment(args.experiment), args.experiment
    else:
      config = config_lib.load_config_file(args.config_file)
      name = config_lib.experiment_name_of_file(args.config_file)
    config_lib.apply_overrides(config, overrides)
    config_lib.validate(config)
    from jgan import tasks  # jax: only once the arguments are good
    tasks.check_task_keys(config, args.config_file or args.experiment)
  except config_lib.ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2

  from jgan import checkpoint, data, preemption, runs, train

  workdir = args.workdir or f"runs/{name}"
  try:
    result = runs.train(config, workdir, progress=not args.no_progress)
  except preemption.TrainingStopped as e:
    # Preempted or Ctrl-C: the checkpoint is saved; exit as a signal-killed program would
    # (128 + signal number), so `launch.py && next` does not go on as if training had finished.
    print(str(e), file=sys.stderr)
    return 128 + e.signum
  except (train.NonFiniteError, data.DatasetNotFoundError, config_lib.ConfigError,
          checkpoint.WorkdirError, FileNotFoundError, ValueError) as e:
    # Bad input (a model name, a shape, a missing file...): the message says what to change.
    if os.environ.get("JGAN_DEBUG"):
      raise
    print(f"error: {e}\n(JGAN_DEBUG=1 shows the traceback)", file=sys.stderr)
    return 1
  print(f"Done: step {result.step}, outputs in {workdir}/")
  return 0


if __name__ == "__main__":
  sys.exit(main())
