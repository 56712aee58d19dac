"""Saliency mode: maps, occlusion changes and localisation scores for a trained model.

For each video (``num_videos`` of a cache split, and any DICOM files given) and each task of the model,
writes ``WORKDIR/saliency/<split or "inputs">/<video_id>/`` (``.../<video_id>/<task>/`` for a multi-task
model):

* ``maps.npz``: ``maps`` (T, S, S) float32, the signed per-frame maps; ``mean_map`` (S, S) float32, the
  mean over frames of ``|maps|``; ``frames`` uint8 (T, S, S); ``frame_outputs`` (T,) float32; and, for
  cache videos with ground truth, ``masks`` uint16 (T, S, S) and ``mask_names``;
* ``overlay.png``: ``mean_map`` over the video's representative frame (the frame whose output is
  closest to the video's prediction);
* ``saliency.gif``: the per-frame maps over the frames, one clip level for all frames;

and ``WORKDIR/saliency/scores.json`` (per video and averaged): predictions; for cache videos whose
records carry ground-truth masks, the localisation score of every region (per frame, then averaged over
the frames where the region is present) and the prediction before and after occluding each region (fill:
the normalised black of the masked background, ``pipeline.BLACK``).

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
from typing import Any, Callable, Iterable, Sequence

import jax
import ml_collections
import numpy as np

import cv2

from echonet_jax import tasks as tasks_lib
from echonet_jax.data import augment
from echonet_jax.data import cache
from echonet_jax.data import video as video_lib
from echonet_jax.data import pipeline
from echonet_jax.data import prepare
from echonet_jax.errors import ConfigError, EchoReadError
from echonet_jax.evaluation import inference
from echonet_jax.evaluation import metrics
from echonet_jax.evaluation import reports
from echonet_jax.interpret import maps
from echonet_jax.interpret import scores
from echonet_jax.interpret import viz
from echonet_jax.training import restore
from echonet_jax.training import writers

def binary_thresholds(trained: Any, cache_dir: str | None) -> dict[str, dict[str, Any]]:
  """{binary task: {"threshold", "source"}}: the validation F1 threshold.

  Read from WORKDIR/eval/val[/<task>]/metrics.json when evaluate mode has run, else chosen on the
  validation split's video predictions (max F1); 0.5 when neither is possible.
  """

  names = [n for n in trained.names if tasks_lib.get_task(n).is_binary]
  out: dict[str, dict[str, Any]] = {}
  pending = []
  for name in names:
    sub = ("val", name) if len(trained.names) > 1 else ("val",)
    path = os.path.join(trained.workdir, "eval", *sub, "metrics.json")
    try:
      out[name] = {"threshold": reports.read_threshold(path), "source": path}
    except (OSError, ValueError):
      pending.append(name)
  if pending and cache_dir is not None:
    try:
      pred = inference.predict_split(trained, cache_dir, "val")
    except ValueError:
      pred = None
    for name in list(pending):
      if pred is None:
        break
      labels = pred["labels"][name]
      probs = reports.video_predictions(pred["frame_outputs"][name])
      keep = ~np.isnan(labels)
      threshold, _ = metrics.best_f1_threshold(labels[keep], probs[keep])
      if math.isfinite(threshold):
        out[name] = {"threshold": threshold, "source": "val split, max F1"}
        pending.remove(name)
  for name in pending:
    out[name] = {"threshold": 0.5, "source": "0.5 (no validation threshold)"}
  return out


# --------------------------------------------------------------------------------------------------
# Files.


def safe_name(name: str) -> str:
  """A video id made safe as a folder name."""
  cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("._")
  return cleaned or "video"


def write_video(out_dir: str, frames: np.ndarray, maps: np.ndarray, frame_outputs: np.ndarray,
                masks: np.ndarray | None = None, mask_names: Sequence[str] = (),
                fps: float = 10.0) -> dict[str, str]:
  """maps.npz, overlay.png and saliency.gif of one video; returns their paths."""
  os.makedirs(out_dir, exist_ok=True)
  maps = np.asarray(maps, np.float32)
  mean_map = np.abs(maps).mean(0)
  arrays = dict(maps=maps, mean_map=mean_map, frames=np.asarray(frames, np.uint8),
                frame_outputs=np.asarray(frame_outputs, np.float32))
  if masks is not None:
    arrays.update(masks=np.asarray(masks, np.uint16), mask_names=np.asarray(list(mask_names)))
  paths = {"maps": os.path.join(out_dir, "maps.npz"), "overlay": os.path.join(out_dir, "overlay.png"),
           "gif": os.path.join(out_dir, "saliency.gif")}
  np.savez_compressed(paths["maps"], **arrays)
  frame = frames[scores.representative_frame(frame_outputs)]
  viz.save_png(paths["overlay"], viz.overlay(frame, viz.to_display_map(mean_map)))
  viz.save_gif(paths["gif"], viz.video_overlays(frames, maps), fps=fps)
  return paths


def panel_from_npz(npz_path: str, region: str | None, out_png: str, title: str | None = None) -> None:
  """``viz.panel`` of a saved video: the mean map on its representative frame, beside ``region``."""
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
  viz.panel(out_png, frames[t], viz.to_display_map(mean_map), mask=mask, title=title)


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


def split_videos(cache_dir: str, split: str, names: Sequence[str], views: Sequence[str] | None,
                 size: int, num_videos: int, video_ids: Sequence[str] = ()) -> Iterable[Video]:
  """The first ``num_videos`` videos of a cache split with a label for one of ``names`` (or the
  ``video_ids`` ones), frames (and masks) at ``size``."""
  wanted = set(video_ids)
  found = set()
  count = 0
  for record in pipeline.records(cache_dir, split, tasks=names, views=views):
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
  """DICOM or AVI files (or folders), read as the model was trained; failures go to ``errors``."""
  used: set[str] = set()
  for path in video_lib.list_files(paths):
    try:
      clip = video_lib.read_for_model(path, data)
    except EchoReadError as e:
      errors.append({"path": path, "error_type": type(e).__name__, "error": e.reason})
      continue
    stem = safe_name(os.path.splitext(os.path.basename(path))[0])
    video_id, k = stem, 1
    while video_id in used:
      k += 1
      video_id = f"{stem}_{k}"
    used.add(video_id)
    yield Video(source="inputs", video_id=video_id, frames=clip.frames, path=path)


def explain(trained: Any, videos: Iterable[Video], settings: maps.Settings, out_root: str,
            mask_names: Sequence[str] = (), thresholds: dict[str, dict[str, Any]] | None = None,
            progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
  """Maps, files and scores for each video and task; returns the per-video score rows."""
  c = trained.config
  state = trained.state
  multitask = len(trained.names) > 1
  thresholds = thresholds or {}
  threshold_values = {k: v["threshold"] for k, v in thresholds.items()}
  map_fns = {name: maps.make_video_maps(trained.model, name, settings) for name in trained.names}
  base_key = jax.random.key(settings.seed)
  rows = []
  for index, video in enumerate(videos):
    images = pipeline.to_images(video.frames, c.data.channels)
    frame_outputs = inference.predict_images(trained, images)
    regions = scores.region_masks(video.masks, mask_names) if video.masks is not None else {}
    dilation = (settings.occlusion_dilation if settings.occlusion_dilation is not None
                else max(1, video.frames.shape[-1] // 24))
    occluded = scores.occlusion_scores(trained, images, regions, threshold_values, dilation) if regions else {}
    fan = scores.fan_mask(video.frames)
    key = jax.random.fold_in(base_key, index)
    for name in trained.names:
      video_maps = np.asarray(map_fns[name](state.params, state.batch_stats, state.label_mean[name],
                                      state.label_std[name], images, key))
      if not np.isfinite(video_maps).all():
        raise FloatingPointError(f"non-finite saliency map for video {video.video_id!r}, task {name}")
      out_dir = os.path.join(out_root, video.source, safe_name(video.video_id),
                             *((name,) if multitask else ()))
      files = write_video(out_dir, video.frames, video_maps, frame_outputs[name], video.masks, mask_names,
                          fps=settings.fps)
      row: dict[str, Any] = {
          "source": video.source, "video_id": video.video_id, "task": name,
          "prediction": float(frame_outputs[name].mean()),
          "label": video.labels.get(name, math.nan) if video.source != "inputs" else None,
          "representative_frame": scores.representative_frame(frame_outputs[name]),
          "files": {k: os.path.relpath(v, out_root) for k, v in files.items()}}
      if video.path:
        row["path"] = video.path
      if regions:
        row["localisation"] = {r: scores.localisation(video_maps, m, fan) for r, m in regions.items()}
        row["occlusion"] = {r: dict(s, **({"threshold": threshold_values[name]}
                                          if name in threshold_values else {}))
                            for r, s in occluded[name].items()}
      rows.append(row)
    if progress:
      progress(f"{video.source}/{video.video_id}")
  return rows


def run(config: ml_collections.ConfigDict | None, workdir: str, split: str | None,
        inputs: Sequence[str] = ()) -> dict[str, Any]:
  """``--mode=saliency``: explains ``num_videos`` of ``split`` (skipped when ``split`` is None or
  empty) and the DICOM ``inputs``; writes WORKDIR/saliency/ and returns the scores.json content.

  The saliency knobs come from ``config.saliency`` (the saved config's when ``config`` is None); the
  data geometry and model always from the workdir's saved config.
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
  if split:
    cache_dir = prepare.prepare_cache(saved)
    mask_names = list(cache.read_meta(cache_dir).get("mask_names") or [])
    if mask_names:
      thresholds = binary_thresholds(trained, cache_dir)
    videos = split_videos(cache_dir, split, trained.names, tuple(saved.data.views) or None,
                          saved.data.image_size, settings.num_videos, settings.video_ids)
    rows += explain(trained, videos, settings, out_root, mask_names, thresholds, progress=log)
  if inputs:
    rows += explain(trained, input_videos(inputs, saved.data, errors), settings, out_root,
                    progress=log)
  result = {
      "workdir_step": trained.step, "tasks": list(trained.names), "settings": dataclasses.asdict(settings),
      "explained": {n: "logit" if tasks_lib.get_task(n).is_binary else
                    f"output in {tasks_lib.get_task(n).unit or 'task units'}" for n in trained.names},
      "mask_names": mask_names, "thresholds": thresholds, "summary": scores.summarise(rows), "videos": rows,
      "errors": errors}
  result = writers.json_safe(result)
  os.makedirs(out_root, exist_ok=True)
  path = os.path.join(out_root, "scores.json")
  with open(path, "w") as f:
    json.dump(result, f, indent=1)
  log(f"wrote {len(rows)} maps and {path}" + (f"; {len(errors)} inputs failed" if errors else ""))
  return result
