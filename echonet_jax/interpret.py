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
the normalised black of the masked background, ``input_pipeline.BLACK``).

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
import jax.numpy as jnp
import ml_collections
import numpy as np

from echonet_jax import augment
from echonet_jax import inference
from echonet_jax import input_pipeline
from echonet_jax import saliency
from echonet_jax import tasks as tasks_lib
from echonet_jax import viz
from echonet_jax import writers
from echonet_jax.errors import ConfigError

METHODS = ("smoothgrad", "vanilla", "integrated_gradients", "occlusion")

# Unions of ground-truth regions also scored; a map on the LV cavity's border falls partly on the wall.
COMBINED_REGIONS = {"lv+myocardium": ("lv", "myocardium")}


@dataclasses.dataclass(frozen=True)
class Settings:
  """What to compute (``config.saliency``). ``None`` sizes pick defaults from the image size."""

  method: str = "smoothgrad"
  num_samples: int = 50
  noise_frac: float = 0.15
  ig_steps: int = 25
  chunk_size: int | None = None
  seed: int = 0
  num_videos: int = 4
  video_ids: tuple[str, ...] = ()  # explain these videos of the split instead of the first num_videos
  patch: int | None = None  # sliding-patch occlusion: patch side (default image_size // 12)
  stride: int | None = None  # and stride (default patch // 2)
  frames_per_batch: int | None = None  # lax.map over frames in groups of this many; None: vmap all
  occlusion_dilation: int | None = None  # px; regions are also occluded grown by this (default S // 24)
  fps: float = 10.0  # of the GIF

  def __post_init__(self):
    if self.method not in METHODS:
      raise ConfigError(f"saliency.method={self.method!r}; use one of {METHODS}")
    for name in ("num_samples", "ig_steps", "num_videos"):
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"saliency.{name} must be a positive int, got {value!r}")
    if not self.noise_frac >= 0:
      raise ConfigError(f"saliency.noise_frac must be >= 0, got {self.noise_frac!r}")

  @classmethod
  def from_config(cls, cfg: ml_collections.ConfigDict | dict | None) -> Settings:
    """From a ``config.saliency`` section; unknown keys are an error, missing ones keep defaults."""
    values = dict(cfg.to_dict() if isinstance(cfg, ml_collections.ConfigDict) else (cfg or {}))
    values.pop("split", None)  # the caller resolves the split
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
      raise ConfigError(f"unknown saliency settings {unknown}; known: {sorted(known)}")
    chunk = values.get("chunk_size")
    values["chunk_size"] = int(chunk) if chunk else None  # 0 means "all at once" as in the benchmark
    values["video_ids"] = tuple(values.get("video_ids") or ())
    for name in ("patch", "stride", "frames_per_batch"):
      values[name] = int(values[name]) if values.get(name) else None
    dilation = values.get("occlusion_dilation")
    values["occlusion_dilation"] = int(dilation) if dilation is not None and dilation >= 0 else None
    return cls(**values)


# --------------------------------------------------------------------------------------------------
# Pure core: the explained function, maps of a video, localisation.


def task_fn(model: Any, variables: Any, name: str, label_mean: jax.Array, label_std: jax.Array
            ) -> saliency.ScalarFn:
  """``f(x)`` for task ``name`` on one image: the logit (binary) or the output in the task's unit."""
  f = saliency.scalar_model_fn(model, variables, head=name)
  if tasks_lib.get_task(name).is_binary:
    return f
  return lambda x: f(x).astype(jnp.float32) * label_std + label_mean


def frame_map(f: saliency.ScalarFn, x: jax.Array, key: jax.Array, settings: Settings) -> jax.Array:
  """The map of one image ``x`` (S, S, C) by ``settings.method``, channels summed: (S, S) float32."""
  black = input_pipeline.BLACK
  if settings.method == "vanilla":
    out = saliency.vanilla_gradient(f, x)
  elif settings.method == "smoothgrad":
    out = saliency.smoothgrad(f, x, key, num_samples=settings.num_samples,
                              noise_frac=settings.noise_frac, chunk_size=settings.chunk_size)
  elif settings.method == "integrated_gradients":
    out = saliency.integrated_gradients(f, x, baseline=black, steps=settings.ig_steps,
                                        chunk_size=settings.chunk_size)
  else:
    patch = settings.patch or max(4, x.shape[0] // 12)
    return saliency.occlusion_map(f, x, patch=patch, stride=settings.stride or max(1, patch // 2),
                                  fill=black, chunk_size=settings.chunk_size).astype(jnp.float32)
  return out.sum(-1).astype(jnp.float32)


def make_video_maps(model: Any, name: str, settings: Settings) -> Callable[..., jax.Array]:
  """Jitted ``maps(params, batch_stats, label_mean, label_std, images, key) -> (T, S, S)``.

  ``images`` is one normalised video (T, S, S, C); frame t uses key ``split(key, T)[t]``. The
  variables are arguments, not constants baked into the program, so one compilation serves all
  videos (of one shape).
  """

  def maps(params, batch_stats, label_mean, label_std, images, key):
    f = task_fn(model, {"params": params, "batch_stats": batch_stats}, name, label_mean, label_std)
    keys = jax.random.split(key, images.shape[0])
    one = lambda xk: frame_map(f, xk[0], xk[1], settings)
    if settings.frames_per_batch:
      return jax.lax.map(one, (images, keys), batch_size=settings.frames_per_batch)
    return jax.vmap(one)((images, keys))

  return jax.jit(maps)


def region_masks(masks: np.ndarray, mask_names: Sequence[str]) -> dict[str, np.ndarray]:
  """The uint16 bit field (T, S, S) → {region: bool (T, S, S)}, with the ``COMBINED_REGIONS``."""
  masks = np.asarray(masks)
  regions = {name: (masks >> k) & 1 == 1 for k, name in enumerate(mask_names)}
  for combined, parts in COMBINED_REGIONS.items():
    if all(p in regions for p in parts):
      regions[combined] = np.logical_or.reduce([regions[p] for p in parts])
  return regions


def fan_mask(frames: np.ndarray) -> np.ndarray:
  """(S, S) bool: pixels non-black in any frame (the scan sector of a masked clip)."""
  return np.asarray(frames).max(axis=0) > 0


_frame_scores = jax.jit(jax.vmap(saliency.localisation_score))


def localisation(maps: np.ndarray, region: np.ndarray, fan: np.ndarray | None = None
                 ) -> dict[str, float]:
  """Localisation of per-frame ``maps`` (T, S, S) on a per-frame ``region`` (T, S, S) bool.

  Each frame is scored with ``saliency.localisation_score``; the scores are averaged over the frames
  where the region is present (all nan when it never is). With ``fan`` (S, S), also
  ``ratio_in_fan``: the share of the map's mass inside the fan that falls in the region, over the
  region's share of the fan, a stricter baseline than the whole image (the black surround carries
  no signal).
  """
  maps = np.asarray(maps, np.float32)
  region = np.asarray(region, bool)
  present = region.reshape(len(region), -1).any(-1)
  out = {"frames_present": int(present.sum())}
  if not present.any():
    return {**out, **{k: math.nan for k in ("mass_in_region", "area_fraction", "ratio",
                                              "pointing_hit", "ratio_in_fan")}}
  scores = {k: np.asarray(v)[present] for k, v in _frame_scores(maps, region).items()}
  out.update({k: float(np.nanmean(v)) if np.isfinite(v).any() else math.nan
              for k, v in scores.items()})
  if fan is not None:
    fan = np.asarray(fan, bool)
    in_fan = _frame_scores(maps * fan, region & fan)
    fan_fraction = float(fan.mean())
    with np.errstate(invalid="ignore", divide="ignore"):
      ratio = np.asarray(in_fan["mass_in_region"]) / (np.asarray(in_fan["area_fraction"]) / fan_fraction)
    ratio = ratio[present]
    out["ratio_in_fan"] = float(np.nanmean(ratio)) if np.isfinite(ratio).any() else math.nan
  return out


def representative_frame(frame_outputs: np.ndarray) -> int:
  """The frame whose output is closest to the video's prediction (the mean over frames)."""
  frame_outputs = np.asarray(frame_outputs, np.float64)
  return int(np.argmin(np.abs(frame_outputs - frame_outputs.mean())))


# --------------------------------------------------------------------------------------------------
# Model outputs, thresholds and occlusion (host-side glue around the restored model's eval_fn).


def dilate(region: np.ndarray, pixels: int) -> np.ndarray:
  """Each frame of ``region`` (T, S, S) bool grown by a disc of radius ``pixels``."""
  if pixels <= 0:
    return region
  import cv2  # pylint: disable=g-import-not-at-top
  kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))
  return np.stack([cv2.dilate(m.astype(np.uint8), kernel) > 0 for m in region])


def occlusion_scores(trained: Any, images: np.ndarray, regions: dict[str, np.ndarray],
                     thresholds: dict[str, float], dilation: int = 0
                     ) -> dict[str, dict[str, dict[str, Any]]]:
  """{task: {region: before/after}} for one video ``images`` (T, S, S, C).

  Each region (T, S, S) bool present in the video is set to black in every frame; ``before`` and
  ``after`` are video predictions (mean over frames). With ``dilation`` > 0 the region grown by that
  many pixels is occluded too (``after_dilated``): a thin structure's blurred edges and artefacts (a
  lead's reverberation tail) lie just outside its mask. For binary tasks ``flipped`` (and
  ``flipped_dilated``) is true when the video is predicted positive before (``>= threshold``) and
  negative after.
  """
  present = {k: v for k, v in regions.items() if v.any()}
  variants = [(k, "", m) for k, m in present.items()]
  if dilation > 0:
    variants += [(k, "_dilated", dilate(m, dilation)) for k, m in present.items()]
  # One video per call: every call has the same shape, so the model compiles once.
  videos_out = [inference.predict_images(trained, images)] + [
      inference.predict_images(trained, np.where(m[..., None], np.float32(input_pipeline.BLACK), images))
      for _, _, m in variants]
  result: dict[str, dict[str, dict[str, Any]]] = {}
  for name in videos_out[0]:
    videos = [float(out[name].mean()) for out in videos_out]
    before = float(videos[0])
    threshold = thresholds.get(name)
    rows: dict[str, dict[str, Any]] = {k: {"before": before} for k in present}
    for i, (region, suffix, mask) in enumerate(variants):
      after = float(videos[i + 1])
      rows[region].update({f"after{suffix}": after, f"change{suffix}": after - before})
      if suffix:
        rows[region]["dilation_px"] = dilation
        rows[region]["area_fraction_dilated"] = float(mask.mean())
      else:
        rows[region]["area_fraction"] = float(mask.mean())
      if threshold is not None:
        rows[region][f"flipped{suffix}"] = bool(before >= threshold > after)
    result[name] = rows
  return result


def binary_thresholds(trained: Any, cache_dir: str | None) -> dict[str, dict[str, Any]]:
  """{binary task: {"threshold", "source"}}: the validation F1 threshold.

  Read from WORKDIR/eval/val[/<task>]/metrics.json when evaluate mode has run, else chosen on the
  validation split's video predictions (max F1); 0.5 when neither is possible.
  """
  from echonet_jax import evaluate as evaluate_lib  # pylint: disable=g-import-not-at-top
  from echonet_jax import metrics  # pylint: disable=g-import-not-at-top

  names = [n for n in trained.names if tasks_lib.get_task(n).is_binary]
  out: dict[str, dict[str, Any]] = {}
  pending = []
  for name in names:
    sub = ("val", name) if len(trained.names) > 1 else ("val",)
    path = os.path.join(trained.workdir, "eval", *sub, "metrics.json")
    try:
      out[name] = {"threshold": evaluate_lib.read_threshold(path), "source": path}
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
      probs = evaluate_lib.video_predictions(pred["frame_outputs"][name])
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
  frame = frames[representative_frame(frame_outputs)]
  viz.save_png(paths["overlay"], viz.overlay(frame, viz.to_display_map(mean_map)))
  viz.save_gif(paths["gif"], viz.video_overlays(frames, maps), fps=fps)
  return paths


def panel_from_npz(npz_path: str, region: str | None, out_png: str, title: str | None = None) -> None:
  """``viz.panel`` of a saved video: the mean map on its representative frame, beside ``region``."""
  with np.load(npz_path) as data:
    frames, mean_map, outputs = data["frames"], data["mean_map"], data["frame_outputs"]
    t = representative_frame(outputs)
    mask = None
    if region is not None:
      if "masks" not in data:
        raise ValueError(f"{npz_path}: no ground-truth masks to outline {region!r}")
      regions = region_masks(data["masks"][t:t + 1], [str(n) for n in data["mask_names"]])
      if region not in regions:
        raise ValueError(f"{npz_path}: no region {region!r}; have {sorted(regions)}")
      mask = regions[region][0]
  viz.panel(out_png, frames[t], viz.to_display_map(mean_map), mask=mask, title=title)


def _resize_masks(masks: np.ndarray, size: int) -> np.ndarray:
  if masks.shape[-1] == size:
    return masks
  import cv2  # pylint: disable=g-import-not-at-top
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
  for record in input_pipeline.records(cache_dir, split, tasks=names, views=views):
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
  """DICOM files (or folders of them) read as the model was trained; unreadable ones go to ``errors``."""
  from echonet_jax import dicom  # pylint: disable=g-import-not-at-top
  used: set[str] = set()
  for path in dicom.list_files(paths):
    try:
      clip = dicom.read_echo(path, num_frames=data.num_frames, interval_ms=data.interval_ms,
                             size=data.image_size, default_fps=data.default_fps)
    except dicom.EchoReadError as e:
      errors.append({"path": path, "error_type": type(e).__name__, "error": e.reason})
      continue
    stem = safe_name(os.path.splitext(os.path.basename(path))[0])
    video_id, k = stem, 1
    while video_id in used:
      k += 1
      video_id = f"{stem}_{k}"
    used.add(video_id)
    yield Video(source="inputs", video_id=video_id, frames=clip.frames, path=path)


def _mean(rows: list[float]) -> float:
  values = [r for r in rows if r is not None and math.isfinite(r)]
  return float(np.mean(values)) if values else math.nan


def summarise(videos: list[dict[str, Any]]) -> dict[str, Any]:
  """Averages of the per-video scores: {source: {task: {"localisation", "occlusion"}}}."""
  out: dict[str, Any] = {}
  for row in videos:
    task = out.setdefault(row["source"], {}).setdefault(row["task"], {"n_videos": 0})
    task["n_videos"] += 1
    for region, score in row.get("localisation", {}).items():
      task.setdefault("localisation", {}).setdefault(region, []).append(score)
    for region, score in row.get("occlusion", {}).items():
      task.setdefault("occlusion", {}).setdefault(region, []).append(score)
  for tasks in out.values():
    for task in tasks.values():
      for region, scores in task.get("localisation", {}).items():
        present = [s for s in scores if s["frames_present"]]
        task["localisation"][region] = {
            "n_videos": len(present),
            **{k: _mean([s[k] for s in present]) for k in
               ("mass_in_region", "area_fraction", "ratio", "ratio_in_fan", "pointing_hit")}}
      for region, scores in task.get("occlusion", {}).items():
        summary = {"n_videos": len(scores), "mean_before": _mean([s["before"] for s in scores])}
        positive = [s for s in scores if "threshold" in s and s["before"] >= s["threshold"]]
        if any("threshold" in s for s in scores):
          summary["n_predicted_positive"] = len(positive)
        for suffix in ("", "_dilated"):
          if not all(f"after{suffix}" in s for s in scores):
            continue
          summary[f"mean_after{suffix}"] = _mean([s[f"after{suffix}"] for s in scores])
          summary[f"mean_change{suffix}"] = _mean([s[f"change{suffix}"] for s in scores])
          if "n_predicted_positive" in summary:
            flipped = sum(s[f"flipped{suffix}"] for s in positive)
            summary[f"n_flipped{suffix}"] = flipped
            summary[f"flip_rate{suffix}"] = flipped / len(positive) if positive else math.nan
        task["occlusion"][region] = summary
  return out


def explain(trained: Any, videos: Iterable[Video], settings: Settings, out_root: str,
            mask_names: Sequence[str] = (), thresholds: dict[str, dict[str, Any]] | None = None,
            progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
  """Maps, files and scores for each video and task; returns the per-video score rows."""
  c = trained.config
  state = trained.state
  multitask = len(trained.names) > 1
  thresholds = thresholds or {}
  threshold_values = {k: v["threshold"] for k, v in thresholds.items()}
  map_fns = {name: make_video_maps(trained.model, name, settings) for name in trained.names}
  base_key = jax.random.key(settings.seed)
  rows = []
  for index, video in enumerate(videos):
    images = input_pipeline.to_images(video.frames, c.data.channels)
    frame_outputs = inference.predict_images(trained, images)
    regions = region_masks(video.masks, mask_names) if video.masks is not None else {}
    dilation = (settings.occlusion_dilation if settings.occlusion_dilation is not None
                else max(1, video.frames.shape[-1] // 24))
    occluded = occlusion_scores(trained, images, regions, threshold_values, dilation) if regions else {}
    fan = fan_mask(video.frames)
    key = jax.random.fold_in(base_key, index)
    for name in trained.names:
      maps = np.asarray(map_fns[name](state.params, state.batch_stats, state.label_mean[name],
                                      state.label_std[name], images, key))
      if not np.isfinite(maps).all():
        raise FloatingPointError(f"non-finite saliency map for video {video.video_id!r}, task {name}")
      out_dir = os.path.join(out_root, video.source, safe_name(video.video_id),
                             *((name,) if multitask else ()))
      files = write_video(out_dir, video.frames, maps, frame_outputs[name], video.masks, mask_names,
                          fps=settings.fps)
      row: dict[str, Any] = {
          "source": video.source, "video_id": video.video_id, "task": name,
          "prediction": float(frame_outputs[name].mean()),
          "label": video.labels.get(name, math.nan) if video.source != "inputs" else None,
          "representative_frame": representative_frame(frame_outputs[name]),
          "files": {k: os.path.relpath(v, out_root) for k, v in files.items()}}
      if video.path:
        row["path"] = video.path
      if regions:
        row["localisation"] = {r: localisation(maps, m, fan) for r, m in regions.items()}
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
  from echonet_jax import cache  # pylint: disable=g-import-not-at-top
  from echonet_jax import data  # pylint: disable=g-import-not-at-top
  from echonet_jax import restore  # pylint: disable=g-import-not-at-top

  trained = restore.load(workdir)
  saved = trained.config
  settings = Settings.from_config((config if config is not None else saved).get("saliency"))
  if not split and not inputs:
    raise ConfigError("saliency needs a split or --input DICOM files")
  out_root = os.path.join(workdir, "saliency")
  rows: list[dict[str, Any]] = []
  errors: list[dict[str, str]] = []
  mask_names: list[str] = []
  thresholds: dict[str, dict[str, Any]] = {}
  log = lambda message: print(f"saliency: {message}", flush=True)
  if split:
    cache_dir = data.prepare_cache(saved)
    mask_names = list(cache.read_meta(cache_dir).get("mask_names") or [])
    if mask_names:
      thresholds = binary_thresholds(trained, cache_dir)
    videos = split_videos(cache_dir, split, trained.names, tuple(saved.data.views) or None,
                          saved.data.image_size, settings.num_videos, settings.video_ids)
    rows += explain(trained, videos, settings, out_root, mask_names, thresholds, progress=log)
  if inputs:
    rows += explain(trained, input_videos(inputs, saved.data, errors), settings, out_root,
                    progress=log)
  scores = {
      "workdir_step": trained.step, "tasks": list(trained.names), "settings": dataclasses.asdict(settings),
      "explained": {n: "logit" if tasks_lib.get_task(n).is_binary else
                    f"output in {tasks_lib.get_task(n).unit or 'task units'}" for n in trained.names},
      "mask_names": mask_names, "thresholds": thresholds, "summary": summarise(rows), "videos": rows,
      "errors": errors}
  scores = writers.json_safe(scores)
  os.makedirs(out_root, exist_ok=True)
  path = os.path.join(out_root, "scores.json")
  with open(path, "w") as f:
    json.dump(scores, f, indent=1)
  log(f"wrote {len(rows)} maps and {path}" + (f"; {len(errors)} inputs failed" if errors else ""))
  return scores
