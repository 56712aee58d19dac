"""CLI: ``python -m echonet_jax.phantom --out DIR --studies N --seed S [--views A4C,PSAX|all]``."""

from __future__ import annotations

import argparse
import sys
import time

from echonet_jax.phantom import views
from echonet_jax.phantom import writer


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m echonet_jax.phantom", description=__doc__)
  parser.add_argument("--out", required=True, help="output folder")
  parser.add_argument("--studies", type=int, required=True, help="number of studies (patients)")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument(
      "--views",
      default="A4C",
      help=f"comma-separated among {','.join(views.VIEW_CLASSES)} (A4C required), " "or 'all'",
  )
  parser.add_argument("--rows", type=int, default=480)
  parser.add_argument("--cols", type=int, default=640)
  parser.add_argument("--frame_time_ms", type=float, default=33.3)
  parser.add_argument("--duration_s", type=float, default=2.2)
  parser.add_argument("--workers", type=int, default=1)
  parser.add_argument("--photometric", default="MONOCHROME2", choices=("MONOCHROME2", "YBR_FULL"))
  parser.add_argument("--compression", default="none", choices=("none", "rle"))
  args = parser.parse_args(argv)
  start = time.perf_counter()
  try:
    path = writer.generate_dataset(
        args.out,
        args.studies,
        args.seed,
        views=args.views,
        rows=args.rows,
        cols=args.cols,
        frame_time_ms=args.frame_time_ms,
        duration_s=args.duration_s,
        workers=args.workers,
        photometric=args.photometric,
        compression=args.compression,
    )
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(f"wrote {path} ({args.studies} studies in {time.perf_counter() - start:.1f} s)")
  return 0


if __name__ == "__main__":
  sys.exit(main())
