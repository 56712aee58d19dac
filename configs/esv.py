"""Config for the esv task (see configs/default.py; `configs/esv.py:cpu` shrinks it)."""

from configs import default


def get_config(arg=None):
  return default.get_config(arg, task="esv")
