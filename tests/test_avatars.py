"""Tests for jgan.data.avatars: DiceBear cartoon faces rendered offline, cached, with attributes."""

from __future__ import annotations

import logging
import os
import sys
import time

import numpy as np
import pytest

pytest.importorskip("dicebear", reason="pip install dicebear-core dicebear-styles cairosvg")
pytest.importorskip("cairosvg", reason="pip install dicebear-core dicebear-styles cairosvg")

from jgan.data import avatars  # noqa: E402
from jgan.data.sources import ArrayDataset, DatasetNotFoundError  # noqa: E402

N = 24  # train avatars in most tests; test split = N // 10 = 2


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
  d = tmp_path / "jgan-data"
  monkeypatch.setenv("JGAN_DATA_DIR", str(d))
  return d


def _rgb(hex_color: str) -> np.ndarray:
  return np.array([int(hex_color[i:i + 2], 16) for i in (1, 3, 5)])


def _count_renders(monkeypatch) -> list[int]:
  calls = []
  real = avatars._render_all

  def counting(seeds, **kwargs):
    calls.append(len(seeds))
    return real(seeds, **kwargs)

  monkeypatch.setattr(avatars, "_render_all", counting)
  return calls


def test_shapes_dtypes_labels_and_progress(caplog):
  with caplog.at_level(logging.INFO, logger="jgan.data"):
    ds = avatars.load_avatars("train", image_size=32, num_examples=N)
  assert isinstance(ds, ArrayDataset) and ds.name == "avatars"
  assert ds.images.shape == (N, 32, 32, 3) and ds.images.dtype == np.uint8
  assert ds.labels.shape == (N,) and ds.labels.dtype == np.int32
  assert ds.num_classes == len(avatars.attribute_names()["top"]) == 34
  assert 0 <= ds.labels.min() and ds.labels.max() < ds.num_classes
  assert len(set(ds.labels.tolist())) > 5  # hair styles vary
  assert "avataaars" in ds.source and "dicebear-core" in ds.source
  progress = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Avatars:")]
  assert progress, "no progress messages on the jgan.data logger"
  test = avatars.load_avatars("test", image_size=32, num_examples=N)
  assert len(test) == N // avatars.TEST_FRACTION == 2


def test_deterministic_same_bytes(tmp_path, monkeypatch):
  a = avatars.load_avatars("train", image_size=32, num_examples=8, seed=3)
  monkeypatch.setenv("JGAN_DATA_DIR", str(tmp_path / "elsewhere"))  # no cache: render again
  calls = _count_renders(monkeypatch)
  b = avatars.load_avatars("train", image_size=32, num_examples=8, seed=3)
  assert calls == [8]
  assert a.images.tobytes() == b.images.tobytes()
  np.testing.assert_array_equal(a.labels, b.labels)
  # Avatar i is the draw for seed_string(seed, split, i), on its own.
  one, resolved = avatars.render_avatar(avatars.seed_string(3, "train", 5), image_size=32)
  np.testing.assert_array_equal(one, a.images[5])
  assert resolved["topVariant"] == avatars.attribute_names()["top"][a.labels[5]]


def test_train_and_test_differ_and_seed_matters():
  train = avatars.load_avatars("train", image_size=32, num_examples=80)
  test = avatars.load_avatars("test", image_size=32, num_examples=80)
  other = avatars.load_avatars("test", image_size=32, num_examples=80, seed=1)
  assert len(test) == 8
  for i in range(8):
    assert not np.array_equal(train.images[i], test.images[i])
    assert not np.array_equal(test.images[i], other.images[i])
  assert avatars.seed_string(0, "train", 0) != avatars.seed_string(0, "test", 0)


def test_cache_hit_loads_without_rendering(data_dir, monkeypatch):
  first = avatars.load_avatars("train", image_size=64, num_examples=16, seed=7)
  files = os.listdir(data_dir / "avatars")
  path = avatars.cache_path("train", image_size=64, num_examples=16, seed=7)
  assert os.path.basename(path) in files
  name = os.path.basename(path)
  for part in ("avataaars", "64px", "n16", "seed7", "train", "core", "styles"):
    assert part in name
  assert not [f for f in files if f.startswith(".tmp")]  # atomic write left no temp file

  def no_render(*args, **kwargs):
    raise AssertionError("rendered although the cache is there")

  monkeypatch.setattr(avatars, "_render_all", no_render)
  start = time.perf_counter()
  second = avatars.load_avatars("train", image_size=64, num_examples=16, seed=7)
  assert time.perf_counter() - start < 1.0
  np.testing.assert_array_equal(first.images, second.images)
  np.testing.assert_array_equal(first.labels, second.labels)
  # Attributes and captions come from the cache too.
  assert len(avatars.avatar_captions("train", num_examples=16, seed=7)) == 16


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_cache_is_rendered_again(damage, monkeypatch, caplog):
  good = avatars.load_avatars("train", image_size=32, num_examples=8)
  path = avatars.cache_path("train", image_size=32, num_examples=8)
  with open(path, "rb") as f:
    raw = f.read()
  with open(path, "wb") as f:
    f.write(b"not a zip file at all" if damage == "garbage" else raw[:len(raw) // 2])
  calls = _count_renders(monkeypatch)
  with caplog.at_level(logging.WARNING, logger="jgan.data"):
    again = avatars.load_avatars("train", image_size=32, num_examples=8)
  assert calls == [8]
  assert any("corrupt" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
  np.testing.assert_array_equal(good.images, again.images)
  calls.clear()
  avatars.load_avatars("train", image_size=32, num_examples=8)  # the rewritten cache is good
  assert calls == []


def test_attributes_and_captions_aligned_with_images():
  ds = avatars.load_avatars("train", image_size=64, num_examples=N)
  attrs = avatars.avatar_attributes("train", num_examples=N)
  names = avatars.attribute_names()
  assert set(attrs) == set(names)
  for key in ("top", "accessories", "eyes", "eyebrows", "mouth", "facialHair", "clothes",
              "skinColor", "hairColor", "backgroundColor"):
    assert key in attrs
  for key, codes in attrs.items():
    assert codes.shape == (N,), key
    assert codes.min() >= -1 and codes.max() < len(names[key]), key
  np.testing.assert_array_equal(attrs["top"], ds.labels)
  assert (attrs["skinColor"] >= 0).all() and (attrs["eyes"] >= 0).all()
  # Exactly one of hair colour and hat colour is drawn, by the kind of top.
  assert ((attrs["hairColor"] >= 0) != (attrs["hatColor"] >= 0)).all()
  captions = avatars.avatar_captions("train", num_examples=N)
  assert len(captions) == N
  for i, caption in enumerate(captions):
    assert caption.startswith("a cartoon face with ")
    skin = names["skinColor"][attrs["skinColor"][i]]
    assert f"{avatars.color_word(skin, 'skin')} skin" in caption
    if attrs["hairColor"][i] >= 0:
      assert avatars.color_word(names["hairColor"][attrs["hairColor"][i]], "hair") in caption
    # The image shows this avatar: its background colour in the corners, its skin colour
    # on the face.
    image = ds.images[i].astype(int)
    background = _rgb(names["backgroundColor"][attrs["backgroundColor"][i]])
    for corner in (image[0, 0], image[0, -1], image[-1, 0], image[-1, -1]):
      np.testing.assert_array_equal(corner, background)
    skin_pixels = (np.abs(image - _rgb(skin)).max(-1) <= 2).mean()
    assert skin_pixels > 0.02, (i, skin_pixels)
  assert len(set(captions)) == N


def test_attributes_without_rendering_match_rendered(data_dir):
  fresh = avatars.avatar_attributes("test", num_examples=120, seed=2)  # options only, no images
  assert len(fresh["top"]) == 12
  ds = avatars.load_avatars("test", image_size=32, num_examples=120, seed=2)
  np.testing.assert_array_equal(fresh["top"], ds.labels)
  os.remove(avatars.cache_path("test", image_size=0, num_examples=120, seed=2))
  avatars.load_avatars("test", image_size=16, num_examples=120, seed=2)  # writes attributes
  again = avatars.avatar_attributes("test", num_examples=120, seed=2)
  for key in fresh:
    np.testing.assert_array_equal(fresh[key], again[key])


def test_images_are_faces_not_blank():
  ds = avatars.load_avatars("train", image_size=64, num_examples=N)
  flat = ds.images.reshape(N, -1, 3).astype(float)
  assert flat.std(axis=1).mean(axis=1).min() > 15  # not a flat image
  centre = ds.images[:, 24:40, 24:40].astype(int)  # the face, not the background
  corner = ds.images[:, :1, :1].astype(int)
  differs = (np.abs(centre - corner).max(-1) > 30).mean(axis=(1, 2))
  assert differs.min() > 0.5
  assert len(np.unique(ds.images.reshape(N, -1), axis=0)) == N


def test_other_labels():
  skin = avatars.load_avatars("train", image_size=16, num_examples=N, label="skinColor")
  assert skin.num_classes == 7 and skin.labels.max() < 7
  with pytest.raises(ValueError, match="not drawn"):
    avatars.load_avatars("train", image_size=16, num_examples=N, label="facialHair")
  with pytest.raises(ValueError, match="Unknown label"):
    avatars.load_avatars("train", image_size=16, num_examples=N, label="hat")


def test_pool_matches_in_process():
  seeds = [avatars.seed_string(0, "train", i) for i in range(12)]
  pooled, pooled_codes = avatars._render_all(seeds, image_size=32, style="avataaars",
                                             num_workers=2)
  local, local_codes = avatars._render_all(seeds, image_size=32, style="avataaars",
                                           num_workers=1)
  np.testing.assert_array_equal(pooled, local)
  np.testing.assert_array_equal(pooled_codes, local_codes)


@pytest.mark.parametrize("module", ["dicebear", "dicebear_styles", "cairosvg"])
def test_missing_package_says_how_to_install(module, monkeypatch):
  monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
  with pytest.raises(DatasetNotFoundError, match="pip install dicebear-core dicebear-styles "
                     "cairosvg"):
    avatars.load_avatars("train", image_size=16, num_examples=4)
  with pytest.raises(DatasetNotFoundError, match="scripts/install.sh"):
    avatars.avatar_attributes("train", num_examples=4)


def test_bad_arguments():
  with pytest.raises(ValueError, match="split"):
    avatars.load_avatars("validation", num_examples=4)
  with pytest.raises(ValueError, match="Unknown DiceBear style"):
    avatars.load_avatars("train", num_examples=4, style="no-such-style")
  with pytest.raises(ValueError, match="num_examples"):
    avatars.load_avatars("train", num_examples=0)


def test_describe_avatar_golden():
  values = {"top": "shortCurly", "hairColor": "#724133", "accessories": "round",
            "mouth": "smile"}
  assert (avatars.describe_avatar(values) ==
          "a cartoon face with short curly brown hair, round glasses and a smile")
  values.update(skinColor="#edb98a", eyes="wink", clothes="hoodie", clothesColor="#5199e4",
                backgroundColor="#b6e3f4", facialHair=None)
  assert avatars.describe_avatar(values) == (
      "a cartoon face with light skin, short curly brown hair, round glasses, a wink and a "
      "smile, wearing a blue hoodie, on a light blue background")


def test_every_avataaars_variant_has_a_phrase():
  names = avatars.attribute_names()
  assert set(names["top"]) == set(avatars._TOPS)
  assert set(names["accessories"]) == set(avatars._ACCESSORIES)
  assert set(names["facialHair"]) == set(avatars._FACIAL_HAIR)
  assert set(names["eyes"]) == set(avatars._EYES)
  assert set(names["eyebrows"]) == set(avatars._EYEBROWS)
  assert set(names["mouth"]) == set(avatars._MOUTHS)
  assert set(names["clothes"]) == set(avatars._CLOTHES)
  for palette, role in (("skinColor", "skin"), ("hairColor", "hair"), ("clothesColor", "fabric"),
                        ("hatColor", "fabric"), ("backgroundColor", "background")):
    assert set(names[palette]) <= set(avatars.COLOR_NAMES[role]), palette


def test_licence_metadata():
  meta = avatars.style_license("avataaars")
  assert "Free for personal and commercial use" in meta["license"]["name"]
  assert meta["creator"]["name"] == "Pablo Stanley"


def test_another_style_renders():
  ds = avatars.load_avatars("train", image_size=32, num_examples=4, style="micah")
  assert ds.images.shape == (4, 32, 32, 3) and ds.labels.max() < ds.num_classes
  captions = avatars.avatar_captions("train", num_examples=4, style="micah")
  assert all(c.startswith("a cartoon micah face with ") for c in captions)
