"""Avatar-attribute classifier: the offline feature network for the cartoon-avatar experiments.

    python launch.py --experiment avatars_classifier

The convnet of mnist_classifier on the rendered 64x64 avataaars faces of dcgan_avatars,
predicting the hair/head-wear style (`top`, 34 classes, exact labels from the renderer);
its `features` layer is the feature network of FID/KID/precision-recall for avatar GANs
(`--config.eval.classifier=avatars_classifier`). Adam 1e-3, batch 64.

Expected result (measured, README "The classifiers"): 96.3% test accuracy on 1,000 held-out
avatars after 1,500 steps (97.1% at step 1,000, kept as best); 5 min 8 s on shared CPU cores.
"""

from jgan.tasks import classifier


def get_config():
  c = classifier.default_config()
  c.data.name = "avatars"
  c.data.sources = ("offline",)
  c.data.image_size = 64
  c.data.num_examples = 10_000
  c.batch_size = 64
  c.total_steps = 1500
  c.log_every = 100
  c.sample_every = 1500
  c.checkpoint_every = 500
  c.eval_every = 500
  return c
