"""Labels CSV (or EchoNet-Dynamic) -> de-identified ArrayRecord cache, once, in parallel: the CLI.

  python -m echonet_jax.preprocess --labels labels.csv --out CACHE [--workers 8]
  python -m echonet_jax.preprocess --echonet_dynamic EchoNet-Dynamic/ --out CACHE
  # on machine k of M: --shard_index k --num_shards M; afterwards any machine: --finalize

The flags make one :class:`~echonet_jax.data.spec.CacheSpec`; the work is
:mod:`echonet_jax.data.ingest`. ``--view_model`` loads a trained view classifier to fill blank
views, which is why this CLI sits above the stages rather than in ``data/``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from echonet_jax.data import settings as settings_lib
from echonet_jax.data.ingest import build_cache
from echonet_jax.data.ingest import build_echonet_dynamic_cache
from echonet_jax.data.ingest import format_summary
from echonet_jax.data.spec import CacheSpec
from echonet_jax.errors import EchonetError
from echonet_jax.training import restore


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
  """The CLI flags (see ``python -m echonet_jax.preprocess --help``)."""
  defaults = CacheSpec()
  parser = argparse.ArgumentParser(
      prog="python -m echonet_jax.preprocess", description=__doc__.split("\n")[0]
  )
  source = parser.add_mutually_exclusive_group(required=True)
  source.add_argument("--labels", help="labels CSV (see echonet_jax/data/labels.py)")
  source.add_argument("--echonet_dynamic", help="EchoNet-Dynamic folder (FileList.csv, Videos/)")
  parser.add_argument("--out", required=True, help="cache folder")
  parser.add_argument("--num_frames", type=int, default=defaults.num_frames)
  parser.add_argument("--interval_ms", type=float, default=defaults.interval_ms)
  parser.add_argument(
      "--image_size",
      "--size",
      dest="image_size",
      type=int,
      default=0,
      help="output frames, pixels a side; "
      "0 (default): native, 299 for DICOMs and 112 for EchoNet-Dynamic",
  )
  parser.add_argument("--workers", type=int, default=None, help="processes (default: CPUs)")
  parser.add_argument("--seed", type=int, default=defaults.split_seed, help="patient split seed")
  parser.add_argument("--test_frac", type=float, default=defaults.test_frac)
  parser.add_argument("--val_frac", type=float, default=defaults.val_frac)
  parser.add_argument("--shard_index", type=int, default=0, help="this machine, 0..num_shards-1")
  parser.add_argument("--num_shards", type=int, default=1, help="machines sharing the work")
  parser.add_argument("--videos_per_shard", type=int, default=defaults.videos_per_shard)
  parser.add_argument(
      "--views",
      default="",
      help="comma list of views to keep, e.g. A4C " "(rows without a view are kept and counted)",
  )
  parser.add_argument(
      "--label_ranges",
      default="",
      help="plausible label ranges to use instead of tasks.py's, "
      "e.g. weight=1:500,height=0.3:2.6",
  )
  parser.add_argument(
      "--view_model",
      default="",
      help="trained view workdir (configs/view.py): fills every blank view",
  )
  parser.add_argument(
      "--view_min_confidence",
      type=float,
      default=0.5,
      help="predicted views below this are listed; training leaves them out",
  )
  parser.add_argument("--allow_non_ultrasound", action="store_true")
  parser.add_argument(
      "--default_fps",
      type=float,
      default=defaults.default_fps,
      help="frame rate assumed when a file has no timing",
  )
  parser.add_argument("--no_progress", action="store_true")
  parser.add_argument(
      "--finalize",
      action="store_true",
      help="only rebuild meta.json and errors.csv from the finished shards",
  )
  args = parser.parse_args(argv)
  try:  # one line per implausible setting, before any work
    settings_lib.check_preprocess_args(args)
  except EchonetError as e:
    parser.error(str(e))
  return args


def spec_from_args(args: argparse.Namespace) -> CacheSpec:
  """The CacheSpec of the CLI flags."""
  return CacheSpec(
      source="labels_csv" if args.labels else "echonet_dynamic",
      num_frames=args.num_frames,
      interval_ms=args.interval_ms,
      image_size=args.image_size,
      default_fps=args.default_fps,
      allow_non_ultrasound=args.allow_non_ultrasound,
      split_seed=args.seed,
      test_frac=args.test_frac,
      val_frac=args.val_frac,
      videos_per_shard=args.videos_per_shard,
      views=args.views if args.labels else (),
  )


def main(argv: Sequence[str] | None = None) -> int:
  """CLI entry point; returns the exit status."""
  args = parse_args(argv)
  common = dict(
      workers=args.workers,
      shard_index=args.shard_index,
      num_shards=args.num_shards,
      progress=not args.no_progress,
      finalize_only=args.finalize,
  )
  try:
    spec = spec_from_args(args)
    if args.labels:
      predictor = None
      if args.view_model:
        predictor = restore.load_view_predictor(args.view_model, spec.views)
      summary = build_cache(
          args.labels,
          args.out,
          spec,
          label_ranges=args.label_ranges,
          view_predictor=predictor,
          view_min_confidence=args.view_min_confidence,
          **common,
      )
    else:
      summary = build_echonet_dynamic_cache(args.echonet_dynamic, args.out, spec, **common)
  except (EchonetError, FileNotFoundError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(format_summary(summary))
  return 0


if __name__ == "__main__":
  sys.exit(main())
