"""Config for the view classifier: which echo view a video is (see docs/views.md).

Trains the categorical ``view`` task (classes ``tasks.VIEW_CLASSES``) from the labels CSV's ``view``
column (blank = missing label) on a phantom with one video of every view per study. Every view is
kept (``data.views = ()``); ``:cpu`` and ``:test`` shrink the run as for the other tasks.
"""

from configs import default


def get_config(arg=None):
  config = default.get_config(arg, task="view")
  config.data.views = ()  # the classifier must see every view, not only A4C
  config.data.phantom.views = "all"
  modifiers = {m.strip() for m in (arg or "").split(",")}
  if "test" in modifiers:
    config.data.phantom.num_studies = 12  # 84 videos
    config.data.test_frac = 0.25  # 3 test, 2 val and 7 train patients of the 12
    config.data.val_frac = 0.2
  elif "cpu" in modifiers:
    config.data.phantom.num_studies = 150  # 1,050 videos
  return config
