"""Scores of saliency maps against ground-truth regions: localisation, occlusion, summaries."""

from __future__ import annotations

import math
import os
from typing import Any
from typing import Sequence

import cv2
import jax
import numpy as np

from echonet_jax import tasks as tasks_lib
from echonet_jax.data import normalization
from echonet_jax.evaluation import frame_averaging
from echonet_jax.evaluation import inference
from echonet_jax.evaluation import metrics
from echonet_jax.evaluation import reports
from echonet_jax.interpret import saliency
from echonet_jax.training import restore

# Unions of ground-truth regions also scored; a map on the LV cavity's border falls partly on the wall.
COMBINED_REGIONS = {"lv+myocardium": ("lv", "myocardium")}


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


def localisation(
    maps: np.ndarray, region: np.ndarray, fan: np.ndarray | None = None
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
    return {
        **out,
        **{
            k: math.nan
            for k in ("mass_in_region", "area_fraction", "ratio", "pointing_hit", "ratio_in_fan")
        },
    }
  scores = {k: np.asarray(v)[present] for k, v in _frame_scores(maps, region).items()}
  out.update(
      {k: float(np.nanmean(v)) if np.isfinite(v).any() else math.nan for k, v in scores.items()}
  )
  if fan is not None:
    fan = np.asarray(fan, bool)
    in_fan = _frame_scores(maps * fan, region & fan)
    fan_fraction = float(fan.mean())
    with np.errstate(invalid="ignore", divide="ignore"):
      ratio = np.asarray(in_fan["mass_in_region"]) / (
          np.asarray(in_fan["area_fraction"]) / fan_fraction
      )
    ratio = ratio[present]
    out["ratio_in_fan"] = float(np.nanmean(ratio)) if np.isfinite(ratio).any() else math.nan
  return out


def stride_power(saliency_map: np.ndarray, period: int = 2) -> float:
  """Share of a map's power (mean removed) on the FFT lines of ``period`` pixels along either axis.

  A stride-``period`` checkerboard puts its power there: for ``period`` 2, the Nyquist row and column.
  Smooth maps give a small share (about the lines' share of the spectrum, 4/N for an N×N white map).
  """
  m = np.abs(np.asarray(saliency_map, np.float64))
  power = np.abs(np.fft.fft2(m - m.mean())) ** 2
  total = power.sum()
  if total <= 0:
    return 0.0
  lines = np.zeros(power.shape, bool)
  for axis, n in enumerate(power.shape):
    k = int(round(n / period)) % n
    index = [slice(None)] * 2
    index[axis] = sorted({k, (n - k) % n})
    lines[tuple(index)] = True
  return float(power[lines].sum() / total)


def representative_frame(frame_outputs: np.ndarray) -> int:
  """The frame whose output is closest to the video's prediction (the mean over frames)."""
  frame_outputs = np.asarray(frame_outputs, np.float64)
  return int(np.argmin(np.abs(frame_outputs - frame_outputs.mean())))


# --------------------------------------------------------------------------------------------------
# Model outputs, thresholds and occlusion (host-side glue around a ``predict_fn``).


def binary_thresholds(
    trained: restore.TrainedModel,
    cache_dir: str | None,
    predict_fn: inference.PredictFn | None = None,
) -> dict[str, dict[str, Any]]:
  """{binary task: {"threshold", "source"}}: the validation F1 threshold.

  Read from WORKDIR/eval/val[/<task>]/metrics.json when evaluate mode has run, else chosen on the
  validation split's video predictions (max F1, by ``predict_fn``, default the restored model's);
  0.5 when neither is possible.
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
      predict_fn = predict_fn or inference.batched_predict_fn(
          trained.eval_fn, trained.state, trained.mesh
      )
      pred = inference.predict_split(predict_fn, trained.config, trained.names, cache_dir, "val")
    except ValueError:
      pred = None
    for name in list(pending):
      if pred is None:
        break
      labels = pred["labels"][name]
      probs = frame_averaging.video_predictions(pred["frame_outputs"][name])
      keep = ~np.isnan(labels)
      threshold, _ = metrics.best_f1_threshold(labels[keep], probs[keep])
      if math.isfinite(threshold):
        out[name] = {"threshold": threshold, "source": "val split, max F1"}
        pending.remove(name)
  for name in pending:
    out[name] = {"threshold": 0.5, "source": "0.5 (no validation threshold)"}
  return out


def dilate(region: np.ndarray, pixels: int) -> np.ndarray:
  """Each frame of ``region`` (T, S, S) bool grown by a disc of radius ``pixels``."""
  if pixels <= 0:
    return region
  kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))
  return np.stack([cv2.dilate(m.astype(np.uint8), kernel) > 0 for m in region])


def occlusion_scores(
    predict_fn: inference.PredictFn,
    images: np.ndarray,
    regions: dict[str, np.ndarray],
    thresholds: dict[str, float],
    dilation: int = 0,
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
  videos_out = [predict_fn(images)] + [
      predict_fn(np.where(m[..., None], np.float32(normalization.BLACK), images))
      for _, _, m in variants
  ]
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
            **{
                k: _mean([s[k] for s in present])
                for k in (
                    "mass_in_region",
                    "area_fraction",
                    "ratio",
                    "ratio_in_fan",
                    "pointing_hit",
                )
            },
        }
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
