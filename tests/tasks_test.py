"""The task list: ten numeric paper tasks and the categorical view task."""

import math

from echonet_jax import phantom
from echonet_jax import tasks


def test_view_task_classes_are_the_phantom_views():
  view = tasks.get_task("view")
  assert view.is_categorical and not view.is_binary and not view.is_regression
  assert view.classes == tasks.VIEW_CLASSES == phantom.VIEW_CLASSES
  assert view.num_outputs == 7 and tasks.get_task("sex").num_outputs == 1
  assert "view" not in tasks.TASK_NAMES and len(tasks.TASK_NAMES) == 10


def test_view_label_is_the_class_index():
  assert tasks.view_label("A4C") == 0.0
  assert tasks.view_label(" psax ") == tasks.VIEW_CLASSES.index("PSAX")
  assert tasks.view_label("SUBCOSTAL") == tasks.VIEW_CLASSES.index("other")
  assert math.isnan(tasks.view_label(""))
