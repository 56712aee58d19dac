"""Evaluation reports from per-frame model outputs: video predictions, metrics with patient CIs, plots.

Everything here takes plain arrays (no model, no JAX state): the caller runs the network over the
frames of each video and passes ``frame_outputs`` of shape (videos, frames), probabilities for binary
tasks and values in the task's unit for regression. Frames a video lacks may be NaN. As in the paper, the
video prediction is the mean over its frames.

:func:`write_eval` writes ``OUT_DIR`` (normally ``WORKDIR/eval/<split>/``)::

  predictions.csv   video_id, patient_id, label, prediction[, predicted_label], quality,
                    checkpoint_step, frame_00, frame_01, ...
  metrics.json      task, split, checkpoint_step, n, CI settings, one row per metric {metric, value,
                    ci_low, ci_high (null when unavailable, then ci_note says why), n_boot_valid, n,
                    n_patients, n_missing_labels, ...}, the F1 threshold (binary) or the training mean
                    and baseline MAE (regression), and the metric against frames averaged
  roc.png                        binary tasks
  scatter.png, bland_altman.png  regression tasks
  frames.png                     AUC or R² against the number of frames averaged
"""

from __future__ import annotations

import csv
import functools
import json
import math
import os
from typing import Any
from typing import Callable
from typing import Sequence

import numpy as np

from echonet_jax.evaluation import categorical
from echonet_jax.evaluation import metrics
from echonet_jax.evaluation import plots
from echonet_jax.tasks import Task
from echonet_jax.training import writers

PREDICTIONS_FILE = "predictions.csv"
METRICS_FILE = "metrics.json"
FRAME_ORDERS = ("first", "random")


def _frame_matrix(frame_outputs) -> np.ndarray:
  x = np.asarray(frame_outputs, dtype=np.float64)
  if x.ndim == 1:
    x = x[:, None]
  if x.ndim != 2:
    raise ValueError(f"frame_outputs must have shape (videos, frames); got {x.shape}")
  return x


def video_predictions(frame_outputs, num_frames: int | None = None) -> np.ndarray:
  """Mean over the first ``num_frames`` frames (all when None) of each video, ignoring NaN frames.

  A video with no frame in range gets NaN.
  """
  x = _frame_matrix(frame_outputs)
  if num_frames is not None:
    if num_frames < 1:
      raise ValueError(f"num_frames must be at least 1; got {num_frames}")
    x = x[:, :num_frames]
  present = ~np.isnan(x)
  count = present.sum(axis=1)
  total = np.where(present, x, 0.0).sum(axis=1)
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def headline_metric(task: Task) -> tuple[str, Callable]:
  """The metric a task is judged by: ROC AUC for binary tasks, R² for regression."""
  return ("auc", metrics.roc_auc) if task.is_binary else ("r2", metrics.r2)


def frames_curve(labels, frame_outputs, metric_fn: Callable, groups=None, max_frames: int = 20,
                 seed: int = 0, *, order: str = "first", n_boot: int = 200,
                 alpha: float = 0.05) -> dict[str, np.ndarray]:
  """The metric when each video's prediction averages only k frames, for k = 1..max_frames.

  ``order="first"`` averages the first k frames in time order (k × 100 ms of video at the paper's
  sampling: what a shorter clip would give). ``order="random"`` averages a random subset of k frames per
  video, drawn once per video with ``seed`` and nested (the k-subset contains the (k−1)-subset), which
  separates the effect of more frames from that of a longer time span. Videos with a NaN label are left
  out; NaN frames are ignored (random order puts them last).

  Returns arrays of length ``max_frames``: ``num_frames``, ``value``, ``ci_low``, ``ci_high`` (patient
  bootstrap with ``n_boot`` resamples; NaN when unavailable, see ``metrics.bootstrap_interval``) and
  ``n_boot_valid``.
  """
  if order not in FRAME_ORDERS:
    raise ValueError(f"order must be one of {FRAME_ORDERS}; got {order!r}")
  x = _frame_matrix(frame_outputs)
  if groups is None:
    groups = np.arange(x.shape[0])
  labels, (x, groups), _ = metrics.drop_missing_labels(labels, x, groups)
  if not 1 <= max_frames <= x.shape[1]:
    raise ValueError(f"max_frames must be in 1..{x.shape[1]} (the frames given); got {max_frames}")
  if order == "random":
    keys = np.random.default_rng(seed).random(x.shape)
    keys[np.isnan(x)] = np.inf
    x = np.take_along_axis(x, np.argsort(keys, axis=1), axis=1)
  ks = np.arange(1, max_frames + 1)
  value = np.empty(max_frames)
  ci = np.full((max_frames, 2), np.nan)
  n_valid = np.zeros(max_frames, np.int64)
  for i, k in enumerate(ks):
    preds = video_predictions(x, k)
    value[i] = metric_fn(labels, preds)
    if n_boot > 0:
      interval = metrics.bootstrap_interval(metric_fn, groups, labels, preds, n_boot=n_boot,
                                            seed=seed, alpha=alpha)
      ci[i] = interval.low, interval.high
      n_valid[i] = interval.n_valid
  return {"num_frames": ks, "value": value, "ci_low": ci[:, 0], "ci_high": ci[:, 1],
          "n_boot_valid": n_valid}


def _row(name: str, fn: Callable, arrays: Sequence[np.ndarray], groups: np.ndarray, *, n_missing: int,
         n_boot: int, seed: int, alpha: float, unit: str = "", undefined: str | None = None,
         **extra) -> dict[str, Any]:
  """One metrics.json row; ``undefined`` (a reason) makes the value NaN with that note."""
  nan = float("nan")
  value = nan if undefined else float(fn(*arrays))
  row = {"metric": name, "value": value, "ci_low": nan, "ci_high": nan, "n_boot_valid": 0,
         "n": int(arrays[0].size), "n_patients": int(np.unique(groups).size),
         "n_missing_labels": n_missing, "unit": unit}
  if math.isfinite(value):
    interval = metrics.bootstrap_interval(fn, groups, *arrays, n_boot=n_boot, seed=seed, alpha=alpha)
    row.update(ci_low=interval.low, ci_high=interval.high, n_boot_valid=interval.n_valid)
    if interval.note:
      row["ci_note"] = f"95% CI n/a: {interval.note}"
  else:
    row["ci_note"] = "95% CI n/a: the metric is undefined"
  if undefined:
    row["note"] = undefined
  row.update(extra)
  return row


def task_metrics(task: Task, labels, preds, patient_ids, train_mean: float | None = None,
                 threshold: float | None = None, n_boot: int = 1000, seed: int = 0, *,
                 alpha: float = 0.05, threshold_source: str | None = None) -> dict[str, Any]:
  """Metrics of one task on one split, each with a patient-bootstrap CI.

  Binary: ``auc`` and ``f1`` at ``threshold`` (when None, the F1-maximising threshold on THIS split is
  used and recorded as such: pass the validation threshold when evaluating test). Regression: ``r2``,
  ``mae`` and ``baseline_mae`` (always predicting ``train_mean``, the training-split mean). Videos with
  a NaN label are skipped and counted. Undefined metrics are NaN with a ``note``.
  """
  preds = np.asarray(preds, dtype=np.float64)
  patient_ids = np.asarray(patient_ids)
  labels, (preds, patient_ids), n_missing = metrics.drop_missing_labels(labels, preds, patient_ids)
  if np.any(np.isnan(preds)):
    raise ValueError(f"{task.name}: {int(np.isnan(preds).sum())} labelled videos have a NaN "
                     "prediction (no valid frame?)")
  common = dict(n_missing=n_missing, n_boot=n_boot, seed=seed, alpha=alpha)
  out: dict[str, Any] = {
      "task": task.name, "kind": task.kind, "unit": task.unit, "n": int(labels.size),
      "n_patients": int(np.unique(patient_ids).size), "n_missing_labels": n_missing,
      "n_boot": n_boot, "alpha": alpha, "seed": seed,
      "ci": f"{100 * (1 - alpha):g}% percentile bootstrap over patients",
  }
  arrays = (labels, preds)
  if task.is_binary:
    auc_note = metrics.auc_undefined_reason(labels)  # also checks the labels are 0/1
    out["n_positive"] = int(np.sum(labels == 1))
    if threshold is None:
      threshold, _ = metrics.best_f1_threshold(labels, preds)
      threshold_source = "chosen on this split (max F1)"
    elif threshold_source is None:
      threshold_source = "given"
    out["threshold"] = float(threshold)
    out["threshold_source"] = threshold_source
    f1_note = (None if math.isfinite(threshold) else
               "F1 undefined: no threshold (no positive labels to choose it from)")
    rows = [
        _row("auc", metrics.roc_auc, arrays, patient_ids,
             undefined=auc_note and f"AUC undefined: {auc_note}", **common),
        _row("f1", functools.partial(metrics.f1, threshold=threshold), arrays, patient_ids,
             undefined=f1_note, threshold=float(threshold), threshold_source=threshold_source,
             **common),
    ]
  else:
    r2_note = metrics.r2_undefined_reason(labels)
    rows = [
        _row("r2", metrics.r2, arrays, patient_ids,
             undefined=r2_note and f"R² undefined: {r2_note}", **common),
        _row("mae", metrics.mae, arrays, patient_ids, unit=task.unit, **common),
    ]
    if train_mean is not None:
      out["train_mean"] = float(train_mean)
      baseline = _row("baseline_mae", functools.partial(metrics.mean_baseline_mae,
                                                         train_mean=float(train_mean)),
                      (labels,), patient_ids, unit=task.unit, train_mean=float(train_mean), **common)
      rows.append(baseline)
      out["baseline_mae"] = baseline["value"]
  out["metrics"] = rows
  return out


def read_threshold(metrics_json: str) -> float:
  """The F1 threshold recorded in a binary task's metrics.json (e.g. the validation split's)."""
  try:
    with open(metrics_json) as f:
      data = json.load(f)
  except (OSError, json.JSONDecodeError) as e:
    raise ValueError(f"{metrics_json}: cannot read metrics: {e}") from e
  if data.get("threshold") is None:
    raise ValueError(f"{metrics_json}: no F1 threshold recorded (not a binary task, or undefined)")
  return float(data["threshold"])


def _fmt(v: float) -> str:
  return "" if v is None or not math.isfinite(v) else repr(float(v))


def _write_predictions(path: str, video_ids, patient_ids, labels, preds, frames,
                       predicted_label=None, quality=None, checkpoint_step=None) -> None:
  header = ["video_id", "patient_id", "label", "prediction"]
  if predicted_label is not None:
    header.append("predicted_label")
  header += ["quality", "checkpoint_step"]
  header += [f"frame_{i:02d}" for i in range(frames.shape[1])]
  step = "" if checkpoint_step is None else int(checkpoint_step)
  with open(path, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(header)
    for i in range(len(video_ids)):
      row = [video_ids[i], patient_ids[i], _fmt(labels[i]), _fmt(preds[i])]
      if predicted_label is not None:
        row.append(int(predicted_label[i]))
      row += ["" if quality is None else quality[i], step]
      row += [_fmt(v) for v in frames[i]]
      w.writerow(row)


def write_eval(out_dir: str, task: Task, video_ids, patient_ids, labels, frame_outputs, *,
               train_mean: float | None = None, threshold: float | None = None,
               threshold_source: str | None = None, n_boot: int = 1000, seed: int = 0,
               split: str | None = None, max_frames: int = 20, frames_order: str = "first",
               frames_n_boot: int = 200, checkpoint_step: int | None = None,
               quality: Sequence[str] | None = None, data_source: str | None = None
               ) -> dict[str, Any]:
  """Writes predictions.csv, metrics.json and the plots for one task on one split into ``out_dir``.

  ``frame_outputs`` is (videos, frames): probabilities for binary tasks, values in ``task.unit`` for
  regression. ``split`` defaults to the folder name. ``train_mean`` (regression) gives the baseline MAE;
  ``threshold`` (binary) is the F1 threshold, chosen on this split when None. ``checkpoint_step`` (the
  checkpoint evaluated) goes into metrics.json and every predictions.csv row; ``quality`` (one sector
  quality flag per video, "ok" or a reason; blank when unknown) into predictions.csv; ``data_source``
  (the cache's ``source``) picks the paper the results table compares with. Returns the metrics dict
  written to metrics.json (NaN as null there).
  """
  if task.is_categorical:  # accuracy, macro F1, AUC per class, confusion.png
    return categorical.write_eval(out_dir, task, video_ids, patient_ids, labels, frame_outputs,
                                  n_boot=n_boot, seed=seed, split=split)
  frames = _frame_matrix(frame_outputs)
  n = frames.shape[0]
  video_ids = [str(v) for v in video_ids]
  patient_ids = [str(p) for p in patient_ids]
  labels = np.asarray(labels, dtype=np.float64)
  if not len(video_ids) == len(patient_ids) == labels.shape[0] == n:
    raise ValueError(f"{task.name}: video_ids ({len(video_ids)}), patient_ids ({len(patient_ids)}), "
                     f"labels ({labels.shape[0]}) and frame_outputs ({n}) differ in length")
  split = split or os.path.basename(os.path.normpath(out_dir))
  os.makedirs(out_dir, exist_ok=True)
  preds = video_predictions(frames)
  report = task_metrics(task, labels, preds, patient_ids, train_mean, threshold, n_boot, seed,
                        threshold_source=threshold_source)
  report = {"split": split, "checkpoint_step": checkpoint_step, "data_source": data_source,
            **report}
  if quality is not None:
    quality = [str(q) for q in quality]
    if len(quality) != n:
      raise ValueError(f"{task.name}: {len(quality)} quality flags for {n} videos")
    flagged = sum(1 for q in quality if q and q != "ok")
    report["n_quality_flagged"] = flagged

  predicted_label = None
  if task.is_binary and math.isfinite(report["threshold"]):
    predicted_label = preds >= report["threshold"]
  _write_predictions(os.path.join(out_dir, PREDICTIONS_FILE), video_ids, patient_ids, labels, preds,
                     frames, predicted_label, quality, checkpoint_step)

  kept_labels, (kept_preds, kept_frames, kept_groups), _ = metrics.drop_missing_labels(
      labels, preds, frames, np.asarray(patient_ids))
  metric_name, metric_fn = headline_metric(task)
  written = []
  main_row = report["metrics"][0]
  if kept_labels.size and math.isfinite(main_row["value"]):
    curve = frames_curve(kept_labels, kept_frames, metric_fn, kept_groups,
                         min(max_frames, frames.shape[1]), seed, order=frames_order,
                         n_boot=frames_n_boot)
    report["frames_curve"] = {"metric": metric_name, "order": frames_order,
                              **{k: v.tolist() for k, v in curve.items()}}
    kinds = (("roc", plots.roc),) if task.is_binary else (
        ("scatter", plots.scatter), ("bland_altman", plots.bland_altman))
    for name, plot in kinds:
      plot(os.path.join(out_dir, f"{name}.png"), task, split, kept_labels, kept_preds, report)
      written.append(f"{name}.png")
    plots.frames(os.path.join(out_dir, "frames.png"), task, split, report["frames_curve"],
                 metric_name, frames_order)
    written.append("frames.png")
  else:
    report["plots_skipped"] = main_row.get("note", "no labelled videos")
  report["plots"] = written
  report = writers.json_safe(report)
  with open(os.path.join(out_dir, METRICS_FILE), "w") as f:
    json.dump(report, f, indent=2, allow_nan=False)
  return report
