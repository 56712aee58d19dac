"""Tests for echonet_jax.evaluation.ef_two_ways: EF predicted directly and derived from volumes."""

from __future__ import annotations

import csv
import os

import numpy as np
import pytest
from sklearn import metrics as skm

from echonet_jax.evaluation import ef_two_ways
from tests import testing


def _write_predictions(path, video_ids, patient_ids, labels, preds):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["video_id", "patient_id", "label", "prediction", "frame_00"])
    for v, p, y, yhat in zip(video_ids, patient_ids, labels, preds):
      w.writerow(
          [v, p, "" if np.isnan(y) else repr(float(y)), repr(float(yhat)), repr(float(yhat))]
      )
  return str(path)


def test_ef_two_ways_derives_ef_from_volume_predictions(tmp_path):
  esv, edv, ef = testing.ef_volumes()
  n = ef.size
  rng = np.random.default_rng(1)
  vids = [f"v{i}" for i in range(n)]
  pts = [f"p{i // 3}" for i in range(n)]
  esv_hat = esv + rng.normal(0, 8, n)
  edv_hat = edv + rng.normal(0, 12, n)
  ef_hat = ef + rng.normal(0, 5, n)
  ef_label = ef.copy()
  ef_label[4] = np.nan
  # Different row orders and one extra EF video: the join is on video_id.
  order = rng.permutation(n)
  ef_csv = _write_predictions(
      tmp_path / "ef.csv",
      vids + ["extra"],
      pts + ["px"],
      np.r_[ef_label, 50.0],
      np.r_[ef_hat, 50.0],
  )
  esv_csv = _write_predictions(
      tmp_path / "esv.csv",
      [vids[i] for i in order],
      [pts[i] for i in order],
      esv[order],
      esv_hat[order],
  )
  edv_csv = _write_predictions(tmp_path / "edv.csv", vids, pts, edv, edv_hat)

  out = ef_two_ways.ef_two_ways(ef_csv, esv_csv, edv_csv, n_boot=200)
  keep = ~np.isnan(ef_label)
  derived = (edv_hat - esv_hat) / edv_hat * 100
  direct_row, derived_row = out["rows"]
  assert (direct_row["method"], derived_row["method"]) == ("direct", "derived")
  assert out["n"] == n - 1 and out["n_missing_labels"] == 1 and out["n_only_in_ef"] == 1
  assert derived_row["r2"] == pytest.approx(skm.r2_score(ef[keep], derived[keep]))
  assert derived_row["mae"] == pytest.approx(skm.mean_absolute_error(ef[keep], derived[keep]))
  assert direct_row["r2"] == pytest.approx(skm.r2_score(ef[keep], ef_hat[keep]))
  assert out["r2_difference"] == pytest.approx(direct_row["r2"] - derived_row["r2"])
  lo, hi = out["r2_difference_ci"]
  assert lo <= out["r2_difference"] <= hi
  assert "| derived: (EDV − ESV) / EDV" in out["markdown"] and "0.33" in out["markdown"]


def test_ef_two_ways_perfect_volumes_give_perfect_ef(tmp_path):
  esv, edv, ef = testing.ef_volumes(n=20, seed=2)
  vids, pts = [f"v{i}" for i in range(20)], [f"p{i}" for i in range(20)]
  out = ef_two_ways.ef_two_ways(
      None,
      _write_predictions(tmp_path / "esv.csv", vids, pts, esv, esv),
      _write_predictions(tmp_path / "edv.csv", vids, pts, edv, edv),
      n_boot=0,
  )
  (row,) = out["rows"]
  assert out["truth"] == "EF from true ESV/EDV labels"
  assert row["r2"] == pytest.approx(1.0) and row["mae"] == pytest.approx(0.0, abs=1e-9)


def test_ef_two_ways_without_common_videos_raises(tmp_path):
  a = _write_predictions(tmp_path / "a.csv", ["v1"], ["p1"], [1.0], [1.0])
  b = _write_predictions(tmp_path / "b.csv", ["v2"], ["p2"], [1.0], [1.0])
  with pytest.raises(ValueError, match="no video_id common"):
    ef_two_ways.ef_two_ways(None, a, b)


def test_read_predictions_errors_name_the_file(tmp_path):
  bad = tmp_path / "bad.csv"
  bad.write_text("video_id,label\nv1,2\n")
  with pytest.raises(ValueError, match=r"bad\.csv: missing columns \['patient_id', 'prediction'\]"):
    ef_two_ways.read_predictions(str(bad))
  bad.write_text("video_id,patient_id,label,prediction\nv1,p1,abc,1\n")
  with pytest.raises(ValueError, match=r"bad\.csv:2: bad number"):
    ef_two_ways.read_predictions(str(bad))
