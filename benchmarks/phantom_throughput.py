"""Phantom generation speed on one core: studies/s (render only, and render + DICOM/mask files).

Prints one JSON line. Usage (repo root): PYTHONPATH=. python benchmarks/phantom_throughput.py
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from echonet_jax import phantom  # pylint: disable=g-import-not-at-top
from echonet_jax.phantom import writer  # pylint: disable=g-import-not-at-top


def _rate(fn, n):
  fn(0)  # warm-up
  start = time.perf_counter()
  for i in range(1, n + 1):
    fn(i)
  return n / (time.perf_counter() - start)


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--studies", type=int, default=8)
  args = parser.parse_args()
  cv2.setNumThreads(1)  # one core
  result = {
      "benchmark": "phantom_throughput",
      "machine": f"{platform.platform()} {platform.processor() or platform.machine()} "
      f"cpus={os.cpu_count()} {datetime.date.today().isoformat()}",
  }
  for rows, cols, frame_ms, frames in ((480, 640, 33.3, 66), (240, 320, 50.0, 44)):
    key = f"{rows}x{cols}x{frames}"

    def render(i):
      rng = np.random.default_rng([0, i])
      phantom.render_video(phantom.sample_patient(rng), rng, "A4C", rows, cols, frames, frame_ms)

    with tempfile.TemporaryDirectory() as tmp:
      os.makedirs(os.path.join(tmp, "dicom"))
      os.makedirs(os.path.join(tmp, "masks"))
      full = lambda i: writer._make_study(  # pylint: disable=protected-access
          (tmp, i, 0, ("A4C",), rows, cols, frames, frame_ms, "MONOCHROME2", "none")
      )
      result[f"render_studies_per_s_{key}"] = round(_rate(render, args.studies), 2)
      result[f"write_studies_per_s_{key}"] = round(_rate(full, args.studies), 2)
  print(json.dumps(result))


if __name__ == "__main__":
  main()
