"""Labels CSV (or EchoNet-Dynamic) -> de-identified ArrayRecord cache, once, in parallel: the CLI.

  python -m echonet_jax.data.preprocess --labels labels.csv --out CACHE [--workers 8]
  python -m echonet_jax.data.preprocess --echonet_dynamic EchoNet-Dynamic/ --out CACHE
  # on machine k of M: --shard_index k --num_shards M; afterwards any machine: --finalize

The flags make one :class:`~echonet_jax.data.spec.CacheSpec`; the build itself (shards, reuse of
unchanged videos, errors.csv, meta.json) is :mod:`echonet_jax.data.build`. Rerunning after the
labels CSV changed updates the folder: added and changed rows are written, removed rows dropped,
videos whose file did not change are copied rather than read again.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Sequence

from echonet_jax.data import build
from echonet_jax.data import echonet_dynamic
from echonet_jax.data import labels as labels_lib
from echonet_jax.data import settings as settings_lib
from echonet_jax.data import views as views_lib
from echonet_jax.data.spec import CacheSpec
from echonet_jax.errors import EchonetError

ERRORS_FILE = build.ERRORS_FILE


def build_cache(labels_csv: str, out_dir: str, spec: CacheSpec | None = None, *,
                workers: int | None = None, shard_index: int = 0, num_shards: int = 1,
                progress: bool = True, finalize_only: bool = False,
                label_ranges: dict | str | None = None,
                view_predictor: views_lib.Predictor | None = None,
                view_min_confidence: float = 0.5) -> dict[str, Any]:
  """Converts every video of a labels CSV into the cache at ``out_dir`` (``spec`` default: the
  defaults of :class:`CacheSpec`).

  Returns a summary: ``written`` (videos written now), ``read`` / ``reused`` (of those, read from
  their files / copied from the previous cache), ``skipped`` (videos of shards finished earlier),
  ``failed`` ({error type: count} of this run), ``changes`` (since the previous build), shard
  counts and ``meta``. ``workers`` defaults to the CPU count; 0 or 1 works in this process. Raises
  LabelsError for a bad CSV, CacheError for a folder of other settings or a worker that died.
  ``view_predictor`` (``evaluation.view_model.load_predictor``) fills every blank view first.
  """
  spec = spec or CacheSpec()
  rows = labels_lib.read_labels(labels_csv, label_ranges)
  if view_predictor is not None:
    rows = views_lib.fill_views(rows, view_predictor, progress=progress)
  return build.build_from_rows(rows, out_dir, spec, workers=workers, shard_index=shard_index,
                               num_shards=num_shards, progress=progress,
                               finalize_only=finalize_only, rows_source=str(labels_csv),
                               view_min_confidence=view_min_confidence)


def build_echonet_dynamic_cache(root: str, out_dir: str, spec: CacheSpec | None = None, *,
                                workers: int | None = None, shard_index: int = 0,
                                num_shards: int = 1, progress: bool = True,
                                finalize_only: bool = False) -> dict[str, Any]:
  """Converts EchoNet-Dynamic (``root/FileList.csv`` + ``root/Videos``) into the cache."""
  spec = spec or CacheSpec(source="echonet_dynamic")
  if spec.source != "echonet_dynamic":
    raise ValueError(
        f"an EchoNet-Dynamic cache needs source='echonet_dynamic', got {spec.source!r}")
  rows = echonet_dynamic.read_filelist(root)
  return build.build_from_rows(rows, out_dir, spec, workers=workers, shard_index=shard_index,
                               num_shards=num_shards, progress=progress,
                               finalize_only=finalize_only,
                               rows_source=f"{root}/{echonet_dynamic.FILELIST}")


def format_summary(summary: dict[str, Any]) -> str:
  """The human-readable summary printed at the end of a build."""
  failed = summary["failed"]
  lines = [f"videos written: {summary['written']} ({summary['shards_written']} shards; read from "
           f"their files: {summary['read']}, reused from the previous cache: {summary['reused']});"
           f" already done: {summary['skipped']} ({summary['shards_skipped']} shards)",
           f"videos failed: {sum(failed.values())}"]
  lines += [f"  {kind}: {count}" for kind, count in sorted(failed.items())]
  changes = summary.get("changes")
  if changes:
    lines.append(f"changes since the previous build: {changes['added']} added, "
                 f"{changes['removed']} removed, {changes['relabelled']} relabelled, "
                 f"{changes['other_file']} with another file")
  views = summary.get("views") or {}
  if views.get("dropped"):
    lines.append(f"rows left out by the views rule: {views['dropped']}")
  if views.get("unknown"):
    lines.append(f"warning: {views['unknown']} rows have no view and were kept")
  meta = summary["meta"]
  if meta.get("degenerate"):
    lines.append("degenerate videos (kept, flagged in the index's quality column): " + ", ".join(
        f"{k}: {v}" for k, v in sorted(meta["degenerate"].items())))
  lines.append(f"cache {summary['out_dir']}: {meta['splits']}, "
               f"{meta['shards_done']}/{meta['shards_expected']} shards done"
               + ("" if meta["complete"] else " (other machines or runs still to finish)"))
  lines.append(f"errors (all runs): {meta['failed']} in {summary['errors_csv']} "
               "(by labels CSV line)")
  lines += views_lib.summary_lines(meta, summary["out_dir"])
  return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
  """The CLI flags (see ``python -m echonet_jax.data.preprocess --help``)."""
  defaults = CacheSpec()
  parser = argparse.ArgumentParser(prog="python -m echonet_jax.data.preprocess",
                                   description=__doc__.split("\n")[0])
  source = parser.add_mutually_exclusive_group(required=True)
  source.add_argument("--labels", help="labels CSV (see echonet_jax/data/labels.py)")
  source.add_argument("--echonet_dynamic", help="EchoNet-Dynamic folder (FileList.csv, Videos/)")
  parser.add_argument("--out", required=True, help="cache folder")
  parser.add_argument("--num_frames", type=int, default=defaults.num_frames)
  parser.add_argument("--interval_ms", type=float, default=defaults.interval_ms)
  parser.add_argument("--image_size", "--size", dest="image_size", type=int,
                      default=0, help="output frames, pixels a side; "
                      "0 (default): native, 299 for DICOMs and 112 for EchoNet-Dynamic")
  parser.add_argument("--workers", type=int, default=None, help="processes (default: CPUs)")
  parser.add_argument("--seed", type=int, default=defaults.split_seed, help="patient split seed")
  parser.add_argument("--test_frac", type=float, default=defaults.test_frac)
  parser.add_argument("--val_frac", type=float, default=defaults.val_frac)
  parser.add_argument("--shard_index", type=int, default=0, help="this machine, 0..num_shards-1")
  parser.add_argument("--num_shards", type=int, default=1, help="machines sharing the work")
  parser.add_argument("--videos_per_shard", type=int, default=defaults.videos_per_shard)
  parser.add_argument("--views", default="", help="comma list of views to keep, e.g. A4C "
                      "(rows without a view are kept and counted)")
  parser.add_argument("--label_ranges", default="",
                      help="plausible label ranges to use instead of tasks.py's, "
                      "e.g. weight=1:500,height=0.3:2.6")
  parser.add_argument("--view_model", default="",
                      help="trained view workdir (configs/view.py): fills every blank view")
  parser.add_argument("--view_min_confidence", type=float, default=0.5,
                      help="predicted views below this are listed; training leaves them out")
  parser.add_argument("--allow_non_ultrasound", action="store_true")
  parser.add_argument("--default_fps", type=float, default=defaults.default_fps,
                      help="frame rate assumed when a file has no timing")
  parser.add_argument("--no_progress", action="store_true")
  parser.add_argument("--finalize", action="store_true",
                      help="only rebuild meta.json and errors.csv from the finished shards")
  args = parser.parse_args(argv)
  try:  # one line per implausible setting, before any work
    settings_lib.check_preprocess_args(args)
  except EchonetError as e:
    parser.error(str(e))
  return args


def spec_from_args(args: argparse.Namespace) -> CacheSpec:
  """The CacheSpec of the CLI flags."""
  return CacheSpec(
      source="labels_csv" if args.labels else "echonet_dynamic", num_frames=args.num_frames,
      interval_ms=args.interval_ms, image_size=args.image_size, default_fps=args.default_fps,
      allow_non_ultrasound=args.allow_non_ultrasound, split_seed=args.seed,
      test_frac=args.test_frac, val_frac=args.val_frac, videos_per_shard=args.videos_per_shard,
      views=args.views if args.labels else ())


def main(argv: Sequence[str] | None = None) -> int:
  """CLI entry point; returns the exit status."""
  args = parse_args(argv)
  common = dict(workers=args.workers, shard_index=args.shard_index, num_shards=args.num_shards,
                progress=not args.no_progress, finalize_only=args.finalize)
  try:
    spec = spec_from_args(args)
    if args.labels:
      predictor = None
      if args.view_model:  # the one higher-stage import: a trained model reads the videos
        from echonet_jax.evaluation import view_model  # pylint: disable=g-import-not-at-top
        predictor = view_model.load_predictor(args.view_model, spec.views)
      summary = build_cache(args.labels, args.out, spec, label_ranges=args.label_ranges,
                            view_predictor=predictor,
                            view_min_confidence=args.view_min_confidence, **common)
    else:
      summary = build_echonet_dynamic_cache(args.echonet_dynamic, args.out, spec, **common)
  except (EchonetError, FileNotFoundError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(format_summary(summary))
  return 0


if __name__ == "__main__":
  sys.exit(main())
