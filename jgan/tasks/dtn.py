"""The Domain Transfer Network task: a frozen encoder f, a generator g and a ternary D.

g learns to draw, in the target domain, the image whose f-features match a source image's
(f(g(f(x))) = f(x), L_CONST), while keeping target images fixed (g(f(x)) = x, L_TID), and a
three-way discriminator tells g(f(source)), g(f(target)) and real targets apart. The batch
holds target images (``config.data``) and source images (``config.source_data``).

f is a trained jgan classifier's feature layer (``config.encoder``; e.g. ``digits_encoder``,
trained on the source domain, as in the paper), trained first when its workdir has none.
Evaluation, every ``eval_every`` steps: ``transfer_accuracy``, the accuracy of a target-domain
classifier (``config.eval.classifier``, e.g. ``mnist_classifier``) on translated held-out
source images labelled with their source labels, and the FID of those translations against
real target images under that classifier's features.

References:
  Taigman, Polyak & Wolf, "Unsupervised Cross-Domain Image Generation", ICLR 2017.
"""

from __future__ import annotations

import functools
import json
import logging
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jgan import batching, imaging, losses, models, optim, steps
from jgan import config as config_lib
from jgan import data as data_lib
from jgan.evaluation import features, generative
from jgan.tasks.base import Task

log = logging.getLogger("jgan.dtn")

ENCODERS = ("classifier",)
EVAL_METRICS = ("accuracy", "fid")


def default_config() -> ml_collections.ConfigDict:
  """``jgan.config.base_config()`` plus a DTN's groups: source_data, encoder, model, loss, optim."""
  c = config_lib.base_config()
  c.task = "dtn"
  c.data.image_size = 32  # target domain (what g draws)
  c.source_data = ml_collections.ConfigDict(c.data.to_dict())  # same keys as data
  c.source_data.name = "printed_digits"
  c.source_data.sources = ("offline",)
  c.encoder = ml_collections.ConfigDict()
  c.encoder.name = "classifier"  # from ENCODERS
  c.encoder.experiment = "digits_encoder"  # built-in experiment trained when workdir has none
  c.encoder.workdir = ""  # default: runs/<encoder.experiment>
  c.encoder.layer = "features"
  # f's architecture (a jgan.models.ConvClassifier), checked against the encoder's run.
  c.encoder.widths = (64, 128, 256)
  c.encoder.feature_dim = 128
  c.encoder.num_classes = 10
  c.encoder.image_shape = (32, 32, 3)
  c.model = ml_collections.ConfigDict()
  c.model.generator = ml_collections.ConfigDict({"name": "dcgan", "width": 64})
  c.model.discriminator = ml_collections.ConfigDict(
      {"name": "dcgan", "width": 64, "normalization": "batch"})
  c.loss = ml_collections.ConfigDict()
  c.loss.const_weight = 15.0  # alpha: L_CONST
  c.loss.tid_weight = 15.0  # beta: L_TID
  c.loss.tv_weight = 0.0  # gamma: L_TV
  c.loss.distance = "mean_squared"  # jgan.losses.DISTANCES, for L_CONST and L_TID
  c.optim = ml_collections.ConfigDict()
  c.optim.name = "adam"
  c.optim.g_lr = 2e-4
  c.optim.d_lr = 2e-4
  c.optim.b1 = 0.5
  c.optim.b2 = 0.999
  c.eval.metrics = EVAL_METRICS
  c.eval.classifier = "mnist_classifier"  # target-domain judge, trained if missing
  c.eval.classifier_workdir = ""  # default: runs/<eval.classifier>
  c.eval.num_examples = 2000  # held-out source images translated per evaluation
  c.eval.batch_size = 250
  c.eval.best_metric = "transfer_accuracy"
  c.eval.best_mode = "max"
  c.num_samples = 32
  return c


def _workdir(explicit: str, experiment: str) -> str:
  return explicit or os.path.join("runs", experiment)


def build_encoder(encoder_config: ml_collections.ConfigDict):
  """``(encoder(variables, images) -> [B, F], init(key) -> variables, F)`` for config.encoder.

  The architecture comes from the config alone, so a trained DTN run (whose checkpoint holds
  f's weights) opens without the encoder's run; :func:`load_encoder_variables` reads the
  weights when training starts.
  """
  e = encoder_config
  if e.name not in ENCODERS:
    raise ValueError(f"Unknown config.encoder.name {e.name!r}; available: {', '.join(ENCODERS)}.")
  if e.layer not in ("features", "logits"):
    raise ValueError(f"Unknown config.encoder.layer {e.layer!r}; allowed: 'features', 'logits'.")
  model = models.ConvClassifier(num_classes=e.num_classes, widths=tuple(e.widths),
                                feature_dim=e.feature_dim)
  shape = tuple(e.image_shape)

  def encoder(variables, images):
    return model.apply(variables, imaging.adapt_images(images, shape), train=False)[e.layer]

  def init(key):
    return model.init(key, jnp.zeros((1, *shape), jnp.float32), train=False)

  return encoder, init, e.feature_dim if e.layer == "features" else e.num_classes


def load_encoder_variables(encoder_config: ml_collections.ConfigDict):
  """f's trained variables from the classifier run ``encoder.workdir`` (trained first if it has
  no checkpoint), checked against the architecture the config names."""
  from jgan import runs  # pylint: disable=import-outside-toplevel  (runs imports the tasks)
  e = encoder_config
  workdir = _workdir(e.workdir, e.experiment)
  features.ensure_classifier(e.experiment, workdir)
  best = os.path.isdir(runs.checkpoint_dir(workdir, best=True))
  run = runs.load_run(workdir, best=best)
  if run.config.task != "classifier":
    raise ValueError(f"config.encoder.workdir={workdir!r} holds a {run.config.task!r} run; the "
                     "DTN encoder must be a classifier run (e.g. --experiment digits_encoder).")
  found = {"widths": tuple(run.config.model.widths), "feature_dim": run.config.model.feature_dim,
           "num_classes": run.num_classes, "image_shape": tuple(run.image_shape)}
  wanted = {"widths": tuple(e.widths), "feature_dim": e.feature_dim,
            "num_classes": e.num_classes, "image_shape": tuple(e.image_shape)}
  if found != wanted:
    diff = ", ".join(f"--config.encoder.{k}={found[k]} (config says {wanted[k]})"
                     for k in found if found[k] != wanted[k])
    raise ValueError(f"The encoder run in {workdir} does not match config.encoder; to use it "
                     f"set {diff}.")
  log.info("DTN encoder f: the %r layer of the classifier in %s (step %d%s).", e.layer, workdir,
           run.step, ", best checkpoint" if best else "")
  return run.state.variables


def _optimizer(c: ml_collections.ConfigDict, learning_rate: float):
  kwargs = {"learning_rate": learning_rate}
  if c.name == "adam":
    kwargs.update(b1=c.b1, b2=c.b2)
  return optim.make_optimizer(c.name, **kwargs)


def _pairs(left: jax.Array, right: jax.Array) -> jax.Array:
  """Side-by-side pairs [N, H, 2W, C] (right adapted to left's size and channels)."""
  return jnp.concatenate([left, imaging.adapt_images(right, left.shape[1:])], axis=2)


def build(config: ml_collections.ConfigDict, *, image_shape: tuple[int, int, int],
          num_classes: int | None = None,
          source_shape: tuple[int, int, int] | None = None) -> Task:
  """The Task for a DTN described by ``config`` (see :func:`default_config`)."""
  del num_classes
  if source_shape is None:
    raise ValueError("The dtn task needs a source dataset: set config.source_data.")
  if config.loss.distance not in losses.DISTANCES:
    raise ValueError(f"Unknown config.loss.distance {config.loss.distance!r}; available: "
                     f"{', '.join(losses.DISTANCES)}.")
  bad = sorted(set(config.eval.metrics) - set(EVAL_METRICS))
  if bad:
    raise ValueError(f"Unknown DTN eval.metrics {bad}; available: {', '.join(EVAL_METRICS)}.")
  encoder, init_encoder, feature_dim = build_encoder(config.encoder)

  g_kwargs = config.model.generator.to_dict()
  d_kwargs = config.model.discriminator.to_dict()
  generator = models.build_generator(g_kwargs.pop("name"), image_shape=image_shape, **g_kwargs)
  d_kwargs["num_outputs"] = 3  # ternary: g(f(source)), g(f(target)), real target
  discriminator = models.build_discriminator(d_kwargs.pop("name"), image_shape=image_shape,
                                             **d_kwargs)
  g_opt = _optimizer(config.optim, config.optim.g_lr)
  d_opt = _optimizer(config.optim, config.optim.d_lr)

  def init(key: jax.Array):
    g_key, f_key = jax.random.split(key)
    return steps.init_dtn_state(
        g_key, generator=generator, discriminator=discriminator, g_optimizer=g_opt,
        d_optimizer=d_opt, f_variables=init_encoder(f_key), feature_dim=feature_dim,
        image_shape=image_shape)

  def load_pretrained(state):
    variables = load_encoder_variables(config.encoder)
    if jax.tree.structure(variables) != jax.tree.structure(state.f_variables):
      raise ValueError("The encoder run's variables do not fit config.encoder's architecture.")
    return state.replace(f_variables=jax.tree.map(jnp.asarray, variables))
  step = steps.make_dtn_step(
      generator=generator, discriminator=discriminator, encoder=encoder, g_optimizer=g_opt,
      d_optimizer=d_opt, const_weight=config.loss.const_weight,
      tid_weight=config.loss.tid_weight, tv_weight=config.loss.tv_weight,
      distance=config.loss.distance)
  translate = steps.make_translate_fn(generator, encoder)

  def sample_inputs(key: jax.Array, n: int) -> dict[str, jax.Array]:
    del key  # fixed held-out images: a seeded subset of each test split
    source = features.subset(data_lib.from_config(config.source_data, split="test").images, n)
    target = features.subset(data_lib.from_config(config.data, split="test").images, n)
    return {"source": imaging.to_float(jnp.asarray(source)),
            "target": imaging.to_float(jnp.asarray(target))}

  def sample(state, inputs) -> dict[str, jax.Array]:
    return {"translations": _pairs(inputs["source"], translate(state, inputs["source"])),
            "target_identity": _pairs(inputs["target"], translate(state, inputs["target"]))}

  compiled = {}

  def evaluate(state) -> dict[str, float]:
    judge, images, labels, real = _judge_and_data(
        config.eval.to_json(), config.source_data.to_json(), config.data.to_json())
    if "judge" not in compiled:  # state is an argument: compiled once per run, not per call
      compiled["judge"] = jax.jit(
          lambda state, x: judge.apply(translate(state, imaging.to_float(x))))
    return _evaluate(functools.partial(compiled["judge"], state), images, labels, real,
                     config=config, network=judge.name)
  return Task(
      init=init, step=step, sample=sample, sample_inputs=sample_inputs,
      examples_per_step=config.batch_size, evaluate=evaluate, translate=translate,
      load_pretrained=load_pretrained,
      describe=(f"DTN: f={config.encoder.experiment}:{config.encoder.layer} ({feature_dim}-d, "
                f"input {tuple(config.encoder.image_shape)}) g={config.model.generator.name} "
                f"D={config.model.discriminator.name}(3 outputs) alpha={config.loss.const_weight}"
                f" beta={config.loss.tid_weight} gamma={config.loss.tv_weight}"))


@functools.cache
def _judge_and_data(eval_json: str, source_json: str, target_json: str):
  """The target-domain classifier, held-out source images/labels and real target features."""
  e = ml_collections.ConfigDict(json.loads(eval_json))
  workdir = _workdir(e.classifier_workdir, e.classifier)
  features.ensure_classifier(e.classifier, workdir)
  judge = features.classifier_network(workdir, layer="features")
  source = data_lib.from_config(ml_collections.ConfigDict(json.loads(source_json)), split="test")
  if source.labels is None:
    raise ValueError(f"DTN evaluation needs a labelled source test split; {source.name!r} has "
                     "no labels (set --config.eval.metrics=fid).")
  # A seeded subset, not the first n: offline datasets may be stored class by class.
  keep = np.sort(np.random.default_rng(0).permutation(len(source))[:e.num_examples])
  real = None
  if "fid" in e.metrics:
    target = data_lib.from_config(ml_collections.ConfigDict(json.loads(target_json)),
                                  split="test")
    real = features.real_features(judge, target, num=len(target), batch_size=e.batch_size)
  return judge, source.images[keep], source.labels[keep], real


def _evaluate(judge_translations, images, labels, real, *, config,
              network: str) -> dict[str, float]:
  """Transfer accuracy (and FID) of translated held-out source images, judged in the target."""
  e = config.eval
  out = batching.map_in_batches(judge_translations, images, batch_size=e.batch_size)
  results = {}
  if "accuracy" in e.metrics:
    results["transfer_accuracy"] = float(np.mean(np.argmax(out["logits"], -1) == labels))
  if "fid" in e.metrics:
    results.update(generative.score(real, {"features": out["features"]}, metrics=("fid",),
                                    network=network))
  return results
