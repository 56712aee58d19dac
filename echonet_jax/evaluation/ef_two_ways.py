"""EF computed two ways: predicted by the EF model, and derived from the ESV and EDV models.

Reads the ``predictions.csv`` files that :mod:`~echonet_jax.evaluation.reports` wrote, joins them on
video_id and scores both EFs on the same videos, with patient-bootstrap CIs and the paired R²
difference; :mod:`~echonet_jax.evaluation.results_table` adds the result to its table.
"""

from __future__ import annotations

import csv
from typing import Any

import numpy as np

from echonet_jax.evaluation import bootstrap
from echonet_jax.evaluation import markdown
from echonet_jax.evaluation import metrics
from echonet_jax.evaluation import paper


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


def ef_two_ways(
    ef_pred_csv: str | None,
    esv_pred_csv: str,
    edv_pred_csv: str,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    source: str | None = None,
) -> dict[str, Any]:
  """EF predicted directly vs derived as (EDV − ESV) / EDV · 100 from the ESV and EDV models.

  Joins the three predictions.csv files on video_id and scores both on the same videos against the EF
  label (from the EF file; when ``ef_pred_csv`` is None, against EF computed from the true ESV/EDV
  labels, and only the derived row is given). Returns per-method R² and MAE with patient-bootstrap CIs,
  the paired R² difference, counts of videos left out, and ``markdown``. The direct row's paper R²
  follows the data ``source`` (see :func:`.paper.paper_figures`); the derived one is Ghorbani's.
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
    r2_ci = bootstrap.bootstrap_interval(metrics.r2, groups, y, pred, **ci)
    mae_ci = bootstrap.bootstrap_interval(metrics.mae, groups, y, pred, **ci)
    reference, figures = (
        paper.paper_figures("ef", source)
        if key == "direct"
        else (paper.GHORBANI, paper.PAPER[paper.DERIVED_EF])
    )
    rows.append(
        {
            "method": key,
            "description": description,
            "r2": metrics.r2(y, pred),
            "r2_ci": (r2_ci.low, r2_ci.high),
            "r2_ci_note": r2_ci.note,
            "mae": metrics.mae(y, pred),
            "mae_ci": (mae_ci.low, mae_ci.high),
            "mae_ci_note": mae_ci.note,
            "n_boot_valid": r2_ci.n_valid,
            "paper_r2": figures.get("r2"),
            "reference": reference,
        }
    )
  out: dict[str, Any] = {
      "n": int(y.size),
      "n_patients": int(np.unique(groups).size),
      "truth": truth_source,
      "n_joined": len(ids),
      "n_missing_labels": n_missing,
      "n_invalid_derived": n_invalid,
      "n_only_in_ef": len(set(ef) - set(ids)) if ef is not None else 0,
      "rows": rows,
  }
  if direct is not None:
    d = _paired_r2_difference(y, direct[keep], derived[keep])
    out["r2_difference"] = float(d)
    difference = bootstrap.bootstrap_interval(
        _paired_r2_difference, groups, y, direct[keep], derived[keep], **ci
    )
    out["r2_difference_ci"] = (difference.low, difference.high)
    out["r2_difference_ci_note"] = difference.note
  lines = [
      f"EF two ways ({out['n']} videos, {out['n_patients']} patients; truth: {truth_source})",
      "",
      "| EF method | R² | 95% CI | MAE | 95% CI | paper R² | reference |",
      "|---|---|---|---|---|---|---|",
  ]
  for r in rows:
    lines.append(
        f"| {r['method']}: {r['description']} | {markdown.number(r['r2'])} | "
        f"{markdown.interval(*r['r2_ci'], r['r2_ci_note'])} | "
        f"{markdown.number(r['mae'], '%')} | "
        f"{markdown.interval(*r['mae_ci'], r['mae_ci_note'])} | "
        f"{markdown.paper_figure(r['paper_r2'])} | {r['reference']} |"
    )
  if "r2_difference" in out:
    difference_ci = markdown.interval(*out["r2_difference_ci"], out["r2_difference_ci_note"])
    lines += [
        "",
        f"R² direct − derived: {markdown.number(out['r2_difference'])} "
        f"(95% CI {difference_ci}, paired patient bootstrap)",
    ]
  out["markdown"] = "\n".join(lines) + "\n"
  return out
