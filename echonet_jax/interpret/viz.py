"""Pictures of saliency maps: display maps, colour overlays on echo frames, PNG/GIF files, doc panels.

Array in, file out. Arrays may be numpy or jax; everything here runs in numpy on the host.
"""

from __future__ import annotations

import os
from typing import Sequence

import matplotlib
import numpy as np
from PIL import Image


def to_display_map(saliency: np.ndarray, percentile: float = 99.0) -> np.ndarray:
  """|saliency| summed over channels, clipped at its ``percentile`` and scaled to [0, 1]; float32 (H, W).

  ``saliency`` is (H, W) or (H, W, C). Zero stays zero; an all-zero map gives all zeros.
  """
  heat = np.abs(np.asarray(saliency, np.float32))
  if heat.ndim == 3:
    heat = heat.sum(-1)
  if heat.ndim != 2:
    raise ValueError(f"saliency must be (H, W) or (H, W, C), got shape {np.shape(saliency)}")
  return _clip_and_scale(heat, percentile)


def _clip_and_scale(heat: np.ndarray, percentile: float) -> np.ndarray:
  if not 0.0 < percentile <= 100.0:
    raise ValueError(f"percentile must be in (0, 100], got {percentile}")
  top = np.percentile(heat, percentile)
  if not np.isfinite(top):
    raise ValueError("saliency map has non-finite values")
  if top <= 0:
    return np.zeros_like(heat)
  return np.minimum(heat, top) / top


def video_display_maps(saliency: np.ndarray, percentile: float = 99.0) -> np.ndarray:
  """``to_display_map`` for a video (T, H, W[, C]) with one clip level for all frames, so they compare."""
  heat = np.abs(np.asarray(saliency, np.float32))
  if heat.ndim == 4:
    heat = heat.sum(-1)
  if heat.ndim != 3:
    raise ValueError(f"video saliency must be (T, H, W) or (T, H, W, C), got shape {np.shape(saliency)}")
  return _clip_and_scale(heat, percentile)


def _gray01(frame: np.ndarray) -> np.ndarray:
  """A frame as float gray (H, W) in [0, 1].

  uint8 frames are divided by 255; float frames already in [0, 1] are kept; other float frames (e.g.
  standardised ones) are min-max scaled.
  """
  frame = np.asarray(frame)
  if frame.ndim == 3 and frame.shape[-1] in (1, 3):
    frame = frame.mean(-1) if frame.shape[-1] == 3 else frame[..., 0]
  if frame.ndim != 2:
    raise ValueError(f"frame must be (H, W), (H, W, 1) or (H, W, 3), got shape {frame.shape}")
  if frame.dtype == np.uint8:
    return frame.astype(np.float32) / 255.0
  frame = frame.astype(np.float32)
  low, high = float(frame.min()), float(frame.max())
  if low >= 0.0 and high <= 1.0:
    return frame
  return (frame - low) / (high - low) if high > low else np.zeros_like(frame)


def overlay(frame: np.ndarray, heat01: np.ndarray, cmap: str = "inferno", alpha: float = 0.6) -> np.ndarray:
  """Colour ``heat01`` (H, W) in [0, 1] over the grayscale ``frame``; uint8 RGB (H, W, 3).

  The colour's opacity at a pixel is ``alpha·heat``, so unimportant pixels show the plain frame.
  """
  gray = _gray01(frame)
  heat = np.clip(np.asarray(heat01, np.float32), 0.0, 1.0)
  if heat.shape != gray.shape:
    raise ValueError(f"heat map shape {heat.shape} does not match frame shape {gray.shape}")
  colour = matplotlib.colormaps[cmap](heat)[..., :3].astype(np.float32)
  opacity = (alpha * heat)[..., None]
  rgb = (1.0 - opacity) * gray[..., None] + opacity * colour
  return np.round(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8)


def video_overlays(frames: np.ndarray, saliency: np.ndarray, cmap: str = "inferno", alpha: float = 0.6,
                   percentile: float = 99.0) -> np.ndarray:
  """Overlays for a clip: ``frames`` (T, H, W[, C]) and ``saliency`` (T, H, W[, C]) → uint8 (T, H, W, 3)."""
  heats = video_display_maps(saliency, percentile)
  if len(frames) != len(heats):
    raise ValueError(f"{len(frames)} frames but {len(heats)} saliency maps")
  return np.stack([overlay(frame, heat, cmap, alpha) for frame, heat in zip(frames, heats)])


def _check_rgb(rgb: np.ndarray, what: str) -> np.ndarray:
  rgb = np.asarray(rgb)
  if rgb.dtype != np.uint8 or rgb.ndim not in (2, 3) or (rgb.ndim == 3 and rgb.shape[-1] not in (3, 4)):
    raise ValueError(f"{what} must be uint8 (H, W), (H, W, 3) or (H, W, 4), got {rgb.dtype} {rgb.shape}")
  return rgb


def _parent(path: str | os.PathLike) -> None:
  os.makedirs(os.path.dirname(os.fspath(path)) or ".", exist_ok=True)


def save_png(path: str | os.PathLike, rgb: np.ndarray) -> None:
  """Write a uint8 image (H, W[, 3|4]) as PNG, creating parent folders."""
  image = Image.fromarray(_check_rgb(rgb, f"image for {path}"))
  _parent(path)
  image.save(path, format="PNG")


def save_gif(path: str | os.PathLike, rgb_frames: Sequence[np.ndarray] | np.ndarray, fps: float = 10.0) -> None:
  """Write uint8 frames (T, H, W[, 3]) as an animated GIF that loops forever."""
  if len(rgb_frames) == 0:
    raise ValueError(f"no frames to write to {path}")
  if fps <= 0:
    raise ValueError(f"fps must be positive, got {fps}")
  images = [Image.fromarray(_check_rgb(frame, f"frame {i} for {path}")) for i, frame in enumerate(rgb_frames)]
  _parent(path)
  images[0].save(path, format="GIF", save_all=True, append_images=images[1:], loop=0,
                 duration=int(round(1000.0 / fps)), optimize=False)


def panel(path: str | os.PathLike, frame: np.ndarray, heat01: np.ndarray, mask: np.ndarray | None = None,
          title: str | None = None, cmap: str = "inferno", alpha: float = 0.6, dpi: int = 100) -> None:
  """Save a figure: frame | saliency overlay | frame with the ground-truth ``mask`` outlined (if given).

  The overlay also carries the mask outline, so one can see whether the map falls on the region.
  """
  from matplotlib.backends.backend_agg import FigureCanvasAgg
  from matplotlib.figure import Figure

  gray = _gray01(frame)
  shown = overlay(frame, heat01, cmap, alpha)
  if mask is not None:
    mask = np.asarray(mask).astype(np.float32)
    if mask.shape != gray.shape:
      raise ValueError(f"mask shape {mask.shape} does not match frame shape {gray.shape}")
  columns = 3 if mask is not None else 2
  figure = Figure(figsize=(3.2 * columns, 3.4), dpi=dpi)
  FigureCanvasAgg(figure)
  axes = figure.subplots(1, columns)
  axes[0].imshow(gray, cmap="gray", vmin=0.0, vmax=1.0)
  axes[0].set_title("frame")
  axes[1].imshow(shown)
  axes[1].set_title("saliency")
  if mask is not None:
    axes[1].contour(mask, levels=[0.5], colors="cyan", linewidths=0.8)
    axes[2].imshow(gray, cmap="gray", vmin=0.0, vmax=1.0)
    axes[2].contour(mask, levels=[0.5], colors="cyan", linewidths=1.2)
    axes[2].set_title("ground-truth region")
  for axis in axes:
    axis.set_axis_off()
  if title:
    figure.suptitle(title)
  figure.tight_layout()
  _parent(path)
  figure.savefig(path, format="png")
