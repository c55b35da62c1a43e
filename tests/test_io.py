"""Host-side pieces of a run: image grids, metric files, optimizers, batch-size checks."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jgan import imaging, optim, sharding, writers


def test_to_uint8_and_back():
  x = np.array([-1.0, 0.0, 1.0, 2.0, -3.0], np.float32)
  np.testing.assert_array_equal(imaging.to_uint8(x), [0, 128, 255, 255, 0])
  u = np.array([0, 255], np.uint8)
  np.testing.assert_allclose(np.asarray(imaging.to_float(u)), [-1.0, 1.0])


def test_median_residual_scores_impulses_not_flat_areas_or_edges():
  flat = np.full((1, 5, 6, 2), 0.3, np.float32)
  edge = np.concatenate([np.full((1, 5, 3, 2), -1.0), np.full((1, 5, 3, 2), 1.0)], axis=2)
  impulse = flat.copy()
  impulse[0, 2, 3, 1] += 0.9  # one pixel of one channel: h / (H * W * C)
  out = np.asarray(imaging.median_residual(np.concatenate([flat, edge, impulse])))
  assert out.shape == (3,)
  np.testing.assert_allclose(out, [0.0, 0.0, 0.9 / (5 * 6 * 2)], atol=1e-7)
  rng = np.random.default_rng(0)
  noisy = impulse + rng.normal(0, 0.2, impulse.shape).astype(np.float32)
  assert float(imaging.median_residual(noisy)[0]) > 0.1  # std-0.2 noise: ~0.13
  with pytest.raises(ValueError, match=r"\[B, H, W, C\]"):
    imaging.median_residual(np.zeros((5, 6, 2)))


def test_median3x3_by_hand():
  """The impulse is removed, the edge kept; a corner's window replicates the border."""
  x = np.zeros((1, 3, 3, 1), np.float32)
  x[0, 1, 1, 0] = 1.0  # impulse in the middle
  x[0, 0, 0, 0] = 2.0  # corner: window {2, 2, 2, 2, 0, 0, 0, 0, 1} by edge replication
  out = np.asarray(imaging.median3x3(x))[0, :, :, 0]
  np.testing.assert_array_equal(out[1, 1], 0.0)
  np.testing.assert_array_equal(out[0, 0], 1.0)
  edge = np.concatenate([np.full((1, 4, 2, 1), -1.0), np.full((1, 4, 2, 1), 1.0)], axis=2)
  np.testing.assert_array_equal(imaging.median3x3(edge), edge)
  with pytest.raises(ValueError, match=r"median3x3.*\[B, H, W, C\]"):
    imaging.median3x3(np.zeros((5, 6, 2)))


def _sorted_median3x3(x):
  h, w = x.shape[1:3]
  padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
  return jnp.median(jnp.stack([padded[:, i:i + h, j:j + w] for i in range(3)
                               for j in range(3)]), axis=0)


def test_median3x3_network_and_gradient_match_a_sort():
  """The compare-exchange network equals the sorted median, and its hand-written gradient
  equals autodiff through the sort (random values: no ties); on a tie the gradient goes to
  one pixel: the total is kept."""
  x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 7, 9, 3)), jnp.float32)
  np.testing.assert_array_equal(imaging.median3x3(x), _sorted_median3x3(x))
  weights = jnp.cos(x)
  grad = jax.grad(lambda v: jnp.sum(imaging.median3x3(v) * weights))(x)
  want = jax.grad(lambda v: jnp.sum(_sorted_median3x3(v) * weights))(x)
  np.testing.assert_allclose(grad, want, atol=1e-6)
  flat = jnp.zeros((1, 4, 4, 1))
  np.testing.assert_allclose(jnp.sum(jax.grad(lambda v: jnp.sum(imaging.median3x3(v)))(flat)),
                             16.0)


def test_grid_layout_and_png(tmp_path):
  images = np.stack([np.full((3, 4, 1), v, np.float32) for v in (-1.0, 1.0, -1.0)])
  grid = imaging.make_grid(imaging.to_uint8(images), ncols=2, padding=1)
  assert grid.shape == (2 * 4 + 1, 2 * 5 + 1, 1)
  assert grid[1, 1, 0] == 0 and grid[1, 6, 0] == 255 and grid[5, 1, 0] == 0
  assert grid[5, 6, 0] == 255  # the empty fourth cell is padding
  path = str(tmp_path / "sub" / "g.png")
  imaging.save_grid(path, images, ncols=2)
  assert Image.open(path).size == (2 * 6 + 2, 2 * 5 + 2)
  assert oct(os.stat(path).st_mode & 0o777) != oct(0o600)
  assert not [f for f in os.listdir(tmp_path / "sub") if f.endswith(".tmp")]
  with pytest.raises(ValueError, match=r"\[N, H, W, C\]"):
    imaging.make_grid(np.zeros((3, 4, 4)))


def test_metric_writer_truncates_lines_after_the_resume_step(tmp_path):
  w = writers.MetricWriter(str(tmp_path))
  for step in (1, 2, 3):
    w.write_scalars(step, {"g_loss": step * 0.5, "d_loss": float("nan")})
  w.close()
  with open(tmp_path / "metrics.jsonl", "a") as f:
    f.write('{"step": 4, "g_lo')  # a line cut short by a crash
  w = writers.MetricWriter(str(tmp_path))
  w.truncate_after(2)
  w.close()
  records = writers.read_metrics(str(tmp_path / "metrics.jsonl"))
  assert [r["step"] for r in records] == [1, 2]
  assert records[1]["g_loss"] == 1.0 and records[1]["d_loss"] == "nan"
  assert writers.plot_metrics(str(tmp_path / "metrics.jsonl"), str(tmp_path / "p.png"))
  assert not writers.plot_metrics(str(tmp_path / "none.jsonl"), str(tmp_path / "q.png"))


def test_optimizer_errors_name_the_choices():
  assert optim.make_optimizer("adam", learning_rate=1e-3, b1=0.5) is not None
  with pytest.raises(ValueError, match="adamm.*adam"):
    optim.make_optimizer("adamm", learning_rate=1e-3)
  with pytest.raises(ValueError, match="sgd"):
    optim.make_optimizer("sgd", learning_rate=1e-3, b1=0.5)


def test_distributed_needs_all_three_settings(monkeypatch):
  for name in ("JGAN_COORDINATOR_ADDRESS", "JGAN_NUM_PROCESSES", "JGAN_PROCESS_ID"):
    monkeypatch.delenv(name, raising=False)
  assert sharding.maybe_initialize_distributed() is False
  with pytest.raises(ValueError, match="coordinator"):
    sharding.maybe_initialize_distributed(num_processes=2)
  with pytest.raises(ValueError, match="process_id=None"):
    sharding.maybe_initialize_distributed(coordinator_address="127.0.0.1:1", num_processes=2)


def test_tensorboard_tags_replace_what_tensorboard_rejects():
  from jgan.writers import tensorboard_tag
  assert tensorboard_tag("eval/fid/classifier:mnist_classifier:features") == (
      "eval/fid/classifier_mnist_classifier_features")
  assert tensorboard_tag("eval/kid_std/x y") == "eval/kid_std/x_y"
  assert tensorboard_tag("g_loss") == "g_loss"
