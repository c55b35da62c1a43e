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

Evaluation (``evaluate``, every ``eval_every`` steps, at the end, and ``python -m
jgan.evaluate --workdir W``), for captioned avatars, of the metrics in ``config.eval.metrics``:

* ``"attributes"``: ``eval.num_examples`` captions of *held-out* attribute combinations
  (:func:`jgan.data.captioned.random_avatar_labels`, phrased by ``avatar_caption``, fixed per
  ``eval.seed``), one image each (fixed noise; the EMA generator when there is one), judged
  by a multi-head attribute classifier of real avatars (``eval.classifier``, trained first
  when its workdir has none): ``attr_acc/<attribute>`` (labels -1 skipped),
  ``attr_mean_acc``, ``attr_all_correct`` (every attribute of the caption shown) and
  ``attr_combo_correct`` (the held-out combination's attributes shown); the same for the
  real test avatars (``attr_real_*``: the judge's own accuracy, the ceiling) and for the
  generated images scored against the labels of another caption of the set
  (``attr_shuffled_*``: a derangement of the captions, the chance level given the
  generator's marginal distribution of attributes);
* ``"fid"``, ``"kid"``: one image per real test avatar from its first caption against the
  real test avatars, in the classifier's feature space (``fid/<network>``); with
  ``"attributes"``, the judge's reading of those images against the captions of attribute
  combinations seen in training (``attr_seen_*``, test avatars of held-out combinations
  left out): beside ``attr_*``, the gap says how much is generalisation to new combinations;
* ``"diversity"``: the first ``eval.diversity_captions`` captions of the evaluation set, each
  under ``eval.diversity_samples`` noise vectors: the mean pairwise distance of the judge's
  features of one caption's images (:func:`jgan.evaluation.metrics.mean_pairwise_distance`,
  ``diversity/<network>``), beside the same figure for as many real avatars freshly rendered
  with that caption's attributes (``diversity_real/<network>``,
  :func:`jgan.data.captioned.render_labelled_avatars`, rendered once per process).

Generation and judging are one function, compiled once per run.
"""

from __future__ import annotations

import functools
import json
import logging
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jgan import batching, imaging, losses, models, optim, penalties, steps, text
from jgan import config as config_lib
from jgan import data as data_lib
from jgan.data import captioned
from jgan.evaluation import attributes as attributes_lib
from jgan.evaluation import features, generative
from jgan.evaluation import metrics as metrics_lib
from jgan.state import GANState, split_variables
from jgan.tasks import base
from jgan.tasks.base import Task

log = logging.getLogger("jgan.t2i")

PyTree = Any
Metrics = dict[str, jax.Array]
EVAL_METRICS = ("attributes", "fid", "kid", "diversity")
MODE_SEEKING_SPACES = ("pixels", "discriminator")  # where loss.mode_seeking_weight measures

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
  # avatars: one caption per image of an attribute combination recombined from the training
  # values (captioned.recombined_avatar_labels: "marginals", "uniform", "unseen_pairs"; "": off), for
  # loss.recombined_fraction
  c.data.recombined_captions = ""
  # each training image carries another with the same attributes ("partner_image"), which
  # loss.pack=2 needs
  c.data.partner_images = False
  # > 1: that many partners an image, one drawn per step (the real pairs change every epoch)
  c.data.partners_per_image = 1
  c.data.captions_dir = ""  # flowers: Reed et al.'s captions (the folder with text_c10/)
  c.model = ml_collections.ConfigDict()
  c.model.latent_dim = 100
  c.model.generator = ml_collections.ConfigDict(
      {"name": "dcgan", "width": 64, "text_features": 128, "conditioning": "projection",
       "block_conditioning": False})  # True: noise + text modulate every block (DF-GAN)
  c.model.discriminator = ml_collections.ConfigDict(
      {"name": "dcgan", "width": 64, "text_features": 128, "normalization": "batch",
       "head": "concat"})  # models.t2i.HEADS: "projection" (Miyato & Koyama)
  c.loss = ml_collections.ConfigDict()
  c.loss.wrong_weight = 0.5  # GAN-CLS: weight of (real image, wrong text); fakes get 1 - it
  c.loss.label_smoothing = 0.0
  c.loss.class_weight = 1.0  # AC-GAN class loss in D's and G's objectives (0: none)
  c.loss.class_fake_weight = 0.0  # D's class loss on generated images (Odena et al.: 1)
  c.loss.ca_kl_weight = 1.0  # conditioning augmentation's KL (generator.conditioning)
  # DF-GAN's MA-GP on real matching pairs (image and sentence; 0: off; per-example D needed:
  # model.discriminator.normalization "layer" or "none") and its power.
  c.loss.ma_gp_weight = 0.0
  c.loss.ma_gp_power = 6.0
  c.loss.mode_seeking_weight = 0.0  # MSGAN: G's images for two noises of one caption apart
  c.loss.mode_seeking_pool = 1  # > 1: compare them average-pooled (coarse differences only)
  c.loss.mode_seeking_space = "pixels"  # MODE_SEEKING_SPACES: or D's features ("discriminator")
  # a float: the term's weight goes linearly from mode_seeking_weight to it over total_steps
  c.loss.mode_seeking_weight_end = ml_collections.config_dict.placeholder(float)
  # a float: G's class-loss weight alone (None: class_weight, in D's and G's objectives)
  c.loss.g_class_weight = ml_collections.config_dict.placeholder(float)
  # InfoGAN: a head on D reads G's noise back from G's image, D and G minimise its error, so
  # the noise must change what is drawn (0: off) (first latent_regression_dims; 0: all)
  c.loss.latent_regression_weight = 0.0
  c.loss.latent_regression_dims = 0
  # share of G's batch conditioned on recombined captions (needs data.recombined_captions)
  c.loss.recombined_fraction = 0.0
  c.loss.recombined_adversarial = True  # False: recombined rows answer to D's class heads only
  # 2: D judges pairs of one caption, two real images of the same attributes against G's
  # images under two noises (PacGAN in the condition; needs data.partner_images)
  c.loss.pack = 1
  c.optim = optim.two_player_config()
  c.ema_decay = 0.0
  c.sample_captions = AVATAR_SAMPLE_CAPTIONS  # rows of the sample grids
  c.eval.metrics = ("attributes",)  # EVAL_METRICS (captioned avatars; () for no evaluation)
  c.eval.classifier = "avatar_attributes_classifier"  # the judge, trained if missing
  c.eval.classifier_workdir = ""  # default: runs/<eval.classifier>
  c.eval.num_examples = 1000  # held-out-combination captions generated per evaluation
  c.eval.diversity_captions = 100  # "diversity": captions x samples, judged pairwise
  c.eval.diversity_samples = 16
  c.eval.batch_size = 250
  c.eval.seed = 0  # the captions and noise of the evaluation
  c.eval.best_metric = "attr_all_correct"
  c.eval.best_mode = "max"
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
                   image_shape: tuple[int, int, int], use_ema: bool = False,
                   pack: int = 1) -> GANState:
  """Initialises G(z, text), D(x, text) and their optimizers from ``key``; D takes ``pack``
  images stacked on the channel axis (see :func:`make_t2i_step`)."""
  g_key, d_key, c_key = jax.random.split(key, 3)
  z = jnp.zeros((2, latent_dim), jnp.float32)
  t = jnp.zeros((2, text_dim), jnp.float32)
  h, w, c = image_shape
  x = jnp.zeros((2, h, w, c * pack), jnp.float32)
  g_vars = generator.init({"params": g_key, "condition": c_key}, z, t, train=False)
  g_params, g_bs = split_variables({k: v for k, v in g_vars.items() if k != "intermediates"})
  d_vars = discriminator.init({"params": d_key}, x, t, train=False)
  d_params, d_bs = split_variables({k: v for k, v in d_vars.items() if k != "intermediates"})
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
                  ema_decay: float | None = None, ma_gp_weight: float = 0.0,
                  ma_gp_power: float = 6.0, mode_seeking_weight: float = 0.0,
                  mode_seeking_pool: int = 1, mode_seeking_space: str = "pixels",
                  mode_seeking_weight_end: float | None = None, ramp_steps: int = 0,
                  g_class_weight: float | None = None,
                  recombined_fraction: float = 0.0, recombined_adversarial: bool = True,
                  latent_regression_weight: float = 0.0, latent_regression_dims: int = 0,
                  pack: int = 1) -> Callable[[GANState, dict[str, jax.Array], jax.Array],
                                tuple[GANState, Metrics]]:
  """Builds one text-to-image step (see the module docstring).

  ``ma_gp_weight`` > 0 adds :func:`jgan.penalties.matching_aware_gradient_penalty` (power
  ``ma_gp_power``) on the real matching pairs to D's loss (metric ``ma_gp``);
  ``mode_seeking_weight`` > 0 adds :func:`jgan.losses.mode_seeking_loss` to G's loss, from a
  second generation of the batch's captions under new noise (metric ``mode_seeking``), on
  images average-pooled over ``mode_seeking_pool`` pixels, or with ``mode_seeking_space=
  "discriminator"`` on D's trunk features of the two images (what D sees of them, each
  divided by the batch's mean absolute feature, not differentiated, so the term does not
  depend on the features' scale); with ``mode_seeking_weight_end`` its weight goes linearly
  from ``mode_seeking_weight`` at step 0 to that value at ``ramp_steps`` (then stays);
  ``g_class_weight`` (None: ``class_weight``) weighs the AC-GAN class loss in G's objective
  alone (D's keeps ``class_weight``);
  ``latent_regression_weight`` > 0 adds InfoGAN's term
  (:func:`jgan.losses.latent_regression_loss`) to D's and G's losses: D's ``latent`` head
  (``latent_outputs`` = ``latent_regression_dims``, 0: all ``latent_dim``) predicts the first
  that many dimensions of the noise of G's images (metrics ``d_latent``, ``g_latent``), so
  G's noise must change what D can see in the image;
  ``recombined_fraction`` > 0 conditions that share of G's batch in G's update (drawn per
  example by the step's key) on the batch's ``recombined_embedding`` [B, E] /
  ``recombined_attributes`` [B, A] instead of the image's own caption: captions of attribute
  combinations no image may show, judged by D's attribute heads and, unless
  ``recombined_adversarial`` is False, its pair score (StarGAN's random target labels, with
  GECA's recombined text; :func:`jgan.data.captioned.recombined_avatar_labels`). D's update
  never sees them: it would learn that those combinations are G's.

  ``pack=2`` makes every pair D judges two images of one caption stacked on the channel axis
  (PacGAN, in the condition): real = the image and its ``partner_image`` [B, H, W, C] (another
  image of the same attributes, :func:`jgan.data.captioned.partner_indices`; [B, P, H, W, C]:
  P candidates, one drawn per example by the step's key), wrong = another
  row's real pair, fake = G's images of the caption under two noises (one generator call on
  2B rows). A G that draws one image per caption makes identical pairs, which real pairs
  never are, so D can tell them apart: the variety within a caption becomes part of what G
  must match. D must be initialised for 2C channels (:func:`init_t2i_state`'s ``pack``).

  The batch holds ``image`` uint8 [B, H, W, C], ``text_embedding`` float [B, K, E] and
  ``attributes`` int [B, A] (-1: not given). Metrics: d_loss, g_loss, d_gan, g_gan,
  d_class, g_class, d_real, d_wrong, d_fake (mean D probabilities of the three kinds of
  pair), class_accuracy_real / class_accuracy_fake (D's classifier, all attributes), ca_kl
  and the gradient norms.

  References:
    Reed et al., "Generative Adversarial Text to Image Synthesis", ICML 2016, Algorithm 1;
    Odena, Olah & Shlens, "Conditional Image Synthesis with Auxiliary Classifier GANs",
    ICML 2017, eq. 2; Choi et al., "StarGAN", CVPR 2018 (random target labels); Andreas,
    "Good-Enough Compositional Data Augmentation", ACL 2020; Chen et al., "InfoGAN",
    NeurIPS 2016, eq. 5 (latent regression).
  """
  if not 0.0 <= recombined_fraction <= 1.0:
    raise ValueError(f"recombined_fraction must be in [0, 1], got {recombined_fraction}.")
  if mode_seeking_space not in MODE_SEEKING_SPACES:
    raise ValueError(f"mode_seeking_space={mode_seeking_space!r} is not supported; allowed: "
                     f"{', '.join(MODE_SEEKING_SPACES)}.")
  if mode_seeking_space == "discriminator" and pack != 1:
    raise ValueError("mode_seeking_space='discriminator' needs pack=1 (D judges single images).")
  if pack not in (1, 2):
    raise ValueError(f"pack={pack!r} is not supported; allowed: 1 (single images), 2 (pairs "
                     "of one caption).")
  g_class_weight = class_weight if g_class_weight is None else g_class_weight
  latent_dims = latent_regression_dims or latent_dim
  if latent_regression_weight > 0:
    if pack != 1:
      raise ValueError("latent_regression_weight > 0 needs pack=1 (D judges single images).")
    if not 0 <= latent_regression_dims <= latent_dim:
      raise ValueError(f"latent_regression_dims must be in [0, latent_dim={latent_dim}] "
                       f"(0: all), got {latent_regression_dims}.")
    if getattr(discriminator, "latent_outputs", 0) != latent_dims:
      raise ValueError(f"latent_regression_weight > 0 needs a discriminator with "
                       f"latent_outputs={latent_dims} (the regressed noise dimensions), got "
                       f"{getattr(discriminator, 'latent_outputs', None)}.")
  if mode_seeking_weight_end is not None and (mode_seeking_weight_end < 0 or ramp_steps < 1):
    raise ValueError(f"mode_seeking_weight_end={mode_seeking_weight_end} needs a value >= 0 "
                     f"and ramp_steps >= 1 (got {ramp_steps}).")
  for name, value in (("class_weight", class_weight), ("g_class_weight", g_class_weight),
                      ("class_fake_weight", class_fake_weight),
                      ("ca_kl_weight", ca_kl_weight), ("ma_gp_weight", ma_gp_weight),
                      ("mode_seeking_weight", mode_seeking_weight),
                      ("latent_regression_weight", latent_regression_weight)):
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

  def noise(key, text_emb):
    return jax.random.normal(jax.random.split(key)[0], (text_emb.shape[0], latent_dim),
                             jnp.float32)

  def generate(g_params, g_bs, key, text_emb, z=None):
    z = noise(key, text_emb) if z is None else z
    return _apply(generator, g_params, g_bs, z, text_emb, train=True,
                  rngs={"condition": jax.random.split(key)[1]}, collect_kl=kl_on)

  def generate_packed(g_params, g_bs, key, text_emb):
    """G's images for D: [B, H, W, C * pack] (pack 2: two noises a caption, one G call)."""
    if pack == 1:
      return generate(g_params, g_bs, key, text_emb)
    b = text_emb.shape[0]
    z = jnp.concatenate([noise(key, text_emb), noise(jax.random.fold_in(key, 1), text_emb)])
    fake, g_bs, kl = generate(g_params, g_bs, key, jnp.concatenate([text_emb, text_emb]), z=z)
    return jnp.concatenate([fake[:b], fake[b:]], axis=-1), g_bs, kl

  def d_with_intermediates(d_params, d_bs, images, text_emb):
    """D's outputs on ``images``, its new batch_stats and its sown intermediates (train)."""
    variables = {"params": d_params, **({"batch_stats": d_bs} if d_bs else {})}
    out, updates = discriminator.apply(variables, images, text_emb, train=True,
                                       mutable=["batch_stats", "intermediates"])
    return out, updates.get("batch_stats", d_bs), updates["intermediates"]

  def d_loss_fn(d_params, d_bs, real, fake, text_emb, labels, z_fake):
    (d_real, c_real), d_bs, _ = _apply(discriminator, d_params, d_bs, real, text_emb, train=True)
    wrong = jnp.roll(real, 1, axis=0)
    (d_wrong, _), d_bs, _ = _apply(discriminator, d_params, d_bs, wrong, text_emb, train=True)
    if latent_regression_weight:
      (d_fake, c_fake), d_bs, inter = d_with_intermediates(d_params, d_bs, fake, text_emb)
    else:
      (d_fake, c_fake), d_bs, _ = _apply(discriminator, d_params, d_bs, fake, text_emb,
                                         train=True)
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
    if ma_gp_weight:
      critic = lambda x, e: _apply(discriminator, d_params, d_bs, x, e, train=True)[0][0]
      metrics["ma_gp"] = penalties.matching_aware_gradient_penalty(
          critic, real, text_emb, weight=ma_gp_weight, power=ma_gp_power)
      loss = loss + metrics["ma_gp"]
    if latent_regression_weight:
      metrics["d_latent"] = losses.latent_regression_loss(inter["noise_prediction"][0],
                                                          z_fake[:, :latent_dims])
      loss = loss + latent_regression_weight * metrics["d_latent"]
    metrics["d_loss"] = loss
    return loss, (d_bs, metrics)

  def d_features(d_params, d_bs, images, text_emb):
    """D's outputs on ``images`` and its trunk features [B, F] (train mode, stats dropped)."""
    out, _, inter = d_with_intermediates(d_params, d_bs, images, text_emb)
    return out, inter["features"][0]

  def mode_seeking_scale(step):
    if mode_seeking_weight_end is None:
      return mode_seeking_weight
    t = jnp.clip(step.astype(jnp.float32) / ramp_steps, 0.0, 1.0)
    return mode_seeking_weight + (mode_seeking_weight_end - mode_seeking_weight) * t

  def g_loss_fn(g_params, g_bs, d_params, d_bs, key, text_emb, labels, recombined, step):
    fake, g_bs, kl = generate_packed(g_params, g_bs, key, text_emb)
    if latent_regression_weight or (mode_seeking_weight
                                    and mode_seeking_space == "discriminator"):
      (d_fake, c_fake), _, inter = d_with_intermediates(d_params, d_bs, fake, text_emb)
      feats = inter["features"][0]
    else:
      (d_fake, c_fake), _, _ = _apply(discriminator, d_params, d_bs, fake, text_emb, train=True)
    if recombined is not None and not recombined_adversarial:
      # Recombined rows answer to D's attribute heads only: its pair score has never seen
      # their combinations on a real image, so it would pull them back to seen ones.
      per_row = jax.vmap(losses.matching_aware_generator_loss)(d_fake)
      gan = jnp.sum(jnp.where(recombined, 0.0, per_row)) / jnp.maximum(
          jnp.sum(~recombined), 1)
    else:
      gan = losses.matching_aware_generator_loss(d_fake)
    metrics = {"g_gan": gan}
    loss = gan
    if use_classes:
      cls = losses.auxiliary_classifier_generator_loss(c_fake, labels, num_classes=num_classes)
      loss = loss + g_class_weight * cls
      metrics["g_class"] = cls
      metrics["class_accuracy_fake"] = class_accuracy(c_fake, labels)
    if kl_on:
      loss = loss + ca_kl_weight * kl
      metrics["ca_kl"] = kl
    if mode_seeking_weight:  # the same captions (and conditioning draw) under a second noise
      z_b = noise(jax.random.fold_in(key, 1), text_emb)
      if pack == 2:  # the pair's second image is that second noise's
        fake, fake_b = jnp.split(fake, 2, axis=-1)
      else:
        fake_b, _, _ = generate(g_params, g_bs, key, text_emb, z=z_b)
      if mode_seeking_space == "discriminator":
        _, feats_b = d_features(d_params, d_bs, fake_b, text_emb)
        scale = jax.lax.stop_gradient(jnp.mean(jnp.abs(feats)) + 1e-8)
        metrics["mode_seeking"] = losses.mode_seeking_loss(
            feats / scale, feats_b / scale, noise(key, text_emb), z_b)
      else:
        metrics["mode_seeking"] = losses.mode_seeking_loss(
            fake, fake_b, noise(key, text_emb), z_b, pool=mode_seeking_pool)
      loss = loss + mode_seeking_scale(step) * metrics["mode_seeking"]
    if latent_regression_weight:
      metrics["g_latent"] = losses.latent_regression_loss(
          inter["noise_prediction"][0], noise(key, text_emb)[:, :latent_dims])
      loss = loss + latent_regression_weight * metrics["g_latent"]
    metrics["g_loss"] = loss
    return loss, (g_bs, metrics)

  def step(state: GANState, batch: dict[str, jax.Array], key: jax.Array):
    real = imaging.to_float(batch["image"])
    if pack == 2:
      if "partner_image" not in batch:
        raise ValueError("pack=2 needs batches with 'partner_image' (another image of the same "
                         "attributes): set config.data.partner_images=True.")
      partner = batch["partner_image"]
      if partner.ndim == real.ndim + 1:  # [B, P, H, W, C]: draw one of P partners a row
        pick = jax.random.randint(jax.random.fold_in(key, 4), (partner.shape[0],), 0,
                                  partner.shape[1])
        partner = jnp.take_along_axis(partner, pick[:, None, None, None, None], axis=1)[:, 0]
      real = jnp.concatenate([real, imaging.to_float(partner)], axis=-1)
    captions = jnp.asarray(batch["text_embedding"], jnp.float32)
    labels = jnp.asarray(batch["attributes"], jnp.int32)
    b, k = captions.shape[:2]
    pick = jax.random.randint(jax.random.fold_in(key, 0), (b,), 0, k)
    text_emb = jnp.take_along_axis(captions, pick[:, None, None], axis=1)[:, 0]
    g_text, g_labels, swap = text_emb, labels, None
    if recombined_fraction:
      if "recombined_embedding" not in batch:
        raise ValueError("recombined_fraction > 0 needs batches with 'recombined_embedding' and "
                         "'recombined_attributes': set config.data.recombined_captions="
                         "marginals (or unseen_pairs).")
      swap = jax.random.bernoulli(jax.random.fold_in(key, 3), recombined_fraction, (b,))
      g_text = jnp.where(swap[:, None], jnp.asarray(batch["recombined_embedding"], jnp.float32),
                         text_emb)
      g_labels = jnp.where(swap[:, None],
                           jnp.asarray(batch["recombined_attributes"], jnp.int32), labels)

    fake, g_bs, _ = generate_packed(state.g_params, state.g_batch_stats,
                                    jax.random.fold_in(key, 1), text_emb)
    grads, (d_bs, d_metrics) = jax.grad(d_loss_fn, has_aux=True)(
        state.d_params, state.d_batch_stats, real, jax.lax.stop_gradient(fake), text_emb,
        labels, noise(jax.random.fold_in(key, 1), text_emb))
    d_params, d_opt_state, d_metrics["d_grad_norm"] = steps.apply_gradients(
        d_optimizer, grads, state.d_opt_state, state.d_params)

    grads, (g_bs, g_metrics) = jax.grad(g_loss_fn, has_aux=True)(
        state.g_params, g_bs, d_params, d_bs, jax.random.fold_in(key, 2), g_text, g_labels,
        swap, state.step)
    g_params, g_opt_state, g_metrics["g_grad_norm"] = steps.apply_gradients(
        g_optimizer, grads, state.g_opt_state, state.g_params)
    ema = steps.update_ema(state.ema_g_params, g_params, decay=ema_decay, step=state.step)
    new_state = state.replace(
        step=state.step + 1, g_params=g_params, d_params=d_params, g_batch_stats=g_bs,
        d_batch_stats=d_bs, g_opt_state=g_opt_state, d_opt_state=d_opt_state, ema_g_params=ema)
    return new_state, {**d_metrics, **g_metrics}

  return step


def ema_batch_stats(generator: nn.Module, state: GANState, z: jax.Array,
                    text: jax.Array) -> PyTree:
  """The EMA generator's own batch-norm statistics over one batch of (noise, sentence)
  (:func:`jgan.steps.standing_batch_stats`; conditioning augmentation, if on, sampled with a
  fixed key)."""
  def apply_train(batch_stats, inputs):
    return _apply(generator, state.ema_g_params, batch_stats, *inputs, train=True,
                  rngs={"condition": jax.random.key(0)})[1]
  return steps.standing_batch_stats(apply_train, state.g_batch_stats, (z[None], text[None]))


def make_t2i_sample_fn(generator: nn.Module):
  """``sample(state, {"z": [n, L], "text": [n, E]}) -> {"samples"[, "samples_ema"]}``, eval mode."""

  def sample(state: GANState, inputs: dict[str, jax.Array]) -> dict[str, jax.Array]:
    out = {"samples": _apply(generator, state.g_params, state.g_batch_stats, inputs["z"],
                             inputs["text"], train=False)[0]}
    if state.ema_g_params is not None:  # with its own statistics, not the raw G's
      ema_bs = ema_batch_stats(generator, state, inputs["z"], inputs["text"])
      out["samples_ema"] = _apply(generator, state.ema_g_params, ema_bs,
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


def prerequisites(config: ml_collections.ConfigDict) -> dict[str, base.Prerequisite]:
  """``"judge"``: the attribute classifier of the evaluation (when it has metrics)."""
  e = config.eval
  if not tuple(e.get("metrics", ())) or config.data.name != "avatars":
    return {}
  return {"judge": base.Prerequisite(
      experiment=e.classifier, workdir=base.default_workdir(e.classifier_workdir, e.classifier),
      kind=base.FEATURE_NETWORK, purpose="the t2i attribute judge", when=base.FOR_EVALUATION)}


def build(config: ml_collections.ConfigDict, *, image_shape: tuple[int, int, int],
          num_classes: int | None = None,
          prerequisites: dict[str, Any] | None = None) -> Task:  # pylint: disable=redefined-outer-name
  """The Task of a text-to-image GAN described by ``config`` (see :func:`default_config`).

  ``prerequisites``: ``{"judge": FeatureNetwork}`` for the evaluation (:func:`prerequisites`).
  """
  del num_classes  # the attribute spec comes from the captioned dataset
  encoder = config.data.get("text_encoder", "")
  if not encoder:
    raise ValueError("The t2i task needs a captioned dataset: set config.data.text_encoder to "
                     f"one of {', '.join(text.ENCODERS)}.")
  text_dim = text.encoder_dim(encoder)
  pack = int(config.loss.get("pack", 1))
  if pack == 2 and not config.data.get("partner_images", False):
    raise ValueError("config.loss.pack=2 needs a second real image of each caption in the "
                     "batches: set --config.data.partner_images=True.")
  if config.loss.get("recombined_fraction", 0.0) and not config.data.get("recombined_captions"):
    raise ValueError(f"config.loss.recombined_fraction={config.loss.recombined_fraction} needs "
                     "recombined captions in the batches: set "
                     "--config.data.recombined_captions=marginals (captioned avatars).")
  _, counts = captioned.attribute_spec(config.data)
  g_name, g_kwargs = _model_kwargs(config.model.generator)
  d_name, d_kwargs = _model_kwargs(config.model.discriminator)
  generator = models.build_text_generator(g_name, image_shape=image_shape, **g_kwargs)
  latent_regression = config.loss.get("latent_regression_weight", 0.0)
  if latent_regression:
    d_kwargs["latent_outputs"] = (config.loss.get("latent_regression_dims", 0)
                                  or config.model.latent_dim)
  discriminator = models.build_text_discriminator(
      d_name, image_shape=image_shape,
      num_classes=sum(counts) if config.loss.class_weight > 0 else 0, **d_kwargs)
  g_opt, d_opt = optim.two_player_optimizers(config.optim, total_steps=config.total_steps)
  latent_dim = config.model.latent_dim
  ema_decay = config.ema_decay or None
  captions = tuple(config.sample_captions)
  if not captions:
    raise ValueError("config.sample_captions is empty; give the captions of the sample grids.")
  caption_embeddings = text.get_encoder(encoder).encode(list(captions))

  init = functools.partial(
      init_t2i_state, generator=generator, discriminator=discriminator, g_optimizer=g_opt,
      d_optimizer=d_opt, latent_dim=latent_dim, text_dim=text_dim, image_shape=image_shape,
      use_ema=ema_decay is not None, pack=pack)
  step = make_t2i_step(
      generator=generator, discriminator=discriminator, g_optimizer=g_opt, d_optimizer=d_opt,
      latent_dim=latent_dim, num_classes=counts, wrong_weight=config.loss.wrong_weight,
      label_smoothing=config.loss.label_smoothing, class_weight=config.loss.class_weight,
      class_fake_weight=config.loss.class_fake_weight, ca_kl_weight=config.loss.ca_kl_weight,
      ema_decay=ema_decay, ma_gp_weight=config.loss.get("ma_gp_weight", 0.0),
      ma_gp_power=config.loss.get("ma_gp_power", 6.0),
      mode_seeking_weight=config.loss.get("mode_seeking_weight", 0.0),
      mode_seeking_pool=config.loss.get("mode_seeking_pool", 1),
      mode_seeking_space=config.loss.get("mode_seeking_space", "pixels"),
      mode_seeking_weight_end=config.loss.get("mode_seeking_weight_end", None),
      ramp_steps=config.total_steps, g_class_weight=config.loss.get("g_class_weight", None),
      recombined_fraction=config.loss.get("recombined_fraction", 0.0),
      recombined_adversarial=config.loss.get("recombined_adversarial", True),
      latent_regression_weight=latent_regression,
      latent_regression_dims=config.loss.get("latent_regression_dims", 0), pack=pack)
  sample_inputs = functools.partial(grid_inputs, caption_embeddings=caption_embeddings,
                                    latent_dim=latent_dim)
  return Task(
      init=init, step=step, sample=make_t2i_sample_fn(generator), sample_inputs=sample_inputs,
      examples_per_step=config.batch_size,
      evaluate=make_t2i_evaluate(config, generator=generator, image_shape=image_shape,
                                 judge_fn=lambda: base.prerequisite(
                                     prerequisites, "judge", "The t2i evaluation")),
      describe=(f"T2I: G={g_name}({g_kwargs.get('conditioning', 'projection')}"
                f"{', every block' if g_kwargs.get('block_conditioning') else ''}) "
                f"D={d_name}({d_kwargs.get('head', 'concat')} head) "
                f"text={encoder} ({text_dim}-d) GAN-CLS wrong_weight={config.loss.wrong_weight}"
                f" class_weight={config.loss.class_weight} attributes={counts}"
                f"{' D on pairs of one caption' if pack == 2 else ''}"))


def interpolation_inputs(embedding_a: np.ndarray, embedding_b: np.ndarray, *, steps: int,
                         z: jax.Array) -> dict[str, jax.Array]:
  """Inputs of a caption-interpolation grid: row r (noise ``z[r]``) x column s.

  Column ``s`` of every row uses ``(1 - t_s) * embedding_a + t_s * embedding_b``, ``t_s =
  s / (steps - 1)`` (a linear mix of the two sentence embeddings, [E] each); the noise is the
  same along a row. Returns ``{"z": [R * steps, L], "text": [R * steps, E]}``, row-major.
  """
  if steps < 2:
    raise ValueError(f"An interpolation needs steps >= 2 (both ends), got {steps}.")
  a = jnp.asarray(embedding_a, jnp.float32).reshape(-1)
  b = jnp.asarray(embedding_b, jnp.float32).reshape(-1)
  if a.shape != b.shape:
    raise ValueError(f"The two sentence embeddings differ in size: {a.shape} and {b.shape}.")
  t = jnp.linspace(0.0, 1.0, steps)[:, None]
  mixed = (1.0 - t) * a[None] + t * b[None]  # [steps, E]
  rows = z.shape[0]
  return {"z": jnp.repeat(jnp.asarray(z, jnp.float32), steps, axis=0),
          "text": jnp.tile(mixed, (rows, 1))}


def sentence_inputs(task_config: ml_collections.ConfigDict, sentences: list[str], *,
                    key: jax.Array, latent_dim: int) -> dict[str, jax.Array]:
  """Inputs of the sample function for the given sentences, one noise vector each."""
  embeddings = text.get_encoder(task_config.data.text_encoder).encode(sentences)
  return {"z": jax.random.normal(key, (len(sentences), latent_dim), jnp.float32),
          "text": jnp.asarray(embeddings)}


# ----------------------------------------------------------------------------- evaluation


def held_out_eval_set(data_config: ml_collections.ConfigDict, *, num: int, seed: int
                      ) -> tuple[list[str], np.ndarray, np.ndarray]:
  """(captions, labels int32 [num, A], combination mask bool [num, A]) of the evaluation.

  Row ``i`` asks for the held-out combination ``captioned.HELD_OUT[i % len(HELD_OUT)]`` (the
  mask marks its attributes), its other attributes uniform, phrased by
  :func:`~jgan.data.captioned.avatar_caption` with a seeded generator.
  """
  if data_config.name != "avatars":
    raise ValueError(f"The t2i attribute evaluation needs captioned avatars (config.data.name="
                     f"'avatars'), not {data_config.name!r}; set --config.eval.metrics='()'.")
  labels = captioned.random_avatar_labels(num, seed=seed)
  names = list(captioned.AVATAR_ATTRIBUTES)
  mask = np.zeros(labels.shape, bool)
  for i in range(num):
    for attr in captioned.HELD_OUT[i % len(captioned.HELD_OUT)]:
      mask[i, names.index(attr)] = True
  rng = np.random.default_rng([seed, 2])
  captions = [captioned.avatar_caption(row, rng=rng) for row in labels]
  return captions, labels, mask


@functools.cache
def _eval_data(data_json: str, eval_json: str):
  """The evaluation's captions (embedded), labels, combination mask and real test avatars."""
  d = ml_collections.ConfigDict(json.loads(data_json))
  e = ml_collections.ConfigDict(json.loads(eval_json))
  captions, labels, mask = held_out_eval_set(d, num=e.num_examples, seed=e.seed)
  embeddings = text.cached_embeddings(d.text_encoder, captions)
  test = data_lib.from_config(d, split="test")
  return embeddings, labels, mask, test


_LABELLED: dict[tuple, np.ndarray] = {}


def _labelled_avatars(labels: np.ndarray, per_label: int, size: int, seed: int) -> np.ndarray:
  """captioned.render_labelled_avatars, rendered once per process (~10 ms an avatar)."""
  key = (labels.tobytes(), labels.shape, per_label, size, seed)
  if key not in _LABELLED:
    _LABELLED[key] = captioned.render_labelled_avatars(labels, per_label=per_label,
                                                       image_size=size, seed=seed)
  return _LABELLED[key]


def _check_judge(judge: features.FeatureNetwork, image_shape: tuple[int, int, int],
                 num_logits: int) -> features.FeatureNetwork:
  """The attribute classifier, checked to have one head per captioned attribute."""
  out = jax.eval_shape(judge.apply, jax.ShapeDtypeStruct((1, *image_shape), jnp.float32))
  if out["logits"].shape[-1] != num_logits:
    raise ValueError(
        f"The classifier {judge.name} has {out['logits'].shape[-1]} outputs; the t2i "
        f"attribute evaluation needs an attribute classifier with {num_logits} (one head per "
        "captioned attribute, e.g. --config.eval.classifier=avatar_attributes_classifier).")
  log.info("T2I evaluation judge: %s.", judge.name)
  return judge


def make_t2i_evaluate(config: ml_collections.ConfigDict, *, generator: nn.Module,
                      image_shape: tuple[int, int, int],
                      judge_fn: Callable[[], features.FeatureNetwork] | None = None
                      ) -> Callable[[GANState], dict[str, float]] | None:
  """``evaluate(state) -> {metric: float}`` (see the module docstring); None without metrics.

  ``judge_fn() -> FeatureNetwork`` gives the attribute classifier (the task's prerequisite
  ``"judge"``). The host data and the judge are loaded on the first call; the generate-and-judge function
  is jitted once (the state is an argument), its noise and captions fixed by ``eval.seed``.
  """
  e = config.eval
  metrics = tuple(e.get("metrics", ()))
  if not metrics:
    return None
  bad = sorted(set(metrics) - set(EVAL_METRICS))
  if bad:
    raise ValueError(f"Unknown t2i eval.metrics {bad}; available: {', '.join(EVAL_METRICS)}.")
  if config.data.name != "avatars":
    raise ValueError(f"The t2i evaluation judges captioned avatars; config.data.name="
                     f"{config.data.name!r} has no attribute classifier: set "
                     "--config.eval.metrics='()'.")
  names, counts = captioned.attribute_spec(config.data)
  latent_dim = config.model.latent_dim
  eval_keys = ("metrics", "classifier", "classifier_workdir", "num_examples", "batch_size",
               "seed")
  eval_json = json.dumps({k: e[k] for k in eval_keys}, sort_keys=True, default=list)
  div_captions = int(e.get("diversity_captions", 100))
  div_samples = int(e.get("diversity_samples", 16))
  if "diversity" in metrics and (div_samples < 2 or not 1 <= div_captions <= e.num_examples):
    raise ValueError(
        f"The t2i diversity needs eval.diversity_samples >= 2 (got {div_samples}) and "
        f"1 <= eval.diversity_captions <= eval.num_examples={e.num_examples} (got "
        f"{div_captions}).")
  data_json = config.data.to_json(sort_keys=True)
  cache: dict[str, Any] = {}

  def judge_generated(judge, state: GANState, inputs: jax.Array) -> dict[str, jax.Array]:
    """inputs [B, L + E] (noise, sentence embedding) -> the judge on G's images."""
    params, batch_stats = state.g_params, state.g_batch_stats
    if state.ema_g_params is not None:  # the EMA generator with its own statistics
      params = state.ema_g_params
      batch_stats = ema_batch_stats(generator, state, inputs[:, :latent_dim],
                                    inputs[:, latent_dim:])
    images = _apply(generator, params, batch_stats, inputs[:, :latent_dim],
                    inputs[:, latent_dim:], train=False)[0]
    return judge.apply(images)

  def setup():
    embeddings, labels, mask, test = _eval_data(data_json, eval_json)
    judge = (judge_fn() if judge_fn is not None
             else base.prerequisite(None, "judge", "The t2i evaluation"))
    judge = _check_judge(judge, tuple(image_shape), sum(counts))
    rng = np.random.default_rng([e.seed, 3])
    z = rng.standard_normal((len(labels), latent_dim)).astype(np.float32)
    batch = min(e.batch_size, len(labels))
    real_fn = jax.jit(lambda x: judge.apply(imaging.to_float(x)))
    real = batching.map_in_batches(real_fn, test.images, batch_size=batch)
    cache.update(
        judge=judge, labels=labels, mask=mask, test=test, real=real, batch=batch,
        inputs=np.concatenate([z, embeddings], axis=1),
        # Compiled once per run: the state is an argument, the judge's weights constants.
        fn=jax.jit(functools.partial(judge_generated, judge)),
        perm=attributes_lib.derangement(len(labels), seed=e.seed))
    if {"fid", "kid"} & set(metrics):
      z_real = rng.standard_normal((len(test), latent_dim)).astype(np.float32)
      cache["real_inputs"] = np.concatenate(
          [z_real, test.extras["text_embedding"][:, 0].astype(np.float32)], axis=1)
    if "diversity" in metrics:  # caption-major: caption i's samples are rows i*S .. i*S+S-1
      z_div = np.random.default_rng([e.seed, 4]).standard_normal(
          (div_samples, latent_dim)).astype(np.float32)
      cache["diversity_inputs"] = np.concatenate(
          [np.tile(z_div, (div_captions, 1)),
           np.repeat(embeddings[:div_captions], div_samples, axis=0)], axis=1)
      rendered = _labelled_avatars(labels[:div_captions], div_samples, image_shape[0], e.seed)
      real_div = batching.map_in_batches(
          real_fn, rendered.reshape(-1, *rendered.shape[2:]), batch_size=batch)
      cache["diversity_real"] = metrics_lib.mean_pairwise_distance(
          np.asarray(real_div["features"]).reshape(div_captions, div_samples, -1))

  def evaluate(state: GANState) -> dict[str, float]:
    if not cache:
      setup()
    c = cache
    fn = functools.partial(c["fn"], state)
    results: dict[str, float] = {}
    if "attributes" in metrics:
      out = batching.map_in_batches(fn, c["inputs"], batch_size=c["batch"])
      pred = attributes_lib.attribute_predictions(out["logits"], counts)
      labels, mask, perm = c["labels"], c["mask"], c["perm"]
      results.update(attributes_lib.attribute_accuracy(pred, labels, names, prefix="attr_"))
      results["attr_combo_correct"] = attributes_lib.combination_accuracy(pred, labels, mask)
      results.update(attributes_lib.attribute_accuracy(pred, labels[perm], names,
                                                       prefix="attr_shuffled_"))
      results["attr_shuffled_combo_correct"] = attributes_lib.combination_accuracy(
          pred, labels[perm], mask[perm])
      real_pred = attributes_lib.attribute_predictions(c["real"]["logits"], counts)
      results.update(attributes_lib.attribute_accuracy(
          real_pred, c["test"].extras["attributes"], names, prefix="attr_real_"))
    wanted = tuple(m for m in metrics if m in ("fid", "kid"))
    if wanted:
      fake = batching.map_in_batches(fn, c["real_inputs"], batch_size=c["batch"])
      results.update(generative.score(
          {"features": c["real"]["features"]}, {"features": fake["features"]}, metrics=wanted,
          network=c["judge"].name))
      if "attributes" in metrics:  # the same images, judged: captions of seen combinations
        test_labels = c["test"].extras["attributes"]
        seen = ~captioned.held_out_mask(test_labels)
        pred = attributes_lib.attribute_predictions(fake["logits"], counts)
        results.update(attributes_lib.attribute_accuracy(pred[seen], test_labels[seen], names,
                                                         prefix="attr_seen_"))
    if "diversity" in metrics:
      out = batching.map_in_batches(fn, c["diversity_inputs"], batch_size=c["batch"])
      name = c["judge"].name
      results[f"diversity/{name}"] = metrics_lib.mean_pairwise_distance(
          np.asarray(out["features"]).reshape(div_captions, div_samples, -1))
      results[f"diversity_real/{name}"] = c["diversity_real"]
    return results

  return evaluate
