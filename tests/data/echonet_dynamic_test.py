"""Tests for echonet_jax.data.echonet_dynamic and its cache import, on tiny AVIs written here."""

from __future__ import annotations

import csv
import math

import cv2
import numpy as np
import pytest

from echonet_jax import errors
from echonet_jax import preprocess
from echonet_jax.data import cache
from echonet_jax.data import echonet_dynamic
from echonet_jax.data import ingest
from echonet_jax.data import labels
from echonet_jax.data.spec import CacheSpec

FILELIST_COLUMNS = (
    "FileName",
    "EF",
    "ESV",
    "EDV",
    "FrameHeight",
    "FrameWidth",
    "FPS",
    "NumberOfFrames",
    "Split",
)


def _write_avi(path: str, num_frames: int, fps: float, seed: int) -> np.ndarray:
  rng = np.random.default_rng(seed)
  frames = np.zeros((num_frames, 112, 112), np.uint8)
  for t in range(num_frames):
    frames[t, 20:90, 20:90] = 40 + 10 * t  # brightness encodes the frame number
    frames[t, 50:60, 50:60] = rng.integers(0, 30)
  writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), fps, (112, 112))
  assert writer.isOpened()
  for frame in frames:
    writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))  # grayscale in three channels
  writer.release()
  return frames


def _dataset(tmp_path, with_extension: bool = False):
  root = tmp_path / "EchoNet-Dynamic"
  (root / "Videos").mkdir(parents=True)
  specs = [
      ("0XA", 60.0, 30.0, 75.0, 50, 12, "TRAIN"),
      ("0XB", 55.5, 40.0, 90.0, 50, 12, "TRAIN"),
      ("0XC", 35.0, 80.0, 120.0, 25, 8, "VAL"),
      ("0XD", 70.0, 20.0, 66.0, 50, 12, "TEST"),
  ]
  rows = []
  for i, (name, ef, esv, edv, fps, n, split) in enumerate(specs):
    _write_avi(str(root / "Videos" / f"{name}.avi"), n, fps, i)
    rows.append((name + (".avi" if with_extension else ""), ef, esv, edv, 112, 112, fps, n, split))
  with open(root / "FileList.csv", "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(FILELIST_COLUMNS)
    writer.writerows(rows)
  return str(root)


@pytest.mark.parametrize("with_extension", [False, True])
def test_read_filelist(tmp_path, with_extension):
  rows = echonet_dynamic.read_filelist(_dataset(tmp_path, with_extension))
  assert [r.video_id for r in rows] == ["0XA", "0XB", "0XC", "0XD"]
  assert [r.split for r in rows] == ["train", "train", "val", "test"]
  assert rows[0].labels["ef"] == 60.0 and rows[0].labels["esv"] == 30.0
  assert rows[0].labels["edv"] == 75.0 and math.isnan(rows[0].labels["age"])
  assert rows[2].fps == 25.0 and rows[0].view == "A4C"
  assert rows[0].path.endswith("Videos/0XA.avi")


def test_read_filelist_errors(tmp_path):
  root = tmp_path / "d"
  root.mkdir()
  with pytest.raises(FileNotFoundError, match="FileList.csv"):
    echonet_dynamic.read_filelist(str(root))
  (root / "FileList.csv").write_text(
      ",".join(FILELIST_COLUMNS) + "\n0X1,abc,1,2,112,112,50,10,TRAIN\n"
      "0X2,50,1,2,112,112,50,10,DEV\n"
  )
  with pytest.raises(labels.LabelsError) as info:
    echonet_dynamic.read_filelist(str(root))
  assert "FileList.csv:2: column 'EF'" in str(info.value)
  assert "FileList.csv:3: column 'Split'" in str(info.value)
  (root / "FileList.csv").write_text(",".join(FILELIST_COLUMNS) + "\n")
  with pytest.raises(
      labels.LabelsError, match="FileList.csv:1: the file list holds a header but " "no video rows"
  ):
    echonet_dynamic.read_filelist(str(root))
  (root / "FileList.csv").write_bytes(
      (",".join(FILELIST_COLUMNS) + "\n").encode() + b"0X\xe91,50,1,2,112,112,50,10,TRAIN\n"
  )
  with pytest.raises(labels.LabelsError, match="FileList.csv:2: the file is not UTF-8"):
    echonet_dynamic.read_filelist(str(root))


def test_read_avi_timing(tmp_path):
  root = _dataset(tmp_path)
  clip = echonet_dynamic.read_avi(
      f"{root}/Videos/0XA.avi", num_frames=4, interval_ms=100, size=56, fps=50.0
  )
  assert clip.frames.shape == (4, 56, 56) and clip.frame_time_ms == 20.0
  assert clip.frame_indices.tolist() == [0, 5, 10, 3]  # 12 frames at 20 ms loop after 240 ms
  levels = clip.frames[:, 15, 15].astype(int)  # source pixel (30, 30): 40 + 10 * frame
  np.testing.assert_allclose(levels, 40 + 10 * clip.frame_indices, atol=6)
  assert clip.sector_mask.all() and clip.sector_mask.shape == (112, 112)
  assumed = echonet_dynamic.read_avi(f"{root}/Videos/0XA.avi", num_frames=2, size=56)
  assert assumed.frame_time_ms == pytest.approx(20.0)  # from the file's own rate
  with pytest.raises(errors.FileMissingError):
    echonet_dynamic.read_avi(f"{root}/Videos/none.avi")
  bad = tmp_path / "bad.avi"
  bad.write_bytes(b"RIFF....garbage")
  with pytest.raises(errors.EchoReadError):
    echonet_dynamic.read_avi(str(bad))


def test_import_into_cache(tmp_path):
  root = _dataset(tmp_path)
  out = tmp_path / "cache"
  spec = CacheSpec(source="echonet_dynamic", num_frames=5, image_size=64)
  summary = ingest.build_echonet_dynamic_cache(root, str(out), spec, workers=0, progress=False)
  assert summary["written"] == 4 and summary["failed"] == {}
  meta = cache.read_meta(str(out))
  assert meta["source"] == "echonet_dynamic" and meta["image_size"] == 64
  assert meta["splits"] == {"train": 2, "val": 1, "test": 1}
  assert meta["label_stats"]["ef"]["n"] == 2
  assert meta["label_stats"]["ef"]["mean"] == pytest.approx(57.75)
  source = cache.open_records(cache.shard_paths(str(out), "val"))
  record = cache.decode_record(source[0])
  assert record["video_id"] == "0XC" and record["view"] == "A4C"
  assert record["frames"].shape == (5, 64, 64) and record["frame_time_ms"] == 40.0
  assert record["labels"]["edv"] == 120.0
  # The CLI reaches the same importer.
  assert (
      preprocess.main(
          [
              "--echonet_dynamic",
              root,
              "--out",
              str(tmp_path / "c2"),
              "--num_frames",
              "2",
              "--image_size",
              "16",
              "--workers",
              "0",
              "--no_progress",
          ]
      )
      == 0
  )
  assert cache.read_meta(str(tmp_path / "c2"))["splits"]["train"] == 2
