"""The sweep's grid: its members, one job's share of them, the strategy and the programs."""

import pytest

from configs import weight
from echonet_jax.errors import ConfigError
from echonet_jax.experiments import sweep_grid
from echonet_jax.training import sweep as sweep_lib


def _config(strategy):
  config = weight.get_config("test")  # a 2 x 2 grid: lr (1e-3, 3e-4) x weight decay (1e-4, 0)
  config.sweep.strategy = strategy
  return config


def test_bad_grid_inputs_get_one_clear_line():
  config = _config("vmap")
  config.sweep.lr = ()
  with pytest.raises(ConfigError, match=r"the sweep grid is empty \(sweep.lr=\[\]"):
    sweep_grid.grid(config)
  config.sweep.lr = (1e-3, -1e-4)
  with pytest.raises(ConfigError, match="sweep.lr contains -0.0001; learning rates must be"):
    sweep_grid.grid(config)
  config = _config("vmap")
  config.sweep.members = (0, 4, 7)
  with pytest.raises(ConfigError, match=r"\[4, 7\] out of range; the grid has 4 members, 0..3"):
    sweep_grid.selected(config, sweep_grid.grid(config))
  config.sweep.strategy = "pmap"
  with pytest.raises(ConfigError, match="sweep.strategy='pmap'"):
    sweep_grid.resolve_strategy(config)


def test_members_split_into_programs():
  members = sweep_grid.grid(weight.get_config("cpu"))  # the paper's 6 x 4
  assert len(members) == 24 and members[5] == sweep_lib.Member(5, 1e-3, 1e-4)
  assert [len(g) for g in sweep_grid.groups(members, "vmap", 10)] == [10, 10, 4]
  assert [len(g) for g in sweep_grid.groups(members, "vmap", 0)] == [24]
  assert [len(g) for g in sweep_grid.groups(members, "sequential", 10)] == [1] * 24
  assert sweep_grid.resolve_strategy(_config("auto"), platform="cpu") == "sequential"
