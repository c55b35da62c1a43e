"""Augmentations: exact flips and rotations, seeded, shape-preserving."""

import math

import chex
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jgan import augment


def _images(b=6, h=9, w=9, c=2):
  return jax.random.normal(jax.random.key(0), (b, h, w, c))


def test_flip_mirrors_about_half_the_images_exactly():
  x = _images(b=64)
  y = augment.random_flip(x, jax.random.key(1))
  flipped = [bool(jnp.all(y[i] == x[i, :, ::-1])) for i in range(64)]
  kept = [bool(jnp.all(y[i] == x[i])) for i in range(64)]
  assert all(f or k for f, k in zip(flipped, kept))
  assert 16 < sum(flipped) < 48


def test_rotation_by_zero_and_by_90_degrees_is_exact():
  x = _images()
  np.testing.assert_allclose(augment.rotate(x, jnp.zeros(6)), x, atol=1e-5)
  quarter = augment.rotate(x, jnp.full(6, np.pi / 2))
  # Counter-clockwise by 90 degrees on a square grid is np.rot90 over (H, W).
  np.testing.assert_allclose(quarter, jnp.rot90(x, k=1, axes=(1, 2)), atol=1e-4)


def test_augment_is_seeded_and_keeps_shape_and_range():
  x = jnp.tanh(_images(c=3))
  a = augment.augment(x, jax.random.key(3), flip=True, max_rotation=10.0)
  b = augment.augment(x, jax.random.key(3), flip=True, max_rotation=10.0)
  c = augment.augment(x, jax.random.key(4), flip=True, max_rotation=10.0)
  chex.assert_shape(a, x.shape)
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, c)
  assert float(a.min()) >= -1 - 1e-6 and float(a.max()) <= 1 + 1e-6  # bilinear stays in range
  np.testing.assert_array_equal(augment.augment(x, jax.random.key(3)), x)  # nothing asked


def test_negative_rotation_is_rejected():
  with pytest.raises(ValueError, match="max_rotation"):
    augment.augment(_images(), jax.random.key(0), max_rotation=-1.0)


def test_gaussian_blur_golden():
  """sigma 1: taps exp(-x^2/2) over [-3, 3], normalised; an impulse spreads to their outer
  product; a constant image stays constant (edges repeated)."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  from jgan import augment  # pylint: disable=import-outside-toplevel
  taps = np.exp(-0.5 * np.arange(-3, 4) ** 2)
  taps /= taps.sum()
  impulse = np.zeros((1, 9, 9, 1), np.float32)
  impulse[0, 4, 4, 0] = 1.0
  out = np.asarray(augment.gaussian_blur(impulse, sigma=1.0))[0, :, :, 0]
  np.testing.assert_allclose(out[1:8, 1:8], np.outer(taps, taps), rtol=1e-5, atol=1e-7)
  assert abs(out.sum() - 1.0) < 1e-5
  flat = np.full((2, 6, 5, 3), 0.25, np.float32)
  np.testing.assert_allclose(augment.gaussian_blur(flat, sigma=1.0), flat, atol=1e-6)
  with pytest.raises(ValueError, match="sigma"):
    augment.gaussian_blur(flat, sigma=0.0)


def test_variants_traced_equal_fixed_variants():
  import numpy as np  # pylint: disable=import-outside-toplevel
  from jgan import augment  # pylint: disable=import-outside-toplevel
  x = np.random.default_rng(0).uniform(-1, 1, (2, 8, 8, 3)).astype(np.float32)
  for flip, degrees in ((False, 0.0), (True, 0.0), (True, 5.0), (False, -5.0)):
    np.testing.assert_allclose(
        augment.apply_variants(x, jnp.asarray(flip), jnp.asarray(degrees)),
        augment.apply_variant(x, flip=flip, degrees=degrees), atol=1e-5)
  np.testing.assert_array_equal(augment.apply_variants(x, jnp.asarray(False), jnp.asarray(0.0)),
                                x)  # angle 0 is exact


def test_zoom_shift_identity_when_zero_constant_kept_seeded_and_differentiable():
  x = jnp.tanh(_images(c=3))
  key = jax.random.key(2)
  np.testing.assert_allclose(augment.random_zoom_shift(x, key, max_zoom=0.0, max_shift=0.0), x,
                             atol=1e-6)
  flat = jnp.full((3, 8, 8, 3), 0.3)
  np.testing.assert_allclose(augment.perturb(flat, key, zoom=0.2, shift=0.2, blur=1.0), flat,
                             atol=1e-6)  # a constant image has nothing to move or blur
  a = augment.perturb(x, key, zoom=0.1, shift=0.1, blur=1.0)
  chex.assert_shape(a, x.shape)
  np.testing.assert_array_equal(a, augment.perturb(x, key, zoom=0.1, shift=0.1, blur=1.0))
  assert not np.allclose(a, x, atol=1e-3)
  assert float(a.min()) >= -1 - 1e-6 and float(a.max()) <= 1 + 1e-6
  grad = jax.grad(lambda x: jnp.sum(augment.perturb(x, key, zoom=0.1, shift=0.1, blur=1.0)))(x)
  # Bilinear sampling and blurring redistribute each output's unit weight over the inputs.
  np.testing.assert_allclose(float(jnp.sum(grad)), x.size, rtol=1e-4)
  with pytest.raises(ValueError, match="max_zoom"):
    augment.random_zoom_shift(x, key, max_zoom=1.5, max_shift=0.0)
  with pytest.raises(ValueError, match="blur"):
    augment.perturb(x, key, blur=-1.0)


def test_zoom_shift_is_a_shift_for_a_half_pixel_grid():
  """Zoom 0, the shift drawn: each image equals its own bilinear translation by d, checked on
  a linear ramp, where bilinear interpolation is exact away from the edges."""
  ramp = jnp.broadcast_to(jnp.arange(16, dtype=jnp.float32)[None, :, None, None],
                          (5, 16, 16, 1))
  key = jax.random.key(4)
  out = augment.random_zoom_shift(ramp, key, max_zoom=0.0, max_shift=0.1)
  # The rows shift by d_y and leave a row ramp unchanged: out[b, y] = ramp[y - d_y] inside.
  d = (ramp - out)[:, 4:12, 8, 0]  # constant per image: the drawn d_y, |d_y| <= 1.6
  np.testing.assert_allclose(d, jnp.broadcast_to(d[:, :1], d.shape), atol=1e-4)
  assert float(jnp.max(jnp.abs(d))) <= 1.6 + 1e-5 and float(jnp.std(d[:, 0])) > 0


def test_min_blur_is_a_fixed_blur_and_low_passes_the_gradient():
  x = _images(c=1)
  key = jax.random.key(0)
  np.testing.assert_allclose(augment.perturb(x, key, min_blur=1.0),
                             augment.gaussian_blur(x, sigma=1.0), atol=1e-6)
  # A checkerboard gradient on the output reaches the input attenuated ~100x: a loss behind
  # the blur cannot ask for pixel-level patterns.
  board = jnp.asarray((np.indices((9, 9)).sum(0) % 2 * 2 - 1)[None, :, :, None], jnp.float32)
  grad = jax.grad(lambda y: jnp.sum(board * augment.perturb(y, key, min_blur=1.0)))(x)
  assert float(jnp.max(jnp.abs(grad[:, 2:7, 2:7]))) < 0.02
  with pytest.raises(ValueError, match="min_blur"):
    augment.perturb(x, key, min_blur=-1.0)


def test_random_blur_lies_between_the_image_and_its_blur():
  x = _images(b=16, c=1)
  out = augment.random_blur(x, jax.random.key(0), max_sigma=1.0)
  full = augment.gaussian_blur(x, sigma=1.0)
  weight = (out - x) / (full - x)  # one weight per image, in [0, 1]
  w = np.asarray(weight).reshape(16, -1)
  np.testing.assert_allclose(w, np.repeat(w[:, :1], w.shape[1], 1), atol=1e-3)
  assert float(w.min()) >= 0 and float(w.max()) <= 1 and float(w[:, 0].std()) > 0.1


def test_mix_features_golden_keeps_unit_norm_and_variance():
  """Orthonormal rows a, b: every variance-preserving mix (l a + (1-l) b)/sqrt(l^2+(1-l)^2)
  has norm exactly 1, and lies in their plane with non-negative coefficients."""
  f = jnp.eye(2, 8)
  for seed in range(5):
    out = augment.mix_features(f, jax.random.key(seed), mix_prob=1.0)
    np.testing.assert_allclose(jnp.linalg.norm(out, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(out[:, 2:], 0.0, atol=1e-7)
    assert float(out[:, :2].min()) >= -1e-7
  np.testing.assert_array_equal(augment.mix_features(f, jax.random.key(0), mix_prob=0.0), f)
  normal = jax.random.normal(jax.random.key(1), (20000, 4))
  mixed = augment.mix_features(normal, jax.random.key(2), mix_prob=1.0)
  np.testing.assert_allclose(jnp.var(mixed, axis=0), 1.0, atol=0.05)  # a plain mean: ~0.67
  noisy = augment.mix_features(normal, jax.random.key(2), mix_prob=0.0, noise_std=0.5)
  np.testing.assert_allclose(jnp.var(noisy - normal), 0.25, atol=0.02)
  frac = np.mean(np.any(np.asarray(augment.mix_features(normal, jax.random.key(3),
                                                       mix_prob=0.3) != normal), axis=1))
  assert 0.27 < frac < 0.33
  with pytest.raises(ValueError, match="mix_prob"):
    augment.mix_features(f, jax.random.key(0), mix_prob=1.5)


def test_gaussian_features_golden_two_rows_and_batch_moments():
  """Two rows a, b: m = (a+b)/2 and the centred rows are +-d, d = (a-b)/2, so every draw is
  m + (w1 - w2) d (B - 1 = 1): on the line through a and b. Many draws keep the batch's
  mean and covariance; prob sets the fraction replaced; prob 0 is the identity."""
  f = jnp.array([[1.0, 0.0, 2.0], [3.0, 0.0, -2.0]])
  out = augment.gaussian_features(f, jax.random.key(0), prob=1.0)
  m, d = (f[0] + f[1]) / 2, (f[0] - f[1]) / 2
  t = (out - m) @ d / (d @ d)
  np.testing.assert_allclose(out, m + t[:, None] * d, atol=1e-5)
  np.testing.assert_array_equal(augment.gaussian_features(f, jax.random.key(0), prob=0.0), f)
  batch = jax.random.normal(jax.random.key(1), (8, 3)) * jnp.array([1.0, 2.0, 0.5]) + 4.0
  draws = jax.vmap(lambda k: augment.gaussian_features(batch, k, prob=1.0))(
      jax.random.split(jax.random.key(2), 4000)).reshape(-1, 3)
  np.testing.assert_allclose(draws.mean(0), batch.mean(0), atol=0.05)
  np.testing.assert_allclose(jnp.cov(draws.T), jnp.cov(batch.T), atol=0.08, rtol=0.05)
  big = jax.random.normal(jax.random.key(3), (20000, 4))
  frac = np.mean(np.any(np.asarray(augment.gaussian_features(big, jax.random.key(4),
                                                            prob=0.3) != big), axis=1))
  assert 0.27 < frac < 0.33
  with pytest.raises(ValueError, match="prob must be in"):
    augment.gaussian_features(f, jax.random.key(0), prob=-0.1)
  with pytest.raises(ValueError, match="at least 2 rows"):
    augment.gaussian_features(f[:1], jax.random.key(0), prob=0.5)


def test_random_colour_gains_offsets_and_config():
  """strength 0 is the identity; a constant image moves only by its offsets (within
  +-strength per channel); a two-value image's contrast scales by the gain, within
  exp(+-strength); from_config composes flips, perturbation and colour, and without the new
  keys it is the old augment with the same random stream."""
  x = jnp.concatenate([jnp.full((4, 4, 2, 3), -0.5), jnp.full((4, 4, 2, 3), 0.5)], axis=2)
  np.testing.assert_allclose(augment.random_colour(x, jax.random.key(0), strength=0.0), x)
  flat = jnp.zeros((64, 4, 4, 3))
  moved = augment.random_colour(flat, jax.random.key(1), strength=0.2)
  assert float(jnp.abs(moved).max()) <= 0.2 + 1e-6 and float(moved.std()) > 0.05
  np.testing.assert_allclose(moved, moved[:, :1, :1, :] + 0 * moved, atol=1e-6)  # per channel
  out = augment.random_colour(x, jax.random.key(2), strength=0.3)
  contrast = out[:, 0, 2, :] - out[:, 0, 0, :]
  assert float(contrast.min()) >= math.exp(-0.3) - 1e-5
  assert float(contrast.max()) <= math.exp(0.3) + 1e-5
  with pytest.raises(ValueError, match="strength must be >= 0"):
    augment.random_colour(x, jax.random.key(0), strength=-1.0)
  old = ml_collections.ConfigDict({"flip": True, "rotation": 5.0})
  new = ml_collections.ConfigDict({"flip": True, "rotation": 5.0, "zoom": 0.0, "shift": 0.0,
                                   "blur": 0.0, "colour": 0.0})
  imgs = _images(b=4, c=3)
  np.testing.assert_array_equal(augment.from_config(old)(imgs, jax.random.key(3)),
                                augment.from_config(new)(imgs, jax.random.key(3)))
  new.colour, new.shift = 0.2, 0.1
  fn = augment.from_config(new)
  a, b = fn(imgs, jax.random.key(4)), fn(imgs, jax.random.key(4))
  np.testing.assert_array_equal(a, b)
  assert a.shape == imgs.shape and not np.allclose(a, augment.from_config(old)(
      imgs, jax.random.key(4)))
  new.colour = -0.1
  with pytest.raises(ValueError, match="colour strength must be >= 0.*-0.1"):
    augment.from_config(new)
  assert augment.from_config(ml_collections.ConfigDict({"flip": False, "rotation": 0.0})) is None


def test_shear_golden_rows_move_by_slope_times_distance_from_the_centre_row():
  """Slope 1 on a 3-row image: the top row moves one pixel right, the middle stays, the bottom
  moves one pixel left (edges repeated); slope 0 is exact; differentiable."""
  row = jnp.arange(5.0)
  x = jnp.broadcast_to(row, (1, 3, 5))[..., None]
  out = augment.shear(x, jnp.asarray([1.0]))[0, :, :, 0]
  np.testing.assert_allclose(out[0], [0, 0, 1, 2, 3])  # top: content moved right
  np.testing.assert_allclose(out[1], row)
  np.testing.assert_allclose(out[2], [1, 2, 3, 4, 4])
  np.testing.assert_array_equal(augment.shear(x, jnp.zeros(1)), x)
  grad = jax.grad(lambda im: augment.shear(im, jnp.asarray([0.5])).sum())(x)
  assert float(jnp.abs(grad).sum()) > 0
  imgs = _images(b=8)
  a = augment.random_shear(imgs, jax.random.key(0), max_degrees=20.0)
  chex.assert_equal_shape([a, imgs])
  np.testing.assert_array_equal(a, augment.random_shear(imgs, jax.random.key(0), max_degrees=20.0))
  with pytest.raises(ValueError, match="max_degrees must be in \\[0, 90\\), got 90"):
    augment.random_shear(imgs, jax.random.key(0), max_degrees=90.0)


def test_random_stroke_golden_dilation_and_erosion_of_one_pixel():
  """A bright pixel on a dark ground: at full weight a dilation makes it a 3x3 square and an
  erosion removes it; every output lies between the two; strength 0 is the identity."""
  x = jnp.full((64, 5, 5, 1), -1.0).at[:, 2, 2, 0].set(1.0)
  out = augment.random_stroke(x, jax.random.key(0), strength=1.0)
  dilated = jnp.full((5, 5), -1.0).at[1:4, 1:4].set(1.0)
  eroded = jnp.full((5, 5), -1.0)
  for image in np.asarray(out[..., 0]):
    # each image is x + w (op(x) - x), w in [0, 1]: on the segment from x to one of the two
    w_d = (image[1, 1] + 1) / 2
    w_e = (1 - image[2, 2]) / 2
    assert (np.allclose(image, np.asarray(x[0, ..., 0]) + w_d * (dilated - x[0, ..., 0]),
                        atol=1e-6) or
            np.allclose(image, np.asarray(x[0, ..., 0]) + w_e * (eroded - x[0, ..., 0]),
                        atol=1e-6))
  thick = np.asarray(out[:, 1, 1, 0] > -1.0)
  assert 0 < thick.sum() < len(thick)  # both operations drawn
  np.testing.assert_array_equal(augment.random_stroke(x, jax.random.key(0), strength=0.0), x)
  with pytest.raises(ValueError, match="strength must be in \\[0, 1\\], got 1.5"):
    augment.random_stroke(x, jax.random.key(0), strength=1.5)


def test_from_config_shear_and_stroke_keep_the_old_stream_when_off():
  """Groups without shear/stroke (or with them at 0) augment exactly as before; with them the
  output changes, stays seeded, and bad values are named."""
  base = {"flip": True, "rotation": 5.0, "zoom": 0.1, "shift": 0.0, "blur": 0.0, "colour": 0.2}
  imgs = _images(b=4, c=3)
  old = augment.from_config(ml_collections.ConfigDict(base))(imgs, jax.random.key(3))
  off = ml_collections.ConfigDict({**base, "shear": 0.0, "stroke": 0.0})
  np.testing.assert_array_equal(augment.from_config(off)(imgs, jax.random.key(3)), old)
  on = augment.from_config(ml_collections.ConfigDict({**base, "shear": 15.0, "stroke": 1.0}))
  a = on(imgs, jax.random.key(3))
  np.testing.assert_array_equal(a, on(imgs, jax.random.key(3)))
  assert not np.allclose(a, old)
  only = ml_collections.ConfigDict({"flip": False, "rotation": 0.0, "shear": 10.0})
  assert augment.from_config(only) is not None
  with pytest.raises(ValueError, match="shear must be in \\[0, 90\\).*shear=95"):
    augment.from_config(ml_collections.ConfigDict({**base, "shear": 95.0}))


def test_diff_augment_golden_translation_cutout_and_colour_bounds():
  """An empty policy is the identity; translation moves a single bright pixel by at most
  1/8 of the size (zeros shifted in, content kept); cutout zeroes one square of half the size
  (clipped at the borders) and keeps the rest exactly; colour on a constant grey image stays
  constant per image within the brightness and contrast ranges; all seeded and differentiable."""
  x = jnp.zeros((32, 16, 16, 1)).at[:, 8, 8, 0].set(1.0)
  np.testing.assert_array_equal(augment.diff_augment(x, jax.random.key(0), policy=()), x)
  moved = augment.diff_augment(x, jax.random.key(1), policy=("translation",))
  chex.assert_shape(moved, x.shape)
  np.testing.assert_allclose(moved.sum(axis=(1, 2, 3)), 1.0)  # the pixel stays inside
  ys, xs = np.nonzero(np.asarray(moved[..., 0]).reshape(32, 16, 16).max(axis=0))
  assert np.abs(ys - 8).max() <= 2 and np.abs(xs - 8).max() <= 2  # 16 / 8 = 2 pixels
  assert len(set(zip(ys, xs))) > 5  # and it does move, differently per image
  ones = jnp.ones((64, 16, 16, 1))
  cut = np.asarray(augment.diff_augment(ones, jax.random.key(2), policy=("cutout",)))
  assert set(np.unique(cut)) <= {0.0, 1.0}
  zeros = (cut == 0).sum(axis=(1, 2, 3))
  assert zeros.max() == 64 and zeros.min() >= 16  # 8x8, at least a quarter left in a corner
  for image in cut[:8, ..., 0]:  # the zeros form one axis-aligned rectangle
    r, c = np.nonzero(image == 0)
    assert (r.max() - r.min() + 1) * (c.max() - c.min() + 1) == len(r)
  grey = jnp.full((256, 4, 4, 3), 0.25)
  coloured = augment.diff_augment(grey, jax.random.key(3), policy=("colour",))
  np.testing.assert_allclose(coloured, coloured[:, :1, :1, :1] + 0 * coloured, atol=1e-6)
  assert -0.25 - 1e-6 <= float(coloured.min()) and float(coloured.max()) <= 0.75 + 1e-6
  assert float(coloured.std()) > 0.2
  a = augment.diff_augment(_images(c=3), jax.random.key(4))
  np.testing.assert_array_equal(a, augment.diff_augment(_images(c=3), jax.random.key(4)))
  grad = jax.grad(lambda im: augment.diff_augment(im, jax.random.key(5)).sum())(_images(c=3))
  assert float(jnp.abs(grad).sum()) > 0


def test_diff_augment_blur_and_instance_noise():
  """blur: the fixed low-pass of jgan.augment.gaussian_blur; noise: zero-mean, std as asked,
  drawn per key; both pass G's gradient."""
  x = _images(c=3)
  np.testing.assert_array_equal(augment.diff_augment(x, jax.random.key(0), policy=("blur",)),
                                augment.gaussian_blur(x, sigma=1.0))
  big = jnp.zeros((64, 16, 16, 3))
  noisy = np.asarray(augment.diff_augment(big, jax.random.key(1), policy=("noise",), noise=0.2))
  assert abs(noisy.mean()) < 0.01 and abs(noisy.std() - 0.2) < 0.01
  assert not np.array_equal(noisy, augment.diff_augment(big, jax.random.key(2),
                                                        policy=("noise",), noise=0.2))
  grad = jax.grad(lambda im: augment.diff_augment(im, jax.random.key(3),
                                                  policy=("blur", "noise")).sum())(x)
  assert np.all(np.asarray(grad) > 0)  # each output a weighted mean of its neighbours:
  np.testing.assert_allclose(np.sum(grad), x.size, rtol=1e-5)  # the weights sum to 1


def test_diff_augment_config_strings_and_errors():
  assert augment.diff_augment_from_config("") is None
  assert augment.diff_augment_from_config(" , ") is None
  fn = augment.diff_augment_from_config("color, translation")
  x = _images(c=3)
  np.testing.assert_array_equal(
      fn(x, jax.random.key(0)),
      augment.diff_augment(x, jax.random.key(0), policy=("colour", "translation")))
  with pytest.raises(ValueError, match=r"d_augment='colour,flip'.*'flip'.*cutout"):
    augment.diff_augment_from_config("colour,flip")
  blurred = augment.diff_augment_from_config("blur=0.7")(x, jax.random.key(0))
  np.testing.assert_allclose(blurred, augment.gaussian_blur(x, sigma=0.7), rtol=1e-6)
  with pytest.raises(ValueError, match=r"'colour' takes no value"):
    augment.diff_augment_from_config("colour=2")
  with pytest.raises(ValueError, match=r"'noise=abc' needs a number"):
    augment.diff_augment_from_config("noise=abc")
  with pytest.raises(ValueError, match=r"blur \(pixels\) and noise \(std\) must be >= 0"):
    augment.diff_augment(x, jax.random.key(0), policy=("noise",), noise=-1.0)
  with pytest.raises(ValueError, match=r"Unknown DiffAugment policy \['hue'\]"):
    augment.diff_augment(x, jax.random.key(0), policy=("hue",))
  with pytest.raises(ValueError, match="translation and cutout.*1.5"):
    augment.diff_augment(x, jax.random.key(0), translation=1.5)
