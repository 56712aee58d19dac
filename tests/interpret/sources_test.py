"""Tests for echonet_jax.interpret.sources: the videos saliency mode explains."""

from __future__ import annotations

from echonet_jax.interpret import sources


def test_safe_name():
  assert sources.safe_name("../a b/c.dcm") == "a_b_c.dcm"
