"""DTN on faces at 32x32: dtn_bitmoji's quick setting (photos -> 32x32 cartoon avatars).

    python launch.py --experiment dtn_bitmoji32

dtn_bitmoji (f = dlib's face ResNet, LFW faces -> rendered avataaars avatars, alpha = 100,
beta = 1, identity-retrieval evaluation) with the avatars and g's output at 32x32 (DCGAN
generator and ternary discriminator at 32, width 32; f still sees 150x150, upsampled), gamma
rescaled to the 32x32x3 values (dtn_bitmoji.tv_weight(32)) and 600 steps.

Time (2-core CPU shared with other training jobs, 2026-11-23): 2.0-2.9 s a step (the train
loop's steps_per_sec, 0.34-0.49, in 20- and 200-step runs), so 25-30 minutes for 600 steps;
f (150x150, whatever g draws) is most of the step at this size. The first run renders the
10,000 avatars at 32x32 once (about 2.5 minutes there), then reads them from the cache.

Expected result: see README (not yet measured to the end). In a 200-step run (2026-11-23,
2.9 s a step on the shared CPU) L_TID fell from 0.42 to 0.20 but L_CONST barely moved
(0.0036 -> 0.0032), every face translated to the same blurred avatar and retrieval stayed at
chance (top-1 0.05, median rank 11.5 of 20).
"""

from experiments import dtn_bitmoji


def get_config():
  c = dtn_bitmoji.get_config()
  c.data.image_size = 32
  c.loss.tv_weight = dtn_bitmoji.tv_weight(32)
  c.total_steps = 600
  return c
