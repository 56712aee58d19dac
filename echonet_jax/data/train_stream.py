"""The Grain train stream over the video cache: shuffled, augmented frames (or clips).

:func:`train_loader`, one example = one frame with its video's labels:

  ArrayRecord videos (filtered up front by view and label availability, sliced to this process:
  :func:`echonet_jax.data.selection.select_videos`)
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

Normalisation is :mod:`echonet_jax.data.normalization`'s, the same for every stream.
"""

from __future__ import annotations

from typing import Any
from typing import Sequence

from absl import flags
import cv2
import grain
import numpy as np

from echonet_jax.data import augment
from echonet_jax.data import cache
from echonet_jax.data import normalization
from echonet_jax.data import selection
from echonet_jax.data import windows

# --------------------------------------------------------------------------------------------------
# Per-element transforms (module-level classes: worker processes are spawned and unpickle them).


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
    return {"frame": np.array(frame), "labels": selection.record_labels(record, self.tasks)}


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
    return {"frame": np.array(frames), "labels": selection.record_labels(record, self.tasks)}


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
    image = normalization.normalize(frame)
    image += np.float32(shift)
    return normalization.to_image(image, self.channels)

  def random_map(self, element: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    angle, shift = augment.draw_params(rng, self.rotation_deg, self.brightness)
    return {"image": self.apply(element["frame"], angle, shift), "labels": element["labels"]}


class NormalizeFrame(grain.transforms.Map):
  """uint8 (S, S) frame → normalised float32 (S, S, channels) image, no augmentation."""

  def __init__(self, channels: int = 1):
    self.channels = channels

  def map(self, element: dict[str, Any]) -> dict[str, Any]:
    image = normalization.normalize(element["frame"])
    return {"image": normalization.to_image(image, self.channels), "labels": element["labels"]}


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
# The stream.


def train_loader(
    cache_dir: str,
    *,
    tasks: Sequence[str],
    global_batch_size: int,
    seed: int,
    num_workers: int = 0,
    rotation_deg: float = 20.0,
    brightness: float = 0.1,
    image_size: int | None = None,
    channels: int = 1,
    split: str = "train",
    views: Sequence[str] | None = None,
    shard_index: int | None = None,
    num_shards: int | None = None,
    prefetch: int = 2,
    num_threads: int = 1,
    min_view_confidence: float = 0.0,
    clip: windows.ClipSpec | None = None,
) -> grain.IterDataset:
  """The train stream of this JAX process: an infinite IterDataset of batches.

  Batches are ``{"image": float32 (b, S, S, channels), "labels": {task: float32 (b,)}}`` (with
  ``clip``, an example is a clip at a random start instead of one frame: images
  (b, T, S, S, channels)) with
  ``b = global_batch_size // num_shards`` (shard = this JAX process by default), labels in their
  original units and NaN where missing. ``iter()`` gives a checkpointable ``grain.DatasetIterator``.
  ``num_workers`` spawned processes each build whole batches; ``num_threads`` threads per process
  build them concurrently and ``prefetch`` batches are buffered per process.
  """
  videos = selection.Selection(cache_dir, split, tasks, views, min_view_confidence).for_process(
      shard_index, num_shards
  )
  shard_index, num_shards = videos.shard_index, videos.num_shards
  if global_batch_size % num_shards:
    raise ValueError(
        f"global batch size {global_batch_size} does not split over {num_shards} " "processes"
    )
  normalization.check_channels(channels)
  if not tasks:
    raise ValueError("train_loader needs at least one task")
  rows = videos.rows()
  if not rows:
    raise ValueError(
        f"{cache_dir}: shard {shard_index} of {num_shards} of split {split!r} is empty"
    )
  if image_size is not None and image_size == cache.read_meta(cache_dir).get("image_size"):
    image_size = None
  source = selection.VideoSource.from_rows(cache_dir, split, rows)
  # Each process gets its own seed, so shards do not draw the same augmentations.
  shard_seed = int(np.random.SeedSequence([seed, shard_index]).generate_state(1)[0])
  ds = grain.MapDataset.source(source).seed(shard_seed).shuffle().repeat()
  ds = ds.random_map(
      SampleFrame(tasks, image_size) if clip is None else SampleClip(tasks, clip, image_size)
  )
  if rotation_deg or brightness:
    ds = ds.random_map(AugmentFrame(rotation_deg, brightness, channels))
  else:
    ds = ds.map(NormalizeFrame(channels))
  # An infinite MapDataset of this shard's batches: batch ``i`` is a pure function of ``i``.
  ds = ds.batch(global_batch_size // num_shards, drop_remainder=True)
  threads = max(1, num_threads)
  it_ds = ds.to_iter_dataset(
      grain.ReadOptions(num_threads=threads, prefetch_buffer_size=max(prefetch, threads))
  )
  if num_workers > 0:
    _ensure_absl_flags_parsed()
    it_ds = it_ds.mp_prefetch(
        grain.MultiprocessingOptions(
            num_workers=num_workers, per_worker_buffer_size=max(1, prefetch)
        ),
        worker_init_fn=_init_worker,
    )
  return it_ds
