"""Tests of the FID Inception (jgan.models.inception) and the torch-free .pth reader.

No torch here: the .pth files are written by `_TorchPickle` below, which emits the opcodes
``torch.save`` emits (protocol 2; GLOBAL ``collections OrderedDict``, ``torch._utils
_rebuild_tensor_v2``, ``torch FloatStorage``...; storages as BINPERSID of
``('storage', type, key, 'cpu', numel)``), in the zip layout (``<archive>/data.pkl``,
``<archive>/data/<key>``, ``<archive>/version``, ``<archive>/byteorder``) and in the legacy
layout (magic, protocol, sys_info, object, keys pickles, then count + bytes per storage).
The one forward pass compiles once (~20-40 s on 2 CPU cores).
"""

from __future__ import annotations

import collections
import os
import pickle
import struct
import time
import zipfile

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgan.models import inception
from jgan.models.inception import InceptionV3FID
from jgan.models.torch_checkpoint import UnsafeCheckpointError, load_torch_state_dict

# ---------------------------------------------------------------------------------------------
# A writer of torch.save files (no torch).
# ---------------------------------------------------------------------------------------------

_STORAGE_TYPES = {
    np.dtype("float32"): "FloatStorage", np.dtype("float16"): "HalfStorage",
    np.dtype("int64"): "LongStorage", np.dtype("uint8"): "ByteStorage",
    np.dtype("float64"): "DoubleStorage",
    np.dtype("uint16"): "BFloat16Storage",  # bfloat16 storages are given as their uint16 bits
}


class _Tensor:
  """A tensor to write: a view (offset, size, stride) of the storage ``key``."""

  def __init__(self, key, offset, size, stride):
    self.key, self.offset, self.size, self.stride = key, offset, tuple(size), tuple(stride)


class _Global:
  """An arbitrary global call ``module.name(*args)`` (to test refusal)."""

  def __init__(self, module, name, args):
    self.module, self.name, self.args = module, name, args


class _TorchPickle:
  """Emits a protocol-2 pickle the way torch.save's pickler does for a state dict."""

  def __init__(self, storage_types: dict[str, str], legacy: bool):
    self.out = bytearray(pickle.PROTO + b"\x02")
    self.memo: dict[tuple[str, str], int] = {}
    self.storage_types = storage_types  # storage key -> 'FloatStorage', ...
    self.legacy = legacy

  def glob(self, module, name):
    if (module, name) in self.memo:  # torch's pickler memoises globals: BINGET on reuse
      self.out += pickle.BINGET + bytes([self.memo[(module, name)]])
      return
    self.out += pickle.GLOBAL + f"{module}\n{name}\n".encode()
    self.memo[(module, name)] = len(self.memo)
    self.out += pickle.BINPUT + bytes([self.memo[(module, name)]])

  def save(self, v):
    o = self.out
    if v is None:
      o += pickle.NONE
    elif isinstance(v, bool):
      o += pickle.NEWTRUE if v else pickle.NEWFALSE
    elif isinstance(v, int):
      if 0 <= v < 256:
        o += pickle.BININT1 + bytes([v])
      elif -2**31 <= v < 2**31:
        o += pickle.BININT + struct.pack("<i", v)
      else:
        b = v.to_bytes((v.bit_length() + 8) // 8, "little", signed=True)
        o += pickle.LONG1 + bytes([len(b)]) + b
    elif isinstance(v, str):
      b = v.encode()
      o += pickle.BINUNICODE + struct.pack("<I", len(b)) + b
    elif isinstance(v, tuple):
      if not v:
        o += pickle.EMPTY_TUPLE
      else:
        o += pickle.MARK
        for x in v:
          self.save(x)
        o += pickle.TUPLE
    elif isinstance(v, collections.OrderedDict):
      self.glob("collections", "OrderedDict")
      o += pickle.EMPTY_TUPLE + pickle.REDUCE
      self._items(v)
      if hasattr(v, "_metadata"):  # state_dict()._metadata, pickled as the instance __dict__
        o += pickle.EMPTY_DICT
        self._items({"_metadata": v._metadata})
        o += pickle.BUILD
    elif isinstance(v, dict):
      o += pickle.EMPTY_DICT
      self._items(v)
    elif isinstance(v, _Tensor):
      self.glob("torch._utils", "_rebuild_tensor_v2")
      o += pickle.MARK
      o += pickle.MARK
      self.save("storage")
      self.glob("torch", self.storage_types[v.key])
      self.save(v.key)
      self.save("cpu")
      self.save(int(self._numel[v.key]))
      if self.legacy:
        self.save(None)  # view_metadata
      o += pickle.TUPLE + pickle.BINPERSID
      self.save(v.offset)
      self.save(v.size)
      self.save(v.stride)
      self.save(False)  # requires_grad
      self.save(collections.OrderedDict())  # backward_hooks
      o += pickle.TUPLE + pickle.REDUCE
    elif isinstance(v, _Global):
      self.glob(v.module, v.name)
      self.save(v.args)
      o += pickle.REDUCE
    else:
      raise TypeError(type(v))

  def _items(self, d):
    if d:
      self.out += pickle.MARK
      for k, x in d.items():
        self.save(k)
        self.save(x)
      self.out += pickle.SETITEMS

  def dumps(self, obj, numel):
    self._numel = numel
    self.save(obj)
    self.out += pickle.STOP
    return bytes(self.out)


def write_torch_file(path, obj, storages: dict[str, np.ndarray], *, fmt="zip",
                     archive="archive", byteorder="little"):
  """Writes ``obj`` (dicts of `_Tensor`) with ``storages`` (key -> 1-D array) like torch.save."""
  types = {k: _STORAGE_TYPES[a.dtype] for k, a in storages.items()}
  numel = {k: a.size for k, a in storages.items()}
  pkl = _TorchPickle(types, legacy=(fmt == "legacy")).dumps(obj, numel)
  if fmt == "zip":
    order = "<" if byteorder == "little" else ">"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
      zf.writestr(f"{archive}/data.pkl", pkl)
      zf.writestr(f"{archive}/byteorder", byteorder)
      for k, a in storages.items():
        zf.writestr(f"{archive}/data/{k}", a.astype(a.dtype.newbyteorder(order)).tobytes())
      zf.writestr(f"{archive}/version", "3\n")
  else:
    with open(path, "wb") as f:
      for header in (0x1950A86A20F9469CFC6C, 1001,
                     {"protocol_version": 1001, "little_endian": True,
                      "type_sizes": {"short": 2, "int": 4, "long": 8}}):
        f.write(pickle.dumps(header, protocol=2))
      f.write(pkl)
      keys = sorted(storages)
      f.write(pickle.dumps(keys, protocol=2))
      for k in keys:
        a = storages[k]
        f.write(struct.pack("<q", a.size) + a.astype(a.dtype.newbyteorder("<")).tobytes())


def save_state_dict(path, state: dict[str, np.ndarray], *, fmt="zip"):
  """torch.save(state_dict) of contiguous arrays, one storage each (like a real state dict)."""
  obj = collections.OrderedDict()
  obj._metadata = collections.OrderedDict([("", {"version": 1})])
  storages = {}
  for i, (name, a) in enumerate(state.items()):
    a = np.ascontiguousarray(a)
    storages[str(i)] = a.reshape(-1)
    strides = tuple(s // a.itemsize for s in a.strides) if a.ndim else ()
    obj[name] = _Tensor(str(i), 0, a.shape, strides)
  write_torch_file(path, obj, storages, fmt=fmt)


# ---------------------------------------------------------------------------------------------
# torch_checkpoint
# ---------------------------------------------------------------------------------------------


def _strided(storage, offset, size, stride):
  return np.lib.stride_tricks.as_strided(
      storage[offset:], shape=size, strides=[s * storage.itemsize for s in stride]).copy()


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_torch_file_round_trip_exact(tmp_path, fmt):
  rng = np.random.default_rng(0)
  f32 = rng.standard_normal(40).astype(np.float32)
  f16 = rng.standard_normal(12).astype(np.float16)
  bf16_values = rng.standard_normal(6).astype(np.float32)
  bf16_bits = (bf16_values.view(np.uint32) >> 16).astype(np.uint16)  # truncate to bfloat16
  i64 = np.array([7, -3, 2**40, 5], np.int64)
  u8 = np.arange(12, dtype=np.uint8) * 20
  storages = {"0": f32, "1": f16, "bf16": bf16_bits, "3": i64, "4": u8}
  views = {  # name -> (storage, offset, size, stride)
      "w": ("0", 0, (2, 3, 4), (12, 4, 1)),        # contiguous
      "w_t": ("0", 0, (4, 3), (1, 4)),              # transposed (non-contiguous)
      "w_off": ("0", 25, (3, 2), (5, 2)),           # offset + strides > 1, same storage
      "half": ("1", 2, (2, 5), (5, 1)),
      "bf16": ("bf16", 0, (2, 3), (3, 1)),
      "step": ("3", 1, (), ()),                     # a 0-d tensor (num_batches_tracked)
      "longs": ("3", 0, (4,), (1,)),
      "bytes": ("4", 0, (3, 4), (1, 3)),
      "empty": ("0", 0, (0, 3), (3, 1)),
  }
  obj = collections.OrderedDict(
      (k, _Tensor(*v)) for k, v in views.items() if k not in ("longs", "bytes"))
  obj._metadata = collections.OrderedDict([("", {"version": 1})])
  obj["nested"] = {"longs": _Tensor(*views["longs"]), "bytes": _Tensor(*views["bytes"])}
  path = tmp_path / f"sd_{fmt}.pth"
  write_torch_file(path, obj, storages, fmt=fmt)

  got = load_torch_state_dict(path)
  assert list(got) == ["w", "w_t", "w_off", "half", "bf16", "step", "empty", "nested.longs",
                       "nested.bytes"]
  for name, (key, off, size, stride) in views.items():
    out = got["nested." + name if name in ("longs", "bytes") else name]
    if key == "bf16":
      want = _strided(bf16_values.view(np.uint32) & 0xFFFF0000, off, size, stride)
      want = want.view(np.float32)
    else:
      want = _strided(storages[key], off, size, stride)
    assert out.shape == tuple(size) and out.dtype == want.dtype, name
    np.testing.assert_array_equal(out, want, err_msg=name)
    assert out.flags.c_contiguous and out.flags.writeable
  np.testing.assert_array_equal(got["w_t"], f32[:12].reshape(3, 4).T)
  assert got["step"] == -3 and got["bf16"].dtype == np.float32
  np.testing.assert_allclose(got["bf16"], bf16_values.reshape(2, 3), rtol=2**-7)


def test_zip_big_endian_and_archive_name(tmp_path):
  a = np.arange(6, dtype=np.float32)
  path = tmp_path / "be.pth"
  write_torch_file(path, {"a": _Tensor("0", 0, (2, 3), (3, 1))}, {"0": a},
                   archive="pt_inception-2015-12-05-6726825d", byteorder="big")
  got = load_torch_state_dict(path)
  np.testing.assert_array_equal(got["a"], a.reshape(2, 3))
  assert got["a"].dtype == np.dtype("=f4")


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
@pytest.mark.parametrize("module,name", [("os", "system"), ("posix", "system"),
                                         ("builtins", "eval"), ("torch", "load")])
def test_refuses_unsafe_globals(tmp_path, fmt, module, name):
  marker = tmp_path / "pwned"
  obj = {"x": _Global(module, name, (f"open({str(marker)!r}, 'w')" if name == "eval"
                                     else f"touch {marker}",))}
  path = tmp_path / "evil.pth"
  write_torch_file(path, obj, {}, fmt=fmt)
  with pytest.raises(UnsafeCheckpointError, match=rf"{module}\.{name}"):
    load_torch_state_dict(path)
  assert not marker.exists()


def test_refuses_a_plain_malicious_pickle(tmp_path):
  class Evil:
    def __reduce__(self):
      return (os.system, (f"touch {tmp_path / 'pwned'}",))
  path = tmp_path / "evil.pth"
  with zipfile.ZipFile(path, "w") as zf:
    zf.writestr("archive/data.pkl", pickle.dumps({"x": Evil()}, protocol=2))
  with pytest.raises(UnsafeCheckpointError, match="system"):
    load_torch_state_dict(path)
  assert not (tmp_path / "pwned").exists()


def test_bad_files(tmp_path):
  with pytest.raises(FileNotFoundError):
    load_torch_state_dict(tmp_path / "nope.pth")
  (tmp_path / "junk.pth").write_bytes(b"hello world")
  with pytest.raises(ValueError, match="not a torch.save file"):
    load_torch_state_dict(tmp_path / "junk.pth")
  with zipfile.ZipFile(tmp_path / "script.pt", "w") as zf:
    zf.writestr("m/code/__torch__.py", "")
    zf.writestr("m/data.pkl", b"")
  with pytest.raises(ValueError, match="TorchScript"):
    load_torch_state_dict(tmp_path / "script.pt")
  # A storage shorter than its tensor needs.
  write_torch_file(tmp_path / "short.pth", {"a": _Tensor("0", 2, (3, 3), (3, 1))},
                   {"0": np.zeros(9, np.float32)})
  with pytest.raises(ValueError, match="reach element 10 of storage '0', which has 9"):
    load_torch_state_dict(tmp_path / "short.pth")
  # A legacy file cut short.
  save_state_dict(tmp_path / "cut.pth", {"a": np.ones(100, np.float32)}, fmt="legacy")
  data = (tmp_path / "cut.pth").read_bytes()
  (tmp_path / "cut.pth").write_bytes(data[:-10])
  with pytest.raises(ValueError, match="truncated"):
    load_torch_state_dict(tmp_path / "cut.pth")


# ---------------------------------------------------------------------------------------------
# The architecture, checked against torchvision's constructors (written out independently).
# ---------------------------------------------------------------------------------------------


def _torchvision_fid_inception_convs() -> dict[str, tuple[int, int, int, int]]:
  """prefix -> (out, in, kh, kw) of every BasicConv2d of fid_inception_v3(), from torchvision's
  Inception3 / InceptionA..E constructors and pytorch-fid's channel arguments."""
  convs = {
      "Conv2d_1a_3x3": (32, 3, 3, 3), "Conv2d_2a_3x3": (32, 32, 3, 3),
      "Conv2d_2b_3x3": (64, 32, 3, 3), "Conv2d_3b_1x1": (80, 64, 1, 1),
      "Conv2d_4a_3x3": (192, 80, 3, 3),
  }
  def a(name, cin, pool_features):
    convs.update({
        f"{name}.branch1x1": (64, cin, 1, 1), f"{name}.branch5x5_1": (48, cin, 1, 1),
        f"{name}.branch5x5_2": (64, 48, 5, 5), f"{name}.branch3x3dbl_1": (64, cin, 1, 1),
        f"{name}.branch3x3dbl_2": (96, 64, 3, 3), f"{name}.branch3x3dbl_3": (96, 96, 3, 3),
        f"{name}.branch_pool": (pool_features, cin, 1, 1)})
  def c(name, c7):
    convs.update({
        f"{name}.branch1x1": (192, 768, 1, 1), f"{name}.branch7x7_1": (c7, 768, 1, 1),
        f"{name}.branch7x7_2": (c7, c7, 1, 7), f"{name}.branch7x7_3": (192, c7, 7, 1),
        f"{name}.branch7x7dbl_1": (c7, 768, 1, 1), f"{name}.branch7x7dbl_2": (c7, c7, 7, 1),
        f"{name}.branch7x7dbl_3": (c7, c7, 1, 7), f"{name}.branch7x7dbl_4": (c7, c7, 7, 1),
        f"{name}.branch7x7dbl_5": (192, c7, 1, 7), f"{name}.branch_pool": (192, 768, 1, 1)})
  def e(name, cin):
    convs.update({
        f"{name}.branch1x1": (320, cin, 1, 1), f"{name}.branch3x3_1": (384, cin, 1, 1),
        f"{name}.branch3x3_2a": (384, 384, 1, 3), f"{name}.branch3x3_2b": (384, 384, 3, 1),
        f"{name}.branch3x3dbl_1": (448, cin, 1, 1), f"{name}.branch3x3dbl_2": (384, 448, 3, 3),
        f"{name}.branch3x3dbl_3a": (384, 384, 1, 3), f"{name}.branch3x3dbl_3b": (384, 384, 3, 1),
        f"{name}.branch_pool": (192, cin, 1, 1)})
  a("Mixed_5b", 192, 32)
  a("Mixed_5c", 256, 64)
  a("Mixed_5d", 288, 64)
  convs.update({
      "Mixed_6a.branch3x3": (384, 288, 3, 3), "Mixed_6a.branch3x3dbl_1": (64, 288, 1, 1),
      "Mixed_6a.branch3x3dbl_2": (96, 64, 3, 3), "Mixed_6a.branch3x3dbl_3": (96, 96, 3, 3)})
  for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
    c(name, c7)
  convs.update({
      "Mixed_7a.branch3x3_1": (192, 768, 1, 1), "Mixed_7a.branch3x3_2": (320, 192, 3, 3),
      "Mixed_7a.branch7x7x3_1": (192, 768, 1, 1), "Mixed_7a.branch7x7x3_2": (192, 192, 1, 7),
      "Mixed_7a.branch7x7x3_3": (192, 192, 7, 1), "Mixed_7a.branch7x7x3_4": (192, 192, 3, 3)})
  e("Mixed_7b", 1280)
  e("Mixed_7c", 2048)
  return convs


def _port_state_dict_shapes() -> dict[str, tuple[int, ...]]:
  shapes = {}
  for prefix, (out, cin, kh, kw) in _torchvision_fid_inception_convs().items():
    shapes[f"{prefix}.conv.weight"] = (out, cin, kh, kw)
    for leaf in ("weight", "bias", "running_mean", "running_var"):
      shapes[f"{prefix}.bn.{leaf}"] = (out,)
  shapes["fc.weight"] = (1008, 2048)
  shapes["fc.bias"] = (1008,)
  return shapes


def _variable_shapes(model=None, size=299):
  model = model or InceptionV3FID()
  return jax.eval_shape(model.init, jax.random.key(0),
                        jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32))


def test_state_dict_shapes_match_the_port():
  port = _port_state_dict_shapes()
  ours = inception.fid_inception_state_dict_shapes()
  assert len(port) == 94 * 5 + 2 == 472
  assert sorted(ours) == sorted(port)
  assert {k: ours[k] for k in port} == port

  shapes = _variable_shapes()
  assert set(shapes) == {"params", "batch_stats"}
  n_params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes["params"]))
  n_stats = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes["batch_stats"]))
  n_port = sum(int(np.prod(s)) for k, s in port.items() if "running" not in k)
  # torchvision inception_v3: 27,161,264 parameters with the aux classifier (3,326,696) and
  # 1000 classes; 8 more classes add 8 * 2049.
  assert n_params == n_port == 27_161_264 - 3_326_696 + 8 * 2049 == 23_850_960
  assert n_stats == 2 * 17_216
  assert shapes["params"]["Conv2d_1a_3x3"]["conv"]["kernel"].shape == (3, 3, 3, 32)
  assert shapes["params"]["Mixed_6b"]["branch7x7_2"]["conv"]["kernel"].shape == (1, 7, 128, 128)
  assert shapes["params"]["fc"]["kernel"].shape == (2048, 1008)
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(shapes))
  bf16 = _variable_shapes(InceptionV3FID(param_dtype=jnp.bfloat16))
  assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(bf16["params"]))


def test_layer_output_shapes_follow_torchvision():
  model = InceptionV3FID()
  variables = _variable_shapes(model)
  x = jax.ShapeDtypeStruct((2, 64, 48, 3), jnp.float32)
  out, state = jax.eval_shape(
      lambda v, x: model.apply(v, x, capture_intermediates=True, mutable=["intermediates"]),
      variables, x)
  inter = state["intermediates"]
  want = {  # torchvision's comments in Inception3._forward, NCHW -> NHWC
      "Conv2d_1a_3x3": (149, 32), "Conv2d_2a_3x3": (147, 32), "Conv2d_2b_3x3": (147, 64),
      "Conv2d_3b_1x1": (73, 80), "Conv2d_4a_3x3": (71, 192), "Mixed_5b": (35, 256),
      "Mixed_5c": (35, 288), "Mixed_5d": (35, 288), "Mixed_6a": (17, 768),
      "Mixed_6b": (17, 768), "Mixed_6c": (17, 768), "Mixed_6d": (17, 768),
      "Mixed_6e": (17, 768), "Mixed_7a": (8, 1280), "Mixed_7b": (8, 2048),
      "Mixed_7c": (8, 2048)}
  for name, (s, c) in want.items():
    assert inter[name]["__call__"][0].shape == (2, s, s, c), name
  assert out["pool3"].shape == (2, 2048) and out["logits"].shape == (2, 1008)
  bf16 = InceptionV3FID(dtype=jnp.bfloat16)
  out = jax.eval_shape(bf16.apply, variables, x)
  assert out["pool3"].dtype == jnp.float32 and out["logits"].dtype == jnp.float32


def test_pools_hand_values():
  x = jnp.arange(9.0).reshape(1, 3, 3, 1)
  avg = inception.avg_pool_3x3_exclude_pad(x)[0, :, :, 0]
  # Corner: mean of the 4 in-image values (not 9 with zeros, as count_include_pad=True gives).
  assert avg[0, 0] == pytest.approx((0 + 1 + 3 + 4) / 4)
  assert avg[0, 1] == pytest.approx((0 + 1 + 2 + 3 + 4 + 5) / 6)
  assert avg[1, 1] == pytest.approx(4.0)
  mx = inception.max_pool_3x3_same(-x)[0, :, :, 0]  # all negative: padding must be -inf, not 0
  np.testing.assert_array_equal(mx, [[0, 0, -1], [0, 0, -1], [-3, -3, -4]])
  assert inception.max_pool_3x3_s2(jnp.zeros((1, 147, 147, 2))).shape == (1, 73, 73, 2)


def _torch_bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
  """The 1-D weights of F.interpolate(mode='bilinear', align_corners=False, antialias=False),
  from PyTorch's upsample_bilinear2d: src = max((dst + 0.5) * in / out - 0.5, 0), two taps."""
  w = np.zeros((n_out, n_in))
  for d in range(n_out):
    src = max((d + 0.5) * n_in / n_out - 0.5, 0.0)
    i0 = int(src)
    i1 = i0 + 1 if i0 < n_in - 1 else i0
    lam = src - i0
    w[d, i0] += 1 - lam
    w[d, i1] += lam
  return w


@pytest.mark.parametrize("n_in,n_out", [(32, 299), (28, 299), (512, 299), (400, 299), (7, 5)])
def test_resize_matches_pytorch_fid_interpolate(n_in, n_out):
  rng = np.random.default_rng(n_in)
  x = rng.uniform(-1, 1, (1, n_in, n_in + 3, 2)).astype(np.float32)
  wh, ww = _torch_bilinear_matrix(n_in, n_out), _torch_bilinear_matrix(n_in + 3, n_out)
  want = np.einsum("qw,bpwc->bpqc", ww, np.einsum("ph,bhwc->bpwc", wh, x))
  got = np.asarray(inception.resize_for_inception(x, size=n_out))
  # Both compute the sample coordinates in float32: ~1e-5 apart at 512 pixels (an 8-bit
  # pixel step is 8e-3 in [-1, 1]).
  np.testing.assert_allclose(got, want, atol=1e-4)
  # Resizing [-1, 1] images equals pytorch-fid's resize of [0, 1] images followed by 2x - 1.
  x01 = (x + 1) / 2
  np.testing.assert_allclose(
      2 * np.asarray(inception.resize_for_inception(x01, size=n_out)) - 1, got, atol=1e-5)
  if n_in > n_out:  # antialiased downsampling is a different (wider) filter
    aa = np.asarray(inception.resize_for_inception(x, size=n_out, antialias=True))
    assert np.abs(aa - want).max() > 1e-3
  else:
    np.testing.assert_allclose(
        inception.resize_for_inception(x, size=n_out, antialias=True), got, atol=1e-6)


def _numpy_variables(seed=0):
  """Random variables of the right shapes: He-normal kernels, identity BatchNorm."""
  rng = np.random.default_rng(seed)
  def fill(path, leaf):
    name = path[-1].key
    if name == "kernel":
      fan_in = int(np.prod(leaf.shape[:-1]))
      return (rng.standard_normal(leaf.shape, np.float32) * np.sqrt(2 / fan_in)).astype(
          np.float32)
    if name in ("scale", "var"):
      return np.ones(leaf.shape, np.float32)
    return np.zeros(leaf.shape, np.float32)
  return jax.tree_util.tree_map_with_path(fill, _variable_shapes())


def test_forward_batch1_small_input():
  model = InceptionV3FID()
  variables = _numpy_variables()
  x = jnp.asarray(np.random.default_rng(1).uniform(-1, 1, (1, 32, 32, 3)), jnp.float32)
  fwd = jax.jit(model.apply)
  t0 = time.perf_counter()
  out = jax.block_until_ready(fwd(variables, x))
  compile_s = time.perf_counter() - t0
  t0 = time.perf_counter()
  out = jax.block_until_ready(fwd(variables, x))
  run_s = time.perf_counter() - t0
  print(f"InceptionV3FID batch 1: first call (compile + run) {compile_s:.1f} s, "
        f"forward {run_s * 1e3:.0f} ms")
  assert set(out) == {"pool3", "logits"}
  chex.assert_shape(out["pool3"], (1, 2048))
  chex.assert_shape(out["logits"], (1, 1008))
  assert out["pool3"].dtype == jnp.float32 and out["logits"].dtype == jnp.float32
  chex.assert_tree_all_finite(out)
  assert float(out["pool3"].min()) >= 0.0 and float(out["pool3"].max()) > 0.0  # mean of ReLUs
  with pytest.raises(ValueError, match="frozen"):
    model.apply(variables, x, train=True)


def _torch_style_forward(state, x01):
  """pytorch-fid's InceptionV3 forward (resize, 2x - 1, blocks, avgpool, fc) written in NCHW on
  the PyTorch state dict, following pytorch_fid/inception.py and torchvision line by line."""
  lax = jax.lax
  def conv(x, p, stride=1, padding=0):
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    y = lax.conv_general_dilated(x, state[f"{p}.conv.weight"], (sh, sw), ((ph, ph), (pw, pw)),
                                 dimension_numbers=("NCHW", "OIHW", "NCHW"),
                                 precision=lax.Precision.HIGHEST)
    c = lambda n: state[f"{p}.bn.{n}"][None, :, None, None]
    y = (y - c("running_mean")) / jnp.sqrt(c("running_var") + 0.001) * c("weight") + c("bias")
    return jax.nn.relu(y)
  def max_pool(x, k, s, pad=0):
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, k, k), (1, 1, s, s),
                             ((0, 0), (0, 0), (pad, pad), (pad, pad)))
  def avg_pool_no_pad_count(x):  # F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
    pads = ((0, 0), (0, 0), (1, 1), (1, 1))
    total = lax.reduce_window(x, 0.0, lax.add, (1, 1, 3, 3), (1, 1, 1, 1), pads)
    ones = jnp.ones((1, 1) + x.shape[2:], x.dtype)
    count = lax.reduce_window(ones, 0.0, lax.add, (1, 1, 3, 3), (1, 1, 1, 1), pads)
    return total / count
  cat = lambda *xs: jnp.concatenate(xs, axis=1)
  def block_a(x, m):
    b5 = conv(conv(x, f"{m}.branch5x5_1"), f"{m}.branch5x5_2", padding=2)
    b3 = conv(conv(conv(x, f"{m}.branch3x3dbl_1"), f"{m}.branch3x3dbl_2", padding=1),
              f"{m}.branch3x3dbl_3", padding=1)
    return cat(conv(x, f"{m}.branch1x1"), b5, b3,
               conv(avg_pool_no_pad_count(x), f"{m}.branch_pool"))
  def block_b(x, m):
    b3 = conv(x, f"{m}.branch3x3", stride=2)
    bd = conv(conv(conv(x, f"{m}.branch3x3dbl_1"), f"{m}.branch3x3dbl_2", padding=1),
              f"{m}.branch3x3dbl_3", stride=2)
    return cat(b3, bd, max_pool(x, 3, 2))
  def block_c(x, m):
    b7 = conv(x, f"{m}.branch7x7_1")
    b7 = conv(b7, f"{m}.branch7x7_2", padding=(0, 3))
    b7 = conv(b7, f"{m}.branch7x7_3", padding=(3, 0))
    bd = conv(x, f"{m}.branch7x7dbl_1")
    bd = conv(bd, f"{m}.branch7x7dbl_2", padding=(3, 0))
    bd = conv(bd, f"{m}.branch7x7dbl_3", padding=(0, 3))
    bd = conv(bd, f"{m}.branch7x7dbl_4", padding=(3, 0))
    bd = conv(bd, f"{m}.branch7x7dbl_5", padding=(0, 3))
    return cat(conv(x, f"{m}.branch1x1"), b7, bd,
               conv(avg_pool_no_pad_count(x), f"{m}.branch_pool"))
  def block_d(x, m):
    b3 = conv(conv(x, f"{m}.branch3x3_1"), f"{m}.branch3x3_2", stride=2)
    b7 = conv(x, f"{m}.branch7x7x3_1")
    b7 = conv(b7, f"{m}.branch7x7x3_2", padding=(0, 3))
    b7 = conv(b7, f"{m}.branch7x7x3_3", padding=(3, 0))
    b7 = conv(b7, f"{m}.branch7x7x3_4", stride=2)
    return cat(b3, b7, max_pool(x, 3, 2))
  def block_e(x, m, pool):
    b3 = conv(x, f"{m}.branch3x3_1")
    b3 = cat(conv(b3, f"{m}.branch3x3_2a", padding=(0, 1)),
             conv(b3, f"{m}.branch3x3_2b", padding=(1, 0)))
    bd = conv(conv(x, f"{m}.branch3x3dbl_1"), f"{m}.branch3x3dbl_2", padding=1)
    bd = cat(conv(bd, f"{m}.branch3x3dbl_3a", padding=(0, 1)),
             conv(bd, f"{m}.branch3x3dbl_3b", padding=(1, 0)))
    bp = avg_pool_no_pad_count(x) if pool == "avg" else max_pool(x, 3, 1, pad=1)
    return cat(conv(x, f"{m}.branch1x1"), b3, bd, conv(bp, f"{m}.branch_pool"))

  h, w = x01.shape[2:]
  x = jnp.einsum("ph,qw,bchw->bcpq", _torch_bilinear_matrix(h, 299),
                 _torch_bilinear_matrix(w, 299), x01, precision="highest")
  x = 2 * x - 1
  x = conv(x, "Conv2d_1a_3x3", stride=2)
  x = conv(x, "Conv2d_2a_3x3")
  x = conv(x, "Conv2d_2b_3x3", padding=1)
  x = max_pool(x, 3, 2)
  x = conv(x, "Conv2d_3b_1x1")
  x = conv(x, "Conv2d_4a_3x3")
  x = max_pool(x, 3, 2)
  for m in ("Mixed_5b", "Mixed_5c", "Mixed_5d"):
    x = block_a(x, m)
  x = block_b(x, "Mixed_6a")
  for m in ("Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"):
    x = block_c(x, m)
  x = block_d(x, "Mixed_7a")
  x = block_e(x, "Mixed_7b", "avg")
  x = block_e(x, "Mixed_7c", "max")
  pool3 = x.mean(axis=(2, 3))
  logits = jnp.dot(pool3, state["fc.weight"].T, precision="highest") + state["fc.bias"]
  return pool3, logits


def test_forward_matches_a_torch_layout_reference():
  """The flax network on mapped weights == pytorch-fid's forward written on the state dict."""
  rng = np.random.default_rng(3)
  def fill(path, leaf):
    name = path[-1].key
    if name == "kernel":
      fan_in = int(np.prod(leaf.shape[:-1]))
      return (rng.standard_normal(leaf.shape) * np.sqrt(2 / fan_in)).astype(np.float32)
    if name in ("scale", "var"):
      return rng.uniform(0.5, 1.5, leaf.shape).astype(np.float32)
    return (0.1 * rng.standard_normal(leaf.shape)).astype(np.float32)
  variables = jax.tree_util.tree_map_with_path(fill, _variable_shapes())
  state = inception.fid_inception_variables_to_state_dict(variables)
  x01 = rng.uniform(0, 1, (1, 3, 40, 35)).astype(np.float32)  # NCHW in [0, 1], pytorch-fid's
  pool3, logits = jax.jit(_torch_style_forward)(state, x01)
  with jax.default_matmul_precision("highest"):
    x = jnp.asarray(2 * x01 - 1).transpose(0, 2, 3, 1)  # NHWC in [-1, 1], jgan's
    out = jax.jit(InceptionV3FID().apply)(variables, x)
  # They agree to ~3e-6 of the features' spread; a max pool in Mixed_7b, or counting the padding
  # in the average pools, moves them by 0.1-2 spreads.
  np.testing.assert_allclose(out["pool3"], pool3, rtol=1e-4, atol=1e-4 * float(pool3.std()))
  np.testing.assert_allclose(out["logits"], logits, rtol=1e-4, atol=1e-4 * float(logits.std()))


# ---------------------------------------------------------------------------------------------
# Loading the pytorch-fid state dict.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["legacy", "zip"])
def test_load_fid_inception_params_full_mapping(tmp_path, fmt):
  shapes = _variable_shapes()
  rng = np.random.default_rng(0)
  variables = jax.tree.map(lambda s: rng.standard_normal(s.shape, np.float32), shapes)
  state = inception.fid_inception_variables_to_state_dict(variables)
  assert {k: v.shape for k, v in state.items()} == _port_state_dict_shapes()
  for k in list(state):  # real BatchNorm state dicts also carry the step counter
    if k.endswith(".bn.running_var"):
      state[k.replace("running_var", "num_batches_tracked")] = np.array(0, np.int64)
  path = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
  save_state_dict(path, state, fmt=fmt)
  fc_weight = state["fc.weight"]

  loaded = inception.load_fid_inception_params(path)
  assert jax.tree.structure(loaded) == jax.tree.structure(shapes)
  chex.assert_trees_all_equal_shapes_and_dtypes(loaded, shapes)
  # Values land transposed: OIHW -> HWIO, [out, in] -> [in, out].
  w = state["Mixed_6b.branch7x7_2.conv.weight"]  # (128, 128, 1, 7)
  k = loaded["params"]["Mixed_6b"]["branch7x7_2"]["conv"]["kernel"]  # (1, 7, 128, 128)
  assert k[0, 5, 17, 3] == w[3, 17, 0, 5]
  np.testing.assert_array_equal(k, w.transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(loaded["params"]["Conv2d_1a_3x3"]["conv"]["kernel"],
                                state["Conv2d_1a_3x3.conv.weight"].transpose(2, 3, 1, 0))
  assert loaded["params"]["fc"]["kernel"][1000, 7] == fc_weight[7, 1000]
  np.testing.assert_array_equal(loaded["params"]["fc"]["kernel"], fc_weight.T)
  np.testing.assert_array_equal(loaded["params"]["fc"]["bias"], state["fc.bias"])
  bn = loaded["params"]["Mixed_7c"]["branch_pool"]["bn"]
  np.testing.assert_array_equal(bn["scale"], state["Mixed_7c.branch_pool.bn.weight"])
  np.testing.assert_array_equal(bn["bias"], state["Mixed_7c.branch_pool.bn.bias"])
  stats = loaded["batch_stats"]["Mixed_5b"]["branch_pool"]["bn"]
  np.testing.assert_array_equal(stats["mean"], state["Mixed_5b.branch_pool.bn.running_mean"])
  np.testing.assert_array_equal(stats["var"], state["Mixed_5b.branch_pool.bn.running_var"])
  # Everything equals the variables the state dict was made from.
  chex.assert_trees_all_equal(loaded, variables)


def _zero_state():
  """The port's full state dict as zero-size-in-memory broadcasts."""
  return {k: np.broadcast_to(np.float32(0), s)
          for k, s in inception.fid_inception_state_dict_shapes().items()}


def test_state_dict_errors_name_keys_and_shapes():
  state = _zero_state()
  inception.fid_inception_state_dict_to_variables(state)  # complete: no error
  del state["Conv2d_1a_3x3.conv.weight"]
  state["fc.weight"] = np.zeros((1000, 2048), np.float32)
  state["AuxLogits.fc.weight"] = np.zeros((1000, 768), np.float32)
  state["Mixed_5b.branch1x1.bn.num_batches_tracked"] = np.array(3)  # ignored
  with pytest.raises(ValueError) as e:
    inception.fid_inception_state_dict_to_variables(state)
  msg = str(e.value)
  assert "1 missing keys: Conv2d_1a_3x3.conv.weight (expected shape (32, 3, 3, 3))" in msg
  assert "1 unexpected keys: AuxLogits.fc.weight" in msg
  assert "fc.weight: shape (1000, 2048), expected (1008, 2048)" in msg
  assert "num_batches_tracked" not in msg


def test_load_errors(tmp_path):
  with pytest.raises(FileNotFoundError) as e:
    inception.load_fid_inception_params(tmp_path / "pt_inception.pth")
  msg = str(e.value)
  assert inception.FID_WEIGHTS_URL in msg
  assert "github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" in msg
  assert "eval.inception_weights" in msg and "internet" in msg
  path = tmp_path / "other.pth"  # some other network's weights
  save_state_dict(path, {"conv1.weight": np.zeros((8, 3, 3, 3), np.float32)})
  with pytest.raises(ValueError, match=(
      r"472 missing keys: Conv2d_1a_3x3\.conv\.weight \(expected shape \(32, 3, 3, 3\)\); "
      r"Conv2d_1a_3x3\.bn\.weight .* and 452 more \| 1 unexpected keys: conv1\.weight")):
    inception.load_fid_inception_params(path)
