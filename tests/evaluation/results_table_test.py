"""Tests for echonet_jax.evaluation.results_table: the results table beside the paper's figures."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from echonet_jax import report as report_cli
from echonet_jax.evaluation import reports as evaluate
from echonet_jax.evaluation import results_table as report
from echonet_jax.tasks import get_task
from tests import testing

TASKS = ("pacemaker_leads", "sex", "esv", "edv", "ef", "height")


@pytest.fixture(scope="module")
def workdirs(tmp_path_factory):
  root = tmp_path_factory.mktemp("runs")
  rng = np.random.default_rng(3)
  n = 40
  vids, pts = [f"v{i}" for i in range(n)], [f"p{i // 2}" for i in range(n)]
  esv, edv, ef = testing.ef_volumes(n, seed=4)
  truth = {"esv": esv, "edv": edv, "ef": ef, "height": rng.normal(1.7, 0.1, n)}
  for name in TASKS:
    task = get_task(name)
    if task.is_binary:
      labels = rng.integers(0, 2, n).astype(float)
      frames = np.clip(0.5 * labels[:, None] + rng.random((n, 4)) * 0.6, 0, 1)
    else:
      labels = truth[name]
      frames = labels[:, None] * (1 + rng.normal(0, 0.1, (n, 4)))
    evaluate.write_eval(
        str(root / f"run_{name}" / "eval" / "test"),
        task,
        vids,
        pts,
        labels,
        frames,
        train_mean=float(np.mean(labels)) + 0.01,
        n_boot=50,
        frames_n_boot=0,
    )
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
  assert (
      order.index("pacemaker_leads")
      < order.index("esv")
      < order.index("ef")
      < order.index("ef from predicted ESV/EDV")
      < order.index("sex")
      < order.index("height")
  )


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
    report_cli.main([str(workdirs / "run_lvh_missing"), "--out", str(out)])
  assert "run_lvh_missing" in capsys.readouterr().err
  assert (
      report_cli.main(
          [str(workdirs / "run_ef"), str(workdirs / "run_sex"), "--out", str(out), "--n_boot", "20"]
      )
      == 0
  )
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
  evaluate.write_eval(
      str(root / "eval" / "test"),
      get_task(name),
      [f"v{i}" for i in range(n)],
      [f"p{i // 2}" for i in range(n)],
      labels,
      frames,
      train_mean=55.0,
      n_boot=100,
      frames_n_boot=0,
      data_source=source,
      checkpoint_step=step,
  )
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
