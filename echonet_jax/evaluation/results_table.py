"""The results table: every evaluated task beside the paper's figures, and EF computed two ways.

Reads what :mod:`echonet_jax.evaluation.reports` wrote (``metrics.json`` and ``predictions.csv`` under
``WORKDIR/eval/<split>/``). Usage::

  python -m echonet_jax.evaluation.results_table WORKDIR [WORKDIR ...] [--split test] [--out results.md]

Each argument may be a workdir, its ``eval`` folder, a split folder, a ``metrics.json`` file, or a folder
holding many workdirs (searched recursively for ``eval/<split>/metrics.json``).
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import math
import os
from typing import Any
from typing import Sequence

import numpy as np

from echonet_jax.evaluation import metrics
from echonet_jax.evaluation.reports import METRICS_FILE
from echonet_jax.evaluation.reports import PREDICTIONS_FILE

# Ghorbani et al. 2020, 337-patient test set, A4C input (see PAPER.md).
PAPER: dict[str, dict[str, float]] = {
    "pacemaker_leads": {"auc": 0.89, "f1": 0.73},
    "severe_lae": {"auc": 0.86, "f1": 0.68},
    "lvh": {"auc": 0.75, "f1": 0.57},
    "esv": {"r2": 0.74, "mae": 13.3, "baseline_mae": 25.4},
    "edv": {"r2": 0.70, "mae": 20.5, "baseline_mae": 35.4},
    "ef": {"r2": 0.50, "mae": 7.0, "baseline_mae": 9.9},
    "ef_derived": {"r2": 0.33},
    "age": {"r2": 0.46, "mae": 9.8, "baseline_mae": 13.4},
    "sex": {"auc": 0.88},
    "weight": {"r2": 0.56, "mae": 10.7, "baseline_mae": 15.4},
    "height": {"r2": 0.33, "mae": 0.07, "baseline_mae": 0.09},
}
# Ouyang et al., Nature 2020 (EchoNet-Dynamic), its own test set: EF from A4C videos.
ECHONET_DYNAMIC_PAPER: dict[str, dict[str, float]] = {"ef": {"r2": 0.81, "mae": 4.1}}
GHORBANI = "Ghorbani 2020"
OUYANG = "Ouyang 2020 (EchoNet-Dynamic)"
ROW_ORDER = tuple(PAPER)
METRIC_NAMES = {"auc": "ROC AUC", "f1": "F1", "r2": "R²", "mae": "MAE"}
DERIVED_EF = "ef_derived"
MINUS = "\u2212"


def paper_figures(task: str, source: str | None) -> tuple[str, dict[str, float]]:
  """(reference, figures) a task's results compare with: the paper that matches the data source.

  EchoNet-Dynamic caches (cache meta ``source`` "echonet_dynamic") compare EF with EchoNet-Dynamic's own
  figures; a task that paper did not report has no figures. Other sources compare with Ghorbani 2020.
  """
  if source == "echonet_dynamic":
    figures = ECHONET_DYNAMIC_PAPER.get(task, {})
    return (OUYANG if figures else ""), figures
  figures = PAPER.get(task, {})
  return (GHORBANI if figures else ""), figures


def _num(v: float | None, unit: str = "") -> str:
  if v is None or not math.isfinite(v):
    return "—"
  a = abs(v)
  text = f"{v:.1f}" if a >= 10 else f"{v:.2f}" if a >= 1 else f"{v:.3f}" if a >= 0.01 else f"{v:.3g}"
  return f"{text.replace('-', MINUS)} {unit}".strip()


def _ci(lo: float | None, hi: float | None, note: str | None = None) -> str:
  """"a to b" with true minus signs; "n/a" (and why, when known) for an unavailable interval."""
  if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
    reason = (note or "").replace("95% CI n/a: ", "")
    return f"n/a ({reason})" if reason else "n/a"
  return f"{_num(lo)} to {_num(hi)}"


def _paper(v: float | None, unit: str = "") -> str:
  """A paper figure as printed there: two decimals for scores and small MAEs, else one."""
  if v is None:
    return ""
  return f"{v:.2f} {unit}".strip() if abs(v) < 1 or not unit else f"{v:.1f} {unit}"


def find_metrics_files(path: str, split: str = "test") -> list[str]:
  """The metrics.json files of ``split`` under ``path`` (see the module docstring for what it may be)."""
  if os.path.isfile(path):
    return [path]
  for candidate in (os.path.join(path, METRICS_FILE), os.path.join(path, split, METRICS_FILE),
                    os.path.join(path, "eval", split, METRICS_FILE)):  # single-task layouts
    if os.path.isfile(candidate):
      return [candidate]
  found = sorted(glob.glob(os.path.join(path, "**", "eval", split, METRICS_FILE), recursive=True)
                 + glob.glob(os.path.join(path, "**", "eval", split, "*", METRICS_FILE),
                             recursive=True))
  if not found:
    raise FileNotFoundError(f"{path}: no {METRICS_FILE} for split {split!r} (looked for "
                            f"{METRICS_FILE}, {split}/{METRICS_FILE}, eval/{split}/{METRICS_FILE} "
                            "and below)")
  return found


def _load_metrics(path: str) -> dict[str, Any]:
  try:
    with open(path) as f:
      data = json.load(f)
  except (OSError, json.JSONDecodeError) as e:
    raise ValueError(f"{path}: cannot read metrics: {e}") from e
  if not isinstance(data, dict) or "task" not in data or "metrics" not in data:
    raise ValueError(f"{path}: not an evaluate metrics.json (needs 'task' and 'metrics')")
  return data


def read_predictions(path: str) -> dict[str, tuple[str, float, float]]:
  """predictions.csv → {video_id: (patient_id, label, prediction)}; a blank label is NaN."""
  try:
    with open(path, newline="") as f:
      reader = csv.DictReader(f)
      missing = {"video_id", "patient_id", "label", "prediction"} - set(reader.fieldnames or ())
      if missing:
        raise ValueError(f"{path}: missing columns {sorted(missing)}")
      out = {}
      for line, row in enumerate(reader, start=2):
        try:
          label = float(row["label"]) if row["label"] else float("nan")
          prediction = float(row["prediction"]) if row["prediction"] else float("nan")
        except ValueError as e:
          raise ValueError(f"{path}:{line}: bad number: {e}") from e
        if row["video_id"] in out:
          raise ValueError(f"{path}:{line}: duplicate video_id {row['video_id']!r}")
        out[row["video_id"]] = (row["patient_id"], label, prediction)
      return out
  except OSError as e:
    raise ValueError(f"{path}: cannot read predictions: {e}") from e


def _paired_r2_difference(y, a, b, weights=None):
  return np.asarray(metrics.r2(y, a, weights)) - np.asarray(metrics.r2(y, b, weights))


def ef_two_ways(ef_pred_csv: str | None, esv_pred_csv: str, edv_pred_csv: str, *,
                n_boot: int = 1000, seed: int = 0, alpha: float = 0.05,
                source: str | None = None) -> dict[str, Any]:
  """EF predicted directly vs derived as (EDV − ESV) / EDV · 100 from the ESV and EDV models.

  Joins the three predictions.csv files on video_id and scores both on the same videos against the EF
  label (from the EF file; when ``ef_pred_csv`` is None, against EF computed from the true ESV/EDV
  labels, and only the derived row is given). Returns per-method R² and MAE with patient-bootstrap CIs,
  the paired R² difference, counts of videos left out, and ``markdown``. The direct row's paper R²
  follows the data ``source`` (see :func:`paper_figures`); the derived one is Ghorbani 2020's.
  """
  esv, edv = read_predictions(esv_pred_csv), read_predictions(edv_pred_csv)
  ef = read_predictions(ef_pred_csv) if ef_pred_csv else None
  ids = sorted(set(esv) & set(edv) & (set(ef) if ef is not None else set(esv)))
  if not ids:
    raise ValueError(f"no video_id common to {ef_pred_csv}, {esv_pred_csv} and {edv_pred_csv}")
  esv_hat = np.array([esv[i][2] for i in ids])
  edv_hat = np.array([edv[i][2] for i in ids])
  with np.errstate(invalid="ignore", divide="ignore"):
    derived = np.where(edv_hat > 0, (edv_hat - esv_hat) / edv_hat * 100, np.nan)
    if ef is not None:
      truth = np.array([ef[i][1] for i in ids])
      direct = np.array([ef[i][2] for i in ids])
      truth_source = "EF label"
    else:
      esv_true, edv_true = np.array([esv[i][1] for i in ids]), np.array([edv[i][1] for i in ids])
      truth = np.where(edv_true > 0, (edv_true - esv_true) / edv_true * 100, np.nan)
      direct = None
      truth_source = "EF from true ESV/EDV labels"
  patients = np.array([(ef or esv)[i][0] for i in ids])
  n_invalid = int(np.sum(~np.isfinite(derived) & np.isfinite(truth)))
  keep = np.isfinite(truth) & np.isfinite(derived)
  if direct is not None:
    keep &= np.isfinite(direct)
  n_missing = int(np.sum(~np.isfinite(truth)))
  y, groups = truth[keep], patients[keep]
  methods = [("derived", "(EDV − ESV) / EDV from the ESV and EDV models", derived[keep])]
  if direct is not None:
    methods.insert(0, ("direct", "EF model", direct[keep]))
  ci = dict(n_boot=n_boot, seed=seed, alpha=alpha)
  rows = []
  for key, description, pred in methods:
    r2_ci = metrics.bootstrap_interval(metrics.r2, groups, y, pred, **ci)
    mae_ci = metrics.bootstrap_interval(metrics.mae, groups, y, pred, **ci)
    reference, figures = (paper_figures("ef", source) if key == "direct" else
                          (GHORBANI, PAPER[DERIVED_EF]))
    rows.append({
        "method": key, "description": description,
        "r2": metrics.r2(y, pred), "r2_ci": (r2_ci.low, r2_ci.high), "r2_ci_note": r2_ci.note,
        "mae": metrics.mae(y, pred), "mae_ci": (mae_ci.low, mae_ci.high),
        "mae_ci_note": mae_ci.note, "n_boot_valid": r2_ci.n_valid,
        "paper_r2": figures.get("r2"), "reference": reference,
    })
  out: dict[str, Any] = {
      "n": int(y.size), "n_patients": int(np.unique(groups).size), "truth": truth_source,
      "n_joined": len(ids), "n_missing_labels": n_missing, "n_invalid_derived": n_invalid,
      "n_only_in_ef": len(set(ef) - set(ids)) if ef is not None else 0, "rows": rows,
  }
  if direct is not None:
    d = _paired_r2_difference(y, direct[keep], derived[keep])
    out["r2_difference"] = float(d)
    difference = metrics.bootstrap_interval(_paired_r2_difference, groups, y, direct[keep],
                                            derived[keep], **ci)
    out["r2_difference_ci"] = (difference.low, difference.high)
    out["r2_difference_ci_note"] = difference.note
  lines = [
      f"EF two ways ({out['n']} videos, {out['n_patients']} patients; truth: {truth_source})",
      "",
      "| EF method | R² | 95% CI | MAE | 95% CI | paper R² | reference |",
      "|---|---|---|---|---|---|---|",
  ]
  for r in rows:
    lines.append(f"| {r['method']}: {r['description']} | {_num(r['r2'])} | "
                 f"{_ci(*r['r2_ci'], r['r2_ci_note'])} | {_num(r['mae'], '%')} | "
                 f"{_ci(*r['mae_ci'], r['mae_ci_note'])} | {_paper(r['paper_r2'])} | "
                 f"{r['reference']} |")
  if "r2_difference" in out:
    lines += ["", f"R² direct − derived: {_num(out['r2_difference'])} "
              f"(95% CI {_ci(*out['r2_difference_ci'], out['r2_difference_ci_note'])}, paired "
              "patient bootstrap)"]
  out["markdown"] = "\n".join(lines) + "\n"
  return out


def _task_rows(data: dict[str, Any], label: str) -> list[list[str]]:
  reference, paper = paper_figures(data["task"], data.get("data_source"))
  step = data.get("checkpoint_step")
  step = "" if step is None else str(step)
  rows = []
  for m in data["metrics"]:
    name = m["metric"]
    if name == "baseline_mae":
      continue
    unit = m.get("unit", "")
    metric = METRIC_NAMES.get(name, name)
    if name == "f1" and m.get("threshold") is not None:
      source = m.get("threshold_source") or "?"
      source = "this split" if source.startswith("chosen on this split") else source
      metric += f" @ {m['threshold']:.3g} ({source})"
    value = _num(m["value"], unit) if m["value"] is not None else "undefined"
    ci = (_ci(m["ci_low"], m["ci_high"], m.get("ci_note")) if m["value"] is not None
          else m.get("note", ""))
    baseline = paper_baseline = ""
    if name == "mae":
      baseline = _num(data.get("baseline_mae"), unit)
      paper_baseline = _paper(paper.get("baseline_mae"), unit)
    rows.append([label, metric, value, ci, f"{m['n']} ({m['n_patients']})", baseline,
                 _paper(paper.get(name), unit if name == "mae" else ""), paper_baseline,
                 reference if name in paper else "", step])
  return rows


def results_table(paths: str | Sequence[str], split: str = "test", *, n_boot: int = 1000,
                  seed: int = 0) -> str:
  """Markdown table of every task evaluated under ``paths`` on ``split``, beside the paper's figures.

  When ESV and EDV predictions are among them, adds EF derived from them (scored against the EF model's
  labels when an EF evaluation is present) and the EF two-ways comparison.
  """
  if isinstance(paths, str):
    paths = [paths]
  found: list[tuple[str, dict[str, Any]]] = []
  for path in paths:
    for file in find_metrics_files(path, split):
      found.append((file, _load_metrics(file)))
  if not found:
    raise FileNotFoundError(f"no {METRICS_FILE} for split {split!r} under {list(paths)}")
  by_task: dict[str, list[str]] = {}
  for file, data in found:
    by_task.setdefault(data["task"], []).append(file)
  order = {t: i for i, t in enumerate(ROW_ORDER)}
  found.sort(key=lambda item: (order.get(item[1]["task"], len(order)), item[0]))

  def label(file: str, task: str) -> str:
    if len(by_task[task]) == 1:
      return task
    run = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(file))))
    return f"{task} ({os.path.basename(run)})"

  def predictions(task: str) -> str | None:
    if len(by_task.get(task, ())) != 1:
      return None
    path = os.path.join(os.path.dirname(by_task[task][0]), PREDICTIONS_FILE)
    return path if os.path.isfile(path) else None

  rows = []
  two_ways = None
  for file, data in found:
    rows += _task_rows(data, label(file, data["task"]))
    if data["task"] == "ef" or (data["task"] == "edv" and "ef" not in by_task):
      if predictions("esv") and predictions("edv"):
        two_ways = ef_two_ways(predictions("ef"), predictions("esv"), predictions("edv"),
                               n_boot=n_boot, seed=seed, source=data.get("data_source"))
        derived = next(r for r in two_ways["rows"] if r["method"] == "derived")
        count = f"{two_ways['n']} ({two_ways['n_patients']})"
        rows.append(["ef from predicted ESV/EDV", "R²", _num(derived["r2"]),
                     _ci(*derived["r2_ci"], derived["r2_ci_note"]), count, "",
                     _paper(PAPER[DERIVED_EF]["r2"]), "", GHORBANI, ""])
        rows.append(["ef from predicted ESV/EDV", "MAE", _num(derived["mae"], "%"),
                     _ci(*derived["mae_ci"], derived["mae_ci_note"]), count, "", "", "", "", ""])
  n_boots = sorted({d.get("n_boot") for _, d in found if d.get("n_boot") is not None})
  references = sorted({r[8] for r in rows if r[8]})
  cited = {GHORBANI: "Ghorbani et al. 2020 (337-patient test set, A4C)",
           OUYANG: "Ouyang et al., Nature 2020 (EchoNet-Dynamic test set)"}
  header = ["task", "metric", "value", "95% CI", "n videos (patients)",
            "mean-prediction baseline", "paper", "paper baseline", "reference", "checkpoint step"]
  lines = [
      f"Results on the {split} split. 95% CI: percentile bootstrap over patients "
      f"({', '.join(str(b) for b in n_boots) or '?'} resamples; n/a with fewer than "
      f"{metrics.MIN_CI_PATIENTS} patients, under {metrics.MIN_VALID_FRACTION:.0%} of resamples "
      "defined, or a zero width). Paper: "
      f"{'; '.join(cited[r] for r in references) or 'none for these tasks'}. Baseline: MAE of "
      "always predicting the training mean.",
      "",
      "| " + " | ".join(header) + " |",
      "|" + "---|" * len(header),
  ]
  lines += ["| " + " | ".join(r) + " |" for r in rows]
  if two_ways is not None:
    lines += ["", two_ways["markdown"].rstrip("\n")]
  return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
  """CLI entry point: prints the results table and writes results.md."""
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("dirs", nargs="+", help="workdirs (or eval folders, or folders of workdirs)")
  parser.add_argument("--split", default="test")
  parser.add_argument("--out", default="results.md", help="markdown file to write")
  parser.add_argument("--n_boot", type=int, default=1000, help="bootstrap resamples for derived EF")
  args = parser.parse_args(argv)
  try:
    table = results_table(args.dirs, args.split, n_boot=args.n_boot)
  except (ValueError, FileNotFoundError) as e:
    parser.exit(2, f"error: {e}\n")
  print(table, end="")
  with open(args.out, "w") as f:
    f.write(table)
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
