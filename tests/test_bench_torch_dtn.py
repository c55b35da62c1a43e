"""benchmarks.torch_ref.torch_dtn computes what jgan's DTN and text-to-image steps compute.

One jgan step (state from the task's init, the task's own step) and one torch step from the
same initial weights, batch and random draws, for tiny versions (widths 4-8, 32x32, batch 4)
of experiments/dtn_digits.py and experiments/t2i_avatars.py: every metric, every gradient
(through Adam's first moments, (1 - b1) * g, in both optimizers' states) and every updated
parameter must agree. The options those experiments leave off (other DTN distances, L_TV,
conditioning augmentation, label smoothing, the fakes' class loss, EMA) are checked at the
level of the losses / the generator.

Tolerances, rtol = atol = 1e-4 unless said otherwise: float32 convolutions summed in different
orders differ by ~1e-6 relative. Gradients: atol 1e-5 of the tensor's largest (seen: 1e-6).
Parameters: Adam's first update is lr * g / (|g| + eps), ~lr * sign(g); where g is zero up to
that float noise (seen: a t2i D text-projection bias whose shift the joint batch norm cancels,
|g| ~ 1e-9 against 5e-3 for its neighbours) it lands anywhere in [-lr, lr] in either framework,
so those elements get 2 lr of slack. Running variances are not equal by design: PyTorch
updates them with the unbiased batch variance, flax with the biased one, so torch's lies
between jgan's and n / (n - 1) times it (n: the elements per channel of a batch-norm input,
>= 64 here); running means must agree.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
import torch

from benchmarks.torch_ref import torch_dtn
from benchmarks.torch_ref.torch_gan import DCGANDiscriminator, DCGANGenerator, load_flax_params
from jgan import losses, models, tasks
from jgan.tasks import dtn
from tests.conftest import set_dotted

BATCH = 4
RTOL = ATOL = 1e-4
MIN_BN_COUNT = BATCH * 4 * 4  # smallest per-channel batch-norm count (4x4 maps, batch 4)


def _key(seed: int) -> jax.Array:
  # 'rbg' keys: DCGAN initialisers compile in ~1 s on XLA:CPU (threefry's take seconds).
  return jax.random.key(seed, impl="rbg")


def _close(name: str, torch_value, jgan_value, *, rtol: float = RTOL, atol: float = ATOL):
  np.testing.assert_allclose(np.asarray(torch_value), np.asarray(jgan_value), rtol=rtol,
                             atol=atol, err_msg=name)


def _compare_metrics(torch_metrics: dict, jgan_metrics: dict) -> None:
  assert set(torch_metrics) == set(jgan_metrics), (sorted(torch_metrics), sorted(jgan_metrics))
  for name, value in jgan_metrics.items():
    _close(f"metric {name}", torch_metrics[name].cpu().numpy(), value)


def _adam_first_moments(opt_state):
  """optax.adam's mu (``(1 - b1) * grad`` after one step) from jgan's optimizer state."""
  return opt_state[0].mu


def _compare_modules(trained: torch.nn.Module, optimizer: torch.optim.Optimizer,
                     reference: torch.nn.Module, moments: torch.nn.Module, *, what: str,
                     lr: float) -> None:
  """torch's updated ``trained`` against jgan's: ``reference`` holds jgan's new params and
  batch_stats, ``moments`` jgan's Adam first moments, in modules of the same class."""
  ref = dict(reference.named_parameters())
  ref_m = dict(moments.named_parameters())
  params = dict(trained.named_parameters())
  assert params.keys() == ref.keys()
  for name, p in params.items():
    # The gradients, through Adam's first moments (1 - b1) * g: up to float noise of the
    # largest of the tensor.
    m, m_ref = optimizer.state[p]["exp_avg"].numpy(), ref_m[name].detach().numpy()
    noise = 1e-5 * max(float(np.abs(m_ref).max()), 1e-30)
    _close(f"{what} grad {name}", m, m_ref, rtol=RTOL, atol=noise)
    # Adam's first update is lr * g / (|g| + eps): where g is 0 up to float noise (a
    # parameter the loss does not depend on to first order, e.g. a bias whose shift a batch
    # norm cancels) it lands anywhere in [-lr, lr] in either framework.
    slack = np.where(np.maximum(np.abs(m), np.abs(m_ref)) <= noise, 2 * lr, 0.0)
    ours, theirs = p.detach().numpy(), ref[name].detach().numpy()
    bad = np.abs(ours - theirs) > ATOL + RTOL * np.abs(theirs) + slack
    assert not bad.any(), f"{what} param {name}: torch {ours[bad]}, jgan {theirs[bad]}"
  buffers = dict(reference.named_buffers())
  for name, b in trained.named_buffers():
    if name.endswith("running_mean"):
      _close(f"{what} {name}", b.numpy(), buffers[name].numpy())
    elif name.endswith("running_var"):
      ours, theirs = b.numpy(), buffers[name].numpy()
      assert np.all(ours >= theirs * (1 - RTOL) - ATOL), f"{what} {name}"
      bound = theirs * MIN_BN_COUNT / (MIN_BN_COUNT - 1)
      assert np.all(ours <= bound * (1 + RTOL) + ATOL), f"{what} {name}"


def _randomize_batch_stats(tree, seed: int):
  """Non-trivial running statistics (a fresh init has mean 0, var 1: loading them would not
  be checked)."""
  rng = np.random.default_rng(seed)
  return jax.tree_util.tree_map_with_path(
      lambda path, x: jnp.asarray(
          rng.uniform(0.5, 1.5, x.shape) if str(path[-1]).find("var") >= 0
          else rng.normal(0.0, 0.1, x.shape), x.dtype), tree)


# ----------------------------------------------------------------------------------- DTN


TARGET = (32, 32, 1)  # MNIST at 32x32, as dtn_digits
SOURCE = (32, 32, 3)  # printed digits


def _dtn_config() -> ml_collections.ConfigDict:
  """experiments/dtn_digits.py with tiny widths and batch."""
  from experiments import dtn_digits  # pylint: disable=import-outside-toplevel
  c = dtn_digits.get_config()
  c.batch_size = BATCH
  c.encoder.widths = (4, 8, 8)
  c.encoder.feature_dim = 8
  c.model.generator.width = 4
  c.model.discriminator.width = 4
  c.loss.const_perturb.update(zoom=0.0, shift=0.0, blur=0.0)  # the mirror is the paper's step
  return c


def _dtn_batch(seed: int) -> dict[str, np.ndarray]:
  rng = np.random.default_rng(seed)
  return {"image": rng.integers(0, 256, (BATCH, *TARGET), dtype=np.uint8),
          "source_image": rng.integers(0, 256, (BATCH, *SOURCE), dtype=np.uint8)}


def test_dtn_step_matches_jgan():
  """dtn_digits: alpha = beta = 15, gamma = 0, mean_squared (the other distances and L_TV:
  test_dtn_losses_match_jgan)."""
  config = _dtn_config()
  task = tasks.build_task(config, image_shape=TARGET, num_classes=10, source_shape=SOURCE)
  state = jax.jit(task.init)(_key(0))
  f_vars = dict(state.f_variables)  # non-trivial running statistics of f, to check them
  f_vars["batch_stats"] = _randomize_batch_stats(f_vars["batch_stats"], 1)
  state = state.replace(f_variables=f_vars)
  batch = _dtn_batch(2)
  key = _key(3)
  assert torch_dtn.dtn_random_inputs(config, key) == {}  # dtn_digits draws nothing

  mirror = torch_dtn.DTNStep.from_state(config, state, image_shape=TARGET, source_shape=SOURCE)
  f_before = {k: v.clone() for k, v in mirror.f.state_dict().items()}

  new_state, metrics = jax.jit(task.step)(state, batch, key)
  torch_metrics = mirror.step(torch_dtn.to_float(batch["image"]),
                              torch_dtn.to_float(batch["source_image"]))

  _compare_metrics(torch_metrics, jax.device_get(metrics))
  g_ref, g_mu, d_ref, d_mu = (
      *(DCGANGenerator(resolution=32, channels=1, width=4, latent_dim=8) for _ in range(2)),
      *(DCGANDiscriminator(resolution=32, channels=1, width=4, num_outputs=3)
        for _ in range(2)))
  load_flax_params(g_ref, new_state.g_params, new_state.g_batch_stats)
  load_flax_params(g_mu, _adam_first_moments(new_state.g_opt_state))
  load_flax_params(d_ref, new_state.d_params, new_state.d_batch_stats)
  load_flax_params(d_mu, _adam_first_moments(new_state.d_opt_state))
  _compare_modules(mirror.g, mirror.g_opt, g_ref, g_mu, what="g", lr=config.optim.g_lr)
  _compare_modules(mirror.d, mirror.d_opt, d_ref, d_mu, what="D", lr=config.optim.d_lr)
  for name, value in mirror.f.state_dict().items():  # f is frozen, running statistics too
    torch.testing.assert_close(value, f_before[name], rtol=0, atol=0)


def test_frozen_encoder_matches_jgan_encoder():
  """f as the dtn task applies it, on both domains (grey targets tiled, RGB sources) and on a
  size it must resize (bilinear, antialiased when shrinking, as jax.image.resize)."""
  config = _dtn_config()
  encoder = dtn.build_encoder(config.encoder)
  variables = dict(encoder.init(_key(4)))
  variables["batch_stats"] = _randomize_batch_stats(variables["batch_stats"], 5)
  mirror = torch_dtn.FrozenEncoder(config.encoder, variables)
  rng = np.random.default_rng(6)
  for shape in (TARGET, SOURCE, (28, 28, 1), (48, 48, 3)):
    images = rng.integers(0, 256, (BATCH, *shape), dtype=np.uint8)
    want = jax.jit(encoder.apply)(variables, jnp.asarray(images, jnp.float32) / 127.5 - 1.0)
    with torch.no_grad():
      got = mirror(torch_dtn.to_float(images))
    _close(f"f on {shape}", got.numpy(), want, rtol=1e-5, atol=1e-5)


def test_dtn_losses_match_jgan():
  """Every DTN loss and distance, against jgan.losses (images NHWC there, NCHW here)."""
  rng = np.random.default_rng(7)
  logits = [rng.normal(0, 2, (BATCH, 3)).astype(np.float32) for _ in range(3)]
  t = [torch.from_numpy(x) for x in logits]
  _close("L_D", torch_dtn.ternary_discriminator_loss(*t), losses.ternary_discriminator_loss(
      *logits), rtol=1e-6, atol=1e-6)
  _close("L_GANG", torch_dtn.ternary_generator_loss(*t[:2]),
         losses.ternary_generator_loss(*logits[:2]), rtol=1e-6, atol=1e-6)
  a = rng.uniform(-1, 1, (BATCH, 8, 8, 3)).astype(np.float32)
  b = rng.uniform(-1, 1, (BATCH, 8, 8, 3)).astype(np.float32)
  b[1] = 0.0  # a zero vector: the cosine distance's clipped norm
  nchw = lambda x: torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
  for distance in losses.DISTANCES:
    _close(distance, torch_dtn.batch_distance(nchw(a), nchw(b), distance=distance),
           losses.tid_loss(a, b, distance=distance), rtol=1e-6, atol=1e-6)
  _close("L_TV", torch_dtn.total_variation(nchw(a)), losses.total_variation(a), rtol=1e-6,
         atol=1e-6)


# ------------------------------------------------------------------------- text to image


IMAGE = (32, 32, 3)


def _t2i_config(overrides: dict) -> ml_collections.ConfigDict:
  """experiments/t2i_avatars.py with tiny widths and batch, and the hash text encoder (64-d,
  no model files)."""
  from experiments import t2i_avatars  # pylint: disable=import-outside-toplevel
  c = t2i_avatars.get_config()
  c.batch_size = BATCH
  c.data.text_encoder = "hash"
  c.model.latent_dim = 8
  c.model.generator.width = 4
  c.model.generator.text_features = 8
  c.model.discriminator.width = 4
  c.model.discriminator.text_features = 8
  c.eval.metrics = ()
  # The mirror is Reed et al.'s models and losses without an EMA (EMA: test_t2i_step_ema).
  c.model.generator.block_conditioning = False
  c.model.discriminator.head = "concat"
  c.loss.mode_seeking_weight, c.loss.mode_seeking_weight_end = 0.0, None
  c.loss.latent_regression_weight = 0.0  # nor InfoGAN's head on D
  c.ema_decay = 0.0
  # Nor recombined captions (G's rows on other captions: tested against the plain step in
  # tests/test_t2i_task.py).
  c.data.recombined_captions, c.loss.recombined_fraction = "", 0.0
  c.data.partner_images, c.loss.pack = False, 1  # nor D's pairs of one caption
  return set_dotted(c, overrides)


def _t2i_batch(seed: int, *, text_dim: int, captions: int) -> dict[str, np.ndarray]:
  rng = np.random.default_rng(seed)
  counts = (4, 6, 4, 3, 2)  # captioned.AVATAR_ATTRIBUTES
  labels = np.stack([rng.integers(0, k, BATCH) for k in counts], axis=1).astype(np.int32)
  labels[0, 1] = labels[2, 3] = -1  # missing labels are skipped by the class losses
  labels[:, 4] = -1  # an attribute no example has counts 0
  return {"image": rng.integers(0, 256, (BATCH, *IMAGE), dtype=np.uint8),
          "text_embedding": rng.normal(0, 0.2, (BATCH, captions, text_dim)).astype(np.float32),
          "attributes": labels}


def test_t2i_step_matches_jgan():
  """t2i_avatars: projection conditioning, GAN-CLS, the attribute heads on real images only,
  no EMA (conditioning augmentation: test_text_generator_augmentation_matches_jgan; the other
  loss options: test_t2i_losses_match_jgan; EMA: test_t2i_step_ema)."""
  config = _t2i_config({})
  task = tasks.build_task(config, image_shape=IMAGE, num_classes=None)
  state = jax.jit(task.init)(_key(0))
  text_dim = state.g_params["text"]["kernel"].shape[0]
  batch = _t2i_batch(1, text_dim=text_dim, captions=config.data.captions_per_image)
  key = _key(2)
  draws = torch_dtn.t2i_random_inputs(config, key, batch_size=BATCH)

  mirror = torch_dtn.T2IStep.from_state(config, state, image_shape=IMAGE, text_dim=text_dim)
  new_state, metrics = jax.jit(task.step)(state, batch, key)
  torch_metrics = mirror.step(torch_dtn.to_float(batch["image"]),
                              torch.from_numpy(batch["text_embedding"]),
                              torch.from_numpy(batch["attributes"]), **draws)

  _compare_metrics(torch_metrics, jax.device_get(metrics))
  make_g = lambda: torch_dtn.TextConditionalGenerator(
      resolution=32, channels=3, width=4, latent_dim=8, text_dim=text_dim, text_features=8,
      conditioning=config.model.generator.conditioning)
  make_d = lambda: torch_dtn.TextConditionalDiscriminator(
      resolution=32, channels=3, width=4, text_dim=text_dim, text_features=8, num_classes=19)
  g_ref, g_mu, d_ref, d_mu = make_g(), make_g(), make_d(), make_d()
  torch_dtn.load_text_generator_params(g_ref, new_state.g_params, new_state.g_batch_stats)
  torch_dtn.load_text_generator_params(g_mu, _adam_first_moments(new_state.g_opt_state))
  torch_dtn.load_text_discriminator_params(d_ref, new_state.d_params, new_state.d_batch_stats)
  torch_dtn.load_text_discriminator_params(d_mu, _adam_first_moments(new_state.d_opt_state))
  _compare_modules(mirror.g, mirror.g_opt, g_ref, g_mu, what="G", lr=config.optim.g_lr)
  _compare_modules(mirror.d, mirror.d_opt, d_ref, d_mu, what="D", lr=config.optim.d_lr)


def test_t2i_losses_match_jgan():
  """GAN-CLS (a wrong weight and label smoothing other than the defaults) and the attribute
  loss with missing labels, against jgan.losses."""
  rng = np.random.default_rng(8)
  d = [rng.normal(0, 2, (BATCH,)).astype(np.float32) for _ in range(3)]
  t = [torch.from_numpy(x) for x in d]
  _close("L_D", torch_dtn.matching_aware_discriminator_loss(
      *t, wrong_weight=0.3, label_smoothing=0.1), losses.matching_aware_discriminator_loss(
          *d, wrong_weight=0.3, label_smoothing=0.1), rtol=1e-6, atol=1e-6)
  _close("L_G", torch_dtn.matching_aware_generator_loss(t[0]),
         losses.matching_aware_generator_loss(d[0]), rtol=1e-6, atol=1e-6)
  counts = (4, 6, 4, 3, 2)
  logits = rng.normal(0, 2, (BATCH, sum(counts))).astype(np.float32)
  labels = _t2i_batch(9, text_dim=4, captions=1)["attributes"]
  _close("L_C", torch_dtn.attribute_classifier_loss(
      torch.from_numpy(logits), torch.from_numpy(labels), num_classes=counts),
      losses.attribute_classifier_loss(logits, labels, num_classes=counts), rtol=1e-6,
      atol=1e-6)


def test_text_generator_augmentation_matches_jgan():
  """Conditioning augmentation: images and KL in train mode with the eps that
  t2i_random_inputs reproduces from the step's key, and in eval mode (c = mu)."""
  config = _t2i_config({"model.generator.conditioning": "augmentation"})
  text_dim = 16
  flax_g = models.build_text_generator("dcgan", image_shape=IMAGE, width=4, text_features=8,
                                       conditioning="augmentation")
  rng = np.random.default_rng(10)
  z = rng.normal(size=(BATCH, 8)).astype(np.float32)
  text = rng.normal(size=(BATCH, text_dim)).astype(np.float32)
  variables = jax.jit(lambda k: flax_g.init({"params": k, "condition": k}, z, text,
                                            train=False))(_key(11))
  g = torch_dtn.TextConditionalGenerator(
      resolution=32, channels=3, width=4, latent_dim=8, text_dim=text_dim, text_features=8,
      conditioning="augmentation")
  torch_dtn.load_text_generator_params(g, variables["params"], variables["batch_stats"])
  key = _key(12)
  draws = torch_dtn.t2i_random_inputs(config, key, batch_size=BATCH)
  for name, i in (("d", 1), ("g", 2)):  # the D update's and the G update's generator calls
    k_condition = jax.random.split(jax.random.fold_in(key, i))[1]  # as make_t2i_step
    images, updates = flax_g.apply(
        {"params": variables["params"], "batch_stats": variables["batch_stats"]}, z, text,
        train=True, rngs={"condition": k_condition}, mutable=["batch_stats", "intermediates"])
    got, kl = g.train()(torch.from_numpy(z), torch.from_numpy(text), eps=draws[f"eps_{name}"])
    _close(f"images ({name})", got.detach().numpy().transpose(0, 2, 3, 1), images)
    _close(f"KL ({name})", kl.detach(), updates["intermediates"]["ca_kl"][0], rtol=1e-5)
  images = flax_g.apply(variables, z, text, train=False, mutable=["intermediates"])[0]
  torch_dtn.load_text_generator_params(g, variables["params"], variables["batch_stats"])
  with torch.no_grad():
    got, _ = g.eval()(torch.from_numpy(z), torch.from_numpy(text))
  _close("images (eval)", got.numpy().transpose(0, 2, 3, 1), images)


def test_t2i_step_ema():
  """With config.ema_decay, the EMA of G is jgan.steps.update_ema's, warmed up: the first
  update's decay is min(0.5, 1/10) = 0.1 (torch only)."""
  config = _t2i_config({"ema_decay": 0.5})
  mirror = torch_dtn.T2IStep(config, image_shape=IMAGE, text_dim=16)
  before = [p.detach().clone() for p in mirror.g.parameters()]
  batch = _t2i_batch(13, text_dim=16, captions=2)
  mirror.step(torch_dtn.to_float(batch["image"]), torch.from_numpy(batch["text_embedding"]),
              torch.from_numpy(batch["attributes"]))
  for old, new, ema in zip(before, mirror.g.parameters(), mirror.ema):
    torch.testing.assert_close(ema, 0.1 * old + 0.9 * new.detach())


def test_dtn_mirror_refuses_what_it_does_not_mirror():
  """The default dtn_digits perturbs g's outputs before f and a config may augment D's
  inputs: the mirror says so instead of computing another step."""
  from experiments import dtn_digits  # pylint: disable=import-outside-toplevel
  with pytest.raises(NotImplementedError, match="const_perturb"):
    torch_dtn.dtn_random_inputs(dtn_digits.get_config(), None)
  c = _dtn_config()
  c.d_augment = "colour"
  with pytest.raises(NotImplementedError, match="d_augment"):
    torch_dtn.dtn_random_inputs(c, None)
  c = _dtn_config()
  c.loss.const_contrastive_weight = 1.0
  with pytest.raises(NotImplementedError, match="const_contrastive_weight"):
    torch_dtn.dtn_random_inputs(c, None)
  c = _dtn_config()
  c.model.discriminator.patch_layers = 3
  with pytest.raises(NotImplementedError, match="patch_layers"):
    torch_dtn.dtn_random_inputs(c, None)
  c = _dtn_config()
  c.loss.tid_distance = "mean_abs"
  with pytest.raises(NotImplementedError, match="tid_distance='mean_abs'"):
    torch_dtn.dtn_random_inputs(c, None)


@pytest.mark.parametrize("term", ["mode_seeking_weight", "mode_seeking_weight_end",
                                  "ma_gp_weight", "g_class_weight", "latent_regression_weight"])
def test_t2i_mirror_refuses_losses_it_does_not_mirror(term):
  """The mirror has Reed et al.'s losses only: a config with MSGAN's or MA-GP's term, or G's
  class weight apart from D's (0.5 against 1.0), gets an error naming the key instead of a
  step that silently differs from jgan's."""
  config = _t2i_config({f"loss.{term}": 0.5})
  with pytest.raises(NotImplementedError, match=term):
    torch_dtn.T2IStep(config, image_shape=IMAGE, text_dim=16)
