"""Generators, discriminators and shared layers, with an explicit name -> class registry.

Example:
  g = build_generator("dcgan", resolution=32, channels=3, width=64)
  d = build_discriminator("dcgan", resolution=32, normalization="layer")
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import flax.linen as nn

from jgan.models.classifier import ConvClassifier
from jgan.models.dcgan import DCGANDiscriminator, DCGANGenerator, generator_params_to_subpixel
from jgan.models.layers import (
    ResizeConv,
    SubpixelConvTranspose,
    conv_transpose_kernel_to_subpixel,
    subpixel_kernel_to_conv_transpose,
    torch_conv_transpose_weight_to_flax,
)
from jgan.models.dlib_resnet import DlibFaceResNet, load_dlib_face_resnet
from jgan.models.inception import InceptionV3FID, load_fid_inception_params
from jgan.models.mlp import MLPDiscriminator, MLPGenerator
from jgan.models.t2i import TextConditionalDiscriminator, TextConditionalGenerator

GENERATORS: dict[str, type[nn.Module]] = {"mlp": MLPGenerator, "dcgan": DCGANGenerator}
DISCRIMINATORS: dict[str, type[nn.Module]] = {"mlp": MLPDiscriminator, "dcgan": DCGANDiscriminator}
# Text-conditional models: G(z, text, *, train) -> images; D(x, text, *, train) -> (logit, classes).
TEXT_GENERATORS: dict[str, type[nn.Module]] = {"dcgan": TextConditionalGenerator}
TEXT_DISCRIMINATORS: dict[str, type[nn.Module]] = {"dcgan": TextConditionalDiscriminator}

__all__ = [
    "ConvClassifier",
    "DISCRIMINATORS",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "DlibFaceResNet",
    "GENERATORS",
    "InceptionV3FID",
    "MLPDiscriminator",
    "MLPGenerator",
    "ResizeConv",
    "SubpixelConvTranspose",
    "TEXT_DISCRIMINATORS",
    "TEXT_GENERATORS",
    "TextConditionalDiscriminator",
    "TextConditionalGenerator",
    "build_discriminator",
    "build_generator",
    "build_text_discriminator",
    "build_text_generator",
    "data_fields",
    "conv_transpose_kernel_to_subpixel",
    "generator_params_to_subpixel",
    "load_dlib_face_resnet",
    "load_fid_inception_params",
    "module_fields",
    "subpixel_kernel_to_conv_transpose",
    "torch_conv_transpose_weight_to_flax",
]


def module_fields(cls: type[nn.Module]) -> tuple[str, ...]:
  """The constructor fields of a flax Module class (without flax's ``parent`` and ``name``)."""
  return tuple(
      f.name for f in dataclasses.fields(cls) if f.init and f.name not in ("parent", "name"))


def _build(kind: str, registry: dict[str, type[nn.Module]], name: str, kwargs: dict[str, Any]):
  if name not in registry:
    raise ValueError(f"unknown {kind} {name!r}; allowed: {sorted(registry)}")
  cls = registry[name]
  fields = module_fields(cls)
  bad = sorted(set(kwargs) - set(fields))
  if bad:
    raise ValueError(
        f"{kind} {name!r} ({cls.__name__}) has no field(s) {bad}; valid fields: {list(fields)}")
  try:
    return cls(**kwargs)
  except TypeError as e:  # e.g. a missing required field such as `resolution`.
    raise ValueError(
        f"cannot build {kind} {name!r} ({cls.__name__}) from {kwargs}: {e}; "
        f"valid fields: {list(fields)}") from e


def data_fields(cls: type[nn.Module], image_shape: Sequence[int]) -> dict[str, Any]:
  """The fields of ``cls`` that follow from the data's image shape ``(H, W, C)``.

  By field name: ``output_shape`` is the whole shape, ``resolution`` the (square) side,
  ``channels`` C. So an experiment names a model and its own fields, and the data fills
  in the rest.
  """
  h, w, c = (int(v) for v in image_shape)
  fields = module_fields(cls)
  out: dict[str, Any] = {}
  if "output_shape" in fields:
    out["output_shape"] = (h, w, c)
  if "resolution" in fields:
    if h != w:
      raise ValueError(f"{cls.__name__} needs square images, the data's are {h}x{w}.")
    out["resolution"] = h
  if "channels" in fields:
    out["channels"] = c
  return out


def _build_for(kind, registry, name, image_shape, kwargs):
  if image_shape is not None and name in registry:
    kwargs = {**data_fields(registry[name], image_shape), **kwargs}
  return _build(kind, registry, name, kwargs)


def build_generator(name: str, *, image_shape: Sequence[int] | None = None,
                    **kwargs: Any) -> nn.Module:
  """Builds ``GENERATORS[name](**kwargs)``; a bad name or field raises ValueError naming it.

  With ``image_shape`` the data-dependent fields (see :func:`data_fields`) are filled in
  unless given explicitly.
  """
  return _build_for("generator", GENERATORS, name, image_shape, kwargs)


def build_discriminator(name: str, *, image_shape: Sequence[int] | None = None,
                        **kwargs: Any) -> nn.Module:
  """Builds ``DISCRIMINATORS[name](**kwargs)``, like :func:`build_generator`."""
  return _build_for("discriminator", DISCRIMINATORS, name, image_shape, kwargs)


def build_text_generator(name: str, *, image_shape: Sequence[int] | None = None,
                         **kwargs: Any) -> nn.Module:
  """Builds ``TEXT_GENERATORS[name](**kwargs)``, like :func:`build_generator`."""
  return _build_for("text generator", TEXT_GENERATORS, name, image_shape, kwargs)


def build_text_discriminator(name: str, *, image_shape: Sequence[int] | None = None,
                             **kwargs: Any) -> nn.Module:
  """Builds ``TEXT_DISCRIMINATORS[name](**kwargs)``, like :func:`build_generator`."""
  return _build_for("text discriminator", TEXT_DISCRIMINATORS, name, image_shape, kwargs)
