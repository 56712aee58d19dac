"""Metric logging: ``WORKDIR/metrics.jsonl`` and TensorBoard event files (tensorboardX, no TF)."""

from __future__ import annotations

import json
import math
import os


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
    if not self._enabled:
      return
    clean = {k: (float(v) if math.isfinite(float(v)) else None) for k, v in metrics.items()}
    self._jsonl.write(json.dumps({"step": int(step), **clean}) + "\n")
    self._jsonl.flush()
    for key, value in metrics.items():
      self._tb.add_scalar(key, value, step)
    self._tb.flush()

  def close(self) -> None:
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
