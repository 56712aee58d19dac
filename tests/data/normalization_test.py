"""Tests of the pixel normalisation every stream shares."""

from __future__ import annotations

import numpy as np

from echonet_jax.data import normalization


def test_normalize_maps_black_to_black_constant():
  out = normalization.normalize(np.array([0, 11, 255], np.uint8))
  assert out.dtype == np.float32
  np.testing.assert_allclose(
      out,
      [
          normalization.BLACK,
          (11 - normalization.PIXEL_MEAN) / normalization.PIXEL_STD,
          (255 - normalization.PIXEL_MEAN) / normalization.PIXEL_STD,
      ],
      rtol=1e-6,
  )
