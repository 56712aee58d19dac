"""Saliency mode (echonet_jax/interpret/run.py): files, occlusion and localisation on phantom models."""

from __future__ import annotations

import json
import os

import numpy as np
from PIL import Image
import pytest

from configs import default
from echonet_jax import modes
from echonet_jax.data import cache
from echonet_jax.data import normalization
from echonet_jax.data import prepare as data
from echonet_jax.data import selection
from echonet_jax.evaluation import inference
from echonet_jax.interpret import maps
from echonet_jax.interpret import run as interpret
from echonet_jax.interpret import scores
from echonet_jax.interpret import sources
from echonet_jax.training import restore


def test_jitter_setting_is_checked():
  assert maps.Settings.from_config(default.get_config().saliency).jitter == 2
  with pytest.raises(ValueError, match="saliency.jitter"):
    maps.Settings(jitter=-1)


def _small_saliency_config(task, **overrides):
  config = default.get_config("cpu", task=task)
  config.saliency.update(num_samples=8, chunk_size=0, **overrides)
  return config


@pytest.mark.slow
def test_saliency_mode_writes_maps_panels_gifs_summary_and_scores(trained_workdir):
  workdir = trained_workdir("weight")
  result = modes.saliency(_small_saliency_config("weight", num_videos=2), workdir, "test")
  root = os.path.join(workdir, "saliency")
  with open(os.path.join(root, "scores.json")) as f:
    assert json.load(f) == result
  assert result["explained"] == {"weight": "output in kg"}
  assert result["checkpoint_step"] == restore.load(workdir).step and result["errors"] == []
  assert result["summary_png"] == "summary.png"
  assert os.path.getsize(os.path.join(root, "summary.png")) > 10_000
  videos = result["videos"]
  assert len(videos) == 2 and {v["source"] for v in videos} == {"test"}
  size = restore.load_config(workdir).data.image_size
  for row in videos:
    folder = os.path.join(root, "test", row["video_id"])
    with np.load(os.path.join(folder, "maps.npz")) as npz:
      assert npz["maps"].shape == (20, size, size) and npz["maps"].dtype == np.float32
      assert npz["mean_map"].shape == (size, size) and npz["mean_map"].dtype == np.float32
      np.testing.assert_allclose(npz["mean_map"], np.abs(npz["maps"]).mean(0), rtol=1e-6)
      assert npz["masks"].shape == (20, size, size) and "near_field" in list(npz["mask_names"])
      assert row["prediction"] == pytest.approx(float(npz["frame_outputs"].mean()), rel=1e-5)
    assert min(Image.open(os.path.join(folder, "overlay.png")).size) >= 512
    with Image.open(os.path.join(folder, "panel.png")) as panel:
      assert panel.size[0] >= 3 * 512 and panel.size[1] >= 512
    gif = Image.open(os.path.join(folder, "saliency.gif"))
    assert gif.n_frames == 20
    assert 20 < row["prediction"] < 250
    assert set(row["localisation"]) >= {"lv", "near_field", "lv+myocardium"}
    assert row["occlusion"]["near_field"]["before"] == pytest.approx(row["prediction"], rel=1e-5)
  summary = result["summary"]["test"]["weight"]
  # Weight is drawn in the near-field chest wall: the maps fall there more than its share of the fan.
  assert summary["localisation"]["near_field"]["ratio_in_fan"] > 1.2, summary["localisation"]
  assert summary["localisation"]["near_field"]["n_videos"] == 2


@pytest.mark.slow
def test_saliency_batch_survives_any_failure_of_one_input(trained_workdir, failing_batch):
  workdir = trained_workdir("weight")
  real, bad, oom, odd = failing_batch
  config = _small_saliency_config("weight", method="vanilla")
  result = modes.saliency(config, workdir, "", [real, bad, oom, odd])
  (row,) = result["videos"]
  assert row["source"] == "inputs" and row["video_id"] == "color3d_jpeg_baseline"
  assert "localisation" not in row and "occlusion" not in row and row["label"] is None
  assert row["quality"] == "ok"
  errors = {os.path.basename(e["path"]): e for e in result["errors"]}
  assert errors["not_dicom.dcm"]["error_type"] == "NotDicomError"
  assert errors["oom.dcm"] == {
      "path": oom,
      "error_type": "MemoryError",
      "error": "out of memory while reading",
  }
  assert errors["odd.dcm"]["error_type"] == "ValueError"
  assert "DOE" not in json.dumps(result)  # the exception's text is never quoted
  folder = os.path.join(workdir, "saliency", "inputs", "color3d_jpeg_baseline")
  with np.load(os.path.join(folder, "maps.npz")) as npz:
    assert npz["maps"].shape[0] == 20 and np.abs(npz["maps"]).sum() > 0 and "masks" not in npz
  assert os.path.getsize(os.path.join(folder, "panel.png")) > 0
  assert Image.open(os.path.join(folder, "saliency.gif")).n_frames == 20


def _videos_with_region(cache_dir, split, names, region, mask_names):
  bit = 1 << mask_names.index(region)
  return [
      r["video_id"]
      for r in selection.records(cache_dir, split, tasks=names)
      if "masks" in r and (r["masks"] & bit).any()
  ]


@pytest.mark.slow
def test_occluding_the_lead_flips_a_lead_classifier_and_its_maps_fall_on_the_lead(
    trained_workdir, tmp_path
):
  trained = restore.load(trained_workdir("pacemaker_leads"))
  cache_dir = data.prepare_cache(trained.config)
  mask_names = cache.read_meta(cache_dir)["mask_names"]
  thresholds = scores.binary_thresholds(trained, cache_dir)
  settings = maps.Settings(num_samples=8)
  size = trained.config.data.image_size
  videos = []
  for split in ("val", "test"):
    ids = _videos_with_region(cache_dir, split, trained.names, "lead", mask_names)
    if ids:
      videos += sources.split_videos(cache_dir, split, trained.names, None, size, len(ids), ids)
  assert len(videos) >= 4, f"only {len(videos)} val/test videos show a lead"
  rows = interpret.explain(trained, videos, settings, str(tmp_path), mask_names, thresholds)
  predict_fn = inference.batched_predict_fn(trained.eval_fn, trained.state, trained.mesh)
  lead = [row["occlusion"]["lead"] for row in rows]
  positive = [s for s in lead if s["before"] >= s["threshold"]]
  assert len(positive) >= 3, lead
  # Blacking out the lead with a margin (its blurred edges and reverberation tail lie outside the
  # mask) turns most positive calls negative; the mask alone always lowers the probability clearly.
  assert sum(s["flipped_dilated"] for s in positive) > len(positive) / 2, lead
  assert np.mean([s["change"] for s in lead]) < -0.2, lead
  # Control: the same dilated stripe mirrored to the other side of the image (over the left heart)
  # leaves every positive call positive: it is the lead that matters, not any black stripe.
  for video, row in zip(videos, rows):
    score = row["occlusion"]["lead"]
    if score["before"] < score["threshold"]:
      continue
    stripe = scores.dilate(
        scores.region_masks(video.masks, mask_names)["lead"], score["dilation_px"]
    )[:, :, ::-1]
    images = normalization.normalize(video.frames)[..., None]
    moved = predict_fn(np.where(stripe[..., None], np.float32(normalization.BLACK), images))
    assert moved["pacemaker_leads"].mean() >= score["threshold"], (video.video_id, score)
  ratios = [row["localisation"]["lead"]["ratio"] for row in rows]
  in_fan = [row["localisation"]["lead"]["ratio_in_fan"] for row in rows]
  assert np.mean(ratios) > 3.0 and np.mean(in_fan) > 2.0, (ratios, in_fan)


@pytest.mark.slow
def test_lv_task_maps_concentrate_on_the_left_ventricle(trained_workdir, tmp_path):
  trained = restore.load(trained_workdir("esv"))
  cache_dir = data.prepare_cache(trained.config)
  mask_names = cache.read_meta(cache_dir)["mask_names"]
  size = trained.config.data.image_size
  videos = sources.split_videos(cache_dir, "test", trained.names, None, size, 4)
  rows = interpret.explain(trained, videos, maps.Settings(num_samples=8), str(tmp_path), mask_names)
  summary = scores.summarise(rows)["test"]["esv"]["localisation"]
  assert summary["lv"]["n_videos"] == 4
  assert summary["lv"]["ratio"] > 1.5 and summary["lv+myocardium"]["ratio"] > 1.5, summary
  assert summary["lv"]["ratio_in_fan"] > 1.0, summary
