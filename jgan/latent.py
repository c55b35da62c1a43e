"""Latent priors of unconditional generators: what ``z`` is drawn from.

A generator is a continuous map, so from one connected Gaussian it must draw images *between*
the data's separate modes as well (an MNIST "4" morphing into a "9"): the ambiguous samples
that lower precision. A mixture of well-separated Gaussians gives it disconnected inputs, so
it can leave those gaps empty (Ben-Yosef & Weinshall's static GM-GAN). The networks are
unchanged: only the sampler of ``z`` is, in training, sampling and evaluation alike.

``sampler(key, n) -> z [n, latent_dim]`` is what a task passes around
(:func:`from_config`).
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections

PRIORS = ("normal", "mixture")

LatentSampler = Callable[[jax.Array, int], jax.Array]


def mixture_means(*, latent_dim: int, components: int, spread: float,
                  seed: int = 0) -> jax.Array:
  """The mixture's fixed means [components, latent_dim], uniform in [-spread, spread]^d.

  Drawn from ``seed`` alone (not the run's key), so a checkpoint's prior is its config's."""
  return jax.random.uniform(jax.random.key(seed), (components, latent_dim), jnp.float32,
                            -spread, spread)


def gaussian_mixture(key: jax.Array, n: int, *, latent_dim: int, components: int,
                     spread: float, scale: float = 1.0, seed: int = 0) -> jax.Array:
  """``n`` latents [n, latent_dim] from an equal-weight mixture of isotropic Gaussians.

  Component ``c`` (uniform) is N(mu_c, scale^2 I) with ``mu`` = :func:`mixture_means`. Two
  means differ by ~``spread * sqrt(2 d / 3)``, many ``scale``s along the line between them, so
  the components are linearly separable for G however much their norms overlap.

  References:
    Ben-Yosef & Weinshall, "Gaussian Mixture Generative Adversarial Networks for Diverse
    Datasets, and the Unsupervised Clustering of Images", arXiv:1808.10356, 2018 (static
    GM-GAN: means uniform in [-c, c]^d, fixed sigma).
  """
  if components < 1:
    raise ValueError(f"components must be >= 1, got {components}.")
  if spread < 0 or scale <= 0:
    raise ValueError(f"spread must be >= 0 and scale > 0, got spread={spread}, scale={scale}.")
  means = mixture_means(latent_dim=latent_dim, components=components, spread=spread, seed=seed)
  k_component, k_noise = jax.random.split(key)
  which = jax.random.randint(k_component, (n,), 0, components)
  return means[which] + scale * jax.random.normal(k_noise, (n, latent_dim), jnp.float32)


def standard_normal(key: jax.Array, n: int, *, latent_dim: int) -> jax.Array:
  """``n`` latents [n, latent_dim] from N(0, I): every GAN's default."""
  return jax.random.normal(key, (n, latent_dim), jnp.float32)


def from_config(model: ml_collections.ConfigDict) -> LatentSampler:
  """The sampler of a config's ``model`` group: ``latent_dim`` and ``latent_prior``
  (:data:`PRIORS`; "mixture" reads ``latent_components``, ``latent_spread``,
  ``latent_scale``)."""
  prior = model.get("latent_prior", "normal") or "normal"
  if prior == "normal":
    return functools.partial(standard_normal, latent_dim=model.latent_dim)
  if prior == "mixture":
    sampler = functools.partial(
        gaussian_mixture, latent_dim=model.latent_dim,
        components=int(model.get("latent_components", 10)),
        spread=float(model.get("latent_spread", 1.0)),
        scale=float(model.get("latent_scale", 1.0)))
    sampler(jax.random.key(0), 1)  # bad numbers fail now, not mid-run
    return sampler
  raise ValueError(f"config.model.latent_prior={prior!r}; allowed: "
                   f"{', '.join(repr(p) for p in PRIORS)}.")


__all__ = ["PRIORS", "LatentSampler", "from_config", "gaussian_mixture", "mixture_means",
           "standard_normal"]
