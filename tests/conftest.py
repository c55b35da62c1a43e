"""Shared fixtures: tiny configs that train in well under a second a step on 2 CPU cores."""

from __future__ import annotations

import os
import sys

import ml_collections
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_CACHE_ENV = ("JAX_COMPILATION_CACHE_DIR", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS")


def pytest_configure(config):
  """One XLA compilation cache for the whole session, in-process and in the subprocesses the
  tests start (they inherit the environment): the suite compiles the same tiny steps many
  times, and a cached compile is read back instead of compiled again. Set before jax is
  imported, which reads these variables; a fresh temporary directory per session (and per
  pytest-xdist controller, shared by its workers), so a run never depends on an earlier one.
  """
  if os.environ.get("PYTEST_XDIST_WORKER") or os.environ.get(_CACHE_ENV[0]):
    return  # a worker (the controller set it up) or a cache chosen by the caller
  import tempfile  # pylint: disable=import-outside-toplevel
  directory = tempfile.mkdtemp(prefix="jgan_test_xla_cache_")
  config._jgan_xla_cache = directory  # pylint: disable=protected-access
  os.environ[_CACHE_ENV[0]] = directory
  os.environ[_CACHE_ENV[1]] = "0"


def pytest_unconfigure(config):
  directory = getattr(config, "_jgan_xla_cache", None)
  if directory:
    import shutil  # pylint: disable=import-outside-toplevel
    shutil.rmtree(directory, ignore_errors=True)
    for name in _CACHE_ENV:
      os.environ.pop(name, None)


def set_dotted(c: ml_collections.ConfigDict, overrides: dict) -> ml_collections.ConfigDict:
  """Sets ``{"a.b": value}`` keys of ``c`` in place; returns ``c``."""
  for key, value in overrides.items():
    node = c
    *path, last = key.split(".")
    for p in path:
      node = node[p]
    node[last] = value
  return c


def tiny_gan_config(**overrides) -> ml_collections.ConfigDict:
  """A GAN config on 8x8 synthetic images with tiny MLPs."""
  from jgan.tasks import gan
  c = gan.default_config()
  c.data.name = "synthetic"
  c.data.synthetic_shape = (8, 8, 1)
  c.data.synthetic_examples = 64
  c.model.latent_dim = 8
  c.model.generator = ml_collections.ConfigDict({"name": "mlp", "hidden": (32, 32)})
  c.model.discriminator = ml_collections.ConfigDict(
      {"name": "mlp", "hidden": (32, 32), "dropout_rate": 0.3})
  c.batch_size = 8
  c.total_steps = 6
  c.log_every = 2
  c.sample_every = 3
  c.checkpoint_every = 3
  c.num_samples = 4
  return set_dotted(c, overrides)


@pytest.fixture
def tiny_config():
  return tiny_gan_config


def run_python(code: str, *, env_extra: dict[str, str] | None = None, timeout: int = 600):
  """Runs ``code`` in a fresh interpreter (for XLA flags that must precede jax's import)."""
  import subprocess
  env = dict(os.environ, **(env_extra or {}))
  env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
  return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                        env=env, timeout=timeout, cwd=REPO)


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory):
  """A tiny classifier of 32x32 RGB images trained for two steps, shared by the session: a DTN's
  encoder f and, fed the grey targets tiled to RGB, the judge of its translations. Tests that
  change it work on a copy."""
  import jax  # pylint: disable=import-outside-toplevel
  from jgan import train  # pylint: disable=import-outside-toplevel
  from tests.test_dtn import _FAST_PRNG, SOURCE, _classifier_config  # pylint: disable=import-outside-toplevel
  workdir = str(tmp_path_factory.mktemp("tiny_encoder") / "classifier")
  with jax.default_prng_impl(_FAST_PRNG):
    train.run(_classifier_config(SOURCE), workdir, progress=False)
  return workdir


@pytest.fixture(scope="session")
def tiny_dtn_run(tmp_path_factory, tiny_encoder):
  """A tiny DTN trained for two steps (checkpoints 1 and 2) on :func:`tiny_encoder`, shared by
  the demo, translate and reliability tests; tests that change it work on a copy."""
  import jax  # pylint: disable=import-outside-toplevel
  from jgan import runs  # pylint: disable=import-outside-toplevel
  from tests.test_dtn import _FAST_PRNG, _dtn_config  # pylint: disable=import-outside-toplevel
  workdir = str(tmp_path_factory.mktemp("tiny_dtn") / "dtn")
  config = _dtn_config({"encoder": tiny_encoder, "judge": tiny_encoder}, total_steps=2,
                       checkpoint_every=1, log_every=1, eval_every=0, sample_every=1000)
  with jax.default_prng_impl(_FAST_PRNG):
    runs.train(config, workdir, progress=False)
  return {"dtn": workdir, "encoder": tiny_encoder}
