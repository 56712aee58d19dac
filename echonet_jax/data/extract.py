"""One labels row -> one cache record (in worker processes): read, mask, crop, hash, report.

:func:`process_video` turns a :class:`~echonet_jax.data.labels.VideoRow` into a record or an error
row; :func:`run_videos` runs it over many rows in ``spawn`` worker processes and yields the results
in order. A worker that dies (killed by the out-of-memory killer, a crash in a decoder) never hangs
the build: the video that killed it becomes an error row (``WorkerDiedError``) and the rest goes on.
"""

from __future__ import annotations

import collections
import concurrent.futures
from concurrent.futures.process import BrokenProcessPool
import hashlib
import math
import multiprocessing
import os
import signal
from typing import Any
from typing import Iterator
from typing import Sequence

from absl import logging
import numpy as np

from echonet_jax import errors
from echonet_jax.data import dicom
from echonet_jax.data import echonet_dynamic
from echonet_jax.data import labels as labels_lib
from echonet_jax.data import sector
from echonet_jax.data.spec import CacheSpec

# Test hook: a worker reading the video with this id kills itself with SIGKILL, as the
# out-of-memory killer would (tests/data/build_test.py). Never set outside tests.
KILL_ENV = "ECHONET_JAX_TEST_KILL_VIDEO"

WORKER_DIED = "WorkerDiedError"
Result = tuple[dict[str, Any] | None, dict[str, str] | None, list[str], str]


def pixel_key(row: labels_lib.VideoRow) -> str:
  """A hash of what the row's pixels come from (file, masks, given frame rate); no path shows."""
  text = "\0".join((row.path, row.mask_path, repr(float(row.fps))))
  return hashlib.sha256(text.encode()).hexdigest()[:16]


def file_digest(path: str) -> str:
  """A hash of a file's bytes, to find one file listed twice under different paths."""
  with open(path, "rb") as f:
    return hashlib.file_digest(f, "blake2b").hexdigest()[:32]


def load_masks(row: labels_lib.VideoRow, clip, size: int) -> tuple[np.ndarray, list[str]]:
  """Ground-truth masks of ``row`` at the clip's frames, on the clip's output grid."""
  # Reasons never quote the mask path: errors.csv must not carry file or folder names.
  if not os.path.exists(row.mask_path):
    raise errors.MaskError(row.path, "the mask file does not exist")
  try:
    with np.load(row.mask_path) as data:
      masks, names = data["masks"], [str(n) for n in data["mask_names"]]
  except Exception as e:  # pylint: disable=broad-except
    raise errors.MaskError(row.path, f"the mask file is unreadable ({type(e).__name__})") from None
  expected = (clip.num_source_frames,) + tuple(clip.sector_mask.shape)
  if masks.shape != expected:
    raise errors.MaskError(
        row.path, f"the mask file has shape {masks.shape}, the video needs " f"{expected}"
    )
  picked = masks[clip.frame_indices].astype(np.uint16)
  return sector.apply_geometry(picked, clip.geometry, size, "nearest"), names


def clip_quality(clip) -> str:
  """The sector detection's verdict on a clip ("ok" when the reader does not say)."""
  quality = getattr(getattr(clip, "geometry", None), "quality", None)
  return str(quality or getattr(clip, "quality", None) or "ok")


def process_video(row: labels_lib.VideoRow, spec: CacheSpec) -> Result:
  """One video -> (record, None, mask_names, content hash) or (None, error row, [], "").

  An error row is ``{"line", "video_id", "error_type", "error"}``: the labels CSV line, never the
  path (file names may carry a patient's name).
  """
  if os.environ.get(KILL_ENV) and os.environ[KILL_ENV] == row.video_id:
    os.kill(os.getpid(), signal.SIGKILL)
  try:
    if spec.reader == "avi":
      clip = echonet_dynamic.read_avi(
          row.path,
          spec.num_frames,
          spec.interval_ms,
          spec.image_size,
          fps=row.fps or None,
          default_fps=spec.default_fps,
      )
    else:
      clip = dicom.read_echo(
          row.path,
          spec.num_frames,
          spec.interval_ms,
          spec.image_size,
          default_fps=spec.default_fps,
          allow_non_ultrasound=spec.allow_non_ultrasound,
      )
    record = {
        "video_id": row.video_id,
        "patient_id": row.patient_id,
        "study_id": row.study_id,
        "split": row.split,
        "view": row.view,
        "view_source": row.view_source,
        "view_confidence": "" if math.isnan(row.view_confidence) else row.view_confidence,
        "frames": clip.frames,
        "frame_indices": clip.frame_indices.astype(np.int32),
        "frame_time_ms": float(clip.frame_time_ms),
        "fps_assumed": bool(clip.fps_assumed),
        "labels": dict(row.labels),
        "quality": clip_quality(clip),
        "pixel_key": pixel_key(row),
    }
    names: list[str] = []
    if row.mask_path:
      record["masks"], names = load_masks(row, clip, spec.image_size)
    return record, None, names, file_digest(row.path)
  except errors.EchoReadError as e:
    error_type, reason = type(e).__name__, e.reason
  except Exception as e:  # pylint: disable=broad-except
    # Unknown failures: keep the type only, their text might quote file contents.
    error_type, reason = "UnexpectedError", f"unexpected {type(e).__name__} while reading"
  return (
      None,
      {"line": row.line, "video_id": row.video_id, "error_type": error_type, "error": reason},
      [],
      "",
  )


def _process_star(args):
  return process_video(*args)


def _pool(workers: int) -> concurrent.futures.ProcessPoolExecutor:
  # spawn, not fork: callers such as launch.py may have started JAX's threads.
  return concurrent.futures.ProcessPoolExecutor(
      workers, mp_context=multiprocessing.get_context("spawn")
  )


def _isolated(row: labels_lib.VideoRow, spec: CacheSpec) -> Result:
  """``process_video`` alone in a fresh worker; a death there is this row's error."""
  pool = _pool(1)
  try:
    return pool.submit(_process_star, (row, spec)).result()
  except BrokenProcessPool:
    logging.warning(
        "labels line %d (video %s): the process reading it died; recorded as %s",
        row.line,
        row.video_id,
        WORKER_DIED,
    )
    return (
        None,
        {
            "line": row.line,
            "video_id": row.video_id,
            "error_type": WORKER_DIED,
            "error": "the process reading this file died (killed, e.g. by the "
            "out-of-memory killer, or crashed in a decoder)",
        },
        [],
        "",
    )
  finally:
    pool.shutdown(wait=False, cancel_futures=True)


def run_videos(
    rows: Sequence[labels_lib.VideoRow], spec: CacheSpec, workers: int
) -> Iterator[Result]:
  """:func:`process_video` over ``rows``, results in order; ``workers`` <= 1 stays in-process.

  At most ``2 * workers`` videos are in flight in ``spawn`` worker processes. When a worker dies
  (the out-of-memory killer, a crash in a decoder) the pool never hangs: the videos that were in
  flight are read again one at a time, each in a fresh process, so the one whose reading kills
  its process becomes a ``WorkerDiedError`` row of errors.csv, and the build goes on.
  """
  rows = list(rows)
  if workers <= 1 or len(rows) <= 1:
    for row in rows:
      yield process_video(row, spec)
    return
  workers = min(workers, len(rows))
  pool, pending, submitted = _pool(workers), collections.deque(), 0
  try:
    while submitted < len(rows) or pending:
      while submitted < len(rows) and len(pending) < 2 * workers:
        pending.append((rows[submitted], pool.submit(_process_star, (rows[submitted], spec))))
        submitted += 1
      try:
        result = pending[0][1].result()
      except BrokenProcessPool:
        pool.shutdown(wait=False, cancel_futures=True)
        for row, _ in pending:
          yield _isolated(row, spec)
        pool, pending = _pool(workers), collections.deque()
        continue
      pending.popleft()
      yield result
  finally:
    pool.shutdown(wait=False, cancel_futures=True)
