"""WGAN-GP at 32x32 on FashionMNIST: the gradient-penalty critic, quickly.

    python launch.py --experiment wgan_gp_fashion_mnist32

The WGAN-GP recipe (width 32, layer-norm critic, 5 critic steps, Adam 1e-4 (0, 0.9)) on
FashionMNIST resized to 32x32, batch 64; FID/KID/precision-recall under
fashion_mnist_classifier's features every 500 steps.

Expected result (measured 2026-11-24, README "Sample quality"): FID 5.53, KID 0.086,
precision 0.72, recall 0.70 at step 1,500 under fashion_mnist_classifier (15.1 at 500, 8.13 at
1,000); 43 min on the 2 CPU cores while other jobs shared them.
"""

from experiments import dcgan_fashion_mnist32
from jgan.tasks import gan


def get_config():
  # dcgan_fashion_mnist32's data and schedule, with the WGAN-GP model, loss and optimiser.
  c = gan.wgan_gp_recipe(dcgan_fashion_mnist32.get_config(), width=32)
  c.total_steps = 1500
  c.log_every = 50
  c.sample_every = 250
  c.checkpoint_every = 500
  c.eval_every = 500
  return c
