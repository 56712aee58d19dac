"""Runs a model over whole videos: per-frame outputs for every video of a split.

Shared by validation in the training loop, evaluate, predict and saliency modes. The model enters as a
``predict_fn(images) -> {task: outputs}`` (as big_vision's evaluators take a ``predict_fn``), built
from a jitted ``eval_step`` by :func:`mesh_predict_fn` or :func:`batched_predict_fn`. Videos arrive as
``{"image": (V, T, S, S, C), "labels": {task: (V,)}, "video_id", "patient_id", "valid": (V,)}``
batches (see ``eval_stream.eval_batches``); frames are flattened into one (V·T) batch, split over
the mesh, and the outputs are folded back to (V, T).

A clip model (``clip_spec(config)`` is not None) sees each video as its K covering clips
(``data.windows``): the batch is (V·K, T_clip, S, S, C) and the outputs fold back to (V, K). Those
per-clip outputs stand where a frame model's per-frame outputs do (``frame_outputs``), so a video's
prediction is their mean everywhere downstream.
"""

from __future__ import annotations

from typing import Any
from typing import Callable
from typing import Iterable
from typing import Iterator
from typing import Sequence

import jax
from jax.experimental import multihost_utils
import ml_collections
import numpy as np

from echonet_jax import errors
from echonet_jax import models
from echonet_jax import parallel
from echonet_jax.data import eval_stream
from echonet_jax.data import extract
from echonet_jax.data import windows

# ``predict_fn(images (N, S, S, C) or clips (N, T, S, S, C)) -> {task: (N,)}``: probabilities
# (binary), task units (regression) or class probabilities (N, classes) (categorical).
PredictFn = Callable[[np.ndarray], dict[str, np.ndarray]]
# The sector quality flag of a read clip ("ok" or a reason), as the cache records it.
clip_quality = extract.clip_quality


def clip_spec(config: Any) -> windows.ClipSpec | None:
  """The clip geometry when ``config.model.name`` is a clip model, else None (a frame model)."""
  if not models.is_clip_model(config.model.get("name", models.DEFAULT_MODEL)):
    return None
  d = config.data
  return windows.make_spec(d.clip_frames, d.clip_interval_ms, d.interval_ms, d.num_frames)


def model_inputs(images: np.ndarray, clip: windows.ClipSpec | None) -> np.ndarray:
  """One video's network inputs: its frames (N, S, S, C), or its covering clips (K, T, S, S, C)."""
  return images if clip is None else windows.windows(images, clip)


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


def mesh_predict_fn(
    eval_fn: Callable[..., dict[str, jax.Array]], state: Any, mesh: jax.sharding.Mesh
) -> PredictFn:
  """``predict_fn(images)`` running ``eval_fn(state, batch)`` on one batch split over ``mesh``.

  ``images`` are this process's rows (a multiple of its device count); the outputs are those of the
  global batch (every process's rows), as numpy float32. Collective in a multi-host run.
  """

  def predict(images: np.ndarray) -> dict[str, np.ndarray]:
    out = eval_fn(state, parallel.global_batch(np.asarray(images), mesh))
    return {name: np.asarray(value, np.float32) for name, value in out.items()}

  return predict


def batched_predict_fn(
    eval_fn: Callable[..., dict[str, jax.Array]],
    state: Any,
    mesh: jax.sharding.Mesh,
    batch_size: int = 256,
) -> PredictFn:
  """``predict_fn(images)`` for any number of images (single process): ``batch_size`` at a time,
  each chunk padded to a multiple of the device count and the padding dropped from the outputs."""
  one = mesh_predict_fn(eval_fn, state, mesh)
  n_dev = mesh.devices.size

  def predict(images: np.ndarray) -> dict[str, np.ndarray]:
    images = np.asarray(images)
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(images), batch_size):
      chunk = images[start : start + batch_size]
      pad = (-len(chunk)) % n_dev
      if pad:
        chunk = np.concatenate([chunk, np.zeros((pad, *chunk.shape[1:]), chunk.dtype)])
      for name, value in one(chunk).items():
        parts.setdefault(name, []).append(value[: len(chunk) - pad])
    return {name: np.concatenate(v) for name, v in parts.items()}

  return predict


def predict_videos(
    predict_fn: PredictFn,
    batches: Iterable[dict[str, Any]],
    num_batches: int | None = None,
    clip: windows.ClipSpec | None = None,
) -> dict[str, Any]:
  """Per-frame outputs for every valid video (per-clip outputs, (N, K), with ``clip``);
  ``predict_fn`` as :func:`mesh_predict_fn` makes.

  Returns ``{"video_id": [...], "patient_id": [...], "quality": [...], "labels": {task: (N,)},
  "frame_outputs": {task: (N, T)}}`` ((N, T, classes) for categorical tasks; ``quality``: the cache's sector quality flag per video, "" when
  the cache does not record it). In a multi-host run every process gets the outputs of all
  processes' videos for the numeric fields (ids stay process-local) — pass ``num_batches`` (the same
  on every process) there.
  """
  if num_batches is not None:
    batches = _pad_batches(batches, num_batches)
  ids, patients, quality, labels, outputs = [], [], [], {}, {}
  multihost = jax.process_count() > 1
  for batch in batches:
    images = np.asarray(batch["image"])
    if clip is not None:
      images = np.stack([windows.windows(video, clip) for video in images])
    v, t = images.shape[:2]
    out = predict_fn(images.reshape(v * t, *images.shape[2:]))
    valid = np.asarray(batch["valid"], bool)
    batch_labels = {k: np.asarray(x, np.float32) for k, x in batch["labels"].items()}
    if multihost:
      valid = np.asarray(multihost_utils.process_allgather(valid)).reshape(-1)
      batch_labels = {
          k: np.asarray(multihost_utils.process_allgather(x)).reshape(-1)
          for k, x in batch_labels.items()
      }
    else:
      ids.extend(np.asarray(batch["video_id"])[valid].tolist())
      patients.extend(np.asarray(batch["patient_id"])[valid].tolist())
      flags = batch.get("quality")
      flags = np.full(v, "", object) if flags is None else np.asarray(flags, object)
      quality.extend(str(q) for q in flags[valid])
    for name, value in out.items():
      value = np.asarray(value, np.float32)
      value = value.reshape(-1, t, *value.shape[1:])  # (V, T), or (V, T, classes) categorical
      outputs.setdefault(name, []).append(value[valid])
    for name, value in batch_labels.items():
      labels.setdefault(name, []).append(value[valid])
  cat = lambda d: {k: np.concatenate(v) for k, v in d.items()}
  return {
      "video_id": ids,
      "patient_id": patients,
      "quality": quality,
      "labels": cat(labels),
      "frame_outputs": cat(outputs),
  }


def predict_split(
    predict_fn: PredictFn,
    config: ml_collections.ConfigDict,
    names: Sequence[str],
    cache_dir: str,
    split: str,
) -> dict[str, Any]:
  """:func:`predict_videos` over a whole cache split, read as ``config.data`` says.

  Single-process: this process reads every video of the split.
  """
  c = config
  batches = eval_stream.eval_batches(
      cache_dir,
      split,
      tasks=tuple(names),
      videos_per_batch=c.train.eval_videos_per_batch,
      image_size=c.data.image_size,
      channels=c.data.channels,
      views=tuple(c.data.views) or None,
      shard_index=0,
      num_shards=1,
      min_view_confidence=c.data.get("view_min_confidence", 0.0),
  )
  return predict_videos(predict_fn, batches, clip=clip_spec(c))


def input_error(error: BaseException, stage: str) -> dict[str, str]:
  """An input's error row fields: its type and a reason that quotes no file content.

  Read errors carry their own vetted reason. Anything else (a ValueError deep in a decoder, a
  MemoryError) gets only its type and the stage, since its message might quote a tag value.
  """
  if isinstance(error, errors.EchoReadError):
    reason = error.reason
  elif isinstance(error, MemoryError):
    reason = f"out of memory while {stage}"
  else:
    reason = f"unexpected {type(error).__name__} while {stage}"
  return {"error_type": type(error).__name__, "error": reason}
