"""Tests of the Grain train stream on a tiny real cache (12 videos × 20 frames at 32×32) and of
the pure frame operations it applies."""

from __future__ import annotations

import math

import grain
import numpy as np
import pytest

from echonet_jax.data import augment
from echonet_jax.data import normalization
from echonet_jax.data import train_stream
from tests.testing import STREAM_FRAMES
from tests.testing import STREAM_LABELED_A4C
from tests.testing import STREAM_RADIUS
from tests.testing import STREAM_SIZE
from tests.testing import stream_disk

S = STREAM_SIZE
T = STREAM_FRAMES
RADIUS = STREAM_RADIUS
LABELED_A4C = STREAM_LABELED_A4C


def _loader(cache_dir, **kwargs):
  args = dict(tasks=["ef"], global_batch_size=5, seed=0, shard_index=0, num_shards=1, views=["A4C"])
  args.update(kwargs)
  return train_stream.train_loader(cache_dir, **args)


def _take(iterator, n):
  return [
      {"image": np.array(b["image"]), "labels": {k: np.array(v) for k, v in b["labels"].items()}}
      for b in (next(iterator) for _ in range(n))
  ]


def _decode(images: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(video, frame, brightness shift) of each image of a batch, from its black corner and centre."""
  c = S // 2
  shift = images[:, 0, 0, 0] - normalization.BLACK
  level = np.rint(
      (images[:, c, c, 0] - shift) * normalization.PIXEL_STD + normalization.PIXEL_MEAN
  ).astype(int)
  return (level - 1) // T, (level - 1) % T, shift


def _assert_same(a, b):
  assert len(a) == len(b)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x["image"], y["image"])
    for k in x["labels"]:
      np.testing.assert_array_equal(x["labels"][k], y["labels"][k])


def _ks_uniform(samples, low, high) -> float:
  """Kolmogorov–Smirnov distance of ``samples`` from Uniform(low, high)."""
  x = np.sort((np.asarray(samples, np.float64) - low) / (high - low))
  n = len(x)
  i = np.arange(1, n + 1)
  return float(max(np.max(i / n - x), np.max(x - (i - 1) / n)))


def _ks_critical(n: int) -> float:
  return 1.95 / math.sqrt(n)  # alpha = 0.001


# --- pure frame operations ------------------------------------------------------------------------


def test_rotation_is_counter_clockwise_about_the_centre():
  frame = np.random.default_rng(0).integers(0, 256, (S, S), dtype=np.uint8)
  np.testing.assert_array_equal(augment.rotate(frame, 90.0), np.rot90(frame, 1))
  np.testing.assert_array_equal(augment.rotate(frame, 0.0), frame)
  # A disk centred on the image centre is unchanged by any rotation about that centre.
  disk = stream_disk().astype(np.uint8) * 200
  inner = np.zeros_like(disk, bool)
  c = (S - 1) / 2
  yy, xx = np.mgrid[:S, :S]
  inner[np.hypot(yy - c, xx - c) <= RADIUS - 1.5] = True
  for angle in (-20.0, -7.3, 13.0, 20.0):
    np.testing.assert_array_equal(augment.rotate(disk, angle)[inner], 200)


def test_rotation_keeps_the_masked_background_black():
  yy, xx = np.mgrid[:S, :S]
  sector = (np.abs(np.arctan2(xx - S / 2, yy + 2)) < 0.6) & (np.hypot(xx - S / 2, yy + 2) < S)
  frame = (np.random.default_rng(1).integers(1, 256, (S, S)) * sector).astype(np.uint8)
  for angle in (-20.0, 5.5, 20.0):
    rotated_mask = augment.rotate(sector.astype(np.uint8) * 255, angle)
    rotated = augment.rotate(frame, angle)
    assert np.all(rotated[rotated_mask == 0] == 0)
    assert rotated[0, 0] == 0 and rotated[-1, -1] == 0


def test_resize_uses_target_size():
  frame = np.full((S, S), 100, np.uint8)
  assert augment.resize(frame, S) is frame
  np.testing.assert_array_equal(augment.resize(frame, 16), np.full((16, 16), 100, np.uint8))


def test_augmentation_draws_cover_ranges_uniformly():
  n = 4000
  ds = (
      grain.MapDataset.range(n)
      .seed(3)
      .random_map(lambda _, rng: augment.draw_params(rng, 20.0, 0.1))
  )
  angles, shifts = np.array(list(ds)).T
  assert _ks_uniform(angles, -20.0, 20.0) < _ks_critical(n)
  assert _ks_uniform(shifts, -0.1, 0.1) < _ks_critical(n)
  assert angles.min() < -19.8 and angles.max() > 19.8
  assert shifts.min() < -0.099 and shifts.max() > 0.099
  assert abs(np.corrcoef(angles, shifts)[0, 1]) < 0.06


def test_augment_frame_applies_its_drawn_rotation_and_shift():
  frame = (np.random.default_rng(2).integers(0, 256, (S, S)) * stream_disk()).astype(np.uint8)
  aug = train_stream.AugmentFrame(20.0, 0.1, channels=3)
  out = aug.random_map({"frame": frame, "labels": {}}, np.random.default_rng(7))["image"]
  angle, shift = augment.draw_params(np.random.default_rng(7), 20.0, 0.1)
  expected = normalization.normalize(augment.rotate(frame, angle)) + np.float32(shift)
  assert out.shape == (S, S, 3) and out.dtype == np.float32
  np.testing.assert_array_equal(out[..., 1], expected)


# --- train stream ---------------------------------------------------------------------------------


def test_train_batches_have_the_contracted_structure_and_labels(stream_cache):
  it = iter(_loader(stream_cache, tasks=["ef", "sex"], views=None, global_batch_size=4))
  seen = set()
  for batch in _take(it, 15):
    assert batch["image"].shape == (4, S, S, 1) and batch["image"].dtype == np.float32
    assert set(batch["labels"]) == {"ef", "sex"}
    video, _, _ = _decode(batch["image"])
    seen.update(video.tolist())
    np.testing.assert_array_equal(batch["labels"]["ef"], 40.0 + video)
    np.testing.assert_array_equal(batch["labels"]["sex"], np.where(video == 10, 0.0, video % 2))
  assert seen == set(range(11))  # video 11 has no label for ef or sex


def test_train_stream_excludes_other_views_and_unlabelled_videos(stream_cache):
  it = iter(_loader(stream_cache, global_batch_size=5))
  videos = np.concatenate([_decode(b["image"])[0] for b in _take(it, 12)])
  assert set(videos.tolist()) == set(LABELED_A4C)
  with pytest.raises(ValueError, match="no 'train' video has a label"):
    _loader(stream_cache, views=["PLAX"])


def test_sampling_picks_each_video_once_per_epoch_then_a_random_frame(stream_cache):
  it = iter(_loader(stream_cache, global_batch_size=5, rotation_deg=0.0, brightness=0.0))
  batches = _take(it, 2 * 30)  # 30 epochs of the 10 videos
  video, frame, shift = _decode(np.concatenate([b["image"] for b in batches]))
  np.testing.assert_array_equal(shift, 0.0)
  for epoch in range(30):
    assert sorted(video[epoch * 10 : (epoch + 1) * 10].tolist()) == LABELED_A4C
  assert video[:10].tolist() != video[10:20].tolist()  # reshuffled each epoch
  counts = np.bincount(frame, minlength=T)
  assert counts.min() > 0
  expected = len(frame) / T
  assert float(np.sum((counts - expected) ** 2 / expected)) < 43.8  # chi², 19 dof, p = 0.001


def test_brightness_is_uniform_and_the_background_stays_black(stream_cache):
  it = iter(_loader(stream_cache, global_batch_size=25))
  images = np.concatenate([b["image"] for b in _take(it, 24)])
  video, _, shift = _decode(images)
  assert set(video.tolist()) <= set(LABELED_A4C)
  assert _ks_uniform(shift, -0.1, 0.1) < _ks_critical(len(shift))
  # Outside the (rotated, centred) disk every pixel is normalised black plus the shift.
  c = (S - 1) / 2
  yy, xx = np.mgrid[:S, :S]
  outside = np.hypot(yy - c, xx - c) > RADIUS + 1.5
  background = images[:, outside, 0]
  expected = np.broadcast_to((normalization.BLACK + shift)[:, None], background.shape)
  np.testing.assert_allclose(background, expected, atol=1e-6)


def test_same_seed_same_batches_other_seed_other_order(stream_cache):
  a = _take(iter(_loader(stream_cache, seed=1)), 4)
  b = _take(iter(_loader(stream_cache, seed=1)), 4)
  c = _take(iter(_loader(stream_cache, seed=2)), 4)
  _assert_same(a, b)
  assert not np.array_equal(a[0]["image"], c[0]["image"])


def test_resumed_iterator_equals_uninterrupted_run(stream_cache):
  full = _take(iter(_loader(stream_cache, num_threads=2)), 7)
  first = iter(_loader(stream_cache, num_threads=2))
  _take(first, 3)
  state = first.get_state()
  _take(first, 2)  # the saved state must not move with the old iterator
  resumed = iter(_loader(stream_cache, num_threads=2))
  resumed.set_state(state)
  _assert_same(_take(resumed, 4), full[3:])


def test_iterator_round_trips_through_orbax(stream_cache, tmp_path):
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top

  full = _take(iter(_loader(stream_cache)), 5)
  it = iter(_loader(stream_cache))
  _take(it, 2)
  with ocp.CheckpointManager(str(tmp_path / "ckpt")) as manager:
    manager.save(2, args=ocp.args.Composite(data=grain.checkpoint.CheckpointSave(it)))
    manager.wait_until_finished()
  restored = iter(_loader(stream_cache))
  with ocp.CheckpointManager(str(tmp_path / "ckpt")) as manager:
    manager.restore(2, args=ocp.args.Composite(data=grain.checkpoint.CheckpointRestore(restored)))
  _assert_same(_take(restored, 3), full[2:])


@pytest.mark.slow
def test_two_workers_match_in_process_and_resume(stream_cache):
  """Spawns real Grain workers under pytest (absl flags unparsed here: google/grain#1355)."""
  in_process = _take(iter(_loader(stream_cache, seed=5)), 6)
  it = iter(_loader(stream_cache, seed=5, num_workers=2))
  try:
    _assert_same(_take(it, 4), in_process[:4])
    state = it.get_state()
  finally:
    it.close()
  resumed = iter(_loader(stream_cache, seed=5, num_workers=2))
  try:
    resumed.set_state(state)
    _assert_same(_take(resumed, 2), in_process[4:])
  finally:
    resumed.close()


def test_shards_split_videos_and_batch(stream_cache):
  videos = []
  for index in range(2):
    it = iter(_loader(stream_cache, global_batch_size=10, shard_index=index, num_shards=2))
    batches = _take(it, 5)
    assert batches[0]["image"].shape[0] == 5
    videos.append(set(np.concatenate([_decode(b["image"])[0] for b in batches]).tolist()))
  assert not videos[0] & videos[1]
  assert videos[0] | videos[1] == set(LABELED_A4C)
  with pytest.raises(ValueError, match="does not split"):
    _loader(stream_cache, global_batch_size=5, shard_index=0, num_shards=2)


def test_resize_and_three_channels(stream_cache):
  batch = _take(
      iter(_loader(stream_cache, image_size=16, channels=3, rotation_deg=0.0, brightness=0.0)), 1
  )[0]
  assert batch["image"].shape == (5, 16, 16, 3)
  np.testing.assert_array_equal(batch["image"][..., 0], batch["image"][..., 2])
  np.testing.assert_allclose(batch["image"][:, 0, 0, :], normalization.BLACK, rtol=1e-6)


def test_bad_arguments_raise_clear_errors(stream_cache, tmp_path):
  with pytest.raises(ValueError, match="unknown task"):
    _loader(stream_cache, tasks=["volume"])
  with pytest.raises(ValueError, match="channels"):
    _loader(stream_cache, channels=2)
  with pytest.raises(FileNotFoundError, match="no cache shards"):
    _loader(str(tmp_path))
