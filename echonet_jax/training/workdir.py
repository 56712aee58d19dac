"""The training workdir's guards: one training at a time (a lock file), and disk faults as one line.

The lock ``WORKDIR/train.lock`` holds the host name, the PID and the process start time of the
training that owns the workdir. A second training on the same workdir is refused at once; a lock
whose process is gone (same host, PID dead or reused) is stale and taken over with a warning.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import socket
import time
from typing import Iterator

from absl import logging
import jax

from echonet_jax.errors import TrainingError

LOCK_FILE = "train.lock"

# errno values that mean "this disk or folder cannot take our writes", with the words we report.
_DISK_ERRORS = {
    errno.ENOSPC: "no space left on device",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EDQUOT: "disk quota exceeded",
}
# TensorStore (Orbax) reports disk faults as ValueError text, not OSError.
_DISK_TEXT = (
    ("RESOURCE_EXHAUSTED", "no space left on device"),
    ("No space left on device", "no space left on device"),
    ("Read-only file system", "read-only file system"),
    ("PERMISSION_DENIED", "permission denied"),
    ("Permission denied", "permission denied"),
    ("Disk quota exceeded", "disk quota exceeded"),
)


def disk_error(error: BaseException, path: str, *, exact: bool = False) -> TrainingError | None:
  """A one-line TrainingError naming ``path`` when ``error`` is a disk fault (full, read-only,
  no permission), else None. Unless ``exact``, the path is the file from the error if it has one."""
  reason = None
  if isinstance(error, OSError) and error.errno in _DISK_ERRORS:
    reason = _DISK_ERRORS[error.errno]
    path = path if exact else (error.filename or path)
  else:
    text = str(error)
    for needle, words in _DISK_TEXT:
      if needle in text:
        reason = words
        break
    # "... local file "/work/dir/checkpoints/6.orbax-checkpoint-tmp/..." ": name the step folder.
    found = re.search(r'local file "([^"]+)"', text)
    if found:
      path = re.sub(r"\.orbax-checkpoint-tmp.*$", "", found.group(1))
  if reason is None:
    return None
  return TrainingError(f"cannot write {path}: {reason}")


def _process_start(pid: int) -> str | None:
  """The process's start time in clock ticks since boot (Linux), to tell a reused PID apart."""
  try:
    with open(f"/proc/{pid}/stat") as f:
      return f.read().rsplit(")", 1)[1].split()[19]
  except (OSError, IndexError):
    return None


def _alive(pid: int, start: str | None) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # exists, owned by someone else
    return True
  now = _process_start(pid)
  return start is None or now is None or now == start


def _read_lock(path: str) -> dict | None:
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def _try_create(path: str, content: dict) -> bool:
  """Creates ``path`` holding ``content`` atomically; False when it already exists."""
  tmp = f"{path}.{os.getpid()}.tmp"
  with open(tmp, "w") as f:
    json.dump(content, f)
  try:
    os.link(tmp, path)  # atomic: fails if the lock exists, and the lock is never half-written
    return True
  except FileExistsError:
    return False
  finally:
    os.remove(tmp)


def _acquire(workdir: str, path: str) -> bool:
  """Takes the lock; False when this process holds it already. Raises TrainingError if in use."""
  host, pid = socket.gethostname(), os.getpid()
  mine = {
      "host": host,
      "pid": pid,
      "start": _process_start(pid),
      "since": time.strftime("%Y-%m-%dT%H:%M:%S"),
  }
  os.makedirs(workdir, exist_ok=True)
  while not _try_create(path, mine):
    held = _read_lock(path)
    if held and held.get("host") == host and held.get("pid") == pid:
      return False  # modes.train holds it around train_and_evaluate
    if held and held.get("host") != host:
      raise TrainingError(
          f"{workdir} is in use by training PID {held.get('pid')} on host {held.get('host')} "
          f"(since {held.get('since')}); if that run has ended, delete {path}"
      )
    if held and _alive(int(held.get("pid", -1)), held.get("start")):
      raise TrainingError(
          f"{workdir} is in use by training PID {held['pid']} on this host (since "
          f"{held.get('since')}); wait for it to end or use another --workdir"
      )
    logging.warning("removing the stale lock %s of a training that is gone (%s)", path, held)
    with contextlib.suppress(FileNotFoundError):
      os.remove(path)
  return True


@contextlib.contextmanager
def training_lock(workdir: str) -> Iterator[None]:
  """Holds ``WORKDIR/train.lock`` for the duration; raises TrainingError when another training
  holds it, or when the workdir cannot be written (one line naming the path)."""
  path = os.path.join(workdir, LOCK_FILE)
  try:
    acquired = _acquire(workdir, path)
  except OSError as e:
    raise disk_error(e, workdir, exact=True) or TrainingError(f"cannot lock {path}: {e}") from None
  try:
    yield
  finally:
    if acquired and (_read_lock(path) or {}).get("pid") == os.getpid():
      with contextlib.suppress(OSError):
        os.remove(path)


def lock_for_this_process(workdir: str) -> contextlib.AbstractContextManager:
  """``training_lock`` on process 0 (which writes the workdir), nothing on the other hosts."""
  return training_lock(workdir) if jax.process_index() == 0 else contextlib.nullcontext()
