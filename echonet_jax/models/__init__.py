"""The network: Inception-ResNet-v1 (flax.linen)."""

from __future__ import annotations

from echonet_jax.models.inception_resnet_v1 import MIN_INPUT_SIZE
from echonet_jax.models.inception_resnet_v1 import InceptionResNetV1
from echonet_jax.models.inception_resnet_v1 import scaled_channels

Model = InceptionResNetV1

__all__ = ["InceptionResNetV1", "MIN_INPUT_SIZE", "Model", "scaled_channels"]
