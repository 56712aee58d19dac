"""Tests for echonet_jax.data.ingest (and its CLI): labels CSV -> cache, errors, resumability, machine
sharding."""

from __future__ import annotations

import csv
import math
import os

import numpy as np
import pytest

from echonet_jax import preprocess
from echonet_jax.data import cache
from echonet_jax.data import dicom
from echonet_jax.data import ingest
from echonet_jax.data.spec import CacheSpec
from echonet_jax.errors import CacheError
from tests.testing import fan_video
from tests.testing import write_us_dicom

SIZE = 32
NUM_FRAMES = 4


def _study(tmp_path, n_good: int = 6):
  """A labels CSV over small DICOMs: n_good good ones (one with masks) and four bad ones."""
  videos = tmp_path / "videos"
  videos.mkdir()
  rows = []
  for i in range(n_good):
    frames, _ = fan_video(num_frames=6, rows=48, cols=64, seed=i)
    write_us_dicom(str(videos / f"v{i}.dcm"), frames, frame_time=50.0)
    rows.append(
        {
            "patient_id": f"P{i // 2}",
            "study_id": f"S{i}",
            "path": f"videos/v{i}.dcm",
            "video_id": f"S{i}_v{i}",
            "ef": str(40 + i),
            "lvh": str(i % 2),
            "view": "A4C" if i != 5 else "PLAX",
        }
    )
  # masks for v0: bit 0 = left half of the image, bit 1 = the fan's rows 10..20
  masks = np.zeros((6, 48, 64), np.uint16)
  masks[:, :, :32] |= 1
  masks[:, 10:20, :] |= 2
  (tmp_path / "masks").mkdir()
  np.savez(tmp_path / "masks" / "v0.npz", masks=masks, mask_names=np.array(["left", "band"]))
  rows[0]["mask_path"] = "masks/v0.npz"
  (videos / "text.dcm").write_text("not an image")
  frames, _ = fan_video(num_frames=3, rows=48, cols=64)
  write_us_dicom(str(videos / "ct.dcm"), frames, modality="CT")
  data = open(str(videos / "v1.dcm"), "rb").read()
  (videos / "cut.dcm").write_bytes(data[: len(data) // 2])
  bad = [
      ("text.dcm", "NotDicomError"),
      ("ct.dcm", "NotUltrasoundError"),
      ("cut.dcm", "TruncatedFileError"),
      ("gone.dcm", "FileMissingError"),
  ]
  for j, (name, _) in enumerate(bad):
    rows.append(
        {
            "patient_id": f"B{j}",
            "study_id": f"B{j}",
            "path": f"videos/{name}",
            "ef": "",
            "lvh": "",
            "view": "A4C",
        }
    )
  columns = [
      "patient_id",
      "study_id",
      "path",
      "video_id",
      "ef",
      "lvh",
      "view",
      "mask_path",
      "split",
  ]
  for r in rows:  # fix the splits so the test knows them: P0 -> train, P1 -> val, P2 -> test
    r["split"] = {"P0": "train", "P1": "val", "P2": "test"}.get(r["patient_id"], "train")
  path = tmp_path / "labels.csv"
  with open(path, "w", newline="") as f:
    writer = csv.DictWriter(f, columns, restval="")
    writer.writeheader()
    writer.writerows(rows)
  return str(path), {n + 2 + n_good: kind for n, (_, kind) in enumerate(bad)}  # line: error


def _build(csv_path, out, workers=0, **spec):
  spec = CacheSpec(**{"num_frames": NUM_FRAMES, "image_size": SIZE, "videos_per_shard": 2, **spec})
  return ingest.build_cache(csv_path, str(out), spec, workers=workers, progress=False)


def _errors(out):
  with open(os.path.join(out, "errors.csv"), newline="") as f:
    return list(csv.DictReader(f))


def test_build_cache_end_to_end(tmp_path):
  csv_path, bad = _study(tmp_path)
  out = tmp_path / "cache"
  summary = _build(csv_path, out)
  assert summary["written"] == 6
  assert summary["failed"] == {
      "NotDicomError": 1,
      "NotUltrasoundError": 1,
      "TruncatedFileError": 1,
      "FileMissingError": 1,
  }
  errors = _errors(out)
  assert list(errors[0]) == ["line", "video_id", "error_type", "error"]  # no path column
  assert {int(e["line"]): e["error_type"] for e in errors} == bad
  assert all(e["video_id"] and e["error"] for e in errors)

  meta = cache.read_meta(str(out))
  assert meta["image_size"] == SIZE and meta["num_frames"] == NUM_FRAMES
  assert meta["interval_ms"] == 100 and meta["source"] == "labels_csv" and meta["complete"]
  assert (
      meta["build"]
      == CacheSpec(num_frames=NUM_FRAMES, image_size=SIZE, videos_per_shard=2).identity()
  )
  assert meta["splits"] == {"train": 2, "val": 2, "test": 2}
  assert meta["mask_names"] == ["left", "band"]
  assert meta["label_stats"]["ef"] == {"mean": 40.5, "std": 0.5, "n": 2}  # train = v0, v1

  source = cache.open_records(cache.shard_paths(str(out), "train"))
  records = [cache.decode_record(source[i]) for i in range(len(source))]
  assert [r["video_id"] for r in records] == ["S0_v0", "S1_v1"]
  first = records[0]
  assert first["frames"].shape == (NUM_FRAMES, SIZE, SIZE) and first["frames"].dtype == np.uint8
  assert first["frame_indices"].tolist() == [0, 2, 4, 0]  # 50 ms frames, 6 of them, loops
  assert first["frame_time_ms"] == 50.0 and first["fps_assumed"] is False
  assert first["patient_id"] == "P0" and first["study_id"] == "S0" and first["split"] == "train"
  assert first["view"] == "A4C"
  assert first["labels"]["ef"] == 40.0 and first["labels"]["lvh"] == 0.0
  assert math.isnan(first["labels"]["age"]) and len(first["labels"]) == 11
  assert first["labels"]["view"] == 0.0 and first["view_source"] == "csv"  # A4C: class 0
  masks = first["masks"]
  assert masks.shape == (NUM_FRAMES, SIZE, SIZE) and masks.dtype == np.uint16
  assert set(np.unique(masks)) <= {0, 1, 2, 3}
  # Masks went through the same geometry as the frames: recompute from the clip.
  clip = dicom.read_echo(str(tmp_path / "videos" / "v0.dcm"), NUM_FRAMES, 100, SIZE)
  np.testing.assert_array_equal(clip.frames, first["frames"])
  from echonet_jax.data import sector  # pylint: disable=g-import-not-at-top

  raw = np.load(tmp_path / "masks" / "v0.npz")["masks"][clip.frame_indices]
  np.testing.assert_array_equal(sector.apply_geometry(raw, clip.geometry, SIZE, "nearest"), masks)
  assert "masks" not in records[1]
  index = cache.read_index(str(out), "test")
  assert [row["video_id"] for row in index] == ["S4_v4", "S5_v5"]


def test_resume_skips_finished_shards_and_keeps_errors(tmp_path):
  csv_path, _ = _study(tmp_path)
  out = tmp_path / "cache"
  first = _build(csv_path, out)
  mtimes = {p: os.path.getmtime(p) for p in cache.shard_paths(str(out), "train")}
  second = _build(csv_path, out)
  assert second["written"] == 0 and second["shards_written"] == 0
  assert second["skipped"] == 10 and second["failed"] == {}
  assert second["changes"] == {"added": 0, "removed": 0, "relabelled": 0, "other_file": 0}
  assert {p: os.path.getmtime(p) for p in cache.shard_paths(str(out), "train")} == mtimes
  assert len(_errors(out)) == 4  # earlier failures are not lost
  assert cache.read_meta(str(out))["splits"] == first["meta"]["splits"]
  # A deleted shard is redone.
  os.remove(cache.shard_paths(str(out), "val")[0])
  third = _build(csv_path, out)
  assert third["written"] == 2 and third["shards_written"] == 1


def test_other_settings_refused(tmp_path):
  csv_path, _ = _study(tmp_path)
  out = tmp_path / "cache"
  _build(csv_path, out)
  with pytest.raises(CacheError, match=r"other settings \(image_size=32 \(now 33\)\)"):
    _build(csv_path, out, image_size=SIZE + 1)


def test_machines_split_the_shards(tmp_path):
  csv_path, _ = _study(tmp_path)
  single, multi = tmp_path / "single", tmp_path / "multi"
  _build(csv_path, single)
  spec = CacheSpec(num_frames=NUM_FRAMES, image_size=SIZE, videos_per_shard=2)
  part0 = ingest.build_cache(
      csv_path, str(multi), spec, workers=0, progress=False, shard_index=0, num_shards=2
  )
  assert not part0["meta"]["complete"]
  part1 = ingest.build_cache(
      csv_path, str(multi), spec, workers=0, progress=False, shard_index=1, num_shards=2
  )
  assert part0["shards_written"] + part1["shards_written"] == part1["meta"]["shards_expected"]
  assert part0["shards_written"] > 0 and part1["shards_written"] > 0
  meta_single, meta_multi = cache.read_meta(str(single)), cache.read_meta(str(multi))
  for key in ("splits", "label_stats", "mask_names", "complete", "failed"):
    assert meta_single[key] == meta_multi[key], key
  assert _errors(single) == _errors(multi)
  for split in cache.SPLITS:
    names = [os.path.basename(p) for p in cache.shard_paths(str(single), split)]
    assert names == [os.path.basename(p) for p in cache.shard_paths(str(multi), split)]
    for a, b in zip(cache.shard_paths(str(single), split), cache.shard_paths(str(multi), split)):
      ra, rb = cache.read_shard(a), cache.read_shard(b)
      assert [r["video_id"] for r in ra] == [r["video_id"] for r in rb]
      for x, y in zip(ra, rb):
        np.testing.assert_array_equal(x["frames"], y["frames"])


def test_views_filter_and_split_assignment(tmp_path):
  csv_path, _ = _study(tmp_path)
  out = tmp_path / "cache"
  summary = _build(csv_path, out, views=["a4c"])
  assert summary["views"] == {"kept": 9, "dropped": 1, "unknown": 0}
  ids = [r["video_id"] for s in cache.SPLITS for r in cache.read_index(str(out), s)]
  assert "S5_v5" not in ids and len(ids) == 5


def test_bad_csv_stops_before_any_work(tmp_path):
  path = tmp_path / "labels.csv"
  path.write_text("patient_id,study_id,path,ef\np,s,a.dcm,oops\n")
  with pytest.raises(ingest.labels_lib.LabelsError, match="labels.csv:2: column 'ef'"):
    ingest.build_cache(str(path), str(tmp_path / "cache"), progress=False, workers=0)
  assert not (tmp_path / "cache").exists()


def test_cli_runs_in_processes_and_prints_summary(tmp_path, capsys):
  csv_path, _ = _study(tmp_path, n_good=4)
  out = tmp_path / "cache"
  code = preprocess.main(
      [
          "--labels",
          csv_path,
          "--out",
          str(out),
          "--num_frames",
          "3",
          "--image_size",
          "24",
          "--workers",
          "2",
          "--videos_per_shard",
          "3",
          "--no_progress",
      ]
  )
  assert code == 0
  printed = capsys.readouterr().out
  assert "videos written: 4" in printed and "videos failed: 4" in printed
  assert "NotDicomError: 1" in printed and "errors.csv" in printed
  assert cache.read_meta(str(out))["num_frames"] == 3
  assert preprocess.main(["--labels", str(tmp_path / "none.csv"), "--out", str(out)]) == 2
