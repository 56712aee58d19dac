"""Which videos of a cache split a stream reads, and reading them.

A :class:`Selection` (or :func:`select_videos`) filters a split's index up front (views rule,
label availability, view confidence) and slices it to this process; :class:`VideoSource` serves the
encoded records of the selection by position (the Grain data source of the train stream);
``Selection.records`` (or :func:`records`) decodes them in cache order (the eval stream,
interpretation, statistics).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any
from typing import Iterator
from typing import Sequence

from absl import logging
import numpy as np

from echonet_jax import tasks as tasks_lib
from echonet_jax.data import cache
from echonet_jax.data import labels as labels_lib
from echonet_jax.data import spec as spec_lib
from echonet_jax.data import views as views_lib
from echonet_jax.errors import ConfigError


def resolve_shard(shard_index: int | None, num_shards: int | None) -> tuple[int, int]:
  """``(shard_index, num_shards)``, this JAX process's where None."""
  if shard_index is None or num_shards is None:
    import jax  # pylint: disable=g-import-not-at-top  # not at import: Grain workers import this module

    shard_index = jax.process_index() if shard_index is None else shard_index
    num_shards = jax.process_count() if num_shards is None else num_shards
  if not 0 <= shard_index < num_shards:
    raise ValueError(f"shard_index {shard_index} is not in [0, {num_shards})")
  return shard_index, num_shards


@dataclasses.dataclass(frozen=True)
class Selection:
  """The videos of a cache split a stream reads: the filter of :func:`select_videos`.

  ``tasks`` (names, None: every video) and ``views`` (None or empty: every view) are the labels and
  views rule, ``min_view_confidence`` the bar for a predicted view; the selection holds every
  ``num_shards``-th video from ``shard_index`` (see :meth:`for_process`).
  """

  cache_dir: str
  split: str
  tasks: tuple[str, ...] | None = None
  views: tuple[str, ...] = ()
  min_view_confidence: float = 0.0
  shard_index: int = 0
  num_shards: int = 1

  def __post_init__(self):
    if self.tasks is not None:
      object.__setattr__(self, "tasks", tuple(self.tasks))
    object.__setattr__(self, "views", spec_lib.normalize_views(self.views))

  def for_process(self, shard_index: int | None = None, num_shards: int | None = None) -> Selection:
    """The same selection sliced to shard ``shard_index`` of ``num_shards`` (by default, this JAX
    process's: see :func:`resolve_shard`)."""
    shard_index, num_shards = resolve_shard(shard_index, num_shards)
    return dataclasses.replace(self, shard_index=shard_index, num_shards=num_shards)

  def rows(self) -> list[dict[str, Any]]:
    """Index rows (see ``cache.read_index``) of the selected videos, without decoding frames."""
    tasks, wanted_views, cache_dir, split = self.tasks, self.views, self.cache_dir, self.split
    for name in tasks or ():
      tasks_lib.get_task(name)
    index = cache.read_index(cache_dir, split)
    counts = labels_lib.count_views((row["view"] for row in index), wanted_views)
    if counts["unknown"]:
      logging.warning(
          "%s: %d %s videos have no view; kept (views rule: unknown is kept)",
          cache_dir,
          counts["unknown"],
          split,
      )
    rows = [
        row
        for row in index
        if views_lib.keep_video(row, wanted_views, self.min_view_confidence)
        and (tasks is None or any(not math.isnan(row["labels"].get(t, math.nan)) for t in tasks))
    ]
    unsure = (
        views_lib.low_confidence(index, wanted_views, self.min_view_confidence)
        if wanted_views
        else []
    )
    if unsure and self.shard_index == 0:
      logging.warning(
          "%s: %d %s video(s) of views %s left out: predicted view below confidence %g: " "%s",
          cache_dir,
          len(unsure),
          split,
          list(wanted_views),
          self.min_view_confidence,
          ", ".join(r["video_id"] for r in unsure),
      )
    if not rows:
      raise ConfigError(
          f"{cache_dir}: no {split!r} video has a label for any of {list(tasks or [])}"
          + (f" in views {list(wanted_views)}" if wanted_views else "")
          + f" ({len(index)} videos in the split)"
      )
    return rows[self.shard_index :: self.num_shards]

  def records(self) -> Iterator[dict[str, Any]]:
    """Decoded records (``cache.decode_record``) of the selected videos, in cache order."""
    source = VideoSource.from_rows(self.cache_dir, self.split, self.rows())
    for position in range(len(source)):
      yield cache.decode_record(source[position])


def select_videos(
    cache_dir: str,
    split: str,
    *,
    tasks: Sequence[str] | None = None,
    views: Sequence[str] | None = None,
    shard_index: int = 0,
    num_shards: int = 1,
    min_view_confidence: float = 0.0,
) -> list[dict[str, Any]]:
  """Index rows (see ``cache.read_index``) of the videos a stream reads, without decoding frames.

  Keeps videos that pass :func:`echonet_jax.data.labels.view_matches` (the same views rule the cache
  build applies: case-insensitive, all views when ``views`` is empty, a blank view kept with a
  warning) and that have at least one of ``tasks``' labels (all when None), then takes every
  ``num_shards``-th from ``shard_index``. A cache built for the config's views was filtered already
  by the build; this stage filters caches built with more views (e.g. by the CLI without --views).
  A view a view model predicted also needs ``min_view_confidence``; the videos left out for an
  unsure prediction are counted and listed in the log (see ``data/views.py``).
  """
  return Selection(
      cache_dir, split, tasks, views, min_view_confidence, shard_index, num_shards
  ).rows()


class VideoSource:
  """The encoded records of the selected videos of one split, by position in the selection.

  Picklable: the ArrayRecord reader opens lazily in each process.
  """

  def __init__(self, paths: Sequence[str], record_ids: Sequence[int]):
    self._paths = list(paths)
    self._record_ids = np.asarray(record_ids, np.int64)
    self._source = None

  @classmethod
  def from_rows(cls, cache_dir: str, split: str, rows: Sequence[dict[str, Any]]) -> VideoSource:
    """The source of ``rows`` (of :func:`select_videos`) in the shards of ``cache_dir``'s ``split``."""
    return cls(cache.shard_paths(cache_dir, split), [r["record"] for r in rows])

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


def records(cache_dir: str, split: str, **options) -> Iterator[dict[str, Any]]:
  """Decoded records (``cache.decode_record``) of the videos :func:`select_videos` selects with the
  same arguments (keywords ``tasks``, ``views``, ``shard_index``, ``num_shards``,
  ``min_view_confidence``), in cache order."""
  return Selection(cache_dir, split, **options).records()


def record_labels(record: dict[str, Any], tasks: Sequence[str]) -> dict[str, np.float32]:
  """``{task: float32}`` of a decoded record, NaN where it has no label."""
  values = record.get("labels", {})
  return {t: np.float32(values.get(t, math.nan)) for t in tasks}
