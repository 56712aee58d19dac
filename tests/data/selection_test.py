"""Tests of the video selection every stream shares: the views rule applied when reading."""

from __future__ import annotations

import os

import pytest

from echonet_jax.data import cache
from echonet_jax.data import selection
from tests.testing import stream_record


def test_views_match_case_insensitively_and_unknown_views_are_kept(tmp_path, caplog):
  records = [stream_record(0), stream_record(1), stream_record(10)]
  records[0]["view"] = "a4c"
  records[1]["view"] = ""  # a labels CSV without a view column
  cache.write_shard(os.path.join(tmp_path, cache.shard_name("train", 0, 1)), records)
  rows = selection.select_videos(str(tmp_path), "train", tasks=["ef"], views=["A4C"])
  assert [r["video_id"] for r in rows] == ["v00", "v01"]
  assert "1 train videos have no view; kept" in caplog.text  # the same rule as the build


def test_a_selection_splits_over_processes_and_reads_its_records(tmp_path):
  records = [stream_record(i) for i in range(6)]
  cache.write_shard(os.path.join(tmp_path, cache.shard_name("train", 0, 1)), records)
  videos = selection.Selection(str(tmp_path), "train", ["ef"], "a4c")
  assert (videos.tasks, videos.views) == (("ef",), ("A4C",))
  ids = [[r["video_id"] for r in videos.for_process(k, 2).rows()] for k in range(2)]
  assert ids == [["v00", "v02", "v04"], ["v01", "v03", "v05"]]
  rows = selection.select_videos(
      str(tmp_path), "train", tasks=["ef"], views=["A4C"], shard_index=1, num_shards=2
  )
  assert [r["video_id"] for r in rows] == ids[1]
  assert [r["video_id"] for r in videos.for_process(1, 2).records()] == ids[1]
  read = selection.records(str(tmp_path), "train", shard_index=1, num_shards=2)
  assert [r["video_id"] for r in read] == ids[1]
  with pytest.raises(ValueError, match="not in"):
    videos.for_process(2, 2)
