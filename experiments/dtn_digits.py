"""DTN on digits: printed digits (or SVHN) -> MNIST, the paper's benchmark, judged by transfer accuracy.

    python launch.py --experiment dtn_digits
    # ablations: --config.loss.tid_weight=0 (no L_TID), --config.loss.const_weight=0 (no L_CONST)

f = the frozen `digits_encoder`, g = DCGAN generator to 32x32 digits, ternary DCGAN D; g
minimises L_GANG + 15 L_CONST + 15 L_TID (the paper's digit weights); Adam 2e-4, beta1 0.5,
batch 64. f and the judge `mnist_classifier` are trained first when their runs are missing.

Expected result (measured 2026-11-23, README's DTN table): 89.1% transfer accuracy and FID 8.9
at step 3,000 (84.0% at 1,000); 79 min on 2 shared CPU cores (about 0.9 steps/s). The paper
reports 90.66% for SVHN -> MNIST.

The setting and its evaluation in full: docs/experiments/dtn_digits.md.
"""

from jgan.tasks import dtn


def get_config():
  c = dtn.default_config()
  c.data.name = "mnist"
  c.data.image_size = 32
  c.source_data.name = "printed_digits"
  c.source_data.sources = ("offline",)
  c.source_data.image_size = 32
  c.source_data.styles = "seen"  # f and g see the style split's training side only...
  c.eval.heldout_style = {"styles": "heldout"}  # ...and are judged on unseen fonts/layouts too
  c.batch_size = 64
  c.total_steps = 3000
  c.log_every = 50
  c.sample_every = 500
  c.checkpoint_every = 500
  c.eval_every = 500
  return c
