"""R(2+1)D-18 (Tran et al. 2018) in flax.linen, torchvision ``r2plus1d_18`` topology.

The video network EchoNet-Dynamic trained for ejection fraction. Every 3-D convolution of
R3D-18 is factorised into a spatial (1, 3, 3) conv -> BatchNorm -> ReLU -> temporal (3, 1, 1)
conv, with the number of intermediate channels chosen so that the pair has about as many
weights as the full 3x3x3 conv. As in torchvision: convs have no bias, BatchNorm has epsilon
1e-5 and momentum 0.1 (flax 0.9), paddings are explicit and symmetric, and a stride-2 block
halves T, H and W with a strided 1x1x1 conv + BN shortcut. Tensors are (B, T, H, W, C).

At 32x112x112 the feature map goes 32x56x56x64 -> 16x28x28x128 -> 8x14x14x256 -> 4x7x7x512
and the pooled feature vector has ``512 * width`` entries (rounded).
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

# torchvision's init: Kaiming-normal on fan_out for convs, N(0, 0.01) for the linear head.
conv_kernel_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")
head_kernel_init = nn.initializers.normal(0.01)

# Channels of the stem's spatial conv and of the four stages at width 1.
STEM_CHANNELS = 45
STAGE_CHANNELS = (64, 128, 256, 512)

Dtype = Any
Triple = tuple[int, int, int]


def midplanes(in_planes: int, out_planes: int) -> int:
  """Intermediate channels of a (2+1)D block: about the weights of a 3x3x3 conv."""
  return (in_planes * out_planes * 3 * 3 * 3) // (in_planes * 3 * 3 + 3 * out_planes)


def _pad(kernel: Triple) -> list[tuple[int, int]]:
  return [(k // 2, k // 2) for k in kernel]


class ConvBN3D(common.ConvBNUnit):
  """Conv3D (no bias, symmetric padding k // 2) -> BatchNorm -> optional ReLU."""

  features: int
  kernel_size: Triple
  strides: Triple = (1, 1, 1)
  activation: bool = True
  dtype: Dtype = jnp.float32

  kernel_init = staticmethod(conv_kernel_init)
  momentum = 0.9
  epsilon = 1e-5

  def conv_padding(self) -> list[tuple[int, int]]:
    return _pad(self.kernel_size)


class Conv2Plus1D(nn.Module):
  """Spatial (1,3,3) conv -> BN -> ReLU -> temporal (3,1,1) conv -> BN (-> ReLU).

  torchvision's ``Conv2Plus1D`` plus the BatchNorm (and ReLU) that follows it in its block.
  """

  features: int
  mid_features: int
  stride: int = 1
  activation: bool = True
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    s = self.stride
    x = ConvBN3D(self.mid_features, (1, 3, 3), (1, s, s), dtype=self.dtype, name="spatial")(
        x, train=train
    )
    return ConvBN3D(
        self.features,
        (3, 1, 1),
        (s, 1, 1),
        activation=self.activation,
        dtype=self.dtype,
        name="temporal",
    )(x, train=train)


class BasicBlock(nn.Module):
  """Two (2+1)D convs and a residual add; a 1x1x1 conv + BN shortcut when the shape changes.

  Both convs use the intermediate width of the first one, as torchvision does.
  """

  features: int
  stride: int = 1
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    mid = midplanes(x.shape[-1], self.features)
    conv = functools.partial(Conv2Plus1D, self.features, mid, dtype=self.dtype)
    out = conv(stride=self.stride, name="conv1")(x, train=train)
    out = conv(activation=False, name="conv2")(out, train=train)
    if self.stride != 1 or x.shape[-1] != self.features:
      s = self.stride
      x = ConvBN3D(
          self.features, (1, 1, 1), (s, s, s), activation=False, dtype=self.dtype, name="downsample"
      )(x, train=train)
    return nn.relu(out + x)


class _Trunk(nn.Module):
  """Stem and four stages, then global average pooling over T, H and W."""

  width: float
  blocks: tuple[int, int, int, int]
  dtype: Dtype

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    if x.ndim != 5:
      raise ValueError(f"expected clips of shape (B, T, H, W, C), got shape {x.shape}")
    ch = functools.partial(scaled_channels, width=self.width)
    x = jnp.asarray(x, self.dtype)
    # R2Plus1dStem: spatial 7x7 stride 2, then temporal 3.
    x = ConvBN3D(ch(STEM_CHANNELS), (1, 7, 7), (1, 2, 2), dtype=self.dtype, name="stem_spatial")(
        x, train=train
    )
    x = ConvBN3D(ch(STAGE_CHANNELS[0]), (3, 1, 1), dtype=self.dtype, name="stem_temporal")(
        x, train=train
    )
    for stage, (channels, repeats) in enumerate(zip(STAGE_CHANNELS, self.blocks)):
      for i in range(repeats):
        stride = 2 if stage > 0 and i == 0 else 1
        x = BasicBlock(ch(channels), stride, dtype=self.dtype, name=f"layer{stage + 1}_{i}")(
            x, train=train
        )
    # Pool in float32: the pooled vector feeds float32 heads.
    return jnp.mean(x.astype(jnp.float32), axis=(1, 2, 3))


class R2Plus1D18(common.PooledNetwork):
  """R(2+1)D-18 video classifier/regressor: clips (B, T, H, W, C) -> float32 logits; same call and
  heads as ``InceptionResNetV1``.

  Attributes:
    num_outputs: logits per clip; a mapping ``name -> n`` builds one linear head per
      name and the call then returns ``{name: (B, n) logits}``.
    dropout_rate: dropout on the pooled features (torchvision has none: 0).
    width: multiplies every channel count (rounded, at least 1); the intermediate
      (2+1)D widths follow from the scaled counts.
    blocks: BasicBlocks per stage (torchvision: 2, 2, 2, 2); each >= 1 since the
      first block of stages 2-4 does the downsampling.
    dtype: compute dtype; parameters are always float32 and logits are float32.
  """

  num_outputs: int | Mapping[str, int] = 1
  dropout_rate: float = 0.0
  width: float = 1.0
  blocks: tuple[int, int, int, int] = (2, 2, 2, 2)
  dtype: Dtype = jnp.float32

  def setup(self):
    common.check_attributes(tuple(self.blocks), 4, 1, self.width, self.dropout_rate)
    self.trunk = _Trunk(
        width=self.width, blocks=tuple(int(b) for b in self.blocks), dtype=self.dtype
    )
    self.dropout = nn.Dropout(self.dropout_rate)
    self.heads = common.make_heads(self.num_outputs, head_kernel_init)
