"""The results table of evaluated workdirs, beside the paper's figures: the CLI.

  python -m echonet_jax.report WORKDIR [WORKDIR ...] [--split test] [--out results.md]

Each argument may be a workdir, its ``eval`` folder, a split folder, a ``metrics.json`` file, or a
folder holding many workdirs (searched recursively for ``eval/<split>/metrics.json``). The table
itself is :mod:`echonet_jax.evaluation.results_table`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from echonet_jax.evaluation import results_table


def main(argv: Sequence[str] | None = None) -> int:
  """CLI entry point: prints the results table and writes results.md."""
  parser = argparse.ArgumentParser(
      prog="python -m echonet_jax.report", description=__doc__.split("\n\n")[0]
  )
  parser.add_argument("dirs", nargs="+", help="workdirs (or eval folders, or folders of workdirs)")
  parser.add_argument("--split", default="test")
  parser.add_argument("--out", default="results.md", help="markdown file to write")
  parser.add_argument("--n_boot", type=int, default=1000, help="bootstrap resamples for derived EF")
  args = parser.parse_args(argv)
  try:
    table = results_table.results_table(args.dirs, args.split, n_boot=args.n_boot)
  except (ValueError, FileNotFoundError) as e:
    parser.exit(2, f"error: {e}\n")
  print(table, end="")
  with open(args.out, "w") as f:
    f.write(table)
  return 0


if __name__ == "__main__":
  sys.exit(main())
