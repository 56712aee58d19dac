"""The labels CSV: schema, validation with row-level errors, patient-level splits, the views rule.

One row per video. Required columns: ``patient_id``, ``study_id``, ``path``. Optional: ``video_id``
(must be unique; default ``<study_id>_<8 hex digits>``, a hash of the row's patient_id, study_id and
path, so that no file or folder name reaches the cache), ``split`` (train/val/test, respected when
given), ``view`` (e.g. A4C), ``mask_path`` (npz of ground-truth masks) and any task column of
:mod:`echonet_jax.tasks` (blank = missing; binary tasks 0/1; regression tasks finite numbers inside
the task's ``valid_range``). Other columns are ignored with a warning. ``path`` and ``mask_path``
are relative to the CSV's folder unless absolute. The file must be UTF-8 and hold at least one row;
a study_id under two patients, and one file under two patients or in two splits, are errors.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import math
import os
from typing import Iterable
from typing import Sequence
import warnings

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
  path: str  # absolute
  labels: dict[str, float]  # every task of tasks.TASK_NAMES (and "view"), NaN where blank
  split: str = ""  # "" until assigned
  view: str = ""
  mask_path: str = ""  # absolute, or "" when the row has no masks
  line: int = 0  # line in the CSV (1 = header), for messages
  fps: float = 0.0  # frame rate given by the source list (EchoNet-Dynamic), 0 = unknown
  view_source: str = ""  # "csv" when the CSV gave the view, "predicted" when a view model did
  view_confidence: float = math.nan  # the view model's probability of ``view`` (1.0 for csv)


def _resolve(base: str, path: str) -> str:
  return os.path.normpath(path if os.path.isabs(path) else os.path.join(base, path))


def parse_label(
    task: tasks.Task, text: str, valid_range: tuple[float, float] | None = None
) -> float:
  """Float value of a label cell, NaN when blank; raises ValueError with the reason.

  ``valid_range`` (inclusive; default the task's own) bounds a regression label.
  """
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
  lo, hi = valid_range or task.valid_range
  if not lo <= value <= hi:
    unit = f" {task.unit}" if task.unit else ""
    raise ValueError(
        f"{text!r} is outside the plausible range {lo:g} to {hi:g}{unit} of "
        f"{task.name} (change it with label_ranges)"
    )
  return value


def parse_ranges(text: str | dict | None) -> dict[str, tuple[float, float]]:
  """``"weight=1:500,height=0.3:2.6"`` (or a dict) → {task: (lo, hi)}; blank bounds are open."""
  if not text:
    return {}
  items = (
      text.items()
      if isinstance(text, dict)
      else (
          part.split("=", 1) if "=" in part else (part, "")
          for part in text.split(",")
          if part.strip()
      )
  )
  out = {}
  for name, bounds in items:
    name = str(name).strip()
    if name not in tasks.TASKS:
      raise ValueError(f"label_ranges: unknown task {name!r}")
    if isinstance(bounds, str):
      lo, sep, hi = bounds.partition(":")
      if not sep:
        raise ValueError(f"label_ranges: {name}={bounds!r} is not LO:HI")
      bounds = (float(lo) if lo.strip() else -math.inf, float(hi) if hi.strip() else math.inf)
    lo, hi = (float(b) for b in bounds)
    if not lo <= hi:
      raise ValueError(f"label_ranges: {name} has lo {lo:g} > hi {hi:g}")
    out[name] = (lo, hi)
  return out


def default_video_id(patient_id: str, study_id: str, path: str) -> str:
  """``<study_id>_<8 hex>``: a hash of the row's ids and path; no file or folder name shows."""
  key = "\0".join((patient_id, study_id, os.path.normpath(path)))
  return f"{study_id}_{hashlib.sha256(key.encode()).hexdigest()[:8]}"


def view_matches(
    view: str,
    wanted: Iterable[str] | None,
    *,
    source: str = "",
    confidence: float = math.nan,
    min_confidence: float = 0.0,
) -> bool:
  """THE views rule, used by the cache build and by the input pipeline alike.

  ``wanted`` empty or None keeps every video. Otherwise a video is kept when its view equals one of
  ``wanted`` ignoring case and surrounding blanks. A blank view is *unknown*: it is kept (the user
  listed the file) and counted by :func:`count_views` so the build and the pipeline warn about it.
  A view a view model predicted (``source="predicted"``) also needs ``confidence >=
  min_confidence``; a CSV view needs nothing more (see ``data/views.py``).
  """
  wanted = {w.strip().upper() for w in wanted or () if w and w.strip()}
  view = (view or "").strip().upper()
  if not wanted or not view:
    return True
  sure = source != "predicted" or (not math.isnan(confidence) and confidence >= min_confidence)
  return view in wanted and sure


def count_views(views: Iterable[str], wanted: Iterable[str] | None) -> dict[str, int]:
  """{"kept", "dropped", "unknown"} counts of :func:`view_matches` (unknown ones are also kept)."""
  wanted = tuple(wanted or ())
  counts = {"kept": 0, "dropped": 0, "unknown": 0}
  for view in views:
    if view_matches(view, wanted):
      counts["kept"] += 1
      counts["unknown"] += bool(wanted) and not (view or "").strip()
    else:
      counts["dropped"] += 1
  return counts


def read_text(csv_path: str):
  """The text of a CSV; raises LabelsError naming the file when it is not UTF-8."""
  try:
    with open(csv_path, "rb") as f:
      return f.read().decode("utf-8-sig")
  except UnicodeDecodeError as e:
    line = 1 + e.object[: e.start].count(b"\n")
    raise LabelsError(
        csv_path,
        [
            f"{csv_path}:{line}: the file is not UTF-8 text (byte "
            f"{e.start}); save it as UTF-8 CSV"
        ],
    ) from None


def read_labels(
    csv_path: str, ranges: dict[str, tuple[float, float]] | str | None = None
) -> list[VideoRow]:
  """Reads and validates a labels CSV; raises :class:`LabelsError` listing every bad row.

  ``ranges`` overrides tasks' ``valid_range`` ({task: (lo, hi)} or ``"task=lo:hi,..."``).
  """
  csv_path = str(csv_path)
  if not os.path.exists(csv_path):
    raise FileNotFoundError(f"{csv_path}: labels CSV does not exist")
  ranges = parse_ranges(ranges)
  base = os.path.dirname(os.path.abspath(csv_path))
  reader = csv.DictReader(io.StringIO(read_text(csv_path), newline=""))
  header = [h.strip() for h in (reader.fieldnames or [])]
  reader.fieldnames = header
  missing = [c for c in REQUIRED_COLUMNS if c not in header]
  if missing:
    raise LabelsError(
        csv_path,
        [
            f"{csv_path}:1: missing required column(s) "
            f"{', '.join(missing)} (have: {', '.join(header) or 'none'})"
        ],
    )
  duplicated = sorted({h for h in header if header.count(h) > 1})
  if duplicated:
    raise LabelsError(csv_path, [f"{csv_path}:1: duplicated column(s) {', '.join(duplicated)}"])
  known = set(REQUIRED_COLUMNS) | set(OPTIONAL_COLUMNS) | set(tasks.TASK_NAMES)
  unknown = [h for h in header if h not in known]
  if unknown:
    warnings.warn(f"{csv_path}: ignoring unknown column(s) {', '.join(unknown)}")
  task_columns = [t for t in tasks.TASK_NAMES if t in header]
  rows, problems, seen = [], [], {}
  for raw in reader:
    line = reader.line_num
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
        labels[name] = parse_label(tasks.TASKS[name], cell.get(name, ""), ranges.get(name))
      except ValueError as e:
        problems.append(f"{csv_path}:{line}: column {name!r}: {e}")
        bad = True
    labels[tasks.VIEW_TASK] = tasks.view_label(cell.get("view", ""))  # the view task's label
    split = cell.get("split", "").lower()
    if split and split not in SPLITS:
      problems.append(
          f"{csv_path}:{line}: column 'split': {cell['split']!r} is not one of "
          f"{', '.join(SPLITS)}"
      )
      bad = True
    video_id = cell.get("video_id") or (
        default_video_id(cell["patient_id"], cell["study_id"], cell["path"])
        if all(cell.get(c) for c in REQUIRED_COLUMNS)
        else ""
    )
    if video_id in seen:
      problems.append(
          f"{csv_path}:{line}: column 'video_id': {video_id!r} repeats line "
          f"{seen[video_id]} (video ids must be unique)"
      )
      bad = True
    elif video_id:
      seen[video_id] = line
    if bad:
      continue
    rows.append(
        VideoRow(
            video_id=video_id,
            patient_id=cell["patient_id"],
            study_id=cell["study_id"],
            path=_resolve(base, cell["path"]),
            labels=labels,
            split=split,
            view=cell.get("view", ""),
            view_source="csv" if cell.get("view") else "",
            view_confidence=1.0 if cell.get("view") else math.nan,
            mask_path=_resolve(base, cell["mask_path"]) if cell.get("mask_path") else "",
            line=line,
        )
    )
  if not rows and not problems:
    problems.append(f"{csv_path}:1: the CSV holds a header but no video rows")
  problems += check_consistency(rows, csv_path)
  if problems:
    raise LabelsError(csv_path, problems)
  return rows


def _first_lines(groups: dict[str, dict[str, int]]) -> Iterable[tuple[str, dict[str, int]]]:
  """(key, {member: first line}) of the keys with more than one member."""
  return ((k, members) for k, members in groups.items() if len(members) > 1)


def check_consistency(rows: Sequence[VideoRow], source: str) -> list[str]:
  """Problems across rows: a study under two patients; one file under two patients or splits."""
  problems = []
  by_study: dict[str, dict[str, int]] = {}
  by_path: dict[str, dict[str, int]] = {}
  by_path_split: dict[str, dict[str, int]] = {}
  for row in rows:
    by_study.setdefault(row.study_id, {}).setdefault(row.patient_id, row.line)
    by_path.setdefault(row.path, {}).setdefault(row.patient_id, row.line)
    if row.split:
      by_path_split.setdefault(row.path, {}).setdefault(row.split, row.line)
  for study, members in _first_lines(by_study):
    problems.append(
        f"{source}:{max(members.values())}: study_id {study!r} belongs to patients "
        + ", ".join(f"{p!r} (line {n})" for p, n in sorted(members.items()))
    )
  for what, groups in (("patients", by_path), ("splits", by_path_split)):
    for _, members in _first_lines(groups):
      lines = sorted(members.values())
      problems.append(
          f"{source}:{lines[-1]}: the same file as line {lines[0]} under two "
          f"{what} ({', '.join(sorted(members))})"
      )
  return problems


def patient_split(patient_id: str, seed: int, test_frac: float = 0.1, val_frac: float = 0.1) -> str:
  """train/val/test of one patient: a hash of (seed, patient_id) mapped to [0, 1).

  Below ``test_frac`` is test; the next ``val_frac`` of the remainder is val (the paper's 10% of
  training); the rest is train. Stable: adding patients never moves existing ones.
  """
  digest = hashlib.sha256(f"{seed}:{patient_id}".encode()).digest()
  u = int.from_bytes(digest[:8], "big") / 2.0**64
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
  leaks = [
      f"{source}: patient {pid!r} (lines {', '.join(map(str, lines[pid]))}) is in splits "
      f"{', '.join(sorted(s))}"
      for pid, s in sorted(splits.items())
      if len(s) > 1
  ]
  if leaks:
    raise LabelsError(source, leaks)


def assign_splits(
    rows: Sequence[VideoRow],
    seed: int = 0,
    test_frac: float = 0.1,
    val_frac: float = 0.1,
    source: str = "labels",
) -> list[VideoRow]:
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
    split = (
        row.split
        or given.get(row.patient_id)
        or patient_split(row.patient_id, seed, test_frac, val_frac)
    )
    out.append(dataclasses.replace(row, split=split))
  check_patient_disjoint(out, source)
  return out
