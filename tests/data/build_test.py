"""Tests for echonet_jax.data.build: caches that follow their labels CSV, worker deaths, duplicates,
the views rule at build time and degenerate videos counted."""

from __future__ import annotations

import csv
import errno
import os
import shutil
import time

import numpy as np
import pytest

from configs import default
from echonet_jax.data import build
from echonet_jax.data import cache
from echonet_jax.data import extract
from echonet_jax.data import ingest
from echonet_jax.data import labels as labels_lib
from echonet_jax.data import prepare
from echonet_jax.data import shard_plan
from echonet_jax.data.spec import CacheSpec
from echonet_jax.errors import CacheError
from echonet_jax.errors import ConfigError
from tests.testing import fan_video
from tests.testing import write_us_dicom

SPEC = CacheSpec(num_frames=3, image_size=24, videos_per_shard=2)
COLUMNS = ["patient_id", "study_id", "path", "ef", "view", "split"]


def _videos(tmp_path, n: int) -> list[dict]:
  """n small DICOMs and their labels rows: patients P0..P(n-1), all train, ef 40 + i."""
  (tmp_path / "videos").mkdir(exist_ok=True)
  rows = []
  for i in range(n):
    frames, _ = fan_video(num_frames=4, rows=40, cols=48, seed=i)
    write_us_dicom(str(tmp_path / "videos" / f"v{i}.dcm"), frames, frame_time=50.0)
    rows.append(
        {
            "patient_id": f"P{i}",
            "study_id": f"S{i}",
            "path": f"videos/v{i}.dcm",
            "ef": str(40 + i),
            "view": "A4C",
            "split": "train",
        }
    )
  return rows


def _write(tmp_path, rows) -> str:
  path = tmp_path / "labels.csv"
  with open(path, "w", newline="") as f:
    writer = csv.DictWriter(f, COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
  return str(path)


def _prepare_config(tmp_path, rows, **data):
  """The ``:test`` ef config over ``rows`` (written to the labels CSV): 3 frames at 24 px, built in
  this process, with ``data`` on top."""
  config = default.get_config("test", task="ef")
  config.data.update(
      labels_csv=_write(tmp_path, rows), num_frames=3, image_size=24, preprocess_workers=0, **data
  )
  return config


def _labels(out) -> dict[str, float]:
  """{study_id: ef} of every video in the cache, from the records themselves."""
  out_labels = {}
  for path in cache.shard_paths(str(out), "train"):
    for record in cache.read_shard(path):
      out_labels[record["study_id"]] = record["labels"]["ef"]
  return out_labels


def test_rerun_follows_edited_added_and_removed_rows(tmp_path):
  rows = _videos(tmp_path, 6)
  csv_path = _write(tmp_path, rows[:5])
  out = tmp_path / "cache"
  first = ingest.build_cache(csv_path, str(out), SPEC, workers=0, progress=False)
  assert first["read"] == 5 and first["changes"] is None
  assert _labels(out) == {f"S{i}": 40.0 + i for i in range(5)}

  rows[1]["ef"] = "77"  # a corrected label
  edited = rows[:1] + rows[1:2] + rows[3:6]  # S2 removed, S5 added
  csv_path = _write(tmp_path, edited)
  second = ingest.build_cache(csv_path, str(out), SPEC, workers=0, progress=False)
  assert second["changes"] == {"added": 1, "removed": 1, "relabelled": 1, "other_file": 0}
  assert second["read"] == 1  # only the added video is decoded; the others are copied
  assert _labels(out) == {"S0": 40.0, "S1": 77.0, "S3": 43.0, "S4": 44.0, "S5": 45.0}
  meta = cache.read_meta(str(out))
  assert meta["complete"] and meta["splits"]["train"] == 5
  assert meta["label_stats"]["ef"]["n"] == 5
  assert not os.path.exists(out / build.STALE_DIR)
  assert shard_plan.is_current(str(out), labels_lib.read_labels(csv_path), SPEC)
  # The copied records keep their pixels byte for byte.
  fresh = tmp_path / "fresh"
  ingest.build_cache(csv_path, str(fresh), SPEC, workers=0, progress=False)
  for a, b in zip(cache.shard_paths(str(out), "train"), cache.shard_paths(str(fresh), "train")):
    for x, y in zip(cache.read_shard(a), cache.read_shard(b)):
      assert x["video_id"] == y["video_id"] and (x["frames"] == y["frames"]).all()
  printed = ingest.format_summary(second)
  assert "1 added, 1 removed, 1 relabelled" in printed


def test_prepare_cache_follows_the_labels_csv_as_the_launcher_calls_it(tmp_path):
  rows = _videos(tmp_path, 4)
  config = _prepare_config(tmp_path, rows)
  cache_dir = prepare.prepare_cache(config)
  assert cache_dir == prepare.default_cache_dir(config)
  assert _labels(cache_dir) == {f"S{i}": 40.0 + i for i in range(4)}
  stamp = os.path.getmtime(os.path.join(cache_dir, cache.META_FILE))
  assert prepare.prepare_cache(config) == cache_dir  # unchanged inputs: nothing rebuilt
  assert os.path.getmtime(os.path.join(cache_dir, cache.META_FILE)) == stamp
  rows[2]["ef"] = "61.5"
  _write(tmp_path, rows)
  assert prepare.prepare_cache(config) == cache_dir  # same folder, updated in place
  assert _labels(cache_dir)["S2"] == 61.5
  assert cache.read_meta(cache_dir)["label_stats"]["ef"]["mean"] == pytest.approx(
      (40 + 41 + 61.5 + 43) / 4
  )


def test_other_spec_in_a_given_cache_dir_is_refused_in_one_line(tmp_path):
  rows = _videos(tmp_path, 2)
  csv_path = _write(tmp_path, rows)
  ingest.build_cache(csv_path, str(tmp_path / "c"), SPEC, workers=0, progress=False)
  config = default.get_config("test", task="ef")
  config.data.update(labels_csv=csv_path, cache_dir=str(tmp_path / "c"), num_frames=3)
  with pytest.raises(CacheError) as info:
    prepare.prepare_cache(config)
  assert "\n" not in str(info.value) and "image_size=24 (now 75)" in str(info.value)


def test_a_killed_worker_never_hangs_the_build_and_its_video_is_an_error_row(tmp_path, monkeypatch):
  rows = _videos(tmp_path, 6)
  csv_path = _write(tmp_path, rows)
  victim = labels_lib.read_labels(csv_path)[3]
  out = tmp_path / "cache"
  monkeypatch.setenv(extract.KILL_ENV, victim.video_id)  # its reader SIGKILLs itself, like OOM
  start = time.monotonic()
  summary = ingest.build_cache(csv_path, str(out), SPEC, workers=2, progress=False)
  assert time.monotonic() - start < 120
  assert summary["failed"] == {"WorkerDiedError": 1} and summary["written"] == 5
  assert summary["meta"]["complete"]
  with open(out / build.ERRORS_FILE, newline="") as f:
    (error,) = list(csv.DictReader(f))
  assert error["line"] == "5" and error["video_id"] == victim.video_id
  assert "died" in error["error"]
  monkeypatch.delenv(extract.KILL_ENV)
  # A rerun resumes: nothing left to do; deleting the victim's shard retries it.
  again = ingest.build_cache(csv_path, str(out), SPEC, workers=2, progress=False)
  assert again["written"] == 0 and again["skipped"] == 6
  kept, _ = shard_plan.select_rows(labels_lib.read_labels(csv_path), SPEC)
  planned = shard_plan.plan_shards(kept, 2)
  shard = next(p.name for p in planned if victim.video_id in [r.video_id for r in p.rows])
  os.remove(out / shard)
  retried = ingest.build_cache(csv_path, str(out), SPEC, workers=2, progress=False)
  assert retried["written"] == 2 and retried["meta"]["failed"] == 0


def test_the_same_file_content_under_two_patients_is_an_error(tmp_path):
  rows = _videos(tmp_path, 3)
  shutil.copy(tmp_path / "videos" / "v0.dcm", tmp_path / "videos" / "copy.dcm")
  rows.append(dict(rows[0], patient_id="P9", study_id="S9", path="videos/copy.dcm"))
  csv_path = _write(tmp_path, rows)
  with pytest.raises(
      labels_lib.LabelsError,
      match=r"labels.csv:5: the same file content as line 2 under two patients " r"\(P0, P9\)",
  ):
    ingest.build_cache(csv_path, str(tmp_path / "c"), SPEC, workers=0, progress=False)
  assert not os.path.exists(tmp_path / "c" / cache.META_FILE)  # never a usable cache


def test_views_rule_at_build_time_and_degenerate_videos_counted(tmp_path):
  rows = _videos(tmp_path, 4)
  rows[1]["view"] = "plax"
  rows[2]["view"] = ""  # unknown: kept, counted
  write_us_dicom(str(tmp_path / "videos" / "v3.dcm"), np.zeros((4, 40, 48), np.uint8))  # black
  csv_path = _write(tmp_path, rows)
  spec = CacheSpec(num_frames=3, image_size=24, videos_per_shard=2, views=("a4c",))
  summary = ingest.build_cache(csv_path, str(tmp_path / "c"), spec, workers=0, progress=False)
  assert summary["views"] == {"kept": 3, "dropped": 1, "unknown": 1}
  index = cache.read_index(str(tmp_path / "c"), "train")
  assert sorted(r["study_id"] for r in index) == ["S0", "S2", "S3"]
  assert {r["study_id"]: r["quality"] for r in index} == {"S0": "ok", "S2": "ok", "S3": "blank"}
  assert summary["meta"]["degenerate"] == {"blank": 1}
  printed = ingest.format_summary(summary)
  assert "rows left out by the views rule: 1" in printed
  assert "1 rows have no view and were kept" in printed and "blank: 1" in printed


def test_a_cache_that_cannot_follow_its_labels_is_refused_in_one_line(tmp_path, monkeypatch):
  rows = _videos(tmp_path, 3)
  config = _prepare_config(tmp_path, rows, cache_dir=str(tmp_path / "c"))
  prepare.prepare_cache(config)
  rows[0]["ef"] = "50"
  _write(tmp_path, rows)

  def read_only(path, records):  # what a read-only or full disk does to the shard writer
    raise OSError(errno.EROFS, "Read-only file system", path + ".tmp")

  monkeypatch.setattr(cache, "write_shard", read_only)
  with pytest.raises(CacheError) as info:
    prepare.prepare_cache(config)
  message = str(info.value)
  assert "\n" not in message and "cannot update the cache (Read-only file system)" in message
  assert message.startswith(str(tmp_path / "c"))


def test_prepare_cache_fills_blank_views_through_the_injected_loader(tmp_path):
  rows = _videos(tmp_path, 4)
  for row in rows:
    row["view"] = ""  # no view in the CSV: the view model decides
  config = _prepare_config(
      tmp_path, rows, views=("A4C",), view_model=str(tmp_path / "view_workdir")
  )
  with pytest.raises(ConfigError, match="view_workdir.*needs a view-model loader"):
    prepare.prepare_cache(config)  # the data stage never loads a trained model itself
  asked = []

  def load(workdir, views):
    asked.append((workdir, tuple(views)))
    return lambda row: ("A2C", 0.9) if row.path.endswith("v1.dcm") else ("A4C", 0.8)

  cache_dir = prepare.prepare_cache(config, load_view_predictor=load)
  assert asked == [(str(tmp_path / "view_workdir"), ("A4C",))]
  assert set(_labels(cache_dir)) == {"S0", "S2", "S3"}  # S1 was predicted A2C: left out
