"""Pictures of saliency maps: display maps, colour overlays, PNG/GIF files, titled panels, summary sheets.

Array in, file out. Arrays may be numpy or jax; everything here runs in numpy on the host.
"""

from __future__ import annotations

import os
from typing import Sequence

import cv2
import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
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
    raise ValueError(
        f"video saliency must be (T, H, W) or (T, H, W, C), got shape {np.shape(saliency)}"
    )
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


def overlay(
    frame: np.ndarray, heat01: np.ndarray, cmap: str = "inferno", alpha: float = 0.6
) -> np.ndarray:
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


def video_overlays(
    frames: np.ndarray,
    saliency: np.ndarray,
    cmap: str = "inferno",
    alpha: float = 0.6,
    percentile: float = 99.0,
) -> np.ndarray:
  """Overlays for a clip: ``frames`` (T, H, W[, C]) and ``saliency`` (T, H, W[, C]) → uint8 (T, H, W, 3)."""
  heats = video_display_maps(saliency, percentile)
  if len(frames) != len(heats):
    raise ValueError(f"{len(frames)} frames but {len(heats)} saliency maps")
  return np.stack([overlay(frame, heat, cmap, alpha) for frame, heat in zip(frames, heats)])


def _check_rgb(rgb: np.ndarray, what: str) -> np.ndarray:
  rgb = np.asarray(rgb)
  if (
      rgb.dtype != np.uint8
      or rgb.ndim not in (2, 3)
      or (rgb.ndim == 3 and rgb.shape[-1] not in (3, 4))
  ):
    raise ValueError(
        f"{what} must be uint8 (H, W), (H, W, 3) or (H, W, 4), got {rgb.dtype} {rgb.shape}"
    )
  return rgb


def _parent(path: str | os.PathLike) -> None:
  os.makedirs(os.path.dirname(os.fspath(path)) or ".", exist_ok=True)


def save_png(path: str | os.PathLike, rgb: np.ndarray) -> None:
  """Write a uint8 image (H, W[, 3|4]) as PNG, creating parent folders."""
  image = Image.fromarray(_check_rgb(rgb, f"image for {path}"))
  _parent(path)
  image.save(path, format="PNG")


def save_gif(
    path: str | os.PathLike, rgb_frames: Sequence[np.ndarray] | np.ndarray, fps: float = 10.0
) -> None:
  """Write uint8 frames (T, H, W[, 3]) as an animated GIF that loops forever."""
  if len(rgb_frames) == 0:
    raise ValueError(f"no frames to write to {path}")
  if fps <= 0:
    raise ValueError(f"fps must be positive, got {fps}")
  images = [
      Image.fromarray(_check_rgb(frame, f"frame {i} for {path}"))
      for i, frame in enumerate(rgb_frames)
  ]
  _parent(path)
  images[0].save(
      path,
      format="GIF",
      save_all=True,
      append_images=images[1:],
      loop=0,
      duration=int(round(1000.0 / fps)),
      optimize=False,
  )


PANEL_PX = 512  # the least side, in pixels, of each image in a saved panel (upsampled)


def upsample(image: np.ndarray, size: int, smooth: bool = True) -> np.ndarray:
  """``image`` (H, W[, C]) resized to (size, size): bicubic (``smooth``) or nearest; float32."""
  image = np.asarray(image, np.float32)
  interpolation = cv2.INTER_CUBIC if smooth else cv2.INTER_NEAREST
  return cv2.resize(image, (size, size), interpolation=interpolation)


def _new_figure(width_in: float, height_in: float, dpi: int):
  figure = Figure(figsize=(width_in, height_in), dpi=dpi, layout="constrained")
  FigureCanvasAgg(figure)
  return figure


def _save_figure(
    figure: Figure, axes, path: str | os.PathLike, title: str | None, fontsize: int
) -> Figure:
  """Hides the axes' frames, adds ``title`` (when given) and saves ``figure`` as a PNG at ``path``."""
  for axis in axes:
    axis.set_axis_off()
  if title:
    figure.suptitle(title, fontsize=fontsize)
  _parent(path)
  figure.savefig(path, format="png")
  return figure


def panel(
    path: str | os.PathLike,
    frame: np.ndarray,
    saliency_map: np.ndarray,
    mask: np.ndarray | None = None,
    title: str | None = None,
    unit: str = "",
    cmap: str = "inferno",
    alpha: float = 0.6,
    percentile: float = 99.0,
    panel_px: int = PANEL_PX,
    dpi: int = 100,
) -> Figure:
  """Save a titled figure: the frame | the map with a colour bar | the map over the frame.

  ``saliency_map`` (H, W) is shown as |map| in its own unit (``unit`` labels the colour bar), clipped at
  its ``percentile``. Every image is upsampled to ``panel_px`` (≥ 512 px by default) and drawn at
  least that large. With a ground-truth ``mask`` (H, W) its outline is drawn on the overlay.
  Returns the figure.
  """
  gray = _gray01(frame)
  heat = np.abs(np.asarray(saliency_map, np.float32))
  if heat.ndim == 3:
    heat = heat.sum(-1)
  if heat.shape != gray.shape:
    raise ValueError(f"saliency map shape {heat.shape} does not match frame shape {gray.shape}")
  top = float(np.percentile(heat, percentile))
  heat01 = _clip_and_scale(heat, percentile)
  size = max(panel_px, gray.shape[0])
  big_gray = np.clip(upsample(gray, size), 0.0, 1.0)
  big_heat = np.clip(upsample(heat01, size), 0.0, 1.0)
  shown = overlay(big_gray, big_heat, cmap, alpha)
  side_in = size / dpi * 1.08  # axes a little larger than the image: it is never drawn smaller
  figure = _new_figure(3 * side_in + 1.3, side_in + (0.9 if title else 0.4), dpi)
  axes = figure.subplots(1, 3)
  axes[0].imshow(big_gray, cmap="gray", vmin=0.0, vmax=1.0)
  axes[0].set_title("frame")
  image = axes[1].imshow(big_heat * top, cmap=cmap, vmin=0.0, vmax=top if top > 0 else 1.0)
  axes[1].set_title(f"saliency, clipped at its {percentile:g}th percentile")
  bar = figure.colorbar(image, ax=axes[1], fraction=0.046, pad=0.02)
  bar.set_label(f"|saliency|{f' ({unit})' if unit else ''}")
  axes[2].imshow(shown)
  axes[2].set_title("saliency over the frame")
  if mask is not None:
    mask = np.asarray(mask).astype(np.float32)
    if mask.shape != gray.shape:
      raise ValueError(f"mask shape {mask.shape} does not match frame shape {gray.shape}")
    axes[2].contour(upsample(mask, size, smooth=False), levels=[0.5], colors="cyan", linewidths=1.2)
  return _save_figure(figure, axes, path, title, fontsize=13)


def summary_sheet(
    path: str | os.PathLike,
    tiles: Sequence[tuple[np.ndarray, np.ndarray, str]],
    title: str | None = None,
    columns: int = 4,
    tile_px: int = 320,
    dpi: int = 100,
) -> Figure:
  """One PNG of many videos: each tile (frame, map, caption) the map over the frame, captioned.

  Each map is clipped at its own 99th percentile (tiles show where, not how much).
  """
  if not tiles:
    raise ValueError(f"no videos for the summary sheet {path}")
  columns = max(1, min(columns, len(tiles)))
  rows = -(-len(tiles) // columns)
  side_in = tile_px / dpi
  figure = _new_figure(columns * side_in * 1.05, rows * (side_in * 1.05 + 0.45) + 0.5, dpi)
  axes = np.atleast_1d(figure.subplots(rows, columns)).reshape(-1)
  for axis, (frame, saliency_map, caption) in zip(axes, tiles):
    gray = _gray01(frame)
    heat = upsample(to_display_map(saliency_map), tile_px)
    axis.imshow(overlay(np.clip(upsample(gray, tile_px), 0, 1), np.clip(heat, 0, 1)))
    axis.set_title(caption, fontsize=9)
  return _save_figure(figure, axes, path, title, fontsize=12)
