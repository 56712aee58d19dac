"""Tests of the synthetic echo phantom: labels vs geometry, files, determinism, ingestion."""

from __future__ import annotations

import csv
import filecmp
import math
import os

import numpy as np
import pytest

from echonet_jax import tasks
from echonet_jax import phantom
from echonet_jax.phantom import __main__ as phantom_cli
from echonet_jax.phantom import patients, render


def _bit(name):
  return 1 << phantom.MASK_NAMES.index(name)


def _area_length_volume(mask: np.ndarray) -> float:
  """Area-length volume 8 A^2 / (3 pi L) of one 2-D cavity mask (pixel units)."""
  ys, xs = np.nonzero(mask)
  pts = np.stack([xs, ys], 1).astype(float)
  pts -= pts.mean(0)
  _, vecs = np.linalg.eigh(pts.T @ pts)
  proj = pts @ vecs[:, -1]
  length = proj.max() - proj.min() + 1.0
  return 8.0 * len(xs)**2 / (3.0 * math.pi * length)


@pytest.fixture(scope="module")
def studies():
  """Thirty A4C studies at 240x320, 20 fps, 2.2 s."""
  out = []
  for i in range(30):
    rng = np.random.default_rng([7, i])
    patient = phantom.sample_patient(rng)
    video = phantom.render_study(patient, rng, "A4C", 240, 320, 44, 50.0)
    out.append((patient, video))
  return out


def _r2(y, pred):
  y, pred = np.asarray(y), np.asarray(pred)
  return 1.0 - np.mean((y - pred)**2) / np.var(y)


def test_ef_from_rendered_lv_cavity_tracks_label(studies):
  ef_geom, ef_label, ef_true = [], [], []
  for patient, video in studies:
    vols = [_area_length_volume(m & _bit("lv")) for m in video.masks]
    ef_geom.append(100.0 * (max(vols) - min(vols)) / max(vols))
    ef_label.append(patient["labels"]["ef"])
    ef_true.append(patient["truth"]["ef"])
  # The written label carries measurement noise (SD 2.5 EF points); the test compares with it.
  assert _r2(ef_label, ef_geom) >= 0.9
  assert _r2(ef_true, ef_geom) >= 0.95
  assert np.std(ef_label) > 8.0  # a real spread of EFs, not a degenerate sample


def test_causal_signals_are_in_the_pixels(studies):
  near, weight = [], []
  for patient, video in studies:
    nf = (video.masks[0] & _bit("near_field")) > 0
    near.append(nf.sum(0).max())  # thickest column of the chest-wall band, pixels
    weight.append(patient["labels"]["weight"])
    lead = (video.masks & _bit("lead")) > 0
    assert lead.any() == patient["truth"]["lead_visible"]
    if lead.any():  # the lead is a bright line
      assert video.frames[lead].mean() > 2.0 * video.frames[video.sector[None].repeat(
          len(lead), 0)].mean()
  assert np.corrcoef(near, weight)[0, 1] > 0.6


def test_lead_drawn_from_ra_into_rv():
  rng = np.random.default_rng(3)
  while True:
    patient = phantom.sample_patient(rng)
    if patient["truth"]["lead_visible"]:
      break
  video = phantom.render_study(patient, rng, "A4C", 240, 320, 10, 50.0)
  lead = (video.masks & _bit("lead")) > 0
  for chamber in ("rv", "ra"):
    assert (lead & ((video.masks & _bit(chamber)) > 0)).any(), chamber
  myo = (video.masks & _bit("myocardium")) > 0
  assert video.frames[lead].mean() > 1.5 * video.frames[myo].mean()


def test_masks_and_frames_respect_the_sector(studies):
  _, video = studies[0]
  assert video.masks.dtype == np.uint16 and video.frames.dtype == np.uint8
  assert video.masks.shape == video.frames.shape == (44, 240, 320)
  assert video.masks.max() < (1 << len(phantom.MASK_NAMES))
  assert not (video.masks[:, ~video.sector]).any()
  outside = video.frames[:, ~video.sector & ~video.overlay]
  assert not outside.any()
  assert video.text.any() and not (video.text & video.sector).any()
  for name in ("lv", "la", "rv", "ra", "myocardium", "valves", "near_field"):
    assert ((video.masks & _bit(name)) > 0).any(axis=(1, 2)).all(), name
  lv = (video.masks & _bit("lv")) > 0
  assert not (lv & ((video.masks & _bit("near_field")) > 0)).any()
  # Blood is dark, myocardium brighter.
  myo = (video.masks & _bit("myocardium")) > 0
  assert video.frames[myo].mean() > 2.0 * video.frames[lv].mean()


def test_label_model():
  rng = np.random.default_rng(0)
  draws = [phantom.sample_patient(rng) for _ in range(3000)]
  lab = {k: np.array([d["labels"][k] for d in draws]) for k in tasks.TASK_NAMES}
  assert set(draws[0]["labels"]) == set(tasks.TASK_NAMES)
  assert 10 <= lab["ef"].min() and lab["ef"].max() <= 85 and 45 < lab["ef"].mean() < 60
  np.testing.assert_allclose(lab["esv"], lab["edv"] * (1 - lab["ef"] / 100), atol=0.3)
  assert 0.07 < lab["pacemaker_leads"].mean() < 0.14
  for name in ("severe_lae", "lvh"):
    assert 0.03 < lab[name].mean() < 0.3, name
  assert 0.45 < lab["sex"].mean() < 0.65
  assert 18 <= lab["age"].min() and lab["age"].max() <= 92
  assert 1.4 < lab["height"].mean() < 1.9 and 60 < lab["weight"].mean() < 95
  assert np.corrcoef(lab["height"], lab["weight"])[0, 1] > 0.3
  assert np.corrcoef(lab["height"], lab["sex"])[0, 1] > 0.5
  assert np.corrcoef(lab["ef"], lab["edv"])[0, 1] < -0.4  # dilated LVs pump less
  assert set(draws[0]["identity"]) >= {"patient_name", "patient_id", "birth_date", "study_date"}


def test_explainable_variance_is_documented_correctly():
  est = patients.estimate_explainable_variance(num=6000, seed=1)
  assert set(est) == set(tasks.TASK_NAMES) == set(phantom.EXPLAINABLE_VARIANCE)
  for name, values in phantom.EXPLAINABLE_VARIANCE.items():
    for key, documented in values.items():
      assert abs(est[name][key] - documented) < 0.08, (name, key, est[name][key], documented)
    assert values["r2"] < 0.99  # no task is trivially perfect


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
    for tag in ("PatientName", "PatientID", "PatientBirthDate", "AccessionNumber",
                "InstitutionName", "StudyDate"):
      value = str(getattr(ds, tag))
      assert value, tag
      if tag in ("PatientName", "PatientID", "AccessionNumber"):
        assert value not in csv_text, tag  # no identity reaches the labels
  with open(os.path.join(root, "ground_truth.csv")) as f:
    assert len(list(csv.DictReader(f))) == 2


def test_ybr_and_rle_options_keep_the_pixels(tmp_path):
  import pydicom  # pylint: disable=g-import-not-at-top

  paths = [os.path.join(os.path.dirname(_generate(tmp_path, name, views=("A4C",), **kw)), "dicom",
                        "S000000_A4C.dcm")
           for name, kw in (("m", {}), ("y", {"photometric": "YBR_FULL"}),
                            ("r", {"compression": "rle"}))]
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
  a = _generate(tmp_path, "a")
  b = _generate(tmp_path, "b", workers=2)
  c = phantom.generate_dataset(str(tmp_path / "c"), 2, seed=6, views=("A4C", "PLAX"), rows=120,
                               cols=160, frame_time_ms=50.0)
  da, db, dc = (os.path.dirname(p) for p in (a, b, c))
  for sub, names in (("", ["labels.csv", "ground_truth.csv", "phantom.json"]),
                     ("dicom", sorted(os.listdir(os.path.join(da, "dicom")))),
                     ("masks", sorted(os.listdir(os.path.join(da, "masks"))))):
    for name in names:
      pa, pb = os.path.join(da, sub, name), os.path.join(db, sub, name)
      assert filecmp.cmp(pa, pb, shallow=False), pa
  assert not filecmp.cmp(os.path.join(da, "dicom", "S000000_A4C.dcm"),
                         os.path.join(dc, "dicom", "S000000_A4C.dcm"), shallow=False)


def test_read_back_through_ingestion_and_sector_mask_removes_text(tmp_path):
  from echonet_jax.data import dicom  # pylint: disable=g-import-not-at-top
  from echonet_jax.data import sector  # pylint: disable=g-import-not-at-top

  root = tmp_path / "i"
  phantom.generate_dataset(str(root), 1, seed=2, rows=240, cols=320, frame_time_ms=33.3)
  clip = dicom.read_echo(str(root / "dicom" / "S000000_A4C.dcm"), num_frames=20, interval_ms=100,
                         size=96)
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


def test_cli(tmp_path, capsys):
  out = tmp_path / "cli"
  rc = phantom_cli.main(["--out", str(out), "--studies", "1", "--seed", "3", "--rows", "96",
                         "--cols", "128", "--frame_time_ms", "100", "--views", "A4C,A2C"])
  assert rc == 0 and "labels.csv" in capsys.readouterr().out
  assert sorted(os.listdir(out / "dicom")) == ["S000000_A2C.dcm", "S000000_A4C.dcm"]
  assert phantom_cli.main(["--out", str(out), "--studies", "1", "--views", "A5C"]) == 2
  assert "A5C" in capsys.readouterr().err
  assert phantom_cli.main(["--out", str(out), "--studies", "1", "--duration_s", "1.5"]) == 2


def test_views_and_bad_inputs():
  rng = np.random.default_rng(0)
  patient = phantom.sample_patient(rng)
  for view in ("A2C", "PLAX"):
    frames, masks = phantom.render_video(patient, np.random.default_rng(1), view, 96, 128, 4, 50.0)
    assert frames.shape == masks.shape == (4, 96, 128)
    assert ((masks & _bit("lv")) > 0).any() and not ((masks & _bit("ra")) > 0).any()
  with pytest.raises(ValueError, match="A3C"):
    phantom.render_video(patient, rng, "A3C")
  with pytest.raises(ValueError, match="rows"):
    render.render_study(patient, rng, "A4C", 10, 10)
