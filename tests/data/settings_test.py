"""Tests for echonet_jax.data.settings: the preprocess CLI refuses implausible settings in one line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from echonet_jax import preprocess
from echonet_jax.data import settings
from echonet_jax.data.spec import CacheSpec
from echonet_jax.errors import ConfigError
from tests.testing import REPO


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--num_frames", "0"], "--num_frames=0; must be >= 1"),
        (["--interval_ms", "0"], "--interval_ms=0.0; must be > 0"),
        (["--default_fps", "-3"], "--default_fps=-3.0; must be in [1, 1000]"),
        (["--test_frac", "1"], "--test_frac=1.0; must be in [0, 1)"),
        (["--val_frac", "-0.5"], "--val_frac=-0.5; must be in [0, 1)"),
        (["--workers", "-1"], "--workers=-1; must be >= 0"),
        (["--num_shards", "0"], "--num_shards=0; must be >= 1"),
        (["--shard_index", "3", "--num_shards", "3"], "--shard_index=3; must be < --num_shards=3"),
        (["--shard_index", "-1"], "--shard_index=-1; must be >= 0"),
        (["--videos_per_shard", "0"], "--videos_per_shard=0; must be >= 1"),
        (["--size", "-1"], "--image_size=-1; must be >= 0"),
        (["--interval_ms", "nan"], "--interval_ms=nan; must be finite"),
    ],
)
def test_preprocess_cli_refuses_bad_settings(tmp_path, capsys, flags, message):
  out = tmp_path / "cache"
  with pytest.raises(SystemExit) as info:
    preprocess.main(["--labels", str(tmp_path / "labels.csv"), "--out", str(out), *flags])
  assert info.value.code == 2
  errors = [l for l in capsys.readouterr().err.splitlines() if "error:" in l]
  assert len(errors) == 1 and f"error: {message}" in errors[0], errors
  assert not out.exists()


def test_preprocess_cli_error_has_no_traceback(tmp_path):
  proc = subprocess.run(
      [
          sys.executable,
          "-m",
          "echonet_jax.preprocess",
          "--labels",
          "x.csv",
          "--out",
          str(tmp_path / "c"),
          "--num_frames",
          "0",
      ],
      cwd=REPO,
      capture_output=True,
      text=True,
      timeout=120,
  )
  assert proc.returncode == 2 and "Traceback" not in proc.stderr
  assert [l for l in proc.stderr.splitlines() if "error:" in l] == [
      "python -m echonet_jax.preprocess: error: --num_frames=0; must be >= 1"
  ]


def test_size_zero_is_the_native_size(tmp_path):
  for source, expected in (("--labels", 299), ("--echonet_dynamic", 112)):
    args = preprocess.parse_args([source, str(tmp_path), "--out", str(tmp_path / "c")])
    assert args.image_size == 0  # the default: resolved by the spec, per source
    assert preprocess.spec_from_args(args).image_size == expected
  args = preprocess.parse_args(["--echonet_dynamic", str(tmp_path), "--out", "c", "--size", "299"])
  assert preprocess.spec_from_args(args).image_size == 299  # overridable
  assert CacheSpec(source="echonet_dynamic").image_size == 112 and CacheSpec().image_size == 299


def test_settings_checks_types_and_skips_unknown_names():
  settings.check_settings({"num_frames": 20, "something_else": -1, "workers": None})
  with pytest.raises(ConfigError, match="num_frames='20'; must be a number"):
    settings.check_settings({"num_frames": "20"})
  with pytest.raises(ConfigError, match="num_frames=True; must be a number"):
    settings.check_settings({"num_frames": True})
