"""DCGAN on rendered cartoon avatars at 64x64: the offline stand-in for dcgan_celeba.

    python launch.py --experiment dcgan_avatars

dcgan_celeba's model and optimiser at DCGAN width 32 (the paper's 64:
--config.model.generator.width=64 --config.model.discriminator.width=64) on 10,000
avataaars-style cartoon faces rendered offline (once, about 2 minutes, then cached), batch 64,
4,000 steps, plus an EMA 0.999 of G's weights (evaluated every 1,000 steps, drawn in
samples_ema/). Width 32 costs a third of width 64's step, so the budget buys 4,000 steps.

Expected result (measured 2026-12-05, README "DCGAN and WGAN-GP at 64x64"): 26 min 18 s alone
on the 2-core CPU at 246 GFLOP/s from an empty workdir (avatars rendered, judge trained);
varied, mostly clean avatar faces; FID of the EMA generator 38.0 / 25.6 / 23.8 / 23.0 at steps
1,000 / 2,000 / 3,000 / 4,000 under avatars_classifier features (real vs real 0.75; the
previous width-64 recipe: 97.5 at best); precision and recall still near 0 (0.001 / 0.005).

Why width 32 and the EMA, and what else was tried: docs/experiments/dcgan_avatars.md.
"""

from jgan.tasks import gan


def get_config():
  # Width 32 (the paper's 64 costs 3x a step): more steps in the budget beat more channels.
  c = gan.dcgan_recipe(gan.default_config(), width=32)
  c.data.name = "avatars"
  c.data.sources = ("offline",)
  c.data.image_size = 64
  c.data.num_examples = 10_000
  c.batch_size = 64
  c.total_steps = 4000
  c.log_every = 50
  c.sample_every = 250
  c.checkpoint_every = 1000
  c.eval_every = 1000
  # The warm-up min(decay, (1+t)/(10+t)) caps it at 0.9978 at step 4,000 (a window of ~450 steps).
  c.ema_decay = 0.999
  # The feature network of `python -m jgan.evaluate` (and of eval_every > 0): avatar features.
  c.eval.classifier = "avatars_classifier"
  return c
