"""Shared fixtures: a private data and compilation cache, the stream tests' cache, real and
failing DICOM inputs, and phantom-trained CPU-sized models built once a session."""

import os
import shutil

import pytest

from echonet_jax import parallel
from tests.testing import patch_reader
from tests.testing import small_phantom_config
from tests.testing import write_stream_cache


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
  """Keeps generated phantoms, caches and compiled programs out of ~/.cache, shared between the
  tests of a session (in this process and the ones it starts: launch.py and test scripts)."""
  path = os.environ.get("ECHONET_JAX_TEST_CACHE") or str(tmp_path_factory.mktemp("echonet_cache"))
  xla = os.path.join(path, "xla")
  saved = {k: os.environ.get(k) for k in ("ECHONET_JAX_CACHE", "JAX_COMPILATION_CACHE_DIR")}
  os.environ.update(ECHONET_JAX_CACHE=path, JAX_COMPILATION_CACHE_DIR=xla)
  parallel.use_compilation_cache(xla)
  yield path
  parallel.use_compilation_cache(saved["JAX_COMPILATION_CACHE_DIR"])
  for key, value in saved.items():
    if value is None:
      os.environ.pop(key, None)
    else:
      os.environ[key] = value


@pytest.fixture(scope="session")
def stream_cache(tmp_path_factory):
  """The stream tests' tiny real cache (``testing.write_stream_cache``): 12 videos x 20 frames."""
  return write_stream_cache(str(tmp_path_factory.mktemp("stream_cache")))


@pytest.fixture
def real_and_bad_dicom(tmp_path):
  """pydicom-data's real A4C cine (the test fails if it is missing) and a file that is not DICOM."""
  from pydicom.data import get_testdata_file  # pylint: disable=g-import-not-at-top

  real = get_testdata_file("color3d_jpeg_baseline.dcm")
  assert real, "pydicom-data's color3d_jpeg_baseline.dcm is missing: pip install pydicom-data"
  bad = tmp_path / "not_dicom.dcm"
  bad.write_text("hello")
  return real, str(bad)


@pytest.fixture
def failing_batch(real_and_bad_dicom, tmp_path, monkeypatch):
  """A batch whose every input but the first fails to read: ``(real, bad, oom, odd)``, the real
  DICOM, a file that is not DICOM, and copies of the real one whose reads fail (``oom.dcm`` with a
  MemoryError, ``odd.dcm`` with a ValueError that quotes a patient name)."""
  real, bad = real_and_bad_dicom
  oom, odd = str(tmp_path / "oom.dcm"), str(tmp_path / "odd.dcm")
  for path in (oom, odd):
    shutil.copyfile(real, path)
  patch_reader(
      monkeypatch,
      {
          oom: MemoryError("Unable to allocate 14.9 GiB"),
          odd: ValueError("RegionSpatialFormat of DOE^JOHN"),
      },
  )
  return real, bad, oom, odd


@pytest.fixture(scope="session")
def trained_workdir(tmp_path_factory):
  """``trained_workdir(task)`` trains a small phantom model once per session; returns its workdir."""
  from echonet_jax import modes  # pylint: disable=g-import-not-at-top

  done = {}

  def get(task: str) -> str:
    if task not in done:
      workdir = str(tmp_path_factory.mktemp(f"trained_{task}"))
      modes.train(small_phantom_config(task), workdir)
      done[task] = workdir
    return done[task]

  return get
