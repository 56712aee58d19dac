"""No DICOM patient identifier, and no file or folder name, reaches the cache, the errors report,
the logs, the summary, the checkpoints or the evaluation outputs."""

from __future__ import annotations

import csv
import logging
import os

import pydicom
import pytest

from configs import default
from echonet_jax import preprocess
from echonet_jax.data import dicom
from echonet_jax.data import ingest
from echonet_jax.data.spec import CacheSpec
from tests.testing import fan_video
from tests.testing import write_us_dicom

PATIENT = {
    "PatientName": "Qzxwerty^Plokijuh",
    "PatientID": "MRN-7741952",
    "PatientBirthDate": "19230417",
    "AccessionNumber": "ACC88231977",
    "InstitutionName": "Saint Vrelkmond Hospital",
    "ReferringPhysicianName": "Dr^Hgwfsdqa",
    "OtherPatientIDs": "ALT-5519032",
    "PatientAddress": "12 Ombrefell Lane",
}


# A patient's name in folder and file names, as hospital exports often have it.
FOLDER = "WOBBLESNATCH^QUIGGLY_1931"
STEM = "echo_WOBBLESNATCH_QUIGGLY"
NAME_PARTS = ("Wobblesnatch", "Quiggly")


def _secrets() -> list[bytes]:
  values = set()
  for part in NAME_PARTS:
    values |= {part, part.upper(), part.lower()}
  for value in PATIENT.values():
    values |= {value, value.upper(), value.lower()}
    values |= {part for part in value.replace("^", " ").split() if len(part) >= 5}
  values |= {"1923-04-17", "17/04/1923", "04/17/1923"}
  out = []
  for v in values:
    out += [v.encode(), v.encode("utf-16-le")]
  return out


def _assert_clean(text_or_bytes, where: str):
  data = text_or_bytes if isinstance(text_or_bytes, bytes) else str(text_or_bytes).encode()
  for secret in _secrets():
    assert secret not in data, f"{secret!r} leaked into {where}"


def _inputs(tmp_path, n_good: int = 1, splits=("train",)):
  """DICOMs with patient tags, in a folder and under file names carrying the patient's name, and
  a labels CSV over them (ids: the CSV's own); the first ``n_good`` are readable."""
  videos = tmp_path / "in" / FOLDER
  videos.mkdir(parents=True)
  frames, _ = fan_video(num_frames=6, rows=48, cols=64)
  names = []
  for k in range(n_good):
    frames, _ = fan_video(num_frames=6, rows=48, cols=64, seed=k)
    names.append(write_us_dicom(str(videos / f"{STEM}_{k}.dcm"), frames, patient=PATIENT))
  good = names[0]
  names.append(
      write_us_dicom(str(videos / f"{STEM}_ct.dcm"), frames, patient=PATIENT, modality="CT")
  )
  cut = videos / f"{STEM}_cut.dcm"
  cut.write_bytes(open(good, "rb").read()[:-2000])
  names.append(str(cut))
  names.append(
      write_us_dicom(
          str(videos / f"{STEM}_weird.dcm"), frames, patient=PATIENT, Modality=PATIENT["PatientID"]
      )
  )  # an identifier where a code belongs
  # The tags really are in the inputs.
  assert pydicom.dcmread(good).PatientName == PATIENT["PatientName"]
  assert PATIENT["PatientID"].encode() in open(good, "rb").read()
  with open(tmp_path / "labels.csv", "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["patient_id", "study_id", "path", "ef", "split"])
    for i, name in enumerate(names):
      writer.writerow(
          [
              f"anon{i}",
              f"study{i}",
              os.path.relpath(name, tmp_path),
              str(40 + i),
              splits[i % len(splits)],
          ]
      )
  return str(tmp_path / "labels.csv"), good


def _scan_tree(*roots):
  files = [os.path.join(d, n) for root in roots for d, _, names in os.walk(root) for n in names]
  for path in files:
    _assert_clean(open(path, "rb").read(), path)
  return files


@pytest.mark.filterwarnings("ignore:Invalid value for VR CS")  # the test's own odd Modality
def test_no_patient_identifier_anywhere_under_the_output(tmp_path, capfd, caplog):
  caplog.set_level(logging.DEBUG)
  labels_csv, good = _inputs(tmp_path)
  caplog.clear()  # pydicom itself logs the odd Modality while the test writes it
  capfd.readouterr()
  out = tmp_path / "cache"
  summary = ingest.build_cache(
      labels_csv, str(out), CacheSpec(num_frames=4, image_size=32), workers=0, progress=True
  )
  assert summary["written"] == 1
  assert summary["failed"] == {"NotUltrasoundError": 2, "TruncatedFileError": 1}
  code = preprocess.main(
      [
          "--labels",
          labels_csv,
          "--out",
          str(tmp_path / "cache2"),
          "--num_frames",
          "4",
          "--image_size",
          "32",
          "--workers",
          "2",
      ]
  )
  assert code == 0

  files = _scan_tree(out, tmp_path / "cache2")
  assert any(f.endswith(".array_record") for f in files) and any(
      f.endswith("errors.csv") for f in files
  )
  captured = capfd.readouterr()  # file-descriptor level: worker processes included
  assert "videos written: 1" in captured.out
  _assert_clean(captured.out + captured.err, "stdout/stderr")
  _assert_clean(caplog.text, "logs")
  _assert_clean(repr(summary), "the summary")
  clip = dicom.read_echo(good, num_frames=4, size=32)
  _assert_clean(repr({k: v for k, v in vars(clip).items() if k != "source"}), "EchoClip")


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Invalid value for VR CS")
def test_no_file_or_folder_name_in_training_and_evaluation_outputs(tmp_path, capfd, caplog):
  from echonet_jax import modes  # pylint: disable=g-import-not-at-top

  caplog.set_level(logging.DEBUG)
  labels_csv, _ = _inputs(tmp_path, n_good=6, splits=("train", "train", "val", "test"))
  config = default.get_config("test", task="ef")
  config.data.update(labels_csv=labels_csv, cache_dir=str(tmp_path / "cache"), num_frames=4)
  config.train.update(steps=2, eval_every=2, checkpoint_every=2, log_every=1)
  caplog.clear()
  capfd.readouterr()
  modes.train(config, str(tmp_path / "workdir"))  # ends with an evaluation on the test split
  files = _scan_tree(tmp_path / "cache", tmp_path / "workdir")
  assert any(f.endswith("predictions.csv") for f in files)
  assert any("checkpoints" in f for f in files)
  captured = capfd.readouterr()
  _assert_clean(captured.out + captured.err, "stdout/stderr")
  _assert_clean(caplog.text, "logs")
