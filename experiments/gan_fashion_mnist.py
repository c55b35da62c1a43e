"""MLP GAN on FashionMNIST with k D-steps per G-step (the PyTorch MLP-GAN notebook, in JAX).

    python launch.py --experiment gan_fashion_mnist

The same MLP G/D as gan_mnist, non-saturating BCE, Adam 2e-4 (beta1 0.5), batch 64,
`n_critic` D updates per G update, 100 epochs of the 60,000 training images, a sample grid
every 10 epochs and a loss plot at the end. Every 10 epochs it logs FID, KID and
precision/recall of 5,000 samples under `fashion_mnist_classifier`'s features (trained first
if runs/fashion_mnist_classifier is missing) and keeps the best checkpoint by FID.
Data: TFDS `fashion_mnist` when prepared in --config.data.data_dir, else Debian's
dataset-fashion-mnist (scripts/install_data.sh).

Expected result (measured 2026-11-23 on the 2-core CPU, see README): 26-36 steps/s at batch
64 alone (about 40 minutes for 100 epochs); recognisable clothes, shoes and bags after 10
epochs; after 100 epochs FID 3.5 / precision 0.85 / recall 0.45 under
fashion_mnist_classifier features (real vs real: 0.10).
"""

from jgan.tasks import gan

TRAIN_EXAMPLES = 60_000
EPOCHS = 100


def get_config():
  c = gan.default_config()
  c.data.name = "fashion_mnist"
  c.model.generator.name = "mlp"
  c.model.discriminator.name = "mlp"
  c.loss.name = "non_saturating"
  c.optim.b1 = 0.5
  c.batch_size = 64
  c.n_critic = 1  # k: D updates per G update; each sees its own batch of real images
  steps_per_epoch = TRAIN_EXAMPLES // (c.batch_size * c.n_critic)
  c.total_steps = EPOCHS * steps_per_epoch
  c.log_every = 200
  c.sample_every = 10 * steps_per_epoch
  c.checkpoint_every = 10 * steps_per_epoch
  c.eval_every = 10 * steps_per_epoch  # FID/KID/PR under the FashionMNIST classifier
  c.eval.classifier = "fashion_mnist_classifier"
  return c
