"""Tests for echonet_jax.interpret.scores: regions, localisation, dilation, checkerboard power."""

from __future__ import annotations

import numpy as np
import pytest

from echonet_jax.interpret import scores


def test_region_masks_decode_the_bit_field_and_combine_lv_with_the_wall():
  names = ["lv", "la", "myocardium"]
  masks = np.zeros((2, 4, 4), np.uint16)
  masks[0, 0, 0] = 1 | 4  # lv and myocardium overlap here
  masks[1, 1, 1] = 2
  masks[1, 2, 2] = 4
  regions = scores.region_masks(masks, names)
  assert set(regions) == {"lv", "la", "myocardium", "lv+myocardium"}
  assert regions["lv"].sum() == 1 and regions["la"][1, 1, 1] and regions["myocardium"].sum() == 2
  assert regions["lv+myocardium"].sum() == 2


def test_localisation_against_the_image_and_the_fan():
  size = 10
  region = np.zeros((2, size, size), bool)
  region[0, 2:4, 2:4] = True  # present in frame 0 only
  fan = np.zeros((size, size), bool)
  fan[:, :5] = True  # half the image
  maps = np.zeros((2, size, size), np.float32)
  maps[:, :, :5] = 1.0  # uniform inside the fan, zero outside
  score = scores.localisation(maps, region, fan)
  assert score["frames_present"] == 1
  assert score["area_fraction"] == pytest.approx(0.04)
  assert score["ratio"] == pytest.approx(2.0)  # the fan is half the image
  assert score["ratio_in_fan"] == pytest.approx(1.0)  # blind to the region within the fan
  maps[0] = region[0]
  assert scores.localisation(maps, region, fan)["ratio_in_fan"] == pytest.approx(1 / 0.08)
  absent = scores.localisation(maps, np.zeros_like(region), fan)
  assert absent["frames_present"] == 0 and np.isnan(absent["ratio"])


def test_dilate_fan_and_representative_frame():
  region = np.zeros((1, 9, 9), bool)
  region[0, 4, 4] = True
  assert scores.dilate(region, 2).sum() == 17  # cv2's 5×5 ellipse: the radius-2 disc and 4 more
  assert scores.dilate(region, 0) is region
  frames = np.zeros((2, 3, 3), np.uint8)
  frames[1, 0, 0] = 7
  assert scores.fan_mask(frames).sum() == 1
  assert scores.representative_frame(np.array([0.0, 0.9, 0.5, 1.0])) == 2


def test_stride_power_measures_a_checkerboard():
  rows, cols = np.mgrid[:32, :32]
  smooth = np.exp(-((rows - 16) ** 2 + (cols - 12) ** 2) / 60.0)
  checker = np.where((rows + cols) % 2, 1.0, -1.0)
  assert scores.stride_power(smooth) < 1e-4
  assert scores.stride_power(smooth + 0.3 * checker) > 0.5
  assert scores.stride_power(np.zeros((8, 8))) == 0.0
