"""Inception-ResNet-v1 (Szegedy et al. 2016) in flax.linen, TF-slim topology.

The layout follows TF-slim's / FaceNet's ``inception_resnet_v1.py``: every unit is
conv (no bias) -> BatchNorm (epsilon 1e-3, decay 0.995, scale and offset) -> ReLU,
and each residual block ends in a 1x1 "up" conv with a bias and no BatchNorm whose
output is scaled and added to the block input. Tensors are NHWC throughout.

At 299x299 the feature map goes 35x35x256 -> 17x17x896 -> 8x8x1792; the pooled
feature vector has ``1792 * width`` entries (rounded per layer).
"""

from __future__ import annotations

from collections.abc import Mapping
import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from echonet_jax.models import common
from echonet_jax.models.common import scaled_channels

# Smallest square input for which the last reduction still has a 1x1 output.
MIN_INPUT_SIZE = 75

# He-normal (truncated) for convs: every conv is followed by ReLU or a scaled residual add.
conv_kernel_init = nn.initializers.variance_scaling(2.0, "fan_in", "truncated_normal")
head_kernel_init = nn.initializers.variance_scaling(1.0, "fan_in", "truncated_normal")

Dtype = Any


class ConvBN(common.ConvBNUnit):
  """Conv (no bias) -> BatchNorm -> optional ReLU."""

  features: int
  kernel_size: tuple[int, int]
  strides: int = 1
  padding: str = "SAME"
  activation: bool = True
  dtype: Dtype = jnp.float32

  kernel_init = staticmethod(conv_kernel_init)
  momentum = 0.995
  epsilon = 1e-3

  def conv_padding(self) -> str:
    return self.padding


class _Block(nn.Module):
  """Shared machinery for the residual blocks: width scaling and the scaled "up" add."""

  scale: float
  activation: bool = True
  width: float = 1.0
  dtype: Dtype = jnp.float32

  def ch(self, n: int) -> int:
    return scaled_channels(n, self.width)

  def conv(self, n: int, k: tuple[int, int], name: str) -> ConvBN:
    return ConvBN(self.ch(n), k, dtype=self.dtype, name=name)

  def residual(self, x: jax.Array, mixed: jax.Array) -> jax.Array:
    up = nn.Conv(
        x.shape[-1],
        (1, 1),
        use_bias=True,
        kernel_init=conv_kernel_init,
        dtype=self.dtype,
        param_dtype=jnp.float32,
        name="Conv2d_1x1",
    )(mixed)
    x = x + self.scale * up
    return nn.relu(x) if self.activation else x


class Block35(_Block):
  """35x35 residual block (Inception-ResNet-A)."""

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    b0 = self.conv(32, (1, 1), "Branch_0_Conv2d_1x1")(x, train=train)
    b1 = self.conv(32, (1, 1), "Branch_1_Conv2d_0a_1x1")(x, train=train)
    b1 = self.conv(32, (3, 3), "Branch_1_Conv2d_0b_3x3")(b1, train=train)
    b2 = self.conv(32, (1, 1), "Branch_2_Conv2d_0a_1x1")(x, train=train)
    b2 = self.conv(32, (3, 3), "Branch_2_Conv2d_0b_3x3")(b2, train=train)
    b2 = self.conv(32, (3, 3), "Branch_2_Conv2d_0c_3x3")(b2, train=train)
    return self.residual(x, jnp.concatenate([b0, b1, b2], axis=-1))


class Block17(_Block):
  """17x17 residual block (Inception-ResNet-B)."""

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    b0 = self.conv(128, (1, 1), "Branch_0_Conv2d_1x1")(x, train=train)
    b1 = self.conv(128, (1, 1), "Branch_1_Conv2d_0a_1x1")(x, train=train)
    b1 = self.conv(128, (1, 7), "Branch_1_Conv2d_0b_1x7")(b1, train=train)
    b1 = self.conv(128, (7, 1), "Branch_1_Conv2d_0c_7x1")(b1, train=train)
    return self.residual(x, jnp.concatenate([b0, b1], axis=-1))


class Block8(_Block):
  """8x8 residual block (Inception-ResNet-C)."""

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    b0 = self.conv(192, (1, 1), "Branch_0_Conv2d_1x1")(x, train=train)
    b1 = self.conv(192, (1, 1), "Branch_1_Conv2d_0a_1x1")(x, train=train)
    b1 = self.conv(192, (1, 3), "Branch_1_Conv2d_0b_1x3")(b1, train=train)
    b1 = self.conv(192, (3, 1), "Branch_1_Conv2d_0c_3x1")(b1, train=train)
    return self.residual(x, jnp.concatenate([b0, b1], axis=-1))


def _max_pool_3x3_s2(x: jax.Array) -> jax.Array:
  return nn.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")


class _Trunk(nn.Module):
  """Stem, residual stages and reductions, then global average pooling."""

  width: float
  blocks: tuple[int, int, int]
  dtype: Dtype

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    if x.ndim != 4:
      raise ValueError(f"expected images of shape (B, H, W, C), got shape {x.shape}")
    if min(x.shape[1:3]) < MIN_INPUT_SIZE:
      raise ValueError(f"input height and width must be >= {MIN_INPUT_SIZE}, got shape {x.shape}")
    ch = functools.partial(scaled_channels, width=self.width)

    def conv(n, k, name, strides=1, padding="SAME"):
      return ConvBN(
          ch(n),
          (k, k) if isinstance(k, int) else k,
          strides=strides,
          padding=padding,
          dtype=self.dtype,
          name=name,
      )

    x = jnp.asarray(x, self.dtype)
    # Stem: 299 -> 149 -> 147 -> 147 -> 73 -> 73 -> 71 -> 35.
    x = conv(32, 3, "Conv2d_1a_3x3", strides=2, padding="VALID")(x, train=train)
    x = conv(32, 3, "Conv2d_2a_3x3", padding="VALID")(x, train=train)
    x = conv(64, 3, "Conv2d_2b_3x3")(x, train=train)
    x = _max_pool_3x3_s2(x)
    x = conv(80, 1, "Conv2d_3b_1x1", padding="VALID")(x, train=train)
    x = conv(192, 3, "Conv2d_4a_3x3", padding="VALID")(x, train=train)
    x = conv(256, 3, "Conv2d_4b_3x3", strides=2, padding="VALID")(x, train=train)

    block = dict(width=self.width, dtype=self.dtype)
    n35, n17, n8 = self.blocks
    for i in range(n35):
      x = Block35(scale=0.17, name=f"Repeat_block35_{i + 1}", **block)(x, train=train)

    # Reduction-A (k, l, m, n = 192, 192, 256, 384): 35x35 -> 17x17.
    b0 = conv(384, 3, "Mixed_6a_Branch_0_Conv2d_1a_3x3", strides=2, padding="VALID")(x, train=train)
    b1 = conv(192, 1, "Mixed_6a_Branch_1_Conv2d_0a_1x1")(x, train=train)
    b1 = conv(192, 3, "Mixed_6a_Branch_1_Conv2d_0b_3x3")(b1, train=train)
    b1 = conv(256, 3, "Mixed_6a_Branch_1_Conv2d_1a_3x3", strides=2, padding="VALID")(
        b1, train=train
    )
    x = jnp.concatenate([b0, b1, _max_pool_3x3_s2(x)], axis=-1)

    for i in range(n17):
      x = Block17(scale=0.10, name=f"Repeat_1_block17_{i + 1}", **block)(x, train=train)

    # Reduction-B: 17x17 -> 8x8.
    b0 = conv(256, 1, "Mixed_7a_Branch_0_Conv2d_0a_1x1")(x, train=train)
    b0 = conv(384, 3, "Mixed_7a_Branch_0_Conv2d_1a_3x3", strides=2, padding="VALID")(
        b0, train=train
    )
    b1 = conv(256, 1, "Mixed_7a_Branch_1_Conv2d_0a_1x1")(x, train=train)
    b1 = conv(256, 3, "Mixed_7a_Branch_1_Conv2d_1a_3x3", strides=2, padding="VALID")(
        b1, train=train
    )
    b2 = conv(256, 1, "Mixed_7a_Branch_2_Conv2d_0a_1x1")(x, train=train)
    b2 = conv(256, 3, "Mixed_7a_Branch_2_Conv2d_0b_3x3")(b2, train=train)
    b2 = conv(256, 3, "Mixed_7a_Branch_2_Conv2d_1a_3x3", strides=2, padding="VALID")(
        b2, train=train
    )
    x = jnp.concatenate([b0, b1, b2, _max_pool_3x3_s2(x)], axis=-1)

    for i in range(n8):
      x = Block8(scale=0.20, name=f"Repeat_2_block8_{i + 1}", **block)(x, train=train)
    x = Block8(scale=1.0, activation=False, name="Block8", **block)(x, train=train)

    # Pool in float32: the pooled vector feeds float32 heads.
    return jnp.mean(x.astype(jnp.float32), axis=(1, 2))


class InceptionResNetV1(common.PooledNetwork):
  """Inception-ResNet-v1 classifier/regressor: images (B, H, W, C), H, W >= 75 -> float32 logits.

  Attributes:
    num_outputs: logits per image; a mapping ``name -> n`` builds one linear head per
      name and the call then returns ``{name: (B, n) logits}``.
    dropout_rate: dropout on the pooled features (TF-slim keep_prob 0.8 = rate 0.2).
    width: multiplies every channel count (rounded, at least 1).
    blocks: repeats of block35 / block17 / block8; the final block8 without ReLU is
      always added.
    dtype: compute dtype; parameters are always float32 and logits are float32.
  """

  num_outputs: int | Mapping[str, int] = 1
  dropout_rate: float = 0.2
  width: float = 1.0
  blocks: tuple[int, int, int] = (5, 10, 5)
  dtype: Dtype = jnp.float32

  def setup(self):
    common.check_attributes(tuple(self.blocks), 3, 0, self.width, self.dropout_rate)
    self.trunk = _Trunk(width=self.width, blocks=tuple(self.blocks), dtype=self.dtype)
    self.dropout = nn.Dropout(self.dropout_rate)
    self.heads = common.make_heads(self.num_outputs, head_kernel_init)
