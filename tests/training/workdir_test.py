"""The workdir lock (one training at a time, stale after its process dies) and disk faults as one
line."""

import errno
import json
import os
import socket
import subprocess
import sys

import pytest

from echonet_jax.errors import TrainingError
from echonet_jax.training import workdir as workdir_lib


def _lock_of(workdir):
  with open(os.path.join(workdir, workdir_lib.LOCK_FILE)) as f:
    return json.load(f)


def _write_lock(workdir, **content):
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, workdir_lib.LOCK_FILE), "w") as f:
    json.dump(content, f)


def test_lock_holds_host_and_pid_and_is_removed_after(tmp_path):
  workdir = str(tmp_path / "w")
  with workdir_lib.training_lock(workdir):
    held = _lock_of(workdir)
    assert held["host"] == socket.gethostname() and held["pid"] == os.getpid()
    with workdir_lib.training_lock(workdir):  # the same process again (modes.train + the loop)
      pass
    assert os.path.exists(os.path.join(workdir, workdir_lib.LOCK_FILE))
  assert not os.path.exists(os.path.join(workdir, workdir_lib.LOCK_FILE))


def test_a_live_training_refuses_a_second_one(tmp_path):
  workdir = str(tmp_path)
  other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
  try:
    _write_lock(
        workdir,
        host=socket.gethostname(),
        pid=other.pid,
        start=workdir_lib._process_start(other.pid),
        since="2026-11-29T10:00:00",
    )
    with pytest.raises(TrainingError, match=f"in use by training PID {other.pid} on this host"):
      with workdir_lib.training_lock(workdir):
        pass
    assert _lock_of(workdir)["pid"] == other.pid  # untouched
  finally:
    other.kill()
    other.wait()
  # Now that process is gone: its lock is stale and is taken over.
  with workdir_lib.training_lock(workdir):
    assert _lock_of(workdir)["pid"] == os.getpid()


def test_a_reused_pid_or_a_garbled_lock_is_stale(tmp_path):
  # This very PID, but another process start time: the PID was reused after that training died.
  _write_lock(str(tmp_path / "a"), host=socket.gethostname(), pid=os.getppid(), start="-1")
  with workdir_lib.training_lock(str(tmp_path / "a")):
    assert _lock_of(str(tmp_path / "a"))["pid"] == os.getpid()
  os.makedirs(tmp_path / "b")
  (tmp_path / "b" / workdir_lib.LOCK_FILE).write_text("{not json")
  with workdir_lib.training_lock(str(tmp_path / "b")):
    assert _lock_of(str(tmp_path / "b"))["pid"] == os.getpid()


def test_a_lock_from_another_host_is_refused(tmp_path):
  _write_lock(str(tmp_path), host="some-other-host", pid=12345, since="2026-11-29T10:00:00")
  with pytest.raises(TrainingError, match="on host some-other-host.*delete .*train.lock"):
    with workdir_lib.training_lock(str(tmp_path)):
      pass


def test_disk_errors_become_one_line_naming_the_path():
  full = OSError(errno.ENOSPC, "No space left on device", "/w/metrics.jsonl")
  assert str(workdir_lib.disk_error(full, "/w")) == (
      "cannot write /w/metrics.jsonl: no space left on device"
  )
  ro = OSError(errno.EROFS, "Read-only file system", "/w/train.lock.1.tmp")
  assert str(workdir_lib.disk_error(ro, "/w", exact=True)) == (
      "cannot write /w: read-only file system"
  )
  orbax = ValueError(
      'RESOURCE_EXHAUSTED: Error writing local file "/w/checkpoints/3.orbax-'
      'checkpoint-tmp/state.orbax-checkpoint-tmp/_sharding": Failed writing'
  )
  assert str(workdir_lib.disk_error(orbax, "/w/checkpoints")) == (
      "cannot write /w/checkpoints/3: no space left on device"
  )
  assert workdir_lib.disk_error(ValueError("a bad label"), "/w") is None
  assert workdir_lib.disk_error(OSError(errno.ENOENT, "missing"), "/w") is None
