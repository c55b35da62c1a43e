"""Translate images with a trained DTN: ``python -m jgan.translate --workdir W --input PATH --out DIR``.

``PATH`` is one image or a folder (searched recursively; jpg/png/webp/bmp/gif). Each image is
decoded as the image-folder datasets decode it (any mode to RGB, alpha on white, centre crop,
resize to the source domain's size, grey when the source is grey), translated by g(f(x)) from
the latest (or ``--best``) checkpoint, and written as ``DIR/<same relative path>.png`` (the
extension becomes .png: the output is always PNG). Unreadable files are listed in one error
message; the readable ones are still translated, and the exit status is 1.

Works for every DTN run (digits and faces): the run's own config says the source shape. The
checkpoint holds everything, f's weights included: the encoder's own run is not needed.
"""

from __future__ import annotations

import argparse
import os
import sys

import jax
import numpy as np

from jgan import batching, imaging, runs
from jgan.data import folder


class UnreadableImagesError(ValueError):
  """Some inputs could not be decoded; ``.written`` lists the outputs that were written."""

  def __init__(self, message: str, written: list[str]):
    super().__init__(message)
    self.written = written


def _inputs(path: str) -> tuple[str, list[str]]:
  """(root, relative paths) of the images to translate."""
  path = os.path.abspath(os.path.expanduser(path))
  if os.path.isfile(path):
    return os.path.dirname(path), [os.path.basename(path)]
  if os.path.isdir(path):
    images, _ = folder.list_images(path)
    if not images:
      raise FileNotFoundError(f"--input {path} holds no image files (looked for "
                              f"{', '.join(folder.IMAGE_EXTENSIONS)}, recursively).")
    return path, images
  raise FileNotFoundError(f"--input {path} does not exist (give an image file or a folder).")


def _prepare(path: str, shape: tuple[int, int, int]) -> np.ndarray:
  h, w, c = shape
  if h != w:
    raise ValueError(f"The run's source images are {h}x{w}; translate supports square ones.")
  image = folder.decode_image(path, h)
  if c == 1:  # ITU-R 601 luma, as Pillow's convert("L")
    image = np.rint(image @ np.array([0.299, 0.587, 0.114]))[..., None].astype(np.uint8)
  return image


def translate_images(workdir: str, *, input_path: str, out: str, best: bool = False,
                     batch_size: int = 64) -> list[str]:
  """Translates ``input_path`` (an image or a folder) into PNGs under ``out``; returns them.

  Raises:
    FileNotFoundError: no run, no checkpoint or no input images.
    ValueError: the run is not a translation task (dtn).
    UnreadableImagesError: some inputs were unreadable (the others are written).
  """
  run = runs.load_run(workdir, best=best)
  if run.task.translate is None or run.source_shape is None:
    raise ValueError(f"The run in {workdir} is a {run.config.task!r} run; jgan.translate needs "
                     "a translation run (task 'dtn', e.g. --experiment dtn_digits).")
  root, files = _inputs(input_path)
  images, kept, bad = [], [], []
  for rel in files:
    try:
      images.append(_prepare(os.path.join(root, rel), run.source_shape))
      kept.append(rel)
    except Exception as e:  # pylint: disable=broad-except  (any decode failure is reported)
      bad.append(f"{os.path.join(root, rel)} ({type(e).__name__}: {e})")
  written = []
  if images:
    fn = jax.jit(lambda x: run.task.translate(run.state, imaging.to_float(x)))
    outputs = imaging.to_uint8(batching.map_in_batches(fn, np.stack(images),
                                                       batch_size=batch_size))
    for rel, image in zip(kept, outputs):
      written.append(os.path.join(out, os.path.splitext(rel)[0] + ".png"))
      imaging.save_image(written[-1], image)
  if bad:
    raise UnreadableImagesError(
        f"{len(bad)} of {len(files)} input file(s) could not be read as images (translated the "
        f"other {len(written)}):\n  " + "\n  ".join(bad), written)
  return written


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m jgan.translate", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--workdir", required=True, help="a DTN run (e.g. runs/dtn_digits)")
  parser.add_argument("--input", required=True, help="an image file or a folder of images")
  parser.add_argument("--out", required=True, help="where the translated PNGs go")
  parser.add_argument("--best", action="store_true", help="the best checkpoint by the run's "
                      "eval.best_metric instead of the latest")
  args = parser.parse_args(argv)
  try:
    paths = translate_images(args.workdir, input_path=args.input, out=args.out, best=args.best)
  except (FileNotFoundError, ValueError) as e:  # UnreadableImagesError included
    print(f"error: {e}", file=sys.stderr)
    return 1
  print(f"Translated {len(paths)} image(s) into {args.out}.")
  return 0


if __name__ == "__main__":
  sys.exit(main())
