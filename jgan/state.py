"""Train state: one pytree of arrays that jits, shards and checkpoints as a whole."""

from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp

PyTree = Any


@flax.struct.dataclass
class GANState:
  """State of a two-player (generator, discriminator) GAN.

  Attributes:
    step: number of completed train steps (one step = ``n_critic`` D updates and one G
      update), int32 scalar.
    g_params, d_params: the two networks' ``params`` collections.
    g_batch_stats, d_batch_stats: their ``batch_stats`` collections ({} without BN).
    g_opt_state, d_opt_state: optax states of the two optimizers.
    ema_g_params: exponential moving average of ``g_params``, or None when EMA is off.
  """

  step: jax.Array
  g_params: PyTree
  d_params: PyTree
  g_batch_stats: PyTree
  d_batch_stats: PyTree
  g_opt_state: PyTree
  d_opt_state: PyTree
  ema_g_params: PyTree | None = None

  def generator_variables(self, *, use_ema: bool = False) -> dict[str, PyTree]:
    """Flax variables for ``generator.apply`` (the EMA params when asked and present)."""
    params = self.ema_g_params if use_ema and self.ema_g_params is not None else self.g_params
    return {"params": params, "batch_stats": self.g_batch_stats}


def split_variables(variables: PyTree) -> tuple[PyTree, PyTree]:
  """(params, batch_stats) of a flax variables dict; batch_stats is {} when absent."""
  variables = dict(variables)
  params = variables.pop("params")
  batch_stats = variables.pop("batch_stats", {})
  if variables:
    raise ValueError(f"Unsupported variable collections {sorted(variables)}: jgan models keep "
                     "only 'params' and 'batch_stats'.")
  return params, batch_stats


def count_params(tree: PyTree) -> int:
  return int(sum(x.size for x in jax.tree.leaves(tree)))


def tree_all_finite(tree: PyTree) -> jax.Array:
  leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]
  return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


@flax.struct.dataclass
class DTNState:
  """State of a Domain Transfer Network: trained g and D, and the frozen encoder f.

  Attributes:
    step: completed train steps (one D update and one g update each), int32 scalar.
    g_params, d_params, g_batch_stats, d_batch_stats, g_opt_state, d_opt_state: as in
      :class:`GANState`.
    f_variables: the frozen encoder's flax variables (never updated; kept in the state so
      that a checkpoint holds everything a translation needs and f is sharded like the rest).
    ema_g_params: exponential moving average of ``g_params``, or None when EMA is off.
    ema_g_batch_stats: the EMA generator's own batch-norm statistics, tracked on the training
      inputs each step (None when EMA is off).
  """

  step: jax.Array
  g_params: PyTree
  d_params: PyTree
  g_batch_stats: PyTree
  d_batch_stats: PyTree
  g_opt_state: PyTree
  d_opt_state: PyTree
  f_variables: PyTree
  ema_g_params: PyTree | None = None
  ema_g_batch_stats: PyTree | None = None


@flax.struct.dataclass
class ClassifierState:
  """State of a supervised classifier (the domain classifiers used for evaluation)."""

  step: jax.Array
  params: PyTree
  batch_stats: PyTree
  opt_state: PyTree

  @property
  def variables(self) -> dict[str, PyTree]:
    return {"params": self.params, "batch_stats": self.batch_stats}
