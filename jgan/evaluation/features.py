"""Feature networks for FID/KID/precision-recall, pluggable by config, and feature extraction.

Two kinds (``config.eval.feature_network``):

* ``"classifier"``: a jgan-trained domain classifier (``experiments/*_classifier.py``); its
  ``features`` layer (128-d) by default. Offline, and the right judge for digits, clothes or
  avatars, where ImageNet features mean little. It is a prerequisite run of the task: the top
  layer (:func:`jgan.runs.classifier_network`) opens it, training it first if missing, and
  hands the task its :class:`FeatureNetwork`; this module never opens runs.
* ``"inception_v3"``: the standard FID Inception (pytorch-fid's port of the TF 2015 graph),
  2048-d ``pool3`` features and 1008 logits. Its weights file is not installable offline:
  pass its path as ``eval.inception_weights``.

Every number jgan reports carries the feature network's ``name``, e.g.
``fid/classifier:mnist_classifier:features`` or ``fid/inception_v3:pool3``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jgan import batching, imaging

log = logging.getLogger("jgan.evaluation")


@dataclasses.dataclass(frozen=True)
class FeatureNetwork:
  """A frozen network mapping images to features (and, if it has them, class logits).

  Attributes:
    name: what produced the numbers, ``kind:source:layer``; part of every metric's name.
    apply: pure ``images [B, H, W, C] float in [-1, 1] -> {"features": [B, D], "logits":
      [B, K]}`` (``logits`` may be absent); images of another size or channel count are
      adapted inside (resized, grey tiled to RGB).
    cache_key: identifies the weights, for caching real-data features on disk.
  """

  name: str
  apply: Callable[[jax.Array], dict[str, jax.Array]]
  cache_key: str


def inception_network(weights_path: str) -> FeatureNetwork:
  """The FID Inception-v3 with pytorch-fid's weights file (``pt_inception-2015-12-05-*.pth``)."""
  from jgan.models import inception  # pylint: disable=import-outside-toplevel
  if not weights_path:
    raise FileNotFoundError(
        "eval.feature_network='inception_v3' needs the FID Inception weights, which cannot be "
        f"installed offline: download {inception.FID_WEIGHTS_URL} on a machine with internet "
        "and pass --config.eval.inception_weights=/path/to/pt_inception-2015-12-05-6726825d.pth"
        " (or use --config.eval.feature_network=classifier).")
  variables = inception.load_fid_inception_params(weights_path)
  model = inception.InceptionV3FID()

  def apply(images: jax.Array) -> dict[str, jax.Array]:
    if images.shape[3] == 1:
      images = jnp.tile(images, (1, 1, 1, 3))
    out = model.apply(variables, images, train=False)
    return {"features": out["pool3"], "logits": out["logits"]}

  stat = os.stat(weights_path)
  return FeatureNetwork(name="inception_v3:pool3", apply=apply,
                        cache_key=f"inception_v3:{os.path.abspath(weights_path)}:"
                                  f"{stat.st_size}:{stat.st_mtime_ns}")


def extract(network: FeatureNetwork, images: np.ndarray, *,
            batch_size: int = 250) -> dict[str, np.ndarray]:
  """Features (and logits) of uint8 images [N, H, W, C], computed in jitted batches."""
  fn = jax.jit(lambda x: network.apply(imaging.to_float(x)))
  return batching.map_in_batches(fn, images, batch_size=batch_size)


def subset(images: np.ndarray, num: int, *, seed: int = 0) -> np.ndarray:
  """``num`` images drawn without replacement in a seeded random order."""
  order = np.random.default_rng(seed).permutation(len(images))[:num]
  return images[order]


def real_features(network: FeatureNetwork, dataset, *, num: int, batch_size: int = 250,
                  cache_dir: str | None = None) -> dict[str, np.ndarray]:
  """Features of ``num`` images of ``dataset`` (an ArrayDataset), cached on disk.

  The images are a seeded random subset (:func:`subset`), not the first ``num``: datasets
  stored by class (the offline MNIST) would otherwise give statistics of a few classes.

  The cache (``$JGAN_DATA_DIR/eval_cache`` by default) is keyed by the dataset's name and
  source, ``num`` and the network's ``cache_key``, so a retrained classifier or another
  weights file never reuses stale statistics.
  """
  num = min(num, len(dataset.images))
  key = hashlib.sha1(f"{dataset.name}|{dataset.source}|{num}|subset0|{network.cache_key}"
                     .encode())
  cache_dir = cache_dir or os.path.join(
      os.environ.get("JGAN_DATA_DIR", os.path.expanduser("~/.cache/jgan")), "eval_cache")
  path = os.path.join(cache_dir, f"{dataset.name}-{num}-{key.hexdigest()[:16]}.npz")
  if os.path.exists(path):
    try:
      with np.load(path) as cached:
        return {k: cached[k] for k in cached.files}
    except (OSError, ValueError) as e:  # a cache file cut short: recompute it
      log.warning("Ignoring unreadable feature cache %s (%s).", path, e)
  out = extract(network, subset(dataset.images, num), batch_size=batch_size)
  os.makedirs(cache_dir, exist_ok=True)
  tmp = path + ".tmp.npz"
  np.savez(tmp, **out)
  os.replace(tmp, path)
  return out
