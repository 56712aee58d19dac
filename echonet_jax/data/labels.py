"""The labels CSV: schema, validation with row-level errors, and patient-level splits.

One row per video. Required columns: ``patient_id``, ``study_id``, ``path``. Optional: ``video_id``
(default ``<study_id>_<file stem>``, must be unique), ``split`` (train/val/test, respected when
given), ``view`` (e.g. A4C), ``mask_path`` (npz of ground-truth masks) and any task column of
:mod:`echonet_jax.tasks` (blank = missing; binary tasks 0/1; regression tasks finite numbers).
Other columns are ignored with a warning. ``path`` and ``mask_path`` are relative to the CSV's
folder unless absolute.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import math
import os
import warnings
from typing import Iterable, Sequence

from echonet_jax import tasks
from echonet_jax.errors import EchonetError

REQUIRED_COLUMNS = ("patient_id", "study_id", "path")
OPTIONAL_COLUMNS = ("video_id", "split", "view", "mask_path")
SPLITS = ("train", "val", "test")
_MAX_ERRORS_SHOWN = 25


class LabelsError(EchonetError, ValueError):
  """A labels CSV that breaks the schema; the message lists every bad row as
  ``CSV:line: column 'name': why``."""

  def __init__(self, csv_path: str, problems: Sequence[str]):
    self.csv_path = str(csv_path)
    self.problems = list(problems)
    shown = self.problems[:_MAX_ERRORS_SHOWN]
    more = len(self.problems) - len(shown)
    text = "\n".join(shown) + (f"\n... and {more} more" if more > 0 else "")
    super().__init__(f"{csv_path}: {len(self.problems)} problem(s) in the labels CSV:\n{text}")


@dataclasses.dataclass(frozen=True)
class VideoRow:
  """One validated video of the labels CSV."""

  video_id: str
  patient_id: str
  study_id: str
  path: str                 # absolute
  labels: dict[str, float]  # every task of tasks.TASK_NAMES (and "view"), NaN where blank
  split: str = ""           # "" until assigned
  view: str = ""
  mask_path: str = ""       # absolute, or "" when the row has no masks
  line: int = 0             # line in the CSV (1 = header), for messages
  fps: float = 0.0          # frame rate given by the source list (EchoNet-Dynamic), 0 = unknown
  view_source: str = ""     # "csv" when the CSV gave the view, "predicted" when a view model did
  view_confidence: float = math.nan  # the view model's probability of ``view`` (1.0 for csv)


def _resolve(base: str, path: str) -> str:
  return os.path.normpath(path if os.path.isabs(path) else os.path.join(base, path))


def parse_label(task: tasks.Task, text: str) -> float:
  """Float value of a label cell, NaN when blank; raises ValueError with the reason."""
  text = text.strip()
  if not text:
    return math.nan
  try:
    value = float(text)
  except ValueError:
    raise ValueError(f"{text!r} is not a number") from None
  if not math.isfinite(value):
    raise ValueError(f"{text!r} is not a finite number")
  if task.is_binary and value not in (0.0, 1.0):
    raise ValueError(f"{text!r} must be 0 or 1 for a binary task")
  return value


def read_labels(csv_path: str) -> list[VideoRow]:
  """Reads and validates a labels CSV; raises :class:`LabelsError` listing every bad row."""
  csv_path = str(csv_path)
  if not os.path.exists(csv_path):
    raise FileNotFoundError(f"{csv_path}: labels CSV does not exist")
  base = os.path.dirname(os.path.abspath(csv_path))
  with open(csv_path, newline="", encoding="utf-8-sig") as f:
    reader = csv.DictReader(f)
    header = [h.strip() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
      raise LabelsError(csv_path, [f"{csv_path}:1: missing required column(s) "
                                   f"{', '.join(missing)} (have: {', '.join(header) or 'none'})"])
    duplicated = sorted({h for h in header if header.count(h) > 1})
    if duplicated:
      raise LabelsError(csv_path, [f"{csv_path}:1: duplicated column(s) {', '.join(duplicated)}"])
    known = set(REQUIRED_COLUMNS) | set(OPTIONAL_COLUMNS) | set(tasks.TASK_NAMES)
    unknown = [h for h in header if h not in known]
    if unknown:
      warnings.warn(f"{csv_path}: ignoring unknown column(s) {', '.join(unknown)}")
    task_columns = [t for t in tasks.TASK_NAMES if t in header]
    rows, problems, seen = [], [], {}
    for line, raw in enumerate(reader, start=2):
      if raw.get(None):
        problems.append(f"{csv_path}:{line}: more cells than header columns")
        continue
      cell = {k: (v or "").strip() for k, v in raw.items() if k is not None}
      if not any(cell.values()):
        continue  # blank line
      bad = False
      for column in REQUIRED_COLUMNS:
        if not cell.get(column):
          problems.append(f"{csv_path}:{line}: column {column!r}: required value is blank")
          bad = True
      labels = {name: math.nan for name in tasks.TASK_NAMES}
      for name in task_columns:
        try:
          labels[name] = parse_label(tasks.TASKS[name], cell.get(name, ""))
        except ValueError as e:
          problems.append(f"{csv_path}:{line}: column {name!r}: {e}")
          bad = True
      labels[tasks.VIEW_TASK] = tasks.view_label(cell.get("view", ""))  # the view task's label
      split = cell.get("split", "").lower()
      if split and split not in SPLITS:
        problems.append(f"{csv_path}:{line}: column 'split': {cell['split']!r} is not one of "
                        f"{', '.join(SPLITS)}")
        bad = True
      stem = os.path.splitext(os.path.basename(cell.get("path", "")))[0]
      video_id = cell.get("video_id") or (f"{cell['study_id']}_{stem}"
                                          if cell.get("study_id") and stem else "")
      if video_id in seen:
        problems.append(f"{csv_path}:{line}: column 'video_id': {video_id!r} repeats line "
                        f"{seen[video_id]} (video ids must be unique)")
        bad = True
      elif video_id:
        seen[video_id] = line
      if bad:
        continue
      rows.append(VideoRow(
          video_id=video_id, patient_id=cell["patient_id"], study_id=cell["study_id"],
          path=_resolve(base, cell["path"]), labels=labels, split=split,
          view=cell.get("view", ""), view_source="csv" if cell.get("view") else "",
          view_confidence=1.0 if cell.get("view") else math.nan,
          mask_path=_resolve(base, cell["mask_path"]) if cell.get("mask_path") else "",
          line=line))
  if problems:
    raise LabelsError(csv_path, problems)
  return rows


def patient_split(patient_id: str, seed: int, test_frac: float = 0.1, val_frac: float = 0.1
                  ) -> str:
  """train/val/test of one patient: a hash of (seed, patient_id) mapped to [0, 1).

  Below ``test_frac`` is test; the next ``val_frac`` of the remainder is val (the paper's 10% of
  training); the rest is train. Stable: adding patients never moves existing ones.
  """
  digest = hashlib.sha256(f"{seed}:{patient_id}".encode()).digest()
  u = int.from_bytes(digest[:8], "big") / 2.0 ** 64
  if u < test_frac:
    return "test"
  if u < test_frac + (1.0 - test_frac) * val_frac:
    return "val"
  return "train"


def check_patient_disjoint(rows: Iterable[VideoRow], source: str = "labels") -> None:
  """Raises :class:`LabelsError` naming every patient whose videos sit in more than one split."""
  splits: dict[str, set[str]] = {}
  lines: dict[str, list[int]] = {}
  for row in rows:
    splits.setdefault(row.patient_id, set()).add(row.split)
    lines.setdefault(row.patient_id, []).append(row.line)
  leaks = [f"{source}: patient {pid!r} (lines {', '.join(map(str, lines[pid]))}) is in splits "
           f"{', '.join(sorted(s))}" for pid, s in sorted(splits.items()) if len(s) > 1]
  if leaks:
    raise LabelsError(source, leaks)


def assign_splits(rows: Sequence[VideoRow], seed: int = 0, test_frac: float = 0.1,
                  val_frac: float = 0.1, source: str = "labels") -> list[VideoRow]:
  """Gives every row a split; rows that carry one keep it.

  A patient with a given split on some rows gets it on its blank rows too; other patients are split
  by :func:`patient_split`. Raises :class:`LabelsError` when a patient ends up in two splits.
  """
  given: dict[str, str] = {}
  for row in rows:
    if row.split:
      given.setdefault(row.patient_id, row.split)
  out = []
  for row in rows:
    split = row.split or given.get(row.patient_id) or patient_split(
        row.patient_id, seed, test_frac, val_frac)
    out.append(dataclasses.replace(row, split=split))
  check_patient_disjoint(out, source)
  return out
