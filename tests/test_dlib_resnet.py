"""Tests of dlib's face-recognition ResNet in Flax (jgan.models.dlib_resnet) and its .dat reader.

The weights come from pip ``face-recognition-models`` (a jgan dependency): without it the tests
that need the file fail with the install hint rather than skip. ``tests/data/dlib_reference.npz``
holds dlib's own descriptors of six 150x150 images (``scripts/make_dlib_reference.py``); dlib
itself is not needed here. One forward compiles once (~1-2 s on 2 CPU cores).
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import sys

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgan.models import dlib_format, dlib_resnet
from jgan.models.dlib_resnet import DlibFaceResNet

FIXTURE = os.path.join(os.path.dirname(__file__), "data", "dlib_reference.npz")


def _model_path() -> str:
  try:
    return dlib_resnet.default_dlib_face_resnet_path()
  except FileNotFoundError as e:  # fail, never skip: face-recognition-models is a dependency
    pytest.fail(str(e))


@pytest.fixture(scope="module")
def variables():
  return dlib_resnet.load_dlib_face_resnet(_model_path())


@pytest.fixture(scope="module")
def reference():
  with np.load(FIXTURE) as f:
    return {k: f[k] for k in f.files}


@pytest.fixture(scope="module")
def embed(variables):
  fwd = jax.jit(DlibFaceResNet().apply)
  return lambda x: np.asarray(fwd(variables, jnp.asarray(x, jnp.float32)))


def _to_unit_range(images_uint8: np.ndarray) -> np.ndarray:
  return images_uint8.astype(np.float32) / 127.5 - 1.0


# ---------------------------------------------------------------------------------------------
# The module on random weights (no file).
# ---------------------------------------------------------------------------------------------


def test_shapes_and_dtypes_random_weights():
  model = DlibFaceResNet()
  x = jax.random.uniform(jax.random.key(0), (2, 150, 150, 3), minval=-1, maxval=1)
  variables = jax.jit(model.init)(jax.random.key(1), x)
  assert set(variables) == {"params"}
  out, state = jax.jit(lambda v, x: model.apply(v, x, capture_intermediates=True,
                                                mutable=["intermediates"]))(variables, x)
  chex.assert_shape(out, (2, 128))
  assert out.dtype == jnp.float32
  chex.assert_tree_all_finite(out)
  inter = state["intermediates"]
  # dlib's sizes: 150 -> conv 7x7/2 unpadded 72 -> max pool 3x3/2 35 -> 17 -> 8 -> 4 -> 2.
  want = {"stem_conv": (72, 32), "alevel4_2": (35, 32), "alevel3_0": (17, 64),
          "alevel3_3": (17, 64), "alevel2_0": (8, 128), "alevel1_0": (4, 256),
          "alevel1_2": (4, 256), "alevel0_0": (2, 256)}
  for name, (s, c) in want.items():
    assert inter[name]["__call__"][0].shape == (2, s, s, c), name
  bf16 = jax.eval_shape(DlibFaceResNet(dtype=jnp.bfloat16).apply, variables, x)
  assert bf16.shape == (2, 128) and bf16.dtype == jnp.float32
  with pytest.raises(ValueError, match=r"\[B, 150, 150, 3\]"):
    model.apply(variables, jnp.zeros((1, 64, 64, 3)))


def test_zero_padded_add_is_dlib_add_prev():
  a = jnp.arange(9.0).reshape(1, 3, 3, 1)  # e.g. the stride-2 conv branch: 3x3, 1 channel
  b = 100 + jnp.arange(32.0).reshape(1, 4, 4, 2)  # the pooled skip: 4x4, 2 channels
  out = dlib_resnet.zero_padded_add(a, b)
  assert out.shape == (1, 4, 4, 2)
  np.testing.assert_array_equal(out[0, :3, :3, 0], a[0, :, :, 0] + b[0, :3, :3, 0])
  np.testing.assert_array_equal(out[0, 3, :, 0], b[0, 3, :, 0])  # a is zero past its end
  np.testing.assert_array_equal(out[0, :, 3, 0], b[0, :, 3, 0])
  np.testing.assert_array_equal(out[..., 1], b[..., 1])  # a's missing channel is zero
  np.testing.assert_array_equal(dlib_resnet.zero_padded_add(a, a), 2 * a)


# ---------------------------------------------------------------------------------------------
# The .dat reader.
# ---------------------------------------------------------------------------------------------


def _reader(data: bytes) -> dlib_format._Reader:
  return dlib_format._Reader(data, "mem.dat")


def test_reader_hand_values():
  # dlib's integers: control byte (0x80 = negative, low bits = byte count), little-endian bytes.
  assert _reader(b"\x01\x00").int32("x") == 0
  assert _reader(b"\x02\x00\x01").int64("x") == 256
  assert _reader(b"\x81\x1c").int32("x") == -28
  # floats: int64 mantissa, int16 exponent. 1.0 as a double: 16 * 2**-4; 0.04f: 0xa3d70a * 2**-28
  assert _reader(b"\x01\x10\x81\x04").real("x") == 1.0
  assert _reader(b"\x03\x0a\xd7\xa3\x81\x1c").real("x") == np.float32(0.04)
  assert _reader(b"\x01\x00\x01\x0b").real("x") == 0.0
  assert _reader(b"\x01\x01\x02\x00\x7d").real("x") == float("inf")  # exponent 32000
  assert _reader(b"\x01\x04con_").string("x") == "con_"
  assert _reader(b"1").boolean("x") and not _reader(b"0").boolean("x")
  t = _reader(b"\x01\x02" + b"\x01\x01\x01\x02\x01\x01\x01\x01"
              + np.array([1.5, -2.0], "<f4").tobytes()).tensor("t")
  assert t.shape == (1, 2, 1, 1) and t.dtype == np.float32
  np.testing.assert_array_equal(t.reshape(-1), [1.5, -2.0])
  with pytest.raises(ValueError, match=r"mem\.dat: .*truncated.*needs 8 bytes, 4 left"):
    _reader(b"\x01\x02" + b"\x01\x01\x01\x02\x01\x01\x01\x01" + b"\0" * 4).tensor("t")
  with pytest.raises(ValueError, match="control byte 0x05"):
    _reader(b"\x05\x01\x02\x03\x04\x05").int32("x")  # 5 bytes cannot be an int


def _enc_int(v: int) -> bytes:
  """dlib's integer encoding (the inverse of `_Reader.integer`)."""
  mag = abs(v).to_bytes(max(1, (abs(v).bit_length() + 7) // 8), "little")
  return bytes([len(mag) | (0x80 if v < 0 else 0)]) + mag


def _enc_real(x: float) -> bytes:
  """dlib's float_details of a double: the frexp mantissa as a 53-bit integer, low zero bytes
  shifted off into the exponent."""
  m, e = math.frexp(x)
  mantissa, exponent = int(m * 2**53), e - 53
  for _ in range(8):
    if mantissa & 0xFF:
      break
    mantissa >>= 8
    exponent += 8
  return _enc_int(mantissa) + _enc_int(exponent)


def _enc_tensor(a: np.ndarray) -> bytes:
  shape = a.shape + (1,) * (4 - a.ndim)
  return (_enc_int(2) + b"".join(_enc_int(d) for d in shape)
          + np.asarray(a, "<f4").tobytes())


def _enc_alias(shape) -> bytes:
  return _enc_int(1) + b"".join(_enc_int(d) for d in shape)


def test_reader_converts_a_batch_norm_record_to_affine():
  """A file saved from the training type (bn_con where the deployed type has affine) is folded
  into an affine layer the way dlib's affine_(const bn_&) does."""
  rng = np.random.default_rng(0)
  k = 5
  gamma, beta, mean = rng.normal(size=(3, k)).astype(np.float32)
  var = rng.uniform(0.5, 2, k).astype(np.float32)
  eps = 1e-5
  rec = (_enc_int(7) + b"bn_con2" + _enc_tensor(np.concatenate([gamma, beta])[:, None])
         + _enc_alias((1, k, 1, 1)) * 2
         + _enc_tensor(np.zeros((1, k))) * 2  # means, invstds (of the last training batch)
         + _enc_tensor(mean[None]) + _enc_tensor(var[None])
         + _enc_int(100) + _enc_int(1000) + _enc_real(1.0) * 3 + _enc_real(0.0) + _enc_real(eps))
  assert _enc_real(1.0) == b"\x01\x10\x81\x04" and _enc_real(0.0) == b"\x01\x00\x01\x0b"
  r = _reader(rec)
  out = dlib_format._read_details(r, dlib_format.LayerSpec("affine"))
  assert r.pos == len(rec)
  scale = gamma / np.sqrt(var + np.float32(eps))
  np.testing.assert_allclose(out["gamma"], scale, rtol=1e-6)
  np.testing.assert_allclose(out["beta"], beta - scale * mean, rtol=1e-6, atol=1e-6)


def test_parameter_count_and_layout(variables):
  shapes = jax.eval_shape(DlibFaceResNet().init, jax.random.key(0),
                          jax.ShapeDtypeStruct((1, 150, 150, 3), jnp.float32))
  chex.assert_trees_all_equal_shapes_and_dtypes(variables, shapes)
  n = sum(int(np.prod(v.shape)) for v in jax.tree.leaves(variables))
  assert n == 5_614_592  # "about 5.6M"; 29 convs (with biases), 29 affines, fc 256x128
  layers = dlib_resnet.dlib_face_resnet_layers()
  assert sum(spec.kind == "con" for spec in layers) == 29
  assert len(layers) == 132  # dlib's layer<0> .. layer<131>, input last
  p = variables["params"]
  assert p["stem_conv"]["kernel"].shape == (7, 7, 3, 32)
  assert p["alevel3_0"]["conv1"]["kernel"].shape == (3, 3, 32, 64)
  assert p["fc"]["kernel"].shape == (256, 128) and "bias" not in p["fc"]
  assert np.all(np.isfinite(np.concatenate([v.ravel() for v in jax.tree.leaves(p)])))


def test_reader_records_match_the_file():
  records = dlib_format.read_dlib_net(_model_path(), dlib_resnet.dlib_face_resnet_layers())
  assert records[0]["avg_rgb"] == pytest.approx(dlib_resnet.MEAN_RGB)
  assert records[-1]["margin"] == pytest.approx(0.04)  # loss_metric_2 in the file
  assert records[-1]["distance_threshold"] == pytest.approx(0.6)
  assert records[1]["filters"].shape == (32, 3, 7, 7)  # dlib's [out, in, rows, cols]


def test_truncated_and_corrupt_files(tmp_path):
  src = _model_path()
  with open(src, "rb") as f:
    data = f.read()
  for cut in (10, 3_000, len(data) // 2, len(data) - 5):
    path = tmp_path / f"cut{cut}.dat"
    path.write_bytes(data[:cut])
    with pytest.raises(ValueError) as e:
      dlib_resnet.load_dlib_face_resnet(path)
    msg = str(e.value)
    assert str(path) in msg and "truncated" in msg and "layer<" in msg, msg
  # A wrong byte inside a version string names the layer and what was expected.
  pos = data.index(b"max_pool_2")
  path = tmp_path / "corrupt.dat"
  path.write_bytes(data[:pos] + b"min" + data[pos + 3:])
  with pytest.raises(ValueError, match=r"corrupt\.dat.*'max_pool_2'.*found 'min_pool_2'.*"
                                       r"layer<127> \(max_pool 3x3 stride 2 pad 0\)"):
    dlib_resnet.load_dlib_face_resnet(path)
  path = tmp_path / "extra.dat"
  path.write_bytes(data + b"\0\0")
  with pytest.raises(ValueError, match="2 unexpected bytes after the network"):
    dlib_resnet.load_dlib_face_resnet(path)
  path = tmp_path / "model.dat.bz2"
  path.write_bytes(b"BZh91AY&SY")
  with pytest.raises(ValueError, match="bzip2-compressed.*bunzip2"):
    dlib_resnet.load_dlib_face_resnet(path)
  path = tmp_path / "other.dat"  # a different net: another conv width in the stem
  layers = dlib_resnet.dlib_face_resnet_layers()
  layers[1] = dlib_format.LayerSpec("con", (16, 7, 7, 2, 2, 0, 0), "stem_conv")
  shutil.copy(src, path)
  with pytest.raises(ValueError, match=r"other\.dat.*\(32, 7, 7, 2, 2, 0, 0\), expected "
                                       r"\(16, 7, 7, 2, 2, 0, 0\)"):
    dlib_format.read_dlib_net(path, layers)


def test_missing_file_and_package(tmp_path, monkeypatch):
  with pytest.raises(FileNotFoundError, match="pip install face-recognition-models"):
    dlib_resnet.load_dlib_face_resnet(tmp_path / "none.dat")
  monkeypatch.setitem(sys.modules, "face_recognition_models", None)  # import fails
  with pytest.raises(FileNotFoundError, match="pip install face-recognition-models"):
    dlib_resnet.load_dlib_face_resnet()


# ---------------------------------------------------------------------------------------------
# Against dlib's own output.
# ---------------------------------------------------------------------------------------------


def test_matches_dlib_descriptors(reference, embed):
  with open(_model_path(), "rb") as f:
    sha = hashlib.sha256(f.read()).hexdigest()
  assert sha == str(reference["model_sha256"]), (
      "the installed face-recognition-models .dat differs from the one the fixture was made "
      "with; re-run scripts/make_dlib_reference.py")
  images = reference["images"]
  assert images.shape == (6, 150, 150, 3) and images.dtype == np.uint8
  out = embed(_to_unit_range(images))
  want = reference["descriptors"]
  diff = np.abs(out - want).max()
  print(f"max abs difference to dlib {reference['dlib_version']}: {diff:.2e}")
  assert diff < 1e-4, diff  # measured 2.7e-7
  np.testing.assert_allclose(np.linalg.norm(out, axis=1), np.linalg.norm(want, axis=1),
                             atol=1e-5)


def test_distances_preserve_identity(reference, embed):
  names = list(reference["names"])
  images = reference["images"]
  noise = np.random.default_rng(0).integers(-3, 4, images[0].shape)
  perturbed = np.clip(images[0].astype(np.int32) + noise, 0, 255).astype(np.uint8)
  emb = embed(_to_unit_range(np.concatenate([images, perturbed[None]])))
  e = dict(zip(names + ["astronaut_noise"], emb))
  d = lambda a, b: float(np.linalg.norm(e[a] - e[b]))
  same = [d("astronaut", "astronaut_noise"), d("astronaut", "astronaut_brighter"),
          d("astronaut", "astronaut_mirrored")]
  different = [d("astronaut", "lfw_0"), d("astronaut", "lfw_50"), d("lfw_0", "lfw_50"),
               d("astronaut", "smooth_random")]
  assert same[0] < 0.05 and same[1] < 0.05  # measured 0.02 for the brighter one
  assert max(same) < dlib_resnet.SAME_PERSON_DISTANCE < min(different), (same, different)
