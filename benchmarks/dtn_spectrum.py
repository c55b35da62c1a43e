"""Where a DTN run's high-frequency power sits: L_TID's reconstructions against real avatars.

    python benchmarks/dtn_spectrum.py runs/dtn_bitmoji [more workdirs ...]

For each run (its latest checkpoint, EMA generator): g(f(t)) for the last 200 cached target
descriptors (`encoder.cache`), mean-removed per image and channel, 2-D power spectrum averaged
over images and channels, and the share of the power in bands of max(|f_y|, |f_x|) (cycles per
pixel; 0.5 is the Nyquist frequency, where a checkerboard lives). The same for 200 real test
avatars of the first run's data.
"""

from __future__ import annotations

import glob
import sys

import jax.numpy as jnp
import numpy as np

from jgan import data as data_lib
from jgan import imaging, models, runs
from jgan import steps as steps_lib

BANDS = ((0, .125), (.125, .25), (.25, .375), (.375, .5), (.5, .51))


def band_shares(images: np.ndarray) -> list[float]:
  x = images - images.mean(axis=(1, 2), keepdims=True)
  power = (np.abs(np.fft.fft2(x, axes=(1, 2))) ** 2).mean(axis=(0, 3))
  h, w = power.shape
  r = np.maximum(np.abs(np.fft.fftfreq(h))[:, None], np.abs(np.fft.fftfreq(w))[None, :])
  return [float(power[(r >= a) & (r < b)].sum() / power.sum()) for a, b in BANDS]


def main() -> None:
  workdirs = sys.argv[1:] or ["runs/dtn_bitmoji"]
  print("| images | " + " | ".join(f"{a}-{b}" for a, b in BANDS[:-1]) + " | Nyquist |")
  print("|---" * (len(BANDS) + 1) + "|")
  for i, workdir in enumerate(workdirs):
    run = runs.load_run(workdir)
    state, config = run.state, run.config
    if i == 0:
      real = data_lib.from_config(config.data, split="test").images[:200]
      shares = band_shares(np.asarray(imaging.to_float(np.asarray(real))))
      print("| real test avatars | " + " | ".join(f"{s:.4f}" for s in shares) + " |")
    kwargs = config.model.generator.to_dict()
    size = config.data.image_size
    generator = models.build_generator(kwargs.pop("name"), image_shape=(size, size, 3), **kwargs)
    cache = np.load(sorted(glob.glob(f"{workdir}/feature_cache/*.npz"))[0])
    params, stats = ((state.ema_g_params, state.ema_g_batch_stats)
                     if state.ema_g_params is not None else (state.g_params, state.g_batch_stats))
    out = steps_lib._apply(generator, params, stats, jnp.asarray(cache["target"][-200:]),
                           train=False)[0]
    shares = band_shares(np.asarray(out))
    print(f"| {workdir} step {int(state.step)} g(f(t)) | " + " | ".join(f"{s:.4f}" for s in shares)
          + " |", flush=True)


if __name__ == "__main__":
  main()
