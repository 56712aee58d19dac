"""Evaluation reports: one task's eval folder (predictions, metrics with patient CIs, plots).

Everything here takes plain arrays (no model, no JAX state): the caller runs the network over the
frames of each video and passes ``frame_outputs`` of shape (videos, frames), probabilities for
binary tasks and values in the task's unit for regression. Frames a video lacks may be NaN. Video
predictions come from :mod:`~echonet_jax.evaluation.frame_averaging`, metrics from
:mod:`~echonet_jax.evaluation.task_metrics` (categorical tasks:
:mod:`~echonet_jax.evaluation.categorical`).

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
import json
import math
import os
from typing import Any
from typing import Sequence

import numpy as np

from echonet_jax import writers
from echonet_jax.evaluation import categorical
from echonet_jax.evaluation import frame_averaging
from echonet_jax.evaluation import metrics
from echonet_jax.evaluation import plots
from echonet_jax.evaluation import task_metrics
from echonet_jax.tasks import Task

PREDICTIONS_FILE = "predictions.csv"
METRICS_FILE = "metrics.json"


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


def _write_predictions(
    path: str,
    video_ids,
    patient_ids,
    labels,
    preds,
    frames,
    predicted_label=None,
    quality=None,
    checkpoint_step=None,
) -> None:
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


def write_eval(
    out_dir: str,
    task: Task,
    video_ids,
    patient_ids,
    labels,
    frame_outputs,
    *,
    train_mean: float | None = None,
    threshold: float | None = None,
    threshold_source: str | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    split: str | None = None,
    max_frames: int = 20,
    frames_order: str = "first",
    frames_n_boot: int = 200,
    checkpoint_step: int | None = None,
    quality: Sequence[str] | None = None,
    data_source: str | None = None,
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
    return categorical.write_eval(
        out_dir,
        task,
        video_ids,
        patient_ids,
        labels,
        frame_outputs,
        n_boot=n_boot,
        seed=seed,
        split=split,
    )
  frames = frame_averaging.frame_matrix(frame_outputs)
  n = frames.shape[0]
  video_ids = [str(v) for v in video_ids]
  patient_ids = [str(p) for p in patient_ids]
  labels = np.asarray(labels, dtype=np.float64)
  if not len(video_ids) == len(patient_ids) == labels.shape[0] == n:
    raise ValueError(
        f"{task.name}: video_ids ({len(video_ids)}), patient_ids ({len(patient_ids)}), "
        f"labels ({labels.shape[0]}) and frame_outputs ({n}) differ in length"
    )
  split = split or os.path.basename(os.path.normpath(out_dir))
  os.makedirs(out_dir, exist_ok=True)
  preds = frame_averaging.video_predictions(frames)
  report = task_metrics.task_metrics(
      task,
      labels,
      preds,
      patient_ids,
      train_mean,
      threshold,
      n_boot,
      seed,
      threshold_source=threshold_source,
  )
  report = {
      "split": split,
      "checkpoint_step": checkpoint_step,
      "data_source": data_source,
      **report,
  }
  if quality is not None:
    quality = [str(q) for q in quality]
    if len(quality) != n:
      raise ValueError(f"{task.name}: {len(quality)} quality flags for {n} videos")
    flagged = sum(1 for q in quality if q and q != "ok")
    report["n_quality_flagged"] = flagged

  predicted_label = None
  if task.is_binary and math.isfinite(report["threshold"]):
    predicted_label = preds >= report["threshold"]
  _write_predictions(
      os.path.join(out_dir, PREDICTIONS_FILE),
      video_ids,
      patient_ids,
      labels,
      preds,
      frames,
      predicted_label,
      quality,
      checkpoint_step,
  )

  kept_labels, (kept_preds, kept_frames, kept_groups), _ = metrics.drop_missing_labels(
      labels, preds, frames, np.asarray(patient_ids)
  )
  metric_name, metric_fn = task_metrics.headline_metric(task)
  written = []
  main_row = report["metrics"][0]
  if kept_labels.size and math.isfinite(main_row["value"]):
    curve = frame_averaging.frames_curve(
        kept_labels,
        kept_frames,
        metric_fn,
        kept_groups,
        min(max_frames, frames.shape[1]),
        seed,
        order=frames_order,
        n_boot=frames_n_boot,
    )
    report["frames_curve"] = {
        "metric": metric_name,
        "order": frames_order,
        **{k: v.tolist() for k, v in curve.items()},
    }
    kinds = (
        (("roc", plots.roc),)
        if task.is_binary
        else (("scatter", plots.scatter), ("bland_altman", plots.bland_altman))
    )
    for name, plot in kinds:
      plot(os.path.join(out_dir, f"{name}.png"), task, split, kept_labels, kept_preds, report)
      written.append(f"{name}.png")
    plots.frames(
        os.path.join(out_dir, "frames.png"),
        task,
        split,
        report["frames_curve"],
        metric_name,
        frames_order,
    )
    written.append("frames.png")
  else:
    report["plots_skipped"] = main_row.get("note", "no labelled videos")
  report["plots"] = written
  report = writers.json_safe(report)
  with open(os.path.join(out_dir, METRICS_FILE), "w") as f:
    json.dump(report, f, indent=2, allow_nan=False)
  return report
