"""The training loop: data, sharded steps, validation, checkpoints, logs and a progress bar."""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any

from absl import logging
import jax
import ml_collections
import numpy as np
import tqdm

from echonet_jax import parallel
from echonet_jax import tasks as tasks_lib
from echonet_jax import writers
from echonet_jax.data import cache
from echonet_jax.data import eval_stream as eval_stream_lib
from echonet_jax.data import prepare as data_lib
from echonet_jax.data import selection
from echonet_jax.data import spec as spec_lib
from echonet_jax.data import train_stream
from echonet_jax.errors import TrainingError
from echonet_jax.evaluation import inference
from echonet_jax.evaluation import metrics as metrics_lib
from echonet_jax.training import checkpoints as checkpoints_lib
from echonet_jax.training import restore
from echonet_jax.training import step as train_lib
from echonet_jax.training import workdir as workdir_lib

BEST_METRIC = restore.BEST_METRIC  # lower is better; see validation_metrics


# Keys that must match between a workdir's saved config and the run resuming in it: the network,
# everything the saved data-iterator state depends on (Grain restores it into the new loader), and
# the cache's identity (CacheSpec: frames, views, the patient split -- a resume on another split
# would train on the test patients).
_IDENTITY = (
    "task",
    "tasks",
    "model",
    "data.channels",
    "seed",
    "aug",
    "train.batch_size",
    "train.workers",
) + spec_lib.CONFIG_KEYS


def _lookup(config: ml_collections.ConfigDict | dict, dotted: str) -> Any:
  value = config
  for part in dotted.split("."):
    value = value[part]
  return value.to_dict() if isinstance(value, ml_collections.ConfigDict) else value


def _normalise(value: Any) -> Any:
  return json.loads(json.dumps(value, default=list))


def check_workdir(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Refuses a workdir whose checkpoints belong to another task or network; saves the config."""
  path = os.path.join(workdir, "config.json")
  ckpt_dir = os.path.join(workdir, "checkpoints")
  has_ckpt = os.path.isdir(ckpt_dir) and any(n.isdigit() for n in os.listdir(ckpt_dir))
  if has_ckpt and os.path.exists(path):
    with open(path) as f:
      saved = json.load(f)
    saved.get("model", {}).setdefault("name", "inception_resnet_v1")  # saved before model.name
    for key in _IDENTITY:
      old, new = _normalise(_lookup(saved, key)), _normalise(_lookup(config, key))
      if old != new:
        raise TrainingError(
            f"{workdir} holds checkpoints of another run ({key}={old!r}, this run has {new!r}); "
            "use a new --workdir"
        )
  if jax.process_index() == 0:
    os.makedirs(workdir, exist_ok=True)
    with open(path + ".tmp", "w") as f:
      f.write(config.to_json_best_effort(indent=2, sort_keys=True))
    os.replace(path + ".tmp", path)


def validation_metrics(
    pred: dict[str, Any], names: tuple[str, ...], label_stats: dict[str, dict[str, float]]
) -> dict[str, float]:
  """Video-level validation metrics, and ``val/score`` (lower is better) to rank checkpoints.

  The score averages, over tasks, 1 − AUC for binary tasks, 1 − accuracy for categorical ones and
  MAE / training-set std for regression, so single- and multi-task runs are ranked the same way.
  """
  out, scores = {"val/num_videos": len(next(iter(pred["frame_outputs"].values())))}, []
  for name in names:
    y = pred["labels"][name]
    p = pred["frame_outputs"][name].mean(axis=1)
    keep = ~np.isnan(y)
    y, p = y[keep], p[keep]
    if tasks_lib.get_task(name).is_categorical:
      accuracy = float(metrics_lib.accuracy(y, p)) if y.size else math.nan
      out[f"val/{name}/accuracy"] = accuracy
      scores.append(1.0 - accuracy)
    elif tasks_lib.get_task(name).is_binary:
      auc = float(metrics_lib.roc_auc(y, p)) if len(np.unique(y)) == 2 else math.nan
      out[f"val/{name}/auc"] = auc
      scores.append(1.0 - auc)
    else:
      mae = float(np.mean(np.abs(y - p))) if y.size else math.nan
      out[f"val/{name}/mae"] = mae
      if y.size > 1:
        out[f"val/{name}/r2"] = float(metrics_lib.r2(y, p))
      scores.append(mae / max(label_stats.get(name, {}).get("std", 1.0), 1e-6))
  finite = [s for s in scores if not math.isnan(s)]
  out[BEST_METRIC] = float(np.mean(finite)) if finite else math.nan
  return out


def train_loader(config: ml_collections.ConfigDict, cache_dir: str, names: tuple[str, ...]):
  """The Grain loader of training batches: the same batches for every run with the same config."""
  return train_stream.train_loader(
      cache_dir,
      tasks=names,
      global_batch_size=config.train.batch_size,
      seed=config.seed,
      num_workers=config.train.workers,
      rotation_deg=config.aug.rotation_deg,
      brightness=config.aug.brightness,
      image_size=config.data.image_size,
      channels=config.data.channels,
      views=tuple(config.data.views) or None,
      prefetch=config.train.prefetch,
      clip=inference.clip_spec(config),
      min_view_confidence=config.data.get("view_min_confidence", 0.0),
  )


def eval_stream(config, cache_dir, split, names):
  """This process's eval batches of ``split`` and how many batches every process runs.

  Returns (None, 0) when the split has no video with these tasks' labels.
  """
  views = tuple(config.data.views) or None
  min_confidence = config.data.get("view_min_confidence", 0.0)
  try:
    rows = selection.select_videos(
        cache_dir, split, tasks=names, views=views, min_view_confidence=min_confidence
    )
  except (FileNotFoundError, ValueError) as e:
    logging.warning("no validation: %s", e)
    return None, 0
  v = config.train.eval_videos_per_batch
  per_process = math.ceil(len(rows) / jax.process_count())
  batches = eval_stream_lib.eval_batches(
      cache_dir,
      split,
      tasks=names,
      videos_per_batch=v,
      image_size=config.data.image_size,
      channels=config.data.channels,
      views=views,
      min_view_confidence=min_confidence,
  )
  return batches, math.ceil(per_process / v)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, float]:
  """Trains ``config`` in ``workdir`` (resuming from its latest readable checkpoint); returns the
  last metrics. Holds the workdir's lock; a full or read-only disk is one TrainingError line."""
  parallel.check_platform(config.get("platform"))
  with workdir_lib.lock_for_this_process(workdir):
    try:
      return _train(config, workdir)
    except (OSError, ValueError) as e:  # Orbax / TensorStore report a full disk as ValueError.
      error = workdir_lib.disk_error(e, os.path.join(workdir, "checkpoints"))
      if error is None:
        raise
      raise error from None


def _resume(ckpts, state, data_iter, workdir):
  """(first step to run, state): from the latest readable checkpoint, setting unreadable newer
  ones aside, or from scratch."""
  steps = ckpts.candidates("latest")
  if not steps:
    return 1, state
  try:
    start, state, unreadable = ckpts.restore_first(steps, state, data_iterator=data_iter)
  except TrainingError:
    raise TrainingError(
        f"{workdir}: no checkpoint is readable (steps {steps}); move "
        f"{ckpts.directory} aside to start again"
    ) from None
  if unreadable:
    ckpts.set_aside(unreadable)
  logging.info("resuming from step %d in %s", start, workdir)
  return start + 1, state


def _train(config: ml_collections.ConfigDict, workdir: str) -> dict[str, float]:
  names = train_lib.task_names(config)
  check_workdir(config, workdir)
  cache_dir = data_lib.prepare_cache(config, load_view_predictor=restore.load_view_predictor)
  meta = cache.read_meta(cache_dir)
  label_stats = meta.get("label_stats", {})

  mesh = parallel.make_mesh()
  parallel.check_batch_size(config.train.batch_size, mesh)
  model = train_lib.create_model(config, names)
  tx = train_lib.make_optimizer(config.optim, config.train.steps)
  lr_at = train_lib.learning_rate_schedule(config.optim, config.train.steps)
  image_shape = train_lib.input_shape(config)
  clip = inference.clip_spec(config)
  rng = jax.random.PRNGKey(config.seed)
  state = jax.jit(
      lambda r: train_lib.init(model, tx, r, image_shape, label_stats, names),
      out_shardings=parallel.replicated(mesh),
  )(rng)
  train_fn, eval_fn = train_lib.make_steps(model, tx, config.loss, mesh)

  data_iter = iter(train_loader(config, cache_dir, names))

  ckpts = checkpoints_lib.Checkpoints(
      os.path.join(workdir, "checkpoints"),
      keep_latest=config.train.keep_checkpoints,
      best_metric=BEST_METRIC,
      best_mode="min",
  )
  try:
    first, state = _resume(ckpts, state, data_iter, workdir)
    # The lr and weight decay live in the optimiser state; the config's rule a resumed run.
    state = train_lib.with_hyperparams(state, config.optim.lr, config.optim.weight_decay)
    # Replicated like the rest of the state, so the second step does not compile anew.
    state = jax.device_put(state, parallel.replicated(mesh))
    writer = writers.MetricWriter(workdir, enabled=jax.process_index() == 0)
  except BaseException:
    _close(ckpts, quiet=True)
    raise
  steps = config.train.steps
  if first == 1:
    writer.write_config(0, config.to_json_best_effort(indent=2, sort_keys=True))
  bar = tqdm.tqdm(
      total=steps,
      initial=first - 1,
      unit="step",
      dynamic_ncols=True,
      disable=jax.process_index() != 0,
  )
  last: dict[str, float] = {}
  t0, n0 = time.perf_counter(), first - 1
  done = False
  try:
    for step in range(first, steps + 1):
      batch = parallel.global_batch(next(data_iter), mesh)
      state, step_metrics = train_fn(state, batch)
      bar.update(1)
      if step % config.train.log_every == 0 or step == steps:
        host = {k: float(v) for k, v in jax.device_get(step_metrics).items()}
        if not math.isfinite(host["loss"]):
          raise TrainingError(
              f"the loss became {host['loss']} at step {step}; stopped, the last good checkpoint "
              f"(step {ckpts.latest_step()}) is kept in {workdir}"
          )
        dt = time.perf_counter() - t0
        host["steps_per_s"] = (step - n0) / dt
        host["images_per_s"] = host["steps_per_s"] * config.train.batch_size
        host["lr"] = float(lr_at(step - 1))  # the rate this step's update used (count = step - 1)
        t0, n0 = time.perf_counter(), step
        writer.write(step, {f"train/{k}": v for k, v in host.items()})
        bar.set_postfix(
            loss=f"{host['loss']:.4f}",
            steps_s=f"{host['steps_per_s']:.2f}",
            img_s=f"{host['images_per_s']:.0f}",
        )
        last.update(host)
      val = None
      if step % config.train.eval_every == 0 or step == steps:
        batches, num = eval_stream(config, cache_dir, "val", names)
        if batches is not None:
          pred = inference.predict_videos(
              inference.mesh_predict_fn(eval_fn, state, mesh), batches, num_batches=num, clip=clip
          )
          val = validation_metrics(pred, names, label_stats)
          writer.write(step, val)
          last.update(val)
      if step % config.train.checkpoint_every == 0 or step == steps:
        if not bool(train_lib.all_finite(state.params)):
          raise TrainingError(
              f"parameters became non-finite by step {step}; stopped, the last good checkpoint "
              f"(step {ckpts.latest_step()}) is kept in {workdir}"
          )
        ckpts.save(step, state, data_iterator=data_iter, metrics=val)
    ckpts.wait()  # a failed asynchronous save raises here, inside the try
    best = ckpts.best_step()
    if best is not None:
      logging.info("best checkpoint: step %d (%s)", best, restore.describe(ckpts.metric(best)))
    done = True
  finally:
    bar.close()
    _close(ckpts, quiet=not done)
    _close(writer, quiet=not done)
  return last


def _close(closable, *, quiet: bool) -> None:
  """Closes; with ``quiet`` (an error is already on its way up) a failure to close, as a full disk
  fails every later write too, does not replace that error."""
  try:
    closable.close()
  except Exception:  # pylint: disable=broad-except
    if not quiet:
      raise
