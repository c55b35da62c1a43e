"""jgan.demo: the photo -> avatar handler on a tiny trained DTN (32x32 RGB sources, 32x32 grey
targets), every bad upload answered in the status line; the caption -> samples handler on a tiny
trained text-to-image run (32x32 RGB, an EMA generator, a tiny attribute judge), bad captions and
seeds and a missing judge answered in the status line; and both Gradio apps end to end in
headless Debian Chromium (uploads, a bad upload, the webcam through Chromium's fake camera;
captions, an empty one, an overlong one)."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import socket
import struct
import time
import zlib

import jax
import numpy as np
import pytest
import skimage.data as skimage_data  # pip scikit-image, a jgan dependency
from PIL import Image

from jgan import catalog, demo, runs
from jgan.data import captioned
from tests.conftest import set_dotted

CHROMIUM_HINT = ("Debian: apt-get install -y chromium (as root; bash .ci/run and "
                 "scripts/install.sh do it), or set JGAN_CHROMIUM=/path/to/chromium")


@pytest.fixture(scope="module")
def dtn_workdir(tiny_dtn_run):
  """A DTN trained for two steps (conftest's, shared by the session): f a tiny 32x32 RGB
  classifier, g drawing 32x32 grey images."""
  return tiny_dtn_run


@pytest.fixture(scope="module")
def translator(dtn_workdir):
  return demo.AvatarTranslator.from_workdir(dtn_workdir["dtn"])


@pytest.fixture(scope="module")
def t2i_workdirs(tmp_path_factory):
  """A tiny t2i_avatars run with an EMA generator and its tiny attribute judge (test_t2i_task's
  and test_t2i_eval's sizes), each trained for two steps; the run's evaluation reads the judge
  (eval.classifier_workdir)."""
  from jgan import train  # pylint: disable=import-outside-toplevel
  from tests.test_t2i_eval import _tiny_classifier  # pylint: disable=import-outside-toplevel
  from tests.test_t2i_task import tiny as tiny_t2i  # pylint: disable=import-outside-toplevel
  root = tmp_path_factory.mktemp("tiny_t2i")
  judge, workdir = str(root / "attributes_classifier"), str(root / "t2i")
  config = tiny_t2i(catalog.load_experiment("t2i_avatars"), **{
      "data.num_examples": 48, "data.captions_per_image": 2, "ema_decay": 0.9,
      "eval.classifier_workdir": judge})
  with jax.default_prng_impl("rbg"):
    train.run(_tiny_classifier(eval_every=0), judge, progress=False)
    train.run(config, workdir, progress=False)
  return {"t2i": workdir, "judge": judge}


@pytest.fixture(scope="module")
def sampler(t2i_workdirs):
  return demo.load_model(t2i_workdirs["t2i"])


def _sampler_with(workdir: str, **overrides) -> demo.CaptionSampler:
  """The demo of the run in ``workdir`` read with other config values (``{"a.b": value}``):
  another place for its judge, no evaluation metrics..."""
  config = set_dotted(runs.load_config(workdir), overrides)
  return demo.CaptionSampler(runs.load_run(workdir, config=config))


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
  return skimage_data.astronaut()


def _encode(image: np.ndarray, fmt: str = "PNG", **kwargs) -> bytes:
  buf = io.BytesIO()
  Image.fromarray(image).save(buf, fmt, **kwargs)
  return buf.getvalue()


def _png_claiming(width: int, height: int) -> bytes:
  """A 1x1 PNG whose header claims width x height (what a decompression bomb looks like)."""
  data = bytearray(_encode(np.zeros((1, 1, 3), np.uint8)))
  struct.pack_into(">II", data, 16, width, height)
  struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))
  return bytes(data)


# ------------------------------------------------------------------------------ the handler


def test_face_photo_gives_an_avatar(translator, astronaut, tmp_path):
  assert translator.size == 32 and translator.crop == "dlib"
  path = tmp_path / "astronaut.jpg"
  path.write_bytes(_encode(astronaut, "JPEG", quality=90))
  for image in (astronaut, str(path), _encode(astronaut)):
    face, avatar, status = translator(image)
    assert status.startswith(demo.READY), status
    assert "face 9" in status and "eyes levelled" in status  # her ~93 px face
    assert face.shape == (256, 256, 3) and face.dtype == np.uint8  # 32x32, 8x nearest
    assert avatar.shape == (256, 256, 3) and avatar.dtype == np.uint8  # grey 32x32 as RGB
    np.testing.assert_array_equal(avatar[..., 0], avatar[..., 2])
    np.testing.assert_array_equal(avatar[::8, ::8], avatar[7::8, 7::8])  # blocks of 8x8
  # The avatar is the run's own translation of the aligned face.
  from jgan import faces, imaging  # pylint: disable=import-outside-toplevel
  chip = faces.align_face(astronaut, size=32)
  translate = jax.jit(translator.run.task.translate)
  expected = imaging.to_uint8(translate(translator.run.state, imaging.to_float(chip[None])))[0]
  np.testing.assert_array_equal(translator(astronaut)[1][::8, ::8, :1], expected)
  assert "step **2**" in translator.description
  assert "32x32 grey avatars" in translator.description


def _transparent_png(astronaut, alpha: int) -> bytes:
  rgba = np.concatenate([astronaut, np.full((512, 512, 1), alpha, np.uint8)], axis=2)
  rgba[:, 420:, 3] = 0  # a transparent strip in any case
  return _encode(rgba)


@pytest.mark.parametrize("case,expected", [
    ("none", demo.ASK),
    ("text", "Not a readable image: The file is not an image"),
    ("truncated_jpeg", "Not a readable image: The image data is damaged or truncated"),
    ("missing_file", "Not a readable image: No image file at"),
    ("blank", "No face found in the 640x480 image"),
    ("noise", "No face found in the 640x480 image"),
    ("fully_transparent_png", "No face found in the 512x512 image"),  # alpha on white: blank
    ("huge_png", "Image too large: The image is 9000x5000 = 45.0 megapixels; the limit is 40"),
    ("bomb_png", "Image too large: The image is too large to open safely"),
    ("float_array", "Cannot use this image: Expected a uint8 image, got float64"),
])
def test_bad_uploads_give_a_message_not_an_exception(translator, astronaut, tmp_path, case,
                                                     expected):
  rng = np.random.default_rng(0)
  image = {
      "none": lambda: None,
      "text": lambda: b"GIF89a? no, just text",
      "truncated_jpeg": lambda: _encode(astronaut, "JPEG")[:4000],
      "missing_file": lambda: str(tmp_path / "gone.png"),
      "blank": lambda: _encode(np.full((480, 640, 3), 128, np.uint8)),
      "noise": lambda: _encode(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)),
      "fully_transparent_png": lambda: _transparent_png(astronaut, 0),
      "huge_png": lambda: _png_claiming(9000, 5000),
      "bomb_png": lambda: _png_claiming(30000, 30000),
      "float_array": lambda: astronaut / 255.0,
  }[case]()
  face, avatar, status = translator(image)
  assert face is None and avatar is None
  assert status.startswith(expected), status


@pytest.mark.parametrize("case", ["grey_png", "grey_array", "transparent_background_png",
                                  "palette_gif"])
def test_other_modes_work(translator, astronaut, case):
  grey = np.asarray(Image.fromarray(astronaut).convert("L"))
  image = {"grey_png": lambda: _encode(grey), "grey_array": lambda: grey,
           "transparent_background_png": lambda: _transparent_png(astronaut, 255),
           "palette_gif": lambda: _encode(astronaut, "GIF")}[case]()
  face, avatar, status = translator(image)
  assert status.startswith(demo.READY), status
  assert face.shape == avatar.shape == (256, 256, 3)


def test_needs_a_translation_run(dtn_workdir, capsys):
  with pytest.raises(ValueError, match="'classifier' run; jgan.demo needs a translation run"):
    demo.AvatarTranslator.from_workdir(dtn_workdir["encoder"])
  assert demo.main(["--workdir", dtn_workdir["encoder"]]) == 1
  assert demo.main(["--workdir", dtn_workdir["encoder"] + "_missing"]) == 1
  assert "no training run" in capsys.readouterr().err
  from jgan.tasks import dtn  # pylint: disable=import-outside-toplevel
  c = dtn.default_config()
  assert demo.default_crop(c) == "dlib"
  c.source_data.name = "celeb_a"
  assert demo.default_crop(c) == "celeba"
  assert demo.enlarge(np.zeros((150, 150, 1), np.uint8)).shape == (300, 300, 3)


# ------------------------------------------------------------------------- text to image

CAPTION = "a smiling face with long red hair, no glasses and no beard"


def _read_attributes(reading: str) -> dict[str, str]:
  """``"hair: long, hair_colour: red, ..."`` -> ``{"hair": "long", ...}``."""
  return dict(part.split(": ") for part in reading.split(", "))


def _assert_attribute_readings(readings: list[str]) -> None:
  """One reading per sample, naming every avatar attribute in order with one of its values."""
  assert len(readings) == demo.NUM_SAMPLES, readings
  for reading in readings:
    named = _read_attributes(reading)
    assert list(named) == list(captioned.AVATAR_ATTRIBUTES), reading
    for name, value in named.items():
      assert value in captioned.AVATAR_ATTRIBUTES[name], reading


def test_caption_gives_eight_samples_and_their_attributes(sampler, t2i_workdirs, tmp_path):
  assert isinstance(sampler, demo.CaptionSampler)
  drawing = sampler(CAPTION, 3)
  assert drawing.status.startswith(f"{demo.READY}: 8 samples of \u201c{CAPTION}\u201d (seed 3) "
                                   "drawn and read by the judge in "), drawing.status
  assert drawing.images.shape == (demo.NUM_SAMPLES, 32, 32, 3) == (
      demo.NUM_SAMPLES, *sampler.run.image_shape)
  assert drawing.images.dtype == np.uint8
  assert len({image.tobytes() for image in drawing.images}) > 1  # 8 noise vectors
  _assert_attribute_readings(drawing.attributes)
  # The same seed, the same images; another seed, others.
  np.testing.assert_array_equal(sampler(CAPTION, 3).images, drawing.images)
  assert not np.array_equal(sampler(CAPTION, 4).images, drawing.images)
  # jgan.sample's images of the caption (its inputs, the EMA generator).
  from jgan import sample  # pylint: disable=import-outside-toplevel
  paths = sample.export_text_samples(t2i_workdirs["t2i"], sentences=[CAPTION], num=8,
                                     out=str(tmp_path / "sample"), seed=3)
  np.testing.assert_array_equal(np.stack([np.asarray(Image.open(p)) for p in paths]),
                                drawing.images)
  # The longest caption allowed (surrounding spaces do not count).
  long_caption = "a face " * (demo.MAX_CAPTION_CHARS // 7) + "x" * (demo.MAX_CAPTION_CHARS % 7)
  assert len(long_caption) == demo.MAX_CAPTION_CHARS
  assert sampler(f"  {long_caption}\n", 0).status.startswith(demo.READY)
  text = sampler.description
  assert "step **2**" in text and "32x32 RGB images" in text and "EMA generator" in text, text
  assert f"the judge `avatar_attributes_classifier` (`{t2i_workdirs['judge']}`)" in text, text


@pytest.mark.parametrize("caption,seed,expected", [
    ("", 0, "Empty caption: type what to draw, 1 to 300 characters."),
    (" \n ", 0, "Empty caption: type what to draw, 1 to 300 characters."),
    (None, 0, "Empty caption: type what to draw, 1 to 300 characters."),
    ("x" * 301, 0, "Caption too long: 301 characters; the limit is 300."),
    ("y" * 5000, 0, "Caption too long: 5,000 characters; the limit is 300."),
    (["a", "list"], 0, "The caption must be text, got list."),
    (CAPTION, None, "No seed: type one (a seed is an integer from 0 to 2147483647)."),
    (CAPTION, -1, "Bad seed -1: a seed is an integer from 0 to 2147483647."),
    (CAPTION, 1.5, "Bad seed 1.5: a seed is an integer from 0 to 2147483647."),
    (CAPTION, 2**31, "Bad seed 2147483648: a seed is an integer from 0 to 2147483647."),
    (CAPTION, "three", "Bad seed 'three': a seed is an integer from 0 to 2147483647."),
])
def test_bad_captions_and_seeds_give_a_message(sampler, caption, seed, expected):
  drawing = sampler(caption, seed)
  assert drawing.images is None and drawing.attributes is None
  assert drawing.status.startswith(expected), drawing.status


def test_missing_judge_gives_samples_and_the_command_that_trains_it(t2i_workdirs, tmp_path,
                                                                    monkeypatch):
  monkeypatch.chdir(tmp_path)  # no runs/avatar_attributes_classifier here
  missing = _sampler_with(t2i_workdirs["t2i"], **{"eval.classifier_workdir": ""})
  drawing = missing(CAPTION, 3)
  assert drawing.images.shape == (demo.NUM_SAMPLES, 32, 32, 3) and drawing.attributes is None
  assert drawing.status.startswith(f"{demo.READY}: 8 samples"), drawing.status
  assert drawing.status.endswith(
      "No attributes: the judge 'avatar_attributes_classifier' is not trained (no checkpoint in "
      "runs/avatar_attributes_classifier); train it with: python launch.py --experiment "
      "avatar_attributes_classifier"), drawing.status
  assert "No attributes: the judge" in missing.description
  # A run whose evaluation reads no judge: samples only, nothing to fix.
  unjudged = _sampler_with(t2i_workdirs["t2i"], **{"eval.metrics": ()})
  drawing = unjudged(CAPTION, 3)
  assert drawing.images.shape[0] == demo.NUM_SAMPLES and drawing.attributes is None
  assert re.fullmatch(r"Done: 8 samples of \u201c.*\u201d \(seed 3\) drawn in \d+ ms\.",
                      drawing.status), drawing.status
  assert "This run has no attribute judge" in unjudged.description


def test_judges_of_other_runs(tiny_encoder):
  """t2i_flowers reads no judge; a judge of another kind is named with what is wrong; the
  command trains a judge where the run looks for it."""
  flowers = demo.load_judge(catalog.load_experiment("t2i_flowers"), (64, 64, 3))
  assert flowers.network is None and flowers.missing == ""
  assert "no attribute judge" in flowers.about and "oxford_flowers102" in flowers.about
  config = set_dotted(catalog.load_experiment("t2i_avatars"),
                      {"eval.classifier_workdir": tiny_encoder})
  wrong = demo.load_judge(config, (32, 32, 3))
  assert wrong.network is None
  assert wrong.missing.startswith(f"No attributes: the judge in {tiny_encoder} cannot be used "
                                  "(The classifier classifier:"), wrong.missing
  assert "needs an attribute classifier with 19" in wrong.missing
  from jgan.tasks import t2i  # pylint: disable=import-outside-toplevel
  judge = t2i.prerequisites(config)["judge"]
  assert demo.train_command(judge) == ("python launch.py --experiment "
                                       f"avatar_attributes_classifier --workdir {tiny_encoder}")


def test_load_model_dispatches_on_the_task(dtn_workdir, translator, capsys):
  assert isinstance(demo.load_model(dtn_workdir["dtn"]), demo.AvatarTranslator)
  with pytest.raises(ValueError, match="'dtn' run; CaptionSampler needs a text-to-image run"):
    demo.CaptionSampler(translator.run)
  assert demo.main(["--workdir", dtn_workdir["encoder"]]) == 1
  assert ("'classifier' run; jgan.demo needs a translation run (task 'dtn', e.g. --experiment "
          "dtn_digits) or a text-to-image run (task 't2i', e.g. --experiment t2i_avatars)."
          ) in capsys.readouterr().err


# --------------------------------------------------------------------------- in the browser


def _chromium() -> str:
  path = os.environ.get("JGAN_CHROMIUM") or shutil.which("chromium") or shutil.which(
      "chromium-browser")
  if not path or not os.access(path, os.X_OK):
    pytest.fail(f"The browser test needs Chromium and found none. {CHROMIUM_HINT}.")
  return path


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _webcam_video(image: np.ndarray, path: str) -> str:
  """One frame of ``image`` as a YUV4MPEG2 (4:2:0) file: Chromium's fake camera shows it."""
  ycc = np.asarray(Image.fromarray(image).convert("YCbCr"))
  h, w = ycc.shape[:2]
  with open(path, "wb") as f:
    f.write(f"YUV4MPEG2 W{w} H{h} F30:1 Ip A1:1 C420jpeg\nFRAME\n".encode())
    f.write(ycc[..., 0].tobytes() + ycc[::2, ::2, 1].tobytes() + ycc[::2, ::2, 2].tobytes())
  return path


def _status_after(page, action, *, expect: str, timeout_s: float = 60) -> str:
  """Runs ``action``, waits for the status line to start with ``expect`` (a new value) and the
  app to finish (no pending output); returns the status."""
  previous = page.input_value("#status textarea")
  action()
  try:
    page.wait_for_function(
        "([prev, expect]) => { const s = document.querySelector('#status textarea');"
        " return s && s.value !== prev && s.value.startsWith(expect)"
        " && !document.querySelector('.pending'); }",
        arg=[previous, expect], timeout=timeout_s * 1000)
  except Exception as e:  # pylint: disable=broad-except  (say what the page shows)
    raise AssertionError(f"waited {timeout_s} s for a status starting {expect!r}; the page "
                         f"shows {page.input_value('#status textarea')!r}") from e
  return page.input_value("#status textarea")


def _wait_for_images(page, selector: str, *, count: int = 1, width: int = 256) -> None:
  """Waits until ``selector`` matches ``count`` images, all loaded and ``width`` px wide."""
  page.wait_for_function(
      "([selector, count, width]) => { const images = [...document.querySelectorAll(selector)];"
      " return images.length === count"
      " && images.every(i => i.complete && i.naturalWidth === width); }",
      arg=[selector, count, width])


@contextlib.contextmanager
def _served_page(app, *, browser_args: tuple[str, ...] = (), permissions: tuple[str, ...] = ()):
  """Serves ``app`` on a free port and opens it in headless Chromium (``browser_args``,
  ``permissions``); yields the page once its status line is there. Afterwards stops both and
  fails if the page asked for anything but this server (the demo is offline)."""
  chromium = _chromium()
  try:
    from playwright.sync_api import sync_playwright  # pylint: disable=import-outside-toplevel
  except ImportError:
    pytest.fail("The browser test needs playwright: pip install -e '.[test]' (pip playwright; "
                f"no browser download: it drives the system Chromium). {CHROMIUM_HINT}.")
  port = _free_port()
  start = time.perf_counter()
  demo.launch(app, port=port, block=False, quiet=True)
  external = []
  try:
    with sync_playwright() as p:
      browser = p.chromium.launch(executable_path=chromium, args=list(browser_args))
      context = browser.new_context(permissions=list(permissions),
                                    viewport={"width": 1280, "height": 760})
      page = context.new_page()
      page.on("request", lambda r: None if r.url.startswith(
          (f"http://127.0.0.1:{port}", "data:", "blob:")) else external.append(r.url))
      page.goto(f"http://127.0.0.1:{port}/")
      page.wait_for_selector("#status textarea")
      print(f"app up and page loaded in {time.perf_counter() - start:.1f} s")
      yield page
      browser.close()
  finally:
    app.close()
  assert not external, f"the page tried to reach the internet: {external}"


def test_app_in_chromium(translator, astronaut, tmp_path):
  photo = tmp_path / "astronaut.png"
  photo.write_bytes(_encode(astronaut))
  second = tmp_path / "astronaut_again.jpg"
  second.write_bytes(_encode(astronaut[:, ::-1], "JPEG", quality=90))
  not_image = tmp_path / "notes.png"
  not_image.write_bytes(b"these are notes, not a picture")
  no_face = tmp_path / "noise.png"
  no_face.write_bytes(_encode(np.random.default_rng(0).integers(0, 256, (300, 400, 3),
                                                                dtype=np.uint8)))
  camera = _webcam_video(np.asarray(Image.fromarray(astronaut).resize((640, 640))),
                         str(tmp_path / "camera.y4m"))
  fake_camera = ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                 f"--use-file-for-fake-video-capture={camera}")
  with _served_page(demo.build_blocks(translator), browser_args=fake_camera,
                    permissions=("camera",)) as page:
    assert page.input_value("#status textarea") == demo.ASK
    upload = page.locator("#photo input[type=file]")

    # A face: the aligned face and the avatar appear, the status says done.
    t0 = time.perf_counter()
    status = _status_after(page, lambda: upload.set_input_files(str(photo)), expect=demo.READY)
    print(f"upload -> avatar in {time.perf_counter() - t0:.2f} s: {status}")
    assert status.startswith(demo.READY), status
    for elem in ("#face img", "#avatar img"):
      _wait_for_images(page, elem)
    page.screenshot(path=str(tmp_path / "demo.png"))
    assert os.path.getsize(tmp_path / "demo.png") > 10_000

    # Not an image, then no face: messages in the page, and the server keeps serving.
    status = _status_after(page, lambda: upload.set_input_files(str(not_image)),
                           expect="Not a readable image: The file is not an image")
    assert page.locator("#avatar img").count() == 0
    page.screenshot(path=str(tmp_path / "not_an_image.png"))
    _status_after(page, lambda: upload.set_input_files(str(no_face)), expect="No face found")
    _status_after(page, lambda: upload.set_input_files(str(second)), expect=demo.READY)
    _wait_for_images(page, "#avatar img")

    # The webcam: Chromium's fake camera shows the astronaut; one capture. (Switching to the
    # webcam clears the photo: the status asks for one.)
    _status_after(page, page.locator('#photo button[aria-label="Capture from camera"]').click,
                  expect=demo.ASK)
    page.get_by_text("Click to Access Webcam").click()
    capture = page.locator('#photo button[aria-label="capture photo"]')
    capture.wait_for()
    page.wait_for_timeout(500)  # the first frames
    status = _status_after(page, capture.click, expect=demo.READY)
    assert "640x640 photo" in status, status


def test_caption_page_in_chromium(sampler, tmp_path):
  with _served_page(demo.build_blocks(sampler)) as page:
    assert page.input_value("#status textarea") == demo.ASK_CAPTION
    caption, draw = page.locator("#caption textarea"), page.locator("#draw")

    # A caption and a seed: 8 samples, each with the judge's reading under it.
    caption.fill(CAPTION)
    page.locator("#seed input").fill("3")
    t0 = time.perf_counter()
    status = _status_after(page, draw.click, expect=demo.READY)
    print(f"caption -> samples in {time.perf_counter() - t0:.2f} s: {status}")
    assert "(seed 3) drawn and read by the judge" in status, status
    _wait_for_images(page, "#samples img", count=demo.NUM_SAMPLES)
    _assert_attribute_readings([page.inner_text(f"#attributes_{i}").strip()
                                for i in range(demo.NUM_SAMPLES)])
    page.screenshot(path=str(tmp_path / "t2i.png"))
    assert os.path.getsize(tmp_path / "t2i.png") > 10_000

    # An empty caption, then an overlong one (Enter draws too): messages in the status line,
    # the samples stay, and the server keeps serving.
    caption.fill("")
    _status_after(page, draw.click, expect="Empty caption: type what to draw, 1 to 300")
    assert page.locator("#samples img").count() == demo.NUM_SAMPLES
    caption.fill("x" * (demo.MAX_CAPTION_CHARS + 1))
    _status_after(page, lambda: caption.press("Enter"), expect="Caption too long: 301 characters")
    caption.fill("a serious face with short black hair")
    status = _status_after(page, draw.click, expect=demo.READY)
    assert "(seed 3)" in status, status


def test_page_names_the_run_by_the_path_given(dtn_workdir, monkeypatch):
  """A screenshot must not show the absolute path of the machine that took it."""
  parent, name = os.path.split(os.path.normpath(dtn_workdir["dtn"]))
  monkeypatch.chdir(parent)
  text = demo.AvatarTranslator.from_workdir(name).description
  assert f"(`{name}`)" in text and parent not in text
