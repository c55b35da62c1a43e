"""WGAN-GP on rendered cartoon avatars at 64x64: the offline stand-in for wgan_gp_celeba.

    python launch.py --experiment wgan_gp_avatars

wgan_gp_celeba's model, loss and optimiser on the avatars of dcgan_avatars.

Expected result: not measured yet (a step is about 5 times a DCGAN step: 5 critic updates).
"""

from jgan.tasks import gan


def get_config():
  c = gan.wgan_gp_recipe(gan.default_config())
  c.data.name = "avatars"
  c.data.sources = ("offline",)
  c.data.image_size = 64
  c.data.num_examples = 10_000
  c.batch_size = 64
  c.total_steps = 2000
  c.log_every = 50
  c.sample_every = 250
  c.checkpoint_every = 500
  c.eval_every = 0
  return c
