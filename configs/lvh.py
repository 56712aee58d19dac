"""Config for the lvh task (see configs/default.py; `configs/lvh.py:cpu` shrinks it)."""

from configs import default


def get_config(arg=None):
  return default.get_config(arg, task="lvh")
