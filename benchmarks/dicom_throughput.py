"""DICOM ingestion speed: read_echo vs a full decode, and the cache writer's throughput.

  python benchmarks/dicom_throughput.py [--repeats 5] [--copies 16] [--workers 2]

Prints one JSON line: read_echo on pydicom-data's color3d_jpeg_baseline.dcm (120 frames, 640x480,
JPEG baseline; 20 frames at 100 ms, 299x299) next to pydicom's full ``pixel_array`` decode of the
same file, and build_cache over ``--copies`` rows of that file with ``--workers`` processes.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from echonet_jax.data import dicom  # pylint: disable=g-import-not-at-top,wrong-import-position
from echonet_jax.data import dicom_header  # pylint: disable=g-import-not-at-top,wrong-import-position
from echonet_jax.data import ingest  # pylint: disable=g-import-not-at-top,wrong-import-position
from echonet_jax.data.spec import CacheSpec  # pylint: disable=g-import-not-at-top,wrong-import-position


def _median_seconds(fn, repeats: int) -> float:
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--copies", type=int, default=16)
  parser.add_argument("--workers", type=int, default=2)
  args = parser.parse_args()

  import pydicom  # pylint: disable=g-import-not-at-top
  from pydicom.data import get_testdata_file  # pylint: disable=g-import-not-at-top

  path = get_testdata_file("color3d_jpeg_baseline.dcm")
  if path is None:
    sys.exit("color3d_jpeg_baseline.dcm not found: pip install pydicom-data")

  dicom.read_echo(path)  # warm-up: imports, plugin discovery
  read_s = _median_seconds(lambda: dicom.read_echo(path, 20, 100, 299), args.repeats)

  def full_decode():
    with dicom_header.quiet_pydicom():
      return pydicom.dcmread(path).pixel_array

  full_s = _median_seconds(full_decode, max(1, args.repeats // 2))

  def full_decode_same_plugin():  # every frame, with read_echo's decoder and no conversion
    with dicom_header.quiet_pydicom():
      ds = dicom_header.read_dataset(path)
      return dicom.decode_frames(ds, range(dicom_header.num_frames_of(ds)), path)

  same_s = _median_seconds(full_decode_same_plugin, max(1, args.repeats // 2))

  with tempfile.TemporaryDirectory() as tmp:
    labels = os.path.join(tmp, "labels.csv")
    with open(labels, "w", newline="") as f:
      writer = csv.writer(f)
      writer.writerow(["patient_id", "study_id", "path", "split"])
      for i in range(args.copies):
        writer.writerow(["p0", f"s{i}", path, "train"])  # one file under two patients is refused
    start = time.perf_counter()
    summary = ingest.build_cache(
        labels,
        os.path.join(tmp, "cache"),
        CacheSpec(videos_per_shard=8),
        workers=args.workers,
        progress=False,
    )
    cache_s = time.perf_counter() - start
  assert summary["written"] == args.copies, summary

  print(
      json.dumps(
          {
              "benchmark": "dicom_throughput",
              "machine": f"{platform.platform()} {platform.processor() or platform.machine()}, "
              f"{os.cpu_count()} CPUs",
              "date": datetime.date.today().isoformat(),
              "file": "color3d_jpeg_baseline.dcm (120 frames, 640x480, JPEG baseline YBR_FULL_422)",
              "read_echo": {
                  "frames": 20,
                  "interval_ms": 100,
                  "size": 299,
                  "ms_per_video": round(read_s * 1000, 1),
                  "videos_per_s": round(1 / read_s, 2),
              },
              "full_pixel_array_decode": {
                  "frames": 120,
                  "ms_per_video": round(full_s * 1000, 1),
                  "videos_per_s": round(1 / full_s, 2),
              },
              "full_decode_same_plugin": {"frames": 120, "ms_per_video": round(same_s * 1000, 1)},
              "speedup_vs_full_decode": round(full_s / read_s, 2),
              "speedup_vs_full_decode_same_plugin": round(same_s / read_s, 2),
              "build_cache": {
                  "copies": args.copies,
                  "workers": args.workers,
                  "seconds": round(cache_s, 2),
                  "videos_per_s": round(args.copies / cache_s, 2),
                  "ms_per_video": round(cache_s * 1000 / args.copies, 1),
              },
          }
      )
  )


if __name__ == "__main__":
  main()
