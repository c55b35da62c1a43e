"""DTN on faces at 32x32: dtn_bitmoji's quick setting (photos -> 32x32 cartoon avatars).

    python launch.py --experiment dtn_bitmoji32

dtn_bitmoji (f = dlib's face ResNet, standardised; LFW faces -> rendered avataaars avatars,
alpha = 10 on the standardised descriptors, beta = 1, source flips/rotations,
identity-retrieval evaluation on the training and held-out faces) with the avatars and g's
output at 32x32 (DCGAN generator and ternary discriminator at 32, width 32; f still sees
150x150, upsampled), gamma rescaled to the 32x32x3 values (dtn_bitmoji.tv_weight(32)) and 600
steps.

Time (2-core CPU, 2026-11-24): 1.9 s a step alone (steps_per_sec 0.52 at the end of a 200-step
run), 2.1-2.2 s with a second run beside it, so about 20 minutes for 600 steps; f (150x150,
whatever g draws) is most of the step at this size. The first run renders the 10,000 avatars
at 32x32 once (about 2.5 minutes), then reads them from the cache.

Measured (`python launch.py --experiment dtn_bitmoji32 --config.total_steps=200`, stopped at
step 120, 2026-11-24): at step 100 the 80 training faces were retrieved at top-1 0.90, top-5
0.99, median rank 1 (chance 0.0125, 0.0625, 40.5) and the 20 held-out faces at top-1 0.10,
top-5 0.50, median rank 5.5 (chance 0.05, 0.25, 10.5); g's images were still noise at that
step (see dtn_bitmoji's docstring for the earlier settings that collapsed).
"""

from experiments import dtn_bitmoji


def get_config():
  c = dtn_bitmoji.get_config()
  c.data.image_size = 32
  c.loss.tv_weight = dtn_bitmoji.tv_weight(32)
  c.total_steps = 600
  return c
