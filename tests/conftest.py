"""Shared fixtures: a private data cache, and phantom-trained CPU-sized models built once a session."""

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
  """Keeps generated phantoms and caches out of ~/.cache (and shared between tests of a session)."""
  path = os.environ.get("ECHONET_JAX_TEST_CACHE") or str(tmp_path_factory.mktemp("echonet_cache"))
  old = os.environ.get("ECHONET_JAX_CACHE")
  os.environ["ECHONET_JAX_CACHE"] = path
  yield path
  if old is None:
    os.environ.pop("ECHONET_JAX_CACHE", None)
  else:
    os.environ["ECHONET_JAX_CACHE"] = old


@pytest.fixture
def real_and_bad_dicom(tmp_path):
  """pydicom-data's real A4C cine (the test fails if it is missing) and a file that is not DICOM."""
  from pydicom.data import get_testdata_file  # pylint: disable=g-import-not-at-top
  real = get_testdata_file("color3d_jpeg_baseline.dcm")
  assert real, "pydicom-data's color3d_jpeg_baseline.dcm is missing: pip install pydicom-data"
  bad = tmp_path / "not_dicom.dcm"
  bad.write_text("hello")
  return real, str(bad)


def small_phantom_config(task: str):
  """A CPU-sized run on a 320-study phantom: ~1-2 minutes of training on 2 cores."""
  from configs import default  # pylint: disable=g-import-not-at-top
  config = default.get_config("cpu", task=task)
  config.data.phantom.num_studies = 320
  config.train.update(steps=800, eval_every=400, checkpoint_every=400, log_every=100, workers=0)
  config.train.evaluate_at_end = False
  config.eval.n_boot = 100
  return config


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
