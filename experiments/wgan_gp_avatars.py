"""WGAN-GP on rendered cartoon avatars at 64x64: the offline stand-in for wgan_gp_celeba.

    python launch.py --experiment wgan_gp_avatars

wgan_gp_celeba's loss, critic and optimiser on the avatars of dcgan_avatars, at DCGAN width 32
(the paper's: --config.model.generator.width=64 --config.model.discriminator.width=64), 1,000
generator steps and an EMA 0.99 of G's weights (evaluated, and drawn in samples_ema/).

Expected result (measured 2026-11-24, README "DCGAN and WGAN-GP at 64x64"): about 3 s a step
alone on the 2-core CPU (1,000 steps took 65 min on shared cores); recognisable but blurred
avatar faces; FID of the EMA generator 89 / 60 / 51 at steps 500 / 750 / 1,000 under
avatars_classifier features (real vs real 0.75).

Why width 32 and EMA 0.99: docs/experiments/wgan_gp_avatars.md.
"""

from experiments import dcgan_avatars
from jgan.tasks import gan


def get_config():
  # dcgan_avatars's data and evaluation, with the WGAN-GP model, loss and optimiser.
  c = gan.wgan_gp_recipe(dcgan_avatars.get_config(), width=32)
  c.total_steps = 1000
  c.ema_decay = 0.99  # half-life 69 steps: 0.999 still holds 37% of the initial weights at 1,000
  c.eval_every = 250
  c.checkpoint_every = 250
  return c
