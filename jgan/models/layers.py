"""Layers shared by the jgan models.

The main piece is `SubpixelConvTranspose`, a x2 upsampling layer that computes exactly what a
stride-2, 4x4-kernel transposed convolution computes (PyTorch ``ConvTranspose2d(k=4, s=2, p=1)``,
flax ``nn.ConvTranspose(F, (4, 4), strides=(2, 2), padding='SAME')``), written as
"pad by one, 2x2 VALID convolution to 4*F channels, pick each output phase's window, interleave".
It has the same taps and FLOPs but avoids XLA:CPU's very slow kernel gradient of
``lax.conv_transpose`` (see PERF_NOTES.md).

Derivation (one spatial axis; the 2-D layer applies it to both axes independently).
PyTorch's transposed convolution with weight ``W[k]`` (k = 0..3), stride 2, padding 1 scatters
``y[2i + k - 1] += x[i] W[k]``, so output ``o = 2m + r`` (phase r in {0, 1}) receives::

  y[2m]     = x[m - 1] W[3] + x[m]     W[1]
  y[2m + 1] = x[m]     W[2] + x[m + 1] W[0]

flax/lax ``conv_transpose`` (``transpose_kernel=False``, 'SAME' = padding (2, 2) of the
2x-dilated input) correlates with the kernel unflipped, so its kernel is PyTorch's flipped:
``K[k] = W[3 - k]``. Pad x by one (``xp[j] = x[j - 1]``) and run a 2-tap VALID correlation; window
``n`` sees ``(xp[n], xp[n + 1]) = (x[n - 1], x[n])``. Then phase r of output m is window
``n = m + r`` with taps ``(a = 0, a = 1) = (K[r], K[r + 2])``, i.e. tap a of phase r is
``K[2a + r]``: the 4x4 kernel reshaped to (a, r) = (2, 2) per axis.
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

Dtype = Any
Initializer = Any

_IMPLS = ("auto", "taps", "col2im", "matmul", "conv")
# "auto" takes col2im below this many output features (a generator's RGB/grey output layer),
# taps above: measured fwd+bwd at batch 64 here, taps vs col2im, 16x16x128 -> 64 features
# 212 vs 522 ms, 32x32x64 -> 3 features 134 vs 89 ms (forward 64 vs 9 ms).
_COL2IM_BELOW = 16

leaky_relu_02 = functools.partial(nn.leaky_relu, negative_slope=0.2)
"""LeakyReLU with slope 0.2, the GAN default (Radford et al. 2016)."""

dcgan_init = nn.initializers.normal(stddev=0.02)
"""DCGAN weight init: N(0, 0.02) for conv and dense kernels (Radford et al. 2016, section 4)."""


def dcgan_scale_init(key: jax.Array, shape, dtype: Dtype = jnp.float32) -> jax.Array:
  """Normalisation scale init N(1, 0.02), as in the PyTorch DCGAN reference implementation."""
  return (1.0 + 0.02 * jax.random.normal(key, shape, jnp.float32)).astype(dtype)


def conv_transpose_kernel_to_subpixel(kernel: jax.Array) -> jax.Array:
  """Maps a flax ``nn.ConvTranspose`` 4x4 kernel to a `SubpixelConvTranspose` kernel.

  The source kernel is that of ``nn.ConvTranspose(F, (4, 4), strides=(2, 2), padding='SAME')``
  (``transpose_kernel=False``, the flax default). The map is a permutation of entries, so it is
  exact and an N(0, s) initialisation stays N(0, s).

  Args:
    kernel: [4, 4, C_in, F] (kh, kw, in, out).

  Returns:
    [2, 2, C_in, 4 * F]; output channel ``(r_h * 2 + r_w) * F + f`` holds phase (r_h, r_w).

  References:
    Shi et al. 2016, "Real-Time Single Image and Video Super-Resolution Using an Efficient
    Sub-Pixel Convolutional Neural Network" (sub-pixel convolution); Odena et al. 2016,
    "Deconvolution and Checkerboard Artifacts" (transposed conv = interleaved phases).
  """
  kh, kw, cin, f = kernel.shape
  if (kh, kw) != (4, 4):
    raise ValueError(f"expected a [4, 4, C_in, F] kernel, got shape {kernel.shape}")
  # K[2a + r] per axis -> axes (a_h, r_h, a_w, r_w, C_in, F).
  k = kernel.reshape(2, 2, 2, 2, cin, f)
  k = k.transpose(0, 2, 4, 1, 3, 5)  # (a_h, a_w, C_in, r_h, r_w, F)
  return k.reshape(2, 2, cin, 4 * f)


def subpixel_kernel_to_conv_transpose(kernel: jax.Array) -> jax.Array:
  """Inverse of `conv_transpose_kernel_to_subpixel`: [2, 2, C_in, 4F] -> [4, 4, C_in, F]."""
  ah, aw, cin, f4 = kernel.shape
  if (ah, aw) != (2, 2) or f4 % 4:
    raise ValueError(f"expected a [2, 2, C_in, 4 * F] kernel, got shape {kernel.shape}")
  f = f4 // 4
  k = kernel.reshape(2, 2, cin, 2, 2, f)  # (a_h, a_w, C_in, r_h, r_w, F)
  k = k.transpose(0, 3, 1, 4, 2, 5)  # (a_h, r_h, a_w, r_w, C_in, F)
  return k.reshape(4, 4, cin, f)


def torch_conv_transpose_weight_to_flax(weight: Any) -> np.ndarray:
  """Maps a PyTorch ``ConvTranspose2d(k=4, s=2, p=1)`` weight to a flax ConvTranspose kernel.

  Args:
    weight: [C_in, F, 4, 4] array (``module.weight.detach().numpy()``).

  Returns:
    [4, 4, C_in, F] kernel for ``nn.ConvTranspose(F, (4, 4), strides=(2, 2), padding='SAME')``;
    feed it to `conv_transpose_kernel_to_subpixel` for `SubpixelConvTranspose`.
  """
  w = np.asarray(weight)
  return np.ascontiguousarray(w.transpose(2, 3, 0, 1)[::-1, ::-1])


def _shift(y: jax.Array, dh: int, dw: int) -> jax.Array:
  """``out[:, m, n] = y[:, m + dh, n + dw]``, zero outside; dh, dw in {-1, 0, 1}."""
  _, h, w, _ = y.shape
  yp = jnp.pad(y, ((0, 0), (1, 1), (1, 1), (0, 0)))
  return yp[:, 1 + dh:1 + dh + h, 1 + dw:1 + dw + w]


def _assemble_phases(tap_output) -> jax.Array:
  """The upsampled output [B, 2H, 2W, F] straight from the taps' outputs on the unpadded input.

  ``tap_output(a, b)`` is [B, H, W, 4, F]: tap (a, b)'s contribution to each phase
  (r_h * 2 + r_w). Window n of the padded input reads x[n + a - 1] and phase r of output m is
  window m + r, so ``out[2m + r_h, 2n + r_w] = sum_ab tap_output(a, b)[m + r_h + a - 1,
  n + r_w + b - 1, phase]``: shifts, sums and the interleave in one pass over the outputs,
  instead of padding each tap's output to [B, H + 1, W + 1, 4F] and interleaving after.
  """
  taps = {(a, b): tap_output(a, b) for a in range(2) for b in range(2)}
  bsz, h, w, _, f = taps[0, 0].shape
  rows = []
  for rh in range(2):
    cols = [sum(_shift(taps[a, b][..., rh * 2 + rw, :], rh + a - 1, rw + b - 1)
                for a in range(2) for b in range(2)) for rw in range(2)]
    rows.append(jnp.stack(cols, axis=3))  # [B, H, W, 2(r_w), F]
  return jnp.stack(rows, axis=2).reshape(bsz, 2 * h, 2 * w, f)


def _resolve_impl(impl: str, features: int) -> str:
  if impl not in _IMPLS:
    raise ValueError(f"impl={impl!r} is not one of {_IMPLS}")
  if impl == "auto":
    return "col2im" if features < _COL2IM_BELOW else "taps"
  return impl


def depth_to_space_phases(y: jax.Array, features: int) -> jax.Array:
  """Interleaves the four phases of a padded 2x2 VALID convolution's output.

  Args:
    y: [B, H + 1, W + 1, 4 * F], channel ``(r_h * 2 + r_w) * F + f`` holding phase (r_h, r_w).
    features: F.

  Returns:
    [B, 2H, 2W, F] with ``out[:, 2m + r_h, 2n + r_w] = y[:, m + r_h, n + r_w, phase (r_h, r_w)]``.
  """
  b, hp, wp, _ = y.shape
  h, w = hp - 1, wp - 1
  y = y.reshape(b, hp, wp, 2, 2, features)
  rows = []
  for rh in range(2):
    cols = [y[:, rh:rh + h, rw:rw + w, rh, rw, :] for rw in range(2)]
    rows.append(jnp.stack(cols, axis=3))  # [B, H, W, 2(r_w), F]
  out = jnp.stack(rows, axis=2)  # [B, H, 2(r_h), W, 2(r_w), F]
  return out.reshape(b, 2 * h, 2 * w, features)


def _taps_forward(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """Impl "taps" forward: one dot per tap on the unpadded x (H*W rows, no copies of shifted
  input views), outputs assembled by `_assemble_phases`: [B, 2H, 2W, F]."""
  b, h, w, _ = x.shape
  f = kernel.shape[-1] // 4
  return _assemble_phases(
      lambda a, bb: jnp.einsum("bhwc,cf->bhwf", x, kernel[a, bb]).reshape(b, h, w, 4, f))


def _col2im_forward(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """Impl "col2im" forward: ONE dot of the unpadded x to all taps' outputs ([C, 4 * 4F]),
  assembled by `_assemble_phases`: [B, 2H, 2W, F]."""
  b, h, w, c = x.shape
  f4 = kernel.shape[-1]
  k_all = jnp.transpose(kernel, (2, 0, 1, 3)).reshape(c, 4 * f4)  # columns (a, b, F')
  y = jnp.einsum("bhwc,cf->bhwf", x, k_all).reshape(b, h, w, 2, 2, 4, f4 // 4)
  return _assemble_phases(lambda a, bb: y[:, :, :, a, bb])


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _upsample(x: jax.Array, kernel: jax.Array, impl: str) -> jax.Array:
  """`SubpixelConvTranspose` without bias, impl "taps" or "col2im": [B, 2H, 2W, F].

  Forward: the taps' dots on the unpadded input, shifted, summed and interleaved in one pass
  (`_assemble_phases`); gradients: dots on each tap's output gradient (`_tap_gradients`).
  """
  return (_col2im_forward if impl == "col2im" else _taps_forward)(x, kernel)


def _upsample_fwd(x, kernel, impl):
  return _upsample(x, kernel, impl), (x, kernel)


def _tap_gradients(g: jax.Array) -> list[jax.Array]:
  """Each tap's output gradient from the layer's output gradient g [B, 2H, 2W, F]: the
  adjoint of `_assemble_phases`. Tap (a, b)'s is [B, H, W, 4F], phase (r_h, r_w)'s channels
  holding ``g[2(m - r_h - a + 1) + r_h, 2(n - r_w - b + 1) + r_w]`` (zero outside)."""
  b, h2, w2, f = g.shape
  phases = g.reshape(b, h2 // 2, 2, w2 // 2, 2, f)
  return [jnp.concatenate([_shift(phases[:, :, rh, :, rw], 1 - rh - a, 1 - rw - bb)
                           for rh in range(2) for rw in range(2)], axis=-1)
          for a in range(2) for bb in range(2)]


def _upsample_bwd(impl, residuals, g):
  # Each tap's output gradient (`_tap_gradients`), then dots: no copies of the input. Faster
  # than differentiating the taps on shifted views of the padded input (the backward alone,
  # per DCGAN-64 layer: 1.25-2x, measured): "taps" two dots per tap, "col2im" one dot each for
  # dx and dkernel over all taps side by side (16F columns: better for small F).
  x, kernel = residuals
  grads = _tap_gradients(g)
  if impl == "col2im":
    c = x.shape[-1]
    g_all = jnp.concatenate(grads, axis=-1)  # [B, H, W, (a, b, 4F)]
    k_all = jnp.transpose(kernel, (0, 1, 3, 2)).reshape(-1, c)  # [(a, b, 4F), C]
    dx = jnp.einsum("bhwf,fc->bhwc", g_all, k_all)
    dkernel = jnp.einsum("bhwc,bhwf->cf", x, g_all).reshape(c, 2, 2, -1).transpose(1, 2, 0, 3)
    return dx, dkernel
  dx = sum(jnp.einsum("bhwf,cf->bhwc", grads[2 * a + b], kernel[a, b])
           for a in range(2) for b in range(2))
  dkernel = jnp.stack([jnp.stack([jnp.einsum("bhwc,bhwf->cf", x, grads[2 * a + b])
                                  for b in range(2)]) for a in range(2)])
  return dx, dkernel


_upsample.defvjp(_upsample_fwd, _upsample_bwd)


class SubpixelConvTranspose(nn.Module):
  """x2 upsampling equal to a stride-2, 4x4, 'SAME' transposed convolution.

  Computes exactly ``nn.ConvTranspose(features, (4, 4), strides=(2, 2), padding='SAME')``
  (= PyTorch ``ConvTranspose2d(C_in, features, 4, 2, 1)``) given the kernel mapped by
  `conv_transpose_kernel_to_subpixel`, as a 2x2 VALID convolution of the input padded by one
  pixel to ``4 * features`` channels (no bias), depth-to-space of the four phases, then a
  [features] bias ("taps" and "col2im" skip the padding and assemble the phases directly).

  Params: ``kernel`` [2, 2, C_in, 4 * features], ``bias`` [features] (if ``use_bias``); the same
  names as ``nn.ConvTranspose``'s, so a converted param tree only swaps kernels.

  ``impl`` picks how the 2x2 VALID convolution runs: "auto" (default: "col2im" below 16
  features, else "taps"), "taps" (forward: one dot per tap on the unpadded input, the outputs
  shifted, summed and interleaved in one pass; gradients: dots on each tap's output gradient,
  gathered in one pass: plain dots throughout), "col2im" (forward: one dot of the unpadded
  input to all taps' outputs, assembled the same way: best when ``features`` is small),
  "matmul" (im2col of the four taps and one dot; its kernel gradient is 2-4x faster on XLA:CPU
  than the convolution's) or "conv" (``lax.conv_general_dilated``, for accelerators with native
  convolutions). All compute the same (``python benchmarks/layers_vs_torch.py`` times them).
  "taps" and "col2im" define their gradients by hand (``jax.custom_vjp``): reverse mode only,
  like `StridedConv4x4`; use "matmul" or "conv" for forward-mode autodiff (``jax.jvp``).

  Shapes: x [B, H, W, C_in] -> [B, 2H, 2W, features] in ``dtype``.

  References:
    Shi et al. 2016, "Real-Time Single Image and Video Super-Resolution Using an Efficient
    Sub-Pixel Convolutional Neural Network"; jgan PERF_NOTES.md (why not ``nn.ConvTranspose``).
  """

  features: int
  use_bias: bool = True
  impl: str = "auto"
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  kernel_init: Initializer = nn.initializers.lecun_normal()
  bias_init: Initializer = nn.initializers.zeros_init()

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    impl = _resolve_impl(self.impl, self.features)
    _, h, w, cin = x.shape
    kernel = self.param(
        "kernel", self.kernel_init, (2, 2, cin, 4 * self.features), self.param_dtype)
    x = x.astype(self.dtype)
    kernel = kernel.astype(self.dtype)
    if impl in ("taps", "col2im"):  # no input padding: the outputs are shifted into place
      y = _upsample(x, kernel, impl)
    else:
      # Pad explicitly, then VALID: an even kernel with explicit conv padding has a very slow
      # kernel gradient on XLA:CPU (PERF_NOTES.md).
      x = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
      if impl == "matmul":
        # im2col of the 2x2 windows, [B, H+1, W+1, 4*C_in] in (a_h, a_w, C_in) order, then one
        # matmul: its kernel gradient is a plain dot, 2-4x faster on XLA:CPU than the conv's.
        cols = jnp.concatenate(
            [x[:, a:a + h + 1, b:b + w + 1, :] for a in range(2) for b in range(2)], axis=-1)
        y = jnp.einsum("bhwc,cf->bhwf", cols, kernel.reshape(4 * cin, 4 * self.features))
      else:
        y = jax.lax.conv_general_dilated(
            x, kernel, window_strides=(1, 1), padding="VALID",
            dimension_numbers=("NHWC", "HWIO", "NHWC"))
      y = depth_to_space_phases(y, self.features)
    if self.use_bias:
      bias = self.param("bias", self.bias_init, (self.features,), self.param_dtype)
      y = y + bias.astype(self.dtype)
    return y


def _strided_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
  return jax.lax.conv_general_dilated(x, kernel, window_strides=(2, 2),
                                      padding=((1, 1), (1, 1)),
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _subpixel_apply(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """`SubpixelConvTranspose`'s computation (impl "auto") on x [B, H, W, C] with a
  [2, 2, C, 4F] kernel, no bias: [B, 2H, 2W, F]."""
  return _upsample(x, kernel, _resolve_impl("auto", kernel.shape[-1] // 4))


@jax.custom_vjp
def strided_conv4x4(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """4x4 stride-2 convolution with one pixel of padding (flax 'SAME' on even sizes).

  The same function as ``lax.conv_general_dilated``; only its input gradient differs in
  form: it is the transposed convolution of the output gradient, written as the sub-pixel
  layer's four dots instead of XLA's input-dilated convolution. The gradient penalty
  differentiates that input gradient again with respect to the kernel, and XLA:CPU's kernel
  gradient of an input-dilated convolution is 20-40x slower than a dot's (PERF_NOTES.md).

  Args:
    x: [B, H, W, C_in], H and W even.
    kernel: [4, 4, C_in, F] (HWIO, as ``nn.Conv``'s).

  Returns:
    [B, H / 2, W / 2, F].
  """
  return _strided_conv(x, kernel)


def _strided_fwd(x, kernel):
  return _strided_conv(x, kernel), (x, kernel)


def _strided_bwd(residuals, g):
  x, kernel = residuals
  # dx[j] = sum over 2i + k - 1 = j of g[i] W[k]^T: PyTorch's ConvTranspose2d(4, 2, 1) of g
  # with weight [F, C_in, 4, 4] = W transposed, mapped to the sub-pixel kernel.
  ct_kernel = jnp.transpose(kernel, (0, 1, 3, 2))[::-1, ::-1]  # flax ConvTranspose [4,4,F,C_in]
  dx = _subpixel_apply(g, conv_transpose_kernel_to_subpixel(ct_kernel))
  dkernel = jax.vjp(lambda k: _strided_conv(x, k), kernel)[1](g)[0]
  return dx.astype(x.dtype), dkernel


strided_conv4x4.defvjp(_strided_fwd, _strided_bwd)


class _ConvFields(nn.Module):
  """The fields of jgan's convolution layers (those of ``nn.Conv`` they use)."""

  features: int
  use_bias: bool = True
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  kernel_init: Initializer = nn.initializers.lecun_normal()
  bias_init: Initializer = nn.initializers.zeros_init()


class StridedConv4x4(_ConvFields):
  """``nn.Conv(features, (4, 4), strides=(2, 2), padding='SAME')`` for even input sizes, with
  the input gradient of `strided_conv4x4` (fast double backward for gradient penalties).

  Params ``kernel`` [4, 4, C_in, features] and ``bias`` [features]: the names and shapes of
  ``nn.Conv``'s, so checkpoints of either load into the other.

  References:
    Radford et al. 2016 (the DCGAN discriminator's strided convolutions); Gulrajani et al.
    2017 (the penalty that differentiates their input gradient).
  """

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    _, h, w, cin = x.shape
    if h % 2 or w % 2:
      raise ValueError(f"StridedConv4x4 needs even sizes, got {h}x{w}; use nn.Conv.")
    kernel = self.param("kernel", self.kernel_init, (4, 4, cin, self.features),
                        self.param_dtype)
    y = strided_conv4x4(x.astype(self.dtype), kernel.astype(self.dtype))
    if self.use_bias:
      y = y + self.param("bias", self.bias_init, (self.features,),
                         self.param_dtype).astype(self.dtype)
    return y


_RESIZE_IMPLS = ("subpixel", "conv")
# Per axis, nearest x2 then a 3-tap 'SAME' correlation k is the 4-tap stride-2 transposed
# convolution with taps (k0, k0 + k1, k1 + k2, k2) (flax ConvTranspose order, see
# `resize_conv_kernel_to_conv_transpose`).
_RESIZE_TO_TRANSPOSE = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 1], [0, 0, 1]], np.float32)


def resize_conv_kernel_to_conv_transpose(kernel: jax.Array) -> jax.Array:
  """Maps a `ResizeConv` 3x3 kernel to the ``nn.ConvTranspose`` 4x4 kernel of the same function.

  One axis: output ``2m`` of nearest x2 + 3-tap correlation ``k`` is
  ``k0 x[m-1] + (k1 + k2) x[m]`` and output ``2m + 1`` is ``(k0 + k1) x[m] + k2 x[m+1]``, which is
  the stride-2 transposed convolution with taps ``(k0, k0 + k1, k1 + k2, k2)`` (layers' module
  docstring: phase r's taps are K[r], K[r + 2]). Linear, so gradients flow through it.

  Args:
    kernel: [3, 3, C_in, F].

  Returns:
    [4, 4, C_in, F] for ``nn.ConvTranspose(F, (4, 4), strides=(2, 2), padding='SAME')``.

  References:
    Odena, Dumoulin, Olah 2016, "Deconvolution and Checkerboard Artifacts", Distill (resize-
    convolution is a transposed convolution whose kernel cannot draw a checkerboard).
  """
  if kernel.shape[:2] != (3, 3):
    raise ValueError(f"expected a [3, 3, C_in, F] kernel, got shape {kernel.shape}")
  m = jnp.asarray(_RESIZE_TO_TRANSPOSE, kernel.dtype)
  return jnp.einsum("ia,jb,abcf->ijcf", m, m, kernel)


class ResizeConv(_ConvFields):
  """x2 upsampling by resize-convolution: each pixel repeated 2x2 (nearest), then a 3x3 'SAME'
  convolution (zero padding).

  Every output pixel sees all nine taps of the kernel, so it cannot draw the checkerboard that
  a stride-2 transposed convolution's uneven kernel overlap draws.

  ``impl``: "subpixel" (default) computes it as the `SubpixelConvTranspose` whose kernel
  `resize_conv_kernel_to_conv_transpose` derives from the 3x3 one: the same function at the
  sub-pixel layer's cost (16 taps per input pixel instead of 36 on the 2x-upsampled map,
  1.6x faster a dtn_bitmoji step here); "conv" runs the nearest resize and
  ``lax.conv_general_dilated`` (for accelerators with native convolutions, and the tests).

  Params: ``kernel`` [3, 3, C_in, features], ``bias`` [features] (if ``use_bias``): the names
  of ``nn.Conv``'s, whichever ``impl``.

  Shapes: x [B, H, W, C_in] -> [B, 2H, 2W, features] in ``dtype``.

  References:
    Odena, Dumoulin, Olah 2016, "Deconvolution and Checkerboard Artifacts", Distill.
  """

  impl: str = "subpixel"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.impl not in _RESIZE_IMPLS:
      raise ValueError(f"ResizeConv impl={self.impl!r} is not one of {_RESIZE_IMPLS}")
    kernel = self.param("kernel", self.kernel_init, (3, 3, x.shape[-1], self.features),
                        self.param_dtype)
    x, kernel = x.astype(self.dtype), kernel.astype(self.dtype)
    if self.impl == "subpixel":
      y = _subpixel_apply(x, conv_transpose_kernel_to_subpixel(
          resize_conv_kernel_to_conv_transpose(kernel)))
    else:
      y = jax.lax.conv_general_dilated(
          jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2), kernel, (1, 1), "SAME",
          dimension_numbers=("NHWC", "HWIO", "NHWC"))
    if self.use_bias:
      y = y + self.param("bias", self.bias_init, (self.features,), self.param_dtype).astype(
          self.dtype)
    return y
