"""Trains a group of (lr, weight decay) members on one stream of batches: stacked, or alone.

A member is an ordinary train state whose optimiser carries its own lr and weight decay
(``step.make_optimizer`` injects them). Stacked, the members of a group share a leading axis and
``jax.vmap(train_step)`` trains them all in one jitted program on the same batch; the member axis is
sharded over the "member" axis of a 2-D ("member", "data") mesh. Alone (a group of one), the state
is the one ``--mode=train`` builds and ``step.make_steps`` trains it. Either way a member sees the
same initialisation and the same batches as ``--mode=train`` with the same seed, and each member
keeps its own checkpoints, metrics.jsonl and TensorBoard run under ``sweep/members/<k>/``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
from typing import Any
from typing import Sequence

from absl import logging
import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import ml_collections
import numpy as np
import tqdm

from echonet_jax import parallel
from echonet_jax import writers
from echonet_jax.errors import ConfigError
from echonet_jax.errors import TrainingError
from echonet_jax.evaluation import inference
from echonet_jax.training import checkpoints as checkpoints_lib
from echonet_jax.training import step as step_lib
from echonet_jax.training import train as train_loop

MEMBER_AXIS = "member"
DONE = "done.json"  # written in a member's folder when it has finished (or diverged)


@dataclasses.dataclass(frozen=True)
class Member:
  """Grid cell ``index``: row-major over ``config.sweep.lr`` × ``config.sweep.weight_decay``."""

  index: int
  lr: float
  weight_decay: float


def member_dir(sweep_dir: str, index: int) -> str:
  """Where member ``index`` keeps its checkpoints, metrics.jsonl and TensorBoard run."""
  return os.path.join(sweep_dir, "members", f"{index:03d}")


def read_done(sweep_dir: str, index: int) -> dict[str, Any] | None:
  """The member's completion record (``{"step", "diverged"}``), or None while it is unfinished."""
  path = os.path.join(member_dir(sweep_dir, index), DONE)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def member_config(config: ml_collections.ConfigDict, member: Member) -> ml_collections.ConfigDict:
  """``config`` with the member's lr and weight decay: what ``--mode=train`` would run for it."""
  out = ml_collections.ConfigDict(config.to_dict())
  out.optim.lr = float(member.lr)
  out.optim.weight_decay = float(member.weight_decay)
  return out


def stack(states: Sequence[Any]) -> Any:
  """Stacks pytrees on a new leading (member) axis."""
  return jax.tree.map(lambda *xs: jnp.stack(xs), *states)


def unstack(state: Any, index: int) -> Any:
  """Member ``index`` of a stacked pytree."""
  return jax.tree.map(lambda x: x[index], state)


def member_mesh(num_members: int, devices: Sequence[Any] | None = None) -> jax.sharding.Mesh:
  """A 2-D ("member", "data") mesh: as many devices on the member axis as divide ``num_members``.

  Each member-axis slice then trains its own members with ordinary convolutions, and the rest of
  the devices split the batch.
  """
  devices = list(devices if devices is not None else jax.devices())
  n = len(devices)
  m = max(d for d in range(1, n + 1) if n % d == 0 and num_members % d == 0)
  kwargs = {}
  axis_type = getattr(jax.sharding, "AxisType", None)
  if axis_type is not None:
    kwargs["axis_types"] = (axis_type.Auto, axis_type.Auto)
  return jax.make_mesh((m, n // m), (MEMBER_AXIS, parallel.DATA_AXIS), devices=devices, **kwargs)


def make_stacked_steps(
    model, tx, loss_fn: step_lib.LossFn, mesh: jax.sharding.Mesh, num_members: int
):
  """Jitted vmapped ``train(state, batch)`` and ``eval(state, images)`` for stacked states.

  The eval step returns ``{"<k>:<task>": (B,)}``, one entry per member, so that
  ``inference.predict_videos`` folds every member's outputs in one pass over the videos.
  """
  members = NamedSharding(mesh, P(MEMBER_AXIS))
  data = parallel.data_sharding(mesh)
  one_step = functools.partial(step_lib.train_step, model=model, tx=tx, loss_fn=loss_fn)
  stacked_step = jax.vmap(one_step, in_axes=(0, None))
  stacked_eval = jax.vmap(lambda s, x: step_lib.eval_step(s, x, model=model), in_axes=(0, None))
  if mesh.shape[MEMBER_AXIS] > 1:
    # Each slice of the member axis trains its own members (the data axis stays automatic), so
    # XLA never splits the members' grouped convolutions: its SPMD partitioner gets those wrong.
    stacked_step = jax.shard_map(
        stacked_step,
        mesh=mesh,
        in_specs=(P(MEMBER_AXIS), P()),
        out_specs=(P(MEMBER_AXIS), P(MEMBER_AXIS)),
        axis_names={MEMBER_AXIS},
    )
    stacked_eval = jax.shard_map(
        stacked_eval,
        mesh=mesh,
        in_specs=(P(MEMBER_AXIS), P()),
        out_specs=P(MEMBER_AXIS),
        axis_names={MEMBER_AXIS},
    )
  jit_train = jax.jit(
      stacked_step, in_shardings=(members, data), out_shardings=(members, members), donate_argnums=0
  )

  def flat_eval(state, images):
    out = stacked_eval(state, images)
    return {f"{k}:{name}": value[k] for name, value in out.items() for k in range(num_members)}

  jit_eval = jax.jit(
      flat_eval, in_shardings=(members, data), out_shardings=parallel.replicated(mesh)
  )
  return jit_train, jit_eval, members


def _member_pred(pred: dict[str, Any], k: int, stacked: bool) -> dict[str, Any]:
  if not stacked:
    return pred
  prefix = f"{k}:"
  outputs = {
      key[len(prefix) :]: v for key, v in pred["frame_outputs"].items() if key.startswith(prefix)
  }
  return {**pred, "frame_outputs": outputs}


def _write_done(path: str, record: dict[str, Any]) -> None:
  with open(path + ".tmp", "w") as f:
    json.dump(record, f)
  os.replace(path + ".tmp", path)


class Programs:
  """A sweep's network, optimiser, loss, initial state and jitted steps, built once.

  The lr and weight decay live in each member's state, so one compiled step serves every member of
  a sequential sweep, and one stacked step every group of the same size.
  """

  def __init__(self, config: ml_collections.ConfigDict, label_stats: dict[str, Any]):
    self.config = config
    self.names = step_lib.task_names(config)
    self.model = step_lib.create_model(config, self.names)
    self.tx = step_lib.make_optimizer(config.optim, config.train.steps)
    self.loss_fn = step_lib.make_loss(config.loss, step_lib.task_kinds(self.names))
    shape = step_lib.input_shape(config)
    self.clip = inference.clip_spec(config)
    self.fresh = jax.jit(
        lambda r: step_lib.init(self.model, self.tx, r, shape, label_stats, self.names)
    )(jax.random.PRNGKey(config.seed))
    self.label_stats = label_stats
    self._built: dict[tuple[bool, int], tuple[Any, ...]] = {}

  def steps(self, stacked: bool, n: int) -> tuple[Any, ...]:
    """(mesh, train_fn, eval_fn, state sharding) for a group of ``n`` members."""
    key = (stacked, n)
    if key not in self._built:
      mesh = member_mesh(n) if stacked else parallel.make_mesh()
      data_devices = mesh.shape[parallel.DATA_AXIS]
      if self.config.train.batch_size % data_devices:
        raise ConfigError(
            f"train.batch_size={self.config.train.batch_size} is not divisible by "
            f"the {data_devices} devices of the data axis"
        )
      if stacked:
        self._built[key] = (mesh, *make_stacked_steps(self.model, self.tx, self.loss_fn, mesh, n))
      else:
        train_fn, eval_fn = step_lib.make_steps(self.model, self.tx, self.loss_fn, mesh)
        self._built[key] = (mesh, train_fn, eval_fn, parallel.replicated(mesh))
    return self._built[key]


def train_group(
    programs: Programs, sweep_dir: str, members: Sequence[Member], *, stacked: bool, cache_dir: str
) -> None:
  """Trains ``members`` to ``config.train.steps``, resuming each from its own checkpoints.

  ``stacked=False`` takes one member and runs exactly ``--mode=train``'s step. A member whose loss
  or parameters become non-finite is recorded as diverged and stops saving; the others go on.
  """
  if not stacked and len(members) != 1:
    raise ValueError("an unstacked group trains one member")
  config, names, label_stats = programs.config, programs.names, programs.label_stats
  n = len(members)
  steps = config.train.steps
  mesh, train_fn, eval_fn, sharding = programs.steps(stacked, n)
  states = [step_lib.with_hyperparams(programs.fresh, m.lr, m.weight_decay) for m in members]
  data_iter = iter(train_loop.train_loader(config, cache_dir, names))

  dirs = [member_dir(sweep_dir, m.index) for m in members]
  ckpts = [
      checkpoints_lib.Checkpoints(
          os.path.join(d, "checkpoints"),
          keep_latest=max(2, config.train.keep_checkpoints),
          best_metric=train_loop.BEST_METRIC,
          best_mode="min",
      )
      for d in dirs
  ]
  latest = [c.latest_step() or 0 for c in ckpts]
  diverged = [bool((read_done(sweep_dir, m.index) or {}).get("diverged")) for m in members]
  # Members save at the same steps and keep >= 2 checkpoints, so the slowest one's latest step is
  # still on disk for every member: all restart there (a member already past it re-trains the
  # same steps deterministically and does not save them again).
  start = min([s for s, d in zip(latest, diverged) if not d] or [0])
  if start:
    logging.info("resuming members %s from step %d", [m.index for m in members], start)
    for k in range(n):
      if start in ckpts[k].all_steps():
        states[k] = ckpts[k].restore(start, states[k], data_iterator=data_iter if k == 0 else None)
      elif not diverged[k]:
        raise TrainingError(
            f"sweep member {members[k].index} has no checkpoint at step {start} "
            f"to resume from in {dirs[k]}"
        )
  # A copy: the step donates its state, and the fresh state is shared by every group.
  state = jax.device_put(stack(states) if stacked else jax.tree.map(jnp.copy, states[0]), sharding)
  del states

  enabled = jax.process_index() == 0
  logs = [writers.MetricWriter(d, enabled=enabled) for d in dirs]
  bar = tqdm.tqdm(
      total=steps,
      initial=start,
      unit="step",
      dynamic_ncols=True,
      disable=not enabled,
      desc=f"members {members[0].index}-{members[-1].index}",
  )
  try:
    for step in range(start + 1, steps + 1):
      state, metrics = train_fn(state, parallel.global_batch(next(data_iter), mesh))
      bar.update(1)
      if step % config.train.log_every == 0 or step == steps:
        host = jax.device_get(metrics)
        for k in range(n):
          row = {
              f"train/{key}": float(np.asarray(v).reshape(-1)[k if stacked else 0])
              for key, v in host.items()
          }
          logs[k].write(step, row)
          if not math.isfinite(row["train/loss"]):
            diverged[k] = True
      vals: list[dict[str, float] | None] = [None] * n
      if step % config.train.eval_every == 0 or step == steps:
        batches, num = train_loop.eval_stream(config, cache_dir, "val", names)
        if batches is not None:
          pred = inference.predict_videos(
              inference.mesh_predict_fn(eval_fn, state, mesh),
              batches,
              num_batches=num,
              clip=programs.clip,
          )
          for k in range(n):
            mine = _member_pred(pred, k, stacked)
            if not all(np.isfinite(v).all() for v in mine["frame_outputs"].values()):
              diverged[k] = True
            if not diverged[k]:
              vals[k] = train_loop.validation_metrics(mine, names, label_stats)
              logs[k].write(step, vals[k])
      if step % config.train.checkpoint_every == 0 or step == steps:
        for k in range(n):
          one = unstack(state, k) if stacked else state
          if not diverged[k] and not bool(step_lib.all_finite(one.params)):
            diverged[k] = True
          if diverged[k] or step <= latest[k]:
            continue
          ckpts[k].save(step, one, data_iterator=data_iter, metrics=vals[k])
      for k in range(n):
        done_path = os.path.join(dirs[k], DONE)
        if enabled and (diverged[k] or step == steps) and not os.path.exists(done_path):
          ckpts[k].wait()
          _write_done(done_path, {"step": step, "diverged": diverged[k]})
          if diverged[k]:
            logging.warning("sweep member %d diverged by step %d", members[k].index, step)
      if all(diverged):
        break
  finally:
    bar.close()
    for c in ckpts:
      c.close()
    for w in logs:
      w.close()
