"""Augmentations: exact flips and rotations, seeded, shape-preserving."""

import chex
import jax
import jax.numpy as jnp
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
