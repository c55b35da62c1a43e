"""Where the time goes: each DCGAN layer's forward + backward, jgan vs PyTorch, side by side.

    python benchmarks/layers_vs_torch.py [--resolution 64] [--width 64] [--batch 64]

For every layer of the DCGAN generator and discriminator at the given size (jgan's flax
layer and the torch layer of the reference, benchmarks.torch_ref.torch_gan), times one forward
and one forward + backward (gradients for the input and the weights) alternately, and prints
each layer's times, FLOPs (XLA's cost analysis of the jax forward + backward), the ratio and the
share of the whole step. Convolutions only: the normalisations and activations are fused
into them by XLA and cost little.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import torch

from jgan.bench import timing
from jgan.models import dcgan, layers


def _plans(resolution: int, width: int, channels: int):
  """(name, kind, in shape HWC, out channels) of every conv layer of G and D."""
  size, chans = dcgan._generator_plan(resolution, width)  # pylint: disable=protected-access
  out = []
  s = size
  for i, (c_in, c_out) in enumerate(zip(chans, chans[1:] + [channels]), start=1):
    out.append((f"G up{i} {s}->{2 * s}", "up", (s, s, c_in), c_out))
    s *= 2
  c_in, s = channels, resolution
  for i, c in enumerate(dcgan._discriminator_plan(resolution, width)):  # pylint: disable=protected-access
    out.append((f"D conv{i} {s}->{s // 2}", "down", (s, s, c_in), c))
    c_in, s = c, s // 2
  return out


def _jax_layer(kind: str, c_out: int, impl: str):
  if kind == "up":
    return layers.SubpixelConvTranspose(c_out, use_bias=False, impl=impl)
  return layers.StridedConv4x4(c_out, use_bias=False)  # what DCGANDiscriminator uses


def _torch_layer(kind: str, c_in: int, c_out: int):
  if kind == "up":
    return torch.nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False)
  return torch.nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--resolution", type=int, default=64)
  parser.add_argument("--width", type=int, default=64)
  parser.add_argument("--channels", type=int, default=3)
  parser.add_argument("--batch", type=int, default=64)
  parser.add_argument("--impl", default="auto", choices=layers._IMPLS,  # pylint: disable=protected-access
                      help="SubpixelConvTranspose's implementation (the generator's layers)")
  parser.add_argument("--repetitions", type=int, default=5)
  parser.add_argument("--steps", type=int, default=3)
  args = parser.parse_args()
  rows = []
  for name, kind, (h, w, c_in), c_out in _plans(args.resolution, args.width, args.channels):
    layer = _jax_layer(kind, c_out, args.impl)
    x = jax.random.normal(jax.random.key(0), (args.batch, h, w, c_in))
    params = layer.init(jax.random.key(1), x)
    y = layer.apply(params, x)
    ct = jax.random.normal(jax.random.key(2), y.shape)
    fwd = jax.jit(layer.apply)
    bwd = jax.jit(jax.grad(lambda p, x: jnp.vdot(layer.apply(p, x), ct), argnums=(0, 1)))
    flops = timing.compiled_flops(bwd.lower(params, x).compile())
    t_layer = _torch_layer(kind, c_in, c_out)
    tx = torch.randn(args.batch, c_in, h, w, requires_grad=True)
    tct = torch.randn(args.batch, c_out, *y.shape[1:3])

    def torch_fwd():
      with torch.no_grad():
        t_layer(tx)

    def torch_bwd():
      tx.grad = None
      t_layer.zero_grad(set_to_none=True)
      t_layer(tx).backward(tct)

    runners = {"jax_fwd": lambda: fwd(params, x), "torch_fwd": torch_fwd,
               "jax_bwd": lambda: bwd(params, x), "torch_bwd": torch_bwd}
    for run in runners.values():  # warm-up (and compile)
      jax.block_until_ready(run())
    times = {k: float(np.median(v)) for k, v in timing.alternate(
        runners, repetitions=args.repetitions, steps=args.steps).items()}
    rows.append((name, times, flops))
  total_j = sum(t["jax_bwd"] for _, t, _ in rows)
  total_t = sum(t["torch_bwd"] for _, t, _ in rows)
  peak = timing.matmul_peak()
  print(f"DCGAN {args.resolution}x{args.resolution}, width {args.width}, batch {args.batch}, "
        f"SubpixelConvTranspose impl={args.impl!r}; "
        f"fp32 matmul peak {peak / 1e9:.0f} GFLOP/s; times in ms (median of "
        f"{args.repetitions} x {args.steps}, alternated)")
  print("| layer | fwd jax | fwd torch | fwd+bwd jax | fwd+bwd torch | jax/torch speed | "
        "GFLOP (fwd+bwd) | jax peak fraction | share of jax total |")
  print("|" + "---|" * 9)
  for name, t, flops in rows:
    print(f"| {name} | {1e3 * t['jax_fwd']:.1f} | {1e3 * t['torch_fwd']:.1f} | "
          f"{1e3 * t['jax_bwd']:.1f} | {1e3 * t['torch_bwd']:.1f} | "
          f"{t['torch_bwd'] / t['jax_bwd']:.2f}x | {flops / 1e9:.2f} | "
          f"{flops / t['jax_bwd'] / peak:.2f} | {t['jax_bwd'] / total_j:.0%} |")
  print(f"| all conv layers | | | {1e3 * total_j:.0f} | {1e3 * total_t:.0f} | "
        f"{total_t / total_j:.2f}x | | | |")


if __name__ == "__main__":
  main()
