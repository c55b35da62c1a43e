"""DTN on faces at 32x32: dtn_bitmoji's quick setting (photos -> 32x32 cartoon avatars).

    python launch.py --experiment dtn_bitmoji32

dtn_bitmoji with the avatars and g's output at 32x32 (f still sees 150x150), gamma rescaled to
the 32x32x3 values and 600 steps: about 20 minutes on the 2-core CPU (1.9 s a step alone).

Expected result: the 600-step run is not measured yet. A 200-step run
(`python launch.py --experiment dtn_bitmoji32 --config.total_steps=200`, stopped at step 120,
2026-11-24) retrieved at step 100 the 80 training faces at top-1 0.90, median rank 1, and the
20 held-out faces at top-1 0.10, top-5 0.50, median rank 5.5 (chance 0.05, 0.25, 10.5); g's
images were still noise at that step.

Time and measurements: docs/experiments/dtn_bitmoji32.md; why these values:
docs/experiments/dtn_bitmoji.md.
"""

from experiments import dtn_bitmoji


def get_config():
  c = dtn_bitmoji.get_config()
  c.data.image_size = 32
  c.loss.tv_weight = dtn_bitmoji.tv_weight(32)
  c.total_steps = 600
  return c
