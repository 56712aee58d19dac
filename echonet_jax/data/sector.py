"""The ultrasound scan sector: find it, mask outside it, and crop, pad and resize to a square.

Everything here is a pure function over numpy arrays. :func:`detect_sector` is a data-driven cone
detector; :func:`region_box_mask` turns DICOM ultrasound regions (plain boxes) into a prior for it;
:func:`geometry_from_mask` and :func:`apply_geometry` map any source-aligned (H, W) array to the
output grid, so ground-truth masks follow the frames exactly.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import cv2
import numpy as np

# Pixels of the max-projection more than this above the background level are "signal" in lossy
# files (JPEG ringing around text and icons stays below it); lossless files use 0, because some pad
# the fan with 1s against a background of 0s.
LOSSY_NOISE_MARGIN = 8
# A pixel whose range over the sampled frames exceeds this is "moving" (speckle, heart).
MOTION_THRESHOLD = 12
# The moving area must cover at least this fraction of the image to be trusted as the fan.
MIN_MOTION_FRACTION = 0.01
# A region box is trusted when this fraction of the moving area lies inside it.
REGION_AGREEMENT = 0.95


@dataclasses.dataclass(frozen=True)
class Geometry:
  """How a source (H, W) grid maps to the square output: crop ``[y0:y1, x0:x1]``, then pad to
  ``side`` x ``side`` with ``pad_top`` rows above and ``pad_left`` columns to the left, then
  resize."""

  source_shape: tuple[int, int]
  y0: int
  y1: int
  x0: int
  x1: int
  pad_top: int
  pad_left: int
  side: int


def region_box_mask(boxes: Sequence[tuple[int, int, int, int]], shape: tuple[int, int]
                    ) -> np.ndarray | None:
  """Union of inclusive (x0, y0, x1, y1) boxes, clipped to ``shape``; None when nothing is left."""
  h, w = shape
  mask = np.zeros(shape, bool)
  for x0, y0, x1, y1 in boxes:
    x0, x1 = sorted((int(x0), int(x1)))
    y0, y1 = sorted((int(y0), int(y1)))
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, w - 1), min(y1, h - 1)
    if x1 > x0 and y1 > y0:
      mask[y0:y1 + 1, x0:x1 + 1] = True
  return mask if mask.any() else None


def _odd(n: float) -> int:
  n = max(3, int(round(n)))
  return n if n % 2 else n + 1


def _ellipse(k: int) -> np.ndarray:
  return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))


def _convex_hull_mask(mask: np.ndarray) -> np.ndarray:
  points = cv2.findNonZero(mask.astype(np.uint8))
  out = np.zeros(mask.shape, np.uint8)
  if points is not None:
    cv2.fillConvexPoly(out, cv2.convexHull(points), 1)
  return out.astype(bool)


def _largest_component(mask: np.ndarray) -> np.ndarray | None:
  n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
  if n <= 1:
    return None
  return labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))


def detect_sector(frames: np.ndarray, region: np.ndarray | None = None,
                  noise_margin: int = 0) -> np.ndarray:
  """The scan sector of grayscale ``frames`` (T, H, W) uint8 as an (H, W) bool mask.

  Pixels that move over time (when there are 3 or more distinct frames) seed the fan; the bright
  pixels of the max-projection, opened to drop thin text, lines and ECG traces, give its extent: the
  connected pieces that touch the seed (or, with no motion, the largest piece) are joined and their
  convex hull is the sector. "Bright" means above the most common dark value (the background) by
  more than ``noise_margin`` (use :data:`LOSSY_NOISE_MARGIN` for lossy-compressed pixels).
  ``region`` (e.g. from :func:`region_box_mask`) restricts the search unless the moving pixels
  disagree with it (regions written for another image size). When nothing is found the whole
  image is returned.
  """
  frames = np.asarray(frames)
  if frames.ndim == 2:
    frames = frames[None]
  _, h, w = frames.shape
  k = _odd(min(h, w) / 100)
  peak = frames.max(axis=0)

  seed = None
  if len(frames) >= 3:
    moving = (peak.astype(np.int16) - frames.min(axis=0)) > MOTION_THRESHOLD
    moving = cv2.morphologyEx(moving.astype(np.uint8), cv2.MORPH_CLOSE, _ellipse(2 * k + 1))
    moving = cv2.morphologyEx(moving, cv2.MORPH_OPEN, _ellipse(2 * k + 1))
    if moving.mean() >= MIN_MOTION_FRACTION:
      seed = _largest_component(moving)

  if region is not None and seed is not None:
    if (seed & region).sum() < REGION_AGREEMENT * seed.sum():
      region = None

  background = int(np.bincount(peak.ravel(), minlength=64)[:64].argmax())  # the dark mode
  bright = peak > background + noise_margin
  if region is not None:
    bright &= region
  bright = cv2.morphologyEx(bright.astype(np.uint8), cv2.MORPH_OPEN, _ellipse(k))
  n, labels, stats, _ = cv2.connectedComponentsWithStats(bright, connectivity=8)
  if seed is not None:
    touching = np.unique(labels[seed & (labels > 0)])
    fan = np.isin(labels, touching) | seed
  elif n > 1:
    fan = labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
  else:
    fan = region if region is not None else np.ones((h, w), bool)
  hull = _convex_hull_mask(fan)
  if region is not None:
    hull &= region
  return hull if hull.any() else np.ones((h, w), bool)


def geometry_from_mask(mask: np.ndarray) -> Geometry:
  """Crop box of ``mask``'s True pixels, padded (centred) to a square."""
  mask = np.asarray(mask, bool)
  h, w = mask.shape
  rows = np.flatnonzero(mask.any(axis=1))
  cols = np.flatnonzero(mask.any(axis=0))
  if rows.size == 0:
    y0, y1, x0, x1 = 0, h, 0, w
  else:
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
  side = max(y1 - y0, x1 - x0)
  return Geometry(source_shape=(h, w), y0=y0, y1=y1, x0=x0, x1=x1,
                  pad_top=(side - (y1 - y0)) // 2, pad_left=(side - (x1 - x0)) // 2, side=side)


def full_geometry(shape: tuple[int, int]) -> Geometry:
  """The geometry that keeps the whole (H, W) image (padded to a square)."""
  return geometry_from_mask(np.ones(shape, bool))


_INTERPOLATION = {"nearest": cv2.INTER_NEAREST, "area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR}


def apply_geometry(array: np.ndarray, geometry: Geometry, size: int,
                   interpolation: str = "area") -> np.ndarray:
  """Crops, pads (with zeros) and resizes ``array`` (..., H, W) to (..., size, size).

  Use ``interpolation="area"`` for images and ``"nearest"`` for label masks and bit fields.
  """
  array = np.asarray(array)
  if array.shape[-2:] != tuple(geometry.source_shape):
    raise ValueError(f"array of shape {array.shape} does not match the source shape "
                     f"{tuple(geometry.source_shape)} of the geometry")
  if interpolation not in _INTERPOLATION:
    raise ValueError(f"interpolation must be one of {sorted(_INTERPOLATION)}, "
                     f"not {interpolation!r}")
  lead = array.shape[:-2]
  crop = array[..., geometry.y0:geometry.y1, geometry.x0:geometry.x1]
  crop = crop.reshape((-1,) + crop.shape[-2:])
  square = np.zeros((crop.shape[0], geometry.side, geometry.side), array.dtype)
  ch, cw = crop.shape[-2:]
  square[:, geometry.pad_top:geometry.pad_top + ch, geometry.pad_left:geometry.pad_left + cw] = crop
  if square.dtype == bool:
    return apply_geometry(array.astype(np.uint8), geometry, size, interpolation).astype(bool)
  # cv2.resize takes up to 4 channels for every interpolation: resize 4 frames per call.
  flag = _INTERPOLATION[interpolation]
  out = np.empty((square.shape[0], size, size), array.dtype)
  for start in range(0, square.shape[0], 4):
    chunk = np.ascontiguousarray(square[start:start + 4].transpose(1, 2, 0))
    resized = cv2.resize(chunk, (size, size), interpolation=flag)
    out[start:start + 4] = resized.reshape(size, size, -1).transpose(2, 0, 1)
  return out.reshape(lead + (size, size))


def mask_outside(frames: np.ndarray, mask: np.ndarray) -> np.ndarray:
  """Zeros every pixel of ``frames`` (..., H, W) outside ``mask`` (H, W)."""
  return np.where(mask, frames, np.zeros((), frames.dtype))
