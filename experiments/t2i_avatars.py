"""Text-to-image GAN on captioned cartoon avatars at 32x32: the offline default of issue 8.

    python launch.py --experiment t2i_avatars
    python -m jgan.sample --workdir runs/t2i_avatars --text "a smiling face with long red hair" \
        --num 16 --out /tmp/red_hair

10,000 rendered avataaars faces (pip dicebear + cairosvg, cached), each with 4 captions in
varied phrasings that state its hair style group, hair colour, glasses, mouth and facial hair
exactly (jgan.data.captioned); the combinations in captioned.HELD_OUT (long red hair, short
hair with sunglasses, ...) are removed from training. Captions are encoded once by the offline
all-MiniLM-L6-v2 (384-d, FlaxBertModel) and cached. G: DCGAN (width 64) on noise + a 128-d
text projection; D: DCGAN trunk + the text replicated at 4x4, a real/fake logit (GAN-CLS:
real/right = real, wrong/right and fake/right = fake, 1/2 each) and the five attribute heads
(AC-GAN, real images only). Adam 2e-4 (0.5, 0.999), batch 64, 5,000 steps.

Evaluation every 1,000 steps (jgan.tasks.t2i): 1,000 captions of held-out combinations, one
image each, judged by the attribute classifier (experiments/avatar_attributes_classifier.py,
trained first when runs/avatar_attributes_classifier has none): attr_acc/<attribute>,
attr_all_correct (the best checkpoint's metric), attr_combo_correct, next to the judge on real
test avatars (attr_real_*, the ceiling) and the shuffled-caption baseline (attr_shuffled_*,
chance given the generator's marginal); FID under the judge's features.

Expected result (measured 2026-11-24, README "Text to image"): 45 min 34 s on the 2-core CPU;
on 1,000 held-out-combination captions the judge finds the asked hair style 0.97, mouth 0.73,
mean of the five attributes 0.645 (shuffled captions: 0.34, 0.34, 0.334; real avatars 0.988)
at step 4,000 (the best checkpoint), FID 30.3 under the judge; 0.550 mean at step 5,000. G
ignores the noise (one image per caption).
"""

from jgan.tasks import t2i


def get_config():
  c = t2i.default_config()
  c.data.name = "avatars"
  c.data.sources = ("offline",)
  c.data.image_size = 32
  c.data.num_examples = 10_000
  c.data.text_encoder = "minilm"
  c.data.captions_per_image = 4
  c.batch_size = 64
  c.total_steps = 5000
  c.log_every = 50
  c.sample_every = 250
  c.checkpoint_every = 500
  c.eval_every = 1000
  c.eval.metrics = ("attributes", "fid")
  c.eval.classifier = "avatar_attributes_classifier"  # trained first if runs/ has none
  c.eval.num_examples = 1000
  c.eval.best_metric = "attr_all_correct"
  c.eval.best_mode = "max"
  return c
