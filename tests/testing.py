"""Helpers shared by the tests: synthetic cines and model outputs, DICOM files, small configs."""

from __future__ import annotations

import importlib
import os

import cv2
import jax
import numpy as np
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian
from pydicom.uid import generate_uid
import pytest

from configs import default
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
    frames[t, rows - 4, (t * 9) % cols:(t * 9) % cols + 20] = 255  # moving ECG sweep
  return frames, fan


def write_us_dicom(path: str, frames: np.ndarray, *, frame_time: float | None = 33.3,
                   modality: str = "US", regions=None, patient: dict | None = None,
                   **tags) -> str:
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


def small_phantom_config(task: str):
  """A CPU-sized run on a 320-study phantom: ~1-2 minutes of training on 2 cores."""
  config = default.get_config("cpu", task=task)
  config.data.phantom.num_studies = 320
  config.train.update(steps=800, eval_every=400, checkpoint_every=400, log_every=100, workers=0)
  config.train.evaluate_at_end = False
  config.eval.n_boot = 100
  return config


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
