"""Forward+backward of dtn_bitmoji's generator (DCGAN 64x64, width 32, batch 32) by upsampling.

Run: python benchmarks/resize_conv.py

Side by side in one process, interleaved: the sub-pixel transposed convolution (the default),
resize-convolution as nearest x2 + ``lax.conv`` (`ResizeConv(impl="conv")`) and resize-convolution
computed as a sub-pixel layer (`ResizeConv(impl="subpixel")`, the default impl: the same
function, checked here). Prints median times and ratios.
"""
import functools
import time

import jax
import jax.numpy as jnp
import numpy as np

from jgan.models import dcgan, layers


def generator_step(upsample: str, impl: str | None = None):
  g = dcgan.DCGANGenerator(64, width=32, upsample=upsample)
  z = jax.random.normal(jax.random.key(0), (32, 128))
  v = g.init(jax.random.key(1), z, train=False)

  def loss(params, z):
    # The generator builds ResizeConv with its default impl: swap the class while tracing.
    if impl is not None:
      dcgan.ResizeConv = functools.partial(layers.ResizeConv, impl=impl)
    try:
      out, _ = g.apply({"params": params, "batch_stats": v["batch_stats"]}, z, train=True,
                       mutable=["batch_stats"])
    finally:
      dcgan.ResizeConv = layers.ResizeConv
    return jnp.sum(jnp.sin(out))

  return jax.jit(jax.value_and_grad(loss)), v["params"], z


def main():
  fns = {"subpixel (transposed conv)": generator_step("subpixel"),
         "resize_conv impl=conv": generator_step("resize_conv", "conv"),
         "resize_conv impl=subpixel": generator_step("resize_conv", "subpixel")}
  outs = {k: jax.block_until_ready(f(p, z)) for k, (f, p, z) in fns.items()}
  a, b = outs["resize_conv impl=conv"], outs["resize_conv impl=subpixel"]
  diff = max(float(jnp.max(jnp.abs(x - y)) / jnp.max(jnp.abs(x)))
             for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
  print(f"resize_conv impl=subpixel vs impl=conv: loss and grads differ by {diff:.1e} "
        "(max abs difference / max abs value, worst leaf)")
  times = {k: [] for k in fns}
  for _ in range(5):  # alternate the variants
    for k, (f, p, z) in fns.items():
      for _ in range(3):
        t = time.perf_counter()
        jax.block_until_ready(f(p, z))
        times[k].append(time.perf_counter() - t)
  for k, v in times.items():
    print(f"{k:28s} median {np.median(v) * 1e3:7.1f} ms  min {np.min(v) * 1e3:7.1f} ms (n={len(v)})")
  med = {k: np.median(v) for k, v in times.items()}
  print(f"resize_conv: impl=conv / impl=subpixel {med['resize_conv impl=conv'] / med['resize_conv impl=subpixel']:.2f}x; "
        f"impl=subpixel / transposed conv {med['resize_conv impl=subpixel'] / med['subpixel (transposed conv)']:.2f}x")


if __name__ == "__main__":
  main()
