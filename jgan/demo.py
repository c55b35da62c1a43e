"""Photo -> avatar in the browser: ``python -m jgan.demo --workdir runs/dtn_bitmoji``.

Starts a Gradio app on http://127.0.0.1:7860 (``--host``, ``--port``; ``--share`` for a public
gradio.live link, off by default). Upload a photo (or take one with the webcam, or paste one):
the largest face is found and aligned (:mod:`jgan.faces`, OpenCV's Haar cascades, offline),
resized to the run's source size and translated by the DTN's ``g(f(x))`` from the latest (or
``--best``) checkpoint; the page shows the aligned face (what the network sees) beside the
avatar, both enlarged for display, and a status line. A bad upload (not an image, no face, over
40 megapixels, a damaged file...) only changes the status line: the server keeps serving.

Works for any translation run (task ``dtn``): the run's own checkpoint gives the source and
target shapes (grey sources get the face in grey). ``--crop`` picks the face crop
(:data:`jgan.faces.CROPS`): ``dlib`` (tight, eyebrows to chin: dlib's face chips and the LFW
crops of ``lfw_faces``), ``celeba`` (CelebA's aligned crop, with hair) or ``auto`` (default:
``celeba`` when the run's source data is CelebA, else ``dlib``).

Offline: analytics are off (``GRADIO_ANALYTICS_ENABLED=False``, set before gradio is imported,
and ``analytics_enabled=False``), the theme uses the browser's system fonts instead of Google
Fonts, and server-side rendering (which needs Node) is off. Nothing is fetched from the internet
unless ``--share`` is given.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from typing import Any

import numpy as np

logger = logging.getLogger("jgan.demo")

DISPLAY_SIZE = 256  # the faces and avatars are enlarged (nearest) to about this for display
READY = "Done"  # the status of a successful translation starts with this
ASK = "Upload a photo with a face, or take one with the webcam."
CROP_CHOICES = ("auto", "dlib", "celeba")
DEFAULT_HOST = "127.0.0.1"  # this machine only; --host 0.0.0.0 serves the network
MAX_UPLOAD_BYTES = 100 * 2**20  # Gradio refuses bigger uploads; the handler checks it too


def upload_dir() -> str:
  """Where Gradio stores uploads (and its outputs): ``$GRADIO_TEMP_DIR``, else
  ``<system temp dir>/gradio``, Gradio's own rule. The demo itself writes no file."""
  return os.environ.get("GRADIO_TEMP_DIR") or os.path.join(tempfile.gettempdir(), "gradio")


def upload_too_large(image: Any, limit: int = MAX_UPLOAD_BYTES) -> str | None:
  """A message when ``image`` (bytes or a path) is over ``limit`` bytes, else None: Gradio
  enforces the limit in the browser upload, this covers its API and direct callers."""
  if isinstance(image, (bytes, bytearray, memoryview)):
    size = len(image)
  elif isinstance(image, (str, os.PathLike)) and os.path.isfile(image):
    size = os.path.getsize(image)
  else:
    return None
  if size <= limit:
    return None
  return (f"File too large: {size / 2**20:.3g} MB; the limit is {limit / 2**20:.3g} MB. Upload "
          "a smaller photo.")


def _offline_environment() -> None:
  """Gradio and huggingface_hub settings that keep the app off the network (before import)."""
  os.environ.setdefault("GRADIO_TEMP_DIR", upload_dir())  # explicit: uploads stay in a temp dir
  os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
  os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
  os.environ.setdefault("GRADIO_SSR_MODE", "False")


def default_crop(config) -> str:
  """``celeba`` for a run whose source data is CelebA, else ``dlib`` (see the docstring)."""
  try:
    name = str(config.source_data.name)
  except (AttributeError, KeyError):
    return "dlib"
  return "celeba" if name in ("celeb_a", "celeba", "celeb_a_hq") else "dlib"


def enlarge(image: np.ndarray, target: int = DISPLAY_SIZE) -> np.ndarray:
  """uint8 ``[H, W, C]`` enlarged by a whole factor (nearest) to about ``target``; grey as RGB."""
  factor = max(1, int(round(target / max(image.shape[:2]))))
  image = np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)
  if image.shape[2] == 1:
    image = np.repeat(image, 3, axis=2)
  return image


class AvatarTranslator:
  """Loads a translation run once and maps photos to ``(aligned face, avatar, status)``.

  ``translator(image)`` takes a path, bytes, a PIL image, a uint8 array or None and never
  raises for a bad input: the status says what went wrong and the images are None.
  """

  def __init__(self, run, *, crop: str = "auto", workdir: str | None = None):
    import jax  # pylint: disable=import-outside-toplevel
    from jgan import imaging  # pylint: disable=import-outside-toplevel
    if run.task.translate is None or run.source_shape is None:
      raise ValueError(f"The run in {run.workdir} is a {run.config.task!r} run; jgan.demo needs "
                       "a translation run (task 'dtn', e.g. --experiment dtn_digits).")
    h, w, c = run.source_shape
    if h != w:
      raise ValueError(f"The run's source images are {h}x{w}; the demo supports square ones.")
    if crop not in CROP_CHOICES:
      raise ValueError(f"Unknown crop {crop!r}; choose one of {', '.join(CROP_CHOICES)}.")
    self.run = run
    self.workdir = workdir or run.workdir  # as the user gave it, for the page
    self.size, self.channels = h, c
    self.crop = default_crop(run.config) if crop == "auto" else crop
    translate = run.task.translate
    self._fn = jax.jit(lambda state, x: translate(state, imaging.to_float(x)))
    start = time.perf_counter()  # compile once, now, not on the first upload
    jax.block_until_ready(self._fn(run.state, np.zeros((1, h, w, c), np.uint8)))
    self.compile_seconds = time.perf_counter() - start

  @classmethod
  def from_workdir(cls, workdir: str, *, best: bool = False, crop: str = "auto"):
    from jgan import runs  # pylint: disable=import-outside-toplevel
    return cls(runs.load_run(workdir, best=best), crop=crop, workdir=workdir)

  @property
  def description(self) -> str:
    run, (h, w, c), (th, tw, tc) = self.run, self.run.source_shape, self.run.image_shape
    name = os.path.basename(os.path.normpath(run.workdir))
    best = " (best checkpoint)" if os.path.basename(run.checkpoint_dir) == "checkpoints_best" \
        else ""
    grey = lambda k: "grey" if k == 1 else "RGB"
    return (f"Run **{name}** (`{self.workdir}`), step **{run.step:,}**{best}: faces are aligned "
            f"with the `{self.crop}` crop to {h}x{w} {grey(c)} and translated to {th}x{tw} "
            f"{grey(tc)} avatars.")

  def translate_face(self, face: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint8 ``[S, S, 3]`` aligned face -> (uint8 ``[H, W, C]`` avatar, the network's input)."""
    from jgan import imaging  # pylint: disable=import-outside-toplevel
    x = face
    if self.channels == 1:  # ITU-R 601 luma, as Pillow's convert("L") and jgan.translate
      x = np.rint(face @ np.array([0.299, 0.587, 0.114]))[..., None].astype(np.uint8)
    return imaging.to_uint8(np.asarray(self._fn(self.run.state, x[None])))[0], x

  def __call__(self, image: Any):
    from jgan import faces  # pylint: disable=import-outside-toplevel
    if image is None:
      return None, None, ASK
    too_large = upload_too_large(image, MAX_UPLOAD_BYTES)
    if too_large:
      return None, None, too_large
    start = time.perf_counter()
    try:
      if isinstance(image, np.ndarray) or hasattr(image, "mode"):  # array or PIL image
        rgb = faces.as_rgb(image)
      else:
        rgb = faces.load_image(image)
      alignment = faces.locate_face(rgb, crop=self.crop)
      face = faces.extract_chip(rgb, alignment, self.size)
      t0 = time.perf_counter()
      avatar, seen = self.translate_face(face)
      translate_ms = (time.perf_counter() - t0) * 1e3
    except faces.NoFaceError as e:
      return None, None, str(e)
    except faces.ImageTooLargeError as e:
      return None, None, f"Image too large: {e}"
    except (faces.UnreadableImageError, FileNotFoundError) as e:
      return None, None, f"Not a readable image: {e} Upload a JPEG, PNG or WebP photo."
    except ValueError as e:
      return None, None, f"Cannot use this image: {e}"
    except Exception as e:  # pylint: disable=broad-except  (keep serving; the log has the rest)
      logger.exception("Translation failed")
      return None, None, f"Something went wrong ({type(e).__name__}: {e}). Try another photo."
    box = alignment.box
    eyes = (f", eyes levelled ({np.degrees(alignment.angle):+.1f} deg)"
            if alignment.eyes is not None else ", eyes not found (not levelled)")
    status = (f"{READY}: face {box.w}x{box.h} px at ({box.x}, {box.y}) in the "
              f"{rgb.shape[1]}x{rgb.shape[0]} photo{eyes}; translated in {translate_ms:.0f} ms "
              f"({(time.perf_counter() - start) * 1e3:.0f} ms in all).")
    return enlarge(seen), enlarge(avatar), status


def _pass_unreadable_uploads(image_component) -> None:
  """Makes an upload that ``image_component`` (a gr.Image) cannot open reach the handler, as
  its path, instead of failing inside Gradio with a bare "Error" toast: the status line then
  says what is wrong with it (not an image, over Pillow's decompression-bomb limit...).

  Done on the instance: a gr.Image subclass would make Gradio write a ``.pyi`` stub of this
  module next to it (gradio.component_meta does that for every Component subclass).
  """
  original = image_component.preprocess

  def preprocess(payload):
    try:
      return original(payload)
    except Exception:  # pylint: disable=broad-except  (the handler reports it)
      return getattr(payload, "path", None) or ""

  image_component.preprocess = preprocess


def build_blocks(translator: AvatarTranslator):
  """The Gradio app around a loaded translator."""
  _offline_environment()
  import gradio as gr  # pylint: disable=import-outside-toplevel
  run = translator.run
  title = f"jgan avatars: {os.path.basename(os.path.normpath(run.workdir))} (step {run.step:,})"
  # Uploads and outputs are cached in GRADIO_TEMP_DIR (default /tmp/gradio): files older than
  # an hour are deleted every hour, so a long-running demo does not fill the disk.
  with gr.Blocks(title=title, analytics_enabled=False, delete_cache=(3600, 3600)) as app:
    gr.Markdown(f"# {title}\n{translator.description}\n\nUpload a photo (or use the webcam): "
                "the largest face is found, aligned and turned into an avatar. Nothing leaves "
                "this machine.")
    with gr.Row():
      photo = gr.Image(label="Photo", sources=["upload", "webcam", "clipboard"],
                       type="filepath", image_mode=None, elem_id="photo")
      _pass_unreadable_uploads(photo)
      face = gr.Image(label=f"Aligned face ({translator.size}x{translator.size}, the network's "
                      "input)", format="png", interactive=False, elem_id="face")
      avatar = gr.Image(label="Avatar", format="png", interactive=False, elem_id="avatar")
    status = gr.Textbox(label="Status", value=ASK, interactive=False, elem_id="status")
    # .input: once per user action (upload, webcam capture, paste, clear); .change fires twice
    # for an upload that replaces a photo.
    photo.input(translator, inputs=photo, outputs=[face, avatar, status], api_name="avatar")
  return app


def build_app(workdir: str, *, best: bool = False, crop: str = "auto"):
  """Loads the translation run in ``workdir`` (jit-compiled once) and returns its gr.Blocks.

  Raises:
    FileNotFoundError: no run or no checkpoint there.
    ValueError: not a translation run, or non-square sources.
  """
  return build_blocks(AvatarTranslator.from_workdir(workdir, best=best, crop=crop))


def launch(app, *, host: str = DEFAULT_HOST, port: int = 7860, share: bool = False,
           block: bool = True, quiet: bool = False):
  """Serves ``app`` (one translation at a time) with the offline settings of the docstring.

  ``block=False`` returns once the server runs (tests); stop it with ``app.close()``.
  """
  app.queue(default_concurrency_limit=1)
  logger.info("Serving on http://%s:%d; uploads (at most %d MB each) are kept in %s and deleted "
              "after an hour.", host, port, MAX_UPLOAD_BYTES // 2**20, upload_dir())
  return app.launch(server_name=host, server_port=port, share=share, ssr_mode=False,
                    show_error=True, max_file_size=MAX_UPLOAD_BYTES, theme=theme(),
                    footer_links=[], prevent_thread_lock=not block, quiet=quiet)


def theme():
  """Gradio's default theme with the browser's own fonts (no Google Fonts request)."""
  import gradio as gr  # pylint: disable=import-outside-toplevel
  system = ["ui-sans-serif", "system-ui", "sans-serif"]
  return gr.themes.Default(font=system, font_mono=["ui-monospace", "monospace"])


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m jgan.demo", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--workdir", required=True, help="a DTN run, e.g. runs/dtn_bitmoji")
  parser.add_argument("--best", action="store_true", help="the best checkpoint by the run's "
                      "eval.best_metric instead of the latest")
  parser.add_argument("--crop", default="auto", choices=CROP_CHOICES,
                      help="face crop (see jgan.faces.CROPS); auto: from the run's source data")
  parser.add_argument("--host", default=DEFAULT_HOST, help="0.0.0.0 serves the whole network")
  parser.add_argument("--port", type=int, default=7860)
  parser.add_argument("--share", action="store_true", help="also a public gradio.live link "
                      "(needs internet)")
  args = parser.parse_args(argv)
  _offline_environment()
  logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
  logger.setLevel(logging.INFO)
  start = time.perf_counter()
  try:
    translator = AvatarTranslator.from_workdir(args.workdir, best=args.best, crop=args.crop)
  except (FileNotFoundError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  loaded = time.perf_counter()
  app = build_blocks(translator)
  logger.info("Loaded %s at step %d in %.1f s (jit compile %.1f s); the app built in %.1f s "
              "(gradio import included).", translator.run.workdir, translator.run.step,
              loaded - start, translator.compile_seconds, time.perf_counter() - loaded)
  launch(app, host=args.host, port=args.port, share=args.share)
  return 0


if __name__ == "__main__":
  sys.exit(main())
