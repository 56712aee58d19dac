"""Tests for echonet_jax.evaluation.reports: the files of an eval folder, the recorded threshold."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest

from echonet_jax.evaluation import reports as evaluate
from echonet_jax.tasks import get_task
from tests import testing

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _read_csv(path):
  with open(path, newline="") as f:
    return list(csv.DictReader(f))


def _assert_png(path):
  with open(path, "rb") as f:
    assert f.read(8) == PNG_MAGIC
  assert os.path.getsize(path) > 10_000  # a real plot, not an empty canvas


def _write_eval(out, task, labels, frames, **kwargs):
  """``write_eval`` into ``out`` for ``task``, with video and patient ids, two videos a patient."""
  videos, patients = testing.video_patient_ids(len(labels))
  return evaluate.write_eval(str(out), get_task(task), videos, patients, labels, frames, **kwargs)


def test_write_eval_binary(tmp_path):
  labels, frames = testing.binary_frame_outputs(frames=6)
  labels[3] = np.nan
  out = tmp_path / "run" / "eval" / "val"
  report = _write_eval(out, "pacemaker_leads", labels, frames, n_boot=100, frames_n_boot=20)
  assert sorted(os.listdir(out)) == ["frames.png", "metrics.json", "predictions.csv", "roc.png"]
  for png in ("roc.png", "frames.png"):
    _assert_png(out / png)
  with open(out / "metrics.json") as f:
    on_disk = json.load(f, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
  assert on_disk == report
  assert on_disk["split"] == "val" and on_disk["task"] == "pacemaker_leads"
  assert [r["metric"] for r in on_disk["metrics"]] == ["auc", "f1"]
  assert on_disk["n_missing_labels"] == 1
  assert len(on_disk["frames_curve"]["value"]) == 6
  assert evaluate.read_threshold(str(out / "metrics.json")) == on_disk["threshold"]

  rows = _read_csv(out / "predictions.csv")
  assert len(rows) == labels.size
  assert list(rows[0]) == [
      "video_id",
      "patient_id",
      "label",
      "prediction",
      "predicted_label",
      "quality",
      "checkpoint_step",
  ] + [f"frame_{i:02d}" for i in range(6)]
  assert rows[3]["label"] == "" and rows[0]["video_id"] == "vid000"
  assert float(rows[1]["prediction"]) == pytest.approx(frames[1].mean())
  assert float(rows[1]["frame_05"]) == frames[1, 5]
  assert int(rows[1]["predicted_label"]) == int(frames[1].mean() >= on_disk["threshold"])


def test_write_eval_regression(tmp_path):
  labels, frames = testing.regression_frame_outputs(frames=20)
  out = tmp_path / "eval" / "test"
  report = _write_eval(out, "esv", labels, frames, train_mean=58.0, n_boot=100, frames_n_boot=20)
  assert sorted(os.listdir(out)) == [
      "bland_altman.png",
      "frames.png",
      "metrics.json",
      "predictions.csv",
      "scatter.png",
  ]
  for png in ("bland_altman.png", "frames.png", "scatter.png"):
    _assert_png(out / png)
  assert [r["metric"] for r in report["metrics"]] == ["r2", "mae", "baseline_mae"]
  assert report["train_mean"] == 58.0 and report["unit"] == "mL"
  assert report["frames_curve"]["metric"] == "r2"
  assert len(report["frames_curve"]["value"]) == 20
  rows = _read_csv(out / "predictions.csv")
  assert "predicted_label" not in rows[0]
  assert float(rows[7]["label"]) == labels[7]


def test_write_eval_one_class_writes_null_and_no_roc(tmp_path):
  frames = np.random.default_rng(0).random((10, 3))
  report = _write_eval(tmp_path / "test", "lvh", np.ones(10), frames, n_boot=20)
  with open(tmp_path / "test" / "metrics.json") as f:
    on_disk = json.load(f)
  assert on_disk["metrics"][0]["value"] is None
  assert on_disk["plots"] == [] and "all 10 labels are positive" in on_disk["plots_skipped"]
  assert not (tmp_path / "test" / "roc.png").exists()
  assert report["metrics"][1]["value"] == 1.0  # F1 is still defined: predict all positive


def test_write_eval_rejects_misaligned_inputs(tmp_path):
  with pytest.raises(ValueError, match="differ in length"):
    evaluate.write_eval(
        str(tmp_path),
        get_task("ef"),
        ["a", "b"],
        ["p", "q"],
        [1.0, 2.0],
        np.zeros((3, 4)),
        train_mean=1.0,
    )


def test_read_threshold_errors_name_the_file(tmp_path):
  path = tmp_path / "metrics.json"
  path.write_text(json.dumps({"task": "ef", "metrics": []}))
  with pytest.raises(ValueError, match="no F1 threshold"):
    evaluate.read_threshold(str(path))
  with pytest.raises(ValueError, match="missing.json"):
    evaluate.read_threshold(str(tmp_path / "missing.json"))


def test_write_eval_with_few_patients_reports_no_interval_and_records_the_step(tmp_path):
  # Three patients: the old code printed "R² -5.81, 95% CI -5.81 to -5.81". Now null and why.
  labels, frames = np.array([50.0, 60.0, 55.0]), np.array([[70.0, 71], [40, 41], [62, 63]])
  out = tmp_path / "eval" / "test"
  report = evaluate.write_eval(
      str(out),
      get_task("ef"),
      ["a", "b", "c"],
      ["p", "q", "r"],
      labels,
      frames,
      train_mean=55.0,
      n_boot=200,
      frames_n_boot=50,
      checkpoint_step=400,
      quality=["ok", "blank", "ok"],
  )
  with open(out / "metrics.json") as f:
    on_disk = json.load(f)
  assert on_disk == report and on_disk["checkpoint_step"] == 400
  assert on_disk["n_quality_flagged"] == 1
  for row in on_disk["metrics"]:
    assert row["ci_low"] is None and row["ci_high"] is None, row
    assert "only 3 patients" in row["ci_note"] and 0 <= row["n_boot_valid"] <= 200
  assert all(v is None for v in on_disk["frames_curve"]["ci_low"])
  rows = _read_csv(out / "predictions.csv")
  assert [r["quality"] for r in rows] == ["ok", "blank", "ok"]
  assert {r["checkpoint_step"] for r in rows} == {"400"}


def test_write_eval_records_valid_resamples_when_the_interval_is_real(tmp_path):
  labels, frames = testing.regression_frame_outputs(n=40)
  report = _write_eval(tmp_path / "test", "ef", labels, frames, n_boot=100, frames_n_boot=0)
  r2 = report["metrics"][0]
  assert r2["n_boot_valid"] == 100 and "ci_note" not in r2
  assert r2["ci_low"] < r2["value"] < r2["ci_high"]
  assert report["checkpoint_step"] is None
  assert {r["quality"] for r in _read_csv(tmp_path / "test" / "predictions.csv")} == {""}
