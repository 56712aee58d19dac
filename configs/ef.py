"""Config for the ef task (see configs/default.py; `configs/ef.py:cpu` shrinks it)."""

from configs import default


def get_config(arg=None):
  return default.get_config(arg, task="ef")
