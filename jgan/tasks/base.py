"""What the train loop needs from a kind of model (the Task record), and what a task needs from
other runs (its prerequisites)."""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable

import jax

PyTree = Any

# Prerequisite.kind: what the resolving layer (jgan.runs) hands the task for it.
FEATURE_NETWORK = "feature_network"  # a jgan.evaluation.features.FeatureNetwork of the run
TRAINED_MODEL = "trained_model"  # a TrainedModel: the run's config and variables
# Prerequisite.when
AT_START = "start"
FOR_EVALUATION = "evaluation"


@dataclasses.dataclass(frozen=True)
class Prerequisite:
  """A trained run a task needs, named by its config (a DTN's encoder f, an evaluation judge).

  The layer that starts training (:func:`jgan.runs.train`) resolves every prerequisite before
  the task is built: it trains the built-in ``experiment`` in ``workdir`` when that has no
  checkpoint (saying so), opens it, and hands the task what ``kind`` asks for; tasks never
  open or train other runs themselves (as big_vision's distillation trainer loads its frozen
  teachers from ``config.<teacher>_init`` and hands the evaluators their predict functions).

  Attributes:
    experiment: the built-in experiment that trains it.
    workdir: where the run is (or is trained).
    kind: :data:`FEATURE_NETWORK` or :data:`TRAINED_MODEL`.
    purpose: for the log, e.g. "the DTN encoder f".
    layer: the classifier layer a feature network reads ("features" or "logits").
    when: :data:`AT_START`: only when training starts from step 0 (its weights are copied
      into the state, so a resumed run does not need the run again); :data:`FOR_EVALUATION`:
      whenever the task is evaluated (training with ``eval_every > 0``, ``jgan.evaluate``).
  """

  experiment: str
  workdir: str
  kind: str
  purpose: str
  layer: str = "features"
  when: str = "evaluation"


@dataclasses.dataclass(frozen=True)
class TrainedModel:
  """A prerequisite run's model, as :func:`jgan.runs.resolve_prerequisites` hands it over.

  Attributes:
    workdir: the run's directory.
    config: the config it was trained with.
    variables: its model variables (``{"params": ..., "batch_stats": ...}``).
    image_shape: (H, W, C) of its training images.
    num_classes: its data's class count (None if unlabelled).
    step: the restored checkpoint's step.
    best: whether that is its best checkpoint (``checkpoints_best/``).
  """

  workdir: str
  config: Any
  variables: PyTree
  image_shape: tuple[int, int, int]
  num_classes: int | None
  step: int
  best: bool


def default_workdir(explicit: str, experiment: str) -> str:
  """A prerequisite's workdir: ``explicit`` if set, else ``runs/<experiment>``."""
  return explicit or os.path.join("runs", experiment)


def prerequisite(prerequisites: dict[str, Any] | None, role: str, needed_for: str) -> Any:
  """``prerequisites[role]``, or an error saying how a task gets it (``needed_for`` names the
  use, e.g. "the evaluation")."""
  if not prerequisites or role not in prerequisites:
    raise ValueError(
        f"{needed_for} needs the prerequisite run {role!r}, which this task was built without: "
        "train through jgan.runs.train (launch.py does), or open a run with "
        "jgan.runs.load_run(workdir, prerequisites=True), which resolve it first.")
  return prerequisites[role]


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
    precompute: ``(state, datasets, cache_dir) -> datasets``: adds to the datasets' extras
      what a frozen part of the model gives on fixed inputs (a DTN's f on every target image
      and on fixed augmentations of every source image), so the step need not run it again;
      ``datasets`` maps "" to the main dataset and the other names to the extra ones
      (``{"": target, "source": source}``). Called by the loop once the state holds the
      pretrained weights, before batching, and again when a run resumes (the arrays are kept
      in ``cache_dir``, keyed by the weights, the data and the settings). None: nothing.
    warmup_step: a step of the same signature and state the loop runs instead of ``step``
      for the first ``warmup_steps`` steps (compiled apart: no branch inside either step), e.g.
      a DTN's g trained alone as a decoder before the adversarial game. None: none.
    warmup_steps: how many of ``total_steps`` use ``warmup_step``.
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
  precompute: Callable[[PyTree, dict[str, Any], str], dict[str, Any]] | None = None
  warmup_step: Callable[[PyTree, dict[str, jax.Array], jax.Array],
                        tuple[PyTree, dict[str, jax.Array]]] | None = None
  warmup_steps: int = 0
