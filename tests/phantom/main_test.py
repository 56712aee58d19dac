"""Tests of the phantom's CLI, echonet_jax/phantom/__main__.py."""

from __future__ import annotations

import os

from echonet_jax.phantom import __main__ as phantom_cli


def test_cli(tmp_path, capsys):
  out = tmp_path / "cli"
  rc = phantom_cli.main(
      [
          "--out",
          str(out),
          "--studies",
          "1",
          "--seed",
          "3",
          "--rows",
          "96",
          "--cols",
          "128",
          "--frame_time_ms",
          "100",
          "--views",
          "A4C,A2C",
      ]
  )
  assert rc == 0 and "labels.csv" in capsys.readouterr().out
  assert sorted(os.listdir(out / "dicom")) == ["S000000_A2C.dcm", "S000000_A4C.dcm"]
  assert phantom_cli.main(["--out", str(out), "--studies", "1", "--views", "A7C"]) == 2
  assert "A7C" in capsys.readouterr().err
  assert phantom_cli.main(["--out", str(out), "--studies", "1", "--views", "PSAX"]) == 2
  assert "A4C" in capsys.readouterr().err  # every study needs its A4C
  assert phantom_cli.main(["--out", str(out), "--studies", "1", "--duration_s", "1.5"]) == 2
