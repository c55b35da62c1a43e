"""Tests for jgan.evaluation.metrics: golden values, closed forms and brute-force references."""

import math
import tracemalloc
import warnings

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
import scipy.special

from jgan import evaluation
from jgan.evaluation import metrics


def rng(seed):
  return np.random.default_rng(seed)


def random_covariance(seed, d, *, floor=0.5):
  """A well-conditioned SPD matrix: G G^T / d + floor * I."""
  g = rng(seed).standard_normal((d, d))
  return g @ g.T / d + floor * np.eye(d)


def pytorch_fid_reference(mu1, sigma1, mu2, sigma2, eps=1e-6):
  """pytorch-fid's calculate_frechet_distance (scipy.linalg.sqrtm of the product)."""
  diff = mu1 - mu2
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    covmean = scipy.linalg.sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
      offset = np.eye(sigma1.shape[0]) * eps
      covmean = scipy.linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
  if np.iscomplexobj(covmean):
    assert np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3)
    covmean = covmean.real
  return diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean)


# --------------------------------------------------------------------------------------------
# gaussian_statistics and GaussianAccumulator.
# --------------------------------------------------------------------------------------------


def test_gaussian_statistics_matches_np_cov():
  x = rng(0).standard_normal((50, 6)).astype(np.float32)
  mu, sigma = metrics.gaussian_statistics(x)
  assert mu.dtype == sigma.dtype == np.float64
  assert mu.shape == (6,) and sigma.shape == (6, 6)
  np.testing.assert_allclose(mu, x.astype(np.float64).mean(0), rtol=1e-12)
  np.testing.assert_allclose(sigma, np.cov(x.astype(np.float64), rowvar=False), rtol=1e-12)


def test_gaussian_statistics_two_points_by_hand():
  # Rows (0, 0) and (2, 4): mean (1, 2); unbiased covariance = sum of centred outer products
  # / (N - 1) = [(-1,-2)(-1,-2)^T + (1,2)(1,2)^T] / 1 = [[2, 4], [4, 8]].
  mu, sigma = metrics.gaussian_statistics(np.array([[0.0, 0.0], [2.0, 4.0]]))
  np.testing.assert_array_equal(mu, [1.0, 2.0])
  np.testing.assert_array_equal(sigma, [[2.0, 4.0], [4.0, 8.0]])


@pytest.mark.parametrize("bad, match", [
    (np.zeros((1, 3)), r"at least 2 samples.*\(1, 3\)"),
    (np.zeros(5), r"rank 2.*\(5,\)"),
    (np.array([[0.0, np.nan], [1.0, 2.0]]), "non-finite"),
])
def test_gaussian_statistics_rejects_bad_input(bad, match):
  with pytest.raises(ValueError, match=match):
    metrics.gaussian_statistics(bad)


def test_accumulator_streaming_equals_one_shot():
  x = rng(1).standard_normal((103, 7)) * 3.0 + 1.5
  acc = metrics.GaussianAccumulator()
  for lo, hi in [(0, 1), (1, 40), (40, 40), (40, 41), (41, 103)]:  # includes an empty batch
    acc.update(x[lo:hi])
  assert acc.count == 103 and acc.dim == 7
  mu, sigma = acc.statistics()
  mu_ref, sigma_ref = metrics.gaussian_statistics(x)
  np.testing.assert_allclose(mu, mu_ref, rtol=1e-12, atol=1e-13)
  np.testing.assert_allclose(sigma, sigma_ref, rtol=1e-11, atol=1e-13)


def test_accumulator_merge_equals_one_shot_and_keeps_inputs():
  x = rng(2).standard_normal((60, 5))
  a = metrics.GaussianAccumulator().update(x[:25])
  b = metrics.GaussianAccumulator(5).update(x[25:40]).update(x[40:])
  merged = a.merge(b)
  assert (a.count, b.count, merged.count) == (25, 35, 60)
  mu, sigma = merged.statistics()
  mu_ref, sigma_ref = metrics.gaussian_statistics(x)
  np.testing.assert_allclose(mu, mu_ref, rtol=1e-12, atol=1e-13)
  np.testing.assert_allclose(sigma, sigma_ref, rtol=1e-11, atol=1e-13)
  # Merging with an empty accumulator (either side) changes nothing.
  empty = metrics.GaussianAccumulator()
  for m in (merged.merge(empty), empty.merge(merged)):
    np.testing.assert_array_equal(m.statistics()[1], sigma)


def test_accumulator_is_stable_for_features_with_a_large_mean():
  # Raw sums of x x^T would lose ~1e12 * 1e-16 = 1e-4 absolute here; the centred update does not.
  x = rng(3).standard_normal((200, 4)) + 1e6
  acc = metrics.GaussianAccumulator()
  for lo in range(0, 200, 32):
    acc.update(x[lo:lo + 32])
  np.testing.assert_allclose(acc.statistics()[1], np.cov(x, rowvar=False), rtol=1e-7,
                             atol=1e-7)


def test_accumulator_errors():
  acc = metrics.GaussianAccumulator().update(np.zeros((1, 3)))
  with pytest.raises(ValueError, match="at least 2 samples"):
    acc.statistics()
  with pytest.raises(ValueError, match=r"dimension 4.*D = 3"):
    acc.update(np.zeros((2, 4)))
  with pytest.raises(ValueError, match="feature dimensions 3 and 2"):
    acc.merge(metrics.GaussianAccumulator(2))
  with pytest.raises(ValueError, match="rank 2"):
    acc.update(np.zeros(3))


# --------------------------------------------------------------------------------------------
# frechet_distance and fid_from_features.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_frechet_distance_matches_pytorch_fid_formula(seed):
  d = 24
  mu1, mu2 = rng(seed).standard_normal(d), rng(seed + 10).standard_normal(d)
  s1, s2 = random_covariance(seed + 20, d), random_covariance(seed + 30, d, floor=0.2)
  expected = pytorch_fid_reference(mu1, s1, mu2, s2)
  np.testing.assert_allclose(metrics.frechet_distance(mu1, s1, mu2, s2), expected, rtol=1e-6)


def test_frechet_distance_diagonal_closed_form():
  # Diagonal covariances commute: sqrt(S1 S2) = diag(sqrt(a b)), so
  # FID = ||mu1 - mu2||^2 + sum(a + b - 2 sqrt(a b)) = ||mu1 - mu2||^2 + sum((sqrt a - sqrt b)^2).
  # Here: ||(1, 2, 0) - (0, 0, 3)||^2 = 1 + 4 + 9 = 14; (2 - 1)^2 + (3 - 3)^2 + (0.5 - 2)^2 = 3.25.
  mu1, mu2 = np.array([1.0, 2.0, 0.0]), np.array([0.0, 0.0, 3.0])
  a, b = np.array([4.0, 9.0, 0.25]), np.array([1.0, 9.0, 4.0])
  assert metrics.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(
      17.25, rel=1e-12)


def test_frechet_distance_one_dimensional_gaussians():
  # W2^2(N(m1, s1^2), N(m2, s2^2)) = (m1 - m2)^2 + (s1 - s2)^2 = (3 - 1)^2 + (2 - 5)^2 = 13.
  fid = metrics.frechet_distance(np.array([3.0]), np.array([[4.0]]), np.array([1.0]),
                                 np.array([[25.0]]))
  assert fid == pytest.approx(13.0, rel=1e-12)


def test_frechet_distance_commuting_covariances():
  # S1 = Q diag(a) Q^T and S2 = Q diag(b) Q^T share eigenvectors, so
  # Tr sqrt(S1 S2) = sum(sqrt(a b)) and FID = ||dmu||^2 + sum((sqrt a - sqrt b)^2).
  d = 16
  q, _ = np.linalg.qr(rng(4).standard_normal((d, d)))
  a, b = rng(5).uniform(0.1, 3.0, d), rng(6).uniform(0.1, 3.0, d)
  mu1, mu2 = rng(7).standard_normal(d), rng(8).standard_normal(d)
  s1, s2 = (q * a) @ q.T, (q * b) @ q.T
  expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
  np.testing.assert_allclose(metrics.frechet_distance(mu1, s1, mu2, s2), expected, rtol=1e-10)


def test_frechet_distance_identical_distributions_is_zero():
  d = 32
  mu, sigma = rng(9).standard_normal(d), random_covariance(10, d)
  assert abs(metrics.frechet_distance(mu, sigma, mu, sigma)) < 1e-8


def test_frechet_distance_is_symmetric():
  d = 12
  mu1, mu2 = rng(11).standard_normal(d), rng(12).standard_normal(d)
  s1, s2 = random_covariance(13, d), random_covariance(14, d, floor=0.05)
  np.testing.assert_allclose(metrics.frechet_distance(mu1, s1, mu2, s2),
                             metrics.frechet_distance(mu2, s2, mu1, s1), rtol=1e-10)


def test_frechet_distance_rank_deficient_covariances():
  # N = 10 < D = 24: both covariances have rank 9, so S1 S2 is singular.
  x = rng(15).standard_normal((10, 24)) ** 2
  y = rng(16).standard_normal((10, 24)) ** 2 * 1.2 + 0.1
  mu1, s1 = metrics.gaussian_statistics(x)
  mu2, s2 = metrics.gaussian_statistics(y)
  fid = metrics.frechet_distance(mu1, s1, mu2, s2)
  assert math.isfinite(fid) and fid >= 0.0
  np.testing.assert_allclose(fid, pytorch_fid_reference(mu1, s1, mu2, s2), rtol=1e-5)
  assert metrics.frechet_distance(mu1, s1, mu1, s1) < 1e-8
  # A rank-1 vs rank-1 closed form: S1 = u u^T, S2 = v v^T gives
  # Tr sqrt(S1 S2) = |u . v|, so FID = |u|^2 + |v|^2 - 2 |u . v| (means equal).
  u, v = np.array([1.0, 2.0, 0.0]), np.array([0.0, 1.0, 1.0])  # 5 + 2 - 2 * 2 = 3
  zero = np.zeros(3)
  assert metrics.frechet_distance(zero, np.outer(u, u), zero, np.outer(v, v)) == pytest.approx(
      3.0, rel=1e-9)


def test_fid_from_features_matches_statistics_path_and_accepts_jax_arrays():
  x = rng(17).standard_normal((40, 5))
  y = rng(18).standard_normal((30, 5)) + 0.5
  expected = metrics.frechet_distance(*metrics.gaussian_statistics(x),
                                      *metrics.gaussian_statistics(y))
  assert metrics.fid_from_features(x, y) == pytest.approx(expected, rel=1e-12)
  # float32 jax arrays: same value up to the float32 rounding of the inputs.
  assert metrics.fid_from_features(jnp.asarray(x), jnp.asarray(y)) == pytest.approx(
      expected, rel=1e-5)


def test_frechet_distance_errors_name_the_shapes():
  mu, s = np.zeros(3), np.eye(3)
  with pytest.raises(ValueError, match=r"mu1 and mu2 .*\(3,\) and \(4,\)"):
    metrics.frechet_distance(mu, s, np.zeros(4), np.eye(4))
  with pytest.raises(ValueError, match=r"sigma2 must have shape .*\(3, 3\).*\(4, 4\)"):
    metrics.frechet_distance(mu, s, mu, np.eye(4))
  with pytest.raises(ValueError, match=r"sigma1 must have rank 2"):
    metrics.frechet_distance(mu, np.ones(3), mu, s)
  with pytest.raises(ValueError, match="not a symmetric"):
    metrics.frechet_distance(mu, np.triu(np.ones((3, 3))), mu, s)
  with pytest.raises(ValueError, match="not positive semi-definite"):
    metrics.frechet_distance(mu, -np.eye(3), mu, s)
  with pytest.raises(ValueError, match="non-finite"):
    metrics.frechet_distance(np.array([0.0, np.inf, 0.0]), s, mu, s)
  with pytest.raises(ValueError, match="eps"):
    metrics.frechet_distance(mu, s, mu, s, eps=0.0)
  with pytest.raises(ValueError, match=r"same dimension D.*\(4, 3\).*\(4, 2\)"):
    metrics.fid_from_features(np.zeros((4, 3)), np.zeros((4, 2)))


# --------------------------------------------------------------------------------------------
# kernel_inception_distance.
# --------------------------------------------------------------------------------------------


def test_kid_linear_kernel_by_hand():
  # 1-D, degree 1, gamma 1, coef0 0: k(x, y) = x y. X = {1, 2}, Y = {3, 5}, m = 2, so every
  # subset is the whole set (in some order) and every subset gives the same value:
  #   sum_{i != j} k(x_i, x_j) / (m (m - 1)) = 2 * (1 * 2) / 2 = 2
  #   sum_{i != j} k(y_i, y_j) / (m (m - 1)) = 2 * (3 * 5) / 2 = 15
  #   2 sum_{i, j} k(x_i, y_j) / m^2 = 2 * (1 + 2) * (3 + 5) / 4 = 12
  #   MMD^2 = 2 + 15 - 12 = 5, std over subsets = 0.
  mean, std = metrics.kernel_inception_distance(
      np.array([[1.0], [2.0]]), np.array([[3.0], [5.0]]), num_subsets=3, degree=1, gamma=1.0,
      coef0=0.0)
  assert mean == pytest.approx(5.0, rel=1e-12)
  assert std == pytest.approx(0.0, abs=1e-12)


def test_kid_default_cubic_kernel_by_hand():
  # Defaults: degree 3, gamma = 1 / D = 1, coef0 = 1: k(x, y) = (x y + 1)^3.
  # X = {0, 1}, Y = {1, 2}:
  #   XX off-diagonal: k(0, 1) = 1 twice -> 2 / 2 = 1
  #   YY off-diagonal: k(1, 2) = 27 twice -> 54 / 2 = 27
  #   XY: k(0, 1) + k(0, 2) + k(1, 1) + k(1, 2) = 1 + 1 + 8 + 27 = 37 -> 2 * 37 / 4 = 18.5
  #   MMD^2 = 1 + 27 - 18.5 = 9.5.
  mean, std = metrics.kernel_inception_distance(np.array([[0.0], [1.0]]),
                                                np.array([[1.0], [2.0]]), num_subsets=2)
  assert mean == pytest.approx(9.5, rel=1e-12)
  assert std == pytest.approx(0.0, abs=1e-12)


def naive_kid(real, fake, *, num_subsets, subset_size, degree, gamma, coef0, seed):
  """Double-loop reference with the same subset draws (real first, then fake)."""
  generator = np.random.default_rng(seed)
  m = min(subset_size, len(real), len(fake))

  def k(a, b):
    return (gamma * sum(ai * bi for ai, bi in zip(a, b)) + coef0) ** degree

  values = []
  for _ in range(num_subsets):
    x = real[generator.choice(len(real), m, replace=False)]
    y = fake[generator.choice(len(fake), m, replace=False)]
    kxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    kyy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    kxy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    values.append(kxx / (m * (m - 1)) + kyy / (m * (m - 1)) - 2 * kxy / m**2)
  return np.mean(values), np.std(values)


@pytest.mark.parametrize("degree, gamma, coef0", [(3, None, 1.0), (2, 0.7, 0.5)])
def test_kid_matches_naive_double_loop(degree, gamma, coef0):
  real = rng(20).standard_normal((14, 3))
  fake = rng(21).standard_normal((11, 3)) * 1.3 + 0.4
  kwargs = dict(num_subsets=4, subset_size=8, degree=degree, coef0=coef0, seed=5)
  expected = naive_kid(real, fake, gamma=1 / 3 if gamma is None else gamma, **kwargs)
  actual = metrics.kernel_inception_distance(real, fake, gamma=gamma, **kwargs)
  np.testing.assert_allclose(actual, expected, rtol=1e-10, atol=1e-12)


def test_kid_same_distribution_near_zero_and_shift_increases_it():
  x = rng(22).standard_normal((200, 8))
  y = rng(23).standard_normal((200, 8))
  same_mean, same_std = metrics.kernel_inception_distance(x, y, num_subsets=10,
                                                          subset_size=100)
  shift_mean, _ = metrics.kernel_inception_distance(x, y + 0.5, num_subsets=10,
                                                    subset_size=100)
  bigger_mean, _ = metrics.kernel_inception_distance(x, y + 1.0, num_subsets=10,
                                                     subset_size=100)
  assert abs(same_mean) < 3 * same_std + 1e-3  # Unbiased: may be slightly negative.
  assert shift_mean > 10 * abs(same_mean)
  assert bigger_mean > shift_mean


def test_kid_of_identical_sets_is_slightly_negative_order_one_over_m():
  # X = Y with the subset = the whole set (m = N): K_XX = K_YY = K_XY = K (up to the order of
  # rows), so MMD^2_u = 2 S_off / (m (m - 1)) - 2 (S_off + tr K) / m^2
  #                   = (2 / m) (mean off-diagonal of K - mean diagonal of K),
  # slightly negative (the XY sum keeps the diagonal k(x, x) terms) and O(1 / m).
  x = rng(26).standard_normal((120, 8))
  kern = (x @ x.T / 8 + 1.0) ** 3
  m = len(x)
  off_mean = (kern.sum() - np.trace(kern)) / (m * (m - 1))
  expected = 2.0 / m * (off_mean - np.trace(kern) / m)
  mean, std = metrics.kernel_inception_distance(x, x, num_subsets=2, subset_size=m)
  assert mean == pytest.approx(expected, rel=1e-9) and std == pytest.approx(0.0, abs=1e-12)
  assert -0.2 < mean < 0.0


def test_kid_subset_size_is_clipped_and_seed_is_deterministic():
  x, y = rng(24).standard_normal((20, 4)), rng(25).standard_normal((25, 4)) + 0.3
  big = metrics.kernel_inception_distance(x, y, num_subsets=3, subset_size=1000, seed=1)
  assert big == metrics.kernel_inception_distance(x, y, num_subsets=3, subset_size=20, seed=1)
  assert big != metrics.kernel_inception_distance(x, y, num_subsets=3, subset_size=20, seed=2)


@pytest.mark.parametrize("kwargs, match", [
    (dict(subset_size=1), "subset_size must be >= 2"),
    (dict(num_subsets=0), "num_subsets must be >= 1"),
    (dict(degree=0), "degree must be >= 1"),
    (dict(gamma=-1.0), "gamma"),
    (dict(subset_size=2.5), "subset_size must be an integer"),
])
def test_kid_rejects_bad_hyper_parameters(kwargs, match):
  x = np.zeros((4, 2))
  with pytest.raises(ValueError, match=match):
    metrics.kernel_inception_distance(x, x, **kwargs)


def test_kid_rejects_bad_features():
  with pytest.raises(ValueError, match=r"same dimension D.*\(4, 2\).*\(4, 3\)"):
    metrics.kernel_inception_distance(np.zeros((4, 2)), np.zeros((4, 3)))
  with pytest.raises(ValueError, match=r"fake needs at least 2 samples.*\(1, 2\)"):
    metrics.kernel_inception_distance(np.zeros((4, 2)), np.zeros((1, 2)))


# --------------------------------------------------------------------------------------------
# precision_recall.
# --------------------------------------------------------------------------------------------


def brute_force_precision_recall(real, fake, k):
  """Direct definition: explicit differences, full matrices, sorted neighbour distances."""
  def radii(x):
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    return np.sort(d, axis=1)[:, k]  # column 0 is the sample itself (distance 0)

  d_fr = np.sqrt(((fake[:, None, :] - real[None, :, :]) ** 2).sum(-1))  # [M, N]
  precision = np.mean(np.any(d_fr <= radii(real)[None, :], axis=1))
  recall = np.mean(np.any(d_fr.T <= radii(fake)[None, :], axis=1))
  return {"precision": precision, "recall": recall}


def test_precision_recall_1d_by_hand():
  real = np.array([[0.0], [1.0], [10.0], [11.0]])
  fake = np.array([[0.5], [1.5], [2.0], [30.0], [31.0]])
  # k = 1. Real radii (nearest other real): 0->1, 1->1, 10->1, 11->1.
  #   Fakes: 0.5 (|0.5-0| = 0.5) in, 1.5 (|1.5-1| = 0.5) in, 2.0 (|2-1| = 1 <= 1, boundary) in,
  #   30 and 31 (19+ from 11) out -> precision 3/5.
  # Fake radii: 0.5->1 (to 1.5), 1.5->0.5 (to 2), 2->0.5, 30->1, 31->1.
  #   Reals: 0 (0.5 from fake 0.5 <= 1) in, 1 (0.5 from 0.5) in, 10 (8 from 2.0 > 0.5, 9.5 from
  #   0.5 > 1, 20 from 30 > 1) out, 11 out -> recall 2/4.
  assert metrics.precision_recall(real, fake, k=1) == {"precision": 0.6, "recall": 0.5}
  # k = 2. Real radii: 0->10 (others at 1, 10, 11), 1->9, 10->9, 11->10.
  #   Fakes 0.5, 1.5, 2 in; 30 is 19 from 11 (> 10) and 20 from 10 (> 9): out; 31 out -> 3/5.
  # Fake radii: 0.5->1.5, 1.5->1, 2->1.5, 30->28 (to 2), 31->29 (to 2).
  #   Reals 0, 1 in; 10 is 20 from 30 (<= 28) in; 11 is 19 from 30 in -> recall 1.
  assert metrics.precision_recall(real, fake, k=2) == {"precision": 0.6, "recall": 1.0}


def test_precision_recall_2d_by_hand():
  # Real: corners of the unit square; with k = 1 every radius is 1.
  real = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
  # Fakes: (0.5, 0.5) is sqrt(0.5) from a corner: in; (1, 2) is exactly 1 from (1, 1): in
  # (boundary); (2, 2) is sqrt(2) from (1, 1): out; (3, 3) is sqrt(8) from (1, 1): out.
  # -> precision 2/4. Fake radii (k = 1): (0.5, 0.5) -> sqrt(2.5) (to (1, 2)), (1, 2) -> 1,
  # (2, 2) -> 1, (3, 3) -> sqrt(2). Every corner is sqrt(0.5) <= sqrt(2.5) from (0.5, 0.5):
  # recall 1.
  fake = np.array([[0.5, 0.5], [1.0, 2.0], [2.0, 2.0], [3.0, 3.0]])
  assert metrics.precision_recall(real, fake, k=1) == {"precision": 0.5, "recall": 1.0}


def test_precision_recall_identical_and_disjoint_sets():
  x = rng(30).standard_normal((50, 4))
  assert metrics.precision_recall(x, x) == {"precision": 1.0, "recall": 1.0}
  assert metrics.precision_recall(x, x + 100.0) == {"precision": 0.0, "recall": 0.0}


def test_precision_recall_fake_covers_half_the_modes():
  centres = 100.0 * np.eye(4)  # 4 modes, 100 * sqrt(2) apart
  real = np.concatenate([c + 0.1 * rng(31 + i).standard_normal((25, 4))
                         for i, c in enumerate(centres)])
  # Fake = exactly the real samples of modes 0 and 1: every fake sits on a real sample
  # (precision 1) and every real sample of modes 0, 1 sits on a fake (recall 50 / 100).
  assert metrics.precision_recall(real, real[:50]) == {"precision": 1.0, "recall": 0.5}
  # Fresh samples of modes 0 and 1: nearly all inside the real manifold, half the reals covered.
  fake = np.concatenate([c + 0.1 * rng(41 + i).standard_normal((25, 4))
                         for i, c in enumerate(centres[:2])])
  pr = metrics.precision_recall(real, fake)
  assert pr["precision"] >= 0.85
  assert 0.4 <= pr["recall"] <= 0.5


@pytest.mark.parametrize("k, batch_size", [(1, 1), (3, 7), (5, 1024)])
def test_precision_recall_matches_brute_force(k, batch_size):
  real = rng(50).standard_normal((40, 6))
  fake = rng(51).standard_normal((33, 6)) * 1.4 + 0.3
  expected = brute_force_precision_recall(real, fake, k)
  assert metrics.precision_recall(real, fake, k=k, batch_size=batch_size) == pytest.approx(
      expected, abs=1e-12)


def test_precision_recall_batched_memory_is_bounded():
  # N = M = 3000, D = 64: a full [N, N] float64 distance matrix would be 72 MB; with
  # batch_size = 256 the blocks are 6 MB.
  real = rng(60).standard_normal((3000, 64))
  fake = rng(61).standard_normal((3000, 64)) * 1.1
  tracemalloc.start()
  try:
    pr = metrics.precision_recall(real, fake, batch_size=256)
    _, peak = tracemalloc.get_traced_memory()
  finally:
    tracemalloc.stop()
  assert peak < 30e6, f"peak traced memory {peak / 1e6:.1f} MB"
  assert 0.0 < pr["precision"] <= 1.0 and 0.0 < pr["recall"] <= 1.0
  # The block size does not change the answer.
  assert metrics.precision_recall(real[:500], fake[:500], batch_size=64) == \
      metrics.precision_recall(real[:500], fake[:500], batch_size=500)


def test_precision_recall_errors():
  x = np.zeros((5, 2))
  with pytest.raises(ValueError, match=r"k = 3 .*fake of shape \(3, 2\)"):
    metrics.precision_recall(x, np.zeros((3, 2)), k=3)
  with pytest.raises(ValueError, match=r"k = 5 .*real of shape \(5, 2\)"):
    metrics.precision_recall(x, np.zeros((9, 2)), k=5)
  with pytest.raises(ValueError, match="k must be >= 1"):
    metrics.precision_recall(x, x, k=0)
  with pytest.raises(ValueError, match="batch_size must be >= 1"):
    metrics.precision_recall(x, x, batch_size=0)
  with pytest.raises(ValueError, match=r"same dimension D"):
    metrics.precision_recall(x, np.zeros((5, 3)))


# --------------------------------------------------------------------------------------------
# inception_score.
# --------------------------------------------------------------------------------------------


def reference_inception_score(logits, splits):
  """Salimans et al.'s original code (on softmax probabilities, in-order splits)."""
  preds = scipy.special.softmax(logits, axis=1)
  scores = []
  for i in range(splits):
    part = preds[(i * preds.shape[0] // splits):((i + 1) * preds.shape[0] // splits), :]
    kl = part * (np.log(part) - np.log(np.expand_dims(np.mean(part, 0), 0)))
    scores.append(np.exp(np.mean(np.sum(kl, 1))))
  return np.mean(scores), np.std(scores)


def test_inception_score_uniform_predictions_is_one():
  # p(y|x) = p(y) = uniform, so every KL term is 0 and IS = exp(0) = 1.
  assert metrics.inception_score(np.zeros((20, 7))) == pytest.approx((1.0, 0.0), abs=1e-12)


def test_inception_score_confident_balanced_predictions_is_k():
  # One-hot p(y|x), classes spread evenly within each split: p(y) = 1/K, KL = log K, IS = K.
  k, n = 4, 40
  labels = np.arange(n) % k
  logits = np.where(np.eye(k, dtype=bool)[labels], 0.0, -np.inf)  # log of exact one-hots
  assert metrics.inception_score(logits, splits=10) == pytest.approx((4.0, 0.0), abs=1e-12)
  # Large finite logits: p(off-class) ~ e^-100, the same up to ~1e-40.
  assert metrics.inception_score(100.0 * np.eye(k)[labels]) == pytest.approx((4.0, 0.0),
                                                                           abs=1e-12)


def test_inception_score_two_classes_by_hand():
  # p(y|x1) = (0.75, 0.25), p(y|x2) = (0.25, 0.75), one split: p(y) = (0.5, 0.5);
  # KL = 0.75 log(0.75 / 0.5) + 0.25 log(0.25 / 0.5) = 0.75 log 1.5 - 0.25 log 2 = 0.1308...
  # for both samples, so IS = exp(0.1308...) = 1.13975...
  expected = math.exp(0.75 * math.log(1.5) - 0.25 * math.log(2.0))
  assert expected == pytest.approx(1.13975, abs=1e-5)
  logits = np.log(np.array([[0.75, 0.25], [0.25, 0.75]]))
  mean, std = metrics.inception_score(logits, splits=1)
  assert mean == pytest.approx(expected, rel=1e-12) and std == 0.0
  # Logits are shift-invariant per row (softmax).
  assert metrics.inception_score(logits + np.array([[3.0], [-40.0]]), splits=1)[0] == \
      pytest.approx(expected, rel=1e-12)


def test_inception_score_splits_in_order():
  # First half uniform (IS 1), second half confident and balanced over 2 classes (IS 2):
  # in-order splits give scores [1, 2]: mean 1.5, population std 0.5.
  logits = np.concatenate([np.zeros((10, 2)), 50.0 * np.eye(2)[np.arange(10) % 2]])
  assert metrics.inception_score(logits, splits=2) == pytest.approx((1.5, 0.5), abs=1e-12)


@pytest.mark.parametrize("n, splits", [(23, 4), (30, 10), (7, 1)])
def test_inception_score_matches_original_code(n, splits):
  logits = 3.0 * rng(70 + n).standard_normal((n, 6))
  np.testing.assert_allclose(metrics.inception_score(logits, splits=splits),
                             reference_inception_score(logits, splits), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("logits, splits, match", [
    (np.zeros((5, 3)), 6, r"at least splits = 6 .*\(5, 3\)"),
    (np.zeros((5, 3)), 0, "splits must be >= 1"),
    (np.zeros(5), 1, r"\[N, K\].*\(5,\)"),
    (np.array([[0.0, np.nan]]), 1, "NaN"),
    (np.array([[-np.inf, -np.inf], [0.0, 0.0]]), 1, "all -inf"),
])
def test_inception_score_errors(logits, splits, match):
  with pytest.raises(ValueError, match=match):
    metrics.inception_score(logits, splits=splits)


def test_package_reexports():
  for name in metrics.__all__:
    assert getattr(evaluation, name) is getattr(metrics, name)
