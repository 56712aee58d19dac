"""Train step: losses, optimiser, and the same result on 1 and 8 (fake CPU) devices."""

import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import default
from echonet_jax import parallel
from echonet_jax.training import step as train
from tests import testing
from tests.testing import REPO
from tests.testing import training_batch
from tests.testing import training_setup


def test_task_names_rejects_unknown_task():
  config = default.get_config("test", task="nope")
  with pytest.raises(ValueError, match="unknown task 'nope'"):
    train.task_names(config)


def test_regression_loss_standardises_and_masks_nan():
  _, names, _, _, state = training_setup()
  logits = {"weight": jnp.array([[0.0], [1.0], [5.0]])}
  labels = {"weight": jnp.array([80.0, 95.0, jnp.nan])}
  loss_fn = train.make_loss(default.get_config("test").loss, {"weight": train.REGRESSION})
  losses = loss_fn(logits, labels, state)
  # (80-80)/15 = 0 and (95-80)/15 = 1: both predicted exactly; the NaN row is ignored.
  np.testing.assert_allclose(losses["weight"], 0.0, atol=1e-6)
  outputs = train.to_outputs(logits, state)
  np.testing.assert_allclose(outputs["weight"][:2], [80.0, 95.0], rtol=1e-6)


def test_binary_losses_xent_and_focal():
  _, _, _, _, state = training_setup(task="sex")
  logits = {"sex": jnp.array([[2.0], [-1.0]])}
  labels = {"sex": jnp.array([1.0, 0.0])}
  cfg = default.get_config("test").loss
  kinds = train.task_kinds(["sex"])
  assert kinds == {"sex": train.BINARY}
  expected = np.mean([np.log1p(np.exp(-2.0)), np.log1p(np.exp(-1.0))])
  np.testing.assert_allclose(
      train.make_loss(cfg, kinds)(logits, labels, state)["sex"], expected, rtol=1e-5
  )
  cfg.classification = "focal"
  focal = train.make_loss(cfg, kinds)(logits, labels, state)["sex"]
  assert 0 < focal < expected


def test_optimizer_is_l2_before_adam_on_kernels_only():
  config = default.get_config("test")
  config.optim.update(lr=0.1, weight_decay=0.5, schedule="constant", warmup_steps=0)
  tx = train.make_optimizer(config.optim, 10)
  params = {"conv": {"kernel": jnp.ones(3)}, "bn": {"scale": jnp.ones(3)}}
  grads = jax.tree.map(jnp.zeros_like, params)
  updates, _ = tx.update(grads, tx.init(params), params)
  # Zero loss gradient: only the kernel feels the decay (Adam normalises it to a step of -lr).
  np.testing.assert_allclose(updates["conv"]["kernel"], -0.1, rtol=1e-4)
  np.testing.assert_allclose(updates["bn"]["scale"], 0.0)
  # Matches optax's own chain (TF-style L2), not decoupled AdamW.
  ref = optax.chain(optax.add_decayed_weights(0.5), optax.adam(0.1))
  ref_updates, _ = ref.update(grads["conv"], ref.init(params["conv"]), params["conv"])
  np.testing.assert_allclose(updates["conv"]["kernel"], ref_updates["kernel"], rtol=1e-6)


def test_train_step_reduces_loss_multitask():
  config, names, model, tx, state = training_setup(tasks=("weight", "sex"))
  mesh = parallel.make_mesh()
  step, _ = train.make_steps(model, tx, config.loss, mesh)
  batch = parallel.global_batch(training_batch(names), mesh)
  losses = []
  for _ in range(8):
    state, metrics = step(state, batch)
    losses.append(float(metrics["loss"]))
  assert set(metrics) >= {"loss", "grad_norm", "loss/weight", "loss/sex"}
  assert np.mean(losses[-3:]) < losses[0], losses
  assert int(state.step) == 8


def test_optimizer_keeps_lr_and_weight_decay_in_its_state():
  config = default.get_config("test")
  config.optim.update(lr=0.1, weight_decay=0.5, schedule="cosine", warmup_steps=2)
  tx = train.make_optimizer(config.optim, 10)
  params = {"conv": {"kernel": jnp.ones(3)}}
  opt_state = tx.init(params)
  np.testing.assert_allclose(opt_state.hyperparams["learning_rate"], 0.1)
  np.testing.assert_allclose(opt_state.hyperparams["weight_decay"], 0.5)
  schedule = train.learning_rate_schedule(config.optim, 10)
  np.testing.assert_allclose(
      [schedule(0), schedule(1), schedule(2), schedule(10)], [0.0, 0.05, 0.1, 0.0], atol=1e-7
  )
  # The lr the update uses is the state's, not the one the optimiser was built with.
  state = train.TrainState(
      step=0,
      params=params,
      batch_stats={},
      opt_state=opt_state,
      rng=None,
      label_mean={},
      label_std={},
  )
  state = train.with_hyperparams(state, 0.01, 0.0)
  grads = {"conv": {"kernel": jnp.full(3, 2.0)}}
  updates, new_opt = tx.update(grads, state.opt_state, params)
  updates, _ = tx.update(grads, new_opt, params)  # step 1 of the warm-up: lr 0.01 / 2
  np.testing.assert_allclose(updates["conv"]["kernel"], -0.005, rtol=1e-4)
  np.testing.assert_allclose(new_opt.hyperparams["weight_decay"], 0.0)


def test_vmap_train_step_over_two_stacked_states_matches_each_alone():
  config, names, model, tx, state = training_setup(tasks=("weight", "sex"))
  loss_fn = train.make_loss(config.loss, train.task_kinds(names))
  members = [train.with_hyperparams(state, 1e-3, 1e-4), train.with_hyperparams(state, 3e-4, 0.0)]
  stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *members)
  one = jax.jit(lambda s, b: train.train_step(s, b, model=model, tx=tx, loss_fn=loss_fn))
  both = jax.jit(
      jax.vmap(
          lambda s, b: train.train_step(s, b, model=model, tx=tx, loss_fn=loss_fn),
          in_axes=(0, None),
      )
  )
  for i in range(2):
    batch = training_batch(names, seed=i)
    stacked, stacked_metrics = both(stacked, batch)
    members, metrics = zip(*[one(m, batch) for m in members])
    # The first step starts from identical weights: loss and gradient agree to float noise.
    rtol = 1e-5 if i == 0 else 1e-3
    for k in range(2):
      np.testing.assert_allclose(stacked_metrics["loss"][k], metrics[k]["loss"], rtol=rtol)
      np.testing.assert_allclose(
          stacked_metrics["grad_norm"][k], metrics[k]["grad_norm"], rtol=rtol
      )
  for k, lr in enumerate((1e-3, 3e-4)):
    alone = np.concatenate([np.ravel(x) for x in jax.tree.leaves(members[k].params)])
    vmapped = np.concatenate([np.ravel(x[k]) for x in jax.tree.leaves(stacked.params)])
    # Adam moves a weight by up to lr a step whatever its gradient's size, so float noise in a
    # near-zero gradient (grouped vs plain convolutions) can flip a rare weight's step: at most
    # 2 lr a step, on a tiny fraction of the weights. Nearly all the others agree to well under lr / 10.
    diff = np.abs(alone - vmapped)
    assert diff.max() <= 4 * lr * 1.001, diff.max()
    assert np.mean(diff > lr / 10) < 1e-3, (np.mean(diff > lr / 10), np.mean(diff > lr / 100))
  assert stacked.opt_state.hyperparams["learning_rate"].tolist() == pytest.approx([1e-3, 3e-4])
  # Different hyperparameters really give different members.
  assert not np.allclose(
      jax.tree.leaves(members[0].params)[0], jax.tree.leaves(members[1].params)[0]
  )


_SHARDING_SCRIPT = textwrap.dedent("""
    import sys
    import jax
    jax.config.update("jax_num_cpu_devices", int(sys.argv[1]))
    sys.path.insert(0, {repo!r})
    import numpy as np
    from tests import testing as t
    from echonet_jax import parallel
    from echonet_jax.training import step as train
    config, names, model, tx, state = t.training_setup(tasks=("weight", "sex"))
    mesh = parallel.make_mesh()
    assert mesh.devices.size == int(sys.argv[1]), mesh
    step, evaluate = train.make_steps(model, tx, config.loss, mesh)
    for i in range(2):
      state, metrics = step(state, parallel.global_batch(t.training_batch(names, seed=i), mesh))
    out = evaluate(state, parallel.global_batch(t.training_batch(names)["image"], mesh))
    leaves = [np.asarray(x) for x in jax.tree.leaves(state.params)]
    np.savez(sys.argv[2], loss=float(metrics["loss"]), grad_norm=float(metrics["grad_norm"]), out=np.asarray(out["weight"]), *leaves)
""")


@pytest.mark.slow
def test_same_result_on_1_and_8_devices(tmp_path):
  one, eight = testing.run_on_cpu_devices(_SHARDING_SCRIPT.format(repo=REPO), tmp_path)
  # Reduction order differs between layouts; Adam can amplify it for near-zero gradients by at
  # most a step of size lr (1e-3), so parameters are compared at that scale.
  np.testing.assert_allclose(one["loss"], eight["loss"], rtol=1e-3)
  np.testing.assert_allclose(one["grad_norm"], eight["grad_norm"], rtol=1e-3)
  np.testing.assert_allclose(one["out"], eight["out"], rtol=1e-2, atol=1e-2)
  for key in one.files:
    if key.startswith("arr_"):
      np.testing.assert_allclose(one[key], eight[key], rtol=0, atol=2.5e-3)


def test_categorical_loss_is_softmax_xent_and_outputs_probabilities():
  _, names, model, _, state = training_setup(task="view")
  assert names == ("view",)
  logits = {"view": jnp.array([[2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0], [0.0] * 7, [5.0] * 7])}
  labels = {"view": jnp.array([0.0, 3.0, jnp.nan])}
  loss_fn = train.make_loss(default.get_config("test").loss, train.task_kinds(names))
  assert train.task_kinds(names) == {"view": train.CATEGORICAL}
  expected = np.mean([-jax.nn.log_softmax(logits["view"][0])[0], np.log(7.0)])
  np.testing.assert_allclose(loss_fn(logits, labels, state)["view"], expected, rtol=1e-5)
  probs = train.to_outputs(logits, state)["view"]
  assert probs.shape == (3, 7) and train.output_shape("view") == (7,)
  np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
  images = jnp.zeros((2, 75, 75, 1))
  assert train.eval_step(state, images, model=model)["view"].shape == (2, 7)
