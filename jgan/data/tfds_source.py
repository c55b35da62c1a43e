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

CelebA (TFDS ``celeb_a`` 2.1.0: ``image`` 218x178x3 JPEG, plus ``landmarks``, ``attributes`` and
``identity``, splits train/validation/test) is read the same way with ``image_size`` S: each
image is decoded, its central 178x178 square kept (rows 20..197) and resized to SxS with
Pillow's LANCZOS as it is read (:func:`jgan.data.transforms.center_crop_resize`, the crop of
DCGAN-style CelebA pipelines), so only the small images are held in memory (162,770 train images
at 64x64 are 2 GB). jgan's ``"train"``/``"test"`` are TFDS's train/test; the attributes are not
loaded (the dataset is unlabelled).
"""

from __future__ import annotations

import functools
import os

import numpy as np

from jgan.data.base import ArrayDataset, CorruptDatasetError, SourceUnavailable, logger

# jgan dataset name -> TFDS builder name (an explicit table; add entries here).
TFDS_NAMES = {"mnist": "mnist", "fashion_mnist": "fashion_mnist", "celeb_a": "celeb_a",
              "svhn": "svhn_cropped"}

_READ_CHUNK = 4096
_READ_CHUNK_RESIZED = 512  # Full-size decoded images of a chunk are held at once.


def _how_to_get(builder_name: str, data_dir: str | None) -> str:
  where = data_dir or "~/tensorflow_datasets"
  return ("on a machine with internet: pip install tensorflow tensorflow-datasets && python -c "
          f"'import tensorflow_datasets as tfds; tfds.builder(\"{builder_name}\", "
          f"data_dir=\"{where}\", file_format=\"array_record\").download_and_prepare()', "
          f"then copy {where} here and pass data_dir={where!r}")


def _to_image(image, image_size: int) -> np.ndarray:
  """A decoded TFDS image -> uint8 [H, W, C], or RGB [S, S, 3] center-cropped and resized."""
  image = np.asarray(image)
  if not image_size:
    return image[..., None] if image.ndim == 2 else image
  from PIL import Image  # pylint: disable=import-outside-toplevel
  from jgan.data import transforms  # pylint: disable=import-outside-toplevel
  if image.ndim == 3 and image.shape[-1] == 1:
    image = image[..., 0]
  pil = transforms.to_rgb(Image.fromarray(image.astype(np.uint8, copy=False)))
  return np.asarray(transforms.center_crop_resize(pil, image_size))


@functools.lru_cache(maxsize=8)
def _read_split(builder_name: str, data_dir: str | None, split: str,
                info_stamp: tuple[int, int], image_size: int = 0
                ) -> tuple[np.ndarray, np.ndarray | None, int | None]:
  """Reads every record of a prepared split; ``info_stamp`` only keys the cache.

  With ``image_size`` > 0 each image is center-cropped and resized as it is read.
  """
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
  images, labels = None, []
  chunk = _READ_CHUNK_RESIZED if image_size else _READ_CHUNK
  for lo in range(0, n, chunk):
    records = source.__getitems__(list(range(lo, min(n, lo + chunk))))
    for i, record in enumerate(records, start=lo):
      image = _to_image(record["image"], image_size)
      if images is None:
        images = np.empty((n,) + image.shape, np.uint8)  # Filled in place: no second copy.
      elif image.shape != images.shape[1:]:
        raise CorruptDatasetError(
            f"TFDS {builder_name}/{split} in {builder.data_dir}: record {i} has an image of shape "
            f"{image.shape}, record 0 {images.shape[1:]}; pass an image size to resize them.")
      images[i] = image
      if has_labels:
        labels.append(int(record["label"]))
    if n > chunk:
      logger.info("Read %d/%d records of TFDS %s/%s.", min(n, lo + chunk), n, builder_name, split)
  if images is None:
    raise CorruptDatasetError(f"TFDS {builder_name}/{split} in {builder.data_dir} has no records.")
  images.flags.writeable = False
  if not has_labels:
    return images, None, None
  labels = np.asarray(labels, np.int32)
  labels.flags.writeable = False
  return images, labels, int(features["label"].num_classes)


def load_tfds(name: str, split: str, data_dir: str | None, *,
              image_size: int = 0) -> ArrayDataset:
  """``name``'s ``split`` from a prepared TFDS ``array_record`` dataset under ``data_dir``.

  ``image_size`` > 0: each image is center-cropped to a square and resized to that size (RGB)
  while reading; 0: images as stored.

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
  images, labels, num_classes = _read_split(builder_name, data_dir, split, stamp,
                                            int(image_size))
  resized = f", center crop resized to {image_size}x{image_size}" if image_size else ""
  return ArrayDataset(images=images, labels=labels, num_classes=num_classes, name=name,
                      source=f"tfds:{builder_name}:{builder.version} (data_dir={version_dir}, "
                      f"{split}, {len(images)} images{resized})")
