"""Forward+backward (grads w.r.t. input and params) of x2 upsampling layers, [64,16,16,256] -> 128.

Run: python benchmarks/upsample_layers.py
"""
import time
import jax, jax.numpy as jnp, numpy as np, flax.linen as nn
from jgan.models.layers import SubpixelConvTranspose, conv_transpose_kernel_to_subpixel

x = jax.random.normal(jax.random.key(0), (64, 16, 16, 256))
ct = nn.ConvTranspose(128, (4, 4), strides=(2, 2), padding="SAME")
pc = ct.init(jax.random.key(1), x)
ps = {"params": {"kernel": conv_transpose_kernel_to_subpixel(pc["params"]["kernel"]),
                 "bias": pc["params"]["bias"]}}
mods = {"nn.ConvTranspose": (ct, pc),
        "Subpixel impl=conv": (SubpixelConvTranspose(128, impl="conv"), ps),
        "Subpixel impl=matmul": (SubpixelConvTranspose(128, impl="matmul"), ps)}

def make(mod):
  def loss(p, x):
    return jnp.sum(mod.apply(p, x) ** 2)
  return jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))

fns = {k: (make(m), p) for k, (m, p) in mods.items()}
ref = None
for k, (f, p) in fns.items():
  l, (gp, gx) = jax.block_until_ready(f(p, x))
  if ref is None:
    ref = (l, gx)
  else:
    print(f"{k}: loss rel diff {abs(float(l - ref[0])) / abs(float(ref[0])):.1e}, "
          f"dx max abs diff {float(jnp.abs(gx - ref[1]).max()):.1e}")
times = {k: [] for k in fns}
for rep in range(3):  # alternate the variants
  for k, (f, p) in fns.items():
    for _ in range(3):
      t = time.perf_counter(); jax.block_until_ready(f(p, x)); times[k].append(time.perf_counter() - t)
for k, v in times.items():
  print(f"{k:22s} median {np.median(v)*1e3:8.1f} ms  min {np.min(v)*1e3:8.1f} ms  max {np.max(v)*1e3:8.1f} ms (n={len(v)})")
base = np.median(times["nn.ConvTranspose"])
for k in list(times)[1:]:
  print(f"speed-up of {k} over nn.ConvTranspose (median): {base / np.median(times[k]):.1f}x")
a = jax.random.normal(jax.random.key(2), (4096, 4096)); mm = jax.jit(lambda a: a @ a)
jax.block_until_ready(mm(a)); t = time.perf_counter(); jax.block_until_ready(mm(a)); dt = time.perf_counter() - t
print(f"4096^2 fp32 matmul: {2 * 4096**3 / dt / 1e9:.0f} GFLOP/s (machine reference)")
