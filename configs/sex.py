"""Config for the sex task (see configs/default.py; `configs/sex.py:cpu` shrinks it)."""

from configs import default


def get_config(arg=None):
  return default.get_config(arg, task="sex")
