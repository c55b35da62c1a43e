"""Printed digits rendered offline from installed fonts: a seeded, labelled stand-in for SVHN.

The source domain of the Domain Transfer Network (digits -> MNIST) is SVHN, which cannot be
installed offline. This module renders street-number-like crops instead:

    ds = load("train", num_examples=50_000)             # ArrayDataset: uint8 [N, 32, 32, 3]
    ds = load_dataset("printed_digits", split="test")   # the same through jgan.data's table
    images, labels = render_digits(100, seed=0, split="train")   # no cache, no disk
    fonts = find_fonts()                                 # the font files used

Fonts (:func:`find_fonts`): every ``.ttf``/``.otf`` file under ``/usr/share/fonts``
(:data:`FONT_DIRS`; ``bash scripts/install_data.sh`` installs the Debian packages
:data:`DEBIAN_FONT_PACKAGES`), kept only if it really draws the ten Latin digits:

1. each digit's glyph has ink, the ten are pairwise different, and none is the font's missing-glyph
   (``.notdef``) drawing, i.e. what it draws for the unassigned code point U+0378 (fonts-noto-core
   installs ~200 script fonts without Latin digits: they draw ten identical boxes or nothing);
2. the digits look like digits: at least :data:`MIN_RECOGNISED` of the ten, reduced to 24x24
   templates, are nearest (normalised correlation) to the same digit of matplotlib's bundled
   DejaVu fonts (this drops symbol fonts that map the digit code points to pictures, e.g. URW's
   D050000L dingbats; the 175 text fonts that pass step 1 here score 8-10 of 10, D050000L 0);
3. near-copies are dropped: a font whose ten templates correlate >= :data:`NEAR_DUPLICATE` (on
   average) with those of a font already kept is left out, fonts being visited shortest family
   name first. Most Noto script fonts carry Noto Sans' or Noto Serif's digits, Liberation Sans/
   Serif/Mono are Arimo/Tinos/Cousine again, Nimbus Roman and Nimbus Mono PS are FreeSerif and
   FreeMono; weights and slants of one family differ far more (Noto Sans Regular vs Bold: 0.89;
   vs Italic: 0.77) and are kept.

With the eight Debian packages (373 files) 97 fonts in 29 families are kept (about 1.3 s, once
per process; ``functools.cache``): Arimo, C059, Caladea, Carlito, Cousine, DejaVu Sans/Serif,
FreeMono/Sans/Serif, Liberation Sans Narrow, Nimbus Sans (Narrow), P052, Tinos, URW Bookman,
URW Gothic, Z003, Standard Symbols PS, Noto Sans/Serif (Display) and a few Noto script families
whose Latin digits differ slightly. If nothing under :data:`FONT_DIRS` qualifies, matplotlib's
bundled fonts are used (20 DejaVu, STIX and Computer Modern fonts; matplotlib is a jgan
dependency), so rendering works without any Debian font.

Font sampling, so that no family's many variants dominate: each image draws a *family group*
uniformly (:func:`family_group`, the first two words of the family name: Noto's per-script
families count as "Noto Sans" or "Noto Serif", Liberation Sans Narrow as "Liberation Sans"; 22
groups here), then one of the group's kept fonts uniformly. DejaVu Sans' nine kept styles (Book,
Bold, Oblique, ExtraLight, Condensed...) together are drawn as often as Z003's single one; no
style is capped or dropped, they share their group's weight.

One example (:func:`render_digit`): example ``i`` of a split is a pure function of
``(seed, split, i)`` (its generator is ``np.random.default_rng([seed, split_id, 0, i])``), so
``"train"`` and ``"test"`` are disjoint streams and any prefix of a split is reproducible. Labels
are exactly balanced per block of ten: label ``i`` is ``perm_b[i % 10]`` with
``perm_b = default_rng([seed, split_id, 1, i // 10]).permutation(10)`` (every prefix is within one
of balanced). SVHN-like variation, each drawn per example:

* a font (above); glyph height (of the font's digits) 50-90% of the image; width x0.85-1.15;
  rotation ~N(0, 6) degrees clipped to +-15; shear +-0.2; centre offset +-7% (x), +-5% (y);
* partial neighbouring digits on the left and the right (each with probability 0.6, random
  digits in the same font and colour, spaced 0.95-1.4 advances), cut by the crop as in SVHN;
* foreground and background colours with a luma (BT.601) difference of at least
  :data:`MIN_CONTRAST` levels, dark-on-light and light-on-dark equally often, saturation from
  grey to vivid; background plain (45%), a two-colour gradient (30%) or a smooth noisy texture
  (25%); a plate edge of another colour along one side (20%); a 1-2 px drop shadow (15%);
* loss of resolution (25%: down to 50-80% and back), Gaussian blur (80%, sigma 0.2-1.1 px),
  JPEG compression (30%, quality 25-75), additive Gaussian noise (sigma 0-7 levels).

Glyphs are rasterised once per font by FreeType (Pillow) at twice the output size, laid out and
warped with one affine transform (bilinear) at 2x, then box-downsampled to the output size.

Speed: 1,300-1,800 images/s at 32x32 in one process (one core), measured on the 2-core AVX-512
machine while another job kept both cores busy (load 1.7-2.2), with ``python -m
jgan.data.printed_digits --num 10000`` (it also prints the fonts; the font scan and glyph
rasterisation, 1.2-1.9 s once per process, are not timed). Rendering and caching the default
50,000 training images took 37 s there, once; reading them back from the cache (154 MB) 0.5 s.

Sizes and cache: ``"train"`` has ``num_examples`` images (default :data:`DEFAULT_NUM_EXAMPLES`,
50,000), ``"test"`` ``max(1, num_examples // 10)`` (5,000), as for :mod:`jgan.data.avatars`, so
one ``num_examples`` in a config sizes both splits. The arrays are cached as an uncompressed
``.npz`` under ``data_root()/printed_digits/`` (``$JGAN_DATA_DIR``, default ``~/.cache/jgan``),
keyed by split, number, size, seed, a fingerprint of the font list (relative paths and file
sizes) and :func:`renderer_tag` (:data:`RENDERER_VERSION` and the Pillow, FreeType and numpy
versions); written atomically (temporary file, then ``os.replace``; an unwritable directory only
costs a warning). A cache file that cannot be read raises :class:`CorruptDatasetError` naming it:
delete it and load again to render it afresh (it is never silently replaced).

Licences (the Debian packages' copyright files): DejaVu: Bitstream Vera licence; Liberation 1.07:
GPL-2 with font exceptions; Croscore (Arimo, Tinos, Cousine), Carlito, Caladea, Noto: SIL OFL
1.1; FreeFont: GPL-3+ with the font exception; URW base35: AGPL-3 with the font exception. The
fonts are used, not shipped: jgan ships no rendered images except the small sample grid
``docs/images/printed_digits.png``; the dataset is generated on the user's machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import io
import json
import math
import os
import tempfile
import time
import zipfile
from collections.abc import Sequence

import numpy as np
import PIL
from PIL import Image, ImageDraw, ImageFilter, ImageFont, features

from jgan.data.base import (INSTALL_HINT, SPLITS, ArrayDataset, CorruptDatasetError,
                            DatasetNotFoundError, logger)
from jgan.paths import data_root

NAME = "printed_digits"
NUM_CLASSES = 10
FONT_DIRS = ("/usr/share/fonts",)
FONT_EXTENSIONS = (".ttf", ".otf")
DEBIAN_FONT_PACKAGES = ("fonts-dejavu-core", "fonts-liberation", "fonts-freefont-ttf",
                        "fonts-urw-base35", "fonts-noto-core", "fonts-croscore",
                        "fonts-crosextra-carlito", "fonts-crosextra-caladea")
FONTS_HINT = (f"{INSTALL_HINT} (it runs: apt-get install -y "
              f"{' '.join(DEBIAN_FONT_PACKAGES)})")

DEFAULT_NUM_EXAMPLES = 50_000  # "train"; "test" is a tenth.
TEST_FRACTION = 10
DEFAULT_IMAGE_SIZE = 32
MIN_IMAGE_SIZE = 8  # below this a digit is not legible
RENDERER_VERSION = 1  # bump when the rendering or the cache layout changes

MIN_CONTRAST = 64.0  # luma levels between foreground and background
MIN_RECOGNISED = 6  # digits (of 10) that must match the reference digit shapes
NEAR_DUPLICATE = 0.96  # mean template correlation above which a font is a copy

SPLIT_IDS = {"train": 0, "test": 1}
_LUMA = np.array([0.299, 0.587, 0.114])
_SUPERSAMPLE = 2
_PROBE_EM = 48
_TEMPLATE = 24
_UNASSIGNED = "\u0378"  # never assigned in Unicode: fonts draw their .notdef glyph
_DIGITS = "0123456789"


# ----------------------------------------------------------------------------- fonts


def _open_font(path: str, size: int):
  return ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.BASIC)


def _draw(font, text: str, em: int) -> np.ndarray:
  """``text`` drawn white on black, its baseline origin at ``(em, 2 em)`` of a 3 em square."""
  image = Image.new("L", (3 * em, 3 * em), 0)
  ImageDraw.Draw(image).text((em, 2 * em), text, font=font, fill=255, anchor="ls")
  return np.asarray(image)


def _template(mask: np.ndarray) -> np.ndarray | None:
  """A glyph's ink, padded to a centred square, 24x24, blurred, zero-mean and unit-norm."""
  ys, xs = np.nonzero(mask)
  if ys.size == 0:
    return None
  ink = mask[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
  h, w = ink.shape
  side = max(h, w)
  square = np.zeros((side, side), np.uint8)
  square[(side - h) // 2:(side - h) // 2 + h, (side - w) // 2:(side - w) // 2 + w] = ink
  small = Image.fromarray(square).resize((_TEMPLATE, _TEMPLATE), Image.BILINEAR)
  t = np.asarray(small.filter(ImageFilter.GaussianBlur(0.7)), np.float32).ravel()
  t -= t.mean()
  return t / (np.linalg.norm(t) + 1e-6)


@dataclasses.dataclass(frozen=True)
class _Probe:
  path: str
  family: str
  style: str
  height_per_em: float  # median digit ink height / em size
  templates: np.ndarray | None  # [10, 24*24], None when rejected
  rejected: str | None  # why, or None


def _probe(path: str) -> _Probe:
  """Checks one font file: does it draw ten distinct, real digits (see the module docstring)?"""
  try:
    font = _open_font(path, _PROBE_EM)
    family, style = font.getname()
  except Exception as e:  # pylint: disable=broad-except  (any unreadable font is just skipped)
    return _Probe(path, "", "", 0.0, None, f"cannot be opened ({type(e).__name__}: {e})")
  masks = [_draw(font, d, _PROBE_EM) for d in _DIGITS]
  bad = functools.partial(_Probe, path, family or "", style or "", 0.0, None)
  if any(not m.any() for m in masks):
    return bad("a digit has no ink")
  notdef = _draw(font, _UNASSIGNED, _PROBE_EM)
  if any(np.array_equal(m, notdef) for m in masks):
    return bad("a digit is drawn as the missing-glyph box")
  if len({m.tobytes() for m in masks}) < NUM_CLASSES:
    return bad("two digits are drawn the same")
  templates = np.stack([_template(m) for m in masks])
  heights = [np.ptp(np.nonzero(m.any(axis=1))[0]) + 1 for m in masks]
  return _Probe(path, family or os.path.basename(path), style or "", float(np.median(heights))
                / _PROBE_EM, templates, None)


def _matplotlib_font_dir() -> str | None:
  try:
    import matplotlib  # pylint: disable=import-outside-toplevel
  except ImportError:
    return None
  return os.path.join(matplotlib.get_data_path(), "fonts", "ttf")


@functools.cache
def _reference_templates() -> np.ndarray:
  """[R, 10, 576]: the digits of matplotlib's bundled DejaVu fonts (the shape check's reference)."""
  directory = _matplotlib_font_dir()
  names = sorted(n for n in os.listdir(directory) if n.startswith("DejaVu")
                 and n.endswith(".ttf")) if directory and os.path.isdir(directory) else []
  refs = [p.templates for p in (_probe(os.path.join(directory, n)) for n in names)
          if p.templates is not None]
  if not refs:
    raise DatasetNotFoundError(
        "The printed-digit font check compares digits with matplotlib's bundled DejaVu fonts, "
        f"which were not found (matplotlib font folder: {directory}). Install jgan's "
        "dependencies: pip install -e . (or `bash scripts/install.sh`).")
  return np.stack(refs)


def _candidates(directory: str) -> list[str]:
  """The font files under ``directory``, recursively (linked folders once each), sorted."""
  found, seen = [], set()
  for root, dirs, files in os.walk(directory, followlinks=True):
    real = os.path.realpath(root)
    if real in seen:
      dirs[:] = []
      continue
    seen.add(real)
    found.extend(os.path.join(root, f) for f in files if f.lower().endswith(FONT_EXTENSIONS))
  return sorted(found)


def _style_rank(style: str) -> int:
  s = style.lower()
  if s in ("regular", "book", "roman", "normal", "medium"):
    return 0
  return 1 + ("bold" in s or "demi" in s) + 2 * ("italic" in s or "oblique" in s)


def select_fonts(paths: Sequence[str]) -> list[tuple[str, str]]:
  """The fonts among ``paths`` that draw real, distinct digits, near-copies removed.

  Returns ``[(path, family), ...]`` sorted by path. See the module docstring for the checks.
  """
  probes = [_probe(os.fspath(p)) for p in paths]
  refs = _reference_templates()
  kept: list[_Probe] = []
  for p in sorted((p for p in probes if p.templates is not None),
                  key=lambda p: (len(p.family), p.family, _style_rank(p.style), p.path)):
    sim = np.einsum("dk,rek->dre", p.templates, refs).max(axis=1)  # [digit, reference digit]
    recognised = int((sim.argmax(axis=1) == np.arange(NUM_CLASSES)).sum())
    if recognised < MIN_RECOGNISED:
      logger.debug("Font %s: only %d of 10 digits look like digits; skipped.", p.path, recognised)
      continue
    if kept:
      copies = np.einsum("dk,fdk->f", p.templates, np.stack([k.templates for k in kept]))
      if copies.max() / NUM_CLASSES >= NEAR_DUPLICATE:
        logger.debug("Font %s draws the digits of %s; skipped.", p.path,
                     kept[int(copies.argmax())].path)
        continue
    kept.append(p)
  for p in probes:
    if p.rejected:
      logger.debug("Font %s: %s; skipped.", p.path, p.rejected)
  return sorted((p.path, p.family) for p in kept)


@functools.cache
def _font_table(font_dirs: tuple[str, ...], fallback_dir: str | None
                ) -> tuple[tuple[tuple[str, str], ...], int]:
  """((path, family), ...) of the fonts to use, and the number of candidate files looked at."""
  start = time.perf_counter()
  candidates = [p for d in font_dirs if os.path.isdir(d) for p in _candidates(d)]
  kept = select_fonts(candidates)
  where = ", ".join(font_dirs)
  if not kept and fallback_dir and os.path.isdir(fallback_dir):
    fallback = _candidates(fallback_dir)
    candidates += fallback
    kept = select_fonts(fallback)
    where = f"{fallback_dir} (matplotlib's fonts: nothing usable under {', '.join(font_dirs)})"
  logger.info("Printed digits: %d of %d font files draw the ten digits (%d families), from %s "
              "(%.1fs).", len(kept), len(candidates), len({f for _, f in kept}), where,
              time.perf_counter() - start)
  return tuple(kept), len(candidates)


def _fonts_with_families() -> tuple[tuple[str, str], ...]:
  table, n = _font_table(tuple(FONT_DIRS), _matplotlib_font_dir())
  if not table:
    raise DatasetNotFoundError(
        f"No installed font draws the ten digits 0-9 (looked at {n} .ttf/.otf files under "
        f"{', '.join(FONT_DIRS)} and matplotlib's bundled fonts), so the printed-digit dataset "
        f"cannot be rendered. Install the Debian fonts with: {FONTS_HINT}.")
  return table


def find_fonts() -> list[str]:
  """The font files the digits are rendered with, sorted (see the module docstring).

  Raises:
    DatasetNotFoundError: no font draws the digits; the message says how to install some.
  """
  return [path for path, _ in _fonts_with_families()]


def _display_path(path: str) -> str:
  for root in (*FONT_DIRS, _matplotlib_font_dir()):
    if root and os.path.commonpath([os.path.abspath(path), os.path.abspath(root)]) == \
        os.path.abspath(root):
      prefix = "matplotlib:" if root == _matplotlib_font_dir() else ""
      return prefix + os.path.relpath(path, root)
  return os.path.abspath(path)


def font_fingerprint(fonts: Sequence[str] | None = None) -> str:
  """A 10-hex-digit digest of a font list (relative paths and file sizes): keys the cache."""
  fonts = find_fonts() if fonts is None else list(fonts)
  key = json.dumps(sorted((_display_path(p), os.path.getsize(p)) for p in fonts))
  return hashlib.sha1(key.encode()).hexdigest()[:10]


# ----------------------------------------------------------------------------- glyphs


@dataclasses.dataclass(frozen=True)
class _Glyph:
  mask: np.ndarray  # [h, w] uint8 ink
  left: int  # ink's left edge relative to the pen position
  top: int  # ink's top edge relative to the baseline (negative: above)
  advance: float  # pen advance


@dataclasses.dataclass(frozen=True)
class _FontGlyphs:
  glyphs: tuple[_Glyph, ...]  # one per digit
  height: float  # median digit ink height (px)


@functools.lru_cache(maxsize=1024)
def _glyphs(path: str, height: int) -> _FontGlyphs:
  """The ten digits of a font rasterised with their ink about ``height`` pixels tall."""
  per_em = _probe(path).height_per_em or 0.7
  em = max(8, int(round(height / per_em)))
  font = _open_font(path, em)
  glyphs, heights = [], []
  for d in _DIGITS:
    canvas = _draw(font, d, em)
    ys, xs = np.nonzero(canvas)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    glyphs.append(_Glyph(np.ascontiguousarray(canvas[y0:y1, x0:x1]), int(x0) - em,
                         int(y0) - 2 * em, float(font.getlength(d))))
    heights.append(y1 - y0)
  return _FontGlyphs(tuple(glyphs), float(np.median(heights)))


@dataclasses.dataclass(frozen=True)
class _FontSet:
  paths: tuple[str, ...]
  cumulative: np.ndarray  # [F] cumulative sampling probabilities (uniform over family groups)


def family_group(family: str) -> str:
  """The first two words of a family name: Noto's per-script families count as Noto Sans/Serif."""
  return " ".join(family.split()[:2])


@functools.lru_cache(maxsize=8)
def _font_set(table: tuple[tuple[str, str], ...]) -> _FontSet:
  groups: dict[str, int] = {}
  for _, family in table:
    groups[family_group(family)] = groups.get(family_group(family), 0) + 1
  weights = np.array([1.0 / groups[family_group(f)] for _, f in table]) / len(groups)
  cumulative = np.cumsum(weights)
  cumulative[-1] = 1.0
  return _FontSet(tuple(p for p, _ in table), cumulative)


def _resolve_fonts(fonts: Sequence[str] | None) -> _FontSet:
  if fonts is None:
    return _font_set(_fonts_with_families())
  fonts = tuple(os.fspath(f) for f in fonts)
  if not fonts:
    raise ValueError("fonts is empty; pass None to use find_fonts().")
  table = []
  for path in fonts:
    probe = _probe(path)
    if probe.rejected:
      raise ValueError(f"Font {path} cannot draw the digits: {probe.rejected}.")
    table.append((path, probe.family))
  return _font_set(tuple(table))


# ----------------------------------------------------------------------------- rendering


def renderer_tag() -> str:
  """The renderer version and the library versions its pixels depend on (keys the cache)."""
  return (f"r{RENDERER_VERSION}-pillow{PIL.__version__}-freetype{features.version('freetype2')}"
          f"-numpy{np.__version__}")


def _check_args(split: str, image_size: int, seed: int) -> None:
  if split not in SPLITS:
    raise ValueError(f"Unknown split {split!r}; allowed: {', '.join(map(repr, SPLITS))}.")
  if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) \
      or image_size < MIN_IMAGE_SIZE:
    raise ValueError(f"printed_digits: image_size must be an integer >= {MIN_IMAGE_SIZE} "
                     f"(pixels; 0 through load_dataset means {DEFAULT_IMAGE_SIZE}), got "
                     f"{image_size!r}.")
  if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
    raise ValueError(f"printed_digits: seed must be an integer >= 0, got {seed!r}.")


def digit_labels(num: int, *, seed: int, split: str, start: int = 0) -> np.ndarray:
  """Labels of examples ``start .. start + num - 1``: int32, balanced within each block of ten."""
  _check_args(split, DEFAULT_IMAGE_SIZE, seed)
  if num < 0 or start < 0:
    raise ValueError(f"num and start must be >= 0, got {num} and {start}.")
  sid = SPLIT_IDS[split]
  out = np.empty(num, np.int32)
  for block in range(start // 10, (start + num + 9) // 10):
    perm = np.random.default_rng([int(seed), sid, 1, block]).permutation(NUM_CLASSES)
    lo, hi = max(start, 10 * block), min(start + num, 10 * block + 10)
    out[lo - start:hi - start] = perm[lo - 10 * block:hi - 10 * block]
  return out


def _colour(rng: np.random.Generator, luma: float) -> np.ndarray:
  """An RGB colour of the given luma, from grey to as saturated as the luma allows."""
  r, g, b = rng.uniform(0.0, 255.0, 3).tolist()
  grey = 0.299 * r + 0.587 * g + 0.114 * b
  chroma = (r - grey, g - grey, b - grey)  # zero luma
  saturation = rng.uniform() ** 0.7
  for c in chroma:  # as saturated as fits in [0, 255] at this luma
    if c > 1e-6:
      saturation = min(saturation, (255.0 - luma) / c)
    elif c < -1e-6:
      saturation = min(saturation, luma / -c)
  return np.array([luma + saturation * c for c in chroma])


def _lumas(rng: np.random.Generator) -> tuple[float, float]:
  """(foreground, background) lumas >= MIN_CONTRAST apart; either is the lighter half the time."""
  bg = rng.uniform(0.0, 255.0)
  lighter = rng.uniform() < 0.5
  if bg + MIN_CONTRAST > 255.0:
    lighter = False
  elif bg - MIN_CONTRAST < 0.0:
    lighter = True
  fg = rng.uniform(bg + MIN_CONTRAST, 255.0) if lighter else rng.uniform(0.0, bg - MIN_CONTRAST)
  return fg, bg


@functools.lru_cache(maxsize=16)
def _upsampler(size: int, cells: int) -> np.ndarray:
  """[size, cells] bilinear interpolation weights from a coarse grid to ``size`` pixels."""
  pos = (np.arange(size) + 0.5) / size * (cells - 1)
  lo = np.clip(np.floor(pos).astype(int), 0, cells - 2)
  frac = pos - lo
  weights = np.zeros((size, cells))
  weights[np.arange(size), lo] = 1 - frac
  weights[np.arange(size), lo + 1] = frac
  return weights


def _background(rng, fg_luma: float, bg: np.ndarray, size: int) -> np.ndarray:
  """[S, S, 3] float background: plain, a gradient or a smooth texture, keeping the contrast."""
  kind = rng.uniform()
  bg_luma = float(bg @ _LUMA)
  if kind < 0.45:
    return np.broadcast_to(bg.astype(np.float32), (size, size, 3)).copy()
  if kind < 0.75:  # a gradient towards a second colour as far from the foreground
    if fg_luma > bg_luma:
      other = _colour(rng, rng.uniform(0.0, fg_luma - MIN_CONTRAST))
    else:
      other = _colour(rng, rng.uniform(fg_luma + MIN_CONTRAST, 255.0))
    angle = rng.uniform(0, 2 * np.pi)
    t = (np.arange(size, dtype=np.float32) + 0.5) / size - 0.5
    ramp = np.clip(t[None, :] * np.cos(angle) + t[:, None] * np.sin(angle) + 0.5, 0, 1)
    return bg.astype(np.float32) + ramp[..., None] * (other - bg).astype(np.float32)
  cells = int(rng.integers(3, 7))
  amp = rng.uniform(0.1, 0.35) * abs(fg_luma - bg_luma)
  up = _upsampler(size, cells)
  channels = 3 if rng.uniform() < 0.5 else 1
  grid = rng.normal(0.0, amp, (channels, cells, cells))
  field = (up @ grid @ up.T).transpose(1, 2, 0)  # [S, S, channels]
  return (bg + field).astype(np.float32)


def _layout(rng, font: _FontGlyphs, label: int) -> tuple[np.ndarray, float, float]:
  """The centre digit and its neighbours on one baseline: (ink [h, w], centre x, centre y)."""
  track = rng.uniform(0.95, 1.4)
  glyphs = font.glyphs
  items = [(0.0, glyphs[label])]
  if rng.uniform() < 0.6:
    g = glyphs[int(rng.integers(10))]
    items.append((-g.advance * track, g))
  if rng.uniform() < 0.6:
    items.append((glyphs[label].advance * track, glyphs[int(rng.integers(10))]))
  x0 = min(int(math.floor(x)) + g.left for x, g in items)
  x1 = max(int(math.floor(x)) + g.left + g.mask.shape[1] for x, g in items)
  y0 = min(g.top for _, g in items)
  y1 = max(g.top + g.mask.shape[0] for _, g in items)
  strip = np.zeros((y1 - y0, x1 - x0), np.uint8)
  for x, g in items:
    left, top = int(math.floor(x)) + g.left - x0, g.top - y0
    h, w = g.mask.shape
    np.maximum(strip[top:top + h, left:left + w], g.mask, out=strip[top:top + h, left:left + w])
  centre = glyphs[label]
  cx = centre.left - x0 + centre.mask.shape[1] / 2
  cy = centre.top - y0 + centre.mask.shape[0] / 2
  return strip, cx, cy


def _ink(rng, fontset: _FontSet, label: int, size: int) -> np.ndarray:
  """The digit coverage [S, S] in [0, 1]: laid out, warped at 2x, box-downsampled."""
  canvas = size * _SUPERSAMPLE
  pick = int(np.searchsorted(fontset.cumulative, rng.uniform(), side="right"))
  path = fontset.paths[min(pick, len(fontset.paths) - 1)]
  font = _glyphs(path, int(math.ceil(0.9 * canvas)))
  strip, cx, cy = _layout(rng, font, label)
  scale = rng.uniform(0.5, 0.9) * canvas / font.height
  stretch = rng.uniform(0.85, 1.15)
  angle = np.deg2rad(np.clip(rng.normal(0.0, 6.0), -15.0, 15.0))
  shear = rng.uniform(-0.2, 0.2)
  tx = canvas / 2 + rng.uniform(-0.07, 0.07) * canvas
  ty = canvas / 2 + rng.uniform(-0.05, 0.05) * canvas
  c, s = math.cos(angle), math.sin(angle)
  forward = np.array([[c, -s], [s, c]]) @ np.array([[1.0, shear], [0.0, 1.0]]) @ np.diag(
      [scale * stretch, scale])
  inv = np.linalg.inv(forward)
  off = np.array([cx, cy]) - inv @ np.array([tx, ty])
  warped = Image.fromarray(strip).transform(
      (canvas, canvas), Image.AFFINE, (inv[0, 0], inv[0, 1], off[0], inv[1, 0], inv[1, 1], off[1]),
      resample=Image.BILINEAR)
  return np.asarray(warped.reduce(_SUPERSAMPLE), np.float32) / 255.0


def _render(index: int, seed: int, split_id: int, label: int, size: int,
            fontset: _FontSet) -> np.ndarray:
  rng = np.random.default_rng([seed, split_id, 0, index])
  ink = _ink(rng, fontset, label, size)[..., None]
  fg_luma, bg_luma = _lumas(rng)
  fg, bg = _colour(rng, fg_luma), _colour(rng, bg_luma)
  image = _background(rng, fg_luma, bg, size)
  if rng.uniform() < 0.2:  # the edge of the number plate, in another colour
    depth = max(1, int(round(rng.uniform(0.02, 0.15) * size)))
    band = (slice(None, depth), slice(-depth, None))[int(rng.integers(2))]
    if rng.uniform() < 0.5:
      image[band] = _colour(rng, rng.uniform(0.0, 255.0))  # top or bottom
    else:
      image[:, band] = _colour(rng, rng.uniform(0.0, 255.0))  # left or right
  if rng.uniform() < 0.15:  # a drop shadow, 1-2 px away diagonally
    dy, dx = (int(v) for v in rng.integers(1, 3, size=2) * rng.choice([-1, 1], size=2))
    shadow = np.zeros_like(ink)
    shadow[max(dy, 0):size + min(dy, 0), max(dx, 0):size + min(dx, 0)] = \
        ink[max(-dy, 0):size + min(-dy, 0), max(-dx, 0):size + min(-dx, 0)]
    image += shadow * (bg * rng.uniform(0.3, 0.7) - image)
  image += ink * (fg - image)
  pil = Image.fromarray(np.clip(np.rint(image), 0, 255).astype(np.uint8), "RGB")
  if rng.uniform() < 0.25:  # lost resolution
    small = max(4, int(round(size * rng.uniform(0.5, 0.8))))
    pil = pil.resize((small, small), Image.BILINEAR).resize((size, size), Image.BILINEAR)
  if rng.uniform() < 0.8:
    pil = pil.filter(ImageFilter.GaussianBlur(rng.uniform(0.2, 1.1)))
  if rng.uniform() < 0.3:
    buffer = io.BytesIO()
    pil.save(buffer, format="JPEG", quality=int(rng.integers(25, 76)))
    buffer.seek(0)
    pil = Image.open(buffer).convert("RGB")
  out = np.asarray(pil, np.float32)
  sigma = rng.uniform(0.0, 7.0)
  out = out + rng.normal(0.0, sigma, out.shape).astype(np.float32)
  return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def render_digit(index: int, *, seed: int, split: str, image_size: int = DEFAULT_IMAGE_SIZE,
                 fonts: Sequence[str] | None = None) -> tuple[np.ndarray, int]:
  """Example ``index`` of a split: (uint8 RGB ``[S, S, 3]``, its digit label).

  A pure function of ``(seed, split, index)`` (and the font list): equal to
  ``render_digits(n, ...)[k][index]`` for any ``n > index``.
  """
  _check_args(split, image_size, seed)
  if index < 0:
    raise ValueError(f"index must be >= 0, got {index}.")
  label = int(digit_labels(1, seed=seed, split=split, start=index)[0])
  return _render(int(index), int(seed), SPLIT_IDS[split], label, int(image_size),
                 _resolve_fonts(fonts)), label


def render_digits(num: int, *, seed: int, split: str, image_size: int = DEFAULT_IMAGE_SIZE,
                  fonts: Sequence[str] | None = None,
                  start: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """Examples ``start .. start + num - 1`` of a split: (uint8 ``[N, S, S, 3]``, int32 ``[N]``).

  Args:
    num: how many.
    seed: integer >= 0.
    split: ``"train"`` or ``"test"`` (disjoint random streams).
    image_size: S >= 8.
    fonts: font files to draw from (None: :func:`find_fonts`); each must draw the digits.
    start: the index of the first example.
  """
  _check_args(split, image_size, seed)
  if isinstance(num, bool) or not isinstance(num, (int, np.integer)) or num < 0:
    raise ValueError(f"num must be an integer >= 0, got {num!r}.")
  fontset = _resolve_fonts(fonts)
  labels = digit_labels(num, seed=seed, split=split, start=start)
  images = np.empty((num, image_size, image_size, 3), np.uint8)
  sid = SPLIT_IDS[split]
  begin = last = time.perf_counter()
  for k in range(num):
    images[k] = _render(start + k, int(seed), sid, int(labels[k]), int(image_size), fontset)
    now = time.perf_counter()
    if now - last > 10.0:
      last = now
      logger.info("Printed digits: %d/%d rendered (%.0f/s).", k + 1, num,
                  (k + 1) / (now - begin))
  return images, labels


# ----------------------------------------------------------------------------- cache and load


def split_size(split: str, num_examples: int) -> int:
  """``num_examples`` for ``"train"``, ``max(1, num_examples // 10)`` for ``"test"``."""
  return int(num_examples) if split == "train" else max(1, int(num_examples) // TEST_FRACTION)


def _check_num_examples(num_examples) -> int:
  if isinstance(num_examples, bool) or not isinstance(num_examples, (int, np.integer)) \
      or num_examples < 0:
    raise ValueError(f"printed_digits: num_examples must be an integer >= 0 (0: the default, "
                     f"{DEFAULT_NUM_EXAMPLES:,}), got {num_examples!r}.")
  return int(num_examples) or DEFAULT_NUM_EXAMPLES


def cache_path(split: str, *, num_examples: int = 0, image_size: int = DEFAULT_IMAGE_SIZE,
               seed: int = 0) -> str:
  """Where :func:`load` caches this split (same arguments)."""
  _check_args(split, image_size, seed)
  n = _check_num_examples(num_examples)
  digest = hashlib.sha1(renderer_tag().encode()).hexdigest()[:8]
  name = (f"{split}-n{split_size(split, n)}-{image_size}px-seed{seed}-fonts{font_fingerprint()}"
          f"-r{RENDERER_VERSION}-{digest}.npz")
  return os.path.join(data_root(), NAME, name)


def _write_cache(path: str, images: np.ndarray, labels: np.ndarray, meta: dict) -> None:
  directory = os.path.dirname(path)
  tmp = None
  try:
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=directory)
    with os.fdopen(fd, "wb") as f:
      np.savez(f, images=images, labels=labels, meta=np.asarray(json.dumps(meta)))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes private files
    os.replace(tmp, path)
  except OSError as e:
    logger.warning("Could not write the printed-digit cache %s (%s); it will be rendered again "
                   "next time.", path, e)
    if tmp is not None and os.path.exists(tmp):
      os.remove(tmp)


def _read_cache(path: str, n: int, image_size: int) -> tuple[np.ndarray, np.ndarray]:
  try:
    with np.load(path, allow_pickle=False) as z:
      images, labels = z["images"], z["labels"]
      json.loads(str(z["meta"]))
    if images.dtype != np.uint8 or images.shape != (n, image_size, image_size, 3):
      raise ValueError(f"images are {images.dtype} {images.shape}, expected uint8 "
                       f"{(n, image_size, image_size, 3)}")
    if labels.dtype != np.int32 or labels.shape != (n,) or \
        (n and (labels.min() < 0 or labels.max() >= NUM_CLASSES)):
      raise ValueError(f"labels are {labels.dtype} {labels.shape}, expected int32 ({n},) in "
                       "0..9")
  except (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as e:
    raise CorruptDatasetError(
        f"Corrupt printed-digit cache file {path} ({type(e).__name__}: {e}). Delete it "
        f"(rm '{path}') and load again: it is rendered afresh from the fonts.") from e
  return images, labels


def load(split: str, *, num_examples: int = 0, image_size: int = DEFAULT_IMAGE_SIZE,
         seed: int = 0) -> ArrayDataset:
  """A split of printed digits, rendered once and then read from the disk cache.

  Args:
    split: ``"train"`` (``num_examples`` images) or ``"test"`` (``max(1, num_examples // 10)``).
    num_examples: the size of ``"train"``; 0: :data:`DEFAULT_NUM_EXAMPLES` (50,000; so
      ``"test"`` has 5,000).
    image_size: S >= 8; the images are ``[N, S, S, 3]`` uint8 RGB.
    seed: integer >= 0; example ``i`` is a pure function of ``(seed, split, i)``.

  Returns:
    An :class:`ArrayDataset` named ``"printed_digits"``, 10 classes, int32 labels (the digit).

  Raises:
    DatasetNotFoundError: no installed font draws the digits (``bash scripts/install_data.sh``).
    CorruptDatasetError: the cache file exists but cannot be read; delete it.
    ValueError: a bad split, size, number or seed.
  """
  _check_args(split, image_size, seed)
  n = split_size(split, _check_num_examples(num_examples))
  start = time.perf_counter()
  fonts = find_fonts()
  path = cache_path(split, num_examples=num_examples, image_size=image_size, seed=seed)
  from_cache = os.path.exists(path)
  if from_cache:
    images, labels = _read_cache(path, n, image_size)
  else:
    logger.info("Rendering %d printed digits (%s, %dx%d, seed %d) with %d fonts...", n, split,
                image_size, image_size, seed, len(fonts))
    images, labels = render_digits(n, seed=seed, split=split, image_size=image_size)
    meta = {"split": split, "num_examples": n, "image_size": image_size, "seed": seed,
            "renderer": renderer_tag(), "fonts": [_display_path(p) for p in fonts]}
    _write_cache(path, images, labels, meta)
  families = len({f for _, f in _fonts_with_families()})
  source = (f"rendered printed digits ({len(fonts)} fonts in {families} families; seed={seed}, "
            f"{split}, {n} images {image_size}x{image_size}; "
            f"{'cached' if from_cache else 'rendered, cached'} at {path})")
  logger.info("Loaded printed_digits/%s in %.2fs: %s.", split, time.perf_counter() - start,
              source)
  return ArrayDataset(images=images, labels=labels, num_classes=NUM_CLASSES, name=NAME,
                      source=source)


def _main(argv: Sequence[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description="Render printed digits: speed and a sample grid.")
  parser.add_argument("--num", type=int, default=5000, help="images to time")
  parser.add_argument("--image_size", type=int, default=DEFAULT_IMAGE_SIZE)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--grid", default=None, help="write a 10x10 grid of the first 100 here")
  args = parser.parse_args(argv)
  start = time.perf_counter()
  table = _fonts_with_families()
  for path, _ in table:  # rasterise every font's digits once, outside the timing
    _glyphs(path, int(math.ceil(0.9 * args.image_size * _SUPERSAMPLE)))
  groups = sorted({family_group(f) for _, f in table})
  print(f"{len(table)} fonts in {len({f for _, f in table})} families, {len(groups)} family "
        f"groups (fingerprint {font_fingerprint()}); font scan and glyphs "
        f"{time.perf_counter() - start:.2f}s\ngroups: {', '.join(groups)}")
  start = time.perf_counter()
  images, _ = render_digits(args.num, seed=args.seed, split="train", image_size=args.image_size)
  seconds = time.perf_counter() - start
  print(f"{args.num} images {args.image_size}x{args.image_size} in {seconds:.2f}s: "
        f"{args.num / seconds:.0f} images/s")
  if args.grid:
    from jgan import imaging  # pylint: disable=import-outside-toplevel
    imaging.save_grid(args.grid, images[:100].astype(np.float32) / 127.5 - 1.0, ncols=10)
    print(f"wrote {args.grid}")


if __name__ == "__main__":
  _main()
