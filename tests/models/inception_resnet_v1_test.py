"""Tests for echonet_jax.models (Inception-ResNet-v1)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from echonet_jax import models
from tests import testing

# A CPU-sized configuration: quarter width, one block of each kind.
TINY = dict(width=0.25, blocks=(1, 1, 1))
# Trainable parameters of the full model at 299x299x3 with a 1792 -> 1 head.
FULL_PARAMS = 22_565_889
FULL_BN_SCALES = 14_288


@pytest.fixture(scope="module")
def tiny():
  """A tiny model on grayscale 75x75 images; its init also warms up JAX's op caches."""
  model = models.Model(**TINY)
  x = testing.uniform_inputs((2, 75, 75, 1))
  variables = model.init(jax.random.key(0), x, train=False)
  return model, variables, x


def test_model_alias():
  assert models.Model is models.InceptionResNetV1


def test_parameter_count_full_model_is_pinned():
  variables = testing.abstract_init(models.Model(), (1, 299, 299, 3))
  assert set(variables) == {"params", "batch_stats"}
  params = variables["params"]
  n = testing.param_count(params)
  assert n == FULL_PARAMS
  # Paper: ~22.57 M with BN scale and offset, ~22.55 M without scale (TF-slim default).
  scales = sum(
      int(np.prod(leaf.shape))
      for path, leaf in jax.tree_util.tree_leaves_with_path(params)
      if path[-1].key == "scale"
  )
  assert scales == FULL_BN_SCALES
  assert round(n / 1e6, 2) == 22.57
  assert round((n - scales) / 1e6, 2) == 22.55
  # Every BN has scale, offset, mean and var of the same size.
  assert testing.param_count(variables["batch_stats"]) == 2 * scales
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(variables))


def test_forward_flops_per_image_match_paper():
  model = models.Model()
  batch = 2
  x = jax.ShapeDtypeStruct((batch, 299, 299, 3), jnp.float32)
  variables = testing.abstract_init(model, (1, 299, 299, 3))
  apply = lambda v, x: model.apply(v, x, train=False)
  cost = jax.jit(apply).lower(variables, x).cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  flops_per_image = cost["flops"] / batch
  assert flops_per_image == pytest.approx(12.6e9, rel=0.05)
  # Counted by hand from the convolutions: ~6.3 G multiply-adds per image.
  macs = testing.conv_multiply_adds(jax.make_jaxpr(apply)(variables, x).jaxpr) / batch
  assert macs == pytest.approx(6.3e9, rel=0.01)


@pytest.mark.parametrize("channels", [1, 3])
def test_full_model_shapes_at_299(channels):
  model = models.Model()
  x = jax.ShapeDtypeStruct((2, 299, 299, channels), jnp.float32)
  variables = testing.abstract_init(model, (1, 299, 299, channels))

  def run(v, x):
    return model.apply(v, x, train=False, capture_intermediates=True)

  logits, state = jax.eval_shape(run, variables, x)
  assert logits.shape == (2, 1) and logits.dtype == jnp.float32
  trunk = state["intermediates"]["trunk"]
  assert trunk["Conv2d_4b_3x3"]["__call__"][0].shape == (2, 35, 35, 256)
  assert trunk["Repeat_block35_5"]["__call__"][0].shape == (2, 35, 35, 256)
  assert trunk["Repeat_1_block17_10"]["__call__"][0].shape == (2, 17, 17, 896)
  assert trunk["Block8"]["__call__"][0].shape == (2, 8, 8, 1792)
  assert trunk["__call__"][0].shape == (2, 1792)
  assert variables["params"]["trunk"]["Conv2d_1a_3x3"]["conv"]["kernel"].shape == (
      3,
      3,
      channels,
      32,
  )


def test_forward_at_minimum_size_grayscale_and_rgb(tiny):
  model, variables, gray = tiny
  rgb = testing.uniform_inputs((2, 75, 75, 3))
  rgb_logits, rgb_variables = model.init_with_output(jax.random.key(0), rgb, train=False)
  assert rgb_variables["params"]["trunk"]["Conv2d_1a_3x3"]["conv"]["kernel"].shape == (3, 3, 3, 8)
  for logits in (model.apply(variables, gray, train=False), rgb_logits):
    assert logits.shape == (2, 1) and logits.dtype == jnp.float32
    assert np.all(np.isfinite(logits))
    # Different images give different logits.
    assert not np.allclose(logits[0], logits[1])


def test_non_square_input_above_minimum():
  model = models.Model()
  logits = jax.eval_shape(
      lambda: model.init_with_output(jax.random.key(0), jnp.zeros((1, 75, 112, 1)), train=False)[0]
  )
  assert logits.shape == (1, 1)


@pytest.mark.parametrize("shape", [(1, 74, 75, 1), (1, 75, 74, 3), (1, 32, 32, 1)])
def test_input_smaller_than_75_is_rejected(shape):
  model = models.Model(**TINY)
  with pytest.raises(
      ValueError, match=r">= 75.*" + str(shape).replace("(", r"\(").replace(")", r"\)")
  ):
    model.init(jax.random.key(0), jnp.zeros(shape), train=False)


def test_input_without_batch_axis_is_rejected():
  model = models.Model(**TINY)
  with pytest.raises(ValueError, match=r"\(B, H, W, C\)"):
    model.init(jax.random.key(0), jnp.zeros((75, 75, 1)), train=False)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(blocks=(1, 1)),
        dict(blocks=(1, -1, 1)),
        dict(width=0.0),
        dict(dropout_rate=1.0),
        dict(num_outputs={}),
    ],
)
def test_bad_arguments_are_rejected(kwargs):
  with pytest.raises(ValueError):
    models.Model(**kwargs).init(jax.random.key(0), jnp.zeros((1, 75, 75, 1)), train=False)


def test_multi_task_heads_return_dict():
  testing.check_multi_task_heads(models.Model, testing.uniform_inputs((2, 75, 75, 1)), **TINY)


def test_features_method_feeds_the_head(tiny):
  testing.check_features_feed_the_head(*tiny, num_features=1792 // 4, atol=1e-5)


def test_width_scales_channels_and_blocks_set_depth():
  params = testing.abstract_init(models.Model(width=0.5, blocks=(2, 1, 0)), (1, 75, 75, 1))[
      "params"
  ]
  trunk = params["trunk"]
  assert sorted(k for k in trunk if "block" in k.lower()) == [
      "Block8",
      "Repeat_1_block17_1",
      "Repeat_block35_1",
      "Repeat_block35_2",
  ]
  assert trunk["Conv2d_4b_3x3"]["conv"]["kernel"].shape == (3, 3, 96, 128)
  assert params["head"]["kernel"].shape == (896, 1)
  # The channel counts are rounded and never reach zero.
  assert models.scaled_channels(80, 0.3) == 24
  assert models.scaled_channels(32, 0.01) == 1
  thin = testing.abstract_init(models.Model(width=0.01, blocks=(0, 0, 0)), (1, 75, 75, 1))["params"]
  assert thin["trunk"]["Conv2d_1a_3x3"]["conv"]["kernel"].shape == (3, 3, 1, 1)
  # Reduction-B concatenates 4 + 3 + 3 channels with the 10 from reduction-A.
  assert thin["head"]["kernel"].shape == (20, 1)


def test_bfloat16_compute_keeps_float32_params_and_logits(tiny):
  testing.check_bfloat16_compute(*tiny, atol=0.05)


def test_train_mode_updates_batch_stats_and_uses_dropout(tiny):
  _, variables, x = tiny
  model = models.Model(dropout_rate=0.5, **TINY)

  @jax.jit
  def train_apply(rng):
    return model.apply(variables, x, train=True, mutable=["batch_stats"], rngs={"dropout": rng})

  out_a, updates = train_apply(jax.random.key(1))
  out_a2, _ = train_apply(jax.random.key(1))
  out_b, _ = train_apply(jax.random.key(2))
  testing.check_batch_stats_updated(variables, updates)
  np.testing.assert_array_equal(out_a, out_a2)
  assert not np.allclose(out_a, out_b)
  # Eval needs no rng, uses the running statistics and is deterministic.
  eval_1 = model.apply(variables, x, train=False)
  eval_2 = model.apply(variables, x, train=False)
  np.testing.assert_array_equal(eval_1, eval_2)
  assert not np.allclose(eval_1, out_a)
