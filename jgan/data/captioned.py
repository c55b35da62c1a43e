"""Captioned image datasets for text-to-image GANs: avatars (offline) and Oxford-102 flowers.

A captioned dataset is the image dataset plus, per image, ``K`` caption embeddings and
integer attribute labels, carried in every batch (:attr:`ArrayDataset.extras`):

* ``"text_embedding"``: float32 ``[N, K, D]``, the frozen sentence encoder's vectors of the
  image's K captions (:mod:`jgan.text`, encoded once and cached);
* ``"attributes"``: int32 ``[N, A]`` class labels (``-1``: not applicable), the targets of
  the AC-GAN head and of the attribute evaluation;
* with ``data.recombined_captions`` (avatars, train split): ``"recombined_embedding"`` [N, D]
  and ``"recombined_attributes"`` [N, A], one caption per image of an attribute combination
  recombined from the training values (:func:`recombined_avatar_labels`; no image), which a
  t2i step may condition part of G's batch on (``loss.recombined_fraction``);
* with ``data.partner_images`` (train split): ``"partner_image"`` uint8 [N, H, W, C], for each
  image another training image with the same attribute labels (:func:`partner_indices`), so a
  discriminator can judge pairs of one caption (``loss.pack=2``); with
  ``data.partners_per_image`` P > 1, [N, P, H, W, C]: P such partners (P cycles drawn with
  seeds ``seed .. seed + P - 1``), of which the step picks one per example, so the real pairs
  change from epoch to epoch instead of being a fixed set that D can learn by heart.

``data.text_encoder`` set in a config turns ``data.name`` into its captioned version
(:func:`jgan.data.from_config` calls :func:`from_config` here).

Avatars (``data.name="avatars"``): the DiceBear avatars of :mod:`jgan.data.avatars` (same
render cache), with five coarse attributes read from each avatar's exact options
(:data:`AVATAR_ATTRIBUTES`: hair style group, hair colour, glasses, mouth, facial hair) and
``K = data.captions_per_image`` captions in varied phrasings that state every one of them
("a smiling face with short red hair, round glasses and no beard", "an avatar with a black
afro, without glasses, clean-shaven, with its mouth open"), drawn per (seed, split, index, k).
Attribute *combinations* in :data:`HELD_OUT` (e.g. long red hair) are removed from the
training split, so the evaluation can ask for combinations the generator never saw.

Flowers (``data.name="oxford_flowers102"``): TFDS ``oxford_flowers102`` prepared in
``array_record`` format in ``data.data_dir`` (images, labels, file names), with the captions
of Reed et al. 2016 from ``data.captions_dir``: their published layout
``text_c10/class_00001/image_06734.txt`` (one text file per image, one caption a line; the
folder given may be the one holding ``text_c10`` or ``text_c10`` itself). jgan's "train" is
TFDS train + test (7,169 images), "test" TFDS validation (1,020). The attribute is the class
(102).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence

import numpy as np

from jgan.data.base import ArrayDataset, DatasetNotFoundError, logger

CAPTIONED_DATASETS = ("avatars", "oxford_flowers102")

# ----------------------------------------------------------------------------- avatars

AVATAR_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "hair": ("short", "long", "afro", "covered"),
    "hair_colour": ("black", "brown", "blonde", "red", "pink", "grey"),
    "glasses": ("none", "glasses", "sunglasses", "eyepatch"),
    "mouth": ("smiling", "open", "serious"),
    "facial_hair": ("none", "beard"),
}
_HAIR = {
    "short": ("dreads01", "dreads02", "frizzle", "shaggy", "shaggyMullet", "shortCurly",
              "shortFlat", "shortRound", "shortWaved", "sides", "theCaesar",
              "theCaesarAndSidePart"),
    "long": ("bigHair", "bob", "bun", "curly", "curvy", "dreads", "frida", "longButNotTooLong",
             "miaWallace", "shavedSides", "straight01", "straight02", "straightAndStrand"),
    "afro": ("fro", "froBand"),
    "covered": ("hat", "hijab", "turban", "winterHat1", "winterHat02", "winterHat03",
                "winterHat04"),
}
_HAIR_COLOUR = {"black": ("#2c1b18", "#4a312c"), "brown": ("#724133", "#a55728"),
                "blonde": ("#b58143", "#d6b370", "#ecdcbf"), "red": ("#c93305",),
                "pink": ("#f59797",), "grey": ("#e8e1e1",)}
_GLASSES = {"glasses": ("prescription01", "prescription02", "round"),
            "sunglasses": ("kurt", "sunglasses", "wayfarers"), "eyepatch": ("eyepatch",)}
_MOUTH = {"smiling": ("default", "smile", "twinkle"),
          "open": ("concerned", "disbelief", "eating", "screamOpen", "tongue", "vomit"),
          "serious": ("grimace", "sad", "serious")}

# Combinations removed from the training split (an avatar matching every key of one entry).
HELD_OUT: tuple[dict[str, str], ...] = (
    {"hair": "long", "hair_colour": "red"},
    {"hair": "short", "glasses": "sunglasses"},
    {"hair_colour": "blonde", "facial_hair": "beard"},
    {"hair": "afro", "mouth": "smiling"},
)

# Phrasings. Each class has several; captions pick one per (seed, split, index, k).
_SUBJECTS = ("face", "cartoon face", "person", "avatar", "cartoon character")
_HAIR_PHRASES = {
    "short": ("short {c} hair", "a short {c} haircut", "{c} hair cut short"),
    "long": ("long {c} hair", "{c} hair down to the shoulders", "long flowing {c} hair"),
    "afro": ("a {c} afro", "{c} afro hair", "a big {c} afro"),
}
_COVERED = {"hat": "a hat", "hijab": "a hijab", "turban": "a turban",
            "winterHat1": "a winter hat", "winterHat02": "a knitted winter hat",
            "winterHat03": "a beanie", "winterHat04": "a beanie with cat ears"}
_COVERED_FORMS = ("{h}", "{h} covering the hair", "{h} on the head")
_COLOUR_WORDS = {"black": ("black", "dark"), "brown": ("brown", "chestnut"),
                 "blonde": ("blonde", "fair"), "red": ("red", "ginger"), "pink": ("pink",),
                 "grey": ("grey", "silver")}
_GLASSES_PHRASES = {
    "none": ("no glasses", "bare eyes"),
    "prescription01": ("glasses", "spectacles"), "prescription02": ("rectangular glasses",),
    "round": ("round glasses", "round spectacles"),
    "kurt": ("big dark sunglasses", "sunglasses"), "sunglasses": ("sunglasses", "shades"),
    "wayfarers": ("wayfarer sunglasses", "sunglasses"),
    "eyepatch": ("an eyepatch", "a pirate eyepatch"),
}
_FACIAL_PHRASES = {"none": ("no beard", "a clean-shaven chin"),
                   "beard": ("a beard", "facial hair")}
_MOUTH_ADJECTIVES = {"smiling": ("smiling", "happy"), "open": ("open-mouthed",),
                     "serious": ("serious", "unsmiling")}
_MOUTH_PHRASES = {"smiling": ("a smile", "a smiling mouth"),
                  "open": ("an open mouth", "the mouth wide open"),
                  "serious": ("a serious mouth", "a closed, unsmiling mouth")}


def _reverse(groups: Mapping[str, Sequence[str]], names: Sequence[str]) -> dict[str, int]:
  classes = list(groups)
  return {value: classes.index(group) for group, values in groups.items() for value in values
          if value in names}


def avatar_labels(codes: Mapping[str, np.ndarray], names: Mapping[str, list[str]]
                  ) -> np.ndarray:
  """int32 ``[N, A]`` labels of :data:`AVATAR_ATTRIBUTES` from avatars' option codes.

  ``codes`` and ``names`` are :func:`jgan.data.avatars.avatar_attributes` and
  :func:`~jgan.data.avatars.attribute_names`. Hair colour is -1 under a head covering.
  """
  def lookup(attr, groups, absent=-1):
    table = _reverse(groups, names[attr])
    values = [table[names[attr][c]] if c >= 0 else absent for c in codes[attr]]
    return np.asarray(values, np.int32)

  hair = lookup("top", _HAIR)
  colour = lookup("hairColor", _HAIR_COLOUR)
  colour[hair == AVATAR_ATTRIBUTES["hair"].index("covered")] = -1
  glasses = lookup("accessories", {"none": (), **_GLASSES}, absent=0)
  mouth = lookup("mouth", _MOUTH)
  facial = (np.asarray(codes["facialHair"]) >= 0).astype(np.int32)
  return np.stack([hair, colour, glasses, mouth, facial], axis=1)


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
  return options[int(rng.integers(len(options)))]


def _article(word: str) -> str:
  return ("an " if word[0] in "aeiou" else "a ") + word


def avatar_caption(labels: Sequence[int], *, top: str | None = None,
                   accessory: str | None = None, rng: np.random.Generator) -> str:
  """One caption stating every attribute of ``labels`` (a row of :func:`avatar_labels`).

  ``top`` and ``accessory`` (the avatar's exact option names, when known) refine the hair
  covering and the kind of glasses; ``rng`` picks the phrasing.
  """
  names = {a: AVATAR_ATTRIBUTES[a][int(v)] if v >= 0 else None
           for a, v in zip(AVATAR_ATTRIBUTES, labels)}
  if names["hair"] == "covered":
    covering = _COVERED.get(top or "", None) or _pick(rng, tuple(_COVERED.values()))
    hair = "wearing " + _pick(rng, _COVERED_FORMS).format(h=covering)
  else:
    colour = _pick(rng, _COLOUR_WORDS[names["hair_colour"] or "black"])
    hair = _pick(rng, _HAIR_PHRASES[names["hair"]]).format(c=colour)
  if names["glasses"] == "none":
    glasses = _pick(rng, _GLASSES_PHRASES["none"])
  else:
    options = _GLASSES[names["glasses"]]
    glasses = _pick(rng, _GLASSES_PHRASES[accessory if accessory in options
                                          else _pick(rng, options)])
  facial = _pick(rng, _FACIAL_PHRASES[names["facial_hair"]])
  parts = [hair, glasses, facial]
  order = rng.permutation(3)
  parts = [parts[i] for i in order]
  subject = _pick(rng, _SUBJECTS)
  if rng.random() < 0.5:
    head = _article(f"{_pick(rng, _MOUTH_ADJECTIVES[names['mouth']])} {subject}")
  else:
    head = _article(subject)
    parts.append(_pick(rng, _MOUTH_PHRASES[names["mouth"]]))
  with_parts = [p for p in parts if not p.startswith("wearing ")]
  wearing = [p for p in parts if p.startswith("wearing ")]
  text = head + " with " + ", ".join(with_parts[:-1]) + " and " + with_parts[-1]
  if wearing:
    text += ", " + wearing[0]
  return text


def held_out_mask(labels: np.ndarray, held_out: Sequence[Mapping[str, str]] = HELD_OUT
                  ) -> np.ndarray:
  """bool ``[N]``: the rows of ``labels`` ([N, A] avatar labels) in a held-out combination."""
  attrs = list(AVATAR_ATTRIBUTES)
  mask = np.zeros(len(labels), bool)
  for combo in held_out:
    match = np.ones(len(labels), bool)
    for attr, value in combo.items():
      if attr not in AVATAR_ATTRIBUTES or value not in AVATAR_ATTRIBUTES[attr]:
        raise ValueError(f"Held-out combination {dict(combo)!r}: {attr}={value!r} is not an "
                         f"avatar attribute value; allowed: {AVATAR_ATTRIBUTES}.")
      match &= labels[:, attrs.index(attr)] == AVATAR_ATTRIBUTES[attr].index(value)
    mask |= match
  return mask


def avatar_captions_and_labels(split: str, *, num_examples: int, seed: int,
                               captions_per_image: int) -> tuple[list[list[str]], np.ndarray]:
  """(captions [N][K], labels int32 [N, A]) of every avatar of a split (before holding out)."""
  from jgan.data import avatars  # pylint: disable=import-outside-toplevel
  codes = avatars.avatar_attributes(split, num_examples=num_examples, seed=seed)
  names = avatars.attribute_names()
  labels = avatar_labels(codes, names)
  captions = []
  for i, row in enumerate(labels):
    top = names["top"][codes["top"][i]]
    acc = names["accessories"][codes["accessories"][i]] if codes["accessories"][i] >= 0 else None
    captions.append([
        avatar_caption(row, top=top, accessory=acc,
                       rng=np.random.default_rng([seed, 0 if split == "train" else 1, i, k]))
        for k in range(captions_per_image)])
  return captions, labels


def random_avatar_labels(n: int, *, seed: int, combos: Sequence[Mapping[str, str]] = HELD_OUT
                         ) -> np.ndarray:
  """int32 ``[n, A]`` label rows, each one of ``combos`` (in turn) with the other attributes
  drawn uniformly (hair colour -1 under a covering): captions to ask a generator for."""
  rng = np.random.default_rng(seed)
  attrs = list(AVATAR_ATTRIBUTES)
  rows = np.stack([rng.integers(len(v), size=n) for v in AVATAR_ATTRIBUTES.values()], 1)
  covered = AVATAR_ATTRIBUTES["hair"].index("covered")
  for i in range(n):
    combo = combos[i % len(combos)]
    if "hair_colour" in combo and "hair" not in combo and rows[i, 0] == covered:
      rows[i, 0] = rng.integers(covered)  # a colour asked for needs visible hair
    for attr, value in combo.items():
      rows[i, attrs.index(attr)] = AVATAR_ATTRIBUTES[attr].index(value)
  rows[rows[:, 0] == covered, 1] = -1
  return rows.astype(np.int32)


RECOMBINATIONS = ("marginals", "uniform", "unseen_pairs")


def unseen_pair_mask(rows: np.ndarray, labels: np.ndarray) -> np.ndarray:
  """bool ``[len(rows)]``: rows with two attribute values that no row of ``labels`` shows
  together (-1 values are not pairs)."""
  rows, labels = np.asarray(rows), np.asarray(labels)
  unseen = np.zeros(len(rows), bool)
  for a in range(labels.shape[1]):
    for b in range(a + 1, labels.shape[1]):
      seen = {(int(u), int(v)) for u, v in labels[:, [a, b]] if u >= 0 and v >= 0}
      unseen |= np.array([u >= 0 and v >= 0 and (int(u), int(v)) not in seen
                          for u, v in rows[:, [a, b]]], bool)
  return unseen


def recombined_avatar_labels(labels: np.ndarray, *, n: int, seed: int,
                             kind: str = "marginals") -> np.ndarray:
  """int32 ``[n, A]``: attribute combinations recombined from the training set's values.

  Each attribute is drawn on its own from its empirical distribution in ``labels`` ([N, A],
  the training avatars' rows; hair colour -1 under a covering), i.e. from the product of the
  training marginals (``kind="marginals"``): most rows are combinations the training images
  show, some are combinations no training image shows (the held-out ones among them, at
  their product frequency). ``kind="uniform"`` draws each attribute uniformly from the values
  the training rows show instead (balanced: a rare value such as a beard or an eyepatch as
  often as a common one). ``kind="unseen_pairs"`` keeps only rows with a pair of values the
  training rows never show together: the gaps of the training set (which are, for the
  captioned avatars, the held-out combinations: their captions are then trained on, without
  any image). Phrased by :func:`avatar_caption`, they are captions built from the training
  captions' own clauses (GECA-style recombination), conditions a generator can be trained on
  without any image of them.

  References:
    Andreas, "Good-Enough Compositional Data Augmentation", ACL 2020.
  """
  labels = np.asarray(labels)
  if labels.ndim != 2 or labels.shape[1] != len(AVATAR_ATTRIBUTES) or not len(labels):
    raise ValueError(f"labels must be a non-empty [N, {len(AVATAR_ATTRIBUTES)}] array of avatar "
                     f"labels, got shape {labels.shape}.")
  if kind not in RECOMBINATIONS:
    raise ValueError(f"Unknown recombination {kind!r}; allowed: {', '.join(RECOMBINATIONS)}.")
  rng = np.random.default_rng([seed, 3])
  covered = AVATAR_ATTRIBUTES["hair"].index("covered")
  out, have = [], 0
  for _ in range(100):
    rows = np.stack([rng.choice(np.unique(col[col >= 0]) if kind == "uniform" else col[col >= 0],
                                size=max(n, 64)) for col in labels.T], 1)
    rows[rows[:, 0] == covered, 1] = -1
    if kind == "unseen_pairs":
      rows = rows[unseen_pair_mask(rows, labels)]
    out.append(rows)
    have += len(rows)
    if have >= n:
      return np.concatenate(out)[:n].astype(np.int32)
  raise ValueError("The training labels leave no pair of attribute values unseen (or almost "
                   "none): kind='unseen_pairs' has nothing to draw; use 'marginals'.")


def recombined_avatar_captions(labels: np.ndarray, *, n: int, seed: int,
                               kind: str = "marginals") -> tuple[list[str], np.ndarray]:
  """(captions [n], labels int32 [n, A]): :func:`recombined_avatar_labels`, one caption each."""
  rows = recombined_avatar_labels(labels, n=n, seed=seed, kind=kind)
  rng = np.random.default_rng([seed, 4])
  return [avatar_caption(row, rng=rng) for row in rows], rows


def avatar_options(labels: Sequence[int]) -> dict[str, list[str] | int]:
  """DiceBear options that draw an avatar with these :data:`AVATAR_ATTRIBUTES` labels (a row
  of :func:`avatar_labels`; hair colour -1: any): each attribute restricted to its group's
  variants and colours; the variant within the group and every other part are the seed's."""
  hair, colour, glasses, mouth, facial = (int(v) for v in labels)
  names = {a: v for a, v in AVATAR_ATTRIBUTES.items()}
  options: dict[str, list[str] | int] = {
      "topVariant": list(_HAIR[names["hair"][hair]]),
      "mouthVariant": list(_MOUTH[names["mouth"][mouth]]),
      "accessoriesProbability": 0 if glasses == 0 else 100,
      "facialHairProbability": 100 if facial else 0}
  if colour >= 0:
    options["hairColor"] = list(_HAIR_COLOUR[names["hair_colour"][colour]])
  if glasses:
    options["accessoriesVariant"] = list(_GLASSES[names["glasses"][glasses]])
  return options


def render_labelled_avatars(labels: np.ndarray, *, per_label: int, image_size: int,
                            seed: int = 0) -> np.ndarray:
  """uint8 ``[N, per_label, S, S, 3]``: ``per_label`` fresh avatars for each label row of
  ``labels`` [N, A] (:func:`avatar_options`; the seeds ``"jgan/labelled/{seed}/{i}/{j}"``,
  disjoint from the datasets'): what real avatars of a caption's attributes look like, and
  how much they vary (the reference of a text-to-image generator's diversity)."""
  from jgan.data import avatars  # pylint: disable=import-outside-toplevel
  labels = np.asarray(labels)
  out = np.empty((len(labels), per_label, image_size, image_size, 3), np.uint8)
  for i, row in enumerate(labels):
    options = avatar_options(row)
    for j in range(per_label):
      out[i, j] = avatars.render_avatar(f"jgan/labelled/{seed}/{i}/{j}", image_size=image_size,
                                        options=options)[0]
  return out


def _load_avatars(split, *, image_size, num_examples, seed, captions_per_image, hold_out):
  from jgan.data import avatars  # pylint: disable=import-outside-toplevel
  images = avatars.load_avatars(split, image_size=image_size or 64, num_examples=num_examples,
                                seed=seed).images
  captions, labels = avatar_captions_and_labels(split, num_examples=num_examples, seed=seed,
                                                captions_per_image=captions_per_image)
  keep = ~held_out_mask(labels) if hold_out and split == "train" else np.ones(len(labels), bool)
  captions = [c for c, k in zip(captions, keep) if k]
  return images[keep], labels[keep], captions


# ----------------------------------------------------------------------------- flowers

FLOWERS_CLASSES = 102
_FLOWERS_SPLITS = {"train": ("train", "test"), "test": ("validation",)}
FLOWERS_HINT = (
    "t2i_flowers needs (1) TFDS 'oxford_flowers102' prepared in array_record format in "
    "--config.data.data_dir=DIR (on a machine with internet: python -c 'import "
    "tensorflow_datasets as tfds; tfds.builder(\"oxford_flowers102\", data_dir=\"DIR\", "
    "file_format=\"array_record\").download_and_prepare()') and (2) Reed et al.'s captions "
    "(cvpr2016_flowers.tar.gz from https://github.com/reedscot/icml2016, its text_c10 folder: "
    "text_c10/class_00001/image_06734.txt, one caption a line) in "
    "--config.data.captions_dir=DIR. Offline, train on captioned avatars instead: "
    "python launch.py --experiment t2i_avatars")


def read_flower_captions(captions_dir: str, file_names: Sequence[str]) -> list[list[str]]:
  """The captions of each image ``file_names[i]`` ("image_06734.jpg") from Reed's layout."""
  if not captions_dir or not os.path.isdir(captions_dir):
    raise DatasetNotFoundError(f"No captions folder at config.data.captions_dir="
                               f"{captions_dir!r}. {FLOWERS_HINT}.")
  root = os.path.join(captions_dir, "text_c10")
  root = root if os.path.isdir(root) else captions_dir
  by_stem = {}
  for class_dir in sorted(os.listdir(root)):
    path = os.path.join(root, class_dir)
    if class_dir.startswith("class_") and os.path.isdir(path):
      for name in os.listdir(path):
        if name.endswith(".txt"):
          by_stem[name[:-4]] = os.path.join(path, name)
  out, missing = [], []
  for file_name in file_names:
    stem = os.path.splitext(os.path.basename(file_name))[0]
    if stem not in by_stem:
      missing.append(stem)
      continue
    with open(by_stem[stem], encoding="utf-8") as f:
      lines = [line.strip() for line in f if line.strip()]
    if not lines:
      raise ValueError(f"Caption file {by_stem[stem]} is empty; each image needs at least one "
                       "caption (one a line).")
    out.append(lines)
  if missing:
    raise DatasetNotFoundError(
        f"{len(missing)} of {len(file_names)} images have no caption file under {root} (e.g. "
        f"{missing[0]}.txt; expected class_XXXXX/{missing[0]}.txt). {FLOWERS_HINT}.")
  return out


def _load_flowers(split, *, image_size, data_dir, captions_dir):
  from jgan.data import tfds_source  # pylint: disable=import-outside-toplevel
  try:
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
    builder = tfds.builder("oxford_flowers102", data_dir=data_dir, file_format="array_record")
    prepared = builder.is_prepared()
  except Exception as e:  # pylint: disable=broad-except  (any failure: not available)
    raise DatasetNotFoundError(f"TFDS oxford_flowers102 cannot be opened in data_dir="
                               f"{data_dir!r} ({type(e).__name__}: {e}). {FLOWERS_HINT}.") from e
  if not prepared:
    raise DatasetNotFoundError(f"TFDS oxford_flowers102 is not prepared in "
                               f"{os.fspath(builder.data_dir)}. {FLOWERS_HINT}.")
  images, labels, names = [], [], []
  for tfds_split in _FLOWERS_SPLITS[split]:
    source = builder.as_data_source(split=tfds_split)
    for i in range(len(source)):
      record = source[i]
      images.append(tfds_source._to_image(record["image"], image_size or 64))  # pylint: disable=protected-access
      labels.append(int(record["label"]))
      name = record["file_name"]
      names.append(name.decode() if isinstance(name, bytes) else str(name))
  captions = read_flower_captions(captions_dir, names)
  return np.stack(images), np.asarray(labels, np.int32)[:, None], captions


# ----------------------------------------------------------------------------- both


def attribute_spec(data_config) -> tuple[tuple[str, ...], tuple[int, ...]]:
  """(attribute names, classes per attribute) of a captioned dataset config."""
  if data_config.name == "avatars":
    return tuple(AVATAR_ATTRIBUTES), tuple(len(v) for v in AVATAR_ATTRIBUTES.values())
  if data_config.name == "oxford_flowers102":
    return ("class",), (FLOWERS_CLASSES,)
  raise ValueError(f"No captioned version of dataset {data_config.name!r}; captioned datasets: "
                   f"{', '.join(CAPTIONED_DATASETS)}.")


def _fixed_k(captions: list[list[str]], k: int) -> list[list[str]]:
  """Exactly k captions per image (cycling through an image's own when it has fewer)."""
  return [[c[j % len(c)] for j in range(k)] for c in captions]


def partner_indices(labels: np.ndarray, *, seed: int) -> np.ndarray:
  """For each row of ``labels`` [N, A], the index of another row with the same labels.

  Within each group of equal rows the partners follow one random cycle (drawn with ``seed``),
  so every image is some other image's partner once; a row no other row shares is its own.

  Returns:
    int64 [N].
  """
  labels = np.asarray(labels)
  if labels.ndim != 2 or not len(labels):
    raise ValueError(f"partner_indices takes labels [N, A] with N >= 1, got {labels.shape}.")
  _, group = np.unique(labels, axis=0, return_inverse=True)
  group = group.ravel()
  order = np.argsort(group, kind="stable")
  rng = np.random.default_rng(seed)
  partners = np.arange(len(labels))
  for members in np.split(order, np.flatnonzero(np.diff(group[order])) + 1):
    cycle = rng.permutation(members)
    partners[cycle] = np.roll(cycle, -1)
  return partners


@functools.lru_cache(maxsize=8)
def _recombined(kind, name, split, image_size, num_examples, seed, k, hold_out, data_dir,
                captions_dir, encoder):
  """(embeddings [N, E], labels [N, A]): one recombined caption per training image."""
  from jgan import text  # pylint: disable=import-outside-toplevel
  _, labels, _, _ = _load(name, split, image_size, num_examples, seed, k, hold_out, data_dir,
                          captions_dir, encoder)
  captions, rows = recombined_avatar_captions(labels, n=len(labels), seed=seed, kind=kind)
  return text.cached_embeddings(encoder, captions), rows


@functools.lru_cache(maxsize=8)
def _load(name, split, image_size, num_examples, seed, k, hold_out, data_dir, captions_dir,
          encoder):
  from jgan import text  # pylint: disable=import-outside-toplevel
  if name == "avatars":
    images, labels, captions = _load_avatars(
        split, image_size=image_size, num_examples=num_examples or 10_000, seed=seed,
        captions_per_image=k, hold_out=hold_out)
  else:
    images, labels, captions = _load_flowers(split, image_size=image_size, data_dir=data_dir,
                                             captions_dir=captions_dir)
  captions = _fixed_k(captions, k)
  flat = [c for per_image in captions for c in per_image]
  table = text.cached_embeddings(encoder, flat).reshape(len(captions), k, -1)
  return images, labels, captions, table


def from_config(data_config, *, split: str) -> ArrayDataset:
  """The captioned dataset of a config's ``data`` group (``data.text_encoder`` set)."""
  d = data_config
  if d.name not in CAPTIONED_DATASETS:
    raise ValueError(f"No captioned version of dataset {d.name!r} (config.data.name); "
                     f"captioned datasets: {', '.join(CAPTIONED_DATASETS)}.")
  k = int(d.get("captions_per_image", 4))
  recombined = d.get("recombined_captions", "") or ""
  if recombined and recombined not in RECOMBINATIONS:
    raise ValueError(f"config.data.recombined_captions={recombined!r}; allowed: '' (off), "
                     f"{', '.join(repr(r) for r in RECOMBINATIONS)}.")
  recombined = recombined if split == "train" else ""
  if recombined and d.name != "avatars":
    raise ValueError(f"config.data.recombined_captions needs captioned avatars (attribute "
                     f"labels that a caption can be built from), not {d.name!r}; set it False.")
  if k < 1:
    raise ValueError(f"config.data.captions_per_image must be >= 1, got {k}.")
  args = (d.name, split, int(d.get("image_size", 0) or 0), int(d.get("num_examples", 0) or 0),
          int(d.get("seed", 0) or 0), k, bool(d.get("hold_out", True)), d.get("data_dir", None),
          d.get("captions_dir", "") or "", d.text_encoder)
  images, labels, captions, table = _load(*args)
  names, counts = attribute_spec(d)
  logger.info("Captioned %s/%s: %d images, %d captions each, %s-d %s embeddings.", d.name,
              split, len(images), k, table.shape[-1], d.text_encoder)
  extras = {"text_embedding": table, "attributes": labels}
  if recombined:
    extras["recombined_embedding"], extras["recombined_attributes"] = _recombined(recombined,
                                                                                  *args)
  if d.get("partner_images", False) and split == "train":
    p = int(d.get("partners_per_image", 1))
    if p < 1:
      raise ValueError(f"config.data.partners_per_image must be >= 1, got {p}.")
    table = np.stack([partner_indices(labels, seed=args[4] + j) for j in range(p)], axis=1)
    extras["partner_image"] = images[table[:, 0] if p == 1 else table]
  return ArrayDataset(
      images=images, labels=labels[:, 0].copy(), num_classes=counts[0],
      name=f"{d.name}_captioned",
      source=f"{d.name} {split} with {k} captions an image ({d.text_encoder} embeddings)",
      extras=extras)


def captions_of(data_config, *, split: str) -> list[list[str]]:
  """The caption strings of :func:`from_config`'s examples, [N][K], in the same order."""
  d = data_config
  return _load(d.name, split, int(d.get("image_size", 0) or 0),
               int(d.get("num_examples", 0) or 0), int(d.get("seed", 0) or 0),
               int(d.get("captions_per_image", 4)), bool(d.get("hold_out", True)),
               d.get("data_dir", None), d.get("captions_dir", "") or "", d.text_encoder)[2]


__all__ = [
    "AVATAR_ATTRIBUTES", "CAPTIONED_DATASETS", "FLOWERS_CLASSES", "HELD_OUT", "attribute_spec",
    "avatar_caption", "avatar_captions_and_labels", "avatar_labels", "captions_of",
    "from_config", "held_out_mask", "partner_indices", "random_avatar_labels",
    "read_flower_captions",
    "RECOMBINATIONS", "recombined_avatar_captions", "recombined_avatar_labels",
    "unseen_pair_mask",
]
