"""The GAN train step: learns, does not retrace, counts updates right, shards exactly."""

import textwrap

import chex
import jax
import jax.numpy as jnp
import flax.linen as nn
import ml_collections
import numpy as np
import pytest

from jgan import models, steps, tasks
from tests.conftest import run_python, tiny_gan_config


def _task(**overrides):
  return tasks.build_task(tiny_gan_config(**overrides), image_shape=(8, 8, 1), num_classes=None)


def _batch(n, seed=0):
  rng = np.random.default_rng(seed)
  return {"image": jnp.asarray(rng.integers(0, 256, (n, 8, 8, 1), dtype=np.uint8))}


def test_step_overfits_a_tiny_batch():
  """With one real image repeated, G's samples converge to it."""
  task = _task(**{"optim.g_lr": 2e-3, "optim.d_lr": 2e-3})
  target = np.zeros((8, 8, 1), np.uint8)
  target[::2, ::2] = 255  # a dotted pattern
  batch = {"image": jnp.asarray(np.repeat(target[None], 8, axis=0))}
  state = task.init(jax.random.key(0))
  step = jax.jit(task.step)
  z = task.sample_inputs(jax.random.key(1), 16)
  target_f = target.astype(np.float32) / 127.5 - 1

  def distance(state):
    return float(np.mean(np.abs(np.asarray(task.sample(state, z)["samples"]) - target_f)))

  before = distance(state)
  for i in range(300):
    state, metrics = step(state, batch, jax.random.key(100 + i))
  after = distance(state)
  assert np.isfinite(metrics["d_loss"]) and np.isfinite(metrics["g_loss"])
  assert after < 0.25 * before, (before, after)


def test_step_compiles_once():
  task = _task()
  state = task.init(jax.random.key(0))
  step = jax.jit(chex.assert_max_traces(task.step, n=1))
  for i in range(3):
    state, _ = step(state, _batch(8, i), jax.random.key(i))
  assert int(state.step) == 3


def test_n_critic_updates_d_k_times_per_g_update():
  task = _task(n_critic=3)
  assert task.examples_per_step == 24
  state = task.init(jax.random.key(0))
  state, metrics = jax.jit(task.step)(state, _batch(24), jax.random.key(1))
  d_counts = [int(x) for x in jax.tree.leaves(state.d_opt_state) if np.ndim(x) == 0]
  g_counts = [int(x) for x in jax.tree.leaves(state.g_opt_state) if np.ndim(x) == 0]
  assert d_counts and set(d_counts) == {3}
  assert g_counts and set(g_counts) == {1}
  for k in ("d_loss", "g_loss", "d_real", "d_fake", "d_grad_norm", "g_grad_norm"):
    chex.assert_shape(metrics[k], ())


def test_critic_updates_are_unrolled_not_a_loop():
  """No while loop left in the compiled step: XLA:CPU runs convolutions in one ~20x slower."""
  task = _task(n_critic=3)
  state = task.init(jax.random.key(0))

  def float_loops(fn, *args):  # jax.random's threefry loops carry only integers: ignored
    text = jax.jit(fn).lower(*args).compile().as_text()
    return [l for l in text.splitlines() if " while(" in l and "f32[" in l.split(" while(")[0]]

  assert not float_loops(task.step, state, _batch(24), jax.random.key(1))
  rolled = lambda x: jax.lax.scan(lambda c, _: (c * c + 1, None), x, None, length=3)[0]
  assert float_loops(rolled, jnp.zeros(()))  # the check does see a rolled loop


def test_ema_tracks_the_generator():
  task = _task(ema_decay=0.9)
  state = task.init(jax.random.key(0))
  new, _ = jax.jit(task.step)(state, _batch(8), jax.random.key(1))
  # Warmed up: the first update's decay is min(0.9, 1/10) = 0.1.
  expected = jax.tree.map(lambda e, p: 0.1 * e + 0.9 * p, state.ema_g_params, new.g_params)
  chex.assert_trees_all_close(new.ema_g_params, expected, atol=1e-6)
  assert set(task.sample(new, task.sample_inputs(jax.random.key(2), 2))) == {
      "samples", "samples_ema"}


@pytest.mark.parametrize("penalty", ["gradient_penalty", "r1"])
def test_penalty_is_added_to_the_d_loss(penalty):
  task = _task(**{"penalty.name": penalty, "loss.name": "wasserstein"})
  state = task.init(jax.random.key(0))
  _, metrics = jax.jit(task.step)(state, _batch(8), jax.random.key(1))
  assert float(metrics["penalty"]) > 0
  # The Wasserstein D loss alone is mean(d_fake) - mean(d_real).
  np.testing.assert_allclose(
      float(metrics["d_loss"]),
      float(metrics["d_fake"] - metrics["d_real"] + metrics["penalty"]), rtol=1e-5, atol=1e-6)


def test_label_smoothing_rejected_early_for_families_without_it():
  with pytest.raises(ValueError, match="label_smoothing"):
    _task(**{"loss.name": "hinge", "loss.label_smoothing": 0.1})


_SHARDED = textwrap.dedent("""
    import jax, numpy as np
    from jgan import sharding, tasks
    from tests.conftest import tiny_gan_config
    assert jax.device_count() == 8, jax.devices()
    try:
      sharding.check_batch_size(12, sharding.make_mesh())
      raise SystemExit("batch 12 on 8 devices was accepted")
    except ValueError as e:
      assert "multiple of 8" in str(e), e
    overrides = {OVERRIDES}
    c = tiny_gan_config(**overrides)
    shape = tuple(c.data.synthetic_shape)
    task = tasks.build_task(c, image_shape=shape, num_classes=None)
    rng = np.random.default_rng(0)
    batches = [{"image": rng.integers(0, 256, (task.examples_per_step, *shape), dtype=np.uint8)}
               for _ in range(2)]
    results = []
    for devices in (jax.devices()[:1], jax.devices()):
      mesh = sharding.make_mesh(devices)
      state = sharding.put_replicated(task.init(jax.random.key(0)), mesh)
      rep = sharding.replicated(mesh)
      step = jax.jit(task.step, in_shardings=(rep, sharding.batch_sharding(mesh), rep),
                     out_shardings=(rep, rep))
      for i, b in enumerate(batches):
        batch = sharding.put_batch(b, mesh)
        assert len(batch["image"].sharding.device_set) == len(devices)
        state, metrics = step(state, batch, jax.random.key(10 + i))
      results.append(jax.device_get((state, metrics)))
    (s1, m1), (s8, m8) = results
    for a, b in zip(jax.tree.leaves(s1), jax.tree.leaves(s8)):
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    for k in m1:
      np.testing.assert_allclose(m1[k], m8[k], rtol=1e-4, atol=1e-5)
    print("SHARDED_OK")
""")


@pytest.mark.parametrize("overrides", [
    # MLP with dropout: the dropout masks must not depend on the sharding.
    {},
    # DCGAN with batch norm: statistics over the global batch, n_critic 2.
    {"data.synthetic_shape": (28, 28, 1), "n_critic": 2,
     "model.generator": {"name": "dcgan", "width": 4},
     "model.discriminator": {"name": "dcgan", "width": 4}},
], ids=["mlp", "dcgan_bn"])
@pytest.mark.slow
def test_eight_devices_equal_one(overrides):
  code = _SHARDED.replace("{OVERRIDES}", repr(overrides))
  proc = run_python(code, env_extra={"XLA_FLAGS": "--xla_force_host_platform_device_count=8",
                                     "JAX_PLATFORMS": "cpu"})
  assert "SHARDED_OK" in proc.stdout, proc.stdout + proc.stderr


def test_bfloat16_compute_keeps_float32_params_and_finite_losses():
  task = _task(compute_dtype="bfloat16")
  state = task.init(jax.random.key(0))
  state, metrics = jax.jit(task.step)(state, _batch(8), jax.random.key(1))
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(state.g_params))
  assert all(np.isfinite(float(v)) and v.dtype == jnp.float32 for v in metrics.values())


def test_augmentation_changes_what_d_sees_but_is_seeded():
  plain, augmented = _task(), _task(**{"augment.flip": True, "augment.rotation": 10.0})
  state = plain.init(jax.random.key(0))
  _, m_plain = jax.jit(plain.step)(state, _batch(8), jax.random.key(1))
  _, m_aug = jax.jit(augmented.step)(state, _batch(8), jax.random.key(1))
  _, m_aug2 = jax.jit(augmented.step)(state, _batch(8), jax.random.key(1))
  assert float(m_plain["d_real"]) != float(m_aug["d_real"])
  assert float(m_aug["d_real"]) == float(m_aug2["d_real"])


def test_unknown_compute_dtype_is_named():
  with pytest.raises(ValueError, match="float16.*bfloat16"):
    _task(compute_dtype="float16")


def test_ema_decay_warms_up_to_the_configured_decay():
  got = [float(steps.ema_decay_at(t, 0.999)) for t in (0, 8, 80, 10_000)]
  np.testing.assert_allclose(got, [0.1, 0.5, 0.9, 0.999], rtol=1e-6)
  assert float(steps.ema_decay_at(5, 0.2)) == pytest.approx(0.2)  # capped by the decay
  e, p = {"w": jnp.ones(3)}, {"w": jnp.zeros(3)}
  chex.assert_trees_all_close(steps.update_ema(e, p, decay=0.99, step=0), {"w": jnp.full(3, 0.1)})
  chex.assert_trees_all_close(steps.update_ema(e, p, decay=0.99), {"w": jnp.full(3, 0.99)})
  assert steps.update_ema(None, p, decay=0.99, step=3) is None


class _DenseBN(nn.Module):
  momentum: float = 0.9

  @nn.compact
  def __call__(self, x, train: bool):
    x = nn.Dense(3, kernel_init=nn.initializers.constant(0.5))(x)
    return nn.BatchNorm(use_running_average=not train, momentum=self.momentum)(x)


@pytest.mark.parametrize("momentum", [0.9, 0.99])
def test_standing_batch_stats_are_the_mean_batch_moments(momentum):
  """Golden: one Dense (all weights 0.5, bias 0) then BN; the statistics of two batches."""
  module = _DenseBN(momentum=momentum)
  batches = jnp.asarray([[[1.0, 1.0], [3.0, 1.0]], [[0.0, 0.0], [2.0, 2.0]]])  # [K=2, B=2, 2]
  variables = module.init(jax.random.key(0), batches[0], train=False)
  stale = jax.tree.map(lambda x: x + 7.0, variables["batch_stats"])

  def apply_train(batch_stats, x):
    _, updates = module.apply({"params": variables["params"], "batch_stats": batch_stats}, x,
                              train=True, mutable=["batch_stats"])
    return updates["batch_stats"]

  out = steps.standing_batch_stats(apply_train, stale, batches)["BatchNorm_0"]
  # Dense outputs: batch 1 -> 1.0 and 2.0 (mean 1.5, var 0.25); batch 2 -> 0 and 2 (1, 1).
  np.testing.assert_allclose(out["mean"], np.full(3, 1.25), rtol=1e-5)
  np.testing.assert_allclose(out["var"], np.full(3, 0.625), rtol=1e-5)
  assert steps.standing_batch_stats(apply_train, {}, batches) == {}


def test_ema_samples_use_the_ema_generators_own_statistics():
  """samples_ema: the EMA weights normalised by their own batch moments (as a train-mode pass
  over the batch gives), not by the raw G's running statistics."""
  c = tiny_gan_config(ema_decay=0.9, **{"data.synthetic_shape": (28, 28, 1)})
  c.model.generator = ml_collections.ConfigDict({"name": "dcgan", "width": 4})
  task = tasks.build_task(c, image_shape=(28, 28, 1), num_classes=None)
  state = task.init(jax.random.key(0))
  state = state.replace(ema_g_params=jax.tree.map(lambda x: 1.5 * x, state.ema_g_params))
  z = task.sample_inputs(jax.random.key(2), 8)
  out = task.sample(state, z)
  generator = models.build_generator("dcgan", image_shape=(28, 28, 1), width=4)
  variables = {"params": state.ema_g_params, "batch_stats": state.g_batch_stats}
  direct = generator.apply(variables, z, train=True, mutable=["batch_stats"])[0]
  np.testing.assert_allclose(out["samples_ema"], direct, atol=1e-4)
  stale = generator.apply(variables, z, train=False)
  assert np.abs(np.asarray(out["samples_ema"]) - np.asarray(stale)).max() > 1e-2


def test_classifier_step_augments_on_device_with_its_own_key():
  """An identity augment_fn gives the plain step bit for bit (dropout keeps its stream); a real
  one changes the update, deterministically for one key."""
  from jgan import optim  # pylint: disable=import-outside-toplevel
  model = models.ConvClassifier(num_classes=3, widths=(4,), feature_dim=8, dropout_rate=0.3)
  opt = optim.make_optimizer("adam", learning_rate=1e-2)
  state = steps.init_classifier_state(jax.random.key(0), model=model, optimizer=opt,
                                      image_shape=(8, 8, 1))
  batch = {"image": jax.random.randint(jax.random.key(1), (6, 8, 8, 1), 0, 256).astype(
      jnp.uint8), "label": jnp.array([0, 1, 2, 0, 1, 2])}
  key = jax.random.key(2)
  run = lambda fn: jax.jit(steps.make_classifier_step(model=model, optimizer=opt,
                                                      augment_fn=fn))(state, batch, key)
  plain, m0 = run(None)
  same, m1 = run(lambda x, k: x)
  chex.assert_trees_all_equal(plain.params, same.params)
  assert float(m0["loss"]) == float(m1["loss"])
  noisy = lambda x, k: x + jax.random.normal(k, x.shape)
  a, m2 = run(noisy)
  b, _ = run(noisy)
  assert float(m2["loss"]) != float(m0["loss"])
  chex.assert_trees_all_equal(a.params, b.params)


def test_d_augment_changes_what_d_sees_is_seeded_and_named():
  """DiffAugment before D: the D and G losses change, deterministically for one key, and G
  still trains through it; a bad policy is named when the task is built."""
  plain, diff = _task(), _task(d_augment="translation,cutout")
  state = plain.init(jax.random.key(0))
  _, m_plain = jax.jit(plain.step)(state, _batch(8), jax.random.key(1))
  step = jax.jit(diff.step)
  new, m1 = step(state, _batch(8), jax.random.key(1))
  _, m2 = step(state, _batch(8), jax.random.key(1))
  assert float(m_plain["d_real"]) != float(m1["d_real"])
  assert float(m_plain["g_loss"]) != float(m1["g_loss"])
  assert float(m1["d_loss"]) == float(m2["d_loss"])
  assert float(m1["g_grad_norm"]) > 0
  assert any(not np.array_equal(a, b) for a, b in
             zip(jax.tree.leaves(state.g_params), jax.tree.leaves(new.g_params)))
  with pytest.raises(ValueError, match="d_augment='zoom'.*allowed"):
    _task(d_augment="zoom")


def test_top_k_generator_updates():
  """loss.top_k: G's loss over the k samples D scores most real, k logged; with k = B from
  the schedule's start the step equals the plain one; a bad fraction is named."""
  plain = _task()
  full = _task(**{"loss.top_k": 0.5, "loss.top_k_decay_every": 1000})  # k = 8 at step 0
  fast = _task(**{"loss.top_k": 0.5, "loss.top_k_decay": 0.5, "loss.top_k_decay_every": 1})
  state = plain.init(jax.random.key(0))
  new_plain, m_plain = jax.jit(plain.step)(state, _batch(8), jax.random.key(1))
  new_full, m_full = jax.jit(full.step)(state, _batch(8), jax.random.key(1))
  assert float(m_full["top_k"]) == 8
  chex.assert_trees_all_close(new_full.g_params, new_plain.g_params, rtol=1e-6, atol=1e-7)
  state = state.replace(step=jnp.int32(5))  # 0.5 ** 5 * 8 < 4: k at the floor, 4
  _, m_fast = jax.jit(fast.step)(state, _batch(8), jax.random.key(1))
  assert float(m_fast["top_k"]) == 4
  # The kept half scores more real than the batch: its loss is below the plain loss.
  assert float(m_fast["g_loss"]) < float(m_plain["g_loss"])
  with pytest.raises(ValueError, match=r"config.loss.top_k = 1.5.*\(0, 1\)"):
    _task(**{"loss.top_k": 1.5})


def test_spectral_norm_discriminator_trains_in_the_gan_step():
  """normalization="spectral": the power-iteration vectors are D's batch_stats and move every
  step; the losses are finite and D's params change."""
  config = tiny_gan_config(**{"data.synthetic_shape": (32, 32, 1),
                              "model.generator": {"name": "dcgan", "width": 4},
                              "model.discriminator": {"name": "dcgan", "width": 4,
                                                      "normalization": "spectral"}})
  task = tasks.build_task(config, image_shape=(32, 32, 1), num_classes=None)
  state = task.init(jax.random.key(0))
  assert set(state.d_batch_stats) == {"sn_conv0", "sn_conv1", "sn_conv2", "sn_out"}
  rng = np.random.default_rng(0)
  batch = {"image": jnp.asarray(rng.integers(0, 256, (8, 32, 32, 1), dtype=np.uint8))}
  new, metrics = jax.jit(task.step)(state, batch, jax.random.key(1))
  assert all(np.isfinite(float(v)) for v in metrics.values())
  u_before = state.d_batch_stats["sn_conv1"]["conv1/kernel/u"]
  assert not np.allclose(u_before, new.d_batch_stats["sn_conv1"]["conv1/kernel/u"])
  assert not np.allclose(state.d_params["out"]["kernel"], new.d_params["out"]["kernel"])


def test_two_player_learning_rate_schedules():
  """optim.schedule "linear_decay": constant for decay_start of the run, then linearly to 0
  at total_steps; D's schedule counts n_critic updates a step. Read through SGD (update =
  -lr * gradient)."""
  from jgan import optim  # pylint: disable=import-outside-toplevel
  c = optim.two_player_config()
  c.name, c.g_lr, c.d_lr, c.schedule, c.decay_start = "sgd", 1.0, 2.0, "linear_decay", 0.5
  g_opt, d_opt = optim.two_player_optimizers(c, total_steps=10, d_updates_per_step=2)

  def lrs(opt, n):
    state, out = opt.init(jnp.zeros(())), []
    for _ in range(n):
      update, state = opt.update(jnp.ones(()), state)
      out.append(-float(update))
    return out

  np.testing.assert_allclose(lrs(g_opt, 11), [1, 1, 1, 1, 1, 1, 0.8, 0.6, 0.4, 0.2, 0],
                             atol=1e-6)
  d = lrs(d_opt, 21)  # 2 updates a step: constant for 10 updates, 0 at update 20
  np.testing.assert_allclose([d[0], d[10], d[15], d[20]], [2, 2, 1, 0], atol=1e-6)
  c.schedule = "cosine"
  g_opt, _ = optim.two_player_optimizers(c, total_steps=10)
  np.testing.assert_allclose(lrs(g_opt, 11)[4:], [1, 1, 0.904508, 0.654508, 0.345492,
                                                   0.095492, 0], atol=1e-5)
  c.schedule = "constant"
  g_opt, _ = optim.two_player_optimizers(c)  # no total_steps needed
  assert lrs(g_opt, 3) == [1, 1, 1]
  c.schedule = "step"
  with pytest.raises(ValueError, match=r"schedule 'step'; allowed: 'constant', 'cosine', "
                                       r"'linear_decay'"):
    optim.two_player_optimizers(c, total_steps=10)
  c.schedule, c.decay_start = "linear_decay", 1.0
  with pytest.raises(ValueError, match=r"decay_start must be in \[0, 1\), got 1.0"):
    optim.two_player_optimizers(c, total_steps=10)
  c.decay_start = 0.5
  with pytest.raises(ValueError, match=r"needs total_steps >= 1, got None"):
    optim.two_player_optimizers(c)
