"""Tests for jgan.data.printed_digits: digits rendered from fonts, the offline stand-in for SVHN."""

from __future__ import annotations

import os

import ml_collections
import numpy as np
import pytest

from jgan import data
from jgan.data import printed_digits as pd


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
  """An empty $JGAN_DATA_DIR, so the disk cache starts empty."""
  root = tmp_path / "jgan-data"
  monkeypatch.setenv("JGAN_DATA_DIR", str(root))
  return root


def _differ_per_image(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  return (a != b).reshape(len(a), -1).any(axis=1)


# ------------------------------------------------------------------------------------ rendering


def test_shapes_dtypes_and_range():
  images, labels = pd.render_digits(40, seed=0, split="train")
  assert images.shape == (40, 32, 32, 3) and images.dtype == np.uint8
  assert labels.shape == (40,) and labels.dtype == np.int32
  assert labels.min() >= 0 and labels.max() <= 9
  spread = np.ptp(images.reshape(40, -1).astype(int), axis=1)
  assert (spread >= 40).all(), "every image shows a digit against its background"
  small, _ = pd.render_digits(3, seed=0, split="test", image_size=16)
  assert small.shape == (3, 16, 16, 3) and small.dtype == np.uint8


def test_same_seed_same_images_other_seed_other_images():
  a, la = pd.render_digits(20, seed=3, split="train")
  b, lb = pd.render_digits(20, seed=3, split="train")
  np.testing.assert_array_equal(a, b)
  np.testing.assert_array_equal(la, lb)
  c, lc = pd.render_digits(20, seed=4, split="train")
  assert _differ_per_image(a, c).all()
  assert not np.array_equal(la, lc)


def test_any_prefix_and_any_single_example_is_reproducible():
  full, labels = pd.render_digits(25, seed=1, split="train")
  head, head_labels = pd.render_digits(7, seed=1, split="train")
  np.testing.assert_array_equal(head, full[:7])
  np.testing.assert_array_equal(head_labels, labels[:7])
  tail, tail_labels = pd.render_digits(5, seed=1, split="train", start=20)
  np.testing.assert_array_equal(tail, full[20:])
  np.testing.assert_array_equal(tail_labels, labels[20:])
  image, label = pd.render_digit(13, seed=1, split="train")
  np.testing.assert_array_equal(image, full[13])
  assert label == labels[13]


def test_train_and_test_are_different_streams():
  train, train_labels = pd.render_digits(20, seed=0, split="train")
  test, test_labels = pd.render_digits(20, seed=0, split="test")
  assert _differ_per_image(train, test).all()
  assert not np.array_equal(train_labels, test_labels)


def test_labels_are_balanced_in_every_block_of_ten():
  labels = pd.digit_labels(1000, seed=0, split="train")
  np.testing.assert_array_equal(np.bincount(labels, minlength=10), np.full(10, 100))
  for block in labels.reshape(100, 10):
    assert sorted(block) == list(range(10))
  counts = np.bincount(labels[:23], minlength=10)
  assert counts.min() >= 2 and counts.max() <= 3
  _, rendered = pd.render_digits(30, seed=0, split="train")
  np.testing.assert_array_equal(rendered, labels[:30])
  assert not np.array_equal(labels[:10], np.arange(10))  # permuted, not 0..9 in order


def test_colours_keep_the_contrast_both_ways_round():
  rng = np.random.default_rng(0)
  pairs = np.array([pd._lumas(rng) for _ in range(2000)])
  assert (np.abs(pairs[:, 0] - pairs[:, 1]) >= pd.MIN_CONTRAST).all()
  assert 0.45 < (pairs[:, 0] < pairs[:, 1]).mean() < 0.55  # dark-on-light half the time
  for luma in (0.0, 30.0, 128.0, 250.0, 255.0):
    colour = pd._colour(rng, luma)
    assert 0 <= colour.min() and colour.max() <= 255
    assert abs(float(colour @ pd._LUMA) - luma) < 1e-6


# ---------------------------------------------------------------------------------------- fonts


def test_font_filter_keeps_text_fonts_and_drops_fonts_without_digits(tmp_path):
  mpl = pd._matplotlib_font_dir()
  text_font = os.path.join(mpl, "DejaVuSans.ttf")
  no_digits = os.path.join(mpl, "DejaVuSansDisplay.ttf")  # digits fall back to .notdef
  symbols = [os.path.join(mpl, "cmex10.ttf"), os.path.join(mpl, "cmsy10.ttf")]  # not digits
  not_a_font = tmp_path / "broken.ttf"
  not_a_font.write_bytes(b"\x00\x01\x00\x00 definitely not a font")
  # Installed by scripts/install_data.sh: dingbats at the digit code points, and a Noto script
  # font without Latin digits. Checked when present (matplotlib's fonts above always are).
  system = [p for p in ("/usr/share/fonts/opentype/urw-base35/D050000L.otf",
                        "/usr/share/fonts/truetype/noto/NotoSansArmenian-Regular.ttf")
            if os.path.exists(p)]
  kept = pd.select_fonts([text_font, no_digits, *symbols, str(not_a_font), *system])
  assert [path for path, _ in kept] == [text_font]
  assert kept[0][1] == "DejaVu Sans"
  # A near-copy (the same design twice) is kept once.
  assert len(pd.select_fonts([text_font, text_font])) == 1
  with pytest.raises(ValueError, match="cannot draw the digits"):
    pd.render_digits(1, seed=0, split="train", fonts=[no_digits])


def test_find_fonts_on_this_machine():
  fonts = pd.find_fonts()
  assert fonts == sorted(fonts) and len(fonts) >= 5
  assert all(f.lower().endswith((".ttf", ".otf")) and os.path.isfile(f) for f in fonts)
  assert not any("D050000L" in f for f in fonts)
  assert pd.font_fingerprint() == pd.font_fingerprint(fonts) != pd.font_fingerprint(fonts[1:])
  images, _ = pd.render_digits(4, seed=0, split="train", fonts=fonts[:1])
  assert images.shape == (4, 32, 32, 3)


def test_without_system_fonts_falls_back_to_matplotlib_and_then_fails_clearly(
    tmp_path, monkeypatch, data_dir):
  pd._reference_templates()  # cached before matplotlib's folder is hidden below
  monkeypatch.setattr(pd, "FONT_DIRS", (str(tmp_path / "no-fonts"),))
  fallback = pd.find_fonts()
  assert fallback and all(f.startswith(pd._matplotlib_font_dir()) for f in fallback)
  monkeypatch.setattr(pd, "_matplotlib_font_dir", lambda: None)
  with pytest.raises(data.DatasetNotFoundError, match="bash scripts/install_data.sh"):
    pd.find_fonts()
  with pytest.raises(data.DatasetNotFoundError) as e:
    data.load_dataset("printed_digits", num_examples=10)
  assert "No installed font draws the ten digits" in str(e.value)
  assert "fonts-dejavu-core" in str(e.value)


# ---------------------------------------------------------------------------------------- cache


def test_load_renders_once_then_reads_the_cache(data_dir, monkeypatch):
  renders = []
  render = pd.render_digits
  monkeypatch.setattr(pd, "render_digits",
                      lambda *args, **kwargs: renders.append(args) or render(*args, **kwargs))
  first = pd.load("train", num_examples=30)
  assert len(renders) == 1 and "rendered, cached" in first.source
  path = pd.cache_path("train", num_examples=30)
  assert path.startswith(str(data_dir)) and os.listdir(os.path.dirname(path)) == [
      os.path.basename(path)]  # no temporary file left behind
  second = pd.load("train", num_examples=30)
  assert len(renders) == 1 and "; cached at" in second.source and path in second.source
  np.testing.assert_array_equal(first.images, second.images)
  np.testing.assert_array_equal(first.labels, second.labels)
  expected, expected_labels = render(30, seed=0, split="train")
  np.testing.assert_array_equal(second.images, expected)
  np.testing.assert_array_equal(second.labels, expected_labels)
  assert first.name == "printed_digits" and first.num_classes == 10
  assert f"{len(pd.find_fonts())} fonts" in first.source
  test = pd.load("test", num_examples=30)  # a tenth of num_examples
  assert len(test) == 3 and len(renders) == 2


def test_corrupt_cache_file_is_named_in_the_error(data_dir):
  ds = pd.load("train", num_examples=10, image_size=16)
  path = pd.cache_path("train", num_examples=10, image_size=16)
  with open(path, "r+b") as f:
    f.truncate(200)
  with pytest.raises(data.CorruptDatasetError) as e:
    data.load_dataset("printed_digits", num_examples=10, image_size=16)
  assert path in str(e.value) and "Delete it" in str(e.value)
  styles = {f"style_{k}": np.zeros(10, np.float32 if k in ("height", "spacing") else np.int32)
            for k in pd.STYLE_KEYS}
  np.savez(path, images=np.zeros((10, 8, 8, 3), np.uint8), labels=ds.labels, meta="{}", **styles)
  with pytest.raises(data.CorruptDatasetError, match="expected uint8"):
    pd.load("train", num_examples=10, image_size=16)
  # A file of the old layout (no style table) is corrupt too, not silently half-read.
  np.savez(path, images=ds.images, labels=ds.labels, meta="{}")
  with pytest.raises(data.CorruptDatasetError, match="style_font"):
    pd.load_styles("train", num_examples=10, image_size=16)
  os.remove(path)
  np.testing.assert_array_equal(pd.load("train", num_examples=10, image_size=16).images,
                                ds.images)


# ------------------------------------------------------------------------------------- registry


def test_load_dataset_and_from_config(data_dir):
  assert data.DEFAULT_SOURCES["printed_digits"] == ("offline",)
  ds = data.load_dataset("printed_digits", split="test", num_examples=50, seed=2, image_size=16)
  assert ds.images.shape == (5, 16, 16, 3) and ds.name == "printed_digits"
  np.testing.assert_array_equal(ds.images,
                                pd.render_digits(5, seed=2, split="test", image_size=16)[0])
  config = ml_collections.ConfigDict(dict(name="printed_digits", split="train",
                                          sources=("offline",), image_size=16, num_examples=20))
  ds = data.from_config(config)
  assert ds.images.shape == (20, 16, 16, 3) and ds.labels.shape == (20,)


@pytest.mark.parametrize("options, match", [
    (dict(image_size=7), "image_size must be an integer >= 8"),
    (dict(num_examples=-1), "num_examples must be an integer >= 0"),
    (dict(seed=-2), "seed must be an integer >= 0"),
])
def test_bad_options_raise_value_error(data_dir, options, match):
  with pytest.raises(ValueError, match=match):
    data.load_dataset("printed_digits", **options)


def test_svhn_without_tfds_points_to_printed_digits(tmp_path, data_dir):
  assert data.DEFAULT_SOURCES["svhn"] == ("tfds",)
  with pytest.raises(data.DatasetNotFoundError) as e:
    data.load_dataset("svhn", data_dir=str(tmp_path / "nothing"))
  message = str(e.value)
  assert "svhn_cropped" in message and "not prepared" in message
  assert "not available offline" in message
  assert "--config.source_data.name=printed_digits" in message
  assert not (tmp_path / "nothing").exists()  # Looking never creates or downloads anything.


# ------------------------------------------------------------------ domain randomisation, styles


@pytest.fixture(scope="module")
def sample():
  """400 examples of styles="all" with their style table (shared: rendering is the slow part)."""
  return pd.render_digits(400, seed=0, split="train", return_styles=True)


def test_style_table_has_every_key_with_its_dtype(sample):
  images, labels, table = sample
  assert set(table) == set(pd.STYLE_KEYS)
  for key, column in table.items():
    assert column.shape == (400,)
    assert column.dtype == (np.float32 if key in ("height", "spacing") else np.int32), key
  fonts, groups = pd.find_fonts(), pd.font_groups()
  families = dict(pd._fonts_with_families())
  for font, group in zip(table["font"], table["group"]):  # group is the font's family group
    assert groups[group] == pd.family_group(families[fonts[font]])
  height_band = np.digitize(table["height"], [0.55, 0.75])
  spacing_band = np.digitize(table["spacing"], [1.15, 1.35])
  np.testing.assert_array_equal(table["layout_cell"], 3 * height_band + spacing_band)
  assert images.shape == (400, 32, 32, 3) and labels.shape == (400,)


def test_every_randomised_effect_occurs(sample):
  images, _, table = sample
  assert set(table["warp"]) == {0, 1, 2}  # affine, perspective, elastic
  assert set(table["decoration"]) == {0, 1, 2, 3}  # fill, outline, shadow, extrusion
  assert set(table["background"]) == {0, 1, 2, 3}  # plain, gradient, texture, photo
  assert set(table["neighbours"]) == {0, 1, 2}
  assert set(table["polarity"]) == {0, 1}
  assert set(table["layout_cell"]) == set(range(9))
  assert len(set(table["group"])) == len(pd.font_groups())
  height, spacing = table["height"], table["spacing"]
  assert 0.4 <= height.min() < 0.43 and 0.87 < height.max() <= 0.9
  assert 0.9 <= spacing.min() < 0.95 and 1.55 < spacing.max() <= 1.6
  spread = np.ptp(images.reshape(400, -1).astype(int), axis=1)
  assert (spread >= 40).all(), "every image still shows its digit against the background"


def test_backgrounds_keep_the_contrast_with_the_foreground():
  rng = np.random.default_rng(1)
  kinds = set()
  for _ in range(300):
    fg_luma, bg_luma = pd._lumas(rng)
    image, kind = pd._background(rng, fg_luma, pd._colour(rng, bg_luma), 16)
    kinds.add(kind)
    gap = (image @ pd._LUMA - fg_luma) * (1 if bg_luma > fg_luma else -1)
    assert gap.min() >= pd.MIN_CONTRAST - 1e-3, kind
  assert kinds == {0, 1, 2, 3}


def test_warp_helpers():
  image = np.random.default_rng(0).uniform(size=(6, 7)).astype(np.float32)
  zero = np.zeros((6, 7), np.float32)
  np.testing.assert_allclose(pd._remap(image, zero, zero), image, atol=1e-6)
  moved = pd._remap(image, zero, zero + 1.0)  # x + 1: shifted left, zero coming in on the right
  np.testing.assert_allclose(moved[:, :-1], image[:, 1:], atol=1e-6)
  np.testing.assert_allclose(moved[:, -1], 0.0, atol=1e-6)
  src = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
  dst = np.array([[0.1, 0.0], [0.9, 0.1], [1.0, 1.0], [0.0, 0.8]])
  h = pd._homography(src, dst)
  mapped = (h @ np.c_[src, np.ones(4)].T).T
  np.testing.assert_allclose(mapped[:, :2] / mapped[:, 2:], dst, atol=1e-9)
  ring = pd._dilate(np.pad(np.ones((1, 1), np.float32), 3), 1)
  assert ring.sum() == 9 and ring[2:5, 2:5].all()


def test_heldout_groups_is_every_fourth_sorted_name_from_the_second():
  assert pd.heldout_groups(["i", "a", "c", "b", "e", "d", "g", "f", "h", "a"]) == {"b", "f"}
  groups = pd.font_groups()
  held = pd.heldout_groups(groups)
  assert held == set(sorted(groups)[1::4])
  assert 1 <= len(held) < len(groups)


def test_style_split_is_disjoint_and_honest():
  _, _, seen = pd.render_digits(300, seed=0, split="train", styles="seen", return_styles=True)
  _, _, held = pd.render_digits(300, seed=0, split="test", styles="heldout", return_styles=True)
  groups = pd.font_groups()
  heldout_names = pd.heldout_groups(groups)
  assert not set(seen["group"]) & set(held["group"])
  assert {groups[g] for g in held["group"]} == heldout_names  # every held-out group is used
  assert not {groups[g] for g in seen["group"]} & heldout_names
  assert not set(seen["layout_cell"]) & set(held["layout_cell"])
  assert set(held["layout_cell"]) == pd.HELDOUT_LAYOUT_CELLS == {2, 6}
  assert set(seen["layout_cell"]) == set(range(9)) - pd.HELDOUT_LAYOUT_CELLS
  assert not set(seen["font"]) & set(held["font"])
  # Cell 2: small digits, wide spacing; cell 6: large digits, tight spacing.
  small = held["layout_cell"] == 2
  assert (held["height"][small] < 0.55).all() and (held["spacing"][small] >= 1.35).all()
  assert (held["height"][~small] >= 0.75).all() and (held["spacing"][~small] < 1.15).all()


def test_style_streams_are_deterministic_and_independent():
  for styles in pd.STYLE_SPLITS:
    a, la, ta = pd.render_digits(12, seed=5, split="test", styles=styles, return_styles=True)
    b, lb, tb = pd.render_digits(12, seed=5, split="test", styles=styles, return_styles=True)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
    for key in pd.STYLE_KEYS:
      np.testing.assert_array_equal(ta[key], tb[key])
    head, _, th = pd.render_digits(4, seed=5, split="test", styles=styles, start=8,
                                   return_styles=True)
    np.testing.assert_array_equal(head, a[8:])
    for key in pd.STYLE_KEYS:
      np.testing.assert_array_equal(th[key], ta[key][8:])
    image, label = pd.render_digit(9, seed=5, split="test", styles=styles)
    np.testing.assert_array_equal(image, a[9])
    assert label == la[9]
  images = {s: pd.render_digits(12, seed=5, split="test", styles=s)[0] for s in pd.STYLE_SPLITS}
  assert _differ_per_image(images["all"], images["seen"]).all()
  assert _differ_per_image(images["all"], images["heldout"]).all()
  assert _differ_per_image(images["seen"], images["heldout"]).all()
  for styles in pd.STYLE_SPLITS:  # balanced labels whatever the styles
    _, labels = pd.render_digits(20, seed=5, split="train", styles=styles)
    assert (np.bincount(labels, minlength=10) == 2).all()


def test_load_and_load_styles_round_trip_through_the_cache(data_dir, monkeypatch):
  renders = []
  render = pd.render_digits
  monkeypatch.setattr(pd, "render_digits",
                      lambda *args, **kwargs: renders.append(kwargs) or render(*args, **kwargs))
  ds = pd.load("train", num_examples=20, image_size=16, styles="seen")
  path = pd.cache_path("train", num_examples=20, image_size=16, styles="seen")
  assert "-styles-seen" in path and path in ds.source and "styles=seen" in ds.source
  assert "styles" not in os.path.basename(pd.cache_path("train", num_examples=20))
  table = pd.load_styles("train", num_examples=20, image_size=16, styles="seen")
  assert len(renders) == 1  # the table came from the cache file
  expected, expected_labels, expected_table = render(20, seed=0, split="train", image_size=16,
                                                     styles="seen", return_styles=True)
  np.testing.assert_array_equal(ds.images, expected)
  np.testing.assert_array_equal(ds.labels, expected_labels)
  assert set(table) == set(pd.STYLE_KEYS)
  for key in pd.STYLE_KEYS:
    np.testing.assert_array_equal(table[key], expected_table[key])
    assert table[key].dtype == expected_table[key].dtype
  with np.load(path) as z:
    assert {f"style_{k}" for k in pd.STYLE_KEYS} <= set(z.files)
  held = pd.load_styles("test", num_examples=20, image_size=16, styles="heldout")  # renders
  assert len(renders) == 2 and len(held["group"]) == 2
  assert set(held["layout_cell"]) <= pd.HELDOUT_LAYOUT_CELLS
  assert len(pd.load("test", num_examples=20, image_size=16, styles="heldout")) == 2
  assert len(renders) == 2


@pytest.mark.parametrize("call", [
    lambda: pd.render_digits(1, seed=0, split="train", styles="unseen"),
    lambda: pd.render_digit(0, seed=0, split="train", styles="unseen"),
    lambda: pd.load("train", num_examples=10, styles="unseen"),
    lambda: pd.load_styles("train", num_examples=10, styles="unseen"),
])
def test_bad_styles_value_is_named_with_the_allowed_ones(data_dir, call):
  with pytest.raises(ValueError, match="unknown styles 'unseen'; allowed: 'all', 'seen', "
                                       "'heldout'"):
    call()


def test_style_split_needs_a_font_group_on_each_side():
  one_family = [os.path.join(pd._matplotlib_font_dir(), "DejaVuSans.ttf")]
  images, _ = pd.render_digits(2, seed=0, split="train", fonts=one_family)  # "all" is fine
  assert images.shape == (2, 32, 32, 3)
  for styles in ("seen", "heldout"):
    with pytest.raises(ValueError, match="at least one font group on each side") as e:
      pd.render_digits(2, seed=0, split="train", fonts=one_family, styles=styles)
    assert "DejaVu Sans" in str(e.value)
