"""DCGAN at 32x32 on FashionMNIST: a quick convolutional run on any machine.

    python launch.py --experiment dcgan_fashion_mnist32

The DCGAN recipe (width 32) on FashionMNIST resized to 32x32, batch 64; FID/KID/precision-
recall under fashion_mnist_classifier's features every 1,000 steps.

Expected result (measured 2026-11-23, see README): 3,000 steps in about 9 minutes on 2 shared
CPU cores; FID 5.1 (best, step 2,000) / 5.3 at the end, precision 0.75, recall 0.64 under
fashion_mnist_classifier features (real vs real 0.10).
"""

from jgan.tasks import gan


def get_config():
  c = gan.dcgan_recipe(gan.default_config(), width=32)
  c.data.name = "fashion_mnist"
  c.data.image_size = 32
  c.batch_size = 64
  c.total_steps = 3000
  c.log_every = 100
  c.sample_every = 500
  c.checkpoint_every = 1000
  c.eval_every = 1000
  c.eval.classifier = "fashion_mnist_classifier"
  return c
