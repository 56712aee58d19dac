"""Config for the age task (see configs/default.py; `configs/age.py:cpu` shrinks it)."""

from configs import default


def get_config(arg=None):
  return default.get_config(arg, task="age")
