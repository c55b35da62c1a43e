"""Tests of jgan.models.layers: sub-pixel x2 upsampling == 4x4 stride-2 transposed convolution."""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgan.models import layers


def _torch_conv_transpose2d(x, weight):
  """PyTorch ConvTranspose2d(k=4, s=2, p=1, bias=False) by its definition, in numpy, NHWC.

  y[b, 2i + kh - 1, 2j + kw - 1, o] += x[b, i, j, c] * weight[c, o, kh, kw], cropped to 2H x 2W.
  """
  b, h, w, _ = x.shape
  out = np.zeros((b, 2 * h + 2, 2 * w + 2, weight.shape[1]), np.float64)
  for kh in range(4):
    for kw in range(4):
      out[:, kh:kh + 2 * h:2, kw:kw + 2 * w:2, :] += np.einsum(
          "bhwc,co->bhwo", x.astype(np.float64), weight[:, :, kh, kw])
  return out[:, 1:-1, 1:-1, :]


def _lhs_dilated_conv(x, flax_kernel):
  """The same transposed convolution as a dilated-input convolution (lax.conv_general_dilated)."""
  return jax.lax.conv_general_dilated(
      x, flax_kernel, window_strides=(1, 1), padding=((2, 2), (2, 2)), lhs_dilation=(2, 2),
      dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _conv_transpose_and_subpixel(seed, x_shape, features, impl="matmul"):
  rng = np.random.default_rng(seed)
  x = jnp.asarray(rng.standard_normal(x_shape), jnp.float32)
  ct = nn.ConvTranspose(features, (4, 4), strides=(2, 2), padding="SAME")
  ct_vars = {"params": {
      "kernel": jnp.asarray(rng.standard_normal((4, 4, x_shape[-1], features)), jnp.float32),
      "bias": jnp.asarray(rng.standard_normal((features,)), jnp.float32)}}
  sp = layers.SubpixelConvTranspose(features, impl=impl)
  sp_vars = {"params": {
      "kernel": layers.conv_transpose_kernel_to_subpixel(ct_vars["params"]["kernel"]),
      "bias": ct_vars["params"]["bias"]}}
  return x, ct, ct_vars, sp, sp_vars


def test_kernel_maps_are_inverse_permutations():
  k = jnp.arange(4 * 4 * 3 * 5, dtype=jnp.float32).reshape(4, 4, 3, 5)
  s = layers.conv_transpose_kernel_to_subpixel(k)
  chex.assert_shape(s, (2, 2, 3, 20))
  np.testing.assert_array_equal(np.sort(np.ravel(s)), np.ravel(k))
  np.testing.assert_array_equal(layers.subpixel_kernel_to_conv_transpose(s), k)
  # Phase (r_h, r_w) = (1, 0), tap (a_h, a_w) = (1, 1) holds K[2a_h + r_h, 2a_w + r_w] = K[3, 2].
  np.testing.assert_array_equal(s[1, 1, :, 2 * 5:3 * 5], k[3, 2])


def test_kernel_map_rejects_wrong_shapes():
  with pytest.raises(ValueError, match=r"\[4, 4, C_in, F\]"):
    layers.conv_transpose_kernel_to_subpixel(jnp.zeros((3, 3, 2, 2)))
  with pytest.raises(ValueError, match=r"\[2, 2, C_in, 4 \* F\]"):
    layers.subpixel_kernel_to_conv_transpose(jnp.zeros((2, 2, 2, 6)))


@pytest.mark.parametrize("impl", ["auto", "taps", "col2im", "matmul", "conv"])
@pytest.mark.parametrize("x_shape,features", [((2, 4, 4, 3), 5), ((1, 5, 7, 8), 4)])
def test_subpixel_equals_conv_transpose(x_shape, features, impl):
  x, ct, ct_vars, sp, sp_vars = _conv_transpose_and_subpixel(0, x_shape, features, impl)
  y_ct = jax.jit(ct.apply)(ct_vars, x)
  y_sp = jax.jit(sp.apply)(sp_vars, x)
  b, h, w, _ = x_shape
  chex.assert_shape(y_sp, (b, 2 * h, 2 * w, features))
  chex.assert_trees_all_close(y_sp, y_ct, atol=1e-5)

  # Gradients w.r.t. the input, and w.r.t. the kernel mapped the same way.
  r = jnp.asarray(np.random.default_rng(1).standard_normal(y_ct.shape), jnp.float32)
  def loss(apply, variables, x):
    return jnp.sum(apply(variables, x) * r)
  grad_fn = jax.jit(jax.grad(loss, argnums=(1, 2)), static_argnums=0)
  g_ct_vars, g_ct_x = grad_fn(ct.apply, ct_vars, x)
  g_sp_vars, g_sp_x = grad_fn(sp.apply, sp_vars, x)
  chex.assert_trees_all_close(g_sp_x, g_ct_x, atol=1e-5)
  chex.assert_trees_all_close(
      g_sp_vars["params"]["kernel"],
      layers.conv_transpose_kernel_to_subpixel(g_ct_vars["params"]["kernel"]), atol=1e-4)
  chex.assert_trees_all_close(g_sp_vars["params"]["bias"], g_ct_vars["params"]["bias"], atol=1e-4)


def test_flax_same_and_subpixel_match_pytorch_semantics():
  rng = np.random.default_rng(0)
  x = rng.standard_normal((2, 3, 5, 4)).astype(np.float32)
  torch_weight = rng.standard_normal((4, 6, 4, 4)).astype(np.float32)  # [C_in, F, kh, kw]
  expected = _torch_conv_transpose2d(x, torch_weight)
  chex.assert_shape(expected, (2, 6, 10, 6))

  kernel = layers.torch_conv_transpose_weight_to_flax(torch_weight)
  chex.assert_shape(kernel, (4, 4, 4, 6))
  np.testing.assert_allclose(_lhs_dilated_conv(x, kernel), expected, atol=1e-4)
  ct = nn.ConvTranspose(6, (4, 4), strides=(2, 2), padding="SAME", use_bias=False)
  np.testing.assert_allclose(ct.apply({"params": {"kernel": kernel}}, x), expected, atol=1e-4)
  sp = layers.SubpixelConvTranspose(6, use_bias=False)
  sp_kernel = layers.conv_transpose_kernel_to_subpixel(kernel)
  np.testing.assert_allclose(sp.apply({"params": {"kernel": sp_kernel}}, x), expected, atol=1e-4)


def test_subpixel_params_init_and_bf16():
  x = jnp.ones((2, 3, 3, 4))
  sp = layers.SubpixelConvTranspose(5, dtype=jnp.bfloat16)
  variables = jax.jit(sp.init)(jax.random.key(0, impl="rbg"), x)
  chex.assert_shape(variables["params"]["kernel"], (2, 2, 4, 20))
  chex.assert_shape(variables["params"]["bias"], (5,))
  chex.assert_type(variables["params"]["kernel"], jnp.float32)
  y = jax.jit(sp.apply)(variables, x)
  chex.assert_shape(y, (2, 6, 6, 5))
  chex.assert_type(y, jnp.bfloat16)


def test_subpixel_bad_impl():
  with pytest.raises(ValueError, match="'fft'.*matmul"):
    layers.SubpixelConvTranspose(3, impl="fft").init(jax.random.key(0), jnp.ones((1, 2, 2, 1)))


def test_small_helpers():
  chex.assert_trees_all_close(
      layers.leaky_relu_02(jnp.array([-1.0, 2.0])), jnp.array([-0.2, 2.0]))
  s = jax.jit(layers.dcgan_scale_init, static_argnums=1)(jax.random.key(0), (4096,))
  assert abs(float(s.mean()) - 1.0) < 0.003 and abs(float(s.std()) - 0.02) < 0.002


@pytest.mark.parametrize("x_shape", [(3, 8, 6, 5), (2, 28, 28, 1), (2, 4, 4, 16)])
def test_strided_conv_equals_nn_conv_to_the_second_derivative(x_shape):
  """Same params, outputs, gradients, and gradient-penalty gradients as nn.Conv 'SAME'."""
  x = jax.random.normal(jax.random.key(0), x_shape)
  ref = nn.Conv(7, (4, 4), strides=(2, 2), padding="SAME")
  ours = layers.StridedConv4x4(7)
  params = ref.init(jax.random.key(1), x)
  chex.assert_trees_all_equal_shapes(params, ours.init(jax.random.key(1), x))
  chex.assert_trees_all_close(ours.apply(params, x), ref.apply(params, x), atol=1e-5)
  ct = jax.random.normal(jax.random.key(2), ref.apply(params, x).shape)

  def grads(m):
    return jax.grad(lambda p, x: jnp.vdot(m.apply(p, x), ct), argnums=(0, 1))(params, x)

  def penalty_grads(m):
    def penalty(p):
      gx = jax.grad(lambda x: jnp.vdot(jnp.tanh(m.apply(p, x)), ct))(x)
      return jnp.sum(jnp.square(gx))
    return jax.grad(penalty)(params)

  chex.assert_trees_all_close(grads(ours), grads(ref), atol=1e-4)
  chex.assert_trees_all_close(penalty_grads(ours), penalty_grads(ref), rtol=1e-4, atol=1e-4)


def test_strided_conv_rejects_odd_sizes():
  with pytest.raises(ValueError, match="even sizes, got 7x8"):
    layers.StridedConv4x4(3).init(jax.random.key(0), jnp.ones((1, 7, 8, 2)))
