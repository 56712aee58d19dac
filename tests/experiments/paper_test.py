"""python -m echonet_jax.experiments.paper: the plan of each scale, bad inputs, the claims, and a
test-scale study of weight and EF end to end (report, results.json, workdirs, resume)."""

import csv
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from echonet_jax import modes
from echonet_jax import writers
from echonet_jax.data import labels as labels_lib
from echonet_jax.evaluation import paper_claims
from echonet_jax.evaluation import paper_report
from echonet_jax.experiments import paper
from echonet_jax.experiments import paper_plan
from echonet_jax.experiments import paper_runs
from echonet_jax.tasks import TASK_NAMES
from echonet_jax.training import restore
from tests.testing import REPO


def _cli(*args):
  return subprocess.run(
      [sys.executable, "-m", "echonet_jax.experiments.paper", *args],
      capture_output=True,
      text=True,
      cwd=REPO,
      env={**os.environ, "PYTHONPATH": REPO, "JAX_PLATFORMS": "cpu"},
      timeout=900,
  )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--scale=test", "--tasks=weight,bogus"], "unknown task 'bogus'"),
        (["--scale=huge", "--tasks=weight"], "unknown scale 'huge'"),
        (["--scale=test", "--tasks=weight", "--workers=0"], "--workers=0"),
    ],
)
def test_bad_inputs_exit_2_with_one_error_line(args, message, tmp_path, capsys):
  with pytest.raises(SystemExit) as exit_info:
    paper.main([*args, "--out", str(tmp_path / "out")])
  err = capsys.readouterr().err.strip().splitlines()
  assert exit_info.value.code == 2
  assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err


def test_unwritable_out_exits_2(tmp_path, capsys):
  (tmp_path / "file").write_text("not a folder")
  with pytest.raises(SystemExit) as exit_info:
    paper.main(["--scale=test", "--tasks=weight", "--out", str(tmp_path / "file" / "out")])
  err = capsys.readouterr().err.strip()
  assert exit_info.value.code == 2 and err.startswith("error: --out") and "\n" not in err


def test_plan_full_scale_sweeps_every_task_and_runs_every_part():
  runs, skipped, notes = paper_plan.plan("full", TASK_NAMES)
  main = [r for r in runs if r.part == "main"]
  assert [r.kind for r in main] == ["sweep"] * 10
  assert all(len(r.config.sweep.lr) * len(r.config.sweep.weight_decay) == 24 for r in main)
  assert all(r.config.data.image_size in (0, 299) for r in main)
  assert not skipped and not notes
  parts = {r.part for r in runs}
  assert parts == set(paper_plan.PARTS) - {"ef_two_ways", "frames"}
  aug = sorted(r.name for r in runs if r.part == "augmentation")
  assert aug == [
      f"aug_{arm}/{t}" for arm in ("off", "on") for t in ("edv", "esv", "pacemaker_leads")
  ]
  video = next(r for r in runs if r.part == "video")
  assert set(video.tasks) == {"ef", "esv", "edv"} and video.config.model.name == "r2plus1d_18"


def test_plan_cpu_scale_is_single_config_and_short():
  runs, skipped, _ = paper_plan.plan("cpu", TASK_NAMES)
  assert not skipped
  frame_runs = [r for r in runs if r.kind == "train" and r.part != "video"]
  assert {r.config.train.steps for r in frame_runs} == {paper_plan.SCALES["cpu"].steps}
  studies = {r.config.data.phantom.num_studies for r in runs if r.kind != "views"}
  assert studies == {paper_plan.SCALES["cpu"].studies}
  assert all(r.kind != "sweep" for r in runs)
  budget = {r.name: r for r in runs if r.part == "budget"}
  many, few = budget["budget/more_patients"], budget["budget/more_frames"]
  assert many.config.data.num_frames * paper_plan.BUDGET_SHARE == few.config.data.num_frames
  assert few.patient_share == paper_plan.BUDGET_SHARE and many.patient_share == 0


def test_plan_test_scale_names_every_skipped_part():
  runs, skipped, _ = paper_plan.plan("test", ("weight", "ef"))
  assert sorted(r.name for r in runs) == ["main/ef", "main/weight", "multitask"]
  for part in ("ef_two_ways", "augmentation", "budget", "views", "video"):
    assert skipped[part]


def test_claims_decide_from_the_cis():
  diff = lambda lo, hi: {"metric": "r2", "value": (lo + hi) / 2, "ci_low": lo, "ci_high": hi}
  results = {
      "main": {
          "weight": {
              "metrics": {"mae": {"value": 5.0, "ci_low": 4.0, "ci_high": 6.0}},
              "baseline_mae": 10.0,
          },
          "sex": {"metrics": {"auc": {"value": 0.6, "ci_low": 0.45, "ci_high": 0.7}}},
      },
      "multitask": {"weight": diff(-0.1, 0.05)},
      "augmentation": {"weight": diff(0.01, 0.05)},
      "budget": {"weight": diff(-0.2, -0.01)},
      "skipped": {"views": "because", "video": "because", "ef_two_ways": "because"},
  }
  verdicts = {c["claim"]: (c["verdict"], c["reason"]) for c in paper_claims.claims(results)}
  assert verdicts["every task beats the mean prediction"][0] == "not reproduced"
  assert "sex" in verdicts["every task beats the mean prediction"][1]
  assert verdicts["multi-task learning does not help"][0] == "reproduced"
  assert verdicts["augmentation adds 1–4 % AUC and 2–10 % R²"][0] == "reproduced"
  assert verdicts["more patients beat more frames per patient"][0] == "not reproduced"
  assert verdicts["A4C alone loses little against all views"] == (
      "not testable",
      "part skipped: because",
  )


def test_a_difference_between_two_arms_without_skill_is_not_evidence():
  arms = lambda a, b, metric="r2": {
      "metric": metric,
      "a": a,
      "b": b,
      "value": a - b,
      "ci_low": a - b - 0.1,
      "ci_high": a - b + 0.1,
  }
  results = {
      "views": {"esv": arms(-0.26, -3.9)},  # the cpu study's 19 A4C test videos
      "budget": {"esv": arms(0.69, -0.5), "sex": arms(0.8, 0.45, "auc")},
      "video": {"ef": arms(0.4, 0.5), "sex": arms(0.5, 0.45, "auc")},
  }
  verdicts = {c["claim"]: (c["verdict"], c["reason"]) for c in paper_claims.claims(results)}
  verdict, reason = verdicts["A4C alone loses little against all views"]
  assert verdict == "not testable" and "neither arm beats the mean prediction for esv" in reason
  assert verdicts["more patients beat more frames per patient"][0] == "reproduced"
  verdict, reason = verdicts["(EchoNet-Dynamic) a video model beats the frame model on EF"]
  assert verdict == "not testable" and "for sex (" in reason


@pytest.mark.slow
def test_test_scale_study_of_weight_and_ef(tmp_path, monkeypatch):
  out = tmp_path / "paper"
  start = time.perf_counter()
  proc = _cli("--scale=test", "--tasks=weight,ef", "--workers=2", "--out", str(out))
  seconds = time.perf_counter() - start
  assert proc.returncode == 0, proc.stderr[-3000:]
  print(f"--scale=test --tasks=weight,ef took {seconds:.0f} s")
  report = (out / "results.md").read_text()
  for task in ("weight", "ef"):
    for metric in ("R²", "MAE"):
      row = next(l for l in report.splitlines() if l.startswith(f"| {task} | {metric} |"))
      assert any(c.isdigit() for c in row.split("|")[3]), row
  assert "## The paper's claims" in report
  for part in ("2.", "4.", "6.", "7.", "8."):
    section = report.split(f"## {part}")[1].split("##")[0]
    assert "Skipped: " in section, section
  assert "skipped at test scale" in report and "needs ef, esv and edv" in report
  results = json.loads((out / "results.json").read_text())
  assert set(results["main"]) == {"weight", "ef"} and len(results["claims"]) >= 7
  assert set(results["multitask"]) == {"weight", "ef"}
  assert results["runs_trained"] == 3
  assert (out / "frames.png").exists()
  trained = restore.load(str(out / "main" / "weight"))
  assert trained.names == ("weight",)

  def refuse(*args, **kwargs):
    raise AssertionError("a finished run was trained again")

  monkeypatch.setattr(modes, "train", refuse)
  monkeypatch.setattr(modes, "sweep", refuse)
  again = paper.study("test", ("ef", "weight"), str(out))
  assert again["runs_trained"] == 0 and again["runs_skipped"] == 3
  assert "3 finished earlier and skipped, 0 failed" in (out / "results.md").read_text()


def test_budget_subset_keeps_one_in_four_training_patients_and_every_test_patient(tmp_path):
  data = paper_plan.frame_config(paper_plan.SCALES["test"], "weight").data
  source = tmp_path / "phantom" / "labels.csv"
  source.parent.mkdir()
  rows = [f"P{i:03d},S{i:03d},dicom/S{i:03d}.dcm,70" for i in range(200)]
  source.write_text("patient_id,study_id,path,weight\n" + "\n".join(rows) + "\n")
  path = paper_runs.subset_csv(str(source), str(tmp_path / "subset.csv"), 4, data)
  with open(path, newline="") as f:
    kept = list(csv.DictReader(f))
  split = lambda p: labels_lib.patient_split(p, data.split_seed, data.test_frac, data.val_frac)
  all_train = [f"P{i:03d}" for i in range(200) if split(f"P{i:03d}") == "train"]
  train = [r for r in kept if r["split"] == "train"]
  assert len(train) == len(all_train[::4])
  assert all(r["split"] == split(r["patient_id"]) for r in kept)
  held_out = {f"P{i:03d}" for i in range(200)} - set(all_train)
  assert {r["patient_id"] for r in kept if r["split"] != "train"} == held_out
  assert all(os.path.isabs(r["path"]) for r in kept)


def _predictions_csv(path, labels, preds):
  path.parent.mkdir(parents=True, exist_ok=True)
  lines = [f"V{i},P{i},{y:.4f},{p:.4f}" for i, (y, p) in enumerate(zip(labels, preds))]
  path.write_text("video_id,patient_id,label,prediction\n" + "\n".join(lines) + "\n")
  return str(path)


def test_assemble_scores_ef_two_ways_and_the_report_renders_it(tmp_path):
  rng = np.random.default_rng(0)
  edv = rng.uniform(80, 200, 40)
  esv = edv * rng.uniform(0.3, 0.6, 40)
  ef = (edv - esv) / edv * 100
  found = {}
  for task, y, noise in (("esv", esv, 15.0), ("edv", edv, 15.0), ("ef", ef, 2.0)):
    pred = _predictions_csv(tmp_path / task / "predictions.csv", y, y + rng.normal(0, noise, 40))
    metrics = [{"metric": "r2", "value": 0.5, "ci_low": 0.3, "ci_high": 0.7}]
    found[f"main/{task}"] = {"evals": {task: {"metrics": metrics, "predictions": pred}}}
  results = paper.assemble(("esv", "edv", "ef"), [], found, {}, n_boot=100)
  two = results["ef_two_ways"]
  assert [r["method"] for r in two["rows"]] == ["direct", "derived"]
  assert two["r2_difference_ci"][0] > 0  # direct EF (noise 2) beats EF from noisy volumes
  verdicts = {c["claim"]: c["verdict"] for c in results["claims"]}
  assert verdicts["direct EF beats EF derived from predicted ESV and EDV"] == "reproduced"
  results.update(scale="test", tasks=["esv", "edv", "ef"])
  report = paper_report.markdown_report(writers.json_safe(results))
  assert "| ef from predicted ESV/EDV | R² |" in report and "0.33" in report


def test_a_folder_of_another_scale_is_refused(tmp_path, capsys):
  (tmp_path / "main" / "weight").mkdir(parents=True)
  (tmp_path / "main" / "weight" / paper_runs.DONE).write_text('{"scale": "test"}')
  with pytest.raises(SystemExit) as exit_info:
    paper.main(["--scale=cpu", "--tasks=weight", "--out", str(tmp_path)])
  err = capsys.readouterr().err.strip()
  assert exit_info.value.code == 2 and "made at scale 'test'" in err and "\n" not in err


def test_committed_cpu_report_holds_every_part_and_task():
  with open(os.path.join(REPO, "docs", "results.md")) as f:
    text = f.read()
  assert "at `cpu` scale" in text and "Wall time:" in text and "Machine:" in text
  headings = [line[3:].lower() for line in text.splitlines() if line.startswith("## ")]
  for title in paper_plan.PARTS.values():
    assert any(h.startswith(title.lower()[:9]) for h in headings), (title, headings)
  assert "Skipped:" not in text
  for task in TASK_NAMES:
    assert f"| {task} |" in text, task
  for image in ("results_frames.png", "results_ablations.png"):
    assert f"]({image})" in text and os.path.getsize(os.path.join(REPO, "docs", image)) > 0
  assert "## The paper's claims" in text
