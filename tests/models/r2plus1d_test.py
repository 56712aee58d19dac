"""Tests for echonet_jax.models.r2plus1d (R(2+1)D-18) and the model registry."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from echonet_jax import models
from echonet_jax.errors import ConfigError
from echonet_jax.models import r2plus1d
from tests import testing

# A CPU-sized configuration: quarter width, one block per stage.
TINY = dict(width=0.25, blocks=(1, 1, 1, 1))
TINY_CLIP = (2, 4, 32, 32)  # B, T, H, W
# torchvision's published r2plus1d_18 (Kinetics-400, 512 -> 400 fc) parameter count and
# its multiply-adds ("_ops", GFLOPS in its tables) for one 16x112x112 clip.
TORCHVISION_PARAMS_400 = 31_505_325
TORCHVISION_GMACS_16_FRAMES = 40.519
# XLA's cost analysis of the CPU lowering, one 32x112x112x3 clip (the EchoNet-Dynamic clip).
FULL_GFLOPS_32_FRAMES = 155.665


def _expected_params(in_channels: int, num_outputs: int) -> int:
  """Trainable parameters of torchvision's r2plus1d_18 topology, counted by hand."""

  def conv_bn(cin, cout, taps):
    return cin * cout * taps + 2 * cout  # kernel (no bias) + BN scale and offset

  n = conv_bn(in_channels, 45, 7 * 7) + conv_bn(45, 64, 3)
  cin = 64
  for cout in (64, 128, 256, 512):
    for i in range(2):
      mid = (cin * cout * 27) // (cin * 9 + 3 * cout)
      n += conv_bn(cin, mid, 9) + conv_bn(mid, cout, 3)  # conv1
      n += conv_bn(cout, mid, 9) + conv_bn(mid, cout, 3)  # conv2 keeps conv1's mid
      if i == 0 and cout != 64:
        n += conv_bn(cin, cout, 1)  # strided 1x1x1 shortcut
      cin = cout
  return n + 512 * num_outputs + num_outputs


@pytest.fixture(scope="module")
def tiny():
  """A tiny model on grayscale 4x32x32 clips; its init also warms up JAX's op caches."""
  model = models.R2Plus1D18(**TINY)
  x = testing.uniform_inputs((*TINY_CLIP, 1))
  variables = model.init(jax.random.key(0), x, train=False)
  return model, variables, x


def test_registry_builds_both_models_and_rejects_unknown_names():
  assert models.MODELS == {
      "inception_resnet_v1": models.InceptionResNetV1,
      "r2plus1d_18": models.R2Plus1D18,
  }
  video = models.get_model("r2plus1d_18", num_outputs={"ef": 1}, width=0.5)
  assert isinstance(video, models.R2Plus1D18)
  assert video.width == 0.5 and video.num_outputs == {"ef": 1}
  assert isinstance(models.get_model("inception_resnet_v1"), models.InceptionResNetV1)
  with pytest.raises(ConfigError, match=r"unknown model 'r3d_18'.*r2plus1d_18"):
    models.get_model("r3d_18")


def test_parameter_count_full_model_is_pinned():
  # 400-class count minus 399 of the fc's 513-weight rows: a 1-output head.
  assert _expected_params(3, 400) == TORCHVISION_PARAMS_400
  assert _expected_params(3, 1) == TORCHVISION_PARAMS_400 - 399 * 513 == 31_300_638
  variables = testing.abstract_init(models.R2Plus1D18(), (1, 32, 112, 112, 3))
  assert set(variables) == {"params", "batch_stats"}
  assert testing.param_count(variables["params"]) == 31_300_638
  grayscale = testing.abstract_init(models.R2Plus1D18(), (1, 32, 112, 112, 1))
  assert (
      testing.param_count(grayscale["params"]) == _expected_params(1, 1) == 31_300_638 - 2 * 45 * 49
  )
  # Every BN has running mean and variance; 37 BatchNorms in all.
  scales = [
      leaf
      for path, leaf in jax.tree_util.tree_leaves_with_path(variables["params"])
      if path[-1].key == "scale"
  ]
  assert len(scales) == 37
  assert testing.param_count(variables["batch_stats"]) == 2 * testing.param_count(scales)
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(variables))


def test_forward_flops_per_clip_are_pinned():
  model = models.R2Plus1D18()
  apply = lambda v, x: model.apply(v, x, train=False)
  x = jax.ShapeDtypeStruct((1, 32, 112, 112, 3), jnp.float32)
  variables = testing.abstract_init(model, x.shape)
  cost = jax.jit(apply).lower(variables, x).cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  assert cost["flops"] / 1e9 == pytest.approx(FULL_GFLOPS_32_FRAMES, rel=0.01)
  # The convolutions' multiply-adds match torchvision's figure at 16 frames, and double at 32.
  half = jax.ShapeDtypeStruct((1, 16, 112, 112, 3), jnp.float32)
  macs_16 = testing.conv_multiply_adds(jax.make_jaxpr(apply)(variables, half).jaxpr)
  assert macs_16 / 1e9 == pytest.approx(TORCHVISION_GMACS_16_FRAMES, abs=5e-4)
  assert testing.conv_multiply_adds(jax.make_jaxpr(apply)(variables, x).jaxpr) == 2 * macs_16


@pytest.mark.parametrize("channels", [1, 3])
def test_full_model_shapes_at_32x112x112(channels):
  model = models.R2Plus1D18()
  x = jax.ShapeDtypeStruct((2, 32, 112, 112, channels), jnp.float32)
  variables = testing.abstract_init(model, (1, 32, 112, 112, channels))

  def run(v, x):
    return model.apply(v, x, train=False, capture_intermediates=True)

  logits, state = jax.eval_shape(run, variables, x)
  assert logits.shape == (2, 1) and logits.dtype == jnp.float32
  trunk = state["intermediates"]["trunk"]
  shape = lambda name: trunk[name]["__call__"][0].shape
  assert shape("stem_spatial") == (2, 32, 56, 56, 45)
  assert shape("stem_temporal") == (2, 32, 56, 56, 64)
  assert shape("layer1_1") == (2, 32, 56, 56, 64)
  assert shape("layer2_0") == (2, 16, 28, 28, 128)
  assert shape("layer3_1") == (2, 8, 14, 14, 256)
  assert shape("layer4_1") == (2, 4, 7, 7, 512)
  assert trunk["__call__"][0].shape == (2, 512)
  params = variables["params"]["trunk"]
  assert params["stem_spatial"]["conv"]["kernel"].shape == (1, 7, 7, channels, 45)
  # (256 * 512 * 27) // (256 * 9 + 3 * 512) = 921, kept by conv2; (512, 512) gives 1152.
  assert params["layer4_0"]["conv1"]["spatial"]["conv"]["kernel"].shape == (1, 3, 3, 256, 921)
  assert params["layer4_0"]["conv2"]["spatial"]["conv"]["kernel"].shape == (1, 3, 3, 512, 921)
  assert params["layer4_1"]["conv1"]["spatial"]["conv"]["kernel"].shape == (1, 3, 3, 512, 1152)
  assert "downsample" not in params["layer1_0"] and "downsample" not in params["layer4_1"]
  assert params["layer2_0"]["downsample"]["conv"]["kernel"].shape == (1, 1, 1, 64, 128)


def test_forward_grayscale_and_rgb(tiny):
  model, variables, gray = tiny
  rgb = testing.uniform_inputs((*TINY_CLIP, 3), seed=1)
  rgb_logits, rgb_variables = model.init_with_output(jax.random.key(0), rgb, train=False)
  assert rgb_variables["params"]["trunk"]["stem_spatial"]["conv"]["kernel"].shape == (
      1,
      7,
      7,
      3,
      11,
  )
  for logits in (model.apply(variables, gray, train=False), rgb_logits):
    assert logits.shape == (2, 1) and logits.dtype == jnp.float32
    assert np.all(np.isfinite(logits))
    assert not np.allclose(logits[0], logits[1])


def test_single_frame_and_odd_sizes_run():
  model = models.R2Plus1D18(**TINY)
  for shape in [(1, 1, 16, 16, 1), (1, 5, 17, 23, 2)]:
    logits = jax.eval_shape(
        lambda s=shape: model.init_with_output(jax.random.key(0), jnp.zeros(s), train=False)[0]
    )
    assert logits.shape == (1, 1)


def test_frames_without_time_axis_are_rejected():
  model = models.R2Plus1D18(**TINY)
  with pytest.raises(ValueError, match=r"\(B, T, H, W, C\).*\(2, 32, 32, 1\)"):
    model.init(jax.random.key(0), jnp.zeros((2, 32, 32, 1)), train=False)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(blocks=(2, 2, 2)),
        dict(blocks=(2, 0, 2, 2)),
        dict(blocks=(2, 1.5, 2, 2)),
        dict(width=0.0),
        dict(dropout_rate=1.0),
        dict(num_outputs={}),
    ],
)
def test_bad_arguments_are_rejected(kwargs):
  with pytest.raises(ValueError):
    models.R2Plus1D18(**kwargs).init(jax.random.key(0), jnp.zeros((1, 2, 16, 16, 1)), train=False)


def test_multi_task_heads_return_dict():
  testing.check_multi_task_heads(models.R2Plus1D18, testing.uniform_inputs((*TINY_CLIP, 1)), **TINY)


def test_features_method_feeds_the_head(tiny):
  testing.check_features_feed_the_head(*tiny, num_features=128, atol=1e-6)


def test_width_scales_channels_and_midplanes_follow():
  params = testing.abstract_init(
      models.R2Plus1D18(width=0.5, blocks=(1, 2, 1, 1)), (1, 4, 32, 32, 1)
  )["params"]
  trunk = params["trunk"]
  assert sorted(trunk) == [
      "layer1_0",
      "layer2_0",
      "layer2_1",
      "layer3_0",
      "layer4_0",
      "stem_spatial",
      "stem_temporal",
  ]
  assert trunk["stem_spatial"]["conv"]["kernel"].shape == (1, 7, 7, 1, 22)
  mid = r2plus1d.midplanes(32, 64)
  assert mid == 115
  assert trunk["layer2_0"]["conv1"]["spatial"]["conv"]["kernel"].shape == (1, 3, 3, 32, mid)
  assert params["head"]["kernel"].shape == (256, 1)


def test_bfloat16_compute_keeps_float32_params_and_logits(tiny):
  testing.check_bfloat16_compute(*tiny, atol=0.02)


def test_train_mode_updates_batch_stats(tiny):
  model, variables, x = tiny
  out, updates = jax.jit(
      lambda v, x: model.apply(
          v, x, train=True, mutable=["batch_stats"], rngs={"dropout": jax.random.key(1)}
      )
  )(variables, x)
  assert testing.check_batch_stats_updated(variables, updates) == 2 * 21
  # Eval uses the running statistics, needs no rng and is deterministic.
  eval_1 = model.apply(variables, x, train=False)
  np.testing.assert_array_equal(eval_1, model.apply(variables, x, train=False))
  assert not np.allclose(eval_1, out)


def test_gradient_steps_decrease_the_loss():
  model = models.R2Plus1D18(num_outputs={"ef": 1}, width=0.125, blocks=(1, 1, 1, 1))
  x = testing.uniform_inputs((4, 4, 24, 24, 1), seed=2)
  y = jnp.array([-1.0, 1.0, 0.5, -0.5])
  variables = model.init(jax.random.key(0), x, train=False)
  tx = optax.adam(1e-2)

  def loss_fn(params, batch_stats):
    logits, updates = model.apply(
        {"params": params, "batch_stats": batch_stats}, x, train=True, mutable=["batch_stats"]
    )
    return jnp.mean(jnp.square(logits["ef"][:, 0] - y)), updates["batch_stats"]

  @jax.jit
  def step(params, batch_stats, opt_state):
    (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, batch_stats)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), batch_stats, opt_state, loss

  params, batch_stats = variables["params"], variables["batch_stats"]
  opt_state = tx.init(params)
  losses = []
  for _ in range(8):
    params, batch_stats, opt_state, loss = step(params, batch_stats, opt_state)
    losses.append(float(loss))
  assert np.all(np.isfinite(losses))
  assert losses[-1] < 0.5 * losses[0], losses
