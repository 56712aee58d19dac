"""Categorical metrics against scikit-learn, patient-bootstrap CIs, and the written report."""

import json
import os

import numpy as np
import pytest
from sklearn import metrics as skm

from echonet_jax import tasks
from echonet_jax.evaluation import categorical
from echonet_jax.evaluation import metrics
from echonet_jax.evaluation import reports


def _data(n=60, k=7, seed=0):
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, k, n)
  logits = rng.normal(size=(n, k))
  logits[np.arange(n), labels] += 1.5  # better than chance, not perfect
  probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
  return labels.astype(float), probs


def test_metrics_match_sklearn():
  labels, probs = _data()
  pred = probs.argmax(1)
  assert metrics.accuracy(labels, probs) == pytest.approx(skm.accuracy_score(labels, pred))
  assert metrics.macro_f1(labels, probs) == pytest.approx(
      skm.f1_score(labels, pred, average="macro")
  )
  for k in range(7):
    assert metrics.one_vs_rest_auc(labels, probs, k) == pytest.approx(
        skm.roc_auc_score(labels == k, probs[:, k])
    )
  np.testing.assert_array_equal(
      metrics.confusion_matrix(labels, probs), skm.confusion_matrix(labels, pred, labels=range(7))
  )
  # A weight row is a resample: the same as repeating the items.
  w = np.random.default_rng(1).integers(0, 3, labels.size)
  rep = np.repeat(np.arange(labels.size), w)
  assert metrics.macro_f1(labels, probs, weights=w) == pytest.approx(
      skm.f1_score(labels[rep], pred[rep], average="macro")
  )
  with pytest.raises(ValueError, match="integers in 0..6"):
    metrics.accuracy(np.array([7.0]), probs[:1])


def test_write_eval_writes_metrics_cis_and_confusion(tmp_path):
  task = tasks.get_task("view")
  labels, probs = _data(70)
  labels[3] = np.nan  # a video without a view label is skipped and counted
  # Frames: each video's frames scatter around its probabilities; the video = their mean.
  frames = np.repeat(probs[:, None], 4, axis=1)
  frames[:, :2] *= 0.5
  frames[:, 2:] *= 1.5
  patients = [f"P{i // 7}" for i in range(70)]
  out = reports.write_eval(
      str(tmp_path),
      task,
      [f"V{i}" for i in range(70)],
      patients,
      labels,
      frames,
      n_boot=100,
      seed=0,
      split="test",
  )
  assert sorted(os.listdir(tmp_path)) == ["confusion.png", "metrics.json", "predictions.csv"]
  rows = {r["metric"]: r for r in out["metrics"]}
  assert set(rows) == {"accuracy", "macro_f1", *[f"auc_{c}" for c in task.classes]}
  keep = ~np.isnan(labels)
  assert rows["accuracy"]["value"] == pytest.approx(np.mean(probs[keep].argmax(1) == labels[keep]))
  for row in rows.values():
    assert row["ci_low"] <= row["value"] <= row["ci_high"]
    assert (row["n"], row["n_patients"], row["n_missing_labels"]) == (69, 10, 1)
  assert np.sum(out["confusion"]) == 69
  with open(tmp_path / "metrics.json") as f:
    assert json.load(f)["classes"] == list(tasks.VIEW_CLASSES)
  header = (tmp_path / "predictions.csv").read_text().splitlines()[0].split(",")
  assert header[:5] == ["video_id", "patient_id", "label", "prediction", "confidence"]
  assert header[5:] == [f"prob_{c}" for c in tasks.VIEW_CLASSES]


def test_video_probabilities_ignore_nan_frames():
  frames = np.array([[[0.2, 0.8], [0.6, 0.4], [np.nan, np.nan]]])
  np.testing.assert_allclose(categorical.video_probabilities(frames), [[0.4, 0.6]])
