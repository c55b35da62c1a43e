"""Instance selection: train a GAN on the densest part of its data.

    keep = densest_indices(dataset.images, keep=0.8, labels=dataset.labels)
    dataset = subset(dataset, keep)

A GAN with little capacity or few steps spends them on every training image, the rare and
malformed ones too, and its samples fall between and around them. Fitting a Gaussian to the
images (here in the space of their first principal components) and dropping the least likely
ones before training trades a little recall for precision (DeVries, Drozdzal & Taylor 2020).
Only the training batches are selected: an evaluation keeps comparing with the full data.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jgan.data.base import ArrayDataset


def gaussian_log_density(images: np.ndarray, *, dims: int = 32) -> np.ndarray:
  """Per image, the log-density (up to a constant) of a Gaussian fitted to ``images``.

  The images are flattened, centred and projected on their first ``dims`` principal
  components; the Gaussian is diagonal in that basis (the components are uncorrelated), so
  the score is ``-0.5 * sum_j (p_j ** 2 / var_j)``: minus half the squared Mahalanobis
  distance from the mean image.

  Args:
    images: [N, ...] any numeric dtype, N >= 2.
    dims: principal components kept (at most N - 1 and the number of values an image has).

  Returns:
    float64 [N]: higher is more typical.

  References:
    DeVries, Drozdzal & Taylor, "Instance Selection for GANs", NeurIPS 2020, Sec. 3
    (a Gaussian model of an embedding space as the density).
  """
  x = np.asarray(images, np.float64).reshape(len(images), -1)
  if len(x) < 2:
    raise ValueError(f"gaussian_log_density needs at least 2 images, got {len(x)}.")
  if isinstance(dims, bool) or int(dims) != dims or dims < 1:
    raise ValueError(f"dims must be an integer >= 1, got {dims!r}.")
  dims = int(min(dims, len(x) - 1, x.shape[1]))
  x = x - x.mean(axis=0)
  _, s, vt = np.linalg.svd(x, full_matrices=False)
  proj = x @ vt[:dims].T
  var = s[:dims] ** 2 / (len(x) - 1)
  return -0.5 * np.sum(proj ** 2 / np.maximum(var, 1e-12), axis=1)


def densest_indices(images: np.ndarray, *, keep: float, labels: np.ndarray | None = None,
                    dims: int = 32) -> np.ndarray:
  """Sorted indices of the ``keep`` fraction of ``images`` with the highest density.

  With ``labels`` the selection is per class (each class keeps its own most typical
  ``keep`` fraction, so no class shrinks more than another: the density of one Gaussian over
  all classes would favour the classes near the mean image); see
  :func:`gaussian_log_density`.

  Args:
    images: [N, ...].
    keep: the fraction kept, in (0, 1]; 1 keeps every image.
    labels: [N] class ids, or None for one Gaussian over all images.
    dims: principal components of the density.

  Returns:
    int64 [M] ascending indices, M = ceil(keep * N) (per class with labels).

  References:
    DeVries, Drozdzal & Taylor, "Instance Selection for GANs", NeurIPS 2020.
  """
  if isinstance(keep, bool) or not 0.0 < keep <= 1.0:
    raise ValueError(f"keep must be a fraction in (0, 1], got {keep!r}.")
  n = len(images)
  if keep == 1.0:
    return np.arange(n)
  groups = [np.arange(n)] if labels is None else [
      np.flatnonzero(np.asarray(labels) == c) for c in np.unique(labels)]
  kept = []
  for idx in groups:
    m = int(np.ceil(keep * len(idx)))
    if len(idx) < 2:
      kept.append(idx)
      continue
    score = gaussian_log_density(images[idx], dims=dims)
    kept.append(idx[np.argsort(-score, kind="stable")[:m]])
  return np.sort(np.concatenate(kept))


def subset(dataset: ArrayDataset, indices: np.ndarray) -> ArrayDataset:
  """``dataset`` restricted to ``indices`` (images, labels and every extra)."""
  return dataclasses.replace(
      dataset, images=dataset.images[indices],
      labels=None if dataset.labels is None else dataset.labels[indices],
      extras={k: v[indices] for k, v in dataset.extras.items()})


def from_config(dataset: ArrayDataset, data_config) -> ArrayDataset:
  """The training data a config's ``data.keep_densest`` (and ``keep_densest_dims``) keep:
  ``dataset`` itself when the key is missing or 1."""
  keep = data_config.get("keep_densest", 1.0)
  if isinstance(keep, bool) or not isinstance(keep, (int, float)) or not 0.0 < keep <= 1.0:
    raise ValueError(f"config.data.keep_densest={keep!r} is not a fraction in (0, 1]: 1 trains "
                     "on every image, e.g. 0.8 on each class's 80% most typical.")
  if keep == 1.0:
    return dataset
  idx = densest_indices(dataset.images, keep=keep, labels=dataset.labels,
                        dims=int(data_config.get("keep_densest_dims", 32)))
  per = " per class" if dataset.labels is not None else ""
  return dataclasses.replace(subset(dataset, idx),
                             source=f"{dataset.source}; the densest {keep:g}{per}")
