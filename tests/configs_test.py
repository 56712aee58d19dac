"""Every config file loads, validates and shrinks with ``:cpu``."""

import importlib
import os
import subprocess
import sys

import pytest

from configs import default
from echonet_jax import modes
from echonet_jax import tasks
from echonet_jax.errors import ConfigError
from tests.testing import REPO


@pytest.mark.parametrize("name", tasks.TASK_NAMES)
def test_each_task_has_a_config(name):
  assert os.path.exists(os.path.join(REPO, "configs", f"{name}.py"))
  module = importlib.import_module(f"configs.{name}")
  full, cpu = module.get_config(), module.get_config("cpu")
  assert full.task == cpu.task == name
  modes.validate_config(full)
  modes.validate_config(cpu)
  # The paper's defaults (image size 0: the source's native 299 px), and a smaller run with the
  # same structure.
  assert (full.data.image_size, full.data.num_frames, full.data.interval_ms) == (0, 20, 100.0)
  assert modes.resolve_image_size(module.get_config()).data.image_size == 299
  assert (full.aug.rotation_deg, full.aug.brightness) == (20.0, 0.1)
  assert 0 < cpu.data.image_size < 299 and cpu.model.width < full.model.width
  assert set(full.to_dict()) == set(cpu.to_dict())


def test_grid_has_24_models_and_multitask_config():
  config = default.get_config()
  assert len(config.sweep.lr) * len(config.sweep.weight_decay) == 24
  multi = importlib.import_module("configs.multitask").get_config("cpu")
  assert tuple(multi.tasks) == tasks.TASK_NAMES
  modes.validate_config(multi)


BAD_VALUES = [
    ("task", "heart_rate", "unknown task"),
    ("loss.regression", "mae", "loss.regression"),
    ("optim.schedule", "linear", "optim.schedule"),
    ("data.image_size", 64, "data.image_size=64; the network needs >= 75 px"),
    ("data.image_size", -1, "data.image_size=-1; must be >= 0"),
    ("data.num_frames", 0, "data.num_frames=0; must be >= 1"),
    ("data.interval_ms", 0.0, "data.interval_ms=0.0; must be > 0"),
    ("data.interval_ms", float("nan"), "data.interval_ms=nan; must be finite"),
    ("data.default_fps", 0.0, "data.default_fps=0.0; must be in [1, 1000]"),
    ("data.default_fps", 5000.0, "data.default_fps=5000.0; must be in [1, 1000]"),
    ("data.test_frac", 1.0, "data.test_frac=1.0; must be in [0, 1)"),
    ("data.val_frac", -0.1, "data.val_frac=-0.1; must be in [0, 1)"),
    ("data.preprocess_workers", -1, "data.preprocess_workers=-1; must be >= 0"),
    ("data.channels", 2, "data.channels=2"),
    ("train.batch_size", 0, "train.batch_size=0; must be >= 1"),
    ("train.steps", -5, "train.steps=-5; must be >= 1"),
    ("train.eval_every", 0, "train.eval_every=0; must be >= 1"),
    ("train.workers", -1, "train.workers=-1; must be >= 0"),
    ("optim.lr", 0.0, "optim.lr=0.0; must be > 0"),
    ("optim.final_lr_frac", 2.0, "optim.final_lr_frac=2.0; must be <= 1"),
    ("eval.n_boot", -1, "eval.n_boot=-1; must be >= 0"),
    ("saliency.num_samples", 0, "saliency.num_samples=0; must be >= 1"),
    ("saliency.fps", 0.0, "saliency.fps=0.0; must be > 0"),
]


@pytest.mark.parametrize("key,value,message", BAD_VALUES)
def test_bad_values_are_config_errors(key, value, message):
  config = default.get_config("cpu")
  section, _, leaf = key.rpartition(".")
  (config[section] if section else config)[leaf] = value
  with pytest.raises(ConfigError) as info:
    modes.validate_config(config)
  assert message in str(info.value) and "\n" not in str(info.value)


def test_native_image_size_follows_the_source():
  config = default.get_config(task="ef")
  modes.validate_config(config)
  assert modes.resolve_image_size(config).data.image_size == 299
  dynamic = default.get_config(task="ef")
  dynamic.data.echonet_dynamic_dir = "/data/EchoNet-Dynamic"
  modes.validate_config(dynamic)  # 112 px is above the network's 75 px minimum
  assert modes.resolve_image_size(dynamic).data.image_size == 112
  explicit = default.get_config(task="ef")
  explicit.data.update(echonet_dynamic_dir="/data/EchoNet-Dynamic", image_size=299)
  assert modes.resolve_image_size(explicit).data.image_size == 299  # overridable


def test_split_fractions_always_leave_training_data():
  # val_frac is a fraction of what test_frac leaves, so both just below 1 still leave some.
  config = default.get_config("cpu")
  config.data.update(test_frac=0.5, val_frac=0.9)
  modes.validate_config(config)


def test_unknown_config_argument():
  with pytest.raises(ValueError, match="unknown config argument 'gpu'"):
    default.get_config("gpu")


# Through the CLI: one `error:` line and no traceback, before any work (no workdir is created).
CLI_BAD_VALUES = [
    ("data.num_frames", "0", "data.num_frames=0; must be >= 1"),
    ("data.interval_ms", "-100", "data.interval_ms=-100.0; must be > 0"),
    ("data.image_size", "64", "data.image_size=64; the network needs >= 75 px"),
    ("data.default_fps", "0", "data.default_fps=0.0; must be in [1, 1000]"),
    ("data.test_frac", "1.5", "data.test_frac=1.5; must be in [0, 1)"),
    ("data.preprocess_workers", "-2", "data.preprocess_workers=-2; must be >= 0"),
    ("train.batch_size", "0", "train.batch_size=0; must be >= 1"),
]


@pytest.mark.parametrize("key,value,message", CLI_BAD_VALUES)
def test_bad_values_on_the_command_line(tmp_path, key, value, message):
  workdir = tmp_path / "w"
  proc = subprocess.run(
      [
          sys.executable,
          os.path.join(REPO, "launch.py"),
          "--config=configs/weight.py:test",
          f"--workdir={workdir}",
          f"--config.{key}={value}",
      ],
      cwd=REPO,
      capture_output=True,
      text=True,
      timeout=120,
  )
  assert proc.returncode == 1, proc.stderr[-2000:]
  assert "Traceback" not in proc.stderr
  errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
  assert errors == [f"error: {errors[0][7:]}"] and message in errors[0], proc.stderr[-2000:]
  assert not workdir.exists()
