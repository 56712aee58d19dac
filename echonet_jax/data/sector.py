"""The ultrasound scan sector: find it, mask outside it, and crop, pad and resize to a square.

Everything here is a pure function over numpy arrays. :func:`find_sector` gathers pixel evidence
of the scan sector (motion and brightness) and fits a fan or a rectangle to it
(:mod:`echonet_jax.data.sector_fit`); pixel de-identification keeps only what lies inside the fitted
shape shrunk by a safety margin, so burned-in text inside the sector's bounding box but outside the
fan is zeroed. :func:`region_box_mask` turns DICOM ultrasound regions (plain boxes) into a prior;
:func:`geometry_from_mask` and :func:`apply_geometry` map any source-aligned (H, W) array to the
output grid, so ground-truth masks follow the frames exactly.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import cv2
import numpy as np

from echonet_jax.data import sector_fit

# Pixels of the max-projection more than this above the background level are "signal" in lossy
# files (JPEG ringing around text and icons stays below it); lossless files use 0, because some pad
# the fan with 1s against a background of 0s.
LOSSY_NOISE_MARGIN = 8
# A pixel whose range over the sampled frames exceeds this is "moving" (speckle, heart).
MOTION_THRESHOLD = 12
# The moving area must cover at least this fraction of the image to be trusted as the fan.
MIN_MOTION_FRACTION = 0.01
# A moving area seeds the fan when this share of it is bright after the opening.
SEED_BRIGHT_SHARE = 0.6
# A region box is trusted when this fraction of the moving fan (and the bright pieces touching it)
# lies inside it.
REGION_AGREEMENT = 0.95
# Pixels closer than this to the edge of the fitted shape are zeroed too, so that text drawn right
# against the fan (0 px away) stays zeroed when the fit is off by up to this much. It scales with
# the image below 480 px on the short side (1 px at 240), where each pixel is a larger share of
# the fan: the fit is exact to well under a pixel on sharp edges, the margin costs the IoU.
SAFETY_MARGIN_PX = 2.0
# An image with a side under this is "too_small"; evidence under this fraction of it, "no_sector".
MIN_SIDE = 32
MIN_SECTOR_FRACTION = 0.02
# The fit also uses the dim pixels (above the background by this much, in lossy files too) that
# connect to the bright evidence: the dark lateral parts of a cardiac fan.
FIT_NOISE_MARGIN = 2
# A fitted shape is kept when it holds MIN_EXPLAINED of the evidence and MIN_SUPPORTED of it lies
# in the evidence's convex hull.
MIN_EXPLAINED = 0.8
MIN_SUPPORTED = 0.85
QUALITIES = ("ok", "blank", "no_sector", "too_small")
SHAPES = ("fan", "rectangle", "hull", "whole")


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
  quality: str = "ok"  # of the sector detection: one of QUALITIES (see find_sector)
  shape: str = "whole"  # the sector's shape: one of SHAPES ("whole" when no detector ran)


@dataclasses.dataclass(frozen=True)
class Sector:
  """What :func:`find_sector` found: ``mask`` (H, W) bool, True where pixels are kept; ``shape``
  ("fan", "rectangle", "hull" = no shape fitted, "whole" = nothing found); ``quality`` ("ok",
  "blank", "no_sector", "too_small"); ``params`` of the fitted shape in source pixels before the
  ``margin_px`` shrink (see :func:`echonet_jax.data.sector_fit.fit_fan` and ``fit_rectangle``)."""

  mask: np.ndarray
  shape: str
  quality: str
  params: dict
  margin_px: float


def region_box_mask(
    boxes: Sequence[tuple[int, int, int, int]], shape: tuple[int, int]
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
      mask[y0 : y1 + 1, x0 : x1 + 1] = True
  return mask if mask.any() else None


def _odd(n: float) -> int:
  n = max(3, int(round(n)))
  return n if n % 2 else n + 1


def _ellipse(k: int) -> np.ndarray:
  return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))


def _convex_hull_mask(mask: np.ndarray) -> np.ndarray:
  out = np.zeros(mask.shape, np.uint8)
  rows = np.flatnonzero(mask.any(axis=1))
  if rows.size:  # the hull of each row's two extreme pixels is the hull of all of them
    sub = mask[rows]
    cols = np.concatenate([sub.argmax(axis=1), mask.shape[1] - 1 - sub[:, ::-1].argmax(axis=1)])
    points = np.stack([cols, np.concatenate([rows, rows])], axis=-1).astype(np.int32)
    cv2.fillConvexPoly(out, cv2.convexHull(points), 1)
  return out.astype(bool)


def _bright_pieces(peak: np.ndarray, threshold: int, region: np.ndarray | None, k: int):
  bright = peak > threshold
  if region is not None:
    bright &= region
  bright = cv2.morphologyEx(bright.astype(np.uint8), cv2.MORPH_OPEN, _ellipse(k))
  return cv2.connectedComponentsWithStats(bright, connectivity=8)


def _grow(pieces, seed: np.ndarray | None) -> np.ndarray | None:
  """The bright ``pieces`` (connected components) touching ``seed``, not the seed itself, whose
  closing can fill the gap to an ECG sweep; with no seed, the largest piece; None if none."""
  n, labels, stats, _ = pieces
  if seed is not None:
    touching = np.zeros(n, bool)
    touching[labels[seed]] = True
    touching[0] = False
    return touching[labels]
  return labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA])) if n > 1 else None


def _evidence(frames: np.ndarray, peak: np.ndarray, region: np.ndarray | None, noise_margin: int):
  """(the fan's pixels above ``noise_margin``, the same grown through dimmer pixels, the region
  if the moving pixels agree with it); the first two are None when nothing is bright."""
  _, h, w = frames.shape
  k = _odd(min(h, w) / 100)
  background = int(np.bincount(peak.ravel(), minlength=64)[:64].argmax())  # the dark mode
  pieces = _bright_pieces(peak, background + noise_margin, None, k)
  seed = None
  if len(frames) >= 3:
    moving = (peak.astype(np.int16) - frames.min(axis=0)) > MOTION_THRESHOLD
    moving = cv2.morphologyEx(moving.astype(np.uint8), cv2.MORPH_CLOSE, _ellipse(2 * k + 1))
    moving = cv2.morphologyEx(moving, cv2.MORPH_OPEN, _ellipse(2 * k + 1))
    if moving.mean() >= MIN_MOTION_FRACTION:
      # The moving area holding the most bright pixels, among those mostly bright (textured): not
      # an ECG sweep or a clock, whose strokes are too thin to survive the opening.
      n, labels = cv2.connectedComponents(moving, connectivity=8)
      score = np.bincount(labels[pieces[1] > 0], minlength=n)[1:]
      score[score < SEED_BRIGHT_SHARE * np.bincount(labels.ravel(), minlength=n)[1:]] = 0
      if score.any():
        seed = labels == 1 + int(np.argmax(score))
  if seed is None and region is not None:  # no motion to check the region against: trust it
    pieces = _bright_pieces(peak, background + noise_margin, region, k)
  strong = _grow(pieces, seed)
  if strong is None:
    return None, None, region
  fan = strong
  if noise_margin > FIT_NOISE_MARGIN:
    fan = _grow(
        _bright_pieces(peak, background + FIT_NOISE_MARGIN, region if seed is None else None, k),
        strong,
    )
  # The region must hold (nearly) all of the moving fan and the pieces touching it: a region
  # written for another image size (a downscaled copy) would cut the fan.
  if seed is not None and region is not None:
    if (fan & region).sum() < REGION_AGREEMENT * fan.sum():
      region = None
  if region is not None:
    strong, fan = strong & region, fan & region
  return strong, fan, region


def safety_margin(shape: tuple[int, int]) -> float:
  """The default margin in px for an (H, W) image (see :data:`SAFETY_MARGIN_PX`)."""
  return SAFETY_MARGIN_PX * min(1.0, min(shape) / 480)


def find_sector(
    frames: np.ndarray,
    region: np.ndarray | None = None,
    noise_margin: int = 0,
    margin_px: float | None = None,
) -> Sector:
  """The scan sector of grayscale ``frames`` (T, H, W) uint8, as a fitted shape.

  Evidence: pixels that move over time (with 3 or more distinct frames) seed the fan; the bright
  pixels of the max-projection, opened to drop thin text, lines and ECG traces, give its extent
  (the connected pieces touching the seed, or with no motion the largest piece). "Bright" means
  above the most common dark value by more than ``noise_margin`` (use :data:`LOSSY_NOISE_MARGIN`
  for lossy-compressed pixels). ``region`` (e.g. from :func:`region_box_mask`) restricts the
  search unless the moving pixels disagree with it (regions written for another image size).

  Shape: a fan (apex up; two straight edges by RANSAC on the evidence's extreme pixel of each row,
  a far arc and, when the fan is truncated, a near arc centred on the apex, each the consensus of
  rays cast from the apex), else a rectangle (linear probes: four RANSAC edges), else the evidence's
  convex hull (``shape == "hull"``, the fallback). Text and icons touching the fan are outliers of
  these fits, so they stay outside. The mask is the shape shrunk by ``margin_px`` (see
  :func:`safety_margin` unless given) and clipped to the region.

  ``quality``: "ok"; "blank" (no pixel differs from the rest by more than ``noise_margin``: all
  black, or one flat value); "no_sector" (no bright evidence, or less than
  :data:`MIN_SECTOR_FRACTION` of the image); "too_small" (a side under :data:`MIN_SIDE` px). Unless
  "ok", the mask is the region (when given) or the whole image and ``shape == "whole"``.
  """
  frames = np.asarray(frames)
  if frames.ndim == 2:
    frames = frames[None]
  _, h, w = frames.shape
  whole = np.ones((h, w), bool)
  if min(h, w) < MIN_SIDE or len(frames) == 0:
    return Sector(whole, "whole", "too_small", {}, 0.0)
  peak = frames.max(axis=0)
  if int(peak.max()) - int(frames.min()) <= noise_margin:
    return Sector(whole, "whole", "blank", {}, 0.0)
  strong, evidence, region = _evidence(frames, peak, region, noise_margin)
  if strong is None or strong.sum() < MIN_SECTOR_FRACTION * h * w:
    return Sector(region if region is not None else whole, "whole", "no_sector", {}, 0.0)
  open_area = region if region is not None else whole
  margin_px = safety_margin((h, w)) if margin_px is None else float(margin_px)
  hull = _convex_hull_mask(evidence) & open_area
  rng = np.random.default_rng(0)
  for kind, fit in (("fan", sector_fit.fit_fan), ("rectangle", sector_fit.fit_rectangle)):
    params = fit(evidence, open_area, rng)
    if params is None:
      continue
    mask = sector_fit.shape_mask(kind, params, (h, w), margin_px) & open_area
    # The shape must explain the evidence and the evidence (its hull) must support the shape.
    if (evidence & mask).sum() >= MIN_EXPLAINED * evidence.sum() and (
        mask & hull
    ).sum() >= MIN_SUPPORTED * mask.sum():
      return Sector(mask, kind, "ok", {k: round(v, 2) for k, v in params.items()}, margin_px)
  mask = _convex_hull_mask(strong) & open_area  # the fallback
  if margin_px > 0:  # filling the hull takes in the pixels its outline crosses: 1 px at least
    mask = cv2.erode(mask.astype(np.uint8), _ellipse(2 * math.ceil(margin_px) + 1)) > 0
  if not mask.any():
    return Sector(open_area, "whole", "no_sector", {}, 0.0)
  return Sector(mask, "hull", "ok", {}, margin_px)


def detect_sector(
    frames: np.ndarray, region: np.ndarray | None = None, noise_margin: int = 0
) -> np.ndarray:
  """The (H, W) bool mask of :func:`find_sector` (which also says which shape and quality)."""
  return find_sector(frames, region, noise_margin).mask


def geometry_from_mask(mask: np.ndarray, quality: str = "ok", shape: str = "whole") -> Geometry:
  """Crop box of ``mask``'s True pixels, padded (centred) to a square; ``quality`` and ``shape``
  (from :class:`Sector`) are carried along for callers to report."""
  mask = np.asarray(mask, bool)
  h, w = mask.shape
  rows = np.flatnonzero(mask.any(axis=1))
  cols = np.flatnonzero(mask.any(axis=0))
  if rows.size == 0:
    y0, y1, x0, x1 = 0, h, 0, w
  else:
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
  side = max(y1 - y0, x1 - x0)
  return Geometry(
      source_shape=(h, w),
      y0=y0,
      y1=y1,
      x0=x0,
      x1=x1,
      pad_top=(side - (y1 - y0)) // 2,
      pad_left=(side - (x1 - x0)) // 2,
      side=side,
      quality=quality,
      shape=shape,
  )


def full_geometry(shape: tuple[int, int]) -> Geometry:
  """The geometry that keeps the whole (H, W) image (padded to a square)."""
  return geometry_from_mask(np.ones(shape, bool))


_INTERPOLATION = {"nearest": cv2.INTER_NEAREST, "area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR}


def apply_geometry(
    array: np.ndarray, geometry: Geometry, size: int, interpolation: str = "area"
) -> np.ndarray:
  """Crops, pads (with zeros) and resizes ``array`` (..., H, W) to (..., size, size).

  Use ``interpolation="area"`` for images and ``"nearest"`` for label masks and bit fields.
  """
  array = np.asarray(array)
  if array.shape[-2:] != tuple(geometry.source_shape):
    raise ValueError(
        f"array of shape {array.shape} does not match the source shape "
        f"{tuple(geometry.source_shape)} of the geometry"
    )
  if interpolation not in _INTERPOLATION:
    raise ValueError(
        f"interpolation must be one of {sorted(_INTERPOLATION)}, " f"not {interpolation!r}"
    )
  lead = array.shape[:-2]
  crop = array[..., geometry.y0 : geometry.y1, geometry.x0 : geometry.x1]
  crop = crop.reshape((-1,) + crop.shape[-2:])
  square = np.zeros((crop.shape[0], geometry.side, geometry.side), array.dtype)
  ch, cw = crop.shape[-2:]
  square[
      :, geometry.pad_top : geometry.pad_top + ch, geometry.pad_left : geometry.pad_left + cw
  ] = crop
  if square.dtype == bool:
    return apply_geometry(array.astype(np.uint8), geometry, size, interpolation).astype(bool)
  # cv2.resize takes up to 4 channels for every interpolation: resize 4 frames per call.
  flag = _INTERPOLATION[interpolation]
  out = np.empty((square.shape[0], size, size), array.dtype)
  for start in range(0, square.shape[0], 4):
    chunk = np.ascontiguousarray(square[start : start + 4].transpose(1, 2, 0))
    resized = cv2.resize(chunk, (size, size), interpolation=flag)
    out[start : start + 4] = resized.reshape(size, size, -1).transpose(2, 0, 1)
  return out.reshape(lead + (size, size))


def mask_outside(frames: np.ndarray, mask: np.ndarray) -> np.ndarray:
  """Zeros every pixel of ``frames`` (..., H, W) outside ``mask`` (H, W)."""
  return np.where(mask, frames, np.zeros((), frames.dtype))
