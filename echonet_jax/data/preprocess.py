"""Labels CSV (or EchoNet-Dynamic) -> de-identified ArrayRecord cache, once, in parallel.

  python -m echonet_jax.data.preprocess --labels labels.csv --out CACHE [--workers 8]
  python -m echonet_jax.data.preprocess --echonet_dynamic EchoNet-Dynamic/ --out CACHE
  # on machine k of M: --shard_index k --num_shards M; afterwards any machine: --finalize

Videos are split by patient (see :mod:`echonet_jax.data.labels`), sorted by video id within each split
and cut into shards of ``videos_per_shard``; shard ``g`` (numbered over train, val, test in that
order) belongs to machine ``g % num_shards``. A shard whose ``.array_record`` exists is finished and
skipped, so a second run only does what is left. Next to each shard a ``.report.json`` keeps the
files that failed and why; ``errors.csv`` (path, video_id, error_type, reason) and ``meta.json`` are
rebuilt from all shards at the end of every run, so several machines and several runs add up.
A failed file never stops the run; to retry it, delete its shard and run again.
"""

from __future__ import annotations

import argparse
import collections
import csv
import dataclasses
import glob
import json
import math
import multiprocessing
import os
import sys
from typing import Any, Iterable, Sequence

import numpy as np

from echonet_jax import errors
from echonet_jax.data import cache
from echonet_jax.data import dicom
from echonet_jax.data import echonet_dynamic
from echonet_jax.data import labels as labels_lib
from echonet_jax.data import sector

ERRORS_FILE = "errors.csv"
ERROR_COLUMNS = ("path", "video_id", "error_type", "reason")
REPORT_SUFFIX = ".report.json"
# Settings that must match between runs writing into the same cache.
_BUILD_KEYS = ("num_frames", "interval_ms", "size", "seed", "test_frac", "val_frac",
               "videos_per_shard", "views", "source")


@dataclasses.dataclass(frozen=True)
class ReadSettings:
  num_frames: int = 20
  interval_ms: float = 100
  size: int = 299
  default_fps: float = dicom.DEFAULT_FPS
  allow_non_ultrasound: bool = False
  reader: str = "dicom"  # or "avi"


@dataclasses.dataclass(frozen=True)
class ShardPlan:
  split: str
  index: int
  count: int
  rows: tuple[labels_lib.VideoRow, ...]

  @property
  def name(self) -> str:
    return cache.shard_name(self.split, self.index, self.count)


def plan_shards(rows: Sequence[labels_lib.VideoRow], videos_per_shard: int) -> list[ShardPlan]:
  """Deterministic shards: per split (train, val, test), videos sorted by id, in chunks."""
  plans = []
  for split in cache.SPLITS:
    members = sorted((r for r in rows if r.split == split), key=lambda r: r.video_id)
    count = math.ceil(len(members) / videos_per_shard)
    for k in range(count):
      plans.append(ShardPlan(split, k, count,
                             tuple(members[k * videos_per_shard:(k + 1) * videos_per_shard])))
  return plans


def load_masks(row: labels_lib.VideoRow, clip: dicom.EchoClip, size: int
               ) -> tuple[np.ndarray, list[str]]:
  """Ground-truth masks of ``row`` at the clip's frames, on the clip's output grid."""
  if not os.path.exists(row.mask_path):
    raise errors.MaskError(row.path, f"mask file {row.mask_path} does not exist")
  try:
    with np.load(row.mask_path) as data:
      masks, names = data["masks"], [str(n) for n in data["mask_names"]]
  except Exception as e:  # pylint: disable=broad-except
    raise errors.MaskError(row.path, f"mask file {row.mask_path} is unreadable "
                                    f"({type(e).__name__})") from None
  expected = (clip.num_source_frames,) + tuple(clip.sector_mask.shape)
  if masks.shape != expected:
    raise errors.MaskError(row.path, f"mask file {row.mask_path} has shape {masks.shape}, "
                                    f"the video needs {expected}")
  picked = masks[clip.frame_indices].astype(np.uint16)
  return sector.apply_geometry(picked, clip.geometry, size, "nearest"), names


def process_video(row: labels_lib.VideoRow, settings: ReadSettings
                  ) -> tuple[dict[str, Any] | None, dict[str, str] | None, list[str]]:
  """One video -> (record, None, mask_names) or (None, error row, [])."""
  try:
    if settings.reader == "avi":
      clip = echonet_dynamic.read_avi(row.path, settings.num_frames, settings.interval_ms,
                                      settings.size, fps=row.fps or None,
                                      default_fps=settings.default_fps)
    else:
      clip = dicom.read_echo(row.path, settings.num_frames, settings.interval_ms, settings.size,
                             default_fps=settings.default_fps,
                             allow_non_ultrasound=settings.allow_non_ultrasound)
    record = {
        "video_id": row.video_id, "patient_id": row.patient_id, "study_id": row.study_id,
        "split": row.split, "view": row.view, "frames": clip.frames,
        "frame_indices": clip.frame_indices.astype(np.int32),
        "frame_time_ms": float(clip.frame_time_ms), "fps_assumed": bool(clip.fps_assumed),
        "quality": str(getattr(clip, "quality", None) or getattr(clip.geometry, "quality", "ok")),
        "labels": dict(row.labels)}
    names: list[str] = []
    if row.mask_path:
      record["masks"], names = load_masks(row, clip, settings.size)
    return record, None, names
  except errors.EchoReadError as e:
    error_type, reason = type(e).__name__, e.reason
  except Exception as e:  # pylint: disable=broad-except
    # Unknown failures: keep the type only, their text might quote file contents.
    error_type, reason = "UnexpectedError", f"unexpected {type(e).__name__} while reading"
  return None, {"path": row.path, "video_id": row.video_id, "error_type": error_type,
                "reason": reason}, []


def _process_star(args):
  return process_video(*args)


def _existing_counts(out_dir: str, split: str) -> set[int]:
  return {int(p.rsplit("-of-", 1)[1].split(".")[0])
          for p in glob.glob(os.path.join(out_dir, f"{split}-*-of-*.array_record"))}


def _check_compatible(out_dir: str, plans: Sequence[ShardPlan], build: dict[str, Any]) -> None:
  path = os.path.join(out_dir, cache.META_FILE)
  if os.path.exists(path):
    previous = cache.read_meta(out_dir).get("build", {})
    changed = [k for k in _BUILD_KEYS if k in previous and previous[k] != build[k]]
    if changed:
      raise ValueError(f"{out_dir}: the cache was built with other settings "
                       f"({', '.join(f'{k}={previous[k]!r}' for k in changed)}); "
                       "use a new --out folder")
  for split in cache.SPLITS:
    counts = {p.count for p in plans if p.split == split}
    stale = _existing_counts(out_dir, split) - counts
    if stale:
      raise ValueError(f"{out_dir}: holds {split} shards from a different video list or "
                       f"videos_per_shard (-of-{min(stale):05d}); use a new --out folder")


def finalize(out_dir: str, plans: Sequence[ShardPlan], build: dict[str, Any],
             settings: ReadSettings, filtered: int = 0) -> dict[str, Any]:
  """Rebuilds errors.csv and meta.json from every finished shard; returns the meta."""
  splits, reports, done = {}, [], 0
  for plan in plans:
    path = os.path.join(out_dir, plan.name)
    if os.path.exists(path):
      done += 1
      report_path = path + REPORT_SUFFIX
      if os.path.exists(report_path):
        with open(report_path) as f:
          reports.append(json.load(f))
  for split in cache.SPLITS:
    try:
      splits[split] = len(cache.read_index(out_dir, split))
    except FileNotFoundError:
      splits[split] = 0
  try:
    stats = cache.label_stats(cache.read_index(out_dir, "train"))
  except FileNotFoundError:
    stats = {}
  errors = sorted((e for r in reports for e in r.get("errors", [])),
                  key=lambda e: (e["path"], e["video_id"]))
  tmp = os.path.join(out_dir, ERRORS_FILE + ".tmp")
  with open(tmp, "w", newline="") as f:
    writer = csv.DictWriter(f, ERROR_COLUMNS)
    writer.writeheader()
    writer.writerows(errors)
  os.replace(tmp, os.path.join(out_dir, ERRORS_FILE))
  meta = {"format": 1, "image_size": settings.size, "num_frames": settings.num_frames,
          "interval_ms": settings.interval_ms, "source": build["source"], "splits": splits,
          "label_stats": stats, "shards_expected": len(plans), "shards_done": done,
          "complete": done == len(plans), "failed": len(errors),
          "failed_by_reason": dict(collections.Counter(e["error_type"] for e in errors)),
          "build": build}
  if filtered:
    meta["filtered_by_view"] = filtered
  names = next((r["mask_names"] for r in reports if r.get("mask_names")), None)
  if names:
    meta["mask_names"] = names
  cache.write_meta(out_dir, meta)
  return meta


def _iter_results(tasks: list[tuple[labels_lib.VideoRow, ReadSettings]], workers: int
                  ) -> Iterable[tuple[Any, Any, list[str]]]:
  if workers <= 1 or len(tasks) <= 1:
    for task in tasks:
      yield _process_star(task)
    return
  # spawn, not fork: callers such as launch.py may have started JAX's threads.
  context = multiprocessing.get_context("spawn")
  with context.Pool(min(workers, len(tasks))) as pool:
    yield from pool.imap(_process_star, tasks, chunksize=1)


def build_from_rows(rows: Sequence[labels_lib.VideoRow], out_dir: str, *, source: str,
                    settings: ReadSettings, workers: int | None = None, seed: int = 0,
                    test_frac: float = 0.1, val_frac: float = 0.1, shard_index: int = 0,
                    num_shards: int = 1, videos_per_shard: int = 64,
                    views: Iterable[str] | None = None, progress: bool = True,
                    finalize_only: bool = False) -> dict[str, Any]:
  """Writes the shards of ``rows`` that belong to this machine; see the module docstring."""
  if not 0 <= shard_index < num_shards:
    raise ValueError(f"shard_index must be in [0, {num_shards}), got {shard_index}")
  if videos_per_shard < 1:
    raise ValueError(f"videos_per_shard must be at least 1, got {videos_per_shard}")
  view_set = sorted({v.upper() for v in views}) if views else None
  kept = [r for r in rows if view_set is None or r.view.upper() in view_set]
  filtered = len(rows) - len(kept)
  kept = labels_lib.assign_splits(kept, seed, test_frac, val_frac, source=source)
  plans = plan_shards(kept, videos_per_shard)
  build = {"num_frames": settings.num_frames, "interval_ms": settings.interval_ms,
           "size": settings.size, "seed": seed, "test_frac": test_frac, "val_frac": val_frac,
           "videos_per_shard": videos_per_shard, "views": view_set, "source": source}
  os.makedirs(out_dir, exist_ok=True)
  _check_compatible(out_dir, plans, build)

  mine = [p for g, p in enumerate(plans) if g % num_shards == shard_index]
  todo = [p for p in mine if not os.path.exists(os.path.join(out_dir, p.name))]
  todo_names = {p.name for p in todo}
  summary = {"written": 0, "skipped": sum(len(p.rows) for p in mine if p.name not in todo_names),
             "failed": {}, "shards_written": 0, "shards_skipped": len(mine) - len(todo),
             "filtered_by_view": filtered, "out_dir": out_dir,
             "errors_csv": os.path.join(out_dir, ERRORS_FILE)}
  failed: collections.Counter = collections.Counter()
  if not finalize_only and todo:
    from tqdm import tqdm  # pylint: disable=g-import-not-at-top
    tasks = [(row, settings) for plan in todo for row in plan.rows]
    results = _iter_results(tasks, (os.cpu_count() or 1) if workers is None else workers)
    bar = tqdm(total=len(tasks), unit="video", disable=not progress, desc="preprocess")
    for plan in todo:
      records, errors, names = [], [], []
      for _ in plan.rows:
        record, error, mask_names = next(results)
        bar.update(1)
        if record is not None:
          records.append(record)
          names = names or mask_names
        else:
          errors.append(error)
          failed[error["error_type"]] += 1
          bar.set_postfix(failed=sum(failed.values()))
      path = os.path.join(out_dir, plan.name)
      with open(path + REPORT_SUFFIX + ".tmp", "w") as f:
        json.dump({"errors": errors, "mask_names": names, "videos": len(plan.rows)}, f)
      os.replace(path + REPORT_SUFFIX + ".tmp", path + REPORT_SUFFIX)
      cache.write_shard(path, records)  # renamed last: an existing shard is a finished one
      summary["written"] += len(records)
      summary["shards_written"] += 1
    bar.close()
  summary["failed"] = dict(failed)
  summary["meta"] = finalize(out_dir, plans, build, settings, filtered)
  return summary


def build_cache(labels_csv: str, out_dir: str, *, num_frames: int = 20, interval_ms: float = 100,
                size: int = 299, workers: int | None = None, seed: int = 0,
                test_frac: float = 0.1, val_frac: float = 0.1, shard_index: int = 0,
                num_shards: int = 1, videos_per_shard: int = 64,
                views: Iterable[str] | None = None, allow_non_ultrasound: bool = False,
                default_fps: float = dicom.DEFAULT_FPS, progress: bool = True,
                finalize_only: bool = False, source: str = "labels_csv") -> dict[str, Any]:
  """Converts every video of a labels CSV into the cache at ``out_dir``.

  Returns a summary: ``written`` (videos written now), ``skipped`` (videos of shards finished
  earlier), ``failed`` ({error type: count} of this run), shard counts and ``meta``. ``workers``
  defaults to the CPU count; 0 or 1 works in this process. ``source`` is meta.json's source
  ("labels_csv", or "phantom" for the phantom's CSV). Raises LabelsError for a bad CSV.
  """
  rows = labels_lib.read_labels(labels_csv)
  settings = ReadSettings(num_frames, interval_ms, size, default_fps, allow_non_ultrasound, "dicom")
  return build_from_rows(rows, out_dir, source=source, settings=settings, workers=workers,
                         seed=seed, test_frac=test_frac, val_frac=val_frac,
                         shard_index=shard_index, num_shards=num_shards,
                         videos_per_shard=videos_per_shard, views=views, progress=progress,
                         finalize_only=finalize_only)


def build_echonet_dynamic_cache(root: str, out_dir: str, *, num_frames: int = 20,
                                interval_ms: float = 100, size: int = 299,
                                workers: int | None = None, shard_index: int = 0,
                                num_shards: int = 1, videos_per_shard: int = 64,
                                default_fps: float = dicom.DEFAULT_FPS, progress: bool = True,
                                finalize_only: bool = False) -> dict[str, Any]:
  """Converts EchoNet-Dynamic (``root/FileList.csv`` + ``root/Videos``) into the cache."""
  rows = echonet_dynamic.read_filelist(root)
  settings = ReadSettings(num_frames, interval_ms, size, default_fps, False, "avi")
  return build_from_rows(rows, out_dir, source="echonet_dynamic", settings=settings,
                         workers=workers, shard_index=shard_index, num_shards=num_shards,
                         videos_per_shard=videos_per_shard, progress=progress,
                         finalize_only=finalize_only)


def format_summary(summary: dict[str, Any]) -> str:
  """The human-readable summary printed at the end of a build."""
  failed = summary["failed"]
  lines = [f"videos written: {summary['written']} ({summary['shards_written']} shards); "
           f"already done: {summary['skipped']} ({summary['shards_skipped']} shards)",
           f"videos failed: {sum(failed.values())}"]
  lines += [f"  {kind}: {count}" for kind, count in sorted(failed.items())]
  if summary.get("filtered_by_view"):
    lines.append(f"rows left out by --views: {summary['filtered_by_view']}")
  meta = summary["meta"]
  lines.append(f"cache {summary['out_dir']}: {meta['splits']}, "
               f"{meta['shards_done']}/{meta['shards_expected']} shards done"
               + ("" if meta["complete"] else " (other machines or runs still to finish)"))
  lines.append(f"errors (all runs): {meta['failed']} in {summary['errors_csv']}")
  return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
  """The CLI flags (see ``python -m echonet_jax.data.preprocess --help``)."""
  parser = argparse.ArgumentParser(prog="python -m echonet_jax.data.preprocess",
                                   description=__doc__.split("\n")[0])
  source = parser.add_mutually_exclusive_group(required=True)
  source.add_argument("--labels", help="labels CSV (see echonet_jax/labels.py)")
  source.add_argument("--echonet_dynamic", help="EchoNet-Dynamic folder (FileList.csv, Videos/)")
  parser.add_argument("--out", required=True, help="cache folder")
  parser.add_argument("--num_frames", type=int, default=20)
  parser.add_argument("--interval_ms", type=float, default=100)
  parser.add_argument("--size", type=int, default=299)
  parser.add_argument("--workers", type=int, default=None, help="processes (default: CPUs)")
  parser.add_argument("--seed", type=int, default=0, help="patient split seed")
  parser.add_argument("--test_frac", type=float, default=0.1)
  parser.add_argument("--val_frac", type=float, default=0.1)
  parser.add_argument("--shard_index", type=int, default=0, help="this machine, 0..num_shards-1")
  parser.add_argument("--num_shards", type=int, default=1, help="machines sharing the work")
  parser.add_argument("--videos_per_shard", type=int, default=64)
  parser.add_argument("--views", default="", help="comma list of views to keep, e.g. A4C")
  parser.add_argument("--allow_non_ultrasound", action="store_true")
  parser.add_argument("--default_fps", type=float, default=dicom.DEFAULT_FPS,
                      help="frame rate assumed when a file has no timing")
  parser.add_argument("--no_progress", action="store_true")
  parser.add_argument("--finalize", action="store_true",
                      help="only rebuild meta.json and errors.csv from the finished shards")
  return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
  """CLI entry point; returns the exit status."""
  args = parse_args(argv)
  common = dict(num_frames=args.num_frames, interval_ms=args.interval_ms, size=args.size,
                workers=args.workers, shard_index=args.shard_index, num_shards=args.num_shards,
                videos_per_shard=args.videos_per_shard, default_fps=args.default_fps,
                progress=not args.no_progress, finalize_only=args.finalize)
  try:
    if args.labels:
      summary = build_cache(args.labels, args.out, seed=args.seed, test_frac=args.test_frac,
                            val_frac=args.val_frac,
                            views=[v for v in args.views.split(",") if v.strip()] or None,
                            allow_non_ultrasound=args.allow_non_ultrasound, **common)
    else:
      summary = build_echonet_dynamic_cache(args.echonet_dynamic, args.out, **common)
  except (labels_lib.LabelsError, FileNotFoundError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(format_summary(summary))
  return 0


if __name__ == "__main__":
  sys.exit(main())
