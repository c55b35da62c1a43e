"""FashionMNIST classifier: the offline feature network for FashionMNIST experiments.

    python launch.py --experiment fashion_mnist_classifier

The same convnet as mnist_classifier (3 conv blocks 32-64-128, a 128-d feature layer), Adam
1e-3, batch 128, on the 60,000 training images; test accuracy on the 10,000 test images.

Expected result (measured 2026-11-23, see README): 90.7% test accuracy on the 10,000 test
images after 4,000 steps (about 7 minutes on 2 shared CPU cores).
"""

from jgan.tasks import classifier


def get_config():
  c = classifier.default_config()
  c.data.name = "fashion_mnist"
  c.batch_size = 128
  c.total_steps = 4000
  c.log_every = 100
  c.sample_every = 1000
  c.checkpoint_every = 1000
  c.eval_every = 1000
  return c
