"""The pieces both networks share: channel scaling, attribute checks, the linear heads."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from echonet_jax.models import common


class _Pooled(nn.Module):
  """Features in, heads out: the two networks' last step on its own."""

  num_outputs: int | dict

  def setup(self):
    self.heads = common.make_heads(self.num_outputs, nn.initializers.normal(0.1))

  def __call__(self, x):
    return common.apply_heads(self.heads, x)


def test_scaled_channels_round_and_never_reach_zero():
  assert common.scaled_channels(80, 0.3) == 24
  assert common.scaled_channels(45, 1.0) == 45
  assert common.scaled_channels(32, 0.01) == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (((1, 1), 3, 0, 1.0, 0.0), "blocks must be 3 non-negative ints"),
        (((1, 0, 1, 1), 4, 1, 1.0, 0.0), "blocks must be 4 positive ints"),
        (((1, 1.5, 1), 3, 0, 1.0, 0.0), "blocks must be"),
        (((1, 1, 1), 3, 0, -0.5, 0.0), "width must be positive"),
        (((1, 1, 1), 3, 0, 1.0, 1.0), r"dropout_rate must be in \[0, 1\)"),
    ],
)
def test_bad_attributes_name_the_attribute(args, message):
  with pytest.raises(ValueError, match=message):
    common.check_attributes(*args)
  common.check_attributes((2, 0, 2), 3, 0, 0.5, 0.2)  # a valid set passes


def test_single_head_is_named_head_and_is_float32():
  x = jnp.ones((2, 5), jnp.bfloat16)
  out, variables = _Pooled(3).init_with_output(jax.random.key(0), x)
  assert out.shape == (2, 3) and out.dtype == jnp.float32
  assert set(variables["params"]) == {"head"}
  head = variables["params"]["head"]
  np.testing.assert_allclose(out, x.astype(jnp.float32) @ head["kernel"] + head["bias"], rtol=1e-6)


def test_mapping_builds_one_head_per_name():
  out, variables = _Pooled({"ef": 1, "view": 7}).init_with_output(
      jax.random.key(0), jnp.ones((4, 5))
  )
  assert {k: v.shape for k, v in out.items()} == {"ef": (4, 1), "view": (4, 7)}
  assert set(variables["params"]) == {"head_ef", "head_view"}
  with pytest.raises(ValueError, match="mapping is empty"):
    _Pooled({}).init(jax.random.key(0), jnp.ones((1, 5)))
