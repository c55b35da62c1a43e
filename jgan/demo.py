"""jgan runs in the browser: ``python -m jgan.demo --workdir runs/dtn_bitmoji`` (photo -> avatar)
or ``--workdir runs/t2i_avatars`` (text -> images).

Starts a Gradio app on http://127.0.0.1:7860 (``--host``, ``--port``; ``--share`` for a public
gradio.live link, off by default) for the run's task, read from its checkpoint and config
(:func:`load_model`); the latest checkpoint, or ``--best``. Bad input only changes the page's
status line: the server keeps serving.

Translation runs (task ``dtn``): upload a photo (or take one with the webcam, or paste one):
the largest face is found and aligned (:mod:`jgan.faces`, OpenCV's Haar cascades, offline),
resized to the run's source size and translated by the DTN's ``g(f(x))``; the page shows the
aligned face (what the network sees) beside the avatar, both enlarged for display. A bad upload
(not an image, no face, over 40 megapixels, a damaged file...) gets a message. The run's own
checkpoint gives the source and target shapes (grey sources get the face in grey). ``--crop``
picks the face crop (:data:`jgan.faces.CROPS`): ``dlib`` (tight, eyebrows to chin: dlib's face
chips and the LFW crops of ``lfw_faces``), ``celeba`` (CelebA's aligned crop, with hair) or
``auto`` (default: ``celeba`` when the run's source data is CelebA, else ``dlib``).

Text-to-image runs (task ``t2i``): type a caption, pick a seed and press Draw: the page shows
:data:`NUM_SAMPLES` images of the caption, one per noise vector drawn from the seed (the inputs
and the EMA generator, when the run has one, of ``python -m jgan.sample --text CAPTION --num 8
--seed SEED``), each with the attributes the run's judge reads on it (the attribute classifier
of the t2i evaluation, ``eval.classifier``: "hair: long, hair_colour: red, glasses: none,
mouth: smiling, facial_hair: none"). The demo never trains the judge: when it is missing the
samples come without attributes and the status line names it and the command that trains it;
a run without a judge (its data has none, e.g. ``t2i_flowers``, or ``eval.metrics`` is empty)
shows samples only. An empty caption, one over :data:`MAX_CAPTION_CHARS` characters or a seed
outside 0..:data:`MAX_SEED` gets a message.

Offline: analytics are off (``GRADIO_ANALYTICS_ENABLED=False``, set before gradio is imported,
and ``analytics_enabled=False``), the theme uses the browser's system fonts instead of Google
Fonts, and server-side rendering (which needs Node) is off. Nothing is fetched from the internet
unless ``--share`` is given.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import logging
import os
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

if TYPE_CHECKING:  # annotations only: the demo imports jgan and jax when it loads a run
  import ml_collections

  from jgan.evaluation.features import FeatureNetwork
  from jgan.runs import Run
  from jgan.tasks.base import Prerequisite

logger = logging.getLogger("jgan.demo")

DISPLAY_SIZE = 256  # the faces and avatars are enlarged (nearest) to about this for display
READY = "Done"  # the status of a successful translation starts with this
ASK = "Upload a photo with a face, or take one with the webcam."
CROP_CHOICES = ("auto", "dlib", "celeba")
DEFAULT_HOST = "127.0.0.1"  # this machine only; --host 0.0.0.0 serves the network
MAX_UPLOAD_BYTES = 100 * 2**20  # Gradio refuses bigger uploads; the handler checks it too
TEXT_TO_IMAGE = "t2i"  # the task served by CaptionSampler; the others go to AvatarTranslator
NUM_SAMPLES = 8  # images of a caption on the t2i page, one noise vector each
SAMPLE_COLUMNS = 4  # the t2i page shows the samples in rows of this many
MAX_CAPTION_CHARS = 300  # longer captions are refused (the avatars' captions are < 100)
MAX_SEED = 2**31 - 1  # seeds are 0..MAX_SEED
ASK_CAPTION = "Type a caption and a seed, then press Draw (or Enter)."


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


def _colour_name(channels: int) -> str:
  return "grey" if channels == 1 else "RGB"


def default_crop(config) -> str:
  """``celeba`` for a run whose source data is CelebA, else ``dlib`` (see the docstring)."""
  try:
    name = str(config.source_data.name)
  except (AttributeError, KeyError):
    return "dlib"
  return "celeba" if name in ("celeb_a", "celeba", "celeb_a_hq") else "dlib"


def run_label(run: Run, workdir: str) -> str:
  """``Run **name** (`workdir`), step **N**`` (and "(best checkpoint)") for a page's header:
  ``workdir`` as the user gave it, so a screenshot shows no absolute path of this machine."""
  name = os.path.basename(os.path.normpath(run.workdir))
  best = " (best checkpoint)" if os.path.basename(run.checkpoint_dir) == "checkpoints_best" \
      else ""
  return f"Run **{name}** (`{workdir}`), step **{run.step:,}**{best}"


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
                       "a translation run (task 'dtn', e.g. --experiment dtn_digits) or a "
                       "text-to-image run (task 't2i', e.g. --experiment t2i_avatars).")
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
    (h, w, c), (th, tw, tc) = self.run.source_shape, self.run.image_shape
    return (f"{run_label(self.run, self.workdir)}: faces are aligned with the `{self.crop}` crop "
            f"to {h}x{w} {_colour_name(c)} and translated to {th}x{tw} {_colour_name(tc)} "
            "avatars.")

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


# ----------------------------------------------------------------------------- text to image


def caption_error(caption: Any, limit: int = MAX_CAPTION_CHARS) -> str | None:
  """A message when ``caption`` cannot be drawn (empty, not text, over ``limit`` characters
  once stripped), else None: the status line shows it instead of samples."""
  if caption is None or (isinstance(caption, str) and not caption.strip()):
    return f"Empty caption: type what to draw, 1 to {limit} characters."
  if not isinstance(caption, str):
    return f"The caption must be text, got {type(caption).__name__}."
  length = len(caption.strip())
  if length > limit:
    return (f"Caption too long: {length:,} characters; the limit is {limit}. Shorten it to "
            f"{limit} characters or fewer.")
  return None


def seed_error(seed: Any) -> str | None:
  """A message when ``seed`` (the page's number box: an int, a float or None when empty) is not
  an integer in 0..MAX_SEED, else None."""
  allowed = f"a seed is an integer from 0 to {MAX_SEED}"
  if seed is None or seed == "":
    return f"No seed: type one ({allowed})."
  try:
    value = float(seed)
  except (TypeError, ValueError):
    return f"Bad seed {seed!r}: {allowed}."
  if isinstance(seed, bool) or not value.is_integer() or not 0 <= value <= MAX_SEED:
    return f"Bad seed {seed!r}: {allowed}."
  return None


def attribute_text(prediction: Sequence[int] | np.ndarray) -> str:
  """``"hair: long, hair_colour: red, ..."``: one row of the judge's predictions
  (:func:`jgan.evaluation.attributes.attribute_predictions`) named by
  :data:`jgan.data.captioned.AVATAR_ATTRIBUTES`."""
  from jgan.data import captioned  # pylint: disable=import-outside-toplevel
  return ", ".join(f"{name}: {values[int(v)]}" for (name, values), v in zip(
      captioned.AVATAR_ATTRIBUTES.items(), prediction, strict=True))


def train_command(prerequisite: Prerequisite) -> str:
  """The launch.py command that trains a prerequisite run (``jgan.tasks.base.Prerequisite``)
  where the run looks for it (``--workdir`` only when that is not launch.py's default)."""
  from jgan.tasks import base  # pylint: disable=import-outside-toplevel
  command = f"python launch.py --experiment {prerequisite.experiment}"
  default = base.default_workdir("", prerequisite.experiment)
  if os.path.normpath(prerequisite.workdir) != os.path.normpath(default):
    command += f" --workdir {prerequisite.workdir}"
  return command


@dataclasses.dataclass(frozen=True)
class Judge:
  """The attribute classifier a t2i page reads its samples with, or why there is none.

  Attributes:
    network: the classifier (a ``jgan.evaluation.features.FeatureNetwork``; None: no
      attributes are shown).
    about: for the page's header: which judge reads the attributes, or why none does.
    missing: for every status line: the missing judge and the command that trains it, or why
      the judge cannot be used; "" when there is nothing to fix.
  """

  network: FeatureNetwork | None
  about: str
  missing: str = ""


def load_judge(config: ml_collections.ConfigDict, image_shape: tuple[int, int, int]) -> Judge:
  """The judge of the t2i evaluation of ``config`` (its prerequisite ``"judge"``:
  ``eval.classifier`` in ``eval.classifier_workdir``, default runs/<name>), opened as the
  evaluation opens it (best checkpoint if kept; one head per captioned attribute).

  Unlike the evaluation it never trains a missing judge (an hour's job, and a demo writes no
  run): the Judge then has no network and says which one is missing and how to train it.
  """
  from jgan import runs  # pylint: disable=import-outside-toplevel
  from jgan.data import captioned  # pylint: disable=import-outside-toplevel
  from jgan.tasks import t2i  # pylint: disable=import-outside-toplevel
  p = t2i.prerequisites(config).get("judge")
  if p is None:
    return Judge(None, about=f"This run has no attribute judge (its evaluation reads none: data "
                 f"`{config.data.name}`, eval.metrics {tuple(config.eval.metrics)}): samples "
                 "only.")
  if not runs.has_checkpoint(p.workdir):
    missing = (f"No attributes: the judge {p.experiment!r} is not trained (no checkpoint in "
               f"{p.workdir}); train it with: {train_command(p)}")  # no full stop after it
    return Judge(None, about=missing, missing=missing)
  try:
    network = runs.classifier_network(p.workdir, layer=p.layer)
    _, counts = captioned.attribute_spec(config.data)
    # The evaluation's own check: one head per captioned attribute.
    network = t2i._check_judge(  # pylint: disable=protected-access
        network, tuple(image_shape), sum(counts))
  except (FileNotFoundError, ValueError) as e:
    missing = f"No attributes: the judge in {p.workdir} cannot be used ({e})"
    return Judge(None, about=missing, missing=missing)
  return Judge(network, about=f"Under each sample: the attributes the judge `{p.experiment}` "
               f"(`{p.workdir}`) reads on it.")


def _generate_and_judge(sample: Callable, judge: FeatureNetwork | None, state: Any,
                        inputs: dict[str, Any]) -> dict[str, Any]:
  """The run's samples of ``inputs`` (the EMA generator's when it has one, as jgan.sample) and,
  with a judge (a FeatureNetwork or None), its attribute logits on them; jitted once a run."""
  outputs = sample(state, inputs)
  images = outputs["samples_ema"] if "samples_ema" in outputs else outputs["samples"]
  if judge is None:
    return {"images": images}
  return {"images": images, "logits": judge.apply(images)["logits"]}


@dataclasses.dataclass(frozen=True)
class Drawing:
  """What the t2i page shows for one press of Draw.

  Attributes:
    images: uint8 [NUM_SAMPLES, H, W, C], the samples (None: nothing drawn, see the status).
    attributes: per sample, the judge's reading (:func:`attribute_text`); None without one.
    status: the status line.
  """

  images: np.ndarray | None
  attributes: list[str] | None
  status: str


class CaptionSampler:
  """Loads a text-to-image run (and its attribute judge) once and draws captions.

  ``sampler(caption, seed)`` returns a :class:`Drawing` and never raises for a bad caption or
  seed: the status says what is wrong and nothing is drawn.
  """

  def __init__(self, run: Run, *, workdir: str | None = None, judge: Judge | None = None):
    import jax  # pylint: disable=import-outside-toplevel
    if run.config.task != TEXT_TO_IMAGE:
      raise ValueError(f"The run in {run.workdir} is a {run.config.task!r} run; CaptionSampler "
                       "needs a text-to-image run (task 't2i', e.g. --experiment t2i_avatars).")
    self.run = run
    self.workdir = workdir or run.workdir  # as the user gave it, for the page
    self.judge = load_judge(run.config, run.image_shape) if judge is None else judge
    self.default_caption = str(tuple(run.config.sample_captions)[0])
    self._fn = jax.jit(functools.partial(_generate_and_judge, run.task.sample,
                                         self.judge.network))
    start = time.perf_counter()  # compile (and load the text encoder) now, not on first Draw
    self.samples(self.default_caption, 0)
    self.compile_seconds = time.perf_counter() - start

  @classmethod
  def from_workdir(cls, workdir: str, *, best: bool = False) -> CaptionSampler:
    """The sampler of the t2i run in ``workdir`` (its latest or best checkpoint)."""
    from jgan import runs  # pylint: disable=import-outside-toplevel
    return cls(runs.load_run(workdir, best=best), workdir=workdir)

  @property
  def description(self) -> str:
    (h, w, c), config = self.run.image_shape, self.run.config
    generator = ("the EMA generator" if getattr(self.run.state, "ema_g_params", None) is not None
                 else "the generator")
    return (f"{run_label(self.run, self.workdir)}: {h}x{w} {_colour_name(c)} images of a "
            f"caption (text encoder `{config.data.text_encoder}`), {NUM_SAMPLES} noise vectors "
            f"from the seed, drawn by {generator}. {self.judge.about}")

  def samples(self, caption: str, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """uint8 [NUM_SAMPLES, H, W, C] images of ``caption``, and the judge's predictions int
    [NUM_SAMPLES, A] (None without a judge). The inputs are jgan.sample's for ``--text
    caption --num NUM_SAMPLES --seed seed``: the same seed gives the same images."""
    import jax  # pylint: disable=import-outside-toplevel
    from jgan import imaging  # pylint: disable=import-outside-toplevel
    from jgan.data import captioned  # pylint: disable=import-outside-toplevel
    from jgan.evaluation import attributes  # pylint: disable=import-outside-toplevel
    from jgan.tasks import t2i  # pylint: disable=import-outside-toplevel
    config = self.run.config
    inputs = t2i.sentence_inputs(config, [caption] * NUM_SAMPLES, key=jax.random.key(seed),
                                 latent_dim=config.model.latent_dim)
    out = jax.device_get(self._fn(self.run.state, inputs))
    images = imaging.to_uint8(np.asarray(out["images"]))
    if "logits" not in out:
      return images, None
    _, counts = captioned.attribute_spec(config.data)
    return images, attributes.attribute_predictions(out["logits"], counts)

  def _status(self, caption: str, seed: int, milliseconds: float) -> str:
    """The status line of a drawing (with the missing judge's note, if any)."""
    read = " and read by the judge" if self.judge.network is not None else ""
    shown = textwrap.shorten(caption, 80, placeholder=" ...")
    status = (f"{READY}: {NUM_SAMPLES} samples of \u201c{shown}\u201d (seed {seed}) drawn{read} "
              f"in {milliseconds:.0f} ms.")
    return f"{status} {self.judge.missing}" if self.judge.missing else status

  def __call__(self, caption: Any, seed: Any) -> Drawing:
    error = caption_error(caption) or seed_error(seed)
    if error:
      return Drawing(None, None, error)
    caption, seed = caption.strip(), int(float(seed))
    start = time.perf_counter()
    try:
      images, predictions = self.samples(caption, seed)
    except Exception as e:  # pylint: disable=broad-except  (keep serving; the log has the rest)
      logger.exception("Drawing failed")
      return Drawing(None, None, f"Something went wrong ({type(e).__name__}: {e}). Try another "
                     "caption.")
    readings = None if predictions is None else [attribute_text(p) for p in predictions]
    return Drawing(images, readings, self._status(caption, seed,
                                                  (time.perf_counter() - start) * 1e3))


def load_model(workdir: str, *, best: bool = False, crop: str = "auto"
               ) -> AvatarTranslator | CaptionSampler:
  """The demo of the run in ``workdir``, by the task of its config: a :class:`CaptionSampler`
  for a text-to-image run, else an :class:`AvatarTranslator` (which refuses other tasks,
  naming the ones served). ``crop`` is for translation runs only.

  Raises:
    FileNotFoundError: no run or no checkpoint there.
    ValueError: a task the demo does not serve, or non-square translation sources.
  """
  from jgan import runs  # pylint: disable=import-outside-toplevel
  run = runs.load_run(workdir, best=best)
  if run.config.task == TEXT_TO_IMAGE:
    return CaptionSampler(run, workdir=workdir)
  return AvatarTranslator(run, crop=crop, workdir=workdir)


# ---------------------------------------------------------------------------------- the pages


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


def _page(title: str):
  """An empty gr.Blocks page with the demo's offline settings (use it in a ``with``)."""
  _offline_environment()
  import gradio as gr  # pylint: disable=import-outside-toplevel
  # Uploads and outputs are cached in GRADIO_TEMP_DIR (default /tmp/gradio): files older than
  # an hour are deleted every hour, so a long-running demo does not fill the disk.
  return gr.Blocks(title=title, analytics_enabled=False, delete_cache=(3600, 3600))


def _page_title(run: Run, what: str) -> str:
  return f"jgan {what}: {os.path.basename(os.path.normpath(run.workdir))} (step {run.step:,})"


def _translation_blocks(translator: AvatarTranslator):
  """The photo -> avatar page."""
  import gradio as gr  # pylint: disable=import-outside-toplevel
  title = _page_title(translator.run, "avatars")
  with _page(title) as app:
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


def _sample_grid(image_shape: tuple[int, int, int]) -> tuple[list[Any], list[Any]]:
  """NUM_SAMPLES image boxes (``#sample_I``) in rows of SAMPLE_COLUMNS, each with a Markdown
  (``#attributes_I``) under it for the judge's reading; returns (images, readings)."""
  import gradio as gr  # pylint: disable=import-outside-toplevel
  h, w, _ = image_shape
  images, readings = [], []
  with gr.Column(elem_id="samples"):
    for first in range(0, NUM_SAMPLES, SAMPLE_COLUMNS):
      with gr.Row():
        for i in range(first, min(first + SAMPLE_COLUMNS, NUM_SAMPLES)):
          with gr.Column(min_width=160):
            images.append(gr.Image(label=f"Sample {i + 1} ({h}x{w})", format="png",
                                   interactive=False, buttons=["download", "fullscreen"],
                                   elem_id=f"sample_{i}"))  # no "share": it would upload
            readings.append(gr.Markdown(elem_id=f"attributes_{i}"))
  return images, readings


def _caption_handler(sampler: CaptionSampler) -> Callable[[Any, Any], list[Any]]:
  """The Draw function: the enlarged samples, their readings and the status line; a refused
  caption or seed changes the status line only (gr.skip() keeps the samples shown)."""
  import gradio as gr  # pylint: disable=import-outside-toplevel

  def draw(caption: Any, seed: Any) -> list[Any]:
    drawing = sampler(caption, seed)
    if drawing.images is None:
      return [gr.skip()] * (2 * NUM_SAMPLES) + [drawing.status]
    readings = drawing.attributes or [""] * NUM_SAMPLES
    return [enlarge(image) for image in drawing.images] + list(readings) + [drawing.status]

  return draw


def _caption_blocks(sampler: CaptionSampler):
  """The caption -> samples page."""
  import gradio as gr  # pylint: disable=import-outside-toplevel
  title = _page_title(sampler.run, "text to image")
  with _page(title) as app:
    gr.Markdown(f"# {title}\n{sampler.description}\n\nType a caption and a seed, then press "
                f"Draw: {NUM_SAMPLES} images of the caption, one per noise vector (the same "
                "seed gives the same images). Nothing leaves this machine.")
    with gr.Row(equal_height=True):
      # No minimum/maximum on the seed box: Gradio would refuse a bad one with a bare toast;
      # the handler answers it in the status line.
      caption = gr.Textbox(label=f"Caption (at most {MAX_CAPTION_CHARS} characters)",
                           value=sampler.default_caption, scale=4, elem_id="caption")
      seed = gr.Number(label=f"Seed (0 to {MAX_SEED})", value=0, precision=0, scale=1,
                       elem_id="seed")
      button = gr.Button(f"Draw {NUM_SAMPLES} samples", variant="primary", scale=1,
                         elem_id="draw")
    status = gr.Textbox(label="Status", value=ASK_CAPTION, interactive=False, elem_id="status")
    images, readings = _sample_grid(sampler.run.image_shape)
    draw, outputs = _caption_handler(sampler), [*images, *readings, status]
    button.click(draw, inputs=[caption, seed], outputs=outputs, api_name="samples")
    caption.submit(draw, inputs=[caption, seed], outputs=outputs, api_name=False)
  return app


def build_blocks(model: AvatarTranslator | CaptionSampler):
  """The Gradio app around a loaded translator (photo -> avatar) or caption sampler."""
  if isinstance(model, CaptionSampler):
    return _caption_blocks(model)
  return _translation_blocks(model)


def build_app(workdir: str, *, best: bool = False, crop: str = "auto"):
  """Loads the run in ``workdir`` (:func:`load_model`, jit-compiled once) and returns its
  gr.Blocks.

  Raises:
    FileNotFoundError: no run or no checkpoint there.
    ValueError: a task the demo does not serve, or non-square translation sources.
  """
  return build_blocks(load_model(workdir, best=best, crop=crop))


def launch(app, *, host: str = DEFAULT_HOST, port: int = 7860, share: bool = False,
           block: bool = True, quiet: bool = False):
  """Serves ``app`` (one request at a time) with the offline settings of the docstring.

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
  parser.add_argument("--workdir", required=True, help="a DTN run (e.g. runs/dtn_bitmoji) or a "
                      "text-to-image run (e.g. runs/t2i_avatars)")
  parser.add_argument("--best", action="store_true", help="the best checkpoint by the run's "
                      "eval.best_metric instead of the latest")
  parser.add_argument("--crop", default="auto", choices=CROP_CHOICES,
                      help="DTN runs: the face crop (see jgan.faces.CROPS); auto: from the run's "
                      "source data")
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
    model = load_model(args.workdir, best=args.best, crop=args.crop)
  except (FileNotFoundError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  loaded = time.perf_counter()
  app = build_blocks(model)
  logger.info("Loaded %s at step %d in %.1f s (jit compile %.1f s); the app built in %.1f s "
              "(gradio import included).", model.run.workdir, model.run.step,
              loaded - start, model.compile_seconds, time.perf_counter() - loaded)
  launch(app, host=args.host, port=args.port, share=args.share)
  return 0


if __name__ == "__main__":
  sys.exit(main())
