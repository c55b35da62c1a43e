"""Text-to-image GAN on Oxford-102 flowers at 64x64 with Reed et al.'s captions (the seed's task).

    python launch.py --experiment t2i_flowers --config.data.data_dir=TFDS_DIR \
        --config.data.captions_dir=CAPTIONS_DIR

Needs TFDS ``oxford_flowers102`` (array_record) in ``data.data_dir`` and Reed et al.'s
captions (``text_c10/``) in ``data.captions_dir``; without them it stops and says how to get
them (the offline default is t2i_avatars). MiniLM sentence vectors + 100-d noise -> DCGAN G ->
64x64; D: GAN-CLS real/fake + one of 102 classes (AC-GAN). Batch 64, 20,000 steps.

Expected result: not measured here (the data is not available offline); an end-to-end test
runs it on a tiny locally built flowers-like TFDS dataset with captions
(tests/test_t2i_task.py).

The data and the recipe in full: docs/experiments/t2i_flowers.md.
"""

from jgan.tasks import t2i

SAMPLE_CAPTIONS = (
    "this flower has large pink petals with a yellow center",
    "a flower with white petals and a bright yellow stamen",
    "this flower is deep purple with long thin petals",
    "the petals of this flower are orange with dark spots",
    "a red flower with rounded overlapping petals",
    "this flower has bright yellow petals that form a cup",
    "a blue flower with five pointed petals",
    "the flower has many thin white petals around a green center",
)


def get_config():
  c = t2i.default_config()
  c.data.name = "oxford_flowers102"
  c.data.sources = ("tfds",)
  c.data.image_size = 64
  c.data.text_encoder = "minilm"
  c.data.captions_per_image = 10
  c.data.hold_out = False
  c.sample_captions = SAMPLE_CAPTIONS
  c.batch_size = 64
  c.total_steps = 20_000
  c.log_every = 50
  c.sample_every = 500
  c.checkpoint_every = 1000
  c.eval_every = 0
  c.eval.metrics = ()  # the attribute judge is for avatars; no flowers classifier yet
  return c
