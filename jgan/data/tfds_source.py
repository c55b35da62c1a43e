"""Reads an already prepared TFDS dataset into arrays, without TensorFlow and without downloading.

The builder is created with ``file_format="array_record"`` and read with
``builder.as_data_source(split)`` (random access, numpy out). If the dataset is not prepared in
``data_dir`` this source reports itself unavailable (``load_dataset`` then tries the next source);
it never calls ``download_and_prepare``.

To prepare MNIST for this reader on a machine with internet access (the builder encodes numpy
images, which needs TensorFlow there)::

    pip install tensorflow tensorflow-datasets
    python -c 'import tensorflow_datasets as tfds; tfds.builder("mnist", data_dir="DIR", \
file_format="array_record").download_and_prepare()'

then copy ``DIR`` and pass ``data_dir="DIR"`` (or set ``$TFDS_DATA_DIR``).
"""

from __future__ import annotations

import functools
import os

import numpy as np

from jgan.data.sources import ArrayDataset, CorruptDatasetError, SourceUnavailable

# jgan dataset name -> TFDS builder name (an explicit table; add entries here).
TFDS_NAMES = {"mnist": "mnist", "fashion_mnist": "fashion_mnist"}

_READ_CHUNK = 4096


def _how_to_get(builder_name: str, data_dir: str | None) -> str:
  where = data_dir or "~/tensorflow_datasets"
  return ("on a machine with internet: pip install tensorflow tensorflow-datasets && python -c "
          f"'import tensorflow_datasets as tfds; tfds.builder(\"{builder_name}\", "
          f"data_dir=\"{where}\", file_format=\"array_record\").download_and_prepare()', "
          f"then copy {where} here and pass data_dir={where!r}")


@functools.lru_cache(maxsize=8)
def _read_split(builder_name: str, data_dir: str | None, split: str,
                info_stamp: tuple[int, int]) -> tuple[np.ndarray, np.ndarray | None, int | None]:
  """Reads every record of a prepared split; ``info_stamp`` only keys the cache."""
  del info_stamp
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  builder = tfds.builder(builder_name, data_dir=data_dir, file_format="array_record")
  source = builder.as_data_source(split=split)
  n = len(source)
  features = builder.info.features
  if "image" not in features:
    raise ValueError(f"TFDS builder {builder_name!r} has no 'image' feature "
                     f"(features: {list(features.keys())}).")
  has_labels = "label" in features and hasattr(features["label"], "num_classes")
  images, labels = [], []
  for lo in range(0, n, _READ_CHUNK):
    records = source.__getitems__(list(range(lo, min(n, lo + _READ_CHUNK))))
    for record in records:
      image = np.asarray(record["image"])
      images.append(image[..., None] if image.ndim == 2 else image)
      if has_labels:
        labels.append(int(record["label"]))
  if not images:
    raise CorruptDatasetError(f"TFDS {builder_name}/{split} in {builder.data_dir} has no records.")
  images = np.stack(images).astype(np.uint8, copy=False)
  images.flags.writeable = False
  if not has_labels:
    return images, None, None
  labels = np.asarray(labels, np.int32)
  labels.flags.writeable = False
  return images, labels, int(features["label"].num_classes)


def load_tfds(name: str, split: str, data_dir: str | None) -> ArrayDataset:
  """``name``'s ``split`` from a prepared TFDS ``array_record`` dataset under ``data_dir``.

  Raises:
    SourceUnavailable: tensorflow_datasets is missing, or the dataset is not prepared (in
      array_record format) there, or has no such split.
  """
  builder_name = TFDS_NAMES[name]
  how = _how_to_get(builder_name, data_dir)
  try:
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    raise SourceUnavailable(f"tensorflow_datasets is not importable ({e})",
                            "pip install tensorflow-datasets, then " + how) from e
  try:
    builder = tfds.builder(builder_name, data_dir=data_dir, file_format="array_record")
  except Exception as e:  # pylint: disable=broad-except  (any failure: this source is unusable)
    raise SourceUnavailable(f"tfds.builder({builder_name!r}, data_dir={data_dir!r}) failed: "
                            f"{type(e).__name__}: {e}", how) from e
  version_dir = os.fspath(builder.data_dir)
  if not builder.is_prepared():
    raise SourceUnavailable(f"{builder_name} {builder.version} is not prepared in {version_dir} "
                            "(no dataset_info.json there; jgan never downloads)", how)
  file_format = getattr(builder.info, "file_format", None)
  if file_format is not None and "array_record" not in str(file_format).lower():
    raise SourceUnavailable(
        f"{builder_name} is prepared in {version_dir} as {file_format}, but reading without "
        "TensorFlow needs array_record", how)
  if split not in builder.info.splits:
    raise SourceUnavailable(f"{builder_name} in {version_dir} has no split {split!r} (it has "
                            f"{sorted(builder.info.splits.keys())})", how)
  info_file = os.path.join(version_dir, "dataset_info.json")
  st = os.stat(info_file) if os.path.exists(info_file) else None
  stamp = (st.st_size, st.st_mtime_ns) if st else (0, 0)
  images, labels, num_classes = _read_split(builder_name, data_dir, split, stamp)
  return ArrayDataset(images=images, labels=labels, num_classes=num_classes, name=name,
                      source=f"tfds:{builder_name}:{builder.version} (data_dir={version_dir}, "
                      f"{split}, {len(images)} images)")
