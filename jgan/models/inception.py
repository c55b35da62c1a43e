"""The FID Inception-v3 network (TF 2015 graph, as ported by pytorch-fid) in Flax, and its weights.

`InceptionV3FID` is the feature extractor behind FID and Inception Score: the Inception-v3 of
TensorFlow's 2015-12-05 release (``inception-2015-12-05.tgz``), which the original TF FID code
uses, in the form pytorch-fid ported it (``pytorch_fid/inception.py``: ``fid_inception_v3()``).
That port is torchvision's ``Inception3(num_classes=1008, aux_logits=False)`` with four patches,
all reproduced here:

- ``Mixed_5b/5c/5d`` (``FIDInceptionA``), ``Mixed_6b..6e`` (``FIDInceptionC``) and ``Mixed_7b``
  (``FIDInceptionE_1``): the pool branch's 3x3 stride-1 pad-1 average pool does not count the
  padded zeros (``count_include_pad=False``, TF's behaviour);
- ``Mixed_7c`` (``FIDInceptionE_2``): the pool branch is a 3x3 stride-1 pad-1 *max* pool;
- 1008 output classes (the TF graph's), no auxiliary classifier.

``Mixed_6a`` (InceptionB) and ``Mixed_7a`` (InceptionD) are torchvision's unchanged. Every
convolution is torchvision's ``BasicConv2d``: conv without bias, BatchNorm(eps=0.001), ReLU. The
network is frozen: BatchNorm always uses the stored statistics.

Module and parameter names follow the PyTorch state dict, so ``Mixed_5b.branch1x1.conv.weight``
lives at ``params['Mixed_5b']['branch1x1']['conv']['kernel']`` (transposed OIHW -> HWIO),
``...bn.weight`` / ``.bn.bias`` at ``params[...]['bn']['scale' / 'bias']``,
``...bn.running_mean`` / ``.running_var`` at ``batch_stats[...]['bn']['mean' / 'var']`` and
``fc.weight`` at ``params['fc']['kernel']`` (transposed). `load_fid_inception_params` reads the
pytorch-fid weight file (``pt_inception-2015-12-05-6726825d.pth``, see `FID_WEIGHTS_URL`) into
that tree without torch (`jgan.models.torch_checkpoint`).

Input preprocessing, compared with pytorch-fid (``InceptionV3.forward`` with ``resize_input`` and
``normalize_input``, which takes images in [0, 1]):

- pytorch-fid resizes with ``F.interpolate(x, (299, 299), mode='bilinear', align_corners=False)``
  and then maps [0, 1] to [-1, 1] by ``2x - 1``. jgan images are already in [-1, 1]; since
  bilinear weights sum to one, resizing the [-1, 1] image gives exactly ``2 * resize(x) - 1``.
- ``jax.image.resize(..., 'bilinear', antialias=False)`` (the default here) samples at half-pixel
  centres like ``align_corners=False`` and, at the borders, renormalises the weights of the
  in-range pixels, which equals PyTorch's clamping of the source coordinate; so it matches
  ``F.interpolate`` both when upsampling (e.g. 32 -> 299) and when downsampling (e.g. 512 -> 299:
  a plain 2-tap bilinear sample that aliases, as pytorch-fid's does). ``resize_antialias=True``
  instead widens the kernel when downsampling (like PIL, or ``F.interpolate(antialias=True)``);
  it is the better image resize but gives features, and FIDs, that differ from pytorch-fid's.
  Upsampling is the same either way. (The original TF FID code's ``tf.image.resize_bilinear``
  did not use half-pixel centres; neither does this.) A 299x299 input is not resized.

References:
  Szegedy et al. 2016, "Rethinking the Inception Architecture for Computer Vision" (Inception-v3);
  Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
  Equilibrium" (FID, pool3 features); Salimans et al. 2016, "Improved Techniques for Training
  GANs" (Inception Score, logits); mseitzer/pytorch-fid ``src/pytorch_fid/inception.py`` and
  torchvision ``models/inception.py`` (the architecture and state-dict names).
"""

from __future__ import annotations

import functools
import os
from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jgan.models.torch_checkpoint import load_torch_state_dict

Dtype = Any
PyTree = Any

FID_WEIGHTS_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
    "pt_inception-2015-12-05-6726825d.pth")
"""Where pytorch-fid publishes the FID Inception weights (download on a machine with internet)."""

INPUT_SIZE = 299
NUM_CLASSES = 1008
POOL3_FEATURES = 2048
BN_EPSILON = 1e-3

__all__ = [
    "FID_WEIGHTS_URL",
    "InceptionV3FID",
    "fid_inception_state_dict_shapes",
    "fid_inception_state_dict_to_variables",
    "fid_inception_variables_to_state_dict",
    "load_fid_inception_params",
    "resize_for_inception",
]


def resize_for_inception(images: jax.Array, *, size: int = INPUT_SIZE,
                         antialias: bool = False) -> jax.Array:
  """Bilinear resize of [B, H, W, C] images to [B, size, size, C] (float32).

  With ``antialias=False`` this is ``F.interpolate(mode='bilinear', align_corners=False)``
  (pytorch-fid's resize), up- and downsampling; see the module docstring. Same-size input is
  returned unchanged.
  """
  x = jnp.asarray(images, jnp.float32)
  if x.shape[1:3] == (size, size):
    return x
  return jax.image.resize(x, (x.shape[0], size, size, x.shape[3]), "bilinear",
                          antialias=antialias)


def avg_pool_3x3_exclude_pad(x: jax.Array) -> jax.Array:
  """3x3, stride 1, pad 1 average pool that ignores the padding (``count_include_pad=False``)."""
  return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)),
                     count_include_pad=False)


def max_pool_3x3_same(x: jax.Array) -> jax.Array:
  """3x3, stride 1, pad 1 max pool (PyTorch pads max pools with -inf, as flax does)."""
  return nn.max_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)))


def max_pool_3x3_s2(x: jax.Array) -> jax.Array:
  """3x3, stride 2, unpadded max pool (``nn.MaxPool2d(3, stride=2)``)."""
  return nn.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")


class BasicConv2d(nn.Module):
  """torchvision's ``BasicConv2d``: conv (no bias) -> BatchNorm(eps=0.001, frozen) -> ReLU.

  ``padding`` is PyTorch's symmetric (pad_h, pad_w). Submodules ``conv`` and ``bn``.
  Shapes: [B, H, W, C_in] -> [B, H', W', features].
  """

  features: int
  kernel_size: tuple[int, int]
  strides: tuple[int, int] = (1, 1)
  padding: tuple[int, int] = (0, 0)
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    ph, pw = self.padding
    x = nn.Conv(self.features, self.kernel_size, strides=self.strides,
                padding=((ph, ph), (pw, pw)), use_bias=False, dtype=self.dtype,
                param_dtype=self.param_dtype, name="conv")(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=BN_EPSILON, dtype=self.dtype,
                     param_dtype=self.param_dtype, name="bn")(x)
    return nn.relu(x)


class _Block(nn.Module):
  """Shared fields and the `conv` helper of the Inception blocks."""

  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  def conv(self, name: str, features: int, kernel_size, strides=1, padding=0) -> BasicConv2d:
    pair = lambda v: tuple(v) if isinstance(v, (tuple, list)) else (v, v)
    return BasicConv2d(features, pair(kernel_size), pair(strides), pair(padding),
                       dtype=self.dtype, param_dtype=self.param_dtype, name=name)


class FIDInceptionA(_Block):
  """Mixed_5b/5c/5d: 35x35 block -> 64 + 64 + 96 + pool_features channels.

  Branches 1x1; 1x1(48) -> 5x5(64); 1x1(64) -> 3x3(96) -> 3x3(96); avg pool (padding not
  counted) -> 1x1(pool_features).
  """

  pool_features: int = 32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b1 = self.conv("branch1x1", 64, 1)(x)
    b5 = self.conv("branch5x5_1", 48, 1)(x)
    b5 = self.conv("branch5x5_2", 64, 5, padding=2)(b5)
    b3 = self.conv("branch3x3dbl_1", 64, 1)(x)
    b3 = self.conv("branch3x3dbl_2", 96, 3, padding=1)(b3)
    b3 = self.conv("branch3x3dbl_3", 96, 3, padding=1)(b3)
    bp = self.conv("branch_pool", self.pool_features, 1)(avg_pool_3x3_exclude_pad(x))
    return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(_Block):
  """Mixed_6a: 35x35 -> 17x17 reduction, 384 + 96 + C_in channels."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b3 = self.conv("branch3x3", 384, 3, strides=2)(x)
    bd = self.conv("branch3x3dbl_1", 64, 1)(x)
    bd = self.conv("branch3x3dbl_2", 96, 3, padding=1)(bd)
    bd = self.conv("branch3x3dbl_3", 96, 3, strides=2)(bd)
    return jnp.concatenate([b3, bd, max_pool_3x3_s2(x)], axis=-1)


class FIDInceptionC(_Block):
  """Mixed_6b..6e: 17x17 block with factorised 7x7s -> 4 x 192 = 768 channels."""

  channels_7x7: int = 128

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c7 = self.channels_7x7
    b1 = self.conv("branch1x1", 192, 1)(x)
    b7 = self.conv("branch7x7_1", c7, 1)(x)
    b7 = self.conv("branch7x7_2", c7, (1, 7), padding=(0, 3))(b7)
    b7 = self.conv("branch7x7_3", 192, (7, 1), padding=(3, 0))(b7)
    bd = self.conv("branch7x7dbl_1", c7, 1)(x)
    bd = self.conv("branch7x7dbl_2", c7, (7, 1), padding=(3, 0))(bd)
    bd = self.conv("branch7x7dbl_3", c7, (1, 7), padding=(0, 3))(bd)
    bd = self.conv("branch7x7dbl_4", c7, (7, 1), padding=(3, 0))(bd)
    bd = self.conv("branch7x7dbl_5", 192, (1, 7), padding=(0, 3))(bd)
    bp = self.conv("branch_pool", 192, 1)(avg_pool_3x3_exclude_pad(x))
    return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(_Block):
  """Mixed_7a: 17x17 -> 8x8 reduction, 320 + 192 + C_in channels."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b3 = self.conv("branch3x3_1", 192, 1)(x)
    b3 = self.conv("branch3x3_2", 320, 3, strides=2)(b3)
    b7 = self.conv("branch7x7x3_1", 192, 1)(x)
    b7 = self.conv("branch7x7x3_2", 192, (1, 7), padding=(0, 3))(b7)
    b7 = self.conv("branch7x7x3_3", 192, (7, 1), padding=(3, 0))(b7)
    b7 = self.conv("branch7x7x3_4", 192, 3, strides=2)(b7)
    return jnp.concatenate([b3, b7, max_pool_3x3_s2(x)], axis=-1)


class FIDInceptionE(_Block):
  """Mixed_7b (``pool='avg'``, FIDInceptionE_1) / Mixed_7c (``pool='max'``, FIDInceptionE_2).

  8x8 block -> 320 + 2 x 384 + 2 x 384 + 192 = 2048 channels.
  """

  pool: str = "avg"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.pool not in ("avg", "max"):
      raise ValueError(f"FIDInceptionE: pool={self.pool!r} is not supported; allowed: avg, max")
    b1 = self.conv("branch1x1", 320, 1)(x)
    b3 = self.conv("branch3x3_1", 384, 1)(x)
    b3 = jnp.concatenate([
        self.conv("branch3x3_2a", 384, (1, 3), padding=(0, 1))(b3),
        self.conv("branch3x3_2b", 384, (3, 1), padding=(1, 0))(b3)], axis=-1)
    bd = self.conv("branch3x3dbl_1", 448, 1)(x)
    bd = self.conv("branch3x3dbl_2", 384, 3, padding=1)(bd)
    bd = jnp.concatenate([
        self.conv("branch3x3dbl_3a", 384, (1, 3), padding=(0, 1))(bd),
        self.conv("branch3x3dbl_3b", 384, (3, 1), padding=(1, 0))(bd)], axis=-1)
    pooled = avg_pool_3x3_exclude_pad(x) if self.pool == "avg" else max_pool_3x3_same(x)
    bp = self.conv("branch_pool", 192, 1)(pooled)
    return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class InceptionV3FID(nn.Module):
  """The FID Inception-v3 (pytorch-fid's ``fid_inception_v3()``): images -> pool3 and logits.

  Layers (spatial size for a 299x299 input, channels):
  Conv2d_1a_3x3 (3x3 s2: 149, 32), Conv2d_2a_3x3 (3x3: 147, 32), Conv2d_2b_3x3 (3x3 pad 1:
  147, 64), max pool 3x3 s2 (73), Conv2d_3b_1x1 (73, 80), Conv2d_4a_3x3 (3x3: 71, 192), max pool
  3x3 s2 (35), Mixed_5b/5c/5d (35: 256, 288, 288), Mixed_6a (17: 768), Mixed_6b..6e (17: 768,
  channels_7x7 128, 160, 160, 192), Mixed_7a (8: 1280), Mixed_7b (8: 2048, avg pool branch),
  Mixed_7c (8: 2048, max pool branch), global average pool (pool3, 2048), fc (1008).

  Inputs of any size are first resized to 299x299 with `resize_for_inception` (bilinear,
  pytorch-fid's ``align_corners=False``; see the module docstring for downsampling and
  ``resize_antialias``). The network is frozen: BatchNorm uses ``batch_stats`` only, dropout
  (before fc, in eval mode) is the identity. Apply with ``{'params': ..., 'batch_stats': ...}``,
  e.g. from `load_fid_inception_params`.

  Shapes: images [B, H, W, 3] float in [-1, 1] (jgan's image range; pytorch-fid's [0, 1] input
  after its ``2x - 1``) -> ``{"pool3": [B, 2048] float32, "logits": [B, 1008] float32}``. FID
  uses pool3; Inception Score uses softmax(logits).

  References:
    Szegedy et al. 2016, "Rethinking the Inception Architecture for Computer Vision";
    mseitzer/pytorch-fid ``src/pytorch_fid/inception.py``; torchvision ``models/inception.py``.
  """

  resize_antialias: bool = False
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, images: jax.Array, *, train: bool = False) -> dict[str, jax.Array]:
    if train:
      raise ValueError("InceptionV3FID is a frozen feature extractor: call it with train=False")
    if images.ndim != 4 or images.shape[-1] != 3:
      raise ValueError(f"InceptionV3FID expects [B, H, W, 3] images, got {images.shape}")
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    x = resize_for_inception(images, antialias=self.resize_antialias).astype(self.dtype)
    x = BasicConv2d(32, (3, 3), strides=(2, 2), name="Conv2d_1a_3x3", **kw)(x)
    x = BasicConv2d(32, (3, 3), name="Conv2d_2a_3x3", **kw)(x)
    x = BasicConv2d(64, (3, 3), padding=(1, 1), name="Conv2d_2b_3x3", **kw)(x)
    x = max_pool_3x3_s2(x)
    x = BasicConv2d(80, (1, 1), name="Conv2d_3b_1x1", **kw)(x)
    x = BasicConv2d(192, (3, 3), name="Conv2d_4a_3x3", **kw)(x)
    x = max_pool_3x3_s2(x)
    x = FIDInceptionA(pool_features=32, name="Mixed_5b", **kw)(x)
    x = FIDInceptionA(pool_features=64, name="Mixed_5c", **kw)(x)
    x = FIDInceptionA(pool_features=64, name="Mixed_5d", **kw)(x)
    x = InceptionB(name="Mixed_6a", **kw)(x)
    x = FIDInceptionC(channels_7x7=128, name="Mixed_6b", **kw)(x)
    x = FIDInceptionC(channels_7x7=160, name="Mixed_6c", **kw)(x)
    x = FIDInceptionC(channels_7x7=160, name="Mixed_6d", **kw)(x)
    x = FIDInceptionC(channels_7x7=192, name="Mixed_6e", **kw)(x)
    x = InceptionD(name="Mixed_7a", **kw)(x)
    x = FIDInceptionE(pool="avg", name="Mixed_7b", **kw)(x)
    x = FIDInceptionE(pool="max", name="Mixed_7c", **kw)(x)
    pool3 = jnp.mean(x.astype(jnp.float32), axis=(1, 2))
    logits = nn.Dense(NUM_CLASSES, name="fc", **kw)(pool3.astype(self.dtype))
    return {"pool3": pool3, "logits": logits.astype(jnp.float32)}


# ---------------------------------------------------------------------------------------------
# PyTorch state dict <-> flax variables.
# ---------------------------------------------------------------------------------------------

# (flax collection, flax leaf name, module kind) -> (torch leaf name, flax -> torch transpose).
# Module paths are the same on both sides (the flax modules are named like the torch ones).
_LEAF_MAP: dict[tuple[str, str, str], tuple[str, tuple[int, ...] | None]] = {
    ("params", "kernel", "conv"): ("weight", (3, 2, 0, 1)),  # HWIO -> OIHW
    ("params", "scale", "bn"): ("weight", None),
    ("params", "bias", "bn"): ("bias", None),
    ("batch_stats", "mean", "bn"): ("running_mean", None),
    ("batch_stats", "var", "bn"): ("running_var", None),
    ("params", "kernel", "fc"): ("weight", (1, 0)),  # [in, out] -> [out, in]
    ("params", "bias", "fc"): ("bias", None),
}
_IGNORED_TORCH_SUFFIXES = (".num_batches_tracked",)  # BatchNorm's step counter, unused here


def _inverse(perm: tuple[int, ...]) -> tuple[int, ...]:
  return tuple(int(i) for i in np.argsort(perm))


@functools.lru_cache(maxsize=None)
def _layout() -> dict[str, tuple[tuple[str, ...], tuple[int, ...], tuple[int, ...] | None]]:
  """torch key -> (flax path incl. collection, flax shape, flax -> torch transpose)."""
  shapes = jax.eval_shape(
      InceptionV3FID().init, jax.random.key(0),
      jax.ShapeDtypeStruct((1, INPUT_SIZE, INPUT_SIZE, 3), jnp.float32))
  entries = []
  for path, leaf in jax.tree_util.tree_flatten_with_path(shapes)[0]:
    names = tuple(p.key for p in path)
    collection, *modules, leaf_name = names
    torch_leaf, perm = _LEAF_MAP[(collection, leaf_name, modules[-1])]
    # Layers in alphabetical order; per layer like PyTorch: conv.weight, bn.weight, bn.bias,
    # bn.running_mean, bn.running_var.
    rank = list(_LEAF_MAP).index((collection, leaf_name, modules[-1]))
    layer = tuple(m for m in modules if m not in ("conv", "bn"))
    entries.append(((layer, rank), ".".join(modules + [torch_leaf]),
                    (names, tuple(leaf.shape), perm)))
  return {key: value for _, key, value in sorted(entries)}


def fid_inception_state_dict_shapes() -> dict[str, tuple[int, ...]]:
  """The pytorch-fid state dict's keys and PyTorch shapes (without ``num_batches_tracked``).

  Derived from `InceptionV3FID`'s variables through the explicit name map: e.g.
  ``Conv2d_1a_3x3.conv.weight`` (32, 3, 3, 3), ``Mixed_5b.branch1x1.bn.running_mean`` (64,),
  ``fc.weight`` (1008, 2048), ``fc.bias`` (1008,).
  """
  return {k: tuple(shape[i] for i in perm) if perm else shape
          for k, (_, shape, perm) in _layout().items()}


def _set(tree: dict, path: tuple[str, ...], value: Any) -> None:
  for p in path[:-1]:
    tree = tree.setdefault(p, {})
  tree[path[-1]] = value


def fid_inception_state_dict_to_variables(state_dict: Mapping[str, Any]) -> dict[str, PyTree]:
  """Maps a pytorch-fid Inception state dict to `InceptionV3FID`'s ``variables``.

  Conv weights go OIHW -> HWIO, ``fc.weight`` [1008, 2048] -> kernel [2048, 1008], BatchNorm
  ``weight``/``bias`` -> ``params`` ``scale``/``bias`` and ``running_mean``/``running_var`` ->
  ``batch_stats`` ``mean``/``var``; ``*.num_batches_tracked`` is ignored. Values become float32
  numpy arrays.

  Raises:
    ValueError: naming every missing key (with the expected PyTorch shape), every unexpected key
      and every key whose shape differs from the expected one.
  """
  layout = _layout()
  expected = fid_inception_state_dict_shapes()
  missing = [f"{k} (expected shape {expected[k]})" for k in layout if k not in state_dict]
  unexpected = [k for k in state_dict
                if k not in layout and not k.endswith(_IGNORED_TORCH_SUFFIXES)]
  wrong = [f"{k}: shape {tuple(np.shape(v))}, expected {expected[k]}"
           for k, v in state_dict.items() if k in layout and tuple(np.shape(v)) != expected[k]]
  if missing or unexpected or wrong:
    parts = []
    for title, items in (("missing keys", missing), ("unexpected keys", unexpected),
                         ("wrong shapes", wrong)):
      if items:
        more = f" ... and {len(items) - 20} more" if len(items) > 20 else ""
        parts.append(f"{len(items)} {title}: " + "; ".join(items[:20]) + more)
    raise ValueError("not a pytorch-fid FID Inception state dict (pt_inception-2015-12-05): "
                     + " | ".join(parts))
  variables: dict[str, PyTree] = {}
  for key, (path, _, perm) in layout.items():
    value = np.asarray(state_dict[key], np.float32)
    if perm is not None:
      value = value.transpose(_inverse(perm))
    _set(variables, path, np.ascontiguousarray(value))
  return variables


def fid_inception_variables_to_state_dict(variables: Mapping[str, PyTree]) -> dict[str, np.ndarray]:
  """The inverse of `fid_inception_state_dict_to_variables`: flax variables -> PyTorch names and
  layouts (no ``num_batches_tracked``)."""
  out = {}
  for key, (path, _, perm) in _layout().items():
    node = variables
    for p in path:
      node = node[p]
    value = np.asarray(node)
    out[key] = np.ascontiguousarray(value.transpose(perm) if perm is not None else value)
  return out


def load_fid_inception_params(path: str | os.PathLike) -> dict[str, PyTree]:
  """Loads pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth`` as `InceptionV3FID` variables.

  Reads the file without torch (`jgan.models.torch_checkpoint.load_torch_state_dict`) and maps it
  with `fid_inception_state_dict_to_variables`.

  Args:
    path: the ``.pth`` file, downloaded from `FID_WEIGHTS_URL` (config key
      ``eval.inception_weights``).

  Returns:
    ``{"params": ..., "batch_stats": ...}`` of float32 numpy arrays for
    ``InceptionV3FID().apply(variables, images)``.

  Raises:
    FileNotFoundError: the file does not exist; the message says where to download it.
    ValueError: the file is not this network's state dict (names the keys and shapes).
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f"FID Inception weights not found at {path!r}. They cannot be downloaded from this "
        f"machine: on a machine with internet, download {FID_WEIGHTS_URL} (pytorch-fid's port "
        "of the TF 2015-12-05 Inception, about 95 MB), copy it here and pass its path with the "
        "config key eval.inception_weights.")
  return fid_inception_state_dict_to_variables(load_torch_state_dict(path))
