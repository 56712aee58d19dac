"""Every config file loads, validates and shrinks with ``:cpu``."""

import importlib
import os

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
  # The paper's defaults, and a smaller run with the same structure.
  assert (full.data.image_size, full.data.num_frames, full.data.interval_ms) == (299, 20, 100.0)
  assert (full.aug.rotation_deg, full.aug.brightness) == (20.0, 0.1)
  assert cpu.data.image_size < full.data.image_size and cpu.model.width < full.model.width
  assert set(full.to_dict()) == set(cpu.to_dict())


def test_grid_has_24_models_and_multitask_config():
  config = default.get_config()
  assert len(config.sweep.lr) * len(config.sweep.weight_decay) == 24
  multi = importlib.import_module("configs.multitask").get_config("cpu")
  assert tuple(multi.tasks) == tasks.TASK_NAMES
  modes.validate_config(multi)


@pytest.mark.parametrize("key,value,message", [
    ("task", "heart_rate", "unknown task"),
    ("loss.regression", "mae", "loss.regression"),
    ("optim.schedule", "linear", "optim.schedule"),
    ("data.image_size", 64, ">= 75 px"),
])
def test_bad_values_are_config_errors(key, value, message):
  config = default.get_config("cpu")
  section, _, leaf = key.rpartition(".")
  (config[section] if section else config)[leaf] = value
  with pytest.raises(ConfigError, match=message):
    modes.validate_config(config)


def test_unknown_config_argument():
  with pytest.raises(ValueError, match="unknown config argument 'gpu'"):
    default.get_config("gpu")
