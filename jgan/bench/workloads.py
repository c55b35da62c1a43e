"""The benchmark's workloads: jgan's real train steps (built from the experiments' configs).

Each workload names an experiment and the overrides that make it the benchmarked size; the
step timed is ``tasks.build_task(config, ...).step``, the one ``launch.py`` compiles, fed
synthetic batches of the experiment's shapes (so no data is needed). ``tiny=True`` shrinks
widths and batches so the whole suite runs in seconds (the smoke test).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable

import jax
import ml_collections
import numpy as np

from jgan import catalog
from jgan import config as config_lib
from jgan import tasks, train
from jgan.bench import timing

_GREY = {"mnist", "fashion_mnist"}


@dataclasses.dataclass(frozen=True)
class Workload:
  name: str
  experiment: str
  overrides: dict[str, Any]
  tiny_overrides: dict[str, Any]
  describe: str


# Tiny: the smallest sizes the architectures take, for the smoke test.
_TINY_CONV = {"batch_size": 4, "model.generator.width": 4, "model.discriminator.width": 4}

WORKLOADS: dict[str, Workload] = {w.name: w for w in (
    Workload("mlp_gan_b64", "gan_mnist", {"batch_size": 64},
             {"batch_size": 8}, "MLP GAN 28x28 (gan_mnist), batch 64"),
    Workload("mlp_gan_b256", "gan_mnist", {"batch_size": 256},
             {"batch_size": 16}, "MLP GAN 28x28 (gan_mnist), batch 256"),
    Workload("dcgan32", "dcgan_fashion_mnist32", {"batch_size": 64},
             _TINY_CONV, "DCGAN 32x32x1, width 32 (dcgan_fashion_mnist32), batch 64"),
    # No EMA of G: the PyTorch reference keeps none. Width 64, the paper's (the default is 32).
    Workload("dcgan64", "dcgan_avatars", {"batch_size": 64, "ema_decay": 0.0,
                                          "model.generator.width": 64,
                                          "model.discriminator.width": 64},
             _TINY_CONV, "DCGAN 64x64x3, width 64 (dcgan_avatars), batch 64"),
    Workload("wgan_gp32", "wgan_gp_fashion_mnist32", {"batch_size": 64},
             {**_TINY_CONV, "n_critic": 2},
             "WGAN-GP 32x32x1, width 32, n_critic 5 (wgan_gp_fashion_mnist32), batch 64"),
    # No perturbation before f in L_CONST: the PyTorch mirror is the paper's step.
    Workload("dtn_digits", "dtn_digits", {"batch_size": 64, "loss.const_perturb.zoom": 0.0,
                                          "loss.const_perturb.shift": 0.0,
                                          "loss.const_perturb.blur": 0.0},
             {**_TINY_CONV, "encoder.widths": "4,8,8"},
             "DTN printed digits -> MNIST 32x32 (dtn_digits): frozen f, ternary D, batch 64"),
    # Reed et al.'s models and losses, no EMA: what the PyTorch mirror computes.
    Workload("t2i_avatars", "t2i_avatars",
             {"batch_size": 64, "model.generator.block_conditioning": False,
              "model.discriminator.head": "concat", "loss.mode_seeking_weight": 0.0,
              "loss.mode_seeking_weight_end": None, "ema_decay": 0.0,
              "loss.latent_regression_weight": 0.0,
              "data.recombined_captions": "", "loss.recombined_fraction": 0.0,
              "data.partner_images": False, "loss.pack": 1},
             {**_TINY_CONV, "data.text_encoder": "hash"},
             "text-to-image 32x32x3 (t2i_avatars, Reed et al.'s models): MiniLM embeddings in, "
             "batch 64"),
)}


def config_for(workload: Workload, *, tiny: bool = False,
               extra: dict[str, Any] | None = None) -> ml_collections.ConfigDict:
  """The experiment's config with the workload's (and, if tiny, the smoke test's) overrides,
  then ``extra``."""
  config = catalog.load_experiment(workload.experiment)
  overrides = {**workload.overrides, **(workload.tiny_overrides if tiny else {}), **(extra or {})}
  config_lib.apply_overrides(config, [(k, str(v)) for k, v in overrides.items()])
  return config


def image_shape(data_config) -> tuple[int, int, int]:
  """The image shape a data group yields: grey for the MNISTs (28, or image_size), else RGB."""
  size = data_config.get("image_size", 0)
  if data_config.name in _GREY:
    return (size or 28, size or 28, 1)
  return (size or 64, size or 64, 3)


def synthetic_batch(config: ml_collections.ConfigDict, task, *, seed: int = 0) -> dict:
  """A batch of the shapes and dtypes ``task.step`` takes for ``config`` (random values)."""
  rng = np.random.default_rng(seed)
  n = task.examples_per_step
  shape = image_shape(config.data)
  batch = {"image": rng.integers(0, 256, (n, *shape), dtype=np.uint8),
           "label": rng.integers(0, 10, (n,), dtype=np.int32)}
  if "source_data" in config:
    source = image_shape(config.source_data)
    batch["source_image"] = rng.integers(0, 256, (n, *source), dtype=np.uint8)
    batch["source_label"] = rng.integers(0, 10, (n,), dtype=np.int32)
    if config.encoder.get("cache", False):  # f's outputs come with the batch (precompute)
      from jgan import augment  # pylint: disable=import-outside-toplevel
      variants = len(augment.variant_grid(config.source_augment,
                                          rotations=config.encoder.cache_rotations))
      dim = config.encoder.feature_dim
      batch["target_features"] = rng.standard_normal((n, dim)).astype(np.float32)
      batch["source_features"] = rng.standard_normal((n, variants, dim)).astype(np.float32)
  if config.task == "t2i":
    from jgan import text  # pylint: disable=import-outside-toplevel
    from jgan.data import captioned  # pylint: disable=import-outside-toplevel
    _, counts = captioned.attribute_spec(config.data)
    dim = text.encoder_dim(config.data.text_encoder)
    k = config.data.captions_per_image
    batch = {"image": batch["image"],
             "text_embedding": rng.normal(size=(n, k, dim)).astype(np.float32),
             "attributes": np.stack([rng.integers(0, c, n) for c in counts], 1).astype(np.int32)}
    if config.data.get("recombined_captions", ""):  # G's recombined captions come with it
      batch["recombined_embedding"] = rng.normal(size=(n, dim)).astype(np.float32)
      batch["recombined_attributes"] = np.stack([rng.integers(0, c, n) for c in counts],
                                                1).astype(np.int32)
    if config.data.get("partner_images", False):  # D's pairs of one caption
      batch["partner_image"] = batch["image"][::-1].copy()
  return batch


@dataclasses.dataclass
class JganStep:
  """jgan's compiled step for a workload, ready to time."""
  config: ml_collections.ConfigDict
  task: Any
  batch: dict
  run: Callable[[], Any]  # one step; returns the new state (for block_until_ready)
  images_per_step: int
  compile_s: float
  flops: float
  traces: list[int]
  initial_state: Any  # host copy of the state before the first step (for the reference)
  compiled: Any = None  # the compiled step (jgan.bench.profile reads its HLO text)


def build_jgan(workload: Workload, *, tiny: bool = False, seed: int = 0,
               extra: dict[str, Any] | None = None) -> JganStep:
  """Builds, compiles (timed) and warms up jgan's step for ``workload`` (``extra``: more
  config overrides, e.g. ``{"compute_dtype": "bfloat16"}``)."""
  config = config_for(workload, tiny=tiny, extra=extra)
  shape = image_shape(config.data)
  source = image_shape(config.source_data) if "source_data" in config else None
  task = tasks.build_task(config, image_shape=shape, num_classes=10, source_shape=source)
  batch = jax.device_put(synthetic_batch(config, task, seed=seed))
  traces = [0]

  def counted(state, batch, key):
    traces[0] += 1  # runs only when jax traces the step
    return task.step(state, batch, key)

  step = jax.jit(counted, donate_argnums=train.state_donation())  # as the launch.py loop
  state = jax.jit(task.init)(jax.random.key(seed))
  initial_state = jax.device_get(state)  # before the step (it may donate the device copy)
  key = jax.random.key(seed + 1)
  start = time.perf_counter()
  compiled = step.lower(state, batch, key).compile()
  compile_s = time.perf_counter() - start
  flops = timing.compiled_flops(compiled)
  holder = {"state": state, "i": 0}

  def run():
    holder["i"] += 1
    holder["state"], _ = step(holder["state"], batch, jax.random.fold_in(key, holder["i"]))
    return holder["state"]

  jax.block_until_ready(run())  # warm-up
  return JganStep(config=config, task=task, batch=batch, run=run,
                  images_per_step=task.examples_per_step, compile_s=compile_s, flops=flops,
                  traces=traces, initial_state=initial_state,
                  compiled=compiled)
