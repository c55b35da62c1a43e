"""The Domain Transfer Network task: a frozen encoder f, a generator g and a ternary D.

g learns to draw, in the target domain, the image whose f-features match a source image's
(f(g(f(x))) = f(x), L_CONST), while keeping target images fixed (g(f(x)) = x, L_TID), and a
three-way discriminator tells g(f(source)), g(f(target)) and real targets apart. The batch
holds target images (``config.data``) and source images (``config.source_data``).

f is chosen by ``config.encoder.name`` from :data:`ENCODERS`, an explicit registry of
builders ``encoder_config -> Encoder`` (add FaceNet or any other frozen embedding by adding a
builder there):

* ``"classifier"``: a trained jgan classifier's feature layer (``config.encoder.experiment``,
  e.g. ``digits_encoder``, trained on the source domain, as in the paper): the prerequisite run
  ``"encoder"`` (:func:`prerequisites`), which :mod:`jgan.runs` trains first when its workdir
  has none and hands to the task;
* ``"dlib_resnet"``: dlib's face-recognition ResNet (:mod:`jgan.models.dlib_resnet`; 128-d
  descriptors of 150x150 RGB faces, every input adapted to that size), with the weights of
  ``config.encoder.weights`` (default: the file pip ``face-recognition-models`` installs).

Either way f's weights are read once, when training starts (``Task.load_pretrained``), and
then travel in the state: a trained run's checkpoint is self-contained. With
``config.encoder.standardize`` the f that g and L_CONST see is standardised per dimension by
statistics of the source training set, computed at that moment and kept with the weights
(f_variables = {"network", "mean", "std"}); retrieval still ranks by f's raw descriptor.

Evaluation, every ``eval_every`` steps, of the metrics in ``config.eval.metrics``:

* ``"accuracy"``: ``transfer_accuracy``, the accuracy of a target-domain classifier
  (``config.eval.classifier``, e.g. ``mnist_classifier``) on translated held-out source
  images labelled with their source labels (and ``transfer_accuracy_heldout_style`` on the
  test set of ``eval.heldout_style``'s overrides of ``source_data``, e.g. unseen fonts), and
  f's own accuracy on them (``encoder_accuracy[_heldout_style]``) when f is a classifier;
* ``"fid"``: the FID of those translations against real target images under that
  classifier's features;
* ``"retrieval"``: identity retrieval under f (:mod:`jgan.evaluation.retrieval`), the face
  metric: for the held-out source images x_i (a seeded subset of ``eval.num_examples`` of
  the source test split), each query f(g(f(x_i))) ranks the gallery f(x_j) by
  ``eval.retrieval_distance``; ``retrieval_top1``, ``retrieval_top5``,
  ``retrieval_median_rank`` (1-based), ``retrieval_mean_rank``, ``retrieval_num`` (N) and the
  chance levels ``retrieval_top1_chance`` (1/N), ``retrieval_top5_chance`` (5/N) and
  ``retrieval_median_rank_chance`` ((N+1)/2). It needs no target classifier. With "train"
  in ``eval.retrieval_splits`` the same is measured on training source images
  (``retrieval_train_*``): how well g keeps identities it was trained on.

References:
  Taigman, Polyak & Wolf, "Unsupervised Cross-Domain Image Generation", ICLR 2017.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from tqdm.auto import tqdm

from jgan import augment, batching, imaging, losses, models, optim, penalties, steps
from jgan import config as config_lib
from jgan import data as data_lib
from jgan.evaluation import features, generative, retrieval
from jgan.tasks import base
from jgan.tasks.base import Task

log = logging.getLogger("jgan.dtn")

PyTree = Any
EVAL_METRICS = ("accuracy", "fid", "kid_heldout", "reconstruction", "retrieval")
_JUDGED = {"accuracy", "fid", "kid_heldout", "reconstruction"}  # need the target-domain judge
# config.encoder.target_standardize: which f outputs the target's own statistics standardise.
TARGET_STANDARDIZE = ("none", "input", "all")
DIGIT_EVAL_METRICS = ("accuracy", "fid")  # the default: judged by a target-domain classifier
_NO_AUGMENT = ml_collections.ConfigDict({"flip": False, "rotation": 0.0})  # configs made before
_NO_PERTURB = ml_collections.ConfigDict({"zoom": 0.0, "shift": 0.0, "blur": 0.0,
                                         "min_blur": 0.0})


def default_config() -> ml_collections.ConfigDict:
  """``jgan.config.base_config()`` plus a DTN's groups: source_data, encoder, model, loss, optim."""
  c = config_lib.base_config()
  c.task = "dtn"
  c.data.image_size = 32  # target domain (what g draws)
  c.source_data = ml_collections.ConfigDict(c.data.to_dict())  # same keys as data
  c.source_data.name = "printed_digits"
  c.source_data.sources = ("offline",)
  # Seeded on-device augmentation of the source batch before f (jgan.augment.from_config).
  c.source_augment = ml_collections.ConfigDict({"flip": False, "rotation": 0.0})
  c.encoder = ml_collections.ConfigDict()
  c.encoder.name = "classifier"  # from ENCODERS: "classifier", "dlib_resnet"
  # Every encoder: f's output size and the input shape images are adapted to (checked).
  c.encoder.feature_dim = 128
  c.encoder.image_shape = (32, 32, 3)
  c.encoder.layer = "features"
  # "classifier": a jgan classifier run; its architecture (a jgan.models.ConvClassifier) is
  # checked against the run's.
  c.encoder.experiment = "digits_encoder"  # built-in experiment trained when workdir has none
  c.encoder.workdir = ""  # default: runs/<encoder.experiment>
  c.encoder.widths = (64, 128, 256)
  c.encoder.num_classes = 10
  # "dlib_resnet": the .dat weights file ("": the one pip face-recognition-models installs).
  c.encoder.weights = ""
  # Standardise f's output per dimension (mean 0, std 1 over the source training set, computed
  # once when training starts and kept with f's weights): g's input and L_CONST then see the
  # identity-carrying spread of f, not its scale (dlib's descriptors share a large common part
  # and spread 0.04 a dimension, so unrelated faces are 0.004 apart in mean_squared).
  c.encoder.standardize = False
  c.encoder.standardize_examples = 2000  # source training images the statistics use (seeded)
  # With standardize, which f outputs use the TARGET training set's own statistics instead of
  # the source's (jgan.tasks.dtn.TARGET_STANDARDIZE): "none"; "input": f of target images, g's
  # input in L_TID, so photos and avatars reach g with the same per-dimension spread (dlib's
  # descriptors of avatars sit ~0.7 source std a dimension away from the photos'); "all": also
  # f(g(f(x))) in L_CONST, which then asks for the photo's place among photos as the avatar's
  # place among avatars, not for an avatar that f reads as a photo.
  c.encoder.target_standardize = "none"
  # f is frozen: compute it once per run on every target image and on fixed augmentations of
  # every source image (source_augment's flips x cache_rotations angles over its range), kept
  # in WORKDIR/feature_cache; the step then runs f only on g's outputs (L_CONST).
  c.encoder.cache = False
  c.encoder.cache_rotations = 5
  c.model = ml_collections.ConfigDict()
  c.model.generator = ml_collections.ConfigDict(
      {"name": "dcgan", "width": 64, "upsample": "subpixel",  # or "resize_conv"
       "output_upsample": "",  # "": as upsample; the RGB layer alone
       "output_filter": "",  # "median3x3": edge-preserving smoothing of what is drawn
       "condition_on_input": False,  # f(x) also scales and shifts every block's BN
       # K > 0: g draws K logits per pixel and K colours from f(x) (flat regions); mode
       # "soft" mixes them, "hard_draw" draws each pixel's likeliest colour (not in training),
       # "straight_through" in training too (jgan.models.DCGANGenerator)
       "palette_size": 0, "palette_mode": "soft",
       # N > 0: N standard-normal values beside f(x) (fresh each step; keyed by f(x) when
       # drawing), for what f(x) leaves open: a background or shirt colour, one per drawing
       "noise_dim": 0})
  # joint_batch: D sees real and fake in one call (one batch-norm statistic), so a pattern
  # all of g's outputs share is not normalised away (jgan.steps.make_dtn_step).
  # patch_layers k > 0: a patch D (PatchGAN), ternary logits per position after k
  # convolutions (jgan.models.DCGANDiscriminator): every patch must look like an avatar's;
  # whole_image_head keeps the whole-image D beside it (both judge, equally weighted).
  c.model.discriminator = ml_collections.ConfigDict(
      {"name": "dcgan", "width": 64, "normalization": "batch", "joint_batch": False,
       "patch_layers": 0, "whole_image_head": False})
  # An EMA of g's weights (0: off), warmed up, with its own batch-norm statistics; what the
  # evaluation, samples, translate and the demo use when on (eval.use_ema).
  c.ema_decay = 0.0
  # DiffAugment of every image D sees: "" or comma-separated jgan.augment.DIFF_AUGMENT_POLICIES.
  c.d_augment = ""
  c.penalty = ml_collections.ConfigDict()
  c.penalty.name = "none"  # on D: "none" or a name in jgan.penalties.PENALTIES (e.g. "r1")
  c.penalty.weight = 10.0
  c.loss = ml_collections.ConfigDict()
  # The adversarial game (jgan.losses.DTN_ADVERSARIAL): "ternary" (the paper's L_D, L_GANG) or
  # "wasserstein" (WGAN on D's realness; needs penalty.name, e.g. "gradient_penalty", and a D
  # without batch norm: model.discriminator.normalization="layer").
  c.loss.adversarial = "ternary"
  c.loss.const_weight = 15.0  # alpha: L_CONST
  c.loss.tid_weight = 15.0  # beta: L_TID
  c.loss.tv_weight = 0.0  # gamma: L_TV
  c.loss.const_warmup_steps = 0  # alpha ramps linearly from 0 over these steps (0: constant)
  # The first steps train g alone as a decoder of f(target) -> target (L_TID + L_TV: no D, no
  # f on g's outputs, so cheap with f cached); the DTN game starts from that decoder. They
  # count in total_steps.
  c.loss.decoder_warmup_steps = 0
  c.loss.distance = "mean_squared"  # jgan.losses.DISTANCES, for L_CONST and L_TID
  c.loss.tid_distance = None  # L_TID's own (e.g. "mean_abs": L1, a median); None: distance
  # New source descriptors for L_GANG and L_CONST (jgan.augment.mix_features): a fraction of
  # the batch mixed pairwise, plus Gaussian noise (standardised units).
  c.loss.feature_mix = 0.0
  c.loss.feature_noise = 0.0
  # ... and then a fraction replaced by draws from the Gaussian fitted to the batch
  # (jgan.augment.gaussian_features): new identities in the span of the batch's spread.
  c.loss.feature_gaussian = 0.0
  # g(f(source)) randomly zoomed, shifted (fractions of the size) and blurred (largest sigma,
  # pixels; min_blur always) before f in L_CONST (jgan.augment.perturb): identity must
  # survive them, and min_blur low-passes f's gradient (no pixel-level patterns for f).
  c.loss.const_perturb = ml_collections.ConfigDict(
      {"zoom": 0.0, "shift": 0.0, "blur": 0.0, "min_blur": 0.0})
  # L_CONST on this many of the batch's source translations (0: all): f's pass through g's
  # outputs is most of a step with a large f.
  c.loss.const_examples = 0
  # Semantic consistency (jgan.losses.class_consistency_loss) on the L_CONST translations:
  # f's classifier must read g(f(x)) as it reads x (0: off; f must be a classifier's features).
  c.loss.class_weight = 0.0
  # Contrastive L_CONST (jgan.losses.identity_contrastive_loss) on the same translations: each
  # must be retrieved as its own face among the batch's source descriptors (0: off).
  c.loss.const_contrastive_weight = 0.0
  c.loss.const_contrastive_temperature = 0.1
  # With model.generator.noise_dim > 0: MSGAN's mode-seeking term (jgan.losses.mode_seeking_loss)
  # on the L_CONST translations drawn twice with two noises, pooled over mode_seeking_pool pixels
  # (colours, not texture), so g cannot ignore its noise (0: off).
  c.loss.mode_seeking_weight = 0.0
  c.loss.mode_seeking_pool = 4
  c.optim = optim.two_player_config()  # name, g_lr, d_lr, b1, b2
  c.eval.metrics = DIGIT_EVAL_METRICS  # from EVAL_METRICS
  c.eval.classifier = "mnist_classifier"  # target-domain judge, trained if missing
  c.eval.classifier_workdir = ""  # default: runs/<eval.classifier>
  c.eval.num_examples = 2000  # held-out source images translated per evaluation
  # "accuracy" also on a second source test set: overrides of source_data (e.g. {"styles":
  # "heldout"}: printed_digits' held-out rendering styles) -> transfer_accuracy_heldout_style.
  c.eval.heldout_style = ml_collections.ConfigDict()
  # "fid": the source splits translated, each image under every fixed variant of
  # source_augment (augment.variant_grid, encoder.cache_rotations angles) with fid_variants.
  c.eval.fid_splits = ("test",)
  c.eval.fid_variants = False
  c.eval.retrieval_blur_sigma = 1.0  # retrieval_blurred_*: translations blurred before f (px)
  c.eval.retrieval_distance = "euclidean"  # jgan.evaluation.retrieval.DISTANCES
  # Source splits retrieval is measured on: "test" -> retrieval_*, "train" -> retrieval_train_*.
  c.eval.retrieval_splits = ("test",)
  c.eval.batch_size = 250
  c.eval.use_ema = True  # translate with the EMA of g when the run keeps one
  c.eval.best_metric = "transfer_accuracy"
  c.eval.best_mode = "max"
  c.num_samples = 32
  return c


def prerequisites(config: ml_collections.ConfigDict) -> dict[str, base.Prerequisite]:
  """The runs a DTN needs: ``"encoder"`` (f, a classifier run, when ``encoder.name`` is
  "classifier"; only to start) and ``"judge"`` (the target-domain classifier of the accuracy
  and FID evaluation)."""
  out = {}
  e = config.encoder
  if e.name == "classifier":
    out["encoder"] = base.Prerequisite(
        experiment=e.experiment, workdir=base.default_workdir(e.workdir, e.experiment),
        kind=base.TRAINED_MODEL, purpose="the DTN encoder f", when=base.AT_START)
  if set(config.eval.metrics) & _JUDGED:
    out["judge"] = base.Prerequisite(
        experiment=config.eval.classifier,
        workdir=base.default_workdir(config.eval.classifier_workdir, config.eval.classifier),
        kind=base.FEATURE_NETWORK, purpose="the DTN's target-domain judge",
        when=base.FOR_EVALUATION)
  return out


@dataclasses.dataclass(frozen=True)
class Encoder:
  """DTN's frozen f, as the task uses it.

  Attributes:
    apply: ``(variables, images) -> [B, feature_dim]``; images float in [-1, 1] of any size
      and 1 or 3 channels (adapted to ``input_shape`` inside, so both domains and g's outputs
      go in as they are).
    init: ``key -> variables``, randomly initialised, with the structure of the pretrained
      ones (the shapes the state and checkpoints are built with).
    load: ``prerequisites -> variables``, the pretrained weights (read when training starts;
      ``prerequisites`` is the task's mapping of resolved runs, see :func:`prerequisites`).
    feature_dim: F.
    input_shape: (H, W, C) of the network.
    name: f in the log, e.g. ``"classifier:digits_encoder:features"``.
    classify: ``(variables, images) -> [B, classes]`` logits when f is a classifier (the
      evaluation then reports f's own accuracy on the source images), else None.
    head: ``(variables, features [B, feature_dim]) -> [B, classes]``, the classifier's last
      layer on f's output, when f is a classifier's feature layer (``loss.class_weight``
      uses it), else None.
  """

  apply: Callable[[PyTree, jax.Array], jax.Array]
  init: Callable[[jax.Array], PyTree]
  load: Callable[[dict[str, Any] | None], PyTree]
  feature_dim: int
  input_shape: tuple[int, int, int]
  name: str
  classify: Callable[[PyTree, jax.Array], jax.Array] | None = None
  head: Callable[[PyTree, jax.Array], jax.Array] | None = None


def _classifier_encoder(e: ml_collections.ConfigDict) -> Encoder:
  """f = a layer of a jgan classifier run (``encoder.experiment`` / ``encoder.workdir``)."""
  if e.layer not in ("features", "logits"):
    raise ValueError(f"Unknown config.encoder.layer {e.layer!r}; allowed: 'features', 'logits'.")
  model = models.ConvClassifier(num_classes=e.num_classes, widths=tuple(e.widths),
                                feature_dim=e.feature_dim)
  shape = tuple(e.image_shape)

  def apply(variables, images, layer=e.layer):
    return model.apply(variables, imaging.adapt_images(images, shape), train=False)[layer]

  def init(key):
    return model.init(key, jnp.zeros((1, *shape), jnp.float32), train=False)

  def head(variables, features):  # ConvClassifier's "logits" Dense (dropout is off in eval)
    dense = variables["params"]["logits"]
    return features @ dense["kernel"] + dense["bias"]

  return Encoder(apply=apply, init=init, load=functools.partial(_load_classifier_variables, e),
                 feature_dim=e.feature_dim if e.layer == "features" else e.num_classes,
                 input_shape=shape, name=f"classifier:{e.experiment}:{e.layer}",
                 classify=functools.partial(apply, layer="logits"),
                 head=head if e.layer == "features" else None)


def _dlib_resnet_encoder(e: ml_collections.ConfigDict) -> Encoder:
  """f = dlib's face-recognition ResNet (128-d descriptors of 150x150 RGB faces)."""
  from jgan.models import dlib_resnet  # pylint: disable=import-outside-toplevel
  shape = (dlib_resnet.INPUT_SIZE, dlib_resnet.INPUT_SIZE, 3)
  wrong = []
  if tuple(e.image_shape) != shape:
    wrong.append(f"--config.encoder.image_shape={','.join(map(str, shape))} (config says "
                 f"{tuple(e.image_shape)})")
  if e.feature_dim != dlib_resnet.EMBEDDING_DIM:
    wrong.append(f"--config.encoder.feature_dim={dlib_resnet.EMBEDDING_DIM} (config says "
                 f"{e.feature_dim})")
  if e.layer != "features":
    wrong.append(f"--config.encoder.layer=features (config says {e.layer!r})")
  if wrong:
    raise ValueError("config.encoder.name='dlib_resnet' is dlib's 150x150x3 -> 128-d face "
                     f"network; set {', '.join(wrong)}.")
  model = dlib_resnet.DlibFaceResNet()

  def apply(variables, images):
    return model.apply(variables, imaging.adapt_images(images, shape))

  def init(key):
    return model.init(key, jnp.zeros((1, *shape), jnp.float32))

  def load(prerequisites):  # pylint: disable=redefined-outer-name
    del prerequisites  # a weights file, not a run
    path = e.weights or dlib_resnet.default_dlib_face_resnet_path()
    variables = dlib_resnet.load_dlib_face_resnet(path)
    log.info("DTN encoder f: dlib's face-recognition ResNet from %s.", path)
    return variables

  return Encoder(apply=apply, init=init, load=load, feature_dim=dlib_resnet.EMBEDDING_DIM,
                 input_shape=shape, name="dlib_resnet")


# config.encoder.name -> builder. An explicit table: add an encoder by adding a line.
ENCODERS: dict[str, Callable[[ml_collections.ConfigDict], Encoder]] = {
    "classifier": _classifier_encoder,
    "dlib_resnet": _dlib_resnet_encoder,
}


def build_encoder(encoder_config: ml_collections.ConfigDict) -> Encoder:
  """The :class:`Encoder` that ``config.encoder`` names (see :data:`ENCODERS`).

  The architecture comes from the config alone, so a trained DTN run (whose checkpoint holds
  f's weights) opens without the encoder's run or weights file; ``Encoder.load`` reads the
  weights when training starts.
  """
  name = encoder_config.name
  if name not in ENCODERS:
    raise ValueError(f"Unknown config.encoder.name {name!r}; available: "
                     f"{', '.join(ENCODERS)}.")
  return ENCODERS[name](encoder_config)


def _load_classifier_variables(e: ml_collections.ConfigDict,
                               prerequisites: dict[str, Any] | None) -> PyTree:  # pylint: disable=redefined-outer-name
  """f's trained variables from the prerequisite run ``"encoder"`` (a
  :class:`~jgan.tasks.base.TrainedModel`), checked against the architecture the config names."""
  run = base.prerequisite(prerequisites, "encoder",
                          "The DTN encoder f (config.encoder.name='classifier')")
  workdir = run.workdir
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
           run.step, ", best checkpoint" if run.best else "")
  return run.variables


def _const_examples(config: ml_collections.ConfigDict) -> int:
  """``loss.const_examples``, at most the batch (a smaller ``--config.batch_size`` keeps
  working: L_CONST then sees the whole batch)."""
  k = int(config.loss.get("const_examples", 0))
  if k < 0:
    raise ValueError(f"config.loss.const_examples must be >= 0 (0: the whole batch); got {k}.")
  return min(k, config.batch_size)


def _feature_augment(loss: ml_collections.ConfigDict):
  """``(features, key) -> features`` of ``loss.feature_mix`` / ``feature_noise`` /
  ``feature_gaussian``, or None."""
  mix, noise = float(loss.get("feature_mix", 0.0)), float(loss.get("feature_noise", 0.0))
  gauss = float(loss.get("feature_gaussian", 0.0))
  if not 0 <= mix <= 1 or noise < 0 or not 0 <= gauss <= 1:
    raise ValueError(f"config.loss.feature_mix and feature_gaussian must be in [0, 1] and "
                     f"feature_noise >= 0; got feature_mix={mix}, feature_noise={noise}, "
                     f"feature_gaussian={gauss}.")
  fns = []
  if mix or noise:
    fns.append(functools.partial(augment.mix_features, mix_prob=mix, noise_std=noise))
  if gauss:
    fns.append(functools.partial(augment.gaussian_features, prob=gauss))
  if not fns:
    return None

  def apply(features: jax.Array, key: jax.Array) -> jax.Array:
    for i, fn in enumerate(fns):  # the first takes the key itself: mix alone is unchanged
      features = fn(features, jax.random.fold_in(key, i) if i else key)
    return features
  return apply


def _pairs(left: jax.Array, right: jax.Array) -> jax.Array:
  """Side-by-side pairs [N, H, 2W, C] (right adapted to left's size and channels)."""
  return jnp.concatenate([left, imaging.adapt_images(right, left.shape[1:])], axis=2)


def build(config: ml_collections.ConfigDict, *, image_shape: tuple[int, int, int],
          num_classes: int | None = None,
          source_shape: tuple[int, int, int] | None = None,
          prerequisites: dict[str, Any] | None = None) -> Task:  # pylint: disable=redefined-outer-name
  """The Task for a DTN described by ``config`` (see :func:`default_config`).

  ``prerequisites``: the resolved runs of :func:`prerequisites` (``"encoder"``: a
  :class:`~jgan.tasks.base.TrainedModel`, needed by ``load_pretrained``; ``"judge"``: a
  :class:`~jgan.evaluation.features.FeatureNetwork`, needed by the evaluation).
  """
  del num_classes
  if source_shape is None:
    raise ValueError("The dtn task needs a source dataset: set config.source_data.")
  if config.loss.distance not in losses.DISTANCES:
    raise ValueError(f"Unknown config.loss.distance {config.loss.distance!r}; available: "
                     f"{', '.join(losses.DISTANCES)}.")
  if config.loss.get("tid_distance") not in (None, *losses.DISTANCES):
    raise ValueError(f"Unknown config.loss.tid_distance {config.loss.tid_distance!r}; "
                     f"available: None (= loss.distance), {', '.join(losses.DISTANCES)}.")
  tid_distance = config.loss.get("tid_distance") or config.loss.distance
  bad = sorted(set(config.eval.metrics) - set(EVAL_METRICS))
  if bad:
    raise ValueError(f"Unknown DTN eval.metrics {bad}; available: {', '.join(EVAL_METRICS)}.")
  if config.eval.retrieval_distance not in retrieval.DISTANCES:
    raise ValueError(f"Unknown config.eval.retrieval_distance {config.eval.retrieval_distance!r}"
                     f"; available: {', '.join(retrieval.DISTANCES)}.")
  f = build_encoder(config.encoder)
  feature_dim = f.feature_dim
  standardize = bool(config.encoder.get("standardize", False))
  target_standardize = config.encoder.get("target_standardize", "none")
  if target_standardize not in TARGET_STANDARDIZE:
    raise ValueError(f"Unknown config.encoder.target_standardize {target_standardize!r}; "
                     f"available: {', '.join(TARGET_STANDARDIZE)}.")
  if target_standardize != "none" and not standardize:
    raise ValueError(f"config.encoder.target_standardize={target_standardize!r} needs "
                     "config.encoder.standardize=True (or set it to 'none').")
  if standardize:
    # f_variables = {"network": f's variables, "mean": [F], "std": [F]} (+ "target_mean",
    # "target_std"); the raw descriptor is still what retrieval ranks by (f's own metric).
    raw = lambda v, x: f.apply(v["network"], x)
    encoder = lambda v, x: (raw(v, x) - v["mean"]) / v["std"]
  else:
    raw = encoder = f.apply
  target_encoder = const_encoder = encoder
  if target_standardize != "none":
    target_encoder = lambda v, x: (raw(v, x) - v["target_mean"]) / v["target_std"]
    if target_standardize == "all":
      const_encoder = target_encoder
  class_weight = float(config.loss.get("class_weight", 0.0))
  head = None
  if class_weight:
    if f.head is None or standardize:
      raise ValueError(f"config.loss.class_weight={class_weight} needs f's classifier head: "
                       "encoder.name='classifier' with encoder.layer='features' and "
                       f"encoder.standardize=False (got encoder {f.name!r}, standardize="
                       f"{standardize}); or set --config.loss.class_weight=0.")
    head = f.head

  g_kwargs = config.model.generator.to_dict()
  d_kwargs = config.model.discriminator.to_dict()
  generator = models.build_generator(g_kwargs.pop("name"), image_shape=image_shape, **g_kwargs)
  d_kwargs.pop("joint_batch", None)  # the step's, not the model's
  if not d_kwargs.get("whole_image_head"):
    d_kwargs.pop("whole_image_head", None)
  if not d_kwargs.get("patch_layers"):
    d_kwargs.pop("patch_layers", None)  # whole-image D: any registered D
  d_kwargs["num_outputs"] = 3  # ternary: g(f(source)), g(f(target)), real target
  discriminator = models.build_discriminator(d_kwargs.pop("name"), image_shape=image_shape,
                                             **d_kwargs)
  g_opt, d_opt = optim.two_player_optimizers(config.optim, total_steps=config.total_steps)
  ema_decay = config.get("ema_decay", 0.0) or None

  def init(key: jax.Array):
    g_key, f_key = jax.random.split(key)
    f_variables = f.init(f_key)
    if standardize:
      f_variables = {"network": f_variables, "mean": jnp.zeros((feature_dim,), jnp.float32),
                     "std": jnp.ones((feature_dim,), jnp.float32)}
      if target_standardize != "none":
        f_variables.update(target_mean=f_variables["mean"], target_std=f_variables["std"])
    return steps.init_dtn_state(
        g_key, generator=generator, discriminator=discriminator, g_optimizer=g_opt,
        d_optimizer=d_opt, f_variables=f_variables, feature_dim=feature_dim,
        image_shape=image_shape, use_ema=ema_decay is not None)

  def load_pretrained(state):
    variables = f.load(prerequisites)
    expected = state.f_variables["network"] if standardize else state.f_variables
    shapes = lambda tree: jax.tree.map(lambda x: tuple(np.shape(x)), tree)
    if (jax.tree.structure(variables) != jax.tree.structure(expected)
        or shapes(variables) != shapes(expected)):
      raise ValueError(f"The pretrained variables of encoder {f.name!r} do not fit "
                       "config.encoder's architecture.")
    variables = jax.tree.map(lambda v, s: jnp.asarray(v, s.dtype), variables, expected)
    if standardize:
      mean, std = feature_statistics(
          f.apply, variables, config.source_data, num=config.encoder.standardize_examples,
          batch_size=config.eval.batch_size)
      log.info("DTN encoder f standardised over %s: mean |mean| %.4f, mean std %.4f.",
               config.source_data.name, float(np.mean(np.abs(mean))), float(np.mean(std)))
      variables = {"network": variables, "mean": jnp.asarray(mean), "std": jnp.asarray(std)}
      if target_standardize != "none":
        mean, std = feature_statistics(
            f.apply, variables["network"], config.data,
            num=config.encoder.standardize_examples, batch_size=config.eval.batch_size)
        log.info("DTN encoder f's target statistics over %s: mean |mean| %.4f, mean std %.4f.",
                 config.data.name, float(np.mean(np.abs(mean))), float(np.mean(std)))
        variables.update(target_mean=jnp.asarray(mean), target_std=jnp.asarray(std))
    return state.replace(f_variables=variables)
  step = steps.make_dtn_step(
      generator=generator, discriminator=discriminator, encoder=encoder,
      target_encoder=target_encoder, const_encoder=const_encoder, g_optimizer=g_opt,
      d_optimizer=d_opt, const_weight=config.loss.const_weight,
      tid_weight=config.loss.tid_weight, tv_weight=config.loss.tv_weight,
      distance=config.loss.distance, tid_distance=tid_distance,
      source_augment_fn=augment.from_config(config.get("source_augment", _NO_AUGMENT)),
      const_warmup_steps=config.loss.get("const_warmup_steps", 0),
      feature_augment_fn=_feature_augment(config.loss),
      const_augment_fn=augment.perturb_from_config(
          config.loss.get("const_perturb", _NO_PERTURB)),
      ema_decay=ema_decay, const_examples=_const_examples(config),
      class_weight=class_weight, encoder_head=head,
      d_joint_batch=bool(config.model.discriminator.get("joint_batch", False)),
      contrastive_weight=config.loss.get("const_contrastive_weight", 0.0),
      contrastive_temperature=config.loss.get("const_contrastive_temperature", 0.1),
      adversarial=config.loss.get("adversarial", "ternary"),
      mode_seeking_weight=config.loss.get("mode_seeking_weight", 0.0),
      mode_seeking_pool=config.loss.get("mode_seeking_pool", 4),
      d_augment_fn=augment.diff_augment_from_config(config.get("d_augment", "")),
      penalty=penalties.from_config(config.penalty.name, weight=config.penalty.weight))
  warmup_steps = int(config.loss.get("decoder_warmup_steps", 0))
  if not 0 <= warmup_steps < config.total_steps:
    raise ValueError(f"config.loss.decoder_warmup_steps={warmup_steps} must be in [0, "
                     f"total_steps={config.total_steps}): the DTN's own steps follow it.")
  warmup_step = steps.make_dtn_decoder_step(
      generator=generator, encoder=target_encoder, g_optimizer=g_opt,
      tid_weight=config.loss.tid_weight, tv_weight=config.loss.tv_weight,
      distance=tid_distance, ema_decay=ema_decay) if warmup_steps else None
  translate = steps.make_translate_fn(generator, encoder,
                                      use_ema=config.eval.get("use_ema", True))
  # Target-domain images (L_TID's reconstructions) reach g as in training.
  translate_target = steps.make_translate_fn(generator, target_encoder,
                                             use_ema=config.eval.get("use_ema", True))
  precompute = None
  if config.encoder.get("cache", False):
    variants = augment.variant_grid(config.get("source_augment", _NO_AUGMENT),
                                    rotations=config.encoder.cache_rotations)

    def precompute(state, datasets, cache_dir):
      return precompute_features(encoder, state.f_variables, datasets, variants=variants,
                                 cache_dir=cache_dir, batch_size=config.eval.batch_size,
                                 target_encoder=target_encoder)

  def sample_inputs(key: jax.Array, n: int) -> dict[str, jax.Array]:
    del key  # fixed held-out images: a seeded subset of each test split
    source = features.subset(data_lib.from_config(config.source_data, split="test").images, n)
    target = features.subset(data_lib.from_config(config.data, split="test").images, n)
    return {"source": imaging.to_float(jnp.asarray(source)),
            "target": imaging.to_float(jnp.asarray(target))}

  def sample(state, inputs) -> dict[str, jax.Array]:
    return {"translations": _pairs(inputs["source"], translate(state, inputs["source"])),
            "target_identity": _pairs(inputs["target"],
                                      translate_target(state, inputs["target"]))}

  compiled = {}

  blur_sigma = float(config.eval.get("retrieval_blur_sigma", 1.0))

  def embed_pairs(state, x):
    """f(x) (the gallery), f(g(f(x))) (the queries) and f(blur(g(f(x)))) of uint8 sources."""
    x = imaging.to_float(x)
    translated = translate(state, x)
    return {"gallery": raw(state.f_variables, x), "query": raw(state.f_variables, translated),
            "query_blurred": raw(state.f_variables,
                                 augment.gaussian_blur(translated, sigma=blur_sigma))}

  def evaluate(state) -> dict[str, float]:
    results = {}
    metrics = set(config.eval.metrics)
    if metrics & _JUDGED:
      if "judge" not in compiled:  # state is an argument: compiled once per run, not per call
        judge = base.prerequisite(prerequisites, "judge", "The DTN's judged evaluation")
        compiled["judge"] = judge
        compiled["judged"] = jax.jit(lambda state, x, flip, degrees: _judged(
            judge, translate(state, augment.apply_variants(imaging.to_float(x), flip, degrees))))
        compiled["reconstruct"] = jax.jit(
            lambda state, x: _reconstruction(translate_target, judge, state,
                                             imaging.to_float(x)))
        if f.classify is not None:  # f's own accuracy on the source images g is judged on
          network = (lambda v: v["network"]) if standardize else (lambda v: v)
          compiled["f_logits"] = jax.jit(lambda state, x: f.classify(
              network(state.f_variables), imaging.to_float(x)))
      results.update(_judged_metrics(compiled, state, config))
    if "retrieval" in metrics:
      if "retrieval" not in compiled:
        compiled["retrieval"] = jax.jit(embed_pairs)
      for split in config.eval.get("retrieval_splits", ("test",)):
        images = _retrieval_images(config.source_data.to_json(), config.eval.num_examples,
                                   split)
        out = batching.map_in_batches(functools.partial(compiled["retrieval"], state), images,
                                      batch_size=min(config.eval.batch_size, len(images)))
        scores = retrieval.identity_retrieval(out["query"], out["gallery"],
                                              distance=config.eval.retrieval_distance)
        prefix = "retrieval_" if split == "test" else f"retrieval_{split}_"
        results.update({f"{prefix}{k}": v for k, v in scores.items()})
        # Identity that only f reads (noise patterns) does not survive a blur; a face's does.
        blurred = retrieval.identity_retrieval(out["query_blurred"], out["gallery"],
                                               distance=config.eval.retrieval_distance)
        results.update({f"{prefix}blurred_{k}": blurred[k]
                        for k in ("top1", "top5", "median_rank")})
    return results
  target_note = ("" if target_standardize == "none"
                 else f", target by its own statistics ({target_standardize})")
  return Task(
      init=init, step=step, sample=sample, sample_inputs=sample_inputs,
      examples_per_step=config.batch_size, evaluate=evaluate, translate=translate,
      load_pretrained=load_pretrained, precompute=precompute, warmup_step=warmup_step,
      warmup_steps=warmup_steps,
      describe=(f"DTN: f={f.name} ({feature_dim}-d, input {f.input_shape}"
                f"{', standardised' if standardize else ''}{target_note}"
                f"{', cached' if precompute else ''}) "
                f"g={_describe_generator(config.model.generator)} "
                f"D={config.model.discriminator.name}(3 outputs"
                f"{_describe_patches(config.model.discriminator)}"
                f"{_describe_game(config)}) "
                f"alpha={config.loss.const_weight}"
                f" beta={config.loss.tid_weight} gamma={config.loss.tv_weight}"
                f" ema={ema_decay or 'off'}"
                f"{_describe_defences(config.loss)}"))


def _describe_generator(g_config: ml_collections.ConfigDict) -> str:
  cbn = g_config.get("condition_on_input", False)
  k = g_config.get("palette_size", 0)
  palette = f"({k} colours from f(x), {g_config.get('palette_mode', 'soft')})" if k else ""
  n = g_config.get("noise_dim", 0)
  noise = f"(f(x) + {n} noise values)" if n else ""
  return f"{g_config.name}{'(f(x) conditions every block)' if cbn else ''}{palette}{noise}"


def _describe_game(config: ml_collections.ConfigDict) -> str:
  game = config.loss.get("adversarial", "ternary")
  penalty = "" if config.penalty.name == "none" else f" + {config.penalty.name}"
  return "" if game == "ternary" and not penalty else f", {game}{penalty}"


def _describe_patches(d_config: ml_collections.ConfigDict) -> str:
  k = d_config.get("patch_layers", 0)
  if not k:
    return ""
  both = " and per image" if d_config.get("whole_image_head", False) else ""
  return f" per patch, after {k} convolutions{both}"


def _describe_defences(loss: ml_collections.ConfigDict) -> str:
  """The log's note of loss.feature_mix/feature_noise/const_examples/class_weight/
  const_contrastive_weight/decoder_warmup_steps/const_perturb, when set."""
  parts = [f"{k}={loss.get(k, 0.0)}" for k in ("feature_mix", "feature_noise", "feature_gaussian",
                                                      "const_examples", "class_weight",
                                                      "const_contrastive_weight",
                                                      "decoder_warmup_steps",
                                                      "mode_seeking_weight")
           if loss.get(k, 0.0)]
  p = loss.get("const_perturb", _NO_PERTURB)
  parts += [f"const_perturb.{k}={p.get(k, 0.0)}" for k in ("zoom", "shift", "blur", "min_blur")
            if p.get(k, 0.0)]
  return f" ({', '.join(parts)})" if parts else ""


def _fingerprint(*parts: Any) -> str:
  """A hash of arrays (their bytes, shapes and dtypes) and plain values."""
  h = hashlib.sha1()
  for part in parts:
    for leaf in jax.tree.leaves(part):
      a = np.ascontiguousarray(np.asarray(leaf))
      h.update(f"{a.dtype}{a.shape}".encode())
      h.update(a.tobytes())
  return h.hexdigest()[:16]


def precompute_features(encoder: Callable[[PyTree, jax.Array], jax.Array], f_variables: PyTree,
                        datasets: dict[str, data_lib.ArrayDataset], *,
                        variants: tuple[tuple[bool, float], ...], cache_dir: str,
                        batch_size: int,
                        target_encoder: Callable[[PyTree, jax.Array], jax.Array] | None = None
                        ) -> dict[str, data_lib.ArrayDataset]:
  """f on fixed inputs, added to the datasets' extras: ``target_features`` [N, F] of every
  target image (``datasets[""]``) and ``features`` [N, V, F] of every source image
  (``datasets["source"]``, batched as ``source_features``) under the V fixed ``variants``
  ((flip, degrees), :func:`jgan.augment.variant_grid`).

  The arrays are kept in ``cache_dir`` under a hash of f's variables, both datasets' images and
  the variants: a change of any of them computes them again, a resumed run reads the same
  arrays back. A progress bar with the time left shows while they are computed.
  ``target_encoder`` (default ``encoder``) is f for the target images (their own statistics).
  """
  target, source = datasets[""], datasets["source"]
  f_variables = jax.device_get(f_variables)
  key = _fingerprint(f_variables, target.images, source.images, np.asarray(variants, np.float64))
  path = os.path.join(cache_dir, f"f_{key}.npz")
  out = None
  if os.path.exists(path):
    try:
      with np.load(path) as cached:
        out = {"target": cached["target"], "source": cached["source"]}
      log.info("DTN: f's outputs read from %s.", path)
    except (OSError, ValueError, KeyError) as e:  # cut short: compute again
      log.warning("Ignoring the unreadable feature cache %s (%s).", path, e)
  if out is None:
    embed = jax.jit(lambda x: (target_encoder or encoder)(f_variables, imaging.to_float(x)))
    variant_fns = [jax.jit(lambda x, flip=flip, degrees=degrees: encoder(
        f_variables, augment.apply_variant(imaging.to_float(x), flip=flip, degrees=degrees)))
                   for flip, degrees in variants]
    jobs = [(embed, target.images)] + [(fn, source.images) for fn in variant_fns]
    total = sum(-(-len(images) // batch_size) for _, images in jobs)
    results = []
    with tqdm(total=total, desc="f on fixed inputs (once per run)", unit="batch",
              dynamic_ncols=True) as bar:
      for fn, images in jobs:
        parts = []
        for start in range(0, len(images), batch_size):
          parts.append(np.asarray(fn(images[start:start + batch_size]), np.float32))
          bar.update(1)
        results.append(np.concatenate(parts))
    out = {"target": results[0], "source": np.stack(results[1:], axis=1)}
    os.makedirs(cache_dir, exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}.npz"
    np.savez(tmp, **out)
    os.replace(tmp, path)  # atomic: a kill leaves the old file or none
  return {**datasets,
          "": dataclasses.replace(target, extras={**target.extras, "target_features": out["target"]}),
          "source": dataclasses.replace(source, extras={**source.extras,
                                                        "features": out["source"]})}


def feature_statistics(apply: Callable[[PyTree, jax.Array], jax.Array], variables: PyTree,
                       data_config: ml_collections.ConfigDict, *, num: int,
                       batch_size: int) -> tuple[np.ndarray, np.ndarray]:
  """Per-dimension mean and std of ``apply(variables, x)`` over a seeded subset of ``num``
  training images of ``data_config`` (float32 [F] each; std floored at 1e-6 of its largest
  value so a dead dimension cannot divide by zero)."""
  images = data_lib.from_config(data_config, split="train").images
  images = images[_held_out(len(images), num)]
  embed = jax.jit(lambda x: apply(variables, imaging.to_float(x)))
  out = np.asarray(batching.map_in_batches(embed, images, batch_size=min(batch_size, len(images))),
                   np.float64)
  mean, std = out.mean(0), out.std(0)
  std = np.maximum(std, 1e-6 * max(float(std.max()), 1e-12))
  return mean.astype(np.float32), std.astype(np.float32)


def judge_and_data(judge: features.FeatureNetwork, config: ml_collections.ConfigDict):
  """(judge, held-out source images, their labels, real target features) of the transfer
  accuracy / FID evaluation: ``eval.num_examples`` seeded source test images, and the judge's
  features of the target test split when "fid" is measured."""
  e = config.eval
  source = data_lib.from_config(config.source_data, split="test")
  if source.labels is None and "accuracy" in e.metrics:
    raise ValueError(f"DTN transfer accuracy needs a labelled source test split; {source.name!r} "
                     "has no labels (set --config.eval.metrics=fid, or retrieval).")
  keep = _held_out(len(source), e.num_examples)
  real = None
  if "fid" in e.metrics:
    target = data_lib.from_config(config.data, split="test")
    real = features.real_features(judge, target, num=len(target), batch_size=e.batch_size)
  labels = None if source.labels is None else source.labels[keep]
  return judge, source.images[keep], labels, real


def _held_out(n: int, num_examples: int) -> np.ndarray:
  """A seeded subset (ascending) of ``num_examples`` of n held-out examples (all if fewer).

  Not the first n: offline datasets may be stored class by class."""
  return np.sort(np.random.default_rng(0).permutation(n)[:num_examples])


@functools.cache
def _retrieval_images(source_json: str, num_examples: int, split: str = "test") -> np.ndarray:
  """The source images (uint8) of the identity-retrieval evaluation: a seeded subset of
  ``split`` (the held-out "test"; "train" measures how well g keeps the identities it was
  trained on)."""
  source = data_lib.from_config(ml_collections.ConfigDict(json.loads(source_json)), split=split)
  return source.images[_held_out(len(source), num_examples)]


def _judged(judge, images):
  """The judge's view of images and their speckle (:func:`jgan.imaging.median_residual`)."""
  return {**judge.apply(images), "speckle": imaging.median_residual(images)}


def _reconstruction(translate, judge, state, x):
  """g(f(x)) of real targets x: the judge's view of them, their speckle and their squared error
  per value."""
  out = translate(state, x)
  return {**_judged(judge, out), "sq_error": jnp.mean(jnp.square(out - x), axis=(1, 2, 3))}


def _judged_metrics(compiled: dict[str, Any], state, config) -> dict[str, float]:
  """The evaluation under the target-domain judge (``compiled["judge"]``):

  * ``transfer_accuracy`` (``"accuracy"``): the judge's accuracy on translated held-out
    source images, labelled with their source labels; with ``eval.heldout_style`` (overrides
    of ``source_data``, e.g. printed_digits' held-out styles) also
    ``transfer_accuracy_heldout_style`` on that test set; when f is a classifier, its own
    accuracy on the same images, ``encoder_accuracy`` (and ``encoder_accuracy_heldout_style``):
    the ceiling of what g can transfer;
  * ``fid/<judge>`` (``"fid"``): translations of the ``eval.fid_splits`` source images (each
    under every fixed variant of ``source_augment`` with ``eval.fid_variants``) against the
    target test split;
  * ``kid_heldout/<judge>`` (``"kid_heldout"``): the unbiased KID of the held-out (test)
    translations, fit for small sets;
  * ``fid_reconstruction/<judge>`` and ``reconstruction_mse`` (``"reconstruction"``):
    g(f(target test images)) (L_TID's reconstructions) against the originals, and their
    mean squared error per value (images in [-1, 1]);
  * ``speckle`` (with ``"fid"``, over the same translations), ``speckle_reconstruction`` (with
    ``"reconstruction"``) and ``speckle_real`` (the target test images): pixel-level noise,
    :func:`jgan.imaging.median_residual` (in [-1, 1] units; a clean cartoon is ~0).
  """
  e, metrics = config.eval, set(config.eval.metrics)
  judge = compiled["judge"]
  if "real" not in compiled:
    target = data_lib.from_config(config.data, split="test")
    compiled["target_test"] = target.images
    compiled["real"] = (features.real_features(judge, target, num=len(target),
                                               batch_size=e.batch_size)
                        if metrics & {"fid", "kid_heldout", "reconstruction"} else None)
  real = compiled["real"]
  source_json = config.source_data.to_json()

  def judged(images, flip=False, degrees=0.0):
    fn = functools.partial(compiled["judged"], state, flip=jnp.asarray(flip),
                           degrees=jnp.asarray(degrees, jnp.float32))
    return batching.map_in_batches(fn, images, batch_size=min(e.batch_size, len(images)))

  results: dict[str, float] = {}
  if "accuracy" in metrics:
    sets = [("", config.source_data)]
    heldout = config_lib.changed_group(config.source_data, e.get("heldout_style", None))
    if heldout is not None:
      sets.append(("_heldout_style", heldout))
    for suffix, data in sets:
      source = data_lib.from_config(data, split="test")
      if source.labels is None:
        raise ValueError(f"DTN transfer accuracy needs a labelled source test split; "
                         f"{source.name!r} has no labels (set --config.eval.metrics=fid, or "
                         "retrieval).")
      keep = _held_out(len(source), e.num_examples)
      out = judged(source.images[keep])
      results[f"transfer_accuracy{suffix}"] = float(np.mean(np.argmax(out["logits"], -1)
                                                            == source.labels[keep]))
      if "f_logits" in compiled:
        logits = batching.map_in_batches(functools.partial(compiled["f_logits"], state),
                                         source.images[keep],
                                         batch_size=min(e.batch_size, len(keep)))
        results[f"encoder_accuracy{suffix}"] = float(np.mean(np.argmax(logits, -1)
                                                             == source.labels[keep]))
  if "fid" in metrics:
    images = np.concatenate([_retrieval_images(source_json, e.num_examples, split)
                             for split in e.get("fid_splits", ("test",))])
    variants = (augment.variant_grid(config.get("source_augment", _NO_AUGMENT),
                                     rotations=config.encoder.get("cache_rotations", 5))
                if e.get("fid_variants", False) else ((False, 0.0),))
    outs = [judged(images, flip, degrees) for flip, degrees in variants]
    fake = np.concatenate([o["features"] for o in outs])
    results.update(generative.score(real, {"features": fake}, metrics=("fid",),
                                    network=judge.name))
    results["speckle"] = float(np.mean(np.concatenate([o["speckle"] for o in outs])))
    if "speckle_real" not in compiled:  # the real targets' own value, the clean reference
      compiled["speckle_real"] = float(np.mean(batching.map_in_batches(
          jax.jit(lambda x: imaging.median_residual(imaging.to_float(x))),
          compiled["target_test"], batch_size=min(e.batch_size, len(compiled["target_test"])))))
    results["speckle_real"] = compiled["speckle_real"]
  if "kid_heldout" in metrics:
    fake = judged(_retrieval_images(source_json, e.num_examples, "test"))["features"]
    kid = generative.score(real, {"features": fake}, metrics=("kid",), network=judge.name)
    results[f"kid_heldout/{judge.name}"] = kid[f"kid/{judge.name}"]
    results[f"kid_heldout_std/{judge.name}"] = kid[f"kid_std/{judge.name}"]
  if "reconstruction" in metrics:
    out = batching.map_in_batches(functools.partial(compiled["reconstruct"], state),
                                  compiled["target_test"],
                                  batch_size=min(e.batch_size, len(compiled["target_test"])))
    fid = generative.score(real, {"features": out["features"]}, metrics=("fid",),
                           network=judge.name)
    results[f"fid_reconstruction/{judge.name}"] = fid[f"fid/{judge.name}"]
    results["reconstruction_mse"] = float(np.mean(out["sq_error"]))
    results["speckle_reconstruction"] = float(np.mean(out["speckle"]))
  return results
