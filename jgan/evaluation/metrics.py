"""Sample-quality metrics over feature and logit arrays: FID, KID, precision/recall and IS.

Every function here is a pure function of host arrays (numpy, or anything ``np.asarray``
accepts, e.g. a ``jax.Array``) with keyword-only hyper-parameters. The feature extractor
(Inception or otherwise) is not part of this module: these functions take its outputs,

  ``features``: [N, D] embeddings, one row per image (e.g. Inception pool3, D = 2048);
  ``logits``:   [N, K] classifier logits, one row per image (e.g. Inception, K = 1008 or 1000).

All arithmetic is float64 numpy on the host, because these metrics are sums and differences of
large, nearly equal numbers (FID's traces, KID's kernel sums) where float32 visibly changes the
reported value. Each function follows the definition of the reference implementation named in
its docstring, so that numbers are comparable with published ones computed from the same
features:

  * FID: pytorch-fid ``calculate_frechet_distance`` (unbiased covariance, same formula).
  * KID: Binkowski et al.'s ``compute_scores.py`` as used by torch-fidelity / clean-fid
    (cubic polynomial kernel, unbiased MMD^2, mean and population std over random subsets).
  * Precision / recall: Kynkaanniemi et al.'s reference code (k-th nearest neighbour radii, a
    sample is inside a ball when its distance is ``<=`` the radius).
  * IS: Salimans et al.'s original code (splits taken in order, population std).

Invalid inputs (wrong rank, mismatched feature dimensions, too few samples, non-finite values,
out-of-range hyper-parameters) raise ``ValueError`` naming the argument and its shape or value.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "GaussianAccumulator",
    "fid_from_features",
    "frechet_distance",
    "gaussian_statistics",
    "inception_score",
    "kernel_inception_distance",
    "mean_pairwise_distance",
    "precision_recall",
]

# A covariance may be slightly asymmetric or indefinite from rounding (e.g. float32 storage);
# beyond these relative tolerances (of its largest absolute entry / eigenvalue) it is rejected.
_SYMMETRY_RTOL = 1e-5
_PSD_RTOL = 1e-5


# --------------------------------------------------------------------------------------------
# Input validation.
# --------------------------------------------------------------------------------------------


def _as_float64(x, name: str, *, ndim: int) -> np.ndarray:
  """Returns ``x`` as a float64 array of rank ``ndim`` with only finite values."""
  arr = np.asarray(x)
  if arr.ndim != ndim:
    raise ValueError(f"{name} must have rank {ndim}, got shape {arr.shape}.")
  arr = arr.astype(np.float64, copy=False)
  if not np.all(np.isfinite(arr)):
    raise ValueError(f"{name} (shape {arr.shape}) contains non-finite values (NaN or inf).")
  return arr


def _features(x, name: str, *, min_rows: int) -> np.ndarray:
  """Returns features ``x`` as float64 [N, D] with N >= ``min_rows`` and D >= 1."""
  arr = _as_float64(x, name, ndim=2)
  if arr.shape[1] < 1:
    raise ValueError(f"{name} must have at least one feature column, got shape {arr.shape}.")
  if arr.shape[0] < min_rows:
    raise ValueError(
        f"{name} needs at least {min_rows} samples (rows), got shape {arr.shape}.")
  return arr


def _feature_pair(real, fake, *, min_rows: int) -> tuple[np.ndarray, np.ndarray]:
  """Validates two [N, D] / [M, D] feature arrays with the same D."""
  real = _features(real, "real", min_rows=min_rows)
  fake = _features(fake, "fake", min_rows=min_rows)
  if real.shape[1] != fake.shape[1]:
    raise ValueError(
        f"real and fake features must have the same dimension D, got real {real.shape} and "
        f"fake {fake.shape}.")
  return real, fake


def _check_int(value, name: str, *, minimum: int) -> int:
  """Returns ``value`` as an int, raising unless it is an integer >= ``minimum``."""
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
    raise ValueError(f"{name} must be an integer, got {value!r}.")
  if value < minimum:
    raise ValueError(f"{name} must be >= {minimum}, got {value!r}.")
  return int(value)


# --------------------------------------------------------------------------------------------
# Gaussian statistics (one-shot and streaming).
# --------------------------------------------------------------------------------------------


def gaussian_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Mean and unbiased covariance of ``features``, in float64.

  The covariance divides by ``N - 1``, exactly like ``np.cov(features, rowvar=False)`` (and
  pytorch-fid), so the statistics plug straight into :func:`frechet_distance`.

  Args:
    features: [N, D] array, one feature vector per row, N >= 2.

  Returns:
    ``(mu, sigma)``: float64 arrays of shapes [D] and [D, D].

  Raises:
    ValueError: if ``features`` is not 2-D, has fewer than 2 rows, or is not finite.

  References:
    Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
    Equilibrium", NeurIPS 2017, Sec. "Frechet Inception Distance"; pytorch-fid
    ``calculate_activation_statistics``.
  """
  x = _features(features, "features", min_rows=2)
  mu = x.mean(axis=0)
  centered = x - mu
  sigma = centered.T @ centered / (x.shape[0] - 1)
  return mu, sigma


class GaussianAccumulator:
  """Streaming mean and covariance of feature batches, equal to :func:`gaussian_statistics`.

  Holds the count, the float64 mean [D] and the float64 centred scatter matrix
  ``sum_i (x_i - mean)(x_i - mean)^T`` [D, D], updated per batch with the pairwise
  (Chan et al.) combination rule. This is the same information as float64 sums of ``x`` and
  ``x x^T``, but it does not lose precision to cancellation when the features have a large
  mean, so streamed statistics match the one-shot ones to rounding error. Memory is
  O(D^2) whatever the number of samples.

  Example::

    acc = GaussianAccumulator()
    for batch in batches:           # each [B, D]
      acc.update(batch)
    mu, sigma = acc.statistics()    # == gaussian_statistics(np.concatenate(batches))

  Accumulators filled on different hosts or shards combine with :meth:`merge`.

  References:
    Chan, Golub and LeVeque, "Updating Formulae and a Pairwise Algorithm for Computing Sample
    Variances", 1979 (pairwise update of the mean and scatter matrix).
  """

  def __init__(self, dim: int | None = None):
    """Creates an empty accumulator.

    Args:
      dim: feature dimension D; if None it is taken from the first non-empty batch.
    """
    if dim is not None:
      dim = _check_int(dim, "dim", minimum=1)
    self._dim = dim
    self._count = 0
    self._mean = None if dim is None else np.zeros(dim, np.float64)
    self._scatter = None if dim is None else np.zeros((dim, dim), np.float64)

  @property
  def count(self) -> int:
    """Number of feature vectors seen so far."""
    return self._count

  @property
  def dim(self) -> int | None:
    """Feature dimension D, or None before the first batch when it was not given."""
    return self._dim

  def _combine(self, count: int, mean: np.ndarray, scatter: np.ndarray) -> None:
    """Folds in a block with the given count, mean [D] and centred scatter [D, D]."""
    if count == 0:
      return
    if self._count == 0:
      self._count, self._mean, self._scatter = count, mean.copy(), scatter.copy()
      return
    total = self._count + count
    delta = mean - self._mean
    self._mean = self._mean + delta * (count / total)
    self._scatter = self._scatter + scatter + np.outer(delta, delta) * (self._count * count
                                                                         / total)
    self._count = total

  def _check_dim(self, dim: int, what: str) -> None:
    if self._dim is None:
      self._dim = dim
    elif dim != self._dim:
      raise ValueError(f"{what} has feature dimension {dim}, but this accumulator holds "
                       f"D = {self._dim}.")

  def update(self, batch: np.ndarray) -> GaussianAccumulator:
    """Adds a batch of feature vectors.

    Args:
      batch: [B, D] array (B may be 0); D must match earlier batches.

    Returns:
      ``self``, so calls can be chained.

    Raises:
      ValueError: if ``batch`` is not 2-D, is not finite, or its D differs.
    """
    x = _as_float64(batch, "batch", ndim=2)
    self._check_dim(x.shape[1], f"batch of shape {x.shape}")
    if x.shape[0] == 0:
      return self
    mean = x.mean(axis=0)
    centered = x - mean
    self._combine(x.shape[0], mean, centered.T @ centered)
    return self

  def merge(self, other: GaussianAccumulator) -> GaussianAccumulator:
    """Returns a new accumulator holding the samples of both ``self`` and ``other``.

    Neither input is modified. The result's statistics equal those of all samples together.

    Raises:
      ValueError: if the two accumulators have different feature dimensions.
    """
    if not isinstance(other, GaussianAccumulator):
      raise TypeError(f"can only merge another GaussianAccumulator, got {type(other)!r}.")
    if self._dim is not None and other.dim is not None and self._dim != other.dim:
      raise ValueError(f"cannot merge accumulators with feature dimensions {self._dim} and "
                       f"{other.dim}.")
    merged = GaussianAccumulator(self._dim if self._dim is not None else other.dim)
    if self._count:
      merged._combine(self._count, self._mean, self._scatter)
    if other.count:
      merged._combine(other._count, other._mean, other._scatter)
    return merged

  def statistics(self) -> tuple[np.ndarray, np.ndarray]:
    """Mean [D] and unbiased covariance [D, D] (float64) of all samples seen.

    Raises:
      ValueError: if fewer than 2 samples have been seen.
    """
    if self._count < 2:
      raise ValueError(f"need at least 2 samples for a covariance, got {self._count}.")
    return self._mean.copy(), self._scatter / (self._count - 1)


# --------------------------------------------------------------------------------------------
# Frechet distance (FID).
# --------------------------------------------------------------------------------------------


def _check_covariance(sigma: np.ndarray, name: str) -> np.ndarray:
  """Returns the symmetrised ``sigma``; raises if it is clearly not symmetric."""
  scale = float(np.max(np.abs(sigma))) if sigma.size else 0.0
  asym = float(np.max(np.abs(sigma - sigma.T))) if sigma.size else 0.0
  if asym > _SYMMETRY_RTOL * scale:
    raise ValueError(f"{name} (shape {sigma.shape}) is not a symmetric covariance matrix: "
                     f"max |{name} - {name}^T| = {asym:.3g} (largest entry {scale:.3g}).")
  return 0.5 * (sigma + sigma.T)


def _psd_sqrt(sigma: np.ndarray, name: str) -> np.ndarray:
  """Symmetric PSD square root of a symmetric matrix via ``eigh``.

  Eigenvalues slightly below zero from rounding are clipped to zero; clearly negative ones
  (the matrix is not a covariance) raise.
  """
  w, v = np.linalg.eigh(sigma)
  tol = _PSD_RTOL * max(float(np.max(np.abs(w))), np.finfo(np.float64).tiny)
  if w[0] < -tol:
    raise ValueError(f"{name} is not positive semi-definite: smallest eigenvalue {w[0]:.3g} "
                     f"(largest |eigenvalue| {np.max(np.abs(w)):.3g}).")
  return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def _trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
  """``Tr sqrt(sigma1 @ sigma2)`` for symmetric PSD inputs, via one symmetric eigenproblem.

  ``sigma1 @ sigma2`` has the same eigenvalues as the symmetric PSD matrix
  ``M = sqrt(sigma1) @ sigma2 @ sqrt(sigma1)`` (AB and BA share their spectrum), all real and
  >= 0, so the trace of its principal square root is ``sum(sqrt(eigvalsh(M)))``.
  """
  root1 = _psd_sqrt(sigma1, "sigma1")
  m = root1 @ sigma2 @ root1
  m = 0.5 * (m + m.T)
  eig = np.linalg.eigvalsh(m)
  return float(np.sum(np.sqrt(np.clip(eig, 0.0, None))))


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                     sigma2: np.ndarray, *, eps: float = 1e-6) -> float:
  """Frechet distance between the Gaussians N(mu1, sigma1) and N(mu2, sigma2).

  ``d^2 = ||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 sqrt(sigma1 sigma2))``, the squared
  2-Wasserstein distance between the two Gaussians; with Inception pool3 statistics this is FID.

  Method: ``Tr sqrt(sigma1 sigma2)`` is computed in float64 on the host without forming the
  (non-symmetric) matrix square root. With ``S = sqrt(sigma1)`` from ``eigh`` (tiny negative
  eigenvalues clipped to 0), ``sigma1 sigma2 = S (S sigma2)`` has the same eigenvalues as the
  symmetric PSD matrix ``S sigma2 S``, so ``Tr sqrt(sigma1 sigma2) = sum_i sqrt(lambda_i)``
  with ``lambda = eigvalsh(S sigma2 S)`` clipped at 0. This is exact for PSD inputs, including
  singular ones (e.g. fewer samples than feature dimensions), and never produces the complex
  round-off that ``scipy.linalg.sqrtm`` does. It agrees with pytorch-fid's
  ``calculate_frechet_distance`` (``sqrtm``-based) to ~1e-14 relative on full-rank 2048-D
  statistics, and to ~1e-7 on rank-deficient ones (N < D), where ``sqrtm`` itself leaves
  imaginary round-off of that size. As in pytorch-fid, ``eps * I`` is added to both
  covariances only if that computation fails (non-finite result or a non-converging
  eigensolver), which for finite PSD inputs does not happen in practice. Tiny negative
  results from rounding (identical inputs) are clipped to 0.

  Args:
    mu1: [D] mean of the first distribution (e.g. generated features).
    sigma1: [D, D] covariance of the first distribution (symmetric PSD).
    mu2: [D] mean of the second distribution (e.g. real features).
    sigma2: [D, D] covariance of the second distribution (symmetric PSD).
    eps: diagonal offset for the fallback described above; must be > 0.

  Returns:
    The distance as a Python float, >= 0. Symmetric in its two distributions.

  Raises:
    ValueError: on mismatched or wrong shapes (naming them), non-finite values, asymmetric or
      clearly indefinite covariances, or ``eps <= 0``.

  References:
    Dowson and Landau, "The Frechet distance between multivariate normal distributions",
    J. Multivariate Anal. 1982; Heusel et al., "GANs Trained by a Two Time-Scale Update Rule
    Converge to a Local Nash Equilibrium", NeurIPS 2017, eq. 6; pytorch-fid
    ``calculate_frechet_distance``.
  """
  if not eps > 0:
    raise ValueError(f"eps must be > 0, got {eps!r}.")
  mu1 = _as_float64(mu1, "mu1", ndim=1)
  mu2 = _as_float64(mu2, "mu2", ndim=1)
  sigma1 = _as_float64(sigma1, "sigma1", ndim=2)
  sigma2 = _as_float64(sigma2, "sigma2", ndim=2)
  if mu1.shape != mu2.shape:
    raise ValueError(f"mu1 and mu2 have different shapes: {mu1.shape} and {mu2.shape}.")
  d = mu1.shape[0]
  if d < 1:
    raise ValueError(f"means must have at least one dimension, got shape {mu1.shape}.")
  for name, sigma in (("sigma1", sigma1), ("sigma2", sigma2)):
    if sigma.shape != (d, d):
      raise ValueError(f"{name} must have shape (D, D) = {(d, d)} to match the means of "
                       f"shape {mu1.shape}, got {sigma.shape}.")
  sigma1 = _check_covariance(sigma1, "sigma1")
  sigma2 = _check_covariance(sigma2, "sigma2")

  try:
    tr_covmean = _trace_sqrt_product(sigma1, sigma2)
  except np.linalg.LinAlgError:
    tr_covmean = math.nan
  if not math.isfinite(tr_covmean):
    offset = eps * np.eye(d)
    sigma1, sigma2 = sigma1 + offset, sigma2 + offset
    tr_covmean = _trace_sqrt_product(sigma1, sigma2)

  diff = mu1 - mu2
  value = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)
  return max(value, 0.0)


def fid_from_features(real: np.ndarray, fake: np.ndarray) -> float:
  """Frechet distance between the Gaussian fits of two feature sets (FID for Inception).

  ``frechet_distance(*gaussian_statistics(real), *gaussian_statistics(fake))``. For features
  that do not fit in memory, stream them through :class:`GaussianAccumulator` instead.

  Args:
    real: [N, D] features of real samples, N >= 2.
    fake: [M, D] features of generated samples, M >= 2, same D.

  Returns:
    The distance as a Python float, >= 0.

  Raises:
    ValueError: if the arrays are not 2-D, have fewer than 2 rows, or their D differ.

  References:
    Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
    Equilibrium", NeurIPS 2017, eq. 6.
  """
  real, fake = _feature_pair(real, fake, min_rows=2)
  mu_r, sigma_r = gaussian_statistics(real)
  mu_f, sigma_f = gaussian_statistics(fake)
  return frechet_distance(mu_r, sigma_r, mu_f, sigma_f)


# --------------------------------------------------------------------------------------------
# Kernel Inception distance (KID).
# --------------------------------------------------------------------------------------------


def _polynomial_kernel(x: np.ndarray, y: np.ndarray, *, degree: int, gamma: float,
                       coef0: float) -> np.ndarray:
  """[n, m] matrix ``(gamma <x_i, y_j> + coef0) ** degree``."""
  return (gamma * (x @ y.T) + coef0) ** degree


def _mmd2_unbiased(k_xx: np.ndarray, k_xy: np.ndarray, k_yy: np.ndarray) -> float:
  """Unbiased MMD^2 from [m, m] kernel matrices (diagonals of k_xx, k_yy excluded)."""
  m = k_xx.shape[0]
  sum_xx = k_xx.sum() - np.trace(k_xx)
  sum_yy = k_yy.sum() - np.trace(k_yy)
  return float((sum_xx + sum_yy) / (m * (m - 1)) - 2.0 * k_xy.sum() / (m * m))


def kernel_inception_distance(real: np.ndarray, fake: np.ndarray, *, num_subsets: int = 100,
                              subset_size: int = 1000, degree: int = 3,
                              gamma: float | None = None, coef0: float = 1.0,
                              seed: int = 0) -> tuple[float, float]:
  """Kernel (Inception) distance: unbiased polynomial-kernel MMD^2, averaged over subsets.

  With ``k(x, y) = (gamma <x, y> + coef0) ** degree`` (default: the cubic kernel with
  ``gamma = 1 / D``, ``coef0 = 1``) and ``m = min(subset_size, N, M)``, each of
  ``num_subsets`` rounds draws ``m`` real rows and then ``m`` fake rows without replacement
  (``numpy.random.default_rng(seed).choice(..., replace=False)``) and computes

    ``MMD^2_u = sum_{i != j} k(x_i, x_j) / (m (m - 1)) + sum_{i != j} k(y_i, y_j) / (m (m - 1))
              - 2 sum_{i, j} k(x_i, y_j) / m^2``,

  the estimator (``mmd_est='unbiased'``) of Binkowski et al.'s code used by torch-fidelity and
  clean-fid. It is unbiased, so it can be slightly negative when the distributions are equal.
  Subsets are drawn with a numpy ``Generator`` rather than torch-fidelity's ``RandomState``, so
  individual subsets (not the estimand) differ from torch-fidelity's for the same seed.
  Published KIDs are often reported multiplied by 1000 (or 100); this returns the raw value.

  Args:
    real: [N, D] features of real samples.
    fake: [M, D] features of generated samples, same D.
    num_subsets: number of random subsets to average over, >= 1.
    subset_size: rows per subset, >= 2 (clipped to ``min(N, M)``).
    degree: polynomial kernel degree, >= 1.
    gamma: kernel scale; None means ``1 / D``. Must be > 0.
    coef0: kernel offset.
    seed: seed of the numpy random generator that draws the subsets.

  Returns:
    ``(mean, std)`` of MMD^2 over the subsets, as Python floats; ``std`` is the population
    standard deviation (``np.std``, ddof=0), as in torch-fidelity.

  Raises:
    ValueError: if D differs, ``min(N, M) < 2``, or a hyper-parameter is out of range.

  References:
    Binkowski et al., "Demystifying MMD GANs", ICLR 2018, Sec. 4 and App. (KID) and
    ``MMD-GAN/gan/compute_scores.py``; torch-fidelity ``metric_kid.py``.
  """
  num_subsets = _check_int(num_subsets, "num_subsets", minimum=1)
  subset_size = _check_int(subset_size, "subset_size", minimum=2)
  degree = _check_int(degree, "degree", minimum=1)
  real, fake = _feature_pair(real, fake, min_rows=2)
  if gamma is None:
    gamma = 1.0 / real.shape[1]
  elif not (math.isfinite(gamma) and gamma > 0):
    raise ValueError(f"gamma must be a finite number > 0 (or None for 1 / D), got {gamma!r}.")
  if not math.isfinite(coef0):
    raise ValueError(f"coef0 must be finite, got {coef0!r}.")
  m = min(subset_size, real.shape[0], fake.shape[0])
  rng = np.random.default_rng(seed)
  kernel = dict(degree=degree, gamma=float(gamma), coef0=float(coef0))
  mmds = np.empty(num_subsets, np.float64)
  for i in range(num_subsets):
    x = real[rng.choice(real.shape[0], m, replace=False)]
    y = fake[rng.choice(fake.shape[0], m, replace=False)]
    mmds[i] = _mmd2_unbiased(_polynomial_kernel(x, x, **kernel),
                             _polynomial_kernel(x, y, **kernel),
                             _polynomial_kernel(y, y, **kernel))
  return float(np.mean(mmds)), float(np.std(mmds))


# --------------------------------------------------------------------------------------------
# Improved precision and recall.
# --------------------------------------------------------------------------------------------


def _squared_distances(a: np.ndarray, a_sq: np.ndarray, b: np.ndarray,
                       b_sq: np.ndarray) -> np.ndarray:
  """[n, m] squared Euclidean distances ``||a_i||^2 + ||b_j||^2 - 2 <a_i, b_j>``, >= 0."""
  d = a @ b.T
  d *= -2.0
  d += a_sq[:, None]
  d += b_sq[None, :]
  np.maximum(d, 0.0, out=d)
  return d


def _knn_squared_radii(x: np.ndarray, x_sq: np.ndarray, *, k: int,
                       batch_size: int) -> np.ndarray:
  """[N] squared distance from each row of ``x`` to its k-th nearest *other* row."""
  n = x.shape[0]
  radii = np.empty(n, np.float64)
  for start in range(0, n, batch_size):
    stop = min(start + batch_size, n)
    d = _squared_distances(x[start:stop], x_sq[start:stop], x, x_sq)
    rows = np.arange(stop - start)
    d[rows, start + rows] = np.inf  # Exclude each sample itself.
    d.partition(k - 1, axis=1)  # In place: no second [b, N] buffer.
    radii[start:stop] = d[:, k - 1]
    del d  # Free the block before the next one is allocated.
  return radii


def precision_recall(real: np.ndarray, fake: np.ndarray, *, k: int = 3,
                     batch_size: int = 1024) -> dict[str, float]:
  """Improved precision and recall of generated samples against real samples.

  Each real sample ``r_i`` gets the ball of radius ``R_i`` = distance to its k-th nearest
  other real sample; the real manifold is the union of these balls. Precision is the fraction
  of fake samples inside the real manifold (``||f - r_i|| <= R_i`` for some i, boundary
  included as in the reference code); recall is the fraction of real samples inside the fake
  manifold, built the same way from the fake samples.

  Distances are computed in float64 in row blocks of ``batch_size``: peak memory is
  O(batch_size * max(N, M)) plus float64 copies of the inputs (never O(N^2) or O(N M D)):
  with the default batch_size, N = M = 10,000 needs about 100 MB beyond the features, whatever
  D. The real-fake block is computed once and used for both precision and recall.

  Args:
    real: [N, D] features of real samples, N > k.
    fake: [M, D] features of generated samples, M > k, same D.
    k: neighbourhood size (the paper uses 3), 1 <= k < min(N, M).
    batch_size: rows per distance block, >= 1.

  Returns:
    ``{"precision": float, "recall": float}``, both in [0, 1].

  Raises:
    ValueError: if D differs, ``k`` is out of range for N or M, or ``batch_size < 1``.

  References:
    Kynkaanniemi et al., "Improved Precision and Recall Metric for Assessing Generative
    Models", NeurIPS 2019, Sec. 2, eqs. 1-3; reference code
    ``kynkaat/improved-precision-and-recall-metric``.
  """
  k = _check_int(k, "k", minimum=1)
  batch_size = _check_int(batch_size, "batch_size", minimum=1)
  real, fake = _feature_pair(real, fake, min_rows=1)
  for name, x in (("real", real), ("fake", fake)):
    if k >= x.shape[0]:
      raise ValueError(f"k = {k} needs more than k samples in {name} (each sample's k-th "
                       f"nearest other sample), got {name} of shape {x.shape}.")
  real_sq = np.einsum("ij,ij->i", real, real)
  fake_sq = np.einsum("ij,ij->i", fake, fake)
  real_radii = _knn_squared_radii(real, real_sq, k=k, batch_size=batch_size)
  fake_radii = _knn_squared_radii(fake, fake_sq, k=k, batch_size=batch_size)

  fake_in_real = np.zeros(fake.shape[0], bool)
  real_in_fake = np.zeros(real.shape[0], bool)
  for start in range(0, fake.shape[0], batch_size):
    stop = min(start + batch_size, fake.shape[0])
    d = _squared_distances(fake[start:stop], fake_sq[start:stop], real, real_sq)  # [b, N]
    fake_in_real[start:stop] = np.any(d <= real_radii[None, :], axis=1)
    real_in_fake |= np.any(d <= fake_radii[start:stop, None], axis=0)
    del d
  return {"precision": float(np.mean(fake_in_real)), "recall": float(np.mean(real_in_fake))}


# --------------------------------------------------------------------------------------------
# Inception score.
# --------------------------------------------------------------------------------------------


def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
  """Stable ``log(sum(exp(x), axis, keepdims=True))``; entries may be -inf."""
  m = np.max(x, axis=axis, keepdims=True)
  return m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))


def mean_pairwise_distance(features) -> float:
  """Within-group diversity: the mean Euclidean distance between the features of two
  different images of one group, averaged over groups.

  ``features`` [G, N, D]: G groups (e.g. captions) of N >= 2 images each (e.g. one per noise
  vector). Each group contributes the mean over its N (N - 1) / 2 pairs; the result is the mean
  over groups. 0 when every group is N copies of one image (a generator that ignores its
  noise); compare with the same figure for real images of each group's condition.

  References:
    LPIPS diversity of Zhu et al., "Toward Multimodal Image-to-Image Translation" (BicycleGAN),
    NeurIPS 2017, and Mao et al., MSGAN, CVPR 2019 (the mean pairwise distance of samples of
    one condition), here in a classifier's feature space.
  """
  arr = _as_float64(features, "features", ndim=3)
  if arr.shape[1] < 2:
    raise ValueError(f"features needs at least 2 images per group, got shape {arr.shape}.")
  sq = np.sum(arr ** 2, axis=-1)
  d2 = sq[:, :, None] + sq[:, None, :] - 2.0 * np.einsum("gnd,gmd->gnm", arr, arr)
  dist = np.sqrt(np.maximum(d2, 0.0))
  n = arr.shape[1]
  iu = np.triu_indices(n, k=1)
  return float(np.mean(dist[:, iu[0], iu[1]]))


def inception_score(logits: np.ndarray, *, splits: int = 10) -> tuple[float, float]:
  """Inception score ``exp(E_x KL(p(y|x) || p(y)))``, mean and std over ``splits``.

  ``p(y|x) = softmax(logits)`` is computed with a stable log-softmax in float64; ``p(y)`` is
  the mean of ``p(y|x)`` over each split. As in Salimans et al.'s original code the samples are
  split in order, split ``i`` being rows ``[i * N // splits, (i + 1) * N // splits)`` (no
  shuffling; torch-fidelity shuffles first by default), and a split's score is
  ``exp(mean_x sum_y p(y|x) (log p(y|x) - log p(y)))``. Terms with ``p(y|x) = 0`` contribute
  0, so ``-inf`` logits (``log`` of exact probabilities) are allowed. The score lies in
  ``[1, K]``: 1 for identical predictions, K for confident predictions spread evenly over the
  K classes.

  Args:
    logits: [N, K] classifier logits (not probabilities; pass ``np.log(probs)`` for those),
      N >= splits. Each row needs at least one finite entry; NaN and +inf are rejected.
    splits: number of in-order splits, >= 1 (the standard choice is 10 splits of 5,000).

  Returns:
    ``(mean, std)`` over the splits as Python floats; ``std`` is the population standard
    deviation (``np.std``, ddof=0), as in the original code.

  Raises:
    ValueError: if ``logits`` is not [N, K], contains NaN / +inf or an all ``-inf`` row, or
      ``splits`` is out of range.

  References:
    Salimans et al., "Improved Techniques for Training GANs", NeurIPS 2016, Sec. 4;
    ``openai/improved-gan/inception_score/model.py``.
  """
  splits = _check_int(splits, "splits", minimum=1)
  x = np.asarray(logits)
  if x.ndim != 2 or x.shape[1] < 1:
    raise ValueError(f"logits must have shape [N, K] with K >= 1, got {x.shape}.")
  x = x.astype(np.float64, copy=False)
  if np.any(np.isnan(x)) or np.any(x == np.inf):
    raise ValueError(f"logits (shape {x.shape}) contain NaN or +inf.")
  if np.any(np.all(x == -np.inf, axis=1)):
    raise ValueError(f"logits (shape {x.shape}) have a row that is all -inf.")
  n = x.shape[0]
  if n < splits:
    raise ValueError(f"need at least splits = {splits} samples, got logits of shape {x.shape}.")
  log_p = x - _logsumexp(x, axis=1)
  p = np.exp(log_p)
  scores = np.empty(splits, np.float64)
  for i in range(splits):
    lo, hi = i * n // splits, (i + 1) * n // splits
    part_p, part_log_p = p[lo:hi], log_p[lo:hi]
    # A class with p(y|x) = 0 throughout the split has log p(y) = -inf; its terms are
    # 0 * (-inf) and masked out, so silence the invalid-value warnings they raise.
    with np.errstate(invalid="ignore"):
      log_py = _logsumexp(part_log_p, axis=0) - math.log(hi - lo)  # [1, K]
      terms = np.where(part_p > 0, part_p * (part_log_p - log_py), 0.0)
    scores[i] = math.exp(float(np.mean(np.sum(terms, axis=1))))
  return float(np.mean(scores)), float(np.std(scores))
