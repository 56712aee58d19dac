"""Tests for echonet_jax.data.dicom_header: unreadable files, hostile or corrupt headers fail fast,
in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pydicom
import pytest

from echonet_jax import errors
from echonet_jax.data import dicom
from tests.testing import REPO
from tests.testing import expect_read_error
from tests.testing import fan_video
from tests.testing import pydicom_file
from tests.testing import write_us_dicom

# ----------------------------------------------------------------------------- bad inputs


def test_missing_file(tmp_path):
  expect_read_error(errors.FileMissingError, str(tmp_path / "nope.dcm"), "does not exist")


def test_not_dicom(tmp_path):
  path = tmp_path / "notes.dcm"
  path.write_text("hello, this is not an image\n" * 20)
  expect_read_error(errors.NotDicomError, str(path), "not a DICOM")


@pytest.mark.parametrize(
    "name, fraction",
    [("color3d_jpeg_baseline.dcm", 0.5), ("OBXXXX1A_2frame.dcm", 0.6), ("OBXXXX1A_rle.dcm", 0.9)],
)
def test_truncated_inside_pixel_data(tmp_path, name, fraction):
  data = open(pydicom_file(name), "rb").read()
  path = tmp_path / "cut.dcm"
  path.write_bytes(data[: int(len(data) * fraction)])
  expect_read_error(errors.TruncatedFileError, str(path), "truncated")


def test_truncated_inside_header(tmp_path):
  path = tmp_path / "cut.dcm"
  path.write_bytes(open(pydicom_file("OBXXXX1A.dcm"), "rb").read()[:300])
  with pytest.raises(errors.EchoReadError) as info:  # no pixel data left to find
    dicom.read_echo(str(path), size=32)
  assert "truncated" in info.value.reason


def test_no_pixel_data(tmp_path):
  frames, _ = fan_video(num_frames=2)
  path = write_us_dicom(str(tmp_path / "x.dcm"), frames)
  ds = pydicom.dcmread(path)
  del ds.PixelData
  ds.save_as(path)
  expect_read_error(errors.NoPixelDataError, path, "no pixel data")


def test_not_ultrasound_and_override(tmp_path):
  frames, _ = fan_video(num_frames=4)
  path = write_us_dicom(str(tmp_path / "ct.dcm"), frames, modality="CT")
  expect_read_error(errors.NotUltrasoundError, path, "'CT'")
  clip = dicom.read_echo(path, size=32, allow_non_ultrasound=True)
  assert clip.frames.shape == (20, 32, 32)


def test_zero_frames(tmp_path):
  frames, _ = fan_video(num_frames=2)
  path = write_us_dicom(str(tmp_path / "zero.dcm"), frames)
  ds = pydicom.dcmread(path)
  ds.NumberOfFrames = 0
  ds.save_as(path)
  expect_read_error(errors.NoFramesError, path, "zero frames")


# ----------------------------------------------------------------------------- hostile headers


def _with_header(src: str, dst: str, **tags) -> str:
  ds = pydicom.dcmread(src)
  for key, value in tags.items():
    setattr(ds, key, value)
  ds.save_as(dst)
  return dst


def _header_bombs(tmp_path) -> dict[str, str]:
  """Files whose headers claim far more than they hold: 64 bytes of pixels, 2 billion frames..."""
  tiny = write_us_dicom(str(tmp_path / "tiny.dcm"), np.full((1, 8, 8), 100, np.uint8))
  color3d = pydicom_file("color3d_jpeg_baseline.dcm")
  return {
      "native_frames": _with_header(tiny, str(tmp_path / "a.dcm"), NumberOfFrames=2_000_000_000),
      "native_frames_vector": _with_header(
          tiny, str(tmp_path / "b.dcm"), NumberOfFrames=2_000_000_000, FrameTimeVector=[0, 33.3]
      ),
      "native_size": _with_header(tiny, str(tmp_path / "c.dcm"), Rows=65535, Columns=65535),
      "native_bits": _with_header(
          tiny, str(tmp_path / "d.dcm"), BitsAllocated=12, NumberOfFrames=100_000
      ),
      "compressed_frames": _with_header(
          color3d, str(tmp_path / "e.dcm"), NumberOfFrames=2_000_000_000
      ),
  }


_BOMB_SCRIPT = """
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
from echonet_jax.data import dicom
from echonet_jax import errors
bombs = json.loads(sys.argv[1])
dicom.read_echo(bombs.pop("warm_up"), size=64)  # imports pydicom's decoders: not the check's cost
out = {}
for name, path in bombs.items():
  start = time.perf_counter()
  try:
    dicom.read_echo(path, size=64)
    out[name] = ["read", "", 0.0]
  except errors.EchoReadError as e:
    out[name] = [type(e).__name__, e.reason, time.perf_counter() - start]
print(json.dumps(out))
"""


def test_header_bombs_are_one_fast_error_under_a_4gb_cap(tmp_path):
  bombs = _header_bombs(tmp_path)
  bombs["warm_up"] = pydicom_file("OBXXXX1A.dcm")
  proc = subprocess.run(
      [sys.executable, "-c", _BOMB_SCRIPT, json.dumps(bombs)],
      cwd=REPO,
      capture_output=True,
      text=True,
      timeout=120,
      env={**os.environ, "PYTHONPATH": REPO},
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  results = json.loads(proc.stdout.splitlines()[-1])
  expected = {
      "native_frames": ("TruncatedFileError", "corrupt header"),
      "native_frames_vector": ("TruncatedFileError", "2000000000 frames"),
      "native_size": ("UnsupportedImageError", "65535 x 65535"),
      "native_bits": ("UnsupportedImageError", "12 bits"),
      "compressed_frames": ("TruncatedFileError", "120 compressed fragments"),
  }
  for name, (error_type, fragment) in expected.items():
    got_type, reason, seconds = results[name]
    assert got_type == error_type, (name, results[name])
    assert fragment in reason, (name, reason)
    assert seconds < 0.5, (name, seconds)  # the check runs before any allocation or decoding


def test_pixel_data_shorter_than_the_header_is_refused_before_decoding(tmp_path, monkeypatch):
  frames, _ = fan_video(num_frames=4)
  path = write_us_dicom(str(tmp_path / "x.dcm"), frames)
  _with_header(path, path, NumberOfFrames=5)  # one frame more than the bytes hold
  monkeypatch.setattr(dicom, "decode_frames", lambda *a, **k: pytest.fail("decoded"))
  err = expect_read_error(errors.TruncatedFileError, path, "truncated file or corrupt header")
  assert "5 frames of 96 x 128 x 1 at 8 bits need 61440" in err.reason


def test_malformed_ultrasound_region_is_skipped(tmp_path):
  frames, fan = fan_video()
  path = write_us_dicom(str(tmp_path / "fan.dcm"), frames, regions=[(0, 0, 128, 96)])
  ds = pydicom.dcmread(path)
  ds.SequenceOfUltrasoundRegions[0].RegionSpatialFormat = [1, 7]  # two values where one belongs
  ds.save_as(path)
  clip = dicom.read_echo(path, size=48)
  assert (clip.sector_mask & fan).sum() / fan.sum() > 0.9
