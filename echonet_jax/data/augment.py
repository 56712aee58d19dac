"""Pure per-frame image operations of the input pipeline: resize, rotation, parameter draws.

The paper's augmentation (Ghorbani et al. 2020): at every step a rotation drawn uniformly from
±20° and a brightness shift drawn uniformly from ±0.1 (in normalised units). Rotation is applied
to the uint8 frame (cheaper than float, and exact for the black background, which stays 0); the
brightness shift is applied by the train stream after normalisation.
"""

from __future__ import annotations

import cv2
import numpy as np


def resize(frame: np.ndarray, size: int) -> np.ndarray:
  """Resizes a (H, W) frame to (size, size) with area interpolation; unchanged if already so."""
  if frame.shape[0] == size and frame.shape[1] == size:
    return frame
  return cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA)


def rotate(frame: np.ndarray, angle_deg: float) -> np.ndarray:
  """Rotates a (H, W) frame counter-clockwise by ``angle_deg`` about the image centre.

  The centre is ((W - 1) / 2, (H - 1) / 2) in pixel coordinates, so 90° equals ``np.rot90`` on a
  square frame. Bilinear interpolation; pixels that come from outside the frame are 0 (black, as
  the masked background).
  """
  h, w = frame.shape[:2]
  matrix = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), float(angle_deg), 1.0)
  return cv2.warpAffine(
      frame, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
  )


def draw_params(
    rng: np.random.Generator, rotation_deg: float, brightness: float
) -> tuple[float, float]:
  """One draw of (angle in degrees, brightness shift), each uniform in [-max, max]."""
  angle, shift = rng.uniform(-1.0, 1.0, size=2)
  return float(angle * rotation_deg), float(shift * brightness)
