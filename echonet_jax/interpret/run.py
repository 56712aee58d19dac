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

This module is the driver (:func:`explain` one video after another, :func:`run` the mode); the
videos come from :mod:`~echonet_jax.interpret.sources`, the files and titles from
:mod:`~echonet_jax.interpret.outputs`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any
from typing import Callable
from typing import Iterable
from typing import Sequence

import jax
import ml_collections
import numpy as np

from echonet_jax import tasks as tasks_lib
from echonet_jax import writers
from echonet_jax.data import cache
from echonet_jax.data import normalization
from echonet_jax.data import prepare
from echonet_jax.errors import ConfigError
from echonet_jax.evaluation import inference
from echonet_jax.interpret import clips
from echonet_jax.interpret import maps
from echonet_jax.interpret import outputs
from echonet_jax.interpret import scores
from echonet_jax.interpret import sources
from echonet_jax.training import restore


def explain(
    trained: restore.TrainedModel,
    videos: Iterable[sources.Video],
    settings: maps.Settings,
    out_root: str,
    mask_names: Sequence[str] = (),
    thresholds: dict[str, dict[str, Any]] | None = None,
    progress: Callable[[str], None] | None = None,
    errors: list[dict[str, str]] | None = None,
    predict_fn: inference.PredictFn | None = None,
) -> list[dict[str, Any]]:
  """Maps, files and scores for each video and task; returns the per-video score rows.

  With an ``errors`` list, any exception while explaining one video becomes its row there (type and
  reason) and the other videos go on; without, it is raised. ``predict_fn`` defaults to the restored
  model's.
  """
  predict_fn = predict_fn or inference.batched_predict_fn(
      trained.eval_fn, trained.state, trained.mesh
  )
  # A clip model explains each video's first covering clip.
  make_maps = (
      maps.make_video_maps if inference.clip_spec(trained.config) is None else clips.make_clip_maps
  )
  map_fns = {name: make_maps(trained.model, name, settings) for name in trained.names}
  base_key = jax.random.key(settings.seed)
  rows = []
  for index, video in enumerate(videos):
    try:
      rows += _explain_video(
          trained,
          predict_fn,
          map_fns,
          video,
          settings,
          out_root,
          mask_names,
          thresholds or {},
          jax.random.fold_in(base_key, index),
      )
    except Exception as e:  # pylint: disable=broad-except
      if errors is None:
        raise
      errors.append(
          {
              "source": video.source,
              "video_id": video.video_id,
              **({"path": video.path} if video.path else {}),
              **inference.input_error(e, "explaining"),
          }
      )
      continue
    if progress:
      progress(f"{video.source}/{video.video_id}")
  return rows


def _explain_video(
    trained: restore.TrainedModel,
    predict_fn: inference.PredictFn,
    map_fns: dict[str, Callable[..., Any]],
    video: sources.Video,
    settings: maps.Settings,
    out_root: str,
    mask_names: Sequence[str],
    thresholds: dict[str, dict[str, Any]],
    key: jax.Array,
) -> list[dict[str, Any]]:
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
  dilation = (
      settings.occlusion_dilation
      if settings.occlusion_dilation is not None
      else max(1, video.frames.shape[-1] // 24)
  )
  occluded = (
      scores.occlusion_scores(predict_fn, images, regions, threshold_values, dilation)
      if regions
      else {}
  )
  fan = scores.fan_mask(video.frames)
  rows = []
  for name in trained.names:
    video_maps = np.asarray(
        map_fns[name](
            state.params,
            state.batch_stats,
            state.label_mean[name],
            state.label_std[name],
            images if clip is None else images[0],
            key,
        )
    )
    if not np.isfinite(video_maps).all():
      raise FloatingPointError(f"non-finite saliency map for video {video.video_id!r}, task {name}")
    prediction = float(video_outputs[name].mean())
    label = video.labels.get(name, math.nan) if video.source != "inputs" else None
    out_dir = os.path.join(
        out_root, video.source, sources.safe_name(video.video_id), *((name,) if multitask else ())
    )
    files = outputs.write_video(
        out_dir,
        video.frames,
        video_maps,
        frame_outputs[name],
        video.masks,
        mask_names,
        fps=settings.fps,
        unit=outputs.map_unit(name),
        title=outputs.panel_title(name, video, prediction, label, settings, trained.step),
    )
    if clip is not None:
      files["clip_panel"] = clips.write_panel(
          os.path.join(out_dir, "clip_panel.png"), video.frames, video_maps
      )
    row: dict[str, Any] = {
        "source": video.source,
        "video_id": video.video_id,
        "task": name,
        "prediction": prediction,
        "label": label,
        "representative_frame": scores.representative_frame(frame_outputs[name]),
        "files": {k: os.path.relpath(v, out_root) for k, v in files.items()},
    }
    if video.path:
      row.update(path=video.path, quality=video.quality)
    if regions:
      row["localisation"] = {r: scores.localisation(video_maps, m, fan) for r, m in regions.items()}
      row["occlusion"] = {
          r: dict(s, **({"threshold": threshold_values[name]} if name in threshold_values else {}))
          for r, s in occluded[name].items()
      }
    rows.append(row)
  return rows


def run(
    config: ml_collections.ConfigDict | None,
    workdir: str,
    split: str | None,
    inputs: Sequence[str] = (),
) -> dict[str, Any]:
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
    cache_dir = prepare.prepare_cache(saved, load_view_predictor=restore.load_view_predictor)
    mask_names = list(cache.read_meta(cache_dir).get("mask_names") or [])
    if mask_names:
      thresholds = scores.binary_thresholds(trained, cache_dir, predict_fn)
    videos = sources.split_videos(
        cache_dir,
        split,
        trained.names,
        tuple(saved.data.views) or None,
        saved.data.image_size,
        settings.num_videos,
        settings.video_ids,
    )
    rows += explain(
        trained,
        videos,
        settings,
        out_root,
        mask_names,
        thresholds,
        progress=log,
        errors=errors,
        predict_fn=predict_fn,
    )
  if inputs:
    rows += explain(
        trained,
        sources.input_videos(inputs, saved.data, errors),
        settings,
        out_root,
        progress=log,
        errors=errors,
        predict_fn=predict_fn,
    )
  summary_png = outputs.write_summary_sheet(out_root, rows, settings, trained.step)
  result = {
      "checkpoint_step": trained.step,
      "tasks": list(trained.names),
      "settings": dataclasses.asdict(settings),
      "explained": {
          n: "logit"
          if tasks_lib.get_task(n).is_binary
          else f"output in {tasks_lib.get_task(n).unit or 'task units'}"
          for n in trained.names
      },
      "mask_names": mask_names,
      "thresholds": thresholds,
      "summary": scores.summarise(rows),
      "summary_png": summary_png and os.path.relpath(summary_png, out_root),
      "videos": rows,
      "errors": errors,
  }
  result = writers.json_safe(result)
  os.makedirs(out_root, exist_ok=True)
  path = os.path.join(out_root, "scores.json")
  with open(path, "w") as f:
    json.dump(result, f, indent=1)
  log(f"wrote {len(rows)} maps and {path}" + (f"; {len(errors)} inputs failed" if errors else ""))
  return result
