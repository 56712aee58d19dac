"""Clips from the cache (data/windows.py) and the clip train stream of data/train_stream.py."""

from __future__ import annotations

import os

import numpy as np
import pytest

from echonet_jax.data import cache
from echonet_jax.data import normalization
from echonet_jax.data import train_stream
from echonet_jax.data import windows
from echonet_jax.errors import ConfigError
from tests import testing

S, T, NUM_VIDEOS = 32, 20, 6


def test_spec_strides_over_the_cache_and_says_what_to_change():
  assert windows.make_spec(32, 40.0, 40.0, 50) == windows.ClipSpec(32, 1)
  spec = windows.make_spec(16, 100.0, 50.0, 40)
  assert (spec.stride, spec.span) == (2, 31)
  with pytest.raises(ConfigError, match="not a whole multiple.*data.interval_ms=100"):
    windows.make_spec(32, 40.0, 100.0, 20)  # EchoNet-Dynamic's clips from the frame model's cache
  with pytest.raises(ConfigError, match="data.num_frames=20; raise data.num_frames to >= 31"):
    windows.make_spec(16, 100.0, 50.0, 20)
  with pytest.raises(ConfigError, match="clip_frames"):
    windows.make_spec(0, 40.0, 40.0)


def test_covering_clips_reach_both_ends_and_loop_short_videos():
  assert windows.covering_starts(20, windows.ClipSpec(16)).tolist() == [0, 4]
  assert windows.covering_starts(40, windows.ClipSpec(16, 2)).tolist() == [0, 9]
  assert windows.covering_starts(10, windows.ClipSpec(3)).tolist() == [0, 3, 6, 7]
  assert windows.covering_starts(16, windows.ClipSpec(16)).tolist() == [0]
  frames = np.arange(10)[:, None] * np.ones((1, 2))
  clips = windows.windows(frames, windows.ClipSpec(4, 2))  # span 7: starts 0 and 3
  assert clips.shape == (2, 4, 2)
  assert clips[:, :, 0].tolist() == [[0, 2, 4, 6], [3, 5, 7, 9]]
  short = windows.windows(np.arange(5), windows.ClipSpec(4, 2))  # shorter than a clip: loops
  assert short.tolist() == [[0, 2, 4, 1]]
  rng = np.random.default_rng(0)
  starts = {windows.random_start(20, windows.ClipSpec(8, 2), rng) for _ in range(200)}
  assert starts == set(range(6))  # span 15: every start 0..5


def _record(i: int) -> dict:
  frames = np.zeros((T, S, S), np.uint8)
  yy, xx = np.mgrid[:S, :S]
  disk = np.hypot(yy - (S - 1) / 2, xx - (S - 1) / 2) <= 12
  for t in range(T):
    frames[t][disk] = 1 + i * T + t  # the grey level names the video and the frame
  return cache.example_record(i, frames, {"ef": 40.0 + i})


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("clip_cache"))
  cache.write_shard(
      os.path.join(root, cache.shard_name("train", 0, 1)), [_record(i) for i in range(NUM_VIDEOS)]
  )
  testing.write_train_meta(root, S, T, NUM_VIDEOS)
  return root


def _clip_loader(cache_dir, spec, **kwargs):
  """The clip train stream of ``cache_dir``'s one shard: ef labels, 4 clips a batch, seed 0."""
  return train_stream.train_loader(
      cache_dir,
      tasks=["ef"],
      global_batch_size=4,
      seed=0,
      shard_index=0,
      num_shards=1,
      clip=spec,
      **kwargs,
  )


def test_train_clips_start_anywhere_and_share_one_augmentation(cache_dir):
  spec = windows.ClipSpec(8, 2)
  loader = _clip_loader(cache_dir, spec, rotation_deg=20.0, brightness=0.1)
  it = iter(loader)
  starts, shifts = set(), set()
  for _ in range(6):
    batch = next(it)
    images, ef = np.asarray(batch["image"]), np.asarray(batch["labels"]["ef"])
    assert images.shape == (4, 8, S, S, 1) and images.dtype == np.float32
    for clip, label in zip(images, ef):
      shift = clip[:, 0, 0, 0] - normalization.BLACK  # the black corner: the brightness shift
      np.testing.assert_allclose(shift, shift[0], atol=1e-5)  # one draw for the whole clip
      level = np.rint(
          (clip[:, S // 2, S // 2, 0] - shift[0]) * normalization.PIXEL_STD
          + normalization.PIXEL_MEAN
      )
      video, frame = (level.astype(int) - 1) // T, (level.astype(int) - 1) % T
      assert (video == label - 40).all()  # every frame from the labelled video
      assert np.diff(frame).tolist() == [2] * 7 and 0 <= frame[0] <= T - spec.span
      starts.add(int(frame[0]))
      shifts.add(round(float(shift[0]), 4))
  assert len(starts) > 2 and len(shifts) > 10
  # One rotation for all frames: rotating each frame by the clip's angle is the clip's apply.
  clip = np.stack([_record(0)["frames"][t] for t in range(4)])
  aug = train_stream.AugmentFrame(20.0, 0.1)
  together = aug.apply(clip, 15.0, 0.05)
  one_by_one = np.stack([aug.apply(f, 15.0, 0.05) for f in clip])
  np.testing.assert_array_equal(together, one_by_one)
  # Same seed, same clips.
  first = next(iter(_clip_loader(cache_dir, spec)))
  again = next(iter(_clip_loader(cache_dir, spec)))
  np.testing.assert_array_equal(np.asarray(again["image"]), np.asarray(first["image"]))
