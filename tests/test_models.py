"""Tests of jgan.models: shapes, dtypes, batch statistics, registry and errors. Tiny widths."""

import functools
import math

import chex
import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgan import imaging, models
from jgan.models import dcgan

LATENT = 8
WIDTH = 8
BATCH = 3


def _key(seed):
  # 'rbg' keys: the default threefry init of a DCGAN compiles in ~5 s on CPU, rbg in ~1 s.
  return jax.random.key(seed, impl="rbg")


def _init(model, x, **kwargs):
  return jax.jit(functools.partial(model.init, train=False, **kwargs))(
      {"params": _key(0), "dropout": _key(1)}, x)


def _numpy_init(model, x, seed=0):
  """Variables of ``model.init``'s shapes, filled by numpy (N(0, 0.05); BN/LN scale and var 1).

  XLA:CPU compiles the random initialisers of a DCGAN in 1-5 s; the real initialisers are
  tested separately (test_*_init_*), the other tests only need values of the right shapes.
  """
  rng = np.random.default_rng(seed)
  shapes = jax.eval_shape(functools.partial(model.init, train=False), _key(0), x)
  def fill(path, leaf):
    name = path[-1].key
    if name in ("scale", "var"):
      return jnp.ones(leaf.shape, leaf.dtype)
    return jnp.asarray(0.05 * rng.standard_normal(leaf.shape), leaf.dtype)
  return jax.tree_util.tree_map_with_path(fill, shapes)


def _init_and_run(model, x):
  """Variables, then one compile: apply with train=False and train=True (mutable batch_stats)."""
  variables = _numpy_init(model, x)
  @jax.jit
  def run(variables, x):
    y_eval = model.apply(variables, x, train=False)
    y_train, updates = model.apply(variables, x, train=True, mutable=["batch_stats"])
    return y_eval, y_train, updates
  return variables, *run(variables, x)


def _apply(model, variables, x, *, train, mutable=False, rngs=None):
  fn = functools.partial(model.apply, train=train, mutable=mutable)
  return jax.jit(fn)(variables, x, rngs=rngs)


def _images(resolution, channels, batch=BATCH):
  x = jax.random.uniform(jax.random.key(2), (batch, resolution, resolution, channels))
  return 2.0 * x - 1.0


def _num_params(params):
  return sum(math.prod(p.shape) for p in jax.tree.leaves(params))


def _assert_stats_updated(before, after):
  chex.assert_trees_all_equal_structs(before, after)
  leaves_before, leaves_after = jax.tree.leaves(before), jax.tree.leaves(after)
  assert any(not np.allclose(a, b) for a, b in zip(leaves_before, leaves_after))


# ----------------------------------------------------------------------------- DCGAN generator


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("resolution", [28, 32, 64])
def test_dcgan_generator_shapes_and_batch_stats(resolution, channels):
  g = models.DCGANGenerator(resolution, channels=channels, width=WIDTH)
  z = jax.random.normal(jax.random.key(3), (BATCH, LATENT))
  variables, y_eval, y_train, updates = _init_and_run(g, z)
  assert set(variables) == {"params", "batch_stats"}
  n_blocks = {28: 2, 32: 3, 64: 4}[resolution]
  assert set(variables["batch_stats"]) == {f"bn{i}" for i in range(n_blocks)}
  # The projection's channels: 2w (28), 4w (32), 8w (64).
  chex.assert_shape(variables["batch_stats"]["bn0"]["mean"], (WIDTH * 2 ** (n_blocks - 1),))

  for y in (y_eval, y_train):
    chex.assert_shape(y, (BATCH, resolution, resolution, channels))
    chex.assert_type(y, jnp.float32)
    chex.assert_tree_all_finite(y)
    assert float(jnp.max(jnp.abs(y))) <= 1.0
  assert set(updates) == {"batch_stats"}
  _assert_stats_updated(variables["batch_stats"], updates["batch_stats"])


def test_dcgan_generator_init_follows_dcgan():
  g = models.DCGANGenerator(28, channels=3, width=16)
  variables = _init(g, jnp.zeros((2, 100)))
  params = variables["params"]
  kernel = params["up1"]["kernel"]  # [2, 2, 2w, 4 * w]
  chex.assert_shape(kernel, (2, 2, 32, 4 * 16))
  assert abs(float(kernel.std()) - 0.02) < 0.001
  assert abs(float(kernel.mean())) < 0.001
  chex.assert_shape(params["project"]["kernel"], (100, 7 * 7 * 32))
  assert abs(float(params["bn1"]["scale"].mean()) - 1.0) < 0.01
  assert "bias" not in params["up1"] and "bias" not in params["project"]
  chex.assert_shape(params["up2"]["bias"], (3,))
  chex.assert_trees_all_close(variables["batch_stats"]["bn1"]["var"], jnp.ones(16))


def test_dcgan_discriminator_init_follows_dcgan():
  d = models.DCGANDiscriminator(28, width=16, normalization="layer")
  params = _init(d, jnp.zeros((2, 28, 28, 3)))["params"]
  kernel = params["conv1"]["kernel"]
  chex.assert_shape(kernel, (4, 4, 16, 32))
  assert abs(float(kernel.std()) - 0.02) < 0.001
  assert abs(float(params["norm1"]["scale"].mean()) - 1.0) < 0.01
  chex.assert_trees_all_close(params["conv1"]["bias"], jnp.zeros(32))


@pytest.mark.parametrize("train", [False, True])
def test_dcgan_generator_subpixel_equals_conv_transpose(train):
  kwargs = dict(resolution=32, channels=3, width=WIDTH)
  g_ct = models.DCGANGenerator(upsample="conv_transpose", **kwargs)
  g_sp = models.DCGANGenerator(upsample="subpixel", **kwargs)
  z = jax.random.normal(jax.random.key(3), (BATCH, LATENT))
  v_ct = _numpy_init(g_ct, z)
  v_ct = {**v_ct, "batch_stats": jax.tree.map(  # non-trivial running statistics
      lambda s: s + jax.random.uniform(jax.random.key(4), s.shape), v_ct["batch_stats"])}
  v_sp = {"params": dcgan.generator_params_to_subpixel(v_ct["params"]),
          "batch_stats": v_ct["batch_stats"]}
  # Same tree as the sub-pixel generator's own init, with the mapped kernel shapes.
  v_sp_init = jax.eval_shape(functools.partial(g_sp.init, train=False), _key(0), z)
  chex.assert_trees_all_equal_shapes_and_dtypes(v_sp, v_sp_init)
  mutable = ["batch_stats"] if train else False
  out_ct = _apply(g_ct, v_ct, z, train=train, mutable=mutable)
  out_sp = _apply(g_sp, v_sp, z, train=train, mutable=mutable)
  chex.assert_trees_all_close(out_sp, out_ct, atol=1e-5)


# ------------------------------------------------------------------------- DCGAN discriminator


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("resolution", [28, 32, 64])
def test_dcgan_discriminator_shapes_and_batch_stats(resolution, channels):
  d = models.DCGANDiscriminator(resolution, width=WIDTH)
  x = _images(resolution, channels)
  variables, logits_eval, logits_train, updates = _init_and_run(d, x)
  n_convs = {28: 2, 32: 3, 64: 4}[resolution]
  assert set(variables["batch_stats"]) == {f"norm{i}" for i in range(1, n_convs)}
  chex.assert_shape(variables["params"][f"conv{n_convs - 1}"]["kernel"],
                    (4, 4, WIDTH * 2 ** (n_convs - 2), WIDTH * 2 ** (n_convs - 1)))
  final_size = {28: 7, 32: 4, 64: 4}[resolution]
  chex.assert_shape(variables["params"]["out"]["kernel"],
                    (final_size ** 2 * WIDTH * 2 ** (n_convs - 1), 1))

  for logits in (logits_eval, logits_train):
    chex.assert_shape(logits, (BATCH,))
    chex.assert_type(logits, jnp.float32)
    chex.assert_tree_all_finite(logits)
  _assert_stats_updated(variables["batch_stats"], updates["batch_stats"])


@pytest.mark.parametrize("normalization", ["layer", "none"])
def test_dcgan_critic_without_batch_norm(normalization):
  d = models.DCGANDiscriminator(32, width=WIDTH, normalization=normalization)
  x = _images(32, 3)
  variables = _numpy_init(d, x)
  assert set(variables) == {"params"}
  has_norm = any(k.startswith("norm") for k in variables["params"])
  assert has_norm == (normalization == "layer")
  if normalization == "layer":
    chex.assert_shape(variables["params"]["norm1"]["scale"], (2 * WIDTH,))
  chex.assert_shape(variables["params"]["conv1"]["bias"], (2 * WIDTH,))
  logits = _apply(d, variables, x, train=True)
  chex.assert_shape(logits, (BATCH,))
  chex.assert_type(logits, jnp.float32)
  # Per-sample: one sample's logit does not depend on the others (needed by WGAN-GP).
  logits_first = _apply(d, variables, x[:1], train=True)
  chex.assert_trees_all_close(logits_first, logits[:1], atol=1e-5)


def test_dcgan_spectral_norm_discriminator_normalises_every_layer():
  """Params keep their names and shapes; each layer's power-iteration sigma approaches the
  kernel's largest singular value from below over train-mode calls (within 3% after 30 of
  them, for random kernels whose top singular values lie close), and the critic stays
  per-sample."""
  d = models.DCGANDiscriminator(32, width=WIDTH, normalization="spectral", num_outputs=3)
  x = _images(32, 3)
  variables = _numpy_init(d, x)
  assert set(variables["params"]) == {"conv0", "conv1", "conv2", "out"}
  assert set(variables["batch_stats"]) == {"sn_conv0", "sn_conv1", "sn_conv2", "sn_out"}
  stats = variables["batch_stats"]
  for _ in range(30):
    _, updates = d.apply({"params": variables["params"], "batch_stats": stats}, x, train=True,
                         mutable=["batch_stats"])
    stats = updates["batch_stats"]
  for name in ("conv0", "conv1", "conv2", "out"):
    kernel = np.asarray(variables["params"][name]["kernel"])
    top = np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0]
    sigma = float(stats[f"sn_{name}"][f"{name}/kernel/sigma"])
    assert 0.97 * top <= sigma <= top * (1 + 1e-5), (name, sigma, top)
  logits = d.apply({"params": variables["params"], "batch_stats": stats}, x, train=False)
  chex.assert_shape(logits, (BATCH, 3))
  chex.assert_type(logits, jnp.float32)
  first = d.apply({"params": variables["params"], "batch_stats": stats}, x[:1], train=False)
  chex.assert_trees_all_close(first, logits[:1], atol=1e-5)  # per-sample


# ------------------------------------------------------------------------------------- MLP


def test_mlp_generator_shapes_and_param_count():
  g = models.MLPGenerator()
  z = jax.random.normal(jax.random.key(3), (BATCH, 100))
  variables = _numpy_init(g, z)
  assert set(variables) == {"params"}
  expected = (100 * 256 + 256) + (256 * 512 + 512) + (512 * 1024 + 1024) + (1024 * 784 + 784)
  assert _num_params(variables["params"]) == expected == 1_486_352
  y = _apply(g, variables, z, train=True)
  chex.assert_shape(y, (BATCH, 28, 28, 1))
  chex.assert_type(y, jnp.float32)
  assert float(jnp.max(jnp.abs(y))) <= 1.0


@pytest.mark.parametrize("output_shape", [(28, 28, 1), (32, 32, 3), (64, 64, 1)])
def test_mlp_generator_output_shapes(output_shape):
  g = models.MLPGenerator(output_shape=output_shape, hidden=(16,))
  z = jnp.ones((2, LATENT))
  y = _apply(g, _numpy_init(g, z), z, train=False)
  chex.assert_shape(y, (2, *output_shape))
  assert float(jnp.max(jnp.abs(y))) <= 1.0


def test_mlp_discriminator_param_count_and_dropout():
  d = models.MLPDiscriminator()
  x = _images(28, 1)
  variables = _numpy_init(d, x)
  expected = (784 * 1024 + 1024) + (1024 * 512 + 512) + (512 * 256 + 256) + (256 * 1 + 1)
  assert _num_params(variables["params"]) == expected == 1_460_225
  assert set(variables) == {"params"}

  logits_eval = _apply(d, variables, x, train=False)
  chex.assert_shape(logits_eval, (BATCH,))
  chex.assert_type(logits_eval, jnp.float32)
  chex.assert_trees_all_close(logits_eval, _apply(d, variables, x, train=False))
  train_a = _apply(d, variables, x, train=True, rngs={"dropout": _key(5)})
  train_b = _apply(d, variables, x, train=True, rngs={"dropout": _key(6)})
  chex.assert_shape(train_a, (BATCH,))
  assert not np.allclose(train_a, train_b)  # dropout is active and uses the 'dropout' rng
  with pytest.raises(flax.errors.InvalidRngError, match="dropout"):
    d.apply(variables, x, train=True)  # no rng given


@pytest.mark.parametrize("resolution,channels", [(32, 3), (64, 1)])
def test_mlp_discriminator_other_shapes(resolution, channels):
  d = models.MLPDiscriminator(hidden=(16, 8))
  x = _images(resolution, channels)
  logits = _apply(d, _numpy_init(d, x), x, train=False)
  chex.assert_shape(logits, (BATCH,))


# ------------------------------------------------------------------------------------ bf16


@pytest.mark.parametrize("name", ["mlp", "dcgan"])
def test_bf16_compute_keeps_float32_params_and_outputs(name):
  kwargs = {"resolution": 28, "width": WIDTH} if name == "dcgan" else {"hidden": (16,)}
  g_kwargs = dict(kwargs, channels=3) if name == "dcgan" else dict(kwargs, output_shape=(28, 28, 3))
  g = models.build_generator(name, dtype=jnp.bfloat16, **g_kwargs)
  d = models.build_discriminator(name, dtype=jnp.bfloat16, **kwargs)
  z = jnp.ones((2, LATENT))
  g_vars = _numpy_init(g, z)  # dtypes from model.init: param_dtype stays float32
  assert {p.dtype for p in jax.tree.leaves(g_vars)} == {jnp.dtype(jnp.float32)}
  y = _apply(g, g_vars, z, train=False)
  chex.assert_type(y, jnp.float32)
  chex.assert_shape(y, (2, 28, 28, 3))
  logits = _apply(d, _numpy_init(d, y), y, train=False)
  chex.assert_type(logits, jnp.float32)
  chex.assert_shape(logits, (2,))


# ------------------------------------------------------------------------- registry / errors


def test_registry_is_explicit():
  assert models.GENERATORS == {"mlp": models.MLPGenerator, "dcgan": models.DCGANGenerator}
  assert models.DISCRIMINATORS == {
      "mlp": models.MLPDiscriminator, "dcgan": models.DCGANDiscriminator}
  g = models.build_generator("dcgan", resolution=28, channels=1, width=4)
  assert isinstance(g, models.DCGANGenerator) and g.resolution == 28 and g.width == 4
  d = models.build_discriminator("mlp", dropout_rate=0.5)
  assert isinstance(d, models.MLPDiscriminator) and d.dropout_rate == 0.5


def test_bad_registry_name():
  with pytest.raises(ValueError, match=r"'stylegan'.*\['dcgan', 'mlp'\]"):
    models.build_generator("stylegan")
  with pytest.raises(ValueError, match=r"'resnet'.*\['dcgan', 'mlp'\]"):
    models.build_discriminator("resnet")


def test_bad_or_missing_kwarg():
  with pytest.raises(ValueError, match=r"\['depth'\].*'resolution', 'channels', 'width'"):
    models.build_generator("dcgan", resolution=32, depth=3)
  with pytest.raises(ValueError, match=r"\['latent_dim'\].*'output_shape', 'hidden'"):
    models.build_generator("mlp", latent_dim=100)
  with pytest.raises(ValueError, match=r"resolution.*valid fields"):
    models.build_discriminator("dcgan", width=8)


@pytest.mark.parametrize("impl", ["subpixel", "conv"])
def test_resize_conv_golden(impl):
  """ResizeConv = nearest x2, then a zero-padded 3x3 correlation, + bias (numpy by hand)."""
  x = np.asarray(jax.random.normal(jax.random.key(5), (2, 3, 3, 4)))
  layer = models.ResizeConv(5, impl=impl)
  variables = layer.init(_key(0), x)
  kernel = np.asarray(variables["params"]["kernel"])
  chex.assert_shape(kernel, (3, 3, 4, 5))
  variables = {"params": {"kernel": kernel, "bias": np.arange(5, dtype=np.float32)}}
  got = layer.apply(variables, x)
  chex.assert_shape(got, (2, 6, 6, 5))
  up = np.pad(np.repeat(np.repeat(x, 2, axis=1), 2, axis=2), ((0, 0), (1, 1), (1, 1), (0, 0)))
  want = np.zeros((2, 6, 6, 5))
  for i in range(6):
    for j in range(6):
      want[:, i, j] = np.einsum("bhwc,hwcf->bf", up[:, i:i + 3, j:j + 3], kernel) + np.arange(5)
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
  # No checkerboard: a constant input gives a constant output away from the zero-padded border.
  flat = layer.apply(variables, np.ones((1, 4, 4, 4), np.float32))[0, 1:-1, 1:-1]
  np.testing.assert_allclose(flat, np.broadcast_to(flat[0, 0], flat.shape), rtol=1e-5)


def test_resize_conv_impls_share_gradients():
  """The sub-pixel form (the default) has the conv form's gradients w.r.t. input and kernel."""
  x = jax.random.normal(_key(1), (2, 4, 4, 6))
  layers = {impl: models.ResizeConv(7, impl=impl) for impl in ("subpixel", "conv")}
  variables = layers["conv"].init(_key(2), x)
  grads = {impl: jax.grad(lambda v, x: jnp.sum(jnp.sin(layer.apply(v, x))), argnums=(0, 1))(
      variables, x) for impl, layer in layers.items()}
  chex.assert_trees_all_close(grads["subpixel"], grads["conv"], rtol=1e-4, atol=1e-5)
  with pytest.raises(ValueError, match=r"impl='nearest' is not one of \('subpixel', 'conv'\)"):
    models.ResizeConv(7, impl="nearest").init(_key(2), x)


@pytest.mark.parametrize("resolution,channels", [(28, 1), (32, 3), (64, 3)])
def test_dcgan_generator_resize_conv(resolution, channels):
  g = models.DCGANGenerator(resolution, channels=channels, width=WIDTH, upsample="resize_conv")
  z = jax.random.normal(jax.random.key(3), (BATCH, LATENT))
  variables = g.init(_key(0), z, train=False)
  out = g.apply(variables, z, train=False)
  chex.assert_shape(out, (BATCH, resolution, resolution, channels))
  chex.assert_type(out, jnp.float32)
  ups = sorted(k for k in variables["params"] if k.startswith("up"))
  chex.assert_shape(variables["params"][ups[-1]]["kernel"], (3, 3, WIDTH, channels))
  assert "bias" in variables["params"][ups[-1]] and "bias" not in variables["params"][ups[0]]


def test_dcgan_generator_output_upsample_only_last_layer():
  """output_upsample="resize_conv": the RGB layer is a ResizeConv (3x3 kernel), the inner ones
  stay sub-pixel transposed convolutions ([2, 2, C, 4F] kernels)."""
  g = models.DCGANGenerator(32, width=WIDTH, output_upsample="resize_conv")
  z = jax.random.normal(jax.random.key(3), (BATCH, LATENT))
  variables = g.init(_key(0), z, train=False)
  chex.assert_shape(g.apply(variables, z, train=False), (BATCH, 32, 32, 3))
  params = variables["params"]
  chex.assert_shape(params["up3"]["kernel"], (3, 3, WIDTH, 3))
  chex.assert_shape(params["up1"]["kernel"], (2, 2, 4 * WIDTH, 4 * 2 * WIDTH))
  with pytest.raises(ValueError, match=r"output_upsample='bilinear'.*'resize_conv'"):
    models.DCGANGenerator(32, output_upsample="bilinear")


def test_dcgan_generator_output_filter_median():
  """output_filter="median3x3": the same parameters; when drawing (train=False) the output is
  the plain network's median-filtered, and its gradients reach the parameters; in training
  the plain output; an unknown filter names the allowed ones."""
  plain = models.DCGANGenerator(32, width=WIDTH)
  filtered = models.DCGANGenerator(32, width=WIDTH, output_filter="median3x3")
  z = jax.random.normal(jax.random.key(3), (BATCH, LATENT))
  variables = _numpy_init(plain, z)
  chex.assert_trees_all_equal_shapes(variables, _numpy_init(filtered, z))
  x = plain.apply(variables, z, train=False)
  y = filtered.apply(variables, z, train=False)
  chex.assert_shape(y, (BATCH, 32, 32, 3))
  chex.assert_type(y, jnp.float32)
  np.testing.assert_allclose(y, imaging.median3x3(x), atol=1e-6)
  assert float(jnp.mean(jnp.abs(y - x))) > 1e-3  # it does change the random network's output
  train = lambda g: g.apply(variables, z, train=True, mutable=["batch_stats"])[0]
  np.testing.assert_array_equal(train(filtered), train(plain))
  grads = jax.grad(lambda p: jnp.sum(filtered.apply({**variables, "params": p}, z,
                                                    train=False) ** 2))(variables["params"])
  assert all(float(jnp.max(jnp.abs(g))) > 0 for g in jax.tree.leaves(grads))
  with pytest.raises(ValueError, match=r"output_filter='blur'.*'median3x3'"):
    models.DCGANGenerator(32, output_filter="blur")


def test_dcgan_generator_palette_mixes_k_colours_from_z():
  """palette_size=K: the last layer draws K logits and `Palette` K colours from z; "soft"
  mixes them by softmax, "hard_draw" draws each pixel's likeliest colour (at most K colours
  an image) but trains on the mixture, "straight_through" trains on the hard image with the
  softmax's gradients; gradients reach every parameter; bad values are refused."""
  k = 4
  soft = models.DCGANGenerator(32, width=WIDTH, palette_size=k)
  hard = models.DCGANGenerator(32, width=WIDTH, palette_size=k, palette_mode="hard_draw")
  st = models.DCGANGenerator(32, width=WIDTH, palette_size=k, palette_mode="straight_through")
  z = jax.random.normal(jax.random.key(3), (BATCH, LATENT))
  variables = soft.init(_key(0), z, train=False)
  chex.assert_trees_all_equal_shapes(variables, hard.init(_key(0), z, train=False))
  params = variables["params"]
  assert params["up3"]["bias"].shape == (k,) and "palette" in params
  # The image, recomputed by hand from the logits and the colours.
  logits = models.DCGANGenerator(32, width=WIDTH, channels=k).apply(
      {**variables, "params": {n: v for n, v in params.items() if n != "palette"}}, z,
      train=False, capture_intermediates=lambda m, _: m.name == "up3",
      mutable=["intermediates"])[1]["intermediates"]["up3"]["__call__"][0]
  pal = params["palette"]
  h = jax.nn.relu(z @ pal["hidden"]["kernel"] + pal["hidden"]["bias"])
  colours = jnp.tanh(h @ pal["colours"]["kernel"] + pal["colours"]["bias"]).reshape(BATCH, k, 3)
  y = soft.apply(variables, z, train=False)
  chex.assert_shape(y, (BATCH, 32, 32, 3))
  chex.assert_type(y, jnp.float32)
  np.testing.assert_allclose(
      y, jnp.einsum("bhwk,bkc->bhwc", jax.nn.softmax(logits), colours), atol=1e-5)
  drawn = hard.apply(variables, z, train=False)
  nearest = jnp.argmax(logits, -1)  # [B, H, W]: each pixel's colour index
  np.testing.assert_allclose(drawn, jax.vmap(lambda c, i: c[i])(colours, nearest), atol=1e-5)
  for b in range(BATCH):
    assert len(np.unique(np.asarray(drawn[b]).reshape(-1, 3), axis=0)) <= k
  assert float(jnp.abs(colours).max()) < 1.0 and float(jnp.std(colours[:, :, 0])) > 0.1
  np.testing.assert_array_equal(st.apply(variables, z, train=False), drawn)
  train = lambda g, p=params: g.apply({**variables, "params": p}, z, train=True,
                                      mutable=["batch_stats"])[0]
  np.testing.assert_array_equal(train(hard), train(soft))  # hard_draw trains on the mixture
  trained_on = np.asarray(train(st))  # straight_through: on the hard image (batch statistics)
  assert all(len(np.unique(im.reshape(-1, 3), axis=0)) <= k for im in trained_on)
  assert float(np.abs(trained_on - np.asarray(train(soft))).max()) > 1e-2
  for g in (hard, st):
    grads = jax.grad(lambda p, g=g: jnp.sum(train(g, p) ** 2))(params)
    assert all(float(jnp.max(jnp.abs(x))) > 0 for x in jax.tree.leaves(grads))
  # The straight-through gradient is the mixture's gradient at the hard image's error.
  cot = jax.random.normal(_key(5), drawn.shape)
  logit_grad = lambda hard_: jax.grad(lambda l: jnp.sum(cot * dcgan.Palette(k).apply(
      {"params": pal}, l, z, hard=hard_, straight_through=True)))(logits)
  np.testing.assert_allclose(logit_grad(True), logit_grad(False), rtol=1e-5, atol=1e-7)
  with pytest.raises(ValueError,
                     match=r"palette_mode='argmax'.*'soft', 'hard_draw', 'straight_through'"):
    models.DCGANGenerator(32, palette_size=k, palette_mode="argmax")
  with pytest.raises(ValueError, match=r"palette_size=1 .*at least 2"):
    models.DCGANGenerator(32, palette_size=1)


def test_dcgan_generator_noise_beside_the_code():
  """noise_dim=N: g reads [z, noise]; the caller's noise changes the drawing, without it the
  noise is keyed by z (the same z, the same drawing, wherever it sits in a batch; another z,
  another draw); the projection reads z's and the noise's dimensions; bad values refused."""
  n = 5
  g = models.DCGANGenerator(32, width=WIDTH, noise_dim=n)
  z = jax.random.normal(_key(3), (BATCH, LATENT))
  variables = g.init(_key(0), z, train=False)
  assert variables["params"]["project"]["kernel"].shape[0] == LATENT + n
  y = g.apply(variables, z, train=False)
  chex.assert_shape(y, (BATCH, 32, 32, 3))
  chex.assert_type(y, jnp.float32)
  # Keyed noise: the output is the one drawn with keyed_noise(z) given explicitly, and
  # follows each row through a permutation of the batch.
  np.testing.assert_array_equal(
      y, g.apply(variables, z, train=False, noise=dcgan.keyed_noise(z, n)))
  perm = np.roll(np.arange(BATCH), 1)
  np.testing.assert_allclose(g.apply(variables, z[perm], train=False), y[perm], atol=1e-6)
  train = lambda noise: g.apply(variables, z, train=True, mutable=["batch_stats"],
                                noise=noise)[0]  # batch statistics: outputs of order 1
  other = train(jax.random.normal(_key(4), (BATCH, n)))
  assert float(jnp.abs(other - train(dcgan.keyed_noise(z, n))).max()) > 0.05
  keyed = np.asarray(dcgan.keyed_noise(jnp.arange(2000.0)[:, None] * jnp.ones((1, LATENT)),
                                       n))
  assert abs(keyed.mean()) < 0.05 and abs(keyed.std() - 1) < 0.05  # standard normal
  assert len(np.unique(keyed[:, 0])) == 2000  # each code its own draw
  np.testing.assert_array_equal(dcgan.keyed_noise(z, n), dcgan.keyed_noise(z, n))
  grads = jax.grad(lambda p: jnp.sum(g.apply(
      {**variables, "params": p}, z, train=True, mutable=["batch_stats"],
      noise=jnp.ones((BATCH, n)))[0] ** 2))(variables["params"])
  assert float(jnp.abs(grads["project"]["kernel"][LATENT:]).max()) > 0  # the noise is read
  with pytest.raises(ValueError, match=r"noise of shape \(3, 3\), expected \(3, 5\)"):
    g.apply(variables, z, train=False, noise=jnp.zeros((BATCH, 3)))
  with pytest.raises(ValueError, match="noise given but noise_dim=0"):
    plain = models.DCGANGenerator(32, width=WIDTH)
    plain.apply(plain.init(_key(0), z, train=False), z, train=False, noise=jnp.zeros((BATCH, n)))
  with pytest.raises(ValueError, match=r"noise_dim=-1 must be an integer >= 0"):
    models.DCGANGenerator(32, noise_dim=-1)


def test_bad_resolution_normalization_upsample():
  with pytest.raises(ValueError, match=r"resolution=48.*\(28, 32, 64\)"):
    models.DCGANGenerator(48)
  with pytest.raises(ValueError, match=r"resolution=128.*\(28, 32, 64\)"):
    models.build_discriminator("dcgan", resolution=128)
  with pytest.raises(ValueError,
                     match=r"normalization='group'.*'batch', 'layer', 'none', 'spectral'"):
    models.DCGANDiscriminator(32, normalization="group")
  with pytest.raises(ValueError, match=r"upsample='nearest'.*'subpixel', 'conv_transpose', 'resize_conv'"):
    models.DCGANGenerator(32, upsample="nearest")


def test_dcgan_generator_condition_on_input_equals_z_as_condition():
  """condition_on_input=True: every block gets a conditional affine (affine0..affine{n-1}, no
  learnt BN scale) and g(z) equals g(z, condition=z); once the affines' output layers are
  non-zero, the condition moves the image beyond what the projection alone does."""
  g = models.DCGANGenerator(32, width=WIDTH, condition_on_input=True)
  z = jax.random.normal(jax.random.key(3), (BATCH, LATENT))
  variables = g.init(_key(0), z, train=False)
  params = variables["params"]
  assert sorted(k for k in params if k.startswith("affine")) == ["affine0", "affine1",
                                                                 "affine2"]
  assert "bn0" not in params and "mean" in variables["batch_stats"]["bn0"]  # no learnt affine
  out = g.apply(variables, z, train=False)
  chex.assert_shape(out, (BATCH, 32, 32, 3))
  chex.assert_type(out, jnp.float32)
  plain = models.DCGANGenerator(32, width=WIDTH)
  np.testing.assert_allclose(out, plain.apply(variables, z, train=False, condition=z),
                             rtol=1e-6, atol=1e-6)
  # Zero-initialised affines start as the identity; perturbed ones make the condition count.
  bumped = jax.tree_util.tree_map_with_path(
      lambda path, x: x + 0.5 if "affine" in jax.tree_util.keystr(path)
      and "out" in jax.tree_util.keystr(path) else x, variables)
  other = g.apply(bumped, z, train=False, condition=-z)
  assert float(jnp.abs(g.apply(bumped, z, train=False) - other).max()) > 1e-3
