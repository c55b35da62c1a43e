"""PyTorch mirrors of jgan's Domain Transfer Network step and text-to-image step.

For benchmarks that time jgan against PyTorch on the same computation (architecture, batch,
losses, optimiser, order of updates and batch-norm modes) and for tests that check both
compute the same numbers from the same weights and random draws:

* :class:`DTNStep` mirrors :func:`jgan.steps.make_dtn_step` as ``jgan.tasks.dtn.build`` sets
  it up for ``experiments/dtn_digits.py``: a frozen f (:class:`ConvClassifier`, the
  ``digits_encoder`` architecture, eval mode), g = a DCGAN generator on f's features, a
  ternary DCGAN D, ``L_GANG + alpha L_CONST + beta L_TID + gamma L_TV`` and Adam.
* :class:`T2IStep` mirrors :func:`jgan.tasks.t2i.make_t2i_step` for
  ``experiments/t2i_avatars.py``: :class:`TextConditionalGenerator` /
  :class:`TextConditionalDiscriminator`, GAN-CLS (wrong pairs: the batch rolled by one), the
  attribute (AC-GAN) heads and, when the generator uses it, conditioning augmentation's KL.
* :func:`dtn_random_inputs` / :func:`t2i_random_inputs` reproduce the random draws a jgan
  step makes from its key, so torch can be fed the same ones.

Tensors are NCHW float32, images in [-1, 1]. The DCGAN trunks and the flax -> torch weight
copy come from :mod:`benchmarks.torch_ref.torch_gan`; this module adds f, the text-conditional
heads, the losses and the steps.

Where jgan and PyTorch differ by design (documented, not mirrored): PyTorch's batch norm
updates ``running_var`` with the unbiased batch variance, flax with the biased one; the
running statistics never enter a training step (every forward pass of a step is in train mode,
f uses its own frozen statistics), so losses and parameters agree, the running variances
differ by the factor n / (n - 1) on the update.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import flax.linen as flax_nn
import jax
import jax.numpy as jnp
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.torch_ref import torch_gan
from benchmarks.torch_ref.torch_gan import (
    DCGANDiscriminator,
    DCGANGenerator,
    load_flax_params,
    make_optimizer,
    running_stats_frozen,
)
from jgan.data import captioned

PyTree = Any
Metrics = dict[str, torch.Tensor]

# DTN ternary classes (jgan.losses.TERNARY_*).
TERNARY_SOURCE_FAKE, TERNARY_TARGET_FAKE, TERNARY_TARGET_REAL = 0, 1, 2
_COSINE_EPS = 1e-12  # jgan.losses._COSINE_EPS


# ------------------------------------------------------------------------------ helpers


def _tensor(x: Any, device: torch.device | str | None = None) -> torch.Tensor:
  """A jax / numpy array as a float32 torch tensor (a copy: torch may update it in place)."""
  return torch.tensor(np.asarray(x, np.float32), device=device)


def _dcgan_init_(module: nn.Module) -> None:
  """jgan's initialisation of the text-conditional heads (``dcgan_init``,
  ``dcgan_scale_init``); direct children only: the DCGAN trunks initialise themselves. (The
  ConvClassifier keeps torch's defaults: f's weights always come from jgan.)"""
  torch_gan._dcgan_init_(module, children_only=True)  # pylint: disable=protected-access


@contextlib.contextmanager
def _no_param_grads(module: nn.Module) -> Iterator[None]:
  """No weight gradients for ``module`` (D during the G update: jax.grad differentiates G's
  parameters only, so XLA never computes D's weight gradients either)."""
  module.requires_grad_(False)
  try:
    yield
  finally:
    module.requires_grad_(True)


def _grad_norm(params: Sequence[torch.Tensor]) -> torch.Tensor:
  """optax.global_norm of the gradients (what jgan reports as ``*_grad_norm``)."""
  grads = [p.grad for p in params if p.grad is not None]
  return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))


def make_optimizers(optim_config: Any, g_params: Sequence[torch.Tensor],
                    d_params: Sequence[torch.Tensor]
                    ) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
  """(G's, D's) optimisers of a jgan ``two_player_config`` group, as
  :func:`jgan.optim.two_player_optimizers` (betas for Adam only)."""
  o = optim_config
  betas = {"b1": o.b1, "b2": o.b2} if o.name == "adam" else {}
  return (make_optimizer(o.name, list(g_params), learning_rate=o.g_lr, **betas),
          make_optimizer(o.name, list(d_params), learning_rate=o.d_lr, **betas))


def adapt_images(images: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
  """:func:`jgan.imaging.adapt_images` for NCHW tensors; ``shape`` is (H, W, C) as in jgan.

  ``jax.image.resize(..., "bilinear")`` is half-pixel bilinear, antialiased when shrinking:
  ``F.interpolate(align_corners=False)`` with ``antialias`` on a downsampling axis.
  """
  h, w, c = (int(v) for v in shape)
  if tuple(images.shape[2:]) != (h, w):
    shrink = h < images.shape[2] or w < images.shape[3]
    images = F.interpolate(images, size=(h, w), mode="bilinear", align_corners=False,
                           antialias=shrink)
  if images.shape[1] != c:
    if images.shape[1] == 1:
      images = images.expand(-1, c, -1, -1)
    elif c == 1:
      images = images.mean(dim=1, keepdim=True)
    else:
      raise ValueError(f"Cannot feed {images.shape[1]}-channel images to a network that takes "
                       f"{c} channels.")
  return images


def to_float(images: Any) -> torch.Tensor:
  """uint8 NHWC images (numpy / jax) -> NCHW float32 in [-1, 1], as jgan.imaging.to_float."""
  x = torch.from_numpy(np.asarray(images).astype(np.float32) / np.float32(127.5) - np.float32(1))
  return x.permute(0, 3, 1, 2).contiguous()


# ------------------------------------------------------------------------------- losses


def _ternary_ce(logits: torch.Tensor, label: int) -> torch.Tensor:
  labels = torch.full(logits.shape[:1], label, dtype=torch.long, device=logits.device)
  return F.cross_entropy(logits, labels)


def ternary_discriminator_loss(d_src_fake: torch.Tensor, d_tgt_fake: torch.Tensor,
                               d_tgt_real: torch.Tensor) -> torch.Tensor:
  """:func:`jgan.losses.ternary_discriminator_loss` (DTN eq. 3)."""
  return (_ternary_ce(d_src_fake, TERNARY_SOURCE_FAKE)
          + _ternary_ce(d_tgt_fake, TERNARY_TARGET_FAKE)
          + _ternary_ce(d_tgt_real, TERNARY_TARGET_REAL))


def ternary_generator_loss(d_src_fake: torch.Tensor, d_tgt_fake: torch.Tensor) -> torch.Tensor:
  """:func:`jgan.losses.ternary_generator_loss` (DTN eq. 4)."""
  return (_ternary_ce(d_src_fake, TERNARY_TARGET_REAL)
          + _ternary_ce(d_tgt_fake, TERNARY_TARGET_REAL))


def batch_distance(a: torch.Tensor, b: torch.Tensor, *, distance: str) -> torch.Tensor:
  """jgan's L_CONST / L_TID distance: batch mean of a per-example distance.

  The per-example distances are over all non-batch elements, so the NCHW vs NHWC order of
  the images does not matter.
  """
  a, b = a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)
  if distance == "mse":
    per_example = torch.sum(torch.square(a - b), dim=-1)
  elif distance == "mean_squared":
    per_example = torch.mean(torch.square(a - b), dim=-1)
  elif distance == "l1":
    per_example = torch.sum(torch.abs(a - b), dim=-1)
  elif distance == "mean_abs":
    per_example = torch.mean(torch.abs(a - b), dim=-1)
  elif distance == "cosine":  # optax.losses.cosine_distance: squared norms clipped at eps
    unit = lambda x: x / torch.sqrt(torch.clamp(torch.sum(x * x, -1, keepdim=True),
                                                min=_COSINE_EPS))
    per_example = 1.0 - torch.sum(unit(a) * unit(b), dim=-1)
  else:
    raise ValueError(f"Unknown distance {distance!r}.")
  return torch.mean(per_example)


def total_variation(images: torch.Tensor, *, beta: float = 1.0,
                    eps: float = 1e-12) -> torch.Tensor:
  """:func:`jgan.losses.total_variation` of NCHW images (summed per image, batch mean)."""
  dx = F.pad(images[:, :, :, 1:] - images[:, :, :, :-1], (0, 1, 0, 0))
  dy = F.pad(images[:, :, 1:, :] - images[:, :, :-1, :], (0, 0, 0, 1))
  per_pixel = (torch.square(dx) + torch.square(dy) + eps) ** (beta / 2) - eps ** (beta / 2)
  return torch.mean(torch.sum(per_pixel, dim=(1, 2, 3)))


def matching_aware_discriminator_loss(d_real: torch.Tensor, d_wrong: torch.Tensor,
                                      d_fake: torch.Tensor, *, wrong_weight: float = 0.5,
                                      label_smoothing: float = 0.0) -> torch.Tensor:
  """:func:`jgan.losses.matching_aware_discriminator_loss` (GAN-CLS)."""
  bce = F.binary_cross_entropy_with_logits
  real = bce(d_real, torch.full_like(d_real, 1.0 - label_smoothing))
  wrong = bce(d_wrong, torch.zeros_like(d_wrong))
  fake = bce(d_fake, torch.zeros_like(d_fake))
  return real + wrong_weight * wrong + (1.0 - wrong_weight) * fake


def matching_aware_generator_loss(d_fake: torch.Tensor) -> torch.Tensor:
  """:func:`jgan.losses.matching_aware_generator_loss`: ``mean(softplus(-d_fake))``."""
  return torch.mean(F.softplus(-d_fake))


def attribute_classifier_loss(logits: torch.Tensor, labels: torch.Tensor, *,
                              num_classes: Sequence[int]) -> torch.Tensor:
  """:func:`jgan.losses.attribute_classifier_loss`: summed per-attribute CE, labels -1 skipped."""
  total = logits.new_zeros(())
  offset = 0
  labels = labels.long()  # cross_entropy's targets
  for a, k in enumerate(num_classes):
    present = labels[:, a] >= 0
    ce = F.cross_entropy(logits[:, offset:offset + k], torch.where(present, labels[:, a], 0),
                         reduction="none")
    total = total + torch.sum(torch.where(present, ce, 0.0)) / torch.clamp(present.sum(), min=1)
    offset += k
  return total


def _class_accuracy(logits: torch.Tensor, labels: torch.Tensor,
                    num_classes: Sequence[int]) -> torch.Tensor:
  """The ``class_accuracy`` metric of jgan's t2i step (all attributes, labels -1 skipped)."""
  hits, count, offset = logits.new_zeros(()), logits.new_zeros(()), 0
  for a, k in enumerate(num_classes):
    present = labels[:, a] >= 0
    pred = torch.argmax(logits[:, offset:offset + k], dim=-1)
    hits = hits + torch.sum(present & (pred == labels[:, a]))
    count = count + torch.sum(present)
    offset += k
  return hits / torch.clamp(count, min=1)


# --------------------------------------------------------------------------- DTN: f and step


class ConvClassifier(nn.Module):
  """:class:`jgan.models.ConvClassifier` in torch (DTN's f, e.g. ``digits_encoder``).

  Conv blocks (4x4 stride-2 conv without bias, batch norm, ReLU; flax's 'SAME' padding of a
  4x4 stride-2 conv on an even size is one pixel each side), global average pool, Linear
  ``feature_dim`` + ReLU ("features"), dropout, Linear ``num_classes`` ("logits"). Children
  carry jgan's names (``conv{i}``, ``bn{i}``, ``features``, ``logits``) so
  :func:`benchmarks.torch_ref.torch_gan.load_flax_params` loads jgan's variables into it.

  Shapes: x [B, C, H, W] -> {"features": [B, feature_dim], "logits": [B, num_classes]}.
  """

  def __init__(self, *, channels: int, num_classes: int = 10,
               widths: Sequence[int] = (32, 64, 128), feature_dim: int = 128,
               dropout_rate: float = 0.3):
    super().__init__()
    self.num_blocks = len(widths)
    c = channels
    for i, width in enumerate(widths):
      self.add_module(f"conv{i}", nn.Conv2d(c, width, 4, stride=2, padding=1, bias=False))
      # flax momentum 0.9 (the old average's weight) is torch's 0.1; both epsilon 1e-5.
      self.add_module(f"bn{i}", nn.BatchNorm2d(width, eps=1e-5, momentum=0.1))
      c = width
    self.features = nn.Linear(c, feature_dim)
    self.dropout = nn.Dropout(dropout_rate)
    self.logits = nn.Linear(feature_dim, num_classes)

  def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
    for i in range(self.num_blocks):
      x = F.relu(getattr(self, f"bn{i}")(getattr(self, f"conv{i}")(x)))
    features = F.relu(self.features(x.mean(dim=(2, 3))))  # global average pool
    return {"features": features, "logits": self.logits(self.dropout(features))}


class FrozenEncoder(nn.Module):
  """DTN's f as jgan's dtn task applies it: adapt the images to f's input, run the classifier
  in eval mode, take ``encoder.layer``; standardised by the kept mean / std when the config
  asks. No parameter of it is trained (gradients still flow to its input, for L_CONST)."""

  def __init__(self, encoder_config: Any, f_variables: Mapping[str, Any]):
    super().__init__()
    e = encoder_config
    if e.name != "classifier":
      raise NotImplementedError(f"torch mirror of DTN encoder {e.name!r}: only 'classifier'.")
    self.input_shape = tuple(int(v) for v in e.image_shape)
    self.layer = e.layer
    self.network = ConvClassifier(channels=self.input_shape[2], num_classes=e.num_classes,
                                  widths=tuple(e.widths), feature_dim=e.feature_dim)
    self.standardize = bool(e.get("standardize", False))
    network = f_variables["network"] if self.standardize else f_variables
    load_flax_params(self.network, network["params"], network["batch_stats"])
    if self.standardize:
      self.register_buffer("mean", _tensor(f_variables["mean"]))
      self.register_buffer("std", _tensor(f_variables["std"]))
    self.requires_grad_(False)
    self.eval()

  def train(self, mode: bool = True) -> FrozenEncoder:
    del mode  # always eval mode: running statistics, no dropout (jgan applies f with train=False)
    return super().train(False)

  def forward(self, images: torch.Tensor) -> torch.Tensor:
    out = self.network(adapt_images(images, self.input_shape))[self.layer]
    if self.standardize:
      out = (out - self.mean) / self.std
    return out


def dtn_random_inputs(config: Any, key: Any) -> dict[str, np.ndarray]:
  """The random draws of jgan's DTN step with ``key``: none (g is driven by f's features).

  Only ``source_augment`` would draw (with the step's key); the torch mirror does not cover it.
  """
  del key
  _check_no_source_augment(config)
  return {}


def _check_no_source_augment(config: Any) -> None:
  """The mirror covers the paper's step: no random augmentation anywhere in it."""
  a = config.get("source_augment", None)
  if a is not None and (a.flip or a.rotation):
    raise NotImplementedError("torch mirror of DTN with source_augment (flip / rotation).")
  p = config.loss.get("const_perturb", None)
  if p is not None and (p.zoom or p.shift or p.blur or p.get("min_blur", 0.0)):
    raise NotImplementedError("torch mirror of DTN with loss.const_perturb (set zoom, shift "
                              "and blur to 0).")
  if config.get("d_augment", ""):
    raise NotImplementedError("torch mirror of DTN with d_augment (set it to '').")
  if config.loss.get("const_contrastive_weight", 0.0):
    raise NotImplementedError("torch mirror of DTN with loss.const_contrastive_weight (set it "
                              "to 0).")
  if config.loss.get("decoder_warmup_steps", 0):
    raise NotImplementedError("torch mirror of DTN with loss.decoder_warmup_steps (set it to "
                              "0).")
  if config.encoder.get("target_standardize", "none") != "none":
    raise NotImplementedError("torch mirror of DTN with encoder.target_standardize (set it to "
                              "'none').")
  if config.model.discriminator.get("patch_layers", 0):
    raise NotImplementedError("torch mirror of DTN with a patch discriminator "
                              "(model.discriminator.patch_layers: set it to 0).")
  if config.loss.get("tid_distance") not in (None, config.loss.distance):
    raise NotImplementedError(f"torch mirror of DTN with loss.tid_distance="
                              f"{config.loss.tid_distance!r} (the mirror uses loss.distance "
                              "for L_TID too: set it to None).")


class DTNStep:
  """One jgan DTN train step (:func:`jgan.steps.make_dtn_step`) in PyTorch.

  Order and modes as in jgan: f(source), f(target) (f frozen, eval mode); one g forward on
  both (train mode: its running statistics move) gives D's fakes; D update on the three
  batches, one train-mode forward each (fakes of source, fakes of target, real targets, in
  that order); then the g update: a second g forward on both domains' features in train mode,
  D in train mode without touching its running statistics (jgan discards them), f on g's
  source translations for L_CONST.

  Args:
    config: a dtn config (``jgan.tasks.dtn.default_config()`` / ``experiments/dtn_digits``).
    image_shape: the target domain's (H, W, C) (what g draws).
    source_shape: the source domain's (H, W, C).
    f_variables: the frozen f's flax variables (``DTNState.f_variables``).
    g_params, g_batch_stats, d_params, d_batch_stats: jgan's initial weights
      (``DTNState``); None keeps torch's own initialisation.
    step: the number of completed steps (``DTNState.step``; only const_warmup_steps reads it).
    device: torch device.
  """

  def __init__(self, config: Any, *, image_shape: Sequence[int], source_shape: Sequence[int],
               f_variables: Mapping[str, Any], g_params: PyTree | None = None,
               g_batch_stats: PyTree | None = None, d_params: PyTree | None = None,
               d_batch_stats: PyTree | None = None, step: int = 0,
               device: torch.device | str | None = None):
    _check_no_source_augment(config)
    for group in ("generator", "discriminator"):
      if config.model[group].name != "dcgan":
        raise NotImplementedError(f"torch mirror of a {config.model[group].name!r} {group}.")
    if config.loss.distance not in ("mse", "mean_squared", "l1", "mean_abs", "cosine"):
      raise ValueError(f"Unknown config.loss.distance {config.loss.distance!r}.")

    h, w, c = (int(v) for v in image_shape)
    if h != w:
      raise ValueError(f"DCGAN needs square images, got {h}x{w}.")
    self.source_shape = tuple(int(v) for v in source_shape)
    self.const_weight = float(config.loss.const_weight)
    self.tid_weight = float(config.loss.tid_weight)
    self.tv_weight = float(config.loss.tv_weight)
    self.const_warmup_steps = int(config.loss.get("const_warmup_steps", 0))
    self.distance = config.loss.distance
    self.f = FrozenEncoder(config.encoder, f_variables).to(device)
    feature_dim = (config.encoder.feature_dim if config.encoder.layer == "features"
                   else config.encoder.num_classes)
    g_cfg, d_cfg = config.model.generator, config.model.discriminator
    for field in ("upsample", "output_upsample"):
      if g_cfg.get(field, "") not in ("", "subpixel", "conv_transpose"):
        raise NotImplementedError(f"torch mirror of DTN with {field}='resize_conv'.")
    self.g = DCGANGenerator(resolution=h, channels=c, width=g_cfg.width, latent_dim=feature_dim)
    self.d = DCGANDiscriminator(resolution=h, channels=c, width=d_cfg.width,
                                normalization=d_cfg.get("normalization", "batch"),
                                num_outputs=3)
    if g_params is not None:
      load_flax_params(self.g, g_params, g_batch_stats)
    if d_params is not None:
      load_flax_params(self.d, d_params, d_batch_stats)
    self.g.to(device).train()
    self.d.to(device).train()
    self.g_opt, self.d_opt = make_optimizers(config.optim, self.g.parameters(),
                                             self.d.parameters())
    self.step_count = int(step)

  @classmethod
  def from_state(cls, config: Any, state: Any, *, image_shape: Sequence[int],
                 source_shape: Sequence[int], device: torch.device | str | None = None
                 ) -> DTNStep:
    """The mirror of a jgan ``DTNState`` (f, g, D and the step; the optimisers start fresh,
    as ``init_dtn_state``'s)."""
    return cls(config, image_shape=image_shape, source_shape=source_shape,
               f_variables=state.f_variables, g_params=state.g_params,
               g_batch_stats=state.g_batch_stats, d_params=state.d_params,
               d_batch_stats=state.d_batch_stats, step=int(state.step), device=device)

  def _alpha(self) -> float:
    if not self.const_warmup_steps:
      return self.const_weight
    return self.const_weight * min(1.0, self.step_count / self.const_warmup_steps)

  def step(self, target: torch.Tensor, source: torch.Tensor) -> Metrics:
    """One step on target images [B, C, H, W] and source images [B, C', H', W'] in [-1, 1].

    Returns jgan's metrics (0-d tensors, detached): d_loss, d_accuracy, d_grad_norm, g_loss,
    g_gan, const, tid, tv, const_weight, g_grad_norm.
    """
    b = target.shape[0]
    with torch.no_grad():
      f_s = self.f(source)
      f_t = self.f(target)
      fake = self.g(torch.cat([f_s, f_t]))  # train mode: g's running statistics move

    d_params = list(self.d.parameters())
    self.d_opt.zero_grad(set_to_none=True)
    logits_s = self.d(fake[:b])
    logits_t = self.d(fake[b:])
    logits_r = self.d(target)
    d_loss = ternary_discriminator_loss(logits_s, logits_t, logits_r)
    d_loss.backward()
    metrics = {"d_loss": d_loss.detach(), "d_grad_norm": _grad_norm(d_params)}
    with torch.no_grad():
      correct = torch.cat([logits_s.argmax(-1) == TERNARY_SOURCE_FAKE,
                           logits_t.argmax(-1) == TERNARY_TARGET_FAKE,
                           logits_r.argmax(-1) == TERNARY_TARGET_REAL])
      metrics["d_accuracy"] = correct.float().mean()
    self.d_opt.step()

    g_params = list(self.g.parameters())
    alpha = self._alpha()
    self.g_opt.zero_grad(set_to_none=True)
    # One g call on both domains' features (one batch-norm statistic), as jgan.
    fake = self.g(torch.cat([f_s, f_t]))
    fake_s, fake_t = fake[:b], fake[b:]
    with _no_param_grads(self.d), running_stats_frozen(self.d):
      logits_s = self.d(fake_s)
      logits_t = self.d(fake_t)
    terms = {
        "g_gan": ternary_generator_loss(logits_s, logits_t),
        "const": batch_distance(f_s, self.f(fake_s), distance=self.distance),
        "tid": batch_distance(target, fake_t, distance=self.distance),
        "tv": total_variation(fake) if self.tv_weight else fake.new_zeros(()),
    }
    g_loss = (terms["g_gan"] + alpha * terms["const"] + self.tid_weight * terms["tid"]
              + self.tv_weight * terms["tv"])
    g_loss.backward()
    metrics["g_grad_norm"] = _grad_norm(g_params)
    self.g_opt.step()
    self.step_count += 1
    metrics.update({k: v.detach() for k, v in terms.items()})
    metrics["g_loss"] = g_loss.detach()
    metrics["const_weight"] = torch.tensor(alpha)
    return metrics


# -------------------------------------------------------------------------- text to image


def _features_size(resolution: int) -> int:
  """Side of the DCGAN discriminator's last feature map (jgan.models.dcgan)."""
  return 7 if resolution == 28 else 4


def _discriminator_channels(resolution: int, width: int) -> int:
  """Channels of the DCGAN discriminator's last feature map (jgan.models.dcgan)."""
  return {64: 8, 32: 4, 28: 2}[resolution] * width


class TextConditionalGenerator(nn.Module):
  """:class:`jgan.models.TextConditionalGenerator` in torch: ``(z, text) -> (images, kl)``.

  ``conditioning="projection"``: c = LeakyReLU_0.2(Dense(text)); ``"augmentation"``: mu,
  logvar = split(LeakyReLU_0.2(Dense(text))), c = mu + exp(logvar / 2) * eps in train mode
  (``eps`` given, or drawn here), mu in eval mode; kl is the batch-mean KL to N(0, I) (0.0 for
  "projection"). The DCGAN generator (``dcgan``) runs on [z, c].
  """

  def __init__(self, *, resolution: int, channels: int, width: int, latent_dim: int,
               text_dim: int, text_features: int = 128, conditioning: str = "projection"):
    super().__init__()
    if conditioning not in ("projection", "augmentation"):
      raise ValueError(f"Unknown conditioning {conditioning!r}.")
    self.conditioning = conditioning
    self.text_features = text_features
    self.text = nn.Linear(text_dim, text_features * (2 if conditioning == "augmentation" else 1))
    self.dcgan = DCGANGenerator(resolution=resolution, channels=channels, width=width,
                                latent_dim=latent_dim + text_features)
    _dcgan_init_(self)

  def forward(self, z: torch.Tensor, text: torch.Tensor, *, eps: torch.Tensor | None = None
              ) -> tuple[torch.Tensor, torch.Tensor | float]:
    c = F.leaky_relu(self.text(text), 0.2)
    kl: torch.Tensor | float = 0.0
    if self.conditioning == "augmentation":
      mu, logvar = torch.chunk(c, 2, dim=-1)
      kl = 0.5 * torch.mean(torch.sum(torch.exp(logvar) + mu ** 2 - 1.0 - logvar, dim=-1))
      c = mu
      if self.training:
        eps = torch.randn_like(mu) if eps is None else eps
        c = mu + torch.exp(0.5 * logvar) * eps
    return self.dcgan(torch.cat([z, c], dim=-1)), kl


class TextConditionalDiscriminator(nn.Module):
  """:class:`jgan.models.TextConditionalDiscriminator` in torch: ``(x, text) -> (logit [B],
  class logits [B, num_classes])``.

  The DCGAN trunk (``dcgan``, its last feature map s x s x c), the class head on the trunk's
  map alone (``classes``), the text projection (Dense + LeakyReLU 0.2) replicated over s x s
  and concatenated after the map's channels, a 1x1 conv (``joint``) + normalisation +
  LeakyReLU 0.2 and a Dense to the logit (``out``). The two Dense heads read the map in
  flax's NHWC flatten order; ``flax_nhwc_inputs`` tells ``load_flax_params`` to
  permute their rows.
  """

  def __init__(self, *, resolution: int, channels: int, width: int, text_dim: int,
               text_features: int = 128, num_classes: int = 0, normalization: str = "batch"):
    super().__init__()
    self.size = s = _features_size(resolution)
    c = _discriminator_channels(resolution, width)
    self.dcgan = DCGANDiscriminator(resolution=resolution, channels=channels, width=width,
                                    normalization=normalization, features_only=True)
    with warnings.catch_warnings():  # num_classes=0: an empty Linear, as flax's Dense(0)
      warnings.simplefilter("ignore", UserWarning)
      self.classes = nn.Linear(s * s * c, num_classes)
    self.text = nn.Linear(text_dim, text_features)
    self.joint = nn.Conv2d(c + text_features, c, 1, bias=normalization != "batch")
    if normalization == "batch":
      self.joint_norm: nn.Module = nn.BatchNorm2d(c, eps=1e-5, momentum=0.1)
    elif normalization == "layer":  # flax LayerNorm over (H, W, C), per-channel affine
      self.joint_norm = nn.GroupNorm(1, c, eps=1e-5)
    else:
      self.joint_norm = nn.Identity()
    self.out = nn.Linear(s * s * c, 1)
    # flax flattens the NHWC map for both Dense heads: load_flax_params permutes their rows.
    self.flax_nhwc_inputs = {"classes": (s, s, c), "out": (s, s, c)}
    _dcgan_init_(self)

  def forward(self, x: torch.Tensor, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    h = self.dcgan(x)
    classes = self.classes(h.flatten(1))  # the class head reads the image alone
    t = F.leaky_relu(self.text(text), 0.2)
    t = t[:, :, None, None].expand(-1, -1, self.size, self.size)
    j = F.leaky_relu(self.joint_norm(self.joint(torch.cat([h, t], dim=1))), 0.2)
    return self.out(j.flatten(1))[:, 0], classes


def load_text_generator_params(module: TextConditionalGenerator, params: PyTree,
                               batch_stats: PyTree | None = None) -> TextConditionalGenerator:
  """Copies a jgan TextConditionalGenerator's params (and batch_stats) into ``module``."""
  return load_flax_params(module, params, batch_stats)


def load_text_discriminator_params(module: TextConditionalDiscriminator, params: PyTree,
                                   batch_stats: PyTree | None = None
                                   ) -> TextConditionalDiscriminator:
  """Copies a jgan TextConditionalDiscriminator's params (and batch_stats) into ``module``."""
  return load_flax_params(module, params, batch_stats)


def _condition_noise(key: Any, shape: tuple[int, ...]) -> np.ndarray:
  """The eps of conditioning augmentation that jgan's TextConditionalGenerator draws with the
  ``"condition"`` rng ``key``: its first ``make_rng("condition")`` at the root scope, which a
  root module making the same call reproduces (flax folds the call's counter into the key)."""
  class _Noise(flax_nn.Module):
    @flax_nn.compact
    def __call__(self):
      return jax.random.normal(self.make_rng("condition"), shape)

  return np.asarray(_Noise().apply({}, rngs={"condition": key}))


def t2i_random_inputs(config: Any, key: Any, *, batch_size: int,
                      captions_per_image: int | None = None,
                      device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
  """The random draws of jgan's t2i step (:func:`jgan.tasks.t2i.make_t2i_step`) with ``key``,
  as keyword arguments of :meth:`T2IStep.step`.

  ``pick`` (which caption of each image: ``randint(fold_in(key, 0))``), the D update's noise
  ``z_d`` and the G update's ``z_g`` (``normal`` of the first half of ``split(fold_in(key, 1))``
  and ``split(fold_in(key, 2))``) and, with conditioning augmentation, ``eps_d`` / ``eps_g``
  (from the second halves, through the generator's ``make_rng("condition")``).
  """
  b = batch_size
  k = captions_per_image or config.data.captions_per_image
  latent_dim = config.model.latent_dim
  g_cfg = config.model.generator
  augmentation = g_cfg.get("conditioning", "projection") == "augmentation"
  pick = jax.random.randint(jax.random.fold_in(key, 0), (b,), 0, k)
  out = {"pick": torch.tensor(np.asarray(pick), dtype=torch.long, device=device)}
  for name, i in (("d", 1), ("g", 2)):
    k_z, k_c = jax.random.split(jax.random.fold_in(key, i))
    out[f"z_{name}"] = _tensor(jax.random.normal(k_z, (b, latent_dim), jnp.float32), device)
    if augmentation:
      out[f"eps_{name}"] = _tensor(_condition_noise(k_c, (b, g_cfg.text_features)), device)
  return out


class T2IStep:
  """One jgan text-to-image train step (:func:`jgan.tasks.t2i.make_t2i_step`) in PyTorch.

  Order and modes as in jgan: pick one caption per image; G(z_d, text) in train mode (its
  running statistics move) gives D's fakes; the D update runs D in train mode on (real, text),
  (real rolled by one, text) and (fake, text), in that order (its running statistics move
  three times), with GAN-CLS plus ``class_weight`` times the attribute loss of the real (and,
  weighted ``class_fake_weight``, fake) images; the G update draws G(z_g, text) in train mode
  and runs D in train mode without touching its running statistics (jgan discards them).

  Args:
    config: a t2i config (``jgan.tasks.t2i.default_config()`` / ``experiments/t2i_avatars``).
    image_shape: (H, W, C).
    text_dim: the sentence embeddings' size E.
    g_params, g_batch_stats, d_params, d_batch_stats: jgan's initial weights (``GANState``);
      None keeps torch's own initialisation.
    device: torch device.
  """

  def __init__(self, config: Any, *, image_shape: Sequence[int], text_dim: int,
               g_params: PyTree | None = None, g_batch_stats: PyTree | None = None,
               d_params: PyTree | None = None, d_batch_stats: PyTree | None = None,
               device: torch.device | str | None = None):
    h, w, c = (int(v) for v in image_shape)
    if h != w:
      raise ValueError(f"DCGAN needs square images, got {h}x{w}.")
    _, self.num_classes = captioned.attribute_spec(config.data)
    loss = config.loss
    self.wrong_weight = float(loss.wrong_weight)
    self.label_smoothing = float(loss.label_smoothing)
    self.class_weight = float(loss.class_weight)
    self.class_fake_weight = float(loss.class_fake_weight)
    self.ca_kl_weight = float(loss.ca_kl_weight)
    self.use_classes = self.class_weight > 0
    self.latent_dim = int(config.model.latent_dim)
    self.ema_decay = config.ema_decay or None
    self.check_config(config)
    g_cfg, d_cfg = config.model.generator, config.model.discriminator
    self.kl_on = g_cfg.get("conditioning", "projection") == "augmentation"
    self.g = TextConditionalGenerator(
        resolution=h, channels=c, width=g_cfg.width, latent_dim=self.latent_dim,
        text_dim=text_dim, text_features=g_cfg.text_features,
        conditioning=g_cfg.get("conditioning", "projection"))
    self.d = TextConditionalDiscriminator(
        resolution=h, channels=c, width=d_cfg.width, text_dim=text_dim,
        text_features=d_cfg.text_features,
        num_classes=sum(self.num_classes) if self.use_classes else 0,
        normalization=d_cfg.get("normalization", "batch"))
    if g_params is not None:
      load_text_generator_params(self.g, g_params, g_batch_stats)
    if d_params is not None:
      load_text_discriminator_params(self.d, d_params, d_batch_stats)
    self.g.to(device).train()
    self.d.to(device).train()
    self.g_opt, self.d_opt = make_optimizers(config.optim, self.g.parameters(),
                                             self.d.parameters())
    self.ema = ([p.detach().clone() for p in self.g.parameters()]
                if self.ema_decay is not None else None)
    self.ema_updates = 0  # t of the EMA's warm-up

  @staticmethod
  def check_config(config: Any) -> None:
    """Raises NotImplementedError naming the first key of a t2i config the mirror does not
    compute (cheap: builds nothing, so tests can check a benchmark's config quickly)."""
    for group in ("generator", "discriminator"):
      if config.model[group].name != "dcgan":
        raise NotImplementedError(f"torch mirror of a {config.model[group].name!r} {group}.")
    g_cfg, d_cfg, loss = config.model.generator, config.model.discriminator, config.loss
    if g_cfg.get("block_conditioning", False) or d_cfg.get("head", "concat") != "concat":
      raise NotImplementedError("torch mirror of t2i with block_conditioning or a projection "
                                "head (the mirror is Reed et al.'s models).")
    for term in ("mode_seeking_weight", "mode_seeking_weight_end", "ma_gp_weight",
                 "latent_regression_weight"):
      if loss.get(term, 0.0):
        raise NotImplementedError(f"torch mirror of t2i with loss.{term}={loss[term]} (the "
                                  "mirror has Reed et al.'s losses only: set it to 0 or None).")
    if loss.get("g_class_weight", None) not in (None, loss.class_weight):
      raise NotImplementedError(f"torch mirror of t2i with loss.g_class_weight="
                                f"{loss.g_class_weight} (the mirror weighs D's and G's class "
                                "losses alike: set it to None).")

  @classmethod
  def from_state(cls, config: Any, state: Any, *, image_shape: Sequence[int], text_dim: int,
                 device: torch.device | str | None = None) -> T2IStep:
    """The mirror of a jgan ``GANState`` of the t2i task (G and D; the optimisers start
    fresh, as ``init_t2i_state``'s)."""
    return cls(config, image_shape=image_shape, text_dim=text_dim, g_params=state.g_params,
               g_batch_stats=state.g_batch_stats, d_params=state.d_params,
               d_batch_stats=state.d_batch_stats, device=device)

  def step(self, images: torch.Tensor, text_embeddings: torch.Tensor, attributes: torch.Tensor,
           *, pick: torch.Tensor | None = None, z_d: torch.Tensor | None = None,
           z_g: torch.Tensor | None = None, eps_d: torch.Tensor | None = None,
           eps_g: torch.Tensor | None = None) -> Metrics:
    """One step on images [B, C, H, W] in [-1, 1], caption embeddings [B, K, E] and attribute
    labels int [B, A] (-1: not given). The random inputs (see :func:`t2i_random_inputs`) are
    drawn with torch's generator where not given.

    Returns jgan's metrics (0-d tensors, detached): d_loss, d_gan, d_real, d_wrong, d_fake,
    d_grad_norm, g_loss, g_gan, g_grad_norm; d_class, g_class, class_accuracy_real,
    class_accuracy_fake with the class heads; ca_kl with conditioning augmentation.
    """
    b, k = text_embeddings.shape[:2]
    dev = images.device
    if pick is None:
      pick = torch.randint(0, k, (b,), device=dev)
    text_emb = text_embeddings[torch.arange(b, device=dev), pick.to(dev)]
    z_d = torch.randn(b, self.latent_dim, device=dev) if z_d is None else z_d.to(dev)
    z_g = torch.randn(b, self.latent_dim, device=dev) if z_g is None else z_g.to(dev)
    eps_d = None if eps_d is None else eps_d.to(dev)
    eps_g = None if eps_g is None else eps_g.to(dev)
    labels = attributes.to(dev).long()

    with torch.no_grad():
      fake, _ = self.g(z_d, text_emb, eps=eps_d)  # train mode: G's running statistics move

    d_params = list(self.d.parameters())
    self.d_opt.zero_grad(set_to_none=True)
    d_real, c_real = self.d(images, text_emb)
    d_wrong, _ = self.d(torch.roll(images, 1, dims=0), text_emb)  # GAN-CLS's wrong pairs
    d_fake, c_fake = self.d(fake, text_emb)
    gan = matching_aware_discriminator_loss(d_real, d_wrong, d_fake,
                                            wrong_weight=self.wrong_weight,
                                            label_smoothing=self.label_smoothing)
    d_loss = gan
    metrics: Metrics = {}
    if self.use_classes:
      cls = (attribute_classifier_loss(c_real, labels, num_classes=self.num_classes)
             + self.class_fake_weight * attribute_classifier_loss(
                 c_fake, labels, num_classes=self.num_classes))
      d_loss = d_loss + self.class_weight * cls
      metrics["d_class"] = cls.detach()
    d_loss.backward()
    with torch.no_grad():
      metrics.update(d_gan=gan.detach(), d_loss=d_loss.detach(),
                     d_real=torch.sigmoid(d_real).mean(), d_wrong=torch.sigmoid(d_wrong).mean(),
                     d_fake=torch.sigmoid(d_fake).mean(), d_grad_norm=_grad_norm(d_params))
      if self.use_classes:
        metrics["class_accuracy_real"] = _class_accuracy(c_real, labels, self.num_classes)
    self.d_opt.step()

    g_params = list(self.g.parameters())
    self.g_opt.zero_grad(set_to_none=True)
    fake, kl = self.g(z_g, text_emb, eps=eps_g)
    with _no_param_grads(self.d), running_stats_frozen(self.d):
      d_fake, c_fake = self.d(fake, text_emb)
    gan = matching_aware_generator_loss(d_fake)
    g_loss = gan
    metrics["g_gan"] = gan.detach()
    if self.use_classes:
      cls = attribute_classifier_loss(c_fake, labels, num_classes=self.num_classes)
      g_loss = g_loss + self.class_weight * cls
      metrics["g_class"] = cls.detach()
      metrics["class_accuracy_fake"] = _class_accuracy(c_fake.detach(), labels, self.num_classes)
    if self.kl_on:
      g_loss = g_loss + self.ca_kl_weight * kl
      metrics["ca_kl"] = kl.detach()
    g_loss.backward()
    metrics["g_loss"] = g_loss.detach()
    metrics["g_grad_norm"] = _grad_norm(g_params)
    self.g_opt.step()
    if self.ema is not None:
      # jgan.steps.update_ema: the decay warmed up, min(decay, (1 + t) / (10 + t)).
      decay = min(self.ema_decay, (1.0 + self.ema_updates) / (10.0 + self.ema_updates))
      self.ema_updates += 1
      with torch.no_grad():
        for e, p in zip(self.ema, g_params):
          e.mul_(decay).add_(p, alpha=1.0 - decay)
    return metrics


__all__ = [
    "ConvClassifier",
    "DTNStep",
    "FrozenEncoder",
    "T2IStep",
    "TextConditionalDiscriminator",
    "TextConditionalGenerator",
    "adapt_images",
    "attribute_classifier_loss",
    "batch_distance",
    "dtn_random_inputs",
    "load_text_discriminator_params",
    "load_text_generator_params",
    "make_optimizers",
    "matching_aware_discriminator_loss",
    "matching_aware_generator_loss",
    "t2i_random_inputs",
    "ternary_discriminator_loss",
    "ternary_generator_loss",
    "to_float",
    "total_variation",
]
