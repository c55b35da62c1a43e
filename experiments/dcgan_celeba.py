"""DCGAN on CelebA at 64x64 (Radford et al. 2016), the seed notebook's face GAN.

    python launch.py --experiment dcgan_celeba --config.data.data_dir=~/tensorflow_datasets
    python launch.py --experiment dcgan_celeba --config.data.dir=/path/to/img_align_celeba

G: z 100 -> 4x4x512 -> 8 -> 16 -> 32 -> 64x64x3 (batch norm, ReLU, tanh; sub-pixel x2
upsampling, exactly a stride-2 4x4 transposed conv); D: strided 4x4 convs 64-128-256-512,
LeakyReLU 0.2, batch norm except the first; non-saturating BCE; Adam 2e-4, beta1 0.5; batch
64. Data: TFDS `celeb_a` prepared in data.data_dir (center crop, resize to 64) or any folder
of CelebA / CelebA-HQ images in data.dir. CelebA is not installable offline: without it the
run stops before training and says to run `dcgan_avatars` instead.

Expected result: not measured here (CelebA is not available on our machines); the offline
counterpart `dcgan_avatars` is measured in the README.
"""

from jgan.tasks import gan


def get_config():
  c = gan.dcgan_recipe(gan.default_config())
  c.data.name = "celeb_a"
  c.data.sources = ("tfds", "folder")
  c.data.image_size = 64
  c.batch_size = 64
  c.total_steps = 20_000
  c.log_every = 100
  c.sample_every = 1000
  c.checkpoint_every = 2000
  c.eval_every = 0  # FID needs eval.feature_network=inception_v3 and its weights file
  c.eval.feature_network = "inception_v3"
  return c
