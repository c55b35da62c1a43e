"""benchmarks.torch_ref.torch_gan computes what jgan computes: same forward passes and steps.

Each step test starts jgan and the PyTorch reference from the same weights, feeds both the
same uint8 batch and the same random draws (jgan's, reproduced by ``jgan_random_draws``) and
compares the losses and every updated parameter (and running average) after each step. The
MLP and DCGAN tests take two steps: after one Adam step every update is about
``lr * sign(grad)``, the second also depends on the gradients' magnitudes; the WGAN-GP test
takes one (its critic makes two Adam updates in it).

Initial weights are random values of the shapes ``task.init`` would give (``jax.eval_shape``),
not ``task.init`` itself: compiling flax's init of a DCGAN takes tens of seconds on two shared
cores, and any weights serve for an equivalence test (larger ones than DCGAN's N(0, 0.02) give
O(1) activations, a stricter check).
"""

from __future__ import annotations

import copy

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
import torch

from benchmarks.torch_ref import torch_gan
from jgan import imaging, losses, models, tasks
from jgan.tasks import gan
from tests.conftest import set_dotted

BATCH = 8
# After the first Adam step every parameter has moved by about lr (1e-4 to 2e-4): 1e-5 still
# catches a wrong sign or a 5% error in an update; observed differences are below 1e-7.
PARAM_TOL = {"rtol": 1e-4, "atol": 1e-5}
LOSS_TOL = {"rtol": 1e-5, "atol": 1e-6}


@pytest.fixture(autouse=True)
def _one_torch_thread():
  # The test machines have two cores shared with other work; one thread is fastest there.
  threads = torch.get_num_threads()
  torch.set_num_threads(1)
  yield
  torch.set_num_threads(threads)


def _random_like(tree, rng: np.random.Generator):
  """Random values of a flax variables tree's shapes, by leaf name.

  Kernels N(0, 1 / fan_in) (fan-in = all axes but the last), norm scales 1 + N(0, 0.1),
  biases and running means N(0, 0.1), running variances 1 + |N(0, 0.3)|.
  """

  def leaf(path, x):
    name = path[-1].key
    if name == "kernel":
      return rng.normal(0.0, 1.0 / np.sqrt(np.prod(x.shape[:-1])), x.shape)
    if name == "scale":
      return 1.0 + rng.normal(0.0, 0.1, x.shape)
    if name == "var":
      return 1.0 + np.abs(rng.normal(0.0, 0.3, x.shape))
    return rng.normal(0.0, 0.1, x.shape)

  return jax.tree_util.tree_map_with_path(
      lambda p, x: jnp.asarray(leaf(p, x), jnp.float32), tree)


def _initial_state(task, rng: np.random.Generator):
  """A GANState like ``task.init``'s: random weights, zero optimizer state (Adam's init)."""
  shapes = jax.eval_shape(task.init, jax.random.key(0))
  zeros = lambda tree: jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), tree)
  # A running variance starts at 1 in both frameworks; random ones are for eval mode.
  ones_var = lambda tree: jax.tree_util.tree_map_with_path(
      lambda p, s: jnp.full(s.shape, 1.0 if p[-1].key == "var" else 0.0, s.dtype), tree)
  return zeros(shapes).replace(
      g_params=_random_like(shapes.g_params, rng), d_params=_random_like(shapes.d_params, rng),
      g_batch_stats=ones_var(shapes.g_batch_stats), d_batch_stats=ones_var(shapes.d_batch_stats))


def _mlp_config(**overrides) -> ml_collections.ConfigDict:
  c = gan.default_config()
  c.model.latent_dim = 8
  c.model.generator = ml_collections.ConfigDict({"name": "mlp", "hidden": (32, 32)})
  # Dropout masks cannot match across frameworks.
  c.model.discriminator = ml_collections.ConfigDict(
      {"name": "mlp", "hidden": (32, 32), "dropout_rate": 0.0})
  return set_dotted(c, overrides)


def _dcgan32_config() -> ml_collections.ConfigDict:
  c = gan.dcgan_recipe(gan.default_config(), width=8)
  c.model.latent_dim = 16
  return c


def _wgan_gp32_config() -> ml_collections.ConfigDict:
  c = gan.wgan_gp_recipe(gan.default_config(), width=8)
  c.model.latent_dim = 16
  c.n_critic = 2  # the recipe's 5, minus three updates of test time
  return c


def _assert_modules_close(actual: torch.nn.Module, expected: torch.nn.Module, *,
                          batch: int, what: str) -> None:
  """Every parameter and running average of two modules, as numpy, to the tolerances."""
  a, e = actual.state_dict(), expected.state_dict()
  assert a.keys() == e.keys()
  for name in a:
    if name.endswith("num_batches_tracked"):  # no jgan counterpart
      continue
    tol = PARAM_TOL
    if name.endswith("running_var"):
      # nn.BatchNorm2d averages the unbiased batch variance (x N / (N - 1)), flax the biased
      # one; by induction |torch - flax| <= running_var / (N - 1) with N = B * H * W >= B * 16
      # (the smallest batch-norm map here is 4x4).
      tol = {"rtol": 1.0 / (batch * 16 - 1), "atol": 1e-6}
    np.testing.assert_allclose(a[name].numpy(), e[name].numpy(), **tol,
                               err_msg=f"{what}.{name}")


def _check_steps(config: ml_collections.ConfigDict, image_shape: tuple[int, int, int], *,
                 steps: int = 2) -> None:
  """``steps`` jgan steps and PyTorch steps from the same state, batch and draws agree."""
  rng = np.random.default_rng(0)
  config.batch_size = BATCH
  task = tasks.build_task(config, image_shape=image_shape, num_classes=10)
  state = _initial_state(task, rng)
  ref = torch_gan.GANStep(config, image_shape=image_shape)
  ref.load_jgan_state(state)
  jgan_step = jax.jit(task.step)
  for i in range(steps):
    images = rng.integers(0, 256, (config.n_critic * BATCH, *image_shape), dtype=np.uint8)
    batch = {"image": jnp.asarray(images)}
    key = jax.random.key(100 + i)
    state, metrics = jgan_step(state, batch, key)

    draws = torch_gan.jgan_random_draws(key, n_critic=config.n_critic, batch=BATCH,
                                        latent_dim=config.model.latent_dim)
    real = torch.from_numpy(np.asarray(imaging.to_float(batch["image"])).transpose(0, 3, 1, 2)
                            .copy())
    out = ref.step(real, **draws)

    names = ["d_loss", "g_loss"] + (["penalty"] if config.penalty.name != "none" else [])
    for name in names:
      np.testing.assert_allclose(out[name], float(metrics[name]), **LOSS_TOL,
                                 err_msg=f"step {i}: {name}")
    # jgan's updated weights, loaded into copies of the PyTorch modules, vs PyTorch's own.
    for module, params, stats, what in (
        (ref.generator, state.g_params, state.g_batch_stats, "G"),
        (ref.discriminator, state.d_params, state.d_batch_stats, "D")):
      expected = torch_gan.load_flax_params(copy.deepcopy(module), params, stats)
      _assert_modules_close(module, expected, batch=BATCH, what=f"step {i}: {what}")


# --------------------------------------------------------------------------------------------
# Train steps.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("overrides", [
    {},  # the gan_mnist recipe: non-saturating BCE, Adam (0.5, 0.999)
    {"loss.name": "least_squares", "loss.label_smoothing": 0.1, "optim.name": "sgd",
     "optim.g_lr": 0.05, "optim.d_lr": 0.05},
], ids=["non_saturating-adam", "least_squares-smoothing-sgd"])
def test_mlp_gan_step_matches_jgan(overrides):
  _check_steps(_mlp_config(**overrides), (8, 8, 1))


def test_dcgan32_step_matches_jgan():
  """Batch-norm G and D: the running averages follow the same train-mode passes."""
  _check_steps(_dcgan32_config(), (32, 32, 3))


def test_wgan_gp32_step_matches_jgan():
  """Layer-norm critic, Wasserstein loss, gradient penalty (double backward), n_critic 2.

  One step: D already makes two Adam updates in it. (With these weights, the second step's
  fake batch has a critic pre-activation 3e-7 from LeakyReLU's kink; float32 rounding puts it
  on different sides in XLA and PyTorch, which moves a few gradients by 1% and, through
  Adam's normalisation, some parameters by 0.4 lr: a true float32 sensitivity, not a
  difference in the computation.)
  """
  _check_steps(_wgan_gp32_config(), (32, 32, 3), steps=1)


def test_random_draws_follow_the_key():
  draws = torch_gan.jgan_random_draws(jax.random.key(3), n_critic=2, batch=4, latent_dim=5)
  assert draws["zs"].shape == (2, 4, 5) and draws["g_z"].shape == (4, 5)
  assert draws["gp_eps"].shape == (2, 4, 1, 1, 1)
  assert np.all((draws["gp_eps"] >= 0) & (draws["gp_eps"] < 1))
  assert not np.allclose(draws["zs"][0], draws["zs"][1])  # one draw per critic update


# --------------------------------------------------------------------------------------------
# Forward passes and the weight map.
# --------------------------------------------------------------------------------------------


def _variables(module, x, rng):
  shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), x, train=False))
  return _random_like(shapes, rng)


def _jgan_apply(module, variables, x, *, train: bool) -> np.ndarray:
  if train and "batch_stats" in variables:
    out, _ = module.apply(variables, x, train=True, mutable=["batch_stats"])
  else:
    out = module.apply(variables, x, train=train)
  return np.asarray(out)


def _assert_same_forward(jgan_module, torch_module, variables, x_nhwc, *, image_out: bool):
  torch_gan.load_flax_params(torch_module, variables["params"], variables.get("batch_stats"))
  x = np.asarray(x_nhwc)
  x_torch = torch.from_numpy(x.transpose(0, 3, 1, 2).copy() if x.ndim == 4 else x.copy())
  for train in (False, True):  # eval: running averages; train: batch statistics
    torch_module.train(train)
    with torch.no_grad():
      out = torch_module(x_torch).numpy()
    if image_out:
      out = out.transpose(0, 2, 3, 1)
    np.testing.assert_allclose(out, _jgan_apply(jgan_module, variables, x_nhwc, train=train),
                               rtol=1e-4, atol=1e-5, err_msg=f"train={train}")


@pytest.mark.parametrize("resolution,normalization", [(64, "batch"), (28, "layer"),
                                                      (32, "none")])
def test_dcgan_forward_matches_after_load(resolution, normalization):
  """Sub-pixel kernels, NHWC flattening and norms map right (28: the 7x7 maps)."""
  rng = np.random.default_rng(1)
  z = jnp.asarray(rng.normal(size=(4, 16)), jnp.float32)
  x = jnp.asarray(rng.uniform(-1, 1, (4, resolution, resolution, 3)), jnp.float32)
  g = models.DCGANGenerator(resolution=resolution, channels=3, width=4)
  d = models.DCGANDiscriminator(resolution=resolution, width=4, normalization=normalization)
  _assert_same_forward(
      g, torch_gan.DCGANGenerator(resolution=resolution, channels=3, width=4, latent_dim=16),
      _variables(g, z, rng), z, image_out=True)
  _assert_same_forward(
      d, torch_gan.DCGANDiscriminator(resolution=resolution, channels=3, width=4,
                                      normalization=normalization),
      _variables(d, x, rng), x, image_out=False)


def test_dcgan_discriminator_with_several_outputs_and_conv_transpose_generator():
  """DTN's ternary D ([B, 3]) and jgan's ``upsample="conv_transpose"`` [4, 4] kernels."""
  rng = np.random.default_rng(2)
  x = jnp.asarray(rng.uniform(-1, 1, (4, 32, 32, 1)), jnp.float32)
  d = models.DCGANDiscriminator(resolution=32, width=4, num_outputs=3)
  _assert_same_forward(
      d, torch_gan.DCGANDiscriminator(resolution=32, channels=1, width=4, num_outputs=3),
      _variables(d, x, rng), x, image_out=False)
  z = jnp.asarray(rng.normal(size=(4, 16)), jnp.float32)
  g = models.DCGANGenerator(resolution=32, channels=1, width=4, upsample="conv_transpose")
  _assert_same_forward(
      g, torch_gan.DCGANGenerator(resolution=32, channels=1, width=4, latent_dim=16),
      _variables(g, z, rng), z, image_out=True)


def test_mlp_forward_matches_after_load():
  """Three channels, so the NHWC <-> NCHW permutations of the flat layers matter."""
  rng = np.random.default_rng(3)
  z = jnp.asarray(rng.normal(size=(4, 8)), jnp.float32)
  x = jnp.asarray(rng.uniform(-1, 1, (4, 6, 5, 3)), jnp.float32)
  g = models.MLPGenerator(output_shape=(6, 5, 3), hidden=(16, 32))
  d = models.MLPDiscriminator(hidden=(32, 16), dropout_rate=0.3)  # eval / p=0 below
  _assert_same_forward(
      g, torch_gan.MLPGenerator(latent_dim=8, output_shape=(6, 5, 3), hidden=(16, 32)),
      _variables(g, z, rng), z, image_out=True)
  variables = _variables(d, x, rng)
  t_d = torch_gan.MLPDiscriminator(input_shape=(6, 5, 3), hidden=(32, 16), dropout_rate=0.3)
  torch_gan.load_flax_params(t_d, variables["params"])
  t_d.eval()
  with torch.no_grad():
    out = t_d(torch.from_numpy(np.asarray(x).transpose(0, 3, 1, 2).copy())).numpy()
  np.testing.assert_allclose(out, _jgan_apply(d, variables, x, train=False), rtol=1e-4,
                             atol=1e-5)


def test_load_flax_params_rejects_a_mismatch():
  rng = np.random.default_rng(4)
  g = models.DCGANGenerator(resolution=32, channels=3, width=4)
  variables = _variables(g, jnp.zeros((2, 16)), rng)
  params = dict(variables["params"])
  del params["bn1"]
  with pytest.raises(KeyError, match="bn1"):  # a torch parameter left unset
    torch_gan.load_flax_params(
        torch_gan.DCGANGenerator(resolution=32, channels=3, width=4, latent_dim=16), params)
  with pytest.raises(ValueError, match="shape"):  # another width
    torch_gan.load_flax_params(
        torch_gan.DCGANGenerator(resolution=32, channels=3, width=8, latent_dim=16),
        variables["params"])


# --------------------------------------------------------------------------------------------
# Losses and configuration.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(torch_gan.LOSS_FAMILIES))
def test_loss_families_match_jgan(name):
  rng = np.random.default_rng(5)
  d_real, d_fake = (rng.normal(0, 2, 16).astype(np.float32) for _ in range(2))
  smoothing = 0.1 if name in ("minimax", "non_saturating", "least_squares") else 0.0
  g_ref, d_ref = losses.get_loss_family(name)
  g_torch, d_torch = torch_gan.LOSS_FAMILIES[name]
  t_real, t_fake = torch.from_numpy(d_real), torch.from_numpy(d_fake)
  np.testing.assert_allclose(g_torch(t_fake).item(), float(g_ref(d_fake)), rtol=1e-6)
  np.testing.assert_allclose(d_torch(t_real, t_fake, label_smoothing=smoothing).item(),
                             float(d_ref(d_real, d_fake, label_smoothing=smoothing)), rtol=1e-6)


@pytest.mark.parametrize("overrides,match", [
    ({"optim.name": "rmsprop"}, "eps"),
    ({"penalty.name": "r1"}, "penalty"),
    ({"augment.flip": True}, "augment"),
    ({"compute_dtype": "bfloat16"}, "compute_dtype"),
])
def test_unsupported_configs_raise(overrides, match):
  with pytest.raises(NotImplementedError, match=match):
    torch_gan.GANStep(_mlp_config(**overrides), image_shape=(8, 8, 1))
