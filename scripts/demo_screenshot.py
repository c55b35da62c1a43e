"""Screenshots jgan's Gradio demo translating one photo (the README's demo picture).

    python scripts/demo_screenshot.py --workdir runs/dtn_bitmoji --out docs/images/demo.png \
        [--photo face.jpg] [--best]

Starts the demo of a trained DTN run on 127.0.0.1, uploads the photo (default: scikit-image's
astronaut) in headless Debian Chromium through Playwright, waits for the avatar and saves a
screenshot of the page. tests/test_demo.py drives the same app in more ways.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import sys
import tempfile

from PIL import Image

from jgan import demo


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def screenshot(workdir: str, out: str, *, photo: str | None = None, best: bool = False) -> str:
  """Serves the demo of ``workdir``, translates ``photo`` in Chromium, saves the page to
  ``out``; returns the status line the page showed."""
  from playwright.sync_api import sync_playwright  # pylint: disable=import-outside-toplevel
  chromium = shutil.which("chromium") or shutil.which("chromium-browser")
  if not chromium:
    raise SystemExit("Needs Debian's chromium (apt-get install chromium).")
  with tempfile.TemporaryDirectory() as tmp:
    if photo is None:
      from skimage import data as skimage_data  # pylint: disable=import-outside-toplevel
      photo = f"{tmp}/astronaut.png"
      Image.fromarray(skimage_data.astronaut()).save(photo)
    app = demo.build_app(workdir, best=best)
    port = _free_port()
    demo.launch(app, port=port, block=False, quiet=True)
    try:
      with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium)
        page = browser.new_page(viewport={"width": 1280, "height": 760})
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_selector("#status textarea")
        page.locator("#photo input[type=file]").set_input_files(photo)
        page.wait_for_function(
            "(ready) => { const s = document.querySelector('#status textarea');"
            " const i = document.querySelector('#avatar img');"
            " return s && s.value.startsWith(ready) && i && i.complete; }",
            arg=demo.READY, timeout=120_000)
        status = page.input_value("#status textarea")
        page.screenshot(path=out)
        browser.close()
    finally:
      app.close()
  return status


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--workdir", required=True, help="a trained DTN run")
  parser.add_argument("--out", required=True, help="the PNG to write")
  parser.add_argument("--photo", default=None, help="default: scikit-image's astronaut")
  parser.add_argument("--best", action="store_true", help="the best checkpoint, not the latest")
  args = parser.parse_args(argv)
  status = screenshot(args.workdir, args.out, photo=args.photo, best=args.best)
  print(f"{args.out}: {status}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
