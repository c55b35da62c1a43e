"""Adversarial loss families, the DTN losses and other auxiliary GAN losses.

Every function here is a pure function of arrays with keyword-only hyper-parameters.

Adversarial families share one signature per role, so an experiment can swap them by name
(see :data:`LOSS_FAMILIES` and :func:`get_loss_family`):

  ``<family>_generator_loss(d_fake) -> scalar``
  ``<family>_discriminator_loss(d_real, d_fake, *, label_smoothing=0.0) -> scalar``

``d_real`` and ``d_fake`` are raw discriminator outputs (logits, never probabilities) of any
shape, e.g. [B] or [B, 1]; they may have different batch sizes. Each expectation in a loss is
the mean over all elements of its argument, so [B] and [B, 1] give the same value. Inputs are
promoted to at least float32 and the result is a float32 scalar (float64 under jax_enable_x64
with float64 inputs).

Penalties (WGAN-GP, R1) live in :mod:`jgan.penalties` and are added on top.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax

Array = jax.Array
GeneratorLossFn = Callable[[Array], Array]
DiscriminatorLossFn = Callable[..., Array]

DISTANCES: tuple[str, ...] = ("mse", "mean_squared", "l1", "mean_abs", "cosine")

# Minimum squared norm in the cosine distance, so that a zero vector gives a finite value and
# gradient instead of 0 / 0.
_COSINE_EPS = 1e-12


def _as_float(x: jax.typing.ArrayLike) -> Array:
  """Returns ``x`` as an array of at least float32 precision."""
  x = jnp.asarray(x)
  return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def _check_label_smoothing(label_smoothing: float) -> None:
  """Validates a Python-number ``label_smoothing``; traced values are not checked."""
  if isinstance(label_smoothing, (int, float)) and not 0.0 <= label_smoothing < 1.0:
    raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}.")


def _reject_label_smoothing(family: str, label_smoothing: float) -> None:
  """Raises unless ``label_smoothing`` is 0 (it must be a Python number, not a tracer)."""
  if label_smoothing != 0.0:
    raise ValueError(
        f"label_smoothing={label_smoothing!r} has no meaning for the {family} loss (it has no "
        "real-label target); it must be 0.0. Families that accept it: minimax, "
        "non_saturating, least_squares.")


# --------------------------------------------------------------------------------------------
# Minimax and non-saturating (Goodfellow et al. 2014).
# --------------------------------------------------------------------------------------------


def minimax_discriminator_loss(d_real: Array, d_fake: Array, *,
                               label_smoothing: float = 0.0) -> Array:
  """Binary cross-entropy discriminator loss, shared by minimax and non-saturating GANs.

  ``mean(BCE(d_real, 1 - label_smoothing)) + mean(BCE(d_fake, 0))``, i.e.
  ``-E[t log D(x) + (1 - t) log(1 - D(x))] - E[log(1 - D(G(z)))]`` with ``D = sigmoid(logit)``
  and real target ``t = 1 - label_smoothing``, computed from logits with the stable
  ``optax.sigmoid_binary_cross_entropy``. ``d_real = d_fake = 0`` gives ``2 log 2``.

  Args:
    d_real: discriminator logits on real data, any shape (e.g. [B] or [B, 1]).
    d_fake: discriminator logits on generated data, any shape.
    label_smoothing: one-sided label smoothing in [0, 1): the real target becomes
      ``1 - label_smoothing``; the fake target stays 0. A Python float is range-checked; a
      traced value (e.g. a schedule under jit) is used as is.

  Returns:
    A scalar.

  References:
    Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014, eq. 1;
    one-sided label smoothing: Salimans et al., "Improved Techniques for Training GANs",
    NeurIPS 2016, Sec. 3.4.
  """
  _check_label_smoothing(label_smoothing)
  d_real, d_fake = _as_float(d_real), _as_float(d_fake)
  real_target = jnp.full_like(d_real, 1.0 - label_smoothing)
  loss_real = optax.sigmoid_binary_cross_entropy(d_real, real_target)
  loss_fake = optax.sigmoid_binary_cross_entropy(d_fake, jnp.zeros_like(d_fake))
  return jnp.mean(loss_real) + jnp.mean(loss_fake)


def minimax_generator_loss(d_fake: Array) -> Array:
  """Original (saturating) minimax generator loss: ``E[log(1 - D(G(z)))]``.

  With ``D = sigmoid(logit)``, ``log(1 - sigmoid(x)) = -softplus(x)``, so this returns
  ``mean(-softplus(d_fake))``: the negated fake half of the BCE discriminator loss. Its gradient
  ``-sigmoid(d_fake)`` vanishes when D confidently rejects the fakes (the saturation that the
  non-saturating loss avoids).

  Args:
    d_fake: discriminator logits on generated data, any shape.

  Returns:
    A scalar (always <= 0).

  References:
    Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014, eq. 1.
  """
  return jnp.mean(-jax.nn.softplus(_as_float(d_fake)))


def non_saturating_discriminator_loss(d_real: Array, d_fake: Array, *,
                                      label_smoothing: float = 0.0) -> Array:
  """Same BCE discriminator loss as :func:`minimax_discriminator_loss` (see there).

  Args:
    d_real: discriminator logits on real data, any shape.
    d_fake: discriminator logits on generated data, any shape.
    label_smoothing: one-sided label smoothing in [0, 1) for the real target.

  Returns:
    A scalar.

  References:
    Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014, eq. 1 and Sec. 3.
  """
  return minimax_discriminator_loss(d_real, d_fake, label_smoothing=label_smoothing)


def non_saturating_generator_loss(d_fake: Array) -> Array:
  """Non-saturating generator loss: ``-E[log D(G(z))] = mean(softplus(-d_fake))``.

  Args:
    d_fake: discriminator logits on generated data, any shape.

  Returns:
    A scalar (always >= 0); ``d_fake = 0`` gives ``log 2``.

  References:
    Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014, Sec. 3 (the
    "maximize log D(G(z))" alternative to eq. 1).
  """
  return jnp.mean(jax.nn.softplus(-_as_float(d_fake)))


# --------------------------------------------------------------------------------------------
# Least squares (Mao et al. 2017), 0-1 coding: a = 0 (fake), b = 1 (real), c = 1.
# --------------------------------------------------------------------------------------------


def least_squares_discriminator_loss(d_real: Array, d_fake: Array, *,
                                     label_smoothing: float = 0.0) -> Array:
  """LSGAN discriminator loss ``0.5 * mean((d_real - t)^2) + 0.5 * mean(d_fake^2)``.

  The discriminator output is used directly (no sigmoid); ``t = 1 - label_smoothing`` is the
  real target and 0 the fake target.

  Args:
    d_real: raw discriminator outputs on real data, any shape.
    d_fake: raw discriminator outputs on generated data, any shape.
    label_smoothing: one-sided label smoothing in [0, 1) for the real target.

  Returns:
    A scalar (always >= 0).

  References:
    Mao et al., "Least Squares Generative Adversarial Networks", ICCV 2017, eq. 2 with
    a = 0, b = 1.
  """
  _check_label_smoothing(label_smoothing)
  d_real, d_fake = _as_float(d_real), _as_float(d_fake)
  target = 1.0 - label_smoothing
  return 0.5 * jnp.mean(jnp.square(d_real - target)) + 0.5 * jnp.mean(jnp.square(d_fake))


def least_squares_generator_loss(d_fake: Array) -> Array:
  """LSGAN generator loss ``0.5 * mean((d_fake - 1)^2)``.

  Args:
    d_fake: raw discriminator outputs on generated data, any shape.

  Returns:
    A scalar (always >= 0).

  References:
    Mao et al., "Least Squares Generative Adversarial Networks", ICCV 2017, eq. 2 with c = 1.
  """
  return 0.5 * jnp.mean(jnp.square(_as_float(d_fake) - 1.0))


# --------------------------------------------------------------------------------------------
# Hinge (Lim & Ye 2017; Miyato et al. 2018).
# --------------------------------------------------------------------------------------------


def hinge_discriminator_loss(d_real: Array, d_fake: Array, *,
                             label_smoothing: float = 0.0) -> Array:
  """Hinge discriminator loss ``mean(relu(1 - d_real)) + mean(relu(1 + d_fake))``.

  Args:
    d_real: discriminator logits on real data, any shape.
    d_fake: discriminator logits on generated data, any shape.
    label_smoothing: accepted only for a uniform family signature; must be 0.0.

  Returns:
    A scalar (always >= 0).

  Raises:
    ValueError: if ``label_smoothing`` is not 0.

  References:
    Lim & Ye, "Geometric GAN", arXiv:1705.02894, 2017; Miyato et al., "Spectral Normalization
    for Generative Adversarial Networks", ICLR 2018, eq. 16.
  """
  _reject_label_smoothing("hinge", label_smoothing)
  d_real, d_fake = _as_float(d_real), _as_float(d_fake)
  return jnp.mean(jax.nn.relu(1.0 - d_real)) + jnp.mean(jax.nn.relu(1.0 + d_fake))


def hinge_generator_loss(d_fake: Array) -> Array:
  """Hinge-GAN generator loss ``-mean(d_fake)``.

  Args:
    d_fake: discriminator logits on generated data, any shape.

  Returns:
    A scalar.

  References:
    Miyato et al., "Spectral Normalization for Generative Adversarial Networks", ICLR 2018,
    eq. 17.
  """
  return -jnp.mean(_as_float(d_fake))


# --------------------------------------------------------------------------------------------
# Wasserstein (Arjovsky et al. 2017).
# --------------------------------------------------------------------------------------------


def wasserstein_discriminator_loss(d_real: Array, d_fake: Array, *,
                                   label_smoothing: float = 0.0) -> Array:
  """Wasserstein critic loss ``mean(d_fake) - mean(d_real)``.

  Minimising it maximises the critic's estimate of the Kantorovich-Rubinstein dual; the
  Lipschitz constraint must come from elsewhere (weight clipping, or a gradient penalty from
  :mod:`jgan.penalties`).

  Args:
    d_real: critic outputs on real data, any shape.
    d_fake: critic outputs on generated data, any shape.
    label_smoothing: accepted only for a uniform family signature; must be 0.0.

  Returns:
    A scalar.

  Raises:
    ValueError: if ``label_smoothing`` is not 0.

  References:
    Arjovsky, Chintala & Bottou, "Wasserstein GAN", ICML 2017, eq. 3.
  """
  _reject_label_smoothing("wasserstein", label_smoothing)
  return jnp.mean(_as_float(d_fake)) - jnp.mean(_as_float(d_real))


def wasserstein_generator_loss(d_fake: Array) -> Array:
  """Wasserstein generator loss ``-mean(d_fake)``.

  Args:
    d_fake: critic outputs on generated data, any shape.

  Returns:
    A scalar.

  References:
    Arjovsky, Chintala & Bottou, "Wasserstein GAN", ICML 2017, eq. 3 and Algorithm 1.
  """
  return -jnp.mean(_as_float(d_fake))


# --------------------------------------------------------------------------------------------
# Auxiliary classifier (AC-GAN).
# --------------------------------------------------------------------------------------------


def auxiliary_classifier_loss(logits: Array, labels: Array) -> Array:
  """Softmax cross-entropy of the auxiliary class head, averaged over the batch.

  ``mean_b(-log softmax(logits[b])[labels[b]])``; uniform logits over K classes give
  ``log K``.

  Args:
    logits: class logits, shape [B, K].
    labels: integer class labels in [0, K), shape [B].

  Returns:
    A scalar.

  Raises:
    ValueError: on wrong ranks or mismatched batch sizes.

  References:
    Odena, Olah & Shlens, "Conditional Image Synthesis with Auxiliary Classifier GANs",
    ICML 2017, eq. 2 (L_C).
  """
  logits, labels = _as_float(logits), jnp.asarray(labels)
  if logits.ndim != 2 or labels.shape != logits.shape[:1]:
    raise ValueError(
        f"Expected logits [B, K] and labels [B]; got {logits.shape} and {labels.shape}.")
  return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))


# --------------------------------------------------------------------------------------------
# Text-conditional GANs: matching-aware D (GAN-CLS) and per-attribute auxiliary classifiers.
# --------------------------------------------------------------------------------------------


def _check_weight(name: str, value: float) -> None:
  if isinstance(value, (int, float)) and not 0.0 <= value <= 1.0:
    raise ValueError(f"{name} must be in [0, 1], got {value!r}.")


def matching_aware_discriminator_loss(d_real: Array, d_wrong: Array, d_fake: Array, *,
                                      wrong_weight: float = 0.5,
                                      label_smoothing: float = 0.0) -> Array:
  """GAN-CLS matching-aware discriminator loss over three kinds of (image, text) pairs.

  ``mean(BCE(d_real, 1 - label_smoothing)) + wrong_weight * mean(BCE(d_wrong, 0))
  + (1 - wrong_weight) * mean(BCE(d_fake, 0))``: a real image with its own text is "real"; a
  real image with another image's text ("wrong") and a generated image with the text it was
  generated from are both "fake", with the paper's weights 1/2 each by default. All-zero
  logits give ``2 log 2``.

  Args:
    d_real: D logits on (real image, right text), any shape.
    d_wrong: D logits on (real image, mismatched text), any shape.
    d_fake: D logits on (generated image, right text), any shape.
    wrong_weight: the weight of the mismatched term in [0, 1]; the generated term gets
      ``1 - wrong_weight``. 0 gives the plain conditional GAN loss.
    label_smoothing: one-sided, in [0, 1): the real target becomes ``1 - label_smoothing``.

  Returns:
    A scalar.

  Raises:
    ValueError: ``wrong_weight`` outside [0, 1] or ``label_smoothing`` outside [0, 1).

  References:
    Reed et al., "Generative Adversarial Text to Image Synthesis", ICML 2016, Algorithm 1
    (L_D = log(s_r) + (log(1 - s_w) + log(1 - s_f)) / 2).
  """
  _check_weight("wrong_weight", wrong_weight)
  _check_label_smoothing(label_smoothing)
  d_real, d_wrong, d_fake = _as_float(d_real), _as_float(d_wrong), _as_float(d_fake)
  real = jnp.mean(optax.sigmoid_binary_cross_entropy(
      d_real, jnp.full_like(d_real, 1.0 - label_smoothing)))
  wrong = jnp.mean(optax.sigmoid_binary_cross_entropy(d_wrong, jnp.zeros_like(d_wrong)))
  fake = jnp.mean(optax.sigmoid_binary_cross_entropy(d_fake, jnp.zeros_like(d_fake)))
  return real + wrong_weight * wrong + (1.0 - wrong_weight) * fake


def matching_aware_generator_loss(d_fake: Array) -> Array:
  """GAN-CLS generator loss: the non-saturating ``-mean(log sigmoid(d_fake))``.

  ``d_fake`` are D's logits on (generated image, the text it was generated from): G is
  rewarded for images D takes for real *and* matching that text.

  Args:
    d_fake: D logits on (generated image, right text), any shape.

  Returns:
    A scalar (always >= 0); ``log 2`` for zero logits.

  References:
    Reed et al., "Generative Adversarial Text to Image Synthesis", ICML 2016, Algorithm 1
    (L_G = log(s_f), used non-saturating as in Goodfellow et al. 2014, Sec. 3).
  """
  return non_saturating_generator_loss(d_fake)


def mode_seeking_loss(images_a: Array, images_b: Array, z_a: Array, z_b: Array, *,
                      eps: float = 1e-5, pool: int = 1) -> Array:
  """MSGAN's mode-seeking term for G: ``1 / (mean|G(c, z_a) - G(c, z_b)| / mean|z_a - z_b|
  + eps)``.

  Two noise vectors of one condition should give images as far apart, relative to the
  noise's distance, as the data allow: G minimising this is pushed away from ignoring its
  noise (one image per caption), the collapse conditional GANs show. The means run over the
  whole batch and every value (the reference code's ``torch.mean(torch.abs(...))``).

  ``pool`` > 1 compares the images average-pooled over ``pool`` x ``pool`` pixels: G can
  then meet the term only with coarse differences (colours of skin, clothes, background),
  not with high-frequency texture that changes with the noise but not what the image shows.

  Args:
    images_a, images_b: G's outputs for the same conditions under ``z_a`` and ``z_b``,
      [B, ...] each ([B, H, W, C] with H and W divisible by ``pool`` when ``pool`` > 1).
    z_a, z_b: the two noise batches [B, Z].
    eps: keeps the value finite when the images coincide.
    pool: side of the average pooling before the distance (1: the pixels, MSGAN's).

  Returns:
    A float32 scalar > 0 (smaller when the images differ more).

  References:
    Mao, Lee, Tseng, Ma & Yang, "Mode Seeking Generative Adversarial Networks for Diverse
    Image Synthesis", CVPR 2019, eq. 3 (and the reference code's 1 / (ratio + 1e-5)).
  """
  images_a, images_b = _as_float(images_a), _as_float(images_b)
  z_a, z_b = _as_float(z_a), _as_float(z_b)
  if images_a.shape != images_b.shape or z_a.shape != z_b.shape:
    raise ValueError(f"mode_seeking_loss needs two batches of one shape each, got images "
                     f"{images_a.shape} / {images_b.shape} and noise {z_a.shape} / {z_b.shape}.")
  if eps <= 0:
    raise ValueError(f"eps must be > 0, got {eps}.")
  if isinstance(pool, bool) or int(pool) != pool or pool < 1:
    raise ValueError(f"pool must be an integer >= 1, got {pool!r}.")
  diff = images_a - images_b
  if pool > 1:
    if diff.ndim != 4 or diff.shape[1] % pool or diff.shape[2] % pool:
      raise ValueError(f"pool={pool} needs images [B, H, W, C] with H and W divisible by it, "
                       f"got {images_a.shape}.")
    b, h, w, c = diff.shape
    diff = diff.reshape(b, h // pool, pool, w // pool, pool, c).mean(axis=(2, 4))
  ratio = jnp.mean(jnp.abs(diff)) / jnp.mean(jnp.abs(z_a - z_b))
  return 1.0 / (ratio + eps)


def latent_regression_loss(z_pred: Array, z: Array) -> Array:
  """InfoGAN's continuous-code term: ``mean((z_pred - z) ** 2) / 2`` over the batch and the
  regressed dimensions.

  A head on D predicts (part of) the noise ``z`` G was given from G's image; D's head and G
  both minimise the error, so G must draw images from which its noise can be read back: the
  noise has to change what is drawn (a lower bound on the mutual information between the
  noise and the image, for a unit-variance Gaussian posterior up to a constant), where a G
  that draws one image per caption makes it ``mean(z ** 2) / 2``, 0.5 for standard normal
  noise.

  Args:
    z_pred: the head's predictions [B, K].
    z: the noise they predict [B, K] (the first K dimensions of G's noise, say).

  Returns:
    A float32 scalar >= 0.

  References:
    Chen et al., "InfoGAN", NeurIPS 2016, eq. 5 and Sec. 6 (a factored Gaussian for
    continuous codes); Zhu et al., "Toward Multimodal Image-to-Image Translation"
    (BicycleGAN), NeurIPS 2017, eq. 7 (latent regression).
  """
  z_pred, z = _as_float(z_pred), _as_float(z)
  if z_pred.shape != z.shape:
    raise ValueError(f"latent_regression_loss needs predictions of the noise's shape, got "
                     f"{z_pred.shape} and {z.shape}.")
  return 0.5 * jnp.mean(jnp.square(z_pred - z))


def _check_num_classes(num_classes) -> tuple[int, ...]:
  counts = tuple(num_classes)
  if not counts or any(isinstance(k, bool) or int(k) != k or k < 1 for k in counts):
    raise ValueError(f"num_classes must be a non-empty sequence of integers >= 1, got "
                     f"{num_classes!r}.")
  return tuple(int(k) for k in counts)


def attribute_classifier_loss(logits: Array, labels: Array, *,
                              num_classes: tuple[int, ...]) -> Array:
  """Auxiliary-classifier loss over several categorical attributes, with missing labels.

  ``logits`` holds one block of logits per attribute side by side (attribute ``a`` is
  ``logits[:, o_a:o_a + K_a]``, ``K = num_classes``). For each attribute: the softmax
  cross-entropy against ``labels[:, a]``, averaged over the examples whose label is >= 0
  (label ``-1`` means "not given": a hair colour under a hat); an attribute no example has
  counts 0. The result is the sum over attributes. With one attribute and no missing labels
  it equals :func:`auxiliary_classifier_loss`.

  Args:
    logits: [B, sum(num_classes)] class logits.
    labels: int [B, A] labels, ``labels[:, a]`` in [0, K_a) or -1.
    num_classes: (K_1, ..., K_A), the classes of each attribute.

  Returns:
    A scalar; ``sum_a log K_a`` for all-zero logits and complete labels.

  Raises:
    ValueError: bad ``num_classes``, or shapes that do not match it.

  References:
    Odena, Olah & Shlens, "Conditional Image Synthesis with Auxiliary Classifier GANs", ICML
    2017, eq. 2 (L_C), one term per attribute.
  """
  counts = _check_num_classes(num_classes)
  logits, labels = _as_float(logits), jnp.asarray(labels)
  if logits.ndim != 2 or logits.shape[1] != sum(counts) or labels.shape != (
      logits.shape[0], len(counts)):
    raise ValueError(
        f"Expected logits [B, {sum(counts)}] and labels [B, {len(counts)}] for num_classes="
        f"{counts}; got {logits.shape} and {labels.shape}.")
  total = jnp.zeros((), logits.dtype)
  offset = 0
  for a, k in enumerate(counts):
    present = labels[:, a] >= 0
    ce = optax.softmax_cross_entropy_with_integer_labels(
        logits[:, offset:offset + k], jnp.where(present, labels[:, a], 0))
    n = jnp.sum(present)
    total = total + jnp.sum(jnp.where(present, ce, 0.0)) / jnp.maximum(n, 1)
    offset += k
  return total


def auxiliary_classifier_discriminator_loss(real_logits: Array, fake_logits: Array,
                                            labels: Array, *, num_classes: tuple[int, ...],
                                            fake_weight: float = 1.0) -> Array:
  """AC-GAN class loss of D: classify real images, and (weighted) generated ones.

  ``attribute_classifier_loss(real_logits, labels) + fake_weight *
  attribute_classifier_loss(fake_logits, labels)``, both against the same labels (the fakes
  are generated from the real examples' texts/classes). ``fake_weight = 1`` is the paper's
  L_C; 0 trains D's classifier on real images only (a common, more stable variant).

  Args:
    real_logits: [B, sum(num_classes)] class logits on real images.
    fake_logits: [B, sum(num_classes)] class logits on generated images.
    labels: int [B, A], -1 where not given.
    num_classes: (K_1, ..., K_A).
    fake_weight: the weight of the generated images' term, >= 0.

  Returns:
    A scalar.

  Raises:
    ValueError: bad shapes, ``num_classes`` or a negative ``fake_weight``.

  References:
    Odena, Olah & Shlens, "Conditional Image Synthesis with Auxiliary Classifier GANs", ICML
    2017, eq. 2 (D maximises L_S + L_C, L_C over real and generated images).
  """
  if isinstance(fake_weight, (int, float)) and fake_weight < 0:
    raise ValueError(f"fake_weight must be >= 0, got {fake_weight!r}.")
  real = attribute_classifier_loss(real_logits, labels, num_classes=num_classes)
  if isinstance(fake_weight, (int, float)) and fake_weight == 0:
    # Not computed: XLA keeps 0 * x (x may be inf/NaN), so the fakes' term would cost work.
    if jnp.shape(fake_logits) != jnp.shape(real_logits):
      raise ValueError(f"fake_logits has shape {jnp.shape(fake_logits)}, real_logits "
                       f"{jnp.shape(real_logits)}: they must match.")
    return real
  return real + fake_weight * attribute_classifier_loss(fake_logits, labels,
                                                        num_classes=num_classes)


def auxiliary_classifier_generator_loss(fake_logits: Array, labels: Array, *,
                                        num_classes: tuple[int, ...]) -> Array:
  """AC-GAN class loss of G: D's classifier should find the asked-for classes in the fakes.

  ``attribute_classifier_loss(fake_logits, labels, num_classes=num_classes)``.

  Args:
    fake_logits: [B, sum(num_classes)] D's class logits on generated images.
    labels: int [B, A], the classes the generator was asked for, -1 where not given.
    num_classes: (K_1, ..., K_A).

  Returns:
    A scalar.

  References:
    Odena, Olah & Shlens, "Conditional Image Synthesis with Auxiliary Classifier GANs", ICML
    2017, eq. 2 (G maximises L_C - L_S).
  """
  return attribute_classifier_loss(fake_logits, labels, num_classes=num_classes)


# --------------------------------------------------------------------------------------------
# DTN (Taigman, Polyak & Wolf 2017).
# --------------------------------------------------------------------------------------------

# Classes of the DTN ternary discriminator.
TERNARY_SOURCE_FAKE = 0  # g(f(x)) for x in the source domain.
TERNARY_TARGET_FAKE = 1  # g(f(x)) for x in the target domain.
TERNARY_TARGET_REAL = 2  # x in the target domain.


def _ternary_ce(logits: Array, label: int, name: str) -> Array:
  """Mean softmax cross-entropy of [B, 3] logits against one class for the whole batch."""
  logits = _as_float(logits)
  if logits.ndim != 2 or logits.shape[-1] != 3:
    raise ValueError(f"{name} must be ternary logits of shape [B, 3], got {logits.shape}.")
  labels = jnp.full(logits.shape[:1], label, dtype=jnp.int32)
  return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))


def ternary_discriminator_loss(d_src_fake: Array, d_tgt_fake: Array,
                               d_tgt_real: Array) -> Array:
  """DTN ternary discriminator loss L_D.

  ``L_D = -E_s log D_1(g(f(x))) - E_t log D_2(g(f(x))) - E_t log D_3(x)``: the sum of three
  batch-mean softmax cross-entropies, of ``d_src_fake`` against class 0
  (:data:`TERNARY_SOURCE_FAKE`), ``d_tgt_fake`` against class 1 (:data:`TERNARY_TARGET_FAKE`)
  and ``d_tgt_real`` against class 2 (:data:`TERNARY_TARGET_REAL`). All-zero logits give
  ``3 log 3``.

  Args:
    d_src_fake: D logits on g(f(x)) for source samples x, shape [B_s, 3].
    d_tgt_fake: D logits on g(f(x)) for target samples x, shape [B_t, 3].
    d_tgt_real: D logits on real target samples, shape [B_r, 3].

  Returns:
    A scalar.

  Raises:
    ValueError: if an input is not [B, 3].

  References:
    Taigman, Polyak & Wolf, "Unsupervised Cross-Domain Image Generation", ICLR 2017, Sec. 4,
    eq. 3 (L_D).
  """
  return (_ternary_ce(d_src_fake, TERNARY_SOURCE_FAKE, "d_src_fake")
          + _ternary_ce(d_tgt_fake, TERNARY_TARGET_FAKE, "d_tgt_fake")
          + _ternary_ce(d_tgt_real, TERNARY_TARGET_REAL, "d_tgt_real"))


def ternary_generator_loss(d_src_fake: Array, d_tgt_fake: Array) -> Array:
  """DTN adversarial generator loss L_GANG.

  ``L_GANG = -E_s log D_3(g(f(x))) - E_t log D_3(g(f(x)))``: the sum of the batch-mean
  softmax cross-entropies of both fake batches against class 2 ("real target sample").
  All-zero logits give ``2 log 3``.

  Args:
    d_src_fake: D logits on g(f(x)) for source samples x, shape [B_s, 3].
    d_tgt_fake: D logits on g(f(x)) for target samples x, shape [B_t, 3].

  Returns:
    A scalar.

  Raises:
    ValueError: if an input is not [B, 3].

  References:
    Taigman, Polyak & Wolf, "Unsupervised Cross-Domain Image Generation", ICLR 2017, Sec. 4,
    eq. 4 (L_GANG).
  """
  return (_ternary_ce(d_src_fake, TERNARY_TARGET_REAL, "d_src_fake")
          + _ternary_ce(d_tgt_fake, TERNARY_TARGET_REAL, "d_tgt_fake"))


def ternary_realness(logits: Array) -> Array:
  """[B] log-odds that the ternary D gives a sample of being a real target sample:
  ``log D_3(x) - log(D_1(x) + D_2(x))`` = ``logits[:, 2] - logsumexp(logits[:, :2])``.

  The scalar critic a gradient penalty of a binary D needs (:mod:`jgan.penalties`), for the
  three-class D: all-zero logits give ``log(1/2)``.

  Args:
    logits: D logits, shape [B, 3] (:data:`TERNARY_SOURCE_FAKE`... as the classes).

  Raises:
    ValueError: if ``logits`` is not [B, 3].

  References:
    Taigman, Polyak & Wolf, ICLR 2017, Sec. 4 (the ternary D); Mescheder, Geiger & Nowozin,
    ICML 2018, eq. 9 (R1 on a real/fake logit).
  """
  logits = _as_float(logits)
  if logits.ndim != 2 or logits.shape[-1] != 3:
    raise ValueError(f"logits must be ternary logits of shape [B, 3], got {logits.shape}.")
  return logits[:, TERNARY_TARGET_REAL] - jax.nn.logsumexp(logits[:, :TERNARY_TARGET_REAL],
                                                            axis=-1)


def ternary_wasserstein_discriminator_loss(d_src_fake: Array, d_tgt_fake: Array,
                                           d_tgt_real: Array) -> Array:
  """The DTN's D as a Wasserstein critic: ``sum over both fake batches of mean(r(fake)) -
  mean(r(real))``, with the critic ``r = ternary_realness(logits)``.

  The ternary D's three logits are read as one scalar critic, the log-odds of "real target"
  (:func:`ternary_realness`), and both translation batches are fakes, each against the real
  targets as in :func:`wasserstein_discriminator_loss`: the WGAN-GP game (with a gradient
  penalty on the same critic) in place of the paper's three-way cross-entropy, while D's
  model and the penalty's critic stay those of the ternary D. All-equal logits give 0.
  Arguments, result and errors as :func:`ternary_discriminator_loss`'s.

  References:
    Taigman, Polyak & Wolf, ICLR 2017, Sec. 4 (the ternary D); Arjovsky, Chintala & Bottou,
    ICML 2017, eq. 3; Gulrajani et al., "Improved Training of Wasserstein GANs", NeurIPS 2017.
  """
  real = ternary_realness(d_tgt_real)
  return (wasserstein_discriminator_loss(real, ternary_realness(d_src_fake))
          + wasserstein_discriminator_loss(real, ternary_realness(d_tgt_fake)))


def ternary_wasserstein_generator_loss(d_src_fake: Array, d_tgt_fake: Array) -> Array:
  """g's side of :func:`ternary_wasserstein_discriminator_loss`: ``-mean(r(g(f(s)))) -
  mean(r(g(f(t))))`` with ``r = ternary_realness(logits)``. Arguments, result and errors as
  :func:`ternary_generator_loss`'s.

  References:
    Arjovsky, Chintala & Bottou, "Wasserstein GAN", ICML 2017, eq. 3.
  """
  return (wasserstein_generator_loss(ternary_realness(d_src_fake))
          + wasserstein_generator_loss(ternary_realness(d_tgt_fake)))


# The DTN's adversarial game, by name: (D's loss, g's loss), each on [B, 3] logits.
DTN_ADVERSARIAL = {
    "ternary": (ternary_discriminator_loss, ternary_generator_loss),
    "wasserstein": (ternary_wasserstein_discriminator_loss, ternary_wasserstein_generator_loss),
}


def _batch_distance(a: Array, b: Array, distance: str) -> Array:
  """Mean over the batch (axis 0) of a per-example distance over all other axes."""
  if distance not in DISTANCES:
    raise ValueError(f"Unknown distance {distance!r}; available: {', '.join(DISTANCES)}.")
  a, b = _as_float(a), _as_float(b)
  if a.shape != b.shape or a.ndim < 1:
    raise ValueError(f"Expected two arrays of the same shape [B, ...]; got {a.shape} and "
                     f"{b.shape}.")
  a = a.reshape(a.shape[0], -1)
  b = b.reshape(b.shape[0], -1)
  if distance == "mse":
    per_example = jnp.sum(jnp.square(a - b), axis=-1)
  elif distance == "mean_squared":
    per_example = jnp.mean(jnp.square(a - b), axis=-1)
  elif distance == "l1":
    per_example = jnp.sum(jnp.abs(a - b), axis=-1)
  elif distance == "mean_abs":
    per_example = jnp.mean(jnp.abs(a - b), axis=-1)
  else:
    per_example = optax.losses.cosine_distance(a, b, epsilon=_COSINE_EPS)
  return jnp.mean(per_example)


def const_loss(f_x: Array, f_g_f_x: Array, *, distance: str = "mse") -> Array:
  """DTN f-constancy loss L_CONST: distance between f(x) and f(g(f(x))) for source x.

  Args:
    f_x: encoder features f(x) of source samples, shape [B, ...].
    f_g_f_x: encoder features f(g(f(x))) of their translations, same shape.
    distance: how examples are compared, over all non-batch axes flattened:
      ``"mse"``: sum of squared differences (the squared L2 distance, NOT divided by the
      number of features); ``"mean_squared"``: their mean over the features (the scale of
      the DTN reference code's ``reduce_mean(square(...))``, for which the paper's weights
      alpha = beta = 15 are set); ``"l1"``: sum of absolute differences; ``"mean_abs"``:
      their mean over the features (L1 on mean_squared's scale: what minimises it is a
      median, not a mean, of what g could draw); ``"cosine"``: ``1 - cos(a, b)``, with
      squared norms clipped below at 1e-12 so that a zero vector gives a finite value and
      gradient.

  Returns:
    A scalar: the mean over the batch (axis 0) of the per-example distance.

  Raises:
    ValueError: for an unknown ``distance`` or mismatched shapes.

  References:
    Taigman, Polyak & Wolf, "Unsupervised Cross-Domain Image Generation", ICLR 2017, Sec. 4,
    eq. 5 (L_CONST, with d = MSE in the paper).
  """
  return _batch_distance(f_x, f_g_f_x, distance)


def identity_contrastive_loss(f_x: Array, f_g_f_x: Array, *, negatives: Array | None = None,
                              temperature: float = 0.1) -> Array:
  """Contrastive L_CONST (InfoNCE): f(g(f(x_i))) must be nearer f(x_i) than any other descriptor.

  The gallery is ``f_x`` followed by ``negatives``. For each translation i the logits over it
  are ``-mean_d (f_g_f_x[i, d] - gallery[j, d])^2 / temperature`` (the ``"mean_squared"``
  distance, so the temperature does not depend on the descriptor size), and the loss is the
  cross-entropy of picking ``f_x[i]``, averaged over i. L_CONST's squared distance pulls every
  descriptor dimension towards f(x) alike; this asks that the translation be retrieved as x
  among other faces (what held-out retrieval measures), so the dimensions that tell faces
  apart carry the gradient.

  Args:
    f_x: f(x) of the B source samples [B, F] (no gradient flows into them).
    f_g_f_x: f(g(f(x))) of their translations [B, F].
    negatives: [M, F] more descriptors to tell x_i from (e.g. the batch's other source
      descriptors); default none (the other f_x only).
    temperature: > 0; lower sharpens the softmax (unrelated standardised dlib descriptors are
      about 2 apart in mean squared distance, so 0.1 puts them ~20 logits apart).

  Returns:
    A scalar >= 0; log(B + M) when every translation is equidistant from the whole gallery.

  Raises:
    ValueError: for mismatched shapes or a temperature <= 0.

  References:
    van den Oord, Li & Vinyals, "Representation Learning with Contrastive Predictive Coding",
    2018 (InfoNCE); Park et al., "Contrastive Learning for Unpaired Image-to-Image
    Translation", ECCV 2020 (a contrastive content loss for translation).
  """
  if not temperature > 0:
    raise ValueError(f"temperature must be > 0, got {temperature!r}.")
  f_x, f_g_f_x = _as_float(f_x), _as_float(f_g_f_x)
  neg_shape = None if negatives is None else jnp.shape(negatives)
  if (f_x.ndim != 2 or f_x.shape != f_g_f_x.shape
      or (neg_shape is not None and (len(neg_shape) != 2 or neg_shape[1] != f_x.shape[1]))):
    raise ValueError("identity_contrastive_loss takes f_x and f_g_f_x [B, F] of one shape and "
                     f"negatives [M, F]; got {f_x.shape}, {f_g_f_x.shape} and {neg_shape}.")
  gallery = f_x if negatives is None else jnp.concatenate([f_x, _as_float(negatives)])
  gallery = jax.lax.stop_gradient(gallery)
  sq = (jnp.mean(jnp.square(f_g_f_x), -1)[:, None] - 2.0 * f_g_f_x @ gallery.T / f_x.shape[1]
        + jnp.mean(jnp.square(gallery), -1)[None, :])
  positives = jnp.arange(f_x.shape[0])
  return -jnp.mean(jax.nn.log_softmax(-sq / temperature, axis=-1)[positives, positives])


def class_consistency_loss(source_logits: Array, translation_logits: Array) -> Array:
  """Semantic consistency: f's classifier reads g(f(x)) as it reads the source x.

  The cross-entropy of f's class distribution on the translation against its (fixed)
  distribution on the source, ``-sum_c softmax(source_logits)_c * log_softmax(
  translation_logits)_c``, averaged over the batch. L_CONST keeps f's features close; this
  keeps them on the same side of f's class boundaries, where a feature distance can be small
  and the digit still another.

  Args:
    source_logits: f's class logits on the source images [B, K] (no gradient flows into them).
    translation_logits: f's class logits on their translations [B, K].

  Returns:
    A scalar; at least the entropy of the source distribution, equal to it when the two agree.

  Raises:
    ValueError: for mismatched or non-2-D shapes.

  References:
    Hoffman et al., "CyCADA: Cycle-Consistent Adversarial Domain Adaptation", ICML 2018,
    Sec. 3 (the semantic consistency loss, with f's predicted labels in place of a soft
    target).
  """
  source_logits, translation_logits = _as_float(source_logits), _as_float(translation_logits)
  if source_logits.ndim != 2 or source_logits.shape != translation_logits.shape:
    raise ValueError("class_consistency_loss takes logits [B, K] of the same shape; got "
                     f"{source_logits.shape} and {translation_logits.shape}.")
  target = jax.nn.softmax(jax.lax.stop_gradient(source_logits), axis=-1)
  return -jnp.mean(jnp.sum(target * jax.nn.log_softmax(translation_logits, axis=-1), axis=-1))


def tid_loss(x: Array, g_f_x: Array, *, distance: str = "mse") -> Array:
  """DTN target-identity loss L_TID: distance between x and g(f(x)) for target x.

  Args:
    x: target-domain images, shape [B, H, W, C] (any [B, ...] works).
    g_f_x: their reconstructions g(f(x)), same shape.
    distance: how examples are compared, over all non-batch axes flattened:
      ``"mse"``: sum of squared differences (the squared L2 distance, NOT divided by the
      number of features); ``"mean_squared"``: their mean over the features (the scale of
      the DTN reference code's ``reduce_mean(square(...))``, for which the paper's weights
      alpha = beta = 15 are set); ``"l1"``: sum of absolute differences; ``"mean_abs"``:
      their mean over the features (L1 on mean_squared's scale: what minimises it is a
      median, not a mean, of what g could draw); ``"cosine"``: ``1 - cos(a, b)``, with
      squared norms clipped below at 1e-12 so that a zero vector gives a finite value and
      gradient.

  Returns:
    A scalar: the mean over the batch (axis 0) of the per-example distance.

  Raises:
    ValueError: for an unknown ``distance`` or mismatched shapes.

  References:
    Taigman, Polyak & Wolf, "Unsupervised Cross-Domain Image Generation", ICLR 2017, Sec. 4,
    eq. 6 (L_TID, with d_2 = MSE in the paper).
  """
  return _batch_distance(x, g_f_x, distance)


def total_variation(images: Array, *, beta: float = 1.0, eps: float = 1e-12) -> Array:
  """Total-variation regulariser L_TV of DTN (the V^beta norm of Mahendran & Vedaldi).

  For each image z and channel c::

    L_TV(z) = sum_{i,j,c} ((z[i,j+1,c] - z[i,j,c])^2 + (z[i+1,j,c] - z[i,j,c])^2 + eps)^(beta/2)
              - eps^(beta/2)

  With ``beta = 1`` (the paper's choice) this is the isotropic TV: each pixel contributes the
  L2 norm of its forward-difference gradient, per channel. Differences that would step
  outside the image are zero (replicated border), so every pair of horizontally or vertically
  adjacent pixels enters exactly once. The result is summed over H, W and C (it grows with
  the image size; weight it accordingly) and averaged over the batch.

  ``eps`` keeps the gradient finite where both differences are zero (``(s)^(beta/2)`` has an
  infinite derivative at ``s = 0`` for ``beta < 2``); subtracting ``eps^(beta/2)`` makes a
  constant image score exactly 0. The bias on a non-zero term is below ``eps^(beta/2)``
  (1e-6 for the defaults).

  Args:
    images: a batch of images, shape [B, H, W, C].
    beta: the exponent B of the paper; 1 gives isotropic TV, 2 the squared-gradient energy.
    eps: a small positive constant inside the power (see above).

  Returns:
    A scalar.

  Raises:
    ValueError: if ``images`` is not rank 4.

  References:
    Taigman, Polyak & Wolf, "Unsupervised Cross-Domain Image Generation", ICLR 2017, Sec. 4
    (L_TV, with B = 1); Mahendran & Vedaldi, "Understanding Deep Image Representations by
    Inverting Them", CVPR 2015, Sec. 3.2 (the V^beta regulariser).
  """
  z = _as_float(images)
  if z.ndim != 4:
    raise ValueError(f"total_variation expects images [B, H, W, C], got shape {z.shape}.")
  # Forward differences, zero past the last column / row.
  dx = jnp.pad(z[:, :, 1:, :] - z[:, :, :-1, :], ((0, 0), (0, 0), (0, 1), (0, 0)))
  dy = jnp.pad(z[:, 1:, :, :] - z[:, :-1, :, :], ((0, 0), (0, 1), (0, 0), (0, 0)))
  per_pixel = (jnp.square(dx) + jnp.square(dy) + eps) ** (beta / 2) - eps ** (beta / 2)
  return jnp.mean(jnp.sum(per_pixel, axis=(1, 2, 3)))


# --------------------------------------------------------------------------------------------
# Top-k generator updates (Sinha et al. 2020).
# --------------------------------------------------------------------------------------------


def top_k_generator_loss(generator_loss: GeneratorLossFn, d_fake: Array, *,
                         k: int | Array) -> Array:
  """``generator_loss`` over only the ``k`` samples D scores most real (largest logits).

  G's gradient then comes from the samples nearest the data; the worst-scoring ones, whose
  gradients can push them further from their nearest mode, give none. ``generator_loss`` must
  be a mean over examples (every family here is): it is applied to each example alone and the
  ``k`` chosen values are averaged, so ``k = B`` gives ``generator_loss(d_fake)``. Ties are
  broken by position. ``k`` may be traced (a schedule of the step, `top_k_count`).

  Args:
    generator_loss: ``(d_fake) -> scalar``, e.g. `non_saturating_generator_loss`.
    d_fake: D's logits on B generated samples, [B] or [B, 1].
    k: how many to keep, 1 <= k <= B (clipped to that range when traced).

  Returns:
    A float32 scalar.

  References:
    Sinha, Zhao, Goyal, Raffel & Odena, "Top-k Training of GANs: Improving GAN Performance
    by Throwing Away Bad Samples", NeurIPS 2020, Algorithm 1.
  """
  d_fake = _as_float(d_fake)
  batch = d_fake.shape[0]
  if d_fake.ndim not in (1, 2) or (d_fake.ndim == 2 and d_fake.shape[1] != 1):
    raise ValueError(f"top_k_generator_loss needs one logit per sample, [B] or [B, 1]; got "
                     f"shape {d_fake.shape}.")
  if isinstance(k, int) and not 1 <= k <= batch:
    raise ValueError(f"k must be in [1, {batch}] (the batch), got {k}.")
  logits = d_fake.reshape(batch)
  per_example = jax.vmap(lambda d: generator_loss(d[None]))(logits)
  rank = jnp.argsort(jnp.argsort(-logits, stable=True), stable=True)  # 0 = most real
  k = jnp.clip(jnp.asarray(k), 1, batch)
  keep = (rank < k).astype(per_example.dtype)
  return jnp.sum(per_example * keep) / k.astype(per_example.dtype)


def top_k_count(step: int | Array, *, batch_size: int, min_fraction: float,
                decay: float = 0.99, decay_every: int = 100) -> Array:
  """Sinha et al.'s schedule of k: ``max(ceil(decay ** (step // decay_every) * B),
  ceil(min_fraction * B))``, the whole batch at first, shrinking to ``min_fraction`` of it.

  Args:
    step: the training step (traced or not).
    batch_size: B.
    min_fraction: nu in (0, 1], the fraction kept at the end (the paper's best: 0.5-0.75).
    decay: gamma in (0, 1], applied once every ``decay_every`` steps (the paper: 0.99 per
      epoch).
    decay_every: steps per decay, >= 1 (an epoch's steps to follow the paper).

  Returns:
    An int32 scalar in [1, B].

  References:
    Sinha et al., NeurIPS 2020, section 3 ("we anneal k from B to nu B").
  """
  if not 0.0 < min_fraction <= 1.0:
    raise ValueError(f"min_fraction must be in (0, 1], got {min_fraction}.")
  if not 0.0 < decay <= 1.0:
    raise ValueError(f"decay must be in (0, 1], got {decay}.")
  if decay_every < 1:
    raise ValueError(f"decay_every must be >= 1, got {decay_every}.")
  scale = jnp.power(jnp.float32(decay), (jnp.asarray(step) // decay_every).astype(jnp.float32))
  k = jnp.maximum(jnp.ceil(scale * batch_size), jnp.ceil(min_fraction * batch_size))
  return jnp.clip(k, 1, batch_size).astype(jnp.int32)


# --------------------------------------------------------------------------------------------
# Registry: built explicitly, no import side effects.
# --------------------------------------------------------------------------------------------

LOSS_FAMILIES: dict[str, tuple[GeneratorLossFn, DiscriminatorLossFn]] = {
    "minimax": (minimax_generator_loss, minimax_discriminator_loss),
    "non_saturating": (non_saturating_generator_loss, non_saturating_discriminator_loss),
    "least_squares": (least_squares_generator_loss, least_squares_discriminator_loss),
    "hinge": (hinge_generator_loss, hinge_discriminator_loss),
    "wasserstein": (wasserstein_generator_loss, wasserstein_discriminator_loss),
}


def get_loss_family(name: str) -> tuple[GeneratorLossFn, DiscriminatorLossFn]:
  """Returns ``(generator_loss, discriminator_loss)`` of the named family.

  Args:
    name: a key of :data:`LOSS_FAMILIES`.

  Returns:
    The pair of loss functions.

  Raises:
    ValueError: naming the unknown family and listing the available ones.

  References:
    The uniform-family design follows TF-GAN (tensorflow/gan, losses_impl.py).
  """
  try:
    return LOSS_FAMILIES[name]
  except KeyError:
    raise ValueError(f"Unknown loss family {name!r}; available: "
                     f"{', '.join(sorted(LOSS_FAMILIES))}.") from None


__all__ = [
    "DISTANCES",
    "DTN_ADVERSARIAL",
    "LOSS_FAMILIES",
    "TERNARY_SOURCE_FAKE",
    "TERNARY_TARGET_FAKE",
    "TERNARY_TARGET_REAL",
    "attribute_classifier_loss",
    "auxiliary_classifier_discriminator_loss",
    "auxiliary_classifier_generator_loss",
    "auxiliary_classifier_loss",
    "const_loss",
    "get_loss_family",
    "identity_contrastive_loss",
    "hinge_discriminator_loss",
    "hinge_generator_loss",
    "latent_regression_loss",
    "least_squares_discriminator_loss",
    "least_squares_generator_loss",
    "matching_aware_discriminator_loss",
    "matching_aware_generator_loss",
    "minimax_discriminator_loss",
    "minimax_generator_loss",
    "mode_seeking_loss",
    "non_saturating_discriminator_loss",
    "non_saturating_generator_loss",
    "ternary_discriminator_loss",
    "ternary_generator_loss",
    "ternary_realness",
    "ternary_wasserstein_discriminator_loss",
    "ternary_wasserstein_generator_loss",
    "tid_loss",
    "top_k_count",
    "top_k_generator_loss",
    "total_variation",
    "wasserstein_discriminator_loss",
    "wasserstein_generator_loss",
]
