"""Helpers shared by the tests: synthetic cines and model outputs, DICOM writers, real test
files, a tiny stream cache, small configs."""

from __future__ import annotations

import importlib
import math
import os
import subprocess
import sys

import cv2
import jax
import jax.numpy as jnp
import numpy as np
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian
from pydicom.uid import generate_uid
import pytest

from configs import default
from echonet_jax import errors
from echonet_jax import phantom
from echonet_jax.data import cache
from echonet_jax.data import dicom
from echonet_jax.training import step as step_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pydicom_file(name: str) -> str:
  """Path of a pydicom / pydicom-data test file; FAILS (never skips) when it is not installed."""
  path = get_testdata_file(name)
  if path is None or not os.path.exists(path):
    pytest.fail(f"test file {name} not found: install pydicom-data (tests need it)")
  return path


def fan_video(num_frames: int = 12, rows: int = 96, cols: int = 128, seed: int = 0):
  """A synthetic cine: a moving speckled fan, burned-in text top-left and an ECG line below.

  Returns (frames (T, rows, cols) uint8, fan mask (rows, cols) bool).
  """
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[:rows, :cols]
  apex_x, apex_y, radius = cols / 2, 8, rows * 0.8
  dy, dx = yy - apex_y, xx - apex_x
  angle = np.degrees(np.arctan2(dx, dy))
  fan = (np.hypot(dx, dy) < radius) & (np.abs(angle) < 40) & (dy > 0)
  frames = np.zeros((num_frames, rows, cols), np.uint8)
  for t in range(num_frames):
    speckle = rng.integers(40, 220, size=(rows, cols))
    frames[t][fan] = speckle[fan]
    cv2.putText(frames[t], "ID", (1, 12), cv2.FONT_HERSHEY_PLAIN, 0.9, 255, 1)
    frames[t, rows - 4, :] = 0
    frames[t, rows - 4, (t * 9) % cols : (t * 9) % cols + 20] = 255  # moving ECG sweep
  return frames, fan


def write_us_dicom(
    path: str,
    frames: np.ndarray,
    *,
    frame_time: float | None = 33.3,
    modality: str = "US",
    regions=None,
    patient: dict | None = None,
    **tags,
) -> str:
  """Writes an uncompressed multi-frame MONOCHROME2 ultrasound DICOM."""
  frames = np.asarray(frames, np.uint8)
  meta = FileMetaDataset()
  meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.3.1"  # US multi-frame
  meta.MediaStorageSOPInstanceUID = generate_uid()
  meta.TransferSyntaxUID = ExplicitVRLittleEndian
  ds = Dataset()
  ds.file_meta = meta
  ds.SOPClassUID = meta.MediaStorageSOPClassUID
  ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
  ds.Modality = modality
  for key, value in (patient or {}).items():
    setattr(ds, key, value)
  ds.Rows, ds.Columns = frames.shape[1:]
  ds.NumberOfFrames = len(frames)
  ds.SamplesPerPixel = 1
  ds.PhotometricInterpretation = "MONOCHROME2"
  ds.BitsAllocated = ds.BitsStored = 8
  ds.HighBit = 7
  ds.PixelRepresentation = 0
  if frame_time is not None:
    ds.FrameTime = frame_time
  for key, value in tags.items():
    setattr(ds, key, value)
  if regions:
    items = []
    for x0, y0, x1, y1 in regions:
      item = Dataset()
      item.RegionSpatialFormat, item.RegionDataType, item.RegionFlags = 1, 1, 0
      item.RegionLocationMinX0, item.RegionLocationMinY0 = x0, y0
      item.RegionLocationMaxX1, item.RegionLocationMaxY1 = x1, y1
      items.append(item)
    ds.SequenceOfUltrasoundRegions = Sequence(items)
  ds.PixelData = frames.tobytes()
  ds.save_as(path, enforce_file_format=True)
  return path


def expect_read_error(error_type, path, fragment, **kwargs):
  """Asserts that ``dicom.read_echo(path)`` raises ``error_type``, one line naming the file and a
  reason containing ``fragment``; returns the error."""
  with pytest.raises(error_type) as info:
    dicom.read_echo(path, size=32, **kwargs)
  err = info.value
  assert isinstance(err, errors.EchoReadError)
  assert err.path == str(path) and str(err) == f"{path}: {err.reason}"
  assert fragment in err.reason
  return err


# The stream tests' cache: STREAM_VIDEOS videos of STREAM_FRAMES frames at STREAM_SIZE px, a
# centred disk whose grey level names the video and the frame. Videos 0-9: A4C with ef = 40 + i and
# sex = i % 2; video 10: A2C (ef 50); video 11: no labels.
STREAM_SIZE = 32
STREAM_FRAMES = 20
STREAM_VIDEOS = 12
STREAM_RADIUS = 12.0
STREAM_LABELED_A4C = list(range(10))


def stream_disk() -> np.ndarray:
  """The disk of every stream-test frame: radius STREAM_RADIUS about the centre."""
  c = (STREAM_SIZE - 1) / 2
  yy, xx = np.mgrid[:STREAM_SIZE, :STREAM_SIZE]
  return np.hypot(yy - c, xx - c) <= STREAM_RADIUS


def _stream_value(video: int, frame: int) -> int:
  """The grey level of frame ``frame`` of video ``video``: identifies both (1..240)."""
  return 1 + video * STREAM_FRAMES + frame


def stream_record(i: int) -> dict:
  """Video ``i`` of the stream cache, as a record for ``cache.write_shard``."""
  frames = np.zeros((STREAM_FRAMES, STREAM_SIZE, STREAM_SIZE), np.uint8)
  for t in range(STREAM_FRAMES):
    frames[t][stream_disk()] = _stream_value(i, t)
  labels = {"ef": 40.0 + i, "sex": float(i % 2)}
  if i == 11:
    labels = {"ef": math.nan, "sex": math.nan}
  view = "A2C" if i == 10 else "A4C"
  return cache.example_record(
      i, frames, labels, video_id=f"v{i:02d}", patient_id=f"p{i // 2}", view=view
  )


def write_stream_cache(root: str) -> str:
  """Writes the stream cache (its train split in two shards, meta.json) into ``root``."""
  cache.write_shard(
      os.path.join(root, cache.shard_name("train", 0, 2)), [stream_record(i) for i in range(6)]
  )
  cache.write_shard(
      os.path.join(root, cache.shard_name("train", 1, 2)),
      [stream_record(i) for i in range(6, STREAM_VIDEOS)],
  )
  write_train_meta(root, STREAM_SIZE, STREAM_FRAMES, STREAM_VIDEOS)
  return root


def write_train_meta(root: str, image_size: int, num_frames: int, num_videos: int) -> None:
  """The meta.json of a test cache whose one split, ``train``, holds ``num_videos`` videos of
  ``num_frames`` frames, 100 ms apart, at ``image_size`` px."""
  cache.write_meta(
      root,
      {
          "format": 1,
          "image_size": image_size,
          "num_frames": num_frames,
          "interval_ms": 100,
          "source": "test",
          "splits": {"train": num_videos},
      },
  )


def small_phantom_config(task: str):
  """A CPU-sized run on a 320-study phantom: ~1-2 minutes of training on 2 cores."""
  config = default.get_config("cpu", task=task)
  config.data.phantom.num_studies = 320
  config.train.update(steps=800, eval_every=400, checkpoint_every=400, log_every=100, workers=0)
  config.train.evaluate_at_end = False
  config.eval.n_boot = 100
  return config


def param_count(tree) -> int:
  """How many numbers the arrays (or shape structs) of a pytree hold."""
  return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(tree))


def abstract_init(model, shape, dtype=jnp.float32):
  """The shapes and dtypes of ``model``'s variables for an input of ``shape``, without computing them."""
  x = jnp.zeros(shape, dtype)
  return jax.eval_shape(lambda: model.init(jax.random.key(0), x, train=False))


def uniform_inputs(shape, seed=0) -> jax.Array:
  """Float32 network inputs of ``shape``, uniform in [0, 1)."""
  return jax.random.uniform(jax.random.key(seed), shape, jnp.float32)


def check_multi_task_heads(model_cls, x, **kwargs) -> None:
  """``model_cls`` with heads ef, sex (1 logit each) and view (3) returns a dict of float32 logits,
  one per head, from heads of their own on a shared trunk."""
  model = model_cls(num_outputs={"ef": 1, "sex": 1, "view": 3}, **kwargs)
  out, variables = model.init_with_output(jax.random.key(0), x, train=False)
  n = len(x)
  assert {k: v.shape for k, v in out.items()} == {"ef": (n, 1), "sex": (n, 1), "view": (n, 3)}
  assert all(v.dtype == jnp.float32 for v in out.values())
  assert {"head_ef", "head_sex", "head_view"} <= set(variables["params"])
  assert not np.allclose(out["ef"], out["sex"])


def check_features_feed_the_head(model, variables, x, num_features: int, atol: float) -> None:
  """``model``'s ``features`` method gives float32 (B, num_features) features whose affine map by
  the one ``head`` is the model's output."""
  features = model.apply(variables, x, train=False, method="features")
  assert features.shape == (len(x), num_features) and features.dtype == jnp.float32
  head = variables["params"]["head"]
  np.testing.assert_allclose(
      model.apply(variables, x, train=False),
      features @ head["kernel"] + head["bias"],
      rtol=1e-5,
      atol=atol,
  )


def check_bfloat16_compute(model, variables, x, atol: float) -> None:
  """``model`` with ``dtype=bfloat16`` keeps float32 parameters and logits, agrees with ``model``
  on ``variables`` to bfloat16 precision, and really runs its convolutions in bfloat16."""
  bf16 = model.clone(dtype=jnp.bfloat16)
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(abstract_init(bf16, x.shape)))
  apply = lambda v, x: bf16.apply(v, x, train=False)
  logits = jax.jit(apply)(variables, x)
  assert logits.dtype == jnp.float32
  np.testing.assert_allclose(logits, model.apply(variables, x, train=False), rtol=0.1, atol=atol)
  jaxpr = jax.make_jaxpr(apply)(variables, x)
  conv_dtypes = {
      eqn.invars[0].aval.dtype
      for eqn in jaxpr.jaxpr.eqns
      if eqn.primitive.name == "conv_general_dilated"
  }
  assert conv_dtypes == {jnp.dtype(jnp.bfloat16)}


def check_batch_stats_updated(variables, updates) -> int:
  """A train-mode apply's ``updates`` are new ``batch_stats`` only: each running statistic of
  ``variables`` again, with its shape, and every one changed. Returns how many there are."""
  assert set(updates) == {"batch_stats"}
  old = jax.tree.leaves(variables["batch_stats"])
  new = jax.tree.leaves(updates["batch_stats"])
  assert len(old) == len(new) and all(o.shape == n.shape for o, n in zip(old, new))
  assert all(not np.allclose(o, n) for o, n in zip(old, new))
  return len(new)


def training_setup(task="weight", tasks=()):
  """A tiny ``:test`` network, Adam, and its initial state on 75 px grayscale images."""
  config = default.get_config("test", task=task)
  config.tasks = tasks
  config.optim.update(lr=1e-3, schedule="constant", warmup_steps=0)
  names = step_lib.task_names(config)
  model = step_lib.create_model(config, names)
  tx = step_lib.make_optimizer(config.optim, 10)
  stats = {"weight": {"mean": 80.0, "std": 15.0}, "ef": {"mean": 55.0, "std": 10.0}}
  state = step_lib.init(model, tx, jax.random.PRNGKey(0), (75, 75, 1), stats, names)
  return config, names, model, tx, state


def training_batch(names, n=8, seed=0):
  """A random batch of 75 px images with labels for ``names``."""
  rng = np.random.default_rng(seed)
  labels = {}
  for name in names:
    if name in ("sex", "lvh", "pacemaker_leads", "severe_lae"):
      labels[name] = rng.integers(0, 2, n).astype(np.float32)
    else:
      labels[name] = rng.normal(70, 15, n).astype(np.float32)
  return {"image": rng.normal(size=(n, 75, 75, 1)).astype(np.float32), "labels": labels}


def patch_reader(monkeypatch, raising: dict[str, BaseException]) -> None:
  """Makes the video readers raise ``raising[path]`` for those paths and read every other file."""
  targets = [(dicom, "read_echo")]
  try:  # the DICOM-or-AVI reader, where the checkout has it
    video = importlib.import_module("echonet_jax.data.video")
    targets.append((video, "read_video"))
  except ImportError:
    pass
  for module, name in targets:
    original = getattr(module, name)

    def fake(path, *args, _original=original, **kwargs):
      if str(path) in raising:
        raise raising[str(path)]
      return _original(path, *args, **kwargs)

    monkeypatch.setattr(module, name, fake)


def conv_multiply_adds(jaxpr) -> int:
  """Multiply-adds of every convolution in a jaxpr, nested jaxprs (pjit, custom_vjp) included."""
  total = 0
  for eqn in jaxpr.eqns:
    if eqn.primitive.name == "conv_general_dilated":
      out = eqn.outvars[0].aval.shape
      kernel = eqn.invars[1].aval.shape  # (spatial..., in, out)
      total += int(np.prod(out)) * int(np.prod(kernel[:-1]))
    for param in eqn.params.values():
      sub = getattr(param, "jaxpr", param)
      if hasattr(sub, "eqns"):
        total += conv_multiply_adds(sub)
  return total


def run_on_cpu_devices(script: str, tmp_path, counts=(1, 8)) -> list:
  """Runs ``script`` (argv: device count, output .npz) in a fresh interpreter per count; the loaded
  .npz files, in the order of ``counts``."""
  path = tmp_path / "run_on_devices.py"
  path.write_text(script)
  results = []
  for n in counts:
    out = tmp_path / f"{n}.npz"
    subprocess.run([sys.executable, str(path), str(n), str(out)], check=True, cwd=REPO)
    results.append(np.load(out))
  return results


def phantom_bit(name: str) -> int:
  """The bit of the phantom's region ``name`` in its uint16 masks."""
  return 1 << phantom.MASK_NAMES.index(name)


def binary_frame_outputs(n=120, frames=8, seed=0):
  """Labels (n,) of a binary task and per-frame probabilities (n, frames): informative, noisy."""
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, 2, n).astype(float)
  logits = 1.5 * (labels - 0.5)[:, None] + rng.normal(0, 1, (n, 1)) + rng.normal(0, 2, (n, frames))
  return labels, 1 / (1 + np.exp(-logits))


def regression_frame_outputs(n=120, frames=8, seed=0):
  """Labels (n,) of a regression task and per-frame outputs (n, frames) scattered around them."""
  rng = np.random.default_rng(seed)
  labels = rng.normal(60, 20, n)
  return labels, labels[:, None] + rng.normal(0, 8, (n, 1)) + rng.normal(0, 15, (n, frames))


def video_patient_ids(n, videos_per_patient=2):
  """``n`` video ids and their patient ids, ``videos_per_patient`` videos per patient."""
  return [f"vid{i:03d}" for i in range(n)], [f"pt{i // videos_per_patient:03d}" for i in range(n)]


def ef_volumes(n=60, seed=0):
  """Plausible ESV, EDV (mL) and EF (%) of ``n`` videos, with EF = (EDV − ESV) / EDV · 100."""
  rng = np.random.default_rng(seed)
  edv = rng.normal(120, 30, n).clip(50)
  ef = rng.normal(55, 10, n).clip(15, 80)
  return edv * (1 - ef / 100), edv, ef


def binary_scores(seed, n=300, decimals=None):
  """Binary labels (n,) and informative scores in (0, 1); ``decimals`` rounds them into ties."""
  rng = np.random.default_rng(seed)
  y = rng.integers(0, 2, n)
  scores = 1 / (1 + np.exp(-(1.2 * (y - 0.5) + rng.normal(size=n))))
  if decimals is not None:  # many ties
    scores = np.round(scores, decimals)
  return y, scores


def regression_outputs(seed, n=300):
  """Regression labels (n,) and noisy, biased predictions of them."""
  rng = np.random.default_rng(seed)
  y = rng.normal(50, 12, n)
  return y, y + rng.normal(2, 8, n)
