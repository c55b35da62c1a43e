"""Optimizers by name, built from a config group."""

from __future__ import annotations

from typing import Any, Callable

import ml_collections
import optax


def adam(*, learning_rate: float, b1: float = 0.9, b2: float = 0.999,
         eps: float = 1e-8) -> optax.GradientTransformation:
  return optax.adam(learning_rate, b1=b1, b2=b2, eps=eps)


def rmsprop(*, learning_rate: float, decay: float = 0.9,
            eps: float = 1e-8) -> optax.GradientTransformation:
  return optax.rmsprop(learning_rate, decay=decay, eps=eps)


def sgd(*, learning_rate: float, momentum: float = 0.0) -> optax.GradientTransformation:
  return optax.sgd(learning_rate, momentum=momentum or None)


OPTIMIZERS: dict[str, Callable[..., optax.GradientTransformation]] = {
    "adam": adam,
    "rmsprop": rmsprop,
    "sgd": sgd,
}


def make_optimizer(name: str, **kwargs: Any) -> optax.GradientTransformation:
  """``OPTIMIZERS[name](**kwargs)`` with errors that name the allowed values."""
  if name not in OPTIMIZERS:
    raise ValueError(f"Unknown optimizer {name!r}; available: {', '.join(sorted(OPTIMIZERS))}.")
  try:
    return OPTIMIZERS[name](**kwargs)
  except TypeError as e:
    raise ValueError(f"Bad arguments for optimizer {name!r}: {e}.") from None


def two_player_config() -> ml_collections.ConfigDict:
  """The ``optim`` group of a two-network task (GAN, DTN): Adam 2e-4, betas (0.5, 0.999)."""
  return ml_collections.ConfigDict(
      {"name": "adam", "g_lr": 2e-4, "d_lr": 2e-4, "b1": 0.5, "b2": 0.999})


def two_player_optimizers(c: ml_collections.ConfigDict
                          ) -> tuple[optax.GradientTransformation, optax.GradientTransformation]:
  """(G's, D's) optimizers of a :func:`two_player_config` group (betas for Adam only)."""

  def make(learning_rate: float) -> optax.GradientTransformation:
    kwargs = {"learning_rate": learning_rate}
    if c.name == "adam":
      kwargs.update(b1=c.b1, b2=c.b2)
    return make_optimizer(c.name, **kwargs)

  return make(c.g_lr), make(c.d_lr)
