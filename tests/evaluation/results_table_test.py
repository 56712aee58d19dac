"""Tests for echonet_jax.evaluation.results_table: the results table and EF computed two ways."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest
from sklearn import metrics as skm

from echonet_jax.evaluation import reports as evaluate
from echonet_jax.evaluation import results_table as report
from echonet_jax.tasks import get_task


def _write_predictions(path, video_ids, patient_ids, labels, preds):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["video_id", "patient_id", "label", "prediction", "frame_00"])
    for v, p, y, yhat in zip(video_ids, patient_ids, labels, preds):
      w.writerow([v, p, "" if np.isnan(y) else repr(float(y)), repr(float(yhat)),
                  repr(float(yhat))])
  return str(path)


def _volumes(n=60, seed=0):
  rng = np.random.default_rng(seed)
  edv = rng.normal(120, 30, n).clip(50)
  ef = rng.normal(55, 10, n).clip(15, 80)
  return edv * (1 - ef / 100), edv, ef


def test_ef_two_ways_derives_ef_from_volume_predictions(tmp_path):
  esv, edv, ef = _volumes()
  n = ef.size
  rng = np.random.default_rng(1)
  vids = [f"v{i}" for i in range(n)]
  pts = [f"p{i // 3}" for i in range(n)]
  esv_hat = esv + rng.normal(0, 8, n)
  edv_hat = edv + rng.normal(0, 12, n)
  ef_hat = ef + rng.normal(0, 5, n)
  ef_label = ef.copy()
  ef_label[4] = np.nan
  # Different row orders and one extra EF video: the join is on video_id.
  order = rng.permutation(n)
  ef_csv = _write_predictions(tmp_path / "ef.csv", vids + ["extra"], pts + ["px"],
                              np.r_[ef_label, 50.0], np.r_[ef_hat, 50.0])
  esv_csv = _write_predictions(tmp_path / "esv.csv", [vids[i] for i in order],
                               [pts[i] for i in order], esv[order], esv_hat[order])
  edv_csv = _write_predictions(tmp_path / "edv.csv", vids, pts, edv, edv_hat)

  out = report.ef_two_ways(ef_csv, esv_csv, edv_csv, n_boot=200)
  keep = ~np.isnan(ef_label)
  derived = (edv_hat - esv_hat) / edv_hat * 100
  direct_row, derived_row = out["rows"]
  assert (direct_row["method"], derived_row["method"]) == ("direct", "derived")
  assert out["n"] == n - 1 and out["n_missing_labels"] == 1 and out["n_only_in_ef"] == 1
  assert derived_row["r2"] == pytest.approx(skm.r2_score(ef[keep], derived[keep]))
  assert derived_row["mae"] == pytest.approx(skm.mean_absolute_error(ef[keep], derived[keep]))
  assert direct_row["r2"] == pytest.approx(skm.r2_score(ef[keep], ef_hat[keep]))
  assert out["r2_difference"] == pytest.approx(direct_row["r2"] - derived_row["r2"])
  lo, hi = out["r2_difference_ci"]
  assert lo <= out["r2_difference"] <= hi
  assert "| derived: (EDV − ESV) / EDV" in out["markdown"] and "0.33" in out["markdown"]


def test_ef_two_ways_perfect_volumes_give_perfect_ef(tmp_path):
  esv, edv, ef = _volumes(n=20, seed=2)
  vids, pts = [f"v{i}" for i in range(20)], [f"p{i}" for i in range(20)]
  out = report.ef_two_ways(None, _write_predictions(tmp_path / "esv.csv", vids, pts, esv, esv),
                           _write_predictions(tmp_path / "edv.csv", vids, pts, edv, edv), n_boot=0)
  (row,) = out["rows"]
  assert out["truth"] == "EF from true ESV/EDV labels"
  assert row["r2"] == pytest.approx(1.0) and row["mae"] == pytest.approx(0.0, abs=1e-9)


def test_ef_two_ways_without_common_videos_raises(tmp_path):
  a = _write_predictions(tmp_path / "a.csv", ["v1"], ["p1"], [1.0], [1.0])
  b = _write_predictions(tmp_path / "b.csv", ["v2"], ["p2"], [1.0], [1.0])
  with pytest.raises(ValueError, match="no video_id common"):
    report.ef_two_ways(None, a, b)


def test_read_predictions_errors_name_the_file(tmp_path):
  bad = tmp_path / "bad.csv"
  bad.write_text("video_id,label\nv1,2\n")
  with pytest.raises(ValueError, match=r"bad\.csv: missing columns \['patient_id', 'prediction'\]"):
    report.read_predictions(str(bad))
  bad.write_text("video_id,patient_id,label,prediction\nv1,p1,abc,1\n")
  with pytest.raises(ValueError, match=r"bad\.csv:2: bad number"):
    report.read_predictions(str(bad))


TASKS = ("pacemaker_leads", "sex", "esv", "edv", "ef", "height")


@pytest.fixture(scope="module")
def workdirs(tmp_path_factory):
  root = tmp_path_factory.mktemp("runs")
  rng = np.random.default_rng(3)
  n = 40
  vids, pts = [f"v{i}" for i in range(n)], [f"p{i // 2}" for i in range(n)]
  esv, edv, ef = _volumes(n, seed=4)
  truth = {"esv": esv, "edv": edv, "ef": ef, "height": rng.normal(1.7, 0.1, n)}
  for name in TASKS:
    task = get_task(name)
    if task.is_binary:
      labels = rng.integers(0, 2, n).astype(float)
      frames = np.clip(0.5 * labels[:, None] + rng.random((n, 4)) * 0.6, 0, 1)
    else:
      labels = truth[name]
      frames = labels[:, None] * (1 + rng.normal(0, 0.1, (n, 4)))
    evaluate.write_eval(str(root / f"run_{name}" / "eval" / "test"), task, vids, pts, labels,
                        frames, train_mean=float(np.mean(labels)) + 0.01, n_boot=50,
                        frames_n_boot=0)
  return root


def test_results_table_lists_every_task_with_paper_figures(workdirs):
  dirs = [str(workdirs / f"run_{name}") for name in TASKS]
  table = report.results_table(dirs, "test", n_boot=50)
  results, two_ways = table.split("\n\nEF two ways")  # the main table, then the EF comparison
  rows = [line.split(" | ") for line in results.splitlines() if line.startswith("| ")]
  header, body = rows[0], rows[1:]
  assert "| direct: EF model |" in two_ways
  assert header[0] == "| task" and "paper" in header and "mean-prediction baseline" in header
  assert {r[0].lstrip("| ") for r in body} == set(TASKS) | {"ef from predicted ESV/EDV"}
  by_key = {(r[0].lstrip("| "), r[1].split(" @")[0]): r for r in body}
  assert by_key[("pacemaker_leads", "ROC AUC")][6] == "0.89"
  assert by_key[("pacemaker_leads", "F1")][1].startswith("F1 @ ")
  assert by_key[("esv", "MAE")][6] == "13.3 mL" and by_key[("esv", "MAE")][7].startswith("25.4 mL")
  assert by_key[("height", "R²")][6] == "0.33"
  assert by_key[("ef from predicted ESV/EDV", "R²")][6] == "0.33"
  assert "R² direct − derived" in table
  # Rows follow the paper's order.
  order = [r[0].lstrip("| ") for r in body]
  assert order.index("pacemaker_leads") < order.index("esv") < order.index("ef") < order.index(
      "ef from predicted ESV/EDV") < order.index("sex") < order.index("height")


def test_results_table_accepts_a_folder_of_workdirs(workdirs):
  table = report.results_table(str(workdirs))
  assert all(f"| {name} |" in table for name in TASKS)
  one = report.results_table(str(workdirs / "run_sex" / "eval" / "test" / "metrics.json"))
  assert "| sex |" in one and "| esv |" not in one


def test_results_table_missing_or_bad_input(tmp_path, workdirs):
  with pytest.raises(FileNotFoundError, match="no metrics.json for split 'val'"):
    report.results_table(str(workdirs), "val")
  bad = tmp_path / "metrics.json"
  bad.write_text(json.dumps({"hello": 1}))
  with pytest.raises(ValueError, match="not an evaluate metrics.json"):
    report.results_table(str(bad))


def test_cli_prints_and_writes_results_md(workdirs, tmp_path, capsys):
  out = tmp_path / "results.md"
  with pytest.raises(SystemExit):  # a missing workdir is an error naming it
    report.main([str(workdirs / "run_lvh_missing"), "--out", str(out)])
  assert "run_lvh_missing" in capsys.readouterr().err
  assert report.main([str(workdirs / "run_ef"), str(workdirs / "run_sex"), "--out", str(out),
                      "--n_boot", "20"]) == 0
  printed = capsys.readouterr().out
  assert out.read_text() == printed
  assert "| ef |" in printed and "| sex |" in printed


def test_find_metrics_files_sees_the_multitask_layout(tmp_path):
  for task in ("ef", "weight"):
    path = tmp_path / "run" / "eval" / "test" / task
    path.mkdir(parents=True)
    (path / "metrics.json").write_text("{}")
  found = report.find_metrics_files(str(tmp_path / "run"), "test")
  assert [os.path.basename(os.path.dirname(f)) for f in found] == ["ef", "weight"]


def _one_task_run(root, name, n_patients, source=None, step=None):
  rng = np.random.default_rng(5)
  n = 2 * n_patients
  labels = rng.normal(55, 10, n)
  frames = labels[:, None] + rng.normal(0, 4, (n, 3))
  evaluate.write_eval(str(root / "eval" / "test"), get_task(name), [f"v{i}" for i in range(n)],
                      [f"p{i // 2}" for i in range(n)], labels, frames, train_mean=55.0,
                      n_boot=100, frames_n_boot=0, data_source=source, checkpoint_step=step)
  return str(root)


def _body(table):
  rows = [line.split(" | ") for line in table.splitlines() if line.startswith("| ")]
  return rows[0], {(r[0].lstrip("| "), r[1]): r for r in rows[1:]}


def test_echonet_dynamic_ef_compares_with_echonet_dynamic_and_shows_the_step(tmp_path):
  table = report.results_table(_one_task_run(tmp_path / "dyn", "ef", 20, "echonet_dynamic", 1200))
  header, rows = _body(table)
  assert header[-2:] == ["reference", "checkpoint step |"]
  assert rows[("ef", "R²")][6] == "0.81" and rows[("ef", "MAE")][6] == "4.1 %"
  assert rows[("ef", "R²")][8] == "Ouyang 2020 (EchoNet-Dynamic)"
  assert rows[("ef", "R²")][9] == "1200 |"
  assert "Ouyang et al., Nature 2020" in table and "Ghorbani" not in table
  phantom = report.results_table(_one_task_run(tmp_path / "ph", "ef", 20, "phantom", 5))
  _, rows = _body(phantom)
  assert rows[("ef", "R²")][6] == "0.50" and rows[("ef", "R²")][8] == "Ghorbani 2020"


def test_few_patients_give_n_a_never_a_zero_width_interval(tmp_path):
  table = report.results_table(_one_task_run(tmp_path / "few", "ef", 3))
  _, rows = _body(table)
  for metric in ("R²", "MAE"):
    assert rows[("ef", metric)][3].startswith("n/a (only 3 patients"), rows[("ef", metric)]
  assert " to " not in rows[("ef", "R²")][3]
