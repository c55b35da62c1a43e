"""Instance selection (jgan.data.selection): density, per-class keep, config, training path."""

import logging

import ml_collections
import numpy as np
import pytest

from jgan import train
from jgan.data import selection
from jgan.data.base import ArrayDataset
from tests.conftest import tiny_gan_config


def _cloud(n, *, outliers, seed=0):
  """n images near a mean image, the last ``outliers`` of them far from it."""
  rng = np.random.default_rng(seed)
  x = 100 + 10 * rng.standard_normal((n, 4, 4, 1))
  x[n - outliers:] += 80 * rng.choice([-1, 1], size=(outliers, 4, 4, 1))
  return np.clip(x, 0, 255).astype(np.uint8)


def test_gaussian_log_density_golden_case():
  """Points on two axes with variances 1 and 4 (dims=2): score = -0.5 (p1^2 / 1 + p2^2 / 4)."""
  pts = np.array([[1.0, 0], [-1, 0], [0, 2], [0, -2]])  # centred; per-axis variance 2/3, 8/3
  score = selection.gaussian_log_density(pts, dims=2)
  np.testing.assert_allclose(score, [-0.5 * 1 / (2 / 3)] * 2 + [-0.5 * 4 / (8 / 3)] * 2)
  with pytest.raises(ValueError, match="at least 2 images, got 1"):
    selection.gaussian_log_density(pts[:1])
  with pytest.raises(ValueError, match="dims must be an integer >= 1, got 0"):
    selection.gaussian_log_density(pts, dims=0)


def test_densest_indices_drops_the_outliers_per_class():
  images = np.concatenate([_cloud(20, outliers=4, seed=0), _cloud(10, outliers=2, seed=1)])
  labels = np.array([0] * 20 + [1] * 10)
  keep = selection.densest_indices(images, keep=0.8, labels=labels, dims=4)
  assert keep.tolist() == list(range(16)) + list(range(20, 28))  # 16 of 20, 8 of 10
  np.testing.assert_array_equal(selection.densest_indices(images, keep=1.0), np.arange(30))
  for bad in (0.0, 1.5, True):
    with pytest.raises(ValueError, match=r"keep must be a fraction in \(0, 1\]"):
      selection.densest_indices(images, keep=bad)


def test_from_config_subsets_images_labels_and_extras():
  images = _cloud(10, outliers=5)
  ds = ArrayDataset(images=images, labels=np.zeros(10, np.int32), num_classes=1, name="t",
                    source="here", extras={"text": np.arange(10)})
  data = ml_collections.ConfigDict({"keep_densest": 0.5, "keep_densest_dims": 4})
  kept = selection.from_config(ds, data)
  assert len(kept.images) == 5 and kept.extras["text"].tolist() == [0, 1, 2, 3, 4]
  assert kept.labels.tolist() == [0] * 5 and "densest 0.5 per class" in kept.source
  assert selection.from_config(ds, ml_collections.ConfigDict({})) is ds
  with pytest.raises(ValueError, match=r"config.data.keep_densest=2.0 is not a fraction"):
    selection.from_config(ds, ml_collections.ConfigDict({"keep_densest": 2.0}))


def test_training_runs_on_the_kept_images(tmp_path, caplog):
  with caplog.at_level(logging.INFO, logger="jgan.train"):
    result = train.run(tiny_gan_config(**{"data.keep_densest": 0.5}), str(tmp_path / "run"),
                       progress=False)
  assert result.step == 6
  # 64 images in 10 classes: ceil(half) of each, 35 in all
  assert any("Data: synthetic, 35 examples" in r.getMessage() and "densest 0.5 per class"
             in r.getMessage() for r in caplog.records)
