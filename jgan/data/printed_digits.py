"""Printed digits rendered offline from installed fonts: a seeded, labelled stand-in for SVHN.

The source domain of the Domain Transfer Network (digits -> MNIST) is SVHN, which cannot be
installed offline. This module renders street-number-like crops instead:

    ds = load("train", num_examples=50_000)             # ArrayDataset: uint8 [N, 32, 32, 3]
    ds = load_dataset("printed_digits", split="test")   # the same through jgan.data's table
    images, labels = render_digits(100, seed=0, split="train")   # no cache, no disk
    images, labels, style = render_digits(100, seed=0, split="test", styles="heldout",
                                          return_styles=True)  # unseen fonts and layouts
    ds = load("train", styles="seen"); style = load_styles("train", styles="seen")
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
uniformly among those its ``styles`` allows (:func:`family_group`, the first two words of the
family name: Noto's per-script families count as "Noto Sans" or "Noto Serif", Liberation Sans
Narrow as "Liberation Sans"; 22 groups here), then one of the group's kept fonts uniformly.
DejaVu Sans' nine kept styles (Book, Bold, Oblique, ExtraLight, Condensed...) together are drawn
as often as Z003's single one; no style is capped or dropped, they share their group's weight.

One example (:func:`render_digit`): example ``i`` of a split is a pure function of
``(seed, split, styles, i)``: its generator is ``np.random.default_rng([seed, split_id, stream,
i])`` with ``stream`` 0 for ``styles="all"``, 3 for ``"seen"`` and 4 for ``"heldout"`` (1 is the
labels'), so ``"train"`` and ``"test"``, and the three style streams, are disjoint and any prefix
of a split is reproducible. Labels are exactly balanced per block of ten, the same for every
``styles``: label ``i`` is ``perm_b[i % 10]`` with ``perm_b = default_rng([seed, split_id, 1,
i // 10]).permutation(10)`` (every prefix is within one of balanced).

Domain randomisation (renderer version 2). A classifier trained on version 1's narrower
variation fell from 98.9% to 70.4% on house numbers drawn by an independent renderer (other
fonts, sizes, crops, neighbours, colours), so each example now draws, from its own generator:

* a font (above) and a *layout*: digit height (of the font's digits) 40-90% of the crop and
  neighbour track 0.9-1.6 advances, uniform over the allowed part of that rectangle (see the
  style split); width x0.7-1.3 (on top of the fonts' own widths and weights); rotation
  ~N(0, 6) degrees clipped to +-15; shear +-0.25; centre offset +-7% (x), +-5% (y);
* partial neighbouring digits on the left and the right (each with probability 0.65, random
  digits in the same font and colour, at the track above: below 1 they touch), cut by the crop;
* a warp: affine only (50%), a perspective keystone (25%: one side 5-15% shorter, the other
  axis up to 6%; PIL ``PERSPECTIVE``) or elastic (25%: a 4x4 grid of Gaussian offsets, sigma
  2-4.5% of the size, upsampled bilinearly, applied by bilinear resampling of the ink);
* a decoration: plain fill (45%), an outline (20%: a 1-1.5 px ring alone, or a ring of a colour
  >= :data:`MIN_CONTRAST` from the fill's around it), a drop shadow (20%: 0.5-3 px away
  diagonally, a darker shade of the background) or a 3-D extrusion (15%: the glyph repeated
  1-4 px along a diagonal behind the fill, 30-60% darker or lighter than it);
* foreground and background colours with a luma (BT.601) difference of at least
  :data:`MIN_CONTRAST` levels, dark-on-light and light-on-dark equally often, saturation from
  grey to vivid; a background plain (35%), a two-colour gradient (25%), a smooth noisy texture
  (20%) or photo-like (20%: 2-5 soft-edged rectangles and ellipses of other colours, brick
  courses 35% of the time, and grain at three scales); every background pixel keeps
  :data:`MIN_CONTRAST` from the foreground (pixels that drift closer are mixed back towards the
  plain colour); a plate edge of another colour along one side (20%);
* camera effects: colour jitter (50%: per-channel gain 0.85-1.15 and offset +-15 levels), loss
  of resolution (25%: down to 45-80% and back), Gaussian blur (80%, sigma 0.2-1.2 px), JPEG
  compression (30%, quality 20-75), additive Gaussian noise (sigma 0-8 levels).

Glyphs are rasterised once per font by FreeType (Pillow) at twice the output size, laid out and
warped at 2x (bilinear), decorated at 2x (so 1 px rings and offsets stay sharp), then
box-downsampled to the output size and composited.

Style table (``render_digits(..., return_styles=True)``, :func:`load_styles`): per example,
:data:`STYLE_KEYS`: ``font`` (index into the font list, :func:`find_fonts` by default),
``group`` (index into :func:`font_groups`, the sorted family groups), ``height`` (fraction of
the crop, float32), ``spacing`` (neighbour track in advances, float32; drawn even when there is
no neighbour), ``neighbours`` (0-2), ``warp`` (:data:`WARPS`: 0 affine, 1 perspective, 2
elastic), ``decoration`` (:data:`DECORATIONS`: 0 fill, 1 outline, 2 shadow, 3 extrusion),
``background`` (:data:`BACKGROUNDS`: 0 plain, 1 gradient, 2 texture, 3 photo), ``polarity`` (1
if the digit is lighter than the background) and ``layout_cell`` (``3 * height band + spacing
band``, bands :data:`HEIGHT_BANDS` [0.40, 0.55), [0.55, 0.75), [0.75, 0.90] and
:data:`SPACING_BANDS` [0.9, 1.15), [1.15, 1.35), [1.35, 1.6]); int32 unless said.

Style split (``styles``, :data:`STYLE_SPLITS`). Accuracy on more digits like the training ones
says little about SVHN, whose fonts and layouts a renderer never saw. ``styles="heldout"`` is an
honest stand-in for that: fonts and layouts that ``styles="seen"`` never draws.

* Held-out font groups (:func:`heldout_groups`): every 4th of the sorted family-group names,
  starting at the second (index 1). A rule, not a list, so it is fixed and deterministic for
  any font set; with the eight Debian packages (22 groups) it holds out C059, DejaVu Sans,
  FreeSerif, Noto Sans, Standard Symbols and Z003 (serif, sans, script and a many-styled family).
* Held-out layout cells (:data:`HELDOUT_LAYOUT_CELLS`): cell 2 (small digits, 40-55%, widely
  spaced, 1.35-1.6 advances) and cell 6 (large digits, 75-90%, tightly set, 0.9-1.15): the two
  corners of the layout square, so a model must extrapolate in both directions.
* ``"seen"``: fonts of the other groups and the other seven cells; ``"heldout"``: only the
  held-out groups and cells; ``"all"``: everything (the default, as before). Within the allowed
  set the group is drawn uniformly, then a font of it; the cell by its area, then height and
  spacing uniformly inside it (no rejection). Warps, decorations, backgrounds and colours are
  drawn the same way in every stream: the split is about fonts and layouts only.
* A style split needs a font group on each side: with fewer than two groups (a single font
  passed in) ``"seen"`` and ``"heldout"`` raise ``ValueError`` naming the groups found.
  matplotlib's fallback fonts give 9 groups (DejaVu Serif and cmr10 held out).

Speed: 950-1,050 images/s at 32x32 in one process (one core; version 1: 1,300-1,800), measured
on the 2-core machine while two training jobs kept both cores busy (load 2.2-3.6), with
``python -m jgan.data.printed_digits --num 3000`` (it also prints the fonts, the held-out groups
and how often each warp, decoration and background occurred; the font scan and glyph
rasterisation, 1.2-2.5 s once per process, are not timed). At that rate the default 50,000
training images render in 50-55 s, once; reading them back from the cache (154 MB) 0.5 s.

Sizes and cache: ``"train"`` has ``num_examples`` images (default :data:`DEFAULT_NUM_EXAMPLES`,
50,000), ``"test"`` ``max(1, num_examples // 10)`` (5,000), as for :mod:`jgan.data.avatars`, so
one ``num_examples`` in a config sizes both splits. The arrays (images, labels and the style
table as ``style_<key>``) are cached as an uncompressed ``.npz`` under
``data_root()/printed_digits/`` (``$JGAN_DATA_DIR``, default ``~/.cache/jgan``), keyed by split,
number, size, seed, ``styles`` (``-styles-seen``/``-styles-heldout``; nothing for ``"all"``), a
fingerprint of the font list (relative paths and file sizes) and :func:`renderer_tag`
(:data:`RENDERER_VERSION` and the Pillow, FreeType and numpy versions); written atomically
(temporary file, then ``os.replace``; an unwritable directory only costs a warning). A cache
file that cannot be read (or lacks the style table) raises :class:`CorruptDatasetError` naming
it: delete it and load again to render it afresh (it is never silently replaced).

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
RENDERER_VERSION = 2  # bump when the rendering or the cache layout changes

MIN_CONTRAST = 64.0  # luma levels between foreground and background
MIN_RECOGNISED = 6  # digits (of 10) that must match the reference digit shapes
NEAR_DUPLICATE = 0.96  # mean template correlation above which a font is a copy

SPLIT_IDS = {"train": 0, "test": 1}

# The style split (see the module docstring). A layout cell is 3 * height band + spacing band.
STYLE_SPLITS = ("all", "seen", "heldout")
HEIGHT_BANDS = ((0.40, 0.55), (0.55, 0.75), (0.75, 0.90))  # digit height / crop height
SPACING_BANDS = ((0.90, 1.15), (1.15, 1.35), (1.35, 1.60))  # neighbour track, in advances
HELDOUT_LAYOUT_CELLS = frozenset({2, 6})  # small and widely spaced; large and tightly set
WARPS = ("affine", "perspective", "elastic")
DECORATIONS = ("fill", "outline", "shadow", "extrusion")
BACKGROUNDS = ("plain", "gradient", "texture", "photo")
STYLE_KEYS = ("font", "group", "height", "spacing", "neighbours", "warp", "decoration",
              "background", "polarity", "layout_cell")
_FLOAT_STYLES = ("height", "spacing")


def _cell_sampler(cells: Sequence[int]) -> tuple[tuple[int, ...], np.ndarray]:
  """The cells and their cumulative probabilities, proportional to their area.

  Drawing a cell by area and then a point uniformly inside it is drawing uniformly over the
  allowed part of the (height, spacing) rectangle, with no rejection.
  """
  cells = tuple(sorted(cells))
  area = np.array([np.ptp(HEIGHT_BANDS[c // 3]) * np.ptp(SPACING_BANDS[c % 3]) for c in cells])
  cumulative = np.cumsum(area / area.sum())
  cumulative[-1] = 1.0
  return cells, cumulative


_LAYOUT_CELLS = {
    "all": _cell_sampler(range(9)),
    "seen": _cell_sampler(set(range(9)) - HELDOUT_LAYOUT_CELLS),
    "heldout": _cell_sampler(HELDOUT_LAYOUT_CELLS),
}
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
  groups: tuple[str, ...]  # the sorted family-group names
  members: tuple[tuple[int, ...], ...]  # per group, the indices of its fonts in ``paths``
  allowed: dict[str, tuple[int, ...]]  # styles value -> the groups it may draw (indices)


def family_group(family: str) -> str:
  """The first two words of a family name: Noto's per-script families count as Noto Sans/Serif."""
  return " ".join(family.split()[:2])


def heldout_groups(groups: Sequence[str]) -> frozenset[str]:
  """The family groups held out by ``styles="heldout"``: every 4th sorted name from index 1.

  A fixed rule rather than a list of names, so it applies to any installed font set; with the 22
  groups of the eight Debian packages it holds out C059, DejaVu Sans, FreeSerif, Noto Sans,
  Standard Symbols and Z003 (serif, sans, a script face and the many-styled Noto Sans).
  """
  return frozenset(sorted(set(groups))[1::4])


@functools.lru_cache(maxsize=8)
def _font_set(table: tuple[tuple[str, str], ...]) -> _FontSet:
  groups = tuple(sorted({family_group(f) for _, f in table}))
  members = tuple(tuple(k for k, (_, f) in enumerate(table) if family_group(f) == g)
                  for g in groups)
  held = heldout_groups(groups)
  allowed = {"all": tuple(range(len(groups))),
             "seen": tuple(k for k, g in enumerate(groups) if g not in held),
             "heldout": tuple(k for k, g in enumerate(groups) if g in held)}
  return _FontSet(tuple(p for p, _ in table), groups, members, allowed)


def _resolve_fonts(fonts: Sequence[str] | None, styles: str = "all") -> _FontSet:
  if fonts is None:
    fontset = _font_set(_fonts_with_families())
  else:
    fonts = tuple(os.fspath(f) for f in fonts)
    if not fonts:
      raise ValueError("fonts is empty; pass None to use find_fonts().")
    table = []
    for path in fonts:
      probe = _probe(path)
      if probe.rejected:
        raise ValueError(f"Font {path} cannot draw the digits: {probe.rejected}.")
      table.append((path, probe.family))
    fontset = _font_set(tuple(table))
  if styles != "all" and not (fontset.allowed["seen"] and fontset.allowed["heldout"]):
    raise ValueError(
        f"styles={styles!r}: the style split needs at least one font group on each side (held "
        f"out: every 4th sorted group from the second, see heldout_groups), but the fonts form "
        f"{len(fontset.groups)} group(s): {', '.join(fontset.groups)}. Use styles='all', or "
        f"install more fonts ({FONTS_HINT}).")
  return fontset


def font_groups(fonts: Sequence[str] | None = None) -> list[str]:
  """The sorted family-group names of a font list (None: :func:`find_fonts`).

  The style table's ``group`` column indexes this list.
  """
  return list(_resolve_fonts(fonts).groups)


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


def _check_styles(styles: str) -> None:
  if styles not in STYLE_SPLITS:
    raise ValueError(f"printed_digits: unknown styles {styles!r}; allowed: "
                     f"{', '.join(map(repr, STYLE_SPLITS))}.")


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


def _smooth_field(rng: np.random.Generator, size: int, cells: int, amp: float,
                  channels: int = 1) -> np.ndarray:
  """[size, size, channels] noise: a coarse ``cells`` x ``cells`` Gaussian grid, upsampled."""
  up = _upsampler(size, cells)
  grid = rng.normal(0.0, amp, (channels, cells, cells))
  return (up @ grid @ up.T).transpose(1, 2, 0)


@functools.lru_cache(maxsize=16)
def _coordinates(size: int) -> np.ndarray:
  """[size] pixel-centre positions in [0, 1]."""
  return ((np.arange(size) + 0.5) / size).astype(np.float32)


def _far_luma(rng: np.random.Generator, fg_luma: float, bg_luma: float) -> float:
  """A luma on the background's side of the foreground, at least MIN_CONTRAST from it."""
  if fg_luma > bg_luma:
    return rng.uniform(0.0, fg_luma - MIN_CONTRAST)
  return rng.uniform(fg_luma + MIN_CONTRAST, 255.0)


def _photo(rng: np.random.Generator, fg_luma: float, bg: np.ndarray, size: int) -> np.ndarray:
  """[S, S, 3] a photo-like surface: soft blobs of paint, sometimes bricks, multi-scale grain."""
  bg_luma = float(bg @ _LUMA)
  image = np.broadcast_to(bg.astype(np.float32), (size, size, 3)).copy()
  t = _coordinates(size)
  for _ in range(int(rng.integers(2, 6))):  # rectangles and ellipses, blurred by a soft edge
    colour = _colour(rng, _far_luma(rng, fg_luma, bg_luma)).astype(np.float32)
    cx, cy = rng.uniform(-0.2, 1.2, 2)
    rx, ry = rng.uniform(0.15, 0.7, 2)
    dx, dy = np.abs(t[None, :] - cx) / rx, np.abs(t[:, None] - cy) / ry
    dist = np.maximum(dx, dy) if rng.uniform() < 0.5 else np.sqrt(dx * dx + dy * dy)
    alpha = np.clip((1.0 - dist) / rng.uniform(0.05, 0.5), 0.0, 1.0) * rng.uniform(0.4, 1.0)
    image += alpha[..., None] * (colour - image)
  if rng.uniform() < 0.35:  # brick courses: mortar lines, every other course staggered
    course = rng.uniform(0.12, 0.3)
    brick = course * rng.uniform(1.8, 3.0)
    mortar = rng.uniform(0.03, 0.07)
    y = t[:, None] + rng.uniform(0, course)
    row = np.floor(y / course)
    x = t[None, :] + rng.uniform(0, brick) + 0.5 * brick * (row % 2)
    edge = np.minimum(np.mod(y, course), np.mod(x, brick))  # distance to the last joint
    alpha = np.clip(1.0 - (edge - mortar) * size, 0.0, 1.0)  # one pixel of antialiasing
    colour = _colour(rng, _far_luma(rng, fg_luma, bg_luma)).astype(np.float32)
    image += alpha[..., None] * (colour - image)
  amp = rng.uniform(3.0, 14.0)
  channels = 3 if rng.uniform() < 0.5 else 1
  for cells, weight in ((4, 1.0), (8, 0.6), (16, 0.35)):  # stains, patches, grain
    image += _smooth_field(rng, size, cells, amp * weight, channels).astype(np.float32)
  return image


def _background(rng: np.random.Generator, fg_luma: float, bg: np.ndarray,
                size: int) -> tuple[np.ndarray, int]:
  """[S, S, 3] float background and its kind (:data:`BACKGROUNDS`), keeping the contrast.

  Every pixel's luma stays at least :data:`MIN_CONTRAST` from the foreground's, on the plain
  background colour's side (pixels that drift too close are pulled back towards that colour).
  """
  u = rng.uniform()
  bg_luma = float(bg @ _LUMA)
  if u < 0.35:
    return np.broadcast_to(bg.astype(np.float32), (size, size, 3)).copy(), 0
  if u < 0.6:  # a gradient towards a second colour as far from the foreground
    other = _colour(rng, _far_luma(rng, fg_luma, bg_luma))
    angle = rng.uniform(0, 2 * np.pi)
    t = _coordinates(size) - 0.5
    ramp = np.clip(t[None, :] * np.cos(angle) + t[:, None] * np.sin(angle) + 0.5, 0, 1)
    return bg.astype(np.float32) + ramp[..., None] * (other - bg).astype(np.float32), 1
  if u < 0.8:
    kind = 2
    amp = rng.uniform(0.1, 0.35) * abs(fg_luma - bg_luma)
    channels = 3 if rng.uniform() < 0.5 else 1
    image = (bg + _smooth_field(rng, size, int(rng.integers(3, 7)), amp, channels)
             ).astype(np.float32)
  else:
    kind = 3
    image = _photo(rng, fg_luma, bg, size)
  # Pull pixels whose luma crossed the contrast limit back towards the plain colour, which keeps
  # it: the mix p + t (bg - p) has luma L + t (L_bg - L), so t is exact and the mix stays in gamut.
  luma = image @ _LUMA.astype(np.float32)
  limit = fg_luma - MIN_CONTRAST if fg_luma > bg_luma else fg_luma + MIN_CONTRAST
  bad = luma > limit if fg_luma > bg_luma else luma < limit
  if bad.any():
    mix = np.where(bad, (limit - luma) / np.where(bad, bg_luma - luma, 1.0), 0.0)
    image += mix[..., None].astype(np.float32) * (bg.astype(np.float32) - image)
  return image, kind


def _layout(rng: np.random.Generator, font: _FontGlyphs, label: int,
            track: float) -> tuple[np.ndarray, float, float, int]:
  """The centre digit and its neighbours on one baseline: (ink [h, w], centre x, y, neighbours).

  Each side gets a random digit with probability 0.65, ``track`` advances away (below 1 the
  digits touch or overlap, as in tightly set plates).
  """
  glyphs = font.glyphs
  items = [(0.0, glyphs[label])]
  if rng.uniform() < 0.65:
    g = glyphs[int(rng.integers(10))]
    items.append((-g.advance * track, g))
  if rng.uniform() < 0.65:
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
  return strip, cx, cy, len(items) - 1


def _homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
  """The 3x3 projective map taking the four points ``src`` [4, 2] to ``dst`` [4, 2]."""
  rows, rhs = [], []
  for (x, y), (u, v) in zip(src, dst):
    rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
    rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    rhs.extend([u, v])
  return np.append(np.linalg.solve(np.array(rows), np.array(rhs)), 1.0).reshape(3, 3)


def _remap(image: np.ndarray, dy: np.ndarray, dx: np.ndarray) -> np.ndarray:
  """``image`` [H, W] sampled bilinearly at (y + dy, x + dx); zero outside."""
  h, w = image.shape
  padded = np.pad(image, 1)  # the zero border is what lies outside
  y = np.clip(np.arange(h, dtype=np.float32)[:, None] + dy + 1, 0, h + 1)
  x = np.clip(np.arange(w, dtype=np.float32)[None, :] + dx + 1, 0, w + 1)
  y0, x0 = np.minimum(y.astype(np.intp), h), np.minimum(x.astype(np.intp), w)
  fy, fx = y - y0, x - x0
  top = padded[y0, x0] + fx * (padded[y0, x0 + 1] - padded[y0, x0])
  bottom = padded[y0 + 1, x0] + fx * (padded[y0 + 1, x0 + 1] - padded[y0 + 1, x0])
  return top + fy * (bottom - top)


def _ink(rng: np.random.Generator, fontset: _FontSet, styles: str, label: int,
         size: int) -> tuple[np.ndarray, dict]:
  """The digit's coverage at 2x ``[2S, 2S]`` in [0, 1], laid out and warped, and its style.

  The font group, then a font of it, and the layout cell, then the height and neighbour spacing
  inside the cell's bands, are drawn among those ``styles`` allows (see the module docstring).
  """
  canvas = size * _SUPERSAMPLE
  allowed = fontset.allowed[styles]
  group = allowed[int(rng.integers(len(allowed)))]
  members = fontset.members[group]
  font_index = members[int(rng.integers(len(members)))]
  cells, cumulative = _LAYOUT_CELLS[styles]
  cell = cells[min(int(np.searchsorted(cumulative, rng.uniform(), side="right")),
                   len(cells) - 1)]
  height = rng.uniform(*HEIGHT_BANDS[cell // 3])
  track = rng.uniform(*SPACING_BANDS[cell % 3])
  font = _glyphs(fontset.paths[font_index], int(math.ceil(0.9 * canvas)))
  strip, cx, cy, neighbours = _layout(rng, font, label, track)
  scale = height * canvas / font.height
  stretch = rng.uniform(0.7, 1.3)
  angle = np.deg2rad(np.clip(rng.normal(0.0, 6.0), -15.0, 15.0))
  shear = rng.uniform(-0.25, 0.25)
  tx = canvas / 2 + rng.uniform(-0.07, 0.07) * canvas
  ty = canvas / 2 + rng.uniform(-0.05, 0.05) * canvas
  c, s = math.cos(angle), math.sin(angle)
  forward = np.array([[c, -s], [s, c]]) @ np.array([[1.0, shear], [0.0, 1.0]]) @ np.diag(
      [scale * stretch, scale])
  inv = np.linalg.inv(forward)
  to_strip = np.eye(3)  # canvas pixel -> strip pixel
  to_strip[:2, :2] = inv
  to_strip[:2, 2] = np.array([cx, cy]) - inv @ np.array([tx, ty])
  u = rng.uniform()
  warp = 0 if u < 0.5 else 1 if u < 0.75 else 2
  image = Image.fromarray(strip)
  if warp == 1:  # a keystone: the plate seen from one side and from above or below
    strong, weak = rng.choice([-1.0, 1.0]) * rng.uniform(0.05, 0.15), rng.uniform(-0.06, 0.06)
    kx, ky = (strong, weak) if rng.uniform() < 0.5 else (weak, strong)
    square = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    seen = np.stack([square[:, 0] * (1 + ky * square[:, 1]),
                     square[:, 1] * (1 + kx * square[:, 0])], axis=1)
    half = canvas / 2
    m = to_strip @ _homography(half + half * seen, half + half * square)
    m = m / m[2, 2]
    warped = image.transform((canvas, canvas), Image.PERSPECTIVE, tuple(m.ravel()[:8]),
                             resample=Image.BILINEAR)
  else:
    warped = image.transform((canvas, canvas), Image.AFFINE, tuple(to_strip[:2].ravel()),
                             resample=Image.BILINEAR)
  ink = np.asarray(warped, np.float32) / 255.0
  if warp == 2:  # elastic: a smooth displacement field, a few % of the size
    amp = rng.uniform(0.02, 0.045) * canvas
    field = _smooth_field(rng, canvas, 4, amp, 2).astype(np.float32)
    ink = _remap(ink, field[..., 0], field[..., 1])
  style = dict(font=font_index, group=group, height=height, spacing=track,
               neighbours=neighbours, warp=warp, layout_cell=cell)
  return ink, style


def _shifted(a: np.ndarray, dy: int, dx: int) -> np.ndarray:
  """``a`` moved by (dy, dx) pixels, zero-filled (no wrap-around)."""
  h, w = a.shape
  out = np.zeros_like(a)
  out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
      a[max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
  return out


def _dilate(a: np.ndarray, radius: int) -> np.ndarray:
  """A (2 radius + 1)-square maximum filter, separably; zero outside."""
  out = a
  for axis in (0, 1):
    src, out = out, out.copy()
    for k in range(1, radius + 1):
      lo, hi = [slice(None)] * 2, [slice(None)] * 2
      lo[axis], hi[axis] = slice(k, None), slice(None, -k)
      np.maximum(out[tuple(lo)], src[tuple(hi)], out=out[tuple(lo)])
      np.maximum(out[tuple(hi)], src[tuple(lo)], out=out[tuple(hi)])
  return out


def _decorate(rng: np.random.Generator, ink: np.ndarray, fg: np.ndarray, bg: np.ndarray,
              fg_luma: float, size: int) -> tuple[list[tuple[np.ndarray, np.ndarray]], int]:
  """The glyph's layers, back to front, as (coverage [S, S, 1], colour), and the decoration.

  Worked out at 2x (``ink`` is ``[2S, 2S]``) so that 1 px outlines and offsets stay sharp, then
  box-downsampled. The fill (or, outline only, the ring) always has the foreground colour, so
  the digit keeps its contrast with the background whatever is added behind it.
  """
  u = rng.uniform()
  unit = _SUPERSAMPLE  # 2x pixels per output pixel
  layers = []
  if u < 0.45:
    decoration = 0
  elif u < 0.65:  # an outline: the ring alone, or a ring of another colour around the fill
    decoration = 1
    ring = _dilate(ink, max(1, int(round(rng.uniform(0.03, 0.05) * size * unit))))
    if rng.uniform() < 0.5:
      ink = np.clip(ring - ink, 0.0, 1.0)
    else:  # another colour, far from the fill's so that the ring shows
      lo, hi = fg_luma - MIN_CONTRAST, fg_luma + MIN_CONTRAST
      width_lo, width_hi = max(lo, 0.0), max(255.0 - hi, 0.0)
      pick = rng.uniform(0.0, width_lo + width_hi)
      layers.append((ring, _colour(rng, pick if pick < width_lo else hi + pick - width_lo)))
  elif u < 0.85:  # a drop shadow, 0.5-3 px away diagonally, a darker shade of the background
    decoration = 2
    dy, dx = (int(v) for v in rng.integers(1, 3 * unit + 1, size=2) * rng.choice([-1, 1], 2))
    layers.append((_shifted(ink, dy, dx), bg * rng.uniform(0.3, 0.7)))
  else:  # a 3-D extrusion: the glyph repeated 1-4 px along a diagonal, darker or lighter
    decoration = 3
    depth = int(rng.integers(1, 5)) * unit
    sy, sx = (int(v) for v in rng.choice([-1, 1], 2))
    side = np.zeros_like(ink)
    for k in range(1, depth + 1):
      np.maximum(side, _shifted(ink, k * sy, k * sx), out=side)
    shade = rng.uniform(0.3, 0.6)
    colour = fg * (1 - shade) if rng.uniform() < 0.5 else fg + (255.0 - fg) * shade
    layers.append((side, colour))
  layers.append((ink, fg))
  down = [(cov.reshape(size, unit, size, unit).mean(axis=(1, 3))[..., None],
           np.asarray(colour, np.float32)) for cov, colour in layers]
  return down, decoration


def _render(index: int, seed: int, split_id: int, styles: str, label: int, size: int,
            fontset: _FontSet) -> tuple[np.ndarray, tuple]:
  """Example ``index``: (uint8 [S, S, 3], its style row in :data:`STYLE_KEYS` order)."""
  stream = 0 if styles == "all" else 2 + STYLE_SPLITS.index(styles)  # 1: the labels
  rng = np.random.default_rng([seed, split_id, stream, index])
  ink, style = _ink(rng, fontset, styles, label, size)
  fg_luma, bg_luma = _lumas(rng)
  fg, bg = _colour(rng, fg_luma), _colour(rng, bg_luma)
  image, style["background"] = _background(rng, fg_luma, bg, size)
  style["polarity"] = int(fg_luma > bg_luma)
  if rng.uniform() < 0.2:  # the edge of the number plate, in another colour
    depth = max(1, int(round(rng.uniform(0.02, 0.15) * size)))
    band = (slice(None, depth), slice(-depth, None))[int(rng.integers(2))]
    if rng.uniform() < 0.5:
      image[band] = _colour(rng, rng.uniform(0.0, 255.0))  # top or bottom
    else:
      image[:, band] = _colour(rng, rng.uniform(0.0, 255.0))  # left or right
  layers, style["decoration"] = _decorate(rng, ink, fg, bg, fg_luma, size)
  for coverage, colour in layers:
    image += coverage * (colour - image)
  if rng.uniform() < 0.5:  # colour jitter: a camera's white balance and exposure
    image = image * rng.uniform(0.85, 1.15, 3).astype(np.float32) + \
        rng.uniform(-15.0, 15.0, 3).astype(np.float32)
  pil = Image.fromarray(np.clip(np.rint(image), 0, 255).astype(np.uint8), "RGB")
  if rng.uniform() < 0.25:  # lost resolution
    small = max(4, int(round(size * rng.uniform(0.45, 0.8))))
    pil = pil.resize((small, small), Image.BILINEAR).resize((size, size), Image.BILINEAR)
  if rng.uniform() < 0.8:
    pil = pil.filter(ImageFilter.GaussianBlur(rng.uniform(0.2, 1.2)))
  if rng.uniform() < 0.3:
    buffer = io.BytesIO()
    pil.save(buffer, format="JPEG", quality=int(rng.integers(20, 76)))
    buffer.seek(0)
    pil = Image.open(buffer).convert("RGB")
  out = np.asarray(pil, np.float32)
  sigma = rng.uniform(0.0, 8.0)
  out = out + rng.normal(0.0, sigma, out.shape).astype(np.float32)
  row = tuple(style[k] for k in STYLE_KEYS)
  return np.clip(np.rint(out), 0, 255).astype(np.uint8), row


def _style_table(rows: Sequence[tuple]) -> dict[str, np.ndarray]:
  columns = list(zip(*rows)) if rows else [()] * len(STYLE_KEYS)
  return {k: np.asarray(col, np.float32 if k in _FLOAT_STYLES else np.int32)
          for k, col in zip(STYLE_KEYS, columns)}


def render_digit(index: int, *, seed: int, split: str, image_size: int = DEFAULT_IMAGE_SIZE,
                 fonts: Sequence[str] | None = None,
                 styles: str = "all") -> tuple[np.ndarray, int]:
  """Example ``index`` of a split: (uint8 RGB ``[S, S, 3]``, its digit label).

  A pure function of ``(seed, split, styles, index)`` (and the font list): equal to
  ``render_digits(n, ..., styles=styles)[k][index]`` for any ``n > index``.
  """
  _check_args(split, image_size, seed)
  _check_styles(styles)
  if index < 0:
    raise ValueError(f"index must be >= 0, got {index}.")
  label = int(digit_labels(1, seed=seed, split=split, start=index)[0])
  image, _ = _render(int(index), int(seed), SPLIT_IDS[split], styles, label, int(image_size),
                     _resolve_fonts(fonts, styles))
  return image, label


def render_digits(num: int, *, seed: int, split: str, image_size: int = DEFAULT_IMAGE_SIZE,
                  fonts: Sequence[str] | None = None, start: int = 0, styles: str = "all",
                  return_styles: bool = False
                  ) -> (tuple[np.ndarray, np.ndarray]
                        | tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]):
  """Examples ``start .. start + num - 1`` of a split: (uint8 ``[N, S, S, 3]``, int32 ``[N]``).

  Args:
    num: how many.
    seed: integer >= 0.
    split: ``"train"`` or ``"test"`` (disjoint random streams).
    image_size: S >= 8.
    fonts: font files to draw from (None: :func:`find_fonts`); each must draw the digits.
    start: the index of the first example.
    styles: ``"all"``, ``"seen"`` or ``"heldout"`` (:data:`STYLE_SPLITS`): which fonts and
      layouts to draw from (see the module docstring); each is its own random stream.
    return_styles: also return the style table.

  Returns:
    ``(images, labels)``, or ``(images, labels, style_table)`` with ``return_styles``: a dict
    of length-N arrays keyed by :data:`STYLE_KEYS` (``height``, ``spacing`` float32, the rest
    int32).

  Raises:
    ValueError: a bad argument, a font that cannot draw the digits, or ``styles`` other than
      ``"all"`` with fonts that do not form a held-out and a seen font group.
  """
  _check_args(split, image_size, seed)
  _check_styles(styles)
  if isinstance(num, bool) or not isinstance(num, (int, np.integer)) or num < 0:
    raise ValueError(f"num must be an integer >= 0, got {num!r}.")
  fontset = _resolve_fonts(fonts, styles)
  labels = digit_labels(num, seed=seed, split=split, start=start)
  images = np.empty((num, image_size, image_size, 3), np.uint8)
  rows = []
  sid = SPLIT_IDS[split]
  begin = last = time.perf_counter()
  for k in range(num):
    images[k], row = _render(start + k, int(seed), sid, styles, int(labels[k]), int(image_size),
                             fontset)
    rows.append(row)
    now = time.perf_counter()
    if now - last > 10.0:
      last = now
      logger.info("Printed digits: %d/%d rendered (%.0f/s).", k + 1, num,
                  (k + 1) / (now - begin))
  if return_styles:
    return images, labels, _style_table(rows)
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
               seed: int = 0, styles: str = "all") -> str:
  """Where :func:`load` caches this split (same arguments)."""
  _check_args(split, image_size, seed)
  _check_styles(styles)
  n = _check_num_examples(num_examples)
  digest = hashlib.sha1(renderer_tag().encode()).hexdigest()[:8]
  tag = "" if styles == "all" else f"-styles-{styles}"
  name = (f"{split}-n{split_size(split, n)}-{image_size}px-seed{seed}{tag}"
          f"-fonts{font_fingerprint()}-r{RENDERER_VERSION}-{digest}.npz")
  return os.path.join(data_root(), NAME, name)


def _write_cache(path: str, images: np.ndarray, labels: np.ndarray,
                 style_table: dict[str, np.ndarray], meta: dict) -> None:
  directory = os.path.dirname(path)
  tmp = None
  try:
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=directory)
    with os.fdopen(fd, "wb") as f:
      np.savez(f, images=images, labels=labels, meta=np.asarray(json.dumps(meta)),
               **{f"style_{k}": v for k, v in style_table.items()})
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes private files
    os.replace(tmp, path)
  except OSError as e:
    logger.warning("Could not write the printed-digit cache %s (%s); it will be rendered again "
                   "next time.", path, e)
    if tmp is not None and os.path.exists(tmp):
      os.remove(tmp)


def _read_cache(path: str, n: int, image_size: int
                ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
  try:
    with np.load(path, allow_pickle=False) as z:
      images, labels = z["images"], z["labels"]
      style_table = {k: z[f"style_{k}"] for k in STYLE_KEYS}
      json.loads(str(z["meta"]))
    if images.dtype != np.uint8 or images.shape != (n, image_size, image_size, 3):
      raise ValueError(f"images are {images.dtype} {images.shape}, expected uint8 "
                       f"{(n, image_size, image_size, 3)}")
    if labels.dtype != np.int32 or labels.shape != (n,) or \
        (n and (labels.min() < 0 or labels.max() >= NUM_CLASSES)):
      raise ValueError(f"labels are {labels.dtype} {labels.shape}, expected int32 ({n},) in "
                       "0..9")
    for k, v in style_table.items():
      dtype = np.float32 if k in _FLOAT_STYLES else np.int32
      if v.dtype != dtype or v.shape != (n,):
        raise ValueError(f"style_{k} is {v.dtype} {v.shape}, expected {np.dtype(dtype)} ({n},)")
  except (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as e:
    raise CorruptDatasetError(
        f"Corrupt printed-digit cache file {path} ({type(e).__name__}: {e}). Delete it "
        f"(rm '{path}') and load again: it is rendered afresh from the fonts.") from e
  return images, labels, style_table


def _load_arrays(split: str, num_examples: int, image_size: int, seed: int, styles: str
                 ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], str, bool]:
  """(images, labels, style table, cache path, whether read from the cache)."""
  _check_args(split, image_size, seed)
  _check_styles(styles)
  n = split_size(split, _check_num_examples(num_examples))
  fonts = find_fonts()
  _resolve_fonts(None, styles)  # a style split the fonts cannot make fails before any work
  path = cache_path(split, num_examples=num_examples, image_size=image_size, seed=seed,
                    styles=styles)
  if os.path.exists(path):
    return (*_read_cache(path, n, image_size), path, True)
  logger.info("Rendering %d printed digits (%s, styles %s, %dx%d, seed %d) with %d fonts...", n,
              split, styles, image_size, image_size, seed, len(fonts))
  images, labels, style_table = render_digits(n, seed=seed, split=split, image_size=image_size,
                                              styles=styles, return_styles=True)
  meta = {"split": split, "num_examples": n, "image_size": image_size, "seed": seed,
          "styles": styles, "renderer": renderer_tag(),
          "fonts": [_display_path(p) for p in fonts], "groups": font_groups(),
          "heldout_groups": sorted(heldout_groups(font_groups())),
          "heldout_layout_cells": sorted(HELDOUT_LAYOUT_CELLS)}
  _write_cache(path, images, labels, style_table, meta)
  return images, labels, style_table, path, False


def load(split: str, *, num_examples: int = 0, image_size: int = DEFAULT_IMAGE_SIZE,
         seed: int = 0, styles: str = "all") -> ArrayDataset:
  """A split of printed digits, rendered once and then read from the disk cache.

  Args:
    split: ``"train"`` (``num_examples`` images) or ``"test"`` (``max(1, num_examples // 10)``).
    num_examples: the size of ``"train"``; 0: :data:`DEFAULT_NUM_EXAMPLES` (50,000; so
      ``"test"`` has 5,000).
    image_size: S >= 8; the images are ``[N, S, S, 3]`` uint8 RGB.
    seed: integer >= 0; example ``i`` is a pure function of ``(seed, split, styles, i)``.
    styles: ``"all"``, ``"seen"`` (no held-out font group or layout cell) or ``"heldout"``
      (only those); see the module docstring. :func:`load_styles` gives each example's style.

  Returns:
    An :class:`ArrayDataset` named ``"printed_digits"``, 10 classes, int32 labels (the digit).

  Raises:
    DatasetNotFoundError: no installed font draws the digits (``bash scripts/install_data.sh``).
    CorruptDatasetError: the cache file exists but cannot be read; delete it.
    ValueError: a bad split, size, number, seed or styles, or a style split the fonts cannot
      make (fewer than two font groups).
  """
  start = time.perf_counter()
  images, labels, _, path, from_cache = _load_arrays(split, num_examples, image_size, seed,
                                                     styles)
  fonts = find_fonts()
  families = len({f for _, f in _fonts_with_families()})
  source = (f"rendered printed digits ({len(fonts)} fonts in {families} families; seed={seed}, "
            f"{split}, styles={styles}, {len(images)} images {image_size}x{image_size}; "
            f"{'cached' if from_cache else 'rendered, cached'} at {path})")
  logger.info("Loaded printed_digits/%s in %.2fs: %s.", split, time.perf_counter() - start,
              source)
  return ArrayDataset(images=images, labels=labels, num_classes=NUM_CLASSES, name=NAME,
                      source=source)


def load_styles(split: str, *, num_examples: int = 0, image_size: int = DEFAULT_IMAGE_SIZE,
                seed: int = 0, styles: str = "all") -> dict[str, np.ndarray]:
  """The style table of exactly the examples :func:`load` returns (same arguments).

  Read from the same cache file (rendered and cached first if missing): a dict of length-N
  arrays keyed by :data:`STYLE_KEYS`; ``group`` indexes :func:`font_groups`, ``font``
  :func:`find_fonts`, ``warp``/``decoration``/``background`` :data:`WARPS`/
  :data:`DECORATIONS`/:data:`BACKGROUNDS`.
  """
  return _load_arrays(split, num_examples, image_size, seed, styles)[2]


def _main(argv: Sequence[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description="Render printed digits: speed and a sample grid.")
  parser.add_argument("--num", type=int, default=5000, help="images to time")
  parser.add_argument("--image_size", type=int, default=DEFAULT_IMAGE_SIZE)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--styles", default="all", choices=STYLE_SPLITS)
  parser.add_argument("--grid", default=None, help="write a 10x10 grid of the first 100 here")
  args = parser.parse_args(argv)
  start = time.perf_counter()
  table = _fonts_with_families()
  for path, _ in table:  # rasterise every font's digits once, outside the timing
    _glyphs(path, int(math.ceil(0.9 * args.image_size * _SUPERSAMPLE)))
  groups = font_groups()
  print(f"{len(table)} fonts in {len({f for _, f in table})} families, {len(groups)} family "
        f"groups (fingerprint {font_fingerprint()}); font scan and glyphs "
        f"{time.perf_counter() - start:.2f}s\ngroups: {', '.join(groups)}\n"
        f"held-out groups: {', '.join(sorted(heldout_groups(groups)))}; held-out layout cells: "
        f"{sorted(HELDOUT_LAYOUT_CELLS)}")
  start = time.perf_counter()
  images, _, style_table = render_digits(args.num, seed=args.seed, split="train",
                                         image_size=args.image_size, styles=args.styles,
                                         return_styles=True)
  seconds = time.perf_counter() - start
  print(f"{args.num} images {args.image_size}x{args.image_size} (styles={args.styles}) in "
        f"{seconds:.2f}s: {args.num / seconds:.0f} images/s")
  for key, names in (("warp", WARPS), ("decoration", DECORATIONS),
                     ("background", BACKGROUNDS)):
    counts = np.bincount(style_table[key], minlength=len(names)) / max(1, args.num)
    print(f"{key}: " + ", ".join(f"{n} {c:.0%}" for n, c in zip(names, counts)))
  if args.grid:
    from jgan import imaging  # pylint: disable=import-outside-toplevel
    imaging.save_grid(args.grid, images[:100].astype(np.float32) / 127.5 - 1.0, ncols=10)
    print(f"wrote {args.grid}")


if __name__ == "__main__":
  _main()
