"""Tests for echonet_jax.data.labels: schema validation, row-level errors, patient-level splits."""

from __future__ import annotations

import collections
import math
import os
import random

import pytest

from echonet_jax import tasks
from echonet_jax.data import labels


def _write(tmp_path, text: str, name: str = "labels.csv") -> str:
  path = tmp_path / name
  path.write_text(text)
  return str(path)


def _read_error(path: str) -> labels.LabelsError:
  """The LabelsError that ``read_labels(path)`` raises."""
  with pytest.raises(labels.LabelsError) as info:
    labels.read_labels(path)
  return info.value


def test_reads_valid_csv_with_blanks_and_defaults(tmp_path):
  path = _write(
      tmp_path,
      "patient_id,study_id,path,ef,lvh,view,mask_path\n"
      "p1,s1,videos/a.dcm,55.5,1,A4C,masks/a.npz\n"
      "p2,s2,/abs/b.dcm,,0,,\n",
  )
  rows = labels.read_labels(path)
  assert [r.video_id for r in rows] == [
      labels.default_video_id("p1", "s1", "videos/a.dcm"),
      labels.default_video_id("p2", "s2", "/abs/b.dcm"),
  ]
  assert rows[0].path == os.path.join(str(tmp_path), "videos", "a.dcm")
  assert rows[0].mask_path == os.path.join(str(tmp_path), "masks", "a.npz")
  assert rows[1].path == "/abs/b.dcm" and rows[1].mask_path == ""
  assert set(rows[0].labels) == set(tasks.TASK_NAMES) | {"view"}  # the view task's label too
  assert rows[0].labels["ef"] == 55.5 and rows[0].labels["lvh"] == 1.0
  assert math.isnan(rows[1].labels["ef"]) and math.isnan(rows[0].labels["age"])
  assert rows[0].view == "A4C" and rows[0].split == ""


def test_missing_required_column(tmp_path):
  path = _write(tmp_path, "patient_id,path\np,a.dcm\n")
  assert "labels.csv:1: missing required column(s) study_id" in str(_read_error(path))


def test_row_level_errors_name_line_and_column(tmp_path):
  path = _write(
      tmp_path,
      "patient_id,study_id,path,ef,sex,split,video_id\n"
      "p1,s1,a.dcm,abc,1,train,v1\n"  # line 2: ef not a number
      "p2,s2,b.dcm,50,2,train,v2\n"  # line 3: sex not 0/1
      "p3,,c.dcm,50,1,train,v3\n"  # line 4: study_id blank
      "p4,s4,d.dcm,inf,1,holdout,v4\n"  # line 5: ef inf, split bad
      "p5,s5,e.dcm,40,0,test,v1\n",
  )  # line 6: duplicate id
  err = _read_error(path)
  text = str(err)
  for fragment in (
      "labels.csv:2: column 'ef': 'abc' is not a number",
      "labels.csv:3: column 'sex': '2' must be 0 or 1",
      "labels.csv:4: column 'study_id': required value is blank",
      "labels.csv:5: column 'ef': 'inf' is not a finite number",
      "labels.csv:5: column 'split': 'holdout' is not one of",
      "labels.csv:6: column 'video_id': 'v1' repeats line 2",
  ):
    assert fragment in text
  assert len(err.problems) == 6


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
      out.append(
          labels.VideoRow(
              video_id=f"p{p}_v{v}",
              patient_id=f"p{p}",
              study_id=f"s{p}",
              path=f"/x/{p}_{v}.dcm",
              labels={},
              line=2 + len(out),
          )
      )
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
  assert 0.08 < counts["test"] / 2000 < 0.12  # ~10% of patients
  assert 0.07 < counts["val"] / 2000 < 0.11  # ~10% of the other 90%
  other = {r.video_id: r.split for r in labels.assign_splits(rows, seed=4)}
  assert other != b  # the seed matters


def test_existing_split_respected_and_spread_to_patient():
  rows = _rows(3)
  rows[0] = labels.VideoRow(**{**rows[0].__dict__, "split": "test"})  # p0's first video
  out = {r.video_id: r.split for r in labels.assign_splits(rows, seed=0)}
  assert out["p0_v0"] == "test" and out["p0_v1"] == "test"


def test_patient_in_two_splits_is_refused():
  rows = _rows(2)
  rows[0] = labels.VideoRow(**{**rows[0].__dict__, "split": "train"})
  rows[1] = labels.VideoRow(**{**rows[1].__dict__, "split": "test"})
  with pytest.raises(
      labels.LabelsError, match=r"patient 'p0' \(lines 2, 3\) is in splits test, train"
  ):
    labels.assign_splits(rows)


def test_default_video_id_carries_no_file_or_folder_name(tmp_path):
  path = _write(
      tmp_path,
      "patient_id,study_id,path\n"
      "p1,s1,DOE^JOHN_1970/echo_DOE_JOHN.dcm\n"
      "p1,s1,DOE^JOHN_1970/echo_DOE_JOHN_2.dcm\n",
  )
  ids = [r.video_id for r in labels.read_labels(path)]
  assert all(i.startswith("s1_") and len(i) == len("s1_") + 8 for i in ids)
  assert not any("DOE" in i or "JOHN" in i or "echo" in i for i in ids)
  assert len(set(ids)) == 2
  assert ids == [r.video_id for r in labels.read_labels(path)]  # stable


def test_labels_outside_plausible_ranges(tmp_path):
  path = _write(
      tmp_path,
      "patient_id,study_id,path,ef,weight,height,age,esv\n"
      "p1,s1,a.dcm,101,80,1.7,50,30\n"  # ef > 100 %
      "p2,s2,b.dcm,55,0.5,1.7,50,30\n"  # weight < 1 kg
      "p3,s3,c.dcm,55,80,170,50,30\n"  # height in cm, not m
      "p4,s4,d.dcm,55,80,1.7,130,30\n"  # age > 120
      "p5,s5,e.dcm,55,80,1.7,50,-1\n"  # negative volume
      "p6,s6,f.dcm,0,400,0.3,0,0\n",
  )  # the bounds are inside
  err = _read_error(path)
  assert len(err.problems) == 5
  for fragment in (
      "labels.csv:2: column 'ef': '101' is outside the plausible range 0 to 100 %",
      "labels.csv:3: column 'weight': '0.5' is outside the plausible range 1 to 400",
      "labels.csv:4: column 'height': '170' is outside the plausible range 0.3 to " "2.5 m",
      "labels.csv:5: column 'age'",
      "labels.csv:6: column 'esv'",
  ):
    assert fragment in str(err)
  ranges = "weight=0.1:500,height=0.3:250,ef=:101,age=0:,esv=-5:"
  assert len(labels.read_labels(path, ranges)) == 6  # configurable
  assert labels.parse_ranges("age=0:")["age"] == (0.0, math.inf)
  with pytest.raises(ValueError, match="unknown task 'iq'"):
    labels.parse_ranges("iq=0:200")


def test_study_shared_by_two_patients_and_one_file_twice(tmp_path):
  path = _write(
      tmp_path,
      "patient_id,study_id,path,split\n"
      "p1,s1,a.dcm,train\n"
      "p2,s1,b.dcm,train\n"  # study s1 under a second patient
      "p3,s3,c.dcm,train\n"
      "p4,s4,./c.dcm,train\n"  # c.dcm under a second patient
      "p5,s5,d.dcm,train\n"
      "p5,s5b,d.dcm,test\n",
  )  # d.dcm in two splits
  text = str(_read_error(path))
  assert "labels.csv:3: study_id 's1' belongs to patients 'p1' (line 2), 'p2' (line 3)" in text
  assert "labels.csv:5: the same file as line 4 under two patients (p3, p4)" in text
  assert "labels.csv:7: the same file as line 6 under two splits (test, train)" in text


def test_header_only_and_not_utf8(tmp_path):
  err = _read_error(_write(tmp_path, "patient_id,study_id,path,ef\n\n"))
  assert "labels.csv:1: the CSV holds a header but no video rows" in str(err)
  latin = tmp_path / "latin.csv"
  latin.write_bytes("patient_id,study_id,path\np1,s1,Müller.dcm\n".encode("latin-1"))
  assert "latin.csv:2: the file is not UTF-8 text" in str(_read_error(str(latin)))


@pytest.mark.parametrize(
    "view,wanted,kept",
    [
        ("A4C", ["a4c"], True),
        (" a4c ", ["A4C"], True),
        ("PLAX", ["A4C"], False),
        ("", ["A4C"], True),
        ("PLAX", [], True),
        ("PLAX", None, True),
    ],
)
def test_view_rule(view, wanted, kept):
  assert labels.view_matches(view, wanted) is kept


def test_view_counts():
  assert labels.count_views(["A4C", "", "PLAX", "a4c"], ["A4C"]) == {
      "kept": 3,
      "dropped": 1,
      "unknown": 1,
  }
  assert labels.count_views(["", "PLAX"], []) == {"kept": 2, "dropped": 0, "unknown": 0}
