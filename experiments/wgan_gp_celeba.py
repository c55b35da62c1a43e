"""WGAN-GP on CelebA at 64x64 (Gulrajani et al. 2017) on the DCGAN architecture.

    python launch.py --experiment wgan_gp_celeba --config.data.dir=/path/to/img_align_celeba

The DCGAN G; a critic with layer norm instead of batch norm; Wasserstein loss + gradient
penalty (weight 10); 5 critic updates per G update; Adam 1e-4, betas (0, 0.9); batch 64.
Data as dcgan_celeba (TFDS `celeb_a` or a folder); offline, run `wgan_gp_avatars` instead.

Expected result: not measured here (CelebA is not available on our machines); see
`wgan_gp_avatars` in the README.
"""

from experiments import dcgan_celeba
from jgan.tasks import gan


def get_config():
  # dcgan_celeba's data and schedule, with the WGAN-GP model, loss and optimiser.
  c = gan.wgan_gp_recipe(dcgan_celeba.get_config())
  return c
