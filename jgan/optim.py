"""Optimizers by name, built from a config group."""

from __future__ import annotations

from typing import Any, Callable

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
