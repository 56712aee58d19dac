"""The paper's claims, judged from patient-bootstrap CIs: paired differences, plateaus, verdicts.

Pure apart from reading predictions.csv files (:func:`paired_difference`). A claim is
"reproduced", "not reproduced" or "not testable", always with its reason.
"""

from __future__ import annotations

import math
from typing import Any
from typing import Mapping

import numpy as np

from echonet_jax import tasks as tasks_lib
from echonet_jax.evaluation import bootstrap
from echonet_jax.evaluation import ef_two_ways
from echonet_jax.evaluation import task_metrics

REPRODUCED, NOT_REPRODUCED, NOT_TESTABLE = "reproduced", "not reproduced", "not testable"
PAPER_FRAMES = 11


def paired_difference(
    task: str, pred_a: str, pred_b: str, *, n_boot: int = 1000, seed: int = 0
) -> dict[str, Any]:
  """Headline metric of A − B on the videos both predicted, with a paired patient-bootstrap CI."""
  name, fn = task_metrics.headline_metric(tasks_lib.get_task(task))
  a, b = ef_two_ways.read_predictions(pred_a), ef_two_ways.read_predictions(pred_b)
  ids = [
      i
      for i in sorted(set(a) & set(b))
      if all(math.isfinite(v) for v in (a[i][1], a[i][2], b[i][2]))
  ]
  out: dict[str, Any] = {"metric": name, "n": len(ids)}
  if not ids:
    return {
        **out,
        "value": None,
        "a": None,
        "b": None,
        "ci_low": None,
        "ci_high": None,
        "note": "no video scored by both",
    }
  y = np.array([a[i][1] for i in ids])
  pa, pb = np.array([a[i][2] for i in ids]), np.array([b[i][2] for i in ids])
  groups = np.array([a[i][0] for i in ids])
  diff = lambda y, p, q: np.asarray(fn(y, p)) - np.asarray(fn(y, q))
  ci = bootstrap.bootstrap_interval(diff, groups, y, pa, pb, n_boot=n_boot, seed=seed)
  finite = lambda v: float(v) if math.isfinite(v) else None
  return {
      **out,
      "n_patients": int(np.unique(groups).size),
      "a": finite(float(fn(y, pa))),
      "b": finite(float(fn(y, pb))),
      "value": finite(float(diff(y, pa, pb))),
      "ci_low": finite(ci.low),
      "ci_high": finite(ci.high),
      "note": ci.note,
  }


def sign(d: Mapping[str, Any] | None) -> int | None:
  """+1 / −1 when the CI of a difference lies above / below zero, 0 when it holds zero, None
  when there is no CI."""
  if not d or d.get("ci_low") is None or d.get("ci_high") is None:
    return None
  return 1 if d["ci_low"] > 0 else -1 if d["ci_high"] < 0 else 0


def plateau(curve: Mapping[str, Any]) -> dict[str, Any]:
  """The fewest frames whose metric reaches the all-frames one, less its CI's lower half-width
  (0.01 without a CI)."""
  k = list(curve["num_frames"])
  value = [math.nan if v is None else v for v in curve["value"]]
  last, low = value[-1], curve["ci_low"][-1]
  margin = last - low if low is not None and math.isfinite(low) else 0.01
  rule = "lower CI bound of the all-frames value" if margin != 0.01 else "all-frames value − 0.01"
  if not math.isfinite(last):
    return {"k": None, "max_frames": k[-1], "rule": "metric undefined"}
  reached = next(kk for kk, v in zip(k, value) if math.isfinite(v) and v >= last - margin)
  return {"k": int(reached), "max_frames": int(k[-1]), "rule": f"first k at or above the {rule}"}


def beats_mean(task: str, metrics: Mapping[str, Mapping[str, Any]], baseline_mae) -> int | None:
  """+1 when the task beats the mean prediction by its CI (AUC above 0.5; MAE below the mean's),
  −1 when it is worse by its CI, 0 when undecided, None without a CI."""
  if tasks_lib.get_task(task).is_binary:
    row, ref = metrics.get("auc"), 0.5
    d = row and {"ci_low": _sub(row.get("ci_low"), ref), "ci_high": _sub(row.get("ci_high"), ref)}
  else:
    row = metrics.get("mae")
    d = (
        row
        and baseline_mae is not None
        and {
            "ci_low": _sub(baseline_mae, row.get("ci_high")),
            "ci_high": _sub(baseline_mae, row.get("ci_low")),
        }
    )
  return sign(d) if d else None


def _skilled(d: Mapping[str, Any], arm: str) -> bool:
  """Whether one arm of a paired difference beats the mean prediction (R² > 0, AUC > 0.5)."""
  value = d.get(arm)
  return value is None or value > (0.5 if d.get("metric") == "auc" else 0.0)


def _sub(x, y):
  return None if x is None or y is None else x - y


def _describe(d: Mapping[str, Any] | None) -> str:
  if not d or d.get("value") is None:
    return "n/a"
  ci = (
      f"95% CI {d['ci_low']:+.3f} to {d['ci_high']:+.3f}"
      if d.get("ci_low") is not None
      else f"CI n/a: {d.get('note')}"
  )
  return f"{d['value']:+.3f} ({ci})"


def _per_task(diffs: Mapping[str, Mapping[str, Any]]) -> str:
  return "; ".join(f"{t}: {_describe(d)}" for t, d in diffs.items())


def claims(results: Mapping[str, Any]) -> list[dict[str, str]]:
  """One verdict per claim of the paper from the study's ``results`` (experiments/paper.py)."""
  skipped = results.get("skipped", {})
  out = []

  def add(claim, verdict, reason):
    out.append({"claim": claim, "verdict": verdict, "reason": reason})

  def untestable(claim, part):
    add(claim, NOT_TESTABLE, f"part skipped: {skipped.get(part, 'no result')}")

  claim = "every task beats the mean prediction"
  main = results.get("main", {})
  signs = {t: beats_mean(t, m["metrics"], m.get("baseline_mae")) for t, m in main.items()}
  if not signs:
    untestable(claim, "main")
  elif any(s is None for s in signs.values()):
    add(
        claim,
        NOT_TESTABLE,
        "no CI for "
        + ", ".join(t for t, s in signs.items() if s is None)
        + " (too few test patients or undefined resamples)",
    )
  elif all(s == 1 for s in signs.values()):
    add(claim, REPRODUCED, "every CI excludes the baseline (AUC 0.5; the mean prediction's MAE)")
  else:
    add(
        claim,
        NOT_REPRODUCED,
        "CI does not exclude the baseline for " + ", ".join(t for t, s in signs.items() if s != 1),
    )

  claim = "direct EF beats EF derived from predicted ESV and EDV"
  two = results.get("ef_two_ways")
  if not two:
    untestable(claim, "ef_two_ways")
  else:
    d = {
        "value": two.get("r2_difference"),
        "ci_low": (two.get("r2_difference_ci") or [None])[0],
        "ci_high": (two.get("r2_difference_ci") or [None, None])[1],
        "note": two.get("r2_difference_ci_note"),
    }
    s = sign(d)
    verdict = {1: REPRODUCED, 0: NOT_REPRODUCED, -1: NOT_REPRODUCED, None: NOT_TESTABLE}[s]
    add(claim, verdict, f"R² direct − derived {_describe(d)}")

  for part, claim, good in (
      ("multitask", "multi-task learning does not help", lambda s: s != 1),
      ("augmentation", "augmentation adds 1–4 % AUC and 2–10 % R²", lambda s: s == 1),
      ("budget", "more patients beat more frames per patient", lambda s: s == 1),
      ("views", "A4C alone loses little against all views", lambda s: s != -1),
      ("video", "(EchoNet-Dynamic) a video model beats the frame model on EF", lambda s: s == 1),
  ):
    diffs = results.get(part) or {}
    diffs = {t: d for t, d in diffs.items() if isinstance(d, dict) and "metric" in d}
    if not diffs:
      untestable(claim, part)
      continue
    signs = [sign(d) for d in diffs.values()]
    unskilled = [t for t, d in diffs.items() if not any(_skilled(d, arm) for arm in ("a", "b"))]
    if unskilled:
      add(
          claim,
          NOT_TESTABLE,
          f"neither arm beats the mean prediction for {', '.join(unskilled)} (R² ≤ 0 or AUC ≤ "
          f"0.5), so their difference says nothing: {_per_task(diffs)}",
      )
    elif any(s is None for s in signs):
      add(claim, NOT_TESTABLE, f"a paired CI is unavailable: {_per_task(diffs)}")
    else:
      verdict = REPRODUCED if all(good(s) for s in signs) else NOT_REPRODUCED
      add(claim, verdict, f"paired difference {_per_task(diffs)}")

  claim = f"about {PAPER_FRAMES} frames are enough"
  frames = results.get("frames") or {}
  ks = {t: f["plateau"] for t, f in frames.items()}
  if not ks:
    untestable(claim, "frames")
  elif any(p["k"] is None or p["max_frames"] <= PAPER_FRAMES for p in ks.values()):
    add(claim, NOT_TESTABLE, "a curve is undefined or has no more than 11 frames")
  elif any(f["ci_low"][-1] is None for f in frames.values()):
    add(
        claim,
        NOT_TESTABLE,
        "no CI for the all-frames value of "
        + ", ".join(t for t, f in frames.items() if f["ci_low"][-1] is None)
        + " (too few test patients)",
    )
  else:
    verdict = REPRODUCED if all(p["k"] <= PAPER_FRAMES for p in ks.values()) else NOT_REPRODUCED
    add(
        claim,
        verdict,
        "plateau at "
        + ", ".join(f"{t}: {p['k']}" for t, p in ks.items())
        + f" frames ({next(iter(ks.values()))['rule']})",
    )
  return out
