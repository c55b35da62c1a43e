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

from experiments import avatars_classifier


def get_config():
  c = avatars_classifier.get_config()  # the same convnet, data and schedule
  c.targets = "attributes"
  c.data.image_size = 32  # t2i_avatars' size
  c.data.text_encoder = "hash"  # only the attribute labels are used
  c.data.captions_per_image = 1
  c.data.hold_out = False  # the judge sees every combination
  return c
