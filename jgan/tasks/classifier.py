"""The supervised classifier task: domain classifiers for evaluation (feature networks).

``config.targets`` picks what it learns:

* ``"label"`` (default): one softmax head over the dataset's class labels;
* ``"attributes"``: one softmax head per attribute of a captioned dataset
  (:mod:`jgan.data.captioned`, ``config.data.text_encoder`` set; the batches' ``attributes``
  [B, A], -1 = not given, skipped), the logits side by side in one [B, sum(K)] output
  (:func:`jgan.losses.attribute_classifier_loss`). The judge of text-to-image evaluation
  (``experiments/avatar_attributes_classifier.py``).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jgan import augment, batching, imaging, losses, models, optim, steps
from jgan import config as config_lib
from jgan import data as data_lib
from jgan.evaluation import attributes as attributes_lib
from jgan.state import ClassifierState
from jgan.tasks.base import Task

TARGETS = ("label", "attributes")


def default_config() -> ml_collections.ConfigDict:
  """``jgan.config.base_config()`` plus a classifier's groups: model, optim."""
  c = config_lib.base_config()
  c.task = "classifier"
  c.targets = "label"  # TARGETS: "label" (one head) or "attributes" (a head per attribute)
  c.model = ml_collections.ConfigDict()
  c.model.widths = (32, 64, 128)
  c.model.feature_dim = 128
  c.model.dropout_rate = 0.3
  c.optim = ml_collections.ConfigDict()
  c.optim.name = "adam"
  c.optim.lr = 1e-3
  c.optim.schedule = "constant"  # optim.SCHEDULES: or "cosine"/"linear_decay" to 0 at the end
  # Seeded on-device augmentation of the training batch (jgan.augment.from_config): flips,
  # rotations and shear (degrees), zoom/shift (fractions of the size), blur (pixels), stroke
  # weight (a blend with a 3x3 dilation or erosion, [0, 1]), colour jitter.
  c.augment = ml_collections.ConfigDict(
      {"flip": False, "rotation": 0.0, "shear": 0.0, "zoom": 0.0, "shift": 0.0, "blur": 0.0,
       "stroke": 0.0, "colour": 0.0})
  c.eval_every = 1000
  # A second test set: overrides of config.data (e.g. {"styles": "heldout"}, printed_digits'
  # held-out rendering styles), scored as test_accuracy_heldout_style; empty: none.
  c.eval.heldout_style = ml_collections.ConfigDict()
  c.eval.best_metric = "test_accuracy"
  c.eval.best_mode = "max"
  return c


_NO_AUGMENT = ml_collections.ConfigDict({"flip": False, "rotation": 0.0})


def attribute_spec(config: ml_collections.ConfigDict
                   ) -> tuple[tuple[str, ...], tuple[int, ...]] | None:
  """(attribute names, classes per attribute) of an ``"attributes"`` classifier, else None."""
  targets = config.get("targets", "label")
  if targets not in TARGETS:
    raise ValueError(f"Unknown config.targets {targets!r}; allowed: {', '.join(TARGETS)}.")
  if targets == "label":
    return None
  if not config.data.get("text_encoder", ""):
    raise ValueError("config.targets='attributes' needs a captioned dataset (its attribute "
                     "labels): set config.data.text_encoder (e.g. 'hash', which is instant).")
  from jgan.data import captioned  # pylint: disable=import-outside-toplevel
  return captioned.attribute_spec(config.data)


def learning_rate(config: ml_collections.ConfigDict) -> float | optax.Schedule:
  """``optim.lr`` under ``optim.schedule`` (:data:`jgan.optim.SCHEDULES`), decayed over
  total_steps from ``optim.decay_start`` (default 0)."""
  return optim.learning_rate_schedule(
      config.optim.lr, schedule=config.optim.get("schedule", "constant"),
      total_steps=max(1, config.total_steps), decay_start=config.optim.get("decay_start", 0.0))


def build_model(config: ml_collections.ConfigDict, num_classes: int) -> models.ConvClassifier:
  """The classifier of ``config``: ``num_classes`` outputs, or sum(K) for attributes."""
  spec = attribute_spec(config)
  if spec is not None:
    num_classes = sum(spec[1])
  return models.ConvClassifier(num_classes=num_classes, widths=tuple(config.model.widths),
                               feature_dim=config.model.feature_dim,
                               dropout_rate=config.model.dropout_rate)


def build(config: ml_collections.ConfigDict, *, image_shape: tuple[int, int, int],
          num_classes: int | None) -> Task:
  """The Task that trains ``ConvClassifier`` on the labelled dataset of ``config.data`` (one
  head on ``label``, or a head per attribute with ``config.targets == "attributes"``)."""
  spec = attribute_spec(config)
  if spec is None and not num_classes:
    raise ValueError(f"The classifier task needs a labelled dataset; {config.data.name!r} "
                     "has no labels.")
  model = build_model(config, num_classes)
  optimizer = optim.make_optimizer(config.optim.name, learning_rate=learning_rate(config))
  architecture = (f"ConvClassifier widths={tuple(config.model.widths)} "
                  f"features={config.model.feature_dim}")
  if spec is None:
    step = steps.make_classifier_step(
        model=model, optimizer=optimizer,
        augment_fn=augment.from_config(config.get("augment", _NO_AUGMENT)))
    describe = f"classifier: {architecture} classes={num_classes}"

    def score(logits, test) -> dict[str, float]:
      return {"test_accuracy": float(np.mean(np.argmax(logits, -1) == test.labels))}
  else:
    names, counts = spec
    step = make_attribute_classifier_step(model=model, optimizer=optimizer, num_classes=counts)
    describe = (f"attribute classifier: {architecture} heads="
                f"{', '.join(f'{n}:{k}' for n, k in zip(names, counts))}")

    def score(logits, test) -> dict[str, float]:
      scores = attributes_lib.attribute_accuracy(
          attributes_lib.attribute_predictions(logits, counts), test.extras["attributes"],
          names, prefix="test_")
      scores["test_accuracy"] = scores.pop("test_mean_acc")
      return scores

  @jax.jit
  def predict(variables, images_uint8):
    return model.apply(variables, imaging.to_float(images_uint8), train=False)["logits"]

  test_set = functools.cache(lambda: data_lib.from_config(config.data, split="test"))
  heldout = config_lib.changed_group(config.data, config.eval.get("heldout_style", None))
  heldout_set = functools.cache(lambda: data_lib.from_config(heldout, split="test"))

  def evaluate(state) -> dict[str, float]:
    run = functools.partial(predict, state.variables)
    test = test_set()
    scores = score(batching.map_in_batches(run, test.images), test)
    if heldout is not None:
      other = heldout_set()
      scores.update({f"{k}_heldout_style": v for k, v in
                     score(batching.map_in_batches(run, other.images), other).items()})
    return scores

  return Task(
      init=functools.partial(steps.init_classifier_state, model=model, optimizer=optimizer,
                             image_shape=image_shape),
      step=step,
      sample=lambda state, inputs: {},
      sample_inputs=lambda key, n: jnp.zeros((0,)),
      examples_per_step=config.batch_size,
      evaluate=evaluate,
      describe=describe)


def make_attribute_classifier_step(*, model, optimizer: optax.GradientTransformation,
                                   num_classes: tuple[int, ...]):
  """One supervised step of a multi-head classifier on ``batch["attributes"]`` [B, A].

  Loss: :func:`jgan.losses.attribute_classifier_loss` (labels -1 skipped). Metrics: loss,
  accuracy (over all given labels), grad_norm.
  """
  offsets = np.cumsum((0,) + tuple(num_classes))

  def loss_fn(params, batch_stats, images, labels, key):
    out, updates = model.apply({"params": params, "batch_stats": batch_stats}, images,
                               train=True, rngs={"dropout": key}, mutable=["batch_stats"])
    logits = out["logits"]
    loss = losses.attribute_classifier_loss(logits, labels, num_classes=num_classes)
    pred = jnp.stack([jnp.argmax(logits[:, offsets[a]:offsets[a + 1]], -1)
                      for a in range(len(num_classes))], axis=1)
    given = labels >= 0
    accuracy = jnp.sum((pred == labels) & given) / jnp.maximum(jnp.sum(given), 1)
    return loss, (updates["batch_stats"], {"loss": loss, "accuracy": accuracy})

  def step(state: ClassifierState, batch, key):
    images = imaging.to_float(batch["image"])
    labels = jnp.asarray(batch["attributes"], jnp.int32)
    grads, (batch_stats, metrics) = jax.grad(loss_fn, has_aux=True)(
        state.params, state.batch_stats, images, labels, key)
    params, opt_state, metrics["grad_norm"] = steps.apply_gradients(
        optimizer, grads, state.opt_state, state.params)
    return state.replace(step=state.step + 1, params=params, batch_stats=batch_stats,
                         opt_state=opt_state), metrics

  return step
