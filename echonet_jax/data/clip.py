"""A sampled, masked echo clip and the frame-timing rule every reader (DICOM, AVI) shares."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from echonet_jax.data import sector

DEFAULT_FPS = 30.0


@dataclasses.dataclass(frozen=True)
class EchoClip:
  """A sampled, masked clip. Holds no patient information: ``source`` is the path it was given."""

  frames: np.ndarray            # (T, size, size) uint8, masked luma
  frame_indices: np.ndarray     # (T,) int32, source frame of each output frame
  frame_time_ms: float          # source frame spacing
  fps_assumed: bool             # True when the file carried no timing
  sector_mask: np.ndarray       # (H, W) bool at source resolution, True inside the scan sector
  geometry: sector.Geometry     # source grid -> output grid (see sector.apply_geometry)
  source: str
  num_source_frames: int
  timing_source: str = ""       # the tag the frame time came from, or "default_fps"


def positive_float(value: Any) -> float | None:
  """A finite positive float from a DICOM value, or None."""
  try:
    x = float(value)
  except (TypeError, ValueError):
    return None
  return x if math.isfinite(x) and x > 0 else None


def sample_indices(times_ms: np.ndarray, frame_time_ms: float, num_frames: int,
                   interval_ms: float) -> np.ndarray:
  """Index of the source frame nearest to ``i * interval_ms`` for each output frame ``i``.

  Past the end of the clip (``times[-1] + frame_time``) the clip loops from its first frame.
  """
  times = np.asarray(times_ms, np.float64)
  n = len(times)
  if n <= 1:
    return np.zeros(num_frames, np.int32)
  period = times[-1] + frame_time_ms
  targets = np.mod(np.arange(num_frames) * float(interval_ms), period)
  grid = np.append(times, period)  # the loop's next frame 0 sits at ``period``
  nearest = np.abs(targets[:, None] - grid[None, :]).argmin(axis=1)
  return (nearest % n).astype(np.int32)
