"""Runs a jitted ``eval_step`` over whole videos: per-frame outputs for every video of a split.

Shared by validation in the training loop, evaluate mode and saliency mode. Videos arrive as
``{"image": (V, T, S, S, C), "labels": {task: (V,)}, "video_id", "patient_id", "valid": (V,)}``
batches (see ``input_pipeline.eval_batches``); frames are flattened into one (V·T) batch, split over
the mesh, and the outputs are folded back to (V, T).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator

import jax
import numpy as np
from jax.experimental import multihost_utils

from echonet_jax.training import parallel


def _pad_batches(batches: Iterable[dict[str, Any]], num_batches: int) -> Iterator[dict[str, Any]]:
  """Yields exactly ``num_batches`` batches, padding with all-invalid copies of the first one.

  Every process must run the same number of (collective) eval steps, even when its shard is short.
  """
  template = None
  count = 0
  for batch in batches:
    template = batch
    count += 1
    yield batch
  if template is None and num_batches:
    raise ValueError("cannot pad an empty eval stream: no videos in this process's shard")
  while count < num_batches:
    pad = dict(template)
    pad["valid"] = np.zeros_like(template["valid"])
    count += 1
    yield pad


def predict_videos(eval_fn: Callable[..., dict[str, jax.Array]], state: Any,
                   batches: Iterable[dict[str, Any]], mesh: jax.sharding.Mesh,
                   num_batches: int | None = None) -> dict[str, Any]:
  """Per-frame outputs for every valid video.

  Returns ``{"video_id": [...], "patient_id": [...], "labels": {task: (N,)},
  "frame_outputs": {task: (N, T)}}`` ((N, T, classes) for categorical tasks). In a multi-host run
  every process gets the outputs of all processes' videos for the numeric fields (ids stay process-local) — pass ``num_batches`` (the same
  on every process) there.
  """
  if num_batches is not None:
    batches = _pad_batches(batches, num_batches)
  ids, patients, labels, outputs = [], [], {}, {}
  multihost = jax.process_count() > 1
  for batch in batches:
    images = np.asarray(batch["image"])
    v, t = images.shape[:2]
    frames = images.reshape(v * t, *images.shape[2:])
    out = eval_fn(state, parallel.global_batch(frames, mesh))
    valid = np.asarray(batch["valid"], bool)
    batch_labels = {k: np.asarray(x, np.float32) for k, x in batch["labels"].items()}
    if multihost:
      out_local = {k: np.asarray(x) for k, x in out.items()}
      valid = np.asarray(multihost_utils.process_allgather(valid)).reshape(-1)
      batch_labels = {k: np.asarray(multihost_utils.process_allgather(x)).reshape(-1)
                      for k, x in batch_labels.items()}
      out = out_local
    else:
      ids.extend(np.asarray(batch["video_id"])[valid].tolist())
      patients.extend(np.asarray(batch["patient_id"])[valid].tolist())
    for name, value in out.items():
      value = np.asarray(value, np.float32)
      value = value.reshape(-1, t, *value.shape[1:])  # (V, T), or (V, T, classes) categorical
      outputs.setdefault(name, []).append(value[valid])
    for name, value in batch_labels.items():
      labels.setdefault(name, []).append(value[valid])
  cat = lambda d: {k: np.concatenate(v) for k, v in d.items()}
  return {"video_id": ids, "patient_id": patients, "labels": cat(labels),
          "frame_outputs": cat(outputs)}


def predict_images(trained: Any, images: np.ndarray, batch_size: int = 256
                   ) -> dict[str, np.ndarray]:
  """Per-image outputs {task: (N,)} (probabilities or task units; (N, classes) for categorical
  tasks) of ``images`` (N, S, S, C).

  ``trained`` is a ``restore.TrainedModel``; batches are padded to a multiple of the device count.
  """
  n_dev = trained.mesh.devices.size
  parts: dict[str, list[np.ndarray]] = {}
  for start in range(0, len(images), batch_size):
    chunk = images[start:start + batch_size]
    pad = (-len(chunk)) % n_dev
    if pad:
      chunk = np.concatenate([chunk, np.zeros((pad, *chunk.shape[1:]), chunk.dtype)])
    out = trained.eval_fn(trained.state, parallel.global_batch(chunk, trained.mesh))
    for name, value in out.items():
      parts.setdefault(name, []).append(np.asarray(value, np.float32)[:len(chunk) - pad])
  return {name: np.concatenate(v) for name, v in parts.items()}


def predict_split(trained: Any, cache_dir: str, split: str) -> dict[str, Any]:
  """:func:`predict_videos` of a restored model (``restore.TrainedModel``) over a whole split.

  Single-process: this process reads every video of the split.
  """
  from echonet_jax.data import pipeline as input_pipeline  # pylint: disable=g-import-not-at-top

  c = trained.config
  batches = input_pipeline.eval_batches(
      cache_dir, split, tasks=trained.names, videos_per_batch=c.train.eval_videos_per_batch,
      image_size=c.data.image_size, channels=c.data.channels,
      views=tuple(c.data.views) or None, shard_index=0, num_shards=1,
      min_view_confidence=c.data.get("view_min_confidence", 0.0))
  return predict_videos(trained.eval_fn, trained.state, batches, trained.mesh)
