"""What both networks share: conv -> BatchNorm -> ReLU units, pooled features -> dropout -> linear
heads, the attribute checks and channel scaling."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from typing import Callable
from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

Heads = nn.Dense | Mapping[str, nn.Dense]


def scaled_channels(n: int, width: float) -> int:
  """``n * width`` rounded to the nearest integer, at least 1."""
  return max(1, int(round(n * width)))


class ConvBNUnit(nn.Module):
  """Conv (no bias) ``conv`` -> BatchNorm ``bn`` -> ReLU when ``activation``; float32 parameters.

  A network's unit subclasses it with the fields ``features``, ``kernel_size``, ``strides``,
  ``activation`` and ``dtype``, the class constants ``kernel_init`` (the conv initialiser, as a
  ``staticmethod``: a plain function would become a method), ``momentum`` and ``epsilon`` (the
  BatchNorm's), and :meth:`conv_padding`.
  """

  kernel_init: ClassVar[Callable]
  momentum: ClassVar[float]
  epsilon: ClassVar[float]

  def conv_padding(self) -> Any:
    """The conv's ``padding`` argument."""
    raise NotImplementedError

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    x = nn.Conv(
        self.features,
        self.kernel_size,
        strides=self.strides,
        padding=self.conv_padding(),
        use_bias=False,
        kernel_init=self.kernel_init,
        dtype=self.dtype,
        param_dtype=jnp.float32,
        name="conv",
    )(x)
    x = nn.BatchNorm(
        use_running_average=not train,
        momentum=self.momentum,
        epsilon=self.epsilon,
        dtype=self.dtype,
        param_dtype=jnp.float32,
        name="bn",
    )(x)
    return nn.relu(x) if self.activation else x


def check_attributes(
    blocks: tuple[int, ...], num_stages: int, min_repeats: int, width: float, dropout_rate: float
) -> None:
  """ValueError unless ``blocks`` has ``num_stages`` ints >= ``min_repeats``, ``width`` > 0 and
  ``dropout_rate`` is in [0, 1)."""
  if len(blocks) != num_stages or any(int(b) != b or b < min_repeats for b in blocks):
    kind = "non-negative" if min_repeats == 0 else "positive"
    raise ValueError(f"blocks must be {num_stages} {kind} ints, got {blocks!r}")
  if width <= 0:
    raise ValueError(f"width must be positive, got {width!r}")
  if not 0.0 <= dropout_rate < 1.0:
    raise ValueError(f"dropout_rate must be in [0, 1), got {dropout_rate!r}")


def make_heads(num_outputs: int | Mapping[str, int], kernel_init: Callable) -> Heads:
  """Float32 linear heads, built inside a module's ``setup``: one ``head`` of ``num_outputs``
  logits, or for a mapping ``name -> n`` one ``head_<name>`` per name."""
  if isinstance(num_outputs, Mapping):
    if not num_outputs:
      raise ValueError("num_outputs mapping is empty")
    return {name: _dense(int(n), kernel_init, f"head_{name}") for name, n in num_outputs.items()}
  return _dense(int(num_outputs), kernel_init, "head")


def apply_heads(heads: Heads, features: jax.Array) -> jax.Array | dict[str, jax.Array]:
  """The logits of :func:`make_heads`'s heads: an array, or ``{name: (B, n) logits}``."""
  if isinstance(heads, Mapping):
    return {name: head(features) for name, head in heads.items()}
  return heads(features)


class PooledNetwork(nn.Module):
  """A trunk pooled to one float32 feature vector per example, dropout, then linear heads.

  Subclasses build ``self.trunk``, ``self.dropout`` and ``self.heads`` (:func:`make_heads`) in
  ``setup``.
  """

  def features(self, x: jax.Array, *, train: bool) -> jax.Array:
    """Globally average-pooled trunk features, (B, F), float32."""
    return self.trunk(x, train=train)

  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array | dict[str, jax.Array]:
    """Float32 logits of a batch: an array, or ``{name: (B, n) logits}`` for a mapping of heads."""
    h = self.dropout(self.features(x, train=train), deterministic=not train)
    return apply_heads(self.heads, h)


def _dense(n: int, kernel_init: Callable, name: str) -> nn.Dense:
  return nn.Dense(n, kernel_init=kernel_init, dtype=jnp.float32, param_dtype=jnp.float32, name=name)
