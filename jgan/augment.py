"""Seeded image augmentations, as pure jax functions applied inside the train step.

They run on device on the real batch, with a key derived from the step's key, so an augmented
run is as reproducible (and resumable) as any other.
"""

from __future__ import annotations

import functools
import math
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections


def random_flip(images: jax.Array, key: jax.Array) -> jax.Array:
  """Mirrors each image of [B, H, W, C] left-right with probability 1/2."""
  flip = jax.random.bernoulli(key, 0.5, (images.shape[0], 1, 1, 1))
  return jnp.where(flip, images[:, :, ::-1, :], images)


def rotate(images: jax.Array, angles: jax.Array) -> jax.Array:
  """Rotates each image of [B, H, W, C] by ``angles`` [B] (radians, counter-clockwise) about
  its centre, bilinear, edge pixels repeated outside."""
  _, h, w, _ = images.shape
  ys, xs = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32),
                        indexing="ij")
  cy, cx = (h - 1) / 2.0, (w - 1) / 2.0

  def one(image, angle):
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    # Inverse map: where in the source each output pixel comes from (counter-clockwise as
    # displayed, like np.rot90 for 90 degrees).
    src_y = cy + (ys - cy) * cos + (xs - cx) * sin
    src_x = cx - (ys - cy) * sin + (xs - cx) * cos
    channel = lambda c: jax.scipy.ndimage.map_coordinates(c, [src_y, src_x], order=1,
                                                          mode="nearest")
    return jax.vmap(channel, in_axes=2, out_axes=2)(image)

  return jax.vmap(one)(images, angles.astype(jnp.float32))


def random_rotation(images: jax.Array, key: jax.Array, *, max_degrees: float) -> jax.Array:
  """Rotates each image by an angle drawn uniformly from [-max_degrees, max_degrees]."""
  limit = math.radians(max_degrees)
  angles = jax.random.uniform(key, (images.shape[0],), minval=-limit, maxval=limit)
  return rotate(images, angles)


def augment(images: jax.Array, key: jax.Array, *, flip: bool = False,
            max_rotation: float = 0.0) -> jax.Array:
  """Random left-right flips and small rotations (the seed notebooks' portrait augmentation).

  Args:
    images: [B, H, W, C] floats.
    key: the randomness; the same key gives the same augmentation.
    flip: mirror each image with probability 1/2.
    max_rotation: rotate by up to this many degrees either way (0: no rotation).
  """
  if max_rotation < 0:
    raise ValueError(f"max_rotation must be >= 0 degrees, got {max_rotation}.")
  flip_key, rot_key = jax.random.split(key)
  if flip:
    images = random_flip(images, flip_key)
  if max_rotation:
    images = random_rotation(images, rot_key, max_degrees=max_rotation)
  return images


def variant_grid(c, *, rotations: int) -> tuple[tuple[bool, float], ...]:
  """The fixed (flip, degrees) variants that stand for an augment config group's random ones:
  no flip (and a flip, with ``c.flip``) times ``rotations`` angles evenly spaced over
  [-c.rotation, c.rotation] (just 0 without rotation). For computing a frozen network's
  outputs once, on every variant, instead of on a fresh random one each step."""
  if rotations < 1:
    raise ValueError(f"rotations must be >= 1, got {rotations}.")
  degrees = float(c.rotation)
  angles = [0.0] if not degrees or rotations == 1 else [
      -degrees + 2 * degrees * i / (rotations - 1) for i in range(rotations)]
  return tuple((flip, angle) for flip in ((False, True) if c.flip else (False,))
               for angle in angles)


def apply_variant(images: jax.Array, *, flip: bool, degrees: float) -> jax.Array:
  """One fixed variant of :func:`variant_grid` applied to every image of [B, H, W, C]."""
  if flip:
    images = images[:, :, ::-1, :]
  if degrees:
    images = rotate(images, jnp.full((images.shape[0],), math.radians(degrees)))
  return images


def apply_variants(images: jax.Array, flip: jax.Array, degrees: jax.Array) -> jax.Array:
  """:func:`apply_variant` with the variant as traced scalars (one compile for every variant):
  ``flip`` bool, ``degrees`` float. Angle 0 leaves the image exactly as it is."""
  images = jnp.where(flip, images[:, :, ::-1, :], images)
  angle = jnp.deg2rad(jnp.asarray(degrees, jnp.float32))
  return rotate(images, jnp.full((images.shape[0],), angle))


def gaussian_blur(images: jax.Array, *, sigma: float) -> jax.Array:
  """Blurs [B, H, W, C] with a Gaussian of ``sigma`` pixels (separable, truncated at 3 sigma,
  normalised to sum 1; edge pixels repeated outside)."""
  if sigma <= 0:
    raise ValueError(f"sigma must be > 0 pixels, got {sigma}.")
  radius = max(1, int(math.ceil(3 * sigma)))
  taps = jnp.exp(-0.5 * (jnp.arange(-radius, radius + 1, dtype=jnp.float32) / sigma) ** 2)
  taps = taps / jnp.sum(taps)
  padded = jnp.pad(images, ((0, 0), (radius, radius), (radius, radius), (0, 0)), mode="edge")
  h, w = images.shape[1:3]
  rows = sum(taps[i] * padded[:, i:i + h, :, :] for i in range(2 * radius + 1))
  return sum(taps[i] * rows[:, :, i:i + w, :] for i in range(2 * radius + 1))


def random_zoom_shift(images: jax.Array, key: jax.Array, *, max_zoom: float,
                      max_shift: float) -> jax.Array:
  """Zooms each image of [B, H, W, C] about its centre by a factor drawn from
  [1 - max_zoom, 1 + max_zoom] and shifts it by up to ``max_shift`` of its size each way
  (bilinear, edge pixels repeated outside). Differentiable in ``images``: for a generator's
  output before a frozen network, so g cannot meet that network's loss with a pixel-exact
  pattern."""
  if not 0 <= max_zoom < 1 or not 0 <= max_shift < 1:
    raise ValueError(f"max_zoom and max_shift must be in [0, 1), got {max_zoom}, {max_shift}.")
  b, h, w, _ = images.shape
  zoom_key, shift_key = jax.random.split(key)
  zoom = jax.random.uniform(zoom_key, (b,), minval=1 - max_zoom, maxval=1 + max_zoom)
  shift = jax.random.uniform(shift_key, (b, 2), minval=-max_shift, maxval=max_shift)
  shift = shift * jnp.asarray([h, w], jnp.float32)
  ys, xs = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32),
                        indexing="ij")
  cy, cx = (h - 1) / 2.0, (w - 1) / 2.0

  def one(image, z, d):
    src = [cy + (ys - cy) / z - d[0], cx + (xs - cx) / z - d[1]]
    channel = lambda c: jax.scipy.ndimage.map_coordinates(c, src, order=1, mode="nearest")
    return jax.vmap(channel, in_axes=2, out_axes=2)(image)

  return jax.vmap(one)(images, zoom, shift)


def random_blur(images: jax.Array, key: jax.Array, *, max_sigma: float) -> jax.Array:
  """Blends each image with its :func:`gaussian_blur` of ``max_sigma`` by a weight drawn
  uniformly from [0, 1]: blurs of every strength up to ``max_sigma``, with one convolution."""
  weight = jax.random.uniform(key, (images.shape[0], 1, 1, 1))
  return images + weight * (gaussian_blur(images, sigma=max_sigma) - images)


def perturb(images: jax.Array, key: jax.Array, *, zoom: float = 0.0, shift: float = 0.0,
            blur: float = 0.0, min_blur: float = 0.0) -> jax.Array:
  """:func:`random_zoom_shift` (``zoom``, ``shift``), then a :func:`gaussian_blur` of
  ``min_blur`` pixels on every image, then :func:`random_blur` (``blur``, its largest sigma
  in pixels); each skipped when 0. Differentiable in ``images``.

  Before a frozen network in a loss, ``min_blur`` low-passes the gradient that reaches the
  images (the blur is its own adjoint): the loss can then not ask for pixel-level patterns."""
  if blur < 0 or min_blur < 0:
    raise ValueError(f"blur and min_blur must be >= 0 pixels, got {blur}, {min_blur}.")
  zoom_key, blur_key = jax.random.split(key)
  if zoom or shift:
    images = random_zoom_shift(images, zoom_key, max_zoom=zoom, max_shift=shift)
  if min_blur:
    images = gaussian_blur(images, sigma=min_blur)
  if blur:
    images = random_blur(images, blur_key, max_sigma=blur)
  return images


def shear(images: jax.Array, slopes: jax.Array) -> jax.Array:
  """Slants each image of [B, H, W, C] horizontally by ``slopes`` [B] (pixels of x per pixel of
  y, about the centre row; positive leans the top to the right, as italics do), bilinear, edge
  pixels repeated outside. Differentiable in ``images``."""
  _, h, w, _ = images.shape
  ys, xs = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32),
                        indexing="ij")
  cy = (h - 1) / 2.0

  def one(image, slope):
    src = [ys, xs - slope * (cy - ys)]  # row y is moved right by slope * (cy - y)
    channel = lambda c: jax.scipy.ndimage.map_coordinates(c, src, order=1, mode="nearest")
    return jax.vmap(channel, in_axes=2, out_axes=2)(image)

  return jax.vmap(one)(images, slopes.astype(jnp.float32))


def random_shear(images: jax.Array, key: jax.Array, *, max_degrees: float) -> jax.Array:
  """:func:`shear` by an angle drawn uniformly from [-max_degrees, max_degrees] per image: the
  slant of handwriting, which a printed-font renderer rarely draws.

  References:
    Simard, Steinkraus & Platt, "Best Practices for Convolutional Neural Networks Applied to
    Visual Document Analysis", ICDAR 2003 (affine distortions of digits).
  """
  if not 0 <= max_degrees < 90:
    raise ValueError(f"max_degrees must be in [0, 90), got {max_degrees}.")
  limit = math.radians(max_degrees)
  angles = jax.random.uniform(key, (images.shape[0],), minval=-limit, maxval=limit)
  return shear(images, jnp.tan(angles))


def random_stroke(images: jax.Array, key: jax.Array, *, strength: float) -> jax.Array:
  """Thicker or thinner strokes: each image of [B, H, W, C] is blended, by a weight drawn from
  [0, ``strength``], with its grey dilation or (with probability 1/2) erosion by a 3x3 square.
  A dilation thickens light strokes on a dark ground and thins dark ones, an erosion the
  reverse, so both polarities get both; a classifier trained through it reads a digit's shape,
  not one font's weight.

  References:
    Simard, Steinkraus & Platt, ICDAR 2003 (distortions of digit training data).
  """
  if not 0 <= strength <= 1:
    raise ValueError(f"strength must be in [0, 1], got {strength}.")
  b = images.shape[0]
  op_key, weight_key = jax.random.split(key)
  window, strides, pad = (1, 3, 3, 1), (1, 1, 1, 1), ((0, 0), (1, 1), (1, 1), (0, 0))
  dilated = jax.lax.reduce_window(images, -jnp.inf, jax.lax.max, window, strides, pad)
  eroded = jax.lax.reduce_window(images, jnp.inf, jax.lax.min, window, strides, pad)
  erode = jax.random.bernoulli(op_key, 0.5, (b, 1, 1, 1))
  weight = jax.random.uniform(weight_key, (b, 1, 1, 1), maxval=strength)
  return images + weight * (jnp.where(erode, eroded, dilated) - images)


def random_colour(images: jax.Array, key: jax.Array, *, strength: float) -> jax.Array:
  """Per-image colour jitter of [B, H, W, C] images in [-1, 1]: each channel scaled by a gain
  ``exp(u)``, u ~ U(-strength, strength), about the image's mean, and offset by
  U(-strength, strength); clipped to [-1, 1]. A classifier trained through it reads shapes, not
  one renderer's palette.

  References:
    Krizhevsky et al., "ImageNet Classification with Deep Convolutional Neural Networks",
    NeurIPS 2012 (colour augmentation).
  """
  if strength < 0:
    raise ValueError(f"strength must be >= 0, got {strength}.")
  b, c = images.shape[0], images.shape[-1]
  gain_key, offset_key = jax.random.split(key)
  gain = jnp.exp(jax.random.uniform(gain_key, (b, 1, 1, c), minval=-strength, maxval=strength))
  offset = jax.random.uniform(offset_key, (b, 1, 1, c), minval=-strength, maxval=strength)
  mean = jnp.mean(images, axis=(1, 2), keepdims=True)
  return jnp.clip(mean + gain * (images - mean) + offset, -1.0, 1.0)


def mix_features(features: jax.Array, key: jax.Array, *, mix_prob: float,
                 noise_std: float = 0.0) -> jax.Array:
  """New points among a batch of standardised feature vectors [B, F] (e.g. a frozen
  encoder's descriptors of few source images): with probability ``mix_prob`` a row becomes
  ``(l * a + (1 - l) * b) / sqrt(l^2 + (1 - l)^2)`` of itself a and another row b of the batch
  (a random roll), l ~ U(0, 1), a mixup whose variance stays that of independent
  unit-variance rows (a plain average of two shrinks towards the mean, where no real input
  lies); then Gaussian noise of ``noise_std`` is added to every row.

  References:
    Zhang et al., "mixup: Beyond Empirical Risk Minimization", ICLR 2018 (the convex mix).
  """
  if not 0 <= mix_prob <= 1 or noise_std < 0:
    raise ValueError(f"mix_prob must be in [0, 1] and noise_std >= 0, got {mix_prob}, "
                     f"{noise_std}.")
  b = features.shape[0]
  perm_key, lam_key, use_key, noise_key = jax.random.split(key, 4)
  # A random non-zero roll of the batch: never a row with itself (which would scale it up).
  other = jnp.roll(features, jax.random.randint(perm_key, (), 1, max(b, 2)), axis=0)
  lam = jax.random.uniform(lam_key, (b, 1), dtype=features.dtype)
  mixed = (lam * features + (1 - lam) * other) / jnp.sqrt(lam ** 2 + (1 - lam) ** 2)
  use = jax.random.bernoulli(use_key, mix_prob, (b, 1))
  out = jnp.where(use, mixed, features)
  if noise_std:
    out = out + noise_std * jax.random.normal(noise_key, out.shape, out.dtype)
  return out


def gaussian_features(features: jax.Array, key: jax.Array, *, prob: float) -> jax.Array:
  """With probability ``prob`` a row of ``features`` [B, F] becomes a draw from the Gaussian
  fitted to the batch: ``m + w @ (features - m) / sqrt(B - 1)``, m the batch mean, w ~ N(0, I_B).
  Its mean and covariance are the batch's (for any B >= 2), so the draws are new points in the
  span of the batch's spread, not pairs' mixtures: a generator trained on few source
  descriptors sees a whole distribution of them.

  References:
    Zhang et al., "mixup: Beyond Empirical Risk Minimization", ICLR 2018 (vicinal risk).
  """
  if not 0 <= prob <= 1:
    raise ValueError(f"prob must be in [0, 1], got {prob}.")
  b = features.shape[0]
  if b < 2:
    raise ValueError(f"A Gaussian fitted to the batch needs at least 2 rows, got {b}.")
  w_key, use_key = jax.random.split(key)
  mean = jnp.mean(features, axis=0, keepdims=True)
  w = jax.random.normal(w_key, (b, b), features.dtype) / jnp.sqrt(b - 1.0)
  drawn = mean + w @ (features - mean)
  use = jax.random.bernoulli(use_key, prob, (b, 1))
  return jnp.where(use, drawn, features)


def perturb_from_config(c) -> Callable[[jax.Array, jax.Array], jax.Array] | None:
  """``(images, key) -> images`` for a perturb config group (``zoom``, ``shift``, ``blur``
  and optionally ``min_blur``: :func:`perturb`), or None when it asks for nothing."""
  min_blur = float(c.get("min_blur", 0.0))
  if not (0 <= c.zoom < 1 and 0 <= c.shift < 1 and c.blur >= 0 and min_blur >= 0):
    raise ValueError(f"A perturbation needs zoom and shift in [0, 1) (fractions of the size) "
                     f"and blur, min_blur >= 0 (pixels); got zoom={c.zoom}, shift={c.shift}, "
                     f"blur={c.blur}, min_blur={min_blur}.")
  if not (c.zoom or c.shift or c.blur or min_blur):
    return None
  return functools.partial(perturb, zoom=float(c.zoom), shift=float(c.shift),
                           blur=float(c.blur), min_blur=min_blur)


def from_config(c) -> Callable[[jax.Array, jax.Array], jax.Array] | None:
  """``(images, key) -> images`` for an augment config group, or None when it asks for nothing
  (the step then skips augmentation entirely): ``flip``, ``rotation`` (degrees) and, when the
  group has them, ``shear`` (degrees, :func:`random_shear`), ``zoom``, ``shift``, ``blur``
  (:func:`perturb`), ``stroke`` (:func:`random_stroke`'s strength) and ``colour``
  (:func:`random_colour`'s strength), applied in that order."""
  flip, rotation = bool(c.flip), float(c.rotation)
  colour = float(c.get("colour", 0.0))
  slant, stroke = float(c.get("shear", 0.0)), float(c.get("stroke", 0.0))
  if colour < 0:
    raise ValueError(f"An augment group's colour strength must be >= 0, got {colour}.")
  if not (0 <= slant < 90 and 0 <= stroke <= 1):
    raise ValueError(f"An augment group's shear must be in [0, 90) degrees and its stroke "
                     f"strength in [0, 1]; got shear={slant}, stroke={stroke}.")
  perturbed = perturb_from_config(ml_collections.ConfigDict(
      {k: float(c.get(k, 0.0)) for k in ("zoom", "shift", "blur")}))
  if not (flip or rotation or perturbed or colour or slant or stroke):
    return None
  if not (perturbed or colour or slant or stroke):  # as before these keys existed: same stream
    return functools.partial(augment, flip=flip, max_rotation=rotation)

  def apply(images: jax.Array, key: jax.Array) -> jax.Array:
    geo_key, perturb_key, colour_key = jax.random.split(key, 3)
    images = augment(images, geo_key, flip=flip, max_rotation=rotation)
    if slant:  # keys folded in, so groups without shear/stroke keep their random stream
      images = random_shear(images, jax.random.fold_in(key, 101), max_degrees=slant)
    if perturbed:
      images = perturbed(images, perturb_key)
    if stroke:
      images = random_stroke(images, jax.random.fold_in(key, 102), strength=stroke)
    return random_colour(images, colour_key, strength=colour) if colour else images
  return apply


DIFF_AUGMENT_POLICIES = ("colour", "translation", "cutout", "blur", "noise")
# The policies with a strength: "name=value" in a d_augment string sets it.
_POLICY_STRENGTHS = {"translation": "translation", "cutout": "cutout", "blur": "blur",
                     "noise": "noise"}


def _shift_images(images: jax.Array, dy: jax.Array, dx: jax.Array, pad: int) -> jax.Array:
  """Each image moved by (dy[i], dx[i]) pixels (|d| <= pad), zeros shifted in."""
  _, h, w, c = images.shape
  padded = jnp.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
  crop = lambda image, y, x: jax.lax.dynamic_slice(image, (pad - y, pad - x, 0), (h, w, c))
  return jax.vmap(crop)(padded, dy, dx)


def diff_augment(images: jax.Array, key: jax.Array, *,
                 policy: tuple[str, ...] = ("colour", "translation", "cutout"),
                 translation: float = 0.125, cutout: float = 0.5, blur: float = 1.0,
                 noise: float = 0.1) -> jax.Array:
  """Differentiable augmentation of every image a discriminator sees, real and generated.

  ``policy`` picks, in this order: "colour" (brightness offset U(-0.5, 0.5), saturation gain
  U(0, 2) about the pixel's grey, contrast gain U(0.5, 1.5) about the image's mean),
  "translation" (a shift of up to ``translation`` of the size either way, zeros shifted in)
  and "cutout" (a square of ``cutout`` of the size, centred anywhere, set to 0); then two
  low-pass views: "blur" (a fixed Gaussian blur of ``blur`` pixels: D judges only what
  survives it, so pixel-level noise neither fools nor is asked for by D) and "noise" (instance
  noise, N(0, ``noise``^2) added to every value). Images are [B, H, W, C] in [-1, 1] (0 is
  mid-grey); each image draws its own transform. Linear in the images, so G's gradient passes
  through: D then cannot memorise the few real images of a short run, and G is not pushed to
  match what D memorised.

  References:
    Zhao, Liu, Lin, Zhu & Han, "Differentiable Augmentation for Data-Efficient GAN Training",
    NeurIPS 2020 (DiffAugment, policy "color,translation,cutout"); Sonderby, Caballero,
    Theis, Shi & Huszar, "Amortised MAP Inference for Image Super-resolution", ICLR 2017
    (instance noise, Sec. 5).
  """
  unknown = [p for p in policy if p not in DIFF_AUGMENT_POLICIES]
  if unknown:
    raise ValueError(f"Unknown DiffAugment policy {unknown}; allowed: {DIFF_AUGMENT_POLICIES}.")
  if not (0 <= translation < 1 and 0 <= cutout < 1):
    raise ValueError(f"translation and cutout are fractions of the size in [0, 1), got "
                     f"{translation}, {cutout}.")
  if blur < 0 or noise < 0:
    raise ValueError(f"blur (pixels) and noise (std) must be >= 0, got {blur}, {noise}.")
  b, h, w, _ = images.shape
  keys = jax.random.split(key, 6)
  u = lambda k: jax.random.uniform(k, (b, 1, 1, 1), images.dtype)
  if "colour" in policy:
    images = images + (u(keys[0]) - 0.5)
    grey = jnp.mean(images, axis=-1, keepdims=True)
    images = (images - grey) * (2.0 * u(keys[1])) + grey
    mean = jnp.mean(images, axis=(1, 2, 3), keepdims=True)
    images = (images - mean) * (u(keys[2]) + 0.5) + mean
  if "translation" in policy:
    pad = int(round(min(h, w) * translation))
    if pad:
      dy, dx = jax.random.randint(keys[3], (2, b), -pad, pad + 1)
      images = _shift_images(images, dy, dx, pad)
  if "cutout" in policy:
    ch, cw = int(round(h * cutout)), int(round(w * cutout))
    cy = jax.random.randint(keys[4], (b, 1, 1, 1), 0, h) - ch // 2
    cx = jax.random.randint(keys[5], (b, 1, 1, 1), 0, w) - cw // 2
    ys = jnp.arange(h)[None, :, None, None]
    xs = jnp.arange(w)[None, None, :, None]
    inside = (ys >= cy) & (ys < cy + ch) & (xs >= cx) & (xs < cx + cw)
    images = jnp.where(inside, jnp.zeros((), images.dtype), images)
  if "blur" in policy and blur > 0:
    images = gaussian_blur(images, sigma=blur)
  if "noise" in policy and noise > 0:
    images = images + noise * jax.random.normal(jax.random.fold_in(key, 7), images.shape,
                                                images.dtype)
  return images


def diff_augment_from_config(policy: str) -> Callable[[jax.Array, jax.Array], jax.Array] | None:
  """``(images, key) -> images`` for a comma-separated DiffAugment policy string (the
  ``d_augment`` config key, e.g. "colour,translation,cutout" or "blur=0.7"; "color" is
  accepted too; ``name=value`` sets the strength of translation, cutout, blur or noise), or
  None for "" (D sees the images unchanged)."""
  names, strengths = [], {}
  for item in (p.strip() for p in str(policy).split(",")):
    if not item:
      continue
    name, _, value = (x.strip() for x in item.partition("="))
    name = "colour" if name == "color" else name
    if name not in DIFF_AUGMENT_POLICIES:
      raise ValueError(f"d_augment={policy!r} names {name!r}; allowed: comma-separated "
                       f"{', '.join(DIFF_AUGMENT_POLICIES)} (or '' for none), each optionally "
                       f"name=value for {', '.join(_POLICY_STRENGTHS)}.")
    if value:
      if name not in _POLICY_STRENGTHS:
        raise ValueError(f"d_augment={policy!r}: {name!r} takes no value; only "
                         f"{', '.join(_POLICY_STRENGTHS)} do.")
      try:
        strengths[_POLICY_STRENGTHS[name]] = float(value)
      except ValueError:
        raise ValueError(f"d_augment={policy!r}: {item!r} needs a number after '='.") from None
    names.append(name)
  if not names:
    return None
  return functools.partial(diff_augment, policy=tuple(names), **strengths)
