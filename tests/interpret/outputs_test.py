"""Tests for echonet_jax.interpret.outputs: the titles of saliency figures."""

from __future__ import annotations

from echonet_jax.interpret import maps
from echonet_jax.interpret import outputs


def test_method_text():
  assert outputs.method_text(maps.Settings(num_samples=8)) == (
      "SmoothGrad (8 samples, noise 0.15, 2×2 px jitter)"
  )
  assert outputs.method_text(maps.Settings(method="vanilla")) == "gradient"
