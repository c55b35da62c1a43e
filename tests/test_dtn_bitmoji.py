"""DTN on faces: the LFW source data, identity retrieval (golden values), the dlib encoder in
the dtn task (real weights, frozen) and the dtn_bitmoji configs."""

from __future__ import annotations

import sys

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgan import catalog
from jgan import config as config_lib
from jgan import data, imaging
from jgan.data import lfw
from jgan.evaluation import retrieval
from tests.conftest import set_dotted


def _key(seed):
  # 'rbg' keys: the initialisers compile in about half the time of threefry's on XLA:CPU.
  return jax.random.key(seed, impl="rbg")


# ------------------------------------------------------------------------------- lfw_faces


def test_lfw_faces_splits_shapes_and_determinism():
  train = data.load_dataset("lfw_faces", split="train")
  test = data.load_dataset("lfw_faces", split="test")
  assert train.images.shape == (80, 150, 150, 3) and test.images.shape == (20, 150, 150, 3)
  assert train.images.dtype == np.uint8 and train.num_classes == 100
  # Faces only (indices < 100 of lfw_subset), each once, the two splits disjoint.
  both = np.concatenate([train.labels, test.labels])
  np.testing.assert_array_equal(np.sort(both), np.arange(100))
  # RGB made of one grey channel.
  for ds in (train, test):
    np.testing.assert_array_equal(ds.images[..., 0], ds.images[..., 1])
    np.testing.assert_array_equal(ds.images[..., 0], ds.images[..., 2])
  # Deterministic for a seed, another split for another seed.
  again = lfw.load_lfw_faces("test")
  np.testing.assert_array_equal(again.images, test.images)
  np.testing.assert_array_equal(again.labels, test.labels)
  np.testing.assert_array_equal(test.labels, lfw.split_indices("test", seed=0))
  assert not np.array_equal(lfw.split_indices("test", seed=1), test.labels)
  # image_size through load_dataset; at 25 the crops are skimage's own faces, untouched.
  small = data.load_dataset("lfw_faces", split="test", image_size=64)
  assert small.images.shape == (20, 64, 64, 3)
  import skimage.data  # pylint: disable=import-outside-toplevel
  crops = np.rint(np.asarray(skimage.data.lfw_subset()) * 255).astype(np.uint8)
  raw = lfw.load_lfw_faces("test", image_size=25)
  np.testing.assert_array_equal(raw.images[..., 0], crops[raw.labels])
  assert raw.labels.max() < 100  # never one of the 100 non-face patches
  assert data.DEFAULT_SOURCES["lfw_faces"] == ("offline",)


def test_lfw_faces_without_scikit_image_names_the_package(monkeypatch):
  lfw._faces.cache_clear()  # pylint: disable=protected-access
  monkeypatch.setitem(sys.modules, "skimage.data", None)  # import skimage.data -> ImportError
  try:
    with pytest.raises(data.DatasetNotFoundError, match="pip install scikit-image"):
      data.load_dataset("lfw_faces")
  finally:
    lfw._faces.cache_clear()  # pylint: disable=protected-access


# ------------------------------------------------------------------------------- retrieval


def test_retrieval_golden_values_with_a_tie():
  gallery = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
  queries = np.array([[0.4, 0.0],   # d = 0.4, 0.6, 2.04 -> its source g0 first: rank 1
                      [0.5, 0.0],   # d = 0.5, 0.5, 2.06: g0 ties with its source g1 -> rank 2
                      [0.0, 1.9]])  # d = 1.9, 2.15, 0.1 -> rank 1
  np.testing.assert_allclose(retrieval.pairwise_distances(queries, gallery)[1],
                             [0.5, 0.5, np.sqrt(0.25 + 4.0)], rtol=1e-12)
  np.testing.assert_array_equal(retrieval.match_ranks(queries, gallery), [1, 2, 1])
  scores = retrieval.identity_retrieval(queries, gallery)
  expected = {"top1": 2 / 3, "top5": 1.0, "median_rank": 1.0, "mean_rank": 4 / 3, "num": 3.0,
              "top1_chance": 1 / 3, "top5_chance": 1.0, "median_rank_chance": 2.0}
  assert scores.keys() == expected.keys()
  for k, v in expected.items():
    assert scores[k] == pytest.approx(v, rel=1e-12), k


def test_retrieval_scores_top_k_median_and_chance():
  ranks = np.array([3, 1, 8, 5, 2, 6, 4, 7])
  s = retrieval.scores_from_ranks(ranks, ks=(1, 5, 10))
  assert s["top1"] == 1 / 8 and s["top5"] == 5 / 8 and s["top10"] == 1.0
  assert s["median_rank"] == 4.5 and s["mean_rank"] == 4.5  # even N: mean of 4 and 5
  assert s["top1_chance"] == 1 / 8 and s["top5_chance"] == 5 / 8 and s["top10_chance"] == 1.0
  assert s["median_rank_chance"] == 4.5
  assert retrieval.chance_levels(20) == {"top1_chance": 0.05, "top5_chance": 0.25,
                                         "median_rank_chance": 10.5}
  with pytest.raises(ValueError, match="in \\[1, N\\]"):
    retrieval.scores_from_ranks(np.array([0, 1]))
  with pytest.raises(ValueError, match="\\[N, D\\]"):
    retrieval.match_ranks(np.zeros((3, 2)), np.zeros((4, 2)))
  with pytest.raises(ValueError, match="distance"):
    retrieval.match_ranks(np.zeros((3, 2)), np.zeros((3, 2)), distance="manhattan")


def test_retrieval_degenerate_translations_score_exactly_chance():
  rng = np.random.default_rng(0)
  gallery = rng.normal(size=(9, 4))
  constant = np.tile(rng.normal(size=(1, 4)), (9, 1))  # g ignored its input
  ranks = retrieval.match_ranks(constant, gallery)
  np.testing.assert_array_equal(np.sort(ranks), np.arange(1, 10))  # a permutation
  s = retrieval.identity_retrieval(constant, gallery)
  assert s["top1"] == s["top1_chance"] and s["top5"] == s["top5_chance"]
  assert s["median_rank"] == s["median_rank_chance"] == 5.0
  # All gallery items at one distance: every rank is N (ties never help).
  np.testing.assert_array_equal(retrieval.match_ranks(np.zeros((3, 2)), np.zeros((3, 2))),
                                [3, 3, 3])
  # Perfect translations: rank 1 each.
  np.testing.assert_array_equal(retrieval.match_ranks(gallery, gallery), np.ones(9))


def test_retrieval_is_invariant_to_a_consistent_permutation():
  rng = np.random.default_rng(1)
  gallery = rng.normal(size=(30, 8))
  queries = gallery + rng.normal(scale=0.8, size=gallery.shape)
  ranks = retrieval.match_ranks(queries, gallery)
  assert 1 < ranks.max() and ranks.min() == 1  # a non-trivial case
  perm = rng.permutation(30)
  np.testing.assert_array_equal(retrieval.match_ranks(queries[perm], gallery[perm]), ranks[perm])
  assert (retrieval.identity_retrieval(queries[perm], gallery[perm])
          == retrieval.identity_retrieval(queries, gallery))
  # Cosine ignores the scale of a query; Euclidean does not.
  scaled = gallery * rng.uniform(2.0, 5.0, size=(30, 1))
  np.testing.assert_array_equal(retrieval.match_ranks(scaled, gallery, distance="cosine"),
                                np.ones(30))
  np.testing.assert_allclose(retrieval.pairwise_distances(np.array([[1.0, 0.0]]),
                                                          np.array([[0.0, 3.0], [2.0, 2.0]]),
                                                          distance="cosine"),
                             [[1.0, 1.0 - np.sqrt(0.5)]], rtol=1e-12)


# ----------------------------------------------------------------- dlib f in the dtn task


def _face_config(**overrides):
  """dtn_bitmoji32 on tiny data: 32x32 synthetic RGB targets, LFW sources at 32x32."""
  c = catalog.load_experiment("dtn_bitmoji32")
  c.data.name = "synthetic"
  c.data.synthetic_shape = (32, 32, 3)
  c.data.synthetic_examples = 16
  c.data.image_size = 0
  c.source_data.image_size = 32
  c.model.generator.width = 4
  c.model.discriminator.width = 4
  c.batch_size = 4
  c.eval.batch_size = 16
  c.eval.metrics = ("retrieval",)  # no judge run (avatars_classifier) in these tests
  return set_dotted(c, overrides)


def test_dtn_bitmoji_configs_build_and_validate():
  from experiments import dtn_bitmoji  # pylint: disable=import-outside-toplevel
  from jgan.tasks import dtn  # pylint: disable=import-outside-toplevel
  for name, size in (("dtn_bitmoji", 64), ("dtn_bitmoji32", 32)):
    c = catalog.load_experiment(name)
    config_lib.validate(c)
    assert c.task == "dtn" and c.encoder.name == "dlib_resnet"
    assert c.source_data.name == "lfw_faces" and c.data.name == "avatars"
    assert c.data.image_size == size and c.source_data.image_size == 150
    # alpha on standardised descriptors (raw, the paper's 100 collapsed g); beta the paper's.
    assert c.encoder.standardize
    assert (c.loss.const_weight, c.loss.tid_weight) == (dtn_bitmoji.STANDARDIZED_ALPHA, 1.0)
    assert c.source_augment.flip and c.source_augment.rotation == 5.0
    assert tuple(c.eval.retrieval_splits) == ("train", "test")
    assert c.loss.tv_weight == pytest.approx(dtn_bitmoji.TV_SCALE * 0.05 / (size * size * 3))
    # Issue 22's recipe: f cached, L_CONST on 8 translations perturbed before f, mixed
    # descriptors, an EMA of g that the evaluation uses.
    assert c.encoder.cache and c.loss.const_examples == 8 and c.loss.feature_mix == 0.5 \
        and c.loss.feature_gaussian == 0.5
    assert c.loss.const_perturb.zoom == 0.1 and c.loss.const_perturb.blur == 1.5
    # The translation picks its own face; at 64, g draws from f(x) and noise (MSGAN's term).
    assert c.loss.const_contrastive_weight == 1.0
    assert (c.model.generator.noise_dim, c.loss.mode_seeking_weight) == (
        (16, 1.0) if size == 64 else (0, 0.0))
    assert c.ema_decay and c.eval.use_ema
    # 2,800 steps fit the 30 minutes at 64 (FID still falling at 2,000); evaluated 4 times.
    assert (c.total_steps, c.eval_every) == ((2800, 700) if size == 64 else (600, 400))
    # Judged by avatars_classifier too (issue 22's figures).
    assert tuple(c.eval.metrics) == ("retrieval", "fid", "kid_heldout", "reconstruction")
    assert c.eval.classifier == "avatars_classifier" and c.eval.fid_variants
    assert tuple(c.eval.fid_splits) == ("train", "test")
    assert set(dtn.prerequisites(c)) == {"judge"}  # f is dlib's file, not a run
    assert (c.eval.best_metric, c.eval.best_mode) == ("retrieval_top1", "max")
    task = dtn.build(c, image_shape=(size, size, 3), source_shape=(150, 150, 3))
    assert "dlib_resnet" in task.describe and "alpha=10.0" in task.describe
    assert "cached" in task.describe and "const_perturb.blur=1.5" in task.describe
    assert "const_contrastive_weight=1.0" in task.describe
    assert ("16 noise values" in task.describe) == (size == 64)
    state = jax.eval_shape(task.init, _key(0))  # shapes only: nothing trained or compiled
    out = jax.eval_shape(task.translate, state,
                         jax.ShapeDtypeStruct((2, 150, 150, 3), jnp.float32))
    chex.assert_shape(out, (2, size, size, 3))
  assert dtn_bitmoji.tv_weight(64) == pytest.approx(0.05 / 12288)
  # The encoder's generic keys are checked against dlib's network; unknown names listed.
  with pytest.raises(ValueError, match=r"--config.encoder.image_shape=150,150,3"):
    dtn.build_encoder(_face_config(**{"encoder.image_shape": (32, 32, 3)}).encoder)
  with pytest.raises(ValueError, match="classifier, dlib_resnet"):
    dtn.build_encoder(_face_config(**{"encoder.name": "facenet"}).encoder)
  with pytest.raises(ValueError, match="retrieval_distance"):
    dtn.build(_face_config(**{"eval.retrieval_distance": "l3"}), image_shape=(32, 32, 3),
              source_shape=(32, 32, 3))


@pytest.mark.slow
def test_dlib_encoder_in_the_dtn_task_is_loaded_and_frozen():
  """Real weights: f_variables equal load_dlib_face_resnet() after load_pretrained and after
  two steps; g and D change; the retrieval evaluation runs on the 20 held-out faces."""
  from jgan.models import dlib_resnet  # pylint: disable=import-outside-toplevel
  from jgan.tasks import dtn  # pylint: disable=import-outside-toplevel
  c = _face_config()
  task = dtn.build(c, image_shape=(32, 32, 3), source_shape=(32, 32, 3))
  state0 = task.load_pretrained(jax.jit(task.init)(_key(0)))
  reference = dlib_resnet.load_dlib_face_resnet()
  # Standardised f (dtn_bitmoji's setting): dlib's weights plus the training faces' statistics.
  chex.assert_trees_all_equal(jax.tree.map(np.asarray, state0.f_variables["network"]),
                              reference)
  f = dtn.build_encoder(c.encoder)
  train_faces = imaging.to_float(jnp.asarray(data.load_dataset("lfw_faces", image_size=32).images))
  raw = np.asarray(f.apply(reference, train_faces), np.float64)
  np.testing.assert_allclose(state0.f_variables["mean"], raw.mean(0), atol=1e-5)
  np.testing.assert_allclose(state0.f_variables["std"], raw.std(0), rtol=1e-3)

  rng = np.random.default_rng(0)
  batches = [{"image": rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8),
              "source_image": data.load_dataset("lfw_faces", image_size=32).images[4 * i:4 * i + 4]}
             for i in range(2)]
  step = jax.jit(task.step)
  state = state0
  for i, batch in enumerate(batches):
    state, metrics = step(state, batch, _key(i))
  assert int(state.step) == 2
  for k in ("d_loss", "g_loss", "g_gan", "const", "tid", "tv"):
    assert np.isfinite(float(metrics[k])), k
  assert float(metrics["const"]) > 0
  chex.assert_trees_all_equal(jax.tree.map(np.asarray, state.f_variables["network"]),
                              reference)  # frozen
  chex.assert_trees_all_equal(state.f_variables["std"], state0.f_variables["std"])
  moved = [float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
           for a, b in zip(jax.tree.leaves(state.g_params), jax.tree.leaves(state0.g_params))]
  assert max(moved) > 0

  # f as the task applies it is dlib's network on the image resized to 150x150.
  x = imaging.to_float(jnp.asarray(batches[0]["source_image"]))
  np.testing.assert_allclose(
      f.apply(state.f_variables["network"], x),
      dlib_resnet.DlibFaceResNet().apply(reference, jax.image.resize(x, (4, 150, 150, 3),
                                                                     "bilinear")),
      atol=1e-5)

  scores = task.evaluate(state)
  assert scores["retrieval_num"] == 20.0
  assert scores["retrieval_top1_chance"] == 0.05 and scores["retrieval_median_rank_chance"] == 10.5
  assert 0.0 <= scores["retrieval_top1"] <= scores["retrieval_top5"] <= 1.0
  assert 1.0 <= scores["retrieval_median_rank"] <= 20.0
  assert scores["retrieval_train_num"] == 80.0  # and on the training faces
  assert 1.0 <= scores["retrieval_train_median_rank"] <= 80.0
