"""Text-to-image evaluation: attribute accuracy, the shuffled-caption baseline, the attribute
classifier, the t2i task's evaluate (in training and ``jgan.evaluate``) and caption
interpolation."""

from __future__ import annotations

import json
import os

import jax
import numpy as np
import pytest
from PIL import Image

from jgan import catalog
from jgan import config as config_lib
from jgan import evaluate as evaluate_cli
from jgan import runs, sample, train
from jgan.data import captioned
from jgan.evaluation import attributes, features
from jgan.evaluation import metrics as metrics_lib
from jgan.tasks import t2i
from tests.conftest import set_dotted
from tests.test_t2i_task import tiny as tiny_t2i

# ------------------------------------------------------------------------------- metrics

COUNTS = (3, 2)
NAMES = ("a", "b")


def test_attribute_accuracy_golden_values_with_missing_labels():
  logits = np.array([[2, 0, 0, 0, 1],    # pred (0, 1)
                     [0, 3, 0, 5, 0],    # pred (1, 0)
                     [0, 0, 1, 0, 2],    # pred (2, 1)
                     [1, 0, 0, 0, 0]],   # pred (0, 0)
                    np.float32)
  labels = np.array([[0, 1],     # both right
                     [2, -1],    # a wrong, b not given
                     [2, 0],     # a right, b wrong
                     [0, -1]])   # a right, b not given
  pred = attributes.attribute_predictions(logits, COUNTS)
  np.testing.assert_array_equal(pred, [[0, 1], [1, 0], [2, 1], [0, 0]])
  scores = attributes.attribute_accuracy(pred, labels, NAMES)
  assert scores == pytest.approx({"attr_acc/a": 0.75, "attr_acc/b": 0.5,
                                  "attr_mean_acc": 0.625, "attr_all_correct": 0.5})
  # The held-out combination's attributes only: rows 0, 1 (its b is not given) and 3 right.
  mask = np.array([[1, 0], [0, 1], [0, 1], [1, 1]], bool)
  assert attributes.combination_accuracy(pred, labels, mask) == 0.75
  # An attribute no row gives is NaN and left out of the mean; the prefix names the set.
  none = attributes.attribute_accuracy(pred, np.array([[0, -1]] * 4), NAMES, prefix="x_")
  assert np.isnan(none["x_acc/b"]) and none["x_mean_acc"] == 0.5
  assert none["x_all_correct"] == 0.5
  with pytest.raises(ValueError, match=r"logits \[N, 5\]"):
    attributes.attribute_predictions(logits[:, :4], COUNTS)
  with pytest.raises(ValueError, match=r"\[N, 2\]"):
    attributes.attribute_accuracy(pred, labels[:, :1], NAMES)


def test_shuffled_baseline_is_chance_given_the_marginal():
  perm = attributes.derangement(50, seed=3)
  assert sorted(perm) == list(range(50)) and not np.any(perm == np.arange(50))
  np.testing.assert_array_equal(perm, attributes.derangement(50, seed=3))
  np.testing.assert_array_equal(attributes.derangement(1), [0])
  # A generator that follows every caption: perfect, and 0 against others' distinct captions.
  labels = np.array([[a, b] for a in range(3) for b in range(2)])
  perfect = attributes.attribute_accuracy(labels, labels, NAMES)
  shuffled = attributes.attribute_accuracy(labels, labels[attributes.derangement(6)], NAMES)
  assert perfect["attr_all_correct"] == 1.0 and shuffled["attr_all_correct"] == 0.0
  # With many captions the shuffled score is the chance of the labels' marginal: 1/4 for a
  # uniform 4-class attribute; a text-ignoring generator scores it either way.
  rng = np.random.default_rng(0)
  many = rng.integers(0, 4, (4000, 1))
  shuffled = attributes.attribute_accuracy(many, many[attributes.derangement(4000)], ("c",))
  assert abs(shuffled["attr_acc/c"] - 0.25) < 0.03
  constant = np.zeros_like(many)
  assert attributes.attribute_accuracy(constant, many, ("c",))["attr_acc/c"] == pytest.approx(
      attributes.attribute_accuracy(constant, many[attributes.derangement(4000)],
                                    ("c",))["attr_acc/c"], abs=0.03)


def test_held_out_eval_set_asks_for_held_out_combinations():
  c = t2i.default_config()
  captions, labels, mask = t2i.held_out_eval_set(c.data, num=8, seed=0)
  assert len(captions) == 8 and labels.shape == mask.shape == (8, 5)
  assert captioned.held_out_mask(labels).all()
  names = list(captioned.AVATAR_ATTRIBUTES)
  assert {names[a] for a in np.flatnonzero(mask[0])} == set(captioned.HELD_OUT[0])
  assert "red" in captions[0] or "ginger" in captions[0]  # long red hair, in words
  assert t2i.held_out_eval_set(c.data, num=8, seed=0)[0] == captions  # fixed by the seed
  c.data.name = "oxford_flowers102"
  with pytest.raises(ValueError, match="eval.metrics"):
    t2i.held_out_eval_set(c.data, num=8, seed=0)


def test_interpolation_inputs_mix_the_embeddings_with_fixed_noise():
  a, b = np.ones(6, np.float32), np.zeros(6, np.float32)
  z = np.arange(3 * 4, dtype=np.float32).reshape(3, 4)
  inputs = t2i.interpolation_inputs(a, b, steps=5, z=z)
  assert inputs["z"].shape == (15, 4) and inputs["text"].shape == (15, 6)
  text = np.asarray(inputs["text"]).reshape(3, 5, 6)
  np.testing.assert_allclose(text[:, :, 0], np.tile([1, 0.75, 0.5, 0.25, 0], (3, 1)))
  np.testing.assert_array_equal(np.asarray(inputs["z"]).reshape(3, 5, 4),
                                np.repeat(z[:, None], 5, axis=1))
  with pytest.raises(ValueError, match="steps >= 2"):
    t2i.interpolation_inputs(a, b, steps=1, z=z)


# ------------------------------------------------------------------------------- end to end


def _tiny_classifier(**overrides):
  c = catalog.load_experiment("avatar_attributes_classifier")
  c.data.num_examples = 48
  c.model.widths = (4, 8)
  c.model.feature_dim = 8
  c.batch_size = 8
  c.total_steps = 2
  c.log_every = 1
  c.sample_every = 2
  c.checkpoint_every = 2
  c.eval_every = 2
  return set_dotted(c, overrides)


def _tiny_t2i(classifier_workdir, **overrides):
  """t2i_avatars at test_t2i_task's tiny sizes, evaluated every 2 steps by a tiny judge."""
  c = tiny_t2i(catalog.load_experiment("t2i_avatars"))
  c.data.num_examples = 48
  c.data.captions_per_image = 2
  c.eval_every = 2
  c.eval.classifier_workdir = classifier_workdir
  c.eval.num_examples = 12
  c.eval.batch_size = 8
  c.eval.metrics = ("attributes", "fid", "diversity")
  c.eval.diversity_captions, c.eval.diversity_samples = 3, 2
  return set_dotted(c, overrides)


@pytest.mark.slow
def test_t2i_attribute_evaluation_end_to_end(tmp_path, monkeypatch, capsys):
  # The judge is missing: the first evaluation trains it (a tiny stand-in for the experiment).
  asked, clf_config = [], _tiny_classifier()
  clf_dir = str(tmp_path / "attr_clf")
  config = _tiny_t2i(clf_dir)

  def load_experiment(name):
    asked.append(name)
    return clf_config

  monkeypatch.setattr(catalog, "load_experiment", load_experiment)
  workdir = str(tmp_path / "t2i")
  with jax.default_prng_impl("rbg"):
    result = runs.train(config, workdir, progress=False)
  assert asked == ["avatar_attributes_classifier"] and result.step == 2

  # The judge: one head per attribute, evaluated per attribute on the test split.
  with open(os.path.join(clf_dir, "metrics.jsonl")) as f:
    clf_record = [json.loads(line) for line in f][-1]
  for name in captioned.AVATAR_ATTRIBUTES:
    assert 0.0 <= clf_record[f"eval/test_acc/{name}"] <= 1.0
  assert 0.0 <= clf_record["eval/test_all_correct"] <= clf_record["eval/test_accuracy"] <= 1.0
  judge = runs.classifier_network(clf_dir)
  out = features.extract(judge, np.zeros((3, 32, 32, 3), np.uint8), batch_size=2)
  assert out["logits"].shape == (3, 4 + 6 + 4 + 3 + 2) and out["features"].shape == (3, 8)

  # The t2i run logged the attribute metrics, the baselines and FID, and kept its best.
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    record = [json.loads(line) for line in f][-1]
  for prefix in ("attr_", "attr_shuffled_", "attr_real_", "attr_seen_"):
    for name in captioned.AVATAR_ATTRIBUTES:
      assert 0.0 <= record[f"eval/{prefix}acc/{name}"] <= 1.0, (prefix, name)
    assert 0.0 <= record[f"eval/{prefix}all_correct"] <= record[f"eval/{prefix}mean_acc"] <= 1
  assert 0.0 <= record["eval/attr_combo_correct"] <= 1.0
  assert 0.0 <= record["eval/attr_shuffled_combo_correct"] <= 1.0
  assert np.isfinite(record[f"eval/fid/{judge.name}"])
  # Diversity: pairwise feature distances of one caption's samples, and of real avatars
  # rendered with its attributes (different avatars: > 0).
  assert record[f"eval/diversity/{judge.name}"] >= 0.0
  assert record[f"eval/diversity_real/{judge.name}"] > 0.0
  assert os.listdir(os.path.join(workdir, "checkpoints_best")) == ["2"]

  # python -m jgan.evaluate gives the same numbers (fixed captions and noise), one a line.
  capsys.readouterr()
  assert evaluate_cli.main(["--workdir", workdir]) == 0
  printed = capsys.readouterr().out
  assert "attr_acc/hair" in printed and "attr_shuffled_all_correct" in printed
  with open(os.path.join(workdir, "eval.json")) as f:
    (row,) = json.load(f)["rows"].values()
  for key in ("attr_all_correct", "attr_shuffled_all_correct", "attr_real_all_correct",
              "attr_seen_all_correct", "attr_acc/glasses"):
    assert row[key] == pytest.approx(record[f"eval/{key}"], abs=1e-6), key
  # --metrics takes the t2i task's names (attr_seen_* needs the FID images) and names them.
  assert evaluate_cli.main(["--workdir", workdir, "--metrics", "attributes"]) == 0
  with open(os.path.join(workdir, "eval.json")) as f:
    (row,) = json.load(f)["rows"].values()
  assert "attr_all_correct" in row and not any(k.startswith(("attr_seen_", "fid")) for k in row)
  capsys.readouterr()
  assert evaluate_cli.main(["--workdir", workdir, "--metrics", "attributes,pr"]) == 1
  err = capsys.readouterr().err
  assert "['pr']" in err and "attributes, fid, kid, diversity" in err

  # Generation + judging compile once per run, however many evaluations.
  run = runs.load_run(workdir, prerequisites=True)
  traces, apply = [0], t2i._apply  # pylint: disable=protected-access

  def counted(*args, **kwargs):
    traces[0] += 1
    return apply(*args, **kwargs)

  monkeypatch.setattr(t2i, "_apply", counted)
  first = run.task.evaluate(run.state)
  # One trace of the generate-and-judge function: with an EMA generator it also runs G twice
  # in train mode for the EMA's own batch-norm statistics (steps.standing_batch_stats).
  assert traces[0] == (3 if run.state.ema_g_params is not None else 1), traces
  once = traces[0]
  second = run.task.evaluate(run.state)
  assert traces[0] == once and first.keys() == second.keys()  # no retrace
  np.testing.assert_allclose([first[k] for k in sorted(first)],
                             [second[k] for k in sorted(second)], equal_nan=True)
  monkeypatch.setattr(t2i, "_apply", apply)

  # Caption interpolation: rows of fixed noise, columns from sentence A to sentence B.
  a, b = "a smiling face with long red hair", "a serious person with a black afro and a beard"
  out_dir = tmp_path / "interp"
  with jax.default_prng_impl("rbg"):
    images = sample.export_interpolation(workdir, text_a=a, text_b=b, steps=5, num=2,
                                         out=str(out_dir))
    sample.export_text_samples(workdir, sentences=[a, b], num=2, out=str(tmp_path / "ends"))
  assert images.shape == (2, 5, 32, 32, 3) and images.dtype == np.uint8
  grid = np.asarray(Image.open(out_dir / "interpolation.png"))
  assert grid.shape == (2 * 34 + 2, 5 * 34 + 2, 3)
  assert len([n for n in os.listdir(out_dir) if n.startswith("interp_")]) == 10
  for row in range(2):  # the ends are the two sentences' own samples (same noise)
    for col, s_index in ((0, 0), (4, 1)):
      end = np.asarray(Image.open(tmp_path / "ends" / f"sample_{s_index:03d}_{row:05d}.png"))
      np.testing.assert_allclose(images[row, col].astype(int), end.astype(int), atol=2)
  with jax.default_prng_impl("rbg"):
    assert sample.main(["--workdir", workdir, "--text", a, "--text", b, "--interpolate", "3",
                        "--out", str(tmp_path / "cli")]) == 0
  assert np.asarray(Image.open(tmp_path / "cli" / "interpolation.png")).shape[:2] == (
      4 * 34 + 2, 3 * 34 + 2)  # --num defaults to 4 rows
  assert sample.main(["--workdir", workdir, "--text", a, "--interpolate", "3", "--out",
                      str(tmp_path / "bad")]) == 1
  assert "exactly two sentences" in capsys.readouterr().err


def test_t2i_evaluation_config_errors():
  c = _tiny_t2i("unused")
  c.eval.metrics = ("attributes", "bleu")
  with pytest.raises(ValueError, match=r"'bleu'.*attributes, fid, kid"):
    t2i.make_t2i_evaluate(c, generator=None, image_shape=(32, 32, 3))
  c.eval.metrics = ()
  assert t2i.make_t2i_evaluate(c, generator=None, image_shape=(32, 32, 3)) is None
  flowers = catalog.load_experiment("t2i_flowers")
  assert t2i.make_t2i_evaluate(flowers, generator=None, image_shape=(64, 64, 3)) is None
  flowers.eval.metrics = ("attributes",)
  with pytest.raises(ValueError, match="captioned avatars"):
    t2i.make_t2i_evaluate(flowers, generator=None, image_shape=(64, 64, 3))
  c.eval.metrics = ("diversity",)
  c.eval.diversity_samples = 1
  with pytest.raises(ValueError, match=r"diversity_samples >= 2 \(got 1\)"):
    t2i.make_t2i_evaluate(c, generator=None, image_shape=(32, 32, 3))
  c.eval.diversity_samples, c.eval.diversity_captions = 4, c.eval.num_examples + 1
  with pytest.raises(ValueError, match=r"diversity_captions <= eval.num_examples=12 \(got 13\)"):
    t2i.make_t2i_evaluate(c, generator=None, image_shape=(32, 32, 3))


def test_mean_pairwise_distance_golden():
  """Two groups: a 3-4-5 triangle's pairs (5, 3, 4: mean 4) and two copies of one point (0)."""
  feats = np.array([[[0.0, 0.0], [3.0, 4.0], [3.0, 0.0]],
                    [[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]]])
  assert metrics_lib.mean_pairwise_distance(feats) == pytest.approx(2.0)
  assert metrics_lib.mean_pairwise_distance(feats[:1]) == pytest.approx(4.0)
  with pytest.raises(ValueError, match=r"at least 2 images per group, got shape \(2, 1, 2\)"):
    metrics_lib.mean_pairwise_distance(feats[:, :1])


def test_labelled_avatars_show_the_labels_asked_for():
  """render_labelled_avatars draws each label row's attributes (read back from DiceBear's
  resolved options), varied within a row."""
  labels = captioned.random_avatar_labels(4, seed=1)
  options = [captioned.avatar_options(row) for row in labels]
  from jgan.data import avatars  # pylint: disable=import-outside-toplevel
  names, table = avatars.attribute_names(), avatars._attribute_table("avataaars")  # pylint: disable=protected-access
  for i, row in enumerate(labels):
    for j in range(2):
      _, resolved = avatars.render_avatar(f"jgan/labelled/0/{i}/{j}", image_size=16,
                                          options=options[i])
      codes = avatars._encode(resolved, table)  # pylint: disable=protected-access
      got = captioned.avatar_labels({a: codes[k:k + 1] for k, (a, _, _) in enumerate(table)},
                                    names)[0]
      np.testing.assert_array_equal(got, row)
  images = captioned.render_labelled_avatars(labels[:2], per_label=3, image_size=16)
  assert images.shape == (2, 3, 16, 16, 3) and images.dtype == np.uint8
  assert not np.array_equal(images[0, 0], images[0, 1])
