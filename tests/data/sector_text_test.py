"""Pixel de-identification: burned-in text near the fan never survives the sector mask.

Text (a name, and a clock that changes every frame) is drawn 0, 1, 2, 3 and 5 px from the true fan
of phantom studies and of pydicom-data's real color3d_jpeg_baseline.dcm cine, with and without
SequenceOfUltrasoundRegions; the fitted fan must keep none of it and match the true fan (IoU).
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pydicom
import pytest

from echonet_jax.data import dicom
from echonet_jax.data import dicom_header
from echonet_jax.data import sector
from echonet_jax.data import sector_fit
from echonet_jax.phantom import patients
from echonet_jax.phantom import render
from echonet_jax.phantom import writer
from tests.testing import pydicom_file
from tests.testing import write_us_dicom

GAPS = (0, 1, 2, 3, 5)
PLACES = ("left", "right", "below", "apex")
MIN_IOU = 0.95
# color3d_jpeg_baseline.dcm's fan, fitted once and checked by eye on a zoomed overlay.
COLOR3D_FAN = dict(
    apex_x=339.0, apex_y=18.0, left_deg=-42.7, right_deg=42.75, r_near=27.5, r_far=384.5
)
COLOR3D_REGION = (84, 31, 595, 414)


def text_stamps(strings, scale: float) -> list[np.ndarray]:
  """One bool stamp per string, all of one size (a clock's digits change, its box does not)."""
  font = cv2.FONT_HERSHEY_SIMPLEX
  sizes = [cv2.getTextSize(s, font, scale, 1) for s in strings]
  width = max(w for (w, _), _ in sizes) + 2
  height = max(h for (_, h), _ in sizes) + max(b for _, b in sizes) + 2
  stamps = []
  for s, ((_, h), _) in zip(strings, sizes):
    canvas = np.zeros((height, width), np.uint8)
    cv2.putText(canvas, s, (1, h + 1), font, scale, 255, 1, cv2.LINE_8)
    stamps.append(canvas > 0)
  return stamps


def place_text(fan: np.ndarray, gap: int, where: str, strings) -> list[np.ndarray]:
  """(H, W) bool text masks, one per string, slid towards ``fan`` from ``where`` until the
  nearest text pixel has exactly ``gap`` empty pixels (Euclidean, to within 1) between it and the
  fan: distance to the nearest fan pixel in (gap, gap + 1]."""
  stamps = text_stamps(strings, max(0.3, 0.45 * fan.shape[0] / 480))
  union = np.logical_or.reduce(stamps)
  th, tw = union.shape
  h, w = fan.shape
  distance = cv2.distanceTransform((~fan).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
  ys, xs = np.nonzero(fan)
  top, height = ys.min(), ys.max() - ys.min()
  y, x, step = {
      "left": (int(top + 0.45 * height), 0, (0, 1)),
      "right": (int(top + 0.3 * height), w - tw, (0, -1)),
      "below": (h - th, int(xs.mean()) - tw // 2, (-1, 0)),
      "apex": (top, w - tw, (0, -1)),
  }[where]
  ty, tx = np.nonzero(union)
  while distance[ty + y, tx + x].min() > gap + 1:
    y, x = y + step[0], x + step[1]
  assert distance[ty + y, tx + x].min() > gap, f"no room for text {where} of the fan"
  out = []
  for stamp in stamps:
    mask = np.zeros((h, w), bool)
    mask[y : y + th, x : x + tw] = stamp
    out.append(mask)
  return out


def draw_text(frames: np.ndarray, fan: np.ndarray, gap: int, clock: bool):
  """Copies of ``frames`` with text at ``gap`` px on four sides of ``fan``; (frames, text mask)."""
  frames = frames.copy()
  strings = (
      [f"12:{(34 + t) // 60:02d}:{(34 + t) % 60:02d}" for t in range(len(frames))]
      if clock
      else ["DOE^JANE 1961"]
  )
  text = np.zeros(fan.shape, bool)
  for where in PLACES:
    stamps = place_text(fan, gap, where, strings)
    for t, frame in enumerate(frames):
      frame[stamps[t % len(stamps)]] = 230
    text |= np.logical_or.reduce(stamps)
  assert not (text & fan).any()
  return frames, text


def iou(a: np.ndarray, b: np.ndarray) -> float:
  return float((a & b).sum() / (a | b).sum())


def box_of(mask: np.ndarray) -> tuple[int, int, int, int]:
  ys, xs = np.nonzero(mask)
  return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def phantom_video(index: int, rows: int = 480, cols: int = 640, num_frames: int = 20):
  rng = np.random.default_rng([11, index])
  return render.render_study(
      patients.sample_patient(rng),
      np.random.default_rng([11, index, 1]),
      "A4C",
      rows,
      cols,
      num_frames,
      100.0,
  )


# ----------------------------------------------------------------------------- phantom


@pytest.mark.parametrize("rows, cols, studies", [(480, 640, 24), (240, 320, 40), (120, 160, 40)])
def test_fitted_fan_matches_the_phantom_fan(rows, cols, studies):
  scores = []
  for index in range(studies):
    video = phantom_video(index, rows, cols)
    box = sector.region_box_mask([box_of(video.sector)], video.sector.shape)
    for region in (None, box):
      found = sector.find_sector(video.frames, region)
      assert found.shape == "fan" and found.quality == "ok"
      assert not (found.mask & video.overlay).any()
      scores.append(iou(found.mask, video.sector))
  print(
      f"{rows}x{cols}: IoU min {min(scores):.4f} mean {np.mean(scores):.4f}, "
      f"margin {sector.safety_margin((rows, cols))} px"
  )
  assert min(scores) >= MIN_IOU


def test_tiny_phantoms_keep_none_of_their_own_text():
  # At 128x96 the ECG sweep nearly touches the fan, and some fans render mostly black (so no IoU
  # bound here): the name, date, hospital, marks and ECG must still all be zeroed.
  for index in range(40):
    video = phantom_video(index, 96, 128)
    for region in (None, sector.region_box_mask([box_of(video.sector)], video.sector.shape)):
      assert not (sector.find_sector(video.frames, region).mask & video.overlay).any(), index


@pytest.mark.parametrize("rows, cols, index", [(480, 640, 0), (480, 640, 1), (240, 320, 2)])
def test_phantom_text_at_every_gap_is_zeroed(rows, cols, index):
  video = phantom_video(index, rows, cols)
  box = sector.region_box_mask([box_of(video.sector)], video.sector.shape)
  for gap in GAPS:
    for clock in (False, True):
      frames, text = draw_text(video.frames, video.sector, gap, clock)
      for region in (None, box):
        found = sector.find_sector(frames, region)
        where = f"gap {gap} px, clock {clock}, region {region is not None}"
        assert not (found.mask & text).any(), f"text survives: {where}"
        assert found.shape == "fan" and iou(found.mask, video.sector) >= MIN_IOU, where


@pytest.mark.parametrize("with_regions", [True, False])
def test_phantom_dicom_with_a_clock_touching_the_fan(tmp_path, with_regions):
  video = phantom_video(3)
  frames, text = draw_text(video.frames, video.sector, 0, clock=True)
  rng = np.random.default_rng(5)
  identity = patients.sample_patient(rng)["identity"]
  path = str(tmp_path / "clock.dcm")
  writer.write_dicom(
      path,
      dataclasses.replace(video, frames=frames),
      identity,
      seed=0,
      study_id="S0",
      video_id="S0_A4C",
      view="A4C",
  )
  if not with_regions:
    ds = pydicom.dcmread(path)
    del ds.SequenceOfUltrasoundRegions
    ds.save_as(path)
  clip = dicom.read_echo(path, num_frames=20, interval_ms=100, size=96)
  assert clip.frame_indices.tolist() == list(range(20))
  assert not (clip.sector_mask & text).any()
  assert iou(clip.sector_mask, video.sector) >= MIN_IOU
  assert clip.geometry.quality == "ok" and clip.geometry.shape == "fan"


# ----------------------------------------------------------------------------- real cine


@pytest.fixture(scope="module")
def color3d():
  """20 luma frames of color3d_jpeg_baseline.dcm (those read_echo samples), zeroed outside
  COLOR3D_FAN so that it is the exact truth, and that fan."""
  path = pydicom_file("color3d_jpeg_baseline.dcm")
  with dicom_header.quiet_pydicom():
    luma = dicom.decode_frames(dicom_header.read_dataset(path), list(range(0, 60, 3)), path)
  fan = sector_fit.shape_mask("fan", COLOR3D_FAN, luma.shape[1:])
  return sector.mask_outside(luma, fan), fan


def test_color3d_fan_is_fitted_as_is(color3d):
  path = pydicom_file("color3d_jpeg_baseline.dcm")
  clip = dicom.read_echo(path, size=64)
  assert clip.geometry.shape == "fan" and clip.geometry.quality == "ok"
  truth = sector_fit.shape_mask("fan", COLOR3D_FAN, clip.sector_mask.shape)
  assert iou(clip.sector_mask, truth) >= MIN_IOU
  assert not (clip.sector_mask & ~truth).any()


def jpeg(frames: np.ndarray, quality: int) -> np.ndarray:
  """Each frame through a JPEG encode and decode: ringing around the text and the fan's edge."""
  return np.stack(
      [
          cv2.imdecode(
              cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, quality])[1], cv2.IMREAD_GRAYSCALE
          )
          for f in frames
      ]
  )


@pytest.mark.parametrize("clock, jpeg_quality", [(False, None), (True, None), (True, 75)])
def test_color3d_text_at_every_gap_is_zeroed(color3d, clock, jpeg_quality):
  luma, fan = color3d
  region = sector.region_box_mask([COLOR3D_REGION], fan.shape)
  for gap in GAPS:
    frames, text = draw_text(luma, fan, gap, clock)
    if jpeg_quality:  # text burned in before the lossy compression, as a scanner would
      frames = jpeg(frames, jpeg_quality)
    for box in (None, region):
      found = sector.find_sector(frames, box, noise_margin=sector.LOSSY_NOISE_MARGIN)
      assert not (found.mask & text).any(), f"gap {gap}, region {box is not None}"
      assert found.shape == "fan" and iou(found.mask, fan) >= MIN_IOU


@pytest.mark.parametrize("with_regions", [True, False])
def test_color3d_rewritten_with_a_clock_through_read_echo(tmp_path, color3d, with_regions):
  luma, fan = color3d
  frames, text = draw_text(luma, fan, 0, clock=True)
  path = write_us_dicom(
      str(tmp_path / "c3d.dcm"),
      frames,
      frame_time=100.0,
      regions=[COLOR3D_REGION] if with_regions else None,
      LossyImageCompression="01",
  )
  clip = dicom.read_echo(path, num_frames=20, interval_ms=100, size=128)
  assert not (clip.sector_mask & text).any()
  assert iou(clip.sector_mask, fan) >= MIN_IOU
  # Nothing of the text reaches the cached frames: they hold only pixels inside the mask.
  assert (clip.frames > 0).sum() > 0
  kept = sector.apply_geometry(sector.mask_outside(frames, clip.sector_mask), clip.geometry, 128)
  np.testing.assert_array_equal(kept, clip.frames)


# ----------------------------------------------------------------------------- shapes, quality


@pytest.mark.parametrize(
    "name, shape",
    [
        ("color3d_jpeg_baseline.dcm", "fan"),
        ("OBXXXX1A.dcm", "fan"),
        ("JPGLosslessP14SV1_1s_1f_8b.dcm", "fan"),
        ("examples_ybr_color.dcm", "fan"),
        ("US1_UNCI.dcm", "rectangle"),
        ("examples_rgb_color.dcm", "rectangle"),
        ("gdcm-US-ALOKA-16.dcm", "hull"),  # two side-by-side images: no single shape fits
    ],
)
def test_real_files_get_their_shape(name, shape):
  clip = dicom.read_echo(pydicom_file(name), size=64)
  assert clip.geometry.shape == shape and clip.geometry.quality == "ok"


def test_linear_probe_icons_stay_outside():
  clip = dicom.read_echo(pydicom_file("US1_UNCI.dcm"), size=64)
  # The "PWR" bars jut out of both sides of the image (x < 14 and x > 622) at rows 110-200.
  assert not clip.sector_mask[:, :13].any() and not clip.sector_mask[:, 623:].any()
  assert clip.sector_mask[120:320, 30:600].all()


@pytest.mark.parametrize(
    "frames, quality",
    [
        (np.zeros((20, 64, 80), np.uint8), "blank"),
        (np.full((20, 64, 80), 90, np.uint8), "blank"),
        (np.full((3, 1, 1), 200, np.uint8), "too_small"),
    ],
)
def test_degenerate_dicoms_are_flagged(tmp_path, frames, quality):
  path = write_us_dicom(str(tmp_path / "x.dcm"), frames)
  clip = dicom.read_echo(path, num_frames=4, size=16)
  assert clip.geometry.quality == quality and clip.geometry.shape == "whole"
  assert clip.frames.shape == (4, 16, 16)
