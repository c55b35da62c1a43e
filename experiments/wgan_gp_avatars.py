"""WGAN-GP on rendered cartoon avatars at 64x64: the offline stand-in for wgan_gp_celeba.

    python launch.py --experiment wgan_gp_avatars

wgan_gp_celeba's model, loss and optimiser on the avatars of dcgan_avatars.

Expected result: not measured yet (a step is about 5 times a DCGAN step: 5 critic updates).
"""

from experiments import dcgan_avatars
from jgan.tasks import gan


def get_config():
  # dcgan_avatars's data and schedule, with the WGAN-GP model, loss and optimiser.
  c = gan.wgan_gp_recipe(dcgan_avatars.get_config())
  c.total_steps = 2000
  return c
