"""CacheSpec: the one definition of the settings a cache is built with, and of which must match.

A cache folder is identified by (1) its :class:`CacheSpec` (every field below: the frames and
their timing, the split rule, the shard size, the views kept) and (2) the *content* of its input
rows (the labels CSV's rows, see :func:`echonet_jax.data.shard_plan.inputs_digest`), never by the
path of the CSV. A build into a folder of another spec is refused in one line; a build into a
folder of the same spec whose rows changed updates the folder (see :mod:`echonet_jax.data.build`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from typing import Any
from typing import Iterable

from echonet_jax.data import video
from echonet_jax.errors import ConfigError

SOURCES = ("labels_csv", "phantom", "echonet_dynamic")
DEFAULT_FPS = 30.0

# CacheSpec field -> config key (under ``config.data``) it is read from.
_CONFIG_FIELDS = {
    "num_frames": "num_frames",
    "interval_ms": "interval_ms",
    "image_size": "image_size",
    "default_fps": "default_fps",
    "split_seed": "split_seed",
    "test_frac": "test_frac",
    "val_frac": "val_frac",
    "views": "views",
}
CONFIG_KEYS: tuple[str, ...] = tuple(f"data.{k}" for k in _CONFIG_FIELDS.values())


def normalize_views(views: Iterable[str] | str | None) -> tuple[str, ...]:
  """Views as the spec holds them: upper-case, stripped, sorted, unique; () keeps every view."""
  if isinstance(views, str):
    views = views.split(",")
  return tuple(sorted({v.strip().upper() for v in views or () if v and v.strip()}))


@dataclasses.dataclass(frozen=True)
class CacheSpec:
  """How a cache is built. Every field is part of the cache's identity."""

  source: str = "labels_csv"  # "labels_csv", "phantom" or "echonet_dynamic"
  num_frames: int = 20
  interval_ms: float = 100.0
  image_size: int = 0  # 0: the source's native size (299 DICOM and phantom, 112 EchoNet-Dynamic)
  default_fps: float = DEFAULT_FPS
  allow_non_ultrasound: bool = False
  split_seed: int = 0
  test_frac: float = 0.1
  val_frac: float = 0.1
  videos_per_shard: int = 64
  views: tuple[str, ...] = ()  # () keeps every view; see labels.view_matches

  def __post_init__(self):
    object.__setattr__(self, "views", normalize_views(self.views))
    object.__setattr__(self, "num_frames", int(self.num_frames))
    object.__setattr__(
        self,
        "image_size",
        int(self.image_size)
        or (
            video.NATIVE_SIZE_ECHONET_DYNAMIC
            if self.source == "echonet_dynamic"
            else video.NATIVE_SIZE_DICOM
        ),
    )
    object.__setattr__(self, "interval_ms", float(self.interval_ms))
    object.__setattr__(self, "default_fps", float(self.default_fps))
    object.__setattr__(self, "test_frac", float(self.test_frac))
    object.__setattr__(self, "val_frac", float(self.val_frac))
    self.validate()

  def validate(self) -> None:
    """Raises ConfigError (one line) for a setting no cache can be built with."""
    checks = [
        (self.source in SOURCES, f"source must be one of {', '.join(SOURCES)}"),
        (self.num_frames >= 1, "num_frames must be at least 1"),
        (math.isfinite(self.interval_ms) and self.interval_ms > 0, "interval_ms must be > 0"),
        (self.image_size >= 1, "image_size must be at least 1"),
        (math.isfinite(self.default_fps) and self.default_fps > 0, "default_fps must be > 0"),
        (0 <= self.test_frac < 1, "test_frac must be in [0, 1)"),
        (0 <= self.val_frac < 1, "val_frac must be in [0, 1)"),
        (self.videos_per_shard >= 1, "videos_per_shard must be at least 1"),
    ]
    for ok, message in checks:
      if not ok:
        raise ConfigError(f"cache settings: {message}")

  @property
  def reader(self) -> str:
    """ "avi" for EchoNet-Dynamic, else "dicom"."""
    return "avi" if self.source == "echonet_dynamic" else "dicom"

  def identity(self) -> dict[str, Any]:
    """The fields as plain JSON values (stored as meta.json's ``build``)."""
    out = dataclasses.asdict(self)
    out["views"] = list(self.views)
    return out

  def digest(self) -> str:
    """A short hash of :meth:`identity`."""
    text = json.dumps(self.identity(), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]

  def differences(self, stored: dict[str, Any]) -> list[str]:
    """``key=stored!r`` for each field where a stored ``build`` dict differs from this spec."""
    mine = self.identity()
    return [f"{k}={stored.get(k)!r} (now {mine[k]!r})" for k in mine if stored.get(k) != mine[k]]

  @classmethod
  def from_config(cls, config, source: str | None = None, **overrides) -> "CacheSpec":
    """The spec of ``config.data``; ``source`` defaults to the config's data source."""
    d = config.data
    if source is None:
      source = (
          "labels_csv"
          if d.labels_csv
          else "echonet_dynamic"
          if d.echonet_dynamic_dir
          else "phantom"
      )
    values = {field: d[key] for field, key in _CONFIG_FIELDS.items()}
    values.update(overrides)
    return cls(source=source, **values)
