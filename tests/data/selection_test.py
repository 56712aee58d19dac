"""Tests of the video selection every stream shares: the views rule applied when reading."""

from __future__ import annotations

import os

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
