"""Saliency of a clip model (R(2+1)D): one map per frame of a clip, shown as a GIF and a panel.

A clip model's output depends on all frames of its clip at once, so the gradient with respect to the
clip (T, S, S, C) gives one (S, S) map per frame. Saliency mode explains each video's first covering
clip (``data.windows.covering_starts``; start 0): its frames, their ground-truth masks (for the
localisation scores) and the per-frame maps; the video's prediction stays the mean over all covering
clips, as in evaluation.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any
from typing import Callable

import jax
import numpy as np

from echonet_jax.data import windows
from echonet_jax.errors import ConfigError
from echonet_jax.interpret import maps
from echonet_jax.interpret import viz


def check_settings(settings: maps.Settings) -> None:
  """Occlusion maps slide a 2-D patch over one image; a clip model needs a gradient method."""
  if settings.method == "occlusion":
    raise ConfigError(
        "saliency.method='occlusion' maps single images; for a clip model use "
        "'smoothgrad', 'vanilla' or 'integrated_gradients'"
    )


def make_clip_maps(model: Any, name: str, settings: maps.Settings) -> Callable[..., jax.Array]:
  """Jitted ``maps(params, batch_stats, label_mean, label_std, clip, key) -> (T, S, S)``.

  ``clip`` is one normalised clip (T, S, S, C); the map of frame t is the (channel-summed)
  attribution of the clip's output to that frame.
  """
  check_settings(settings)

  def clip_maps(params, batch_stats, label_mean, label_std, clip, key):
    f = maps.task_fn(
        model, {"params": params, "batch_stats": batch_stats}, name, label_mean, label_std
    )
    return maps.frame_map(f, clip, key, settings)

  return jax.jit(clip_maps)


def first_clip(video: Any, spec: windows.ClipSpec) -> Any:
  """The video (``sources.Video``) cut to its first covering clip: frames and masks of those frames."""
  index = windows.clip_indices(0, spec) % len(video.frames)
  masks = None if video.masks is None else video.masks[index]
  return dataclasses.replace(video, frames=video.frames[index], masks=masks)


def write_panel(path: str, frames: np.ndarray, clip_maps: np.ndarray, columns: int = 8) -> str:
  """One PNG: every frame of the clip with its map overlaid, ``columns`` per row, time left to right.

  The maps share one colour scale (as in the GIF), so frames can be compared.
  """
  overlays = viz.video_overlays(frames, clip_maps)
  t, h, w, _ = overlays.shape
  columns = max(1, min(columns, t))
  rows = math.ceil(t / columns)
  sheet = np.zeros((rows * (h + 2), columns * (w + 2), 3), np.uint8)
  for i, image in enumerate(overlays):
    r, c = divmod(i, columns)
    sheet[r * (h + 2) + 1 : r * (h + 2) + 1 + h, c * (w + 2) + 1 : c * (w + 2) + 1 + w] = image
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  viz.save_png(path, sheet)
  return path
