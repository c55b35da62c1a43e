"""Face detection and alignment offline, with the Haar cascades OpenCV ships.

    image = faces.load_image("photo.jpg")               # uint8 RGB; refuses > 40 MP before decoding
    boxes = faces.detect_faces(image)                   # [Box(x, y, w, h), ...], largest first
    chip = faces.align_face(image, size=150)            # uint8 [150, 150, 3]; NoFaceError if none

No network and no model download: pip ``opencv-python-headless`` (4.x; OpenCV 5 dropped the
cascades) bundles the cascades used here (``haarcascade_frontalface_default``,
``haarcascade_frontalface_alt2``, ``haarcascade_eye_tree_eyeglasses``, ``haarcascade_eye``) in
``cv2.data.haarcascades``.

Detection (:func:`detect_faces`): the image is converted to grey and, when its long side
exceeds :data:`DETECT_MAX_SIDE` (640 px), shrunk to it (``INTER_AREA``) for speed, then
histogram-equalised; the frontal-face cascade runs on that copy (scale step 1.1, 3 neighbours,
faces at least :data:`MIN_FACE_FRACTION` of the short side and 24 px), and each candidate is
kept only if a second cascade (``haarcascade_frontalface_alt2``) also finds a face of about its
size and place (this drops, e.g., a "face" on the astronaut's suit that the first cascade
finds at some scales). Boxes are mapped back to the full image. Frontal, upright-ish faces only
(the cascades tolerate about +-15 degrees of roll).

Alignment (:func:`align_face`): the largest face's box ``(x, y, w, h)`` gives a square crop of
side ``scale * w`` centred ``shift * w`` below the box centre (along the face's vertical axis).
With ``level_eyes`` (default) the eye cascades (with and without glasses) search the box's
upper part; when they find one plausible eye on each side (level within 25 degrees, 0.25-0.65 w
apart, similar sizes) the crop is rotated by the eye line's angle so the eyes come out level;
otherwise it stays upright. The square is cut out of the full-resolution image (shrunk first
with ``INTER_AREA`` when it is over twice ``size``, then rotated and resampled bilinearly;
pixels outside the image repeat its edge) and resized to ``size x size``. The crop presets
(:data:`CROPS`, the margin around the box):

* ``"dlib"`` (default): ``scale`` 1.08, ``shift`` 0.09: dlib's aligned face chips
  (``dlib.get_face_chip(img, shape, size=150, padding=0.25)``: eyebrows to chin, the input of
  dlib's face ResNet, :mod:`jgan.models.dlib_resnet`), and within a few per cent the tight LFW
  crops of ``skimage.data.lfw_subset`` (:mod:`jgan.data.lfw`). Fitted with
  ``scripts/calibrate_faces.py`` (dlib 20.0.1: frontal detector + 5-point landmarks) on the 90
  faces dlib and jgan both find in the astronaut, Grace Hopper (matplotlib's sample) and the 448
  images of Debian's ``opencv-doc`` (a few rolled by -12 and +8 degrees): dlib's chip side is a
  median 1.08 box widths (std 0.12), its centre 0.09 w below the box centre (std 0.02). dlib's
  face descriptors of jgan's chip and of dlib's own chip of the same face are a median 0.19
  apart (90%: 0.34, max 0.54; dlib's same-person threshold is 0.6). Both eyes were found for 44
  of the 90 faces; the eye line was then within 5 degrees of dlib's angle for 41 (median error
  1.6 degrees, max 8.2; the faces' median roll is 2.9 degrees).
* ``"celeba"``: ``scale`` 1.80, ``shift`` -0.09: the 178x178 centre crop of CelebA's
  ``img_align_celeba`` (what DCGAN-style 64x64 CelebA pipelines and :mod:`jgan.data` use): the
  eyes 0.21 of the side apart and half-way down, against 0.35 apart and 0.32 from the top in
  dlib's chips (measured on the faces above); derived from the dlib fit, not fitted to CelebA.

Detection quality on the same photos: 19 boxes dlib does not confirm, about half of them faces
(drawn, dark or pixelated) and half false positives (windows, lettering, a dome, a lens); on
the LFW crops (enlarged to 150 px, edge-padded), faces in 98 of 100, in none of the 100
non-face crops.

Inputs: uint8 ``[H, W]``, ``[H, W, 1]``, ``[H, W, 3]`` or ``[H, W, 4]`` arrays or PIL images of
any mode; grey, palette and alpha images become RGB with alpha composited on white
(:func:`jgan.data.transforms.to_rgb`). Images over :data:`MAX_PIXELS` (40 MP) raise
:class:`ImageTooLargeError`; :func:`load_image` checks the header before decoding, applies the
EXIF orientation (phone photos) and decodes large JPEGs at a reduced DCT scale (long side kept at
least :data:`LOAD_MIN_SIDE`).

Speed (2 CPU cores shared with training runs): ``align_face`` on the 512x512 astronaut takes
0.13 s, most of it the face cascades; a 3000x3000 JPEG is decoded and aligned in 0.22 s.
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
import threading
import warnings
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from jgan.data import transforms

MAX_PIXELS = 40_000_000  # larger images are refused (ImageTooLargeError), before decoding
DETECT_MAX_SIDE = 640  # detection runs on a copy whose long side is at most this
LOAD_MIN_SIDE = 1600  # load_image decodes big JPEGs at a reduced scale, keeping this long side
MIN_FACE_FRACTION = 0.08  # smallest face searched for, as a fraction of the image's short side
MIN_FACE_PX = 24  # ... and in pixels of the detection copy (the cascade's window)
EYE_SEARCH_WIDTH = 160  # the face box is resampled to this width for the eye search

FACE_CASCADE = "haarcascade_frontalface_default.xml"
CONFIRM_CASCADE = "haarcascade_frontalface_alt2.xml"  # a second opinion on each candidate
EYE_CASCADES = ("haarcascade_eye_tree_eyeglasses.xml", "haarcascade_eye.xml")  # in turn
EYE_NEIGHBORS = 3


class NoFaceError(ValueError):
  """No face was found in the image."""


class ImageTooLargeError(ValueError):
  """The image has more than the allowed number of pixels."""


class UnreadableImageError(ValueError):
  """The input is not an image this module can decode."""


class Box(NamedTuple):
  """A face box in pixels of the full image: left, top, width, height."""
  x: int
  y: int
  w: int
  h: int


@dataclasses.dataclass(frozen=True)
class Crop:
  """A square crop of side ``scale * w`` centred ``shift * w`` below a face box's centre."""
  scale: float
  shift: float


CROPS = {
    "dlib": Crop(scale=1.08, shift=0.09),
    "celeba": Crop(scale=1.80, shift=-0.09),
}


@dataclasses.dataclass(frozen=True)
class Alignment:
  """Where the aligned crop comes from: the face box, the eyes (None: not found or not used),
  the crop's centre (x, y), side and rotation (radians, the eye line's angle in the image)."""
  box: Box
  eyes: tuple[tuple[float, float], tuple[float, float]] | None
  center: tuple[float, float]
  side: float
  angle: float


# ------------------------------------------------------------------------------------ decoding


def _check_pixels(width: int, height: int, max_pixels: int | None) -> None:
  if max_pixels is not None and width * height > max_pixels:
    raise ImageTooLargeError(
        f"The image is {width}x{height} = {width * height / 1e6:.1f} megapixels; the limit is "
        f"{max_pixels / 1e6:.0f} MP. Use a smaller photo.")


def load_image(source, *, max_pixels: int | None = MAX_PIXELS) -> np.ndarray:
  """An image file (path, bytes or binary file object) -> uint8 RGB ``[H, W, 3]``.

  The size is checked from the header before decoding; the EXIF orientation is applied; the
  first frame of an animation is used; any mode becomes RGB (alpha on white). JPEGs with a long
  side over twice :data:`LOAD_MIN_SIDE` are decoded at a reduced DCT scale.

  Raises:
    ImageTooLargeError: over ``max_pixels`` pixels (or Pillow's own decompression-bomb limit).
    UnreadableImageError: not an image Pillow can decode (or a truncated one).
    FileNotFoundError: a path that does not exist.
  """
  if isinstance(source, (bytes, bytearray, memoryview)):
    source = io.BytesIO(bytes(source))
  elif isinstance(source, (str, os.PathLike)) and not os.path.isfile(source):
    raise FileNotFoundError(f"No image file at {os.fspath(source)}.")
  try:
    with warnings.catch_warnings():
      warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit applies
      image = Image.open(source)
  except Image.DecompressionBombError as e:
    raise ImageTooLargeError(f"The image is too large to open safely ({e}).") from e
  except UnidentifiedImageError as e:
    raise UnreadableImageError("The file is not an image that can be read (tried PNG, JPEG, "
                               "WebP, GIF, BMP, TIFF... with Pillow).") from e
  except OSError as e:
    raise UnreadableImageError(f"The image could not be read ({e}).") from e
  with image:
    _check_pixels(image.width, image.height, max_pixels)
    try:
      if image.format == "JPEG" and max(image.size) > 2 * LOAD_MIN_SIDE:
        scale = LOAD_MIN_SIDE / max(image.size)
        image.draft("RGB", (math.ceil(image.width * scale), math.ceil(image.height * scale)))
      with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        image.load()
    except (OSError, SyntaxError, ValueError) as e:  # truncated or corrupt data
      raise UnreadableImageError(f"The image data is damaged or truncated ({e}).") from e
    try:
      oriented = ImageOps.exif_transpose(image)
    except Exception:  # pylint: disable=broad-except  (bad EXIF: keep the stored orientation)
      oriented = None
    return np.array(transforms.to_rgb(oriented if oriented is not None else image),
                    dtype=np.uint8)


def as_rgb(image, *, max_pixels: int | None = MAX_PIXELS) -> np.ndarray:
  """A uint8 array (``[H, W]``, ``[H, W, 1|3|4]``) or PIL image -> uint8 RGB ``[H, W, 3]``.

  Grey is repeated, alpha is composited on white, as :func:`jgan.data.transforms.to_rgb` does.
  Raises ImageTooLargeError over ``max_pixels``, ValueError for other dtypes or shapes.
  """
  if isinstance(image, Image.Image):
    _check_pixels(image.width, image.height, max_pixels)
    return np.array(transforms.to_rgb(image), dtype=np.uint8)
  array = np.asarray(image)
  if array.dtype != np.uint8:
    raise ValueError(f"Expected a uint8 image, got {array.dtype} (scale floats in [0, 1] by "
                     "255 and round first).")
  if array.ndim == 3 and array.shape[2] == 1:
    array = array[..., 0]
  if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
    raise ValueError(f"Expected an image [H, W], [H, W, 1], [H, W, 3] or [H, W, 4], got shape "
                     f"{array.shape}.")
  if min(array.shape[:2]) < 1:
    raise ValueError(f"The image is empty (shape {array.shape}).")
  _check_pixels(array.shape[1], array.shape[0], max_pixels)
  if array.ndim == 3 and array.shape[2] == 3:
    return np.ascontiguousarray(array)
  mode = "L" if array.ndim == 2 else "RGBA"
  return np.array(transforms.to_rgb(Image.fromarray(np.ascontiguousarray(array), mode)),
                  dtype=np.uint8)


# ----------------------------------------------------------------------------------- detection

_LOCAL = threading.local()  # CascadeClassifier objects are not shared between threads


def _cascade(name: str):
  import cv2  # pylint: disable=import-outside-toplevel
  cascades = getattr(_LOCAL, "cascades", None)
  if cascades is None:
    cascades = _LOCAL.cascades = {}
  if name not in cascades:
    directory = getattr(getattr(cv2, "data", None), "haarcascades", None)
    path = os.path.join(directory or "", name)
    if not hasattr(cv2, "CascadeClassifier") or not os.path.isfile(path):
      raise RuntimeError(
          f"OpenCV {cv2.__version__} has no bundled Haar cascade {name} (OpenCV 5 dropped "
          "them): pip install 'opencv-python-headless>=4.8,<5'.")
    classifier = cv2.CascadeClassifier(path)
    if classifier.empty():
      raise RuntimeError(f"OpenCV could not load the Haar cascade {path}.")
    cascades[name] = classifier
  return cascades[name]


def _grey(rgb: np.ndarray) -> np.ndarray:
  import cv2  # pylint: disable=import-outside-toplevel
  return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def _detect(rgb: np.ndarray, max_side: int) -> tuple[list[Box], np.ndarray, float]:
  """(boxes in full-image pixels, largest first; the full-resolution grey image; shrink)."""
  import cv2  # pylint: disable=import-outside-toplevel
  grey = _grey(rgb)
  h, w = grey.shape
  factor = min(1.0, max_side / max(h, w))
  small = grey
  if factor < 1.0:
    small = cv2.resize(grey, (max(1, round(w * factor)), max(1, round(h * factor))),
                       interpolation=cv2.INTER_AREA)
  min_face = max(MIN_FACE_PX, int(MIN_FACE_FRACTION * min(small.shape)))
  if min(small.shape) < min_face:
    return [], grey, factor
  small = cv2.equalizeHist(small)
  found = _cascade(FACE_CASCADE).detectMultiScale(
      small, scaleFactor=1.1, minNeighbors=3, minSize=(min_face, min_face))
  found = [b for b in np.asarray(found).reshape(-1, 4) if _confirmed(small, b)]
  sx, sy = w / small.shape[1], h / small.shape[0]
  boxes = [Box(int(round(x * sx)), int(round(y * sy)), int(round(bw * sx)), int(round(bh * sy)))
           for x, y, bw, bh in found]
  return sorted(boxes, key=lambda b: b.w * b.h, reverse=True), grey, factor


def _confirmed(grey: np.ndarray, box) -> bool:
  """Whether the second cascade also finds a face of about ``box``'s size and place."""
  x, y, w, h = (int(v) for v in box)
  pad = w // 3
  x0, y0 = max(0, x - pad), max(0, y - pad)
  roi = grey[y0:y + h + pad, x0:x + w + pad]
  found = _cascade(CONFIRM_CASCADE).detectMultiScale(
      roi, scaleFactor=1.1, minNeighbors=3, minSize=(int(0.7 * w),) * 2,
      maxSize=(int(1.4 * w) + 1,) * 2)
  cx, cy = x + w / 2, y + h / 2
  return any(abs(x0 + fx + fw / 2 - cx) < 0.25 * w and abs(y0 + fy + fh / 2 - cy) < 0.25 * w
             for fx, fy, fw, fh in np.asarray(found).reshape(-1, 4))


def detect_faces(image, *, max_side: int = DETECT_MAX_SIDE) -> list[Box]:
  """Frontal faces in ``image`` (uint8 RGB ``[H, W, 3]``, or any input :func:`as_rgb` takes).

  Returns:
    boxes ``Box(x, y, w, h)`` in the image's pixels, the largest first; empty when none.
  """
  return _detect(as_rgb(image), max_side)[0]


def _find_eyes(grey: np.ndarray, box: Box):
  """The eye centres ``((x, y), (x, y))`` (image left first) inside ``box``, or None."""
  import cv2  # pylint: disable=import-outside-toplevel
  x, y, w, h = box
  top, bottom = y + int(0.15 * h), y + int(0.62 * h)
  x0, x1 = max(0, x), min(grey.shape[1], x + w)
  top, bottom = max(0, top), min(grey.shape[0], bottom)
  if x1 - x0 < 8 or bottom - top < 4:
    return None
  roi = grey[top:bottom, x0:x1]
  k = EYE_SEARCH_WIDTH / w
  roi = cv2.resize(roi, (max(1, round(roi.shape[1] * k)), max(1, round(roi.shape[0] * k))),
                   interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR)
  lo, hi = int(0.1 * EYE_SEARCH_WIDTH), int(0.4 * EYE_SEARCH_WIDTH)
  if min(roi.shape) < lo:
    return None
  roi = cv2.equalizeHist(roi)
  for name in EYE_CASCADES:
    found = _cascade(name).detectMultiScale(roi, scaleFactor=1.1, minNeighbors=EYE_NEIGHBORS,
                                            minSize=(lo, lo), maxSize=(hi, hi))
    # Centres and sizes in image pixels.
    eyes = [((x0 + (ex + ew / 2) / k), (top + (ey + eh / 2) / k), ew / k)
            for ex, ey, ew, eh in np.asarray(found).reshape(-1, 4)]
    pair = _eye_pair(eyes, box)
    if pair is not None:
      return pair
  return None


def _eye_pair(eyes, box: Box):
  """The most plausible (left, right) pair of eye candidates ``(x, y, size)``, or None."""
  middle = box.x + box.w / 2
  lefts = [e for e in eyes if e[0] < middle]
  rights = [e for e in eyes if e[0] >= middle]
  best, best_score = None, math.inf
  for left in lefts:
    for right in rights:
      dx, dy = right[0] - left[0], right[1] - left[1]
      distance, angle = math.hypot(dx, dy), math.atan2(dy, dx)
      size_ratio = max(left[2], right[2]) / min(left[2], right[2])
      if not (0.25 * box.w <= distance <= 0.65 * box.w and abs(angle) <= math.radians(25)
              and size_ratio <= 1.6):
        continue
      # Prefer pairs spaced like real eyes (~0.38 w), level and alike.
      score = abs(distance / box.w - 0.38) + abs(angle) + 0.2 * (size_ratio - 1)
      if score < best_score:
        best, best_score = ((left[0], left[1]), (right[0], right[1])), score
  return best


def locate_face(image, *, crop: str = "dlib", level_eyes: bool = True,
                max_side: int = DETECT_MAX_SIDE) -> Alignment:
  """The crop :func:`align_face` cuts out of ``image`` (see the module docstring).

  Raises:
    NoFaceError: no face found.
    ImageTooLargeError, ValueError: as :func:`as_rgb`; ValueError for an unknown ``crop``.
  """
  return _locate(as_rgb(image), crop=crop, level_eyes=level_eyes, max_side=max_side)[0]


def _locate(rgb: np.ndarray, *, crop: str, level_eyes: bool, max_side: int):
  if crop not in CROPS:
    raise ValueError(f"Unknown crop {crop!r}; known: {', '.join(CROPS)}.")
  boxes, grey, _ = _detect(rgb, max_side)
  if not boxes:
    h, w = rgb.shape[:2]
    raise NoFaceError(
        f"No face found in the {w}x{h} image. Use a photo of one person looking at the camera, "
        f"with the face well lit, upright and at least {MIN_FACE_FRACTION:.0%} of the picture's "
        "height.")
  box = boxes[0]
  eyes = _find_eyes(grey, box) if level_eyes else None
  angle = 0.0
  if eyes is not None:
    (lx, ly), (rx, ry) = eyes
    angle = math.atan2(ry - ly, rx - lx)
  spec = CROPS[crop]
  # "Below" along the face's vertical axis: (-sin, cos) of the eye line's angle.
  cx = box.x + box.w / 2 - math.sin(angle) * spec.shift * box.w
  cy = box.y + box.h / 2 + math.cos(angle) * spec.shift * box.w
  return Alignment(box=box, eyes=eyes, center=(cx, cy), side=spec.scale * box.w,
                   angle=angle), rgb


def extract_chip(rgb: np.ndarray, alignment: Alignment, size: int) -> np.ndarray:
  """Cuts ``alignment``'s rotated square out of ``rgb`` as uint8 ``[size, size, 3]``."""
  import cv2  # pylint: disable=import-outside-toplevel
  (cx, cy), side, angle = alignment.center, alignment.side, alignment.angle
  cos, sin = math.cos(angle), math.sin(angle)
  # The axis-aligned bounds of the rotated square, clipped to the image (+ 2 px for the filter).
  half = side / 2 * (abs(cos) + abs(sin)) + 2
  h, w = rgb.shape[:2]
  x0, y0 = max(0, int(math.floor(cx - half))), max(0, int(math.floor(cy - half)))
  x1, y1 = min(w, int(math.ceil(cx + half))), min(h, int(math.ceil(cy + half)))
  if x1 <= x0 or y1 <= y0:  # entirely outside: cannot happen for a detected face
    x0, y0, x1, y1 = 0, 0, w, h
  region = rgb[y0:y1, x0:x1]
  kx = ky = 1.0
  shrink = min(1.0, 2.0 * size / side)  # antialias: bring the square to at most 2x the output
  if shrink < 1.0:
    nw = max(1, round(region.shape[1] * shrink))
    nh = max(1, round(region.shape[0] * shrink))
    kx, ky = nw / region.shape[1], nh / region.shape[0]
    region = cv2.resize(region, (nw, nh), interpolation=cv2.INTER_AREA)
  # Output pixel (u, v) -> offset t = ((u, v) + 0.5) / size - 0.5 in the square, rotated by the
  # angle and scaled by the side, around the centre; then into the region's pixel indices.
  a = side / size
  m = np.array([[cos * a, -sin * a, cx - (cos - sin) * side / 2 + (cos - sin) * a / 2],
                [sin * a, cos * a, cy - (sin + cos) * side / 2 + (sin + cos) * a / 2]])
  m[0] = m[0] * kx
  m[1] = m[1] * ky
  m[0, 2] += -x0 * kx - 0.5
  m[1, 2] += -y0 * ky - 0.5
  return cv2.warpAffine(np.ascontiguousarray(region), m, (size, size),
                        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                        borderMode=cv2.BORDER_REPLICATE)


def align_face(image, *, size: int, crop: str = "dlib", level_eyes: bool = True,
               max_side: int = DETECT_MAX_SIDE) -> np.ndarray:
  """The largest face of ``image``, aligned and cropped (see the module docstring).

  Args:
    image: uint8 RGB ``[H, W, 3]``, or grey / RGBA arrays, or a PIL image of any mode.
    size: the output's side in pixels.
    crop: a preset of :data:`CROPS` (``"dlib"``: dlib's / LFW's tight face chips; ``"celeba"``:
      CelebA's aligned centre crop, with hair and background).
    level_eyes: rotate so the eyes are level when both are found.
    max_side: detection runs on a copy shrunk to this long side.

  Returns:
    uint8 ``[size, size, 3]``.

  Raises:
    NoFaceError: no face in the image.
    ImageTooLargeError: more than :data:`MAX_PIXELS` pixels.
    ValueError: a bad ``size``, ``crop``, dtype or shape.
  """
  if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
    raise ValueError(f"size must be a positive integer, got {size!r}.")
  alignment, rgb = _locate(as_rgb(image), crop=crop, level_eyes=level_eyes, max_side=max_side)
  return extract_chip(rgb, alignment, int(size))
