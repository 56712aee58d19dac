"""Grain input streams over the video cache: a shuffled, augmented frame stream for training and a
whole-video stream for evaluation.

Train stream (:func:`train_loader`), one example = one frame with its video's labels:

  ArrayRecord videos (filtered up front by view and label availability, sliced to this process)
  → shuffle with the seed, repeat forever (reshuffled each epoch)
  → RandomMap :class:`SampleFrame`: one of the video's frames, drawn uniformly (video first, then
    frame, so videos with many frames are not oversampled)
  → RandomMap :class:`AugmentFrame`: rotation ±``rotation_deg`` about the centre on the uint8
    frame (background stays black), normalisation, brightness shift ±``brightness``
    (or Map :class:`NormalizeFrame` when both are 0)
  → batch → worker processes (``mp_prefetch``) → iterator.

Every random choice comes from the per-element rng that Grain derives from the seed and the
element's index, and batching happens before the work is split among worker processes, so the
batches are the same for any number of workers, and the iterator state resumes exactly
(``get_state``/``set_state``, or orbax with ``grain.checkpoint.CheckpointSave``/``Restore``
under ``grain.checkpoint.CheckpointHandler``). Restore with the worker count that saved the state.

Eval stream (:func:`eval_batches`): every video of a split once, all its frames, no augmentation.

Normalisation: ``(uint8 - PIXEL_MEAN) / PIXEL_STD`` for all streams (train, eval, predict,
saliency). Black (the masked background) maps to :data:`BLACK` = ``normalize(0)``.
"""

from __future__ import annotations

import math
from typing import Any
from typing import Iterator
from typing import Sequence

from absl import flags
from absl import logging
import cv2
import grain
import numpy as np

from echonet_jax import tasks as tasks_lib
from echonet_jax.data import augment
from echonet_jax.data import cache
from echonet_jax.data import labels as labels_lib
from echonet_jax.data import spec as spec_lib
from echonet_jax.data import views as views_lib
from echonet_jax.data import windows
from echonet_jax.errors import ConfigError

# Grey-level statistics of echo frames: luma of pydicom-data's color3d_jpeg_baseline.dcm (a
# 120-frame 480×640 ultrasound clip, whole frames with the black surround): mean 10.9, std 23.0.
# Re-measure a cache with :func:`pixel_stats`; changing these invalidates trained checkpoints.
PIXEL_MEAN = 11.0
PIXEL_STD = 23.0
BLACK = -PIXEL_MEAN / PIXEL_STD


def normalize(frames: np.ndarray) -> np.ndarray:
  """uint8 frames (any shape) → float32 ``(x - PIXEL_MEAN) / PIXEL_STD``."""
  return (np.asarray(frames, np.float32) - np.float32(PIXEL_MEAN)) * np.float32(1.0 / PIXEL_STD)


def pixel_stats(cache_dir: str, split: str = "train", max_videos: int = 200) -> dict[str, float]:
  """Mean and std of the uint8 frames of up to ``max_videos`` videos of a cache split."""
  total = total_sq = count = 0.0
  for i, record in enumerate(records(cache_dir, split)):
    if i >= max_videos:
      break
    x = record["frames"].astype(np.float64)
    total += x.sum()
    total_sq += np.square(x).sum()
    count += x.size
  if not count:
    raise ValueError(f"{cache_dir}: split {split!r} has no frames")
  mean = total / count
  return {"mean": mean, "std": math.sqrt(max(total_sq / count - mean * mean, 0.0)), "n": count}


# --------------------------------------------------------------------------------------------------
# Video selection and the data source.


def _resolve_shard(shard_index: int | None, num_shards: int | None) -> tuple[int, int]:
  if shard_index is None or num_shards is None:
    import jax  # pylint: disable=g-import-not-at-top  # not at import: Grain workers import this module
    shard_index = jax.process_index() if shard_index is None else shard_index
    num_shards = jax.process_count() if num_shards is None else num_shards
  if not 0 <= shard_index < num_shards:
    raise ValueError(f"shard_index {shard_index} is not in [0, {num_shards})")
  return shard_index, num_shards


def select_videos(cache_dir: str, split: str, *, tasks: Sequence[str] | None = None,
                  views: Sequence[str] | None = None, shard_index: int = 0,
                  num_shards: int = 1, min_view_confidence: float = 0.0) -> list[dict[str, Any]]:
  """Index rows (see ``cache.read_index``) of the videos a stream reads, without decoding frames.

  Keeps videos that pass :func:`echonet_jax.data.labels.view_matches` (the same views rule the cache
  build applies: case-insensitive, all views when ``views`` is empty, a blank view kept with a
  warning) and that have at least one of ``tasks``' labels (all when None), then takes every
  ``num_shards``-th from ``shard_index``. A cache built for the config's views was filtered already
  by the build; this stage filters caches built with more views (e.g. by the CLI without --views).
  A view a view model predicted also needs ``min_view_confidence``; the videos left out for an
  unsure prediction are counted and listed in the log (see ``data/views.py``).
  """
  if tasks is not None:
    for name in tasks:
      tasks_lib.get_task(name)
  index = cache.read_index(cache_dir, split)
  wanted_views = spec_lib.normalize_views(views)
  counts = labels_lib.count_views((row["view"] for row in index), wanted_views)
  if counts["unknown"]:
    logging.warning("%s: %d %s videos have no view; kept (views rule: unknown is kept)",
                    cache_dir, counts["unknown"], split)
  rows = [row for row in index
          if views_lib.keep_video(row, wanted_views, min_view_confidence)
          and (tasks is None or any(not math.isnan(row["labels"].get(t, math.nan)) for t in tasks))]
  unsure = views_lib.low_confidence(index, wanted_views, min_view_confidence) if wanted_views else []
  if unsure and shard_index == 0:
    logging.warning("%s: %d %s video(s) of views %s left out: predicted view below confidence %g: "
                    "%s", cache_dir, len(unsure), split, list(wanted_views), min_view_confidence,
                    ", ".join(r["video_id"] for r in unsure))
  if not rows:
    raise ConfigError(
        f"{cache_dir}: no {split!r} video has a label for any of {list(tasks or [])}"
        + (f" in views {list(wanted_views)}" if wanted_views else "")
        + f" ({len(index)} videos in the split)")
  return rows[shard_index::num_shards]


class VideoSource:
  """The encoded records of the selected videos of one split, by position in the selection.

  Picklable: the ArrayRecord reader opens lazily in each process.
  """

  def __init__(self, paths: Sequence[str], record_ids: Sequence[int]):
    self._paths = list(paths)
    self._record_ids = np.asarray(record_ids, np.int64)
    self._source = None

  def __len__(self) -> int:
    return len(self._record_ids)

  def __getitem__(self, position) -> bytes:
    if self._source is None:
      self._source = cache.open_records(self._paths)  # a damaged shard: CacheError naming it
    return cache.read_record(self._source, self._paths, int(self._record_ids[position]))

  def __getstate__(self):
    return {"_paths": self._paths, "_record_ids": self._record_ids, "_source": None}

  def __repr__(self) -> str:
    return f"VideoSource({self._paths[0]!r}.., {len(self._paths)} shards, {len(self)} videos)"


# --------------------------------------------------------------------------------------------------
# Per-element transforms (module-level classes: worker processes are spawned and unpickle them).


def _labels(record: dict[str, Any], tasks: Sequence[str]) -> dict[str, np.float32]:
  values = record.get("labels", {})
  return {t: np.float32(values.get(t, math.nan)) for t in tasks}


def to_images(frames: np.ndarray, channels: int = 1) -> np.ndarray:
  """uint8 frames (..., S, S) → normalised float32 network input (..., S, S, channels)."""
  return _to_image(normalize(frames), channels)


def _to_image(frame: np.ndarray, channels: int) -> np.ndarray:
  """(S, S) float32 → (S, S, channels), repeating the grey channel."""
  image = frame[..., None]
  return np.repeat(image, channels, axis=-1) if channels != 1 else image


class SampleFrame(grain.transforms.RandomMap):
  """Encoded video → ``{"frame": uint8 (S, S), "labels": {task: float32}}`` for a random frame."""

  def __init__(self, tasks: Sequence[str], image_size: int | None = None):
    self.tasks = tuple(tasks)
    self.image_size = image_size

  def random_map(self, element: bytes, rng: np.random.Generator) -> dict[str, Any]:
    index = int(rng.integers(cache.num_frames(element)))
    record = cache.decode_record(element, frames=[index])  # decompresses that frame only
    frame = record["frames"][0]
    if self.image_size is not None:
      frame = augment.resize(frame, self.image_size)
    return {"frame": np.array(frame), "labels": _labels(record, self.tasks)}


class SampleClip(grain.transforms.RandomMap):
  """Encoded video → ``{"frame": uint8 (T, S, S), "labels": ...}``: a clip at a random start."""

  def __init__(self, tasks: Sequence[str], spec: windows.ClipSpec, image_size: int | None = None):
    self.tasks = tuple(tasks)
    self.spec = spec
    self.image_size = image_size

  def random_map(self, element: bytes, rng: np.random.Generator) -> dict[str, Any]:
    n = cache.num_frames(element)
    index = windows.clip_indices(windows.random_start(n, self.spec, rng), self.spec) % n
    record = cache.decode_record(element, frames=index.tolist())
    frames = record["frames"]
    if self.image_size is not None:
      frames = np.stack([augment.resize(f, self.image_size) for f in frames])
    return {"frame": np.array(frames), "labels": _labels(record, self.tasks)}


class AugmentFrame(grain.transforms.RandomMap):
  """Rotates the uint8 frame, normalises it and shifts its brightness: the paper's augmentation.

  A clip (T, S, S) gets one draw, applied to all its frames.
  """

  def __init__(self, rotation_deg: float, brightness: float, channels: int = 1):
    self.rotation_deg = float(rotation_deg)
    self.brightness = float(brightness)
    self.channels = channels

  def apply(self, frame: np.ndarray, angle_deg: float, shift: float) -> np.ndarray:
    """The deterministic part: uint8 (S, S) or (T, S, S) → float32 (..., S, S, channels)."""
    if angle_deg != 0.0:
      if frame.ndim == 3:
        frame = np.stack([augment.rotate(f, angle_deg) for f in frame])
      else:
        frame = augment.rotate(frame, angle_deg)
    image = normalize(frame)
    image += np.float32(shift)
    return _to_image(image, self.channels)

  def random_map(self, element: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    angle, shift = augment.draw_params(rng, self.rotation_deg, self.brightness)
    return {"image": self.apply(element["frame"], angle, shift), "labels": element["labels"]}


class NormalizeFrame(grain.transforms.Map):
  """uint8 (S, S) frame → normalised float32 (S, S, channels) image, no augmentation."""

  def __init__(self, channels: int = 1):
    self.channels = channels

  def map(self, element: dict[str, Any]) -> dict[str, Any]:
    return {"image": _to_image(normalize(element["frame"]), self.channels),
            "labels": element["labels"]}


# --------------------------------------------------------------------------------------------------
# Grain worker processes and absl flags.


def _ensure_absl_flags_parsed() -> None:
  """Marks absl flags parsed (keeping their defaults) when nobody parsed them, e.g. under pytest.

  Grain 0.2.18 reads its absl flags when it starts worker processes and raises
  UnparsedFlagAccessError on unparsed flags (google/grain#1355). Under ``absl.app`` (launch.py) the
  flags are already parsed and this does nothing.
  """
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()


def _init_worker(*unused_args) -> None:
  """Runs first in each spawned Grain worker (a fresh interpreter: its flags are unparsed too)."""
  _ensure_absl_flags_parsed()
  cv2.setNumThreads(1)  # one worker per core; OpenCV's own threads would oversubscribe


# --------------------------------------------------------------------------------------------------
# Streams.


def _check_channels(channels: int) -> None:
  if channels not in (1, 3):
    raise ValueError(f"channels must be 1 or 3, got {channels}")


def train_dataset(cache_dir: str, *, tasks: Sequence[str], batch_size: int, seed: int,
                  rotation_deg: float = 20.0, brightness: float = 0.1,
                  image_size: int | None = None, channels: int = 1, split: str = "train",
                  views: Sequence[str] | None = None, shard_index: int = 0,
                  num_shards: int = 1, min_view_confidence: float = 0.0,
                  clip: windows.ClipSpec | None = None) -> grain.MapDataset:
  """This shard's infinite MapDataset of train batches; batch ``i`` is a pure function of ``i``.

  With ``clip``, an example is a clip (T, S, S, C) at a random start instead of one frame.
  """
  _check_channels(channels)
  if not tasks:
    raise ValueError("train_dataset needs at least one task")
  rows = select_videos(cache_dir, split, tasks=tasks, views=views, shard_index=shard_index,
                       num_shards=num_shards, min_view_confidence=min_view_confidence)
  if not rows:
    raise ValueError(
        f"{cache_dir}: shard {shard_index} of {num_shards} of split {split!r} is empty")
  if image_size is not None and image_size == cache.read_meta(cache_dir).get("image_size"):
    image_size = None
  source = VideoSource(cache.shard_paths(cache_dir, split), [r["record"] for r in rows])
  # Each process gets its own seed, so shards do not draw the same augmentations.
  shard_seed = int(np.random.SeedSequence([seed, shard_index]).generate_state(1)[0])
  ds = grain.MapDataset.source(source).seed(shard_seed).shuffle().repeat()
  ds = ds.random_map(SampleFrame(tasks, image_size) if clip is None else
                     SampleClip(tasks, clip, image_size))
  if rotation_deg or brightness:
    ds = ds.random_map(AugmentFrame(rotation_deg, brightness, channels))
  else:
    ds = ds.map(NormalizeFrame(channels))
  return ds.batch(batch_size, drop_remainder=True)


def train_loader(cache_dir: str, *, tasks: Sequence[str], global_batch_size: int, seed: int,
                 num_workers: int = 0, rotation_deg: float = 20.0, brightness: float = 0.1,
                 image_size: int | None = None, channels: int = 1, split: str = "train",
                 views: Sequence[str] | None = None, shard_index: int | None = None,
                 num_shards: int | None = None, prefetch: int = 2,
                 num_threads: int = 1, min_view_confidence: float = 0.0,
                 clip: windows.ClipSpec | None = None) -> grain.IterDataset:
  """The train stream of this JAX process: an infinite IterDataset of batches.

  Batches are ``{"image": float32 (b, S, S, channels), "labels": {task: float32 (b,)}}`` (images
  (b, T, S, S, channels) with ``clip``) with
  ``b = global_batch_size // num_shards`` (shard = this JAX process by default), labels in their
  original units and NaN where missing. ``iter()`` gives a checkpointable ``grain.DatasetIterator``.
  ``num_workers`` spawned processes each build whole batches; ``num_threads`` threads per process
  build them concurrently and ``prefetch`` batches are buffered per process.
  """
  shard_index, num_shards = _resolve_shard(shard_index, num_shards)
  if global_batch_size % num_shards:
    raise ValueError(f"global batch size {global_batch_size} does not split over {num_shards} "
                     "processes")
  ds = train_dataset(cache_dir, tasks=tasks, batch_size=global_batch_size // num_shards, seed=seed,
                     rotation_deg=rotation_deg, brightness=brightness, image_size=image_size,
                     channels=channels, split=split, views=views, shard_index=shard_index,
                     num_shards=num_shards, min_view_confidence=min_view_confidence, clip=clip)
  threads = max(1, num_threads)
  it_ds = ds.to_iter_dataset(grain.ReadOptions(num_threads=threads,
                                               prefetch_buffer_size=max(prefetch, threads)))
  if num_workers > 0:
    _ensure_absl_flags_parsed()
    it_ds = it_ds.mp_prefetch(
        grain.MultiprocessingOptions(num_workers=num_workers,
                                     per_worker_buffer_size=max(1, prefetch)),
        worker_init_fn=_init_worker)
  return it_ds


def records(cache_dir: str, split: str, *, tasks: Sequence[str] | None = None,
            views: Sequence[str] | None = None, shard_index: int = 0,
            num_shards: int = 1, min_view_confidence: float = 0.0) -> Iterator[dict[str, Any]]:
  """Decoded records (``cache.decode_record``) of the selected videos, in cache order."""
  rows = select_videos(cache_dir, split, tasks=tasks, views=views, shard_index=shard_index,
                       num_shards=num_shards, min_view_confidence=min_view_confidence)
  source = VideoSource(cache.shard_paths(cache_dir, split), [r["record"] for r in rows])
  for position in range(len(source)):
    yield cache.decode_record(source[position])


def eval_batches(cache_dir: str, split: str, *, tasks: Sequence[str] | None = None,
                 videos_per_batch: int = 8, image_size: int | None = None, channels: int = 1,
                 views: Sequence[str] | None = None, shard_index: int | None = None,
                 num_shards: int | None = None, min_view_confidence: float = 0.0
                 ) -> Iterator[dict[str, Any]]:
  """Every selected video of this process's shard once, all its frames, normalised, no augmentation.

  Yields ``{"image": float32 (V, T, S, S, C), "labels": {task: float32 (V,)}, "video_id": str (V,),
  "patient_id": str (V,), "quality": str (V,), "valid": bool (V,)}`` (``quality``: the record's sector
  quality flag, "" when the cache does not record it); the last batch is padded to V rows with
  ``valid=False`` (zero images, NaN labels, empty ids). ``tasks`` None keeps every video and labels
  every task in ``tasks.TASK_NAMES``.
  """
  _check_channels(channels)
  shard_index, num_shards = _resolve_shard(shard_index, num_shards)
  meta = cache.read_meta(cache_dir)
  num_frames = int(meta["num_frames"])
  size = int(image_size or meta["image_size"])
  names = tuple(tasks) if tasks is not None else tasks_lib.TASK_NAMES
  v = videos_per_batch

  def empty():
    return {"image": np.zeros((v, num_frames, size, size, channels), np.float32),
            "labels": {t: np.full((v,), np.nan, np.float32) for t in names},
            "video_id": np.full((v,), "", object), "patient_id": np.full((v,), "", object),
            "quality": np.full((v,), "", object), "valid": np.zeros((v,), bool)}

  batch, row = empty(), 0
  for record in records(cache_dir, split, tasks=tasks, views=views, shard_index=shard_index,
                        num_shards=num_shards, min_view_confidence=min_view_confidence):
    frames = record["frames"]
    if len(frames) != num_frames:
      raise ValueError(f"{cache_dir}: video {record.get('video_id')!r} of split {split!r} has "
                       f"{len(frames)} frames, meta.json says {num_frames}")
    frames = np.stack([augment.resize(f, size) for f in frames])
    batch["image"][row] = _to_image(normalize(frames), channels)
    for name, value in _labels(record, names).items():
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
