"""The results table: every evaluated task beside the paper's figures, and EF computed two ways.

The figures come from :mod:`~echonet_jax.evaluation.paper`, the EF comparison from
:mod:`~echonet_jax.evaluation.ef_two_ways`.

Reads what :mod:`echonet_jax.evaluation.reports` wrote (``metrics.json`` and ``predictions.csv`` under
``WORKDIR/eval/<split>/``). The CLI is ``python -m echonet_jax.report`` (``echonet_jax/report.py``).

Each path may be a workdir, its ``eval`` folder, a split folder, a ``metrics.json`` file, or a folder
holding many workdirs (searched recursively for ``eval/<split>/metrics.json``).
"""

from __future__ import annotations

import glob
import json
import os
from typing import Any
from typing import Sequence

from echonet_jax.evaluation import bootstrap
from echonet_jax.evaluation import ef_two_ways
from echonet_jax.evaluation import markdown
from echonet_jax.evaluation import paper
from echonet_jax.evaluation.reports import METRICS_FILE
from echonet_jax.evaluation.reports import PREDICTIONS_FILE

ROW_ORDER = tuple(paper.PAPER)
METRIC_NAMES = {"auc": "ROC AUC", "f1": "F1", "r2": "R²", "mae": "MAE"}


def find_metrics_files(path: str, split: str = "test") -> list[str]:
  """The metrics.json files of ``split`` under ``path`` (see the module docstring for what it may be)."""
  if os.path.isfile(path):
    return [path]
  for candidate in (
      os.path.join(path, METRICS_FILE),
      os.path.join(path, split, METRICS_FILE),
      os.path.join(path, "eval", split, METRICS_FILE),
  ):  # single-task layouts
    if os.path.isfile(candidate):
      return [candidate]
  found = sorted(
      glob.glob(os.path.join(path, "**", "eval", split, METRICS_FILE), recursive=True)
      + glob.glob(os.path.join(path, "**", "eval", split, "*", METRICS_FILE), recursive=True)
  )
  if not found:
    raise FileNotFoundError(
        f"{path}: no {METRICS_FILE} for split {split!r} (looked for "
        f"{METRICS_FILE}, {split}/{METRICS_FILE}, eval/{split}/{METRICS_FILE} "
        "and below)"
    )
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


def _task_rows(data: dict[str, Any], label: str) -> list[list[str]]:
  reference, figures = paper.paper_figures(data["task"], data.get("data_source"))
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
    value = markdown.number(m["value"], unit) if m["value"] is not None else "undefined"
    ci = (
        markdown.interval(m["ci_low"], m["ci_high"], m.get("ci_note"))
        if m["value"] is not None
        else m.get("note", "")
    )
    baseline = paper_baseline = ""
    if name == "mae":
      baseline = markdown.number(data.get("baseline_mae"), unit)
      paper_baseline = markdown.paper_figure(figures.get("baseline_mae"), unit)
    rows.append(
        [
            label,
            metric,
            value,
            ci,
            f"{m['n']} ({m['n_patients']})",
            baseline,
            markdown.paper_figure(figures.get(name), unit if name == "mae" else ""),
            paper_baseline,
            reference if name in figures else "",
            step,
        ]
    )
  return rows


def results_table(
    paths: str | Sequence[str], split: str = "test", *, n_boot: int = 1000, seed: int = 0
) -> str:
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
        two_ways = ef_two_ways.ef_two_ways(
            predictions("ef"),
            predictions("esv"),
            predictions("edv"),
            n_boot=n_boot,
            seed=seed,
            source=data.get("data_source"),
        )
        derived = next(r for r in two_ways["rows"] if r["method"] == "derived")
        count = f"{two_ways['n']} ({two_ways['n_patients']})"
        rows.append(
            [
                "ef from predicted ESV/EDV",
                "R²",
                markdown.number(derived["r2"]),
                markdown.interval(*derived["r2_ci"], derived["r2_ci_note"]),
                count,
                "",
                markdown.paper_figure(paper.PAPER[paper.DERIVED_EF]["r2"]),
                "",
                paper.GHORBANI,
                "",
            ]
        )
        rows.append(
            [
                "ef from predicted ESV/EDV",
                "MAE",
                markdown.number(derived["mae"], "%"),
                markdown.interval(*derived["mae_ci"], derived["mae_ci_note"]),
                count,
                "",
                "",
                "",
                "",
                "",
            ]
        )
  n_boots = sorted({d.get("n_boot") for _, d in found if d.get("n_boot") is not None})
  references = sorted({r[8] for r in rows if r[8]})
  cited = {
      paper.GHORBANI: "Ghorbani et al. 2020 (337-patient test set, A4C)",
      paper.OUYANG: "Ouyang et al., Nature 2020 (EchoNet-Dynamic test set)",
  }
  header = [
      "task",
      "metric",
      "value",
      "95% CI",
      "n videos (patients)",
      "mean-prediction baseline",
      "paper",
      "paper baseline",
      "reference",
      "checkpoint step",
  ]
  lines = [
      f"Results on the {split} split. 95% CI: percentile bootstrap over patients "
      f"({', '.join(str(b) for b in n_boots) or '?'} resamples; n/a with fewer than "
      f"{bootstrap.MIN_CI_PATIENTS} patients, under {bootstrap.MIN_VALID_FRACTION:.0%} of resamples "
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
