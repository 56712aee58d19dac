"""Saliency mode (echonet_jax/interpret.py): files, occlusion and localisation on phantom-trained models."""

from __future__ import annotations

import json
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from configs import default
from echonet_jax.data import cache
from echonet_jax.data import prepare as data
from echonet_jax.evaluation import inference
from echonet_jax.data import pipeline as input_pipeline
from echonet_jax.interpret import run as interpret
from echonet_jax import modes
from echonet_jax.training import restore
from echonet_jax.interpret import maps
from echonet_jax.interpret import saliency
from echonet_jax.interpret import scores


class TwoHeads(nn.Module):
  """A tiny network with the project's interface: ``{task: (B, 1)}`` outputs."""

  @nn.compact
  def __call__(self, x, *, train: bool):
    x = nn.tanh(nn.Conv(3, (3, 3))(x))
    x = nn.BatchNorm(use_running_average=not train)(x)
    x = jnp.mean(x * x, axis=(1, 2))
    return {"weight": nn.Dense(1)(x), "pacemaker_leads": nn.Dense(1)(x)}


def _tiny(channels=1, size=10, frames=3):
  model = TwoHeads()
  variables = model.init(jax.random.key(0), jnp.zeros((1, size, size, channels)), train=False)
  images = jax.random.normal(jax.random.key(1), (frames, size, size, channels))
  return model, variables, images


# --------------------------------------------------------------------------------------------------
# Fast: the pure parts.


def test_settings_from_the_default_config_and_bad_values():
  settings = maps.Settings.from_config(default.get_config().saliency)
  assert (settings.method, settings.num_samples, settings.ig_steps) == ("smoothgrad", 50, 25)
  assert maps.Settings.from_config({"chunk_size": 0}).chunk_size is None
  with pytest.raises(ValueError, match="saliency.method"):
    maps.Settings.from_config({"method": "gradcam"})
  with pytest.raises(ValueError, match="unknown saliency settings"):
    maps.Settings.from_config({"num_sample": 8})
  with pytest.raises(ValueError, match="num_samples"):
    maps.Settings(num_samples=0)


@pytest.mark.parametrize("frames_per_batch", [None, 2])
def test_video_maps_are_per_frame_gradients_of_the_task_output(frames_per_batch):
  model, variables, images = _tiny(channels=3)
  settings = maps.Settings(method="vanilla", frames_per_batch=frames_per_batch)
  maps_fn = maps.make_video_maps(model, "weight", settings)
  mean, std = jnp.float32(70.0), jnp.float32(15.0)
  got = maps_fn(variables["params"], variables["batch_stats"], mean, std, images, jax.random.key(0))
  f = saliency.scalar_model_fn(model, variables, head="weight")
  # Regression maps are in the task's unit (× label std); channels are summed.
  expected = jnp.stack([std * jax.grad(f)(x).sum(-1) for x in images])
  assert got.shape == images.shape[:3] and got.dtype == jnp.float32
  np.testing.assert_allclose(got, expected, rtol=2e-5, atol=1e-7)


def test_binary_task_explains_the_logit_and_methods_run():
  model, variables, images = _tiny()
  f = saliency.scalar_model_fn(model, variables, head="pacemaker_leads")
  g = maps.task_fn(model, variables, "pacemaker_leads", jnp.float32(5.0), jnp.float32(3.0))
  np.testing.assert_allclose(g(images[0]), f(images[0]))  # no unit scaling for a logit
  for method in ("smoothgrad", "integrated_gradients", "occlusion"):
    settings = maps.Settings(method=method, num_samples=3, ig_steps=4, patch=4, stride=3)
    video_maps = maps.make_video_maps(model, "pacemaker_leads", settings)(
        variables["params"], variables["batch_stats"], 0.0, 1.0, images, jax.random.key(2))
    assert (video_maps.shape == images.shape[:3] and np.isfinite(video_maps).all()
            and np.abs(video_maps).sum() > 0), method


def test_region_masks_decode_the_bit_field_and_combine_lv_with_the_wall():
  names = ["lv", "la", "myocardium"]
  masks = np.zeros((2, 4, 4), np.uint16)
  masks[0, 0, 0] = 1 | 4  # lv and myocardium overlap here
  masks[1, 1, 1] = 2
  masks[1, 2, 2] = 4
  regions = scores.region_masks(masks, names)
  assert set(regions) == {"lv", "la", "myocardium", "lv+myocardium"}
  assert regions["lv"].sum() == 1 and regions["la"][1, 1, 1] and regions["myocardium"].sum() == 2
  assert regions["lv+myocardium"].sum() == 2


def test_localisation_against_the_image_and_the_fan():
  size = 10
  region = np.zeros((2, size, size), bool)
  region[0, 2:4, 2:4] = True  # present in frame 0 only
  fan = np.zeros((size, size), bool)
  fan[:, :5] = True  # half the image
  video_maps = np.zeros((2, size, size), np.float32)
  video_maps[:, :, :5] = 1.0  # uniform inside the fan, zero outside
  score = scores.localisation(video_maps, region, fan)
  assert score["frames_present"] == 1
  assert score["area_fraction"] == pytest.approx(0.04)
  assert score["ratio"] == pytest.approx(2.0)  # the fan is half the image
  assert score["ratio_in_fan"] == pytest.approx(1.0)  # blind to the region within the fan
  video_maps[0] = region[0]
  assert scores.localisation(video_maps, region, fan)["ratio_in_fan"] == pytest.approx(1 / 0.08)
  absent = scores.localisation(video_maps, np.zeros_like(region), fan)
  assert absent["frames_present"] == 0 and np.isnan(absent["ratio"])


def test_dilate_fan_and_representative_frame():
  region = np.zeros((1, 9, 9), bool)
  region[0, 4, 4] = True
  assert scores.dilate(region, 2).sum() == 17  # cv2's 5×5 ellipse: the radius-2 disc and 4 more
  assert scores.dilate(region, 0) is region
  frames = np.zeros((2, 3, 3), np.uint8)
  frames[1, 0, 0] = 7
  assert scores.fan_mask(frames).sum() == 1
  assert scores.representative_frame(np.array([0.0, 0.9, 0.5, 1.0])) == 2
  assert interpret.safe_name("../a b/c.dcm") == "a_b_c.dcm"


# --------------------------------------------------------------------------------------------------
# Slow: phantom-trained models.


def _small_saliency_config(task, **overrides):
  config = default.get_config("cpu", task=task)
  config.saliency.update(num_samples=8, chunk_size=0, **overrides)
  return config


@pytest.mark.slow
def test_saliency_mode_writes_maps_overlays_gifs_and_scores(trained_workdir):
  workdir = trained_workdir("weight")
  result = modes.saliency(_small_saliency_config("weight", num_videos=2), workdir, "test")
  root = os.path.join(workdir, "saliency")
  with open(os.path.join(root, "scores.json")) as f:
    assert json.load(f) == result
  assert result["explained"] == {"weight": "output in kg"}
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
    assert Image.open(os.path.join(folder, "overlay.png")).size == (size, size)
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
def test_saliency_on_a_dicom_file_without_ground_truth(trained_workdir, real_and_bad_dicom):
  workdir = trained_workdir("weight")
  real, bad = real_and_bad_dicom
  result = modes.saliency(_small_saliency_config("weight", method="vanilla"), workdir, "",
                          [real, bad])
  (row,) = result["videos"]
  assert row["source"] == "inputs" and row["video_id"] == "color3d_jpeg_baseline"
  assert "localisation" not in row and "occlusion" not in row and row["label"] is None
  assert [e["error_type"] for e in result["errors"]] == ["NotDicomError"]
  folder = os.path.join(workdir, "saliency", "inputs", "color3d_jpeg_baseline")
  with np.load(os.path.join(folder, "maps.npz")) as npz:
    assert npz["maps"].shape[0] == 20 and np.abs(npz["maps"]).sum() > 0 and "masks" not in npz
  assert os.path.getsize(os.path.join(folder, "overlay.png")) > 0
  assert Image.open(os.path.join(folder, "saliency.gif")).n_frames == 20


def _videos_with_region(cache_dir, split, names, region, mask_names):
  bit = 1 << mask_names.index(region)
  return [r["video_id"] for r in input_pipeline.records(cache_dir, split, tasks=names)
          if "masks" in r and (r["masks"] & bit).any()]


@pytest.mark.slow
def test_occluding_the_lead_flips_a_lead_classifier_and_its_maps_fall_on_the_lead(trained_workdir,
                                                                                 tmp_path):
  trained = restore.load(trained_workdir("pacemaker_leads"))
  cache_dir = data.prepare_cache(trained.config)
  mask_names = cache.read_meta(cache_dir)["mask_names"]
  thresholds = interpret.binary_thresholds(trained, cache_dir)
  settings = maps.Settings(num_samples=8)
  size = trained.config.data.image_size
  videos = []
  for split in ("val", "test"):
    ids = _videos_with_region(cache_dir, split, trained.names, "lead", mask_names)
    if ids:
      videos += interpret.split_videos(cache_dir, split, trained.names, None, size, len(ids), ids)
  assert len(videos) >= 4, f"only {len(videos)} val/test videos show a lead"
  rows = interpret.explain(trained, videos, settings, str(tmp_path), mask_names, thresholds)
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
    stripe = scores.dilate(scores.region_masks(video.masks, mask_names)["lead"],
                              score["dilation_px"])[:, :, ::-1]
    images = input_pipeline.normalize(video.frames)[..., None]
    moved = inference.predict_images(
        trained, np.where(stripe[..., None], np.float32(input_pipeline.BLACK), images))
    assert moved["pacemaker_leads"].mean() >= score["threshold"], (video.video_id, score)
  ratios = [row["localisation"]["lead"]["ratio"] for row in rows]
  in_fan = [row["localisation"]["lead"]["ratio_in_fan"] for row in rows]
  assert np.mean(ratios) > 3.0 and np.mean(in_fan) > 2.0, (ratios, in_fan)


@pytest.mark.slow
def test_lv_task_maps_concentrate_on_the_left_ventricle(trained_workdir, tmp_path):
  trained = restore.load(trained_workdir("ef"))
  cache_dir = data.prepare_cache(trained.config)
  mask_names = cache.read_meta(cache_dir)["mask_names"]
  size = trained.config.data.image_size
  videos = interpret.split_videos(cache_dir, "test", trained.names, None, size, 4)
  rows = interpret.explain(trained, videos, maps.Settings(num_samples=8), str(tmp_path),
                           mask_names)
  summary = scores.summarise(rows)["test"]["ef"]["localisation"]
  assert summary["lv"]["n_videos"] == 4
  assert summary["lv"]["ratio"] > 1.5 and summary["lv+myocardium"]["ratio"] > 1.5, summary
  assert summary["lv"]["ratio_in_fan"] > 1.0, summary
