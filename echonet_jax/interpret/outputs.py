"""The files of saliency mode: one video's maps and pictures, the summary sheet, their titles.

Per video (and task): ``maps.npz``, ``panel.png``, ``overlay.png`` and ``saliency.gif`` (see
:mod:`~echonet_jax.interpret.run` for what they hold); ``summary.png``: every video's overlay on one
sheet. Titles name the task, the video, the prediction and label in the task's unit, the method and
the checkpoint step.
"""

from __future__ import annotations

import math
import os
from typing import Any
from typing import Sequence

import numpy as np

from echonet_jax import tasks as tasks_lib
from echonet_jax.interpret import maps
from echonet_jax.interpret import scores
from echonet_jax.interpret import sources
from echonet_jax.interpret import viz


def write_video(
    out_dir: str,
    frames: np.ndarray,
    maps: np.ndarray,
    frame_outputs: np.ndarray,
    masks: np.ndarray | None = None,
    mask_names: Sequence[str] = (),
    fps: float = 10.0,
    title: str | None = None,
    unit: str = "",
) -> dict[str, str]:
  """maps.npz, panel.png, overlay.png and saliency.gif of one video; returns their paths.

  ``panel.png``: the representative frame, its mean map with a colour bar (``unit``) and the overlay,
  under ``title``, each at least ``viz.PANEL_PX`` px; ``overlay.png`` the overlay alone, upsampled
  to the same size.
  """
  os.makedirs(out_dir, exist_ok=True)
  maps = np.asarray(maps, np.float32)
  mean_map = np.abs(maps).mean(0)
  arrays = dict(
      maps=maps,
      mean_map=mean_map,
      frames=np.asarray(frames, np.uint8),
      frame_outputs=np.asarray(frame_outputs, np.float32),
  )
  if masks is not None:
    arrays.update(masks=np.asarray(masks, np.uint16), mask_names=np.asarray(list(mask_names)))
  paths = {
      name: os.path.join(out_dir, file)
      for name, file in (
          ("maps", "maps.npz"),
          ("panel", "panel.png"),
          ("overlay", "overlay.png"),
          ("gif", "saliency.gif"),
      )
  }
  np.savez_compressed(paths["maps"], **arrays)
  frame = frames[scores.representative_frame(frame_outputs)]
  size = max(viz.PANEL_PX, frame.shape[-1])
  heat = np.clip(viz.upsample(viz.to_display_map(mean_map), size), 0.0, 1.0)
  viz.save_png(
      paths["overlay"], viz.overlay(np.clip(viz.upsample(frame / 255.0, size), 0, 1), heat)
  )
  viz.panel(paths["panel"], frame, mean_map, title=title, unit=unit)
  viz.save_gif(paths["gif"], viz.video_overlays(frames, maps), fps=fps)
  return paths


def panel_from_npz(
    npz_path: str, region: str | None, out_png: str, title: str | None = None, unit: str = ""
) -> None:
  """``viz.panel`` of a saved video: the mean map on its representative frame, ``region`` outlined."""
  with np.load(npz_path) as data:
    frames, mean_map, outputs = data["frames"], data["mean_map"], data["frame_outputs"]
    t = scores.representative_frame(outputs)
    mask = None
    if region is not None:
      if "masks" not in data:
        raise ValueError(f"{npz_path}: no ground-truth masks to outline {region!r}")
      regions = scores.region_masks(data["masks"][t : t + 1], [str(n) for n in data["mask_names"]])
      if region not in regions:
        raise ValueError(f"{npz_path}: no region {region!r}; have {sorted(regions)}")
      mask = regions[region][0]
  viz.panel(out_png, frames[t], mean_map, mask=mask, title=title, unit=unit)


def method_text(settings: maps.Settings) -> str:
  """How the maps were made, for figure titles."""
  if settings.method == "smoothgrad":
    jitter = f", {settings.jitter}×{settings.jitter} px jitter" if settings.jitter > 1 else ""
    return f"SmoothGrad ({settings.num_samples} samples, noise {settings.noise_frac:g}{jitter})"
  if settings.method == "integrated_gradients":
    return f"Integrated Gradients ({settings.ig_steps} steps)"
  return {"vanilla": "gradient", "occlusion": "occlusion"}[settings.method]


def _value(x: float | None, unit: str) -> str:
  if x is None or not math.isfinite(x):
    return "n/a"
  return f"{x:.3g} {unit}".strip().replace("-", "\u2212")


def panel_title(
    name: str,
    video: sources.Video,
    prediction: float,
    label: float | None,
    settings: maps.Settings,
    step: int,
) -> str:
  """A video's panel title: task, video, prediction and label in the task's unit, method, step."""
  task = tasks_lib.get_task(name)
  what = "probability" if task.is_binary else task.name
  unit = "" if task.is_binary else task.unit
  return (
      f"{task.description}: {video.source}/{video.video_id}\n"
      f"predicted {what} {_value(prediction, unit)}, label {_value(label, unit)} · "
      f"{method_text(settings)} · checkpoint step {step}"
  )


def map_unit(name: str) -> str:
  """The unit of a task's maps, for the colour bar: what is explained per input unit."""
  task = tasks_lib.get_task(name)
  return "logit per input unit" if task.is_binary else f"{task.unit or 'output'} per input unit"


def write_summary_sheet(
    out_root: str,
    rows: Sequence[dict[str, Any]],
    settings: maps.Settings,
    step: int,
    max_tiles: int = 24,
) -> str | None:
  """``OUT_ROOT/summary.png``: every explained video and task (the first ``max_tiles``) on one sheet."""
  tiles = []
  for row in rows[:max_tiles]:
    with np.load(os.path.join(out_root, row["files"]["maps"])) as data:
      frame = data["frames"][row["representative_frame"]]
      mean_map = data["mean_map"]
    task = tasks_lib.get_task(row["task"])
    unit = "" if task.is_binary else task.unit
    caption = (
        f"{row['source']}/{row['video_id']} · {row['task']}\n"
        f"pred {_value(row['prediction'], unit)}, label {_value(row['label'], unit)}"
    )
    tiles.append((frame, mean_map, caption))
  if not tiles:
    return None
  path = os.path.join(out_root, "summary.png")
  shown = f" (first {max_tiles} of {len(rows)})" if len(rows) > max_tiles else ""
  viz.summary_sheet(
      path,
      tiles,
      title=f"Saliency{shown}: {method_text(settings)}, mean |map| over "
      f"the frames on the representative frame · checkpoint step {step}",
  )
  return path
