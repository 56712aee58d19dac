"""Tests for echonet_jax.data.shard_plan: deterministic shards, and the keys that decide what a
rerun keeps."""

from __future__ import annotations

import dataclasses

from echonet_jax.data import cache
from echonet_jax.data import labels as labels_lib
from echonet_jax.data import shard_plan
from echonet_jax.data.spec import CacheSpec

SPEC = CacheSpec(num_frames=3, image_size=24, videos_per_shard=2)


def _rows(n: int) -> list[labels_lib.VideoRow]:
  return [
      labels_lib.VideoRow(
          video_id=f"v{i}",
          patient_id=f"P{i}",
          study_id=f"S{i}",
          path=f"/data/v{i}.dcm",
          labels={"ef": 40.0 + i},
          split="train",
          view="A4C",
      )
      for i in range(n)
  ]


def test_shards_are_sorted_chunks_whose_content_key_follows_their_rows():
  rows = _rows(5)
  plans = shard_plan.plan_shards(list(reversed(rows)), 2)
  assert [p.name for p in plans] == [cache.shard_name("train", k, 3) for k in range(3)]
  assert [[r.video_id for r in p.rows] for p in plans] == [["v0", "v1"], ["v2", "v3"], ["v4"]]
  assert plans == shard_plan.plan_shards(rows, 2)  # the same rows in any order: the same plan
  relabelled = rows[:3] + [dataclasses.replace(rows[3], labels={"ef": 77.0})] + rows[4:]
  again = shard_plan.plan_shards(relabelled, 2)
  assert [p.content == q.content for p, q in zip(plans, again)] == [True, False, True]
  assert again[1].pixel_keys == plans[1].pixel_keys  # the same files: copied, not read again


def test_only_a_complete_folder_of_these_rows_is_current(tmp_path):
  rows = _rows(3)
  assert not shard_plan.is_current(str(tmp_path / "none"), rows, SPEC)
  kept, _ = shard_plan.select_rows(rows, SPEC)
  digest = shard_plan.inputs_digest(shard_plan.plan_shards(kept, SPEC.videos_per_shard), SPEC)
  cache.write_meta(str(tmp_path), {"complete": False, "inputs_digest": digest})
  assert not shard_plan.is_current(str(tmp_path), rows, SPEC)
  cache.write_meta(str(tmp_path), {"complete": True, "inputs_digest": digest})
  assert shard_plan.is_current(str(tmp_path), rows, SPEC)
  assert not shard_plan.is_current(str(tmp_path), rows[:2], SPEC)
