"""Tests for echonet_jax.evaluation.task_metrics: binary and regression metrics with patient CIs."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from echonet_jax.evaluation import frame_averaging
from echonet_jax.evaluation import metrics
from echonet_jax.evaluation import task_metrics
from echonet_jax.tasks import get_task
from tests import testing


def test_task_metrics_binary_threshold_chosen_or_given():
  labels, frames = testing.binary_frame_outputs()
  labels[[0, 5]] = np.nan
  preds = frame_averaging.video_predictions(frames)
  _, patients = testing.video_patient_ids(labels.size)
  task = get_task("lvh")
  chosen = task_metrics.task_metrics(task, labels, preds, patients, n_boot=100)
  keep = ~np.isnan(labels)
  threshold, best = metrics.best_f1_threshold(labels[keep], preds[keep])
  assert chosen["threshold"] == threshold
  assert chosen["threshold_source"] == "chosen on this split (max F1)"
  auc, f1 = chosen["metrics"]
  assert auc["metric"] == "auc" and auc["value"] == pytest.approx(
      skm.roc_auc_score(labels[keep], preds[keep])
  )
  assert f1["value"] == pytest.approx(best)
  for row in (auc, f1):
    assert row["n"] == 118 and row["n_missing_labels"] == 2 and row["n_patients"] == 60
    assert row["ci_low"] <= row["value"] <= row["ci_high"]
  given = task_metrics.task_metrics(
      task, labels, preds, patients, threshold=0.9, n_boot=0, threshold_source="val"
  )
  assert given["threshold"] == 0.9 and given["metrics"][1]["threshold_source"] == "val"
  assert given["metrics"][1]["value"] == pytest.approx(
      skm.f1_score(labels[keep], preds[keep] >= 0.9, zero_division=0)
  )
  assert np.isnan(given["metrics"][1]["ci_low"])  # n_boot=0: no interval


def test_task_metrics_one_class_reports_undefined_auc():
  preds = np.linspace(0.1, 0.9, 10)
  report = task_metrics.task_metrics(get_task("sex"), np.zeros(10), preds, np.arange(10), n_boot=50)
  auc, f1 = report["metrics"]
  assert np.isnan(auc["value"]) and auc["note"] == "AUC undefined: all 10 labels are negative"
  assert np.isnan(f1["value"]) and "no positive labels" in f1["note"]


def test_task_metrics_regression_with_baseline():
  labels, frames = testing.regression_frame_outputs()
  preds = frame_averaging.video_predictions(frames)
  _, patients = testing.video_patient_ids(labels.size)
  report = task_metrics.task_metrics(
      get_task("edv"), labels, preds, patients, train_mean=55.0, n_boot=100
  )
  rows = {r["metric"]: r for r in report["metrics"]}
  assert rows["r2"]["value"] == pytest.approx(skm.r2_score(labels, preds))
  assert rows["mae"]["value"] == pytest.approx(skm.mean_absolute_error(labels, preds))
  assert rows["mae"]["unit"] == "mL"
  assert report["baseline_mae"] == pytest.approx(
      skm.mean_absolute_error(labels, np.full(labels.shape, 55.0))
  )
  assert rows["baseline_mae"]["ci_low"] < report["baseline_mae"] < rows["baseline_mae"]["ci_high"]


def test_task_metrics_nan_prediction_raises():
  with pytest.raises(ValueError, match="NaN prediction"):
    task_metrics.task_metrics(get_task("ef"), [50.0, 60.0], [np.nan, 55.0], ["a", "b"], n_boot=0)
