"""Real face photos offline: the LFW crops that scikit-image ships (``lfw_faces``).

DTN's face experiments need a source domain of real faces; CelebA cannot be installed offline.
``skimage.data.lfw_subset()`` (pip ``scikit-image``; the file is inside the package, nothing is
downloaded) holds 200 grey 25x25 crops from Labeled Faces in the Wild: the first 100 are faces
(tight crops, eyebrows to chin, of randomly chosen LFW images), the last 100 non-faces
(background patches of the same photos; checked by eye: ``python -m jgan.data.lfw --grid
out.png`` draws all 200). jgan keeps the 100 faces only:

    ds = load_lfw_faces("train")              # ArrayDataset: uint8 [80, 150, 150, 3]
    ds = load_lfw_faces("test")               # the 20 held-out faces
    ds = load_dataset("lfw_faces", split="test", image_size=64)   # through jgan.data's table

Split: a seeded permutation of the 100 faces, ``np.random.default_rng(seed).permutation(100)``;
its first 80 (:data:`NUM_TRAIN`) are ``"train"``, the last 20 ``"test"``, each kept in the
original order. The two splits are disjoint and, for one seed, always the same faces.

Images: upsampled once on the host with Pillow ``BICUBIC`` to ``image_size`` (default
:data:`DEFAULT_IMAGE_SIZE` = 150, the input size of dlib's face ResNet, DTN's f, so f sees the
crop through one interpolation instead of two) and tiled to RGB (the three channels equal).
The crops are used as they are, without the margin dlib's aligned face chips have: measured
with ``jgan.models.dlib_resnet`` on the 100 faces, the tight crops give more distinct
descriptors (mean pairwise distance 0.68, 21% of pairs under dlib's same-person threshold 0.6)
than crops padded by 25% with their edge pixels (0.54, 78% of pairs under 0.6).

Labels: each face's index among the 100 (``labels[i]`` in ``[0, 100)``, ``num_classes=100``),
so an example can be traced back to its crop; LFW's identities are not in the subset (a person
may appear in more than one crop).

Licence: LFW is distributed for research by the University of Massachusetts, Amherst
(http://vis-www.cs.umass.edu/lfw/); jgan ships no image, scikit-image does.

References:
  Huang, Ramesh, Berg & Learned-Miller, "Labeled Faces in the Wild", UMass Amherst TR 07-49,
  2007; scikit-image ``skimage.data.lfw_subset``.
"""

from __future__ import annotations

import argparse
import functools

import numpy as np
from PIL import Image

from jgan.data.base import ArrayDataset, SourceUnavailable

NUM_FACES = 100  # lfw_subset()[:100] are faces, [100:] non-faces.
NUM_TRAIN = 80  # the first 80 of the seeded permutation; the other 20 are "test".
DEFAULT_IMAGE_SIZE = 150  # dlib's face ResNet input (jgan.models.dlib_resnet.INPUT_SIZE).
CROP_SIZE = 25
INSTALL_HINT = "pip install scikit-image (a jgan dependency; the LFW crops ship inside it)"
SPLITS = ("train", "test")


@functools.cache
def _faces() -> np.ndarray:
  """The 100 face crops, uint8 [100, 25, 25] (read-only); SourceUnavailable without skimage."""
  try:
    import skimage.data  # pylint: disable=import-outside-toplevel
    crops = skimage.data.lfw_subset()
  except (ImportError, OSError, ValueError) as e:
    raise SourceUnavailable(
        f"scikit-image's LFW subset cannot be read ({type(e).__name__}: {e})",
        INSTALL_HINT) from e
  crops = np.asarray(crops)
  if crops.shape != (2 * NUM_FACES, CROP_SIZE, CROP_SIZE):
    raise SourceUnavailable(f"skimage.data.lfw_subset() has shape {crops.shape}, expected "
                            f"({2 * NUM_FACES}, {CROP_SIZE}, {CROP_SIZE})", INSTALL_HINT)
  if crops.dtype != np.uint8:  # scikit-image 0.25 returns float64 in [0, 1]
    crops = np.rint(np.clip(crops, 0.0, 1.0) * 255.0).astype(np.uint8)
  faces = np.ascontiguousarray(crops[:NUM_FACES])
  faces.flags.writeable = False
  return faces


def split_indices(split: str, *, seed: int = 0) -> np.ndarray:
  """Indices (into the 100 faces, ascending) of ``split``: see the module docstring."""
  if split not in SPLITS:
    raise ValueError(f"Unknown split {split!r}; allowed: {', '.join(map(repr, SPLITS))}.")
  order = np.random.default_rng(int(seed)).permutation(NUM_FACES)
  chosen = order[:NUM_TRAIN] if split == "train" else order[NUM_TRAIN:]
  return np.sort(chosen)


def load_lfw_faces(split: str = "train", *, image_size: int = DEFAULT_IMAGE_SIZE,
                   seed: int = 0) -> ArrayDataset:
  """The LFW face crops of ``split`` as uint8 RGB [N, image_size, image_size, 3].

  Args:
    split: ``"train"`` (80 faces) or ``"test"`` (20), disjoint (see the module docstring).
    image_size: output side (BICUBIC from 25; 0 means :data:`DEFAULT_IMAGE_SIZE`).
    seed: the permutation that splits the faces.

  Raises:
    SourceUnavailable: scikit-image (or its LFW file) is missing.
    ValueError: an unknown split or a negative image_size.
  """
  if image_size < 0:
    raise ValueError(f"image_size must be >= 0, got {image_size}.")
  size = int(image_size) or DEFAULT_IMAGE_SIZE
  keep = split_indices(split, seed=seed)
  faces = _faces()[keep]
  if size != CROP_SIZE:
    resample = Image.Resampling.BICUBIC if size > CROP_SIZE else Image.Resampling.LANCZOS
    faces = np.stack([np.asarray(Image.fromarray(f).resize((size, size), resample))
                      for f in faces])
  images = np.repeat(faces[..., None], 3, axis=-1)
  images.flags.writeable = False
  return ArrayDataset(
      images=images, labels=keep.astype(np.int32), num_classes=NUM_FACES, name="lfw_faces",
      source=f"scikit-image lfw_subset faces ({split}: {len(keep)} of {NUM_FACES}, seed "
             f"{seed}), {CROP_SIZE}x{CROP_SIZE} grey -> {size}x{size} RGB")


def _main(argv=None) -> None:
  parser = argparse.ArgumentParser(description="Draw the 200 crops of skimage.data.lfw_subset "
                                   "(10 rows of 20: faces first) into one PNG.")
  parser.add_argument("--grid", required=True, help="output PNG")
  args = parser.parse_args(argv)
  import skimage.data  # pylint: disable=import-outside-toplevel
  crops = np.rint(np.clip(np.asarray(skimage.data.lfw_subset(), np.float64), 0, 1) * 255)
  crops = crops.astype(np.uint8)
  rows = [np.concatenate(list(crops[r * 20:(r + 1) * 20]), axis=1) for r in range(10)]
  Image.fromarray(np.concatenate(rows, axis=0)).save(args.grid)
  print(f"Wrote {args.grid}: rows 1-5 should be faces, rows 6-10 background patches.")


if __name__ == "__main__":
  _main()
