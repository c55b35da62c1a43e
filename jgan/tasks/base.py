"""What the train loop needs from a kind of model: the Task record."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax

PyTree = Any


@dataclasses.dataclass(frozen=True)
class Task:
  """Pure functions the generic train loop (:func:`jgan.train.run`) drives.

  Attributes:
    init: ``key -> state``, the initial train state (a pytree with an int ``step`` field).
    step: ``(state, batch, key) -> (state, metrics)``; pure, compiled once by the loop.
    sample: ``(state, inputs) -> {name: images in [-1, 1]}`` for the sample grids.
    sample_inputs: ``(key, n) -> inputs``, the fixed inputs the grids are drawn from.
    examples_per_step: real examples one step consumes (global, all processes).
    evaluate: ``state -> {metric: float}``, run on the host every ``eval_every`` steps and
      at the end (None: the task has no evaluation).
    describe: one line for the log (model sizes, loss...).
    load_pretrained: ``state -> state``, fills the frozen pretrained parts of a fresh state
      (a DTN's encoder f); the loop calls it when a run starts, not when it resumes (the
      checkpoint holds them), and ``jgan.runs`` never does (None: nothing pretrained).
    translate: two-domain tasks only (dtn): ``(state, images) -> translated images``, both
      float in [-1, 1], the inputs shaped like the source data; used by ``jgan.translate``.
  """

  init: Callable[[jax.Array], PyTree]
  step: Callable[[PyTree, dict[str, jax.Array], jax.Array], tuple[PyTree, dict[str, jax.Array]]]
  sample: Callable[[PyTree, PyTree], dict[str, jax.Array]]
  sample_inputs: Callable[[jax.Array, int], PyTree]
  examples_per_step: int
  evaluate: Callable[[PyTree], dict[str, float]] | None = None
  describe: str = ""
  load_pretrained: Callable[[PyTree], PyTree] | None = None
  translate: Callable[[PyTree, jax.Array], jax.Array] | None = None
