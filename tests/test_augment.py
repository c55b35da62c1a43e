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
