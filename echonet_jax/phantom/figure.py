"""Draws docs/phantom.png (generated A4C frames next to a real echo frame) and
docs/phantom_views.png (one frame of every view class and every kind of "other").

Usage: python -m echonet_jax.phantom.figure docs/phantom.png
       python -m echonet_jax.phantom.figure --views docs/phantom_views.png
The real frame is pydicom-data's color3d_jpeg_baseline.dcm (an A4C-like cine), in greyscale.
"""

from __future__ import annotations

import sys

import cv2
import numpy as np
import pydicom
from pydicom import data

from echonet_jax.phantom import patients
from echonet_jax.phantom import render
from echonet_jax.phantom import views


def real_frame(index: int = 40) -> np.ndarray:
  """Frame ``index`` of pydicom-data's color3d_jpeg_baseline.dcm as 480x640 grey."""

  ds = pydicom.dcmread(data.get_testdata_file("color3d_jpeg_baseline.dcm"))
  rgb = ds.pixel_array[index]  # pydicom returns RGB for YBR_FULL_422 JPEG
  return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def _first_with_lead(start: int) -> int:
  seed = start
  while not patients.sample_patient(np.random.default_rng([seed, 0]))["truth"]["lead_visible"]:
    seed += 1
  return seed


def make_figure(path: str, seeds=(1, 2, 3, 4), thumb: int = 320) -> np.ndarray:
  """Writes a 2x3 grid: the real frame (top left), four phantom frames and one with a lead."""
  seeds = tuple(seeds) + (_first_with_lead(max(seeds) + 1),)
  tiles = []
  real = real_frame()
  tiles.append(("real: color3d_jpeg_baseline.dcm", real))
  for seed in seeds:
    rng = np.random.default_rng([seed, 0])
    patient = patients.sample_patient(rng)
    video = render.render_study(patient, rng, "A4C", 480, 640, 40, 33.3)
    frame = video.frames[int(rng.integers(0, 40))]
    lab = patient["labels"]
    tiles.append(
        (
            f"phantom: EF {lab['ef']:.0f}% {lab['weight']:.0f} kg"
            + (" lead" if lab["pacemaker_leads"] else ""),
            frame,
        )
    )
  grid = _grid(tiles, thumb, per_row=3)
  cv2.imwrite(path, grid)
  return grid


def _grid(tiles: list[tuple[str, np.ndarray]], thumb: int, per_row: int) -> np.ndarray:
  """Titled thumbnails ``thumb`` pixels wide, ``per_row`` to a row."""
  small = []
  for title, img in tiles:
    t = cv2.resize(img, (thumb, thumb * 3 // 4), interpolation=cv2.INTER_AREA)
    t = cv2.copyMakeBorder(t, 18, 2, 2, 2, cv2.BORDER_CONSTANT, value=255)
    cv2.putText(t, title, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.38, 0, 1, cv2.LINE_AA)
    small.append(t)
  return np.concatenate(
      [np.concatenate(small[i : i + per_row], 1) for i in range(0, len(small), per_row)], 0
  )


def make_view_gallery(path: str, seed: int = 3, thumb: int = 256) -> np.ndarray:
  """Writes one end-diastolic frame of one patient in every standard view and every ``other``."""
  patient = patients.sample_patient(np.random.default_rng([seed, 0]))
  tiles = []
  items = [(v, None) for v in views.VIEW_CLASSES if v != views.OTHER] + [
      (views.OTHER, k) for k in views.OTHER_KINDS
  ]
  for k, (view, kind) in enumerate(items):
    video = render.render_study(
        patient, np.random.default_rng([seed, k + 1]), view, 480, 640, 40, 33.3, kind
    )
    frame = video.frames[int(np.argmax(video.lv_volume))]
    tiles.append((view if kind is None else f"other: {kind}", frame))
  grid = _grid(tiles, thumb, per_row=5)
  cv2.imwrite(path, grid)
  return grid


if __name__ == "__main__":
  if len(sys.argv) > 1 and sys.argv[1] == "--views":
    make_view_gallery(sys.argv[2] if len(sys.argv) > 2 else "docs/phantom_views.png")
  else:
    make_figure(sys.argv[1] if len(sys.argv) > 1 else "docs/phantom.png")
