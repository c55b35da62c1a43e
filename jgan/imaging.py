"""Image conversions and sample grids (host side)."""

from __future__ import annotations

import math
import os
import tempfile
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image


def to_float(images: jnp.ndarray, *, dtype=jnp.float32) -> jnp.ndarray:
  """uint8 images in [0, 255] -> floats in [-1, 1] (what tanh generators produce)."""
  return images.astype(dtype) / 127.5 - 1.0


def adapt_images(images: jax.Array, shape: tuple[int, int, int]) -> jax.Array:
  """Images [B, H, W, C] to a network's input ``shape`` (H', W', C'), inside jit.

  Resizes bilinearly when the size differs and matches channels: grey is tiled to RGB (as
  DTN's reference code feeds MNIST to an SVHN encoder), RGB is averaged to grey.
  """
  h, w, c = shape
  if images.shape[1:3] != (h, w):
    images = jax.image.resize(images, (images.shape[0], h, w, images.shape[3]), "bilinear")
  if images.shape[3] != c:
    if images.shape[3] == 1:
      images = jnp.tile(images, (1, 1, 1, c))
    elif c == 1:
      images = jnp.mean(images, axis=3, keepdims=True)
    else:
      raise ValueError(f"Cannot feed {images.shape[3]}-channel images to a network that takes "
                       f"{c} channels.")
  return images


def median3x3(images: jax.Array) -> jax.Array:
  """The 3x3 median filter per channel (edge-replicated border), [B, H, W, C] -> same. Jittable.

  References:
    Tukey, "Exploratory Data Analysis", 1977 (running medians).
  """
  if images.ndim != 4:
    raise ValueError(f"median3x3 takes images [B, H, W, C], got shape {images.shape}.")
  return _median3x3(images)


def _windows(images: jax.Array) -> tuple[list[jax.Array], Any]:
  """The nine shifted views of the edge-padded images, and the pad's VJP."""
  h, w = images.shape[1:3]
  padded, pad_vjp = jax.vjp(
      lambda x: jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge"), images)
  return [padded[:, i:i + h, j:j + w] for i in range(3) for j in range(3)], pad_vjp


@jax.custom_vjp
def _median3x3(images: jax.Array) -> jax.Array:
  p, _ = _windows(images)
  # Devillard's 19 compare-exchanges leave the median of nine in p[4]: elementwise min/max
  # (jnp.median sorts, and its gradient cost ~3x a DTN step on CPU).
  for a, b in _MEDIAN9_NETWORK:
    p[a], p[b] = jnp.minimum(p[a], p[b]), jnp.maximum(p[a], p[b])
  return p[4]


def _median3x3_fwd(images):
  return _median3x3(images), images


def _median3x3_bwd(images, g):
  """The gradient goes to the one window pixel that is the median (the first if tied)."""
  p, pad_vjp = _windows(images)
  first = jnp.argmax(jnp.stack(p, -1) == _median3x3(images)[..., None], axis=-1)
  grad = 0.0
  for k in range(9):  # the window's k-th pixel sits at offset divmod(k, 3) in the padding
    i, j = divmod(k, 3)
    grad = grad + jnp.pad(jnp.where(first == k, g, 0), ((0, 0), (i, 2 - i), (j, 2 - j), (0, 0)))
  return pad_vjp(grad)


_median3x3.defvjp(_median3x3_fwd, _median3x3_bwd)


# (a, b): sort the pair so that p[a] <= p[b] (N. Devillard, "Fast median search: an ANSI C
# implementation", 1998, opt_med9, after Paeth, Graphics Gems, 1990).
_MEDIAN9_NETWORK = ((1, 2), (4, 5), (7, 8), (0, 1), (3, 4), (6, 7), (1, 2), (4, 5), (7, 8),
                    (0, 3), (5, 8), (4, 7), (3, 6), (1, 4), (2, 5), (4, 7), (4, 2), (6, 4),
                    (4, 2))


def median_residual(images: jax.Array) -> jax.Array:
  """Per-image speckle: the mean |x - median3x3(x)| over pixels and channels, [B, H, W, C] -> [B].

  The 3x3 median (`median3x3`) keeps flat areas and straight edges and
  removes isolated pixels, so this is ~0 for a clean cartoon (flat colours, sharp outlines)
  and grows with pixel-level noise: an impulse of height h in a flat image scores h / (H W).
  On the scale of the images (those in [-1, 1] score twice their [0, 1] value). Jittable.

  References:
    Tukey, "Exploratory Data Analysis", 1977 (running medians); the residual of a median
    filter is the classic impulse-noise detector (e.g. Chen & Wu, IEEE TCAS-II 2001).
  """
  if images.ndim != 4:
    raise ValueError(f"median_residual takes images [B, H, W, C], got shape {images.shape}.")
  return jnp.mean(jnp.abs(images - median3x3(images)), axis=(1, 2, 3))


def to_uint8(images: np.ndarray) -> np.ndarray:
  """Floats in [-1, 1] -> uint8 in [0, 255] (clipped)."""
  images = np.asarray(images, dtype=np.float32)
  return np.clip(np.round((images + 1.0) * 127.5), 0, 255).astype(np.uint8)


def make_grid(images: np.ndarray, *, ncols: int | None = None, padding: int = 2,
              pad_value: int = 255) -> np.ndarray:
  """Tiles [N, H, W, C] uint8 images into one [rows*H', cols*W', C] image."""
  images = np.asarray(images)
  if images.ndim != 4:
    raise ValueError(f"make_grid expects [N, H, W, C] images, got shape {images.shape}.")
  n, h, w, c = images.shape
  ncols = ncols or int(math.ceil(math.sqrt(n)))
  nrows = int(math.ceil(n / ncols))
  grid = np.full((nrows * (h + padding) + padding, ncols * (w + padding) + padding, c),
                 pad_value, dtype=images.dtype)
  for i in range(n):
    r, col = divmod(i, ncols)
    y, x = padding + r * (h + padding), padding + col * (w + padding)
    grid[y:y + h, x:x + w] = images[i]
  return grid


def save_image(path: str, image: np.ndarray) -> None:
  """Writes a [H, W, C] uint8 image as PNG atomically (temp file, then rename)."""
  image = np.asarray(image)
  if image.shape[-1] == 1:
    image = image[..., 0]
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=directory, suffix=".png.tmp")
  os.close(fd)
  try:
    Image.fromarray(image).save(tmp, format="PNG")
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; outputs are for sharing
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def _umask() -> int:
  mask = os.umask(0)
  os.umask(mask)
  return mask


def save_grid(path: str, images: np.ndarray, *, ncols: int | None = None) -> np.ndarray:
  """Saves float images in [-1, 1] ([N, H, W, C]) as one PNG grid; returns the grid."""
  grid = make_grid(to_uint8(images), ncols=ncols)
  save_image(path, grid)
  return grid
