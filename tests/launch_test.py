"""launch.py end to end on the tiny phantom: train, resume after kill -9, and bad inputs."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from echonet_jax.training import writers

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


@pytest.mark.slow
def test_train_checkpoints_logs_and_resumes(tmp_path):
  workdir = str(tmp_path / "w")
  _launch("--config=configs/weight.py:test", f"--workdir={workdir}", check=True)
  assert _steps(workdir) == [3, 6]
  with open(os.path.join(workdir, "config.json")) as f:
    assert json.load(f)["task"] == "weight"
  rows = writers.read_metrics(workdir)
  assert any("train/loss" in r for r in rows) and any("val/weight/mae" in r for r in rows)
  assert any(n.startswith("events.out.tfevents") for n in os.listdir(os.path.join(workdir, "tb")))
  # The end-of-training evaluation on the test split.
  for name in ("metrics.json", "predictions.csv", "scatter.png", "bland_altman.png", "frames.png"):
    assert os.path.exists(os.path.join(workdir, "eval", "test", name)), name
  # Run again with more steps: resumes from step 6, not from scratch.
  proc = _launch("--config=configs/weight.py:test", f"--workdir={workdir}",
                 "--config.train.steps=9", *TINY, check=True)
  assert "resuming from step 6" in proc.stderr
  assert _steps(workdir)[-1] == 9


@pytest.mark.slow
def test_kill_9_then_resume_continues_the_same_trajectory(tmp_path):
  args = ["--config=configs/weight.py:test", "--config.train.steps=120",
          "--config.train.checkpoint_every=10", "--config.train.eval_every=1000",
          "--config.train.log_every=1", *TINY]
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
  proc = _launch("--config=configs/weight.py:test", "--workdir=/tmp/unused",
                 "--config.train.no_such_key=1")
  _assert_one_line_error(proc, "unknown config key", "no_such_key")


def test_unknown_task_is_one_line(tmp_path):
  proc = _launch("--config=configs/weight.py:test", f"--workdir={tmp_path}",
                 "--config.task=heart_rate")
  _assert_one_line_error(proc, "unknown task 'heart_rate'")


def test_missing_device_kind_is_one_line(tmp_path):
  proc = _launch("--config=configs/weight.py:test", f"--workdir={tmp_path}",
                 "--config.platform=tpu")
  _assert_one_line_error(proc, "no 'tpu' devices")


@pytest.mark.slow
def test_workdir_of_another_task_and_nan_loss_keep_checkpoints(tmp_path):
  workdir = str(tmp_path / "w")
  _launch("--config=configs/weight.py:test", f"--workdir={workdir}", *TINY, check=True)
  before = _steps(workdir)
  assert before == [3, 6]

  proc = _launch("--config=configs/ef.py:test", f"--workdir={workdir}", *TINY)
  _assert_one_line_error(proc, "holds checkpoints of another run", "weight")
  assert _steps(workdir) == before

  proc = _launch("--config=configs/weight.py:test", f"--workdir={workdir}",
                 "--config.train.steps=12", "--config.optim.lr=1e30",
                 "--config.optim.schedule=constant", "--config.optim.warmup_steps=0", *TINY)
  _assert_one_line_error(proc, "step")
  assert "non-finite" in proc.stderr or "loss became" in proc.stderr
  assert _steps(workdir) == before


@pytest.mark.slow
def test_predict_with_a_bad_input_exits_3_after_writing_the_good_ones(tmp_path, real_and_bad_dicom):
  workdir = str(tmp_path / "w")
  _launch("--config=configs/weight.py:test", f"--workdir={workdir}", *TINY, check=True)
  real, bad = real_and_bad_dicom
  out = tmp_path / "pred.csv"
  proc = _launch("--config=configs/weight.py:test", f"--workdir={workdir}", "--mode=predict",
                 f"--input={real},{bad}", f"--output={out}")
  assert proc.returncode == 3, proc.stderr[-3000:]
  _assert_one_line_error(proc, "1 of 2 inputs failed", str(out))
  lines = out.read_text().splitlines()
  assert len(lines) == 3 and "NotDicomError" in lines[2] and lines[1].split(",")[1]
  proc = _launch("--config=configs/weight.py:test", f"--workdir={workdir}", "--mode=predict",
                 f"--input={real}", f"--output={out}")
  assert proc.returncode == 0, proc.stderr[-3000:]
