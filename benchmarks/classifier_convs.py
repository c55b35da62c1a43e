"""Forward and both gradients of the classifier's conv layers: 3x3 SAME vs 4x4 stride-2.

Run: python benchmarks/classifier_convs.py

Why ConvClassifier uses strided 4x4 convolutions instead of 3x3 conv + max pool on XLA:CPU.
Batch 128, MNIST-sized maps; median of 5 timed calls after compile.
"""

import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


def _time(fn, *args, repeats=5):
  fn = jax.jit(fn)
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return 1000 * float(np.median(times))


def main():
  print(f"{'layer':<34} {'fwd ms':>8} {'d/dW ms':>8} {'d/dx ms':>8}")
  for kernel, strides in (((3, 3), (1, 1)), ((4, 4), (2, 2))):
    for h, cin, cout in ((28, 1, 32), (14, 32, 64), (7, 64, 128)):
      conv = nn.Conv(cout, kernel, strides=strides, padding="SAME", use_bias=False)
      x = jnp.ones((128, h, h, cin))
      params = conv.init(jax.random.key(0), x)
      fwd = lambda p, x, conv=conv: conv.apply(p, x).sum()
      row = (_time(fwd, params, x), _time(jax.grad(fwd), params, x),
             _time(jax.grad(fwd, argnums=1), params, x))
      name = f"{kernel[0]}x{kernel[0]} s{strides[0]} {h}x{h}x{cin}->{cout}"
      print(f"{name:<34} {row[0]:>8.1f} {row[1]:>8.1f} {row[2]:>8.1f}")


if __name__ == "__main__":
  main()
