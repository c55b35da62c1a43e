"""DTN on faces at 32x32: dtn_bitmoji's quick setting (photos -> 32x32 cartoon avatars).

    python launch.py --experiment dtn_bitmoji32

dtn_bitmoji (its whole recipe: f cached, L_CONST and its contrastive partner on 8
translations perturbed before f, descriptor mixup, EMA of g) with the avatars and g's output at 32x32 (f still sees 150x150),
gamma rescaled to the 32x32x3 values and 600 steps.

Expected result (2026-12-06, docs/experiments/dtn_bitmoji32.md): 13 min 16 s sharing the 2
cores with two other runs (Adam (0.5, 0.999), D's lr 2e-4: dtn_bitmoji's before 2026-12-07); at step 600 FID 27.1, held-out top-1 0.35, top-5 0.80 (chance 0.05,
0.25), blurred top-1 0.50.

Time and measurements: docs/experiments/dtn_bitmoji32.md; why these values:
docs/experiments/dtn_bitmoji.md.
"""

from experiments import dtn_bitmoji


def get_config():
  c = dtn_bitmoji.get_config()
  c.data.image_size = 32
  c.loss.tv_weight = dtn_bitmoji.TV_SCALE * dtn_bitmoji.tv_weight(32)
  c.total_steps, c.eval_every = 600, 400
  c.model.generator.output_filter = ""  # the median filter is measured at 64x64 only
  # dtn_bitmoji's Adam (0, 0.9) and 3x D pay after ~1,200 steps; at 600 they lose (docs/)
  c.optim.b1, c.optim.b2, c.optim.d_lr = 0.5, 0.999, 2e-4
  # dtn_bitmoji's noise beside f(x) (2026-12-07) is measured at 64 only: the recipe above
  c.model.generator.noise_dim, c.loss.mode_seeking_weight = 0, 0.0
  return c
