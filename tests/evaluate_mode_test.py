"""Evaluate and predict modes on phantom-trained CPU-sized models (issue: evaluation)."""

import csv
import json
import os

import pytest

from configs import default
from echonet_jax import modes
from echonet_jax.training import restore


def _metrics(workdir, split="test"):
  with open(os.path.join(workdir, "eval", split, "metrics.json")) as f:
    return json.load(f)


def _row(report, name):
  return next(r for r in report["metrics"] if r["metric"] == name)


# A regression task beside weight: ESV, whose frames carry it well (test MAE 14.9 mL against 24.6 mL
# for the mean, 2026-12-06). EF after 800 steps on 96 px frames sat on the mean's MAE (9.96 vs 10.48 %
# on 2026-12-04, 10.73 vs 10.48 % in a fresh venv on 2026-12-06): a coin toss, not a test. ESV's R² is
# pulled about by one or two dilated hearts among the 36 test videos, so only weight's must clear 0.1.
@pytest.mark.slow
@pytest.mark.parametrize("task, min_r2", [("weight", 0.1), ("esv", None)])
def test_phantom_model_beats_the_mean_baseline(trained_workdir, task, min_r2):
  workdir = trained_workdir(task)
  results = modes.evaluate(default.get_config("cpu", task=task), workdir, "test")
  report = _metrics(workdir)
  assert results[task]["split"] == "test"
  mae, r2 = _row(report, "mae"), _row(report, "r2")
  baseline = report["baseline_mae"]
  assert mae["value"] < baseline, (mae, baseline)
  assert min_r2 is None or r2["value"] > min_r2, r2
  assert mae["ci_low"] <= mae["value"] <= mae["ci_high"]
  for name in ("predictions.csv", "metrics.json", "scatter.png", "bland_altman.png", "frames.png"):
    assert os.path.getsize(os.path.join(workdir, "eval", "test", name)) > 0, name
  with open(os.path.join(workdir, "eval", "test", "predictions.csv")) as f:
    rows = list(csv.DictReader(f))
  assert rows and {"video_id", "patient_id", "quality", "checkpoint_step"} <= set(rows[0])
  step = restore.load(workdir).step
  assert report["checkpoint_step"] == step and {r["checkpoint_step"] for r in rows} == {str(step)}
  assert report["data_source"] == "phantom"
  assert all(r["quality"] for r in rows)  # the cache's sector flag ("ok" or a reason), or blank
  assert f"| {step} |" in open(os.path.join(workdir, "eval", "test", "results.md")).read()
  assert os.path.exists(os.path.join(workdir, "eval", "test", "results.md"))


@pytest.mark.slow
def test_predict_batch_survives_any_failure_of_one_input(trained_workdir, failing_batch, tmp_path):
  real, bad, oom, odd = failing_batch
  missing = str(tmp_path / "missing.dcm")
  workdir = trained_workdir("weight")
  result = modes.predict(
      None, [workdir], [real, bad, missing, oom, odd], str(tmp_path / "pred.csv")
  )
  assert (result.num_ok, result.num_failed) == (1, 4)
  with open(result) as f:  # the result is also the CSV's path
    text = f.read()
  assert "DOE" not in text  # an exception's text is never quoted
  rows = {os.path.basename(r["path"]): r for r in csv.DictReader(text.splitlines())}
  good = rows["color3d_jpeg_baseline.dcm"]
  assert good["error_type"] == "" and 20 < float(good["weight"]) < 250
  assert abs(float(good["frame_time_ms"]) - 33.33) < 0.1
  assert good["quality"] == "ok" and good["checkpoint_step"] == str(restore.load(workdir).step)
  assert (
      rows["not_dicom.dcm"]["error_type"] == "NotDicomError"
      and rows["not_dicom.dcm"]["weight"] == ""
  )
  assert rows["missing.dcm"]["error_type"] == "FileMissingError"
  assert rows["oom.dcm"]["error_type"] == "MemoryError"
  assert rows["oom.dcm"]["error"] == "out of memory while reading"
  assert rows["odd.dcm"]["error_type"] == "ValueError"
  assert rows["odd.dcm"]["error"] == "unexpected ValueError while reading"


@pytest.mark.slow
def test_evaluate_loads_the_best_checkpoint_by_val_score(trained_workdir):
  from echonet_jax import writers  # pylint: disable=g-import-not-at-top
  from echonet_jax.training import restore  # pylint: disable=g-import-not-at-top

  workdir = trained_workdir("weight")
  kept = sorted(int(n) for n in os.listdir(os.path.join(workdir, "checkpoints")) if n.isdigit())
  scores = {
      r["step"]: r["val/score"]
      for r in writers.read_metrics(workdir)
      if r.get("val/score") is not None and r["step"] in kept
  }
  assert len(scores) == len(kept) >= 2, (kept, scores)
  best = min(scores, key=scores.get)
  trained = restore.load(workdir)
  assert trained.step == best and trained.best_score == pytest.approx(scores[best])
  assert restore.load(workdir, which="latest").step == max(kept)
  results = modes.evaluate(None, workdir, "val")  # no config: the workdir's saved one
  assert results["weight"]["checkpoint_step"] == best
