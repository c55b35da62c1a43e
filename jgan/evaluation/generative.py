"""Scoring a generator: features of its samples against features of real data."""

from __future__ import annotations

from typing import Callable, Sequence

import jax
import numpy as np

from jgan.evaluation import metrics as metrics_lib
from jgan.evaluation.features import FeatureNetwork

METRICS = ("fid", "kid", "pr", "is")


def check_metrics(names: Sequence[str]) -> tuple[str, ...]:
  bad = [m for m in names if m not in METRICS]
  if bad:
    raise ValueError(f"Unknown metric(s) {bad}; allowed: {', '.join(METRICS)} "
                     "(pr = precision and recall).")
  return tuple(names)


def sample_features(network: FeatureNetwork, generate: Callable[[jax.Array], jax.Array], *,
                    num: int, batch_size: int, key: jax.Array) -> dict[str, np.ndarray]:
  """Features of ``num`` generated images, ``generate(key) -> images [batch_size, ...]``.

  Generation and feature extraction run in one jitted function per batch; batch ``i`` uses
  ``fold_in(key, i)``, so the same key gives the same samples.
  """
  fn = jax.jit(lambda k: network.apply(generate(k)))
  outputs = [fn(jax.random.fold_in(key, i)) for i in range(-(-num // batch_size))]
  fetched = jax.device_get(outputs)
  return {k: np.concatenate([o[k] for o in fetched])[:num] for k in fetched[0]}


def score(real: dict[str, np.ndarray], fake: dict[str, np.ndarray], *, metrics: Sequence[str],
          network: str, kid_subset_size: int = 1000, pr_k: int = 3) -> dict[str, float]:
  """The requested metrics, each named ``<metric>/<network>``.

  ``real``/``fake`` hold ``features`` [N, D] (and ``logits`` [N, K] for ``is``, which is the
  Inception score for Inception logits and the "classifier score" for a domain classifier's).
  """
  check_metrics(metrics)
  r, f = real["features"], fake["features"]
  out: dict[str, float] = {}
  if "fid" in metrics:
    out[f"fid/{network}"] = metrics_lib.fid_from_features(r, f)
  if "kid" in metrics:
    subset = max(2, min(kid_subset_size, len(r), len(f)))
    mean, std = metrics_lib.kernel_inception_distance(r, f, subset_size=subset)
    out[f"kid/{network}"], out[f"kid_std/{network}"] = mean, std
  if "pr" in metrics:
    pr = metrics_lib.precision_recall(r, f, k=pr_k)
    out[f"precision/{network}"], out[f"recall/{network}"] = pr["precision"], pr["recall"]
  if "is" in metrics:
    if "logits" not in fake:
      raise ValueError(f"Metric 'is' needs class logits; the network {network} has none.")
    mean, std = metrics_lib.inception_score(fake["logits"], splits=min(10, len(fake["logits"])))
    out[f"is/{network}"], out[f"is_std/{network}"] = mean, std
  return out
