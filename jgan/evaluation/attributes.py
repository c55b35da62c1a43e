"""Attribute accuracy: how often images show the attributes asked for, judged by a classifier.

A multi-head attribute classifier (``experiments/avatar_attributes_classifier.py``) outputs one
block of logits per attribute side by side (attribute ``a`` is ``logits[:, o_a:o_a + K_a]``,
``K = num_classes``, the layout of :func:`jgan.losses.attribute_classifier_loss`). Its
predictions are compared with the labels the images should show (label ``-1``: not given,
e.g. a hair colour under a hat; skipped). Pure host functions over numpy arrays.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def attribute_predictions(logits: np.ndarray, num_classes: Sequence[int]) -> np.ndarray:
  """int32 ``[N, A]``: the argmax of each attribute's block of ``logits`` ([N, sum(K)])."""
  logits = np.asarray(logits)
  counts = tuple(int(k) for k in num_classes)
  if logits.ndim != 2 or logits.shape[1] != sum(counts):
    raise ValueError(f"Expected logits [N, {sum(counts)}] for num_classes={counts}, got "
                     f"shape {logits.shape}.")
  offsets = np.cumsum((0,) + counts)
  return np.stack([np.argmax(logits[:, offsets[a]:offsets[a + 1]], axis=1)
                   for a in range(len(counts))], axis=1).astype(np.int32)


def attribute_accuracy(predictions: np.ndarray, labels: np.ndarray, names: Sequence[str], *,
                       prefix: str = "attr_") -> dict[str, float]:
  """Per-attribute accuracy, their mean, and the all-correct rate.

  For attribute ``a`` the accuracy is the fraction of correct predictions over the rows whose
  label is given (``labels[:, a] >= 0``; NaN if none is); a row is all-correct when every
  given attribute is right (a row with no given label counts as correct).

  Args:
    predictions: int [N, A], e.g. :func:`attribute_predictions`.
    labels: int [N, A], -1 where not given.
    names: the A attribute names.
    prefix: the metric names' prefix.

  Returns:
    ``{f"{prefix}acc/{name}": ..., f"{prefix}mean_acc": mean over attributes (NaNs
    skipped), f"{prefix}all_correct": ...}``.
  """
  predictions, labels = np.asarray(predictions), np.asarray(labels)
  if predictions.shape != labels.shape or labels.ndim != 2 or labels.shape[1] != len(names):
    raise ValueError(f"Expected predictions and labels [N, {len(names)}], got "
                     f"{predictions.shape} and {labels.shape}.")
  given = labels >= 0
  right = (predictions == labels) | ~given
  out = {}
  for a, name in enumerate(names):
    n = int(given[:, a].sum())
    out[f"{prefix}acc/{name}"] = float(right[given[:, a], a].mean()) if n else float("nan")
  accs = [v for v in out.values() if np.isfinite(v)]
  out[f"{prefix}mean_acc"] = float(np.mean(accs)) if accs else float("nan")
  out[f"{prefix}all_correct"] = float(np.mean(np.all(right, axis=1))) if len(labels) else float(
      "nan")
  return out


def combination_accuracy(predictions: np.ndarray, labels: np.ndarray,
                         mask: np.ndarray) -> float:
  """The fraction of rows whose attributes selected by ``mask`` (bool [N, A]) are all right.

  The held-out-combination score: ``mask[i]`` marks the attributes of the combination row
  ``i`` asks for (e.g. hair and hair colour for "long red hair"); labels -1 are skipped.
  """
  predictions, labels, mask = np.asarray(predictions), np.asarray(labels), np.asarray(mask, bool)
  if not predictions.shape == labels.shape == mask.shape:
    raise ValueError(f"Expected predictions, labels and mask of one shape [N, A], got "
                     f"{predictions.shape}, {labels.shape} and {mask.shape}.")
  wrong = mask & (labels >= 0) & (predictions != labels)
  return float(np.mean(~np.any(wrong, axis=1))) if len(labels) else float("nan")


def derangement(n: int, *, seed: int = 0) -> np.ndarray:
  """A seeded permutation of ``range(n)`` that moves every index (n > 1; ``[0]`` for n = 1).

  Scoring generated image ``i`` against the labels of caption ``perm[i]`` (another caption of
  the same set) gives the chance level of :func:`attribute_accuracy` given the generator's
  marginal distribution of attributes: what a generator that ignores its text would score.
  """
  if n < 2:
    return np.arange(n)
  order = np.random.default_rng(seed).permutation(n)
  perm = np.empty(n, np.int64)
  perm[order] = np.roll(order, 1)  # a cycle through a random order: no fixed point
  return perm


__all__ = ["attribute_accuracy", "attribute_predictions", "combination_accuracy",
           "derangement"]
