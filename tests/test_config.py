"""Configs: loading by name and path, typed overrides, and the errors users see."""

import pytest

from jgan import catalog
from jgan import config as config_lib
from experiments import EXPERIMENTS


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_every_experiment_has_required_keys_and_a_command(name):
  config = catalog.load_experiment(name)
  for key in config_lib.REQUIRED_KEYS:
    assert key in config
  import importlib
  doc = importlib.import_module(EXPERIMENTS[name]).__doc__
  assert f"python launch.py --experiment {name}" in doc


def test_describe_lists_every_experiment_with_a_description():
  rows = dict(catalog.describe_experiments())
  assert set(rows) == set(EXPERIMENTS)
  assert all(len(desc) > 10 for desc in rows.values())


def test_unknown_experiment_names_the_available_ones():
  with pytest.raises(config_lib.ConfigError) as e:
    catalog.load_experiment("gan_mnsit")
  assert "gan_mnsit" in str(e.value) and "gan_mnist" in str(e.value)
  assert "Did you mean 'gan_mnist'" in str(e.value)


def test_overrides_are_typed_like_the_current_values():
  c = catalog.load_experiment("gan_mnist")
  config_lib.apply_overrides(c, [("optim.g_lr", "1e-4"), ("batch_size", "32"),
                                 ("loss.name", "hinge"), ("data.sources", "('offline',)"),
                                 ("ema_decay", "0.999"), ("data.data_dir", "/tmp/x")])
  assert c.optim.g_lr == pytest.approx(1e-4) and isinstance(c.optim.g_lr, float)
  assert c.batch_size == 32 and isinstance(c.batch_size, int)
  assert c.loss.name == "hinge"
  assert c.data.sources == ("offline",)
  assert c.ema_decay == pytest.approx(0.999)
  assert c.data.data_dir == "/tmp/x"


def test_misspelt_key_names_the_valid_keys():
  c = catalog.load_experiment("gan_mnist")
  with pytest.raises(config_lib.ConfigError) as e:
    config_lib.apply_overrides(c, [("optim.g_lrr", "1e-4")])
  msg = str(e.value)
  assert "optim.g_lrr" in msg and "g_lr" in msg and "d_lr" in msg and "Did you mean 'g_lr'" in msg
  with pytest.raises(config_lib.ConfigError) as e:
    config_lib.apply_overrides(c, [("batchsize", "3")])
  assert "batch_size" in str(e.value)


def test_bad_value_type_is_explained():
  c = catalog.load_experiment("gan_mnist")
  with pytest.raises(config_lib.ConfigError) as e:
    config_lib.apply_overrides(c, [("batch_size", "lots")])
  assert "batch_size" in str(e.value) and "lots" in str(e.value)


def test_validate_rejects_non_positive_counts():
  c = catalog.load_experiment("gan_mnist")
  config_lib.apply_overrides(c, [("total_steps", "0")])
  with pytest.raises(config_lib.ConfigError, match="total_steps"):
    config_lib.validate(c)


def test_config_file_errors(tmp_path):
  with pytest.raises(config_lib.ConfigError, match="does not exist"):
    config_lib.load_config_file(str(tmp_path / "nope.py"))
  empty = tmp_path / "empty.py"
  empty.write_text("x = 1\n")
  with pytest.raises(config_lib.ConfigError, match="get_config"):
    config_lib.load_config_file(str(empty))
  partial = tmp_path / "partial.py"
  partial.write_text("import ml_collections\n"
                     "def get_config():\n  return ml_collections.ConfigDict({'seed': 0})\n")
  with pytest.raises(config_lib.ConfigError, match="batch_size"):
    config_lib.load_config_file(str(partial))


def test_config_file_outside_the_repo_loads(tmp_path):
  path = tmp_path / "my_exp.py"
  path.write_text("from jgan.tasks import gan\n"
                  "def get_config():\n  c = gan.default_config()\n  c.batch_size = 4\n  return c\n")
  c = config_lib.load_config_file(str(path))
  assert c.batch_size == 4
  assert config_lib.experiment_name_of_file(str(path)) == "my_exp"
