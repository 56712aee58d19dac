"""Train-stream throughput: frames/s per worker process and in total, with and without augmentation.

Builds a temporary cache (the real format: cache.write_shard) of phantom-like videos (a masked
scan sector of smoothed speckle), then reads the train stream with 0 workers (in-process, one
reading thread, OpenCV on one thread: one core) and with each worker count in ``--workers``. Also
times the per-example stages on one core. Prints one JSON line.

  PYTHONPATH=. python benchmarks/input_pipeline.py --batch 64 --batches 20 --workers 0,1,2
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

from echonet_jax.data import augment
from echonet_jax.data import cache
from echonet_jax.data import normalization
from echonet_jax.data import train_stream


def phantom_video(rng: np.random.Generator, frames: int, size: int) -> np.ndarray:
  """uint8 (frames, size, size): speckle inside a 70° sector with its apex at the top centre."""
  yy, xx = np.mgrid[:size, :size].astype(np.float32)
  radius = np.hypot(xx - size / 2, yy + 0.02 * size)
  sector = (np.abs(np.arctan2(xx - size / 2, yy + 0.02 * size)) < np.radians(35)) & (radius < size)
  video = np.empty((frames, size, size), np.uint8)
  for t in range(frames):
    speckle = rng.gamma(1.2, 25.0, (size, size)).astype(np.float32)
    speckle = cv2.GaussianBlur(speckle, (5, 5), 1.2) * (1.0 - 0.6 * radius / size)
    video[t] = np.clip(speckle, 0, 255).astype(np.uint8) * sector
  return video


def build_cache(
    root: str, videos: int, records: int, frames: int, size: int, writer_options: str = ""
) -> None:
  """``records`` cache records cycling over ``videos`` distinct phantom videos."""
  rng = np.random.default_rng(0)
  distinct = [phantom_video(rng, frames, size) for _ in range(videos)]

  def rows():
    for i in range(records):
      video, labels = distinct[i % videos], {"ef": 40.0 + i % 30}
      yield cache.example_record(i, video, labels, video_id=f"bench{i}")

  path = os.path.join(root, cache.shard_name("train", 0, 1))
  cache.write_shard(path, rows())
  if writer_options:  # rewrite the records with other ArrayRecord options (e.g. uncompressed)
    from array_record.python import array_record_module  # pylint: disable=g-import-not-at-top

    reader = array_record_module.ArrayRecordReader(path)
    writer = array_record_module.ArrayRecordWriter(path + ".tmp", writer_options)
    for _ in range(reader.num_records()):
      writer.write(reader.read())
    writer.close()
    reader.close()
    os.replace(path + ".tmp", path)
  cache.write_meta(
      root,
      {
          "format": 1,
          "image_size": size,
          "num_frames": frames,
          "interval_ms": 100,
          "source": "benchmark",
          "splits": {"train": records},
      },
  )


def stream_fps(cache_dir: str, *, workers: int, augmented: bool, batch: int, batches: int) -> float:
  loader = train_stream.train_loader(
      cache_dir,
      tasks=["ef"],
      global_batch_size=batch,
      seed=0,
      num_workers=workers,
      rotation_deg=20.0 if augmented else 0.0,
      brightness=0.1 if augmented else 0.0,
      shard_index=0,
      num_shards=1,
      num_threads=1,
      prefetch=2,
  )
  it = iter(loader)
  try:
    for _ in range(max(2, workers)):  # start-up (worker spawn, first batch of each) is not timed
      next(it)
    start = time.perf_counter()
    for _ in range(batches):
      next(it)
    return batches * batch / (time.perf_counter() - start)
  finally:
    if hasattr(it, "close"):
      it.close()


def stage_ms(cache_dir: str, repeats: int) -> dict[str, float]:
  """Milliseconds per example of each stage, on one core."""
  import grain  # pylint: disable=g-import-not-at-top

  path = cache.shard_paths(cache_dir, "train")[0]
  source = grain.sources.ArrayRecordDataSource([path])
  n = min(len(source), 64)
  data = source[0]
  frame = np.array(cache.decode_record(data)["frames"][3])
  out = {}

  def timed(name, fn):
    start = time.perf_counter()
    for i in range(repeats):
      fn(i)
    out[name] = round((time.perf_counter() - start) / repeats * 1e3, 4)

  timed("read_record", lambda i: source[i % n])
  timed("decode_one_frame", lambda i: cache.decode_record(data, frames=[i % 20])["frames"][0])
  timed("decode_all_frames", lambda i: cache.decode_record(data)["frames"])
  timed("rotate_uint8", lambda i: augment.rotate(frame, 13.0))
  timed("normalize_and_shift", lambda i: normalization.normalize(frame) + np.float32(0.05))
  out["record_mb"] = round(os.path.getsize(path) / len(source) / 1e6, 3)
  return out


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--videos", type=int, default=64, help="distinct phantom videos")
  # Grain's index shuffle costs ~25/N ms per example over N records, so a tiny cache would
  # measure the shuffle; real train splits have thousands of videos.
  parser.add_argument("--records", type=int, default=1024, help="cache records (videos repeat)")
  parser.add_argument("--frames", type=int, default=20)
  parser.add_argument("--size", type=int, default=299)
  parser.add_argument("--batch", type=int, default=64)
  parser.add_argument("--batches", type=int, default=20, help="timed batches per configuration")
  parser.add_argument("--workers", default="0,1,2", help="comma-separated worker counts")
  parser.add_argument(
      "--writer_options",
      default="",
      help="ArrayRecord writer options to rewrite the cache with, e.g. "
      "'group_size:1,uncompressed' (default: cache.write_shard's)",
  )
  parser.add_argument("--repeats", type=int, default=200, help="repeats of each stage timing")
  args = parser.parse_args()
  cv2.setNumThreads(1)

  with tempfile.TemporaryDirectory() as root:
    build_cache(root, args.videos, args.records, args.frames, args.size, args.writer_options)
    results = []
    for workers in (int(w) for w in args.workers.split(",")):
      for augmented in (True, False):
        fps = stream_fps(
            root, workers=workers, augmented=augmented, batch=args.batch, batches=args.batches
        )
        results.append(
            {
                "workers": workers,
                "augmented": augmented,
                "frames_per_s": round(fps, 1),
                "frames_per_s_per_process": round(fps / max(workers, 1), 1),
            }
        )
    stages = stage_ms(root, args.repeats)

  print(
      json.dumps(
          {
              "benchmark": "input_pipeline",
              "machine": f"{platform.platform()}; {platform.processor() or platform.machine()}; "
              f"{os.cpu_count()} cpus; {datetime.date.today().isoformat()}",
              "image_size": args.size,
              "frames_per_video": args.frames,
              "videos": args.videos,
              "records": args.records,
              "writer_options": args.writer_options or "cache.write_shard",
              "batch": args.batch,
              "timed_batches": args.batches,
              "results": results,
              "stage_ms_per_example": stages,
          }
      )
  )


if __name__ == "__main__":
  main()
