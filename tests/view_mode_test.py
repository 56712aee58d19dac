"""The view classifier end to end: configs/view.py:test trains on a multi-view phantom, predict adds
view columns for a real DICOM, and preprocess --view_model fills blank views (issue 14)."""

import csv
import json
import os

import pytest

from configs import view as view_config
from echonet_jax import modes
from echonet_jax import preprocess
from echonet_jax import tasks
from echonet_jax.data import cache
from echonet_jax.data import prepare
from echonet_jax.data import selection
from echonet_jax.data import views as views_lib
from echonet_jax.errors import ConfigError
from echonet_jax.training import restore
from tests.testing import pydicom_file


@pytest.fixture(scope="module")
def workdirs(tmp_path_factory):
  """A view model and a weight model, both :test-sized, on the same multi-view phantom."""
  view_dir = str(tmp_path_factory.mktemp("view_model"))
  modes.train(view_config.get_config("test"), view_dir)
  weight = view_config.get_config("test")
  weight.task = "weight"
  weight.train.evaluate_at_end = False
  weight_dir = str(tmp_path_factory.mktemp("weight_model"))
  modes.train(weight, weight_dir)
  return view_dir, weight_dir


@pytest.mark.slow
def test_view_test_config_trains_and_writes_accuracy_and_confusion(workdirs):
  config = view_config.get_config("test")
  assert config.task == "view" and tuple(config.data.views) == ()
  assert config.data.phantom.views == "all"
  meta = cache.read_meta(prepare.prepare_cache(config))
  assert set(meta["views_by_source"]) == set(
      tasks.VIEW_CLASSES
  )  # one video of every view per study
  out = os.path.join(workdirs[0], "eval", "test")
  assert os.path.getsize(os.path.join(out, "confusion.png")) > 1000
  with open(os.path.join(out, "metrics.json")) as f:
    report = json.load(f)
  rows = {r["metric"]: r for r in report["metrics"]}
  assert report["n"] == 21 and 0.0 <= rows["accuracy"]["value"] <= 1.0
  assert "macro_f1" in rows and "auc_PSAX" in rows
  assert sum(map(sum, report["confusion"])) == 21


@pytest.mark.slow
def test_predict_adds_view_columns_beside_a_task_model(workdirs, tmp_path):
  real = pydicom_file("color3d_jpeg_baseline.dcm")
  out = modes.predict(None, list(workdirs), [real], str(tmp_path / "pred.csv"))
  with open(out) as f:
    (row,) = list(csv.DictReader(f))
  assert row["error_type"] == "" and row["view"] in tasks.VIEW_CLASSES
  probs = [float(row[f"view_prob_{c}"]) for c in tasks.VIEW_CLASSES]
  assert sum(probs) == pytest.approx(1.0, abs=1e-4)
  assert float(row["view_confidence"]) == pytest.approx(max(probs))
  assert float(row["weight"]) > 0


@pytest.mark.slow
def test_bad_view_models_are_clear_errors(workdirs):
  view_dir, weight_dir = workdirs
  with pytest.raises(ConfigError, match="not a view model"):
    restore.load_view_predictor(weight_dir)
  with pytest.raises(ConfigError, match="cannot select view.*SUBCOSTAL"):
    restore.load_view_predictor(view_dir, ["A4C", "SUBCOSTAL"])


@pytest.mark.slow
def test_preprocess_view_model_fills_every_blank_view(workdirs, tmp_path, capsys):
  phantom_csv = os.path.join(prepare.phantom_dir(view_config.get_config("test")), "labels.csv")
  with open(phantom_csv) as f:
    rows = list(csv.DictReader(f))[:14]  # two studies, every view
  base = os.path.dirname(phantom_csv)
  for i, row in enumerate(rows):
    row["path"] = os.path.join(base, row["path"])
    row["mask_path"] = ""
    row["view"] = "A2C" if i == 0 else ""  # a CSV view always wins
  labels_csv = str(tmp_path / "labels.csv")
  with open(labels_csv, "w", newline="") as f:
    writer = csv.DictWriter(f, list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
  out = str(tmp_path / "cache")
  assert (
      preprocess.main(
          [
              "--labels",
              labels_csv,
              "--out",
              out,
              "--size",
              "75",
              "--workers",
              "0",
              "--view_model",
              workdirs[0],
              "--view_min_confidence",
              "0.99",
              "--no_progress",
          ]
      )
      == 0
  )
  index = [r for split in cache.SPLITS for r in _index(out, split)]
  assert len(index) == 14
  by_id = {r["video_id"]: r for r in index}
  assert by_id[rows[0]["video_id"]]["view_source"] == "csv"
  assert by_id[rows[0]["video_id"]]["view"] == "A2C"
  predicted = [r for r in index if r["video_id"] != rows[0]["video_id"]]
  assert all(
      r["view_source"] == "predicted"
      and r["view"] in tasks.VIEW_CLASSES
      and 0 < float(r["view_confidence"]) <= 1
      for r in predicted
  )
  # Predicted views are not labels of the view task; the CSV's is.
  assert all(r["labels"]["view"] != r["labels"]["view"] for r in predicted)
  meta = cache.read_meta(out)
  assert sum(sum(s.values()) for s in meta["views_by_source"].values()) == 14
  unsure = [r for r in predicted if float(r["view_confidence"]) < 0.99]
  assert meta["low_confidence_views"]["count"] == len(unsure)
  with open(os.path.join(out, views_lib.LOW_CONFIDENCE_FILE)) as f:
    assert {r["video_id"] for r in csv.DictReader(f)} == {r["video_id"] for r in unsure}
  printed = capsys.readouterr().out
  assert "videos per view (source):" in printed and "predicted" in printed


def _index(out, split):
  try:
    return cache.read_index(out, split)
  except FileNotFoundError:
    return []


def test_views_rule_keeps_csv_views_and_sure_predictions():
  rows = [
      {"video_id": "a", "view": "A4C", "view_source": "csv", "view_confidence": "1.0"},
      {"video_id": "b", "view": "A4C", "view_source": "predicted", "view_confidence": "0.9"},
      {"video_id": "c", "view": "A4C", "view_source": "predicted", "view_confidence": "0.4"},
      {"video_id": "d", "view": "PLAX", "view_source": "csv", "view_confidence": "1.0"},
      {"video_id": "e", "view": "", "view_source": "", "view_confidence": ""},
  ]
  kept = [r["video_id"] for r in rows if views_lib.keep_video(r, ["a4c"], 0.5)]
  assert kept == ["a", "b", "e"]
  assert [r["video_id"] for r in views_lib.low_confidence(rows, ["A4C"], 0.5)] == ["c"]
  assert all(views_lib.keep_video(r, (), 0.5) for r in rows)
  assert views_lib.view_counts(rows)["A4C"] == {"csv": 1, "predicted": 2}


def test_select_videos_leaves_out_unsure_predictions(tmp_path):
  records = []
  for i, (view, source, conf) in enumerate(
      [
          ("A4C", "csv", 1.0),
          ("A4C", "predicted", 0.3),
          ("A4C", "predicted", 0.8),
          ("PLAX", "predicted", 0.9),
      ]
  ):
    records.append(
        {
            "video_id": f"v{i}",
            "patient_id": f"p{i}",
            "study_id": "s",
            "split": "train",
            "view": view,
            "view_source": source,
            "view_confidence": conf,
            "frames": [[[0]]],
            "labels": {"weight": 70.0},
        }
    )
  cache.write_shard(str(tmp_path / cache.shard_name("train", 0, 1)), records)
  kept = selection.select_videos(
      str(tmp_path), "train", tasks=["weight"], views=["A4C"], min_view_confidence=0.5
  )
  assert [r["video_id"] for r in kept] == ["v0", "v2"]


def test_view_config_validates_and_shrinks():
  full, cpu = view_config.get_config(), view_config.get_config("cpu")
  for config in (full, cpu):
    modes.validate_config(config)
    assert config.task == "view" and tuple(config.data.views) == ()
    assert config.data.phantom.views == "all"
  assert 0 < cpu.data.image_size < modes.resolve_image_size(full).data.image_size
  assert set(full.to_dict()) == set(cpu.to_dict())
  full.data.view_min_confidence = 1.5
  with pytest.raises(ConfigError, match="view_min_confidence"):
    modes.validate_config(full)


def test_view_experiment_arms_differ_only_in_views():
  from echonet_jax.experiments import views as experiment  # pylint: disable=g-import-not-at-top

  every, a4c = (
      experiment.arm_config("weight", "cpu", v, 150, 1000) for v in experiment.ARMS.values()
  )
  assert (tuple(every.data.views), tuple(a4c.data.views)) == ((), ("A4C",))
  assert every.data.phantom.views == a4c.data.phantom.views == "all"
  assert prepare.phantom_dir(every) == prepare.phantom_dir(a4c)  # one phantom for both arms
  every.data.views = ("A4C",)
  assert every.to_dict() == a4c.to_dict()
