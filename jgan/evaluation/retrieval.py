"""Identity retrieval: does a translation keep its source's identity under f? (DTN's face metric)

For N held-out source images x_1..x_N, the gallery is their embeddings ``gallery[j] = f(x_j)``
and the queries the embeddings of their translations ``queries[i] = f(g(f(x_i)))``. Each query
ranks the whole gallery by distance; its *rank* is the 1-based position of its own source
``x_i``. A translation that keeps the identity ranks its source first.

    ranks = match_ranks(queries, gallery)                  # int [N], in [1, N]
    scores = identity_retrieval(queries, gallery)          # top1, top5, median_rank + chance

Conventions (pure float64 numpy functions, no jax):

* distance: ``"euclidean"`` (default; dlib's face metric, and FaceNet's on its normalised
  embeddings) or ``"cosine"`` (1 - cosine similarity). Distances are computed pair by pair
  from the differences (not through ``|a|^2 + |b|^2 - 2ab``), so a pair's distance does not
  depend on where the pair sits in the arrays.
* ties count against the query: ``rank_i = #{j : d(q_i, g_j) <= d(q_i, g_i)}``, so every
  gallery item as close as the true source is ranked ahead of it. A degenerate g (one output
  for every input) then scores exactly chance: its ranks are a permutation of 1..N when the
  gallery distances differ, and N each when they are all equal; it can never score above
  chance through ties.
* top-k accuracy: the fraction of queries with rank <= k; median rank: ``np.median`` of the
  ranks (the mean of the two middle ranks for even N).
* chance (a g whose outputs carry no identity, i.e. a uniformly random rank): top-k
  ``min(k, N) / N``, median rank ``(N + 1) / 2`` (for a random permutation of 1..N, exactly).

References:
  Taigman, Polyak & Wolf, "Unsupervised Cross-Domain Image Generation", ICLR 2017, Sec. 5.2
  (the face experiment judges identity by retrieval of the source among the gallery of faces);
  King, dlib ``dnn_face_recognition_ex.cpp`` (Euclidean distance between 128-d descriptors).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DISTANCES = ("euclidean", "cosine")
DEFAULT_KS = (1, 5)
_CHUNK_ELEMENTS = 1 << 23  # float64 values per block of pairwise differences (64 MB)


def _check(queries: np.ndarray, gallery: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  q = np.asarray(queries, np.float64)
  g = np.asarray(gallery, np.float64)
  if q.ndim != 2 or g.ndim != 2 or q.shape != g.shape:
    raise ValueError("queries and gallery must both be [N, D] (query i's source is gallery "
                     f"item i); got {q.shape} and {g.shape}.")
  if q.shape[0] < 1:
    raise ValueError("identity retrieval needs at least one query.")
  if not (np.all(np.isfinite(q)) and np.all(np.isfinite(g))):
    raise ValueError("queries and gallery must be finite.")
  return q, g


def pairwise_distances(queries: np.ndarray, gallery: np.ndarray, *,
                       distance: str = "euclidean") -> np.ndarray:
  """``d[i, j]`` = distance between ``queries[i]`` and ``gallery[j]`` (float64 [Nq, Ng]).

  ``queries`` [Nq, D] and ``gallery`` [Ng, D]; see the module docstring for the distances.
  """
  if distance not in DISTANCES:
    raise ValueError(f"Unknown distance {distance!r}; available: {', '.join(DISTANCES)}.")
  q = np.asarray(queries, np.float64)
  g = np.asarray(gallery, np.float64)
  if q.ndim != 2 or g.ndim != 2 or q.shape[1] != g.shape[1]:
    raise ValueError(f"Expected [Nq, D] and [Ng, D] arrays; got {q.shape} and {g.shape}.")
  if distance == "cosine":
    qn = np.linalg.norm(q, axis=1, keepdims=True)
    gn = np.linalg.norm(g, axis=1, keepdims=True)
    q = q / np.maximum(qn, 1e-12)
    g = g / np.maximum(gn, 1e-12)
  out = np.empty((q.shape[0], g.shape[0]), np.float64)
  rows = max(1, _CHUNK_ELEMENTS // max(1, g.shape[0] * g.shape[1]))
  for start in range(0, q.shape[0], rows):
    block = q[start:start + rows]
    if distance == "euclidean":
      out[start:start + rows] = np.sqrt(np.sum(np.square(block[:, None, :] - g[None]), -1))
    else:
      out[start:start + rows] = 1.0 - np.sum(block[:, None, :] * g[None], -1)
  return out


def match_ranks(queries: np.ndarray, gallery: np.ndarray, *,
                distance: str = "euclidean") -> np.ndarray:
  """The 1-based rank of each query's own source (``gallery[i]`` for ``queries[i]``).

  ``rank[i] = #{j : d(q_i, g_j) <= d(q_i, g_i)}`` (ties count against the query). Returns
  int64 [N] in [1, N].
  """
  q, g = _check(queries, gallery)
  d = pairwise_distances(q, g, distance=distance)
  own = np.diagonal(d)[:, None]
  return np.sum(d <= own, axis=1).astype(np.int64)


def chance_levels(n: int, *, ks: Sequence[int] = DEFAULT_KS) -> dict[str, float]:
  """The scores of a uniformly random rank among ``n``: ``top{k}_chance`` = min(k, n) / n,
  ``median_rank_chance`` = (n + 1) / 2."""
  if n < 1:
    raise ValueError(f"n must be >= 1, got {n}.")
  out = {f"top{k}_chance": min(int(k), n) / n for k in ks}
  out["median_rank_chance"] = (n + 1) / 2
  return out


def scores_from_ranks(ranks: np.ndarray, *, ks: Sequence[int] = DEFAULT_KS) -> dict[str, float]:
  """``top{k}`` (fraction of ranks <= k), ``median_rank``, ``mean_rank``, ``num`` (N) and the
  chance levels (:func:`chance_levels`) of 1-based ranks among N = len(ranks)."""
  ranks = np.asarray(ranks)
  n = int(ranks.shape[0])
  if ranks.ndim != 1 or n < 1 or ranks.min() < 1 or ranks.max() > n:
    raise ValueError(f"ranks must be a non-empty [N] array of values in [1, N]; got shape "
                     f"{ranks.shape}" + (f", values {ranks.min()}..{ranks.max()}" if n else ""))
  for k in ks:
    if int(k) < 1:
      raise ValueError(f"k must be >= 1, got {k}.")
  out = {f"top{k}": float(np.mean(ranks <= k)) for k in ks}
  out["median_rank"] = float(np.median(ranks))
  out["mean_rank"] = float(np.mean(ranks))
  out["num"] = float(n)
  out.update(chance_levels(n, ks=ks))
  return out


def identity_retrieval(queries: np.ndarray, gallery: np.ndarray, *, distance: str = "euclidean",
                       ks: Sequence[int] = DEFAULT_KS) -> dict[str, float]:
  """Identity-retrieval scores of translations: :func:`match_ranks`, then
  :func:`scores_from_ranks`.

  Args:
    queries: [N, D] embeddings of the translations, ``f(g(f(x_i)))``.
    gallery: [N, D] embeddings of their sources, ``f(x_i)`` (row i is query i's source).
    distance: ``"euclidean"`` or ``"cosine"``.
    ks: the k of the top-k accuracies.

  Returns:
    ``{"top1", "top5", "median_rank", "mean_rank", "num", "top1_chance", "top5_chance",
    "median_rank_chance"}`` (for the default ks) as floats.
  """
  return scores_from_ranks(match_ranks(queries, gallery, distance=distance), ks=ks)


__all__ = ["DISTANCES", "chance_levels", "identity_retrieval", "match_ranks",
           "pairwise_distances", "scores_from_ranks"]
