"""The text-to-image task: a text-conditional GAN with a matching-aware, auxiliary-classifier D.

G(noise, sentence embedding) -> image and D(image, sentence embedding) -> (real/fake logit,
class logits) (:mod:`jgan.models.t2i`). The sentence embeddings come with the data (a
captioned dataset, :mod:`jgan.data.captioned`: ``K`` frozen-encoder embeddings and the
attribute labels of every image). One step:

* picks one of each image's K captions at random (the step's key);
* D update: ``matching_aware_discriminator_loss(D(real, text), D(wrong, text), D(G(z, text),
  text))`` where "wrong" is the batch rolled by one (another image with this text, Reed et
  al.'s GAN-CLS), plus ``class_weight`` times the AC-GAN class loss on real (and, weighted
  ``class_fake_weight``, generated) images against the caption's attributes;
* G update: ``matching_aware_generator_loss`` (non-saturating) plus ``class_weight`` times
  the AC-GAN class loss of its images, plus ``ca_kl_weight`` times the conditioning
  augmentation's KL when G uses it.

The losses are jgan.losses functions; the weights are config values.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jgan import config as config_lib
from jgan import imaging, losses, models, optim, text
from jgan.data import captioned
from jgan.state import GANState, split_variables
from jgan.tasks.base import Task

PyTree = Any
Metrics = dict[str, jax.Array]

# Fixed captions of the sample grids (rows), asking for held-out combinations among others.
AVATAR_SAMPLE_CAPTIONS = (
    "a smiling face with long red hair, no glasses and no beard",
    "a person with short black hair, sunglasses and a clean-shaven chin",
    "a serious avatar with a blonde afro, round glasses and a beard",
    "an open-mouthed cartoon face with long blonde hair, no glasses and no beard",
    "a smiling avatar with short grey hair, glasses and a beard",
    "a cartoon character with no glasses and no beard, wearing a hijab",
    "a happy person with a pink afro, an eyepatch and no beard",
    "a serious face with long brown hair, sunglasses and facial hair",
)


def default_config() -> ml_collections.ConfigDict:
  """``jgan.config.base_config()`` plus the groups of a text-to-image GAN."""
  c = config_lib.base_config()
  c.task = "t2i"
  c.data.name = "avatars"
  c.data.sources = ("offline",)
  c.data.image_size = 32
  c.data.num_examples = 10_000
  c.data.text_encoder = "minilm"  # jgan.text.ENCODERS: "minilm" (offline), "roberta-large", "hash"
  c.data.captions_per_image = 4  # K captions per image (phrasings; flowers: Reed's 10)
  c.data.hold_out = True  # avatars: drop captioned.HELD_OUT combinations from "train"
  c.data.captions_dir = ""  # flowers: Reed et al.'s captions (the folder with text_c10/)
  c.model = ml_collections.ConfigDict()
  c.model.latent_dim = 100
  c.model.generator = ml_collections.ConfigDict(
      {"name": "dcgan", "width": 64, "text_features": 128, "conditioning": "projection"})
  c.model.discriminator = ml_collections.ConfigDict(
      {"name": "dcgan", "width": 64, "text_features": 128, "normalization": "batch"})
  c.loss = ml_collections.ConfigDict()
  c.loss.wrong_weight = 0.5  # GAN-CLS: weight of (real image, wrong text); fakes get 1 - it
  c.loss.label_smoothing = 0.0
  c.loss.class_weight = 1.0  # AC-GAN class loss in D's and G's objectives (0: none)
  c.loss.class_fake_weight = 0.0  # D's class loss on generated images (Odena et al.: 1)
  c.loss.ca_kl_weight = 1.0  # conditioning augmentation's KL (generator.conditioning)
  c.optim = optim.two_player_config()
  c.ema_decay = 0.0
  c.sample_captions = AVATAR_SAMPLE_CAPTIONS  # rows of the sample grids
  c.num_samples = 64  # grid: each sample caption x num_samples // len(captions) noises
  return c


def _apply(module: nn.Module, params, batch_stats, *args, train: bool,
           rngs: dict[str, jax.Array] | None = None, collect_kl: bool = False):
  """Runs a t2i model; returns (output, new batch_stats, ca_kl or 0)."""
  variables = {"params": params}
  if batch_stats:
    variables["batch_stats"] = batch_stats
  mutable = (["batch_stats"] if train and batch_stats else []) + (
      ["intermediates"] if collect_kl else [])
  if not mutable:
    return module.apply(variables, *args, train=train, rngs=rngs or {}), batch_stats, 0.0
  out, updates = module.apply(variables, *args, train=train, rngs=rngs or {}, mutable=mutable)
  kl = updates.get("intermediates", {}).get("ca_kl", (0.0,))[0] if collect_kl else 0.0
  return out, updates.get("batch_stats", batch_stats), kl


def init_t2i_state(key: jax.Array, *, generator: nn.Module, discriminator: nn.Module,
                   g_optimizer: optax.GradientTransformation,
                   d_optimizer: optax.GradientTransformation, latent_dim: int, text_dim: int,
                   image_shape: tuple[int, int, int], use_ema: bool = False) -> GANState:
  """Initialises G(z, text), D(x, text) and their optimizers from ``key``."""
  g_key, d_key, c_key = jax.random.split(key, 3)
  z = jnp.zeros((2, latent_dim), jnp.float32)
  t = jnp.zeros((2, text_dim), jnp.float32)
  x = jnp.zeros((2, *image_shape), jnp.float32)
  g_vars = generator.init({"params": g_key, "condition": c_key}, z, t, train=False)
  g_params, g_bs = split_variables({k: v for k, v in g_vars.items() if k != "intermediates"})
  d_params, d_bs = split_variables(discriminator.init({"params": d_key}, x, t, train=False))
  return GANState(
      step=jnp.zeros((), jnp.int32), g_params=g_params, d_params=d_params, g_batch_stats=g_bs,
      d_batch_stats=d_bs, g_opt_state=g_optimizer.init(g_params),
      d_opt_state=d_optimizer.init(d_params),
      ema_g_params=jax.tree.map(jnp.copy, g_params) if use_ema else None)


def make_t2i_step(*, generator: nn.Module, discriminator: nn.Module,
                  g_optimizer: optax.GradientTransformation,
                  d_optimizer: optax.GradientTransformation, latent_dim: int,
                  num_classes: tuple[int, ...], wrong_weight: float = 0.5,
                  label_smoothing: float = 0.0, class_weight: float = 1.0,
                  class_fake_weight: float = 0.0, ca_kl_weight: float = 0.0,
                  ema_decay: float | None = None
                  ) -> Callable[[GANState, dict[str, jax.Array], jax.Array],
                                tuple[GANState, Metrics]]:
  """Builds one text-to-image step (see the module docstring).

  The batch holds ``image`` uint8 [B, H, W, C], ``text_embedding`` float [B, K, E] and
  ``attributes`` int [B, A] (-1: not given). Metrics: d_loss, g_loss, d_gan, g_gan,
  d_class, g_class, d_real, d_wrong, d_fake (mean D probabilities of the three kinds of
  pair), class_accuracy_real / class_accuracy_fake (D's classifier, all attributes), ca_kl
  and the gradient norms.

  References:
    Reed et al., "Generative Adversarial Text to Image Synthesis", ICML 2016, Algorithm 1;
    Odena, Olah & Shlens, "Conditional Image Synthesis with Auxiliary Classifier GANs",
    ICML 2017, eq. 2.
  """
  for name, value in (("class_weight", class_weight), ("class_fake_weight", class_fake_weight),
                      ("ca_kl_weight", ca_kl_weight)):
    if value < 0:
      raise ValueError(f"{name} must be >= 0, got {value}.")
  if ema_decay is not None and not 0.0 <= ema_decay < 1.0:
    raise ValueError(f"ema_decay must be in [0, 1) or None, got {ema_decay}.")
  use_classes = class_weight > 0
  kl_on = getattr(generator, "conditioning", "projection") == "augmentation"
  offsets = np.cumsum((0,) + tuple(num_classes))

  def class_accuracy(logits, labels):
    hits, count = 0.0, 0.0
    for a in range(len(num_classes)):
      pred = jnp.argmax(logits[:, offsets[a]:offsets[a + 1]], axis=-1)
      present = labels[:, a] >= 0
      hits = hits + jnp.sum(jnp.where(present, pred == labels[:, a], False))
      count = count + jnp.sum(present)
    return hits / jnp.maximum(count, 1)

  def generate(g_params, g_bs, key, text_emb):
    k_z, k_c = jax.random.split(key)
    z = jax.random.normal(k_z, (text_emb.shape[0], latent_dim), jnp.float32)
    return _apply(generator, g_params, g_bs, z, text_emb, train=True,
                  rngs={"condition": k_c}, collect_kl=kl_on)

  def d_loss_fn(d_params, d_bs, real, fake, text_emb, labels):
    (d_real, c_real), d_bs, _ = _apply(discriminator, d_params, d_bs, real, text_emb, train=True)
    wrong = jnp.roll(real, 1, axis=0)
    (d_wrong, _), d_bs, _ = _apply(discriminator, d_params, d_bs, wrong, text_emb, train=True)
    (d_fake, c_fake), d_bs, _ = _apply(discriminator, d_params, d_bs, fake, text_emb, train=True)
    gan = losses.matching_aware_discriminator_loss(
        d_real, d_wrong, d_fake, wrong_weight=wrong_weight, label_smoothing=label_smoothing)
    metrics = {"d_gan": gan, "d_real": jnp.mean(jax.nn.sigmoid(d_real)),
               "d_wrong": jnp.mean(jax.nn.sigmoid(d_wrong)),
               "d_fake": jnp.mean(jax.nn.sigmoid(d_fake))}
    loss = gan
    if use_classes:
      cls = losses.auxiliary_classifier_discriminator_loss(
          c_real, c_fake, labels, num_classes=num_classes, fake_weight=class_fake_weight)
      loss = loss + class_weight * cls
      metrics["d_class"] = cls
      metrics["class_accuracy_real"] = class_accuracy(c_real, labels)
    metrics["d_loss"] = loss
    return loss, (d_bs, metrics)

  def g_loss_fn(g_params, g_bs, d_params, d_bs, key, text_emb, labels):
    fake, g_bs, kl = generate(g_params, g_bs, key, text_emb)
    (d_fake, c_fake), _, _ = _apply(discriminator, d_params, d_bs, fake, text_emb, train=True)
    gan = losses.matching_aware_generator_loss(d_fake)
    metrics = {"g_gan": gan}
    loss = gan
    if use_classes:
      cls = losses.auxiliary_classifier_generator_loss(c_fake, labels, num_classes=num_classes)
      loss = loss + class_weight * cls
      metrics["g_class"] = cls
      metrics["class_accuracy_fake"] = class_accuracy(c_fake, labels)
    if kl_on:
      loss = loss + ca_kl_weight * kl
      metrics["ca_kl"] = kl
    metrics["g_loss"] = loss
    return loss, (g_bs, metrics)

  def step(state: GANState, batch: dict[str, jax.Array], key: jax.Array):
    real = imaging.to_float(batch["image"])
    captions = jnp.asarray(batch["text_embedding"], jnp.float32)
    labels = jnp.asarray(batch["attributes"], jnp.int32)
    b, k = captions.shape[:2]
    pick = jax.random.randint(jax.random.fold_in(key, 0), (b,), 0, k)
    text_emb = jnp.take_along_axis(captions, pick[:, None, None], axis=1)[:, 0]

    fake, g_bs, _ = generate(state.g_params, state.g_batch_stats, jax.random.fold_in(key, 1),
                             text_emb)
    grads, (d_bs, d_metrics) = jax.grad(d_loss_fn, has_aux=True)(
        state.d_params, state.d_batch_stats, real, jax.lax.stop_gradient(fake), text_emb,
        labels)
    updates, d_opt_state = d_optimizer.update(grads, state.d_opt_state, state.d_params)
    d_params = optax.apply_updates(state.d_params, updates)
    d_metrics["d_grad_norm"] = optax.global_norm(grads)

    grads, (g_bs, g_metrics) = jax.grad(g_loss_fn, has_aux=True)(
        state.g_params, g_bs, d_params, d_bs, jax.random.fold_in(key, 2), text_emb, labels)
    updates, g_opt_state = g_optimizer.update(grads, state.g_opt_state, state.g_params)
    g_params = optax.apply_updates(state.g_params, updates)
    g_metrics["g_grad_norm"] = optax.global_norm(grads)
    ema = state.ema_g_params
    if ema is not None:
      ema = optax.incremental_update(g_params, ema, step_size=1.0 - (ema_decay or 0.0))
    new_state = state.replace(
        step=state.step + 1, g_params=g_params, d_params=d_params, g_batch_stats=g_bs,
        d_batch_stats=d_bs, g_opt_state=g_opt_state, d_opt_state=d_opt_state, ema_g_params=ema)
    return new_state, {**d_metrics, **g_metrics}

  return step


def make_t2i_sample_fn(generator: nn.Module):
  """``sample(state, {"z": [n, L], "text": [n, E]}) -> {"samples"[, "samples_ema"]}``, eval mode."""

  def sample(state: GANState, inputs: dict[str, jax.Array]) -> dict[str, jax.Array]:
    out = {"samples": _apply(generator, state.g_params, state.g_batch_stats, inputs["z"],
                             inputs["text"], train=False)[0]}
    if state.ema_g_params is not None:
      out["samples_ema"] = _apply(generator, state.ema_g_params, state.g_batch_stats,
                                  inputs["z"], inputs["text"], train=False)[0]
    return out

  return sample


def _model_kwargs(group: ml_collections.ConfigDict) -> tuple[str, dict]:
  kwargs = group.to_dict()
  return kwargs.pop("name"), kwargs


def grid_inputs(key: jax.Array, n: int, *, caption_embeddings: np.ndarray,
                latent_dim: int) -> dict[str, jax.Array]:
  """``n`` inputs: caption ``i // per_row`` x noise ``i % per_row`` (the same noises in every
  row), ``per_row = max(1, n // len(captions))``; rows repeat when n is larger."""
  c = len(caption_embeddings)
  per_row = max(1, n // c)
  rows = (np.arange(n) // per_row) % c
  z = jax.random.normal(key, (per_row, latent_dim), jnp.float32)
  return {"z": z[jnp.arange(n) % per_row],
          "text": jnp.asarray(caption_embeddings[rows], jnp.float32)}


def build(config: ml_collections.ConfigDict, *, image_shape: tuple[int, int, int],
          num_classes: int | None = None) -> Task:
  """The Task of a text-to-image GAN described by ``config`` (see :func:`default_config`)."""
  del num_classes  # the attribute spec comes from the captioned dataset
  encoder = config.data.get("text_encoder", "")
  if not encoder:
    raise ValueError("The t2i task needs a captioned dataset: set config.data.text_encoder to "
                     f"one of {', '.join(text.ENCODERS)}.")
  text_dim = text.encoder_dim(encoder)
  _, counts = captioned.attribute_spec(config.data)
  g_name, g_kwargs = _model_kwargs(config.model.generator)
  d_name, d_kwargs = _model_kwargs(config.model.discriminator)
  generator = models.build_text_generator(g_name, image_shape=image_shape, **g_kwargs)
  discriminator = models.build_text_discriminator(
      d_name, image_shape=image_shape,
      num_classes=sum(counts) if config.loss.class_weight > 0 else 0, **d_kwargs)
  g_opt, d_opt = optim.two_player_optimizers(config.optim)
  latent_dim = config.model.latent_dim
  ema_decay = config.ema_decay or None
  captions = tuple(config.sample_captions)
  if not captions:
    raise ValueError("config.sample_captions is empty; give the captions of the sample grids.")
  caption_embeddings = text.get_encoder(encoder).encode(list(captions))

  init = functools.partial(
      init_t2i_state, generator=generator, discriminator=discriminator, g_optimizer=g_opt,
      d_optimizer=d_opt, latent_dim=latent_dim, text_dim=text_dim, image_shape=image_shape,
      use_ema=ema_decay is not None)
  step = make_t2i_step(
      generator=generator, discriminator=discriminator, g_optimizer=g_opt, d_optimizer=d_opt,
      latent_dim=latent_dim, num_classes=counts, wrong_weight=config.loss.wrong_weight,
      label_smoothing=config.loss.label_smoothing, class_weight=config.loss.class_weight,
      class_fake_weight=config.loss.class_fake_weight, ca_kl_weight=config.loss.ca_kl_weight,
      ema_decay=ema_decay)
  sample_inputs = functools.partial(grid_inputs, caption_embeddings=caption_embeddings,
                                    latent_dim=latent_dim)
  return Task(
      init=init, step=step, sample=make_t2i_sample_fn(generator), sample_inputs=sample_inputs,
      examples_per_step=config.batch_size, evaluate=None,
      describe=(f"T2I: G={g_name}({g_kwargs.get('conditioning', 'projection')}) D={d_name} "
                f"text={encoder} ({text_dim}-d) GAN-CLS wrong_weight={config.loss.wrong_weight}"
                f" class_weight={config.loss.class_weight} attributes={counts}"))


def sentence_inputs(task_config: ml_collections.ConfigDict, sentences: list[str], *,
                    key: jax.Array, latent_dim: int) -> dict[str, jax.Array]:
  """Inputs of the sample function for the given sentences, one noise vector each."""
  embeddings = text.get_encoder(task_config.data.text_encoder).encode(sentences)
  return {"z": jax.random.normal(key, (len(sentences), latent_dim), jnp.float32),
          "text": jnp.asarray(embeddings)}
