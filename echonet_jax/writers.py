"""Metric logging: ``WORKDIR/metrics.jsonl`` and TensorBoard event files (tensorboardX, no TF)."""

from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np
from tensorboardX import SummaryWriter


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
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, "metrics.jsonl")
    self._jsonl = open(path, "a")
    if self._jsonl.tell() and not _ends_with_newline(path):  # a line cut short before
      self._jsonl.write("\n")
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

  def write_config(self, step: int, config_json: str) -> None:
    """The run's config as TensorBoard text (a JSON block), shown under TEXT."""
    if self._enabled:
      self._tb.add_text("config", "```json\n" + config_json + "\n```", step)
      self._tb.flush()

  def write_hparams(self, step: int, hparams: dict[str, Any], metrics: dict[str, float]) -> None:
    """The config's scalar settings with the final ``metrics``, for TensorBoard's HPARAMS tab."""
    if not self._enabled:
      return
    finite = {
        f"hparam/{k}": float(v)
        for k, v in metrics.items()
        if isinstance(v, (int, float)) and math.isfinite(v)
    }
    self._tb.add_hparams(flat_hparams(hparams), finite, name="hparams", global_step=step)
    self._tb.flush()

  def close(self) -> None:
    """Closes both files."""
    if self._enabled:
      self._jsonl.close()
      self._tb.close()


def _ends_with_newline(path: str) -> bool:
  with open(path, "rb") as f:
    f.seek(-1, os.SEEK_END)
    return f.read(1) == b"\n"


def flat_hparams(config: dict[str, Any], prefix: str = "") -> dict[str, bool | int | float | str]:
  """A nested config as ``{"optim.lr": 1e-4, ...}`` with only bool/int/float/str values."""
  out: dict[str, bool | int | float | str] = {}
  for key, value in config.items():
    name = f"{prefix}{key}"
    if isinstance(value, dict):
      out.update(flat_hparams(value, name + "."))
    elif isinstance(value, (bool, int, float, str)):
      out[name] = value
    elif value is None:
      out[name] = ""
    else:
      out[name] = json.dumps(json_safe(value))
  return out


def read_metrics(workdir: str) -> list[dict]:
  """The rows of WORKDIR/metrics.jsonl; on resume, a later row for a step replaces earlier ones.

  A line cut short (a full disk, a kill mid-write) is skipped.
  """
  by_step: dict[tuple[int, tuple[str, ...]], dict] = {}
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    for line in f:
      try:
        row = json.loads(line)
      except ValueError:
        continue
      by_step[(row["step"], tuple(sorted(row)))] = row
  return [by_step[k] for k in sorted(by_step)]
