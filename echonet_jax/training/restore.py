"""Loads a trained workdir: its saved config, the network and the best (or latest) checkpoint."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Callable

import jax
import ml_collections

from echonet_jax.training import checkpoints as checkpoints_lib
from echonet_jax.training import parallel
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
  step: int
  workdir: str


def load_config(workdir: str) -> ml_collections.ConfigDict:
  """A workdir's saved ``config.json`` as a ConfigDict."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise FileNotFoundError(f"{workdir}: not a training workdir (no config.json)")
  with open(path) as f:
    return ml_collections.ConfigDict(json.load(f))


def load(workdir: str, *, which: str = "best", config: ml_collections.ConfigDict | None = None
         ) -> TrainedModel:
  """Restores ``workdir``'s best (or ``which="latest"``) checkpoint for inference."""
  config = config or load_config(workdir)
  names = train_lib.task_names(config)
  ckpts = checkpoints_lib.Checkpoints(os.path.join(workdir, "checkpoints"),
                                      best_metric=BEST_METRIC, best_mode="min", async_save=False)
  step = ckpts.best_step() if which == "best" else ckpts.latest_step()
  if step is None:
    raise FileNotFoundError(f"{workdir}: no checkpoint to restore")
  mesh = parallel.make_mesh()
  model = train_lib.create_model(config, names)
  tx = train_lib.make_optimizer(config.optim, config.train.steps)
  shape = train_lib.input_shape(config)
  abstract = jax.eval_shape(
      lambda r: train_lib.init(model, tx, r, shape, {}, names), jax.random.PRNGKey(0))
  rep = parallel.replicated(mesh)
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=rep), abstract)
  state = ckpts.restore(step, abstract)
  ckpts.close()
  _, eval_fn = train_lib.make_steps(model, tx, config.loss, mesh)
  return TrainedModel(config=config, names=names, model=model, state=state, eval_fn=eval_fn,
                      mesh=mesh, step=step, workdir=workdir)
