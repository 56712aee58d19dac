"""Tests for echonet_jax.data.labels: schema validation, row-level errors, patient-level splits."""

from __future__ import annotations

import collections
import math
import os
import random

import pytest

from echonet_jax.data import labels
from echonet_jax import tasks


def _write(tmp_path, text: str, name: str = "labels.csv") -> str:
  path = tmp_path / name
  path.write_text(text)
  return str(path)


def test_reads_valid_csv_with_blanks_and_defaults(tmp_path):
  path = _write(tmp_path, "patient_id,study_id,path,ef,lvh,view,mask_path\n"
                          "p1,s1,videos/a.dcm,55.5,1,A4C,masks/a.npz\n"
                          "p2,s2,/abs/b.dcm,,0,,\n")
  rows = labels.read_labels(path)
  assert [r.video_id for r in rows] == ["s1_a", "s2_b"]
  assert rows[0].path == os.path.join(str(tmp_path), "videos", "a.dcm")
  assert rows[0].mask_path == os.path.join(str(tmp_path), "masks", "a.npz")
  assert rows[1].path == "/abs/b.dcm" and rows[1].mask_path == ""
  assert set(rows[0].labels) == set(tasks.TASK_NAMES) | {"view"}  # the view task's label too
  assert rows[0].labels["ef"] == 55.5 and rows[0].labels["lvh"] == 1.0
  assert math.isnan(rows[1].labels["ef"]) and math.isnan(rows[0].labels["age"])
  assert rows[0].view == "A4C" and rows[0].split == ""


def test_missing_required_column(tmp_path):
  path = _write(tmp_path, "patient_id,path\np,a.dcm\n")
  with pytest.raises(labels.LabelsError,
                     match=r"labels.csv:1: missing required column\(s\) study_id"):
    labels.read_labels(path)


def test_row_level_errors_name_line_and_column(tmp_path):
  path = _write(tmp_path, "patient_id,study_id,path,ef,sex,split,video_id\n"
                          "p1,s1,a.dcm,abc,1,train,v1\n"        # line 2: ef not a number
                          "p2,s2,b.dcm,50,2,train,v2\n"         # line 3: sex not 0/1
                          "p3,,c.dcm,50,1,train,v3\n"           # line 4: study_id blank
                          "p4,s4,d.dcm,inf,1,holdout,v4\n"      # line 5: ef inf, split bad
                          "p5,s5,e.dcm,40,0,test,v1\n")         # line 6: duplicate id
  with pytest.raises(labels.LabelsError) as info:
    labels.read_labels(path)
  text = str(info.value)
  for fragment in ("labels.csv:2: column 'ef': 'abc' is not a number",
                   "labels.csv:3: column 'sex': '2' must be 0 or 1",
                   "labels.csv:4: column 'study_id': required value is blank",
                   "labels.csv:5: column 'ef': 'inf' is not a finite number",
                   "labels.csv:5: column 'split': 'holdout' is not one of",
                   "labels.csv:6: column 'video_id': 'v1' repeats line 2"):
    assert fragment in text
  assert len(info.value.problems) == 6


def test_unknown_columns_warn(tmp_path):
  path = _write(tmp_path, "patient_id,study_id,path,notes\np,s,a.dcm,hello\n")
  with pytest.warns(UserWarning, match="ignoring unknown column"):
    rows = labels.read_labels(path)
  assert len(rows) == 1


def test_missing_csv():
  with pytest.raises(FileNotFoundError, match="nope.csv"):
    labels.read_labels("/nonexistent/nope.csv")


def _rows(n_patients: int, videos_each: int = 2):
  out = []
  for p in range(n_patients):
    for v in range(videos_each):
      out.append(labels.VideoRow(video_id=f"p{p}_v{v}", patient_id=f"p{p}", study_id=f"s{p}",
                                 path=f"/x/{p}_{v}.dcm", labels={}, line=2 + len(out)))
  return out


def test_splits_deterministic_patient_level_and_order_free():
  rows = _rows(2000)
  a = labels.assign_splits(rows, seed=3)
  shuffled = list(rows)
  random.Random(0).shuffle(shuffled)
  b = {r.video_id: r.split for r in labels.assign_splits(shuffled, seed=3)}
  assert {r.video_id: r.split for r in a} == b
  per_patient = collections.defaultdict(set)
  for r in a:
    per_patient[r.patient_id].add(r.split)
  assert all(len(s) == 1 for s in per_patient.values())
  counts = collections.Counter(next(iter(s)) for s in per_patient.values())
  assert 0.08 < counts["test"] / 2000 < 0.12          # ~10% of patients
  assert 0.07 < counts["val"] / 2000 < 0.11           # ~10% of the other 90%
  other = {r.video_id: r.split for r in labels.assign_splits(rows, seed=4)}
  assert other != b                                   # the seed matters


def test_existing_split_respected_and_spread_to_patient():
  rows = _rows(3)
  rows[0] = labels.VideoRow(**{**rows[0].__dict__, "split": "test"})  # p0's first video
  out = {r.video_id: r.split for r in labels.assign_splits(rows, seed=0)}
  assert out["p0_v0"] == "test" and out["p0_v1"] == "test"


def test_patient_in_two_splits_is_refused():
  rows = _rows(2)
  rows[0] = labels.VideoRow(**{**rows[0].__dict__, "split": "train"})
  rows[1] = labels.VideoRow(**{**rows[1].__dict__, "split": "test"})
  with pytest.raises(labels.LabelsError,
                     match=r"patient 'p0' \(lines 2, 3\) is in splits test, train"):
    labels.assign_splits(rows)
