"""Tests of echonet_jax.phantom.writer: the dataset's files, determinism, reuse and ingestion."""

from __future__ import annotations

import csv
import filecmp
import hashlib
import os

import numpy as np
import pydicom
import pytest

from echonet_jax import phantom
from tests import testing

_bit = testing.phantom_bit  # the bit of a region in the phantom's masks


def _generate(tmp_path, name, **kw):
  opts = dict(views=("A4C", "PLAX"), rows=120, cols=160, frame_time_ms=50.0, duration_s=2.2)
  opts.update(kw)
  return phantom.generate_dataset(str(tmp_path / name), 2, seed=5, **opts)


def test_dataset_files_read_back_with_pydicom(tmp_path):
  import pydicom  # pylint: disable=g-import-not-at-top

  csv_path = _generate(tmp_path, "a")
  root = os.path.dirname(csv_path)
  with open(csv_path, newline="") as f:
    rows = list(csv.DictReader(f))
  assert tuple(rows[0]) == phantom.CSV_COLUMNS
  assert [r["view"] for r in rows] == ["A4C", "PLAX", "A4C", "PLAX"]
  assert rows[0]["ef"] == rows[1]["ef"] and rows[0]["study_id"] == rows[1]["study_id"]
  csv_text = open(csv_path).read()
  for row in rows:
    ds = pydicom.dcmread(os.path.join(root, row["path"]))
    assert ds.Modality == "US" and ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.3.1"
    assert ds.PhotometricInterpretation == "MONOCHROME2" and ds.BitsAllocated == 8
    assert float(ds.FrameTime) == 50.0 and int(ds.NumberOfFrames) == 44
    region = ds.SequenceOfUltrasoundRegions[0]
    assert region.RegionSpatialFormat == 1
    frames = ds.pixel_array
    assert frames.shape == (44, 120, 160)
    with np.load(os.path.join(root, row["mask_path"])) as z:
      assert tuple(z["mask_names"]) == phantom.MASK_NAMES
      assert z["masks"].shape == frames.shape and z["masks"].dtype == np.uint16
      ys, xs = np.nonzero(z["sector"])
    assert (region.RegionLocationMinX0, region.RegionLocationMaxX1) == (xs.min(), xs.max())
    assert (region.RegionLocationMinY0, region.RegionLocationMaxY1) == (ys.min(), ys.max())
    for tag in (
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "AccessionNumber",
        "InstitutionName",
        "StudyDate",
    ):
      value = str(getattr(ds, tag))
      assert value, tag
      if tag in ("PatientName", "PatientID", "AccessionNumber"):
        assert value not in csv_text, tag  # no identity reaches the labels
  with open(os.path.join(root, "ground_truth.csv")) as f:
    assert len(list(csv.DictReader(f))) == 2


def test_ybr_and_rle_options_keep_the_pixels(tmp_path):
  import pydicom  # pylint: disable=g-import-not-at-top

  paths = [
      os.path.join(
          os.path.dirname(_generate(tmp_path, name, views=("A4C",), **kw)),
          "dicom",
          "S000000_A4C.dcm",
      )
      for name, kw in (("m", {}), ("y", {"photometric": "YBR_FULL"}), ("r", {"compression": "rle"}))
  ]
  mono, ybr, rle = (pydicom.dcmread(p) for p in paths)
  assert ybr.PhotometricInterpretation == "YBR_FULL"
  rgb = ybr.pixel_array  # pydicom converts YBR_FULL to RGB; grey stays grey
  assert rgb.shape == mono.pixel_array.shape + (3,)
  np.testing.assert_allclose(rgb[..., 1].astype(int), mono.pixel_array.astype(int), atol=1)
  assert rle.file_meta.TransferSyntaxUID == pydicom.uid.RLELossless
  np.testing.assert_array_equal(rle.pixel_array, mono.pixel_array)
  assert os.path.getsize(paths[2]) < os.path.getsize(paths[0])


@pytest.mark.slow
def test_same_seed_same_bytes_whatever_the_workers(tmp_path):
  a = _generate(tmp_path, "a", views="all")
  b = _generate(tmp_path, "b", views="all", workers=2)
  c = phantom.generate_dataset(
      str(tmp_path / "c"), 2, seed=6, views=("A4C", "PLAX"), rows=120, cols=160, frame_time_ms=50.0
  )
  da, db, dc = (os.path.dirname(p) for p in (a, b, c))
  for sub, names in (
      ("", ["labels.csv", "ground_truth.csv", "phantom.json"]),
      ("dicom", sorted(os.listdir(os.path.join(da, "dicom")))),
      ("masks", sorted(os.listdir(os.path.join(da, "masks")))),
  ):
    for name in names:
      pa, pb = os.path.join(da, sub, name), os.path.join(db, sub, name)
      assert filecmp.cmp(pa, pb, shallow=False), pa
  assert not filecmp.cmp(
      os.path.join(da, "dicom", "S000000_A4C.dcm"),
      os.path.join(dc, "dicom", "S000000_A4C.dcm"),
      shallow=False,
  )


def test_read_back_through_ingestion_and_sector_mask_removes_text(tmp_path):
  from echonet_jax.data import dicom  # pylint: disable=g-import-not-at-top
  from echonet_jax.data import sector  # pylint: disable=g-import-not-at-top

  root = tmp_path / "i"
  phantom.generate_dataset(str(root), 1, seed=2, rows=240, cols=320, frame_time_ms=33.3)
  clip = dicom.read_echo(
      str(root / "dicom" / "S000000_A4C.dcm"), num_frames=20, interval_ms=100, size=96
  )
  assert clip.frames.shape == (20, 96, 96) and clip.frames.dtype == np.uint8
  assert clip.frame_time_ms == pytest.approx(33.3)
  assert np.all(np.diff(clip.frame_indices) == 3)
  with np.load(root / "masks" / "S000000_A4C.npz") as z:
    true_sector, overlay = z["sector"], z["overlay"]
  found = clip.sector_mask
  iou = (found & true_sector).sum() / (found | true_sector).sum()
  assert iou > 0.95
  assert not (found & overlay).any()  # text, marks and ECG are outside the detected sector
  text = sector.apply_geometry(overlay.astype(np.uint8), clip.geometry, 96, "nearest") > 0
  assert not clip.frames[:, text].any()
  kept = sector.apply_geometry(true_sector.astype(np.uint8), clip.geometry, 96, "nearest") > 0
  assert clip.frames[:, kept].mean() > 10  # the fan is kept


def test_ensure_dataset_reuses_a_matching_dataset(tmp_path):
  opts = dict(rows=96, cols=128, frame_time_ms=100.0)
  out = str(tmp_path / "cache")
  path = phantom.ensure_dataset(out, 1, 4, **opts)
  stamp = os.path.getmtime(path)
  assert phantom.ensure_dataset(out, 1, 4, **opts) == path
  assert os.path.getmtime(path) == stamp  # reused, not regenerated
  phantom.ensure_dataset(out, 2, 4, **opts)  # a different request regenerates
  with open(path) as f:
    assert len(f.readlines()) == 3


# Digests of small videos and a small default dataset, computed on the code before the view classes
# existed: the default A4C dataset (and the A2C and PLAX videos) must stay byte-identical. A change
# here means the default dataset changed (or numpy/cv2 changed how they draw).
_PINNED_VIDEOS = {  # OpenCV >= 5.0 (4.x rasterises some in-fan shapes differently)
    "A4C": "8fa8382a44032d318c2c1c4d402a365d524091b740fb7a628207f340521424a7",
    "A2C": "7f0a59fc552973ca1ce53fb11499ac2481aaf5449a0a8273361c716c0ef75977",
    "PLAX": "36a4b813411606caa2299e76f7237f96c90ac68f8a9dc25676c8296f0e7e2ce0",
}


_PINNED_DATASET = "8d8490079f67ed5a33d712cd6f172175940a17a3f3918b4baed50fb2bd21358c"


def _in_sector(frames: np.ndarray, sector: np.ndarray) -> bytes:
  """The pixels inside the fan: the burned-in text outside it is drawn with cv2's fonts, whose
  rasterisation changes between OpenCV releases (5.0 -> 5.1), so it is checked, not pinned."""
  return np.where(sector, frames, 0).astype(frames.dtype).tobytes()


def test_default_dataset_is_unchanged(tmp_path):
  for view, digest in _PINNED_VIDEOS.items():
    rng = np.random.default_rng([11, 0])
    video = phantom.render_study(phantom.sample_patient(rng), rng, view, 96, 128, 6, 50.0)
    content = _in_sector(video.frames, video.sector) + video.masks.tobytes()
    assert hashlib.sha256(content + video.sector.tobytes()).hexdigest() == digest, view
    assert video.overlay.any() and (video.frames[:, video.overlay] > 0).any()  # text is drawn
  root = tmp_path / "default"
  phantom.generate_dataset(str(root), 2, seed=0, rows=96, cols=128, frame_time_ms=100.0)
  h = hashlib.sha256()
  for name in ("labels.csv", "ground_truth.csv"):
    h.update((root / name).read_bytes())
  for i in range(2):  # pixels and mask arrays, not file bytes (those depend on pydicom and zlib)
    frames = pydicom.dcmread(root / "dicom" / f"S{i:06d}_A4C.dcm").pixel_array
    with np.load(root / "masks" / f"S{i:06d}_A4C.npz") as z:
      assert "kind" not in z
      h.update(_in_sector(frames, z["sector"]))
      for key in ("masks", "sector"):
        h.update(z[key].tobytes())
      assert z["overlay"].any()
  assert h.hexdigest() == _PINNED_DATASET


def test_dataset_with_every_view_class(tmp_path):
  import pydicom  # pylint: disable=g-import-not-at-top

  out = str(tmp_path / "all")
  opts = dict(rows=120, cols=160, frame_time_ms=100.0)
  csv_path = phantom.generate_dataset(out, 2, seed=3, views="all", **opts)
  with open(csv_path, newline="") as f:
    rows = list(csv.DictReader(f))
  assert [r["view"] for r in rows] == list(phantom.VIEW_CLASSES) * 2
  assert len({r["ef"] for r in rows[: len(phantom.VIEW_CLASSES)]}) == 1  # one patient per study
  for row in rows:
    ds = pydicom.dcmread(os.path.join(out, row["path"]))
    assert ds.SeriesDescription == row["view"] and ds.pixel_array.shape == (22, 120, 160)
    with np.load(os.path.join(out, row["mask_path"])) as z:
      assert z["masks"].shape == (22, 120, 160)
      assert (str(z["kind"]) in phantom.OTHER_KINDS) if row["view"] == "other" else "kind" not in z
      if row["view"] == "PSAX":
        assert not (z["masks"] & (_bit("la") | _bit("ra"))).any()
  stamp = os.path.getmtime(csv_path)
  assert phantom.ensure_dataset(out, 2, 3, views=phantom.VIEW_CLASSES, **opts) == csv_path
  assert os.path.getmtime(csv_path) == stamp  # "all" and the tuple of classes are the same request
  for bad in (("PSAX", "other"), ("A4C", "A4C"), "A4C,A9C"):
    with pytest.raises(ValueError, match="A4C"):
      phantom.generate_dataset(str(tmp_path / "bad"), 1, views=bad, **opts)
