"""No DICOM patient identifier reaches the cache, the errors report, the logs or the summary."""

from __future__ import annotations

import csv
import logging
import os

import pydicom
import pytest

from echonet_jax.data import dicom
from echonet_jax.data import preprocess
from tests.testing import fan_video, write_us_dicom

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


def _secrets() -> list[bytes]:
  values = set()
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


@pytest.mark.filterwarnings("ignore:Invalid value for VR CS")  # the test's own odd Modality
def test_no_patient_identifier_anywhere_under_the_output(tmp_path, capfd, caplog):
  caplog.set_level(logging.DEBUG)
  videos = tmp_path / "in"
  videos.mkdir()
  frames, _ = fan_video(num_frames=6, rows=48, cols=64)
  good = write_us_dicom(str(videos / "good.dcm"), frames, patient=PATIENT)
  ct = write_us_dicom(str(videos / "ct.dcm"), frames, patient=PATIENT, modality="CT")
  cut = videos / "cut.dcm"
  cut.write_bytes(open(good, "rb").read()[:-2000])
  weird = write_us_dicom(str(videos / "weird.dcm"), frames, patient=PATIENT,
                         Modality=PATIENT["PatientID"])  # an identifier where a code belongs
  # The tags really are in the inputs.
  assert pydicom.dcmread(good).PatientName == PATIENT["PatientName"]
  assert PATIENT["PatientID"].encode() in open(good, "rb").read()

  with open(tmp_path / "labels.csv", "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["patient_id", "study_id", "path", "ef", "split"])  # ids: the CSV's own
    for i, name in enumerate(["good.dcm", "ct.dcm", "cut.dcm", "weird.dcm"]):
      writer.writerow([f"anon{i}", f"study{i}", f"in/{name}", "55", "train"])
  caplog.clear()  # pydicom itself logs the odd Modality while the test writes it
  capfd.readouterr()
  out = tmp_path / "cache"
  summary = preprocess.build_cache(str(tmp_path / "labels.csv"), str(out), num_frames=4, size=32,
                                   workers=0, progress=True)
  assert summary["written"] == 1
  assert summary["failed"] == {"NotUltrasoundError": 2, "TruncatedFileError": 1}
  code = preprocess.main(["--labels", str(tmp_path / "labels.csv"), "--out",
                          str(tmp_path / "cache2"), "--num_frames", "4", "--size", "32",
                          "--workers", "2"])
  assert code == 0

  files = [os.path.join(d, n) for root in (out, tmp_path / "cache2")
           for d, _, names in os.walk(root) for n in names]
  assert any(f.endswith(".array_record") for f in files) and any(
      f.endswith("errors.csv") for f in files)
  for path in files:
    _assert_clean(open(path, "rb").read(), path)
  captured = capfd.readouterr()  # file-descriptor level: worker processes included
  assert "videos written: 1" in captured.out
  _assert_clean(captured.out + captured.err, "stdout/stderr")
  _assert_clean(caplog.text, "logs")
  _assert_clean(repr(summary), "the summary")
  clip = dicom.read_echo(good, num_frames=4, size=32)
  _assert_clean(repr(clip), "EchoClip")
