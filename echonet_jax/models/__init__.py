"""The networks: Inception-ResNet-v1 (frames) and R(2+1)D-18 (clips), flax.linen."""

from __future__ import annotations

from typing import Any

import flax.linen as nn

from echonet_jax.errors import ConfigError
from echonet_jax.models.common import scaled_channels
from echonet_jax.models.inception_resnet_v1 import MIN_INPUT_SIZE
from echonet_jax.models.inception_resnet_v1 import InceptionResNetV1
from echonet_jax.models.r2plus1d import R2Plus1D18

Model = InceptionResNetV1

# Name -> network class. Both take num_outputs, dropout_rate, width, blocks and dtype;
# InceptionResNetV1 maps images (B, H, W, C), R2Plus1D18 clips (B, T, H, W, C).
MODELS: dict[str, type[nn.Module]] = {
    "inception_resnet_v1": InceptionResNetV1,
    "r2plus1d_18": R2Plus1D18,
}
DEFAULT_MODEL = "inception_resnet_v1"
# The networks whose examples are clips (B, T, H, W, C) rather than images.
CLIP_MODELS = frozenset({"r2plus1d_18"})


def is_clip_model(name: str) -> bool:
  """Whether the network registered as ``name`` takes clips; ConfigError for an unknown name."""
  if name not in MODELS:
    raise ConfigError(f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}")
  return name in CLIP_MODELS


def get_model(name: str, **kwargs: Any) -> nn.Module:
  """The network registered as ``name``, built with ``kwargs``."""
  if name not in MODELS:
    raise ConfigError(f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}")
  return MODELS[name](**kwargs)


__all__ = [
    "CLIP_MODELS",
    "DEFAULT_MODEL",
    "InceptionResNetV1",
    "MIN_INPUT_SIZE",
    "MODELS",
    "Model",
    "R2Plus1D18",
    "get_model",
    "is_clip_model",
    "scaled_channels",
]
