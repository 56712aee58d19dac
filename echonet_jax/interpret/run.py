"""Saliency mode: maps, occlusion changes and localisation scores for a trained model.

For each video (``num_videos`` of a cache split, and any DICOM files given) and each task of the model,
writes ``WORKDIR/saliency/<split or "inputs">/<video_id>/`` (``.../<video_id>/<task>/`` for a multi-task
model):

* ``maps.npz``: ``maps`` (T, S, S) float32, the signed per-frame maps; ``mean_map`` (S, S) float32, the
  mean over frames of ``|maps|``; ``frames`` uint8 (T, S, S); ``frame_outputs`` (T,) float32; and, for
  cache videos with ground truth, ``masks`` uint16 (T, S, S) and ``mask_names``;
* ``panel.png``: titled (task, video, prediction, label, method, checkpoint step): the video's
  representative frame (the frame whose output is closest to the video's prediction), ``mean_map``
  with a colour bar in the explained unit, and the overlay, each upsampled to >= 512 px;
* ``overlay.png``: ``mean_map`` over the representative frame alone, at the same size;
* ``saliency.gif``: the per-frame maps over the frames, one clip level for all frames;

for a clip model (R(2+1)D) these describe the video's first covering clip, one map per clip frame, plus
``clip_panel.png`` (every frame with its map); ``prediction`` stays the mean over the covering clips (see
``interpret/clips.py``);

``WORKDIR/saliency/summary.png`` (one sheet: every video's overlay, captioned), and
``WORKDIR/saliency/scores.json`` (checkpoint_step, per video and averaged): predictions; for cache videos whose
records carry ground-truth masks, the localisation score of every region (per frame, then averaged over
the frames where the region is present) and the prediction before and after occluding each region (fill:
the normalised black of the masked background, ``normalization.BLACK``).

What is explained: the logit for a binary task; the output in the task's unit (mL, %, kg...) for a
regression task. The channel dimension is summed, which for a grey image repeated into C channels is
exactly the attribution of the grey value. Frames are mapped with ``jax.vmap`` (or ``lax.map`` in
``frames_per_batch`` groups when memory demands), in one jitted program per task.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from typing import Any
from typing import Callable
from typing import Iterable
from typing import Sequence

import cv2
import jax
import ml_collections
import numpy as np

from echonet_jax import tasks as tasks_lib
from echonet_jax.data import augment
from echonet_jax.data import cache
from echonet_jax.data import normalization
from echonet_jax.data import prepare
from echonet_jax.data import selection
from echonet_jax.data import video as video_lib
from echonet_jax.errors import ConfigError
from echonet_jax.evaluation import inference
from echonet_jax.interpret import clips
from echonet_jax.interpret import maps
from echonet_jax.interpret import scores
from echonet_jax.interpret import viz
from echonet_jax.training import restore
from echonet_jax.training import writers

# --------------------------------------------------------------------------------------------------
# Files.


def safe_name(name: str) -> str:
  """A video id made safe as a folder name."""
  cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("._")
  return cleaned or "video"


def write_video(out_dir: str, frames: np.ndarray, maps: np.ndarray, frame_outputs: np.ndarray,
                masks: np.ndarray | None = None, mask_names: Sequence[str] = (),
                fps: float = 10.0, title: str | None = None, unit: str = "") -> dict[str, str]:
  """maps.npz, panel.png, overlay.png and saliency.gif of one video; returns their paths.

  ``panel.png``: the representative frame, its mean map with a colour bar (``unit``) and the overlay,
  under ``title``, each at least ``viz.PANEL_PX`` px; ``overlay.png`` the overlay alone, upsampled
  to the same size.
  """
  os.makedirs(out_dir, exist_ok=True)
  maps = np.asarray(maps, np.float32)
  mean_map = np.abs(maps).mean(0)
  arrays = dict(maps=maps, mean_map=mean_map, frames=np.asarray(frames, np.uint8),
                frame_outputs=np.asarray(frame_outputs, np.float32))
  if masks is not None:
    arrays.update(masks=np.asarray(masks, np.uint16), mask_names=np.asarray(list(mask_names)))
  paths = {name: os.path.join(out_dir, file) for name, file in (
      ("maps", "maps.npz"), ("panel", "panel.png"), ("overlay", "overlay.png"),
      ("gif", "saliency.gif"))}
  np.savez_compressed(paths["maps"], **arrays)
  frame = frames[scores.representative_frame(frame_outputs)]
  size = max(viz.PANEL_PX, frame.shape[-1])
  heat = np.clip(viz.upsample(viz.to_display_map(mean_map), size), 0.0, 1.0)
  viz.save_png(paths["overlay"], viz.overlay(np.clip(viz.upsample(frame / 255.0, size), 0, 1), heat))
  viz.panel(paths["panel"], frame, mean_map, title=title, unit=unit)
  viz.save_gif(paths["gif"], viz.video_overlays(frames, maps), fps=fps)
  return paths


def panel_from_npz(npz_path: str, region: str | None, out_png: str, title: str | None = None,
                   unit: str = "") -> None:
  """``viz.panel`` of a saved video: the mean map on its representative frame, ``region`` outlined."""
  with np.load(npz_path) as data:
    frames, mean_map, outputs = data["frames"], data["mean_map"], data["frame_outputs"]
    t = scores.representative_frame(outputs)
    mask = None
    if region is not None:
      if "masks" not in data:
        raise ValueError(f"{npz_path}: no ground-truth masks to outline {region!r}")
      regions = scores.region_masks(data["masks"][t:t + 1], [str(n) for n in data["mask_names"]])
      if region not in regions:
        raise ValueError(f"{npz_path}: no region {region!r}; have {sorted(regions)}")
      mask = regions[region][0]
  viz.panel(out_png, frames[t], mean_map, mask=mask, title=title, unit=unit)


def _resize_masks(masks: np.ndarray, size: int) -> np.ndarray:
  if masks.shape[-1] == size:
    return masks
  return np.stack([cv2.resize(m, (size, size), interpolation=cv2.INTER_NEAREST) for m in masks])


# --------------------------------------------------------------------------------------------------
# The driver.


@dataclasses.dataclass
class Video:
  """One clip to explain: uint8 frames at the model's size, optional ground truth."""

  source: str  # the split, or "inputs"
  video_id: str
  frames: np.ndarray  # uint8 (T, S, S)
  labels: dict[str, float] = dataclasses.field(default_factory=dict)
  masks: np.ndarray | None = None  # uint16 (T, S, S)
  path: str = ""
  quality: str = ""  # the sector quality flag of an input file ("ok" or a reason)


def split_videos(cache_dir: str, split: str, names: Sequence[str], views: Sequence[str] | None,
                 size: int, num_videos: int, video_ids: Sequence[str] = ()) -> Iterable[Video]:
  """The first ``num_videos`` videos of a cache split with a label for one of ``names`` (or the
  ``video_ids`` ones), frames (and masks) at ``size``."""
  wanted = set(video_ids)
  found = set()
  count = 0
  for record in selection.records(cache_dir, split, tasks=names, views=views):
    video_id = str(record.get("video_id", ""))
    if wanted and video_id not in wanted:
      continue
    if not wanted and count >= num_videos:
      break
    frames = np.stack([augment.resize(f, size) for f in record["frames"]])
    masks = record.get("masks")
    yield Video(source=split, video_id=video_id, frames=frames,
                labels={k: float(v) for k, v in record.get("labels", {}).items() if k in names},
                masks=None if masks is None else _resize_masks(np.asarray(masks), size))
    found.add(video_id)
    count += 1
  missing = sorted(wanted - found)
  if missing:
    raise ConfigError(f"{cache_dir}: split {split!r} has no labelled video {missing}")


def input_videos(paths: Sequence[str], data: ml_collections.ConfigDict, errors: list[dict[str, str]]
                 ) -> Iterable[Video]:
  """DICOM or AVI files (or folders), read as the model was trained; any failure to read one becomes
  its row in ``errors`` (type and reason, see ``inference.input_error``) and the others go on."""
  used: set[str] = set()
  for path in video_lib.list_files(paths):
    try:
      clip = video_lib.read_for_model(path, data)
    except Exception as e:  # pylint: disable=broad-except
      errors.append({"path": path, **inference.input_error(e, "reading")})
      continue
    stem = safe_name(os.path.splitext(os.path.basename(path))[0])
    video_id, k = stem, 1
    while video_id in used:
      k += 1
      video_id = f"{stem}_{k}"
    used.add(video_id)
    yield Video(source="inputs", video_id=video_id, frames=clip.frames, path=path,
                quality=inference.clip_quality(clip))


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


def _panel_title(name: str, video: Video, prediction: float, label: float | None,
                 settings: maps.Settings, step: int) -> str:
  task = tasks_lib.get_task(name)
  what = "probability" if task.is_binary else task.name
  unit = "" if task.is_binary else task.unit
  return (f"{task.description}: {video.source}/{video.video_id}\n"
          f"predicted {what} {_value(prediction, unit)}, label {_value(label, unit)} · "
          f"{method_text(settings)} · checkpoint step {step}")


def _map_unit(name: str) -> str:
  task = tasks_lib.get_task(name)
  return "logit per input unit" if task.is_binary else f"{task.unit or 'output'} per input unit"


def explain(trained: restore.TrainedModel, videos: Iterable[Video], settings: maps.Settings,
            out_root: str, mask_names: Sequence[str] = (),
            thresholds: dict[str, dict[str, Any]] | None = None,
            progress: Callable[[str], None] | None = None,
            errors: list[dict[str, str]] | None = None,
            predict_fn: inference.PredictFn | None = None) -> list[dict[str, Any]]:
  """Maps, files and scores for each video and task; returns the per-video score rows.

  With an ``errors`` list, any exception while explaining one video becomes its row there (type and
  reason) and the other videos go on; without, it is raised. ``predict_fn`` defaults to the restored
  model's.
  """
  predict_fn = predict_fn or inference.batched_predict_fn(trained.eval_fn, trained.state,
                                                          trained.mesh)
  # A clip model explains each video's first covering clip.
  make_maps = maps.make_video_maps if inference.clip_spec(trained.config) is None else clips.make_clip_maps
  map_fns = {name: make_maps(trained.model, name, settings) for name in trained.names}
  base_key = jax.random.key(settings.seed)
  rows = []
  for index, video in enumerate(videos):
    try:
      rows += _explain_video(trained, predict_fn, map_fns, video, settings, out_root, mask_names,
                             thresholds or {}, jax.random.fold_in(base_key, index))
    except Exception as e:  # pylint: disable=broad-except
      if errors is None:
        raise
      errors.append({"source": video.source, "video_id": video.video_id,
                     **({"path": video.path} if video.path else {}),
                     **inference.input_error(e, "explaining")})
      continue
    if progress:
      progress(f"{video.source}/{video.video_id}")
  return rows


def _explain_video(trained: restore.TrainedModel, predict_fn: inference.PredictFn,
                   map_fns: dict[str, Callable[..., Any]], video: Video, settings: maps.Settings,
                   out_root: str, mask_names: Sequence[str], thresholds: dict[str, dict[str, Any]],
                   key: jax.Array) -> list[dict[str, Any]]:
  state = trained.state
  multitask = len(trained.names) > 1
  threshold_values = {k: v["threshold"] for k, v in thresholds.items()}
  channels = trained.config.data.channels
  images = normalization.to_images(video.frames, channels)
  clip = inference.clip_spec(trained.config)
  if clip is None:
    frame_outputs = video_outputs = predict_fn(images)
  else:  # the video's prediction is over its covering clips; the maps explain the first clip
    video_outputs = predict_fn(inference.model_inputs(images, clip))
    video = clips.first_clip(video, clip)
    images = normalization.to_images(video.frames, channels)[None]  # (1, T, S, S, C)
    # One output for the whole clip, shown on each of its frames.
    frame_outputs = {k: np.repeat(v, len(video.frames)) for k, v in predict_fn(images).items()}
  regions = scores.region_masks(video.masks, mask_names) if video.masks is not None else {}
  dilation = (settings.occlusion_dilation if settings.occlusion_dilation is not None
              else max(1, video.frames.shape[-1] // 24))
  occluded = (scores.occlusion_scores(predict_fn, images, regions, threshold_values, dilation)
              if regions else {})
  fan = scores.fan_mask(video.frames)
  rows = []
  for name in trained.names:
    video_maps = np.asarray(map_fns[name](state.params, state.batch_stats, state.label_mean[name],
                                          state.label_std[name],
                                          images if clip is None else images[0], key))
    if not np.isfinite(video_maps).all():
      raise FloatingPointError(f"non-finite saliency map for video {video.video_id!r}, task {name}")
    prediction = float(video_outputs[name].mean())
    label = video.labels.get(name, math.nan) if video.source != "inputs" else None
    out_dir = os.path.join(out_root, video.source, safe_name(video.video_id),
                           *((name,) if multitask else ()))
    files = write_video(out_dir, video.frames, video_maps, frame_outputs[name], video.masks,
                        mask_names, fps=settings.fps, unit=_map_unit(name),
                        title=_panel_title(name, video, prediction, label, settings, trained.step))
    if clip is not None:
      files["clip_panel"] = clips.write_panel(os.path.join(out_dir, "clip_panel.png"), video.frames,
                                              video_maps)
    row: dict[str, Any] = {
        "source": video.source, "video_id": video.video_id, "task": name,
        "prediction": prediction, "label": label,
        "representative_frame": scores.representative_frame(frame_outputs[name]),
        "files": {k: os.path.relpath(v, out_root) for k, v in files.items()}}
    if video.path:
      row.update(path=video.path, quality=video.quality)
    if regions:
      row["localisation"] = {r: scores.localisation(video_maps, m, fan) for r, m in regions.items()}
      row["occlusion"] = {r: dict(s, **({"threshold": threshold_values[name]}
                                        if name in threshold_values else {}))
                          for r, s in occluded[name].items()}
    rows.append(row)
  return rows


def write_summary_sheet(out_root: str, rows: Sequence[dict[str, Any]], settings: maps.Settings,
                        step: int, max_tiles: int = 24) -> str | None:
  """``OUT_ROOT/summary.png``: every explained video and task (the first ``max_tiles``) on one sheet."""
  tiles = []
  for row in rows[:max_tiles]:
    with np.load(os.path.join(out_root, row["files"]["maps"])) as data:
      frame = data["frames"][row["representative_frame"]]
      mean_map = data["mean_map"]
    task = tasks_lib.get_task(row["task"])
    unit = "" if task.is_binary else task.unit
    caption = (f"{row['source']}/{row['video_id']} · {row['task']}\n"
               f"pred {_value(row['prediction'], unit)}, label {_value(row['label'], unit)}")
    tiles.append((frame, mean_map, caption))
  if not tiles:
    return None
  path = os.path.join(out_root, "summary.png")
  shown = f" (first {max_tiles} of {len(rows)})" if len(rows) > max_tiles else ""
  viz.summary_sheet(path, tiles, title=f"Saliency{shown}: {method_text(settings)}, mean |map| over "
                    f"the frames on the representative frame · checkpoint step {step}")
  return path


def run(config: ml_collections.ConfigDict | None, workdir: str, split: str | None,
        inputs: Sequence[str] = ()) -> dict[str, Any]:
  """``--mode=saliency``: explains ``num_videos`` of ``split`` (skipped when ``split`` is None or
  empty) and the DICOM ``inputs``; writes WORKDIR/saliency/ and returns the scores.json content.

  The saliency knobs come from ``config.saliency`` (the saved config's when ``config`` is None); the
  data geometry and model always from the workdir's saved config. An input that fails in any way is an
  ``errors`` row; the others are explained.
  """
  trained = restore.load(workdir)
  saved = trained.config
  settings = maps.Settings.from_config((config if config is not None else saved).get("saliency"))
  if not split and not inputs:
    raise ConfigError("saliency needs a split or --input DICOM files")
  out_root = os.path.join(workdir, "saliency")
  rows: list[dict[str, Any]] = []
  errors: list[dict[str, str]] = []
  mask_names: list[str] = []
  thresholds: dict[str, dict[str, Any]] = {}
  log = lambda message: print(f"saliency: {message}", flush=True)
  log(f"checkpoint step {trained.step} of {workdir}")
  predict_fn = inference.batched_predict_fn(trained.eval_fn, trained.state, trained.mesh)
  if split:
    cache_dir = prepare.prepare_cache(saved)
    mask_names = list(cache.read_meta(cache_dir).get("mask_names") or [])
    if mask_names:
      thresholds = scores.binary_thresholds(trained, cache_dir, predict_fn)
    videos = split_videos(cache_dir, split, trained.names, tuple(saved.data.views) or None,
                          saved.data.image_size, settings.num_videos, settings.video_ids)
    rows += explain(trained, videos, settings, out_root, mask_names, thresholds, progress=log,
                    errors=errors, predict_fn=predict_fn)
  if inputs:
    rows += explain(trained, input_videos(inputs, saved.data, errors), settings, out_root,
                    progress=log, errors=errors, predict_fn=predict_fn)
  summary_png = write_summary_sheet(out_root, rows, settings, trained.step)
  result = {
      "checkpoint_step": trained.step, "tasks": list(trained.names),
      "settings": dataclasses.asdict(settings),
      "explained": {n: "logit" if tasks_lib.get_task(n).is_binary else
                    f"output in {tasks_lib.get_task(n).unit or 'task units'}" for n in trained.names},
      "mask_names": mask_names, "thresholds": thresholds, "summary": scores.summarise(rows),
      "summary_png": summary_png and os.path.relpath(summary_png, out_root), "videos": rows,
      "errors": errors}
  result = writers.json_safe(result)
  os.makedirs(out_root, exist_ok=True)
  path = os.path.join(out_root, "scores.json")
  with open(path, "w") as f:
    json.dump(result, f, indent=1)
  log(f"wrote {len(rows)} maps and {path}" + (f"; {len(errors)} inputs failed" if errors else ""))
  return result
