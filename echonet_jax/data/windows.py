"""Clips from a cached video: which cache frames a clip model sees, in training and evaluation.

The cache holds ``data.num_frames`` frames ``data.interval_ms`` apart (the cache's frame rate). A clip
model (R(2+1)D) reads ``data.clip_frames`` frames ``data.clip_interval_ms`` apart: every
``stride = clip_interval_ms / interval_ms``-th cache frame, so the clip spacing must be a whole
multiple of the cache's. A clip spans ``(clip_frames - 1) * stride + 1`` cache frames.

* Training draws the start uniformly from every position where the clip fits (:func:`clip_indices`).
* Evaluation, predict and saliency use the clips that cover the video (:func:`covering_starts`): starts
  ``0, span, 2·span, ...`` and a last clip flush with the video's end, so together they reach from
  its first frame to its last; the video's prediction is the mean over them, as EchoNet-Dynamic
  averaged over clips at test time.

Pure numpy; the callers decide whether a model takes clips (``evaluation.inference.clip_spec``).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from echonet_jax.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class ClipSpec:
  """``frames`` cache frames ``stride`` apart make one clip."""

  frames: int
  stride: int = 1

  @property
  def span(self) -> int:
    """Cache frames from a clip's first to its last frame, inclusive."""
    return (self.frames - 1) * self.stride + 1


def make_spec(
    clip_frames: int,
    clip_interval_ms: float,
    cache_interval_ms: float,
    cache_frames: int | None = None,
) -> ClipSpec:
  """The clip geometry of a config; one ConfigError line when the cache cannot serve it."""
  if isinstance(clip_frames, bool) or int(clip_frames) != clip_frames or clip_frames < 1:
    raise ConfigError(f"data.clip_frames={clip_frames!r}; use a positive int")
  if not (clip_interval_ms > 0 and cache_interval_ms > 0):
    raise ConfigError(
        f"data.clip_interval_ms={clip_interval_ms!r} and data.interval_ms="
        f"{cache_interval_ms!r} must be positive"
    )
  ratio = clip_interval_ms / cache_interval_ms
  stride = int(round(ratio))
  if stride < 1 or abs(ratio - stride) > 0.02 * ratio:
    raise ConfigError(
        f"data.clip_interval_ms={clip_interval_ms} is not a whole multiple of the cache's "
        f"data.interval_ms={cache_interval_ms}; set data.interval_ms to {clip_interval_ms} or a "
        "divisor of it"
    )
  spec = ClipSpec(int(clip_frames), stride)
  if cache_frames is not None and spec.span > cache_frames:
    need = spec.span * cache_interval_ms
    raise ConfigError(
        f"a clip of {clip_frames} frames {clip_interval_ms} ms apart spans {spec.span} cache frames "
        f"({need:.0f} ms) but the cache holds data.num_frames={cache_frames}; raise data.num_frames "
        f"to >= {spec.span} or shorten the clip"
    )
  return spec


def clip_indices(start: int, spec: ClipSpec) -> np.ndarray:
  """The cache frame indices of the clip that starts at cache frame ``start``."""
  return start + spec.stride * np.arange(spec.frames)


def random_start(num_frames: int, spec: ClipSpec, rng: np.random.Generator) -> int:
  """A start drawn uniformly from every position where the clip fits in ``num_frames``."""
  return int(rng.integers(max(num_frames - spec.span, 0) + 1))


def covering_starts(num_frames: int, spec: ClipSpec) -> np.ndarray:
  """Starts of the clips that together reach every frame of a ``num_frames`` video.

  ``0, span, 2·span, ...`` while a clip fits, then one flush with the end (no duplicate).
  """
  last = max(num_frames - spec.span, 0)
  count = max(1, math.ceil(num_frames / spec.span))
  starts = np.minimum(np.arange(count) * spec.span, last)
  return np.unique(np.append(starts, last)).astype(np.int64)


def windows(frames: np.ndarray, spec: ClipSpec) -> np.ndarray:
  """The covering clips of one video: (N, ...) frames → (K, clip_frames, ...).

  A video shorter than a clip is looped (as ``dicom.read_echo`` loops a short cine).
  """
  n = len(frames)
  starts = covering_starts(n, spec)
  index = (starts[:, None] + spec.stride * np.arange(spec.frames)[None, :]) % n
  return np.asarray(frames)[index]
