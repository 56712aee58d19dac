"""Config for the weight task (see configs/default.py; `configs/weight.py:cpu` shrinks it)."""

from configs import default


def get_config(arg=None):
  return default.get_config(arg, task="weight")
