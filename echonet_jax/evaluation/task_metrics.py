"""Metrics of a binary or regression task on one split, each with a patient-bootstrap CI.

Binary tasks: ROC AUC and F1 at a threshold; regression: R², MAE and the MAE of always predicting
the training mean. Takes video labels and predictions (see
:mod:`echonet_jax.evaluation.frame_averaging`) and returns the body of the ``metrics.json`` that
:func:`echonet_jax.evaluation.reports.write_eval` writes. Categorical tasks have their own
(:mod:`echonet_jax.evaluation.categorical`).
"""

from __future__ import annotations

import functools
import math
from typing import Any
from typing import Callable
from typing import Sequence

import numpy as np

from echonet_jax.evaluation import bootstrap
from echonet_jax.evaluation import metrics
from echonet_jax.tasks import Task


def headline_metric(task: Task) -> tuple[str, Callable]:
  """The metric a task is judged by: ROC AUC for binary tasks, R² for regression."""
  return ("auc", metrics.roc_auc) if task.is_binary else ("r2", metrics.r2)


def metric_row(
    name: str,
    fn: Callable,
    arrays: Sequence[np.ndarray],
    groups: np.ndarray,
    *,
    n_missing: int,
    n_boot: int,
    seed: int,
    alpha: float,
    unit: str = "",
    undefined: str | None = None,
    **extra,
) -> dict[str, Any]:
  """One metrics.json row: ``fn(*arrays)`` with its patient-bootstrap interval over ``groups``;
  ``undefined`` (a reason) makes the value NaN with that note."""
  nan = float("nan")
  value = nan if undefined else float(fn(*arrays))
  row = {
      "metric": name,
      "value": value,
      "ci_low": nan,
      "ci_high": nan,
      "n_boot_valid": 0,
      "n": int(arrays[0].size),
      "n_patients": int(np.unique(groups).size),
      "n_missing_labels": n_missing,
      "unit": unit,
  }
  if math.isfinite(value):
    interval = bootstrap.bootstrap_interval(
        fn, groups, *arrays, n_boot=n_boot, seed=seed, alpha=alpha
    )
    row.update(ci_low=interval.low, ci_high=interval.high, n_boot_valid=interval.n_valid)
    if interval.note:
      row["ci_note"] = f"95% CI n/a: {interval.note}"
  else:
    row["ci_note"] = "95% CI n/a: the metric is undefined"
  if undefined:
    row["note"] = undefined
  row.update(extra)
  return row


def split_summary(
    labels: np.ndarray, groups: np.ndarray, *, n_missing: int, n_boot: int, seed: int, alpha: float
) -> dict[str, Any]:
  """The counts and bootstrap settings at the top of a split's metrics.json: n, n_patients,
  n_missing_labels, n_boot, alpha, seed and a line that names the interval."""
  return {
      "n": int(labels.size),
      "n_patients": int(np.unique(groups).size),
      "n_missing_labels": n_missing,
      "n_boot": n_boot,
      "alpha": alpha,
      "seed": seed,
      "ci": f"{100 * (1 - alpha):g}% percentile bootstrap over patients",
  }


def task_metrics(
    task: Task,
    labels,
    preds,
    patient_ids,
    train_mean: float | None = None,
    threshold: float | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    *,
    alpha: float = 0.05,
    threshold_source: str | None = None,
) -> dict[str, Any]:
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
    raise ValueError(
        f"{task.name}: {int(np.isnan(preds).sum())} labelled videos have a NaN "
        "prediction (no valid frame?)"
    )
  common = dict(n_missing=n_missing, n_boot=n_boot, seed=seed, alpha=alpha)
  out: dict[str, Any] = {
      "task": task.name,
      "kind": task.kind,
      "unit": task.unit,
      **split_summary(labels, patient_ids, **common),
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
    f1_note = (
        None
        if math.isfinite(threshold)
        else "F1 undefined: no threshold (no positive labels to choose it from)"
    )
    rows = [
        metric_row(
            "auc",
            metrics.roc_auc,
            arrays,
            patient_ids,
            undefined=auc_note and f"AUC undefined: {auc_note}",
            **common,
        ),
        metric_row(
            "f1",
            functools.partial(metrics.f1, threshold=threshold),
            arrays,
            patient_ids,
            undefined=f1_note,
            threshold=float(threshold),
            threshold_source=threshold_source,
            **common,
        ),
    ]
  else:
    r2_note = metrics.r2_undefined_reason(labels)
    rows = [
        metric_row(
            "r2",
            metrics.r2,
            arrays,
            patient_ids,
            undefined=r2_note and f"R² undefined: {r2_note}",
            **common,
        ),
        metric_row("mae", metrics.mae, arrays, patient_ids, unit=task.unit, **common),
    ]
    if train_mean is not None:
      out["train_mean"] = float(train_mean)
      baseline = metric_row(
          "baseline_mae",
          functools.partial(metrics.mean_baseline_mae, train_mean=float(train_mean)),
          (labels,),
          patient_ids,
          unit=task.unit,
          train_mean=float(train_mean),
          **common,
      )
      rows.append(baseline)
      out["baseline_mae"] = baseline["value"]
  out["metrics"] = rows
  return out
