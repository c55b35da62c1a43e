"""WGAN-GP on rendered cartoon avatars at 64x64: the offline stand-in for wgan_gp_celeba.

    python launch.py --experiment wgan_gp_avatars

wgan_gp_celeba's loss and critic (Wasserstein loss + gradient penalty 10, layer-norm critic,
Adam betas (0, 0.9)) on the avatars of dcgan_avatars, at DCGAN width 32. The training recipe
differs from the paper's, for this CPU budget: one critic update per generator update instead
of 5, with two time-scale learning rates (critic 6e-4, G 2e-4, instead of 1e-4 for both),
2,500 generator steps, an EMA of G's weights (0.999, warmed up; evaluated every 500 steps and
drawn in samples_ema/). A step costs 0.64 s instead of 3 s, so the budget buys 2,500 G
updates instead of ~700. The paper's recipe: --config.n_critic=5 --config.optim.g_lr=1e-4
--config.optim.d_lr=1e-4.

Expected result (measured 2026-12-05, README "DCGAN and WGAN-GP at 64x64"): 29 min 27 s alone
on the 2-core CPU at 214 GFLOP/s from an empty workdir (avatars rendered, judge trained);
varied avatar faces (hair styles, sunglasses, beards, skin tones, shirts), some smudged; FID of
the EMA generator 41.3 / 30.1 / 26.4 / 22.9 / 20.3 at steps 500 / 1,000 / 1,500 / 2,000 / 2,500
under avatars_classifier features (real vs real 0.75; the paper's recipe at 1,000 steps, ~50
min: 51.1); precision and recall still near 0 (0.003 / 0.056).

Why, and what else was tried: docs/experiments/wgan_gp_avatars.md.
"""

from experiments import dcgan_avatars
from jgan.tasks import gan


def get_config():
  # dcgan_avatars's data and evaluation, with the WGAN-GP model and loss.
  c = gan.wgan_gp_recipe(dcgan_avatars.get_config(), width=32)
  # TTUR (Heusel et al. 2017) in place of 5 critic updates: a 0.64 s step instead of 3 s.
  c.n_critic = 1
  c.optim.g_lr, c.optim.d_lr = 2e-4, 6e-4
  c.total_steps = 2500
  c.ema_decay = 0.999  # capped by the warm-up at 0.9964 at step 2,500
  c.eval_every = 500
  c.checkpoint_every = 500
  return c
