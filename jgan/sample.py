"""Export samples of a trained run: ``python -m jgan.sample --workdir W --num N --out DIR``.

Writes ``DIR/sample_00000.png`` ... (and ``DIR/grid.png``) from the latest (or ``--best``)
checkpoint; ``--seed`` picks the latents, so the same seed gives the same images.

Text-to-image runs (task ``t2i``) draw from sentences: ``--text "a face with long black hair"``
(``--num`` images of it) or ``--text-file FILE`` (one sentence a line, ``--num`` images each;
the grid has one row per sentence). ``--text A --text B --interpolate S`` draws the way from
sentence A to sentence B: ``--num`` rows (default 4), each one noise vector, of ``S`` images
whose sentence embeddings mix A's and B's linearly (``DIR/interpolation.png``, one image per
cell ``interp_RR_SS.png``).
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
  if run.task.translate is not None:  # a DTN translates given images; it has no noise input
    raise ValueError(f"The {run.config.task!r} run in {workdir} draws no samples from noise: "
                     "translate images with python -m jgan.translate.")
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


def export_text_samples(workdir: str, *, sentences: list[str], num: int, out: str,
                        seed: int = 0, best: bool = False, use_ema: bool = True) -> list[str]:
  """Writes ``num`` samples for each sentence (a t2i run) as PNGs under ``out``; returns them.

  ``sample_SSS_NNNNN.png`` is image N of sentence S; ``grid.png`` has a row per sentence
  (the same noise in every row) and ``captions.txt`` the sentences in order.
  """
  from jgan.tasks import t2i  # pylint: disable=import-outside-toplevel
  if num < 1:
    raise ValueError(f"--num must be >= 1, got {num}.")
  sentences = [s.strip() for s in sentences if s.strip()]
  if not sentences:
    raise ValueError("No sentence to draw: --text is empty or --text-file has no non-empty "
                     "line.")
  run = runs.load_run(workdir, best=best)
  if run.config.task != "t2i":
    raise ValueError(f"--text needs a text-to-image (t2i) run; the run in {workdir} is a "
                     f"{run.config.task!r} run (draw from it without --text).")
  sample = jax.jit(run.task.sample)
  latent_dim = run.config.model.latent_dim
  z = jax.random.normal(jax.random.key(seed), (num, latent_dim))
  inputs = t2i.sentence_inputs(run.config, sentences, key=jax.random.key(seed),
                               latent_dim=latent_dim)
  os.makedirs(out, exist_ok=True)
  paths, rows = [], []
  for s_index in range(len(sentences)):
    text = np.repeat(np.asarray(inputs["text"][s_index:s_index + 1]), num, axis=0)
    outputs = jax.device_get(sample(run.state, {"z": z, "text": text}))
    key = "samples_ema" if use_ema and "samples_ema" in outputs else "samples"
    images = imaging.to_uint8(np.asarray(outputs[key]))
    rows.append(images)
    for i, image in enumerate(images):
      paths.append(os.path.join(out, f"sample_{s_index:03d}_{i:05d}.png"))
      imaging.save_image(paths[-1], image)
  imaging.save_image(os.path.join(out, "grid.png"),
                     imaging.make_grid(np.concatenate([r[:16] for r in rows]),
                                       ncols=min(num, 16)))
  with open(os.path.join(out, "captions.txt"), "w", encoding="utf-8") as f:
    f.write("\n".join(sentences) + "\n")
  return paths


def export_interpolation(workdir: str, *, text_a: str, text_b: str, steps: int, num: int,
                         out: str, seed: int = 0, best: bool = False,
                         use_ema: bool = True) -> np.ndarray:
  """Writes a caption-interpolation grid of a t2i run under ``out``; returns its images.

  Rows are ``num`` noise vectors; columns the ``steps`` linear mixes from ``text_a``'s sentence
  embedding to ``text_b``'s (:func:`jgan.tasks.t2i.interpolation_inputs`). Files:
  ``interpolation.png`` (the grid), ``interp_RR_SS.png`` and ``captions.txt`` (A, then B).

  Returns:
    uint8 [num, steps, H, W, C].
  """
  from jgan.tasks import t2i  # pylint: disable=import-outside-toplevel
  if num < 1:
    raise ValueError(f"--num must be >= 1, got {num}.")
  if steps < 2:
    raise ValueError(f"--interpolate needs at least 2 steps (both ends), got {steps}.")
  sentences = [text_a.strip(), text_b.strip()]
  if not all(sentences):
    raise ValueError("--interpolate needs two non-empty sentences (--text A --text B).")
  run = runs.load_run(workdir, best=best)
  if run.config.task != "t2i":
    raise ValueError(f"--interpolate needs a text-to-image (t2i) run; the run in {workdir} is a "
                     f"{run.config.task!r} run.")
  latent_dim = run.config.model.latent_dim
  embeddings = t2i.sentence_inputs(run.config, sentences, key=jax.random.key(seed),
                                   latent_dim=latent_dim)["text"]
  z = jax.random.normal(jax.random.key(seed), (num, latent_dim))
  inputs = t2i.interpolation_inputs(embeddings[0], embeddings[1], steps=steps, z=z)
  outputs = jax.device_get(jax.jit(run.task.sample)(run.state, inputs))
  key = "samples_ema" if use_ema and "samples_ema" in outputs else "samples"
  images = imaging.to_uint8(np.asarray(outputs[key]))
  os.makedirs(out, exist_ok=True)
  for i, image in enumerate(images):
    imaging.save_image(os.path.join(out, f"interp_{i // steps:02d}_{i % steps:02d}.png"), image)
  imaging.save_image(os.path.join(out, "interpolation.png"),
                     imaging.make_grid(images, ncols=steps))
  with open(os.path.join(out, "captions.txt"), "w", encoding="utf-8") as f:
    f.write("\n".join(sentences) + "\n")
  return images.reshape(num, steps, *images.shape[1:])


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m jgan.sample", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--num", type=int, default=None,
                      help="images (default 64); with --interpolate, rows (default 4)")
  parser.add_argument("--out", required=True)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--best", action="store_true")
  parser.add_argument("--no_ema", action="store_true", help="the raw generator, not its EMA")
  parser.add_argument("--text", action="append", default=None,
                      help="t2i runs: a sentence to draw (repeatable)")
  parser.add_argument("--text-file", "--text_file", dest="text_file", default=None,
                      help="t2i runs: a file of sentences, one a line")
  parser.add_argument("--interpolate", type=int, default=None, metavar="STEPS",
                      help="t2i runs: STEPS images from the first --text to the second")
  args = parser.parse_args(argv)
  try:
    if args.interpolate is not None:
      if len(args.text or []) != 2 or args.text_file is not None:
        raise ValueError("--interpolate STEPS needs exactly two sentences: --text A --text B "
                         f"(got {len(args.text or [])} --text"
                         f"{' and a --text-file' if args.text_file else ''}).")
      images = export_interpolation(args.workdir, text_a=args.text[0], text_b=args.text[1],
                                    steps=args.interpolate, num=args.num or 4, out=args.out,
                                    seed=args.seed, best=args.best, use_ema=not args.no_ema)
      print(f"Wrote a {images.shape[0]}x{images.shape[1]} interpolation grid "
            f"(interpolation.png) to {args.out}.")
      return 0
    args.num = 64 if args.num is None else args.num
    sentences = list(args.text or [])
    if args.text_file is not None:
      if not os.path.isfile(args.text_file):
        raise FileNotFoundError(f"--text-file {args.text_file!r} does not exist.")
      with open(args.text_file, encoding="utf-8") as f:
        sentences += [line.strip() for line in f if line.strip()]
      if not sentences:
        raise ValueError(f"--text-file {args.text_file!r} has no non-empty line.")
    if args.text is not None or args.text_file is not None:
      paths = export_text_samples(args.workdir, sentences=sentences, num=args.num, out=args.out,
                                  seed=args.seed, best=args.best, use_ema=not args.no_ema)
    else:
      paths = export_samples(args.workdir, num=args.num, out=args.out, seed=args.seed,
                             best=args.best, use_ema=not args.no_ema)
  except (FileNotFoundError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  print(f"Wrote {len(paths)} images and grid.png to {args.out}.")
  return 0


if __name__ == "__main__":
  sys.exit(main())
