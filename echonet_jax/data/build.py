"""Validated rows + a CacheSpec -> a cache folder that follows its rows.

The rows, their shards and the content keys come from :mod:`echonet_jax.data.shard_plan` (views
rule, patient splits, shards of ``spec.videos_per_shard``); shard ``g`` (numbered over train, val,
test in that order) belongs to machine ``g % num_shards``.

**Incremental rebuilds.** A rerun keeps the shards whose content key still matches, moves the
others to ``stale/`` and writes the missing ones; a video whose source file is unchanged (same pixel
key) is copied from ``stale/`` with its new ids and labels, byte for byte (no decoding), the others
are read from their files. ``stale/`` is deleted once the folder is complete. The summary says
what changed: videos added, removed, relabelled, and how many were read from their files or reused.

A shard whose file exists is finished (``cache.write_shard`` renames it last); failed files are not
retried unless their row changes or their shard is deleted. ``errors.csv`` (line, video_id,
error_type, error: the labels CSV line, never a path) and ``meta.json`` are rebuilt from all shards
at the end of every run, so several machines and several runs add up.
"""

from __future__ import annotations

import collections
import csv
import glob
import json
import math
import os
import shutil
from typing import Any
from typing import Sequence

from tqdm import tqdm

from echonet_jax.data import cache
from echonet_jax.data import extract
from echonet_jax.data import labels as labels_lib
from echonet_jax.data import shard_plan
from echonet_jax.data import views as views_lib
from echonet_jax.data.shard_plan import ShardPlan
from echonet_jax.data.spec import CacheSpec
from echonet_jax.errors import CacheError

ERRORS_FILE = "errors.csv"
ERROR_COLUMNS = ("line", "video_id", "error_type", "error")
REPORT_SUFFIX = ".report.json"
STALE_DIR = "stale"
FORMAT = 2


def _read_json(path: str) -> dict[str, Any]:
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):
    return {}


def _check_spec(out_dir: str, spec: CacheSpec) -> None:
  if not os.path.exists(os.path.join(out_dir, cache.META_FILE)):
    return
  changed = spec.differences(cache.read_meta(out_dir).get("build") or {})
  if changed:
    raise CacheError(
        f"{out_dir}: holds a cache built with other settings ({'; '.join(changed)}); "
        "use another folder or delete it"
    )


def _move(path: str, target: str) -> None:
  try:
    os.replace(path, target)
  except FileNotFoundError:  # another machine moved it first
    pass


def _retire(out_dir: str, plans: Sequence[ShardPlan]) -> dict[str, list[str]]:
  """Moves shards that no plan wants into stale/; returns the previous {video_id: [rk, pk]}."""
  wanted = {p.name: p.content for p in plans}
  previous: dict[str, list[str]] = {}
  stale = os.path.join(out_dir, STALE_DIR)
  for report_path in glob.glob(os.path.join(stale, "*" + REPORT_SUFFIX)):
    previous.update(_read_json(report_path).get("rows", {}))
  for shard in sorted(glob.glob(os.path.join(out_dir, "*-of-*.array_record"))):
    report = _read_json(shard + REPORT_SUFFIX)
    previous.update(report.get("rows", {}))
    name = os.path.basename(shard)
    if wanted.get(name) == report.get("content") and report.get("content"):
      continue
    os.makedirs(stale, exist_ok=True)
    content = report.get("content") or shard_plan.content_hash(shard, 8)
    target = os.path.join(stale, f"{content}-{name}")
    _move(cache.index_path(shard), cache.index_path(target))
    _move(shard + REPORT_SUFFIX, target + REPORT_SUFFIX)
    _move(shard, target)
  return previous


def _stale_sources(out_dir: str) -> tuple[dict[str, tuple[str, int]], dict[str, str]]:
  """{pixel_key: (stale shard, position)} and {pixel_key: file digest} of stale/."""
  sources, digests = {}, {}
  for shard in sorted(glob.glob(os.path.join(out_dir, STALE_DIR, "*.array_record"))):
    try:
      index = cache.read_shard_index(shard)
    except CacheError:
      continue
    for position, row in enumerate(index):
      if row["pixel_key"]:
        sources.setdefault(row["pixel_key"], (shard, position))
    digests.update(_read_json(shard + REPORT_SUFFIX).get("hashes", {}))
  return sources, digests


class _Copier:
  """Reads records of stale shards (one open source per shard) and relabels them."""

  def __init__(self, sources: dict[str, tuple[str, int]]):
    self.sources = sources
    self._open: dict[str, Any] = {}

  def copy(self, row: labels_lib.VideoRow, pixels: str) -> bytes | None:
    if pixels not in self.sources:
      return None
    shard, position = self.sources[pixels]
    try:
      if shard not in self._open:
        self._open[shard] = cache.open_records([shard])
      data = cache.read_record(self._open[shard], [shard], position)
    except CacheError:
      return None  # read it from its file instead
    return cache.relabel_record(
        data,
        {
            "video_id": row.video_id,
            "patient_id": row.patient_id,
            "study_id": row.study_id,
            "split": row.split,
            "view": row.view,
            "labels": dict(row.labels),
            "view_source": row.view_source,
            "view_confidence": "" if math.isnan(row.view_confidence) else row.view_confidence,
        },
    )


def _changes(previous: dict[str, list[str]], plans: Sequence[ShardPlan]) -> dict[str, int] | None:
  if not previous:
    return None
  now = {
      r.video_id: [rk, pk] for p in plans for r, rk, pk in zip(p.rows, p.record_keys, p.pixel_keys)
  }
  both = set(now) & set(previous)
  return {
      "added": len(set(now) - set(previous)),
      "removed": len(set(previous) - set(now)),
      "relabelled": sum(now[v][0] != previous[v][0] and now[v][1] == previous[v][1] for v in both),
      "other_file": sum(now[v][1] != previous[v][1] for v in both),
  }


def build_from_rows(
    rows: Sequence[labels_lib.VideoRow],
    out_dir: str,
    spec: CacheSpec,
    *,
    workers: int | None = None,
    shard_index: int = 0,
    num_shards: int = 1,
    progress: bool = True,
    finalize_only: bool = False,
    rows_source: str = "labels",
    view_min_confidence: float = 0.5,
) -> dict[str, Any]:
  """Writes (or updates) the shards of ``rows`` that belong to this machine; see the module doc.

  ``rows_source`` names the labels file in error messages (never written to the cache).
  """
  if not 0 <= shard_index < num_shards:
    raise ValueError(f"shard_index must be in [0, {num_shards}), got {shard_index}")
  kept, view_counts = shard_plan.select_rows(rows, spec)
  plans = shard_plan.plan_shards(kept, spec.videos_per_shard)
  os.makedirs(out_dir, exist_ok=True)
  _check_spec(out_dir, spec)
  previous = _retire(out_dir, plans)
  sources, digests = _stale_sources(out_dir)
  copier = _Copier(sources)

  mine = [p for g, p in enumerate(plans) if g % num_shards == shard_index]
  todo = [p for p in mine if not os.path.exists(os.path.join(out_dir, p.name))]
  todo_names = {p.name for p in todo}
  summary = {
      "written": 0,
      "read": 0,
      "reused": 0,
      "failed": {},
      "shards_written": 0,
      "skipped": sum(len(p.rows) for p in mine if p.name not in todo_names),
      "shards_skipped": len(mine) - len(todo),
      "views": view_counts,
      "changes": _changes(previous, plans),
      "out_dir": out_dir,
      "errors_csv": os.path.join(out_dir, ERRORS_FILE),
  }
  failed: collections.Counter = collections.Counter()
  if not finalize_only and todo:
    to_read = [r for p in todo for r, pk in zip(p.rows, p.pixel_keys) if pk not in sources]
    results = extract.run_videos(
        to_read, spec, (os.cpu_count() or 1) if workers is None else workers
    )
    bar = tqdm(
        total=sum(len(p.rows) for p in todo), unit="video", disable=not progress, desc="preprocess"
    )
    for plan in todo:
      records, errors, names, hashes = [], [], [], {}
      for row, pixels in zip(plan.rows, plan.pixel_keys):
        data = copier.copy(row, pixels) if pixels in sources else None
        if data is not None:
          records.append(data)
          hashes[pixels] = digests.get(pixels, "")
          summary["reused"] += 1
        else:
          record, error, mask_names, digest = (
              next(results) if pixels not in sources else extract.process_video(row, spec)
          )
          summary["read"] += 1
          if record is not None:
            records.append(record)
            names = names or mask_names
            hashes[pixels] = digest
          else:
            errors.append(error)
            failed[error["error_type"]] += 1
            bar.set_postfix(failed=sum(failed.values()))
        bar.update(1)
      path = os.path.join(out_dir, plan.name)
      report = {
          "content": plan.content,
          "errors": errors,
          "mask_names": names,
          "videos": len(plan.rows),
          "hashes": hashes,
          "rows": {
              r.video_id: [rk, pk]
              for r, rk, pk in zip(plan.rows, plan.record_keys, plan.pixel_keys)
          },
      }
      with open(path + REPORT_SUFFIX + ".tmp", "w") as f:
        json.dump(report, f)
      os.replace(path + REPORT_SUFFIX + ".tmp", path + REPORT_SUFFIX)
      summary["written"] += cache.write_shard(path, records)  # renamed last: exists = finished
      summary["shards_written"] += 1
    bar.close()
  summary["failed"] = dict(failed)
  summary["meta"] = finalize(out_dir, plans, spec, view_counts, rows_source, view_min_confidence)
  return summary


def _duplicate_files(plans: Sequence[ShardPlan], reports: Sequence[dict], source: str) -> list[str]:
  """The same file content under two patients or in two splits (found after reading the files)."""
  by_pixels = {pk: r for p in plans for r, pk in zip(p.rows, p.pixel_keys)}
  by_digest: dict[str, list[labels_lib.VideoRow]] = {}
  for report in reports:
    for pixels, digest in report.get("hashes", {}).items():
      if digest and pixels in by_pixels:
        by_digest.setdefault(digest, []).append(by_pixels[pixels])
  problems = []
  for group in by_digest.values():
    group = sorted(group, key=lambda r: r.line)
    for what, attr in (("patients", "patient_id"), ("splits", "split")):
      if len({getattr(r, attr) for r in group}) > 1:
        problems.append(
            f"{source}:{group[-1].line}: the same file content as line "
            f"{group[0].line} under two {what} "
            f"({', '.join(sorted({getattr(r, attr) for r in group}))})"
        )
  return problems


def finalize(
    out_dir: str,
    plans: Sequence[ShardPlan],
    spec: CacheSpec,
    view_counts: dict[str, int] | None = None,
    rows_source: str = "labels",
    view_min_confidence: float = 0.5,
) -> dict[str, Any]:
  """Rebuilds errors.csv and meta.json from every finished shard; returns the meta.

  Raises LabelsError (and writes no meta.json) when one file's content is listed under two
  patients or in two splits.
  """
  reports, done = [], 0
  for plan in plans:
    path = os.path.join(out_dir, plan.name)
    if os.path.exists(path):
      done += 1
      reports.append(_read_json(path + REPORT_SUFFIX))
  problems = _duplicate_files(plans, reports, rows_source)
  if problems:
    raise labels_lib.LabelsError(rows_source, problems)
  lines = {r.video_id: r.line for p in plans for r in p.rows}
  errors = [
      dict(e, line=lines.get(e["video_id"], e.get("line", "")))
      for r in reports
      for e in r.get("errors", [])
  ]
  errors.sort(key=lambda e: (int(e["line"] or 0), e["video_id"]))
  tmp = os.path.join(out_dir, ERRORS_FILE + ".tmp")
  with open(tmp, "w", newline="") as f:
    writer = csv.DictWriter(f, ERROR_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(errors)
  os.replace(tmp, os.path.join(out_dir, ERRORS_FILE))
  splits, quality = {}, collections.Counter()
  for split in cache.SPLITS:
    try:
      index = cache.read_index(out_dir, split)
    except FileNotFoundError:
      index = []
    splits[split] = len(index)
    quality.update(row["quality"] for row in index if row["quality"] != "ok")
    if split == "train":
      stats = cache.label_stats(index)
  meta = {
      "format": FORMAT,
      "image_size": spec.image_size,
      "num_frames": spec.num_frames,
      "interval_ms": spec.interval_ms,
      "source": spec.source,
      "splits": splits,
      "label_stats": stats,
      "shards_expected": len(plans),
      "shards_done": done,
      "complete": done == len(plans),
      "failed": len(errors),
      "failed_by_reason": dict(collections.Counter(e["error_type"] for e in errors)),
      "degenerate": dict(quality),
      "build": spec.identity(),
      "inputs_digest": shard_plan.inputs_digest(plans, spec),
      "views": view_counts or {},
  }
  names = next((r["mask_names"] for r in reports if r.get("mask_names")), None)
  if names:
    meta["mask_names"] = names
  views_lib.report_views(out_dir, meta, view_min_confidence)  # per view and source; unsure ones
  cache.write_meta(out_dir, meta)
  if meta["complete"]:
    shutil.rmtree(os.path.join(out_dir, STALE_DIR), ignore_errors=True)
  return meta
