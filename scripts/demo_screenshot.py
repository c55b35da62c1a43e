"""Screenshots jgan's Gradio demo of a run (the README's demo pictures).

    python scripts/demo_screenshot.py --workdir runs/dtn_bitmoji --out docs/images/demo.png \
        [--photo face.jpg] [--best]
    python scripts/demo_screenshot.py --workdir runs/t2i_avatars --out docs/images/t2i_demo.png \
        [--caption "a smiling face with long red hair"] [--seed 0] [--best]

Starts the demo of a trained run on 127.0.0.1 and drives it in headless Debian Chromium through
Playwright, by the run's task (:func:`jgan.demo.load_model`): a DTN run translates the photo
(default: scikit-image's astronaut), a text-to-image run draws the caption (default: the run's
first sample caption) from the seed. It waits for the result and saves a screenshot of the page
(the whole page for a text-to-image run: its samples are taller than the window).
tests/test_demo.py drives the same apps in more ways.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import sys
import tempfile
from typing import Callable

from PIL import Image

from jgan import demo

_TIMEOUT_MS = 120_000


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _wait_until_done(page, images: str, count: int) -> str:
  """Waits for a status starting with demo.READY and ``count`` loaded images matching
  ``images`` (a CSS selector); returns the status."""
  page.wait_for_function(
      "([ready, selector, count]) => { const s = document.querySelector('#status textarea');"
      " const images = [...document.querySelectorAll(selector)];"
      " return s && s.value.startsWith(ready) && images.length === count"
      " && images.every(i => i.complete); }",
      arg=[demo.READY, images, count], timeout=_TIMEOUT_MS)
  return page.input_value("#status textarea")


def _translate_photo(photo: str) -> Callable:
  """What to do on a translation page: upload ``photo`` and wait for the avatar."""
  def act(page) -> str:
    page.locator("#photo input[type=file]").set_input_files(photo)
    return _wait_until_done(page, "#avatar img", 1)
  return act


def _draw_caption(caption: str, seed: int) -> Callable:
  """What to do on a text-to-image page: type ``caption`` and ``seed``, press Draw, wait for
  the samples."""
  def act(page) -> str:
    page.locator("#caption textarea").fill(caption)
    page.locator("#seed input").fill(str(seed))
    page.locator("#draw").click()
    return _wait_until_done(page, "#samples img", demo.NUM_SAMPLES)
  return act


def _shoot(app, out: str, act: Callable, *, full_page: bool) -> str:
  """Serves ``app``, opens it in Chromium, runs ``act(page) -> status`` and saves the page to
  ``out``; returns the status."""
  from playwright.sync_api import sync_playwright  # pylint: disable=import-outside-toplevel
  chromium = shutil.which("chromium") or shutil.which("chromium-browser")
  if not chromium:
    raise SystemExit("Needs Debian's chromium (apt-get install chromium).")
  port = _free_port()
  demo.launch(app, port=port, block=False, quiet=True)
  try:
    with sync_playwright() as p:
      browser = p.chromium.launch(executable_path=chromium)
      page = browser.new_page(viewport={"width": 1280, "height": 760})
      page.goto(f"http://127.0.0.1:{port}/")
      page.wait_for_selector("#status textarea")
      status = act(page)
      page.screenshot(path=out, full_page=full_page)
      browser.close()
  finally:
    app.close()
  return status


def screenshot(workdir: str, out: str, *, photo: str | None = None, caption: str | None = None,
               seed: int = 0, best: bool = False) -> str:
  """Serves the demo of ``workdir``, translates ``photo`` (a DTN run) or draws ``caption`` from
  ``seed`` (a text-to-image run) in Chromium, saves the page to ``out``; returns the status
  line the page showed.

  Raises:
    ValueError: ``caption`` for a translation run, or ``photo`` for a text-to-image run.
  """
  error = demo.seed_error(seed) or (demo.caption_error(caption) if caption is not None else None)
  if error:
    raise ValueError(error)
  model = demo.load_model(workdir, best=best)
  text_to_image = isinstance(model, demo.CaptionSampler)
  if text_to_image and photo is not None:
    raise ValueError(f"--photo is for translation runs; {workdir} is a text-to-image run: give "
                     "--caption (default: its first sample caption).")
  if not text_to_image and caption is not None:
    raise ValueError(f"--caption is for text-to-image runs; {workdir} is a translation run: "
                     "give --photo (default: scikit-image's astronaut).")
  app = demo.build_blocks(model)
  if text_to_image:
    act = _draw_caption(caption or model.default_caption, seed)
    return _shoot(app, out, act, full_page=True)
  with tempfile.TemporaryDirectory() as tmp:
    if photo is None:
      from skimage import data as skimage_data  # pylint: disable=import-outside-toplevel
      photo = f"{tmp}/astronaut.png"
      Image.fromarray(skimage_data.astronaut()).save(photo)
    return _shoot(app, out, _translate_photo(photo), full_page=False)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--workdir", required=True, help="a trained DTN or text-to-image run")
  parser.add_argument("--out", required=True, help="the PNG to write")
  parser.add_argument("--photo", default=None,
                      help="DTN runs: the photo (default: scikit-image's astronaut)")
  parser.add_argument("--caption", default=None, help="text-to-image runs: the caption "
                      f"(at most {demo.MAX_CAPTION_CHARS} characters; default: the run's first "
                      "sample caption)")
  parser.add_argument("--seed", type=int, default=0,
                      help=f"text-to-image runs: the seed of the noise (0 to {demo.MAX_SEED})")
  parser.add_argument("--best", action="store_true", help="the best checkpoint, not the latest")
  args = parser.parse_args(argv)
  try:
    status = screenshot(args.workdir, args.out, photo=args.photo, caption=args.caption,
                        seed=args.seed, best=args.best)
  except (FileNotFoundError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  print(f"{args.out}: {status}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
