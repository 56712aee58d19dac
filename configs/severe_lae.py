"""Config for the severe_lae task (see configs/default.py; `configs/severe_lae.py:cpu` shrinks it)."""

from configs import default


def get_config(arg=None):
  return default.get_config(arg, task="severe_lae")
