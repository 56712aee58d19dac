"""The eval stream over the video cache: every video of a split once, all its frames, no
augmentation, in padded batches of whole videos (:func:`eval_batches`).

Videos are selected as for training (:class:`echonet_jax.data.selection.Selection`) and
normalised as by every stream (:mod:`echonet_jax.data.normalization`).
"""

from __future__ import annotations

from typing import Any
from typing import Iterator
from typing import Sequence

import numpy as np

from echonet_jax import tasks as tasks_lib
from echonet_jax.data import augment
from echonet_jax.data import cache
from echonet_jax.data import normalization
from echonet_jax.data import selection


def eval_batches(
    cache_dir: str,
    split: str,
    *,
    tasks: Sequence[str] | None = None,
    videos_per_batch: int = 8,
    image_size: int | None = None,
    channels: int = 1,
    views: Sequence[str] | None = None,
    shard_index: int | None = None,
    num_shards: int | None = None,
    min_view_confidence: float = 0.0,
) -> Iterator[dict[str, Any]]:
  """Every selected video of this process's shard once, all its frames, normalised, no augmentation.

  Yields ``{"image": float32 (V, T, S, S, C), "labels": {task: float32 (V,)}, "video_id": str (V,),
  "patient_id": str (V,), "quality": str (V,), "valid": bool (V,)}`` (``quality``: the record's sector
  quality flag, "" when the cache does not record it); the last batch is padded to V rows with
  ``valid=False`` (zero images, NaN labels, empty ids). ``tasks`` None keeps every video and labels
  every task in ``tasks.TASK_NAMES``.
  """
  normalization.check_channels(channels)
  videos = selection.Selection(cache_dir, split, tasks, views, min_view_confidence).for_process(
      shard_index, num_shards
  )
  meta = cache.read_meta(cache_dir)
  num_frames = int(meta["num_frames"])
  size = int(image_size or meta["image_size"])
  names = tuple(tasks) if tasks is not None else tasks_lib.TASK_NAMES
  v = videos_per_batch

  def empty():
    return {
        "image": np.zeros((v, num_frames, size, size, channels), np.float32),
        "labels": {t: np.full((v,), np.nan, np.float32) for t in names},
        "video_id": np.full((v,), "", object),
        "patient_id": np.full((v,), "", object),
        "quality": np.full((v,), "", object),
        "valid": np.zeros((v,), bool),
    }

  batch, row = empty(), 0
  for record in videos.records():
    frames = record["frames"]
    if len(frames) != num_frames:
      raise ValueError(
          f"{cache_dir}: video {record.get('video_id')!r} of split {split!r} has "
          f"{len(frames)} frames, meta.json says {num_frames}"
      )
    frames = np.stack([augment.resize(f, size) for f in frames])
    batch["image"][row] = normalization.to_image(normalization.normalize(frames), channels)
    for name, value in selection.record_labels(record, names).items():
      batch["labels"][name][row] = value
    batch["video_id"][row] = record.get("video_id", "")
    batch["patient_id"][row] = record.get("patient_id", "")
    batch["quality"][row] = record.get("quality", "")
    batch["valid"][row] = True
    row += 1
    if row == v:
      yield _as_str_ids(batch)
      batch, row = empty(), 0
  if row:
    yield _as_str_ids(batch)


def _as_str_ids(batch: dict[str, Any]) -> dict[str, Any]:
  batch["video_id"] = batch["video_id"].astype(str)
  batch["patient_id"] = batch["patient_id"].astype(str)
  return batch
