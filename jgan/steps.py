"""Train-step builders: pure ``(state, batch, key) -> (state, metrics)`` functions.

The builders close over the (static) models, optimizers and loss functions and return a
plain function; the train loop compiles it once with ``jax.jit`` and the shardings from
:mod:`jgan.sharding`. Nothing in a step touches the host.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jgan import imaging
from jgan import losses
from jgan.state import ClassifierState, DTNState, GANState, split_variables

PyTree = Any
Metrics = dict[str, jax.Array]
GeneratorLoss = Callable[[jax.Array], jax.Array]
DiscriminatorLoss = Callable[[jax.Array, jax.Array], jax.Array]


class Penalty(Protocol):
  """A discriminator penalty ``(critic_fn, real, fake, key) -> scalar``.

  ``critic_fn`` maps images [B, H, W, C] to logits [B]; see :mod:`jgan.penalties`.
  """

  def __call__(self, critic_fn: Callable[[jax.Array], jax.Array], real: jax.Array,
               fake: jax.Array, key: jax.Array) -> jax.Array:
    ...


def apply_gradients(optimizer: optax.GradientTransformation, grads: PyTree, opt_state: PyTree,
                    params: PyTree) -> tuple[PyTree, PyTree, jax.Array]:
  """One optimizer update: (new params, new optimizer state, the gradients' global norm)."""
  updates, opt_state = optimizer.update(grads, opt_state, params)
  return optax.apply_updates(params, updates), opt_state, optax.global_norm(grads)


def ema_decay_at(step: jax.Array | int, decay: float) -> jax.Array:
  """The EMA decay after ``step`` completed updates, warmed up: ``min(decay, (1+t)/(10+t))``.

  A fixed decay of 0.999 still holds 37% of the random initial weights after 1,000 steps; the
  warm-up lets the average follow the early, fast-moving weights (0.1 at the first update,
  0.5 at t=8, 0.9 at t=80) and reaches ``decay`` after about 9 / (1 - decay) steps.

  References:
    The warm-up of TensorFlow's ``tf.train.ExponentialMovingAverage(num_updates=t)``; used for
    generators' weight averages as in Yazici et al., "The Unusual Effectiveness of Averaging in
    GAN Training", ICLR 2019.
  """
  t = jnp.asarray(step, jnp.float32)
  return jnp.minimum(jnp.float32(decay), (1.0 + t) / (10.0 + t))


def update_ema(ema_params: PyTree | None, params: PyTree, *, decay: float | None,
               step: jax.Array | int | None = None) -> PyTree | None:
  """``d * ema + (1 - d) * params`` with ``d = ema_decay_at(step, decay)`` (the warm-up), or
  ``d = decay`` when ``step`` is None. None stays None: the run keeps no EMA."""
  if ema_params is None:
    return None
  d = jnp.float32(decay or 0.0) if step is None else ema_decay_at(step, decay or 0.0)
  return jax.tree.map(lambda e, p: (d * e + (1.0 - d) * p).astype(e.dtype), ema_params, params)


def standing_batch_stats(apply_train: Callable[[PyTree, Any], PyTree], batch_stats: PyTree,
                         batches: Any) -> PyTree:
  """Batch-norm statistics of a network as its weights are now ("standing statistics").

  The running statistics a generator keeps in training belong to its raw weights; its EMA
  weights make other activations, so sampling the EMA generator with them skews every
  normalised layer. This recomputes them for the given weights: the mean over ``batches`` of
  each batch's moments. Works for any batch-norm momentum m: a train-mode pass from statistics
  0 gives ``a = (1 - m) * moment`` and from statistics 1 gives ``b = m + (1 - m) * moment``,
  so ``moment = a / (1 - (b - a))``.

  Args:
    apply_train: ``(batch_stats, inputs) -> new batch_stats``: one train-mode forward pass
      (the weights closed over), returning the updated ``batch_stats`` collection.
    batch_stats: the current statistics (their structure; {} returns {}).
    batches: a pytree of inputs with a leading axis of K batches.

  References:
    Brock, Donahue & Simonyan, "Large Scale GAN Training for High Fidelity Natural Image
    Synthesis" (BigGAN), ICLR 2019, Sec. 3.1 / App. C ("standing statistics").
  """
  if not batch_stats:
    return batch_stats
  zeros = jax.tree.map(jnp.zeros_like, batch_stats)
  ones = jax.tree.map(jnp.ones_like, batch_stats)

  def moments(inputs):
    a, b = apply_train(zeros, inputs), apply_train(ones, inputs)
    return jax.tree.map(lambda a, b: a / (1.0 - (b - a)), a, b)

  return jax.tree.map(lambda x: jnp.mean(x, axis=0), jax.lax.map(moments, batches))


def ema_generator_batch_stats(generator: nn.Module, ema_params: PyTree, batch_stats: PyTree,
                              inputs: jax.Array) -> PyTree:
  """The EMA generator's own batch-norm statistics over ``inputs`` [B, ...] (one batch):
  :func:`standing_batch_stats` of ``generator`` with ``ema_params``."""
  return standing_batch_stats(
      lambda bs, z: _apply(generator, ema_params, bs, z, train=True)[1], batch_stats,
      inputs[None])


def _apply(module: nn.Module, params: PyTree, batch_stats: PyTree, x: jax.Array, *,
           train: bool, key: jax.Array | None = None, **kwargs) -> tuple[jax.Array, PyTree]:
  """Runs a jgan model (``kwargs`` go to its call); returns (output, new batch_stats) ({} for
  models without BN)."""
  variables = {"params": params}
  if batch_stats:
    variables["batch_stats"] = batch_stats
  rngs = {"dropout": key} if key is not None else {}
  if train and batch_stats:
    out, updates = module.apply(variables, x, train=True, rngs=rngs, mutable=["batch_stats"],
                                **kwargs)
    return out, updates["batch_stats"]
  return module.apply(variables, x, train=train, rngs=rngs, **kwargs), batch_stats


def init_gan_state(
    key: jax.Array,
    *,
    generator: nn.Module,
    discriminator: nn.Module,
    g_optimizer: optax.GradientTransformation,
    d_optimizer: optax.GradientTransformation,
    latent_dim: int,
    image_shape: tuple[int, int, int],
    use_ema: bool = False,
) -> GANState:
  """Initialises both networks and their optimizers from ``key``."""
  g_key, d_key, drop_key = jax.random.split(key, 3)
  z = jnp.zeros((2, latent_dim), jnp.float32)
  x = jnp.zeros((2, *image_shape), jnp.float32)
  g_params, g_bs = split_variables(generator.init({"params": g_key}, z, train=False))
  d_params, d_bs = split_variables(
      discriminator.init({"params": d_key, "dropout": drop_key}, x, train=False))
  return GANState(
      step=jnp.zeros((), jnp.int32),
      g_params=g_params, d_params=d_params, g_batch_stats=g_bs, d_batch_stats=d_bs,
      g_opt_state=g_optimizer.init(g_params), d_opt_state=d_optimizer.init(d_params),
      ema_g_params=jax.tree.map(jnp.copy, g_params) if use_ema else None)


def make_gan_step(
    *,
    generator: nn.Module,
    discriminator: nn.Module,
    g_optimizer: optax.GradientTransformation,
    d_optimizer: optax.GradientTransformation,
    generator_loss: GeneratorLoss,
    discriminator_loss: DiscriminatorLoss,
    latent_dim: int,
    n_critic: int = 1,
    penalty: Penalty | None = None,
    ema_decay: float | None = None,
    augment_fn: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
    loss_takes_batch: bool = False,
    d_augment_fn: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
    top_k: Callable[[jax.Array], jax.Array] | None = None,
    latent_fn: Callable[[jax.Array, int], jax.Array] | None = None,
) -> Callable[[GANState, dict[str, jax.Array], jax.Array], tuple[GANState, Metrics]]:
  """Builds one unconditional GAN train step: ``n_critic`` D updates, then one G update.

  The batch holds ``n_critic * B`` real images (``batch["image"]``, uint8 [n_critic*B, H,
  W, C]); D update ``i`` sees rows ``i::n_critic`` (a split that keeps every device's rows
  on that device), each against B fresh generator samples. The G update draws B new
  latents. ``augment_fn(images, key)`` (e.g. :func:`jgan.augment.augment`), if given, is
  applied to the real images first. Fakes for D are generated in train mode (so G's batch-norm statistics follow
  the batch, as in PyTorch DCGAN) and ``stop_gradient``-ed. ``d_augment_fn(images, key)``
  (e.g. :func:`jgan.augment.diff_augment`), if given, transforms every image D sees, real and
  fake, in D's and G's updates (G's gradient passes through it); the penalty is taken on
  the transformed images, as D sees them. ``top_k(step) -> k`` (e.g. a partial of
  :func:`jgan.losses.top_k_count`), if given, makes G's update use only the k of its B samples
  that D scores most real (:func:`jgan.losses.top_k_generator_loss`; Sinha et al. 2020) and
  logs ``top_k``. ``latent_fn(key, n) -> z [n, latent_dim]`` (e.g. a
  :func:`jgan.latent.from_config` sampler) replaces G's N(0, I) prior.

  The losses are ``generator_loss(d_fake)`` and ``discriminator_loss(d_real, d_fake)`` (the
  :mod:`jgan.losses` families). With ``loss_takes_batch=True`` both are called with the batch
  as well, ``generator_loss(d_fake, batch)`` and ``discriminator_loss(d_real, d_fake,
  batch)``: a user's own loss (see docs/composing.md). ``batch`` is the step's batch dict
  with ``"image"`` as float in [-1, 1] (augmented), restricted to the B rows that D update
  sees; the G update gets the rows of the first D update.

  Returns:
    ``step(state, batch, key) -> (state, metrics)``, pure and jit-able; metrics are
    scalars: d_loss, g_loss, d_real and d_fake (mean logits), the gradient global norms,
    and ``penalty`` when a penalty is set (d_loss includes it). With n_critic > 1 the D
    metrics are means over the critic updates.

  References:
    Goodfellow et al. 2014, "Generative Adversarial Nets", Algorithm 1 (k D steps per G
    step); Gulrajani et al. 2017, Algorithm 1 (n_critic).
  """
  if n_critic < 1:
    raise ValueError(f"n_critic must be >= 1, got {n_critic}.")
  if ema_decay is not None and not 0.0 <= ema_decay < 1.0:
    raise ValueError(f"ema_decay must be in [0, 1) or None, got {ema_decay}.")
  if top_k is not None and loss_takes_batch:
    raise ValueError("top_k works with the loss families' per-example generator losses, not "
                     "with a generator loss that takes the batch (config.loss.generator_fn).")

  def generate(g_params, g_bs, key, batch_size):
    if latent_fn is None:
      z = jax.random.normal(key, (batch_size, latent_dim), jnp.float32)
    else:
      z = latent_fn(key, batch_size)
    return _apply(generator, g_params, g_bs, z, train=True)

  def d_loss_fn(d_params, d_bs, part, fake, key):
    real = part["image"]
    k_real, k_fake, k_pen = jax.random.split(key, 3)
    if d_augment_fn is not None:  # its own keys: without it, the random streams are unchanged
      real = d_augment_fn(real, jax.random.fold_in(key, 7))
      fake = d_augment_fn(fake, jax.random.fold_in(key, 8))
    d_real, d_bs = _apply(discriminator, d_params, d_bs, real, train=True, key=k_real)
    d_fake, d_bs = _apply(discriminator, d_params, d_bs, fake, train=True, key=k_fake)
    if loss_takes_batch:
      loss = discriminator_loss(d_real, d_fake, part)
    else:
      loss = discriminator_loss(d_real, d_fake)
    metrics = {"d_real": jnp.mean(d_real), "d_fake": jnp.mean(d_fake)}
    if penalty is not None:
      critic = lambda x: _apply(discriminator, d_params, d_bs, x, train=True, key=k_pen)[0]
      metrics["penalty"] = penalty(critic, real, fake, k_pen)
      loss = loss + metrics["penalty"]
    metrics["d_loss"] = loss
    return loss, (d_bs, metrics)

  def d_update(carry, inputs):
    d_params, d_opt_state, d_bs, g_params, g_bs = carry
    part, key = inputs
    k_gen, k_d = jax.random.split(key)
    fake, g_bs = generate(g_params, g_bs, k_gen, part["image"].shape[0])
    grads, (d_bs, metrics) = jax.grad(d_loss_fn, has_aux=True)(
        d_params, d_bs, part, jax.lax.stop_gradient(fake), k_d)
    d_params, d_opt_state, metrics["d_grad_norm"] = apply_gradients(
        d_optimizer, grads, d_opt_state, d_params)
    return (d_params, d_opt_state, d_bs, g_params, g_bs), metrics

  def g_loss_fn(g_params, g_bs, d_params, d_bs, key, part, step_count):
    k_gen, k_d = jax.random.split(key)
    fake, g_bs = generate(g_params, g_bs, k_gen, part["image"].shape[0])
    if d_augment_fn is not None:
      fake = d_augment_fn(fake, jax.random.fold_in(key, 7))
    d_fake, _ = _apply(discriminator, d_params, d_bs, fake, train=True, key=k_d)
    metrics = {}
    if loss_takes_batch:
      loss = generator_loss(d_fake, part)
    elif top_k is not None:
      k = top_k(step_count)
      metrics["top_k"] = jnp.asarray(k, jnp.float32)
      loss = losses.top_k_generator_loss(generator_loss, d_fake, k=k)
    else:
      loss = generator_loss(d_fake)
    metrics["g_loss"] = loss
    return loss, (g_bs, metrics)

  def step(state: GANState, batch: dict[str, jax.Array], key: jax.Array):
    images = imaging.to_float(batch["image"])
    if augment_fn is not None:
      images = augment_fn(images, jax.random.fold_in(key, 2))
    total = images.shape[0]
    if total % n_critic:
      raise ValueError(f"The batch ({total} images) must hold n_critic={n_critic} equal parts.")
    b = total // n_critic
    # Row r = i * n_critic + j goes to critic update j: each device keeps its own rows.
    split = lambda x: jnp.swapaxes(x.reshape(b, n_critic, *x.shape[1:]), 0, 1)
    if loss_takes_batch:  # every per-example array of the batch, split like the images
      parts = {k: split(v) for k, v in batch.items()
               if k != "image" and getattr(v, "ndim", 0) >= 1 and v.shape[0] == total}
      parts["image"] = split(images)
    else:
      parts = {"image": split(images)}
    d_keys = jax.random.split(jax.random.fold_in(key, 0), n_critic)
    g_key = jax.random.fold_in(key, 1)

    carry = (state.d_params, state.d_opt_state, state.d_batch_stats, state.g_params,
             state.g_batch_stats)
    if n_critic == 1:
      carry, d_metrics = d_update(carry, (jax.tree.map(lambda x: x[0], parts), d_keys[0]))
    else:
      # Unrolled: XLA:CPU runs convolutions inside a while loop ~20x slower (measured: a
      # WGAN-GP 32x32 step with n_critic=2 took 9.1 s rolled, 1.4 s unrolled).
      carry, d_metrics = jax.lax.scan(d_update, carry, (parts, d_keys), unroll=True)
      d_metrics = jax.tree.map(jnp.mean, d_metrics)
    d_params, d_opt_state, d_bs, g_params, g_bs = carry

    grads, (g_bs, g_metrics) = jax.grad(g_loss_fn, has_aux=True)(
        g_params, g_bs, d_params, d_bs, g_key, jax.tree.map(lambda x: x[0], parts), state.step)
    g_params, g_opt_state, g_metrics["g_grad_norm"] = apply_gradients(
        g_optimizer, grads, state.g_opt_state, g_params)
    ema = update_ema(state.ema_g_params, g_params, decay=ema_decay, step=state.step)
    new_state = state.replace(
        step=state.step + 1, g_params=g_params, d_params=d_params, g_batch_stats=g_bs,
        d_batch_stats=d_bs, g_opt_state=g_opt_state, d_opt_state=d_opt_state,
        ema_g_params=ema)
    return new_state, {**d_metrics, **g_metrics}

  return step


def make_sample_fn(generator: nn.Module) -> Callable[[GANState, jax.Array], dict[str, jax.Array]]:
  """``sample(state, z) -> {"samples": images[, "samples_ema": images]}`` in eval mode."""

  def sample(state: GANState, z: jax.Array) -> dict[str, jax.Array]:
    out = {"samples": _apply(generator, state.g_params, state.g_batch_stats, z,
                             train=False)[0]}
    if state.ema_g_params is not None:  # with its own statistics, not the raw G's
      ema_bs = ema_generator_batch_stats(generator, state.ema_g_params, state.g_batch_stats, z)
      out["samples_ema"] = _apply(generator, state.ema_g_params, ema_bs, z, train=False)[0]
    return out

  return sample


Encoder = Callable[[PyTree, jax.Array], jax.Array]


def init_dtn_state(
    key: jax.Array,
    *,
    generator: nn.Module,
    discriminator: nn.Module,
    g_optimizer: optax.GradientTransformation,
    d_optimizer: optax.GradientTransformation,
    f_variables: PyTree,
    feature_dim: int,
    image_shape: tuple[int, int, int],
    use_ema: bool = False,
) -> DTNState:
  """Initialises g (on ``feature_dim``-d inputs), D and their optimizers; f is given. With
  ``use_ema`` the EMA of g starts as a copy of g (weights and batch-norm statistics)."""
  g_key, d_key = jax.random.split(key)
  g_params, g_bs = split_variables(
      generator.init({"params": g_key}, jnp.zeros((2, feature_dim), jnp.float32), train=False))
  d_params, d_bs = split_variables(discriminator.init(
      {"params": d_key}, jnp.zeros((2, *image_shape), jnp.float32), train=False))
  return DTNState(
      step=jnp.zeros((), jnp.int32), g_params=g_params, d_params=d_params, g_batch_stats=g_bs,
      d_batch_stats=d_bs, g_opt_state=g_optimizer.init(g_params),
      d_opt_state=d_optimizer.init(d_params), f_variables=f_variables,
      ema_g_params=jax.tree.map(jnp.copy, g_params) if use_ema else None,
      ema_g_batch_stats=jax.tree.map(jnp.copy, g_bs) if use_ema else None)


def make_dtn_step(
    *,
    generator: nn.Module,
    discriminator: nn.Module,
    encoder: Encoder,
    g_optimizer: optax.GradientTransformation,
    d_optimizer: optax.GradientTransformation,
    const_weight: float,
    target_encoder: Encoder | None = None,
    const_encoder: Encoder | None = None,
    tid_weight: float,
    tv_weight: float = 0.0,
    distance: str = "mean_squared",
    tid_distance: str | None = None,
    source_augment_fn: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
    const_warmup_steps: int = 0,
    feature_augment_fn: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
    const_augment_fn: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
    ema_decay: float | None = None,
    const_examples: int = 0,
    d_augment_fn: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
    penalty: Penalty | None = None,
    class_weight: float = 0.0,
    encoder_head: Callable[[PyTree, jax.Array], jax.Array] | None = None,
    d_joint_batch: bool = False,
    contrastive_weight: float = 0.0,
    contrastive_temperature: float = 0.1,
    adversarial: str = "ternary",
    mode_seeking_weight: float = 0.0,
    mode_seeking_pool: int = 1,
) -> Callable[[DTNState, dict[str, jax.Array], jax.Array], tuple[DTNState, Metrics]]:
  """Builds one Domain Transfer Network step: a ternary-D update, then a g update.

  The batch holds target images ``batch["image"]`` (uint8 [B, H, W, C], the domain g draws
  in) and source images ``batch["source_image"]`` (uint8 [B, H', W', C']). ``encoder(
  f_variables, images) -> [B, F]`` is the frozen f; it must accept both domains' images and
  g's outputs (adapt sizes/channels inside it). D has three outputs: class 0 g(f(source)),
  1 g(f(target)), 2 real target (:data:`jgan.losses.TERNARY_SOURCE_FAKE`...).

  ``target_encoder`` (default ``encoder``) is f for the real target images (L_TID's input
  to g) and ``const_encoder`` (default ``encoder``) f for g's translations in L_CONST: f
  standardised by each domain's own statistics puts both domains' descriptors in one range
  for g (jgan.tasks.dtn's ``encoder.target_standardize``).

  g minimises ``L_GANG + const_weight * L_CONST + tid_weight * L_TID + tv_weight * L_TV``;
  f never changes (its gradient reaches g through L_CONST only). L_CONST compares
  descriptors with ``distance``, L_TID pixels with ``tid_distance`` (default ``distance``;
  e.g. ``"mean_abs"``: L1, whose minimiser is a median, for targets g cannot fully predict from
  f's descriptor, such as their background colour). ``source_augment_fn(images,
  key)`` (e.g. :func:`jgan.augment.augment`), when given, transforms the source batch (floats)
  before f with the step's key: with few source images (100 real faces) it gives g new
  descriptors around each one to keep their identity on. ``const_warmup_steps`` > 0 ramps
  const_weight linearly from 0 at step 0 to its value at that step: g first learns to draw
  targets from f's features (L_TID, L_GAN) before L_CONST pulls on it (a strong L_CONST from
  the start drives g to f-adversarial noise).

  Two defences against g overfitting few source images and f's blind spots, both seeded by
  the step's key: ``feature_augment_fn(f_s, key)`` (e.g. :func:`jgan.augment.mix_features`)
  makes new source descriptors from the batch's (L_GANG and L_CONST need only descriptors,
  not photos), and ``const_augment_fn(images, key)`` (e.g. :func:`jgan.augment.perturb`:
  random zoom, shift and blur, differentiable) transforms g(f(source)) before f in L_CONST, so
  g cannot keep an identity in a pixel-exact pattern that only f reads.

  ``const_examples`` > 0 computes L_CONST on that many of the batch's source translations
  (the first; the batch is shuffled) instead of all: f's forward and backward pass through
  them is most of a step with a large f, and L_GANG still sees the whole batch.

  ``d_augment_fn(images, key)`` (e.g. :func:`jgan.augment.diff_augment`), if given, transforms
  every image D sees (its three batches, and g's translations in L_GANG, differentiably);
  L_CONST, L_TID and L_TV see g's outputs unchanged.

  By default D sees its three batches in three calls, so a batch-norm D normalises each by
  its own statistics (as PyTorch's DCGAN does with real and fake): whatever all of g's
  outputs share, e.g. a fixed pixel pattern, is then largely subtracted away and D cannot
  penalise it. ``d_joint_batch=True`` runs D once on the three batches together (in D's
  update and in L_GANG, where the real targets join without gradient): one statistic for
  real and fake, so a pattern only the fakes carry stays visible.

  A patch discriminator (logits [B, s, s, 3], e.g. ``DCGANDiscriminator(patch_layers=3)``)
  is judged position by position: each patch carries its image's class in D's and g's
  ternary losses and in d_accuracy; so is a two-headed one ([B, 2, s, s, 3] with
  ``whole_image_head=True``: the whole image's logits repeated at every position beside the
  patches', so image and patches weigh equally).

  ``adversarial`` names the game (:data:`jgan.losses.DTN_ADVERSARIAL`): ``"ternary"``, the
  paper's three-way cross-entropy (L_D, L_GANG), or ``"wasserstein"``, WGAN's critic loss on
  D's realness log-odds with both translation batches as fakes
  (:func:`jgan.losses.ternary_wasserstein_discriminator_loss`), which needs a ``penalty`` on
  the same critic to keep D Lipschitz (WGAN-GP: ``make_d_penalty("gradient_penalty", ...)``
  with a D without batch norm).

  ``penalty(critic, real, fake, key)`` (e.g. ``jgan.penalties.make_d_penalty("r1", ...)``),
  if given, is added to D's loss, with the critic ``x -> ternary_realness(D(x))`` (the log-odds
  of "real target" against both fake classes), on the real targets and the source
  translations as D sees them; it is logged as ``penalty`` (included in d_loss).

  ``class_weight`` > 0 adds ``class_weight * losses.class_consistency_loss`` on the L_CONST
  translations (logged as ``class``): ``encoder_head(f_variables, features) -> logits``, f's
  classifier layer, must read f(g(f(x))) (as perturbed for L_CONST) as it reads f(x).

  ``contrastive_weight`` > 0 adds ``contrastive_weight * losses.identity_contrastive_loss`` on
  the L_CONST translations (logged as ``contrastive``): each f(g(f(x))) must pick its own f(x)
  out of the whole batch's source descriptors (the others are the negatives), at
  ``contrastive_temperature``.

  A generator with ``noise_dim`` > 0 (``DCGANGenerator(noise_dim=N)``) gets fresh standard
  normal noise beside every descriptor, drawn with the step's key (the same noise in D's and
  g's updates), so what f's descriptor leaves open (a cartoon's background or shirt colour)
  is one choice per drawing instead of the mean of all. ``mode_seeking_weight`` > 0 adds
  ``mode_seeking_weight * losses.mode_seeking_loss`` (logged as ``mode_seeking``, pooled over
  ``mode_seeking_pool`` pixels): the L_CONST translations drawn again with other noise must
  differ, so g cannot ignore its noise.

  With ``ema_decay`` (and a state made with ``use_ema``) the step keeps an EMA of g's weights
  (warmed up, :func:`ema_decay_at`) and the EMA generator's own batch-norm statistics, from a
  train-mode pass of it on the step's inputs (one generator forward more): translations with
  the EMA then never use the raw g's statistics.

  f is frozen, so its outputs on fixed inputs may come with the batch instead (the dtn task's
  ``precompute``, ``config.encoder.cache``): ``batch["target_features"]`` [B, F] is used for
  f(target), and ``batch["source_features"]`` [B, V, F], f on V fixed augmentations of each
  source image, gives f(source) by one variant per example drawn with the step's key (then
  ``source_augment_fn`` is not used). The step then runs f only on g's outputs (L_CONST).

  Returns:
    ``step(state, batch, key) -> (state, metrics)``; metrics: d_loss, g_loss (the total),
    g_gan, const, tid, tv (unweighted terms), d_accuracy (ternary accuracy of D on its three
    batches) and the gradient norms.

  References:
    Taigman, Polyak & Wolf, "Unsupervised Cross-Domain Image Generation", ICLR 2017, Sec. 4
    (eqs. 3-7).
  """
  for name, value in (("const_weight", const_weight), ("tid_weight", tid_weight),
                      ("tv_weight", tv_weight), ("const_warmup_steps", const_warmup_steps)):
    if value < 0:
      raise ValueError(f"{name} must be >= 0, got {value}.")
  if ema_decay is not None and not 0.0 <= ema_decay < 1.0:
    raise ValueError(f"ema_decay must be in [0, 1) or None, got {ema_decay}.")
  if const_examples < 0:
    raise ValueError(f"const_examples must be >= 0 (0: the whole batch), got {const_examples}.")
  if class_weight < 0:
    raise ValueError(f"class_weight must be >= 0, got {class_weight}.")
  if class_weight and encoder_head is None:
    raise ValueError("class_weight > 0 needs encoder_head, f's classifier layer.")
  if contrastive_weight < 0:
    raise ValueError(f"contrastive_weight must be >= 0, got {contrastive_weight}.")
  if adversarial not in losses.DTN_ADVERSARIAL:
    raise ValueError(f"Unknown adversarial game {adversarial!r}; allowed: "
                     f"{', '.join(losses.DTN_ADVERSARIAL)}.")
  if adversarial == "wasserstein" and penalty is None:
    raise ValueError("adversarial='wasserstein' needs a penalty on D (e.g. the gradient "
                     "penalty): an unconstrained critic diverges.")
  noise_dim = int(getattr(generator, "noise_dim", 0) or 0)
  if mode_seeking_weight < 0:
    raise ValueError(f"mode_seeking_weight must be >= 0, got {mode_seeking_weight}.")
  if mode_seeking_weight and not noise_dim:
    raise ValueError(f"mode_seeking_weight={mode_seeking_weight} needs a generator with noise "
                     "(noise_dim > 0, e.g. model.generator.noise_dim=16): without noise "
                     "there is nothing to diversify.")
  d_game_loss, g_game_loss = losses.DTN_ADVERSARIAL[adversarial]
  target_encoder = encoder if target_encoder is None else target_encoder
  const_encoder = encoder if const_encoder is None else const_encoder

  def translate(g_params, g_bs, features, noise=None):
    kwargs = {} if noise is None else {"noise": noise}
    return _apply(generator, g_params, g_bs, features, train=True, **kwargs)

  def draw_noise(key, n):
    return jax.random.normal(key, (n, noise_dim), jnp.float32) if noise_dim else None

  def d_logits(d_params, d_bs, images):
    logits, d_bs = _apply(discriminator, d_params, d_bs, images, train=True)
    # A patch D's [B, (2,) s, s, 3]: every position is an example of its image's class.
    return logits.reshape(-1, logits.shape[-1]), d_bs

  def d_view(images, key, i):  # what D sees of a batch
    return images if d_augment_fn is None else d_augment_fn(images, jax.random.fold_in(key, i))

  def d_logits_of(d_params, d_bs, batches):
    """D's logits of each batch: one call per batch, or one call on them all (d_joint_batch)."""
    if d_joint_batch:
      logits, d_bs = d_logits(d_params, d_bs, jnp.concatenate(batches))
      return jnp.split(logits, len(batches)), d_bs
    out = []
    for x in batches:
      logits, d_bs = d_logits(d_params, d_bs, x)
      out.append(logits)
    return out, d_bs

  def d_loss_fn(d_params, d_bs, fake_s, fake_t, real_t, key):
    fake_s, fake_t, real_t = (d_view(x, key, i) for i, x in enumerate((fake_s, fake_t, real_t)))
    (logits_s, logits_t, logits_r), d_bs = d_logits_of(d_params, d_bs, (fake_s, fake_t, real_t))
    loss = d_game_loss(logits_s, logits_t, logits_r)
    correct = [jnp.argmax(l, -1) == c for l, c in ((logits_s, losses.TERNARY_SOURCE_FAKE),
                                                   (logits_t, losses.TERNARY_TARGET_FAKE),
                                                   (logits_r, losses.TERNARY_TARGET_REAL))]
    accuracy = jnp.mean(jnp.concatenate(correct).astype(jnp.float32))
    metrics = {"d_accuracy": accuracy}
    if penalty is not None:
      critic = lambda x: losses.ternary_realness(d_logits(d_params, d_bs, x)[0])
      metrics["penalty"] = penalty(critic, real_t, fake_s, jax.random.fold_in(key, 5))
      loss = loss + metrics["penalty"]
    metrics["d_loss"] = loss
    return loss, (d_bs, metrics)

  def g_loss_fn(g_params, g_bs, d_params, d_bs, f_variables, f_s, f_t, real_t, alpha, noise,
                key):
    b = f_s.shape[0]
    k = const_examples or b
    inputs = jnp.concatenate([f_s, f_t])
    if mode_seeking_weight:  # the L_CONST translations again, with other noise
      inputs = jnp.concatenate([inputs, f_s[:k]])
      noise_b = draw_noise(jax.random.fold_in(key, 13), k)
      noise = jnp.concatenate([noise, noise_b])
    # One generator call on both domains' features: one batch-norm statistic, as one
    # network would see them.
    drawn, g_bs = translate(g_params, g_bs, inputs, noise)
    fake_s, fake_t, fake = drawn[:b], drawn[b:2 * b], drawn[:2 * b]
    views = (d_view(fake_s, key, 10), d_view(fake_t, key, 11))
    if d_joint_batch:  # D's statistics as in its update: the real targets too, no gradient
      views += (jax.lax.stop_gradient(d_view(real_t, key, 12)),)
    logits_s, logits_t = d_logits_of(d_params, d_bs, views)[0][:2]
    seen = fake_s[:k] if const_augment_fn is None else const_augment_fn(fake_s[:k], key)
    f_seen = const_encoder(f_variables, seen)
    terms = {
        "g_gan": g_game_loss(logits_s, logits_t),
        "const": losses.const_loss(f_s[:k], f_seen, distance=distance),
        "tid": losses.tid_loss(real_t, fake_t, distance=tid_distance or distance),
        "tv": losses.total_variation(fake) if tv_weight else jnp.zeros(()),
    }
    total = (terms["g_gan"] + alpha * terms["const"] + tid_weight * terms["tid"]
             + tv_weight * terms["tv"])
    if class_weight:
      terms["class"] = losses.class_consistency_loss(encoder_head(f_variables, f_s[:k]),
                                                     encoder_head(f_variables, f_seen))
      total = total + class_weight * terms["class"]
    if contrastive_weight:
      terms["contrastive"] = losses.identity_contrastive_loss(
          f_s[:k], f_seen, negatives=f_s[k:] if k < b else None,
          temperature=contrastive_temperature)
      total = total + contrastive_weight * terms["contrastive"]
    if mode_seeking_weight:
      terms["mode_seeking"] = losses.mode_seeking_loss(
          fake_s[:k], drawn[2 * b:], noise[:k], noise[2 * b:], pool=mode_seeking_pool)
      total = total + mode_seeking_weight * terms["mode_seeking"]
    return total, (g_bs, {"g_loss": total, **terms})

  def step(state: DTNState, batch: dict[str, jax.Array], key: jax.Array):
    real_t = imaging.to_float(batch["image"])
    b = real_t.shape[0]
    if "source_features" in batch:  # f cached on fixed variants [B, V, F]: one per example
      cached = batch["source_features"]
      pick = jax.random.randint(jax.random.fold_in(key, 1), (b,), 0, cached.shape[1])
      f_s = jnp.take_along_axis(cached, pick[:, None, None], axis=1)[:, 0]
    else:
      source = imaging.to_float(batch["source_image"])
      if source_augment_fn is not None:  # otherwise deterministic: g is driven by f's features
        source = source_augment_fn(source, key)
      f_s = jax.lax.stop_gradient(encoder(state.f_variables, source))
    if feature_augment_fn is not None:
      f_s = feature_augment_fn(f_s, jax.random.fold_in(key, 2))
    if "target_features" in batch:  # f(target) cached
      f_t = batch["target_features"]
    else:
      f_t = jax.lax.stop_gradient(target_encoder(state.f_variables, real_t))

    noise = draw_noise(jax.random.fold_in(key, 6), 2 * b)  # beside f_s and f_t, both updates
    fake, g_bs = translate(state.g_params, state.g_batch_stats, jnp.concatenate([f_s, f_t]),
                           noise)
    fake = jax.lax.stop_gradient(fake)
    grads, (d_bs, d_metrics) = jax.grad(d_loss_fn, has_aux=True)(
        state.d_params, state.d_batch_stats, fake[:b], fake[b:], real_t,
        jax.random.fold_in(key, 4))
    d_params, d_opt_state, d_metrics["d_grad_norm"] = apply_gradients(
        d_optimizer, grads, state.d_opt_state, state.d_params)

    alpha = jnp.asarray(const_weight, jnp.float32)
    if const_warmup_steps:
      alpha = alpha * jnp.minimum(1.0, state.step.astype(jnp.float32) / const_warmup_steps)
    grads, (g_bs, g_metrics) = jax.grad(g_loss_fn, has_aux=True)(
        state.g_params, g_bs, d_params, d_bs, state.f_variables, f_s, f_t, real_t, alpha,
        noise, jax.random.fold_in(key, 3))
    g_metrics["const_weight"] = alpha
    g_params, g_opt_state, g_metrics["g_grad_norm"] = apply_gradients(
        g_optimizer, grads, state.g_opt_state, state.g_params)
    ema = update_ema(state.ema_g_params, g_params, decay=ema_decay, step=state.step)
    ema_bs = state.ema_g_batch_stats
    if ema is not None and ema_bs:
      _, ema_bs = translate(ema, ema_bs, jnp.concatenate([f_s, f_t]), noise)
    return state.replace(step=state.step + 1, g_params=g_params, d_params=d_params,
                         g_batch_stats=g_bs, d_batch_stats=d_bs, g_opt_state=g_opt_state,
                         d_opt_state=d_opt_state, ema_g_params=ema,
                         ema_g_batch_stats=ema_bs), {**d_metrics, **g_metrics}

  return step


def make_dtn_decoder_step(
    *,
    generator: nn.Module,
    encoder: Encoder,
    g_optimizer: optax.GradientTransformation,
    tid_weight: float,
    tv_weight: float = 0.0,
    distance: str = "mean_squared",
    ema_decay: float | None = None,
) -> Callable[[DTNState, dict[str, jax.Array], jax.Array], tuple[DTNState, Metrics]]:
  """One step of g alone as a decoder of the targets' descriptors: ``tid_weight * L_TID +
  tv_weight * L_TV`` on ``g(encoder(target))`` (``batch["target_features"]`` when f is cached),
  with no D update, no L_GANG and no f on g's outputs. A DTN's first steps (the dtn task's
  ``loss.decoder_warmup_steps``, run by the loop as ``Task.warmup_step``): g then enters the
  adversarial game as a decoder of f's descriptors instead of from its initialisation, at a
  fraction of a full step's cost. The state is :func:`make_dtn_step`'s (D and its optimizer
  are carried unchanged; the EMA of g and its statistics are kept as there).

  Metrics: g_loss, tid, tv, g_grad_norm.

  References:
    Taigman, Polyak & Wolf, "Unsupervised Cross-Domain Image Generation", ICLR 2017, eq. 6
    (L_TID).
  """
  for name, value in (("tid_weight", tid_weight), ("tv_weight", tv_weight)):
    if value < 0:
      raise ValueError(f"{name} must be >= 0, got {value}.")

  def translate(g_params, g_bs, features):
    return _apply(generator, g_params, g_bs, features, train=True)

  def loss_fn(g_params, g_bs, f_t, real_t):
    fake_t, g_bs = translate(g_params, g_bs, f_t)
    tid = losses.tid_loss(real_t, fake_t, distance=distance)
    tv = losses.total_variation(fake_t) if tv_weight else jnp.zeros(())
    total = tid_weight * tid + tv_weight * tv
    return total, (g_bs, {"g_loss": total, "tid": tid, "tv": tv})

  def step(state: DTNState, batch: dict[str, jax.Array], key: jax.Array):
    del key  # deterministic
    real_t = imaging.to_float(batch["image"])
    if "target_features" in batch:  # f(target) cached
      f_t = batch["target_features"]
    else:
      f_t = jax.lax.stop_gradient(encoder(state.f_variables, real_t))
    grads, (g_bs, metrics) = jax.grad(loss_fn, has_aux=True)(
        state.g_params, state.g_batch_stats, f_t, real_t)
    g_params, g_opt_state, metrics["g_grad_norm"] = apply_gradients(
        g_optimizer, grads, state.g_opt_state, state.g_params)
    ema = update_ema(state.ema_g_params, g_params, decay=ema_decay, step=state.step)
    ema_bs = state.ema_g_batch_stats
    if ema is not None and ema_bs:
      _, ema_bs = translate(ema, ema_bs, f_t)
    return state.replace(step=state.step + 1, g_params=g_params, g_batch_stats=g_bs,
                         g_opt_state=g_opt_state, ema_g_params=ema,
                         ema_g_batch_stats=ema_bs), metrics

  return step


def make_translate_fn(generator: nn.Module, encoder: Encoder, *, use_ema: bool = True
                      ) -> Callable[[DTNState, jax.Array], jax.Array]:
  """``translate(state, images) -> g(f(images))`` in eval mode (images float in [-1, 1]); by
  the EMA of g, with its own batch-norm statistics, when the state keeps one and ``use_ema``."""

  def translate(state: DTNState, images: jax.Array) -> jax.Array:
    features = encoder(state.f_variables, images)
    if use_ema and state.ema_g_params is not None:
      return _apply(generator, state.ema_g_params, state.ema_g_batch_stats, features,
                    train=False)[0]
    return _apply(generator, state.g_params, state.g_batch_stats, features, train=False)[0]

  return translate


def init_classifier_state(key: jax.Array, *, model: nn.Module,
                          optimizer: optax.GradientTransformation,
                          image_shape: tuple[int, int, int]) -> ClassifierState:
  """Initialises a classifier and its optimizer from ``key``."""
  p_key, d_key = jax.random.split(key)
  variables = model.init({"params": p_key, "dropout": d_key},
                         jnp.zeros((2, *image_shape), jnp.float32), train=False)
  params, batch_stats = split_variables(variables)
  return ClassifierState(step=jnp.zeros((), jnp.int32), params=params, batch_stats=batch_stats,
                         opt_state=optimizer.init(params))


def make_classifier_step(
    *, model: nn.Module, optimizer: optax.GradientTransformation,
    augment_fn: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
) -> Callable[[ClassifierState, dict[str, jax.Array], jax.Array],
              tuple[ClassifierState, Metrics]]:
  """One supervised step: softmax cross-entropy on ``batch["label"]``.

  The model returns ``{"logits": [B, K], ...}``. Metrics: loss, accuracy, grad_norm.
  ``augment_fn(images, key)`` (e.g. :func:`jgan.augment.from_config`) transforms the batch on
  device first, seeded by the step's key.

  References:
    :func:`jgan.losses.auxiliary_classifier_loss`.
  """

  def loss_fn(params, batch_stats, images, labels, key):
    out, updates = model.apply({"params": params, "batch_stats": batch_stats}, images,
                               train=True, rngs={"dropout": key}, mutable=["batch_stats"])
    loss = losses.auxiliary_classifier_loss(out["logits"], labels)
    accuracy = jnp.mean(jnp.argmax(out["logits"], -1) == labels)
    return loss, (updates["batch_stats"], {"loss": loss, "accuracy": accuracy})

  def step(state: ClassifierState, batch: dict[str, jax.Array], key: jax.Array):
    images = imaging.to_float(batch["image"])
    if augment_fn is not None:  # a key of its own: the dropout stream stays as without it
      images = augment_fn(images, jax.random.fold_in(key, 1))
    grads, (batch_stats, metrics) = jax.grad(loss_fn, has_aux=True)(
        state.params, state.batch_stats, images, batch["label"], key)
    params, opt_state, metrics["grad_norm"] = apply_gradients(
        optimizer, grads, state.opt_state, state.params)
    return state.replace(step=state.step + 1, params=params, batch_stats=batch_stats,
                         opt_state=opt_state), metrics

  return step
