"""Metric logging: ``WORKDIR/metrics.jsonl`` and TensorBoard event files (tensorboardX, no TF)."""

from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np


def json_safe(value: Any) -> Any:
  """For strict JSON: NaN/inf become null, numpy scalars/arrays Python values, keys strings."""
  if isinstance(value, dict):
    return {str(k): json_safe(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [json_safe(v) for v in value]
  if isinstance(value, np.ndarray):
    return json_safe(value.tolist())
  if isinstance(value, np.generic):
    value = value.item()
  if isinstance(value, float) and not math.isfinite(value):
    return None
  return value


class MetricWriter:
  """Appends ``{"step": s, **metrics}`` lines to metrics.jsonl and scalars to ``WORKDIR/tb``."""

  def __init__(self, workdir: str, *, enabled: bool = True):
    self._enabled = enabled
    if not enabled:
      return
    from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
    os.makedirs(workdir, exist_ok=True)
    self._jsonl = open(os.path.join(workdir, "metrics.jsonl"), "a")
    self._tb = SummaryWriter(os.path.join(workdir, "tb"))

  def write(self, step: int, metrics: dict[str, float]) -> None:
    """Logs ``metrics`` at ``step`` (NaN/inf as null in the JSON lines)."""
    if not self._enabled:
      return
    clean = json_safe({k: float(v) for k, v in metrics.items()})
    self._jsonl.write(json.dumps({"step": int(step), **clean}) + "\n")
    self._jsonl.flush()
    for key, value in metrics.items():
      self._tb.add_scalar(key, value, step)
    self._tb.flush()

  def close(self) -> None:
    """Closes both files."""
    if self._enabled:
      self._jsonl.close()
      self._tb.close()


def read_metrics(workdir: str) -> list[dict]:
  """The rows of WORKDIR/metrics.jsonl; on resume, a later row for a step replaces earlier ones."""
  by_step: dict[tuple[int, tuple[str, ...]], dict] = {}
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    for line in f:
      row = json.loads(line)
      by_step[(row["step"], tuple(sorted(row)))] = row
  return [by_step[k] for k in sorted(by_step)]
