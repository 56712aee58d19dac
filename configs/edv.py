"""Config for the edv task (see configs/default.py; `configs/edv.py:cpu` shrinks it)."""

from configs import default


def get_config(arg=None):
  return default.get_config(arg, task="edv")
