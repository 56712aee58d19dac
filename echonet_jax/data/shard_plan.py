"""Validated rows + a CacheSpec -> the planned cache: the rows it holds, its shards and their
content identity.

Videos are filtered by the views rule (:func:`echonet_jax.data.labels.view_matches`), split by
patient (:mod:`echonet_jax.data.labels`), sorted by video id within each split and cut into shards
of ``spec.videos_per_shard`` (:func:`plan_shards`).

**Content identity.** Every row has a *record key* (a hash of its ids, split, view, labels and of
its source file's path), every shard a *content key* (a hash of its name and its rows' record
keys, kept in its ``.report.json``), and the folder an *inputs digest* (the spec and every record
key, in meta.json). :mod:`echonet_jax.data.build` keeps the shards whose content key still matches
and rewrites the others; :func:`is_current` tells whether a folder holds exactly these rows.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from typing import Any
from typing import Sequence

from echonet_jax.data import cache
from echonet_jax.data import extract
from echonet_jax.data import labels as labels_lib
from echonet_jax.data.spec import CacheSpec


def content_hash(obj: Any, n: int = 16) -> str:
  """The first ``n`` hex digits of the SHA-256 of ``obj``'s canonical JSON."""
  return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:n]


def record_key(row: labels_lib.VideoRow, pixels: str) -> str:
  """A hash of everything a row puts into its cache record."""
  labels = {k: (None if math.isnan(v) else v) for k, v in row.labels.items()}
  return content_hash(
      [row.video_id, row.patient_id, row.study_id, row.split, row.view, labels, pixels]
  )


@dataclasses.dataclass(frozen=True)
class ShardPlan:
  split: str
  index: int
  count: int
  rows: tuple[labels_lib.VideoRow, ...]
  pixel_keys: tuple[str, ...]
  record_keys: tuple[str, ...]

  @property
  def name(self) -> str:
    return cache.shard_name(self.split, self.index, self.count)

  @property
  def content(self) -> str:
    return content_hash([self.name, self.record_keys], 24)


def select_rows(
    rows: Sequence[labels_lib.VideoRow], spec: CacheSpec
) -> tuple[list[labels_lib.VideoRow], dict[str, int]]:
  """The rows the cache holds (views rule, then patient splits) and the views counts."""
  counts = labels_lib.count_views((r.view for r in rows), spec.views)
  kept = [r for r in rows if labels_lib.view_matches(r.view, spec.views)]
  kept = labels_lib.assign_splits(
      kept, spec.split_seed, spec.test_frac, spec.val_frac, source=spec.source
  )
  return kept, counts


def plan_shards(rows: Sequence[labels_lib.VideoRow], videos_per_shard: int) -> list[ShardPlan]:
  """Deterministic shards: per split (train, val, test), videos sorted by id, in chunks."""
  plans = []
  for split in cache.SPLITS:
    members = sorted((r for r in rows if r.split == split), key=lambda r: r.video_id)
    count = math.ceil(len(members) / videos_per_shard)
    for k in range(count):
      chunk = tuple(members[k * videos_per_shard : (k + 1) * videos_per_shard])
      pixels = tuple(extract.pixel_key(r) for r in chunk)
      plans.append(
          ShardPlan(
              split, k, count, chunk, pixels, tuple(record_key(r, p) for r, p in zip(chunk, pixels))
          )
      )
  return plans


def inputs_digest(plans: Sequence[ShardPlan], spec: CacheSpec) -> str:
  """The identity of a cache's content: its spec and every planned record."""
  return content_hash([spec.identity(), [[p.name, p.record_keys] for p in plans]], 24)


def is_current(out_dir: str, rows: Sequence[labels_lib.VideoRow], spec: CacheSpec) -> bool:
  """True when ``out_dir`` is a complete cache of exactly these rows and spec."""
  try:
    meta = cache.read_meta(out_dir)
  except FileNotFoundError:
    return False
  kept, _ = select_rows(rows, spec)
  digest = inputs_digest(plan_shards(kept, spec.videos_per_shard), spec)
  return bool(meta.get("complete")) and meta.get("inputs_digest") == digest
