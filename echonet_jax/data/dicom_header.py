"""Reads a DICOM file and checks its header before any pixel is decoded.

:func:`read_dataset` refuses, in one :class:`~echonet_jax.errors.EchoReadError` line naming the
file, what is not a readable ultrasound dataset: a missing file, a folder, no DICM preamble, a
truncated header or pixel data, no pixel data, a modality other than US, zero frames, no image
size. The header is checked against the pixel data before anything scales with NumberOfFrames
(:func:`check_pixel_extent`). pydicom reads quietly (:func:`quiet_pydicom`, as its messages quote
tag values), and error reasons never quote tag values.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import struct
from typing import Any
import warnings

import pydicom
from pydicom import uid as pydicom_uid

from echonet_jax.errors import FileMissingError
from echonet_jax.errors import NoFramesError
from echonet_jax.errors import NoPixelDataError
from echonet_jax.errors import NotDicomError
from echonet_jax.errors import NotUltrasoundError
from echonet_jax.errors import TruncatedFileError
from echonet_jax.errors import UnsupportedImageError

# Standard DICOM modality codes; any other value is reported without being quoted.
_MODALITIES = frozenset(
    "US CT MR CR DX MG NM PT XA RF OT SC ES XC IVUS OCT OP SM IO PX RG DG BI GM ECG SR PR KO "
    "DOC SEG REG".split()
)


def _pydicom():
  return pydicom


@contextlib.contextmanager
def quiet_pydicom():
  """Keeps pydicom from logging or warning while we read: its messages quote tag values."""
  config = _pydicom().config
  logger = logging.getLogger("pydicom")
  mode, disabled = config.settings.reading_validation_mode, logger.disabled
  config.settings.reading_validation_mode = config.IGNORE
  logger.disabled = True
  try:
    with warnings.catch_warnings():
      warnings.simplefilter("ignore")
      yield
  finally:
    config.settings.reading_validation_mode = mode
    logger.disabled = disabled


_PIXEL_TAG_LE = b"\xe0\x7f\x10\x00"
_PIXEL_TAG_BE = b"\x7f\xe0\x00\x10"


def _file_mentions_pixel_data(path: str) -> bool:
  with open(path, "rb") as f:
    data = f.read()
  return _PIXEL_TAG_LE in data or _PIXEL_TAG_BE in data


def read_dataset(path: str, allow_non_ultrasound: bool = False) -> Any:
  """Reads and validates a DICOM file; raises an :class:`EchoReadError` subclass when unusable."""
  pydicom = _pydicom()
  path = str(path)
  if not os.path.exists(path):
    raise FileMissingError(path, "file does not exist")
  if os.path.isdir(path):
    raise NotDicomError(path, "is a folder, not a DICOM file")
  try:
    with quiet_pydicom():
      ds = pydicom.dcmread(path)
  except pydicom.errors.InvalidDicomError:
    raise NotDicomError(path, "not a DICOM file (no DICM preamble)") from None
  except (EOFError, OSError, ValueError, KeyError, TypeError, struct.error) as e:
    raise TruncatedFileError(
        path, f"could not parse the DICOM header, the file may be truncated ({type(e).__name__})"
    ) from None
  if "PixelData" not in ds:
    if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
      raise UnsupportedImageError(path, "float pixel data is not an ultrasound image")
    if _file_mentions_pixel_data(path):
      raise TruncatedFileError(path, "the file ends inside its pixel data (truncated)")
    raise NoPixelDataError(
        path, "the dataset has no pixel data (or the file is truncated " "before it)"
    )
  modality = str(ds.get("Modality", "")).strip().upper()
  if modality != "US" and not allow_non_ultrasound:
    if modality in _MODALITIES:
      shown = repr(modality)
    else:  # not a standard code: it could be anything, so do not quote it
      shown = "unknown" if modality else "missing"
    raise NotUltrasoundError(
        path, f"modality is {shown}, not 'US' (pass allow_non_ultrasound to read it anyway)"
    )
  raw_frames = ds.get("NumberOfFrames", 1)
  try:
    num_frames = int(raw_frames) if raw_frames not in (None, "") else 1
  except (TypeError, ValueError):
    raise NoFramesError(path, "NumberOfFrames is not a number") from None
  if num_frames < 1 or len(ds.PixelData) == 0:
    raise NoFramesError(path, "the dataset holds zero frames")
  if "Rows" not in ds or "Columns" not in ds or not ds.Rows or not ds.Columns:
    raise NoPixelDataError(path, "the dataset has no image size (Rows/Columns)")
  check_pixel_extent(ds, num_frames, path)
  return ds


# No ultrasound frame comes near this (8192 x 8192); a larger header is corrupt or hostile.
MAX_FRAME_PIXELS = 1 << 26
_BITS_ALLOCATED = (1, 8, 16, 32, 64)


def _frame_bytes(ds: Any, rows: int, cols: int, samples: int, bits: int) -> float:
  """Bytes of one native (uncompressed) frame; fractional for 1-bit data."""
  size = rows * cols * samples * bits / 8
  if str(ds.get("PhotometricInterpretation", "")).strip() == "YBR_FULL_422":
    size = size / 3 * 2  # two chroma samples shared by each pair of pixels
  return size


def check_pixel_extent(ds: Any, num_frames: int, path: str = "") -> None:
  """Refuses a header whose frame count or image size the pixel data cannot hold.

  Runs before anything scales with NumberOfFrames: native data must hold NumberOfFrames x Rows x
  Columns x SamplesPerPixel x BitsAllocated / 8 bytes; encapsulated data at least one fragment per
  frame. A header claiming 2 billion frames over 64 bytes is thus one error, in microseconds.
  """
  rows, cols = int(ds.Rows), int(ds.Columns)
  try:
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    bits = int(ds.get("BitsAllocated", 8) or 8)
  except (TypeError, ValueError):
    raise UnsupportedImageError(path, "SamplesPerPixel or BitsAllocated is not a number") from None
  if not 1 <= samples <= 4 or bits not in _BITS_ALLOCATED:
    raise UnsupportedImageError(
        path, f"{samples} samples per pixel of {bits} bits is not an image layout we can read"
    )
  if rows * cols > MAX_FRAME_PIXELS:
    raise UnsupportedImageError(
        path,
        f"an image of {rows} x {cols} pixels is implausible "
        f"(more than {MAX_FRAME_PIXELS} per frame): corrupt header",
    )
  tsyntax = ds.file_meta.get("TransferSyntaxUID")
  payload = len(ds.PixelData)
  if tsyntax is None or not tsyntax.is_encapsulated:
    needed = math.ceil(num_frames * _frame_bytes(ds, rows, cols, samples, bits))
    if payload < needed:
      raise TruncatedFileError(
          path,
          f"the pixel data holds {payload} bytes but {num_frames} frames of {rows} x {cols}"
          f" x {samples} at {bits} bits need {needed} (truncated file or corrupt header)",
      )
    return
  if tsyntax in pydicom_uid.MPEGTransferSyntaxes:
    return  # one stream for all frames; these fail later as MissingDecoderError
  fragments = _count_fragments(ds.PixelData, "<" if tsyntax.is_little_endian else ">")
  if fragments is None:
    raise TruncatedFileError(path, "the encapsulated pixel data is malformed (truncated file?)")
  if fragments < num_frames:
    raise TruncatedFileError(
        path,
        f"the pixel data holds {fragments} compressed fragments, fewer than the "
        f"{num_frames} frames the header claims (truncated file or corrupt header)",
    )


def _count_fragments(data: bytes, endianness: str) -> int | None:
  """Fragments of encapsulated pixel data after the Basic Offset Table; None when malformed.

  Walks the item headers only (O(fragments), no copy of the data).
  """
  item = struct.Struct(endianness + "HHI")
  position, count, first = 0, 0, True
  while position + 8 <= len(data):
    group, element, length = item.unpack_from(data, position)
    if (group, element) == (0xFFFE, 0xE0DD):  # sequence delimiter
      break
    if (group, element) != (0xFFFE, 0xE000) or position + 8 + length > len(data):
      return None
    position += 8 + length
    count += 0 if first else 1  # the first item is the Basic Offset Table
    first = False
  return None if first else count


def num_frames_of(ds: Any) -> int:
  """NumberOfFrames of ``ds`` (1 when absent)."""
  value = ds.get("NumberOfFrames", 1)
  return int(value) if value not in (None, "") else 1
