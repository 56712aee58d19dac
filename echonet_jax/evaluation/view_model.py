"""A trained view classifier (``configs/view.py``) applied to DICOM files: which view each video is.

Used by ``preprocess --view_model W`` / ``config.data.view_model`` (fill blank views, see
``data/views.py``; ``training.restore.load_view_predictor`` loads the workdir) and by ``--mode=predict`` (the ``view`` columns). A video's view is the class of
highest mean frame probability; its confidence is that probability.
"""

from __future__ import annotations

from typing import Any
from typing import Callable
from typing import Iterable
from typing import Mapping

import numpy as np

from echonet_jax import tasks as tasks_lib
from echonet_jax.data import normalization
from echonet_jax.data import video
from echonet_jax.data import views as views_lib
from echonet_jax.errors import ConfigError
from echonet_jax.evaluation import inference


def categorical_names(trained: Any) -> list[str]:
  """The categorical tasks of a restored model (``restore.TrainedModel``)."""
  return [n for n in trained.names if tasks_lib.get_task(n).is_categorical]


def check_view_model(trained: Any, views: Iterable[str] | None = None) -> tasks_lib.Task:
  """The view task of ``trained``; ConfigError when it is not a view model or lacks a view asked for.

  ``views`` are the views a run selects (e.g. ``config.data.views``).
  """
  if tasks_lib.VIEW_TASK not in trained.names:
    raise ConfigError(
        f"{trained.workdir}: a model of task(s) {', '.join(trained.names)}, not a view model; pass "
        "the workdir of a model trained with configs/view.py"
    )
  task = tasks_lib.get_task(tasks_lib.VIEW_TASK)
  views_lib.check_classes(task.classes, views, trained.workdir)
  return task


def read_clip(trained: Any, path: str) -> Any:
  """``path`` (DICOM or AVI) read as ``trained`` saw its videos (an EchoClip)."""
  return video.read_for_model(path, trained.config.data)


def video_outputs(trained: Any, frames: np.ndarray) -> dict[str, np.ndarray]:
  """Per-task video outputs of uint8 ``frames``: the mean over frames, or over the covering clips
  of a clip model ((classes,) or a scalar)."""
  predict_fn = inference.batched_predict_fn(trained.eval_fn, trained.state, trained.mesh)
  images = normalization.to_images(frames, trained.config.data.channels)
  out = predict_fn(inference.model_inputs(images, inference.clip_spec(trained.config)))
  return {name: value.mean(axis=0) for name, value in out.items()}


def columns(names: Iterable[str]) -> list[str]:
  """Predict-CSV columns of these tasks: the value, or for a categorical task its class,
  ``<task>_confidence`` and ``<task>_prob_<class>`` per class."""
  out = []
  for name in names:
    task = tasks_lib.get_task(name)
    out.append(name)
    if task.is_categorical:
      out += [f"{name}_confidence", *[f"{name}_prob_{c}" for c in task.classes]]
  return out


def row_values(outputs: Mapping[str, np.ndarray]) -> dict[str, Any]:
  """One predict-CSV row's values (see :func:`columns`) from :func:`video_outputs`."""
  row: dict[str, Any] = {}
  for name, value in outputs.items():
    task = tasks_lib.get_task(name)
    if not task.is_categorical:
      row[name] = float(value)
      continue
    best = int(np.argmax(value))
    row[name] = task.classes[best]
    row[f"{name}_confidence"] = float(value[best])
    row.update({f"{name}_prob_{c}": float(p) for c, p in zip(task.classes, value)})
  return row


def predictor(
    trained: Any, views: Iterable[str] | None = None
) -> Callable[[Any], tuple[str, float]]:
  """A ``data.views`` predictor of a restored view model: a video row (with ``.path``) -> (view,
  confidence).

  Raises ConfigError when ``trained`` is not a view model or cannot tell apart the ``views`` asked
  for; the predictor raises an EchoReadError for a file it cannot read.
  """
  task = check_view_model(trained, views)

  def predict(row: Any) -> tuple[str, float]:
    probs = video_outputs(trained, read_clip(trained, row.path).frames)[task.name]
    best = int(np.argmax(probs))
    return task.classes[best], float(probs[best])

  return predict
