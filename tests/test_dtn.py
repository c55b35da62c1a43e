"""The Domain Transfer Network: ternary D, L_CONST/L_TID, the two-dataset pipeline, the step
(frozen f, no retracing, learns, shards exactly) and the dtn task end to end. Tiny widths."""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import json
import os
import re
import textwrap
import types

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from jgan import augment, data, imaging, losses, models, penalties, steps
from jgan.models import dcgan
from tests.conftest import run_python, set_dotted, tiny_gan_config

TARGET = (32, 32, 1)  # what g draws
SOURCE = (32, 32, 3)
FEATURES = 16
BATCH = 8
ALPHA, BETA, GAMMA = 15.0, 15.0, 1e-3


def _key(seed):
  # 'rbg' keys: a DCGAN's threefry initialisers compile in seconds on XLA:CPU, rbg's in ~1 s.
  return jax.random.key(seed, impl="rbg")


# ------------------------------------------------------------------------- models and losses


def test_ternary_dcgan_discriminator_shape_and_dtype():
  d = dcgan.DCGANDiscriminator(resolution=32, width=8, num_outputs=3)
  x = jnp.zeros((2, *TARGET), jnp.float32)
  variables = jax.eval_shape(functools.partial(d.init, train=False), _key(0), x)
  chex.assert_shape(variables["params"]["out"]["kernel"], (None, 3))
  variables = jax.tree.map(lambda s: jnp.full(s.shape, 0.01, s.dtype), variables)
  logits = jax.jit(functools.partial(d.apply, train=False))(variables, x)
  chex.assert_shape(logits, (2, 3))
  chex.assert_type(logits, jnp.float32)
  single = dcgan.DCGANDiscriminator(resolution=32, width=8)
  assert jax.eval_shape(functools.partial(single.apply, train=False),
                        jax.eval_shape(functools.partial(single.init, train=False), _key(0), x),
                        x).shape == (2,)
  with pytest.raises(ValueError, match="num_outputs"):
    dcgan.DCGANDiscriminator(resolution=32, width=8, num_outputs=0)


@pytest.mark.parametrize("resolution,layers,side", [(64, 3, 8), (64, 2, 16), (32, 3, 4),
                                                    (32, 1, 16), (28, 2, 7)])
def test_patch_discriminator_shapes(resolution, layers, side):
  """patch_layers=k: ternary logits per position of the k-th convolution's map (stride 2 each),
  one logit per position with a single output."""
  x = jnp.zeros((2, resolution, resolution, 3), jnp.float32)
  for outputs, shape in ((3, (2, side, side, 3)), (1, (2, side, side))):
    d = dcgan.DCGANDiscriminator(resolution=resolution, width=4, num_outputs=outputs,
                                 patch_layers=layers)
    variables = jax.jit(functools.partial(d.init, train=False))(_key(0), x)
    logits = jax.jit(functools.partial(d.apply, train=False))(variables, x)
    chex.assert_shape(logits, shape)
    chex.assert_type(logits, jnp.float32)
    chex.assert_shape(variables["params"]["out"]["kernel"], (4, 4, None, outputs))
    assert f"conv{layers}" not in variables["params"]
  with pytest.raises(ValueError, match=re.escape(
      f"patch_layers=5 must be in [0, {4 if resolution == 64 else 3 if resolution == 32 else 2}]")):
    dcgan.DCGANDiscriminator(resolution=resolution, width=4, patch_layers=5)


def test_whole_image_head_beside_the_patch_head():
  """whole_image_head=True: [B, 2, s, s, K], index 0 the whole-image D's logits (the same as a
  whole-image D with the same trunk and ``out``) at every position, index 1 the patch head's."""
  x = jax.random.normal(_key(3), (2, 32, 32, 3), jnp.float32)
  d = dcgan.DCGANDiscriminator(resolution=32, width=4, num_outputs=3, patch_layers=2,
                               whole_image_head=True)
  variables = d.init(_key(0), x, train=False)
  logits = d.apply(variables, x, train=False)
  chex.assert_shape(logits, (2, 2, 8, 8, 3))
  chex.assert_shape(variables["params"]["patch_out"]["kernel"], (4, 4, 8, 3))
  whole = dcgan.DCGANDiscriminator(resolution=32, width=4, num_outputs=3)
  plain_vars = {"params": {k: v for k, v in variables["params"].items() if k != "patch_out"},
                "batch_stats": variables["batch_stats"]}
  expected = whole.apply(plain_vars, x, train=False)
  np.testing.assert_allclose(logits[:, 0], jnp.broadcast_to(expected[:, None, None], (2, 8, 8, 3)),
                             rtol=1e-5, atol=1e-6)
  assert float(jnp.std(logits[:, 1], axis=(1, 2)).mean()) > 0  # the patches differ
  one = dcgan.DCGANDiscriminator(resolution=32, width=4, patch_layers=2, whole_image_head=True)
  chex.assert_shape(one.apply(one.init(_key(0), x, train=False), x, train=False), (2, 2, 8, 8))
  for layers in (0, 3):
    with pytest.raises(ValueError, match=re.escape(
        f"whole_image_head=True adds the whole-image head to a patch D: it needs patch_layers "
        f"in [1, 2] at resolution 32, got {layers}")):
      dcgan.DCGANDiscriminator(resolution=32, width=4, patch_layers=layers, whole_image_head=True)


_A = np.array([[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 0.0]], np.float32)
_B = np.array([[1.0, 0.0, 3.0, 2.0], [1.0, -1.0, 2.0, 0.0]], np.float32)


# Squared differences: [0, 4, 0, 4] -> mean 2; [1, 1, 4, 0] -> mean 1.5. Batch mean 1.75.
# |differences|: [0, 2, 0, 2] -> mean 1; [1, 1, 2, 0] -> mean 1. Batch mean 1.
@pytest.mark.parametrize("distance,golden,summed", [("mean_squared", 1.75, "mse"),
                                                    ("mean_abs", 1.0, "l1")])
def test_mean_distances_golden_values(distance, golden, summed):
  for fn in (losses.const_loss, losses.tid_loss):
    np.testing.assert_allclose(float(fn(_A, _B, distance=distance)), golden, rtol=1e-6)
    np.testing.assert_allclose(float(fn(_A, _B, distance=distance)),
                               float(fn(_A, _B, distance=summed)) / 4, rtol=1e-6)
  # Over all non-batch axes of an image batch: D = 2 * 3 * 1 = 6.
  x = jnp.arange(12.0).reshape(2, 2, 3, 1)
  y = jnp.zeros_like(x)
  np.testing.assert_allclose(float(losses.tid_loss(x, y, distance=distance)),
                             float(losses.tid_loss(x, y, distance=summed)) / 6, rtol=1e-6)
  assert distance in losses.DISTANCES
  if distance == "mean_squared":
    expected = np.mean([np.mean(np.arange(6.0) ** 2), np.mean(np.arange(6.0, 12.0) ** 2)])
    np.testing.assert_allclose(float(losses.tid_loss(x, y, distance=distance)), expected,
                               rtol=1e-6)


def test_mean_abs_minimiser_is_a_median():
  # Over a constant guess for targets {0, 0, 3}: mean_abs prefers 0 (the median) to the mean
  # 1, mean_squared the mean; the gradient is sign(y - t) / n.
  targets = jnp.array([[0.0], [0.0], [3.0]])
  at = lambda c, d: float(losses.tid_loss(targets, jnp.full_like(targets, c), distance=d))
  assert at(0.0, "mean_abs") < at(1.0, "mean_abs")
  assert at(1.0, "mean_squared") < at(0.0, "mean_squared")
  grad = jax.grad(lambda y: losses.tid_loss(targets, y, distance="mean_abs"))(
      jnp.full_like(targets, 1.0))
  np.testing.assert_allclose(np.asarray(grad)[:, 0], [1 / 3, 1 / 3, -1 / 3], rtol=1e-6)


def test_adapt_images():
  rng = np.random.default_rng(0)
  grey = jnp.asarray(rng.uniform(-1, 1, (2, 28, 28, 1)), jnp.float32)
  rgb = imaging.adapt_images(grey, (32, 32, 3))
  chex.assert_shape(rgb, (2, 32, 32, 3))
  np.testing.assert_array_equal(rgb[..., 0], rgb[..., 1])
  np.testing.assert_array_equal(rgb[..., 0], rgb[..., 2])
  np.testing.assert_allclose(rgb[..., :1], jax.image.resize(grey, (2, 32, 32, 1), "bilinear"),
                             atol=1e-6)
  colour = jnp.asarray(rng.uniform(-1, 1, (2, 32, 32, 3)), jnp.float32)
  np.testing.assert_allclose(imaging.adapt_images(colour, (32, 32, 1)),
                             np.mean(np.asarray(colour), axis=3, keepdims=True), atol=1e-6)
  # Nothing to do: the very same values.
  np.testing.assert_array_equal(imaging.adapt_images(colour, (32, 32, 3)), colour)
  with pytest.raises(ValueError, match="channel"):
    imaging.adapt_images(colour, (32, 32, 2))


# ----------------------------------------------------------------------------------- pipeline


def _indexed(n: int, *, offset: int = 0, shape=(4, 4, 1), labelled=True) -> data.ArrayDataset:
  """Example i carries offset + i in its first two pixels (and as its label)."""
  images = np.zeros((n, *shape), np.uint8)
  ids = np.arange(n) + offset
  images[:, 0, 0, 0] = ids % 256
  images[:, 0, 1, 0] = ids // 256
  labels = ids.astype(np.int32) if labelled else None
  return data.ArrayDataset(images=images, labels=labels, num_classes=n + offset if labelled
                           else None, name="indexed", source="test")


def _ids(images) -> np.ndarray:
  images = np.asarray(images, np.int64)
  return images[:, 0, 0, 0] + 256 * images[:, 0, 1, 0]


def test_extra_dataset_keys_shapes_and_contents():
  main, source = _indexed(40), _indexed(24, offset=1000, shape=(6, 6, 3))
  batches = data.make_batches(main, batch_size=8, seed=3, extra={"source": source})
  for step in (0, 4, 10**6):
    b = batches[step]
    assert set(b) == {"image", "label", "source_image", "source_label"}
    assert b["image"].shape == (8, 4, 4, 1) and b["source_image"].shape == (8, 6, 6, 3)
    assert b["source_image"].dtype == np.uint8 and b["source_label"].dtype == np.int32
    np.testing.assert_array_equal(_ids(b["source_image"]), b["source_label"])
    assert set(_ids(b["source_image"])) <= set(range(1000, 1024))
    np.testing.assert_array_equal(_ids(b["image"]), b["label"])
  # The main stream is the one-dataset pipeline's, unchanged by the extra dataset.
  plain = data.make_batches(main, batch_size=8, seed=3)
  for step in (0, 7):
    np.testing.assert_array_equal(batches[step]["image"], plain[step]["image"])
  # An unlabelled source gets labels -1, like the main stream.
  b = data.make_batches(main, batch_size=8, seed=3,
                        extra={"source": _indexed(24, labelled=False)})[1]
  np.testing.assert_array_equal(b["source_label"], np.full(8, data.NO_LABEL))


def test_extra_stream_every_source_example_once_per_epoch():
  main, source = _indexed(40), _indexed(24, offset=1000)
  batches = data.make_batches(main, batch_size=8, seed=0, extra={"source": source})
  epochs = [np.concatenate([_ids(batches[s]["source_image"]) for s in range(3 * e, 3 * e + 3)])
            for e in range(2)]
  for ids in epochs:
    assert sorted(ids) == list(range(1000, 1024))
  assert not np.array_equal(epochs[0], epochs[1])  # reshuffled each epoch


def test_extra_stream_is_deterministic_and_random_access():
  main, source = _indexed(40), _indexed(40, offset=1000)

  def make():
    return data.make_batches(main, batch_size=8, seed=5, extra={"source": source})

  forward, backward = make(), make()
  got_f = {i: forward[i] for i in range(6)}
  got_b = {i: backward[i] for i in reversed(range(6))}
  for i in range(6):
    for k in got_f[i]:
      np.testing.assert_array_equal(got_f[i][k], got_b[i][k])
  other_seed = data.make_batches(main, batch_size=8, seed=6, extra={"source": source})
  assert not np.array_equal(other_seed[0]["source_image"], got_f[0]["source_image"])
  # Equal sizes, yet the source stream is not the main stream's permutation.
  main_order = np.concatenate([_ids(got_f[i]["image"]) for i in range(5)])
  source_order = np.concatenate([_ids(got_f[i]["source_image"]) - 1000 for i in range(5)])
  assert sorted(main_order) == sorted(source_order) == list(range(40))
  assert not np.array_equal(main_order, source_order)
  np.testing.assert_array_equal(
      source_order, np.random.default_rng([5, 0, 1]).permutation(40))


def test_extra_stream_splits_over_processes_like_the_main_stream():
  main, source = _indexed(48), _indexed(36, offset=1000)
  whole = data.make_batches(main, batch_size=12, seed=1, extra={"source": source})
  parts = [data.make_batches(main, batch_size=6, seed=1, process_index=p, process_count=2,
                             extra={"source": source}) for p in range(2)]
  for step in (0, 1, 2, 5):
    local = [p[step] for p in parts]
    ids = [_ids(b["source_image"]) for b in local]
    assert not set(ids[0]) & set(ids[1])
    for key in ("image", "label", "source_image", "source_label"):
      np.testing.assert_array_equal(np.concatenate([b[key] for b in local]), whole[step][key])


# --------------------------------------------------------------------------------------- step


class TinyEncoder(nn.Module):
  """A stand-in for f: one strided conv and a dense layer on 32x32 RGB."""

  features: int = FEATURES

  @nn.compact
  def __call__(self, x):
    x = nn.Conv(4, (4, 4), strides=(4, 4), padding="VALID")(x)
    x = jnp.tanh(x)
    return nn.Dense(self.features)(x.reshape(x.shape[0], -1))


def tiny_encoder():
  """``(encoder(variables, images) -> [B, F], variables)``: any size and channels go in."""
  module = TinyEncoder()
  variables = jax.jit(module.init)(_key(7), jnp.zeros((1, *SOURCE), jnp.float32))

  def encoder(variables, images):
    return module.apply(variables, imaging.adapt_images(images, SOURCE))

  return encoder, variables


def build_dtn(*, width=8, lr=1e-3, const_weight=ALPHA, tid_weight=BETA, tv_weight=GAMMA,
              source_augment_fn=None, const_warmup_steps=0, feature_augment_fn=None,
              const_augment_fn=None, ema_decay=None, const_examples=0, d_augment_fn=None,
              penalty=None, class_weight=0.0, encoder_head=None, d_normalization="batch",
              d_joint_batch=False, contrastive_weight=0.0, contrastive_temperature=0.1,
              target_encoder=None, const_encoder=None, tid_distance=None,
              d_patch_layers=0, d_whole_image_head=False, adversarial="ternary",
              noise_dim=0, mode_seeking_weight=0.0, mode_seeking_pool=1):
  """A DTN of tiny DCGANs on (32, 32, 1) targets and (32, 32, 3) sources, f a TinyEncoder;
  ``target_encoder`` / ``const_encoder``: ``(encoder) -> encoder`` for those roles."""
  encoder, f_variables = tiny_encoder()
  generator = models.build_generator("dcgan", image_shape=TARGET, width=width,
                                     noise_dim=noise_dim)
  discriminator = models.build_discriminator("dcgan", image_shape=TARGET, width=width,
                                             num_outputs=3, normalization=d_normalization,
                                             patch_layers=d_patch_layers,
                                             **({"whole_image_head": True}
                                                if d_whole_image_head else {}))
  g_opt, d_opt = optax.adam(lr, b1=0.5), optax.adam(lr, b1=0.5)
  init = functools.partial(
      steps.init_dtn_state, generator=generator, discriminator=discriminator, g_optimizer=g_opt,
      d_optimizer=d_opt, f_variables=f_variables, feature_dim=FEATURES, image_shape=TARGET)
  step = steps.make_dtn_step(
      generator=generator, discriminator=discriminator, encoder=encoder, g_optimizer=g_opt,
      d_optimizer=d_opt, const_weight=const_weight, tid_weight=tid_weight, tv_weight=tv_weight,
      source_augment_fn=source_augment_fn, const_warmup_steps=const_warmup_steps,
      feature_augment_fn=feature_augment_fn, const_augment_fn=const_augment_fn,
      ema_decay=ema_decay, const_examples=const_examples, d_augment_fn=d_augment_fn,
      penalty=penalty, class_weight=class_weight, encoder_head=encoder_head,
      d_joint_batch=d_joint_batch, contrastive_weight=contrastive_weight,
      contrastive_temperature=contrastive_temperature,
      target_encoder=target_encoder and target_encoder(encoder),
      const_encoder=const_encoder and const_encoder(encoder), tid_distance=tid_distance,
      adversarial=adversarial, mode_seeking_weight=mode_seeking_weight,
      mode_seeking_pool=mode_seeking_pool)
  init = functools.partial(init, use_ema=ema_decay is not None)
  return types.SimpleNamespace(init=init, step=step, encoder=encoder, generator=generator,
                               discriminator=discriminator,
                               translate=steps.make_translate_fn(generator, encoder))


def dtn_batch(n=BATCH, seed=0):
  rng = np.random.default_rng(seed)
  return {"image": rng.integers(0, 256, (n, *TARGET), dtype=np.uint8),
          "source_image": rng.integers(0, 256, (n, *SOURCE), dtype=np.uint8)}


def _synthetic_batch(n=BATCH):
  target = data.make_synthetic(image_shape=TARGET, num_examples=n, seed=1).images
  source = data.make_synthetic(image_shape=SOURCE, num_examples=n, seed=2).images
  return {"image": jnp.asarray(target), "source_image": jnp.asarray(source)}


@pytest.fixture(scope="module")
def dtn():
  """One compiled step, shared by the tests below (its trace count included)."""
  parts = build_dtn()
  traces = [0]

  def counted(state, batch, key):
    traces[0] += 1
    return parts.step(state, batch, key)

  parts.jit_step = jax.jit(counted)
  parts.jit_translate = jax.jit(parts.translate)
  parts.traces = traces
  parts.state0 = jax.jit(parts.init)(_key(0))
  return parts


def test_step_noise_beside_f_and_the_mode_seeking_term():
  """A generator with noise: the step draws it with its key and, with mode_seeking_weight, adds
  MSGAN's term; trained on it, g's drawings of one face under two noises move apart (they
  do not without the term); the term without noise is refused."""
  batch = _synthetic_batch()

  def spread(parts, state):  # mean |g(f(x), z_a) - g(f(x), z_b)| in train mode
    f = parts.encoder(state.f_variables, imaging.to_float(batch["source_image"]))
    draw = lambda z: steps._apply(parts.generator, state.g_params, state.g_batch_stats, f,
                                  train=True, noise=z)[0]
    z = jax.random.normal(_key(9), (2, f.shape[0], 4))
    return float(jnp.mean(jnp.abs(draw(z[0]) - draw(z[1]))))

  spreads = {}
  for weight in (0.0, 5.0):
    parts = build_dtn(noise_dim=4, mode_seeking_weight=weight, mode_seeking_pool=2)
    state = jax.jit(parts.init)(_key(0))
    step = jax.jit(parts.step)
    for i in range(6):
      state, metrics = step(state, batch, _key(100 + i))
    assert ("mode_seeking" in metrics) == bool(weight)
    if weight:
      assert 0 < float(metrics["mode_seeking"]) < 1e5
    assert np.isfinite(float(metrics["g_loss"]))
    spreads[weight] = spread(parts, state)
  assert spreads[5.0] > 1.5 * spreads[0.0], spreads
  with pytest.raises(ValueError, match=r"mode_seeking_weight=1.0 needs a generator with noise"):
    build_dtn(mode_seeking_weight=1.0)


def test_dtn_state_fields(dtn):
  s = dtn.state0
  assert int(s.step) == 0
  kernel = s.d_params["out"]["kernel"]
  chex.assert_shape(kernel, (None, 3))
  assert s.g_batch_stats and s.d_batch_stats  # batch norm in both
  assert jax.tree.structure(s.f_variables) == jax.tree.structure(tiny_encoder()[1])


def test_step_compiles_once_keeps_f_frozen_and_reports_metrics(dtn):
  state = dtn.state0
  f_before = jax.device_get(state.f_variables)
  for i in range(4):
    state, metrics = dtn.jit_step(state, dtn_batch(seed=i), jax.random.key(i))
  assert dtn.traces[0] == 1
  assert int(state.step) == 4
  for a, b in zip(jax.tree.leaves(f_before), jax.tree.leaves(state.f_variables)):
    np.testing.assert_array_equal(a, np.asarray(b))  # bit-identical: f is never trained
  # g and D and their batch statistics did move.
  for before, after in ((dtn.state0.g_params, state.g_params),
                        (dtn.state0.d_params, state.d_params),
                        (dtn.state0.g_batch_stats, state.g_batch_stats),
                        (dtn.state0.d_batch_stats, state.d_batch_stats)):
    assert any(not np.array_equal(a, b) for a, b in
               zip(jax.tree.leaves(before), jax.tree.leaves(after)))
  expected = {"d_loss", "g_loss", "g_gan", "const", "tid", "tv", "d_accuracy"}
  assert expected <= set(metrics), sorted(metrics)
  for k, v in metrics.items():
    chex.assert_shape(v, ())
    assert np.isfinite(float(v)), (k, v)
  assert 0.0 <= float(metrics["d_accuracy"]) <= 1.0
  assert float(metrics["tv"]) > 0  # gamma > 0: L_TV is computed


def test_feature_mix_and_const_perturbation_enter_the_step(dtn):
  """Identity defences give the plain step bit for bit; real ones change L_CONST (and only the
  terms they touch), deterministically for one key, and g still trains through them."""
  batch, key = dtn_batch(seed=11), jax.random.key(5)
  _, plain = dtn.jit_step(dtn.state0, batch, key)
  same = build_dtn(feature_augment_fn=lambda f, k: f, const_augment_fn=lambda x, k: x)
  _, m = jax.jit(same.step)(dtn.state0, batch, key)
  for k in plain:
    np.testing.assert_array_equal(np.asarray(m[k]), np.asarray(plain[k]), err_msg=k)
  perturbed = build_dtn(const_augment_fn=functools.partial(augment.perturb, zoom=0.2,
                                                           shift=0.1, blur=1.5))
  step = jax.jit(perturbed.step)
  state, m1 = step(dtn.state0, batch, key)
  _, m2 = step(dtn.state0, batch, key)
  assert float(m1["const"]) != float(plain["const"])
  assert float(m1["tid"]) == float(plain["tid"])  # L_TID does not see the perturbation
  assert float(m1["const"]) == float(m2["const"])  # seeded by the step's key
  assert any(not np.array_equal(a, b) for a, b in
             zip(jax.tree.leaves(dtn.state0.g_params), jax.tree.leaves(state.g_params)))
  mixed = build_dtn(feature_augment_fn=functools.partial(augment.mix_features, mix_prob=1.0,
                                                         noise_std=0.1))
  _, m3 = jax.jit(mixed.step)(dtn.state0, batch, key)
  assert float(m3["const"]) != float(plain["const"])
  assert np.isfinite(float(m3["g_loss"]))


def test_d_augment_changes_only_what_d_sees(dtn):
  """DiffAugment before the ternary D: D's loss and L_GANG change, deterministically for one
  key; L_CONST, L_TID and L_TV see g's outputs unchanged."""
  batch, key = dtn_batch(seed=12), jax.random.key(6)
  _, plain = dtn.jit_step(dtn.state0, batch, key)
  diff = build_dtn(d_augment_fn=augment.diff_augment_from_config("colour,translation,cutout"))
  step = jax.jit(diff.step)
  _, m1 = step(dtn.state0, batch, key)
  _, m2 = step(dtn.state0, batch, key)
  assert float(m1["d_loss"]) != float(plain["d_loss"])
  assert float(m1["g_gan"]) != float(plain["g_gan"])
  assert float(m1["g_gan"]) == float(m2["g_gan"])
  for k in ("const", "tid", "tv"):
    np.testing.assert_allclose(float(m1[k]), float(plain[k]), rtol=1e-6, err_msg=k)


@pytest.mark.parametrize("normalization", ["batch", "layer"])
def test_joint_batch_d_matters_only_for_a_batch_norm_d(normalization):
  """d_joint_batch: D sees its three batches in one call. A batch-norm D then normalises real
  and fake together (D's loss and L_GANG change); a per-image-normalised D gives the same step
  either way; the terms that do not involve D are unchanged."""
  batch, key = dtn_batch(seed=13), jax.random.key(7)
  out = {}
  for joint in (False, True):
    parts = build_dtn(d_normalization=normalization, d_joint_batch=joint)
    out[joint] = jax.jit(parts.step)(jax.jit(parts.init)(_key(0)), batch, key)[1]
  for k in ("d_loss", "g_gan"):
    same = np.isclose(float(out[False][k]), float(out[True][k]), rtol=1e-4)
    assert same == (normalization == "layer"), (k, float(out[False][k]), float(out[True][k]))
  for k in ("const", "tid", "tv"):
    np.testing.assert_allclose(float(out[True][k]), float(out[False][k]), rtol=1e-6, err_msg=k)


def _step_and_d_maps(parts, batch, key):
  """One DTN step's metrics from state 0, and D's logits of its three batches (g(f(source)),
  g(f(target)), real target) recomputed by hand from the same g and D."""
  state0 = jax.jit(parts.init)(_key(0))
  _, m = jax.jit(parts.step)(state0, batch, key)
  real_t = imaging.to_float(jnp.asarray(batch["image"]))
  f_s = parts.encoder(state0.f_variables, imaging.to_float(jnp.asarray(batch["source_image"])))
  f_t = parts.encoder(state0.f_variables, real_t)
  fake = parts.generator.apply({"params": state0.g_params, "batch_stats": state0.g_batch_stats},
                               jnp.concatenate([f_s, f_t]), train=True,
                               mutable=["batch_stats"])[0]
  d_vars = {"params": state0.d_params, "batch_stats": state0.d_batch_stats}
  return m, [parts.discriminator.apply(d_vars, x, train=True, mutable=["batch_stats"])[0]
             for x in (fake[:BATCH], fake[BATCH:], real_t)]


def test_patch_d_losses_average_over_positions():
  """A patch D in the DTN step: D's loss is the ternary loss with every position of each
  batch's logit map an example of the batch's class, recomputed by hand from the same g and D;
  g's non-D terms do not depend on D's kind."""
  parts = build_dtn(d_patch_layers=2)
  batch, key = dtn_batch(seed=19), jax.random.key(13)
  m, maps = _step_and_d_maps(parts, batch, key)
  chex.assert_shape(maps, (BATCH, 8, 8, 3))
  flat = [x.reshape(-1, 3) for x in maps]
  np.testing.assert_allclose(float(m["d_loss"]),
                             float(losses.ternary_discriminator_loss(*flat)), rtol=1e-4)
  per_image = [jnp.mean(x, axis=(1, 2)) for x in maps]  # not what a patch D is judged on
  assert abs(float(m["d_loss"]) - float(losses.ternary_discriminator_loss(*per_image))) > 1e-4
  _, plain = jax.jit(build_dtn().step)(jax.jit(build_dtn().init)(_key(0)), batch, key)
  for k in ("const", "tid"):
    np.testing.assert_allclose(float(m[k]), float(plain[k]), rtol=1e-5, err_msg=k)


def test_two_headed_d_weighs_the_image_and_its_patches_equally():
  """Patch and whole-image heads in the DTN step: D's loss is half the whole-image ternary loss
  plus half the per-position one, recomputed by hand from the same g and D."""
  parts = build_dtn(d_patch_layers=2, d_whole_image_head=True)
  batch, key = dtn_batch(seed=19), jax.random.key(13)
  m, maps = _step_and_d_maps(parts, batch, key)
  chex.assert_shape(maps, (BATCH, 2, 8, 8, 3))
  whole = losses.ternary_discriminator_loss(*[x[:, 0, 0, 0] for x in maps])
  patches = losses.ternary_discriminator_loss(*[x[:, 1].reshape(-1, 3) for x in maps])
  np.testing.assert_allclose(float(m["d_loss"]), float(0.5 * whole + 0.5 * patches), rtol=1e-4)
  assert abs(float(whole) - float(patches)) > 1e-3  # the two heads judge differently


def test_r1_penalty_on_the_ternary_d_is_its_realness_gradient(dtn):
  """R1 on D: d_loss = the ternary loss + 5 * mean ||grad_x realness(D(x))||^2 on the real
  targets (recomputed here from the same D); g's terms are the plain step's."""
  batch, key = dtn_batch(seed=13), jax.random.key(7)
  _, plain = dtn.jit_step(dtn.state0, batch, key)
  r1 = build_dtn(penalty=penalties.make_d_penalty("r1", weight=10.0))
  new, m = jax.jit(r1.step)(dtn.state0, batch, key)
  s0 = dtn.state0
  real = imaging.to_float(jnp.asarray(batch["image"]))

  def realness_sum(x):
    logits = r1.discriminator.apply(
        {"params": s0.d_params, "batch_stats": s0.d_batch_stats}, x, train=True,
        mutable=["batch_stats"])[0]
    return jnp.sum(losses.ternary_realness(logits))

  grads = jax.grad(realness_sum)(real).reshape(real.shape[0], -1)
  want = 5.0 * float(jnp.mean(jnp.sum(grads ** 2, axis=-1)))
  np.testing.assert_allclose(float(m["penalty"]), want, rtol=1e-4)
  assert want > 0
  np.testing.assert_allclose(float(m["d_loss"]) - float(m["penalty"]), float(plain["d_loss"]),
                             rtol=1e-5)
  assert "penalty" not in plain
  # D's update differs (the penalty's gradient); the task reads the config group.
  assert not np.allclose(jax.tree.leaves(new.d_params)[0],
                         jax.tree.leaves(dtn.jit_step(dtn.state0, batch, key)[0].d_params)[0])
  assert penalties.from_config("none", weight=10.0) is None
  with pytest.raises(ValueError, match=r"'r2'.*none, gradient_penalty, r1"):
    penalties.from_config("r2", weight=1.0)


def test_wasserstein_game_is_wgan_gp_on_the_realness_critic():
  """adversarial="wasserstein": d_loss = WGAN's critic loss on D's realness of the three
  batches + the gradient penalty; g_gan = -realness of both translation batches under the
  updated D (recomputed here by hand); L_CONST, L_TID, L_TV are the plain step's."""
  gp = penalties.make_d_penalty("gradient_penalty", weight=10.0)
  plain = build_dtn(penalty=gp, d_normalization="layer")
  wgan = build_dtn(penalty=gp, d_normalization="layer", adversarial="wasserstein")
  batch, key = dtn_batch(seed=21), jax.random.key(3)
  s0 = jax.jit(wgan.init)(_key(0))
  new, m = jax.jit(wgan.step)(s0, batch, key)
  _, p = jax.jit(plain.step)(s0, batch, key)
  for name in ("const", "tid", "tv", "penalty"):
    np.testing.assert_allclose(float(m[name]), float(p[name]), rtol=1e-5, err_msg=name)
  f_s = wgan.encoder(s0.f_variables, imaging.to_float(jnp.asarray(batch["source_image"])))
  f_t = wgan.encoder(s0.f_variables, imaging.to_float(jnp.asarray(batch["image"])))
  fake = wgan.generator.apply({"params": s0.g_params, "batch_stats": s0.g_batch_stats},
                              jnp.concatenate([f_s, f_t]), train=True,
                              mutable=["batch_stats"])[0]
  real = imaging.to_float(jnp.asarray(batch["image"]))

  def realness(d_params, x):
    return losses.ternary_realness(wgan.discriminator.apply({"params": d_params}, x, train=True))

  r_real, r_s, r_t = (realness(s0.d_params, x) for x in (real, fake[:BATCH], fake[BATCH:]))
  want_d = (jnp.mean(r_s) - jnp.mean(r_real)) + (jnp.mean(r_t) - jnp.mean(r_real))
  np.testing.assert_allclose(float(m["d_loss"]) - float(m["penalty"]), float(want_d),
                             rtol=1e-4, atol=1e-5)
  want_g = -jnp.mean(realness(new.d_params, fake[:BATCH])) - jnp.mean(
      realness(new.d_params, fake[BATCH:]))
  np.testing.assert_allclose(float(m["g_gan"]), float(want_g), rtol=1e-4, atol=1e-5)
  assert not np.isclose(float(m["g_gan"]), float(p["g_gan"]))


def test_wasserstein_critic_learns_to_separate_real_from_translations():
  """Ten steps of the Wasserstein game on one batch: D's critic loss (without the penalty)
  falls below 0, i.e. D rates the real targets above g's translations."""
  wgan = build_dtn(penalty=penalties.make_d_penalty("gradient_penalty", weight=10.0),
                   d_normalization="layer", adversarial="wasserstein")
  step, state, batch = jax.jit(wgan.step), jax.jit(wgan.init)(_key(0)), dtn_batch(seed=5)
  first = None
  for i in range(10):
    state, m = step(state, batch, jax.random.key(i))
    gap = float(m["d_loss"]) - float(m["penalty"])
    first = gap if first is None else first
  assert np.isfinite(gap) and gap < 0 and gap < first


@pytest.mark.parametrize("kwargs, match", [
    ({"adversarial": "minimax"}, r"'minimax'.*allowed: ternary, wasserstein"),
    ({"adversarial": "wasserstein"}, r"wasserstein.*needs a penalty"),
])
def test_adversarial_game_is_checked(kwargs, match):
  with pytest.raises(ValueError, match=match):
    build_dtn(**kwargs)


def _check_extra_g_term(dtn, extra, *, term, weight, want, seed, key):
  """One step of the plain DTN and of ``extra`` (built with one more g term) on one batch:
  every shared term and D's loss agree; ``term`` is ``want(f(x), f(g(f(x))))`` of the batch's
  sources, recomputed by hand, and g's loss is the plain one + ``weight`` times it; g's update
  changes."""
  batch = dtn_batch(seed=seed)
  plain_state, plain = dtn.jit_step(dtn.state0, batch, key)
  new, m = jax.jit(extra.step)(dtn.state0, batch, key)
  for name in ("g_gan", "const", "tid", "tv", "d_loss"):
    np.testing.assert_allclose(float(m[name]), float(plain[name]), rtol=1e-5, err_msg=name)
  s0 = dtn.state0
  f_s = dtn.encoder(s0.f_variables, imaging.to_float(jnp.asarray(batch["source_image"])))
  f_t = dtn.encoder(s0.f_variables, imaging.to_float(jnp.asarray(batch["image"])))
  fake = dtn.generator.apply({"params": s0.g_params, "batch_stats": s0.g_batch_stats},
                             jnp.concatenate([f_s, f_t]), train=True,
                             mutable=["batch_stats"])[0][:BATCH]
  expected = want(f_s, dtn.encoder(s0.f_variables, fake))
  np.testing.assert_allclose(float(m[term]), float(expected), rtol=1e-4)
  np.testing.assert_allclose(float(m["g_loss"]) - weight * float(m[term]),
                             float(plain["g_loss"]), rtol=1e-5)
  assert term not in plain
  assert not np.allclose(jax.tree.leaves(new.g_params)[0],
                         jax.tree.leaves(plain_state.g_params)[0])


def test_class_consistency_term_is_added_to_g_loss(dtn):
  """class_weight: g's loss gains class_weight * class_consistency(head(f(x)), head(f(g(f(x)))))
  on the L_CONST translations, recomputed here; D's update and the other terms are the plain
  step's, and g's update changes."""
  w = jax.random.normal(_key(3), (FEATURES, 4))
  head = lambda variables, feats: feats @ w  # a fixed 4-class head on f's features
  _check_extra_g_term(
      dtn, build_dtn(class_weight=2.0, encoder_head=head), term="class", weight=2.0,
      want=lambda f_s, f_seen: losses.class_consistency_loss(head(None, f_s), head(None, f_seen)),
      seed=14, key=jax.random.key(8))
  with pytest.raises(ValueError, match="encoder_head"):
    build_dtn(class_weight=1.0)
  with pytest.raises(ValueError, match="class_weight must be >= 0"):
    build_dtn(class_weight=-1.0, encoder_head=head)


def test_contrastive_term_is_added_to_g_loss(dtn):
  """contrastive_weight: g's loss gains the weighted identity_contrastive_loss of the L_CONST
  translations against the whole batch's source descriptors, recomputed here; the other
  terms and D's update are the plain step's, g's update changes."""
  _check_extra_g_term(
      dtn, build_dtn(contrastive_weight=0.5, contrastive_temperature=0.2), term="contrastive",
      weight=0.5, want=lambda f_s, f_seen: losses.identity_contrastive_loss(
          f_s, f_seen, temperature=0.2), seed=15, key=jax.random.key(9))
  with pytest.raises(ValueError, match="contrastive_weight must be >= 0, got -1"):
    build_dtn(contrastive_weight=-1.0)


def test_target_and_const_encoders_are_used_where_named(dtn):
  """target_encoder reads the real targets (g's input in L_TID) and const_encoder g's
  translations in L_CONST; f(source) stays the plain encoder's. Recomputed by hand with a
  shifted and a scaled f."""
  batch, key = dtn_batch(seed=16), jax.random.key(10)
  shifted = lambda enc: (lambda v, x: enc(v, x) + 0.5)
  scaled = lambda enc: (lambda v, x: 2.0 * enc(v, x))
  _, m = jax.jit(build_dtn(target_encoder=shifted, const_encoder=scaled).step)(
      dtn.state0, batch, key)
  _, plain = dtn.jit_step(dtn.state0, batch, key)
  s0 = dtn.state0
  real_t = imaging.to_float(jnp.asarray(batch["image"]))
  f_s = dtn.encoder(s0.f_variables, imaging.to_float(jnp.asarray(batch["source_image"])))
  f_t = dtn.encoder(s0.f_variables, real_t) + 0.5
  fake = dtn.generator.apply({"params": s0.g_params, "batch_stats": s0.g_batch_stats},
                             jnp.concatenate([f_s, f_t]), train=True,
                             mutable=["batch_stats"])[0]
  want_const = jnp.mean(jnp.square(f_s - 2.0 * dtn.encoder(s0.f_variables, fake[:BATCH])))
  np.testing.assert_allclose(float(m["const"]), float(want_const), rtol=1e-4)
  np.testing.assert_allclose(float(m["tid"]), float(losses.tid_loss(
      real_t, fake[BATCH:], distance="mean_squared")),
                             rtol=1e-4)
  assert abs(float(m["tid"]) - float(plain["tid"])) > 1e-6  # the shift reached g's input
  assert abs(float(m["const"]) - float(plain["const"])) > 1e-6


def test_tid_distance_applies_to_l_tid_alone(dtn):
  """tid_distance="mean_abs": L_TID is the mean absolute error of g(f(target)), recomputed by
  hand; L_CONST keeps the (mean squared) distance, so it equals the plain step's."""
  batch, key = dtn_batch(seed=18), jax.random.key(12)
  _, m = jax.jit(build_dtn(tid_distance="mean_abs").step)(dtn.state0, batch, key)
  _, plain = dtn.jit_step(dtn.state0, batch, key)
  s0 = dtn.state0
  real_t = imaging.to_float(jnp.asarray(batch["image"]))
  f_s = dtn.encoder(s0.f_variables, imaging.to_float(jnp.asarray(batch["source_image"])))
  fake = dtn.generator.apply({"params": s0.g_params, "batch_stats": s0.g_batch_stats},
                             jnp.concatenate([f_s, dtn.encoder(s0.f_variables, real_t)]),
                             train=True, mutable=["batch_stats"])[0]
  np.testing.assert_allclose(float(m["tid"]), float(jnp.mean(jnp.abs(real_t - fake[BATCH:]))),
                             rtol=1e-4)
  assert abs(float(m["tid"]) - float(plain["tid"])) > 1e-3
  for name in ("const", "g_gan", "d_loss"):
    np.testing.assert_allclose(float(m[name]), float(plain[name]), rtol=1e-5, err_msg=name)


def test_decoder_step_trains_g_alone_on_l_tid(dtn):
  """make_dtn_decoder_step: g learns f(t) -> t on tid * L_TID + tv * L_TV alone (recomputed by
  hand; D and its optimizer untouched) and fits a tiny batch; its state goes on into the full
  step."""
  step = jax.jit(steps.make_dtn_decoder_step(
      generator=dtn.generator, encoder=dtn.encoder, g_optimizer=optax.adam(5e-3, b1=0.5),
      tid_weight=BETA, tv_weight=GAMMA))
  batch, key = dtn_batch(seed=17), jax.random.key(11)
  state, m = step(dtn.state0, batch, key)
  chex.assert_trees_all_equal(state.d_params, dtn.state0.d_params)
  chex.assert_trees_all_equal(state.d_opt_state, dtn.state0.d_opt_state)
  assert int(state.step) == 1 and set(m) == {"g_loss", "tid", "tv", "g_grad_norm"}
  real_t = imaging.to_float(jnp.asarray(batch["image"]))
  fake_t = dtn.generator.apply(
      {"params": dtn.state0.g_params, "batch_stats": dtn.state0.g_batch_stats},
      dtn.encoder(dtn.state0.f_variables, real_t), train=True, mutable=["batch_stats"])[0]
  tid = losses.tid_loss(real_t, fake_t, distance="mean_squared")
  np.testing.assert_allclose(float(m["tid"]), float(tid), rtol=1e-4)
  np.testing.assert_allclose(
      float(m["g_loss"]), BETA * float(tid) + GAMMA * float(losses.total_variation(fake_t)),
      rtol=1e-4)
  first = float(m["tid"])
  for _ in range(10):
    state, m = step(state, batch, key)
  assert float(m["tid"]) < 0.8 * first  # the decoder fits the batch
  _, full = dtn.jit_step(state, batch, key)  # the full step takes the decoder's state
  assert np.isfinite(float(full["g_loss"]))
  with pytest.raises(ValueError, match="tid_weight must be >= 0, got -1"):
    steps.make_dtn_decoder_step(generator=dtn.generator, encoder=dtn.encoder,
                                g_optimizer=optax.adam(1e-3), tid_weight=-1.0)


def test_const_on_a_subset_is_the_subset_mean(dtn):
  """const_examples=k: L_CONST is the mean over the first k source translations only; the
  other terms are those of the full step."""
  batch, key = dtn_batch(seed=12), jax.random.key(6)
  _, full = dtn.jit_step(dtn.state0, batch, key)
  k = 3
  _, part = jax.jit(build_dtn(const_examples=k).step)(dtn.state0, batch, key)
  for name in ("g_gan", "tid", "tv", "d_loss"):
    np.testing.assert_allclose(float(part[name]), float(full[name]), rtol=1e-5, err_msg=name)
  state = dtn.state0
  f_s = dtn.encoder(state.f_variables, imaging.to_float(jnp.asarray(batch["source_image"])))
  f_t = dtn.encoder(state.f_variables, imaging.to_float(jnp.asarray(batch["image"])))
  fake, _ = dtn.generator.apply(
      {"params": state.g_params, "batch_stats": state.g_batch_stats},
      jnp.concatenate([f_s, f_t]), train=True, mutable=["batch_stats"])
  per = jnp.mean(jnp.square(f_s - dtn.encoder(state.f_variables, fake[:BATCH])), axis=1)
  np.testing.assert_allclose(float(part["const"]), float(jnp.mean(per[:k])), rtol=1e-4)
  np.testing.assert_allclose(float(full["const"]), float(jnp.mean(per)), rtol=1e-4)
  with pytest.raises(ValueError, match="const_examples"):
    build_dtn(const_examples=-1)


def test_ema_of_g_with_its_own_statistics_is_what_translate_uses():
  parts = build_dtn(ema_decay=0.9)
  state = jax.jit(parts.init)(_key(0))
  chex.assert_trees_all_equal(state.ema_g_params, state.g_params)
  step = jax.jit(parts.step)
  for i in range(3):
    state, _ = step(state, dtn_batch(seed=i), jax.random.key(i))
  # Three warmed-up updates (decays 0.1, 2/11, 0.25) of a copy: close to g, not equal to it.
  diffs = [float(jnp.max(jnp.abs(e - g))) for e, g in
           zip(jax.tree.leaves(state.ema_g_params), jax.tree.leaves(state.g_params))]
  assert max(diffs) > 0
  assert jax.tree.structure(state.ema_g_batch_stats) == jax.tree.structure(state.g_batch_stats)
  assert any(not np.allclose(a, b) for a, b in zip(jax.tree.leaves(state.ema_g_batch_stats),
                                                    jax.tree.leaves(state.g_batch_stats)))
  x = imaging.to_float(jnp.asarray(dtn_batch(seed=9)["source_image"]))
  by_ema = steps.make_translate_fn(parts.generator, parts.encoder)(state, x)
  raw = steps.make_translate_fn(parts.generator, parts.encoder, use_ema=False)(state, x)
  swapped = state.replace(g_params=state.ema_g_params, g_batch_stats=state.ema_g_batch_stats)
  np.testing.assert_allclose(by_ema, steps.make_translate_fn(
      parts.generator, parts.encoder, use_ema=False)(swapped, x), atol=1e-6)
  assert not np.allclose(by_ema, raw, atol=1e-4)
  # decay 0: the EMA is g itself after every update.
  zero = build_dtn(ema_decay=0.0)
  s0, _ = jax.jit(zero.step)(jax.jit(zero.init)(_key(0)), dtn_batch(), jax.random.key(0))
  chex.assert_trees_all_close(s0.ema_g_params, s0.g_params, atol=1e-7)
  with pytest.raises(ValueError, match="ema_decay"):
    build_dtn(ema_decay=1.0)


def test_g_loss_is_the_weighted_sum_of_its_terms(dtn):
  _, m = dtn.jit_step(dtn.state0, dtn_batch(seed=10), jax.random.key(0))
  m = {k: float(v) for k, v in m.items()}
  total = m["g_gan"] + ALPHA * m["const"] + BETA * m["tid"] + GAMMA * m["tv"]
  np.testing.assert_allclose(m["g_loss"], total, rtol=1e-5)
  # Every term matters at this scale, so a mis-wired weight would show.
  for k, w in (("const", ALPHA), ("tid", BETA), ("tv", GAMMA)):
    assert w * m[k] > 1e-4 * m["g_loss"], (k, m)
  # The ternary D loss of the first step: three cross-entropies, near 3 log 3 at init.
  assert 0.5 * 3 * np.log(3) < m["d_loss"] < 2 * 3 * np.log(3)


def test_step_fits_the_target_identity_of_a_tiny_batch(dtn):
  """On one fixed batch, g(f(x)) learns to reproduce the target images: L_TID falls."""
  batch = _synthetic_batch()
  state = dtn.state0
  tids = []
  for i in range(80):
    state, metrics = dtn.jit_step(state, batch, jax.random.key(i))
    tids.append(float(metrics["tid"]))
  assert all(np.isfinite(tids))
  assert np.mean(tids[-10:]) < 0.5 * tids[0], (tids[0], tids[-10:])
  # In eval mode too (running batch statistics), the reconstructions are closer than at init.
  x = imaging.to_float(batch["image"])
  before = float(losses.tid_loss(x, dtn.jit_translate(dtn.state0, x), distance="mean_squared"))
  after = float(losses.tid_loss(x, dtn.jit_translate(state, x), distance="mean_squared"))
  assert after < before, (before, after)
  assert dtn.traces[0] == 1


def test_const_and_tid_weights_are_wired(dtn):
  batch = dtn_batch(seed=20)
  weighted, _ = dtn.jit_step(dtn.state0, batch, jax.random.key(0))
  plain = build_dtn(const_weight=0.0, tid_weight=0.0)
  unweighted, m = jax.jit(plain.step)(dtn.state0, batch, jax.random.key(0))
  np.testing.assert_allclose(float(m["g_loss"]), float(m["g_gan"]) + GAMMA * float(m["tv"]),
                             rtol=1e-5)
  # The same D update (the weights are g's), a different g update.
  for a, b in zip(jax.tree.leaves(weighted.d_params), jax.tree.leaves(unweighted.d_params)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  diffs = [float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in
           zip(jax.tree.leaves(weighted.g_params), jax.tree.leaves(unweighted.g_params))]
  assert max(diffs) > 1e-5, diffs
  for name in ("const_weight", "tid_weight", "tv_weight"):
    with pytest.raises(ValueError, match=name):
      build_dtn(**{name: -1.0})


def test_const_weight_warms_up_linearly(dtn):
  warm = jax.jit(build_dtn(const_warmup_steps=4).step)
  state, batch = dtn.state0, dtn_batch(seed=50)
  seen = []
  for _ in range(6):
    state, m = warm(state, batch, jax.random.key(0))
    seen.append(float(m["const_weight"]))
  np.testing.assert_allclose(seen, [0.0, ALPHA / 4, ALPHA / 2, 3 * ALPHA / 4, ALPHA, ALPHA],
                             rtol=1e-6)
  np.testing.assert_allclose(float(m["g_loss"]), float(m["g_gan"]) + ALPHA * float(m["const"])
                             + BETA * float(m["tid"]) + GAMMA * float(m["tv"]), rtol=1e-5)
  _, m0 = dtn.jit_step(dtn.state0, batch, jax.random.key(0))  # no warm-up: alpha from step 0
  assert float(m0["const_weight"]) == ALPHA
  with pytest.raises(ValueError, match="const_warmup_steps"):
    build_dtn(const_warmup_steps=-1)


def test_source_augmentation_transforms_the_source_batch_with_the_step_key(dtn):
  batch = dtn_batch(seed=40)
  seen = []

  def mirror(images, key):  # a deterministic "augmentation" that records its key
    seen.append(key)
    return images[:, :, ::-1, :]

  augmented, m_aug = jax.jit(build_dtn(source_augment_fn=mirror).step)(
      dtn.state0, batch, jax.random.key(3))
  assert len(seen) == 1  # traced once, with the step's key
  mirrored = {**batch, "source_image": batch["source_image"][:, :, ::-1, :]}
  expected, m_exp = dtn.jit_step(dtn.state0, mirrored, jax.random.key(3))
  for a, b in zip(jax.tree.leaves(augmented), jax.tree.leaves(expected)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(float(m_aug["const"]), float(m_exp["const"]), rtol=1e-5)
  plain, _ = dtn.jit_step(dtn.state0, batch, jax.random.key(3))  # unaugmented: another update
  assert max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in
             zip(jax.tree.leaves(plain.g_params), jax.tree.leaves(augmented.g_params))) > 1e-6


def test_translate_is_eval_mode_and_in_range(dtn):
  state, _ = dtn.jit_step(dtn.state0, dtn_batch(seed=30), jax.random.key(0))
  translate = dtn.jit_translate
  images = imaging.to_float(jnp.asarray(dtn_batch(n=6, seed=31)["source_image"]))
  out = translate(state, images)
  chex.assert_shape(out, (6, *TARGET))
  assert float(jnp.min(out)) >= -1 and float(jnp.max(out)) <= 1
  np.testing.assert_array_equal(out, translate(state, images))
  # Eval mode: each image's translation does not depend on the rest of the batch.
  halves = jnp.concatenate([translate(state, images[:3]), translate(state, images[3:])])
  np.testing.assert_allclose(out, halves, atol=1e-5)
  # Grey targets translate too (f adapts their channels).
  grey = imaging.to_float(jnp.asarray(dtn_batch(n=6, seed=32)["image"]))
  chex.assert_shape(translate(state, grey), (6, *TARGET))


_SHARDED = textwrap.dedent("""
    import jax, numpy as np
    from jgan import sharding
    from tests.test_dtn import build_dtn, dtn_batch, _key
    assert jax.device_count() == 8, jax.devices()
    dtn = build_dtn(width=4)
    state0 = jax.jit(dtn.init)(_key(0))
    batches = [dtn_batch(8, seed=i) for i in range(2)]
    results = []
    for devices in (jax.devices()[:1], jax.devices()):
      mesh = sharding.make_mesh(devices)
      rep = sharding.replicated(mesh)
      state = sharding.put_replicated(state0, mesh)
      step = jax.jit(dtn.step, in_shardings=(rep, sharding.batch_sharding(mesh), rep),
                     out_shardings=(rep, rep))
      for i, b in enumerate(batches):
        batch = sharding.put_batch(b, mesh)
        assert len(batch["source_image"].sharding.device_set) == len(devices)
        state, metrics = step(state, batch, jax.random.key(i))
      results.append(jax.device_get((state, metrics)))
    (s1, m1), (s8, m8) = results
    assert int(s1.step) == int(s8.step) == 2
    for a, b in zip(jax.tree.leaves(s1), jax.tree.leaves(s8)):
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    for k in m1:
      np.testing.assert_allclose(m1[k], m8[k], rtol=1e-4, atol=1e-5)
    print("SHARDED_OK")
""")


@pytest.mark.slow
def test_eight_devices_equal_one():
  # LLVM optimisation off halves the two compiles; the SPMD partitioning under test is the same.
  flags = "--xla_force_host_platform_device_count=8 --xla_backend_optimization_level=0"
  proc = run_python(_SHARDED, env_extra={"XLA_FLAGS": flags, "JAX_PLATFORMS": "cpu"})
  assert "SHARDED_OK" in proc.stdout, proc.stdout + proc.stderr


# ---------------------------------------------------------------------------- task end to end


# train.run initialises the state eagerly, op by op; under 'rbg' keys those ops compile in about
# half the time of threefry's (the runs below take ~12 s less). Nothing here depends on the values.
_FAST_PRNG = "rbg"


def _classifier_config(shape):
  from jgan.tasks import classifier  # pylint: disable=import-outside-toplevel
  c = classifier.default_config()
  c.data.name = "synthetic"
  c.data.synthetic_shape = shape
  c.data.synthetic_examples = 64
  c.model.widths = (4, 8)
  c.model.feature_dim = 8
  c.batch_size = 16
  c.total_steps = 2
  c.log_every = 2
  c.sample_every = 100
  c.checkpoint_every = 2
  c.eval_every = 0
  return c


@pytest.fixture
def trained_nets(tiny_encoder):
  """A classifier of 32x32 RGB images (conftest's, shared by the session): the encoder f of the
  sources and, fed the grey targets tiled to RGB, the judge of the translations."""
  return {"encoder": tiny_encoder, "judge": tiny_encoder}


def _dtn_config(nets, **overrides):
  from jgan.tasks import dtn  # pylint: disable=import-outside-toplevel
  c = dtn.default_config()
  c.data.name = "synthetic"
  c.data.synthetic_shape = TARGET
  c.data.synthetic_examples = 64
  c.data.image_size = 0
  c.source_data.name = "synthetic"
  c.source_data.synthetic_shape = SOURCE
  c.source_data.synthetic_examples = 64
  c.source_data.sources = ()
  c.encoder.workdir = nets["encoder"]
  c.encoder.widths = (4, 8)
  c.encoder.feature_dim = 8
  c.eval.classifier_workdir = nets["judge"]
  c.eval.num_examples = 32
  c.eval.batch_size = 16
  c.model.generator.width = 4
  c.model.discriminator.width = 4
  c.batch_size = 8
  c.total_steps = 4
  c.log_every = 2
  c.sample_every = 4
  c.checkpoint_every = 2
  c.eval_every = 4
  c.num_samples = 4
  return set_dotted(c, overrides)


def test_dtn_task_end_to_end(trained_nets, tmp_path):
  from jgan import runs, train  # pylint: disable=import-outside-toplevel
  workdir = str(tmp_path / "dtn")
  # A second source test set (another size of the synthetic set: the style split's plumbing).
  heldout = {"eval.heldout_style": {"synthetic_examples": 48}}
  with jax.default_prng_impl(_FAST_PRNG):
    result = runs.train(_dtn_config(trained_nets, **heldout), workdir, progress=False)
  assert result.step == 4 and result.resumed_from is None and result.step_traces == 1
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["2", "4"]
  assert os.listdir(os.path.join(workdir, "checkpoints_best"))
  for name in ("translations", "target_identity"):
    assert os.listdir(os.path.join(workdir, name)) == ["step_0000004.png"]
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    records = [json.loads(line) for line in f]
  assert [r["step"] for r in records] == [2, 4]
  for r in records:
    for k in ("d_loss", "g_loss", "g_gan", "const", "tid", "tv", "d_accuracy"):
      assert np.isfinite(r[k]), (k, r)
  accuracy = records[-1]["eval/transfer_accuracy"]
  assert 0.0 <= accuracy <= 1.0 and 0.0 <= records[-1]["eval/transfer_accuracy_heldout_style"] <= 1
  assert any(k.startswith("eval/fid/") for k in records[-1])
  # f's own accuracy on the same held-out source images (the ceiling of the transfer).
  from jgan import data as data_lib, imaging  # pylint: disable=import-outside-toplevel
  from jgan.tasks import dtn  # pylint: disable=import-outside-toplevel
  config = _dtn_config(trained_nets, **heldout)
  source = data_lib.from_config(config.source_data, split="test")
  keep = dtn._held_out(len(source), config.eval.num_examples)  # pylint: disable=protected-access
  f_net = runs.classifier_network(trained_nets["encoder"])
  f_pred = np.argmax(np.asarray(f_net.apply(imaging.to_float(source.images[keep]))["logits"]), -1)
  assert records[-1]["eval/encoder_accuracy"] == pytest.approx(
      float(np.mean(f_pred == source.labels[keep])))
  assert 0.0 <= records[-1]["eval/encoder_accuracy_heldout_style"] <= 1.0
  encoder_run = runs.load_run(trained_nets["encoder"])
  for a, b in zip(jax.tree.leaves(encoder_run.state.variables),
                  jax.tree.leaves(result.state.f_variables)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # f: the trained encoder, frozen

  grid = str(tmp_path / "grid.png")  # scripts/translation_grid.py on the held-out set
  spec = importlib.util.spec_from_file_location(
      "translation_grid", os.path.join(os.path.dirname(__file__), "..", "scripts",
                                       "translation_grid.py"))
  script = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(script)
  script.main(["--workdir", workdir, "--set", "synthetic_examples=48", "--num", "6",
               "--out", grid])
  from PIL import Image  # pylint: disable=import-outside-toplevel
  with Image.open(grid) as png:  # 6 pairs in one row: wider than 6 single images
    assert png.size[0] > 2 * 6 * TARGET[1]

  with jax.default_prng_impl(_FAST_PRNG):
    again = runs.train(_dtn_config(trained_nets, **heldout), workdir, progress=False)
  assert again.resumed_from == 4 and again.step == 4
  for a, b in zip(jax.tree.leaves(result.state), jax.tree.leaves(again.state)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

  run = runs.load_run(workdir)
  assert run.config.task == "dtn" and run.step == 4
  assert run.source_shape == SOURCE and run.image_shape == TARGET
  best = runs.load_run(workdir, best=True)  # the best checkpoint's metadata has the shapes too
  assert best.source_shape == SOURCE and best.step == 4
  for a, b in zip(jax.tree.leaves(result.state), jax.tree.leaves(run.state)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  inputs = run.task.sample_inputs(jax.random.key(0), 2)
  out = jax.eval_shape(run.task.sample, run.state, inputs)
  chex.assert_shape(out["translations"], (2, 32, 64, 3))  # source | translation (as RGB)
  chex.assert_shape(out["target_identity"], (2, 32, 64, 1))  # target | g(f(target))


def test_dtn_task_needs_a_source_dataset(trained_nets, tmp_path):
  from jgan import runs  # pylint: disable=import-outside-toplevel
  from jgan.tasks import dtn  # pylint: disable=import-outside-toplevel
  c = _dtn_config(trained_nets)
  del c["source_data"]
  with pytest.raises(ValueError, match="source"):
    runs.train(c, str(tmp_path / "no_source"), progress=False)
  with pytest.raises(ValueError, match="source_data"):
    dtn.build(_dtn_config(trained_nets), image_shape=TARGET)


@pytest.mark.parametrize("key,value,match", [
    ("loss.feature_mix", 1.5, r"feature_mix and feature_gaussian must be in \[0, 1\].*=1.5"),
    ("loss.feature_gaussian", 2.0, r"feature_gaussian must be in \[0, 1\].*feature_gaussian=2.0"),
    ("loss.feature_noise", -0.1, "feature_noise >= 0"),
    ("loss.const_examples", -2, r"const_examples must be >= 0.*-2"),
    ("loss.const_perturb.zoom", 1.2, r"zoom and shift in \[0, 1\).*zoom=1.2"),
    ("d_augment", "colour,sharpen", r"d_augment='colour,sharpen'.*'sharpen'.*allowed"),
    ("loss.adversarial", "hinge", r"'hinge'.*allowed: ternary, wasserstein"),
    ("loss.adversarial", "wasserstein", r"wasserstein.*needs a penalty"),
])
def test_dtn_bad_defence_values_are_named(trained_nets, key, value, match):
  from jgan.tasks import dtn  # pylint: disable=import-outside-toplevel
  c = _dtn_config(trained_nets, **{key: value})
  with pytest.raises(ValueError, match=match):
    dtn.build(c, image_shape=TARGET, source_shape=SOURCE)


def test_generator_condition_on_input_reaches_g(trained_nets):
  """model.generator.condition_on_input: f(x) scales and shifts every block of g (conditional
  affines in g's parameters), and the run's description says so."""
  from jgan.tasks import dtn  # pylint: disable=import-outside-toplevel
  for on in (False, True):
    c = _dtn_config(trained_nets, **{"model.generator.condition_on_input": on})
    task = dtn.build(c, image_shape=TARGET, source_shape=SOURCE)
    params = jax.eval_shape(task.init, _key(0)).g_params
    assert ("affine1" in params) == on and ("conditions every block" in task.describe) == on


def test_generator_palette_reaches_g(trained_nets):
  """model.generator.palette_size/palette_mode: g draws with a palette of colours read from
  f(x) (its parameters), hard-drawn translations use at most that many colours, and the
  run's description says so."""
  from jgan.tasks import dtn  # pylint: disable=import-outside-toplevel
  c = _dtn_config(trained_nets, **{"model.generator.palette_size": 3,
                                   "model.generator.palette_mode": "straight_through"})
  task = dtn.build(c, image_shape=TARGET, source_shape=SOURCE)
  assert "3 colours from f(x), straight_through" in task.describe
  assert "colours" not in dtn.build(_dtn_config(trained_nets), image_shape=TARGET,
                                    source_shape=SOURCE).describe
  kwargs = c.model.generator.to_dict()
  g = models.build_generator(kwargs.pop("name"), image_shape=TARGET, **kwargs)
  code = jax.random.normal(_key(2), (2, c.encoder.feature_dim))
  variables = g.init(_key(0), code, train=False)
  assert variables["params"]["palette"]["hidden"]["kernel"].shape[0] == c.encoder.feature_dim
  drawn = np.asarray(g.apply(variables, code, train=False))
  assert all(len(np.unique(im.reshape(-1, drawn.shape[-1]), axis=0)) <= 3 for im in drawn)


def test_generator_noise_reaches_g(trained_nets):
  """model.generator.noise_dim / loss.mode_seeking_weight: g reads f(x) and the noise, the
  step logs the mode-seeking term, the run's description names both, and the task's
  translations are deterministic (keyed noise)."""
  from jgan.tasks import dtn  # pylint: disable=import-outside-toplevel
  c = _dtn_config(trained_nets, **{"model.generator.noise_dim": 3,
                                   "loss.mode_seeking_weight": 0.5})
  task = dtn.build(c, image_shape=TARGET, source_shape=SOURCE)
  assert "f(x) + 3 noise values" in task.describe and "mode_seeking_weight=0.5" in task.describe
  assert "noise" not in dtn.build(_dtn_config(trained_nets), image_shape=TARGET,
                                  source_shape=SOURCE).describe
  state = task.init(_key(0))
  assert state.g_params["project"]["kernel"].shape[0] == c.encoder.feature_dim + 3
  rng = np.random.default_rng(0)
  batch = {"image": rng.integers(0, 256, (8, *TARGET), dtype=np.uint8),
           "source_image": rng.integers(0, 256, (8, *SOURCE), dtype=np.uint8)}
  _, m = jax.jit(task.step)(state, batch, _key(1))
  assert float(m["mode_seeking"]) > 0
  with pytest.raises(ValueError, match="needs a generator with noise"):
    dtn.build(_dtn_config(trained_nets, **{"loss.mode_seeking_weight": 0.5}), image_shape=TARGET,
              source_shape=SOURCE)


def test_wasserstein_game_reaches_the_step(trained_nets):
  """loss.adversarial=wasserstein with the gradient penalty and a layer-norm D: one step of
  the built task gives a finite, non-ternary D loss, and the run's description names it."""
  from jgan.tasks import dtn  # pylint: disable=import-outside-toplevel
  c = _dtn_config(trained_nets, **{"loss.adversarial": "wasserstein",
                                   "penalty.name": "gradient_penalty",
                                   "model.discriminator.normalization": "layer"})
  task = dtn.build(c, image_shape=TARGET, source_shape=SOURCE)
  assert "wasserstein + gradient_penalty" in task.describe
  assert "wasserstein" not in dtn.build(_dtn_config(trained_nets), image_shape=TARGET,
                                        source_shape=SOURCE).describe
  state = task.init(_key(0))
  rng = np.random.default_rng(0)
  batch = {"image": rng.integers(0, 256, (8, *TARGET), dtype=np.uint8),
           "source_image": rng.integers(0, 256, (8, *SOURCE), dtype=np.uint8)}
  _, m = jax.jit(task.step)(state, batch, _key(1))
  assert np.isfinite(float(m["d_loss"])) and float(m["penalty"]) >= 0
  # The ternary game starts near 3 log 3; the critic's starts near 0 (+ the penalty).
  assert abs(float(m["d_loss"]) - float(m["penalty"])) < 1.0


def test_const_examples_above_the_batch_mean_the_whole_batch(trained_nets):
  from jgan.tasks import dtn  # pylint: disable=import-outside-toplevel
  c = _dtn_config(trained_nets, **{"loss.const_examples": 99})  # batch_size 8
  assert dtn._const_examples(c) == 8  # pylint: disable=protected-access
  assert dtn._const_examples(_dtn_config(trained_nets)) == 0  # pylint: disable=protected-access


def test_classifier_encoder_head_is_its_logits_layer():
  """Encoder.head(v, f(x)) == the classifier's logits on x; no head on the logits layer."""
  from jgan.tasks import dtn  # pylint: disable=import-outside-toplevel
  c = dtn.default_config().encoder
  c.widths, c.feature_dim = (4, 8), 8
  f = dtn.build_encoder(c)
  variables = f.init(_key(5))
  x = jax.random.uniform(_key(6), (3, *SOURCE), minval=-1.0, maxval=1.0)
  logits = f.head(variables, f.apply(variables, x))
  chex.assert_shape(logits, (3, 10))
  np.testing.assert_allclose(np.asarray(logits), np.asarray(f.classify(variables, x)),
                             rtol=1e-5, atol=1e-6)
  c.layer = "logits"
  assert dtn.build_encoder(c).head is None


def test_class_weight_trains_with_the_head_and_refuses_without_one(trained_nets, tmp_path):
  from jgan import runs  # pylint: disable=import-outside-toplevel
  workdir = str(tmp_path / "dtn_class")
  c = _dtn_config(trained_nets, **{"loss.class_weight": 1.0, "total_steps": 2,
                                   "eval_every": 0, "checkpoint_every": 2})
  with jax.default_prng_impl(_FAST_PRNG):
    runs.train(c, workdir, progress=False)
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    logged = [json.loads(line) for line in f]
  assert any(np.isfinite(m.get("class", np.nan)) and m["class"] > 0 for m in logged)
  bad = _dtn_config(trained_nets, **{"loss.class_weight": 1.0, "encoder.standardize": True})
  with pytest.raises(ValueError, match=r"class_weight=1.0 needs f's classifier head.*"
                                       r"--config.loss.class_weight=0"):
    runs.train(bad, str(tmp_path / "bad"), progress=False)


def test_dtn_encoder_must_be_a_classifier_run(trained_nets, tmp_path):
  from jgan import runs, train  # pylint: disable=import-outside-toplevel
  gan_dir = str(tmp_path / "gan")
  with jax.default_prng_impl(_FAST_PRNG):
    train.run(tiny_gan_config(total_steps=1, checkpoint_every=1, log_every=1), gan_dir,
              progress=False)
  c = _dtn_config(trained_nets, **{"encoder.workdir": gan_dir})
  with pytest.raises(ValueError, match="'gan' run.*classifier"):
    runs.train(c, str(tmp_path / "dtn"), progress=False)


def test_dtn_encoder_architecture_mismatch_names_the_keys(trained_nets, tmp_path):
  from jgan import runs  # pylint: disable=import-outside-toplevel
  c = _dtn_config(trained_nets, **{"encoder.feature_dim": 16})
  with pytest.raises(ValueError, match=r"--config.encoder.feature_dim=8 \(config says 16\)"):
    runs.train(c, str(tmp_path / "dtn"), progress=False)


def test_translate_cli_is_self_contained_and_reports_bad_files(trained_nets, tmp_path):
  """jgan.translate: folder in, same relative names out as PNG; bad files listed, exit 1; the
  run opens without the encoder's run (f is in the checkpoint)."""
  import shutil  # pylint: disable=import-outside-toplevel
  from PIL import Image  # pylint: disable=import-outside-toplevel
  from jgan import runs, translate  # pylint: disable=import-outside-toplevel
  encoder_copy = str(tmp_path / "encoder")
  shutil.copytree(trained_nets["encoder"], encoder_copy)
  workdir = str(tmp_path / "dtn")
  c = _dtn_config(trained_nets, **{"encoder.workdir": encoder_copy, "eval_every": 0,
                                   "total_steps": 2})
  with jax.default_prng_impl(_FAST_PRNG):
    runs.train(c, workdir, progress=False)
  shutil.rmtree(encoder_copy)

  inputs = tmp_path / "in"
  (inputs / "sub").mkdir(parents=True)
  rng = np.random.default_rng(0)
  Image.fromarray(rng.integers(0, 255, (50, 40, 3), dtype=np.uint8)).save(inputs / "a.jpg")
  Image.fromarray(rng.integers(0, 255, (20, 20), dtype=np.uint8)).save(inputs / "sub" / "b.png")
  Image.fromarray(rng.integers(0, 255, (9, 9, 4), dtype=np.uint8), "RGBA").save(inputs / "c.png")
  (inputs / "broken.png").write_bytes(b"not an image")
  out = tmp_path / "out"
  code = translate.main(["--workdir", workdir, "--input", str(inputs), "--out", str(out)])
  assert code == 1  # one unreadable file
  written = sorted(str(p.relative_to(out)) for p in out.rglob("*.png"))
  assert written == ["a.png", "c.png", "sub/b.png"]
  with Image.open(out / "a.png") as image:
    assert image.size == (32, 32) and image.mode == "L"  # the target domain: 32x32 grey
  with pytest.raises(translate.UnreadableImagesError, match="broken.png"):
    translate.translate_images(workdir, input_path=str(inputs), out=str(tmp_path / "o2"))
  assert translate.main(["--workdir", workdir, "--input", str(inputs / "a.jpg"),
                         "--out", str(tmp_path / "o3")]) == 0
  assert os.path.exists(tmp_path / "o3" / "a.png")
  assert translate.main(["--workdir", workdir, "--input", str(tmp_path / "missing"),
                         "--out", str(out)]) == 1
  assert translate.main(["--workdir", trained_nets["encoder"], "--input", str(inputs),
                         "--out", str(out)]) == 1  # a classifier run cannot translate


def test_standardized_encoder_statistics_are_kept_with_f(trained_nets, tmp_path):
  """encoder.standardize: f's mean/std over the source training set are computed when the run
  starts and saved with f; g sees standardised features; retrieval ranks by the raw ones."""
  from jgan import runs, train  # pylint: disable=import-outside-toplevel
  from jgan.tasks import dtn  # pylint: disable=import-outside-toplevel
  workdir = str(tmp_path / "dtn_std")
  c = _dtn_config(trained_nets, **{"encoder.standardize": True, "total_steps": 2,
                                   "eval_every": 2, "eval.metrics": ("retrieval",),
                                   "eval.retrieval_splits": ("train", "test"),
                                   "eval.best_metric": "retrieval_top1"})
  with jax.default_prng_impl(_FAST_PRNG):
    result = runs.train(c, workdir, progress=False)
  f_vars = result.state.f_variables
  assert set(f_vars) == {"network", "mean", "std"}
  encoder = dtn.build_encoder(c.encoder)
  network = runs.load_run(trained_nets["encoder"]).state.variables
  for a, b in zip(jax.tree.leaves(network), jax.tree.leaves(f_vars["network"])):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  source = data.from_config(c.source_data, split="train").images
  raw = np.asarray(encoder.apply(network, imaging.to_float(jnp.asarray(source))), np.float64)
  np.testing.assert_allclose(f_vars["mean"], raw.mean(0), rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(f_vars["std"], raw.std(0), rtol=1e-4, atol=1e-5)
  chex.assert_shape([f_vars["mean"], f_vars["std"]], (8,))
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    last = [json.loads(line) for line in f][-1]
  assert last["eval/retrieval_num"] == 32 and 1 <= last["eval/retrieval_median_rank"] <= 32
  assert last["eval/retrieval_train_num"] == 32  # 64 training images, eval.num_examples = 32
  assert 0 <= last["eval/retrieval_train_top1"] <= last["eval/retrieval_train_top5"] <= 1

  run = runs.load_run(workdir)  # resumes with the statistics, not the init's zeros/ones
  np.testing.assert_array_equal(run.state.f_variables["std"], f_vars["std"])
  x = imaging.to_float(jnp.asarray(source[:4]))
  # A dead (ReLU) feature has std 0: the stored std is floored, so divide by that.
  expected_input = (raw[:4] - raw.mean(0)) / np.asarray(f_vars["std"], np.float64)
  generator = run.task.translate(run.state, x)
  assert generator.shape == (4, 32, 32, 1)
  g_module = models.build_generator("dcgan", image_shape=TARGET, width=4)
  direct = g_module.apply({"params": run.state.g_params, "batch_stats": run.state.g_batch_stats},
                          jnp.asarray(expected_input, jnp.float32), train=False)
  np.testing.assert_allclose(generator, direct, atol=1e-4)


def test_target_statistics_and_decoder_warmup_in_a_run(trained_nets, tmp_path):
  """encoder.target_standardize: f's mean/std over the target training set are kept with f
  beside the source's. loss.decoder_warmup_steps=2: the loop runs the decoder step (L_TID
  alone, no D) for steps 1-2 and the DTN step after. Bad values are named."""
  from jgan import runs  # pylint: disable=import-outside-toplevel
  from jgan.tasks import dtn  # pylint: disable=import-outside-toplevel
  workdir = str(tmp_path / "dtn_target_std")
  c = _dtn_config(trained_nets, **{"encoder.standardize": True,
                                   "encoder.target_standardize": "all", "total_steps": 3,
                                   "loss.decoder_warmup_steps": 2, "log_every": 1,
                                   "eval_every": 0, "checkpoint_every": 3})
  with jax.default_prng_impl(_FAST_PRNG):
    result = runs.train(c, workdir, progress=False)
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    records = [json.loads(line) for line in f]
  assert [r["step"] for r in records] == [1, 2, 3]
  assert ["d_loss" in r for r in records] == [False, False, True]
  assert all(np.isfinite(r["tid"]) for r in records)
  assert result.step_traces == 1  # the DTN step compiled once; the warm-up step apart
  f_vars = result.state.f_variables
  assert set(f_vars) == {"network", "mean", "std", "target_mean", "target_std"}
  encoder = dtn.build_encoder(c.encoder)
  target = data.from_config(c.data, split="train").images
  raw = np.asarray(encoder.apply(f_vars["network"], imaging.to_float(jnp.asarray(target))),
                   np.float64)
  np.testing.assert_allclose(f_vars["target_mean"], raw.mean(0), rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(f_vars["target_std"], np.maximum(raw.std(0), f_vars["target_std"]),
                             rtol=1e-4, atol=1e-5)
  assert not np.allclose(f_vars["target_mean"], f_vars["mean"])
  task = dtn.build(c, image_shape=TARGET, source_shape=SOURCE)
  assert "target by its own statistics (all)" in task.describe
  for bad, match in (({"encoder.standardize": True, "encoder.target_standardize": "photos"},
                      "Unknown config.encoder.target_standardize 'photos'; available: none, "
                      "input, all"),
                     ({"encoder.target_standardize": "input"},
                      "target_standardize='input' needs config.encoder.standardize=True"),
                     ({"loss.decoder_warmup_steps": 2, "total_steps": 2},
                      "decoder_warmup_steps=2 must be in [0, total_steps=2)"),
                     ({"model.discriminator.patch_layers": 9},
                      "patch_layers=9 must be in [0, 3] at resolution 32"),
                     ({"model.discriminator.whole_image_head": True},
                      "whole_image_head=True adds the whole-image head to a patch D: it needs "
                      "patch_layers in [1, 2] at resolution 32, got 0"),
                     ({"loss.tid_distance": "l2"},
                      "Unknown config.loss.tid_distance 'l2'; available: None (= loss.distance), "
                      "mse, mean_squared, l1, mean_abs, cosine")):
    with pytest.raises(ValueError, match=re.escape(match)):
      dtn.build(_dtn_config(trained_nets, **bad), image_shape=TARGET, source_shape=SOURCE)


def test_cached_f_gives_the_same_step_as_running_f(trained_nets):
  """encoder.cache: f's outputs on the batch, precomputed, give the step run f would give."""
  from jgan import runs  # pylint: disable=import-outside-toplevel
  from jgan.tasks import dtn  # pylint: disable=import-outside-toplevel
  c = _dtn_config(trained_nets)
  prerequisites = runs.resolve_prerequisites(c, evaluation=False)
  task = dtn.build(c, image_shape=TARGET, source_shape=SOURCE, prerequisites=prerequisites)
  state = task.load_pretrained(jax.jit(task.init)(jax.random.key(0)))
  rng = np.random.default_rng(0)
  batch = {"image": rng.integers(0, 256, (8, *TARGET), dtype=np.uint8),
           "source_image": rng.integers(0, 256, (8, *SOURCE), dtype=np.uint8)}
  encoder = dtn.build_encoder(c.encoder)
  cached = dict(batch)
  cached["target_features"] = encoder.apply(state.f_variables, imaging.to_float(batch["image"]))
  cached["source_features"] = encoder.apply(
      state.f_variables, imaging.to_float(batch["source_image"]))[:, None]  # V = 1
  step = jax.jit(task.step)
  a, metrics_a = step(state, batch, jax.random.key(3))
  b, metrics_b = step(state, cached, jax.random.key(3))
  for name in ("g_loss", "d_loss", "const", "tid"):
    np.testing.assert_allclose(metrics_a[name], metrics_b[name], rtol=1e-5, err_msg=name)
  chex.assert_trees_all_close(a.g_params, b.g_params, atol=1e-6)


def test_precompute_features_is_cached_and_keyed(trained_nets, tmp_path):
  from jgan import augment  # pylint: disable=import-outside-toplevel
  from jgan.tasks import dtn  # pylint: disable=import-outside-toplevel
  c = _dtn_config(trained_nets)
  encoder = dtn.build_encoder(c.encoder)
  variables = encoder.init(jax.random.key(0))
  target = data.make_synthetic(image_shape=TARGET, num_examples=20, num_classes=None, seed=1)
  source = data.make_synthetic(image_shape=SOURCE, num_examples=12, num_classes=None, seed=2)
  variants = augment.variant_grid(ml_collections.ConfigDict({"flip": True, "rotation": 5.0}),
                                  rotations=3)
  assert variants == ((False, -5.0), (False, 0.0), (False, 5.0), (True, -5.0), (True, 0.0),
                      (True, 5.0))
  out = dtn.precompute_features(encoder.apply, variables, {"": target, "source": source},
                                variants=variants, cache_dir=str(tmp_path), batch_size=8)
  f_t, f_s = out[""].extras["target_features"], out["source"].extras["features"]
  chex.assert_shape(f_t, (20, 8))
  chex.assert_shape(f_s, (12, 6, 8))
  flipped = encoder.apply(variables, imaging.to_float(source.images[:, :, ::-1]))
  np.testing.assert_allclose(f_s[:, 4], flipped, rtol=1e-4, atol=1e-5)  # (True, 0.0)
  assert len(os.listdir(tmp_path)) == 1
  again = dtn.precompute_features(  # read back, not computed
      lambda v, x: pytest.fail("f ran again"), variables, {"": target, "source": source},
      variants=variants, cache_dir=str(tmp_path), batch_size=8)
  np.testing.assert_array_equal(again["source"].extras["features"], f_s)
  other = dataclasses.replace(source, images=source.images[::-1].copy())  # other data: new key
  dtn.precompute_features(encoder.apply, variables, {"": target, "source": other},
                          variants=variants, cache_dir=str(tmp_path), batch_size=8)
  assert len(os.listdir(tmp_path)) == 2


def test_cached_run_resumes_exactly(trained_nets, tmp_path):
  from jgan import runs  # pylint: disable=import-outside-toplevel
  overrides = {"encoder.cache": True, "encoder.cache_rotations": 3, "source_augment.flip": True,
               "source_augment.rotation": 5.0, "eval_every": 0, "total_steps": 4,
               "checkpoint_every": 2, "ema_decay": 0.9, "loss.feature_mix": 0.5,
               "loss.feature_noise": 0.1, "loss.feature_gaussian": 0.5,
               "loss.const_examples": 4,
               "loss.const_perturb.zoom": 0.1, "loss.const_perturb.blur": 1.0}
  with jax.default_prng_impl(_FAST_PRNG):
    straight = runs.train(_dtn_config(trained_nets, **overrides), str(tmp_path / "a"),
                          progress=False)
    runs.train(_dtn_config(trained_nets, **{**overrides, "total_steps": 2}),
               str(tmp_path / "b"), progress=False)
    resumed = runs.train(_dtn_config(trained_nets, **overrides), str(tmp_path / "b"),
                         progress=False)
  assert resumed.resumed_from == 2 and len(os.listdir(tmp_path / "b" / "feature_cache")) == 1
  chex.assert_trees_all_close(straight.state.g_params, resumed.state.g_params, atol=1e-6)
  chex.assert_trees_all_close(straight.state.ema_g_params, resumed.state.ema_g_params, atol=1e-6)
  chex.assert_trees_all_close(straight.state.ema_g_batch_stats,
                              resumed.state.ema_g_batch_stats, atol=1e-6)


def test_celeb_a_folder_source_with_the_feature_cache(trained_nets, tmp_path):
  """The CelebA path (a folder of face images as config.source_data) trains with f cached
  and evaluates retrieval on it."""
  from PIL import Image  # pylint: disable=import-outside-toplevel
  from jgan import runs  # pylint: disable=import-outside-toplevel
  folder = tmp_path / "img_align_celeba"
  folder.mkdir()
  rng = np.random.default_rng(0)
  for i in range(12):
    Image.fromarray(rng.integers(0, 256, (40, 36, 3), dtype=np.uint8)).save(
        folder / f"{i + 1:06d}.jpg")
  c = _dtn_config(trained_nets, **{
      "encoder.cache": True, "source_augment.flip": True, "encoder.cache_rotations": 1,
      "eval.metrics": ("retrieval",), "eval.best_metric": "retrieval_top1",
      "eval.best_mode": "max", "total_steps": 2, "eval_every": 2, "eval.num_examples": 12})
  c.source_data.name, c.source_data.sources = "celeb_a", ("folder",)
  c.source_data.dir, c.source_data.image_size = str(folder), 32
  with jax.default_prng_impl(_FAST_PRNG):
    result = runs.train(c, str(tmp_path / "dtn"), progress=False)
  assert int(result.state.step) == 2
  (cache_file,) = os.listdir(tmp_path / "dtn" / "feature_cache")
  with np.load(tmp_path / "dtn" / "feature_cache" / cache_file) as cached:
    chex.assert_shape(cached["source"], (12, 2, 8))  # 12 faces x (no flip, flip) x F
  with open(tmp_path / "dtn" / "metrics.jsonl") as f:
    last = [json.loads(line) for line in f][-1]
  assert last["eval/retrieval_num"] == 12


def test_judged_face_metrics_and_blurred_retrieval(trained_nets, tmp_path):
  """The faces evaluation: FID over every source image under the fixed variants, KID of the
  held-out translations, the reconstructions' FID and MSE, retrieval on blurred translations."""
  from jgan import runs  # pylint: disable=import-outside-toplevel
  c = _dtn_config(trained_nets, **{
      "eval.metrics": ("fid", "kid_heldout", "reconstruction", "retrieval"),
      "eval.fid_splits": ("train", "test"), "eval.fid_variants": True,
      "source_augment.flip": True, "source_augment.rotation": 5.0,
      "encoder.cache_rotations": 2, "eval.best_metric": "retrieval_top1",
      "eval.best_mode": "max", "total_steps": 2, "eval_every": 2})
  with jax.default_prng_impl(_FAST_PRNG):
    runs.train(c, str(tmp_path / "dtn"), progress=False)
  with open(tmp_path / "dtn" / "metrics.jsonl") as f:
    last = [json.loads(line) for line in f][-1]
  name = "classifier:classifier:features"
  for key in (f"eval/fid/{name}", f"eval/kid_heldout/{name}", f"eval/fid_reconstruction/{name}"):
    assert np.isfinite(last[key]), key
  assert last["eval/reconstruction_mse"] > 0
  # Pixel-level noise (jgan.imaging.median_residual) of translations, reconstructions, targets.
  assert last["eval/speckle"] > 0 and last["eval/speckle_reconstruction"] > 0
  assert 0 <= last["eval/speckle_real"] < 2
  assert 0 <= last["eval/retrieval_blurred_top1"] <= last["eval/retrieval_blurred_top5"] <= 1
  assert 1 <= last["eval/retrieval_blurred_median_rank"] <= 32
