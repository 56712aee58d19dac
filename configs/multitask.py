"""Multi-task heads: all ten tasks from one network with summed losses (the paper found no gain)."""

from configs import default
from echonet_jax import tasks


def get_config(arg=None):
  config = default.get_config(arg, task=tasks.TASK_NAMES[0])
  config.tasks = tasks.TASK_NAMES
  return config
