"""Reads dlib DNN files (``dlib::serialize(net)``, e.g. ``*.dat`` models) into numpy, without dlib.

A dlib network is a C++ type (``loss<layer<layer<... input>>>``) and its file holds no type
names, only each layer's own version string and fields, in the order the type dictates. So the
reader is given the network as a list of `LayerSpec` (bottom to top: the input layer first, the
loss layer last) and walks the file the way dlib's ``deserialize`` does, checking every version
string, hyper-parameter and tensor size against the spec. `jgan.models.dlib_resnet` gives the
spec of the face-recognition ResNet.

The format (dlib ``dlib/serialize.h``, ``dlib/dnn/core.h``, ``layers.h``, ``input.h``,
``loss.h``, ``cuda/tensor.h``; read at dlib commit 3d40bf5, 2026, which reads files of 2017):

- integers: a control byte (bit 0x80: negative, for signed types; low 4 bits: the number n of
  bytes that follow, 1..sizeof(T)) then n little-endian magnitude bytes; 0 is ``01 00``;
- floats and doubles: an int64 mantissa then an int16 exponent, value = mantissa * 2**exponent
  (exponents 32000/32001/32002 mean +inf/-inf/NaN);
- bools: the ASCII byte ``'1'`` or ``'0'``; strings: an unsigned length, then the bytes;
- ``resizable_tensor``: int version 2, four int64 dims (num_samples, k, nr, nc), then the
  values as little-endian IEEE float32 in NCHW order; ``alias_tensor``: int version 1, four dims;
- ``add_loss_layer``: int version 1, the loss details, the subnetwork;
- ``add_layer`` (any layer with parameters or computation): int version (1 or 2), the
  subnetwork, *then* the layer details, three bools (setup called, gradient stale, output
  getters disabled) and the tensors ``x_grad``, ``cached_output`` and (version 2)
  ``params_grad``; the ``add_layer`` that sits directly on the input layer is special: int
  version (2 or 3), the input layer details, the layer details, the three bools, ``x_grad``,
  ``cached_output``, ``grad_final`` and (version 3) the ``sample_expansion_factor``;
- ``add_tag_layer`` / ``add_skip_layer``: int version 1 and the subnetwork (tag ids are part of
  the C++ type, not of the file).

So a file is every layer's version number from the top down, then the input layer, then every
layer's details from the bottom up. Layer details (version string first):

- ``con_4`` / ``con_5`` / ``con_6``: params tensor (filters [num_filters, k, nr, nc] then, when
  present, biases [num_filters]), num_filters, nr, nc, stride_y, stride_x, padding_y, padding_x,
  filters and biases ``alias_tensor``s, four double learning-rate / weight-decay multipliers,
  (5+) ``use_bias``, (6) ``use_relu``;
- ``affine_`` / ``affine_2``: params tensor (gamma then beta), gamma and beta aliases, int mode
  (0 conv: one value per channel; 1 fc), (2) ``disabled``; a ``bn_con2`` / ``bn_fc2`` record (a
  batch-norm layer saved where the type says affine) is converted as dlib does: gamma /
  sqrt(running_var + eps) and beta - gamma' * running_mean;
- ``relu_`` / ``relu_2`` (+ ``disabled``); ``add_prev_``;
- ``max_pool_2`` / ``avg_pool_2``: nr, nc, stride_y, stride_x, padding_y, padding_x (nr = nc = 0:
  the whole image, ``avg_pool_everything``);
- ``fc_2`` / ``fc_3``: num_outputs, num_inputs, params tensor (weights [num_inputs,
  num_outputs] then, when present, the biases), weights and biases aliases, int bias mode (0 has
  bias, 1 ``fc_no_bias``), four doubles, (3) ``use_bias``;
- ``input_rgb_image_sized``: float avg_red, avg_green, avg_blue, then NR and NC;
- ``loss_metric_`` (margin 0.1, threshold 0.75) / ``loss_metric_2``: float margin, float
  distance threshold.

Every read is bounds-checked before anything is allocated; any mismatch raises ``ValueError``
naming the file, the byte offset and the layer (numbered like dlib's ``layer<i>``: 0 is the loss
layer, the input layer is last).
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

import numpy as np

__all__ = ["LayerSpec", "read_dlib_net"]

_INF, _NINF, _NAN = 32000, 32001, 32002  # float_details' special exponents
_WITH_DETAILS = ("con", "affine", "relu", "max_pool", "avg_pool", "add_prev", "fc")
KINDS = _WITH_DETAILS + ("tag", "skip", "input_rgb_image_sized", "loss_metric")


@dataclasses.dataclass(frozen=True)
class LayerSpec:
  """One layer of a dlib network type, as the reader expects to find it.

  ``kind`` is one of ``con``, ``affine``, ``relu``, ``max_pool``, ``avg_pool``, ``add_prev``,
  ``fc``, ``tag``, ``skip``, ``input_rgb_image_sized`` and ``loss_metric``; ``args`` its
  template arguments: ``con``: num_filters, nr, nc, stride_y, stride_x, padding_y, padding_x;
  ``max_pool`` / ``avg_pool``: nr, nc, stride_y, stride_x, padding_y, padding_x; ``fc``:
  num_outputs, has_bias (bool); ``input_rgb_image_sized``: nr, nc; ``tag`` / ``skip`` /
  ``add_prev``: the tag id (not stored in files). ``name`` says where the layer's values go
  (for error messages and for the caller's mapping); it may be empty.
  """

  kind: str
  args: tuple = ()
  name: str = ""

  def __post_init__(self):
    if self.kind not in KINDS:
      raise ValueError(f"unknown dlib layer kind {self.kind!r}; known: {KINDS}")

  def describe(self) -> str:
    a = self.args
    if self.kind == "con":
      text = f"con {a[1]}x{a[2]} stride {a[3]} pad {a[5]}, {a[0]} filters"
    elif self.kind in ("max_pool", "avg_pool"):
      text = (f"{self.kind} everything" if a[0] == 0 else
              f"{self.kind} {a[0]}x{a[1]} stride {a[2]} pad {a[4]}")
    elif self.kind == "fc":
      text = f"fc{'' if a[1] else '_no_bias'} {a[0]}"
    elif self.kind in ("tag", "skip", "add_prev"):
      text = f"{self.kind}{a[0] if a else ''}"
    else:
      text = self.kind
    return f"{text} '{self.name}'" if self.name else text


class _Reader:
  """A bounds-checked cursor over the file's bytes; errors name the file, offset and context."""

  def __init__(self, data: bytes, path: str):
    self.data = memoryview(data)
    self.pos = 0
    self.path = path
    self.where = "the file"

  def fail(self, problem: str, pos: int | None = None):
    pos = self.pos if pos is None else pos
    raise ValueError(f"{self.path}: not a valid dlib network file for this model: {problem} "
                     f"(at byte {pos} of {len(self.data)}, reading {self.where})")

  def take(self, n: int, what: str) -> memoryview:
    left = len(self.data) - self.pos
    if n > left:
      self.fail(f"the file is truncated: {what} needs {n} bytes, {left} left")
    out = self.data[self.pos:self.pos + n]
    self.pos += n
    return out

  def integer(self, nbytes: int, signed: bool, what: str) -> int:
    start = self.pos
    control = self.take(1, what)[0]
    size = control & 0x0F if signed else control & 0x8F  # unsigned: 0x80 set is an error
    if size == 0 or size > nbytes:
      self.fail(f"bad integer control byte 0x{control:02x} for {what}", start)
    value = int.from_bytes(bytes(self.take(size, what)), "little")
    return -value if signed and control & 0x80 else value

  def int32(self, what: str) -> int:
    return self.integer(4, True, what)

  def int64(self, what: str) -> int:
    return self.integer(8, True, what)

  def uint(self, what: str, nbytes: int = 8) -> int:
    return self.integer(nbytes, False, what)

  def real(self, what: str) -> float:
    start = self.pos
    if self.pos < len(self.data) and self.data[self.pos] & 0x70:
      self.fail(f"{what} uses dlib's pre-2013 ASCII float format, which is not supported", start)
    mantissa = self.integer(8, True, what + " (mantissa)")
    exponent = self.integer(2, True, what + " (exponent)")
    if exponent >= _INF:
      return {_INF: math.inf, _NINF: -math.inf}.get(exponent, math.nan)
    return math.ldexp(mantissa, exponent)

  def boolean(self, what: str) -> bool:
    start = self.pos
    ch = bytes(self.take(1, what))
    if ch not in (b"0", b"1"):
      self.fail(f"{what} should be the byte '0' or '1', found {ch!r}", start)
    return ch == b"1"

  def string(self, what: str) -> str:
    size = self.uint(what + " length")
    return bytes(self.take(size, what)).decode("latin-1")

  def version(self, expected: tuple[str, ...], what: str) -> str:
    start = self.pos
    size = self.uint(what + " version string length")
    if size > 64:  # all version strings are short; a big number is a misaligned read
      self.fail(f"expected the {what} version string {' or '.join(map(repr, expected))}, "
                f"found a string length of {size}", start)
    found = bytes(self.take(size, what)).decode("latin-1")
    if found not in expected:
      self.fail(f"expected the {what} version string {' or '.join(map(repr, expected))}, "
                f"found {found!r}", start)
    return found

  def dims(self, what: str) -> tuple[int, int, int, int]:
    out = tuple(self.int64(f"{what} dim {i}") for i in range(4))
    if any(d < 0 for d in out):
      self.fail(f"{what} has negative dims {out}")
    return out

  def tensor(self, what: str) -> np.ndarray:
    start = self.pos
    v = self.int32(what + " version")
    if v != 2:
      self.fail(f"{what}: tensor version {v}, expected 2", start)
    shape = self.dims(what)
    count = math.prod(shape)
    raw = self.take(4 * count, f"{what} ({count} float32 values, shape {shape})")
    return np.frombuffer(raw, "<f4").astype(np.float32).reshape(shape)

  def alias(self, what: str) -> tuple[int, int, int, int]:
    start = self.pos
    v = self.int32(what + " version")
    if v != 1:
      self.fail(f"{what}: alias_tensor version {v}, expected 1", start)
    return self.dims(what)


def _check(r: _Reader, what: str, found: Any, expected: Any):
  if found != expected:
    r.fail(f"{what} is {found!r}, expected {expected!r}")


def _split_params(r: _Reader, params: np.ndarray, first: tuple, second: tuple, names: str):
  """dlib stores [first, second] back to back in one params tensor; splits it by the aliases."""
  n1, n2 = math.prod(first), math.prod(second)
  if params.size != n1 + n2:
    r.fail(f"the params tensor has {params.size} values, the {names} aliases {first} and "
           f"{second} need {n1} + {n2}")
  flat = params.reshape(-1)
  return flat[:n1].reshape(first), flat[n1:].reshape(second)


def _multipliers(r: _Reader, n: int = 4):
  for i in range(n):
    r.real(f"learning-rate / weight-decay multiplier {i}")


def _read_details(r: _Reader, spec: LayerSpec) -> dict[str, Any]:
  """One layer's details record (its ``deserialize(details, in)``), checked against ``spec``."""
  a, kind = spec.args, spec.kind
  out: dict[str, Any] = {"kind": kind, "name": spec.name}
  if kind == "input_rgb_image_sized":
    r.version(("input_rgb_image_sized",), kind)
    out["avg_rgb"] = tuple(np.float32(r.real(f"avg_{c}")) for c in ("red", "green", "blue"))
    _check(r, "the input size (nr, nc)", (r.uint("nr"), r.uint("nc")), tuple(a))
  elif kind == "loss_metric":
    v = r.version(("loss_metric_", "loss_metric_2"), kind)
    out["margin"], out["distance_threshold"] = (
        (r.real("margin"), r.real("dist_thresh")) if v == "loss_metric_2" else (0.1, 0.75))
  elif kind == "con":
    v = r.version(("con_4", "con_5", "con_6"), "con_")
    params = r.tensor("params")
    found = (r.int64("num_filters"), r.int64("nr"), r.int64("nc"), r.int32("stride_y"),
             r.int32("stride_x"), r.int32("padding_y"), r.int32("padding_x"))
    _check(r, "(num_filters, nr, nc, stride_y, stride_x, padding_y, padding_x)", found, tuple(a))
    filters, biases = r.alias("filters alias"), r.alias("biases alias")
    _multipliers(r)
    if v in ("con_5", "con_6"):
      r.boolean("use_bias")
    if v == "con_6" and r.boolean("use_relu"):
      r.fail("the conv has use_relu set (a fused ReLU), which this model does not have")
    if filters[0] != a[0] or filters[2:] != (a[1], a[2]):
      r.fail(f"the filters alias {filters} does not match {spec.describe()}")
    w, b = _split_params(r, params, filters, biases, "filters/biases")
    out["filters"] = w  # [num_filters, k, nr, nc]
    out["biases"] = b.reshape(-1) if b.size else None
    if b.size not in (0, a[0]):
      r.fail(f"the biases alias {biases} has {b.size} values, expected {a[0]}")
  elif kind == "affine":
    v = r.version(("affine_", "affine_2", "bn_con2", "bn_fc2"), "affine_")
    if v.startswith("bn_"):
      if v == "bn_fc2":
        r.fail("found a fully-connected batch norm (bn_fc2) where a per-channel affine is "
               "expected")
      params = r.tensor("params")
      g_shape, b_shape = r.alias("gamma alias"), r.alias("beta alias")
      for name in ("means", "invstds"):
        r.tensor(name)
      mean, var = r.tensor("running_means").reshape(-1), r.tensor("running_variances").reshape(-1)
      r.uint("num_updates")
      r.uint("running_stats_window_size")
      _multipliers(r)
      eps = r.real("eps")
      gamma, beta = _split_params(r, params, g_shape, b_shape, "gamma/beta")
      gamma, beta = gamma.reshape(-1), beta.reshape(-1)
      if not mean.size == var.size == gamma.size:
        r.fail(f"batch-norm sizes differ: gamma {gamma.size}, running stats {mean.size}, "
               f"{var.size}")
      scale = (gamma / np.sqrt(var + np.float32(eps))).astype(np.float32)
      out["gamma"], out["beta"] = scale, (beta - scale * mean).astype(np.float32)
    else:
      params = r.tensor("params")
      g_shape, b_shape = r.alias("gamma alias"), r.alias("beta alias")
      mode = r.int32("mode")
      if mode != 0:
        r.fail(f"affine mode {mode}, expected 0 (CONV_MODE: one scale and shift per channel)")
      if v == "affine_2" and r.boolean("disabled"):
        r.fail("the affine layer is disabled, which this model does not expect")
      gamma, beta = _split_params(r, params, g_shape, b_shape, "gamma/beta")
      out["gamma"], out["beta"] = gamma.reshape(-1), beta.reshape(-1)
  elif kind == "relu":
    if r.version(("relu_", "relu_2"), "relu_") == "relu_2" and r.boolean("disabled"):
      r.fail("the relu layer is disabled, which this model does not expect")
  elif kind in ("max_pool", "avg_pool"):
    r.version((f"{kind}_2",), f"{kind}_")
    found = (r.int64("nr"), r.int64("nc"), r.int32("stride_y"), r.int32("stride_x"),
             r.int32("padding_y"), r.int32("padding_x"))
    _check(r, "(nr, nc, stride_y, stride_x, padding_y, padding_x)", found, tuple(a))
  elif kind == "add_prev":
    r.version(("add_prev_",), "add_prev_")
  elif kind == "fc":
    v = r.version(("fc_2", "fc_3"), "fc_")
    num_outputs, num_inputs = r.uint("num_outputs"), r.uint("num_inputs")
    _check(r, "num_outputs", num_outputs, a[0])
    params = r.tensor("params")
    w_shape, b_shape = r.alias("weights alias"), r.alias("biases alias")
    _check(r, "the bias mode (0: fc, 1: fc_no_bias)", r.int32("bias_mode"), 0 if a[1] else 1)
    _multipliers(r)
    use_bias = r.boolean("use_bias") if v == "fc_3" else True
    if w_shape[:2] != (num_inputs, num_outputs):
      r.fail(f"the weights alias {w_shape} does not match {num_inputs} inputs, "
             f"{num_outputs} outputs")
    w, b = _split_params(r, params, w_shape, b_shape, "weights/biases")
    out["weights"] = w.reshape(num_inputs, num_outputs)
    out["biases"] = b.reshape(-1) if (a[1] and use_bias) else None
  else:  # pragma: no cover - LayerSpec validates kinds
    raise AssertionError(kind)
  return out


def _read_add_layer_state(r: _Reader, version: int, on_input: bool) -> None:
  """The fields an ``add_layer`` writes after its details: training state, discarded here."""
  for name in ("this_layer_setup_called", "gradient_input_is_stale",
               "get_output_and_gradient_input_disabled"):
    r.boolean(name)
  r.tensor("x_grad")
  r.tensor("cached_output")
  if on_input:
    r.tensor("grad_final")
    if version >= 3:
      r.uint("sample_expansion_factor", 4)
  elif version >= 2:
    r.tensor("params_grad")


def read_dlib_net(path: str | os.PathLike, layers: list[LayerSpec]) -> list[dict[str, Any]]:
  """Reads a dlib network file whose C++ type is ``layers`` (bottom to top) into numpy.

  Args:
    path: the file, as written by ``dlib::serialize(path) << net`` (uncompressed).
    layers: the network type, bottom to top: ``layers[0]`` an ``input_rgb_image_sized``,
      ``layers[1]`` a layer with details (the ``add_layer`` on the input), ``layers[-1]`` a
      ``loss_metric``.

  Returns:
    One record per layer, in the order of ``layers``: a dict with ``kind`` and ``name`` and,
    by kind, ``filters`` [num_filters, k, nr, nc] and ``biases`` [num_filters] or None
    (``con``); ``gamma`` and ``beta`` [k] (``affine``: ``y = x * gamma + beta`` per channel);
    ``weights`` [num_inputs, num_outputs] and ``biases`` (``fc``); ``avg_rgb`` (the input
    layer); ``margin`` and ``distance_threshold`` (the loss). Arrays are float32 numpy.

  Raises:
    FileNotFoundError: no such file.
    ValueError: a compressed, truncated or corrupt file, or one of another network type; the
      message names the file, the byte offset and the layer (dlib's ``layer<i>`` numbering).
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"no dlib network file at {path}")
  if (len(layers) < 3 or layers[0].kind != "input_rgb_image_sized"
      or layers[-1].kind != "loss_metric" or layers[1].kind not in _WITH_DETAILS):
    raise ValueError("layers must run from an input_rgb_image_sized, through an add_layer "
                     "kind on it, to a loss_metric")
  with open(path, "rb") as f:
    data = f.read()
  if data[:3] == b"BZh":
    raise ValueError(f"{path} is bzip2-compressed (as dlib.net serves its .dat.bz2 models): "
                     f"decompress it first (bunzip2 {os.path.basename(path)})")
  r = _Reader(data, path)
  n = len(layers)

  def at(i: int) -> str:  # dlib's numbering: layer<0> is the loss, the input is layer<n-1>
    return f"layer<{n - 1 - i}> ({layers[i].describe()})"

  records: list[dict[str, Any]] = [{}] * n
  r.where = at(n - 1)
  _check(r, "the add_loss_layer version", r.int32("version"), 1)
  records[n - 1] = _read_details(r, layers[n - 1])
  versions: dict[int, int] = {}
  for i in range(n - 2, 1, -1):  # the version of each layer above the one on the input
    r.where = at(i)
    v = r.int32("version")
    if layers[i].kind in ("tag", "skip"):
      _check(r, f"the add_{layers[i].kind}_layer version", v, 1)
    elif not 1 <= v <= 2:
      r.fail(f"add_layer version {v}, expected 1 or 2")
    versions[i] = v
  r.where = at(1)
  v = r.int32("version")
  if not 2 <= v <= 3:
    r.fail(f"add_layer (on the input layer) version {v}, expected 2 or 3")
  r.where = at(0)
  records[0] = _read_details(r, layers[0])
  r.where = at(1)
  records[1] = _read_details(r, layers[1])
  _read_add_layer_state(r, v, on_input=True)
  for i in range(2, n - 1):
    r.where = at(i)
    if layers[i].kind in ("tag", "skip"):
      records[i] = {"kind": layers[i].kind, "name": layers[i].name}
    else:
      records[i] = _read_details(r, layers[i])
      _read_add_layer_state(r, versions[i], on_input=False)
  if r.pos != len(data):
    r.where = "the end of the network"
    r.fail(f"{len(data) - r.pos} unexpected bytes after the network")
  return records
