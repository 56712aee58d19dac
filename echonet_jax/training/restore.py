"""Loads a trained workdir: its saved config, the network and the best (or latest) checkpoint."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any
from typing import Callable
from typing import Iterable

from absl import logging
import jax
import ml_collections

from echonet_jax import parallel
from echonet_jax.errors import ConfigError
from echonet_jax.evaluation import view_model
from echonet_jax.training import checkpoints as checkpoints_lib
from echonet_jax.training import step as train_lib

BEST_METRIC = "val/score"  # how the training loop ranks checkpoints (lower is better)


@dataclasses.dataclass
class TrainedModel:
  """A restored model: ``eval_fn(state, images) -> {task: (B,)}`` on ``mesh``."""

  config: ml_collections.ConfigDict
  names: tuple[str, ...]
  model: Any
  state: train_lib.TrainState
  eval_fn: Callable[..., Any]
  mesh: jax.sharding.Mesh
  step: int  # the checkpoint step that was loaded
  workdir: str
  best_score: float | None = None  # its validation score (BEST_METRIC), None when it had none


def load_config(workdir: str) -> ml_collections.ConfigDict:
  """A workdir's saved ``config.json`` as a ConfigDict."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise FileNotFoundError(f"{workdir}: not a training workdir (no config.json)")
  with open(path) as f:
    return ml_collections.ConfigDict(json.load(f))


def load(
    workdir: str, *, which: str = "best", config: ml_collections.ConfigDict | None = None
) -> TrainedModel:
  """Restores ``workdir``'s best (or ``which="latest"``) checkpoint for inference."""
  config = config or load_config(workdir)
  names = train_lib.task_names(config)
  ckpts = checkpoints_lib.Checkpoints(
      os.path.join(workdir, "checkpoints"), best_metric=BEST_METRIC, best_mode="min", read_only=True
  )
  try:
    steps = ckpts.candidates(which)
    if not steps:
      raise FileNotFoundError(f"{workdir}: no checkpoint to restore")
    mesh = parallel.make_mesh()
    model = train_lib.create_model(config, names)
    tx = train_lib.make_optimizer(config.optim, config.train.steps)
    shape = train_lib.input_shape(config)
    abstract = jax.eval_shape(
        lambda r: train_lib.init(model, tx, r, shape, {}, names), jax.random.PRNGKey(0)
    )
    rep = parallel.replicated(mesh)
    abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=rep), abstract
    )
    step, state, _ = ckpts.restore_first(steps, abstract)
    score = ckpts.metric(step)
  finally:
    ckpts.close()
  logging.info("loaded checkpoint step %d (%s)", step, describe(score, which))
  _, eval_fn = train_lib.make_steps(model, tx, config.loss, mesh)
  return TrainedModel(
      config=config,
      names=names,
      model=model,
      state=state,
      eval_fn=eval_fn,
      mesh=mesh,
      step=step,
      workdir=workdir,
      best_score=score,
  )


def describe(score: float | None, which: str = "best") -> str:
  """How a loaded checkpoint ranks, e.g. "best val/score 0.4321" (for logs and reports)."""
  if score is None:
    return f"{which} readable; no {BEST_METRIC} saved"
  return f"{which} {BEST_METRIC} {score:.4g}"


def load_view_predictor(
    workdir: str, views: Iterable[str] | None = None
) -> Callable[[Any], tuple[str, float]]:
  """The view model trained in ``workdir`` (configs/view.py) as a ``data.views`` predictor: a video
  row (with ``.path``) -> (view, confidence). ConfigError when ``workdir`` holds no such model."""
  try:
    trained = load(workdir)
  except FileNotFoundError as e:
    raise ConfigError(f"view model: {e}") from None
  return view_model.predictor(trained, views)
