"""Tests for image folders, CelebA (TFDS and folder), dataset options and image_size resizing."""

from __future__ import annotations

import gzip
import logging
import os
import sys
import tempfile
import threading
import types

import hypothesis
import ml_collections
import numpy as np
import pytest
from hypothesis import strategies as st
from PIL import Image

import jgan.data
from jgan import data
from jgan.config import base_config
from jgan.data import folder, offline, transforms

WHITE = (255, 255, 255)


# ------------------------------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def jgan_data_dir(tmp_path, monkeypatch):
  """A fresh $JGAN_DATA_DIR (so the folder cache goes to tmp), no system FashionMNIST, and an
  empty in-process folder cache."""
  root = tmp_path / "jgan-data"
  root.mkdir()
  monkeypatch.setenv("JGAN_DATA_DIR", str(root))
  monkeypatch.setattr(offline, "SYSTEM_FASHION_MNIST_DIR", str(tmp_path / "no-system-dir"))
  folder._MEMORY_CACHE.clear()
  yield root
  folder._MEMORY_CACHE.clear()


def _uniform(size_wh, colour, mode="RGB") -> Image.Image:
  return Image.new(mode, size_wh, colour)


def _write_mixed_folder(root) -> list[tuple[str, tuple[int, int, int], int]]:
  """Writes images of mixed formats, modes and sizes in nested folders, plus junk.

  Returns (relative path, expected RGB colour, tolerance) of the readable images, in the
  sorted order the loader uses. Each image is one colour, so any crop and resize keeps it.
  """
  os.makedirs(root / "sub" / "deeper", exist_ok=True)
  os.makedirs(root / ".hidden_dir", exist_ok=True)
  expected = []

  _uniform((40, 30), (200, 10, 10)).save(root / "a_rgb.JPG", quality=95)
  expected.append(("a_rgb.JPG", (200, 10, 10), 4))
  _uniform((17, 23), (0, 0, 0, 0), "RGBA").save(root / "b_transparent.png")
  expected.append(("b_transparent.png", WHITE, 0))  # Alpha is composited on white.
  _uniform((12, 12), 77, "L").save(root / "c_grey.png")
  expected.append(("c_grey.png", (77, 77, 77), 0))
  _uniform((13, 9), 255, "1").save(root / "d_bilevel.bmp")
  expected.append(("d_bilevel.bmp", WHITE, 0))
  Image.new("CMYK", (20, 16), (0, 255, 255, 0)).save(root / "e_cmyk.jpeg", quality=95)
  expected.append(("e_cmyk.jpeg", (255, 0, 0), 6))
  _uniform((21, 14), (10, 20, 220)).save(root / "sub" / "f.webp", lossless=True)
  expected.append(("sub/f.webp", (10, 20, 220), 0))
  frames = [_uniform((16, 16), c).convert("P") for c in ((255, 0, 0), (0, 0, 255))]
  frames[0].save(root / "sub" / "g_anim.GIF", save_all=True, append_images=frames[1:])
  expected.append(("sub/g_anim.GIF", (255, 0, 0), 0))  # The first frame.
  Image.fromarray(np.full((10, 14), 0x8080, np.uint16)).save(root / "sub" / "deeper" / "h16.png")
  expected.append(("sub/deeper/h16.png", (128, 128, 128), 0))  # 16-bit scaled, not clipped.
  palette = _uniform((11, 11), (0, 255, 0)).convert("P")
  palette.save(root / "sub" / "deeper" / "i_palette.png")
  expected.append(("sub/deeper/i_palette.png", (0, 255, 0), 0))

  # Unreadable: a truncated JPEG and random bytes; ignored: text, hidden files.
  good = root / "a_rgb.JPG"
  (root / "sub" / "broken.jpg").write_bytes(good.read_bytes()[:len(good.read_bytes()) // 3])
  (root / "garbage.PNG").write_bytes(np.random.default_rng(0).bytes(300))
  (root / "notes.txt").write_text("not an image")
  _uniform((8, 8), (1, 2, 3)).save(root / ".hidden.png")
  _uniform((8, 8), (1, 2, 3)).save(root / ".hidden_dir" / "x.png")
  return sorted(expected)


@pytest.fixture
def mixed_folder(tmp_path):
  root = tmp_path / "images"
  return root, _write_mixed_folder(root)


class _CountingDecode:
  """Wraps folder._decode_image and counts its calls (from the decoding threads)."""

  def __init__(self):
    self.calls = 0
    self._decode = folder._decode_image
    self._lock = threading.Lock()

  def __call__(self, path, image_size):
    with self._lock:
      self.calls += 1
    return self._decode(path, image_size)


@pytest.fixture
def count_decodes(monkeypatch):
  counter = _CountingDecode()
  monkeypatch.setattr(folder, "_decode_image", counter)
  return counter


def _skip_warnings(caplog) -> list[str]:
  return [r.getMessage() for r in caplog.records
          if r.name == "jgan.data" and r.levelno == logging.WARNING and "Skipped" in r.getMessage()]


# -------------------------------------------------------------------------------- image folder


def test_mixed_folder_loads_as_rgb_squares(mixed_folder, caplog, count_decodes):
  root, expected = mixed_folder
  with caplog.at_level(logging.INFO, logger="jgan.data"):
    ds = data.load_dataset("image_folder", image_dir=str(root), image_size=8)
  assert ds.images.shape == (len(expected), 8, 8, 3) and ds.images.dtype == np.uint8
  assert ds.labels is None and ds.num_classes is None and ds.name == "image_folder"
  assert not ds.images.flags.writeable
  for image, (rel, colour, tolerance) in zip(ds.images, expected):
    diff = np.abs(image.astype(int) - np.array(colour)).max()
    assert diff <= tolerance, (rel, image[4, 4], colour)
  # 9 images + 2 unreadable decoded; .txt and hidden files never opened.
  assert count_decodes.calls == len(expected) + 2
  warnings = _skip_warnings(caplog)
  assert len(warnings) == 1, warnings  # ONE warning for all unreadable files.
  assert f"Skipped 2 of {len(expected) + 2} image files in {root}" in warnings[0]
  assert "sub/broken.jpg" in warnings[0] and "garbage.PNG" in warnings[0]
  assert "2 unreadable skipped" in ds.source and str(root) in ds.source


def test_order_is_sorted_and_both_splits_are_every_image(mixed_folder):
  root, expected = mixed_folder
  images, others = folder.list_images(str(root))
  assert images == sorted([rel for rel, _, _ in expected] + ["sub/broken.jpg", "garbage.PNG"])
  assert others == ["notes.txt"]
  train = data.load_dataset("image_folder", split="train", image_dir=str(root), image_size=8)
  test = data.load_dataset("image_folder", split="test", image_dir=str(root), image_size=8)
  np.testing.assert_array_equal(train.images, test.images)


def test_symlink_loop_is_walked_once(tmp_path):
  root = tmp_path / "loop"
  root.mkdir()
  _uniform((8, 8), (9, 9, 9)).save(root / "x.png")
  os.symlink(root, root / "again")
  images, _ = folder.list_images(str(root))
  assert images == ["x.png"]


def test_large_jpeg_draft_decode_matches_full_decode(tmp_path):
  """A JPEG >= 4x the target is decoded at a reduced DCT scale (>= 2x the target) first."""
  y, x = np.mgrid[0:384, 0:512]
  image = np.stack([x / 2, y / 1.5, 255 - x / 2], -1).astype(np.uint8)  # Smooth gradients.
  path = tmp_path / "big.jpg"
  Image.fromarray(image).save(path, quality=95)
  fast = folder._decode_image(str(path), 16)
  with Image.open(path) as full:
    want = np.asarray(transforms.center_crop_resize(full.convert("RGB"), 16))
  assert fast.shape == (16, 16, 3)
  assert np.abs(fast.astype(int) - want).max() <= 3


def test_image_size_zero_keeps_size_or_explains(tmp_path):
  same = tmp_path / "same"
  same.mkdir()
  for i in range(3):
    _uniform((6, 5), (i, 0, 0)).save(same / f"{i}.png")
  ds = data.load_dataset("image_folder", image_dir=str(same))  # image_size 0: as stored.
  assert ds.images.shape == (3, 5, 6, 3)
  _uniform((7, 7), (0, 0, 0)).save(same / "z_other.png")
  with pytest.raises(ValueError, match=r"differ in size.*z_other.png.*image_size"):
    data.load_dataset("image_folder", image_dir=str(same))


def test_exif_orientation_is_applied(tmp_path):
  root = tmp_path / "exif"
  root.mkdir()
  exif = Image.Exif()
  exif[0x0112] = 6  # Rotate 90 degrees clockwise to display.
  _uniform((20, 10), (50, 60, 70)).save(root / "r.jpg", exif=exif)
  ds = data.load_dataset("image_folder", image_dir=str(root))
  assert ds.images.shape == (1, 20, 10, 3)  # Stored 20 wide, 10 high; shown 10 wide.


def test_cache_hit_then_invalidated_on_change(mixed_folder, count_decodes, caplog, jgan_data_dir):
  root, expected = mixed_folder
  first = data.load_dataset("image_folder", image_dir=str(root), image_size=8)
  decoded = count_decodes.calls
  assert decoded == len(expected) + 2
  cache_files = os.listdir(jgan_data_dir / "folder_cache")
  assert cache_files == [os.path.basename(folder.cache_path(str(root), 8))]  # No temp files left.
  assert cache_files[0].startswith("images-8-") and cache_files[0].endswith(".npz")

  folder._MEMORY_CACHE.clear()  # A new process: the .npz cache is read, nothing decoded.
  with caplog.at_level(logging.WARNING, logger="jgan.data"):
    second = data.load_dataset("image_folder", image_dir=str(root), image_size=8)
  assert count_decodes.calls == decoded
  np.testing.assert_array_equal(first.images, second.images)
  assert "cache " in second.source and "decoded" not in second.source
  assert "garbage.PNG" in _skip_warnings(caplog)[0]  # The skipped files are still reported.

  third = data.load_dataset("image_folder", image_dir=str(root), image_size=8)
  assert count_decodes.calls == decoded and third.images is second.images  # In memory.

  # Another size is another cache.
  data.load_dataset("image_folder", image_dir=str(root), image_size=4)
  assert count_decodes.calls == 2 * decoded
  assert len(os.listdir(jgan_data_dir / "folder_cache")) == 2

  # Rewriting one image invalidates the cache (size and mtime are in the key).
  changed = root / "c_grey.png"
  _uniform((12, 12), 200, "L").save(changed)
  st_ = os.stat(changed)
  os.utime(changed, ns=(st_.st_atime_ns, st_.st_mtime_ns + 10**9))
  folder._MEMORY_CACHE.clear()
  fourth = data.load_dataset("image_folder", image_dir=str(root), image_size=8)
  assert count_decodes.calls == 3 * decoded
  index = [rel for rel, _, _ in expected].index("c_grey.png")
  assert fourth.images[index].min() == fourth.images[index].max() == 200
  assert len(os.listdir(jgan_data_dir / "folder_cache")) == 2  # Replaced, not accumulated.

  # Adding an image invalidates it too.
  _uniform((9, 9), (1, 1, 1)).save(root / "sub" / "new.png")
  fifth = data.load_dataset("image_folder", image_dir=str(root), image_size=8)
  assert len(fifth) == len(expected) + 1 and count_decodes.calls == 4 * decoded + 1


def test_corrupt_cache_is_ignored(mixed_folder, count_decodes):
  root, expected = mixed_folder
  data.load_dataset("image_folder", image_dir=str(root), image_size=8)
  with open(folder.cache_path(str(root), 8), "wb") as f:
    f.write(b"PK\x03\x04 not really a zip")
  folder._MEMORY_CACHE.clear()
  ds = data.load_dataset("image_folder", image_dir=str(root), image_size=8)
  assert len(ds) == len(expected) and count_decodes.calls == 2 * (len(expected) + 2)


def test_unwritable_cache_still_loads(mixed_folder, monkeypatch, tmp_path):
  root, expected = mixed_folder
  blocker = tmp_path / "a-file"
  blocker.write_text("")
  monkeypatch.setenv("JGAN_DATA_DIR", str(blocker))  # folder_cache cannot be created under it.
  ds = data.load_dataset("image_folder", image_dir=str(root), image_size=8)
  assert len(ds) == len(expected) and "not cached" in ds.source


def test_decompression_bombs_are_unreadable_and_limit_kept(tmp_path, monkeypatch, caplog):
  monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
  root = tmp_path / "bombs"
  root.mkdir()
  _uniform((20, 20), (5, 5, 5)).save(root / "ok.png")
  _uniform((40, 40), (5, 5, 5)).save(root / "over_limit.png")  # > limit: Pillow only warns.
  _uniform((50, 50), (5, 5, 5)).save(root / "over_twice.png")  # > 2x limit: Pillow raises.
  with caplog.at_level(logging.WARNING, logger="jgan.data"), \
      pytest.warns(Image.DecompressionBombWarning):
    ds = data.load_dataset("image_folder", image_dir=str(root), image_size=4)
  assert len(ds) == 1
  message = _skip_warnings(caplog)[0]
  assert "Skipped 2 of 3" in message and message.count("DecompressionBombError") == 2
  assert Image.MAX_IMAGE_PIXELS == 1000  # jgan never disables the limit.


def test_empty_missing_and_unset_folders(tmp_path):
  empty = tmp_path / "empty"
  empty.mkdir()
  with pytest.raises(data.DatasetNotFoundError) as e:
    data.load_dataset("image_folder", image_dir=str(empty))
  message = str(e.value)
  assert str(empty) in message and "no image files" in message and "it is empty" in message
  assert ".jpg" in message and ".webp" in message and "--config.data.dir" in message

  (empty / "readme.md").write_text("x")
  with pytest.raises(data.DatasetNotFoundError, match=r"other file\(s\), e\.g\. readme\.md"):
    data.load_dataset("image_folder", image_dir=str(empty))

  missing = tmp_path / "missing"
  with pytest.raises(data.DatasetNotFoundError, match=f"{missing} does not exist") as e:
    data.load_dataset("image_folder", image_dir=str(missing))
  assert ".png" in str(e.value) and not missing.exists()

  with pytest.raises(ValueError, match="needs image_dir"):
    data.load_dataset("image_folder")


def test_no_readable_image_is_corrupt(tmp_path):
  root = tmp_path / "junk"
  root.mkdir()
  (root / "a.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
  (root / "b.png").write_bytes(b"")
  with pytest.raises(data.CorruptDatasetError) as e:
    data.load_dataset("image_folder", image_dir=str(root), image_size=8)
  assert str(root) in str(e.value) and "None of the 2" in str(e.value) and ".gif" in str(e.value)
  assert not os.path.exists(folder.cache_path(str(root), 8))  # Nothing cached.


_MAGIC = [b"", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"BM", b"\xff\xd8\xff\xe0",
          b"RIFF\x00\x00\x00\x00WEBP"]  # Garbage behind real headers reaches the decoders.


@hypothesis.settings(max_examples=40, deadline=None,
                     suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture])
@hypothesis.given(payload=st.binary(max_size=400), magic=st.sampled_from(_MAGIC),
                  extension=st.sampled_from(folder.IMAGE_EXTENSIONS + (".JPG", ".Png")))
def test_random_bytes_are_skipped_never_crash(monkeypatch, payload, magic, extension):
  monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 200_000)  # Garbage headers stay small.
  with tempfile.TemporaryDirectory() as tmp:
    root = os.path.join(tmp, "images")
    os.makedirs(root)
    _uniform((6, 6), (9, 99, 199)).save(os.path.join(root, "good.png"))
    with open(os.path.join(root, "random" + extension), "wb") as f:
      f.write(magic + payload)
    ds = folder.load_image_folder(root, image_size=4, cache_directory=os.path.join(tmp, "cache"))
    assert len(ds) in (1, 2) and ds.images.shape[1:] == (4, 4, 3)
    good = ds.images[0]  # "good.png" sorts before "random.*".
    np.testing.assert_array_equal(good, np.broadcast_to(np.uint8([9, 99, 199]), (4, 4, 3)))


# ---------------------------------------------------------------------------------------- CelebA


def _celeba_like(colour, bands=(255, 0, 255)) -> np.ndarray:
  """A 218x178 image: one colour, with bands in rows 0..15 and 208..217 that a 178x178 center
  crop (rows 20..197) removes. They end on 16-row JPEG block edges, so they do not bleed; a resize
  that read pixels outside the crop would show them."""
  image = np.empty((218, 178, 3), np.uint8)
  image[:] = colour
  image[:16] = bands
  image[208:] = bands
  return image


def test_celeb_a_not_found_names_both_ways_and_offline_experiment(tmp_path):
  nowhere = tmp_path / "no-tfds"
  with pytest.raises(data.DatasetNotFoundError) as e:
    data.load_dataset("celeb_a", data_dir=str(nowhere))
  message = str(e.value)
  assert "'celeb_a'" in message and "tfds: celeb_a" in message and "not prepared" in message
  assert "folder: no CelebA image folder given" in message
  assert "--config.data.data_dir" in message and "download_and_prepare()" in message
  assert "--config.data.dir=/path/to/img_align_celeba" in message
  assert "dcgan_avatars" in message and "wgan_gp_avatars" in message
  assert not nowhere.exists()


def test_celeb_a_from_a_folder(tmp_path):
  root = tmp_path / "img_align_celeba"
  root.mkdir()
  colours = [(200, 150, 100), (30, 60, 90), (120, 20, 220)]
  for i, colour in enumerate(colours):
    Image.fromarray(_celeba_like(colour)).save(root / f"{i + 1:06d}.jpg", quality=95)
  # Default sources ("tfds", "folder"); tfds is not prepared there, so the folder serves it.
  ds = data.load_dataset("celeb_a", data_dir=str(tmp_path / "no-tfds"), image_dir=str(root))
  assert ds.images.shape == (3, 64, 64, 3) and ds.name == "celeb_a"  # 64 is celeb_a's default.
  assert ds.labels is None and "image folder" in ds.source
  for image, colour in zip(ds.images, colours):  # The bands are cropped away.
    assert np.abs(image.astype(int) - colour).max() <= 4


@pytest.fixture
def tiny_tfds_celeb_a(tmp_path):
  """Prepares a tiny dataset *as* TFDS "celeb_a": a subclass of the real builder (same name,
  version and features: image 218x178x3 JPEG, landmarks, attributes, identity) whose examples
  are generated here. ``tfds.builder("celeb_a", data_dir=...)`` then finds it prepared."""
  tfds = pytest.importorskip("tensorflow_datasets")
  tfds.disable_progress_bar()
  colours = {"train": [(200, 150, 100), (30, 60, 90), (120, 20, 220)],
             "test": [(10, 200, 10), (250, 250, 0)]}

  class TinyCelebA(tfds.builder_cls("celeb_a"), skip_registration=True):
    name = "celeb_a"

    def _split_generators(self, dl_manager):
      del dl_manager
      return {split: self._generate_examples(split) for split in colours}

    def _generate_examples(self, split):  # pylint: disable=arguments-differ
      features = self.info.features
      for i, colour in enumerate(colours[split]):
        yield f"{split}{i:06d}.jpg", {
            "image": Image.fromarray(_celeba_like(colour)),
            "landmarks": {k: i for k in features["landmarks"].keys()},
            "attributes": {k: bool(i % 2) for k in features["attributes"].keys()},
            "identity": {k: i for k in features["identity"].keys()},
        }

  data_dir = str(tmp_path / "tfds")
  TinyCelebA(data_dir=data_dir, file_format="array_record").download_and_prepare()
  return data_dir, colours


@pytest.mark.parametrize("split", ["train", "test"])
def test_tfds_celeb_a_center_crop_and_resize(tiny_tfds_celeb_a, split):
  data_dir, colours = tiny_tfds_celeb_a
  ds = data.load_dataset("celeb_a", split=split, data_dir=data_dir, image_size=16)
  assert ds.images.shape == (len(colours[split]), 16, 16, 3) and ds.images.dtype == np.uint8
  assert ds.labels is None and ds.num_classes is None
  assert ds.source.startswith("tfds:celeb_a:2.1.0") and "16x16" in ds.source
  # Records come in TFDS's hashed order: match each image to its colour; no band survives.
  got = sorted(tuple(int(v) for v in np.rint(image.mean((0, 1)))) for image in ds.images)
  for image in ds.images:
    assert (image.max((0, 1)).astype(int) - image.min((0, 1))).max() <= 4  # Uniform: no band.
  for mean, colour in zip(got, sorted(colours[split])):
    assert np.abs(np.array(mean) - colour).max() <= 4, (mean, colour)
  # Exactly the shared transform applied to the stored (decoded) 218x178 images.
  full = data.load_dataset("celeb_a", split=split, data_dir=data_dir, sources=("tfds",),
                           image_size=0)
  assert full.images.shape[1:] == (64, 64, 3)  # celeb_a's image_size 0 means its default, 64.
  from jgan.data import tfds_source  # pylint: disable=import-outside-toplevel
  stored = tfds_source.load_tfds("celeb_a", split, data_dir)  # As stored: no crop, no resize.
  assert stored.images.shape[1:] == (218, 178, 3)
  want = np.stack([np.asarray(transforms.center_crop_resize(Image.fromarray(x), 16))
                   for x in stored.images])
  np.testing.assert_array_equal(ds.images, want)


def test_celeb_a_tfds_comes_before_folder(tiny_tfds_celeb_a, tmp_path):
  data_dir, colours = tiny_tfds_celeb_a
  root = tmp_path / "celeba_folder"
  root.mkdir()
  Image.fromarray(_celeba_like((1, 2, 3))).save(root / "1.jpg")
  ds = data.load_dataset("celeb_a", data_dir=data_dir, image_dir=str(root), image_size=8)
  assert ds.source.startswith("tfds:") and len(ds) == len(colours["train"])
  ds = data.load_dataset("celeb_a", sources="folder", image_dir=str(root), image_size=8)
  assert ds.source.startswith("image folder") and len(ds) == 1


# ------------------------------------------------------------------------ options, image_size


def _idx_bytes(array: np.ndarray) -> bytes:
  header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
  return header + array.astype(np.uint8).tobytes()


def _write_fashion(directory, images: np.ndarray, labels: np.ndarray) -> None:
  os.makedirs(directory, exist_ok=True)
  for prefix in ("train", "t10k"):
    for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
      with gzip.open(os.path.join(directory, f"{prefix}-{kind}-ubyte.gz"), "wb") as f:
        f.write(_idx_bytes(array))


def test_image_size_resizes_fashion_like_data(jgan_data_dir):
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (5, 28, 28)).astype(np.uint8)
  images[0] = 90  # A uniform image stays uniform.
  labels = np.arange(5, dtype=np.uint8)
  _write_fashion(jgan_data_dir / "fashion-mnist", images, labels)
  ds = data.load_dataset("fashion_mnist", sources="offline", image_size=32)
  assert ds.images.shape == (5, 32, 32, 1) and ds.images.dtype == np.uint8
  np.testing.assert_array_equal(ds.labels, labels)
  assert (ds.images[0] == 90).all() and not ds.images.flags.writeable
  assert "resized 28x28 -> 32x32" in ds.source
  assert np.abs(ds.images[1:].mean((1, 2, 3)) - images[1:].mean((1, 2))).max() < 3
  np.testing.assert_array_equal(ds.images, transforms.resize_images(images[..., None], 32))

  same = data.load_dataset("fashion_mnist", sources="offline", image_size=28)
  raw = data.load_dataset("fashion_mnist", sources="offline")
  assert same.images is raw.images  # The stored size: nothing to do.

  config = base_config()
  config.data.name = "fashion_mnist"
  config.data.sources = ("offline",)
  config.data.image_size = 32
  assert data.from_config(config.data, split="test").images.shape == (5, 32, 32, 1)


def test_resize_images_rgb_and_other_channels():
  rgb = np.zeros((2, 10, 6, 3), np.uint8)
  rgb[..., 1] = 100
  out = transforms.resize_images(rgb, 4)
  assert out.shape == (2, 4, 4, 3) and (out[..., 1] == 100).all() and (out[..., 0] == 0).all()
  two = np.full((1, 8, 8, 2), 7, np.uint8)
  assert (transforms.resize_images(two, 3) == 7).all()
  with pytest.raises(ValueError, match="positive"):
    transforms.resize_images(rgb, 0)


def test_synthetic_takes_image_size_too():
  ds = data.load_dataset("synthetic", image_shape=(28, 28, 1), num_examples=4, image_size=16)
  assert ds.images.shape == (4, 16, 16, 1)


def test_unknown_options_name_the_allowed_ones(tmp_path):
  with pytest.raises(TypeError) as e:
    data.load_dataset("image_folder", image_dir=str(tmp_path), num_classes=3)
  assert "['num_classes']" in str(e.value) and "'image_dir', 'image_size'" in str(e.value)
  assert "'num_classes' would only apply to 'synthetic'" in str(e.value)
  with pytest.raises(TypeError, match="'image_dir' would only apply to 'image_folder', 'celeb_a'"):
    data.load_dataset("mnist", image_dir=str(tmp_path))
  with pytest.raises(TypeError, match="'colour' is an option of no dataset"):
    data.load_dataset("celeb_a", colour=True)
  with pytest.raises(ValueError, match="image_size must be an integer >= 0"):
    data.load_dataset("synthetic", image_size=-1)


def test_sources_the_dataset_lacks(tmp_path):
  with pytest.raises(ValueError, match=r"no source among \('tfds', 'offline'\); its sources are "
                     r"\('folder',\).*--config\.data\.sources=folder"):
    data.load_dataset("image_folder", sources=("tfds", "offline"), image_dir=str(tmp_path))
  with pytest.raises(data.DatasetNotFoundError, match=r"not tried, as not in sources: folder"):
    data.load_dataset("celeb_a", sources=("tfds", "offline"), data_dir=str(tmp_path / "none"))
  assert set(data.DEFAULT_SOURCES) == set(data.DATASETS) == set(data.DATASET_OPTIONS)


def test_from_config_image_folder_and_celeb_a(mixed_folder):
  root, expected = mixed_folder
  config = base_config()
  config.data.name = "image_folder"
  config.data.sources = ("folder",)
  config.data.dir = str(root)
  config.data.image_size = 8
  ds = data.from_config(config.data)
  assert ds.images.shape == (len(expected), 8, 8, 3)
  config.data.name = "celeb_a"
  config.data.sources = ("tfds", "folder")
  config.data.image_size = 0  # celeb_a's default, 64.
  assert data.from_config(config.data, split="test").images.shape == (len(expected), 64, 64, 3)

  config.data.name = "mnist"
  with pytest.raises(ValueError, match=r"data.dir=.* is set, but dataset 'mnist' reads no folder"):
    data.from_config(config.data)

  old = ml_collections.ConfigDict({"name": "synthetic", "split": "train", "sources": ["tfds"],
                                   "data_dir": None, "synthetic_shape": [8, 8, 1],
                                   "synthetic_examples": 3})  # A config.json from before.
  assert data.from_config(old).images.shape == (3, 8, 8, 1)


def test_avatars_loader_is_lazy_and_gets_options(monkeypatch):
  calls = []

  def load_avatars(split, *, image_size=64, num_examples=10000, seed=0):
    calls.append(dict(split=split, image_size=image_size, num_examples=num_examples, seed=seed))
    return data.ArrayDataset(images=np.zeros((num_examples, image_size, image_size, 3), np.uint8),
                             labels=None, num_classes=None, name="avatars", source="fake")

  fake = types.ModuleType("jgan.data.avatars")
  fake.load_avatars = load_avatars
  monkeypatch.setitem(sys.modules, "jgan.data.avatars", fake)
  monkeypatch.setattr(jgan.data, "avatars", fake, raising=False)
  config = base_config()
  config.data.name = "avatars"
  config.data.image_size = 32
  config.data.num_examples = 6
  ds = data.from_config(config.data)  # The base config's sources ("tfds", "offline").
  assert ds.images.shape == (6, 32, 32, 3)
  assert calls == [dict(split="train", image_size=32, num_examples=6, seed=0)]
  config.data.image_size = 0
  config.data.num_examples = 0
  data.from_config(config.data, split="test")
  assert calls[-1] == dict(split="test", image_size=64, num_examples=10000, seed=0)  # Defaults.


def test_avatars_missing_module_is_not_found(monkeypatch):
  monkeypatch.setitem(sys.modules, "jgan.data.avatars", None)  # import raises ImportError.
  monkeypatch.delattr(jgan.data, "avatars", raising=False)
  with pytest.raises(data.DatasetNotFoundError, match="dicebear-core"):
    data.load_dataset("avatars")


def test_avatars_through_load_dataset():
  pytest.importorskip("dicebear")
  ds = data.load_dataset("avatars", image_size=16, num_examples=3)
  assert ds.images.shape == (3, 16, 16, 3) and ds.images.dtype == np.uint8 and ds.name == "avatars"
