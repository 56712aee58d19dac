"""EchoNet-Dynamic (Ouyang et al. 2020) as a source of the cache: FileList.csv and Videos/*.avi.

The videos are 112x112, grayscale in three channels and already masked, so the whole frame is the
sector. EF, ESV and EDV become the ``ef``, ``esv`` and ``edv`` labels; the other tasks are missing.
Each video is its own patient and study (the dataset has one video per patient); ``Split`` gives the
split; the view is A4C.
"""

from __future__ import annotations

import csv
import io
import math
import os

from echonet_jax import tasks
from echonet_jax.data import avi
from echonet_jax.data import dicom
from echonet_jax.data import labels as labels_lib

FILELIST = "FileList.csv"
VIDEOS = "Videos"
REQUIRED_COLUMNS = ("FileName", "EF", "ESV", "EDV", "FPS", "Split")
_SPLITS = {"TRAIN": "train", "VAL": "val", "TEST": "test"}
_LABELS = {"EF": "ef", "ESV": "esv", "EDV": "edv"}


def read_filelist(root: str) -> list[labels_lib.VideoRow]:
  """Validated rows of ``root/FileList.csv``; raises LabelsError listing every bad row."""
  path = os.path.join(root, FILELIST)
  if not os.path.exists(path):
    raise FileNotFoundError(f"{root}: not an EchoNet-Dynamic folder (no {FILELIST})")
  rows, problems = [], []
  reader = csv.DictReader(io.StringIO(labels_lib.read_text(path), newline=""))
  header = reader.fieldnames or []
  missing = [c for c in REQUIRED_COLUMNS if c not in header]
  if missing:
    raise labels_lib.LabelsError(path, [f"{path}:1: missing column(s) {', '.join(missing)}"])
  for cell in reader:
    line = reader.line_num
    cell = {k: (v or "").strip() for k, v in cell.items() if k is not None}
    name = cell["FileName"]
    if not name:
      problems.append(f"{path}:{line}: column 'FileName': blank")
      continue
    split = _SPLITS.get(cell["Split"].upper())
    if split is None:
      problems.append(f"{path}:{line}: column 'Split': {cell['Split']!r} is not TRAIN, VAL or TEST")
      continue
    values = {name: math.nan for name in tasks.TASK_NAMES}
    for column, task in _LABELS.items():
      try:
        values[task] = labels_lib.parse_label(tasks.TASKS[task], cell[column])
      except ValueError as e:
        problems.append(f"{path}:{line}: column {column!r}: {e}")
    stem, ext = os.path.splitext(name)
    video = os.path.join(root, VIDEOS, name if ext.lower() == ".avi" else name + ".avi")
    rows.append(
        labels_lib.VideoRow(
            video_id=stem if ext.lower() == ".avi" else name,
            patient_id=stem,
            study_id=stem,
            path=video,
            labels=values,
            split=split,
            view="A4C",
            line=line,
            fps=dicom.positive_float(cell.get("FPS")) or 0.0,
        )
    )
  if not rows and not problems:
    problems.append(f"{path}:1: the file list holds a header but no video rows")
  if problems:
    raise labels_lib.LabelsError(path, problems)
  return rows


def read_avi(path: str, *args, **options) -> dicom.EchoClip:
  """Reads one of the dataset's (already masked) AVIs, whole frame: :func:`avi.read_avi` with
  ``sector="none"``.

  Its other arguments are avi.read_avi's: ``num_frames`` (20), ``interval_ms`` (100) and ``size``
  (299), then the keywords ``fps`` (FileList's FPS; None: the file's own rate, else
  ``default_fps``, assumed) and ``default_fps``.
  """
  return avi.read_avi(path, *args, sector="none", **options)
