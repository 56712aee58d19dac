"""Evaluation plots: ROC, scatter, Bland–Altman and the metric against the number of frames averaged.

matplotlib's object API with the Agg canvas (no pyplot, no global backend change). Legends and metric
text sit below the axes, never on the data. Confidence intervals read "a to b" with true minus signs,
and "n/a" when :mod:`metrics` says the interval is unavailable (never a zero-width band).
Saliency pictures live in :mod:`echonet_jax.interpret.viz`.
"""

from __future__ import annotations

import math
from typing import Any
from typing import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
import numpy as np

from echonet_jax.evaluation import bootstrap
from echonet_jax.evaluation import metrics
from echonet_jax.tasks import Task

PAPER_PLATEAU_FRAMES = 11  # Ghorbani et al. 2020: averaging more frames than this did not help


def _figure(size=(5.6, 6.4)):
  fig = Figure(figsize=size, dpi=120, layout="constrained")
  FigureCanvasAgg(fig)
  return fig, fig.add_subplot()


def ci_text(row: dict[str, Any], digits: int = 2, unit: str = "") -> str:
  """ "value unit (95% CI a to b)" for a metrics.json row; "95% CI n/a" when it is unavailable."""
  value = row.get("value")
  if value is None or not math.isfinite(value):
    return "undefined"
  value_text = f"{bootstrap.format_number(value, digits)} {unit}".rstrip()
  return (
      f"{value_text} (95% CI "
      f"{bootstrap.format_interval(row.get('ci_low'), row.get('ci_high'), digits)})"
  )


def _legend_below(fig: Figure, ax, extra: Sequence[str] = ()) -> None:
  """The axes' legend entries, then ``extra`` text lines, in one legend under the axes."""
  handles, labels = ax.get_legend_handles_labels()
  for line in extra:
    handles.append(Line2D([], [], linestyle="none"))
    labels.append(line)
  fig.legend(
      handles, labels, loc="outside lower center", fontsize=7, frameon=False, handlelength=1.8
  )


def _title(task: Task, split: str, n: int) -> str:
  return f"{task.description} ({task.name}), {split}, n={n}"


def _unit(task: Task) -> str:
  return f" ({task.unit})" if task.unit else ""


def roc(path: str, task: Task, split: str, labels, preds, report: dict[str, Any]) -> Figure:
  """ROC curve with the AUC and its CI, and the F1 operating point."""
  auc_row, f1_row = report["metrics"][0], report["metrics"][1]
  fpr, tpr, _ = metrics.roc_curve(labels, preds)
  fig, ax = _figure()
  ax.plot(fpr, tpr, lw=2, label=f"ROC, AUC = {ci_text(auc_row)}")
  ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="chance (AUC = 0.50)")
  t = report["threshold"]
  if t is not None and math.isfinite(t):
    y = labels == 1
    pred = preds >= t
    ax.plot(
        [np.mean(pred[~y])],
        [np.mean(pred[y])],
        "o",
        color="C3",
        label=f"threshold {t:.3g} ({report['threshold_source']}): F1 = {ci_text(f1_row)}",
    )
  ax.set(
      xlim=(-0.01, 1.01),
      ylim=(-0.01, 1.01),
      aspect="equal",
      xlabel="False positive rate (1 − specificity)",
      ylabel="True positive rate (sensitivity)",
  )
  ax.set_title(_title(task, split, report["n"]), fontsize=9)
  ax.grid(alpha=0.3)
  _legend_below(fig, ax)
  fig.savefig(path)
  return fig


def scatter(path: str, task: Task, split: str, labels, preds, report: dict[str, Any]) -> Figure:
  """Predicted against true, the identity line, R² and MAE with their CIs."""
  r2_row, mae_row = report["metrics"][0], report["metrics"][1]
  fig, ax = _figure((5.6, 6.6))
  ax.scatter(labels, preds, s=10, alpha=0.6, label="videos")
  lo = float(min(labels.min(), preds.min()))
  hi = float(max(labels.max(), preds.max()))
  pad = 0.03 * (hi - lo or 1.0)
  ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="k", lw=1, label="identity (y = x)")
  ax.set(
      xlim=(lo - pad, hi + pad),
      ylim=(lo - pad, hi + pad),
      aspect="equal",
      xlabel=f"True {task.name}{_unit(task)}",
      ylabel=f"Predicted {task.name}{_unit(task)}",
  )
  ax.set_title(_title(task, split, report["n"]), fontsize=9)
  ax.grid(alpha=0.3)
  digits = 3 if mae_row["value"] is not None and abs(mae_row["value"]) < 1 else 1
  extra = [f"R² = {ci_text(r2_row)}", f"MAE = {ci_text(mae_row, digits, task.unit)}"]
  if "baseline_mae" in report:
    extra.append(
        f"mean-prediction MAE = {bootstrap.format_number(report['baseline_mae'], digits)} "
        f"{task.unit}".rstrip()
    )
  _legend_below(fig, ax, extra)
  fig.savefig(path)
  return fig


def bland_altman(
    path: str, task: Task, split: str, labels, preds, report: dict[str, Any]
) -> Figure:
  """Difference against mean, with the bias and the 95% limits of agreement."""
  mean = 0.5 * (labels + preds)
  diff = preds - labels
  bias = float(np.mean(diff))
  sd = float(np.std(diff, ddof=1)) if diff.size > 1 else 0.0
  fig, ax = _figure((6.0, 4.8))
  ax.scatter(mean, diff, s=10, alpha=0.6, label="videos")
  ax.axhline(
      bias,
      color="C3",
      lw=1.5,
      label=f"mean difference {bootstrap.format_number(bias, 3)} {task.unit}".rstrip(),
  )
  for sign in (-1, 1):
    ax.axhline(bias + sign * 1.96 * sd, color="C3", ls="--", lw=1)
  ax.axhline(0, color="k", lw=0.5)
  ax.plot(
      [],
      [],
      color="C3",
      ls="--",
      label=f"limits of agreement, ±1.96 SD = ±{1.96 * sd:.3g} {task.unit}".rstrip(),
  )
  ax.set(
      xlabel=f"Mean of predicted and true {task.name}{_unit(task)}",
      ylabel=f"Predicted − true {task.name}{_unit(task)}",
  )
  ax.set_title(f"Bland–Altman: {_title(task, split, report['n'])}", fontsize=9)
  ax.grid(alpha=0.3)
  _legend_below(fig, ax)
  fig.savefig(path)
  return fig


def frames(
    path: str, task: Task, split: str, curve: dict[str, Any], metric: str, order: str
) -> Figure:
  """The headline metric against the number of frames averaged, with its CI band where available."""
  fig, ax = _figure((5.5, 4.8))
  k = np.asarray(curve["num_frames"])
  as_float = lambda key: np.array([np.nan if v is None else v for v in curve[key]], np.float64)
  value, lo, hi = as_float("value"), as_float("ci_low"), as_float("ci_high")
  name = {"auc": "ROC AUC", "r2": "R²"}[metric]
  ax.plot(k, value, "o-", label=name)
  has_ci = np.isfinite(lo) & np.isfinite(hi)
  if has_ci.any():
    ax.fill_between(k, lo, hi, where=has_ci, alpha=0.2, label="95% CI (patient bootstrap)")
  if not has_ci.all():
    ax.plot(
        [],
        [],
        ls="none",
        label=f"95% CI n/a at {int((~has_ci).sum())} of {k.size} points "
        "(too few patients or defined resamples)",
    )
  if k.max() >= PAPER_PLATEAU_FRAMES:
    ax.axvline(
        PAPER_PLATEAU_FRAMES,
        color="grey",
        ls=":",
        lw=1,
        label=f"paper: no gain past ~{PAPER_PLATEAU_FRAMES} frames",
    )
  how = "first k frames in time order" if order == "first" else "random k frames per video"
  ax.set(xlabel=f"Frames averaged per video, k ({how})", ylabel=name, xticks=k)
  ax.set_title(f"{name} vs frames averaged: {task.name}, {split}", fontsize=9)
  ax.grid(alpha=0.3)
  _legend_below(fig, ax)
  fig.savefig(path)
  return fig
