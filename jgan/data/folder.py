"""Any folder of images as an unlabelled dataset, decoded once and cached as ``.npz``.

    ds = load_dataset("image_folder", image_dir="~/portraits", image_size=64)   # via the table
    python launch.py --experiment ... --config.data.name=image_folder \\
        --config.data.sources=folder --config.data.dir=~/portraits --config.data.image_size=64

What is read:

* Every file under ``image_dir``, recursively (symlinked folders are followed, each real folder
  once), whose extension is one of :data:`IMAGE_EXTENSIONS` in any case (``.jpg .jpeg .png .webp
  .bmp .gif``). Names starting with ``.`` (hidden files and folders, macOS ``._*`` files) are
  skipped; other files (``.txt``, ``.csv``...) are ignored. The order is the sorted relative
  paths (``/``-separated), so it is the same on every machine.
* Any size and mode: EXIF orientation is applied; a GIF (or animated WebP/PNG) gives its first
  frame; grey, palette, 16-bit, CMYK... become RGB and **alpha is composited on white** (see
  :mod:`jgan.data.transforms`). Images are always ``[N, S, S, 3]`` uint8.
* ``image_size``: ``0`` keeps the images as stored, which then must all have one size (else a
  ValueError names two that differ); ``S > 0`` takes the largest centred square and resizes it to
  ``S x S`` (LANCZOS down, BICUBIC up). A JPEG at least 4x larger than needed is decoded at a
  reduced DCT scale that still leaves at least ``2 S`` pixels (Pillow's ``draft``), then resized
  (CelebA-HQ 1024 -> 64 is then ~8x faster; CelebA's 178 -> 64 is decoded in full).
* Unreadable files (corrupt, truncated, not really an image, unsupported mode, larger than
  Pillow's decompression-bomb limit ``PIL.Image.MAX_IMAGE_PIXELS``, which jgan keeps) are
  skipped; ONE warning on the ``"jgan.data"`` logger gives their count and names a few.
* No labels (``labels`` and ``num_classes`` are None). Splits: ``"train"`` and ``"test"`` are
  both *every* image (no hold-out): an unconditional GAN's metrics (FID, KID, precision/recall)
  compare samples with the training distribution, as CelebA GAN papers do.

Cache: the decoded array is written once to
``$JGAN_DATA_DIR/folder_cache/<folder name>-<S>-<hash of (absolute folder, S)>.npz``
(``$JGAN_DATA_DIR`` defaults to ``~/.cache/jgan``), atomically (a temporary file, then
``os.replace``), together with a fingerprint of the absolute folder, ``image_size`` and the list of
(relative path, size, mtime) of its image files. A later load whose fingerprint matches reads the
cache instead of decoding; adding, removing, touching or rewriting an image re-decodes and
replaces the file. An unwritable cache directory only costs the re-decoding (a warning says so).
Within one process the last loads are also kept in memory (the array is returned read-only).
"""

from __future__ import annotations

import collections
import concurrent.futures
import hashlib
import json
import os
import re
import tempfile
import time
import zipfile

import numpy as np
from PIL import Image, ImageOps

from jgan.data import transforms
from jgan.data.base import (CELEB_A_FOLDER_HOW, SPLITS, ArrayDataset, CorruptDatasetError,
                            SourceUnavailable, logger)
from jgan.paths import data_root

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")
CACHE_SUBDIR = "folder_cache"
CACHE_VERSION = 1  # Bump when decoding or resizing changes, to invalidate old caches.

_DECODE_CHUNK = 512
_MEMORY_CACHE: collections.OrderedDict = collections.OrderedDict()  # fingerprint -> result
_MEMORY_CACHE_SIZE = 2
_NAMED_IN_WARNING = 5
_LOG_EVERY_S = 10.0


def cache_dir() -> str:
  """``$JGAN_DATA_DIR/folder_cache`` (``$JGAN_DATA_DIR`` defaults to ``~/.cache/jgan``)."""
  return os.path.join(data_root(), CACHE_SUBDIR)


def _extensions_text() -> str:
  return " ".join(IMAGE_EXTENSIONS) + " (any case)"


def _how_to_get() -> str:
  return ("point jgan at an existing folder of images: --config.data.dir=/path/to/images "
          f"(searched recursively for {_extensions_text()})")


def list_images(image_dir: str) -> tuple[list[str], list[str]]:
  """``(images, others)``: sorted ``/``-separated relative paths under ``image_dir``.

  ``images`` have an extension in :data:`IMAGE_EXTENSIONS` (any case); ``others`` are the
  remaining non-hidden files. Hidden names (leading ``.``) are skipped; symlinked folders are
  followed, each real folder once.
  """
  root = os.path.abspath(os.path.expanduser(os.fspath(image_dir)))
  images, others, seen = [], [], set()
  for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
    real = os.path.realpath(dirpath)
    if real in seen:  # A symlink cycle or a second link to the same folder.
      dirnames[:] = []
      continue
    seen.add(real)
    dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
    rel_dir = os.path.relpath(dirpath, root)
    for filename in filenames:
      if filename.startswith("."):
        continue
      rel = filename if rel_dir == "." else os.path.join(rel_dir, filename)
      rel = rel.replace(os.sep, "/")
      is_image = os.path.splitext(filename)[1].lower() in IMAGE_EXTENSIONS
      (images if is_image else others).append(rel)
  return sorted(images), sorted(others)


def _decode_image(path: str, image_size: int) -> np.ndarray:
  """One image file -> uint8 ``[H, W, 3]`` (``[S, S, 3]`` if ``image_size`` S > 0).

  Raises whatever Pillow raises for an unreadable file (the caller skips it), and
  ``Image.DecompressionBombError`` above ``Image.MAX_IMAGE_PIXELS`` pixels.
  """
  with Image.open(path) as image:
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and image.width * image.height > limit:
      raise Image.DecompressionBombError(
          f"{image.width}x{image.height} pixels exceed Pillow's limit of {limit}")
    if image_size and image.format == "JPEG":
      side = min(image.size)
      scale = 2 * image_size / side
      if scale < 1:  # draft picks the smallest DCT scale whose result is >= the requested size.
        image.draft(None, (int(np.ceil(image.width * scale)), int(np.ceil(image.height * scale))))
    image.load()  # First frame of an animation.
    try:
      oriented = ImageOps.exif_transpose(image)
    except Exception:  # pylint: disable=broad-except  (bad EXIF: keep the stored orientation)
      oriented = image
    rgb = transforms.to_rgb(oriented if oriented is not None else image)
    if image_size:
      rgb = transforms.center_crop_resize(rgb, image_size)
    return np.array(rgb, dtype=np.uint8)


def decode_image(path: str, image_size: int = 0) -> np.ndarray:
  """One image file -> uint8 RGB ``[H, W, 3]`` (centre-cropped and resized to ``image_size``
  when > 0), as the folder datasets decode it; raises Pillow's error for a bad file."""
  return _decode_image(path, image_size)


def _try_decode(path: str, image_size: int) -> np.ndarray | Exception:
  try:
    return _decode_image(path, image_size)
  except Exception as e:  # pylint: disable=broad-except  (any failure: the file is unreadable)
    return e


def _fingerprint(root: str, image_size: int, entries: list[tuple[str, int, int]]) -> str:
  payload = json.dumps({"version": CACHE_VERSION, "dir": root, "image_size": image_size,
                        "files": entries}, separators=(",", ":"))
  return hashlib.sha256(payload.encode()).hexdigest()


def cache_path(image_dir: str, image_size: int, directory: str | None = None) -> str:
  """Where the cache of ``image_dir`` at ``image_size`` lives (see the module docstring)."""
  root = os.path.abspath(os.path.expanduser(os.fspath(image_dir)))
  slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", os.path.basename(root) or "root")[:40]
  digest = hashlib.sha256(f"{root}\0{image_size}".encode()).hexdigest()[:16]
  return os.path.join(directory or cache_dir(), f"{slug}-{image_size}-{digest}.npz")


def _read_cache(path: str, fingerprint: str):
  if not os.path.isfile(path):
    return None
  try:
    with np.load(path, allow_pickle=False) as z:
      if str(z["fingerprint"]) != fingerprint:
        logger.info("Image folder cache %s is stale (the folder changed); decoding again.", path)
        return None
      skipped = [str(p) for p in z["skipped"]]
      reasons = dict(zip(skipped, (str(r) for r in z["skipped_reasons"])))
      return z["images"], [str(p) for p in z["paths"]], skipped, reasons
  except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
    logger.warning("Ignoring unreadable image folder cache %s (%s: %s); decoding again.", path,
                   type(e).__name__, e)
    return None


def _write_cache(path: str, fingerprint: str, root: str, images: np.ndarray, paths: list[str],
                 skipped: list[tuple[str, str]]) -> bool:
  directory = os.path.dirname(path)
  tmp = None
  try:
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp",
                               dir=directory)
    with os.fdopen(fd, "wb") as f:
      np.savez(f, images=images, paths=np.asarray(paths, dtype=str),
               skipped=np.asarray([p for p, _ in skipped], dtype=str),
               skipped_reasons=np.asarray([r for _, r in skipped], dtype=str),
               fingerprint=np.asarray(fingerprint),
               image_dir=np.asarray(root))
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
    return True
  except OSError as e:
    logger.warning("Could not write the image folder cache %s (%s); the folder will be decoded "
                   "again next time.", path, e)
    if tmp is not None and os.path.exists(tmp):
      os.unlink(tmp)
    return False


def _decode_all(root: str, files: list[str], image_size: int):
  """Decodes ``files`` (in order) -> (uint8 [N, H, W, 3], kept paths, skipped [(path, error)])."""
  start = last_log = time.perf_counter()
  out = None
  kept, skipped = [], []
  workers = max(1, min(8, os.cpu_count() or 1))
  with concurrent.futures.ThreadPoolExecutor(workers) as pool:  # Pillow decodes without the GIL.
    for lo in range(0, len(files), _DECODE_CHUNK):
      chunk = files[lo:lo + _DECODE_CHUNK]
      results = pool.map(_try_decode, [os.path.join(root, f) for f in chunk],
                         [image_size] * len(chunk))
      for rel, result in zip(chunk, results):
        if isinstance(result, Exception):
          logger.debug("Skipping unreadable image %s: %s: %s", rel, type(result).__name__, result)
          skipped.append((rel, f"{type(result).__name__}: {result}"))
          continue
        if out is None:
          out = np.empty((len(files),) + result.shape, np.uint8)
        elif result.shape != out.shape[1:]:
          raise ValueError(
              f"Images in {root} differ in size: {kept[0]} is {out.shape[2]}x{out.shape[1]} but "
              f"{rel} is {result.shape[1]}x{result.shape[0]} (width x height). With image_size=0 "
              "all images must have one size; set an image size to center-crop and resize them, "
              "e.g. --config.data.image_size=64.")
        out[len(kept)] = result
        kept.append(rel)
      now = time.perf_counter()
      done = min(len(files), lo + _DECODE_CHUNK)
      if now - last_log > _LOG_EVERY_S or (done == len(files) and len(files) > _DECODE_CHUNK):
        last_log = now
        logger.info("Decoded %d/%d images of %s (%.0f/s).", done, len(files), root,
                    done / max(now - start, 1e-9))
  if out is None:
    return None, kept, skipped
  images = out[:len(kept)] if len(kept) == len(files) else out[:len(kept)].copy()
  return images, kept, skipped


def _warn_skipped(root: str, total: int, skipped: list[str], reasons: dict[str, str]) -> None:
  if not skipped:
    return
  named = ", ".join(f"{p} ({reasons[p]})" if p in reasons else p
                    for p in skipped[:_NAMED_IN_WARNING])
  more = f" and {len(skipped) - _NAMED_IN_WARNING} more" if len(skipped) > _NAMED_IN_WARNING else ""
  logger.warning("Skipped %d of %d image files in %s that could not be read: %s%s.",
                 len(skipped), total, root, named, more)


def load_image_folder(image_dir: str | os.PathLike | None, *, image_size: int = 0,
                      split: str = "train", name: str = "image_folder",
                      cache_directory: str | None = None) -> ArrayDataset:
  """Every image under ``image_dir`` as uint8 ``[N, S, S, 3]`` (see the module docstring).

  Args:
    image_dir: the folder (``~`` is expanded); config key ``data.dir``.
    image_size: 0 (keep the stored size, which all images must share) or the square size S.
    split: ``"train"`` or ``"test"``: both are every image.
    name: the dataset name recorded in the result (``"celeb_a"`` for a CelebA folder).
    cache_directory: where the ``.npz`` cache goes (None: :func:`cache_dir`).

  Raises:
    ValueError: ``image_dir`` unset, bad ``image_size`` or ``split``; images of different
      sizes with ``image_size=0``.
    SourceUnavailable: the folder does not exist or holds no image file (``load_dataset``
      turns it into a :class:`DatasetNotFoundError` naming the folder and the extensions).
    CorruptDatasetError: it holds image files but none could be read.
  """
  if split not in SPLITS:
    raise ValueError(f"Unknown split {split!r}; allowed: {', '.join(map(repr, SPLITS))}.")
  if (isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer))
      or image_size < 0):
    raise ValueError(f"image_size must be an integer >= 0 (0: keep the stored size), got "
                     f"{image_size!r}.")
  image_size = int(image_size)
  if image_dir is None or not os.fspath(image_dir):
    raise ValueError(f"Dataset {name!r} needs image_dir, the folder of images "
                     "(--config.data.dir=/path/to/images).")
  root = os.path.abspath(os.path.expanduser(os.fspath(image_dir)))
  if not os.path.isdir(root):
    what = "is not a directory" if os.path.exists(root) else "does not exist"
    raise SourceUnavailable(f"the image folder {root} {what} (looked for {_extensions_text()})",
                            _how_to_get())
  files, others = list_images(root)
  entries = []
  for rel in files:
    try:
      st = os.stat(os.path.join(root, rel))
    except OSError:  # Vanished, or a dangling link: nothing to read.
      continue
    entries.append((rel, st.st_size, st.st_mtime_ns))
  if not entries:
    found = (f"; it has {len(others)} other file(s), e.g. {', '.join(others[:3])}" if others
             else "; it is empty")
    raise SourceUnavailable(f"the image folder {root} has no image files (looked recursively for "
                            f"{_extensions_text()}){found}", _how_to_get())
  files = [rel for rel, _, _ in entries]
  fingerprint = _fingerprint(root, image_size, entries)
  path = cache_path(root, image_size, cache_directory)

  start = time.perf_counter()
  origin = "memory"
  if fingerprint in _MEMORY_CACHE:
    _MEMORY_CACHE.move_to_end(fingerprint)
    images, kept, skipped = _MEMORY_CACHE[fingerprint]
  else:
    cached = _read_cache(path, fingerprint)
    if cached is not None:
      images, kept, skipped, reasons = cached
      origin = f"cache {path}"
    else:
      images, kept, reasons_list = _decode_all(root, files, image_size)
      reasons = dict(reasons_list)
      skipped = [p for p, _ in reasons_list]
      if images is None:
        named = ", ".join(f"{p} ({r})" for p, r in reasons_list[:_NAMED_IN_WARNING])
        raise CorruptDatasetError(
            f"None of the {len(files)} image files in {root} could be read (looked for "
            f"{_extensions_text()}), e.g. {named}.")
      origin = f"decoded in {time.perf_counter() - start:.1f}s, cached in {path}"
      if not _write_cache(path, fingerprint, root, images, kept, reasons_list):
        origin = f"decoded in {time.perf_counter() - start:.1f}s, not cached"
    images.flags.writeable = False
    _warn_skipped(root, len(files), skipped, reasons)
    _MEMORY_CACHE[fingerprint] = (images, kept, skipped)
    while len(_MEMORY_CACHE) > _MEMORY_CACHE_SIZE:
      _MEMORY_CACHE.popitem(last=False)
  h, w = images.shape[1:3]
  skipped_text = f", {len(skipped)} unreadable skipped" if skipped else ""
  return ArrayDataset(images=images, labels=None, num_classes=None, name=name,
                      source=f"image folder {root} ({split}: all {len(kept)} images, {h}x{w}"
                      f"{skipped_text}; {origin})")


# ---------------------------------------------------------------------------------- CelebA folder


def load_celeb_a_folder(split: str, image_dir: str | os.PathLike | None, *,
                        image_size: int = 64) -> ArrayDataset:
  """CelebA (``img_align_celeba``) or CelebA-HQ from a folder: :func:`load_image_folder`.

  The center crop of a 178x218 aligned CelebA image is its central 178x178 square, resized to
  ``image_size`` (default 64; 0 also means 64), exactly as the TFDS ``celeb_a`` path does. Both
  splits are every image of the folder.

  Raises:
    SourceUnavailable: no folder given, or it is missing or empty.
  """
  if image_dir is None or not os.fspath(image_dir):
    raise SourceUnavailable("no CelebA image folder given (data.dir / image_dir is unset)",
                            CELEB_A_FOLDER_HOW)
  try:
    return load_image_folder(image_dir, image_size=image_size or 64, split=split, name="celeb_a")
  except SourceUnavailable as e:
    raise SourceUnavailable(e.reason, CELEB_A_FOLDER_HOW) from e
