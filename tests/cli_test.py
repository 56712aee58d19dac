"""The command-line entry points run as a researcher types them: ``python -m echonet_jax.preprocess``
and ``python -m echonet_jax.report``, in a fresh interpreter."""

from __future__ import annotations

import csv
import subprocess
import sys

from echonet_jax.data import cache
from tests.testing import REPO
from tests.testing import pydicom_file


def _run(*args: str) -> subprocess.CompletedProcess:
  return subprocess.run(
      [sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=600
  )


def test_preprocess_cli_builds_a_cache_from_a_real_ultrasound_dicom(tmp_path):
  labels = tmp_path / "labels.csv"
  with open(labels, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["patient_id", "study_id", "path", "weight"])
    w.writerow(["p1", "s1", pydicom_file("US1_J2KR.dcm"), "70"])
    w.writerow(["p2", "s2", str(tmp_path / "missing.dcm"), "80"])
  out = tmp_path / "cache"
  done = _run(
      "echonet_jax.preprocess",
      "--labels",
      str(labels),
      "--out",
      str(out),
      "--image_size",
      "64",
      "--num_frames",
      "2",
      "--workers",
      "0",
      "--no_progress",
  )
  assert done.returncode == 0, done.stderr
  assert "videos written: 1" in done.stdout and "videos failed: 1" in done.stdout
  assert sum(cache.read_meta(str(out))["splits"].values()) == 1
  bad = _run("echonet_jax.preprocess", "--labels", str(tmp_path / "none.csv"), "--out", str(out))
  assert bad.returncode == 2 and "none.csv" in bad.stderr
  assert "Traceback" not in bad.stderr


def test_report_cli_names_a_folder_without_results(tmp_path):
  done = _run("echonet_jax.report", str(tmp_path), "--out", str(tmp_path / "results.md"))
  assert done.returncode == 2
  assert str(tmp_path) in done.stderr and "Traceback" not in done.stderr
  assert not (tmp_path / "results.md").exists()
