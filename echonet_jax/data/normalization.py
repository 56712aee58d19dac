"""Pixel normalisation shared by every stream (train, eval, predict, saliency).

``(uint8 - PIXEL_MEAN) / PIXEL_STD`` for all streams. Black (the masked background) maps to
:data:`BLACK` = ``normalize(0)``. Network input is (..., S, S, channels), the grey channel repeated
when ``channels`` is 3.
"""

from __future__ import annotations

import math

import numpy as np

from echonet_jax.data import selection

# Grey-level statistics of echo frames: luma of pydicom-data's color3d_jpeg_baseline.dcm (a
# 120-frame 480×640 ultrasound clip, whole frames with the black surround): mean 10.9, std 23.0.
# Re-measure a cache with :func:`pixel_stats`; changing these invalidates trained checkpoints.
PIXEL_MEAN = 11.0
PIXEL_STD = 23.0
BLACK = -PIXEL_MEAN / PIXEL_STD


def normalize(frames: np.ndarray) -> np.ndarray:
  """uint8 frames (any shape) → float32 ``(x - PIXEL_MEAN) / PIXEL_STD``."""
  return (np.asarray(frames, np.float32) - np.float32(PIXEL_MEAN)) * np.float32(1.0 / PIXEL_STD)


def pixel_stats(cache_dir: str, split: str = "train", max_videos: int = 200) -> dict[str, float]:
  """Mean and std of the uint8 frames of up to ``max_videos`` videos of a cache split."""
  total = total_sq = count = 0.0
  for i, record in enumerate(selection.records(cache_dir, split)):
    if i >= max_videos:
      break
    x = record["frames"].astype(np.float64)
    total += x.sum()
    total_sq += np.square(x).sum()
    count += x.size
  if not count:
    raise ValueError(f"{cache_dir}: split {split!r} has no frames")
  mean = total / count
  return {"mean": mean, "std": math.sqrt(max(total_sq / count - mean * mean, 0.0)), "n": count}


def check_channels(channels: int) -> None:
  if channels not in (1, 3):
    raise ValueError(f"channels must be 1 or 3, got {channels}")


def to_images(frames: np.ndarray, channels: int = 1) -> np.ndarray:
  """uint8 frames (..., S, S) → normalised float32 network input (..., S, S, channels)."""
  return to_image(normalize(frames), channels)


def to_image(frame: np.ndarray, channels: int) -> np.ndarray:
  """(S, S) float32 → (S, S, channels), repeating the grey channel."""
  image = frame[..., None]
  return np.repeat(image, channels, axis=-1) if channels != 1 else image
