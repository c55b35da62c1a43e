"""The PyTorch reference step of each workload, started from jgan's initial weights.

Needs the optional ``bench`` extra (torch). The references are eager PyTorch mirrors of jgan's
steps (:mod:`benchmarks.torch_ref.torch_gan`, :mod:`benchmarks.torch_ref.torch_dtn`);
tests/test_bench_torch_*.py prove each computes what jgan's step computes.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from benchmarks.torch_ref import torch_dtn, torch_gan
from jgan.bench import workloads


def _nchw(images: Any) -> torch.Tensor:
  """uint8 NHWC -> float32 NCHW in [-1, 1] (what a PyTorch data loader hands the step)."""
  x = torch.from_numpy(np.asarray(images, dtype=np.float32) / 127.5 - 1.0)
  return x.permute(0, 3, 1, 2).contiguous()


def build_torch(config, state, batch: dict, *, compile_models: bool = False
                ) -> Callable[[], Any]:
  """A no-argument function running one reference step on ``batch`` (numpy arrays).

  ``state`` is jgan's initial state (both start from the same weights). ``compile_models``
  wraps the networks in ``torch.compile`` (the step itself stays eager); it raises what
  torch raises where that does not work (e.g. the gradient penalty's double backward).
  """
  shape = workloads.image_shape(config.data)
  if config.task == "gan":
    ref = torch_gan.GANStep(config, image_shape=shape)
    ref.load_jgan_state(state)
    nets = ("generator", "discriminator")
    real = _nchw(batch["image"])
    run = lambda: ref.step(real)
  elif config.task == "dtn":
    ref = torch_dtn.DTNStep.from_state(config, state, image_shape=shape,
                                       source_shape=workloads.image_shape(config.source_data))
    nets = ("g", "d")
    target, source = _nchw(batch["image"]), _nchw(batch["source_image"])
    run = lambda: ref.step(target, source)
  elif config.task == "t2i":
    text_dim = batch["text_embedding"].shape[-1]
    ref = torch_dtn.T2IStep.from_state(config, state, image_shape=shape, text_dim=text_dim)
    nets = ("g", "d")
    images = _nchw(batch["image"])
    text = torch.from_numpy(np.asarray(batch["text_embedding"], np.float32))
    attributes = torch.from_numpy(np.asarray(batch["attributes"], np.int64))
    run = lambda: ref.step(images, text, attributes)
  else:
    raise ValueError(f"No PyTorch reference for task {config.task!r}.")
  if compile_models:
    for name in nets:
      setattr(ref, name, torch.compile(getattr(ref, name)))
  return run
