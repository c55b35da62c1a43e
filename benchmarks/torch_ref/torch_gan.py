"""A PyTorch reference of jgan's unconditional GAN train step, for benchmarks and tests.

The same networks, losses, penalty and optimisers as :func:`jgan.steps.make_gan_step` under a
:mod:`jgan.tasks.gan` config, written as eager PyTorch in NCHW the way a PyTorch user would
(``nn.Sequential`` models, ``nn.ConvTranspose2d(4, 2, 1)``, ``nn.BatchNorm2d``, ``torch.optim``),
so that a benchmark times the two frameworks on one computation and a test can check that
they compute the same thing from the same weights and random draws:

- models: :class:`MLPGenerator`, :class:`MLPDiscriminator`, :class:`DCGANGenerator`,
  :class:`DCGANDiscriminator` mirror :mod:`jgan.models.mlp` and :mod:`jgan.models.dcgan`;
  :func:`build_generator` / :func:`build_discriminator` build them from a config group;
- :func:`load_flax_params` copies a jgan params (and batch_stats) tree into one of them;
- :class:`GANStep` is one train step; :func:`jgan_random_draws` reproduces the latents and
  penalty interpolation weights that the jgan step draws from its key.

Known differences from jgan (none changes the computation being timed):

- ``nn.BatchNorm2d`` updates ``running_var`` with the unbiased batch variance (times
  N / (N - 1), N = B * H * W), flax with the biased one. Training uses batch statistics in
  both, so only the running averages (eval-mode outputs) differ, by at most
  ``running_var / (N - 1)``.
- Dropout masks come from different generators (set ``dropout_rate=0`` to compare numbers).
- ``config.ema_decay`` is ignored: no EMA of G is kept.
- Augmentation, custom loss functions, the R1 penalty, RMSprop (optax adds its eps inside the
  square root, ``torch.optim.RMSprop`` outside) and bfloat16 compute raise
  ``NotImplementedError``.

This module imports torch; jgan itself never imports it.
"""

from __future__ import annotations

import collections
import contextlib
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from jgan.models.layers import subpixel_kernel_to_conv_transpose

_BatchNorm = nn.modules.batchnorm._BatchNorm  # pylint: disable=protected-access

PyTree = Any
TensorLike = Any  # torch.Tensor, np.ndarray or jax.Array
ImageShape = tuple[int, int, int]  # (H, W, C), jgan's convention

_BN_MOMENTUM = 0.1  # PyTorch's convention; flax's momentum=0.9 is the same update
_NORM_EPS = 1e-5

# --------------------------------------------------------------------------------------------
# Models.
# --------------------------------------------------------------------------------------------


def _lecun_normal_(module: nn.Module) -> None:
  """flax's default init: kernels truncated-normal lecun (fan-in), biases 0."""
  for m in module.modules():
    if isinstance(m, nn.Linear):
      # flax's variance_scaling truncates at +-2 std and rescales so the variance is 1/fan_in.
      std = math.sqrt(1.0 / m.in_features) / 0.87962566103423978
      nn.init.trunc_normal_(m.weight, std=std, a=-2.0 * std, b=2.0 * std)
      nn.init.zeros_(m.bias)


def _dcgan_init_(module: nn.Module, *, children_only: bool = False) -> None:
  """Radford et al. 2016 init, as jgan.models.dcgan: weights N(0, 0.02), norm scales N(1, 0.02).

  ``children_only``: the direct children only (heads around trunks that initialise
  themselves)."""
  for m in (module.children() if children_only else module.modules()):
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
      nn.init.normal_(m.weight, 0.0, 0.02)
      if m.bias is not None:
        nn.init.zeros_(m.bias)
    elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
      nn.init.normal_(m.weight, 1.0, 0.02)
      nn.init.zeros_(m.bias)


class MLPGenerator(nn.Sequential):
  """The fully connected generator of :class:`jgan.models.MLPGenerator`, in PyTorch.

  Linear + LeakyReLU per hidden layer, Linear to C*H*W, tanh, reshaped to NCHW. Child names
  are the flax module names (``dense{i}``, ``out``) so :func:`load_flax_params` maps by name.

  Shapes: z [B, latent_dim] -> [B, C, H, W] in [-1, 1], (H, W, C) = ``output_shape``.
  """

  def __init__(self, *, latent_dim: int, output_shape: Sequence[int] = (28, 28, 1),
               hidden: Sequence[int] = (256, 512, 1024), negative_slope: float = 0.2):
    h, w, c = (int(v) for v in output_shape)
    layers: collections.OrderedDict[str, nn.Module] = collections.OrderedDict()
    fan_in = int(latent_dim)
    for i, width in enumerate(hidden):
      layers[f"dense{i}"] = nn.Linear(fan_in, width)
      layers[f"act{i}"] = nn.LeakyReLU(negative_slope)
      fan_in = width
    layers["out"] = nn.Linear(fan_in, c * h * w)
    layers["tanh"] = nn.Tanh()
    layers["unflatten"] = nn.Unflatten(1, (c, h, w))
    super().__init__(layers)
    # jgan reshapes "out" to NHWC: its columns are in (h, w, c) order.
    self.flax_nhwc_outputs = {"out": (h, w, c)}
    _lecun_normal_(self)


class MLPDiscriminator(nn.Sequential):
  """The fully connected discriminator of :class:`jgan.models.MLPDiscriminator`, in PyTorch.

  Flatten, then Linear + LeakyReLU + Dropout per hidden layer, then Linear to one logit.

  Shapes: x [B, C, H, W] ((H, W, C) = ``input_shape``) -> logits [B].
  """

  def __init__(self, *, input_shape: Sequence[int] = (28, 28, 1),
               hidden: Sequence[int] = (1024, 512, 256), negative_slope: float = 0.2,
               dropout_rate: float = 0.3):
    h, w, c = (int(v) for v in input_shape)
    layers: collections.OrderedDict[str, nn.Module] = collections.OrderedDict()
    layers["flatten"] = nn.Flatten()
    fan_in = c * h * w
    for i, width in enumerate(hidden):
      layers[f"dense{i}"] = nn.Linear(fan_in, width)
      layers[f"act{i}"] = nn.LeakyReLU(negative_slope)
      layers[f"drop{i}"] = nn.Dropout(dropout_rate)
      fan_in = width
    layers["out"] = nn.Linear(fan_in, 1)
    super().__init__(layers)
    # jgan flattens NHWC images: "dense0"'s rows are in (h, w, c) order.
    self.flax_nhwc_inputs = {"dense0": (h, w, c)}
    _lecun_normal_(self)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return super().forward(x)[:, 0]


_RESOLUTIONS = (28, 32, 64)
_NORMALIZATIONS = ("batch", "layer", "none")


def _check_resolution(cls_name: str, resolution: int) -> None:
  if resolution not in _RESOLUTIONS:
    raise ValueError(f"{cls_name}: resolution={resolution!r} is not supported; allowed: "
                     f"{_RESOLUTIONS}")


class DCGANGenerator(nn.Sequential):
  """The DCGAN generator of :class:`jgan.models.DCGANGenerator`, in PyTorch (NCHW).

  Linear projection (no bias) to c0 x s x s, BatchNorm + ReLU, then
  ``ConvTranspose2d(4, 2, 1)`` (no bias) + BatchNorm + ReLU blocks, then a last
  ``ConvTranspose2d(4, 2, 1)`` with bias to ``channels`` and tanh:

  - 64: 4 -> 8 -> 16 -> 32 -> 64 with channels 8w, 4w, 2w, w, channels;
  - 32: 4 -> 8 -> 16 -> 32 with 4w, 2w, w, channels;
  - 28: 7 -> 14 -> 28 with 2w, w, channels.

  Child names are jgan's (``project``, ``bn{i}``, ``up{i}``). A DTN generator is this class
  with ``latent_dim`` = the encoder's feature size.

  Shapes: z [B, latent_dim] -> [B, channels, resolution, resolution] in [-1, 1].

  References:
    Radford, Metz & Chintala 2016, "Unsupervised Representation Learning with Deep
    Convolutional Generative Adversarial Networks", figure 1 and section 4.
  """

  def __init__(self, *, resolution: int, channels: int = 3, width: int = 64,
               latent_dim: int = 100):
    _check_resolution(type(self).__name__, resolution)
    if resolution == 64:
      size, chans = 4, [8 * width, 4 * width, 2 * width, width]
    elif resolution == 32:
      size, chans = 4, [4 * width, 2 * width, width]
    else:
      size, chans = 7, [2 * width, width]
    layers: collections.OrderedDict[str, nn.Module] = collections.OrderedDict()
    # Biases before batch norm would be cancelled by it: only the output layer has one.
    layers["project"] = nn.Linear(latent_dim, chans[0] * size * size, bias=False)
    layers["unflatten"] = nn.Unflatten(1, (chans[0], size, size))
    layers["bn0"] = nn.BatchNorm2d(chans[0], eps=_NORM_EPS, momentum=_BN_MOMENTUM)
    layers["relu0"] = nn.ReLU(inplace=True)
    for i in range(1, len(chans)):
      layers[f"up{i}"] = nn.ConvTranspose2d(chans[i - 1], chans[i], 4, 2, 1, bias=False)
      layers[f"bn{i}"] = nn.BatchNorm2d(chans[i], eps=_NORM_EPS, momentum=_BN_MOMENTUM)
      layers[f"relu{i}"] = nn.ReLU(inplace=True)
    layers[f"up{len(chans)}"] = nn.ConvTranspose2d(chans[-1], channels, 4, 2, 1, bias=True)
    layers["tanh"] = nn.Tanh()
    super().__init__(layers)
    # jgan reshapes "project" to NHWC: its columns are in (h, w, c) order.
    self.flax_nhwc_outputs = {"project": (size, size, chans[0])}
    _dcgan_init_(self)


class DCGANDiscriminator(nn.Sequential):
  """The DCGAN discriminator / WGAN-GP critic of :class:`jgan.models.DCGANDiscriminator`.

  ``Conv2d(4, 2, 1)`` + LeakyReLU per stride-2 stage, with ``normalization`` on every stage
  but the first: "batch" (``BatchNorm2d``; the convolution then has no bias), "layer" (layer
  norm over (C, H, W) with per-channel affine, i.e. ``GroupNorm(1, C)``) or "none". Then a
  Linear on the flattened map (4x4 for 32/64, 7x7 for 28) to ``num_outputs`` logits:

  - 64: 64 -> 32 -> 16 -> 8 -> 4 with w, 2w, 4w, 8w channels;
  - 32: 32 -> 16 -> 8 -> 4 with w, 2w, 4w;
  - 28: 28 -> 14 -> 7 with w, 2w.

  Child names are jgan's (``conv{i}``, ``norm{i}``, ``out``). DTN's ternary discriminator is
  this class with ``num_outputs=3``; ``features_only=True`` drops ``flatten``/``out`` and
  returns the last activated map, for heads built on top (text-conditional D).

  Shapes: x [B, channels, resolution, resolution] -> logits [B] (``num_outputs == 1``) or
  [B, num_outputs]; with ``features_only``, [B, C_last, s, s].

  References:
    Radford, Metz & Chintala 2016 (DCGAN); Gulrajani et al. 2017, "Improved Training of
    Wasserstein GANs", section 4 (no batch norm in the critic; layer norm suggested).
  """

  def __init__(self, *, resolution: int, channels: int = 3, width: int = 64,
               normalization: str = "batch", negative_slope: float = 0.2, num_outputs: int = 1,
               features_only: bool = False):
    _check_resolution(type(self).__name__, resolution)
    if normalization not in _NORMALIZATIONS:
      raise ValueError(f"{type(self).__name__}: normalization={normalization!r} is not "
                       f"supported; allowed: {_NORMALIZATIONS}")
    if num_outputs < 1:
      raise ValueError(f"{type(self).__name__}: num_outputs must be >= 1, got {num_outputs}.")
    stages = {64: 4, 32: 3, 28: 2}[resolution]
    chans = [width * 2**i for i in range(stages)]
    layers: collections.OrderedDict[str, nn.Module] = collections.OrderedDict()
    in_c = channels
    for i, c in enumerate(chans):
      use_bias = i == 0 or normalization != "batch"  # batch norm cancels a bias
      layers[f"conv{i}"] = nn.Conv2d(in_c, c, 4, 2, 1, bias=use_bias)
      if i > 0 and normalization == "batch":
        layers[f"norm{i}"] = nn.BatchNorm2d(c, eps=_NORM_EPS, momentum=_BN_MOMENTUM)
      elif i > 0 and normalization == "layer":
        layers[f"norm{i}"] = nn.GroupNorm(1, c, eps=_NORM_EPS)
      layers[f"act{i}"] = nn.LeakyReLU(negative_slope, inplace=True)
      in_c = c
    size = resolution >> stages
    if not features_only:
      layers["flatten"] = nn.Flatten()
      layers["out"] = nn.Linear(in_c * size * size, num_outputs)
    super().__init__(layers)
    if not features_only:
      # jgan flattens the NHWC map: "out"'s rows are in (h, w, c) order.
      self.flax_nhwc_inputs = {"out": (size, size, in_c)}
    self.num_outputs = num_outputs
    self.features_only = features_only
    _dcgan_init_(self)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    out = super().forward(x)
    if self.features_only or self.num_outputs > 1:
      return out
    return out[:, 0]


def _model_kwargs(group: Mapping[str, Any] | Any) -> tuple[str, dict[str, Any]]:
  kwargs = dict(group.to_dict() if hasattr(group, "to_dict") else group)
  name = kwargs.pop("name")
  for field in ("dtype", "param_dtype"):
    if field in kwargs:
      if np.dtype(kwargs.pop(field)) != np.float32:
        raise NotImplementedError(f"The PyTorch reference runs in float32 only ({field}).")
  return name, kwargs


def _check_fields(kind: str, name: str, kwargs: dict[str, Any], allowed: tuple[str, ...]):
  bad = sorted(set(kwargs) - set(allowed))
  if bad:
    raise ValueError(f"{kind} {name!r}: field(s) {bad} have no PyTorch counterpart here; "
                     f"supported: {list(allowed)}")


def build_generator(group: Any, *, image_shape: ImageShape, latent_dim: int) -> nn.Module:
  """The PyTorch generator for a jgan ``config.model.generator`` group (name + fields).

  Like :func:`jgan.models.build_generator`, the image shape fills ``output_shape`` /
  ``resolution`` / ``channels`` unless the group sets them. ``upsample`` and
  ``output_upsample`` are accepted and ignored when they name jgan's transposed convolutions
  (the same function as ``ConvTranspose2d``); resize-convolution has no mirror here.
  ``output_filter`` is accepted and ignored: it acts only when jgan's G draws, never in a
  training step.
  """
  name, kwargs = _model_kwargs(group)
  h, w, c = (int(v) for v in image_shape)
  if name == "mlp":
    _check_fields("generator", name, kwargs, ("output_shape", "hidden", "negative_slope"))
    kwargs.setdefault("output_shape", (h, w, c))
    return MLPGenerator(latent_dim=latent_dim, **kwargs)
  if name == "dcgan":
    _check_fields("generator", name, kwargs,
                  ("resolution", "channels", "width", "upsample", "output_upsample",
                   "output_filter"))
    kwargs.pop("output_filter", None)
    for field in ("upsample", "output_upsample"):
      if kwargs.pop(field, "") not in ("", "subpixel", "conv_transpose"):
        raise NotImplementedError(f"torch mirror of DCGANGenerator({field}='resize_conv').")
    kwargs.setdefault("resolution", h)
    kwargs.setdefault("channels", c)
    return DCGANGenerator(latent_dim=latent_dim, **kwargs)
  raise NotImplementedError(f"No PyTorch reference for generator {name!r}; have: mlp, dcgan.")


def build_discriminator(group: Any, *, image_shape: ImageShape) -> nn.Module:
  """The PyTorch discriminator for a jgan ``config.model.discriminator`` group."""
  name, kwargs = _model_kwargs(group)
  h, w, c = (int(v) for v in image_shape)
  if name == "mlp":
    _check_fields("discriminator", name, kwargs, ("hidden", "negative_slope", "dropout_rate"))
    return MLPDiscriminator(input_shape=(h, w, c), **kwargs)
  if name == "dcgan":
    _check_fields("discriminator", name, kwargs,
                  ("resolution", "width", "normalization", "negative_slope", "num_outputs",
                   "features_only"))
    kwargs.setdefault("resolution", h)
    return DCGANDiscriminator(channels=c, **kwargs)
  raise NotImplementedError(f"No PyTorch reference for discriminator {name!r}; have: mlp, "
                            "dcgan.")


# --------------------------------------------------------------------------------------------
# jgan (flax) weights -> PyTorch.
# --------------------------------------------------------------------------------------------


def _numpy(x: TensorLike) -> np.ndarray:
  return np.asarray(x, dtype=np.float32)


def linear_weight_from_flax(kernel: TensorLike, *, nhwc_input: ImageShape | None = None,
                            nhwc_output: ImageShape | None = None) -> np.ndarray:
  """A flax Dense kernel [in, out] as a ``nn.Linear`` weight [out, in].

  ``nhwc_input=(H, W, C)``: the Dense read an NHWC map flattened in (h, w, c) order, the Linear
  reads ``x.flatten(1)`` of NCHW, (c, h, w) order: the rows are permuted. ``nhwc_output``: the
  Dense's output was reshaped to NHWC, the Linear's is unflattened to NCHW: the columns are.
  """
  k = _numpy(kernel)
  if nhwc_input is not None:
    h, w, c = nhwc_input
    k = k.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(h * w * c, -1)
  if nhwc_output is not None:
    h, w, c = nhwc_output
    k = k.reshape(-1, h, w, c).transpose(0, 3, 1, 2).reshape(-1, h * w * c)
  return np.ascontiguousarray(k.T)


def conv2d_weight_from_flax(kernel: TensorLike) -> np.ndarray:
  """A flax Conv kernel [kh, kw, in, out] as a ``nn.Conv2d`` weight [out, in, kh, kw]."""
  return np.ascontiguousarray(_numpy(kernel).transpose(3, 2, 0, 1))


def conv_transpose2d_weight_from_flax(kernel: TensorLike) -> np.ndarray:
  """A jgan upsampling kernel as a ``nn.ConvTranspose2d(4, 2, 1)`` weight [in, out, 4, 4].

  Accepts a `SubpixelConvTranspose` kernel [2, 2, in, 4 * out] (mapped back with
  :func:`jgan.models.layers.subpixel_kernel_to_conv_transpose`) or a flax
  ``nn.ConvTranspose(padding='SAME')`` kernel [4, 4, in, out]. The inverse of
  :func:`jgan.models.layers.torch_conv_transpose_weight_to_flax`: lax's transposed
  convolution correlates with the kernel where PyTorch's scatters it, so the taps are
  flipped in both spatial axes.
  """
  k = _numpy(kernel)
  if k.shape[:2] == (2, 2):
    k = np.asarray(subpixel_kernel_to_conv_transpose(k))
  if k.shape[:2] != (4, 4):
    raise ValueError(f"expected a [2, 2, in, 4 * out] or [4, 4, in, out] kernel, got {k.shape}")
  return np.ascontiguousarray(k[::-1, ::-1].transpose(2, 3, 0, 1))


def _is_layer(tree: Mapping[str, Any]) -> bool:
  """A flax module's own variables (arrays), not a dict of submodules."""
  return all(not isinstance(v, Mapping) for v in tree.values())


def _copy(target: torch.Tensor, value: np.ndarray, where: str) -> None:
  if tuple(target.shape) != value.shape:
    raise ValueError(f"{where}: the PyTorch tensor has shape {tuple(target.shape)}, the jgan "
                     f"value {value.shape}.")
  with torch.no_grad():
    target.copy_(torch.from_numpy(np.array(value, dtype=np.float32)))  # a writable copy


def load_flax_params(module: nn.Module, params: PyTree,
                     batch_stats: PyTree | None = None) -> nn.Module:
  """Copies a jgan model's ``params`` (and ``batch_stats``) into a PyTorch model, in place.

  Submodules are matched by name: the flax module ``a/b`` (a nested params dict) goes to
  ``module.get_submodule("a.b")``, whose type says how to convert: ``nn.Linear`` (Dense),
  ``nn.Conv2d`` (Conv), ``nn.ConvTranspose2d`` (`SubpixelConvTranspose` or ConvTranspose),
  ``nn.BatchNorm2d`` (BatchNorm: scale, bias, running mean and var) and ``nn.GroupNorm`` /
  ``nn.LayerNorm`` (LayerNorm: scale, bias). A Linear whose flax Dense read or wrote an NHWC
  map is named in its parent's ``flax_nhwc_inputs`` / ``flax_nhwc_outputs`` dict
  (``{child name: (H, W, C)}``) and gets its rows / columns permuted to NCHW order.

  Every parameter of ``module`` (and with ``batch_stats``, every running mean / var) must be
  set, and every jgan variable used: anything else raises, so a mismatch cannot pass silently.

  Returns:
    ``module``.
  """
  assigned: set[str] = set()

  def load(path: str, leaves: Mapping[str, Any], collection: str) -> None:
    parent_path, _, name = path.rpartition(".")
    try:
      layer = module.get_submodule(path)
    except AttributeError:
      raise KeyError(f"jgan {collection} {path.replace('.', '/')!r} has no PyTorch submodule "
                     f"{path!r} in {type(module).__name__}.") from None
    parent = module.get_submodule(parent_path) if parent_path else module
    targets: dict[str, tuple[str, np.ndarray]] = {}  # jgan name -> (torch name, value)
    if collection == "batch_stats":
      if not isinstance(layer, _BatchNorm):
        raise TypeError(f"{path}: batch_stats for a {type(layer).__name__}.")
      targets = {"mean": ("running_mean", _numpy(leaves["mean"])),
                 "var": ("running_var", _numpy(leaves["var"]))}
    elif isinstance(layer, nn.Linear):
      targets["kernel"] = ("weight", linear_weight_from_flax(
          leaves["kernel"], nhwc_input=getattr(parent, "flax_nhwc_inputs", {}).get(name),
          nhwc_output=getattr(parent, "flax_nhwc_outputs", {}).get(name)))
      if "bias" in leaves:
        bias = _numpy(leaves["bias"])
        out_shape = getattr(parent, "flax_nhwc_outputs", {}).get(name)
        if out_shape is not None:
          bias = bias.reshape(out_shape).transpose(2, 0, 1).reshape(-1)
        targets["bias"] = ("bias", bias)
    elif isinstance(layer, nn.ConvTranspose2d):
      targets["kernel"] = ("weight", conv_transpose2d_weight_from_flax(leaves["kernel"]))
    elif isinstance(layer, nn.Conv2d):
      targets["kernel"] = ("weight", conv2d_weight_from_flax(leaves["kernel"]))
    elif isinstance(layer, (_BatchNorm, nn.GroupNorm, nn.LayerNorm)):
      targets["scale"] = ("weight", _numpy(leaves["scale"]))
    else:
      raise TypeError(f"{path}: no rule for loading flax variables into a "
                      f"{type(layer).__name__}.")
    if collection == "params" and "bias" in leaves and "bias" not in targets:
      targets["bias"] = ("bias", _numpy(leaves["bias"]))
    unused = sorted(set(leaves) - set(targets))
    if unused:
      raise KeyError(f"{path}: jgan {collection} {unused} have no PyTorch counterpart.")
    for flax_name, (torch_name, value) in targets.items():
      target = getattr(layer, torch_name)
      if target is None:
        raise KeyError(f"{path}: jgan has {flax_name!r}, the PyTorch {type(layer).__name__} "
                       f"has no {torch_name}.")
      _copy(target, value, f"{path}.{torch_name}")
      assigned.add(f"{path}.{torch_name}")

  def visit(prefix: str, tree: Mapping[str, Any], collection: str) -> None:
    for name, sub in tree.items():
      path = f"{prefix}{name}"
      if _is_layer(sub):
        load(path, sub, collection)
      else:
        visit(f"{path}.", sub, collection)

  visit("", params, "params")
  expected = {name for name, _ in module.named_parameters()}
  if batch_stats:
    visit("", batch_stats, "batch_stats")
    expected |= {name for name, _ in module.named_buffers()
                 if name.endswith(("running_mean", "running_var"))}
  missing = sorted(expected - assigned)
  if missing:
    raise KeyError(f"{type(module).__name__}: {missing} not set from the jgan variables.")
  return module


# --------------------------------------------------------------------------------------------
# Losses, penalty, optimisers (the jgan.losses / penalties / optim counterparts).
# --------------------------------------------------------------------------------------------

GeneratorLoss = Callable[[torch.Tensor], torch.Tensor]
DiscriminatorLoss = Callable[..., torch.Tensor]


def _no_label_smoothing(family: str, label_smoothing: float) -> None:
  if label_smoothing:
    raise ValueError(f"label_smoothing has no meaning for the {family} loss; it must be 0.0.")


def _bce_d_loss(d_real: torch.Tensor, d_fake: torch.Tensor, *,
                label_smoothing: float = 0.0) -> torch.Tensor:
  real_target = torch.full_like(d_real, 1.0 - label_smoothing)
  return (F.binary_cross_entropy_with_logits(d_real, real_target)
          + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))


def _least_squares_d_loss(d_real: torch.Tensor, d_fake: torch.Tensor, *,
                          label_smoothing: float = 0.0) -> torch.Tensor:
  return (0.5 * (d_real - (1.0 - label_smoothing)).square().mean()
          + 0.5 * d_fake.square().mean())


def _hinge_d_loss(d_real: torch.Tensor, d_fake: torch.Tensor, *,
                  label_smoothing: float = 0.0) -> torch.Tensor:
  _no_label_smoothing("hinge", label_smoothing)
  return F.relu(1.0 - d_real).mean() + F.relu(1.0 + d_fake).mean()


def _wasserstein_d_loss(d_real: torch.Tensor, d_fake: torch.Tensor, *,
                        label_smoothing: float = 0.0) -> torch.Tensor:
  _no_label_smoothing("wasserstein", label_smoothing)
  return d_fake.mean() - d_real.mean()


LOSS_FAMILIES: dict[str, tuple[GeneratorLoss, DiscriminatorLoss]] = {
    "minimax": (lambda d_fake: -F.softplus(d_fake).mean(), _bce_d_loss),
    "non_saturating": (lambda d_fake: F.softplus(-d_fake).mean(), _bce_d_loss),
    "least_squares": (lambda d_fake: 0.5 * (d_fake - 1.0).square().mean(),
                      _least_squares_d_loss),
    "hinge": (lambda d_fake: -d_fake.mean(), _hinge_d_loss),
    "wasserstein": (lambda d_fake: -d_fake.mean(), _wasserstein_d_loss),
}
"""``name -> (generator_loss(d_fake), discriminator_loss(d_real, d_fake, *, label_smoothing))``,
the formulas of :data:`jgan.losses.LOSS_FAMILIES`."""


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor,
                     fake: torch.Tensor, eps: torch.Tensor, *, weight: float = 10.0
                     ) -> torch.Tensor:
  """WGAN-GP penalty ``weight * mean_b((||d critic(x_hat)[b] / d x_hat[b]||_2 - 1)^2)``.

  ``x_hat = eps * real + (1 - eps) * fake`` with ``eps`` [B, 1, 1, 1]; the norm is over
  (C, H, W) of each example; ``create_graph=True`` so the result back-propagates into the
  critic's parameters (double backward), as :func:`jgan.penalties.gradient_penalty`.

  References:
    Gulrajani et al., "Improved Training of Wasserstein GANs", NeurIPS 2017, eq. 3 and
    Algorithm 1.
  """
  x_hat = (eps * real.detach() + (1.0 - eps) * fake.detach()).requires_grad_(True)
  (grads,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
  norms = grads.flatten(1).norm(2, dim=1)
  return weight * (norms - 1.0).square().mean()


def make_optimizer(name: str, params: Any, *, learning_rate: float, b1: float = 0.9,
                   b2: float = 0.999) -> torch.optim.Optimizer:
  """The ``torch.optim`` optimiser of :func:`jgan.optim.make_optimizer` (adam or sgd).

  Adam: optax's eps 1e-8 added outside the square root, as torch's. SGD: jgan's
  :func:`jgan.optim.two_player_optimizers` passes no momentum (0).
  """
  if name == "adam":
    return torch.optim.Adam(params, lr=learning_rate, betas=(b1, b2), eps=1e-8)
  if name == "sgd":
    return torch.optim.SGD(params, lr=learning_rate)
  if name == "rmsprop":
    raise NotImplementedError("optax.rmsprop adds eps inside the square root, "
                              "torch.optim.RMSprop outside: no exact PyTorch counterpart.")
  raise ValueError(f"Unknown optimizer {name!r}; available: adam, sgd.")


# --------------------------------------------------------------------------------------------
# The train step.
# --------------------------------------------------------------------------------------------


def jgan_random_draws(key: jax.Array, *, n_critic: int, batch: int,
                      latent_dim: int) -> dict[str, np.ndarray]:
  """The random numbers that ``jgan.steps.make_gan_step``'s step draws from ``key``.

  Follows its key derivation: critic update j uses ``d_keys[j]`` of
  ``split(fold_in(key, 0), n_critic)``, split into (k_gen, k_d); its latents are
  ``normal(k_gen, [B, latent_dim])`` and its gradient-penalty weights
  ``uniform(k_pen, [B, 1, 1, 1])`` with ``k_pen`` the third of ``split(k_d, 3)``. The G update
  splits ``fold_in(key, 1)`` into (k_gen, k_d) and draws ``normal(k_gen, [B, latent_dim])``.
  (Dropout keys and the augmentation key, ``fold_in(key, 2)``, are not reproduced.)

  Returns:
    ``{"zs": [n_critic, B, latent_dim], "gp_eps": [n_critic, B, 1, 1, 1], "g_z": [B,
    latent_dim]}``, float32 numpy arrays, for :meth:`GANStep.step`.
  """
  d_keys = jax.random.split(jax.random.fold_in(key, 0), n_critic)
  zs, gp_eps = [], []
  for j in range(n_critic):
    k_gen, k_d = jax.random.split(d_keys[j])
    zs.append(jax.random.normal(k_gen, (batch, latent_dim), jnp.float32))
    _, _, k_pen = jax.random.split(k_d, 3)
    gp_eps.append(jax.random.uniform(k_pen, (batch, 1, 1, 1), jnp.float32))
  k_gen, _ = jax.random.split(jax.random.fold_in(key, 1))
  g_z = jax.random.normal(k_gen, (batch, latent_dim), jnp.float32)
  return {"zs": np.stack([np.asarray(z) for z in zs]),
          "gp_eps": np.stack([np.asarray(e) for e in gp_eps]), "g_z": np.asarray(g_z)}


@contextlib.contextmanager
def running_stats_frozen(module: nn.Module) -> Iterator[None]:
  """Train-mode batch norm (batch statistics) that leaves its running averages unchanged.

  jgan discards the D batch-norm updates of the penalty's and the G update's D passes; a
  momentum of 0 makes ``nn.BatchNorm2d`` do the same (running * 1 + batch * 0, exact) at no
  extra cost (``num_batches_tracked`` still counts).
  """
  norms = [m for m in module.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
  saved = [m.momentum for m in norms]
  for m in norms:
    m.momentum = 0.0
  try:
    yield
  finally:
    for m, momentum in zip(norms, saved):
      m.momentum = momentum


def _unsupported(config: Any) -> list[str]:
  problems = []
  if config.get("compute_dtype", "float32") != "float32":
    problems.append(f"compute_dtype={config.compute_dtype!r} (float32 only)")
  augment = config.get("augment")
  if augment is not None and (augment.get("flip") or augment.get("rotation")):
    problems.append("augment (flip/rotation)")
  if config.loss.get("generator_fn") or config.loss.get("discriminator_fn"):
    problems.append("custom loss functions (loss.generator_fn / loss.discriminator_fn)")
  if config.penalty.name not in ("none", "gradient_penalty"):
    problems.append(f"penalty {config.penalty.name!r} (none or gradient_penalty only)")
  return problems


class GANStep:
  """jgan's unconditional GAN train step, in eager PyTorch.

  Built from a :mod:`jgan.tasks.gan` config (``model.generator`` / ``model.discriminator``,
  ``model.latent_dim``, ``loss.name`` / ``loss.label_smoothing``, ``penalty.name`` /
  ``penalty.weight``, ``n_critic``, ``optim``) and the data's ``image_shape`` (H, W, C). It
  owns ``generator``, ``discriminator`` and their optimisers ``g_optimizer``,
  ``d_optimizer``. ``config.ema_decay`` is ignored (no EMA of G is kept).

  :meth:`step` does what :func:`jgan.steps.make_gan_step` does; :meth:`load_jgan_state`
  starts both networks from a jgan ``GANState`` (the optimisers keep fresh state, as
  ``init_gan_state``'s).
  """

  def __init__(self, config: Any, *, image_shape: ImageShape,
               device: str | torch.device = "cpu"):
    problems = _unsupported(config)
    if problems:
      raise NotImplementedError("The PyTorch reference does not support: "
                                + "; ".join(problems) + ".")
    if config.loss.name not in LOSS_FAMILIES:
      raise ValueError(f"Unknown loss family {config.loss.name!r}; available: "
                       f"{', '.join(sorted(LOSS_FAMILIES))}.")
    if config.n_critic < 1:
      raise ValueError(f"n_critic must be >= 1, got {config.n_critic}.")
    self.device = torch.device(device)
    self.latent_dim = int(config.model.latent_dim)
    self.n_critic = int(config.n_critic)
    self.generator = build_generator(config.model.generator, image_shape=image_shape,
                                     latent_dim=self.latent_dim).to(self.device)
    self.discriminator = build_discriminator(config.model.discriminator,
                                             image_shape=image_shape).to(self.device)
    self.generator_loss, d_loss = LOSS_FAMILIES[config.loss.name]
    smoothing = float(config.loss.get("label_smoothing", 0.0))
    self.discriminator_loss = lambda r, f: d_loss(r, f, label_smoothing=smoothing)
    self.discriminator_loss(torch.zeros(1), torch.zeros(1))  # fails now for a bad smoothing
    self.penalty_weight = (float(config.penalty.weight)
                           if config.penalty.name == "gradient_penalty" else None)
    o = config.optim
    betas = {"b1": o.b1, "b2": o.b2} if o.name == "adam" else {}
    self.g_optimizer = make_optimizer(o.name, self.generator.parameters(),
                                      learning_rate=o.g_lr, **betas)
    self.d_optimizer = make_optimizer(o.name, self.discriminator.parameters(),
                                      learning_rate=o.d_lr, **betas)

  def load_jgan_state(self, state: Any) -> None:
    """Both networks' weights (and batch-norm running averages) from a jgan ``GANState``."""
    load_flax_params(self.generator, state.g_params, state.g_batch_stats)
    load_flax_params(self.discriminator, state.d_params, state.d_batch_stats)

  def _tensor(self, x: TensorLike) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
      x = torch.from_numpy(np.array(x, dtype=np.float32))  # a writable copy (jax's are not)
    return x.to(device=self.device, dtype=torch.float32)

  def step(self, real: torch.Tensor, zs: TensorLike | None = None,
           g_z: TensorLike | None = None, gp_eps: TensorLike | None = None
           ) -> dict[str, float]:
    """One train step: ``n_critic`` D updates, then one G update.

    Args:
      real: float32 [n_critic * B, C, H, W] in [-1, 1] on ``device``; D update j gets rows
        ``j::n_critic`` (jgan's split).
      zs: [n_critic, B, latent_dim] latents of each D update's fakes (default: randn).
      g_z: [B, latent_dim] latents of the G update (default: randn).
      gp_eps: [n_critic, B, 1, 1, 1] gradient-penalty interpolation weights (default: rand).
      (:func:`jgan_random_draws` gives jgan's.)

    Returns:
      ``{"d_loss", "g_loss"}`` (and ``"penalty"`` with a penalty) as floats; the D values
      are means over the critic updates and d_loss includes the penalty.

    References:
      Goodfellow et al. 2014, "Generative Adversarial Nets", Algorithm 1; Gulrajani et al.
      2017, "Improved Training of Wasserstein GANs", Algorithm 1 (n_critic, penalty).
    """
    g, d, n = self.generator, self.discriminator, self.n_critic
    if real.shape[0] % n:
      raise ValueError(f"The batch ({real.shape[0]} images) must hold n_critic={n} equal parts.")
    b = real.shape[0] // n
    g.train()
    d.train()
    d_losses, penalties = [], []
    for j in range(n):
      part = real[j::n]
      z = (self._tensor(zs[j]) if zs is not None
           else torch.randn(b, self.latent_dim, device=self.device))
      # Train mode: G's batch norm uses (and updates on) this batch, as in jgan.
      with torch.no_grad():
        fake = g(z)
      self.d_optimizer.zero_grad(set_to_none=True)
      # Two passes, as jgan: real and fake never share batch-norm statistics.
      loss = self.discriminator_loss(d(part), d(fake))
      if self.penalty_weight is not None:
        eps = (self._tensor(gp_eps[j]) if gp_eps is not None
               else torch.rand(b, 1, 1, 1, device=self.device))
        with running_stats_frozen(d):  # jgan drops this pass's batch-norm update
          penalty = gradient_penalty(d, part, fake, eps, weight=self.penalty_weight)
        loss = loss + penalty
        penalties.append(penalty.detach())
      loss.backward()
      self.d_optimizer.step()
      d_losses.append(loss.detach())

    z = (self._tensor(g_z) if g_z is not None
         else torch.randn(b, self.latent_dim, device=self.device))
    self.g_optimizer.zero_grad(set_to_none=True)
    # No gradients for D's parameters: jgan differentiates the G loss w.r.t. G's only.
    d.requires_grad_(False)
    try:
      with running_stats_frozen(d):  # jgan drops this pass's batch-norm update too
        g_loss = self.generator_loss(d(g(z)))
      g_loss.backward()
    finally:
      d.requires_grad_(True)
    self.g_optimizer.step()

    out = {"d_loss": torch.stack(d_losses).mean().item(), "g_loss": g_loss.item()}
    if penalties:
      out["penalty"] = torch.stack(penalties).mean().item()
    return out


__all__ = [
    "DCGANDiscriminator",
    "DCGANGenerator",
    "GANStep",
    "LOSS_FAMILIES",
    "MLPDiscriminator",
    "MLPGenerator",
    "build_discriminator",
    "build_generator",
    "conv2d_weight_from_flax",
    "conv_transpose2d_weight_from_flax",
    "gradient_penalty",
    "jgan_random_draws",
    "linear_weight_from_flax",
    "load_flax_params",
    "make_optimizer",
    "running_stats_frozen",
]
