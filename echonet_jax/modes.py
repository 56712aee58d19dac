"""What each ``launch.py --mode`` does: thin glue from a config and paths to the library."""

from __future__ import annotations

import ml_collections

from echonet_jax import tasks as tasks_lib
from echonet_jax.errors import ConfigError

_LOSSES = {"classification": ("xent", "focal"), "regression": ("mse", "huber")}


def validate_config(config: ml_collections.ConfigDict) -> None:
  """Raises ConfigError with one clear line for a config that cannot run."""
  names = tuple(config.get("tasks") or ()) or (config.task,)
  for name in names:
    if name not in tasks_lib.TASKS:
      raise ConfigError(f"unknown task {name!r}; known tasks: {', '.join(tasks_lib.TASK_NAMES)}")
  for kind, allowed in _LOSSES.items():
    if config.loss[kind] not in allowed:
      raise ConfigError(f"loss.{kind}={config.loss[kind]!r}; use one of {allowed}")
  if config.optim.schedule not in ("constant", "cosine"):
    raise ConfigError(f"optim.schedule={config.optim.schedule!r}; use 'constant' or 'cosine'")
  if config.data.image_size < 75:
    raise ConfigError(f"data.image_size={config.data.image_size}; the network needs >= 75 px")
  if config.data.channels not in (1, 3):
    raise ConfigError(f"data.channels={config.data.channels}; use 1 (grayscale) or 3")
  if config.train.batch_size <= 0 or config.train.steps <= 0:
    raise ConfigError("train.batch_size and train.steps must be positive")


def train(config: ml_collections.ConfigDict, workdir: str) -> dict[str, float]:
  validate_config(config)
  from echonet_jax import trainer  # pylint: disable=g-import-not-at-top
  return trainer.train_and_evaluate(config, workdir)


def preprocess(config: ml_collections.ConfigDict) -> str:
  """Builds (or finds) the cache of ``config``'s data source and returns its folder."""
  validate_config(config)
  from echonet_jax import data  # pylint: disable=g-import-not-at-top
  cache_dir = data.prepare_cache(config)
  print(cache_dir)
  return cache_dir


def evaluate(config: ml_collections.ConfigDict, workdir: str, split: str):
  raise NotImplementedError("evaluate mode lands with the evaluation capability")


def predict(config: ml_collections.ConfigDict, workdirs, inputs, output):
  raise NotImplementedError("predict mode lands with the evaluation capability")


def saliency(config: ml_collections.ConfigDict, workdir: str, split: str, inputs):
  raise NotImplementedError("saliency mode lands with the interpretability capability")
