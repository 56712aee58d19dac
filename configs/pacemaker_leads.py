"""Config for the pacemaker_leads task (see configs/default.py; `configs/pacemaker_leads.py:cpu` shrinks it)."""

from configs import default


def get_config(arg=None):
  return default.get_config(arg, task="pacemaker_leads")
