"""Tests for echonet_jax.data.sector: cone detector, region boxes, crop/pad/resize geometry."""

from __future__ import annotations

import cv2
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
  labels = rng.integers(0, 2**12, size=(3, 60, 90)).astype(np.uint16)
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


# ----------------------------------------------------------------------------- fitted shapes


def test_fit_recovers_the_fan():
  frames, fan = fan_video(num_frames=10, rows=240, cols=320)  # apex (160, 8), +-40 deg, r 192
  found = sector.find_sector(frames)
  assert found.shape == "fan" and found.quality == "ok" and found.margin_px == 1.0
  p = found.params
  assert abs(p["apex_x"] - 160) < 1 and abs(p["apex_y"] - 8) < 1
  assert abs(p["left_deg"] + 40) < 0.5 and abs(p["right_deg"] - 40) < 0.5
  assert abs(p["r_far"] - 192) < 1 and p["r_near"] < 2
  assert not (found.mask & ~fan).any()
  assert (found.mask & fan).sum() / fan.sum() > 0.97
  assert not found.mask[:30, :60].any()  # burned-in "ID"


def test_margin_shrinks_the_shape():
  frames, fan = fan_video(num_frames=10, rows=240, cols=320)
  tight = sector.find_sector(frames, margin_px=0).mask
  loose = sector.find_sector(frames, margin_px=3).mask
  assert (loose & ~tight).sum() == 0
  distance = cv2.distanceTransform(tight.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
  assert distance[loose].min() > 2.5
  assert sector.safety_margin((480, 640)) == 2.0 and sector.safety_margin((240, 320)) == 1.0
  assert sector.safety_margin((1080, 1920)) == 2.0


def _text_stamp(text: str, shape: tuple[int, int], origin: tuple[int, int]) -> np.ndarray:
  canvas = np.zeros(shape, np.uint8)
  cv2.putText(canvas, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 255, 1, cv2.LINE_8)
  return canvas > 0


@pytest.mark.parametrize("clock", [False, True])
def test_text_touching_the_fan_edge_is_zeroed(clock):
  frames, fan = fan_video(num_frames=10, rows=240, cols=320)
  stamps = [
      _text_stamp(f"12:00:{t:02d}" if clock else "DOE 1961", fan.shape, (2, 110))
      for t in range(len(frames))
  ]
  # Slide the text right until one more pixel would put it into the fan: a 0 px gap.
  distance = cv2.distanceTransform((~fan).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
  union = np.logical_or.reduce(stamps)
  shift = 0
  while distance[np.roll(union, shift + 1, axis=1)].min() > 0:
    shift += 1
  assert 0 < distance[np.roll(union, shift, axis=1)].min() <= 1.5
  text = np.roll(union, shift, axis=1)
  for frame, stamp in zip(frames, stamps):
    frame[np.roll(stamp, shift, axis=1)] = 240
  for region in (None, sector.region_box_mask([(5, 0, 315, 200)], fan.shape)):
    found = sector.find_sector(frames, region)
    assert found.shape == "fan" and not (found.mask & text).any()


def test_linear_image_gives_a_rectangle_and_leaves_out_icons():
  rng = np.random.default_rng(1)
  frames = np.zeros((8, 160, 240), np.uint8)
  frames[:, 30:130, 20:220] = rng.integers(30, 200, size=(8, 100, 200))
  frames[:, 60:90, 12:28] = 250  # icons jutting out of both sides
  frames[:, 60:90, 212:230] = 250
  found = sector.find_sector(frames)
  assert found.shape == "rectangle"
  assert not found.mask[:, :20].any() and not found.mask[:, 220:].any()
  assert found.mask[35:125, 25:215].all()


def test_no_straight_edges_fall_back_to_the_hull():
  rng = np.random.default_rng(2)
  yy, xx = np.mgrid[:160, :200]
  disk = np.hypot(yy - 80, xx - 100) < 60
  frames = np.where(disk, rng.integers(30, 200, size=(6, 160, 200)), 0).astype(np.uint8)
  found = sector.find_sector(frames)
  assert found.shape == "hull" and found.quality == "ok"
  assert not (found.mask & ~disk).any() and (found.mask & disk).sum() > 0.95 * disk.sum()


@pytest.mark.parametrize(
    "frames, quality",
    [
        (np.zeros((3, 40, 50), np.uint8), "blank"),
        (np.full((3, 40, 50), 77, np.uint8), "blank"),
        (np.full((1, 1, 1), 255, np.uint8), "too_small"),
        (np.full((2, 20, 400), 255, np.uint8), "too_small"),
    ],
)
def test_degenerate_inputs_are_flagged(frames, quality):
  found = sector.find_sector(frames)
  assert found.quality == quality and found.shape == "whole" and found.mask.all()


def test_a_speck_is_no_sector():
  frames = np.zeros((3, 100, 100), np.uint8)
  frames[:, 40:45, 40:45] = 200
  found = sector.find_sector(frames)
  assert found.quality == "no_sector" and found.mask.all()
  region = sector.region_box_mask([(10, 10, 60, 60)], (100, 100))
  assert (sector.find_sector(frames, region).mask == region).all()  # the region, when given


def test_lossy_noise_alone_is_blank():
  rng = np.random.default_rng(3)
  frames = rng.integers(0, 6, size=(4, 64, 64)).astype(np.uint8)
  assert sector.find_sector(frames, noise_margin=sector.LOSSY_NOISE_MARGIN).quality == "blank"


def test_geometry_carries_quality_and_shape():
  geometry = sector.geometry_from_mask(np.ones((10, 20), bool), quality="blank", shape="whole")
  assert geometry.quality == "blank" and geometry.shape == "whole"
  assert sector.full_geometry((10, 20)).quality == "ok"
