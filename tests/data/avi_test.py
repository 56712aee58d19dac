"""Tests for echonet_jax.data.avi and data.video: phantom cines written as MJPG AVIs, real DICOMs."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from echonet_jax import errors
from echonet_jax import phantom
from echonet_jax.data import avi
from echonet_jax.data import dicom
from echonet_jax.data import sector
from echonet_jax.data import video
from tests.testing import REPO
from tests.testing import pydicom_file
from tests.testing import write_us_dicom


def _phantom(rows=240, cols=320, num_frames=30, frame_time_ms=50.0, seed=3):
  rng = np.random.default_rng(seed)
  return phantom.render_study(
      phantom.sample_patient(rng), rng, "A4C", rows, cols, num_frames, frame_time_ms
  )


def write_avi(path: str, frames: np.ndarray, fps: float) -> str:
  """Writes grayscale ``frames`` as an MJPG AVI (three equal channels, like EchoNet-Dynamic)."""
  rows, cols = frames.shape[1:]
  writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), fps, (cols, rows))
  assert writer.isOpened()
  for frame in frames:
    writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
  writer.release()
  return path


def _box(geometry):
  """The crop of a geometry (what reaches the output), without its reported shape and quality."""
  return (geometry.y0, geometry.y1, geometry.x0, geometry.x1, geometry.side)


@pytest.fixture(scope="module")
def phantom_avi(tmp_path_factory):
  study = _phantom()
  path = write_avi(str(tmp_path_factory.mktemp("avi") / "study.avi"), study.frames, fps=20.0)
  return study, path


def test_arbitrary_avi_is_sampled_and_its_burned_in_text_masked(phantom_avi):
  study, path = phantom_avi
  assert study.text.any() and not (study.text & study.sector).any()
  clip = avi.read_avi(path, num_frames=8, interval_ms=100, size=96)
  assert clip.frames.shape == (8, 96, 96) and clip.frames.dtype == np.uint8
  assert clip.frame_time_ms == 50.0 and not clip.fps_assumed and clip.timing_source == "avi"
  assert clip.frame_indices.tolist() == [0, 2, 4, 6, 8, 10, 12, 14]
  assert clip.num_source_frames == 30
  iou = (clip.sector_mask & study.sector).sum() / (clip.sector_mask | study.sector).sum()
  assert iou > 0.95, iou
  assert not (clip.sector_mask & study.text).any(), "burned-in text kept"
  # Cropped to the sector like a DICOM: the fan fills the output's width.
  ys, xs = np.nonzero(clip.frames.max(0))
  assert xs.min() <= 2 and xs.max() >= 93
  # The pixels match the source frames inside the sector (MJPG is lossy: loosely).
  expected = sector.apply_geometry(
      sector.mask_outside(study.frames[clip.frame_indices], clip.sector_mask),
      clip.geometry,
      96,
      "area",
  )
  assert np.abs(expected.astype(int) - clip.frames).mean() < 4


def test_sector_modes(phantom_avi):
  study, path = phantom_avi
  whole = avi.read_avi(path, num_frames=2, size=80, sector="none")
  assert whole.sector_mask.all() and _box(whole.geometry) == _box(sector.full_geometry((240, 320)))
  text_rows = np.nonzero(study.text.any(1))[0]
  assert whole.frames[:, (text_rows * 80) // 320 + 20].max() > 0  # letterboxed: text kept
  masked = avi.read_avi(path, num_frames=2, size=80, sector="mask")
  assert _box(masked.geometry) == _box(whole.geometry) and masked.geometry.shape == "fan"
  assert not (masked.sector_mask & study.text).any()
  with pytest.raises(ValueError, match="sector="):
    avi.read_avi(path, sector="crop")


def test_avi_timing_rules(tmp_path, caplog):
  frames = _phantom(rows=120, cols=160, num_frames=6).frames
  given = avi.read_avi(
      write_avi(str(tmp_path / "a.avi"), frames, 25.0),
      num_frames=3,
      interval_ms=40,
      size=32,
      fps=50.0,
  )
  assert given.frame_time_ms == 20.0 and given.timing_source == "FPS"
  assert given.frame_indices.tolist() == [0, 2, 4]
  with caplog.at_level("WARNING"):  # half a frame a second: 2,000 ms a frame is not an echo
    slow = avi.read_avi(
        write_avi(str(tmp_path / "b.avi"), frames, 0.5), num_frames=3, size=32, default_fps=10
    )
  assert slow.fps_assumed and slow.frame_time_ms == 100.0
  assert slow.timing_source == "default_fps: avi outside 1-1000 ms"
  assert any("outside 1-1000 ms" in r.getMessage() for r in caplog.records)


def test_long_avi_keeps_only_the_sampled_frames(tmp_path, monkeypatch):
  frames = np.repeat(_phantom(rows=120, cols=160, num_frames=10).frames, 30, axis=0)  # 300
  path = write_avi(str(tmp_path / "long.avi"), frames, 30.0)
  retrieved = []
  real_capture = cv2.VideoCapture

  class Counting:

    def __init__(self, *args):
      self._capture = real_capture(*args)

    def retrieve(self):
      retrieved.append(1)
      return self._capture.retrieve()

    def __getattr__(self, name):
      return getattr(self._capture, name)

  monkeypatch.setattr(avi.cv2, "VideoCapture", Counting)
  clip = avi.read_avi(path, num_frames=20, interval_ms=100, size=32)
  assert clip.num_source_frames == 300 and len(retrieved) == 20
  assert clip.frame_indices.tolist() == [3 * i for i in range(20)]


def test_bad_avis(tmp_path):
  with pytest.raises(errors.FileMissingError):
    avi.read_avi(str(tmp_path / "none.avi"))
  bad = tmp_path / "bad.avi"
  bad.write_bytes(b"RIFF\x10\x00\x00\x00AVI garbage")
  with pytest.raises(errors.EchoReadError) as info:
    video.read_video(str(bad))
  assert info.value.path == str(bad)
  with pytest.raises(errors.VideoReadError, match="folder"):
    avi.read_avi(str(tmp_path))


def test_read_video_dispatches_on_content_then_extension(tmp_path, phantom_avi):
  _, avi_path = phantom_avi
  real = pydicom_file("color3d_jpeg_baseline.dcm")
  misnamed_avi = shutil.copy(avi_path, tmp_path / "study.dcm")
  misnamed_dicom = shutil.copy(real, tmp_path / "cine.avi")
  assert video.kind_of(str(misnamed_avi)) == "video"
  assert video.kind_of(str(misnamed_dicom)) == "dicom"
  assert video.kind_of(str(tmp_path / "nothing_yet.mp4")) == "video"
  assert video.kind_of(str(tmp_path / "IMG0001")) == "dicom"
  from_dicom = video.read_video(str(misnamed_dicom), size=64)
  np.testing.assert_array_equal(from_dicom.frames, dicom.read_echo(real, size=64).frames)
  from_avi = video.read_video(str(misnamed_avi), num_frames=4, size=64)
  np.testing.assert_array_equal(
      from_avi.frames, avi.read_avi(avi_path, num_frames=4, size=64).frames
  )
  text = tmp_path / "notes.txt"
  text.write_text("not a video")
  with pytest.raises(errors.NotDicomError):
    video.read_video(str(text))


def test_read_video_passes_every_option_to_its_reader(tmp_path, monkeypatch):
  seen = {}
  monkeypatch.setattr(dicom, "read_echo", lambda *a, **k: seen.setdefault("dicom", (a, k)))
  monkeypatch.setattr(avi, "read_avi", lambda *a, **k: seen.setdefault("avi", (a, k)))
  cine, movie = tmp_path / "cine.dcm", tmp_path / "movie.avi"
  cine.write_bytes(b"\0" * 128 + b"DICM")
  movie.write_bytes(b"RIFF\0\0\0\0AVI LIST")
  options = dict(default_fps=25.0, allow_non_ultrasound=True, decoding_plugin="pillow")
  video.read_video(str(cine), 4, size=32, **options)
  video.read_video(str(movie), 4, size=32, fps=50.0, avi_sector="mask", **options)
  assert seen["dicom"] == ((str(cine), 4, 100, 32), options)
  assert seen["avi"] == ((str(movie), 4, 100, 32), dict(fps=50.0, sector="mask", default_fps=25.0))


def test_list_files_finds_avis_and_skips_non_videos(tmp_path, phantom_avi):
  folder = tmp_path / "inputs"
  (folder / "sub").mkdir(parents=True)
  shutil.copy(phantom_avi[1], folder / "a.avi")
  shutil.copy(pydicom_file("OBXXXX1A.dcm"), folder / "sub" / "IMG0001")
  (folder / "FileList.csv").write_text("FileName\n")
  (folder / ".hidden.avi").write_bytes(b"")
  listed = video.list_files([str(folder), str(tmp_path / "missing.avi")])
  assert listed == [
      str(folder / "a.avi"),
      str(folder / "sub" / "IMG0001"),
      str(tmp_path / "missing.avi"),
  ]


def test_read_for_model_follows_the_training_source(phantom_avi):
  from configs import default  # pylint: disable=g-import-not-at-top

  _, path = phantom_avi
  data = default.get_config("cpu").data
  assert _box(video.read_for_model(path, data).geometry) != _box(sector.full_geometry((240, 320)))
  data.echonet_dynamic_dir = "/somewhere"
  data.image_size = 0
  clip = video.read_for_model(path, data)
  assert clip.frames.shape[1:] == (112, 112)
  assert _box(clip.geometry) == _box(sector.full_geometry((240, 320)))


@pytest.mark.slow
def test_predict_and_saliency_on_an_avi_through_the_cli(trained_workdir, tmp_path):
  workdir = str(tmp_path / "model")
  shutil.copytree(trained_workdir("weight"), workdir)  # saliency writes into the workdir
  study = _phantom(seed=11)
  avi_path = write_avi(str(tmp_path / "patient.avi"), study.frames, 20.0)
  dcm_path = write_us_dicom(str(tmp_path / "patient.dcm"), study.frames, frame_time=50.0)
  bad_path = tmp_path / "broken.avi"
  bad_path.write_bytes(b"RIFF\x10\x00\x00\x00AVI nothing")
  out = str(tmp_path / "predictions.csv")
  launch = [
      sys.executable,
      os.path.join(REPO, "launch.py"),
      "--config=configs/weight.py:cpu",
      f"--workdir={workdir}",
  ]
  proc = subprocess.run(
      launch + ["--mode=predict", f"--input={avi_path},{dcm_path},{bad_path}", f"--output={out}"],
      cwd=REPO,
      capture_output=True,
      text=True,
      timeout=600,
  )
  assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
  with open(out, newline="") as f:
    rows = {os.path.basename(r["path"]): r for r in csv.DictReader(f)}
  assert rows["patient.avi"]["error_type"] == "" and rows["patient.dcm"]["error_type"] == ""
  assert rows["broken.avi"]["error_type"] in ("VideoReadError", "NoFramesError")
  from_avi, from_dcm = float(rows["patient.avi"]["weight"]), float(rows["patient.dcm"]["weight"])
  assert 20 < from_avi < 250 and float(rows["patient.avi"]["frame_time_ms"]) == 50.0
  # The same cine through MJPG and through DICOM: close predictions.
  assert abs(from_avi - from_dcm) < 0.15 * from_dcm, (
      from_avi,
      from_dcm,
  )  # measured: 76.0 vs 73.5 kg

  proc = subprocess.run(
      launch + ["--mode=saliency", f"--input={avi_path}", "--config.saliency.method=vanilla"],
      cwd=REPO,
      capture_output=True,
      text=True,
      timeout=600,
  )
  assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
  folder = os.path.join(workdir, "saliency", "inputs", "patient")
  with np.load(os.path.join(folder, "maps.npz")) as npz:
    assert npz["maps"].shape[0] == 20 and np.abs(npz["maps"]).sum() > 0
