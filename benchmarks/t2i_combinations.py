"""Where a t2i_avatars run loses its held-out accuracy: per held-out pair, per attribute.

    python benchmarks/t2i_combinations.py --workdir runs/t2i_avatars [--best]

Generates the run's evaluation set (the 1,000 held-out-combination captions and noise of
``eval.seed``, EMA generator when there is one, as the in-run evaluation), reads the images with
the judge (``eval.classifier``) and prints, for each held-out pair of ``captioned.HELD_OUT``, the
accuracy of every attribute and of the pair itself, then the confusion matrix (rows: asked for,
columns: read) of each attribute over all 1,000.
"""

from __future__ import annotations

import argparse

import jax.numpy as jnp
import numpy as np

from jgan import runs, text
from jgan.data import captioned
from jgan.evaluation import attributes
from jgan.tasks import t2i


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--best", action="store_true", help="the best checkpoint, not the last")
  args = parser.parse_args(argv)
  run = runs.load_run(args.workdir, best=args.best, prerequisites=True)
  c = run.config
  captions, labels, mask = t2i.held_out_eval_set(c.data, num=c.eval.num_examples,
                                                 seed=c.eval.seed)
  embeddings = text.cached_embeddings(c.data.text_encoder, captions)
  z = np.random.default_rng([c.eval.seed, 3]).standard_normal(
      (len(labels), c.model.latent_dim)).astype(np.float32)
  out = run.task.sample(run.state, {"z": jnp.asarray(z), "text": jnp.asarray(embeddings)})
  images = out.get("samples_ema", out["samples"])
  judge = run.prerequisites["judge"]
  names, counts = captioned.attribute_spec(c.data)
  pred = attributes.attribute_predictions(np.asarray(judge.apply(images)["logits"]), counts)
  print(f"{args.workdir} step {run.step}: accuracy per held-out pair (rows) and attribute")
  print(f"{'pair':52s}" + "".join(f"{n[:11]:>12s}" for n in names) + f"{'pair':>8s}")
  for i, combo in enumerate(captioned.HELD_OUT):
    rows = np.arange(len(labels)) % len(captioned.HELD_OUT) == i
    accs = []
    for a in range(len(names)):
      given = labels[rows, a] >= 0
      accs.append(float(np.mean(pred[rows, a][given] == labels[rows, a][given])))
    pair = attributes.combination_accuracy(pred[rows], labels[rows], mask[rows])
    print(f"{str(dict(combo)):52s}" + "".join(f"{x:12.2f}" for x in accs) + f"{pair:8.2f}")
  for a, name in enumerate(names):
    given = labels[:, a] >= 0
    values = captioned.AVATAR_ATTRIBUTES[name]
    print(f"\n{name}: asked for (rows) x read (columns) {values}")
    for v, value in enumerate(values):
      row = [int(np.sum((labels[given, a] == v) & (pred[given, a] == w)))
             for w in range(counts[a])]
      print(f"  {value:>10s} " + " ".join(f"{x:5d}" for x in row))


if __name__ == "__main__":
  main()
