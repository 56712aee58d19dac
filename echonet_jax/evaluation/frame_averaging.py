"""Frame averaging: video predictions from per-frame outputs; the metric against frames averaged.

``frame_outputs`` has shape (videos, frames): probabilities for binary tasks, values in the task's
unit for regression. Frames a video lacks may be NaN. As in the paper, the video prediction is the
mean over its frames; :func:`frames_curve` gives the metric when only k frames are averaged (the
``frames.png`` of an eval folder).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from echonet_jax.evaluation import bootstrap
from echonet_jax.evaluation import metrics

FRAME_ORDERS = ("first", "random")


def frame_matrix(frame_outputs, *, classes: bool = False) -> np.ndarray:
  """``frame_outputs`` as a float64 (videos, frames) matrix, or with ``classes`` a (videos, frames,
  classes) array of per-frame class probabilities; one output per video is one frame."""
  x = np.asarray(frame_outputs, dtype=np.float64)
  ndim = 3 if classes else 2
  if x.ndim == ndim - 1:
    x = x[:, None]
  if x.ndim != ndim:
    if classes:
      raise ValueError(f"frame probabilities must be (videos, frames, classes); got {x.shape}")
    raise ValueError(f"frame_outputs must have shape (videos, frames); got {x.shape}")
  return x


def video_predictions(frame_outputs, num_frames: int | None = None) -> np.ndarray:
  """Mean over the first ``num_frames`` frames (all when None) of each video, ignoring NaN frames.

  A video with no frame in range gets NaN.
  """
  x = frame_matrix(frame_outputs)
  if num_frames is not None:
    if num_frames < 1:
      raise ValueError(f"num_frames must be at least 1; got {num_frames}")
    x = x[:, :num_frames]
  return mean_of_present_frames(x, ~np.isnan(x))


def mean_of_present_frames(x: np.ndarray, present: np.ndarray) -> np.ndarray:
  """The mean over axis 1 (frames) of ``x`` where ``present`` (broadcast to ``x``); NaN where a
  video has no frame present."""
  count = present.sum(axis=1)
  total = np.where(present, x, 0.0).sum(axis=1)
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def frames_curve(
    labels,
    frame_outputs,
    metric_fn: Callable,
    groups=None,
    max_frames: int = 20,
    seed: int = 0,
    *,
    order: str = "first",
    n_boot: int = 200,
    alpha: float = 0.05,
) -> dict[str, np.ndarray]:
  """The metric when each video's prediction averages only k frames, for k = 1..max_frames.

  ``order="first"`` averages the first k frames in time order (k × 100 ms of video at the paper's
  sampling: what a shorter clip would give). ``order="random"`` averages a random subset of k frames per
  video, drawn once per video with ``seed`` and nested (the k-subset contains the (k−1)-subset), which
  separates the effect of more frames from that of a longer time span. Videos with a NaN label are left
  out; NaN frames are ignored (random order puts them last).

  Returns arrays of length ``max_frames``: ``num_frames``, ``value``, ``ci_low``, ``ci_high`` (patient
  bootstrap with ``n_boot`` resamples; NaN when unavailable, see ``bootstrap.bootstrap_interval``) and
  ``n_boot_valid``.
  """
  if order not in FRAME_ORDERS:
    raise ValueError(f"order must be one of {FRAME_ORDERS}; got {order!r}")
  x = frame_matrix(frame_outputs)
  if groups is None:
    groups = np.arange(x.shape[0])
  labels, (x, groups), _ = metrics.drop_missing_labels(labels, x, groups)
  if not 1 <= max_frames <= x.shape[1]:
    raise ValueError(f"max_frames must be in 1..{x.shape[1]} (the frames given); got {max_frames}")
  if order == "random":
    keys = np.random.default_rng(seed).random(x.shape)
    keys[np.isnan(x)] = np.inf
    x = np.take_along_axis(x, np.argsort(keys, axis=1), axis=1)
  ks = np.arange(1, max_frames + 1)
  value = np.empty(max_frames)
  ci = np.full((max_frames, 2), np.nan)
  n_valid = np.zeros(max_frames, np.int64)
  for i, k in enumerate(ks):
    preds = video_predictions(x, k)
    value[i] = metric_fn(labels, preds)
    if n_boot > 0:
      interval = bootstrap.bootstrap_interval(
          metric_fn, groups, labels, preds, n_boot=n_boot, seed=seed, alpha=alpha
      )
      ci[i] = interval.low, interval.high
      n_valid[i] = interval.n_valid
  return {
      "num_frames": ks,
      "value": value,
      "ci_low": ci[:, 0],
      "ci_high": ci[:, 1],
      "n_boot_valid": n_valid,
  }
