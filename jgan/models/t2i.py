"""Text-conditional DCGANs (Reed et al. 2016), built on jgan's DCGAN generator and critic.

G: the sentence embedding is projected (Dense + LeakyReLU, or conditioning augmentation:
a Gaussian whose mean and log-variance are projected, sampled with the ``"condition"`` rng in
train mode, Zhang et al. 2017) to ``text_features`` and concatenated to the noise; the result
drives a :class:`~jgan.models.dcgan.DCGANGenerator` (sub-pixel upsampling, PERF_NOTES.md).

D: a :class:`~jgan.models.dcgan.DCGANDiscriminator` with ``features_only=True`` maps the image
to a 4x4 feature map; the class head (AC-GAN) reads it alone, so D must find the classes in
the image, not in the text. The text projection is replicated over the 4x4 positions and
concatenated to the map; a 1x1 convolution (+ normalisation + LeakyReLU) and a dense layer
give the real/fake logit of the (image, text) pair.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jgan.models.dcgan import DCGANDiscriminator, DCGANGenerator, _batch_norm
from jgan.models.layers import dcgan_init, dcgan_scale_init

Dtype = Any
CONDITIONINGS = ("projection", "augmentation")
HEADS = ("concat", "projection")


class TextConditionalGenerator(nn.Module):
  """(noise [B, L], sentence embedding [B, E]) -> image [B, R, R, C] in [-1, 1].

  ``conditioning``: ``"projection"`` (Dense + LeakyReLU 0.2, Reed et al.) or
  ``"augmentation"`` (Zhang et al.'s conditioning augmentation: c = mu + sigma * eps in train
  mode, with ``eps`` from the ``"condition"`` rng, c = mu in eval mode; the KL divergence to
  N(0, I), averaged over the batch, is sown as ``intermediates/ca_kl``).
  ``block_conditioning``: also feed concat(noise, text code) to every block, as a per-channel
  scale and shift after each batch norm (`jgan.models.dcgan.ConditionalAffine`, DF-GAN's
  fusion): the text and the noise then act at every resolution, not only through the input.
  Module names: ``text`` (the projection), ``dcgan`` (the DCGAN generator; its
  ``affine{i}`` with ``block_conditioning``).

  References:
    Reed et al., "Generative Adversarial Text to Image Synthesis", ICML 2016, Sec. 4.1;
    Zhang et al., "StackGAN", ICCV 2017, Sec. 3.1 (conditioning augmentation); Tao et al.,
    "DF-GAN", CVPR 2022, Sec. 3.3 (block conditioning).
  """

  resolution: int
  channels: int = 3
  width: int = 64
  text_features: int = 128
  conditioning: str = "projection"
  block_conditioning: bool = False
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  def __post_init__(self):
    if self.conditioning not in CONDITIONINGS:
      raise ValueError(f"{type(self).__name__}: conditioning={self.conditioning!r} is not "
                       f"supported; allowed: {CONDITIONINGS}")
    if self.text_features < 1:
      raise ValueError(f"{type(self).__name__}: text_features must be >= 1, got "
                       f"{self.text_features}.")
    super().__post_init__()

  @nn.compact
  def __call__(self, z: jax.Array, text: jax.Array, *, train: bool) -> jax.Array:
    text = text.astype(jnp.float32)
    if self.conditioning == "projection":
      c = nn.leaky_relu(nn.Dense(self.text_features, kernel_init=dcgan_init,
                                 param_dtype=self.param_dtype, name="text")(text), 0.2)
    else:
      stats = nn.Dense(2 * self.text_features, kernel_init=dcgan_init,
                       param_dtype=self.param_dtype, name="text")(text)
      mu, logvar = jnp.split(nn.leaky_relu(stats, 0.2), 2, axis=-1)
      kl = 0.5 * jnp.mean(jnp.sum(jnp.exp(logvar) + mu ** 2 - 1.0 - logvar, axis=-1))
      self.sow("intermediates", "ca_kl", kl)
      c = mu
      if train:
        c = mu + jnp.exp(0.5 * logvar) * jax.random.normal(self.make_rng("condition"), mu.shape)
    x = jnp.concatenate([z.astype(jnp.float32), c], axis=-1)
    return DCGANGenerator(resolution=self.resolution, channels=self.channels, width=self.width,
                          dtype=self.dtype, param_dtype=self.param_dtype, name="dcgan")(
                              x, train=train, condition=x if self.block_conditioning else None)


class TextConditionalDiscriminator(nn.Module):
  """(image [B, R, R, C], sentence embedding [B, E]) -> (logit [B], class logits [B, K]).

  ``num_classes`` is the total number of class logits (all attributes side by side, see
  :func:`jgan.losses.attribute_classifier_loss`); 0 gives no class head ([B, 0] logits).
  ``normalization`` as in :class:`DCGANDiscriminator` ("batch", "layer", "none").
  ``head``: how the text meets the image. ``"concat"`` (Reed et al.): the text projection is
  concatenated at 4x4, then ``joint`` (1x1 conv), ``joint_norm``, ``out``. ``"projection"``
  (Miyato & Koyama): ``out(phi) + <embed(t), phi>`` with ``phi`` the map summed over
  positions and ``t`` the text projection, an inner product that scores how well the image
  matches the text directly. Module names: ``dcgan`` (the image trunk), ``text`` (projection),
  ``joint``, ``joint_norm`` (concat) or ``embed`` (projection), ``out`` (real/fake),
  ``classes``. The trunk's flattened 4x4 features, which the class head reads, are sown as
  ``intermediates/features`` [B, F] (for a mode-seeking term measured in D's feature space).
  ``latent_outputs`` > 0 adds a head ``latent`` on the same features whose [B, K] output is
  sown as ``intermediates/noise_prediction``: InfoGAN's prediction of G's noise from G's image
  (:func:`jgan.losses.latent_regression_loss`).

  References:
    Reed et al., "Generative Adversarial Text to Image Synthesis", ICML 2016, Sec. 4.1 (the
    text projection replicated spatially and concatenated at 4x4); Odena et al., ICML 2017
    (the auxiliary classifier); Miyato & Koyama, "cGANs with Projection Discriminator", ICLR
    2018, eq. 3; Chen et al., "InfoGAN", NeurIPS 2016, Sec. 6 (Q shares D's trunk).
  """

  resolution: int
  width: int = 64
  text_features: int = 128
  num_classes: int = 0
  latent_outputs: int = 0
  normalization: str = "batch"
  head: str = "concat"
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  def __post_init__(self):
    if self.num_classes < 0:
      raise ValueError(f"{type(self).__name__}: num_classes must be >= 0, got "
                       f"{self.num_classes}.")
    if self.latent_outputs < 0:
      raise ValueError(f"{type(self).__name__}: latent_outputs must be >= 0, got "
                       f"{self.latent_outputs}.")
    if self.head not in HEADS:
      raise ValueError(f"{type(self).__name__}: head={self.head!r} is not supported; "
                       f"allowed: {HEADS}")
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jax.Array, text: jax.Array, *,
               train: bool) -> tuple[jax.Array, jax.Array]:
    h = DCGANDiscriminator(resolution=self.resolution, width=self.width,
                           normalization=self.normalization, features_only=True,
                           dtype=self.dtype, param_dtype=self.param_dtype, name="dcgan")(
                               x, train=train)
    b, s, _, c = h.shape
    flat = h.reshape(b, -1)
    self.sow("intermediates", "features", flat)
    if self.latent_outputs:
      self.sow("intermediates", "noise_prediction", nn.Dense(
          self.latent_outputs, kernel_init=dcgan_init, param_dtype=self.param_dtype,
          name="latent")(flat.astype(jnp.float32)))
    classes = nn.Dense(self.num_classes, kernel_init=dcgan_init, dtype=self.dtype,
                       param_dtype=self.param_dtype, name="classes")(flat)
    t = nn.leaky_relu(nn.Dense(self.text_features, kernel_init=dcgan_init, dtype=self.dtype,
                               param_dtype=self.param_dtype, name="text")(
                                   text.astype(jnp.float32)), 0.2)
    if self.head == "projection":
      phi = jnp.sum(h.astype(jnp.float32), axis=(1, 2))
      embed = nn.Dense(c, kernel_init=dcgan_init, param_dtype=self.param_dtype, name="embed")(t)
      logit = nn.Dense(1, kernel_init=dcgan_init, param_dtype=self.param_dtype,
                       name="out")(phi)[:, 0] + jnp.sum(embed * phi, axis=-1)
      return logit, classes.astype(jnp.float32)
    t = jnp.broadcast_to(t[:, None, None, :], (b, s, s, self.text_features)).astype(h.dtype)
    j = nn.Conv(c, (1, 1), use_bias=self.normalization != "batch", kernel_init=dcgan_init,
                dtype=self.dtype, param_dtype=self.param_dtype,
                name="joint")(jnp.concatenate([h, t], axis=-1))
    if self.normalization == "batch":
      j = _batch_norm(train, self.dtype, self.param_dtype, "joint_norm")(j)
    elif self.normalization == "layer":
      j = nn.LayerNorm(epsilon=1e-5, reduction_axes=(1, 2, 3), feature_axes=-1,
                       dtype=self.dtype, param_dtype=self.param_dtype,
                       scale_init=dcgan_scale_init, name="joint_norm")(j)
    j = nn.leaky_relu(j, 0.2)
    logit = nn.Dense(1, kernel_init=dcgan_init, dtype=self.dtype,
                     param_dtype=self.param_dtype, name="out")(j.reshape(b, -1))
    return logit[:, 0].astype(jnp.float32), classes.astype(jnp.float32)
