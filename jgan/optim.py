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


SCHEDULES = ("constant", "cosine", "linear_decay")


def learning_rate_schedule(learning_rate: float, *, schedule: str = "constant",
                           total_steps: int | None = None, decay_start: float = 0.0
                           ) -> float | optax.Schedule:
  """A learning rate over an optimizer's updates: ``learning_rate`` for the first
  ``decay_start * total_steps`` updates, then (``schedule``) constant, or decayed to 0 at
  ``total_steps`` linearly (``"linear_decay"``, CycleGAN's recipe) or by a half cosine
  (``"cosine"``).

  A decay shrinks a GAN's last oscillations, so its final checkpoint is a settled one rather
  than wherever the game stood at the last step; a classifier's last steps settle too.

  References:
    Zhu et al., "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial
    Networks", ICCV 2017, Sec. 4 (constant, then linear decay to zero); Loshchilov & Hutter,
    "SGDR", ICLR 2017 (cosine).
  """
  if schedule not in SCHEDULES:
    raise ValueError(f"Unknown config.optim.schedule {schedule!r}; allowed: "
                     f"{', '.join(map(repr, SCHEDULES))}.")
  if schedule == "constant":
    return learning_rate
  if not total_steps or total_steps < 1:
    raise ValueError(f"schedule={schedule!r} needs total_steps >= 1, got {total_steps!r}.")
  if not 0.0 <= decay_start < 1.0:
    raise ValueError(f"config.optim.decay_start must be in [0, 1), got {decay_start!r}.")
  begin = int(round(decay_start * total_steps))
  if schedule == "linear_decay":
    return optax.linear_schedule(learning_rate, 0.0, transition_steps=total_steps - begin,
                                 transition_begin=begin)
  return optax.join_schedules(
      [optax.constant_schedule(learning_rate),
       optax.cosine_decay_schedule(learning_rate, decay_steps=total_steps - begin)], [begin])


def two_player_config() -> ml_collections.ConfigDict:
  """The ``optim`` group of a two-network task (GAN, DTN): Adam 2e-4, betas (0.5, 0.999),
  constant learning rates (``schedule``: :data:`SCHEDULES`, from ``decay_start`` of the
  run)."""
  return ml_collections.ConfigDict(
      {"name": "adam", "g_lr": 2e-4, "d_lr": 2e-4, "b1": 0.5, "b2": 0.999,
       "schedule": "constant", "decay_start": 0.5})  # e.g. "linear_decay" over the 2nd half


def two_player_optimizers(c: ml_collections.ConfigDict, *, total_steps: int | None = None,
                          d_updates_per_step: int = 1
                          ) -> tuple[optax.GradientTransformation, optax.GradientTransformation]:
  """(G's, D's) optimizers of a :func:`two_player_config` group (betas for Adam only).

  ``total_steps``: the run's steps, for a decaying ``c.schedule``; D's schedule counts
  ``d_updates_per_step`` updates a step (WGAN-GP's critic updates).
  """
  schedule = c.get("schedule", "constant")

  def make(learning_rate: float, updates: int) -> optax.GradientTransformation:
    lr = learning_rate_schedule(
        learning_rate, schedule=schedule, decay_start=c.get("decay_start", 0.5),
        total_steps=None if total_steps is None else total_steps * updates)
    kwargs = {"learning_rate": lr}
    if c.name == "adam":
      kwargs.update(b1=c.b1, b2=c.b2)
    return make_optimizer(c.name, **kwargs)

  return make(c.g_lr, 1), make(c.d_lr, d_updates_per_step)
