"""DCGAN on rendered cartoon avatars at 64x64: the offline stand-in for dcgan_celeba.

    python launch.py --experiment dcgan_avatars

dcgan_celeba's model and optimiser on 10,000 avataaars-style cartoon faces rendered offline
(pip dicebear + cairosvg; rendered once, about 2 minutes, then cached), batch 64.

Expected result (measured 2026-11-23, see README): about 0.5 steps/s on the 2-core CPU;
face-shaped but noisy samples after 500 steps (FID 247 under avatars_classifier features,
real vs real 0.75), varied but still noisy faces after 1,000 (FID 113); the full 3,000 steps
not yet measured.
"""

from jgan.tasks import gan


def get_config():
  c = gan.dcgan_recipe(gan.default_config())
  c.data.name = "avatars"
  c.data.sources = ("offline",)
  c.data.image_size = 64
  c.data.num_examples = 10_000
  c.batch_size = 64
  c.total_steps = 3000
  c.log_every = 50
  c.sample_every = 250
  c.checkpoint_every = 500
  c.eval_every = 0
  # The feature network of `python -m jgan.evaluate` (and of eval_every > 0): avatar features.
  c.eval.classifier = "avatars_classifier"
  return c
