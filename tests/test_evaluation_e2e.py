"""Evaluation in a run and from the command line: classifier feature network, FID/KID/PR/IS,
best checkpoint, eval.json, baselines and sample export, on tiny synthetic data."""

import json
import os

import numpy as np
import pytest

from jgan import catalog
from jgan import config as config_lib
from jgan import evaluate as evaluate_cli
from jgan import runs
from jgan import sample as sample_cli
from jgan import train
from jgan.evaluation import features
from jgan.tasks import classifier
from tests.conftest import tiny_gan_config


def tiny_classifier_config():
  c = classifier.default_config()
  c.data.name = "synthetic"
  c.data.synthetic_shape = (8, 8, 1)
  c.data.synthetic_examples = 256
  c.model.widths = (8, 16)
  c.model.feature_dim = 16
  c.optim.lr = 3e-3
  c.batch_size = 32
  c.total_steps = 60
  c.log_every = 10
  c.sample_every = 60
  c.checkpoint_every = 60
  c.eval_every = 30
  c.augment.colour = 0.1  # on-device augmentation, through the whole run
  c.eval.heldout_style = {"synthetic_examples": 128}  # a second test set (another size)
  return c


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("clf"))
  result = train.run(tiny_classifier_config(), workdir, progress=False)
  assert result.step == 60
  return workdir


def test_classifier_learns_and_keeps_its_best_checkpoint(classifier_dir):
  with open(os.path.join(classifier_dir, "metrics.jsonl")) as f:
    records = [json.loads(l) for l in f]
  accuracies = [r["eval/test_accuracy"] for r in records if "eval/test_accuracy" in r]
  assert len(accuracies) == 2 and accuracies[-1] > 0.5  # 10 blob positions, chance is 0.1
  other = [r["eval/test_accuracy_heldout_style"] for r in records
           if "eval/test_accuracy_heldout_style" in r]
  assert len(other) == 2 and other[-1] > 0.5
  assert os.listdir(os.path.join(classifier_dir, "checkpoints_best"))


def _gan_config(classifier_dir, **overrides):
  return tiny_gan_config(**{
      "eval_every": 3, "eval.classifier_workdir": classifier_dir, "eval.num_samples": 40,
      "eval.num_real": 48, "eval.batch_size": 16, "eval.metrics": ("fid", "kid", "pr", "is"),
      "data.synthetic_examples": 64, **overrides})


def test_gan_run_logs_metrics_named_by_network_and_keeps_the_best(classifier_dir, tmp_path):
  workdir = str(tmp_path / "gan")
  runs.train(_gan_config(classifier_dir), workdir, progress=False)
  net = f"classifier:{os.path.basename(classifier_dir)}:features"
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    records = [json.loads(l) for l in f]
  evals = [r for r in records if f"eval/fid/{net}" in r]
  assert [r["step"] for r in evals] == [3, 6]
  for r in evals:
    for m in ("fid", "kid", "kid_std", "precision", "recall", "is", "is_std"):
      assert np.isfinite(r[f"eval/{m}/{net}"]), m
    assert 0 <= r[f"eval/precision/{net}"] <= 1
  best_step = min(evals, key=lambda r: r[f"eval/fid/{net}"])["step"]
  assert os.listdir(os.path.join(workdir, "checkpoints_best")) == [str(best_step)]


def test_evaluate_and_sample_commands(classifier_dir, tmp_path, capsys):
  workdir = str(tmp_path / "gan")
  train.run(_gan_config(classifier_dir, eval_every=0), workdir, progress=False)
  assert evaluate_cli.main(["--workdir", workdir, "--num_samples", "32", "--metrics",
                            "fid,pr", "--baselines"]) == 0
  out = capsys.readouterr().out
  assert "fid" in out and "feature network: classifier:" in out
  with open(os.path.join(workdir, "eval.json")) as f:
    result = json.load(f)
  assert result["num_samples"] == 32 and result["feature_network"].startswith("classifier:")
  rows = result["rows"]
  assert len(rows) == 3
  real_row = next(v for k, v in rows.items() if k.startswith("real"))
  noise_row = next(v for k, v in rows.items() if k.startswith("uniform noise"))
  fid = lambda row: next(v for k, v in row.items() if k.startswith("fid/"))
  assert fid(real_row) < fid(noise_row)  # the baselines bracket the scale

  out_dir = str(tmp_path / "samples")
  assert sample_cli.main(["--workdir", workdir, "--num", "5", "--out", out_dir]) == 0
  assert sorted(os.listdir(out_dir)) == ["grid.png"] + [f"sample_{i:05d}.png" for i in range(5)]


def test_command_errors_are_clear(tmp_path, capsys):
  assert evaluate_cli.main(["--workdir", str(tmp_path)]) == 1
  assert "no training run" in capsys.readouterr().err
  assert sample_cli.main(["--workdir", str(tmp_path), "--out", str(tmp_path / "o")]) == 1


def test_missing_classifier_is_trained_first(tmp_path, monkeypatch):
  monkeypatch.setattr(catalog, "load_experiment", lambda name: tiny_classifier_config())
  workdir = str(tmp_path / "auto_clf")
  runs.ensure_trained("tiny", workdir)
  network = runs.classifier_network(workdir)
  out = features.extract(network, np.zeros((3, 8, 8, 1), np.uint8), batch_size=2)
  assert out["features"].shape == (3, 16) and out["logits"].shape == (3, 10)


def test_inception_network_without_weights_says_where_to_get_them():
  with pytest.raises(FileNotFoundError, match="pt_inception-2015-12-05"):
    features.inception_network("")


def test_real_features_use_a_seeded_random_subset_not_the_first_images():
  labels = np.repeat(np.arange(10), 100)  # stored by class, like the offline MNIST
  picked = features.subset(labels, 50)
  assert len(set(picked.tolist())) >= 8 and len(picked) == 50
  np.testing.assert_array_equal(picked, features.subset(labels, 50))  # seeded


def test_classifier_learning_rate_schedule():
  c = tiny_classifier_config()
  assert classifier.learning_rate(c) == c.optim.lr  # constant by default
  c.optim.schedule, c.total_steps = "cosine", 10
  lr = classifier.learning_rate(c)
  np.testing.assert_allclose([lr(0), lr(5), lr(10)], [c.optim.lr, c.optim.lr / 2, 0.0],
                             atol=1e-9)
  c.optim.schedule = "cos"
  with pytest.raises(ValueError, match=r"schedule 'cos'; allowed: 'constant', 'cosine'"):
    classifier.learning_rate(c)
