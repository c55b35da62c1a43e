"""WGAN-GP on CelebA at 64x64 (Gulrajani et al. 2017) on the DCGAN architecture.

    python launch.py --experiment wgan_gp_celeba --config.data.dir=/path/to/img_align_celeba

The DCGAN G; a critic with layer norm instead of batch norm; Wasserstein loss + gradient
penalty (weight 10); 5 critic updates per G update; Adam 1e-4, betas (0, 0.9); batch 64.
Data as dcgan_celeba (TFDS `celeb_a` or a folder); offline, run `wgan_gp_avatars` instead.

Expected result: not measured here (CelebA is not available on our machines); see
`wgan_gp_avatars` in the README.
"""

from jgan.tasks import gan


def get_config():
  c = gan.wgan_gp_recipe(gan.default_config())
  c.data.name = "celeb_a"
  c.data.sources = ("tfds", "folder")
  c.data.image_size = 64
  c.batch_size = 64
  c.total_steps = 20_000
  c.log_every = 100
  c.sample_every = 1000
  c.checkpoint_every = 2000
  c.eval_every = 0
  c.eval.feature_network = "inception_v3"
  return c
