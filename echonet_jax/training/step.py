"""Training as pure functions: the train state, ``init``, ``train_step`` and ``eval_step``.

The state is a plain pytree, and the learning rate and weight decay live in it (in the optimiser
state, through ``optax.inject_hyperparams``), so a grid of models is a batch of states:
``jax.vmap(train_step, in_axes=(0, None))`` trains them all on one batch (see training/sweep.py).
``train_step`` takes a loss callable built once from static task kinds (:func:`make_loss`), never a
config or a registry lookup. Steps are built once per run by :func:`make_steps` and jitted with the
state replicated (and donated) and the batch split over the ("data",) mesh axis. The loop that
drives them, with checkpoints, logging and validation, is in ``echonet_jax/training/train.py``.
"""

from __future__ import annotations

import functools
from typing import Any
from typing import Callable
from typing import Mapping
from typing import Sequence

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from echonet_jax import models
from echonet_jax import parallel
from echonet_jax import tasks as tasks_lib

PyTree = Any
# (logits, labels, state) -> {task: mean loss}; built by make_loss.
LossFn = Callable[
    [Mapping[str, jax.Array], Mapping[str, jax.Array], "TrainState"], dict[str, jax.Array]
]
BINARY, REGRESSION, CATEGORICAL = "binary", "regression", "categorical"


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
  """The network ``config.model.name`` (see ``models.MODELS``) for ``names``: one head per task."""
  m = config.model
  return models.get_model(
      m.get("name", models.DEFAULT_MODEL),
      num_outputs={name: tasks_lib.get_task(name).num_outputs for name in names},
      dropout_rate=m.dropout_rate,
      width=m.width,
      blocks=tuple(m.blocks),
      dtype=jnp.dtype(m.dtype),
  )


def input_shape(config: ml_collections.ConfigDict) -> tuple[int, ...]:
  """One example's shape: an image (H, W, C), or a clip (T, H, W, C) for a clip model."""
  d = config.data
  image = (d.image_size, d.image_size, d.channels)
  if models.is_clip_model(config.model.get("name", models.DEFAULT_MODEL)):
    return (int(d.clip_frames), *image)
  return image


def _decay_mask(params: PyTree) -> PyTree:
  # TF-style L2 (slim's weights_regularizer) regularises conv and dense kernels, not BN or biases.
  return jax.tree_util.tree_map_with_path(
      lambda path, _: getattr(path[-1], "key", None) == "kernel", params
  )


def unit_schedule(optim: ml_collections.ConfigDict, total_steps: int) -> optax.Schedule:
  """The learning-rate multiplier at each step (peak 1): ``constant`` or ``cosine`` decay, each with
  an optional linear warm-up. The optimiser multiplies it by the lr kept in its state."""
  warmup = int(optim.get("warmup_steps", 0))
  if optim.schedule == "constant":
    main = optax.constant_schedule(1.0)
  elif optim.schedule == "cosine":
    main = optax.cosine_decay_schedule(
        1.0, max(total_steps - warmup, 1), alpha=optim.get("final_lr_frac", 0.0)
    )
  else:
    raise ValueError(f"unknown schedule {optim.schedule!r}; use 'constant' or 'cosine'")
  if warmup:
    return optax.join_schedules([optax.linear_schedule(0.0, 1.0, warmup), main], [warmup])
  return main


def learning_rate_schedule(optim: ml_collections.ConfigDict, total_steps: int) -> optax.Schedule:
  """The learning rate at each step: ``optim.lr`` times :func:`unit_schedule`."""
  unit = unit_schedule(optim, total_steps)
  return lambda count: optim.lr * unit(count)


def make_optimizer(
    optim: ml_collections.ConfigDict, total_steps: int
) -> optax.GradientTransformation:
  """Adam with TF-style L2 weight decay: the decay gradient is added before Adam's scaling.

  ``learning_rate`` (the peak) and ``weight_decay`` are injected hyperparameters: they live in
  ``opt_state.hyperparams``, so each member of a stacked grid carries its own (see
  :func:`with_hyperparams`) and a checkpoint records the values it was trained with.
  """
  unit = unit_schedule(optim, total_steps)

  def adam_l2(learning_rate, weight_decay):
    return optax.chain(
        optax.add_decayed_weights(weight_decay, mask=_decay_mask),
        optax.adam(lambda count: learning_rate * unit(count)),
    )

  return optax.inject_hyperparams(adam_l2, hyperparam_dtype=jnp.float32)(
      learning_rate=optim.lr, weight_decay=optim.weight_decay
  )


def with_hyperparams(state: "TrainState", learning_rate: Any, weight_decay: Any) -> "TrainState":
  """``state`` with its optimiser's peak learning rate and weight decay replaced."""
  hyper = dict(state.opt_state.hyperparams)
  hyper["learning_rate"] = jnp.asarray(learning_rate, jnp.float32)
  hyper["weight_decay"] = jnp.asarray(weight_decay, jnp.float32)
  return state.replace(opt_state=state.opt_state._replace(hyperparams=hyper))


def init(
    model: nn.Module,
    tx: optax.GradientTransformation,
    rng: jax.Array,
    input_shape: Sequence[int],
    label_stats: Mapping[str, Mapping[str, float]],
    names: Sequence[str],
) -> TrainState:
  """A fresh train state. ``input_shape`` is one example: (H, W, C), or (T, H, W, C) for clips."""
  init_rng, state_rng = jax.random.split(rng)
  variables = model.init(init_rng, jnp.zeros((1, *input_shape), jnp.float32), train=False)
  params = variables["params"]
  mean, std = {}, {}
  for name in names:
    stats = label_stats.get(name, {})
    regression = tasks_lib.get_task(name).is_regression
    mean[name] = jnp.float32(stats.get("mean", 0.0) if regression else 0.0)
    std[name] = jnp.float32(max(stats.get("std", 1.0), 1e-6) if regression else 1.0)
  return TrainState(
      step=jnp.int32(0),
      params=params,
      batch_stats=variables.get("batch_stats", {}),
      opt_state=tx.init(params),
      rng=state_rng,
      label_mean=mean,
      label_std=std,
  )


def task_kinds(names: Sequence[str]) -> dict[str, str]:
  """``{task: "binary" | "regression" | "categorical"}`` from the task registry (static)."""
  kinds = {}
  for name in names:
    task = tasks_lib.get_task(name)
    kinds[name] = CATEGORICAL if task.is_categorical else BINARY if task.is_binary else REGRESSION
  return kinds


def task_losses(
    logits: Mapping[str, jax.Array],
    labels: Mapping[str, jax.Array],
    state: TrainState,
    *,
    kinds: Mapping[str, str],
    classification: str = "xent",
    regression: str = "mse",
    focal_gamma: float = 2.0,
    huber_delta: float = 1.0,
) -> dict[str, jax.Array]:
  """Mean loss per task over the examples that have that label (NaN labels are masked out).

  ``kinds`` maps each task to "binary", "regression" or "categorical" (class indices as floats);
  regression targets are standardised with the state's training-set mean and std.
  """
  out = {}
  for name, logit in logits.items():
    y = labels[name].astype(jnp.float32)
    valid = ~jnp.isnan(y)
    y = jnp.where(valid, y, 0.0)
    if kinds[name] == CATEGORICAL:
      out[name] = _masked_mean(categorical_loss(logit, y), valid)
      continue
    logit = logit[:, 0].astype(jnp.float32)
    if kinds[name] == BINARY:
      if classification == "xent":
        per_example = optax.sigmoid_binary_cross_entropy(logit, y)
      elif classification == "focal":
        per_example = optax.sigmoid_focal_loss(logit, y, gamma=focal_gamma)
      else:
        raise ValueError(f"unknown classification loss {classification!r}")
    else:
      z = (y - state.label_mean[name]) / state.label_std[name]
      if regression == "mse":
        per_example = jnp.square(logit - z)
      elif regression == "huber":
        per_example = optax.huber_loss(logit, z, delta=huber_delta)
      else:
        raise ValueError(f"unknown regression loss {regression!r}")
    out[name] = _masked_mean(per_example, valid)
  return out


def _masked_mean(per_example: jax.Array, valid: jax.Array) -> jax.Array:
  return jnp.sum(jnp.where(valid, per_example, 0.0)) / jnp.maximum(valid.sum(), 1)


def categorical_loss(logits: jax.Array, class_index: jax.Array) -> jax.Array:
  """Softmax cross-entropy per example: logits (B, K), labels = class indices as floats (B,)."""
  return optax.softmax_cross_entropy_with_integer_labels(
      logits.astype(jnp.float32), class_index.astype(jnp.int32)
  )


def make_loss(loss_cfg: ml_collections.ConfigDict, kinds: Mapping[str, str]) -> LossFn:
  """The loss callable of ``train_step``: ``loss_cfg``'s choices bound to static task ``kinds``."""
  kinds = dict(kinds)
  return functools.partial(
      task_losses,
      kinds=kinds,
      classification=loss_cfg.classification,
      regression=loss_cfg.regression,
      focal_gamma=float(loss_cfg.focal_gamma),
      huber_delta=float(loss_cfg.huber_delta),
  )


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


def train_step(
    state: TrainState,
    batch: Mapping[str, Any],
    *,
    model: nn.Module,
    tx: optax.GradientTransformation,
    loss_fn: LossFn,
) -> tuple[TrainState, dict[str, jax.Array]]:
  """One optimiser step on a global batch ``{"image": (B,H,W,C), "labels": {task: (B,)}}``.

  ``loss_fn(logits, labels, state) -> {task: loss}`` (see :func:`make_loss`); the total is their sum.
  """
  dropout_rng = jax.random.fold_in(state.rng, state.step)

  def total_loss(params):
    logits, updates = model.apply(
        {"params": params, "batch_stats": state.batch_stats},
        batch["image"],
        train=True,
        mutable=["batch_stats"],
        rngs={"dropout": dropout_rng},
    )
    losses = loss_fn(logits, batch["labels"], state)
    return sum(losses.values()), (losses, updates["batch_stats"])

  (loss, (losses, batch_stats)), grads = jax.value_and_grad(total_loss, has_aux=True)(state.params)
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  metrics = {
      "loss": loss,
      "grad_norm": optax.global_norm(grads),
      **{f"loss/{name}": value for name, value in losses.items()},
  }
  new_state = state.replace(
      step=state.step + 1, params=params, batch_stats=batch_stats, opt_state=opt_state
  )
  return new_state, metrics


def eval_step(state: TrainState, images: jax.Array, *, model: nn.Module) -> dict[str, jax.Array]:
  """Per-image outputs (probabilities or task units), inference mode."""
  logits = model.apply(
      {"params": state.params, "batch_stats": state.batch_stats}, images, train=False
  )
  return to_outputs(logits, state)


def make_steps(
    model: nn.Module,
    tx: optax.GradientTransformation,
    loss: LossFn | ml_collections.ConfigDict,
    mesh: jax.sharding.Mesh,
) -> tuple[Callable[..., Any], Callable[..., Any]]:
  """Jitted ``train_step(state, batch)`` and ``eval_step(state, images)`` for ``mesh``.

  ``loss`` is a loss callable, or the config's ``loss`` section bound to the model's task heads.

  The state is replicated and donated; batches arrive split over the data axis (see
  :func:`echonet_jax.parallel.global_batch`) and metrics/outputs come back replicated.
  """
  loss_fn = loss_for_model(loss, model)
  rep = parallel.replicated(mesh)
  data = parallel.data_sharding(mesh)
  jit_train = jax.jit(
      lambda s, b: train_step(s, b, model=model, tx=tx, loss_fn=loss_fn),
      in_shardings=(rep, data),
      out_shardings=(rep, rep),
      donate_argnums=0,
  )
  jit_eval = jax.jit(
      lambda s, x: eval_step(s, x, model=model), in_shardings=(rep, data), out_shardings=rep
  )
  return jit_train, jit_eval


def loss_for_model(loss: LossFn | ml_collections.ConfigDict, model: nn.Module) -> LossFn:
  """``loss`` itself when callable; else the loss config bound to the kinds of ``model``'s heads."""
  if callable(loss):
    return loss
  heads = getattr(model, "num_outputs", None)
  if not isinstance(heads, Mapping):
    raise ValueError(
        "a model without named task heads (num_outputs={task: 1}) needs a loss "
        "callable: step.make_loss(config.loss, step.task_kinds(names))"
    )
  return make_loss(loss, task_kinds(tuple(heads)))


@jax.jit  # one program for the whole tree, not two small ones per leaf shape
def all_finite(tree: PyTree) -> jax.Array:
  """True when every leaf of ``tree`` is finite (checked before a checkpoint is written)."""
  leaves = [
      jnp.all(jnp.isfinite(x))
      for x in jax.tree.leaves(tree)
      if jnp.issubdtype(x.dtype, jnp.floating)
  ]
  return jnp.all(jnp.stack(leaves)) if leaves else jnp.bool_(True)
