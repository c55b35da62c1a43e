"""The unconditional GAN task: generator + discriminator, any loss family and penalty."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from jgan import config as config_lib
from jgan import data as data_lib
from jgan import augment, latent, losses, models, optim, penalties, steps
from jgan.evaluation import features, generative
from jgan.tasks import base
from jgan.tasks.base import Task


def default_config() -> ml_collections.ConfigDict:
  """``jgan.config.base_config()`` plus the groups of a GAN: model, loss, penalty, optim."""
  c = config_lib.base_config()
  c.task = "gan"
  c.model = ml_collections.ConfigDict()
  c.model.latent_dim = 100
  # z's prior (jgan.latent.PRIORS): "normal", or "mixture" of latent_components Gaussians of
  # std latent_scale with means uniform in [-latent_spread, latent_spread]^d (GM-GAN)
  c.model.latent_prior = "normal"
  c.model.latent_components = 10
  c.model.latent_spread = 1.0
  c.model.latent_scale = 1.0
  # name + that model's own fields (see jgan.models); the image shape comes from the data.
  c.model.generator = ml_collections.ConfigDict({"name": "mlp"})
  c.model.discriminator = ml_collections.ConfigDict({"name": "mlp"})
  c.loss = ml_collections.ConfigDict()
  c.loss.name = "non_saturating"  # jgan.losses.LOSS_FAMILIES
  c.loss.label_smoothing = 0.0  # one-sided: real targets become 1 - label_smoothing
  # Top-k G updates (Sinha et al. 2020): G learns from the k samples D scores most real, k
  # shrinking from the batch by top_k_decay every top_k_decay_every steps to top_k x batch.
  c.loss.top_k = 1.0  # 1: off (every sample)
  c.loss.top_k_decay = 0.99
  c.loss.top_k_decay_every = 100
  # Your own losses, replacing the family's (see docs/composing.md): "package.module:function"
  # or "path/to/file.py:function" (jgan.config.function_ref(fn) writes it), called as
  # generator_fn(d_fake, batch) and discriminator_fn(d_real, d_fake, batch) -> scalar.
  c.loss.generator_fn = ""
  c.loss.discriminator_fn = ""
  c.penalty = ml_collections.ConfigDict()
  c.penalty.name = "none"  # "none" or a name in jgan.penalties.PENALTIES
  c.penalty.weight = 10.0
  c.optim = optim.two_player_config()  # name, g_lr, d_lr, b1, b2
  c.compute_dtype = "float32"  # or "bfloat16": activations; params and losses stay float32
  c.augment = ml_collections.ConfigDict()
  c.augment.flip = False  # random left-right flips of the real images
  c.augment.rotation = 0.0  # random rotations up to this many degrees
  c.n_critic = 1  # D updates per G update
  c.ema_decay = 0.0  # EMA of G's params; 0 turns it off
  # DiffAugment of every image D sees, real and fake: "" or comma-separated from
  # jgan.augment.DIFF_AUGMENT_POLICIES, e.g. "colour,translation,cutout".
  c.d_augment = ""
  # Evaluation every eval_every steps (0: off) and at the end; see jgan.evaluation.
  c.eval.metrics = ("fid", "kid", "pr")  # from jgan.evaluation.generative.METRICS
  c.eval.feature_network = "classifier"  # or "inception_v3" (needs eval.inception_weights)
  c.eval.classifier = "mnist_classifier"  # built-in classifier experiment, trained if missing
  c.eval.classifier_workdir = ""  # default: runs/<eval.classifier>
  c.eval.feature_layer = "features"
  c.eval.inception_weights = ""  # path to pytorch-fid's pt_inception-2015-12-05-6726825d.pth
  c.eval.num_samples = 5000  # generated images per evaluation (fixed latents)
  c.eval.num_real = 5000  # real images of eval.split the samples are compared with
  c.eval.split = "train"
  c.eval.batch_size = 250
  c.eval.use_ema = True  # score the EMA generator when there is one
  c.eval.best_metric = "fid"  # keeps checkpoints_best/ by FID under the feature network
  c.eval.best_mode = "min"
  return c


COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def _model_kwargs(group: ml_collections.ConfigDict) -> tuple[str, dict]:
  kwargs = group.to_dict()
  return kwargs.pop("name"), kwargs


def _top_k_schedule(config):
  """``step -> k`` from config.loss.top_k*, or None when top_k is 1 (off)."""
  fraction = config.loss.get("top_k", 1.0)
  if fraction == 1.0:
    return None
  if not 0.0 < fraction < 1.0:
    raise ValueError(f"config.loss.top_k = {fraction}: the fraction of G's batch kept at the "
                     "end of the schedule must be in (0, 1), or 1 for off.")
  return functools.partial(
      losses.top_k_count, batch_size=config.batch_size, min_fraction=fraction,
      decay=config.loss.get("top_k_decay", 0.99),
      decay_every=config.loss.get("top_k_decay_every", 100))


def _custom_losses(config, g_loss, d_loss, image_shape):
  """The family's losses with ``config.loss.generator_fn``/``discriminator_fn`` in place.

  Returns ``(g_loss, d_loss, note)``; with a custom function both losses take the batch
  (:func:`jgan.steps.make_gan_step`'s ``loss_takes_batch``) and ``note`` names them ("" when
  there is none). Each function is traced once here on abstract inputs, so a wrong signature
  or a non-scalar result fails before training with the key named.
  """
  g_ref = config.loss.get("generator_fn", "")
  d_ref = config.loss.get("discriminator_fn", "")
  if not (g_ref or d_ref):
    return g_loss, d_loss, ""
  if d_ref and config.loss.label_smoothing:
    raise ValueError("config.loss.label_smoothing applies to the built-in families only; with "
                     "config.loss.discriminator_fn set, smooth the labels in your function.")
  family_g, family_d = g_loss, d_loss
  g_loss = (config_lib.resolve_function(g_ref, key="loss.generator_fn") if g_ref
            else lambda d_fake, batch: family_g(d_fake))
  d_loss = (config_lib.resolve_function(d_ref, key="loss.discriminator_fn") if d_ref
            else lambda d_real, d_fake, batch: family_d(d_real, d_fake))
  b = 2
  logits = jax.ShapeDtypeStruct((b,), jnp.float32)
  batch = {"image": jax.ShapeDtypeStruct((b, *image_shape), jnp.float32)}
  for key, ref, fn, args in (("generator_fn", g_ref, g_loss, (logits, batch)),
                             ("discriminator_fn", d_ref, d_loss, (logits, logits, batch))):
    if not ref:
      continue
    call = "(d_fake, batch)" if key == "generator_fn" else "(d_real, d_fake, batch)"
    try:
      out = jax.eval_shape(fn, *args)
    except Exception as e:  # pylint: disable=broad-except  (user code: one clear message)
      name = getattr(fn, "__name__", "fn")
      raise ValueError(f"config.loss.{key} = {ref!r}: calling it as {name}{call} with "
                       f"logits [B] and batch['image'] [B, {', '.join(map(str, image_shape))}] "
                       f"failed: {type(e).__name__}: {e}") from e
    if getattr(out, "shape", None) != ():
      raise ValueError(f"config.loss.{key} = {ref!r} must return a scalar; it returned "
                       f"{getattr(out, 'shape', type(out).__name__)}.")
  names = [f"{k}={r.rpartition(':')[2]}" for k, r in (("G", g_ref), ("D", d_ref)) if r]
  return g_loss, d_loss, f" (custom {' '.join(names)})"


def prerequisites(config: ml_collections.ConfigDict) -> dict[str, base.Prerequisite]:
  """The evaluation's feature network, when it is a jgan classifier run (``"features"``)."""
  e = config.eval
  if e.feature_network != "classifier" or not tuple(e.metrics):
    return {}
  return {"features": base.Prerequisite(
      experiment=e.classifier, workdir=base.default_workdir(e.classifier_workdir, e.classifier),
      kind=base.FEATURE_NETWORK, purpose="the evaluation's feature network",
      layer=e.feature_layer, when=base.FOR_EVALUATION)}


def eval_network(eval_config: ml_collections.ConfigDict,
                 prerequisites: dict[str, Any] | None) -> features.FeatureNetwork:
  """The feature network ``eval_config.feature_network`` names: the classifier prerequisite
  (``"features"``) or the FID Inception from its weights file."""
  kind = eval_config.feature_network
  if kind == "classifier":
    return base.prerequisite(prerequisites, "features", "The GAN evaluation")
  if kind == "inception_v3":
    return features.inception_network(eval_config.inception_weights)
  raise ValueError(f"Unknown eval.feature_network {kind!r}; allowed: 'classifier', "
                   "'inception_v3'.")


def build(config: ml_collections.ConfigDict, *, image_shape: tuple[int, int, int],
          num_classes: int | None = None,
          prerequisites: dict[str, Any] | None = None) -> Task:  # pylint: disable=redefined-outer-name
  """The Task for an unconditional GAN described by ``config`` (see :func:`default_config`).

  ``prerequisites``: ``{"features": FeatureNetwork}`` for an evaluation under a classifier
  (:func:`prerequisites`), resolved by :mod:`jgan.runs`.
  """
  del num_classes  # unconditional
  g_name, g_kwargs = _model_kwargs(config.model.generator)
  d_name, d_kwargs = _model_kwargs(config.model.discriminator)
  if config.compute_dtype not in COMPUTE_DTYPES:
    raise ValueError(f"Unknown compute_dtype {config.compute_dtype!r}; allowed: "
                     f"{', '.join(COMPUTE_DTYPES)}.")
  for kwargs in (g_kwargs, d_kwargs):
    kwargs.setdefault("dtype", COMPUTE_DTYPES[config.compute_dtype])
  generator = models.build_generator(g_name, image_shape=image_shape, **g_kwargs)
  discriminator = models.build_discriminator(d_name, image_shape=image_shape, **d_kwargs)
  g_loss, d_loss = losses.get_loss_family(config.loss.name)
  if config.loss.label_smoothing:
    d_loss = functools.partial(d_loss, label_smoothing=config.loss.label_smoothing)
    d_loss(jnp.zeros(1), jnp.zeros(1))  # fails now, not mid-run, for families without it
  g_loss, d_loss, custom = _custom_losses(config, g_loss, d_loss, image_shape)
  g_opt, d_opt = optim.two_player_optimizers(
      config.optim, total_steps=config.total_steps, d_updates_per_step=config.n_critic)
  latent_dim = config.model.latent_dim
  sample_latent = latent.from_config(config.model)
  ema_decay = config.ema_decay or None

  init = functools.partial(
      steps.init_gan_state, generator=generator, discriminator=discriminator,
      g_optimizer=g_opt, d_optimizer=d_opt, latent_dim=latent_dim, image_shape=image_shape,
      use_ema=ema_decay is not None)
  step = steps.make_gan_step(
      generator=generator, discriminator=discriminator, g_optimizer=g_opt, d_optimizer=d_opt,
      generator_loss=g_loss, discriminator_loss=d_loss, latent_dim=latent_dim,
      latent_fn=sample_latent, n_critic=config.n_critic,
      penalty=penalties.from_config(config.penalty.name, weight=config.penalty.weight),
      ema_decay=ema_decay, augment_fn=augment.from_config(config.augment),
      loss_takes_batch=bool(custom),
      d_augment_fn=augment.diff_augment_from_config(config.get("d_augment", "")),
      top_k=_top_k_schedule(config))

  generative.check_metrics(config.eval.metrics)
  evaluate = functools.partial(_evaluate, config=config, generator=generator,
                               sample_latent=sample_latent, real_cache={},
                               network_fn=lambda: eval_network(config.eval, prerequisites))

  return Task(
      init=init, step=step, sample=steps.make_sample_fn(generator), sample_inputs=sample_latent,
      examples_per_step=config.batch_size * config.n_critic, evaluate=evaluate,
      describe=(f"GAN: G={g_name} D={d_name} loss={config.loss.name}{custom} "
                f"penalty={config.penalty.name} n_critic={config.n_critic} "
                f"ema={ema_decay or 'off'}"))


def _evaluate(state, *, config, generator, sample_latent, real_cache, network_fn
              ) -> dict[str, float]:
  """FID/KID/precision-recall of ``eval.num_samples`` samples (fixed latents) vs real data.

  The feature network and the real features are made at the first call (``real_cache``)."""
  e = config.eval
  if not real_cache:
    network = network_fn()
    real = data_lib.from_config(config.data, split=e.split)
    real_cache.update(network=network, real=features.real_features(
        network, real, num=e.num_real, batch_size=e.batch_size))
  network, real = real_cache["network"], real_cache["real"]
  use_ema = e.use_ema and state.ema_g_params is not None
  params = state.ema_g_params if use_ema else state.g_params
  batch_stats = state.g_batch_stats
  if use_ema and batch_stats:  # the EMA generator's own statistics, over one fixed batch
    z = sample_latent(jax.random.key(config.seed + 7920), e.batch_size)
    batch_stats = jax.jit(steps.ema_generator_batch_stats, static_argnums=0)(
        generator, params, batch_stats, z)
  variables = {"params": params}
  if batch_stats:
    variables["batch_stats"] = batch_stats

  def generate(key):
    return generator.apply(variables, sample_latent(key, e.batch_size), train=False)

  fake = generative.sample_features(network, generate, num=e.num_samples,
                                    batch_size=e.batch_size,
                                    key=jax.random.key(config.seed + 7919))
  return generative.score(real, fake, metrics=e.metrics, network=network.name)


def dcgan_recipe(c: ml_collections.ConfigDict, *, width: int = 64) -> ml_collections.ConfigDict:
  """Radford et al. 2016 DCGAN: conv G/D with batch norm, non-saturating BCE, Adam 2e-4, b1 0.5.

  Sets the model and optimisation groups of a GAN config in place (the data decides the
  resolution and channels) and returns it.

  References:
    Radford, Metz & Chintala, "Unsupervised Representation Learning with Deep Convolutional
    GANs", ICLR 2016, Sec. 4 (Adam 0.0002, beta1 0.5, N(0, 0.02) init, LeakyReLU 0.2 in D).
  """
  c.model.latent_dim = 100
  c.model.generator = ml_collections.ConfigDict(
      {"name": "dcgan", "width": width, "upsample": "subpixel",  # or "resize_conv"
       "output_upsample": "",  # "": as upsample; the RGB layer alone
       "output_filter": ""})  # "median3x3": edge-preserving smoothing of what is drawn
  c.model.discriminator = ml_collections.ConfigDict(
      {"name": "dcgan", "width": width, "normalization": "batch"})
  c.loss.name = "non_saturating"
  c.penalty.name = "none"
  c.optim.name = "adam"
  c.optim.g_lr = c.optim.d_lr = 2e-4
  c.optim.b1, c.optim.b2 = 0.5, 0.999
  c.n_critic = 1
  return c


def wgan_gp_recipe(c: ml_collections.ConfigDict, *, width: int = 64) -> ml_collections.ConfigDict:
  """Gulrajani et al. 2017 WGAN-GP on the DCGAN architecture, in place.

  The critic has layer norm instead of batch norm (the penalty is per example), Wasserstein
  loss + gradient penalty weight 10, 5 critic updates per generator update, Adam 1e-4 with
  betas (0, 0.9).

  References:
    Gulrajani et al., "Improved Training of Wasserstein GANs", NeurIPS 2017, Algorithm 1
    (lambda = 10, n_critic = 5, alpha = 0.0001, beta1 = 0, beta2 = 0.9) and Sec. 4 (no batch
    norm in the critic; layer normalisation recommended).
  """
  dcgan_recipe(c, width=width)
  c.model.discriminator.normalization = "layer"
  c.loss.name = "wasserstein"
  c.penalty.name = "gradient_penalty"
  c.penalty.weight = 10.0
  c.optim.g_lr = c.optim.d_lr = 1e-4
  c.optim.b1, c.optim.b2 = 0.0, 0.9
  c.n_critic = 5
  return c
