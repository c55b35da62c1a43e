"""DCGAN generator and discriminator (Radford et al. 2016) for 28x28, 32x32 and 64x64 images.

Initialisation (Radford et al. 2016, section 4, and the PyTorch DCGAN reference implementation):
conv, transposed-conv and dense kernels N(0, 0.02); batch/layer-norm scale N(1, 0.02), offset 0;
biases 0. Layers followed by batch norm have no bias (it would be cancelled); the generator's last
upsampling layer, the discriminator's first convolution, its convolutions under layer norm or no
normalisation, and its final dense layer do have one.

Batch norm uses ``momentum=0.9, epsilon=1e-5`` (PyTorch's 0.1 / 1e-5) and no ``axis_name``: under
``jit`` with a sharded batch, ``jnp.mean`` already reduces over the global batch.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jgan import imaging
from jgan.models.layers import (
    ResizeConv,
    StridedConv4x4,
    SubpixelConvTranspose,
    conv_transpose_kernel_to_subpixel,
    dcgan_init,
    dcgan_scale_init,
)

Dtype = Any
PyTree = Any

RESOLUTIONS = (28, 32, 64)
UPSAMPLES = ("subpixel", "conv_transpose", "resize_conv")
OUTPUT_FILTERS = ("", "median3x3")
PALETTE_MODES = ("soft", "hard_draw", "straight_through")
NORMALIZATIONS = ("batch", "layer", "none", "spectral")


def _check(cls_name: str, field: str, value: Any, allowed: tuple) -> None:
  if value not in allowed:
    raise ValueError(f"{cls_name}: {field}={value!r} is not supported; allowed: {allowed}")


def _generator_plan(resolution: int, width: int) -> tuple[int, list[int]]:
  """Start size s and the channels at s, 2s, ... before the final upsampling to the image."""
  if resolution == 64:
    return 4, [8 * width, 4 * width, 2 * width, width]
  if resolution == 32:
    return 4, [4 * width, 2 * width, width]
  return 7, [2 * width, width]  # 28


def _discriminator_plan(resolution: int, width: int) -> list[int]:
  """Channels of the stride-2 convolutions."""
  if resolution == 64:
    return [width, 2 * width, 4 * width, 8 * width]
  if resolution == 32:
    return [width, 2 * width, 4 * width]
  return [width, 2 * width]  # 28


def _batch_norm(train: bool, dtype: Dtype, param_dtype: Dtype, name: str) -> nn.BatchNorm:
  return nn.BatchNorm(
      use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=dtype,
      param_dtype=param_dtype, scale_init=dcgan_scale_init, name=name)


class ConditionalAffine(nn.Module):
  """Per-example, per-channel affine map of a feature map from a condition vector.

  ``x * (1 + gamma(c)) + beta(c)`` with ``[gamma, beta] = Dense(2C)(ReLU(Dense(hidden)(c)))``,
  the last layer zero-initialised, so the module starts as the identity (a plain normalised
  network) and learns how the condition moves each channel.

  Shapes: x [B, H, W, C] or [B, C], condition [B, K] -> x's shape, in ``dtype``.
  Module names: ``hidden``, ``out``.

  References:
    Tao et al., "DF-GAN: A Simple and Effective Baseline for Text-to-Image Synthesis", CVPR
    2022, Sec. 3.3 (the affine transformations of the fusion block, an MLP of the sentence
    and noise); de Vries et al. 2017 / Brock et al., "BigGAN", ICLR 2019 (conditional BN).
  """

  features: int
  hidden: int = 0  # 0: the number of features
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, condition: jax.Array) -> jax.Array:
    h = nn.relu(nn.Dense(self.hidden or self.features, kernel_init=dcgan_init,
                         dtype=self.dtype, param_dtype=self.param_dtype, name="hidden")(
                             condition.astype(self.dtype)))
    gamma, beta = jnp.split(nn.Dense(2 * self.features, kernel_init=nn.initializers.zeros,
                                     dtype=self.dtype, param_dtype=self.param_dtype,
                                     name="out")(h), 2, axis=-1)
    shape = (x.shape[0],) + (1,) * (x.ndim - 2) + (self.features,)
    return x * (1.0 + gamma.reshape(shape)) + beta.reshape(shape)


class Palette(nn.Module):
  """A per-example palette of ``size`` colours from a code; each pixel a mixture of them.

  ``colours = tanh(Dense(size * C)(ReLU(Dense(hidden)(code))))`` [B, size, C], the output bias
  drawn N(0, 0.5) so the colours start apart (the shared palette; the code moves it per
  example);
  ``image[b, y, x] = sum_k w[b, y, x, k] colours[b, k]`` with ``w = softmax(logits)``, or with
  ``hard=True`` the one-hot of ``argmax(logits)`` (every pixel exactly one palette colour: flat
  regions), whose gradient with ``straight_through=True`` is the softmax's (Bengio et al.'s
  estimator), so a network can be trained on the hard image. A pixel whose logit for one
  colour dominates draws that colour whatever noise the other logits carry: flat areas cost a
  network one margin per region, not equal values at every pixel.

  Shapes: logits [B, H, W, size], code [B, K] -> [B, H, W, C] float32 in [-1, 1].
  Module names: ``hidden``, ``colours``.

  References:
    Ha and Eck, "A Neural Representation of Sketch Drawings" 2017 and van den Oord et al.,
    "Neural Discrete Representation Learning" 2017 (outputs from a small discrete set);
    Chang et al., "Palette-based Photo Recoloring", SIGGRAPH 2015 (an image as palette weights);
    Bengio, Leonard, Courville, "Estimating or Propagating Gradients Through Stochastic
    Neurons for Conditional Computation", 2013 (the straight-through estimator).
  """

  size: int
  channels: int = 3
  hidden: int = 0  # 0: 4 x size
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, logits: jax.Array, code: jax.Array, *, hard: bool = False,
               straight_through: bool = False) -> jax.Array:
    if logits.shape[-1] != self.size:
      raise ValueError(f"Palette: logits have {logits.shape[-1]} channels, size={self.size}")
    h = nn.relu(nn.Dense(self.hidden or 4 * self.size, kernel_init=dcgan_init, dtype=self.dtype,
                         param_dtype=self.param_dtype, name="hidden")(code.astype(self.dtype)))
    colours = nn.Dense(self.size * self.channels, kernel_init=dcgan_init,
                       bias_init=nn.initializers.normal(0.5), dtype=self.dtype,
                       param_dtype=self.param_dtype, name="colours")(h)
    colours = jnp.tanh(colours.astype(jnp.float32)).reshape(code.shape[0], self.size,
                                                            self.channels)
    logits = logits.astype(jnp.float32)
    weights = jax.nn.softmax(logits, axis=-1)
    if hard:
      one_hot = jax.nn.one_hot(jnp.argmax(logits, -1), self.size, dtype=weights.dtype)
      weights = (weights + jax.lax.stop_gradient(one_hot - weights) if straight_through
                 else one_hot)
    return jnp.einsum("bhwk,bkc->bhwc", weights, colours)


def keyed_noise(x: jax.Array, dim: int, *, seed: int = 0) -> jax.Array:
  """Standard-normal noise [B, dim], one draw per row of ``x`` [B, ...] keyed by its bits.

  A deterministic stand-in for a generator's noise when none is given (evaluation, samples,
  translation): the same input always gets the same noise, whatever its batch or position,
  and different inputs get independent draws, so what is drawn still spreads over the noise's
  range.
  """
  bits = jax.lax.bitcast_convert_type(x.astype(jnp.float32), jnp.uint32).reshape(x.shape[0], -1)

  def row_key(row):  # threefry over the row's values: no collisions in practice
    return jax.lax.scan(lambda k, v: (jax.random.fold_in(k, v), None), jax.random.key(seed),
                        row)[0]

  keys = jax.vmap(row_key)(bits)
  return jax.vmap(lambda k: jax.random.normal(k, (dim,), jnp.float32))(keys)


class DCGANGenerator(nn.Module):
  """DCGAN generator: latent vector -> image.

  Dense projection to s x s x c0 (+ BN + ReLU), then x2 upsampling blocks (4x4 stride-2
  transposed convolution + BN + ReLU) halving the channels down to ``width``, then a final x2
  upsampling to ``channels`` and tanh:

  - 64: 4 -> 8 -> 16 -> 32 -> 64 with channels 8w, 4w, 2w, w, channels;
  - 32: 4 -> 8 -> 16 -> 32 with 4w, 2w, w, channels;
  - 28: 7 -> 14 -> 28 with 2w, w, channels.

  ``upsample="subpixel"`` (default) uses `SubpixelConvTranspose`, the fast equivalent on XLA:CPU;
  ``"conv_transpose"`` uses ``nn.ConvTranspose(padding='SAME')`` (for comparisons). Both compute
  the same function; `generator_params_to_subpixel` converts the weights. ``"resize_conv"``
  uses `ResizeConv` (nearest x2 + 3x3 convolution, no checkerboard; a different function,
  kernels [3, 3, C_in, F]). ``output_upsample`` ("" = ``upsample``) sets the last layer's
  alone: e.g. "resize_conv" there draws every pixel with all nine taps while the inner layers
  keep the transposed convolution. Module names:
  ``project``, ``bn0``, then ``up{i}`` / ``bn{i}`` for i = 1, 2, ..., the last ``up{i}`` being
  the output layer.

  ``output_filter="median3x3"`` ends the network, when drawing (``train=False``: samples,
  evaluation, translation), with a 3x3 median filter per channel (`jgan.imaging.median3x3`, no
  parameters): an edge-preserving smoother that keeps flat areas and outlines and removes
  pixel-level grain (for flat-colour targets such as cartoons; it also removes 1-pixel lines).
  Training (``train=True``) sees the raw output: filtered in training, dtn_bitmoji's g lost
  identity (docs/experiments/dtn_bitmoji.md, "A median filter on what g draws").

  ``condition`` [B, K] (optional) modulates every normalisation: the batch norms ``bn{i}`` lose
  their learnt scale and offset, and `ConditionalAffine` ``affine{i}`` gives a per-example,
  per-channel scale and shift from the condition instead (conditional batch norm; what makes
  a text or class reach every block, not only the input). ``condition_on_input=True`` uses z
  itself as the condition when none is given: a deterministic code (DTN's face descriptor f(x))
  then reaches every block of g, not only the projection.

  ``palette_size=K`` (> 0) makes the last layer draw K logits per pixel instead of colours,
  and `Palette` ``palette`` turns them into the image with K colours it reads from z (for
  DTN, f(x): the face's skin, hair, background): flat-coloured regions come cheap, for
  flat-colour targets such as cartoons. ``palette_mode``: ``"soft"`` mixes the colours by
  softmax, in training and drawing; ``"hard_draw"`` trains so but draws (``train=False``)
  each pixel as its likeliest colour; ``"straight_through"`` draws every pixel as its
  likeliest colour in training too (gradients: the softmax's), so D and f judge the flat
  image g will draw. Mixing alone stays mottled (dtn_bitmoji, docs/experiments).

  ``noise_dim=N`` (> 0) is for a deterministic code z (DTN's f(x)): g reads ``[z, noise]``,
  ``noise`` [B, N] standard normal, given by the caller in training (``noise=``, drawn with
  the step's key) and otherwise :func:`keyed_noise` of z (the same z, the same drawing). What
  the code does not determine (a cartoon's background, shirt or hair colour, for a face
  descriptor) the noise can choose, one value per drawing, where a deterministic g must draw
  the mean of the choices: a mottle (multimodal translation, Zhu et al. 2017). The palette
  reads its colours from ``[z, noise]`` as well; ``condition_on_input`` uses z alone.

  Shapes: z [B, latent] -> [B, resolution, resolution, channels] float32 in [-1, 1].
  ``train=True`` uses batch statistics and updates ``batch_stats`` (apply with
  ``mutable=['batch_stats']``); ``train=False`` uses the running averages.

  References:
    Radford, Metz, Chintala 2016, "Unsupervised Representation Learning with Deep Convolutional
    Generative Adversarial Networks", figure 1 and section 4; Odena, Dumoulin, Olah 2016,
    "Deconvolution and Checkerboard Artifacts", Distill (resize-convolution); Zhu et al.,
    "Toward Multimodal Image-to-Image Translation", NeurIPS 2017 (noise beside the input).
  """

  resolution: int
  channels: int = 3
  width: int = 64
  upsample: str = "subpixel"
  output_upsample: str = ""
  output_filter: str = ""
  condition_on_input: bool = False
  palette_size: int = 0
  palette_mode: str = "soft"
  noise_dim: int = 0
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  def __post_init__(self):
    _check(type(self).__name__, "resolution", self.resolution, RESOLUTIONS)
    _check(type(self).__name__, "palette_mode", self.palette_mode, PALETTE_MODES)
    if self.palette_size < 0 or self.palette_size == 1:
      raise ValueError(f"{type(self).__name__}: palette_size={self.palette_size} is not "
                       "supported; allowed: 0 (colours drawn directly) or at least 2")
    if isinstance(self.noise_dim, bool) or int(self.noise_dim) != self.noise_dim or \
        self.noise_dim < 0:
      raise ValueError(f"{type(self).__name__}: noise_dim={self.noise_dim!r} must be an "
                       "integer >= 0 (0: no noise beside the code)")
    _check(type(self).__name__, "upsample", self.upsample, UPSAMPLES)
    if self.output_upsample:
      _check(type(self).__name__, "output_upsample", self.output_upsample, UPSAMPLES)
    _check(type(self).__name__, "output_filter", self.output_filter, OUTPUT_FILTERS)
    super().__post_init__()

  def _up(self, features: int, use_bias: bool, name: str, upsample: str = "") -> nn.Module:
    upsample = upsample or self.upsample
    if upsample == "subpixel":
      return SubpixelConvTranspose(
          features, use_bias=use_bias, dtype=self.dtype, param_dtype=self.param_dtype,
          kernel_init=dcgan_init, name=name)
    if upsample == "resize_conv":
      return ResizeConv(features, use_bias=use_bias, dtype=self.dtype,
                        param_dtype=self.param_dtype, kernel_init=dcgan_init, name=name)
    return nn.ConvTranspose(
        features, (4, 4), strides=(2, 2), padding="SAME", use_bias=use_bias, dtype=self.dtype,
        param_dtype=self.param_dtype, kernel_init=dcgan_init, name=name)

  def _norm(self, x: jax.Array, condition: jax.Array | None, train: bool, i: int) -> jax.Array:
    if condition is None:
      return _batch_norm(train, self.dtype, self.param_dtype, f"bn{i}")(x)
    x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                     use_scale=False, use_bias=False, dtype=self.dtype,
                     param_dtype=self.param_dtype, name=f"bn{i}")(x)
    return ConditionalAffine(x.shape[-1], dtype=self.dtype, param_dtype=self.param_dtype,
                             name=f"affine{i}")(x, condition)

  @nn.compact
  def __call__(self, z: jax.Array, *, train: bool, condition: jax.Array | None = None,
               noise: jax.Array | None = None) -> jax.Array:
    size, chans = _generator_plan(self.resolution, self.width)
    if condition is None and self.condition_on_input:
      condition = z
    code = z
    if self.noise_dim:
      noise = keyed_noise(z, self.noise_dim) if noise is None else noise
      if noise.shape != (z.shape[0], self.noise_dim):
        raise ValueError(f"{type(self).__name__}: noise of shape {noise.shape}, expected "
                         f"{(z.shape[0], self.noise_dim)} (batch, noise_dim).")
      code = jnp.concatenate([z, noise.astype(z.dtype)], axis=-1)
    elif noise is not None:
      raise ValueError(f"{type(self).__name__}: noise given but noise_dim=0; build the "
                       "generator with noise_dim > 0 to draw from noise beside the code.")
    x = nn.Dense(size * size * chans[0], use_bias=False, dtype=self.dtype,
                 param_dtype=self.param_dtype, kernel_init=dcgan_init, name="project")(code)
    x = x.reshape(z.shape[0], size, size, chans[0])
    x = nn.relu(self._norm(x, condition, train, 0))
    for i, c in enumerate(chans[1:], start=1):
      x = self._up(c, use_bias=False, name=f"up{i}")(x)
      x = nn.relu(self._norm(x, condition, train, i))
    x = self._up(self.palette_size or self.channels, use_bias=True, name=f"up{len(chans)}",
                 upsample=self.output_upsample)(x)
    if self.palette_size:
      x = Palette(self.palette_size, self.channels, dtype=self.dtype,
                  param_dtype=self.param_dtype, name="palette")(
                      x, code, hard=(self.palette_mode == "straight_through"
                                  or (self.palette_mode == "hard_draw" and not train)),
                      straight_through=train)
    else:
      x = jnp.tanh(x.astype(jnp.float32))
    return imaging.median3x3(x) if self.output_filter == "median3x3" and not train else x


class DCGANDiscriminator(nn.Module):
  """DCGAN discriminator (or WGAN-GP critic): image -> one logit.

  4x4 stride-2 'SAME' convolutions with LeakyReLU(0.2), normalisation on every convolution but
  the first, then a dense layer on the flattened map to one logit (for a 4x4 map this equals the
  reference 4x4 VALID convolution):

  - 64: 64 -> 32 -> 16 -> 8 -> 4 with w, 2w, 4w, 8w channels;
  - 32: 32 -> 16 -> 8 -> 4 with w, 2w, 4w;
  - 28: 28 -> 14 -> 7 with w, 2w.

  ``normalization``: "batch" (DCGAN), "layer" (layer norm over H, W, C with per-channel scale and
  offset, for WGAN-GP critics, whose penalty is per-sample), "spectral" (every convolution and
  the output layer divided by its largest singular value, one power iteration per train-mode
  call, flax's ``nn.SpectralNorm``; the power-iteration vectors live in ``batch_stats``) or
  "none". Module names: ``conv{i}``, ``norm{i}`` (i >= 1), ``out`` (under ``sn_conv{i}`` /
  ``sn_out`` in ``batch_stats`` with "spectral"; the params keep their names).

  Shapes: x [B, resolution, resolution, C] -> logits [B] float32, or [B, num_outputs] when
  ``num_outputs > 1`` (e.g. 3 for DTN's ternary discriminator). ``features_only=True`` stops
  before ``out`` and returns the last activated feature map [B, s, s, C_last] (s = 4 for 32/64,
  7 for 28) in ``dtype``, for heads built on top (e.g. the text-conditional discriminator).

  ``patch_layers`` = k > 0 makes it a patch discriminator (PatchGAN): only the first k
  convolutions, then ``out`` is a 4x4 stride-1 'SAME' convolution giving one logit (or
  ``num_outputs``) per position of their map, each judging a patch of the image (for 64x64:
  k = 2 -> a 16x16 map of 22-px patches, k = 3 -> 8x8 of 46-px patches): logits
  [B, s, s] or [B, s, s, num_outputs]. A whole-image D lets local texture (grain, blotches)
  pass if the image's layout is right; every patch must look real to a patch D. Losses
  that average over the batch take each position as an example (jgan.steps.make_dtn_step
  flattens them).

  ``whole_image_head=True`` (with ``patch_layers`` = k) keeps the whole-image D as well: the
  patch logits branch off after k convolutions and the remaining convolutions and the dense
  ``out`` go on from the same map (the patch head is ``patch_out``). A patch D alone lets
  the layout go (every patch looks real, the image is no face); the two heads judge both.
  Logits [B, 2, s, s] (or [B, 2, s, s, num_outputs]): index 0 the whole-image logit repeated
  at every position, index 1 the patch logits, so a loss averaging over positions weighs the
  image and its patches equally (multi-scale discriminators, Wang et al. 2018, with a
  shared trunk).

  References:
    Radford, Metz, Chintala 2016, "Unsupervised Representation Learning with Deep Convolutional
    Generative Adversarial Networks"; Gulrajani et al. 2017, "Improved Training of Wasserstein
    GANs", section 4 (no batch norm in the critic; layer norm suggested); Miyato et al.,
    "Spectral Normalization for Generative Adversarial Networks", ICLR 2018; Isola et al.,
    "Image-to-Image Translation with Conditional Adversarial Networks", CVPR 2017, Sec. 3.2.2
    (PatchGAN); Wang et al., "High-Resolution Image Synthesis and Semantic Manipulation with
    Conditional GANs", CVPR 2018 (multi-scale discriminators).
  """

  resolution: int
  width: int = 64
  normalization: str = "batch"
  negative_slope: float = 0.2
  num_outputs: int = 1
  features_only: bool = False
  patch_layers: int = 0
  whole_image_head: bool = False
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  def __post_init__(self):
    _check(type(self).__name__, "resolution", self.resolution, RESOLUTIONS)
    _check(type(self).__name__, "normalization", self.normalization, NORMALIZATIONS)
    if self.num_outputs < 1:
      raise ValueError(f"DCGANDiscriminator: num_outputs must be >= 1, got {self.num_outputs}.")
    layers = len(_discriminator_plan(self.resolution, self.width))
    if not 0 <= self.patch_layers <= layers:
      raise ValueError(f"DCGANDiscriminator: patch_layers={self.patch_layers} must be in [0, "
                       f"{layers}] at resolution {self.resolution} (0: whole image).")
    if self.whole_image_head and not 0 < self.patch_layers < layers:
      raise ValueError(f"DCGANDiscriminator: whole_image_head=True adds the whole-image head to "
                       f"a patch D: it needs patch_layers in [1, {layers - 1}] at resolution "
                       f"{self.resolution}, got {self.patch_layers}.")
    super().__post_init__()

  def _layer(self, layer: nn.Module, x: jax.Array, train: bool, name: str) -> jax.Array:
    if self.normalization != "spectral":
      return layer(x)
    return nn.SpectralNorm(layer, name=f"sn_{name}")(x, update_stats=train)

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    plan = _discriminator_plan(self.resolution, self.width)
    patches = None
    for i, c in enumerate(plan[:self.patch_layers or len(plan)] if not self.whole_image_head
                          else plan):
      if self.whole_image_head and i == self.patch_layers and not self.features_only:
        patches = self._patch_logits(x, train, "patch_out")
      use_bias = i == 0 or self.normalization != "batch"
      # = nn.Conv(c, (4, 4), strides=(2, 2), padding="SAME") (same params), with an input
      # gradient whose own gradient is fast on XLA:CPU (gradient penalties: 3x faster).
      x = self._layer(StridedConv4x4(c, use_bias=use_bias, dtype=self.dtype,
                                     param_dtype=self.param_dtype, kernel_init=dcgan_init,
                                     name=f"conv{i}"), x, train, f"conv{i}")
      if i > 0 and self.normalization == "batch":
        x = _batch_norm(train, self.dtype, self.param_dtype, f"norm{i}")(x)
      elif i > 0 and self.normalization == "layer":
        x = nn.LayerNorm(epsilon=1e-5, reduction_axes=(1, 2, 3), feature_axes=-1,
                         dtype=self.dtype, param_dtype=self.param_dtype,
                         scale_init=dcgan_scale_init, name=f"norm{i}")(x)
      x = nn.leaky_relu(x, negative_slope=self.negative_slope)
    if self.features_only:
      return x
    if self.patch_layers and not self.whole_image_head:
      x = self._patch_logits(x, train, "out")
      return x[..., 0] if self.num_outputs == 1 else x
    x = x.reshape(x.shape[0], -1)
    x = self._layer(nn.Dense(self.num_outputs, dtype=self.dtype, param_dtype=self.param_dtype,
                             kernel_init=dcgan_init, name="out"), x, train, "out")
    x = x.astype(jnp.float32)
    if patches is not None:
      x = jnp.stack([jnp.broadcast_to(x[:, None, None, :], patches.shape), patches], axis=1)
      return x[..., 0] if self.num_outputs == 1 else x
    return x[:, 0] if self.num_outputs == 1 else x

  def _patch_logits(self, x: jax.Array, train: bool, name: str) -> jax.Array:
    return self._layer(nn.Conv(self.num_outputs, (4, 4), padding="SAME", dtype=self.dtype,
                               param_dtype=self.param_dtype, kernel_init=dcgan_init,
                               name=name), x, train, name).astype(jnp.float32)


def generator_params_to_subpixel(params: PyTree) -> PyTree:
  """Converts ``DCGANGenerator(upsample="conv_transpose")`` params to ``upsample="subpixel"``.

  Every ``up{i}`` kernel [4, 4, C_in, F] becomes `conv_transpose_kernel_to_subpixel` of it
  ([2, 2, C_in, 4F]); everything else is copied. The two generators then compute the same
  function. For PyTorch weights, first map each ``ConvTranspose2d`` weight with
  `jgan.models.layers.torch_conv_transpose_weight_to_flax`.

  Args:
    params: the ``params`` collection (not the whole variables dict).

  Returns:
    A new params dict for the sub-pixel generator.
  """
  out = {}
  for name, sub in params.items():
    if name.startswith("up") and "kernel" in sub and sub["kernel"].shape[:2] == (4, 4):
      sub = dict(sub, kernel=conv_transpose_kernel_to_subpixel(sub["kernel"]))
    out[name] = sub
  return out
