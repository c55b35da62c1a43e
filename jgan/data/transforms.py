"""Image transforms shared by the data sources: any PIL image to RGB, center crop and resize.

One convention everywhere (image folders, TFDS ``celeb_a``, ``data.image_size`` on any dataset):

* **Crop**: the largest centred square (for a 218x178 CelebA image: rows 20..197, all columns,
  the crop DCGAN-style CelebA pipelines use before resizing to 64x64).
* **Resize**: Pillow ``LANCZOS`` when shrinking (antialiased), ``BICUBIC`` when enlarging (e.g.
  28x28 FashionMNIST to 32x32); results stay uint8.
* **Colour**: every mode becomes RGB. Alpha (RGBA, LA, palette or grey with a transparent colour)
  is composited on a **white** background, so transparent sprites and cut-outs do not turn into
  black silhouettes; 16-bit and 32-bit grey is scaled to 8 bits (Pillow's own ``convert`` would
  clip it at 255); CMYK, YCbCr and bilevel images use Pillow's conversion.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

RESAMPLE_DOWN = Image.Resampling.LANCZOS
RESAMPLE_UP = Image.Resampling.BICUBIC
BACKGROUND = (255, 255, 255)  # Alpha is composited on white.

_WIDE_GREY_MODES = ("I", "I;16", "I;16L", "I;16B", "I;16N", "F")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


def to_rgb(image: Image.Image) -> Image.Image:
  """``image`` as an 8-bit RGB PIL image (see the module docstring for alpha and 16-bit)."""
  if image.mode == "RGB":
    return image
  if image.mode in _WIDE_GREY_MODES:
    grey = np.asarray(image).astype(np.float64)
    if grey.size and np.nanmax(grey) > 255:  # 16-bit data (PNG "I;16", or "I" holding 0..65535).
      grey = grey * (255.0 / 65535.0)
    grey = np.clip(np.nan_to_num(grey), 0, 255)
    return Image.fromarray(np.rint(grey).astype(np.uint8), "L").convert("RGB")
  if image.mode in _ALPHA_MODES or "transparency" in image.info:
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
    return Image.alpha_composite(background, rgba).convert("RGB")
  return image.convert("RGB")


def center_crop_box(width: int, height: int) -> tuple[int, int, int, int]:
  """``(left, top, right, bottom)`` of the largest square centred in a ``width x height`` image."""
  side = min(width, height)
  left, top = (width - side) // 2, (height - side) // 2
  return left, top, left + side, top + side


def center_crop_resize(image: Image.Image, size: int) -> Image.Image:
  """The largest centred square of ``image``, resized to ``size x size`` (LANCZOS/BICUBIC)."""
  box = center_crop_box(*image.size)
  side = box[2] - box[0]
  if box != (0, 0) + image.size:
    # Crop first: resize(box=...) would let the filter read pixels outside the box.
    image = image.crop(box)
  if side == size:
    return image
  return image.resize((size, size), RESAMPLE_DOWN if side > size else RESAMPLE_UP)


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
  """uint8 ``[N, H, W, C]`` -> uint8 ``[N, size, size, C]``: center crop to square, then resize.

  Returns ``images`` itself when they already are ``size x size``. Each channel of an image with
  C not in (1, 3) is resized on its own. 60,000 28x28 images take about a second.
  """
  images = np.asarray(images)
  if images.ndim != 4 or images.dtype != np.uint8:
    raise ValueError(f"resize_images needs uint8 [N, H, W, C], got {images.dtype} "
                     f"{images.shape}.")
  if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
    raise ValueError(f"size must be a positive integer, got {size!r}.")
  n, h, w, c = images.shape
  if (h, w) == (size, size):
    return images
  out = np.empty((n, size, size, c), np.uint8)
  for i in range(n):
    if c in (1, 3):
      pil = Image.fromarray(images[i, ..., 0] if c == 1 else images[i], "L" if c == 1 else "RGB")
      out[i] = np.asarray(center_crop_resize(pil, size)).reshape(size, size, c)
    else:
      for k in range(c):
        out[i, ..., k] = np.asarray(center_crop_resize(Image.fromarray(images[i, ..., k], "L"),
                                                       size))
  return out
