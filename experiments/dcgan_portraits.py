"""DCGAN on a folder of portraits (the Keras portrait-DCGAN notebook's recipe) at 64x64.

    python launch.py --experiment dcgan_portraits --config.data.dir=/path/to/portraits

Any folder of images (recursive; jpg/png/webp, any size and mode: center-cropped, resized to
64 and converted to RGB, decoded once and cached). DCGAN G/D with the notebook's settings:
G lr 2e-4, D lr 5e-5 (Adam, beta1 0.5), one-sided label smoothing 0.1 (real targets 0.9),
random flips and rotations up to 10 degrees of the real images, samples from fixed noise,
batch 64.

Expected result: depends on the user's folder; a test runs it on a few generated images.
"""

from jgan.tasks import gan


def get_config():
  c = gan.dcgan_recipe(gan.default_config())
  c.data.name = "image_folder"
  c.data.sources = ("folder",)
  c.data.image_size = 64
  c.optim.g_lr = 2e-4
  c.optim.d_lr = 5e-5
  c.loss.label_smoothing = 0.1
  c.augment.flip = True
  c.augment.rotation = 10.0
  c.batch_size = 64
  c.total_steps = 10_000
  c.log_every = 100
  c.sample_every = 500
  c.checkpoint_every = 1000
  return c
