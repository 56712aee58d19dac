"""How numbers read in the markdown tables: the results table and the EF two-ways comparison.

Values with one to three decimals by size and true minus signs, "—" when missing; intervals as
"a to b" or "n/a (why)"; paper figures as the paper printed them.
"""

from __future__ import annotations

import math

MINUS = "\u2212"


def number(v: float | None, unit: str = "") -> str:
  """A value with its unit: fewer decimals the larger it is, true minus signs; "—" when missing."""
  if v is None or not math.isfinite(v):
    return "—"
  a = abs(v)
  text = (
      f"{v:.1f}" if a >= 10 else f"{v:.2f}" if a >= 1 else f"{v:.3f}" if a >= 0.01 else f"{v:.3g}"
  )
  return f"{text.replace('-', MINUS)} {unit}".strip()


def interval(lo: float | None, hi: float | None, note: str | None = None) -> str:
  """ "a to b" with true minus signs; "n/a" (and why, when known) for an unavailable interval."""
  if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
    reason = (note or "").replace("95% CI n/a: ", "")
    return f"n/a ({reason})" if reason else "n/a"
  return f"{number(lo)} to {number(hi)}"


def paper_figure(v: float | None, unit: str = "") -> str:
  """A paper figure as printed there: two decimals for scores and small MAEs, else one."""
  if v is None:
    return ""
  return f"{v:.2f} {unit}".strip() if abs(v) < 1 or not unit else f"{v:.1f} {unit}"
