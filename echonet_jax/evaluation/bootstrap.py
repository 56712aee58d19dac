"""Patient bootstrap: metric values on resamples, percentile intervals and when to trust them.

Part of :mod:`echonet_jax.evaluation.metrics` (which re-exports every name here). A resample draws
patients with replacement; metrics that take ``weights`` evaluate all resamples as rows of a weight
matrix in a few vectorised numpy calls.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from typing import Callable

import numpy as np

# Bootstrap weight matrices are processed in chunks of at most this many elements (rows × videos).
_CHUNK_ELEMENTS = 1 << 21
# When a bootstrap interval is reported at all (see interval_note).
MIN_CI_PATIENTS = 10
MIN_VALID_FRACTION = 0.5


def _accepts_weights(fn: Callable) -> bool:
  try:
    return "weights" in inspect.signature(fn).parameters
  except (TypeError, ValueError):
    return False


def bootstrap_values(
    metric_fn: Callable, groups, *arrays, n_boot: int = 1000, seed: int = 0
) -> np.ndarray:
  """The metric on ``n_boot`` resamples that draw GROUPS (patients) with replacement.

  A patient drawn k times contributes all of its videos k times. When ``metric_fn`` takes a ``weights``
  argument (every metric here does) all resamples are evaluated as rows of a weight matrix; otherwise it
  is called once per resample on the repeated items. Both paths see the same draws for the same seed.
  ``groups=None`` resamples items individually.
  """
  if not arrays:
    raise ValueError("bootstrap needs at least one data array")
  n = len(arrays[0])
  for a in arrays:
    if len(a) != n:
      raise ValueError(f"arrays have different lengths: {[len(a) for a in arrays]}")
  if groups is None:
    groups = np.arange(n)
  groups = np.asarray(groups)
  if groups.shape != (n,):
    raise ValueError(f"groups must have shape ({n},); got {groups.shape}")
  if n == 0 or n_boot <= 0:
    return np.zeros(0)
  _, member_of = np.unique(groups, return_inverse=True)
  num_groups = int(member_of.max()) + 1
  rng = np.random.default_rng(seed)
  # Drawing num_groups groups with replacement = multinomial counts per group.
  counts = rng.multinomial(num_groups, np.full(num_groups, 1.0 / num_groups), size=n_boot)
  arrays = tuple(np.asarray(a) for a in arrays)
  if _accepts_weights(metric_fn):
    chunk = max(1, _CHUNK_ELEMENTS // n)
    parts = [
        np.asarray(
            metric_fn(*arrays, weights=counts[i : i + chunk][:, member_of]), dtype=np.float64
        ).reshape(-1)
        for i in range(0, n_boot, chunk)
    ]
    return np.concatenate(parts)
  values = np.empty(n_boot)
  for b in range(n_boot):
    index = np.repeat(np.arange(n), counts[b][member_of])
    values[b] = metric_fn(*(a[index] for a in arrays))
  return values


@dataclasses.dataclass(frozen=True)
class Interval:
  """A bootstrap interval and how much it can be trusted.

  ``low``/``high`` are NaN when the interval is unavailable; ``note`` then says why (see
  :func:`bootstrap_interval` for the rule). ``n_valid`` of the ``n_boot`` resamples had a defined
  metric.
  """

  low: float
  high: float
  n_valid: int
  n_boot: int
  note: str | None = None

  @property
  def available(self) -> bool:
    return self.note is None


def interval_note(
    values: np.ndarray, n_boot: int, num_groups: int, lo: float, hi: float
) -> str | None:
  """Why an interval from these resample ``values`` must not be reported, or None when it may.

  The rule: an interval needs at least ``MIN_CI_PATIENTS`` patients, at least
  ``MIN_VALID_FRACTION`` of the resamples with a defined metric (a CI built from the few resamples
  that happen to be defined is biased toward them), and a non-zero width (a zero-width interval from
  degenerate resamples is the point estimate posing as a CI).
  """
  n_valid = int(np.sum(np.isfinite(values)))
  if n_boot <= 0:
    return "no bootstrap resamples (n_boot=0)"
  if num_groups < MIN_CI_PATIENTS:
    return f"only {num_groups} patients; a CI needs at least {MIN_CI_PATIENTS}"
  if n_valid < MIN_VALID_FRACTION * n_boot:
    return (
        f"only {n_valid} of {n_boot} bootstrap resamples have a defined value; "
        f"a CI needs {MIN_VALID_FRACTION:.0%}"
    )
  if not hi - lo > 1e-12 * max(1.0, abs(lo), abs(hi)):
    return f"all {n_valid} defined resamples give the same value: a zero-width interval"
  return None


def bootstrap_interval(
    metric_fn: Callable, groups, *arrays, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05
) -> Interval:
  """Percentile bootstrap interval at level 1 − alpha, resampling groups (patients), with its count
  of valid resamples; unavailable (NaN bounds and a ``note``) under the rule of :func:`interval_note`.

  ``metric_fn(*arrays)`` computes the metric; see :func:`bootstrap_values` for how resamples are drawn.
  Resamples where the metric is undefined (e.g. one class only) are not used and not counted valid.
  """
  values = bootstrap_values(metric_fn, groups, *arrays, n_boot=n_boot, seed=seed)
  finite = values[np.isfinite(values)]
  n = len(arrays[0]) if arrays else 0
  num_groups = int(np.unique(np.arange(n) if groups is None else np.asarray(groups)).size)
  lo = hi = float("nan")
  if finite.size:
    lo, hi = (float(v) for v in np.percentile(finite, [100 * alpha / 2, 100 * (1 - alpha / 2)]))
  note = interval_note(values, n_boot, num_groups, lo, hi)
  if note is not None:
    lo = hi = float("nan")
  return Interval(low=lo, high=hi, n_valid=int(finite.size), n_boot=max(int(n_boot), 0), note=note)


def bootstrap_ci(
    metric_fn: Callable, groups, *arrays, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05
) -> tuple[float, float]:
  """``(low, high)`` of :func:`bootstrap_interval`: ``(nan, nan)`` when the interval is unavailable."""
  found = bootstrap_interval(metric_fn, groups, *arrays, n_boot=n_boot, seed=seed, alpha=alpha)
  return found.low, found.high


def format_number(value: float | None, digits: int = 2) -> str:
  """``value`` with ``digits`` decimals and a true minus sign (U+2212); "n/a" when missing."""
  if value is None or not math.isfinite(value):
    return "n/a"
  return f"{value:.{digits}f}".replace("-", "\u2212")


def format_interval(low: float | None, high: float | None, digits: int = 2) -> str:
  """ "a to b" with true minus signs ("−0.30 to −0.10"), or "n/a" when either bound is missing."""
  if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
    return "n/a"
  return f"{format_number(low, digits)} to {format_number(high, digits)}"
