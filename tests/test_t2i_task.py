"""Text-to-image: captioned avatars, the conditional models, the t2i step (learns, compiles
once), t2i_avatars and t2i_flowers end to end on tiny data, and sampling from text."""

from __future__ import annotations

import functools
import itertools
import json
import os
import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jgan import data, models, text
from jgan.data import captioned
from jgan.tasks import t2i
from tests.conftest import set_dotted

E = 16  # text embedding size of the step tests


def _key(seed):
  return jax.random.key(seed, impl="rbg")


# ------------------------------------------------------------------------------- captions


def test_avatar_captions_state_every_attribute_exactly():
  rng = np.random.default_rng(0)
  colour_words = {"black": ("black", "dark"), "red": ("red", "ginger")}
  for row, must in [([1, 3, 2, 0, 0], [r"(long|shoulders).*\b(red|ginger)\b|(red|ginger).*(long|shoulders)",
                                       r"sunglasses|shades", r"smil|happy|a smile", r"no beard|clean-shaven"]),
                    ([0, 0, 0, 1, 1], [r"short", r"\b(black|dark)\b", r"no glasses|bare eyes",
                                       r"open", r"beard|facial hair"]),
                    ([3, -1, 3, 2, 0], [r"wearing", r"eyepatch", r"serious|unsmiling"])]:
    for _ in range(8):
      caption = captioned.avatar_caption(row, rng=rng)
      for pattern in must:
        assert re.search(pattern, caption), (row, pattern, caption)
  assert colour_words  # the phrasings above are the module's own synonyms
  # Phrasings vary: 16 draws of one row give several distinct captions.
  assert len({captioned.avatar_caption([1, 3, 2, 0, 0], rng=rng) for _ in range(16)}) >= 6


def test_held_out_mask_and_random_labels():
  labels = captioned.random_avatar_labels(40, seed=0)
  assert labels.shape == (40, 5) and labels.dtype == np.int32
  assert captioned.held_out_mask(labels).all()  # every row is a held-out combination
  covered = labels[:, 0] == captioned.AVATAR_ATTRIBUTES["hair"].index("covered")
  assert (labels[covered, 1] == -1).all()
  plain = np.array([[0, 0, 0, 0, 0]], np.int32)  # short black hair, no glasses...
  assert not captioned.held_out_mask(plain).any()
  with pytest.raises(ValueError, match="'purple'"):
    captioned.held_out_mask(plain, [{"hair_colour": "purple"}])


@pytest.fixture(scope="module")
def avatars_config():
  c = t2i.default_config()
  c.data.text_encoder = "hash"
  c.data.num_examples = 48
  c.data.captions_per_image = 2
  return c


def test_captioned_avatars_carry_embeddings_and_labels_in_every_batch(avatars_config):
  ds = data.from_config(avatars_config.data)
  n = len(ds)
  caps = captioned.captions_of(avatars_config.data, split="train")
  assert len(caps) == n and all(len(c) == 2 for c in caps)
  assert ds.extras["text_embedding"].shape == (n, 2, 64)
  assert ds.extras["attributes"].shape == (n, 5)
  assert not captioned.held_out_mask(ds.extras["attributes"]).any()  # held out of "train"
  np.testing.assert_allclose(ds.extras["text_embedding"][0],
                             text.get_encoder("hash").encode(caps[0]), atol=1e-6)
  all_captions, all_labels = captioned.avatar_captions_and_labels(
      "train", num_examples=48, seed=0, captions_per_image=2)
  assert n == 48 - captioned.held_out_mask(all_labels).sum()
  test = data.from_config(avatars_config.data, split="test")
  assert len(test) == 4  # the test split keeps its held-out combinations
  batch = data.make_batches(ds, batch_size=8, seed=0)[3]
  assert set(batch) == {"image", "label", "text_embedding", "attributes"}
  assert batch["text_embedding"].shape == (8, 2, 64) and batch["image"].shape == (8, 32, 32, 3)
  np.testing.assert_array_equal(batch["label"], batch["attributes"][:, 0])


def test_recombined_labels_draw_each_attribute_from_its_training_marginal():
  """Rows drawn attribute by attribute: the marginals are the training set's, and the
  combinations include ones the training rows never show (here, with hair style and colour
  perfectly correlated in training, the off-diagonal pairs)."""
  names = list(captioned.AVATAR_ATTRIBUTES)
  covered = captioned.AVATAR_ATTRIBUTES["hair"].index("covered")
  train = np.array([[0, 0, 0, 0, 0], [1, 1, 1, 1, 1], [1, 1, 2, 2, 0], [covered, -1, 3, 1, 1]],
                   np.int32)
  rows = captioned.recombined_avatar_labels(train, n=4000, seed=0)
  assert rows.shape == (4000, 5) and rows.dtype == np.int32
  np.testing.assert_array_equal(rows, captioned.recombined_avatar_labels(train, n=4000, seed=0))
  for a, name in enumerate(names):  # every value is a training value, at its frequency
    if name == "hair_colour":
      continue
    values, counts = np.unique(train[:, a], return_counts=True)
    got = np.array([(rows[:, a] == v).mean() for v in values])
    np.testing.assert_allclose(got, counts / len(train), atol=0.03, err_msg=name)
  assert ((rows[:, 0] == covered) == (rows[:, 1] == -1)).all()  # no colour under a covering
  colour = rows[rows[:, 0] != covered, 1]
  assert set(np.unique(colour)) == {0, 1}  # the colours of visible hair in training
  assert ((rows[:, 0] == 0) & (rows[:, 1] == 1)).mean() > 0.1  # short + colour 1: never seen
  balanced = captioned.recombined_avatar_labels(train, n=4000, seed=0, kind="uniform")
  for a, name in enumerate(names):  # each training value equally often
    values = np.unique(train[:, a][train[:, a] >= 0])
    got = np.array([(balanced[:, a] == v).mean() for v in values])
    expected = (1 - (balanced[:, 0] == covered).mean() if name == "hair_colour" else 1) / len(values)
    np.testing.assert_allclose(got, expected, atol=0.03, err_msg=name)
  unseen = captioned.recombined_avatar_labels(train, n=300, seed=0, kind="unseen_pairs")
  assert captioned.unseen_pair_mask(unseen, train).all()
  assert not captioned.unseen_pair_mask(train, train).any()
  np.testing.assert_array_equal(captioned.unseen_pair_mask(np.array([[0, 1, 0, 0, 0]]), train),
                                [True])  # short hair in colour 1: never together in training
  every = np.array(list(itertools.product(*(range(len(v)) for v in
                                            captioned.AVATAR_ATTRIBUTES.values()))), np.int32)
  every[every[:, 0] == covered, 1] = -1
  with pytest.raises(ValueError, match="no pair of attribute values unseen"):
    captioned.recombined_avatar_labels(every, n=10, seed=0, kind="unseen_pairs")
  with pytest.raises(ValueError, match="'held_out'; allowed: marginals, uniform, unseen_pairs"):
    captioned.recombined_avatar_labels(train, n=10, seed=0, kind="held_out")
  captions, labels = captioned.recombined_avatar_captions(train, n=6, seed=1)
  assert len(captions) == 6 and labels.shape == (6, 5)
  assert all(isinstance(c, str) and c for c in captions)
  with pytest.raises(ValueError, match=r"\[N, 5\] array of avatar labels, got shape \(4, 3\)"):
    captioned.recombined_avatar_labels(train[:, :3], n=2, seed=0)


def test_captioned_avatars_carry_recombined_captions_when_asked(avatars_config):
  c = avatars_config.copy_and_resolve_references()
  c.data.recombined_captions = "marginals"
  ds = data.from_config(c.data)
  n = len(ds)
  emb, rows = ds.extras["recombined_embedding"], ds.extras["recombined_attributes"]
  assert emb.shape == (n, 64) and rows.shape == (n, 5)
  captions, expected = captioned.recombined_avatar_captions(ds.extras["attributes"], n=n, seed=0)
  np.testing.assert_array_equal(rows, expected)
  np.testing.assert_allclose(emb, text.get_encoder("hash").encode(captions), atol=1e-6)
  batch = data.make_batches(ds, batch_size=8, seed=0)[0]
  assert batch["recombined_embedding"].shape == (8, 64)
  assert "recombined_embedding" not in data.from_config(c.data, split="test").extras
  c.data.recombined_captions = "unseen_pairs"
  unseen = data.from_config(c.data).extras["recombined_attributes"]
  assert captioned.unseen_pair_mask(unseen, ds.extras["attributes"]).all()
  c.data.recombined_captions = "everything"
  with pytest.raises(ValueError, match="recombined_captions='everything'; allowed: '' .off."):
    data.from_config(c.data)
  c.data.recombined_captions = "marginals"
  c.data.name = "oxford_flowers102"
  with pytest.raises(ValueError, match="recombined_captions needs captioned avatars"):
    data.from_config(c.data)


def test_partner_indices_pair_rows_of_equal_labels():
  """Golden case: every row's partner has its labels and is another row when one exists; the
  partners are a permutation (each row is one row's partner); the draw is the seed's."""
  labels = np.array([[0, 1], [2, 2], [0, 1], [0, 1], [5, 5], [2, 2]], np.int32)
  partners = captioned.partner_indices(labels, seed=0)
  np.testing.assert_array_equal(labels[partners], labels)
  assert partners[4] == 4  # alone with its labels
  assert all(partners[i] != i for i in (0, 1, 2, 3, 5))
  assert sorted(partners) == list(range(6))
  assert partners[1] == 5 and partners[5] == 1
  np.testing.assert_array_equal(partners, captioned.partner_indices(labels, seed=0))
  draws = {tuple(captioned.partner_indices(labels, seed=s)[[0, 2, 3]]) for s in range(20)}
  assert draws == {(2, 3, 0), (3, 0, 2)}  # the two 3-cycles of rows 0, 2, 3
  with pytest.raises(ValueError, match=r"labels \[N, A\] with N >= 1, got \(3,\)"):
    captioned.partner_indices(np.zeros(3), seed=0)


def test_captioned_avatars_carry_partner_images_when_asked(avatars_config):
  c = avatars_config.copy_and_resolve_references()
  c.data.partner_images = True
  ds = data.from_config(c.data)
  partners = captioned.partner_indices(ds.extras["attributes"], seed=0)
  np.testing.assert_array_equal(ds.extras["partner_image"], ds.images[partners])
  batch = data.make_batches(ds, batch_size=8, seed=0)[0]
  assert batch["partner_image"].shape == batch["image"].shape
  assert "partner_image" not in data.from_config(c.data, split="test").extras


def test_partners_per_image_carries_one_cycle_per_seed(avatars_config):
  """P > 1: [N, P, H, W, C], column j the partners of seed + j; P < 1 is named."""
  c = avatars_config.copy_and_resolve_references()
  c.data.partner_images, c.data.partners_per_image = True, 3
  ds = data.from_config(c.data)
  assert ds.extras["partner_image"].shape == (len(ds.images), 3) + ds.images.shape[1:]
  for j in range(3):
    partners = captioned.partner_indices(ds.extras["attributes"], seed=j)
    np.testing.assert_array_equal(ds.extras["partner_image"][:, j], ds.images[partners])
  batch = data.make_batches(ds, batch_size=8, seed=0)[0]
  assert batch["partner_image"].shape == (8, 3) + batch["image"].shape[1:]
  c.data.partners_per_image = 0
  with pytest.raises(ValueError, match="partners_per_image must be >= 1, got 0"):
    data.from_config(c.data)


def test_array_dataset_rejects_misaligned_extras():
  with pytest.raises(ValueError, match="'text_embedding' must be an array with 2 rows"):
    data.ArrayDataset(images=np.zeros((2, 4, 4, 1), np.uint8), labels=None, num_classes=None,
                      name="x", source="test", extras={"text_embedding": np.zeros((3, 5))})


# ------------------------------------------------------------------------------- models


@pytest.mark.parametrize("resolution,conditioning", [(32, "projection"), (64, "augmentation")])
def test_text_conditional_models_shapes_and_dtypes(resolution, conditioning):
  g = models.build_text_generator("dcgan", image_shape=(resolution, resolution, 3), width=4,
                                  text_features=8, conditioning=conditioning)
  d = models.build_text_discriminator("dcgan", image_shape=(resolution, resolution, 3),
                                      width=4, text_features=8, num_classes=19)
  z, t = jnp.zeros((3, 10)), jnp.ones((3, E))
  g_vars = jax.eval_shape(functools.partial(g.init, train=False),
                          {"params": _key(0), "condition": _key(1)}, z, t)
  images, sown = jax.eval_shape(
      functools.partial(g.apply, train=False, mutable=["intermediates"]), g_vars, z, t)
  chex.assert_shape(images, (3, resolution, resolution, 3))
  assert images.dtype == jnp.float32
  d_vars = jax.eval_shape(functools.partial(d.init, train=False), _key(0), images, t)
  logit, classes = jax.eval_shape(functools.partial(d.apply, train=False), d_vars, images, t)
  chex.assert_shape(logit, (3,))
  chex.assert_shape(classes, (3, 19))
  assert logit.dtype == classes.dtype == jnp.float32
  # Conditioning augmentation sows its KL term; the plain projection sows nothing.
  assert ("ca_kl" in sown.get("intermediates", {})) == (conditioning == "augmentation")
  with pytest.raises(ValueError, match="conditioning='gan'.*projection"):
    models.build_text_generator("dcgan", resolution=32, conditioning="gan")
  with pytest.raises(ValueError, match="text discriminator 'big'"):
    models.build_text_discriminator("big", resolution=32)


def test_block_conditioning_and_projection_head():
  """G with block_conditioning has an affine{i} per normalisation, starts as the plain
  network (zero-initialised), and its noise and text reach every block; the projection head
  scores the (image, text) pair by an inner product."""
  g = models.build_text_generator("dcgan", resolution=32, width=4, text_features=8,
                                  block_conditioning=True)
  z, t = jax.random.normal(_key(2), (3, 10)), jax.random.normal(_key(3), (3, E))
  v = g.init({"params": _key(0), "condition": _key(1)}, z, t, train=False)
  affines = sorted(k for k in v["params"]["dcgan"] if k.startswith("affine"))
  assert affines == ["affine0", "affine1", "affine2"]  # 32x32: 4x4, 8x8, 16x16 blocks
  assert "scale" not in v["params"]["dcgan"].get("bn1", {})  # the affine replaces BN's own
  chex.assert_shape(v["params"]["dcgan"]["affine1"]["hidden"]["kernel"], (10 + 8, 8))  # z, text
  chex.assert_shape(v["params"]["dcgan"]["affine1"]["out"]["kernel"], (8, 2 * 8))
  plain = models.build_text_generator("dcgan", resolution=32, width=4, text_features=8)
  pv = plain.init({"params": _key(0), "condition": _key(1)}, z, t, train=False)
  # Zero-initialised: the same function as a plain G whose BN scale is 1 and offset 0.
  for name in ("bn0", "bn1", "bn2"):
    pv["params"]["dcgan"][name] = {"scale": jnp.ones_like(pv["params"]["dcgan"][name]["scale"]),
                                   "bias": jnp.zeros_like(pv["params"]["dcgan"][name]["bias"])}
  for name in ("project", "up1", "up2", "up3"):
    pv["params"]["dcgan"][name] = v["params"]["dcgan"][name]
  pv["params"]["text"] = v["params"]["text"]
  np.testing.assert_allclose(g.apply(v, z, t, train=False), plain.apply(pv, z, t, train=False),
                             atol=1e-5)
  # Trained affine weights: the condition changes a block's scale and shift per example.
  v2 = jax.tree.map(lambda x: x, v)
  v2["params"]["dcgan"]["affine2"]["out"]["kernel"] = 0.5 * jax.random.normal(
      _key(4), v["params"]["dcgan"]["affine2"]["out"]["kernel"].shape)
  assert not np.allclose(g.apply(v2, z, t, train=False), g.apply(v, z, t, train=False))
  with pytest.raises(ValueError, match="head='film'.*'concat', 'projection'"):
    models.build_text_discriminator("dcgan", resolution=32, head="film")
  d = models.build_text_discriminator("dcgan", resolution=32, width=4, text_features=8,
                                      num_classes=5, head="projection")
  x = jax.random.normal(_key(5), (2, 32, 32, 3))
  dv = d.init(_key(6), x, jnp.zeros((2, E)), train=False)
  assert "embed" in dv["params"] and "joint" not in dv["params"]
  logit, classes = d.apply(dv, x, t[:2], train=False)
  chex.assert_shape(logit, (2,))
  chex.assert_shape(classes, (2, 5))
  # logit = out(phi) + <embed(text), phi>, phi the trunk's map summed over positions.
  _, state = d.apply(dv, x, t[:2], train=False, capture_intermediates=True)
  phi = np.asarray(state["intermediates"]["dcgan"]["__call__"][0]).sum(axis=(1, 2))
  p = dv["params"]
  tc = np.asarray(jax.nn.leaky_relu(t[:2] @ p["text"]["kernel"] + p["text"]["bias"], 0.2))
  embed = tc @ np.asarray(p["embed"]["kernel"]) + np.asarray(p["embed"]["bias"])
  want = (phi @ np.asarray(p["out"]["kernel"]))[:, 0] + np.asarray(p["out"]["bias"])[0] + (
      embed * phi).sum(-1)
  np.testing.assert_allclose(logit, want, rtol=1e-4, atol=1e-4)


def test_class_head_reads_the_image_not_the_text():
  d = models.build_text_discriminator("dcgan", resolution=32, width=4, text_features=8,
                                      num_classes=5)
  x = jax.random.normal(_key(0), (2, 32, 32, 3))
  v = d.init(_key(1), x, jnp.zeros((2, E)), train=False)
  logit_a, classes_a = d.apply(v, x, jnp.zeros((2, E)), train=False)
  logit_b, classes_b = d.apply(v, x, jnp.ones((2, E)), train=False)
  np.testing.assert_array_equal(classes_a, classes_b)
  assert not np.allclose(logit_a, logit_b)


# ------------------------------------------------------------------------------- step

COUNTS = (3, 2)


def _step_parts(conditioning="projection", normalization="batch", *, block_conditioning=False,
                head="concat", latent_outputs=0, **step_kwargs):
  g = models.build_text_generator("dcgan", resolution=32, width=4, text_features=8,
                                  conditioning=conditioning,
                                  block_conditioning=block_conditioning)
  d = models.build_text_discriminator("dcgan", resolution=32, width=4, text_features=8,
                                      num_classes=sum(COUNTS), normalization=normalization,
                                      head=head, latent_outputs=latent_outputs)
  g_opt, d_opt = optax.adam(2e-3, b1=0.5), optax.adam(2e-3, b1=0.5)
  init = functools.partial(t2i.init_t2i_state, generator=g, discriminator=d, g_optimizer=g_opt,
                           d_optimizer=d_opt, latent_dim=8, text_dim=E,
                           image_shape=(32, 32, 3))
  step = t2i.make_t2i_step(generator=g, discriminator=d, g_optimizer=g_opt, d_optimizer=d_opt,
                           latent_dim=8, num_classes=COUNTS, ca_kl_weight=1.0, **step_kwargs)
  return init, step


def _batch(n=8, seed=0):
  rng = np.random.default_rng(seed)
  labels = np.stack([np.arange(n) % 3, (np.arange(n) // 3) % 2], 1).astype(np.int32)
  labels[0, 1] = -1  # a missing label
  images = np.zeros((n, 32, 32, 3), np.uint8)
  for i, (a, b) in enumerate(labels):  # the class is visible: a colour and a half
    images[i, :, :, a] = 220
    if b == 1:
      images[i, :16] = 40
  emb = rng.standard_normal((n, 2, E)).astype(np.float32)
  return {"image": images, "label": labels[:, 0], "text_embedding": emb, "attributes": labels}


@pytest.mark.parametrize("block_conditioning,head", [(False, "concat"), (True, "projection")])
def test_step_learns_a_tiny_batch_and_compiles_once(block_conditioning, head):
  init, step = _step_parts("augmentation", block_conditioning=block_conditioning, head=head)
  traces = [0]

  def counted(state, batch, key):
    traces[0] += 1
    return step(state, batch, key)

  jit_step = jax.jit(counted)
  state = jax.jit(init)(_key(0))
  batch = _batch()
  history = []
  for i in range(25):
    state, metrics = jit_step(state, batch, jax.random.key(i))
    history.append({k: float(v) for k, v in metrics.items()})
  assert traces[0] == 1 and int(state.step) == 25
  for k in ("d_loss", "g_loss", "d_gan", "g_gan", "d_class", "g_class", "d_real", "d_wrong",
            "d_fake", "class_accuracy_real", "class_accuracy_fake", "ca_kl"):
    assert all(np.isfinite(h[k]) for h in history), k
  # D's auxiliary classifier learns the visible classes; the D loss falls.
  first, last = history[0], history[-1]
  assert np.mean([h["d_class"] for h in history[-5:]]) < 0.5 * first["d_class"], (first, last)
  assert last["class_accuracy_real"] == 1.0
  assert np.mean([h["d_loss"] for h in history[-5:]]) < first["d_loss"]
  np.testing.assert_allclose(first["d_class"], np.log(3) + np.log(2), rtol=0.25)  # ~chance


def test_step_weights_are_wired():
  init, step = _step_parts()
  state = jax.jit(init)(_key(0))
  _, m = jax.jit(step)(state, _batch(), jax.random.key(0))
  m = {k: float(v) for k, v in m.items()}
  np.testing.assert_allclose(m["d_loss"], m["d_gan"] + m["d_class"], rtol=1e-5)
  np.testing.assert_allclose(m["g_loss"], m["g_gan"] + m["g_class"], rtol=1e-5)
  assert "ca_kl" not in m  # projection conditioning has no KL
  with pytest.raises(ValueError, match="class_weight"):
    t2i.make_t2i_step(generator=None, discriminator=None, g_optimizer=None, d_optimizer=None,
                      latent_dim=8, num_classes=COUNTS, class_weight=-1.0)


def test_ma_gp_and_mode_seeking_terms_are_wired():
  """With MA-GP and MSGAN on, D's and G's losses are their sums with the new terms, the
  rest of the step is bit for bit the plain one's (same random streams), and negative
  weights are named."""
  init, plain = _step_parts(normalization="layer")
  _, both = _step_parts(normalization="layer", ma_gp_weight=2.0, mode_seeking_weight=0.5)
  state = jax.jit(init)(_key(0))
  _, m0 = jax.jit(plain)(state, _batch(), jax.random.key(3))
  _, m = jax.jit(both)(state, _batch(), jax.random.key(3))
  m0, m = ({k: float(v) for k, v in x.items()} for x in (m0, m))
  assert m["ma_gp"] > 0 and m["mode_seeking"] > 0
  np.testing.assert_allclose(m["d_loss"], m["d_gan"] + m["d_class"] + m["ma_gp"], rtol=1e-5)
  np.testing.assert_allclose(m["g_loss"], m["g_gan"] + m["g_class"] + 0.5 * m["mode_seeking"],
                             rtol=1e-5)
  for k in ("d_gan", "d_class", "d_real", "d_fake"):  # the same D inputs as without them
    np.testing.assert_allclose(m[k], m0[k], rtol=1e-6, err_msg=k)
  for name in ("ma_gp_weight", "mode_seeking_weight"):
    with pytest.raises(ValueError, match=f"{name} must be >= 0, got -1"):
      t2i.make_t2i_step(generator=None, discriminator=None, g_optimizer=None, d_optimizer=None,
                        latent_dim=8, num_classes=COUNTS, **{name: -1.0})


def test_mode_seeking_in_discriminator_space_and_pooled():
  """mode_seeking_space="discriminator" measures the term on D's trunk features (scaled by
  their mean magnitude: finite, positive, G's loss its sum as before, the plain D terms
  unchanged); pooled pixels give a different value; bad settings are named."""
  init, plain = _step_parts(mode_seeking_weight=0.5)
  _, in_d = _step_parts(mode_seeking_weight=0.5, mode_seeking_space="discriminator")
  _, pooled = _step_parts(mode_seeking_weight=0.5, mode_seeking_pool=4)
  state = jax.jit(init)(_key(0))
  assert "intermediates" not in state.d_params
  m0, md, mp = ({k: float(v) for k, v in jax.jit(s)(state, _batch(), jax.random.key(3))[1].items()}
                for s in (plain, in_d, pooled))
  assert np.isfinite(md["mode_seeking"]) and md["mode_seeking"] > 0
  assert md["mode_seeking"] != m0["mode_seeking"] != mp["mode_seeking"]
  np.testing.assert_allclose(md["g_loss"], md["g_gan"] + md["g_class"] + 0.5 * md["mode_seeking"],
                             rtol=1e-5)
  for k in ("d_gan", "d_class", "g_gan"):
    np.testing.assert_allclose(md[k], m0[k], rtol=1e-5, err_msg=k)
  kwargs = dict(generator=None, discriminator=None, g_optimizer=None, d_optimizer=None,
                latent_dim=8, num_classes=COUNTS)
  with pytest.raises(ValueError, match="mode_seeking_space='features' is not supported; "
                     "allowed: pixels, discriminator"):
    t2i.make_t2i_step(mode_seeking_space="features", **kwargs)
  with pytest.raises(ValueError, match="needs pack=1"):
    t2i.make_t2i_step(mode_seeking_space="discriminator", pack=2, **kwargs)


def test_latent_regression_is_wired_and_d_head_learns_the_noise():
  """InfoGAN's term: D's latent head exists only when asked for, D's and G's losses are their
  sums with it, the plain D and G terms are unchanged (same random streams), D's head learns
  to read G's noise back (its error falls from ~0.5), and bad settings are named."""
  init0, plain = _step_parts()
  init, step = _step_parts(latent_outputs=4, latent_regression_weight=2.0,
                           latent_regression_dims=4)
  state0, state = jax.jit(init0)(_key(0)), jax.jit(init)(_key(0))
  assert "latent" not in state0.d_params and state.d_params["latent"]["kernel"].shape[-1] == 4
  _, m0 = jax.jit(plain)(state0, _batch(), jax.random.key(3))
  _, m = jax.jit(step)(state, _batch(), jax.random.key(3))
  m0, m = ({k: float(v) for k, v in x.items()} for x in (m0, m))
  np.testing.assert_allclose(m["d_loss"], m["d_gan"] + m["d_class"] + 2.0 * m["d_latent"],
                             rtol=1e-5)
  np.testing.assert_allclose(m["g_loss"], m["g_gan"] + m["g_class"] + 2.0 * m["g_latent"],
                             rtol=1e-5)
  for k in ("d_gan", "d_class"):  # the head leaves the trunk's outputs (G's follow D's update)
    np.testing.assert_allclose(m[k], m0[k], rtol=1e-5, err_msg=k)
  jit_step, history = jax.jit(step), []
  for i in range(25):
    state, metrics = jit_step(state, _batch(), jax.random.key(i))
    history.append(float(metrics["d_latent"]))
  assert 0.2 < np.mean(history[:3]) < 1.0, history[:3]  # ~ mean(z^2) / 2 = 0.5 at the start
  assert np.mean(history[-5:]) < 0.6 * np.mean(history[:3]), history
  kwargs = dict(generator=None, g_optimizer=None, d_optimizer=None, latent_dim=8,
                num_classes=COUNTS)
  with pytest.raises(ValueError, match="latent_regression_weight must be >= 0, got -1"):
    t2i.make_t2i_step(discriminator=None, latent_regression_weight=-1.0, **kwargs)
  with pytest.raises(ValueError, match="needs a discriminator with latent_outputs=8"):
    t2i.make_t2i_step(discriminator=None, latent_regression_weight=1.0, **kwargs)
  with pytest.raises(ValueError, match=r"latent_regression_dims must be in \[0, latent_dim=8\]"):
    t2i.make_t2i_step(discriminator=None, latent_regression_weight=1.0,
                      latent_regression_dims=9, **kwargs)
  with pytest.raises(ValueError, match="needs pack=1"):
    t2i.make_t2i_step(discriminator=None, latent_regression_weight=1.0, pack=2, **kwargs)
  with pytest.raises(ValueError, match="latent_outputs must be >= 0, got -1"):
    models.build_text_discriminator("dcgan", resolution=32, width=4, latent_outputs=-1)


def test_g_class_weight_and_mode_seeking_ramp_are_wired():
  """G's class weight apart from D's; the mode-seeking weight at step 0 is its start, at and
  after ramp_steps its end, halfway between at half the ramp; bad ramps are named."""
  init, step = _step_parts(g_class_weight=0.25, mode_seeking_weight=0.1,
                           mode_seeking_weight_end=0.3, ramp_steps=10)
  state = jax.jit(init)(_key(0))
  for at, weight in ((0, 0.1), (5, 0.2), (10, 0.3), (20, 0.3)):
    _, m = jax.jit(step)(state.replace(step=jnp.asarray(at, jnp.int32)), _batch(),
                         jax.random.key(3))
    m = {k: float(v) for k, v in m.items()}
    np.testing.assert_allclose(m["d_loss"], m["d_gan"] + m["d_class"], rtol=1e-5)
    np.testing.assert_allclose(
        m["g_loss"], m["g_gan"] + 0.25 * m["g_class"] + weight * m["mode_seeking"], rtol=1e-5,
        err_msg=str(at))
  kwargs = dict(generator=None, discriminator=None, g_optimizer=None, d_optimizer=None,
                latent_dim=8, num_classes=COUNTS)
  with pytest.raises(ValueError, match="g_class_weight must be >= 0, got -1"):
    t2i.make_t2i_step(g_class_weight=-1.0, **kwargs)
  with pytest.raises(ValueError, match="mode_seeking_weight_end=0.2 needs .* ramp_steps >= 1"):
    t2i.make_t2i_step(mode_seeking_weight_end=0.2, **kwargs)


def test_recombined_fraction_conditions_g_on_the_recombined_captions():
  """fraction 1 with the image's own caption as the "recombined" one is the plain step bit for
  bit; with other captions G's loss changes and D's update does not (D never sees them);
  without the adversarial term G answers to D's class heads only on them; fraction 0 ignores
  them; a missing field or a bad fraction is named."""
  init, plain = _step_parts()
  _, full = _step_parts(recombined_fraction=1.0)
  state = jax.jit(init)(_key(0))
  batch = _batch()
  batch["text_embedding"] = batch["text_embedding"][:, :1]  # K = 1: the pick is fixed
  same = {**batch, "recombined_embedding": batch["text_embedding"][:, 0],
          "recombined_attributes": batch["attributes"]}
  other = {**same, "recombined_embedding": -same["recombined_embedding"],
           "recombined_attributes": np.roll(batch["attributes"], 1, axis=0)}
  run = lambda step, b: {k: float(v) for k, v in jax.jit(step)(state, b, jax.random.key(3))[1].items()}
  m0, m_same, m_other, m_zero = (run(plain, batch), run(full, same), run(full, other),
                                 run(plain, other))
  for k in m0:
    np.testing.assert_allclose(m_same[k], m0[k], rtol=1e-6, err_msg=k)
    np.testing.assert_allclose(m_zero[k], m0[k], rtol=1e-6, err_msg=k)
  for k in ("d_loss", "d_real", "d_fake", "d_class"):
    np.testing.assert_allclose(m_other[k], m0[k], rtol=1e-6, err_msg=k)
  assert abs(m_other["g_class"] - m0["g_class"]) > 1e-4
  assert abs(m_other["g_gan"] - m0["g_gan"]) > 1e-4
  _, class_only = _step_parts(recombined_fraction=1.0, recombined_adversarial=False)
  m_cls = run(class_only, other)
  assert m_cls["g_gan"] == 0.0  # every row recombined: no pair-score term left
  np.testing.assert_allclose(m_cls["g_loss"], m_cls["g_class"], rtol=1e-6)
  np.testing.assert_allclose(m_cls["g_class"], m_other["g_class"], rtol=1e-6)
  with pytest.raises(ValueError, match="data.recombined_captions=marginals"):
    jax.jit(full)(state, batch, jax.random.key(0))
  with pytest.raises(ValueError, match=r"recombined_fraction must be in \[0, 1\], got 1.5"):
    _step_parts(recombined_fraction=1.5)


def test_pack_2_judges_pairs_of_one_caption():
  """pack=2: D is built for 6 channels, the step runs and learns nothing NaN; with the
  mode-seeking term on it reuses the pair's two images; a missing partner image, an
  unsupported pack and a config without partner images are named."""
  init, step = _step_parts(pack=2, mode_seeking_weight=0.5)
  state = jax.jit(functools.partial(init, pack=2))(_key(0))
  kernels = [v for path, v in jax.tree_util.tree_leaves_with_path(state.d_params)
             if v.ndim == 4 and v.shape[2] == 6]
  assert kernels, "D's first convolution takes the pair's 6 channels"
  batch = _batch()
  paired = {**batch, "partner_image": batch["image"][::-1].copy()}
  new_state, m = jax.jit(step)(state, paired, jax.random.key(3))
  assert all(np.isfinite(float(v)) for v in m.values())
  assert m["mode_seeking"] > 0
  assert not np.allclose(jax.tree.leaves(new_state.d_params)[0], jax.tree.leaves(state.d_params)[0])
  with pytest.raises(ValueError, match="pack=2 needs batches with 'partner_image'.*"
                                       "data.partner_images=True"):
    jax.jit(step)(state, batch, jax.random.key(3))
  with pytest.raises(ValueError, match=r"pack=3 is not supported; allowed: 1 .*, 2"):
    _step_parts(pack=3)
  c = tiny(t2i.default_config(), **{"loss.pack": 2})
  with pytest.raises(ValueError, match="loss.pack=2 needs.*--config.data.partner_images=True"):
    t2i.build(c, image_shape=(32, 32, 3))


def test_pack_2_draws_one_of_several_partners_per_row():
  """partner_image [B, P, H, W, C]: P copies of one partner step exactly as that partner
  [B, H, W, C]; two different candidates give a step unlike either candidate alone (the
  draw is per row, by the step's key)."""
  init, step = _step_parts(pack=2)
  state = jax.jit(functools.partial(init, pack=2))(_key(0))
  batch = _batch()
  x, y = batch["image"][::-1].copy(), np.roll(batch["image"], 1, axis=0)
  run = lambda partner: jax.tree.leaves(jax.jit(step)(
      state, {**batch, "partner_image": partner}, jax.random.key(3))[0].d_params)
  chex.assert_trees_all_close(run(x), run(np.stack([x, x, x], axis=1)))
  mixed = run(np.stack([x, y], axis=1))
  for alone in (x, y):
    assert not all(np.allclose(a, b) for a, b in zip(mixed, run(alone)))


# ------------------------------------------------------------------------------- end to end


def tiny(c, **overrides):
  """A t2i config at tiny sizes (hash text encoder, widths 4, 2 steps, no evaluation)."""
  c.data.text_encoder = "hash"
  c.data.image_size = 32
  c.model.latent_dim = 8
  c.model.generator.width = 4
  c.model.generator.text_features = 8
  c.model.discriminator.width = 4
  c.model.discriminator.text_features = 8
  c.batch_size = 8
  c.total_steps = 2
  c.log_every = 1
  c.sample_every = 2
  c.checkpoint_every = 2
  c.num_samples = 16
  c.eval_every = 0  # the attribute evaluation is tested in tests/test_t2i_eval.py
  return set_dotted(c, overrides)


@pytest.mark.parametrize("dims,outputs", [(0, 8), (3, 3)])
def test_config_latent_regression_builds_d_latent_head(dims, outputs):
  """loss.latent_regression_weight > 0 builds D with a latent head over the regressed noise
  dimensions (latent_regression_dims, 0: all of model.latent_dim); off, D has none."""
  for weight, head in ((0.0, None), (1.0, outputs)):
    c = tiny(t2i.default_config(), **{"loss.latent_regression_weight": weight,
                                      "loss.latent_regression_dims": dims})
    state = t2i.build(c, image_shape=(32, 32, 3)).init(_key(0))
    got = state.d_params["latent"]["kernel"].shape[-1] if "latent" in state.d_params else None
    assert got == head, (weight, dims, got)


def test_t2i_avatars_end_to_end_and_sampling_from_text(tmp_path):
  from jgan import catalog, sample, train  # pylint: disable=import-outside-toplevel
  c = tiny(catalog.load_experiment("t2i_avatars"),
            **{"data.num_examples": 48, "data.captions_per_image": 2})
  workdir = str(tmp_path / "t2i")
  with jax.default_prng_impl("rbg"):
    result = train.run(c, workdir, progress=False)
  assert result.step == 2 and result.step_traces == 1
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    records = [json.loads(line) for line in f]
  assert [r["step"] for r in records] == [1, 2]
  for k in ("d_loss", "g_loss", "d_class", "g_class", "d_real", "d_wrong", "d_fake"):
    assert np.isfinite(records[-1][k]), k
  assert os.listdir(os.path.join(workdir, "samples")) == ["step_0000002.png"]

  out = tmp_path / "out"
  assert sample.main(["--workdir", workdir, "--text", "a smiling face with long red hair",
                      "--num", "3", "--out", str(out)]) == 0
  assert sorted(os.listdir(out)) == ["captions.txt", "grid.png", "sample_000_00000.png",
                                     "sample_000_00001.png", "sample_000_00002.png"]
  lines = tmp_path / "captions.txt"
  lines.write_text("a person with short black hair\n\na cartoon face wearing a hat\n")
  paths = sample.export_text_samples(workdir, sentences=lines.read_text().splitlines(), num=2,
                                     out=str(tmp_path / "out2"))
  assert len(paths) == 4
  assert sample.main(["--workdir", workdir, "--text-file", str(lines), "--num", "2", "--out",
                      str(tmp_path / "out3")]) == 0
  assert sample.main(["--workdir", workdir, "--text-file", str(tmp_path / "missing.txt"),
                      "--out", str(out)]) == 1


def _tiny_flowers(tmp_path):
  """TFDS "oxford_flowers102" (its name, version and features) with 14 images, prepared in a
  tmp data_dir, and Reed et al.'s caption layout for them."""
  tfds = pytest.importorskip("tensorflow_datasets")
  from PIL import Image  # pylint: disable=import-outside-toplevel
  tfds.disable_progress_bar()
  version = str(tfds.builder_cls("oxford_flowers102").VERSION)
  rng = np.random.default_rng(0)
  splits = {"train": range(0, 6), "test": range(6, 10), "validation": range(10, 14)}
  captions_root = tmp_path / "captions" / "text_c10"
  colours = ("red", "yellow", "purple")
  for i in range(14):
    folder = captions_root / f"class_{i % 3 + 1:05d}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"image_{i + 1:05d}.txt").write_text(
        f"this flower has {colours[i % 3]} petals\na {colours[i % 3]} flower with a green stem\n")

  class TinyFlowers(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    name = "oxford_flowers102"
    VERSION = tfds.core.Version(version)

    def _info(self):
      return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
          "image": tfds.features.Image(shape=(None, None, 3)),
          "label": tfds.features.ClassLabel(num_classes=102),
          "file_name": tfds.features.Text()}))

    def _split_generators(self, dl_manager):
      del dl_manager
      return {split: self._generate_examples(split) for split in splits}

    def _generate_examples(self, split):
      for i in splits[split]:
        image = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
        yield i, {"image": Image.fromarray(image), "label": i % 3,
                  "file_name": f"image_{i + 1:05d}.jpg"}

  data_dir = str(tmp_path / "tfds")
  TinyFlowers(data_dir=data_dir, file_format="array_record").download_and_prepare()
  return data_dir, str(tmp_path / "captions")


def test_t2i_flowers_end_to_end_on_a_tiny_local_dataset(tmp_path):
  from jgan import catalog, train  # pylint: disable=import-outside-toplevel
  data_dir, captions_dir = _tiny_flowers(tmp_path)
  c = tiny(catalog.load_experiment("t2i_flowers"),
            **{"data.data_dir": data_dir, "data.captions_dir": captions_dir})
  ds = data.from_config(c.data)
  assert len(ds) == 10 and ds.images.shape[1:] == (32, 32, 3)  # TFDS train + test
  assert ds.extras["text_embedding"].shape == (10, 10, 64)  # 2 captions cycled to 10
  caps = captioned.captions_of(c.data, split="train")
  labels = ds.extras["attributes"][:, 0]
  for per_image, label in zip(caps, labels):
    assert ("red", "yellow", "purple")[label] in per_image[0]  # captions follow file names
  assert len(data.from_config(c.data, split="test")) == 4  # TFDS validation
  workdir = str(tmp_path / "flowers")
  with jax.default_prng_impl("rbg"):
    result = train.run(c, workdir, progress=False)
  assert result.step == 2 and np.isfinite(result.last_metrics["d_loss"])
  assert result.state.d_params["classes"]["kernel"].shape[-1] == 102


def test_t2i_flowers_without_data_says_how_to_get_it(tmp_path):
  from jgan import catalog  # pylint: disable=import-outside-toplevel
  c = tiny(catalog.load_experiment("t2i_flowers"),
            **{"data.data_dir": str(tmp_path / "none"), "data.captions_dir": ""})
  with pytest.raises(data.DatasetNotFoundError, match=r"oxford_flowers102.*t2i_avatars"):
    data.from_config(c.data)
  with pytest.raises(data.DatasetNotFoundError, match="captions_dir=''"):
    captioned.read_flower_captions("", ["image_00001.jpg"])
