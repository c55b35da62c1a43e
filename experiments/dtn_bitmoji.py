"""DTN on faces: photos -> cartoon avatars (paper's face -> emoji), judged by identity retrieval.

    python launch.py --experiment dtn_bitmoji
    # with CelebA (TFDS celeb_a or a folder) as the source instead of the 100 LFW crops:
    python launch.py --experiment dtn_bitmoji --config.source_data.name=celeb_a \
        --config.source_data.dir=/path/to/img_align_celeba

Expected result (measured 2026-11-24, README "DTN on faces"; 1,200 steps in 52 min 30 s on the
2-core CPU): held-out identity retrieval top-1 0.55, top-5 0.85, median rank 1 of 20 at step
600 (the best checkpoint; chance 0.05, 0.25, 10.5), falling to 0.20 / 0.50 / 4.5 at step 1,200
as g overfits the 80 training faces. The avatars are avatar-shaped but noisy.

Why these values (and the 32x32 quick setting, dtn_bitmoji32): docs/experiments/dtn_bitmoji.md.
"""

from jgan.tasks import dtn

PAPER_ALPHA = 100.0  # L_CONST
PAPER_BETA = 1.0  # L_TID
PAPER_GAMMA = 0.05  # L_TV, on the scale of L_TID's per-value mean (see tv_weight)
STANDARDIZED_ALPHA = 10.0  # alpha on standardised descriptors: unrelated faces are ~2 apart


def tv_weight(image_size: int, channels: int = 3) -> float:
  """gamma for jgan's summed L_TV: the paper's 0.05 divided by the number of values."""
  return PAPER_GAMMA / (image_size * image_size * channels)


def get_config():
  c = dtn.default_config()
  c.data.name = "avatars"
  c.data.sources = ("offline",)
  c.data.image_size = 64
  c.data.num_examples = 10_000
  c.source_data.name = "lfw_faces"
  c.source_data.sources = ("offline", "tfds", "folder")  # offline: lfw_faces; else celeb_a
  c.source_data.image_size = 150  # f's input size: one upsampling, done once on the host
  c.source_augment.flip, c.source_augment.rotation = True, 5.0  # 80 training faces are few
  c.encoder.name = "dlib_resnet"
  c.encoder.image_shape = (150, 150, 3)
  c.encoder.feature_dim = 128
  c.encoder.standardize = True  # without it g ignores which face it is given
  c.model.generator.width = c.model.discriminator.width = 32  # DCGAN's 64: 2x slower a step
  c.loss.const_weight = STANDARDIZED_ALPHA
  c.loss.tid_weight = PAPER_BETA
  c.loss.tv_weight = tv_weight(c.data.image_size)
  c.loss.distance = "mean_squared"
  c.batch_size = 32
  c.total_steps = 1200
  c.log_every = 10
  c.sample_every = 100
  c.checkpoint_every = 100
  c.eval_every = 200
  c.eval.metrics = ("retrieval",)
  c.eval.retrieval_splits = ("train", "test")  # fit on the 80 training faces, and held out
  c.eval.num_examples = 1000
  c.eval.batch_size = 50
  c.eval.best_metric, c.eval.best_mode = "retrieval_top1", "max"
  c.num_samples = 20
  return c
