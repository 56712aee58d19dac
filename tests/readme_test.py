"""The README's Python blocks run as written, in a fresh interpreter."""

import re
import subprocess
import sys

import pytest

from tests.testing import REPO

with open(f"{REPO}/README.md") as f:
  _BLOCKS = re.findall(r"```python\n(.*?)```", f.read(), flags=re.S)


def test_readme_has_python_blocks():
  assert _BLOCKS, "README.md lost its Python examples"


@pytest.mark.parametrize("index", range(len(_BLOCKS)))
def test_readme_python_block_runs(index, tmp_path):
  proc = subprocess.run(
      [sys.executable, "-c", _BLOCKS[index]],
      cwd=tmp_path,
      capture_output=True,
      text=True,
      timeout=600,
      env={"PYTHONPATH": REPO, "PATH": "/usr/bin:/bin", "JAX_PLATFORMS": "cpu"},
  )
  assert (
      proc.returncode == 0
  ), f"README block {index} failed:\n{_BLOCKS[index]}\n{proc.stderr[-3000:]}"
