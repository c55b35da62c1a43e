"""Cartoon avatar faces rendered offline with DiceBear: a seeded, unlimited, labelled dataset.

The offline stand-in for CelebA-like faces (GANs) and for Bitmoji (DTN's target domain):

    ds = load_avatars("train", image_size=64, num_examples=10_000)    # ArrayDataset, uint8 RGB
    attrs = avatar_attributes("train", num_examples=10_000)            # {"top": int codes, ...}
    names = attribute_names()                                          # {"top": ["bigHair", ...]}
    captions = avatar_captions("train", num_examples=10_000)           # ["a cartoon face with ..."]

What is drawn: each avatar is a DiceBear style (default ``"avataaars"``, the style closest to
Bitmoji: head and shoulders with hair or a hat, optional glasses and facial hair, eyes, eyebrows,
mouth, clothes; skin, hair, hat and clothes colours) rendered to SVG by the pip package
``dicebear-core`` from the definition in ``dicebear-styles`` and rasterised by ``cairosvg``.
Avatar ``i`` of split ``split`` is DiceBear's own seeded draw for the seed string
``"jgan/{seed}/{split}/{i}"``, so the same ``(seed, split, index)`` always gives the same options
and the same image bytes (for the same package versions, which key the cache), and ``"train"``
and ``"test"`` are disjoint seed streams. Options jgan sets on top of DiceBear's defaults:

* background: a plain square of one of four cool pastel colours (:data:`BACKGROUND_COLORS`:
  light blue, lavender, light purple, mint green, chosen to contrast with every skin tone),
  drawn per avatar and recorded as the ``backgroundColor`` attribute;
* avataaars only: glasses/eyepatch on 25% of faces and facial hair on 15% (DiceBear's defaults
  are 10% each), see :data:`STYLE_OPTIONS`.

Sizes: ``"train"`` has ``num_examples`` avatars, ``"test"`` has ``max(1, num_examples // 10)``
(:data:`TEST_FRACTION`), so one ``num_examples`` in a config sizes both splits.

Labels and attributes: ``load_avatars`` returns as ``labels`` one categorical attribute, by
default ``"top"`` for avataaars (the hair style or head covering, 34 classes, all drawn with
equal weight; see :func:`default_label`), or any attribute named by ``label=``.
:func:`avatar_attributes` returns *every* attribute as int codes read from each avatar's
resolved DiceBear options (the exact variant and colour it drew): one entry per component
(``"top"``, ``"accessories"``, ``"eyes"``, ``"eyebrows"``, ``"mouth"``, ``"facialHair"``,
``"clothes"``, ``"clothesGraphic"``, ``"nose"``) with codes into the sorted variant names, and one
per colour (``"skinColor"``, ``"hairColor"``, ``"hatColor"``, ``"clothesColor"``,
``"facialHairColor"``, ``"accessoriesColor"``, ``"backgroundColor"``) with codes into the
style's palette (hex strings); :func:`attribute_names` maps codes back to labels. Code ``-1``
means the part was not drawn (no glasses, no facial hair, no graphic on a plain shirt, hair
colour under a hat...). :func:`avatar_captions` turns them into one English sentence each
(e.g. "a cartoon face with light skin, short curly brown hair, round glasses, winking eyes,
raised eyebrows and a smile, wearing a blue hoodie, on a light blue background"), for
text-to-image and DTN work.

Speed and caching: rendering takes about 10-20 ms an avatar per core at 64x64 (SVG build
about 0.5 ms, rasterisation the rest). Up to ``min(2, cpu_count)`` spawn-started worker
processes render batches of 256 or more (smaller ones render in-process, which is faster than
starting workers); progress is logged every ~10% on the ``"jgan.data"`` logger. The result is
cached as an uncompressed ``.npz`` (images and attribute codes) under
``data_root()/avatars/`` (``$JGAN_DATA_DIR``, default ``~/.cache/jgan``), keyed by style, size,
number, seed, split and a tag of the dicebear-core, dicebear-styles, cairosvg and cairo versions
and jgan's render options; written atomically (temporary file, then rename). Attributes alone
are cached in a second, size-independent file. A cache file that cannot be read is rendered
again, with a warning. Measured on a 2-core machine that was also running two training jobs:
1,000 avatars at 64x64 in 10.6 s in-process and 15-18 s with 2 workers (no spare core, and each
spawned worker spends 1-2 s importing jgan.data), so about 2-3 minutes for the default 10,000
there (expect about half with two idle cores); loading 10,000 (a 123 MB file) from the cache
0.08 s.

Licences (checked in the installed packages' metadata and ``dicebear_styles``' LICENSE.md):
dicebear-core and dicebear-schema are MIT; dicebear-styles' code and manifests are MIT and each
style's artwork has its own licence, repeated in the definition's ``meta`` block. The
avataaars artwork is by Pablo Stanley, "Free for personal and commercial use"
(https://avataaars.com/); DiceBear asks for the attribution "Remix of „Avataaars"
(https://avataaars.com/) by „Pablo Stanley", licensed under „Free for personal and commercial
use"". Other styles are mostly CC BY 4.0 (attribution) or CC0. cairosvg is LGPL-3.0-or-later
and cairocffi BSD, used as unmodified libraries. jgan ships no rendered images: they are
generated at run time on the user's machine.

Requirements: ``pip install dicebear-core dicebear-styles cairosvg`` (in jgan's dependencies,
so ``bash scripts/install.sh`` installs them) and the system cairo library (``libcairo2`` on
Debian/Ubuntu, installed by ``scripts/install_data.sh`` when missing). Without them every
function here raises :class:`DatasetNotFoundError` saying so. Scripts that render 256 or more
avatars start worker processes with ``spawn``, so their top-level code must be under
``if __name__ == "__main__":``.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.metadata
import importlib.resources
import io
import json
import math
import multiprocessing
import os
import tempfile
import time
import zipfile
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jgan.data.base import ArrayDataset, DatasetNotFoundError, logger
from jgan.paths import data_root

SPLITS = ("train", "test")
DEFAULT_STYLE = "avataaars"
TEST_FRACTION = 10  # "test" has max(1, num_examples // TEST_FRACTION) avatars.
PIP_PACKAGES = ("dicebear-core", "dicebear-styles", "cairosvg")
INSTALL_HINT = ("pip install dicebear-core dicebear-styles cairosvg (or `bash scripts/install.sh`)"
                "; cairosvg also needs the cairo library: apt-get install -y libcairo2")

# Plain pastel backgrounds, one drawn per avatar (DiceBear's seeded pick). Cool colours only:
# DiceBear's warm pastels (peach #ffdfbf, pink #ffd5dc) are within 11-40 levels of the pale
# skin tones, so faces would melt into the background.
BACKGROUND_COLORS = ("#b6e3f4", "#c0aede", "#d1d4f9", "#a7e3d0")
# DiceBear options jgan sets on top of a style's defaults (component probabilities in percent).
STYLE_OPTIONS: dict[str, dict[str, Any]] = {
    "avataaars": {"accessoriesProbability": 25, "facialHairProbability": 15},
}
_FORMAT_VERSION = 1  # bump when the rendering or the cache layout changes
_MIN_FOR_POOL = 256  # fewer avatars render in-process (worker start-up costs ~1-2 s each)
_ABSENT = -1

# ----------------------------------------------------------------------------- back end


def _backend():
  """Imports and returns (dicebear, cairosvg); raises DatasetNotFoundError if unavailable.

  Not cached on purpose: a missing package is reported on every call.
  """
  try:
    dicebear = importlib.import_module("dicebear")
    importlib.import_module("dicebear_styles")
    cairosvg = importlib.import_module("cairosvg")
  except (ImportError, OSError) as e:  # OSError: cairocffi found no libcairo
    raise DatasetNotFoundError(
        f"The cartoon avatar dataset is rendered by the pip packages "
        f"{', '.join(PIP_PACKAGES)}, which could not be imported ({type(e).__name__}: {e}). "
        f"Install them with: {INSTALL_HINT}.") from e
  return dicebear, cairosvg


def available_styles() -> list[str]:
  """The DiceBear style names installed by ``dicebear-styles`` (e.g. ``"avataaars"``)."""
  _backend()
  root = importlib.resources.files("dicebear_styles")
  return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".json"))


@functools.lru_cache(maxsize=16)
def _definition_text(style: str) -> str:
  path = importlib.resources.files("dicebear_styles") / f"{style}.json"
  if not path.is_file():
    raise ValueError(f"Unknown DiceBear style {style!r}; installed: "
                     f"{', '.join(available_styles())}.")
  return path.read_text(encoding="utf-8")


@functools.lru_cache(maxsize=16)
def _style_object(style: str):
  dicebear, _ = _backend()
  return dicebear.Style(json.loads(_definition_text(style)))


def style_license(style: str = DEFAULT_STYLE) -> dict[str, Any]:
  """The ``meta`` block of a style's definition: its licence, creator and source."""
  _backend()
  return json.loads(_definition_text(style)).get("meta", {})


@functools.lru_cache(maxsize=16)
def _attribute_table(style: str) -> tuple[tuple[str, str, tuple[str, ...]], ...]:
  """((attribute, resolved-options key, values), ...) for a style, in definition order."""
  dicebear, _ = _backend()
  st = _style_object(style)
  table = []
  for name, component in st.components().items():
    table.append((name, f"{name}Variant", tuple(sorted(component.variants()))))
  for name, colour in st.colors().items():
    if name == "background":
      continue
    values = tuple(dict.fromkeys(dicebear.Color.to_hex(v) for v in colour.values()))
    table.append((f"{name}Color", f"{name}Color", values))
  table.append(("backgroundColor", "backgroundColor",
                tuple(dicebear.Color.to_hex(v) for v in BACKGROUND_COLORS)))
  return tuple(table)


def attribute_names(style: str = DEFAULT_STYLE) -> dict[str, list[str]]:
  """Attribute name -> the labels its integer codes index (code ``-1``: not drawn).

  Components (``"top"``, ``"eyes"``...) list their variant names sorted; colours
  (``"hairColor"``, ``"backgroundColor"``...) list the palette as lowercase ``#rrggbb``.
  """
  return {attr: list(values) for attr, _, values in _attribute_table(style)}


@functools.lru_cache(maxsize=16)
def default_label(style: str = DEFAULT_STYLE) -> str:
  """The attribute ``load_avatars`` uses as ``labels`` by default.

  ``"top"`` for avataaars (hair style or head covering, 34 classes). For other styles: the
  component with the most variants among those the definition always draws (probability 100,
  not an alias) that 64 probe avatars all have; if none, ``"backgroundColor"`` (4 classes).
  """
  names = attribute_names(style)
  definition = json.loads(_definition_text(style))
  components = definition.get("components", {})
  if "top" in components and components["top"].get("probability", 100) >= 100:
    return "top"
  dicebear, _ = _backend()
  table = _attribute_table(style)
  probe = np.stack([
      _encode(dicebear.Avatar(_style_object(style),
                              _options(style, f"jgan/probe/{i}", 64)).to_json()["options"], table)
      for i in range(64)])
  drawn = {attr for k, (attr, _, _) in enumerate(table) if (probe[:, k] >= 0).all()}
  always = [n for n, c in components.items()
            if "extends" not in c and c.get("probability", 100) >= 100 and n in drawn]
  return max(always, key=lambda n: len(names[n])) if always else "backgroundColor"


def _encode(resolved: Mapping[str, Any], table) -> np.ndarray:
  codes = np.full(len(table), _ABSENT, np.int16)
  for k, (attr, key, values) in enumerate(table):
    value = resolved.get(key)
    if isinstance(value, list):
      value = value[0] if value else None
    if value is None:
      continue
    try:
      codes[k] = values.index(value)
    except ValueError:
      raise RuntimeError(f"DiceBear resolved {key}={value!r}, which is not among the "
                         f"{len(values)} known values of {attr!r}.") from None
  return codes


# ----------------------------------------------------------------------------- rendering


def seed_string(seed: int, split: str, index: int) -> str:
  """The DiceBear seed of avatar ``index`` of ``split``: ``"jgan/{seed}/{split}/{index}"``."""
  return f"jgan/{int(seed)}/{split}/{int(index)}"


def _options(style: str, seed_str: str, size: int) -> dict[str, Any]:
  return {"seed": seed_str, "size": int(size), "backgroundColor": list(BACKGROUND_COLORS),
          **STYLE_OPTIONS.get(style, {})}


def render_avatar(seed_str: str, *, image_size: int = 64, style: str = DEFAULT_STYLE,
                  options: Mapping[str, Any] | None = None
                  ) -> tuple[np.ndarray, dict[str, Any]]:
  """Renders one avatar: (uint8 RGB ``[S, S, 3]``, DiceBear's resolved options).

  ``options``: DiceBear options over jgan's (e.g. ``{"topVariant": ["bob", "bun"],
  "accessoriesProbability": 0}``: the seed then picks among what they allow).
  """
  from PIL import Image
  dicebear, cairosvg = _backend()
  avatar = dicebear.Avatar(_style_object(style),
                           {**_options(style, seed_str, image_size), **(options or {})})
  resolved = avatar.to_json()["options"]
  png = cairosvg.svg2png(bytestring=avatar.to_string().encode("utf-8"),
                         output_width=image_size, output_height=image_size)
  rgba = Image.open(io.BytesIO(png)).convert("RGBA")
  if rgba.size != (image_size, image_size):
    rgba = rgba.resize((image_size, image_size), Image.LANCZOS)
  background = (resolved.get("backgroundColor") or ["#ffffff"])[0]
  canvas = Image.new("RGB", rgba.size, background)  # the background rect is opaque already
  canvas.paste(rgba, mask=rgba)
  return np.asarray(canvas, np.uint8), resolved


def _render_chunk(task) -> tuple[int, np.ndarray | None, np.ndarray]:
  """Worker (top level, so ``spawn`` can pickle it): renders or only resolves a chunk.

  ``task`` is ``(start, seed_strings, image_size, style)``; ``image_size`` 0 resolves options
  only (no rasterisation). Returns ``(start, images or None, codes [k, A] int16)``.
  """
  start, seeds, image_size, style = task
  dicebear, _ = _backend()
  table = _attribute_table(style)
  codes = np.empty((len(seeds), len(table)), np.int16)
  images = None if not image_size else np.empty((len(seeds), image_size, image_size, 3), np.uint8)
  st = _style_object(style)
  for j, s in enumerate(seeds):
    if image_size:
      images[j], resolved = render_avatar(s, image_size=image_size, style=style)
    else:
      resolved = dicebear.Avatar(st, _options(style, s, 64)).to_json()["options"]
    codes[j] = _encode(resolved, table)
  return start, images, codes


def _num_workers(n: int, num_workers: int | None) -> int:
  if num_workers is None:
    return 1 if n < _MIN_FOR_POOL else max(1, min(2, os.cpu_count() or 1))
  return max(1, int(num_workers))


def _render_all(seeds: Sequence[str], *, image_size: int, style: str,
                num_workers: int | None = None) -> tuple[np.ndarray | None, np.ndarray]:
  """Renders (``image_size`` > 0) or resolves (0) every seed: (images or None, codes [N, A]).

  Uses a ``spawn`` Pool of ``num_workers`` processes (default: ``min(2, cpu_count)`` from 256
  avatars up, else in-process) and logs progress every ~10% on ``"jgan.data"``.
  """
  n = len(seeds)
  workers = _num_workers(n, num_workers)
  chunk = max(8, min(128, math.ceil(n / (10 * workers))))
  tasks = [(lo, list(seeds[lo:lo + chunk]), image_size, style) for lo in range(0, n, chunk)]
  table = _attribute_table(style)
  codes = np.empty((n, len(table)), np.int16)
  images = np.empty((n, image_size, image_size, 3), np.uint8) if image_size else None
  what = f"{n} {style} avatars" + (f" at {image_size}x{image_size}" if image_size else
                                    " (options only)")
  logger.info("Rendering %s with %d process%s...", what, workers, "es" if workers > 1 else "")
  begin = time.perf_counter()
  done, next_report = 0, 0.1

  def collect(result):
    nonlocal done, next_report
    lo, imgs, cds = result
    codes[lo:lo + len(cds)] = cds
    if images is not None:
      images[lo:lo + len(cds)] = imgs
    done += len(cds)
    if done >= next_report * n and done < n:
      elapsed = time.perf_counter() - begin
      logger.info("Avatars: %d/%d (%.0f%%) in %.1fs, about %.0fs left.", done, n, 100 * done / n,
                  elapsed, elapsed * (n - done) / done)
      next_report = math.floor(10 * done / n + 1) / 10

  if workers == 1:
    for task in tasks:
      collect(_render_chunk(task))
  else:
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
      for result in pool.imap_unordered(_render_chunk, tasks):
        collect(result)
  seconds = time.perf_counter() - begin
  logger.info("Rendered %s in %.1fs (%.1f ms each).", what, seconds, 1e3 * seconds / max(n, 1))
  return images, codes


# ----------------------------------------------------------------------------- cache


def _versions() -> dict[str, str]:
  versions = {}
  for package in PIP_PACKAGES:
    try:
      versions[package] = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError as e:
      raise DatasetNotFoundError(
          f"The cartoon avatar dataset needs the pip package {package}, which is not installed. "
          f"Install the packages with: {INSTALL_HINT}.") from e
  try:
    import cairocffi
    versions["cairo"] = cairocffi.cairo_version_string()
  except (ImportError, OSError, AttributeError):
    versions["cairo"] = "unknown"
  return versions


def _cache_tag(style: str) -> str:
  versions = _versions()
  key = json.dumps({"format": _FORMAT_VERSION, "versions": versions,
                    "background": BACKGROUND_COLORS, "options": STYLE_OPTIONS.get(style, {})},
                   sort_keys=True)
  digest = hashlib.sha1(key.encode()).hexdigest()[:8]
  return (f"core{versions['dicebear-core']}-styles{versions['dicebear-styles']}-"
          f"cairosvg{versions['cairosvg']}-{digest}")


def _cache_dir() -> str:
  return os.path.join(data_root(), "avatars")


def cache_path(split: str, *, image_size: int = 64, num_examples: int = 10_000, seed: int = 0,
               style: str = DEFAULT_STYLE) -> str:
  """Where :func:`load_avatars` caches this split (``image_size`` 0: the attributes file)."""
  _check_args(split, image_size or 1, num_examples, seed, style)
  size = f"{image_size}px" if image_size else "attributes"
  return os.path.join(_cache_dir(), f"{style}-{size}-n{num_examples}-seed{seed}-{split}-"
                      f"{_cache_tag(style)}.npz")


def _write_cache(path: str, *, codes: np.ndarray, style: str,
                 images: np.ndarray | None = None) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  meta = json.dumps({"style": style, "attributes": [a for a, _, _ in _attribute_table(style)],
                     "versions": _versions(), "format": _FORMAT_VERSION})
  arrays = {"codes": codes, "meta": np.asarray(meta)}
  if images is not None:
    arrays["images"] = images
  fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=os.path.dirname(path))
  try:
    with os.fdopen(fd, "wb") as f:
      np.savez(f, **arrays)
    os.chmod(tmp, 0o644)  # mkstemp makes it private
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def _read_cache(path: str, *, n: int, style: str,
                image_size: int) -> tuple[np.ndarray | None, np.ndarray] | None:
  """(images or None, codes) from a cache file; None (with a warning) if it is unreadable."""
  try:
    with np.load(path, allow_pickle=False) as z:
      meta = json.loads(str(z["meta"]))
      codes = z["codes"]
      images = z["images"] if image_size else None
    attrs = [a for a, _, _ in _attribute_table(style)]
    if meta.get("attributes") != attrs or codes.shape != (n, len(attrs)):
      raise ValueError(f"attribute codes {codes.shape} for {meta.get('attributes')}, "
                       f"expected {(n, len(attrs))} for {attrs}")
    if images is not None and (images.dtype != np.uint8 or
                               images.shape != (n, image_size, image_size, 3)):
      raise ValueError(f"images are {images.dtype} {images.shape}, expected uint8 "
                       f"{(n, image_size, image_size, 3)}")
  except (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as e:
    logger.warning("Avatar cache %s is corrupt (%s: %s); rendering it again.", path,
                   type(e).__name__, e)
    return None
  return images, codes


# ----------------------------------------------------------------------------- public API


def _check_args(split: str, image_size: int, num_examples: int, seed: int, style: str) -> None:
  if split not in SPLITS:
    raise ValueError(f"Unknown split {split!r}; allowed: {', '.join(map(repr, SPLITS))}.")
  if int(image_size) < 1:
    raise ValueError(f"image_size must be >= 1, got {image_size}.")
  if int(num_examples) < 1:
    raise ValueError(f"num_examples must be >= 1, got {num_examples}.")
  if int(seed) < 0:
    raise ValueError(f"seed must be >= 0, got {seed}.")
  if not isinstance(style, str) or not style or os.sep in style:
    raise ValueError(f"style must be a DiceBear style name, got {style!r}.")


def split_size(split: str, num_examples: int) -> int:
  """``num_examples`` for ``"train"``, ``max(1, num_examples // TEST_FRACTION)`` for ``"test"``."""
  return int(num_examples) if split == "train" else max(1, int(num_examples) // TEST_FRACTION)


def _seeds(split: str, num_examples: int, seed: int) -> list[str]:
  return [seed_string(seed, split, i) for i in range(split_size(split, num_examples))]


def _load(split, image_size, num_examples, seed, style, num_workers):
  """(images, codes, path, from_cache) for a split, rendering and caching on a miss."""
  _backend()
  _check_args(split, image_size, num_examples, seed, style)
  _definition_text(style)  # unknown style -> ValueError before any rendering
  n = split_size(split, num_examples)
  path = cache_path(split, image_size=image_size, num_examples=num_examples, seed=seed,
                    style=style)
  if os.path.exists(path):
    cached = _read_cache(path, n=n, style=style, image_size=image_size)
    if cached is not None:
      return cached[0], cached[1], path, True
  images, codes = _render_all(_seeds(split, num_examples, seed), image_size=image_size,
                              style=style, num_workers=num_workers)
  _write_cache(path, images=images, codes=codes, style=style)
  attrs_path = cache_path(split, image_size=0, num_examples=num_examples, seed=seed, style=style)
  if not os.path.exists(attrs_path):
    _write_cache(attrs_path, codes=codes, style=style)
  return images, codes, path, False


def load_avatars(split: str, *, image_size: int = 64, num_examples: int = 10_000, seed: int = 0,
                 style: str = DEFAULT_STYLE, label: str | None = None,
                 num_workers: int | None = None) -> ArrayDataset:
  """Renders (or loads from the cache) a split of cartoon avatar faces.

  Args:
    split: ``"train"`` (``num_examples`` avatars) or ``"test"`` (``max(1, num_examples // 10)``
      avatars from a disjoint seed stream).
    image_size: S, the side of the square RGB images.
    num_examples: the size of ``"train"`` (``"test"`` is a tenth of it).
    seed: integer >= 0; avatar ``i`` is DiceBear's draw for ``"jgan/{seed}/{split}/{i}"``.
    style: a DiceBear style from ``dicebear-styles`` (:func:`available_styles`).
    label: the attribute returned as ``labels`` (None: :func:`default_label`, ``"top"``, the
      hair style or head covering, 34 classes for avataaars). It must be drawn on every avatar
      (e.g. ``"skinColor"``, ``"eyes"``, ``"mouth"``, ``"clothes"``, ``"backgroundColor"``).
    num_workers: render processes (None: ``min(2, cpu_count)`` from 256 avatars up, else 1).

  Returns:
    An :class:`ArrayDataset` named ``"avatars"``: images uint8 ``[N, S, S, 3]``, labels int32
    ``[N]`` in ``[0, num_classes)`` with ``num_classes = len(attribute_names(style)[label])``.

  Raises:
    DatasetNotFoundError: dicebear-core, dicebear-styles or cairosvg (or libcairo) missing.
    ValueError: bad split, size, number, seed, style, or a label that some avatar lacks.
  """
  start = time.perf_counter()
  images, codes, path, from_cache = _load(split, image_size, num_examples, seed, style,
                                          num_workers)
  table = _attribute_table(style)
  attrs = [a for a, _, _ in table]
  label = default_label(style) if label is None else label
  if label not in attrs:
    raise ValueError(f"Unknown label attribute {label!r} for style {style!r}; "
                     f"choose from {', '.join(attrs)}.")
  k = attrs.index(label)
  labels = codes[:, k].astype(np.int32)
  if (labels < 0).any():
    raise ValueError(f"Attribute {label!r} is not drawn on {int((labels < 0).sum())} of "
                     f"{len(labels)} avatars, so it cannot be the label; choose one drawn on "
                     f"every avatar (e.g. 'top', 'skinColor', 'eyes', 'mouth', 'clothes').")
  versions = _versions()
  source = (f"dicebear {style} (dicebear-core {versions['dicebear-core']}, dicebear-styles "
            f"{versions['dicebear-styles']}; seed={seed}, {split}, {len(labels)} avatars "
            f"{image_size}x{image_size}, label={label}; "
            f"{'cached' if from_cache else 'rendered, cached'} at {path})")
  logger.info("Loaded avatars/%s (%d images) in %.2fs: %s.", split, len(labels),
              time.perf_counter() - start, source)
  return ArrayDataset(images=images, labels=labels, num_classes=len(table[k][2]), name="avatars",
                      source=source)


def avatar_attributes(split: str, *, num_examples: int = 10_000, seed: int = 0,
                      style: str = DEFAULT_STYLE) -> dict[str, np.ndarray]:
  """Every attribute of the avatars of :func:`load_avatars` (same arguments), as int codes.

  Returns:
    attribute name -> int16 ``[N]`` codes into ``attribute_names(style)[name]``, ``-1`` where
    the part is not drawn. Independent of ``image_size``; read from the cache that
    ``load_avatars`` writes, else resolved without rasterising (about 0.5 ms an avatar) and
    cached.
  """
  _backend()
  _check_args(split, 1, num_examples, seed, style)
  _definition_text(style)
  n = split_size(split, num_examples)
  path = cache_path(split, image_size=0, num_examples=num_examples, seed=seed, style=style)
  cached = _read_cache(path, n=n, style=style, image_size=0) if os.path.exists(path) else None
  if cached is None:
    _, codes = _render_all(_seeds(split, num_examples, seed), image_size=0, style=style,
                           num_workers=1)
    _write_cache(path, codes=codes, style=style)
  else:
    codes = cached[1]
  return {attr: codes[:, k].copy() for k, (attr, _, _) in enumerate(_attribute_table(style))}


def avatar_captions(split: str, *, num_examples: int = 10_000, seed: int = 0,
                    style: str = DEFAULT_STYLE) -> list[str]:
  """One English caption per avatar of :func:`load_avatars` (same arguments), in order."""
  codes = avatar_attributes(split, num_examples=num_examples, seed=seed, style=style)
  names = attribute_names(style)
  n = split_size(split, num_examples)
  out = []
  for i in range(n):
    values = {a: (names[a][int(c[i])] if c[i] >= 0 else None) for a, c in codes.items()}
    out.append(describe_avatar(values, style=style))
  return out


# ----------------------------------------------------------------------------- captions

# The avataaars palettes, named as in the original Avataaars generator where it names them.
COLOR_NAMES: dict[str, dict[str, str]] = {
    "skin": {"#614335": "dark brown", "#ae5d29": "brown", "#d08b5b": "light brown",
             "#edb98a": "light", "#ffdbb4": "pale", "#fd9841": "tanned", "#f8d25c": "yellow"},
    "hair": {"#a55728": "auburn", "#2c1b18": "black", "#b58143": "dark blonde",
             "#d6b370": "golden blonde", "#724133": "brown", "#4a312c": "dark brown",
             "#f59797": "pink", "#ecdcbf": "platinum blonde", "#c93305": "red",
             "#e8e1e1": "silver grey"},
    "fabric": {"#262e33": "black", "#65c9ff": "light blue", "#5199e4": "blue",
               "#25557c": "navy blue", "#e6e6e6": "light grey", "#929598": "grey",
               "#3c4f5c": "dark grey", "#b1e2ff": "pastel blue", "#a7ffc4": "pastel green",
               "#ffdeb5": "pastel orange", "#ffafb9": "pastel red", "#ffffb1": "pastel yellow",
               "#ff488e": "pink", "#ff5c5c": "red", "#ffffff": "white"},
    "background": {"#b6e3f4": "light blue", "#c0aede": "lavender", "#d1d4f9": "light purple",
                   "#a7e3d0": "mint green"},
}

_BASIC_COLORS = {
    "black": (0, 0, 0), "white": (255, 255, 255), "grey": (128, 128, 128),
    "light grey": (200, 200, 200), "dark grey": (64, 64, 64), "red": (220, 40, 40),
    "dark red": (128, 16, 16), "orange": (245, 140, 40), "yellow": (245, 220, 60),
    "green": (50, 170, 70), "dark green": (20, 90, 40), "light green": (160, 230, 160),
    "teal": (0, 128, 128), "blue": (50, 100, 220), "light blue": (160, 210, 245),
    "navy blue": (20, 40, 110), "purple": (130, 60, 170), "lavender": (195, 175, 225),
    "pink": (245, 110, 170), "light pink": (250, 205, 215), "brown": (130, 75, 40),
    "dark brown": (70, 45, 30), "light brown": (190, 135, 90), "beige": (235, 215, 180),
    "peach": (255, 220, 190),
}


def color_word(hex_color: str, role: str = "fabric") -> str:
  """An English name for a colour: avataaars' own name for its palettes, else the nearest of
  a few basic colours. ``role``: ``"skin"``, ``"hair"``, ``"fabric"`` or ``"background"``."""
  hex_color = hex_color.lower()
  for table in (COLOR_NAMES.get(role, {}), *COLOR_NAMES.values()):
    if hex_color in table:
      return table[hex_color]
  h = hex_color.lstrip("#")[:6].ljust(6, "0")
  rgb = np.array([int(h[i:i + 2], 16) for i in (0, 2, 4)], float)
  return min(_BASIC_COLORS, key=lambda k: float(((np.array(_BASIC_COLORS[k]) - rgb) ** 2).sum()))


_TOPS = {  # {h}: hair colour, {c}: hat colour
    "bigHair": "big {h} hair", "bob": "a {h} bob", "bun": "{h} hair in a bun",
    "curly": "long curly {h} hair", "curvy": "long wavy {h} hair",
    "dreads": "long {h} dreadlocks", "dreads01": "short {h} dreadlocks",
    "dreads02": "spiky {h} dreadlocks", "frida": "{h} hair with a flower crown",
    "frizzle": "short frizzy {h} hair", "fro": "a {h} afro",
    "froBand": "a {h} afro with a headband",
    "hat": "a {c} wide-brimmed hat", "hijab": "a {c} hijab",
    "longButNotTooLong": "shoulder-length {h} hair", "miaWallace": "a {h} bob with bangs",
    "shaggy": "shaggy {h} hair", "shaggyMullet": "a {h} shaggy mullet",
    "shavedSides": "long {h} hair with shaved sides", "shortCurly": "short curly {h} hair",
    "shortFlat": "short flat {h} hair", "shortRound": "short rounded {h} hair",
    "shortWaved": "short wavy {h} hair", "sides": "a bald head with {h} hair on the sides",
    "straight01": "long straight {h} hair", "straight02": "long straight {h} hair",
    "straightAndStrand": "long straight {h} hair with a loose strand",
    "theCaesar": "a short {h} caesar cut", "theCaesarAndSidePart": "a short side-parted {h} cut",
    "turban": "a {c} turban", "winterHat1": "a {c} winter hat with ear flaps",
    "winterHat02": "a {c} knitted hat with ear flaps", "winterHat03": "a {c} beanie",
    "winterHat04": "a {c} beanie with cat ears",
}
_ACCESSORIES = {
    "eyepatch": "an eyepatch", "kurt": "big dark sunglasses",
    "prescription01": "prescription glasses", "prescription02": "rectangular glasses",
    "round": "round glasses", "sunglasses": "sunglasses", "wayfarers": "wayfarer sunglasses",
}
_FACIAL_HAIR = {
    "beardLight": "a light {h} beard", "beardMajestic": "a majestic {h} beard",
    "beardMedium": "a {h} beard", "moustacheFancy": "a fancy {h} moustache",
    "moustacheMagnum": "a big {h} moustache",
}
_EYES = {
    "closed": "closed eyes", "cry": "teary eyes", "default": "open eyes",
    "eyeRoll": "rolling eyes", "happy": "happy squinting eyes", "hearts": "heart-shaped eyes",
    "side": "eyes looking to the side", "squint": "squinting eyes", "surprised": "wide eyes",
    "wink": "a wink", "winkWacky": "a wacky wink", "xDizzy": "dizzy x-shaped eyes",
}
_EYEBROWS = {
    "angry": "angry eyebrows", "angryNatural": "angry eyebrows", "default": "relaxed eyebrows",
    "defaultNatural": "relaxed eyebrows", "flatNatural": "flat eyebrows",
    "frownNatural": "frowning eyebrows", "raisedExcited": "raised eyebrows",
    "raisedExcitedNatural": "raised eyebrows", "sadConcerned": "worried eyebrows",
    "sadConcernedNatural": "worried eyebrows", "unibrowNatural": "a unibrow",
    "upDown": "one raised eyebrow", "upDownNatural": "one raised eyebrow",
}
_MOUTHS = {
    "concerned": "a concerned open mouth", "default": "a slight smile",
    "disbelief": "a mouth open in disbelief", "eating": "a mouth full of food",
    "grimace": "a grimace", "sad": "a sad mouth", "screamOpen": "a screaming mouth",
    "serious": "a serious mouth", "smile": "a smile", "tongue": "the tongue out",
    "twinkle": "a cheeky smile", "vomit": "a sick face",
}
_CLOTHES = {  # {c}: clothes colour, {g}: the t-shirt's graphic
    "blazerAndShirt": "a blazer over a {c} shirt",
    "blazerAndSweater": "a blazer over a {c} sweater",
    "collarAndSweater": "a {c} sweater over a collared shirt",
    "graphicShirt": "a {c} t-shirt with a {g} print", "hoodie": "a {c} hoodie",
    "overall": "{c} overalls", "shirtCrewNeck": "a {c} crew-neck t-shirt",
    "shirtScoopNeck": "a {c} scoop-neck t-shirt", "shirtVNeck": "a {c} v-neck t-shirt",
}


def _words(camel: str) -> str:
  out = []
  for ch in camel:
    if ch.isupper() or (ch.isdigit() and out and not out[-1][-1:].isdigit()):
      out.append(" ")
    out.append(ch.lower())
  return "".join(out).strip()


def _join(parts: Sequence[str]) -> str:
  parts = [p for p in parts if p]
  return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def describe_avatar(values: Mapping[str, str | None], *, style: str = DEFAULT_STYLE) -> str:
  """A one-sentence English caption from one avatar's attribute labels (None: not drawn).

  ``values`` maps attribute names (as in :func:`attribute_names`) to labels, e.g.
  ``{"top": "shortCurly", "hairColor": "#724133", "accessories": "round", ...}``.
  """
  v = dict(values)
  if style.startswith("avataaars"):
    return _describe_avataaars(v)
  parts = []
  for attr, value in v.items():
    if value is None or attr == "backgroundColor":
      continue
    if attr.endswith("Color"):
      parts.append(f"{color_word(value)} {_words(attr[:-5])}")
    else:
      parts.append(f"{_words(attr)} {_words(value)}")
  text = f"a cartoon {style} face with {_join(parts) if parts else 'no features'}"
  if v.get("backgroundColor"):
    text += f", on a {color_word(v['backgroundColor'], 'background')} background"
  return text


def _describe_avataaars(v: dict[str, str | None]) -> str:
  def colour(attr, role, default):
    return color_word(v[attr], role) if v.get(attr) else default

  hair = colour("hairColor", "hair", "dark")
  parts = []
  if v.get("skinColor"):
    parts.append(f"{color_word(v['skinColor'], 'skin')} skin")
  if v.get("top"):
    template = _TOPS.get(v["top"], _words(v["top"]) + " {h} hair")
    parts.append(template.format(h=hair, c=colour("hatColor", "fabric", "grey")))
  else:
    parts.append("a bald head")
  if v.get("accessories"):
    parts.append(_ACCESSORIES.get(v["accessories"], _words(v["accessories"])))
  if v.get("facialHair"):
    template = _FACIAL_HAIR.get(v["facialHair"], "a {h} " + _words(v["facialHair"]))
    parts.append(template.format(h=colour("facialHairColor", "hair", hair)))
  if v.get("eyes"):
    parts.append(_EYES.get(v["eyes"], _words(v["eyes"]) + " eyes"))
  if v.get("eyebrows"):
    parts.append(_EYEBROWS.get(v["eyebrows"], _words(v["eyebrows"]) + " eyebrows"))
  if v.get("mouth"):
    parts.append(_MOUTHS.get(v["mouth"], "a " + _words(v["mouth"]) + " mouth"))
  text = "a cartoon face with " + _join(parts)
  if v.get("clothes"):
    template = _CLOTHES.get(v["clothes"], "{c} " + _words(v["clothes"]))
    graphic = _words(v["clothesGraphic"]) if v.get("clothesGraphic") else "graphic"
    text += ", wearing " + template.format(c=colour("clothesColor", "fabric", "plain"),
                                           g=graphic)
  if v.get("backgroundColor"):
    text += f", on a {color_word(v['backgroundColor'], 'background')} background"
  return text
