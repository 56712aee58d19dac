"""The video model end to end: configs/ef_video.py:test trains on clips, evaluates over covering clips,
predicts on pydicom-data's color3d cine and explains a clip (one map per frame)."""

import csv
import json
import math
import os
import textwrap

import numpy as np
import pytest

from configs import default
from configs import ef_video
from echonet_jax import modes
from echonet_jax.data import prepare
from echonet_jax.data import windows
from echonet_jax.errors import ConfigError
from echonet_jax.evaluation import inference
from echonet_jax.models import InceptionResNetV1
from echonet_jax.models import R2Plus1D18
from echonet_jax.training import restore
from echonet_jax.training import step as step_lib
from tests import testing
from tests.testing import REPO


def test_model_name_selects_the_network_and_its_input():
  frame, video = default.get_config("test", task="ef"), ef_video.get_config("test")
  assert isinstance(step_lib.create_model(frame, ("ef",)), InceptionResNetV1)
  assert isinstance(step_lib.create_model(video, ("ef",)), R2Plus1D18)
  assert step_lib.input_shape(frame) == (75, 75, 1)
  assert step_lib.input_shape(video) == (8, 32, 32, 1)
  assert inference.clip_spec(frame) is None
  assert inference.clip_spec(video) == windows.ClipSpec(8, 1)
  full, cpu = ef_video.get_config(), ef_video.get_config("cpu")
  for config in (full, cpu, video):
    modes.validate_config(config)
  assert (full.data.clip_frames, full.data.clip_interval_ms, full.data.image_size) == (
      32,
      40.0,
      112,
  )
  assert set(full.to_dict()) == set(cpu.to_dict()) == set(frame.to_dict())
  video.data.interval_ms = 30.0  # 100 ms clips cannot be drawn from a 30 ms cache
  with pytest.raises(ConfigError, match="whole multiple"):
    modes.validate_config(video)
  video.model.name = "r3d"
  with pytest.raises(ConfigError, match="unknown model 'r3d'"):
    modes.validate_config(video)


@pytest.fixture(scope="module")
def video_workdir(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("ef_video"))
  modes.train(ef_video.get_config("test"), workdir)  # evaluates the test split at the end
  return workdir


@pytest.mark.slow
def test_trains_and_evaluates_over_covering_clips(video_workdir):
  with open(os.path.join(video_workdir, "eval", "test", "metrics.json")) as f:
    report = json.load(f)
  assert {r["metric"] for r in report["metrics"]} >= {"r2", "mae"}
  trained = restore.load(video_workdir)
  assert isinstance(trained.model, R2Plus1D18)
  predict_fn = inference.batched_predict_fn(trained.eval_fn, trained.state, trained.mesh)
  cache_dir = prepare.prepare_cache(trained.config)
  pred = inference.predict_split(predict_fn, trained.config, trained.names, cache_dir, "test")
  outputs = pred["frame_outputs"]["ef"]
  # 20 cache frames, 8-frame clips: starts 0, 8 and 12 cover the video.
  assert outputs.shape == (len(pred["video_id"]), 3) and np.isfinite(outputs).all()
  with open(os.path.join(video_workdir, "eval", "test", "predictions.csv")) as f:
    rows = list(csv.DictReader(f))
  assert len(rows) == len(pred["video_id"])


@pytest.mark.slow
def test_predicts_a_real_dicom_cine(video_workdir, real_and_bad_dicom, tmp_path):
  real, bad = real_and_bad_dicom
  out = modes.predict(None, [video_workdir], [real, bad], str(tmp_path / "pred.csv"))
  with open(out) as f:
    rows = {r["path"]: r for r in csv.DictReader(f)}
  assert math.isfinite(float(rows[real]["ef"])) and not rows[real]["error"]
  assert rows[bad]["error_type"] and not rows[bad]["ef"]


@pytest.mark.slow
def test_explains_a_clip_with_one_map_per_frame(video_workdir, real_and_bad_dicom):
  real, _ = real_and_bad_dicom
  config = ef_video.get_config("test")
  config.saliency.update(num_videos=1, num_samples=2)
  result = modes.saliency(config, video_workdir, "test", [real])
  rows = {r["source"]: r for r in result["videos"]}
  root = os.path.join(video_workdir, "saliency")
  for source in ("test", "inputs"):
    row = rows[source]
    with np.load(os.path.join(root, row["files"]["maps"])) as data:
      assert data["maps"].shape == data["frames"].shape == (8, 32, 32)
      assert np.abs(data["maps"]).reshape(8, -1).max(1).min() > 0  # every frame has a map
    for key in ("gif", "panel", "overlay"):
      assert os.path.getsize(os.path.join(root, row["files"][key])) > 0
  lv = rows["test"]["localisation"]["lv"]  # scored against the clip frames' phantom masks
  assert lv["frames_present"] == 8 and 0 <= lv["mass_in_region"] <= 1
  with pytest.raises(ConfigError, match="occlusion"):
    config.saliency.method = "occlusion"
    modes.saliency(config, video_workdir, None, [real])


_SHARDING_SCRIPT = textwrap.dedent("""
    import sys
    import jax
    jax.config.update("jax_num_cpu_devices", int(sys.argv[1]))
    sys.path.insert(0, {repo!r})
    import numpy as np
    from configs import ef_video
    from echonet_jax import parallel
    from echonet_jax.training import step as train
    config = ef_video.get_config("test")
    model = train.create_model(config, ("ef",))
    tx = train.make_optimizer(config.optim, 10)
    state = train.init(model, tx, jax.random.PRNGKey(0), train.input_shape(config),
                       {{"ef": {{"mean": 55.0, "std": 10.0}}}}, ("ef",))
    mesh = parallel.make_mesh()
    assert mesh.devices.size == int(sys.argv[1]), mesh
    step, evaluate = train.make_steps(model, tx, config.loss, mesh)
    rng = np.random.default_rng(0)
    clips = rng.normal(size=(8, 8, 32, 32, 1)).astype(np.float32)
    batch = {{"image": clips, "labels": {{"ef": rng.uniform(20, 70, 8).astype(np.float32)}}}}
    state, metrics = step(state, parallel.global_batch(batch, mesh))
    out = evaluate(state, parallel.global_batch(clips, mesh))
    np.savez(sys.argv[2], loss=float(metrics["loss"]), out=np.asarray(out["ef"]))
""")


@pytest.mark.slow
def test_clip_batch_splits_over_the_data_axis_like_frames(tmp_path):
  one, eight = testing.run_on_cpu_devices(_SHARDING_SCRIPT.format(repo=REPO), tmp_path)
  np.testing.assert_allclose(one["loss"], eight["loss"], rtol=1e-4)
  np.testing.assert_allclose(one["out"], eight["out"], rtol=1e-3, atol=1e-3)
