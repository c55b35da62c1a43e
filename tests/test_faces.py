"""jgan.faces: Haar-cascade detection and alignment on real faces (scikit-image's astronaut and
LFW crops), checked against dlib's own aligned chip; bad inputs and the pixel limit."""

from __future__ import annotations

import io
import math
import os
import struct
import zlib

import numpy as np
import pytest
import skimage.data as skimage_data  # pip scikit-image, a jgan dependency
from PIL import Image

from jgan import faces

DLIB_REFERENCE = os.path.join(os.path.dirname(__file__), "data", "dlib_reference.npz")


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
  return skimage_data.astronaut()  # 512x512 RGB; Eileen Collins' face is about x 177-270, y 67-160


def _lfw(i: int) -> np.ndarray:
  """LFW crop i (25x25 grey) enlarged to 150x150, with a 75 px border repeating its edge."""
  crop = np.round(skimage_data.lfw_subset()[i] * 255).astype(np.uint8)
  big = np.asarray(Image.fromarray(crop).resize((150, 150), Image.Resampling.BICUBIC))
  return np.pad(big, 75, mode="edge")


def _rotate(image: np.ndarray, degrees: float) -> np.ndarray:
  """Counter-clockwise (as displayed) about the centre, edges repeated."""
  import cv2  # pylint: disable=import-outside-toplevel
  h, w = image.shape[:2]
  m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
  return cv2.warpAffine(image, m, (w, h), borderMode=cv2.BORDER_REPLICATE)


def test_astronaut_face_found_with_a_plausible_box(astronaut):
  boxes = faces.detect_faces(astronaut)
  assert boxes, "no face found in skimage.data.astronaut()"
  x, y, w, h = boxes[0]
  assert 70 <= w <= 130 and 0.9 <= h / w <= 1.1
  assert 190 <= x + w / 2 <= 260 and 80 <= y + h / 2 <= 150  # her face, not the flag or suit
  assert all(b.w * b.h <= w * h for b in boxes)  # largest first


def test_aligned_chip_matches_dlibs_chip(astronaut):
  """The 'dlib' crop is close to dlib's own get_face_chip (tests/data/dlib_reference.npz): the
  dlib face ResNet sees the same person (descriptor distance well under dlib's 0.6)."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from jgan.models import dlib_resnet  # pylint: disable=import-outside-toplevel
  with np.load(DLIB_REFERENCE) as f:
    reference, names = f["images"], list(f["names"])
  dlib_chip = reference[names.index("astronaut")]
  others = reference[[names.index("lfw_0"), names.index("lfw_50")]]
  chip = faces.align_face(astronaut, size=150)
  assert chip.shape == (150, 150, 3) and chip.dtype == np.uint8
  variables = dlib_resnet.load_dlib_face_resnet()
  x = jnp.asarray(np.stack([chip, dlib_chip, *others]), jnp.float32) / 127.5 - 1
  d = np.asarray(jax.jit(dlib_resnet.DlibFaceResNet().apply)(variables, x))
  mine = np.linalg.norm(d[0] - d[1])
  assert mine < 0.4, mine  # measured 0.26 (different people: 0.76-0.9)
  assert mine < min(np.linalg.norm(d[1] - d[2]), np.linalg.norm(d[1] - d[3]))


def test_lfw_faces_found_and_non_faces_not():
  found = sum(bool(faces.detect_faces(_lfw(i))) for i in range(0, 100, 5))  # 20 faces
  false = sum(bool(faces.detect_faces(_lfw(i))) for i in range(100, 200, 5))  # 20 non-faces
  assert found >= 17, found  # 97 of all 100 when measured
  assert false <= 2, false  # 0 of all 100


@pytest.mark.parametrize("kind", ["blank", "noise", "tiny"])
def test_no_face_raises(kind):
  rng = np.random.default_rng(0)
  image = {"blank": np.full((300, 400, 3), 200, np.uint8),
           "noise": rng.integers(0, 256, (300, 400, 3), dtype=np.uint8),
           "tiny": np.zeros((10, 10, 3), np.uint8)}[kind]
  assert faces.detect_faces(image) == []
  with pytest.raises(faces.NoFaceError, match="No face found in the 400x300 image"
                     if kind != "tiny" else "No face found"):
    faces.align_face(image, size=32)


def test_output_shape_dtype_and_crops(astronaut):
  for size in (32, 64, 150):
    chip = faces.align_face(astronaut, size=size)
    assert chip.shape == (size, size, 3) and chip.dtype == np.uint8
  dlib_crop = faces.locate_face(astronaut)
  celeba = faces.locate_face(astronaut, crop="celeba")
  assert celeba.box == dlib_crop.box
  assert celeba.side / dlib_crop.side == pytest.approx(
      faces.CROPS["celeba"].scale / faces.CROPS["dlib"].scale)
  assert celeba.center[1] < dlib_crop.center[1]  # centred higher: eyes half-way down
  with pytest.raises(ValueError, match="Unknown crop 'x'; known: dlib, celeba"):
    faces.align_face(astronaut, size=32, crop="x")
  with pytest.raises(ValueError, match="size"):
    faces.align_face(astronaut, size=0)
  with pytest.raises(ValueError, match="uint8"):
    faces.align_face(astronaut / 255.0, size=32)


def test_eyes_level_a_rolled_face(astronaut):
  upright = faces.locate_face(astronaut)
  assert upright.eyes is not None and abs(math.degrees(upright.angle)) < 6
  rolled = faces.locate_face(_rotate(astronaut, 12))  # counter-clockwise: the eye line rises
  assert rolled.eyes is not None
  assert math.degrees(rolled.angle) == pytest.approx(math.degrees(upright.angle) - 12, abs=4)
  assert faces.locate_face(astronaut, level_eyes=False).angle == 0.0
  # In the levelled chip the eyes are level; without levelling the roll stays.
  def roll_in_chip(level_eyes):
    chip = faces.align_face(_rotate(astronaut, 12), size=256, crop="celeba",
                            level_eyes=level_eyes)
    return math.degrees(faces.locate_face(chip).angle)
  assert abs(roll_in_chip(True)) < 4
  assert roll_in_chip(False) == pytest.approx(math.degrees(rolled.angle), abs=4)


def test_grey_rgba_and_palette_inputs(astronaut):
  box = faces.detect_faces(astronaut)[0]
  grey = np.asarray(Image.fromarray(astronaut).convert("L"))
  for image in (grey, grey[..., None], Image.fromarray(grey)):
    assert faces.align_face(image, size=32).shape == (32, 32, 3)
  chip = faces.align_face(grey, size=32)
  np.testing.assert_array_equal(chip[..., 0], chip[..., 1])  # grey in, grey out (as RGB)
  rgba = np.concatenate([astronaut, np.full((512, 512, 1), 255, np.uint8)], axis=2)
  rgba[:, 400:, 3] = 0  # a transparent strip: white, far from the face
  assert np.allclose(faces.detect_faces(rgba)[0], box, atol=3)
  assert faces.align_face(rgba, size=32).shape == (32, 32, 3)
  rgba[..., 3] = 0  # all transparent: all white, alpha on white as jgan.data.transforms does
  with pytest.raises(faces.NoFaceError):
    faces.align_face(rgba, size=32)
  palette = Image.fromarray(astronaut).quantize(64)
  assert palette.mode == "P"
  assert faces.align_face(palette, size=32).shape == (32, 32, 3)


def test_large_image_is_detected_on_a_smaller_copy(astronaut):
  big = np.asarray(Image.fromarray(astronaut).resize((2048, 2048), Image.Resampling.BICUBIC))
  (x, y, w, h), = faces.detect_faces(big)[:1]
  small = faces.detect_faces(astronaut)[0]
  assert w == pytest.approx(4 * small.w, rel=0.15)
  assert x + w / 2 == pytest.approx(4 * (small.x + small.w / 2), abs=0.1 * w)
  chip = faces.align_face(big, size=32)
  assert chip.shape == (32, 32, 3)


def _png_claiming(width: int, height: int) -> bytes:
  """A PNG whose header says width x height (the pixel data is a 1x1 image's: never decoded)."""
  buf = io.BytesIO()
  Image.new("RGB", (1, 1)).save(buf, "PNG")
  data = bytearray(buf.getvalue())
  struct.pack_into(">II", data, 16, width, height)  # IHDR's data starts at byte 16
  struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))  # IHDR's CRC
  return bytes(data)


def test_pixel_limit():
  # Header only: the check comes before any decoding (a real 48 MP PNG is never needed).
  with pytest.raises(faces.ImageTooLargeError, match="8000x6000 = 48.0 megapixels; the limit "
                     "is 40 MP"):
    faces.load_image(_png_claiming(8000, 6000))
  with pytest.raises(faces.ImageTooLargeError):  # over Pillow's own decompression-bomb limit
    faces.load_image(_png_claiming(20000, 20000))
  huge = np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (7000, 6000, 3))  # no memory
  with pytest.raises(faces.ImageTooLargeError, match="42.0 megapixels"):
    faces.align_face(huge, size=32)
  with pytest.raises(faces.ImageTooLargeError):
    faces.load_image(_png_claiming(20, 20), max_pixels=100)
  assert faces.load_image(_png_claiming(1, 1)).shape == (1, 1, 3)


def test_load_image_decodes_modes_exif_and_reports_bad_files(tmp_path, astronaut):
  with pytest.raises(faces.UnreadableImageError, match="not an image"):
    faces.load_image(b"this is not an image")
  buf = io.BytesIO()
  Image.fromarray(astronaut).save(buf, "JPEG")
  with pytest.raises(faces.UnreadableImageError, match="damaged or truncated"):
    faces.load_image(buf.getvalue()[:5000])
  with pytest.raises(FileNotFoundError):
    faces.load_image(str(tmp_path / "missing.png"))
  # Transparent PNG: alpha on white.
  rgba = Image.fromarray(astronaut).convert("RGBA")
  rgba.putalpha(0)
  rgba.save(tmp_path / "clear.png")
  np.testing.assert_array_equal(faces.load_image(tmp_path / "clear.png"), 255)
  # Grey PNG -> RGB.
  Image.fromarray(astronaut).convert("L").save(tmp_path / "grey.png")
  grey = faces.load_image(str(tmp_path / "grey.png"))
  assert grey.shape == (512, 512, 3)
  # EXIF orientation 6 (rotate 90 clockwise to display), as phones write it.
  exif = Image.Exif()
  exif[0x0112] = 6
  Image.fromarray(astronaut[:, :300]).save(tmp_path / "phone.jpg", exif=exif)
  assert faces.load_image(tmp_path / "phone.jpg").shape == (300, 512, 3)
  # A big JPEG is decoded at a reduced scale, keeping at least LOAD_MIN_SIDE.
  Image.new("RGB", (3400, 1000), (90, 120, 150)).save(tmp_path / "wide.jpg")
  wide = faces.load_image(tmp_path / "wide.jpg")
  assert faces.LOAD_MIN_SIDE <= wide.shape[1] < 3400 and wide.shape[2] == 3
