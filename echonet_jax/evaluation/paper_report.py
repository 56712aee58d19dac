"""The paper study's report: the results table in the paper's layout, each ablation, each claim.

Pure text from the ``results`` dict that experiments/paper.py assembles (and writes as
results.json), plus :func:`plots` (frames.png, ablations.png).
"""

from __future__ import annotations

import math
import os
from typing import Any
from typing import Mapping

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
import numpy as np

from echonet_jax import tasks as tasks_lib
from echonet_jax.evaluation import markdown
from echonet_jax.evaluation import paper
from echonet_jax.evaluation import paper_claims

NAMES = {"auc": "ROC AUC", "f1": "F1", "r2": "R²", "mae": "MAE"}
ABLATIONS = (
    ("multitask", "multi-task − single-task", "3. Multi-task vs single-task (same test videos)"),
    ("augmentation", "augmentation on − off", "4. Augmentation on vs off"),
    ("budget", "more patients − more frames", "6. Fixed budget: more patients vs more frames"),
    ("views", "A4C only − all views (A4C test)", "7. A4C only vs all views"),
    ("video", "video − frame model", "8. Video model vs frame model"),
)


def _ci(lo, hi, note) -> str:
  text = markdown.interval(lo, hi, note)
  return "CI " + text.replace("n/a (", "n/a: ", 1).rstrip(")") if text.startswith("n/a") else text


def _ours(row: Mapping[str, Any] | None, unit: str = "") -> str:
  if not row or row.get("value") is None:
    return "—"
  ci = _ci(row.get("ci_low"), row.get("ci_high"), row.get("ci_note"))
  return f"{markdown.number(row['value'], unit)} ({ci})"


def main_table(results: Mapping[str, Any]) -> list[str]:
  """Part 1 (and part 2's derived EF row) in the paper's layout."""
  lines = [
      "| task | metric | ours (95% CI) | mean baseline | phantom ceiling | paper |",
      "|---|---|---|---|---|---|",
  ]
  for task, m in results.get("main", {}).items():
    t = tasks_lib.get_task(task)
    figures = paper.PAPER.get(task, {})
    ceiling = results.get("ceilings", {}).get(task, {})
    names = ("auc", "f1") if t.is_binary else ("r2", "mae")
    for name in names:
      unit = t.unit if name == "mae" else ""
      baseline = (
          "0.5"
          if name == "auc"
          else markdown.number(m.get("baseline_mae"), unit)
          if name == "mae"
          else "0"
          if name == "r2"
          else ""
      )
      ceil = ceiling.get(name)
      lines.append(
          f"| {task} | {NAMES[name]} | {_ours(m['metrics'].get(name), unit)} | {baseline} | "
          f"{'' if ceil is None else f'{ceil:.2f}'} | "
          f"{markdown.paper_figure(figures.get(name), unit)} |"
      )
  two = results.get("ef_two_ways")
  if two:
    derived = next(r for r in two["rows"] if r["method"] == "derived")
    row = {
        "value": derived["r2"],
        "ci_low": derived["r2_ci"][0],
        "ci_high": derived["r2_ci"][1],
        "ci_note": derived["r2_ci_note"],
    }
    lines.append(
        f"| ef from predicted ESV/EDV | R² | {_ours(row)} | | "
        f"{results.get('ceilings', {}).get('ef', {}).get('r2', '')} | "
        f"{markdown.paper_figure(paper.PAPER[paper.DERIVED_EF]['r2'])} |"
    )
  return lines


def _difference_rows(diffs: Mapping[str, Any], label: str) -> list[str]:
  lines = [
      f"| task | metric | A | B | {label} (paired 95% CI) | videos (patients) |",
      "|---|---|---|---|---|---|",
  ]
  for task, d in diffs.items():
    if not isinstance(d, dict) or "metric" not in d:
      continue
    ci = _ci(d.get("ci_low"), d.get("ci_high"), d.get("note"))
    lines.append(
        f"| {task} | {NAMES[d['metric']]} | {markdown.number(d.get('a'))} | "
        f"{markdown.number(d.get('b'))} | {markdown.number(d.get('value'))} ({ci}) | "
        f"{d['n']} ({d.get('n_patients', '?')}) |"
    )
  return lines


def _skipped(results: Mapping[str, Any], part: str) -> list[str]:
  reason = results.get("skipped", {}).get(part)
  return [f"Skipped: {reason}."] if reason else []


def markdown_report(results: Mapping[str, Any]) -> str:
  """results.md."""
  wall = results.get("wall_seconds")
  lines = [
      f"# EchoNet on the phantom: the paper's results at `{results['scale']}` scale",
      "",
      f"Tasks: {', '.join(results['tasks'])}. {results.get('note', '')}",
      f"Machine: {results.get('machine', '?')}. Date: {results.get('date', '?')}. "
      f"Wall time: {'?' if wall is None else f'{wall / 60:.1f} min'} "
      f"({results.get('runs_trained', 0)} runs trained now, "
      f"{results.get('runs_skipped', 0)} finished earlier and skipped, "
      f"{results.get('runs_failed', 0)} failed).",
      "",
      "95% CIs: percentile bootstrap over test patients; differences are paired (the same "
      "patients resampled for both arms). Phantom ceiling: the explainable variance of the "
      "phantom's label model (`phantom.EXPLAINABLE_VARIANCE`: R², or the AUC of the noise-free "
      "score). Paper: Ghorbani et al. 2020, 337 test patients.",
      "",
      "## 1. Every task, frame model",
      "",
      *main_table(results),
      "",
      "## 2. EF derived from predicted ESV and EDV vs direct EF",
      "",
  ]
  two = results.get("ef_two_ways")
  lines += [two["markdown"]] if two else _skipped(results, "ef_two_ways")
  for part, label, title in ABLATIONS[:2]:
    lines += ["", f"## {title}", "", *_skipped(results, part)]
    if results.get(part):
      lines += _difference_rows(results[part], label)
  lines += [
      "",
      "## 5. Metric against the number of frames averaged",
      "",
      *_skipped(results, "frames"),
  ]
  for task, f in (results.get("frames") or {}).items():
    p = f["plateau"]
    lines.append(
        f"- {task}: {NAMES[f['metric']]} with 1 frame {markdown.number(f['value'][0])}, "
        f"all {p['max_frames']} {markdown.number(f['value'][-1])}; plateau at k = {p['k']} "
        f"({p['rule']})."
    )
  if results.get("frames"):
    lines += ["", "![metric against frames averaged](frames.png)"]
  for part, label, title in ABLATIONS[2:]:
    lines += ["", f"## {title}", "", *_skipped(results, part)]
    if results.get(part):
      lines += _difference_rows(results[part], label)
  if any(results.get(p) for p, _, _ in ABLATIONS):
    lines += ["", "![paired differences of the ablations](ablations.png)"]
  lines += ["", "## The paper's claims", ""]
  for c in results.get("claims", []):
    lines.append(f"- **{c['claim']}**: {c['verdict']}. {c['reason']}.")
  notes = results.get("notes") or []
  if notes:
    lines += ["", "Notes:", *[f"- {n}" for n in notes]]
  return "\n".join(lines) + "\n"


def plots(results: Mapping[str, Any], out: str) -> list[str]:
  """frames.png (metric vs frames averaged, per task) and ablations.png (paired differences)."""
  written = []
  frames = results.get("frames") or {}
  if frames:
    fig = Figure(figsize=(6, 4.2), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for task, f in frames.items():
      value = np.array([np.nan if v is None else v for v in f["value"]], float)
      ax.plot(f["num_frames"], value, "o-", ms=3, label=f"{task} ({NAMES[f['metric']]})")
    ax.axvline(paper_claims.PAPER_FRAMES, color="grey", ls=":", label="paper: ~11 frames")
    ax.set(xlabel="frames averaged per video", ylabel="metric on the test split")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.savefig(os.path.join(out, "frames.png"))
    written.append("frames.png")
  rows = [
      (f"{label}: {task}", d)
      for part, label, _ in ABLATIONS
      for task, d in (results.get(part) or {}).items()
      if isinstance(d, dict) and d.get("value") is not None
  ]
  if rows:
    fig = Figure(figsize=(7, 0.45 * len(rows) + 1.2), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ends = [
        v
        for _, d in rows
        for v in (d["value"], d.get("ci_low"), d.get("ci_high"))
        if v is not None and math.isfinite(v)
    ]
    # Past ±1 an AUC or R² difference means an arm without skill: clip it, print it, keep the rest legible.
    limit = min(max(abs(v) for v in ends) * 1.1 + 0.01, 1.0)
    clip = lambda v: min(max(v, -limit), limit)
    for i, (_, d) in enumerate(rows):
      lo, hi = d.get("ci_low"), d.get("ci_high")
      if lo is not None and hi is not None and math.isfinite(lo) and math.isfinite(hi):
        ax.plot([clip(lo), clip(hi)], [i, i], color="C0", lw=2)
      else:
        lo = hi = d["value"]
      ax.plot([clip(d["value"])], [i], "o", color="C1")
      if max(abs(d["value"]), abs(lo), abs(hi)) > limit:
        text = f"{d['value']:.3g} ({lo:.3g} to {hi:.3g}), off the scale"
        ax.annotate(
            text, (0, i), xytext=(0, 5), textcoords="offset points", ha="center", fontsize=7
        )
    ax.set_xlim(-limit, limit)
    ax.axvline(0, color="grey", lw=1)
    ax.set_yticks(range(len(rows)), [r[0] for r in rows], fontsize=7)
    ax.set(xlabel="difference in the headline metric (AUC or R²), 95% CI")
    fig.savefig(os.path.join(out, "ablations.png"))
    written.append("ablations.png")
  return written
