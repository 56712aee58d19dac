"""Tests for echonet_jax.data.dicom: real pydicom / pydicom-data files, timing rules, decoding."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pydicom
from pydicom.dataset import Dataset
import pytest

from echonet_jax import errors
from echonet_jax.data import clip as clip_lib
from echonet_jax.data import dicom
from echonet_jax.data import dicom_header
from echonet_jax.data import sector
from tests.testing import expect_read_error
from tests.testing import fan_video
from tests.testing import pydicom_file
from tests.testing import write_us_dicom

REAL_FILES = (
    # pydicom
    "examples_ybr_color.dcm",
    "examples_palette.dcm",
    "examples_rgb_color.dcm",
    "examples_jpeg2k.dcm",
    "ExplVR_BigEnd.dcm",
    # pydicom-data
    "color3d_jpeg_baseline.dcm",
    "OBXXXX1A.dcm",
    "OBXXXX1A_2frame.dcm",
    "OBXXXX1A_expb.dcm",
    "OBXXXX1A_expb_2frame.dcm",
    "OBXXXX1A_rle.dcm",
    "OBXXXX1A_rle_2frame.dcm",
    "US1_UNCI.dcm",
    "US1_UNCR.dcm",
    "US1_J2KI.dcm",
    "US1_J2KR.dcm",
    "gdcm-US-ALOKA-16.dcm",
    "gdcm-US-ALOKA-16_big.dcm",
    "JPGLosslessP14SV1_1s_1f_8b.dcm",
)


# ----------------------------------------------------------------------------- real files


@pytest.mark.parametrize("name", REAL_FILES)
def test_every_real_file_reads(name):
  clip = dicom.read_echo(pydicom_file(name), num_frames=20, interval_ms=100, size=64)
  assert clip.frames.shape == (20, 64, 64) and clip.frames.dtype == np.uint8
  assert clip.frame_indices.shape == (20,) and clip.frame_indices.dtype == np.int32
  assert 0 <= clip.frame_indices.min() and clip.frame_indices.max() < clip.num_source_frames
  ds = pydicom.dcmread(pydicom_file(name), stop_before_pixels=True)
  assert clip.sector_mask.shape == (ds.Rows, ds.Columns) and clip.sector_mask.dtype == bool
  assert 0.05 < clip.sector_mask.mean() <= 1.0
  assert clip.frames.max() > 0, "masked output is black"
  assert clip.source == pydicom_file(name)
  # Nothing in the clip can carry a tag value: only arrays, numbers, the geometry and the path.
  for field in ("frames", "frame_indices", "sector_mask"):
    assert isinstance(getattr(clip, field), np.ndarray)


def test_color3d_timing_and_sampling():
  clip = dicom.read_echo(pydicom_file("color3d_jpeg_baseline.dcm"))
  assert clip.frames.shape == (20, 299, 299)
  assert clip.num_source_frames == 120
  assert clip.frame_time_ms == pytest.approx(33.333, abs=1e-3)
  assert not clip.fps_assumed and clip.timing_source == "FrameTime"
  assert clip.frame_indices.tolist() == [3 * i for i in range(20)]  # 100 ms = 3 frames


def _raw_luma(name: str, index: int = 0) -> np.ndarray:
  ds = dicom_header.read_dataset(pydicom_file(name))
  return dicom.decode_frames(ds, [index])[0]


@pytest.mark.parametrize(
    "name, text_boxes, fan_box",
    [
        # (y0, y1, x0, x1) at source resolution, read off a gridded picture of each file: burned-in
        # text, icons, ECG trace and scales outside the fan; a box well inside the fan.
        (
            "color3d_jpeg_baseline.dcm",
            [(0, 60, 0, 75), (25, 200, 585, 640), (455, 480, 80, 560), (395, 415, 570, 595)],
            (200, 330, 250, 450),
        ),
        (
            "examples_ybr_color.dcm",
            [(0, 30, 0, 38), (12, 100, 292, 320), (228, 240, 40, 280)],
            (100, 165, 125, 225),
        ),
        (
            "OBXXXX1A.dcm",
            [(0, 55, 0, 800), (60, 260, 0, 110), (470, 520, 130, 200), (80, 210, 775, 800)],
            (200, 400, 300, 500),
        ),
        (
            "JPGLosslessP14SV1_1s_1f_8b.dcm",
            [(20, 240, 10, 340), (690, 745, 60, 380), (725, 750, 930, 995), (120, 330, 960, 985)],
            (300, 550, 350, 650),
        ),
    ],
)
def test_burned_in_text_is_masked_and_fan_kept(name, text_boxes, fan_box):
  clip = dicom.read_echo(pydicom_file(name), size=128)
  raw = _raw_luma(name, int(clip.frame_indices[0]))
  mask = clip.sector_mask
  for y0, y1, x0, x1 in text_boxes:
    assert raw[y0:y1, x0:x1].max() > 90, "the box should hold burned-in text in the source"
    assert not mask[y0:y1, x0:x1].any(), f"text box {(y0, y1, x0, x1)} is inside the mask"
  y0, y1, x0, x1 = fan_box
  assert mask[y0:y1, x0:x1].all(), "the fan's interior must be kept"
  assert (sector.mask_outside(raw, mask)[y0:y1, x0:x1] > 0).mean() > 0.8
  # In the output, pixels mapped from outside the mask (away from its edge) are zero.
  inside = sector.apply_geometry(mask, clip.geometry, 128, "nearest").astype(np.uint8)
  kernel = np.ones((3, 3), np.uint8)
  far_outside = cv2.erode(1 - inside, kernel).astype(bool)
  assert clip.frames[:, far_outside].max(initial=0) == 0
  assert clip.frames[:, cv2.erode(inside, kernel).astype(bool)].max() > 100


def test_synthetic_fan_is_found_without_regions(tmp_path):
  frames, fan = fan_video()
  path = write_us_dicom(str(tmp_path / "fan.dcm"), frames)
  clip = dicom.read_echo(path, size=48)
  inter = (clip.sector_mask & fan).sum()
  assert inter / fan.sum() > 0.95  # fan kept
  assert inter / clip.sector_mask.sum() > 0.9  # little else
  assert not clip.sector_mask[:14, :30].any()  # burned-in "ID" text
  assert not clip.sector_mask[-6:].any()  # ECG sweep


def test_regions_larger_than_image_are_clipped(tmp_path):
  frames, fan = fan_video()
  path = write_us_dicom(str(tmp_path / "fan.dcm"), frames, regions=[(20, 5, 500, 400)])
  clip = dicom.read_echo(path, size=48)
  assert (clip.sector_mask & fan).sum() / fan.sum() > 0.9
  assert not clip.sector_mask[:, :20].any()  # left of the region


def test_ybr_uses_luma_of_native_y_plane():
  path = pydicom_file("examples_ybr_color.dcm")
  ds = pydicom.dcmread(path)
  rgb = ds.pixel_array[0]  # pydicom converts to RGB
  luma = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(int)
  y = dicom.decode_frames(dicom_header.read_dataset(path), [0])[0].astype(int)
  assert np.abs(y - luma).mean() < 1.0


# ----------------------------------------------------------------------------- decoding cost


def test_only_needed_frames_are_decoded(monkeypatch):
  from pydicom.pixels.decoders import base  # pylint: disable=g-import-not-at-top

  decoded = []
  original = base.DecodeRunner.decode

  def counting(self, index):
    decoded.append(index)
    return original(self, index)

  monkeypatch.setattr(base.DecodeRunner, "decode", counting)
  clip = dicom.read_echo(pydicom_file("color3d_jpeg_baseline.dcm"))
  assert sorted(decoded) == sorted(set(clip.frame_indices.tolist()))
  assert len(decoded) == 20


def test_reading_20_frames_is_faster_than_full_decode():
  path = pydicom_file("color3d_jpeg_baseline.dcm")
  dicom.read_echo(path)  # warm up imports
  ours = min(_timed(lambda: dicom.read_echo(path)) for _ in range(2))
  ds = dicom_header.read_dataset(path)
  # All 120 frames with the same decoder and no colour conversion (pydicom's pixel_array is slower).
  full = _timed(lambda: dicom.decode_frames(ds, range(120), path))
  assert ours < full / 2, (ours, full)


def _timed(fn) -> float:
  start = time.perf_counter()
  fn()
  return time.perf_counter() - start


# ----------------------------------------------------------------------------- timing rules


def _ds(**tags) -> Dataset:
  ds = Dataset()
  for key, value in tags.items():
    setattr(ds, key, value)
  return ds


def _timing(ds, n, **kwargs):
  timing = dicom.frame_timing(ds, n, **kwargs)
  return timing.frame_time_ms, timing.source


def test_timing_tag_order():
  both = _ds(FrameTime=40.0, CineRate=10, RecommendedDisplayFrameRate=5)
  assert _timing(both, 3) == (40.0, "FrameTime")
  vector = dicom.frame_timing(_ds(FrameTimeVector=[0, 20, 30, 50], CineRate=10), 4)
  assert vector.source == "FrameTimeVector" and vector.times_ms.tolist() == [0, 20, 50, 100]
  assert vector.frame_time_ms == pytest.approx(100 / 3) and not vector.assumed
  assert _timing(_ds(CineRate=25, RecommendedDisplayFrameRate=5), 2) == (40.0, "CineRate")
  assert _timing(_ds(RecommendedDisplayFrameRate=50), 2) == (20.0, "RecommendedDisplayFrameRate")
  assert _timing(_ds(), 2, default_fps=25) == (40.0, "default_fps")
  # Invalid values fall through to the next source.
  assert _timing(_ds(FrameTime=0, CineRate=20), 2) == (50.0, "CineRate")


@pytest.mark.parametrize(
    "tags, rejected",
    [
        ({"FrameTime": 0.01}, "FrameTime"),
        ({"FrameTime": 5000.0}, "FrameTime"),
        ({"FrameTimeVector": [0, 0.001, 0.002]}, "FrameTimeVector"),
        ({"CineRate": 5000}, "CineRate"),
        ({"RecommendedDisplayFrameRate": 2000}, "RecommendedDisplayFrameRate"),
        ({"FrameTime": 1e-6, "CineRate": 0.1}, "FrameTime, CineRate"),
    ],
)
def test_implausible_frame_time_is_missing_with_a_warning(tags, rejected, caplog):
  with caplog.at_level("WARNING"):
    timing = dicom.frame_timing(_ds(**tags), 3, default_fps=25)
  assert timing.assumed and timing.frame_time_ms == 40.0
  assert timing.source == f"default_fps: {rejected} outside 1-1000 ms"
  warnings = [r for r in caplog.records if r.name.startswith("echonet_jax")]
  assert len(warnings) == 1 and rejected in warnings[0].getMessage()
  # The warning names neither a value nor a file.
  assert not any(str(v) in warnings[0].getMessage() for v in tags.values())


def test_implausible_frame_time_falls_through_to_a_plausible_tag():
  assert _timing(_ds(FrameTime=0.05, CineRate=50), 3) == (20.0, "CineRate")
  # The limits themselves are plausible.
  assert _timing(_ds(FrameTime=1.0), 3) == (1.0, "FrameTime")
  assert _timing(_ds(FrameTime=1000.0), 3) == (1000.0, "FrameTime")


def test_implausible_frame_time_in_a_written_file(tmp_path):
  frames, _ = fan_video(num_frames=8)
  path = write_us_dicom(str(tmp_path / "t.dcm"), frames, frame_time=0.001)
  clip = dicom.read_echo(path, num_frames=3, size=32, default_fps=10)
  assert clip.fps_assumed and clip.frame_time_ms == 100.0
  assert clip.timing_source.startswith("default_fps: FrameTime")
  assert clip.frame_indices.tolist() == [0, 1, 2]


def _brute_force_indices(times, frame_time, num_frames, interval):
  """The definition: nearest point of the looped grid, ties to the earlier frame."""
  period = times[-1] + frame_time
  targets = np.mod(np.arange(num_frames) * float(interval), period)
  grid = np.append(times, period)
  return np.abs(targets[:, None] - grid[None, :]).argmin(axis=1) % len(times)


def test_fast_sampling_matches_the_definition():
  rng = np.random.default_rng(0)
  for _ in range(300):
    n = int(rng.integers(2, 200))
    ft = float(rng.choice([33.3, 40.0, 20.0, 16.667, rng.uniform(1, 200)]))
    interval = float(rng.choice([100.0, 40.0, 33.3, rng.uniform(1, 500)]))
    t = int(rng.integers(1, 40))
    uniform = np.arange(n) * ft
    expected = _brute_force_indices(uniform, ft, t, interval)
    assert clip_lib.sample_uniform(n, ft, t, interval).tolist() == expected.tolist()
    assert clip_lib.sample_indices(uniform, ft, t, interval).tolist() == expected.tolist()
    uneven = np.cumsum(np.concatenate([[0.0], rng.choice([0.0, 10.0, 25.0, 70.0], n - 1)]))
    if uneven[-1] > 0:
      assert (
          clip_lib.sample_indices(uneven, ft, t, interval).tolist()
          == _brute_force_indices(uneven, ft, t, interval).tolist()
      )


def test_sampling_cost_does_not_grow_with_the_frame_count():
  start = time.perf_counter()
  idx = clip_lib.sample_uniform(2_000_000_000, 33.3, 20, 100)
  assert time.perf_counter() - start < 0.01
  assert idx.tolist() == [3 * i for i in range(20)]


def test_nearest_frame_and_wrap_around():
  times = np.arange(10) * 40.0  # 10 frames, 400 ms loop
  idx = clip_lib.sample_indices(times, 40.0, 6, 100)
  # 0, 100 -> frame 2 (80) or 3 (120): nearest is tie-broken low; 200 -> 5; 300 -> 7/8; 400 -> 0
  assert idx.tolist() == [0, 2, 5, 7, 0, 2]
  assert clip_lib.sample_indices(np.zeros(1), 33.0, 4, 100).tolist() == [0, 0, 0, 0]
  vector_times = np.array([0.0, 10.0, 200.0])  # uneven (FrameTimeVector): 100 ms is nearest 10
  assert clip_lib.sample_indices(vector_times, 100.0, 4, 100).tolist() == [0, 1, 2, 0]


@pytest.mark.parametrize(
    "tags, expected_ms, assumed",
    [
        ({"frame_time": 50.0}, 50.0, False),
        ({"frame_time": None, "FrameTimeVector": [0] + [25] * 7}, 25.0, False),
        ({"frame_time": None, "CineRate": 20}, 50.0, False),
        ({"frame_time": None, "RecommendedDisplayFrameRate": 40}, 25.0, False),
        ({"frame_time": None}, 1000 / 30, True),
    ],
)
def test_timing_from_written_files(tmp_path, tags, expected_ms, assumed):
  frames, _ = fan_video(num_frames=8)
  path = write_us_dicom(str(tmp_path / "t.dcm"), frames, **tags)
  clip = dicom.read_echo(path, num_frames=6, interval_ms=100, size=32)
  assert clip.frame_time_ms == pytest.approx(expected_ms)
  assert clip.fps_assumed == assumed
  # A clip of 8 frames is shorter than 600 ms: it wraps around instead of failing.
  period = 8 * expected_ms
  expected = [round(((i * 100) % period) / expected_ms) % 8 for i in range(6)]
  assert clip.frame_indices.tolist() == expected


def test_default_fps_is_configurable(tmp_path):
  frames, _ = fan_video(num_frames=8)
  path = write_us_dicom(str(tmp_path / "t.dcm"), frames, frame_time=None)
  clip = dicom.read_echo(path, num_frames=3, size=32, default_fps=10)
  assert clip.fps_assumed and clip.frame_time_ms == 100.0
  assert clip.frame_indices.tolist() == [0, 1, 2]


# ----------------------------------------------------------------------------- decoder errors


def test_compression_without_decoder(tmp_path):
  frames, _ = fan_video(num_frames=2)
  path = write_us_dicom(str(tmp_path / "mpeg.dcm"), frames)
  ds = pydicom.dcmread(path)
  ds.file_meta.TransferSyntaxUID = pydicom.uid.MPEG4HP41
  ds.PixelData = pydicom.encaps.encapsulate([b"\x00\x00\x01\xb3" * 8])
  ds["PixelData"].VR = "OB"
  ds.save_as(path, enforce_file_format=True)
  expect_read_error(errors.MissingDecoderError, path, "MPEG-4")


def test_errors_pickle_for_worker_processes():
  import pickle  # pylint: disable=g-import-not-at-top

  err = pickle.loads(pickle.dumps(errors.NoFramesError("a.dcm", "why")))
  assert type(err) is errors.NoFramesError and str(err) == "a.dcm: why"
