"""jgan.text: the offline MiniLM encoder, the hash encoder, roberta-large's offline error and
the embedding cache."""

from __future__ import annotations

import os

import numpy as np
import pytest

from jgan import text

SENTENCES = [
    "a smiling face with short red hair and round glasses",
    "a grinning cartoon person with short red hair wearing round spectacles",
    "a bowl of soup on a wooden table",
]


@pytest.fixture(scope="module")
def minilm():
  return text.get_encoder("minilm")


def test_minilm_loads_offline_and_gives_unit_384d_vectors(minilm):
  assert minilm.dim == text.encoder_dim("minilm") == 384
  v = minilm.encode(SENTENCES)
  assert v.shape == (3, 384) and v.dtype == np.float32
  np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
  sim = v @ v.T
  # Paraphrases are closer than unrelated sentences (measured: 0.79 vs 0.09 and -0.03).
  assert sim[0, 1] > 0.6 and sim[0, 1] > sim[0, 2] + 0.4 and sim[1, 1 + 1] < 0.3
  # Batching and padding do not change a sentence's vector.
  alone = minilm.encode(SENTENCES[2:])
  np.testing.assert_allclose(alone[0], v[2], atol=2e-5)


def test_hash_encoder_is_deterministic_and_word_based():
  enc = text.get_encoder("hash")
  v = enc.encode(["red hair, round glasses", "Round glasses and RED hair", "a blue hat"])
  assert v.shape == (3, 64)
  np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
  np.testing.assert_array_equal(v, text.hash_encoder().encode(
      ["red hair, round glasses", "Round glasses and RED hair", "a blue hat"]))
  assert v[0] @ v[1] > 0.8 > v[0] @ v[2]


def test_roberta_large_offline_names_the_minilm_alternative():
  with pytest.raises(text.TextEncoderUnavailable, match=r"roberta-large.*encoder=minilm"):
    text.roberta_large_encoder(local_files_only=True)


def test_bad_names_and_sentences_are_named():
  with pytest.raises(ValueError, match=r"'bert'.*minilm, roberta-large, hash, minilm-clauses"):
    text.get_encoder("bert")
  enc = text.get_encoder("hash")
  with pytest.raises(ValueError, match="Sentence 1 is ''"):
    enc.encode(["ok", ""])
  with pytest.raises(ValueError, match="wrap it in a list"):
    enc.encode("a single string")


@pytest.mark.parametrize("name", ["hash", "minilm"])
def test_cache_hit_returns_identical_arrays(tmp_path, name, minilm):
  del minilm  # loaded once for the module
  captions = ["a face with red hair", "a face with black hair", "a face with red hair"]
  first = text.cached_embeddings(name, captions, directory=str(tmp_path))
  files = os.listdir(tmp_path)
  assert len(files) == 1 and files[0].startswith(name) and files[0].endswith(".npy")
  np.testing.assert_array_equal(first[0], first[2])
  np.testing.assert_allclose(first, text.get_encoder(name).encode(captions), atol=2e-5)
  again = text.cached_embeddings(name, captions, directory=str(tmp_path))
  np.testing.assert_array_equal(first, again)
  # Another caption list is another file; a damaged file is encoded again.
  text.cached_embeddings(name, captions[:2], directory=str(tmp_path))
  assert len(os.listdir(tmp_path)) == 2
  with open(tmp_path / files[0], "wb") as f:
    f.write(b"broken")
  np.testing.assert_array_equal(text.cached_embeddings(name, captions, directory=str(tmp_path)),
                                first)
  assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


def test_split_clauses_golden():
  assert text.split_clauses("A smiling face with short red hair, round glasses and a beard, "
                            "wearing a hat.") == [
                                "A smiling face", "short red hair", "round glasses", "a beard",
                                "wearing a hat"]
  # Words that merely contain "and" / "with" are not split; nothing to split gives the sentence.
  assert text.split_clauses("  a sandy withered bandana ") == ["a sandy withered bandana"]
  assert text.split_clauses("red.") == ["red"]


def test_clause_encoder_is_the_normalised_mean_of_its_clauses():
  base = text.hash_encoder(dim=32)
  enc = text.clause_encoder(base)
  assert (enc.name, enc.dim) == ("hash-clauses", 32) and enc.identity != base.identity
  v = enc.encode(["a face with red hair and glasses", "a face with glasses, red hair",
                  "a face with red hair"])
  parts = base.encode(["a face", "red hair", "glasses"]).astype(np.float64)
  want = parts.mean(0) / np.linalg.norm(parts.mean(0))
  np.testing.assert_allclose(v[0], want, atol=1e-6)
  np.testing.assert_allclose(v[1], v[0], atol=1e-6)  # clause order does not count
  # Each clause counts once whatever else is in the batch, and alone it is base's vector.
  np.testing.assert_allclose(enc.encode(["a face with red hair"])[0], v[2], atol=1e-6)
  two = parts[:2].mean(0)
  np.testing.assert_allclose(v[2], two / np.linalg.norm(two), atol=1e-6)
  assert not np.allclose(v[0], v[2], atol=1e-2)


def test_minilm_clauses_keeps_a_clause_independent_of_the_others(minilm):
  del minilm
  enc = text.get_encoder("minilm-clauses")
  assert enc.dim == text.encoder_dim("minilm-clauses") == 384
  v = enc.encode(["a face with blonde hair and a beard", "a face with black hair and a beard",
                  "a face with blonde hair and no beard"])
  np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
  base = text.get_encoder("minilm").encode(["a face", "blonde hair", "black hair", "a beard"])
  # v0 - v1 is (blonde - black) / 3 up to the normalisation: "a beard" cancels exactly.
  diff = v[0] * np.linalg.norm(base[[0, 1, 3]].mean(0)) - v[1] * np.linalg.norm(
      base[[0, 2, 3]].mean(0))
  np.testing.assert_allclose(diff, (base[1] - base[2]) / 3, atol=1e-5)


def test_long_encodings_show_a_progress_bar(tmp_path, capsys, monkeypatch):
  """Above PROGRESS_MIN distinct captions the one-time encoding reports on stderr (count,
  rate, time left); a short list stays silent; the vectors are the same either way."""
  monkeypatch.setattr(text, "PROGRESS_MIN", 5)
  captions = [f"a face number {i}" for i in range(8)]
  table = text.cached_embeddings("hash", captions, directory=str(tmp_path))
  err = capsys.readouterr().err
  assert "Encoding with hash" in err and "8/8" in err, err
  text.cached_embeddings("hash", captions[:4], directory=str(tmp_path))
  assert "Encoding with" not in capsys.readouterr().err
  np.testing.assert_allclose(table, text.get_encoder("hash").encode(captions), atol=1e-6)
