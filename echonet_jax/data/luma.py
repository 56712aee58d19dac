"""Decoded DICOM pixels -> 8-bit luma: grayscale, RGB, YBR and palette colour, any bit depth."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from pydicom.pixels import apply_color_lut

_GRAY = ("MONOCHROME1", "MONOCHROME2")


def palette_luma_table(ds: Any) -> np.ndarray:
  """Palette index -> luma, for every index of BitsStored bits."""
  bits = int(ds.BitsStored)
  if not 1 <= bits <= 16:  # a table of 2**bits entries: bounded, whatever the header says
    raise ValueError(
        f"photometric interpretation 'PALETTE COLOR' with {bits} bits stored is " "not supported"
    )
  entries = np.arange(2**bits, dtype=np.uint16 if bits > 8 else np.uint8)
  rgb = apply_color_lut(entries, ds)
  luma = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
  if rgb.max() > 255:  # 16-bit entries; some files put 8-bit values into 16-bit tables
    luma /= 257.0
  return np.clip(np.rint(luma), 0, 255).astype(np.uint8)


def _to_uint8(arr: np.ndarray, bits_stored: int, signed: bool) -> np.ndarray:
  if arr.dtype == np.uint8:
    return arr
  arr = arr.astype(np.float32)
  if signed:
    arr += 2.0 ** (bits_stored - 1)
  return np.clip(np.rint(arr * (255.0 / (2.0**bits_stored - 1))), 0, 255).astype(np.uint8)


def to_luma(
    arr: np.ndarray, photometric: str, ds: Any, palette: np.ndarray | None = None
) -> np.ndarray:
  """One decoded frame -> (H, W) uint8 luma (Y of BT.601, as in YBR_FULL)."""
  bits = int(ds.get("BitsStored", ds.get("BitsAllocated", 8)) or 8)
  signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
  if photometric == "PALETTE COLOR":
    if palette is None:
      palette = palette_luma_table(ds)
    index = arr.astype(np.int64) if signed else arr
    return palette[np.clip(index, 0, len(palette) - 1)]
  if photometric.startswith("YBR"):  # Y is luma already; no conversion to RGB needed
    return _to_uint8(np.ascontiguousarray(arr[..., 0]), bits, False)
  if photometric == "RGB":
    rgb = _to_uint8(arr, bits, False)
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
  if photometric in _GRAY:
    if arr.ndim == 3:
      arr = arr[..., 0]
    gray = _to_uint8(arr, bits, signed)
    return 255 - gray if photometric == "MONOCHROME1" else gray
  raise ValueError(f"photometric interpretation {photometric!r} is not supported")
