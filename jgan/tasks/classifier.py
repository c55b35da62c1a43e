"""The supervised classifier task: domain classifiers for evaluation (feature networks)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jgan import batching, imaging, models, optim, steps
from jgan import config as config_lib
from jgan import data as data_lib
from jgan.tasks.base import Task


def default_config() -> ml_collections.ConfigDict:
  """``jgan.config.base_config()`` plus a classifier's groups: model, optim."""
  c = config_lib.base_config()
  c.task = "classifier"
  c.model = ml_collections.ConfigDict()
  c.model.widths = (32, 64, 128)
  c.model.feature_dim = 128
  c.model.dropout_rate = 0.3
  c.optim = ml_collections.ConfigDict()
  c.optim.name = "adam"
  c.optim.lr = 1e-3
  c.eval_every = 1000
  c.eval.best_metric = "test_accuracy"
  c.eval.best_mode = "max"
  return c


def build_model(config: ml_collections.ConfigDict, num_classes: int) -> models.ConvClassifier:
  return models.ConvClassifier(num_classes=num_classes, widths=tuple(config.model.widths),
                               feature_dim=config.model.feature_dim,
                               dropout_rate=config.model.dropout_rate)


def build(config: ml_collections.ConfigDict, *, image_shape: tuple[int, int, int],
          num_classes: int | None) -> Task:
  """The Task that trains ``ConvClassifier`` on the labelled dataset of ``config.data``."""
  if not num_classes:
    raise ValueError(f"The classifier task needs a labelled dataset; {config.data.name!r} "
                     "has no labels.")
  model = build_model(config, num_classes)
  optimizer = optim.make_optimizer(config.optim.name, learning_rate=config.optim.lr)

  @jax.jit
  def predict(variables, images_uint8):
    return model.apply(variables, imaging.to_float(images_uint8), train=False)["logits"]

  test_set = functools.cache(lambda: data_lib.from_config(config.data, split="test"))

  def evaluate(state) -> dict[str, float]:
    test = test_set()
    logits = batching.map_in_batches(functools.partial(predict, state.variables), test.images)
    return {"test_accuracy": float(np.mean(np.argmax(logits, -1) == test.labels))}

  return Task(
      init=functools.partial(steps.init_classifier_state, model=model, optimizer=optimizer,
                             image_shape=image_shape),
      step=steps.make_classifier_step(model=model, optimizer=optimizer),
      sample=lambda state, inputs: {},
      sample_inputs=lambda key, n: jnp.zeros((0,)),
      examples_per_step=config.batch_size,
      evaluate=evaluate,
      describe=f"classifier: ConvClassifier widths={tuple(config.model.widths)} "
               f"features={config.model.feature_dim} classes={num_classes}")
