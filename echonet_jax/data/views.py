"""Views of the videos: the rule that keeps a video for a run, filling blank views from a view model,
and the counts the cache summary shows.

Every video carries ``view`` (e.g. ``A4C``; blank when unknown), ``view_source`` (``csv`` when the
labels CSV gave it, ``predicted`` when a view model did, blank when unknown) and ``view_confidence``
(1.0 for the CSV, the view model's probability of its choice for a prediction). A view in the CSV
always wins: the model only fills blank views (:func:`fill_views`).

The rule (``labels.view_matches``, here :func:`keep_video`) is applied where streams select videos
(``selection.select_videos``) and where the cache build leaves rows out. A video is kept when no views
are asked for,
or when its view is blank (the user chose the files), or when its view is asked for and, if predicted,
its confidence is at least the minimum. Predicted views below the minimum are counted and listed
(:func:`low_confidence`), never dropped silently.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import math
import os
from typing import Any
from typing import Callable
from typing import Iterable
from typing import Mapping
from typing import Sequence

from tqdm import tqdm

from echonet_jax import errors
from echonet_jax import tasks
from echonet_jax.data import cache
from echonet_jax.data import labels as labels_lib

CSV = "csv"
PREDICTED = "predicted"
LOW_CONFIDENCE_FILE = "low_confidence_views.csv"

# A view predictor: one video row -> (view, confidence); raises errors.EchoReadError when unreadable.
Predictor = Callable[[Any], "tuple[str, float]"]


def wanted_set(views: Iterable[str] | None) -> frozenset[str]:
  """The asked-for views, upper-cased; empty = every view."""
  return frozenset(v.strip().upper() for v in views or () if v.strip())


def confidence_of(video: Mapping[str, Any] | Any) -> float:
  """``view_confidence`` of an index row (dict) or a VideoRow as a float; NaN when blank."""
  value = (
      video.get("view_confidence", "")
      if isinstance(video, Mapping)
      else getattr(video, "view_confidence", math.nan)
  )
  try:
    return float(value)
  except (TypeError, ValueError):
    return math.nan


def _field(video: Mapping[str, Any] | Any, name: str) -> str:
  return str(
      (video.get(name, "") if isinstance(video, Mapping) else getattr(video, name, "")) or ""
  )


def is_low_confidence(video: Mapping[str, Any] | Any, min_confidence: float) -> bool:
  """A predicted view whose confidence is below ``min_confidence`` (or unknown)."""
  if _field(video, "view_source") != PREDICTED:
    return False
  confidence = confidence_of(video)
  return math.isnan(confidence) or confidence < min_confidence


def keep_video(
    video: Mapping[str, Any] | Any, views: Iterable[str] | None, min_confidence: float = 0.0
) -> bool:
  """The one views rule, ``labels.view_matches``, for an index row or a VideoRow."""
  return labels_lib.view_matches(
      _field(video, "view"),
      views,
      source=_field(video, "view_source"),
      confidence=confidence_of(video),
      min_confidence=min_confidence,
  )


def low_confidence(
    videos: Iterable[Mapping[str, Any] | Any], views: Iterable[str] | None, min_confidence: float
) -> list[Any]:
  """The videos of the asked-for views (any view when none is asked for) whose predicted view is
  below ``min_confidence``: those the rule leaves out only because the prediction is unsure."""
  wanted = wanted_set(views)
  return [
      v
      for v in videos
      if (not wanted or _field(v, "view").strip().upper() in wanted)
      and is_low_confidence(v, min_confidence)
  ]


def check_classes(classes: Sequence[str], views: Iterable[str] | None, model: str) -> None:
  """Raises ConfigError when a view asked for is not one of a view model's ``classes``."""
  known = {c.upper() for c in classes}
  missing = sorted(v for v in wanted_set(views) if v not in known)
  if missing:
    raise errors.ConfigError(
        f"{model}: the view model cannot select view(s) {', '.join(missing)}: its classes are "
        f"{', '.join(classes)}"
    )


def fill_views(rows: Sequence[Any], predict: Predictor, progress: bool = False) -> list[Any]:
  """Rows (VideoRow) with every blank view filled by ``predict`` (``view_source="predicted"``).

  Rows whose view the CSV gave keep it (``view_source="csv"``, confidence 1.0). A file the predictor
  cannot read keeps a blank view; building the cache then reports why it cannot be read.
  """
  blank = [i for i, r in enumerate(rows) if not r.view.strip()]
  out = [
      r if not r.view.strip() else dataclasses.replace(r, view_source=CSV, view_confidence=1.0)
      for r in rows
  ]
  if not blank:
    return out
  for i in tqdm(blank, unit="video", desc="view model", disable=not progress):
    try:
      view, confidence = predict(rows[i])
    except errors.EchoReadError:
      continue
    # The predicted view is not a label: the view task trains on the CSV's views only.
    labels = dict(rows[i].labels)
    labels[tasks.VIEW_TASK] = math.nan
    out[i] = dataclasses.replace(
        rows[i], view=view, view_source=PREDICTED, view_confidence=float(confidence), labels=labels
    )
  return out


def view_counts(videos: Iterable[Mapping[str, Any] | Any]) -> dict[str, dict[str, int]]:
  """{view: {source: count}} ("" = unknown view or source), for the cache summary."""
  counts: dict[str, collections.Counter] = {}
  for v in videos:
    counts.setdefault(_field(v, "view"), collections.Counter())[_field(v, "view_source")] += 1
  return {view: dict(c) for view, c in sorted(counts.items())}


def report_views(cache_dir: str, meta: dict[str, Any], min_confidence: float) -> None:
  """Adds the per-view counts to ``meta`` and lists unsure predicted views in the cache folder."""
  index = []
  for split in cache.SPLITS:
    try:
      index += cache.read_index(cache_dir, split)
    except FileNotFoundError:
      pass
  unsure = low_confidence(index, None, min_confidence)
  meta["views_by_source"] = view_counts(index)
  meta["low_confidence_views"] = {
      "count": len(unsure),
      "min_confidence": min_confidence,
      "file": LOW_CONFIDENCE_FILE,
  }
  write_low_confidence(os.path.join(cache_dir, LOW_CONFIDENCE_FILE), unsure)


def summary_lines(meta: Mapping[str, Any], cache_dir: str) -> list[str]:
  """The cache summary's lines about views (none for a cache without view information)."""
  if not meta.get("views_by_source"):
    return []
  lines = [f"videos per view (source): {format_counts(meta['views_by_source'])}"]
  unsure = meta.get("low_confidence_views", {})
  if unsure.get("count"):
    lines.append(
        f"predicted views below confidence {unsure['min_confidence']}: {unsure['count']}, "
        f"listed in {os.path.join(cache_dir, unsure['file'])}"
    )
  return lines


def format_counts(counts: Mapping[str, Mapping[str, int]]) -> str:
  """``A4C 40 (csv 30, predicted 10); ...`` for a summary line."""
  parts = []
  for view, by_source in counts.items():
    detail = ", ".join(f"{s or 'unknown'} {n}" for s, n in sorted(by_source.items()))
    parts.append(f"{view or 'unknown'} {sum(by_source.values())} ({detail})")
  return "; ".join(parts)


def write_low_confidence(path: str, videos: Sequence[Mapping[str, Any] | Any]) -> None:
  """Lists videos (video_id, split, view, view_confidence) in a CSV, written atomically."""
  with open(path + ".tmp", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["video_id", "split", "view", "view_confidence"])
    for v in videos:
      w.writerow(
          [_field(v, "video_id"), _field(v, "split"), _field(v, "view"), repr(confidence_of(v))]
      )
  os.replace(path + ".tmp", path)
