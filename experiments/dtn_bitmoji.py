"""DTN on faces: photos -> cartoon avatars (paper's face -> emoji), judged by identity retrieval.

    python launch.py --experiment dtn_bitmoji
    # with CelebA (TFDS celeb_a or a folder) as the source instead of the 100 LFW crops:
    python launch.py --experiment dtn_bitmoji --config.source_data.name=celeb_a \
        --config.source_data.dir=/path/to/img_align_celeba

Result (measured 2026-12-04, README "DTN on faces"; 29 min 34 s for the DTN on the idle 2-core
CPU at 256 GFLOP/s, plus 4 min for the judge avatars_classifier when missing): at step 1,200
FID 34.8 (1,000 translations, avatars_classifier features), held-out retrieval top-1 0.20 /
top-5 0.70 (best 0.50 at step 400), blurred top-1 0.20. The avatars are still noisy.

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
  c.data.name, c.data.sources = "avatars", ("offline",)
  c.data.image_size, c.data.num_examples = 64, 10_000
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
  c.log_every, c.sample_every, c.checkpoint_every = 10, 100, 100
  c.eval_every = 200
  # Retrieval (also on blurred translations) and, under avatars_classifier, the FID of every
  # face's translations under the 10 fixed augmentations, KID of the 20 held out, and L_TID's.
  c.eval.metrics = ("retrieval", "fid", "kid_heldout", "reconstruction")
  c.eval.classifier, c.eval.fid_variants = "avatars_classifier", True
  c.eval.fid_splits = ("train", "test")
  c.eval.retrieval_splits = ("train", "test")  # fit on the 80 training faces, and held out
  c.eval.num_examples, c.eval.batch_size = 1000, 50
  c.eval.best_metric, c.eval.best_mode = "retrieval_top1", "max"
  c.num_samples = 20
  return c
