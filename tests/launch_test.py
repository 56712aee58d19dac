"""launch.py end to end on the tiny phantom: train, resume after kill -9, and bad inputs."""

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time

import pytest

from echonet_jax import writers
from tests.testing import REPO


def _launch(*args, check=False, timeout=600):
  cmd = [sys.executable, os.path.join(REPO, "launch.py"), *args]
  proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)
  if check and proc.returncode:
    raise AssertionError(f"{cmd} failed:\n{proc.stderr[-4000:]}")
  return proc


def _steps(workdir):
  ckpt = os.path.join(workdir, "checkpoints")
  return sorted(int(n) for n in os.listdir(ckpt) if n.isdigit()) if os.path.isdir(ckpt) else []


def _assert_one_line_error(proc, *fragments):
  assert proc.returncode != 0
  assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
  errors = [l for l in proc.stderr.splitlines() if l.startswith("error: ")]
  assert len(errors) == 1, proc.stderr[-3000:]
  for fragment in fragments:
    assert fragment in errors[0], errors[0]


TINY = ["--config.train.evaluate_at_end=False"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """One `:test` training through launch.py (with its end-of-training evaluation), shared by the
  tests below; tests that damage it work on a copy. Returns (workdir, the run's stderr)."""
  workdir = str(tmp_path_factory.mktemp("launch") / "w")
  proc = _launch("--config=configs/weight.py:test", f"--workdir={workdir}", check=True)
  return workdir, proc.stderr


def _copy(trained, tmp_path, name="w"):
  dst = str(tmp_path / name)
  shutil.copytree(trained[0], dst)
  return dst


def _tb_events(workdir):
  """Every (tag, step, value or text) in the TensorBoard event files under WORKDIR/tb."""
  from tensorboardX.proto import event_pb2  # pylint: disable=g-import-not-at-top

  out = []
  for root, _, names in os.walk(os.path.join(workdir, "tb")):
    for name in sorted(n for n in names if n.startswith("events.out.tfevents")):
      with open(os.path.join(root, name), "rb") as f:
        data = f.read()
      pos = 0
      while pos < len(data):  # TFRecord framing: u64 length, u32 crc, payload, u32 crc
        (length,) = struct.unpack("<Q", data[pos : pos + 8])
        event = event_pb2.Event.FromString(data[pos + 12 : pos + 12 + length])
        pos += 16 + length
        for v in event.summary.value:
          text = v.tensor.string_val[0].decode() if v.tensor.string_val else None
          out.append((v.tag, event.step, text if text is not None else v.simple_value))
  return out


@pytest.mark.slow
def test_train_checkpoints_logs_and_resumes(trained, tmp_path):
  workdir, stderr = trained
  # The first log lines say what JAX found.
  assert re.search(
      r"JAX \S+ backend cpu: \d+ devices? \(cpu: \d+; \d+ local\); process 0 of 1", stderr
  ), stderr[:3000]
  assert _steps(workdir) == [3, 6]
  with open(os.path.join(workdir, "config.json")) as f:
    assert json.load(f)["task"] == "weight"
  rows = writers.read_metrics(workdir)
  assert any("train/loss" in r for r in rows) and any("val/weight/mae" in r for r in rows)
  # The learning rate of each logged step, from the schedule (:test: cosine with a 50-step warmup).
  lrs = {r["step"]: r["train/lr"] for r in rows if "train/lr" in r}
  assert lrs[2] == pytest.approx(1e-3 * 1 / 50, rel=1e-4) and lrs[6] == pytest.approx(1e-3 * 5 / 50)
  # The end-of-training evaluation on the test split, and its metrics logged at the last step.
  for name in ("metrics.json", "predictions.csv", "scatter.png", "bland_altman.png", "frames.png"):
    assert os.path.exists(os.path.join(workdir, "eval", "test", name)), name
  assert "loaded checkpoint step 6 (best val/score" in stderr
  test_rows = [r for r in rows if "test/weight/mae" in r]
  assert len(test_rows) == 1 and test_rows[0]["step"] == 6
  assert test_rows[0]["test/checkpoint_step"] == 6
  events = _tb_events(workdir)
  tags = {tag for tag, _, _ in events}
  assert {"train/lr", "train/loss", "val/score", "test/weight/mae"} <= tags, tags
  assert [v for tag, step, v in events if tag == "train/lr" and step == 6] == [
      pytest.approx(lrs[6])
  ]
  config_text = [v for tag, _, v in events if tag.startswith("config")]
  assert config_text and '"task": "weight"' in config_text[0]
  assert os.path.isdir(os.path.join(workdir, "tb", "hparams"))
  assert not os.path.exists(os.path.join(workdir, "train.lock"))  # released at the end
  # Run again with more steps (on a copy): resumes from step 6, not from scratch.
  # Its compiled programs go to --compilation_cache (the session's shared cache otherwise).
  again = _copy(trained, tmp_path)
  proc = _launch(
      "--config=configs/weight.py:test",
      f"--workdir={again}",
      "--config.train.steps=9",
      f"--compilation_cache={tmp_path / 'xla'}",
      *TINY,
      check=True,
  )
  assert "resuming from step 6" in proc.stderr
  assert _steps(again)[-1] == 9
  assert os.listdir(tmp_path / "xla"), "nothing was kept in the compilation cache"


@pytest.mark.slow
def test_a_corrupt_latest_checkpoint_is_skipped_by_evaluate_and_resume(trained, tmp_path):
  workdir = _copy(trained, tmp_path)
  metadata = os.path.join(workdir, "checkpoints", "6", "state", "_METADATA")
  os.truncate(metadata, os.path.getsize(metadata) // 2)
  # evaluate needs no --config: the workdir's saved one rules.
  proc = _launch(f"--workdir={workdir}", "--mode=evaluate", "--split=val", check=True)
  assert "Traceback" not in proc.stderr
  assert re.search(r"checkpoint step 6 in \S+ is unreadable", proc.stderr), proc.stderr[-3000:]
  assert "loaded checkpoint step 3 (best val/score" in proc.stderr
  # Training resumes from step 3, sets step 6 aside (kept, not deleted) and saves it anew.
  proc = _launch("--config=configs/weight.py:test", f"--workdir={workdir}", *TINY, check=True)
  assert "Traceback" not in proc.stderr and "resuming from step 3" in proc.stderr
  assert _steps(workdir) == [3, 6]
  assert os.path.exists(os.path.join(workdir, "checkpoints.corrupt", "6", "state", "_METADATA"))
  steps = [r["step"] for r in writers.read_metrics(workdir) if "train/loss" in r]
  assert steps == sorted(set(steps))


@pytest.mark.slow
def test_a_second_training_on_a_workdir_is_refused_in_one_line(trained, tmp_path):
  workdir = _copy(trained, tmp_path)
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    before = f.read()
  first = subprocess.Popen(
      [
          sys.executable,
          os.path.join(REPO, "launch.py"),
          "--config=configs/weight.py:test",
          f"--workdir={workdir}",
          "--config.train.steps=100000",
          *TINY,
      ],
      cwd=REPO,
      stdout=subprocess.DEVNULL,
      stderr=subprocess.DEVNULL,
  )
  try:
    lock = os.path.join(workdir, "train.lock")
    deadline = time.time() + 120
    while not os.path.exists(lock) and first.poll() is None and time.time() < deadline:
      time.sleep(0.05)
    assert os.path.exists(lock), "the first training never took the lock"
    start = time.time()
    proc = _launch("--config=configs/weight.py:test", f"--workdir={workdir}", *TINY)
    _assert_one_line_error(proc, f"in use by training PID {first.pid} on this host")
    assert time.time() - start < 60
    assert first.poll() is None  # the first training goes on
  finally:
    first.kill()
    first.wait()
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    assert f.read().startswith(before)
  assert _steps(workdir) == [3, 6]


def _tree_digest(path):
  digest = hashlib.sha256()
  for root, dirs, names in sorted(os.walk(path)):
    dirs.sort()
    for name in sorted(names):
      full = os.path.join(root, name)
      digest.update(full.encode())
      with open(full, "rb") as f:
        digest.update(f.read())
  return digest.hexdigest()


@contextlib.contextmanager
def _mounted(*mount_args):
  """Mounts (as root) a file system at the last argument for the duration."""
  target = mount_args[-1]
  proc = subprocess.run(["mount", *mount_args], capture_output=True, text=True)
  if proc.returncode:
    raise OSError(proc.stderr.strip())
  try:
    yield target
  finally:
    subprocess.run(["umount", target], check=True)


@contextlib.contextmanager
def _read_only(workdir, tmp_path):
  """``workdir`` made read-only: a read-only bind mount as root (root ignores permission bits),
  chmod otherwise."""
  if os.geteuid() != 0:
    modes = {}
    for root, dirs, _ in os.walk(workdir):
      for d in [root, *(os.path.join(root, x) for x in dirs)]:
        modes[d] = os.stat(d).st_mode
        os.chmod(d, 0o555)
    try:
      yield workdir
    finally:
      for d, mode in modes.items():
        os.chmod(d, mode)
    return
  target = str(tmp_path / "ro")
  os.makedirs(target)
  with _mounted("--bind", workdir, target):
    subprocess.run(["mount", "-o", "remount,bind,ro", target], check=True)
    yield target


@pytest.mark.slow
def test_a_read_only_workdir_is_one_line_and_no_damage(trained, tmp_path):
  workdir = _copy(trained, tmp_path)
  before = _tree_digest(os.path.join(workdir, "checkpoints"))
  with _read_only(workdir, tmp_path) as ro:
    proc = _launch(
        "--config=configs/weight.py:test", f"--workdir={ro}", "--config.train.steps=9", *TINY
    )
    _assert_one_line_error(proc, f"cannot write {ro}")
    assert "read-only file system" in proc.stderr or "permission denied" in proc.stderr
    proc = _launch("--config=configs/weight.py:test", f"--workdir={ro}/new", *TINY)
    _assert_one_line_error(proc, f"cannot write {ro}/new")
  assert _tree_digest(os.path.join(workdir, "checkpoints")) == before


@pytest.mark.slow
def test_a_full_disk_is_one_line_and_no_damage(trained, tmp_path):
  size_kib = (
      sum(os.path.getsize(os.path.join(r, n)) for r, _, ns in os.walk(trained[0]) for n in ns)
      // 1024
  )
  target = str(tmp_path / "disk")
  os.makedirs(target)
  try:
    mount = _mounted("-t", "tmpfs", "-o", f"size={size_kib + 600}k", "tmpfs", target)
    mount.__enter__()
  except OSError as e:
    pytest.skip(f"a small tmpfs cannot be mounted here (needs root): {e}")
  try:
    workdir = os.path.join(target, "w")
    shutil.copytree(trained[0], workdir)
    before = [_tree_digest(os.path.join(workdir, "checkpoints", s)) for s in ("3", "6")]
    # Resumes from step 6; the checkpoint of step 9 does not fit.
    proc = _launch(
        "--config=configs/weight.py:test", f"--workdir={workdir}", "--config.train.steps=9", *TINY
    )
    _assert_one_line_error(proc, f"cannot write {workdir}/checkpoints", "no space left on device")
    assert len(proc.stderr.splitlines()) < 20, proc.stderr
    assert _steps(workdir) == [3, 6]  # the half-written step 9 is a temporary folder, not a step
    assert [_tree_digest(os.path.join(workdir, "checkpoints", s)) for s in ("3", "6")] == before
    from echonet_jax.training import restore  # pylint: disable=g-import-not-at-top

    assert restore.load(workdir, which="latest").step == 6
  finally:
    mount.__exit__(None, None, None)


@pytest.mark.slow
def test_kill_9_then_resume_continues_the_same_trajectory(tmp_path):
  args = [
      "--config=configs/weight.py:test",
      "--config.train.steps=120",
      "--config.train.checkpoint_every=10",
      "--config.train.eval_every=1000",
      "--config.train.log_every=1",
      *TINY,
  ]
  straight = str(tmp_path / "straight")
  _launch(*args, f"--workdir={straight}", check=True)

  killed = str(tmp_path / "killed")
  cmd = [sys.executable, os.path.join(REPO, "launch.py"), *args, f"--workdir={killed}"]
  proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.time() + 300
  while time.time() < deadline and not _steps(killed) and proc.poll() is None:
    time.sleep(0.02)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  saved = _steps(killed)
  assert saved and saved[-1] < 120, f"the run was not killed mid-way: {saved}"
  _launch(*args, f"--workdir={killed}", check=True)

  def losses(workdir):
    return {r["step"]: r["train/loss"] for r in writers.read_metrics(workdir) if "train/loss" in r}

  a, b = losses(straight), losses(killed)
  assert sorted(a) == list(range(1, 121))
  resumed_from = saved[-1]
  for step in range(resumed_from + 1, 121):
    assert b[step] == pytest.approx(a[step], rel=1e-5, abs=1e-6), step


def test_unknown_config_key_is_one_line():
  proc = _launch(
      "--config=configs/weight.py:test", "--workdir=/tmp/unused", "--config.train.no_such_key=1"
  )
  _assert_one_line_error(proc, "unknown config key", "no_such_key")
  proc = _launch("--config=configs/weight.py:test", "--workdir=/tmp/unused", "--config.optim.lrr=1")
  _assert_one_line_error(
      proc, "unknown config key 'lrr' in --config.optim.lrr=1 (did you mean \"lr\""
  )
  assert "\\" not in proc.stderr


def test_unknown_modifier_missing_workdir_and_missing_config_are_one_line(tmp_path):
  proc = _launch("--config=configs/weight.py:cpux", "--workdir=/tmp/unused")
  _assert_one_line_error(
      proc, "configs/weight.py:cpux", "unknown config argument 'cpux'", "known: cpu, test"
  )
  assert len(proc.stderr.splitlines()) == 1, proc.stderr
  proc = _launch("--config=configs/weight.py:test")
  _assert_one_line_error(proc, "--workdir is required for --mode=train")
  assert len(proc.stderr.splitlines()) == 1, proc.stderr
  proc = _launch(f"--workdir={tmp_path}")
  _assert_one_line_error(proc, "--config is required for --mode=train")
  proc = _launch("--config=configs/no_such_task.py", f"--workdir={tmp_path}")
  _assert_one_line_error(proc, "cannot load --config=configs/no_such_task.py")


def test_config_of_another_task_than_the_workdir_is_one_line(tmp_path):
  from configs import default  # pylint: disable=g-import-not-at-top

  with open(tmp_path / "config.json", "w") as f:
    f.write(default.get_config("test", task="weight").to_json())
  for mode in ("evaluate", "saliency", "predict"):
    proc = _launch(
        "--config=configs/ef.py:test",
        f"--workdir={tmp_path}",
        f"--mode={mode}",
        "--input=/tmp/none.dcm",
    )
    _assert_one_line_error(proc, "--config is for ef", "holds a weight model")


def test_unknown_task_is_one_line(tmp_path):
  proc = _launch(
      "--config=configs/weight.py:test", f"--workdir={tmp_path}", "--config.task=heart_rate"
  )
  _assert_one_line_error(proc, "unknown task 'heart_rate'")


@pytest.mark.parametrize("platform", ["tpu", "gpu"])
def test_missing_device_kind_is_one_line(tmp_path, platform):
  proc = _launch(
      "--config=configs/weight.py:test", f"--workdir={tmp_path}", f"--config.platform={platform}"
  )
  _assert_one_line_error(proc, f"no {platform!r} devices", "backend cpu")
  assert not os.listdir(tmp_path)  # refused before anything was written


@pytest.mark.slow
def test_workdir_of_another_task_and_nan_loss_keep_checkpoints(tmp_path):
  workdir = str(tmp_path / "w")
  _launch("--config=configs/weight.py:test", f"--workdir={workdir}", *TINY, check=True)
  before = _steps(workdir)
  assert before == [3, 6]

  proc = _launch("--config=configs/ef.py:test", f"--workdir={workdir}", *TINY)
  _assert_one_line_error(proc, "holds checkpoints of another run", "weight")
  assert _steps(workdir) == before

  proc = _launch(
      "--config=configs/weight.py:test",
      f"--workdir={workdir}",
      "--config.train.steps=12",
      "--config.optim.lr=1e30",
      "--config.optim.schedule=constant",
      "--config.optim.warmup_steps=0",
      *TINY,
  )
  _assert_one_line_error(proc, "step")
  assert "non-finite" in proc.stderr or "loss became" in proc.stderr
  assert _steps(workdir) == before


@pytest.mark.slow
def test_predict_with_a_bad_input_exits_3_after_writing_the_good_ones(tmp_path, real_and_bad_dicom):
  workdir = str(tmp_path / "w")
  _launch("--config=configs/weight.py:test", f"--workdir={workdir}", *TINY, check=True)
  real, bad = real_and_bad_dicom
  out = tmp_path / "pred.csv"
  proc = _launch(
      "--config=configs/weight.py:test",
      f"--workdir={workdir}",
      "--mode=predict",
      f"--input={real},{bad}",
      f"--output={out}",
  )
  assert proc.returncode == 3, proc.stderr[-3000:]
  _assert_one_line_error(proc, "1 of 2 inputs failed", str(out))
  lines = out.read_text().splitlines()
  assert len(lines) == 3 and "NotDicomError" in lines[2] and lines[1].split(",")[1]
  proc = _launch(
      "--config=configs/weight.py:test",
      f"--workdir={workdir}",
      "--mode=predict",
      f"--input={real}",
      f"--output={out}",
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
