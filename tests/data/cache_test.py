"""The cache record format and shard files."""

import math
import os

import grain
import numpy as np
import pytest

from echonet_jax.data import cache
from echonet_jax.data import selection
from echonet_jax.errors import CacheError


def _record(i, split="train", masks=False):
  rng = np.random.default_rng(i)
  record = dict(
      video_id=f"v{i}",
      patient_id=f"p{i // 2}",
      study_id=f"s{i}",
      split=split,
      view="A4C",
      frames=rng.integers(0, 255, (20, 16, 16), dtype=np.uint8),
      frame_indices=np.arange(20, dtype=np.int32) * 3,
      frame_time_ms=33.3,
      fps_assumed=False,
      labels={"ef": 50.0 + i, "age": math.nan},
  )
  if masks:
    record["masks"] = rng.integers(0, 256, (20, 16, 16)).astype(np.uint16)
  return record


def test_record_round_trip_and_partial_decode():
  record = _record(3, masks=True)
  data = cache.encode_record(record)
  out = cache.decode_record(data)
  for key in ("frames", "frame_indices", "masks"):
    np.testing.assert_array_equal(out[key], record[key])
    assert out[key].dtype == record[key].dtype
  assert out["labels"]["ef"] == 53.0 and math.isnan(out["labels"]["age"])
  assert out["video_id"] == "v3" and out["fps_assumed"] is False
  assert cache.num_frames(data) == 20
  part = cache.decode_record(data, frames=[7, 2])
  np.testing.assert_array_equal(part["frames"], record["frames"][[7, 2]])
  np.testing.assert_array_equal(part["masks"], record["masks"][[7, 2]])
  np.testing.assert_array_equal(part["frame_indices"], record["frame_indices"])


def test_bad_record_is_refused():
  with pytest.raises(ValueError, match="not an echonet-jax cache record"):
    cache.decode_record(b"garbage bytes")


def test_shards_index_and_grain_source(tmp_path):
  d = str(tmp_path)
  cache.write_shard(os.path.join(d, cache.shard_name("train", 0, 2)), [_record(0), _record(1)])
  cache.write_shard(os.path.join(d, cache.shard_name("train", 1, 2)), [_record(2)])
  assert not [n for n in os.listdir(d) if n.endswith(".tmp")]
  index = cache.read_index(d, "train")
  assert [r["video_id"] for r in index] == ["v0", "v1", "v2"]
  assert [r["record"] for r in index] == [0, 1, 2]
  assert index[2]["labels"]["ef"] == 52.0 and math.isnan(index[2]["labels"]["age"])
  source = grain.sources.ArrayRecordDataSource(cache.shard_paths(d, "train"))
  assert len(source) == 3
  for row in index:
    assert cache.decode_record(source[row["record"]])["video_id"] == row["video_id"]
  assert [r["video_id"] for r in cache.read_shard(cache.shard_paths(d, "train")[1])] == ["v2"]
  with pytest.raises(FileNotFoundError, match="no cache shards for split 'test'"):
    cache.shard_paths(d, "test")


def test_meta_and_label_stats(tmp_path):
  with pytest.raises(FileNotFoundError, match="not an echonet-jax cache"):
    cache.read_meta(str(tmp_path))
  stats = cache.label_stats([_record(0), _record(2)])
  assert stats["ef"] == {"mean": 51.0, "std": 1.0, "n": 2}
  assert "age" not in stats
  cache.write_meta(str(tmp_path), {"format": 1, "label_stats": stats})
  assert cache.read_meta(str(tmp_path))["label_stats"]["ef"]["n"] == 2


def test_relabel_record_keeps_the_pixels_byte_for_byte():
  data = cache.encode_record(_record(4, masks=True))
  out = cache.relabel_record(data, {"video_id": "new", "labels": {"ef": 61.0, "age": math.nan}})
  assert out.endswith(data[-1000:]) and len(out) - len(data) < 50
  record = cache.decode_record(out)
  assert record["video_id"] == "new" and record["labels"]["ef"] == 61.0
  np.testing.assert_array_equal(record["masks"], cache.decode_record(data)["masks"])
  with pytest.raises(ValueError, match="cannot replace the array 'frames'"):
    cache.relabel_record(data, {"frames": None})


def test_a_truncated_shard_is_one_line_naming_it(tmp_path):
  d = str(tmp_path)
  good = os.path.join(d, cache.shard_name("train", 0, 2))
  bad = os.path.join(d, cache.shard_name("train", 1, 2))
  cache.write_shard(good, [_record(0), _record(1)])
  cache.write_shard(bad, [_record(2), _record(3)])
  data = open(bad, "rb").read()
  with open(bad, "wb") as f:
    f.write(data[: len(data) // 2])
  for read in (
      lambda: cache.read_shard(bad),
      lambda: list(selection.records(d, "train")),
      lambda: cache.open_records([good, bad]),
  ):
    with pytest.raises(CacheError) as info:
      read()
    message = str(info.value)
    assert message.startswith(f"{bad}: the cache shard is truncated or corrupt")
    assert "\n" not in message and "rebuild" in message
  assert len(cache.read_shard(good)) == 2
