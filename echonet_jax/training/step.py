"""Training as pure functions: the train state, ``init``, ``train_step`` and ``eval_step``.

The state is a plain pytree. Steps are built once per run by :func:`make_steps` and jitted with the
state replicated (and donated) and the batch split over the ("data",) mesh axis. The loop that drives
them, with checkpoints, logging and validation, is in ``echonet_jax/trainer.py``.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from echonet_jax.training import parallel
from echonet_jax import tasks as tasks_lib
from echonet_jax.models import InceptionResNetV1

PyTree = Any


@flax.struct.dataclass
class TrainState:
  """Everything a step needs and a checkpoint keeps.

  ``label_mean``/``label_std`` standardise regression targets (training-set statistics); they live in
  the state so that a checkpoint alone turns outputs back into mL, %, years, kg or m.
  """

  step: jax.Array
  params: PyTree
  batch_stats: PyTree
  opt_state: PyTree
  rng: jax.Array
  label_mean: dict[str, jax.Array]
  label_std: dict[str, jax.Array]


def task_names(config: ml_collections.ConfigDict) -> tuple[str, ...]:
  """The tasks a config trains: ``config.tasks`` when set (multi-task), else ``(config.task,)``."""
  names = tuple(config.get("tasks") or ()) or (config.task,)
  for name in names:
    tasks_lib.get_task(name)
  if len(set(names)) != len(names):
    raise ValueError(f"duplicate task in {names}")
  return names


def create_model(config: ml_collections.ConfigDict, names: Sequence[str]) -> nn.Module:
  """The network for ``names``: one output per task, as named heads."""
  m = config.model
  return InceptionResNetV1(
      num_outputs={name: tasks_lib.get_task(name).num_outputs for name in names}, dropout_rate=m.dropout_rate, width=m.width,
      blocks=tuple(m.blocks), dtype=jnp.dtype(m.dtype))


def _decay_mask(params: PyTree) -> PyTree:
  # TF-style L2 (slim's weights_regularizer) regularises conv and dense kernels, not BN or biases.
  return jax.tree_util.tree_map_with_path(
      lambda path, _: getattr(path[-1], "key", None) == "kernel", params)


def learning_rate_schedule(optim: ml_collections.ConfigDict, total_steps: int) -> optax.Schedule:
  """``constant`` or ``cosine`` decay, each with an optional linear warm-up."""
  warmup = int(optim.get("warmup_steps", 0))
  if optim.schedule == "constant":
    main = optax.constant_schedule(optim.lr)
  elif optim.schedule == "cosine":
    main = optax.cosine_decay_schedule(optim.lr, max(total_steps - warmup, 1),
                                       alpha=optim.get("final_lr_frac", 0.0))
  else:
    raise ValueError(f"unknown schedule {optim.schedule!r}; use 'constant' or 'cosine'")
  if warmup:
    return optax.join_schedules([optax.linear_schedule(0.0, optim.lr, warmup), main], [warmup])
  return main


def make_optimizer(optim: ml_collections.ConfigDict, total_steps: int) -> optax.GradientTransformation:
  """Adam with TF-style L2 weight decay: the decay gradient is added before Adam's scaling."""
  return optax.chain(
      optax.add_decayed_weights(optim.weight_decay, mask=_decay_mask),
      optax.adam(learning_rate_schedule(optim, total_steps)),
  )


def init(model: nn.Module, tx: optax.GradientTransformation, rng: jax.Array,
         input_shape: Sequence[int], label_stats: Mapping[str, Mapping[str, float]],
         names: Sequence[str]) -> TrainState:
  """A fresh train state. ``input_shape`` is one image, (H, W, C)."""
  init_rng, state_rng = jax.random.split(rng)
  variables = model.init(init_rng, jnp.zeros((1, *input_shape), jnp.float32), train=False)
  params = variables["params"]
  mean, std = {}, {}
  for name in names:
    stats = label_stats.get(name, {})
    regression = tasks_lib.get_task(name).is_regression
    mean[name] = jnp.float32(stats.get("mean", 0.0) if regression else 0.0)
    std[name] = jnp.float32(max(stats.get("std", 1.0), 1e-6) if regression else 1.0)
  return TrainState(step=jnp.int32(0), params=params, batch_stats=variables.get("batch_stats", {}),
                    opt_state=tx.init(params), rng=state_rng, label_mean=mean, label_std=std)


def task_losses(logits: Mapping[str, jax.Array], labels: Mapping[str, jax.Array],
                state: TrainState, loss_cfg: ml_collections.ConfigDict) -> dict[str, jax.Array]:
  """Mean loss per task over the examples that have that label (NaN labels are masked out)."""
  out = {}
  for name, logit in logits.items():
    y = labels[name].astype(jnp.float32)
    valid = ~jnp.isnan(y)
    y = jnp.where(valid, y, 0.0)
    if tasks_lib.get_task(name).is_categorical:
      out[name] = _masked_mean(categorical_loss(logit, y), valid)
      continue
    logit = logit[:, 0].astype(jnp.float32)
    if tasks_lib.get_task(name).is_binary:
      if loss_cfg.classification == "xent":
        per_example = optax.sigmoid_binary_cross_entropy(logit, y)
      elif loss_cfg.classification == "focal":
        per_example = optax.sigmoid_focal_loss(logit, y, gamma=loss_cfg.focal_gamma)
      else:
        raise ValueError(f"unknown classification loss {loss_cfg.classification!r}")
    else:
      z = (y - state.label_mean[name]) / state.label_std[name]
      if loss_cfg.regression == "mse":
        per_example = jnp.square(logit - z)
      elif loss_cfg.regression == "huber":
        per_example = optax.huber_loss(logit, z, delta=loss_cfg.huber_delta)
      else:
        raise ValueError(f"unknown regression loss {loss_cfg.regression!r}")
    out[name] = _masked_mean(per_example, valid)
  return out


def _masked_mean(per_example: jax.Array, valid: jax.Array) -> jax.Array:
  return jnp.sum(jnp.where(valid, per_example, 0.0)) / jnp.maximum(valid.sum(), 1)


def categorical_loss(logits: jax.Array, class_index: jax.Array) -> jax.Array:
  """Softmax cross-entropy per example: logits (B, K), labels = class indices as floats (B,)."""
  return optax.softmax_cross_entropy_with_integer_labels(
      logits.astype(jnp.float32), class_index.astype(jnp.int32))


def output_shape(name: str) -> tuple[int, ...]:
  """Per-image output shape of a task after :func:`to_outputs`: () or (num_classes,)."""
  task = tasks_lib.get_task(name)
  return (task.num_outputs,) if task.is_categorical else ()


def to_outputs(logits: Mapping[str, jax.Array], state: TrainState) -> dict[str, jax.Array]:
  """Logits → probabilities (binary), values in the task's unit (regression), both (B,), or class
  probabilities (categorical), (B, num_classes)."""
  out = {}
  for name, logit in logits.items():
    if tasks_lib.get_task(name).is_categorical:
      out[name] = jax.nn.softmax(logit.astype(jnp.float32), axis=-1)
      continue
    logit = logit[:, 0].astype(jnp.float32)
    if tasks_lib.get_task(name).is_binary:
      out[name] = jax.nn.sigmoid(logit)
    else:
      out[name] = logit * state.label_std[name] + state.label_mean[name]
  return out


def train_step(state: TrainState, batch: Mapping[str, Any], *, model: nn.Module,
               tx: optax.GradientTransformation, loss_cfg: ml_collections.ConfigDict
               ) -> tuple[TrainState, dict[str, jax.Array]]:
  """One optimiser step on a global batch ``{"image": (B,H,W,C), "labels": {task: (B,)}}``."""
  dropout_rng = jax.random.fold_in(state.rng, state.step)

  def loss_fn(params):
    logits, updates = model.apply(
        {"params": params, "batch_stats": state.batch_stats}, batch["image"], train=True,
        mutable=["batch_stats"], rngs={"dropout": dropout_rng})
    losses = task_losses(logits, batch["labels"], state, loss_cfg)
    return sum(losses.values()), (losses, updates["batch_stats"])

  (loss, (losses, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  metrics = {"loss": loss, "grad_norm": optax.global_norm(grads),
             **{f"loss/{name}": value for name, value in losses.items()}}
  new_state = state.replace(step=state.step + 1, params=params, batch_stats=batch_stats,
                            opt_state=opt_state)
  return new_state, metrics


def eval_step(state: TrainState, images: jax.Array, *, model: nn.Module) -> dict[str, jax.Array]:
  """Per-image outputs (probabilities or task units), inference mode."""
  logits = model.apply({"params": state.params, "batch_stats": state.batch_stats}, images,
                       train=False)
  return to_outputs(logits, state)


def make_steps(model: nn.Module, tx: optax.GradientTransformation,
               loss_cfg: ml_collections.ConfigDict, mesh: jax.sharding.Mesh
               ) -> tuple[Callable[..., Any], Callable[..., Any]]:
  """Jitted ``train_step(state, batch)`` and ``eval_step(state, images)`` for ``mesh``.

  The state is replicated and donated; batches arrive split over the data axis (see
  :func:`echonet_jax.training.parallel.global_batch`) and metrics/outputs come back replicated.
  """
  rep = parallel.replicated(mesh)
  data = parallel.data_sharding(mesh)
  jit_train = jax.jit(
      lambda s, b: train_step(s, b, model=model, tx=tx, loss_cfg=loss_cfg),
      in_shardings=(rep, data), out_shardings=(rep, rep), donate_argnums=0)
  jit_eval = jax.jit(lambda s, x: eval_step(s, x, model=model),
                     in_shardings=(rep, data), out_shardings=rep)
  return jit_train, jit_eval


def all_finite(tree: PyTree) -> jax.Array:
  """True when every leaf of ``tree`` is finite (checked before a checkpoint is written)."""
  leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)
            if jnp.issubdtype(x.dtype, jnp.floating)]
  return jnp.all(jnp.stack(leaves)) if leaves else jnp.bool_(True)
