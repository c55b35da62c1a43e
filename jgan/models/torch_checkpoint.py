"""Reads PyTorch ``torch.save`` state dicts into numpy arrays without importing torch.

Two container formats are read (``torch.load`` reads both; which one a file uses depends on the
torch version that wrote it):

- the zip format (torch >= 1.6 default): a zip archive holding ``<archive>/data.pkl`` (the
  pickled object), ``<archive>/data/<key>`` (the raw bytes of each storage), ``<archive>/version``
  and, in newer files, ``<archive>/byteorder`` (``little`` or ``big``; absent means little);
- the legacy format (torch 0.4 - 1.5, and ``_use_new_zipfile_serialization=False``): five
  pickles back to back (magic number 0x1950a86a20f9469cfc6c, protocol version 1001, a
  ``sys_info`` dict, the object, the sorted list of storage keys), then for each key in that list
  an int64 little-endian element count and the storage's raw little-endian bytes. The pytorch-fid
  Inception weights were published in May 2019 (torch 1.1), so they are most likely in this
  format.

In both, a tensor is pickled as ``torch._utils._rebuild_tensor_v2(storage, storage_offset, size,
stride, requires_grad, backward_hooks[, metadata])`` and its storage as the persistent id
``('storage', <storage type global, e.g. torch.FloatStorage>, key, location, numel)`` (the legacy
format appends a sixth element, ``view_metadata``: None or ``(view_key, offset, view_size)``).

The pickle is read by a restricted ``pickle.Unpickler`` whose ``find_class`` resolves only the
globals a state dict needs (``collections.OrderedDict``, the tensor-rebuild functions and the
storage types) to stand-ins defined here; any other global (``os.system``, ``builtins.eval``,
a ``__torch__`` class of a TorchScript archive, ...) raises `UnsafeCheckpointError` naming it, so
loading a malicious file cannot run code. The very old tar format (torch < 0.4) is rejected with a
message saying how to re-save the file.

Supported storage types: Float (float32), Half (float16), BFloat16 (returned as float32, exactly:
the 16 bits become the high half of a float32), Double, Long (int64), Int, Short, Char (int8),
Byte (uint8) and Bool.

References:
  PyTorch ``torch/serialization.py`` (``_save``, ``_legacy_save``, ``_load``, ``_legacy_load``)
  and ``torch/_utils.py`` (``_rebuild_tensor_v2``).
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import tarfile
import zipfile
from typing import Any

import numpy as np

__all__ = ["UnsafeCheckpointError", "load_torch_state_dict"]

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001

# Storage type name (the global ``torch.<name>``) -> numpy dtype of its little-endian bytes.
# BFloat16 is read as uint16 and widened to float32 after the strided gather.
STORAGE_DTYPES: dict[str, np.dtype] = {
    "FloatStorage": np.dtype("<f4"),
    "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": np.dtype("<u2"),
    "DoubleStorage": np.dtype("<f8"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


class UnsafeCheckpointError(pickle.UnpicklingError):
  """A checkpoint's pickle references a global that a plain state dict never needs."""


class _StorageType:
  """Stand-in for ``torch.<Name>Storage``: only carries the name and the dtype."""

  def __init__(self, name: str):
    self.name = name
    self.dtype = STORAGE_DTYPES[name]

  def __repr__(self):
    return f"torch.{self.name}"


class _Storage:
  """A storage referenced by a persistent id; ``data`` (1-D numpy) is filled in when read."""

  def __init__(self, storage_type: _StorageType, key: str, numel: int):
    self.storage_type = storage_type
    self.key = key
    self.numel = numel
    self.data: np.ndarray | None = None


class _TensorRef:
  """What ``_rebuild_tensor_v2`` returns here: materialised once all storages are read."""

  def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple):
    if not isinstance(storage, _Storage):
      raise pickle.UnpicklingError(
          f"tensor rebuilt from {type(storage).__name__}, expected a persistent storage")
    self.storage = storage
    self.offset = int(offset)
    self.size = tuple(int(s) for s in size)
    self.stride = tuple(int(s) for s in stride)

  def to_numpy(self, name: str) -> np.ndarray:
    data = self.storage.data
    if data is None:
      raise ValueError(f"{name}: storage {self.storage.key!r} was never read")
    if len(self.size) != len(self.stride) or any(s < 0 for s in self.size + self.stride):
      raise ValueError(f"{name}: bad size {self.size} / stride {self.stride}")
    if 0 in self.size:
      out = np.zeros(self.size, data.dtype)
    else:
      last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
      if self.offset < 0 or last >= data.size:
        raise ValueError(
            f"{name}: size {self.size}, stride {self.stride} and offset {self.offset} reach "
            f"element {last} of storage {self.storage.key!r}, which has {data.size} elements")
      item = data.dtype.itemsize
      out = np.lib.stride_tricks.as_strided(
          data[self.offset:], shape=self.size, strides=[s * item for s in self.stride],
          writeable=False).copy()
    if self.storage.storage_type.name == "BFloat16Storage":
      out = (out.astype(np.uint32) << 16).view(np.float32)
    return out.astype(out.dtype.newbyteorder("="), copy=False)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
  del requires_grad, backward_hooks, metadata
  return _TensorRef(storage, storage_offset, size, stride)


def _rebuild_tensor(storage, storage_offset, size, stride):
  return _TensorRef(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
  del requires_grad, backward_hooks
  return data


_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): _StorageType(name) for name in STORAGE_DTYPES},
}


class _RestrictedUnpickler(pickle.Unpickler):
  """Resolves only `_ALLOWED_GLOBALS`; storages become `_Storage` placeholders."""

  def __init__(self, file, storages: dict[str, _Storage]):
    super().__init__(file)
    self._storages = storages

  def find_class(self, module: str, name: str) -> Any:
    try:
      return _ALLOWED_GLOBALS[(module, name)]
    except KeyError:
      raise UnsafeCheckpointError(
          f"refusing to load the global {module}.{name}: a PyTorch state dict only needs "
          f"{sorted(f'{m}.{n}' for m, n in _ALLOWED_GLOBALS)}. Save the model's state_dict() "
          "(tensors only), not a whole module or arbitrary objects.") from None

  def persistent_load(self, pid: Any) -> _Storage:
    if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
      raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
    storage_type, key, _location, numel = pid[1:5]
    if not isinstance(storage_type, _StorageType):
      raise pickle.UnpicklingError(f"persistent id {pid!r} has no storage type")
    view = pid[5] if len(pid) == 6 else None
    key = str(key)
    if key not in self._storages:
      self._storages[key] = _Storage(storage_type, key, int(numel))
    root = self._storages[key]
    if view is None:
      return root
    # Legacy storage views: (view_key, offset, view_size) into the root storage.
    view_key, view_offset, view_size = view
    view_key = str(view_key)
    if view_key not in self._storages:
      self._storages[view_key] = _StorageView(root, view_key, int(view_offset), int(view_size))
    return self._storages[view_key]


class _StorageView(_Storage):
  """A legacy view into another storage; its data is a slice of the root's."""

  def __init__(self, root: _Storage, key: str, offset: int, numel: int):
    super().__init__(root.storage_type, key, numel)
    self.root = root
    self.offset = offset

  @property
  def data(self):
    if self.root.data is None:
      return None
    return self.root.data[self.offset:self.offset + self.numel]

  @data.setter
  def data(self, value):
    if value is not None:
      raise ValueError("a storage view has no data of its own")


def _flatten(obj: Any, prefix: str, out: dict[str, np.ndarray]) -> None:
  if isinstance(obj, _TensorRef):
    out[prefix] = obj.to_numpy(prefix)
  elif isinstance(obj, dict):
    for k, v in obj.items():
      _flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
  else:
    raise TypeError(
        f"{prefix or 'the checkpoint'}: expected a tensor or a dict of tensors, found "
        f"{type(obj).__name__}; load_torch_state_dict reads state dicts only")


def _read_exact(f, n: int, what: str) -> bytes:
  left = os.fstat(f.fileno()).st_size - f.tell()
  if n > left:  # checked before reading, so a forged size cannot make us allocate it
    raise ValueError(f"truncated checkpoint: {what} needs {n} bytes, {left} left")
  return f.read(n)


def _load_zip(path: str) -> Any:
  with zipfile.ZipFile(path) as zf:
    names = zf.namelist()
    pkls = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
    if not pkls:
      if any(n.endswith("constants.pkl") for n in names):
        raise ValueError(f"{path} is a TorchScript archive (torch.jit.save), not a state dict")
      raise ValueError(f"{path} is a zip file without <archive>/data.pkl: not a torch.save file")
    prefix = pkls[0][: -len("data.pkl")]
    if any(n.startswith(prefix + "code/") for n in names):
      raise ValueError(f"{path} is a TorchScript archive (torch.jit.save), not a state dict")
    order = "<"
    if prefix + "byteorder" in names:
      byteorder = zf.read(prefix + "byteorder").decode().strip()
      if byteorder not in ("little", "big"):
        raise ValueError(f"{path}: unknown byteorder {byteorder!r}")
      order = "<" if byteorder == "little" else ">"
    storages: dict[str, _Storage] = {}
    obj = _RestrictedUnpickler(io.BytesIO(zf.read(pkls[0])), storages).load()
    for key, st in storages.items():
      if isinstance(st, _StorageView):
        continue
      name = f"{prefix}data/{key}"
      if name not in names:
        raise ValueError(f"{path}: storage {key!r} is referenced but {name} is missing")
      raw = zf.read(name)
      dtype = st.storage_type.dtype.newbyteorder(order)
      need = st.numel * dtype.itemsize
      if len(raw) < need:
        raise ValueError(f"{path}: {name} has {len(raw)} bytes, its {st.numel} elements need "
                         f"{need}")
      st.data = np.frombuffer(raw, dtype, count=st.numel)
  return obj


def _load_legacy(path: str) -> Any:
  with open(path, "rb") as f:
    magic = _RestrictedUnpickler(f, {}).load()
    if magic != LEGACY_MAGIC_NUMBER:
      raise ValueError(f"{path} is neither a zip nor a legacy torch.save file (bad magic)")
    version = _RestrictedUnpickler(f, {}).load()
    if version != LEGACY_PROTOCOL_VERSION:
      raise ValueError(f"{path}: unsupported legacy protocol version {version}")
    sys_info = _RestrictedUnpickler(f, {}).load()
    if isinstance(sys_info, dict) and not sys_info.get("little_endian", True):
      raise ValueError(f"{path} was written on a big-endian machine; not supported")
    storages: dict[str, _Storage] = {}
    obj = _RestrictedUnpickler(f, storages).load()
    keys = _RestrictedUnpickler(f, {}).load()
    if not isinstance(keys, list):
      raise ValueError(f"{path}: the legacy storage key list is a {type(keys).__name__}")
    for key in keys:
      key = str(key)
      if key not in storages or isinstance(storages[key], _StorageView):
        raise ValueError(f"{path}: storage {key!r} is listed but no tensor uses it")
      st = storages[key]
      (numel,) = struct.unpack("<q", _read_exact(f, 8, f"storage {key!r} header"))
      if numel != st.numel:
        raise ValueError(f"{path}: storage {key!r} has {numel} elements, its id says {st.numel}")
      dtype = st.storage_type.dtype
      st.data = np.frombuffer(_read_exact(f, numel * dtype.itemsize, f"storage {key!r}"), dtype)
    missing = [k for k, s in storages.items() if s.data is None]
    if missing:
      raise ValueError(f"{path}: storages {missing} are referenced but not stored")
  return obj


def load_torch_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """Reads a ``torch.save``-d state dict as ``{name: numpy array}``, without torch.

  Nested dicts are flattened with dots (``{"a": {"b": t}}`` -> ``{"a.b": t}``). Each array is a
  fresh C-contiguous copy in native byte order with the tensor's shape, honouring its stride and
  storage offset (so views and non-contiguous tensors come out as PyTorch shows them). BFloat16
  tensors come back as float32.

  Args:
    path: a ``.pth`` / ``.pt`` file written by ``torch.save(state_dict, path)`` in the zip or the
      legacy format (see the module docstring).

  Returns:
    An ordered dict of numpy arrays, in the file's order.

  Raises:
    FileNotFoundError: no such file.
    UnsafeCheckpointError: the pickle references a global outside the state-dict allow-list.
    ValueError: not a torch.save file, the pre-0.4 tar format, a TorchScript archive, a truncated
      or inconsistent file.
    TypeError: the object is not a (nested) dict of tensors.
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"no PyTorch checkpoint at {path}")
  if zipfile.is_zipfile(path):
    obj = _load_zip(path)
  else:
    with open(path, "rb") as f:
      head = f.read(2)
    if head[:1] == b"\x80":  # a pickle protocol opcode: the legacy format
      obj = _load_legacy(path)
    elif tarfile.is_tarfile(path):
      raise ValueError(
          f"{path} uses the tar format of torch < 0.4, which is not supported; load it with "
          "torch on a machine that has it and re-save it with torch.save(state_dict, path).")
    else:
      raise ValueError(f"{path} is not a torch.save file (neither zip nor legacy pickle)")
  out: dict[str, np.ndarray] = collections.OrderedDict()
  _flatten(obj, "", out)
  return out
