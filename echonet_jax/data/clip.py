"""A sampled, masked echo clip and the frame-timing rule every reader (DICOM, AVI) shares.

Timing is kept as a rule, not as a table of every source frame: sampling ``num_frames`` output frames
costs O(num_frames) for a uniform frame time, whatever the source's frame count claims.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any

import numpy as np

from echonet_jax.data import sector

DEFAULT_FPS = 30.0
# A frame time outside this range (1,000 to 1 frames/s) is a broken tag, not an echo: treated as
# missing. Echo cines run at 15-1,000 frames/s; one frame a second is already a slide show.
MIN_FRAME_TIME_MS = 1.0
MAX_FRAME_TIME_MS = 1000.0

_log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class EchoClip:
  """A sampled, masked clip. Holds no patient information: ``source`` is the path it was given."""

  frames: np.ndarray  # (T, size, size) uint8, masked luma
  frame_indices: np.ndarray  # (T,) int32, source frame of each output frame
  frame_time_ms: float  # source frame spacing
  fps_assumed: bool  # True when the file carried no (plausible) timing
  sector_mask: np.ndarray  # (H, W) bool at source resolution, True inside the scan sector
  geometry: sector.Geometry  # source grid -> output grid (see sector.apply_geometry)
  source: str
  num_source_frames: int
  timing_source: str = ""  # the tag the frame time came from, or "default_fps[: why]"


@dataclasses.dataclass(frozen=True)
class Timing:
  """How source frames are spaced: uniformly by ``frame_time_ms``, or at ``times_ms`` (a vector)."""

  frame_time_ms: float
  source: str  # e.g. "FrameTime", "avi", "default_fps: FrameTime implausible"
  assumed: bool  # True when no plausible timing came from the file
  times_ms: np.ndarray | None = None  # per-frame times (FrameTimeVector); None when uniform


def make_clip(
    frames: np.ndarray,
    inverse: np.ndarray,
    indices: np.ndarray,
    timing: Timing,
    mask: np.ndarray,
    geometry: sector.Geometry,
    size: int,
    *,
    source: str,
    num_source_frames: int,
) -> EchoClip:
  """The clip of a reader: ``frames`` (the distinct sampled source frames, masked) taken through
  ``geometry`` to ``size`` px (area resampling) and repeated in sampled order (``inverse`` of
  ``np.unique(indices)``)."""
  out = sector.apply_geometry(frames, geometry, size, "area")
  return EchoClip(
      frames=out[inverse.reshape(-1)],
      frame_indices=indices,
      frame_time_ms=float(timing.frame_time_ms),
      fps_assumed=timing.assumed,
      sector_mask=mask,
      geometry=geometry,
      source=source,
      num_source_frames=num_source_frames,
      timing_source=timing.source,
  )


def positive_float(value: Any) -> float | None:
  """A finite positive float from a DICOM value, or None."""
  try:
    x = float(value)
  except (TypeError, ValueError):
    return None
  return x if math.isfinite(x) and x > 0 else None


def plausible_frame_time(frame_time_ms: float | None) -> bool:
  """True when ``frame_time_ms`` lies in [MIN_FRAME_TIME_MS, MAX_FRAME_TIME_MS]."""
  return frame_time_ms is not None and MIN_FRAME_TIME_MS <= frame_time_ms <= MAX_FRAME_TIME_MS


def default_timing(default_fps: float, rejected: list[str] = ()) -> Timing:
  """The assumed timing; ``rejected`` names timing sources that were present but implausible.

  Each rejection is logged as a warning (without the file or the value: logs carry no file names).
  """
  source = "default_fps"
  if rejected:
    source += f": {', '.join(rejected)} outside {MIN_FRAME_TIME_MS:g}-{MAX_FRAME_TIME_MS:g} ms"
    _log.warning(
        "a video's frame time (%s) is outside %g-%g ms: treated as missing, " "%g frames/s assumed",
        ", ".join(rejected),
        MIN_FRAME_TIME_MS,
        MAX_FRAME_TIME_MS,
        default_fps,
    )
  return Timing(1000.0 / default_fps, source, True)


def sample_uniform(
    num_source: int, frame_time_ms: float, num_frames: int, interval_ms: float
) -> np.ndarray:
  """:func:`sample_indices` for frames ``frame_time_ms`` apart, in O(num_frames).

  Same result as ``sample_indices(np.arange(num_source) * frame_time_ms, ...)``, ties included.
  """
  n = int(num_source)
  if n <= 1:
    return np.zeros(num_frames, np.int32)
  ft = float(frame_time_ms)
  period = (n - 1) * ft + ft
  targets = np.mod(np.arange(num_frames) * float(interval_ms), period)
  base = np.floor(targets / ft).astype(np.int64)
  candidates = base[:, None] + np.array([-1, 0, 1])[None, :]  # float rounding: look either side
  grid = np.where(candidates == n, period, candidates * ft)
  distance = np.abs(targets[:, None] - grid)
  distance[(candidates < 0) | (candidates > n)] = np.inf
  nearest = candidates[np.arange(num_frames), distance.argmin(axis=1)]  # ties: the lower index
  return (nearest % n).astype(np.int32)


def sample_indices(
    times_ms: np.ndarray, frame_time_ms: float, num_frames: int, interval_ms: float
) -> np.ndarray:
  """Index of the source frame nearest to ``i * interval_ms`` for each output frame ``i``.

  Past the end of the clip (``times[-1] + frame_time``) the clip loops from its first frame. Ties go
  to the earlier frame. O(len(times) + num_frames * log(len(times))).
  """
  times = np.asarray(times_ms, np.float64)
  n = len(times)
  if n <= 1:
    return np.zeros(num_frames, np.int32)
  period = times[-1] + frame_time_ms
  targets = np.mod(np.arange(num_frames) * float(interval_ms), period)
  grid = np.append(times, period)  # the loop's next frame 0 sits at ``period``
  right = np.clip(np.searchsorted(grid, targets), 1, n)
  left = np.searchsorted(grid, grid[right - 1])  # first of equal times, as argmin would pick
  take_right = np.abs(grid[right] - targets) < np.abs(targets - grid[left])
  nearest = np.where(take_right, right, left)
  return (nearest % n).astype(np.int32)


def sample_timing(
    timing: Timing, num_source: int, num_frames: int, interval_ms: float
) -> np.ndarray:
  """Source frame index of each output frame under ``timing`` (see :func:`sample_indices`)."""
  if timing.times_ms is not None:
    return sample_indices(timing.times_ms, timing.frame_time_ms, num_frames, interval_ms)
  return sample_uniform(num_source, timing.frame_time_ms, num_frames, interval_ms)
