"""Evaluation reports of a categorical task (e.g. ``view``): accuracy, macro F1, one-vs-rest AUC per
class, each with a patient-bootstrap CI, and the confusion matrix.

Takes per-frame class probabilities ``(videos, frames, classes)``; a video's prediction is the mean of
its frames' probabilities (NaN frames ignored) and its class the most probable one.
:func:`write_eval` writes ``OUT_DIR``::

  predictions.csv   video_id, patient_id, label, prediction, confidence, prob_<class> ...
  metrics.json      task, split, classes, rows {metric, value, ci_low, ci_high, n, n_patients, ...}
                    for accuracy, macro_f1 and auc_<class>, and the confusion matrix (counts)
  confusion.png     the confusion matrix, rows = true class, counts and row fractions
"""

from __future__ import annotations

import csv
import functools
import json
import math
import os
from typing import Any
from typing import Sequence

from matplotlib.figure import Figure
import numpy as np

from echonet_jax import writers
from echonet_jax.evaluation import frame_averaging
from echonet_jax.evaluation import metrics
from echonet_jax.evaluation import task_metrics as task_metrics_lib
from echonet_jax.tasks import Task

PREDICTIONS_FILE = "predictions.csv"
METRICS_FILE = "metrics.json"
CONFUSION_FILE = "confusion.png"


def video_probabilities(frame_probs) -> np.ndarray:
  """(videos, frames, classes) → (videos, classes): the mean over each video's non-NaN frames."""
  x = frame_averaging.frame_matrix(frame_probs, classes=True)
  return frame_averaging.mean_of_present_frames(x, ~np.isnan(x).any(axis=2, keepdims=True))


def _row(name: str, fn, labels, probs, groups, *, note: str | None = None, **kwargs) -> dict:
  """A :func:`~echonet_jax.evaluation.task_metrics.metric_row` of ``fn(labels, probs)`` without its ``n_boot_valid`` and
  ``ci_note``, which a categorical task's metrics.json does not hold."""
  row = task_metrics_lib.metric_row(name, fn, (labels, probs), groups, undefined=note, **kwargs)
  del row["n_boot_valid"]
  row.pop("ci_note", None)
  return row


def task_metrics(
    task: Task,
    labels,
    probs,
    patient_ids,
    n_boot: int = 1000,
    seed: int = 0,
    *,
    alpha: float = 0.05,
) -> dict[str, Any]:
  """Accuracy, macro F1 and one-vs-rest AUC per class of one split, with patient-bootstrap CIs.

  ``labels`` are class indices (NaN = missing, skipped and counted), ``probs`` (videos, classes).
  """
  probs = np.asarray(probs, dtype=np.float64)
  labels, (probs, patient_ids), n_missing = metrics.drop_missing_labels(
      labels, probs, np.asarray(patient_ids)
  )
  if np.any(np.isnan(probs)):
    raise ValueError(f"{task.name}: a labelled video has NaN probabilities (no valid frame?)")
  common = dict(n_boot=n_boot, seed=seed, alpha=alpha, n_missing=n_missing)
  out: dict[str, Any] = {
      "task": task.name,
      "kind": task.kind,
      "unit": "",
      "classes": list(task.classes),
      **task_metrics_lib.split_summary(labels, patient_ids, **common),
  }
  empty = "no labelled videos" if labels.size == 0 else None
  rows = [
      _row("accuracy", metrics.accuracy, labels, probs, patient_ids, note=empty, **common),
      _row("macro_f1", metrics.macro_f1, labels, probs, patient_ids, note=empty, **common),
  ]
  for k, name in enumerate(task.classes):
    positives = int(np.sum(labels == k))
    note = (
        f"AUC undefined: {positives} of {labels.size} videos are {name}"
        if positives in (0, labels.size)
        else None
    )
    rows.append(
        _row(
            f"auc_{name}",
            functools.partial(metrics.one_vs_rest_auc, class_index=k),
            labels,
            probs,
            patient_ids,
            note=note,
            n_class=positives,
            **common,
        )
    )
  out["metrics"] = rows
  out["confusion"] = (
      metrics.confusion_matrix(labels, probs).astype(int).tolist() if labels.size else []
  )
  return out


def plot_confusion(path: str, task: Task, split: str, confusion, report: dict[str, Any]) -> None:
  """Confusion-matrix picture: counts with the fraction of each true class, rows = truth."""
  cm = np.asarray(confusion, dtype=np.float64)
  fractions = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
  k = len(task.classes)
  fig = Figure(figsize=(1.0 + 0.75 * k, 0.9 + 0.7 * k), dpi=120, layout="constrained")
  ax = fig.add_subplot()
  image = ax.imshow(fractions, cmap="Blues", vmin=0, vmax=1)
  for i in range(k):
    for j in range(k):
      if cm[i, j]:
        ax.text(
            j,
            i,
            f"{int(cm[i, j])}\n{fractions[i, j]:.0%}",
            ha="center",
            va="center",
            fontsize=7,
            color="white" if fractions[i, j] > 0.5 else "black",
        )
  ax.set(xticks=range(k), yticks=range(k), xlabel="Predicted view", ylabel="True view")
  ax.set_xticklabels(task.classes, rotation=45, ha="right", fontsize=8)
  ax.set_yticklabels(task.classes, fontsize=8)
  acc = report["metrics"][0]
  ci = (
      f" (95% CI {acc['ci_low']:.3f}–{acc['ci_high']:.3f})"
      if acc["ci_low"] is not None and math.isfinite(acc["ci_low"])
      else ""
  )
  ax.set_title(
      f"{task.name}, {split}, n={report['n']}: accuracy {acc['value']:.3f}{ci}", fontsize=8
  )
  fig.colorbar(image, ax=ax, shrink=0.8, label="fraction of true class")
  fig.savefig(path)


def _write_predictions(
    path: str,
    task: Task,
    video_ids: Sequence[str],
    patient_ids: Sequence[str],
    labels: np.ndarray,
    probs: np.ndarray,
) -> None:
  with open(path, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(
        [
            "video_id",
            "patient_id",
            "label",
            "prediction",
            "confidence",
            *[f"prob_{c}" for c in task.classes],
        ]
    )
    for i, video in enumerate(video_ids):
      label = "" if math.isnan(labels[i]) else task.classes[int(labels[i])]
      known = not np.isnan(probs[i]).any()
      best = int(np.argmax(probs[i])) if known else -1
      w.writerow(
          [
              video,
              patient_ids[i],
              label,
              task.classes[best] if known else "",
              repr(float(probs[i, best])) if known else "",
              *[repr(float(p)) if known else "" for p in probs[i]],
          ]
      )


def write_eval(
    out_dir: str,
    task: Task,
    video_ids,
    patient_ids,
    labels,
    frame_outputs,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    split: str | None = None,
    **unused,
) -> dict[str, Any]:
  """Writes predictions.csv, metrics.json and confusion.png of a categorical task into ``out_dir``.

  ``frame_outputs`` are per-frame class probabilities (videos, frames, classes). Keyword arguments of
  the numeric tasks' ``reports.write_eval`` (thresholds, train mean, frames curve) are ignored.
  Returns the metrics dict written to metrics.json (NaN as null).
  """
  del unused
  probs = video_probabilities(frame_outputs)
  video_ids = [str(v) for v in video_ids]
  patient_ids = [str(p) for p in patient_ids]
  labels = np.asarray(labels, dtype=np.float64)
  if not len(video_ids) == len(patient_ids) == labels.shape[0] == probs.shape[0]:
    raise ValueError(f"{task.name}: video_ids, patient_ids, labels and outputs differ in length")
  if probs.shape[1] != len(task.classes):
    raise ValueError(
        f"{task.name}: outputs have {probs.shape[1]} classes, the task " f"{len(task.classes)}"
    )
  split = split or os.path.basename(os.path.normpath(out_dir))
  os.makedirs(out_dir, exist_ok=True)
  report = {"split": split, **task_metrics(task, labels, probs, patient_ids, n_boot, seed)}
  _write_predictions(
      os.path.join(out_dir, PREDICTIONS_FILE), task, video_ids, patient_ids, labels, probs
  )
  report["plots"] = []
  if report["n"]:
    plot_confusion(os.path.join(out_dir, CONFUSION_FILE), task, split, report["confusion"], report)
    report["plots"].append(CONFUSION_FILE)
  else:
    report["plots_skipped"] = "no labelled videos"
  report = writers.json_safe(report)
  with open(os.path.join(out_dir, METRICS_FILE), "w") as f:
    json.dump(report, f, indent=2, allow_nan=False)
  return report
