"""Tests for echonet_jax.data.sector: cone detector, region boxes, crop/pad/resize geometry."""

from __future__ import annotations

import numpy as np
import pytest

from echonet_jax.data import sector
from tests.testing import fan_video


def test_region_box_mask_clips_to_image():
  mask = sector.region_box_mask([(10, 5, 900, 700)], (40, 60))
  assert mask.shape == (40, 60)
  assert mask[5:, 10:].all() and not mask[:5].any() and not mask[:, :10].any()
  assert sector.region_box_mask([(100, 100, 200, 200)], (40, 60)) is None
  assert sector.region_box_mask([], (40, 60)) is None


def test_detects_moving_fan_and_drops_static_text():
  frames, fan = fan_video(num_frames=10, rows=120, cols=160)
  mask = sector.detect_sector(frames)
  assert (mask & fan).sum() / fan.sum() > 0.95
  assert (mask & ~fan).sum() / fan.sum() < 0.05
  assert not mask[:14, :30].any()


def test_single_frame_uses_brightness():
  frames, fan = fan_video(num_frames=1, rows=120, cols=160)
  mask = sector.detect_sector(frames[0])
  assert (mask & fan).sum() / fan.sum() > 0.95
  assert not mask[:14, :30].any()


def test_disagreeing_region_is_ignored():
  frames, fan = fan_video(num_frames=10, rows=120, cols=160)
  wrong = sector.region_box_mask([(100, 0, 159, 119)], (120, 160))  # cuts the fan in half
  mask = sector.detect_sector(frames, wrong)
  assert (mask & fan).sum() / fan.sum() > 0.95


def test_agreeing_region_restricts_search():
  frames, fan = fan_video(num_frames=1, rows=120, cols=160)
  frames[0, 100:118, 2:40] = 200  # a big bright block the region leaves out
  region = sector.region_box_mask([(20, 5, 140, 99)], (120, 160))
  mask = sector.detect_sector(frames, region)
  assert not mask[100:].any()
  assert (mask & fan).sum() / fan.sum() > 0.9


def test_empty_input_gives_whole_image():
  assert sector.detect_sector(np.zeros((3, 20, 30), np.uint8)).all()


def test_geometry_crops_pads_and_centres():
  mask = np.zeros((50, 80), bool)
  mask[10:30, 20:60] = True  # 20 x 40 box
  geometry = sector.geometry_from_mask(mask)
  assert (geometry.y0, geometry.y1, geometry.x0, geometry.x1) == (10, 30, 20, 60)
  assert geometry.side == 40 and geometry.pad_top == 10 and geometry.pad_left == 0
  image = np.zeros((50, 80), np.uint8)
  image[10:30, 20:60] = 7
  out = sector.apply_geometry(image, geometry, 40, "nearest")
  assert out.shape == (40, 40)
  assert (out[10:30] == 7).all() and (out[:10] == 0).all() and (out[30:] == 0).all()


def test_masks_follow_frames_exactly():
  rng = np.random.default_rng(0)
  mask = np.zeros((60, 90), bool)
  mask[5:55, 10:80] = True
  geometry = sector.geometry_from_mask(mask)
  labels = rng.integers(0, 2 ** 12, size=(3, 60, 90)).astype(np.uint16)
  frames = (labels % 251).astype(np.uint8)
  out_labels = sector.apply_geometry(labels, geometry, 35, "nearest")
  out_frames = sector.apply_geometry(frames, geometry, 35, "nearest")
  assert out_labels.dtype == np.uint16 and out_labels.shape == (3, 35, 35)
  np.testing.assert_array_equal(out_labels % 251, out_frames)  # same pixels picked
  assert set(np.unique(out_labels)) <= set(np.unique(labels)) | {0}  # no blending of bits


def test_apply_geometry_batches_and_area_resize():
  geometry = sector.full_geometry((64, 64))
  frames = np.full((2, 5, 64, 64), 100, np.uint8)
  out = sector.apply_geometry(frames, geometry, 16, "area")
  assert out.shape == (2, 5, 16, 16) and (out == 100).all()
  with pytest.raises(ValueError, match="source shape"):
    sector.apply_geometry(np.zeros((10, 10)), geometry, 16)
  with pytest.raises(ValueError, match="interpolation"):
    sector.apply_geometry(frames, geometry, 16, "cubic")
