"""Writes a phantom dataset: DICOM videos, region masks, labels.csv and the noise-free truth.

Layout of ``out_dir``::

  labels.csv                 patient_id, study_id, video_id, path, view, mask_path, <ten tasks>
  dicom/<video_id>.dcm       Ultrasound Multi-frame Image Storage, 8-bit, with ultrasound regions
  masks/<video_id>.npz       masks uint16 (F, rows, cols) bit field, mask_names, sector, overlay
                             (and, for view "other", kind: which confuser it is)
  ground_truth.csv           noise-free labels and hidden geometry per study (for analysis only)
  phantom.json               generator options, seed and explainable variance

Every byte depends only on (seed, options): study i draws from ``np.random.default_rng([seed, i])``,
UIDs are hashes of the seed, zip entries carry a fixed timestamp, and no clock is read.
"""

from __future__ import annotations

import concurrent.futures
import csv
import io
import json
import math
import multiprocessing
import os
from typing import Any
from typing import Sequence
import zipfile

import numpy as np
import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian
from pydicom.uid import RLELossless
from pydicom.uid import generate_uid

from echonet_jax import tasks
from echonet_jax.phantom import patients
from echonet_jax.phantom import render
from echonet_jax.phantom import views as views_lib

CSV_COLUMNS = ("patient_id", "study_id", "video_id", "path", "view", "mask_path") + tasks.TASK_NAMES
_US_MULTIFRAME = "1.2.840.10008.5.1.4.1.1.3.1"
_UID_ROOT = "1.2.826.0.1.3680043.8.498."  # pydicom's documented example root


def _uid(*parts: Any) -> str:
  return str(generate_uid(prefix=_UID_ROOT, entropy_srcs=[str(p) for p in parts]))


def write_dicom(
    path: str,
    video: render.RenderedVideo,
    identity: dict[str, str],
    *,
    seed: int,
    study_id: str,
    video_id: str,
    view: str,
    photometric: str = "MONOCHROME2",
    compression: str = "none",
    series_number: int = 1,
) -> None:
  """Writes ``video`` as an Ultrasound Multi-frame Image Storage file (8-bit).

  ``photometric``: MONOCHROME2 (default) or YBR_FULL (grey in 3 samples); ``compression``: "none"
  (explicit VR little endian) or "rle" (RLE Lossless, ~3x smaller, ~1 s slower per 640x480 video).
  """

  if photometric not in ("MONOCHROME2", "YBR_FULL"):
    raise ValueError(f"{path}: photometric must be MONOCHROME2 or YBR_FULL, got {photometric!r}")
  if compression not in ("none", "rle"):
    raise ValueError(f"{path}: compression must be 'none' or 'rle', got {compression!r}")
  frames = video.frames
  num, rows, cols = frames.shape
  geo = video.geometry
  sop_uid = _uid("sop", seed, video_id)
  meta = FileMetaDataset()
  meta.MediaStorageSOPClassUID = _US_MULTIFRAME
  meta.MediaStorageSOPInstanceUID = sop_uid
  meta.TransferSyntaxUID = ExplicitVRLittleEndian
  meta.ImplementationClassUID = _UID_ROOT + "1"
  meta.ImplementationVersionName = "ECHONET_PHANTOM"
  ds = pydicom.Dataset()
  ds.file_meta = meta
  ds.SpecificCharacterSet = "ISO_IR 100"
  ds.ImageType = ["ORIGINAL", "PRIMARY", "CARDIAC"]
  ds.SOPClassUID = _US_MULTIFRAME
  ds.SOPInstanceUID = sop_uid
  ds.StudyInstanceUID = _uid("study", seed, study_id)
  ds.SeriesInstanceUID = _uid("series", seed, video_id)
  ds.StudyDate = ds.SeriesDate = ds.ContentDate = identity["study_date"]
  ds.StudyTime = ds.SeriesTime = ds.ContentTime = identity["study_time"]
  ds.AccessionNumber = identity["accession"]
  ds.Modality = "US"
  ds.Manufacturer = "echonet-jax phantom"
  ds.ManufacturerModelName = "Synthetic A4C"
  ds.InstitutionName = identity["institution"]
  ds.StudyDescription = "Synthetic transthoracic echo"
  ds.SeriesDescription = view
  ds.PatientName = identity["patient_name"]
  ds.PatientID = identity["patient_id"]
  ds.PatientBirthDate = identity["birth_date"]
  ds.PatientSex = identity["sex"]
  ds.StudyID = "1"
  ds.SeriesNumber = series_number
  ds.InstanceNumber = 1
  ds.FrameTime = f"{geo['frame_time_ms']:.3f}"
  ds.CineRate = int(round(1000.0 / geo["frame_time_ms"]))
  ds.FrameIncrementPointer = pydicom.tag.Tag(0x0018, 0x1063)
  ds.NumberOfFrames = num
  ds.Rows, ds.Columns = rows, cols
  ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
  ys, xs = np.nonzero(video.sector)
  region = pydicom.Dataset()
  region.RegionSpatialFormat = 1  # 2D tissue
  region.RegionDataType = 1
  region.RegionFlags = 2
  region.RegionLocationMinX0, region.RegionLocationMaxX1 = int(xs.min()), int(xs.max())
  region.RegionLocationMinY0, region.RegionLocationMaxY1 = int(ys.min()), int(ys.max())
  region.PhysicalUnitsXDirection = region.PhysicalUnitsYDirection = 3  # cm
  region.PhysicalDeltaX = region.PhysicalDeltaY = 0.1 / geo["px_per_mm"]
  region.ReferencePixelX0 = int(round(geo["apex_x"]))
  region.ReferencePixelY0 = int(round(geo["apex_y"]))
  ds.SequenceOfUltrasoundRegions = pydicom.Sequence([region])
  if photometric == "MONOCHROME2":
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = np.ascontiguousarray(frames).tobytes()
  else:
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "YBR_FULL"
    ds.PlanarConfiguration = 0
    ybr = np.full(frames.shape + (3,), 128, np.uint8)
    ybr[..., 0] = frames
    ds.PixelData = ybr.tobytes()
  ds.LossyImageCompression = "00"
  if compression == "rle":
    ds.compress(RLELossless)
  tmp = path + ".tmp"
  ds.save_as(tmp, enforce_file_format=True)
  os.replace(tmp, path)


def write_masks(path: str, video: render.RenderedVideo) -> None:
  """Writes the region masks as an .npz with a fixed zip timestamp (deterministic bytes)."""
  arrays = {
      "masks": video.masks,
      "mask_names": np.array(render.MASK_NAMES),
      "sector": video.sector,
      "overlay": video.overlay,
  }
  if video.kind:
    arrays["kind"] = np.array(video.kind)
  tmp = path + ".tmp"
  with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
    for name, arr in arrays.items():
      buf = io.BytesIO()
      arr = np.ascontiguousarray(arr) if np.ndim(arr) else np.asarray(arr)  # kind stays 0-d
      np.lib.format.write_array(buf, arr, allow_pickle=False)
      info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
      info.compress_type = zipfile.ZIP_DEFLATED
      zf.writestr(info, buf.getvalue(), compresslevel=1)
  os.replace(tmp, path)


def _make_study(args: tuple) -> list[dict[str, Any]]:
  """Samples, renders and writes study ``index``; returns its CSV rows (and truth in row 0)."""
  out_dir, index, seed, views, rows, cols, num_frames, frame_time_ms, photometric, compression = (
      args
  )
  rng = np.random.default_rng([seed, index])
  patient = patients.sample_patient(rng)
  study_id = f"S{index:06d}"
  patient_id = f"P{index:06d}"
  out = []
  for k, view in enumerate(views):
    video_rng = np.random.default_rng([seed, index, k + 1])
    video = render.render_study(patient, video_rng, view, rows, cols, num_frames, frame_time_ms)
    video_id = f"{study_id}_{view}"
    dcm = os.path.join("dicom", video_id + ".dcm")
    npz = os.path.join("masks", video_id + ".npz")
    write_dicom(
        os.path.join(out_dir, dcm),
        video,
        patient["identity"],
        seed=seed,
        study_id=study_id,
        video_id=video_id,
        view=view,
        photometric=photometric,
        compression=compression,
        series_number=k + 1,
    )
    write_masks(os.path.join(out_dir, npz), video)
    row = {
        "patient_id": patient_id,
        "study_id": study_id,
        "video_id": video_id,
        "path": dcm,
        "view": view,
        "mask_path": npz,
    }
    row.update({name: patient["labels"][name] for name in tasks.TASK_NAMES})
    out.append(row)
  truth = {"study_id": study_id}
  truth.update(
      {
          k: (int(v) if isinstance(v, bool) else round(float(v), 4))
          for k, v in patient["truth"].items()
          if np.ndim(v) == 0
      }
  )
  out[0]["_truth"] = truth
  return out


GENERATOR_VERSION = 1


def _options(
    num_studies, seed, views, rows, cols, frame_time_ms, num_frames, photometric, compression
) -> dict[str, Any]:
  return {
      "generator": "echonet_jax.phantom",
      "version": GENERATOR_VERSION,
      "seed": seed,
      "num_studies": num_studies,
      "views": list(views),
      "rows": rows,
      "cols": cols,
      "frame_time_ms": frame_time_ms,
      "num_frames": num_frames,
      "photometric": photometric,
      "compression": compression,
  }


def ensure_dataset(out_dir: str, num_studies: int, seed: int = 0, **options: Any) -> str:
  """Returns ``out_dir``'s labels.csv, generating the dataset first unless an identical one exists.

  "Identical" means a finished dataset (labels.csv present) whose phantom.json records the same
  generator version, seed, study count and options. Options are those of :func:`generate_dataset`.
  """
  csv_path = os.path.join(out_dir, "labels.csv")
  meta_path = os.path.join(out_dir, "phantom.json")
  if os.path.exists(csv_path) and os.path.exists(meta_path):
    opts = dict(
        views=("A4C",),
        rows=480,
        cols=640,
        frame_time_ms=33.3,
        duration_s=2.2,
        photometric="MONOCHROME2",
        compression="none",
    )
    opts.update({k: v for k, v in options.items() if k != "workers"})
    num_frames = int(math.ceil(opts["duration_s"] * 1000.0 / opts["frame_time_ms"] - 1e-6))
    want = _options(
        num_studies,
        seed,
        views_lib.resolve_views(opts["views"]),
        opts["rows"],
        opts["cols"],
        opts["frame_time_ms"],
        num_frames,
        opts["photometric"],
        opts["compression"],
    )
    with open(meta_path) as f:
      have = json.load(f)
    if all(have.get(k) == v for k, v in want.items()):
      return csv_path
  return generate_dataset(out_dir, num_studies, seed, **options)


def generate_dataset(
    out_dir: str,
    num_studies: int,
    seed: int = 0,
    *,
    views: str | Sequence[str] = ("A4C",),
    rows: int = 480,
    cols: int = 640,
    frame_time_ms: float = 33.3,
    duration_s: float = 2.2,
    workers: int = 1,
    photometric: str = "MONOCHROME2",
    compression: str = "none",
) -> str:
  """Generates ``num_studies`` synthetic studies into ``out_dir``; returns the labels.csv path.

  Each study (one patient) has one video per view, in the order given; ``views`` are among
  ``VIEW_CLASSES`` and include A4C, or ``"all"`` (one video of every class per study, the "other"
  kind drawn per study). Videos have ``ceil(duration_s / frame_time_ms)`` frames; ``workers > 1``
  renders in a process pool with identical output bytes. See the module docstring for the layout.
  """
  views = views_lib.resolve_views(views)
  if num_studies < 1:
    raise ValueError(f"num_studies must be >= 1, got {num_studies}")
  if duration_s * 1000.0 < 2000.0:
    raise ValueError(
        f"duration_s={duration_s}: videos must last at least 2.0 s " "(20 frames one every 100 ms)"
    )
  num_frames = int(math.ceil(duration_s * 1000.0 / frame_time_ms - 1e-6))
  os.makedirs(os.path.join(out_dir, "dicom"), exist_ok=True)
  os.makedirs(os.path.join(out_dir, "masks"), exist_ok=True)
  if photometric not in ("MONOCHROME2", "YBR_FULL") or compression not in ("none", "rle"):
    raise ValueError(
        f"photometric must be MONOCHROME2 or YBR_FULL and compression none or rle; "
        f"got {photometric!r}, {compression!r}"
    )
  jobs = [
      (out_dir, i, seed, views, rows, cols, num_frames, frame_time_ms, photometric, compression)
      for i in range(num_studies)
  ]
  if workers > 1:
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx) as pool:
      results = list(pool.map(_make_study, jobs, chunksize=max(1, num_studies // (4 * workers))))
  else:
    results = [_make_study(job) for job in jobs]
  truths = [rows_[0].pop("_truth") for rows_ in results]
  with open(os.path.join(out_dir, "ground_truth.csv"), "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(truths[0]))
    writer.writeheader()
    writer.writerows(truths)
  meta = _options(
      num_studies, seed, views, rows, cols, frame_time_ms, num_frames, photometric, compression
  )
  meta.update(
      mask_names=list(render.MASK_NAMES), explainable_variance=patients.EXPLAINABLE_VARIANCE
  )
  with open(os.path.join(out_dir, "phantom.json"), "w") as f:
    json.dump(meta, f, indent=1, sort_keys=True)
  csv_path = os.path.join(out_dir, "labels.csv")
  tmp = csv_path + ".tmp"
  with open(tmp, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(CSV_COLUMNS))
    writer.writeheader()
    for rows_ in results:
      writer.writerows(rows_)
  os.replace(tmp, csv_path)  # labels.csv last: its presence marks a finished dataset
  return csv_path
