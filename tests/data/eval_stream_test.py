"""Tests of the eval stream on a tiny real cache (12 videos × 20 frames at 32×32)."""

from __future__ import annotations

import numpy as np
import pytest

from echonet_jax.data import cache
from echonet_jax.data import eval_stream
from echonet_jax.data import normalization
from tests.testing import STREAM_FRAMES
from tests.testing import STREAM_LABELED_A4C
from tests.testing import STREAM_SIZE
from tests.testing import STREAM_VIDEOS
from tests.testing import stream_record

S = STREAM_SIZE
T = STREAM_FRAMES


def test_eval_yields_every_video_once_with_all_frames(stream_cache):
  batches = list(
      eval_stream.eval_batches(
          stream_cache, "train", videos_per_batch=5, shard_index=0, num_shards=1
      )
  )
  assert len(batches) == 3
  ids = []
  for batch in batches:
    assert batch["image"].shape == (5, T, S, S, 1)
    assert batch["valid"].dtype == bool and batch["video_id"].shape == (5,)
    for row in np.flatnonzero(batch["valid"]):
      i = int(batch["video_id"][row][1:])
      ids.append(i)
      expected = stream_record(i)
      np.testing.assert_array_equal(
          batch["image"][row, ..., 0], normalization.normalize(expected["frames"])
      )
      np.testing.assert_array_equal(batch["labels"]["ef"][row], expected["labels"]["ef"])
      assert batch["patient_id"][row] == expected["patient_id"]
  assert sorted(ids) == list(range(STREAM_VIDEOS))
  last = batches[-1]
  np.testing.assert_array_equal(last["valid"], [True, True, False, False, False])
  assert np.all(np.isnan(last["labels"]["ef"][2:])) and np.all(last["image"][2:] == 0)


def test_eval_filters_and_shards(stream_cache):
  ids = []
  for index in range(3):
    for batch in eval_stream.eval_batches(
        stream_cache,
        "train",
        tasks=["ef"],
        views=["A4C"],
        videos_per_batch=2,
        image_size=16,
        channels=3,
        shard_index=index,
        num_shards=3,
    ):
      assert batch["image"].shape == (2, T, 16, 16, 3) and set(batch["labels"]) == {"ef"}
      ids.extend(batch["video_id"][batch["valid"]].tolist())
  assert sorted(ids) == [f"v{i:02d}" for i in STREAM_LABELED_A4C]


def test_eval_rejects_a_video_of_the_wrong_length(tmp_path):
  short = stream_record(0)
  short["frames"] = short["frames"][:5]
  cache.write_shard(str(tmp_path / cache.shard_name("val", 0, 1)), [short])
  cache.write_meta(str(tmp_path), {"image_size": S, "num_frames": T})
  with pytest.raises(ValueError, match="'v00'.*5 frames"):
    list(eval_stream.eval_batches(str(tmp_path), "val", shard_index=0, num_shards=1))
