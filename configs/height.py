"""Config for the height task (see configs/default.py; `configs/height.py:cpu` shrinks it)."""

from configs import default


def get_config(arg=None):
  return default.get_config(arg, task="height")
