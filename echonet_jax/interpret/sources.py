"""The videos saliency mode explains: videos of a cache split, or DICOM and AVI input files.

Each becomes a :class:`Video`: uint8 frames at the model's input size and, for cache videos, the
labels and the ground-truth masks (uint16 (T, S, S), one bit per region of the cache's
``mask_names``).
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Iterable
from typing import Sequence

import cv2
import ml_collections
import numpy as np

from echonet_jax.data import augment
from echonet_jax.data import selection
from echonet_jax.data import video as video_lib
from echonet_jax.errors import ConfigError
from echonet_jax.evaluation import inference


@dataclasses.dataclass
class Video:
  """One clip to explain: uint8 frames at the model's size, optional ground truth."""

  source: str  # the split, or "inputs"
  video_id: str
  frames: np.ndarray  # uint8 (T, S, S)
  labels: dict[str, float] = dataclasses.field(default_factory=dict)
  masks: np.ndarray | None = None  # uint16 (T, S, S)
  path: str = ""
  quality: str = ""  # the sector quality flag of an input file ("ok" or a reason)


def safe_name(name: str) -> str:
  """A video id made safe as a folder name."""
  cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("._")
  return cleaned or "video"


def _resize_masks(masks: np.ndarray, size: int) -> np.ndarray:
  if masks.shape[-1] == size:
    return masks
  return np.stack([cv2.resize(m, (size, size), interpolation=cv2.INTER_NEAREST) for m in masks])


def split_videos(
    cache_dir: str,
    split: str,
    names: Sequence[str],
    views: Sequence[str] | None,
    size: int,
    num_videos: int,
    video_ids: Sequence[str] = (),
) -> Iterable[Video]:
  """The first ``num_videos`` videos of a cache split with a label for one of ``names`` (or the
  ``video_ids`` ones), frames (and masks) at ``size``."""
  wanted = set(video_ids)
  found = set()
  count = 0
  for record in selection.records(cache_dir, split, tasks=names, views=views):
    video_id = str(record.get("video_id", ""))
    if wanted and video_id not in wanted:
      continue
    if not wanted and count >= num_videos:
      break
    frames = np.stack([augment.resize(f, size) for f in record["frames"]])
    masks = record.get("masks")
    yield Video(
        source=split,
        video_id=video_id,
        frames=frames,
        labels={k: float(v) for k, v in record.get("labels", {}).items() if k in names},
        masks=None if masks is None else _resize_masks(np.asarray(masks), size),
    )
    found.add(video_id)
    count += 1
  missing = sorted(wanted - found)
  if missing:
    raise ConfigError(f"{cache_dir}: split {split!r} has no labelled video {missing}")


def input_videos(
    paths: Sequence[str], data: ml_collections.ConfigDict, errors: list[dict[str, str]]
) -> Iterable[Video]:
  """DICOM or AVI files (or folders), read as the model was trained; any failure to read one becomes
  its row in ``errors`` (type and reason, see ``inference.input_error``) and the others go on."""
  used: set[str] = set()
  for path in video_lib.list_files(paths):
    try:
      clip = video_lib.read_for_model(path, data)
    except Exception as e:  # pylint: disable=broad-except
      errors.append({"path": path, **inference.input_error(e, "reading")})
      continue
    stem = safe_name(os.path.splitext(os.path.basename(path))[0])
    video_id, k = stem, 1
    while video_id in used:
      k += 1
      video_id = f"{stem}_{k}"
    used.add(video_id)
    yield Video(
        source="inputs",
        video_id=video_id,
        frames=clip.frames,
        path=path,
        quality=inference.clip_quality(clip),
    )
