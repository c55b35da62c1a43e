"""Avatar attribute classifier: the judge of the text-to-image evaluation (issue 8).

    python launch.py --experiment avatar_attributes_classifier

The convnet of avatars_classifier, with one softmax head per captioned attribute of the
32x32 avatars of t2i_avatars (jgan.data.captioned.AVATAR_ATTRIBUTES: hair style group 4, hair
colour 6, glasses 4, mouth 3, facial hair 2; a hair colour under a head covering is -1, not
given, and skipped). It trains on every rendered avatar, held-out combinations included
(data.hold_out=False): it judges images, it is not the generator. The captioned dataset is
what carries the attribute labels; its "hash" text encoder is instant and the embeddings are
unused. t2i runs train it on their first evaluation when runs/avatar_attributes_classifier
has no checkpoint (config.eval.classifier). Adam 1e-3, batch 64, 1,500 steps.

Metrics (test split, 1,000 avatars): test_acc/<attribute>, test_accuracy (their mean; the
best checkpoint's metric) and test_all_correct.

Expected result: not measured yet.
"""

from jgan.tasks import classifier


def get_config():
  c = classifier.default_config()
  c.targets = "attributes"
  c.data.name = "avatars"
  c.data.sources = ("offline",)
  c.data.image_size = 32
  c.data.num_examples = 10_000
  c.data.text_encoder = "hash"  # only the attribute labels are used
  c.data.captions_per_image = 1
  c.data.hold_out = False  # the judge sees every combination
  c.batch_size = 64
  c.total_steps = 1500
  c.log_every = 100
  c.sample_every = 1500
  c.checkpoint_every = 500
  c.eval_every = 500
  return c
