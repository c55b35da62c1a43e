"""jgan.latent: the priors of z (standard normal, static Gaussian mixture) and their config."""

import chex
import jax
import ml_collections
import numpy as np
import pytest

from jgan import latent, tasks
from tests.conftest import tiny_gan_config


def test_standard_normal_is_jax_normal():
  z = latent.standard_normal(jax.random.key(3), 5, latent_dim=7)
  chex.assert_shape(z, (5, 7))
  chex.assert_type(z, np.float32)
  np.testing.assert_array_equal(z, jax.random.normal(jax.random.key(3), (5, 7)))


def test_gaussian_mixture_draws_around_its_fixed_means():
  """Golden case: with a tiny scale every latent sits on one of the means, which are uniform
  in [-spread, spread]^d, drawn from their own seed (not the key), and every component is
  used; the means differ between seeds."""
  means = latent.mixture_means(latent_dim=6, components=4, spread=2.0)
  chex.assert_shape(means, (4, 6))
  assert float(np.abs(means).max()) <= 2.0 and float(np.abs(means).max()) > 1.0
  np.testing.assert_array_equal(means, latent.mixture_means(latent_dim=6, components=4,
                                                            spread=2.0))
  assert not np.allclose(means, latent.mixture_means(latent_dim=6, components=4, spread=2.0,
                                                     seed=1))
  z = latent.gaussian_mixture(jax.random.key(0), 400, latent_dim=6, components=4, spread=2.0,
                              scale=1e-3)
  chex.assert_shape(z, (400, 6))
  distance = np.linalg.norm(np.asarray(z)[:, None] - np.asarray(means)[None], axis=-1)
  assert distance.min(axis=1).max() < 0.02  # each on a mean ...
  assert set(distance.argmin(axis=1)) == {0, 1, 2, 3}  # ... and every mean used
  # Unit scale: around each mean a standard normal (std over the draws of one component ~1).
  z = np.asarray(latent.gaussian_mixture(jax.random.key(1), 4000, latent_dim=6, components=1,
                                         spread=2.0))
  np.testing.assert_allclose(z.mean(0), np.asarray(latent.mixture_means(
      latent_dim=6, components=1, spread=2.0))[0], atol=0.1)
  np.testing.assert_allclose(z.std(0), 1.0, atol=0.05)


def test_bad_priors_are_named():
  with pytest.raises(ValueError, match="components must be >= 1, got 0"):
    latent.gaussian_mixture(jax.random.key(0), 2, latent_dim=3, components=0, spread=1.0)
  with pytest.raises(ValueError, match="scale > 0.*scale=0.0"):
    latent.gaussian_mixture(jax.random.key(0), 2, latent_dim=3, components=2, spread=1.0,
                            scale=0.0)
  model = ml_collections.ConfigDict({"latent_dim": 3, "latent_prior": "uniform"})
  with pytest.raises(ValueError, match="latent_prior='uniform'; allowed: 'normal', 'mixture'"):
    latent.from_config(model)
  model = ml_collections.ConfigDict({"latent_dim": 3, "latent_prior": "mixture",
                                     "latent_components": -1})
  with pytest.raises(ValueError, match="components must be >= 1, got -1"):
    latent.from_config(model)


def test_gan_task_trains_samples_and_draws_from_the_mixture():
  """model.latent_prior="mixture": the task's sample inputs are the mixture's, and the step's
  fakes come from it (a different prior changes the step's result from the same key)."""
  normal = tasks.build_task(tiny_gan_config(), image_shape=(8, 8, 1), num_classes=None)
  mixed = tasks.build_task(tiny_gan_config(**{"model.latent_prior": "mixture",
                                              "model.latent_components": 3,
                                              "model.latent_spread": 5.0,
                                              "model.latent_scale": 1e-3}),
                           image_shape=(8, 8, 1), num_classes=None)
  z = np.asarray(mixed.sample_inputs(jax.random.key(0), 64))
  assert len(np.unique(z.round(1), axis=0)) == 3  # three points: the means
  state = normal.init(jax.random.key(0))
  rng = np.random.default_rng(0)
  batch = {"image": rng.integers(0, 256, (8, 8, 8, 1), dtype=np.uint8)}
  _, m_normal = jax.jit(normal.step)(state, batch, jax.random.key(1))
  _, m_mixed = jax.jit(mixed.step)(state, batch, jax.random.key(1))
  assert np.isfinite(float(m_mixed["g_loss"]))
  assert float(m_mixed["d_fake"]) != float(m_normal["d_fake"])
