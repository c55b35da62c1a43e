"""DCGAN on rendered cartoon avatars at 64x64: the offline stand-in for dcgan_celeba.

    python launch.py --experiment dcgan_avatars

dcgan_celeba's model and optimiser on 10,000 avataaars-style cartoon faces rendered offline
(rendered once, about 2 minutes, then cached), batch 64, 1,500 steps, plus an EMA 0.995 of G's
weights (evaluated every 500 steps, drawn in samples_ema/).

Expected result (measured 2026-11-24, README "DCGAN and WGAN-GP at 64x64"): 1.35 s a step
alone on the 2-core CPU (the 1,500 steps took 50 min on shared cores); recognisable, smooth
avatar faces, less varied than the real ones; FID of the EMA generator 163 / 97.5 / 101 at
steps 500 / 1,000 / 1,500 under avatars_classifier features (real vs real 0.75).

Why the EMA (the run without it): docs/experiments/dcgan_avatars.md.
"""

from jgan.tasks import gan


def get_config():
  c = gan.dcgan_recipe(gan.default_config())
  c.data.name = "avatars"
  c.data.sources = ("offline",)
  c.data.image_size = 64
  c.data.num_examples = 10_000
  c.batch_size = 64
  c.total_steps = 1500
  c.log_every = 50
  c.sample_every = 250
  c.checkpoint_every = 500
  c.eval_every = 500
  c.ema_decay = 0.995  # half-life 138 steps: the raw G's samples stayed noisy
  # The feature network of `python -m jgan.evaluate` (and of eval_every > 0): avatar features.
  c.eval.classifier = "avatars_classifier"
  return c
